"""The summarizer role: turns draft requests into drafts, and keeps the retrieval index up to date."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from opsdraft.bus import InvalidMessage, consume, typed_handler
from opsdraft.events import (
    DraftReady,
    DraftRequest,
    IndexUpdate,
    SimilarMatch,
    SimilarRequest,
    SimilarResult,
    publish,
)
from opsdraft.incident_times import windows_of
from opsdraft.metrics import DRAFT_SECONDS, DRAFTS
from opsdraft.models import Alert, Draft, DraftStatus, Incident, LogEvent, Ticket, TimelineEntry
from opsdraft.runtime import Runtime
from opsdraft.settings import Settings
from summarizer.embeddings import get_embedder
from summarizer.facts import Draft as DraftText
from summarizer.facts import Event, IncidentFacts, TicketFacts
from summarizer.helpcentre import exemplar_doc, help_docs
from summarizer.index import Doc, VectorIndex, runbook_docs
from summarizer.llm import ModelUnavailable, TextGenerator, load_generator
from summarizer.postmortem import build_postmortem, postmortem_template
from summarizer.record import analyse
from summarizer.ticket_reply import ReplyPolicy, build_ticket_reply
from summarizer.timeline import build_timeline

log = logging.getLogger(__name__)
# Replies rank help articles and approved replies above engineering runbooks; whole tickets are never searched.
REPLY_KINDS = {"help", "exemplar", "runbook"}
REPLY_WEIGHTS = {"help": 1.0, "exemplar": 0.9, "runbook": 0.5}


def incident_facts(s: Session, incident_id: int, settings: Settings | None = None) -> IncidentFacts:
    """The incident's record; with `settings`, its analysis too (what drafts are made from)."""
    inc = s.get(Incident, incident_id)
    if inc is None:
        raise InvalidMessage(f"incident {incident_id} does not exist")
    events = [Event(at=e.at, source=e.kind, text=e.text, ref=e.source_ref)
              for e in s.scalars(select(TimelineEntry).where(TimelineEntry.incident_id == inc.id))]
    facts = IncidentFacts(id=inc.id, title=inc.title, service=inc.service, severity=inc.severity,
                          status=inc.status, opened_at=inc.opened_at, closed_at=inc.closed_at, events=events,
                          windows=windows_of(inc))
    if settings is not None:
        facts.analysis = analyse(s, inc.id, settings)
        facts.timeline_limit = settings.timeline_max_lines
    return facts


def search_text(facts: IncidentFacts) -> str:
    """What a postmortem's runbooks are searched by: the title and, from the analysis, the main error signatures
    and the trigger; without one, the first events."""
    a = facts.analysis
    if a is None:
        return f"{facts.title}\n" + "\n".join(e.text for e in facts.events[:20])
    parts = [facts.title, *(f"{g.level} {g.service} {g.template}" for g in a.signatures if not g.background)][:6]
    if a.trigger:
        parts.append(a.trigger.label())
    return "\n".join(parts)


def ticket_facts(s: Session, ticket_id: int) -> TicketFacts:
    t = s.get(Ticket, ticket_id)
    if t is None:
        raise InvalidMessage(f"ticket {ticket_id} does not exist")
    return TicketFacts(key=t.external_id, subject=t.subject, body=t.body, requester=t.requester, tags=t.tags,
                       comments=[str(c.get("text", "")) for c in t.comments or [] if isinstance(c, dict)])


def incident_doc(s: Session, incident_id: int) -> Doc:
    f = incident_facts(s, incident_id)
    alerts = s.scalars(select(Alert).where(Alert.incident_id == incident_id))
    logs = s.scalars(select(LogEvent).where(LogEvent.incident_id == incident_id, LogEvent.level == "ERROR"))
    text = "\n".join([f.title, *(a.text for a in alerts), *(e.text for e in f.events), *(m.message for m in logs)])
    return Doc(key=f"incident:{f.id}", title=f"Incident #{f.id}: {f.title}", text=text[:4000], kind="incident")


