"""Against the real nowd binary on loopback.

The binary is $NOWD_BINARY (the top Makefile sets it), else the release build
in ../target. A missing binary fails these tests: it is not a reason to skip.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import PROJECT, ipv6_loopback_available, run_check
from nowd_testing import free_port

DEFAULT_BINARY = PROJECT.parent / "target" / "x86_64-unknown-linux-musl" / "release" / "nowd"
OFFSET_LIMIT_S = 0.005  # nowd and the check share one clock: only the method's error


# nowd's clock probe goes to a loopback port nobody answers on (discard), not
# to its default 169.254.169.123: the tests send nothing beyond loopback.
LOOPBACK_REFERENCE = ("--time-reference", "127.0.0.1:9")


def nowd_binary() -> Path:
    path = Path(os.environ.get("NOWD_BINARY") or DEFAULT_BINARY)
    if not (path.is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"no nowd binary at {path}: build it first (make build at the top)")
    return path


class Nowd:
    def __init__(
        self, listen_host: str, connect_host: str, credentials: Path | None = None
    ) -> None:
        self.port = free_port(connect_host)
        listen = f"[{listen_host}]" if ":" in listen_host else listen_host
        env = dict(os.environ)
        if credentials is not None:  # as systemd's LoadCredential= passes them
            env["CREDENTIALS_DIRECTORY"] = str(credentials)
        self.proc = subprocess.Popen(
            [
                str(nowd_binary()),
                "--listen",
                f"{listen}:{self.port}",
                "--log-level",
                "warn",
                *LOOPBACK_REFERENCE,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=env,
        )
        host = f"[{connect_host}]" if ":" in connect_host else connect_host
        self.base = f"http://{host}:{self.port}"
        self.url = f"{self.base}/now"
        deadline = time.monotonic() + 10
        while True:  # until it answers
            try:
                with socket.create_connection((connect_host, self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    pytest.fail(f"nowd did not start: {self.proc.stderr.read()!r}")
                time.sleep(0.02)

    def healthz(self):
        try:
            with urllib.request.urlopen(f"{self.base}/healthz", timeout=2) as answer:
                return answer.status, answer.read().decode().strip()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode().strip()

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def nowd():
    server = Nowd("127.0.0.1", "127.0.0.1")
    yield server
    server.stop()


def check_between_healthz_reads(nowd: Nowd, *args: str):
    """The check, and what nowd's /healthz said just before and just after it:
    a 503's reason is nowd's reference probe's last result, which may change
    while the check runs, so the check reports one of the two."""
    readings = [nowd.healthz()]
    run = run_check(nowd.url, *args)
    readings.append(nowd.healthz())
    return run, readings


def ok_or_only_unsynchronised(report: dict, healthz) -> bool:
    """OK; or WARNING only because the kernel says its clock is unsynchronised,
    which the output says in nowd's own words."""
    status, reason = healthz
    if status == 200:
        return report["status"] == "OK" and report["reasons"] == []
    label = f"127.0.0.1 instance {host_instance_id()[:8]}"
    return (
        status == 503
        and "not synchronized" in reason
        and report["status"] == "WARNING"
        and report["reasons"] == [f"{label}: healthz 503: {reason}"]
    )


def test_nowd_offset_near_zero(nowd):
    run, readings = check_between_healthz_reads(nowd, "--json")
    report = run.json
    # One clock on both sides: the error is the method's, at most half the
    # kept sample's round trip (a fraction of a millisecond on an idle loopback).
    assert abs(report["offset_s"]) <= report["rtt_s"] / 2 + OFFSET_LIMIT_S, report
    address = report["addresses"][0]
    assert address["server"] == "nowd" and address["time_source"] == "body"
    assert address["samples"] == 10
    # Every sample named the one instance, and its /healthz was read.
    (instance,) = address["instances"]
    assert instance["instance"] == host_instance_id()
    assert instance["samples"] == 10 and instance["healthz"] is not None
    assert any(ok_or_only_unsynchronised(report, healthz) for healthz in readings), (
        readings,
        report,
    )
    assert run.returncode == {"OK": 0, "WARNING": 1}[report["status"]]


def test_nowd_text_line(nowd):
    run, readings = check_between_healthz_reads(nowd)
    assert "(rtt " in run.line and "1 address, 1 instance; local clock trusted)" in run.line
    label = f"127.0.0.1 instance {host_instance_id()[:8]}"

    def says(status, reason):
        if status == 200:
            return run.line.startswith("NOWD OK: offset ")
        return (
            status == 503
            and run.line.startswith("NOWD WARNING: offset ")
            and f" - {label}: healthz 503: {reason} | offset=" in run.line
        )

    assert any(says(status, reason) for status, reason in readings), (readings, run)


