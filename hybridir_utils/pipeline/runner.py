"""Run the notebooks in order with papermill under a parameter profile, then render an HTML report.

    python -m hybridir_utils.pipeline --profile smoke [-p key value ...] [--only 01 04]

A profile (``params/<name>.yaml``) is one flat mapping of parameters. Each notebook receives the keys that
its ``parameters`` cell declares; a key that no notebook declares is an error, so a typo never silently runs
the defaults, and every value is checked against ``parameters.PARAMS`` before the first notebook starts.
``run_dir`` is set by the pipeline: every notebook reads and writes only under it.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import yaml

from hybridir_utils import errors, parameters
from hybridir_utils.errors import PipelineError
from hybridir_utils.pipeline import provenance
from hybridir_utils.report import html
from hybridir_utils.utils import atomic, locks, paths

NOTEBOOKS = (
    "01_data_exploration",
    "02_domain_selection",
    "03_hybrid_batch_training",
    "04_evaluation",
    "05_bias_analysis",
)
RESERVED = ("run_dir", "results_dir")
PIPELINE_KEYS = ("cell_timeout", "models_from")  # profile keys read by the pipeline itself, never by a notebook
REUSED = ("01_data", "02_domains", "03_training")  # what a ``models_from`` profile takes from another profile,
REUSED_NOTEBOOKS = NOTEBOOKS[:3]  # written by these notebooks, which it does not run
REUSED_TABLES = ("recipe", "training", "wiseft")  # and the result tables notebook 03 wrote there (wiseft if any)


def load_profile(name: str, params_dir: Path | None = None) -> dict:
    path = (params_dir or paths.params_dir()) / f"{name}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in (params_dir or paths.params_dir()).glob("*.yaml"))
        raise PipelineError(f"unknown profile {name!r}: no {path}; profiles: {known}")
    try:
        params = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise PipelineError(f"{path}: invalid YAML ({exc})") from exc
    if not isinstance(params, dict):
        raise PipelineError(f"{path}: expected a mapping of parameter names to values")
    return params


def declared_parameters(notebook: Path) -> dict[str, dict]:
    """The parameters a notebook declares in its ``parameters`` cell (papermill's own parser)."""
    import papermill

    return papermill.inspect_notebook(str(notebook))


def parse_overrides(pairs: list[list[str]] | None) -> dict:
    """``-p key value`` pairs; values are YAML so ``-p max_steps 20`` is an int and ``-p langs [en,de]`` a list."""
    return {key: yaml.safe_load(value) for key, value in (pairs or [])}


def split_parameters(params: dict, notebooks: list[Path]) -> dict[str, dict]:
    """Assign each parameter to the notebooks that declare it; reject parameters nobody declares."""
    params = {k: v for k, v in params.items() if k not in PIPELINE_KEYS}
    declared = {nb.stem: declared_parameters(nb) for nb in notebooks}
    known = set().union(*declared.values()) if declared else set()
    unknown = sorted(set(params) - known)
    if unknown:
        raise PipelineError(f"unknown parameter(s) {unknown}; the notebooks declare: {sorted(known)}")
    reserved = sorted(set(params) & set(RESERVED))
    if reserved:
        raise PipelineError(f"parameter(s) {reserved} are set by the pipeline itself")
    return {stem: {k: v for k, v in params.items() if k in decl} for stem, decl in declared.items()}


def reuse_models(source: str, out_dir: Path, results_dir: Path) -> list[str]:
    """Link ``build/<source>/{01_data,02_domains,03_training}`` into ``out_dir`` and copy the source's recipe and
    training tables into ``results_dir``, so a profile scores another profile's trained models on other test data
    (the ``confirm`` profile) without training anything; returns the notebook stems it replaces. Missing outputs
    are an error naming the command that makes them."""
    source_dir, source_results = paths.build_dir() / source, paths.results_dir(source)
    missing = [str(source_dir / s) for s in REUSED if not (source_dir / s).is_dir()]
    missing += [str(p) for p in (source_dir / "03_training" / "runs.csv", source_results / "recipe.csv",
                                 source_results / "training.csv") if not p.is_file()]  # fmt: skip
    if missing:
        raise PipelineError(f"models_from={source!r}: {missing} missing; run `make reproduce PROFILE={source}` first")
    results_dir.mkdir(parents=True, exist_ok=True)
    for name in REUSED_TABLES:
        if (source_results / f"{name}.csv").is_file():
            atomic.write_text(results_dir / f"{name}.csv", (source_results / f"{name}.csv").read_text(encoding="utf-8"))
    out_dir.mkdir(parents=True, exist_ok=True)
    for stage in REUSED:
        link = out_dir / stage
        if link.exists() and not link.is_symlink():
            raise PipelineError(f"models_from={source!r}: {link} is a folder of this profile's own; remove it first")
        link.unlink(missing_ok=True)
        link.symlink_to(Path("..") / source / stage, target_is_directory=True)
    return list(REUSED_NOTEBOOKS)


def until_cell(notebook: Path, tag: str | None, out_dir: Path) -> Path:
    """``notebook`` cut after its first cell tagged ``tag`` (a copy in ``out_dir``), or itself when it has none:
    ``--until scores`` stops notebook 04 once every system is scored, the part a lent GPU must do."""
    if not tag:
        return notebook
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    ends = [i for i, cell in enumerate(nb.cells) if tag in cell.get("metadata", {}).get("tags", [])]
    if not ends:
        return notebook
    nb.cells = nb.cells[: ends[0] + 1]
    cut = Path(tempfile.mkdtemp(prefix="hybridir-until-")) / f"{notebook.stem}.until-{tag}.ipynb"  # not in the run
    cut.write_text(nbformat.writes(nb), encoding="utf-8")
    return cut


def run_notebook(notebook: Path, out_dir: Path, params: dict, timeout: int, until: str | None = None) -> Path:
    """Execute one notebook (up to its cell tagged ``until``, if any); on failure keep ``<name>.failed.ipynb`` and
    raise naming notebook and cell."""
    import papermill
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / f"{notebook.stem}.ipynb"
    running = out_dir / f"{notebook.stem}.running.ipynb"
    source = until_cell(notebook, until, out_dir)
    try:
        papermill.execute_notebook(
            str(source), str(running), parameters=params, kernel_name="python3", cwd=str(notebook.parent),
            execution_timeout=timeout, progress_bar=False, log_output=True,
        )  # fmt: skip
    except PapermillExecutionError as exc:
        failed = running.replace(out_dir / f"{notebook.stem}.failed.ipynb")
        raise PipelineError(
            f"{notebook.name} failed in cell {exc.exec_count} ({exc.ename}: {exc.evalue}); executed notebook kept "
            f"at {failed}"
        ) from exc
    except (CellTimeoutError, DeadKernelError) as exc:  # not cell errors: the kernel ran out of time or died
        failed = running.replace(out_dir / f"{notebook.stem}.failed.ipynb") if running.exists() else running
        why = f"a cell ran past the {timeout} s cell timeout (cell_timeout / --timeout)" if isinstance(
            exc, CellTimeoutError) else "its kernel died (out of memory?)"  # fmt: skip
        raise PipelineError(f"{notebook.name} stopped: {why}; executed part kept at {failed}") from exc
    return running.replace(final)


def select_notebooks(notebooks: list[Path], only: list[str] | None) -> list[Path]:
    """The notebooks whose names start with one of ``only`` (all when empty); a prefix matching none is an error,
    so a typo never runs nothing and rewrites the report as if it had."""
    if not only:
        return notebooks
    unknown = [o for o in only if not o or not any(nb.stem.startswith(o) for nb in notebooks)]
    if unknown:
        raise PipelineError(f"--only {unknown} matches no notebook; notebooks: {[nb.stem for nb in notebooks]}")
    return [nb for nb in notebooks if any(nb.stem.startswith(o) for o in only)]


def render_html(executed: list[Path], out_dir: Path, record: dict, results_dir: Path) -> Path:
    """One self-contained HTML page per executed notebook, the index and ``report.html`` (see ``report``)."""
    for nb_path in executed:
        html.notebook_html(nb_path)
    return html.write_report(out_dir, results_dir, record)


def _stream_notebook_output() -> None:
    """papermill logs each cell's output (``log_output``) at INFO: show it, so progress reaches the terminal."""
    import logging

    logger = logging.getLogger("papermill")
    if not any(getattr(h, "hybridir", False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("  | %(message)s"))
        handler.hybridir = True
        logger.addHandler(handler)
    logger.setLevel(logging.INFO)


def run(
    profile: str,
    overrides: dict | None = None,
    only: list[str] | None = None,
    timeout: int | None = None,
    until: str | None = None,
) -> Path:
    """Run the pipeline for ``profile``; returns ``build/<profile>/index.html``. ``until``: stop each notebook after
    its first cell with that tag (:func:`until_cell`).

    ``timeout`` is papermill's per-cell limit in seconds: ``--timeout``, else the profile's ``cell_timeout``, else
    3600. The training grid is one cell, so a profile whose grid takes longer must say so.
    """
    params = {**load_profile(profile), **(overrides or {})}
    notebooks = [paths.notebooks_dir() / f"{name}.ipynb" for name in NOTEBOOKS]
    missing = [str(nb) for nb in notebooks if not nb.is_file()]
    if missing:
        raise PipelineError(f"notebook(s) missing: {missing}")
    per_notebook = split_parameters(params, notebooks)
    try:  # every parameter's type and range, before notebook 01 starts
        parameters.check(params)
    except errors.ParameterError as exc:
        raise PipelineError(f"profile {profile}: {exc}") from exc
    timeout = int(timeout or params.get("cell_timeout") or 3600)
    models_from = params.get("models_from")
    params = {k: v for k, v in params.items() if k not in PIPELINE_KEYS}
    out_dir = paths.build_dir() / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    try:
        with locks.build_lock(out_dir), locks.machine_share():
            return _run_locked(profile, params, models_from, notebooks, per_notebook, out_dir, only, timeout, until)
    except errors.LockError as exc:
        raise PipelineError(str(exc)) from exc


def _run_locked(profile, params, models_from, notebooks, per_notebook, out_dir, only, timeout, until=None) -> Path:
    """The notebooks of one run, with ``out_dir`` held (:func:`locks.build_lock`)."""
    reused = reuse_models(models_from, out_dir, paths.results_dir(profile)) if models_from else []
    selected = select_notebooks(notebooks, only)
    if reused and (clash := [nb.stem for nb in selected if nb.stem in reused and only]):
        raise PipelineError(f"--only {clash}: this profile takes those notebooks' outputs from {models_from!r}")
    selected = [nb for nb in selected if nb.stem not in reused]
    recorded = {**params, "models_from": models_from} if models_from else params
    executed, timings = [], {}
    _stream_notebook_output()
    t0 = time.perf_counter()
    for k, nb in enumerate(selected, 1):
        start = time.perf_counter()
        print(f"[pipeline] {profile}: notebook {k}/{len(selected)} {nb.stem} (elapsed {_clock(start - t0)})",
              file=sys.stderr, flush=True)  # fmt: skip
        given = {"run_dir": str(out_dir), "results_dir": str(paths.results_dir(profile))}
        given = {k: v for k, v in given.items() if k in declared_parameters(nb)}
        executed.append(run_notebook(nb, out_dir, {**per_notebook[nb.stem], **given}, timeout, until=until))
        timings[nb.stem] = {
            "seconds": round(time.perf_counter() - start, 1),
            "parameters": per_notebook[nb.stem],
            **({"until": until} if until else {}),
        }  # this notebook's entry says it was cut
        print(f"[pipeline] {nb.stem} done in {_clock(timings[nb.stem]['seconds'])}", file=sys.stderr, flush=True)
        record = provenance.record_run(
            out_dir, profile, recorded, timings, cell_timeout=timeout, **({"until": until} if until else {})
        )  # kept if a later fails
    return render_html(executed, out_dir, record, paths.results_dir(profile))


def _clock(seconds: float) -> str:
    return time.strftime("%H:%M:%S", time.gmtime(seconds))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="smoke", help="params/<profile>.yaml (smoke, cpu, full)")
    parser.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), help="override")
    parser.add_argument("--only", nargs="+", help="run only notebooks whose name starts with these prefixes")
    parser.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds (default: the "
                        "profile's cell_timeout, else 3600)")  # fmt: skip
    parser.add_argument(
        "--until", help="stop each notebook after its first cell with this tag (scores: the GPU's part)"
    )
    args = parser.parse_args(argv)
    try:
        index = run(args.profile, parse_overrides(args.param), args.only, args.timeout, args.until)
    except PipelineError as exc:
        print(f"pipeline error: {exc}", file=sys.stderr)
        return 1
    print(f"report: {index}")
    return 0
