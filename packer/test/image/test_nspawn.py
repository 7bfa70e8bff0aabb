"""The provisioned image booted as a container: systemd as PID 1
(systemd-nspawn --boot) in a network namespace of its own, wired by a veth
pair to a second namespace the probes run in (10.213.0.0/30 and
fd6e:6f77:6400::/64, plus 203.0.113.0/30 as a public source; neither
namespace routes anywhere else, so no probe can leave this machine).
What a container cannot show (a clock of its own, cloud-init, the real
network) is the VM test's (test_vm.py).
"""

import glob
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import HERE, PREFIX, copy_of, figure, in_chroot

GUEST4, PROBE4 = "10.213.0.2", "10.213.0.1"
# Not in RFC 1918 (TEST-NET-3, routed nowhere): outside the unit's allow list.
PUBLIC_GUEST4, PUBLIC_PROBE4 = "203.0.113.2", "203.0.113.1"
GUEST6, PROBE6 = "fd6e:6f77:6400::2", "fd6e:6f77:6400::1"
NOWD_ROOT = "/usr/local/lib/nowd/root"
MAX_EXPOSURE = float(os.environ.get("MAX_EXPOSURE", "1.5"))
# Keys of lynis's sysctl list the image leaves as they are, and why.
SYSCTL_KEPT = {
    "kernel.modules_disabled": "would forbid loading modules after sysctl runs at boot "
    "(nf_tables for the firewall, ENA/NVMe hot-plug)",
}


# nsenter's flags for every namespace of the target, its root and its directory.
ENTER_ALL = ("-m", "-u", "-i", "-n", "-p", "-C", "-r", "-w")


def run(*argv, check=True, **kw):
    return subprocess.run(argv, check=check, capture_output=True, text=True, **kw)


class Container:
    def __init__(self, root, work):
        self.root, self.work = Path(root), Path(work)
        tag = f"{PREFIX}-{os.getpid()}"
        self.ns_guest, self.ns_probe = f"{tag}-g", f"{tag}-p"
        for ns in (self.ns_guest, self.ns_probe):
            run("ip", "netns", "del", ns, check=False)
            run("ip", "netns", "add", ns)
            run("ip", "-n", ns, "link", "set", "lo", "up")
        run(
            "ip",
            "link",
            "add",
            "probe0",
            "netns",
            self.ns_probe,
            "type",
            "veth",
            "peer",
            "name",
            "host0",
            "netns",
            self.ns_guest,
        )
        for ns, dev, addrs in (
            (self.ns_guest, "host0", (f"{GUEST4}/30", f"{PUBLIC_GUEST4}/30")),
            (self.ns_probe, "probe0", (f"{PROBE4}/30", f"{PUBLIC_PROBE4}/30")),
        ):
            for a in addrs:
                run("ip", "-n", ns, "addr", "add", a, "dev", dev)
            run(
                "ip",
                "-n",
                ns,
                "addr",
                "add",
                (GUEST6 if dev == "host0" else PROBE6) + "/64",
                "dev",
                dev,
                "nodad",
            )
            run("ip", "-n", ns, "link", "set", dev, "up")
        routes = run("ip", "-n", self.ns_probe, "route", "show").stdout
        assert "default" not in routes, "the probe namespace must not route anywhere"
        self.console = self.work / "console.log"
        # The guest's systemd enforces IPAddressAllow=, SocketBindAllow= and
        # DevicePolicy= with BPF on the unit's cgroup, as on an instance: that
        # takes the unified hierarchy (the only one on Debian 13 on EC2) and
        # bpf(), which nspawn's own filter refuses unless allowed.
        env = dict(os.environ, SYSTEMD_NSPAWN_UNIFIED_HIERARCHY="1")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--boot",
                "--keep-unit",
                "--register=no",
                "--quiet",
                "-D",
                str(root),
                f"--network-namespace-path=/run/netns/{self.ns_guest}",
                "--capability=CAP_NET_ADMIN",
                "--system-call-filter=adjtimex clock_adjtime bpf",
                "--console=pipe",
            ],
            stdin=subprocess.DEVNULL,
            stdout=open(self.console, "wb"),  # noqa: SIM115 - the container's, for its life
            stderr=subprocess.STDOUT,
            env=env,
        )
        self.leader = None
        for _ in range(200):
            kids = run("pgrep", "-P", str(self.proc.pid), check=False).stdout.split()
            if kids and Path(f"/proc/{kids[0]}/comm").read_text().strip() == "systemd":
                self.leader = kids[0]
                break
            time.sleep(0.05)
        assert self.leader, self.console.read_text()

    def inside(self, *argv):
        """argv run inside the guest: all its namespaces, its root and directory."""
        return ["nsenter", "-t", self.leader, *ENTER_ALL, "--", *argv]

    def sh(self, command, check=True):
        """A shell command inside the guest (its namespaces and root)."""
        return run(*self.inside("/bin/sh", "-c", command), check=check).stdout

    def probe(self, *argv, check=False, **kw):
        return subprocess.run(
            ["ip", "netns", "exec", self.ns_probe, *argv],
            check=check,
            capture_output=True,
            text=True,
            **kw,
        )

    def curl(self, url, *opts, max_time=2):
        r = self.probe("curl", "-sS", "--max-time", str(max_time), *opts, url)
        return r.returncode, r.stdout

    def close(self):
        if self.proc.poll() is None:
            self.proc.terminate()  # nspawn asks the guest's systemd to power off
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        for ns in (self.ns_guest, self.ns_probe):
            run("ip", "netns", "del", ns, check=False)


