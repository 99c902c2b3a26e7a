"""Hybrid batch sampler: composition rules, alpha, domains, determinism, errors, DDP sharding (torchrun + gloo)."""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hybridir_utils.errors import SamplerConfigError
from hybridir_utils.sampling import PRESETS, HybridBatchSampler, resolve_alpha
from hybridir_utils.sampling.fillers import answer_units

LANGS = ("ar", "de", "en", "zh")
DOMAINS = ("science", "news", "history")


def make_pairs(
    n_groups: int,
    langs=LANGS,
    seed: int = 0,
    min_langs: int | None = None,
    domains=DOMAINS,
    shared_every: int = 0,
) -> pd.DataFrame:
    """A pairs table like data.training_pairs: every (X, Y) of each group's languages, plus a domain column.

    ``shared_every=k``: every k-th group reuses the previous group's answer sentences (several questions, one answer).
    """
    rng = np.random.default_rng(seed)
    rows = []
    for g in range(n_groups):
        k = len(langs) if min_langs is None else int(rng.integers(min_langs, len(langs) + 1))
        present = sorted(rng.choice(langs, size=k, replace=False).tolist())
        answer_group = g - 1 if shared_every and g % shared_every == 0 and g > 0 else g
        domain = domains[g % len(domains)] if domains else None
        for x in present:
            for y in present:
                row = {
                    "query": f"q{g}-{x}",
                    "passage": f"p{answer_group}-{y}",
                    "query_lang": x,
                    "passage_lang": y,
                    "group": f"g{g}",
                    "article": f"a{g // 5}",
                }
                if domain is not None:
                    row["domain"] = domain
                rows.append(row)
    return pd.DataFrame(rows)


def check_step(table: pd.DataFrame, info, batches: list[list[int]]) -> None:
    """The composition rules for one global step (the batches of every rank)."""
    rows = [r for b in batches for r in b]
    sub = table.iloc[rows]
    if info.kind == "mono":
        assert (sub.query_lang == info.language).all() and (sub.passage_lang == info.language).all()
    else:
        assert info.kind == "cross" and info.language is None
        assert (sub.query_lang != sub.passage_lang).all()
    assert len(set(rows)) == len(rows)
    assert sub.group.is_unique, "a parallel group twice in one (global) batch: false negatives"
    assert sub["query"].is_unique and sub.passage.is_unique
    if info.domain is not None:
        assert (sub.domain == info.domain).all()


def steps_of(sampler: HybridBatchSampler):
    """Group iter_with_info(all ranks) by global step."""
    steps: dict[int, tuple] = {}
    for info, batch in sampler.iter_with_info(all_ranks=True):
        steps.setdefault(info.step, (info, []))[1].append(batch)
    return list(steps.values())


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_groups=st.integers(12, 40),
    batch_size=st.integers(1, 6),
    world_size=st.integers(1, 2),
    alpha=st.floats(0, 1),
    seed=st.integers(0, 2**31 - 1),
    min_langs=st.sampled_from([None, 2]),
    drop_last=st.booleans(),
    shared_every=st.sampled_from([0, 3]),
)
def test_every_batch_well_formed(n_groups, batch_size, world_size, alpha, seed, min_langs, drop_last, shared_every):
    table = make_pairs(n_groups, seed=seed, min_langs=min_langs, shared_every=shared_every)
    try:
        sampler = HybridBatchSampler(
            table, batch_size, drop_last=drop_last, seed=seed, alpha=alpha, world_size=world_size, rank=0
        )
    except SamplerConfigError as exc:
        # Only a genuinely small language pool may refuse: fewer groups holding it than one global batch needs.
        assert "cannot be met" in str(exc)
        mono = table[table.query_lang == table.passage_lang]
        units = answer_units(table)
        smallest = min(len(set(units[mono.index[mono.query_lang == lang]])) for lang in LANGS)
        cross_units = len(set(units[table.index[table.query_lang != table.passage_lang]]))
        assert min(smallest if alpha > 0 else 10**6, cross_units if alpha < 1 else 10**6) < 3 * batch_size * world_size
        return
    batches = list(sampler)
    assert len(batches) == len(sampler)
    assert all(len(b) == batch_size for b in batches)
    n_reachable = len(table) if 0 < alpha < 1 else int(((table.query_lang == table.passage_lang) == (alpha == 1)).sum())
    per_step = batch_size * world_size
    expected = n_reachable // per_step if drop_last else -(-n_reachable // per_step)
    assert len(sampler) == max(1, expected) * world_size
    for info, step_batches in steps_of(sampler):
        assert len(step_batches) == world_size
        check_step(table, info, step_batches)


