"""Choose the fine-tuning recipe on a dev, never on the test set.

A sweep trains general hybrid batches (seed 0) for every (MNRL scale, learning rate) on the MLQA-R train split
and scores LAReQA mono and cross mAP on the dev after several step counts of one run: by default the zero-shot dev
(the test set's dev articles, ``data.zero_shot_split``), which shares the test's shift; held-out training articles
(``data.split_articles``) were the dev of the earlier design. The learning rate is constant after a fixed
warm-up, so step k of a long run *is* a run of k steps: one run scores every length. The untrained model is
scored on the same dev pools (step 0).

Selection rule (stated before any result is seen): among settings whose dev monolingual mAP stays within
``mono_margin`` of the untrained model, the highest dev cross-lingual mAP; ties go to fewer steps, then the
smaller learning rate. If no setting keeps monolingual accuracy, the best mean of mono and cross is taken and
the choice says so. The chosen (scale, lr, steps) becomes every system's recipe.
"""

from __future__ import annotations

import itertools
import shutil
import time
from pathlib import Path

import pandas as pd

from hybridir_utils.errors import RecipeError
from hybridir_utils.evaluation.lareqa import evaluate_lareqa
from hybridir_utils.models.loading import load_encoder
from hybridir_utils.stats.groups import macro_mean_se
from hybridir_utils.training.config import TrainConfig
from hybridir_utils.training.trainer import pairs_fingerprint, train
from hybridir_utils.utils import atomic, paths

DEV_COLUMNS = ["scale", "lr", "step", "dev_mono", "dev_cross", "dev_mono_se", "dev_cross_se", "seconds"]


def dev_per_query(
    encoder, dev, out_dir: Path, batch_size: int = 16, max_seq_length: int | None = None, use_cache: bool = False
) -> tuple[pd.DataFrame, dict]:
    """Per-query mono and cross AP of ``encoder`` on the dev pools (``evaluate_lareqa``'s per-query table), and the
    metrics it returned.

    ``max_seq_length``: the evaluation cut-off, set for the scoring and restored after it, so that a model inside
    training (at the training cut-off) and the untrained base are scored on the same texts. No cache by default:
    inside the recipe sweep the weights change every step, and each step's embeddings would never be read again.
    """
    kept = getattr(encoder, "max_seq_length", None)
    if max_seq_length is not None and kept is not None:
        encoder.max_seq_length = max_seq_length
    try:
        m = evaluate_lareqa(encoder, dev, out_dir, settings=("mono", "cross"), use_cache=use_cache, write_runs=False,
                            fingerprint=None if use_cache else "dev", batch_size=batch_size,
                            show_progress_bar=False)  # fmt: skip
    finally:
        if max_seq_length is not None and kept is not None:
            encoder.max_seq_length = kept
    pq = pd.read_parquet(Path(out_dir) / m["files"]["per_query"])
    return pq[pq.setting.isin(("mono", "cross"))].reset_index(drop=True), m


def dev_scores(
    encoder, dev, out_dir: Path, batch_size: int = 16, max_seq_length: int | None = None
) -> dict[str, float]:
    """Macro mono and cross mAP of ``encoder`` on the dev pools (:func:`dev_per_query`), each with its standard
    error under a new draw of dev question groups (``stats.macro_mean_se``): the noise the recipe rule's
    ``mono_margin`` must be read against."""
    pq, m = dev_per_query(encoder, dev, out_dir, batch_size, max_seq_length)
    se = {s: macro_mean_se(t.ap.to_numpy(), (t.query_lang + ">" + t.pool_lang).to_numpy(), t.group.to_numpy())
          for s, t in pq.groupby("setting")}  # fmt: skip
    return {"dev_mono": float(m["mono_map"]), "dev_cross": float(m["cross_map"]), "dev_mono_se": se["mono"],
            "dev_cross_se": se["cross"]}  # fmt: skip


