"""Static checks of the notebooks (structure, parameters, pairing) and of the pipeline's parameter handling."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from hybridir_utils import errors, parameters
from hybridir_utils.pipeline import provenance, runner
from hybridir_utils.utils import paths

NOTEBOOKS = [paths.notebooks_dir() / f"{name}.ipynb" for name in runner.NOTEBOOKS]
PROFILES = sorted(p.stem for p in paths.params_dir().glob("*.yaml"))  # every profile, confirm included


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
    for node in ast.parse(params.source).body:  # literals only, each annotated with its declared type, commented
        assert isinstance(node, ast.AnnAssign), ast.unparse(node)
        ast.literal_eval(node.value)
        assert ast.unparse(node.annotation) == parameters.PARAMS[node.target.id].type, node.target.id
    assert all("  # " in line for line in params.source.splitlines() if line.strip())


def test_help_notebook_lists_every_parameter_with_its_type_and_comment(notebook):
    """Issue 13 item 3: ``papermill --help-notebook`` printed "Unknown type" for every parameter."""
    path, nb = notebook
    inferred = papermill.inspect_notebook(str(path))
    declared = [n.target.id for n in ast.parse([c for c in nb.cells if c.cell_type == "code"][1].source).body]
    assert list(inferred) == declared  # papermill reads every line (it cannot parse `X | None`: Optional[X])
    for name, info in inferred.items():
        assert info["inferred_type_name"] == parameters.PARAMS[name].type and info["help"], name
    defaults = {name: ast.literal_eval(info["default"]) for name, info in inferred.items()}
    parameters.check(defaults)  # a notebook's own defaults pass the pipeline's checks


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
    assert "build/" not in text.replace('run_dir: str = "build/dev"', "")
    assert "results/" not in text.replace('results_dir: str = "results/dev"', "")


@pytest.mark.parametrize("profile", PROFILES)
def test_profiles_only_use_declared_parameters(profile):
    params = runner.load_profile(profile)
    split = runner.split_parameters(params, NOTEBOOKS)
    declared = {nb.stem: set(papermill.inspect_notebook(str(nb))) - set(runner.RESERVED) for nb in NOTEBOOKS}
    reused = runner.REUSED_NOTEBOOKS if params.get("models_from") else ()  # notebooks it does not run
    for stem, given in split.items():
        if stem in reused:
            continue
        assert set(given) == declared[stem], f"{profile} leaves {declared[stem] - set(given)} of {stem} at defaults"


def test_unknown_parameter_is_an_error():
    with pytest.raises(errors.PipelineError, match=r"unknown parameter\(s\) \['max_stpes'\]"):
        runner.split_parameters({"max_stpes": 3}, NOTEBOOKS)
    with pytest.raises(errors.PipelineError, match=r"\['results_dir', 'run_dir'\] are set by the pipeline"):
        runner.split_parameters({"run_dir": "x", "results_dir": "y"}, NOTEBOOKS)


def test_unknown_profile_and_bad_yaml(tmp_path):
    with pytest.raises(errors.PipelineError, match="unknown profile 'nope'"):
        runner.load_profile("nope")
    (tmp_path / "bad.yaml").write_text("a: [1, 2\n")
    with pytest.raises(errors.PipelineError, match=r"bad\.yaml: invalid YAML"):
        runner.load_profile("bad", tmp_path)


def test_overrides_are_typed():
    assert runner.parse_overrides([["max_steps", "20"], ["seeds", "[0, 1]"], ["miracl_dir", "null"]]) == {
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
    with pytest.raises(errors.PipelineError, match=r"bad.ipynb failed in cell 2 \(ValueError: boom\)"):
        runner.run_notebook(path, tmp_path / "out", {}, timeout=120)
    kept = json.loads((tmp_path / "out" / "bad.failed.ipynb").read_text())
    assert "boom" in json.dumps(kept)
    assert not (tmp_path / "out" / "bad.ipynb").exists()


def test_a_cell_past_the_timeout_is_named_not_a_traceback(tmp_path):
    """The expected failure of a too-small cell_timeout: one PipelineError naming the notebook and the limit."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell("import time\ntime.sleep(30)")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    path = tmp_path / "slow.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(errors.PipelineError, match=r"slow.ipynb stopped: a cell ran past the 2 s cell timeout"):
        runner.run_notebook(path, tmp_path / "out", {}, timeout=2)
    assert (tmp_path / "out" / "slow.failed.ipynb").exists() and not (tmp_path / "out" / "slow.ipynb").exists()


