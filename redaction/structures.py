"""Many JSON-like structures redacted as one batch: their strings in one redact_many pass."""

from __future__ import annotations

from typing import Any

from redaction.engine import Redactor
from redaction.placeholders import PlaceholderMap


def redact_values(redactor: Redactor, values: list[Any], placeholders: PlaceholderMap,
                  source: str | None = None) -> list[Any]:
    """Redactor.redact_value for many structures sharing one map (a batch of log lines' attributes): far cheaper
    than one call per structure. The same output, except that new placeholders may be numbered in another order."""
    leaves: list[str] = []

    def collect(value: Any) -> None:
        if isinstance(value, str):
            leaves.append(value)
        elif isinstance(value, dict):
            for k, v in value.items():
                if not redactor.is_name_field(k, v, source):
                    collect(v)
        elif isinstance(value, list | tuple):
            for v in value:
                collect(v)

    for value in values:
        collect(value)
    done = iter(redactor.redact_many(leaves, placeholders, source))

    def rebuild(value: Any) -> Any:
        if isinstance(value, str):
            return next(done)
        if isinstance(value, dict):
            # {"name": "Evander Whitcombe"}: the key says it is a name (as Redactor.redact_value does).
            return {k: placeholders.placeholder_for("PERSON", v.strip()) if redactor.is_name_field(k, v, source)
                    else rebuild(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return type(value)(rebuild(v) for v in value)
        return value

    return [rebuild(value) for value in values]
