#!/usr/bin/env python3
"""nowd against nginx and Python's http.server, on loopback.

    python3 bench.py --nowd PATH [--out FILE]     the full run (make bench)
    python3 bench.py --nowd PATH --smoke          a quick check (make smoke)

Standard library only. Needs wrk, nginx and taskset on PATH. Every server
listens on 127.0.0.1 only, every load run is bounded in time, and every
process started here is stopped before the driver exits.

The servers run on one core (SERVER_CPU) and wrk and this driver on the
other (CLIENT_CPU), so a server never competes with its load generator.
Load runs are interleaved: each round runs every scenario against every
server before the next round starts, so drift hits all three alike.
"""

import argparse
import datetime
import grp
import json
import os
import platform
import pwd
import re
import resource
import selectors
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent

# --- What a run does -------------------------------------------------------

# Full run (make bench).
ROUNDS = 3
WRK_SECONDS = 7  # nowd ends connections older than 30 s; keep well under
KEEPALIVE_CONNECTIONS = (32, 256)
CLOSE_CONNECTIONS = 32
IDLE_CONNECTIONS = 1000
START_REPEATS = 5  # fresh processes for start-to-first-answer and idle RSS
BURST_CONNECTIONS = 64

# Smoke run (make smoke): the same steps with a tiny budget.
SMOKE_ROUNDS = 1
SMOKE_WRK_SECONDS = 1
SMOKE_KEEPALIVE_CONNECTIONS = (8, 32)
SMOKE_CLOSE_CONNECTIONS = 8
SMOKE_IDLE_CONNECTIONS = 100
SMOKE_START_REPEATS = 1
SMOKE_BURST_CONNECTIONS = 16

WRK_THREADS = 1  # wrk has one core of its own
SERVER_CPU = 0
CLIENT_CPU = 1
# Idle RSS is read this long after the first answer: by then nowd has run
# its once-a-second connection sweep and is in its steady idle state.
IDLE_SETTLE_SECONDS = 1.2
START_TIMEOUT = 5.0  # a server that has not answered by then failed to start
# nowd closes a connection that sent nothing for 5 s: the idle connections
# must all be open and answered well within that before RSS is read.
IDLE_OPEN_DEADLINE = 4.0
# A connection of a burst that has no answer after this long is counted as stalled.
BURST_WAIT = 2.0
PAUSE_BETWEEN_RUNS = 0.5  # lets closed connections and their threads go
# On a shared machine, a load run waits until the rest of the machine uses
# less than QUIET_CORES of a core (sampled over QUIET_SAMPLE s), but never
# more than QUIET_BUDGET s over the whole run (SMOKE_QUIET_BUDGET for smoke).
QUIET_CORES = 0.2
QUIET_SAMPLE = 0.5
QUIET_BUDGET = 60.0
SMOKE_QUIET_BUDGET = 3.0

REQUEST = b"GET /now HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


# --- Servers ---------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def spawn_on_cpu(cmd, cpu, **kwargs):
    """Starts cmd pinned to one CPU. The child inherits the affinity the
    driver has at fork time, so the driver pins itself for the instant of the
    spawn: no taskset process stands between spawn and the server's start."""
    mine = os.sched_getaffinity(0)
    os.sched_setaffinity(0, {cpu})
    try:
        return subprocess.Popen(cmd, **kwargs)
    finally:
        os.sched_setaffinity(0, mine)


@dataclass
class Server:
    """One kind of server; start() gives a running process of it."""

    name: str
    workdir: Path
    proc: subprocess.Popen = None
    port: int = 0
    log: Path = None
    starts: int = field(default=0)

    def command(self):
        raise NotImplementedError

    def start(self):
        """Spawns the server; returns the time.perf_counter() of the spawn."""
        self.port = free_port()
        self.starts += 1
        self.log = self.workdir / f"{self.name}-{self.starts}.log"
        cmd = self.command()
        with open(self.log, "wb") as log:
            t0 = time.perf_counter()
            self.proc = spawn_on_cpu(
                cmd,
                SERVER_CPU,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
                env=dict(os.environ, TZ="UTC"),
            )
        return t0

    def stop(self):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def answering_pid(self):
        """The process that serves requests, whose memory is measured."""
        return self.proc.pid

    def log_tail(self):
        try:
            return self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""


