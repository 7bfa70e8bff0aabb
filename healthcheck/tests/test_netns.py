"""The check as its users run it: from an IPv4-only host, by a dual-stack
name, through a balancer that picks a backend per connection (netns.Site).

Both used to fail: the AAAA addresses made a healthy service CRITICAL
("Network is unreachable"), and one skewed backend of two went unseen, all
samples riding one keep-alive connection to one backend.
"""

from __future__ import annotations

import os
import re

import pytest
from conftest import TimeServer, run_check
from netns import NAME, SERVER_ADDRESS, Site
from nowd_testing import in_netns
from test_nowd import LOOPBACK_REFERENCE, app_specific_id, nowd_binary

if os.geteuid() != 0:  # `make test` runs as root and so runs these
    pytest.skip("needs root (network namespaces): run by make test", allow_module_level=True)

URL = f"http://{NAME}/now"
RUNS = 5  # "on every run": a verdict left to chance shows within five
GOOD, BAD = "a" * 32, "b" * 32  # instance ids as nowd sends them


@pytest.fixture
def site():
    site = Site()
    servers = []
    site.time_servers = servers
    yield site
    for server in servers:
        server.close()
    site.close()


def backends(site: Site, *specs: dict) -> list:
    """TimeServers in the server namespace, behind the balancer."""
    started = [in_netns(site.server, lambda spec=spec: TimeServer(**spec)) for spec in specs]
    site.time_servers.extend(started)
    site.balance([server.port for server in started])
    return started


def check(site: Site, *args: str):
    return run_check(URL, *args, prefix=site.client_prefix)


SKIPPED = "2 IPv6 addresses skipped: no IPv6 route"


def test_ipv4_only_host_real_nowd_behind_the_balancer(site, tmp_path):
    """Two real nowd, each with its own machine id: OK (or WARNING only for
    this machine's unsynchronised kernel clock), both instances seen, the
    AAAA addresses skipped and said so."""
    ports, ids = [8001, 8002], []
    for port, machine_id in zip(ports, ("1" * 32, "2" * 32), strict=True):
        credentials = tmp_path / machine_id
        credentials.mkdir()
        (credentials / "machine-id").write_text(machine_id + "\n")
        proc = site.start_in_server(
            [
                str(nowd_binary()),
                "--listen",
                f"127.0.0.1:{port}",
                "--log-level",
                "warn",
                *LOOPBACK_REFERENCE,
            ],
            env={**os.environ, "CREDENTIALS_DIRECTORY": str(credentials)},
        )
        site.wait_listening("127.0.0.1", port, proc)
        ids.append(app_specific_id(machine_id))
    site.balance(ports)
    for _ in range(3):
        run = check(site, "--json")
        report = run.json
        assert [a["address"] for a in report["addresses"]] == [SERVER_ADDRESS], run
        assert report["skipped"] == [
            {"address": a, "reason": "Network is unreachable"}
            for a in ("2001:db8:11::1", "2001:db8:11::2")
        ], report
        (address,) = report["addresses"]
        assert sorted(i["instance"] for i in address["instances"]) == sorted(ids)
        # One clock for the check and both nowd: each offset is within what
        # the check claims for it.
        assert all(
            abs(i["offset_s"]) <= i["uncertainty_s"] + 0.005 for i in address["instances"]
        ), report
        unsynchronised = [r for r in report["reasons"] if "healthz 503" not in r]
        assert unsynchronised == [] and report["status"] in ("OK", "WARNING"), report
    line = check(site).line
    assert f"1 address, 2 instances; {SKIPPED}; local clock trusted)" in line, line


@pytest.mark.parametrize("instances", [True, False], ids=["named", "unnamed"])
def test_one_bad_instance_is_critical_on_every_run(site, instances):
    """One of two backends 1.5 s fast: CRITICAL every time. Named instances are
    told apart; unnamed samples are each judged, so the bad one still counts."""
    good, bad = backends(
        site,
        {"skew": 0.0, "server_header": "nowd", "instance": GOOD if instances else None},
        {"skew": +1.5, "server_header": "nowd", "instance": BAD if instances else None},
    )
    for _ in range(RUNS):
        run = check(site)
        assert run.returncode == 2, run
        assert run.line.startswith("NOWD CRITICAL: offset +1.5") or run.line.startswith(
            "NOWD CRITICAL: offset +1.4"
        ), run
        assert SKIPPED in run.line
    assert len(good.readings) == len(bad.readings) == RUNS * 5  # round robin, 10 a run
    if instances:
        report = check(site, "--json").json
        (address,) = report["addresses"]
        by_id = {i["instance"]: i for i in address["instances"]}
        assert (by_id[GOOD]["status"], by_id[BAD]["status"]) == ("OK", "CRITICAL"), report
        assert by_id[GOOD]["samples"] == by_id[BAD]["samples"] == 5
        assert report["instance"] == BAD
        assert re.match(
            rf"^{re.escape(SERVER_ADDRESS)} instance bbbbbbbb: offset \+1\.[45]\d\ds "
            r"±0\.\d{3}s beyond 1s$",
            report["reasons"][0],
        ), report


def test_both_right_is_ok_on_every_run(site):
    backends(
        site,
        {"skew": +0.1, "server_header": "nowd", "instance": GOOD},
        {"skew": -0.1, "server_header": "nowd", "instance": BAD},
    )
    for _ in range(RUNS):
        run = check(site)
        assert run.returncode == 0, run
        assert run.line.startswith("NOWD OK: offset "), run
        assert "(rtt " in run.line and f"1 address, 2 instances; {SKIPPED};" in run.line


def test_families_forced(site):
    backends(site, {"skew": 0.0})
    run = check(site, "-4")
    assert run.returncode == 0, run
    assert "skipped" not in run.line
    run = check(site, "-6")
    assert run.returncode == 2, run
    assert (
        run.line == f"NOWD CRITICAL: no time measured (0 addresses; {SKIPPED}; local clock "
        f"trusted) - no usable address for {NAME}: {SKIPPED}"
    ), run
