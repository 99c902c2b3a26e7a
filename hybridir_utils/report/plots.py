"""Figures: one saving helper (PNG + PDF, deterministic metadata) and the few plot types the notebooks use.

Notebooks call :func:`show`: it saves through :func:`save_figure` and displays the saved PNG inline, so the
executed notebook and its HTML carry exactly the picture that was written to ``figures/``.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import matplotlib

if "ipykernel" not in sys.modules:
    matplotlib.use("Agg")  # scripts and CI have no display; a kernel keeps its inline backend so figures show
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import seaborn as sns

from hybridir_utils.utils import atomic, paths

SAVE_DPI = 150
DISPLAY_DPI = 100  # inline size: the saved PNG shown at 100 dpi, like matplotlib's inline backend
# Fixed metadata so re-running a profile produces byte-identical PDFs/PNGs (no timestamps, no version churn).
_META = {"pdf": {"CreationDate": None, "Producer": "hybridir", "Creator": "hybridir"}, "png": {"Software": "hybridir"}}


def theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def save_figure(fig, name: str, out_dir: str | Path | None = None, formats=("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``<out_dir>/<name>.{png,pdf}`` atomically; default folder is ``paths.figures_dir()``.

    Notebooks pass their run's figure folder; the figures of RESULTS.md are copied from a reference run.
    """
    out = Path(out_dir) if out_dir is not None else paths.figures_dir()
    saved = []
    for fmt in formats:
        target = out / f"{name}.{fmt}"
        atomic.atomic_write(
            target, lambda p, f=fmt: fig.savefig(p, format=f, dpi=SAVE_DPI, bbox_inches="tight", metadata=_META[f])
        )
        saved.append(target)
    return saved


def _in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, "kernel")


