"""The result tables ``results/<profile>/*.csv``, checked when read: RESULTS.md, the report and the answer are
written from them, so a table with a missing column, a word where a number belongs or a hole in a number the
answer states must stop with one error naming the file and what is wrong, never a pandas traceback or a
quietly wrong sentence.

Each schema lists the columns a reader needs: text, whole numbers and numbers that must be present and never
empty, and numbers that may be empty (a one-run side has no run SD) or absent (tables of older designs).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hybridir_utils.errors import TableError
from hybridir_utils.utils import atomic


@dataclass(frozen=True)
class Schema:
    text: tuple[str, ...] = ()
    numbers: tuple[str, ...] = ()  # present, numeric, never empty
    optional: tuple[str, ...] = ()  # numeric where present; may be empty or absent
    writer: str = "the pipeline"
    empty_ok: bool = False  # a header without rows is a valid answer (e.g. no domain arms: no interactions)


_SETTING = ("system", "dataset", "setting")
_CURVE = tuple(f"{s}_{k}" for s in ("mono", "cross") for k in ("delta", "lo", "hi", "se"))  # paired, vs λ = 0
SCHEMAS: dict[str, Schema] = {
    "levels": Schema(_SETTING, ("seed", "map", "r1", "r10"), ("rank_distance", "pool_size", "cka"), "notebook 04"),
    "comparisons": Schema(("system", "reference", "question", "dataset", "setting", "slice"),
                          ("delta", "lo", "hi", "p", "p_holm", "n_seeds", "n_ref_seeds", "se", "mde"),
                          ("p_perm", "run_sd", "ref_run_sd", "df", "mde_holm"), "notebook 04"),
    "interactions": Schema(("system", "reference", "topic", "dataset", "setting", "status"),
                           ("n_target_articles", "n_other_articles"),  # a topic with no test article: all empty
                           ("gain_target", "gain_other", "interaction", "lo", "hi", "p", "p_holm", "p_perm", "se",
                            "df", "mde"), "notebook 04", empty_ok=True),  # no domain arms (sampling): none
    "slices": Schema(("system", "dataset", "domain", "status"), ("queries", "articles", "seeds"), ("map",),
                     "notebook 04"),
    "truncation": Schema(("dataset", "kind", "lang"), ("texts", "share_cut", "cutoff"), (), "notebook 04"),
    "recipe": Schema(("chosen",), ("step", "dev_mono", "dev_cross"), ("scale", "lr", "dev_mono_se", "dev_cross_se"),
                     "notebook 03"),
    "training": Schema(("system", "label"), ("seed", "groups", "pairs", "batch_size", "steps", "train_loss"),
                       ("articles", "same_article_negatives", "wise_lambda"), "notebook 03"),
    "wiseft": Schema(("chosen",), ("lam", "dev_mono", "dev_cross", "runs"), _CURVE, "notebook 03"),
    "wiseft_test": Schema(("chosen", "part"), ("lam", "test_mono", "test_cross", "runs", *_CURVE), (), "notebook 04"),
    "split": Schema(("article", "domain", "part", "dataset"), (), (), "notebook 02"),
    "languages": Schema(("system", "setting", "lang", "dataset", "seen"), ("map", "runs", "delta_vs_base"), (),
                        "notebook 05"),
}  # fmt: skip


def check(table: pd.DataFrame, name: str, path: Path | str = "") -> pd.DataFrame:
    """``table`` if it fits ``SCHEMAS[name]``; else :class:`TableError` naming ``path`` and every problem."""
    schema, where = SCHEMAS[name], path or f"{name}.csv"
    required = (*schema.text, *schema.numbers)
    missing = [c for c in required if c not in table.columns]
    problems = [f"missing column(s) {missing}"] if missing else []
    for column in (*schema.numbers, *schema.optional):
        if column not in table.columns:
            continue
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table[column].notna() & values.isna()
        if bad.any():
            problems.append(f"column {column!r} holds non-numbers (row {int(bad.to_numpy().argmax()) + 2}: "
                            f"{table[column][bad].iloc[0]!r})")  # fmt: skip
        elif column in schema.numbers and values.isna().any():
            problems.append(f"column {column!r} is empty in {int(values.isna().sum())} row(s) (first: row "
                            f"{int(values.isna().to_numpy().argmax()) + 2})")  # fmt: skip
    if not len(table) and not schema.empty_ok:
        problems.append("no rows")
    if problems:
        raise TableError(f"{where}: " + "; ".join(problems) + f" (written by {schema.writer}; rerun it)")
    return table


def read(folder: str | Path, name: str) -> pd.DataFrame:
    """``<folder>/<name>.csv``, checked (:func:`check`); a missing file names what writes it."""
    path = Path(folder) / f"{name}.csv"
    if not path.is_file():
        raise TableError(f"{path} not found: run the pipeline for this profile ({SCHEMAS[name].writer} writes it)")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise TableError(f"{path}: not a readable CSV table ({exc})") from exc
    return check(table, name, path)


def levels(results: pd.DataFrame) -> pd.DataFrame:
    """``results/<profile>/levels.csv``: one row per (system, seed, dataset, setting); rank distance on multi; ``cka``
    the linear CKA of the system's and the base model's candidate embeddings (``evaluation.systems.linear_cka``)."""
    rows = []
    for r in results.itertuples():
        for setting in ("mono", "cross", "multi"):
            rows.append({"system": r.system, "seed": int(r.seed), "dataset": r.dataset, "setting": setting,
                         "map": getattr(r, f"{setting}_map"), "r1": getattr(r, f"{setting}_r1"),
                         "r10": getattr(r, f"{setting}_r10"),
                         "rank_distance": r.rank_distance if setting == "multi" else np.nan, "cka": r.cka,
                         "pool_size": r.pool_size if setting == "multi" else np.nan})  # fmt: skip
    return pd.DataFrame(rows)


# Decimals per float column (others: 4, below every difference the report states); None keeps a column as is
# (learning rates and scales must never round to 0).
ROUND = {"rank_distance": 2, "cka": 6, "lr": None, "scale": None}


def write_table(results_dir: Path, name: str, table: pd.DataFrame) -> Path:
    """``<results_dir>/<name>.csv`` atomically, floats rounded so a fresh run on another CPU gives the same file."""
    floats = table.select_dtypes("float").columns
    table = table.assign(**{c: table[c].round(ROUND.get(c, 4)) for c in floats if ROUND.get(c, 4) is not None})
    path = Path(results_dir) / f"{name}.csv"
    atomic.atomic_write(path, lambda p: table.to_csv(p, index=False))
    return path
