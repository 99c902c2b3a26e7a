"""Result tables for the report: published anchors beside our numbers, and comparisons with CIs."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils import config, environment, io, tables
from hybridir_utils.bias import map_matrix
from hybridir_utils.lareqa import language_means

PAPER = "Elmahdy, Lin, Ahmad (2024), Hybrid batch training, arXiv 2408.10536"


def base_label(base_model: str) -> str:
    """The table label of the untrained base model: its last path part (``sentence-transformers/LaBSE`` -> LaBSE),
    so that a hub id's slash never reads as ``sampling/strategy``."""
    return Path(str(base_model)).name


def paper_anchors(path=None) -> pd.DataFrame:
    """The paper's macro mAP (mono / cross / multi) and rank distance per model, batch type and dataset.

    Parsed from ``data/reference/anchors.md`` (copied from the paper's Tables), one row per dataset.
    """
    text = (path or config.anchors_file()).read_text(encoding="utf-8")
    row = re.compile(r"^\| (XLM-R|LaBSE) \| (\S+) \| ([\d. /]+) \| ([\d. /]+) \| ([\d. /]+) \|$", re.M)
    rows = []
    for model, batches, xq, ml, rd in row.findall(text):
        distances = [float(v) for v in rd.split("/")]
        for i, (dataset, cell) in enumerate((("xquad-r", xq), ("mlqa-r", ml))):
            mono, cross, multi = (float(v) for v in cell.split("/"))
            rows.append((f"{model} (paper)", batches, dataset, mono, cross, multi, distances[i]))
    if not rows:
        raise ValueError(f"{path or config.anchors_file()}: no paper table rows found")
    cols = ["model", "batches", "dataset", "mono_map", "cross_map", "multi_map", "rank_distance"]
    return pd.DataFrame(rows, columns=cols)


MIN_SLICE_ARTICLES = 5  # fewer articles than this: no claim about the domain slice ("too few articles")
KEEP_MARGIN = 0.01  # monolingual mAP counts as "kept" when the CI of the change stays above -KEEP_MARGIN


def _metrics(row) -> dict:
    return io.read_json(Path(row.per_query).parent / "metrics.json")


def domain_slices(results: pd.DataFrame, setting: str = "multi") -> pd.DataFrame:
    """mAP per (system, dataset, domain), averaged over seeds; ``status`` flags slices too small for a claim.

    The unit that limits a slice is the article (questions of one article share a topic and a candidate pool), so
    a slice of fewer than ``MIN_SLICE_ARTICLES`` articles is marked "too-few-articles", whatever its query count.
    """
    frames = []
    for r in results.itertuples():
        pq = pd.read_parquet(r.per_query)
        if "domain" not in pq.columns:
            raise ValueError(f"{r.per_query}: no domain column (evaluate with domain_of=...)")
        pq = pq[pq.setting == setting]
        g = pq.groupby("domain").agg(map=("ap", "mean"), queries=("qid", "size"), groups=("group", "nunique"),
                                     articles=("article", "nunique"))  # fmt: skip
        frames.append(g.reset_index().assign(system=r.system, seed=r.seed, dataset=r.dataset))
    table = pd.concat(frames, ignore_index=True)
    out = table.groupby(["system", "dataset", "domain"], sort=False).agg(
        map=("map", "mean"), queries=("queries", "first"), groups=("groups", "first"),
        articles=("articles", "first"), seeds=("seed", "nunique"),
    )  # fmt: skip
    out["status"] = np.where(out.articles < MIN_SLICE_ARTICLES, "too-few-articles", "ok")
    return out.reset_index().assign(setting=setting)


def per_language(results: pd.DataFrame, dataset: str, base: str, seen=()) -> pd.DataFrame:
    """``results/<profile>/languages.csv``: per system (mean over its runs), query language and setting, the mAP
    (cross: the mean over pool languages of each (X, Y) pool's mAP), its difference to ``base``, and whether the
    language was ``seen`` in training. Where monolingual accuracy is lost, and whether unseen languages lose more,
    is read here, from the per-query tables, not guessed."""
    frames = []
    for r in results[results.dataset == dataset].itertuples():
        pq = pd.read_parquet(r.per_query)
        pq = pq[pq.setting.isin(("mono", "cross"))]
        pools = language_means(pq)
        frames.append(pools.rename("map").reset_index().assign(system=r.system, seed=r.seed))
    if not frames:
        raise ValueError(f"no results for dataset {dataset!r}")
    table = pd.concat(frames, ignore_index=True)
    out = table.groupby(["system", "setting", "query_lang"], sort=False).agg(
        map=("map", "mean"), runs=("seed", "nunique")
    )
    out = out.reset_index().rename(columns={"query_lang": "lang"})
    ref = out[out.system == base].set_index(["setting", "lang"])["map"]
    if ref.empty:
        raise ValueError(f"base {base!r} is not among the scored systems of {dataset!r}")
    out["delta_vs_base"] = out["map"] - ref.reindex(pd.MultiIndex.from_frame(out[["setting", "lang"]])).to_numpy()
    return out.assign(dataset=dataset, seen=out.lang.isin(list(seen)))


