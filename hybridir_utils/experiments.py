"""The experiment grid and its bookkeeping: which models notebook 03 trains and notebook 04 scores.

A run is (sampling preset, domain strategy, seed). Its label — ``hybrid/general/s0``,
``hybrid/science-in-domain/s0`` — names its model folder, its evaluation folder and its column in every table.
A *system* is a label without the seed: results of one system are averaged over its seeds.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils import io
from hybridir_utils.domains import POOL_MODES, check_domain, domain_pool
from hybridir_utils.sampling import PRESETS

BASELINES = ("multilingual-e5-small", "use-multilingual")


class ExperimentError(ValueError):
    """A grid specification or a results folder is malformed; the message names it."""


@dataclass(frozen=True)
class Run:
    sampling: str  # a sampling preset: x-x-mono | x-y | hybrid
    domain: str = "general"  # "general" or a target domain
    mode: str = "general"  # pool mode: general | in-domain | weighted
    seed: int = 0

    @property
    def system(self) -> str:
        strategy = "general" if self.mode == "general" else f"{self.domain}-{self.mode}"
        return f"{self.sampling}/{strategy}"

    @property
    def label(self) -> str:
        return f"{self.system}/s{self.seed}"


def parse_domain_run(spec: str) -> tuple[str, str]:
    """``"science:in-domain"`` -> ("science", "in-domain"); the domain and mode are validated."""
    domain, sep, mode = str(spec).partition(":")
    if not sep or mode not in POOL_MODES or mode == "general":
        raise ExperimentError(f"domain run {spec!r}: expected '<domain>:in-domain' or '<domain>:weighted'")
    return check_domain(domain, allow_other=False), mode


def grid(samplings, seeds, domain_runs=(), domain_seeds=(0,), domain_sampling: str = "hybrid") -> list[Run]:
    """The main comparison (every sampling x seed, general pool) plus domain-focused runs of one sampling."""
    unknown = [s for s in [*samplings, domain_sampling] if s not in PRESETS]
    if unknown:
        raise ExperimentError(f"unknown sampling preset(s) {unknown}; presets: {sorted(PRESETS)}")
    if not samplings or not seeds:
        raise ExperimentError("the grid needs at least one sampling and one seed")
    runs = [Run(s, seed=int(seed)) for s in samplings for seed in seeds]
    for spec in domain_runs or ():
        domain, mode = parse_domain_run(spec)
        runs += [Run(domain_sampling, domain, mode, int(seed)) for seed in domain_seeds]
    return runs


def train_grid(runs: list[Run], pairs: pd.DataFrame, base: dict, out_dir: Path, weight: float = 3.0) -> pd.DataFrame:
    """Train every run on ``pairs`` (with a ``domain`` column) and write ``out_dir/runs.csv``.

    ``base`` holds the shared ``TrainConfig`` fields; each run adds its preset, seed and domain options. A run
    whose model already exists with the same config is reused (``training.train`` checks the config).
    """
    from hybridir_utils.training import train

    rows = []
    for run in runs:
        pool = None if run.mode == "general" else domain_pool(pairs, run.domain, run.mode, weight, base["batch_size"])
        cfg = {**base, "preset": run.sampling, "seed": run.seed, "output_dir": str(out_dir / "models" / run.label)}
        cfg.update(pool.sampler_kwargs if pool else {})
        start = time.perf_counter()
        model_dir = train(cfg, pairs=pool.pairs if pool else pairs)
        rows.append({**asdict(run), "system": run.system, "label": run.label, "model_dir": str(model_dir),
                     "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    table = pd.DataFrame(rows)
    io.atomic_write(out_dir / "runs.csv", lambda p: table.to_csv(p, index=False))
    return table


def read_runs(path: Path) -> pd.DataFrame:
    if not Path(path).is_file():
        raise ExperimentError(f"{path} not found: run notebook 03 (training) first")
    return pd.read_csv(path)


def loss_log(runs: pd.DataFrame) -> pd.DataFrame:
    """All runs' loss logs (``<run dir>/loss_log.csv``) in one table with a ``run`` column."""
    frames = []
    for label, model_dir in zip(runs.label, runs.model_dir, strict=True):
        csv = Path(model_dir).parent / "loss_log.csv"
        if csv.is_file():
            frames.append(pd.read_csv(csv).assign(run=label))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=["step", "loss", "run"])


