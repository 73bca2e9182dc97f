"""Removes personal data and secrets from ops text before it is stored, embedded, prompted or posted."""

from redaction.engine import Redactor, build_redactor
from redaction.logfilter import RedactingLogFilter
from redaction.placeholders import PlaceholderMap

__all__ = ["PlaceholderMap", "RedactingLogFilter", "Redactor", "build_redactor"]
