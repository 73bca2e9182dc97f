"""The layout the README describes, checked: import contracts (pyproject's [tool.importlinter]) and file sizes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PRODUCT = ["opsdraft", "opsdraft_app", "consumers", "summarizer", "bot", "redaction"]
# Data tables and test doubles are allowed to be long: they are read as lists, not as logic.
LONG_ALLOWED = {"opsdraft_app/testing/slackfake.py", "redaction/evaldata/templates.py"}
MAX_LINES = 460


def test_import_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    out = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]
    assert "0 broken" in out.stdout


def test_product_files_are_short_enough_to_read_whole():
    long = {}
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).as_posix()
            n = len(path.read_text().splitlines())
            if n > MAX_LINES and rel not in LONG_ALLOWED:
                long[rel] = n
    assert not long, f"split these files (over {MAX_LINES} lines): {long}"