@pytest.fixture(scope="module")
def root(provisioned_root, work):
    r = copy_of(provisioned_root, work / "nspawn-root")
    # Test-only additions, after the image was provisioned and measured: the
    # clock probe and the lynis profile.
    (r / "opt/nowd-test").mkdir(parents=True)
    # The veth's addresses are set from outside: systemd-networkd must not
    # take host0 over, neither with the image's DHCP on any ethernet
    # interface nor with its built-in configuration for containers.
    network = r / "etc/systemd/network"
    network.mkdir(parents=True, exist_ok=True)
    for f in [*network.glob("*.network"), network / "80-container-host0.network"]:
        f.unlink(missing_ok=True)
        os.symlink("/dev/null", f)
    # With no link of its own to configure, networkd's wait for one would
    # hold chrony, and nowd after it, for its 2 min timeout. The root is
    # nspawn's directory, not the disk /etc/fstab names: nothing to remount
    # (the VM test boots the image's read-only root).
    for unit in ("systemd-networkd-wait-online.service", "systemd-remount-fs.service"):
        (r / "etc/systemd/system" / unit).unlink(missing_ok=True)
        os.symlink("/dev/null", r / "etc/systemd/system" / unit)
    run(
        "cc",
        "-static",
        "-Os",
        "-o",
        str(r / "opt/nowd-test/clockprobe"),
        str(HERE.parent / "clockprobe.c"),
    )
    (r / "opt/nowd-test/lynis.prf").write_text(
        (HERE.parent / "lynis-container.prf").read_text()
        + "".join(f"skip-test=KRNL-6000:{k}\n" for k in host_sysctl_keys(r))
    )
    return r


def lynis_sysctl(root):
    for line in (root / "etc/lynis/default.prf").read_text().splitlines():
        if line.startswith("config-data=sysctl;"):
            key, expected = line.split(";")[1:3]
            yield key, expected.split("|")


def image_sysctl(root):
    out = {}
    for f in sorted(glob.glob(str(root / "etc/sysctl.d/*.conf"))):
        for line in Path(f).read_text().splitlines():
            line = line.split("#")[0].strip()
            if "=" in line:
                k, v = (x.strip() for x in line.split("=", 1))
                out[k] = v
    return out


def host_sysctl_keys(root):
    """lynis's kernel.*, fs.* and dev.* checks (KRNL-6000) would read this
    machine's kernel in a container, not the image's: each is skipped in the
    audit, and test_sysctl_files_set_what_lynis_expects checks them instead."""
    image = image_sysctl(root)
    for key, _ in lynis_sysctl(root):
        if key.startswith("net.") and key != "net.core.bpf_jit_harden":
            continue  # per network namespace: the guest's own, lynis checks it
        if not key.startswith(("kernel.", "fs.", "dev.", "net.")):
            continue  # not Linux
        if key not in image and not os.path.exists("/proc/sys/" + key.replace(".", "/")):
            continue  # no such key in Linux (exec-shield, maps_protect, ...)
        yield key


