"""The command line: usage errors, repeating checks, signals, and the parts
of the method that can be checked without a server."""

from __future__ import annotations

import json
import signal
import threading
import time

import pytest
from conftest import run_check, start_check
from nowd_healthcheck import CRITICAL, OK, WARNING, cli, sampling, sntp
from nowd_healthcheck.judging import Threshold, judge_offset
from nowd_testing import NTP_EPOCH_OFFSET_S


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "the following arguments are required: url"),
        (["ftp://example.com/now"], "URL must start with http:// or https://"),
        (["http:///now"], "no host in URL"),
        (["http://example.com:99999/now"], "bad port in URL"),
        (
            ["http://x/now", "--warning", "2", "--critical", "1"],
            "--warning 2 is above --critical 1",
        ),
        (["http://x/now", "--samples", "0"], "must be 1 or more"),
        (["http://x/now", "--timeout=-1"], "must be a positive number"),
        (["http://x/now", "--timeout", "0"], "must be a positive number"),
        (["http://x/now", "--timeout", "soon"], "not a number"),
        (["http://x/now", "--interval", "nan"], "must be a positive number"),
        (["http://x/now", "--ntp-server", "pool.ntp.org:0"], "bad port in --ntp-server"),
        (["http://x/now", "--ntp-server", "[::1"], "bad --ntp-server"),
        (["http://x/now", "--address", "not-an-ip"], "is not an IP address"),
        (["http://x/now", "-4", "-6"], "not allowed with argument"),
        (["http://x/now", "-w", "-0.5"], "a plain threshold is an absolute offset"),
        (["http://x/now", "-w", "1:0"], "starts above its end"),
        (["http://x/now", "-c", "soon:"], "not a number or range"),
        (["http://x/now", "-c", "@"], "not a number or range"),
        (["http://x/now", "-c", "0:inf"], "not a finite number"),
        (["http://x/now", "--bogus"], "unrecognized arguments: --bogus"),
    ],
)
def test_bad_arguments_are_unknown(args, message, capsys):
    assert cli.main(args) == 3
    out, err = capsys.readouterr()
    assert out.startswith("NOWD UNKNOWN: ") and message in out, out
    assert out.count("\n") == 1
    assert err.startswith("usage: nowd-healthcheck "), err


@pytest.mark.parametrize("args", [[], ["ftp://example.com/now"], ["http://x", "-w", "2"]])
def test_bad_arguments_exit_3(args):
    """The same, as cron or a monitoring agent sees it: exit code 3."""
    run = run_check(*args)
    assert run.returncode == 3, run
    assert run.line.startswith("NOWD UNKNOWN: "), run
    assert run.stderr.startswith("usage: nowd-healthcheck "), run


def test_help():
    run = run_check("--help")
    assert run.returncode == 0
    assert "limit for the whole check" in run.stdout
    for option in (
        "--warning",
        "--critical",
        "--samples",
        "--timeout",
        "--ntp-server",
        "--address",
        "--json",
        "--interval",
    ):
        assert option in run.stdout


def test_path_defaults_to_now(time_server):
    server = time_server()
    run = run_check(f"http://127.0.0.1:{server.port}", "--samples", "1")
    assert run.returncode == 0, run
    assert server.paths() == ["/now"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interval_runs_until_a_signal(time_server, signum):
    server = time_server(skew=+0.7)
    proc = start_check(server.url, "--interval", "0.2", "--samples", "1", "--json")
    started = time.monotonic()
    lines = [proc.stdout.readline() for _ in range(3)]
    elapsed = time.monotonic() - started
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=10)
    assert proc.returncode == 0, (out, err)
    assert err == ""  # no traceback, no noise
    assert 0.3 < elapsed < 3, elapsed  # one line every 0.2 s, not as fast as it can
    reports = [json.loads(line) for line in lines + out.splitlines()]
    assert all(r["status"] == "WARNING" for r in reports)
    assert len({r["checked_at"] for r in reports}) == len(reports)


