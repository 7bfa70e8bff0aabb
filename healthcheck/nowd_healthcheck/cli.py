"""The command line: options, the run's one deadline, exit codes.

Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments), the
monitoring-plugins convention. ``--timeout`` bounds the whole run: the
addresses and the NTP server are asked in parallel, and whatever has not
answered by then is reported as such, so the line always comes out in time,
well before the 60 s after which Nagios and most schedulers kill a check.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass

from . import LABEL, PROG, UNKNOWN, UsageError, __version__
from .judging import Report, Threshold, judge
from .output import _plain, emit
from .sampling import DEFAULT_PATH, Deadline, Target, describe_error, measure, parse_target
from .sntp import LocalClock, parse_ntp_server, refresh_clock

DEFAULT_WARNING = "0.5"
DEFAULT_CRITICAL = "1.0"
# Each sample meets an instance the balancer picks for that connection: with N
# instances behind an address and picks at random (an NLB hashes each new
# flow), one instance is missed by all 10 samples with probability
# (1 - 1/N)^10: 0.1% for 2, 1.7% for 3, 5.6% for 4. Round robin meets all.
DEFAULT_SAMPLES = 10
DEFAULT_TIMEOUT_S = 10.0
# Kept back from the deadline for judging, printing and exiting.
MAX_MARGIN_S = 0.5
MARGIN_SHARE = 0.15


@dataclass
class Options:
    target: Target
    warning: Threshold
    critical: Threshold
    samples: int
    timeout_s: float
    addresses: list[str]  # given with --address; empty: resolve the name
    family: int
    ntp_server: str | None
    json: bool
    interval_s: float | None


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse would exit 2: CRITICAL
        raise UsageError(message)


def threshold(text: str) -> Threshold:
    try:
        return Threshold.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError(f"must be a positive number: {text!r}")
    return value


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {text!r}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = _ArgumentParser(
        prog=PROG,
        description="Check that a nowd service is up and its clock is within limits. "
        "Exit 0 OK, 1 WARNING, 2 CRITICAL, 3 UNKNOWN (bad arguments).",
    )
    parser.add_argument(
        "url", help=f"the service's URL, e.g. http://HOST/now (path defaults to {DEFAULT_PATH})"
    )
    parser.add_argument(
        "-w",
        "--warning",
        type=threshold,
        default=DEFAULT_WARNING,
        metavar="RANGE",
        help="WARNING when the offset is outside RANGE, in seconds: 0.5 is an "
        "absolute offset, or a monitoring-plugins range (a:b, ~:b, a:, "
        "@a:b) on the signed offset (default %(default)s)",
    )
    parser.add_argument(
        "-c",
        "--critical",
        type=threshold,
        default=DEFAULT_CRITICAL,
        metavar="RANGE",
        help="CRITICAL likewise (default %(default)s)",
    )
    parser.add_argument(
        "-n",
        "--samples",
        type=positive_int,
        default=DEFAULT_SAMPLES,
        help="requests per address, each on a new connection (default %(default)s)",
    )
    parser.add_argument(
        "-t",
        "--timeout",
        type=positive_float,
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help="limit for the whole check (default %(default)g)",
    )
    parser.add_argument(
        "--ntp-server",
        metavar="HOST[:PORT]",
        help="measure the local clock against this NTP server first, "
        "with one query (default: trust the local clock)",
    )
    parser.add_argument(
        "--address",
        action="append",
        default=[],
        metavar="ADDRESS",
        help="check this address instead of resolving the URL's host "
        "(repeatable; the Host header stays the URL's)",
    )
    family = parser.add_mutually_exclusive_group()
    family.add_argument(
        "-4",
        dest="family",
        action="store_const",
        const=socket.AF_INET,
        default=socket.AF_UNSPEC,
        help="IPv4 addresses only",
    )
    family.add_argument(
        "-6", dest="family", action="store_const", const=socket.AF_INET6, help="IPv6 addresses only"
    )
    parser.add_argument("--json", action="store_true", help="one JSON object per check")
    parser.add_argument(
        "--interval",
        type=positive_float,
        metavar="SECONDS",
        help="check again every SECONDS, one line each, until SIGINT or SIGTERM",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


THRESHOLD_FLAGS = {
    "-w": "--warning",
    "--warning": "--warning",
    "-c": "--critical",
    "--critical": "--critical",
}


def _join_negative_ranges(argv: list[str]) -> list[str]:
    """`-w -0.2:0.5` as `--warning=-0.2:0.5`: argparse would take a value
    that starts with "-" for an option (-4 and -6 look like numbers to it)."""
    joined: list[str] = []
    args = iter(argv)
    for arg in args:
        if arg in THRESHOLD_FLAGS:
            value = next(args, None)
            if value is not None and value.startswith("-"):
                joined.append(f"{THRESHOLD_FLAGS[arg]}={value}")
                continue
            joined.append(arg)
            if value is not None:
                joined.append(value)
            continue
        joined.append(arg)
    return joined


def parse_options(parser: argparse.ArgumentParser, argv: list[str] | None) -> Options:
    args = parser.parse_args(_join_negative_ranges(sys.argv[1:] if argv is None else argv))
    if args.warning.plain and args.critical.plain and args.warning.end > args.critical.end:
        raise UsageError(f"--warning {args.warning.spec} is above --critical {args.critical.spec}")
    addresses = []
    for address in args.address:
        address = address.strip("[]")
        try:
            socket.inet_pton(socket.AF_INET6 if ":" in address else socket.AF_INET, address)
        except OSError:
            raise UsageError(f"--address {address!r} is not an IP address") from None
        addresses.append(address)
    if args.ntp_server is not None:
        parse_ntp_server(args.ntp_server)  # report a bad spec now, as a usage error
    return Options(
        parse_target(args.url),
        args.warning,
        args.critical,
        args.samples,
        args.timeout,
        addresses,
        args.family,
        args.ntp_server,
        args.json,
        args.interval,
    )


def process_age_s() -> float:
    """How long ago this process started (Python's own start-up included, which
    the scheduler's clock counts too); 0 where /proc cannot tell."""
    try:
        with open("/proc/self/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        started_s = int(fields[19]) / os.sysconf("SC_CLK_TCK")  # field 22: starttime
        return max(0.0, time.clock_gettime(time.CLOCK_BOOTTIME) - started_s)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0.0


def check(options: Options, previous: LocalClock | None, spent_s: float = 0.0) -> Report:
    """One check: the NTP server and every address at once, all by one deadline
    (--timeout, less what was spent before, less a margin to print in)."""
    margin_s = min(MAX_MARGIN_S, options.timeout_s * MARGIN_SHARE)
    deadline = Deadline(options.timeout_s - spent_s - margin_s)
    clock: list[LocalClock] = []
    ntp = threading.Thread(
        target=lambda: clock.append(
            refresh_clock(options.ntp_server, previous, deadline, options.timeout_s)
        ),
        daemon=True,
    )
    ntp.start()
    service = measure(
        options.target,
        options.addresses,
        options.family,
        options.samples,
        deadline,
        options.timeout_s,
    )
    ntp.join(max(deadline.remaining(), 0))
    if not clock:  # the NTP server did not answer in time
        clock.append(
            LocalClock(
                "ntp",
                server=options.ntp_server,
                queries=1,
                error=f"no answer within {options.timeout_s:g}s",
                measured_at=time.monotonic(),
            )
        )
    return judge(service, clock[0], options.warning, options.critical)


class _Stop(BaseException):
    """SIGINT or SIGTERM arrived (a BaseException, like KeyboardInterrupt, so
    that no "except Exception" on the way takes it for a failed request)."""


def _on_signal(signum: int, _frame) -> None:
    raise _Stop(signum)


def run(options: Options, spent_s: float = 0.0) -> int:
    if options.interval_s is None:
        report = check(options, None, spent_s)
        emit(report, options.target.url, options.json)
        return report.status
    clock: LocalClock | None = None
    next_at = time.monotonic()
    while True:
        report = check(options, clock)
        clock = report.clock
        emit(report, options.target.url, options.json)
        next_at += options.interval_s
        now = time.monotonic()
        if next_at < now:  # a check ran over: skip the missed turns
            next_at = now + options.interval_s - (now - next_at) % options.interval_s
        time.sleep(next_at - now)


def main(argv: list[str] | None = None, spent_s: float = 0.0) -> int:
    """The check; spent_s: time already gone from the --timeout (start-up)."""
    parser = build_parser()
    try:
        options = parse_options(parser, argv)
    except UsageError as error:
        print(f"{LABEL} UNKNOWN: {_plain(str(error))}")
        parser.print_usage(sys.stderr)
        return UNKNOWN
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return run(options, spent_s)
    except _Stop as stop:
        # Stopping a repeating check is its normal end; a one-shot check cut
        # short says so the usual Unix way, 128 + the signal's number.
        return 0 if options.interval_s is not None else 128 + stop.args[0]
    except BrokenPipeError:
        return 0 if options.interval_s is not None else UNKNOWN
    except Exception as error:  # noqa: BLE001 - never a traceback; should not happen
        print(
            f"{LABEL} UNKNOWN: internal error: {_plain(describe_error(error, options.timeout_s))}"
        )
        return UNKNOWN
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def cli() -> None:
    """The nowd-healthcheck command."""
    status = main(spent_s=process_age_s())
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        # stdout went away (a closed pipe): do not let Python complain at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    sys.exit(status)
