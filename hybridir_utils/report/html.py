"""The HTML report: each executed notebook rendered offline (no CDN, widgets kept as text) and the index page that
asks the profile's question, shows the key figures and links every notebook, written beside ``pipeline.json``."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hybridir_utils import naming, result_tables
from hybridir_utils.naming import base_label
from hybridir_utils.report.summaries import PAPER_QUESTION, QUESTION, ci_table
from hybridir_utils.utils import atomic

# Figures shown on the index, in this order (glob patterns under <run>/figures/, PNG); missing ones are skipped.
KEY_FIGURES = ("03_recipe_sweep", "03_wiseft_dev", "04_wiseft_dev_vs_test", "04_wiseft_vs_as_trained",
               "04_alpha_curve", "04_cross_vs_*", "04_article_gains_*", "05_rank_distance",
               "05_heatmap_difference", "05_mono_by_language", "05_cross_by_language")  # fmt: skip

# nbconvert's lab template without the scripts it fetches from CDNs (require.js, MathJax, mermaid, widgets): the
# report must open offline, from a mail attachment, with nothing to load and no console errors. Raw HTML cells are
# the report's own summary, so they are not passed through clean_html (which drops its embedded figures).
_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{% block rawcell scoped %}
{%- if cell.metadata.get('raw_mimetype', '').lower() in resources.get('raw_mimetypes', ['']) -%}
{{ cell.source }}
{%- endif -%}
{%- endblock rawcell %}
"""

_WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


def _html_exporter():
    import jinja2
    from nbconvert import HTMLExporter
    from traitlets.config import Config

    cfg = Config()
    cfg.TagRemovePreprocessor.remove_input_tags = ("hide-input",)
    cfg.TagRemovePreprocessor.enabled = True
    return HTMLExporter(config=cfg, extra_loaders=[jinja2.DictLoader({"report.html.j2": _TEMPLATE})],
                        template_file="report.html.j2")  # fmt: skip


def _offline(nb):
    """Drop widget views (their text/plain stays: tqdm's bar as text) and widget state: both need a CDN."""
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if _WIDGET_VIEW in output.get("data", {}):
                output["data"].pop(_WIDGET_VIEW)
    return nb


def notebook_html(nb_path: Path) -> Path:
    """``<name>.html`` beside an executed notebook: self-contained (images inline), offline, a link to the index."""
    import nbformat

    nb = _offline(nbformat.read(nb_path, as_version=4))
    nb.cells.insert(0, nbformat.v4.new_raw_cell('<p><a href="index.html">← report index</a></p>',
                                                metadata={"raw_mimetype": "text/html"}))  # fmt: skip
    body, _ = _html_exporter().from_notebook_node(nb, resources={"metadata": {"name": nb_path.stem}})
    return atomic.write_text(Path(nb_path).with_suffix(".html"), body)


def _png_tag(path: Path, alt: str) -> str:
    import base64

    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'


def question(results_dir: Path) -> str:
    """The question a profile answers: the paper's claims for a sampling profile (X-X-mono or X-Y trained and no
    domain arm), else the project's domain question."""
    path = Path(results_dir) / "comparisons.csv"
    systems = set(pd.read_csv(path, usecols=["system"]).system) if path.is_file() else set()
    samplings = {naming.sampling_of(s) for s in systems if naming.is_trained(s)}
    domain_arms = any(naming.is_trained(s) and not naming.is_general(s) for s in systems)
    return PAPER_QUESTION if samplings & {"x-x-mono", "x-y"} and not domain_arms else QUESTION


