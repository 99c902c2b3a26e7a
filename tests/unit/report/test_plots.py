"""Figures: the one saving helper, inline display in a kernel, and labels / intervals readers rely on."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.container import ErrorbarContainer

from hybridir_utils.report import plots


def _figure():
    fig, ax = plt.subplots(figsize=(4, 3))
    ax.plot([0, 1, 2], [1, 0, 1])
    return fig


def test_save_figure_writes_png_and_pdf_byte_identically(tmp_path):
    fig = _figure()
    first = plots.save_figure(fig, "f", tmp_path / "a")
    second = plots.save_figure(fig, "f", tmp_path / "b")
    assert [p.suffix for p in first] == [".png", ".pdf"]
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes()  # fixed metadata: no timestamps
    height, width, _ = plt.imread(first[0]).shape
    assert plots.png_size(first[0]) == (width, height)
    plots.close(fig)


def test_show_outside_a_kernel_saves_and_closes(tmp_path):
    fig = _figure()
    assert plots.show(fig, "g", tmp_path) is None
    assert (tmp_path / "g.png").is_file() and (tmp_path / "g.pdf").is_file()
    assert not plt.fignum_exists(fig.number)


def test_show_in_a_kernel_displays_the_saved_png(tmp_path, monkeypatch):
    import IPython.display

    shown = []
    monkeypatch.setattr(plots, "_in_kernel", lambda: True)
    monkeypatch.setattr(IPython.display, "display", lambda obj: shown.append(obj))
    plots.show(_figure(), "h", tmp_path)
    (image,) = shown
    assert isinstance(image, IPython.display.Image)
    assert image.data == (tmp_path / "h.png").read_bytes()
    assert image.width == round(plots.png_size(tmp_path / "h.png")[0] * 100 / 150)  # saved at 150, shown at 100 dpi


def test_interval_bars_draw_the_computed_intervals():
    table = pd.DataFrame({"system": ["base", "trained"] * 2, "dataset": ["x", "x", "y", "y"],
                          "mean": [10.0, 6.0, 4.0, 3.0], "ci_low": [8.0, 5.0, 3.5, 2.0],
                          "ci_high": [13.0, 7.0, 4.5, 3.5]})  # fmt: skip
    fig = plots.interval_bars(table, hue="dataset", xlabel="rank distance")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "rank distance" and ax.get_ylabel() == "system"
    extents = []
    for container in [c for c in ax.containers if isinstance(c, ErrorbarContainer)]:
        segments = container.lines[2][0].get_segments()
        extents += [(s[0][0], s[1][0]) for s in segments]
    assert np.allclose(extents, list(zip(table.ci_low, table.ci_high, strict=True)))
    plots.close(fig)


def test_heatmap_colour_bar_and_bar_axes_are_labelled():
    matrix = pd.DataFrame([[0.9, 0.5], [0.4, 0.8]], index=["en", "de"], columns=["en", "de"])
    fig = plots.heatmap(matrix, cbar_label="difference in mAP")
    assert fig.axes[1].get_ylabel() == "difference in mAP"
    plots.close(fig)
    df = pd.DataFrame({"lang": ["en", "de"], "group_share": [0.4, 0.6]})
    fig = plots.bar(df, x="lang", y="group_share", xlabel="language", ylabel="share of question groups")
    assert (fig.axes[0].get_xlabel(), fig.axes[0].get_ylabel()) == ("language", "share of question groups")
    plots.close(fig)


@pytest.mark.parametrize("seeds", [1, 3])
def test_loss_band_is_explained_only_when_there_is_one(seeds):
    log = pd.DataFrame([{"step": s, "loss": 1.0 / (s + r), "run": f"hybrid/general/s{r}", "system": "hybrid/general"}
                        for s in range(1, 5) for r in range(seeds)])  # fmt: skip
    fig = plots.loss_curves(log, hue="system")
    assert ("95% CI over seeds" in fig.axes[0].get_title()) == (seeds > 1)
    plots.close(fig)
