"""Sampling the service over HTTP: every usable address, one sample per connection.

For each sample the local clock is read just before ``GET /now`` is sent
(t_send) and once the whole answer is in (t_recv); the server read its clock
somewhere in between. A server timestamp S with resolution r (1 us for nowd, 1 s
for whole seconds or the HTTP ``Date`` header) says the server's clock read
somewhere in [S, S + r): timestamps are truncated, not rounded. So

    offset      = S + r/2 - (t_send + t_recv) / 2
    uncertainty = rtt/2 + r/2

Every sample opens a fresh TCP connection, outside the measured round trip: a
load balancer picks an instance per connection, so the samples of one address
meet every instance behind it, and nowd names the one that answered
(``Nowd-Instance:``). nowd's ``/healthz`` is read once per instance, on the
connection that met it.
"""

from __future__ import annotations

import contextlib
import datetime
import email.utils
import http.client
import re
import socket
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Callable

from . import NS_PER_S, PROG, CheckError, UsageError, __version__

DEFAULT_PATH = "/now"
HEALTHZ_PATH = "/healthz"
NOWD_SERVER_TOKEN = "nowd"
INSTANCE_HEADER = "Nowd-Instance"
USER_AGENT = f"{PROG}/{__version__}"

MAX_BODY_BYTES = 64 * 1024  # /now and /healthz answer a line; never read more.
MAX_REASON_CHARS = 200  # of a /healthz body quoted in the output
DATE_HEADER_RESOLUTION_NS = NS_PER_S  # RFC 9110 IMF-fixdate has whole seconds
# An instance id as nowd sends it (32 hex digits), or anything as plain; a
# header that is not such a token is ignored: the sample is unattributed.
INSTANCE_RE = re.compile(r"[A-Za-z0-9._:-]{1,64}")

# RFC 3339 date-time, with or without a fraction, with "Z" or a numeric offset.
RFC3339_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|[+-]\d{2}:\d{2})"
)


class Deadline:
    """The one deadline of a run, on the monotonic clock."""

    def __init__(self, seconds: float) -> None:
        self.at = time.monotonic() + seconds

    def remaining(self) -> float:
        return self.at - time.monotonic()


@dataclass
class Sample:
    """One request: local send/receive times and the server's time, in ns."""

    t_send_ns: int
    t_recv_ns: int
    server_ns: int
    resolution_ns: int
    source: str  # "body" or "Date header"
    instance: str | None = None  # the Nowd-Instance header, if any

    @property
    def rtt_s(self) -> float:
        return (self.t_recv_ns - self.t_send_ns) / NS_PER_S

    @property
    def offset_s(self) -> float:
        # Centred on [S, S + r); integer arithmetic first: a float of ns since
        # 1970 has 0.2 us steps.
        return (2 * self.server_ns + self.resolution_ns - self.t_send_ns - self.t_recv_ns) / (
            2 * NS_PER_S
        )

    @property
    def uncertainty_s(self) -> float:
        return (self.rtt_s + self.resolution_ns / NS_PER_S) / 2


@dataclass
class Healthz:
    status: int
    reason: str


@dataclass
class AddressResult:
    """What one address of the service answered."""

    address: str
    samples: list[Sample] = field(default_factory=list)
    server: str | None = None  # the Server header
    healthz: dict[str | None, Healthz] = field(default_factory=dict)  # per instance
    error: str | None = None  # set when a request failed


@dataclass
class ServiceResult:
    """Every address measured, the ones skipped, and why nothing was, if so."""

    addresses: list[AddressResult]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (address, why)
    error: str | None = None


def now_ns() -> tuple[int, int]:
    """The wall clock (to compare with the server) and a monotonic clock (to time)."""
    return time.time_ns(), time.perf_counter_ns()


def parse_rfc3339(text: str) -> tuple[int, int] | None:
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
        stamp = datetime.datetime(year, month, day, hour, minute, 59 if leap else second, tzinfo=tz)
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


def parse_http_date(value: str) -> int | None:
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


def server_header_is_nowd(value: str | None) -> bool:
    """True for "Server: nowd" and "Server: nowd/1.2.3"."""
    if not value:
        return False
    product = value.split()[0].split("/")[0]
    return product.lower() == NOWD_SERVER_TOKEN


def instance_of(response: http.client.HTTPResponse) -> str | None:
    value = (response.getheader(INSTANCE_HEADER) or "").strip()
    return value if INSTANCE_RE.fullmatch(value) else None


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


def family_name(address: str) -> str:
    return "IPv6" if ":" in address else "IPv4"


