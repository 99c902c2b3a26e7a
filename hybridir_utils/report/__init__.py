"""The report: summary tables beside the paper's numbers, figures, the HTML index, and the answer written from
``results/<profile>/*.csv`` into the README. ``answer`` and ``plots`` are public as modules."""

from hybridir_utils.report import answer, plots
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

__all__ = ["answer", "ci_table", "domain_slices", "language_preference", "map_matrices", "miracl_levels",
           "miracl_summary", "paper_anchors", "per_language", "plots", "write_report"]  # fmt: skip
