"""Test servers for the healthcheck, all real sockets on loopback.

TimeServer is an HTTP server (http.server in a thread) whose clock is off by a
known skew; RawServer answers TCP connections with whatever a test wants
(nothing, garbage, a trickle); SntpResponder (testing/nowd_testing.py) is an
SNTP server with a known offset. The healthcheck itself runs as a subprocess, like cron runs it.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from nowd_testing import SntpResponder

HERE = Path(__file__).resolve().parent
PROJECT = HERE.parent  # healthcheck/
# The Python that runs the check: this one, or another to check that it still
# runs there (HEALTHCHECK_PYTHON=python3.9 make test).
CHECK_PYTHON = os.environ.get("HEALTHCHECK_PYTHON") or sys.executable
ZIPAPP = os.environ.get("HEALTHCHECK_ZIPAPP")
# The command line, run in PROJECT, as the README gives it.
CHECK_COMMAND = (
    [CHECK_PYTHON, str((PROJECT / ZIPAPP).resolve())]
    if ZIPAPP
    else [CHECK_PYTHON, "-m", "nowd_healthcheck"]
)
sys.path.insert(0, str(PROJECT))  # for the in-process tests: import nowd_healthcheck

UTC = datetime.UTC


def ipv6_loopback_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
        return True
    except OSError:
        return False


# --------------------------------------------------------------------------
# HTTP time servers
# --------------------------------------------------------------------------


def format_time(t: float, fmt: str) -> str:
    """t (seconds since 1970) as a timestamp body in one of the test formats."""
    stamp = datetime.datetime.fromtimestamp(t, UTC)
    if fmt == "micro":  # what nowd sends
        return stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if fmt == "millis+0530":  # a fraction and a non-zero numeric offset
        local = stamp.astimezone(datetime.timezone(datetime.timedelta(hours=5, minutes=30)))
        return local.strftime("%Y-%m-%dT%H:%M:%S.") + f"{local.microsecond // 1000:03d}+05:30"
    if fmt == "seconds+0000":  # whole seconds (truncated), numeric UTC offset
        return stamp.strftime("%Y-%m-%dT%H:%M:%S+00:00")
    if fmt == "json":  # nowd's JSON shape
        return json.dumps(
            {"now": stamp.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "unix_ns": int(t * 1e9), "clock": None}
        )
    raise ValueError(fmt)


class TimeServer:
    """An HTTP server on loopback whose clock reads time.time() + skew.

    body: a format_time() format, "date-only" (a body without a timestamp and
    a skewed Date header) or "nothing" (neither). delays: seconds to wait
    before reading the clock, per request in turn (the last one repeats).
    """

    def __init__(
        self,
        skew: float = 0.0,
        body: str = "micro",
        status: int = 200,
        delays: tuple[float, ...] = (0.0,),
        server_header: str = "test-server",
        healthz: tuple[int, str] = (200, "ok"),
        host: str = "127.0.0.1",
        port: int = 0,
        keep_alive: bool = True,
        instance: str | None = None,
    ) -> None:
        self.skew, self.body, self.status, self.delays = skew, body, status, delays
        self.server_header, self.healthz, self.instance = server_header, healthz, instance
        self.requests: list[tuple[str, str]] = []  # (path, Host header)
        self.readings: list[float] = []  # the server's clock at each /now
        self._lock = threading.Lock()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1" if keep_alive else "HTTP/1.0"

            def do_GET(self) -> None:
                with outer._lock:
                    index = len(outer.requests)
                    outer.requests.append((self.path, self.headers.get("Host", "")))
                delay = outer.delays[min(index, len(outer.delays) - 1)]
                if delay:
                    time.sleep(delay)
                now = time.time() + outer.skew  # the server's clock, read once
                if self.path != "/healthz":
                    outer.readings.append(now)
                if self.path == "/healthz":
                    status, text = outer.healthz[0], outer.healthz[1] + "\n"
                elif outer.body == "date-only" or outer.body == "nothing":
                    status, text = outer.status, "hello, no time here\n"
                else:
                    status, text = outer.status, format_time(now, outer.body) + "\n"
                payload = text.encode()
                self.send_response_only(status)
                self.send_header("Server", outer.server_header)
                if outer.instance is not None:
                    self.send_header("Nowd-Instance", outer.instance)
                if outer.body != "nothing":
                    self.send_header("Date", email.utils.formatdate(now, usegmt=True))
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args) -> None:
                pass

        family = socket.AF_INET6 if ":" in host else socket.AF_INET

        class Server(http.server.ThreadingHTTPServer):
            address_family = family
            daemon_threads = True

        self.httpd = Server((host, port), Handler)
        self.host, self.port = host, self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/now"

    def paths(self) -> list[str]:
        return [path for path, _host in self.requests]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def time_server():
    """A factory of TimeServers, all shut down after the test."""
    servers: list[TimeServer] = []

    def start(**kwargs) -> TimeServer:
        server = TimeServer(**kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def dual_stack_servers(time_server, v4: dict, v6: dict):
    """Two servers on the same port, one on 127.0.0.1 and one on ::1, as one
    name's two addresses would be."""
    for _ in range(20):
        first = time_server(host="127.0.0.1", **v4)
        try:
            second = time_server(host="::1", port=first.port, **v6)
        except OSError:  # that port is taken on ::1: try another
            continue
        return first, second
    raise RuntimeError("no port free on both 127.0.0.1 and ::1")


