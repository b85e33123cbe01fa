"""The shape of the house: one direction of flow, and no task switches in the loop.

The import graph is read from the source (every `import` and `from ... import`, at module
level and inside functions; imports under `if TYPE_CHECKING:` are annotations, not
imports, and are left out).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
PACKAGE = SRC / "collapselab"
TASK_NAMES = {"lm", "qa", "mcq"}
# The loop and its stages: none of them imports the engine or asks for a task's name.
STAGES = ["engine", "training", "generation", "lab", "refinery", "store"]


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), str(path))
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
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


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
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


def _is_stage(module: str) -> bool:
    return any(module == f"collapselab.{s}" or module.startswith(f"collapselab.{s}.") for s in STAGES)


def test_the_import_graph_has_no_circle():
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    cycles = _cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_stage_imports_the_engine():
    graph = import_graph()
    offenders = sorted(m for m, targets in graph.items() if "collapselab.engine" in targets and _is_stage(m) and m != "collapselab.engine")
    assert not offenders


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


def test_the_loop_and_its_stages_never_compare_a_task_name():
    found = []
    for name, path in sorted(_modules().items()):
        if _is_stage(name):
            found += _task_name_comparisons(path)
    assert not found, "\n".join(found)


def test_the_checks_themselves_catch_what_they_look_for(tmp_path):
    # The walkers must see a circle and a task switch when there is one (else the tests
    # above would pass on anything).
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    bad = tmp_path / "bad.py"
    bad.write_text("def f(cfg):\n    if cfg.experiment.task == 'lm':\n        return 1\n    return kind in ('qa', 'x')\n")
    src = SRC
    try:
        globals()["SRC"] = tmp_path
        assert len(_task_name_comparisons(bad)) == 2
    finally:
        globals()["SRC"] = src