def truncation_table(truncation: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Share of test texts past the evaluation cut-off, per language and kind (questions, candidates)."""
    t = truncation[truncation.dataset == dataset]
    table = t.pivot_table(index="kind", columns="lang", values="share_cut", sort=True)
    return table.map(lambda v: f"{100 * v:.1f}%").reset_index()


def ci_table(comparisons: pd.DataFrame, dataset: str, reference: str, settings=("mono", "cross", "multi")):
    """One row per system: seeds, and per setting its macro mAP and "difference [95% CI]" against ``reference``.

    The table readers quote: levels and differences side by side, each difference with its interval.
    """
    c = comparisons[(comparisons.dataset == dataset) & (comparisons.reference == reference)]
    if c.empty:
        raise ValueError(f"no comparisons of {dataset!r} against {reference!r}")
    rows = {}
    for r in c[c.setting.isin(settings)].itertuples():
        row = rows.setdefault(r.system, {"system": r.system, "seeds": int(r.n_seeds)})
        row[r.setting] = round(float(r.mean), 3)
        row[f"Δ{r.setting} [95% CI]"] = f"{r.delta:+.3f} [{r.lo:+.3f}, {r.hi:+.3f}]"
    columns = ["system", "seeds", *[k for s in settings for k in (s, f"Δ{s} [95% CI]")]]
    return pd.DataFrame(list(rows.values())).reindex(columns=columns)


def language_preference(results: pd.DataFrame) -> pd.DataFrame:
    """Own-language preference in the multilingual top-k per (system, dataset): macro over query languages."""
    rows = []
    for r in results.itertuples():
        own = _metrics(r).get("own_language_preference") or {}
        rows.append({"system": r.system, "seed": r.seed, "dataset": r.dataset,
                     "own_language_preference": float(np.mean(list(own.values()))) if own else np.nan})  # fmt: skip
    table = pd.DataFrame(rows)
    return table.groupby(["system", "dataset"], sort=False).own_language_preference.mean().reset_index()


def map_matrices(results: pd.DataFrame, dataset: str, systems: list[str]) -> dict[str, pd.DataFrame]:
    """X x Y mAP matrices (seed-averaged) of two systems and their difference (second minus first)."""
    if len(systems) != 2:
        raise ValueError(f"map_matrices compares exactly two systems, got {systems}")
    out = {}
    for system in systems:
        rows = results[(results.dataset == dataset) & (results.system == system)]
        if rows.empty:
            raise ValueError(f"no {dataset} results for system {system!r}")
        mats = [map_matrix(pd.read_parquet(p)) for p in rows.per_pair]
        out[system] = sum(mats) / len(mats)
    out["difference"] = out[systems[1]] - out[systems[0]]
    return out


MIRACL_CAVEAT = (
    "MIRACL dev is not zero-shot for e5 models: multilingual-e5 was fine-tuned on MIRACL's training split (Wang et "
    "al. 2024), so multilingual-e5-small and every model trained from it have seen MIRACL's distribution (LaBSE and "
    "XLM-R have no such exposure as far as documented; BM25 is untrained). Compare the e5-based systems with each "
    "other, not with published zero-shot numbers. Every system is scored (domain variants and their size-matched "
    "controls included, each averaged over its seeds), so the table can show whether a domain-focused model keeps "
    "general monolingual retrieval (MIRACL: Wikipedia, queries and passages in one language) against its controls. "
    "It cannot show a cross-lingual or an in-domain gain (MIRACL has neither), and it carries no confidence "
    "intervals: a difference here is descriptive, not a claim."
)


MIRACL_COLUMNS = ["system", "seed", "lang", "retriever", "ndcg@10", "recall@100", "status", "n_queries",
                  "n_judged_queries", "corpus", "corpus_size"]  # fmt: skip


def miracl_levels(table: pd.DataFrame) -> pd.DataFrame:
    """``results/<profile>/miracl.csv``: one row per (system, seed, language, retriever), like ``levels.csv``.

    Errors stay as rows with status "error" (their message is in ``04_eval/miracl.parquet``).
    """
    return table.reindex(columns=MIRACL_COLUMNS)


def miracl_summary(table: pd.DataFrame, metric: str = "ndcg@10") -> pd.DataFrame:
    """``metric`` per system and language averaged over seeds, its macro over languages, and the number of seeds.

    Languages that failed to load stay as columns of NaN (named, not silently dropped) and out of the macro.
    """
    langs = list(dict.fromkeys(table.lang))
    ok = table[table.status == "ok"]
    by_seed = ok.groupby(["system", "seed", "lang"], sort=False)[metric].mean().unstack("lang").reindex(columns=langs)
    by_seed["macro"] = by_seed.mean(axis=1)
    out = by_seed.groupby(level="system", sort=False).mean()
    out["seeds"] = by_seed.groupby(level="system", sort=False).size()
    order = [x for x in dict.fromkeys(table.system) if x != "bm25"] + ["bm25"]
    return out.reindex([x for x in order if x in out.index])


# ---------------------------------------------------------------------- the shared report (index + one file)
QUESTION = (
    "Does domain adaptation inside hybrid batch training (focusing on science or news content) improve zero-shot "
    "cross-lingual retrieval while keeping monolingual accuracy?"
)
PAPER_QUESTION = (
    "Does hybrid batching do what its paper (Elmahdy, Lin, Ahmad 2024) says: the best multilingual-pool retrieval of "
    "X-X-mono, X-Y and hybrid batches, less language bias than monolingual batches, strong zero-shot retrieval in "
    "unseen languages, and a choice of α that is not critical?"
)
# Figures shown on the index, in this order (glob patterns under <run>/figures/, PNG); missing ones are skipped.
KEY_FIGURES = ("03_recipe_sweep", "04_alpha_curve", "04_cross_vs_*", "04_article_gains_*", "05_rank_distance",
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


def git_commit(root: Path | None = None) -> str:
    """Short commit of the working tree, ``+dirty`` when tracked files differ from it; "unknown" outside git."""
    import subprocess

    cwd = str(root or config.root())
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             check=True).stdout.strip()  # fmt: skip
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=cwd,
                               capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return sha + ("+dirty" if dirty else "")


def machine() -> dict:
    """What the timings were measured on: :func:`environment.describe` (device, GPU, versions, CPU model and
    flags) plus cores and memory."""
    import os

    try:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    except (ValueError, OSError, AttributeError):
        memory = "unknown"
    return {**environment.describe(), "cores": os.cpu_count(), "memory": memory}


def record_run(out_dir: Path, profile: str, params: dict, notebooks: dict[str, dict], **facts) -> dict:
    """Merge this run's notebooks into ``out_dir/pipeline.json`` and return the record.

    ``notebooks`` maps a notebook to ``{"seconds", "parameters"}``. Entries of notebooks not rerun (``--only``)
    are kept, each with the commit and time of its own run, so a partial rerun never loses earlier timings.
    ``facts`` (e.g. the cell timeout) are recorded as given.
    """
    import datetime

    path = Path(out_dir) / "pipeline.json"
    old = io.read_json(path) if path.is_file() else {}
    stamp = {"commit": git_commit(), "finished": datetime.datetime.now().isoformat(timespec="seconds")}
    entries = {**old.get("notebooks", {}), **{k: {**v, **stamp} for k, v in notebooks.items()}}
    record = {"profile": profile, "parameters": params, "machine": machine(), **stamp, "notebooks": entries,
              "seconds": {k: v["seconds"] for k, v in entries.items()}, **facts}  # fmt: skip
    io.write_json(path, record)
    return record


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
    return io.write_text(Path(nb_path).with_suffix(".html"), body)


def _png_tag(path: Path, alt: str) -> str:
    import base64

    data = base64.b64encode(path.read_bytes()).decode()
    return f'<figure><img src="data:image/png;base64,{data}" alt="{alt}"><figcaption>{alt}</figcaption></figure>'


def question(results_dir: Path) -> str:
    """The question a profile answers: the paper's claims for a sampling profile (X-X-mono or X-Y trained and no
    domain arm), else the project's domain question."""
    path = Path(results_dir) / "comparisons.csv"
    systems = set(pd.read_csv(path, usecols=["system"]).system) if path.is_file() else set()
    samplings = {s.split("/")[0] for s in systems}
    domain_arms = any("/" in s and not s.endswith("/general") for s in systems)
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
    comparisons = Path(results_dir) / "comparisons.csv"
    base = base_label(record["parameters"].get("base_model") or "multilingual-e5-small")
    if comparisons.is_file():
        table = tables.read(results_dir, "comparisons")
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
    io.write_text(out_dir / "index.html", index + summary + "</body></html>\n")

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
    io.write_text(out_dir / "report.html", body)
    return out_dir / "index.html"
