"""Benchmark: the project's throughput beside what the hardware allows, side by side in one command.

``python -m hybridir_utils.bench device`` (a GPU when there is one, else this CPU; bf16 autocast on a GPU):

* **encode**: sentences/s of the project's encode path (:func:`retrieval.embeddings.encode_cached`, no cache, the
  precision's autocast) vs plain ``SentenceTransformer.encode`` (a model loaded without the project's token-length
  batching: sentence-transformers' own sort by characters, the same batch size and autocast) on the same LAReQA
  candidate sentences. Target: ratio >= 1 (the project no slower than plain) for a first system, which tokenises;
  the next system of a grid reuses the tokenised batches, and its ratio is printed beside.
* **tokenise**: seconds the project's encode spends tokenising the 26,104 XQuAD-R test texts for a first system
  and for the next one, which reuses the tokenised batches (a host cost the GPU waits on either way).
* **train**: seconds per step of the project's trainer (:func:`training.train`: sentence-transformers trainer,
  hybrid batch sampler, MNRL; steps timed by a callback, the first ``--warmup`` left out) vs a bare loop of
  tokenise + forward + backward + AdamW on the same model, batch size and sampler batches. Target: ratio <= 3
  (the trainer's overhead: Python, data loading, host<->device copies, logging).
* **score**: seconds of one LAReQA scoring of the XQuAD-R pools (all 11 languages by default: 13,090 queries x
  13,014 candidates) ranked by numpy on the host vs on the device (``evaluate_lareqa(rank_device=...)``), from
  fixed random unit embeddings (the ranking's cost does not depend on the values; nothing is encoded). On a CPU
  the device path is torch on the CPU, which the evaluation never uses there.

It prints the ratios with the device's model (GPU name, or the CPU's model and flags) and writes them as JSON.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from hybridir_utils.bench.throughput import cuda_sync, timed_steps
from hybridir_utils.data.lareqa_loader import load_lareqa, training_pairs
from hybridir_utils.retrieval.embeddings import encode_cached
from hybridir_utils.utils import atomic, environment, paths

TARGETS = {"encode_ratio": 1.0, "train_ratio": 3.0}  # project/plain encode >= 1; trainer/bare step <= 3


def add_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", default="multilingual-e5-small")
    parser.add_argument("--data-dir", default=None, help="LAReQA folder (default: $HYBRIDIR_DATA_DIR, shared data)")
    parser.add_argument("--n", type=int, default=4096, help="candidate sentences encoded (XQuAD-R, all languages)")
    parser.add_argument("--batch-size", type=int, default=256, help="encode batch size of both paths")
    parser.add_argument("--train-batch-size", type=int, default=64)
    parser.add_argument("--train-steps", type=int, default=20, help="timed steps of each training path")
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of each training path's time")
    parser.add_argument("--precision", default="auto", help="auto (bf16 on a GPU, fp32 on a CPU), fp32 or bf16")
    parser.add_argument("--score-languages", nargs="*", default=None, help="XQuAD-R languages scored (default: all)")
    parser.add_argument("--out", default=None, help="JSON result file (default: <build>/bench/device.json)")
    return parser


def bench_encode(plain, model, texts: list[str], warm: list[str], batch_size: int, precision: str) -> dict[str, Any]:
    """Sentences/s of plain ``encode`` (``plain``: a model loaded without the project's batching) and of the
    project's path (``model``) on the same texts, each warmed on other texts first. The project is timed twice: the
    first system of a grid tokenises its batches, the next ones reuse them (:func:`models.backends.reused_features`);
    the target is met by the first. The reused pass runs right after the first on the same shapes, so it is also
    the warmer one: its ratio is an upper bound."""
    from hybridir_utils.models.backends import forget_features

    def plain_encode(batch):
        return plain.encode(batch, batch_size=batch_size, prompt_name="passage", show_progress_bar=False)

    def project_encode(batch):
        return encode_cached(model, batch, "passage", batch_size=batch_size, use_cache=False, show_progress_bar=False)

    forget_features()
    seconds = {}
    with environment.autocast(precision):
        plain_encode(warm), project_encode(warm)  # kernels, allocator, prompt lengths
        for name, run in (("plain", plain_encode), ("project", project_encode), ("project_reused", project_encode)):
            cuda_sync()
            start = time.perf_counter()
            run(texts)
            cuda_sync()
            seconds[name] = time.perf_counter() - start
    rates = {name: len(texts) / s for name, s in seconds.items()}
    return {"plain_per_s": rates["plain"], "project_per_s": rates["project"],
            "project_reused_per_s": rates["project_reused"], "encode_ratio": rates["project"] / rates["plain"],
            "encode_ratio_reused": rates["project_reused"] / rates["plain"]}  # fmt: skip


def bench_tokenise(model, questions: list[str], candidates: list[str], batch_size: int) -> dict[str, Any]:
    """Seconds the project's encode spends tokenising the whole test set (questions and candidates, with their prompts,
    in token-sorted batches as ``encode`` forms them): for the first system of a grid, and for the next one, which
    takes the kept batches (:func:`models.backends.reused_features`)."""
    import torch

    from hybridir_utils.models.backends import forget_features, reused_features

    forget_features()
    seconds = {"tokenise_s": 0.0, "tokenise_reused_s": 0.0}
    for prompt_name, texts in (("query", questions), ("passage", candidates)):
        ordered = sorted(texts, key=lambda t: -model._input_length(t))  # counts kept per tokenizer: not timed
        batches = [ordered[lo : lo + batch_size] for lo in range(0, len(ordered), batch_size)]
        for name in seconds:
            with reused_features(model), torch.inference_mode():
                start = time.perf_counter()
                for batch in batches:
                    model.preprocess(batch, prompt=model.prompts.get(prompt_name))
                seconds[name] += time.perf_counter() - start
    forget_features()
    return {"tokenise_texts": len(questions) + len(candidates), **seconds}


class _FixedEmbeddings:
    """An encoder stand-in: a fixed random unit vector per text, so that scoring is timed without encoding."""

    def __init__(self, dim: int = 384) -> None:
        self.rng, self.dim = np.random.default_rng(0), dim

    def fingerprint(self) -> str:
        return f"bench-random-{self.dim}"

    def encode(self, texts, **kwargs) -> np.ndarray:
        x = self.rng.standard_normal((len(texts), self.dim)).astype(np.float32)
        return x / np.linalg.norm(x, axis=1, keepdims=True)


def bench_score(data_dir, languages, device: str) -> dict[str, Any]:
    """Seconds of one LAReQA scoring ranked on the host (numpy) and on ``device`` (torch), same embeddings."""
    from hybridir_utils.evaluation.lareqa import evaluate_lareqa

    ds = load_lareqa("xquad-r", languages=languages, data_dir=data_dir)
    seconds = {}
    with tempfile.TemporaryDirectory() as tmp:
        encoder = _FixedEmbeddings()
        for name, where in (("host", None), ("device", device)):
            start = time.perf_counter()
            evaluate_lareqa(encoder, ds, Path(tmp) / name, cache_dir=Path(tmp) / "cache", write_runs=False,
                            show_progress_bar=False, rank_device=where)  # fmt: skip
            cuda_sync()
            seconds[name] = time.perf_counter() - start
    return {"score_queries": len(ds.questions), "score_candidates": len(ds.candidates),
            "host_score_s": seconds["host"], "device_score_s": seconds["device"],
            "score_ratio": seconds["host"] / seconds["device"]}  # fmt: skip


def bare_steps(model_name: str, pairs, batches: list[list[int]], precision: str, warmup: int) -> float:
    """Seconds per step of tokenise + forward + backward + AdamW, nothing else, on the trainer's settings."""
    import torch

    from hybridir_utils.models.loading import load_encoder
    from hybridir_utils.training.config import TrainConfig
    from hybridir_utils.training.trainer import freeze, make_loss

    cfg = TrainConfig(model=model_name)
    model = load_encoder(model_name, device=environment.device())
    model.max_seq_length = cfg.max_seq_length
    freeze(model, cfg.freeze_embeddings, cfg.freeze_layers)
    loss = make_loss(model, cfg)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr)
    return timed_steps(
        model, loss, optimizer, batches, pairs["query"].tolist(), pairs["passage"].tolist(), precision, warmup
    )


