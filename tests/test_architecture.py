"""The house keeps its shape: the one-stop rules import neither a database library nor
SpiffWorkflow, modules depend on each other in one direction (no cycle), and lower layers
never import higher ones. Read from the source, so a change that breaks it fails here."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "onestop"

#: Layers, lowest first: a module may import its own layer and the ones below.
LAYERS = [
    ("base", ["errors", "clock", "duration", "datafile", "allotment", "inputs", "events",
              "model", "steps", "timevalue", "calendar", "regimes", "catalog"]),
    ("rules", ["rules", "sla"]),
    ("adapters", ["bpmn", "store", "library"]),
    ("engine", ["engine"]),
    ("tools", ["modeling", "demo", "cli"]),
]
#: Modules outside the layers (the package's front door re-exports the public API).
FRONT = {"onestop"}
PURE = ["rules", "events", "steps", "timevalue", "model", "calendar", "regimes", "catalog",
        "duration", "allotment"]


def _modules() -> dict[str, set[str]]:
    """Every module of the package and the package modules it imports."""
    names = {".".join(("onestop", *p.relative_to(PACKAGE).with_suffix("").parts))
             .removesuffix(".__init__") for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        name = ".".join(("onestop", *path.relative_to(PACKAGE).with_suffix("").parts))
        package = name.removesuffix(".__init__") if path.name == "__init__.py" \
            else name.rsplit(".", 1)[0]
        name = name.removesuffix(".__init__")
        found: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[:len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                if not target.startswith("onestop"):
                    continue
                subs = {f"{target}.{a.name}" for a in node.names} & names
                found |= subs if subs and len(subs) == len(node.names) else {target} | subs
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names if a.name.startswith("onestop")}
        graph[name] = {m for m in found if m in names and m != name}
    return graph


def _external_imports(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
        elif isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
    return found


def _layer(module: str) -> int | None:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "onestop"
    for level, (_name, members) in enumerate(LAYERS):
        if top in members:
            return level
    return None


@pytest.mark.parametrize("name", PURE)
def test_the_rules_and_their_vocabulary_import_no_database_and_no_spiffworkflow(name):
    paths = sorted((PACKAGE / name).rglob("*.py")) if (PACKAGE / name).is_dir() \
        else [PACKAGE / f"{name}.py"]
    for path in paths:
        imported = _external_imports(path)
        assert not imported & {"sqlalchemy", "SpiffWorkflow", "alembic", "psycopg", "lxml",
                               "sqlite3"}, path
    graph = _modules()
    for module, targets in graph.items():
        if module.split(".")[1:2] == [name]:
            assert not {t for t in targets
                        if t.split(".")[1:2] and t.split(".")[1] in ("store", "bpmn",
                                                                     "engine")}, module


def test_the_modules_form_no_cycle():
    graph = _modules()
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                cycle = path[path.index(target):] + [target]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if target not in state:
                visit(target)
        path.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)


def test_every_module_imports_only_its_own_layer_and_the_ones_below():
    graph = _modules()
    placed = {m for m in graph if _layer(m) is not None}
    assert placed | FRONT >= set(graph), sorted(set(graph) - placed - FRONT)
    upward = [(m, t) for m in placed for t in graph[m]
              if _layer(t) is not None and _layer(t) > _layer(m)]  # type: ignore[operator]
    assert upward == []
