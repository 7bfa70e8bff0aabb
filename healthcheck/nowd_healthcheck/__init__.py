"""nowd-healthcheck: is a nowd service up, and is its clock right?

One module per concern:

    sampling   the service over HTTP: names, addresses, one sample per connection
    sntp       the local clock against an NTP server (one query per run)
    judging    thresholds (monitoring-plugins ranges) and verdicts
    output     the one line with performance data, or JSON
    cli        the command line, the run's single deadline, exit codes

Standard library only, Python 3.9 or later. The method is in README.md.
"""

__version__ = "0.2.0"

PROG = "nowd-healthcheck"
LABEL = "NOWD"

# Exit codes and names of the monitoring-plugins convention.
OK, WARNING, CRITICAL, UNKNOWN = 0, 1, 2, 3
STATUS_NAMES = {OK: "OK", WARNING: "WARNING", CRITICAL: "CRITICAL", UNKNOWN: "UNKNOWN"}

NS_PER_S = 1_000_000_000


class UsageError(Exception):
    """A bad command line: reported as UNKNOWN (exit 3)."""


class CheckError(Exception):
    """The service (or the NTP server) gave no usable answer."""
