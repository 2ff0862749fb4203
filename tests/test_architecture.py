"""The package's shape: no import cycle (not even one hidden inside a function), the layout
the architecture document describes, and a package docstring that names every module."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "mmtutorial"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _runtime_nodes(tree: ast.AST):
    """Every node of ``tree`` but those under ``if TYPE_CHECKING:`` (imports for annotations
    only, never executed)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and getattr(node.test, "id", None) == "TYPE_CHECKING":
            yield from (n for child in node.orelse for n in [child, *_runtime_nodes(child)])
            continue
        yield node
        yield from _runtime_nodes(node)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports, at any depth of its code (a function-level
    import is still a dependency: it only hides a cycle until the function runs)."""
    modules = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        found = set()
        for node in _runtime_nodes(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                candidates = [f"{target}.{alias.name}" for alias in node.names] + [target]
                found.update(next(([c] for c in candidates if c in modules), []))
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names if alias.name in modules)
        found.discard(name)
        graph[name] = found
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node):
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
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in graph:
        if node not in index:
            visit(node)
    return found


def test_the_cycle_finder_finds_a_cycle_hidden_in_a_function():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_package_has_no_import_cycle():
    assert cycles(import_graph()) == []


def test_the_material_does_not_import_the_course_machinery():
    """What a learner studies (attention, fusion, encoders, data, models) stands on its own:
    it may use training infrastructure and shared utilities, never the course's notebook
    plumbing, classroom, site or experiments."""
    graph = import_graph()
    material = (
        "mmtutorial.attention",
        "mmtutorial.fusion",
        "mmtutorial.encoders",
        "mmtutorial.data",
        "mmtutorial.models",
    )
    machinery = ("mmtutorial.course", "mmtutorial.experiments")
    for module, imports in graph.items():
        if module.startswith(material):
            assert not [m for m in imports if m.startswith(machinery)], module
    for module, imports in graph.items():  # the data layer needs no training loop
        if module.startswith("mmtutorial.data"):
            assert not [m for m in imports if m.startswith(("mmtutorial.training", "mmtutorial.models"))], module


def test_the_package_docstring_names_every_module_and_package():
    documented = ast.get_docstring(ast.parse((PACKAGE / "__init__.py").read_text()))
    top_level = sorted(
        p.stem if p.is_file() else p.name
        for p in PACKAGE.iterdir()
        if (p.suffix == ".py" and p.stem != "__init__") or (p / "__init__.py").exists()
    )
    missing = [name for name in top_level if f"{name}" not in documented]
    assert not missing, f"mmtutorial/__init__.py does not describe {missing}"


def test_the_architecture_document_exists_and_the_code_cites_no_missing_design_file():
    assert (ROOT / "ARCHITECTURE.md").exists()
    sources = [p for folder in ("mmtutorial", "tests", "benchmarks", "data") for p in (ROOT / folder).rglob("*.py")]
    cited = [p for p in sources if p.name != Path(__file__).name and "DESIGN.md" in p.read_text()]
    assert not cited, f"cite ARCHITECTURE.md instead of DESIGN.md: {cited}"


def test_a_sweep_points_process_does_not_import_torch():
    """Each sweep point is a process that only drives a kernel; torch (about 2 s of import on
    2 cores) belongs in the kernel. ``mmtutorial.training`` loads its names on first use."""
    import subprocess
    import sys

    script = "import sys, mmtutorial.experiments.point; print(sorted({'torch', 'numpy'} & set(sys.modules)))"
    found = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True, cwd=ROOT)
    assert found.stdout.strip() == "[]"


def test_the_training_packages_lazy_names_all_resolve():
    import mmtutorial.training as training

    for name in training.__all__:
        assert getattr(training, name).__name__ == name
