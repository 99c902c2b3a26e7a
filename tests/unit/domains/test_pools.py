"""Per-seed domain arms: the in-domain draw by whole articles, its structure-matched controls, and the same-article
in-batch negative rate, on synthetic pair tables and on real MLQA-R with pseudo-domains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.domains.pools import (
    domain_draw,
    language_set_tvd,
    language_sets,
    matched_pool_summary,
    same_article_negative_rate,
    same_article_share,
    structure_matched_pool,
)
from hybridir_utils.errors import DomainError
from hybridir_utils.sampling.sampler import HybridBatchSampler

LANG_SETS = (("en", "de"), ("en", "ar"), ("en", "de", "ar"), ("en", "zh"), ("en", "de", "zh", "ar"))
COLUMNS = ["query", "passage", "query_lang", "passage_lang", "group", "article", "domain"]


def make_pairs(spec) -> pd.DataFrame:
    """A pairs table from ``[(domain, article, languages)]``, one group per entry, every (X, Y) of its languages."""
    rows = [
        (f"q{g}-{x}", f"p{g}-{y}", x, y, f"g{g:04d}", article, domain)
        for g, (domain, article, langs) in enumerate(spec)
        for x in langs
        for y in langs
    ]
    return pd.DataFrame(rows, columns=COLUMNS)


def synthetic_pairs(seed: int, articles: dict[str, int]) -> pd.DataFrame:
    """``articles[domain]`` articles per domain, each with 1-6 groups of varied language sets."""
    rng = np.random.default_rng(seed)
    spec = [
        (domain, f"{domain}-a{a}", LANG_SETS[int(rng.integers(len(LANG_SETS)))])
        for domain, n in articles.items()
        for a in range(n)
        for _ in range(int(rng.integers(1, 7)))
    ]
    return make_pairs(spec)


SHAPE = {"news": 12, "culture": 40, "history": 30, "science": 8}


def groups_per_article(pairs: pd.DataFrame) -> list[int]:
    return sorted(pairs.drop_duplicates("group").groupby("article").size().tolist())


def assert_whole_groups(pool_pairs: pd.DataFrame, pairs: pd.DataFrame) -> None:
    """Every row of every drawn group is in the pool, and nothing else."""
    expected = pairs[pairs.group.isin(set(pool_pairs.group))].reset_index(drop=True)
    pd.testing.assert_frame_equal(pool_pairs, expected)


# ------------------------------------------------------------------------------------------ domain_draw


@settings(max_examples=25, deadline=None)
@given(table_seed=st.integers(0, 10**6), seed=st.integers(0, 2**32 - 1), share=st.floats(0.1, 0.95))
def test_domain_draw_takes_size_groups_by_whole_articles(table_seed, seed, share):
    pairs = synthetic_pairs(table_seed, SHAPE)
    news = pairs[pairs.domain == "news"].drop_duplicates("group")
    size = max(1, min(len(news) - 1, round(share * len(news))))
    pool = domain_draw(pairs, "news", size, seed)
    assert pool.pairs.group.nunique() == size
    assert set(pool.pairs.domain) == {"news"}
    assert (pool.mode, pool.target, pool.sampler_kwargs, pool.weight) == (
        "in-domain",
        "news",
        {"domains": ["news"]},
        1.0,
    )
    assert_whole_groups(pool.pairs, pairs)
    drawn = pool.pairs.drop_duplicates("group").groupby("article").size()
    whole = news.groupby("article").size()
    assert (drawn < whole[drawn.index]).sum() <= 1, "at most one article is cut"


def test_domain_draw_is_deterministic_per_seed_and_differs_across_seeds():
    pairs = synthetic_pairs(0, SHAPE)
    n = pairs[pairs.domain == "culture"].group.nunique()
    pd.testing.assert_frame_equal(
        domain_draw(pairs, "culture", 20, 5).pairs, domain_draw(pairs, "culture", 20, 5).pairs
    )
    drawn = {frozenset(domain_draw(pairs, "culture", 20, seed).pairs.group) for seed in range(6)}
    assert len(drawn) == 6 and n > 3 * 20


def test_domain_draw_size_must_leave_groups_out():
    pairs = synthetic_pairs(1, SHAPE)
    n = pairs[pairs.domain == "news"].group.nunique()
    for size in (n, n + 3):
        with pytest.raises(DomainError, match=rf"domain 'news' has {n} group\(s\).*got size {size}"):
            domain_draw(pairs, "news", size, 0)
    with pytest.raises(DomainError, match="got size 0"):
        domain_draw(pairs, "news", 0, 0)
    with pytest.raises(DomainError, match="'education' has no groups"):
        domain_draw(pairs, "education", 3, 0)
    with pytest.raises(DomainError, match="smaller than batch size 8"):
        domain_draw(pairs, "news", 5, 0, batch_size=8)
    assert domain_draw(pairs, "news", n - 1, 0).pairs.group.nunique() == n - 1


# ------------------------------------------------------------------------------------------ structure controls


@settings(max_examples=25, deadline=None)
@given(table_seed=st.integers(0, 10**6), seed=st.integers(0, 2**32 - 1), control=st.sampled_from(["random", "culture"]))
def test_structure_control_copies_the_draws_article_profile(table_seed, seed, control):
    pairs = synthetic_pairs(table_seed, SHAPE)
    size = pairs[pairs.domain == "news"].group.nunique() // 2
    arm = domain_draw(pairs, "news", size, seed)
    pool = structure_matched_pool(pairs, "news", control, size, seed)
    assert pool.pairs.group.nunique() == size
    assert pool.pairs.article.nunique() == arm.pairs.article.nunique()
    assert groups_per_article(pool.pairs) == groups_per_article(arm.pairs)
    assert (pool.mode, pool.target, pool.sampler_kwargs) == (f"size-{control}", "news", {})
    assert_whole_groups(pool.pairs, pairs)
    if control == "culture":
        assert set(pool.pairs.domain) == {"culture"}
    summary, reference = matched_pool_summary(pool, pairs), matched_pool_summary(arm, pairs)
    assert summary["same_article_share"] == pytest.approx(reference["same_article_share"])


def test_random_structure_control_draws_from_every_domain_but_never_the_arms_articles():
    pairs = synthetic_pairs(2, SHAPE)
    domains = set()
    for seed in range(5):
        pool = structure_matched_pool(pairs, "news", "random", 15, seed)
        domains |= set(pool.pairs.domain)
        assert not set(pool.pairs.article) & set(domain_draw(pairs, "news", 15, seed).pairs.article)
    assert len(domains - {"news"}) >= 2  # any domain (other news articles allowed), never the arm's own groups


def test_structure_control_reproduces_language_sets_when_the_articles_allow():
    # target articles hold at most two groups per language set; every control article holds two of each set
    # (a random control may pick a news article of one group, so it cannot guarantee this)
    sets = LANG_SETS[:3]
    news = [("news", f"n{a}", sets[(a + i) % 3]) for a in range(8) for i in range(1 + a % 6)]
    others = [(d, f"{d}{a}", s) for d in ("culture", "history") for a in range(10) for s in sets for _ in range(2)]
    pairs = make_pairs(news + others)
    for seed in range(4):
        arm = domain_draw(pairs, "news", 20, seed)
        for control in ("culture", "history"):
            pool = structure_matched_pool(pairs, "news", control, 20, seed)
            assert language_set_tvd(pool.pairs, arm.pairs) == 0.0
            assert len(pool.pairs) == len(arm.pairs)  # same sets -> same number of (X, Y) pairs
            per_article = sorted(
                sorted(language_sets(t[t.article == a])) for t in (pool.pairs,) for a in set(t.article)
            )
            drawn = sorted(sorted(language_sets(arm.pairs[arm.pairs.article == a])) for a in set(arm.pairs.article))
            assert per_article == drawn  # matched article by article, not only overall


def test_structure_control_is_deterministic_per_seed_and_differs_across_seeds():
    pairs = synthetic_pairs(3, SHAPE)
    for control in ("random", "history"):
        first = structure_matched_pool(pairs, "news", control, 15, 7).pairs
        pd.testing.assert_frame_equal(first, structure_matched_pool(pairs, "news", control, 15, 7).pairs)
        drawn = {frozenset(structure_matched_pool(pairs, "news", control, 15, seed).pairs.group) for seed in range(5)}
        assert len(drawn) == 5, control


def test_structure_control_errors_name_the_input():
    en_de = ("en", "de")
    news = [("news", f"n{a}", en_de) for a in range(2) for _ in range(6)]
    culture = [("culture", f"c{a}", en_de) for a in range(5) for _ in range(3)]
    pairs = make_pairs(news + culture)
    # the draw of 11 holds one article of 6 groups and one of 5; culture's articles have 3: each is split
    split = structure_matched_pool(pairs, "news", "culture", 11, 0).pairs
    assert split.group.nunique() == 11 and split.article.nunique() == 4  # 6 -> 3 + 3, 5 -> 3 + 2
    with pytest.raises(DomainError, match=r"'culture' ran out of articles.*with 2 group\(s\) still to match"):
        structure_matched_pool(make_pairs(news + culture[:9]), "news", "culture", 11, 0)
    with pytest.raises(DomainError, match="control 'news' is the target"):
        structure_matched_pool(pairs, "news", "news", 5, 0)
    with pytest.raises(DomainError, match="unknown domain 'sports'"):
        structure_matched_pool(pairs, "news", "sports", 5, 0)
    with pytest.raises(DomainError, match=r"'history' ran out of articles"):
        structure_matched_pool(pairs, "news", "history", 5, 0)
    with pytest.raises(DomainError, match="has 12 group"):
        structure_matched_pool(pairs, "news", "random", 12, 0)


# ------------------------------------------------------------------------------------------ same-article negatives


def test_same_article_negative_rate_by_hand():
    # 4 groups in 2 articles: every batch of 4 holds all of them -> 4 same-article ordered pairs of 12
    pairs = make_pairs([("news", f"a{g // 2}", ("en", "de")) for g in range(4)])
    for steps in (1, 7, 40):  # 40 runs past the first epoch
        assert same_article_negative_rate(pairs, 4, seed=0, steps=steps) == pytest.approx(1 / 3)
    assert same_article_share(pairs) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        same_article_negative_rate(pairs, 4, seed=0, steps=0)


def test_same_article_negative_rate_reads_exactly_steps_batches_across_epochs(monkeypatch):
    import hybridir_utils.sampling.sampler as sampling

    seen: dict = {"epochs": [], "batches": 0}

    class Counting(sampling.HybridBatchSampler):
        def set_epoch(self, epoch):
            seen["epochs"].append(epoch)
            super().set_epoch(epoch)

        def __iter__(self):
            for batch in super().__iter__():
                seen["batches"] += 1
                yield batch

    monkeypatch.setattr(sampling, "HybridBatchSampler", Counting)
    pairs = make_pairs([("news", f"a{g // 2}", ("en", "de")) for g in range(4)])  # 16 rows: 4 batches of 4 per epoch
    same_article_negative_rate(pairs, 4, seed=0, steps=10)
    assert seen == {"epochs": [0, 1, 2], "batches": 10}


def test_more_groups_per_article_means_more_same_article_negatives():
    langs = ("en", "de", "ar")
    clustered = make_pairs([("news", f"a{g // 4}", langs) for g in range(24)])
    spread = make_pairs([("news", f"a{g}", langs) for g in range(24)])
    high = same_article_negative_rate(clustered, 8, seed=1, steps=60, alpha=0.5)
    assert same_article_negative_rate(spread, 8, seed=1, steps=60, alpha=0.5) == 0.0
    assert high > 0.05
    assert same_article_share(clustered) == pytest.approx(6 * 4 * 3 / (24 * 23))
    summary = matched_pool_summary(domain_draw(clustered, "news", 20, 0), clustered)
    assert summary["articles"] == 5 and summary["groups"] == 20


def test_same_article_negative_rate_passes_sampler_options():
    pairs = make_pairs(
        [("news", f"a{g // 2}", ("en", "de")) for g in range(4)]
        + [("culture", f"c{g}", ("en", "de")) for g in range(4)]
    )
    # only the news rows: 1/3 as by hand; every row: the 8 groups in 6 articles
    assert same_article_negative_rate(pairs, 4, seed=0, steps=10, domains=["news"]) == pytest.approx(1 / 3)
    assert same_article_negative_rate(pairs, 8, seed=0, steps=3) == pytest.approx(4 / 56)


# ------------------------------------------------------------------------------------------ real data

PSEUDO_DOMAINS = ("news", "science", "culture", "history")  # real taxonomy names, one per article by sorted position


@pytest.fixture(scope="module")
def mlqa_pairs(shared_data_dir):
    """Real MLQA-R training pairs with a deterministic pseudo-domain per article (sorted position mod 4)."""
    pairs = training_pairs(load_lareqa("mlqa-r", data_dir=shared_data_dir))
    position = {a: i for i, a in enumerate(sorted(pairs.article.unique()))}
    return pairs.assign(domain=pairs.article.map(lambda a: PSEUDO_DOMAINS[position[a] % len(PSEUDO_DOMAINS)]))


@pytest.mark.parametrize("seed", [0, 1])
def test_real_draws_and_controls_build_and_fill_batches(mlqa_pairs, seed):
    arm = domain_draw(mlqa_pairs, "culture", 96, seed, batch_size=16)
    HybridBatchSampler(arm.pairs, 16, seed=seed, alpha=0.5, **arm.sampler_kwargs)
    for control in ("random", "news", "science", "history"):
        pool = structure_matched_pool(mlqa_pairs, "culture", control, 96, seed, batch_size=16)
        assert groups_per_article(pool.pairs) == groups_per_article(arm.pairs)
        HybridBatchSampler(pool.pairs, 16, seed=seed, alpha=0.5, **pool.sampler_kwargs)


def test_real_structure_control_matches_same_article_negatives(mlqa_pairs):
    """A control of random groups (the older design: ~1.5 groups per article) has far fewer same-article negatives
    than the arm; the structure-matched control about as many (measured over 3 seeds x 300 batches of 16)."""
    rates = {"arm": [], "new": [], "old": []}
    for seed in range(3):
        arm = domain_draw(mlqa_pairs, "news", 96, seed)
        pools = {"arm": arm.pairs, "new": structure_matched_pool(mlqa_pairs, "news", "random", 96, seed).pairs}
        groups = np.random.default_rng(seed).choice(np.sort(mlqa_pairs.group.unique()), 96, replace=False)
        pools["old"] = mlqa_pairs[mlqa_pairs.group.isin(groups)].reset_index(drop=True)
        for name, pool in pools.items():
            rates[name].append(same_article_negative_rate(pool, 16, seed, 300))
    arm, new, old = (float(np.mean(rates[k])) for k in ("arm", "new", "old"))
    print(f"same-article negative rate, news pseudo-domain, S=96: arm {arm:.4f}, new {new:.4f}, old {old:.4f}")
    assert old < 0.3 * arm
    assert abs(new - arm) < 0.2 * arm


def test_language_set_tvd_by_hand():
    """Sets {de,en}: 1/2, {en,zh}: 1/2 against {de,en}: 1 -> TVD = (1/2 + 1/2) / 2."""
    rows = lambda g, langs: [{"group": g, "query_lang": x, "passage_lang": x} for x in langs]  # noqa: E731
    pairs = pd.DataFrame(rows("g0", "en de".split()) + rows("g1", "en zh".split()))
    reference = pd.DataFrame(rows("g2", "de en".split()))
    assert language_set_tvd(pairs, reference) == pytest.approx(0.5)
    assert language_set_tvd(pairs, pairs) == 0.0 and language_set_tvd(reference, pairs) == pytest.approx(0.5)


def test_language_sets_are_matched_without_preferring_supersets():
    """A superset group adds pairs (and cross-lingual pairs) the drawn group lacks: the closest set wins."""
    from hybridir_utils.domains.pools import _match_language_sets

    offered = {"all7": "ar,de,en,es,hi,vi,zh", "two": "de,en"}
    assert _match_language_sets(["de,en,es"], offered, np.random.default_rng(0)) == ["two"]
    assert _match_language_sets(["de,en"], {"three": "ar,de,en", "other": "de,es"}, np.random.default_rng(0)) == [
        "three"
    ]