@pytest.fixture(scope="module")
def guest(root, work):
    c = Container(root, work)
    try:
        # systemd-sysctl does not run in a container (/proc/sys is read-only
        # there but for /proc/sys/net): the image's net.* keys, as at boot.
        for k, v in image_sysctl(root).items():
            if k.startswith("net."):
                run(
                    "ip", "netns", "exec", c.ns_guest, "sysctl", "-q", "-w", f"{k}={v}", check=False
                )
        first = None
        while time.monotonic() - c.started < 30 and c.proc.poll() is None:
            if c.curl(f"http://{GUEST4}/now", "-f", "-o", "/dev/null", max_time=1)[0] == 0:
                first = time.monotonic()
                break
            time.sleep(0.05)
        assert first, c.probe(
            "curl", "-v", "--max-time", "2", f"http://{GUEST4}/now"
        ).stderr + c.sh(
            "systemctl --no-pager --failed; ip route; ss -tlnp; "
            "journalctl --no-pager -n 30 -u nowd",
            check=False,
        )
        figure("nspawn: boot to first GET /now", f"{first - c.started:.2f} s")
        c.sh("timeout 30 systemctl is-system-running --wait", check=False)
        yield c
    finally:
        c.close()


def nowd_pid(guest):
    return guest.sh("systemctl show -P MainPID nowd.service").strip()


# --- the image as provisioned ----------------------------------------------------


def test_image_size(image_mib):
    figure("image size (root fs)", f"{image_mib} MiB (the AMI's packages, lynis for the audit)")


def test_unit_exposure_with_trixies_systemd_analyze(root):
    out = in_chroot(
        root,
        "env",
        "SYSTEMD_COLORS=0",
        "SYSTEMD_URLIFY=0",
        "systemd-analyze",
        "security",
        "--offline=true",
        "/etc/systemd/system/nowd.service",
        log=subprocess.PIPE,
    ).stdout.decode()
    score = float(re.search(r"Overall exposure level for [^:]*: ([0-9.]+)", out).group(1))
    figure("unit exposure (trixie's analyze)", f"{score}")
    assert score <= MAX_EXPOSURE, out


def test_sysctl_files_set_what_lynis_expects(root):
    image = image_sysctl(root)
    wrong = {
        k: (image.get(k), want)
        for k, want in lynis_sysctl(root)
        if k in set(host_sysctl_keys(root)) and k not in SYSCTL_KEPT and image.get(k) not in want
    }
    assert not wrong, wrong


# --- from outside ------------------------------------------------------------------


def test_nothing_failed_and_the_bpf_filters_are_on(guest):
    assert guest.sh("systemctl is-active nftables.service", check=False).strip() == "active"
    journal = guest.sh("journalctl -q -b -o cat", check=False)
    assert "does not support BPF/cgroup firewalling" not in journal


def test_now_over_ipv4(guest):
    rc, body = guest.curl(f"http://{GUEST4}/now")
    assert rc == 0 and re.fullmatch(r"\d{4}-\d\d-\d\dT[0-9:.]+Z\n", body), body


def test_the_instance_id_is_the_machine_ids_app_specific_id(guest):
    """The credential reaches nowd inside RootDirectory= on trixie's systemd,
    and the id it answers with is what systemd derives, not the machine id."""
    rc, headers = guest.curl(f"http://{GUEST4}/now", "-o", "/dev/null", "-D", "-")
    instance = re.search(r"^Nowd-Instance: (\S+)\r?$", headers, re.M)
    expected = guest.sh(
        "systemd-id128 machine-id --app-specific=a987e796b82e44898e3ae4e4b6b53060"
    ).strip()  # APP_ID in src/instance.rs
    assert rc == 0 and instance and instance.group(1) == expected, headers
    assert expected.replace("-", "") != guest.sh("cat /etc/machine-id").strip()


def test_json_has_the_clock_fields_adjtimex_works_in_the_sandbox(guest):
    _, body = guest.curl(f"http://{GUEST4}/now", "-H", "Accept: application/json")
    c = json.loads(body)["clock"]
    assert isinstance(c, dict), body
    assert isinstance(c["synchronized"], bool) and isinstance(c["max_error_us"], int)


