"""Template mining (consumers/templates.py) with the real drain3: masks, stable keys, state, bounds."""

import random
import string

import pytest

from consumers.templates import MAX_CHARS, MinerSettings, TemplateMiner, mask, template_key


def _shapes(n: int, seed: int = 1) -> list[str]:
    """n messages of different shapes: letters only (nothing to mask), no token in common."""
    r = random.Random(seed)
    return [" ".join("".join(r.choices(string.ascii_lowercase, k=7)) for _ in range(5)) for _ in range(n)]


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("message,masked", [
    ("GET /api/orders/123 200 in 3000ms", "GET /api/orders/<NUM> <NUM> in <NUM>"),
    ("retry after 1.5s, 12GB free, 93% used, -5 +7", "retry after <NUM>, <NUM> free, <NUM> used, <NUM> <NUM>"),
    ("request 3f2a9c1e-1b2c-4d5e-8f90-123456789abc", "request <UUID>"),
    ("trace 4bf92f3577b34da6 at 0x7ffde2a", "trace <HEX> at <HEX>"),
    ("from 10.0.3.4:443 and 192.168.1.1", "from <IP> and <IP>"),
    ("2026-11-20T14:02:05.003Z started", "<TS> started"),
    ("request_id=abc x-request-id=r-9 userId=u_1 trace=zz session=Ab3 id=42",
     "request_id=<ID> x-request-id=<ID> userId=<ID> trace=<ID> session=<ID> id=<ID>"),
    ("charge ch_3LkQ9x2AbCdEf on checkout-7d9f8b6c4-x2kq9", "charge <ID> on <ID>"),
    ("mail <EMAIL_2> to <PERSON_1> at <IP_ADDRESS_13>", "mail <*> to <*> at <*>"),
    # names, versions and short alphanumerics are not variables
    ("valid=true paid=yes version 1.2.3 facade deadbeef worker7 sda1 abc12 12abc",
     "valid=true paid=yes version 1.2.3 facade deadbeef worker7 sda1 abc12 12abc"),
    ("", ""),
])
def test_mask(message, masked):
    assert mask(message) == masked


def test_same_template_with_other_numbers_ids_and_placeholders_has_the_same_key():
    miner = TemplateMiner()
    a = miner.mine("checkout", "GET /api/orders/123 200 in 34ms request_id=3f2a9c1e user=<PERSON_1> from 10.0.0.1")
    b = miner.mine("checkout", "GET /api/orders/98765 200 in 1.5s request_id=ffe01 user=<PERSON_27> from 10.9.8.7")
    assert a.key == b.key
    assert a.template == b.template == "GET /api/orders/<NUM> <NUM> in <NUM> request_id=<ID> user=<*> from <IP>"
    assert miner.stats().cache_hits == 1  # the second line's masked text is the first's


def test_different_messages_and_services_have_different_keys():
    miner = TemplateMiner()
    keys = {miner.mine("checkout", "upstream timeout after 30s").key,
            miner.mine("checkout", "user <PERSON_1> logged in from <IP_ADDRESS_1>").key,
            miner.mine("checkout", "disk full on /dev/sda1").key,
            miner.mine("payments", "upstream timeout after 30s").key}  # same text, another service
    assert len(keys) == 4
    assert miner.stats().services == 2


def test_a_template_that_generalises_keeps_its_key():
    miner = TemplateMiner()
    first = miner.mine("auth", "login failed for alice from 10.0.0.1")
    assert first.template == "login failed for alice from <IP>"
    second = miner.mine("auth", "login failed for bob from 10.0.0.2")
    assert second == (first.key, "login failed for <*> from <IP>")
    assert first.key == template_key("auth", "login failed for alice from <IP>")  # as created
    # A cached line reports the current, wider template.
    assert miner.mine("auth", "login failed for alice from 10.0.0.3") == second


def test_keys_and_templates_survive_state():
    miner = TemplateMiner()
    lines = [("auth", "login failed for alice from 10.0.0.1"), ("auth", "login failed for bob from 10.0.0.2"),
             ("checkout", "GET /api/orders/1 200 in 3ms"), ("checkout", ""), ("search", "query took 12ms")]
    for service, message in lines:
        miner.mine(service, message)
    before = [miner.mine(service, message) for service, message in lines]  # with the templates as widened
    assert before[0] == before[1] and before[0].template == "login failed for <*> from <IP>"
    restored = TemplateMiner.from_state(miner.state())
    assert [restored.mine(service, message) for service, message in lines] == before
    # Even a shape first seen after the restart joins the generalised cluster under its original key.
    assert restored.mine("auth", "login failed for carol from 10.0.0.9") == before[1]
    assert restored.stats().clusters == miner.stats().clusters
    # New clusters get new drain ids, so they never take over a restored cluster's key.
    new = restored.mine("auth", "password reset requested by <EMAIL_1>")
    assert new.key not in {m.key for m in before}
    assert restored.mine("auth", "login failed for dave from 10.0.0.4").key == before[1].key


