"""TREC run and qrels files: reading, writing, and the one tie rule every ranking here follows.

Run lines are ``qid Q0 docid rank score tag``, qrels lines ``qid iter docid relevance``. Within a query, documents
are ordered by score descending, then docid descending (Python's ``str`` order, which is UTF-8 byte order) — the
order trec_eval sorts a run into — so re-scoring a file with trec_eval / pytrec_eval reproduces our ranks even on
exact score ties. Scores are written with ``.9g``: every distinct float32 stays distinct and equal ones stay equal.
Do not re-score with ranx: its tie order is not trec_eval's (under ties its AP differed by up to 0.51 in a check).
"""

from __future__ import annotations

import contextlib
import gzip
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.errors import EvaluationError
from hybridir_utils.utils import atomic

TIES = "score descending, then candidate id descending (trec_eval's order); ranks 1-based"

# ------------------------------------------------------------------------------------------------ the tie rule


def tie_key(ids: np.ndarray) -> np.ndarray:
    """Each id's position in ascending id order: ranking by (score, tie_key) descending is the TREC order."""
    ids = np.asarray(ids, dtype=object)
    key = np.empty(len(ids), dtype=np.int64)
    key[np.argsort(ids.astype(str), kind="stable")] = np.arange(len(ids))
    return key


def ranked(docs: Mapping[str, float]) -> list[tuple[str, float]]:
    """``{docid: score}`` as (docid, score) pairs in the TREC order (score descending, then docid descending)."""
    # two stable sorts: docid descending, then score descending
    return sorted(sorted(docs.items(), reverse=True), key=lambda kv: -kv[1])


def sort_run(run: pd.DataFrame) -> pd.DataFrame:
    """A run table (qid, docid, score, ...) sorted by qid, then the TREC order within each query."""
    return run.sort_values(["qid", "score", "docid"], ascending=[True, False, False], kind="stable")


def run_lines(qid: str, docids: Sequence[str], scores: Sequence[float], tag: str) -> str:
    """The run lines of one query whose documents are already in ranking order (ranks 1-based)."""
    pairs = zip(docids, scores, strict=True)
    return "".join(f"{qid} Q0 {d} {r} {s:.9g} {tag}\n" for r, (d, s) in enumerate(pairs, 1))


def qrels_lines(qid: str, judged: Mapping[str, int]) -> str:
    return "".join(f"{qid} 0 {d} {r}\n" for d, r in judged.items())


def run_tag(name: str) -> str:
    """A run tag without whitespace (the format splits on it)."""
    return re.sub(r"\s+", "_", name) or "run"


# ------------------------------------------------------------------------------------------------ writing


def write_run(path: str | Path, run: Mapping[str, Mapping[str, float]], tag: str) -> Path:
    """A whole TREC run ``{qid: {docid: score}}``, each query's documents in the TREC order."""
    tag, parts = run_tag(tag), []
    for qid, docs in run.items():
        pairs = ranked(docs)
        parts.append(run_lines(qid, [d for d, _ in pairs], [s for _, s in pairs], tag))
    return atomic.write_text(Path(path), "".join(parts))


def write_qrels(path: str | Path, qrels: Mapping[str, Mapping[str, int]]) -> Path:
    """TREC qrels ``{qid: {docid: relevance}}`` (an empty qrels is one empty line)."""
    return atomic.write_text(Path(path), "".join(qrels_lines(q, docs) for q, docs in qrels.items()) or "\n")


