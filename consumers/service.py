"""Applying events to the database: dedup, grouping into incidents, closing. Each function runs inside the
caller's transaction and queues its follow-up messages in the outbox of that same transaction."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, event, func, insert, or_, select
from sqlalchemy.orm import Session, selectinload

from consumers.changes import ChangeEvent
from consumers.correlation import EvidenceIndex
from consumers.identifiers import Identifiers
from consumers.payloads import SEVERITY_RANK, AlertEvent, LogLine, TicketIn
from consumers.signatures import SIGNATURE_LEVELS, Evidence, change_row
from consumers.stale import close_reason, mark_stale, supersede_postmortems
from opsdraft import events
from opsdraft.db import copy_rows
from opsdraft.incident_times import end_window, start_window
from opsdraft.metrics import INCIDENTS
from opsdraft.models import Alert, Incident, LogEvent, Ticket, TimelineEntry, UTCDateTime, utcnow
from opsdraft.privacy import ScopedRedactor, texts_in_scopes
from opsdraft.settings import Settings
from redaction import Redactor

LOG_LOOKBACK_S = 600  # logs this long before an incident opened belong to it (a deploy, the first errors)


class Ingest:
    """Everything the consumers write. Holds no state between calls, only its collaborators."""

    def __init__(self, settings: Settings, redactor: Redactor):
        self.settings, self.redactor = settings, redactor
        self.key = settings.redaction_key_bytes()
        self.evidence = Evidence()
        self.ids = Identifiers(redactor, self.key)

    def scoped(self, s: Session, scope: str) -> ScopedRedactor:
        # One per scope and transaction: a batch of a thousand log lines loads an incident's placeholders once.
        cache = s.info.setdefault("scoped_redactors", {})
        if scope not in cache:
            # A ticket's originals are kept sealed: an approved reply may greet the customer by name.
            cache[scope] = ScopedRedactor(s, self.redactor, self.key, scope, seal=scope.startswith("ticket:"))
        return cache[scope]

    # --- alerts ---------------------------------------------------------------------------------------

    def prefetch_alerts(self, s: Session, evs: list[AlertEvent]) -> None:
        """Load what a batch of alerts needs in a few queries rather than several per alert: its alerts by
        fingerprint (with their incidents) and its group keys' open and recently closed incidents."""
        evs = [self.ids.alert(ev) for ev in evs]
        self._load_alerts(s, [ev.fingerprint for ev in evs])
        reopen_window = timedelta(seconds=self.settings.incident_reopen_window_s)
        self._load_incidents(s, [self.group_key(ev) for ev in evs], min(ev.starts_at for ev in evs) - reopen_window)

    def _load_alerts(self, s: Session, fingerprints: list[str]) -> None:
        known = s.info.setdefault("alerts_by_fingerprint", {})
        todo = list({fp for fp in fingerprints if fp not in known})
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            known.update(dict.fromkeys(chunk))  # None: no such alert yet
            for alert in s.scalars(select(Alert).where(Alert.fingerprint.in_(chunk)).options(
                    selectinload(Alert.incident))):
                known[alert.fingerprint] = alert

    def _alert(self, s: Session, fingerprint: str) -> Alert | None:
        self._load_alerts(s, [fingerprint])
        return s.info["alerts_by_fingerprint"][fingerprint]

    def _load_incidents(self, s: Session, keys: list[str], closed_since: datetime) -> None:
        """Per group key, newest first: its open incidents and those closed since `closed_since` (the ones a
        re-fire may reopen). Kept in the session; incidents opened, closed or reopened in it stay listed."""
        cache = s.info.setdefault("incidents_by_key", {})
        todo = list({k for k in keys if k not in cache or cache[k][0] > closed_since})
        for i in range(0, len(todo), 500):
            chunk = todo[i:i + 500]
            for k in chunk:
                cache[k] = (closed_since, [])
            for incident in s.scalars(select(Incident).where(
                    Incident.group_key.in_(chunk), or_(Incident.status == "open", Incident.closed_at >= closed_since),
            ).order_by(Incident.id.desc())):
                cache[incident.group_key][1].append(incident)

    def apply_alert(self, s: Session, ev: AlertEvent) -> None:
        ev = self.ids.alert(ev)  # before anything keys on its name, service, labels or fingerprint
        alert = self._alert(s, ev.fingerprint)
        if ev.status == "acknowledged" and alert is not None and alert.status == "firing":
            # Acknowledging changes nothing but the timeline: the alert still resolves when the resolve comes.
            self._timeline(s, alert.incident, ev.at or utcnow(), "acknowledged", self.scoped(
                s, f"incident:{alert.incident.id}").text(ev.summary), ("alert", alert))
        elif ev.status in ("firing", "acknowledged"):
            self._firing(s, ev, alert)
        elif alert is not None and alert.status in ("firing", "stale"):  # a stale one may resolve after all
            self._resolved(s, ev, alert)
        # A resolve for an alert we never saw firing, or a repeated resolve, changes nothing.

    def _firing(self, s: Session, ev: AlertEvent, alert: Alert | None) -> None:
        if alert is not None and alert.status == "firing" and alert.incident.status == "open":
            alert.last_seen_at = utcnow()  # still sent: not stale (consumers/stale.py)
            return  # Alertmanager repeats firing alerts on every group interval: a duplicate.
        incident = self._open_incident_for(s, ev)
        red = self.scoped(s, f"incident:{incident.id}")
        text, labels = red.text(ev.summary, source="alerts"), red.value(ev.labels, source="alerts")
        if alert is None:
            alert = Alert(fingerprint=ev.fingerprint, source=ev.source, starts_at=ev.starts_at)
            s.add(alert)
            s.info["alerts_by_fingerprint"][ev.fingerprint] = alert
        alert.incident, alert.name, alert.service = incident, ev.name, ev.service
        if "correlation_index" in s.info:
            s.info["correlation_index"].add(incident, ev.service, ev.labels, ev.starts_at)
        alert.severity, alert.status, alert.labels, alert.text = ev.severity, "firing", labels, text
        alert.starts_at, alert.ends_at, alert.last_seen_at = ev.starts_at, None, utcnow()
        if incident.all_resolved_at is not None:  # all had resolved (within the quiet period): a new window
            end_window(incident, incident.all_resolved_at)
        start_window(incident, ev.starts_at)
        incident.all_resolved_at = None
        if SEVERITY_RANK[ev.severity] < SEVERITY_RANK[incident.severity]:
            incident.severity = ev.severity
        self._timeline(s, incident, ev.starts_at, "alert_firing",
                       f"{ev.name} firing on {ev.service} ({ev.severity}): {text}", ("alert", alert))

    def _resolved(self, s: Session, ev: AlertEvent, alert: Alert) -> None:
        at = ev.ends_at or utcnow()
        alert.status, alert.ends_at = "resolved", at
        incident = alert.incident
        self._timeline(s, incident, at, "alert_resolved", f"{alert.name} resolved on {alert.service}",
                       ("alert", alert))
        # Whether all its alerts are resolved now is asked once per transaction (see settle), not by loading
        # every alert of a large incident on each resolve.
        _before_commit(s).setdefault("resolved", {})[incident.id] = incident

    def group_key(self, ev: AlertEvent) -> str:
        def value(label: str) -> str:
            if label == "service":
                return ev.service
            if label == "alertname":
                return ev.name
            return ev.labels.get(label, "")

        key = "/".join(value(label) for label in self.settings.incident_group_by.split(","))
        if len(key) > 300:  # the column's size: keep it unique with a digest of the whole key
            key = key[:280] + "#" + hashlib.sha256(key.encode()).hexdigest()[:16]
        return key

    def _open_incident_for(self, s: Session, ev: AlertEvent) -> Incident:
        key = self.group_key(ev)
        since = ev.starts_at - timedelta(seconds=self.settings.incident_group_window_s)
        reopen_after = ev.starts_at - timedelta(seconds=self.settings.incident_reopen_window_s)
        self._load_incidents(s, [key], reopen_after)
        listed = s.info["incidents_by_key"][key][1]
        incident = next((i for i in listed if i.status == "open" and i.opened_at >= since), None)
        if incident:
            return incident
        related = EvidenceIndex.of(s, self.settings).related(ev)
        if related:  # another part of the same outage: join it rather than open a fragment of it
            incident, reason = related
            if ev.service not in (incident.services or []):
                incident.services = [*(incident.services or [incident.service]), ev.service]
                s.info.pop("open_incidents", None)
                # Its logs may have arrived before this alert (another topic): they are this incident's too.
                self._attach_earlier_logs(s, incident, ev.service, min(ev.starts_at, incident.opened_at))
            listed.insert(0, incident)
            self._timeline(s, incident, ev.starts_at, "correlated",
                           f"{ev.name} on {ev.service} joined this incident ({reason})", f"incident:{incident.id}")
            return incident
        closed = next((i for i in listed if i.status == "closed" and i.closed_at >= reopen_after), None)
        if closed:  # a flapping alert re-fired shortly after close: the same incident, not a new one
            start_window(closed, ev.starts_at)  # a window of its own: the gap since the close is not counted
            closed.status, closed.closed_at, closed.all_resolved_at = "open", None, None
            supersede_postmortems(s, closed.id)
            s.info.pop("open_incidents", None)
            INCIDENTS.labels("reopened").inc()
            self._timeline(s, closed, ev.starts_at, "reopened", f"Incident reopened: {ev.name} fired again",
                           f"incident:{closed.id}")
            events.incident_reopened(s, self.settings, closed)
            return closed
        incident = Incident(title=f"{ev.name} on {ev.service}"[:300], group_key=key, service=ev.service,
                            services=[ev.service], severity=ev.severity, status="open", opened_at=ev.starts_at)
        s.add(incident)
        s.flush()
        listed.insert(0, incident)
        s.info.pop("open_incidents", None)
        INCIDENTS.labels("opened").inc()
        self._timeline(s, incident, ev.starts_at, "opened", f"Incident opened: {incident.title}",
                       f"incident:{incident.id}")
        self._attach_earlier_logs(s, incident, incident.service, incident.opened_at)
        events.incident_opened(s, self.settings, incident)
        return incident

    def _attach_earlier_logs(self, s: Session, incident: Incident, service: str, alerted_at: datetime) -> None:
        """Logs and alerts travel on different topics, so a service's logs may arrive before the alert that
        opens its incident, or brings the service into one: attach its unattached lines from shortly before."""
        since = alerted_at - timedelta(seconds=LOG_LOOKBACK_S)
        lines = []
        for log in s.scalars(select(LogEvent).where(
                LogEvent.service == service, LogEvent.incident_id.is_(None), LogEvent.at >= since
        ).order_by(LogEvent.at)):
            log.incident_id = incident.id
            if log.level in SIGNATURE_LEVELS:
                facts = self.evidence.facts_of(s, log)
                lines.append((incident.id, log.service, log.level, log.at, facts, log))
        new = self.evidence.new_signatures(s, [incident.id], [(i, sv, f.template_key) for i, sv, _, _, f, _ in lines])
        for key in new:  # the first line of each signature goes on the timeline
            _, service, level, at, _, log = next(x for x in lines if (x[0], x[1], x[4].template_key) == key)
            self._timeline(s, incident, at, "log", f"{level} {service}: {log.message}", f"log:{log.id}")
        self.evidence.record(s, [x[:5] for x in lines], {p: x[5].id for p, x in enumerate(lines)})

    def declare_incident(self, s: Session, title: str, severity: str, actor: str, at: datetime) -> Incident:
        """A declared incident has a group key no alert can match and no alerts, so the quiet period never
        closes it: only /incident close does."""
        incident = Incident(title="(declared)", group_key=f"declared:{uuid.uuid4().hex}", service="declared",
                            services=[], severity=severity, status="open", opened_at=at)
        s.add(incident)
        s.flush()
        s.info.pop("open_incidents", None)
        incident.title = self.scoped(s, f"incident:{incident.id}").text(title.strip())[:300]
        INCIDENTS.labels("opened").inc()
        self._timeline(s, incident, at, "opened", f"Incident declared by {actor}: {incident.title}", f"slack:{actor}")
        events.incident_opened(s, self.settings, incident)
        return incident

    def close_incident(self, s: Session, incident: Incident, at: datetime, note: str, actor: str) -> bool:
        """Close an open incident and queue its postmortem draft; False if it was closed already."""
        if incident.status != "open":
            return False
        incident.status, incident.closed_at = "closed", at
        end_window(incident, incident.all_resolved_at or at)  # a close by hand after the resolve: the resolve
        s.info.pop("open_incidents", None)
        # The note was redacted by the bot, and is again here: the incident-commands topic is an input too.
        note = self.scoped(s, f"incident:{incident.id}").text(note) if note else ""
        incident.close_note = note or None
        self._timeline(s, incident, at, "closed", f"Incident closed by {actor}" + (f": {note}" if note else ""),
                       f"incident:{incident.id}")
        INCIDENTS.labels("closed").inc()
        events.incident_closed(s, self.settings, incident, actor)
        return True

    def close_quiet_incidents(self, s: Session, now: datetime) -> list[int]:
        """Close incidents whose alerts have all been resolved for the quiet period."""
        cutoff = now - timedelta(seconds=self.settings.incident_quiet_period_s)
        mark_stale(s, self.settings, now, self._timeline, _before_commit(s).setdefault("resolved", {}))
        settle(s)
        due = s.scalars(select(Incident).where(
            Incident.status == "open", Incident.all_resolved_at.is_not(None), Incident.all_resolved_at <= cutoff))
        # Closed at the last resolve, in the alerts' own time: the quiet period only delays the close.
        return [i.id for i in due if self.close_incident(s, i, i.all_resolved_at, *close_reason(s, i))]

    # --- logs -----------------------------------------------------------------------------------------

    def _all_open(self, s: Session) -> list[Incident]:
        """Open incidents, newest first; cached for the transaction (there are few) until an incident opens,
        closes, reopens or gains a service in it."""
        if "open_incidents" not in s.info:
            with s.no_autoflush:
                s.info["open_incidents"] = list(s.scalars(select(Incident).where(
                    Incident.status == "open").order_by(Incident.id.desc())))
        return s.info["open_incidents"]

    def _open_incidents(self, s: Session, service: str) -> list[Incident]:
        """A service's open incidents (those it alerted in, or joined by correlation), newest first. Indexed by
        service once per list of open incidents: a batch asks for every line, and many incidents may be open."""
        listed = self._all_open(s)
        index = s.info.get("open_by_service")
        if index is None or index[0] is not listed:
            by_service: dict[str, list[Incident]] = {}
            for incident in listed:
                for name in dict.fromkeys(incident.services or [incident.service]):
                    by_service.setdefault(name, []).append(incident)
            index = s.info["open_by_service"] = (listed, by_service)
        return index[1].get(service, [])

    def apply_log(self, s: Session, line: LogLine) -> None:
        self.apply_logs(s, [line])

    def apply_logs(self, s: Session, lines: list[LogLine]) -> None:
        """Log lines in bulk: redacted a scope at a time (one redactor pass, one look-up of stored placeholders),
        mined for their template and for changes, inserted in one statement. An incident's warnings and errors
        fold into its signatures; the first line of each new signature goes on its timeline."""
        lines = [self.ids.log(line) for line in lines]  # before its service picks an incident
        incidents: list[Incident | None] = []
        scopes: dict[str, list[int]] = {}
        for i, line in enumerate(lines):
            latest = line.timestamp + timedelta(seconds=LOG_LOOKBACK_S)
            incident = next((inc for inc in self._open_incidents(s, line.service) if inc.opened_at <= latest), None)
            incidents.append(incident)
            scopes.setdefault(f"incident:{incident.id}" if incident else f"log:{line.service}", []).append(i)
        messages: list[str] = [""] * len(lines)
        attributes: list[Any] = [None] * len(lines)
        reds = {scope: self.scoped(s, scope) for scope in scopes}
        for scope, idx in scopes.items():
            reds[scope].seen(max(lines[i].timestamp for i in idx))  # retention keeps a log scope's placeholders by it
        texts = texts_in_scopes([(reds[scope], [lines[i].message for i in idx]) for scope, idx in scopes.items()],
                                source="logs")  # all scopes' messages at once: one look-up, one write
        for (scope, idx), redacted in zip(scopes.items(), texts, strict=True):
            values = reds[scope].values([lines[i].attributes for i in idx], source="logs")
            for i, text, value in zip(idx, redacted, values, strict=True):
                messages[i], attributes[i] = text, value
        facts = [self.evidence.mine(s, line.service, line.level, messages[i], line.timestamp, attributes[i] or {})
                 for i, line in enumerate(lines)]
        rows = [dict(at=line.timestamp, service=line.service, level=line.level, message=messages[i],
                     attributes=attributes[i], incident_id=incidents[i].id if incidents[i] else None,
                     template_key=facts[i].template_key, host=facts[i].host)
                for i, line in enumerate(lines)]
        signed = [i for i, line in enumerate(lines) if incidents[i] and line.level in SIGNATURE_LEVELS]
        keys = {i: (incidents[i].id, lines[i].service, facts[i].template_key) for i in signed}
        new = self.evidence.new_signatures(s, {k[0] for k in keys.values()}, keys.values())
        first: dict[tuple[int, str, str], int] = {}
        for i in signed:
            if keys[i] in new:
                first.setdefault(keys[i], i)
        cited = sorted(set(first.values()) | {i for i, f in enumerate(facts) if f.change})
        ids = self._insert_logs(s, rows, cited)
        for i in first.values():
            self._timeline(s, incidents[i], lines[i].timestamp, "log",
                           f"{lines[i].level} {lines[i].service}: {messages[i]}", f"log:{ids[i]}")
        for i in cited:
            if facts[i].change:
                s.add(change_row(facts[i].change, ids[i]))
        position = {i: p for p, i in enumerate(signed)}
        self.evidence.record(s, [(keys[i][0], lines[i].service, lines[i].level, lines[i].timestamp, facts[i])
                                 for i in signed], {position[i]: ids[i] for i in cited if i in position})
        self.evidence.save_state(s)

    @staticmethod
    def _insert_logs(s: Session, rows: list[dict], cited: list[int]) -> dict[int, int]:
        """Insert rows; returns the ids of the `cited` ones (fetched only for those: a plain executemany without
        RETURNING is far cheaper on PostgreSQL)."""
        skip, table = set(cited), LogEvent.__table__  # Core, not the ORM's bulk insert: a third of the cost
        if len(cited) < len(rows):
            plain = [row for i, row in enumerate(rows) if i not in skip]
            if not _copy_logs(s, plain):
                s.execute(insert(table), plain)
        if not cited:
            return {}
        ids = s.scalars(insert(table).returning(table.c.id, sort_by_parameter_order=True),
                        [rows[i] for i in cited]).all()
        return dict(zip(cited, ids, strict=True))

    # --- changes --------------------------------------------------------------------------------------

    def apply_change(self, s: Session, ev: ChangeEvent) -> None:
        """A change from the changes topic or a webhook: stored redacted; incidents find it by service and time."""
        service = self.ids.text(ev.service, "logs")  # as the logs' and alerts' services are, to match them
        red = self.scoped(s, f"change:{service}")
        s.add(change_row(ev.model_copy(update={
            "service": service, "actor": red.text(ev.actor, source="logs"),
            "description": red.text(ev.description, source="logs"), "version": red.text(ev.version, source="logs")})))

    # --- tickets --------------------------------------------------------------------------------------

    def apply_ticket(self, s: Session, t: TicketIn) -> None:
        t = self.ids.ticket_id(t)  # the id names its scope and is how updates find the ticket
        red = self.scoped(s, f"ticket:{t.id}")
        ticket = s.scalar(select(Ticket).where(Ticket.external_id == t.id))
        # An update never replaces the requester, nor adds theirs to the ticket's sealed names: whoever can send
        # a ticket update must not become the person the approved reply greets (issue 16).
        # One pass of the redactor and one look-up of stored placeholders for all fields; numbered in this order,
        # as ever (subject, body, then the requester of a new ticket).
        names = ["subject", "body"] + (["requester"] if ticket is None else [])
        texts = [t.subject, t.body] + ([t.requester_text()] if ticket is None else [])
        fields: dict[str, Any] = dict(zip(names, red.texts(texts, source="tickets"), strict=True))
        fields |= dict(tags=red.value(t.tags, source="tickets"), created_at=t.created_at)
        if ticket is None:
            ticket = Ticket(external_id=t.id, **fields)
            s.add(ticket)
            s.flush()
            events.ticket_created(s, self.settings, ticket)
        else:  # a re-sent or edited ticket updates the same row
            for k, v in fields.items():
                setattr(ticket, k, v)
        if t.comment:
            ticket.comments = [*ticket.comments, {"at": utcnow().isoformat(),
                                                  "text": red.text(t.comment, source="tickets")}]
            if t.status != "closed" and ticket.status != "closed":  # a follow-up: suggest the reply again
                events.ticket_updated(s, self.settings, ticket, len(ticket.comments))
        if t.status == "closed" and ticket.status != "closed":
            ticket.status = "closed"  # solved in the helpdesk: index it as a resolved ticket
            events.ticket_resolved(s, self.settings, ticket)
        elif t.status == "open" and ticket.status == "closed":
            ticket.status = "open"

    @staticmethod
    def _timeline(s: Session, incident: Incident, at: datetime, kind: str, text: str,
                  ref: str | tuple[str, Alert]) -> None:
        """Timeline entries are written together just before the transaction commits: a new alert has no id
        (for its "alert:ID" reference) until a flush, and one flush per batch is far cheaper than one per alert."""
        _before_commit(s).setdefault("timeline", []).append((incident, at, kind, text, ref))


