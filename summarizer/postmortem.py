"""The postmortem: facts filled in from the incident record; the model phrases only Summary, Root cause and
Lessons, which the output guard and the grounding checker verify before they are used."""

from __future__ import annotations

import re
from string import Template
from typing import TYPE_CHECKING

from summarizer.checker import Corpus
from summarizer.config import current_settings
from summarizer.facts import (
    NO_MODEL,
    Draft,
    Event,
    IncidentFacts,
    alert_events,
    dedupe,
    duration,
    duration_between,
    incident_sources,
    sorted_events,
)
from summarizer.factsheet import (
    claim_check,
    detection_section,
    fact_sheet,
    impact_lines,
    resolution_section,
    trigger_section,
)
from summarizer.formatting import fmt_datetime, fmt_time, one_line
from summarizer.guard import (
    checker_note,
    drop_removed_sentences,
    drop_unknown_citations,
    ground_prose,
    residual,
    sanitize_model_output,
)
from summarizer.prompts import POSTMORTEM_SYSTEM, POSTMORTEM_TEMPLATE, UNSUPPORTED, hits_block, reviewer_block
from summarizer.timeline import build_timeline

if TYPE_CHECKING:  # only types here: the index loads FAISS, the model runtime is not needed to draft
    from opsdraft.settings import Settings
    from summarizer.index import Hit
    from summarizer.llm import TextGenerator

_NO_MODEL_NOTE = (
    "_Drafted without a language model: prose sections are left for the incident owner; "
    "facts come from the incident record._\n\n"
)

# How the model may label its three lines; small models vary the wording and the markup around it.
_LABELS = {
    "summary": "summary",
    "root cause": "root_cause",
    "rootcause": "root_cause",
    "lessons": "lessons",
    "lessons learned": "lessons",
    "lesson": "lessons",
}


def postmortem_template(settings: Settings | None = None) -> str:
    """The Markdown template: the file in settings.postmortem_template (OPSDRAFT_POSTMORTEM_TEMPLATE) if set, else
    the built-in one. Without settings, the current ones."""
    path = (settings if settings is not None else current_settings()).postmortem_template
    return path.read_text(encoding="utf-8") if path else POSTMORTEM_TEMPLATE


def build_postmortem(
    facts: IncidentFacts,
    hits: list[Hit],
    generator: TextGenerator | None,
    max_new_tokens: int = 200,
    *,
    instructions: str = "",
    template: str | None = None,
) -> Draft:
    """Postmortem from the facts; the model phrases Summary, Root cause and Lessons, which the checker verifies.

    ``instructions`` is a reviewer's request from Regenerate: it shapes the phrasing, never the facts.
    ``template`` is Markdown with ``$summary``-style fields (see prompts.POSTMORTEM_TEMPLATE); by default
    postmortem_template(), from the current settings.
    """
    events = sorted_events(facts)
    corpus = Corpus(incident_sources(facts, hits))
    prose, removed, notes = _model_prose(facts, hits, generator, max_new_tokens, instructions, corpus)
    fields = {
        "id": str(facts.id),
        "title": facts.title,
        "model_note": _NO_MODEL_NOTE if generator is None else "",
        "summary": _summary(facts, events, prose.get("summary")),
        "impact": _impact(facts),
        "timeline": build_timeline(facts).body,
        "root_cause": prose.get("root_cause") or UNSUPPORTED,
        "trigger": trigger_section(facts.analysis) if facts.analysis else _trigger(events),
        "resolution": resolution_section(facts.analysis) if facts.analysis else _resolution(facts, events),
        "detection": detection_section(facts.analysis) if facts.analysis else _detection(facts, events),
        "action_items": _action_items(hits),
        "lessons": prose.get("lessons") or UNSUPPORTED,
        "sources": _sources_section(events, hits),
    }
    body = Template(template or postmortem_template()).safe_substitute(fields)
    body = body.rstrip() + "\n"
    return Draft(
        kind="postmortem",
        title=f"Postmortem: incident #{facts.id} — {facts.title}",
        body=body,
        sources=dedupe([*(e.ref for e in events), *(h.key for h in hits)]),
        model=generator.name if generator is not None else NO_MODEL,
        notes=notes,
        unsupported_claims=[f"removed {r}" for r in removed] + residual(body, corpus),
    )


# --------------------------------------------------------------------------- the model's prose


def _postmortem_prompt(facts: IncidentFacts, hits: list[Hit], instructions: str = "") -> list[dict[str, str]]:
    if facts.analysis is not None:  # a compact fact sheet, bounded whatever the incident's size
        user = (f"{fact_sheet(facts.analysis, facts.title)}\n\n"
                f"Runbook notes:\n{hits_block(hits[:2], 220) or '(none)'}{reviewer_block(instructions)}")
        return [{"role": "system", "content": POSTMORTEM_SYSTEM}, {"role": "user", "content": user}]
    events = sorted_events(facts)
    # keep the prompt small: the first and last events matter most
    shown = events if len(events) <= 12 else events[:8] + events[-4:]
    ev_lines = "\n".join(f"{fmt_time(e.at)} {e.source}: {one_line(e.text, 140)}" for e in shown)
    user = (
        f"Incident: {facts.title}\nService: {facts.service}\nSeverity: {facts.severity}\n"
        f"Duration: {duration(facts)}\n\nEvents:\n{ev_lines or '(none)'}\n\n"
        f"Runbook notes:\n{hits_block(hits[:2], 220) or '(none)'}"
        f"{reviewer_block(instructions)}"
    )
    return [{"role": "system", "content": POSTMORTEM_SYSTEM}, {"role": "user", "content": user}]