def systems_to_evaluate(runs: pd.DataFrame | None, baselines=BASELINES) -> pd.DataFrame:
    """Baselines first (the first rows of every table), then every trained run: label, system, seed, source."""
    rows = [{"label": b, "system": b, "seed": 0, "source": b} for b in baselines]
    if runs is not None:
        rows += [{"label": r.label, "system": r.system, "seed": int(r.seed), "source": r.model_dir}
                 for r in runs.itertuples()]  # fmt: skip
    return pd.DataFrame(rows)


_METRICS = ("mono_map", "cross_map", "multi_map", "mono_r1", "cross_r1", "multi_r1", "rank_distance")


def evaluate_systems(
    systems: pd.DataFrame, datasets: dict, out_dir: Path, domain_of=None, backend: str = "torch", **kw
) -> pd.DataFrame:
    """Score every system on every dataset with ``evaluation.evaluate_lareqa``; one results row per pair.

    Each (system, dataset) writes ``out_dir/<label>/<dataset>/`` (metrics.json, per-query table, TREC files);
    embeddings are cached (per model and backend), so re-running skips encoding. ``backend`` is the inference
    backend of every sentence-transformers model (see :mod:`hybridir_utils.backends`); ``kw`` goes to
    ``evaluate_lareqa`` (``batch_size``, ...). Writes ``out_dir/results.parquet``.
    """
    from hybridir_utils.evaluation import evaluate_lareqa
    from hybridir_utils.models import inference_backend, load_encoder

    rows = []
    for s in systems.itertuples():
        s_backend = inference_backend(s.source, backend)
        encoder = load_encoder(s.source, backend=s_backend)
        for name, ds in datasets.items():
            folder = out_dir / s.label / name
            m = evaluate_lareqa(encoder, ds, folder, domain_of=domain_of, name=s.label, **kw)
            files = {k: str(folder / m["files"][k]) for k in ("per_query", "per_pair")}
            rows.append({"label": s.label, "system": s.system, "seed": s.seed, "dataset": name,
                         **{k: m.get(k) for k in _METRICS}, **files, "encode_s": m["timings"]["encode"],
                         "backend": s_backend})  # fmt: skip
        del encoder
    table = pd.DataFrame(rows)
    io.write_parquet(out_dir / "results.parquet", table)
    return table


def per_query_matrix(results: pd.DataFrame, dataset: str, setting: str, metric: str = "ap"):
    """Per system, a [seeds x queries] array of ``metric`` on the same query order, and each query's stratum.

    A query key is ``<qid>@<pool>``; the stratum is the (query language, pool language) pair, so means are
    macro means over pairs as in LAReQA.
    """
    rows = results[results.dataset == dataset]
    if rows.empty:
        raise ExperimentError(f"no results for dataset {dataset!r}")
    tables = {}
    for r in rows.itertuples():
        pq = pd.read_parquet(r.per_query)
        pq = pq[pq.setting == setting]
        tables[(r.system, r.seed)] = pq.set_index(pq.qid + "@" + pq.pool_lang)
    index = next(iter(tables.values())).index
    for key, t in tables.items():
        if len(t.index) != len(index) or not t.index.isin(index).all():
            raise ExperimentError(f"system {key[0]} seed {key[1]} was scored on other {setting} queries of {dataset}")
    first = next(iter(tables.values())).loc[index]
    strata = (first.query_lang + ">" + first.pool_lang).to_numpy()
    systems = {}
    for (system, _seed), t in sorted(tables.items(), key=lambda kv: kv[0][1]):
        systems.setdefault(system, []).append(t.loc[index, metric].to_numpy(float))
    return {k: np.vstack(v) for k, v in systems.items()}, strata


