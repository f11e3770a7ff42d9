"""
The package's layers, enforced on every import (function-local ones
included, found by walking each module's syntax tree):

- the core (stacks, scopes, the registry, tasks, exceptions, asking) imports
  no policies, stacks, decorators, enforcement, command feature or CLI;
- policies import no decorators, enforcement or CLI;
- nothing imports the CLI but `python -m capscope`.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).parent.parent / "capscope"

CORE = {
    "capscope._ambient",
    "capscope._scope",
    "capscope._registry",
    "capscope._tasks",
    "capscope._exceptions",
    "capscope._asking",
    "capscope._keys",
}
ABOVE_CORE = (
    "capscope.policies",
    "capscope.stacks",
    "capscope._decorators",
    "capscope._enforce",
    "capscope.commands",
    "capscope.cli",
)
ABOVE_POLICIES = ("capscope._decorators", "capscope._enforce", "capscope.cli")


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """Every capscope module *source* (the module *name*) imports, at any
    depth of its code, relative imports resolved; `from m import x` counts
    as m and as m.x (x may be a module)."""
    package = name if is_package else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                module = ".".join([*base, *filter(None, [node.module])])
            else:
                module = node.module or ""
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return {m for m in found if m == "capscope" or m.startswith("capscope.")}


def _graph() -> dict[str, set[str]]:
    return {
        module_name(path): imports(
            path.read_text(encoding="utf-8"),
            module_name(path),
            is_package=path.name == "__init__.py",
        )
        for path in sorted(PACKAGE.rglob("*.py"))
    }


GRAPH = _graph()


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


@pytest.mark.parametrize("module", sorted(CORE))
def test_the_core_imports_nothing_above_it(module):
    assert module in GRAPH
    assert sorted(m for m in GRAPH[module] if _under(m, ABOVE_CORE)) == []


@pytest.mark.parametrize(
    "module", sorted(m for m in GRAPH if _under(m, ("capscope.policies",)))
)
def test_policies_import_no_decorators_enforcement_or_cli(module):
    assert sorted(m for m in GRAPH[module] if _under(m, ABOVE_POLICIES)) == []


def test_nothing_imports_the_cli():
    importers = sorted(
        module
        for module, imported in GRAPH.items()
        if not _under(module, ("capscope.cli",))
        and any(_under(m, ("capscope.cli",)) for m in imported)
    )
    assert importers == ["capscope.__main__"]


def test_the_walk_sees_function_local_and_relative_imports():
    """The checker itself: an import inside a function, two levels up."""
    source = (
        "from .. import events\n"
        "def f():\n"
        "    from ..cli._main import main\n"
        "    import capscope.stacks\n"
    )
    found = imports(source, "capscope.policies.mod")
    assert {
        "capscope.events",
        "capscope.cli._main",
        "capscope.stacks",
    } <= found
    assert _under("capscope.cli._main", ABOVE_POLICIES)
