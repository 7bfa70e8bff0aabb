"""Rules for access.yaml: who may assume each role, what each role may do,
and the reviewer's read-only view of the service stack.

Like template_checks.py, each check takes the parsed template and the truth
value of every condition and returns its violations; test_access.py runs
them under every combination of conditions, on the real template and on
broken copies.
"""

from __future__ import annotations

import fnmatch
import functools
import json
import re

import template_checks as tc
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER
from template_checks import as_list, of_type, props, referenced, resources, sub_text

BUILD_POLICY_PATH = tc.TEMPLATE_PATH.parent.parent / "packer" / "iam" / "build-policy.json"

OIDC_ISSUER = "token.actions.githubusercontent.com"
# The subject each GitHub role accepts, after "repo:<repository>:".
SUBJECTS = {
    "BuildRole": "ref:refs/heads/main",
    "ChangeSetRole": "ref:refs/heads/main",
    "DeployRole": "environment:production",
}
# The repository in a subject is one of these parameters, never a literal.
SUBJECT_PARAMETERS = {"GitHubRepository", "GitHubSubjectRepository"}
SERVICE_ROLE = "CloudFormationServiceRole"
SERVICE_STACK_ARN = (
    "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
    ":stack/${ServiceStackName}/*"
)

# What each change-set role may call, and nothing else (each must have all).
# The plan role makes and shows change sets (on main, before any approval);
# only the deploy role, behind the production environment, runs them.
CHANGE_SET_ROLES = {
    "ChangeSetRole": {
        "cloudformation:CreateChangeSet",
        "cloudformation:DescribeChangeSet",
        "cloudformation:DescribeStacks",
        "ec2:DescribeImages",
        "iam:PassRole",
    },
    "DeployRole": {
        "cloudformation:DescribeChangeSet",
        "cloudformation:ExecuteChangeSet",
        "cloudformation:DescribeStacks",
        "cloudformation:DescribeStackEvents",
        "cloudformation:DescribeStackResources",
    },
}
# What changes a stack; never granted to a role a job assumes before approval.
RUNS_A_STACK = {
    "cloudformation:ExecuteChangeSet",
    "cloudformation:DeleteChangeSet",
    "cloudformation:CreateStack",
    "cloudformation:UpdateStack",
    "cloudformation:DeleteStack",
}

# Permissions that the resource handlers of nowd.yaml's types declare and
# the service role leaves out, each with the reason it is not needed.
NOT_NEEDED = {
    "iam:PassRole": "no instance profile, no SNS delivery-status role",
    "iam:GetRole": "no SNS delivery-status role",
    "ssm:Get*": "ImageId is an AMI id, not an SSM parameter",
    "managed-fleets:*": "the group is not a managed fleet",
    "vpc-lattice:*": "no VPC Lattice target groups",
    "cognito-idp:DescribeUserPoolClient": "an ALB's Cognito action; this is an NLB",
    "autoscaling:AttachLoadBalancers": "Classic Load Balancers only",
    "autoscaling:DetachLoadBalancers": "Classic Load Balancers only",
    "autoscaling:PutLifecycleHook": "no lifecycle hooks",
    "autoscaling:DeleteLifecycleHook": "no lifecycle hooks",
    "autoscaling:PutNotificationConfiguration": "no group notifications",
    "autoscaling:DeleteNotificationConfiguration": "no group notifications",
    "ec2:AttachVpnGateway": "an internet gateway only",
    "ec2:DetachVpnGateway": "an internet gateway only",
    "ec2:AllocateIpamPoolCidr": "no IPAM",
    "ec2:CreateVpcEncryptionControl": "no VPC encryption control",
    "ec2:ModifyVpcTenancy": "default tenancy",
    "elasticloadbalancing:ModifyCapacityReservation": "no capacity reservation",
    "elasticloadbalancing:ModifyIpPools": "no IPAM pools",
    "sns:PutDataProtectionPolicy": "no data protection policy",
}
# Allowed although no handler declares it, with the reason.
EXTRA = {
    "autoscaling:RollbackInstanceRefresh": "a failed rollout's rollback (UpdatePolicy)",
}


def load_access() -> dict:
    return tc.load_template(tc.ACCESS_PATH)


def load_build_policy() -> dict:
    return json.loads(BUILD_POLICY_PATH.read_text())


def role_statements(res: dict, role: str) -> list[dict]:
    return [
        st
        for policy in props(res.get(role, {})).get("Policies", [])
        for st in as_list(policy["PolicyDocument"]["Statement"])
    ]


