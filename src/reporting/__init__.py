"""Paper reports from run records: which runs count (:mod:`.selection`), the experiment files they are
compared with (:mod:`.catalog`), the table and its notes (:mod:`.build`) and the files written
(:mod:`.exporters`). ``python -m src.report`` is the command line; ``docs/reports.md`` explains the rules.
"""

from src.reporting.build import Report, ReportError, build_combined_report, build_report
from src.reporting.exporters import csv_text, latex_text, markdown_text, write_report
from src.reporting.selection import is_harmless

__all__ = [
    "Report",
    "ReportError",
    "build_combined_report",
    "build_report",
    "csv_text",
    "is_harmless",
    "latex_text",
    "markdown_text",
    "write_report",
]
