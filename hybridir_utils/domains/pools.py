"""Training pools of the domain-focused runs, beside the sampler that draws from them.

``domain_pool`` realises a pool mode for one target domain: ``general`` (every pair), ``in-domain`` (only the
target's groups) or ``weighted`` (every pair, the target's drawn ``weight`` times as often; the options go to
``HybridBatchSampler``).

Per-seed arms (the domain grid): with one fixed in-domain pool and controls redrawn per seed, "domain" cannot be told
apart from "this particular set of groups", and a domain whose groups crowd into few articles gets more same-article
(harder) in-batch negatives than its controls, a mechanism unrelated to domain. So every arm is redrawn per seed at
one size ``S``: ``domain_draw`` takes ``S`` of the target's groups by whole articles (a seeded article order), and
``structure_matched_pool`` rebuilds that draw and copies its article structure (as many articles, the same groups per
article, language sets matched per article) from random articles or another domain's, so arm and control differ
only in domain. ``same_article_negative_rate`` measures the share of in-batch negatives from the query's own article
(reported beside each arm's scores); ``matched_pool_summary`` gives its structural counterpart.
``parse_domain_run`` reads the grid's ``"<domain>:<mode>"`` specs. Article labels: :mod:`domains`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd

from hybridir_utils.domains.taxonomy import check_domain, require_columns
from hybridir_utils.errors import DomainError
from hybridir_utils.naming import CONTROL_PREFIX, IN_DOMAIN, POOL_MODES, RANDOM_CONTROL, split_domain_run


@dataclass(frozen=True)
class DomainPool:
    """A domain-focused training pool: the pairs to train on and the ``HybridBatchSampler`` / ``TrainConfig``
    domain options that realise the mode (``sampler_kwargs`` is ``{}`` for the general pool)."""

    pairs: pd.DataFrame
    sampler_kwargs: dict
    target: str
    mode: str
    weight: float

    def expected_target_share(self) -> float:
        """Expected share of drawn pairs from ``target`` (ignoring the sampler's mono/cross split)."""
        counts = self.pairs.domain.value_counts()
        weights = self.sampler_kwargs.get("domain_weights") or {}
        mass = {d: n * weights.get(d, 1.0) for d, n in counts.items()}
        return float(mass.get(self.target, 0.0) / sum(mass.values())) if mass else 0.0

    def summary(self) -> dict:
        """Size of the pool and what the sampler is asked to do (for ``pools.json``)."""
        return {
            "pairs": len(self.pairs),
            "groups": int(self.pairs.group.nunique()),
            "target_share": self.expected_target_share(),
            "sampler_kwargs": self.sampler_kwargs,
        }


def domain_pool(
    pairs: pd.DataFrame,
    target: str,
    mode: str = "general",
    weight: float = 2.0,
    batch_size: int | None = None,
    homogeneous: bool = False,
) -> DomainPool:
    """Training pool for domain focus on ``target`` (pairs need ``domain`` and ``group`` columns):

    - ``general``: every pair, no domain options (the baseline);
    - ``in-domain``: only pairs of ``target`` (table filtered and ``domains=[target]``);
    - ``weighted``: every pair; a ``target`` pair is drawn ``weight`` times as often as any other
      (``domain_weights``). ``homogeneous`` adds ``domain_homogeneous=True`` (each batch from one domain).
    Raises ``DomainError`` for an unknown domain or mode, a target absent from the pairs, or, given
    ``batch_size``, a target with fewer distinct groups than one batch needs.
    """
    require_columns(pairs, ("domain", "group"), "pairs table")
    check_domain(target)
    if mode not in POOL_MODES:
        raise DomainError(f"unknown pool mode {mode!r}; valid modes: {', '.join(POOL_MODES)}")
    if mode == "weighted" and not (np.isfinite(weight) and weight > 0):
        raise DomainError(f"weight must be a finite number > 0 for the weighted pool, got {weight!r}")
    n_target = pairs.loc[pairs.domain == target, "group"].nunique()
    if mode != "general" and n_target == 0:
        raise DomainError(f"domain {target!r} has no pairs; present: {sorted(pairs.domain.unique())}")
    if mode != "general" and batch_size is not None and n_target < batch_size:
        raise DomainError(
            f"domain {target!r} has {n_target} distinct group(s), fewer than batch size {batch_size}: "
            f"an in-domain batch needs distinct groups (see check_domain_support)"
        )
    kwargs: dict = {}
    table = pairs
    if mode == IN_DOMAIN:
        table = pairs[pairs.domain == target]
        kwargs["domains"] = [target]
    elif mode == "weighted":
        kwargs["domain_weights"] = {d: (float(weight) if d == target else 1.0) for d in sorted(pairs.domain.unique())}
    if homogeneous and mode != "general":
        kwargs["domain_homogeneous"] = True
    return DomainPool(table.reset_index(drop=True), kwargs, target, mode, float(weight) if mode == "weighted" else 1.0)


# ------------------------------------------------------------------------------------------ size controls


def language_sets(pairs: pd.DataFrame) -> pd.Series:
    """Per group, the languages it has in ``pairs`` as a sorted string ("ar,de,en"). A size control is stratified
    by it because a group's language coverage (not its domain) sets how many mono and cross pairs it adds."""
    require_columns(pairs, ("group", "query_lang", "passage_lang"), "pairs table")
    langs = pd.concat([pairs[["group", c]].set_axis(["group", "lang"], axis=1) for c in ("query_lang", "passage_lang")])
    langs = langs.drop_duplicates().sort_values(["group", "lang"], kind="stable")
    return langs.groupby("group", sort=True).lang.agg(",".join).rename("language_set")


def _group_domains(pairs: pd.DataFrame) -> pd.Series:
    """Per group, its domain (a group is one question on one article, so it has one domain)."""
    return pairs.drop_duplicates("group").set_index("group").domain.sort_index()


def language_support(pairs: pd.DataFrame, batch_size: int | None = None) -> pd.DataFrame:
    """Per language: distinct groups with a monolingual (X-X) pair, an upper bound on the distinct questions an
    X-X-mono batch can draw (groups sharing an answer sentence count once in the sampler). Small pools (in-domain
    and their size controls alike) may not fill a mono batch in every language: shown, not raised.
    ``fills_mono_batch`` (given ``batch_size``): groups >= batch_size."""
    require_columns(pairs, ("group", "query_lang", "passage_lang"), "pairs table")
    mono = pairs[pairs.query_lang == pairs.passage_lang]
    out = mono.groupby("query_lang").group.nunique().rename_axis("lang").rename("groups").reset_index()
    if batch_size is not None:
        out["fills_mono_batch"] = out.groups >= batch_size
    return out


def language_set_tvd(pairs: pd.DataFrame, reference: pd.DataFrame) -> float:
    """Total variation distance between the language-set distributions (share of groups) of two pair tables:
    0 when a control reproduces the reference's language coverage exactly, 1 when they share no set."""
    p = language_sets(pairs).value_counts(normalize=True)
    q = language_sets(reference).value_counts(normalize=True)
    return float(0.5 * p.sub(q, fill_value=0.0).abs().sum())


def matched_pool_summary(pool: DomainPool, reference_pairs: pd.DataFrame) -> dict:
    """``pool.summary()`` plus what shows that a size control differs from the in-domain pool only in domain
    (for ``pools.json``): groups per language, the share of groups from the target domain, and the language-set
    TVD against the target's groups in ``reference_pairs`` (the full training pairs). Works for any pool."""
    target_pairs = reference_pairs[reference_pairs.domain == pool.target]
    support = language_support(pool.pairs)
    return {
        **pool.summary(),
        "mode": pool.mode,
        "target": pool.target,
        "target_groups": int(target_pairs.group.nunique()),
        "articles": int(pool.pairs.article.nunique()),
        "same_article_share": same_article_share(pool.pairs),
        "groups_per_language": dict(zip(support.lang, support.groups.astype(int).tolist(), strict=True)),
        "target_group_share": float((_group_domains(pool.pairs) == pool.target).mean()),
        "language_set_tvd": language_set_tvd(pool.pairs, target_pairs),
    }


# ------------------------------------------------------------------------------------------ per-seed arms


def _group_table(pairs: pd.DataFrame) -> pd.DataFrame:
    """One row per group (group, article, domain), sorted by group so that every draw depends on the seed only."""
    require_columns(pairs, ("domain", "group", "article", "query_lang", "passage_lang"), "pairs table")
    return pairs.drop_duplicates("group")[["group", "article", "domain"]].sort_values("group").reset_index(drop=True)


def _check_draw_size(target: str, n_groups: int, size: int, batch_size: int | None) -> None:
    """A draw must leave some of the domain out (else every seed draws the same pool, the confound of a fixed
    in-domain pool) and, given ``batch_size``, fill one batch."""
    if n_groups == 0:
        raise DomainError(f"domain {target!r} has no groups to draw from")
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or not 0 < size < n_groups:
        raise DomainError(
            f"domain {target!r} has {n_groups} group(s); a per-seed draw needs a size in [1, {n_groups - 1}] so that "
            f"seeds draw different pools, got size {size!r}"
        )
    if batch_size is not None and size < batch_size:
        raise DomainError(f"draw of {size} group(s) from {target!r} is smaller than batch size {batch_size}")


def domain_draw(pairs: pd.DataFrame, target: str, size: int, seed: int, batch_size: int | None = None) -> DomainPool:
    """The in-domain arm of ``seed``: ``size`` groups of ``target`` taken by whole articles (the target's articles in a
    seeded order; the last one gives a seeded subset of the groups still needed), every row of a group kept.

    Redrawn per seed, like its controls, so a domain effect is not the effect of one fixed set of groups; by whole
    articles, so the draw keeps the domain's article structure (which ``structure_matched_pool`` then copies).
    Raises ``DomainError`` unless ``0 < size <`` the target's group count, or for a draw smaller than ``batch_size``.
    """
    check_domain(target)
    groups = _group_table(pairs)
    own = groups[groups.domain == target]
    _check_draw_size(target, len(own), size, batch_size)
    rng = np.random.default_rng([seed, 0])
    by_article = own.groupby("article", sort=True).group.agg(list)
    drawn: list = []
    for article in rng.permutation(by_article.index.to_numpy()):
        members, need = by_article[article], size - len(drawn)
        drawn.extend(members if len(members) <= need else rng.choice(members, size=need, replace=False).tolist())
        if len(drawn) == size:
            break
    table = pairs[pairs.group.isin(drawn)].reset_index(drop=True)
    return DomainPool(table, {"domains": [target]}, target, IN_DOMAIN, 1.0)


def _candidate_articles(groups: pd.DataFrame, target: str, control: str) -> dict[str, list]:
    """{article: its groups} a structure control may use: every article for ``random`` (any domain, the target's
    included), else the control domain's articles (never the target's)."""
    if control != RANDOM_CONTROL:
        check_domain(control)
        if control == target:
            raise DomainError(f"control {control!r} is the target domain itself; name another domain or 'random'")
        groups = groups[groups.domain == control]
    return groups.groupby("article", sort=True).group.agg(list).to_dict()


def _match_language_sets(wanted: list[str], offered: dict, rng: np.random.Generator) -> list:
    """``len(wanted)`` groups of ``offered`` (group -> language set), matching ``wanted`` greedily: exact matches
    first, then per remaining set the group with the fewest languages different, then the most shared (ties broken
    by ``rng``)."""
    free, chosen, rest = dict(offered), [], []
    for lang_set in wanted:
        same = [g for g, s in free.items() if s == lang_set]
        if same:
            chosen.append(same[int(rng.integers(len(same)))])
            del free[chosen[-1]]
        else:
            rest.append(lang_set)
    for lang_set in rest:
        langs = set(lang_set.split(","))
        # the fewest languages different (either way), then the most shared: a superset would add pairs and
        # cross-lingual pairs the drawn group does not have
        cost = {g: (len(langs ^ set(s.split(","))), -len(langs & set(s.split(",")))) for g, s in free.items()}
        best = [g for g, c in cost.items() if c == min(cost.values())]
        chosen.append(best[int(rng.integers(len(best)))])
        del free[chosen[-1]]
    return chosen


def _mismatch(wanted: Counter, offered: list[str]) -> int:
    """How many of the wanted language sets an article's groups cannot match exactly."""
    return sum(wanted.values()) - sum(min(n, Counter(offered)[s]) for s, n in wanted.items())


def _pick_article(candidates: dict, sets: pd.Series, wanted: list[str], rng: np.random.Generator):
    """A random candidate article among those that hold ``len(wanted)`` groups and match the most wanted language
    sets exactly (so a control copies language coverage as well as structure without always taking the same
    articles); when none is large enough, the largest left (the drawn article is then split over two). None when
    no candidate is left."""
    if not candidates:
        return None
    fitting = [a for a in sorted(candidates) if len(candidates[a]) >= len(wanted)]
    if not fitting:
        largest = max(len(m) for m in candidates.values())
        biggest = sorted(a for a, m in candidates.items() if len(m) == largest)
        return biggest[int(rng.integers(len(biggest)))]
    need = Counter(wanted)
    scores = np.array([_mismatch(need, [sets[g] for g in candidates[a]]) for a in fitting])
    best = [a for a, sc in zip(fitting, scores, strict=True) if sc == scores.min()]
    return best[int(rng.integers(len(best)))]


def structure_matched_pool(
    pairs: pd.DataFrame, target: str, control: str, size: int, seed: int, batch_size: int | None = None
) -> DomainPool:
    """The control of ``seed``'s in-domain arm (``domain_draw``, same ``seed``) that differs from it only in domain:
    per drawn article (largest first), a candidate article (``random``: any domain, never one of the arm's own
    articles; else the control domain's) with >= k groups, chosen at random among those whose groups match the
    most of the drawn groups' language sets, gives k groups matched by language set (``_match_language_sets``).
    Same groups, articles and groups per article as the arm, so same-article in-batch negatives are as frequent,
    and the same language coverage where the candidates allow it (a group's languages set how many mono and cross
    pairs it adds). A drawn article larger than every candidate left is split over the largest ones, chosen at
    random (more articles; counted in ``pools.json`` and ``training.csv``).

    Its own rng stream (``[seed, 1]``), deterministic per seed. Raises ``DomainError`` as ``domain_draw`` does, for an
    unknown or target control, or when the control's articles run out (naming the control and what was left).
    """
    arm = domain_draw(pairs, target, size, seed, batch_size)
    groups, sets = _group_table(pairs), language_sets(pairs)
    candidates = _candidate_articles(groups, target, control)
    for own in set(arm.pairs.article) if control == RANDOM_CONTROL else ():
        candidates.pop(own, None)
    drawn_sets = language_sets(arm.pairs)
    profile = arm.pairs.drop_duplicates("group").groupby("article", sort=True).group.agg(list)
    rng = np.random.default_rng([seed, 1])
    drawn: list = []
    for article in sorted(profile.index, key=lambda a: (-len(profile[a]), a)):
        wanted = sorted(drawn_sets[profile[article]])
        while wanted:
            pick = _pick_article(candidates, sets, wanted, rng)
            if pick is None:
                raise DomainError(f"control {control!r} ran out of articles matching the {target!r} draw (size "
                                  f"{size}, seed {seed}) with {len(wanted)} group(s) still to match")  # fmt: skip
            offered = {g: sets[g] for g in candidates.pop(pick)}
            take, wanted = wanted[: len(offered)], wanted[len(offered) :]
            drawn.extend(_match_language_sets(take, offered, rng))
    table = pairs[pairs.group.isin(drawn)].reset_index(drop=True)
    return DomainPool(table, {}, target, f"{CONTROL_PREFIX}{control}", 1.0)


def same_article_negative_rate(
    pairs: pd.DataFrame, batch_size: int, seed: int, steps: int, alpha: float = 0.5, **sampler_kwargs
) -> float:
    """Share of in-batch negatives (ordered row pairs i != j of one batch) from the same article, over the first
    ``steps`` batches ``HybridBatchSampler(pairs, batch_size, seed=seed, alpha=alpha, **sampler_kwargs)`` yields
    (epochs continue via ``set_epoch``). Same-article negatives are harder, so arms compared for their domain should
    not differ in it; reported beside each arm's scores."""
    from hybridir_utils.sampling.sampler import HybridBatchSampler

    if steps < 1:
        raise ValueError(f"steps must be >= 1, got {steps!r}")
    table = pairs.reset_index(drop=True)
    article = table.article.to_numpy()
    sampler = HybridBatchSampler(table, batch_size, seed=seed, alpha=alpha, **sampler_kwargs)
    same = total = seen = epoch = 0
    while seen < steps:
        sampler.set_epoch(epoch)
        for batch in sampler:
            counts = pd.Series(article[list(batch)]).value_counts().to_numpy()
            same += int((counts * (counts - 1)).sum())
            total += len(batch) * (len(batch) - 1)
            seen += 1
            if seen == steps:
                break
        epoch += 1
    return same / total if total else 0.0


def same_article_share(pairs: pd.DataFrame) -> float:
    """Structural counterpart of ``same_article_negative_rate``: the share of ordered group pairs from one article,
    sum over articles of n_a (n_a - 1) / (N (N - 1)) with n_a groups per article, N groups (0 below 2 groups)."""
    per_article = pairs.drop_duplicates("group").groupby("article").size().to_numpy()
    n = int(per_article.sum())
    return float((per_article * (per_article - 1)).sum() / (n * (n - 1))) if n > 1 else 0.0


def parse_domain_run(spec: str) -> tuple[str, str]:
    """``"science:in-domain"`` -> ("science", "in-domain"); also ``weighted`` and the size-matched controls
    ``size-random`` (random groups) and ``size-<other domain>``, each as large as the target's in-domain pool. The
    grammar is :mod:`naming`'s; this adds the taxonomy's check of the domains."""
    parsed = split_domain_run(spec)
    if parsed is None:
        raise DomainError(
            f"domain run {spec!r}: expected '<domain>:in-domain', '<domain>:weighted', '<domain>:size-random' or "
            "'<domain>:size-<other domain>'"
        )
    domain, mode = parsed
    control = mode[len(CONTROL_PREFIX) :] if mode.startswith(CONTROL_PREFIX) else None
    domain = check_domain(domain, allow_other=False)
    if control and control != RANDOM_CONTROL and check_domain(control, allow_other=False) == domain:
        raise DomainError(f"domain run {spec!r}: a size-matched control needs another domain than {domain!r}")
    return domain, mode