class RunWriter:
    """Gzip TREC run + qrels files per setting, streamed query by query, each moved into place only when complete."""

    def __init__(self, stack: contextlib.ExitStack, out_dir: Path, settings: Sequence[str], tag: str):
        self.tag = run_tag(tag)
        self.runs, self.qrels, self.paths = {}, {}, {}
        for s in settings:
            run_path, qrels_path = out_dir / "runs" / f"{s}.trec.gz", out_dir / "runs" / f"{s}.qrels"
            tmp_run = stack.enter_context(atomic.atomic_path(run_path))
            tmp_qrels = stack.enter_context(atomic.atomic_path(qrels_path))
            self.runs[s] = stack.enter_context(gzip.open(tmp_run, "wt", encoding="utf-8", compresslevel=1))
            self.qrels[s] = stack.enter_context(open(tmp_qrels, "w", encoding="utf-8"))
            self.paths[s] = {"run": f"runs/{s}.trec.gz", "qrels": f"runs/{s}.qrels"}
        self.lines = dict.fromkeys(settings, 0)

    def write(self, setting: str, qid: str, cids: np.ndarray, scores: np.ndarray, relevant: Sequence[str]) -> None:
        """One query: its candidates in ranking order with their scores, and its relevant candidates (qrels 1)."""
        self.runs[setting].write(run_lines(qid, cids.tolist(), scores.tolist(), self.tag))
        self.qrels[setting].write(qrels_lines(qid, dict.fromkeys(relevant, 1)))
        self.lines[setting] += len(cids)


# ------------------------------------------------------------------------------------------------ reading


_RUN_COLUMNS = ["qid", "q0", "docid", "rank", "score", "tag"]
_RUN_DTYPES = {"qid": str, "q0": str, "docid": str, "rank": np.int64, "score": np.float64, "tag": str}


def iter_trec_run(path: str | Path, block_lines: int = 2_000_000) -> Iterator[pd.DataFrame]:
    """A TREC run file (optionally .gz) in blocks of whole queries: tables of qid, docid, rank, score.

    Streaming keeps memory bounded on runs of tens of millions of lines; a query's lines must be contiguous
    (as in the files written here), else an error names the query.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"run file {path} does not exist")
    seen: set[str] = set()
    carry = None
    try:
        reader = pd.read_csv(
            path,
            sep=" ",
            header=None,
            names=_RUN_COLUMNS,
            dtype=_RUN_DTYPES,
            keep_default_na=False,
            engine="c",
            chunksize=block_lines,
        )
        for chunk in reader:
            chunk = chunk[["qid", "docid", "rank", "score"]]
            if carry is not None:
                chunk = pd.concat([carry, chunk], ignore_index=True)
            last = chunk.qid.iloc[-1]
            done, carry = chunk[chunk.qid != last], chunk[chunk.qid == last]
            if len(done):
                yield _check_contiguous(done, seen, path)
    except (ValueError, pd.errors.ParserError) as exc:
        raise EvaluationError(f"{path}: not a TREC run (qid Q0 docid rank score tag): {exc}") from exc
    if carry is not None and len(carry):
        yield _check_contiguous(carry, seen, path)


def _check_contiguous(block: pd.DataFrame, seen: set[str], path: Path) -> pd.DataFrame:
    qids = set(block.qid.unique())
    again = qids & seen
    if again:
        raise EvaluationError(f"{path}: the lines of query {sorted(again)[0]!r} are not contiguous")
    seen |= qids
    return block


def read_trec_run(path: str | Path) -> pd.DataFrame:
    """A whole TREC run file (optionally .gz) as one table qid, docid, rank, score."""
    blocks = list(iter_trec_run(path))
    return pd.concat(blocks, ignore_index=True) if blocks else pd.DataFrame(columns=["qid", "docid", "rank", "score"])


def read_trec_qrels(path: str | Path) -> dict[str, dict[str, int]]:
    """TREC qrels ``qid iter docid rel`` -> {qid: {docid: rel}}; errors name the file and line."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"qrels file {path} does not exist")
    qrels: dict[str, dict[str, int]] = {}
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 4:
                raise EvaluationError(f"{path}:{lineno}: expected 'qid iter docid relevance', got {line.strip()!r}")
            try:
                rel = int(parts[3])
            except ValueError as exc:
                raise EvaluationError(f"{path}:{lineno}: relevance {parts[3]!r} is not an integer") from exc
            qrels.setdefault(parts[0], {})[parts[2]] = rel
    return qrels
