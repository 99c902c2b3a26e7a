"""LAReQA retrieval data (XQuAD-R, MLQA-R): locate, verify, download and load into tidy tables.

Files come from an explicit ``data_dir`` only, when one is given (a missing file is an error, never a silent
fallback); otherwise from ``$HYBRIDIR_DATA_DIR``, the download cache ``data/raw/``, else the public repository at
pinned commits, verified by sha256 and written atomically. ``LAReQAData.files`` records the file each language
came from.

Ids are language-qualified so one table can hold every language:
- question ``qid = "<lang>:<qa id>"``; ``group`` is the bare qa id, shared by the translations of a question;
- candidate ``cid = "<lang>:<article idx>:<paragraph idx>:<sentence idx>"`` (every sentence of every
  paragraph is a candidate, as in LAReQA);
- ``article`` is a language-independent key: the English title (XQuAD-R titles are English in every file;
  MLQA-R articles are mapped through the English file, which holds every question).
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.columns import ARTICLE, GROUP, PASSAGE, PASSAGE_LANG, QUERY, QUERY_LANG
from hybridir_utils.errors import DataError
from hybridir_utils.utils import atomic, paths

LANGUAGES: dict[str, tuple[str, ...]] = {
    "xquad-r": ("ar", "de", "el", "en", "es", "hi", "ru", "th", "tr", "vi", "zh"),
    "mlqa-r": ("ar", "de", "en", "es", "hi", "vi", "zh"),
}
_REPO = "https://raw.githubusercontent.com/google-research-datasets/lareqa"
COMMITS = {
    "xquad-r": "9bc8c7fb6dd8d01d72a05a93c2cb96882b0d299c",
    "mlqa-r": "354d67d1cd066854cdfbf5ad0e6105528976141d",
}
SHA256 = {
    "xquad-r": {
        "ar": "c52922d3b8ac1ae03ed5ac38647ad59870dca3dda2beefe18ecdc30729acb69d",
        "de": "16fb0f4bf4916154b585a20c24c66074591c9718a1affe764ff4697572328949",
        "el": "163fd43ee785a30eb534ae2061e9eaa766a7ee4e8ffce5e4b422480c150f64b6",
        "en": "7b0954f39297c27a31fef610f0883337dd2907fa8699151dc922afdd0fa12ffe",
        "es": "f8e836b2d91009c4363e04315f7ede363eedbbb49c67dda60de6c4aa782f58de",
        "hi": "ea45ba8ae4513d1533b222bebdc02a90bc319c055d3aeea68584a053d2e92872",
        "ru": "7f4dff853538b9a5fcc28c070b8bb983a5c5d190ac747b8e005a1ada9cab18f1",
        "th": "c3a041864c3a9fb0b4dd91cfdf99cf36b411b3e704c58a303c97bc6dc786cfe4",
        "tr": "f3e8c13002bbce154a4578f535f7533cb70f3da08840e6b62735935baec7bd94",
        "vi": "e35926bf5cc6fc6ecbdfca49467aabeb454f08d152d7818143a906bd31dde995",
        "zh": "80c2cde7b9c2fb134c303cbb52f2ba396ead9eb0014aec43993543d2ba9e93ed",
    },
    "mlqa-r": {
        "ar": "2132fbc03208535c0fe01f2e2c5121d06f9c2aa799af93b0a719dbc105bdf137",
        "de": "ce9454dc5aa6f2d85c23cd6e49cb367fbb7c4c6e62d7f71e355c6b5dae4d0886",
        "en": "fedd9a5cc0848dda80caf84aa36f482adaae230526a3f6e9e86926a93ef3b1e4",
        "es": "70ecba276b8c96a692b120693a595d076ce94ad21d4b28311538a9fcbfe0f9d7",
        "hi": "4dd0fb3c06f737a5481d705bc1dcac7876712a5815c9265908fbb3a0696cb654",
        "vi": "9d3baff6ba03e6793b25594217265ea59a136b9733833dca8a9582a84a78ff85",
        "zh": "57f01d2fff50cf3392805635b01445339f225ad5bf28ba8443b12f8dbd1e69dc",
    },
}


def check_languages(name: str, languages) -> tuple[str, ...]:
    """Validate a dataset name and language list; ``None`` means every language of the dataset."""
    if name not in LANGUAGES:
        raise DataError(f"unknown dataset {name!r}; expected one of {sorted(LANGUAGES)}")
    if languages is None:
        return LANGUAGES[name]
    if isinstance(languages, str):
        languages = [languages]
    unknown = [lang for lang in languages if lang not in LANGUAGES[name]]
    if unknown:
        raise DataError(f"unknown language(s) {unknown} for {name}; available: {list(LANGUAGES[name])}")
    if not languages:
        raise DataError(f"empty language list for {name}")
    return tuple(dict.fromkeys(languages))


def source_url(name: str, lang: str) -> str:
    return f"{_REPO}/{COMMITS[name]}/{name}/{lang}.json"


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def download(name: str, lang: str, dest_dir: Path | None = None, opener=urllib.request.urlopen) -> Path:
    """Fetch one file at its pinned commit into the cache; verify sha256 before it becomes visible."""
    dest = (dest_dir or paths.raw_data_dir()) / name / f"{lang}.json"
    url = source_url(name, lang)
    try:
        with opener(url, timeout=60) as response:
            payload = response.read()
    except OSError as exc:
        raise DataError(
            f"cannot download {url} ({exc}). Offline? Put the LAReQA files in a folder with xquad-r/ and mlqa-r/ "
            f"sub-folders and set HYBRIDIR_DATA_DIR to it (or pass data_dir=), or copy them to {dest.parent}"
        ) from exc
    digest = hashlib.sha256(payload).hexdigest()
    if digest != SHA256[name][lang]:
        raise DataError(f"checksum mismatch for {url}: got sha256 {digest}, expected {SHA256[name][lang]}")
    return atomic.write_bytes(dest, payload)


def locate(name: str, lang: str, data_dir: str | Path | None = None, allow_download: bool = True) -> Path:
    """Path of one LAReQA file: in ``data_dir`` only when given, else in $HYBRIDIR_DATA_DIR only when set; else
    the download cache, else download it. An explicit folder (argument or variable) is the user's choice of data:
    falling back to another copy file by file would mix sources without a word."""
    explicit = ("data_dir", data_dir) if data_dir is not None else ("HYBRIDIR_DATA_DIR", paths.data_dir())
    if explicit[1] is not None:
        path = Path(explicit[1]).expanduser() / name / f"{lang}.json"
        if not path.parent.is_dir():
            raise DataError(f"{path} not found: {explicit[0]}={explicit[1]} has no {name} folder (the files must lie "
                            f"in <{explicit[0]}>/{name}/<language>.json)")  # fmt: skip
        if not path.is_file():
            raise DataError(f"{path} not found ({explicit[0]}={explicit[1]} is the only source when given): put "
                            f"the {lang!r} file there (SQuAD-style JSON, as in LAReQA), or leave {lang!r} out of "
                            "languages")  # fmt: skip
        return path
    if (paths.raw_data_dir() / name / f"{lang}.json").is_file():
        return paths.raw_data_dir() / name / f"{lang}.json"
    if not allow_download:
        raise DataError(f"{name}/{lang}.json not found locally and downloading is disabled; set HYBRIDIR_DATA_DIR")
    return download(name, lang)


def _read_json(path: Path) -> dict:
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not valid JSON ({exc}): the file is cut short or is not JSON; write it again "
                        "(json.dump) or fetch it again") from exc  # fmt: skip
    except OSError as exc:
        raise DataError(f"{path}: cannot be read ({exc})") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("data"), list):
        got = f"a {type(doc).__name__}" if not isinstance(doc, dict) else f"an object with keys {list(doc)[:8]}"
        got = f"'data' of type {type(doc['data']).__name__}" if isinstance(doc, dict) and "data" in doc else got
        raise DataError(f"{path}: expected a SQuAD-style object with a 'data' list of articles, got {got}")
    return doc


def _span_sentence(breaks: list, start: int) -> int | None:
    """LAReQA's rule: the first span with lo <= start <= hi. Kept for the fallback and the report only: where
    one span ends exactly where the next starts (most zh breaks), it picks the sentence *before* the answer."""
    return next((i for i, (lo, hi) in enumerate(breaks) if lo <= start <= hi), None)


def _answer_sentence(sentences: list, breaks: list, start: int, text: str, where: str) -> tuple[int, bool]:
    """(sentence index, whether the span rule decided) for an answer at ``start`` with ``text``.

    Offsets alone are ambiguous on shared boundaries, so the answer's sentence is the one whose span holds
    [start, start + len(text)) and whose text contains the answer (starting strictly inside wins a tie). Only
    answers that straddle a sentence break (a splitter error: no sentence contains them) fall back to the span rule.
    """
    end = start + len(text)
    holding = [i for i, (lo, hi) in enumerate(breaks) if lo <= start and end <= hi and text in sentences[i]]
    if holding:
        return min(holding, key=lambda i: start >= breaks[i][1]), False
    fallback = _span_sentence(breaks, start)
    if fallback is None:
        raise DataError(f"{where}: answer {text!r} at {start} lies in no sentence span: fix its answer_start or the "
                        "paragraph's sentence_breaks")  # fmt: skip
    return fallback, True


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _paragraph_fields(article: dict, para: dict, where: str) -> tuple[list, list]:
    """The paragraph's sentences and their [start, end] breaks, checked to exist, to have the right types and to
    pair up (a wrong type would otherwise surface as a bare TypeError far from the file)."""
    if not isinstance(para, dict):
        raise DataError(f"{where}: a paragraph must be an object, got {type(para).__name__}")
    missing = [k for k in ("context", "qas", "sentences", "sentence_breaks") if k not in para]
    if missing or "title" not in article:
        raise DataError(f"{where}: missing field(s) {missing or ['title']}")
    sentences, breaks = para["sentences"], para["sentence_breaks"]
    if not isinstance(para["context"], str) or not isinstance(article["title"], str):
        raise DataError(f"{where}: context and title must be strings")
    if not isinstance(sentences, list) or not all(isinstance(t, str) for t in sentences):
        raise DataError(f"{where}: sentences must be a list of strings")
    if not isinstance(para["qas"], list):
        raise DataError(f"{where}: qas must be a list, got {type(para['qas']).__name__}")
    bad = next((b for b in breaks if not (isinstance(b, list) and len(b) == 2 and all(map(_is_int, b)))), None) \
        if isinstance(breaks, list) else breaks  # fmt: skip
    if bad is not None or not isinstance(breaks, list):
        raise DataError(f"{where}: sentence_breaks must be a list of [start, end] integer pairs, found {bad!r}")
    if len(sentences) != len(breaks):
        raise DataError(f"{where}: {len(sentences)} sentences but {len(breaks)} sentence_breaks (one pair each)")
    return sentences, breaks


def _question_fields(qa: dict, where: str, number: int) -> tuple[str, str, int, str]:
    """(id, question, answer start, answer text) of one qa (``number``: its place in ``qas``); the text is needed to
    find the answer's sentence. Each missing part is named, with what a question needs."""
    if not isinstance(qa, dict):
        raise DataError(f"{where} qas[{number}]: a question must be an object, got {type(qa).__name__}")
    name = f"question {qa['id']!r}" if "id" in qa else f"qas[{number}]"
    missing = [k for k in ("id", "question", "answers") if k not in qa]
    if missing:
        raise DataError(f"{where} {name}: missing field(s) {missing}: each question needs an id, its question and "
                        "answers (SQuAD format)")  # fmt: skip
    if not isinstance(qa["answers"], list) or not qa["answers"]:
        what = "an empty 'answers' list" if qa["answers"] == [] else f"'answers' is a {type(qa['answers']).__name__}"
        raise DataError(f"{where} {name}: no answers ({what}): each question needs answers[0] with its text and "
                        "answer_start; give it its answer or drop the question")  # fmt: skip
    answer = qa["answers"][0]
    lacking = [k for k in ("answer_start", "text") if not isinstance(answer, dict) or k not in answer]
    if lacking:
        raise DataError(f"{where} {name}: answers[0] lacks {lacking}: an answer is its text and answer_start (where "
                        "it starts in the context)")  # fmt: skip
    qa_id, question, start, text = qa["id"], qa["question"], answer["answer_start"], answer["text"]
    if not isinstance(qa_id, str) or not isinstance(question, str) or not isinstance(text, str):
        raise DataError(f"{where} question {qa_id!r}: id, question and answer text must be strings")
    if not _is_int(start) or start < 0:
        raise DataError(f"{where} question {qa_id!r}: answer_start must be an integer >= 0, got {start!r}")
    return qa_id, question, start, text


