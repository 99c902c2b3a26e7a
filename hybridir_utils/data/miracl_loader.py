"""MIRACL (Zhang et al. 2023) data: topics, qrels and corpus of one language, from the hub's files or local files.

Both sources are read by one reader, in the official formats:

- hub: the raw files of the dataset repos ``miracl/miracl`` (``miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-
  <split>.tsv``, ``miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-<split>.tsv``; a gated repo: accept its terms
  and log in) and ``miracl/miracl-corpus`` (``miracl-corpus-v1.0-<lang>/docs-*.jsonl.gz``), fetched with
  ``huggingface_hub.snapshot_download(allow_patterns=...)`` into the 🤗 cache (offline: read from it). The repos'
  loading scripts, which ``datasets.load_dataset`` used, no longer run under the pinned ``datasets`` major version;
- local: topics TSV ``qid<TAB>query``, qrels TREC ``qid Q0 docid rel``, corpus JSONL ``{"docid", "title", "text"}``
  (each possibly .gz), either as explicit paths or found under a root in the official layout
  ``miracl-v1.0-<lang>/topics/topics.miracl-v1.0-<lang>-<split>.tsv``,
  ``miracl-v1.0-<lang>/qrels/qrels.miracl-v1.0-<lang>-<split>.tsv``, ``miracl-corpus-v1.0-<lang>/docs-*.jsonl[.gz]``.

Every judged docid must exist in the corpus and every qrels qid among the topics; otherwise a :class:`MiraclError`
names the file and line. Passages are ``title + " " + text`` (the MIRACL/E5 convention).

``sample_size=N`` keeps the judged passages plus N random others (seeded): much cheaper to evaluate, but the
numbers are NOT comparable with full-corpus MIRACL results (fewer distractors), and ``corpus_info`` says so.
"""

from __future__ import annotations

import gzip
import json
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.errors import MiraclError
from hybridir_utils.utils import paths

HUB_TOPICS = "miracl/miracl"
HUB_CORPUS = "miracl/miracl-corpus"
# MIRACL's 18 languages (Zhang et al. 2023): the 16 with train/dev splits plus the surprise languages de and yo.
LANGUAGES = ("ar", "bn", "de", "en", "es", "fa", "fi", "fr", "hi", "id", "ja", "ko", "ru", "sw", "te", "th", "yo", "zh")


class MiraclWarning(UserWarning):
    """Input that was repaired (repeated lines dropped) or a language skipped; the message says what and where."""


@dataclass
class MiraclData:
    """Topics, qrels and (possibly sampled) corpus of one MIRACL language and split."""

    lang: str
    topics: pd.DataFrame  # qid, query
    qrels: dict[str, dict[str, int]]
    corpus: pd.DataFrame  # docid, title, text
    source: str
    corpus_info: dict = field(default_factory=dict)

    def passages(self) -> list[str]:
        """``title + " " + text`` per corpus row (the MIRACL convention; no leading space without a title)."""
        return [f"{t} {x}" if t else x for t, x in zip(self.corpus.title, self.corpus.text, strict=True)]


# ------------------------------------------------------------------------------------------------ local files


def _open_text(path: Path):
    """utf-8-sig: a BOM (editors on Windows add one) is not glued to the first query id or docid."""
    if path.suffix == ".gz":
        return gzip.open(path, "rt", encoding="utf-8-sig")
    return open(path, encoding="utf-8-sig")


def _lines(path: str | Path) -> Iterator[tuple[int, str]]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"MIRACL file {path} does not exist")
    try:
        with _open_text(path) as fh:
            for lineno, line in enumerate(fh, start=1):
                line = line.rstrip("\n\r")
                if line.strip():
                    yield lineno, line
    except (OSError, UnicodeDecodeError, EOFError) as exc:
        raise MiraclError(f"{path}: cannot read ({exc})") from exc


def read_topics(path: str | Path) -> pd.DataFrame:
    """Topics TSV ``qid<TAB>query`` -> DataFrame(qid, query)."""
    rows, seen = [], set()
    for lineno, line in _lines(path):
        parts = line.split("\t")
        if len(parts) != 2 or not parts[0].strip() or not parts[1].strip():
            raise MiraclError(f"{path}:{lineno}: expected 'qid<TAB>query', got {line[:80]!r}")
        qid = parts[0].strip()
        if qid in seen:
            raise MiraclError(f"{path}:{lineno}: duplicate query id {qid!r}")
        seen.add(qid)
        rows.append((qid, parts[1].strip()))
    if not rows:
        raise MiraclError(f"{path}: no topics")
    return pd.DataFrame(rows, columns=["qid", "query"])


