"""The originals behind placeholders, kept only encrypted, for the one moment they are needed: publishing an
approved reply that must greet the customer by name. Never decrypt for a prompt, a log or a draft."""

from __future__ import annotations

import base64
import re

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*_\d+>")


class Sealer:
    """Fernet with a key derived (HKDF-SHA256) from the redaction key, so one setting protects both the
    placeholder digests and the sealed originals, and neither key can be computed from the other."""

    def __init__(self, redaction_key: bytes):
        if not redaction_key:
            raise ValueError("Sealer needs a non-empty redaction key")
        raw = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"opsdraft placeholder vault v1").derive(
            redaction_key)
        self._fernet = Fernet(base64.urlsafe_b64encode(raw))

    def seal(self, value: str) -> str:
        return self._fernet.encrypt(value.encode()).decode()

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode()).decode()
        except InvalidToken:
            raise ValueError("sealed value cannot be opened with this redaction key") from None

    def open_all(self, sealed: dict[str, str]) -> dict[str, str]:
        """placeholder -> token  =>  placeholder -> original."""
        return {placeholder: self.open(token) for placeholder, token in sealed.items()}


def restore(text: str, originals: dict[str, str], entities: frozenset[str] | None = None) -> str:
    """Puts originals back for placeholders in `text`; `entities` limits it (e.g. {"PERSON"}: the customer's
    name, but never a card number or a secret). Unknown placeholders stay as they are."""

    def sub(m: re.Match[str]) -> str:
        ph = m.group()
        if entities is not None and ph[1:ph.rindex("_")] not in entities:
            return ph
        return originals.get(ph, ph)

    return _PLACEHOLDER.sub(sub, text)
