#!/usr/bin/env python3
"""What one open connection costs nowd, measured in a cgroup with the unit's bounds.

    python3 capacity.py --nowd PATH [--connections N]     (make capacity)

Reads MemoryMax=, TasksMax= and LimitNOFILE= from systemd/nowd.service and
applies them to the real binary as systemd would: a memory and a pids cgroup
of its own, the open-file limit, an unprivileged user. Then it opens N
connections that each stall inside a request head (the costliest idle state:
a thread blocked in a read with its buffers allocated), reads the cgroup's
own account of the memory (user and kernel), and checks the cap: a fresh
client answered while N are open, one over the cap refused at once.

Writes the figures to capacity.json (the data tests/bounds.rs and the image's VM
test read) and, with --doc, the measured part of docs/CAPACITY.md from them
(capacity_report.py); docs/CAPACITY.md holds the arithmetic built on them.
Needs root (cgroups). Standard library only. Everything it starts or creates
is removed before it exits; every wait is bounded.
"""

import argparse
import contextlib
import json
import math
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import capacity_report

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "testing"))

from nowd_testing import free_port  # noqa: E402 - after the path above

UNIT = HERE.parent / "systemd" / "nowd.service"
DATA = HERE / "capacity.json"
IMAGE_SOURCE = "make test-vm: test_an_open_connection_costs_what_the_capacity_arithmetic_assumes"
STALLED = b"GET /now HTTP/1.1\r\nHost: nowd\r\nX-Stalled: "
FRESH = b"GET /now HTTP/1.1\r\nHost: nowd\r\nConnection: close\r\n\r\n"


def unit_bounds(path=UNIT):
    """The [Service] settings nowd's resource bounds come from."""
    values = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^(MemoryMax|MemorySwapMax|TasksMax|LimitNOFILE)=(\S+)$", line)
        if m:
            values[m.group(1)] = m.group(2)
    return values


def size_bytes(v):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(v[:-1]) * units[v[-1]] if v[-1] in units else int(v)


class Cgroup:
    """A memory and a pids cgroup (v2 where the memory controller is there, else v1)."""

    def __init__(self, name, memory_max, tasks_max):
        unified = Path("/sys/fs/cgroup")
        if (
            "memory" in (unified / "cgroup.controllers").read_text(errors="ignore").split()
            if (unified / "cgroup.controllers").exists()
            else False
        ):
            self.v2 = True
            self.dirs = [unified / name]
            self.dirs[0].mkdir()
            (self.dirs[0] / "memory.max").write_text(str(memory_max))
            (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "pids.max").write_text(str(tasks_max))
            self.mem = self.pids = self.dirs[0]
        else:
            self.v2 = False
            self.mem = Path("/sys/fs/cgroup/memory") / name
            self.pids = Path("/sys/fs/cgroup/pids") / name
            self.dirs = [self.mem, self.pids]
            for d in self.dirs:
                d.mkdir()
            (self.mem / "memory.limit_in_bytes").write_text(str(memory_max))
            # v1 charges socket buffers only once a TCP limit is set; the
            # same as the memory limit, so they are counted, not capped apart.
            (self.mem / "memory.kmem.tcp.limit_in_bytes").write_text(str(memory_max))
            (self.pids / "pids.max").write_text(str(tasks_max))

    def join(self, pid):
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def stat(self):
        s = {}
        name = "memory.stat"
        for line in (self.mem / name).read_text().splitlines():
            k, v = line.split()
            s[k] = int(v)
        return s

    def reading(self):
        """Bytes: total, user (anonymous), kernel, of which socket buffers; and tasks."""
        st = self.stat()
        if self.v2:
            total = int((self.mem / "memory.current").read_text())
            sock = st.get("sock", 0)
            kernel = st.get("kernel", st.get("kernel_stack", 0) + st.get("slab", 0) + sock)
            user = st.get("anon", 0)
        else:
            sock = int((self.mem / "memory.kmem.tcp.usage_in_bytes").read_text())
            kernel = int((self.mem / "memory.kmem.usage_in_bytes").read_text()) + sock
            total = int((self.mem / "memory.usage_in_bytes").read_text()) + sock
            user = st.get("rss", 0)
        tasks = int((self.pids / "pids.current").read_text())
        return {
            "total": total,
            "user": user,
            "kernel": kernel,
            "sock": sock,
            "tasks": tasks,
            "stat": st,
        }

    def peak(self):
        f = "memory.peak" if self.v2 else "memory.max_usage_in_bytes"
        p = self.mem / f
        return int(p.read_text()) if p.exists() else 0

    def remove(self):
        for d in self.dirs:
            for _ in range(50):
                try:
                    d.rmdir()
                    break
                except OSError:
                    time.sleep(0.1)


