"""The real nowd release binary on a free loopback port, and Debian's Chromium
driven by Playwright (no browser download), for the tests of the page on GET /."""

import os
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("NOWD_BINARY", ROOT / "target/x86_64-unknown-linux-musl/release/nowd"))
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("NOWD_TEST_ARTIFACTS", ROOT / "target/test-artifacts"))

# Figures the tests measured, printed once at the end.
FIGURES: list[str] = []


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def nowd_url():
    """nowd as the unit would run it, but on loopback; its time reference is a
    loopback port nobody answers on, so nothing leaves the machine."""
    port = free_port()
    proc = subprocess.Popen(
        [
            str(BINARY),
            "--listen",
            f"127.0.0.1:{port}",
            "--time-reference",
            f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}",
            "--log-level",
            "warn",
        ],
        stdin=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 5
    while True:
        try:
            with urllib.request.urlopen(url + "/now", timeout=1) as r:
                if r.status == 200:
                    break
        except OSError:
            if time.monotonic() > deadline or proc.poll() is not None:
                proc.kill()
                raise
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
