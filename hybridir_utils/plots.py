"""Figures: one saving helper (PNG + PDF, deterministic metadata) and the few plot types the notebooks use."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # headless: papermill and CI have no display
import matplotlib.pyplot as plt
import pandas as pd
import seaborn as sns

from hybridir_utils import config, io

# Fixed metadata so re-running a profile produces byte-identical PDFs/PNGs (no timestamps, no version churn).
_META = {"pdf": {"CreationDate": None, "Producer": "hybridir", "Creator": "hybridir"}, "png": {"Software": "hybridir"}}


def theme() -> None:
    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def save_figure(fig, name: str, out_dir: str | Path | None = None, formats=("png", "pdf")) -> list[Path]:
    """Save ``fig`` as ``<out_dir>/<name>.{png,pdf}`` atomically; default folder is ``config.figures_dir()``.

    Notebooks pass their run's figure folder; the README's figures are copied from a reference run.
    """
    out = Path(out_dir) if out_dir is not None else config.figures_dir()
    paths = []
    for fmt in formats:
        target = out / f"{name}.{fmt}"
        io.atomic_write(
            target, lambda p, f=fmt: fig.savefig(p, format=f, dpi=150, bbox_inches="tight", metadata=_META[f])
        )
        paths.append(target)
    return paths


def bar(df: pd.DataFrame, x: str, y: str, hue: str | None = None, title: str = "", ax=None, **kw):
    """A labelled bar chart (counts per language, mAP per model...)."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    sns.barplot(data=df, x=x, y=y, hue=hue, ax=ax, **kw)
    ax.set_title(title)
    return ax.figure


def histogram(df: pd.DataFrame, x: str, hue: str | None = None, title: str = "", bins: int = 40, ax=None):
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    sns.histplot(data=df, x=x, hue=hue, bins=bins, element="step", stat="density", common_norm=False, ax=ax)
    ax.set_title(title)
    return ax.figure


def heatmap(matrix: pd.DataFrame, title="", fmt=".2f", vmin=None, vmax=None, ax=None, cmap="viridis", center=None):
    """An X (query language) x Y (pool language) matrix, e.g. mAP or its difference between two models.

    Pass ``center=0`` for differences so that the diverging colour map is white at zero, not at the data's middle.
    """
    ax = ax or plt.subplots(figsize=(1 + 0.6 * matrix.shape[1], 0.8 + 0.5 * matrix.shape[0]))[1]
    sns.heatmap(matrix, annot=True, fmt=fmt, vmin=vmin, vmax=vmax, cmap=cmap, center=center, ax=ax, square=True)
    ax.set_xlabel(matrix.columns.name or "passage language")
    ax.set_ylabel(matrix.index.name or "query language")
    ax.set_title(title)
    return ax.figure


def loss_curves(log: pd.DataFrame, hue: str = "run", title: str = "training loss", ax=None):
    """Loss against step, one line per run (``log`` columns: step, loss, <hue>)."""
    ax = ax or plt.subplots(figsize=(8, 4))[1]
    sns.lineplot(data=log, x="step", y="loss", hue=hue, ax=ax)
    ax.set_title(title)
    return ax.figure


def ci_plot(table: pd.DataFrame, x="delta", low="lo", high="hi", label="system", title="", ax=None):
    """Differences with 95% CIs (columns ``x``, ``low``, ``high``) as a forest plot; 0 marked."""
    ax = ax or plt.subplots(figsize=(7, 0.5 + 0.4 * len(table)))[1]
    y = range(len(table))
    # A percentile interval need not contain the point estimate (skewed bootstrap): never draw negative bars.
    err = [(table[x] - table[low]).clip(lower=0), (table[high] - table[x]).clip(lower=0)]
    ax.errorbar(table[x], y, xerr=err, fmt="o", capsize=3, color="C0")
    ax.axvline(0, color="grey", lw=1, ls="--")
    ax.set_yticks(list(y), table[label])
    ax.invert_yaxis()
    ax.set(title=title, xlabel="difference in macro mAP (95% CI)")
    return ax.figure


def sweep(table: pd.DataFrame, chosen: dict | None = None, title: str = "recipe sweep on MLQA-R dev articles"):
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


def close(fig) -> None:
    plt.close(fig)
