"""The package's layering (.importlinter) holds: no upward import, no import cycle (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_imports_keep_the_layers_and_make_no_cycle():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; "
         "sys.exit(lint_imports_command())", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert "No module named 'importlinter'" not in result.stderr, "install the test extra: pip install -e '.[test]'"
    report = result.stdout[result.stdout.find("Broken contracts"):] if "Broken contracts" in result.stdout else ""
    assert result.returncode == 0, (
        "an import breaks the layering in .importlinter (apps > loop > distributed > components > judges > "
        "tasks > engines ... > records > config > errors; see docs/ARCHITECTURE.md). Import downward only, "
        "or move the shared piece into a lower module:\n" + (report or result.stdout + result.stderr)
    )
    assert "2 kept, 0 broken" in result.stdout, result.stdout


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each an import cycle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in graph[module]:
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_no_module_is_part_of_an_import_cycle():
    # acyclic_siblings (above) compares siblings only: a package's __init__ importing a submodule that imports
    # the package back is a cycle it does not see. Here every module-level and function-level import counts.
    import grimp

    graph = grimp.build_graph("autodidact", exclude_type_checking_imports=True)
    imports = {m: graph.find_modules_directly_imported_by(m) for m in graph.modules}
    assert len(imports) > 100, f"only {len(imports)} modules found: is autodidact installed from src/?"
    assert _cycles(imports) == [], "import cycles (move the shared names into a module both can import):"


def test_the_cycle_finder_finds_a_cycle_through_a_package_init():
    graph = {"p": {"p.a"}, "p.a": {"p"}, "p.b": {"p.a"}, "q": set()}
    assert _cycles(graph) == [["p", "p.a"]]
