"""
`Scope`: a snapshot of every ambient stack, to capture, carry and install.

A Scope wraps a `contextvars.Context` that nobody runs directly: every use
runs a fresh copy of it, so a Scope never changes once made. Building on the
Context rather than on a mapping of stacks keeps capture O(1) in the number
of COPY stacks (`copy_context()` shares the underlying map), carries
context variables that are not capscope's (tracing, logging) as asyncio
would, and lets `asyncio.create_task(context=...)` run a task under it with
no wrapper at all.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Iterable, Mapping
from contextvars import Context, ContextVar, Token, copy_context
from typing import Any, ParamSpec, TypeVar, final

from ._ambient import (
    _EPOCH,
    _ROOT_EPOCH,
    AmbientCounter,
    AmbientStack,
    FrameToken,
    all_vars,
    apply_worker_rules,
    clear_all,
    frames_of,
)
from ._exceptions import ScopeWarning
from ._registry import Ambient, registry

__all__ = ["Scope", "using"]

P = ParamSpec("P")
R = TypeVar("R")

#: What `pushing()`, `spawn(push=...)` and `worker(push=...)` accept.
PushRequests = Mapping[AmbientStack[Any] | str, Any]


def _resolve(key: AmbientStack[Any] | str) -> AmbientStack[Any]:
    stack = registry.get(key) if isinstance(key, str) else key
    if not isinstance(stack, AmbientStack):
        msg = f"only stacks take pushes; {stack!r} is not an AmbientStack"
        raise TypeError(msg)
    return stack


def _push_all(requests: Iterable[tuple[AmbientStack[Any], Any]]) -> None:
    for stack, value in requests:
        stack.push(value)


def worker_context() -> Context:
    """A copy of the current context made into a new worker's."""
    ctx = copy_context()
    ctx.run(apply_worker_rules)
    return ctx


