"""What a training run keeps in its ``output_dir``, so that a run killed at any point can simply be rerun.

Layout: ``train_config.json`` (written first; a rerun with the same config resumes from the last complete
checkpoint, a different config is refused), ``checkpoints/`` (deleted once the run has finished), ``loss_log.csv``
and ``model/`` (the final model, written atomically, with ``train_config.{json,yaml}``, ``loss_log.csv`` and a
model card naming the config; with frozen tensors saved as its difference from the base, see ``delta``).
``models.load_encoder(model_dir)`` loads it with its E5 prompts.

Apart from ``trainer`` because none of this decides what a run learns: only whether and where it resumes and
how its results reach the disk.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pandas as pd

from hybridir_utils.errors import TrainConfigError
from hybridir_utils.models import delta
from hybridir_utils.models.loading import load_base
from hybridir_utils.training.config import RUNTIME_KEYS, TrainConfig
from hybridir_utils.utils import atomic

log = logging.getLogger(__name__)


def already_trained(cfg: TrainConfig, train_dir: Path) -> bool:
    """Whether ``train_dir`` holds this config's finished model; refuses a folder of another config's run, whose
    checkpoints a resume would otherwise silently continue."""
    config_file = train_dir / "train_config.json"
    if not config_file.is_file():
        return False
    previous = {k: v for k, v in atomic.read_json(config_file).items() if k not in RUNTIME_KEYS}
    previous.setdefault("precision", "fp32")  # runs from before the precision key trained in fp32
    current = cfg.identity()
    if previous != current:
        changed = sorted(k for k in set(previous) | set(current) if previous.get(k) != current.get(k))
        raise TrainConfigError(
            f"{train_dir} holds a run with a different config (keys {changed}); choose another output_dir or delete it"
        )
    if (train_dir / "model" / "modules.json").is_file():
        log.info("%s already trained with this config", train_dir / "model")
        return True
    return False


def open_train_dir(cfg: TrainConfig, train_dir: Path) -> bool:
    """Create ``train_dir`` and record the config in it; returns whether this is the main process.

    Under torchrun every rank runs train(); only the main process writes shared files.
    """
    from accelerate import PartialState

    main_process = PartialState().is_main_process
    if main_process:
        train_dir.mkdir(parents=True, exist_ok=True)
        _remove_stale_tmp(train_dir)
        atomic.write_json(train_dir / "train_config.json", cfg.to_dict())
    return main_process


def _remove_stale_tmp(train_dir: Path) -> None:
    """Remove ``.model.tmp-*`` folders left by a run killed during its final save (each a partial model)."""
    for tmp in train_dir.glob(".model.tmp-*"):
        log.warning("removing %s, left by a run interrupted while saving its model", tmp)
        shutil.rmtree(tmp, ignore_errors=True)


def loss_log_callback(csv_path: Path):
    """A TrainerCallback that rewrites ``csv_path`` (atomically) with every logged training loss."""
    from transformers import TrainerCallback

    class LossLog(TrainerCallback):
        def __init__(self) -> None:
            self.rows: list[dict[str, Any]] = []
            self.start = time.perf_counter()

        def on_train_begin(self, args, state, control, **kwargs):
            # On resume keep the rows logged before the checkpoint, drop any logged after it.
            if csv_path.is_file():
                old = pd.read_csv(csv_path)
                self.rows = old[old.step <= state.global_step].to_dict("records")

        def on_step_end(self, args, state, control, **kwargs):
            # Log at every checkpoint, so a resumed run knows the loss of every step before it (train_loss).
            if control.should_save:
                control.should_log = True

        def on_log(self, args, state, control, logs=None, **kwargs):
            if not logs or "loss" not in logs or not state.is_world_process_zero:
                return
            self.rows.append(
                {
                    "step": state.global_step,
                    "epoch": logs.get("epoch", state.epoch),
                    "loss": logs["loss"],
                    "learning_rate": logs.get("learning_rate"),
                    "grad_norm": logs.get("grad_norm"),
                    "elapsed_s": round(time.perf_counter() - self.start, 3),
                }
            )
            atomic.write_text(csv_path, pd.DataFrame(self.rows).to_csv(index=False))

    return LossLog()


def batch_plan(sampler, steps: int) -> pd.DataFrame:
    """What each global step of a run draws (step 1..``steps``): epoch, batch kind (mono / cross), language (mono
    only), domain (domain-homogeneous only). The sampler is seeded by (seed, epoch), so this is the sequence the
    trainer's copy yields (one optimizer step per global batch: no gradient accumulation)."""
    rows, epoch = [], 0
    while len(rows) < steps:
        sampler.set_epoch(epoch)
        for info, _ in sampler.iter_with_info(all_ranks=True):
            if info.rank == 0 and len(rows) < steps:
                rows.append({"step": len(rows) + 1, "epoch": epoch, "kind": info.kind, "language": info.language,
                             "domain": info.domain})  # fmt: skip
        epoch += 1
    sampler.set_epoch(0)
    return pd.DataFrame(rows, columns=["step", "epoch", "kind", "language", "domain"])


