"""WiSE-FT: move a fine-tuned model back toward its base in weight space, with λ chosen on dev data.

Hybrid-batch fine-tuning gains cross-lingual mAP but loses monolingual mAP against the untrained model. WiSE-FT
(Wortsman et al. 2022, "Robust fine-tuning of zero-shot models") interpolates the weights,
θ = (1 − λ)·θ_base + λ·θ_ft, which costs no training, only one evaluation per λ. The same λ applies to every trained
arm, and it is chosen on the held-out dev articles of MLQA-R (never on the test set) by the rule of
:func:`choose_lambda`, fixed before any result is seen, as :mod:`training.recipe` chooses the recipe.

Settings outside the weights (max_seq_length, prompts, pooling, tokenizer) are the fine-tuned model's, so λ = 1
is the trained model itself (same fingerprint and embedding cache). Scoring sets one evaluation cut-off for every
model (``lambda_sweep``'s ``max_seq_length``, the notebooks' ``eval_max_seq_length``), so the training cut-off the
fine-tuned model carries does not reach any score; the sweep still scores the base model itself as the λ = 0
reference.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import xxhash

from hybridir_utils.errors import WiseFTError
from hybridir_utils.models import delta, loading
from hybridir_utils.models.fingerprints import encoder_name
from hybridir_utils.stats.runs import run_bootstrap
from hybridir_utils.training import recipe
from hybridir_utils.utils import atomic, paths

MANIFEST = "wiseft.json"
LONG_COLUMNS = ["model_dir", "lam", "setting", "query", "stratum", "group", "ap"]
DEFAULT_LAMBDAS = tuple(round(0.1 * i, 1) for i in range(11))  # 0, 0.1, ..., 1: scoring only, no training
DEV, TEST = "dev", "test"


# ---------------------------------------------------------------------------------------------- interpolation


def check_lambda(lam) -> float:
    """``lam`` as a float in [0, 1]: outside it the formula extrapolates, which WiSE-FT does not mean."""
    try:
        value = float(lam)
    except (TypeError, ValueError):
        raise WiseFTError(f"lam must be a number in [0, 1], got {lam!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise WiseFTError(f"lam must be in [0, 1], got {lam!r}")
    return value


def _mismatch(base_state: dict, ft_state: dict) -> str | None:
    """The first key (fine-tuned order, then base-only keys) whose presence, shape or dtype differs; None if none."""
    for key in [*ft_state, *(k for k in base_state if k not in ft_state)]:
        b, f = base_state.get(key), ft_state.get(key)
        if b is None or f is None:
            return f"{key} is in the {'fine-tuned' if b is None else 'base'} model only"
        if b.shape != f.shape or b.dtype != f.dtype:
            return f"{key} is {b.dtype} {tuple(b.shape)} in the base, {f.dtype} {tuple(f.shape)} fine-tuned"
    return None


def _mix(b, f, lam: float):
    """(1 − lam)·b + lam·f, exact at the ends; bitwise-equal inputs (frozen tensors) are returned untouched, so they
    stay bitwise the base's (no rounding of 0.7x + 0.3x) and a slim save can still drop them."""
    b = b.to(f.device)
    if lam == 0.0:
        return b
    if lam == 1.0 or delta.same_bits(b, f):
        return f
    return ((1.0 - lam) * b.float() + lam * f.float()).to(f.dtype)


def interpolate(base, finetuned, lam: float):
    """A new SentenceTransformer: ``finetuned``'s structure and settings, weights (1 − lam)·base + lam·finetuned.

    Every floating-point tensor of the state dict is interpolated; integer buffers (position ids) are the
    fine-tuned model's. Both models must have the same keys, shapes and dtypes (the error names the first key
    that differs). max_seq_length, prompts, pooling and tokenizer are ``finetuned``'s (module docstring says why).
    """
    import torch

    lam = check_lambda(lam)
    base_state, ft_state = base.state_dict(), finetuned.state_dict()
    problem = _mismatch(base_state, ft_state)
    if problem:
        raise WiseFTError(f"base and fine-tuned models differ in architecture: {problem}")
    model = copy.deepcopy(finetuned)
    with torch.no_grad():
        for key, tensor in model.state_dict().items():  # shares storage with the copy's parameters and buffers
            if tensor.is_floating_point():
                tensor.copy_(_mix(base_state[key], ft_state[key], lam))
    if "_input_length" in vars(finetuned):  # token-length batching: rebind the sort key to the copy's tokenizer
        from hybridir_utils.models.backends import token_length_batching

        token_length_batching(model)
    model.hybridir_name = f"{encoder_name(finetuned)} wise-ft lam={lam:g}"
    return model


# ---------------------------------------------------------------------------------------------- saving