def read_qrels(path: str | Path) -> tuple[dict[str, dict[str, int]], dict[tuple[str, str], int]]:
    """TREC qrels ``qid Q0 docid rel`` -> ({qid: {docid: rel}}, {(qid, docid): line number}).

    Real MIRACL qrels repeat some judgements (Korean dev, reported upstream in pyserini): exact repeats are
    dropped with one warning that counts them; a pair judged twice with different grades is an error naming both
    lines, since no grade can be chosen for it.
    """
    qrels: dict[str, dict[str, int]] = {}
    where: dict[tuple[str, str], int] = {}
    repeats = 0
    for lineno, line in _lines(path):
        parts = line.split()
        if len(parts) != 4:
            raise MiraclError(f"{path}:{lineno}: expected 'qid Q0 docid relevance' (4 fields), got {line[:80]!r}")
        qid, _, docid, rel = parts
        try:
            grade = int(rel)
        except ValueError as exc:
            raise MiraclError(f"{path}:{lineno}: relevance {rel!r} is not an integer") from exc
        if (qid, docid) in where:
            if qrels[qid][docid] != grade:
                raise MiraclError(
                    f"{path}:{lineno}: ({qid!r}, {docid!r}) judged {grade} here but {qrels[qid][docid]} "
                    f"at line {where[(qid, docid)]}"
                )
            repeats += 1
            continue
        qrels.setdefault(qid, {})[docid] = grade
        where[(qid, docid)] = lineno
    if not qrels:
        raise MiraclError(f"{path}: no judgements")
    if repeats:
        message = f"{path}: {repeats} repeated judgement line(s) dropped (same qid, docid, grade)"
        warnings.warn(message, MiraclWarning, stacklevel=2)
    return qrels, where


def iter_corpus(paths: Sequence[str | Path]) -> Iterator[tuple[str, str, str, tuple[str | Path, int]]]:
    """(docid, title, text, (file, line)) from JSONL corpus files (each possibly .gz); errors name file and line."""
    for path in paths:
        for lineno, line in _lines(path):
            try:
                doc = json.loads(line)
                docid, title, text = str(doc["docid"]), doc.get("title") or "", doc["text"]
            except (json.JSONDecodeError, KeyError, TypeError) as exc:
                raise MiraclError(f"{path}:{lineno}: expected a JSON object with docid, title, text ({exc})") from exc
            if not isinstance(text, str) or not isinstance(title, str):
                raise MiraclError(f"{path}:{lineno}: title and text must be strings")
            yield docid, title, text, (path, lineno)


def find_local_files(root: str | Path, lang: str, split: str = "dev") -> tuple[Path, Path, list[Path]]:
    """(topics, qrels, corpus files) of ``lang`` under ``root`` in the official MIRACL layout."""
    root = Path(root)
    base = root / f"miracl-v1.0-{lang}"
    topics = _one(base / "topics", f"topics.miracl-v1.0-{lang}-{split}.tsv", root)
    qrels = _one(base / "qrels", f"qrels.miracl-v1.0-{lang}-{split}.tsv", root)
    corpus_dir = root / f"miracl-corpus-v1.0-{lang}"
    corpus = _corpus_files(corpus_dir)
    if not corpus:
        raise FileNotFoundError(f"no corpus files (*.jsonl, *.jsonl.gz) in {corpus_dir}")
    return topics, qrels, corpus


def _corpus_files(folder: Path) -> list[Path]:
    """The corpus shards of one language folder, in name order (the same order for local and hub files)."""
    return sorted(p for p in folder.glob("*.jsonl*") if p.suffix in (".jsonl", ".gz"))


def _one(folder: Path, name: str, root: Path) -> Path:
    for candidate in (folder / name, folder / f"{name}.gz"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder / name} not found (MIRACL root {root})")