class Nowd(Server):
    def __init__(self, workdir, binary):
        super().__init__("nowd", workdir)
        self.binary = binary

    def command(self):
        # Its clock probe goes to a loopback port nobody answers on, not to
        # 169.254.169.123: the bench sends nothing beyond loopback.
        return [
            str(self.binary),
            "--listen",
            f"127.0.0.1:{self.port}",
            "--log-level",
            "warn",
            "--time-reference",
            "127.0.0.1:9",
        ]


class Nginx(Server):
    def __init__(self, workdir):
        super().__init__("nginx", workdir)

    def command(self):
        conf_dir = self.workdir / f"nginx-{self.starts}"
        conf_dir.mkdir()
        if os.geteuid() == 0:
            nobody = pwd.getpwnam("nobody")
            group = grp.getgrgid(nobody.pw_gid).gr_name
            user = f"user nobody {group};"
        else:
            user = "# not root: the workers run as the invoking user"
        fields = {
            "USER": user,
            "DIR": str(conf_dir),
            "PORT": str(self.port),
            "WORKER_CONNECTIONS": str(IDLE_CONNECTIONS + 1024),
            "NOFILE": str(2 * IDLE_CONNECTIONS + 2048),
        }
        text = (HERE / "nginx.conf.in").read_text()
        for key, value in fields.items():
            text = text.replace(f"@{key}@", value)
        conf = conf_dir / "nginx.conf"
        conf.write_text(text)
        return ["nginx", "-p", f"{conf_dir}/", "-c", str(conf), "-e", str(conf_dir / "error.log")]

    def answering_pid(self):
        """nginx's one worker: the master only watches it."""
        children = child_pids(self.proc.pid)
        return children[0] if children else self.proc.pid


class Python(Server):
    def __init__(self, workdir):
        super().__init__("python", workdir)

    def command(self):
        return [sys.executable, str(HERE / "pyserver.py"), str(self.port)]


def child_pids(pid):
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            # The command name may hold spaces; the fields after it do not.
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return sorted(found)


def proc_status_kib(pid, key):
    """VmRSS, VmHWM, ... of a process, in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


def proc_cpu_seconds(pid):
    """User and system CPU time of a process, all its threads, dead or alive."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])
    return utime / CLOCK_TICKS, stime / CLOCK_TICKS


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def machine_task_cpu_seconds():
    """CPU time the whole machine spent in processes (user, nice, system;
    interrupts and idle left out), summed over all cores."""
    user, nice, system = Path("/proc/stat").read_text().split()[1:4]
    return (int(user) + int(nice) + int(system)) / CLOCK_TICKS


def own_cpu_seconds():
    """CPU time of this driver and of the children it has reaped (wrk)."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


# --- HTTP on raw sockets ---------------------------------------------------


def read_response(sock):
    """Reads one HTTP/1.1 response with a Content-Length; returns (status, body)."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed before a complete answer")
        data += chunk
    head, body = data.split(b"\r\n\r\n", 1)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(body) < length:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("closed inside the body")
        body += chunk
    return status, body


def get_now(port, timeout=1.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(REQUEST)
        return read_response(s)


# --- Measurements ----------------------------------------------------------


def measure_start(server):
    """Spawns the server and connects in a tight loop until GET /now answers
    200. Returns milliseconds from spawn to that first answer."""
    t0 = server.start()
    while True:
        try:
            status, body = get_now(server.port)
            if status == 200 and body[:1].isdigit():
                return (time.perf_counter() - t0) * 1000
        except (ConnectionError, OSError):
            pass
        if server.proc.poll() is not None:
            raise RuntimeError(f"{server.name} exited at start:\n{server.log_tail()}")
        if time.perf_counter() - t0 > START_TIMEOUT:
            raise RuntimeError(f"{server.name} did not answer within {START_TIMEOUT} s")


def measure_start_and_idle(server, repeats):
    """Start-to-first-answer (ms) and idle RSS (KiB), each the median of
    `repeats` fresh processes."""
    starts, rss = [], []
    for _ in range(repeats):
        try:
            starts.append(measure_start(server))
            time.sleep(IDLE_SETTLE_SECONDS)
            rss.append(proc_status_kib(server.answering_pid(), "VmRSS"))
        finally:
            server.stop()
    return statistics.median(starts), statistics.median(rss)


def raise_nofile(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(needed, hard), hard))


