"""No import cycles, between packages or between files: every import counts, the ones at
the top of a module, the ones inside functions (lazy), and the ones only a type checker
reads (`if TYPE_CHECKING:`), since each is an arrow in the design.

The layers then read one way: sources -> frames -> stats / pushdown -> loading ->
canary / incident -> report / service / observability -> commands -> cli, with
`wsanalysis/__init__.py` (the public face) on top and nothing importing it.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "wsanalysis"


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The package's modules that `name` imports anywhere in its text (`import x.y`,
    `from x import y` where y may be a module, relative imports, importlib with a literal)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join([*package[: len(package) - node.level + 1], *filter(None, [base])])
            for alias in node.names:
                full = f"{base}.{alias.name}"
                targets.add(full if full in known else base)
        elif (
            isinstance(node, ast.Call)
            and ast.unparse(node.func).endswith("import_module")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            targets.add(str(node.args[0].value))
    found = set()
    for target in targets:
        if not target.startswith("wsanalysis"):
            continue
        while target not in known and "." in target:
            target = target.rsplit(".", 1)[0]
        if target != name:
            found.add(target)
    return found


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(edges):
        if root in index:
            continue
        work = [(root, iter(sorted(edges[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def package_of(module: str) -> str:
    return ".".join(module.split(".")[:2])


def test_no_two_files_import_each_other_even_lazily():
    assert cycles(graph()) == []


def test_no_two_packages_import_each_other_even_lazily():
    edges: dict[str, set[str]] = defaultdict(set)
    for module, targets in graph().items():
        edges[package_of(module)].update(
            package_of(t) for t in targets if package_of(t) != package_of(module)
        )
    assert cycles(dict(edges)) == []


def test_the_walk_sees_lazy_and_type_only_imports():
    """The walk itself: a function-level import and a TYPE_CHECKING one are edges."""
    known = modules()
    edges = imports("wsanalysis.canary.verdict", known["wsanalysis.canary.verdict"], known)
    assert "wsanalysis.display" in edges  # imported inside the methods that render
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
