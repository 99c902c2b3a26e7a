"""TREC run files (:mod:`hybridir_utils.retrieval.trec`): streamed by whole queries, malformed files named."""

from __future__ import annotations

import pytest

from hybridir_utils.errors import EvaluationError
from hybridir_utils.retrieval import trec


def test_run_reader_streams_whole_queries(tmp_path):
    path = tmp_path / "run.trec"
    lines = [f"q{q} Q0 d{d} {d + 1} {1 - d / 10} t" for q in range(3) for d in range(3)]
    path.write_text("\n".join(lines) + "\n")
    blocks = list(trec.iter_trec_run(path, block_lines=2))
    assert [sorted(set(b.qid)) for b in blocks] == [["q0"], ["q1"], ["q2"]]  # never a query split in two
    assert len(trec.read_trec_run(path)) == 9
    path.write_text("\n".join([*lines, lines[0]]) + "\n")
    with pytest.raises(EvaluationError, match="query 'q0' are not contiguous"):
        list(trec.iter_trec_run(path, block_lines=4))
    path.write_text("q0 Q0 d1 1\n")
    with pytest.raises(EvaluationError, match="not a TREC run"):
        trec.read_trec_run(path)