class Summarizer:
    """Holds the model and the index; both load lazily, once per process."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self._generator: TextGenerator | None = None
        self._model_note = ""
        self._model_lock = threading.Lock()
        self._model_loaded = False
        self.index = VectorIndex(settings.index_dir, get_embedder(), faiss_threads=settings.faiss_threads)
        self._index_lock = threading.Lock()

    def ensure_runbooks_indexed(self) -> int:
        """Index the runbooks and the help centre if the index has none of them yet."""
        with self._index_lock:
            keys = self.index.keys()
            docs = [] if any(k.startswith("runbook:") for k in keys) else runbook_docs(self.settings.runbooks_dir)
            if not any(k.startswith("help:") for k in keys):
                docs += help_docs(self.settings.help_centre_dir)
            if not docs:
                return 0
            n = self.index.upsert(docs)
            self.index.save()
            return n

    def generator(self) -> TextGenerator | None:
        with self._model_lock:
            if not self._model_loaded:
                try:
                    self._generator = load_generator(self.settings.model, self.settings.model_cache_dir,
                                                     progress=lambda m: log.info("model: %s", m),
                                                     settings=self.settings)
                except ModelUnavailable as exc:
                    self._model_note = f"model '{self.settings.model}' unavailable: {exc}"
                    log.warning("%s; drafting without a model", self._model_note)
                self._model_loaded = True
            return self._generator

    def make(self, s: Session, req: DraftRequest) -> DraftText:
        started = time.perf_counter()
        if req.subject_type == "incident":
            facts = incident_facts(s, req.subject_id, self.settings)
            if req.kind == "timeline":
                draft = build_timeline(facts)
            elif req.kind == "postmortem":
                hits = self.index.search(search_text(facts), k=4, kinds={"runbook", "incident"})
                hits = [h for h in hits if h.key != f"incident:{facts.id}"]
                draft = self._generate(build_postmortem, facts, hits, req.instructions)
            else:
                raise InvalidMessage(f"a {req.kind} draft cannot be made for an incident")
            draft.analysis = facts.analysis.to_json() if facts.analysis else {}
        else:
            if req.kind != "ticket_reply":
                raise InvalidMessage(f"a {req.kind} draft cannot be made for a ticket")
            draft = self._reply(ticket_facts(s, req.subject_id), req.instructions)
        DRAFT_SECONDS.labels(req.kind).observe(time.perf_counter() - started)
        DRAFTS.labels(req.kind, draft.model).inc()
        return draft

    def _reply(self, ticket: TicketFacts, instructions: str) -> DraftText:
        def search(query: str):
            return self.index.search(query, k=4, kinds=REPLY_KINDS, weights=REPLY_WEIGHTS)

        hits = search(f"{ticket.subject}\n{ticket.body}")
        policy = ReplyPolicy.from_settings(self.settings)
        gen = self.generator()
        try:
            draft = build_ticket_reply(ticket, hits, gen, self.settings.model_max_new_tokens,
                                       instructions=instructions, search=search, policy=policy)
        except Exception as exc:  # a failing model must not lose the draft: fall back, and say so
            log.exception("model failed; making a deterministic reply")
            draft = build_ticket_reply(ticket, hits, None, search=search, policy=policy)
            draft.notes.append(f"The model failed ({type(exc).__name__}); this draft was made without it.")
        if self._model_note and gen is None:
            draft.notes.append(self._model_note)
        return draft

    def _generate(self, build, facts, hits, instructions: str = "") -> DraftText:
        gen = self.generator()
        layout = {}
        if build is build_postmortem:  # read per draft, as before: an edited template applies without a restart
            layout["template"] = postmortem_template(self.settings)
        extra = dict(layout)
        if instructions and "instructions" in inspect.signature(build).parameters:
            extra["instructions"] = instructions  # a reviewer's Regenerate instructions (already redacted)
        try:
            draft = build(facts, hits, gen, max_new_tokens=self.settings.model_max_new_tokens, **extra)
        except Exception as exc:  # a failing model must not lose the draft: fall back, and say so
            log.exception("model failed; making a deterministic draft")
            draft = build(facts, hits, None, **layout)
            draft.notes.append(f"The model failed ({type(exc).__name__}); this draft was made without it.")
        if self._model_note and gen is None:
            draft.notes.append(self._model_note)
        return draft

    def handle_request(self, s: Session, req: DraftRequest) -> None:
        if s.scalar(select(Draft.id).where(Draft.request_id == req.request_id)):
            return  # made already; this is a redelivery
        text = self.make(s, req)
        version, parent = 1, None
        if req.parent_draft_id:
            parent = s.get(Draft, req.parent_draft_id)
            version = parent.version + 1 if parent else 1
            if parent:
                how = f" with instructions: {req.instructions}" if req.instructions else ""
                text.notes.append(f"Regenerated by <@{req.requested_by}> from v{parent.version}{how}.")
        row = Draft(request_id=req.request_id, kind=req.kind, subject_type=req.subject_type,
                    subject_id=req.subject_id, version=version, parent_id=parent.id if parent else None,
                    title=text.title, body=text.body, sources=text.sources, notes=text.notes, model=text.model,
                    unsupported_claims=text.unsupported_claims, analysis=text.analysis, citations=text.citations)
        if req.kind == "ticket_reply":  # a follow-up's suggestion replaces the one still waiting for approval
            s.execute(update(Draft).where(Draft.kind == "ticket_reply", Draft.subject_id == req.subject_id,
                                          Draft.status == DraftStatus.pending).values(status=DraftStatus.superseded))
        s.add(row)
        s.flush()
        publish(s, self.settings.topics, DraftReady(draft_id=row.id, kind=req.kind))

    def handle_similar(self, s: Session, req: SimilarRequest) -> None:
        """Closed incidents most like this one, by the same embeddings the drafts retrieve with."""
        doc = incident_doc(s, req.incident_id)
        hits = [h for h in self.index.search(doc.text, k=req.k + 1, kinds={"incident"}) if h.key != doc.key]
        matches = [SimilarMatch(key=h.key, title=h.title, score=round(h.score, 3)) for h in hits[:req.k]]
        publish(s, self.settings.topics, SimilarResult(request=req, matches=matches))

    def handle_index_update(self, s: Session, upd: IndexUpdate) -> None:
        if upd.kind == "incident":
            docs = [incident_doc(s, upd.id)]
        elif upd.kind == "ticket":
            docs = [d for d in [exemplar_of(s, upd.id, self.settings.reply_signoff)] if d is not None]
        else:
            docs = runbook_docs(self.settings.runbooks_dir) + help_docs(self.settings.help_centre_dir)
        with self._index_lock:
            self.index.upsert(docs)
            self.index.save()


def exemplar_of(s: Session, ticket_id: int, signoff: str = "") -> Doc | None:
    """The approved reply of an answered ticket, with the customer's specifics removed (never their text:
    issue 16); None when there is none or nothing general is left of it."""
    if s.get(Ticket, ticket_id) is None:
        raise InvalidMessage(f"ticket {ticket_id} does not exist")
    row = s.execute(select(Draft.id, Draft.body).where(
        Draft.subject_type == "ticket", Draft.subject_id == ticket_id, Draft.status == DraftStatus.published,
    ).order_by(Draft.version.desc()).limit(1)).first()
    return exemplar_doc(row.id, row.body, signoff) if row else None


async def run(rt: Runtime, stop: asyncio.Event) -> None:
    summarizer = await asyncio.to_thread(Summarizer, rt.settings)
    await asyncio.to_thread(summarizer.ensure_runbooks_indexed)
    # Load the model before taking requests so the first draft is not the one that waits for it.
    await asyncio.to_thread(summarizer.generator)
    t = rt.settings.topics
    group = f"{rt.settings.consumer_group}-summarizer"

    dispatch = typed_handler({
        t.draft_requests: (DraftRequest, summarizer.handle_request),
        t.similar_requests: (SimilarRequest, summarizer.handle_similar),
        t.index_updates: (IndexUpdate, summarizer.handle_index_update),
    })
    # Draft requests are made side by side, so an in-process model batches them (HFGenerator) and a model
    # server gets concurrent calls (which vLLM and llama.cpp batch in turn).
    await consume(rt.bus, rt.db, [t.draft_requests, t.similar_requests, t.index_updates], group, dispatch,
                  t.dead_letters, rt.redactor.redact, stop, parallel=rt.settings.model_parallel_drafts)
