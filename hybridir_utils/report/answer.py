"""The research question's answer, written only from the result tables ``results/<profile>/*.csv``.

    python -m hybridir_utils.report answer --profile cpu            # print the profile's RESULTS.md section
    python -m hybridir_utils.report answer --profile cpu --write    # rewrite it in RESULTS.md (between the markers)
    python -m hybridir_utils.report answer --profile cpu --check    # fail if RESULTS.md differs from the tables
    python -m hybridir_utils.report answer --short --write          # the README's three-line answer

Rules, fixed before any result was seen:
- intervals and p-values are run-level (``stats.run_bootstrap``: seeds and question groups resampled); a
  difference is claimed only when its Holm-adjusted p (over every comparison in ``comparisons.csv``) is below
  ``ALPHA``, its 95% CI excludes zero and the exact permutation test on the run means agrees (p_perm < ``ALPHA``);
  otherwise it is "no detectable difference", stated with the minimum detectable effect of the design;
- the in-domain model is compared with the *random* pool of the same number of question groups and the same
  article structure (same recipe, a new draw of both per seed), not with general training; a **domain effect**
  is claimed only when, in addition, the gain is larger on the test articles of that domain than elsewhere (the
  interaction, Holm over ``interactions.csv``); a gain without it is a pool effect;
- monolingual accuracy counts as kept when the CI of the change stays above ``-KEEP_MARGIN`` (non-inferiority shown);
  an interval that reaches below it is "not shown kept", not "lost"; a null is "not shown to", never "does not";
- WiSE-FT's λ is chosen on the zero-shot dev articles by ``training.wiseft.choose_lambda``; the test-side curve is
  a diagnostic only (the ``wiseft-test`` profile);
- a row whose CI excludes zero and whose permutation test agrees but which fails Holm is *suggestive*, listed as
  such and never claimed;
- a domain slice of the test set is discussed only with at least ``summaries.MIN_SLICE_ARTICLES`` articles.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml

from hybridir_utils import naming, result_tables
from hybridir_utils.analysis import claims
from hybridir_utils.analysis.rules import ALPHA, KEEP_MARGIN
from hybridir_utils.errors import AnswerError
from hybridir_utils.report import readme, summaries
from hybridir_utils.report.tables import (
    alpha_lines,
    comparison_table,
    interaction_lines,
    language_lines,
    levels_table,
    markdown,
    paper_table,
    recipe_table,
    run_means_table,
    seed_range_table,
)  # fmt: skip
from hybridir_utils.report.verdicts import (
    against_base,
    fmt,
    fmt_interaction,
    interaction_claimed,
    interval,
    kept_text,
    meets_target,
    row_of,
    significant,
    target_met,
    target_text,
    verdict,
)  # fmt: skip
from hybridir_utils.report.wiseft_text import (
    dev_name,
    interpolation_lines,
    render_wiseft_test,
    wiseft_lines,
    wiseft_test_lines,
)  # fmt: skip
from hybridir_utils.stats.runs import smallest_permutation_p
from hybridir_utils.utils import atomic, paths

TABLES = ("levels", "comparisons", "interactions", "slices", "recipe", "training", "truncation")
OPTIONAL = ("languages", "wiseft", "wiseft_test")  # written by notebook 05, 03 and the wiseft-test profile
BOTH_DOMAINS = "domains"  # the section answering "science or news" from both domain profiles
# Tables of an earlier design, kept under their own name: the profile whose params they were run with.
EARLIER_DESIGNS = {"cpu-mlqa-dev": "cpu", "sampling-mlqa-dev": "sampling", "confirm-mlqa-dev": "confirm"}


def load(results_dir: str | Path) -> dict[str, pd.DataFrame]:
    """The profile's result tables, checked (``result_tables.read``: one error naming the file and what is wrong), and
    the optional ones that are there (the claims on unseen languages read ``languages``)."""
    found = {name: result_tables.read(results_dir, name) for name in TABLES}
    for name in OPTIONAL:
        if (Path(results_dir) / f"{name}.csv").is_file():
            found[name] = result_tables.read(results_dir, name)
    return found


def _targets(c: pd.DataFrame) -> list[str]:
    return naming.target_domains(c.system.unique())


def _arm_mean(levels: pd.DataFrame, system: str, column: str) -> float:
    return float(levels[(levels.system == system) & (levels.setting == "multi")][column].mean())


def recipe_lines(recipe: pd.DataFrame) -> list[str]:
    """Which recipe every system trains with, chosen on held-out training articles."""
    runs, base = recipe[recipe.step > 0], recipe[recipe.step == 0].iloc[0]
    best = recipe[recipe.chosen.astype(bool)]
    if best.empty:
        raise AnswerError("recipe.csv marks no chosen row")
    b = best.iloc[0]
    # the dev noise beside the rule's margin (tables written before the standard errors were recorded: none)
    noise = ("" if "dev_mono_se" not in base or pd.isna(base.dev_mono_se) else f" (standard error of the dev mono "
             f"level {base.dev_mono_se:.3f} untrained, {b.dev_mono_se:.3f} chosen: the SE of a level, not of the "
             f"difference the rule's margin of {KEEP_MARGIN} applies to)")  # fmt: skip
    grid = ", ".join(f"{name} {{{', '.join(f'{v:g}' for v in sorted(runs[col].unique()))}}}"
                     for name, col in (("scales", "scale"), ("learning rates", "lr"), ("steps", "step")))  # fmt: skip
    dev = dev_name(recipe)
    return [f"**Recipe, chosen on the dev ({dev}; never the test set).** Sweep over {grid}. Chosen: "
            f"MNRL scale {b.scale:g} (temperature {1 / b.scale:g}), learning rate {b.lr:g}, {int(b.step)} steps "
            f"(rule: {b.rule}). On dev it moves monolingual mAP {base.dev_mono:.3f} → {b.dev_mono:.3f} and "
            f"cross-lingual mAP {base.dev_cross:.3f} → {b.dev_cross:.3f}{noise}."]  # fmt: skip


def base_lines(c: pd.DataFrame, base: str, general: str) -> list[str]:
    """Does training beat the untrained model at all? The target: cross CI above zero, mono within -0.01."""
    cross, mono = row_of(c, general, base, "cross"), row_of(c, general, base, "mono")
    if cross is None or mono is None:
        return []
    cross_verdict = verdict(cross)
    gain = cross_verdict == "higher"
    why = " (not claimable with these runs)" if cross_verdict.startswith("not claimable") else ""
    return [f"**Against the untrained `{base}`.** `{general}`: cross-lingual {fmt(cross)} ({cross_verdict}); "
            f"monolingual {fmt(mono)} ({verdict(mono)}). Cross-lingual above the base by the claim rule: "
            f"{'met' if gain else 'not met' + why}; monolingual within −{KEEP_MARGIN} of the base (CI lower bound "
            f"above −{KEEP_MARGIN}, at run level): {kept_text(mono)}."]  # fmt: skip


def target_lines(c: pd.DataFrame, base: str, curve: bool = True) -> list[str]:
    """The project's target as non-inferiority, per shipped system against the base: a cross-lingual gain whose
    run-level interval is above 0 and a monolingual difference whose interval's lower end is above ``-KEEP_MARGIN``."""
    rows = against_base(c, base)
    if not rows:
        return []
    met = [s for s, x, m in rows if meets_target(x, m)]
    cells = "; ".join(f"`{s}` cross {x.delta:+.3f} [{x.lo:+.3f}, {x.hi:+.3f}], mono {m.delta:+.3f} [{m.lo:+.3f}, "
                      f"{m.hi:+.3f}] ({kept_text(m)})" for s, x, m in rows)  # fmt: skip
    head = (f"**The target** (a cross-lingual gain over `{base}` whose run-level interval is above 0, with monolingual "
            f"accuracy shown kept: the interval of its difference above −{KEEP_MARGIN}): ")  # fmt: skip
    head += (f"met by {', '.join(f'`{s}`' for s in met)}." if met else "met by no trained system; the measured "
             "trade-off" + (" (the WiSE-FT λ curve below)" if curve else "") + " is the answer.")  # fmt: skip
    return [f"{head} {cells}."]


