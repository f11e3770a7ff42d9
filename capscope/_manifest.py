"""
Finding the decorated tools a codebase exposes (`capscope manifest`).

Modules are imported, as `pytest` imports test files: module-level code
runs. A path is imported under the package it belongs to (the directories
up from it that hold an `__init__.py`), with that package's parent put on
`sys.path`; a package, by name or by path, is imported with every module
under it.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from ._decorators import command_guard, tool_spec
from ._enforce import ToolSpec

__all__ = ["ManifestEntry", "collect", "import_targets"]


@attrs.frozen
class ManifestEntry:
    """One decorated callable: where it is (`module:qualname`) and its spec."""

    import_path: str
    spec: ToolSpec
    #: The `guards_command` layer's guard, if the callable has one: a dry
    #: run (`capscope check`) runs its command gate too.
    command: Any = attrs.field(default=None, eq=False, repr=False)

    def to_dict(self) -> dict[str, Any]:
        spec = self.spec
        return {
            "import_path": self.import_path,
            "tool": spec.name,
            "capability": spec.capability,
            "side_effect": None
            if spec.side_effect is None
            else spec.side_effect.value,
            "needs_approval": spec.needs_approval,
            "bridged": spec.bridged,
            "paths": list(spec.paths),
            "reason": spec.reason,
        }


def import_targets(targets: Iterable[str]) -> list[ModuleType]:
    """
    Import each target (a module name, a `.py` file or a directory) and
    every module of the packages among them, in a stable order.

    Raises:
        ImportError: a target cannot be imported (the message names it);
            the error of the module itself is chained.
    """
    modules: dict[str, ModuleType] = {}
    for target in targets:
        for module in _import_target(target):
            modules.setdefault(module.__name__, module)
    return list(modules.values())


def _import_target(target: str) -> Iterator[ModuleType]:
    path = Path(target)
    if path.suffix == ".py" or path.is_dir():
        if not path.exists():
            msg = f"no such file or directory: {target!r}"
            raise ImportError(msg)
        if path.is_dir() and not (path / "__init__.py").exists():
            for file in sorted(path.rglob("*.py")):
                if not any(p.startswith(".") for p in file.parts):
                    yield from _import_target(str(file))
            return
        name = _module_name(path.resolve())
    else:
        name = target
    module = _import(name, target)
    yield module
    if hasattr(module, "__path__"):  # a package: everything under it
        for info in pkgutil.walk_packages(
            module.__path__, prefix=f"{name}.", onerror=_reraise
        ):
            yield _import(info.name, target)


def _reraise(name: str) -> None:
    msg = f"cannot import {name!r}"
    raise ImportError(msg)


def _module_name(path: Path) -> str:
    """The dotted name of the module at *path*; its root goes on sys.path."""
    parts = [] if path.name == "__init__.py" else [path.stem]
    if path.is_dir():
        parts = [path.name]
    root = path.parent
    while (root / "__init__.py").exists():
        parts.insert(0, root.name)
        root = root.parent
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return ".".join(parts)


def _import(name: str, target: str) -> ModuleType:
    try:
        return importlib.import_module(name)
    except Exception as exc:
        msg = f"cannot import {name!r} (from {target!r}): {exc}"
        raise ImportError(msg) from exc


def collect(modules: Iterable[ModuleType]) -> list[ManifestEntry]:
    """
    Every callable decorated with `requires_tool` or `needs_approval`
    defined in *modules*: module-level functions and the methods,
    classmethods and staticmethods of module-level classes.
    """
    entries: dict[str, ManifestEntry] = {}
    for module in modules:
        for name, value in list(vars(module).items()):
            for qualname, candidate in _candidates(name, value):
                if getattr(candidate, "__module__", None) != module.__name__:
                    continue  # imported from elsewhere: listed there
                try:
                    spec = tool_spec(candidate)
                except TypeError:
                    continue
                path = f"{module.__name__}:{qualname}"
                entries.setdefault(
                    path, ManifestEntry(path, spec, command_guard(candidate))
                )
    return sorted(entries.values(), key=lambda e: e.import_path)


def _candidates(name: str, value: object) -> Iterator[tuple[str, object]]:
    yield name, value
    if inspect.isclass(value):
        for attr, member in vars(value).items():
            yield f"{name}.{attr}", member
