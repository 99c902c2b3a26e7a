"""Benchmarks against what a user would run instead (plain sentence-transformers): evaluation, encode and training
throughput, the sampler. Command line: ``python -m hybridir_utils.bench {eval,throughput,sampler} ...``."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.bench.cli import main

__all__ = ["main"]
__getattr__, __dir__ = lazy_face(__name__, __file__)
