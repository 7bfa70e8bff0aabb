"""Every address of the name is checked, with the name in the Host header;
nowd's /healthz is read; the worst result is the service's."""

from __future__ import annotations

import json
import re
import socket

import pytest
from conftest import dual_stack_servers, ipv6_loopback_available, run_check
from nowd_healthcheck import cli
from nowd_healthcheck.judging import ceil_ms, format_offset

needs_ipv6 = pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")


def test_host_header_is_the_names(time_server):
    server = time_server()
    run = run_check(
        f"http://localhost:{server.port}/now", "--address", "127.0.0.1", "--samples", "2"
    )
    assert run.returncode == 0, run
    assert server.requests == [("/now", f"localhost:{server.port}")] * 2


@needs_ipv6
def test_worst_address_is_reported(time_server):
    good, bad = dual_stack_servers(time_server, {"skew": 0.0}, {"skew": +1.5})
    run = run_check(
        f"http://localhost:{good.port}/now", "--address", "127.0.0.1", "--address", "::1", "--json"
    )
    report = run.json
    assert (run.returncode, report["status"]) == (2, "CRITICAL"), run
    assert [a["address"] for a in report["addresses"]] == ["127.0.0.1", "::1"]
    assert [a["status"] for a in report["addresses"]] == ["OK", "CRITICAL"]
    assert abs(report["offset_s"] - 1.5) <= report["rtt_s"] / 2 + 0.005
    offset, uncertainty = format_offset(report["offset_s"]), ceil_ms(report["uncertainty_s"])
    assert report["reasons"] == [f"[::1]: offset {offset} ±{uncertainty:.3f}s beyond 1s"]
    # Both were asked, each with the name.
    assert good.requests[0] == ("/now", f"localhost:{good.port}")
    assert bad.requests[0] == ("/now", f"localhost:{good.port}")
    text = run_check(
        f"http://localhost:{good.port}/now", "--address", "127.0.0.1", "--address", "::1"
    ).line
    assert text.startswith("NOWD CRITICAL: offset +1.5") or text.startswith(
        "NOWD CRITICAL: offset +1.4"
    )
    assert "2 addresses" in text


@needs_ipv6
def test_ipv6_literal_url(time_server):
    server = time_server(host="::1", skew=-0.3)
    run = run_check(server.url, "--json")
    assert run.returncode == 0, run
    assert run.json["addresses"][0]["address"] == "::1"
    assert server.requests[0][1] == f"[::1]:{server.port}"


def test_localhost_every_resolved_address(time_server):
    """The URL's name is resolved, and each address it has is checked."""
    resolved = []
    for info in socket.getaddrinfo("localhost", None, 0, socket.SOCK_STREAM):
        if info[4][0] not in resolved:
            resolved.append(info[4][0])
    first = time_server(host=resolved[0])
    for address in resolved[1:]:
        time_server(host=address, port=first.port)
    run = run_check(f"http://localhost:{first.port}/now", "--json")
    assert run.returncode == 0, run
    assert [a["address"] for a in run.json["addresses"]] == resolved


@needs_ipv6
def test_name_with_two_addresses(time_server, monkeypatch, capsys):
    """A load balancer's name: getaddrinfo gives several addresses (and each
    more than once, one per socket type); each is checked once."""
    good, bad = dual_stack_servers(time_server, {"skew": +0.1}, {"skew": -0.7})
    real_getaddrinfo = socket.getaddrinfo

    def fake_getaddrinfo(host, port, family=0, type=0, proto=0, flags=0):
        if host != "nlb.example":
            return real_getaddrinfo(host, port, family, type, proto, flags)
        answers = [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("127.0.0.1", port)),
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("::1", port, 0, 0)),
        ]
        return [a for a in answers if family in (0, a[0])]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    url = f"http://nlb.example:{good.port}/now"

    assert cli.main([url, "--json", "--samples", "2"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert [a["address"] for a in report["addresses"]] == ["::1", "127.0.0.1"]
    assert report["status"] == "WARNING"
    assert abs(report["offset_s"] + 0.7) < 0.05  # the worst, not the first or the mean
    assert good.requests[0][1] == bad.requests[0][1] == f"nlb.example:{good.port}"

    assert cli.main([url, "-4", "--json", "--samples", "1"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [a["address"] for a in report["addresses"]] == ["127.0.0.1"]

    assert cli.main([url, "-6", "--samples", "1"]) == 1
    assert "1 address;" in capsys.readouterr().out


def test_nowd_healthz_503_is_a_warning(time_server):
    server = time_server(server_header="nowd", healthz=(503, "clock not synchronized (test)"))
    run = run_check(server.url)
    assert run.returncode == 1, run
    assert run.line.startswith("NOWD WARNING: offset ")
    assert "127.0.0.1: healthz 503: clock not synchronized (test)" in run.line
    # /healthz once, on the first sample's connection; then the other nine.
    assert server.paths() == ["/now", "/healthz"] + ["/now"] * 9


def test_nowd_healthz_200_is_ok(time_server):
    server = time_server(server_header="nowd/0.1.0", healthz=(200, "ok: clock synchronized"))
    run = run_check(server.url, "--json")
    assert run.returncode == 0, run
    assert run.json["addresses"][0]["healthz"] == {
        "status": 200,
        "reason": "ok: clock synchronized",
    }


def test_healthz_503_and_a_bad_clock_both_show(time_server):
    server = time_server(server_header="nowd", skew=+1.5, healthz=(503, "unsynchronised"))
    run = run_check(server.url, "--json")
    assert (run.returncode, run.json["status"]) == (2, "CRITICAL"), run
    assert run.json["reasons"] == [
        "127.0.0.1: offset beyond 1s",
        "127.0.0.1: healthz 503: unsynchronised",
    ]


def test_other_servers_healthz_is_not_read(time_server):
    server = time_server(server_header="nginx", healthz=(503, "not ours"))
    run = run_check(server.url, "--samples", "3")
    assert run.returncode == 0, run
    assert server.paths() == ["/now"] * 3


def test_nowd_healthz_hanging_is_critical(time_server):
    """/now answers but /healthz hangs: the address is not healthy, and the
    reason says which request hung."""
    server = time_server(server_header="nowd", delays=(0.0, 3.0))
    run = run_check(server.url, "--samples", "1", "--timeout", "1")
    assert run.returncode == 2, run
    # /now did answer: an offset was measured (near 0, within what a loaded machine's rtt allows).
    assert re.match(r"NOWD CRITICAL: offset [+-]0\.\d{3}s ±", run.line), run
    assert " - 127.0.0.1: healthz: no answer within 1s | offset=" in run.line
    assert run.elapsed < 2.5
