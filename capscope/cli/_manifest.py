"""
Finding the decorated tools a codebase exposes (`capscope manifest`).

Only what the user names is imported (its module-level code runs, as an
import does): a module by its dotted name (`myapp.tools`, found from the
current directory as `python -m` finds it), a package's every module when
asked for with `.*` (`myapp.*`), or one `.py` file named by its path
(imported under the package it belongs to: the directories up from it
that hold an `__init__.py`, with that package's parent put on
`sys.path`). A directory is never walked: files found on disk are never
run because they are there.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs

from .._decorators import command_guard, tool_spec
from .._enforce import ToolSpec

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
            "command_guarded": self.command is not None,
        }


def import_targets(targets: Iterable[str]) -> list[ModuleType]:
    """
    Import each target (a module name, `package.*` for a package and every
    module under it, or a `.py` file), in a stable order. A directory is
    refused, never walked.

    Raises:
        ImportError: a target cannot be imported (the message names it);
            the error of the module itself is chained.
    """
    modules: dict[str, ModuleType] = {}
    for target in targets:
        for module in _import_target(target):
            modules.setdefault(module.__name__, module)
    return list(modules.values())


_MODULE_NAME = re.compile(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*")


def _import_target(target: str) -> Iterator[ModuleType]:
    path = Path(target)
    if path.suffix == ".py":
        if not path.is_file():
            msg = f"no such file or directory: {target!r}"
            raise ImportError(msg)
        yield _import(_module_name(path.resolve()), target)
        return
    walk = target.endswith(".*")
    name = target.removesuffix(".*")
    if not _MODULE_NAME.fullmatch(name):
        what = "a directory" if path.is_dir() else "not a module name"
        msg = (
            f"{target!r} is {what}: name a module (myapp.tools), a package "
            "and every module under it (myapp.*) or a .py file; a directory "
            "is never walked"
        )
        raise ImportError(msg)
    cwd = str(Path.cwd())
    if cwd not in sys.path:  # as `python -m` finds modules
        sys.path.insert(0, cwd)
    module = _import(name, target)
    yield module
    if walk and hasattr(
        module, "__path__"
    ):  # asked for: the package's modules
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
