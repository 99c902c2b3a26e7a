"""Cross-cutting helpers every stage uses: where files live, how they are written, what machine ran.

``paths`` owns every path (each overridable by an environment variable), ``atomic`` writes files so a killed run
never leaves half a file, ``environment`` records device, precision, versions and CPU flags, ``timing`` stamps
stages, ``locks`` keeps one pipeline per build folder and one heavy job per machine.
"""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.utils import atomic, environment, locks, paths, timing
    from hybridir_utils.utils.atomic import atomic_write, read_json, write_json, write_parquet, write_text

__all__ = [
    "atomic",
    "atomic_write",
    "environment",
    "locks",
    "paths",
    "read_json",
    "timing",
    "write_json",
    "write_parquet",
    "write_text",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
