"""Servers with known clock skews: the verdict, the exit code, the offset."""

from __future__ import annotations

import math
import re

import pytest
from conftest import run_check

TOLERANCE_S = 0.005  # besides RTT / 2: scheduling on a busy test machine


def assert_offset_near(report: dict, skew: float, resolution: float = 0.0) -> None:
    """The measured offset is the injected skew, within what the check claims:
    half the round trip and half the timestamp's step (the offset is centred
    on the step)."""
    rtt = report["rtt_s"]
    assert rtt is not None and rtt >= 0
    assert report["uncertainty_s"] >= (rtt + resolution) / 2 - 1e-9
    error = abs(report["offset_s"] - skew)
    assert error <= (rtt + resolution) / 2 + TOLERANCE_S, (report, skew)


@pytest.mark.parametrize(
    "skew, status, code",
    [
        (0.0, "OK", 0),
        (+0.3, "OK", 0),
        (-0.3, "OK", 0),
        (+0.7, "WARNING", 1),
        (-0.7, "WARNING", 1),
        (+1.5, "CRITICAL", 2),
        (-1.5, "CRITICAL", 2),
    ],
)
def test_skew_verdict_and_offset(time_server, skew, status, code):
    server = time_server(skew=skew)
    run = run_check(server.url, "--json")
    report = run.json
    assert (run.returncode, report["status"]) == (code, status), run
    assert_offset_near(report, skew)
    assert report["addresses"][0]["samples"] == 10  # the default
    if status == "OK":
        assert report["reasons"] == []
    else:
        assert "beyond" in report["reasons"][0]


LINE_RE = re.compile(
    r"^NOWD (OK|WARNING|CRITICAL): offset ([+-]\d+\.\d{3})s ±(\d+\.\d{3})s "
    r"\(rtt [\d.]+ms, 1 address; local clock trusted\)(?: - .+)? \| (.+)$"
)


@pytest.mark.parametrize(
    "skew, status, code", [(+0.3, "OK", 0), (+1.5, "CRITICAL", 2), (-0.7, "WARNING", 1)]
)
def test_text_line(time_server, skew, status, code):
    """One line in the monitoring-plugins form: NOWD STATUS: text | perfdata."""
    server = time_server(skew=skew)
    run = run_check(server.url)
    match = LINE_RE.match(run.line)
    assert match, run
    assert (match.group(1), run.returncode) == (status, code)
    offset, uncertainty = float(match.group(2)), float(match.group(3))
    assert abs(offset - skew) <= uncertainty + 0.001, run
    fields = dict(item.split("=") for item in match.group(4).split())
    perf_offset, warning, critical = fields["offset"].split(";")
    assert abs(float(perf_offset.rstrip("s")) - offset) < 0.0006
    # Thresholds in range form: "0.5", an absolute offset, is -0.5:0.5.
    assert (warning, critical) == ("-0.5:0.5", "-1:1")
    assert fields["rtt"].endswith(";;;0") and fields["uncertainty"].endswith(";;;0")
    assert float(fields["rtt"].split(";")[0].rstrip("s")) / 2 <= uncertainty


def test_thresholds_are_options(time_server):
    server = time_server(skew=+0.3)
    run = run_check(server.url, "--warning", "0.1", "--critical", "0.2", "--json")
    assert (run.returncode, run.json["status"]) == (2, "CRITICAL")
    run = run_check(server.url, "-w", "0.1", "-c", "0.5", "--json")
    assert (run.returncode, run.json["status"]) == (1, "WARNING")


@pytest.mark.parametrize("body", ["millis+0530", "json"])
def test_other_timestamp_forms(time_server, body):
    server = time_server(skew=-0.3, body=body)
    run = run_check(server.url, "--json")
    assert run.returncode == 0, run
    resolution = 0.001 if body == "millis+0530" else 0.0
    assert_offset_near(run.json, -0.3, resolution)


def test_whole_seconds_cannot_show_half_a_second(time_server):
    """A timestamp with 1 s steps: too coarse to say "within 0.5 s"."""
    server = time_server(skew=0.0, body="seconds+0000")
    run = run_check(server.url, "--json")
    report = run.json
    assert (run.returncode, report["status"]) == (1, "WARNING"), run
    assert "too uncertain" in report["reasons"][0]
    assert_offset_near(report, 0.0, resolution=1.0)