def resolve(host: str, port: int, family: int) -> list[str]:
    """Every address the host name resolves to, in the resolver's order."""
    infos = socket.getaddrinfo(host, port, family, socket.SOCK_STREAM)
    addresses: list[str] = []
    for _family, _type, _proto, _canonname, sockaddr in infos:
        if sockaddr[0] not in addresses:
            addresses.append(sockaddr[0])
    return addresses


def route_problem(address: str, port: int) -> str | None:
    """Why this host cannot send to address (no route, no source address, no
    such family), or None. Connecting a UDP socket picks a route and a source
    address and sends nothing."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as probe:
            probe.connect((address, port))
    except OSError as error:
        return error.strerror or str(error)
    return None


def describe_error(error: BaseException, timeout_s: float) -> str:
    """A short, traceback-free reason for a failed request."""
    if isinstance(error, (socket.timeout, TimeoutError)):
        return f"no answer within {timeout_s:g}s"
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


class _Connection:
    """One HTTP(S) connection to one address, with the URL's Host."""

    def __init__(
        self,
        target: Target,
        address: str,
        deadline: Deadline,
        on_socket: Callable[[socket.socket | None], None],
    ) -> None:
        self.deadline = deadline
        self.on_socket = on_socket
        timeout = max(deadline.remaining(), 0.001)
        if target.scheme == "https":
            self.conn: http.client.HTTPConnection = http.client.HTTPSConnection(
                target.host,
                target.port,
                timeout=timeout,
                context=ssl.create_default_context(),
            )
        else:
            self.conn = http.client.HTTPConnection(target.host, target.port, timeout=timeout)

        # Connect to this address, but keep the name for Host and TLS (SNI and
        # certificate check), as a browser does after its own DNS look-up.
        def create_connection(_host_port, timeout=None, source_address=None):
            sock = socket.create_connection((address, target.port), timeout, source_address)
            on_socket(sock)
            return sock

        self.conn._create_connection = create_connection  # type: ignore[attr-defined]

    def _time_left(self) -> float:
        left = self.deadline.remaining()
        if left <= 0:
            raise socket.timeout("timed out")
        return left

    def get(self, path: str) -> tuple[int, int, http.client.HTTPResponse, bytes]:
        """GET path; returns (t_send_ns, t_recv_ns, response, body)."""
        if self.conn.sock is None:
            self.conn.timeout = self._time_left()
            self.conn.connect()  # the TCP (and TLS) handshake: not in the round trip
        self.conn.sock.settimeout(self._time_left())
        t_send_ns, p_send = now_ns()
        self.conn.request(
            "GET",
            path,
            headers={
                "User-Agent": USER_AGENT,
                "Accept": "text/plain, */*",
                "Cache-Control": "no-cache",
            },
        )
        response = self.conn.getresponse()
        body = read_body(response)
        _, p_recv = now_ns()
        # One wall-clock reading; the interval on the monotonic clock, so a
        # step of the local clock during the request cannot distort it.
        return t_send_ns, t_send_ns + (p_recv - p_send), response, body

    @property
    def open(self) -> bool:
        return self.conn.sock is not None

    def close(self) -> None:
        self.conn.close()
        self.on_socket(None)


def parse_sample(
    t_send_ns: int, t_recv_ns: int, response: http.client.HTTPResponse, body: bytes
) -> Sample:
    if response.status != 200:
        raise CheckError(f"HTTP {response.status} {response.reason}".strip())
    instance = instance_of(response)
    parsed = parse_rfc3339(body.decode("utf-8", errors="replace"))
    if parsed is not None:
        return Sample(t_send_ns, t_recv_ns, parsed[0], parsed[1], "body", instance)
    if server_header_is_nowd(response.getheader("Server")):
        raise CheckError("no RFC 3339 timestamp in the answer")  # nowd must send one
    date = parse_http_date(response.getheader("Date") or "")
    if date is None:
        raise CheckError("no timestamp in the answer (no RFC 3339 time, no Date header)")
    return Sample(t_send_ns, t_recv_ns, date, DATE_HEADER_RESOLUTION_NS, "Date header", instance)


