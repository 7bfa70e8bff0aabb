#!/usr/bin/env python3
"""Check that a nowd service is up and that its clock is right.

    python3 healthcheck.py http://HOST/now [--ntp-server HOST] [--json] ...

Method
------
The check measures the server's clock the way NTP does, over HTTP.

For each sample it reads the local clock just before it sends ``GET /now``
(t_send) and again once the whole answer is in (t_recv). The server read its
clock somewhere between the two, so the best estimate of its offset is

    offset      = server_time - (t_send + t_recv) / 2
    uncertainty = rtt / 2 + resolution          (rtt = t_recv - t_send)

where ``resolution`` is the step of the timestamp the server sent: 1 us for
nowd's ``2026-11-21T22:49:22.123456Z``, 1 s for whole seconds or for the HTTP
``Date`` header (used when the body holds no timestamp). The true offset lies
within ``offset +- uncertainty`` whatever the path's asymmetry; a slow server
or network makes the interval wide, not the estimate wrong. Of several samples
the one with the smallest round trip is kept, as NTP's clock filter does: it is
the one least disturbed by queueing. The TCP connection is opened before
t_send, so the handshake does not count towards the round trip.

The offset is judged with its uncertainty, not without it:

* CRITICAL when it is certainly beyond ``--critical``: |offset| - u > critical;
* WARNING when it is certainly beyond ``--warning``, or when the interval
  straddles a threshold, so that nobody can tell (a whole-second timestamp
  cannot show a 0.5 s error, and a 2 s round trip cannot show a 1 s one);
* OK only when it is certainly within ``--warning``: |offset| + u <= warning.

The local clock is the yardstick. With ``--ntp-server`` the check first asks
that server for the local clock's own offset (SNTP, RFC 4330: same formula,
four timestamps) and subtracts it, adding the two uncertainties; without it the
local clock is trusted, and the output says so.

A load balancer's name resolves to one address per zone, each a different
path to different instances, so every address is checked (with the name in
the Host header) and the worst result is reported. When the server says it is
nowd (``Server: nowd``) its ``/healthz`` is read too: a 503 there means nowd
itself doubts its clock (the kernel reports it unsynchronised), a WARNING.

Output follows the monitoring-plugins convention: one line, ``NOWD STATUS:
text | perfdata``; exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments).
Anything that stops the service from answering (refused, timeout, no DNS,
HTTP error, no timestamp) is CRITICAL. Standard library only, Python 3.9+.
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import http.client
import json
import math
import os
import random
import re
import signal
import socket
import ssl
import struct
import sys
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import List, Optional, Tuple

__version__ = "0.1.0"

PROG = "nowd-healthcheck"
LABEL = "NOWD"

# Exit codes and names of the monitoring-plugins convention.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

DEFAULT_WARNING_S = 0.5
DEFAULT_CRITICAL_S = 1.0
DEFAULT_SAMPLES = 5
DEFAULT_TIMEOUT_S = 2.0
DEFAULT_PATH = "/now"
HEALTHZ_PATH = "/healthz"
NOWD_SERVER_TOKEN = "nowd"
USER_AGENT = f"{PROG}/{__version__}"

MAX_BODY_BYTES = 64 * 1024  # /now and /healthz answer a line; never read more.
MAX_REASON_CHARS = 200  # of a /healthz body quoted in the output
NS_PER_S = 1_000_000_000
DATE_HEADER_RESOLUTION_NS = NS_PER_S  # RFC 9110 IMF-fixdate has whole seconds

# RFC 3339 date-time, with or without a fraction, with "Z" or a numeric offset.
RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)

# SNTP (RFC 4330).
NTP_PORT = 123
NTP_PACKET = struct.Struct("!BBbbII4sQQQQ")  # the 48-byte header, no extensions
NTP_VERSION = 4
NTP_MODE_CLIENT, NTP_MODE_SERVER = 3, 4
NTP_LEAP_ALARM = 3  # leap indicator 3: the server's clock is not synchronised
NTP_MAX_STRATUM = 15
NTP_EPOCH_OFFSET_S = 2_208_988_800  # 1900-01-01 to 1970-01-01
NTP_ERA_S = 1 << 32
NTP_SAMPLES = 3  # queries per measurement; the one with the least delay is kept
# An NTP server is asked at most once per NTP's shortest poll interval (64 s);
# meanwhile the last answer is reused, its uncertainty grown by the frequency
# tolerance NTP assumes for any clock (PHI = 15 ppm, RFC 5905).
NTP_MIN_POLL_S = 64.0
NTP_PHI = 15e-6


class UsageError(Exception):
    """A bad command line: reported as UNKNOWN (exit 3)."""


class CheckError(Exception):
    """The service did not give a usable answer: reported as CRITICAL."""


# --------------------------------------------------------------------------
# Measuring
# --------------------------------------------------------------------------


@dataclass
class Sample:
    """One request: local send/receive times and the server's time, in ns."""

    t_send_ns: int
    t_recv_ns: int
    server_ns: int
    resolution_ns: int
    source: str  # "body" or "Date header"

    @property
    def rtt_s(self) -> float:
        return (self.t_recv_ns - self.t_send_ns) / NS_PER_S

    @property
    def offset_s(self) -> float:
        # Integer arithmetic first: a float of ns since 1970 has 0.2 us steps.
        return (2 * self.server_ns - self.t_send_ns - self.t_recv_ns) / (2 * NS_PER_S)

    @property
    def uncertainty_s(self) -> float:
        return self.rtt_s / 2 + self.resolution_ns / NS_PER_S