def test_one_shot_interrupted(raw_server):
    """A one-shot check stopped midway says nothing false and exits 128 + signal."""
    release = threading.Event()
    server = raw_server(lambda conn: (conn.recv(4096), release.wait(30)))
    proc = start_check(server.url, "--timeout", "5")
    try:
        time.sleep(0.5)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=10)
    finally:
        release.set()
    assert proc.returncode == 128 + signal.SIGTERM
    assert out == "" and "Traceback" not in err


# The method's pieces, in-process ------------------------------------------------


@pytest.mark.parametrize(
    "text, seconds, nanos, resolution",
    [
        ("2026-11-21T22:49:22.123456Z\n", 1795301362, 123456000, 1000),
        ("2026-11-21T22:49:22Z", 1795301362, 0, 10**9),
        ("2026-11-21T23:49:22+01:00", 1795301362, 0, 10**9),
        ("2026-11-21t17:19:22.5-05:30", 1795301362, 500000000, 10**8),
        ('{"now":"2026-11-21T22:49:22.123456789123Z"}', 1795301362, 123456789, 1),
        ("2016-12-31T23:59:60Z", 1483228800, 0, 10**9),  # a leap second
    ],
)
def test_parse_rfc3339(text, seconds, nanos, resolution):
    assert sampling.parse_rfc3339(text) == (seconds * 10**9 + nanos, resolution)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "hello",
        "2026-13-01T00:00:00Z",
        "2026-11-21T22:49:22",
        "2026-02-30T00:00:00Z",
        "1795301362",
    ],
)
def test_parse_rfc3339_rejects(text):
    assert sampling.parse_rfc3339(text) is None


@pytest.mark.parametrize(
    "offset, uncertainty, status",
    [
        (0.0, 0.0, OK),
        (0.49, 0.01, OK),
        (-0.49, 0.02, WARNING),  # could be -0.51
        (0.0, 0.6, WARNING),  # could be anything up to 0.6
        (0.6, 0.05, WARNING),  # certainly beyond 0.5
        (1.05, 0.1, WARNING),  # beyond 0.5, perhaps beyond 1.0
        (-1.2, 0.1, CRITICAL),  # certainly beyond 1.0
        (3.0, 1.0, CRITICAL),
    ],
)
def test_judge_offset(offset, uncertainty, status):
    warning, critical = Threshold.parse("0.5"), Threshold.parse("1.0")
    assert judge_offset(offset, uncertainty, warning, critical)[0] == status


def test_offset_is_from_the_midpoint():
    sample = sampling.Sample(
        t_send_ns=10**18,
        t_recv_ns=10**18 + 4_000_000,
        server_ns=10**18 + 302_000_000,
        resolution_ns=1000,
        source="body",
    )
    assert sample.rtt_s == pytest.approx(0.004)
    # Centred on the microsecond the timestamp stands for: [S, S + 1 us).
    assert sample.offset_s == pytest.approx(0.3000005)
    assert sample.uncertainty_s == pytest.approx(0.0020005)


def test_the_ntp_epoch_is_the_one_the_test_servers_use():
    # 1900 to 1970: the check's constant against the one worked out from the calendar.
    assert sntp.NTP_EPOCH_OFFSET_S == NTP_EPOCH_OFFSET_S


@pytest.mark.parametrize("ns", [0, 1_795_301_362_123_456_789, 2_085_978_496 * 10**9 + 5])
def test_ntp_timestamps_round_trip(ns):
    # Through 2036-02-07, when the NTP seconds wrap (era 1), and back.
    assert abs(sntp.from_ntp(sntp.to_ntp(ns)) - ns) <= 1


@pytest.mark.parametrize(
    "spec, parsed",
    [
        ("time.example", ("time.example", 123)),
        ("time.example:1123", ("time.example", 1123)),
        ("169.254.169.123", ("169.254.169.123", 123)),
        ("fd00:ec2::123", ("fd00:ec2::123", 123)),
        ("[fd00:ec2::123]:1123", ("fd00:ec2::123", 1123)),
    ],
)
def test_ntp_server_spec(spec, parsed):
    assert sntp.parse_ntp_server(spec) == parsed
