"""Thresholds and verdicts.

Thresholds use the monitoring-plugins range syntax
(https://www.monitoring-plugins.org/doc/guidelines.html#THRESHOLDFORMAT), on
the signed offset in seconds, with one exception: a plain number is an
absolute offset, so ``-w 0.5`` means -0.5:0.5 (as check_ntp_time reads it).

    0.5       alert if |offset| > 0.5
    0.1:      alert if offset < 0.1
    ~:0.5     alert if offset > 0.5
    -0.2:0.5  alert if offset < -0.2 or > 0.5
    @-0.1:0.1 alert if -0.1 <= offset <= 0.1

An offset is known only to within its uncertainty, as [offset - u, offset + u],
and is judged as that interval: CRITICAL when all of it is in the critical
alert set, WARNING when all of it is in the warning one, or when either alert
set holds part of it (nobody can tell), OK only when no part of it alerts.

Samples are grouped by the instance that answered them. Of one instance's
samples the one with the smallest round trip is judged, as NTP's clock filter
keeps it: it is the least disturbed by queueing. Samples that no instance
claimed may each come from another instance: every one of them is judged, and
the worst counts.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

from . import CRITICAL, OK, WARNING
from .sampling import AddressResult, Healthz, Sample, ServiceResult
from .sntp import LocalClock


@dataclass(frozen=True)
class Threshold:
    """A monitoring-plugins range: alert outside [start, end], or inside it with @."""

    spec: str
    start: float
    end: float
    inside: bool = False  # "@": alert inside the range
    plain: bool = False  # a plain number: |offset| beyond it

    @classmethod
    def parse(cls, text: str) -> Threshold:
        spec = text.strip()
        body = spec[1:] if spec.startswith("@") else spec
        inside = spec.startswith("@")
        if ":" not in body:
            end = _number(body, spec)
            if end < 0:
                raise ValueError(f"a plain threshold is an absolute offset, not {spec!r}")
            return cls(spec, -end, end, inside, plain=True)
        start_text, end_text = body.split(":", 1)
        start = -math.inf if start_text == "~" else _number(start_text or "0", spec)
        end = math.inf if end_text == "" else _number(end_text, spec)
        if start > end:
            raise ValueError(f"range {spec!r} starts above its end")
        return cls(spec, start, end, inside)

    def certainly_alerts(self, low: float, high: float) -> bool:
        """All of [low, high] is in the alert set."""
        if self.inside:
            return self.start <= low and high <= self.end
        return high < self.start or low > self.end

    def may_alert(self, low: float, high: float) -> bool:
        """Some of [low, high] is in the alert set."""
        if self.inside:
            return high >= self.start and low <= self.end
        return low < self.start or high > self.end

    def alerting(self) -> str:
        """What an alert means, for the reason: "beyond 1s", "outside 0:0.5"."""
        if self.plain and not self.inside:
            return f"beyond {self.end:g}s"
        return f"in {self.spec}" if self.inside else f"outside {self.spec}"

    def passing(self) -> str:
        if self.plain and not self.inside:
            return f"within {self.end:g}s"
        return f"outside {self.spec}" if self.inside else f"within {self.spec}"

    def perfdata(self) -> str:
        """The range for performance data: a plain number as the range it means."""
        if self.plain:
            return f"{'@' if self.inside else ''}{self.start:g}:{self.end:g}"
        return self.spec


def _number(text: str, spec: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"not a number or range: {spec!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"not a finite number: {spec!r}")
    return value


def judge_offset(
    offset_s: float, uncertainty_s: float, warning: Threshold, critical: Threshold
) -> tuple[int, str | None]:
    """OK, WARNING or CRITICAL for offset +- uncertainty, and why if not OK."""
    low, high = offset_s - uncertainty_s, offset_s + uncertainty_s
    if critical.certainly_alerts(low, high):
        return CRITICAL, f"offset {critical.alerting()}"
    if warning.certainly_alerts(low, high):
        return WARNING, f"offset {warning.alerting()}"
    if warning.may_alert(low, high) or critical.may_alert(low, high):
        return WARNING, f"offset too uncertain to tell whether {warning.passing()}"
    return OK, None


def format_offset(seconds: float) -> str:
    """+0.003s; never "-0.000s" for a tiny negative offset."""
    return f"{round(seconds, 3) + 0.0:+.3f}s"


def ceil_ms(seconds: float) -> float:
    """Rounded up to the ms, so an uncertainty is never shown smaller than it is."""
    return math.ceil(round(seconds * 1000, 6)) / 1000


def address_label(address: str) -> str:
    return f"[{address}]" if ":" in address else address


@dataclass
class InstanceVerdict:
    """One instance behind one address, or (instance None) the unclaimed samples."""

    address: str
    instance: str | None
    status: int
    reasons: list[str]
    sample: Sample  # the one judged
    samples: int
    offset_s: float  # relative to the reference clock
    uncertainty_s: float
    healthz: Healthz | None = None

    @property
    def label(self) -> str:
        if self.instance is None:
            return address_label(self.address)
        return f"{address_label(self.address)} instance {self.instance[:8]}"


@dataclass
class AddressVerdict:
    result: AddressResult
    status: int
    instances: list[InstanceVerdict]
    reasons: list[str]  # the address's own: a failed request

    @property
    def label(self) -> str:
        return address_label(self.result.address)

    @property
    def worst(self) -> InstanceVerdict | None:
        return _worst(self.instances)


@dataclass
class Report:
    status: int
    reasons: list[str]
    addresses: list[AddressVerdict]
    skipped: list[tuple[str, str]]
    clock: LocalClock
    worst: InstanceVerdict | None  # the worst instance that gave an offset
    warning: Threshold
    critical: Threshold
    checked_at: float = field(default_factory=time.time)

    @property
    def instances(self) -> list[InstanceVerdict]:
        return [v for a in self.addresses for v in a.instances]


def _severity(verdict: InstanceVerdict) -> tuple[int, float, float]:
    return (verdict.status, abs(verdict.offset_s) - verdict.uncertainty_s, verdict.uncertainty_s)


def _worst(verdicts: list[InstanceVerdict]) -> InstanceVerdict | None:
    return max(verdicts, key=_severity, default=None)


def _judge_sample(
    result: AddressResult,
    instance: str | None,
    sample: Sample,
    count: int,
    clock: LocalClock,
    warning: Threshold,
    critical: Threshold,
) -> InstanceVerdict:
    # server - reference = (server - local) - (reference - local)
    offset_s = sample.offset_s - clock.offset_s
    uncertainty_s = sample.uncertainty_s + clock.uncertainty_s
    status, reason = judge_offset(offset_s, uncertainty_s, warning, critical)
    verdict = InstanceVerdict(
        result.address,
        instance,
        status,
        [],
        sample,
        count,
        offset_s,
        uncertainty_s,
        result.healthz.get(instance),
    )
    if reason is not None:
        if sample.source != "body":
            reason += " (whole seconds from the Date header)"
        verdict.reasons.append(reason)
    if verdict.healthz is not None and verdict.healthz.status != 200:
        verdict.status = max(verdict.status, WARNING)
        why = f": {verdict.healthz.reason}" if verdict.healthz.reason else ""
        verdict.reasons.append(f"healthz {verdict.healthz.status}{why}")
    return verdict


def judge_address(
    result: AddressResult, clock: LocalClock, warning: Threshold, critical: Threshold
) -> AddressVerdict:
    groups: dict[str | None, list[Sample]] = {}
    for sample in result.samples:
        groups.setdefault(sample.instance, []).append(sample)
    verdicts = []
    for instance, samples in groups.items():
        # Unclaimed samples may each come from another instance: judge them all.
        candidates = samples if instance is None else [min(samples, key=lambda s: s.rtt_s)]
        verdicts.append(
            _worst(
                [
                    _judge_sample(result, instance, sample, len(samples), clock, warning, critical)
                    for sample in candidates
                ]
            )
        )
    status = max((v.status for v in verdicts), default=OK)
    reasons = []
    if result.error is not None:
        status = CRITICAL
        reasons.append(result.error)
    elif not verdicts:
        status = CRITICAL
        reasons.append("no answer")
    return AddressVerdict(result, status, verdicts, reasons)


def judge(
    service: ServiceResult, clock: LocalClock, warning: Threshold, critical: Threshold
) -> Report:
    """The verdict for each instance of each address; the worst is the service's."""
    addresses = [judge_address(result, clock, warning, critical) for result in service.addresses]
    status, reasons = OK, []
    if service.error is not None:
        status = CRITICAL
        reasons.append(service.error)
    several = sum(len(a.instances) for a in addresses) > 1
    for address in addresses:
        status = max(status, address.status)
        for verdict in address.instances:
            for reason in verdict.reasons:
                if several and reason.startswith("offset"):  # say which offset
                    reason = reason.replace(
                        "offset",
                        f"offset {format_offset(verdict.offset_s)}"
                        f" ±{ceil_ms(verdict.uncertainty_s):.3f}s",
                        1,
                    )
                reasons.append(f"{verdict.label}: {reason}")
        reasons.extend(f"{address.label}: {reason}" for reason in address.reasons)
    if clock.error is not None:
        status = max(status, WARNING)
        reasons.append(f"NTP {clock.server}: {clock.error}; local clock trusted")
    worst = _worst([v for a in addresses for v in a.instances])
    return Report(status, reasons, addresses, service.skipped, clock, worst, warning, critical)
