"""Hybrid batches in your own sentence-transformers training: a copyable example.

It builds a multilingual pair set in the shape users have (``anchor``, ``positive``, their languages, a parallel-group
id; here reshaped from the MLQA-R files), trains with the plain ``SentenceTransformerTrainer`` on hybrid batches
(monolingual with probability α, cross-lingual otherwise, no translation of a query's answer as a negative), keeps
an evaluation split (it gets ordinary no-duplicate batches) and scores pooled LAReQA mAP on XQuAD-R while training.

    python examples/hybrid_batches.py --steps 20                                        # one process
    torchrun --standalone --nproc_per_node 2 examples/hybrid_batches.py --steps 20      # two processes (gloo)

Only ``HybridBatches`` and ``LAReQAEvaluator`` come from this project; everything else is sentence-transformers.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pandas as pd
import torch
from datasets import Dataset
from sentence_transformers import SentenceTransformerTrainer, SentenceTransformerTrainingArguments
from sentence_transformers.sentence_transformer.losses import MultipleNegativesRankingLoss

from hybridir_utils.data import load_lareqa, training_pairs
from hybridir_utils.evaluation import LAReQAEvaluator
from hybridir_utils.models import load_encoder
from hybridir_utils.sampling import HybridBatches


def user_pairs(languages: list[str], max_groups: int, seed: int = 0) -> pd.DataFrame:
    """A user-style table: one row per (anchor, positive) pair in any language pair of a parallel group."""
    pairs = training_pairs(load_lareqa("mlqa-r", languages=languages))
    groups = pd.Series(pairs["group"].unique()).sample(frac=1.0, random_state=seed).head(max_groups)
    pairs = pairs[pairs["group"].isin(groups)]
    names = {"query": "anchor", "passage": "positive", "query_lang": "anchor_lang", "passage_lang": "positive_lang",
             "group": "id"}  # fmt: skip
    return pairs.rename(columns=names)[list(names.values())].reset_index(drop=True)


def main(argv: list[str] | None = None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="multilingual-e5-small", help="project name, model folder or hub id")
    p.add_argument("--languages", nargs="+", default=["en", "de", "zh"])
    p.add_argument("--max-groups", type=int, default=300, help="parallel groups to train on")
    p.add_argument("--alpha", type=float, default=0.5, help="share of monolingual batches (0.5: hybrid)")
    p.add_argument("--batch-size", type=int, default=16, help="pairs per batch on each process")
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--eval-languages", nargs="+", default=["en", "de", "th"])
    p.add_argument("--eval-articles", type=int, default=4, help="XQuAD-R articles scored while training")
    p.add_argument("--output-dir", default="build/example-hybrid-batches")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    world = int(os.environ.get("WORLD_SIZE", 1))

    table = user_pairs(args.languages, args.max_groups, args.seed)
    held_out = table["id"].isin(table["id"].drop_duplicates().sample(frac=0.1, random_state=args.seed))
    batches = HybridBatches(Dataset.from_pandas(table[~held_out].reset_index(drop=True)),
                            query_lang_column="anchor_lang", passage_lang_column="positive_lang", group_column="id",
                            alpha=args.alpha)  # fmt: skip
    eval_dataset = Dataset.from_pandas(table.loc[held_out, ["anchor", "positive"]].reset_index(drop=True))

    model = load_encoder(args.model)
    model.max_seq_length = 128
    # With N processes the sampler draws one global batch per step; gathering makes every pair of it a negative.
    loss = MultipleNegativesRankingLoss(model, scale=20.0, gather_across_devices=world > 1)
    xquad = load_lareqa("xquad-r", languages=args.eval_languages)
    xquad = xquad.subset(articles=sorted(set(xquad.questions.article))[: args.eval_articles])
    evaluator = LAReQAEvaluator(xquad, name="xquad")

    training_args = SentenceTransformerTrainingArguments(
        output_dir=args.output_dir,
        max_steps=args.steps,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        learning_rate=1e-4,
        warmup_steps=min(3, args.steps),
        seed=args.seed,
        batch_sampler=batches.batch_sampler,  # hybrid batches for the training split, no-duplicates for eval
        prompts={"anchor": "query: ", "positive": "passage: "},  # e5's prompts
        eval_strategy="steps",
        eval_steps=args.steps,
        logging_steps=max(1, args.steps // 4),
        save_strategy="no",
        report_to="none",
        ddp_backend="gloo" if world > 1 and not torch.cuda.is_available() else None,
        dataloader_drop_last=False,
    )
    trainer = SentenceTransformerTrainer(model=model, args=training_args, train_dataset=batches.train_dataset,
                                         eval_dataset=eval_dataset, loss=loss, evaluator=evaluator)  # fmt: skip
    trainer.train()
    evaluations = [e for e in trainer.state.log_history if "eval_loss" in e or "eval_xquad_multi_map" in e]
    final = {k: v for e in evaluations if e["step"] == trainer.state.global_step for k, v in e.items()
             if k.startswith("eval_")}  # fmt: skip
    if trainer.is_world_process_zero():
        model.save_pretrained(str(Path(args.output_dir) / "model"))
        summary = {"world_size": world, "steps": trainer.state.global_step, "train_rows": len(batches.pairs),
                   "eval_rows": len(eval_dataset), **final}  # fmt: skip
        Path(args.output_dir, "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        print(json.dumps(summary, indent=2))
    return final


if __name__ == "__main__":
    main()
