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


def test_every_condition_combination_is_checked():
    # Two zones or three, with or without the reviewer user.
    assert len(tc.scenarios(TEMPLATE)) == 4


def test_three_zones_add_a_third_subnet_to_the_group():
    counts = set()
    for scenario in tc.scenarios(TEMPLATE):
        res = tc.resources(TEMPLATE, scenario)
        asg = res["AutoScalingGroup"]
        counts.add((scenario["UseThirdZone"], len(tc.subnet_ids(asg))))
        lb = res["LoadBalancer"]
        assert len(tc.props(lb)["Subnets"]) == len(tc.subnet_ids(asg))
    assert counts == {(False, 2), (True, 3)}


def test_reviewer_policy_uses_only_expected_verbs():
    """The actions, sorted by verb, as a reviewer would read them."""
    res = tc.resources(TEMPLATE, {"UseThirdZone": False, "HasReviewerUser": True})
    verbs = set()
    for _, statement in tc.statements(res):
        for action in statement["Action"]:
            name = action.split(":")[1]
            verbs.add(next((v for v in tc.READ_VERBS if name.startswith(v)), action))
    assert verbs == {"Describe", "Get", "List", "iam:ChangePassword"}


def test_reviewer_user_exists_only_on_request():
    without = tc.resources(TEMPLATE, {"UseThirdZone": False, "HasReviewerUser": False})
    with_user = tc.resources(TEMPLATE, {"UseThirdZone": False, "HasReviewerUser": True})
    assert "ReviewerGroup" in without and "ReviewerUser" not in without
    assert "ReviewerUser" in with_user
    assert TEMPLATE["Outputs"]["ReviewerUserName"]["Condition"] == "HasReviewerUser"


def test_outputs():
    outputs = TEMPLATE["Outputs"]
    assert outputs["NowUrl"]["Value"] == {"Fn::Sub": "http://${LoadBalancer.DNSName}/now"}
    for name in ("LoadBalancerDnsName", "ReviewerGroupName", "ReviewerUserName", "ConsoleSignInUrl"):
        assert name in outputs


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


def reviewer_statements(t):
    return resource(t, "ReviewerReadOnlyPolicy")["PolicyDocument"]["Statement"]


def statement(t, sid):
    return next(s for s in reviewer_statements(t) if s["Sid"] == sid)


def add_ssh_ingress(t):
    resource(t, "InstanceSecurityGroup")["SecurityGroupIngress"] = [
        {"IpProtocol": "tcp", "FromPort": 22, "ToPort": 22, "CidrIp": "0.0.0.0/0"}
    ]


