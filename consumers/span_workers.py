"""Redaction's analysis of log lines (which spans are emails, secrets, ...) in other processes, ahead of the
consumer. Finding spans is pure CPU (regexes, no database) and about 40% of a log line's ingest, and the consumer
is one Python process (one core): a worker process with the same redactor analyses the next part of a batch while
the consumer applies the current one, and the consumer takes the results into its redactor's cache
(Redactor.seed), so its own analysis of those lines is a cache hit. Placeholders, the database and everything else
stay in the consumer; a worker that is not ready, slow or broken only means the consumer analyses lines itself.
Workers are started with multiprocessing's spawn: like any program using it, a script that runs the consumers
with workers must guard its entry point (`if __name__ == "__main__":`), as `opsdraft` and bench/ do.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
from collections.abc import Iterator
from typing import Any

from opsdraft.privacy import redactor_config, redactor_from
from opsdraft.settings import Settings
from redaction import Redactor

log = logging.getLogger(__name__)

_REDACTOR: Redactor | None = None  # in a worker process


def _start(config: tuple) -> None:
    global _REDACTOR
    _REDACTOR = redactor_from(config)


def _analyze(texts: list[str], source: str) -> list[Any]:
    assert _REDACTOR is not None
    return _REDACTOR.analyze_many(texts, source)


def strings(value: Any) -> Iterator[str]:
    """The strings in a log line's attributes, as Redactor.redact_values meets them."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for v in value.values():
            yield from strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from strings(v)


class SpanWorkers:
    def __init__(self, settings: Settings, redactor: Redactor, workers: int, wait_s: float = 5.0):
        # spawn, not fork: the consumer has threads (the database, aiokafka) that a fork would copy mid-flight.
        self.pool = cf.ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                           initializer=_start, initargs=(redactor_config(settings),))
        self.redactor, self.wait_s, self.ready = redactor, wait_s, False
        self.pool.submit(_analyze, [], "logs").add_done_callback(self._started)

    def _started(self, future: cf.Future) -> None:
        if future.exception() is not None:
            log.warning("redaction workers did not start (%r): the consumer redacts on its own", future.exception())
        self.ready = future.exception() is None

    def submit(self, texts: list[str], source: str) -> cf.Future | None:
        """Start analysing `texts`; None while the workers are not ready (the consumer will do it)."""
        if not self.ready:
            return None
        try:
            return self.pool.submit(_analyze, texts, source)
        except Exception as exc:  # a worker died (BrokenProcessPool) or the pool is shut down
            log.warning("redaction workers unavailable (%r): the consumer redacts on its own", exc)
            self.ready = False
            return None

    def take(self, texts: list[str], source: str, future: cf.Future | None) -> None:
        """Seed the redactor with a submitted analysis, if it comes within wait_s; otherwise nothing (the
        consumer's redactor analyses the lines itself, as without workers)."""
        if future is None:
            return
        try:
            self.redactor.seed(texts, source, future.result(self.wait_s))
        except Exception as exc:
            future.cancel()
            log.info("a redaction worker's analysis was not used: %r", exc)

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)