class AddressProbe(threading.Thread):
    """Takes the samples of one address, each on a new connection, until done,
    a request fails, or the run's deadline (then abort() cuts it short)."""

    def __init__(
        self, target: Target, address: str, samples: int, deadline: Deadline, timeout_s: float
    ) -> None:
        super().__init__(daemon=True)
        self.target, self.samples, self.deadline = target, samples, deadline
        self.timeout_s = timeout_s
        self.result = AddressResult(address)
        self._lock = threading.Lock()
        self._socket: socket.socket | None = None
        self._cut = False
        self._stage = ""  # "healthz: " while /healthz is read, for the reason

    def _on_socket(self, sock: socket.socket | None) -> None:
        with self._lock:
            self._socket = sock

    def run(self) -> None:
        try:
            for _ in range(self.samples):
                self._stage = ""
                conn = _Connection(self.target, self.result.address, self.deadline, self._on_socket)
                try:
                    t_send_ns, t_recv_ns, response, body = conn.get(self.target.path)
                    with self._lock:
                        self.result.server = response.getheader("Server")
                    sample = parse_sample(t_send_ns, t_recv_ns, response, body)
                    self._record(sample)
                    if (
                        server_header_is_nowd(self.result.server)
                        and sample.instance not in self.result.healthz
                    ):
                        self._stage = "healthz: "
                        self._read_healthz(conn)
                finally:
                    conn.close()
        except CheckError as error:
            self._fail(self._stage + str(error))
        except Exception as error:  # noqa: BLE001 - any failure is this address's verdict
            self._fail(self._stage + describe_error(error, self.timeout_s))

    def _read_healthz(self, conn: _Connection) -> None:
        """On the same connection (the same instance) if the server kept it open."""
        if not conn.open:
            conn = _Connection(self.target, self.result.address, self.deadline, self._on_socket)
        _, _, response, body = conn.get(HEALTHZ_PATH)
        text = body.decode("utf-8", errors="replace").strip()
        line = text.splitlines()[0] if text else ""
        with self._lock:
            if not self._cut:
                self.result.healthz[instance_of(response)] = Healthz(
                    response.status, line[:MAX_REASON_CHARS]
                )

    def _record(self, sample: Sample) -> None:
        with self._lock:
            if not self._cut:
                self.result.samples.append(sample)

    def _fail(self, reason: str) -> None:
        with self._lock:
            if not self._cut:
                self.result.error = reason

    def abort(self) -> AddressResult:
        """Stops the probe where it is and returns what it has so far."""
        with self._lock:
            self._cut = True
            if self.is_alive() and self.result.error is None:
                self.result.error = f"{self._stage}no answer within {self.timeout_s:g}s"
            if self._socket is not None:
                with contextlib.suppress(OSError):
                    self._socket.shutdown(socket.SHUT_RDWR)
            return self.result


def _in_thread(work: Callable[[], list[str]], deadline: Deadline) -> list[str]:
    """work(), or socket.timeout if the deadline passes first (getaddrinfo
    has no timeout of its own)."""
    outcome: dict[str, object] = {}

    def runner() -> None:
        try:
            outcome["value"] = work()
        except BaseException as error:  # noqa: BLE001 - handed to the caller
            outcome["error"] = error

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    thread.join(max(deadline.remaining(), 0))
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    if "value" not in outcome:
        raise socket.timeout("timed out")
    return outcome["value"]  # type: ignore[return-value]


def skipped_summary(skipped: list[tuple[str, str]]) -> list[str]:
    """["2 IPv6 addresses skipped: no IPv6 route"], one entry per family."""
    lines = []
    for family in ("IPv4", "IPv6"):
        count = sum(1 for address, _ in skipped if family_name(address) == family)
        if count:
            noun = "address" if count == 1 else "addresses"
            lines.append(f"{count} {family} {noun} skipped: no {family} route")
    return lines


def measure(
    target: Target,
    addresses: list[str],
    family: int,
    samples: int,
    deadline: Deadline,
    timeout_s: float,
) -> ServiceResult:
    """Every usable address of the service, measured in parallel by the deadline.

    Addresses given explicitly are all measured; of the resolved ones, those of
    a family the host has no route for are skipped, not failed.
    """
    skipped: list[tuple[str, str]] = []
    addresses = list(addresses)
    if not addresses:
        try:
            resolved = _in_thread(lambda: resolve(target.host, target.port, family), deadline)
        except OSError as error:
            reason = describe_error(error, timeout_s)
            return ServiceResult([], error=f"cannot resolve {target.host}: {reason}")
        for address in resolved:
            problem = route_problem(address, target.port)
            if problem is None:
                addresses.append(address)
            else:
                skipped.append((address, problem))
        if not addresses:
            why = "; ".join(skipped_summary(skipped)) or "none resolved"
            return ServiceResult([], skipped, f"no usable address for {target.host}: {why}")
    probes = [AddressProbe(target, address, samples, deadline, timeout_s) for address in addresses]
    for probe in probes:
        probe.start()
    for probe in probes:
        probe.join(max(deadline.remaining(), 0))
    return ServiceResult([probe.abort() for probe in probes], skipped)
