"""The experiment grid and its bookkeeping: which models notebook 03 trains and notebook 04 scores.

A run is (sampling preset, domain strategy, seed). Its label — ``hybrid/general/s0``,
``hybrid/science-in-domain/s0`` — names its model folder, its evaluation folder and its column in every table.
A *system* is a label without the seed: results of one system are averaged over its seeds.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from hybridir_utils import io
from hybridir_utils.data import load_lareqa
from hybridir_utils.parameters import BATCH_POLICIES
from hybridir_utils.pools import CONTROL_PREFIX, domain_pool, matched_pool, parse_domain_run
from hybridir_utils.report import base_label
from hybridir_utils.sampling import PRESETS, HybridBatchSampler, SamplerConfigError
from hybridir_utils.stats import cluster_bootstrap, holm
from hybridir_utils.taxonomy import DomainError
from hybridir_utils.training import pairs_fingerprint, train

BASELINES = ("multilingual-e5-small", "use-multilingual")
log = logging.getLogger(__name__)


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

    @classmethod
    def from_system(cls, system: str) -> Run:
        """The inverse of ``system``: ``"hybrid/news-size-random"`` -> Run("hybrid", "news", "size-random")."""
        sampling, _, strategy = str(system).partition("/")
        if strategy in ("", "general"):
            return cls(sampling)
        domain, _, mode = strategy.partition("-")
        return cls(sampling, domain, mode)


def grid(samplings, seeds, domain_runs=(), domain_seeds=(0,), domain_sampling: str = "hybrid") -> list[Run]:
    """The main comparison (every sampling x seed, general pool) plus domain-focused runs of one sampling."""
    unknown = [s for s in [*samplings, domain_sampling] if s not in PRESETS]
    if unknown:
        raise ExperimentError(f"unknown sampling preset(s) {unknown}; presets: {sorted(PRESETS)}")
    if not samplings or not seeds:
        raise ExperimentError("the grid needs at least one sampling and one seed")
    runs = [Run(s, seed=int(seed)) for s in samplings for seed in seeds]
    for spec in domain_runs or ():
        try:
            domain, mode = parse_domain_run(spec)
        except DomainError as exc:
            raise ExperimentError(str(exc)) from exc
        runs += [Run(domain_sampling, domain, mode, int(seed)) for seed in domain_seeds]
    return runs


def training_pool(run: Run, pairs: pd.DataFrame, weight: float, batch_size: int):
    """The run's ``DomainPool`` (None for the general pool); a size-matched control is redrawn per seed."""
    if run.mode == "general":
        return None
    if run.mode.startswith(CONTROL_PREFIX):
        return matched_pool(pairs, run.domain, run.mode[len(CONTROL_PREFIX) :], seed=run.seed, batch_size=batch_size)
    return domain_pool(pairs, run.domain, run.mode, weight, batch_size)


def infeasible_runs(runs: list[Run], pairs: pd.DataFrame, batch_size: int, weight: float = 3.0) -> dict[str, str]:
    """{run label: why} for every run whose pool cannot fill a batch of ``batch_size`` (empty: all can).

    Builds each run's pool and the sampler that training would build, so a monolingual batch that one language of
    a small domain pool cannot fill is found here, before any training, not after the runs before it.
    """
    why = {}
    for run in runs:
        try:
            pool = training_pool(run, pairs, weight, batch_size)
            options = {"alpha": PRESETS[run.sampling], **(pool.sampler_kwargs if pool else {})}
            HybridBatchSampler(pool.pairs if pool else pairs, batch_size, seed=run.seed, **options)
        except (SamplerConfigError, DomainError) as exc:
            why[run.label] = str(exc)
    return why


