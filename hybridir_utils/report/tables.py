"""The markdown tables of RESULTS.md, each from one result table: levels, planned comparisons, interactions, per
language, the recipe sweep, the paper's rows beside ours, and the run-means-only tables of a levels-only profile."""

from __future__ import annotations

import numpy as np
import pandas as pd

from hybridir_utils import naming
from hybridir_utils.analysis import effects
from hybridir_utils.report import summaries
from hybridir_utils.report.verdicts import interaction_claimed, significant

# Multilingual candidate pools of the paper's evaluation (LAReQA): rank distance grows with the pool.
PAPER_POOL = {"xquad-r": 13014, "mlqa-r": 20534}


def markdown(table: pd.DataFrame) -> str:
    return table.to_markdown(index=False)


def _cell(row) -> str:
    return f"{row.delta:+.3f} [{row.lo:+.3f}, {row.hi:+.3f}]{'*' if significant(row) else ''}"


def levels_table(levels: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per system: runs, mono / cross / multi mAP (mean over runs), rank distance (also per pool candidate), CKA."""
    lv = levels[levels.dataset == dataset]
    wide = lv.pivot_table(index="system", columns="setting", values="map", sort=False)
    multi = lv[lv.setting == "multi"].groupby("system", sort=False)
    out = pd.DataFrame({"runs": multi.seed.nunique(), "mono": wide["mono"], "cross": wide["cross"],
                        "multi": wide["multi"], "rank distance": multi.rank_distance.mean(),
                        "rank dist. / pool": multi.rank_distance.mean() / multi.pool_size.mean()})  # fmt: skip
    if "cka" in lv:
        out["CKA to base"] = multi.cka.mean()
    return out.round({"mono": 3, "cross": 3, "multi": 3, "rank distance": 1, "rank dist. / pool": 4, "CKA to base": 3})


def comparison_table(c: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per planned (system, reference): Δ [95% run-level CI] per setting (* = claimed), and on cross-lingual mAP the
    run SDs of both sides and the minimum detectable effect."""
    c = c[(c.dataset == dataset) & (c.slice == "all")]
    rows = {}
    for r in c.itertuples():
        row = rows.setdefault((r.system, r.reference), {"system": r.system, "reference": r.reference})
        row[r.setting] = _cell(r)
        if r.setting == "cross":
            row["run SD (cross)"] = " / ".join("—" if np.isnan(v) else f"{v:.3f}" for v in (r.run_sd, r.ref_run_sd))
            row["MDE (cross)"] = f"{r.mde:.3f}"
    columns = ["system", "reference", "mono", "cross", "multi", "run SD (cross)", "MDE (cross)"]
    return pd.DataFrame(list(rows.values())).reindex(columns=columns)


def interaction_table(inter: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per topical pool: gain on its topic's test articles, elsewhere, and the difference [95% CI]."""
    t = inter[inter.dataset == dataset]
    cell = lambda r: (f"{r.interaction:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]{'*' if interaction_claimed(r) else ''}"  # noqa: E731
                      if r.status == "ok" else r.status)  # fmt: skip
    articles = t.n_target_articles.astype(str) + " / " + t.n_other_articles.astype(str)
    return pd.DataFrame({"system": t.system, "control": t.reference, "topic": t.topic, "setting": t.setting,
                         "articles (topic / other)": articles,
                         "gain on topic": t.gain_target.round(3), "gain elsewhere": t.gain_other.round(3),
                         "interaction [95% CI]": [cell(r) for r in t.itertuples()],
                         "p_perm": t.p_perm.round(4), "MDE": t.mde.round(3)})  # fmt: skip


def language_table(languages: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Mono and cross mAP per query language (mean over runs), one row per system; unseen languages marked."""
    rows = languages[languages.dataset == dataset]
    unseen = set(rows.loc[~rows.seen.astype(bool), "lang"])
    table = rows.assign(column=[f"{s} {lang}{' (unseen)' if lang in unseen else ''}"
                                for s, lang in zip(rows.setting, rows.lang, strict=True)])  # fmt: skip
    order = [f"{s} {lang}{' (unseen)' if lang in unseen else ''}" for s in ("mono", "cross")
             for lang in sorted(set(rows.lang), key=lambda x: (x in unseen, x))]  # fmt: skip
    wide = table.pivot_table(index="system", columns="column", values="map", sort=False)[order].round(3)
    return wide.join(rows.groupby("system", sort=False).runs.max()).reset_index()


def recipe_table(recipe: pd.DataFrame) -> pd.DataFrame:
    """Dev "mono / cross" mAP per (scale, lr) and step; the chosen cell is bold."""
    runs = recipe[recipe.step > 0].copy()
    runs["cell"] = runs.dev_mono.map("{:.3f}".format) + " / " + runs.dev_cross.map("{:.3f}".format)
    runs.loc[runs.chosen.astype(bool), "cell"] = "**" + runs.cell + "**"
    table = runs.pivot_table(index=["scale", "lr"], columns="step", values="cell", aggfunc="first")
    return table.rename(columns=lambda s: f"{s} steps").reset_index()


def paper_table(levels: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """The paper's rows beside ours; rank distance also divided by the multilingual pool size (pools differ)."""
    paper = summaries.paper_anchors()
    paper = paper[paper.dataset == dataset].assign(pool=PAPER_POOL[dataset])
    ours = levels_table(levels, dataset).reset_index()
    pool = levels[(levels.dataset == dataset) & (levels.setting == "multi")].pool_size.mean()
    ours = pd.DataFrame({"model": "ours: " + ours.system, "batches": "", "mono_map": ours.mono, "cross_map": ours.cross,
                         "multi_map": ours.multi, "rank_distance": ours["rank distance"], "pool": pool})  # fmt: skip
    table = pd.concat([paper.drop(columns="dataset"), ours], ignore_index=True)
    table["rank distance / pool"] = (table.rank_distance / table.pool).round(4)
    return table.round({"mono_map": 3, "cross_map": 3, "multi_map": 3, "rank_distance": 1})


def seed_range_table(levels: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Per system and setting: mean mAP over seeds and the lowest-highest seed, for tables without intervals."""
    lv = levels[levels.dataset == dataset]
    stats = lv.groupby(["system", "setting"], sort=False)["map"].agg(["mean", "min", "max", "count"])
    cells = stats.apply(lambda r: f"{r['mean']:.3f} ({r['min']:.3f}–{r['max']:.3f})", axis=1).unstack("setting")
    seeds = stats["count"].groupby(level="system", sort=False).max().rename("seeds")
    return pd.concat([seeds, cells[["mono", "cross", "multi"]]], axis=1).reset_index()


def run_means_table(levels: pd.DataFrame, dataset: str, base: str) -> pd.DataFrame:
    """The planned comparisons from the run means alone (``effects.run_means_comparisons``): Δ of the run means,
    the permutation p on them, and the MDE of the runs, per setting."""
    from hybridir_utils.analysis.effects import comparison_plan, run_means_comparisons

    lv = levels[levels.dataset == dataset]
    trained = [s for s in lv.system.unique() if naming.is_trained(s)]
    table = run_means_comparisons(lv, comparison_plan(trained, base=base))
    table["cell"] = [f"{r.delta:+.3f} (p_perm {r.p_perm:.2g}; MDE {r.mde:.3f})" for r in table.itertuples()]
    wide = table.pivot_table(index=["system", "reference"], columns="setting", values="cell", aggfunc="first",
                             sort=False)  # fmt: skip
    runs = table.groupby(["system", "reference"], sort=False)[["n_seeds", "n_ref_seeds"]].first()
    out = pd.concat([runs.astype(int).astype(str).agg(" vs ".join, axis=1).rename("runs"), wide], axis=1)
    return out.reindex(columns=["runs", "mono", "cross", "multi"]).reset_index()


def interaction_lines(inter: pd.DataFrame, dataset: str) -> list[str]:
    """The domain-specificity table, when the profile trains domain arms (a sampling profile has none)."""
    if not (inter.dataset == dataset).any():
        return []
    return ["Domain specificity (gain of a topical pool over its random control on its topic's test articles minus "
            "elsewhere; seeds and articles resampled; * = Holm over these rows < 0.05, CI above 0, permutation "
            "agrees):", "", markdown(interaction_table(inter, dataset)), ""]  # fmt: skip


def alpha_lines(levels: pd.DataFrame, dataset: str) -> list[str]:
    """The α curve (``effects.alpha_curve``) as a table, when the profile trains three α values or more."""
    curve = effects.alpha_curve(levels, dataset)
    if curve.empty:
        return []
    curve = curve.assign(cell=[f"{m:.1f} [{lo:.1f}, {hi:.1f}]" if k == "rank distance" else
                               f"{m:.3f} [{lo:.3f}, {hi:.3f}]" for k, m, lo, hi in
                               zip(curve.measure, curve["mean"], curve.lo, curve.hi, strict=True)])  # fmt: skip
    wide = curve.pivot_table(index=["alpha", "sampling"], columns="measure", values="cell", aggfunc="first")
    wide = wide[["mono", "cross", "multi", "rank distance"]].join(curve.groupby(["alpha", "sampling"]).runs.max())
    return ["The α curve (run mean [95% t interval over the runs]; α = share of monolingual batches: 0 is X-Y, "
            "0.5 hybrid, 1 X-X-mono; each point against hybrid is a row of the comparisons above):", "",
            markdown(wide.reset_index()), ""]  # fmt: skip


def language_lines(t: dict[str, pd.DataFrame], dataset: str) -> list[str]:
    """The per-language table of the results section, when notebook 05 has written ``languages.csv``."""
    if "languages" not in t or not (t["languages"].dataset == dataset).any():
        return []
    return ["Per query language (macro mAP, mean over runs; cross: mean over the other pool languages; unseen: no "
            "training pair in that language):", "", markdown(language_table(t["languages"], dataset)), ""]  # fmt: skip
