"""The image as a VM, first boot included: two machines from the provisioned
image, each in its own network namespace with its own time server at
169.254.169.123 and metadata service at 169.254.169.254, booted in parallel.

  new instance: the clock chain from boot, then the reference's faults
                (+2 s step, +150 ms step, silence) and the healthcheck's view;
  off instance: booted with its clock several seconds ahead, then paused
                for a few seconds (its clock left behind).

Each fault is timed against what the served clock really is (the answer of
GET /now against the test's own reference time) for nowd's /healthz and for
what the kernel's figures alone say (the judgement /healthz made before it
measured its own clock: synchronised and max error under the limit).
"""

import contextlib
import itertools
import json
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import BUILD_HOSTNAME, BUILD_MAC, PREFIX, REPO, add_test_shell, copy_of, figure
from machine import TIME_SYNC, Machine, MetadataService, Netns, TimeServer

LIMIT_S = 0.100  # nowd's --max-clock-error-ms default
BOOT_TIMEOUT_S = 300  # TCG on a shared 2-core machine; the figure is printed
BOOT_TARGET_S = 45  # the goal, qemu's start to /healthz 200 under TCG, nothing subtracted
# What the test asserts instead: the image meets 45 s (34.3 to 43.5 s over 5
# runs of `make boot-bench`, README.md "Boot time"), but the same image took
# 50.8 to 58.4 s in full runs while the host ran slow (every unit up to
# twice as long), and a loaded machine adds 15 to 20 s more.
BOOT_BOUND_ON_LOADED_CI_S = 75
SETTLE_S = 240  # the longest a fault may take to recover


def healthcheck_command(url, ntp_server):
    """The one place that says how the healthcheck is run."""
    return [
        "env",
        f"PYTHONPATH={REPO / 'healthcheck'}",
        sys.executable,
        "-m",
        "nowd_healthcheck",
        url,
        "--ntp-server",
        ntp_server,
    ]


class Instance:
    """One machine, its namespace and its link-local services."""

    def __init__(self, name, root, work, mac, ipv4, rtc_offset_s=0):
        self.name = name
        self.netns = Netns(f"{PREFIX}-{name}-{os.getpid()}")
        self.reference = TimeServer(self.netns, TIME_SYNC)
        self.true_time = TimeServer(self.netns, "127.0.0.1", 1123)
        self.imds = MetadataService(
            self.netns,
            {
                "mac": mac,
                "ipv4": ipv4,
                "hostname": f"ip-{ipv4.replace('.', '-')}.ec2.internal",
                "subnet": "172.31.0.0/20",
                "vpc": "172.31.0.0/16",
                "instance_id": "i-0" + os.urandom(8).hex()[:16],
            },
        )
        self.mac, self.ipv4 = mac, ipv4
        self.vm = Machine(self.netns, root, work / name, mac, rtc_offset_s=rtc_offset_s)
        self.timeline = {}
        self.samples = []

    def sample(self):
        """/healthz, then GET /now as JSON: the served clock's error against the
        reference (what the reference says at the middle of the round trip)."""
        status, body, _, _ = self.vm.http("/healthz")
        _, now, sent, received = self.vm.http("/now", json_body=True)
        j = json.loads(now)
        reference_ns = (sent + received) // 2 + int(self.reference.offset_s * 1e9)
        k = j["clock"] or {}
        s = {
            "t": time.monotonic(),
            "healthz": status,
            "why": body.strip(),
            "error_s": (j["unix_ns"] - reference_ns) / 1e9,
            "uncertainty_s": (received - sent) / 2e9,
            "kernel_ok": bool(k.get("synchronized"))
            and k.get("max_error_us", 1 << 40) < LIMIT_S * 1e6,
            "json": j,
        }
        self.samples.append(s)
        return s

    def close(self):
        self.vm.stop()
        for s in (self.reference, self.true_time, self.imds):
            s.close()
        self.netns.close()


def boot(inst, reference_from_first_answer=False):
    """Polls from qemu's start until /healthz has said 200 for a few seconds.
    With `reference_from_first_answer`, the reference stays silent until nowd
    first answers from outside: that answer is what an unsynchronised
    instance says."""
    t0 = inst.vm.started
    deadline = t0 + BOOT_TIMEOUT_S
    while time.monotonic() < deadline and inst.vm.proc.poll() is None:
        try:
            s = inst.sample()
        except (OSError, ValueError):
            time.sleep(0.5)
            continue
        inst.timeline.setdefault("first_answer", s["t"] - t0)
        inst.timeline.setdefault("first_why", s["why"])
        if reference_from_first_answer and inst.reference.silent:
            inst.timeline["unsynchronised"] = (s["healthz"], s["why"])
            inst.reference.silent = False
        if s["healthz"] == 200:
            inst.timeline.setdefault("first_200", s["t"] - t0)
            if s["t"] - t0 - inst.timeline["first_200"] > 5:
                return
        time.sleep(0.5)
    raise AssertionError(
        f"{inst.name}: /healthz not 200 within {BOOT_TIMEOUT_S} s: "
        f"{inst.samples[-1]['why'] if inst.samples else 'no answer'}"
    )


