"""Mutated requests sent to the real nowd and to h11, an independent HTTP/1.1 parser.

Each case is a valid request, mutated (bytes, lines, framing headers, the request line, line
ends, a body or a second request hidden in one), then followed on the same connection by a
canary, `GET /now` with `Connection: close`. The client then ends its side. h11, playing the
server, reads the same bytes and says which requests it finds; nowd's answers say which it
found: an answer carrying `Nowd-Instance` comes from the application (a request nowd read), one
without it from the fork's parser (a refusal, after which nowd reads nothing more).

Each case falls in one class:

- agreed: nowd answered as many requests as h11 found, or both refused the first message.
- nowd-stricter: nowd refused or stopped where h11 read on (a refusal of something h11 takes,
  or a connection nowd closes early). Nothing is read that h11 would not read.
- nowd-looser: h11 refuses the first message; nowd answers it and then reads nothing more.
  One answer to a message a stricter parser refuses, on a connection that then ends, cannot
  carry a second request: counted and shown, not failed. The shapes that matter are refused
  one by one in tests/conformance.rs.
- desync (fails): nowd read past a message h11 refuses (it answered the mutated message and
  then another request), answered more requests than h11 found, or, where h11 found the
  canary, refused it or answered it other than 200 (nowd's message there is another). Each is a
  disagreement on where a message ends: what request smuggling is made of.
- hang (fails): nowd did not end the connection within DEADLINE after the client's end.
- bad answer (fails): what nowd wrote back is not a run of well-formed HTTP answers (an
  answer to HEAD with a body, for one).
- crash (fails): nowd not running at the end, a connection refused, or a panic in its log.

Bounds: NOWD_DIFF_CASES cases (default 20000, about 30 s), at most NOWD_DIFF_SECONDS (default 90). The
mutations come from a fixed seed; NOWD_DIFF_SEED changes it, and the summary prints it.
"""

import http.client
import io
import os
import random
import socket
import time
from collections import Counter
from dataclasses import dataclass, field

import h11

from conftest import SUMMARY

SEED = int(os.environ.get("NOWD_DIFF_SEED", "16"))
CASES = int(os.environ.get("NOWD_DIFF_CASES", "20000"))
SECONDS = float(os.environ.get("NOWD_DIFF_SECONDS", "90"))
# Longest nowd may take to end a connection once the client has ended its side. nowd has
# every byte and an end of input by then; its own timeouts (src/limits.rs) are longer.
DEADLINE = 3.0

CANARY_TARGET = b"/now?canary"
CANARY = b"GET " + CANARY_TARGET + b" HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
SMUGGLED = b"GET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n"

SEEDS = [
    b"GET /now HTTP/1.1\r\nHost: a\r\n\r\n",
    b"HEAD /now HTTP/1.1\r\nHost: a\r\nAccept: application/json\r\n\r\n",
    b"GET /healthz HTTP/1.1\r\nHost: a\r\nUser-Agent: x\r\n\r\n",
    b"GET /now HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    b"GET http://a/now?x=1 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /now HTTP/1.1\r\nHost: a\r\nContent-Length: "
    + str(len(SMUGGLED)).encode()
    + b"\r\n\r\n"
    + SMUGGLED,
    b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    b"POST /now HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    + f"{len(SMUGGLED):x}".encode()
    + b"\r\n"
    + SMUGGLED
    + b"\r\n0\r\n\r\n",
    b"POST /now HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi",
]

BYTES = b' \t\r\n:,;=\x00\x0b\x0c\x7f\x80\xff"a0-/'
HEADERS = [
    b"Content-Length: 0",
    b"Content-Length: 5",
    b"Content-Length: 05",
    b"Content-Length: -1",
    b"Content-Length: 5, 5",
    b"Content-Length: 1e1",
    b"Content-Length: 99999999999999999999",
    b"Content-Length : 5",
    b"Transfer-Encoding: chunked",
    b"Transfer-Encoding: chunked, chunked",
    b"Transfer-Encoding: identity",
    b"Transfer-Encoding: gzip, chunked",
    b"Transfer-Encoding: xchunked",
    b"Transfer-Encoding : chunked",
    b"Transfer-Encoding:\tchunked",
    b"Transfer-encoding: Chunked",
    b" Transfer-Encoding: chunked",
    b"Connection: close",
    b"Connection: keep-alive",
    b"Connection: upgrade",
    b"Expect: 100-continue",
    b"Expect: nothing",
    b"Host: b",
    b"Host:",
    b": empty-name",
    b"X-A: b\x00c",
    b"X-A: \x80",
    b"X-A",
]
METHODS = [b"GET", b"HEAD", b"POST", b"OPTIONS", b"CONNECT", b"PRI", b"get", b":GET", b"G@T"]
TARGETS = [b"/now", b"*", b"http://a/now", b"/now?x", b"//now", b"/now#f", b"/n%00w", b""]
VERSIONS = [b"HTTP/1.1", b"HTTP/1.0", b"HTTP/1.2", b"HTTP/2.0", b"HTTP/0.9", b"http/1.1"]
VERSIONS += [b"HTTP/11", b"HTTP/1.1 x", b"HTTP/1.1\t", b"HTTP/ 1.1"]
BODIES = [b"hello", b"0\r\n\r\n", b"5\r\nhello\r\n0\r\n\r\n", SMUGGLED, b"\r\n"]
LINE_ENDS = [b"\n", b"\r", b"\r\r\n", b" \r\n", b"\r\n\r\n"]


