"""Each deploy job's calls stay within the role it assumes (cloudformation/access.yaml).

Plumbing: the AWS CLI is a recorder. Each job of deploy.yml that assumes a role runs its
tools/deploy steps along every path they can take (a create and an update, a change set
without changes, a failed rollout); each command is mapped to the IAM action it needs,
and that action must be granted to the role the job assumes, found through the
repository variable it names and the access stack's output.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Rig

ACCESS = ROOT / "cloudformation" / "access.yaml"
DEPLOY_WORKFLOW = ROOT / ".github" / "workflows" / "deploy.yml"

# The repository variable behind each role-to-assume, and the access stack's output it
# holds (docs/DELIVERY.md tells the operator to copy them across).
ROLE_VARIABLES = {
    "AWS_BUILD_ROLE_ARN": "BuildRoleArn",
    "AWS_CHANGE_SET_ROLE_ARN": "ChangeSetRoleArn",
    "AWS_DEPLOY_ROLE_ARN": "DeployRoleArn",
}

# The IAM action behind each AWS CLI command the script runs in the deploy jobs
# (waiters poll the matching describe call).
ACTIONS = {
    "sts get-caller-identity": None,  # needs no permission
    "cloudformation describe-stacks": "cloudformation:DescribeStacks",
    "cloudformation create-change-set": "cloudformation:CreateChangeSet",
    "cloudformation wait change-set-create-complete": "cloudformation:DescribeChangeSet",
    "cloudformation describe-change-set": "cloudformation:DescribeChangeSet",
    "cloudformation delete-change-set": "cloudformation:DeleteChangeSet",
    "cloudformation execute-change-set": "cloudformation:ExecuteChangeSet",
    "cloudformation wait stack-create-complete": "cloudformation:DescribeStacks",
    "cloudformation wait stack-update-complete": "cloudformation:DescribeStacks",
    "cloudformation describe-stack-events": "cloudformation:DescribeStackEvents",
}

# A role passed with --role-arn needs iam:PassRole (and the stack's AMI, ec2:DescribeImages,
# which CloudFormation checks with the caller's rights when it makes the change set).
CREATE_ALSO_NEEDS = {"iam:PassRole", "ec2:DescribeImages"}


class CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !Sub and the other short forms as plain values."""


CloudFormationLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        {f"Fn::{suffix}": loader.construct_scalar(node)}
        if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    ),
)


def load_access() -> dict:
    return yaml.load(ACCESS.read_text(), Loader=CloudFormationLoader)


def role_of_variable(variable: str) -> str:
    """The access template's role whose ARN the output behind this variable holds."""
    output = load_access()["Outputs"][ROLE_VARIABLES[variable]]
    (target,) = output["Value"].values()
    role, attribute = target.split(".")
    assert attribute == "Arn", output
    return role


