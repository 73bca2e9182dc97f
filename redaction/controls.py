"""Characters that change how text is shown rather than what it says: removed before text reaches a terminal,
a log or Slack (opsdraft.slacktext escapes the rest for Slack)."""

from __future__ import annotations

import re

# Right-to-left/left-to-right overrides, embeddings, isolates and marks: they reorder what the reader sees
# ("txt.exe" shown as "exe.txt") without changing the text.
BIDI = re.compile("[\u200e\u200f\u061c\u202a-\u202e\u2066-\u2069]")
# ANSI/VT escape sequences (CSI, OSC, two-character ESC sequences, 8-bit CSI), then the remaining C0 and C1
# controls except newline and tab. A carriage return would let a line overwrite itself on a terminal.
_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]")
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def strip_controls(text: str) -> str:
    """ANSI sequences, control characters (but \\n and \\t) and bidi controls removed; CRLF kept as a line break."""
    if not text:
        return text
    text = _ANSI.sub("", text.replace("\r\n", "\n"))
    return BIDI.sub("", _CONTROL.sub("", text))
