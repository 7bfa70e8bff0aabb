"""The local clock measured against an SNTP responder with a known offset."""

from __future__ import annotations

import re
import signal
import time

import pytest
from conftest import ipv6_loopback_available, run_check, start_check
from nowd_testing import NTP_EPOCH_OFFSET_S, free_port


def test_local_clock_corrected(time_server, sntp_responder):
    """The local clock is 0.7 s slow and so is the server: the server is right."""
    server = time_server(skew=+0.7)
    ntp = sntp_responder(offset=+0.7)
    run = run_check(server.url, "--ntp-server", ntp.spec, "--json")
    report = run.json
    assert (run.returncode, report["status"]) == (0, "OK"), run
    clock = report["local_clock"]
    assert clock["source"] == "ntp" and clock["error"] is None
    assert abs(clock["offset_s"] - 0.7) <= clock["uncertainty_s"] + 0.005
    assert abs(report["offset_s"]) <= report["uncertainty_s"] + 0.005
    # The two uncertainties add up.
    assert report["uncertainty_s"] >= clock["uncertainty_s"] + report["rtt_s"] / 2
    assert ntp.queries == 1  # one packet per run

    # Without the NTP server the same service looks 0.7 s fast.
    run = run_check(server.url, "--json")
    assert (run.returncode, run.json["status"]) == (1, "WARNING")
    assert run.json["local_clock"]["source"] == "trusted"


def test_text_says_which_clock(time_server, sntp_responder):
    server = time_server(skew=0.0)
    ntp = sntp_responder(offset=-0.2)  # the local clock is 0.2 s fast
    line = run_check(server.url, "--ntp-server", ntp.spec).line
    assert re.search(
        r"local clock 0\.[12]\d\ds fast ±0\.\d{3}s per NTP 127\.0\.0\.1:\d+\)", line
    ), line
    assert "local clock trusted" in run_check(server.url).line


def test_fast_local_clock_hides_a_fast_server(time_server, sntp_responder):
    """The server agrees with the local clock, but both are 1.5 s fast."""
    server = time_server(skew=0.0)
    ntp = sntp_responder(offset=-1.5)
    run = run_check(server.url, "--ntp-server", ntp.spec, "--json")
    assert (run.returncode, run.json["status"]) == (2, "CRITICAL"), run
    assert abs(run.json["offset_s"] - 1.5) <= run.json["uncertainty_s"] + 0.005
    assert run_check(server.url).returncode == 0


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_ipv6_ntp_server(time_server, sntp_responder):
    server = time_server(skew=+0.3)
    ntp = sntp_responder(offset=+0.3, host="::1")
    run = run_check(server.url, "--ntp-server", ntp.spec, "--json")
    assert run.returncode == 0, run
    assert abs(run.json["offset_s"]) <= run.json["uncertainty_s"] + 0.005


@pytest.mark.parametrize(
    "mode, reason",
    [
        ("silent", "no answer within 2s"),
        ("bad-origin", "no answer within 2s"),  # an answer to another request is no answer
        ("unsynchronised", "server not synchronised"),
        ("kiss", "kiss-o'-death 'RATE'"),
    ],
)
def test_unusable_ntp_server_is_a_warning(time_server, sntp_responder, mode, reason):
    server = time_server(skew=0.0)
    ntp = sntp_responder(mode=mode)
    # --timeout bounds the whole run, interpreter start included: 2 s leaves
    # a loaded machine room for the samples while still bounding the silence.
    run = run_check(server.url, "--ntp-server", ntp.spec, "--timeout", "2", "--json")
    report = run.json
    assert (run.returncode, report["status"]) == (1, "WARNING"), run
    assert report["reasons"] == [f"NTP {ntp.spec}: {reason}; local clock trusted"]
    assert report["local_clock"]["source"] == "trusted"
    assert run.elapsed < 3, run.elapsed


def test_ntp_port_closed(time_server):
    server = time_server()
    port = free_port()
    run = run_check(server.url, "--ntp-server", f"127.0.0.1:{port}")
    assert run.returncode == 1, run
    assert f"NTP 127.0.0.1:{port}: connection refused; local clock trusted" in run.line


def test_ntp_asked_at_most_every_64s_when_repeating(time_server, sntp_responder):
    server = time_server()
    ntp = sntp_responder(offset=0.0)
    proc = start_check(server.url, "--samples", "1", "--interval", "0.2", "--ntp-server", ntp.spec)
    lines = [proc.stdout.readline() for _ in range(4)]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, (lines, out, err)
    assert all(line.startswith("NOWD OK:") and "per NTP" in line for line in lines), lines
    assert ntp.queries == 1  # one query, then reused
    assert len(server.paths()) >= 4


def test_transmit_timestamp_is_random(time_server, sntp_responder):
    """The request's transmit timestamp tells nothing about the local clock
    (it is only echoed back), and differs from one run to the next."""
    server = time_server()
    ntp = sntp_responder()
    for _ in range(2):
        assert run_check(server.url, "--samples", "1", "--ntp-server", ntp.spec).returncode == 0
    assert len(ntp.transmits) == 2 and ntp.transmits[0] != ntp.transmits[1]
    now_era0 = (int(time.time()) + NTP_EPOCH_OFFSET_S) % (1 << 32)
    for stamp in ntp.transmits:
        assert abs((stamp >> 32) - now_era0) > 86400, hex(stamp)  # not today's time


@pytest.mark.parametrize("mode", ["kiss", "silent"])
def test_repeating_check_does_not_retry_a_failed_ntp_server(time_server, sntp_responder, mode):
    """A kiss-o'-death, or no answer: each line says so, and the server is
    not asked again (a kiss: never; silence: not within 64 s)."""
    server = time_server()
    ntp = sntp_responder(mode=mode)
    proc = start_check(
        server.url,
        "--samples",
        "1",
        "--interval",
        "1.2",
        "--timeout",
        "1",
        "--ntp-server",
        ntp.spec,
    )
    lines = [proc.stdout.readline() for _ in range(4)]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, (lines, out, err)
    assert all(
        line.startswith("NOWD WARNING:") and f"NTP {ntp.spec}: " in line for line in lines
    ), lines
    assert ntp.queries == 1
