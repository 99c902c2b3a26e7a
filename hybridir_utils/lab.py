"""``make lab``: open the five notebooks in JupyterLab with a profile's parameters (``cpu`` by default).

    python -m hybridir_utils.lab [--profile cpu] [-p key value ...] [--no-open]

The notebooks' own defaults are examples, lighter or heavier than any profile; pressing "Run all" on them would
not redo what ``make reproduce`` did. So, as papermill does for a run, the profile's values (and ``run_dir`` =
``build/<profile>``, ``results_dir`` = ``results/<profile>``) are injected into copies under
``build/<profile>/lab/``, below each ``parameters`` cell, and JupyterLab opens that folder. A copy is rewritten
only when its source notebook is newer, so edits made in the lab survive a second ``make lab``. The copies are
not jupytext-paired: lasting changes belong in ``notebooks/*.py``.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hybridir_utils import config, io, pipeline


def prepare(profile: str = "cpu", overrides: dict | None = None) -> Path:
    """Write the parameterised copies (see the module docstring) and return their folder."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    params = {**pipeline.load_profile(profile), **(overrides or {})}
    notebooks = [config.notebooks_dir() / f"{name}.ipynb" for name in pipeline.NOTEBOOKS]
    per_notebook = pipeline.split_parameters(params, notebooks)
    run_dir, lab_dir = config.build_dir() / profile, config.build_dir() / profile / "lab"
    given = {"run_dir": str(run_dir), "results_dir": str(config.results_dir(profile))}
    for nb_path in notebooks:
        target = lab_dir / nb_path.name
        if target.is_file() and target.stat().st_mtime >= nb_path.stat().st_mtime and not overrides:
            continue  # the lab copy may hold the user's edits
        declared = pipeline.declared_parameters(nb_path)
        values = {**per_notebook[nb_path.stem], **{k: v for k, v in given.items() if k in declared}}
        nb = parameterize_notebook(load_notebook_node(str(nb_path)), values, comment=f"Parameters of `{profile}`")
        nb.metadata.pop("jupytext", None)  # a copy, not a pair: jupytext would otherwise write a .py beside it
        io.write_text(target, nbformat.writes(nb))
    return lab_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="params/<profile>.yaml")
    parser.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), help="override")
    parser.add_argument("--no-open", action="store_true", help="only write the notebooks, do not start JupyterLab")
    args = parser.parse_args(argv)
    try:
        folder = prepare(args.profile, pipeline.parse_overrides(args.param))
    except pipeline.PipelineError as exc:
        print(f"lab error: {exc}", file=sys.stderr)
        return 1
    print(f"notebooks with the {args.profile} parameters: {folder}")
    if args.no_open:
        return 0
    jupyter = Path(sys.executable).with_name("jupyter")
    os.execv(str(jupyter), [str(jupyter), "lab", str(folder)])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