def settle(inst, within=90):
    """Waits (at most `within` s) until both judgements have called the
    clock healthy for 3 s."""
    start = time.monotonic()
    since = None
    while time.monotonic() - start < within:
        try:
            s = inst.sample()
        except (OSError, ValueError):
            time.sleep(0.3)
            continue
        if s["healthz"] == 200 and s["kernel_ok"]:
            since = since or s["t"]
            if s["t"] - since >= 3:
                return
        else:
            since = None
        time.sleep(0.3)


def observe(inst, seconds, until_back=False):
    """Samples for `seconds`, or (until_back) until /healthz has been 200
    again for 5 s after having been 503, at most SETTLE_S."""
    start = time.monotonic()
    out, went_503, back = [], False, None
    while time.monotonic() - start < (SETTLE_S if until_back else seconds):
        try:
            s = inst.sample()
        except (OSError, ValueError):
            time.sleep(0.2)
            continue
        out.append(s)
        went_503 |= s["healthz"] == 503
        if until_back and went_503 and time.monotonic() - start > seconds:
            back = back or (s["t"] if s["healthz"] == 200 else None)
            if s["healthz"] != 200:
                back = None
            elif s["t"] - back > 5:
                break
        time.sleep(0.2)
    return out


def fault_figures(name, samples, t_fault, t_off=None):
    """The table's row: worst error served while each judgement said
    healthy, time to its first 'unhealthy', time back to 'healthy'."""
    t_off = t_fault if t_off is None else t_off
    row = {"fault": name}
    for who, healthy in (
        ("after", lambda s: s["healthz"] == 200),
        ("before", lambda s: s["kernel_ok"]),
    ):
        ok = [s for s in samples if healthy(s)]
        row[f"{who}_worst_healthy_error_s"] = max((abs(s["error_s"]) for s in ok), default=0.0)
        bad = [s for s in samples if not healthy(s) and s["t"] >= t_off]
        row[f"{who}_to_unhealthy_s"] = (bad[0]["t"] - t_off) if bad else None
        row[f"{who}_back_s"] = next(
            (s["t"] - t_fault for s in samples if bad and s["t"] > bad[0]["t"] and healthy(s)), None
        )
        # How long it said healthy while the clock was certainly off.
        row[f"{who}_healthy_off_s"] = sum(
            b["t"] - a["t"]
            for a, b in itertools.pairwise(samples)
            if healthy(a) and abs(a["error_s"]) - a["uncertainty_s"] > LIMIT_S
        )
    row["observed_s"] = samples[-1]["t"] - t_fault if samples else 0
    return row


def show(row):
    def f(v, unit="s"):
        return "never" if v is None else f"{v:.1f} {unit}"

    for who in ("before", "after"):
        figure(
            f"{row['fault']} [{who}]",
            f"worst error while healthy {row[f'{who}_worst_healthy_error_s'] * 1000:.0f} ms "
            f"(healthy while off {row[f'{who}_healthy_off_s']:.1f} s), "
            f"unhealthy after {f(row[f'{who}_to_unhealthy_s'])}, healthy again after "
            f"{f(row[f'{who}_back_s'])} (observed {row['observed_s']:.0f} s)",
        )


