"""Benchmark: encode and training throughput options on this CPU, with the mAP each encode option gives.

``python -m hybridir_utils.bench throughput`` (wired by bench.py), in one run on the same data:

* **encode**: sentences/s of plain ``SentenceTransformer.encode`` (its defaults: batch 32, texts sorted by
  character count) vs the project's encode path (:func:`retrieval.embeddings.encode_cached`, no cache) with
  each option of :mod:`models.backends` alone and together, on the same mixed-language candidate
  sentences; plus each option's LAReQA mAP on a small subset (``evaluate_lareqa``) and its change vs plain
  (goal: >= 2x plain with |mAP change| <= 0.005);
* **training**: steps/s of e5-small (tokenise, forward, backward, AdamW on real hybrid batches) at one batch size
  for full fine-tuning and each :class:`~hybridir_utils.training.config.TrainConfig` cost option (goal: >= 1.5x full).

The CPU may be shared: each encode setting is timed ``--repeats`` times, interleaved, and the best time is kept.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.evaluation.lareqa import evaluate_lareqa
from hybridir_utils.retrieval.embeddings import encode_cached
from hybridir_utils.utils import atomic, environment, paths

# (label, backend, token batching, "large" | "small" batch): the plain-ST row is added apart.
_ENCODE_SETTINGS = (
    ("project path (torch)", "torch", False, "large"),
    ("+ token-length batching", "torch", True, "large"),
    ("+ token-length batching, small batch", "torch", True, "small"),
    ("onnx", "onnx", False, "large"),
    ("onnx-int8", "onnx-int8", False, "large"),
    ("torch-int8", "torch-int8", False, "large"),
    ("all: onnx + token batching + small batch", "onnx", True, "small"),
    ("all int8: onnx-int8 + token + small batch", "onnx-int8", True, "small"),
)
_PLAIN = "plain SentenceTransformer.encode"
# bf16 autocast on the project path, added where the CPU has bf16 units (AMX / AVX512-BF16); its mAP change decides
# whether precision "auto" uses bf16 on this CPU model (environment.bf16_verified_on_cpu).
_BF16 = "bf16 autocast + token-length batching"
# (label, TrainConfig overrides): every row at the same batch size.
_TRAIN_SETTINGS = (
    ("full fine-tuning (seq 128)", {"freeze_embeddings": False}),
    ("freeze embeddings (project default)", {}),
    ("freeze 6 layers", {"freeze_embeddings": False, "freeze_layers": 6}),
    ("max_seq_length 64", {"freeze_embeddings": False, "max_seq_length": 64}),
    ("gradient checkpointing", {"freeze_embeddings": False, "gradient_checkpointing": True}),
    ("cached-mnrl (mini-batch 8)", {"freeze_embeddings": False, "loss": "cached-mnrl", "mini_batch_size": 8}),
    ("freeze emb + 6 layers + seq 64", {"freeze_layers": 6, "max_seq_length": 64}),
)


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--dataset", default="xquad-r", choices=("xquad-r", "mlqa-r"), help="encode / mAP data")
    parser.add_argument("--languages", nargs="+", default=["en", "de", "zh"], help="mixed scripts on purpose")
    parser.add_argument("--data-dir", default=None, help="LAReQA folder (default: $HYBRIDIR_DATA_DIR, shared data)")
    parser.add_argument("--n", type=int, default=192, help="candidate sentences encoded per setting (0: skip)")
    parser.add_argument("--batch-size", type=int, default=64, help="the project's evaluation batch size")
    parser.add_argument("--small-batch", type=int, default=16, help="the small batch size tried with token batching")
    parser.add_argument("--repeats", type=int, default=2, help="timed encodes per setting (best kept)")
    parser.add_argument("--backends", nargs="+", default=None, help="limit the encode rows to these backends")
    parser.add_argument("--map-articles", type=int, default=2, help="articles of the mAP subset (0: skip mAP)")
    parser.add_argument("--train-dataset", default="mlqa-r", choices=("mlqa-r", "xquad-r"))
    parser.add_argument("--train-batch-size", type=int, default=16)
    parser.add_argument("--train-steps", type=int, default=3, help="timed steps per setting after 1 warm-up (0: skip)")
    parser.add_argument("--threads", type=int, default=None, help="torch / ONNX Runtime threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="JSON result file (default: <build>/bench/throughput.json)")
    return parser


# ---------------------------------------------------------------------------------------------- encode


def _set_token_batching(model, on: bool) -> None:
    from hybridir_utils.models.backends import token_length_batching

    if on:
        token_length_batching(model)
    else:
        model.__dict__.pop("_input_length", None)


def bench_encode(args: argparse.Namespace, texts: list[str], map_ds) -> list[dict[str, Any]]:
    """One row per encode setting: best sentences/s over the repeats, and mAP on ``map_ds`` (None: skipped)."""
    from hybridir_utils.models import backends, loading

    sizes = {"large": args.batch_size, "small": args.small_batch}
    settings = [s for s in _ENCODE_SETTINGS if args.backends is None or s[1] in args.backends]
    backend_names = dict.fromkeys(s[1] for s in settings)
    models = {b: loading.load_encoder(args.model, backend=b, token_batching=False) for b in backend_names}
    plain = models.get("torch") or loading.load_encoder(args.model, token_batching=False)

    def encode(row: dict[str, Any], batch_texts: list[str]) -> None:
        plain_row = row["setting"] == _PLAIN
        model = plain if plain_row else models[row["backend"]]
        _set_token_batching(model, row["token_batching"])
        if plain_row:  # sentence-transformers' defaults, nothing of the project's path
            model.encode(batch_texts, prompt_name="passage", normalize_embeddings=True)
            return
        backends.forget_features()  # each timed encode tokenises, as a single system's does
        with environment.autocast(row.get("precision", "fp32"), "cpu"):
            encode_cached(
                model, batch_texts, "passage", batch_size=row["batch_size"], use_cache=False, show_progress_bar=False
            )

    rows = [{"setting": _PLAIN, "backend": "torch", "token_batching": False, "batch_size": 32}]
    rows += [
        {"setting": label, "backend": backend, "token_batching": token, "batch_size": sizes[size]}
        for label, backend, token, size in settings
    ]
    if environment.cpu_has_bf16() and "torch" in models:
        rows.append({"setting": _BF16, "backend": "torch", "token_batching": True, "batch_size": sizes["large"],
                     "precision": "bf16"})  # fmt: skip
    for row in rows:
        encode(row, texts[: args.small_batch])  # warm-up: lazy initialisation, first-call costs
        row["best_s"] = float("inf")
    for repeat in range(args.repeats):  # interleaved, so a burst of load on the shared CPU hits every setting
        for row in rows:
            start = time.perf_counter()
            encode(row, texts)
            row["best_s"] = min(row["best_s"], time.perf_counter() - start)
        print(f"  encode round {repeat + 1}/{args.repeats} (load average {os.getloadavg()[0]:.1f})", flush=True)
    base = rows[0]["best_s"]
    for row in rows:
        row["sentences_per_s"] = len(texts) / row["best_s"]
        row["speedup_vs_plain"] = base / row["best_s"]
    if map_ds is not None:
        with tempfile.TemporaryDirectory(prefix="hybridir-throughput-") as tmp:
            for i, row in enumerate(rows):
                model = plain if row["setting"] == _PLAIN else models[row["backend"]]
                _set_token_batching(model, row["token_batching"])
                with environment.autocast(row.get("precision", "fp32"), "cpu"):
                    metrics = evaluate_lareqa(
                        model, map_ds, Path(tmp) / str(i), settings=("mono", "multi"), batch_size=row["batch_size"],
                        use_cache=False, write_runs=False, show_progress_bar=False,
                    )  # fmt: skip
                row["mono_map"], row["multi_map"] = metrics["mono_map"], metrics["multi_map"]
        for row in rows:
            for key in ("mono_map", "multi_map"):
                row[f"{key}_change"] = row[key] - rows[0][key]
    return rows


# ---------------------------------------------------------------------------------------------- training


def cuda_sync() -> None:
    """Wait for the GPU's queued work (timings end there); nothing on a CPU."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed_steps(model, loss, optimizer, batches, queries, passages, precision: str = "fp32", warmup: int = 1) -> float:
    """Mean seconds per step of the bare loop, tokenise + forward + backward + AdamW and nothing else, over the
    steps after ``warmup``: what ``bench throughput`` times per option and ``bench device`` sets the trainer beside.
    """
    from hybridir_utils.training.trainer import PROMPTS

    model.train()
    times = []
    for step, batch in enumerate(batches):
        start = time.perf_counter()
        sides = [[PROMPTS[kind] + column[i] for i in batch] for kind, column in (("query", queries),
                                                                                 ("passage", passages))]  # fmt: skip
        features = [{k: v.to(model.device) if hasattr(v, "to") else v for k, v in model.preprocess(side).items()}
                    for side in sides]  # fmt: skip
        with environment.autocast(precision):
            value = loss(features, None)
        value.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        cuda_sync()
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return float(np.mean(times))


