"""Scoring every system: each system's LAReQA and MIRACL scores, one encoder in memory at a time.

Kept apart from :mod:`training.experiment_grid` (the grid and its training) and :mod:`analysis.effects` (the
planned comparisons): this is the one loop over systems that both benchmarks share (load the encoder, encode in
the asked precision, record the machine), so neither path repeats it. Outputs: ``results.parquet`` (LAReQA, one
row per system and test set) and the MIRACL table (one row per system, seed, language and retriever), each beside
an ``environment.json``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybridir_utils.data.lareqa_loader import load_lareqa
from hybridir_utils.data.miracl_loader import resolve_source
from hybridir_utils.data.splits import TEST, split_part
from hybridir_utils.errors import ExperimentError
from hybridir_utils.evaluation.lareqa import evaluate_lareqa
from hybridir_utils.evaluation.miracl import evaluate_miracl
from hybridir_utils.models.loading import USE_NAME, inference_backend, load_encoder
from hybridir_utils.naming import as_trained, base_label, run_label
from hybridir_utils.retrieval.embeddings import encode_cached
from hybridir_utils.utils import atomic, environment

_METRICS = (*(f"{s}_{m}" for s in ("mono", "cross", "multi") for m in ("map", "r1", "r10")), "rank_distance")


def linear_cka(base_emb: np.ndarray, emb: np.ndarray) -> float:
    """Linear CKA (Kornblith et al. 2019) between a model's and the base model's embeddings of the same texts.

    1 when the two geometries agree up to a rotation and a uniform scale, lower as the model's similarity structure
    moves away from the base's. Why not 1 - mean cosine: fine-tuning with another temperature rotates and
    re-centres the whole space (anisotropy), which moves every cosine without changing which texts are close, so a
    cosine-based drift varied by 0.11 across seeds of similar mAP. CKA is invariant to rotations and scale, so it
    reads as "how much of the base's neighbourhood structure is kept". NaN when the widths differ (other family).
    """
    if base_emb.shape != emb.shape:
        return float("nan")
    x = base_emb - base_emb.mean(axis=0)
    y = emb - emb.mean(axis=0)
    x, y = x.astype(np.float64), y.astype(np.float64)
    cross = np.linalg.norm(y.T @ x) ** 2
    return float(cross / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


def _passages(encoder, ds, batch_size: int) -> np.ndarray:
    """The test pool's candidate embeddings (from the cache the evaluation just filled)."""
    texts = ds.candidates.text.tolist()
    return encode_cached(encoder, texts, "passage", batch_size=batch_size, show_progress_bar=False)


def rank_device(encoder) -> str | None:
    """Where an evaluation ranks: on the encoder's GPU when it runs on one (the scores never leave it), else None
    (numpy on the host: the CPU profiles' committed numbers)."""
    dev = getattr(encoder, "device", None)
    return str(dev) if getattr(dev, "type", "cpu") == "cuda" else None


def evaluate_systems(
    systems: pd.DataFrame,
    datasets: dict,
    out_dir: Path,
    domain_of=None,
    backend: str = "torch",
    base=None,
    precision: str = "fp32",
    max_seq_length: int | None = None,
    **kw,
) -> pd.DataFrame:
    """Score every system on every dataset with ``lareqa.evaluate_lareqa``; one results row per pair.

    Each (system, dataset) writes ``out_dir/<label>/<dataset>/`` (metrics.json, per-query table, TREC files);
    embeddings are cached (per model and backend), so re-running skips encoding. ``base`` (default: the first
    system) is the base model: every system's ``cka`` (:func:`linear_cka`) is measured against its candidate
    embeddings. ``backend`` is the inference backend of every sentence-transformers model (see
    :mod:`models.backends`); ``kw`` goes to ``evaluate_lareqa`` (``batch_size``, ..., ``rank_device``: by default
    :func:`rank_device`). ``precision``
    ("fp32" | "bf16" | "auto") is the encoding precision (:func:`environment.resolve_precision`).
    ``max_seq_length``: the one token cut-off every system is scored at (a trained model is saved with its training
    cut-off; scoring it there and the base at 512 compared two things at once). Writes ``out_dir/results.parquet``
    and ``out_dir/environment.json``.
    """
    base = systems.label.iloc[0] if base is None else base
    if base not in set(systems.label):
        raise ExperimentError(f"base model {base!r} is not among the systems to evaluate {list(systems.label)}")
    resolved = _recorded_precision(precision, out_dir)
    rows, base_emb = [], {}
    ordered = pd.concat([systems[systems.label == base], systems[systems.label != base]])  # base first: CKA needs it
    for s, encoder, s_backend in _encoders(ordered, backend, max_seq_length):
        for name, ds in datasets.items():
            folder = out_dir / s.label / name
            with environment.autocast(resolved):
                m = evaluate_lareqa(encoder, ds, folder, domain_of=domain_of, name=s.label,
                                    **{"rank_device": rank_device(encoder), **kw})  # fmt: skip
                emb = _passages(encoder, ds, kw.get("batch_size", 64))
            base_emb.setdefault(name, emb)
            files = {k: str(folder / m["files"][k]) for k in ("per_query", "per_pair")}
            rows.append({"label": s.label, "system": s.system, "seed": s.seed, "dataset": name,
                         **{k: m.get(k) for k in _METRICS}, "cka": linear_cka(base_emb[name], emb),
                         "pool_size": m["pool_sizes"]["multi"], **files,
                         "encode_s": m["timings"]["encode"], "backend": s_backend})  # fmt: skip
        del encoder
    table = pd.DataFrame(rows)
    atomic.write_parquet(out_dir / "results.parquet", table)
    return table


