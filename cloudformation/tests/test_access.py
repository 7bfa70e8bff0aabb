"""Policy tests for access.yaml: the template obeys every rule in
access_checks.py under every combination of its conditions, and each rule
catches a template altered to break it."""

from __future__ import annotations

import re

import access_checks as ac
import pytest
import template_checks as tc

TEMPLATE = ac.load_access()


@pytest.mark.parametrize("check", ac.ALL_CHECKS, ids=lambda c: c.__name__)
def test_access_template_obeys(check):
    assert tc.violations(check, TEMPLATE) == []


def scenario(**true):
    """A scenario with every condition false but those named."""
    return {name: name in true for name in TEMPLATE["Conditions"]}


def test_every_condition_combination_is_checked():
    assert set(TEMPLATE["Conditions"]) == {
        "HasGitHub",
        "HasSubjectRepository",
        "CreateOidcProvider",
        "HasReviewerUser",
    }
    assert len(tc.scenarios(TEMPLATE)) == 16


def test_interface_names():
    # The deploy script and the workflows use these names.
    assert set(TEMPLATE["Parameters"]) == {
        "GitHubRepository",
        "GitHubSubjectRepository",
        "OidcProviderArn",
        "ServiceStackName",
        "CreateReviewerUser",
        "ReviewerPassword",
    }
    assert TEMPLATE["Parameters"]["ServiceStackName"]["Default"] == "nowd"
    assert TEMPLATE["Parameters"]["CreateReviewerUser"]["Default"] == "false"
    assert {
        "BuildRoleArn",
        "ChangeSetRoleArn",
        "DeployRoleArn",
        "CloudFormationServiceRoleArn",
        "ReviewerUserName",
        "ConsoleSignInUrl",
    } <= set(TEMPLATE["Outputs"])


def test_github_roles_and_provider_exist_only_when_asked():
    nothing = tc.resources(TEMPLATE, scenario())
    assert "GitHubOidcProvider" not in nothing and "BuildRole" not in nothing
    assert "CloudFormationServiceRole" in nothing and "ReviewerGroup" in nothing
    own_provider = tc.resources(TEMPLATE, scenario(HasGitHub=True, CreateOidcProvider=True))
    assert {"GitHubOidcProvider", "BuildRole", "ChangeSetRole", "DeployRole"} <= set(own_provider)
    existing = tc.resources(TEMPLATE, scenario(HasGitHub=True))
    assert "GitHubOidcProvider" not in existing
    principal = ac.trust_statements(existing, "BuildRole")[0]["Principal"]["Federated"]
    assert principal == {"Ref": "OidcProviderArn"}
    # The provider is created only with a repository, and only without an ARN.
    assert TEMPLATE["Conditions"]["CreateOidcProvider"] == {
        "Fn::And": [{"Condition": "HasGitHub"}, {"Fn::Equals": [{"Ref": "OidcProviderArn"}, ""]}]
    }


def test_the_subjects_each_role_accepts():
    """The subjects as GitHub writes them, for a sample repository, in both
    forms (https://docs.github.com/actions/reference/security/oidc)."""
    forms = [
        (scenario(HasGitHub=True), "octo-org/nowd"),
        (scenario(HasGitHub=True, HasSubjectRepository=True), "octo-org@123456/nowd@987654"),
    ]
    values = {
        "GitHubRepository": "octo-org/nowd",
        "GitHubSubjectRepository": "octo-org@123456/nowd@987654",
    }
    for case, repository in forms:
        res = tc.resources(TEMPLATE, case)
        subjects = {}
        for role in ac.SUBJECTS:
            sub = ac.trust_statements(res, role)[0]["Condition"]["StringEquals"][
                f"{ac.OIDC_ISSUER}:sub"
            ]
            text, variables = sub["Fn::Sub"]
            subjects[role] = text.replace("${Repo}", values[tc.referenced(variables["Repo"])])
        assert subjects == {
            "BuildRole": f"repo:{repository}:ref:refs/heads/main",
            "ChangeSetRole": f"repo:{repository}:ref:refs/heads/main",
            "DeployRole": f"repo:{repository}:environment:production",
        }