def bench_training_options(args: argparse.Namespace) -> list[dict[str, Any]]:
    """Seconds per training step for each cost option, on the same real hybrid batches (1 warm-up step)."""
    import torch

    from hybridir_utils.models.loading import load_encoder
    from hybridir_utils.sampling.sampler import HybridBatchSampler
    from hybridir_utils.training.config import TrainConfig
    from hybridir_utils.training.trainer import freeze, make_loss, transformer_backbone

    pairs = training_pairs(load_lareqa(args.train_dataset, data_dir=paths.lareqa_dir(args.data_dir)))
    sampler = HybridBatchSampler(pairs, args.train_batch_size, seed=args.seed, alpha=0.5, world_size=1, rank=0)
    batches = [b for b, _ in zip(sampler, range(args.train_steps + 1), strict=False)]
    queries, passages = pairs["query"].tolist(), pairs["passage"].tolist()
    rows = []
    for label, overrides in _TRAIN_SETTINGS:
        cfg = TrainConfig(model=args.model, batch_size=args.train_batch_size, seed=args.seed, **overrides)
        torch.manual_seed(args.seed)
        model = load_encoder(cfg.model)
        model.max_seq_length = cfg.max_seq_length
        counts = freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
        if cfg.gradient_checkpointing:  # what the trainer's activation_checkpointing turns on
            transformer_backbone(model).gradient_checkpointing_enable(
                gradient_checkpointing_kwargs={"use_reentrant": False}
            )
        loss = make_loss(model, cfg)
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=cfg.weight_decay)
        step_s = timed_steps(model, loss, optimizer, batches, queries, passages)
        rows.append({"setting": label, "step_s": step_s, "steps_per_s": 1.0 / step_s, **counts, **overrides})
        print(f"  train {label}: {step_s:.2f} s/step", flush=True)
        del model, loss, optimizer
    for row in rows:
        row["speedup_vs_full"] = rows[0]["step_s"] / row["step_s"]
    return rows


