"""-w and -c in the monitoring-plugins range syntax, and performance data as
the plugin guidelines write it."""

from __future__ import annotations

import math
import re

import pytest
from conftest import dual_stack_servers, ipv6_loopback_available, run_check
from nowd_healthcheck import CRITICAL, OK, WARNING
from nowd_healthcheck.judging import Threshold, judge_offset
from nowd_healthcheck.output import perf_label


@pytest.mark.parametrize(
    "spec, start, end, inside",
    [
        ("0.5", -0.5, 0.5, False),  # plain: an absolute offset
        ("0.1:", 0.1, math.inf, False),
        ("~:0.5", -math.inf, 0.5, False),
        ("-0.2:0.5", -0.2, 0.5, False),
        (":0.5", 0.0, 0.5, False),  # no start: 0, as the guidelines have it
        ("@-0.1:0.1", -0.1, 0.1, True),
    ],
)
def test_range_forms(spec, start, end, inside):
    threshold = Threshold.parse(spec)
    assert (threshold.start, threshold.end, threshold.inside) == (start, end, inside)


@pytest.mark.parametrize(
    "offset, uncertainty, warning, critical, status",
    [
        (-0.7, 0.01, "~:0.5", "~:1", OK),  # only fast clocks alert
        (+0.7, 0.01, "~:0.5", "~:1", WARNING),
        (-0.3, 0.01, "-0.2:0.5", "-1:1", WARNING),
        (-0.15, 0.1, "-0.2:0.5", "-1:1", WARNING),  # could be -0.25: cannot tell
        (+0.0, 0.01, "0.5", "@-0.1:0.1", CRITICAL),  # alert inside
        (+0.05, 0.1, "0.5", "@-0.1:0.1", WARNING),  # partly inside
        (+0.3, 0.01, "0.5", "@-0.1:0.1", OK),
    ],
)
def test_ranges_judge_the_interval(offset, uncertainty, warning, critical, status):
    verdict = judge_offset(offset, uncertainty, Threshold.parse(warning), Threshold.parse(critical))
    assert verdict[0] == status, verdict


def test_ranges_on_the_command_line(time_server):
    server = time_server(skew=-0.3)
    run = run_check(server.url, "-w", "-0.2:0.5", "-c", "-1:1", "--json")
    assert (run.returncode, run.json["reasons"]) == (1, ["127.0.0.1: offset outside -0.2:0.5"])
    run = run_check(server.url, "-w", "~:0.2", "-c", "~:0.4")
    assert run.returncode == 0, run
    assert ";~:0.2;~:0.4 " in run.line  # thresholds in perfdata as given
    run = run_check(server.url, "--critical=@-0.5:0", "--json")
    assert (run.returncode, run.json["reasons"]) == (2, ["127.0.0.1: offset in @-0.5:0"])


@pytest.mark.parametrize(
    "label, written",
    [
        ("offset", "offset"),
        ("offset 10.0.1.5", "'offset 10.0.1.5'"),
        ("it's", "'it''s'"),
        ("a=b", "a_b"),
    ],
)
def test_perf_label_quoting(label, written):
    assert perf_label(label) == written


# 'label'=value[UOM];[warn];[crit];[min];[max], the guidelines' grammar.
PERF_ITEM = re.compile(
    r"('(?:[^']|'')+'|[^ '=]+)=(-?[\d.]+)(s|%|B|c)?"
    r"(?:;([^; ]*)(?:;([^; ]*)(?:;([^; ]*)(?:;([^; ]*))?)?)?)?(?: |$)"
)


def parse_perfdata(text: str) -> dict:
    items, position = {}, 0
    while position < len(text):
        match = PERF_ITEM.match(text, position)
        assert match, text[position:]
        label = match.group(1)
        if label.startswith("'"):
            label = label[1:-1].replace("''", "'")
        items[label] = match.groups()[1:]
        position = match.end()
    return items


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_perfdata_per_address(time_server):
    """Two addresses (two zones of a balancer): a quoted offset for each."""
    v4, _v6 = dual_stack_servers(time_server, {"skew": +0.1}, {"skew": -0.2})
    run = run_check(f"http://localhost:{v4.port}/now", "--address", "127.0.0.1", "--address", "::1")
    assert run.returncode == 0, run
    perfdata = parse_perfdata(run.line.split(" | ", 1)[1])
    assert set(perfdata) == {
        "offset",
        "uncertainty",
        "rtt",
        "offset 127.0.0.1",
        "offset [::1]",
        "instances",
    }
    value, unit, warn, crit, minimum, maximum = perfdata["offset [::1]"]
    assert abs(float(value) + 0.2) < 0.01 and unit == "s"
    assert (warn, crit, minimum, maximum) == ("-0.5:0.5", "-1:1", None, None)
    assert perfdata["rtt"][4] == "0" and perfdata["uncertainty"][4] == "0"
    assert perfdata["offset"] == perfdata["offset [::1]"]  # the worst