def healthcheck(inst):
    r = subprocess.run(
        inst.netns.command(*healthcheck_command("http://127.0.0.1/now", inst.true_time.address)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    return r.returncode, (r.stdout + r.stderr).strip()


NETWORK = "for l in /sys/class/net/e*; do networkctl --no-pager -n0 status ${l##*/}; done"
INITRAMFS = (
    "i=/boot/initrd.img-$(uname -r); stat -c '%s' $i; lsinitramfs $i | grep -E '[.]ko([.]xz)?$'; "
    "echo --; for m in $(grep -v '^#' /etc/initramfs-tools/modules); do modprobe -D $m; done"
)
LOGIN_UNITS = ("dbus.service", "systemd-logind.service", "systemd-user-sessions.service")
BOOT_ORDER = "systemctl show -P ActiveEnterTimestampMonotonic nowd.service; " + " ".join(
    ["systemctl show -P InactiveExitTimestampMonotonic", *LOGIN_UNITS]
)
# What the image leaves out of a boot: the check of the read-only root and
# the login prompt on tty1 (a unit never started left inactive at 0).
LEFT_OUT = ("systemd-fsck-root.service", "getty@tty1.service")
NOT_STARTED = " ".join(["systemctl show -P InactiveExitTimestampMonotonic", *LEFT_OUT])
GUEST_COMMANDS = (
    "ip -c=never -4 -o addr show scope global",
    NETWORK,
    "ls -d /etc/netplan /etc/cloud /var/lib/cloud",
    "networkctl --no-pager --no-legend",
    "ss -Htulnp",
    "ls /etc/ssh; getent passwd debian admin",
    "hostname",
    "findmnt -no OPTIONS /",
    "systemctl --no-pager --no-legend --failed",
    "journalctl -b -o cat --no-pager -u nowd.service",
    "systemd-analyze",
    "systemd-analyze critical-chain nowd.service",
    "systemd-analyze blame --no-pager",
    "journalctl -b -o short-monotonic --no-pager -u chrony.service -u nowd.service",
    INITRAMFS,
    BOOT_ORDER,
    NOT_STARTED,
)


def new_instance_scenario(inst):
    """The new instance: boot, then the reference misbehaves."""
    boot(inst)
    res = {"boot": dict(inst.timeline)}
    res["chrony_sources"] = inst.vm.sh("chronyc -n -c sources")[1]
    _, tracking = inst.vm.sh("chronyc -c tracking")
    res["json_with_tracking"] = (tracking, inst.sample()["json"])
    res["healthcheck_synced"] = healthcheck(inst)
    res["guest"] = {cmd: inst.vm.sh(cmd)[1] for cmd in GUEST_COMMANDS}
    res["guest"]["write /usr, /etc"] = [
        inst.vm.sh(f"touch {d}/nowd-test-write") for d in ("/usr", "/etc", "/usr/local/bin")
    ]

    # Smallest first, each from a clock both judgements call healthy, so
    # that what the kernel's figures alone say is seen from the same start.
    settle(inst)
    t = time.monotonic()
    inst.reference.offset_s += 0.150
    res["step_150ms"] = fault_figures(
        "reference steps +150 ms", observe(inst, 10, until_back=True), t
    )

    settle(inst)
    t = time.monotonic()
    inst.reference.silent = True
    silent = observe(inst, 20)
    inst.reference.silent = False
    t_back = time.monotonic()
    silent += (
        observe(inst, 0, until_back=True)
        if any(s["healthz"] == 503 for s in silent)
        else observe(inst, 20)
    )
    res["silent"] = fault_figures("reference silent for 20 s", silent, t)
    res["silent"]["restored_at_s"] = t_back - t

    settle(inst)
    t = time.monotonic()
    inst.reference.offset_s += 2.0
    res["step_2s"] = fault_figures("reference steps +2 s", observe(inst, 10, until_back=True), t)
    # Now the served clock follows a reference 2 s off the true time, and
    # /healthz, measuring against that reference, is content: only the
    # outside view (true time from elsewhere) can tell.
    res["healthz_following_2s"] = inst.sample()["why"]
    res["healthcheck_2s"] = healthcheck(inst)
    return res


def boot_off(inst):
    """The off instance's boot: its reference silent until nowd first answers."""
    inst.reference.silent = True
    boot(inst, reference_from_first_answer=True)


def off_instance_scenario(inst, ahead_s):
    """Booted with its clock ahead and its reference silent until nowd first
    answers; then paused, its clock left behind."""
    boot_off(inst)
    first = [s for s in inst.samples]
    res = {
        "boot": dict(inst.timeline),
        "booted_off": fault_figures(f"guest booted {ahead_s:+.0f} s off", first, inst.vm.started),
    }
    pause = 4
    inst.vm.monitor("stop")
    time.sleep(pause)
    inst.vm.monitor("cont")
    t = time.monotonic()
    res["paused"] = fault_figures(f"guest paused {pause} s", observe(inst, 5, until_back=True), t)
    res["connection_cost"] = connection_cost(inst)
    res["nowd_journal"] = inst.vm.sh("journalctl -b -o cat --no-pager -u nowd.service")[1]
    return res


# Held inside the guest on its loopback (qemu's user network would be the
# bottleneck, not nowd) by a static helper the test builds (test/holdconns.c;
# the image has no interpreter): each connection sends an unfinished request
# head and is held, within the 5 s idle limit, while nowd's cgroup is read.
HELD = 500
HELPER = "/opt/nowd-test/holdconns"
CONNECTION_COST_SCRIPT = r"""
cg=/sys/fs/cgroup/system.slice/nowd.service
snap() {
  echo "$1 current $(cat $cg/memory.current)"
  awk -v w="$1" '$1 == "anon" || $1 == "kernel" || $1 == "sock" { print w, $1, $2 }' $cg/memory.stat
  echo "$1 tasks $(wc -l < $cg/cgroup.threads)"
}
snap before
%(helper)s %(n)d 3 > /run/holdconns.out &
while ! grep -q '^opened' /run/holdconns.out; do sleep 0.1; done
sleep 1
snap held
cat /run/holdconns.out
wait $!
"""


def connection_cost(inst):
    """What one open connection costs in nowd.service's own cgroup (v2,
    under the image's systemd and kernel): the figure docs/CAPACITY.md sizes
    the bounds with was measured outside systemd, on a cgroup v1 host."""
    rc, out = inst.vm.sh(CONNECTION_COST_SCRIPT % {"helper": HELPER, "n": HELD}, timeout=120)
    assert rc == 0, out
    c = {"before": {"kernel": 0}, "held": {"kernel": 0}}
    for line in out.splitlines():
        f = line.split()
        if len(f) == 3 and f[0] in c:
            c[f[0]][f[1]] = int(f[2])
        elif len(f) == 3 and f[0] == "opened":
            c["n"], c["open_s"] = int(f[1]), float(f[2])
    assert "n" in c, out
    return c


def add_helper(root):
    """Test-only, like the shell: the connection holder, built static."""
    (root / "opt/nowd-test").mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "cc",
            "-static",
            "-Os",
            "-o",
            str(root / HELPER.lstrip("/")),
            str(Path(__file__).resolve().parent.parent / "holdconns.c"),
        ],
        check=True,
    )
    return root


