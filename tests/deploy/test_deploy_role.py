"""The pipeline's calls stay within the deploy role of cloudformation/access.yaml.

Plumbing: the AWS CLI is a recorder. What the plan, apply and verify jobs run (a create
and an update, a change set without changes, a failed rollout) is mapped to the IAM
actions those commands need, and each must be granted to the deploy role.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, Rig

ACCESS = ROOT / "cloudformation" / "access.yaml"

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


class CloudFormationLoader(yaml.SafeLoader):
    """Reads !Ref, !Sub and the other short forms as plain values."""


CloudFormationLoader.add_multi_constructor(
    "!",
    lambda loader, suffix, node: (
        loader.construct_scalar(node)
        if isinstance(node, yaml.ScalarNode)
        else loader.construct_sequence(node)
        if isinstance(node, yaml.SequenceNode)
        else loader.construct_mapping(node)
    ),
)


def deploy_role_actions() -> set[str]:
    template = yaml.load(ACCESS.read_text(), Loader=CloudFormationLoader)
    role = template["Resources"]["DeployRole"]["Properties"]
    granted = set()
    for policy in role["Policies"]:
        for statement in policy["PolicyDocument"]["Statement"]:
            if statement["Effect"] == "Allow":
                actions = statement["Action"]
                granted.update([actions] if isinstance(actions, str) else actions)
    return granted


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
    return found


def pipeline_calls(rig: Rig) -> set[str]:
    """Every AWS call of plan, apply and verify across the paths they can take."""
    actions: set[str] = set()
    env = {"REGION": "eu-west-1", "IMAGE_ID": "ami-0aaaaaaaaaaaaaaa1", "CHANGE_SET": "cs"}
    env["CFN_ROLE_ARN"] = "arn:aws:iam::123456789012:role/nowd-access-cloudformation"
    base = list(rig.rules)
    for status, extra in (
        ("", [{"when": ["wait stack-create-complete"], "rc": 255}]),
        ("UPDATE_COMPLETE\n", []),
        ("UPDATE_COMPLETE\n", [{"when": ["wait change-set-create-complete"], "rc": 255}]),
    ):
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
        result = rig.run("plan", "apply", "verify", **env)
        actions |= needed(result.calls)
    return actions


@pytest.mark.skipif(not ACCESS.exists(), reason="cloudformation/access.yaml is not in this tree")
def test_plumbing_plan_apply_and_verify_need_only_what_the_deploy_role_grants(rig: Rig) -> None:
    actions = pipeline_calls(rig)
    assert "cloudformation:ExecuteChangeSet" in actions, "the paths were walked"
    missing = actions - deploy_role_actions()
    assert not missing, f"tools/deploy calls what the deploy role cannot: {sorted(missing)}"


def test_plumbing_every_aws_call_of_the_deploy_jobs_has_a_known_action(rig: Rig) -> None:
    """The mapping above covers every call, so the role check cannot miss one."""
    assert "cloudformation:CreateChangeSet" in pipeline_calls(rig)


def test_plumbing_the_role_check_catches_a_call_the_role_lacks(
    rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A deploy role without DescribeStackEvents fails the check."""
    granted = sorted({a for a in ACTIONS.values() if a} - {"cloudformation:DescribeStackEvents"})
    statement = {"Effect": "Allow", "Action": granted}
    policies = [{"PolicyDocument": {"Statement": [statement]}}]
    role = {"Resources": {"DeployRole": {"Properties": {"Policies": policies}}}}
    broken = tmp_path / "access.yaml"
    broken.write_text(yaml.safe_dump(role))
    monkeypatch.setattr(sys.modules[__name__], "ACCESS", broken)
    missing = pipeline_calls(rig) - deploy_role_actions()
    assert missing == {"cloudformation:DescribeStackEvents"}