def measure_idle_connections(server, count):
    """RSS (KiB) of a fresh server holding `count` idle keep-alive connections.
    One connection at a time is opened, makes one request and reads its
    answer (proof that it was accepted and is served), then stays open and
    silent; RSS is read as soon as the last answer is in. (One at a time, not
    all at once: see measure_burst for what a burst does to nowd.)"""
    raise_nofile(count + 64)
    measure_start(server)
    socks = []
    try:
        t0 = time.monotonic()
        for _ in range(count):
            s = socket.create_connection(("127.0.0.1", server.port), timeout=IDLE_OPEN_DEADLINE)
            socks.append(s)
            s.sendall(REQUEST)
            status, _ = read_response(s)
            if status != 200:
                raise RuntimeError(f"{server.name} answered {status} on an idle connection")
        rss = proc_status_kib(server.answering_pid(), "VmRSS")
        elapsed = time.monotonic() - t0
        if elapsed > IDLE_OPEN_DEADLINE:
            raise RuntimeError(f"opening {count} connections to {server.name} took {elapsed:.1f} s")
        return rss
    finally:
        for s in socks:
            s.close()
        server.stop()


def says_close(server):
    """Does the server answer `Connection: close` to a request that asks for
    it? A server that closes without saying so makes wrk, which reads only
    the answer's header, send its next request on the dead connection: one
    read error, then a new connection, for every request."""
    measure_start(server)
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=1) as s:
            s.sendall(REQUEST.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"))
            data = b""
            while chunk := s.recv(4096):
                data += chunk
        head = data.split(b"\r\n\r\n", 1)[0].decode("latin-1").lower()
        return "\r\nconnection: close" in head
    finally:
        server.stop()


def measure_burst(server, count):
    """New connections that a fresh server leaves unanswered: `count`
    connections are opened back to back, each sends GET /now at once, and
    those with no answer after BURST_WAIT are counted. (tiny_http's thread
    pool can queue a new connection behind busy threads until another
    connection ends; a burst shows it.)"""
    raise_nofile(count + 64)
    measure_start(server)
    socks = []
    try:
        with selectors.DefaultSelector() as sel:
            for _ in range(count):
                s = socket.create_connection(("127.0.0.1", server.port), timeout=1)
                s.sendall(REQUEST)
                socks.append(s)
                sel.register(s, selectors.EVENT_READ)
            pending = set(socks)
            deadline = time.monotonic() + BURST_WAIT
            while pending and (left := deadline - time.monotonic()) > 0:
                for key, _ in sel.select(timeout=left):
                    try:
                        if key.fileobj.recv(4096):
                            pending.discard(key.fileobj)
                    except OSError:
                        pass  # reset: stays unanswered
                    sel.unregister(key.fileobj)
            return len(pending)
    finally:
        for s in socks:
            s.close()
        server.stop()


@dataclass
class Scenario:
    name: str
    connections: int
    keepalive: bool

    def wrk_args(self):
        return [] if self.keepalive else ["-H", "Connection: close"]


def run_wrk(port, scenario, seconds):
    """One bounded wrk run; returns the figures its done() script prints."""
    cmd = [
        "taskset",
        "-c",
        str(CLIENT_CPU),
        "wrk",
        "-t",
        str(min(WRK_THREADS, scenario.connections)),
        "-c",
        str(scenario.connections),
        "-d",
        f"{seconds}s",
        "-s",
        str(HERE / "report.lua"),
        *scenario.wrk_args(),
        f"http://127.0.0.1:{port}/now",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=seconds + 30)
    for line in out.stdout.splitlines():
        if line.startswith('{"requests"'):
            r = json.loads(line)
            r["rps"] = r["requests"] / (r["duration_us"] / 1e6)
            r["errors"] = sum(r[k] for k in ("connect", "read", "write", "status", "timeout"))
            return r
    raise RuntimeError(f"wrk printed no result:\n{out.stdout}\n{out.stderr}")


class QuietWait:
    """Waits, within a budget for the whole run, for the machine to be quiet."""

    def __init__(self, budget):
        self.left = budget
        self.waited = 0.0

    def __call__(self):
        while self.left > 0:
            busy0, own0 = machine_task_cpu_seconds(), own_cpu_seconds()
            time.sleep(QUIET_SAMPLE)
            others = machine_task_cpu_seconds() - busy0 - (own_cpu_seconds() - own0)
            if others / QUIET_SAMPLE < QUIET_CORES:
                return
            self.left -= QUIET_SAMPLE
            self.waited += QUIET_SAMPLE


def measure_load(servers, scenarios, rounds, seconds, quiet):
    """Interleaved wrk runs against running servers. Returns the list of runs
    and each server's peak RSS (VmHWM, KiB) over all of them."""
    runs = []
    for server in servers:
        measure_start(server)
    try:
        for rnd in range(1, rounds + 1):
            for scenario in scenarios:
                # Rotate the order each round, so no server is always first.
                shift = (rnd - 1) % len(servers)
                for server in servers[shift:] + servers[:shift]:
                    quiet()
                    pid = server.answering_pid()
                    user0, sys0 = proc_cpu_seconds(pid)
                    machine0, own0 = machine_task_cpu_seconds(), own_cpu_seconds()
                    r = run_wrk(server.port, scenario, seconds)
                    user1, sys1 = proc_cpu_seconds(pid)
                    machine1, own1 = machine_task_cpu_seconds(), own_cpu_seconds()
                    # What the rest of the machine used meanwhile, in cores.
                    others = (machine1 - machine0) - (own1 - own0) - (user1 - user0 + sys1 - sys0)
                    r["others_cores"] = max(others, 0) / (r["duration_us"] / 1e6)
                    # Server CPU per answer: independent of whether wrk kept its core busy.
                    r["cpu_us"] = (user1 - user0 + sys1 - sys0) * 1e6 / max(r["requests"], 1)
                    r["sys_share"] = (sys1 - sys0) / max(user1 - user0 + sys1 - sys0, 1e-9)
                    r["cpu_busy"] = (user1 - user0 + sys1 - sys0) / (r["duration_us"] / 1e6)
                    if server.proc.poll() is not None:
                        raise RuntimeError(f"{server.name} died under load:\n{server.log_tail()}")
                    r.update(round=rnd, scenario=scenario.name, server=server.name)
                    runs.append(r)
                    print(
                        f"  round {rnd} {scenario.name:<14} {server.name:<6} "
                        f"{r['rps']:>9,.0f} req/s  p50 {r['p50_us'] / 1000:.3f} ms  "
                        f"p99 {r['p99_us'] / 1000:.3f} ms  errors {r['errors']}  "
                        f"CPU {r['cpu_us']:.1f} us/request, core {100 * r['cpu_busy']:.0f}% busy",
                        flush=True,
                    )
                    time.sleep(PAUSE_BETWEEN_RUNS)
        peaks = {s.name: proc_status_kib(s.answering_pid(), "VmHWM") for s in servers}
    finally:
        for server in servers:
            server.stop()
    return runs, peaks


# --- The machine -----------------------------------------------------------


def first_line(cmd):
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (out.stdout + out.stderr).strip().splitlines()[0]


def describe_machine(nowd_binary):
    cpu = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    mem_kib = proc_meminfo_kib("MemTotal")
    git = first_line(["git", "-C", str(HERE.parent), "describe", "--always", "--dirty"])
    version = first_line([str(nowd_binary), "--version"])
    return {
        "CPU": f"{cpu}, {os.cpu_count()} cores",
        "Memory": f"{mem_kib / 1024 / 1024:.1f} GiB",
        "Kernel": f"Linux {platform.release()}",
        "OS": os_name(),
        "nowd": f"{version} (git {git}), musl static release build",
        "nginx": first_line(["nginx", "-v"]).replace("nginx version: ", ""),
        "wrk": re.sub(r"\s*\[.*", "", first_line(["wrk", "-v"])),
        "Python": f"{platform.python_implementation()} {platform.python_version()}",
    }


def proc_meminfo_kib(key):
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def os_name():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


# --- The report ------------------------------------------------------------


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}x"