@pytest.mark.parametrize("alpha", [0.2, 0.5, 0.8])
def test_mono_share_converges_to_alpha_and_languages_are_uniform(alpha):
    table = make_pairs(30)
    sampler = HybridBatchSampler(table, 4, alpha=alpha, seed=7, steps_per_epoch=3000, world_size=1, rank=0)
    infos = [info for info, _ in sampler.iter_with_info()]
    share = np.mean([i.kind == "mono" for i in infos])
    assert abs(share - alpha) < 0.04  # 4.5 binomial standard deviations at n=3000
    langs = Counter(i.language for i in infos if i.kind == "mono")
    n_mono = sum(langs.values())
    assert set(langs) == set(LANGS)
    assert all(abs(c / n_mono - 1 / len(LANGS)) < 0.05 for c in langs.values())


@pytest.mark.parametrize(("preset", "kinds"), [("x-x-mono", {"mono"}), ("x-y", {"cross"})])
def test_presets_give_pure_batch_types(preset, kinds):
    assert resolve_alpha(preset=preset) == PRESETS[preset]
    sampler = HybridBatchSampler(make_pairs(20), 4, preset=preset, seed=0, world_size=1, rank=0)
    assert {info.kind for info, _ in sampler.iter_with_info()} == kinds
    assert PRESETS["hybrid"] == 0.5 and resolve_alpha() == 0.5


def test_deterministic_for_a_seed_and_epoch_changes_the_draw():
    table = make_pairs(25, min_langs=2)

    def draw(seed, epoch=0):
        sampler = HybridBatchSampler(table, 5, seed=seed, world_size=1, rank=0)
        sampler.set_epoch(epoch)
        return list(sampler)

    assert draw(3) == draw(3)
    assert draw(3) != draw(4)
    assert draw(3, epoch=1) != draw(3) and draw(3, epoch=1) == draw(3, epoch=1)


def test_shared_answers_never_meet_in_a_batch():
    # Groups 3k and 3k-1 share their answer sentences: a batch holding both has a false negative.
    table = make_pairs(30, shared_every=3)
    units = answer_units(table)
    assert len(set(units)) == 30 - 9
    sampler = HybridBatchSampler(table, 8, alpha=0.0, seed=1, world_size=1, rank=0)
    for batch in sampler:
        assert pd.Series(units[batch]).is_unique
    unlinked = HybridBatchSampler(table, 8, alpha=0.0, seed=1, world_size=1, rank=0, link_shared_answers=False)
    assert any(not pd.Series(units[b]).is_unique for b in unlinked)  # the linking is what prevents it


def test_domain_filter_and_homogeneous_batches():
    table = make_pairs(60)
    only = HybridBatchSampler(table, 4, domains=["news", "history"], seed=0, world_size=1, rank=0)
    seen = {d for b in only for d in table.domain.iloc[b]}
    assert seen == {"news", "history"}
    homo = HybridBatchSampler(table, 4, domain_homogeneous=True, seed=0, world_size=2, rank=0, steps_per_epoch=300)
    steps = steps_of(homo)
    for info, batches in steps:
        check_step(table, info, batches)
        assert info.domain in DOMAINS
    assert {info.domain for info, _ in steps} == set(DOMAINS)
    assert {info.kind for info, _ in steps} == {"mono", "cross"}