def suggestive_lines(c: pd.DataFrame, inter: pd.DataFrame) -> list[str]:
    """Rows that would be read as findings if only one test had been run: CI excluding 0 and the permutation test
    agreeing, but Holm not; and interactions whose CI excludes 0 without a claim. Listed so nothing is left out."""
    rows = c[(c.slice == "all") & ~c.apply(significant, axis=1) & ((c.lo > 0) | (c.hi < 0))]
    rows = rows[rows.p_perm.notna() & (rows.p_perm < ALPHA)] if len(rows) else rows  # fails only Holm
    found = [f"- `{r.system}` vs `{r.reference}`, {r.setting.replace('_', ' ')}: {fmt(r)}" for r in rows.itertuples()]
    inters = inter[(inter.status == "ok") & ((inter.lo > 0) | (inter.hi < 0))]
    inters = inters[~inters.apply(interaction_claimed, axis=1)] if len(inters) else inters
    found += [f"- interaction `{r.system}` ({r.topic}) vs `{r.reference}`, {r.setting}: {fmt_interaction(r)}"
              for r in inters.itertuples()]  # fmt: skip
    if not found:
        return []
    return ["**Suggestive, not claimed** (the 95% CI excludes 0 and the permutation test on run means agrees, but the "
            "Holm-adjusted p does not pass; interactions whose CI excludes 0 without a claim: leads for a new, "
            "pre-registered test, not findings):",
            *found, ""]  # fmt: skip


