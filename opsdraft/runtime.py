"""What every role needs at run time, built once per process."""

from __future__ import annotations

from dataclasses import dataclass

from opsdraft.bus import Bus
from opsdraft.db import Database
from opsdraft.settings import Settings
from redaction import Redactor


@dataclass
class Runtime:
    settings: Settings
    db: Database
    bus: Bus
    redactor: Redactor
