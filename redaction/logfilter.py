"""Logging filter so log records never carry PII or secrets."""

from __future__ import annotations

import logging
import threading

from redaction.engine import Redactor

_busy = threading.local()


class RedactingLogFilter(logging.Filter):
    """Redacts record.getMessage() in place (and formatted exception text); never drops a record."""

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
            record.msg = self.redactor.redact(record.getMessage())
            record.args = None
            if record.exc_info and not record.exc_text:
                # Formatter reuses exc_text when set, so the traceback is redacted too.
                record.exc_text = self.redactor.redact(logging.Formatter().formatException(record.exc_info))
        except Exception:  # a failure here must not leak the raw message
            record.msg, record.args = "[log message withheld: redaction failed]", None
        finally:
            _busy.active = False
        return True