def load_miracl_local(
    lang: str,
    root: str | Path | None = None,
    split: str = "dev",
    *,
    topics: str | Path | None = None,
    qrels: str | Path | None = None,
    corpus: str | Path | Sequence[str | Path] | None = None,
    sample_size: int | None = None,
    seed: int = 0,
) -> MiraclData:
    """Load one language from local files: explicit paths, or found under ``root`` (official layout)."""
    _check_sampling(sample_size, seed)
    if topics is None or qrels is None or corpus is None:
        if root is None:
            raise MiraclError("load_miracl_local: give root= or all of topics=, qrels=, corpus=")
        found = find_local_files(root, lang, split)
        topics, qrels = topics or found[0], qrels or found[1]
        corpus = corpus if corpus is not None else found[2]
    corpus_paths = [corpus] if isinstance(corpus, str | Path) else list(corpus)
    topic_df = read_topics(topics)
    judged, where = read_qrels(qrels)
    known = set(topic_df.qid)
    for (qid, _), lineno in where.items():
        if qid not in known:
            raise MiraclError(f"{qrels}:{lineno}: query id {qid!r} is not in the topics file {topics}")
    docs, info = _collect_corpus(iter_corpus(corpus_paths), judged, sample_size, seed, corpus_paths)
    if gap := _first_missing(judged, where, docs):
        (qid, docid), lineno, n = gap
        raise MiraclError(
            f"{qrels}:{lineno}: docid {docid!r} (query {qid}) is not in the corpus "
            f"({', '.join(map(str, corpus_paths))}); {n} judged docid(s) missing in all"
        )
    return MiraclData(lang, topic_df, judged, docs, f"local:{topics}", info)


def _first_missing(qrels: Mapping[str, Mapping[str, int]], where: Mapping[tuple[str, str], int], docs: pd.DataFrame):
    """The first-listed judged (qid, docid) absent from ``docs``, where it was listed, and how many are absent."""
    missing = {d for rel in qrels.values() for d in rel} - set(docs.docid)
    if not missing:
        return None
    key, pos = min(((k, v) for k, v in where.items() if k[1] in missing), key=lambda kv: kv[1])
    return key, pos, len(missing)


def _collect_corpus(
    records: Iterable[tuple[str, str, str, tuple]],
    qrels: Mapping[str, Mapping[str, int]],
    sample_size: int | None,
    seed: int,
    paths: Sequence[str | Path] = (),
) -> tuple[pd.DataFrame, dict]:
    """The whole corpus, or the judged passages plus ``sample_size`` others by seeded reservoir sampling.

    A passage repeated with the same title and text is kept once (one warning counts the repeats); a docid repeated
    with another title or text is an error naming both lines. Only a hash per docid is kept, so the first line of a
    conflicting docid is found again by rescanning ``paths`` (on the error path only).
    """
    judged = {d for rel in qrels.values() for d in rel}
    keep, reservoir, n_total, n_other = [], [], 0, 0
    seen: dict[str, int] = {}
    repeats: list[tuple] = []
    rng = np.random.default_rng(seed)
    for docid, title, text, (path, lineno) in records:
        digest = hash((title, text))
        if docid in seen:
            if seen[docid] != digest:
                raise MiraclError(
                    f"{path}:{lineno}: docid {docid!r} repeated with a different title/text "
                    f"(first at {_first_line(docid, paths)})"
                )
            repeats.append((path, lineno))
            continue
        seen[docid] = digest
        n_total += 1
        if sample_size is None or docid in judged:
            keep.append((docid, title, text))
            continue
        n_other += 1  # reservoir sampling (Algorithm R): a uniform sample of unjudged passages, one pass
        if len(reservoir) < sample_size:
            reservoir.append((docid, title, text))
        else:
            j = int(rng.integers(0, n_other))
            if j < sample_size:
                reservoir[j] = (docid, title, text)
    if repeats:
        files = sorted({str(p) for p, _ in repeats})
        warnings.warn(
            f"{', '.join(files)}: {len(repeats)} repeated passage line(s) dropped (same docid, title, text; "
            f"first at {repeats[0][0]}:{repeats[0][1]})",
            MiraclWarning,
            stacklevel=3,
        )
    rows = keep + sorted(reservoir)
    docs = pd.DataFrame(rows, columns=["docid", "title", "text"])
    return docs, _corpus_info(sample_size, seed, n_total, len(keep), len(reservoir))


def _first_line(docid: str, paths: Sequence[str | Path]) -> str:
    """The ``file:line`` of the first corpus line holding ``docid`` ("an earlier line" when no files are given)."""
    for found, _, _, (path, lineno) in iter_corpus(paths):
        if found == docid:
            return f"{path}:{lineno}"
    return "an earlier line"