def grid_batch_size(runs: list[Run], pairs: pd.DataFrame, batch_size: int, weight: float = 3.0,
                    policy: str = "strict") -> int:  # fmt: skip
    """The batch size every run of the grid trains with, checked for every run before any training starts.

    ``strict``: ``batch_size`` itself, or one error listing every run that cannot fill it. ``shrink``: the largest
    size <= ``batch_size`` that every run can fill, so that all systems of a comparison share one batch size (a
    smaller batch for all rather than a different one per pool, which would confound the domain effect).
    """
    if policy not in BATCH_POLICIES:
        raise ExperimentError(f"batch_policy {policy!r} is not one of {BATCH_POLICIES}")
    why = infeasible_runs(runs, pairs, batch_size, weight)
    if not why:
        return batch_size
    if policy == "strict":
        listed = "; ".join(f"{label}: {reason}" for label, reason in why.items())
        raise ExperimentError(f"batch_size={batch_size} cannot be filled by {len(why)} run(s) ({listed})")
    short = [r for r in runs if r.label in why]  # a run that fills a batch also fills any smaller one
    low, high = 0, batch_size - 1
    while low < high:
        mid = (low + high + 1) // 2
        low, high = (mid, high) if not infeasible_runs(short, pairs, mid, weight) else (low, mid - 1)
    if low == 0:
        raise ExperimentError(f"no batch size can be filled by run(s) {sorted(why)}: {next(iter(why.values()))}")
    log.warning(
        "batch_size %d cannot be filled by %s: every run trains with batch size %d", batch_size, sorted(why), low
    )
    return low


def train_grid(runs: list[Run], pairs: pd.DataFrame, base: dict, out_dir: Path, weight: float = 3.0) -> pd.DataFrame:
    """Train every run on ``pairs`` (with a ``domain`` column) and write ``out_dir/runs.csv``.

    ``base`` holds the shared ``TrainConfig`` fields (the recipe); each run adds its preset, seed and pool. A run
    whose model already exists with the same config is reused (``training.train`` checks the config).
    """
    rows, t0 = [], time.perf_counter()
    for k, run in enumerate(tqdm(runs, desc="training runs", unit="run"), 1):
        done = time.perf_counter() - t0
        eta = f", grid eta {done / (k - 1) * (len(runs) - k + 1):.0f} s" if k > 1 else ""
        print(f"run {k}/{len(runs)} {run.label}: starting (grid elapsed {done:.0f} s{eta})", flush=True)
        pool = training_pool(run, pairs, weight, base["batch_size"])
        table = pool.pairs if pool else pairs
        cfg = {**base, "preset": run.sampling, "seed": run.seed, "output_dir": str(out_dir / "models" / run.label),
               "extra": {"pairs_sha1": pairs_fingerprint(table)}}  # fmt: skip
        cfg.update(pool.sampler_kwargs if pool else {})
        start = time.perf_counter()
        model_dir = train(cfg, pairs=table, callbacks=[run_progress(f"run {k}/{len(runs)} {run.label}")])
        rows.append({**asdict(run), "system": run.system, "label": run.label, "model_dir": str(model_dir),
                     "groups": int(table.group.nunique()), "pairs": len(table),
                     "seconds": round(time.perf_counter() - start, 1)})  # fmt: skip
    table = pd.DataFrame(rows)
    io.atomic_write(out_dir / "runs.csv", lambda p: table.to_csv(p, index=False))
    return table


def training_table(runs: pd.DataFrame) -> pd.DataFrame:
    """``results/<profile>/training.csv``: per run its pool, steps, batch size, final loss and where it ran (from each
    model's ``train_info.json``); no wall times, so the table is the same on every rerun of the same machine kind."""
    rows = []
    for r in runs.itertuples():
        info = io.read_json(Path(r.model_dir) / "train_info.json")
        cfg = io.read_json(Path(r.model_dir) / "train_config.json")
        env = info.get("environment", {})
        rows.append({"system": r.system, "label": r.label, "seed": int(r.seed), "groups": int(r.groups),
                     "pairs": int(r.pairs), "batch_size": cfg["batch_size"], "steps": info["steps"],
                     "train_loss": info["train_loss"], "precision": env.get("precision"),
                     "device": env.get("gpu") or env.get("device")})  # fmt: skip
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


def systems_to_evaluate(runs: pd.DataFrame | None, baselines=BASELINES, base_model: str | None = None) -> pd.DataFrame:
    """The untrained base model first, then the other baselines, then every trained run: label, system, seed, source.

    ``base_model`` is the model the runs fine-tuned (default: the first baseline); it is added when it is not a
    baseline already, so the base of every comparison is the model that was trained, never a stand-in.
    """
    base_model = baselines[0] if base_model is None else base_model
    frozen = [base_model, *[b for b in baselines if base_label(b) != base_label(base_model)]]
    rows = [{"label": base_label(b), "system": base_label(b), "seed": 0, "source": b} for b in frozen]
    if runs is not None:
        rows += [{"label": r.label, "system": r.system, "seed": int(r.seed), "source": r.model_dir}
                 for r in runs.itertuples()]  # fmt: skip
    return pd.DataFrame(rows)


