"""The copyable example of docs/drop-in.md (examples/hybrid_batches.py; the README shows its core): hybrid batches
on a user-style dataset in the plain sentence-transformers trainer, with an eval split and the LAReQA evaluator, in
one process and under torchrun (2 CPU processes, gloo)."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "hybrid_batches.py"
SMALL = ["--steps", "3", "--batch-size", "4", "--max-groups", "40", "--eval-articles", "1",
         "--eval-languages", "en", "th"]  # fmt: skip


@pytest.mark.slow
def test_the_example_trains_one_process_and_reports_lareqa_and_eval_loss(tmp_path, shared_data_dir, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    spec = importlib.util.spec_from_file_location("hybrid_batches_example", EXAMPLE)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    final = example.main([*SMALL, "--output-dir", str(tmp_path / "one")])
    assert {"eval_loss", "eval_xquad_multi_map", "eval_xquad_mono_map_th", "eval_xquad_rank_distance"} <= set(final)
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["world_size"] == 1 and (tmp_path / "one" / "model").is_dir()


@pytest.mark.slow
def test_the_example_runs_under_torchrun_on_two_cpu_processes(tmp_path, shared_data_dir):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "HYBRIDIR_DATA_DIR": str(shared_data_dir)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", str(EXAMPLE), *SMALL,
           "--output-dir", str(tmp_path / "two")]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "two" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 3 and "eval_xquad_multi_map" in summary