# --------------------------------------------------------------------------
# Raw TCP servers: hang, garbage, trickle
# --------------------------------------------------------------------------


class RawServer:
    """Accepts TCP connections on loopback and hands each to behave(conn)."""

    def __init__(
        self, behave: Callable[[socket.socket], None], host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.sock = socket.create_server((host, port))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://{host}:{self.port}/now"
        self.behave = behave
        self.connections: list[socket.socket] = []
        self.stopped = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        with contextlib.suppress(OSError):
            self.behave(conn)

    def close(self) -> None:
        self.stopped.set()
        self.sock.close()
        for conn in self.connections:
            conn.close()


@pytest.fixture
def raw_server():
    servers: list[RawServer] = []

    def start(behave: Callable[[socket.socket], None], **kwargs) -> RawServer:
        server = RawServer(behave, **kwargs)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


# --------------------------------------------------------------------------
# SNTP responders
# --------------------------------------------------------------------------


@pytest.fixture
def sntp_responder():
    responders: list[SntpResponder] = []

    def start(**kwargs) -> SntpResponder:
        responder = SntpResponder(**kwargs)
        responders.append(responder)
        return responder

    yield start
    for responder in responders:
        responder.close()


# --------------------------------------------------------------------------
# Running the check
# --------------------------------------------------------------------------


class CheckRun:
    def __init__(self, proc: subprocess.CompletedProcess, elapsed: float) -> None:
        self.returncode = proc.returncode
        self.stdout, self.stderr = proc.stdout, proc.stderr
        self.elapsed = elapsed
        assert "Traceback" not in self.stdout + self.stderr, self.stdout + self.stderr

    @property
    def line(self) -> str:
        lines = self.stdout.splitlines()
        assert len(lines) == 1, self.stdout
        return lines[0]

    @property
    def json(self) -> dict:
        return json.loads(self.line)

    def __repr__(self) -> str:
        return f"<exit {self.returncode}: {self.stdout!r} {self.stderr!r}>"


CHECK_ENV = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}


def run_check(
    *args: str, timeout: float = 30, command: list[str] | None = None, prefix: tuple[str, ...] = ()
) -> CheckRun:
    """Run the check (or command) as cron would, and capture what it says.
    prefix: what runs it, e.g. ("ip", "netns", "exec", NAME)."""
    argv = list(prefix) + (command or CHECK_COMMAND) + [str(arg) for arg in args]
    started = time.monotonic()
    proc = subprocess.run(
        argv, capture_output=True, text=True, timeout=timeout, env=CHECK_ENV, cwd=PROJECT
    )
    return CheckRun(proc, time.monotonic() - started)


def start_check(*args: str) -> subprocess.Popen:
    """The check as a process that runs on (--interval) until stopped."""
    return subprocess.Popen(
        CHECK_COMMAND + [str(arg) for arg in args],
        cwd=PROJECT,
        env=CHECK_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
