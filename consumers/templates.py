"""Log template mining at ingest with drain3: (service, message) -> a stable template key and the current template.

    miner = TemplateMiner()
    mined = miner.mine("checkout", "GET /api/orders/123 200 in 34ms request_id=3f2a9c1e")
    mined.key       # '6183fc57432913bb': stable for the life of the template, across restarts
    mined.template  # 'GET /api/orders/<NUM> <NUM> in <NUM> request_id=<ID>'
    if miner.snapshot_due():
        row.state = miner.state()  # the caller stores the bytes; TemplateMiner.from_state(row.state) restores

What this wrapper adds to drain3's own TemplateMiner, and why:
- Masking runs once, with ONE combined regex, before drain (drain3's masker makes one pass per instruction).
  Messages arrive redacted, so the redactor's placeholders (<PERSON_1>, <EMAIL_2>) are masked to <*> as well.
- An LRU of masked text -> cluster: realistic logs repeat a few shapes, and a repeated masked line skips drain.
- Stable keys: drain's cluster ids are per-process counters and its templates change as they generalise, so a key
  is the digest of (service, template when drain CREATED the cluster), kept per cluster and saved in the state.
- One drain miner per service (depth 4 within the service): services never share or merge templates, which one
  miner with the service as first token cannot promise beyond max_children services (they share the <*> branch).
  Measured with bench/ingest/templates_bench.py [--single]: the same templates, and about the same speed.
- State is our compact JSON (+zlib) of the clusters, not drain3's jsonpickle: unpickling bytes read back from a
  database may instantiate any class named in them, and the JSON does not depend on drain3's private attributes.
- Only the first MAX_CHARS characters of a message are mined: a 100 kB stack trace costs no more than 2 kB.

Not thread-safe: one miner per consumer task. Memory is bounded: max_clusters clusters over all services (drain's
prefix trees add at most max_children nodes per token count and service), cache_size cache entries, max_services
services."""

from __future__ import annotations

import hashlib
import json
import re
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from drain3.drain import LogCluster, LogClusterCache
from drain3.template_miner import TemplateMiner as DrainMiner
from drain3.template_miner_config import TemplateMinerConfig

MAX_CHARS = 2000  # what is mined of a message: its shape is in its start, and drain is linear in its tokens
CACHE_TEXT_CHARS = 256  # longer masked lines are cached by a digest: 50,000 stack traces would hold 100 MB
STATE_VERSION = 1

# Keys whose values are identifiers (request_id=, x-request-id=, userId=, traceID=, trace=, session=, ...). Each
# lookbehind is fixed-width, as Python requires; "[\W_]id=" keeps "valid=" and "paid=" out.
_ID_KEY = (r"(?:(?<=[\W_]id=)|(?<=[a-z]Id=)|(?<=ID=)|(?<=trace=)|(?<=span=)|(?<=session=)|(?<=request=)"
           r"|(?<=token=)|(?<=txn=)|(?<=sha=))")
# One pass over the text. Every branch but the placeholder's starts with the delimiter (D) before the value, as a
# consumed character rather than a lookbehind: a pattern that starts with a character class lets the regex engine
# skip to the next delimiter in C instead of trying each branch at every position (about 1.5x faster here).
# A value must also end at a word boundary not followed by ".digit": "abc12", "12abc" and "1.2.3" stay as they are.
# "-" is both a delimiter and part of keys and ids, so what a branch scans before it can fail is bounded ({0,63}) or
# possessive (++) and bounded: "a-a-a-...", 2,000 characters of it, would otherwise cost a scan to its end per "-".
_MASK = re.compile(
    r"(?P<PH><[A-Z][A-Z_]*_\d+>)"  # redaction placeholders, as redaction.placeholders.PLACEHOLDER_PATTERN writes them
    r"|(?P<D>[^\w.])(?:"
    r"(?P<KV>[A-Za-z][\w-]{0,63}+=)" + _ID_KEY + r"[^\s,;&\"'<>()\[\]{}]++"
    r"|(?:(?P<UUID>[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
    r"|(?P<TS>\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?)"
    r"|(?P<IP>\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?)"
    # hex ids: 0x..., or 6+ hex digits with at least one digit and one letter ("facade" and "123456" are not)
    r"|(?P<HEX>0x[0-9a-fA-F]++|(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}+)"
    # numbers, with the units of durations and sizes: 3000ms, 1.5s, 12GB, 93%
    r"|(?P<NUM>[-+]?\d+(?:\.\d+)?(?:[mun]s|µs|s|m|h|d|[kKMGT]i?B|%)?)"
    # other ids: 8+ word characters or dashes, with a digit and a letter (ch_3LkQ9x2..., checkout-7d9f8b6c4-x2kq9);
    # short ones (ec2, sda1, http2, worker7) are more often names than ids
    r"|(?P<ID>(?=[\w-]{0,63}\d)(?=[\w-]{0,63}[A-Za-z])[\w-]{8,128}+)"
    r")(?!\w|\.\d))")