def test_parameter_patterns():
    params = TEMPLATE["Parameters"]
    cases = {
        "GitHubRepository": (
            ["", "octo-org/nowd", "o/n.w_d-2"],
            ["octo-org", "octo/nowd/x", "-x/nowd"],
        ),
        "GitHubSubjectRepository": (
            ["", "octo-org@123456/nowd@987654"],
            ["octo-org/nowd", "octo@x/nowd@1", "octo@1/nowd"],
        ),
        "OidcProviderArn": (
            ["", "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"],
            [
                "arn:aws:iam::123456789012:oidc-provider/example.com",
                "arn:aws:iam::*:oidc-provider/token.actions.githubusercontent.com",
            ],
        ),
        "ServiceStackName": (["nowd", "nowd-prod2"], ["", "2nowd", "nowd_prod", "nowd*"]),
    }
    for name, (good, bad) in cases.items():
        pattern = params[name]["AllowedPattern"]
        assert [v for v in good if not re.fullmatch(pattern, v)] == [], name
        assert [v for v in bad if re.fullmatch(pattern, v)] == [], name


def rule_holds(name, values):
    return tc.rule_holds(TEMPLATE, name, values)


def test_rules_refuse_a_user_without_password_and_a_subject_without_repository():
    assert rule_holds(
        "ReviewerUserNeedsPassword", {"CreateReviewerUser": "false", "ReviewerPassword": ""}
    )
    assert rule_holds(
        "ReviewerUserNeedsPassword", {"CreateReviewerUser": "true", "ReviewerPassword": "x" * 14}
    )
    assert not rule_holds(
        "ReviewerUserNeedsPassword", {"CreateReviewerUser": "true", "ReviewerPassword": ""}
    )
    assert rule_holds(
        "SubjectNeedsRepository", {"GitHubSubjectRepository": "", "GitHubRepository": ""}
    )
    assert not rule_holds(
        "SubjectNeedsRepository", {"GitHubSubjectRepository": "o@1/r@2", "GitHubRepository": ""}
    )


def test_reviewer_policy_uses_only_expected_verbs():
    res = tc.resources(TEMPLATE, scenario(HasReviewerUser=True))
    verbs = set()
    for _, statement in ac.reviewer_statements(res):
        for action in statement["Action"]:
            name = action.split(":")[1]
            verbs.add(next((v for v in tc.READ_VERBS if name.startswith(v)), action))
    assert verbs == {"Describe", "Get", "List", "iam:ChangePassword"}


def test_reviewer_user_exists_only_on_request():
    assert "ReviewerUser" not in tc.resources(TEMPLATE, scenario())
    assert "ReviewerUser" in tc.resources(TEMPLATE, scenario(HasReviewerUser=True))
    assert TEMPLATE["Outputs"]["ReviewerUserName"]["Condition"] == "HasReviewerUser"


def test_handler_data_is_available():
    # The service role check must not pass merely because schemas lack handlers.
    needed = ac.handler_permissions(frozenset({"AWS::AutoScaling::AutoScalingGroup"}))
    assert "autoscaling:CreateAutoScalingGroup" in needed and "ec2:RunInstances" in needed
    assert len(ac.handler_permissions(frozenset(ac.service_types()))) > 100


def test_service_role_must_grow_with_the_service_stack():
    # A resource type nowd.yaml does not have yet: the role lacks its calls.
    grown = ac.service_types() | {"AWS::S3::Bucket"}
    found = ac.check_service_role_covers_the_service_stack(TEMPLATE, scenario(), grown)
    assert any("s3:CreateBucket" in f for f in found), found


