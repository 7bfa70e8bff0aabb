"""The zipapp is one file that runs alone: copied anywhere, run by python3
or as a command, with nothing else beside it. (The whole suite runs against
it too: make test sets HEALTHCHECK_ZIPAPP.)"""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile

from conftest import PROJECT, run_check

ZIPAPP = PROJECT / "dist" / "nowd-healthcheck.pyz"


def test_zipapp_holds_the_package_and_nothing_else():
    assert ZIPAPP.is_file(), "build it first: make -C healthcheck zipapp"
    names = {n for n in zipfile.ZipFile(ZIPAPP).namelist() if not n.endswith("/")}
    modules = {f"nowd_healthcheck/{p.name}" for p in (PROJECT / "nowd_healthcheck").glob("*.py")}
    assert names == modules | {"__main__.py"}


def test_zipapp_copied_alone_runs(tmp_path, time_server):
    alone = tmp_path / "nowd-healthcheck"
    shutil.copy(ZIPAPP, alone)
    os.chmod(alone, 0o755)
    server = time_server(skew=+1.5)
    for command in ([str(alone)], ["python3", str(alone)]):
        run = run_check(server.url, "--samples", "2", command=command)
        assert run.returncode == 2 and run.line.startswith("NOWD CRITICAL: offset +1."), run
    version = subprocess.run(
        [str(alone), "--version"], capture_output=True, text=True, cwd=tmp_path, timeout=30
    )
    assert version.stdout.startswith("nowd-healthcheck "), version
