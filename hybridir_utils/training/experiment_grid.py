"""The experiment grid and its bookkeeping: which models notebook 03 trains and notebook 04 scores.

A run is (sampling preset, domain strategy, seed). Its label — ``hybrid/general/s0``,
``hybrid/science-in-domain/s0`` — names its model folder, its evaluation folder and its column in every table.
A *system* is a label without the seed: results of one system are averaged over its seeds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

import pandas as pd
from tqdm.auto import tqdm

from hybridir_utils.domains.pools import (
    domain_draw,
    domain_pool,
    parse_domain_run,
    same_article_negative_rate,
    structure_matched_pool,
)
from hybridir_utils.errors import DomainError, ExperimentError, SamplerConfigError
from hybridir_utils.naming import CONTROL_PREFIX, RANDOM_CONTROL, TrainingSpec
from hybridir_utils.parameters import BATCH_POLICIES
from hybridir_utils.sampling.alpha import PRESETS, sampling_alpha, sampling_problem
from hybridir_utils.sampling.sampler import HybridBatchSampler
from hybridir_utils.training.trainer import pairs_fingerprint, train
from hybridir_utils.utils import atomic

log = logging.getLogger(__name__)


def grid(samplings, seeds, domain_runs=(), domain_seeds=(0,), domain_sampling: str = "hybrid",
         topic_control_seeds=None, alpha_curve_seeds=None) -> list[TrainingSpec]:  # fmt: skip
    """The main comparison (every sampling x seed, general pool) plus domain-focused runs of one sampling.

    A sampling is a preset or ``alpha<α>`` (a point of the α curve); ``alpha_curve_seeds`` (None: ``seeds``) are
    the seeds of the ``alpha<α>`` samplings, which may be fewer than the presets' (the curve's inner points).

    ``topic_control_seeds`` (None: ``domain_seeds``) are the seeds of the other-topic controls (``size-<domain>``):
    they show the spread of "any coherent topic" around random, not the headline contrast, so a budget can give
    them fewer runs than the in-domain arm and its random control."""
    unknown = [s for s in [*samplings, domain_sampling] if sampling_problem(s)]
    if unknown:
        raise ExperimentError(f"unknown sampling preset(s) {unknown}; presets: {sorted(PRESETS)}, or alpha<α> "
                              "(e.g. alpha0.25)")  # fmt: skip
    if not samplings or not seeds:
        raise ExperimentError("the grid needs at least one sampling and one seed")
    curve = alpha_curve_seeds if alpha_curve_seeds is not None else seeds
    runs = [TrainingSpec(s, seed=int(seed)) for s in samplings for seed in (seeds if s in PRESETS else curve)]
    for spec in domain_runs or ():
        try:
            domain, mode = parse_domain_run(spec)
        except DomainError as exc:
            raise ExperimentError(str(exc)) from exc
        topic = mode.startswith(CONTROL_PREFIX) and mode != f"{CONTROL_PREFIX}{RANDOM_CONTROL}"
        arm_seeds = topic_control_seeds if topic and topic_control_seeds is not None else domain_seeds
        runs += [TrainingSpec(domain_sampling, domain, mode, int(seed)) for seed in arm_seeds]
    return runs


def draw_size(runs: list[TrainingSpec], pairs: pd.DataFrame, size: int | None = None) -> int | None:
    """The number S of question groups every domain arm draws per seed: ``size``, or 80% of the smallest target
    domain's groups (rounded down), so that every arm draws a different pool per seed. None without domain runs."""
    targets = sorted({r.domain for r in runs if r.mode != "general"})
    if not targets or size is not None:
        return size
    counts = pairs.drop_duplicates("group").domain.value_counts()
    return int(0.8 * min(int(counts.get(t, 0)) for t in targets))