def test_the_excluded_handler_permissions_are_still_declared():
    # So that NOT_NEEDED cannot keep excusing what no handler asks for.
    needed = ac.handler_permissions(frozenset(ac.service_types()))
    stale = [p for p in ac.NOT_NEEDED if not any(ac.covered(n, {p}) for n in needed)]
    assert stale == []


# ---------------------------------------------------------------------------
# Broken copies.


def resource(t, name):
    return t["Resources"][name]["Properties"]


def trust(t, role):
    return resource(t, role)["AssumeRolePolicyDocument"]["Statement"][0]


def equals(t, role):
    return trust(t, role)["Condition"]["StringEquals"]


def sub_of(t, role):
    return equals(t, role)[f"{ac.OIDC_ISSUER}:sub"]["Fn::Sub"]


def role_statement(t, role, sid):
    statements = resource(t, role)["Policies"][0]["PolicyDocument"]["Statement"]
    return next(s for s in statements if s["Sid"] == sid)


def add_role_statement(t, role, statement):
    resource(t, role)["Policies"][0]["PolicyDocument"]["Statement"].append(statement)


def reviewer(t, sid):
    return next(
        s
        for s in resource(t, "ReviewerReadOnlyPolicy")["PolicyDocument"]["Statement"]
        if s["Sid"] == sid
    )


def trust_any_branch(t):
    sub_of(t, "BuildRole")[0] = "repo:${Repo}:ref:refs/heads/*"


def trust_anything_of_the_repository(t):
    sub_of(t, "DeployRole")[0] = "repo:${Repo}:*"


def match_the_subject_with_string_like(t):
    condition = trust(t, "DeployRole")["Condition"]
    condition["StringLike"] = {
        f"{ac.OIDC_ISSUER}:sub": condition["StringEquals"].pop(f"{ac.OIDC_ISSUER}:sub")
    }


def drop_the_audience(t):
    del equals(t, "BuildRole")[f"{ac.OIDC_ISSUER}:aud"]


def accept_the_default_audience(t):
    equals(t, "DeployRole")[f"{ac.OIDC_ISSUER}:aud"] = "https://github.com/octo-org"


def let_the_deploy_role_run_from_main(t):
    sub_of(t, "DeployRole")[0] = "repo:${Repo}:ref:refs/heads/main"


def hard_code_the_repository(t):
    sub_of(t, "BuildRole")[1]["Repo"] = "octo-org/nowd"


def ignore_the_immutable_subject(t):
    sub_of(t, "DeployRole")[1]["Repo"] = {"Ref": "GitHubRepository"}


def trust_another_provider(t):
    trust(t, "BuildRole")["Principal"]["Federated"] = (
        "arn:aws:iam::123456789012:oidc-provider/example.com"
    )


def trust_any_aws_principal(t):
    resource(t, "DeployRole")["AssumeRolePolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
    )


def let_ec2_assume_the_service_role(t):
    trust(t, "CloudFormationServiceRole")["Principal"]["Service"] = "ec2.amazonaws.com"


def accept_any_repository_name(t):
    t["Parameters"]["GitHubRepository"]["AllowedPattern"] = "^.*$"


def accept_a_wildcard_owner_id(t):
    t["Parameters"]["GitHubSubjectRepository"]["AllowedPattern"] = (
        r"^$|^[\w-]+@[0-9*]+/[\w.-]+@[0-9*]+$"
    )


def widen_the_build_role(t):
    add_role_statement(
        t, "BuildRole", {"Sid": "Oops", "Effect": "Allow", "Action": "ec2:*", "Resource": "*"}
    )


def launch_any_image_in_the_build(t):
    role_statement(t, "BuildRole", "LaunchFromDebiansImagesOnly")["Condition"]["StringEquals"][
        "ec2:Owner"
    ] = "amazon"


def attach_admin_to_the_build_role(t):
    resource(t, "BuildRole")["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/AdministratorAccess"]


