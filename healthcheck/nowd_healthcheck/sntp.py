"""The local clock against an NTP server (SNTP, RFC 4330), politely.

One query per run, to one address of the server: a check run from cron every
few minutes is then one packet per run, as the NTP pool asks of its clients
(https://www.ntppool.org/en/vendors.html). The transmit timestamp is random
(the server only echoes it back; draft-ietf-ntp-data-minimization): it tells
nothing about the local clock and lets no one off the path forge an answer.
A kiss-o'-death answer is honoured: it is a WARNING, the local clock is
trusted, and that server is not asked again while the process runs (RFC 4330
section 8).
"""

from __future__ import annotations

import secrets
import socket
import struct
import time
from dataclasses import dataclass

from . import NS_PER_S, CheckError, UsageError
from .sampling import Deadline, describe_error, now_ns, route_problem

NTP_PORT = 123
NTP_PACKET = struct.Struct("!BBbbII4sQQQQ")  # the 48-byte header, no extensions
NTP_VERSION = 4
NTP_MODE_CLIENT, NTP_MODE_SERVER = 3, 4
NTP_LEAP_ALARM = 3  # leap indicator 3: the server's clock is not synchronised
NTP_MAX_STRATUM = 15
NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
NTP_ERA_S = 1 << 32
# With --interval, an NTP server is asked at most once per NTP's shortest poll
# interval (64 s); meanwhile the last answer is reused, its uncertainty grown
# by the frequency tolerance NTP assumes for any clock (PHI = 15 ppm, RFC 5905).
NTP_MIN_POLL_S = 64.0
NTP_PHI = 15e-6


@dataclass
class LocalClock:
    """How far the local clock is from the reference: reference - local."""

    source: str  # "trusted" or "ntp"
    offset_s: float = 0.0
    uncertainty_s: float = 0.0
    server: str | None = None
    error: str | None = None  # why the NTP server could not be used
    measured_at: float = 0.0  # time.monotonic() of the measurement
    kiss: str | None = None  # the kiss code, once the server sent one
    queries: int = 0  # packets sent for this measurement


class KissOfDeath(CheckError):  # noqa: N818 - RFC 4330's name for the answer
    def __init__(self, code: str) -> None:
        super().__init__(f"kiss-o'-death {code!r}")
        self.code = code


def parse_ntp_server(spec: str) -> tuple[str, int]:
    """HOST, HOST:PORT, IPv6, or [IPv6]:PORT."""
    host, port = spec, NTP_PORT
    if spec.startswith("["):
        host, sep, rest = spec[1:].partition("]")
        if not sep or (rest and not rest.startswith(":")):
            raise UsageError(f"bad --ntp-server {spec!r}")
        if rest:
            port = _parse_port(rest[1:], spec)
    elif spec.count(":") == 1:
        host, port_text = spec.split(":")
        port = _parse_port(port_text, spec)
    if not host:
        raise UsageError(f"bad --ntp-server {spec!r}")
    return host, port