def read_scores(out_dir: Path, systems: pd.DataFrame, datasets: list[str]) -> pd.DataFrame:
    """The scores :func:`evaluate_systems` wrote into ``out_dir`` (here, or on a GPU machine and unpacked by
    ``pipeline.archive``), for exactly ``systems`` x ``datasets`` in that order; a missing one is named."""
    path = Path(out_dir) / "results.parquet"
    if not path.is_file():
        raise ExperimentError(f"{path} not found: score the systems (score_systems true) or unpack an archive first")
    table = pd.read_parquet(path)
    wanted = pd.DataFrame([(label, d) for label in systems.label for d in datasets], columns=["label", "dataset"])
    found = wanted.merge(table, on=["label", "dataset"], how="left", validate="one_to_one")
    missing = found[found.per_query.isna()]
    if len(missing):
        raise ExperimentError(f"{path} lacks the scores of {list(zip(missing.label, missing.dataset, strict=True))}")
    absent = [p for p in [*found.per_query, *found.per_pair] if not Path(p).is_file()]
    if absent:
        raise ExperimentError(f"{path} names score files that do not exist, e.g. {absent[0]}")
    return found[table.columns]


def evaluate_miracl_systems(
    systems: pd.DataFrame,
    source,
    languages,
    out_dir: Path,
    backend: str = "torch",
    precision: str = "fp32",
    max_seq_length: int | None = None,
) -> pd.DataFrame | None:
    """MIRACL nDCG@10 / Recall@100 of every system and seed, BM25 once; None when no source
    (``report.summaries.MIRACL_CAVEAT``).

    Every row of ``systems`` (baselines, hybrid/general, domain variants and controls, each seed) is scored: the
    LAReQA tables average seeds, and MIRACL says nothing about the domain question unless the domain systems and
    their controls are on it. ``source`` is "hub" or a folder (relative to the project root, as profiles write it).
    One row per (system, seed, lang, retriever) with status/error: a language that fails to load is kept as an
    "error" row (and warned about), not a crash. Each system writes ``out_dir/<label>/`` (metrics, TREC runs);
    ``out_dir/environment.json`` records the encoding precision and the machine, as for LAReQA. Every system is
    scored at one cut-off, ``max_seq_length``, as for LAReQA.
    """
    if source is None:
        return None
    source = resolve_source(source)
    resolved = _recorded_precision(precision, out_dir)
    rows = []
    for i, (s, encoder, _) in enumerate(_encoders(systems, backend, max_seq_length)):
        # BM25 does not depend on the dense model: run it with the first system only, as a system of its own.
        with environment.autocast(resolved):
            m = evaluate_miracl(encoder, languages, source=source, out_dir=Path(out_dir) / s.label, bm25=i == 0)
        rows += [_miracl_row(s, row) for row in m["per_language"]]
        del encoder
    return pd.DataFrame(rows)


def _miracl_row(s, row: dict) -> dict:
    """One MIRACL row of system ``s``; BM25 rows are the system "bm25" (seed 0), whichever system computed them."""
    bm25 = row["retriever"] == "bm25"
    return {"system": "bm25" if bm25 else s.system, "seed": 0 if bm25 else int(s.seed),
            "label": "bm25" if bm25 else s.label, **row}  # fmt: skip


