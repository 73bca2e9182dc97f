"""Logging filter so log records never carry PII or secrets."""

from __future__ import annotations

import logging
import re
import threading
from urllib.parse import unquote_plus

from redaction.controls import strip_controls
from redaction.engine import Redactor

_busy = threading.local()
# URL-encoded text: a %XX escape, or a form body ("a=1&b=2"). A library logging a request body (Bolt does, for
# a stale Slack signature) writes "token=..&text=close+5+Ada+Lovelace&user=ada%40example.com": the redactor
# would not see the email or the name in that form.
_ENCODED = re.compile(r"%[0-9A-Fa-f]{2}|[\w\]]=[^\s&=]*&[\w\[]+=")


def decode_url_encoding(text: str) -> str:
    """`text` with URL-encoding undone (twice at most: "%2540" is an encoded "%40"), or as it is when it shows none."""
    for _ in range(2):
        if not _ENCODED.search(text):
            break
        text = unquote_plus(text)
    return text


class RedactingLogFilter(logging.Filter):
    """Redacts record.getMessage() in place (and formatted exception text); never drops a record. URL-encoded
    text is decoded first and control characters (ANSI escapes from inputs) are removed."""

    def __init__(self, redactor: Redactor):
        super().__init__()
        self.redactor = redactor

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(_busy, "active", False):
            # A record logged by the redactor itself (e.g. Presidio's warnings) while redacting another:
            # these are about the engine, not user data; redacting them would recurse forever.
            return True
        _busy.active = True
        try:
            record.msg = self.redactor.redact(strip_controls(decode_url_encoding(record.getMessage())))
            record.args = None
            if record.exc_info and not record.exc_text:
                # Formatter reuses exc_text when set, so the traceback is redacted too.
                record.exc_text = self.redactor.redact(strip_controls(decode_url_encoding(
                    logging.Formatter().formatException(record.exc_info))))
        except Exception:  # a failure here must not leak the raw message
            record.msg, record.args = "[log message withheld: redaction failed]", None
        finally:
            _busy.active = False
        return True
