"""One run per build folder; a second heavy job on the machine is told and given half the cores (issue 25)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from hybridir_utils import errors
from hybridir_utils.pipeline import runner
from hybridir_utils.utils import locks

HOLD = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from hybridir_utils.utils import locks
    what = locks.build_lock(Path(sys.argv[2]), "holder-command") if sys.argv[1] == "build" else locks.machine_share(
        "holder-command")
    with what:
        print("held", flush=True)
        time.sleep(120)
""")


@pytest.fixture
def holder(tmp_path, monkeypatch):
    """Start a process that holds a lock ("build", folder) or ("machine", "-"), and stop it afterwards."""
    monkeypatch.setenv("HYBRIDIR_MACHINE_LOCK", str(tmp_path / "machine.lock"))
    procs = []

    def start(kind: str, folder: Path | str = "-") -> subprocess.Popen:
        env = {**os.environ, "PYTHONPATH": str(Path(locks.__file__).parents[2])}
        proc = subprocess.Popen([sys.executable, "-c", HOLD, kind, str(folder)], stdout=subprocess.PIPE, text=True,
                                env=env)  # fmt: skip
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def _fake_notebooks(monkeypatch, seen):
    monkeypatch.setattr(runner, "run_notebook", lambda nb, out, params, timeout, until=None: seen.append(
        os.environ.get("OMP_NUM_THREADS")))  # fmt: skip
    monkeypatch.setattr(runner, "render_html", lambda executed, out, record, results: out / "index.html")


def test_a_second_run_on_one_build_folder_is_refused_naming_the_first(tmp_path, monkeypatch, holder):
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    seen = []
    _fake_notebooks(monkeypatch, seen)
    first = holder("build", tmp_path / "build" / "smoke")
    with pytest.raises(errors.PipelineError, match=rf"build/smoke is in use by another pipeline run \(pid "
                       rf"{first.pid}, started .*, command 'holder-command'\)"):  # fmt: skip
        runner.run("smoke", only=["05"])
    assert seen == []  # no notebook ran
    runner.run("sampling", only=["05"])  # another profile's folder is free
    assert len(seen) == 1


def test_a_lock_left_by_a_killed_run_is_taken_over_with_a_message(tmp_path, capsys, holder):
    folder = tmp_path / "build" / "smoke"
    first = holder("build", folder)
    first.kill()
    first.wait()
    with locks.build_lock(folder, "second"):
        pass
    assert f"taken over from a run no longer running (pid {first.pid}" in capsys.readouterr().err
    assert not (folder / ".pipeline.lock.json").exists()  # the holder's record goes with the lock


def test_a_second_heavy_job_is_told_and_gets_half_the_cores(tmp_path, monkeypatch, capsys, holder):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    with locks.machine_share(cores=2) as threads:
        assert threads is None and "OMP_NUM_THREADS" not in os.environ  # alone: every core
    first = holder("machine")
    with locks.machine_share(cores=4) as threads:
        assert threads == 2 and os.environ["OMP_NUM_THREADS"] == "2"
    assert "OMP_NUM_THREADS" not in os.environ
    err = capsys.readouterr().err
    assert f"another heavy hybridir job is running on this machine (pid {first.pid}" in err and "2 thread(s)" in err


def test_the_notebook_kernels_of_a_second_job_get_the_thread_limit(tmp_path, monkeypatch, holder):
    monkeypatch.setenv("HYBRIDIR_BUILD_DIR", str(tmp_path / "build"))
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    seen = []
    _fake_notebooks(monkeypatch, seen)
    runner.run("smoke", only=["05"])
    holder("machine")
    runner.run("smoke", only=["05"])
    assert seen[0] is None and seen[1] == str(max(1, (os.cpu_count() or 2) // 2))
