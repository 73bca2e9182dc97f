"""Evaluation: per-entity recall/precision/F2, damaged technical tokens and records/s, opsdraft vs stock Presidio.

    .venv/bin/python bench/redaction/evaluate.py [--show N] [--seeds 7,1234]
    (N: print the first N misses/false positives; --seeds: also presidio-evaluator sets of these seeds, fresh)
"""

import sys

from redaction.evaluate import run

if __name__ == "__main__":
    show = int(sys.argv[sys.argv.index("--show") + 1]) if "--show" in sys.argv else 0
    seeds = tuple(int(x) for x in sys.argv[sys.argv.index("--seeds") + 1].split(",")) if "--seeds" in sys.argv else ()
    run(show=show, seeds=seeds)
