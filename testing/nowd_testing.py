"""Helpers the Python tests and benchmarks share (healthcheck/tests, bench/).

Standard library only. Each stands once here: a free loopback port, the NTP
era's offset from the Unix epoch, an SNTP server with a known offset, and
running code inside a network namespace. healthcheck/tests finds this module
through pytest's pythonpath (healthcheck/pyproject.toml); bench/ scripts put
this folder on sys.path.
"""

from __future__ import annotations

import ctypes
import datetime
import os
import socket
import struct
import threading
import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

# 1900-01-01 to 1970-01-01, worked out rather than copied: the code under test
# has its own constant, and a test compares the two.
NTP_EPOCH_OFFSET_S = int(
    (datetime.datetime(1970, 1, 1) - datetime.datetime(1900, 1, 1)).total_seconds()
)
NTP_PACKET = struct.Struct("!BBbbII4sQQQQ")
CLONE_NEWNET = 0x40000000


def free_port(host: str = "127.0.0.1") -> int:
    """A free TCP port: bind port 0, note it, let it go."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def to_ntp(t: float) -> int:
    """Unix time in seconds as a 64-bit NTP timestamp (era 0, wrapping)."""
    seconds = int(t)
    return ((seconds + NTP_EPOCH_OFFSET_S) % (1 << 32)) << 32 | int((t - seconds) * (1 << 32))


class SntpResponder:
    """An SNTP server on a loopback ephemeral UDP port, its clock off by offset.

    mode: "ok", "silent" (never answers), "bad-origin" (answers, but not to
    the request sent), "unsynchronised" (leap indicator 3), "kiss" (stratum 0).
    """

    def __init__(self, offset: float = 0.0, mode: str = "ok", host: str = "127.0.0.1") -> None:
        self.offset, self.mode = offset, mode
        self.sock = socket.socket(
            socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM
        )
        self.sock.bind((host, 0))
        self.port = self.sock.getsockname()[1]
        self.spec = f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
        self.queries = 0
        self.transmits: list[int] = []  # the transmit timestamp of each request
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                data, peer = self.sock.recvfrom(512)
            except OSError:
                return
            received = time.time() + self.offset
            self.queries += 1
            if self.mode == "silent" or len(data) < NTP_PACKET.size:
                continue
            request = NTP_PACKET.unpack_from(data)
            self.transmits.append(request[10])
            leap, stratum, ref_id = 0, 2, b"TEST"
            origin = request[10]  # the client's transmit timestamp, echoed
            if self.mode == "bad-origin":
                origin ^= 1 << 40
            elif self.mode == "unsynchronised":
                leap = 3
            elif self.mode == "kiss":
                stratum, ref_id = 0, b"RATE"
            reply = NTP_PACKET.pack(
                (leap << 6) | (4 << 3) | 4,
                stratum,
                6,
                -20,
                0x0000_0010,
                0x0000_0020,  # root delay and dispersion: 0.2 ms, 0.5 ms
                ref_id,
                to_ntp(received - 10),
                origin,
                to_ntp(received),
                to_ntp(time.time() + self.offset),
            )
            try:
                self.sock.sendto(reply, peer)
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()


_libc = ctypes.CDLL(None, use_errno=True)


def in_netns(name: str, work: Callable[[], T]) -> T:
    """work() in a thread that has entered the network namespace NAME (root):
    the sockets it makes (a listening one, say) stay in that namespace,
    whichever thread uses them later."""
    outcome: dict = {}

    def runner() -> None:
        try:
            with open(f"/run/netns/{name}") as handle:
                if _libc.setns(handle.fileno(), CLONE_NEWNET) != 0:
                    error = ctypes.get_errno()
                    raise OSError(error, f"setns {name}: {os.strerror(error)}")
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=runner)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