@dataclass
class LocalClock:
    """How far the local clock is from the reference: reference - local."""

    source: str  # "trusted" or "ntp"
    offset_s: float = 0.0
    uncertainty_s: float = 0.0
    server: Optional[str] = None
    error: Optional[str] = None  # why the NTP server could not be used
    measured_at: float = 0.0  # time.monotonic() of the measurement


@dataclass
class AddressResult:
    """What one address of the service answered."""

    address: str
    samples: List[Sample] = field(default_factory=list)
    server: Optional[str] = None  # the Server header
    healthz_status: Optional[int] = None
    healthz_reason: Optional[str] = None
    error: Optional[str] = None  # set when the address gave no usable answer

    @property
    def best(self) -> Optional[Sample]:
        """The sample with the smallest round trip, as NTP's clock filter keeps."""
        return min(self.samples, key=lambda s: s.rtt_s) if self.samples else None


def now_ns() -> Tuple[int, int]:
    """The wall clock (to compare with the server) and a monotonic clock (to time)."""
    return time.time_ns(), time.perf_counter_ns()


def parse_rfc3339(text: str) -> Optional[Tuple[int, int]]:
    """The first RFC 3339 timestamp in text as (ns since 1970, resolution in ns)."""
    match = RFC3339_RE.search(text)
    if not match:
        return None
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7), match.group(8)
    leap = second == 60  # RFC 3339 allows a leap second; datetime does not
    try:
        if zone in ("Z", "z"):
            tz = datetime.timezone.utc
        else:
            sign = -1 if zone[0] == "-" else 1
            tz = datetime.timezone(
                sign * datetime.timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
            )
        stamp = datetime.datetime(
            year, month, day, hour, minute, 59 if leap else second, tzinfo=tz
        )
    except ValueError:
        return None
    delta = stamp - datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)
    whole_s = delta.days * 86400 + delta.seconds + (1 if leap else 0)
    if fraction:
        digits = fraction[:9]
        frac_ns = int(digits.ljust(9, "0"))
        resolution_ns = 10 ** (9 - len(digits))
    else:
        frac_ns, resolution_ns = 0, NS_PER_S
    return whole_s * NS_PER_S + frac_ns, resolution_ns


def parse_http_date(value: str) -> Optional[int]:
    """An HTTP Date header as ns since 1970, or None."""
    try:
        stamp = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if stamp is None:
        return None
    if stamp.tzinfo is None:  # "-0000" and obsolete forms: HTTP dates are GMT
        stamp = stamp.replace(tzinfo=datetime.timezone.utc)
    return int(stamp.timestamp()) * NS_PER_S


def server_header_is_nowd(value: Optional[str]) -> bool:
    """True for "Server: nowd" and "Server: nowd/1.2.3"."""
    if not value:
        return False
    product = value.split()[0].split("/")[0]
    return product.lower() == NOWD_SERVER_TOKEN


