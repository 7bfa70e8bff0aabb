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
import json
import os
import platform
import re
import resource
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "testing"))  # nowd_testing, for servers.py

import report  # noqa: E402 - after the path above
from procfs import (  # noqa: E402
    machine_task_cpu_seconds,
    own_cpu_seconds,
    proc_cpu_seconds,
    proc_meminfo_kib,
    proc_status_kib,
)
from rawhttp import REQUEST, get_now, read_response  # noqa: E402
from servers import SERVER_CPU, Nginx, Nowd, Python  # noqa: E402

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


# --- Servers ---------------------------------------------------------------


# --- HTTP on raw sockets ---------------------------------------------------


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


def os_name():
    try:
        for line in Path("/etc/os-release").read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    except OSError:
        pass
    return platform.system()


# --- The report ------------------------------------------------------------


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
        servers = [nowd, Nginx(workdir, idle_count), Python(workdir)]
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
        # How it was measured, for the report's Method section.
        "server_cpu": SERVER_CPU,
        "client_cpu": CLIENT_CPU,
        "wrk_threads": WRK_THREADS,
        "idle_settle_s": IDLE_SETTLE_SECONDS,
        "burst_wait_s": BURST_WAIT,
        "quiet_cores": QUIET_CORES,
        "quiet_budget_s": SMOKE_QUIET_BUDGET if args.smoke else QUIET_BUDGET,
    }
    text = report.markdown(res, scenarios, cfg)
    print()
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out}")
    print(f"bench: done in {time.monotonic() - started:.0f} s")

    if args.smoke:
        failures = [
            f"{r['server']} {r['scenario']}: {r['errors']} errors ({report.error_detail(r)})"
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
