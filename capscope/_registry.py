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

Entry points are loaded in one place, here, as pluggy does: on the first
lookup that misses (`get`, `in`) and on the first listing (`names`, `len`,
iteration), so a plugin's stack works whatever is used first. The built-in
stacks are sealed: no one can unregister one, and so no one can put a decoy
in its place.
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

    Examples:
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
            RegistryError: no such stack is registered, or it is one of
                capscope's own (built-in stacks are sealed: unregistering
                one would let a decoy take its name).
            TypeError: *stack* is neither a stack, a counter nor a name.
        """
        if not isinstance(stack, str | AmbientStack | AmbientCounter):
            msg = f"unregister() takes a stack, a counter or a name, got {stack!r}"
            raise TypeError(msg)
        name = stack if isinstance(stack, str) else stack.name
        with self._lock:
            taken = self._stacks.get(name)
            if taken is None or (
                not isinstance(stack, str) and taken is not stack
            ):
                msg = f"{stack!r} is not registered"
                raise RegistryError(msg)
            if self._origins[name] == BUILTIN:
                msg = (
                    f"the built-in stack {name!r} is sealed: it cannot be "
                    "unregistered or replaced"
                )
                raise RegistryError(msg)
            del self._stacks[name]
            del self._origins[name]

    def get(self, name: str) -> Ambient:
        """
        The stack or counter registered as *name*.

        A name not registered yet loads the entry points first, so a
        plugin's stack can be the first thing used.

        Raises:
            RegistryError: nothing is registered under *name*; the message
                lists the names that are.
        """
        found = self._stacks.get(name)
        if found is None and not self._loaded_entry_points:
            self.load_entry_points()
            found = self._stacks.get(name)
        if found is None:
            known = ", ".join(self._stacks) or "none"
            msg = f"no stack named {name!r} is registered (known: {known})"
            raise RegistryError(msg)
        return found

    def origin(self, name: str) -> str:
        """
        Where the stack *name* came from: `"built-in"`, `"runtime"`, or
        `"<distribution> <version>"` for an entry point.
        """
        self.get(name)
        return self._origins[name]

    def names(self) -> tuple[str, ...]:
        """Registered names, in registration order (entry points loaded)."""
        self.ensure_entry_points()
        return tuple(self._stacks)

    def __iter__(self) -> Iterator[Ambient]:
        self.ensure_entry_points()
        return iter(tuple(self._stacks.values()))

    def __len__(self) -> int:
        self.ensure_entry_points()
        return len(self._stacks)

    def __contains__(self, item: object) -> bool:
        if isinstance(item, str):
            if item not in self._stacks:
                self.ensure_entry_points()
            return item in self._stacks
        self.ensure_entry_points()
        return any(s is item for s in self._stacks.values())

    def __repr__(self) -> str:
        return f"<StackRegistry {', '.join(self._stacks)}>"

    def load_entry_points(self, *, block: Iterable[str] = ()) -> int:
        """
        Register the stacks third-party distributions declare in the
        `capscope.stacks` entry-point group; returns how many were new.

        All or nothing: every entry point is imported and checked before
        any is registered. Idempotent: an entry point whose object is
        already registered is a no-op. Names in *block*, and in the
        comma-separated environment variable `CAPSCOPE_BLOCKED_STACKS`,
        are skipped.

        Raises:
            RegistryError: an entry point fails to import, is not an
                `AmbientStack`/`AmbientCounter`, is registered under a name
                other than its stack's, or clashes with a different object.
                The message names the entry point and its distribution.

        Examples:
            >>> import capscope as cs
            >>> cs.lowlevel.StackRegistry().load_entry_points() >= 0
            True
        """
        blocked = frozenset(block) | _blocked_by_environment()
        eps = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
        found = [
            (_load(ep), _dist_label(ep), _describe(ep))
            for ep in sorted(eps, key=lambda ep: ep.name)
            if ep.name not in blocked
        ]
        with self._lock:
            new: dict[str, tuple[Ambient, str, str]] = {}
            for obj, origin, where in found:
                taken: Ambient | None
                if obj.name in new:
                    taken, taken_origin, _ = new[obj.name]
                else:
                    taken = self._stacks.get(obj.name)
                    taken_origin = self._origins.get(obj.name, "")
                if taken is obj:
                    continue
                if taken is not None:
                    msg = (
                        f"{where}: stack name {obj.name!r} is taken by "
                        f"{taken!r} (from {taken_origin}); no entry point "
                        "was registered"
                    )
                    raise RegistryError(msg)
                new[obj.name] = (obj, origin, where)
            for name, (obj, origin, _) in new.items():
                self._stacks[name] = obj
                self._origins[name] = origin
            self._loaded_entry_points = True
        return len(new)

    def ensure_entry_points(self) -> None:
        """Load entry points once (lookups and listings call this)."""
        if not self._loaded_entry_points:
            self.load_entry_points()


def _blocked_by_environment() -> frozenset[str]:
    names = os.environ.get(BLOCK_ENV, "").split(",")
    return frozenset(n.strip() for n in names if n.strip())


def _dist_label(ep: importlib.metadata.EntryPoint) -> str:
    dist = ep.dist
    if dist is None:
        return "unknown distribution"
    return f"{dist.name} {dist.version}"


def _describe(ep: importlib.metadata.EntryPoint) -> str:
    return (
        f"entry point {ep.name!r} = {ep.value!r} in group "
        f"{ENTRY_POINT_GROUP!r} (distribution {_dist_label(ep)})"
    )


def _load(ep: importlib.metadata.EntryPoint) -> Ambient:
    """Import *ep* and check it is a stack registered under its own name."""
    where = _describe(ep)
    try:
        obj = ep.load()
    except Exception as exc:
        msg = f"{where} failed to import: {exc!r}"
        raise RegistryError(msg) from exc
    if not isinstance(obj, AmbientStack | AmbientCounter):
        msg = f"{where} is {obj!r}, not an AmbientStack or AmbientCounter instance"
        raise RegistryError(msg)
    if obj.name != ep.name:
        msg = (
            f"{where} names a stack called {obj.name!r}; the entry point's "
            "name must be the stack's name"
        )
        raise RegistryError(msg)
    return obj


#: The process-wide registry. Why a global: stacks are process-wide names,
#: like logging's loggers, and plugins register into it on discovery.
registry = StackRegistry()
