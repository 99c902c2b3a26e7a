"""Provenance of a pipeline run: the commit it ran from (``+dirty`` when tracked files differ), the machine (CPU
model and flags, cores, GPU), and ``pipeline.json`` recording both with the profile, its parameters and each
notebook's time, so every result table can be traced to the code and the hardware that made it."""

from __future__ import annotations

from pathlib import Path

from hybridir_utils.utils import atomic, environment, paths


def git_commit(root: Path | None = None) -> str:
    """Short commit of the working tree, ``+dirty`` when tracked files differ from it; "unknown" outside git."""
    import subprocess

    cwd = str(root or paths.root())
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def machine() -> dict:
    """What the timings were measured on: :func:`environment.describe` (device, GPU, versions, CPU model and
    flags) plus cores and memory."""
    import os

    try:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "unknown"
    return {**environment.describe(), "cores": os.cpu_count(), "memory": memory}


def record_run(out_dir: Path, profile: str, params: dict, notebooks: dict[str, dict], **facts) -> dict:
    """Merge this run's notebooks into ``out_dir/pipeline.json`` and return the record.

    ``notebooks`` maps a notebook to ``{"seconds", "parameters"}``. Entries of notebooks not rerun (``--only``)
    are kept, each with the commit and time of its own run, so a partial rerun never loses earlier timings.
    ``facts`` (e.g. the cell timeout) are recorded as given.
    """
    import datetime

    path = Path(out_dir) / "pipeline.json"
    old = atomic.read_json(path) if path.is_file() else {}
    stamp = {"commit": git_commit(), "finished": datetime.datetime.now().isoformat(timespec="seconds")}
    entries = {**old.get("notebooks", {}), **{k: {**v, **stamp} for k, v in notebooks.items()}}
    record = {"profile": profile, "parameters": params, "machine": machine(), **stamp, "notebooks": entries,
              "seconds": {k: v["seconds"] for k, v in entries.items()}, **facts}  # fmt: skip
    atomic.write_json(path, record)
    return record