def test_state_is_json_not_pickle_and_checks_its_version():
    import json
    import zlib

    miner = TemplateMiner()
    miner.mine("svc", "something happened 3 times")
    doc = json.loads(zlib.decompress(miner.state()))
    assert doc["v"] == 1 and doc["services"][0]["name"] == "svc"
    doc["v"] = 99
    with pytest.raises(ValueError, match="version 99"):
        TemplateMiner.from_state(zlib.compress(json.dumps(doc).encode()))


def test_memory_is_bounded():
    settings = MinerSettings(max_clusters=50, cache_size=100, max_services=3)
    miner = TemplateMiner(settings)
    shapes = _shapes(600)
    for i, message in enumerate(shapes):
        miner.mine(f"svc{i % 3}", message)
        stats = miner.stats()
        assert stats.clusters <= 50 and stats.cache_entries <= 100
    assert miner.stats().clusters == 50  # over all services
    assert all(len(svc.records) <= 2 * len(svc.clusters) + 100 for svc in miner._services.values())
    state = miner.state()
    assert TemplateMiner.from_state(state, settings).stats().clusters == 50
    assert TemplateMiner.from_state(state, MinerSettings(max_clusters=20)).stats().clusters == 20
    miner.mine("svc3", shapes[0])  # a fourth service: the least recently used one goes
    assert miner.stats().services == 3 and "svc0" not in miner._services


def test_an_evicted_template_comes_back_with_the_same_key():
    miner = TemplateMiner(MinerSettings(max_clusters=2))
    a, b, c = _shapes(3)
    key = miner.mine("svc", a).key
    miner.mine("svc", b)
    miner.mine("svc", c)  # drain forgets a, the least recently used; the cache still points at it
    assert miner.stats().clusters == 2
    assert miner.mine("svc", a).key == key  # re-learned: the key is a digest of the template, not drain's id


def test_cache_hits_keep_clusters_alive_in_drain():
    miner = TemplateMiner(MinerSettings(max_clusters=3))
    hot, *cold = _shapes(6)
    miner.mine("svc", hot)
    drain = miner._services["svc"].clusters
    (hot_id,) = drain.keys()
    for message in cold:
        miner.mine("svc", hot)  # served by the cache, but must count as used for drain's LRU
        miner.mine("svc", message)
    assert hot_id in drain and drain.get(hot_id).size == 6  # never evicted and re-created
    assert miner.stats().cache_hits == 5


def test_long_messages_are_mined_by_their_first_max_chars():
    miner = TemplateMiner()
    trace = "java.lang.IllegalStateException: pool closed " + " ".join(
        f"at com.example.Handler{i}.run(Handler.java:{i})" for i in range(3000))
    assert len(trace) > 100_000
    mined = miner.mine("worker", trace)
    assert len(mined.template) < 2 * MAX_CHARS
    assert miner.mine("worker", trace[:MAX_CHARS]).key == mined.key
    one_token = "x" * 100_000
    assert miner.mine("worker", one_token).template == "x" * MAX_CHARS


def test_empty_message():
    miner = TemplateMiner()
    empty = miner.mine("svc", "")
    assert empty.template == ""
    assert miner.mine("svc", "   ").key == empty.key
    assert miner.mine("svc", "something else").key != empty.key
    assert TemplateMiner.from_state(miner.state()).mine("svc", "") == empty


def test_match_does_not_learn():
    miner = TemplateMiner()
    mined = miner.mine("auth", "login failed for alice from 10.0.0.1")
    miner.mine("auth", "login failed for bob from 10.0.0.2")
    assert miner.match("auth", "login failed for carol from 10.0.0.3") == (mined.key, "login failed for <*> from <IP>")
    assert miner.match("auth", "something never seen") is None
    assert miner.match("billing", "login failed for carol from 10.0.0.3") is None
    assert miner.stats().clusters == 1 and miner.stats().lines == 2


def test_snapshot_due_after_new_clusters_or_time_but_not_too_often():
    clock = Clock()
    miner = TemplateMiner(MinerSettings(snapshot_clusters=3, snapshot_min_seconds=10, snapshot_seconds=100), clock)
    assert not miner.snapshot_due()
    for message in _shapes(3):
        miner.mine("svc", message)
    assert not miner.snapshot_due()  # 3 new clusters, but within snapshot_min_seconds
    clock.now = 10
    assert miner.snapshot_due()
    miner.state()
    assert not miner.snapshot_due()
    clock.now = 200
    assert not miner.snapshot_due()  # nothing changed
    miner.mine("svc", "one more shape here")
    assert miner.snapshot_due()  # a change, snapshot_seconds after the last state()