OFF_AHEAD_S = 6  # how far ahead of the true time the off instance's clock starts


@contextlib.contextmanager
def two_machines(provisioned_root, work):
    """The new and the off instance, started, both disks made before either
    qemu starts (mkfs must not take the CPU from a timed boot); closed on
    the way out, whatever happens."""
    work.mkdir(parents=True, exist_ok=True)
    root = add_helper(add_test_shell(copy_of(provisioned_root, work / "vm-root")))
    new = off = None
    try:
        new = Instance("new", root, work, "02:5e:ed:00:00:0a", "172.31.9.50")
        off = Instance(
            "off", root, work, "02:5e:ed:00:00:0b", "172.31.9.50", rtc_offset_s=OFF_AHEAD_S
        )
        for inst in (new, off):
            inst.vm.start()
        yield new, off
    finally:
        for i in (new, off):
            if i:
                i.close()


@pytest.fixture(scope="session")
def machines(provisioned_root, work):
    with two_machines(provisioned_root, work) as (new, off):
        pool = ThreadPoolExecutor(2)
        yield {
            "new": (new, pool.submit(new_instance_scenario, new)),
            "off": (off, pool.submit(off_instance_scenario, off, OFF_AHEAD_S)),
        }
        pool.shutdown(wait=False, cancel_futures=True)


def result(machines, which):
    inst, future = machines[which]
    return inst, future.result(timeout=BOOT_TIMEOUT_S + 4 * SETTLE_S)


# --- first boot --------------------------------------------------------------


def test_the_new_instance_has_a_mac_address_the_build_never_had(machines):
    inst, _ = result(machines, "new")
    assert inst.mac.lower() != BUILD_MAC.lower()


def test_no_metadata_request_during_boot(machines):
    """The metadata service is there, as on EC2 (the stand-in answers
    IMDSv2): nothing on the image asks it anything."""
    counts = {}
    for which in ("new", "off"):
        inst, _ = result(machines, which)
        counts[which] = len(inst.imds.requests)
    figure(
        "metadata requests during boot",
        f"{counts['new']} (new instance), {counts['off']} (off instance)",
    )
    assert counts == {"new": 0, "off": 0}, [
        result(machines, w)[0].imds.requests[:5] for w in counts
    ]


def test_the_network_is_systemd_networkds_dhcp_on_any_ethernet_interface(machines):
    _, res = result(machines, "new")
    status = res["guest"][NETWORK]
    figure(
        "first boot: network",
        " ".join(
            line.strip()
            for line in status.splitlines()
            if re.search(r"Network File|State|Address", line)
        ),
    )
    assert re.search(r"Network File: /etc/systemd/network/80-nowd-ethernet\.network", status), (
        status
    )
    assert "No such file" in res["guest"]["ls -d /etc/netplan /etc/cloud /var/lib/cloud"]
    assert not re.search(
        r"^/", res["guest"]["ls -d /etc/netplan /etc/cloud /var/lib/cloud"], re.MULTILINE
    )


