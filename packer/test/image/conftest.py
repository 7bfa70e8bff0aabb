"""Fixtures of the VM test: the provisioned image, as packer would leave it,
and the figures the tests measure, printed together at the end."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
PACKER = HERE.parent.parent
REPO = PACKER.parent
STAGING = "/tmp/nowd-image"
# The MAC address of the build instance's interface: what its network
# configuration (written by cloud-init on the build instance) names.
BUILD_MAC = "02:b0:11:d0:00:01"
BUILD_HOSTNAME = "ip-172-31-0-10"

FIGURES = []
PREFIX = os.environ.get("NOWD_TEST_PREFIX", "nowd-img")


def figure(name, value):
    """One line of the summary (and printed where it is measured)."""
    FIGURES.append((name, value))
    print(f"{name}: {value}")


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("image test figures")
        for name, value in FIGURES:
            terminalreporter.write_line(f"{name:<48} {value}")


def in_chroot(root, *argv, env=None, log=None):
    """argv in a chroot with mount, PID and network namespaces of its own."""
    script = (
        'r="$1"; shift; mount -t proc proc "$r/proc" && mount -t sysfs -o ro sysfs "$r/sys" '
        '&& mount --rbind /dev "$r/dev" && exec chroot "$r" "$@"'
    )
    cmd = [
        "unshare",
        "--mount",
        "--net",
        "--pid",
        "--fork",
        "--propagation",
        "private",
        "--",
        "/bin/sh",
        "-c",
        script,
        "in_chroot",
        str(root),
    ]
    if env:
        cmd += ["env", *(f"{k}={v}" for k, v in env.items())]
    return subprocess.run(
        cmd + list(argv), stdout=log, stderr=subprocess.STDOUT if log else None, check=True
    )


def template_steps():
    """The provisioning scripts, in the template's order."""
    steps = re.findall(r"scripts/[a-z_-]+\.sh", (PACKER / "nowd.pkr.hcl").read_text())
    assert steps, "no scripts in nowd.pkr.hcl"
    return steps


@pytest.fixture(scope="session")
def work():
    d = Path(tempfile.mkdtemp(prefix=PREFIX + ".", dir="/var/tmp"))
    yield d
    artifacts = os.environ.get("NOWD_IMAGE_TEST_ARTIFACTS")
    if artifacts:
        Path(artifacts).mkdir(parents=True, exist_ok=True)
        for f in list(d.glob("*.log")) + list(d.glob("*/*.log")):
            name = f.name if f.parent == d else f"{f.parent.name}-{f.name}"
            shutil.copy(f, Path(artifacts) / name)
    subprocess.run(["rm", "-rf", "--one-file-system", str(d)])