def test_domain_weights_oversample():
    table = make_pairs(60)  # three domains of equal size
    sampler = HybridBatchSampler(
        table, 6, domain_weights={"science": 4.0, "news": 1.0, "history": 0.0}, seed=2, steps_per_epoch=400,
        world_size=1, rank=0,
    )  # fmt: skip
    counts = Counter(d for b in sampler for d in table.domain.iloc[b])
    assert counts["history"] == 0
    assert 3.0 < counts["science"] / counts["news"] < 5.0  # weight ratio 4 (equal pool sizes)
    homo = HybridBatchSampler(
        table, 4, domain_weights={"science": 3.0}, domain_homogeneous=True, seed=2, steps_per_epoch=600,
        world_size=1, rank=0,
    )  # fmt: skip
    share = Counter(info.domain for info, _ in homo.iter_with_info())
    assert 0.5 < share["science"] / 600 < 0.7  # 3 / (3 + 1 + 1)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"alpha": 1.5}, "alpha"),
        ({"alpha": -0.1}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"alpha": "half"}, "alpha"),
        ({"preset": "mono"}, "preset"),
        ({"preset": "x-y", "alpha": 0.5}, "contradicts"),
        ({"batch_size": 0}, "batch_size"),
        ({"domains": ["sport"]}, "sport"),
        ({"domains": []}, "domains"),
        ({"domains": "news"}, "domains"),
        ({"domain_weights": {"sport": 1.0}}, "sport"),
        ({"domain_weights": {"news": -1.0}}, "news"),
        ({"domain_weights": {"news": 0, "science": 0, "history": 0}}, "zero"),
        ({"languages": ["xx"]}, "xx"),
        ({"languages": ["en"]}, "cross-lingual"),  # alpha 0.5 needs X-Y pairs: one language has none
        ({"domain_column": "topic", "domain_homogeneous": True}, "topic"),
        ({"batch_size": 25}, "mono ar"),  # 20 groups per language < 25
        ({"batch_size": 12, "world_size": 2, "rank": 1}, "24 pairs per step"),
        ({"batch_size": 4, "domain_homogeneous": True, "domains": ["news"], "alpha": 1.0, "world_size": 2}, "news"),
    ],
)
def test_infeasible_or_malformed_settings_fail_at_construction(kwargs, needle):
    table = make_pairs(20)
    kwargs = {"batch_size": 4, "world_size": 1, "rank": 0, **kwargs}
    batch_size = kwargs.pop("batch_size")
    with pytest.raises(SamplerConfigError, match=needle):
        HybridBatchSampler(table, batch_size, **kwargs)


def test_missing_mono_language_and_empty_filters_are_named():
    table = make_pairs(20)
    no_zh_mono = table[~((table.query_lang == "zh") & (table.passage_lang == "zh"))]
    with pytest.raises(SamplerConfigError, match=r"\['zh'\] have no monolingual row"):
        HybridBatchSampler(no_zh_mono, 2, alpha=0.5, world_size=1, rank=0)
    # X-Y alone does not need monolingual pairs
    assert len(HybridBatchSampler(no_zh_mono, 2, alpha=0.0, world_size=1, rank=0)) > 0
    with pytest.raises(SamplerConfigError, match="empty"):
        HybridBatchSampler(table.iloc[:0], 2, world_size=1, rank=0)
    with pytest.raises(SamplerConfigError, match="lacks column"):
        HybridBatchSampler(table.drop(columns="group"), 2, world_size=1, rank=0)
    # every row holds 'en', but none has both languages in ['en']: named by column, with what to widen
    cross_only = table[table.query_lang != table.passage_lang]
    cross_only = cross_only[(cross_only.query_lang == "en") | (cross_only.passage_lang == "en")]
    with pytest.raises(SamplerConfigError, match=r"no row is left.*\['query_lang', 'passage_lang'\].*widen languages="):
        HybridBatchSampler(cross_only, 2, alpha=0.0, languages=["en"], world_size=1, rank=0)


