"""The package layout follows the data flow: lower layers never import higher ones, and no
module imports one that imports it back (docs/decisions.md, "Package layout")."""

import ast
import re
from pathlib import Path

import sparsedp

LAYERS = ["data", "models", "pruning", "training", "search", "specs", "execution",
          "planning", "repeats", "probing", "store", "analysis", "plots", "report", "api",
          "cli"]
RANK: dict[str, float] = {name: i for i, name in enumerate(LAYERS)}
for sibling in ("repeats", "probing"):  # planning, repeats and probing sit side by side
    RANK[sibling] = RANK["planning"]
RANK["report"] = RANK["plots"] + 0.5  # plots and report are siblings above analysis
ROOT = Path(sparsedp.__file__).parent
MAX_LINES = 500  # the layout issue's guide: no module over about 500 lines


def test_no_layer_imports_a_higher_one():
    violations = []
    for path in ROOT.rglob("*.py"):
        layer = path.relative_to(ROOT).parts[0]
        if layer not in RANK:
            continue
        for other in re.findall(r"(?:from|import) sparsedp\.(\w+)", path.read_text()):
            if other in RANK and RANK[other] > RANK[layer]:
                violations.append(f"{path.relative_to(ROOT)} imports sparsedp.{other}")
    assert violations == []
    assert {p.name for p in ROOT.iterdir() if p.is_dir() and p.name in RANK} == set(LAYERS)
    assert {p.name for p in ROOT.iterdir() if p.is_dir() and p.name != "__pycache__"} \
        <= set(LAYERS)


def _module_name(path: Path) -> str:
    parts = ("sparsedp", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _import_graph() -> dict[str, set[str]]:
    """Module → the sparsedp modules it imports anywhere (top level, functions, typing)."""
    paths = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in paths}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[: len(package.split(".")) - node.level
                                                       + 1] + ([base] if base else []))
                targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in paths else base
                           for a in node.names]
            for target in targets:
                if target in paths and target != name:
                    graph[name].add(target)
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_import_circles():
    graph = _import_graph()
    assert "sparsedp.execution.runner" in graph["sparsedp.repeats.run"]  # the graph is read
    assert _cycles(graph) == []


def test_the_circle_finder_finds_a_circle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_module_over_the_size_guide():
    long = {str(p.relative_to(ROOT)): n for p in ROOT.rglob("*.py")
            if (n := len(p.read_text().splitlines())) > MAX_LINES}
    assert long == {}
