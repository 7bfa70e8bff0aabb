"""The servers the benchmark compares, each started on one pinned CPU and
stopped again: nowd, nginx (bench/nginx.conf.in) and Python's http.server
(bench/pyserver.py). Every one listens on 127.0.0.1 only."""

import grp
import os
import pwd
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from nowd_testing import free_port
from procfs import child_pids

HERE = Path(__file__).resolve().parent
SERVER_CPU = 0  # the servers' core; wrk and the driver take another


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
    def __init__(self, workdir, connections):
        super().__init__("nginx", workdir)
        self.connections = connections  # the most it must hold open at once

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
            "WORKER_CONNECTIONS": str(self.connections + 1024),
            "NOFILE": str(2 * self.connections + 2048),
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