def test_factory_keeps_metadata_out_of_the_dataset_and_checks_row_order():
    from datasets import Dataset

    table = make_pairs(20)
    dataset = Dataset.from_dict({"query": table["query"].tolist(), "passage": table.passage.tolist()})
    factory = HybridBatchSampler.factory(table, alpha=0.5)
    # The call SentenceTransformerTrainer.get_batch_sampler makes.
    sampler = factory(dataset, batch_size=4, drop_last=False, valid_label_columns=["label"], generator=None, seed=9)
    assert sampler.seed == 9 and len(list(sampler)) == len(sampler)
    assert repr(factory) == f"HybridBatchSampler.factory(<{len(table)} pairs>, alpha=0.5)"  # no table dump in logs
    shuffled = Dataset.from_dict({"query": table["query"].tolist()[::-1], "passage": table.passage.tolist()[::-1]})
    with pytest.raises(SamplerConfigError, match="same order"):
        factory(shuffled, batch_size=4, drop_last=False, seed=0)
    with pytest.raises(SamplerConfigError, match="rows"):
        factory(dataset.select(range(10)), batch_size=4, drop_last=False, seed=0)
    # The trainer pickles its arguments into checkpoints: the table must not travel with them.
    restored = pickle.loads(pickle.dumps(factory))
    assert restored.pairs is None
    with pytest.raises(SamplerConfigError, match=r"read back from a checkpoint.*build it again from your data"):
        restored(dataset, batch_size=4, drop_last=False, seed=0)
    with pytest.raises(SamplerConfigError, match="alpha"):
        HybridBatchSampler.factory(table, alpha=2)


def test_accelerate_sharding_matches_self_sharding_in_one_process():
    from accelerate.data_loader import BatchSamplerShard

    table = make_pairs(30, min_langs=2)
    common = {"seed": 4, "world_size": 3}
    full = HybridBatchSampler(table, 3, **common, rank=0)
    for rank in range(3):
        via_accelerate = list(BatchSamplerShard(full, num_processes=3, process_index=rank, even_batches=False))
        own = HybridBatchSampler(table, 3, **common, rank=rank, shard=True)
        assert via_accelerate == list(own)
        assert len(own) == len(full) // 3 == len(via_accelerate)


def test_real_mlqa_pairs_feasible_and_clean(shared_data_dir):
    from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs

    pairs = training_pairs(load_lareqa("mlqa-r", data_dir=shared_data_dir))
    sampler = HybridBatchSampler(pairs, 32, seed=0, world_size=1, rank=0, steps_per_epoch=60)
    for info, batches in steps_of(sampler):
        check_step(pairs, info, batches)


