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

Prints a Markdown report; docs/CAPACITY.md holds the arithmetic built on it.
Needs root (cgroups). Standard library only. Everything it starts or creates
is removed before it exits; every wait is bounded.
"""

import argparse
import os
import re
import resource
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
UNIT = HERE.parent / "systemd" / "nowd.service"
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
        if "memory" in (unified / "cgroup.controllers").read_text(errors="ignore").split() \
                if (unified / "cgroup.controllers").exists() else False:
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
        return {"total": total, "user": user, "kernel": kernel, "sock": sock, "tasks": tasks,
                "stat": st}

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


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
    except (ConnectionError, socket.timeout, OSError):
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
            try:
                s.send(burst)
            except (BlockingIOError, OSError):
                pass
        time.sleep(0.05)
    return conns


def kib(b):
    return b / 1024


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--nowd", required=True)
    ap.add_argument("--connections", type=int, default=0,
                    help="connections to hold (default: nowd's cap less one)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("capacity: needs root (it makes cgroups)")

    bounds = unit_bounds()
    memory_max = size_bytes(bounds["MemoryMax"])
    tasks_max = int(bounds["TasksMax"])
    nofile = int(bounds["LimitNOFILE"])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    port = free_port()
    cg = Cgroup(f"nowd-i9-capacity-{os.getpid()}", memory_max, tasks_max)
    nowd = None
    conns = []
    try:
        # As the unit runs it: its open-file limit, no privilege, in its cgroup.
        cmd = ["prlimit", f"--nofile={nofile}:{nofile}", "--",
               "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
               "--inh-caps=-all", "--", args.nowd, "--listen", f"127.0.0.1:{port}",
               "--log-level", "info", "--time-reference", "127.0.0.1:9"]  # nothing beyond loopback
        nowd = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                preexec_fn=lambda: cg.join(os.getpid()))
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
        time.sleep(0.5)  # let nowd take the last of them
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
        time.sleep(0.2)
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

    per = {k: (held[k] - base[k]) / n for k in ("total", "user", "kernel", "sock")}
    flood = {k: (flooded[k] - before_flood[k]) / flood_n for k in ("total", "user", "kernel", "sock")}
    ok = [s for s, _ in fresh if s == 200]
    times = sorted(secs for _, secs in fresh)
    refusals = [s for s, _ in refused]
    worst_refusal = max(secs for _, secs in refused)
    hierarchy = "cgroup v2" if cg.v2 else "cgroup v1 (this host's memory controller is on v1)"
    print(f"""## Capacity, measured

`make capacity` (`bench/capacity.py`), {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())},
Linux {os.uname().release}, {hierarchy}. The unit's bounds as `systemd/nowd.service` sets them:
`MemoryMax={bounds['MemoryMax']}`, `TasksMax={tasks_max}`, `LimitNOFILE={nofile}`; nowd's cap under
that limit: {cap} connections.

{n} connections held, each stalled inside a request head (opened in {opened:.1f} s):

| | with 0 connections | with {n} | per connection |
| --- | ---: | ---: | ---: |
| cgroup memory in all | {kib(base['total']):,.0f} KiB | {kib(held['total']):,.0f} KiB | **{kib(per['total']):.1f} KiB** |
| user (anonymous: heap, touched thread stacks) | {kib(base['user']):,.0f} KiB | {kib(held['user']):,.0f} KiB | {kib(per['user']):.1f} KiB |
| kernel (thread stacks, sockets, slab) | {kib(base['kernel']):,.0f} KiB | {kib(held['kernel']):,.0f} KiB | {kib(per['kernel']):.1f} KiB |
| of which socket buffers | {kib(base['sock']):,.0f} KiB | {kib(held['sock']):,.0f} KiB | {kib(per['sock']):.1f} KiB |
| tasks (pids cgroup) | {base['tasks']} | {held['tasks']} | {(held['tasks'] - base['tasks']) / n:.2f} |

nowd's RSS with {n} held: {rss_kib:,} KiB; the cgroup's peak over the whole run: {kib(peak):,.0f} KiB
of {kib(memory_max):,.0f} KiB allowed.

- A fresh `GET /now` with {n} held: {len(ok)} of {len(fresh)} answered `200`; median
  {statistics.median(times) * 1000:.2f} ms, slowest {times[-1] * 1000:.2f} ms.
- With all {cap} places taken, 20 more clients: {refusals.count(503)} got `503`,
  {refusals.count(None)} a close or reset, {len([r for r in refusals if r not in (503, None)])} anything else;
  the slowest refusal took {worst_refusal * 1000:.2f} ms.
- {flood_n} connections that pipeline `GET /now` for 3 s and never read: **{kib(flood['total']):.1f} KiB**
  each in all, of which {kib(flood['sock']):.1f} KiB socket buffers, {kib(flood['kernel']):.1f} KiB kernel,
  {kib(flood['user']):.1f} KiB user.
- nowd {'still ran' if alive else 'had EXITED'} at the end ({elapsed:.1f} s in all, inside the 5 s idle time).
""")
    good = alive and len(ok) == len(fresh) and all(r in (503, None) for r in refusals) \
        and worst_refusal < 1.0
    sys.exit(0 if good else 1)


if __name__ == "__main__":
    main()