@dataclass
class Target:
    """The checked URL, split into what each request needs."""

    url: str
    scheme: str
    host: str  # as in the URL, without brackets: the Host header and TLS name
    port: int
    path: str


def parse_target(url: str) -> Target:
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise UsageError(f"URL must start with http:// or https://, not {url!r}")
    try:
        port = parts.port
    except ValueError as error:
        raise UsageError(f"bad port in URL {url!r}: {error}") from None
    if not parts.hostname:
        raise UsageError(f"no host in URL {url!r}")
    path = parts.path or DEFAULT_PATH
    if parts.query:
        path += "?" + parts.query
    default_port = 443 if parts.scheme == "https" else 80
    return Target(url, parts.scheme, parts.hostname, port or default_port, path)


def resolve(target: Target, family: int) -> List[str]:
    """Every address the host name resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(target.host, target.port, family, socket.SOCK_STREAM)
    addresses: List[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        address = sockaddr[0]
        if address not in addresses:
            addresses.append(address)
    return addresses


class _Deadline:
    """Shuts a socket down when a request runs past its time.

    A socket timeout bounds each read, not the whole answer: a server that
    trickles a byte a second would never time out. This bounds the whole.
    """

    def __init__(self, seconds: float) -> None:
        self.expired = False
        self._sock: Optional[socket.socket] = None
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True

    def start(self, sock: socket.socket) -> None:
        self._sock = sock
        self._timer.start()

    def _expire(self) -> None:
        self.expired = True
        try:
            if self._sock is not None:
                self._sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def cancel(self) -> None:
        self._timer.cancel()


class _Connection:
    """A keep-alive HTTP(S) connection to one address, with the URL's Host."""

    def __init__(self, target: Target, address: str, timeout: float) -> None:
        self.timeout = timeout
        if target.scheme == "https":
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                target.host, target.port, timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            self.conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)
        # Connect to this address, but keep the name for Host and TLS (SNI and
        # certificate check), as a browser does after its own DNS look-up.
        def create_connection(_host_port, timeout=None, source_address=None):
            return socket.create_connection((address, target.port), timeout, source_address)

        self.conn._create_connection = create_connection  # type: ignore[attr-defined]

    def get(self, path: str) -> Tuple[int, int, http.client.HTTPResponse, bytes]:
        """GET path; returns (t_send_ns, t_recv_ns, response, body)."""
        started = time.monotonic()
        if self.conn.sock is None:
            self.conn.connect()  # the TCP (and TLS) handshake: not in the round trip
        remaining = self.timeout - (time.monotonic() - started)  # but in the timeout
        if remaining <= 0:
            self.close()
            raise socket.timeout("timed out")
        deadline = _Deadline(remaining)
        deadline.start(self.conn.sock)
        try:
            t_send_ns, p_send = now_ns()
            self.conn.request(
                "GET", path,
                headers={"User-Agent": USER_AGENT, "Accept": "text/plain, */*",
                         "Cache-Control": "no-cache"},
            )
            response = self.conn.getresponse()
            body = read_body(response)
            _, p_recv = now_ns()
            if deadline.expired:  # what came in was cut short by the deadline
                raise socket.timeout("timed out")
        except (OSError, http.client.HTTPException):
            self.close()
            if deadline.expired:
                raise socket.timeout("timed out") from None
            raise
        finally:
            deadline.cancel()
        if not response.isclosed():  # a longer body than any nowd sends
            self.close()
        # One wall-clock reading; the interval on the monotonic clock, so a
        # step of the local clock during the request cannot distort it.
        return t_send_ns, t_send_ns + (p_recv - p_send), response, body

    def close(self) -> None:
        self.conn.close()


def read_body(response: http.client.HTTPResponse) -> bytes:
    """The body, at most MAX_BODY_BYTES; IncompleteRead if it is cut short."""
    if response.length is not None and response.length <= MAX_BODY_BYTES:
        return response.read()  # read() without a size checks Content-Length
    body = b""
    while len(body) < MAX_BODY_BYTES:  # chunked, until close, or too long
        chunk = response.read(MAX_BODY_BYTES - len(body))
        if not chunk:
            break
        body += chunk
    return body