def training_pool(run: TrainingSpec, pairs: pd.DataFrame, weight: float, batch_size: int, size: int | None = None):
    """The run's ``DomainPool`` (None for the general pool). Every domain arm is drawn anew per seed at ``size``
    groups: the in-domain arm by whole articles (``pools.domain_draw``), each control with the same article
    structure from random articles or another domain (``pools.structure_matched_pool``); ``size`` None: 80% of the
    run's target domain (:func:`draw_size` of this run alone). Weighted pools keep the whole table."""
    if run.mode == "general":
        return None
    if run.mode == "weighted":
        return domain_pool(pairs, run.domain, run.mode, weight, batch_size)
    size = draw_size([run], pairs) if size is None else size
    if run.mode.startswith(CONTROL_PREFIX):
        control = run.mode[len(CONTROL_PREFIX) :]
        return structure_matched_pool(pairs, run.domain, control, size, seed=run.seed, batch_size=batch_size)
    return domain_draw(pairs, run.domain, size, seed=run.seed, batch_size=batch_size)


def infeasible_runs(runs: list[TrainingSpec], pairs: pd.DataFrame, batch_size: int, weight: float = 3.0,
                    size: int | None = None) -> dict[str, str]:  # fmt: skip
    """{run label: why} for every run whose pool cannot fill a batch of ``batch_size`` (empty: all can).

    Builds each run's pool and the sampler that training would build, so a monolingual batch that one language of
    a small domain pool cannot fill is found here, before any training, not after the runs before it.
    """
    why = {}
    for run in runs:
        try:
            pool = training_pool(run, pairs, weight, batch_size, size)
            options = {"alpha": sampling_alpha(run.sampling), **(pool.sampler_kwargs if pool else {})}
            HybridBatchSampler(pool.pairs if pool else pairs, batch_size, seed=run.seed, **options)
        except (SamplerConfigError, DomainError) as exc:
            why[run.label] = str(exc)
    return why


def grid_batch_size(runs: list[TrainingSpec], pairs: pd.DataFrame, batch_size: int, weight: float = 3.0,
                    policy: str = "strict", size: int | None = None) -> int:  # fmt: skip
    """The batch size every run of the grid trains with, checked for every run before any training starts.

    ``strict``: ``batch_size`` itself, or one error listing every run that cannot fill it. ``shrink``: the largest
    size <= ``batch_size`` that every run can fill, so that all systems of a comparison share one batch size (a
    smaller batch for all rather than a different one per pool, which would confound the domain effect).
    """
    if policy not in BATCH_POLICIES:
        raise ExperimentError(f"batch_policy {policy!r} is not one of {BATCH_POLICIES}")
    why = infeasible_runs(runs, pairs, batch_size, weight, size)
    if not why:
        return batch_size
    if policy == "strict":
        listed = "; ".join(f"{label}: {reason}" for label, reason in why.items())
        raise ExperimentError(f"batch_size={batch_size} cannot be filled by {len(why)} run(s) ({listed})")
    short = [r for r in runs if r.label in why]  # a run that fills a batch also fills any smaller one
    low, high = 0, batch_size - 1
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if not infeasible_runs(short, pairs, mid, weight, size) else (low, mid - 1)
    if low == 0:
        raise ExperimentError(f"no batch size can be filled by run(s) {sorted(why)}: {next(iter(why.values()))}")
    log.warning(
        "batch_size %d cannot be filled by %s: every run trains with batch size %d", batch_size, sorted(why), low
    )
    return low


