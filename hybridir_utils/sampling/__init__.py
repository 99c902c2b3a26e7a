"""Hybrid batches (the light install): which pairs share a batch, for anyone's sentence-transformers training.

``HybridBatchSampler`` draws each batch monolingual with probability α and cross-lingual otherwise, clash-free
(``fillers``); ``HybridBatches`` is the drop-in for a user's dataset in the plain trainer; ``alpha`` names α
(presets, ``alpha0.25``). Imports numpy, pandas and sentence-transformers only.
"""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.sampling.alpha import ALPHA_PREFIX, PRESETS, resolve_alpha, sampling_alpha
    from hybridir_utils.sampling.batches import HybridBatches
    from hybridir_utils.sampling.sampler import HybridBatchSampler

__all__ = ["ALPHA_PREFIX", "PRESETS", "HybridBatchSampler", "HybridBatches", "resolve_alpha", "sampling_alpha"]
# not public: the name pickled into training_args.bin before the subpackages, kept resolvable
__getattr__, __dir__ = lazy_face(__name__, __file__, extra={"SamplerFactory": "sampler"})
