"""The GPU archive (pipeline.archive): a packed run unpacks to the same scores, fits the device's return limits at
the gpu profile's full size, and refuses a damaged or foreign archive by name."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pandas as pd
import pytest
import yaml

from hybridir_utils import errors
from hybridir_utils.pipeline import archive
from hybridir_utils.utils import paths


def _per_query(rng, languages=("en", "de", "zh"), groups=40) -> pd.DataFrame:
    """A per-query table of the shape evaluate_lareqa writes: each question in its own pool, each other one and
    the multilingual pool, with random scores (the worst case for compression)."""
    rows = []
    for g in range(groups):
        for x in languages:
            for pool in (*languages, "multi"):
                setting = "multi" if pool == "multi" else "mono" if pool == x else "cross"
                rows.append(dict(qid=f"{x}:q{g}", query_lang=x, pool_lang=pool, setting=setting, group=f"q{g}",
                                 article=f"a{g // 4}", domain="news" if g % 2 else "science"))  # fmt: skip
    table = pd.DataFrame(rows)
    n = len(table)
    first = rng.integers(1, 2000, n)
    return table.assign(ap=rng.random(n), r1=(first == 1).astype(float), r10=(first <= 10).astype(float),
                        n_relevant=np.ones(n, dtype=np.int64), first_rank=first,
                        rank_distance=np.where(table.setting == "multi", rng.random(n) * 50, np.nan))  # fmt: skip


def _scored_run(tmp_path, systems=("base", "hybrid/general/s0", "hybrid/general/s1")):
    run_dir, results_dir = tmp_path / "build" / "gpu", tmp_path / "results" / "gpu"
    rng = np.random.default_rng(0)
    rows = []
    for label in systems:
        folder = run_dir / "04_eval" / label / "xquad-r"
        folder.mkdir(parents=True)
        per_query = _per_query(rng)
        per_query.to_parquet(folder / "per_query.parquet")
        (folder / "metrics.json").write_text('{"mono_map": 0.5}')  # notebook 05 reads it
        (folder / "runs").mkdir()
        (folder / "runs" / "mono.trec").write_text("q0 Q0 d1 1 1.0 x\n")  # TREC runs never travel
        per_query.groupby(["query_lang", "pool_lang", "setting"], as_index=False).ap.mean().rename(
            columns={"ap": "map"}).to_parquet(folder / "per_pair.parquet")  # fmt: skip
        rows.append(
            dict(
                label=label,
                system=label.rsplit("/s", 1)[0],
                seed=0,
                dataset="xquad-r",
                mono_map=0.5,
                per_query=str(folder / "per_query.parquet"),
                per_pair=str(folder / "per_pair.parquet"),
            )
        )
    pd.DataFrame(rows).to_parquet(run_dir / "04_eval" / "results.parquet")
    (run_dir / "04_eval" / "environment.json").write_text('{"device": "cuda"}')
    (run_dir / "03_training").mkdir()
    (run_dir / "03_training" / "runs.csv").write_text("label,system,seed\n")
    (run_dir / "03_training" / "model.safetensors").write_bytes(b"0" * 100)  # weights never travel
    results_dir.mkdir(parents=True)
    (results_dir / "recipe.csv").write_text("scale,lr\n20,3e-5\n")
    return run_dir, results_dir


def test_a_packed_run_unpacks_to_the_same_scores_in_parts_under_the_limit(tmp_path):
    run_dir, results_dir = _scored_run(tmp_path)
    size = (run_dir / "04_eval" / "base" / "xquad-r" / "per_query.parquet").stat().st_size
    manifest = archive.pack(run_dir, results_dir, tmp_path / "archive", max_bytes=int(size * 1.8))
    parts = sorted(n for n in manifest["files"] if n.startswith("per_query-"))
    assert len(parts) >= 2 and all(f["bytes"] <= size * 1.8 for f in manifest["files"].values())
    with tarfile.open(tmp_path / "archive" / "tables.tar.gz") as tar:
        names = set(tar.getnames())
    assert "results/recipe.csv" in names and "build/03_training/runs.csv" in names
    assert not any(n.endswith((".safetensors", ".trec")) or "per_query" in n for n in names)
    assert "build/04_eval/base/xquad-r/metrics.json" in names

    new_run, new_results = tmp_path / "cpu" / "build" / "gpu", tmp_path / "cpu" / "results" / "gpu"
    restored = archive.unpack(tmp_path / "archive", new_run, new_results)
    original = pd.read_parquet(run_dir / "04_eval" / "results.parquet")
    assert list(restored.label) == list(original.label)
    for old, new in zip(original.itertuples(), restored.itertuples(), strict=True):
        assert new.per_query.startswith(str(new_run))
        pd.testing.assert_frame_equal(pd.read_parquet(new.per_query), pd.read_parquet(old.per_query))
        pd.testing.assert_frame_equal(pd.read_parquet(new.per_pair), pd.read_parquet(old.per_pair))
    assert (new_results / "recipe.csv").read_text() == (results_dir / "recipe.csv").read_text()
    assert (new_run / "04_eval" / "environment.json").read_text() == '{"device": "cuda"}'


def test_a_damaged_or_foreign_archive_is_refused_by_name(tmp_path):
    run_dir, results_dir = _scored_run(tmp_path, systems=("base",))
    archive.pack(run_dir, results_dir, tmp_path / "archive")
    part = tmp_path / "archive" / "per_query-0.parquet"
    part.write_bytes(part.read_bytes()[:-10])
    with pytest.raises(errors.PipelineError, match=r"per_query-0.parquet: missing or not the file the manifest"):
        archive.unpack(tmp_path / "archive", tmp_path / "b", tmp_path / "r")
    with pytest.raises(errors.PipelineError, match=r"manifest\.json not found"):
        archive.unpack(tmp_path, tmp_path / "b", tmp_path / "r")
    with pytest.raises(errors.PipelineError, match=r"results\.parquet not found: score the systems first"):
        archive.pack(tmp_path / "nothing", results_dir, tmp_path / "a2")
    roots = {"results": tmp_path / "r", "build": tmp_path / "b"}
    for name in ("../outside.csv", "build//tmp/evil.txt", "build/../../evil.txt", "other/x.csv"):
        evil = tmp_path / "evil.tar.gz"
        with tarfile.open(evil, "w:gz") as tar:
            tar.add(results_dir / "recipe.csv", arcname=name)
        with tarfile.open(evil) as tar, pytest.raises(errors.PipelineError, match=r"not a file under results/ or"):
            list(archive._safe_members(tar, roots))
    manifest = tmp_path / "archive" / "manifest.json"
    manifest.write_text(json.dumps({**json.loads(manifest.read_text()), "profile": "cpu"}))
    with pytest.raises(errors.PipelineError, match=r"an archive of profile 'cpu', not 'gpu'"):
        archive.unpack(tmp_path / "archive", tmp_path / "b", tmp_path / "r", profile="gpu")


def test_the_gpu_profile_at_full_size_fits_what_a_device_command_returns(tmp_path, shared_data_dir):
    """Computed from the row counts: every XQuAD-R question of 11 languages x the gpu profile's systems, at the
    bytes per row of a packed table of random scores (real scores compress better)."""
    from hybridir_utils.data import load_lareqa

    params = yaml.safe_load((paths.params_dir() / "gpu.yaml").read_text())
    questions = load_lareqa("xquad-r", data_dir=shared_data_dir).questions.groupby("lang").size().to_dict()
    rows = archive.per_query_rows(questions)
    assert len(questions) == 11 and rows == sum(questions.values()) * 12  # mono, 10 other pools, multi
    trained = len(params["samplings"]) * len(params["seeds"]) + len(params["domain_runs"]) * len(params["domain_seeds"])
    systems = len(params["baselines"]) + trained
    sample = _per_query(np.random.default_rng(1), languages=tuple(questions), groups=200)
    packed = archive.pack(*_write_one(sample, tmp_path), max_bytes=archive.MAX_BYTES)
    per_row = packed["files"]["per_query-0.parquet"]["bytes"] / len(sample)
    full = per_row * rows * systems
    room = (archive.MAX_FILES - 3) * archive.MAX_BYTES  # tables, per_pair and the manifest take the other three
    print(f"gpu profile archive: {systems} systems x {rows} rows x {per_row:.1f} B = {full / 2**20:.0f} MiB")
    assert full < 0.8 * room, f"{systems} systems x {rows} rows x {per_row:.1f} B = {full / 2**20:.0f} MiB"


def _write_one(table: pd.DataFrame, root):
    run_dir = root / "build"
    folder = run_dir / "04_eval" / "s" / "xquad-r"
    folder.mkdir(parents=True)
    table.to_parquet(folder / "per_query.parquet")
    table.head(1).to_parquet(folder / "per_pair.parquet")
    pd.DataFrame(
        [
            dict(
                label="s",
                dataset="xquad-r",
                per_query=str(folder / "per_query.parquet"),
                per_pair=str(folder / "per_pair.parquet"),
            )
        ]
    ).to_parquet(run_dir / "04_eval" / "results.parquet")
    (root / "results").mkdir()
    return run_dir, root / "results", root / "archive"