def trust_statements(res: dict, role: str) -> list[dict]:
    return as_list(props(res[role])["AssumeRolePolicyDocument"]["Statement"])


def allowed_actions(statements: list[dict]) -> set[str]:
    return {
        a for st in statements if st.get("Effect") == "Allow" for a in as_list(st.get("Action", []))
    }


# --------------------------------------------------------------- trust


def check_trust_pinned(template: dict, scenario: dict) -> list[str]:
    """GitHub roles: sts:AssumeRoleWithWebIdentity from this stack's (or the
    named) provider, StringEquals on aud = sts.amazonaws.com and on sub =
    repo:<repository parameter>:<this role's subject>, nothing looser. The
    service role: CloudFormation only. No other role, no other principal."""
    res = resources(template, scenario)
    problems = []
    roles = of_type(res, "AWS::IAM::Role")
    github = "HasGitHub" in scenario and scenario["HasGitHub"]
    for name in SUBJECTS:
        if (name in roles) != github:
            problems.append(f"{name}: exists={name in roles} with HasGitHub={github}")
    for name in roles:
        for st in trust_statements(res, name):
            where = f"{name} trust"
            principal = st.get("Principal", {})
            if st.get("Effect") != "Allow":
                continue
            if name == SERVICE_ROLE:
                if (
                    principal != {"Service": "cloudformation.amazonaws.com"}
                    or st.get("Action") != "sts:AssumeRole"
                ):
                    problems.append(f"{where}: {principal} {st.get('Action')}, not CloudFormation")
                continue
            if name not in SUBJECTS:
                problems.append(f"{where}: a role this template should not have")
                continue
            provider = principal.get("Federated") if isinstance(principal, dict) else None
            if set(principal) != {"Federated"} or referenced(provider) not in (
                "GitHubOidcProvider",
                "OidcProviderArn",
            ):
                problems.append(f"{where}: principal {principal} is not the GitHub provider")
            if st.get("Action") != "sts:AssumeRoleWithWebIdentity":
                problems.append(f"{where}: action {st.get('Action')}")
            condition = st.get("Condition", {})
            if set(condition) != {"StringEquals"}:
                problems.append(
                    f"{where}: condition operators {sorted(condition)}, expected StringEquals only"
                )
            equals = condition.get("StringEquals", {})
            if set(equals) != {f"{OIDC_ISSUER}:aud", f"{OIDC_ISSUER}:sub"}:
                problems.append(f"{where}: conditions on {sorted(equals)}, expected aud and sub")
            if equals.get(f"{OIDC_ISSUER}:aud") != "sts.amazonaws.com":
                problems.append(f"{where}: aud is {equals.get(f'{OIDC_ISSUER}:aud')}")
            problems += subject_problems(
                where, equals.get(f"{OIDC_ISSUER}:sub"), SUBJECTS[name], scenario
            )
    return problems


def subject_problems(where: str, sub, expected_tail: str, scenario: dict) -> list[str]:
    if not (isinstance(sub, dict) and isinstance(sub.get("Fn::Sub"), list)):
        return [f"{where}: sub {sub} is not repo:${{Repo}}:{expected_tail} with Repo a parameter"]
    text, variables = sub["Fn::Sub"]
    problems = []
    if text != f"repo:${{Repo}}:{expected_tail}":
        problems.append(f"{where}: sub is {text}, expected repo:${{Repo}}:{expected_tail}")
    if any(c in text for c in "*?"):
        problems.append(f"{where}: wildcard in sub {text}")
    repo = referenced(variables.get("Repo"))
    wanted = (
        "GitHubSubjectRepository" if scenario.get("HasSubjectRepository") else "GitHubRepository"
    )
    if repo != wanted:
        problems.append(
            f"{where}: sub names {repo} with "
            f"HasSubjectRepository={scenario.get('HasSubjectRepository')}"
        )
    return problems


def check_subject_parameters_take_no_wildcard(template: dict, scenario: dict) -> list[str]:
    """A subject parameter cannot smuggle in a wildcard or another claim."""
    samples = [
        "*",
        "octo/*",
        "*/repo",
        "octo/repo:*",
        "octo/repo:ref:refs/heads/*",
        "octo@1/repo@*",
        "octo@1/*",
        "octo/re?o",
        "octo/repo:environment:production",
    ]
    problems = []
    for name in sorted(SUBJECT_PARAMETERS):
        pattern = template.get("Parameters", {}).get(name, {}).get("AllowedPattern")
        if not pattern:
            problems.append(f"{name}: no AllowedPattern")
            continue
        for sample in samples:
            if re.fullmatch(pattern, sample):
                problems.append(f"{name}: accepts {sample!r}")
    return problems


