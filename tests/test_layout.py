"""The package's shape: no import cycles, and only the build's train stage imports train.py."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "reportgen"


def _imports() -> dict[str, set[str]]:
    """module -> reportgen modules it imports, TYPE_CHECKING blocks and function bodies included.

    `from pkg import name` counts as importing the module `pkg.name` when there is one (a submodule),
    else the module `pkg` itself."""
    files = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts).removesuffix(".__init__"): p
             for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ImportFrom):
                continue
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                source = f"{base}.{node.module}" if node.module else base
            else:
                source = node.module or ""
            if not source.startswith("reportgen"):
                continue
            for alias in node.names:
                found.add(f"{source}.{alias.name}" if f"{source}.{alias.name}" in files else source)
        graph[module] = {t for t in found if t != module and t in files}
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _imports()
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt in graph:
                visit(nxt, stack + [nxt])

    for module in graph:
        visit(module, [module])
    assert not cycles, cycles[:3]


def test_only_the_pipeline_imports_the_training_loop() -> None:
    importers = sorted(m for m, targets in _imports().items() if "reportgen.train" in targets)
    assert importers == ["reportgen.pipeline"]