def test_the_new_mac_gets_its_address_by_dhcp(machines):
    inst, res = result(machines, "new")
    addr = res["guest"]["ip -c=never -4 -o addr show scope global"]
    figure("first boot: address", " ".join(addr.split()[1:4]))
    assert inst.mac.lower() in res["guest"][NETWORK].lower(), res["guest"][NETWORK]
    assert f"inet {inst.ipv4}/20" in addr and "dynamic" in addr, addr
    assert re.search(r"routable\s+configured", res["guest"]["networkctl --no-pager --no-legend"])


def test_first_boot_makes_no_ssh_host_keys_and_no_login_user(machines):
    _, res = result(machines, "new")
    out = res["guest"]["ls /etc/ssh; getent passwd debian admin"]
    assert "ssh_host_" not in out, out
    # The build instance's own user ("admin" on Debian's AMI) stays, locked
    # and without keys: the build's session runs as it until the end.
    assert "debian:" not in out, out


def test_the_instance_is_called_nowd_not_after_the_build_instance(machines):
    _, res = result(machines, "new")
    assert res["guest"]["hostname"].strip() == "nowd" != BUILD_HOSTNAME


def socket_name(fields):
    """ss -Htulnp's line as "tcp *:80 nowd"."""
    process = re.search(r'users:\(\("([^"]+)"', fields[6]) if len(fields) > 6 else None
    return f"{fields[0]} {fields[4]}" + (f" {process.group(1)}" if process else "")


def test_nothing_but_nowd_listens_beyond_loopback(machines):
    _, res = result(machines, "new")
    local = re.compile(r"^(127\.[0-9.]+(%lo)?|\[::1\]|\[::ffff:127\.[0-9.]+\]):")
    # systemd-networkd's DHCP client keeps UDP 68 on the instance's address
    # for its lease renewals (the firewall admits DHCP answers only).
    dhcp = re.compile(r"^[0-9.]+%\w+:68$")
    sockets = [line.split() for line in res["guest"]["ss -Htulnp"].splitlines() if line.strip()]
    figure("listening sockets", ", ".join(socket_name(f) for f in sockets))
    beyond = [f[4] for f in sockets if not local.match(f[4]) and not dhcp.match(f[4])]
    assert beyond == ["*:80"], res["guest"]["ss -Htulnp"]


# --- what the image holds -------------------------------------------------------

INTERPRETERS = re.compile(
    r"^(python[0-9.]*|python3-.+|libpython[0-9.].*|perl|perl-modules-.+|libperl.+|"
    r"ruby.*|libruby.*|lua[0-9.]*|tcl[0-9.]*|nodejs|php.*|guile-.+)$"
)


