"""The retrieval toolkit under both benchmarks: cached embeddings, exact / FAISS ranking with AP and R@k, TREC
runs and qrels with one tie rule, and an independent re-scoring of those files with pytrec_eval."""

from typing import TYPE_CHECKING

from hybridir_utils import lazy_face

if TYPE_CHECKING:  # what the names are, for readers and type checkers; imported on first use
    from hybridir_utils.retrieval.embeddings import encode_cached, encode_queries_and_passages
    from hybridir_utils.retrieval.search import ap_recall, faiss_search, ranks_of
    from hybridir_utils.retrieval.trec import RunWriter, read_trec_qrels, read_trec_run, write_qrels

__all__ = [
    "RunWriter",
    "ap_recall",
    "encode_cached",
    "encode_queries_and_passages",
    "faiss_search",
    "ranks_of",
    "read_trec_qrels",
    "read_trec_run",
    "write_qrels",
]
__getattr__, __dir__ = lazy_face(__name__, __file__)
