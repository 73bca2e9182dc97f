"""A deterministic analysis of one incident: impact window, detection, trigger candidates, error signatures, what
happened just before recovery, services and hosts. Made from the stored record (alerts, per-incident log
signatures, change events, human entries); no model involved. Stored with every incident draft, and the drafts'
timelines and Trigger/Resolution sections are written from it, never from a sample of raw events.

Everything here is linear in the number of alerts, signatures and changes (a 20,000-line incident has a few
dozen signatures: its lines were folded into them at ingest)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

# Actions that end an outage rather than start one.
RECOVERY_ACTIONS = {"rollback", "restart", "failover", "certificate-renew", "scale", "disable"}
# A change logged this long after the first signal may still be its trigger (the deploy's "done" line comes
# after its first requests failed).
TRIGGER_GRACE = timedelta(minutes=2)


@dataclass
class AlertSpan:
    name: str
    service: str
    severity: str
    first_start: datetime
    last_end: datetime | None
    instances: int
    ref: str  # the first alert's "alert:ID"
    end_ref: str  # the alert that resolved last


@dataclass
class SignatureFact:
    service: str
    level: str
    template: str
    count: int
    first_at: datetime
    last_at: datetime
    peak_minute: str
    peak_count: int
    hosts: list[str]
    host_count: int
    ref: str  # "log:ID" of its first line, else "signature:ID"
    sample: str = ""  # its first line, as stored (redacted): more telling than the template
    per_minute: dict[str, int] = field(default_factory=dict)
    background: bool = False  # present at the same rate before the incident: not a symptom


@dataclass
class ChangeFact:
    at: datetime
    service: str
    version: str
    kind: str
    action: str
    actor: str
    description: str
    source: str
    ref: str  # "change:ID"
    status: str = ""  # success | failure | in_progress, where the sender says
    relation: str = ""  # how it relates to the incident (ranking evidence)
    score: float = 0.0

    def label(self) -> str:
        what = f"{self.action} of {self.service}" + (f" {self.version}" if self.version else "")
        shown = self.description and not (self.version and self.version in self.description and
                                          len(self.description) < 40)
        return what + (f" ({self.description[:200]})" if shown else "")


@dataclass
class HumanEntry:
    at: datetime
    kind: str
    text: str
    ref: str


@dataclass
class Analysis:
    services: list[str]
    impact_start: datetime | None
    impact_end: datetime | None
    first_error_at: datetime | None
    first_alert_at: datetime | None
    first_human_at: datetime | None
    alerts: list[AlertSpan]
    signatures: list[SignatureFact]
    triggers: list[ChangeFact]
    recovery: ChangeFact | None
    recoveries: list[ChangeFact]
    changes: list[ChangeFact]
    human: list[HumanEntry]
    hosts: list[str] = field(default_factory=list)
    host_count: int = 0

    @property
    def trigger(self) -> ChangeFact | None:
        return self.triggers[0] if self.triggers else None

    def detection_delay_s(self) -> float | None:
        if self.first_error_at and self.first_alert_at:
            return max((self.first_alert_at - self.first_error_at).total_seconds(), 0.0)
        return None

    def to_json(self) -> dict:
        return asdict(self, dict_factory=lambda items: {k: (v.isoformat() if isinstance(v, datetime) else v)
                                                        for k, v in items})


def _background(sig: SignatureFact, first_alert: datetime | None) -> bool:
    """An error that ran at the same rate before the first alert as after it is noise, not a symptom."""
    if first_alert is None or sig.first_at >= first_alert - timedelta(minutes=1):
        return False
    key = first_alert.strftime("%Y-%m-%dT%H:%M")
    before = [n for m, n in sig.per_minute.items() if m < key]
    after = [n for m, n in sig.per_minute.items() if m >= key]
    if not before or not after:
        return False
    rate_before, rate_after = sum(before) / len(before), sum(after) / len(after)
    return rate_after < 3 * rate_before


def mark_background(signatures: list[SignatureFact], first_alert: datetime | None) -> None:
    for sig in signatures:
        sig.background = _background(sig, first_alert)


def rank_triggers(changes: list[ChangeFact], services: list[str], signature_services: set[str],
                  dependencies: dict[str, list[str]], start: datetime, lookback: timedelta) -> list[ChangeFact]:
    """Changes shortly before the first signal, most likely first: a change to a service that alerted beats one
    to a dependency or a service that logged errors, which beats any other; then the nearer in time wins."""
    related = set(services) | {d for s in services for d in dependencies.get(s, [])}
    related |= {s for s, deps in dependencies.items() if set(deps) & set(services)}
    out = []
    for c in changes:
        if not start - lookback <= c.at <= start + TRIGGER_GRACE:
            continue
        if c.action in RECOVERY_ACTIONS and (c.at >= start or c.action != "restart"):
            continue  # a restart can start an outage; a rollback, or anything of the kind after it began, answers it
        if c.service in services:
            c.relation, weight = "changed a service that alerted", 3.0
        elif c.service in related:
            c.relation, weight = "changed a dependency of a service that alerted", 2.0
        elif c.service in signature_services:
            c.relation, weight = "changed a service that logged the errors", 2.0
        else:
            c.relation, weight = "changed another service in the same window", 1.0
        minutes = abs((start - c.at).total_seconds()) / 60
        late = 0.5 if c.at > start else 0.0  # after the first signal: possible, less likely
        c.score = round(weight - min(minutes, 60) / 60 - late, 3)
        out.append(c)
    return sorted(out, key=lambda c: -c.score)


def pick_recoveries(changes: list[ChangeFact], trigger: ChangeFact | None, start: datetime | None,
                    end: datetime | None) -> list[ChangeFact]:
    """The actions before the alerts resolved, in time order, the last the likeliest: rollbacks, restarts,
    failovers, renewals, scale-ups and kill switches in the impact window; else the last other change there (a fix
    deploy, a config change)."""
    if start is None or end is None:
        return []
    window = [c for c in changes if start <= c.at <= end + timedelta(minutes=1) and c is not trigger
              and (trigger is None or c.at >= trigger.at) and c.status != "failure"]
    recovery = [c for c in window if c.action in RECOVERY_ACTIONS]
    if recovery:
        return recovery[-3:]
    return window[-1:]