@pytest.fixture(scope="session")
def provisioned_root(work):
    """Debian's AMI stand-in (ami-root.sh), given what the EC2 build instance
    has that the image must not keep, then packer's uploads and the five
    scripts, unchanged, as root, in the template's order."""
    binary = Path(
        os.environ.get("NOWD_BINARY", REPO / "target/x86_64-unknown-linux-musl/release/nowd")
    )
    assert binary.is_file(), f"no nowd binary at {binary} (make build)"
    made = subprocess.run(
        ["bash", str(PACKER / "test/ami-root.sh")], capture_output=True, text=True
    )
    sys.stdout.write(made.stderr)  # each retry and its cause
    if made.returncode != 0:
        pytest.fail(f"ami-root.sh failed (exit {made.returncode}):\n{made.stderr}", pytrace=False)
    base = made.stdout.strip()
    root = work / "rootfs"
    subprocess.run(["cp", "-a", base, str(root)], check=True)

    # The build instance: a login user with a key, cloud-init's state of
    # that instance, and the network configuration cloud-init wrote for its
    # interface (by MAC address, as on EC2).
    in_chroot(root, "useradd", "--create-home", "--shell", "/bin/bash", "admin")
    for d in ("home/admin/.ssh", "root/.ssh"):
        (root / d).mkdir(parents=True, exist_ok=True)
        (root / d / "authorized_keys").write_text(
            "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBuild packer\n"
        )
    inst = root / "var/lib/cloud/instances/i-0b0110000000000b1"
    inst.mkdir(parents=True)
    (root / "var/lib/cloud/data").mkdir(parents=True, exist_ok=True)
    os.symlink("/var/lib/cloud/instances/i-0b0110000000000b1", root / "var/lib/cloud/instance")
    # Debian's AMI has the security suite in its sources (debootstrap
    # writes only the release).
    (root / "etc/apt/sources.list").unlink(missing_ok=True)
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        "Types: deb\nURIs: http://deb.debian.org/debian\nSuites: trixie trixie-updates\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        "Types: deb\nURIs: http://security.debian.org/debian-security\nSuites: trixie-security\n"
        "Components: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )
    assert list((root / "etc/ssh").glob("ssh_host_*")), "the base has SSH host keys to remove"
    # Debian's AMI mounts its root read-write (by PARTUUID there, by label
    # here: the test's disk has no partition table); cloud-init grows it.
    (root / "etc/fstab").write_text("LABEL=root / ext4 rw,discard,errors=remount-ro 0 1\n")
    # cloud-init named the build instance after its address.
    (root / "etc/hostname").write_text(f"{BUILD_HOSTNAME}\n")
    (root / "etc/netplan").mkdir(exist_ok=True)
    (root / "etc/netplan/50-cloud-init.yaml").write_text(
        "network:\n  version: 2\n  ethernets:\n    ens5:\n      dhcp4: true\n"
        f"      match:\n        macaddress: {BUILD_MAC}\n      set-name: ens5\n"
    )
    os.chmod(root / "etc/netplan/50-cloud-init.yaml", 0o600)

    # As packer's file provisioners upload them.
    staging = root / STAGING.lstrip("/")
    (staging / "files").mkdir(parents=True)
    shutil.copy(binary, staging / "nowd")
    shutil.copy(REPO / "systemd/nowd.service", staging / "nowd.service")
    subprocess.run(["cp", "-a", f"{PACKER}/files/.", str(staging / "files")], check=True)
    with open(work / "provision.log", "wb") as log:
        for n, step in enumerate(template_steps(), 1):
            script = root / f"tmp/script_{n}.sh"
            shutil.copy(PACKER / step, script)
            script.chmod(0o755)
            log.write(f"-- {step}\n".encode())
            log.flush()
            try:
                in_chroot(root, f"/tmp/script_{n}.sh", env={"NOWD_STAGING": STAGING}, log=log)
            except subprocess.CalledProcessError:
                sys.stdout.write((work / "provision.log").read_text()[-4000:])
                raise
            script.unlink(missing_ok=True)
    return root


@pytest.fixture(scope="session")
def image_mib(provisioned_root):
    out = subprocess.run(
        ["du", "-sx", "--block-size=1M", str(provisioned_root)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return int(out.split()[0])


def copy_of(root, dest):
    """A copy of the provisioned root for one machine: each boots its own."""
    subprocess.run(["cp", "-a", str(root), str(dest)], check=True)
    return dest


def add_test_shell(root):
    """Test-only, after the image was provisioned and validated: a root
    shell on the second serial port, the test's only way in (the image has
    no SSH and no login). Nothing like it is in the image."""
    unit = root / "etc/systemd/system/nowd-test-shell.service"
    unit.write_text(
        "[Unit]\nDescription=Image test only: a root shell on ttyS1\n"
        "After=systemd-udev-settle.service\n\n"
        "[Service]\nEnvironment=PS1= PS2= TERM=dumb NO_COLOR=1 SYSTEMD_COLORS=0\n"
        "ExecStart=/bin/sh -c 'stty -F /dev/ttyS1 raw -echo 115200 && "
        "exec /bin/sh </dev/ttyS1 >/dev/ttyS1 2>&1'\nRestart=always\nRestartSec=1\n"
    )
    wants = root / "etc/systemd/system/multi-user.target.wants"
    wants.mkdir(exist_ok=True)
    os.symlink("/etc/systemd/system/nowd-test-shell.service", wants / "nowd-test-shell.service")
    return root
