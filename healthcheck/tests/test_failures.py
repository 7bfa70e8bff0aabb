"""A service that does not answer properly is CRITICAL, quickly, without a traceback."""

from __future__ import annotations

import socket
import threading

import pytest
from conftest import run_check
from nowd_testing import free_port


def test_http_500(time_server):
    server = time_server(status=500)
    run = run_check(server.url)
    assert run.returncode == 2, run
    assert run.line.startswith("NOWD CRITICAL:")
    assert "127.0.0.1: HTTP 500 Internal Server Error" in run.line


def test_refused(time_server):
    port = free_port()  # nothing listens there any more
    run = run_check(f"http://127.0.0.1:{port}/now")
    assert run.returncode == 2, run
    assert "connection refused" in run.line


def test_dns_failure():
    run = run_check("http://no-such-host.invalid/now")
    assert run.returncode == 2, run
    assert "cannot resolve no-such-host.invalid" in run.line


@pytest.mark.parametrize(
    "reply, says",
    [
        (b"\x00\xff\xfe not HTTP at all\r\n\r\n", "bad HTTP answer"),
        (b"", "closed without an answer"),
        (
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n2026-11-",
            "bad HTTP answer: IncompleteRead",
        ),
    ],
    ids=["garbage", "hang-up", "truncated"],
)
def test_broken_answers_are_critical(raw_server, reply, says):
    def answer(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(reply)
        conn.close()

    run = run_check(raw_server(answer).url)
    assert run.returncode == 2, run
    assert says in run.line


def test_no_timestamp_at_all(time_server):
    server = time_server(body="nothing")
    run = run_check(server.url)
    assert run.returncode == 2, run
    assert "no timestamp in the answer" in run.line


def test_nowd_without_timestamp_does_not_fall_back_to_date(time_server):
    """nowd always sends a timestamp; if it does not, it is broken."""
    server = time_server(body="date-only", server_header="nowd")
    run = run_check(server.url)
    assert run.returncode == 2, run
    assert "no RFC 3339 timestamp" in run.line


@pytest.mark.parametrize(
    "options, timeout_s",
    [(["--timeout", "1"], 1.0), ([], 10.0)],
    ids=["timeout-1s", "default-timeout"],
)
def test_hung_server_is_critical_within_the_timeout(raw_server, options, timeout_s):
    release = threading.Event()

    def hang(conn: socket.socket) -> None:
        conn.recv(4096)
        release.wait(30)

    server = raw_server(hang)
    try:
        run = run_check(server.url, *options)
    finally:
        release.set()
    assert run.returncode == 2, run
    assert f"no answer within {timeout_s:g}s" in run.line
    # The line comes out before the deadline, not after it.
    assert 0.8 * timeout_s <= run.elapsed < timeout_s, run.elapsed


def test_trickling_server_is_cut_at_the_timeout(raw_server):
    """A byte now and then resets a socket timeout; the whole request is bounded."""
    release = threading.Event()

    def trickle(conn: socket.socket) -> None:
        conn.recv(4096)
        conn.sendall(b"HTTP/1.1 200 OK\r\n")
        while not release.wait(0.2):
            conn.sendall(b"X")

    server = raw_server(trickle)
    try:
        run = run_check(server.url, "--timeout", "1")
    finally:
        release.set()
    assert run.returncode == 2, run
    assert "no answer within 1s" in run.line
    assert run.elapsed < 2.5, run.elapsed


def test_not_listening_on_ipv6_is_critical_too(time_server):
    """One bad address among good ones makes the service CRITICAL."""
    server = time_server()
    run = run_check(
        f"http://localhost:{server.port}/now",
        "--address",
        "127.0.0.1",
        "--address",
        "::1",
        "--json",
    )
    report = run.json
    assert (run.returncode, report["status"]) == (2, "CRITICAL"), run
    by_address = {a["address"]: a for a in report["addresses"]}
    assert by_address["127.0.0.1"]["status"] == "OK"
    assert by_address["::1"]["status"] == "CRITICAL"
    assert by_address["::1"]["error"] in (
        "connection refused",
        "Cannot assign requested address",
        "Network is unreachable",
    )
    # The offset shown is the one address that gave one.
    assert abs(report["offset_s"]) <= report["uncertainty_s"] + 0.005
    assert report["reasons"][0].startswith("[::1]: ")


def test_hang_after_some_samples(time_server):
    """Two quick answers, then a hang: CRITICAL, with the time it did give."""
    server = time_server(skew=+0.3, delays=(0.0, 0.0, 3.0))
    run = run_check(server.url, "--timeout", "1", "--json")
    report = run.json
    assert (run.returncode, report["status"]) == (2, "CRITICAL"), run
    assert report["reasons"] == ["127.0.0.1: no answer within 1s"]
    assert report["addresses"][0]["samples"] == 2
    assert abs(report["offset_s"] - 0.3) <= report["rtt_s"] / 2 + 0.005


def test_all_addresses_failing_slowly_end_before_the_deadline(raw_server, sntp_responder):
    """Four addresses that accept and never answer, and a silent NTP server:
    asked in parallel, all reported, the line out before --timeout."""
    release = threading.Event()

    def hang(conn: socket.socket) -> None:
        conn.recv(4096)
        release.wait(30)

    first = raw_server(hang)
    hosts = ["127.0.0.1", "127.0.0.2", "127.0.0.3", "127.0.0.4"]
    for host in hosts[1:]:
        raw_server(hang, host=host, port=first.port)
    ntp = sntp_responder(mode="silent")
    args = [a for host in hosts for a in ("--address", host)]
    try:
        run = run_check(
            f"http://nowd.test:{first.port}/now",
            *args,
            "--timeout",
            "3",
            "--ntp-server",
            ntp.spec,
            "--json",
        )
    finally:
        release.set()
    report = run.json
    assert (run.returncode, report["status"]) == (2, "CRITICAL"), run
    assert [a["error"] for a in report["addresses"]] == ["no answer within 3s"] * 4
    assert report["local_clock"]["error"] == "no answer within 3s"
    assert ntp.queries == 1
    assert 2.5 <= run.elapsed < 3.0, run.elapsed
