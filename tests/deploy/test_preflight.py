"""tools/deploy's preflight: a missing prerequisite stops it before anything is made.

Plumbing only: aws, packer and cargo are recorders (conftest.py); a test takes one away,
or makes it answer as an old or unconfigured one would.
"""

from __future__ import annotations

import pytest
from conftest import Rig

MAKES_SOMETHING = ("cargo build", "packer build", "create-change-set", "execute-change-set")


def assert_nothing_made(result) -> None:
    made = [c.line for c in result.calls if any(w in c.line for w in MAKES_SOMETHING)]
    assert made == [], made


@pytest.mark.parametrize("region", ["", None])
def test_plumbing_no_region_is_a_usage_error(rig: Rig, region: str | None) -> None:
    env = {} if region is None else {"REGION": region}
    result = rig.run("all", **env)
    assert result.rc == 2
    assert "REGION is not set (make deploy REGION=eu-west-1)" in result.stderr
    assert result.calls == []


def test_plumbing_a_region_that_is_no_region_name_is_refused(rig: Rig) -> None:
    result = rig.run("all", REGION="eu-west-1; rm -rf /")
    assert result.rc == 2
    assert "is not an AWS region name" in result.stderr
    assert result.calls == []


def test_plumbing_packer_absent_stops_before_anything_is_made(rig: Rig) -> None:
    rig.remove("packer")
    result = rig.run("all", REGION="eu-west-1")
    assert result.rc == 3
    assert "packer is not installed: Packer 1.10 or later" in result.stderr
    assert_nothing_made(result)


@pytest.mark.parametrize("old", ["Packer v1.6.6", "Packer v1.9.4", "Packer v0.12.3"])
def test_plumbing_packer_older_than_1_10_stops_before_anything_is_made(rig: Rig, old: str) -> None:
    rig.rules.insert(0, {"when": ["packer version"], "stdout": old + "\n"})
    result = rig.run("all", REGION="eu-west-1")
    assert result.rc == 3
    assert f"{old} is too old: the template needs Packer 1.10 or later" in result.stderr
    assert_nothing_made(result)


@pytest.mark.parametrize("new", ["Packer v1.10.0", "Packer v1.14.1", "Packer v2.0.0"])
def test_plumbing_packer_1_10_or_later_passes(rig: Rig, new: str) -> None:
    rig.rules.insert(0, {"when": ["packer version"], "stdout": new + "\n"})
    result = rig.run("preflight", REGION="eu-west-1")
    assert result.rc == 0, result.stderr


def test_plumbing_no_aws_cli_stops_before_anything_is_made(rig: Rig) -> None:
    rig.remove("aws")
    result = rig.run("all", REGION="eu-west-1")
    assert result.rc == 3
    assert "aws is not installed: the AWS CLI v2" in result.stderr
    assert_nothing_made(result)


def test_plumbing_no_credentials_stops_before_anything_is_made(rig: Rig) -> None:
    rig.rules.insert(
        0,
        {
            "when": ["sts get-caller-identity"],
            "stderr": "\nUnable to locate credentials. You can configure credentials by running "
            '"aws configure".\n',
            "rc": 253,
        },
    )
    result = rig.run("all", REGION="eu-west-1")
    assert result.rc == 4
    assert "no usable AWS credentials" in result.stderr
    assert "Unable to locate credentials" in result.stderr
    assert_nothing_made(result)


def test_plumbing_destroy_does_not_need_packer(rig: Rig) -> None:
    rig.remove("packer")
    rig.remove("cargo")
    rig.on("describe-stacks", "StackStatus", stdout="CREATE_COMPLETE\n")
    result = rig.run("destroy", REGION="eu-west-1")
    assert result.rc == 0, result.stderr