def fresh_get(port, timeout=2.0):
    """(status or None, seconds) for one GET /now on a new connection."""
    start = time.perf_counter()
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(FRESH)
            data = b""
            while b"\r\n" not in data:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        status = int(data.split()[1]) if data.startswith(b"HTTP/1.1 ") else None
    except (TimeoutError, ConnectionError, OSError):
        status = None
    return status, time.perf_counter() - start


def open_stalled(port, n):
    conns = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.sendall(STALLED)
        conns.append(s)
    return conns


def open_flooders(port, n):
    """n connections that pipeline GET /now until nothing more is taken, never reading."""
    burst = b"GET /now HTTP/1.1\r\nHost: nowd\r\n\r\n" * 512
    conns = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    for s in conns:
        s.setblocking(False)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        for s in conns:
            with contextlib.suppress(BlockingIOError, OSError):
                s.send(burst)
        time.sleep(0.05)
    return conns


def settle(cg, quiet_s=0.5, within_s=20.0):
    """Wait until nowd's task count stops growing: it has taken every connection
    it will (a loaded machine needs longer than an idle one)."""
    deadline = time.monotonic() + within_s
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        tasks = cg.reading()["tasks"]
        if tasks != last:
            last, since = tasks, time.monotonic()
        elif time.monotonic() - since >= quiet_s:
            return
        time.sleep(0.1)