def fmt_int(v):
    return "—" if v is None else f"{v:,.0f}"


def fmt_ms(us):
    return "—" if us is None else f"{us / 1000:.3f}"


def summarize(runs, server, scenario):
    mine = [r for r in runs if r["server"] == server and r["scenario"] == scenario]
    return {
        "rps": statistics.median(r["rps"] for r in mine),
        "p50": statistics.median(r["p50_us"] for r in mine),
        "p99": statistics.median(r["p99_us"] for r in mine),
        "errors": sum(r["errors"] for r in mine),
        "cpu_us": statistics.median(r["cpu_us"] for r in mine),
    }


def results_table(res, scenarios):
    """Rows of (figure, better, nowd, nginx, python, nowd/nginx, nowd/python)."""
    names = ("nowd", "nginx", "python")
    rows = []

    def row(figure, better, values, fmt, ratios=True):
        v = [values.get(n) for n in names]
        rows.append(
            (
                figure,
                better,
                *(fmt(x) for x in v),
                ratio(v[0], v[1]) if ratios else "—",
                ratio(v[0], v[2]) if ratios else "—",
            )
        )

    for sc in scenarios:
        s = {n: summarize(res["runs"], n, sc.name) for n in names}
        row(f"{sc.name}: requests/s", "higher", {n: s[n]["rps"] for n in names}, fmt_int)
        row(f"{sc.name}: p50 latency, ms", "lower", {n: s[n]["p50"] for n in names}, fmt_ms)
        row(f"{sc.name}: p99 latency, ms", "lower", {n: s[n]["p99"] for n in names}, fmt_ms)
        row(
            f"{sc.name}: errors", "lower", {n: s[n]["errors"] for n in names}, fmt_int, ratios=False
        )
        row(
            f"{sc.name}: server CPU per request, µs",
            "lower",
            {n: s[n]["cpu_us"] for n in names},
            lambda v: "—" if v is None else f"{v:.1f}",
        )
    row("peak RSS under load, KiB", "lower", res["peak_rss"], fmt_int)
    row("idle RSS after start, KiB", "lower", res["idle_rss"], fmt_int)
    row(
        f"RSS with {res['idle_connections']:,} idle connections, KiB",
        "lower",
        res["conn_rss"],
        fmt_int,
    )
    row(
        f"burst of {res['burst_connections']} new connections: unanswered after {BURST_WAIT:g} s",
        "lower",
        res["burst_stalled"],
        fmt_int,
        ratios=False,
    )
    row(
        "answers `Connection: close` when closing",
        "yes",
        res["says_close"],
        lambda v: "yes" if v else "no",
        ratios=False,
    )
    row(
        "start to first answer, ms",
        "lower",
        res["start_ms"],
        lambda v: "—" if v is None else f"{v:.2f}",
    )
    row("binary size, KiB", "lower", res["binary_kib"], fmt_int)
    return rows


