from datetime import UTC, datetime

import pytest

from consumers.payloads import parse_log
from consumers.textlogs import parse_text_log


def test_rfc5424_with_structured_data():
    f = parse_text_log('<165>1 2026-11-20T14:02:05.003Z web-01 checkout 4123 ID47 [req@1 id="r-9" user="a\\"b"] '
                       "POST /api/orders 503")
    assert f["timestamp"] == datetime(2026, 11, 20, 14, 2, 5, 3000, tzinfo=UTC)
    assert (f["service"], f["level"], f["message"]) == ("checkout", "INFO", "POST /api/orders 503")
    assert f["attributes"] == {"host": "web-01", "facility": 20, "procid": "4123", "msgid": "ID47", "id": "r-9",
                               "user": 'a"b'}
    assert parse_log(f).level == "INFO"


def test_rfc5424_nil_fields_and_no_message():
    f = parse_text_log("<11>1 2026-11-20T14:02:05Z db-01 - - - -")
    assert (f["service"], f["level"], f["message"]) == ("db-01", "ERROR", "")


def test_rfc3164_takes_the_year_from_now():
    now = datetime(2026, 1, 2, tzinfo=UTC)
    f = parse_text_log("<34>Dec 31 23:59:01 web-01 sshd[811]: session opened", now=now)
    assert f["timestamp"] == datetime(2025, 12, 31, 23, 59, 1, tzinfo=UTC)  # last year's line
    assert (f["service"], f["level"], f["attributes"]["pid"]) == ("sshd", "CRITICAL", "811")


@pytest.mark.parametrize("line,level,service,message", [
    ("2026-11-20T14:02:05Z ERROR checkout upstream timeout after 30s", "ERROR", "checkout",
     "upstream timeout after 30s"),
    ("2026-11-20 14:02:05,120 [WARN] payments-gw: retry 2/3", "WARNING", "payments-gw", "retry 2/3"),
    ("2026-11-20T14:02:05+01:00 fatal api out of memory", "CRITICAL", "api", "out of memory"),
])
def test_timestamp_level_service_message(line, level, service, message):
    f = parse_text_log(line)
    assert (f["level"], f["service"], f["message"]) == (level, service, message)
    assert f["timestamp"].tzinfo is not None


@pytest.mark.parametrize("line", ["", "just some words", "<999 broken", "14:02 ERROR x y"])
def test_unknown_shapes_are_none(line):
    assert parse_text_log(line) is None