def levels(results: pd.DataFrame) -> pd.DataFrame:
    """``results/<profile>/levels.csv``: one row per (system, seed, dataset, setting); rank distance on multi."""
    rows = []
    for r in results.itertuples():
        for setting in ("mono", "cross", "multi"):
            rows.append({"system": r.system, "seed": int(r.seed), "dataset": r.dataset, "setting": setting,
                         "map": getattr(r, f"{setting}_map"), "r1": getattr(r, f"{setting}_r1"),
                         "r10": getattr(r, f"{setting}_r10"),
                         "rank_distance": r.rank_distance if setting == "multi" else np.nan, "drift": r.drift,
                         "pool_size": r.pool_size if setting == "multi" else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


def per_query_matrix(results: pd.DataFrame, dataset: str, setting: str, metric: str = "ap"):
    """Per system, a [seeds x queries] array of ``metric`` on one query order, and the queries' attributes.

    A query key is ``<qid>@<pool>``. The attributes hold each query's stratum, the (query language, pool language)
    pair (means are macro means over pairs, as in LAReQA), its question group (the unit of independence: one group
    is asked in every language, so it appears in every stratum), its article and, when scored, its domain.
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
    attrs = pd.DataFrame({"stratum": (first.query_lang + ">" + first.pool_lang).to_numpy(),
                          "group": first.group.to_numpy(), "article": first.article.to_numpy(),
                          "domain": first["domain"].to_numpy() if "domain" in first else None})  # fmt: skip
    systems = {}
    for (system, _seed), t in sorted(tables.items(), key=lambda kv: kv[0][1]):
        systems.setdefault(system, []).append(t.loc[index, metric].to_numpy(float))
    return {k: np.vstack(v) for k, v in systems.items()}, attrs


def compare(results, dataset, setting, reference, metric="ap", n_boot=5000, seed=0, articles=None, cluster="group",
            matrix=None):  # fmt: skip
    """``stats.cluster_bootstrap`` of every system against ``reference`` on one dataset and setting.

    ``articles`` restricts the comparison to queries of those articles (a slice); ``cluster`` is the resampled
    unit (``group``, or ``article`` for slices, where questions of one article are not independent). ``matrix``:
    the ``per_query_matrix`` of (dataset, setting, metric) when the caller already has it (reading every system's
    per-query table again for each reference cost minutes on 11-language pools).
    """
    scores, attrs = matrix if matrix is not None else per_query_matrix(results, dataset, setting, metric)
    keep = attrs.article.isin(articles).to_numpy() if articles is not None else np.ones(len(attrs), bool)
    scores = {name: mat[:, keep] for name, mat in scores.items()}
    table = cluster_bootstrap(scores, attrs.stratum[keep].to_numpy(), attrs[cluster][keep].to_numpy(), reference,
                              n_boot=n_boot, seed=seed)  # fmt: skip
    return table.assign(dataset=dataset, setting=setting, metric=metric, reference=reference)


def comparison_plan(trained, base: str, general: str = "hybrid/general") -> pd.DataFrame:
    """The (system, reference) pairs the answer states, and why; Holm corrects over all of them together.

    Every trained system against the untrained base; every other system against general hybrid training; each
    in-domain model and each other-domain control against the random size-matched control of its target domain.
    """
    trained = list(dict.fromkeys(trained))
    rows = [(s, base, "vs base") for s in trained]
    rows += [(s, general, "vs general") for s in trained if s != general and general in trained]
    for s in trained:
        run = Run.from_system(s)
        control = Run("hybrid", run.domain, f"{CONTROL_PREFIX}random").system
        if (run.mode == "in-domain" or (run.mode.startswith(CONTROL_PREFIX) and s != control)) and control in trained:
            rows.append((s, control, "vs size-matched random"))
    return pd.DataFrame(rows, columns=["system", "reference", "question"])


def slice_plan(plan: pd.DataFrame, slices: dict[str, set], min_articles: int) -> list[tuple[str, str, str, set]]:
    """(system, reference, slice, articles) for the domain effect (in-domain vs size-matched random) on slices.

    ``slices`` maps a name to its test articles: ``domain:<d>`` slices are compared only for the model focused on
    ``d``; any other slice for every in-domain model. A slice of fewer than ``min_articles`` articles is left out.
    """
    effect = plan[(plan.question == "vs size-matched random") & plan.system.str.endswith("-in-domain")]
    rows = []
    for r in effect.itertuples():
        target = Run.from_system(r.system).domain
        for name, articles in slices.items():
            if len(articles) >= min_articles and (not name.startswith("domain:") or name == f"domain:{target}"):
                rows.append((r.system, r.reference, name, set(articles)))
    return rows


def test_slices(ds, domain_of: dict, exploration: int | None = None) -> dict[str, set]:
    """Article sets of the test set to repeat the domain effect on: each domain's articles and, with
    ``exploration``, the articles outside the seeded subset that earlier exploratory runs were scored on (the runs
    that suggested the hypothesis): a check that the effect is not an artefact of the articles that raised it."""
    articles = set(ds.questions.article)
    out = {f"domain:{d}": {a for a in articles if domain_of[a] == d} for d in sorted({domain_of[a] for a in articles})}
    if exploration:
        seen = set(evaluation_set(ds.name, ds.languages[:1], exploration).questions.article)
        out[f"outside-exploration-{exploration}"] = articles - seen
    return out


def comparisons(results, plan, datasets, settings=("mono", "cross", "multi"), n_boot=5000, slices=None):
    """``results/<profile>/comparisons.csv``: each planned pair per dataset and setting (cluster: question group),
    plus the domain effect on ``slices`` of the first dataset (cross setting, cluster: article); Holm-adjusted p
    over every row together."""
    frames, matrices = [], {}
    for dataset in datasets:
        for setting in settings:
            matrices[dataset, setting] = matrix = per_query_matrix(results, dataset, setting)
            for reference, wanted in plan.groupby("reference", sort=False):
                table = compare(results, dataset, setting, reference, n_boot=n_boot, matrix=matrix)
                frames.append(table.merge(wanted, on=["system", "reference"]).assign(slice="all", cluster="group"))
    for system, reference, name, articles in slices or []:
        matrix = matrices.get((datasets[0], "cross"))
        table = compare(results, datasets[0], "cross", reference, n_boot=n_boot, articles=articles, cluster="article",
                        matrix=matrix)  # fmt: skip
        frames.append(table[table.system == system].assign(question="vs size-matched random", slice=name,
                                                           cluster="article"))  # fmt: skip
    out = pd.concat(frames, ignore_index=True)
    out["p_holm"] = holm(out.p.to_numpy())
    keep = ["system", "reference", "question", "dataset", "setting", "slice", "mean", "delta", "lo", "hi", "p",
            "p_holm", "n_seeds", "seed_delta_min", "seed_delta_max", "cluster", "n_clusters"]  # fmt: skip
    return out[keep]


# Decimals per float column (others: 4, below every difference the report states); None keeps a column as is
# (learning rates and scales must never round to 0).
ROUND = {"rank_distance": 2, "drift": 6, "lr": None, "scale": None}


def write_table(results_dir: Path, name: str, table: pd.DataFrame) -> Path:
    """``<results_dir>/<name>.csv`` atomically, floats rounded so a fresh run on another CPU gives the same file."""
    floats = table.select_dtypes("float").columns
    table = table.assign(**{c: table[c].round(ROUND.get(c, 4)) for c in floats if ROUND.get(c, 4) is not None})
    path = Path(results_dir) / f"{name}.csv"
    io.atomic_write(path, lambda p: table.to_csv(p, index=False))
    return path


def evaluation_set(name: str, languages=None, max_articles: int | None = None, seed: int = 0):
    """A LAReQA test set restricted to ``max_articles`` articles drawn with ``seed`` (all articles when None).

    Restricting by article keeps whole candidate pools per article, so the protocol is unchanged; only the pool
    is smaller (mAP is higher on a smaller pool, so compare systems on the same restriction only).
    """
    ds = load_lareqa(name, languages)
    if not max_articles:
        return ds
    articles = sorted(set(ds.questions.article))
    order = np.random.default_rng(seed).permutation(len(articles))
    return ds.subset(articles=[articles[i] for i in order[:max_articles]])
