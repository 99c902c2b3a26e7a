"""Hybrid batches (the light install): which pairs share a batch, for anyone's sentence-transformers training.

``HybridBatchSampler`` draws each batch monolingual with probability α and cross-lingual otherwise, clash-free
(``fillers``); ``HybridBatches`` is the drop-in for a user's dataset in the plain trainer; ``alpha`` names α
(presets, ``alpha0.25``). Imports numpy, pandas and sentence-transformers only.
"""

from hybridir_utils.sampling.alpha import ALPHA_PREFIX, PRESETS, resolve_alpha, sampling_alpha
from hybridir_utils.sampling.batches import HybridBatches
from hybridir_utils.sampling.sampler import HybridBatchSampler

__all__ = ["ALPHA_PREFIX", "PRESETS", "HybridBatchSampler", "HybridBatches", "resolve_alpha", "sampling_alpha"]
