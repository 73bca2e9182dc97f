"""Consistent placeholders (<PERSON_1>, <EMAIL_2>) within one scope, without storing raw values."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re

from redaction.vault import Sealer

_PLACEHOLDER = re.compile(r"<([A-Z_]+)_(\d+)>")


def normalize(entity_type: str, value: str) -> str:
    """Same real-world value -> same key, however it was written ("+44 20..." vs "+4420...")."""
    v = value.strip()
    if entity_type in ("PHONE", "CREDIT_CARD", "US_SSN"):
        return re.sub(r"\D", "", v)
    if entity_type == "IBAN":
        return re.sub(r"\s", "", v).upper()
    if entity_type == "IP_ADDRESS":
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            return v.lower()
    if entity_type in ("EMAIL", "PERSON", "LOCATION"):
        return " ".join(v.split()).casefold()
    return v  # secrets: exact


class PlaceholderMap:
    """Keeps placeholders consistent within one scope (one incident or one ticket).

    Keys are HMAC-SHA256(key, entity_type + "\\x00" + normalized value) hex digests, so the map can be
    persisted without ever holding the raw value.
    """

    def __init__(self, key: bytes, existing: dict[str, str] | None = None, sealer: Sealer | None = None):
        if not key:
            raise ValueError("PlaceholderMap needs a non-empty key")
        self._key = key
        # With a sealer, each new placeholder's original is kept encrypted (new_sealed) for restore() at publish.
        self._sealer = sealer
        self._sealed: dict[str, str] = {}
        self._entries: dict[str, str] = dict(existing or {})
        self._new: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        for placeholder in self._entries.values():
            m = _PLACEHOLDER.fullmatch(placeholder)
            if m:
                self._counters[m[1]] = max(self._counters.get(m[1], 0), int(m[2]))

    def digest(self, entity_type: str, value: str) -> str:
        msg = f"{entity_type}\x00{normalize(entity_type, value)}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def placeholder_for(self, entity_type: str, value: str) -> str:
        d = self.digest(entity_type, value)
        found = self._entries.get(d)
        if found is None:
            n = self._counters.get(entity_type, 0) + 1
            self._counters[entity_type] = n
            found = self._entries[d] = self._new[d] = f"<{entity_type}_{n}>"
            if self._sealer is not None:
                self._sealed[d] = self._sealer.seal(value)
        return found

    @property
    def entries(self) -> dict[str, str]:
        return dict(self._entries)

    @property
    def new_entries(self) -> dict[str, str]:
        return dict(self._new)

    @property
    def new_sealed(self) -> dict[str, str]:
        """digest -> Fernet token of the original, for the placeholders this map created."""
        return dict(self._sealed)
