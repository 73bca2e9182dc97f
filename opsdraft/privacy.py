"""Redaction within a scope (one incident or one ticket): placeholders stay the same across its records."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from opsdraft.models import Placeholder
from opsdraft.settings import Settings
from redaction import PlaceholderMap, RedactingLogFilter, Redactor, build_redactor


@lru_cache(maxsize=4)
def _redactor(mode: str) -> Redactor:
    return build_redactor(mode)


def get_redactor(settings: Settings) -> Redactor:
    return _redactor(settings.redaction_mode)


def _fernet(settings: Settings):
    import base64
    import hashlib

    from cryptography.fernet import Fernet

    # A separate key from the placeholder HMAC key, derived from the same secret.
    digest = hashlib.sha256(b"opsdraft dead letters\0" + settings.redaction_key_bytes()).digest()
    return Fernet(base64.urlsafe_b64encode(digest))


def sealer(settings: Settings):
    """Encrypt raw bytes for the dead-letter topic (the original may hold PII: never stored in the clear)."""
    f = _fernet(settings)
    return lambda raw: f.encrypt(raw).decode()


def unseal(settings: Settings, token: str) -> bytes:
    """Decrypt what `sealer` made; raises cryptography.fernet.InvalidToken with another key."""
    return _fernet(settings).decrypt(token.encode())


def install_log_redaction(settings: Settings) -> None:
    """Redact every log record on every handler of the root logger: logs never carry PII or secrets."""
    import logging

    log_filter = RedactingLogFilter(get_redactor(settings))
    for handler in logging.getLogger().handlers:
        handler.addFilter(log_filter)


class ScopedRedactor:
    """Loads a scope's placeholder map, redacts with it, and stores new placeholders in the same transaction."""

    def __init__(self, session: Session, redactor: Redactor, key: bytes, scope: str):
        self.session, self.redactor, self.scope = session, redactor, scope
        rows = session.scalars(select(Placeholder).where(Placeholder.scope == scope))
        self.map = PlaceholderMap(key, {r.digest: r.placeholder for r in rows})
        self._saved: set[str] = set()

    def text(self, value: str) -> str:
        out = self.redactor.redact(value, self.map)
        self._flush()
        return out

    def value(self, value: Any) -> Any:
        out = self.redactor.redact_value(value, self.map)
        self._flush()
        return out

    def _flush(self) -> None:
        for digest, placeholder in self.map.new_entries.items():
            if digest not in self._saved:
                self.session.add(Placeholder(scope=self.scope, digest=digest, placeholder=placeholder))
                self._saved.add(digest)
