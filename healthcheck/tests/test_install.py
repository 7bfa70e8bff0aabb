"""The package installs a working nowd-healthcheck command.

Built offline, without build isolation, with the setuptools that `make test`
put into the venv; installed into a fresh venv, as pipx would do.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import venv

from conftest import PROJECT, run_check

PACKAGE_FILES = ("pyproject.toml", "README.md")


def test_wheel_installs_a_working_command(tmp_path, time_server):
    source = tmp_path / "src"  # a copy: building leaves build/ and *.egg-info behind
    source.mkdir()
    for name in PACKAGE_FILES:
        shutil.copy(PROJECT / name, source / name)
    shutil.copytree(
        PROJECT / "nowd_healthcheck",
        source / "nowd_healthcheck",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    wheels = tmp_path / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--wheel-dir",
            str(wheels),
            str(source),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    (wheel,) = wheels.glob("nowd_healthcheck-*.whl")

    target = tmp_path / "venv"
    venv.create(target, with_pip=False)
    python = target / "bin" / "python"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--no-index",
            "--no-deps",
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )

    command = [str(target / "bin" / "nowd-healthcheck")]
    version = run_check("--version", command=command)
    assert version.returncode == 0 and version.line.startswith("nowd-healthcheck "), version

    server = time_server(skew=+0.7)
    run = run_check(server.url, "--samples", "2", command=command)
    assert run.returncode == 1, run
    assert run.line.startswith("NOWD WARNING: offset +0.")
    assert run_check("ftp://x", command=command).returncode == 3
