"""One pipeline run per build folder, and a word (and fewer threads) when another heavy job shares the machine.

Two runs on one ``build/<profile>/`` would train into the same run folders and overwrite each other's tables:
:func:`build_lock` refuses the second, naming the holder (pid, start time, command, from the holder's sidecar
file). The lock is ``filelock``'s OS lock, which dies with its process, so a lock left by a killed run is taken
over, with a message naming the dead holder.

Two torch jobs on 2 cores thrash: a training step beside a second job takes several times as long as alone (each
asks for every core; measured: docs/reliability.md). :func:`machine_share` holds a machine-wide lock while a
pipeline runs; a second job finds it taken, says so at start, and runs its notebooks with half the cores
(``OMP_NUM_THREADS``, read by torch in the notebook kernels), so the two share the cores instead of fighting over
them. It still runs slower: run heavy jobs
one after another.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from hybridir_utils.errors import LockError
from hybridir_utils.utils import atomic, paths


def _holder(sidecar: Path) -> dict:
    try:
        return json.loads(sidecar.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _describe(holder: dict) -> str:
    if not holder:
        return "a process that left no record"
    return f"pid {holder.get('pid')}, started {holder.get('started')}, command {holder.get('command')!r}"


def _alive(pid) -> bool:
    try:
        os.kill(int(pid), 0)
    except (OSError, TypeError, ValueError):
        return False
    return True


@contextlib.contextmanager
def _held(path: Path, command: str) -> Iterator[dict | None]:
    """Try ``path``'s lock without waiting: yields None while this process holds it (recorded beside it), else the
    holder's record (empty when it left none)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    lock, sidecar = FileLock(str(path)), path.with_name(path.name + ".json")
    try:
        lock.acquire(timeout=0)
    except Timeout:
        yield _holder(sidecar)
        return
    try:
        old = _holder(sidecar)
        if old and old.get("pid") != os.getpid() and not _alive(old.get("pid")):
            print(f"[lock] {path}: taken over from a run no longer running ({_describe(old)})", file=sys.stderr)
        me = {"pid": os.getpid(), "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": command}
        atomic.write_json(sidecar, me)
        yield None
    finally:
        sidecar.unlink(missing_ok=True)
        lock.release()


@contextlib.contextmanager
def build_lock(out_dir: Path, command: str | None = None) -> Iterator[None]:
    """Hold ``out_dir``'s lock for a whole pipeline run; a second run raises :class:`LockError` naming the first."""
    path = Path(out_dir) / ".pipeline.lock"
    with _held(path, command or " ".join(sys.argv)) as holder:
        if holder is not None:
            raise LockError(f"{out_dir} is in use by another pipeline run ({_describe(holder)}); wait for it to end "
                            "or stop it, then run again")  # fmt: skip
        yield


@contextlib.contextmanager
def machine_share(command: str | None = None, cores: int | None = None) -> Iterator[int | None]:
    """Hold the machine-wide heavy-job lock; yields None when alone (every core), else the thread count this job
    was given (half the cores, at least 1; set as ``OMP_NUM_THREADS`` for the notebook kernels) after saying so."""
    path = paths.machine_lock_path()
    with _held(path, command or " ".join(sys.argv)) as holder:
        if holder is None:
            yield None
            return
        threads = max(1, (cores or os.cpu_count() or 2) // 2)
        print(f"[machine] another heavy hybridir job is running on this machine ({_describe(holder)}): two torch "
              f"jobs on {cores or os.cpu_count()} cores thrash (a training step ~6x slower), so this one runs its "
              f"notebooks with {threads} thread(s); it will still be slower than alone", file=sys.stderr)  # fmt: skip
        before = os.environ.get("OMP_NUM_THREADS")
        os.environ["OMP_NUM_THREADS"] = str(threads)
        try:
            yield threads
        finally:
            if before is None:
                os.environ.pop("OMP_NUM_THREADS", None)
            else:
                os.environ["OMP_NUM_THREADS"] = before
