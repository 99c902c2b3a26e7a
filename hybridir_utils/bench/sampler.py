"""Benchmark: hybrid batch sampler speed and its share of a real e5-small training step on this CPU.

``python -m hybridir_utils.bench sampler`` (wired by bench/cli.py) or ``python -m hybridir_utils.bench.sampler``:

* batches/s of :class:`~hybridir_utils.sampling.HybridBatchSampler` vs sentence-transformers'
  ``NoDuplicatesBatchSampler`` (plain and with precomputed hashes) on the same real training pairs;
* seconds per training step of e5-small (forward + backward + AdamW on real hybrid batches) with and without a
  frozen word-embedding matrix, and the sampler's share of a step (goal: <= 1%).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.utils import atomic, paths


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--dataset", default="mlqa-r", choices=("mlqa-r", "xquad-r"), help="training pairs to draw")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--alpha", type=float, default=0.5)
    parser.add_argument("--batches", type=int, default=300, help="batches timed per sampler")
    parser.add_argument("--train-steps", type=int, default=2, help="timed training steps per setting (0: skip)")
    parser.add_argument("--max-seq-length", type=int, default=128)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON result file (default: <build>/bench/sampler.json)")
    return parser


def _time_batches(sampler, n: int) -> tuple[float, int]:
    """Seconds to draw up to ``n`` batches (re-entering the iterator as epochs end) and how many were drawn."""
    done, start = 0, time.perf_counter()
    while done < n:
        before = done
        for _ in sampler:
            done += 1
            if done >= n:
                break
        if done == before:
            break
    return time.perf_counter() - start, done


def bench_samplers(pairs, batch_size: int, alpha: float, n_batches: int, seed: int = 0) -> dict[str, Any]:
    """batches/s of the hybrid sampler and of NoDuplicatesBatchSampler (plain, hashed) on the same pairs."""
    from sentence_transformers.base.sampler import NoDuplicatesBatchSampler

    from hybridir_utils.sampling.sampler import HybridBatchSampler
    from hybridir_utils.training.trainer import loss_dataset

    dataset = loss_dataset(pairs)
    out: dict[str, Any] = {}
    start = time.perf_counter()
    hybrid = HybridBatchSampler(dataset, batch_size, seed=seed, pairs=pairs, alpha=alpha, world_size=1, rank=0)
    out["hybrid_init_s"] = time.perf_counter() - start
    seconds, drawn = _time_batches(hybrid, n_batches)
    out["hybrid_batches_per_s"] = drawn / seconds
    for name, hashed in (("no_duplicates", False), ("no_duplicates_hashed", True)):
        sampler = NoDuplicatesBatchSampler(
            dataset, batch_size, drop_last=True, seed=seed, precompute_hashes=hashed, precompute_num_proc=1
        )
        if hashed:  # hashing is a one-off cost: time it apart from the draw
            start = time.perf_counter()
            sampler._build_hashes()
            out[f"{name}_init_s"] = time.perf_counter() - start
        seconds, drawn = _time_batches(sampler, n_batches)
        out[f"{name}_batches_per_s"] = drawn / seconds
    return out


def bench_train_steps(pairs, args, hybrid_batches: list[list[int]]) -> dict[str, Any]:
    """Mean seconds per e5-small step (tokenise, forward, backward, AdamW) with and without frozen embeddings."""
    import torch
    from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

    from hybridir_utils.models.loading import load_encoder
    from hybridir_utils.training.trainer import PROMPTS, freeze

    out: dict[str, Any] = {}
    queries, passages = pairs["query"].tolist(), pairs["passage"].tolist()
    for frozen in (True, False):
        torch.manual_seed(args.seed)
        model = load_encoder(args.model)
        model.max_seq_length = args.max_seq_length
        counts = freeze(model, embeddings=frozen, layers=0)
        loss = MultipleNegativesRankingLoss(model)
        optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=3e-5, weight_decay=0.01)
        model.train()
        times, optimizer_times = [], []
        for step in range(args.train_steps + 1):  # step 0 warms up allocations and is not timed
            batch = hybrid_batches[step % len(hybrid_batches)]
            start = time.perf_counter()
            features = [
                model.preprocess([PROMPTS["query"] + queries[i] for i in batch]),
                model.preprocess([PROMPTS["passage"] + passages[i] for i in batch]),
            ]
            value = loss(features, None)
            value.backward()
            optimizer_start = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:
                times.append(time.perf_counter() - start)
                optimizer_times.append(time.perf_counter() - optimizer_start)
        key = "frozen_embeddings" if frozen else "full"
        out[f"step_s_{key}"] = float(np.mean(times))
        out[f"steps_per_s_{key}"] = 1.0 / float(np.mean(times))
        out[f"optimizer_step_s_{key}"] = float(np.mean(optimizer_times))
        out[f"trainable_parameters_{key}"] = counts["trainable"]
        del model, optimizer, loss
    return out


def bench_sampler(args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Run the sampler benchmark, print a summary, write it as JSON and return it."""
    import torch

    from hybridir_utils.sampling.sampler import HybridBatchSampler

    args = args if args is not None else add_arguments(argparse.ArgumentParser()).parse_args([])
    if args.threads:
        torch.set_num_threads(args.threads)
    pairs = training_pairs(load_lareqa(args.dataset))
    result: dict[str, Any] = {
        "dataset": args.dataset,
        "pairs": len(pairs),
        "batch_size": args.batch_size,
        "alpha": args.alpha,
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        **bench_samplers(pairs, args.batch_size, args.alpha, args.batches, args.seed),
    }
    result["hybrid_ms_per_batch"] = 1000.0 / result["hybrid_batches_per_s"]
    if args.train_steps > 0:
        sampler = HybridBatchSampler(pairs, args.batch_size, seed=args.seed, alpha=args.alpha, world_size=1, rank=0)
        batches = [b for b, _ in zip(sampler, range(args.train_steps + 1), strict=False)]
        result.update(bench_train_steps(pairs, args, batches))
        result["max_seq_length"] = args.max_seq_length
        result["sampler_share_of_step_frozen"] = (
            result["hybrid_ms_per_batch"] / 1000.0 / result["step_s_frozen_embeddings"]
        )
        result["sampler_share_of_step_full"] = result["hybrid_ms_per_batch"] / 1000.0 / result["step_s_full"]
        result["frozen_speedup"] = result["step_s_full"] / result["step_s_frozen_embeddings"]
    out = args.out or paths.build_dir() / "bench" / "sampler.json"
    atomic.write_json(out, result)
    width = max(len(k) for k in result)
    for key, value in result.items():
        print(f"{key:<{width}}  {value:.4g}" if isinstance(value, float) else f"{key:<{width}}  {value}")
    print(f"written to {out}")
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    parser = add_arguments(argparse.ArgumentParser(prog="bench sampler", description=__doc__.splitlines()[0]))
    return bench_sampler(parser.parse_args(argv))


if __name__ == "__main__":
    main()
