"""The report as one monitoring-plugins line, or as JSON.

The line is ``NOWD STATUS: text | perfdata``. Performance data follows the
plugin guidelines (https://www.monitoring-plugins.org/doc/guidelines.html#AEN200):
``'label'=value[unit];[warn];[crit];[min];[max]``, labels quoted when they
hold a space, a quote doubled, thresholds in range form, min and max only
where they mean something (0 for a round trip, none for a signed offset).
"""

from __future__ import annotations

import datetime
import json

from . import LABEL, STATUS_NAMES
from .judging import InstanceVerdict, Report, ceil_ms, format_offset
from .sampling import skipped_summary
from .sntp import LocalClock


def _plain(text: str) -> str:
    """Output text cannot hold "|" (it starts performance data) or a newline."""
    return " ".join(text.replace("|", "/").split())


def perf_label(label: str) -> str:
    """A label as the guidelines want it: quoted if it has a space or a quote
    (a quote inside doubled); "=" cannot appear at all."""
    label = label.replace("=", "_")
    if any(c in label for c in " '"):
        return "'" + label.replace("'", "''") + "'"
    return label


def perf_item(
    label: str,
    value: float,
    unit: str = "",
    warn: str = "",
    crit: str = "",
    minimum: str = "",
    maximum: str = "",
) -> str:
    fields = f"{value:.6f}{unit}" if isinstance(value, float) else f"{value}{unit}"
    item = f"{perf_label(label)}={fields};{warn};{crit};{minimum};{maximum}"
    return item.rstrip(";")


def describe_clock(clock: LocalClock) -> str:
    if clock.source == "trusted" or clock.error is not None:
        return "local clock trusted"
    # clock.offset_s is reference - local: positive means the local clock is slow.
    way = "slow" if clock.offset_s > 0 else "fast"
    return (
        f"local clock {abs(clock.offset_s):.3f}s {way} ±{ceil_ms(clock.uncertainty_s):.3f}s"
        f" per NTP {clock.server}"
    )


def format_rtt(rtt_s: float) -> str:
    ms = rtt_s * 1000
    return f"{ms:.1f}ms" if ms < 10 else f"{ms:.0f}ms"


def instance_count(report: Report) -> int:
    """Distinct instances that named themselves (one may be behind several addresses)."""
    return len({v.instance for v in report.instances if v.instance is not None})


def _where(report: Report) -> str:
    count = len(report.addresses)
    where = f"{count} address" + ("" if count == 1 else "es")
    instances = instance_count(report)
    if instances:
        where += f", {instances} instance" + ("" if instances == 1 else "s")
    return "; ".join([where, *skipped_summary(report.skipped), describe_clock(report.clock)])


def perfdata(report: Report) -> str:
    worst = report.worst
    if worst is None:
        return ""
    warn, crit = report.warning.perfdata(), report.critical.perfdata()
    items = [
        perf_item("offset", worst.offset_s, "s", warn, crit),
        perf_item("uncertainty", worst.uncertainty_s, "s", minimum="0"),
        perf_item("rtt", worst.sample.rtt_s, "s", minimum="0"),
    ]
    if len(report.addresses) > 1:  # one per zone of the load balancer: stable labels
        for address in report.addresses:
            if address.worst is not None:
                items.append(
                    perf_item(f"offset {address.label}", address.worst.offset_s, "s", warn, crit)
                )
    items.append(perf_item("instances", instance_count(report), minimum="0"))
    return " ".join(items)


def format_line(report: Report) -> str:
    text = f"{LABEL} {STATUS_NAMES[report.status]}: "
    worst = report.worst
    if worst is not None:
        text += (
            f"offset {format_offset(worst.offset_s)} ±{ceil_ms(worst.uncertainty_s):.3f}s "
            f"(rtt {format_rtt(worst.sample.rtt_s)}, {_where(report)})"
        )
    else:
        text += f"no time measured ({_where(report)})"
    if report.reasons:
        text += " - " + "; ".join(report.reasons)
    text = _plain(text)
    data = perfdata(report)
    return f"{text} | {data}" if data else text


def _round(value: float | None, digits: int = 9) -> float | None:
    return None if value is None else round(value, digits)


def _instance_json(verdict: InstanceVerdict) -> dict:
    return {
        "instance": verdict.instance,
        "status": STATUS_NAMES[verdict.status],
        "offset_s": _round(verdict.offset_s),
        "uncertainty_s": _round(verdict.uncertainty_s),
        "rtt_s": _round(verdict.sample.rtt_s),
        "samples": verdict.samples,
        "time_source": verdict.sample.source,
        "healthz": None
        if verdict.healthz is None
        else {"status": verdict.healthz.status, "reason": verdict.healthz.reason},
        "reasons": verdict.reasons,
    }


def format_json(report: Report, url: str) -> str:
    worst = report.worst
    clock = report.clock
    document = {
        "status": STATUS_NAMES[report.status],
        "exit_code": report.status,
        "url": url,
        "checked_at": datetime.datetime.fromtimestamp(report.checked_at, datetime.timezone.utc)
        .isoformat()
        .replace("+00:00", "Z"),
        "offset_s": _round(worst.offset_s) if worst else None,
        "uncertainty_s": _round(worst.uncertainty_s) if worst else None,
        "rtt_s": _round(worst.sample.rtt_s) if worst else None,
        "instance": worst.instance if worst else None,
        "warning": report.warning.spec,
        "critical": report.critical.spec,
        "reasons": report.reasons,
        "local_clock": {
            "source": "trusted" if clock.error is not None else clock.source,
            "ntp_server": clock.server,
            "offset_s": _round(clock.offset_s),
            "uncertainty_s": _round(clock.uncertainty_s),
            "error": clock.error,
            "queries": clock.queries,
        },
        "skipped": [{"address": address, "reason": reason} for address, reason in report.skipped],
        "addresses": [],
    }
    for address in report.addresses:
        result, best = address.result, address.worst
        entry = {
            "address": result.address,
            "status": STATUS_NAMES[address.status],
            "offset_s": _round(best.offset_s) if best else None,
            "uncertainty_s": _round(best.uncertainty_s) if best else None,
            "rtt_s": _round(best.sample.rtt_s) if best else None,
            "samples": len(result.samples),
            "time_source": best.sample.source if best else None,
            "server": result.server,
            "healthz": None,
            "error": result.error,
            "reasons": [r for v in address.instances for r in v.reasons] + address.reasons,
            "instances": [_instance_json(v) for v in address.instances],
        }
        healthz = [v.healthz for v in address.instances if v.healthz is not None]
        if healthz:  # the worst one
            worst_healthz = max(healthz, key=lambda h: h.status != 200)
            entry["healthz"] = {"status": worst_healthz.status, "reason": worst_healthz.reason}
        document["addresses"].append(entry)
    return json.dumps(document, ensure_ascii=False)


def emit(report: Report, url: str, as_json: bool) -> None:
    print(format_json(report, url) if as_json else format_line(report), flush=True)