def targets(res, scenarios):
    """The issue's targets for nowd: (target, figure, met)."""
    out = []
    keepalive = [sc for sc in scenarios if sc.keepalive]
    for sc in keepalive:
        nowd = summarize(res["runs"], "nowd", sc.name)
        nginx = summarize(res["runs"], "nginx", sc.name)
        r = nowd["rps"] / nginx["rps"]
        out.append(
            (
                f"{sc.name}: requests/s at least 0.5x nginx (stretch 1.0x)",
                f"{r:.2f}x",
                "met (stretch met)" if r >= 1.0 else "met" if r >= 0.5 else "not met",
            )
        )
        out.append(
            (
                f"{sc.name}: no errors",
                f"{nowd['errors']}",
                "met" if nowd["errors"] == 0 else "not met",
            )
        )
    p99 = summarize(res["runs"], "nowd", keepalive[0].name)["p99"]
    out.append(
        (
            f"{keepalive[0].name}: p99 under 2 ms",
            f"{p99 / 1000:.3f} ms",
            "met" if p99 < 2000 else "not met",
        )
    )
    idle = res["idle_rss"]["nowd"]
    out.append(("idle RSS under 1 MiB", f"{idle:,} KiB", "met" if idle < 1024 else "not met"))
    conn = res["conn_rss"]["nowd"]
    out.append(
        (
            f"RSS with {res['idle_connections']:,} idle connections under 16 MiB",
            f"{conn:,} KiB",
            "met" if conn < 16 * 1024 else "not met",
        )
    )
    start = res["start_ms"]["nowd"]
    out.append(
        ("start to first answer under 10 ms", f"{start:.2f} ms", "met" if start < 10 else "not met")
    )
    return out


def md_table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(str(c) for c in r) + " |" for r in rows]
    return "\n".join(lines)


