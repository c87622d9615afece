"""The package's shape, read with the import walk that keys the cache (cache.import_closure): no
import cycles, only the pipeline imports the training loop, optvis stands alone, no private names
cross modules, and every section package has the same roles."""

import ast
from pathlib import Path

from reportgen import cache

PACKAGE = Path(cache.__file__).resolve().parent
MODULES = sorted(".".join(("reportgen", *p.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
                 for p in PACKAGE.rglob("*.py"))


def _graph() -> dict[str, set[str]]:
    """module -> the package's modules it imports directly (its containing packages left out)."""
    graph = {}
    for module in MODULES:
        found = set(cache.direct_imports(module, cache.module_file(module), "reportgen"))
        graph[module] = {t for t in found if t != module and t in MODULES and not module.startswith(t + ".")}
    return graph


def test_no_module_imports_one_that_imports_it_back() -> None:
    graph = _graph()
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
    importers = sorted(m for m, targets in _graph().items() if "reportgen.nets.train" in targets)
    assert importers == ["reportgen.pipeline"]


def test_optvis_imports_nothing_from_the_rest_of_the_package() -> None:
    closure = {m for m in MODULES if m.startswith("reportgen.optvis")
               for m in cache.import_closure(m)}
    assert closure <= {"reportgen"} | {m for m in MODULES if m.startswith("reportgen.optvis")}, closure


def test_no_module_imports_a_private_name_of_another() -> None:
    crossing = []
    for module in MODULES:
        tree = ast.parse(cache.module_file(module).read_bytes())
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith("reportgen")):
                crossing += [f"{module}: {alias.name}" for alias in node.names
                             if alias.name.startswith("_") and not alias.name.startswith("__")]
    assert crossing == []


def test_every_section_has_the_same_roles() -> None:
    sections = sorted(p for p in (PACKAGE / "sections").iterdir() if (p / "__init__.py").is_file())
    assert [p.name for p in sections] == ["classification", "clusters", "preferred", "responses"]
    for folder in sections:
        assert {"compute.py", "draw.py", "present.py", "stages.py"} <= {p.name for p in folder.glob("*.py")}, folder
