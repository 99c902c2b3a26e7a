"""The GPU machine's work, packed into the few files that come back from it, and unpacked on the CPU.

A lent GPU machine returns at most :data:`MAX_FILES` files of :data:`MAX_BYTES` each, and its time is short. So it
trains and scores only (notebooks 01-03, and 04 up to its cell tagged ``scores``: ``pipeline --until scores``), and
:func:`pack` writes what the analysis needs:

- ``tables.tar.gz``: the profile's result tables so far and the small files of ``build/<profile>`` (domain labels,
  ``runs.csv``, recipe, loss logs, executed notebooks, figures, ``pipeline.json`` with each notebook's time, each
  system's ``metrics.json``, ``04_eval/results.parquet`` with its paths made relative, the scoring machine's
  ``environment.json``);
- ``per_query-<k>.parquet`` and ``per_pair.parquet``: every system's per-query and per-pair scores in one table
  each (zstd), cut between systems so that no file passes ``MAX_BYTES``;
- ``manifest.json``: each file's bytes and sha256, the row counts, and the scoring run's notebook times and
  machine (unpacked as ``pipeline.scoring.json``: the per-stage GPU times).

:func:`unpack` checks the manifest and restores the folder layout (per-query files where ``results.parquet`` says),
so that notebook 04 (``score_systems`` false: the scores are read, not computed) and 05 finish on the CPU from these
files alone: ``make gpu-results ARCHIVE=<folder>``. The run-level comparisons are then computed on the CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import math
import sys
import tarfile
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.errors import PipelineError
from hybridir_utils.utils import atomic, paths

MAX_FILES = 8  # what one command of the device tool brings back
MAX_BYTES = 16 * 2**20
SMALL_SUFFIXES = {".csv", ".json", ".parquet", ".ipynb", ".png", ".yaml"}
SMALL_BYTES = 2**20  # a model's tokenizer or weights (both larger) never travel: the analysis needs none
SCORE_TABLES = ("per_query", "per_pair")
_KEY = ["label", "dataset"]
SCORING_FACTS = ("seconds", "machine", "commit", "until", "parameters")  # of the scoring run's pipeline.json


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _small_files(run_dir: Path):
    """The files of ``run_dir`` that travel in ``tables.tar.gz``: small, of a kind the analysis or the report reads
    (each system's ``metrics.json`` and language preference among them); never TREC runs, and never the per-query
    and per-pair tables, which travel as the score tables."""
    for path in sorted(run_dir.rglob("*")):
        rel = path.relative_to(run_dir)
        if not path.is_file() or path.suffix not in SMALL_SUFFIXES or path.stat().st_size > SMALL_BYTES:
            continue
        if path.stem in SCORE_TABLES or "runs" in rel.parts or path.name.startswith("tokenizer"):
            continue
        yield path, rel


def _score_table(results: pd.DataFrame, kind: str) -> pd.DataFrame:
    """Every (system, dataset)'s ``kind`` table in one, keyed by label and dataset, in ``results``' order."""
    frames = [pd.read_parquet(r[kind]).assign(label=r.label, dataset=r.dataset) for _, r in results.iterrows()]
    return pd.concat(frames, ignore_index=True)


def _write_parts(table: pd.DataFrame, out_dir: Path, stem: str, max_bytes: int) -> list[Path]:
    """``table`` as ``<stem>-<k>.parquet`` files of at most ``max_bytes``, each holding whole systems."""
    buffer = io.BytesIO()
    table.to_parquet(buffer, compression="zstd", index=False)
    labels = list(dict.fromkeys(table.label))
    n_parts = max(1, math.ceil(buffer.tell() * 1.15 / max_bytes))
    written = []
    for k, chunk in enumerate(np.array_split(np.array(labels, dtype=object), n_parts)):
        path = out_dir / f"{stem}-{k}.parquet"
        part = table[table.label.isin(set(chunk))]
        atomic.atomic_write(path, lambda p, part=part: part.to_parquet(p, compression="zstd", index=False))
        if path.stat().st_size > max_bytes:
            raise PipelineError(f"{path.name} holds {path.stat().st_size} bytes, over the {max_bytes} a device "
                                "command can return: fewer systems per part needed")  # fmt: skip
        written.append(path)
    return written


def pack(run_dir: Path, results_dir: Path, out_dir: Path, max_bytes: int = MAX_BYTES) -> dict:
    """Write the archive of a scored run (``run_dir`` = ``build/<profile>``) into ``out_dir``; returns the manifest."""
    run_dir, out_dir = Path(run_dir), Path(out_dir)
    scored = run_dir / "04_eval" / "results.parquet"
    if not scored.is_file():
        raise PipelineError(f"{scored} not found: score the systems first (notebook 04 up to its `scores` cell)")
    out_dir.mkdir(parents=True, exist_ok=True)
    results = pd.read_parquet(scored)
    outside = [p for k in SCORE_TABLES for p in results[k] if not Path(p).is_relative_to(run_dir)]
    if outside:
        raise PipelineError(f"{scored} names score files outside {run_dir}, e.g. {outside[0]}: pack the folder that "
                            "scored them")  # fmt: skip
    relative = results.assign(**{k: [str(Path(p).relative_to(run_dir)) for p in results[k]] for k in SCORE_TABLES})
    buffer = io.BytesIO()
    relative.to_parquet(buffer, index=False)
    tables = out_dir / "tables.tar.gz"
    with tarfile.open(tables, "w:gz") as tar:
        for path in sorted(Path(results_dir).glob("*")):
            if path.is_file():
                tar.add(path, arcname=f"results/{path.name}")
        for path, rel in _small_files(run_dir):
            if rel != Path("04_eval/results.parquet"):
                tar.add(path, arcname=f"build/{rel.as_posix()}")
        info = tarfile.TarInfo("build/04_eval/results.parquet")
        info.size = buffer.tell()
        buffer.seek(0)
        tar.addfile(info, buffer)
    if tables.stat().st_size > max_bytes:
        raise PipelineError(f"{tables} holds {tables.stat().st_size} bytes, over the {max_bytes} a device command "
                            "returns")  # fmt: skip
    files = [tables, *_write_parts(_score_table(results, "per_query"), out_dir, "per_query", max_bytes),
             *_write_parts(_score_table(results, "per_pair"), out_dir, "per_pair", max_bytes)]  # fmt: skip
    if len(files) + 1 > MAX_FILES:
        raise PipelineError(f"the archive needs {len(files) + 1} files, over the {MAX_FILES} a device command returns")
    record = atomic.read_json(run_dir / "pipeline.json") if (run_dir / "pipeline.json").is_file() else {}
    left_out = [str(p.relative_to(run_dir)) for p in run_dir.rglob("*.ipynb") if p.stat().st_size > SMALL_BYTES]
    manifest = {"profile": record.get("profile"), "files": {f.name: {"bytes": f.stat().st_size,
                "sha256": _sha256(f)} for f in files}, "systems": int(results.label.nunique()),
                "rows": {"results": len(results)}, "left_out_notebooks": left_out,
                "scoring_run": {k: record.get(k) for k in SCORING_FACTS}}  # fmt: skip
    atomic.write_json(out_dir / "manifest.json", manifest)
    return manifest


def _safe_members(tar: tarfile.TarFile, roots: dict[str, Path]):
    """(member, target) of every file; a name that is not a plain relative path under results/ or build/, or that
    would land outside its folder, is refused by name."""
    for member in tar.getmembers():
        parts = Path(member.name).parts
        target = roots[parts[0]].joinpath(*parts[1:]) if parts and parts[0] in roots else None
        inside = target is not None and target.resolve().is_relative_to(roots[parts[0]].resolve())
        if member.name.startswith("/") or ".." in parts or "" in member.name.split("/") or not inside or \
                not member.isfile():  # fmt: skip
            raise PipelineError(f"tables.tar.gz holds {member.name!r}: not a file under results/ or build/")
        yield member, target


def unpack(archive_dir: Path, run_dir: Path, results_dir: Path, profile: str | None = None) -> pd.DataFrame:
    """Restore a packed run into ``run_dir`` (``build/<profile>``) and ``results_dir``; returns its results table.
    ``profile`` (when given) must be the one the archive was packed from."""
    archive_dir, run_dir, results_dir = Path(archive_dir), Path(run_dir), Path(results_dir)
    manifest_file = archive_dir / "manifest.json"
    if not manifest_file.is_file():
        raise PipelineError(f"{manifest_file} not found: ARCHIVE must be the folder `archive pack` wrote")
    manifest = atomic.read_json(manifest_file)
    if profile is not None and manifest.get("profile") not in (None, profile):
        raise PipelineError(f"{manifest_file} is an archive of profile {manifest['profile']!r}, not {profile!r}")
    for name, facts in manifest["files"].items():
        path = archive_dir / name
        if not path.is_file() or _sha256(path) != facts["sha256"]:
            raise PipelineError(f"{path}: missing or not the file the manifest names (sha256 differs)")
    with tarfile.open(archive_dir / "tables.tar.gz", "r:gz") as tar:
        for member, target in _safe_members(tar, {"results": results_dir, "build": run_dir}):
            atomic.write_bytes(target, tar.extractfile(member).read())
    results = pd.read_parquet(run_dir / "04_eval" / "results.parquet")
    for kind in SCORE_TABLES:
        parts = sorted(n for n in manifest["files"] if n.startswith(f"{kind}-"))
        if not parts:
            raise PipelineError(f"{manifest_file} lists no {kind} table: not an archive `archive pack` wrote")
        table = pd.concat([pd.read_parquet(archive_dir / n) for n in parts], ignore_index=True)
        where = {(r.label, r.dataset): r[kind] for _, r in results.iterrows()}
        for (label, dataset), rows in table.groupby(_KEY, sort=False):
            if (label, dataset) not in where:
                raise PipelineError(f"{archive_dir}: {kind} scores of {label!r} on {dataset} have no row in results")
            atomic.write_parquet(run_dir / where[label, dataset], rows.drop(columns=_KEY).reset_index(drop=True))
        results[kind] = [str(run_dir / p) for p in results[kind]]
    atomic.write_parquet(run_dir / "04_eval" / "results.parquet", results)
    # the scoring machine's notebook times, hardware and parameters, kept apart: the unpacked pipeline.json is the
    # scoring machine's, and this machine's pipeline run merges its own notebooks into it
    atomic.write_json(run_dir / "pipeline.scoring.json", manifest["scoring_run"])
    return results


def per_query_rows(questions_per_language: dict[str, int]) -> int:
    """Per-query rows of one system on one LAReQA test set: every question once in its own language's pool
    (mono), once in each other language's (cross) and once in the multilingual pool (multi)."""
    n_lang = len(questions_per_language)
    return sum(questions_per_language.values()) * (1 + (n_lang - 1) + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hybridir_utils.pipeline.archive", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    parser.add_argument("command", choices=["pack", "unpack"])
    parser.add_argument("folder", type=Path, help="the archive folder (written by pack, read by unpack)")
    parser.add_argument("--profile", default="gpu")
    args = parser.parse_args(argv)
    run_dir, results_dir = paths.build_dir() / args.profile, paths.results_dir(args.profile)
    try:
        if args.command == "pack":
            manifest = pack(run_dir, results_dir, args.folder)
            print(f"archive: {args.folder} ({sum(f['bytes'] for f in manifest['files'].values())} bytes in "
                  f"{len(manifest['files']) + 1} files, {manifest['systems']} systems)")  # fmt: skip
        else:
            results = unpack(args.folder, run_dir, results_dir, args.profile)
            print(f"unpacked {results.label.nunique()} systems into {run_dir} and {results_dir}")
    except PipelineError as exc:
        print(f"archive: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