def _check_sampling(sample_size, seed) -> None:
    """``sample_size=-1`` used to mean 0 random passages without a word, ``seed='x'`` a raw ValueError."""
    if sample_size is not None and (
        isinstance(sample_size, bool) or not isinstance(sample_size, int) or sample_size < 0
    ):
        raise MiraclError(f"sample_size must be an integer >= 0 or None, got {sample_size!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MiraclError(f"seed must be an integer >= 0, got {seed!r}")


def _corpus_info(sample_size, seed, n_total, n_judged, n_random) -> dict:
    if sample_size is None:
        return {"kind": "full", "size": n_total, "comparable_to_full_corpus": True}
    return {
        "kind": "sample",
        "size": n_judged + n_random,
        "full_size": n_total,
        "judged": n_judged,
        "random": n_random,
        "seed": seed,
        "comparable_to_full_corpus": False,
        "note": "judged passages + random others: fewer distractors than the full corpus, so scores are inflated "
        "and NOT comparable with published full-corpus MIRACL numbers",
    }


# ------------------------------------------------------------------------------------------------ hub


def hub_paths(lang: str, split: str = "dev") -> dict[str, list[str]]:
    """The files of one language in each hub repo: {repo: [topics, qrels] or [corpus shard pattern]}."""
    base = f"miracl-v1.0-{lang}"
    return {
        HUB_TOPICS: [f"{base}/topics/topics.{base}-{split}.tsv", f"{base}/qrels/qrels.{base}-{split}.tsv"],
        HUB_CORPUS: [f"miracl-corpus-v1.0-{lang}/docs-*.jsonl.gz"],
    }


def _hub_snapshot(repo_id: str, patterns: Sequence[str]) -> Path:
    """Download only ``patterns`` of the hub dataset ``repo_id`` (into the 🤗 cache) and return its snapshot folder.

    Any failure (no network, offline mode with nothing cached, a gated or missing repo) becomes one MiraclError
    that names the repo and the files asked for, and says what to do.
    """
    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    try:
        folder = huggingface_hub.snapshot_download(repo_id, repo_type="dataset", allow_patterns=list(patterns))
    except Exception as exc:  # the hub's errors vary by version and transport; all mean "not downloaded"
        hint = (
            f"accept its terms on https://huggingface.co/datasets/{repo_id} and log in (hf auth login, or HF_TOKEN)"
            if isinstance(exc, GatedRepoError)
            else "no network, or HF_HUB_OFFLINE=1 with nothing cached? Download once online, or use local files"
        )
        raise MiraclError(
            f"cannot download {', '.join(patterns)} from the hub dataset {repo_id} ({type(exc).__name__}: {exc}); "
            f"{hint}"
        ) from exc
    return Path(folder)


def load_miracl_hub(lang: str, split: str = "dev", *, sample_size: int | None = None, seed: int = 0) -> MiraclData:
    """Load one language from the hub's files, read by :func:`load_miracl_local` (topics first: a language or
    split the hub lacks fails before the corpus, gigabytes for large languages, is downloaded)."""
    _check_sampling(sample_size, seed)
    paths = hub_paths(lang, split)
    root = _hub_snapshot(HUB_TOPICS, paths[HUB_TOPICS])
    topics, qrels = (_hub_file(root, HUB_TOPICS, rel) for rel in paths[HUB_TOPICS])
    corpus_root = _hub_snapshot(HUB_CORPUS, paths[HUB_CORPUS])
    corpus = _corpus_files(corpus_root / f"miracl-corpus-v1.0-{lang}")
    if not corpus:
        raise MiraclError(f"the hub dataset {HUB_CORPUS} has no files {paths[HUB_CORPUS][0]}{_NOT_ON_HUB}")
    data = load_miracl_local(
        lang, split=split, topics=topics, qrels=qrels, corpus=corpus, sample_size=sample_size, seed=seed
    )
    data.source = f"hub:{HUB_TOPICS}/{paths[HUB_TOPICS][0]} + {HUB_CORPUS}/{paths[HUB_CORPUS][0]}"
    return data


_NOT_ON_HUB = " (no such language or split in MIRACL v1.0; or, offline, not in the local 🤗 cache)"


def _hub_file(root: Path, repo_id: str, rel: str) -> Path:
    if not (root / rel).is_file():
        raise MiraclError(f"the hub dataset {repo_id} has no file {rel}{_NOT_ON_HUB}")
    return root / rel


# ------------------------------------------------------------------------------------------------ either source

HUB = "hub"  # the source name of the hub's files; any other source is a local root folder


def resolve_source(source: str | Path) -> str | Path:
    """``"hub"``, or a local root as a profile writes it (relative to the project root, not to the cwd)."""
    return HUB if str(source) == HUB else paths.project_path(source)


def load_miracl(lang: str, source: str | Path, *, max_queries: int | None = None, **kwargs) -> MiraclData:
    """One language from the hub (``source="hub"``) or a local root, cut to its first ``max_queries`` topics."""
    if str(source) == HUB:
        data = load_miracl_hub(lang, **kwargs)
    else:
        data = load_miracl_local(lang, source, **kwargs)
    if max_queries is not None:
        data.topics = data.topics.iloc[:max_queries].reset_index(drop=True)
        data.qrels = {q: data.qrels[q] for q in data.topics.qid if q in data.qrels}
    return data