def markdown(res, scenarios, cfg):
    m = res["machine"]
    pin = (
        f"Each server runs on CPU {SERVER_CPU} and wrk ({WRK_THREADS} thread) and the driver "
        f"on CPU {CLIENT_CPU} (taskset / sched_setaffinity), so a server has one core to itself "
        f"and never competes with its load generator."
        if res["pinned"]
        else "This machine has one core: servers and wrk share it (no pinning)."
    )
    out = [
        "# Benchmarks"
        + (" (smoke run: tiny budget, not figures to quote)" if cfg["smoke"] else ""),
        "",
        "nowd against nginx, the server a user would put in its place, and Python's",
        "`http.server`, the naive baseline. Everything on loopback (127.0.0.1).",
        "",
        f"Made by `{cfg['command']}` on {res['date']}. This file is written by",
        "`bench/bench.py`: run it again rather than editing the figures.",
        "",
        "## Machine",
        "",
        md_table(("", ""), list(m.items())),
        "",
        "## Results",
        "",
        f"Median of {cfg['rounds']} rounds of {cfg['seconds']} s each; errors are summed over the "
        "rounds. The ratio columns are nowd's figure divided by the other's; the `better` "
        "column says which way is good.",
        "",
        md_table(
            ("figure", "better", "nowd", "nginx", "python", "nowd/nginx", "nowd/python"),
            results_table(res, scenarios),
        ),
        "",
        "## Targets",
        "",
        md_table(("target (nowd)", "figure", "result"), targets(res, scenarios)),
        "",
        *capacity_note(res, scenarios),
        "## Method",
        "",
        f"- {pin}",
        "- Load: wrk with a Lua `done()` script (`bench/report.lua`) that reports requests, "
        "latency percentiles and errors (socket errors plus non-2xx/3xx answers). Scenarios: "
        + ", ".join(f"`{sc.name}`" for sc in scenarios)
        + "; `close` sends `Connection: close`, so every request opens a new connection. "
        "Rounds are interleaved: each round runs every scenario against every server, in an "
        "order rotated each round, so drift hits all three alike. All three servers stay up "
        "through the load runs; the idle ones use no CPU.",
        "- Server CPU per request: the answering process's user plus system CPU time "
        "(/proc/PID/stat, all threads) over a wrk run, divided by the requests it answered. "
        "Unlike requests/s it does not depend on whether wrk kept the server's core busy "
        "(`server core busy` in the table of every run).",
        "- Peak RSS under load: VmHWM of the answering process after all load runs "
        "(nginx: its one worker).",
        f"- Start to first answer: from spawning the process to the first `200` on `GET /now`, "
        f"the driver connecting in a tight loop; idle RSS: VmRSS {IDLE_SETTLE_SECONDS} s after "
        f"that answer. Median of {cfg['start_repeats']} fresh processes.",
        f"- Idle connections: a fresh process; the driver opens {res['idle_connections']:,} "
        "connections one at a time, each sends one `GET /now` and reads its answer, then all "
        "stay open and silent while VmRSS is read (nowd closes a connection idle for 5 s, so "
        "this happens at once).",
        f"- Burst: a fresh process; the driver opens {res['burst_connections']} connections back "
        f"to back, each sending `GET /now` at once, and counts those with no answer after "
        f"{BURST_WAIT:g} s.",
        '- nginx 1 worker, access log off, `return 200 "$time_iso8601\\n"` '
        "(`bench/nginx.conf.in`), `keepalive_requests` lifted so keep-alive stays keep-alive. "
        "Its answer has whole seconds; nowd's has microseconds.",
        "- python: `ThreadingHTTPServer` with an HTTP/1.1 `BaseHTTPRequestHandler` "
        "(`bench/pyserver.py`): one thread per connection, as tiny_http in nowd.",
        "- RSS counts shared library pages too: nowd is static, nginx and python are "
        f"dynamically linked. nginx's RSS is the worker's; its master adds "
        f"{res['nginx_master_rss']:,} KiB. Binary size: nowd's file, nginx's `/usr/sbin/nginx` "
        "(without its shared libraries).",
        *close_note(res),
        f"- Load average (1, 5, 15 min) before the run: {fmt_load(res['load_before'])}; after: "
        f"{fmt_load(res['load_after'])}. Other processes used {others_summary(res['runs'])} "
        "during the load runs (`others' CPU` in the table of every run: CPU time of the whole "
        "machine less the server, wrk and the driver, in % of one core). What they took, the "
        f"figures lack. Before each run the driver waited for the rest of the machine to use "
        f"under {100 * QUIET_CORES:.0f}% of a core, {res['quiet_waited']:.0f} s in all "
        f"(at most {SMOKE_QUIET_BUDGET if cfg['smoke'] else QUIET_BUDGET:.0f} s).",
        "",
        "## Every run",
        "",
        md_table(
            (
                "round",
                "scenario",
                "server",
                "requests/s",
                "p50 ms",
                "p99 ms",
                "p99.9 ms",
                "CPU µs/request",
                "kernel share",
                "server core busy",
                "others' CPU",
                "errors",
            ),
            [
                (
                    r["round"],
                    r["scenario"],
                    r["server"],
                    fmt_int(r["rps"]),
                    fmt_ms(r["p50_us"]),
                    fmt_ms(r["p99_us"]),
                    fmt_ms(r["p999_us"]),
                    f"{r['cpu_us']:.1f}",
                    f"{100 * r['sys_share']:.0f}%",
                    f"{100 * r['cpu_busy']:.0f}%",
                    f"{100 * r['others_cores']:.0f}%",
                    f"{r['errors']}" + (f" ({error_detail(r)})" if r["errors"] else ""),
                )
                for r in res["runs"]
            ],
        ),
        "",
    ]
    return "\n".join(out)


