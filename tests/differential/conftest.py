"""The real nowd binary on a free loopback port, and the run's counts printed at the end."""

import os
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BINARY = Path(os.environ.get("NOWD_BINARY", ROOT / "target/x86_64-unknown-linux-musl/release/nowd"))

# The counts of the last run, filled in by the test, printed by pytest_terminal_summary.
SUMMARY: list[str] = []


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Nowd:
    """A running nowd: its address, its process, and what it wrote to stderr."""

    def __init__(self) -> None:
        self.addr = ("127.0.0.1", free_port())
        # Open for nowd's life; closed in stop().
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        # Nothing leaves loopback: the time reference is a UDP port nobody answers on.
        reference = f"127.0.0.1:{free_port(socket.SOCK_DGRAM)}"
        self.process = subprocess.Popen(
            [BINARY, "--listen", f"{self.addr[0]}:{self.addr[1]}", "--log-level", "warn"]
            + ["--time-reference", reference],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.stderr,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(self.addr, timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"nowd did not listen on {self.addr}") from None
                time.sleep(0.02)

    def log(self) -> str:
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.stderr.close()


@pytest.fixture(scope="session")
def nowd():
    if not BINARY.is_file():
        pytest.fail(f"no nowd binary at {BINARY}: make build first")
    server = Nowd()
    yield server
    server.stop()


def pytest_terminal_summary(terminalreporter):
    if SUMMARY:
        terminalreporter.section("differential: nowd against h11")
        for line in SUMMARY:
            terminalreporter.write_line(line)