def _parse_file(path: Path, name: str, lang: str):
    """Rows of questions and candidates for one language file, and per question (changed, fallback) flags:
    whether the label differs from LAReQA's span rule, and whether that rule decided (see ``_answer_sentence``)."""
    doc = _read_json(path)
    questions, candidates, flags, seen, n_paragraphs = [], [], [], {}, 0
    for a_idx, article in enumerate(doc["data"]):
        paragraphs = article.get("paragraphs") if isinstance(article, dict) else None
        if not isinstance(paragraphs, list):
            raise DataError(f"{path}: article {a_idx}: 'paragraphs' must be a list, got {type(paragraphs).__name__}")
        n_paragraphs += len(paragraphs)
        for p_idx, para in enumerate(paragraphs):
            where = f"{path}: article {a_idx} paragraph {p_idx}"
            sentences, breaks = _paragraph_fields(article, para, where)
            paragraph, base = f"{a_idx}:{p_idx}", f"{lang}:{a_idx}:{p_idx}"
            for s_idx, text in enumerate(sentences):
                candidates.append((f"{base}:{s_idx}", lang, text, para["context"], article["title"], paragraph))
            for number, qa in enumerate(para["qas"]):
                qa_id, question, start, answer = _question_fields(qa, where, number)
                if qa_id in seen:  # a second entry would give the id two relevant sentences, in two places
                    raise DataError(f"{path}: question id {qa_id!r} appears twice, in {seen[qa_id]} and in "
                                    f"article {a_idx} paragraph {p_idx}; ids must be unique within a file")  # fmt: skip
                seen[qa_id] = f"article {a_idx} paragraph {p_idx}"
                s_idx, fallback = _answer_sentence(sentences, breaks, start, answer, f"{where} question {qa_id!r}")
                flags.append((s_idx != _span_sentence(breaks, start), fallback))
                questions.append((f"{lang}:{qa_id}", qa_id, lang, question, article["title"], paragraph,
                                  f"{base}:{s_idx}"))  # fmt: skip
    if not questions:
        counts = f"{_n(len(doc['data']), 'article')}, {_n(n_paragraphs, 'paragraph')}, 0 questions"
        raise DataError(f"{path}: no questions (an empty split: {counts}): the file must hold questions to train or "
                        "evaluate on; check that the right split was exported")  # fmt: skip
    return questions, candidates, flags


