"""Imports run one way (README, "Architecture"): schemas at the bottom; workflows and store
above it; activities and ingest above those; workers on top. Inside workers/ the rooms are
layered the same way: the runtime, then the API, then the web pages, then the processes,
`carebridge up`, and the CLI that starts them all. A module may import its own package and
the layers below it, never one above or beside it, and no two modules import each other
(directly or around a circle).

The one sanctioned exception: a workflow module names the activities it calls by their
methods (typed calls that mypy checks), imported through the sandbox's passthrough
(`with workflow.unsafe.imports_passed_through():`) and nowhere else.

The imports are read from the source (ast), also those inside functions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

LAYERS = {
    "schemas": 0,
    "workflows": 1,
    "store": 1,
    "activities": 2,
    "ingest": 2,
    "workers": 3,
}
# Above every layer, importing whatever they exercise; checked for cycles only.
ON_TOP = ("tests", "bench")

WORKER_ROOMS = {
    "workers.runtime": 0,
    "workers.api": 1,
    "workers.web": 2,
    "workers.worker": 3,
    "workers.listener": 3,
    "workers.http_server": 3,
    "workers.stack": 4,
    "workers.simulation": 4,
    "workers.cli": 5,
}

# (importing layer, imported layer): allowed only inside imports_passed_through().
PASSED_THROUGH = {("workflows", "activities")}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    line: int
    passed_through: bool


def project_modules(root: Path = ROOT) -> dict[str, str]:
    """Every module of the layered packages and of tests/ and bench/: name -> source."""
    modules = {}
    for package in (*LAYERS, *ON_TOP):
        for path in sorted((root / package).rglob("*.py")):
            parts = path.relative_to(root).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            modules[name] = path.read_text()
    return modules


def _passes_through(node: ast.With) -> bool:
    return any(
        isinstance(call := item.context_expr, ast.Call)
        and isinstance(call.func, ast.Attribute)
        and call.func.attr == "imports_passed_through"
        for item in node.items
    )


def _resolve(name: str, modules: Mapping[str, str]) -> str | None:
    """The project module an imported name lives in (a module, or the package it is in)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imports_of(name: str, source: str, modules: Mapping[str, str]) -> Iterator[Import]:
    """The project modules one module imports, with the line and whether the import sits in
    the workflow sandbox's passthrough block."""
    is_package = any(other.startswith(f"{name}.") for other in modules)
    package = name if is_package else name.rpartition(".")[0]

    def visit(node: ast.AST, passed: bool) -> Iterator[Import]:
        for child in ast.iter_child_nodes(node):
            inside = passed or (isinstance(child, ast.With) and _passes_through(child))
            wanted: list[str] = []
            if isinstance(child, ast.Import):
                wanted = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    anchor = package.split(".")[: len(package.split(".")) - child.level + 1]
                    base = ".".join([*anchor, base] if base else anchor)
                wanted = [f"{base}.{alias.name}" for alias in child.names]
            targets = dict.fromkeys(_resolve(imported, modules) for imported in wanted)
            for target in targets:
                if target is not None and target != name:
                    yield Import(name, target, getattr(child, "lineno", 0), inside)
            yield from visit(child, inside)

    yield from visit(ast.parse(source), False)


def _layer(module: str) -> str:
    return module.split(".")[0]


def _room(module: str) -> str | None:
    for room in WORKER_ROOMS:
        if module == room or module.startswith(f"{room}."):
            return room
    return None


def layering_violations(modules: Mapping[str, str]) -> list[str]:
    found = []
    for name, source in modules.items():
        if _layer(name) not in LAYERS:
            continue
        for imp in imports_of(name, source, modules):
            here, there = _layer(imp.source), _layer(imp.target)
            where = f"{imp.source}:{imp.line} imports {imp.target}"
            if there not in LAYERS:
                found.append(f"{where}, which is not part of the product")
            elif here == there == "workers":
                mine, theirs = _room(imp.source), _room(imp.target)
                if theirs is None or mine is None:
                    continue  # reported by test_every_module_of_workers_is_in_a_room
                if mine != theirs and WORKER_ROOMS[theirs] >= WORKER_ROOMS[mine]:
                    found.append(f"{where}: {mine} may only import rooms below it")
            elif here != there and LAYERS[there] >= LAYERS[here]:
                if (here, there) in PASSED_THROUGH and imp.passed_through:
                    continue
                found.append(f"{where}: {here}/ may only import the layers below it")
    return found


def import_cycles(modules: Mapping[str, str]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    graph = {
        name: sorted({imp.target for imp in imports_of(name, source, modules)})
        for name, source in modules.items()
    }
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def connect(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                connect(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                cycles.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            connect(node)
    return cycles


def test_no_module_imports_a_package_above_or_beside_its_own() -> None:
    assert layering_violations(project_modules()) == []


def test_no_two_modules_import_each_other_directly_or_around_a_circle() -> None:
    assert import_cycles(project_modules()) == []


def test_every_module_of_workers_is_in_a_room() -> None:
    unplaced = [
        name for name in project_modules() if name.startswith("workers.") and _room(name) is None
    ]
    assert unplaced == [], "add the new module or sub-package to WORKER_ROOMS (and the README)"


def test_every_top_level_package_has_a_layer() -> None:
    packages = {path.parent.name for path in ROOT.glob("*/__init__.py")}
    assert packages - set(LAYERS) - set(ON_TOP) == set()


def test_the_checks_catch_an_upward_import_a_sideways_one_and_a_circle() -> None:
    empty = "schemas store ingest workflows workflows.outcome activities activities.planning"
    modules = dict.fromkeys([*empty.split(), "activities.channels", "workers", "workers.api"], "")
    modules["store.reports"] = "from ingest.routing import AdtRouter\nfrom workflows import outcome"
    modules["ingest.routing"] = "from store import reports"
    modules["workflows.transition"] = (
        "from temporalio import workflow\n"
        "with workflow.unsafe.imports_passed_through():\n"
        "    from activities.planning import PlanningActivities\n"
        "from activities.channels import Channels"
    )
    modules["workers.api.health"] = "def f():\n    from workers.stack import EmbeddedUvicorn"
    modules["workers.stack"] = "from workers.api.health import health_router"
    assert layering_violations(modules) == [
        "store.reports:1 imports ingest.routing: store/ may only import the layers below it",
        "store.reports:2 imports workflows.outcome: store/ may only import the layers below it",
        "workflows.transition:4 imports activities.channels: workflows/ may only import the "
        "layers below it",
        "workers.api.health:2 imports workers.stack: workers.api may only import rooms below it",
    ]
    assert import_cycles(modules) == [
        ["ingest.routing", "store.reports"],
        ["workers.api.health", "workers.stack"],
    ]