def mutate(rng: random.Random, request: bytes) -> bytes:
    """One random change to `request`, among those HTTP parsers are known to differ on."""
    head, sep, body = request.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    kind = rng.randrange(7)
    if kind == 0:  # a byte inserted, replaced or removed anywhere
        at = rng.randrange(len(request) + 1)
        byte = bytes([rng.choice(BYTES)])
        return rng.choice(
            [request[:at] + byte + request[at:], request[:at] + byte + request[at + 1 :]]
            + [request[:at] + request[at + 1 :]]
        )
    if kind == 1:  # a framing or odd header line added
        lines.insert(rng.randrange(1, len(lines) + 1), rng.choice(HEADERS))
    elif kind == 2 and len(lines) > 1:  # a header line repeated, or dropped
        at = rng.randrange(1, len(lines))
        if rng.random() < 0.5:
            lines.insert(at, lines[at])
        else:
            del lines[at]
    elif kind == 3:  # one part of the request line replaced
        parts = lines[0].split(b" ")
        part = rng.randrange(3)
        choices = [METHODS, TARGETS, VERSIONS][part]
        parts[part : part + 1] = [rng.choice(choices)]
        lines[0] = b" ".join(parts)
    elif kind == 4:  # one line end replaced
        at = rng.randrange(len(lines))
        rebuilt = b"\r\n".join(lines[: at + 1]) + rng.choice(LINE_ENDS)
        return rebuilt + b"\r\n".join(lines[at + 1 :]) + sep + body
    elif kind == 5:  # a body, chunked body or whole request after the head
        body = rng.choice(BODIES)
    else:  # the body's or a header's digits changed
        digits = [i for i, b in enumerate(request) if 0x30 <= b <= 0x39]
        if digits:
            at = rng.choice(digits)
            return request[:at] + str(rng.randrange(10)).encode() + request[at + 1 :]
    return b"\r\n".join(lines) + sep + body


@dataclass
class Reference:
    """Where h11, as the server, finds each request in the bytes, and its error if any.

    Where h11 would close (`Connection: close`, HTTP/1.0 without keep-alive, which h11 does not
    do), it goes on from the next byte as a new connection would: the question is where each
    message ends, not whether the connection is kept. `close_after` says where h11 stopped first.
    """

    requests: list[tuple[bytes, bytes]] = field(default_factory=list)  # (method, target)
    error: str | None = None
    close_after: int | None = None


def reference(data: bytes) -> Reference:
    ref = Reference()
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(data)
    conn.receive_data(b"")  # the client has ended its side
    current = None
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError as e:
            ref.error = str(e)
            return ref
        if isinstance(event, h11.Request):
            current = (event.method, event.target)
        elif isinstance(event, h11.EndOfMessage):
            ref.requests.append(current)
            # 404: no answer that switches protocols (2xx to CONNECT, 101)
            conn.send(h11.Response(status_code=404, headers=[("Content-Length", "0")]))
            conn.send(h11.EndOfMessage())
            if conn.our_state is h11.DONE and conn.their_state is h11.DONE:
                conn.start_next_cycle()
                continue
            if ref.close_after is None:
                ref.close_after = len(ref.requests)
            rest = conn.trailing_data[0]
            conn = h11.Connection(h11.SERVER)
            conn.receive_data(rest)
            conn.receive_data(b"")
        elif event in (h11.NEED_DATA, h11.PAUSED) or isinstance(event, h11.ConnectionClosed):
            return ref


class _Unclosable(io.BytesIO):
    def close(self) -> None:  # http.client closes the file after each body
        pass


class _Stream:
    def __init__(self, data: bytes) -> None:
        self.file = _Unclosable(data)

    def makefile(self, *_args, **_kwargs):
        return self.file


