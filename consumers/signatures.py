"""Log lines into evidence: each line's template (consumers/templates.py), per-incident error signatures (counts,
first/last seen, hosts, per-minute counts), and change-like lines (consumers/changes.py) into change rows.

Runs inside the consumers' batch transaction. Signatures are aggregated per batch in memory and written as a few
row updates, so a 20,000-line incident costs a handful of rows, not 20,000 timeline entries."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from consumers.change_rules import change_from_log
from consumers.changes import ChangeEvent
from consumers.templates import TemplateMiner
from opsdraft.models import Change, IncidentSignature, LogEvent, MinerState

SIGNATURE_LEVELS = {"WARNING", "ERROR", "CRITICAL"}
MAX_HOSTS = 50  # hosts named per signature; host_count keeps counting past it
MINER_STATE = "logs"


def minute_of(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M")


@dataclass
class LogFacts:
    """What one stored log line contributes: set by `Evidence.mine`, read by `Evidence.record`."""

    template_key: str
    template: str
    host: str | None
    change: ChangeEvent | None = None


@dataclass
class _Agg:
    template: str
    level: str
    count: int = 0
    first_at: datetime | None = None
    last_at: datetime | None = None
    hosts: set[str] = field(default_factory=set)
    per_minute: dict[str, int] = field(default_factory=dict)
    first_index: int | None = None  # the batch row that first showed it


class Evidence:
    """One per consumer process: holds the template miner (its state saved in the database now and then)."""

    def __init__(self) -> None:
        self.miner: TemplateMiner | None = None

    def _miner(self, s: Session) -> TemplateMiner:
        if self.miner is None:
            saved = s.get(MinerState, MINER_STATE)
            self.miner = TemplateMiner.from_state(saved.state) if saved else TemplateMiner()
        return self.miner

    def mine(self, s: Session, service: str, level: str, message: str, at: datetime,
             attributes: dict) -> LogFacts:
        """`message` is already redacted: templates, hosts and changes are made from redacted text only."""
        mined = self._miner(s).mine(service, message)
        host = attributes.get("host") or attributes.get("hostname") or attributes.get("pod")
        host = str(host)[:200] if host else None
        change = change_from_log(service, level, message, at, attributes)
        return LogFacts(mined.key, mined.template, host, change)

    def facts_of(self, s: Session, log: LogEvent) -> LogFacts:
        """A stored line's facts, for lines attached to an incident after they were stored."""
        mined = self._miner(s).mine(log.service, log.message)
        return LogFacts(log.template_key or mined.key, mined.template, log.host)

    def save_state(self, s: Session) -> None:
        if self.miner is not None and self.miner.snapshot_due():
            row = s.get(MinerState, MINER_STATE)
            if row is None:
                s.add(MinerState(name=MINER_STATE, state=self.miner.state()))
            else:
                row.state = self.miner.state()

    @staticmethod
    def new_signatures(s: Session, incident_ids: Iterable[int], keys: Iterable[tuple[int, str, str]]
                       ) -> set[tuple[int, str, str]]:
        """Which (incident, service, template) keys have no signature yet: those lines go on the timeline."""
        known = _known(s, set(incident_ids))
        return {k for k in keys if k not in known}

    @staticmethod
    def record(s: Session, lines: list[tuple[int, str, str, datetime, LogFacts]],
               log_ids: dict[int, int]) -> None:
        """Fold a batch's lines (incident id, service, level, at, facts) into the incidents' signatures.
        `log_ids` maps a line's position to its stored id where that was fetched (first sightings)."""
        aggs: dict[tuple[int, str, str], _Agg] = {}
        for i, (incident_id, service, level, at, facts) in enumerate(lines):
            agg = aggs.setdefault((incident_id, service, facts.template_key), _Agg(facts.template, level))
            agg.count += 1
            agg.first_at = at if agg.first_at is None or at < agg.first_at else agg.first_at
            agg.last_at = at if agg.last_at is None or at > agg.last_at else agg.last_at
            if facts.host:
                agg.hosts.add(facts.host)
            minute = minute_of(at)
            agg.per_minute[minute] = agg.per_minute.get(minute, 0) + 1
            if agg.first_index is None:
                agg.first_index = i
        if not aggs:
            return
        known = _known(s, {k[0] for k in aggs})
        for key, agg in aggs.items():
            row = known.get(key)
            if row is None:
                row = IncidentSignature(incident_id=key[0], service=key[1], template_key=key[2],
                                        template=agg.template[:2000], level=agg.level, count=0,
                                        first_at=agg.first_at, last_at=agg.last_at, hosts=[], host_count=0,
                                        per_minute={}, first_log_id=log_ids.get(agg.first_index))
                s.add(row)
                known[key] = row
            _fold(row, agg)


def _fold(row: IncidentSignature, agg: _Agg) -> None:
    row.count += agg.count
    row.first_at, row.last_at = min(row.first_at, agg.first_at), max(row.last_at, agg.last_at)
    hosts = set(row.hosts)
    new_hosts = agg.hosts - hosts
    row.host_count += len(new_hosts)
    if len(hosts) < MAX_HOSTS:
        row.hosts = sorted(hosts | set(sorted(new_hosts)[:MAX_HOSTS - len(hosts)]))
    minutes = dict(row.per_minute)
    for minute, n in agg.per_minute.items():
        minutes[minute] = minutes.get(minute, 0) + n
    row.per_minute = minutes  # a new dict: JSON columns notice reassignment, not mutation
    if agg.level in ("ERROR", "CRITICAL") and row.level == "WARNING":
        row.level = agg.level


def merge_signature(into: IncidentSignature, other: IncidentSignature) -> None:
    """Fold one incident's signature into another's of the same template (a merge of incidents)."""
    _fold(into, _Agg(other.template, other.level, other.count, other.first_at, other.last_at, set(other.hosts),
                     dict(other.per_minute)))
    into.host_count = max(into.host_count, other.host_count)


def _known(s: Session, incident_ids: set[int]) -> dict[tuple[int, str, str], IncidentSignature]:
    """The signatures of these incidents, loaded once per transaction and kept current as rows are added."""
    cache: dict = s.info.setdefault("signatures", {})
    loaded: set[int] = s.info.setdefault("signatures_loaded", set())
    todo = [i for i in incident_ids if i not in loaded]
    if todo:
        with s.no_autoflush:
            for row in s.scalars(select(IncidentSignature).where(IncidentSignature.incident_id.in_(todo))):
                cache[(row.incident_id, row.service, row.template_key)] = row
        loaded.update(todo)
    return cache


def change_row(ev: ChangeEvent, log_id: int | None = None) -> Change:
    return Change(at=ev.at, service=ev.service[:200], version=ev.version[:200], kind=ev.kind, action=ev.action,
                  actor=ev.actor[:200], description=ev.description[:2000], source=ev.source,
                  status=ev.status[:20], external_id=ev.id[:200], log_id=log_id)