def trainer_steps(model_name: str, pairs, batch_size: int, steps: int, precision: str, warmup: int) -> float:
    """Seconds per step of the project's trainer: the time from one step's end to the next, so fetching and
    tokenising the batch and logging count (the trainer does them outside ``on_step_begin`` .. ``on_step_end``)."""
    from transformers import TrainerCallback

    from hybridir_utils.training.trainer import train

    ends: list[float] = []

    class StepTimer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            cuda_sync()
            ends.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        cfg = dict(model=model_name, batch_size=batch_size, max_steps=steps + warmup, output_dir=tmp,
                   precision=precision, save_steps=10**6, logging_steps=10**6, allow_test_overlap=True)  # fmt: skip
        train(cfg, pairs=pairs, callbacks=[StepTimer()])
    return float(np.mean(np.diff(ends)[max(0, warmup - 1) :]))  # diff i: step i+1 whole


def bench_device(args: argparse.Namespace | None = None) -> dict[str, Any]:
    """Run the three comparisons, print them with the device, write them as JSON and return them."""
    from hybridir_utils.models.loading import load_encoder
    from hybridir_utils.sampling.sampler import HybridBatchSampler

    args = args if args is not None else add_arguments(argparse.ArgumentParser()).parse_args([])
    precision = environment.resolve_precision(args.precision, training=True)  # one precision for both paths
    data_dir = paths.lareqa_dir(args.data_dir)
    test = load_lareqa("xquad-r", data_dir=data_dir)
    candidates = test.candidates.text.tolist()
    order = np.random.default_rng(0).permutation(len(candidates))
    texts = [candidates[i] for i in order[: args.n]]
    warm = [candidates[i] for i in order[args.n : args.n + args.batch_size]]
    plain = load_encoder(args.model, device=environment.device(), token_batching=False)
    model = load_encoder(args.model, device=environment.device())
    encode = bench_encode(plain, model, texts, warm, args.batch_size, precision)
    encode |= bench_tokenise(model, test.questions.text.tolist(), candidates, args.batch_size)
    del plain, model
    pairs = training_pairs(load_lareqa("mlqa-r", data_dir=data_dir))
    sampler = HybridBatchSampler(pairs, args.train_batch_size, seed=0, alpha=0.5, world_size=1, rank=0)
    batches = [b for b, _ in zip(sampler, range(args.train_steps + args.warmup), strict=False)]
    bare = bare_steps(args.model, pairs, batches, precision, args.warmup)
    step = trainer_steps(args.model, pairs, args.train_batch_size, args.train_steps, precision, args.warmup)
    score = bench_score(data_dir, args.score_languages, environment.device())
    result = {"environment": environment.describe(precision), "texts": len(texts), **encode,
              "bare_step_s": bare, "trainer_step_s": step, "train_ratio": step / bare, **score,
              "targets": TARGETS, "settings": vars(args)}  # fmt: skip
    env = result["environment"]
    print(f"device: {env.get('gpu') or env.get('cpu_model')} ({env.get('device')}, {precision}); "
          f"cpu flags: {' '.join(env.get('cpu_flags') or [])}\n"
          f"  encode: project {encode['project_per_s']:.0f}/s vs plain SentenceTransformer.encode "
          f"{encode['plain_per_s']:.0f}/s = {encode['encode_ratio']:.2f}x (target >= {TARGETS['encode_ratio']}); "
          f"the next system, its batches already tokenised: {encode['project_reused_per_s']:.0f}/s = "
          f"{encode['encode_ratio_reused']:.2f}x\n"
          f"  tokenise: the {encode['tokenise_texts']} XQuAD-R test texts {encode['tokenise_s']:.2f} s for a first "
          f"system, {encode['tokenise_reused_s']:.3f} s for the next\n"
          f"  train: trainer {step:.3f} s/step vs bare loop {bare:.3f} s/step = {step / bare:.2f}x "
          f"(target <= {TARGETS['train_ratio']})\n"
          f"  score: {score['score_queries']} x {score['score_candidates']} LAReQA pools ranked on the host "
          f"{score['host_score_s']:.2f} s vs on the device {score['device_score_s']:.2f} s = "
          f"{score['score_ratio']:.2f}x faster", flush=True)  # fmt: skip
    out = Path(args.out) if args.out else paths.build_dir() / "bench" / "device.json"
    atomic.write_json(out, result)
    return result
