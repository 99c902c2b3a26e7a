"""Benchmarks against what a user would run instead (plain sentence-transformers): evaluation, encode and training
throughput, the sampler. Command line: ``python -m hybridir_utils.bench {eval,throughput,sampler} ...``."""

from hybridir_utils.bench.cli import main

__all__ = ["main"]
