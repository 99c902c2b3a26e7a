"""Fine-tune a multilingual bi-encoder with hybrid batches (Elmahdy, Lin & Ahmad 2024).

InfoNCE with in-batch negatives (sentence-transformers ``MultipleNegativesRankingLoss``, or its cached variant for
large batches on little memory), E5 prompts, AdamW lr 3e-5 / weight decay 0.01 as in the paper; batches come from
:class:`sampling.HybridBatchSampler`. What a run is: :class:`training.config.TrainConfig`.

Zero-shot protocol: train on MLQA-R and evaluate on XQuAD-R (or the swap). Training pairs whose article also
occurs in the evaluation set are dropped (``drop_test_overlap``, default; the two sets share "Harvard University"
and "Prime number") or refused; ``allow_test_overlap=True`` keeps them on purpose.

The run folder (``output_dir``: config, checkpoints, loss log, final model) and resuming: ``training.checkpoints``.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hybridir_utils.columns import GROUP, PASSAGE, PASSAGE_LANG, QUERY, QUERY_LANG
from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.data.splits import eval_articles, remove_test_overlap
from hybridir_utils.errors import ArticleOverlapError, TrainConfigError
from hybridir_utils.models.delta import transformer_backbone
from hybridir_utils.models.e5convert import E5_PROMPTS
from hybridir_utils.models.loading import trainable_copy
from hybridir_utils.sampling.sampler import HybridBatchSampler, distributed_info
from hybridir_utils.training import checkpoints
from hybridir_utils.training.config import TrainConfig
from hybridir_utils.utils import environment

log = logging.getLogger(__name__)

PROMPTS = {key: E5_PROMPTS[key] for key in ("query", "passage")}  # the training columns' prompts


# ---------------------------------------------------------------------- data


def load_training_pairs(cfg: TrainConfig, data_dir: str | Path | None = None) -> pd.DataFrame:
    """``data.training_pairs`` of the configured dataset, languages and group subsample."""
    ds = load_lareqa(cfg.train_dataset, languages=cfg.languages, data_dir=data_dir)
    if cfg.max_groups is not None:
        ds = ds.subset(max_questions_per_lang=cfg.max_groups, seed=cfg.seed)
    return training_pairs(ds)


def pairs_fingerprint(pairs: pd.DataFrame) -> str:
    """sha1 of the training pairs (texts, languages, groups): part of a run's identity via ``extra``, so a finished
    run is reused only for the same data, never for a changed pool, split or label."""
    cols = [QUERY, PASSAGE, QUERY_LANG, PASSAGE_LANG, GROUP]
    rows = pairs[cols].astype(str).sort_values(cols).to_csv(index=False)
    return hashlib.sha1(rows.encode()).hexdigest()[:16]


def loss_dataset(pairs: pd.DataFrame):
    """The trainer's dataset: only the loss inputs (query -> anchor, passage -> positive), in the pairs' order.

    SentenceTransformers passes every non-label column to the loss, so metadata stays in the sampler.
    """
    from datasets import Dataset

    return Dataset.from_dict({"query": pairs["query"].tolist(), "passage": pairs["passage"].tolist()})


# ---------------------------------------------------------------------- model
def freeze(model, embeddings: bool, layers: int) -> dict[str, int]:
    """Freeze the word-embedding matrix and/or the lowest ``layers`` transformer layers; returns parameter counts.

    A frozen embedding matrix keeps tokens of languages absent from training where pre-training put them, and
    spares the optimizer ~96M of e5-small's 118M parameters (the 250k-token vocabulary), which is most of the cost
    of a CPU step.
    """
    backbone = transformer_backbone(model)
    if embeddings:
        backbone.get_input_embeddings().weight.requires_grad_(False)
    if layers:
        n_layers = backbone.config.num_hidden_layers
        stack = getattr(getattr(backbone, "encoder", None), "layer", None)
        if stack is None or len(stack) != n_layers:
            raise TypeError(f"cannot locate the {n_layers} transformer layers of {type(backbone).__name__}")
        if layers > n_layers:
            raise TrainConfigError(f"freeze_layers={layers} exceeds the model's {n_layers} layers")
        for layer in stack[:layers]:
            layer.requires_grad_(False)
    total = sum(p.numel() for p in model.parameters())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return {"parameters": total, "trainable": trainable}


def make_loss(model, cfg: TrainConfig):
    from sentence_transformers.sentence_transformer import losses

    # On N GPUs the sampler draws one clash-free global batch per step and gives each rank a share: gathering the
    # embeddings makes every other pair of the global batch a negative, as on one device.
    gather = {"gather_across_devices": True} if distributed_info()[0] > 1 else {}
    if cfg.loss == "cached-mnrl":
        return losses.CachedMultipleNegativesRankingLoss(
            model, scale=cfg.scale, mini_batch_size=cfg.mini_batch_size, **gather
        )
    return losses.MultipleNegativesRankingLoss(model, scale=cfg.scale, **gather)


# ---------------------------------------------------------------------- training
def train(
    cfg: TrainConfig | dict[str, Any],
    pairs: pd.DataFrame | None = None,
    data_dir: str | Path | None = None,
    callbacks: list | None = None,
) -> Path | None:
    """Fine-tune ``cfg.model`` on hybrid batches and return the final model folder (None: ``cfg.save_model`` false).

    ``pairs`` overrides the configured training set (e.g. with a domain column from ``domains.attach_domains``); it
    must hold the ``data.training_pairs`` columns. Same config and seed give the same batches and weights.
    A finished run with the same config is returned as is; an interrupted one resumes from its last checkpoint.
    """
    cfg = TrainConfig.from_dict(cfg) if isinstance(cfg, dict) else cfg
    train_dir = cfg.resolved_output_dir()
    if checkpoints.already_trained(cfg, train_dir):
        return train_dir / "model"
    pairs, dropped = _without_test_articles(cfg, _select_pairs(cfg, pairs, data_dir), data_dir)
    sampler_options = {
        "alpha": cfg.resolved_alpha,
        "languages": cfg.languages,
        "domains": cfg.domains,
        "domain_weights": cfg.domain_weights,
        "domain_homogeneous": cfg.domain_homogeneous,
        "domain_column": cfg.domain_column,
    }
    # Build once here so an infeasible setting fails before the model is loaded.
    probe = HybridBatchSampler(pairs, cfg.batch_size, seed=cfg.seed, **sampler_options)
    _check_reporting(cfg)
    precision = _set_up_torch(cfg)
    model, counts = _load_model(cfg, probe.languages)
    main_process = checkpoints.open_train_dir(cfg, train_dir)
    args = _training_arguments(cfg, train_dir, precision, HybridBatchSampler.factory(pairs, **sampler_options))
    if cfg.log_batches:
        callbacks = [checkpoints.batch_log_callback(probe, train_dir / "batches.csv"), *(callbacks or [])]
    trainer = _make_trainer(cfg, model, args, pairs, train_dir, callbacks)
    last = checkpoints.last_complete_checkpoint(train_dir / "checkpoints", remove=main_process)
    if last:
        log.info("resuming from %s", last)
    start = time.perf_counter()
    result = trainer.train(resume_from_checkpoint=last)
    info = {
        "pairs": len(pairs),
        "dropped_test_articles": dropped,
        "languages": list(probe.languages),
        "alpha": cfg.resolved_alpha,
        "steps": trainer.state.global_step,
        "train_loss": checkpoints.whole_run_loss(
            trainer.state.log_history,
            int(Path(last).name.split("-")[1]) if last else None,
            result.training_loss,
            trainer.state.global_step,
        ),
        "train_seconds": round(time.perf_counter() - start, 2),
        "resumed_from": Path(last).name if last else None,
        "environment": environment.describe(precision),
        **counts,
    }
    checkpoints.publish(trainer, model, cfg, train_dir, info, main_process)
    return train_dir / "model" if cfg.save_model else None


@contextlib.contextmanager
def _tensorboard_dir(folder: Path):
    """TensorBoard's log folder while the trainer builds its callbacks (it reads TENSORBOARD_LOGGING_DIR then),
    unless the caller set one."""
    if "TENSORBOARD_LOGGING_DIR" in os.environ:
        yield
        return
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(folder)
    try:
        yield
    finally:
        os.environ.pop("TENSORBOARD_LOGGING_DIR", None)


def _check_reporting(cfg: TrainConfig) -> None:
    """Loggers and the hub, before any model is loaded: each logger's package installed, the hub reachable in
    principle (not HF_HUB_OFFLINE)."""
    import transformers.integrations as integrations

    available = {"tensorboard": integrations.is_tensorboard_available, "wandb": integrations.is_wandb_available}
    missing = [r for r in cfg.report_to if not available[r]()]
    if missing:
        raise TrainConfigError(f"report_to {missing}: not installed (pip install {' '.join(missing)})")
    if cfg.push_to_hub and os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes", "on"):
        raise TrainConfigError(f"push_to_hub to {cfg.hub_model_id!r}: HF_HUB_OFFLINE is set, so the hub is off")


def _select_pairs(cfg: TrainConfig, pairs: pd.DataFrame | None, data_dir: str | Path | None) -> pd.DataFrame:
    """The configured training pairs, or the given ones cut to the config's languages and group subsample (so a
    caller's table obeys the same config keys as the loaded one)."""
    if pairs is None:
        pairs = load_training_pairs(cfg, data_dir)
    else:
        if cfg.languages is not None:
            pairs = pairs[pairs.query_lang.isin(cfg.languages) & pairs.passage_lang.isin(cfg.languages)]
        if cfg.max_groups is not None:
            groups = pd.unique(pairs.group)
            keep = np.random.default_rng(cfg.seed).permutation(groups)[: cfg.max_groups]
            pairs = pairs[pairs.group.isin(keep)]
    return pairs.reset_index(drop=True)


