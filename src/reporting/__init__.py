"""Paper reports from run records: which runs count (:mod:`.selection`), the experiment files they are
compared with (:mod:`.catalog`), the table and its notes (:mod:`.build`), the published numbers beside it
(:mod:`.published`) and the files written (:mod:`.exporters`). ``python -m src.report`` is the command
line; ``docs/reports.md`` explains the rules.
"""

from src.reporting.build import Report, build_combined_report, build_report
from src.reporting.errors import ReportError
from src.reporting.exporters import csv_text, latex_text, markdown_text, write_report
from src.reporting.published import PUBLISHED_FILE, Comparison, read_published
from src.reporting.selection import is_harmless

__all__ = [
    "PUBLISHED_FILE",
    "Comparison",
    "Report",
    "ReportError",
    "build_combined_report",
    "build_report",
    "csv_text",
    "is_harmless",
    "latex_text",
    "markdown_text",
    "read_published",
    "write_report",
]