def test_smoke_profile_is_small():
    params = yaml.safe_load((paths.params_dir() / "smoke.yaml").read_text())
    # 8 test articles: the fewest that hold 2 science articles and 2 others, so the interaction path runs
    assert max(params["sweep_steps"]) <= 20 and len(params["xquad_languages"]) <= 3 and params["eval_max_articles"] <= 8
    assert len(params["sweep_scales"]) * len(params["sweep_lrs"]) == 1


def test_profile_cell_timeout_reaches_papermill_and_no_notebook(monkeypatch, tmp_path):
    seen = []
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(
        runner, "run_notebook", lambda nb, out, params, timeout, until=None: seen.append((params, timeout))
    )
    monkeypatch.setattr(runner, "render_html", lambda executed, out, record, results: out / "index.html")
    runner.run("gpu", only=["05"])
    assert seen[0][1] == runner.load_profile("gpu")["cell_timeout"] and "cell_timeout" not in seen[0][0]
    runner.run("gpu", only=["05"], timeout=60)
    assert seen[1][1] == 60
    record = json.loads((tmp_path / "gpu" / "pipeline.json").read_text())
    assert record["machine"]["device"] in ("cpu", "cuda") and record["cell_timeout"] == 60


def test_only_matching_nothing_is_an_error_and_a_partial_rerun_keeps_the_report(tmp_path, monkeypatch):
    """Issue 12 defect 3: ``--only 4`` exited 0 and wrote an empty index.html and pipeline.json."""
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path))
    out = tmp_path / "smoke"
    out.mkdir()
    (out / "index.html").write_text("earlier report")
    with pytest.raises(errors.PipelineError, match=r"--only \['4'\] matches no notebook"):
        runner.run("smoke", only=["4"])
    assert runner.main(["--profile", "smoke", "--only", "4"]) == 1
    assert (out / "index.html").read_text() == "earlier report" and not (out / "pipeline.json").exists()

    earlier = {name: {"seconds": float(i), "parameters": {}} for i, name in enumerate(runner.NOTEBOOKS)}
    provenance.record_run(out, "smoke", {}, earlier)
    record = provenance.record_run(out, "smoke", {"n_boot": 10}, {"04_evaluation": {"seconds": 99.0, "parameters": {}}})
    assert record["seconds"] == {**{k: v["seconds"] for k, v in earlier.items()}, "04_evaluation": 99.0}


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        ({"batch_size": -3}, r"parameter batch_size=-3: expected an integer in \[1, inf\)"),
        ({"dev_share": "x"}, r"parameter dev_share='x': expected a number in \(0, 1\)"),
        (
            {"samplings": ["hybird"]},
            r"parameter samplings=\['hybird'\]: expected .*\(unknown sampling 'hybird': a "
            r"preset \['hybrid', 'x-x-mono', 'x-y'\] or 'alpha<α",
        ),
        ({"max_steps": "notanumber"}, r"unknown parameter\(s\) \['max_steps'\]"),
        ({"miracl_languages": ["sv"]}, r"parameter miracl_languages=\['sv'\]: expected .* among \['ar', 'bn'"),
        ({"score_systems": False, "miracl_dir": "hub"}, r"score_systems false \(scores from an archive\) cannot"),
    ],
)
def test_bad_parameters_fail_before_the_first_notebook(tmp_path, monkeypatch, overrides, needle):
    """Issue 12 defect 6: ``-p batch_size -3`` ran notebooks 01-02 and failed in notebook 03."""
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path))
    monkeypatch.setattr(runner, "run_notebook", lambda *a, **k: pytest.fail("a notebook started"))
    with pytest.raises(errors.PipelineError, match=needle):
        runner.run("smoke", overrides)


def test_every_profile_passes_the_parameter_checks_and_train_config_shares_them():
    for profile in PROFILES:
        parameters.check(runner.load_profile(profile))
    with pytest.raises(errors.ParameterError, match=r"unknown parameter\(s\) \['precison'\]"):
        parameters.check({"precison": "bf16"})
    from hybridir_utils.errors import TrainConfigError
    from hybridir_utils.training.config import TrainConfig

    with pytest.raises(TrainConfigError, match=r"parameter batch_size=0: expected an integer in \[1, inf\)"):
        TrainConfig(batch_size=0)