def describe_error(error: BaseException, timeout: float) -> str:
    """A short, traceback-free reason for a failed request."""
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout:g}s"
    if isinstance(error, ConnectionRefusedError):
        return "connection refused"
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"TLS error: {error.verify_message or error.reason}"
    if isinstance(error, ssl.SSLError):
        return f"TLS error: {error.reason or error}"
    if isinstance(error, http.client.RemoteDisconnected):
        return "connection closed without an answer"
    if isinstance(error, http.client.HTTPException):
        return f"bad HTTP answer: {type(error).__name__} {error}".strip()
    if isinstance(error, OSError):
        return error.strerror or str(error) or type(error).__name__
    return f"{type(error).__name__}: {error}"


def take_sample(
    conn: _Connection, target: Target, result: AddressResult
) -> Sample:
    t_send_ns, t_recv_ns, response, body = conn.get(target.path)
    result.server = response.getheader("Server")
    if response.status != 200:
        raise CheckError(f"HTTP {response.status} {response.reason}".strip())
    text = body.decode("utf-8", errors="replace")
    parsed = parse_rfc3339(text)
    if parsed is not None:
        return Sample(t_send_ns, t_recv_ns, parsed[0], parsed[1], "body")
    if server_header_is_nowd(result.server):
        raise CheckError("no RFC 3339 timestamp in the answer")  # nowd must send one
    date = parse_http_date(response.getheader("Date") or "")
    if date is None:
        raise CheckError("no timestamp in the answer (no RFC 3339 time, no Date header)")
    return Sample(t_send_ns, t_recv_ns, date, DATE_HEADER_RESOLUTION_NS, "Date header")


def read_healthz(conn: _Connection, result: AddressResult) -> None:
    _, _, response, body = conn.get(HEALTHZ_PATH)
    result.healthz_status = response.status
    text = body.decode("utf-8", errors="replace").strip()
    line = text.splitlines()[0] if text else ""
    result.healthz_reason = line[:MAX_REASON_CHARS]


def measure_address(
    target: Target, address: str, samples: int, timeout: float
) -> AddressResult:
    """Take the samples from one address, then read /healthz if it is nowd."""
    result = AddressResult(address)
    conn = _Connection(target, address, timeout)
    stage = ""
    try:
        for _ in range(samples):
            result.samples.append(take_sample(conn, target, result))
        if server_header_is_nowd(result.server):
            stage = "healthz: "
            read_healthz(conn, result)
    except CheckError as error:
        result.error = stage + str(error)
    except Exception as error:  # noqa: BLE001 - any failure is this address's verdict
        result.error = stage + describe_error(error, timeout)
    finally:
        conn.close()
    return result


# SNTP (RFC 4330) ------------------------------------------------------------


def parse_ntp_server(spec: str) -> Tuple[str, int]:
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


def _to_ntp(ns: int) -> int:
    """ns since 1970 as a 64-bit NTP timestamp (32.32 fixed point since 1900)."""
    seconds, rest = divmod(ns, NS_PER_S)
    return (((seconds + NTP_EPOCH_OFFSET_S) % NTP_ERA_S) << 32) | (rest << 32) // NS_PER_S


def _from_ntp(stamp: int) -> int:
    """A 64-bit NTP timestamp as ns since 1970 (RFC 4330 section 3: era 0 or 1)."""
    seconds, fraction = stamp >> 32, stamp & 0xFFFFFFFF
    if not seconds & 0x80000000:  # MSB clear: 2036-02-07 or later, era 1
        seconds += NTP_ERA_S
    return (seconds - NTP_EPOCH_OFFSET_S) * NS_PER_S + (fraction * NS_PER_S >> 32)


def _ntp_short(value: int) -> float:
    """A 32-bit NTP short format (16.16) in seconds."""
    return value / 65536.0