def _interaction(inter: pd.DataFrame, system: str, reference: str, setting: str = "cross"):
    hit = inter[(inter.system == system) & (inter.reference == reference) & (inter.setting == setting)]
    return hit.iloc[0] if len(hit) else None


def _structure(training: pd.DataFrame, system: str) -> str:
    t = training[training.system == system]
    if t.empty:
        return "not trained"
    return (
        f"{t.groups.mean():.0f} groups in {t.articles.mean():.0f} articles, same-article negatives "
        f"{t.same_article_negatives.mean():.3f}"
    )


def domain_lines(c, inter, levels, training, target: str, general: str) -> list[str]:
    """One target domain: the arm against its random control (per setting), whether the gain is specific to the
    domain's articles (interaction), the pool-size and other-topic checks, pool structure and CKA per arm."""
    inside, rnd = f"hybrid/{target}-in-domain", f"hybrid/{target}-size-random"
    others = sorted(s for s in c.system.unique() if s.startswith(f"hybrid/{target}-size-") and s != rnd)
    lines = [f"- **{target}** (`{inside}` against `{rnd}`: the same number of question groups and the same article "
             "structure, drawn at random; both redrawn per seed):"]  # fmt: skip
    for setting in ("cross", "mono", "multi"):
        row = row_of(c, inside, rnd, setting)
        if row is not None:
            lines.append(f"  - {setting}: {fmt(row)} → {verdict(row)}")
    i_row = _interaction(inter, inside, rnd)
    if i_row is not None:
        specific = "domain-specific" if interaction_claimed(i_row) else "not shown to be domain-specific"
        lines.append(f"  - is the cross-lingual gain about {target}? {fmt_interaction(i_row)} → {specific}")
    checks = [(rnd, general, "pool-size effect (random pool vs general)"), (inside, general, "in-domain vs general")]
    checks += [(o, rnd, f"other-topic control `{o}` vs random pool") for o in others]
    for system, reference, what in checks:
        row = row_of(c, system, reference, "cross")
        if row is not None:
            lines.append(f"  - {what}, cross: {fmt(row)} → {verdict(row)}")
    arms = (inside, rnd, *others, general)
    lines.append("  - pools: " + "; ".join(f"`{s}` {_structure(training, s)}" for s in arms))
    cka = ", ".join(f"`{s}` {_arm_mean(levels, s, 'cka'):.3f}" for s in arms)
    return [*lines, f"  - linear CKA to the base on the test pool (1 = the base's geometry kept): {cka}"]


def sampling_lines(c: pd.DataFrame, levels: pd.DataFrame, general: str) -> list[str]:
    """The paper's comparison, when this profile trains it: X-X-mono and X-Y batches against hybrid ones."""
    lines = []
    for system in ("x-x-mono/general", "x-y/general"):
        rows = {k: row_of(c, system, general, k) for k in ("mono", "cross", "multi")}
        if all(r is not None for r in rows.values()):
            rd = levels[(levels.system == system) & (levels.setting == "multi")].rank_distance.mean()
            lines.append(f"- `{system}` against `{general}`: " + "; ".join(
                f"{k} {fmt(r)} → {verdict(r)}" for k, r in rows.items()) + f"; rank distance {rd:.1f}")  # fmt: skip
    if lines:
        rd = levels[(levels.system == general) & (levels.setting == "multi")].rank_distance.mean()
        lines = ["**Sampling** (the paper's question; `" + general + f"` rank distance {rd:.1f}):", *lines, ""]
    return lines


