"""Static checks of the notebooks (structure, parameters, pairing) and of the pipeline's parameter handling."""

from __future__ import annotations

import ast
import json

import nbformat
import papermill
import pytest
import yaml

from hybridir_utils import config, pipeline

NOTEBOOKS = [config.notebooks_dir() / f"{name}.ipynb" for name in pipeline.NOTEBOOKS]
PROFILES = ["smoke", "cpu", "sampling", "full"]


@pytest.fixture(params=NOTEBOOKS, ids=lambda p: p.stem)
def notebook(request):
    return request.param, nbformat.read(request.param, as_version=4)


def test_every_notebook_has_title_purpose_inputs_outputs(notebook):
    _, nb = notebook
    intro = nb.cells[0]
    assert intro.cell_type == "markdown" and intro.source.startswith("# ")
    for word in ("**Purpose.**", "**Inputs.**", "**Outputs**"):
        assert word in intro.source


def test_first_code_cell_imports_second_is_parameters(notebook):
    _, nb = notebook
    code = [c for c in nb.cells if c.cell_type == "code"]
    first = ast.parse(code[0].source)
    assert all(isinstance(node, ast.Import | ast.ImportFrom) for node in first.body)
    params = code[1]
    assert "parameters" in params.metadata.get("tags", [])
    for node in ast.parse(params.source).body:  # literals only, each commented
        assert isinstance(node, ast.Assign)
        ast.literal_eval(node.value)
    assert all("  # " in line for line in params.source.splitlines() if line.strip())


def test_no_long_functions_and_no_outputs(notebook):
    _, nb = notebook
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        assert not cell.get("outputs") and cell.get("execution_count") is None
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.FunctionDef):
                assert node.end_lineno - node.lineno + 1 <= 10, f"function {node.name} belongs in the package"


def test_jupytext_pair_in_sync(notebook):
    import jupytext

    path, nb = notebook
    paired = jupytext.read(path.with_suffix(".py"))
    assert [c.source for c in paired.cells] == [c.source for c in nb.cells]


def test_notebooks_write_only_under_run_dir(notebook):
    _, nb = notebook
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "Path(run_dir)" in text
    assert "build/" not in text.replace('run_dir = "build/dev"', "")
    assert "results/" not in text.replace('results_dir = "results/dev"', "")


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_only_use_declared_parameters(profile):
    params = pipeline.load_profile(profile)
    split = pipeline.split_parameters(params, NOTEBOOKS)
    declared = {nb.stem: set(papermill.inspect_notebook(str(nb))) - set(pipeline.RESERVED) for nb in NOTEBOOKS}
    for stem, given in split.items():
        assert set(given) == declared[stem], f"{profile} leaves {declared[stem] - set(given)} of {stem} at defaults"


def test_unknown_parameter_is_an_error():
    with pytest.raises(pipeline.PipelineError, match=r"unknown parameter\(s\) \['max_stpes'\]"):
        pipeline.split_parameters({"max_stpes": 3}, NOTEBOOKS)
    with pytest.raises(pipeline.PipelineError, match=r"\['results_dir', 'run_dir'\] are set by the pipeline"):
        pipeline.split_parameters({"run_dir": "x", "results_dir": "y"}, NOTEBOOKS)


def test_unknown_profile_and_bad_yaml(tmp_path):
    with pytest.raises(pipeline.PipelineError, match="unknown profile 'gpu'"):
        pipeline.load_profile("gpu")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(pipeline.PipelineError, match=r"bad\.yaml: invalid YAML"):
        pipeline.load_profile("bad", tmp_path)


def test_overrides_are_typed():
    assert pipeline.parse_overrides([["max_steps", "20"], ["seeds", "[0, 1]"], ["miracl_dir", "null"]]) == {
        "max_steps": 20,
        "seeds": [0, 1],
        "miracl_dir": None,
    }


def test_failing_notebook_names_cell_and_keeps_output(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("x = 1"), nbformat.v4.new_code_cell("raise ValueError('boom')")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "bad.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(pipeline.PipelineError, match=r"bad.ipynb failed in cell 2 \(ValueError: boom\)"):
        pipeline.run_notebook(path, tmp_path / "out", {}, timeout=120)
    kept = json.loads((tmp_path / "out" / "bad.failed.ipynb").read_text())
    assert "boom" in json.dumps(kept)
    assert not (tmp_path / "out" / "bad.ipynb").exists()


def test_smoke_profile_is_small():
    params = yaml.safe_load((config.params_dir() / "smoke.yaml").read_text())
    assert max(params["sweep_steps"]) <= 20 and len(params["xquad_languages"]) <= 3 and params["eval_max_articles"] <= 3
    assert len(params["sweep_scales"]) * len(params["sweep_lrs"]) == 1


def test_make_lab_notebooks_carry_the_profile_and_write_under_build(tmp_path, monkeypatch):
    from hybridir_utils import lab

    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    folder = lab.prepare("cpu")
    assert folder == tmp_path / "build" / "cpu" / "lab"
    profile = pipeline.load_profile("cpu")
    for path in NOTEBOOKS:
        nb = nbformat.read(folder / path.name, as_version=4)
        (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        values = {}
        for node in ast.parse(injected.source).body:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        assert values.pop("run_dir") == str(tmp_path / "build" / "cpu")
        expected = {**profile, "results_dir": str(config.results_dir("cpu"))}
        assert values == {k: v for k, v in expected.items() if k in papermill.inspect_notebook(str(path))}
        assert "jupytext" not in nb.metadata
    nb_file = folder / NOTEBOOKS[0].name
    nb_file.write_text(nb_file.read_text().replace("# 01", "# 01 (edited in the lab)"))
    lab.prepare("cpu")
    assert "edited in the lab" in nb_file.read_text()  # a second `make lab` keeps the user's edits
