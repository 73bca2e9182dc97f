"""Where the summarizer's configuration comes from.

The worker passes its validated Settings (or single values from them) down as parameters. Functions that other
callers use without settings (tests, benchmarks, scripts) fall back to current_settings(). hub_offline() runs
just before a model or the embedder is loaded, not at import time.
"""

from __future__ import annotations

import os
import sys

from opsdraft.settings import Settings, load_settings


def current_settings() -> Settings:
    """Settings as the environment (and .env) give them now, for callers that pass none.

    Not the cached get_settings(): such callers (tests, benchmarks) may change the environment between calls.
    Raises SettingsError naming the bad OPSDRAFT_* variable.
    """
    return load_settings()


def hub_offline() -> None:
    """Never reach the Hugging Face hub: models come from installed packages or local files only.

    Called right before loading a model. huggingface_hub reads HF_HUB_OFFLINE once, when it is imported, so if
    another library imported it first, its copy is updated too. A value already in the environment wins.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    constants = sys.modules.get("huggingface_hub.constants")
    if constants is not None and hasattr(constants, "HF_HUB_OFFLINE"):
        value = os.environ.get("HF_HUB_OFFLINE") or os.environ.get("TRANSFORMERS_OFFLINE") or ""
        constants.HF_HUB_OFFLINE = value.strip().upper() in {"1", "ON", "YES", "TRUE"}  # as huggingface_hub reads it