def let_the_deploy_role_create_users(t):
    add_role_statement(
        t,
        "DeployRole",
        {
            "Sid": "Oops",
            "Effect": "Allow",
            "Action": ["iam:CreateUser", "iam:CreateLoginProfile"],
            "Resource": "*",
        },
    )


def let_the_deploy_role_touch_any_stack(t):
    role_statement(t, "DeployRole", "RunChangeSetsOfTheServiceStack")["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*"
    }


def let_the_plan_role_change_sets_of_another_stack(t):
    role_statement(t, "ChangeSetRole", "CreateChangeSetsOfTheServiceStackAsTheServiceRole")[
        "Resource"
    ] = {
        "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}"
        ":stack/other/*"
    }


def let_the_plan_role_read_every_stack(t):
    role_statement(t, "ChangeSetRole", "ShowChangeSetsOfTheServiceStack")["Resource"] = "*"


def let_the_deploy_role_update_the_stack_directly(t):
    role_statement(t, "DeployRole", "RunChangeSetsOfTheServiceStack")["Action"].append(
        "cloudformation:UpdateStack"
    )


def let_the_plan_role_execute_change_sets(t):
    role_statement(t, "ChangeSetRole", "ShowChangeSetsOfTheServiceStack")["Action"].append(
        "cloudformation:ExecuteChangeSet"
    )


def let_the_plan_role_delete_change_sets(t):
    role_statement(t, "ChangeSetRole", "ShowChangeSetsOfTheServiceStack")["Action"].append(
        "cloudformation:DeleteChangeSet"
    )


def let_the_plan_role_update_the_stack_directly(t):
    add_role_statement(
        t,
        "ChangeSetRole",
        {
            "Sid": "Oops",
            "Effect": "Allow",
            "Action": "cloudformation:UpdateStack",
            "Resource": role_statement(t, "ChangeSetRole", "ShowChangeSetsOfTheServiceStack")[
                "Resource"
            ],
        },
    )


def let_the_deploy_role_create_change_sets(t):
    role_statement(t, "DeployRole", "RunChangeSetsOfTheServiceStack")["Action"].append(
        "cloudformation:CreateChangeSet"
    )


def take_execute_from_the_deploy_role(t):
    role_statement(t, "DeployRole", "RunChangeSetsOfTheServiceStack")["Action"].remove(
        "cloudformation:ExecuteChangeSet"
    )


def create_change_sets_as_oneself(t):
    del role_statement(t, "ChangeSetRole", "CreateChangeSetsOfTheServiceStackAsTheServiceRole")[
        "Condition"
    ]


def pass_any_role(t):
    role_statement(t, "ChangeSetRole", "PassOnlyTheServiceRoleToCloudFormation")["Resource"] = "*"


def pass_the_role_to_any_service(t):
    del role_statement(t, "ChangeSetRole", "PassOnlyTheServiceRoleToCloudFormation")["Condition"]


def describe_images_in_every_region(t):
    del role_statement(t, "ChangeSetRole", "ReadImageIdsInThisRegion")["Condition"]


def let_the_plan_role_run_in_any_environment(t):
    sub_of(t, "ChangeSetRole")[0] = "repo:${Repo}:environment:*"


def let_the_plan_role_run_from_pull_requests(t):
    sub_of(t, "ChangeSetRole")[0] = "repo:${Repo}:pull_request"


def attach_admin_to_the_plan_role(t):
    resource(t, "ChangeSetRole")["ManagedPolicyArns"] = [
        "arn:aws:iam::aws:policy/AWSCloudFormationFullAccess"
    ]


def forget_to_create_vpcs(t):
    role_statement(t, "CloudFormationServiceRole", "NetworkAndLaunchTemplateInThisRegion")[
        "Action"
    ].remove("ec2:CreateVpc")


