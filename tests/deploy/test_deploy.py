"""tools/deploy with aws, packer, cargo and the healthcheck replaced by recorders.

Every test here proves plumbing: which commands the script runs, in what order, with
which arguments, and how it answers their failures. None of it proves AWS accepts them.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest
from conftest import ROOT, Rig

NO_STACK = "An error occurred (ValidationError) when calling the DescribeStacks operation: Stack with id nowd does not exist\n"  # noqa: E501
RUN = "9a0c7a3e-0000-4000-8000-000000000002"


def manifest(new_artifact: str) -> str:
    """A manifest with an older run and the newest one (packer appends builds)."""
    return json.dumps(
        {
            "builds": [
                {"packer_run_uuid": "old-run", "artifact_id": "eu-west-1:ami-0000000000000old0"},
                {"packer_run_uuid": RUN, "artifact_id": new_artifact},
            ],
            "last_run_uuid": RUN,
        }
    )


PACKER_OUTPUT = """==> nowd.amazon-ebs.nowd: Provisioning with shell script: /tmp/packer-shell1
    nowd.amazon-ebs.nowd: NOWD-PACKAGES-BEGIN
    nowd.amazon-ebs.nowd: chrony=4.6.1-3 amd64
    nowd.amazon-ebs.nowd: nftables=1.1.3-1 amd64
    nowd.amazon-ebs.nowd: NOWD-PACKAGES-END
