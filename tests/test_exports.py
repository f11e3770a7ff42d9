"""The public surface: a list you can test."""

from __future__ import annotations

import inspect
import types

import pytest

import capscope as cs
from capscope import lowlevel, policies, stacks

# The public API and the exception tree (docs/api.md, docs/exceptions.md): names that users
# and other code rely on exactly.
CORE_NAMES = {
    "AmbientCounter",
    "AmbientStack",
    "Inherit",
    "Scope",
    "ScopedExecutor",
    "registry",
    "run_in_executor",
    "scope_ambient",
    "scoped_aiter",
    "scoped_iter",
    "spawn",
    "to_thread",
    "using",
    "worker",
    "CapscopeError",
    "ScopeError",
    "RegistryError",
    "PolicyConfigError",
    "CeilingExceeded",
    "NoConnectorContext",
    "PolicyDenied",
    "NoPolicyInstalled",
    "ToolDenied",
    "ApprovalDenied",
    "CommandBlocked",
    "ActionProposed",
    "HumanRequired",
    "CapscopeWarning",
    "ScopeWarning",
    "current_connector",
    "current_overlay",
    "describe_policy",
    "render_context",
    "trusted",
}

# The policy classes other code imports by name (docs/api-policies.md).
POLICY_NAMES = {
    "CapabilityPolicy",
    "ToolApprovalPolicy",
    "ApprovalRule",
    "CommandPolicy",
    "DynamicPermissionPolicy",
    "RuntimeContextOverlay",
    "AutonomyPolicy",
    "LlmRenderContext",
    "ConnectorCtx",
}


def _isort_key(name: str) -> tuple[int, str]:
    """ruff's RUF022 order: CONSTANTS, then Classes, then functions."""
    if name.isupper():
        return (0, name)
    return (1 if name[0].isupper() else 2, name)


def _public(module: types.ModuleType) -> set[str]:
    """Public names that are not modules (submodules speak for themselves)."""
    return {
        name
        for name, obj in vars(module).items()
        if not name.startswith("_") and not isinstance(obj, types.ModuleType)
    }


@pytest.mark.parametrize(
    "module", [cs, lowlevel, policies, stacks], ids=lambda m: m.__name__
)
def test_all_is_sorted_and_complete(module):
    """__all__ is sorted and lists exactly the public names."""
    listed = {
        name
        for name in module.__all__
        if not isinstance(getattr(module, name), types.ModuleType)
    }

    assert sorted(module.__all__, key=_isort_key) == module.__all__
    assert _public(module) - {"annotations"} == listed


def test_design_names_are_exported():
    """Every name the API reference promises is importable from capscope."""
    assert CORE_NAMES <= set(cs.__all__)


def test_design_policy_names_are_exported():
    """Every policy class the API reference names is importable from capscope.policies."""
    assert POLICY_NAMES <= set(policies.__all__)


def test_built_in_stacks_are_exported():
    """capscope.stacks has the ten built-in stacks (docs/concepts.md)."""
    assert {
        "execution",
        "approval",
        "command",
        "permissions",
        "overlay",
        "autonomy",
        "render",
        "connector",
        "trusted_depth",
        "command_hook_depth",
    } == set(stacks.__all__)


def test_reexports_read_as_capscope():
    """Tracebacks say capscope.ToolDenied, not capscope._exceptions."""
    for name in cs.__all__:
        obj = getattr(cs, name)
        if inspect.isclass(obj) or inspect.isfunction(obj):
            assert obj.__module__.startswith("capscope"), name
            assert not obj.__module__.startswith("capscope._"), name


def test_private_names_are_exported_once():
    """No class or function is public under two names."""
    seen: dict[int, str] = {}
    for module in (cs, lowlevel):
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.isclass(obj) or inspect.isfunction(obj):
                assert id(obj) not in seen, (name, seen.get(id(obj)))
                seen[id(obj)] = name


def test_every_public_name_has_an_example():
    """Each public class and function documents itself with an example."""
    missing = []
    for name in cs.__all__:
        obj = getattr(cs, name)
        if isinstance(obj, types.ModuleType):
            continue
        doc = inspect.getdoc(obj) or ""
        if ">>>" not in doc:
            missing.append(name)
    assert [] == missing


def test_version_is_read_from_metadata():
    """__version__ comes from the installed distribution."""
    from importlib.metadata import version

    assert version("capscope") == cs.__version__


def test_the_extras_stay_small():
    """`pip install capscope` needs only attrs and wrapt, and the `test`
    extra for users' own tests adds pytest alone; the project's own test
    dependencies are a dependency group, never an extra."""
    import tomllib
    from pathlib import Path

    project = tomllib.loads(
        (Path(__file__).parent.parent / "pyproject.toml").read_text()
    )
    names = {
        dep.split(">")[0].split("[")[0]
        for dep in project["project"]["dependencies"]
    }
    assert names == {"attrs", "wrapt"}
    extras = project["project"]["optional-dependencies"]
    assert [d.split(">")[0] for d in extras["test"]] == ["pytest"]
    assert "tests" not in extras
    assert "dev" not in extras
    assert "test" in project["dependency-groups"]