def sntp_query(sock: socket.socket) -> Tuple[float, float]:
    """One SNTP exchange: (local clock offset, its uncertainty) in seconds."""
    # The transmit timestamp is the client's, with random low bits: the server
    # must echo it as "originate", which rejects stale or forged answers.
    t1_ns, p1 = now_ns()
    cookie = _to_ntp(t1_ns) ^ random.getrandbits(16)
    request = NTP_PACKET.pack(
        (NTP_VERSION << 3) | NTP_MODE_CLIENT, 0, 0, 0, 0, 0, b"\0" * 4, 0, 0, 0, cookie
    )
    sock.send(request)
    while True:
        data = sock.recv(512)
        _, p4 = now_ns()
        if len(data) < NTP_PACKET.size:
            continue
        fields = NTP_PACKET.unpack_from(data)
        if fields[8] == cookie:
            break  # anything else is a stray or stale datagram: keep waiting
    (li_vn_mode, stratum, _poll, _precision, root_delay, root_dispersion,
     ref_id, _reference, _originate, receive, transmit) = fields
    leap, mode = li_vn_mode >> 6, li_vn_mode & 0x7
    if mode != NTP_MODE_SERVER:
        raise CheckError(f"not a server answer (mode {mode})")
    if stratum == 0:
        kiss = ref_id.decode("ascii", errors="replace").strip("\0")
        raise CheckError(f"kiss-o'-death {kiss!r}")
    if stratum > NTP_MAX_STRATUM or leap == NTP_LEAP_ALARM:
        raise CheckError("server not synchronised")
    if not transmit or not receive:
        raise CheckError("answer without timestamps")
    t4_ns = t1_ns + (p4 - p1)
    t2_ns, t3_ns = _from_ntp(receive), _from_ntp(transmit)
    offset_s = ((t2_ns - t1_ns) + (t3_ns - t4_ns)) / (2 * NS_PER_S)
    delay_s = max(0, (t4_ns - t1_ns) - (t3_ns - t2_ns)) / NS_PER_S
    # Half the round trip, plus how far the server itself may be from UTC
    # (its root distance: half the root delay plus the root dispersion).
    root_distance_s = _ntp_short(root_delay) / 2 + _ntp_short(root_dispersion)
    return offset_s, delay_s / 2 + root_distance_s


def measure_local_clock(spec: str, timeout: float) -> LocalClock:
    """The local clock's offset from an NTP server, the best of a few queries."""
    host, port = parse_ntp_server(spec)
    clock = LocalClock("ntp", server=spec, measured_at=time.monotonic())
    best: Optional[Tuple[float, float]] = None
    errors: List[str] = []
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except OSError as error:
        clock.error = f"cannot resolve {host}: {describe_error(error, timeout)}"
        return clock
    for family, kind, proto, _canonname, sockaddr in infos:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(sockaddr)  # so that a refusal (ICMP) is reported
                for _ in range(NTP_SAMPLES):
                    offset_s, uncertainty_s = sntp_query(sock)
                    if best is None or uncertainty_s < best[1]:
                        best = offset_s, uncertainty_s
        except CheckError as error:
            errors.append(str(error))
        except Exception as error:  # noqa: BLE001
            errors.append(describe_error(error, timeout))
        if best is not None:
            break
    if best is None:
        clock.error = errors[-1] if errors else "no address"
    else:
        clock.offset_s, clock.uncertainty_s = best
    return clock


# --------------------------------------------------------------------------
# Judging
# --------------------------------------------------------------------------


@dataclass
class Options:
    target: Target
    warning_s: float
    critical_s: float
    samples: int
    timeout_s: float
    addresses: List[str]  # given with --address; empty: resolve the name
    family: int
    ntp_server: Optional[str]
    json: bool
    interval_s: Optional[float]


@dataclass
class AddressVerdict:
    result: AddressResult
    status: int
    reasons: List[str]
    offset_s: Optional[float] = None  # relative to the reference clock
    uncertainty_s: Optional[float] = None

    @property
    def label(self) -> str:
        return f"[{self.result.address}]" if ":" in self.result.address else self.result.address


@dataclass
class Report:
    status: int
    reasons: List[str]
    verdicts: List[AddressVerdict]
    clock: LocalClock
    worst: Optional[AddressVerdict]  # the worst address that gave an offset
    options: Options
    checked_at: float = field(default_factory=time.time)


