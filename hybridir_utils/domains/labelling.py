"""Topic domains of articles and queries, language-independent, for domain-focused training and evaluation.

The taxonomy (the domains, what each covers, the descriptions that define them): :mod:`domains.taxonomy`.

Labelling method (the ``method`` column names it): zero-shot embedding classification with a multilingual encoder
(the offline multilingual-e5-small), so it works in every language. A domain is represented by (a) the centroid of
several short descriptions written in eight languages (``taxonomy.DESCRIPTIONS``, "query: " prompt) and (b) the
centroid of hand-written multilingual *seed titles* of typical articles (``data/domains/seeds.csv``, "passage: "
prompt; none is an XQuAD-R or MLQA-R title). A text's score for a domain is the mean of its cosines to the two
centroids; scores become probabilities with the softmax temperature e5 was trained with (0.01). An article is
represented by one text per language (its title + the first two sentences of its first paragraph, "passage: ") plus
its title alone; the title row carries ``TITLE_WEIGHT`` of the vote because the first paragraph is often not the
article's lead (XQuAD-R keeps a sample of paragraphs). The rows are combined by their mean probability
(``combine="mean"``, default) or a majority vote (``"majority"``), giving a confidence and a top-1/top-2 margin.
Human corrections in ``data/domains/overrides.csv`` are applied last and marked ``source="override"``.

Design choices (title row, centroids, equal weights; later, person/entertainment/event descriptions and seeds)
were made on a separate hand-labelled development set of 91 MLQA-R titles (``data/domains/mlqa_dev.csv``: a random
sample of 55, plus a second random sample of 36 labelled after the first method was seen). The hand-labelled audit
set ``data/domains/xquad_gold.csv`` (the 48 XQuAD-R titles) only *measures* agreement (``audit``); it never built
prototypes or chose settings. The alternatives measured there and dropped (descriptions or seeds alone, unequal
weights, mean of the k nearest seeds instead of the seed centroid) were classifier options (see git history).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.data.lareqa_loader import article_key
from hybridir_utils.domains.taxonomy import CLASS_NAMES, DESCRIPTIONS, DOMAIN_NAMES, check_domain, require_columns
from hybridir_utils.errors import DomainError
from hybridir_utils.models.fingerprints import encoder_name
from hybridir_utils.retrieval.embeddings import encode_cached
from hybridir_utils.utils import paths

TITLE_WEIGHT = 0.5  # share of an article's vote given to its title-only row
DESC_WEIGHT = 0.5  # share of a domain's score from its descriptions (the rest: its seed titles)
UNCERTAIN_MARGIN = 0.05  # top-1 minus top-2 probability below which a label is flagged uncertain
TEMPERATURE = 0.01  # the contrastive temperature multilingual-e5 was trained with
MIN_EVAL_QUERIES = 30


# ---------------------------------------------------------------------------------------------------- files


def _read_domain_csv(path, default: str, columns: tuple[str, ...], what: str) -> pd.DataFrame:
    """A committed domain table (``data/domains/<default>`` unless ``path``), all strings, required columns checked."""
    path = Path(path) if path is not None else paths.domains_dir() / default
    if not path.is_file():
        raise FileNotFoundError(f"domain {what} file {path} not found")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    require_columns(table, columns, f"{what} file {path}")
    return table


def load_seeds(path: str | Path | None = None) -> pd.DataFrame:
    """The hand-written multilingual seed titles (domain, lang, title); none is an XQuAD-R/MLQA-R title."""
    seeds = _read_domain_csv(path, "seeds.csv", ("domain", "lang", "title"), "seed")
    for d in seeds.domain.unique():
        check_domain(d, allow_other=False)
    return seeds


def load_gold(path: str | Path | None = None) -> pd.DataFrame:
    """The hand-labelled XQuAD-R audit set (article key, domain, rationale)."""
    gold = _read_domain_csv(path, "xquad_gold.csv", ("article", "domain", "rationale"), "gold")
    for d in gold.domain.unique():
        check_domain(d)
    gold["article"] = gold.article.map(article_key)
    if gold.article.duplicated().any():
        twice = gold.article[gold.article.duplicated()].tolist()
        raise DomainError(f"gold file {path} lists article(s) twice: {twice}")
    return gold


def load_overrides(path: str | Path | None = None) -> pd.DataFrame:
    """Human corrections (article, domain, note); an absent file means no corrections."""
    path = Path(path) if path is not None else paths.domains_dir() / "overrides.csv"
    if not path.is_file():
        return pd.DataFrame({"article": pd.Series(dtype=str), "domain": pd.Series(dtype=str)})
    over = pd.read_csv(path, dtype=str, keep_default_na=False, comment="#")
    require_columns(over, ("article", "domain"), f"overrides file {path}")
    for d in over.domain.unique():
        check_domain(d)
    over["article"] = over.article.map(article_key)
    return over


# ---------------------------------------------------------------------------------------------------- texts


def _first_sentences(candidates: pd.DataFrame, n_sentences: int) -> pd.DataFrame:
    """Per (article, lang): the first ``n_sentences`` sentences of the first paragraph of that language."""
    idx = candidates.cid.str.split(":", expand=True)  # lang, article idx, paragraph idx, sentence idx
    c = candidates.assign(_a=idx[1].astype(int), _p=idx[2].astype(int), _s=idx[3].astype(int))
    c = c.sort_values(["article", "lang", "_a", "_p", "_s"], kind="stable")
    first_para = c.groupby(["article", "lang"], sort=False)[["_a", "_p"]].transform("first")
    c = c[(c._a == first_para._a) & (c._p == first_para._p) & (c._s < n_sentences)]
    return c.groupby(["article", "lang"], sort=True).text.agg(" ".join).reset_index()


def article_texts(data, n_sentences: int = 2, max_chars: int = 320) -> pd.DataFrame:
    """One short text per (article, language): ``"<title>. <first sentences>"``, cut to ``max_chars``.

    ``data`` is a ``LAReQAData`` (articles with questions; text from each language's first paragraph) or a table
    with columns article, lang, text (used as is). ``label_articles`` adds a title-only row per article key, so
    keys should be titles (else pass ``title_weight=0``).
    """
    if hasattr(data, "candidates") and hasattr(data, "questions"):
        keys = set(data.questions.article)
        texts = _first_sentences(data.candidates[data.candidates.article.isin(keys)], n_sentences)
    elif isinstance(data, pd.DataFrame):
        what = "article text table (a LAReQAData, or a table of article, lang, text; not a pairs table)"
        require_columns(data, ("article", "lang", "text"), what)
        return data[["article", "lang", "text"]].reset_index(drop=True)
    else:
        raise DomainError(f"cannot take article texts from a {type(data).__name__}; expected LAReQAData or a table")
    # The title carries most of the signal; the sentences disambiguate (e.g. "Victoria" state vs queen).
    texts["text"] = [f"{article_key(a)}. {t}"[:max_chars] for a, t in zip(texts.article, texts.text, strict=True)]
    return texts


# ---------------------------------------------------------------------------------------------------- scoring


def _encode(encoder, texts: list[str], prompt_name: str, show_progress_bar: bool = False) -> np.ndarray:
    """Normalised embeddings, through the shared embedding cache."""
    if not texts:
        return np.zeros((0, 1), dtype=np.float32)
    emb = encode_cached(encoder, texts, prompt_name, batch_size=32, show_progress_bar=show_progress_bar)
    emb = np.asarray(emb, dtype=np.float32)
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


class DomainClassifier:
    """Scores texts against the domain prototypes; see the module docstring.

    A domain's score is ``DESC_WEIGHT`` x cosine to the centroid of its descriptions ("query: " prompt) plus
    ``1 - DESC_WEIGHT`` x cosine to the centroid of its seed titles ("passage: " prompt).
    """

    def __init__(self, encoder):
        self.encoder = encoder
        self.method = f"{encoder_name(encoder)}-zeroshot[desc+seeds]"
        rows = [(d, t) for d in CLASS_NAMES for t in DESCRIPTIONS[d]]
        self.desc_centroids = _centroids(_encode(encoder, [t for _, t in rows], "query"), [d for d, _ in rows])
        seeds = load_seeds()
        self.seed_centroids = _centroids(_encode(encoder, seeds.title.tolist(), "passage"), seeds.domain.to_numpy())

    def scores(self, texts: Sequence[str], show_progress_bar: bool = False) -> np.ndarray:
        """Cosine-based score matrix [len(texts), len(CLASS_NAMES)]."""
        x = _encode(self.encoder, list(texts), "passage", show_progress_bar=show_progress_bar)
        total = np.zeros((len(x), len(CLASS_NAMES)), dtype=np.float64)
        total += DESC_WEIGHT * (x @ self.desc_centroids.T)
        total += (1.0 - DESC_WEIGHT) * (x @ self.seed_centroids.T)
        return total


def _centroids(emb: np.ndarray, labels) -> np.ndarray:
    """Unit-length mean embedding per class, in ``CLASS_NAMES`` order (every class must have examples)."""
    labels = np.asarray(labels)
    missing = [d for d in CLASS_NAMES if not (labels == d).any()]
    if missing:
        raise DomainError(f"no prototype text for domain(s) {missing}")
    cent = np.stack([emb[labels == d].mean(0) for d in CLASS_NAMES])
    return cent / np.linalg.norm(cent, axis=1, keepdims=True)


def to_probabilities(scores: np.ndarray, temperature: float = TEMPERATURE) -> np.ndarray:
    """Row-wise softmax of similarity scores."""
    z = np.asarray(scores, dtype=np.float64) / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return p / p.sum(axis=1, keepdims=True)


def combine_languages(
    articles: Sequence[str],
    probs: np.ndarray,
    combine: str = "mean",
    weights: Sequence[float] | None = None,
    classes: Sequence[str] = CLASS_NAMES,
    min_margin: float = 0.0,
) -> pd.DataFrame:
    """One label per article from its rows of class probabilities (``articles[i]`` owns ``probs[i]``).

    ``mean``: argmax of the (weighted) mean probability; confidence = that mean, margin = top-1 minus top-2.
    ``majority``: most (weighted) votes of the rows' argmax, ties broken by the mean probability;
    confidence = vote share, margin = (top-1 minus top-2 votes) / total votes.
    A margin below ``min_margin`` gives "other" (``top_domain`` keeps the classifier's choice).
    """
    if combine not in ("mean", "majority"):
        raise DomainError(f"unknown combine method {combine!r}; expected 'mean' or 'majority'")
    probs = np.asarray(probs, dtype=np.float64)
    classes = list(classes)
    if probs.ndim != 2 or probs.shape != (len(articles), len(classes)):
        raise DomainError(f"probabilities of shape {probs.shape} do not match {len(articles)} rows x {len(classes)}")
    w = np.ones(len(articles)) if weights is None else np.asarray(weights, dtype=np.float64)
    if w.shape != (len(articles),) or (w < 0).any():
        raise DomainError(f"weights must be {len(articles)} non-negative numbers, got shape {w.shape}")
    keys = pd.Series(list(articles))
    rows = []
    for article, idx in keys.groupby(keys, sort=True).groups.items():
        idx = np.asarray(idx)
        p, wi = probs[idx], w[idx]
        mean = (p * wi[:, None]).sum(0) / wi.sum()
        if combine == "mean":
            order = np.argsort(-mean, kind="stable")
            conf, margin = mean[order[0]], mean[order[0]] - mean[order[1]]
        else:
            votes = np.bincount(p.argmax(1), weights=wi, minlength=len(classes))
            order = np.lexsort((-mean, -votes))  # by votes, ties by mean probability
            conf = votes[order[0]] / votes.sum()
            margin = (votes[order[0]] - votes[order[1]]) / votes.sum()
        domain = classes[order[0]] if margin >= min_margin else "other"
        rows.append((article, domain, classes[order[0]], float(conf), float(margin), len(idx), *mean))
    columns = ["article", "domain", "top_domain", "confidence", "margin", "n_rows", *[f"p_{c}" for c in classes]]
    return pd.DataFrame(rows, columns=columns)


def apply_overrides(labels: pd.DataFrame, overrides: pd.DataFrame) -> pd.DataFrame:
    """Replace the domain of overridden articles; mark them ``source="override"`` (others keep their source)."""
    require_columns(labels, ("article", "domain"), "label table")
    require_columns(overrides, ("article", "domain"), "overrides table")
    for d in overrides.domain.unique():
        check_domain(d)
    out = labels.copy()
    if "source" not in out.columns:
        out["source"] = "classifier"
    fix = dict(zip(overrides.article.map(article_key), overrides.domain, strict=True))
    hit = out.article.map(article_key).isin(fix)
    out.loc[hit, "domain"] = out.loc[hit, "article"].map(article_key).map(fix)
    out.loc[hit, "source"] = "override"
    return out


def label_articles(
    data,
    encoder=None,
    classifier: DomainClassifier | None = None,
    combine: str = "mean",
    title_weight: float = TITLE_WEIGHT,
    min_margin: float = 0.0,
    overrides: pd.DataFrame | str | Path | None = None,
    n_sentences: int = 2,
    show_progress_bar: bool = True,
) -> pd.DataFrame:
    """Domain of every article of ``data`` (see ``article_texts``), combined over its language versions.

    Each article contributes one row per language (title + first sentences) and one title-only row whose
    weight is ``title_weight`` of the total (the language-independent title is the strongest single cue; the
    first paragraph is often not the article's lead). Returns columns article, domain, top_domain
    (the classifier's choice), confidence, margin, n_langs, uncertain (margin < UNCERTAIN_MARGIN),
    p_<domain> (combined probabilities), source ("classifier" | "override") and method.
    ``overrides``: a table, a csv path, or None for ``data/domains/overrides.csv`` (absent file = none).
    """
    if not 0.0 <= title_weight < 1.0:
        raise DomainError(f"title_weight must lie in [0, 1), got {title_weight!r}")
    if classifier is None:
        if encoder is None:
            raise DomainError("label_articles needs an encoder or a DomainClassifier")
        classifier = DomainClassifier(encoder)
    texts = article_texts(data, n_sentences=n_sentences)
    if texts.empty:
        raise DomainError("no article texts to label (empty data)")
    texts = texts.assign(article=texts.article.map(article_key))
    titles = sorted(set(texts.article))  # every article gets a title row, also those given without text
    texts = texts[texts.text.str.strip() != ""]
    n_langs = texts.groupby("article").size()
    rows_article = texts.article.tolist() + titles
    # weight per language row 1; the title row gets title_weight of the article's total weight
    title_w = [title_weight / (1.0 - title_weight) * max(n_langs.get(t, 0), 1) for t in titles]
    weights = [1.0] * len(texts) + [w if n_langs.get(t, 0) else 1.0 for t, w in zip(titles, title_w, strict=True)]
    scores = classifier.scores(texts.text.tolist() + titles, show_progress_bar=show_progress_bar)
    probs = to_probabilities(scores)
    labels = combine_languages(rows_article, probs, combine=combine, weights=weights, min_margin=min_margin)
    labels = labels.drop(columns="n_rows").assign(n_langs=lambda t: t.article.map(n_langs).fillna(0).astype(int))
    labels["uncertain"] = labels.margin < UNCERTAIN_MARGIN
    labels["source"] = "classifier"
    if not isinstance(overrides, pd.DataFrame):
        overrides = load_overrides(overrides)
    labels = apply_overrides(labels, overrides)
    labels["method"] = f"{classifier.method}/title{title_weight:g}+text/{combine}"
    return labels


# ---------------------------------------------------------------------------------------------------- audit


def audit(labels: pd.DataFrame, gold: pd.DataFrame | None = None) -> dict:
    """Agreement of ``labels`` with the gold set: accuracy, n, confusion matrix (gold rows x predicted columns)
    and the disagreeing articles. Every gold article must be labelled."""
    gold = load_gold() if gold is None else gold
    require_columns(labels, ("article", "domain"), "label table")
    pred = dict(zip(labels.article.map(article_key), labels.domain, strict=True))
    missing = [a for a in gold.article if a not in pred]
    if missing:
        raise DomainError(f"{len(missing)} gold article(s) have no label, e.g. {missing[:5]}")
    g = gold.assign(predicted=gold.article.map(pred))
    confusion = pd.crosstab(
        pd.Categorical(g.domain, categories=DOMAIN_NAMES),
        pd.Categorical(g.predicted, categories=DOMAIN_NAMES),
        rownames=["gold"],
        colnames=["predicted"],
        dropna=False,
    )
    return {
        "accuracy": float((g.domain == g.predicted).mean()),
        "n": len(g),
        "confusion": confusion,
        "errors": g[g.domain != g.predicted][["article", "domain", "predicted", "rationale"]].reset_index(drop=True),
    }


# ---------------------------------------------------------------------------------------------------- tables


def attach_domains(df: pd.DataFrame, labels: pd.DataFrame | Mapping[str, str], on: str = "article") -> pd.DataFrame:
    """``df`` with a ``domain`` column looked up by its ``on`` column; an unlabelled key is an error."""
    require_columns(df, (on,), "table to label")
    mapping = dict(zip(labels[on], labels["domain"], strict=True)) if isinstance(labels, pd.DataFrame) else labels
    mapping = {article_key(k) if on == "article" else k: v for k, v in mapping.items()}
    keys = df[on].map(article_key) if on == "article" else df[on]
    domain = keys.map(mapping)
    if domain.isna().any():
        missing = sorted(set(keys[domain.isna()]))
        raise DomainError(f"{len(missing)} {on} value(s) have no domain label, e.g. {missing[:5]}")
    return df.assign(domain=domain.to_numpy())


def domain_distribution(df: pd.DataFrame, group_col: str = "group") -> pd.DataFrame:
    """Distinct groups (and articles, rows) per domain, with the group share; every domain listed."""
    require_columns(df, ("domain", group_col), "labelled table")
    out = pd.DataFrame(
        {
            "groups": df.groupby("domain")[group_col].nunique(),
            "articles": df.groupby("domain").article.nunique() if "article" in df.columns else np.nan,
            "rows": df.groupby("domain").size(),
        }
    ).reindex(list(DOMAIN_NAMES), fill_value=0)
    out["group_share"] = out.groups / max(out.groups.sum(), 1)
    return out.rename_axis("domain").reset_index()


def check_domain_support(
    df: pd.DataFrame,
    batch_size: int | None = None,
    min_queries: int = MIN_EVAL_QUERIES,
    group_col: str = "group",
    by: str | None = None,
    require: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Per domain (and per ``by``, e.g. "lang"), the number of distinct groups and a ``status``:

    "ok"; "too-few-groups" (fewer groups than ``batch_size``: a domain-homogeneous batch of distinct groups is
    impossible); "too-few-queries" (fewer than ``min_queries`` groups: a per-domain CI is not meaningful);
    "empty". Translations of one question share a group, so groups — not rows — are the independent units.
    ``require``: domains that must all be "ok", else one ``DomainError`` lists the failing ones (use it before
    training on or reporting a domain; pass ``min_queries=0`` for a training-only check).
    """
    keys = ["domain"] + ([by] if by else [])
    require_columns(df, [*keys, group_col], "labelled table")
    counts = df.groupby(keys)[group_col].nunique().rename("groups")
    index = pd.MultiIndex.from_product([list(DOMAIN_NAMES)] + ([sorted(df[by].unique())] if by else []), names=keys)
    out = counts.reindex(index, fill_value=0).reset_index()

    def status(n: int) -> str:
        if n == 0:
            return "empty"
        if batch_size is not None and n < batch_size:
            return "too-few-groups"
        if min_queries and n < min_queries:
            return "too-few-queries"
        return "ok"

    out["status"] = out.groups.map(status)
    if require is not None:
        for d in require:
            check_domain(d)
        bad = out[out.domain.isin(list(require)) & (out.status != "ok")]
        if not bad.empty:
            rows = "; ".join(
                f"{r.domain}{f' ({by}={getattr(r, by)})' if by else ''}: {r.groups} groups, {r.status}"
                for r in bad.itertuples()
            )
            raise DomainError(
                f"insufficient support for domain(s) {sorted(set(bad.domain))} "
                f"(batch_size={batch_size}, min_queries={min_queries}): {rows}"
            )
    return out