def dev_callback(dev, steps, csv_path: Path, setting: dict, batch_size: int = 16, max_seq_length: int | None = None):
    """A TrainerCallback scoring the model on ``dev`` at each of ``steps`` (at the evaluation cut-off
    ``max_seq_length``); rows go to ``csv_path`` atomically."""
    from transformers import TrainerCallback

    class DevScores(TrainerCallback):
        def __init__(self) -> None:
            self.rows: list[dict] = []

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if state.global_step in set(steps):
                start = time.perf_counter()
                scores = dev_scores(model, dev, csv_path.parent / "dev_eval", batch_size, max_seq_length)
                self.rows.append({**setting, "step": state.global_step, **scores,
                                  "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
                atomic.write_text(csv_path, pd.DataFrame(self.rows, columns=DEV_COLUMNS).to_csv(index=False))
                print(f"sweep scale {setting['scale']:g}, lr {setting['lr']:g}: step {state.global_step}/"
                      f"{state.max_steps}, dev mono {scores['dev_mono']:.3f}, cross {scores['dev_cross']:.3f}",
                      flush=True)  # fmt: skip

    return DevScores()


def settings(scales, lrs) -> list[dict]:
    """Every (scale, lr) of the sweep, validated."""
    grid = [{"scale": float(s), "lr": float(lr)} for s, lr in itertools.product(scales or [], lrs or [])]
    if not grid or any(v["scale"] <= 0 or v["lr"] <= 0 for v in grid):
        raise RecipeError(f"the sweep needs positive scales and learning rates, got {scales!r} x {lrs!r}")
    return grid


def _dev_table(dev) -> pd.DataFrame:
    """The dev pools as a pairs-shaped table (question, answer sentence), for the sweep's data fingerprint."""
    text = dict(zip(dev.candidates.cid, dev.candidates.text, strict=True))
    q = dev.questions
    return pd.DataFrame({"query": q.text, "passage": q.answer_cid.map(text), "query_lang": q.lang,
                         "passage_lang": q.lang, "group": q.group})  # fmt: skip


def _run_one(base: dict, setting: dict, pairs, dev, steps, out_dir: Path, batch_size: int, max_seq_length=None):
    """Train one setting (reusing a finished dev log) and drop its weights: only the dev scores are kept."""
    train_dir = out_dir / f"scale{setting['scale']:g}-lr{setting['lr']:g}"
    csv, config_file = train_dir / "dev_scores.csv", train_dir / "train_config.json"
    data = {
        "pairs_sha1": pairs_fingerprint(pairs),
        "dev_questions_sha1": pairs_fingerprint(_dev_table(dev)),
        "eval_max_seq_length": max_seq_length,
    }
    cfg = {**base, **setting, "max_steps": max(steps), "save_steps": max(steps), "output_dir": str(train_dir),
           "extra": data, "save_model": False}  # fmt: skip
    identity = TrainConfig.from_dict(cfg).identity()
    same = (
        config_file.is_file() and {k: v for k, v in atomic.read_json(config_file).items() if k in identity} == identity
    )
    done = pd.read_csv(csv) if same and csv.is_file() else None
    if done is not None and set(done.step) >= set(steps) and set(DEV_COLUMNS) <= set(done.columns):
        return done  # a finished sweep run on the same data and dev pools (with every column this code writes)
    shutil.rmtree(train_dir, ignore_errors=True)  # another setting, data or step list: start this run afresh
    train(cfg, pairs=pairs, callbacks=[dev_callback(dev, steps, csv, setting, batch_size, max_seq_length)])
    return pd.read_csv(csv)  # save_model false: no model/ and no checkpoints/ are left behind


def sweep(base: dict, pairs, dev, scales, lrs, steps, out_dir: Path, batch_size: int = 16,
          max_seq_length: int | None = None) -> pd.DataFrame:  # fmt: skip
    """Dev mono/cross mAP of every (scale, lr) after each of ``steps``, plus the untrained model as step 0; every
    model scored at the evaluation cut-off ``max_seq_length`` (None: each model's own)."""
    steps = sorted({int(s) for s in steps})
    if not steps or steps[0] < 1:
        raise RecipeError(f"sweep steps must be positive integers, got {steps!r}")
    base_scores = dev_scores(load_encoder(base["model"]), dev, Path(out_dir) / "base", batch_size, max_seq_length)
    rows = [pd.DataFrame([{"scale": None, "lr": None, "step": 0, **base_scores, "seconds": 0.0}])]
    rows += [_run_one(base, s, pairs, dev, steps, Path(out_dir), batch_size, max_seq_length)
             for s in settings(scales, lrs)]  # fmt: skip
    table = pd.concat(rows, ignore_index=True)
    atomic.atomic_write(Path(out_dir) / "sweep.csv", lambda p: table.to_csv(p, index=False))
    return table


def choose(table: pd.DataFrame, mono_margin: float = 0.01) -> dict:
    """The recipe by the module's rule: ``scale``, ``lr``, ``max_steps``, dev scores and the rule that applied."""
    missing = sorted(set(DEV_COLUMNS[:5]) - set(table.columns))
    if missing:
        raise RecipeError(f"sweep table lacks column(s) {missing}")
    base = table[table.step == 0]
    runs = table[table.step > 0]
    if len(base) != 1 or runs.empty:
        raise RecipeError("sweep table needs exactly one untrained row (step 0) and at least one trained row")
    keeps = runs[runs.dev_mono >= float(base.dev_mono.iloc[0]) - mono_margin]
    pool, rule = (keeps, "keeps-mono") if len(keeps) else (runs, "best-mean (no setting kept mono)")
    key = pool.dev_cross if len(keeps) else (pool.dev_mono + pool.dev_cross) / 2
    best = pool.assign(_key=key.round(6)).sort_values(["_key", "step", "lr"], ascending=[False, True, True]).iloc[0]
    return {"scale": float(best.scale), "lr": float(best.lr), "max_steps": int(best.step), "rule": rule,
            "dev_mono": float(best.dev_mono), "dev_cross": float(best.dev_cross),
            "base_dev_mono": float(base.dev_mono.iloc[0]), "base_dev_cross": float(base.dev_cross.iloc[0])}  # fmt: skip


def table(sweep_table: pd.DataFrame, chosen: dict, dev: str) -> pd.DataFrame:
    """``results/<profile>/recipe.csv``: the sweep (no timings) with the chosen row, the rule that chose it and the
    dev it was scored on."""
    hit = (sweep_table.scale == chosen["scale"]) & (sweep_table.lr == chosen["lr"])
    return sweep_table.drop(columns="seconds").assign(chosen=hit & (sweep_table.step == chosen["max_steps"]),
                                                      rule=chosen["rule"], dev=dev)  # fmt: skip


def reuse(profile: str, scales, lrs, steps, mono_margin: float, dev: str) -> tuple[pd.DataFrame, dict]:
    """Another profile's committed sweep (``results/<profile>/recipe.csv``) and the recipe the rule picks from it.

    Why: a profile with the same training data, dev split, sweep grid and rule would re-run the same sweep to get
    the same recipe; reusing it spends that time on runs. The grid must match this profile's and the rule is
    re-applied, so a table that disagrees with its own ``chosen`` row (edited, or another rule) is refused; so is a
    sweep scored on another ``dev``.
    """
    path = paths.results_dir(profile) / "recipe.csv"
    if not path.is_file():
        raise RecipeError(f"recipe_from={profile!r}: no {path} (run `make reproduce PROFILE={profile}` or sweep)")
    table = pd.read_csv(path)
    missing = sorted((set(DEV_COLUMNS[:5]) | {"chosen", "rule"}) - set(table.columns))
    if missing:
        raise RecipeError(f"recipe_from={profile!r}: {path} lacks column(s) {missing}")
    if "dev" not in table or set(table.dev) != {dev}:
        found = sorted(set(table.dev)) if "dev" in table else "a dev it does not record (an earlier design)"
        raise RecipeError(f"recipe_from={profile!r}: {path} was scored on {found}; this profile's dev is {dev!r}")
    trained = table[table.step > 0]
    grid = {(s["scale"], s["lr"]) for s in settings(scales, lrs)}
    if set(zip(trained.scale, trained.lr, strict=True)) != grid or set(trained.step) != {int(s) for s in steps}:
        swept = sorted(set(zip(trained.scale, trained.lr, strict=True)))
        raise RecipeError(f"recipe_from={profile!r}: {path} swept (scale, lr) {swept} at steps "
                          f"{sorted(set(trained.step))}; this profile asks for {sorted(grid)} at "
                          f"{sorted({int(s) for s in steps})}")  # fmt: skip
    sweep_table = table.drop(columns=["chosen", "rule", "dev"]).assign(seconds=float("nan"))
    chosen = choose(sweep_table, mono_margin)
    marked = table[table.chosen.astype(bool)]
    if len(marked) != 1 or (marked.scale.iloc[0], marked.lr.iloc[0], marked.step.iloc[0]) != (
        chosen["scale"],
        chosen["lr"],
        chosen["max_steps"],
    ):
        raise RecipeError(f"recipe_from={profile!r}: the rule (mono_margin={mono_margin}) picks scale "
                          f"{chosen['scale']}, lr {chosen['lr']}, {chosen['max_steps']} steps, but {path} marks "
                          f"{len(marked)} other row(s) as chosen")  # fmt: skip
    return sweep_table, chosen