def train_grid(runs: list[TrainingSpec], pairs: pd.DataFrame, base: dict, out_dir: Path, weight: float = 3.0,
               size: int | None = None) -> pd.DataFrame:  # fmt: skip
    """Train every run on ``pairs`` (with a ``domain`` column) and write ``out_dir/runs.csv``.

    ``base`` holds the shared ``TrainConfig`` fields (the recipe); each run adds its preset, seed and pool (domain
    arms: ``size`` groups drawn per seed, see :func:`training_pool`). A run whose model already exists with the same
    config is reused (``training.train`` checks the config). Each row records the pool's groups and articles and the
    share of in-batch negatives from the query's own article over the run's batches, reported beside its scores.
    """
    rows, t0 = [], time.perf_counter()
    for k, run in enumerate(tqdm(runs, desc="training runs", unit="run"), 1):
        done = time.perf_counter() - t0
        eta = f", grid eta {done / (k - 1) * (len(runs) - k + 1):.0f} s" if k > 1 else ""
        print(f"run {k}/{len(runs)} {run.label}: starting (grid elapsed {done:.0f} s{eta})", flush=True)
        pool = training_pool(run, pairs, weight, base["batch_size"], size)
        table = pool.pairs if pool else pairs
        named = (
            {"preset": run.sampling}
            if run.sampling in PRESETS
            else {"preset": None, "alpha": sampling_alpha(run.sampling)}
        )
        cfg = {**base, **named, "seed": run.seed, "output_dir": str(out_dir / "models" / run.label),
               "extra": {"pairs_sha1": pairs_fingerprint(table)}}  # fmt: skip
        cfg.update(pool.sampler_kwargs if pool else {})
        start = time.perf_counter()
        model_dir = train(cfg, pairs=table, callbacks=[run_progress(f"run {k}/{len(runs)} {run.label}")])
        rows.append({**asdict(run), "system": run.system, "label": run.label, "model_dir": str(model_dir),
                     "groups": int(table.group.nunique()), "articles": int(table.article.nunique()),
                     "pairs": len(table), "same_article_negatives": _negative_rate(run, table, pool, base),
                     "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    table = pd.DataFrame(rows)
    atomic.atomic_write(out_dir / "runs.csv", lambda p: table.to_csv(p, index=False))
    return table


def _negative_rate(run: TrainingSpec, table: pd.DataFrame, pool, base: dict) -> float:
    """The share of the run's in-batch negatives that come from the query's own article, over its training batches
    (the sampler's own sequence for the run's seed and pool): harder negatives, whatever the domain."""
    kwargs = pool.sampler_kwargs if pool else {}
    steps = int(base["max_steps"])
    alpha = sampling_alpha(run.sampling)
    return same_article_negative_rate(table, base["batch_size"], run.seed, steps, alpha=alpha, **kwargs)


def training_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``results/<profile>/training.csv``: per run its pool, steps, batch size, final loss and where it ran (from each
    model's ``train_info.json``); no wall times, so the table is the same on every rerun of the same machine kind."""
    rows = []
    for r in runs.itertuples():
        trained = Path(getattr(r, "trained_model_dir", r.model_dir))  # a WiSE-FT model keeps its run's folder apart
        info = atomic.read_json(trained / "train_info.json")
        cfg = atomic.read_json(trained / "train_config.json")
        env = info.get("environment", {})
        rows.append({"system": r.system, "label": r.label, "seed": int(r.seed), "groups": int(r.groups),
                     "articles": int(r.articles), "same_article_negatives": float(r.same_article_negatives),
                     "pairs": int(r.pairs), "batch_size": cfg["batch_size"], "steps": info["steps"],
                     "train_loss": info["train_loss"], "precision": env.get("precision"),
                     "device": env.get("gpu") or env.get("device"),
                     "wise_lambda": float(getattr(r, "wise_lambda", 1.0))})  # fmt: skip
    return pd.DataFrame(rows)


def run_progress(prefix: str, reports: int = 4):
    """A TrainerCallback printing ``<prefix>: step s/m, loss, eta`` about ``reports`` times per run.

    Plain prints reach the notebook and, through the pipeline's ``log_output``, the terminal: a grid of many runs
    in one cell otherwise shows no sign of life for half an hour.
    """
    from transformers import TrainerCallback  # heavy optional stack: only when a grid is trained

    class Progress(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            self.start, self.first = time.perf_counter(), state.global_step

        def on_log(self, args, state, control, logs=None, **kwargs):
            step, total = state.global_step, state.max_steps
            if not logs or "loss" not in logs or (step != total and step % max(1, total // reports)):
                return
            per_step = (time.perf_counter() - self.start) / max(1, step - self.first)
            print(f"{prefix}: step {step}/{total}, loss {logs['loss']:.4f}, eta {per_step * (total - step):.0f} s",
                  flush=True)  # fmt: skip

    return Progress()


def loss_log(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs' loss logs (``<run dir>/loss_log.csv``) in one table with a ``run`` column."""
    frames = []
    folders = runs.trained_model_dir if "trained_model_dir" in runs else runs.model_dir
    for label, model_dir in zip(runs.label, folders, strict=True):
        csv = Path(model_dir).parent / "loss_log.csv"
        if csv.is_file():
            frames.append(pd.read_csv(csv).assign(run=label))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["step", "loss", "run"])
