"""Writes ops.jsonl: our own synthetic ops records with labelled sensitive spans and technical tokens.

Every value is made up here (names from short lists we wrote, numbers generated with valid checksums), so the
set can live in the repo. Run `python -m redaction.evaldata.generate` to rebuild it; the seed keeps it stable.

Record: {"source": logs|alerts|tickets, "kind": ..., "text": ..., "spans": [[start, end, ENTITY, subkind]],
         "keep": [[start, end, kind]]} -- "spans" must be redacted, "keep" must survive untouched.
"""

from __future__ import annotations

import base64
import json
import random
import re
import string
import uuid
from pathlib import Path

from redaction.evaldata import templates as T

OUT = Path(__file__).with_name("ops.jsonl")
FIELD = re.compile(r"\{(\w+)\}")


def _luhn_complete(prefix: str, length: int, rnd: random.Random) -> str:
    body = prefix + "".join(rnd.choice(string.digits) for _ in range(length - len(prefix) - 1))
    total = 0
    for i, ch in enumerate(reversed(body + "0")):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return body + str((10 - total % 10) % 10)


def _iban(country: str, bban_len: int, rnd: random.Random) -> str:
    bban = "".join(rnd.choice(string.digits) for _ in range(bban_len))
    check = 98 - int("".join(str(int(c, 36)) for c in bban + country + "00")) % 97
    return f"{country}{check:02d}{bban}"


def _rand(rnd: random.Random, n: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rnd.choice(alphabet) for _ in range(n))


