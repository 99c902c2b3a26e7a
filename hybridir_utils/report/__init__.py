"""The report: summary tables beside the paper's numbers, figures, the HTML index, and the answer written from
``results/<profile>/*.csv`` into RESULTS.md. ``answer``, ``plots`` and ``tables`` are public as modules."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.report import answer, plots, tables
    from hybridir_utils.report.html import write_report
    from hybridir_utils.report.summaries import (
        ci_table,
        domain_slices,
        language_preference,
        map_matrices,
        miracl_levels,
        miracl_summary,
        paper_anchors,
        per_language,
    )

__all__ = [
    "answer",
    "ci_table",
    "domain_slices",
    "language_preference",
    "map_matrices",
    "miracl_levels",
    "miracl_summary",
    "paper_anchors",
    "per_language",
    "plots",
    "tables",
    "write_report",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
