"""Template mining throughput (consumers/templates.py) on generated, already-redacted log lines: a dozen generating
templates over five services, with numbers, durations, ids, hosts and placeholders varying, plus free-text noise.

    .venv/bin/python bench/ingest/templates_bench.py [--lines 100000] [--noise 0.02] [--runs 3] [--sim-th 0.4]
                                                     [--single]

--single mines with ONE drain miner, the service as the line's first token (depth + 1, so drain still routes on
the line's own first token), instead of one miner per service. Prints lines/s (median of the runs, each on a fresh
miner, cold), the templates found vs the generating templates, the cache hit ratio and the state size; the figures
are this machine's, measured in this run."""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import time
import uuid
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from consumers.templates import MinerSettings, TemplateMiner  # noqa: E402

Gen = Callable[[random.Random], str]
Line = tuple[str, str, int]  # service, message, generating template (-1: noise)


def _alnum(r: random.Random, n: int) -> str:
    return "".join(r.choices(string.ascii_letters + string.digits, k=n))


def _hex(r: random.Random, n: int) -> str:
    return "".join(r.choices("0123456789abcdef", k=n))


def _ip(r: random.Random) -> str:
    return f"10.{r.randint(0, 255)}.{r.randint(0, 255)}.{r.randint(1, 254)}"


def _uuid(r: random.Random) -> uuid.UUID:
    return uuid.UUID(int=r.getrandbits(128))


def _get(r: random.Random) -> str:
    route = r.choice(["orders", "carts", "items", "users"])
    return (f"GET /api/{route}/{r.randint(1, 10**6)} {r.choice([200, 201, 304])} in {r.randint(1, 900)}ms "
            f"request_id={_uuid(r)}")


def _declined(r: random.Random) -> str:
    return (f"payment declined for <PERSON_{r.randint(1, 9)}> card <CREDIT_CARD_{r.randint(1, 3)}> "
            f"amount={r.uniform(1, 500):.2f} currency={r.choice(['EUR', 'USD', 'GBP'])}")


def _timeout(r: random.Random) -> str:
    return (f"upstream timeout from {_ip(r)}:{r.choice([443, 8443])} after {r.uniform(1, 30):.1f}s "
            f"(attempt {r.randint(1, 5)}/5)")


def _charge(r: random.Random) -> str:
    return f"charge ch_{_alnum(r, 24)} settled in {r.randint(5, 400)}ms for customer_id=cus_{_alnum(r, 14)}"


def _query(r: random.Random) -> str:
    return (f"query took {r.randint(1, 2000)}ms hits={r.randint(0, 10**5)} shard={r.randint(0, 31)} "
            f"node=search-{r.randint(1, 12):02d}")


def _refresh(r: random.Random) -> str:
    return (f"index refresh on search-{r.randint(1, 12):02d} completed: {r.randint(1, 10**6)} docs, "
            f"{r.randint(1, 900)}MB, {r.uniform(0, 20):.2f}s")


def _login(r: random.Random) -> str:
    return (f"login failed for <EMAIL_{r.randint(1, 4)}> from <IP_ADDRESS_{r.randint(1, 4)}>: "
            f"invalid password (attempt {r.randint(1, 5)})")


def _token(r: random.Random) -> str:
    return (f"token refreshed for user_id={r.randint(1, 10**7)} session={_hex(r, 16)} "
            f"ttl={r.choice([900, 3600])}s")


def _slow(r: random.Random) -> str:
    ts = f"2026-11-20T14:{r.randint(0, 59):02d}:{r.randint(0, 59):02d}.{r.randint(0, 999):03d}Z"
    table = r.choice(["orders", "order_items", "customers"])
    return f"{ts} slow query ({r.randint(100, 9000)} ms): SELECT * FROM {table} WHERE id = {r.randint(1, 10**8)}"


def _pool(r: random.Random) -> str:
    host = r.choice(["db-primary-a", "db-replica-b", "db-replica-c"])
    return f"connection pool exhausted on {host}: {r.randint(50, 100)}/100 in use, waited {r.randint(1, 5000)}ms"


def _job(r: random.Random) -> str:
    return (f"job {_uuid(r)} finished with status={r.choice(['ok', 'retried'])} in {r.uniform(0, 60):.1f}s "
            f"on worker-{_hex(r, 9)}-{_alnum(r, 5).lower()}")


def _retry(r: random.Random) -> str:
    error = r.choice(["deadline exceeded", "broken pipe", "connection refused"])
    return f"retrying job {_uuid(r)} after error: {error}"


