"""ami-root.sh, the image tests' cold cache: a mirror that fails is retried,
and each failure's cause is printed. Runs debootstrap for real, against a
mirror on a loopback port nothing listens on."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "ami-root.sh"


@pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("debootstrap"), reason="needs root and debootstrap"
)
def test_a_failing_mirror_is_tried_three_times_and_its_cause_printed(tmp_path):
    env = dict(
        os.environ,
        NOWD_IMAGE_CACHE=str(tmp_path),
        DEBIAN_MIRROR="http://127.0.0.1:9/debian",
        NOWD_IMAGE_RETRY_WAIT_S="0",
    )
    r = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert r.returncode != 0 and r.stdout == ""
    for n in (1, 2, 3):
        assert f"debootstrap failed (attempt {n} of 3)" in r.stderr, r.stderr
    assert r.stderr.count("Failed getting release file http://127.0.0.1:9/debian") == 3, r.stderr
    assert "giving up" in r.stderr
    assert not [p for p in tmp_path.iterdir() if not p.name.endswith(".tmp")], "nothing published"