def _parse_port(text: str, spec: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise UsageError(f"bad port in --ntp-server {spec!r}")
    return int(text)


def to_ntp(ns: int) -> int:
    """ns since 1970 as a 64-bit NTP timestamp (32.32 fixed point since 1900)."""
    seconds, rest = divmod(ns, NS_PER_S)
    return (((seconds + NTP_EPOCH_OFFSET_S) % NTP_ERA_S) << 32) | (rest << 32) // NS_PER_S


def from_ntp(stamp: int) -> int:
    """A 64-bit NTP timestamp as ns since 1970 (RFC 4330 section 3: era 0 or 1)."""
    seconds, fraction = stamp >> 32, stamp & 0xFFFFFFFF
    if not seconds & 0x80000000:  # MSB clear: 2036-02-07 or later, era 1
        seconds += NTP_ERA_S
    return (seconds - NTP_EPOCH_OFFSET_S) * NS_PER_S + (fraction * NS_PER_S >> 32)


def _ntp_short(value: int) -> float:
    """A 32-bit NTP short format (16.16) in seconds."""
    return value / 65536.0


def sntp_query(sock: socket.socket, deadline: Deadline) -> tuple[float, float]:
    """One SNTP exchange: (local clock offset, its uncertainty) in seconds."""
    cookie = secrets.randbits(64)  # the server echoes it as "originate"
    request = NTP_PACKET.pack(
        (NTP_VERSION << 3) | NTP_MODE_CLIENT, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, cookie
    )
    t1_ns, p1 = now_ns()
    sock.send(request)
    while True:
        left = deadline.remaining()
        if left <= 0:
            raise socket.timeout("timed out")
        sock.settimeout(left)
        data = sock.recv(512)
        _, p4 = now_ns()
        if len(data) < NTP_PACKET.size:
            continue
        fields = NTP_PACKET.unpack_from(data)
        if fields[8] == cookie:
            break  # anything else is a stray, stale or forged datagram: keep waiting
    (
        li_vn_mode,
        stratum,
        _poll,
        _precision,
        root_delay,
        root_dispersion,
        ref_id,
        _reference,
        _originate,
        receive,
        transmit,
    ) = fields
    leap, mode = li_vn_mode >> 6, li_vn_mode & 0x7
    if mode != NTP_MODE_SERVER:
        raise CheckError(f"not a server answer (mode {mode})")
    if stratum == 0:
        raise KissOfDeath(ref_id.decode("ascii", errors="replace").strip("\0"))
    if stratum > NTP_MAX_STRATUM or leap == NTP_LEAP_ALARM:
        raise CheckError("server not synchronised")
    if not transmit or not receive:
        raise CheckError("answer without timestamps")
    t4_ns = t1_ns + (p4 - p1)
    t2_ns, t3_ns = from_ntp(receive), from_ntp(transmit)
    offset_s = ((t2_ns - t1_ns) + (t3_ns - t4_ns)) / (2 * NS_PER_S)
    delay_s = max(0, (t4_ns - t1_ns) - (t3_ns - t2_ns)) / NS_PER_S
    # Half the round trip, plus how far the server itself may be from UTC
    # (its root distance: half the root delay plus the root dispersion).
    root_distance_s = _ntp_short(root_delay) / 2 + _ntp_short(root_dispersion)
    return offset_s, delay_s / 2 + root_distance_s


def measure_local_clock(spec: str, deadline: Deadline, timeout_s: float) -> LocalClock:
    """The local clock's offset from one query to the server's first usable address."""
    host, port = parse_ntp_server(spec)
    clock = LocalClock("ntp", server=spec, measured_at=time.monotonic())
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except OSError as error:
        clock.error = f"cannot resolve {host}: {describe_error(error, timeout_s)}"
        return clock
    usable = [info for info in infos if route_problem(info[4][0], port) is None]
    if not usable:
        clock.error = f"no usable address for {host}"
        return clock
    family, kind, proto, _canonname, sockaddr = usable[0]
    try:
        with socket.socket(family, kind, proto) as sock:
            sock.connect(sockaddr)  # so that a refusal (ICMP) is reported
            clock.queries += 1
            clock.offset_s, clock.uncertainty_s = sntp_query(sock, deadline)
    except KissOfDeath as kiss:
        clock.error, clock.kiss = str(kiss), kiss.code
    except CheckError as error:
        clock.error = str(error)
    except Exception as error:  # noqa: BLE001
        clock.error = describe_error(error, timeout_s)
    return clock


def refresh_clock(
    spec: str | None, previous: LocalClock | None, deadline: Deadline, timeout_s: float
) -> LocalClock:
    """The local clock's offset: trusted, freshly measured, or reused and aged."""
    if spec is None:
        return LocalClock("trusted")
    if previous is not None and previous.kiss is not None:  # never asked again
        return LocalClock(
            "ntp",
            server=spec,
            kiss=previous.kiss,
            error=f"kiss-o'-death {previous.kiss!r} earlier: not asked again",
        )
    if previous is not None and previous.source == "ntp":
        age_s = time.monotonic() - previous.measured_at
        if age_s < NTP_MIN_POLL_S:  # a failure too is not retried sooner
            return LocalClock(
                "ntp",
                previous.offset_s,
                previous.uncertainty_s + NTP_PHI * age_s,
                previous.server,
                previous.error,
                previous.measured_at,
            )
    return measure_local_clock(spec, deadline, timeout_s)
