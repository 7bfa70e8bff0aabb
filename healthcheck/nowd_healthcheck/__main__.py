"""python3 -m nowd_healthcheck URL ...: the same as the nowd-healthcheck command."""

from nowd_healthcheck.cli import cli

cli()
