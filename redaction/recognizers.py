"""Regex recognizers for secrets and structured PII; used by both modes (no spaCy needed).

Each recognizer yields Span(start, end, entity, score). Validators keep technical text intact:
Luhn/IIN for cards, mod-97 for IBANs, octet ranges for IPs, context checks for versions.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from redaction.addresses import ADDRESS_SCORE, address_spans


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    entity: str
    score: float


@dataclass(frozen=True)
class Rule:
    entity: str
    regex: re.Pattern[str]
    score: float = 0.9
    group: str | int = 0  # the sensitive part; "v" for key=value style rules
    validate: Callable[[str, re.Match[str]], bool] | None = None
    # A cheap pre-check: the rule can only match text whose casefold() contains one of these (empty: always
    # run). Most ops lines hold none of them, and `in` is far cheaper than a regex scan.
    needs: tuple[str, ...] = ()
    # Runs only on free text (sources whose policy has ner=True): its context would misfire on machine output.
    prose: bool = False
    # For a rule with no `needs`: a fast regex (it starts with a character class, which the engine skips ahead
    # to) that every match of the rule implies; text it does not find is not scanned by the slower rule.
    requires: re.Pattern[str] | None = None


# Already-redacted output must not be redacted again (keeps redact() idempotent).
PLACEHOLDER_RE = re.compile(r"<[A-Z_]+_\d+>")
_NOT_SECRET_VALUES = {"", "null", "none", "nil", "true", "false", "undefined", "redacted", "[redacted]",
                      "<redacted>", "***", "xxx", "-", "''", '""'}


def _real_secret_value(value: str, _m: re.Match[str]) -> bool:
    v = value.strip("\"'")
    if v.lower() in _NOT_SECRET_VALUES or PLACEHOLDER_RE.fullmatch(v) or set(v) <= {"*", "x", "X", "."}:
        return False
    return True


_PROSE_NON_SECRETS = {"expired", "invalid", "incorrect", "wrong", "required", "missing", "empty", "correct",
                      "set", "reset", "changed", "too", "not", "being", "the", "a", "now", "still", "locked", "weak"}


def _prose_secret(value: str, m: re.Match[str]) -> bool:
    return _real_secret_value(value, m) and value.lower().rstrip(".,;:!") not in _PROSE_NON_SECRETS


def _has_digit_and_letter(value: str, _m: re.Match[str]) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _luhn_card(value: str, _m: re.Match[str]) -> bool:
    digits = [int(c) for c in value if c.isdigit()]
    if not 13 <= len(digits) <= 19 or len(set(digits)) == 1:
        return False
    # Only known issuer prefixes: long numeric ids in logs are Luhn-valid 1 time in 10.
    s = "".join(map(str, digits))
    if not re.match(r"4|5[1-5]|2[2-7]|3[47]|3[068]|35|6(?:011|5|4[4-9]|2)", s):
        return False
    return _luhn(digits)


def _card_in_context(value: str, _m: re.Match[str]) -> bool:
    # After "card"/"cc" any issuer counts (JCB 1800.., Maestro 12 digits); Luhn still has to hold.
    digits = [int(c) for c in value if c.isdigit()]
    return 12 <= len(digits) <= 19 and len(set(digits)) > 1 and _luhn(digits)


def _luhn(digits: list[int]) -> bool:
    total = 0
    for i, d in enumerate(reversed(digits)):
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


_VERSION_CONTEXT = re.compile(r"(?i)(?:\bv|version|ver|release|build|tag|chart|==|>=|<=|~=)\s*$")

_IP_CONTEXT = re.compile(
    r"(?i)\b(?:ip|ipv4|addr|address|client|src|source|dst|dest|remote|peer|from|host)\b\W*$")


def _ipv4(value: str, m: re.Match[str]) -> bool:
    if value in ("0.0.0.0", "127.0.0.1", "255.255.255.255"):  # technical constants, not personal data
        return False
    before = m.string[max(0, m.start() - 24):m.start()]
    # "version 1.2.3.4", "pkg==1.2.3.4" are versions; so is a bare "2.3.1.4" (all single-digit octets)
    # unless the text says it is an address.
    if _VERSION_CONTEXT.search(before):
        return False
    return max(len(o) for o in value.split(".")) > 1 or bool(_IP_CONTEXT.search(before))


def _ipv6(value: str, _m: re.Match[str]) -> bool:
    try:
        ip = ipaddress.IPv6Address(value)
    except ValueError:
        return False
    # Needs some substance: "::", "::1" and "a::b"-like fragments (e.g. from code) are not addresses.
    return not ip.is_loopback and not ip.is_unspecified and sum(c.isalnum() for c in value) >= 6


def _ssn(value: str, _m: re.Match[str]) -> bool:
    d = re.sub(r"\D", "", value)
    return len(set(d)) > 1 and d not in ("123456789", "987654321")


def _no_ext(value: str) -> str:
    return re.split(r"(?i)x|e", value, maxsplit=1)[0]  # the number without its extension ("x549", "ext. 12")


def _us_phone(value: str, _m: re.Match[str]) -> bool:
    d = re.sub(r"\D", "", _no_ext(value))
    d = d[1:] if len(d) == 11 and d[0] == "1" else d
    return len(d) == 10 and d[0] in "23456789" and d[3] in "23456789"


def _intl_phone(value: str, _m: re.Match[str]) -> bool:
    return 8 <= sum(c.isdigit() for c in value) <= 15


def _local_phone(value: str, _m: re.Match[str]) -> bool:
    # After a word that says so, a local number ("439 4166") counts; a year or a small count does not.
    return 6 <= sum(c.isdigit() for c in _no_ext(value)) <= 15 and not _DATE_LIKE.search(value)


_DATE_LIKE = re.compile(r"(?:19|20)\d\d[-/.](?:0?[1-9]|1[0-2])[-/.]\d\d|\d\d[-/.]\d\d[-/.](?:19|20)\d\d"
                        r"|\A\d\d? \d\d? (?:19|20)\d\d\Z")  # the last: a whole value "12 11 2026"


def _phone_in_prose(value: str, m: re.Match[str]) -> bool:
    # A phone number's groups are arbitrary digits; a run of round numbers (multiples of 10, powers of two) is a
    # list of quantities: "batch sizes 16 32 64 128", "call stack depth 128 256 512".
    groups = [int(g) for g in re.findall(r"\d+", value)]
    return _local_phone(value, m) and not all(g % 10 == 0 or g & (g - 1) == 0 for g in groups)


def _national_phone(value: str, m: re.Match[str]) -> bool:
    digits = sum(c.isdigit() for c in _no_ext(value))
    return (8 if value.startswith("(") else 9) <= digits <= 12 and not _DATE_LIKE.search(value)


# A phone number ends the digit run (no more groups) and is not a quantity ("1 048 576 bytes", "120 250 ms").
_UNITS = (r"ms|us|ns|s|secs?|seconds?|mins?|minutes?|h|hrs?|hours?|days?|[kmgtp]i?b|b|bytes?|kbps|mbps|rows?"
          r"|records?|items?|req(?:uest)?s?|rps|qps|ops|events?|msgs?|messages?|pods?|nodes?|replicas?|times|x|%")
_EXT = r"(?:[^\S\n]?(?i:x|ext\.?|extension)[^\S\n]?\d{1,6})?"  # "650-752-7354x549", "... ext. 12"
_PHONE_END = rf"(?![\w-]|[.:/,]\d|[ .-]\d|[^\S\n]*(?i:{_UNITS})(?!\w))"
# Words about phoning or texting someone (Presidio's phone context words, plus texting and answering).
_TELECOM = (r"phone[ds]?|phoning|telephone|tel|mobile|cell(?:phone)?|landline|fax|sms|texts?|texted|texting"
            r"|messages?|messaging|whatsapp|voicemail|calls?|called|calling|dial(?:l?ed|l?ing)?|ring|rang"
            r"|answer(?:s|ed|ing)?|reach|reachable|contact")
_TELECOM_NEEDS = ("phon", "tel", "mobile", "cell", "landline", "fax", "sms", "text", "messag", "whatsapp",
                  "voicemail", "call", "dial", "ring", "rang", "answer", "reach", "contact")


# Keys whose value is always a secret, whatever it looks like ("password=letmein").
_STRONG_KEYS = (
    r"pass(?:word|wd|phrase)|(?<=[_.-])pass|pwd|secret|api[_-]?key|apikey|access[_-]?key|secret[_-]?key"
    r"|private[_-]?key|client[_-]?secret|credentials?"
)
# Keys whose value is a secret unless it is a plain word ("token: expired", "session: closed").
_WEAK_KEYS = r"token|session(?:[_-]?id)?|sessid|sid|csrf|xsrf|cookie|jwt"


def _kv(keys: str) -> re.Pattern[str]:
    # key=value / key: value / "key": "value"; the key may have a prefix (db_password, AWS_SECRET_ACCESS_KEY).
    return re.compile(
        rf"(?i)(?<![\w.-])[\w.-]*?(?:{keys})[\"']?\s*(?:=|:(?!//))\s*[\"']?"
        r"(?P<v>[^\s\"',;&}<>)\]]+)"
    )


def _secretish(value: str, m: re.Match[str]) -> bool:
    # Not a plain word ("token: expired") nor a small counter ("session_id=0" in Kafka client logs).
    return _real_secret_value(value, m) and not re.fullmatch(r"[A-Za-z][a-z]*|\d{1,5}", value)


SECRET_RULES: list[Rule] = [
    Rule("SECRET", re.compile(
        r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----.*?(?:-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----|\Z)",
        re.S), 1.0, needs=("private key",)),
    # scheme://user:password@host -> only the password.
    Rule("SECRET", re.compile(r"(?<![\w+.-])[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@]*:(?P<v>[^\s@/]+)@"), 1.0, "v",
         _real_secret_value, needs=("@",)),
    Rule("SECRET", re.compile(
        r"(?i)\b(?:proxy-)?authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token|digest|apikey)\s+)?"
        r"(?P<v>[^\s\"',;]+)"), 1.0, "v", _secretish, needs=("authorization",)),
    Rule("SECRET", re.compile(r"(?i)\bbearer\s+(?P<v>[A-Za-z0-9\-._~+/]{12,}=*)"), 0.95, "v",
         _has_digit_and_letter, needs=("bearer",)),
    Rule("SECRET", _kv(_STRONG_KEYS), 0.95, "v", _real_secret_value,
         needs=("pass", "pwd", "secret", "key", "credential")),
    Rule("SECRET", _kv(_WEAK_KEYS), 0.95, "v", _secretish,
         needs=("token", "session", "sid", "csrf", "xsrf", "cookie", "jwt")),
    # SQL / prose with a quoted value: ALTER ROLE x WITH PASSWORD 'S3cr3t!', IDENTIFIED BY "pw".
    Rule("SECRET", re.compile(
        r"(?i)\b(?:password|passwd|identified\s+by)\s+(?P<q>[\"'])(?P<v>[^\"'\n]+)(?P=q)"), 0.95, "v",
         _real_secret_value, needs=("passw", "identified")),
    # Prose: "my password is hunter2-Secret!".
    Rule("SECRET", re.compile(r"(?i)\b(?:password|passwd|passcode|pwd|pin)\s+(?:is|was)\s+(?P<v>[^\s\"'\\]+)"),
         0.95, "v", _prose_secret, needs=("pass", "pwd", "pin")),
    Rule("SECRET", re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA)[A-Z0-9]{16}\b"), 1.0,
         needs=("akia", "asia", "agpa", "aida", "aroa", "anpa", "anva", "aipa")),
    Rule("SECRET", re.compile(r"\b(?:gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_[A-Za-z0-9_]{22,255})\b"), 1.0,
         needs=("gh", "github_pat_")),
    Rule("SECRET", re.compile(r"\b(?:xox[abposr]|xapp)-[A-Za-z0-9-]{10,}"), 1.0, needs=("xox", "xapp-")),
    Rule("SECRET", re.compile(r"https://hooks\.slack\.com/services/[A-Za-z0-9/]+"), 1.0, needs=("hooks.slack.com",)),
    Rule("SECRET", re.compile(r"\b(?:sk|rk|pk|whsec)_(?:live|test)_[A-Za-z0-9]{10,}\b"), 1.0,
         needs=("_live_", "_test_")),
    Rule("SECRET", re.compile(r"(?<![\w-])sk-(?:proj-|ant-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"), 1.0, 0,
         _has_digit_and_letter, needs=("sk-",)),
    Rule("SECRET", re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), 1.0, needs=("eyj",)),
    Rule("SECRET", re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), 1.0, needs=("aiza",)),  # Google API key
    Rule("SECRET", re.compile(r"\bnpm_[A-Za-z0-9]{36}\b|\bglpat-[A-Za-z0-9_-]{20,}"), 1.0,
         needs=("npm_", "glpat-")),
]

PII_RULES: list[Rule] = [
    # Not after ":" or "/" so "user:pw@host" in a URL stays a password, not an email.
    Rule("EMAIL", re.compile(
        r"(?<![\w.%+:/-])[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b"), 0.9, needs=("@",)),
    Rule("US_SSN", re.compile(r"(?<![\w-])(?!000|666|9\d\d)\d{3}-(?!00)\d{2}-(?!0000)\d{4}(?![\w-])"), 0.85,
         0, _ssn, needs=("-",), requires=re.compile(r"\d{3}-\d\d-\d{4}")),  # not a UUID's 8-4-4-4-12
    Rule("US_SSN", re.compile(r"(?i)\bssn\s*[:#=]?\s*(?P<v>\d{9})\b"), 0.85, "v", _ssn, needs=("ssn",)),
    Rule("CREDIT_CARD", re.compile(
        r"(?<![\w-])(?:\d{4}([ -]?)\d{4}\1\d{4}\1\d{4}|3[47]\d{2}([ -]?)\d{6}\2\d{5}"
        r"|\d{13,19})(?![\w-])"), 0.95, 0, _luhn_card),
    Rule("CREDIT_CARD", re.compile(
        r"(?i)\b(?:card|cc|credit card|debit card)(?:[.,]?\s+(?:number|no\.?|num|#))?(?:\s+(?:is|was))?\s*[:#?]?\s*"
        r"(?P<v>\d(?:[ -]?\d){11,18})(?![\w-])"), 0.9, "v", _card_in_context, needs=("card", "cc")),
    # National formats ("06-82237745", "(07700) 553419") only after a word that says it is a phone number.
    # The number may follow on the next line ("Phone:\n439 4166"), and a local one may be short.
    Rule("PHONE", re.compile(
        r"(?i)\b(?:phone|tel|telephone|mobile|cell|fax|desk|whatsapp|sms|call|dial|reach me (?:on|at))"
        r"\b[^\S\n]*(?:me[^\S\n]+)?(?:on|at)?[^\S\n]*(?:no\.?|number)?[^\S\n]*[:#-]?[^\S\n]*\n?[^\S\n]*"
        r"(?P<v>\+?\(?\d[\d ().-]{4,18}\d" + _EXT + r")(?![\w-]|\.\d)"), 0.75, "v",
         _local_phone, needs=("phone", "tel", "mobile", "cell", "fax", "desk", "whatsapp", "sms", "call", "dial",
                              "reach me")),
    # key=value: phone=0612345678, contact_phone: "+44 ...", msisdn=447700900123 (not cell_count=, telemetry=).
    Rule("PHONE", re.compile(
        r"(?i)(?<![\w.-])(?:[\w.-]*[_.-])?(?:phone|mobile|msisdn|tel|telephone|cell|fax)(?:[_.-]?(?:no|num|number))?"
        r"[\"']?\s*[=:]\s*[\"']?(?P<v>\+?\(?\d[\d ().-]{4,18}\d" + _EXT + r")(?![\w-]|\.\d)"), 0.75, "v",
         _local_phone, needs=("phone", "mobile", "msisdn", "tel", "cell", "fax")),
    # Prose only (sources with ner=True): a grouped number up to five words after a word about phoning or texting
    # ("no SMS ever arrived on my usual 87 47 98"), the window Presidio reads context words in. Machine output
    # uses "call", "message" and "text" for other things.
    Rule("PHONE", re.compile(
        rf"(?i:\b(?:{_TELECOM})\b)(?:[^\S\n]+[^\W\d_](?:[^\W\d_]|['’])*){{0,5}}[^\S\n]+"
        r"(?P<v>\(?\d{1,5}\)?(?:[ .-]\d{2,8}){1,4})" + _PHONE_END), 0.7, "v",
         _phone_in_prose, needs=_TELECOM_NEEDS, prose=True),
    # Signature blocks: "0380 7558505 office", "(894)134-3524 fax", "0494 41 18 24-Office".
    Rule("PHONE", re.compile(
        r"(?<![\w+.-])(?P<v>\+?\(?\d[\d ().-]{5,18}\d" + _EXT + r")[^\S\n]*-?[^\S\n]*"
        r"(?i:office|fax|mobile|cell|home|work|direct)\b"), 0.75, "v",
         _local_phone, needs=("office", "fax", "mobile", "cell", "home", "work", "direct")),
    Rule("PHONE", re.compile(r"(?<![\w+])\+[1-9]\d{0,3}(?:[ .-]?\(?\d{1,5}\)?){1,5}(?!\w|[.:-]\d)"), 0.75, 0,
         _intl_phone, needs=("+",)),
    # NANP, with an extension as people write it: "650-752-7354x549", "(415) 555-0132 ext. 12".
    Rule("PHONE", re.compile(
        r"(?<![\w.+-])(?:1[-. ])?(?:\(\d{3}\)\s?|\d{3}([-.]))\d{3}(?(1)\1|[-. ])\d{4}"
        + _EXT + r"(?!\w|[.-]\d)"), 0.7, 0, _us_phone),
    # National formats that only phone numbers have: a trunk prefix 0 then the area code ("077 0987 7032",
    # "05.53.18.69.64", "08652 41 94 73", "0380 2472174"; most of Europe, UK, AU, ...), or the area code in
    # parentheses ("(1) 995-8140", "(21) 9249-7822"; Latin America, ...); 9-12 digits (8 with parentheses).
    Rule("PHONE", re.compile(
        # Starts with a literal, not the look-behind, so that the regex engine skips ahead: 3x faster on logs.
        r"[0(](?<![\w.+/:#=-].)(?:(?<=0)[1-9]\d{0,4}[ .-]|(?<=\()0?[1-9]\d{0,4}\)[^\S\n]?)\d{2,8}(?:[ .-]\d{2,5}){0,3}"
        + _EXT + _PHONE_END), 0.7, 0, _national_phone),
    Rule("IP_ADDRESS", re.compile(
        r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
        r"(?![\w]|\.\d)"), 0.8, 0, _ipv4, needs=(".",)),
    Rule("IP_ADDRESS", re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])"), 0.8, 0,
         _ipv6, needs=(":",)),
    Rule("LOCATION", re.compile(
        r"\b\d{1,5}[A-Za-z]?\s+(?:[A-Z][a-z]+\.?\s+){1,4}(?:Street|St|Avenue|Ave|Road|Rd|Boulevard|Blvd|Lane"
        r"|Ln|Drive|Dr|Court|Ct|Way|Place|Pl|Terrace|Parkway|Pkwy|Highway|Hwy|Square|Sq)\b\.?"
        r"(?:,?\s+(?:Apt|Suite|Unit|Ste|#)\.?\s*[\w-]+)?"
        r"(?:,\s*[A-Z][a-z]+(?:\s[A-Z][a-z]+)?(?:,\s*[A-Z]{2})?(?:\s+\d{5}(?:-\d{4})?)?)?"), 0.8,
         requires=re.compile(r"[A-Z][a-z]+\.?\s+[A-Z]")),  # a capitalised word, then the capitalised street type
]

# Cheap name heuristics (both modes): "Name: Jane Doe", "Hi Jane,", "Thanks,\nJane Doe".
# Keys (in text, JSON or dicts) whose value is a person's name: "name": "Ada Lovelace", requester=Ada Lovelace.
NAME_KEYS = (r"(?:(?:full|first|last|display|customer|user|requester|contact|real)[_ -]?)?name|requester|reporter"
             r"|assignee|author|customer|contact|caller|reported by|requested by|submitted by")
_U, _L = "A-ZÀ-ÖØ-Þ\u0100-\u017e", "a-zß-öø-ÿ\u0100-\u017f"
_NAME = rf"[{_U}][{_L}]+(?:[-'][{_U}][{_L}]+)?(?:[ \t]+[{_U}][{_L}]+(?:[-'][{_U}][{_L}]+)?){{0,2}}"
NAME_RULES: list[Rule] = [
    Rule("PERSON", re.compile(
        rf"(?i:\b(?:{NAME_KEYS})[\"']?[ \t]*[:=-][ \t]*[\"']?)(?P<v>{_NAME})\b(?![\w.-])"), 0.7, "v",
         needs=("name", "requester", "reporter", "assignee", "author", "customer", "contact", "caller", " by")),
    # Ops conventions that put a person next: Slack mentions, paging, hand-offs ("escalated to Ada Lovelace").
    Rule("PERSON", re.compile(
        rf"(?:(?<![\w.])@|(?i:\b(?:cc|ping|paging|paged|on-?call|assigned to|assignee|escalated to|escalating to|"
        rf"called|spoke (?:with|to)|comment by|handled by|owner)\b)[ \t]*:?[ \t]+)(?P<v>{_NAME})\b(?![\w.-])"), 0.7,
         "v", needs=("@", "cc", "ping", "pag", "call", "assign", "escalat", "spoke", "comment by", "handled by",
                     "owner")),
    Rule("PERSON", re.compile(rf"\b(?:Hi|Hello|Hey|Dear)[ \t]+(?P<v>{_NAME})\s*[,!:\n]"), 0.7, "v",
         needs=("hi", "hello", "hey", "dear")),
    Rule("PERSON", re.compile(
        # Also inside JSON strings (and JSON in JSON), where the line break is written "\\n" or "\\\\n".
        rf"(?:\b|(?<=\\n))(?:Thanks|Thank you|Regards|Best regards|Kind regards|Best|Cheers|Sincerely),?"
        rf"[ \t]*(?:\n|\\+n)?[ \t]*"
        rf"(?P<v>{_NAME})[ \t]*(?:$|\n|\r|\\+[nr]|\\*\")", re.M), 0.7, "v",
         needs=("thank", "regards", "best", "cheers", "sincerely")),
    # RFC 5322 display names: From: Ada Lovelace <ada@example.com>, "Ada Lovelace" <ada@...>, and the log habit
    # "started by Ada Lovelace (ada@example.com)".
    Rule("PERSON", re.compile(rf"(?<![\w.-])\"?(?P<v>{_NAME})\"?[ \t]*(?:<[^<>@\s]+@[^<>\s]+>|\([^()@\s]+@[^()\s]+\))"),
         0.7, "v", needs=("@",)),
    # A whole value that is just a name (requester, assignee fields): NER needs context that a bare value lacks.
    Rule("PERSON", re.compile(rf"\A[ \t]*(?P<v>{_NAME})[ \t]*\Z"), 0.5, "v",
         lambda v, _m: len(v.split()) >= 2),
    # Self-introductions: "Hi, I am Ada Lovelace", "my name is Ada".
    Rule("PERSON", re.compile(rf"(?i:\b(?:i am|i'm|my name is|this is)[ \t]+)(?P<v>{_NAME})\b(?![\w.-])"), 0.7, "v",
         needs=("i am", "i'm", "my name is", "this is")),
]


# \b[A-Z]{2}\d{2}..., written to start with the letter (the engine skips ahead to one) and look behind it.
_IBAN = re.compile(r"[A-Z](?<!\w[A-Z])[A-Z]\d{2}(?: ?[A-Z0-9]){11,30}\b")


def _iban_spans(text: str) -> Iterator[Span]:
    # Groups may be followed by unrelated caps words ("... 00 FAIL"), so try shorter prefixes too.
    for m in _IBAN.finditer(text):
        s = m.group()
        for end in range(len(s), 14, -1):
            cand = s[:end]
            if cand.endswith(" ") or (end < len(s) and s[end].isalnum()):
                continue
            compact = cand.replace(" ", "")
            if not 15 <= len(compact) <= 34 or not compact[4:].isalnum():
                continue
            digits = "".join(str(int(c, 36)) for c in compact[4:] + compact[:4])
            if int(digits) % 97 == 1:
                yield Span(m.start(), m.start() + end, "IBAN", 0.95)
                break


@lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """Common first names that are not also English words (names/first_names.txt; see make_first_names.py)."""
    path = Path(__file__).with_name("names") / "first_names.txt"
    return frozenset(path.read_text(encoding="utf-8").split()) - _OPS_NAMES


# First names that ops text uses for other things: "Max connections reached", AWS Athena, Apache Cassandra, the
# Julia language, Anthropic's Claude, Spotify's Luigi, BERT, the Ray framework, phonetic "Romeo"/"Juliet".
_OPS_NAMES = frozenset({"Max", "Julia", "Hunter", "Ray", "Dash", "Rusty", "Sage", "Athena", "Cassandra", "Alexa",
                        "Claude", "Luigi", "Bert", "Romeo", "Juliet"})
_CAPITALISED = re.compile(rf"(?<![\w.@/#:-])[{_U}][{_L}]+(?![\w@/-]|\.\w)")
_SURNAME = re.compile(rf"[ \t]+([{_U}][{_L}]+(?:[-'][{_U}][{_L}]+)?)(?![\w@/-]|\.\w)")


def _first_name_spans(text: str) -> Iterator[Span]:
    """A known first name, and the surname-shaped word after it: "Nadia please verify", "Mei Costa will check".
    Free text only; the engine still rejects ops words (looks_like_person)."""
    names = first_names()
    for m in _CAPITALISED.finditer(text):
        if m.group() in names:
            end = m.end()
            more = _SURNAME.match(text, end)
            if more and more[1] not in names:
                end = more.end()
            yield Span(m.start(), end, "PERSON", 0.7)


# Per rule list: every distinct pre-check substring once, and each rule's as a set. Checking the ~100 distinct
# substrings once per text is several times cheaper than each rule's any() over its own (ingest's hottest loop).
_PLANS: dict[int, tuple[list[Rule], tuple[str, ...], list[tuple[Rule, frozenset[str]]]]] = {}


def _plan(rules: list[Rule]) -> tuple[tuple[str, ...], list[tuple[Rule, frozenset[str]]]]:
    plan = _PLANS.get(id(rules))
    if plan is None or plan[0] is not rules or len(plan[2]) != len(rules):
        needles = tuple(sorted({n for r in rules for n in r.needs}))
        plan = _PLANS[id(rules)] = (rules, needles, [(r, frozenset(r.needs)) for r in rules])
    return plan[1], plan[2]


def find_spans(text: str, rules: list[Rule] | None = None, prose: bool = True) -> list[Span]:
    spans: list[Span] = []
    folded = text.casefold()
    needles, plan = _plan(rules if rules is not None else ALL_RULES)
    present = {n for n in needles if n in folded}
    for rule, needs in plan:
        if (needs and needs.isdisjoint(present)) or (rule.prose and not prose) or (
                rule.requires is not None and rule.requires.search(text) is None):
            continue
        for m in rule.regex.finditer(text):
            value = m.group(rule.group)
            if value and (rule.validate is None or rule.validate(value, m)):
                spans.append(Span(m.start(rule.group), m.end(rule.group), rule.entity, rule.score))
    spans.extend(_iban_spans(text))
    if prose:
        spans.extend(_first_name_spans(text))
    spans.extend(Span(a, b, "LOCATION", ADDRESS_SCORE) for a, b in address_spans(text, prose))
    return spans


ALL_RULES: list[Rule] = SECRET_RULES + PII_RULES + NAME_RULES