def add_all_traffic_ingress(t):
    t["Resources"]["WideOpen"] = {
        "Type": "AWS::EC2::SecurityGroupIngress",
        "Properties": {"GroupId": {"Ref": "InstanceSecurityGroup"}, "IpProtocol": "-1",
                       "CidrIp": "10.0.0.0/8"},
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
        "Properties": {"NetworkAclId": "acl-1", "RuleNumber": 100, "Protocol": 6,
                       "RuleAction": "allow", "Egress": False, "CidrBlock": "0.0.0.0/0",
                       "PortRange": {"From": 22, "To": 22}},
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
    t["Resources"]["Bastion"] = {"Type": "AWS::EC2::Instance", "Properties": {"ImageId": {"Ref": "ImageId"}}}


def give_instances_public_ip(t):
    launch_data(t)["NetworkInterfaces"][0]["AssociatePublicIpAddress"] = True


def map_public_ip_in_private_subnet(t):
    resource(t, "PrivateSubnetB")["MapPublicIpOnLaunch"] = True


def route_private_subnets_to_internet(t):
    t["Resources"]["PrivateDefaultRoute"] = {
        "Type": "AWS::EC2::Route",
        "Properties": {"RouteTableId": {"Ref": "PrivateRouteTable"},
                       "DestinationCidrBlock": "0.0.0.0/0",
                       "GatewayId": {"Ref": "InternetGateway"}},
    }


def put_group_in_one_subnet(t):
    resource(t, "AutoScalingGroup")["VPCZoneIdentifier"] = [{"Ref": "PrivateSubnetA"}]


def put_both_subnets_in_one_zone(t):
    resource(t, "PrivateSubnetB")["AvailabilityZone"] = {"Fn::Select": [0, {"Fn::GetAZs": ""}]}


def use_ec2_health_checks(t):
    resource(t, "AutoScalingGroup")["HealthCheckType"] = "EC2"


def drop_update_policy(t):
    del t["Resources"]["AutoScalingGroup"]["UpdatePolicy"]


def listen_on_8080(t):
    resource(t, "HttpListener")["Port"] = 8080


def add_udp_listener(t):
    t["Resources"]["UdpListener"] = {
        "Type": "AWS::ElasticLoadBalancingV2::Listener",
        "Properties": {"LoadBalancerArn": {"Ref": "LoadBalancer"}, "Protocol": "UDP", "Port": 80,
                       "DefaultActions": [], "Tags": [{"Key": "StackName", "Value": {"Ref": "AWS::StackName"}}]},
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


def allow_terminate_instances(t):
    statement(t, "ReadThisStacksInstances")["Action"].append("ec2:TerminateInstances")


def allow_wildcard_action(t):
    statement(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Action"].append("s3:Get*")


def allow_reading_secrets(t):
    statement(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Action"].append(
        "secretsmanager:GetSecretValue"
    )


def let_anyone_change_any_password(t):
    statement(t, "ChangeOwnPassword")["Resource"] = "*"


def give_stack_reads_star(t):
    statement(t, "ReadThisStack")["Resource"] = "*"


def put_scopable_action_under_star(t):
    statement(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Action"].append(
        "ec2:GetConsoleOutput"
    )


def drop_region_pin(t):
    del statement(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Condition"]


def drop_instance_tag_condition(t):
    del statement(t, "ReadThisStacksInstances")["Condition"]


def attach_read_only_access(t):
    resource(t, "ReviewerGroup")["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]


def echo_the_password(t):
    t["Parameters"]["ReviewerPassword"]["NoEcho"] = False


def output_the_password(t):
    t["Outputs"]["Oops"] = {"Value": {"Ref": "ReviewerPassword"}}


def skip_password_reset(t):
    resource(t, "ReviewerUser")["LoginProfile"]["PasswordResetRequired"] = False


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
    (listen_on_8080, tc.check_single_tcp_80_listener),
    (add_udp_listener, tc.check_single_tcp_80_listener),
    (check_health_on_root, tc.check_health_check_healthz),
    (accept_503_as_healthy, tc.check_health_check_healthz),
    (preserve_client_ips, tc.check_client_ips_not_preserved),
    (leave_client_ip_preservation_at_its_default, tc.check_client_ips_not_preserved),
    (allow_any_vpc_cidr_starting_like_a_private_one, tc.check_vpc_cidr_rfc1918),
    (hard_code_a_public_vpc_cidr, tc.check_vpc_cidr_rfc1918),
    (allow_a_vpc_too_small_for_six_subnets, tc.check_vpc_cidr_rfc1918),
    (allow_terminate_instances, tc.check_iam_read_only),
    (allow_terminate_instances, tc.check_iam_scoped_where_possible),
    (allow_wildcard_action, tc.check_iam_read_only),
    (allow_reading_secrets, tc.check_iam_read_only),
    (let_anyone_change_any_password, tc.check_iam_read_only),
    (let_anyone_change_any_password, tc.check_iam_scoped_where_possible),
    (give_stack_reads_star, tc.check_iam_scoped_where_possible),
    (give_stack_reads_star, tc.check_stack_reads_scoped_to_this_stack),
    (put_scopable_action_under_star, tc.check_iam_scoped_where_possible),
    (drop_region_pin, tc.check_iam_scoped_where_possible),
    (drop_instance_tag_condition, tc.check_stack_reads_scoped_to_this_stack),
    (attach_read_only_access, tc.check_iam_read_only),
    (echo_the_password, tc.check_secrets_no_echo),
    (output_the_password, tc.check_secrets_no_echo),
    (skip_password_reset, tc.check_secrets_no_echo),
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


def test_template_fits_template_body():
    # create-stack --template-body takes at most 51,200 bytes; past that the
    # template would have to be uploaded to S3 first.
    assert tc.TEMPLATE_PATH.stat().st_size < 51_200


def unscoped_actions_in_readme() -> set[str]:
    readme = (tc.TEMPLATE_PATH.parent / "README.md").read_text()
    section = readme.split("### API calls that allow no resource-level scoping", 1)[1]
    section = section.split("Left out on purpose", 1)[0]
    prefixes = {
        "Elastic Load Balancing": "elasticloadbalancing",
        "EC2 Auto Scaling": "autoscaling",
        "EC2": "ec2",
        "IAM": "iam",
    }
    actions = set()
    for bullet in section.split("\n- ")[1:]:
        service = next(p for label, p in prefixes.items() if bullet.startswith(label))
        names = bullet.split(":", 1)[1].replace("\n", " ")
        actions |= {f"{service}:{n}" for n in re.findall(r"`([A-Za-z]+)`", names)}
    return actions


def test_readme_lists_exactly_the_unscoped_actions():
    res = tc.resources(TEMPLATE, {"UseThirdZone": False, "HasReviewerUser": True})
    in_template = {
        action
        for _, st in tc.statements(res)
        if tc.is_everything(st.get("Resource"))
        for action in st["Action"]
    }
    assert unscoped_actions_in_readme() == in_template