def role_actions(role: str) -> set[str]:
    properties = load_access()["Resources"][role]["Properties"]
    granted = set()
    for policy in properties["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                actions = statement["Action"]
                granted.update([actions] if isinstance(actions, str) else actions)
    return granted


def deploy_jobs() -> dict[str, tuple[str, list[str]]]:
    """Each job that assumes a role: (the role's repository variable, its tools/deploy steps)."""
    jobs = {}
    for name, job in yaml.safe_load(DEPLOY_WORKFLOW.read_text())["jobs"].items():
        variable, steps = None, []
        for step in job["steps"]:
            role = step.get("with", {}).get("role-to-assume")
            if role:
                (variable,) = re.fullmatch(r"\$\{\{ vars\.(\w+) \}\}", role).groups()
            if "run" in step:
                steps += step["run"].split()[1:]
        if variable:
            jobs[name] = (variable, steps)
    return jobs


def needed(calls) -> set[str]:
    found = set()
    for call in calls:
        if call.tool != "aws":
            continue
        words = [w for w in call.argv if not w.startswith("--") and "eu-west-1" not in w]
        key = next((k for k in ACTIONS if " ".join(words).startswith(k)), None)
        assert key, f"no IAM action known for: {call.line}"
        if ACTIONS[key]:
            found.add(ACTIONS[key])
        if key == "cloudformation create-change-set" and "--role-arn" in call.argv:
            found |= CREATE_ALSO_NEEDS
    return found


# The paths a job's steps can take: the stack's status (empty: it does not exist yet),
# and commands that fail.
PATHS = [
    ("", []),
    ("REVIEW_IN_PROGRESS\n", [{"when": ["wait stack-create-complete"], "rc": 255}]),
    ("UPDATE_COMPLETE\n", []),
    ("UPDATE_COMPLETE\n", [{"when": ["wait stack-update-complete"], "rc": 255}]),
    ("UPDATE_COMPLETE\n", [{"when": ["wait change-set-create-complete"], "rc": 255}]),
]


def job_calls(rig: Rig, steps: list[str]) -> set[str]:
    """Every AWS call of these steps across the paths they can take."""
    actions: set[str] = set()
    env = {"REGION": "eu-west-1", "IMAGE_ID": "ami-0aaaaaaaaaaaaaaa1", "CHANGE_SET": "cs"}
    env["CFN_ROLE_ARN"] = "arn:aws:iam::123456789012:role/nowd-access-cloudformation"
    base = list(rig.rules)
    for status, extra in PATHS:
        rig.rules = base + extra
        if status:
            rig.on("describe-stacks", "StackStatus", stdout=status)
        else:
            rig.on(
                "describe-stacks", "StackStatus", stderr="Stack with id nowd does not exist", rc=254
            )
        rig.on("describe-stacks", "ParameterKey", stdout='["ImageId"]\n')
        rig.on("describe-change-set", "StatusReason", stdout="No updates are to be performed.\n")
        rig.on("NowUrl", stdout="http://nowd.example.com/now\n")
        result = rig.run(*steps, **env)
        actions |= needed(result.calls)
    rig.rules = base
    return actions


CHANGE_SET_JOBS = ["plan", "apply"]


def test_plumbing_plan_and_apply_are_the_jobs_that_assume_the_change_set_roles() -> None:
    jobs = deploy_jobs()
    assert {name: jobs[name][0] for name in CHANGE_SET_JOBS} == {
        "plan": "AWS_CHANGE_SET_ROLE_ARN",
        "apply": "AWS_DEPLOY_ROLE_ARN",
    }
    assert jobs["plan"][1] == ["plan"] and jobs["apply"][1] == ["apply", "verify"]
    assert set(jobs) <= set(CHANGE_SET_JOBS) | {"bake"}


@pytest.mark.skipif(not ACCESS.exists(), reason="cloudformation/access.yaml is not in this tree")
@pytest.mark.parametrize("job", CHANGE_SET_JOBS)
def test_plumbing_each_deploy_job_needs_only_what_its_role_grants(rig: Rig, job: str) -> None:
    variable, steps = deploy_jobs()[job]
    role = role_of_variable(variable)
    actions = job_calls(rig, steps)
    assert actions, "the paths were walked"
    missing = actions - role_actions(role)
    assert not missing, f"the {job} job calls what {role} cannot: {sorted(missing)}"


def test_plumbing_the_plan_job_creates_and_the_apply_job_executes(rig: Rig) -> None:
    """The paths reach the calls that matter, so the role check cannot pass by missing one."""
    jobs = deploy_jobs()
    plan = job_calls(rig, jobs["plan"][1])
    apply = job_calls(rig, jobs["apply"][1])
    assert "cloudformation:CreateChangeSet" in plan
    assert "cloudformation:ExecuteChangeSet" not in plan
    assert "cloudformation:ExecuteChangeSet" in apply
    assert "cloudformation:CreateChangeSet" not in apply


def test_plumbing_the_role_check_catches_a_call_the_role_lacks(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy role without DescribeStackEvents fails the apply job's check."""
    needs = job_calls(rig, deploy_jobs()["apply"][1])
    granted = sorted(needs - {"cloudformation:DescribeStackEvents"})
    statement = {"Effect": "Allow", "Action": granted}
    policies = [{"PolicyDocument": {"Statement": [statement]}}]
    broken = {
        "Resources": {"DeployRole": {"Properties": {"Policies": policies}}},
        "Outputs": {"DeployRoleArn": {"Value": {"Fn::GetAtt": "DeployRole.Arn"}}},
    }
    path = tmp_path / "access.yaml"
    path.write_text(yaml.safe_dump(broken))
    monkeypatch.setattr(sys.modules[__name__], "ACCESS", path)
    role = role_of_variable("AWS_DEPLOY_ROLE_ARN")
    assert needs - role_actions(role) == {"cloudformation:DescribeStackEvents"}


def test_plumbing_the_role_check_catches_a_job_given_the_wrong_role(rig: Rig) -> None:
    """Apply under the plan role (which cannot execute) fails the check."""
    apply = job_calls(rig, deploy_jobs()["apply"][1])
    missing = apply - role_actions(role_of_variable("AWS_CHANGE_SET_ROLE_ARN"))
    assert "cloudformation:ExecuteChangeSet" in missing