def allow_buckets_nobody_needs(t):
    add_role_statement(
        t,
        "CloudFormationServiceRole",
        {
            "Sid": "Oops",
            "Effect": "Allow",
            "Action": "s3:CreateBucket",
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::nowd-*"},
        },
    )


def give_the_network_statement_every_resource(t):
    role_statement(t, "CloudFormationServiceRole", "NetworkAndLaunchTemplateInThisRegion")[
        "Resource"
    ] = "*"


def reach_every_region(t):
    role_statement(t, "CloudFormationServiceRole", "LoadBalancerInThisRegion")["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:elasticloadbalancing:*:${AWS::AccountId}:*"
    }


def reach_every_account(t):
    role_statement(t, "CloudFormationServiceRole", "TheServiceStacksAlarmTopic")["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:sns:${AWS::Region}:*:${ServiceStackName}-alarms"
    }


def let_the_service_role_create_users(t):
    role_statement(t, "CloudFormationServiceRole", "ServiceLinkedRolesOnFirstUse")["Action"] = [
        "iam:CreateServiceLinkedRole",
        "iam:CreateUser",
    ]


def create_any_service_linked_role(t):
    del role_statement(t, "CloudFormationServiceRole", "ServiceLinkedRolesOnFirstUse")["Condition"]


def write_everything_in_ec2(t):
    role_statement(
        t, "CloudFormationServiceRole", "ReadsAndSubscriptionsWithoutResourceInThisRegion"
    )["Action"].append("ec2:*")


def unpin_the_service_roles_reads(t):
    del role_statement(
        t, "CloudFormationServiceRole", "ReadsAndSubscriptionsWithoutResourceInThisRegion"
    )["Condition"]


def create_keys_without_a_condition(t):
    del role_statement(t, "CloudFormationServiceRole", "CreateOnlyKeysTaggedForTheServiceStack")[
        "Condition"
    ]


def allow_terminate_instances(t):
    reviewer(t, "ReadTheServiceStacksInstances")["Action"].append("ec2:TerminateInstances")