def _without_test_articles(
    cfg: TrainConfig, pairs: pd.DataFrame, data_dir: str | Path | None
) -> tuple[pd.DataFrame, list[str]]:
    """The zero-shot guard: no training on the evaluation set's articles unless the config says so on purpose."""
    eval_name = cfg.resolved_eval_dataset
    if eval_name == cfg.train_dataset and not cfg.allow_test_overlap:
        raise ArticleOverlapError(
            f"train_dataset and eval_dataset are both {eval_name}: the test articles would be trained on; "
            "set allow_test_overlap=True to do it anyway"
        )
    return remove_test_overlap(
        pairs,
        set() if cfg.allow_test_overlap else eval_articles(eval_name, data_dir),
        eval_name,
        cfg.allow_test_overlap,
        cfg.drop_test_overlap,
    )


def _set_up_torch(cfg: TrainConfig) -> str:
    """Threads, matmul precision and seeds, before the model is built (a model folder's randomly initialised parts,
    if any, draw from the seed; a shared base loads under a fixed one, ``models.loading.load_base``); returns the
    resolved precision."""
    import torch
    import transformers

    if cfg.num_threads is not None:
        torch.set_num_threads(cfg.num_threads)
    precision = environment.resolve_precision(cfg.precision, training=True)
    if torch.cuda.is_available() and cfg.precision != "fp32":  # TF32 for what stays fp32, unless fp32 was asked for
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    transformers.set_seed(cfg.seed)
    return precision


