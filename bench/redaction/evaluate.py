"""Evaluation: per-entity recall/precision/F2, damaged technical tokens and records/s, opsdraft vs stock Presidio.

    .venv/bin/python bench/redaction/evaluate.py [--show N]   (N: print the first N misses/false positives)
"""

import sys

from redaction.evaluate import run

if __name__ == "__main__":
    show = int(sys.argv[sys.argv.index("--show") + 1]) if "--show" in sys.argv else 0
    run(show=show)
