"""The summarizer's modules import cheaply and change nothing in the process until a model is loaded."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")}
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, env=env, timeout=120)


def test_importing_the_drafting_modules_loads_no_model_runtime_and_sets_nothing():
    _run(
        "import os, sys\n"
        "import summarizer, summarizer.facts, summarizer.guard, summarizer.timeline, summarizer.postmortem\n"
        "import summarizer.ticket_reply, summarizer.llm, summarizer.embeddings, summarizer.config\n"
        "heavy = ('torch', 'transformers', 'sentence_transformers', 'huggingface_hub')\n"
        "heavy = [m for m in heavy if m in sys.modules]\n"
        "assert not heavy, heavy\n"
        "assert 'HF_HUB_OFFLINE' not in os.environ and 'TRANSFORMERS_OFFLINE' not in os.environ\n"
    )


def test_hub_offline_also_reaches_an_already_imported_huggingface_hub():
    _run(
        "import os, huggingface_hub.constants as c\n"
        "assert not c.HF_HUB_OFFLINE\n"
        "from summarizer.config import hub_offline\n"
        "hub_offline()\n"
        "assert os.environ['HF_HUB_OFFLINE'] == '1' and c.HF_HUB_OFFLINE\n"
    )