def test_whole_seconds_still_show_a_large_skew(time_server):
    server = time_server(skew=+3.0, body="seconds+0000")
    run = run_check(server.url, "--json")
    assert (run.returncode, run.json["status"]) == (2, "CRITICAL"), run
    assert_offset_near(run.json, 3.0, resolution=1.0)


def test_date_header_only(time_server):
    server = time_server(skew=0.0, body="date-only")
    run = run_check(server.url, "--json")
    report = run.json
    assert (run.returncode, report["status"]) == (1, "WARNING"), run
    assert report["addresses"][0]["time_source"] == "Date header"
    assert "Date header" in report["reasons"][0]
    assert_offset_near(report, 0.0, resolution=1.0)


def test_date_header_only_large_skew(time_server):
    server = time_server(skew=-4.0, body="date-only")
    run = run_check(server.url)
    assert run.returncode == 2, run
    assert run.line.startswith("NOWD CRITICAL: offset -4.") or run.line.startswith(
        "NOWD CRITICAL: offset -3."
    ), run


def test_slow_server_widens_the_interval_not_the_error(time_server):
    """The server reads its clock 0.2 s after the request came in: the
    midpoint is then 0.1 s early, and the uncertainty says so."""
    server = time_server(skew=0.0, delays=(0.2,))
    run = run_check(server.url, "--json", "--samples", "2")
    report = run.json
    assert run.returncode == 0, run
    assert report["rtt_s"] >= 0.2
    assert report["offset_s"] > 0.05  # really biased by the delay ...
    assert_offset_near(report, 0.0)  # ... but within what the check claims


def test_too_slow_to_tell(time_server):
    """A 1.2 s round trip cannot show that the clock is within 0.5 s."""
    server = time_server(skew=0.0, delays=(1.2,))
    run = run_check(server.url, "--json", "--samples", "1")
    report = run.json
    assert (run.returncode, report["status"]) == (1, "WARNING"), run
    assert "too uncertain" in report["reasons"][0]
    assert_offset_near(report, 0.0)


def test_the_fastest_sample_is_kept(time_server):
    """Of one instance's five samples only the third is quick; it is the one kept.
    A slow sample's round trip is at least its server-side delay, however idle
    or busy the machine: only the quick one can be under it."""
    slow = 0.4
    server = time_server(skew=+0.3, delays=(slow, slow, 0.0, slow, slow), instance="i-1")
    run = run_check(server.url, "--json", "--samples", "5")
    report = run.json
    assert run.returncode == 0, run
    assert len(server.paths()) == 5
    assert report["rtt_s"] < slow, report
    assert abs(report["offset_s"] - 0.3) <= report["rtt_s"] / 2 + TOLERANCE_S


def test_new_connection_per_request(time_server):
    """A server that closes after each answer (HTTP/1.0) is still sampled."""
    server = time_server(skew=-0.3, keep_alive=False)
    run = run_check(server.url, "--json")
    assert run.returncode == 0, run
    assert len(server.paths()) == 10
    assert_offset_near(run.json, -0.3)


@pytest.mark.parametrize("skew", [-2.2, -1.2, -0.9, +0.9, +1.2, +2.2])
def test_whole_seconds_are_centred(time_server, skew):
    """A whole-second stamp S says the server's clock read somewhere in
    [S, S + 1): the offset is centred there, not on S. Knowing what the
    server's clock did read, the check's answer is predicted to within half
    the round trip; an estimate taken from S would be half a second off."""
    server = time_server(skew=skew, body="seconds+0000")
    report = run_check(server.url, "--json", "--samples", "1").json
    (reading,) = server.readings
    predicted = skew + (math.floor(reading) + 0.5 - reading)
    assert abs(report["offset_s"] - predicted) <= report["rtt_s"] / 2 + TOLERANCE_S, report
    assert abs(report["offset_s"] - skew) <= report["uncertainty_s"] + TOLERANCE_S
    assert report["uncertainty_s"] <= 0.5 + report["rtt_s"] / 2 + 1e-6
    # Near the 1 s limit: never OK; 2.2 s is CRITICAL whatever the phase (an
    # estimate from S, known to +-1 s, would call it WARNING 4 times in 5).
    expected = {"CRITICAL"} if abs(skew) > 2 else {"WARNING", "CRITICAL"}
    assert report["status"] in expected, report
