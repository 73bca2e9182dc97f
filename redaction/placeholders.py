"""Consistent placeholders (<PERSON_1>, <EMAIL_2>) within one scope, without storing raw values."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Callable

from redaction.vault import Sealer

PLACEHOLDER_PATTERN = re.compile(r"<([A-Z_]+)_(\d+)>")


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

    A persisted scope can be large (every address a busy service ever logged), so instead of `existing` a
    store may pass `lookup` (digests -> those of them stored, with their placeholders) and `last_number`
    (entity type -> the highest number stored): the map then asks only about the values it meets, and
    `prefetch` asks about a whole batch's values at once.
    """

    def __init__(self, key: bytes, existing: dict[str, str] | None = None, sealer: Sealer | None = None,
                 lookup: Callable[[list[str]], dict[str, str]] | None = None,
                 last_number: Callable[[str], int] | None = None):
        if not key:
            raise ValueError("PlaceholderMap needs a non-empty key")
        self._key = key
        # With a sealer, each new placeholder's original is kept encrypted (new_sealed) for restore() at publish.
        self._sealer = sealer
        self._sealed: dict[str, str] = {}
        self._entries: dict[str, str] = dict(existing or {})
        self._new: dict[str, str] = {}
        self._counters: dict[str, int] = {}
        self._lookup, self._last_number = lookup, last_number
        self._absent: set[str] = set()  # digests the store was asked about and does not hold
        self._used: set[str] = set()  # digests placeholder_for returned since the last take_used()
        for placeholder in self._entries.values():
            m = PLACEHOLDER_PATTERN.fullmatch(placeholder)
            if m:
                self._counters[m[1]] = max(self._counters.get(m[1], 0), int(m[2]))

    def digest(self, entity_type: str, value: str) -> str:
        msg = f"{entity_type}\x00{normalize(entity_type, value)}".encode()
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()

    def placeholder_for(self, entity_type: str, value: str) -> str:
        d = self.digest(entity_type, value)
        found = self._entries.get(d)
        if found is None and self._lookup is not None and d not in self._absent:
            self._ask([d])
            found = self._entries.get(d)
        if found is None:
            if entity_type not in self._counters and self._last_number is not None:
                self._counters[entity_type] = self._last_number(entity_type)
            n = self._counters.get(entity_type, 0) + 1
            self._counters[entity_type] = n
            found = self._entries[d] = self._new[d] = f"<{entity_type}_{n}>"
            if self._sealer is not None:
                self._sealed[d] = self._sealer.seal(value)
        self._used.add(d)
        return found

    def take_used(self) -> set[str]:
        """The digests used since the last call (a store records when its placeholders were last used)."""
        used, self._used = self._used, set()
        return used

    def prefetch(self, values: list[tuple[str, str]]) -> None:
        """Ask the store once about all these (entity type, value) pairs, ahead of placeholder_for."""
        if self._lookup is not None:
            self._ask([self.digest(entity_type, value) for entity_type, value in values])

    def unknown(self, values: list[tuple[str, str]]) -> list[str]:
        """The digests of these (entity type, value) pairs that the store has not been asked about yet: for a
        caller that asks the stores of several maps at once, then tells each map what it found (learn)."""
        digests = {self.digest(entity_type, value) for entity_type, value in values}
        return [d for d in digests if d not in self._entries and d not in self._absent]

    def learn(self, asked: list[str], found: dict[str, str]) -> None:
        """What the store holds of the digests it was asked about (the others it does not hold)."""
        self._entries.update(found)
        self._absent.update(d for d in asked if d not in found)

    def _ask(self, digests: list[str]) -> None:
        todo = list({d for d in digests if d not in self._entries and d not in self._absent})
        if todo:
            self.learn(todo, self._lookup(todo))


    @property
    def entries(self) -> dict[str, str]:
        return dict(self._entries)

    @property
    def new_count(self) -> int:
        return len(self._new)

    @property
    def new_entries(self) -> dict[str, str]:
        return dict(self._new)

    @property
    def new_sealed(self) -> dict[str, str]:
        """digest -> Fernet token of the original, for the placeholders this map created."""
        return dict(self._sealed)


def prefetch_each(wanted: list[tuple[PlaceholderMap, list[tuple[str, str]]]]) -> None:
    """Each map asks its own store about its values (Redactor.redact_many's default)."""
    for pmap, values in wanted:
        pmap.prefetch(values)
