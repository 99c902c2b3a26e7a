"""The splits (data.splits): no test article, question or answer sentence is ever trained on; an overlap is
refused, dropped or allowed, by name."""

from __future__ import annotations

import pandas as pd
import pytest

from hybridir_utils.data.splits import (
    DEV,
    SPLIT_COLUMNS,
    TEST,
    eval_articles,
    normalise_title,
    remove_test_overlap,
    split_part,
    without_eval_articles,
    zero_shot_split,
)
from hybridir_utils.errors import ArticleOverlapError, DataError


# ---------------------------------------------------------------------------------------------- test overlap
def test_overlap_guard_normalises_titles_and_refuses_drops_or_allows(tiny_pairs):
    assert normalise_title("Super_Bowl_50") == normalise_title(" super bowl  50") == "super bowl 50"
    pairs = tiny_pairs
    test = {normalise_title("article 1")}
    with pytest.raises(ArticleOverlapError, match="article 1"):
        remove_test_overlap(pairs, test, "xquad-r", allow=False, drop=False)
    kept, shared = remove_test_overlap(pairs, test, "xquad-r", allow=False, drop=True)
    assert shared == ["article 1"] and "Article_1" not in set(kept.article) and len(kept) == len(pairs) * 2 // 3
    same, none = remove_test_overlap(pairs, test, "xquad-r", allow=True, drop=False)
    assert none == [] and len(same) == len(pairs)
    with pytest.raises(ArticleOverlapError, match="nothing left"):
        remove_test_overlap(pairs, {normalise_title(f"Article_{i}") for i in range(3)}, "x", allow=False, drop=True)
    with pytest.raises(ArticleOverlapError, match="'article' column"):
        remove_test_overlap(pairs.drop(columns="article"), test, "xquad-r", allow=False, drop=True)


def test_without_eval_articles_removes_the_shared_articles_whole(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    from hybridir_utils.data.lareqa_loader import load_lareqa

    mlqa = load_lareqa("mlqa-r", ["en", "de"], data_dir=shared_data_dir)
    kept, dropped = without_eval_articles(mlqa, "xquad-r")
    assert dropped == ["Harvard University", "Prime number"]
    assert not {normalise_title(a) for a in kept.questions.article} & eval_articles("xquad-r")
    assert kept.questions.article.nunique() == mlqa.questions.article.nunique() - 2


def test_no_test_article_question_or_answer_sentence_reaches_training(shared_data_dir, monkeypatch):
    """The paper's claim that evaluation data is separate from training, checked on our split (all languages):
    the two shared articles are removed whole, and no XQuAD-R question or candidate sentence text is a training
    query or passage (compared case- and space-insensitively)."""
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    from hybridir_utils.analysis.claims import SEPARATION
    from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs

    mlqa = load_lareqa("mlqa-r", data_dir=shared_data_dir)
    kept, dropped = without_eval_articles(mlqa, "xquad-r")
    pairs, test, every = training_pairs(kept), load_lareqa("xquad-r", data_dir=shared_data_dir), training_pairs(mlqa)
    norm = lambda texts: set(texts.str.strip().str.lower())  # noqa: E731
    assert tuple(dropped) == SEPARATION["articles"] and len(pairs) == 15_713
    assert (len(every), len(every) - len(pairs)) == (SEPARATION["pairs"], SEPARATION["pairs_dropped"])
    assert (every.group.nunique(), every.group.nunique() - pairs.group.nunique()) == (
        SEPARATION["groups"], SEPARATION["groups_dropped"])  # fmt: skip
    assert not {normalise_title(a) for a in pairs.article} & eval_articles("xquad-r", shared_data_dir)
    assert not norm(pairs["query"]) & norm(test.questions.text)
    assert not norm(pairs["passage"]) & norm(test.candidates.text)


def test_real_mlqa_and_xquad_share_two_articles(shared_data_dir):
    # The zero-shot protocol trains on one and tests on the other; these two titles occur in both.
    shared = eval_articles("xquad-r", shared_data_dir) & eval_articles("mlqa-r", shared_data_dir)
    assert shared == {"harvard university", "prime number"}
    assert len(eval_articles("xquad-r", shared_data_dir)) == 48


# ---------------------------------------------------------------------------------------------- the zero-shot dev
def _labels(counts: dict[str, int]) -> pd.DataFrame:
    return pd.DataFrame([{"article": f"{d}-{i:02d}", "domain": d} for d, n in counts.items() for i in range(n)])


def test_the_zero_shot_dev_takes_the_same_share_of_every_domain_and_is_seeded():
    counts = {"science": 16, "news": 7, "history": 8, "geography": 8, "culture": 5, "education": 4}  # XQuAD-R's
    split = zero_shot_split(_labels(counts), 0.3333, seed=0)
    per = split.groupby(["domain", "part"]).size().unstack()
    assert per.dev.to_dict() == {"culture": 2, "education": 1, "geography": 3, "history": 3, "news": 2, "science": 5}
    assert per.dev.sum() == 16 and per.test.sum() == 32 and split.columns.tolist() == SPLIT_COLUMNS
    assert split.equals(zero_shot_split(_labels(counts).sample(frac=1, random_state=3), 0.3333, seed=0))  # order-free
    other = zero_shot_split(_labels(counts), 0.3333, seed=1)
    assert not split.part.equals(other.part) and (other.groupby("domain").part.apply(lambda p: (p == DEV).sum())
                                                   == per.dev).all()  # fmt: skip


def test_a_split_that_leaves_a_side_empty_or_labels_twice_is_refused():
    with pytest.raises(DataError, match="leaves no dev"):
        zero_shot_split(_labels({"news": 1, "science": 1}), 0.2)
    with pytest.raises(DataError, match=r"in \(0, 1\)"):
        zero_shot_split(_labels({"news": 3}), 1.0)
    with pytest.raises(DataError, match="twice"):
        zero_shot_split(pd.concat([_labels({"news": 3})] * 2), 0.3)
    with pytest.raises(DataError, match="lack column"):
        zero_shot_split(_labels({"news": 3}).drop(columns="domain"), 0.3)


def test_the_dev_and_test_parts_of_real_xquad_are_disjoint_whole_articles(shared_data_dir, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_DATA_DIR", str(shared_data_dir))
    from hybridir_utils import evaluation
    from hybridir_utils.data.lareqa_loader import load_lareqa

    xquad = load_lareqa("xquad-r", ["en", "th"], data_dir=shared_data_dir)
    articles = sorted(set(xquad.questions.article))
    split = zero_shot_split(pd.DataFrame({"article": articles, "domain": [a[0] for a in articles]}), 0.3333)
    dev, test = split_part(xquad, split, DEV), split_part(xquad, split, TEST)
    assert not set(dev.questions.article) & set(test.questions.article)
    assert len(dev.questions) + len(test.questions) == len(xquad.questions)
    assert set(dev.candidates.cid).isdisjoint(test.candidates.cid)
    scored = evaluation.evaluation_set("xquad-r", ["en", "th"], split=split.assign(dataset="xquad-r"))
    assert set(scored.questions.article) == set(test.questions.article)  # notebook 04 scores the test part only
    with pytest.raises(DataError, match="in no part"):
        split_part(xquad, split.iloc[1:], TEST)