def _load_model(cfg: TrainConfig, languages) -> tuple[Any, dict[str, int]]:
    """The encoder as the config trains it (sequence length, E5 prompts, frozen parts, model card), and its
    parameter counts; a copy of the process's base model, not a reload (``models.loading.trainable_copy``)."""
    model = trainable_copy(cfg.model)
    if cfg.max_seq_length is not None:
        model.max_seq_length = cfg.max_seq_length
    for key, prompt in PROMPTS.items():
        model.prompts.setdefault(key, prompt)
    counts = freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
    model.model_card_data.language = sorted(languages)
    model.model_card_data.model_name = f"{Path(cfg.model).name} fine-tuned with {cfg.batches_name()} batches"
    return model, counts


def _training_arguments(cfg: TrainConfig, train_dir: Path, precision: str, batch_sampler):
    """The config in the trainer's terms: the paper's optimiser, checkpoints under ``train_dir``, hybrid batches."""
    import torch
    from sentence_transformers import SentenceTransformerTrainingArguments

    return SentenceTransformerTrainingArguments(
        output_dir=str(train_dir / "checkpoints"),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=cfg.lr,
        weight_decay=cfg.weight_decay,
        # transformers 5: a float < 1 is a ratio of the total steps, an int a number of steps
        warmup_steps=cfg.warmup_steps if cfg.warmup_steps is not None else cfg.warmup_ratio,
        lr_scheduler_type=cfg.lr_scheduler,
        optim="adamw_torch",
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps is not None else -1,
        seed=cfg.seed,
        data_seed=cfg.seed,
        logging_steps=cfg.logging_steps,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=cfg.save_total_limit,
        report_to=cfg.report_to or "none",
        batch_sampler=batch_sampler,
        prompts=dict(PROMPTS),
        # Non-reentrant checkpointing: with a frozen embedding matrix the reentrant variant would see inputs that
        # need no grad and silently skip the layers' gradients.
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        dataloader_drop_last=False,
        dataloader_pin_memory=torch.cuda.is_available(),
        bf16=precision == "bf16",
        disable_tqdm=False,
    )


def _make_trainer(cfg: TrainConfig, model, args, pairs: pd.DataFrame, train_dir: Path, callbacks: list | None):
    """The sentence-transformers trainer, with the loss log first so a caller's callbacks see it written."""
    from sentence_transformers import SentenceTransformerTrainer

    with _tensorboard_dir(train_dir / "logs"):  # not under checkpoints/, which is removed once the run is done
        return SentenceTransformerTrainer(
            model=model,
            args=args,
            train_dataset=loss_dataset(pairs),
            loss=make_loss(model, cfg),
            callbacks=[
                checkpoints.loss_log_callback(train_dir / "loss_log.csv"),
                checkpoints.no_final_checkpoint_callback(),
                *(callbacks or []),
            ],
        )


def main(argv: list[str] | None = None) -> int:
    """``python -m hybridir_utils.training --config run.yaml``: one run from a ``TrainConfig`` YAML file.

    On N GPUs: ``torchrun --nproc_per_node N -m hybridir_utils.training --config run.yaml``; ``batch_size`` is per
    GPU (a step trains N x batch_size pairs, drawn as one batch by the sampler and split across the ranks).
    """
    import argparse

    parser = argparse.ArgumentParser(description=main.__doc__.splitlines()[0])
    parser.add_argument("--config", required=True, help="a TrainConfig YAML file (keys: the TrainConfig fields)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)
    print(f"model: {train(TrainConfig.from_yaml(args.config))}")
    return 0
