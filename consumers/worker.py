"""The consumers role: ingest alerts, logs, tickets and incident commands; close quiet incidents."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from consumers import incident_edits
from consumers.changes import detect_and_parse
from consumers.payloads import parse_log
from consumers.retention import run_retention
from consumers.service import Ingest
from consumers.sources import parse_alerts, parse_ticket
from consumers.textlogs import parse_text_log
from opsdraft.bus import BatchHandler, InvalidMessage, Message, consume
from opsdraft.events import IncidentCommand
from opsdraft.metrics import OPEN_INCIDENTS
from opsdraft.models import Incident, utcnow
from opsdraft.periodic import every
from opsdraft.privacy import sealer
from opsdraft.receipts import consumers_group, forget_applied_loop
from opsdraft.runtime import Runtime

log = logging.getLogger(__name__)


class Dispatcher(BatchHandler):
    """Parses each topic's messages (outside any transaction) and applies them (inside one)."""

    def __init__(self, rt: Runtime):
        self.ingest = Ingest(rt.settings, rt.redactor)
        t = rt.settings.topics
        self.parsers = {t.alerts: self.parse_alerts, t.logs: self.parse_log, t.tickets: self.parse_ticket,
                        t.incident_commands: self.parse_command, t.changes: self.parse_change}

    def parse(self, msg: Message) -> tuple[str, Any]:
        return self.parsers[msg.topic](msg)

    def apply_many(self, s: Session, parsed: list[tuple[str, Any]]) -> None:
        """A batch: its alerts' rows are loaded up front, and each run of consecutive log lines is applied in
        bulk; the order of everything else is kept."""
        alerts = [ev for kind, value in parsed if kind == "alerts" for ev in value]
        if alerts:
            self.ingest.prefetch_alerts(s, alerts)
        logs: list[Any] = []
        for kind, value in parsed:
            if kind == "log":
                logs.append(value)
                continue
            if logs:
                self.ingest.apply_logs(s, logs)
                logs = []
            self.apply(s, (kind, value))
        if logs:
            self.ingest.apply_logs(s, logs)

    def apply(self, s: Session, parsed: tuple[str, Any]) -> None:
        kind, value = parsed
        if kind == "alerts":
            for ev in value:
                self.ingest.apply_alert(s, ev)
        elif kind == "log":
            self.ingest.apply_logs(s, [value])
        elif kind == "ticket":
            self.ingest.apply_ticket(s, value)
        elif kind == "change":
            if value is not None:  # an event the sender sends that is no change (a ping, a pending deploy)
                self.ingest.apply_change(s, value)
        elif value.action == "declare":
            self.ingest.declare_incident(s, value.title, value.severity, value.actor, utcnow())
        else:
            incident = s.get(Incident, value.incident_id)
            if incident is None:
                raise InvalidMessage(f"incident {value.incident_id} does not exist")
            if value.action == "merge":
                other = s.get(Incident, value.other_id)
                if other is None:
                    raise InvalidMessage(f"incident {value.other_id} does not exist")
                incident_edits.merge(s, incident, other, value.actor)
            elif value.action == "split":
                incident_edits.split(s, incident, value.service, value.actor)
            else:
                self.ingest.close_incident(s, incident, utcnow(), value.note, value.actor)

    @staticmethod
    def parse_alerts(msg: Message) -> tuple[str, Any]:
        return "alerts", parse_alerts(msg.json())

    @staticmethod
    def parse_ticket(msg: Message) -> tuple[str, Any]:
        return "ticket", parse_ticket(msg.json())

    @staticmethod
    def parse_command(msg: Message) -> tuple[str, Any]:
        try:
            return "command", IncidentCommand.model_validate(msg.json())
        except ValueError as exc:
            raise InvalidMessage(f"invalid IncidentCommand: {exc}") from None

    @staticmethod
    def parse_change(msg: Message) -> tuple[str, Any]:
        try:
            return "change", detect_and_parse(msg.json(), msg.headers)
        except ValueError as exc:
            raise InvalidMessage(f"invalid change: {exc}") from None

    @staticmethod
    def parse_log(msg: Message) -> tuple[str, Any]:
        """JSON log objects, or plain-text lines in the shapes consumers/textlogs.py understands."""
        try:
            text = msg.value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"not UTF-8: {exc}") from None
        if text.lstrip("\ufeff \t\r\n").startswith("{"):  # a BOM too: jsonbody ignores it
            return "log", parse_log(msg.json())
        try:
            fields = parse_text_log(text)
        except ValueError as exc:  # the shape matched but a field did not parse (e.g. a bad timestamp)
            raise InvalidMessage(f"plain-text log line: {exc}") from None
        if fields is None:
            raise InvalidMessage("neither a JSON log object nor a plain-text log line in a known shape "
                                 "(RFC 5424, RFC 3164, or 'timestamp level service message')")
        return "log", parse_log(fields)


async def close_quiet_incidents(rt: Runtime, ingest: Ingest, stop: asyncio.Event, every_s: float = 1.0,
                                caught_up: asyncio.Event | None = None) -> None:
    """Every `every_s` seconds, close the incidents quiet for long enough. Not while the consumers read a backlog
    (`caught_up` clear): the quiet period is counted in the alerts' own time, so in a backlog (a restart after
    downtime, a replay) an incident whose alerts resolved long ago would close between two batches and reopen at
    its next alert further on, each time drafting a postmortem that the reopen then supersedes."""
    def _close():
        with rt.db.session() as s:
            closed = ingest.close_quiet_incidents(s, utcnow())
            OPEN_INCIDENTS.set(s.scalar(select(func.count(Incident.id)).where(Incident.status == "open")))
            return closed

    async def once() -> None:
        if caught_up is None or caught_up.is_set():
            closed = await asyncio.to_thread(_close)
            if closed:
                log.info("closed incidents after quiet period: %s", closed)

    await every(every_s, stop, once, "closing quiet incidents")


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    dispatch = Dispatcher(rt)
    t = rt.settings.topics
    caught_up = asyncio.Event()
    await asyncio.gather(
        consume(rt.bus, rt.db, [t.alerts, t.logs, t.tickets, t.incident_commands, t.changes],
                consumers_group(rt.settings), dispatch, t.dead_letters, rt.redactor.redact, stop,
                seal=sealer(rt.settings), caught_up=caught_up),
        close_quiet_incidents(rt, dispatch.ingest, stop, caught_up=caught_up),
        run_retention(rt.db, rt.settings, stop),
        forget_applied_loop(rt.db, rt.settings, stop),
    )