def batch_log_callback(sampler, csv_path: Path):
    """A TrainerCallback that writes ``csv_path`` (:func:`batch_plan` for the run's steps) when training begins:
    sentence-transformers logs no batch composition, and the hybrid method is defined by it."""
    from transformers import TrainerCallback

    class BatchLog(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                atomic.write_text(csv_path, batch_plan(sampler, state.max_steps).to_csv(index=False))

    return BatchLog()


_CHECKPOINT = re.compile(r"checkpoint-(\d+)")


def last_complete_checkpoint(checkpoints: Path, remove: bool = True) -> str | None:
    """The newest checkpoint that was saved whole; incomplete ones (a kill mid-save) are skipped with a warning and
    removed (``remove``: the main process only).

    The trainer writes ``trainer_state.json`` after the weights, optimizer and RNG state, so its presence marks a
    complete checkpoint; ``transformers.get_last_checkpoint`` would pick a folder holding only ``config.json``.
    """
    if not checkpoints.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in checkpoints.iterdir() if p.is_dir() and (m := _CHECKPOINT.fullmatch(p.name))]
    for _, path in sorted(found, reverse=True):
        if (path / "trainer_state.json").is_file() and (path / "model.safetensors").is_file():
            return str(path)
        log.warning("skipping incomplete checkpoint %s (interrupted while saving)", path)
        if remove:
            shutil.rmtree(path, ignore_errors=True)
    return None


def whole_run_loss(history: list[dict], resumed_at: int | None, loss_after: float, final_step: int) -> float:
    """Mean training loss over every step, also for a resumed run (the trainer's covers only steps after resume).

    Steps up to the checkpoint come from the restored log history (a log is forced at every save); checkpoints
    written before that rule may miss a few steps, which are then left out of the mean.
    """
    if not resumed_at:
        return loss_after
    before, last = 0.0, 0
    for entry in history:
        if "loss" in entry and last < entry["step"] <= resumed_at:
            before += entry["loss"] * (entry["step"] - last)
            last = entry["step"]
    return (before + loss_after * (final_step - resumed_at)) / max(last + final_step - resumed_at, 1)


