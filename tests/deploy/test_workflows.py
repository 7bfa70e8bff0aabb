"""The workflows' own rules, beyond what actionlint and zizmor check (make lint-workflows).

Static: GitHub Actions cannot run here. These read the YAML and the Makefile.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
PINNED = re.compile(r"^\s*(?:-\s*)?uses:\s*([\w.-]+/[\w./-]+)@([0-9a-f]{40}) # v\d+(\.\d+)*\s*$")
ASSUMES_A_ROLE = "aws-actions/configure-aws-credentials"


def load(path: Path) -> dict:
    data = yaml.safe_load(path.read_text())
    data["on"] = data.pop(True, data.get("on"))  # YAML 1.1 reads the key `on` as true
    return data


def make_test_prerequisites() -> set[str]:
    out = subprocess.run(["make", "-pnq", "test"], cwd=ROOT, capture_output=True, text=True).stdout
    # The rule's line, not its target-specific variable's (test: TEST_PROFILE = ...).
    (line,) = [line for line in out.splitlines() if line.startswith("test:") and "=" not in line]
    return set(line.split(":", 1)[1].split())


def test_there_are_the_four_workflows() -> None:
    assert [p.name for p in WORKFLOWS] == ["ci.yml", "deploy.yml", "rebuild.yml", "watch.yml"]


# make test's first prerequisites, which each CI job runs before its share.
SETUP = ["root", "deps"]


def test_ci_jobs_together_run_exactly_make_test() -> None:
    """Split for speed, but nothing of make test left out and nothing added."""
    job = load(ROOT / ".github/workflows/ci.yml")["jobs"]["test"]
    targets = [t for entry in job["strategy"]["matrix"]["targets"] for t in entry.split()]
    assert len(targets) == len(set(targets)), "a target in two jobs"
    assert set(targets) | set(SETUP) == make_test_prerequisites()
    assert any(f"make {' '.join(SETUP)} " in step.get("run", "") for step in job["steps"])


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_nothing_is_granted_at_the_top_and_each_job_grants_its_own(path: Path) -> None:
    workflow = load(path)
    assert workflow["permissions"] == {}
    assert "pull_request_target" not in (workflow["on"] or {})
    for name, job in workflow["jobs"].items():
        assert "permissions" in job, name
        if "uses" not in job:  # a reusable workflow's caller has no timeout of its own
            assert job.get("timeout-minutes"), f"{name} has no timeout"


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_id_token_only_where_a_role_is_assumed(path: Path) -> None:
    for name, job in load(path)["jobs"].items():
        assumes = any(ASSUMES_A_ROLE in step.get("uses", "") for step in job.get("steps", []))
        calls_deploy = job.get("uses", "").endswith("deploy.yml")
        wants = job["permissions"].get("id-token") == "write"
        assert wants == (assumes or calls_deploy), name
        assert set(job["permissions"]) <= {"contents", "id-token"}, name
        assert job["permissions"].get("contents") in (None, "read"), name


@pytest.mark.parametrize("path", WORKFLOWS, ids=lambda p: p.name)
def test_checkouts_keep_no_credentials(path: Path) -> None:
    for name, job in load(path)["jobs"].items():
        for step in job.get("steps", []):
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, name


def test_every_action_is_pinned_to_one_commit_with_its_version() -> None:
    pins: dict[str, set[str]] = {}
    for path in WORKFLOWS:
        for line in path.read_text().splitlines():
            if re.match(r"^\s*(-\s*)?uses:", line) and "./.github/workflows/" not in line:
                match = PINNED.match(line)
                assert match, f"{path.name}: not pinned to a full commit SHA with # vX: {line}"
                pins.setdefault(match.group(1), set()).add(match.group(2))
    assert pins, "no action found"
    assert {a: len(s) for a, s in pins.items()} == dict.fromkeys(pins, 1), pins


def test_deploy_steps_only_call_tools_deploy() -> None:
    """The logic is in the script make deploy runs; the workflow only wires it."""
    for name, job in load(ROOT / ".github/workflows/deploy.yml")["jobs"].items():
        runs = [step["run"] for step in job["steps"] if "run" in step]
        assert runs, name
        assert all(re.fullmatch(r"tools/deploy( [a-z-]+)+\n?", run) for run in runs), runs


def test_one_approval_after_the_plan() -> None:
    """Only apply waits for the production environment; plan runs before it, unapproved,
    so the reviewer approves after reading the change set."""
    jobs = load(ROOT / ".github/workflows/deploy.yml")["jobs"]
    assert [name for name, job in jobs.items() if "environment" in job] == ["apply"]
    assert jobs["apply"]["environment"] == "production"
    assert "plan" in jobs["apply"]["needs"]
    assert any("apply" in s.get("run", "") for s in jobs["apply"]["steps"])
    # Roles by OIDC, named by repository variables: no stored keys.
    text = (ROOT / ".github/workflows/deploy.yml").read_text()
    assert "secrets." not in text and "aws-access-key-id" not in text