# ---------------------------------------------------------------------------------------------- report


def _print_tables(result: dict[str, Any]) -> None:
    enc = result["encode"]
    if enc:
        has_map = "multi_map" in enc[0]
        print(
            f"\nencode: {result['texts']} {'/'.join(result['languages'])} {result['dataset']} candidate sentences, "
            f"{result['threads']} threads; mAP on {result.get('map_subset', 'no subset')}"
        )
        head = f"{'setting':<44} {'batch':>5} {'sent/s':>7} {'x plain':>7}"
        print(head + (f" {'mono mAP':>9} {'multi mAP':>9} {'d mono':>7} {'d multi':>7}" if has_map else ""))
        for r in enc:
            line = f"{r['setting']:<44} {r['batch_size']:>5} {r['sentences_per_s']:>7.1f} {r['speedup_vs_plain']:>7.2f}"
            if has_map:
                line += (
                    f" {r['mono_map']:>9.4f} {r['multi_map']:>9.4f} {r['mono_map_change']:>+7.4f}"
                    f" {r['multi_map_change']:>+7.4f}"
                )
            print(line)
    train = result["train"]
    if train:
        print(f"\ntraining: batch {result['train_batch_size']}, {result['train_dataset']} hybrid batches, mean of "
              f"{result['train_steps']} steps after 1 warm-up")  # fmt: skip
        print(f"{'setting':<40} {'s/step':>7} {'steps/s':>7} {'x full':>6} {'trainable':>11}")
        for r in train:
            print(
                f"{r['setting']:<40} {r['step_s']:>7.2f} {r['steps_per_s']:>7.3f} {r['speedup_vs_full']:>6.2f} "
                f"{r['trainable']:>11,}"
            )
    for goal in result["goals"]:
        print(goal)


