"""Incident times as an on-call engineer counts them: an incident fires in one or more windows (a reopen starts a
new one), each from its first alert's start to the resolve of the last alert firing in it, in the events' own
times (a replay of last week's outage lasts what it lasted, not until it was processed). The quiet period only
delays the close; it is never part of a window. Stored on Incident.windows; read by the summarizer."""

from __future__ import annotations

from datetime import datetime

from opsdraft.models import Incident


def _iso(at: datetime) -> str:
    return at.isoformat()


def windows_of(incident: Incident) -> list[tuple[datetime, datetime | None]]:
    """The firing windows, oldest first; an incident from before windows were kept has one, opened..closed."""
    if not incident.windows:
        return [(incident.opened_at, incident.closed_at)]
    return [(datetime.fromisoformat(start), datetime.fromisoformat(end) if end else None)
            for start, end in incident.windows]


def start_window(incident: Incident, at: datetime) -> None:
    """A new firing window at `at`. One that starts before the last window ended (events out of order, or a
    re-fire within the last) continues that window instead of overlapping it."""
    windows = [list(w) for w in incident.windows or []]
    if windows and windows[-1][1] is None:
        return  # still firing: the window in progress goes on
    if windows and datetime.fromisoformat(windows[-1][1]) >= at:
        windows[-1][1] = None
    else:
        windows.append([_iso(at), None])
    incident.windows = windows  # a new list: SQLAlchemy sees the change of a JSON column only by assignment


def end_window(incident: Incident, at: datetime) -> None:
    """The window in progress ends at `at` (the resolve of its last alert), never before it started."""
    windows = [list(w) for w in incident.windows or []] or [[_iso(incident.opened_at), None]]
    if windows[-1][1] is None:
        windows[-1][1] = _iso(max(at, datetime.fromisoformat(windows[-1][0])))
        incident.windows = windows


def firing_seconds(windows: list[tuple[datetime, datetime | None]]) -> float | None:
    """The total of the ended windows; None while one is still open."""
    if any(end is None for _, end in windows):
        return None
    return sum(max(0.0, (end - start).total_seconds()) for start, end in windows if end is not None)