def installed_packages(root):
    out = subprocess.run(
        [
            "dpkg-query",
            f"--admindir={root}/var/lib/dpkg",
            "-W",
            "-f=${db:Status-Abbrev} ${Package}\n",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return [f[1] for f in (line.split() for line in out.stdout.splitlines()) if f[0] == "ii"]


def test_the_image_has_no_cloud_init_and_no_interpreter(provisioned_root):
    """perl-base stays (dpkg is written in it); no other interpreter, by
    package or by a program of that name."""
    packages = installed_packages(provisioned_root)
    found = [p for p in packages if INTERPRETERS.match(p)]
    found += [
        str(f.relative_to(provisioned_root))
        for d in ("usr/bin", "usr/sbin", "usr/local/bin")
        for pattern in ("python*", "ruby*", "node", "nodejs", "lua*", "tclsh*", "php*", "guile*")
        for f in (provisioned_root / d).glob(pattern)
    ]
    figure("packages in the image", str(len(packages)))
    figure("interpreters in the image", ", ".join(found) or "none")
    assert not found
    assert not {"cloud-init", "netplan.io", "cloud-guest-utils", "amazon-ec2-utils"} & set(packages)
    assert "systemd" in packages and "chrony" in packages


def test_setuid_binaries(provisioned_root):
    out = subprocess.run(
        ["find", str(provisioned_root), "-xdev", "-type", "f", "-perm", "-4000"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    names = sorted("/" + str(Path(f).relative_to(provisioned_root)) for f in out)
    figure("setuid binaries", f"{len(names)} ({' '.join(names)})")
    assert "/usr/lib/openssh/ssh-keysign" not in names and not [n for n in names if "polkit" in n]


def test_the_root_file_system_is_read_only_and_nothing_failed(machines):
    _, res = result(machines, "new")
    options = res["guest"]["findmnt -no OPTIONS /"].strip()
    figure("root file system", options)
    assert options.split(",")[0] == "ro", options
    for rc, out in res["guest"]["write /usr, /etc"]:
        assert rc != 0 and "Read-only file system" in out, out
    assert res["guest"]["systemctl --no-pager --no-legend --failed"].strip() == ""


def test_the_initramfs_carries_the_drivers_of_the_root_and_the_network_only(machines):
    """MODULES=list: the modules files/etc/initramfs-tools/modules names and
    what they depend on, nothing of Debian's MODULES=most but the ACPI fan
    driver, which initramfs-tools' hooks/thermal adds on every x86 system."""
    _, res = result(machines, "new")
    listing, _, wanted = res["guest"][INITRAMFS].partition("\n--\n")
    size, *kos = listing.split()

    def module(path):  # .../xen-blkfront.ko.xz -> xen_blkfront
        return Path(path).name.split(".")[0].replace("-", "_")

    present = sorted(module(k) for k in kos)
    named = {module(f[1]) for f in map(str.split, wanted.splitlines()) if f[0] == "insmod"}
    figure("initramfs", f"{int(size) / 1e6:.1f} MB, modules: {' '.join(present)}")
    assert "ena" in named and "xen_blkfront" in named, wanted
    assert set(present) == named | {"fan"}, (present, named)


def test_nowd_starts_before_dbus_logind_and_the_console_login(machines):
    _, res = result(machines, "new")
    nowd, *login = (int(t) for t in res["guest"][BOOT_ORDER].split())
    assert len(login) == len(LOGIN_UNITS) and 0 < nowd <= min(login), res["guest"][BOOT_ORDER]


def test_the_boot_checks_no_file_system_and_starts_no_login_prompt_on_tty1(machines):
    _, res = result(machines, "new")
    started = res["guest"][NOT_STARTED].split()
    assert started == ["0"] * len(LEFT_OUT), dict(zip(LEFT_OUT, started, strict=False))


# --- the clock chain -------------------------------------------------------------


def test_healthz_is_503_before_synchronisation(machines):
    """The instance booted off, its reference silent until nowd first answered
    from outside: that answer, and nowd's own first verdict in its log, say
    503. (A boot whose clock is right from the start may be synchronised
    before nowd's first verdict, as the new instance often is.) On both
    machines, every answer that reached the outside before the first 200
    was a 503."""
    off, off_res = result(machines, "off")
    code, why = off_res["boot"]["unsynchronised"]
    figure("booted-off instance, reference silent: first answer", f"{code} {why}")
    assert code == 503 and re.search(r"not synchronized|clock error unknown", why), why
    verdicts = re.findall(r"/healthz now answers (\d+): (.*)", off_res["nowd_journal"])
    figure(
        "booted-off instance: nowd's first verdict", " ".join(verdicts[0]) if verdicts else "none"
    )
    assert verdicts and verdicts[0][0] == "503", verdicts
    # Not yet steered, not yet measured, or steered but not yet corrected
    # (chrony clears STA_UNSYNC at its first update, with the clock still off).
    assert re.search(r"not synchronized|clock error unknown|not under the limit", verdicts[0][1]), (
        verdicts[0]
    )
    assert "200" in [code for code, _ in verdicts[1:]], verdicts
    for inst, res in (result(machines, "new"), (off, off_res)):
        before = [s for s in inst.samples if s["t"] - inst.vm.started < res["boot"]["first_200"]]
        for s in before:
            assert s["healthz"] == 503, s["why"]
            assert re.search(
                r"not synchronized|clock error unknown|not under the limit", s["why"]
            ), s["why"]


def test_chrony_selected_the_amazon_time_sync_service(machines):
    inst, res = result(machines, "new")
    selected = [line for line in res["chrony_sources"].splitlines() if line.startswith("^,*,")]
    assert [line.split(",")[2] for line in selected] == [TIME_SYNC], res["chrony_sources"]
    assert inst.reference.queries > 0


def test_healthz_200_within_75_s_of_qemus_start(machines):
    """From qemu's start, under TCG, nothing subtracted: kernel, systemd,
    DHCP, chrony's first updates and nowd's first measurement. The figure
    is printed against the 45 s target; the bound is for a loaded machine."""
    _, res = result(machines, "new")
    took = res["boot"]["first_200"]
    figure(
        "healthz 200 after",
        f"{took:.1f} s from qemu's start (target {BOOT_TARGET_S} s; "
        f"bound {BOOT_BOUND_ON_LOADED_CI_S} s; TCG; load {load()})",
    )
    figure("new instance: boot", " ".join(res["guest"]["systemd-analyze"].split()))
    # Where the time went, for whoever shortens it next.
    chain = res["guest"]["systemd-analyze critical-chain nowd.service"]
    print(chain)
    print("\n".join(res["guest"]["systemd-analyze blame --no-pager"].splitlines()[:15]))
    print(
        res["guest"][
            "journalctl -b -o short-monotonic --no-pager -u chrony.service -u nowd.service"
        ]
    )
    assert took <= BOOT_BOUND_ON_LOADED_CI_S, chain


def load():
    return " ".join(Path("/proc/loadavg").read_text().split()[:3])


def test_json_clock_fields_agree_with_chrony(machines):
    _, res = result(machines, "new")
    tracking, j = res["json_with_tracking"]
    f = tracking.strip().split(",")
    # chronyc -c tracking: ..., 4 system time offset (s, positive: fast),
    # ..., 10 root delay, 11 root dispersion, ..., 13 leap status.
    system_fast_s, root_delay, root_dispersion, leap = (
        float(f[4]),
        float(f[10]),
        float(f[11]),
        f[13],
    )
    figure(
        "JSON vs chrony",
        f"synchronized {j['clock']['synchronized']} / leap {leap}; "
        f"offset {j['reference']['offset_us']} us / chrony {-system_fast_s * 1e6:.0f} us; "
        f"kernel max error {j['clock']['max_error_us']} us / root delay/2 + dispersion "
        f"{(root_delay / 2 + root_dispersion) * 1e6:.0f} us",
    )
    assert j["clock"]["synchronized"] is (leap == "Normal")
    assert abs(j["reference"]["offset_us"] / 1e6 + system_fast_s) < 0.010
    # The kernel's maximum error is chrony's to set, and it is not the root
    # dispersion chrony reports (the figures above): nothing to compare.


def test_nowd_queries_the_reference_from_inside_its_sandbox(machines):
    inst, _ = result(machines, "new")
    r = inst.samples[-1]["json"]["reference"]
    assert "offset_us" in r, r
    assert r["error_bound_us"] < LIMIT_S * 1e6


# --- honest /healthz ---------------------------------------------------------------


def lies(samples, grace_s=5.0):
    """The 200 answers that break the goal: the served clock certainly off
    by more than the limit, and either more than `grace_s` after it left
    the limit or after /healthz had already said 503 in that excursion."""
    out, left, said_503 = [], None, False
    for s in samples:
        if abs(s["error_s"]) + s["uncertainty_s"] <= LIMIT_S:
            left, said_503 = None, False  # certainly within
            continue
        left = s["t"] if left is None else left
        said_503 |= s["healthz"] == 503
        off = abs(s["error_s"]) - s["uncertainty_s"] > LIMIT_S
        if off and s["healthz"] == 200 and (said_503 or s["t"] - left > grace_s):
            out.append(s)
    return out


def assert_honest(row, samples, to_503_within=5.0):
    """503 within `to_503_within` s of the fault, and no lie (above) at all."""
    show(row)
    bad = lies(samples)
    assert not bad, f"200 while {bad[0]['error_s']:.3f} s off: {bad[0]['why']}"
    assert (
        row["after_to_unhealthy_s"] is not None and row["after_to_unhealthy_s"] <= to_503_within
    ), row


def test_reference_step_of_2_s(machines):
    inst, res = result(machines, "new")
    assert_honest(res["step_2s"], inst.samples)


def test_reference_step_of_150_ms(machines):
    inst, res = result(machines, "new")
    assert_honest(res["step_150ms"], inst.samples)


def test_reference_silent(machines):
    inst, res = result(machines, "new")
    # Silence is not an error of the served clock; nowd no longer knows it.
    assert_honest(res["silent"], inst.samples, to_503_within=6.0)


def test_guest_booted_several_seconds_off(machines):
    inst, res = result(machines, "off")
    row = res["booted_off"]
    show(row)
    figure("off instance: healthz 200 after", f"{res['boot']['first_200']:.1f} s")
    bad = lies(inst.samples)
    assert not bad, f"200 while {bad[0]['error_s']:.3f} s off: {bad[0]['why']}"
    # chrony stepped it at its first update; until then nowd said 503
    # (checked by lies() above and test_healthz_is_503_before_synchronisation).
    wrong = re.findall(
        r"System clock wrong by (-?[0-9.]+) seconds", inst.vm.console.read_text(errors="replace")
    )
    figure("off instance: chrony", f"System clock wrong by {wrong[0] if wrong else '?'} seconds")
    assert wrong and abs(float(wrong[0])) > 3, "the guest did boot off"


def test_guest_paused_and_left_behind(machines):
    inst, res = result(machines, "off")
    assert_honest(res["paused"], inst.samples)


# --- the outside view ------------------------------------------------------------------


def test_healthcheck_ok_while_synchronised_critical_2_s_off(machines):
    _, res = result(machines, "new")
    (rc_ok, out_ok), (rc_off, out_off) = res["healthcheck_synced"], res["healthcheck_2s"]
    figure("healthcheck, synchronised", f"exit {rc_ok}: {out_ok.splitlines()[0] if out_ok else ''}")
    figure(
        "healthcheck, reference +2 s",
        f"exit {rc_off}: {out_off.splitlines()[0] if out_off else ''}",
    )
    figure("healthz, following the reference +2 s", res["healthz_following_2s"])
    assert rc_ok == 0 and "OK" in out_ok.split(":")[0], out_ok
    assert rc_off == 2 and "CRITICAL" in out_off.split(":")[0], out_off
    assert res["healthz_following_2s"].startswith("ok:"), "nowd cannot see it itself"


# --- the console ---------------------------------------------------------------------------


def test_nowd_and_chrony_warnings_reach_the_serial_console_as_plain_text(machines):
    new, _ = result(machines, "new")
    off, _ = result(machines, "off")
    console = new.vm.console.read_text(errors="replace") + off.vm.console.read_text(
        errors="replace"
    )
    nowd = re.findall(r".*nowd\[\d+\]: .*WARN.*", console)
    chrony = re.findall(r".*chronyd\[\d+\]: .*", console)
    # Every message, the kernel's and those journald forwards, as plain text.
    # Outside them remain the firmware's screen clearing (SeaBIOS here,
    # EC2's own on an instance) and systemd's terminal reset and size query
    # when it opens the console: control sequences, not text.
    messages = re.findall(r"\[ *\d+\.\d+\] (.*)", console)
    escaped = [m for m in messages if "\x1b" in m]
    figure(
        "console: messages with terminal escapes",
        f"{len(escaped)} of {len(messages)}" + (f": {escaped[0]!r}" if escaped else ""),
    )
    assert any("/healthz now answers 503" in line for line in nowd), nowd
    assert chrony, "no chronyd line on the console"
    assert not escaped, escaped[:3]


# --- the image's kernel ----------------------------------------------------------------------


def test_an_open_connection_costs_what_the_capacity_arithmetic_assumes(machines):
    _, res = result(machines, "off")
    c = res["connection_cost"]
    n, before, held = c["n"], c["before"], c["held"]
    per = {k: (held[k] - before[k]) / n / 1024 for k in ("current", "anon", "kernel", "sock")}
    figure(
        f"VM: memory per open connection ({n} held, nowd.service's cgroup)",
        f"{per['current']:.1f} KiB (user {per['anon']:.1f}, kernel {per['kernel']:.1f}, "
        f"sockets {per['sock']:.1f}); {held['tasks'] - before['tasks']} threads more; "
        f"opened in {c['open_s']:.1f} s",
    )
    worst = json.loads((REPO / "bench/capacity.json").read_text())["worst_kib_per_connection"]
    # A thread per connection (tiny_http reuses the idle ones it had).
    assert n == HELD and held["tasks"] >= n, c
    assert per["current"] <= worst, (
        f"{per['current']:.1f} KiB per connection, the bounds assume {worst} KiB"
    )


def test_the_ena_driver_of_debian_13_has_no_ptp_hardware_clock(provisioned_root):
    """The ENA PHC path (refclock PHC /dev/ptp_ena) needs a driver that
    registers a PTP clock; Debian 13's kernel's in-tree ENA does not (the
    out-of-tree amzn-drivers ENA does, from 2.10.0). If this fails, a newer
    kernel has it: the PHC path becomes worth adding back."""
    modules = list(
        Path(provisioned_root).glob("lib/modules/*/kernel/drivers/net/ethernet/amazon/ena/ena.ko*")
    )
    assert len(modules) == 1, modules
    text = subprocess.run(["xz", "-dc", str(modules[0])], capture_output=True).stdout
    assert b"ptp_clock_register" not in text
    other = list(Path(provisioned_root).glob("lib/modules/*/kernel/drivers/ptp/ptp_kvm.ko*"))
    assert (
        b"ptp_clock_register"
        in subprocess.run(["xz", "-dc", str(other[0])], capture_output=True).stdout
    )
