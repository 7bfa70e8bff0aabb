"""Policy tests for nowd.yaml: the template obeys every rule in
template_checks.py under every combination of its conditions, and each rule
catches a template altered to break it."""

from __future__ import annotations

import re

import pytest
import template_checks as tc

TEMPLATE = tc.load_template()


@pytest.mark.parametrize("check", tc.ALL_CHECKS, ids=lambda c: c.__name__)
def test_template_obeys(check):
    assert tc.violations(check, TEMPLATE) == []


def scenario(**true):
    """A scenario with every condition false but those named."""
    return {name: name in true for name in TEMPLATE["Conditions"]}


def test_every_condition_combination_is_checked():
    # Two zones or three, with or without the alarm email, the DNS name: 8
    # combinations.
    assert set(TEMPLATE["Conditions"]) == {"UseThirdZone", "HasAlarmEmail", "HasDnsName"}
    assert len(tc.scenarios(TEMPLATE)) == 8


def test_three_zones_add_a_third_subnet_to_the_group():
    counts = set()
    for scenario in tc.scenarios(TEMPLATE):
        res = tc.resources(TEMPLATE, scenario)
        asg = res["AutoScalingGroup"]
        counts.add((scenario["UseThirdZone"], len(tc.subnet_ids(asg))))
        lb = res["LoadBalancer"]
        assert len(tc.props(lb)["Subnets"]) == len(tc.subnet_ids(asg))
    assert counts == {(False, 2), (True, 3)}


def test_outputs():
    outputs = TEMPLATE["Outputs"]
    url = outputs["NowUrl"]["Value"]
    assert tc.resolve(url, scenario()) == {"Fn::Sub": "http://${LoadBalancer.DNSName}/now"}
    assert tc.resolve(url, scenario(HasDnsName=True)) == {"Fn::Sub": "http://${DomainName}/now"}
    for name in (
        "LoadBalancerDnsName",
        "AutoScalingGroupName",
        "AlarmTopicArn",
        "AlarmsConsoleUrl",
        "DashboardUrl",
        "StackConsoleUrl",
    ):
        assert name in outputs


def test_alarms_exist_without_email_and_mail_only_with_it():
    without = tc.resources(TEMPLATE, scenario())
    with_email = tc.resources(TEMPLATE, scenario(HasAlarmEmail=True))
    assert len(tc.alarms(without)) == len(tc.alarms(with_email)) == 2
    assert not tc.of_type(without, "AWS::SNS::Subscription")
    assert len(tc.of_type(with_email, "AWS::SNS::Subscription")) == 1


def test_dns_records_only_with_a_name():
    without = tc.resources(TEMPLATE, scenario())
    named = tc.resources(TEMPLATE, scenario(HasDnsName=True))
    assert not tc.of_type(without, "AWS::Route53::RecordSet")
    assert {tc.props(r)["Type"] for r in tc.of_type(named, "AWS::Route53::RecordSet").values()} == {
        "A",
        "AAAA",
    }


def test_a_lone_dns_parameter_is_refused_by_a_rule():
    """The rule's assertion, evaluated as CloudFormation would for each of
    the four ways to fill in the two parameters."""
    outcomes = {}
    for zone in ("", "Z0123456789ABC"):
        for name in ("", "time.example.com"):
            values = {"HostedZoneId": zone, "DomainName": name}
            outcomes[(bool(zone), bool(name))] = tc.rule_holds(
                TEMPLATE, "DnsNameNeedsItsZone", values
            )
    assert outcomes == {
        (False, False): True,
        (True, True): True,
        (True, False): False,
        (False, True): False,
    }


def test_parameter_patterns():
    params = TEMPLATE["Parameters"]
    cases = {
        "AlarmEmail": (["", "ops@example.com"], ["ops", "a b@example.com", "ops@example"]),
        "HostedZoneId": (["", "Z0123456789ABCDEFGHIJ"], ["z123", "Z12345-", "/hostedzone/Z1"]),
        "DomainName": (
            ["", "time.example.com", "a.b.c.example.org"],
            ["Time.Example.com", "time.example.com.", "-x.example.com", "example"],
        ),
    }
    for name, (good, bad) in cases.items():
        pattern = params[name]["AllowedPattern"]
        assert [v for v in good if not re.fullmatch(pattern, v)] == [], name
        assert [v for v in bad if re.fullmatch(pattern, v)] == [], name