_MASK_TEXT = {"UUID": "<UUID>", "TS": "<TS>", "IP": "<IP>", "HEX": "<HEX>", "NUM": "<NUM>", "ID": "<ID>"}


def _mask_match(m: re.Match[str]) -> str:
    group = m.lastgroup
    if group == "PH":
        return "<*>"  # drain's own wildcard: a placeholder is a variable whatever entity it stands for
    if group == "KV":
        return m["D"] + m["KV"] + "<ID>"
    return m["D"] + _MASK_TEXT[group]  # every other branch is named, so group is one of _MASK_TEXT


def mask(message: str) -> str:
    """The message with its variable parts replaced by <NUM>, <HEX>, <IP>, <UUID>, <TS>, <ID> and <*>."""
    # The leading space gives a value at the very start of the message its delimiter.
    return _MASK.sub(_mask_match, " " + message)[1:]


def _cache_key(service: str, masked: str) -> tuple[str, str | bytes]:
    if len(masked) <= CACHE_TEXT_CHARS:
        return service, masked
    return service, hashlib.blake2b(masked.encode(), digest_size=16).digest()  # 128 bits: no collision in 50k


def template_key(service: str, template: str) -> str:
    """16 hex digits naming a template of a service; computed once, when drain creates the cluster."""
    return hashlib.blake2b(f"{service}\x1f{template}".encode(), digest_size=8).hexdigest()


class Mined(NamedTuple):
    key: str  # stable: the digest of the template drain first created for this cluster
    template: str  # current: drain widens it (more <*>) as it sees more lines of the same shape


class MinerStats(NamedTuple):
    lines: int
    cache_hits: int
    cache_entries: int
    services: int
    clusters: int


@dataclass(frozen=True, slots=True)
class MinerSettings:
    sim_th: float = 0.4  # drain: fraction of equal tokens for a line to join a cluster
    depth: int = 4  # drain: token count, then the first token, then the clusters
    max_children: int = 100  # drain: children per tree node before new tokens go to the <*> branch
    # All services together: beyond it the least recently used cluster of the service with the most is forgotten
    # (a service's free-text noise, typically). Each service's drain is also capped at it.
    max_clusters: int = 10_000
    max_services: int = 200  # beyond it the least recently used service and its clusters are forgotten
    cache_size: int = 50_000  # masked line -> cluster entries
    max_chars: int = MAX_CHARS
    snapshot_clusters: int = 100  # snapshot_due() after this many new clusters...
    snapshot_seconds: float = 300.0  # ...or after this long with any change...
    snapshot_min_seconds: float = 30.0  # ...but never sooner than this: state() takes ~4 ms per 1,000 clusters here


class _Service:
    __slots__ = ("name", "drain", "clusters", "records", "last_used")

    def __init__(self, name: str, drain: DrainMiner):
        self.name, self.drain = name, drain
        self.clusters: LogClusterCache = drain.drain.id_to_cluster  # drain's LRU of cluster id -> LogCluster
        self.records: dict[int, _Record] = {}
        self.last_used = 0


class _Record:
    """Our side of one drain cluster: its stable key and the Mined handed out for it. The cache's values."""

    __slots__ = ("svc", "cluster_id", "key", "mined", "last_used")

    def __init__(self, svc: _Service, cluster_id: int, key: str, template: str, last_used: int):
        self.svc, self.cluster_id, self.key, self.last_used = svc, cluster_id, key, last_used
        self.mined = Mined(key, template)