def _weights_digest(model_dir: Path) -> str:
    """xxh3 of the fine-tuned folder's weight file: a retrained run in the same folder is not mistaken for the old."""
    h = xxhash.xxh3_128()
    with open(model_dir / delta.WEIGHTS, "rb") as f:
        for block in iter(lambda: f.read(1 << 24), b""):
            h.update(block)
    return h.hexdigest()


def save_interpolated(base_name: str, model_dir: str | Path, lam: float, out_dir: str | Path) -> Path:
    """Save the WiSE-FT model of ``model_dir`` at ``lam`` into ``out_dir`` (atomically) and return ``out_dir``.

    The folder is slim (:mod:`models.delta`): tensors equal to the base's (the frozen word embeddings, kept
    bitwise by :func:`interpolate`) are dropped and restored on load, so ``loading.load_encoder(out_dir)`` loads it.
    ``wiseft.json`` records base, fine-tuned folder, λ and the fine-tuned weights' hash; a folder with the same
    record is reused, so a rerun costs nothing.
    """
    lam = check_lambda(lam)
    model_dir, out_dir = Path(model_dir).resolve(), Path(out_dir)
    record = {"base": str(base_name), "finetuned": str(model_dir), "lambda": lam,
              "finetuned_weights_xxh3": _weights_digest(model_dir)}  # fmt: skip
    if (out_dir / "modules.json").is_file() and (out_dir / MANIFEST).is_file():
        if atomic.read_json(out_dir / MANIFEST) == record:
            return out_dir
    base = loading.load_base(str(base_name))
    model = interpolate(base, loading.load_encoder(model_dir, token_batching=False), lam)
    with atomic.atomic_dir(out_dir) as tmp:
        model.save_pretrained(str(tmp))
        delta.slim(tmp, str(base_name), lambda _name: base)  # the base is loaded already: slim against it
        atomic.write_json(tmp / MANIFEST, record)
    return out_dir


# ---------------------------------------------------------------------------------------------- choosing λ


def _lambdas(lambdas) -> list[float]:
    """The sweep's λ values, sorted, with 0 (the base: the rule's reference) always included."""
    values = sorted({check_lambda(v) for v in (lambdas if lambdas is not None else DEFAULT_LAMBDAS)} | {0.0})
    if len(values) < 2:
        raise WiseFTError(f"the λ sweep needs at least one λ > 0, got {lambdas!r}")
    return values


def lambda_sweep(base_name: str, model_dirs, ds, lambdas, out_dir: str | Path, batch_size: int = 16,
                 max_seq_length: int | None = None, use_cache: bool = True) -> pd.DataFrame:  # fmt: skip
    """Per-query mono and cross AP on ``ds`` (dev pools, or the test set for the diagnostic) of every trained model
    in ``model_dirs`` at every λ, the base (λ = 0) scored once and repeated for each model.

    Models are interpolated in memory (nothing is saved); every model is scored at the evaluation cut-off
    ``max_seq_length``. With ``use_cache`` the embeddings are cached by the interpolated weights' fingerprint, so a
    killed sweep resumes without encoding again and a λ already scored elsewhere costs nothing. Returns (and
    writes to ``out_dir/lambda_sweep.parquet``) one row per (model, λ, setting, query): model_dir, lam, setting,
    query (``qid@pool``), stratum, group, ap.
    """
    values, out_dir = _lambdas(lambdas), Path(out_dir)
    model_dirs = [str(m) for m in model_dirs]
    if not model_dirs:
        raise WiseFTError("lambda_sweep needs at least one trained model folder")
    score = lambda encoder: recipe.dev_per_query(encoder, ds, out_dir / "eval", batch_size, max_seq_length,  # noqa: E731
                                                 use_cache)[0]  # fmt: skip
    base = loading.load_encoder(str(base_name))
    base_rows = score(base)
    frames = []
    for model_dir in model_dirs:
        finetuned = loading.load_encoder(model_dir)
        frames.append(_long(base_rows, model_dir, 0.0))
        for lam in values[1:]:
            frames.append(_long(score(interpolate(base, finetuned, lam)), model_dir, lam))
            means = frames[-1].groupby(["setting", "stratum"]).ap.mean().groupby("setting").mean()
            print(f"wise-ft {model_dir} lam {lam:g}: mono {means['mono']:.3f}, cross {means['cross']:.3f}", flush=True)
        del finetuned
    table = pd.concat(frames, ignore_index=True)
    atomic.write_parquet(out_dir / "lambda_sweep.parquet", table)
    return table