def judge_offset(offset_s: float, uncertainty_s: float, warning_s: float,
                 critical_s: float) -> Tuple[int, Optional[str]]:
    """OK, WARNING or CRITICAL for offset +- uncertainty, and why if not OK."""
    least = max(0.0, abs(offset_s) - uncertainty_s)  # the offset is at least this
    most = abs(offset_s) + uncertainty_s  # and at most this
    if least > critical_s:
        return CRITICAL, f"offset beyond {critical_s:g}s"
    if least > warning_s:
        return WARNING, f"offset beyond {warning_s:g}s"
    if most > warning_s:
        return WARNING, f"offset too uncertain to tell whether within {warning_s:g}s"
    return OK, None


def format_offset(seconds: float) -> str:
    """+0.003s; never "-0.000s" for a tiny negative offset."""
    return f"{round(seconds, 3) + 0.0:+.3f}s"


def ceil_ms(seconds: float) -> float:
    """Rounded up to the ms, so an uncertainty is never shown smaller than it is."""
    return math.ceil(round(seconds * 1000, 6)) / 1000


def judge_address(result: AddressResult, clock: LocalClock, options: Options,
                  show_offset: bool) -> AddressVerdict:
    best = result.best
    if best is None:  # the address failed before it gave a time
        return AddressVerdict(result, CRITICAL, [result.error or "no answer"])
    # server - reference = (server - local) - (reference - local)
    offset_s = best.offset_s - clock.offset_s
    uncertainty_s = best.uncertainty_s + clock.uncertainty_s
    status, reason = judge_offset(offset_s, uncertainty_s, options.warning_s, options.critical_s)
    reasons = []
    if reason is not None:
        if show_offset:  # among several addresses, say which offset this is
            reason = reason.replace(
                "offset", f"offset {format_offset(offset_s)} ±{ceil_ms(uncertainty_s):.3f}s", 1)
        if best.source != "body":
            reason += " (whole seconds from the Date header)"
        reasons.append(reason)
    if result.healthz_status is not None and result.healthz_status != 200:
        status = max(status, WARNING)
        why = f": {result.healthz_reason}" if result.healthz_reason else ""
        reasons.append(f"healthz {result.healthz_status}{why}")
    if result.error is not None:  # it gave a time, then failed
        status = CRITICAL
        reasons.append(result.error)
    return AddressVerdict(result, status, reasons, offset_s, uncertainty_s)


def judge(results: List[AddressResult], clock: LocalClock, options: Options,
          resolve_error: Optional[str] = None) -> Report:
    """The verdict for each address, and the worst of them for the service."""
    verdicts = [judge_address(result, clock, options, len(results) > 1) for result in results]
    reasons: List[str] = []
    status = OK
    if resolve_error is not None:
        status = CRITICAL
        reasons.append(resolve_error)
    for verdict in verdicts:
        status = max(status, verdict.status)
        reasons.extend(f"{verdict.label}: {reason}" for reason in verdict.reasons)
    if clock.error is not None:
        status = max(status, WARNING)
        reasons.append(f"NTP {clock.server}: {clock.error}; local clock trusted")
    measured = [v for v in verdicts if v.offset_s is not None]
    worst = max(
        measured,
        key=lambda v: (v.status, abs(v.offset_s) - v.uncertainty_s, v.uncertainty_s),
        default=None,
    )
    return Report(status, reasons, verdicts, clock, worst, options)


# --------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------


def _perf_safe(text: str) -> str:
    """Output text cannot hold "|" (it starts performance data) or a newline."""
    return " ".join(text.replace("|", "/").split())


def describe_clock(clock: LocalClock) -> str:
    if clock.source == "trusted" or clock.error is not None:
        return "local clock trusted"
    # clock.offset_s is reference - local: positive means the local clock is slow.
    way = "slow" if clock.offset_s > 0 else "fast"
    return (f"local clock {abs(clock.offset_s):.3f}s {way} ±{ceil_ms(clock.uncertainty_s):.3f}s"
            f" per NTP {clock.server}")


def format_rtt(rtt_s: float) -> str:
    ms = rtt_s * 1000
    return f"{ms:.1f}ms" if ms < 10 else f"{ms:.0f}ms"