class TemplateMiner:
    def __init__(self, settings: MinerSettings | None = None, clock: Callable[[], float] = time.monotonic):
        self.settings = settings or MinerSettings()
        self._clock = clock
        self._services: dict[str, _Service] = {}
        self._cache: OrderedDict[tuple[str, str | bytes], _Record] = OrderedDict()
        self._tick = 0  # one per line: the recency of clusters and services, saved as their order in state()
        self._hits = 0
        self._misses = 0  # lines that went through drain
        self._new_clusters = 0  # since the last state()
        self._changes = 0  # new clusters and widened templates since the last state()
        self._saved_at = clock()

    # --- mining ---------------------------------------------------------------------------------------

    def mine(self, service: str, message: str) -> Mined:
        """The template of this line, learning from it. Only its first max_chars characters are mined."""
        masked = mask(message[: self.settings.max_chars])
        self._tick += 1
        cache_key = _cache_key(service, masked)
        record = self._cache.get(cache_key)
        if record is not None:
            # Reading drain's LRU marks the cluster as used, so drain does not evict a cluster that only the
            # cache serves; None when drain has evicted it, and then the line goes through drain again.
            cluster = record.svc.clusters[record.cluster_id]
            if cluster is not None:
                cluster.size += 1
                record.last_used = record.svc.last_used = self._tick
                self._cache.move_to_end(cache_key)
                self._hits += 1
                return record.mined
        return self._learn(service, masked, cache_key)

    def match(self, service: str, message: str) -> Mined | None:
        """The template this line belongs to, without learning from it (drain3's match(): all tokens equal or
        under a <*>); None when there is none."""
        masked = mask(message[: self.settings.max_chars])
        record = self._cache.get(_cache_key(service, masked))
        if record is not None and record.svc.clusters.get(record.cluster_id) is not None:
            return record.mined
        svc = self._services.get(service)
        cluster = svc.drain.match(masked, full_search_strategy="fallback") if svc else None
        record = svc.records.get(cluster.cluster_id) if svc and cluster else None
        return record.mined if record else None

    def _learn(self, service: str, masked: str, cache_key: tuple[str, str | bytes]) -> Mined:
        self._misses += 1
        svc = self._service(service)
        # drain3's masker has no instructions (see _new_drain): the text is already masked.
        result = svc.drain.add_log_message(masked)
        cluster_id, template = result["cluster_id"], result["template_mined"]
        record = svc.records.get(cluster_id)
        if record is None:  # cluster_created: the key is fixed now, from the template as first mined
            key = template_key(service, template)
            record = svc.records[cluster_id] = _Record(svc, cluster_id, key, template, self._tick)
            self._new_clusters += 1
            self._changes += 1
            self._bound_clusters(svc)
        elif record.mined.template != template:  # cluster_template_changed: same key, wider template
            record.mined = Mined(record.key, template)
            self._changes += 1
        record.last_used = svc.last_used = self._tick
        self._cache[cache_key] = record
        if len(self._cache) > self.settings.cache_size:
            self._cache.popitem(last=False)
        return record.mined

    # --- services and bounds --------------------------------------------------------------------------

    def _service(self, name: str) -> _Service:
        svc = self._services.get(name)
        if svc is None:
            if len(self._services) >= self.settings.max_services:
                self._evict_service()
            svc = self._services[name] = _Service(name, self._new_drain())
        return svc

    def _new_drain(self) -> DrainMiner:
        config = TemplateMinerConfig()
        config.drain_depth = self.settings.depth
        config.drain_sim_th = self.settings.sim_th
        config.drain_max_children = self.settings.max_children
        config.drain_max_clusters = self.settings.max_clusters  # also makes id_to_cluster drain's LRU
        config.masking_instructions = []  # masked before, in one pass: see mask()
        # No persistence handler: drain3 would serialise the whole miner with jsonpickle at every new cluster.
        return DrainMiner(config=config)

    def _evict_service(self) -> None:
        victim = min(self._services.values(), key=lambda s: s.last_used)
        del self._services[victim.name]
        self._cache.clear()  # rare; simpler than finding the victim's entries, and the cache refills in seconds

    def _bound_clusters(self, svc: _Service) -> None:
        """After a new cluster of svc: keep all services within max_clusters, and records to about the live ones."""
        services = self._services.values()
        excess = sum(len(s.clusters) for s in services) - self.settings.max_clusters
        for _ in range(excess):
            largest = max(services, key=lambda s: len(s.clusters))
            largest.clusters.popitem()  # drain's own eviction: its LRU; the tree drops the id when next touched
        # Drain evicts clusters silently; forget their records once they could outnumber the live ones.
        if len(svc.records) > 2 * len(svc.clusters) + 100:
            svc.records = {cid: r for cid, r in svc.records.items() if cid in svc.clusters}

    def stats(self) -> MinerStats:
        clusters = sum(len(svc.clusters) for svc in self._services.values())
        return MinerStats(self._hits + self._misses, self._hits, len(self._cache), len(self._services), clusters)

    # --- state ----------------------------------------------------------------------------------------

    def snapshot_due(self) -> bool:
        """Whether the caller should save state() now: after snapshot_clusters new clusters, or snapshot_seconds
        after the last state() if anything changed; never within snapshot_min_seconds of it (free-text noise
        creates clusters continuously). Losing the last minute of state is cheap: a key is a digest of the template
        drain first mined, which the same lines mostly mine again after a restart."""
        elapsed = self._clock() - self._saved_at
        if elapsed < self.settings.snapshot_min_seconds:
            return False
        return self._new_clusters >= self.settings.snapshot_clusters or (
            self._changes > 0 and elapsed >= self.settings.snapshot_seconds)

    def state(self) -> bytes:
        """Compressed JSON of every live cluster (id, size, key, template), least recently used first, per
        service, least recently used service first. Resets snapshot_due()."""
        services = sorted(self._services.values(), key=lambda s: s.last_used)
        doc = {"v": STATE_VERSION, "services": [self._service_state(svc) for svc in services]}
        self._new_clusters = self._changes = 0
        self._saved_at = self._clock()
        # Level 1: about 4x faster than 6 here for 20% more bytes; the consumer waits for this, the row does not.
        return zlib.compress(json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode(), 1)

    @staticmethod
    def _service_state(svc: _Service) -> dict[str, Any]:
        live = sorted((r.last_used, cid) for cid, r in svc.records.items() if cid in svc.clusters)
        clusters = []
        for _, cid in live:
            cluster: LogCluster = svc.clusters.get(cid)  # .get: reading must not reorder drain's LRU
            # drain's tokens come from str.split(), so joining them with spaces round-trips (and dumps faster)
            clusters.append([cid, cluster.size, svc.records[cid].key, cluster.get_template()])
        return {"name": svc.name, "counter": svc.drain.drain.clusters_counter, "clusters": clusters}

    @classmethod
    def from_state(cls, data: bytes, settings: MinerSettings | None = None,
                   clock: Callable[[], float] = time.monotonic) -> TemplateMiner:
        """A miner with the clusters and keys of state(); the same templates keep the same keys."""
        doc = json.loads(zlib.decompress(data))
        if doc.get("v") != STATE_VERSION:
            raise ValueError(f"template miner state version {doc.get('v')!r}, expected {STATE_VERSION}")
        miner = cls(settings, clock)
        for svc_doc in doc["services"]:
            miner._restore_service(svc_doc)
        for svc in list(miner._services.values()):  # with settings smaller than those that saved it
            miner._bound_clusters(svc)
        return miner

    def _restore_service(self, svc_doc: dict[str, Any]) -> None:
        svc = self._service(svc_doc["name"])
        drain = svc.drain.drain
        # Least recently used first, so drain's LRU order is the saved one; beyond max_clusters, only the newest.
        for cid, size, key, template in svc_doc["clusters"][-self.settings.max_clusters:]:
            cluster = LogCluster(template.split(), cid)
            cluster.size = size
            drain.id_to_cluster[cid] = cluster
            # drain3 routes a cluster in its prefix tree by its tokens, as when it was created (the tree only uses
            # the token count and the first depth - 3 tokens, which a template rarely widens).
            drain.add_seq_to_prefix_tree(drain.root_node, cluster)
            self._tick += 1
            svc.records[cid] = _Record(svc, cid, key, template, self._tick)
        drain.clusters_counter = max(drain.clusters_counter, svc_doc["counter"])  # new ids never reuse old ones
        svc.last_used = self._tick