def png_size(path: str | Path) -> tuple[int, int]:
    """Width and height in pixels, read from the PNG header (IHDR)."""
    head = Path(path).read_bytes()[:24]
    if head[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    return struct.unpack(">II", head[16:24])


def show(fig, name: str, out_dir: str | Path | None = None) -> None:
    """Save ``fig`` with :func:`save_figure`, display the saved PNG inline (inside a kernel), then close it.

    Returns None so a cell that ends with it shows the figure, not a list of paths; closing stops the inline
    backend from showing the same figure a second time.
    """
    paths = save_figure(fig, name, out_dir)
    close(fig)
    if _in_kernel():
        from IPython.display import Image, display

        png = next(p for p in paths if p.suffix == ".png")
        width = round(png_size(png)[0] * DISPLAY_DPI / SAVE_DPI)
        display(Image(data=png.read_bytes(), format="png", width=width, metadata={"filename": png.name}))


def bar(
    df: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ax=None, xlabel=None, ylabel=None, **kw
):
    """A bar chart (counts per language, mAP per model...); axis labels default to the column names."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    sns.barplot(data=df, x=x, y=y, hue=hue, ax=ax, **kw)
    ax.set(title=title, xlabel=xlabel or x, ylabel=ylabel or y)
    return ax.figure


def interval_bars(table: pd.DataFrame, value="mean", low="ci_low", high="ci_high", label="system", hue=None,
                  title="", xlabel=None, ax=None):  # fmt: skip
    """Horizontal bars of ``value`` per ``label`` (grouped by ``hue``) with their computed 95% CIs as error bars.

    For estimates that come with an interval (e.g. rank distance): a bar without its CI hides how sure it is.
    """
    groups = list(dict.fromkeys(table[hue])) if hue else [None]
    labels = list(dict.fromkeys(table[label]))
    height = 0.8 / len(groups)
    ax = ax or plt.subplots(figsize=(8, 0.6 + 0.35 * len(labels) * len(groups)))[1]
    for i, group in enumerate(groups):
        rows = table if group is None else table[table[hue] == group]
        rows = rows.set_index(label).reindex(labels)
        y = [k + (i - (len(groups) - 1) / 2) * height for k in range(len(labels))]
        err = [(rows[value] - rows[low]).clip(lower=0), (rows[high] - rows[value]).clip(lower=0)]
        ax.barh(y, rows[value], height=height, xerr=err, capsize=3, color=f"C{i}", label=group)
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel or f"{value} (error bars: 95% CI)", ylabel=label)
    if hue:
        ax.legend(title=hue, fontsize=8)
    return ax.figure


def histogram(df: pd.DataFrame, x: str, hue: str | None = None, title: str = "", bins: int = 40, ax=None, xlabel=None):
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    sns.histplot(data=df, x=x, hue=hue, bins=bins, element="step", stat="density", common_norm=False, ax=ax)
    ax.set(title=title, xlabel=xlabel or x, ylabel="density (each group sums to 1)")
    return ax.figure


def heatmap(matrix: pd.DataFrame, title="", fmt=".2f", vmin=None, vmax=None, ax=None, cmap="viridis", center=None,
            cbar_label="macro mAP"):  # fmt: skip
    """An X (query language) x Y (pool language) matrix, e.g. mAP or its difference between two models.

    Pass ``center=0`` for differences so that the diverging colour map is white at zero, not at the data's middle;
    ``cbar_label`` names what the colours measure.
    """
    ax = ax or plt.subplots(figsize=(1.8 + 0.6 * matrix.shape[1], 0.8 + 0.5 * matrix.shape[0]))[1]
    sns.heatmap(matrix, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, center=center, ax=ax, square=True,
                cbar_kws={"label": cbar_label})  # fmt: skip
    ax.set_xlabel(matrix.columns.name or "passage language")
    ax.set_ylabel(matrix.index.name or "query language")
    ax.set_title(title)
    return ax.figure


def loss_curves(log: pd.DataFrame, hue: str = "run", title: str = "training loss", ax=None):
    """Loss against step, one line per ``hue`` (``log`` columns: step, loss, <hue>, optionally run).

    When a ``hue`` value holds several runs (seeds), the line is their mean and the band its 95% CI (seaborn's
    bootstrap over runs at each step); the title says so, since an unexplained band reads as noise.
    """
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    sns.lineplot(data=log, x="step", y="loss", hue=hue, errorbar=("ci", 95), ax=ax)
    several = "run" in log and hue != "run" and len(log) and log.groupby(hue).run.nunique().max() > 1
    note = "\nline: mean over seeds, band: 95% CI over seeds" if several else ""
    ax.set(title=title + note, xlabel="training step", ylabel="InfoNCE loss (MNRL)")
    return ax.figure


def ci_plot(table: pd.DataFrame, x="delta", low="lo", high="hi", label="system", title="", ax=None,
            xlabel="difference in macro mAP (95% CI)"):  # fmt: skip
    """Differences with 95% CIs (columns ``x``, ``low``, ``high``) as a forest plot; 0 marked."""
    ax = ax or plt.subplots(figsize=(7, 0.5 + 0.4 * len(table)))[1]
    y = range(len(table))
    # A percentile interval need not contain the point estimate (skewed bootstrap): never draw negative bars.
    err = [(table[x] - table[low]).clip(lower=0), (table[high] - table[x]).clip(lower=0)]
    ax.errorbar(table[x], y, xerr=err, fmt="o", capsize=3, color="C0")
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(list(y), table[label])
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel, ylabel=label)
    return ax.figure


def article_gains(table: pd.DataFrame, title: str = "", xlabel: str = "gain over the random control (seed mean)"):
    """One row per topical pool, one dot per test article (``effects.article_gains``): on-topic articles coloured,
    the others grey, each side's mean as a bar. A domain effect separates the two colours; a pool effect shifts both.
    """
    systems = list(dict.fromkeys(table.system))
    fig, ax = plt.subplots(figsize=(8, 0.8 + 0.7 * len(systems)))
    jitter = (pd.Series(range(len(table)), index=table.index) % 7 - 3) * 0.04
    y = table.system.map({s: i for i, s in enumerate(systems)}) + jitter
    on = table.in_target.astype(bool)
    ax.scatter(table.gain[~on], y[~on], s=14, color="grey", alpha=0.6, label="other articles")
    ax.scatter(table.gain[on], y[on], s=22, color="C3", label="articles of the pool's topic")
    for i, s in enumerate(systems):
        rows = table[table.system == s]
        for side, colour in ((True, "C3"), (False, "grey")):
            mean = rows.gain[rows.in_target.astype(bool) == side].mean()
            ax.plot([mean, mean], [i - 0.3, i + 0.3], color=colour, lw=2)
    ax.axvline(0, color="black", lw=1, ls="--")
    labels = [f"{s}\n(topic: {table[table.system == s].topic.iloc[0]})" for s in systems]
    ax.set_yticks(range(len(systems)), labels)
    ax.invert_yaxis()
    ax.set(title=title, xlabel=xlabel)
    ax.legend(fontsize=8, loc="best")
    return fig


def sweep(table: pd.DataFrame, chosen: dict | None = None, title: str = "recipe sweep on the dev"):
    """Dev mono and cross mAP against steps, one line per (scale, lr); the untrained model as a dashed line.

    Both panels share the step axis so the trade-off (cross gained, mono kept or lost) is read side by side.
    """
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    runs = table[table.step > 0]
    runs = runs.assign(setting="scale " + runs.scale.map("{:g}".format) + ", lr " + runs.lr.map("{:g}".format))
    base = table[table.step == 0].iloc[0]
    for ax, col, name in zip(axes, ("dev_mono", "dev_cross"), ("monolingual", "cross-lingual"), strict=True):
        sns.lineplot(data=runs, x="step", y=col, hue="setting", marker="o", ax=ax, legend=ax is axes[1])
        ax.axhline(base[col], color="grey", ls="--", lw=1, label="untrained")
        if chosen:
            ax.plot(chosen["max_steps"], chosen[col], marker="*", ms=16, color="black", ls="", label="chosen")
        ax.set(title=f"{name} mAP (dev)", xlabel="training steps", ylabel="macro mAP")
    axes[1].legend(fontsize=8, loc="best")
    fig.suptitle(title)
    return fig


def alpha_curve(curve: pd.DataFrame, title: str = "the α curve (run means, 95% intervals over runs)"):
    """``effects.alpha_curve``: one panel per measure against α (0 = X-Y, 1 = X-X-mono), run-level intervals.
    A flat stretch is where the intervals overlap the hybrid point (α 0.5)."""
    measures = list(dict.fromkeys(curve.measure))
    fig, axes = plt.subplots(1, len(measures), figsize=(3.6 * len(measures), 3.6))
    for ax, measure in zip(np.atleast_1d(axes), measures, strict=True):
        rows = curve[curve.measure == measure]
        err = [(rows["mean"] - rows.lo).fillna(0), (rows.hi - rows["mean"]).fillna(0)]
        ax.errorbar(rows.alpha, rows["mean"], yerr=err, fmt="o-", capsize=3, color="C0")
        ax.axvline(0.5, color="grey", lw=1, ls="--")
        ylabel = "rank distance (multilingual pool)" if measure == "rank distance" else "macro mAP"
        ax.set(title=measure, xlabel="α (share of monolingual batches)", ylabel=ylabel)
    fig.suptitle(title)
    fig.tight_layout()
    return fig


def wiseft_curves(dev: pd.DataFrame, test: pd.DataFrame | None = None, margin: float = 0.01, title: str | None = None):
    """The λ curves (``training.wiseft.curve``): monolingual and cross-lingual mAP minus the base's against λ, with
    their paired intervals; the dev curve (which chose λ, starred) and, when given, the test-side curve drawn after
    the choice, so a reader sees whether the dev tracks the test. The dashed line is the monolingual margin."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    curves = [("dev (chooses λ)", dev, "C0")] + ([("test (diagnostic)", test, "C3")] if test is not None else [])
    for ax, setting, name in zip(axes, ("mono", "cross"), ("monolingual", "cross-lingual"), strict=True):
        for label, table, colour in curves:
            t = table.sort_values("lam")
            ax.plot(
                t.lam, t[f"{setting}_delta"], marker="o", color=colour, label=f"{label}, {int(t.runs.iloc[0])} run(s)"
            )
            ax.fill_between(t.lam, t[f"{setting}_lo"], t[f"{setting}_hi"], color=colour, alpha=0.2)
            pick = t[t.chosen.astype(bool)]
            ax.plot(pick.lam, pick[f"{setting}_delta"], marker="*", ms=16, color="black", ls="")
        ax.axhline(0, color="grey", lw=1)
        if setting == "mono":
            ax.axhline(-margin, color="grey", lw=1, ls="--", label=f"margin −{margin:g}")
        ax.set(title=f"{name} mAP minus the base", xlabel="λ (0 = base, 1 = as trained)", ylabel="difference in mAP")
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title or "WiSE-FT: change from the base against λ (paired, 95% run-level intervals)")
    fig.tight_layout()
    return fig


def close(fig) -> None:
    plt.close(fig)