def format_line(report: Report) -> str:
    count = len(report.verdicts)
    where = f"{count} address" + ("" if count == 1 else "es")
    text = f"{LABEL} {STATUS_NAMES[report.status]}: "
    perfdata = ""
    worst = report.worst
    if worst is not None and worst.offset_s is not None and worst.uncertainty_s is not None:
        best = worst.result.best
        assert best is not None
        text += (f"offset {format_offset(worst.offset_s)} ±{ceil_ms(worst.uncertainty_s):.3f}s "
                 f"(rtt {format_rtt(best.rtt_s)}, {where}; {describe_clock(report.clock)})")
        options = report.options
        perfdata = (f"offset={worst.offset_s:.6f}s;{options.warning_s};{options.critical_s}"
                    f" uncertainty={worst.uncertainty_s:.6f}s rtt={best.rtt_s:.6f}s")
    else:
        text += f"no time measured ({where}; {describe_clock(report.clock)})"
    if report.reasons:
        text += " - " + "; ".join(report.reasons)
    text = _perf_safe(text)
    return f"{text} | {perfdata}" if perfdata else text


def _round(value: Optional[float], digits: int = 9) -> Optional[float]:
    return None if value is None else round(value, digits)


def format_json(report: Report) -> str:
    worst = report.worst
    best = worst.result.best if worst is not None else None
    clock = report.clock
    document = {
        "status": STATUS_NAMES[report.status],
        "exit_code": report.status,
        "url": report.options.target.url,
        "checked_at": datetime.datetime.fromtimestamp(
            report.checked_at, datetime.timezone.utc).isoformat().replace("+00:00", "Z"),
        "offset_s": _round(worst.offset_s) if worst else None,
        "uncertainty_s": _round(worst.uncertainty_s) if worst else None,
        "rtt_s": _round(best.rtt_s) if best else None,
        "warning_s": report.options.warning_s,
        "critical_s": report.options.critical_s,
        "reasons": report.reasons,
        "local_clock": {
            "source": "trusted" if clock.error is not None else clock.source,
            "ntp_server": clock.server,
            "offset_s": _round(clock.offset_s),
            "uncertainty_s": _round(clock.uncertainty_s),
            "error": clock.error,
        },
        "addresses": [],
    }
    for verdict in report.verdicts:
        result, sample = verdict.result, verdict.result.best
        document["addresses"].append({
            "address": result.address,
            "status": STATUS_NAMES[verdict.status],
            "offset_s": _round(verdict.offset_s),
            "uncertainty_s": _round(verdict.uncertainty_s),
            "rtt_s": _round(sample.rtt_s) if sample else None,
            "samples": len(result.samples),
            "time_source": sample.source if sample else None,
            "server": result.server,
            "healthz": None if result.healthz_status is None else {
                "status": result.healthz_status, "reason": result.healthz_reason},
            "error": result.error,
            "reasons": verdict.reasons,
        })
    return json.dumps(document, ensure_ascii=False)


# --------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------


def check(options: Options, clock: LocalClock) -> Report:
    """Measure every address of the service, then judge."""
    target = options.target
    addresses = options.addresses
    if not addresses:
        try:
            addresses = resolve(target, options.family)
        except OSError as error:
            reason = f"cannot resolve {target.host}: {describe_error(error, options.timeout_s)}"
            return judge([], clock, options, resolve_error=reason)
    results = [measure_address(target, address, options.samples, options.timeout_s)
               for address in addresses]
    return judge(results, clock, options)