def _recorded_precision(precision: str, out_dir: Path) -> str:
    """``precision`` resolved for this machine, recorded with the environment in ``out_dir/environment.json``."""
    resolved = environment.resolve_precision(precision)
    atomic.write_json(Path(out_dir) / "environment.json", environment.describe(resolved))
    return resolved


def _encoders(systems: pd.DataFrame, backend: str, max_seq_length: int | None = None):
    """(system row, encoder, backend) per system, loaded one at a time (each is a whole model in memory), each set
    to ``max_seq_length`` tokens when given (models without a cut-off, such as USE, are left as they are).

    The one system loop of :func:`evaluate_systems` and :func:`evaluate_miracl_systems`: both load a system's
    encoder the same way (``inference_backend`` picks torch for models the ONNX backend cannot run).
    """
    for s in tqdm(list(systems.itertuples()), desc="systems", unit="system"):
        s_backend = inference_backend(s.source, backend)
        cut = None if s.source == USE_NAME else max_seq_length
        yield s, load_encoder(s.source, backend=s_backend, max_seq_length=cut), s_backend


BASELINES = ("multilingual-e5-small", "use-multilingual")


def read_runs(path: Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise ExperimentError(f"{path} not found: run notebook 03 (training) first")
    return pd.read_csv(path)


def select_systems(runs: pd.DataFrame, systems: list[str] | None) -> pd.DataFrame:
    """The runs of the named trained systems (all when None): a profile that scores another's models on new test
    data scores only the systems its hypothesis names. A name with no run is an error listing the known ones."""
    if systems is None:
        return runs
    unknown = sorted(set(systems) - set(runs.system))
    if unknown:
        raise ExperimentError(f"eval_systems {unknown}: no run of notebook 03; trained systems: "
                              f"{sorted(runs.system.unique())}")  # fmt: skip
    return runs[runs.system.isin(systems)].reset_index(drop=True)


def systems_to_evaluate(runs: pd.DataFrame | None, baselines=BASELINES, base_model: str | None = None,
                        score_as_trained: bool = False) -> pd.DataFrame:  # fmt: skip
    """The untrained base model first, then the other baselines, then every trained run: label, system, seed, source.

    ``base_model`` is the model the runs fine-tuned (default: the first baseline); it is added when it is not a
    baseline already, so the base of every comparison is the model that was trained, never a stand-in.
    ``score_as_trained``: runs that were interpolated (WiSE-FT: ``trained_model_dir`` beside ``model_dir``) are
    also scored as trained, under ``naming.as_trained`` names, after every interpolated run.
    """
    base_model = baselines[0] if base_model is None else base_model
    frozen = [base_model, *[b for b in baselines if base_label(b) != base_label(base_model)]]
    rows = [{"label": base_label(b), "system": base_label(b), "seed": 0, "source": b} for b in frozen]
    if runs is not None:
        rows += [{"label": r.label, "system": r.system, "seed": int(r.seed), "source": r.model_dir}
                 for r in runs.itertuples()]  # fmt: skip
        interpolated = "trained_model_dir" in runs and (runs.trained_model_dir != runs.model_dir).any()
        if score_as_trained and interpolated:
            rows += [{"label": run_label(as_trained(r.system), r.seed), "system": as_trained(r.system),
                      "seed": int(r.seed), "source": r.trained_model_dir} for r in runs.itertuples()]  # fmt: skip
    return pd.DataFrame(rows)


def evaluation_set(name: str, languages=None, max_articles: int | None = None, seed: int = 0, split=None):
    """A LAReQA test set: its test part when ``split`` (``data.zero_shot_split``: article, part, dataset) is of this
    dataset (the dev part chose the recipe and λ, so it is never scored as test), then ``max_articles`` of those
    drawn with ``seed`` (all when None).

    Restricting by article keeps whole candidate pools per article, so the protocol is unchanged; only the pool
    is smaller (mAP is higher on a smaller pool, so compare systems on the same restriction only).
    """
    ds = load_lareqa(name, languages)
    if split is not None and (split.dataset == name).any():
        ds = split_part(ds, split[split.dataset == name], TEST)
    if not max_articles:
        return ds
    kept = sorted(set(ds.questions.article))
    order = np.random.default_rng(seed).permutation(len(kept))
    return ds.subset(articles=[kept[i] for i in order[:max_articles]])