def kib(b):
    return b / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nowd", required=True)
    ap.add_argument("--out", type=Path, default=DATA, help=f"the data file (default {DATA})")
    ap.add_argument("--doc", type=Path, help="rewrite the measured part of this Markdown file")
    ap.add_argument(
        "--image-kib",
        type=float,
        help="KiB per idle connection in the booted image, from make test-vm",
    )
    ap.add_argument(
        "--connections",
        type=int,
        default=0,
        help="connections to hold (default: nowd's cap less one)",
    )
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("capacity: needs root (it makes cgroups)")

    bounds = unit_bounds()
    memory_max = size_bytes(bounds["MemoryMax"])
    tasks_max = int(bounds["TasksMax"])
    nofile = int(bounds["LimitNOFILE"])
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    port = free_port()
    cg = Cgroup(f"nowd-i9-capacity-{os.getpid()}", memory_max, tasks_max)
    nowd = None
    conns = []
    try:
        # As the unit runs it: its open-file limit, no privilege, in its cgroup.
        cmd = [
            "prlimit",
            f"--nofile={nofile}:{nofile}",
            "--",
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
            "--",
            args.nowd,
            "--listen",
            f"127.0.0.1:{port}",
            "--log-level",
            "info",
            "--time-reference",
            "127.0.0.1:9",
        ]  # nothing beyond loopback
        nowd = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=lambda: cg.join(os.getpid()),
        )
        line = nowd.stderr.readline().decode()
        m = re.search(r"at most (\d+) connections", line)
        if not m:
            sys.exit(f"capacity: nowd did not start: {line!r}")
        cap = int(m.group(1))
        n = args.connections or cap - 1
        for _ in range(100):
            if fresh_get(port)[0] == 200:
                break
            time.sleep(0.05)
        time.sleep(0.5)
        base = cg.reading()

        t = time.perf_counter()
        conns = open_stalled(port, n)
        opened = time.perf_counter() - t
        settle(cg)  # let nowd take the last of them
        held = cg.reading()
        rss_kib = int(re.search(r"VmRSS:\s+(\d+)", Path(f"/proc/{nowd.pid}/status").read_text())[1])

        # A fresh client while n are held (the cap less one: it takes the last place).
        fresh = []
        for _ in range(20):
            status, secs = fresh_get(port)
            fresh.append((status, secs))
            time.sleep(0.02)
        # Fill the cap, then one more: refused at once.
        conns += open_stalled(port, cap - n)
        settle(cg)
        refused = [fresh_get(port) for _ in range(20)]
        elapsed = time.perf_counter() - t
        for s in conns:
            s.close()
        conns = []
        time.sleep(1.0)
        # The costliest client for socket memory: it pipelines and never reads.
        before_flood = cg.reading()
        flood_n = 256
        conns = open_flooders(port, flood_n)
        flooded = cg.reading()
        peak = cg.peak()
        alive = nowd.poll() is None
    finally:
        for s in conns:
            s.close()
        if nowd:
            nowd.kill()
            nowd.wait()
        cg.remove()

    per = {k: kib(held[k] - base[k]) / n for k in ("total", "user", "kernel", "sock")}
    flood = {
        k: kib(flooded[k] - before_flood[k]) / flood_n for k in ("total", "user", "kernel", "sock")
    }
    times = sorted(secs for _, secs in fresh)
    refusals = [s for s, _ in refused]
    data = {
        "command": "make capacity",
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "kernel": os.uname().release,
        "cgroup": "v2" if cg.v2 else "v1",
        "unit_bounds": {
            "MemoryMax": bounds["MemoryMax"],
            "TasksMax": tasks_max,
            "LimitNOFILE": nofile,
        },
        "memory_max_kib": kib(memory_max),
        "max_connections": cap,
        "stalled": {
            "connections": n,
            "opened_s": round(opened, 2),
            "before_kib": {k: kib(base[k]) for k in ("total", "user", "kernel", "sock")},
            "held_kib": {k: kib(held[k]) for k in ("total", "user", "kernel", "sock")},
            "kib_per_connection": {k: round(v, 1) for k, v in per.items()},
            "tasks_before": base["tasks"],
            "tasks_held": held["tasks"],
            "rss_kib": rss_kib,
        },
        "peak_kib": kib(peak),
        "fresh_at_cap_less_one": {
            "answered_200": sum(1 for s, _ in fresh if s == 200),
            "clients": len(fresh),
            "median_ms": round(statistics.median(times) * 1000, 2),
            "slowest_ms": round(times[-1] * 1000, 2),
        },
        "over_the_cap": {
            "clients": len(refused),
            "got_503": refusals.count(503),
            "closed_or_reset": refusals.count(None),
            "other": len([r for r in refusals if r not in (503, None)]),
            "slowest_ms": round(max(secs for _, secs in refused) * 1000, 2),
        },
        "pipelining": {
            "connections": flood_n,
            "kib_per_connection": {k: round(v, 1) for k, v in flood.items()},
        },
        "still_running": alive,
        "elapsed_s": round(elapsed, 1),
        "image": image_figure(args),
    }
    # The bound: the dearer of this host's and the image's idle connection, and the
    # socket buffers of one that pipelines and never reads, each rounded up.
    data["worst_kib_per_connection"] = math.ceil(
        max(per["total"], data["image"]["kib_per_connection"])
    ) + math.ceil(flood["sock"])

    good = (
        alive
        and data["fresh_at_cap_less_one"]["answered_200"] == len(fresh)
        and all(r in (503, None) for r in refusals)
        and data["over_the_cap"]["slowest_ms"] < 1000
    )
    if not good:
        print(capacity_report.render(data))
        sys.exit(f"capacity: FAILED (above); {args.out} left as it was")
    args.out.write_text(json.dumps(data, indent=2) + "\n")
    print(f"capacity: wrote {args.out}")
    if args.doc:
        capacity_report.update_doc(args.doc, data)
        print(f"capacity: updated the measured part of {args.doc}")
    else:
        print(capacity_report.render(data))


def image_figure(args):
    """What an idle connection costs in the booted image (make test-vm prints it as
    "VM: memory per open connection"): given with --image-kib, else the last one kept."""
    if args.image_kib is not None:
        return {"kib_per_connection": args.image_kib, "source": IMAGE_SOURCE}
    try:
        return json.loads(args.out.read_text())["image"]
    except (OSError, ValueError, KeyError):
        sys.exit(f"capacity: no image figure in {args.out}: give --image-kib (make test-vm)")


if __name__ == "__main__":
    main()
