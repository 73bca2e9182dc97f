"""The incident timeline: made from the recorded events only, never by a model, so it never invents a time."""

from __future__ import annotations

from summarizer.checker import Corpus
from summarizer.facts import NO_MODEL, Draft, IncidentFacts, dedupe, incident_sources, sorted_events
from summarizer.formatting import fmt_datetime, fmt_time, one_line, utc
from summarizer.guard import residual
from summarizer.keyevents import fit, key_events


def build_timeline(facts: IncidentFacts) -> Draft:
    """Deterministic timeline from the recorded events only; never invents a time. With an analysis, the key
    events only, within facts.timeline_limit lines."""
    if facts.analysis is not None:
        return _key_event_timeline(facts)
    events = sorted_events(facts)
    lines = [
        f"**Incident #{facts.id}: {facts.title}** — service `{facts.service}`, severity {facts.severity}, "
        f"status {facts.status}",
        "",
        f"- {fmt_time(facts.opened_at)} incident opened ({fmt_datetime(facts.opened_at)})",
    ]
    opened_line = lines.pop()
    # The incident record may carry its own opened/closed events; add ours only where it does not.
    kinds = {ev.source for ev in events}
    entries = [] if "opened" in kinds else [(utc(facts.opened_at), 0, opened_line)]
    for n, ev in enumerate(events, start=1):
        entries.append((utc(ev.at), n, f"- {fmt_time(ev.at)} [{ev.ref}] {one_line(ev.text)}"))
    if facts.closed_at is not None and "closed" not in kinds:
        entries.append(
            (
                utc(facts.closed_at),
                len(events) + 1,
                f"- {fmt_time(facts.closed_at)} incident closed ({fmt_datetime(facts.closed_at)})",
            )
        )
    entries.sort(key=lambda e: (e[0], e[1]))
    days = {e[0].date() for e in entries}
    if len(days) > 1:  # spans midnight: show the date on every line
        entries = [
            (t, n, line.replace(f"- {fmt_time(t)}", f"- {fmt_datetime(t)}", 1)) for t, n, line in entries
        ]
    lines.extend(line for _, _, line in entries)
    if not events:
        lines.append("")
        lines.append("_No events were recorded for this incident._")
    notes = [] if events else ["no events recorded"]
    body = "\n".join(lines)
    return Draft(
        kind="timeline",
        title=f"Timeline: incident #{facts.id} — {facts.title}",
        body=body,
        sources=dedupe([ev.ref for ev in events]),
        model=NO_MODEL,
        notes=notes,
        unsupported_claims=residual(body, Corpus(incident_sources(facts, []))),
    )


def _entry(facts: IncidentFacts, kind: str) -> list[tuple]:
    return [(e.at, e.ref, e.text) for e in sorted_events(facts) if e.source == kind]


def _key_event_timeline(facts: IncidentFacts) -> Draft:
    a = facts.analysis
    opened, closed = _entry(facts, "opened"), _entry(facts, "closed")
    events = key_events(a, opened[0] if opened else (facts.opened_at, f"incident:{facts.id}", "Incident opened"),
                        closed[-1] if closed else None, _entry(facts, "correlated"))
    header = [
        f"**Incident #{facts.id}: {facts.title}** — services {', '.join(f'`{s}`' for s in a.services)}, "
        f"severity {facts.severity}, status {facts.status}",
        "",
    ]
    shown, left = fit(events, facts.timeline_limit - len(header) - 2)
    with_date = len({utc(e.at).date() for e in shown}) > 1  # spans midnight: show the date on every line
    lines = header + [e.line(with_date) for e in shown]
    if left:
        lines += ["", f"_{left} less important events left out; the full list: "
                      f"`opsdraft drafts show <draft id> --events`._"]
    body = "\n".join(lines)
    return Draft(kind="timeline", title=f"Timeline: incident #{facts.id} — {facts.title}", body=body,
                 sources=dedupe([e.ref for e in shown]), model=NO_MODEL, notes=[],
                 unsupported_claims=residual(body, Corpus(incident_sources(facts, []))))
