"""Domain labels: classifier (real e5 on a tiny multilingual fixture), language combination, overrides, audit,
pools for the sampler, support checks, and the real XQuAD-R / gold-set files."""

from __future__ import annotations

import zlib
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.domains import labelling, pools
from hybridir_utils.domains.labelling import (
    apply_overrides,
    article_texts,
    attach_domains,
    audit,
    check_domain_support,
    combine_languages,
    domain_distribution,
    label_articles,
    load_gold,
    load_overrides,
    load_seeds,
)
from hybridir_utils.domains.pools import domain_pool, language_sets, language_support
from hybridir_utils.domains.taxonomy import CLASS_NAMES, DOMAIN_NAMES, check_domain
from hybridir_utils.errors import DomainError
from hybridir_utils.sampling.sampler import HybridBatchSampler
from hybridir_utils.utils import paths

# Titles + first sentences whose domain is obvious, in three languages (Latin, Latin, CJK scripts).
TINY = [
    ("Photosynthesis", "science", "en", "Photosynthesis. Plants use the energy of sunlight to turn carbon dioxide and "
     "water into glucose and oxygen."),
    ("Photosynthesis", "science", "de", "Photosynthese. Pflanzen nutzen die Energie des Sonnenlichts, um aus "
     "Kohlendioxid und Wasser Glukose und Sauerstoff herzustellen."),
    ("Photosynthesis", "science", "zh", "光合作用。植物利用阳光的能量，把二氧化碳和水转化为葡萄糖和氧气。"),
    ("Lake Geneva", "geography", "en", "Lake Geneva. Lake Geneva is a large lake north of the Alps, shared between "
     "Switzerland and France."),
    ("Lake Geneva", "geography", "de", "Genfersee. Der Genfersee ist ein großer See nördlich der Alpen zwischen der "
     "Schweiz und Frankreich."),
    ("Lake Geneva", "geography", "zh", "日内瓦湖。日内瓦湖是阿尔卑斯山北面的一个大湖，由瑞士和法国共有。"),
    ("University of Bologna", "education", "en", "University of Bologna. The University of Bologna, founded in 1088, "
     "is the oldest university in continuous operation and teaches about 90,000 students."),
    ("University of Bologna", "education", "de", "Universität Bologna. Die 1088 gegründete Universität Bologna ist "
     "die älteste bestehende Universität und hat rund 90.000 Studierende."),
    ("University of Bologna", "education", "zh", "博洛尼亚大学。博洛尼亚大学创建于1088年，"
     "是世界上最古老的大学，约有九万名学生。"),
    ("Battle of Hastings", "history", "en", "Battle of Hastings. In 1066 the Norman army of William the Conqueror "
     "defeated the English king Harold II."),
    ("Battle of Hastings", "history", "de", "Schlacht bei Hastings. Im Jahr 1066 besiegte das normannische Heer "
     "Wilhelms des Eroberers den englischen König Harold II."),
    ("Battle of Hastings", "history", "zh", "黑斯廷斯战役。1066年，"
     "征服者威廉率领的诺曼军队击败了英格兰国王哈罗德二世。"),
    ("2019 Champions League Final", "news", "en", "2019 UEFA Champions League Final. Liverpool beat Tottenham "
     "Hotspur 2-0 in Madrid to win the final."),
    ("2019 Champions League Final", "news", "de", "Finale der UEFA Champions League 2019. Liverpool besiegte "
     "Tottenham Hotspur in Madrid mit 2:0 und gewann das Finale."),
    ("2019 Champions League Final", "news", "zh", "2019年欧洲冠军联赛决赛。"
     "利物浦在马德里以2比0击败托特纳姆热刺，赢得决赛。"),
    ("The Magic Flute", "culture", "en", "The Magic Flute. The Magic Flute is an opera in two acts by Wolfgang "
     "Amadeus Mozart, first performed in Vienna in 1791."),
    ("The Magic Flute", "culture", "de", "Die Zauberflöte. Die Zauberflöte ist eine Oper in zwei Aufzügen von "
     "Wolfgang Amadeus Mozart, uraufgeführt 1791 in Wien."),
    ("The Magic Flute", "culture", "zh", "魔笛。《魔笛》是莫扎特创作的两幕歌剧，1791年在维也纳首演。"),
]  # fmt: skip