def _long(pq: pd.DataFrame, model_dir: str, lam: float) -> pd.DataFrame:
    return pd.DataFrame({"model_dir": model_dir, "lam": lam, "setting": pq.setting.to_numpy(),
                         "query": (pq.qid + "@" + pq.pool_lang).to_numpy(),
                         "stratum": (pq.query_lang + ">" + pq.pool_lang).to_numpy(), "group": pq.group.to_numpy(),
                         "ap": pq.ap.to_numpy(float)})  # fmt: skip


def _matrix(rows: pd.DataFrame, order: pd.Index) -> np.ndarray:
    """[models, queries] AP in the query ``order`` (every model must have every query)."""
    wide = rows.pivot(index="model_dir", columns="query", values="ap")
    if wide.shape[1] != len(order) or wide.isna().any().any():
        raise WiseFTError("every model of the λ sweep must be scored on the same queries at every λ")
    return wide.loc[sorted(wide.index), order].to_numpy(float)


def curve(sweep: pd.DataFrame, part: str = DEV, n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Per λ: mono and cross mAP (mean over the swept runs) and their *paired* difference from the base, λ = 0
    (same queries; the runs are the unit: ``stats.run_bootstrap`` resamples the runs and, once for both, the
    question groups), with its 95% interval and standard error. Columns: part, lam, runs, ``<part>_mono``,
    ``<part>_cross``, then ``<setting>_delta`` / ``_lo`` / ``_hi`` / ``_se`` for mono and cross."""
    missing = [c for c in LONG_COLUMNS if c not in sweep.columns]
    if missing or not (sweep.lam == 0).any():
        raise WiseFTError(f"λ-sweep table needs columns {LONG_COLUMNS} and λ = 0 rows (the base), lacks {missing}")
    runs = sweep.model_dir.nunique()
    if (sweep.groupby("lam").model_dir.nunique() != runs).any():
        raise WiseFTError(f"λ-sweep table must hold each λ for each of its {runs} model folder(s)")
    rows = []
    for lam, at in sweep.groupby("lam", sort=True):
        row = {"part": part, "lam": float(lam), "runs": runs}
        for setting in ("mono", "cross"):
            base = sweep[(sweep.lam == 0) & (sweep.setting == setting)]
            first = base[base.model_dir == base.model_dir.iloc[0]]
            order = pd.Index(first["query"])
            scores = {"lam": _matrix(at[at.setting == setting], order), "base": _matrix(first, order)}
            stat = run_bootstrap(scores, first.stratum.to_numpy(), first.group.to_numpy(), "base", n_boot, seed)
            r = stat.iloc[0]
            row |= {f"{part}_{setting}": r["mean"], f"{setting}_delta": r.delta, f"{setting}_lo": r.lo,
                    f"{setting}_hi": r.hi, f"{setting}_se": r.se}  # fmt: skip
        rows.append(row)
    return pd.DataFrame(rows)


def choose_lambda(dev_curve: pd.DataFrame, mono_margin: float = 0.01) -> dict:
    """λ by the rule fixed before the sweep, on the dev curve (:func:`curve`) alone: among λ whose dev monolingual
    mAP is not below the base's by more than ``mono_margin`` — judged by the paired interval of the difference, its
    lower end above ``-mono_margin`` (kept within the margin, shown; not merely "no loss detected") — the highest
    mean dev cross-lingual mAP (rounded to 1e-6), ties to the smaller λ. λ = 0 (the base: difference 0) always
    qualifies, so a choice always exists. Test rows are refused: the test never steers λ.

    Returns lam, dev_mono, dev_cross (at lam), base_dev_mono, base_dev_cross, n_models, mono_lo (at lam) and
    ``qualifying`` (the λ values that kept mono)."""
    parts = set(dev_curve.part) if "part" in dev_curve else {DEV}
    if parts != {DEV}:
        raise WiseFTError(f"λ is chosen on dev rows only; this curve holds {sorted(parts - {DEV})} rows")
    missing = [c for c in ("lam", "dev_mono", "dev_cross", "mono_lo", "runs") if c not in dev_curve.columns]
    if missing or not (dev_curve.lam == 0).any():
        raise WiseFTError(f"a dev curve needs a λ = 0 row and columns lam, dev_mono, dev_cross, mono_lo, runs; "
                          f"lacks {missing}")  # fmt: skip
    table = dev_curve.sort_values("lam")
    base = table[table.lam == 0].iloc[0]
    keeps = table[(table.lam == 0) | (table.mono_lo > -mono_margin)]
    best = keeps.assign(_key=keeps.dev_cross.round(6)).sort_values(["_key", "lam"], ascending=[False, True]).iloc[0]
    return {"lam": float(best.lam), "dev_mono": float(best.dev_mono), "dev_cross": float(best.dev_cross),
            "base_dev_mono": float(base.dev_mono), "base_dev_cross": float(base.dev_cross),
            "n_models": int(base.runs), "mono_lo": float(best.mono_lo),
            "qualifying": [float(v) for v in keeps.lam]}  # fmt: skip


def marked(table: pd.DataFrame, chosen: dict, mono_margin: float, dev: str | None = None) -> pd.DataFrame:
    """A curve with ``qualifies`` (the dev rule's monolingual test at that λ), ``chosen`` (the λ chosen on dev) and
    ``dev`` (the dev that chose it) columns: ``results/<profile>/wiseft.csv`` (dev) or ``wiseft_test.csv`` (the
    test-side diagnostic)."""
    qualifies = (table.lam == 0) | (table.mono_lo > -mono_margin)
    return table.assign(qualifies=qualifies, chosen=table.lam == chosen["lam"], dev=dev or chosen.get("dev", ""))


def reuse(profile: str, lambdas, runs: int, mono_margin: float, dev: str) -> tuple[pd.DataFrame, dict]:
    """Another profile's committed dev curve (``results/<profile>/wiseft.csv``, without its marks) and the λ the
    rule picks from it.

    Why: a profile whose swept runs are the same models as that profile's (same data, recipe, seeds and dev) would
    score the same curve again; the caller checks that the runs are the same (:func:`check_same_runs`). The grid
    and the number of runs must match, and the rule is re-applied: a table that disagrees with its own ``chosen``
    row is refused."""
    path = paths.results_dir(profile) / "wiseft.csv"
    if not path.is_file():
        raise WiseFTError(f"wiseft_from={profile!r}: no {path} (run `make reproduce PROFILE={profile}` first)")
    committed = pd.read_csv(path)
    if "mono_lo" not in committed or "dev" not in committed:
        raise WiseFTError(f"wiseft_from={profile!r}: {path} is of the earlier design (no paired interval): sweep here")
    if set(committed.dev) != {dev}:
        raise WiseFTError(f"wiseft_from={profile!r}: {path} was swept on {sorted(set(committed.dev))}, not {dev!r}")
    grid = _lambdas(lambdas)
    if sorted(committed.lam) != grid or set(committed.runs) != {runs}:
        raise WiseFTError(f"wiseft_from={profile!r}: {path} swept λ {sorted(committed.lam)} over "
                          f"{sorted(set(committed.runs))} "
                          f"run(s); this profile asks for {grid} over {runs}")  # fmt: skip
    table = committed.drop(columns=["qualifies", "chosen", "dev"])
    chosen = choose_lambda(table, mono_margin)
    marks = committed[committed.chosen.astype(bool)]
    if len(marks) != 1 or float(marks.lam.iloc[0]) != chosen["lam"]:
        raise WiseFTError(f"wiseft_from={profile!r}: the rule (mono_margin={mono_margin}) picks λ {chosen['lam']}, but "
                          f"{path} marks {list(marks.lam)}")  # fmt: skip
    return table, chosen


def check_same_runs(training: pd.DataFrame, profile: str, system: str, seeds) -> None:
    """Refuse to reuse ``profile``'s λ sweep unless this profile's runs of ``system`` at ``seeds`` have the same
    pools, batches, steps and training loss as that profile's committed ``training.csv`` rows (the same models)."""
    columns = ["seed", "groups", "pairs", "batch_size", "steps", "train_loss"]
    theirs = pd.read_csv(paths.results_dir(profile) / "training.csv")
    pick = lambda t: t[(t.system == system) & t.seed.isin(seeds)][columns].sort_values("seed").reset_index(drop=True)  # noqa: E731
    mine = pick(training).round({"train_loss": 4})
    if len(mine) != len(seeds) or not mine.equals(pick(theirs).astype(mine.dtypes)):
        raise WiseFTError(f"wiseft_from={profile!r}: this profile's {system} runs {list(seeds)} are not the ones "
                          f"{profile} swept (training.csv differs): sweep λ here")  # fmt: skip


def interpolate_runs(runs: pd.DataFrame, base_name: str, lam: float, out_dir: str | Path) -> pd.DataFrame:
    """Every trained run of a grid (``runs.csv``: label, model_dir) interpolated toward the base at the one ``lam``
    chosen on dev, so that every arm gets the same treatment: ``model_dir`` points to the interpolated model
    (``out_dir/<label>``), ``trained_model_dir`` keeps the run's own, ``wise_lambda`` records λ. λ = 1 is the
    trained model itself (nothing saved)."""
    lam = check_lambda(lam)
    runs = runs.assign(trained_model_dir=runs.model_dir, wise_lambda=lam)
    if lam == 1.0:
        return runs
    folders = [str(save_interpolated(base_name, r.model_dir, lam, Path(out_dir) / r.label)) for r in runs.itertuples()]
    return runs.assign(model_dir=folders)
