"""The consumers role: ingest alerts, logs, tickets and incident commands; close quiet incidents."""

from __future__ import annotations

import asyncio
import logging
import uuid

from sqlalchemy.orm import Session

from consumers.payloads import parse_alerts, parse_log, parse_ticket
from consumers.service import Ingest
from consumers.textlogs import parse_text_log
from opsdraft import events
from opsdraft.bus import InvalidMessage, Message, consume
from opsdraft.events import IncidentCommand
from opsdraft.metrics import INCIDENTS
from opsdraft.models import Incident, utcnow
from opsdraft.privacy import sealer
from opsdraft.runtime import Runtime

log = logging.getLogger(__name__)


class Dispatcher:
    def __init__(self, rt: Runtime):
        self.ingest = Ingest(rt.settings, rt.redactor)
        t = rt.settings.topics
        self.log_topic = t.logs
        self.routes = {t.alerts: self.alerts, t.tickets: self.tickets, t.incident_commands: self.command}

    def __call__(self, s: Session, msg: Message) -> None:
        if msg.topic == self.log_topic:
            return self.logs(s, msg)
        self.routes[msg.topic](s, msg.json())

    def alerts(self, s: Session, data) -> None:
        for ev in parse_alerts(data):
            self.ingest.apply_alert(s, ev)

    def logs(self, s: Session, msg: Message) -> None:
        """JSON log objects, or plain-text lines in the shapes consumers/textlogs.py understands."""
        try:
            text = msg.value.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidMessage(f"not UTF-8: {exc}") from None
        if text.lstrip().startswith("{"):
            return self.ingest.apply_log(s, parse_log(msg.json()))
        try:
            fields = parse_text_log(text)
        except ValueError as exc:  # the shape matched but a field did not parse (e.g. a bad timestamp)
            raise InvalidMessage(f"plain-text log line: {exc}") from None
        if fields is None:
            raise InvalidMessage("neither a JSON log object nor a plain-text log line in a known shape "
                                 "(RFC 5424, RFC 3164, or 'timestamp level service message')")
        self.ingest.apply_log(s, parse_log(fields))

    def tickets(self, s: Session, data) -> None:
        self.ingest.apply_ticket(s, parse_ticket(data))

    def command(self, s: Session, data) -> None:
        try:
            cmd = IncidentCommand.model_validate(data)
        except ValueError as exc:
            raise InvalidMessage(f"invalid incident command: {exc}") from None
        if cmd.action == "declare":
            return self.declare(s, cmd)
        incident = s.get(Incident, cmd.incident_id)
        if incident is None:
            raise InvalidMessage(f"incident {cmd.incident_id} does not exist")
        self.ingest.close_incident(s, incident, utcnow(), cmd.note, cmd.actor)

    def declare(self, s: Session, cmd: IncidentCommand) -> None:
        """A declared incident has a group key no alert can match and no alerts, so the quiet period never
        closes it: only /incident close does."""
        now = utcnow()
        incident = Incident(title="(declared)", group_key=f"declared:{uuid.uuid4().hex}", service="declared",
                            severity=cmd.severity, status="open", opened_at=now)
        s.add(incident)
        s.flush()
        incident.title = self.ingest.scoped(s, f"incident:{incident.id}").text(cmd.title.strip())[:300]
        INCIDENTS.labels("opened").inc()
        self.ingest._timeline(s, incident, now, "opened", f"Incident declared by {cmd.actor}: {incident.title}",
                              f"slack:{cmd.actor}")
        events.incident_opened(s, self.ingest.settings, incident)


async def close_quiet_incidents(rt: Runtime, ingest: Ingest, stop: asyncio.Event, every: float = 1.0) -> None:
    while not stop.is_set():
        try:
            def _close():
                with rt.db.session() as s:
                    return ingest.close_quiet_incidents(s, utcnow())

            closed = await asyncio.to_thread(_close)
            if closed:
                log.info("closed incidents after quiet period: %s", closed)
        except Exception:
            log.warning("closing quiet incidents failed; will retry", exc_info=True)
        try:
            await asyncio.wait_for(stop.wait(), every)
        except TimeoutError:
            pass


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    dispatch = Dispatcher(rt)
    t = rt.settings.topics
    await asyncio.gather(
        consume(rt.bus, rt.db, [t.alerts, t.logs, t.tickets, t.incident_commands],
                f"{rt.settings.consumer_group}-consumers", dispatch, t.dead_letters, rt.redactor.redact, stop,
                seal=sealer(rt.settings)),
        close_quiet_incidents(rt, dispatch.ingest, stop),
    )