def capacity_note(res, scenarios):
    """requests/s depends on wrk and on what else runs on the machine; server
    CPU per request does not. Gives nowd's capacity on one core as a share of
    nginx's, and says when wrk, not nginx, set nginx's pace."""
    keepalive = [sc.name for sc in scenarios if sc.keepalive]
    ratios = []
    for name in keepalive:
        nowd = summarize(res["runs"], "nowd", name)["cpu_us"]
        nginx = summarize(res["runs"], "nginx", name)["cpu_us"]
        ratios.append(f"{name}: {nginx / nowd:.2f}x")
    note = (
        "Measured by server CPU per request, which depends far less than requests/s on wrk "
        "and on the rest of the machine, nowd's keep-alive capacity on one core is this "
        "fraction of nginx's: "
        f"{', '.join(ratios)}."
    )
    busy = [
        r["cpu_busy"] for r in res["runs"] if r["server"] == "nginx" and r["scenario"] in keepalive
    ]
    if busy and statistics.median(busy) < 0.9:
        note += (
            f" nginx's worker was {100 * statistics.median(busy):.0f}% busy in the median "
            "keep-alive run: wrk, on its one core, set the pace there, so the requests/s "
            "ratio flatters nowd."
        )
    return [note, ""]


def others_summary(runs):
    shares = [r["others_cores"] for r in runs]
    return (
        f"{100 * statistics.mean(shares):.0f}% of a core on average "
        f"(at most {100 * max(shares):.0f}% in one run)"
    )


def fmt_load(load):
    return " ".join(f"{x:.2f}" for x in load)


def close_note(res):
    silent = [name for name, says in res["says_close"].items() if not says]
    if not silent:
        return []
    verb = "closes" if len(silent) == 1 else "close"
    return [
        f"- {' and '.join(silent)} {verb} the connection after a `Connection: close` request "
        "without answering `Connection: close`. wrk then sends its next request on the "
        "closed connection, counts a read error and reconnects: in the `close` scenario "
        "such a server shows about one read error per request, though every answer was "
        "delivered."
    ]


def error_detail(r):
    return ", ".join(
        f"{k} {r[k]}" for k in ("connect", "read", "write", "status", "timeout") if r[k]
    )


# --- Main ------------------------------------------------------------------