def test_make_lab_notebooks_carry_the_profile_and_write_under_build(tmp_path, monkeypatch):
    from hybridir_utils.pipeline import lab

    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    folder = lab.prepare("cpu")
    assert folder == tmp_path / "build" / "cpu" / "lab"
    profile = runner.load_profile("cpu")
    for path in NOTEBOOKS:
        nb = nbformat.read(folder / path.name, as_version=4)
        (injected,) = [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
        values = {}
        for node in ast.parse(injected.source).body:
            values[node.targets[0].id] = ast.literal_eval(node.value)
        assert values.pop("run_dir") == str(tmp_path / "build" / "cpu")
        expected = {**profile, "results_dir": str(paths.results_dir("cpu"))}
        assert values == {k: v for k, v in expected.items() if k in papermill.inspect_notebook(str(path))}
        assert "jupytext" not in nb.metadata
    nb_file = folder / NOTEBOOKS[0].name
    nb_file.write_text(nb_file.read_text().replace("# 01", "# 01 (edited in the lab)"))
    lab.prepare("cpu")
    assert "edited in the lab" in nb_file.read_text()  # a second `make lab` keeps the user's edits


def _source_profile(tmp_path: Path, name: str = "cpu") -> None:
    """The outputs of notebooks 01-03 of profile ``name`` that a ``models_from`` profile reuses (contents fake)."""
    for stage in runner.REUSED:
        (tmp_path / "build" / name / stage).mkdir(parents=True)
    (tmp_path / "build" / name / "03_training" / "runs.csv").write_text("system\nhybrid/news-in-domain\n")
    (tmp_path / "results" / name).mkdir(parents=True)
    for table in ("recipe", "training"):
        (tmp_path / "results" / name / f"{table}.csv").write_text(f"{table}\n1\n")


def test_models_from_scores_another_profiles_models_without_training(monkeypatch, tmp_path):
    """``confirm`` runs notebooks 04-05 only, over links to the cpu profile's data, domains and trained models, and
    carries the cpu recipe and training tables beside its own results."""
    seen = []
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("HYBRIDIR_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setattr(
        runner, "run_notebook", lambda nb, out, params, timeout, until=None: seen.append((nb.stem, params))
    )
    monkeypatch.setattr(runner, "render_html", lambda executed, out, record, results: out / "index.html")
    with pytest.raises(errors.PipelineError, match=r"models_from='cpu'.*make reproduce PROFILE=cpu` first"):
        runner.run("confirm")
    _source_profile(tmp_path)
    runner.run("confirm")
    assert [stem for stem, _ in seen] == ["04_evaluation", "05_bias_analysis"]
    assert seen[0][1]["eval_systems"] == ["hybrid/news-in-domain", "hybrid/news-size-random"]
    assert all("models_from" not in params for _, params in seen)
    out = tmp_path / "build" / "confirm"
    for stage in runner.REUSED:
        assert (out / stage).is_symlink() and (out / stage).resolve() == (tmp_path / "build" / "cpu" / stage).resolve()
    assert (tmp_path / "results" / "confirm" / "recipe.csv").read_text() == "recipe\n1\n"
    assert json.loads((out / "pipeline.json").read_text())["parameters"]["models_from"] == "cpu"
    with pytest.raises(errors.PipelineError, match=r"--only \['03_hybrid_batch_training'\]: this profile takes"):
        runner.run("confirm", only=["03"])


def test_models_from_never_replaces_a_profiles_own_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.setenv("HYBRIDIR_RESULTS_DIR", str(tmp_path / "results"))
    _source_profile(tmp_path)
    (tmp_path / "build" / "confirm" / "03_training").mkdir(parents=True)
    with pytest.raises(errors.PipelineError, match=r"03_training is a folder of this profile's own"):
        runner.reuse_models("cpu", tmp_path / "build" / "confirm", tmp_path / "results" / "confirm")


def test_make_lab_starts_as_root_and_without_a_display(monkeypatch, tmp_path):
    """Issue 25 defect 1: `jupyter lab` exited with "Running as root is not recommended" and assumed a browser."""
    from hybridir_utils.pipeline import lab

    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(lab.os, "geteuid", lambda: 0)
    command = lab.lab_command(tmp_path, ip="0.0.0.0", port=8890)
    assert command[1:3] == ["lab", str(tmp_path)] and Path(command[0]).name == "jupyter"
    assert {"--allow-root", "--no-browser", "--ServerApp.ip=0.0.0.0", "--ServerApp.port=8890"} <= set(command)
    monkeypatch.setattr(lab.os, "geteuid", lambda: 1000)
    monkeypatch.setenv("DISPLAY", ":0")
    command = lab.lab_command(tmp_path)
    assert "--allow-root" not in command and "--no-browser" not in command  # a desktop user: the browser opens
    assert "--no-browser" in lab.lab_command(tmp_path, browser=False)