def _domain_verdict(c, inter, t: str, brief: bool = False) -> str:
    inside, rnd = f"hybrid/{t}-in-domain", f"hybrid/{t}-size-random"
    cross = row_of(c, inside, rnd, "cross")
    if cross is None:
        return f"{t}: no random control was trained, so no domain effect can be stated"
    i_row = _interaction(inter, inside, rnd)
    specific = i_row is not None and interaction_claimed(i_row)
    what = {"higher": "higher than", "lower": "lower than"}.get(verdict(cross), "no detectable difference from")
    text = (
        f"{t} focus: cross-lingual mAP {what} its random control ({cross.delta:+.3f} [{cross.lo:+.3f}, {cross.hi:+.3f}]"
        f"; MDE {cross.mde:.3f} before Holm"
        + (f", {cross.mde_holm:.3f} under it)" if "mde_holm" in cross and pd.notna(cross.mde_holm) else ")")
    )
    if verdict(cross) == "higher":
        text += ", larger on its own articles: a domain effect" if specific else (
            ", but not larger on its own articles than elsewhere: a pool effect, not a domain effect")  # fmt: skip
    mono = row_of(c, inside, rnd, "mono")
    if mono is not None:
        text += f"; monolingual {kept_text(mono)} against that control" + (
            "" if brief else " (not against the base: below)"
        )
    return text


def verdict_line(c: pd.DataFrame, inter: pd.DataFrame, targets: list[str]) -> str:
    """The one-sentence answer per target domain: the arm against its random control on cross-lingual mAP, with the
    smallest difference the design could detect, whether the gain is domain-specific, and monolingual accuracy."""
    if not targets:
        return "**Answer.** This profile trains no domain-focused model, so it does not address the domain question."
    return "**Answer.** " + "; ".join(_domain_verdict(c, inter, t) for t in targets) + "."


def design_line(c: pd.DataFrame, training: pd.DataFrame) -> str:
    """How many runs each arm has, and what the design could detect (the MDE range of the cross rows)."""
    seeds = training.groupby("system").seed.nunique()
    cross = c[(c.setting == "cross") & (c.slice == "all")]
    return (
        f"**Design.** {len(seeds)} trained systems, {seeds.min()}–{seeds.max()} runs each (each run a new seed "
        f"and, for domain arms, a new pool draw); intervals include run-to-run variance. On cross-lingual mAP "
        f"the planned comparisons detect differences of {cross.mde.min():.3f}–{cross.mde.max():.3f} with 80% "
        f"power (two-sided 5%, before Holm){_holm_mde(c, cross)}; a smaller true difference would usually be missed."
    )


def _holm_mde(c: pd.DataFrame, cross: pd.DataFrame) -> str:
    """The detectable range at the claim rule's level (``mde_holm``: α over the number of rows), when recorded."""
    if "mde_holm" not in cross or not cross.mde_holm.notna().any():
        return ""
    return (f"; at the claim rule's level (5% divided by the {len(c[c.slice == 'all'])} Holm-adjusted rows) "
            f"{cross.mde_holm.min():.3f}–{cross.mde_holm.max():.3f}")  # fmt: skip