def test_policy_data_is_available():
    # The cross-check against the Service Authorization Reference must not
    # pass merely because the data is missing.
    assert tc.action_definition("ec2:DescribeInstances")["access_level"] == "List"
    assert tc.action_definition("ec2:TerminateInstances")["access_level"] == "Write"


# ---------------------------------------------------------------------------
# Each alteration breaks one rule; the matching check must notice.


def resource(t, name):
    return t["Resources"][name]["Properties"]


def launch_data(t):
    return resource(t, "LaunchTemplate")["LaunchTemplateData"]


def add_ssh_ingress(t):
    resource(t, "InstanceSecurityGroup")["SecurityGroupIngress"] = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}
    ]


def add_all_traffic_ingress(t):
    t["Resources"]["WideOpen"] = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {
            "GroupId": {"Ref": "InstanceSecurityGroup"},
            "IpProtocol": "-1",
            "CidrIp": "10.0.0.0/8",
        },
    }


def open_instances_to_the_world_on_80(t):
    resource(t, "InstanceIngressFromLoadBalancer").pop("SourceSecurityGroupId")
    resource(t, "InstanceIngressFromLoadBalancer")["CidrIp"] = "0.0.0.0/0"


def open_load_balancer_on_443(t):
    resource(t, "LoadBalancerSecurityGroup")["SecurityGroupIngress"].append(
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
    )


def drop_ipv6_ingress(t):
    rules = resource(t, "LoadBalancerSecurityGroup")["SecurityGroupIngress"]
    rules[:] = [r for r in rules if "CidrIpv6" not in r]