def _b64url(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


class Filler:
    """One generator per field; UPPERCASE fields are sensitive (entity, subkind), lowercase ones technical."""

    def __init__(self, rnd: random.Random):
        self.r = rnd

    def value(self, field: str) -> tuple[str, str, str] | tuple[str, None, str]:
        """(value, entity or None for technical, subkind)."""
        r = self.r
        if field in T.SENSITIVE:
            entity, sub = T.SENSITIVE[field]
            return getattr(self, "s_" + field.lower())(), entity, sub
        if field in T.TECH_LISTS:
            return r.choice(T.TECH_LISTS[field]), None, field
        return getattr(self, "t_" + field)(), None, field

    # --- sensitive -------------------------------------------------------------------------------------
    def s_person(self):
        return f"{self.r.choice(T.FIRST)} {self.r.choice(T.LAST)}"

    def s_first(self):
        return self.r.choice(T.FIRST)

    s_person2, s_first2 = s_person, s_first

    def s_email(self):
        r = self.r
        local = r.choice([f"{r.choice(T.FIRST).lower()}.{r.choice(T.LAST).lower()}",
                          f"{r.choice(T.FIRST).lower()}{r.randint(1, 99)}", f"{r.choice(T.FIRST)[0].lower()}"
                          f"{r.choice(T.LAST).lower()}"])
        return f"{local.replace(chr(39), '')}@{r.choice(T.MAIL_DOMAINS)}"

    def s_phone(self):
        r = self.r
        d = lambda n: "".join(r.choice(string.digits) for _ in range(n))  # noqa: E731
        return r.choice([
            f"+1 ({r.randint(201, 989)}) {r.randint(200, 989)}-{d(4)}",
            f"{r.randint(201, 989)}-{r.randint(200, 989)}-{d(4)}",
            f"+44 20 {d(4)} {d(4)}", f"+44 7{d(3)} {d(6)}", f"+49 30 {d(8)}", f"+49 151 {d(8)}",
            f"+33 1 {d(2)} {d(2)} {d(2)} {d(2)}", f"+91 98{d(3)} {d(5)}", f"+55 11 9{d(4)}-{d(4)}",
            f"+81 3-{d(4)}-{d(4)}", f"+61 2 {d(4)} {d(4)}", f"+34 6{d(2)} {d(3)} {d(3)}",
        ])

    def s_card(self):
        r = self.r
        kind = r.choice(["visa", "mc", "amex"])
        if kind == "amex":
            n = _luhn_complete(r.choice(["34", "37"]), 15, r)
            return r.choice([n, f"{n[:4]} {n[4:10]} {n[10:]}"])
        n = _luhn_complete("4" if kind == "visa" else r.choice(["51", "53", "55"]), 16, r)
        sep = r.choice(["", " ", "-"])
        return sep.join(n[i:i + 4] for i in range(0, 16, 4))

    def s_iban(self):
        r = self.r
        country, n = r.choice([("DE", 18), ("FR", 23), ("NL", 14), ("ES", 20), ("IT", 23), ("BE", 12)])
        if country == "NL":
            iban = _iban_alpha(r)
        else:
            iban = _iban(country, n, r)
        return r.choice([iban, " ".join(iban[i:i + 4] for i in range(0, len(iban), 4))])

    def s_ipv4(self):
        r = self.r
        return r.choice([f"{r.randint(11, 223)}.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                         f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}",
                         f"192.168.{r.randint(0, 255)}.{r.randint(1, 254)}"])

    def s_ipv6(self):
        r = self.r
        groups = [f"{r.randint(0, 0xffff):x}" for _ in range(8)]
        return r.choice(["2001:db8:" + ":".join(groups[2:]), f"2a02:{groups[1]}:{groups[2]}::{groups[3]}",
                         "fe80::" + ":".join(groups[4:])])

    def s_ssn(self):
        r = self.r
        return f"{r.randint(100, 665):03d}-{r.randint(10, 99):02d}-{r.randint(1000, 9999):04d}"

    def s_address(self):
        r = self.r
        return r.choice([
            f"{r.randint(2, 9999)} {r.choice(T.STREETS)} {r.choice(['Street', 'Avenue', 'Road', 'Lane', 'Drive'])}",
            f"{r.randint(2, 999)} {r.choice(T.STREETS)} St, {r.choice(T.CITIES)}",
            f"{r.randint(2, 9999)} {r.choice(T.STREETS)} Ave, Apt {r.randint(1, 40)}, {r.choice(T.CITIES)}, "
            f"{r.choice(['CA', 'NY', 'TX', 'WA', 'IL'])} {r.randint(10000, 99999)}",
        ])

    def s_aws_key(self):
        return "AKIA" + _rand(self.r, 16, string.ascii_uppercase + "234567")

    def s_aws_secret(self):
        return _rand(self.r, 40, string.ascii_letters + string.digits + "/+")

    def s_gh_token(self):
        return self.r.choice(["ghp_", "gho_", "ghs_"]) + _rand(self.r, 36)

    def s_slack_token(self):
        r = self.r
        return f"{r.choice(['xoxb', 'xoxp'])}-{r.randint(10**11, 10**12)}-{r.randint(10**12, 10**13)}-{_rand(r, 24)}"

    def s_stripe_key(self):
        return f"{self.r.choice(['sk_live_', 'rk_live_', 'sk_test_'])}{_rand(self.r, 24)}"

    def s_openai_key(self):
        return f"sk-{self.r.choice(['', 'proj-'])}{_rand(self.r, 40)}"

    def s_jwt(self):
        r = self.r
        head = _b64url({"alg": "HS256", "typ": "JWT"})
        body = _b64url({"sub": str(r.randint(1000, 99999)), "iat": r.randint(1.7e9, 1.8e9)})
        return f"{head}.{body}.{_rand(r, 43, string.ascii_letters + string.digits + '-_')}"

    def s_bearer(self):
        return _rand(self.r, self.r.randint(24, 48), string.ascii_letters + string.digits + "-._")

    def s_pem(self):
        r = self.r
        lines = "\n".join(_rand(r, 64, string.ascii_letters + string.digits + "+/") for _ in range(3))
        kind = r.choice(["RSA ", "EC ", ""])
        return f"-----BEGIN {kind}PRIVATE KEY-----\n{lines}\n-----END {kind}PRIVATE KEY-----"

    def s_url_password(self):
        return _rand(self.r, self.r.randint(8, 16), string.ascii_letters + string.digits + "!*_-")

    def s_kv_password(self):
        r = self.r
        return r.choice([_rand(r, r.randint(8, 14), string.ascii_letters + string.digits + "!#%_-"),
                         r.choice(T.WEAK_PASSWORDS) + str(r.randint(1, 99))])

    def s_cookie(self):
        return _rand(self.r, 32, "0123456789abcdef")

    # --- technical ------------------------------------------------------------------------------------
    def t_ts(self):
        r = self.r
        return f"2026-{r.randint(1, 12):02d}-{r.randint(1, 28):02d}T{r.randint(0, 23):02d}:{r.randint(0, 59):02d}:" \
               f"{r.randint(0, 59):02d}{r.choice(['Z', '.' + str(r.randint(100, 999)) + 'Z', '+00:00'])}"

    def t_time(self):
        return f"{self.r.randint(0, 23):02d}:{self.r.randint(0, 59):02d}"

    def t_host(self):
        r = self.r
        return r.choice([f"{r.choice(T.SERVICES)}-{r.randint(1, 12):02d}.{r.choice(['prod', 'stg', 'eu1', 'us2'])}",
                         f"ip-10-{r.randint(0, 255)}-{r.randint(0, 255)}-{r.randint(1, 254)}.ec2.internal",
                         f"{r.choice(T.SERVICES)}.svc.cluster.local", f"db-{r.randint(1, 9):02d}.prod"])

    def t_version(self):
        r = self.r
        return r.choice([f"v{r.randint(0, 9)}.{r.randint(0, 30)}.{r.randint(0, 40)}",
                         f"{r.randint(1, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}.{r.randint(0, 9)}",
                         f"{r.randint(1, 3)}.{r.randint(0, 30)}.{r.randint(0, 9)}"])

    def t_uuid(self):
        return str(uuid.UUID(int=self.r.getrandbits(128), version=4))

    def t_pod(self):
        r = self.r
        suffix = _rand(r, 5, string.ascii_lowercase + string.digits)
        return f"{r.choice(T.SERVICES)}-{_rand(r, 9, '0123456789abcdef')}-{suffix}"

    def t_num(self):
        return str(self.r.randint(2, 99999))

    def t_ms(self):
        return f"{self.r.randint(1, 30000)}ms"

    def t_sha(self):
        return _rand(self.r, 40, "0123456789abcdef")[: self.r.choice([7, 12, 40])]

    def t_port(self):
        return str(self.r.choice([443, 5432, 6379, 8080, 9092, 3306, 27017]))


def _iban_alpha(r: random.Random) -> str:
    bank = "".join(r.choice(string.ascii_uppercase) for _ in range(4))
    acct = "".join(r.choice(string.digits) for _ in range(10))
    check = 98 - int("".join(str(int(c, 36)) for c in bank + acct + "NL00")) % 97
    return f"NL{check:02d}{bank}{acct}"


def render(template: str, filler: Filler) -> tuple[str, list, list]:
    out, spans, keep, pos, cache = [], [], [], 0, {}
    for m in FIELD.finditer(template):
        out.append(template[pos:m.start()])
        field = m[1]
        # A field repeated in one template ({PERSON} ... {PERSON}) is the same value, as in real threads.
        value, entity, sub = cache.get(field) or cache.setdefault(field, filler.value(field))
        start = sum(map(len, out))
        out.append(value)
        (spans.append([start, start + len(value), entity, sub]) if entity
         else keep.append([start, start + len(value), sub]))
        pos = m.end()
    out.append(template[pos:])
    return "".join(out), spans, keep


def generate(seed: int = 20261125, per_source: dict[str, int] | None = None) -> list[dict]:
    rnd = random.Random(seed)
    filler = Filler(rnd)
    counts = per_source or {"logs": 260, "alerts": 120, "tickets": 260}
    records = []
    for source, n in counts.items():
        kinds = T.TEMPLATES[source]
        for i in range(n):
            kind = list(kinds)[i % len(kinds)]
            text, spans, keep = render(rnd.choice(kinds[kind]), filler)
            records.append({"source": source, "kind": kind, "text": text, "spans": spans, "keep": keep})
    return records


def main() -> None:
    records = generate()
    with OUT.open("w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec) + "\n")
    n_spans = sum(len(r["spans"]) for r in records)
    n_keep = sum(len(r["keep"]) for r in records)
    print(f"wrote {len(records)} records, {n_spans} sensitive spans, {n_keep} technical tokens to {OUT}")


if __name__ == "__main__":
    main()