def _n(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _english_titles(name: str, data_dir, check) -> dict[str, str]:
    """MLQA-R: group id -> English article title, so articles compare across languages."""
    path = check(locate(name, "en", data_dir), name, "en")
    doc = _read_json(path)
    try:
        pairs = [(qa["id"], a["title"]) for a in doc["data"] for p in a["paragraphs"] for qa in p["qas"]]
    except (KeyError, TypeError) as exc:
        raise DataError(
            f"{path}: malformed article/paragraph/question ({exc!r}); it names every group's article"
        ) from exc
    titles = dict(pairs)
    if len(titles) < len(pairs):
        twice = pd.Series([i for i, _ in pairs]).value_counts()
        raise DataError(f"{path}: question id {twice.index[0]!r} appears {twice.iloc[0]} times; ids must be unique "
                        "within a file (this file names every group's article)")  # fmt: skip
    return titles


def article_key(title: str) -> str:
    """Language-independent article key: the English title with spaces instead of underscores."""
    return str(title).replace("_", " ").strip()


@dataclass
class LAReQAData:
    """One LAReQA dataset restricted to some languages; see the module docstring for the id scheme."""

    name: str
    languages: tuple[str, ...]
    questions: pd.DataFrame
    candidates: pd.DataFrame
    relevant: dict[str, frozenset[str]] = field(repr=False)
    files: dict[str, str] = field(default_factory=dict)  # language -> the file it was loaded from

    def relevant_in(self, qid: str, lang: str) -> frozenset[str]:
        """The answer sentence(s) of ``qid`` in language ``lang`` (empty when the group lacks ``lang``)."""
        prefix = f"{lang}:"
        return frozenset(c for c in self.relevant[qid] if c.startswith(prefix))

    def subset(self, languages=None, articles=None, max_questions_per_lang=None, seed: int = 0) -> LAReQAData:
        """A smaller dataset: fewer languages, articles, or groups (sampled by group so parallelism survives)."""
        langs = check_languages(self.name, languages) if languages is not None else self.languages
        missing = [lang for lang in langs if lang not in self.languages]
        if missing:
            raise DataError(f"language(s) {missing} not loaded in this {self.name} dataset ({self.languages})")
        q = self.questions[self.questions.lang.isin(langs)]
        c = self.candidates[self.candidates.lang.isin(langs)]
        if articles is not None:
            keys = {article_key(a) for a in ([articles] if isinstance(articles, str) else articles)}
            unknown = keys - set(self.questions.article)
            if unknown:
                raise DataError(f"unknown article(s) {sorted(unknown)[:5]} in {self.name}")
            q, c = q[q.article.isin(keys)], c[c.article.isin(keys)]
        if max_questions_per_lang is not None:
            groups = q.drop_duplicates("group").group.to_numpy()
            rng = np.random.default_rng(seed)
            keep = set(rng.permutation(groups)[:max_questions_per_lang])
            q = q[q.group.isin(keep)]
        return _build(self.name, langs, q, c, {lang: f for lang, f in self.files.items() if lang in langs})

    def groups(self) -> pd.Series:
        """Group id -> number of loaded languages holding it (MLQA-R: 2-4 in the full data)."""
        return self.questions.groupby("group").lang.nunique()


def _build(name: str, languages, questions: pd.DataFrame, candidates: pd.DataFrame, files=None) -> LAReQAData:
    questions = questions.reset_index(drop=True)
    candidates = candidates.reset_index(drop=True)
    answers = defaultdict(set)
    for group, cid in zip(questions.group, questions.answer_cid, strict=True):
        answers[group].add(cid)
    relevant = {qid: frozenset(answers[g]) for qid, g in zip(questions.qid, questions.group, strict=True)}
    return LAReQAData(name, tuple(languages), questions, candidates, relevant, dict(files or {}))


def verify_file(path: Path, name: str, lang: str) -> Path:
    """Check a local file against the pinned sha256 (cheap: the LAReQA files are small)."""
    digest = sha256_file(path)
    if digest != SHA256[name][lang]:
        raise DataError(
            f"{path}: checksum mismatch (sha256 {digest}, expected {SHA256[name][lang]}); the file is altered or "
            "from another commit — pass verify=False to load it anyway"
        )
    return path


def load_lareqa(name: str, languages=None, data_dir: str | Path | None = None, verify: bool = True) -> LAReQAData:
    """Load XQuAD-R or MLQA-R (``name`` = "xquad-r" | "mlqa-r") for the given languages (default: all).

    ``verify`` checks each file's sha256 against the pinned release, so results always refer to the same data.
    """
    langs = check_languages(name, languages)
    check = verify_file if verify else (lambda path, _name, _lang: path)
    titles = _english_titles(name, data_dir, check) if name == "mlqa-r" else None
    q_rows, c_rows, files = [], [], {}
    for lang in langs:
        files[lang] = check(locate(name, lang, data_dir), name, lang)
        q, c, _ = _parse_file(files[lang], name, lang)
        q_rows += q
        c_rows += c
    questions = pd.DataFrame(q_rows, columns=["qid", "group", "lang", "text", "article", "paragraph", "answer_cid"])
    candidates = pd.DataFrame(c_rows, columns=["cid", "lang", "text", "context", "article", "paragraph"])
    if titles is not None:
        # MLQA-R: each language's article titles are its own; key every row by the group's English title.
        _check_english_titles(questions, titles, files, name)
        para_of_answer = questions.answer_cid.str.rsplit(":", n=2).str[0]
        cand_article = dict(zip(para_of_answer, questions.group.map(titles), strict=True))
        questions["article"] = questions.group.map(titles)
        para_key = candidates.cid.str.rsplit(":", n=2).str[0]
        candidates["article"] = para_key.map(cand_article).fillna(candidates.lang + ":" + candidates.article)
    questions["article"] = questions.article.map(article_key)
    candidates["article"] = candidates.article.map(article_key)
    _check_parallel_ids(questions, files)
    return _build(name, langs, questions, candidates, {lang: str(path.resolve()) for lang, path in files.items()})


def _check_parallel_ids(questions: pd.DataFrame, files: dict) -> None:
    """A question id names one question in every language: its article must be the same in each file, else the
    translations of two different questions would be judged as one group."""
    articles = questions.groupby("group").article.nunique()
    if (articles > 1).any():
        group = articles[articles > 1].index[0]
        rows = questions[questions.group == group].drop_duplicates("article")
        places = "; ".join(f"{files[r.lang]}: article {r.article!r} paragraph {r.paragraph}" for r in rows.itertuples())
        raise DataError(f"question id {group!r} names questions of different articles across languages ({places}); "
                        f"{int((articles > 1).sum())} such id(s) in all: one id names one question, the same in every "
                        "language's file")  # fmt: skip


def _check_english_titles(questions: pd.DataFrame, titles: dict, files: dict, name: str) -> None:
    """Every MLQA-R question must be in the English file (it names each group's article)."""
    missing = questions[~questions.group.isin(titles)]
    if len(missing):
        row = missing.iloc[0]
        a_idx, p_idx = row.paragraph.split(":")
        raise DataError(
            f"{files[row.lang]}: article {a_idx} paragraph {p_idx} question {row.group!r}: not in the {name} English "
            f"file, which names every group's article ({len(missing)} question(s) in all)"
        )


def training_pairs(ds: LAReQAData, query_langs=None, passage_langs=None) -> pd.DataFrame:
    """(question in X, its answer sentence in Y) for every X, Y of each group, X == Y included.

    Columns: query, passage, query_lang, passage_lang, group, article. Hybrid batch sampling draws from this.
    """
    qx = check_languages(ds.name, query_langs) if query_langs is not None else ds.languages
    py = check_languages(ds.name, passage_langs) if passage_langs is not None else ds.languages
    text_of = dict(zip(ds.candidates.cid, ds.candidates.text, strict=True))
    queries = ds.questions[ds.questions.lang.isin(qx)][["text", "lang", "group", "article"]]
    answers = ds.questions[ds.questions.lang.isin(py)][["answer_cid", "lang", "group"]]
    pairs = queries.merge(answers, on="group", suffixes=("_q", "_p"))
    out = pd.DataFrame(
        {
            QUERY: pairs.text,
            PASSAGE: pairs.answer_cid.map(text_of),
            QUERY_LANG: pairs.lang_q,
            PASSAGE_LANG: pairs.lang_p,
            GROUP: pairs.group,
            ARTICLE: pairs.article,
        }
    )
    return out.sort_values([GROUP, QUERY_LANG, PASSAGE_LANG], kind="stable").reset_index(drop=True)


def to_hf_dataset(df: pd.DataFrame, columns=None):
    """A 🤗 ``datasets.Dataset`` of the given columns (default all), in the table's row order."""
    from datasets import Dataset

    return Dataset.from_pandas(df[list(columns)] if columns else df, preserve_index=False)


def ensure_data(names=("xquad-r", "mlqa-r"), data_dir=None) -> dict[str, list[Path]]:
    """Locate (downloading if needed) every file of the given datasets; used by ``make data``."""
    return {name: [locate(name, lang, data_dir) for lang in LANGUAGES[name]] for name in names}


# --- exploration summaries (notebook 01) -------------------------------------------------------------------


def describe(ds: LAReQAData) -> pd.DataFrame:
    """Per language: questions, candidates, articles, and mean candidates per paragraph."""
    q = ds.questions.groupby("lang").agg(questions=("qid", "size"), groups=("group", "nunique"))
    c = ds.candidates.groupby("lang").agg(
        candidates=("cid", "size"), articles=("article", "nunique"), paragraphs=("paragraph", "nunique")
    )
    out = q.join(c, how="outer").fillna(0).astype(int)
    out["sentences_per_paragraph"] = (out.candidates / out.paragraphs.clip(lower=1)).round(2)
    out.insert(0, "dataset", ds.name)
    return out.reset_index()


def token_lengths(ds: LAReQAData, tokenizer, prompts: tuple[str, str]) -> pd.DataFrame:
    """Token counts of every question and candidate with the (query, passage) ``prompts`` the encoder prepends, as
    the encoder sees them (the caller passes its model's prompts: the loaders know no model)."""
    rows = []
    for kind, table, prompt in (("question", ds.questions, prompts[0]), ("candidate", ds.candidates, prompts[1])):
        counts = [len(ids) for ids in tokenizer([prompt + t for t in table.text])["input_ids"]]
        rows.append(pd.DataFrame({"dataset": ds.name, "kind": kind, "lang": table.lang.to_numpy(), "tokens": counts}))
    return pd.concat(rows, ignore_index=True)


def truncated_share(lengths: pd.DataFrame, cutoff: int) -> pd.DataFrame:
    """Per dataset, kind (question / candidate) and language: the share of texts longer than ``cutoff`` tokens
    (``token_lengths``' output). Stated beside every score: a text past the cut-off is scored on its beginning only."""
    over = lengths.assign(cut=lengths.tokens > cutoff)
    out = over.groupby(["dataset", "kind", "lang"], sort=True).agg(texts=("cut", "size"), cut=("cut", "mean"))
    return out.reset_index().rename(columns={"cut": "share_cut"}).assign(cutoff=int(cutoff))


def article_overlap(a: LAReQAData, b: LAReQAData) -> pd.DataFrame:
    """Articles (case-insensitive English titles) that two datasets share: train/test leakage check."""
    keys_a = {t.casefold(): t for t in a.questions.article.unique()}
    keys_b = {t.casefold(): t for t in b.questions.article.unique()}
    shared = sorted(set(keys_a) & set(keys_b))
    return pd.DataFrame({a.name: [keys_a[k] for k in shared], b.name: [keys_b[k] for k in shared]})


def examples(ds: LAReQAData, group: str | None = None) -> pd.DataFrame:
    """One parallel group across its languages: question and answer sentence side by side."""
    group = group if group is not None else ds.questions.group.iloc[0]
    rows = ds.questions[ds.questions.group == group]
    text_of = dict(zip(ds.candidates.cid, ds.candidates.text, strict=True))
    return pd.DataFrame({"lang": rows.lang, "question": rows.text, "answer_sentence": rows.answer_cid.map(text_of)})


def answer_label_report(
    name: str, languages=None, data_dir: str | Path | None = None, verify: bool = True
) -> pd.DataFrame:
    """Per language: ``questions``; ``changed``, answer labels that differ from LAReQA's first-span rule (which
    picks the previous sentence on shared boundaries); ``fallback``, answers no sentence holds (they straddle a
    break), so that rule still decided. Notebook 01 shows it, so the label fix's effect on the benchmark is visible.
    """
    rows = []
    for lang in check_languages(name, languages):
        path = locate(name, lang, data_dir)
        _, _, flags = _parse_file(verify_file(path, name, lang) if verify else path, name, lang)
        rows.append((name, lang, len(flags), sum(c for c, _ in flags), sum(f for _, f in flags)))
    return pd.DataFrame(rows, columns=["dataset", "lang", "questions", "changed", "fallback"])
