"""Fixtures for the tests of tools/deploy: recorders in place of aws, packer and cargo.

Each recorder appends its arguments (and the contents of any file:// argument) to a
log, then answers by the first rule whose words all occur in its command line. PATH
holds the recorders and a sandbox of the system tools the script uses, nothing else,
so a tool can be taken away. These prove the script's plumbing, not AWS.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tools" / "deploy"

# What tools/deploy runs besides the recorded commands.
SYSTEM_TOOLS = [
    "bash", "env", "jq", "git", "mktemp", "rm", "date", "awk", "grep", "sed", "head",
    "tr", "sleep", "cat", "dirname", "python3", "printf", "sort", "touch", "tee", "wc",
]  # fmt: skip

RECORDER = """#!{python}
import json, os, sys
from pathlib import Path

name = Path(sys.argv[0]).name
argv = sys.argv[1:]
files = {{}}
for arg in argv:
    if arg.startswith("file://") and arg.endswith(".json"):
        files[arg] = Path(arg[len("file://"):]).read_text()
with open(os.environ["RECORDER_LOG"], "a") as log:
    log.write(json.dumps({{"tool": name, "argv": argv, "files": files}}) + "\\n")
line = " ".join([name] + argv)
for rule in json.loads(Path(os.environ["RECORDER_RULES"]).read_text()):
    if all(word in line for word in rule["when"]):
        if "write" in rule:
            Path(rule["write"]["path"]).write_text(rule["write"]["text"])
        sys.stdout.write(rule.get("stdout", ""))
        sys.stderr.write(rule.get("stderr", ""))
        sys.exit(rule.get("rc", 0))
sys.exit(0)
"""


@dataclass
class Call:
    tool: str
    argv: list[str]
    files: dict[str, str]

    @property
    def line(self) -> str:
        return " ".join([self.tool, *self.argv])


@dataclass
class Result:
    rc: int
    stdout: str
    stderr: str
    calls: list[Call]


@dataclass
class Rig:
    """The recorders, their rules and the script's environment."""

    tmp: Path
    bin: Path
    rules: list[dict] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)

    def on(self, *words: str, stdout: str = "", stderr: str = "", rc: int = 0, **extra) -> None:
        """Answer a command line containing every word; earlier rules win."""
        self.rules.append({"when": list(words), "stdout": stdout, "stderr": stderr, "rc": rc})
        self.rules[-1].update(extra)

    def remove(self, tool: str) -> None:
        (self.bin / tool).unlink()

    def run(self, *steps: str, **env: str) -> Result:
        rules = self.tmp / "rules.json"
        rules.write_text(json.dumps(self.rules))
        log = self.tmp / "calls.jsonl"
        log.write_text("")
        full_env = {
            "PATH": f"{self.bin}:{self.tmp / 'system'}",
            "HOME": str(self.tmp),
            "RECORDER_LOG": str(log),
            "RECORDER_RULES": str(rules),
            **self.env,
            **env,
        }
        proc = subprocess.run(
            [str(SCRIPT), *steps], env=full_env, capture_output=True, text=True, timeout=60
        )
        calls = [Call(**json.loads(line)) for line in log.read_text().splitlines()]
        return Result(proc.returncode, proc.stdout, proc.stderr, calls)


@pytest.fixture
def rig(tmp_path: Path) -> Rig:
    system = tmp_path / "system"
    system.mkdir()
    for tool in SYSTEM_TOOLS:
        found = shutil.which(tool, path="/usr/local/bin:/usr/bin:/bin")
        assert found, f"{tool} is needed by the tests"
        (system / tool).symlink_to(found)
    (system / "python3").unlink()
    (system / "python3").symlink_to(sys.executable)
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool in ("aws", "packer", "cargo", "rustup", "healthcheck"):
        path = stubs / tool
        path.write_text(RECORDER.format(python=sys.executable))
        path.chmod(0o755)
    rig = Rig(tmp=tmp_path, bin=stubs)
    rig.env = {
        "MANIFEST": str(tmp_path / "manifest.json"),
        "PACKAGES": str(tmp_path / "packages.txt"),
        "HEALTHCHECK": str(stubs / "healthcheck"),
        "VERIFY_PAUSE": "0",
        "GITHUB_OUTPUT": str(tmp_path / "github-output"),
        "GITHUB_STEP_SUMMARY": str(tmp_path / "github-step-summary"),
    }
    rig.on("packer version", stdout="Packer v1.11.2\n")
    rig.on("sts get-caller-identity", stdout="arn:aws:iam::123456789012:user/tester\n")
    return rig