@final
class Scope:
    """
    An immutable snapshot of every ambient stack (and of the rest of the
    context), ready to run code under.

    Make one with `Scope.current()` (inline capture: the same agent),
    `Scope.capture_inherited()` (worker capture: each stack's inherit mode,
    counters at 0) or `Scope.empty()`; derive others with `pushing()`.

    Examples:
        >>> import capscope as cs
        >>> s = cs.AmbientStack("doc_scope", inherit=cs.Inherit.COPY)
        >>> with s.pushed("mine"):
        ...     scope = cs.Scope.current()
        >>> scope.run(s.top)
        'mine'
        >>> s.top() is None
        True
    """

    __slots__ = ("_ctx",)

    def __init__(self, _context: Context) -> None:
        # Private: use current(), capture_inherited(), empty() or pushing().
        self._ctx = _context

    @classmethod
    def current(cls) -> Scope:
        """
        Inline capture: every stack exactly as it is here, frame state
        shared (the same agent working on).

        Examples:
            >>> import capscope as cs
            >>> cs.Scope.current()[cs.AmbientStack("doc_cur", inherit=cs.Inherit.COPY)]
            ()
        """
        return cls(copy_context())

    @classmethod
    def capture_inherited(cls) -> Scope:
        """
        Worker capture: what a new worker started here gets. Each stack
        follows its inherit mode (COPY whole, TOP as one fresh frame through
        `to_worker`, NONE empty), counters read 0, frame state is fresh, and
        context variables that are not capscope's are kept.

        Raises:
            CeilingExceeded: a TOP stack's `to_worker` refused (no worker
                depth left, say).

        Examples:
            >>> import capscope as cs
            >>> top = cs.AmbientStack("doc_cap_top", inherit=cs.Inherit.TOP)
            >>> with top.pushed("outer"), top.pushed("inner"):
            ...     cs.Scope.capture_inherited()[top]
            ('inner',)
        """
        return cls(worker_context())

    @classmethod
    def empty(cls) -> Scope:
        """
        Every capscope stack empty and every counter 0; other context
        variables are kept. Running under it drops every policy: an escape
        for the application's root, never for a tool.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_empty", inherit=cs.Inherit.COPY)
            >>> with s.pushed(1):
            ...     cs.Scope.empty().run(s.top) is None
            True
        """
        ctx = copy_context()
        ctx.run(clear_all)
        return cls(ctx)

    def pushing(self, values: PushRequests) -> Scope:
        """
        A new Scope with *values* pushed (each through its stack's
        `narrow`), in the order given. Keys are stacks or registry names.

        Raises:
            CeilingExceeded: a value asks for more than the scope allows.
            RegistryError: a name is not registered.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_pushing", inherit=cs.Inherit.COPY)
            >>> cs.Scope.empty().pushing({s: "a"}).pushing({s: "b"})[s]
            ('a', 'b')
        """
        requests = [(_resolve(k), v) for k, v in values.items()]
        ctx = self._ctx.copy()
        ctx.run(_push_all, requests)
        return Scope(ctx)

    def __getitem__(self, stack: Ambient | str) -> Any:
        """
        The values of *stack* in this scope, outermost first (for a counter,
        its value).
        """
        if isinstance(stack, str):
            stack = registry.get(stack)
        frame: FrameToken | None = self._ctx.get(stack._var)  # noqa: SLF001
        if isinstance(stack, AmbientCounter):
            return 0 if frame is None else frame[3]
        return frames_of(frame)

    def run(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> R:
        """
        Call *fn* under this scope, in a fresh copy of it, and return its
        result. The caller's context is untouched afterwards, however *fn*
        ends, and pushes *fn* leaves behind are dropped.

        Examples:
            >>> import capscope as cs
            >>> cs.Scope.empty().run(len, "abc")
            3
        """
        return self._ctx.copy().run(fn, *args, **kwargs)

    def bind(self, fn: Callable[P, R]) -> Callable[P, R]:
        """
        *fn* wrapped so every call runs under this scope (a fresh copy each
        call): give it to `threading.Thread(target=...)`, callbacks and
        executors that do not carry the context.

        Examples:
            >>> import capscope as cs, threading
            >>> s = cs.AmbientStack("doc_bind", inherit=cs.Inherit.COPY)
            >>> seen = []
            >>> with s.pushed("parent"):
            ...     target = cs.Scope.current().bind(lambda: seen.append(s.top()))
            >>> t = threading.Thread(target=target); t.start(); t.join()
            >>> seen
            ['parent']
        """

        @functools.wraps(fn)
        def bound(*args: P.args, **kwargs: P.kwargs) -> R:
            return self._ctx.copy().run(fn, *args, **kwargs)

        return bound

    def installed(self) -> _Installed:
        """
        Install this scope onto the current context for a `with` block:
        every capscope stack and counter reads as in the scope, then
        reverts exactly on exit (frames left unpopped inside are dropped).
        Other context variables are not touched.

        Examples:
            >>> import capscope as cs
            >>> s = cs.AmbientStack("doc_installed", inherit=cs.Inherit.COPY)
            >>> scope = cs.Scope.empty().pushing({s: "installed"})
            >>> with scope.installed():
            ...     s.top()
            'installed'
            >>> s.top() is None
            True
        """
        return _Installed(self._ctx)

    def context(self) -> Context:
        """
        A fresh copy of the underlying `contextvars.Context`, for APIs that
        take one (`loop.call_soon(..., context=...)`).
        """
        return self._ctx.copy()

    def __repr__(self) -> str:
        parts = []
        for var in all_vars():
            frame = self._ctx.get(var)
            if frame is not None:
                owner = frame[2]
                depth = frame[3]
                parts.append(f"{owner.name}={depth}")
        return f"<Scope {' '.join(sorted(parts)) or 'empty'}>"


@final
class _Installed:
    """The context manager `Scope.installed()` returns."""

    __slots__ = ("_ctx", "_saved")

    def __init__(self, ctx: Context) -> None:
        self._ctx = ctx
        self._saved: list[tuple[ContextVar[Any], Token[Any]]] | None = None

    def __enter__(self) -> None:
        if self._saved is not None:
            msg = "this installed() block is already entered"
            raise RuntimeError(msg)
        ctx = self._ctx
        saved: list[tuple[ContextVar[Any], Token[Any]]] = [
            (_EPOCH, _EPOCH.set(ctx.get(_EPOCH, _ROOT_EPOCH)))
        ]
        saved.extend((var, var.set(ctx.get(var))) for var in all_vars())
        self._saved = saved

    def __exit__(self, *exc_info: object) -> None:
        saved, self._saved = self._saved, None
        if saved is None:
            return
        try:
            for var, token in reversed(saved):
                var.reset(token)
        except ValueError:
            warnings.warn(
                ScopeWarning(
                    "installed() was exited in a different context from the "
                    "one that entered it; nothing was restored here"
                ),
                stacklevel=2,
            )


@final
class using:  # noqa: N801 - reads as a state, like structlog's bound_contextvars
    """
    Push several values at once, by registry name, for a `with` block.

    Values are pushed in the order given (each through its stack's
    `narrow`) and popped in reverse. If one push is refused, the ones before
    it are popped again before the error propagates.

    Examples:
        >>> import capscope as cs
        >>> a = cs.AmbientStack("doc_using_a", inherit=cs.Inherit.COPY)
        >>> b = cs.AmbientStack("doc_using_b", inherit=cs.Inherit.COPY)
        >>> cs.registry.register(a); cs.registry.register(b)
        >>> with cs.using(doc_using_a=1, doc_using_b=2):
        ...     a.top(), b.top()
        (1, 2)
        >>> cs.registry.unregister(a); cs.registry.unregister(b)
    """

    __slots__ = ("_requests", "_tokens")

    def __init__(self, **values: Any) -> None:
        self._requests = [(_resolve(k), v) for k, v in values.items()]
        self._tokens: list[tuple[AmbientStack[Any], FrameToken]] | None = None

    def __enter__(self) -> None:
        if self._tokens is not None:
            msg = "this using() block is already entered"
            raise RuntimeError(msg)
        tokens: list[tuple[AmbientStack[Any], FrameToken]] = []
        try:
            for stack, value in self._requests:
                tokens.append((stack, stack.push(value)))
        except BaseException:
            for stack, token in reversed(tokens):
                stack.pop(token)
            raise
        self._tokens = tokens

    def __exit__(self, *exc_info: object) -> None:
        tokens, self._tokens = self._tokens, None
        for stack, token in reversed(tokens or ()):
            stack.pop(token)
