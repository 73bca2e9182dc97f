"""How times and event text are shown in drafts (shared by the facts, the timeline and the key events)."""

from __future__ import annotations

from datetime import UTC, datetime


def utc(dt: datetime) -> datetime:
    if dt.tzinfo is None:
        return dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC)


def fmt_time(dt: datetime) -> str:
    return utc(dt).strftime("%H:%M:%SZ")


def fmt_datetime(dt: datetime) -> str:
    return utc(dt).strftime("%Y-%m-%d %H:%M:%SZ")


def one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    # cut at a word boundary: half a version or number would be a claim the sources do not make
    return (cut.rsplit(" ", 1)[0] if " " in cut else cut).rstrip() + "…"