def _map_change(row: dict[str, Any]) -> float:
    return max(abs(row["mono_map_change"]), abs(row["multi_map_change"]))


def write_bf16_verdict(result: dict[str, Any]) -> Path | None:
    """Record bf16's mAP change and speed on this CPU model for ``precision: auto`` (None: no bf16 row with mAP)."""
    row = next((r for r in result["encode"] if r["setting"] == _BF16 and "mono_map_change" in r), None)
    if row is None:
        return None
    fp32 = next(r for r in result["encode"] if r["setting"] == "+ token-length batching")
    verdict = {"map_change": _map_change(row), "limit": environment.BF16_MAX_MAP_CHANGE,
               "speedup_vs_fp32": fp32["best_s"] / row["best_s"], "map_subset": result.get("map_subset"),
               **environment.cpu_info()}  # fmt: skip
    return atomic.write_json(environment.precision_verdict_file(), verdict)


def _goals(result: dict[str, Any]) -> list[str]:
    out = []
    enc = [r for r in result["encode"] if r["setting"] != _PLAIN]
    if enc:
        keeps = [r for r in enc if "multi_map" not in r or _map_change(r) <= 0.005]
        best = max(keeps or enc, key=lambda r: r["speedup_vs_plain"])
        out.append(
            f"goal encode >= 2x plain with |mAP change| <= 0.005: best such setting '{best['setting']}' "
            f"{best['speedup_vs_plain']:.2f}x -> {'met' if keeps and best['speedup_vs_plain'] >= 2 else 'NOT met'}"
        )
    if result["train"]:
        best = max(result["train"][1:], key=lambda r: r["speedup_vs_full"])
        out.append(
            f"goal training step >= 1.5x full: best '{best['setting']}' {best['speedup_vs_full']:.2f}x -> "
            f"{'met' if best['speedup_vs_full'] >= 1.5 else 'NOT met'}"
        )
    return out


def bench_throughput(args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Run the benchmark, print the tables, write them as JSON and return them."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from hybridir_utils.models.backends import check_backend

    args = args if args is not None else add_arguments(argparse.ArgumentParser()).parse_args([])
    for backend in args.backends or ():
        check_backend(backend)
    for key, low in (("n", 0), ("batch_size", 1), ("small_batch", 1), ("repeats", 1), ("train_batch_size", 1)):
        if getattr(args, key) < low:
            raise ValueError(f"--{key.replace('_', '-')} must be >= {low}, got {getattr(args, key)}")
    if args.threads:
        torch.set_num_threads(args.threads)
    ds = load_lareqa(args.dataset, languages=args.languages, data_dir=paths.lareqa_dir(args.data_dir))
    pool = ds.candidates.text.tolist()
    rng = np.random.default_rng(args.seed)
    texts = [pool[i] for i in rng.choice(len(pool), min(args.n, len(pool)), replace=False)]
    map_ds = None
    result: dict[str, Any] = {
        "model": args.model,
        "dataset": ds.name,
        "languages": list(ds.languages),
        "texts": len(texts),
        "threads": torch.get_num_threads(),
        **environment.cpu_info(),
        "cpu_count": os.cpu_count(),
    }
    if args.map_articles > 0 and texts:
        map_ds = ds.subset(articles=sorted(set(ds.questions.article))[: args.map_articles])
        result["map_subset"] = (
            f"{ds.name} {'/'.join(ds.languages)}, {args.map_articles} articles "
            f"({len(map_ds.questions)} questions, {len(map_ds.candidates)} candidates)"
        )
    result["encode"] = []
    if texts:
        print(f"encode benchmark: {len(texts)} sentences, {len(_ENCODE_SETTINGS) + 1} settings", flush=True)
        result["encode"] = bench_encode(args, texts, map_ds)
    result["train"] = []
    if args.train_steps > 0:
        result.update(
            train_dataset=args.train_dataset, train_batch_size=args.train_batch_size, train_steps=args.train_steps
        )
        result["train"] = bench_training_options(args)
    result["goals"] = _goals(result)
    verdict = write_bf16_verdict(result)
    if verdict is not None:
        result["bf16_verdict"] = str(verdict)
    _print_tables(result)
    out = Path(args.out) if args.out else paths.build_dir() / "bench" / "throughput.json"
    atomic.write_json(out, result)
    print(f"written to {out}")
    return result