def test_connection_cap(guest, root):
    """The firewall counts every open connection to :80, whatever its source.
    nowd closes a connection after 5 s without data, so each held one sends a
    byte a second (a request line that never ends) while the rest are opened."""
    cap = int(
        re.search(
            r"tcp dport 80 ct state new ct count over (\d+) ",
            (root / "etc/nftables.conf").read_text(),
        ).group(1)
    )
    script = r"""
import resource, socket, sys, time
host, cap = sys.argv[1], int(sys.argv[2])
resource.setrlimit(resource.RLIMIT_NOFILE, (cap + 1024, cap + 1024))
held, refused, last = [], 0, time.monotonic()
for _ in range(cap + 16):
    s = socket.socket(); s.settimeout(3)
    try:
        s.connect((host, 80)); held.append(s)
    except OSError:
        refused += 1; s.close()
    if time.monotonic() - last > 1:
        for h in held:
            try: h.send(b"X")
            except OSError: pass
        last = time.monotonic()
print(len(held), refused)
"""
    t = time.monotonic()
    out = guest.probe(sys.executable, "-c", script, GUEST4, str(cap), timeout=120).stdout.split()
    figure(f"nspawn: {cap} connections to the cap", f"{time.monotonic() - t:.1f} s")
    assert out == [str(cap), "16"], out


def scan(guest, *args):
    # Everything but 80 is dropped, so nmap waits out each probe: keep the
    # waits short (a veth answers in microseconds).
    out = guest.probe(
        "nmap",
        "-n",
        "-Pn",
        "-T5",
        "--max-retries",
        "1",
        "--min-rate",
        "20000",
        "--max-rtt-timeout",
        "50ms",
        "--host-timeout",
        "120s",
        "-oG",
        "-",
        *args,
        timeout=300,
    ).stdout
    return re.findall(r"(\d+)/open/[a-z]+", out)


def test_only_tcp_80_is_reachable_and_only_over_ipv4(guest):
    assert scan(guest, "-sS", "-p1-65535", GUEST4) == ["80"]
    assert scan(guest, "-6", "-sS", "-p1-65535", GUEST6) == []
    assert scan(guest, "-sU", "-p123", GUEST4) + scan(guest, "-6", "-sU", "-p123", GUEST6) == []


def test_ipv6_gets_no_answer_from_the_units_allow_list(guest):
    # The firewall admits TCP 80 over IPv6 too; nowd's unit allows no IPv6
    # source but ::1 (the instances have IPv4 only).
    assert guest.curl(f"http://[{GUEST6}]/now", "-o", "/dev/null")[0] == 28


def test_a_public_source_passes_the_firewall_and_is_dropped_by_the_unit(guest):
    def accepted():
        out = guest.sh("nft list chain inet filter input")
        return int(re.search(r"tcp dport 80 counter packets (\d+) bytes.* accept", out).group(1))

    before = accepted()
    rc, _ = guest.curl(
        f"http://{PUBLIC_GUEST4}/now", "--interface", PUBLIC_PROBE4, "-o", "/dev/null"
    )
    through = accepted() - before
    _, private = guest.curl(
        f"http://{PUBLIC_GUEST4}/now",
        "--interface",
        PROBE4,
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
    )
    assert (rc, through >= 1, private) == (28, True, "200")


# --- from inside --------------------------------------------------------------------


def status(guest, pid):
    return dict(
        line.split(":", 1)
        for line in guest.sh(f"cat /proc/{pid}/status").splitlines()
        if ":" in line
    )


def test_nowd_runs_as_a_dynamic_user_with_the_units_capabilities(guest, root):
    st = status(guest, nowd_pid(guest))
    uid = int(st["Uid"].split()[0])
    assert 61184 <= uid <= 65519, uid
    ambient = (
        "AmbientCapabilities=CAP_NET_BIND_SERVICE"
        in (root / "etc/systemd/system/nowd.service").read_text()
    )
    want = "0000000000000400" if ambient else "0000000000000000"
    for cap in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb"):
        assert st[cap].strip() == want, (cap, st[cap])
    assert st["NoNewPrivs"].strip() == "1" and st["Seccomp"].strip() == "2"
    own_userns = guest.sh(f"readlink /proc/{nowd_pid(guest)}/ns/user") != guest.sh(
        "readlink /proc/1/ns/user"
    )
    assert own_userns is not ambient, "the capability needs the host's user namespace"
    if ambient:
        assert int(guest.sh("sysctl -n net.ipv4.ip_unprivileged_port_start")) > 80


