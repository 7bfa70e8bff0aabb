"""The real nowd release binary on a free loopback port, and Debian's Chromium (or the
browser NOWD_CHROMIUM names) driven by Playwright (no browser download), for the tests of
the page on GET /."""

import json
import os
import socket
import struct
import subprocess
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("NOWD_BINARY", ROOT / "target/x86_64-unknown-linux-musl/release/nowd"))
# Debian's package by default; GitHub's Ubuntu runners set their Google Chrome (ci.yml),
# as Ubuntu's chromium package is only a stub for the snap.
CHROMIUM = os.environ.get("NOWD_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(os.environ.get("NOWD_TEST_ARTIFACTS", ROOT / "target/test-artifacts"))

# Figures the tests measured, printed once at the end.
FIGURES: list[str] = []


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


NTP_PACKET = struct.Struct("!BBbbII4sQQQQ")
NTP_UNIX_OFFSET = 2_208_988_800


def to_ntp(t: float) -> int:
    return int((t + NTP_UNIX_OFFSET) * 2**32)


def answer_sntp(sock: socket.socket) -> None:
    """A stratum 1 server on this machine's clock (RFC 4330), enough for nowd
    to measure its own error bound, so the page shows one."""
    while True:
        try:
            data, peer = sock.recvfrom(512)
        except OSError:
            return
        received = time.time()
        if len(data) < NTP_PACKET.size:
            continue
        origin = NTP_PACKET.unpack_from(data)[10]
        reply = NTP_PACKET.pack(
            (4 << 3) | 4, 1, 6, -20, 0x10, 0x20,  # root delay 0.2 ms, dispersion 0.5 ms
            b"LOCL", to_ntp(received), origin, to_ntp(received), to_ntp(time.time()),
        )  # fmt: skip
        sock.sendto(reply, peer)


@pytest.fixture(scope="session")
def time_reference():
    """A loopback SNTP server for nowd: nothing leaves the machine."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        threading.Thread(target=answer_sntp, args=(sock,), daemon=True).start()
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(scope="session")
def nowd_url(time_reference):
    """nowd as the unit would run it, but on loopback, with its time reference
    on loopback too."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BINARY),
            "--listen",
            f"127.0.0.1:{port}",
            "--time-reference",
            time_reference,
            "--log-level",
            "warn",
        ],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    # Up and answering, with a measured error bound (its first query is sent
    # at once, its answer read on the next turn of the loop).
    deadline = time.monotonic() + 5
    while True:
        try:
            request = urllib.request.Request(url + "/now", headers={"Accept": "application/json"})
            with urllib.request.urlopen(request, timeout=1) as r:
                if "error_bound_us" in json.load(r)["reference"]:
                    break
        except OSError:
            if proc.poll() is not None:
                raise
        if time.monotonic() > deadline:
            proc.kill()
            raise TimeoutError("nowd did not measure its clock against the reference in 5 s")
        time.sleep(0.02)
    yield url
    proc.terminate()
    proc.wait(timeout=5)


@pytest.fixture(scope="session")
def browser() -> Browser:
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-background-networking"],
        )
        yield b
        b.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("page figures")
        for line in FIGURES:
            terminalreporter.write_line(line)
