"""The shape of the house: one direction of flow, faces on top, a short package root, and no
task switches outside the task definitions.

The import graph is read from the source: every `import` and `from ... import`, at module
level, inside functions and under `if TYPE_CHECKING:` (a type named in an annotation is a
dependency as much as a call is).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "collapselab"
TASK_NAMES = {"lm", "qa", "mcq"}
# The faces: what a person or another program touches. Nothing below them imports one.
FACES = {"api", "cli", "commands", "report", "dashboard", "serve", "sweep", "manual"}
# The package root holds the faces' entry points, the engine, the checker, the reader of
# finished runs and the ground floor (errors, records, textio, seeds, cache, batching).
ROOT_MODULES_AT_MOST = 12
# Where a task's name may be compared: the task definitions themselves.
TASK_DEFINITIONS = ("collapselab.tasks",)


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (annotations included)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(anchor + ([base] if base else []))
                for a in node.names:
                    sub = f"{base}.{a.name}"
                    targets.add(sub if sub in modules else base)
        graph[name] = {t for t in targets if t in modules and t != name}
    return graph


def room(module: str) -> str:
    """The folder (or root module) a module belongs to: collapselab.metrics.qa -> metrics."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "collapselab"


def package_graph(graph: dict[str, set[str]]) -> dict[str, set[str]]:
    """room -> the rooms it imports. The package's own `__init__` (its public face, which
    hands on the API's names) is left out: it is the door, not a room."""
    out: dict[str, set[str]] = {}
    for module, targets in graph.items():
        if module == "collapselab":
            continue
        out.setdefault(room(module), set()).update(room(t) for t in targets if t != "collapselab" and room(t) != room(module))
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10_000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _upward_to_faces(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{m} -> {t}" for m, targets in graph.items() for t in targets
        if m != "collapselab" and room(m) not in FACES and room(t) in FACES
    )


def test_no_circle_between_files():
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    cycles = _cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_circle_between_packages():
    cycles = _cycles(package_graph(import_graph()))
    assert not cycles, "package circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_lower_floor_imports_a_face():
    offenders = _upward_to_faces(import_graph())
    assert not offenders, "imports up to a face: " + "; ".join(offenders)


def test_the_package_root_is_short():
    root = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert len(root) <= ROOT_MODULES_AT_MOST, f"{len(root)} modules at the package root: {root}"


def test_importing_the_refinery_does_not_import_the_engine():
    code = "import sys, collapselab.refinery; print('collapselab.engine' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "False"


def _task_name_comparisons(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, ast.Compare):
            continue
        sides = [node.left, *node.comparators]
        names = {s.value for s in sides if isinstance(s, ast.Constant) and isinstance(s.value, str)}
        for s in sides:  # `x in ("lm", "qa")`
            if isinstance(s, ast.Tuple | ast.List | ast.Set):
                names |= {e.value for e in s.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)}
        mentions_task = any("task" in ast.unparse(s).split(".")[-1] for s in sides if isinstance(s, ast.Attribute | ast.Name))
        if names & TASK_NAMES or mentions_task:
            found.append(f"{path.relative_to(SRC)}:{node.lineno}: {ast.unparse(node)}")
    return found


def test_no_task_name_is_compared_outside_the_task_definitions():
    found = []
    for name, path in sorted(_modules().items()):
        if not any(name == d or name.startswith(d + ".") for d in TASK_DEFINITIONS):
            found += _task_name_comparisons(path)
    assert not found, "\n".join(found)


def test_the_checks_themselves_catch_what_they_look_for(tmp_path):
    # The walkers must see a circle, an upward import and a task switch when there is one
    # (else the tests above would pass on anything).
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    files = {"collapselab.metrics.qa": {"collapselab.tasks.qa"}, "collapselab.tasks.qa": {"collapselab.metrics"},
             "collapselab.metrics": set(), "collapselab.engine": {"collapselab.report.data"}, "collapselab.report.data": set()}
    assert _cycles(package_graph(files)) == [["metrics", "tasks"]]  # no circle of files, one of packages
    assert not _cycles(files)
    assert _upward_to_faces(files) == ["collapselab.engine -> collapselab.report.data"]
    bad = tmp_path / "bad.py"
    bad.write_text("def f(cfg):\n    if cfg.experiment.task == 'lm':\n        return 1\n    return kind in ('qa', 'x')\n")
    src = SRC
    try:
        globals()["SRC"] = tmp_path
        assert len(_task_name_comparisons(bad)) == 2
    finally:
        globals()["SRC"] = src
    typed = tmp_path / "typed.py"
    typed.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from collapselab.engine import Lab\n")
    tree = ast.parse(typed.read_text())
    assert any(isinstance(n, ast.ImportFrom) and n.module == "collapselab.engine" for n in ast.walk(tree))  # annotations are read