# (service, generator, weight): the first token of each is fixed, as drain routes on it; inner words vary.
TEMPLATES: list[tuple[str, Gen, int]] = [
    ("checkout", _get, 30), ("checkout", _declined, 4), ("payments", _timeout, 6), ("payments", _charge, 12),
    ("search", _query, 15), ("search", _refresh, 3), ("auth", _login, 5), ("auth", _token, 10),
    ("orders-db", _slow, 4), ("orders-db", _pool, 2), ("worker", _job, 8), ("worker", _retry, 1),
]
WORDS = ("cache flush queue retry worker shard leader follower replica snapshot compaction backlog token quota "
         "window batch offset commit rebalance partition consumer producer heartbeat session expired stale lock "
         "mutex deadlock panic recovered goroutine thread pool saturated degraded healthy probe liveness readiness "
         "evicted oom killed throttled scaled deployment rollout canary config reload certificate rotated").split()


def generate(n: int, noise: float, seed: int = 7) -> list[Line]:
    r = random.Random(seed)
    weights = [w for _, _, w in TEMPLATES]
    out = []
    for _ in range(n):
        if r.random() < noise:
            out.append((r.choice(TEMPLATES)[0], " ".join(r.choices(WORDS, k=r.randint(4, 14))), -1))
            continue
        i = r.choices(range(len(TEMPLATES)), weights)[0]
        out.append((TEMPLATES[i][0], TEMPLATES[i][1](r), i))
    return out


def run(lines: list[Line], settings: MinerSettings, single: bool) -> tuple[float, TemplateMiner, list[str]]:
    miner = TemplateMiner(settings)
    mine = miner.mine
    if single:
        inputs = [("*", f"{svc} {msg}") for svc, msg, _ in lines]
    else:
        inputs = [(svc, msg) for svc, msg, _ in lines]
    start = time.perf_counter()
    keys = [mine(svc, msg).key for svc, msg in inputs]
    return time.perf_counter() - start, miner, keys


def quality(lines: list[Line], keys: list[str]) -> tuple[int, int, int, int]:
    """Keys found for the generated lines, generating templates split over several keys, keys shared by several
    generating templates, and keys of noise lines."""
    by_template: dict[int, set[str]] = defaultdict(set)
    by_key: dict[str, set[int]] = defaultdict(set)
    noise_keys = set()
    for (_, _, t), key in zip(lines, keys, strict=True):
        if t < 0:
            noise_keys.add(key)
            continue
        by_template[t].add(key)
        by_key[key].add(t)
    split = sum(len(ks) > 1 for ks in by_template.values())
    merged = sum(len(ts) > 1 for ts in by_key.values())
    return len(by_key), split, merged, len(noise_keys - set(by_key))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=100_000)
    ap.add_argument("--noise", type=float, default=0.02, help="fraction of free-text lines")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--sim-th", type=float, default=MinerSettings().sim_th)
    ap.add_argument("--single", action="store_true", help="one miner, the service as first token")
    args = ap.parse_args()

    lines = generate(args.lines, args.noise)
    depth = MinerSettings().depth + (1 if args.single else 0)
    settings = MinerSettings(sim_th=args.sim_th, depth=depth)
    timings = []
    for _ in range(args.runs):
        seconds, miner, keys = run(lines, settings, args.single)
        timings.append(seconds)
    found, split, merged, noise_keys = quality(lines, keys)
    stats = miner.stats()
    start = time.perf_counter()
    state = miner.state()
    save_ms = (time.perf_counter() - start) * 1000
    start = time.perf_counter()
    TemplateMiner.from_state(state, settings)
    load_ms = (time.perf_counter() - start) * 1000

    seconds = statistics.median(timings)
    layout = "one miner, service as first token" if args.single else "one miner per service"
    print(f"template mining: {len(lines):,} lines ({args.noise:.0%} noise), {layout}, depth {depth}, "
          f"sim_th {args.sim_th}")
    print(f"  throughput        {len(lines) / seconds:,.0f} lines/s  (median of {args.runs} cold runs: "
          + ", ".join(f"{len(lines) / t:,.0f}" for t in timings) + ")")
    print(f"  templates found   {found} for {len(TEMPLATES)} generating templates "
          f"({split} split over several keys, {merged} keys shared by several)")
    print(f"  noise             {noise_keys} more keys for {sum(t < 0 for _, _, t in lines):,} noise lines")
    print(f"  cache hit ratio   {stats.cache_hits / stats.lines:.1%}")
    print(f"  clusters          {stats.clusters} in {stats.services} services")
    print(f"  state             {len(state):,} bytes, state() {save_ms:.1f} ms, from_state() {load_ms:.1f} ms")


if __name__ == "__main__":
    main()