@dataclass
class Answers:
    """nowd's final answers, in order: (status, from the application)."""

    answers: list[tuple[int, bool]] = field(default_factory=list)
    closed: bool = True
    malformed: str | None = None

    @property
    def read(self) -> int:
        """How many requests nowd read (answered by the application)."""
        return sum(1 for _, app in self.answers if app)


def send(addr, data: bytes, first_method: str) -> Answers:
    """Sends `data`, ends the client's side, and reads every answer until nowd closes."""
    got = b""
    closed = True
    with socket.create_connection(addr, timeout=DEADLINE) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # nowd closed early: its answer is still to be read
        end = time.monotonic() + DEADLINE
        while True:
            s.settimeout(max(0.01, end - time.monotonic()))
            try:
                chunk = s.recv(65536)
            except TimeoutError:
                closed = False
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            got += chunk
    result = Answers(closed=closed)
    stream = _Stream(got)
    method = first_method
    while stream.file.tell() < len(got):
        response = http.client.HTTPResponse(stream, method=method)
        try:
            response.begin()
            response.read()
        except (http.client.HTTPException, ValueError) as e:
            result.malformed = f"{e!r} in {got!r}"
            break
        result.answers.append((response.status, response.getheader("Nowd-Instance") is not None))
        method = "GET"
    return result


def classify(ref: Reference, ans: Answers) -> tuple[str, str]:
    """The class of one case and, for the failing ones, why."""
    if ans.malformed:
        return "bad answer", f"not HTTP: {ans.malformed}"
    if not ans.closed:
        return "hang", f"open {DEADLINE} s after the client's end"
    first_read = bool(ans.answers) and ans.answers[0][1]
    if not ref.requests:  # h11 refuses the first message
        if not first_read:
            return "agreed", ""
        if ans.read > 1:
            return "desync", f"read past a message h11 refuses ({ref.error})"
        return "nowd-looser", f"h11: {ref.error}"
    if ans.read > len(ref.requests):
        return "desync", f"{ans.read} requests read, h11 found {len(ref.requests)}"
    canary = next((i for i, r in enumerate(ref.requests) if r == (b"GET", CANARY_TARGET)), None)
    if canary is not None and canary < len(ans.answers):
        status, app = ans.answers[canary]
        if not app:
            return "desync", "refused the canary, which h11 read as a request of its own"
        if status != 200:
            return "desync", f"the canary's answer is {status}"
    if ans.read in (len(ref.requests), ref.close_after):
        return "agreed", ""
    return "nowd-stricter", ""


def test_nowd_and_h11_agree_on_where_each_request_ends(nowd):
    rng = random.Random(SEED)
    counts: Counter[str] = Counter()
    examples: dict[str, list[str]] = {}
    start = time.monotonic()
    sent = 0
    while sent < CASES and time.monotonic() - start < SECONDS:
        request = rng.choice(SEEDS)
        for _ in range(rng.choice([1, 1, 2, 3])):
            request = mutate(rng, request)
        data = request + CANARY
        first_method = "HEAD" if request.startswith(b"HEAD ") else "GET"
        try:
            answers = send(nowd.addr, data, first_method)
        except ConnectionRefusedError:
            counts["crash"] += 1
            examples.setdefault("crash", []).append(f"connection refused after {request!r}")
            break
        sent += 1
        kind, why = classify(reference(data), answers)
        counts[kind] += 1
        if kind != "agreed" and len(examples.setdefault(kind, [])) < 5:
            examples[kind].append(f"{request!r}: {why or answers.answers}")
    elapsed = time.monotonic() - start

    alive = nowd.process.poll() is None
    panics = nowd.log().count("panicked")
    counts["crash"] += (not alive) + panics
    SUMMARY.append(
        f"seed {SEED}: {sent} sent in {elapsed:.1f} s; agreed {counts['agreed']}, "
        f"nowd-stricter {counts['nowd-stricter']}, nowd-looser {counts['nowd-looser']}, "
        f"desyncs {counts['desync']}, hangs {counts['hang']}, crashes {counts['crash']}, "
        f"bad answers {counts['bad answer']}"
    )
    for kind, shown in examples.items():
        SUMMARY.extend(f"  {kind}: {line}" for line in shown)

    assert sent >= min(CASES, 200), f"only {sent} cases in {SECONDS} s"
    assert alive, f"nowd exited: {nowd.process.returncode}"
    assert panics == 0, nowd.log()
    failing = {
        k: examples.get(k, []) for k in ("desync", "hang", "crash", "bad answer") if counts[k]
    }
    assert not failing, failing