def check_tools():
    missing = [t for t in ("wrk", "nginx", "taskset") if shutil.which(t) is None]
    if missing:
        sys.exit(f"bench: missing {', '.join(missing)} (make -C bench installs them)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nowd", required=True, type=Path, help="the nowd binary")
    ap.add_argument("--out", type=Path, help="write the Markdown report here")
    ap.add_argument("--smoke", action="store_true", help="tiny budget; fail on errors")
    ap.add_argument("--command", default="make bench", help="the command named in the report")
    args = ap.parse_args()

    check_tools()
    if not args.nowd.is_file():
        sys.exit(f"bench: no nowd binary at {args.nowd} (run make build)")
    if args.smoke:
        rounds, seconds, idle_count, repeats = (
            SMOKE_ROUNDS,
            SMOKE_WRK_SECONDS,
            SMOKE_IDLE_CONNECTIONS,
            SMOKE_START_REPEATS,
        )
        burst_count = SMOKE_BURST_CONNECTIONS
        keepalive, close = SMOKE_KEEPALIVE_CONNECTIONS, SMOKE_CLOSE_CONNECTIONS
    else:
        rounds, seconds, idle_count, repeats = ROUNDS, WRK_SECONDS, IDLE_CONNECTIONS, START_REPEATS
        burst_count = BURST_CONNECTIONS
        keepalive, close = KEEPALIVE_CONNECTIONS, CLOSE_CONNECTIONS
    scenarios = [Scenario(f"keep-alive c{c}", c, True) for c in keepalive]
    scenarios.append(Scenario(f"close c{close}", close, False))

    pinned = os.cpu_count() >= 2
    global CLIENT_CPU
    if not pinned:
        CLIENT_CPU = SERVER_CPU
    os.sched_setaffinity(0, {CLIENT_CPU})

    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="nowd-bench-") as tmp:
        workdir = Path(tmp)
        os.chmod(workdir, 0o755)  # nginx's workers run as nobody
        nowd = Nowd(workdir, args.nowd.resolve())
        servers = [nowd, Nginx(workdir), Python(workdir)]
        res = {
            "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": describe_machine(nowd.binary),
            "pinned": pinned,
            "idle_connections": idle_count,
            "burst_connections": burst_count,
            "start_ms": {},
            "idle_rss": {},
            "conn_rss": {},
            "burst_stalled": {},
            "says_close": {},
            "load_before": os.getloadavg(),
            "binary_kib": {
                "nowd": nowd.binary.stat().st_size / 1024,
                "nginx": Path(shutil.which("nginx")).stat().st_size / 1024,
            },
        }
        print(f"== start to first answer and idle RSS ({repeats} starts each)", flush=True)
        for s in servers:
            res["start_ms"][s.name], res["idle_rss"][s.name] = measure_start_and_idle(s, repeats)
            print(
                f"  {s.name:<6} {res['start_ms'][s.name]:.2f} ms, {res['idle_rss'][s.name]:,} KiB"
            )
        nginx = servers[1]
        measure_start(nginx)
        res["nginx_master_rss"] = proc_status_kib(nginx.proc.pid, "VmRSS")
        nginx.stop()

        print(f"== RSS with {idle_count:,} idle connections", flush=True)
        for s in servers:
            res["conn_rss"][s.name] = measure_idle_connections(s, idle_count)
            print(f"  {s.name:<6} {res['conn_rss'][s.name]:,} KiB", flush=True)

        print("== does each say Connection: close when it closes?", flush=True)
        for s in servers:
            res["says_close"][s.name] = says_close(s)
            print(f"  {s.name:<6} {'yes' if res['says_close'][s.name] else 'no'}", flush=True)

        print(f"== a burst of {burst_count} new connections", flush=True)
        for s in servers:
            res["burst_stalled"][s.name] = measure_burst(s, burst_count)
            print(
                f"  {s.name:<6} {res['burst_stalled'][s.name]} unanswered after {BURST_WAIT} s",
                flush=True,
            )

        print(
            f"== load: {rounds} rounds x {len(scenarios)} scenarios x 3 servers, {seconds} s each",
            flush=True,
        )
        quiet = QuietWait(SMOKE_QUIET_BUDGET if args.smoke else QUIET_BUDGET)
        res["runs"], res["peak_rss"] = measure_load(servers, scenarios, rounds, seconds, quiet)
        res["quiet_waited"] = quiet.waited
        res["load_after"] = os.getloadavg()

    cfg = {
        "rounds": rounds,
        "seconds": seconds,
        "start_repeats": repeats,
        "command": args.command,
        "smoke": args.smoke,
    }
    report = markdown(res, scenarios, cfg)
    print()
    print(report)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(report)
        print(f"wrote {args.out}")
    print(f"bench: done in {time.monotonic() - started:.0f} s")

    if args.smoke:
        failures = [
            f"{r['server']} {r['scenario']}: {r['errors']} errors ({error_detail(r)})"
            for r in res["runs"]
            if r["errors"] and "keep-alive" in r["scenario"]
        ]
        failures += [
            f"nowd answered no requests in {r['scenario']}"
            for r in res["runs"]
            if r["server"] == "nowd" and r["requests"] == 0
        ]
        if failures:
            print("smoke: FAILED\n  " + "\n  ".join(failures), file=sys.stderr)
            return 1
        print("smoke: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
