"""Postmortem sections written from the analysis (Trigger, Resolution, Impact, Detection), the compact fact sheet
the model phrases Summary, Root cause and Lessons from, and the claim check on what it wrote."""

from __future__ import annotations

import re

from summarizer.analysis import Analysis
from summarizer.checker import split_sentences
from summarizer.formatting import fmt_datetime, fmt_time, one_line
from summarizer.keyevents import change_text, signature_text, span, span_s, symptoms
from summarizer.prompts import UNSUPPORTED


def trigger_section(a: Analysis) -> str:
    start = f"{fmt_time(a.impact_start)}" if a.impact_start else "the first signal"
    if not a.trigger:
        first = min(symptoms(a), key=lambda g: g.first_at, default=None)
        signal = (f" The first signal was {signature_text(first)}, first at {fmt_time(first.first_at)} [{first.ref}]."
                  if first else "")
        return (f"No change (deploy, config, feature flag or infrastructure action) was recorded in the hour "
                f"before the first signal at {start}.{signal} What changed to set it off: {UNSUPPORTED}")
    t = a.trigger
    lead = f"{span(t.at, a.impact_start)} later" if a.impact_start and a.impact_start >= t.at else "right after"
    lines = [f"**{t.label()}** at {fmt_time(t.at)} [{t.ref}]: {t.relation}; the impact started at {start}, {lead}."]
    for other in a.triggers[1:]:
        lines.append(f"- Less likely: {other.label()} at {fmt_time(other.at)} [{other.ref}] ({other.relation})")
    return "\n".join(lines)


def resolution_section(a: Analysis) -> str:
    if a.impact_end is None:
        return f"The alerts had not all resolved when this was drafted. Resolution: {UNSUPPORTED}"
    last = max(a.alerts, key=lambda s: s.last_end)
    resolved = (f"The alerts resolved by {fmt_time(a.impact_end)} "
                f"(last: {last.name} on {last.service} [{last.end_ref}]).")
    if a.recovery is None:
        return f"{resolved} No recovery action (rollback, restart, failover, renewal, scaling) was recorded."
    steps = [f"**{r.label()}** at {fmt_time(r.at)} [{r.ref}]" for r in a.recoveries]
    return "; then ".join(steps) + f". {resolved}"


def impact_lines(a: Analysis) -> list[str]:
    lines = [f"- Services: {', '.join(f'`{s}`' for s in a.services)}"]
    if a.impact_start:
        end = fmt_datetime(a.impact_end) if a.impact_end else "not over"
        lines.append(f"- Impact window: {fmt_datetime(a.impact_start)} to {end} "
                     f"({span(a.impact_start, a.impact_end) if a.impact_end else 'ongoing'})")
    if a.host_count:
        lines.append(f"- Hosts logging errors: {a.host_count}")
    return lines


def detection_section(a: Analysis) -> str:
    parts = []
    if a.first_error_at:
        parts.append(f"First error logged at {fmt_time(a.first_error_at)}")
    if a.first_alert_at:
        first = a.alerts[0]
        parts.append(f"first alert {first.name} at {fmt_time(a.first_alert_at)} [{first.ref}]")
    if (delay := a.detection_delay_s()) is not None:
        parts.append(f"a detection delay of {span_s(delay)}")
    if a.first_human_at:
        parts.append(f"first human action at {fmt_time(a.first_human_at)}")
    return ("; ".join(parts) + ".") if parts else f"How it was noticed: {UNSUPPORTED}"


def fact_sheet(a: Analysis, title: str) -> str:
    """What the model may say, in a few lines: bounded whatever the incident's size."""
    lines = [f"Incident: {title}", f"Services: {', '.join(a.services)}"]
    if a.impact_start:
        lines.append(f"Impact: {fmt_time(a.impact_start)} to {fmt_time(a.impact_end) if a.impact_end else 'ongoing'}"
                     + (f" ({span(a.impact_start, a.impact_end)})" if a.impact_end else ""))
    lines.append("Trigger: " + (change_text(a.trigger) if a.trigger else "no change recorded"))
    lines.append("Recovery: " + (change_text(a.recovery) if a.recovery else "no recovery action recorded"))
    lines += [f"Alert: {s.name} on {s.service}" for s in a.alerts[:5]]
    lines += [f"Errors: {signature_text(g)}" for g in symptoms(a)[:4]]
    lines += [f"Human: {one_line(h.text, 120)}" for h in a.human[:4]]
    return "\n".join(lines)


# A claim of this kind needs the analysis to hold the matching evidence, or its sentence is removed.
_CLAIMS: list[tuple[str, re.Pattern[str], object]] = [
    ("deploy", re.compile(r"\b(deploy(ed|ment|s)?|release[ds]?|rolled out|roll-?out)\b", re.I),
     lambda a: any(c.action in ("deploy", "rollout") or c.kind == "deploy" for c in a.changes)),
    ("rollback", re.compile(r"\b(roll(ed|ing)? ?back|revert(ed|ing)?)\b", re.I),
     lambda a: any(c.action == "rollback" for c in a.changes)),
    ("failover", re.compile(r"\b(fail(ed)? ?over|promot(ed|ion))\b", re.I),
     lambda a: any(c.action == "failover" for c in a.changes)),
    ("restart", re.compile(r"\brestart(ed|ing|s)?\b", re.I), lambda a: any(c.action == "restart" for c in a.changes)),
    ("scaling", re.compile(r"\b(scaled?|scaling|autoscal\w*)\b", re.I),
     lambda a: any(c.action == "scale" for c in a.changes)),
    ("config change", re.compile(r"\b(config(uration)? (change|push|update)|feature flag)\b", re.I),
     lambda a: any(c.kind in ("config", "feature-flag") for c in a.changes)),
    ("certificate", re.compile(r"\bcertificate|\bcert\b|\bTLS\b", re.I),
     lambda a: any(re.search(r"cert|tls", f"{c.description} {c.action}", re.I) for c in a.changes)
     or any(re.search(r"cert|tls", g.template, re.I) for g in a.signatures)),
]
_CAUSAL = re.compile(r"\b(caused|because|due to|root cause|triggered|led to|resulted in)\b", re.I)


def claim_check(text: str, a: Analysis) -> tuple[str, list[str]]:
    """Drop each sentence that claims a deploy, rollback, failover, restart, scaling, config change or
    certificate problem the record does not show, or a cause while the analysis found no trigger."""
    kept, removed = [], []
    for sentence in split_sentences(text):
        missing = [name for name, pattern, holds in _CLAIMS if pattern.search(sentence) and not holds(a)]
        if _CAUSAL.search(sentence) and a.trigger is None and not a.signatures:
            missing.append("cause")
        (removed if missing else kept).append(sentence if not missing else f"{sentence} (no {', '.join(missing)} "
                                                                          "in the record)")
    return " ".join(kept), removed