# ---------------------------------------------------------- build role


def check_build_role_is_the_build_policy(template: dict, scenario: dict) -> list[str]:
    """The build role holds packer/iam/build-policy.json's statements, as they
    stand there, and nothing else."""
    res = resources(template, scenario)
    if "BuildRole" not in res:
        return []
    policies = props(res["BuildRole"]).get("Policies", [])
    problems = []
    if props(res["BuildRole"]).get("ManagedPolicyArns"):
        problems.append("BuildRole: managed policies besides the build policy")
    if len(policies) != 1:
        return [
            *problems,
            f"BuildRole: {len(policies)} inline policies, expected the build policy alone",
        ]
    inline = policies[0]["PolicyDocument"]["Statement"]
    wanted = load_build_policy()["Statement"]
    if inline != wanted:
        missing = [s.get("Sid") for s in wanted if s not in inline]
        extra = [s.get("Sid") for s in inline if s not in wanted]
        problems.append(
            f"BuildRole: differs from build-policy.json (missing {missing}, extra {extra})"
        )
    return problems


# ------------------------------------------------ plan and deploy roles


def check_change_set_roles_limited_to_the_service_stack(
    template: dict, scenario: dict
) -> list[str]:
    """The plan and deploy roles: their own actions only (CHANGE_SET_ROLES),
    CloudFormation on the service stack only, change sets created only with
    the service role; DescribeImages in this region; PassRole of the service
    role to CloudFormation only. No IAM user, no other stack. The plan role,
    which a job on main assumes before any approval, runs nothing."""
    res = resources(template, scenario)
    problems = []
    service_role = {"Fn::GetAtt": [SERVICE_ROLE, "Arn"]}
    for role, allowed in CHANGE_SET_ROLES.items():
        if role not in res:
            continue
        if props(res[role]).get("ManagedPolicyArns"):
            problems.append(f"{role}: managed policies")
        for st in role_statements(res, role):
            problems += change_set_statement_problems(role, st, allowed, service_role)
        granted = allowed_actions(role_statements(res, role))
        missing = allowed - granted
        if missing:
            problems.append(f"{role}: cannot {sorted(missing)}")
        if role == "ChangeSetRole" and granted & RUNS_A_STACK:
            problems.append(f"{role}: may {sorted(granted & RUNS_A_STACK)} before approval")
    return problems


def change_set_statement_problems(
    role: str, st: dict, allowed: set[str], service_role: dict
) -> list[str]:
    where = f"{role}#{st.get('Sid')}"
    if st.get("Effect") != "Allow":
        return []
    problems = []
    if "NotAction" in st or "NotResource" in st:
        problems.append(f"{where}: grants by exclusion")
    actions = as_list(st.get("Action", []))
    equals = st.get("Condition", {}).get("StringEquals", {})
    for action in actions:
        if action not in allowed:
            problems.append(f"{where}: {action} is not one of {role}'s actions")
    resources_ = as_list(st.get("Resource"))
    on_the_stack = [sub_text(r) for r in resources_] == [SERVICE_STACK_ARN]
    if any(a.startswith("cloudformation:") for a in actions) and not on_the_stack:
        problems.append(f"{where}: on {resources_}, not the service stack only")
    as_service_role = equals.get("cloudformation:RoleArn") == service_role
    if "cloudformation:CreateChangeSet" in actions and not as_service_role:
        problems.append(f"{where}: change sets may run without the service role")
    if "iam:PassRole" in actions:
        if resources_ != [service_role] or len(actions) != 1:
            problems.append(f"{where}: passes {resources_}, not the service role alone")
        if equals.get("iam:PassedToService") != "cloudformation.amazonaws.com":
            problems.append(f"{where}: the role may be passed to any service")
    in_region = equals.get("aws:RequestedRegion") == {"Ref": "AWS::Region"}
    if "ec2:DescribeImages" in actions and not in_region:
        problems.append(f"{where}: DescribeImages not pinned to this region")
    return problems


# -------------------------------------------------------- service role


def service_types() -> set[str]:
    nowd = tc.load_template()
    return {r["Type"] for r in nowd["Resources"].values()}


@functools.cache
def handler_permissions(types: frozenset[str]) -> frozenset[str]:
    """What CloudFormation's handlers for these types call, from the resource
    schemas cfn-lint ships (handlers.{create,read,update,delete}.permissions)."""
    found = set()
    for type_name in types:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(tc.SCHEMA_REGION, type_name).schema
        for handler in ("create", "read", "update", "delete"):
            found |= set(schema.get("handlers", {}).get(handler, {}).get("permissions", []))
    return frozenset(found)