class KeywordClassifier:
    """A model-free stand-in: a text scores 1 for the domain whose keyword it contains (first match)."""

    method = "keywords"
    KEYWORDS: ClassVar[dict[str, str]] = {
        "atom": "science",
        "vote": "news",
        "empire": "history",
        "river": "geography",
        "poem": "culture",
    }

    def scores(self, texts, show_progress_bar=False):
        out = np.zeros((len(texts), len(CLASS_NAMES)))
        for i, text in enumerate(texts):
            hit = next((d for k, d in self.KEYWORDS.items() if k in text.lower()), "education")
            out[i, CLASS_NAMES.index(hit)] = 1.0
        return out


@pytest.fixture(scope="module")
def classifier(e5_model, tmp_path_factory):
    """The real classifier, its prototype embeddings cached in a throw-away folder."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HYBRIDIR_MODELS_DIR", str(paths.models_dir()))
        mp.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path_factory.mktemp("domains-cache")))
        clf = labelling.DomainClassifier(e5_model)
        # scores() must see the same cache setting; encode everything the tests need while it holds
        texts = [t for *_, t in TINY]
        clf._test_scores = dict(zip(texts, clf.scores(texts), strict=True))
    return clf


# ------------------------------------------------------------------------------------------- real classifier


def test_classifier_labels_every_language_of_the_tiny_fixture(classifier):
    """Each single-language text is classified correctly in English, German and Chinese."""
    scores = np.stack([classifier._test_scores[t] for *_, t in TINY])
    pred = [CLASS_NAMES[i] for i in scores.argmax(1)]
    wrong = [(a, lang, g, p) for (a, g, lang, _), p in zip(TINY, pred, strict=True) if g != p]
    assert not wrong, wrong


def test_label_articles_combines_languages_and_title(classifier, tmp_path, monkeypatch):
    monkeypatch.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path / "cache"))
    table = pd.DataFrame([(a, lang, t) for a, _, lang, t in TINY], columns=["article", "lang", "text"])
    labels = label_articles(table, classifier=classifier, overrides=pd.DataFrame(columns=["article", "domain"]))
    expected = dict((a, d) for a, d, _, _ in TINY)
    assert dict(zip(labels.article, labels.domain, strict=True)) == expected
    assert (labels.n_langs == 3).all() and (labels.source == "classifier").all()
    assert labels.method.str.startswith("multilingual-e5-small-zeroshot[desc+seeds]").all()
    p = labels[[f"p_{d}" for d in CLASS_NAMES]].to_numpy()
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-9)
    np.testing.assert_allclose(labels.confidence, p.max(1))
    assert (labels.margin > 0.1).all(), labels[["article", "margin"]]


# ------------------------------------------------------------------------------------- combination (no model)


def test_mean_and_majority_combination_hand_case():
    # article a: two weak "science" rows and one strong "news" row -> mean says news, majority says science
    probs = np.array([[0.6, 0.4], [0.6, 0.4], [0.1, 0.9], [0.2, 0.8]])
    arts = ["a", "a", "a", "b"]
    classes = ("science", "news")
    mean = combine_languages(arts, probs, "mean", classes=classes).set_index("article")
    assert mean.loc["a", "domain"] == "news"
    assert mean.loc["a", "confidence"] == pytest.approx(1.7 / 3)
    assert mean.loc["a", "margin"] == pytest.approx(1.7 / 3 - 1.3 / 3)
    assert mean.loc["b", "domain"] == "news" and mean.loc["b", "n_rows"] == 1
    vote = combine_languages(arts, probs, "majority", classes=classes).set_index("article")
    assert vote.loc["a", "domain"] == "science"
    assert vote.loc["a", "confidence"] == pytest.approx(2 / 3)
    assert vote.loc["a", "margin"] == pytest.approx(1 / 3)
    # a weight of 3 on the news row flips the vote (3 vs 2) and pulls the mean further to news
    weighted = combine_languages(arts, probs, "majority", weights=[1, 1, 3, 1], classes=classes).set_index("article")
    assert weighted.loc["a", "domain"] == "news" and weighted.loc["a", "confidence"] == pytest.approx(3 / 5)


def test_majority_tie_is_broken_by_mean_probability_and_low_margin_gives_other():
    probs = np.array([[0.55, 0.45], [0.05, 0.95]])
    classes = ("science", "news")
    tie = combine_languages(["a", "a"], probs, "majority", classes=classes)
    assert tie.domain.item() == "news" and tie.margin.item() == 0.0
    unsure = combine_languages(["a", "a"], probs, "mean", classes=classes, min_margin=0.5)
    assert unsure.domain.item() == "other" and unsure.top_domain.item() == "news"


def test_combination_rejects_bad_input():
    with pytest.raises(DomainError, match="combine method 'vote'"):
        combine_languages(["a"], np.ones((1, len(CLASS_NAMES))), "vote")
    with pytest.raises(DomainError, match="shape"):
        combine_languages(["a", "b"], np.ones((1, len(CLASS_NAMES))))


def test_title_row_carries_title_weight_of_the_vote():
    """Two language rows say history, the title row says science: title_weight decides."""
    table = pd.DataFrame({"article": ["Atom", "Atom"], "lang": ["en", "de"], "text": ["empire", "empire"]})
    none = pd.DataFrame(columns=["article", "domain"])
    high = label_articles(table, classifier=KeywordClassifier(), overrides=none, title_weight=0.6)
    assert high.domain.item() == "science" and high.p_science.item() == pytest.approx(0.6)
    low = label_articles(table, classifier=KeywordClassifier(), overrides=none, title_weight=0.2)
    assert low.domain.item() == "history" and low.p_history.item() == pytest.approx(0.8) and low.n_langs.item() == 2
    assert low.method.item() == "keywords/title0.2+text/mean"


# ------------------------------------------------------------------------------------------------ overrides


def test_overrides_are_applied_last_and_marked(tmp_path):
    table = pd.DataFrame({"article": ["A", "B"], "lang": ["en", "en"], "text": ["atom", "river"]})
    path = tmp_path / "overrides.csv"
    path.write_text("# human corrections\narticle,domain,note\nB,culture,checked by hand\n", encoding="utf-8")
    labels = label_articles(table, classifier=KeywordClassifier(), overrides=path)
    by = labels.set_index("article")
    assert by.loc["A", "domain"] == "science" and by.loc["A", "source"] == "classifier"
    assert by.loc["B", "domain"] == "culture" and by.loc["B", "source"] == "override"
    assert by.loc["B", "top_domain"] == "geography"  # the classifier's own choice stays visible


def test_override_with_unknown_domain_fails(tmp_path):
    path = tmp_path / "overrides.csv"
    path.write_text("article,domain\nB,sports\n", encoding="utf-8")
    with pytest.raises(DomainError, match=r"'sports'.*science, news"):
        load_overrides(path)
    with pytest.raises(DomainError, match="'sports'"):
        apply_overrides(pd.DataFrame({"article": ["B"], "domain": ["news"]}), pd.read_csv(path))


# ---------------------------------------------------------------------------------------------- unknown names


def test_unknown_domain_name_error_lists_valid_ones():
    assert check_domain("science") == "science"
    with pytest.raises(DomainError) as err:
        check_domain("sport")
    assert "'sport'" in str(err.value) and all(d in str(err.value) for d in DOMAIN_NAMES)
    with pytest.raises(DomainError, match="'other'"):
        check_domain("other", allow_other=False)
    pairs = pd.DataFrame({"domain": ["science"], "group": ["g"]})
    with pytest.raises(DomainError, match="unknown domain 'physics'"):
        domain_pool(pairs, "physics", "in-domain")
    with pytest.raises(DomainError, match="unknown pool mode 'focused'"):
        domain_pool(pairs, "science", "focused")


# ------------------------------------------------------------------------------------------------------ pools


def make_pairs(n_science: int = 30, n_news: int = 90, langs=("en", "de")) -> pd.DataFrame:
    """A pairs table like data.training_pairs with a domain column: every (X, Y) of each group."""
    rows = []
    for g in range(n_science + n_news):
        for x in langs:
            for y in langs:
                rows.append((f"q{g}-{x}", f"p{g}-{y}", x, y, f"g{g}", f"a{g}", "science" if g < n_science else "news"))
    return pd.DataFrame(rows, columns=["query", "passage", "query_lang", "passage_lang", "group", "article", "domain"])


def test_general_pool_is_unchanged_and_in_domain_keeps_only_target():
    pairs = make_pairs()
    general = domain_pool(pairs, "science", "general")
    pd.testing.assert_frame_equal(general.pairs, pairs)
    assert general.sampler_kwargs == {}
    inside = domain_pool(pairs, "science", "in-domain", homogeneous=True)
    assert (inside.pairs.domain == "science").all()
    assert len(inside.pairs) == (pairs.domain == "science").sum()
    assert inside.sampler_kwargs == {"domains": ["science"], "domain_homogeneous": True}
    assert inside.expected_target_share() == 1.0


def test_weighted_pool_oversamples_target_by_weight_in_the_real_sampler():
    pairs = make_pairs(n_science=30, n_news=90)
    pool = domain_pool(pairs, "science", "weighted", weight=3.0)
    assert pool.sampler_kwargs == {"domain_weights": {"news": 1.0, "science": 3.0}}
    pd.testing.assert_frame_equal(pool.pairs, pairs)
    assert pool.expected_target_share() == pytest.approx(90 / (90 + 90))
    sampler = HybridBatchSampler(
        pool.pairs, 8, pairs=pool.pairs, seed=0, steps_per_epoch=400, world_size=1, rank=0, **pool.sampler_kwargs
    )
    rows = [r for batch in sampler for r in batch]
    share = (pool.pairs.domain.to_numpy()[rows] == "science").mean()
    assert share == pytest.approx(0.5, abs=0.05)  # unweighted it would be 0.25


@settings(max_examples=30, deadline=None)
@given(n_science=st.integers(1, 40), n_news=st.integers(1, 40), weight=st.floats(0.1, 10))
def test_pool_properties(n_science, n_news, weight):
    pairs = make_pairs(n_science, n_news, langs=("en",))
    inside = domain_pool(pairs, "news", "in-domain")
    assert set(inside.pairs.group) == set(pairs.group[pairs.domain == "news"])
    share = domain_pool(pairs, "news", "weighted", weight=weight).expected_target_share()
    assert share == pytest.approx(weight * n_news / (weight * n_news + n_science))
    # the odds of drawing news rather than science grow exactly by the weight
    assert share / (1 - share) == pytest.approx(weight * n_news / n_science)


def test_infeasible_pools_fail_clearly():
    pairs = make_pairs(n_science=5, n_news=40)
    with pytest.raises(DomainError, match=r"'science' has 5 distinct group.*batch size 8"):
        domain_pool(pairs, "science", "in-domain", batch_size=8)
    with pytest.raises(DomainError, match="'history' has no pairs"):
        domain_pool(pairs, "history", "weighted")
    with pytest.raises(DomainError, match="weight"):
        domain_pool(pairs, "science", "weighted", weight=0)
    assert domain_pool(pairs, "science", "general", batch_size=8).sampler_kwargs == {}


def test_support_check_flags_small_domains():
    pairs = make_pairs(n_science=12, n_news=40)
    table = check_domain_support(pairs, batch_size=16).set_index("domain")
    assert table.loc["news", "status"] == "ok" and table.loc["news", "groups"] == 40
    assert table.loc["science", "status"] == "too-few-groups" and table.loc["science", "groups"] == 12
    assert table.loc["history", "status"] == "empty"
    assert list(table.index) == list(DOMAIN_NAMES)
    evaluation = check_domain_support(pairs, min_queries=30).set_index("domain")
    assert evaluation.loc["science", "status"] == "too-few-queries"
    by_lang = check_domain_support(pairs, min_queries=30, by="query_lang")
    assert len(by_lang) == len(DOMAIN_NAMES) * 2
    assert set(by_lang[by_lang.domain == "news"].status) == {"ok"}
    check_domain_support(pairs, min_queries=30, require=["news"])
    with pytest.raises(DomainError, match=r"\['science'\].*science: 12 groups, too-few-queries"):
        check_domain_support(pairs, min_queries=30, require=["news", "science"])


# ---------------------------------------------------------------------------------------- tables and audit


def test_attach_domains_and_distribution():
    pairs = make_pairs(3, 2).drop(columns="domain")
    labels = pd.DataFrame({"article": [f"a{i}" for i in range(5)], "domain": ["science"] * 3 + ["news"] * 2})
    out = attach_domains(pairs, labels)
    assert (out.groupby("group").domain.nunique() == 1).all()
    dist = domain_distribution(out).set_index("domain")
    assert dist.loc["science", "groups"] == 3 and dist.loc["news", "groups"] == 2 and dist.loc["history", "groups"] == 0
    assert dist.group_share.sum() == pytest.approx(1.0)
    with pytest.raises(DomainError, match=r"1 article value.*a4"):
        attach_domains(pairs, labels.iloc[:4])


def test_audit_accuracy_and_confusion_hand_case():
    gold = pd.DataFrame(
        {"article": ["A", "B", "C", "D"], "domain": ["science", "science", "news", "history"], "rationale": ""}
    )
    labels = pd.DataFrame({"article": ["A", "B", "C", "D"], "domain": ["science", "news", "news", "history"]})
    result = audit(labels, gold)
    assert result["accuracy"] == 0.75 and result["n"] == 4
    conf = result["confusion"]
    assert conf.loc["science", "science"] == 1 and conf.loc["science", "news"] == 1 and conf.to_numpy().sum() == 4
    assert result["errors"].article.tolist() == ["B"]
    with pytest.raises(DomainError, match="no label"):
        audit(labels.iloc[:3], gold)


def test_article_texts_from_lareqa_use_the_first_paragraph(xquad_small):
    texts = article_texts(xquad_small)
    assert len(texts) == 2 * 3 and set(texts.lang) == {"en", "de", "zh"}
    c = xquad_small.candidates
    for row in texts.itertuples():
        first = c[(c.article == row.article) & (c.lang == row.lang)].iloc[0]
        assert row.text.startswith(f"{row.article}. {first.text}"[:320][:40])
        assert len(row.text) <= 320


def test_gold_file_lists_exactly_the_48_xquad_articles(shared_data_dir):
    gold = load_gold()
    xquad = load_lareqa("xquad-r", languages=("en",), data_dir=shared_data_dir)
    assert len(gold) == 48 and set(gold.article) == set(xquad.questions.article)
    assert set(gold.domain) <= set(DOMAIN_NAMES) and (gold.rationale.str.len() > 5).all()


def test_every_xquad_article_gets_a_label(shared_data_dir):
    xquad = load_lareqa("xquad-r", data_dir=shared_data_dir)
    labels = label_articles(xquad, classifier=KeywordClassifier(), show_progress_bar=False)
    assert set(labels.article) == set(xquad.questions.article) and len(labels) == 48
    assert (labels.n_langs == 11).all() and labels.domain.isin(DOMAIN_NAMES).all()
    questions = attach_domains(xquad.questions, labels)
    assert questions.domain.notna().all() and len(questions) == 11 * 1190


def test_seeds_are_disjoint_from_evaluation_and_training_titles(shared_data_dir):
    """The prototypes must not leak the audit set (or the training articles)."""
    seeds = load_seeds()
    assert set(seeds.domain) == set(CLASS_NAMES)
    titles = set(load_lareqa("xquad-r", languages=("en",), data_dir=shared_data_dir).questions.article)
    titles |= set(load_lareqa("mlqa-r", languages=("en",), data_dir=shared_data_dir).questions.article)
    assert not {labelling.article_key(t) for t in seeds.title} & titles


@pytest.mark.slow
def test_agreement_with_the_gold_set_on_english_xquad(classifier, shared_data_dir, tmp_path, monkeypatch):
    """A regression guard on real data: English-only labels of the 48 XQuAD-R articles vs the gold set."""
    monkeypatch.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path / "cache"))
    xquad = load_lareqa("xquad-r", languages=("en",), data_dir=shared_data_dir)
    result = audit(label_articles(xquad, classifier=classifier, show_progress_bar=False))
    assert result["accuracy"] >= 0.85, result["errors"]


def test_pool_summary_reports_size_and_sampler_options():
    pairs = pd.DataFrame({"group": ["a", "b", "c", "c"], "domain": ["science", "news", "news", "news"]})
    summary = pools.domain_pool(pairs, "science", "weighted", weight=3.0).summary()
    assert summary["pairs"] == 4 and summary["groups"] == 3
    assert summary["target_share"] == pytest.approx(3 / 6)
    assert summary["sampler_kwargs"] == {"domain_weights": {"news": 1.0, "science": 3.0}}


# ------------------------------------------------------------------------------------------ size controls

# Synthetic, deterministic article domains for real MLQA-R: crc32(article) into 10 buckets, so science and news are
# small (~1/10 of the groups each) and history / geography / culture large enough to serve as controls.
SYNTHETIC_DOMAINS = (
    ("science", "news", "history", "history", "geography", "geography") + ("culture",) * 3 + ("education",)
)


@pytest.fixture(scope="module")
def mlqa_pairs(shared_data_dir):
    """Real MLQA-R training pairs (7 languages, 2-4 per group: 41 language sets) with synthetic domains."""
    pairs = training_pairs(load_lareqa("mlqa-r", data_dir=shared_data_dir))
    bucket = pairs.article.map(lambda a: zlib.crc32(a.encode("utf-8")) % len(SYNTHETIC_DOMAINS))
    return pairs.assign(domain=bucket.map(dict(enumerate(SYNTHETIC_DOMAINS))))


def make_set_pairs(spec) -> pd.DataFrame:
    """A hand-made pairs table: one group per (domain, languages) in ``spec``, every (X, Y) of its languages."""
    rows = [
        (f"q{g}-{x}", f"p{g}-{y}", x, y, f"g{g}", f"a{g}", domain)
        for g, (domain, langs) in enumerate(spec)
        for x in langs
        for y in langs
    ]
    return pd.DataFrame(rows, columns=["query", "passage", "query_lang", "passage_lang", "group", "article", "domain"])


def set_counts(pairs: pd.DataFrame) -> dict:
    return language_sets(pairs).value_counts().to_dict()


def assert_whole_groups(pool_pairs: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """Every row of every drawn group is in the pool, and nothing else."""
    expected = pairs[pairs.group.isin(set(pool_pairs.group))].reset_index(drop=True)
    pd.testing.assert_frame_equal(pool_pairs, expected)


def test_language_support_counts_groups_with_a_monolingual_pair():
    pairs = make_set_pairs([("news", ("en", "de"))] * 3 + [("news", ("en", "ar"))])
    pairs = pairs[~((pairs.query_lang == "de") & (pairs.passage_lang == "de") & (pairs.group == "g0"))]
    table = language_support(pairs, batch_size=3).set_index("lang")
    assert table.groups.to_dict() == {"ar": 1, "de": 2, "en": 4}  # g0 lost its de-de pair
    assert table.fills_mono_batch.to_dict() == {"ar": False, "de": False, "en": True}
    assert "fills_mono_batch" not in language_support(pairs).columns
