"""
Carrying a scope into tasks, workers, threads, executors and generators.

Two techniques, both from the standard library:

- `asyncio.create_task(context=...)` for asyncio tasks (`spawn`): the event
  loop itself runs every step of the task in the given context.
- `Context.run` around every step (`scope_ambient`, `worker`,
  `scoped_iter`, `scoped_aiter`): the Python form of the reference's
  swap-in on poll-enter, swap-out on poll-exit. It needs nothing from the
  event loop, so it works inline, under asyncio, trio and anyio alike.

Threads and executors get a copy of the submitter's context per job, made
at submission: a pool thread keeps whatever its previous job left in its own
context, so nothing here ever relies on a thread starting empty.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Generator,
    Iterator,
)
from contextvars import Context, copy_context
from types import TracebackType
from typing import Any, ParamSpec, TypeVar, final

from ._scope import PushRequests, Scope, _push_all, _resolve, worker_context

__all__ = [
    "ScopedCoroutine",
    "ScopedExecutor",
    "run_in_executor",
    "scope_ambient",
    "scoped_aiter",
    "scoped_iter",
    "spawn",
    "to_thread",
    "worker",
]

P = ParamSpec("P")
R = TypeVar("R")
Y = TypeVar("Y")
S = TypeVar("S")

_Exc = type[BaseException] | BaseException


def _context_of(scope: Scope) -> Context:
    return scope._ctx.copy()  # noqa: SLF001 - Scope's own package


def _worker_context(scope: Scope | None, push: PushRequests | None) -> Context:
    """The context a worker runs in; pushes are narrowed here, in the caller."""
    ctx = worker_context() if scope is None else _context_of(scope)
    if push:
        ctx.run(_push_all, [(_resolve(k), v) for k, v in push.items()])
    return ctx


def _throw_args(
    typ: _Exc, val: object, tb: TracebackType | None
) -> tuple[Any, ...]:
    """
    Forward a throw() as it came: the one-argument form where it can be,
    since the three-argument form is deprecated from Python 3.12.
    """
    return (typ,) if val is None and tb is None else (typ, val, tb)


def _require_coroutine(coro: object, fn: str) -> None:
    if not isinstance(coro, Coroutine):
        hint = (
            "; call the async function to get one"
            if inspect.iscoroutinefunction(coro)
            else ""
        )
        msg = f"{fn}() takes a coroutine, got {coro!r}{hint}"
        raise TypeError(msg)


@final
class ScopedCoroutine(Coroutine[Any, Any, R]):
    """
    A coroutine that steps another under its own `Context`.

    Every `send` (and `__next__`), `throw` and `close` runs inside the
    context, so the inner coroutine sees its scope and its pushes stay
    there, whichever task, event loop or thread steps it. `.scope` is the context's state so far
    (its final state once the coroutine is done).

    Made by `scope_ambient()` and `worker()`; see them.
    """

    __slots__ = ("_coro", "_ctx", "send")

    def __init__(self, coro: Coroutine[Any, Any, R], ctx: Context) -> None:
        self._coro = coro
        self._ctx = ctx
        # Steps are the hot path (every await of every step), so `send` is
        # a C-level partial in a slot rather than a method: no Python frame
        # per step, half the cost (benchmarks/bench_core.py).
        # (mypy cannot type a partial of Context.run, a ParamSpec method.)
        step = functools.partial(ctx.run, coro.send)  # type: ignore[call-arg]
        self.send: Callable[[Any], Any] = step

    def throw(
        self,
        typ: _Exc,
        val: object = None,
        tb: TracebackType | None = None,
        /,
    ) -> Any:
        """Throw into the inner coroutine under the context."""
        coro: Any = self._coro
        return self._ctx.run(coro.throw, *_throw_args(typ, val, tb))

    def close(self) -> None:
        """Close the inner coroutine under the context."""
        self._ctx.run(self._coro.close)

    def __await__(self) -> Generator[Any, None, R]:
        return self

    def __iter__(self) -> ScopedCoroutine[R]:
        return self

    def __next__(self) -> Any:
        return self.send(None)

    @property
    def scope(self) -> Scope:
        """The scope the inner coroutine has built up (final once done)."""
        return Scope(self._ctx.copy())

    # Introspection: event loops and debuggers look at these (trio checks
    # cr_frame); they describe the inner coroutine.
    @property
    def cr_frame(self) -> Any:
        return getattr(self._coro, "cr_frame", None)

    @property
    def cr_await(self) -> Any:
        return getattr(self._coro, "cr_await", None)

    @property
    def cr_running(self) -> bool:
        return bool(getattr(self._coro, "cr_running", False))

    @property
    def cr_code(self) -> Any:
        return getattr(self._coro, "cr_code", None)

    def __repr__(self) -> str:
        return f"<ScopedCoroutine {self._coro!r}>"


def scope_ambient(
    scope: Scope, coro: Coroutine[Any, Any, R]
) -> ScopedCoroutine[R]:
    """
    Run *coro* under its own copy of *scope*, on any event loop.

    Every step of the coroutine runs inside the copy (the reference's
    swap-in on poll-enter, swap-out on poll-exit), so it reads only its own
    stacks and its pushes never reach the task that steps it. Await it,
    make it a task body, or give it to trio/anyio.

    Raises:
        TypeError: *coro* is not a coroutine.

    Examples:
        >>> import asyncio, capscope as cs
        >>> s = cs.AmbientStack("doc_ambient", inherit=cs.Inherit.COPY)
        >>> async def body():
        ...     s.push("inside")
        ...     return s.top()
        >>> async def main():
        ...     wrapped = cs.scope_ambient(cs.Scope.current(), body())
        ...     return await wrapped, s.top(), wrapped.scope[s]
        >>> asyncio.run(main())
        ('inside', None, ('inside',))
    """
    _require_coroutine(coro, "scope_ambient")
    return ScopedCoroutine(coro, _context_of(scope))


def worker(
    coro: Coroutine[Any, Any, R],
    *,
    scope: Scope | None = None,
    push: PushRequests | None = None,
) -> ScopedCoroutine[R]:
    """
    Run *coro* as a worker: a new logical call stack under the worker
    capture of the caller (or under *scope*), on any event loop.

    *push* maps stacks (or names) to requested values; each is narrowed
    against what the worker inherits **here, in the caller**, so an
    over-wide request raises before anything starts. For trio and anyio,
    call it where the task is started:
    `nursery.start_soon(cs.worker, child())`, or with pushes,
    `nursery.start_soon(lambda: cs.worker(child(), push={...}))`.

    Raises:
        CeilingExceeded: a push asks for more than the worker inherits.
        TypeError: *coro* is not a coroutine.

    Examples:
        >>> import asyncio, capscope as cs
        >>> top = cs.AmbientStack("doc_worker", inherit=cs.Inherit.TOP)
        >>> async def child():
        ...     return top.frames()
        >>> async def main():
        ...     with top.pushed("outer"), top.pushed("inner"):
        ...         return await cs.worker(child(), push={top: "mine"})
        >>> asyncio.run(main())
        ('inner', 'mine')
    """
    _require_coroutine(coro, "worker")
    try:
        ctx = _worker_context(scope, push)
    except BaseException:
        coro.close()
        raise
    return ScopedCoroutine(coro, ctx)


def spawn(
    coro: Coroutine[Any, Any, R],
    *,
    scope: Scope | None = None,
    push: PushRequests | None = None,
    name: str | None = None,
) -> asyncio.Task[R]:
    """
    Start *coro* as an asyncio task that is a worker (see `worker`).

    The event loop runs each step in the worker's context
    (`create_task(..., context=...)`), so this costs no more per step than
    a plain task. *push* is narrowed here, before the task exists.

    Raises:
        CeilingExceeded: a push asks for more than the worker inherits; the
            coroutine is closed and no task is made.

    Examples:
        >>> import asyncio, capscope as cs
        >>> s = cs.AmbientStack("doc_spawn", inherit=cs.Inherit.COPY)
        >>> async def child():
        ...     return s.frames()
        >>> async def main():
        ...     with s.pushed("parent"):
        ...         return await cs.spawn(child(), push={s: "child"})
        >>> asyncio.run(main())
        ('parent', 'child')
    """
    try:
        loop = asyncio.get_running_loop()
        _require_coroutine(coro, "spawn")
        ctx = _worker_context(scope, push)
    except BaseException:
        if isinstance(coro, Coroutine):
            coro.close()
        raise
    return loop.create_task(coro, name=name, context=ctx)


async def to_thread(
    fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> R:
    """
    Run *fn* in the default executor's thread under a copy of the caller's
    scope (the same agent: frame state is shared). Like
    `asyncio.to_thread`, named here so that carrying the scope is explicit.

    Examples:
        >>> import asyncio, capscope as cs
        >>> s = cs.AmbientStack("doc_to_thread", inherit=cs.Inherit.COPY)
        >>> async def main():
        ...     with s.pushed("carried"):
        ...         return await cs.to_thread(s.top)
        >>> asyncio.run(main())
        'carried'
    """
    loop = asyncio.get_running_loop()
    call = functools.partial(copy_context().run, fn, *args, **kwargs)
    return await loop.run_in_executor(None, call)


def run_in_executor(
    executor: concurrent.futures.Executor | None,
    fn: Callable[..., R],
    /,
    *args: Any,
) -> Awaitable[R]:
    """
    Run *fn* in *executor* under a copy of the caller's scope.

    Like `loop.run_in_executor`, which carries no context at all.

    Examples:
        >>> import asyncio, capscope as cs
        >>> s = cs.AmbientStack("doc_run_in_executor", inherit=cs.Inherit.COPY)
        >>> async def main():
        ...     with s.pushed("carried"):
        ...         return await cs.run_in_executor(None, s.top)
        >>> asyncio.run(main())
        'carried'
    """
    loop = asyncio.get_running_loop()
    return loop.run_in_executor(executor, copy_context().run, fn, *args)


@final
class ScopedExecutor(concurrent.futures.Executor):
    """
    Wrap a thread-pool executor so every job runs in a fresh copy of its
    submitter's scope.

    A pool thread keeps whatever its previous job left in its context; jobs
    submitted through this wrapper never see it, and never leave anything
    for the next. `map` submits each item as its own job. Shutting the
    wrapper down shuts the executor down.

    Examples:
        >>> import capscope as cs
        >>> from concurrent.futures import ThreadPoolExecutor
        >>> s = cs.AmbientStack("doc_executor", inherit=cs.Inherit.COPY)
        >>> with cs.ScopedExecutor(ThreadPoolExecutor(2)) as pool, s.pushed("job"):
        ...     pool.submit(s.top).result()
        'job'
    """

    def __init__(self, executor: concurrent.futures.Executor) -> None:
        self._executor = executor

    @property
    def executor(self) -> concurrent.futures.Executor:
        """The wrapped executor."""
        return self._executor

    def submit(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> concurrent.futures.Future[R]:
        """Submit *fn* to run under a copy of the caller's scope."""
        call = functools.partial(copy_context().run, fn, *args, **kwargs)
        return self._executor.submit(call)

    def shutdown(
        self,
        wait: bool = True,  # noqa: FBT001, FBT002 - Executor's signature
        *,
        cancel_futures: bool = False,
    ) -> None:
        """Shut the wrapped executor down."""
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)

    def __repr__(self) -> str:
        return f"<ScopedExecutor {self._executor!r}>"