def covered(action: str, granted: set[str]) -> bool:
    return any(fnmatch.fnmatchcase(action, g) for g in granted)


def check_service_role_covers_the_service_stack(
    template: dict, scenario: dict, service_stack_types: set[str] | None = None
) -> list[str]:
    """The service role allows every permission the handlers of nowd.yaml's
    resource types declare, save NOT_NEEDED, and nothing no handler declares,
    save EXTRA."""
    types = frozenset(service_stack_types if service_stack_types is not None else service_types())
    needed = handler_permissions(types)
    res = resources(template, scenario)
    granted = allowed_actions(role_statements(res, SERVICE_ROLE))
    problems = []
    for permission in sorted(needed):
        if covered(permission, set(NOT_NEEDED)):
            continue
        if permission not in granted and not covered(permission, granted):
            problems.append(
                f"{SERVICE_ROLE}: cannot {permission}, which a handler of nowd.yaml calls"
            )
    for action in sorted(granted):
        if action in EXTRA or action in needed:
            continue
        problems.append(f"{SERVICE_ROLE}: {action} is declared by no handler of nowd.yaml")
    return problems


PSEUDO = {
    "${AWS::Partition}": "PARTITION",
    "${AWS::Region}": "REGION",
    "${AWS::AccountId}": "ACCOUNT",
}


def arn_fields(text: str) -> list[str]:
    """arn, partition, service, region, account, rest; the pseudo parameters
    as PARTITION, REGION and ACCOUNT."""
    for pseudo, token in PSEUDO.items():
        text = text.replace(pseudo, token)
    return text.split(":", 5)


def check_service_role_scoped(template: dict, scenario: dict) -> list[str]:
    """Writes name ARNs of this partition, region and account (or the global
    Route 53 and IAM forms), never "*" unless the action takes no resource,
    and then under a condition; IAM only for the two service-linked roles."""
    res = resources(template, scenario)
    problems = []
    for st in role_statements(res, SERVICE_ROLE):
        where = f"{SERVICE_ROLE}#{st.get('Sid')}"
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{where}: grants by exclusion")
        actions = as_list(st.get("Action", []))
        condition = st.get("Condition", {})
        star = tc.is_everything(st.get("Resource"))
        for action in actions:
            definition = tc.action_definition(action)
            wildcard = "*" in action
            if wildcard and not action.split(":")[1].startswith(("Describe", "Get")):
                problems.append(f"{where}: wildcard {action} is not reads only")
            if definition is None and not wildcard:
                problems.append(f"{where}: {action} is not a known action")
                continue
            if star and definition is not None:
                if any(k for k in definition["resource_types"]):
                    problems.append(f"{where}: {action} takes a resource but is given '*'")
                if definition["access_level"] not in ("Read", "List") and not condition:
                    problems.append(
                        f"{where}: {action} ({definition['access_level']}) on '*' "
                        "without a condition"
                    )
            if action.startswith("iam:") and action != "iam:CreateServiceLinkedRole":
                problems.append(f"{where}: {action}: the service stack needs no IAM")
        if "iam:CreateServiceLinkedRole" in actions:
            services = set(as_list(condition.get("StringEquals", {}).get("iam:AWSServiceName", [])))
            if not services or not services <= {
                "autoscaling.amazonaws.com",
                "elasticloadbalancing.amazonaws.com",
            }:
                problems.append(
                    f"{where}: service-linked roles for {sorted(services) or 'any service'}"
                )
        regional = any(a.split(":")[0] != "route53" for a in actions)
        in_region = condition.get("StringEquals", {}).get("aws:RequestedRegion") == {
            "Ref": "AWS::Region"
        }
        if star and regional and not in_region:
            problems.append(f"{where}: '*' not pinned to this region")
        for resource in as_list(st.get("Resource")):
            if resource == "*" or tc.referenced(resource):
                continue
            text = sub_text(resource) or str(resource)
            fields = arn_fields(text)
            if len(fields) < 6 or fields[1] != "PARTITION":
                problems.append(f"{where}: {text} is not an ARN of this partition")
                continue
            service, region, account = fields[2], fields[3], fields[4]
            global_arn = service in ("route53", "iam") or text.endswith(
                ":dashboard/${ServiceStackName}"
            )
            if region not in ("REGION", "") or (
                region == "" and not global_arn and ":image/" not in text
            ):
                problems.append(f"{where}: {text} reaches other regions")
            if account not in ("ACCOUNT", "") or (
                account == "" and service not in ("route53", "ec2")
            ):
                problems.append(f"{where}: {text} reaches other accounts")
    return problems


