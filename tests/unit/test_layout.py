"""The package's layout is its architecture: imports point one way, and never in a circle.

Layers, from the outside in:

    adapters   cli, __main__, hooks/, github/   (map their inputs to a flow)
    flows      flows/                           (one function per job)
    stages     runtime/ → deps/ → bundle/ → report/ → cloud/
    basics     errors, sizes, progress, toml, redact, logs, fetch, buildenv, config, secrets,
               signals

A module may import its own layer's modules and any inner layer; a stage may import
earlier stages only. Every import counts, including those inside functions and
under ``TYPE_CHECKING``: a circle hidden in a function is still a circle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pyfn_action"
ADAPTERS = {"cli", "__main__", "hooks", "github"}
STAGES = ("runtime", "deps", "bundle", "report", "cloud")
BASICS = {
    "__init__",
    "errors",
    "sizes",
    "progress",
    "toml",
    "redact",
    "logs",
    "fetch",
    "buildenv",
    "config",
    "secrets",
    "signals",
}


def _rank(module: str) -> int:
    """0 for basics, 1 to 5 for the stages in pipeline order, 6 for flows, 7 for adapters."""
    top = module.split(".")[0]
    if top in BASICS:
        return 0
    if top in STAGES:
        return 1 + STAGES.index(top)
    if top == "flows":
        return 6
    if top in ADAPTERS:
        return 7
    raise AssertionError(f"pyfn_action.{module} is in no layer: add it to {__file__}")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if rel.parts[0] == "shim":  # shipped in bundles, runs without pyfn_action
            continue
        parts = list(rel.with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts.pop()
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _imports(module: str, path: Path) -> Iterator[tuple[str, int]]:
    """The package's modules that ``module`` imports, with the line of each import."""
    is_package = path.name == "__init__.py"
    here = module.split(".") if is_package else module.split(".")[:-1]
    if module == "__init__":
        here = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                prefix = ".".join(["pyfn_action", *base, *([node.module] if node.module else [])])
            else:
                prefix = node.module or ""
            names = [prefix] + [f"{prefix}.{a.name}" for a in node.names]
        for name in names:
            if name == "pyfn_action" or not name.startswith("pyfn_action."):
                continue
            target = name.removeprefix("pyfn_action.")
            if target in MODULES:
                yield target, node.lineno
            elif target.split(".")[-1] == "__version__":
                yield "__init__", node.lineno


def _graph() -> dict[str, set[str]]:
    return {m: {t for t, _ in _imports(m, p) if t != m} for m, p in MODULES.items()}


def test_every_module_is_in_a_layer() -> None:
    for module in MODULES:
        _rank(module)


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_point_inward(module: str) -> None:
    rank = _rank(module)
    wrong = [
        f"line {line}: pyfn_action.{target}"
        for target, line in _imports(module, MODULES[module])
        if _rank(target) > rank
    ]
    assert not wrong, f"pyfn_action.{module} imports an outer layer or a later stage: {wrong}"


def test_no_import_circles() -> None:
    graph = _graph()
    # Tarjan's strongly connected components: any component of two or more is a circle.
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    circles: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert not circles, f"import circles: {circles}"


def test_the_checks_see_what_they_judge() -> None:
    """The checks would pass on a graph they could not read: show they read this one."""
    graph = _graph()
    assert "bundle.entry" in graph["bundle.stage"]
    assert "flows.build" in graph["flows.jobs"] or "flows.build" in set().union(*graph.values())
    assert _rank("cli") > _rank("flows.jobs") > _rank("cloud.apply") > _rank("runtime.pypy")