@final
class ScopedIterator(Generator[Y, S, None]):
    """A generator stepped under its own Context; see `scoped_iter`."""

    __slots__ = ("_ctx", "_gen")

    def __init__(self, gen: Iterator[Y], ctx: Context) -> None:
        self._gen = gen
        self._ctx = ctx

    def __next__(self) -> Y:
        return self._ctx.run(next, self._gen)

    def send(self, value: S, /) -> Y:
        """Send *value* into the generator under the context."""
        return self._ctx.run(self._gen.send, value)  # type: ignore[attr-defined, no-any-return]

    def throw(
        self,
        typ: _Exc,
        val: object = None,
        tb: TracebackType | None = None,
        /,
    ) -> Y:
        """Throw into the generator under the context."""
        gen: Any = self._gen
        return self._ctx.run(gen.throw, *_throw_args(typ, val, tb))  # type: ignore[no-any-return]

    def close(self) -> None:
        """Close the generator under the context."""
        close = getattr(self._gen, "close", None)
        if close is not None:
            self._ctx.run(close)

    @property
    def scope(self) -> Scope:
        """The scope the generator has built up so far."""
        return Scope(self._ctx.copy())


def scoped_iter(scope: Scope, gen: Iterator[Y]) -> ScopedIterator[Y, Any]:
    """
    Step *gen* under its own copy of *scope*: its pushes persist from one
    step to the next but never reach the consumer, and a consumer's pushes
    never reach it.

    Examples:
        >>> import capscope as cs
        >>> s = cs.AmbientStack("doc_scoped_iter", inherit=cs.Inherit.COPY)
        >>> def body():
        ...     s.push("gen")
        ...     yield s.top()
        ...     yield s.top()
        >>> it = cs.scoped_iter(cs.Scope.current(), body())
        >>> next(it), s.top(), next(it)
        ('gen', None, 'gen')
    """
    if not isinstance(gen, Iterator):
        msg = f"scoped_iter() takes an iterator or generator, got {gen!r}"
        raise TypeError(msg)
    return ScopedIterator(gen, _context_of(scope))


