"""Result tables are checked when read: one error naming the file and the problem (issue 25 defect 3)."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from hybridir_utils import result_tables
from hybridir_utils.errors import TableError
from hybridir_utils.report import answer
from hybridir_utils.result_tables import SCHEMAS
from hybridir_utils.utils import paths


@pytest.fixture
def smoke_copy(tmp_path):
    """The committed smoke tables in a results folder of a temporary profile root."""
    folder = tmp_path / "results" / "smoke"
    shutil.copytree(paths.root() / "results" / "smoke", folder)
    return folder


def test_every_committed_table_fits_its_schema():
    checked = 0
    for path in sorted((paths.root() / "results").glob("*/*.csv")):
        if path.stem in SCHEMAS:
            result_tables.read(path.parent, path.stem)
            checked += 1
    assert checked >= 15


def test_a_dropped_column_is_named_not_a_keyerror(smoke_copy):
    levels = pd.read_csv(smoke_copy / "levels.csv").drop(columns="map")
    levels.to_csv(smoke_copy / "levels.csv", index=False)
    with pytest.raises(TableError, match=rf"{smoke_copy / 'levels.csv'}: missing column\(s\) \['map'\] \(written by "
                       r"notebook 04; rerun it\)"):  # fmt: skip
        answer.load(smoke_copy)


def test_a_word_or_a_hole_in_a_number_is_named_with_its_row(smoke_copy):
    table = pd.read_csv(smoke_copy / "comparisons.csv")
    table["delta"] = table.delta.astype(object)
    table.loc[2, "delta"] = "abc"
    table.loc[4, "mde"] = float("nan")
    table.loc[5, "p_perm"] = float("nan")  # may be empty: a one-run side has no permutation p
    table.to_csv(smoke_copy / "comparisons.csv", index=False)
    with pytest.raises(TableError, match=r"column 'delta' holds non-numbers \(row 4: 'abc'\); column 'mde' is empty "
                       r"in 1 row\(s\) \(first: row 6\)"):  # fmt: skip
        result_tables.read(smoke_copy, "comparisons")


def test_the_cli_says_one_line_for_a_bad_table_and_an_unknown_profile(smoke_copy, monkeypatch, capsys):
    monkeypatch.setenv("HYBRIDIR_RESULTS_DIR", str(smoke_copy.parent))
    pd.read_csv(smoke_copy / "levels.csv").drop(columns="map").to_csv(smoke_copy / "levels.csv", index=False)
    assert answer.main(["--profile", "smoke"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("answer: ") and "missing column(s) ['map']" in err and "Traceback" not in err
    assert answer.main(["--profile", "nope"]) == 1
    err = capsys.readouterr().err
    assert "no results for profile 'nope'" in err and "profiles with results: ['smoke']" in err


def test_a_topic_without_test_articles_may_leave_its_gains_empty(smoke_copy):
    """A profile whose test set holds no article of a topic writes that interaction row with empty numbers."""
    table = pd.read_csv(smoke_copy / "interactions.csv")
    empty = ["gain_target", "gain_other", "interaction", "lo", "hi", "p", "p_holm", "p_perm", "se", "df", "mde"]
    table.loc[0, empty] = float("nan")
    table.loc[0, ["n_target_articles", "status"]] = [0, "too-few-articles"]
    table.to_csv(smoke_copy / "interactions.csv", index=False)
    assert len(result_tables.read(smoke_copy, "interactions")) == len(table)
    table.loc[0, "n_target_articles"] = float("nan")
    table.to_csv(smoke_copy / "interactions.csv", index=False)
    with pytest.raises(TableError, match="column 'n_target_articles' is empty"):
        result_tables.read(smoke_copy, "interactions")


def test_write_table_rounds_floats_and_replaces_atomically(tmp_path):
    table = pd.DataFrame({"system": ["a"], "map": [0.123456789], "rank_distance": [61.23456], "seed": [0]})
    path = result_tables.write_table(tmp_path / "results" / "cpu", "levels", table)
    assert path.read_text() == "system,map,rank_distance,seed\na,0.1235,61.23,0\n"
    assert [p.name for p in path.parent.iterdir()] == ["levels.csv"]  # no temporary file left behind