_LOG_COLUMNS = ("at", "service", "level", "message", "attributes", "incident_id", "template_key", "host")


def _copy_logs(s: Session, rows: list[dict]) -> bool:
    """Log lines are most of what is ingested: COPY on PostgreSQL (False elsewhere: the caller inserts them)."""
    at = UTCDateTime().process_bind_param
    return copy_rows(s, "log_events", _LOG_COLUMNS, (
        (at(row["at"], None), row["service"], row["level"], row["message"],
         json.dumps(row["attributes"]),  # as SQLAlchemy's JSON type writes it (None: null)
         row["incident_id"], row["template_key"], row["host"]) for row in rows))


def _before_commit(s: Session) -> dict[str, Any]:
    """Work left for just before the session's transaction commits (settle)."""
    if "ingest_pending" not in s.info:
        s.info["ingest_pending"] = {}
        event.listen(s, "before_commit", settle)
    return s.info["ingest_pending"]


def settle(s: Session) -> None:
    """Do now what waits for the commit: each apply_* call is complete once this ran (the commit runs it)."""
    pending = s.info.get("ingest_pending", {})
    resolved, timeline = pending.pop("resolved", {}), pending.pop("timeline", [])
    if not (resolved or timeline):
        return
    s.flush()
    incidents = {i.id: i for i in resolved.values() if i.status == "open"}  # closed meanwhile: nothing to do
    ids = list(incidents)
    for n in range(0, len(ids), 500):
        for incident_id, firing, last_end in s.execute(select(
                Alert.incident_id, func.sum(case((Alert.status == "firing", 1), else_=0)),
                func.max(func.coalesce(Alert.ends_at, Alert.last_seen_at)),  # a stale alert ends when last seen
        ).where(Alert.incident_id.in_(ids[n:n + 500])).group_by(Alert.incident_id)):
            if not firing:
                incidents[incident_id].all_resolved_at = last_end
    if timeline:
        s.execute(insert(TimelineEntry), [
            dict(incident_id=incident.id, at=at, kind=kind, text=text,
                 source_ref=ref if isinstance(ref, str) else f"{ref[0]}:{ref[1].id}")
            for incident, at, kind, text, ref in timeline])
