"""Removes personal data and secrets from ops text before it is stored, embedded, prompted or posted."""

from redaction.engine import Redactor, SourcePolicy, build_redactor
from redaction.logfilter import RedactingLogFilter
from redaction.placeholders import PlaceholderMap
from redaction.recognizers import Rule
from redaction.vault import Sealer, restore

__all__ = ["PlaceholderMap", "RedactingLogFilter", "Redactor", "Rule", "Sealer", "SourcePolicy", "build_redactor",
           "restore"]
