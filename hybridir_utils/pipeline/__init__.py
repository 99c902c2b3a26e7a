"""The pipeline: notebooks 01-05 run in order by papermill under a profile, provenance (commit, machine) recorded
with every run, and ``make lab``'s notebooks. Command line: ``python -m hybridir_utils.pipeline --profile cpu``."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.pipeline.provenance import git_commit, machine, record_run
    from hybridir_utils.pipeline.runner import load_profile, run

__all__ = ["git_commit", "load_profile", "machine", "record_run", "run"]
__getattr__, __dir__ = lazy_face(__name__, __file__)
