"""The package's import graph: no module of ``dropkit`` imports another that imports it back.

Every ``import`` statement counts, also those inside functions (a lazy import still ties two
modules together), read with ``ast`` from the source, so a circle fails here before it can
bite at run time. The stages of a run only import forward: profile -> spec, runner -> spec,
sweep -> runner -> spec.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "dropkit"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every module of ``package`` (``__init__`` = the package)."""
    modules = {}
    for path in sorted(package.rglob("*.py")):
        parts = path.relative_to(package.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _imported(node: ast.Import | ast.ImportFrom, module: str, is_package: bool,
              modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that one import statement of ``module`` names."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        base = node.module or ""
        if node.level:  # relative: from the package that holds ``module``
            anchor = module.split(".")
            anchor = anchor if is_package else anchor[:-1]
            anchor = anchor[:len(anchor) - node.level + 1]
            base = ".".join(anchor + ([base] if base else []))
        # ``from pkg import name`` imports the submodule pkg.name when there is one, else pkg.
        names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                 for alias in node.names]
    found = set()
    for name in names:
        while name and name not in modules:  # ``import a.b.c`` of a function-less name: its module
            name = name.rpartition(".")[0]
        if name and name != module:
            found.add(name)
    return found


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module -> the package's modules it imports anywhere in its source (functions included)."""
    modules = module_files(package)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        graph[module] = set().union(*(
            _imported(node, module, is_package, modules)
            for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom))
        ))
    return graph


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One list ``[a, b, ..., a]`` per circle found by a depth-first walk (empty: none)."""
    cycles, state = [], {}  # state: 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    return cycles


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    """Every module ``start`` imports, directly or through others."""
    seen, todo = set(), [start]
    while todo:
        for target in graph[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_module_of_dropkit_imports_another_that_imports_it_back():
    graph = import_graph(PACKAGE)
    assert {"dropkit.spec", "dropkit.runner", "dropkit.sweep", "dropkit.profiles"} <= set(graph)
    cycles = import_cycles(graph)
    assert not cycles, "import circles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_check_finds_a_circle_made_of_lazy_imports(tmp_path):
    """The old ``experiment`` <-> ``profiles`` circle: both imports sat inside functions."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "experiment.py").write_text(
        "from pkg.store import ResultStore\n\ndef run_experiment():\n"
        "    from pkg.profiles import experiment_specs\n")
    (package / "profiles.py").write_text("def experiment_specs():\n    from pkg.experiment import RunSpec\n")
    (package / "store.py").write_text("import numpy\n")
    (package / "sub" / "__init__.py").write_text("from .leaf import x\n")
    (package / "sub" / "leaf.py").write_text("from .. import store\n")
    graph = import_graph(package)
    assert graph["pkg.experiment"] == {"pkg.store", "pkg.profiles"}
    assert graph["pkg.sub"] == {"pkg.sub.leaf"} and graph["pkg.sub.leaf"] == {"pkg.store"}
    assert import_cycles(graph) == [["pkg.experiment", "pkg.profiles", "pkg.experiment"]]


def test_the_stages_of_a_run_import_forward_only():
    graph = import_graph(PACKAGE)
    assert graph["dropkit.spec"] <= {"dropkit.data", "dropkit.models"}  # their lists of names
    assert "dropkit.runner" not in reachable(graph, "dropkit.profiles")
    assert "dropkit.sweep" not in reachable(graph, "dropkit.runner")
    for stage in ("dropkit.spec", "dropkit.runner", "dropkit.sweep", "dropkit.profiles"):
        assert "dropkit.chapter" not in reachable(graph, stage), stage


@pytest.mark.parametrize("order", ["sorted", "reversed"])
def test_every_module_imports_in_any_order(order):
    """A fresh interpreter imports every module, in name order and in reverse."""
    names = sorted(module_files(PACKAGE))
    if order == "reversed":
        names.reverse()
    code = "import importlib\nfor name in %r:\n    importlib.import_module(name)\n" % names
    done = subprocess.run([sys.executable, "-c", code], cwd=PACKAGE.parent,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