def hierarchical_bootstrap(scores: dict, reference: str, strata, n_boot: int = 5000, seed: int = 0, ci: float = 0.95):
    """Mean and difference to ``reference`` with CIs that include training-seed variance, not only query sampling.

    Each replicate resamples queries within each stratum (shared by all systems: a paired design) and, for each
    system independently, its seeds with replacement; a system's value is the macro mean over strata of its
    seed-averaged scores. p is the two-sided bootstrap p-value of the difference. A single-seed system reduces
    to the usual paired bootstrap over queries.
    """
    if reference not in scores:
        raise ExperimentError(f"reference system {reference!r} not among {sorted(scores)}")
    rng = np.random.default_rng(seed)
    _, codes = np.unique(np.asarray(strata), return_inverse=True)
    members = [np.flatnonzero(codes == k) for k in range(codes.max() + 1)]
    draws = {name: np.empty(n_boot) for name in scores}
    chunk = max(1, 2_000_000 // max(len(codes), 1))  # replicates per block: bounds the [block, queries] arrays
    for start in range(0, n_boot, chunk):
        n = min(chunk, n_boot - start)
        # one query resample per replicate, shared by all systems (paired design), drawn within each stratum
        picks = [m[rng.integers(0, len(m), (n, len(m)))] for m in members]
        for name, mat in scores.items():
            seed_mean = mat[rng.integers(0, mat.shape[0], (n, mat.shape[0]))].mean(axis=1)  # [n, queries]
            rows = np.arange(n)[:, None]
            draws[name][start : start + n] = np.mean([seed_mean[rows, p].mean(axis=1) for p in picks], axis=0)
    lo, hi = (1 - ci) / 2, 1 - (1 - ci) / 2
    point = {name: float(np.mean([mat.mean(axis=0)[m].mean() for m in members])) for name, mat in scores.items()}
    rows = []
    for name, mat in scores.items():
        diff = draws[name] - draws[reference]
        p = 1.0 if name == reference else min(1.0, 2 * min((diff <= 0).mean(), (diff >= 0).mean()))
        rows.append({"system": name, "seeds": mat.shape[0], "n_queries": mat.shape[1], "mean": point[name],
                     "ci_low": np.quantile(draws[name], lo), "ci_high": np.quantile(draws[name], hi),
                     "diff": point[name] - point[reference], "diff_ci_low": np.quantile(diff, lo),
                     "diff_ci_high": np.quantile(diff, hi), "p_value": p})  # fmt: skip
    return pd.DataFrame(rows)


def compare(results, dataset, setting, reference, metric: str = "ap", n_boot: int = 5000, seed: int = 0):
    """``hierarchical_bootstrap`` of every system against ``reference`` on one dataset and setting."""
    scores, strata = per_query_matrix(results, dataset, setting, metric)
    table = hierarchical_bootstrap(scores, reference, strata, n_boot, seed)
    return table.assign(dataset=dataset, setting=setting, metric=metric, reference=reference)


def evaluation_set(name: str, languages=None, max_articles: int | None = None, seed: int = 0):
    """A LAReQA test set restricted to ``max_articles`` articles drawn with ``seed`` (all articles when None).

    Restricting by article keeps whole candidate pools per article, so the protocol is unchanged; only the pool
    is smaller (mAP is higher on a smaller pool, so compare systems on the same restriction only).
    """
    from hybridir_utils.data import load_lareqa

    ds = load_lareqa(name, languages)
    if not max_articles:
        return ds
    articles = sorted(set(ds.questions.article))
    order = np.random.default_rng(seed).permutation(len(articles))
    return ds.subset(articles=[articles[i] for i in order[:max_articles]])
