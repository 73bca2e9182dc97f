"""The one JSON parser for message and webhook bodies: a webhook receiver and the consumer that applies what
it produced call this same function, so a body answered 202 is a body the consumer can parse (and a body the
consumer would dead-letter is answered 400 instead, while the sender can still fix and resend it).

Beyond json.loads it refuses what would only fail later, after a 202: a lone surrogate (valid JSON, but no
UTF-8 string: the database and the redactor cannot take it), NaN/Infinity and numbers too big for a float
(PostgreSQL's JSON has no infinity), integers beyond Python's 4,300-digit limit, and nesting deeper than
MAX_DEPTH (deep enough for any real payload; deeper would overflow the stack of anything that walks it). A
UTF-8 byte order mark is accepted and ignored, as RFC 8259 allows a parser to do."""

from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 64
_BOM = b"\xef\xbb\xbf"
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")  # only a body holding one can decode to a lone surrogate


class JSONBodyError(ValueError):
    """The body is not JSON that opsdraft can apply; the message says why (for a 400 or a dead letter)."""


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise JSONBodyError(f"number {text[:20]}… is too large")
    return value


def _no_constant(name: str) -> Any:
    raise JSONBodyError(f"{name} is not a JSON number")


def _depth_and_strings(value: Any, check_strings: bool) -> None:
    """Walk iteratively (a recursive walk is what deep input breaks): nesting depth, and lone surrogates."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            if depth > MAX_DEPTH:
                raise JSONBodyError(f"nested more than {MAX_DEPTH} levels deep")
            if check_strings:
                stack.extend((k, depth) for k in node)
            stack.extend((v, depth + 1) for v in node.values())
        elif isinstance(node, list):
            if depth > MAX_DEPTH:
                raise JSONBodyError(f"nested more than {MAX_DEPTH} levels deep")
            stack.extend((v, depth + 1) for v in node)
        elif check_strings and isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                raise JSONBodyError("a string holds an unpaired surrogate (\\ud800-\\udfff): not valid Unicode") \
                    from None


# One decoder for every body: json.loads with these hooks builds a new one per call (a cost on every message).
_DECODER = json.JSONDecoder(parse_float=_finite, parse_constant=_no_constant)


def loads(raw: bytes | str) -> Any:
    """Parse a body, or raise JSONBodyError saying why it is refused. Never raises anything else."""
    if isinstance(raw, bytes):
        if raw.startswith(_BOM):
            raw = raw[len(_BOM):]
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise JSONBodyError(f"not UTF-8: {exc}") from None
    else:
        text = raw.removeprefix("\ufeff")
    try:
        value = _DECODER.decode(text)
    except JSONBodyError:
        raise
    except json.JSONDecodeError as exc:
        raise JSONBodyError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from None
    except RecursionError:
        raise JSONBodyError(f"nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # e.g. an integer over Python's 4,300-digit conversion limit
        raise JSONBodyError(f"not JSON opsdraft can read: {str(exc)[:200]}") from None
    # Counting brackets is C-fast; only a body with more of them than MAX_DEPTH can be nested that deep.
    deep = text.count("[") + text.count("{") > MAX_DEPTH
    surrogates = _SURROGATE_ESCAPE.search(text) is not None
    if deep or surrogates:
        _depth_and_strings(value, surrogates)
    return value
