"""Test doubles shared by several test files (pytest puts tests/ on sys.path: ``from doubles import ...``)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pandas as pd


class HashEncoder:
    """Deterministic character-trigram hashing encoder: cheap, and similar texts get similar vectors."""

    def __init__(self, dim: int = 64):
        self.dim = dim
        self.n_encoded = 0

    def fingerprint(self) -> str:
        return f"hash-trigram-{self.dim}"

    def encode(self, texts, prompt_name=None, batch_size=32, **kwargs):
        self.n_encoded += len(texts)
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, text in enumerate(texts):
            padded = f"  {text.lower()}  "
            for j in range(len(padded) - 2):
                h = int.from_bytes(hashlib.md5(padded[j : j + 3].encode()).digest()[:4], "little")
                out[i, h % self.dim] += 1.0
        return out


# ---- the statistics tests' hand case and simulated clustered data (evaluation.stats, analysis.seed_level) ----
# Hand case: 2 strata, 3 question groups; stratum s2 lacks group g3, so the macro mean (0.35) differs from the
# mean over rows (0.32). Rows: s1/g1, s1/g2, s1/g3, s2/g1, s2/g2.
STRATA = np.array(["s1", "s1", "s1", "s2", "s2"])

GROUPS = np.array(["g1", "g2", "g3", "g1", "g2"])

A = np.array([0.2, 0.4, 0.0, 1.0, 0.0])  # s1 0.2, s2 0.5 -> macro 0.35

# two seeds: seed 0 macro (0.5 + 0.7) / 2 = 0.6, seed 1 macro (0.5 + 0.5) / 2 = 0.5; seed mean
# [0.4, 0.5, 0.6, 0.9, 0.3] -> (0.5 + 0.6) / 2 = 0.55; b - a per row: [0.2, 0.1, 0.6, -0.1, 0.3]
B = np.array([[0.3, 0.5, 0.7, 1.0, 0.4], [0.5, 0.5, 0.5, 0.8, 0.2]])


def simulate_clustered(rng, n_groups=80, n_strata=8, effect=0.05, group_sd=0.1, row_sd=0.03):
    """Rows of every group in every stratum; b - a = effect + a per-group effect shared by its rows + noise."""
    n = n_groups * n_strata
    groups = np.repeat(np.arange(n_groups), n_strata)
    strata = np.tile(np.arange(n_strata), n_groups)
    a = rng.normal(0.5, 0.15, n_groups)[groups] + rng.normal(0, 0.1, n_strata)[strata] + rng.normal(0, 0.05, n)
    b = a + effect + rng.normal(0, group_sd, n_groups)[groups] + rng.normal(0, row_sd, n)
    return {"a": a, "b": b}, strata, groups


# ---- MIRACL: the fixture files and a cheap lexical encoder ----
MIRACL_FIXTURES = Path(__file__).parent / "fixtures" / "miracl"
MIRACL_LOCAL = MIRACL_FIXTURES / "local"
MIRACL_HUB = MIRACL_FIXTURES / "hub"  # a fake of the hub repos miracl/miracl and miracl/miracl-corpus, file for file


class BigramEncoder:
    """Deterministic character-bigram hashing encoder (test double: cheap, lexical)."""

    def fingerprint(self) -> str:
        return "hash-bigram-64"

    def encode(self, texts, prompt_name=None, **kwargs):
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for j in range(len(text) - 1):
                out[i, hashlib.md5(text[j : j + 2].lower().encode()).digest()[0] % 64] += 1.0
        return out


def copy_local_miracl(tmp_path: Path) -> Path:
    root = tmp_path / "miracl"
    shutil.copytree(MIRACL_LOCAL, root)
    return root


# ---- per-query tables with a known domain effect (analysis.effects, report.summaries) ----
def topical_results(tmp_path, gains: dict[str, tuple[float, float]], seeds=(0, 1, 2)) -> pd.DataFrame:
    """Per-query tables of 2 languages x 24 groups in 12 articles (a0-a5 news, a6-a11 science); each system gains
    (on news articles, elsewhere) over the control, plus a small per-seed offset (run-to-run variance)."""
    frames = []
    for system, (on_news, elsewhere) in gains.items():
        for seed in seeds:
            rows = [dict(qid=f"{x}:g{g}", query_lang=x, pool_lang=y, setting="cross" if x != y else "mono",
                         ap=0.3 + 0.01 * g + 0.002 * seed + (on_news if g < 12 else elsewhere), group=f"g{g}",
                         article=f"a{g // 2}", domain="news" if g < 12 else "science")
                    for g in range(24) for x in ("en", "de") for y in ("en", "de")]  # fmt: skip
            path = tmp_path / f"{system.replace('/', '_')}-{seed}.parquet"
            pd.DataFrame(rows).to_parquet(path)
            frames.append(dict(system=system, seed=seed, dataset="xquad-r", per_query=str(path)))
    return pd.DataFrame(frames)