# ------------------------------------------------------------------ distributed: 2 processes, gloo, no model
def _ddp_worker(out_dir: str) -> None:
    import torch.distributed as dist
    from accelerate.data_loader import BatchSamplerShard

    dist.init_process_group("gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    table = make_pairs(40, min_langs=2, shared_every=4)
    sampler = HybridBatchSampler(table, 4, seed=11, alpha=0.5)  # world size and rank from the process group
    sampler.set_epoch(2)
    via_accelerate = list(BatchSamplerShard(sampler, num_processes=world, process_index=rank, even_batches=False))
    own = HybridBatchSampler(table, 4, seed=11, alpha=0.5, shard=True)
    own.set_epoch(2)
    infos = [(i.step, i.kind, i.language) for i, _ in own.iter_with_info()]
    single = HybridBatchSampler(table, 4 * world, seed=11, alpha=0.5, world_size=1, rank=0)  # one process, same step
    single.set_epoch(2)
    record = {"rank": rank, "world": sampler.world_size, "accelerate": via_accelerate, "own": list(own), "infos": infos,
              "single": list(single)}  # fmt: skip
    gathered: list = [None] * world
    dist.all_gather_object(gathered, record)
    if rank == 0:
        Path(out_dir, "batches.json").write_text(json.dumps(gathered))
    dist.barrier()
    dist.destroy_process_group()


def test_two_process_ranks_get_disjoint_well_formed_batches(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[3]), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = sorted(json.loads((tmp_path / "batches.json").read_text()), key=lambda r: r["rank"])
    assert [r["world"] for r in records] == [2, 2]
    table = make_pairs(40, min_langs=2, shared_every=4)
    units = answer_units(table)
    n_steps = len(records[0]["own"])
    assert n_steps == len(records[1]["own"]) > 0
    for r in records:
        assert r["accelerate"] == r["own"]  # accelerate's round-robin share == the sampler's own share
        assert all(len(b) == 4 for b in r["own"])
    # torchrun on N processes trains on exactly the batches one process draws at N x the batch size
    assert len(records[0]["single"]) == n_steps
    for step in range(n_steps):
        assert sorted(records[0]["own"][step] + records[1]["own"][step]) == sorted(records[0]["single"][step])
    for step in range(n_steps):
        kinds = {tuple(r["infos"][step]) for r in records}
        assert len(kinds) == 1  # both ranks run the same batch type and language in a step
        _, kind, lang = kinds.pop()
        rows = records[0]["own"][step] + records[1]["own"][step]
        sub = table.iloc[rows]
        assert pd.Series(units[rows]).is_unique and sub.passage.is_unique  # ranks disjoint, no false negatives
        if kind == "mono":
            assert (sub.query_lang == lang).all() and (sub.passage_lang == lang).all()
        else:
            assert (sub.query_lang != sub.passage_lang).all()
    # The cross-lingual pool is larger than one epoch's cross batches: no pair is served twice, on any rank.
    cross_rows = [
        r
        for rec in records
        for (_, kind, _), batch in zip(rec["infos"], rec["own"], strict=True)
        if kind == "cross"
        for r in batch
    ]
    assert (table.query_lang != table.passage_lang).sum() > len(cross_rows) > 0
    assert len(set(cross_rows)) == len(cross_rows)


if __name__ == "__main__":
    _ddp_worker(sys.argv[1])


@pytest.mark.parametrize("alpha", [True, "0.5"])
def test_alpha_must_be_a_real_number(alpha):
    """Issue 12 defect 8: alpha=True was read as 1.0 (all batches monolingual)."""
    from hybridir_utils.sampling.sampler import SamplerConfigError, resolve_alpha

    with pytest.raises(SamplerConfigError, match="alpha must be a number in"):
        resolve_alpha(alpha)


def test_a_sampling_is_a_preset_or_an_alpha_point():
    from hybridir_utils.sampling import sampling_alpha
    from hybridir_utils.sampling.alpha import sampling_problem

    assert [sampling_alpha(n) for n in ("x-x-mono", "x-y", "hybrid", "alpha0.25", "alpha1")] == [1, 0, 0.5, 0.25, 1]
    for bad in ("alpha", "alpha-0.1", "alpha1.01", "alphax", "mono", "alphanan"):
        with pytest.raises(SamplerConfigError, match=f"unknown sampling '{bad}'"):
            sampling_alpha(bad)
        assert f"unknown sampling '{bad}'" in sampling_problem(bad)  # the check a grid and a profile share
    assert sampling_problem("hybrid") is None and sampling_problem("alpha0.25") is None


def test_the_names_old_checkpoints_pickled_still_resolve():
    """A training's training_args.bin from before the subpackages names the sampler by its old global names."""
    import pickle

    from hybridir_utils.sampling.sampler import SamplerFactory

    assert pickle.loads(b"chybridir_utils.sampling\nSamplerFactory\n.") is SamplerFactory
    assert pickle.loads(b"chybridir_utils.sampling\nHybridBatchSampler\n.") is HybridBatchSampler