==> nowd.amazon-ebs.nowd: Stopping the source instance...
"""


def lines(result) -> list[str]:
    return [call.line for call in result.calls]


def index_of(result, *words: str) -> int:
    for i, line in enumerate(lines(result)):
        if all(w in line for w in words):
            return i
    raise AssertionError(f"no call with {words}: {lines(result)}")


def parameters(result, *words: str) -> list[dict]:
    call = result.calls[index_of(result, *words)]
    (text,) = call.files.values()
    return json.loads(text)


def new_stack(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stderr=NO_STACK, rc=254)
    rig.on("NowUrl", stdout="http://nowd-nlb-1.elb.eu-west-1.amazonaws.com/now\n")


def test_plumbing_deploy_all_bakes_plans_applies_and_verifies_in_order(rig: Rig) -> None:
    new_stack(rig)
    rig.on(
        "packer build",
        write={
            "path": rig.env["MANIFEST"],
            "text": manifest("eu-west-1:ami-0123456789abcdef0,us-east-1:ami-0fedcba987654321f"),
        },
        stdout=PACKER_OUTPUT,
    )
    result = rig.run(
        "all", REGION="eu-west-1", CHANGE_SET="nowd-test", ALARM_EMAIL="ops@example.com"
    )
    assert result.rc == 0, result.stderr
    order = [
        index_of(result, "sts get-caller-identity"),
        index_of(result, "rustup target add x86_64-unknown-linux-musl"),
        index_of(result, "cargo build --release --locked"),
        index_of(result, "packer init packer/"),
        index_of(result, "packer build -color=false -var region=eu-west-1 packer/"),
        index_of(result, "create-change-set", "--change-set-type CREATE"),
        index_of(result, "wait change-set-create-complete"),
        index_of(result, "describe-change-set"),
        index_of(result, "execute-change-set", "--change-set-name nowd-test"),
        index_of(result, "wait stack-create-complete", "--stack-name nowd"),
        index_of(result, "healthcheck http://nowd-nlb-1.elb.eu-west-1.amazonaws.com/now"),
    ]
    assert order == sorted(order), lines(result)
    # The region's AMI of the newest packer run, and the alarm address.
    assert parameters(result, "create-change-set") == [
        {"ParameterKey": "ImageId", "ParameterValue": "ami-0123456789abcdef0"},
        {"ParameterKey": "AlarmEmail", "ParameterValue": "ops@example.com"},
    ]
    assert all("--region eu-west-1" in line for line in lines(result) if line.startswith("aws"))
    assert "access" not in " ".join(lines(result)), "no access stack without REVIEWER=1"
    # What the image contains, from the build's output.
    packages = Path(rig.env["PACKAGES"]).read_text()
    assert packages == "chrony=4.6.1-3 amd64\nnftables=1.1.3-1 amd64\n"


# packer's manifest post-processor writes the amazon plugin's artifact id: "region:ami"
# per region, sorted and joined with commas, so the build's own region need not come
# first. The older run has an AMI in every region asked for here, so picking it shows.
OLDER_RUN = {
    "packer_run_uuid": "old-run",
    "artifact_id": "eu-west-1:ami-0000000000000aaa0,us-east-1:ami-0000000000000aaa1,"
    "us-east-10:ami-0000000000000aaa2,us-west-2:ami-0000000000000aaa3",
}
THREE_REGIONS = (
    "ap-south-1:ami-0aaaaaaaaaaaaaaaa,eu-west-1:ami-0bbbbbbbbbbbbbbbb,"
    "us-east-1:ami-0cccccccccccccccc"
)
# us-east-1 is a prefix of us-east-10, which sorts first.
PREFIXED = "us-east-10:ami-0bbbbbbbbbbbbbbbb,us-east-1:ami-0aaaaaaaaaaaaaaaa"


def plan_from_manifest(rig: Rig, builds: list[dict], region: str):
    new_stack(rig)
    Path(rig.env["MANIFEST"]).write_text(json.dumps({"builds": builds, "last_run_uuid": RUN}))
    return rig.run("plan", REGION=region, CHANGE_SET="cs")


@pytest.mark.parametrize(
    "artifact_id, region, ami",
    [
        ("eu-west-1:ami-0123456789abcdef0", "eu-west-1", "ami-0123456789abcdef0"),
        (THREE_REGIONS, "ap-south-1", "ami-0aaaaaaaaaaaaaaaa"),
        (THREE_REGIONS, "eu-west-1", "ami-0bbbbbbbbbbbbbbbb"),
        (THREE_REGIONS, "us-east-1", "ami-0cccccccccccccccc"),
        (PREFIXED, "us-east-1", "ami-0aaaaaaaaaaaaaaaa"),
        (PREFIXED, "us-east-10", "ami-0bbbbbbbbbbbbbbbb"),
    ],
    ids=["one", "first-of-three", "middle", "last", "prefix-of-another", "prefixed"],
)
def test_plumbing_plan_takes_the_regions_ami_from_the_last_packer_run(
    rig: Rig, artifact_id: str, region: str, ami: str
) -> None:
    result = plan_from_manifest(
        rig, [OLDER_RUN, {"packer_run_uuid": RUN, "artifact_id": artifact_id}], region
    )
    assert result.rc == 0, result.stderr
    assert parameters(result, "create-change-set") == [
        {"ParameterKey": "ImageId", "ParameterValue": ami}
    ]


def test_plumbing_the_last_run_is_chosen_by_its_id_not_its_place(rig: Rig) -> None:
    # last_run_uuid names the run, wherever its build stands in the list.
    newest = {"packer_run_uuid": RUN, "artifact_id": "eu-west-1:ami-0123456789abcdef0"}
    result = plan_from_manifest(rig, [newest, OLDER_RUN], "eu-west-1")
    assert result.rc == 0, result.stderr
    assert parameters(result, "create-change-set")[0]["ParameterValue"] == "ami-0123456789abcdef0"


@pytest.mark.parametrize("region", ["us-west-2", "eu-west-2"])
def test_plumbing_a_region_missing_from_the_last_run_fails_the_plan(rig: Rig, region: str) -> None:
    # us-west-2 has an AMI in the older run only; eu-west-2 in none.
    newest = {"packer_run_uuid": RUN, "artifact_id": THREE_REGIONS}
    result = plan_from_manifest(rig, [OLDER_RUN, newest], region)
    assert result.rc == 1
    assert f"has no AMI for {region} in its last run" in result.stderr
    assert not any("create-change-set" in line for line in lines(result))


def test_plumbing_a_build_that_prints_no_package_list_fails_the_bake(rig: Rig) -> None:
    rig.on("packer build", stdout="==> nowd.amazon-ebs.nowd: done\n")
    result = rig.run("bake", REGION="eu-west-1")
    assert result.rc == 1
    assert "the build printed no package list" in result.stderr


def test_plumbing_a_failed_packer_build_fails_the_bake(rig: Rig) -> None:
    rig.on("packer build", stdout=PACKER_OUTPUT, rc=1)
    result = rig.run("bake", REGION="eu-west-1")
    assert result.rc == 1


def test_plumbing_cargo_command_is_the_one_make_build_runs(rig: Rig) -> None:
    """The bake builds the binary with the same cargo command as `make build`."""
    make = subprocess.run(
        ["make", "-n", "--no-print-directory", "build"], cwd=ROOT, capture_output=True, text=True
    )
    (cargo_line,) = [line for line in make.stdout.splitlines() if line.startswith("cargo build")]
    result = rig.run("bake", REGION="eu-west-1", DRY_RUN="1")
    assert f"+ {cargo_line}" in result.stderr.splitlines()


def test_plumbing_update_keeps_every_other_parameter_with_use_previous_value(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="UPDATE_COMPLETE\n")
    # A key the template no longer declares is dropped, not passed.
    rig.on(
        "describe-stacks",
        "ParameterKey",
        stdout='["ImageId", "InstanceType", "AlarmEmail", "RetiredParameter"]\n',
    )
    rig.on(
        "describe-change-set",
        stdout="| Modify | LaunchTemplate | AWS::EC2::LaunchTemplate | False |\n",
    )
    result = rig.run("plan", REGION="eu-west-1", IMAGE_ID="ami-0aaaaaaaaaaaaaaa1", CHANGE_SET="cs1")
    assert result.rc == 0, result.stderr
    assert "--change-set-type UPDATE" in lines(result)[index_of(result, "create-change-set")]
    params = {p["ParameterKey"]: p for p in parameters(result, "create-change-set")}
    assert params.pop("ImageId") == {
        "ParameterKey": "ImageId",
        "ParameterValue": "ami-0aaaaaaaaaaaaaaa1",
    }
    assert params == {
        "InstanceType": {"ParameterKey": "InstanceType", "UsePreviousValue": True},
        "AlarmEmail": {"ParameterKey": "AlarmEmail", "UsePreviousValue": True},
    }
    summary = Path(rig.env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "### Change set cs1 of nowd" in summary and "| Modify | LaunchTemplate |" in summary
    output = Path(rig.env["GITHUB_OUTPUT"]).read_text()
    assert "change-set=cs1\n" in output and "has-changes=true\n" in output


def test_plumbing_plan_passes_the_cloudformation_service_role(rig: Rig) -> None:
    new_stack(rig)
    role = "arn:aws:iam::123456789012:role/nowd-cloudformation"
    result = rig.run(
        "plan",
        REGION="eu-west-1",
        IMAGE_ID="ami-0aaaaaaaaaaaaaaa1",
        CHANGE_SET="cs",
        CFN_ROLE_ARN=role,
    )
    assert result.rc == 0, result.stderr
    assert f"--role-arn {role}" in lines(result)[index_of(result, "create-change-set")]


def test_plumbing_a_plan_without_changes_keeps_its_change_set_and_apply_does_nothing(
    rig: Rig,
) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="UPDATE_COMPLETE\n")
    rig.on("describe-stacks", "ParameterKey", stdout='["ImageId"]\n')
    rig.on("wait change-set-create-complete", rc=255)
    rig.on(
        "describe-change-set",
        "StatusReason",
        stdout="The submitted information didn't contain changes. Submit different information.\n",
    )
    result = rig.run(
        "plan", "apply", REGION="eu-west-1", IMAGE_ID="ami-0aaaaaaaaaaaaaaa1", CHANGE_SET="cs"
    )
    assert result.rc == 0, result.stderr
    assert "no changes" in result.stderr
    # The plan role cannot delete it; the next executed change set removes it.
    assert not any("delete-change-set" in line for line in lines(result))
    assert not any("execute-change-set" in line for line in lines(result))
    assert "has-changes=false\n" in Path(rig.env["GITHUB_OUTPUT"]).read_text()


def test_plumbing_a_failed_change_set_fails_the_plan_with_its_reason(rig: Rig) -> None:
    new_stack(rig)
    rig.on("wait change-set-create-complete", rc=255)
    rig.on("describe-change-set", "StatusReason", stdout="Template format error: bad\n")
    result = rig.run("plan", REGION="eu-west-1", IMAGE_ID="ami-0aaaaaaaaaaaaaaa1", CHANGE_SET="cs")
    assert result.rc == 1
    assert "Template format error: bad" in result.stderr


def test_plumbing_a_stack_left_in_rollback_complete_is_refused(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="ROLLBACK_COMPLETE\n")
    result = rig.run("plan", REGION="eu-west-1", IMAGE_ID="ami-0aaaaaaaaaaaaaaa1")
    assert result.rc == 1
    assert "ROLLBACK_COMPLETE" in result.stderr and "make destroy" in result.stderr
    assert not any("create-change-set" in line for line in lines(result))


def test_plumbing_apply_waits_for_the_update_and_fails_on_a_rollback(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="UPDATE_COMPLETE\n")
    rig.on("wait stack-update-complete", rc=255, stderr="Waiter StackUpdateComplete failed\n")
    result = rig.run("apply", REGION="eu-west-1", CHANGE_SET="cs")
    assert result.rc == 1
    assert index_of(result, "execute-change-set") < index_of(result, "wait stack-update-complete")
    index_of(result, "describe-stack-events")


def test_plumbing_apply_needs_the_change_set_name(rig: Rig) -> None:
    result = rig.run("apply", REGION="eu-west-1")
    assert result.rc == 2
    assert "CHANGE_SET is not set" in result.stderr


def test_plumbing_verify_fails_when_the_healthcheck_never_says_ok(rig: Rig) -> None:
    rig.on("NowUrl", stdout="http://nowd.example.com/now\n")
    rig.on("healthcheck", rc=2, stdout="NOWD CRITICAL: offset +2.1s\n")
    result = rig.run("verify", REGION="eu-west-1", VERIFY_ATTEMPTS="3")
    assert result.rc == 1
    assert sum(call.tool == "healthcheck" for call in result.calls) == 3
    assert "not OK for http://nowd.example.com/now after 3 tries" in result.stderr


def test_plumbing_verify_passes_the_ntp_server_to_the_healthcheck(rig: Rig) -> None:
    rig.on("NowUrl", stdout="http://nowd.example.com/now\n")
    result = rig.run("verify", REGION="eu-west-1", NTP_SERVER="pool.ntp.org")
    assert result.rc == 0, result.stderr
    index_of(result, "healthcheck --ntp-server pool.ntp.org http://nowd.example.com/now")


def test_plumbing_destroy_deletes_the_stack_and_waits(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="UPDATE_COMPLETE\n")
    result = rig.run("destroy", REGION="eu-west-1", STACK="nowd-test")
    assert result.rc == 0, result.stderr
    assert index_of(result, "delete-stack --stack-name nowd-test") < index_of(
        result, "wait stack-delete-complete --stack-name nowd-test"
    )
    assert not any("ec2" in line for line in lines(result)), "the AMIs stay"


def test_plumbing_destroy_without_a_stack_deletes_nothing(rig: Rig) -> None:
    new_stack(rig)
    result = rig.run("destroy", REGION="eu-west-1")
    assert result.rc == 0, result.stderr
    assert "nothing to delete" in result.stderr
    assert not any("delete-stack" in line for line in lines(result))


def test_plumbing_destroy_images_keeps_the_newest_and_the_one_in_use(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="UPDATE_COMPLETE\n")
    rig.on("describe-stacks", "ImageId", stdout="ami-0000000000000003\n")
    rig.on(
        "describe-images --owners self",
        stdout="ami-0000000000000001\tami-0000000000000002\tami-0000000000000003\tami-0000000000000004\n",
    )
    for n in (2, 3, 4):
        rig.on(
            f"describe-images --image-ids ami-000000000000000{n}", stdout=f"snap-{n}a\tsnap-{n}b\n"
        )
    result = rig.run("destroy-images", REGION="eu-west-1", KEEP="1")
    assert result.rc == 0, result.stderr
    deleted = [line.split()[-1] for line in lines(result) if "deregister-image" in line]
    assert deleted == ["ami-0000000000000002", "ami-0000000000000004"]
    snapshots = [line.split()[-1] for line in lines(result) if "delete-snapshot" in line]
    assert snapshots == ["snap-2a", "snap-2b", "snap-4a", "snap-4b"]
    assert "tag:Service" in lines(result)[index_of(result, "describe-images --owners self")]


def access_template(rig: Rig) -> str:
    path = rig.tmp / "access.yaml"
    path.write_text(
        "Parameters:\n"
        + "".join(
            f"  {name}:\n    Type: String\n"
            for name in (
                "GitHubRepository",
                "OidcProviderArn",
                "ServiceStackName",
                "CreateReviewerUser",
                "ReviewerPassword",
            )
        )
        + "Resources:\n  ReviewerUser:\n    Type: AWS::IAM::User\n"
    )
    return str(path)


def test_plumbing_access_with_reviewer_prints_the_password_once_and_never_logs_it(
    rig: Rig,
) -> None:
    rig.on("describe-stacks", "StackStatus", stderr=NO_STACK, rc=254)
    result = rig.run(
        "access",
        REGION="eu-west-1",
        REVIEWER="1",
        ACCESS_TEMPLATE=access_template(rig),
        GITHUB_REPOSITORY="example/nowd",
    )
    assert result.rc == 0, result.stderr
    params = {
        p["ParameterKey"]: p["ParameterValue"] for p in parameters(result, "create-change-set")
    }
    password = params.pop("ReviewerPassword")
    assert params == {
        "GitHubRepository": "example/nowd",
        "ServiceStackName": "nowd",
        "CreateReviewerUser": "true",
    }
    assert re.fullmatch(r"[A-Za-z0-9]{12}-[A-Za-z0-9]{12}", password)
    assert result.stdout.count(password) == 1
    assert password not in result.stderr
    assert all(password not in line for line in lines(result)), "not on a command line"
    assert "CAPABILITY_NAMED_IAM" in lines(result)[index_of(result, "create-change-set")]
    index_of(result, "wait stack-create-complete --stack-name nowd-access")


def test_plumbing_access_update_without_reviewer_keeps_the_reviewer(rig: Rig) -> None:
    rig.on("describe-stacks", "StackStatus", stdout="CREATE_COMPLETE\n")
    rig.on("describe-stacks", "CreateReviewerUser", stdout="true\n")
    rig.on(
        "describe-stacks",
        "ParameterKey",
        stdout='["GitHubRepository", "OidcProviderArn", "ServiceStackName", '
        '"CreateReviewerUser", "ReviewerPassword"]\n',
    )
    result = rig.run("access", REGION="eu-west-1", ACCESS_TEMPLATE=access_template(rig))
    assert result.rc == 0, result.stderr
    params = {p["ParameterKey"]: p for p in parameters(result, "create-change-set")}
    assert params["CreateReviewerUser"] == {
        "ParameterKey": "CreateReviewerUser",
        "UsePreviousValue": True,
    }
    assert params["ReviewerPassword"] == {
        "ParameterKey": "ReviewerPassword",
        "UsePreviousValue": True,
    }
    assert "one-time password" not in result.stdout


def test_plumbing_dry_run_prints_every_command_and_runs_none(rig: Rig) -> None:
    result = rig.run(
        "all",
        REGION="eu-west-1",
        REVIEWER="1",
        DRY_RUN="1",
        CHANGE_SET="cs",
        ACCESS_TEMPLATE=access_template(rig),
    )
    assert result.rc == 0, result.stderr
    # Only the local version check runs; nothing that builds or touches AWS.
    assert [call.line for call in result.calls] == ["packer version"]
    printed = [line[2:] for line in result.stderr.splitlines() if line.startswith("+ ")]
    for words in (
        ("aws", "sts get-caller-identity"),
        ("cargo build",),
        ("packer init",),
        ("packer build",),
        ("create-change-set", "--change-set-name cs"),
        ("execute-change-set",),
        ("wait stack-create-complete",),
        ("healthcheck",),
        ("create-change-set", "--stack-name nowd-access"),
    ):
        assert any(all(w in line for w in words) for line in printed), words
    assert "(generated at run time)" in result.stdout


def test_plumbing_unknown_step_is_a_usage_error(rig: Rig) -> None:
    result = rig.run("deploy-everything", REGION="eu-west-1")
    assert result.rc == 2
    assert "unknown step 'deploy-everything'" in result.stderr
    assert result.calls == []