def answer(tables: dict[str, pd.DataFrame], dataset: str, base: str, general: str = "hybrid/general") -> str:
    """The answer in plain words (markdown), from the result tables alone."""
    c = tables["comparisons"]
    c = c[c.dataset == dataset]
    if c.empty:
        raise AnswerError(f"comparisons.csv has no rows for dataset {dataset!r}")
    inter = tables["interactions"]
    inter = inter[inter.dataset == dataset]
    targets = _targets(c)
    levels = tables["levels"][tables["levels"].dataset == dataset]
    lines = [verdict_line(c, inter, targets), ""]
    if {claims.MONO, claims.CROSS} & set(c.system):  # a sampling profile: the paper's claims come first
        lines += ["**The paper's claims** (`hybridir_utils.analysis.claims`; each verdict by the rules above, the rows "
                  "it comes from, and where our setting differs from the paper's):", "",
                  markdown(claims.claims_table(tables, dataset)), ""]  # fmt: skip
    has_curve = "wiseft" in tables and "mono_lo" in tables["wiseft"]
    lines += [*target_lines(c, base, has_curve), "", design_line(c, tables["training"]), "",
              *recipe_lines(tables["recipe"]), "", *wiseft_lines(tables.get("wiseft")), *base_lines(c, base, general),
              "", *interpolation_lines(c)]  # fmt: skip
    lines += sampling_lines(c, levels, general)
    lines += suggestive_lines(c, inter)
    if targets:
        lines += ["**The domain effect**, per target domain (difference in macro mAP [95% run-level CI], Holm-adjusted "
                  "p, permutation p on run means, run SDs of the two arms, minimum detectable effect):"]  # fmt: skip
    for t in targets:
        lines += domain_lines(c, inter, levels, tables["training"], t, general)
    return "\n".join(lines) + "\n"


def render(results_dir: str | Path, dataset: str = "xquad-r", base: str = "multilingual-e5-small") -> str:
    """A profile's RESULTS.md section: the answer, then the tables it is written from."""
    t = load(results_dir)
    cutoff = int(t["truncation"].cutoff.iloc[0])
    name = Path(results_dir).name
    earlier = "" if name not in EARLIER_DESIGNS else (
        " **An earlier design**: recipe and WiSE-FT's λ chosen on held-out MLQA-R articles, the test all XQuAD-R "
        f"articles (the `{EARLIER_DESIGNS[name]}` profile's params of then).")  # fmt: skip
    return "\n".join([
        f"Generated from `results/{name}/*.csv` ({dataset}, zero-shot).{earlier}", "",
        answer(t, dataset, base),
        "Levels (macro mAP, mean over runs; rank distance in the multilingual pool; CKA: linear CKA of the model's "
        "and the base's candidate embeddings):", "",
        markdown(levels_table(t["levels"], dataset).reset_index()), "",
        "Planned comparisons (Δ macro mAP [95% run-level CI]; * = claimed: Holm-adjusted p < 0.05 over every row, "
        "the CI excludes 0 and the permutation test on run means agrees; run SD of system / reference; MDE: the "
        "difference detected with 80% power):", "",
        markdown(comparison_table(t["comparisons"], dataset)), "",
        *interaction_lines(t["interactions"], dataset),
        *alpha_lines(t["levels"], dataset),
        *language_lines(t, dataset),
        f"Every system is scored at one cut-off, {cutoff} tokens; share of test texts longer than that:", "",
        markdown(summaries.truncation_table(t["truncation"], dataset)), "",
        f"Recipe sweep on the dev ({dev_name(t['recipe'])}; dev mono / cross mAP; the chosen setting in bold):", "",
        markdown(recipe_table(t["recipe"])), "",
        *wiseft_test_lines(t.get("wiseft_test")),
        "The paper's models beside ours. Its pools hold 11 languages and 11 parallel answers per question, ours fewer: "
        "rank distance (highest minus lowest rank of the parallel answers) grows with both, so even divided by the "
        "pool it compares orderings within each source, not values across them:", "",
        markdown(paper_table(t["levels"], dataset)),
    ]) + "\n"  # fmt: skip


def _smallest_p_text(levels: pd.DataFrame, dataset: str) -> str:
    runs = levels[levels.dataset == dataset].groupby("system").seed.nunique()
    trained = runs[[naming.is_trained(s) for s in runs.index]]
    n = int(trained.min())
    return (
        f"{n} runs against {n} cannot give a p below {smallest_permutation_p(n, n):.2g}, {n} runs against the "
        f"one-run base not below {smallest_permutation_p(n, 1):.2g}"
    )