@final
class ScopedAsyncIterator(AsyncGenerator[Y, S]):
    """An async generator stepped under its own Context; see `scoped_aiter`."""

    __slots__ = ("_agen", "_ctx")

    def __init__(self, agen: AsyncIterator[Y], ctx: Context) -> None:
        self._agen = agen
        self._ctx = ctx

    def __anext__(self) -> ScopedCoroutine[Y]:
        return ScopedCoroutine(self._agen.__anext__(), self._ctx)  # type: ignore[arg-type]

    def asend(self, value: S, /) -> ScopedCoroutine[Y]:
        """Send *value* into the async generator under the context."""
        agen: Any = self._agen
        return ScopedCoroutine(agen.asend(value), self._ctx)

    def athrow(
        self,
        typ: _Exc,
        val: object = None,
        tb: TracebackType | None = None,
        /,
    ) -> ScopedCoroutine[Y]:
        """Throw into the async generator under the context."""
        agen: Any = self._agen
        return ScopedCoroutine(
            agen.athrow(*_throw_args(typ, val, tb)), self._ctx
        )

    async def aclose(self) -> None:
        """Close the async generator under the context."""
        aclose = getattr(self._agen, "aclose", None)
        if aclose is not None:
            await ScopedCoroutine(aclose(), self._ctx)

    @property
    def scope(self) -> Scope:
        """The scope the async generator has built up so far."""
        return Scope(self._ctx.copy())


def scoped_aiter(
    scope: Scope, agen: AsyncIterator[Y]
) -> ScopedAsyncIterator[Y, Any]:
    """
    Step the async generator *agen* under its own copy of *scope*, like
    `scoped_iter`.

    Examples:
        >>> import asyncio, capscope as cs
        >>> s = cs.AmbientStack("doc_scoped_aiter", inherit=cs.Inherit.COPY)
        >>> async def body():
        ...     s.push("agen")
        ...     yield s.top()
        >>> async def main():
        ...     return [v async for v in cs.scoped_aiter(cs.Scope.current(), body())], s.top()
        >>> asyncio.run(main())
        (['agen'], None)
    """
    if not isinstance(agen, AsyncIterator):
        msg = f"scoped_aiter() takes an async iterator, got {agen!r}"
        raise TypeError(msg)
    return ScopedAsyncIterator(agen, _context_of(scope))