def test_every_nowd_thread_runs_under_sched_batch_set_by_the_unit(guest):
    """CPUSchedulingPolicy=batch, applied by the image's systemd: the unit's
    system call filter denies nowd its own sched_setscheduler, so without the
    unit's line every thread would stay at SCHED_OTHER (0)."""
    pid = nowd_pid(guest)
    # Field 41 of each thread's stat is the policy: the 39th after the name.
    policies = guest.sh(
        f"for t in /proc/{pid}/task/*; do cut -d')' -f2 $t/stat | awk '{{print $39}}'; done"
    )
    assert policies.split() and set(policies.split()) == {"3"}, policies  # 3: SCHED_BATCH


def test_nothing_but_nowd_listens_beyond_loopback(guest):
    local = re.compile(r"^(127\.[0-9.]+(%lo)?|\[::1\]|\[::ffff:127\.[0-9.]+\]):")
    sockets = guest.sh("ss -Htulpn").splitlines()
    beyond = [line.split()[4] for line in sockets if not local.match(line.split()[4])]
    assert beyond == ["*:80"], sockets


def test_nowd_sees_nothing_in_its_root_but_its_binary(guest):
    # readdir() reports a bind-mounted socket as the empty file under it: stat.
    visible = guest.sh(f"""cd /proc/{nowd_pid(guest)}/root && find . -mindepth 1 \
        \\( -path ./proc -o -path ./sys -o -path ./dev \\) -prune -o ! -type d -print | sort |
        while read -r f; do
          if [ -L "$f" ]; then t=link; elif [ -S "$f" ]; then t=socket; else t=file; fi
          echo "$t ${{f#.}}"
        done""").splitlines()
    files = [line.split()[1] for line in visible if line.startswith("file ")]
    # systemd (254 and later) hands every service with a root of its own the
    # host's os-release, read-only; the machine id is nowd's one credential
    # (LoadCredential=), for its instance id.
    assert files == [
        "/run/credentials/nowd.service/machine-id",
        "/run/host/.os-release-stage/os-release",
        "/usr/local/bin/nowd",
    ], visible


def test_the_notify_socket_is_inside_the_root_and_ready_arrived(guest):
    pid = nowd_pid(guest)
    env = guest.sh(f"tr '\\0' '\\n' < /proc/{pid}/environ")
    notify = re.search(r"^NOTIFY_SOCKET=(.*)$", env, re.M).group(1)
    guest.sh(f"test -S /proc/{pid}/root{notify}")
    assert guest.sh("systemctl is-active nowd.service").strip() == "active"


def back_within(guest, seconds, old_pid):
    t = time.monotonic()
    while time.monotonic() - t < seconds:
        cur = nowd_pid(guest)
        if (
            cur not in (old_pid, "0")
            and guest.curl(f"http://{GUEST4}/now", "-f", "-o", "/dev/null", max_time=0.5)[0] == 0
        ):
            return time.monotonic() - t
        time.sleep(0.05)
    return None


def test_restart_after_kill_9(guest):
    pid = nowd_pid(guest)
    guest.sh(f"kill -KILL {pid}")
    took = back_within(guest, 5, pid)
    figure("nspawn: restart after kill -9", f"{took:.2f} s" if took else "never")
    assert took is not None and took <= 2


def test_the_watchdog_replaces_a_frozen_nowd(guest):
    pid = nowd_pid(guest)
    guest.sh(f"kill -STOP {pid}")
    took = back_within(guest, 15, pid)
    if took is None:
        guest.sh(f"kill -CONT {pid}", check=False)
    figure(
        "nspawn: frozen nowd replaced (watchdog)",
        f"{took:.2f} s (WatchdogSec=5s)" if took else "never",
    )
    assert took is not None


