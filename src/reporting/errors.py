"""The one error a report raises (its own module so every part of :mod:`src.reporting` can raise it)."""

from __future__ import annotations


class ReportError(ValueError):
    """Nothing to report, or inputs that cannot be combined; the message says what and where."""
