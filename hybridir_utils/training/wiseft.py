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

import pandas as pd
import xxhash

from hybridir_utils.errors import WiseFTError
from hybridir_utils.models import delta, loading
from hybridir_utils.models.fingerprints import encoder_name
from hybridir_utils.training import recipe
from hybridir_utils.utils import atomic

MANIFEST = "wiseft.json"
SWEEP_COLUMNS = ["model_dir", "lam", "dev_mono", "dev_cross"]
DEFAULT_LAMBDAS = (0.0, 0.25, 0.5, 0.75, 1.0)


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


def lambda_sweep(base_name: str, model_dirs, dev, lambdas, out_dir: str | Path, batch_size: int = 16,
                 max_seq_length: int | None = None) -> pd.DataFrame:  # fmt: skip
    """Dev mono and cross mAP of every trained model in ``model_dirs`` at every λ (``recipe.dev_scores``).

    Models are interpolated in memory (nothing is saved). The base and each fine-tuned model are loaded once (a slim
    model's restore reads the base's frozen tensors once more, inside ``models``); λ = 0 is the base itself, scored
    once with its own settings and repeated for each model so every model has every λ. λ = 0 is always swept.
    Every model is scored at the evaluation cut-off ``max_seq_length`` (as the recipe sweep and the test set are).
    Returns (and writes to ``out_dir/lambda_sweep.csv``) columns model_dir, lam, dev_mono, dev_cross.
    """
    values, out_dir = _lambdas(lambdas), Path(out_dir)
    model_dirs = [str(m) for m in model_dirs]
    if not model_dirs:
        raise WiseFTError("lambda_sweep needs at least one trained model folder")
    base = loading.load_encoder(str(base_name))
    base_scores = recipe.dev_scores(base, dev, out_dir / "dev_eval", batch_size, max_seq_length)
    rows = []
    for model_dir in model_dirs:
        finetuned = loading.load_encoder(model_dir)
        rows.append({"model_dir": model_dir, "lam": 0.0, **base_scores})
        for lam in values[1:]:
            mixed = interpolate(base, finetuned, lam)
            scores = recipe.dev_scores(mixed, dev, out_dir / "dev_eval", batch_size, max_seq_length)
            rows.append({"model_dir": model_dir, "lam": lam, **scores})
            print(f"wise-ft {model_dir} lam {lam:g}: dev mono {scores['dev_mono']:.3f}, "
                  f"cross {scores['dev_cross']:.3f}", flush=True)  # fmt: skip
        del finetuned
    table = pd.DataFrame(rows, columns=SWEEP_COLUMNS)
    atomic.atomic_write(out_dir / "lambda_sweep.csv", lambda p: table.to_csv(p, index=False))
    return table


def _mean_by_lambda(table: pd.DataFrame) -> pd.DataFrame:
    """Mean dev mono/cross per λ over the model folders; every folder must have every λ (else the means compare
    different sets of runs)."""
    missing = [c for c in SWEEP_COLUMNS if c not in table.columns]
    if missing:
        raise WiseFTError(f"λ-sweep table lacks column(s) {missing}")
    if table.empty or not (table.lam == 0).any():
        raise WiseFTError("λ-sweep table needs λ = 0 rows (the base model): the rule's reference")
    counts = table.groupby("lam").model_dir.nunique()
    n_models = table.model_dir.nunique()
    if (counts != n_models).any() or table.duplicated(["model_dir", "lam"]).any():
        raise WiseFTError(f"λ-sweep table must hold each λ once for each of its {n_models} model folder(s)")
    return table.groupby("lam", as_index=False)[["dev_mono", "dev_cross"]].mean().sort_values("lam")


def choose_lambda(table: pd.DataFrame, mono_margin: float = 0.01) -> dict:
    """λ by the rule fixed in advance: mean dev mono and cross per λ over the model folders (the seeds of an arm:
    averaging independently trained runs keeps one run's noise from picking λ); among λ whose mean dev mono is
    within ``mono_margin`` of λ = 0 (the base), the highest mean dev cross (rounded to 1e-6), ties to the smaller λ.

    λ = 0 always qualifies, so a choice always exists; it is 0 when no interpolated model keeps mono and beats the
    base's cross. Returns lam, dev_mono, dev_cross (means at lam), base_dev_mono, base_dev_cross, n_models and
    ``qualifying`` (the λ values that kept mono).
    """
    means = _mean_by_lambda(table)
    base = means[means.lam == 0].iloc[0]
    keeps = means[means.dev_mono >= float(base.dev_mono) - mono_margin]
    best = keeps.assign(_key=keeps.dev_cross.round(6)).sort_values(["_key", "lam"], ascending=[False, True]).iloc[0]
    return {"lam": float(best.lam), "dev_mono": float(best.dev_mono), "dev_cross": float(best.dev_cross),
            "base_dev_mono": float(base.dev_mono), "base_dev_cross": float(base.dev_cross),
            "n_models": int(table.model_dir.nunique()), "qualifying": [float(v) for v in keeps.lam]}  # fmt: skip


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


def curve(table: pd.DataFrame, chosen: dict) -> pd.DataFrame:
    """``results/<profile>/wiseft.csv``: the dev trade-off, mean dev mono and cross per λ over the swept runs, with
    the number of runs and the chosen λ marked (the measured trade-off curve, whatever the rule picks)."""
    means = _mean_by_lambda(table)
    return means.assign(runs=table.model_dir.nunique(), chosen=means.lam == chosen["lam"])