def let_instances_out(t):
    resource(t, "InstanceSecurityGroup")["SecurityGroupEgress"] = [
        {"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "CidrIp": "0.0.0.0/0"}
    ]


def drop_egress_placeholder(t):
    del resource(t, "InstanceSecurityGroup")["SecurityGroupEgress"]


def allow_ssh_in_network_acl(t):
    t["Resources"]["SshAclEntry"] = {
        "Type": "AWS::EC2::NetworkAclEntry",
        "Properties": {
            "NetworkAclId": "acl-1",
            "RuleNumber": 100,
            "Protocol": 6,
            "RuleAction": "allow",
            "Egress": False,
            "CidrBlock": "0.0.0.0/0",
            "PortRange": {"From": 22, "To": 22},
        },
    }


def make_imds_optional(t):
    launch_data(t)["MetadataOptions"]["HttpTokens"] = "optional"


def raise_hop_limit(t):
    launch_data(t)["MetadataOptions"]["HttpPutResponseHopLimit"] = 2


def unencrypt_root_volume(t):
    launch_data(t)["BlockDeviceMappings"][0]["Ebs"]["Encrypted"] = False


def add_key_pair(t):
    launch_data(t)["KeyName"] = "admin"


def add_instance_profile(t):
    launch_data(t)["IamInstanceProfile"] = {"Name": "admin"}


def add_bare_instance(t):
    t["Resources"]["Bastion"] = {
        "Type": "AWS::EC2::Instance",
        "Properties": {"ImageId": {"Ref": "ImageId"}},
    }


def give_instances_public_ip(t):
    launch_data(t)["NetworkInterfaces"][0]["AssociatePublicIpAddress"] = True


def map_public_ip_in_private_subnet(t):
    resource(t, "PrivateSubnetB")["MapPublicIpOnLaunch"] = True


def route_private_subnets_to_internet(t):
    t["Resources"]["PrivateDefaultRoute"] = {
        "Type": "AWS::EC2::Route",
        "Properties": {
            "RouteTableId": {"Ref": "PrivateRouteTable"},
            "DestinationCidrBlock": "0.0.0.0/0",
            "GatewayId": {"Ref": "InternetGateway"},
        },
    }


def put_group_in_one_subnet(t):
    resource(t, "AutoScalingGroup")["VPCZoneIdentifier"] = [{"Ref": "PrivateSubnetA"}]


def put_both_subnets_in_one_zone(t):
    resource(t, "PrivateSubnetB")["AvailabilityZone"] = {"Fn::Select": [0, {"Fn::GetAZs": ""}]}


def use_ec2_health_checks(t):
    resource(t, "AutoScalingGroup")["HealthCheckType"] = "EC2"


def drop_update_policy(t):
    del t["Resources"]["AutoScalingGroup"]["UpdatePolicy"]


def refresh_preferences(t):
    return t["Resources"]["AutoScalingGroup"]["UpdatePolicy"]["AutoScalingInstanceRefresh"][
        "Preferences"
    ]


def go_back_to_the_timed_rolling_update(t):
    # The update policy before the instance refresh: a fixed pause, never a look at health.
    t["Resources"]["AutoScalingGroup"]["UpdatePolicy"] = {
        "AutoScalingRollingUpdate": {
            "MaxBatchSize": 1,
            "MinInstancesInService": {"Ref": "MinSize"},
            "PauseTime": "PT5M",
            "WaitOnResourceSignals": False,
        }
    }


def terminate_before_launch(t):
    refresh_preferences(t)["MinHealthyPercentage"] = 90


def replace_everything_at_once(t):
    refresh_preferences(t)["MaxHealthyPercentage"] = 200


def refresh_without_alarms(t):
    del refresh_preferences(t)["AlarmSpecification"]


def gate_on_an_alarm_nobody_creates(t):
    refresh_preferences(t)["AlarmSpecification"]["Alarms"][0] = {
        "Fn::Sub": "${AWS::StackName}-typo"
    }


def gate_on_the_unhealthy_alarm_only(t):
    alarms = refresh_preferences(t)["AlarmSpecification"]["Alarms"]
    alarms[:] = [a for a in alarms if "unhealthy" in a["Fn::Sub"]]


def forget_the_alarm_dependency(t):
    del t["Resources"]["AutoScalingGroup"]["DependsOn"]


def fix_desired_capacity(t):
    resource(t, "AutoScalingGroup")["DesiredCapacity"] = {"Ref": "MinSize"}


def drop_scaling_policy(t):
    del t["Resources"]["CpuTargetTrackingPolicy"]


def drop_unhealthy_alarm(t):
    del t["Resources"]["UnhealthyHostsAlarm"]


def alarm_on_the_first_unhealthy_minute(t):
    resource(t, "UnhealthyHostsAlarm")["EvaluationPeriods"] = 1
    resource(t, "UnhealthyHostsAlarm")["DatapointsToAlarm"] = 1


def alarm_below_a_fixed_one(t):
    resource(t, "HealthyHostsBelowMinimumAlarm")["Threshold"] = 1


def alarm_on_another_target_group(t):
    resource(t, "HealthyHostsBelowMinimumAlarm")["Dimensions"][1]["Value"] = (
        "targetgroup/other/0123"
    )


def alarm_tells_nobody(t):
    del resource(t, "UnhealthyHostsAlarm")["AlarmActions"]


def alarm_silent_on_recovery(t):
    del resource(t, "HealthyHostsBelowMinimumAlarm")["OKActions"]


def leave_topic_unencrypted(t):
    del resource(t, "AlarmTopic")["KmsMasterKeyId"]


def encrypt_topic_with_aws_managed_key(t):
    # CloudWatch cannot publish to a topic under alias/aws/sns.
    resource(t, "AlarmTopic")["KmsMasterKeyId"] = "alias/aws/sns"


def subscribe_email_unconditionally(t):
    del t["Resources"]["AlarmEmailSubscription"]["Condition"]


def mail_a_fixed_address(t):
    resource(t, "AlarmEmailSubscription")["Endpoint"] = "ops@example.com"


def open_key_to_everyone(t):
    resource(t, "AlarmTopicKey")["KeyPolicy"]["Statement"][1]["Principal"] = "*"


def let_cloudwatch_administer_the_key(t):
    resource(t, "AlarmTopicKey")["KeyPolicy"]["Statement"][1]["Action"] = "kms:*"


def drop_confused_deputy_condition(t):
    del resource(t, "AlarmTopicKey")["KeyPolicy"]["Statement"][1]["Condition"]["StringEquals"]


def create_dns_records_always(t):
    del t["Resources"]["DnsRecordIpv6"]["Condition"]


def drop_aaaa_record(t):
    del t["Resources"]["DnsRecordIpv6"]


def point_alias_elsewhere(t):
    resource(t, "DnsRecordIpv4")["AliasTarget"]["DNSName"] = "elsewhere.example.com"


def keep_the_load_balancer_url_with_a_name(t):
    t["Outputs"]["NowUrl"]["Value"] = {"Fn::Sub": "http://${LoadBalancer.DNSName}/now"}


def drop_dns_rule(t):
    del t["Rules"]["DnsNameNeedsItsZone"]


def select_third_zone_always(t):
    del t["Resources"]["PrivateSubnetC"]["Condition"]
    t["Resources"]["PrivateSubnetC"].pop("DependsOn", None)


def listen_on_8080(t):
    resource(t, "HttpListener")["Port"] = 8080


def add_udp_listener(t):
    t["Resources"]["UdpListener"] = {
        "Type": "AWS::ElasticLoadBalancingV2::Listener",
        "Properties": {
            "LoadBalancerArn": {"Ref": "LoadBalancer"},
            "Protocol": "UDP",
            "Port": 80,
            "DefaultActions": [],
            "Tags": [{"Key": "StackName", "Value": {"Ref": "AWS::StackName"}}],
        },
    }


def check_health_on_root(t):
    resource(t, "TargetGroup")["HealthCheckPath"] = "/"


def accept_503_as_healthy(t):
    resource(t, "TargetGroup")["Matcher"]["HttpCode"] = "200-599"


def preserve_client_ips(t):
    attributes = resource(t, "TargetGroup")["TargetGroupAttributes"]
    next(a for a in attributes if a["Key"] == "preserve_client_ip.enabled")["Value"] = "true"


def leave_client_ip_preservation_at_its_default(t):
    attributes = resource(t, "TargetGroup")["TargetGroupAttributes"]
    attributes[:] = [a for a in attributes if a["Key"] != "preserve_client_ip.enabled"]


def allow_any_vpc_cidr_starting_like_a_private_one(t):
    # The pattern before RFC 1918 was enforced: 172.0.0.0/16 and 192.0.0.0/16 pass.
    t["Parameters"]["VpcCidrBlock"]["AllowedPattern"] = (
        r"^(10|172|192)\.\d{1,3}\.\d{1,3}\.\d{1,3}/(1[6-9]|2[01])$"
    )


def hard_code_a_public_vpc_cidr(t):
    resource(t, "Vpc")["CidrBlock"] = "100.64.0.0/16"


def allow_a_vpc_too_small_for_six_subnets(t):
    pattern = t["Parameters"]["VpcCidrBlock"]["AllowedPattern"]
    t["Parameters"]["VpcCidrBlock"]["AllowedPattern"] = pattern.replace("2[01]", "2[0-4]")


def add_an_instance_role(t):
    t["Resources"]["InstanceRole"] = {
        "Type": "AWS::IAM::Role",
        "Properties": {
            "AssumeRolePolicyDocument": {"Statement": []},
            "Tags": [{"Key": "StackName", "Value": {"Ref": "AWS::StackName"}}],
        },
    }


def add_a_user(t):
    t["Resources"]["ReviewerUser"] = {
        "Type": "AWS::IAM::User",
        "Properties": {"Tags": [{"Key": "StackName", "Value": {"Ref": "AWS::StackName"}}]},
    }


def dashboard_text(t):
    return resource(t, "Dashboard")["DashboardBody"]["Fn::Sub"]


def drop_the_dashboard(t):
    del t["Resources"]["Dashboard"]


def break_the_dashboard_json(t):
    dashboard_text(t)[0] = dashboard_text(t)[0].replace('"widgets":[', '"widgets":[[', 1)


def leave_out_active_flows(t):
    dashboard_text(t)[0] = dashboard_text(t)[0].replace('"ActiveFlowCount"', '"NewFlowCount"')


def show_another_load_balancers_flows(t):
    dashboard_text(t)[0] = dashboard_text(t)[0].replace(
        '"NewFlowCount","LoadBalancer","${Lb}"', '"NewFlowCount","LoadBalancer","net/other/0123"'
    )


def leave_out_an_alarm(t):
    dashboard_text(t)[0] = dashboard_text(t)[0].replace(
        ',"${HealthyHostsBelowMinimumAlarm.Arn}"', ""
    )


def stop_group_metrics(t):
    del resource(t, "AutoScalingGroup")["MetricsCollection"]


def collect_group_metrics_every_five_minutes(t):
    resource(t, "AutoScalingGroup")["MetricsCollection"] = [
        {"Granularity": "1Minute", "Metrics": ["GroupDesiredCapacity"]}
    ]


def put_a_widget_off_the_page(t):
    dashboard_text(t)[0] = dashboard_text(t)[0].replace('"x":16,"y":6', '"x":16,"y":12')


def stack_two_widgets(t):
    dashboard_text(t)[0] = dashboard_text(t)[0].replace('"x":8,"y":6', '"x":0,"y":6')


def require_a_second_parameter(t):
    del t["Parameters"]["InstanceType"]["Default"]


def untag_a_subnet(t):
    del resource(t, "PrivateSubnetA")["Tags"]


def untag_launched_volumes(t):
    specs = launch_data(t)["TagSpecifications"]
    specs[:] = [s for s in specs if s["ResourceType"] != "volume"]


def put_outputs_first(t):
    outputs = t.pop("Outputs")
    rest = dict(t)
    t.clear()
    t["Outputs"] = outputs
    t.update(rest)


ALTERATIONS = [
    (add_ssh_ingress, tc.check_nothing_on_port_22),
    (add_ssh_ingress, tc.check_ingress_only_http),
    (add_all_traffic_ingress, tc.check_nothing_on_port_22),
    (add_all_traffic_ingress, tc.check_ingress_only_http),
    (open_instances_to_the_world_on_80, tc.check_ingress_only_http),
    (open_load_balancer_on_443, tc.check_ingress_only_http),
    (drop_ipv6_ingress, tc.check_load_balancer_open_to_both_families),
    (let_instances_out, tc.check_egress_locked),
    (drop_egress_placeholder, tc.check_egress_locked),
    (allow_ssh_in_network_acl, tc.check_nothing_on_port_22),
    (make_imds_optional, tc.check_imdsv2_hop_limit_1),
    (raise_hop_limit, tc.check_imdsv2_hop_limit_1),
    (unencrypt_root_volume, tc.check_volumes_encrypted),
    (add_key_pair, tc.check_no_key_pair),
    (add_instance_profile, tc.check_no_instance_role),
    (add_bare_instance, tc.check_instances_only_from_launch_templates),
    (give_instances_public_ip, tc.check_no_public_ip_on_instances),
    (map_public_ip_in_private_subnet, tc.check_no_public_ip_on_instances),
    (route_private_subnets_to_internet, tc.check_instance_subnets_have_no_internet_route),
    (put_group_in_one_subnet, tc.check_asg_spans_zones),
    (put_both_subnets_in_one_zone, tc.check_asg_spans_zones),
    (use_ec2_health_checks, tc.check_asg_health_and_rollout),
    (drop_update_policy, tc.check_asg_health_and_rollout),
    (go_back_to_the_timed_rolling_update, tc.check_asg_health_and_rollout),
    (terminate_before_launch, tc.check_asg_health_and_rollout),
    (replace_everything_at_once, tc.check_asg_health_and_rollout),
    (refresh_without_alarms, tc.check_asg_health_and_rollout),
    (gate_on_an_alarm_nobody_creates, tc.check_asg_health_and_rollout),
    (gate_on_the_unhealthy_alarm_only, tc.check_asg_health_and_rollout),
    (forget_the_alarm_dependency, tc.check_asg_health_and_rollout),
    (fix_desired_capacity, tc.check_no_fixed_desired_capacity),
    (drop_scaling_policy, tc.check_no_fixed_desired_capacity),
    (drop_unhealthy_alarm, tc.check_alarms_reach_someone),
    (drop_unhealthy_alarm, tc.check_asg_health_and_rollout),
    (alarm_on_the_first_unhealthy_minute, tc.check_alarms_reach_someone),
    (alarm_below_a_fixed_one, tc.check_alarms_reach_someone),
    (alarm_on_another_target_group, tc.check_alarms_reach_someone),
    (alarm_tells_nobody, tc.check_alarms_reach_someone),
    (alarm_silent_on_recovery, tc.check_alarms_reach_someone),
    (leave_topic_unencrypted, tc.check_alarms_reach_someone),
    (encrypt_topic_with_aws_managed_key, tc.check_alarms_reach_someone),
    (subscribe_email_unconditionally, tc.check_alarms_reach_someone),
    (mail_a_fixed_address, tc.check_alarms_reach_someone),
    (open_key_to_everyone, tc.check_key_policies),
    (let_cloudwatch_administer_the_key, tc.check_key_policies),
    (drop_confused_deputy_condition, tc.check_key_policies),
    (create_dns_records_always, tc.check_dns_records_optional),
    (drop_aaaa_record, tc.check_dns_records_optional),
    (point_alias_elsewhere, tc.check_dns_records_optional),
    (keep_the_load_balancer_url_with_a_name, tc.check_dns_records_optional),
    (drop_dns_rule, tc.check_dns_parameters_go_together),
    (select_third_zone_always, tc.check_third_zone_only_when_asked),
    (listen_on_8080, tc.check_single_tcp_80_listener),
    (add_udp_listener, tc.check_single_tcp_80_listener),
    (check_health_on_root, tc.check_health_check_healthz),
    (accept_503_as_healthy, tc.check_health_check_healthz),
    (preserve_client_ips, tc.check_client_ips_not_preserved),
    (leave_client_ip_preservation_at_its_default, tc.check_client_ips_not_preserved),
    (allow_any_vpc_cidr_starting_like_a_private_one, tc.check_vpc_cidr_rfc1918),
    (hard_code_a_public_vpc_cidr, tc.check_vpc_cidr_rfc1918),
    (allow_a_vpc_too_small_for_six_subnets, tc.check_vpc_cidr_rfc1918),
    (add_an_instance_role, tc.check_no_iam),
    (add_a_user, tc.check_no_iam),
    (drop_the_dashboard, tc.check_dashboard),
    (break_the_dashboard_json, tc.check_dashboard),
    (leave_out_active_flows, tc.check_dashboard),
    (show_another_load_balancers_flows, tc.check_dashboard),
    (leave_out_an_alarm, tc.check_dashboard),
    (stop_group_metrics, tc.check_dashboard),
    (collect_group_metrics_every_five_minutes, tc.check_dashboard),
    (put_a_widget_off_the_page, tc.check_dashboard),
    (stack_two_widgets, tc.check_dashboard),
    (require_a_second_parameter, tc.check_only_image_id_required),
    (untag_a_subnet, tc.check_tags),
    (untag_launched_volumes, tc.check_tags),
    (put_outputs_first, tc.check_section_order),
]


@pytest.mark.parametrize(
    "alteration, check", ALTERATIONS, ids=[f"{a.__name__}-{c.__name__}" for a, c in ALTERATIONS]
)
def test_check_catches(alteration, check):
    broken = tc.mutated(TEMPLATE, alteration)
    assert tc.violations(check, broken), f"{check.__name__} missed {alteration.__name__}"
    # The alteration applies to a copy only.
    assert tc.violations(check, TEMPLATE) == []


def test_every_check_is_shown_to_fail():
    exercised = {check for _, check in ALTERATIONS}
    untested = [c.__name__ for c in tc.ALL_CHECKS if c not in exercised]
    assert untested == []


# ---------------------------------------------------------------------------
# Deployment limits and documentation that must follow the template.


def test_templates_leave_room_under_template_body():
    # create-stack --template-body takes at most 51,200 bytes (past that the
    # template must go through S3); each template keeps 20% of it free.
    assert tc.templates_over_size([tc.TEMPLATE_PATH, tc.ACCESS_PATH]) == []


def test_the_size_limit_catches_a_template_that_grew(tmp_path):
    grown = tmp_path / "nowd.yaml"
    # One byte over: a comment line of the right length.
    extra = tc.MAX_TEMPLATE_BYTES - tc.TEMPLATE_PATH.stat().st_size + 1
    grown.write_bytes(tc.TEMPLATE_PATH.read_bytes() + b"#" * (extra - 1) + b"\n")
    assert tc.templates_over_size([tc.TEMPLATE_PATH, grown]) == [
        f"{grown}: {tc.MAX_TEMPLATE_BYTES + 1} bytes"
    ]


def test_dashboard_shows_each_widget_once():
    res = tc.resources(TEMPLATE, scenario())
    widgets = tc.dashboard_body(res["Dashboard"], TEMPLATE)["widgets"]
    titles = [w["properties"]["title"] for w in widgets]
    assert titles == [
        "Hosts passing /healthz",
        "Flows",
        "Processed bytes",
        "Instances",
        "CPU (percent)",
        "Alarms",
    ]
    # The lines the annotations draw are the parameters' values.
    assert widgets[0]["properties"]["annotations"]["horizontal"][0]["value"] == 2
    assert widgets[4]["properties"]["annotations"]["horizontal"][0]["value"] == 10
    assert TEMPLATE["Outputs"]["DashboardUrl"]["Value"]["Fn::Sub"][0].endswith(
        "#dashboards/dashboard/${Dashboard}"
    )