def test_nowd_skew_seen_through_ntp(nowd, sntp_responder):
    """nowd's clock is this machine's: an NTP server 1.5 s ahead makes both
    1.5 s slow, and the check says so."""
    ntp = sntp_responder(offset=+1.5)
    run = run_check(nowd.url, "--ntp-server", ntp.spec, "--json")
    assert (run.returncode, run.json["status"]) == (2, "CRITICAL"), run
    assert abs(run.json["offset_s"] + 1.5) < OFFSET_LIMIT_S + run.json["uncertainty_s"]


@pytest.mark.skipif(not ipv6_loopback_available(), reason="no IPv6 loopback")
def test_nowd_dual_stack_both_addresses():
    """nowd on [::] takes IPv4 and IPv6: both addresses are checked."""
    server = Nowd("::", "::1")
    try:
        url = f"http://localhost:{server.port}/now"
        run = run_check(url, "--address", "127.0.0.1", "--address", "::1", "--json")
    finally:
        server.stop()
    report = run.json
    assert [a["address"] for a in report["addresses"]] == ["127.0.0.1", "::1"]
    for address in report["addresses"]:
        assert address["error"] is None, address
        assert abs(address["offset_s"]) < OFFSET_LIMIT_S, address
    assert report["status"] in ("OK", "WARNING"), report


# The instance id -------------------------------------------------------------

NOWD_APP_ID = "a987e796b82e44898e3ae4e4b6b53060"  # src/instance.rs


def app_specific_id(machine_id: str) -> str:
    """sd_id128_get_machine_app_specific(), as systemd's sd-id128 computes it."""
    digest = bytearray(
        hmac.new(bytes.fromhex(machine_id), bytes.fromhex(NOWD_APP_ID), hashlib.sha256).digest()[
            :16
        ]
    )
    digest[6] = (digest[6] & 0x0F) | 0x40
    digest[8] = (digest[8] & 0x3F) | 0x80
    return digest.hex()


def host_instance_id() -> str:
    """What nowd, run as these tests run it, derives from /etc/machine-id."""
    return app_specific_id(Path("/etc/machine-id").read_text().strip())


def instance_headers(server: Nowd, path: str = "/now") -> list:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    try:
        conn.request("GET", path)
        answer = conn.getresponse()
        answer.read()
        return answer.headers.get_all("Nowd-Instance") or []
    finally:
        conn.close()


def nowd_with_machine_id(tmp_path: Path, machine_id: str | None) -> Nowd:
    credentials = tmp_path / f"credentials-{machine_id}"
    credentials.mkdir()
    if machine_id is not None:
        (credentials / "machine-id").write_text(machine_id + "\n")
    return Nowd("127.0.0.1", "127.0.0.1", credentials=credentials)


def test_instance_id_is_systemds_app_specific_id(tmp_path):
    """systemd-id128 derives the same id from this host's machine id."""
    machine_id = Path("/etc/machine-id").read_text().strip()
    expected = subprocess.run(
        ["systemd-id128", "machine-id", f"--app-specific={NOWD_APP_ID}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    server = nowd_with_machine_id(tmp_path, machine_id)
    try:
        assert instance_headers(server) == [expected]
        assert instance_headers(server, "/healthz") == [expected]
        assert instance_headers(server, "/nowhere") == [expected]  # a 404 too
    finally:
        server.stop()
    assert machine_id not in expected


def test_instance_id_per_machine(tmp_path):
    """Two machines, two ids, each stable, neither revealing its machine id."""
    first, second = "0123456789abcdef0123456789abcdef", "fedcba9876543210fedcba9876543210"
    ids = []
    for machine_id in (first, second):
        server = nowd_with_machine_id(tmp_path, machine_id)
        try:
            seen = instance_headers(server) + instance_headers(server)
        finally:
            server.stop()
        assert seen == [app_specific_id(machine_id)] * 2
        assert machine_id[:8] not in seen[0]
        ids.append(seen[0])
    assert ids[0] != ids[1]


@pytest.mark.parametrize("machine_id", [None, "", "uninitialized"])
def test_no_machine_id_no_instance_header(tmp_path, machine_id):
    """Without a usable machine id nowd still serves, without an id, and says why."""
    server = nowd_with_machine_id(tmp_path, machine_id)
    try:
        assert instance_headers(server) == []
        run = run_check(server.url, "--json")
        assert run.json["addresses"][0]["error"] is None, run
    finally:
        server.stop()
    assert b"answers carry no instance id" in server.proc.stderr.read()
