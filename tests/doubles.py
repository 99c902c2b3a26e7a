"""Test doubles shared by several test files (pytest puts tests/ on sys.path: ``from doubles import ...``)."""

from __future__ import annotations

import hashlib

import numpy as np


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