# ------------------------------------------------------------- reviewer

REVIEWER_RESOURCES = ("ReviewerGroup", "ReviewerReadOnlyPolicy", "ReviewerUser")


def reviewer_view(template: dict) -> dict:
    """The template with only the reviewer's resources, for the read-only
    rules of template_checks.py."""
    view = dict(template)
    view["Resources"] = {n: r for n, r in template["Resources"].items() if n in REVIEWER_RESOURCES}
    return view


def check_reviewer_read_only(template: dict, scenario: dict) -> list[str]:
    return tc.check_iam_read_only(reviewer_view(template), scenario)


def check_reviewer_scoped_where_possible(template: dict, scenario: dict) -> list[str]:
    return tc.check_iam_scoped_where_possible(reviewer_view(template), scenario)


def reviewer_statements(res: dict) -> list[tuple[str, dict]]:
    return tc.statements({n: r for n, r in res.items() if n in REVIEWER_RESOURCES})


def check_reviewer_reads_the_service_stack_only(template: dict, scenario: dict) -> list[str]:
    """Stack reads on the service stack's ARN; instance reads on instances
    CloudFormation tagged with its name; alarms, dashboard and topic by the
    names nowd.yaml gives them."""
    res = resources(template, scenario)
    alarm_suffixes = (
        ":alarm:${ServiceStackName}-*",
        ":alarm:TargetTracking-${ServiceStackName}-AutoScalingGroup-*",
        ":dashboard/${ServiceStackName}",
    )
    problems = []
    for where, st in reviewer_statements(res):
        actions = as_list(st.get("Action", []))
        unscoped = tc.is_everything(st.get("Resource"))
        texts = [sub_text(r) or str(r) for r in as_list(st.get("Resource"))]
        if any(a.startswith("cloudformation:") for a in actions) and texts != [SERVICE_STACK_ARN]:
            problems.append(f"{where}: CloudFormation reads on {texts}, not the service stack")
        if any(a.startswith("ec2:") for a in actions) and not unscoped:
            tag = (
                st.get("Condition", {})
                .get("StringEquals", {})
                .get("aws:ResourceTag/aws:cloudformation:stack-name")
            )
            if tag != {"Ref": "ServiceStackName"}:
                problems.append(
                    f"{where}: instance reads not limited to the service stack's instances"
                )
        if unscoped:
            continue
        for text in texts:
            if any(a.startswith("cloudwatch:") for a in actions) and not text.endswith(
                alarm_suffixes
            ):
                problems.append(f"{where}: CloudWatch reads on {text}")
            if any(a.startswith("sns:") for a in actions) and not text.endswith(
                ":${ServiceStackName}-alarms"
            ):
                problems.append(f"{where}: topic reads on {text}")
    return problems


def check_only_the_reviewer_is_a_user(template: dict, scenario: dict) -> list[str]:
    """One IAM user at most, the reviewer, on request, in the reviewer group
    only; no access keys and no managed policies anywhere."""
    res = resources(template, scenario)
    problems = []
    users = of_type(res, "AWS::IAM::User")
    expected = {"ReviewerUser"} if scenario.get("HasReviewerUser") else set()
    if set(users) != expected:
        problems.append(
            f"users {sorted(users)} with HasReviewerUser={scenario.get('HasReviewerUser')}"
        )
    for name, user in users.items():
        groups = [referenced(g) for g in props(user).get("Groups", [])]
        if (
            groups != ["ReviewerGroup"]
            or props(user).get("Policies")
            or props(user).get("ManagedPolicyArns")
        ):
            problems.append(f"{name}: permissions beyond the reviewer group")
    for name, r in res.items():
        if r["Type"] in ("AWS::IAM::AccessKey", "AWS::IAM::UserToGroupAddition"):
            problems.append(f"{name}: {r['Type']}")
        if r["Type"].startswith("AWS::IAM::") and props(r).get("ManagedPolicyArns"):
            problems.append(f"{name}: managed policies {props(r)['ManagedPolicyArns']}")
    return problems


ALL_CHECKS = [
    check_trust_pinned,
    check_subject_parameters_take_no_wildcard,
    check_build_role_is_the_build_policy,
    check_change_set_roles_limited_to_the_service_stack,
    check_service_role_covers_the_service_stack,
    check_service_role_scoped,
    check_reviewer_read_only,
    check_reviewer_scoped_where_possible,
    check_reviewer_reads_the_service_stack_only,
    check_only_the_reviewer_is_a_user,
    tc.check_secrets_no_echo,
    tc.check_tags,
    tc.check_section_order,
]