def _facts(folder: Path, training: pd.DataFrame | None) -> tuple[str, str]:
    """The machine line and the training table of a levels-only section (either may not have been recorded)."""
    env_path = folder / "environment.json"
    machine = "machine not recorded"
    if env_path.is_file():
        env = atomic.read_json(env_path)
        machine = f"{env['gpu'] or env['device']}, {env['precision']}, torch {env['torch']}, commit {env.get('commit')}"
    if training is None:
        return machine, "Training facts were not recorded for this profile."
    per_run = training.groupby("system", sort=False).agg(runs=("seed", "size"), batch=("batch_size", "first"),
                                                         steps=("steps", "first"), pairs=("pairs", "first"),
                                                         train_loss=("train_loss", "mean"))  # fmt: skip
    where = (f"{', '.join(sorted(set(training.precision.astype(str))))} on "
             f"{', '.join(sorted(set(training.device.astype(str))))}")  # fmt: skip
    return machine, f"Training (per system; {where}):\n\n" + per_run.round(4).reset_index().to_markdown(index=False)


def render_levels_only(results_dir: str | Path, dataset: str = "xquad-r", base: str = "multilingual-e5-small") -> str:
    """The section of a profile without ``comparisons.csv`` (its per-query tables were not kept): levels with run
    ranges, the planned comparisons on run means alone (permutation p and MDE), recipe, training and machine, and in
    words that no difference is claimed: the question-group level of the uncertainty is missing."""
    folder = Path(results_dir)
    levels, recipe = result_tables.read(folder, "levels"), result_tables.read(folder, "recipe")
    training = result_tables.read(folder, "training") if (folder / "training.csv").is_file() else None
    machine, training_text = _facts(folder, training)
    return "\n".join([
        f"Generated from `results/{folder.name}/*.csv` ({dataset}, all {levels.pool_size.max():.0f} candidates of the "
        f"multilingual pool; {machine}).", "",
        f"**No comparison of this profile is claimed**: `results/{folder.name}/` holds one macro mAP per run but no "
        "per-query tables, so the two-level intervals (runs and question groups) cannot be computed. The ranges "
        "below are over runs only.", "",
        "Macro mAP, mean over runs (lowest–highest run):", "", markdown(seed_range_table(levels, dataset)), "",
        "The planned comparisons on run means alone: Δ of the means, the exact permutation p on the runs (sign flips "
        "against the one-run base) and the difference a Welch t test on these runs detects with 80% power. The "
        f"question-group sampling is not in it, so these p-values are a floor on the uncertainty, never a claim "
        f"({_smallest_p_text(levels, dataset)}):", "", markdown(run_means_table(levels, dataset, base)), "",
        f"Recipe sweep on the dev ({dev_name(recipe)}; dev mono / cross mAP; the chosen setting in bold):", "",
        markdown(recipe_table(recipe)), "", training_text, "",
        "The paper's models beside ours (the paper's models are larger and trained far longer, on other data: "
        "compare orderings, not levels):", "", markdown(paper_table(levels, dataset)),
    ]) + "\n"  # fmt: skip


def section(profile: str) -> str:
    """The RESULTS.md section of a profile, from its result tables: the full answer when notebook 04's comparisons
    are there, the test-side λ curve for a profile that only scores it, else the levels-only section (run means, no
    claim). An earlier design's tables (``EARLIER_DESIGNS``) are read with the params of the profile that ran them."""
    if profile == BOTH_DOMAINS:
        return both_domains()
    folder = paths.results_dir(profile)
    params = paths.params_dir() / f"{EARLIER_DESIGNS.get(profile, profile)}.yaml"
    if (folder / "wiseft_test.csv").is_file() and not (folder / "training.csv").is_file():
        return render_wiseft_test(folder)
    if not params.is_file() or not folder.is_dir():
        known = sorted(p.name for p in folder.parent.iterdir() if (paths.params_dir() / f"{p.name}.yaml").is_file())
        raise AnswerError(f"no results for profile {profile!r} ({params if not params.is_file() else folder} not "
                          f"found); profiles with results: {known}")  # fmt: skip
    base = naming.base_label(yaml.safe_load(params.read_text())["base_model"])
    return (
        render(folder, base=base) if (folder / "comparisons.csv").is_file() else render_levels_only(folder, base=base)
    )


# The research question's two domains and the profile that measures each at run level.
DOMAIN_PROFILES = {"news": "cpu", "science": "science"}


def _domain_tables(profile: str) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    folder = paths.results_dir(profile)
    if not (folder / "comparisons.csv").is_file():
        return None
    t = load(folder)
    return (t["comparisons"][t["comparisons"].dataset == "xquad-r"],
            t["interactions"][t["interactions"].dataset == "xquad-r"])  # fmt: skip


