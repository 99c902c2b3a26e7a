"""Benchmarks, one function per command:

    python -m hybridir_utils.bench eval --dataset xquad-r --languages en de --model multilingual-e5-small
    python -m hybridir_utils.bench sampler [...]      (hybrid batch sampler, see bench/sampler.py)
    python -m hybridir_utils.bench throughput [...]   (encode backends / training options, see bench/throughput.py)
    python -m hybridir_utils.bench device [...]       (on a GPU: project vs plain encode, trainer vs bare step)

``eval`` evaluates twice from one process: first with a fresh temporary embedding cache (everything encoded), then
again with that warm cache, and prints encode / search / metric / write times and the cold-to-warm wall-clock
ratio. Goals: search + metric <= 5% of encode time; the cached re-evaluation >= 20x faster than the first.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from hybridir_utils.bench import device, sampler, throughput
from hybridir_utils.data.lareqa_loader import load_lareqa
from hybridir_utils.evaluation.lareqa import evaluate_lareqa
from hybridir_utils.utils import atomic, paths


def _eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--dataset", default="xquad-r", choices=("xquad-r", "mlqa-r"))
    parser.add_argument("--languages", nargs="+", default=None, help="default: every language of the dataset")
    parser.add_argument("--model", default="multilingual-e5-small", help="name understood by models.load_encoder")
    parser.add_argument("--data-dir", default=None, help="LAReQA folder (default: $HYBRIDIR_DATA_DIR, shared data)")
    parser.add_argument("--articles", type=int, default=None, help="keep only the first N articles (smaller run)")
    parser.add_argument("--max-questions", type=int, default=None, help="keep N question groups (seeded)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--run-depth", type=int, default=10, help="TREC run depth (extended to the last relevant)")
    parser.add_argument("--no-runs", action="store_true", help="do not write TREC run files")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default=None, help="JSON result file (default: <build>/bench/eval.json)")
    return parser


def bench_eval(args: argparse.Namespace) -> dict:
    """Cold (fresh cache) then warm (cached) evaluation of one model; print and save the timings."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from hybridir_utils.models.loading import load_encoder

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    ds = _eval_dataset(args)
    encoder = load_encoder(args.model)
    kwargs = {"run_depth": args.run_depth, "write_runs": not args.no_runs, "show_progress_bar": True}
    with tempfile.TemporaryDirectory(prefix="hybridir-bench-") as tmp:
        walls, results = [], []
        for label in ("cold", "warm"):
            start = time.perf_counter()
            results.append(evaluate_lareqa(encoder, ds, Path(tmp) / label, cache_dir=Path(tmp) / "cache", **kwargs))
            walls.append(time.perf_counter() - start)
    result = _eval_summary(args, ds, *results, walls)
    out = Path(args.out) if args.out else paths.build_dir() / "bench" / "eval.json"
    atomic.write_json(out, result)
    print(f"  -> {out}")
    return result


def _eval_dataset(args: argparse.Namespace):
    """The LAReQA data to evaluate: the dataset's languages, optionally cut to some articles or questions."""
    ds = load_lareqa(args.dataset, languages=args.languages, data_dir=paths.lareqa_dir(args.data_dir))
    if args.articles is not None or args.max_questions is not None:
        articles = sorted(set(ds.questions.article))[: args.articles] if args.articles is not None else None
        ds = ds.subset(articles=articles, max_questions_per_lang=args.max_questions)
    return ds


def _eval_summary(args: argparse.Namespace, ds, cold: dict, warm: dict, walls: list[float]) -> dict:
    """The result record of the cold and warm runs, printed against the goals (module docstring)."""
    t = cold["timings"]
    same = all(cold[k] == warm[k] for k in ("mono_map", "cross_map", "multi_map") if k in cold)
    result = {
        "dataset": ds.name,
        "languages": list(ds.languages),
        "model": args.model,
        "questions": len(ds.questions),
        "candidates": len(ds.candidates),
        "texts_encoded": cold["encoding"]["n_encoded"],
        "encode_s": t["encode"],
        "search_s": t["search"],
        "metric_s": t["metric"],
        "write_s": t["write"],
        "fingerprint_s": t["fingerprint"],
        "search_metric_share_of_encode": (t["search"] + t["metric"]) / max(t["encode"], 1e-9),
        "cold_wall_s": walls[0],
        "warm_wall_s": walls[1],
        "warm_encoded": warm["encoding"]["n_encoded"],
        "cold_to_warm_ratio": walls[0] / max(walls[1], 1e-9),
        "metrics_identical": same,
        "mono_map": cold.get("mono_map"),
        "cross_map": cold.get("cross_map"),
        "multi_map": cold.get("multi_map"),
        "run_lines": cold["run_cut"].get("lines"),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
    }
    print(
        f"{ds.name} {' '.join(ds.languages)}: {result['questions']} questions, {result['candidates']} candidates, "
        f"{result['texts_encoded']} texts encoded\n"
        f"  encode {t['encode']:.1f} s | search {t['search']:.2f} s | metric {t['metric']:.2f} s | "
        f"write {t['write']:.2f} s | fingerprint {t['fingerprint']:.2f} s\n"
        f"  search+metric = {100 * result['search_metric_share_of_encode']:.2f}% of encode (goal <= 5%)\n"
        f"  cold {walls[0]:.1f} s, warm {walls[1]:.2f} s ({result['warm_encoded']} encoded): "
        f"{result['cold_to_warm_ratio']:.1f}x (goal >= 20x); metrics identical: {same}"
    )
    return result


def bench_throughput(args: argparse.Namespace) -> dict:
    return throughput.bench_throughput(args)


def bench_sampler(args: argparse.Namespace) -> dict:
    return sampler.bench_sampler(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hybridir_utils.bench", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _eval_arguments(sub.add_parser("eval", help="evaluation timings, cold vs cached")).set_defaults(func=bench_eval)
    sampler.add_arguments(sub.add_parser("sampler", help="batch sampler speed")).set_defaults(func=bench_sampler)
    throughput.add_arguments(sub.add_parser("throughput", help="encode / training speed options")).set_defaults(
        func=bench_throughput
    )
    device.add_arguments(sub.add_parser("device", help="project vs plain encode, trainer vs bare step")).set_defaults(
        func=lambda args: device.bench_device(args)
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    args.func(args)
    return 0
