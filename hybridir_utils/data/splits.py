"""Which articles train, tune and test: the dev split and the zero-shot rule that no test article is trained on.

Data splitting, so it lives with the loaders: notebooks 02-03 split before any pool or recipe is built, and the
trainer re-checks the rule on the pairs it is given (:func:`remove_test_overlap`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.data.lareqa_loader import LAReQAData, article_key, load_lareqa
from hybridir_utils.errors import ArticleOverlapError, DataError

log = logging.getLogger(__name__)


def normalise_title(title: str) -> str:
    """``data.article_key`` made robust for matching across datasets: collapsed whitespace, case-folded."""
    return " ".join(article_key(str(title)).split()).casefold()


def eval_articles(name: str, data_dir: str | Path | None = None) -> set[str]:
    """Normalised article titles of an evaluation set (its English file names every article)."""
    return {normalise_title(a) for a in load_lareqa(name, languages=["en"], data_dir=data_dir).questions.article}


def without_eval_articles(ds, eval_name: str, data_dir: str | Path | None = None):
    """``ds`` without the articles it shares with the evaluation set, and their titles.

    Applied before domain pools and their size-matched controls are built (so a control matches the pool that is
    really trained on) and to the dev split too (a test article must not steer the recipe).
    """
    shared = eval_articles(eval_name, data_dir)
    keys = ds.questions.article.map(normalise_title)
    dropped = sorted(set(ds.questions.article[keys.isin(shared)]))
    return ds.subset(articles=sorted(set(ds.questions.article) - set(dropped))), dropped


def remove_test_overlap(
    pairs: pd.DataFrame, eval_articles: set[str], eval_name: str, allow: bool, drop: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Pairs without the evaluation set's articles (``drop``), or an ArticleOverlapError; ``allow`` keeps all."""
    if allow:
        return pairs, []
    if "article" not in pairs.columns:
        raise ArticleOverlapError(
            "training pairs have no 'article' column, so overlap with the evaluation set cannot be checked; "
            "add it or set allow_test_overlap=True"
        )
    keys = pairs.article.map(normalise_title)
    shared = sorted(set(keys) & eval_articles)
    if not shared:
        return pairs, []
    if not drop:
        raise ArticleOverlapError(
            f"{len(shared)} training article(s) also occur in the evaluation set {eval_name}: {shared[:5]}; "
            "set drop_test_overlap=True to train without them, or allow_test_overlap=True to keep them"
        )
    kept = pairs[~keys.isin(shared)].reset_index(drop=True)
    if kept.empty:
        raise ArticleOverlapError(
            f"every training article occurs in the evaluation set {eval_name}: nothing left to train on "
            "(train on the other dataset, or set allow_test_overlap=True)"
        )
    log.info("dropped %d pairs of %d article(s) shared with %s: %s", len(pairs) - len(kept), len(shared), eval_name,
             shared)  # fmt: skip
    return kept, shared


# Default evaluation set of each training set: the other LAReQA set (different articles, unseen languages).
ZERO_SHOT_EVAL = {"mlqa-r": "xquad-r", "xquad-r": "mlqa-r"}


def split_articles(ds: LAReQAData, dev_share: float, seed: int = 0) -> tuple[LAReQAData, LAReQAData]:
    """(train, dev): a seeded share of the articles held out whole, so no article is on both sides.

    The recipe (temperature, learning rate, steps) is chosen on ``dev``, never on the test set; every system then
    trains on ``train`` only. Splitting by article (not by question) keeps near-duplicate context out of dev.
    """
    if not 0 < dev_share < 1:
        raise DataError(f"dev_share must be in (0, 1), got {dev_share!r}")
    articles = np.array(sorted(set(ds.questions.article)))
    n_dev = max(1, round(dev_share * len(articles)))
    if n_dev >= len(articles):
        raise DataError(f"{ds.name}: {len(articles)} article(s) cannot give a dev share of {dev_share}")
    dev = set(articles[np.random.default_rng(seed).permutation(len(articles))[:n_dev]])
    return ds.subset(articles=sorted(set(articles) - dev)), ds.subset(articles=sorted(dev))


DEV, TEST = "dev", "test"
SPLIT_COLUMNS = ["article", "domain", "part"]


def zero_shot_split(labels: pd.DataFrame, dev_share: float, seed: int = 0) -> pd.DataFrame:
    """The test set's articles split once into a zero-shot dev and the test proper: article, domain, part.

    Why: a choice that protects zero-shot behaviour (WiSE-FT's λ, the recipe's monolingual margin) must be made on
    data that shares the test's shift (another source than training, languages never trained on), which held-out
    *training* articles cannot show. So a share of the test set's own articles is held out whole, before any score
    is seen: within each domain label (sorted titles, one seeded permutation per domain in sorted domain order),
    ``floor(dev_share * n + 0.5)`` articles go to dev, the rest stay test. Stratifying by domain keeps every domain's
    test articles in the same proportion, so the domain interactions keep their on-topic articles.
    """
    if not 0 < dev_share < 1:
        raise DataError(f"zero-shot dev share must be in (0, 1), got {dev_share!r}")
    missing = [c for c in ("article", "domain") if c not in labels.columns]
    if missing:
        raise DataError(f"domain labels lack column(s) {missing}: label the test set's articles first (notebook 02)")
    if labels.article.duplicated().any():
        raise DataError(
            f"domain labels list article(s) twice: {sorted(set(labels.article[labels.article.duplicated()]))[:5]}"
        )
    rng, rows = np.random.default_rng(seed), []
    for domain, group in labels.groupby("domain", sort=True):
        articles = np.array(sorted(group.article))
        dev = set(articles[rng.permutation(len(articles))[: int(np.floor(dev_share * len(articles) + 0.5))]])
        rows += [(a, domain, DEV if a in dev else TEST) for a in articles]
    split = pd.DataFrame(rows, columns=SPLIT_COLUMNS).sort_values("article", ignore_index=True)
    if not (split.part == TEST).any() or not (split.part == DEV).any():
        empty = TEST if (split.part == DEV).all() else DEV
        raise DataError(f"a zero-shot dev share of {dev_share} leaves no {empty} article: choose a share between")
    return split


def split_part(ds: LAReQAData, split: pd.DataFrame, part: str):
    """``ds`` restricted to the articles of ``part`` (dev or test) of a :func:`zero_shot_split`; an article of ``ds``
    that the split does not know is an error (the split and the data would disagree on what the test is)."""
    if part not in (DEV, TEST):
        raise DataError(f"part must be {DEV!r} or {TEST!r}, got {part!r}")
    known = set(split.article)
    unknown = sorted(set(ds.questions.article) - known)
    if unknown:
        raise DataError(f"{ds.name}: {len(unknown)} article(s) are in no part of the zero-shot split, e.g. "
                        f"{unknown[:3]}: split the articles of this dataset (notebook 02)")  # fmt: skip
    return ds.subset(articles=sorted(set(split.article[split.part == part]) & set(ds.questions.article)))