def allow_wildcard_action(t):
    reviewer(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Action"].append("s3:Get*")


def allow_reading_secrets(t):
    reviewer(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Action"].append(
        "secretsmanager:GetSecretValue"
    )


def let_anyone_change_any_password(t):
    reviewer(t, "ChangeOwnPassword")["Resource"] = "*"


def give_stack_reads_star(t):
    reviewer(t, "ReadTheServiceStack")["Resource"] = "*"


def read_every_stack(t):
    reviewer(t, "ReadTheServiceStack")["Resource"] = {
        "Fn::Sub": "arn:${AWS::Partition}:cloudformation:${AWS::Region}:${AWS::AccountId}:stack/*"
    }


def put_scopable_action_under_star(t):
    reviewer(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Action"].append(
        "ec2:GetConsoleOutput"
    )


def drop_region_pin(t):
    del reviewer(t, "ReadWithoutResourceLevelPermissionsInThisRegion")["Condition"]


def drop_instance_tag_condition(t):
    del reviewer(t, "ReadTheServiceStacksInstances")["Condition"]


def allow_deleting_alarms(t):
    reviewer(t, "ReadTheServiceStacksAlarmsAndDashboard")["Action"].append(
        "cloudwatch:DeleteAlarms"
    )


def read_every_alarm(t):
    reviewer(t, "ReadTheServiceStacksAlarmsAndDashboard")["Resource"].append(
        {"Fn::Sub": "arn:${AWS::Partition}:cloudwatch:${AWS::Region}:${AWS::AccountId}:alarm:*"}
    )


def read_another_topic(t):
    reviewer(t, "ReadTheServiceStacksAlarmTopic")["Resource"] = (
        "arn:aws:sns:eu-west-1:123456789012:other"
    )


def attach_read_only_access(t):
    resource(t, "ReviewerGroup")["ManagedPolicyArns"] = ["arn:aws:iam::aws:policy/ReadOnlyAccess"]


def give_the_reviewer_an_access_key(t):
    t["Resources"]["ReviewerKey"] = {
        "Type": "AWS::IAM::AccessKey",
        "Condition": "HasReviewerUser",
        "Properties": {"UserName": {"Ref": "ReviewerUser"}},
    }


def create_the_user_always(t):
    del t["Resources"]["ReviewerUser"]["Condition"]


def give_the_reviewer_an_inline_policy(t):
    resource(t, "ReviewerUser")["Policies"] = [
        {"PolicyName": "x", "PolicyDocument": {"Statement": []}}
    ]


def echo_the_password(t):
    t["Parameters"]["ReviewerPassword"]["NoEcho"] = False


def output_the_password(t):
    t["Outputs"]["Oops"] = {"Value": {"Ref": "ReviewerPassword"}}


def skip_password_reset(t):
    resource(t, "ReviewerUser")["LoginProfile"]["PasswordResetRequired"] = False


def untag_the_deploy_role(t):
    del resource(t, "DeployRole")["Tags"]


def put_outputs_first(t):
    outputs = t.pop("Outputs")
    rest = dict(t)
    t.clear()
    t["Outputs"] = outputs
    t.update(rest)


ROLES_CHECK = ac.check_change_set_roles_limited_to_the_service_stack

ALTERATIONS = [
    (trust_any_branch, ac.check_trust_pinned),
    (trust_anything_of_the_repository, ac.check_trust_pinned),
    (match_the_subject_with_string_like, ac.check_trust_pinned),
    (drop_the_audience, ac.check_trust_pinned),
    (accept_the_default_audience, ac.check_trust_pinned),
    (let_the_deploy_role_run_from_main, ac.check_trust_pinned),
    (let_the_plan_role_run_in_any_environment, ac.check_trust_pinned),
    (let_the_plan_role_run_from_pull_requests, ac.check_trust_pinned),
    (hard_code_the_repository, ac.check_trust_pinned),
    (ignore_the_immutable_subject, ac.check_trust_pinned),
    (trust_another_provider, ac.check_trust_pinned),
    (trust_any_aws_principal, ac.check_trust_pinned),
    (let_ec2_assume_the_service_role, ac.check_trust_pinned),
    (accept_any_repository_name, ac.check_subject_parameters_take_no_wildcard),
    (accept_a_wildcard_owner_id, ac.check_subject_parameters_take_no_wildcard),
    (widen_the_build_role, ac.check_build_role_is_the_build_policy),
    (launch_any_image_in_the_build, ac.check_build_role_is_the_build_policy),
    (attach_admin_to_the_build_role, ac.check_build_role_is_the_build_policy),
    (let_the_deploy_role_create_users, ROLES_CHECK),
    (let_the_deploy_role_touch_any_stack, ROLES_CHECK),
    (let_the_plan_role_change_sets_of_another_stack, ROLES_CHECK),
    (let_the_plan_role_read_every_stack, ROLES_CHECK),
    (let_the_deploy_role_update_the_stack_directly, ROLES_CHECK),
    (let_the_plan_role_execute_change_sets, ROLES_CHECK),
    (let_the_plan_role_delete_change_sets, ROLES_CHECK),
    (let_the_plan_role_update_the_stack_directly, ROLES_CHECK),
    (let_the_deploy_role_create_change_sets, ROLES_CHECK),
    (take_execute_from_the_deploy_role, ROLES_CHECK),
    (create_change_sets_as_oneself, ROLES_CHECK),
    (pass_any_role, ROLES_CHECK),
    (pass_the_role_to_any_service, ROLES_CHECK),
    (describe_images_in_every_region, ROLES_CHECK),
    (attach_admin_to_the_plan_role, ROLES_CHECK),
    (forget_to_create_vpcs, ac.check_service_role_covers_the_service_stack),
    (allow_buckets_nobody_needs, ac.check_service_role_covers_the_service_stack),
    (give_the_network_statement_every_resource, ac.check_service_role_scoped),
    (reach_every_region, ac.check_service_role_scoped),
    (reach_every_account, ac.check_service_role_scoped),
    (let_the_service_role_create_users, ac.check_service_role_scoped),
    (create_any_service_linked_role, ac.check_service_role_scoped),
    (write_everything_in_ec2, ac.check_service_role_scoped),
    (unpin_the_service_roles_reads, ac.check_service_role_scoped),
    (create_keys_without_a_condition, ac.check_service_role_scoped),
    (allow_terminate_instances, ac.check_reviewer_read_only),
    (allow_terminate_instances, ac.check_reviewer_scoped_where_possible),
    (allow_wildcard_action, ac.check_reviewer_read_only),
    (allow_reading_secrets, ac.check_reviewer_read_only),
    (let_anyone_change_any_password, ac.check_reviewer_read_only),
    (let_anyone_change_any_password, ac.check_reviewer_scoped_where_possible),
    (give_stack_reads_star, ac.check_reviewer_scoped_where_possible),
    (give_stack_reads_star, ac.check_reviewer_reads_the_service_stack_only),
    (read_every_stack, ac.check_reviewer_reads_the_service_stack_only),
    (put_scopable_action_under_star, ac.check_reviewer_scoped_where_possible),
    (drop_region_pin, ac.check_reviewer_scoped_where_possible),
    (drop_instance_tag_condition, ac.check_reviewer_reads_the_service_stack_only),
    (allow_deleting_alarms, ac.check_reviewer_read_only),
    (read_every_alarm, ac.check_reviewer_reads_the_service_stack_only),
    (read_another_topic, ac.check_reviewer_reads_the_service_stack_only),
    (attach_read_only_access, ac.check_reviewer_read_only),
    (attach_read_only_access, ac.check_only_the_reviewer_is_a_user),
    (give_the_reviewer_an_access_key, ac.check_only_the_reviewer_is_a_user),
    (create_the_user_always, ac.check_only_the_reviewer_is_a_user),
    (give_the_reviewer_an_inline_policy, ac.check_only_the_reviewer_is_a_user),
    (echo_the_password, tc.check_secrets_no_echo),
    (output_the_password, tc.check_secrets_no_echo),
    (skip_password_reset, tc.check_secrets_no_echo),
    (untag_the_deploy_role, tc.check_tags),
    (put_outputs_first, tc.check_section_order),
]


@pytest.mark.parametrize(
    "alteration, check", ALTERATIONS, ids=[f"{a.__name__}-{c.__name__}" for a, c in ALTERATIONS]
)
def test_check_catches(alteration, check):
    broken = tc.mutated(TEMPLATE, alteration)
    assert tc.violations(check, broken), f"{check.__name__} missed {alteration.__name__}"
    assert tc.violations(check, TEMPLATE) == []


def test_every_check_is_shown_to_fail():
    exercised = {check for _, check in ALTERATIONS}
    untested = [c.__name__ for c in ac.ALL_CHECKS if c not in exercised]
    assert untested == []


# ---------------------------------------------------------------------------
# Documentation that must follow the template.


def unscoped_actions_in_readme() -> set[str]:
    readme = (tc.TEMPLATE_PATH.parent / "README.md").read_text()
    section = readme.split("### API calls that allow no resource-level scoping", 1)[1]
    section = section.split("Left out on purpose", 1)[0]
    prefixes = {
        "CloudWatch": "cloudwatch",
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


def test_readme_lists_exactly_the_reviewers_unscoped_actions():
    res = tc.resources(TEMPLATE, scenario(HasReviewerUser=True))
    in_template = {
        action
        for _, st in ac.reviewer_statements(res)
        if tc.is_everything(st.get("Resource"))
        for action in st["Action"]
    }
    assert unscoped_actions_in_readme() == in_template