def _summary_html(out_dir: Path, results_dir: Path, record: dict, links: bool) -> str:
    """Question, answer with its CI table, key figures, and each notebook's parameters and wall time."""
    import html

    from nbconvert.filters.markdown import markdown2html_mistune

    esc = html.escape
    parts = [f"<h1>hybridir — {esc(record['profile'])} profile</h1>",
             f"<p>Commit <code>{esc(record['commit'])}</code>, finished {esc(record['finished'])}; machine: "
             + ", ".join(f"{esc(k)} {esc(str(v))}" for k, v in record["machine"].items()) + ".</p>",
             '<section id="answer"><h2>The question</h2>',
             f"<blockquote>{esc(question(results_dir))}</blockquote>"]  # fmt: skip
    answer_md = Path(out_dir) / "05_bias" / "answer.md"
    parts.append(markdown2html_mistune(answer_md.read_text(encoding="utf-8")) if answer_md.is_file()
                 else "<p>No answer yet: notebook 05 has not run.</p>")  # fmt: skip
    parts.append("<p>The same generated text, from the committed tables of every profile, is the repository's "
                 "<code>RESULTS.md</code> (<code>make results</code>).</p>")  # fmt: skip
    comparisons = Path(results_dir) / "comparisons.csv"
    base = base_label(record["parameters"].get("base_model") or "multilingual-e5-small")
    if comparisons.is_file():
        table = result_tables.read(results_dir, "comparisons")
        table = table[table["slice"] == "all"] if "slice" in table else table
        dataset = table.dataset.iloc[0]
        for reference in (base, "hybrid/general"):
            if ((table.dataset == dataset) & (table.reference == reference)).any():
                what = "macro mAP, Δ with run-level 95% CI: runs and question groups resampled"
                parts.append(f"<h3>{esc(dataset)}: against {esc(reference)} ({what})</h3>")
                parts.append(ci_table(table, dataset, reference).to_html(index=False, classes="ci-table", border=0))
    parts.append('</section><section id="figures"><h2>Key figures</h2>')
    figures = Path(out_dir) / "figures"
    for pattern in KEY_FIGURES:
        parts += [_png_tag(p, p.stem) for p in sorted(figures.glob(f"{pattern}.png"))]
    parts.append('</section><section id="notebooks"><h2>Notebooks</h2><table class="notebooks" border="0">'
                 "<tr><th>notebook</th><th>wall time</th><th>run</th><th>parameters</th></tr>")  # fmt: skip
    for stem, entry in sorted(record["notebooks"].items()):
        name = f'<a href="{stem}.html">{stem}</a>' if links else f'<a href="#{stem}">{stem}</a>'
        params = "<br>".join(f"<code>{esc(k)} = {esc(repr(v))}</code>" for k, v in sorted(entry["parameters"].items()))
        parts.append(f"<tr><td>{name}</td><td>{entry['seconds']:.0f} s</td><td>{esc(entry['commit'])}, "
                     f"{esc(entry['finished'])}</td><td>{params}</td></tr>")  # fmt: skip
    total = sum(e["seconds"] for e in record["notebooks"].values())
    parts.append(f"</table><p>Total wall time of the notebooks listed: {total / 60:.1f} min.</p></section>")
    if links:
        parts.append('<p>The whole report as one self-contained file (images embedded, to attach to an email): '
                     '<a href="report.html">report.html</a>.</p>')  # fmt: skip
    return "\n".join(parts)


_STYLE = """<style>
body{font-family:system-ui,sans-serif;max-width:72rem;margin:2rem auto;padding:0 1rem;line-height:1.45}
table{border-collapse:collapse;font-size:.9rem}td,th{border-bottom:1px solid #ddd;padding:.3rem .6rem;text-align:left;
vertical-align:top}img{max-width:100%}figure{margin:1rem 0}figcaption{color:#555;font-size:.85rem}
blockquote{border-left:4px solid #4c72b0;margin:0;padding:.2rem 1rem;background:#f5f7fb}</style>"""


def write_report(out_dir: Path, results_dir: Path, record: dict) -> Path:
    """``index.html`` (summary, links to each notebook's page) and ``report.html`` (summary and every notebook in
    one self-contained file); returns the index."""
    import nbformat

    out_dir = Path(out_dir)
    title = f"hybridir — {record['profile']} profile"
    summary = _summary_html(out_dir, results_dir, record, links=True)
    index = f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{title}</title>{_STYLE}</head><body>"
    atomic.write_text(out_dir / "index.html", index + summary + "</body></html>\n")

    combined = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_raw_cell(_summary_html(out_dir, results_dir, record, links=False),
                                    metadata={"raw_mimetype": "text/html"})  # fmt: skip
    combined.cells.append(cell)
    for stem in sorted(record["notebooks"]):
        path = out_dir / f"{stem}.ipynb"
        if not path.is_file():
            continue
        nb = _offline(nbformat.read(path, as_version=4))
        combined.metadata = combined.metadata or nb.metadata
        combined.cells.append(
            nbformat.v4.new_raw_cell(f'<hr><a id="{stem}"></a>', metadata={"raw_mimetype": "text/html"})
        )
        combined.cells += nb.cells
    for i, c in enumerate(combined.cells):
        c["id"] = f"cell-{i}"  # unique across the merged notebooks
    body, _ = _html_exporter().from_notebook_node(combined, resources={"metadata": {"name": title}})
    atomic.write_text(out_dir / "report.html", body)
    return out_dir / "index.html"