def _parse_labelled(text: str) -> dict[str, str]:
    found: dict[str, str] = {}
    current: str | None = None
    for raw in text.splitlines():
        line = raw.strip().strip("*").strip()
        m = re.match(r"^(?:[#*\-\s]*)([A-Za-z ]{5,16})\s*\**\s*:\s*\**\s*(.*)$", line)
        label = _LABELS.get(m.group(1).strip().lower()) if m else None
        if m and label:
            current = label
            found[current] = m.group(2).strip()
        elif current and line:
            found[current] = (found[current] + " " + line).strip()
    return {k: v for k, v in found.items() if v}


def _is_unknown(text: str) -> bool:
    return not text or text.strip(" .").lower() in {"unknown", "n/a", "none", "not known", "tbd"}


def _model_prose(
    facts: IncidentFacts,
    hits: list[Hit],
    generator: TextGenerator | None,
    max_new_tokens: int,
    instructions: str,
    corpus: Corpus,
) -> tuple[dict[str, str], list[str], list[str]]:
    """The sections the model phrased, as they survive the guard and the checker: (prose, removed, notes)."""
    if generator is None:
        return {}, [], ["made without a model"]
    notes: list[str] = []
    try:
        raw = generator.generate(_postmortem_prompt(facts, hits, instructions), max_new_tokens=max_new_tokens)
    except Exception as exc:  # noqa: BLE001 - a model failure must not lose the draft
        raw = ""
        notes.append(f"model failed, prose left for the owner: {exc}")
    # invented times, numbers, versions...: the checker (ground_prose) removes their sentences and counts them
    cleaned = drop_unknown_citations(sanitize_model_output(raw), {h.key for h in hits})
    prose = {k: drop_removed_sentences(v) for k, v in _parse_labelled(cleaned).items() if not _is_unknown(v)}
    if not prose and cleaned and not notes:  # unlabelled text: take it as the summary
        prose = {"summary": one_line(cleaned, 600)}
    prose, removed, unsourced = ground_prose(prose, corpus)
    if facts.analysis is not None:  # a deploy, rollback, failover… must be in the record, or it goes
        for key, text in list(prose.items()):
            prose[key], dropped = claim_check(text, facts.analysis)
            removed += dropped
        prose = {k: v for k, v in prose.items() if v}
    if removed or unsourced:
        notes.append(checker_note(len(removed), len(unsourced)))
    notes.append(
        "Summary, Root cause and Lessons learned were phrased by the model; check them against the timeline."
    )
    return prose, removed, notes


# --------------------------------------------------------------------------- sections from the record


def _summary(facts: IncidentFacts, events: list[Event], phrased: str | None) -> str:
    """The model's summary, if any, above the facts it must agree with."""
    deterministic = (
        f"{facts.severity} incident on `{facts.service}`: {facts.title}. "
        f"Opened {fmt_datetime(facts.opened_at)}"
        + (f", closed {fmt_datetime(facts.closed_at)}" if facts.closed_at else ", still open")
        + f" ({duration(facts)}). {len(events)} events recorded."
    )
    return f"{phrased}\n\n_{deterministic}_" if phrased else deterministic


def _impact(facts: IncidentFacts) -> str:
    window = impact_lines(facts.analysis) if facts.analysis else []
    return "\n".join([
        *window,
        f"- Service: `{facts.service}`",
        f"- Severity: {facts.severity}",
        f"- Status: {facts.status}",
        f"- Opened: {fmt_datetime(facts.opened_at)}",
        f"- Closed: {fmt_datetime(facts.closed_at) if facts.closed_at else 'not closed'}",
        f"- Duration: {duration(facts)}",
        f"- Customer impact: {UNSUPPORTED}",
    ])


def _trigger(events: list[Event]) -> str:
    if not events:
        return UNSUPPORTED
    first = events[0]
    return (
        f"First recorded signal: {fmt_time(first.at)} [{first.ref}] {first.source}: {one_line(first.text)}\n\n"
        f"What changed to set it off: {UNSUPPORTED}"
    )


def _resolution(facts: IncidentFacts, events: list[Event]) -> str:
    if not events:
        return UNSUPPORTED
    last = events[-1]
    closed = f"\n\nIncident closed {fmt_datetime(facts.closed_at)}." if facts.closed_at else "\n\nNot closed yet."
    return f"Last recorded event: {fmt_time(last.at)} [{last.ref}] {last.source}: {one_line(last.text)}" + closed


def _detection(facts: IncidentFacts, events: list[Event]) -> str:
    alerts = alert_events(events)
    if not alerts:
        return (
            f"No alert recorded; incident opened {fmt_datetime(facts.opened_at)}. "
            f"How it was noticed: {UNSUPPORTED}"
        )
    first = alerts[0]
    return (
        f"Detected by {first.source} at {fmt_time(first.at)} [{first.ref}]; "
        f"{duration_between(facts.opened_at, first.at)} the incident was opened."
    )


def _action_items(hits: list[Hit]) -> str:
    actions = [
        "| Action | Owner | Due |",
        "| --- | --- | --- |",
    ]
    for hit in [h for h in hits if h.kind == "runbook" and h.key.endswith("#mitigation")][:1]:
        actions.append(f"| Review the mitigation steps in [{hit.key}] against what was done | | |")
    actions.append("| Confirm the root cause and add a regression check | | |")
    actions.append("| Check that alerting fired early enough; tune thresholds if not | | |")
    return "\n".join(actions)


def _sources_section(events: list[Event], hits: list[Hit]) -> str:
    event_lines = [f"- `{ref}`" for ref in dedupe([e.ref for e in events])] or ["- no incident events recorded"]
    return "\n".join([*event_lines, *(f"- [{h.key}] {h.title}" for h in hits)])
