"""
The stack registry: names for stacks, and discovery of third-party stacks.

The registry is a directory, not a switch: worker captures follow every
`AmbientStack`'s inherit mode whether it is registered or not. Registration
gives a stack a name for `using(**names)`, policy files and
`capscope stacks`, and lets plugins ship stacks through the
`capscope.stacks` entry-point group.

Unlike OpenTelemetry, which logs a broken plugin and carries on because
telemetry must never break an app, capscope makes security decisions, so a
broken or clashing entry point is a loud `RegistryError`.
"""

from __future__ import annotations

import importlib.metadata
import os
import threading
from collections.abc import Iterable, Iterator
from typing import Any, TypeAlias, final

from ._ambient import AmbientCounter, AmbientStack
from ._exceptions import RegistryError

__all__ = ["BUILTIN", "ENTRY_POINT_GROUP", "StackRegistry", "registry"]

ENTRY_POINT_GROUP = "capscope.stacks"
#: The origin recorded for capscope's own stacks.
BUILTIN = "built-in"
#: The origin recorded for stacks registered by application code.
RUNTIME = "runtime"
#: Comma-separated names the lazy entry-point load skips.
BLOCK_ENV = "CAPSCOPE_BLOCKED_STACKS"

Ambient: TypeAlias = AmbientStack[Any] | AmbientCounter


@final
class StackRegistry:
    """
    Every named stack and counter, in registration order.

    Use the module-level `capscope.registry`; make your own only in tests.

    Example:
        >>> import capscope as cs
        >>> tenant = cs.AmbientStack("doc_registry_tenant", inherit=cs.Inherit.COPY)
        >>> cs.registry.register(tenant)
        >>> cs.registry.get("doc_registry_tenant") is tenant
        True
        >>> cs.registry.unregister(tenant)
    """

    def __init__(self) -> None:
        self._stacks: dict[str, Ambient] = {}
        self._origins: dict[str, str] = {}
        self._lock = threading.Lock()
        self._loaded_entry_points = False

    def register(self, stack: Ambient, *, origin: str = RUNTIME) -> None:
        """
        Register *stack* under its name. Registering the same object twice is
        a no-op.

        Raises:
            RegistryError: the name is taken by a different object.
            TypeError: *stack* is not an `AmbientStack` or `AmbientCounter`.
        """
        if not isinstance(stack, AmbientStack | AmbientCounter):
            msg = (
                "only AmbientStack and AmbientCounter instances can be "
                f"registered, got {stack!r}"
            )
            raise TypeError(msg)
        with self._lock:
            taken = self._stacks.get(stack.name)
            if taken is stack:
                return
            if taken is not None:
                msg = (
                    f"stack name {stack.name!r} is taken by {taken!r} "
                    f"(from {self._origins[stack.name]}); cannot register "
                    f"{stack!r}"
                )
                raise RegistryError(msg)
            self._stacks[stack.name] = stack
            self._origins[stack.name] = origin

    def unregister(self, stack: Ambient | str) -> None:
        """
        Remove *stack* (or the stack of that name). Worker captures keep
        following its inherit mode: it only loses its name.

        Raises:
            RegistryError: no such stack is registered.
        """
        name = stack if isinstance(stack, str) else stack.name
        with self._lock:
            taken = self._stacks.get(name)
            if taken is None or (
                not isinstance(stack, str) and taken is not stack
            ):
                msg = f"{stack!r} is not registered"
                raise RegistryError(msg)
            del self._stacks[name]
            del self._origins[name]

    def get(self, name: str) -> Ambient:
        """
        The stack or counter registered as *name*.

        Raises:
            RegistryError: nothing is registered under *name*; the message
                lists the names that are.
        """
        try:
            return self._stacks[name]
        except KeyError:
            known = ", ".join(self._stacks) or "none"
            msg = f"no stack named {name!r} is registered (known: {known})"
            raise RegistryError(msg) from None

    def origin(self, name: str) -> str:
        """
        Where the stack *name* came from: `"built-in"`, `"runtime"`, or
        `"<distribution> <version>"` for an entry point.
        """
        self.get(name)
        return self._origins[name]

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order."""
        return tuple(self._stacks)

    def __iter__(self) -> Iterator[Ambient]:
        return iter(tuple(self._stacks.values()))

    def __len__(self) -> int:
        return len(self._stacks)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            return item in self._stacks
        return any(s is item for s in self._stacks.values())

    def __repr__(self) -> str:
        return f"<StackRegistry {', '.join(self._stacks)}>"

    def load_entry_points(self, *, block: Iterable[str] = ()) -> int:
        """
        Register the stacks third-party distributions declare in the
        `capscope.stacks` entry-point group; returns how many were new.

        Idempotent: an entry point whose object is already registered is a
        no-op. Names in *block* are skipped.

        Raises:
            RegistryError: an entry point fails to import, is not an
                `AmbientStack`/`AmbientCounter`, is registered under a name
                other than its stack's, or clashes with a different object.
                The message names the entry point and its distribution.

        Example:
            >>> import capscope as cs
            >>> cs.registry.load_entry_points() >= 0
            True
        """
        blocked = frozenset(block)
        loaded = 0
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        for ep in sorted(eps, key=lambda ep: ep.name):
            if ep.name in blocked:
                continue
            where = _describe_entry_point(ep)
            try:
                obj = ep.load()
            except Exception as exc:
                msg = f"{where} failed to import: {exc!r}"
                raise RegistryError(msg) from exc
            if not isinstance(obj, AmbientStack | AmbientCounter):
                msg = (
                    f"{where} is {obj!r}, not an AmbientStack or "
                    "AmbientCounter instance"
                )
                raise RegistryError(msg)
            if obj.name != ep.name:
                msg = (
                    f"{where} names a stack called {obj.name!r}; the entry "
                    "point's name must be the stack's name"
                )
                raise RegistryError(msg)
            if obj in self:
                continue
            try:
                self.register(obj, origin=_dist_label(ep))
            except RegistryError as exc:
                msg = f"{where}: {exc}"
                raise RegistryError(msg) from None
            loaded += 1
        self._loaded_entry_points = True
        return loaded

    def ensure_entry_points(self) -> None:
        """Load entry points once, on first capture (skipping BLOCK_ENV)."""
        if self._loaded_entry_points:
            return
        blocked = os.environ.get(BLOCK_ENV, "")
        self.load_entry_points(
            block=[n.strip() for n in blocked.split(",") if n.strip()]
        )


def _dist_label(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    if dist is None:
        return "unknown distribution"
    return f"{dist.name} {dist.version}"


def _describe_entry_point(ep: importlib.metadata.EntryPoint) -> str:
    return (
        f"entry point {ep.name!r} = {ep.value!r} in group "
        f"{ENTRY_POINT_GROUP!r} (distribution {_dist_label(ep)})"
    )


#: The process-wide registry. Why a global: stacks are process-wide names,
#: like logging's loggers, and plugins register into it on discovery.
registry = StackRegistry()