def test_adjtimex_reads_and_refuses_writes_under_nowds_sandbox(guest):
    # A copy of nowd.service that runs the probe (static too) in nowd's place,
    # bound onto /usr/local/bin/nowd in the same empty root.
    unit = guest.sh("cat /etc/systemd/system/nowd.service")
    unit = re.sub(r"(?m)^ExecStart=.*", "ExecStart=/usr/local/bin/nowd clock", unit)
    unit = re.sub(
        r"(?m)^BindReadOnlyPaths=/usr/local/bin/nowd$",
        "BindReadOnlyPaths=/opt/nowd-test/clockprobe:/usr/local/bin/nowd",
        unit,
    )
    unit = re.sub(r"(?m)^Type=.*", "Type=oneshot", unit)
    unit = re.sub(r"(?m)^(WatchdogSec|Restart|RestartSec|NotifyAccess|SocketBind).*\n", "", unit)
    guest.sh(
        f"cat > /run/systemd/system/nowd-clockprobe.service <<'EOF'\n{unit}\nEOF\n"
        "systemctl daemon-reload"
    )
    guest.sh("systemctl start nowd-clockprobe.service")


def test_the_capability_does_not_work_in_a_user_namespace(guest):
    """With the kernel default (1024), an ambient CAP_NET_BIND_SERVICE binds a
    low port only outside a user namespace: it and PrivateUsers=yes exclude
    each other."""
    start = guest.sh("sysctl -n net.ipv4.ip_unprivileged_port_start").strip()

    def unprivileged_ports_from(port):
        setting = f"net.ipv4.ip_unprivileged_port_start={port}"
        run("ip", "netns", "exec", guest.ns_guest, "sysctl", "-q", "-w", setting)

    unprivileged_ports_from(1024)
    try:

        def bind_as(users):
            return guest.sh(
                f"systemd-run --quiet --wait --pipe -p DynamicUser=yes -p PrivateUsers={users} "
                "-p AmbientCapabilities=CAP_NET_BIND_SERVICE "
                "-p CapabilityBoundingSet=CAP_NET_BIND_SERVICE "
                "/opt/nowd-test/clockprobe bind 81 2>&1 | grep '^bind'",
                check=False,
            ).strip()

        without, with_ = bind_as("no"), bind_as("yes")
    finally:
        unprivileged_ports_from(start)
    assert without.endswith("ok") and with_.endswith("Permission denied"), (without, with_)


def test_nowds_root_directory_holds_only_mount_points_after_all_that(guest, provisioned_root):
    def listing(base):
        return run(
            "find", ".", "-printf", "%M %s %p\\n", cwd=str(base) + NOWD_ROOT
        ).stdout.splitlines()

    assert sorted(listing(guest.root)) == sorted(listing(provisioned_root))


def test_systemd_analyze_verify_is_clean_in_the_booted_image(guest):
    r = subprocess.run(
        guest.inside("systemd-analyze", "verify", "/etc/systemd/system/nowd.service"),
        capture_output=True,
        text=True,
    )
    assert (r.returncode, r.stdout + r.stderr) == (0, "")


def test_chrony_configuration_as_intended(guest):
    conf = guest.sh("chronyd -p -f /etc/chrony/chrony.conf").splitlines()
    for line in (
        "server 169.254.169.123 prefer iburst minpoll 4 maxpoll 4",
        "makestep 0.1 3",
        "port 0",
        "cmdport 0",
        "rtcsync",
    ):
        assert line in conf, line
    assert not [line for line in conf if line.startswith("refclock")]


def test_lynis_hardening_index(guest, work):
    t = time.monotonic()
    # Its log and report in /run: the image's root file system is read-only.
    guest.sh(
        "lynis audit system --quick --no-colors --profile /opt/nowd-test/lynis.prf "
        "--logfile /run/lynis.log --report-file /run/lynis-report.dat "
        "> /run/lynis-run.log 2>&1",
        check=False,
    )
    report = guest.sh("cat /run/lynis-report.dat")
    (work / "lynis-report.log").write_text(report)
    index = int(re.search(r"^hardening_index=(\d+)", report, re.M).group(1))
    for kind in ("warning", "suggestion"):
        for line in re.findall(rf"^{kind}\[\]=(.*)$", report, re.M):
            print(f"{kind}: {line}")
    figure("lynis hardening index", f"{index} ({time.monotonic() - t:.0f} s)")
    assert index >= 80