def domains_table(profiles: dict[str, str] = DOMAIN_PROFILES) -> pd.DataFrame:
    """Both domains of the question in one table: in-domain vs its random control (cross, mono), the interaction,
    each with its interval, MDE and verdict; a domain whose profile has not run says so."""
    rows = []
    for domain, profile in profiles.items():
        found = _domain_tables(profile)
        inside, rnd = naming.in_domain(domain), naming.control(domain)
        if found is None or row_of(found[0], inside, rnd, "cross") is None:
            rows.append(
                {
                    "domain": domain,
                    "profile": profile,
                    "row": "—",
                    "Δ [95% CI]": "not run",
                    "MDE (before / under Holm)": "",
                    "verdict": f"not measured (results/{profile} absent)",
                }
            )
            continue  # fmt: skip
        c, inter = found
        for setting in ("cross", "mono"):
            r = row_of(c, inside, rnd, setting)
            holm = f" / {r.mde_holm:.3f}" if "mde_holm" in r and pd.notna(r.mde_holm) else ""
            judged = verdict(r) if setting == "cross" else kept_text(r)
            rows.append({"domain": domain, "profile": profile, "row": f"{setting}: in-domain vs random control",
                         "Δ [95% CI]": interval(r.delta, r.lo, r.hi), "MDE (before / under Holm)":
                         f"{r.mde:.3f}{holm}", "verdict": judged})  # fmt: skip
        i_row = _interaction(inter, inside, rnd)
        if i_row is not None:
            rows.append({"domain": domain, "profile": profile, "row": "interaction (own articles minus others)",
                         "Δ [95% CI]": interval(i_row.interaction, i_row.lo, i_row.hi) if i_row.status == "ok"
                         else i_row.status, "MDE (before / under Holm)": f"{i_row.mde:.3f}",
                         "verdict": "domain-specific" if interaction_claimed(i_row) else "not shown"})  # fmt: skip
    return pd.DataFrame(rows)


def domain_sentences(profiles: dict[str, str] = DOMAIN_PROFILES, brief: bool = True) -> list[str]:
    """One sentence per domain of the question (a domain not yet measured says so), and whether the two agree."""
    lines, verdicts = [], {}
    for domain, profile in profiles.items():
        found = _domain_tables(profile)
        if found is None or domain not in _targets(found[0]):
            lines.append(f"{domain} focus: not measured at run level yet (the `{profile}` profile's tables are not "
                         "committed)")  # fmt: skip
            continue
        lines.append(_domain_verdict(*found, domain, brief=brief))
        judged = verdict(row_of(found[0], naming.in_domain(domain), naming.control(domain), "cross"))
        verdicts[domain] = judged if judged in ("higher", "lower") else "no claim"
    if len(set(verdicts.values())) > 1:  # one domain claimed, the other not (or the other way round)
        lines.append("the two domains disagree: " + "; ".join(f"{d} {v}" for d, v in verdicts.items()))
    return lines


def short(profile: str = "cpu") -> str:
    """The README's answer in three lines: one per domain of the question, then the monolingual target (from the
    ``profile``'s tables and each committed domain profile's); the long form is RESULTS.md."""
    lines, met = [f"- {line}." for line in domain_sentences()], []
    for p in [q for q in dict.fromkeys([profile, *DOMAIN_PROFILES.values()]) if paths.results_dir(q).is_dir()]:
        c = load(paths.results_dir(p))["comparisons"].query("dataset == 'xquad-r'")
        base = naming.base_label(yaml.safe_load((paths.params_dir() / f"{p}.yaml").read_text())["base_model"])
        met += target_met(c, base, p)
    lines.append(f"- Monolingual accuracy kept within −{KEEP_MARGIN} with a cross-lingual gain over the base: "
                 f"{target_text(met)}"
                 " Details, intervals and what it does not show: [RESULTS.md](RESULTS.md).")  # fmt: skip
    return "\n".join(lines) + "\n"


def both_domains() -> str:
    """RESULTS.md's opening: the question's two domains in one table and one sentence each."""
    return "\n".join(["**Science or news?** " + "; ".join(domain_sentences(brief=False)) + ".", "",
                      markdown(domains_table()), ""]) + "\n"  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    return readme.command(argv, section, name="answer", doc=__doc__, short=short)
