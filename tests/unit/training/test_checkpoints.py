"""The run folder: which checkpoint a rerun resumes from, the loss of a resumed run, refusing another config's
folder, and a run killed while saving (slow, real e5-small)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hybridir_utils.errors import TrainConfigError
from hybridir_utils.training.checkpoints import already_trained, last_complete_checkpoint, whole_run_loss
from hybridir_utils.training.config import TrainConfig
from hybridir_utils.training.trainer import train


def test_last_complete_checkpoint_skips_and_removes_half_saved_ones(tmp_path, caplog):
    checkpoints = tmp_path / "checkpoints"
    assert last_complete_checkpoint(checkpoints) is None  # no folder yet: a fresh run
    for step in (2, 4, 10):
        (checkpoints / f"checkpoint-{step}").mkdir(parents=True)
    for step in (2, 4):  # checkpoint-10 holds nothing: killed mid-save (and 10 > 4 numerically, not as text)
        (checkpoints / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
        (checkpoints / f"checkpoint-{step}" / "model.safetensors").write_text("")
    (checkpoints / "checkpoint-x").mkdir()
    with caplog.at_level("WARNING", logger="hybridir_utils.training.checkpoints"):
        assert last_complete_checkpoint(checkpoints, remove=False) == str(checkpoints / "checkpoint-4")
    assert "incomplete checkpoint" in caplog.text and (checkpoints / "checkpoint-10").is_dir()
    assert last_complete_checkpoint(checkpoints) == str(checkpoints / "checkpoint-4")
    assert not (checkpoints / "checkpoint-10").exists()  # the main process removes it


def test_whole_run_loss_weights_the_steps_before_and_after_the_resume():
    history = [{"step": 1, "loss": 2.0}, {"step": 2, "learning_rate": 1e-5}, {"step": 3, "loss": 1.0},
               {"step": 4, "loss": 9.0}]  # fmt: skip
    assert whole_run_loss(history, None, 0.5, 5) == 0.5  # not resumed: the trainer's mean is the whole run's
    # steps 1 (2.0) and 2-3 (1.0) before the checkpoint, 4-5 (0.5) after it; the entry past step 3 is not used
    assert whole_run_loss(history, 3, 0.5, 5) == pytest.approx((2.0 + 2 * 1.0 + 2 * 0.5) / 5)


def test_already_trained_refuses_another_configs_folder_and_finds_a_finished_model(tmp_path):
    cfg = TrainConfig(output_dir=str(tmp_path))
    assert not already_trained(cfg, tmp_path)  # nothing recorded: train
    (tmp_path / "train_config.json").write_text(json.dumps({**cfg.to_dict(), "num_threads": 4}))
    assert not already_trained(cfg, tmp_path)  # same run, runtime key aside, not finished: resume
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "modules.json").write_text("[]")
    assert already_trained(cfg, tmp_path)
    with pytest.raises(TrainConfigError, match=r"different config \(keys \['lr'\]\)"):
        already_trained(TrainConfig(output_dir=str(tmp_path), lr=1e-4), tmp_path)


class _KillAt:
    """A trainer callback that ends the process's training abruptly once checkpoint ``step`` is saved."""

    def __init__(self, step: int) -> None:
        self.step = step

    def __getattr__(self, name):  # every other callback event: nothing to do
        return lambda *args, **kwargs: None

    def on_save(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            raise RuntimeError("killed")


@pytest.mark.slow
def test_resume_skips_a_checkpoint_killed_mid_save_and_reports_the_whole_run_loss(
    tmp_path, shared_data_dir, caplog, tiny_pairs
):
    """Issue 12 defects 1 and 8: a checkpoint holding only config.json (a kill mid-save) no longer blocks every
    rerun, a kill during the final save leaves no .model.tmp-* folder behind, and train_loss covers every step."""
    import shutil

    cfg = dict(batch_size=4, max_steps=6, save_steps=2, logging_steps=3, max_seq_length=32, warmup_ratio=0.0,
               num_threads=1, seed=1)  # fmt: skip
    pairs = tiny_pairs
    whole_run = {**cfg, "output_dir": str(tmp_path / "a"), "save_model": False}  # only its facts are needed
    assert train(whole_run, pairs=pairs, data_dir=shared_data_dir) is None
    left = sorted(f.name for f in (tmp_path / "a").iterdir())
    assert left == ["loss_log.csv", "train_config.json", "train_info.json"]
    whole = json.loads((tmp_path / "a" / "train_info.json").read_text())
    run = tmp_path / "b"  # the same run, killed while writing checkpoint-4 (the last step saves no checkpoint)
    with pytest.raises(RuntimeError, match="killed"):  # a finished run deletes its checkpoints: kill this one first
        train({**cfg, "output_dir": str(run)}, pairs=pairs, data_dir=shared_data_dir, callbacks=[_KillAt(4)])
    assert not (run / "model").exists()
    for f in (run / "checkpoints" / "checkpoint-4").iterdir():
        if f.name != "config.json":
            shutil.rmtree(f) if f.is_dir() else f.unlink()
    (run / ".model.tmp-123" / "0_Transformer").mkdir(parents=True)
    (run / "train_config.json").write_text(json.dumps(TrainConfig(**cfg, output_dir=str(run)).to_dict()))

    with caplog.at_level("WARNING", logger="hybridir_utils.training.checkpoints"):
        model_dir = train({**cfg, "output_dir": str(run)}, pairs=pairs, data_dir=shared_data_dir)
    info = json.loads((model_dir / "train_info.json").read_text())
    assert info["resumed_from"] == "checkpoint-2" and info["steps"] == 6
    assert "incomplete checkpoint" in caplog.text and "checkpoint-4" in caplog.text
    assert not list(run.glob(".model.tmp-*"))
    assert info["train_loss"] == pytest.approx(whole["train_loss"], rel=1e-5)


def test_the_batch_plan_is_what_the_sampler_yields_across_epochs(tiny_pairs):
    from hybridir_utils.sampling.sampler import HybridBatchSampler
    from hybridir_utils.training.checkpoints import batch_plan

    sampler = HybridBatchSampler(tiny_pairs, 4, seed=3, alpha=0.5, world_size=1, rank=0)
    per_epoch = len(sampler)
    plan = batch_plan(sampler, per_epoch + 2)  # two steps into the second epoch
    assert sampler.epoch == 0  # left as the trainer expects it
    seen = []
    for epoch in (0, 1):
        sampler.set_epoch(epoch)
        for batch in sampler:
            d = sampler.describe(batch)
            mono = d["query_langs"] == d["passage_langs"] and len(set(d["query_langs"])) == 1
            seen.append((epoch, "mono" if mono else "cross", d["query_langs"][0] if mono else None))
    assert list(plan.step) == list(range(1, per_epoch + 3)) and set(plan.epoch) == {0, 1}
    language = [None if pd.isna(x) else x for x in plan.language]
    assert list(zip(plan.epoch, plan.kind, language, strict=True)) == seen[: per_epoch + 2]
    assert {"mono", "cross"} <= set(plan.kind)
