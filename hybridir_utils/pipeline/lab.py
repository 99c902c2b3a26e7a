"""``make lab``: open the five notebooks in JupyterLab with a profile's parameters (``cpu`` by default).

    python -m hybridir_utils.pipeline.lab [--profile cpu] [-p key value ...] [--no-open] [--no-browser]
                                          [--ip IP] [--port N]

The notebooks' own defaults are examples, lighter or heavier than any profile; pressing "Run all" on them would
not redo what ``make reproduce`` did. So, as papermill does for a run, the profile's values (and ``run_dir`` =
``build/<profile>``, ``results_dir`` = ``results/<profile>``) are injected into copies under
``build/<profile>/lab/``, below each ``parameters`` cell, and JupyterLab opens that folder. A copy is rewritten
only when its source notebook is newer, so edits made in the lab survive a second ``make lab``. The copies are
not jupytext-paired: lasting changes belong in ``notebooks/*.py``.

JupyterLab refuses to start as root unless told (containers, cloud notebooks and these machines run as root), and
on a machine without a display there is no browser to open: :func:`lab_command` adds ``--allow-root`` and
``--no-browser`` there, so the server starts and prints its URL (with its token) to open from elsewhere; ``--ip``
and ``--port`` serve a remote machine.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hybridir_utils import errors
from hybridir_utils.pipeline import runner
from hybridir_utils.utils import atomic, paths


def prepare(profile: str = "cpu", overrides: dict | None = None) -> Path:
    """Write the parameterised copies (see the module docstring) and return their folder."""
    import nbformat
    from papermill.iorw import load_notebook_node
    from papermill.parameterize import parameterize_notebook

    params = {**runner.load_profile(profile), **(overrides or {})}
    notebooks = [paths.notebooks_dir() / f"{name}.ipynb" for name in runner.NOTEBOOKS]
    per_notebook = runner.split_parameters(params, notebooks)
    run_dir, lab_dir = paths.build_dir() / profile, paths.build_dir() / profile / "lab"
    given = {"run_dir": str(run_dir), "results_dir": str(paths.results_dir(profile))}
    for nb_path in notebooks:
        target = lab_dir / nb_path.name
        if target.is_file() and target.stat().st_mtime >= nb_path.stat().st_mtime and not overrides:
            continue  # the lab copy may hold the user's edits
        declared = runner.declared_parameters(nb_path)
        values = {**per_notebook[nb_path.stem], **{k: v for k, v in given.items() if k in declared}}
        nb = parameterize_notebook(load_notebook_node(str(nb_path)), values, comment=f"Parameters of `{profile}`")
        nb.metadata.pop("jupytext", None)  # a copy, not a pair: jupytext would otherwise write a .py beside it
        atomic.write_text(target, nbformat.writes(nb))
    return lab_dir


def lab_command(folder: Path, ip: str = "127.0.0.1", port: int = 8888, browser: bool | None = None) -> list[str]:
    """The ``jupyter lab`` command line for ``folder``: ``--allow-root`` when run as root, ``--no-browser`` when
    asked or when there is no display to open one on (``browser=None``: decide from ``$DISPLAY``)."""
    jupyter = Path(sys.executable).with_name("jupyter")
    argv = [str(jupyter), "lab", str(folder), f"--ServerApp.ip={ip}", f"--ServerApp.port={port}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        argv.append("--allow-root")
    headless = not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or sys.platform == "darwin")
    if browser is False or (browser is None and headless):
        argv.append("--no-browser")
    return argv


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--profile", default="cpu", help="params/<profile>.yaml")
    parser.add_argument("-p", "--param", nargs=2, action="append", metavar=("KEY", "VALUE"), help="override")
    parser.add_argument("--no-open", action="store_true", help="only write the notebooks, do not start JupyterLab")
    parser.add_argument("--no-browser", action="store_true", help="start the server only and print its URL")
    parser.add_argument("--ip", default="127.0.0.1", help="address to serve on (0.0.0.0: reachable from elsewhere)")
    parser.add_argument("--port", type=int, default=8888)
    args = parser.parse_args(argv)
    try:
        folder = prepare(args.profile, runner.parse_overrides(args.param))
    except errors.PipelineError as exc:
        print(f"lab error: {exc}", file=sys.stderr)
        return 1
    print(f"notebooks with the {args.profile} parameters: {folder}")
    if args.no_open:
        return 0
    command = lab_command(folder, args.ip, args.port, False if args.no_browser else None)
    print("starting:", " ".join(command), "(the server prints the URL to open, with its token)")
    os.execv(command[0], command)
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
