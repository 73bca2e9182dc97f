"""An incident's key events, rendered from its analysis: alert state changes collapsed across repeats and
instances, the error signatures with counts, changes, human entries. Each line cites its record ("alert:5",
"log:17", "change:3", "slack:U1"), and the same text is the grounding checker's source for it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from summarizer.analysis import Analysis, ChangeFact, SignatureFact
from summarizer.checker import Source
from summarizer.formatting import fmt_datetime, fmt_time, one_line, utc

# Lower is kept first when a timeline must be cut to its length.
MUST, KEY, SIGNAL, CONTEXT, DETAIL = 0, 1, 2, 3, 4


@dataclass
class KeyEvent:
    at: datetime
    priority: int
    ref: str
    text: str  # without time or ref

    def line(self, with_date: bool = False) -> str:
        when = utc(self.at).strftime("%Y-%m-%d %H:%M:%SZ") if with_date else fmt_time(self.at)
        return f"- {when} [{self.ref}] {self.text}"


def signature_text(g: SignatureFact) -> str:
    hosts = f" on {g.host_count} host{'s' if g.host_count != 1 else ''}" if g.host_count else ""
    peak = f", peak {g.peak_count}/min at {g.peak_minute[-5:]}" if g.peak_count > 1 else ""
    span = f"until {fmt_time(g.last_at)}" if g.last_at != g.first_at else "once"
    text = f"{one_line(g.sample, 160)}" if g.sample else f"`{one_line(g.template, 160)}`"
    return f"{g.level} {g.service}: {text} — ×{g.count:,} like it{hosts} ({span}{peak})"


def change_text(c: ChangeFact, role: str = "") -> str:
    who = f" by {c.actor}" if c.actor else ""
    tag = f" — {role}" if role else ""
    desc = f": {one_line(c.description, 160)}" if c.description else ""
    version = f" {c.version}" if c.version else ""
    return f"Change ({c.kind}, {c.source}): {c.action} of {c.service}{version}{who}{desc}{tag}"


def key_events(a: Analysis, opened: tuple[datetime, str, str] | None,
               closed: tuple[datetime, str, str] | None, correlated: list[tuple[datetime, str, str]]
               ) -> list[KeyEvent]:
    out: list[KeyEvent] = []
    if opened:
        out.append(KeyEvent(opened[0], MUST, opened[1], opened[2]))
    for span in a.alerts:
        many = f", {span.instances} instances" if span.instances > 1 else ""
        out.append(KeyEvent(span.first_start, KEY, span.ref,
                            f"{span.name} firing on {span.service} ({span.severity}{many})"))
        if span.last_end:
            out.append(KeyEvent(span.last_end, KEY, span.end_ref, f"{span.name} resolved on {span.service}"))
    for n, g in enumerate(symptoms(a)):
        out.append(KeyEvent(g.first_at, SIGNAL if n < 6 else DETAIL, g.ref, signature_text(g)))
    recoveries = {id(c) for c in a.recoveries}
    for c in a.changes:
        role = ("likely trigger: " + c.relation) if c is a.trigger else "recovery action" if id(c) in recoveries else ""
        out.append(KeyEvent(c.at, MUST if role else CONTEXT, c.ref, change_text(c, role)))
    for h in a.human:
        out.append(KeyEvent(h.at, KEY, h.ref, one_line(h.text)))
    for at, ref, text in correlated:
        out.append(KeyEvent(at, CONTEXT, ref, one_line(text)))
    if closed:
        out.append(KeyEvent(closed[0], MUST, closed[1], closed[2]))
    return out


def symptoms(a: Analysis) -> list[SignatureFact]:
    """The signatures worth a timeline line: not background noise, and errors, or warnings at least a tenth as
    frequent as the most frequent signature (a few slow queries during an outage are not news)."""
    shown = [g for g in a.signatures if not g.background]
    top = max((g.count for g in shown), default=0)
    return [g for g in shown if g.level in ("ERROR", "CRITICAL") or g.count * 10 >= top]


def fit(events: list[KeyEvent], limit: int) -> tuple[list[KeyEvent], int]:
    """The events to show within `limit` lines, most important first, in time order; and how many were left out."""
    ranked = sorted(events, key=lambda e: (e.priority, utc(e.at)))
    kept = ranked[:limit]
    return sorted(kept, key=lambda e: (utc(e.at), e.priority)), len(events) - len(kept)


def analysis_text(a: Analysis) -> str:
    """The analysis's own figures as one source: the impact window and detection delays it computed."""
    parts = [f"Services affected: {', '.join(a.services)}."]
    if a.impact_start:
        parts.append(f"Impact started {fmt_datetime(a.impact_start)} ({fmt_time(a.impact_start)}).")
    if a.impact_end:
        parts.append(f"Impact ended {fmt_datetime(a.impact_end)} ({fmt_time(a.impact_end)}) when the last alert "
                     f"resolved; impact lasted {span(a.impact_start, a.impact_end)}.")
    if a.first_error_at:
        parts.append(f"First error {fmt_datetime(a.first_error_at)}.")
    if a.first_alert_at:
        parts.append(f"First alert {fmt_datetime(a.first_alert_at)}.")
    if (delay := a.detection_delay_s()) is not None:
        parts.append(f"Detection delay {span_s(delay)}.")
    if a.host_count:
        parts.append(f"{a.host_count} hosts logged errors.")
    for c in a.triggers:
        if a.impact_start and a.impact_start >= c.at:
            parts.append(f"{c.ref} came {span(c.at, a.impact_start)} before the impact started.")
    return " ".join(parts)


def span_s(seconds: float) -> str:
    seconds = int(seconds)
    hours, rem = divmod(seconds, 3600)
    minutes, secs = divmod(rem, 60)
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m {secs}s" if minutes else f"{secs}s"


def span(start: datetime | None, end: datetime | None) -> str:
    return span_s((utc(end) - utc(start)).total_seconds()) if start and end else "unknown"


def analysis_sources(a: Analysis) -> list[Source]:
    out = [Source("analysis", analysis_text(a))]
    for e in key_events(a, None, None, []):
        out.append(Source(e.ref, f"{fmt_datetime(e.at)} {e.text}"))
    return out