def refresh_clock(options: Options, previous: Optional[LocalClock]) -> LocalClock:
    """The local clock's offset: trusted, freshly measured, or reused and aged."""
    if options.ntp_server is None:
        return LocalClock("trusted")
    if previous is not None and previous.error is None:
        age_s = time.monotonic() - previous.measured_at
        if age_s < NTP_MIN_POLL_S:
            return LocalClock("ntp", previous.offset_s,
                              previous.uncertainty_s + NTP_PHI * age_s,
                              previous.server, None, previous.measured_at)
    return measure_local_clock(options.ntp_server, options.timeout_s)


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit 2: CRITICAL
        raise UsageError(message)


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=PROG,
        description="Check that a nowd service is up and its clock is within limits. "
                    "Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments).",
    )
    parser.add_argument("url", help=f"the service's URL, e.g. http://HOST/now (path defaults to {DEFAULT_PATH})")
    parser.add_argument("-w", "--warning", type=positive_float, default=DEFAULT_WARNING_S,
                        metavar="SECONDS", help="WARNING beyond this offset (default %(default)s)")
    parser.add_argument("-c", "--critical", type=positive_float, default=DEFAULT_CRITICAL_S,
                        metavar="SECONDS", help="CRITICAL beyond this offset (default %(default)s)")
    parser.add_argument("-n", "--samples", type=positive_int, default=DEFAULT_SAMPLES,
                        help="requests per address; the fastest is kept (default %(default)s)")
    parser.add_argument("-t", "--timeout", type=positive_float, default=DEFAULT_TIMEOUT_S,
                        metavar="SECONDS", help="limit for each request (default %(default)s)")
    parser.add_argument("--ntp-server", metavar="HOST[:PORT]",
                        help="measure the local clock against this NTP server first "
                             "(default: trust the local clock)")
    parser.add_argument("--address", action="append", default=[], metavar="ADDRESS",
                        help="check this address instead of resolving the URL's host "
                             "(repeatable; the Host header stays the URL's)")
    family = parser.add_mutually_exclusive_group()
    family.add_argument("-4", dest="family", action="store_const", const=socket.AF_INET,
                        default=socket.AF_UNSPEC, help="IPv4 addresses only")
    family.add_argument("-6", dest="family", action="store_const", const=socket.AF_INET6,
                        help="IPv6 addresses only")
    parser.add_argument("--json", action="store_true", help="one JSON object per check")
    parser.add_argument("--interval", type=positive_float, metavar="SECONDS",
                        help="check again every SECONDS, one line each, until SIGINT or SIGTERM")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


def parse_options(parser: argparse.ArgumentParser, argv: Optional[List[str]]) -> Options:
    args = parser.parse_args(argv)
    if args.warning > args.critical:
        raise UsageError(f"--warning {args.warning:g} is above --critical {args.critical:g}")
    addresses = []
    for address in args.address:
        address = address.strip("[]")
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
        except OSError:
            raise UsageError(f"--address {address!r} is not an IP address") from None
        addresses.append(address)
    if args.ntp_server is not None:
        parse_ntp_server(args.ntp_server)  # report a bad spec now, as a usage error
    return Options(parse_target(args.url), args.warning, args.critical, args.samples,
                   args.timeout, addresses, args.family, args.ntp_server, args.json,
                   args.interval)


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, like KeyboardInterrupt, so
    that no "except Exception" on the way takes it for a failed request)."""


def _on_signal(signum: int, _frame) -> None:
    raise _Stop(signum)


def emit(report: Report, as_json: bool) -> None:
    print(format_json(report) if as_json else format_line(report), flush=True)


def run(options: Options) -> int:
    clock: Optional[LocalClock] = None
    if options.interval_s is None:
        clock = refresh_clock(options, clock)
        report = check(options, clock)
        emit(report, options.json)
        return report.status
    next_at = time.monotonic()
    while True:
        clock = refresh_clock(options, clock)
        emit(check(options, clock), options.json)
        next_at += options.interval_s
        now = time.monotonic()
        if next_at < now:  # a check ran over: skip the missed turns
            next_at = now + options.interval_s - (now - next_at) % options.interval_s
        time.sleep(next_at - now)


def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    try:
        options = parse_options(parser, argv)
    except UsageError as error:
        print(f"{LABEL} UNKNOWN: {_perf_safe(str(error))}")
        parser.print_usage(sys.stderr)
        return UNKNOWN
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(options)
    except _Stop as stop:
        # Stopping a repeating check is its normal end; a one-shot check cut
        # short says so the usual Unix way, 128 + the signal's number.
        return 0 if options.interval_s is not None else 128 + stop.args[0]
    except BrokenPipeError:
        return 0 if options.interval_s is not None else UNKNOWN
    except Exception as error:  # noqa: BLE001 - never a traceback; should not happen
        print(f"{LABEL} UNKNOWN: internal error: {_perf_safe(describe_error(error, options.timeout_s))}")
        return UNKNOWN
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cli() -> None:
    """The nowd-healthcheck command."""
    status = main()
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # stdout went away (a closed pipe): do not let Python complain at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)


if __name__ == "__main__":
    cli()