def no_final_checkpoint_callback():
    """A TrainerCallback that skips the trainer's checkpoint at the last step (transformers always writes one there).

    :func:`publish` saves the final model right after and deletes ``checkpoints/``: that checkpoint was the whole
    model and the optimizer's state written only to be removed, seconds of every run (most of a short GPU run's save
    time). Checkpoints before the last step stay, so a killed run still resumes. Placed after the loss log, which
    logs the loss at every checkpoint, so the last step's loss is still logged.
    """
    from transformers import TrainerCallback

    class NoFinalCheckpoint(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            if state.max_steps > 0 and state.global_step >= state.max_steps:
                control.should_save = False

    return NoFinalCheckpoint()


def publish(trainer, model, cfg: TrainConfig, train_dir: Path, info: dict[str, Any], main_process: bool) -> None:
    """Save the final model once every rank is done, then drop the checkpoints (needed only to resume).

    A callback may end training early (early stopping): that model is final too. A crash leaves no model/, so the
    next call resumes from the last checkpoint. ``cfg.save_model`` false (a recipe sweep, which keeps only its
    dev scores) saves no model: the run facts go to ``train_dir/train_info.json``.
    """
    trainer.accelerator.wait_for_everyone()
    if main_process and not cfg.save_model:
        atomic.write_json(train_dir / "train_info.json", json.loads(json.dumps(info, default=str)))
        shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)
    elif main_process:
        _save_final(model, cfg, train_dir, info)
        shutil.rmtree(train_dir / "checkpoints", ignore_errors=True)
        if cfg.push_to_hub:  # the model in memory is whole (the saved folder omits the frozen tensors)
            model.push_to_hub(cfg.hub_model_id, commit_message=f"hybridir: {cfg.run_name()}")
    trainer.accelerator.wait_for_everyone()


def _save_final(model, cfg: TrainConfig, train_dir: Path, info: dict[str, Any]) -> Path:
    """Write the final model folder next to its destination, then move it into place (never half a model)."""
    import yaml

    final = train_dir / "model"
    tmp = train_dir / f".model.tmp-{time.time_ns()}"
    try:
        model.save_pretrained(str(tmp))
        (tmp / "train_config.json").write_text(json.dumps(cfg.to_dict(), indent=2, sort_keys=True) + "\n")
        (tmp / "train_config.yaml").write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=True))
        (tmp / "train_info.json").write_text(json.dumps(info, indent=2, sort_keys=True, default=str) + "\n")
        if (train_dir / "loss_log.csv").is_file():
            shutil.copy2(train_dir / "loss_log.csv", tmp / "loss_log.csv")
        card = tmp / "README.md"
        card.write_text((card.read_text(encoding="utf-8") if card.is_file() else "") + _model_card_section(cfg, info))
        if cfg.freeze_embeddings or cfg.freeze_layers:  # frozen tensors are the base model's: keep only what changed
            delta.slim(tmp, cfg.model, load_base)
        atomic.fsync(
            tmp, recursive=True
        )  # on disk before the rename: a power cut cannot leave a renamed but empty model
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        atomic.fsync(train_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return final


# sentence-transformers drops a callable batch sampler from the card's hyper-parameters: say what it was.
SAMPLER_CARD = (
    "Batch sampler: `hybridir_utils.sampling.HybridBatchSampler`, alpha = {alpha:g} (preset: {preset}). Each step "
    "draws one global batch, monolingual (query and passage in one language, drawn uniformly) with probability "
    "alpha, cross-lingual (every pair's query and passage in different languages) otherwise. Clash rules: at most "
    "one pair per answer unit (a parallel question group, merged with every group sharing an answer sentence) and "
    "no repeated query or passage text in a batch, so no translation of a query's own answer is an in-batch "
    "negative; batches are always full."
)


def _model_card_section(cfg: TrainConfig, info: dict[str, Any]) -> str:
    """The model card's training section, so that a model folder found on its own says how it was trained."""
    import yaml

    return (
        "\n\n## hybridir training configuration\n\n"
        f"Hybrid batch training (Elmahdy, Lin & Ahmad 2024): batches monolingual with probability "
        f"alpha = {cfg.resolved_alpha:g} ({cfg.batches_name()}), cross-lingual otherwise; InfoNCE with in-batch "
        f"negatives ({cfg.loss}), trained on {cfg.train_dataset}, zero-shot evaluation set "
        f"{cfg.resolved_eval_dataset}.\n\n{SAMPLER_CARD.format(alpha=cfg.resolved_alpha, preset=cfg.preset)}\n\n"
        f"```yaml\n{yaml.safe_dump(cfg.to_dict(), sort_keys=True)}```\n\n"
        f"Run facts:\n\n```json\n{json.dumps(info, indent=2, sort_keys=True, default=str)}\n```\n"
    )
