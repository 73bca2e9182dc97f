"""Plain-text log lines, parsed into the same fields as JSON log lines.

Shapes understood:
- RFC 5424 syslog:  <165>1 2026-11-20T14:02:05.003Z web-01 checkout 4123 ID47 [sd@1 k="v"] message
- RFC 3164 syslog:  <34>Nov 20 14:02:05 web-01 checkout[4123]: message
- "timestamp level service message":  2026-11-20T14:02:05Z ERROR checkout message
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

_SEVERITY = ["CRITICAL", "CRITICAL", "CRITICAL", "ERROR", "WARNING", "INFO", "INFO", "DEBUG"]  # syslog 0..7
_NIL = "-"
_LEVEL_ALIASES = {"NOTICE": "INFO", "WARN": "WARNING", "ERR": "ERROR", "CRIT": "CRITICAL", "FATAL": "CRITICAL"}

_RFC5424 = re.compile(
    r"^<(?P<pri>\d{1,3})>1 (?P<ts>\S+) (?P<host>\S+) (?P<app>\S+) (?P<procid>\S+) (?P<msgid>\S+) "
    r"(?P<sd>-|(?:\[(?:[^\]\\]|\\.)*\])+)(?: (?P<msg>.*))?$", re.S)
_RFC3164 = re.compile(
    r"^<(?P<pri>\d{1,3})>(?P<ts>[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d) (?P<host>\S+) "
    r"(?P<app>[^\s:\[]+)(?:\[(?P<pid>\d+)\])?: ?(?P<msg>.*)$", re.S)
_SIMPLE = re.compile(
    r"^(?P<ts>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)\s+"
    r"\[?(?P<level>TRACE|DEBUG|INFO|NOTICE|WARN|WARNING|ERROR|ERR|CRITICAL|CRIT|FATAL)\]?\s+"
    r"(?P<service>[\w.\-/]+):?\s+(?P<msg>.*)$", re.S | re.I)
_SD_PARAM = re.compile(r'(\S+?)="((?:[^"\\]|\\.)*)"')


def _iso(ts: str) -> datetime:
    dt = datetime.fromisoformat(ts.replace("Z", "+00:00").replace(",", "."))
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def parse_text_log(line: str, now: datetime | None = None) -> dict[str, Any] | None:
    """The fields of a LogLine, or None when the line has none of the shapes above."""
    line = line.strip()
    if m := _RFC5424.match(line):
        pri = int(m["pri"])
        attrs: dict[str, Any] = {"host": m["host"], "facility": pri // 8}
        if m["procid"] != _NIL:
            attrs["procid"] = m["procid"]
        if m["msgid"] != _NIL:
            attrs["msgid"] = m["msgid"]
        if m["sd"] != _NIL:
            attrs.update({k: v.replace('\\"', '"') for k, v in _SD_PARAM.findall(m["sd"])})
        return {"timestamp": _iso(m["ts"]), "service": m["app"] if m["app"] != _NIL else m["host"],
                "level": _SEVERITY[pri % 8], "message": (m["msg"] or "").lstrip("\ufeff"), "attributes": attrs}
    if m := _RFC3164.match(line):
        pri = int(m["pri"])
        now = now or datetime.now(UTC)
        # RFC 3164 carries no year: take the current one, or last year's for a December line read in January.
        ts = datetime.strptime(f"{now.year} {m['ts']}", "%Y %b %d %H:%M:%S").replace(tzinfo=UTC)
        if ts > now.replace(microsecond=0) and (ts - now).days > 1:
            ts = ts.replace(year=now.year - 1)
        attrs = {"host": m["host"], "facility": pri // 8} | ({"pid": m["pid"]} if m["pid"] else {})
        return {"timestamp": ts, "service": m["app"], "level": _SEVERITY[pri % 8], "message": m["msg"],
                "attributes": attrs}
    if m := _SIMPLE.match(line):
        level = m["level"].upper()
        level = _LEVEL_ALIASES.get(level, level)
        return {"timestamp": _iso(m["ts"]), "service": m["service"], "level": level, "message": m["msg"],
                "attributes": {}}
    return None
