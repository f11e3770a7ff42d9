"""
Model-based property tests of the core contract (docs/concepts.md,
semantics 1-3 and 6).

Hypothesis draws a *program*: for each of 8-12 concurrent tasks, a list of
operations (push, pop, counter raise/lower, yield, sleep, spawn a child
task, hop to a thread, run an executor job, pollute a pool thread). Every
task runs its program against the real stacks and, in lockstep, against a
plain-Python model (a list of values per stack and an int for the
counter), and compares the two after every single operation (so there is
no separate "check" operation). The tasks interleave for real: yields and
sleeps hand the loop to siblings in the middle of their programs. Each
task ends by undoing its own pushes and raises, innermost first, and must
then read exactly what it started with; the root that started the tasks
must read exactly its own frames once they have all ended.

The model, in a few lines:

- a worker (`cs.spawn`, `cs.worker`) starts from its parent's lists
  filtered by each stack's inherit mode (COPY: the whole list, TOP: the
  last value only, NONE: nothing) and a counter of 0;
- an inline capture (plain `asyncio.create_task`, trio's plain
  `start_soon`, `cs.scope_ambient(cs.Scope.current(), ...)`, a thread hop,
  an executor job) starts from exact copies of the caller's lists and
  counter;
- whatever a task, a thread or a job pushes stays with it: the caller's
  lists never change but by its own pushes and pops.

Pushed values are unique (the task's path and a sequence number), so a
value that leaks into a sibling can never be mistaken for the sibling's.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

import trio
from hypothesis import given, settings
from hypothesis import strategies as st

import capscope as cs

# Unregistered on purpose: worker captures must follow the inherit mode of
# every AmbientStack instance, registered or not (semantics 3).
COPY_STACK = cs.AmbientStack("model_copy", inherit=cs.Inherit.COPY)
TOP_STACK = cs.AmbientStack("model_top", inherit=cs.Inherit.TOP)
NONE_STACK = cs.AmbientStack("model_none", inherit=cs.Inherit.NONE)
STACKS = (COPY_STACK, TOP_STACK, NONE_STACK)
COUNTER = cs.AmbientCounter("model_counter")
COUNTER_INDEX = len(STACKS)  # the counter's place in an Actor's journal

R = TypeVar("R")

MAX_CHILD_DEPTH = 2  # a top-level task's children may have children
TASKS = (8, 12)  # how many top-level tasks run at once


# --------------------------------------------------------------------------
# The model


def inherited(mode: cs.Inherit, values: list[str]) -> list[str]:
    """What a worker gets of a stack holding *values* (the model's rule)."""
    if mode is cs.Inherit.COPY:
        return list(values)
    if mode is cs.Inherit.TOP:
        return values[-1:]
    return []


#: (frames per stack, top per stack, depth per stack, counter value)
State = tuple[
    tuple[tuple[str, ...], ...], tuple[str | None, ...], tuple[int, ...], int
]


def make_state(stacks: Sequence[Sequence[str]], counter: int) -> State:
    return (
        tuple(tuple(values) for values in stacks),
        tuple(values[-1] if values else None for values in stacks),
        tuple(len(values) for values in stacks),
        counter,
    )


@dataclass
class Model:
    """One logical task's stacks (lists of values) and counter."""

    stacks: list[list[str]] = field(default_factory=lambda: [[], [], []])
    counter: int = 0

    def inline(self) -> Model:
        """An inline capture: the same agent, everything copied."""
        return Model([list(values) for values in self.stacks], self.counter)

    def worker(self) -> Model:
        """A worker capture: each stack's inherit mode, counter 0."""
        stacks = [
            inherited(stack.inherit, values)
            for stack, values in zip(STACKS, self.stacks, strict=True)
        ]
        return Model(stacks, 0)

    def state(self) -> State:
        return make_state(self.stacks, self.counter)

    def plus(self, tag: str) -> State:
        """The state after pushing *tag* everywhere and raising once."""
        return make_state(
            [[*values, tag] for values in self.stacks], self.counter + 1
        )


def read_state() -> State:
    """The real stacks and counter of the running context."""
    return (
        tuple(stack.frames() for stack in STACKS),
        tuple(stack.top() for stack in STACKS),
        tuple(stack.depth for stack in STACKS),
        COUNTER.value,
    )


def push_everywhere(tag: str) -> None:
    """Push *tag* on every stack and raise the counter, undoing nothing."""
    for stack in STACKS:
        stack.push(tag)
    COUNTER.raised().__enter__()


def hop(tag: str) -> tuple[State, State]:
    """
    A thread or executor body: read everything, then leave a frame pushed
    on every stack and the counter raised, as a careless job would.
    """
    seen = read_state()
    push_everywhere(tag)
    return seen, read_state()


# --------------------------------------------------------------------------
# Programs


class Push(NamedTuple):
    stack: int  # index into STACKS


class Pop(NamedTuple):
    stack: int  # pops this task's own innermost frame there, if any


class Raise(NamedTuple):
    pass


class Lower(NamedTuple):
    pass  # leaves this task's innermost raised() block, if any


class Yield(NamedTuple):
    pass


class Sleep(NamedTuple):
    seconds: float


class ThreadHop(NamedTuple):
    pass


class ExecutorJob(NamedTuple):
    pass


class Pollute(NamedTuple):
    """A raw (unscoped) job that leaves frames in a pool thread's context."""


class Spawn(NamedTuple):
    kind: str  # how the child starts; see the runtimes' start()
    join_now: bool  # await it at once, or when this task's program ends
    ops: tuple[Any, ...]


#: How a child starts, and whether that is a worker capture.
WORKER_KINDS = frozenset({"spawn", "worker"})
ASYNCIO_KINDS = ("spawn", "worker", "task", "ambient")
TRIO_KINDS = ("worker", "task", "ambient")


def ops_strategy(
    kinds: Sequence[str], depth: int, max_size: int
) -> st.SearchStrategy[tuple[Any, ...]]:
    """Programs for one task; children (at most MAX_CHILD_DEPTH deep)."""
    index = st.integers(0, len(STACKS) - 1)
    leaf = st.one_of(
        st.builds(Push, index),
        st.builds(Pop, index),
        st.just(Yield()),
        st.just(Raise()),
        st.just(Lower()),
        st.builds(Sleep, st.sampled_from([0.0001, 0.001])),
        st.just(ThreadHop()),
        st.just(ExecutorJob()),
        st.just(Pollute()),
    )
    if depth < MAX_CHILD_DEPTH:
        child = st.builds(
            Spawn,
            st.sampled_from(kinds),
            st.booleans(),
            ops_strategy(kinds, depth + 1, max_size=max_size // 2),
        )
        op = st.one_of(leaf, child)
    else:
        op = leaf
    return st.lists(op, max_size=max_size).map(tuple)


def programs(kinds: Sequence[str]) -> st.SearchStrategy[Any]:
    return st.lists(
        ops_strategy(kinds, 0, max_size=10),
        min_size=TASKS[0],
        max_size=TASKS[1],
    ).map(tuple)


# --------------------------------------------------------------------------
# Runtimes: the same program under asyncio and under trio


class Runtime(Protocol):
    def group(self) -> contextlib.AbstractAsyncContextManager[Any]: ...

    async def start(
        self, kind: str, child: Actor, group: Any, *, join_now: bool
    ) -> None: ...

    async def sleep(self, seconds: float) -> None: ...

    async def thread_hop(self, tag: str) -> tuple[State, State]: ...

    async def executor_job(self, tag: str) -> tuple[State, State]: ...

    async def pollute(self, tag: str) -> None: ...


class AsyncioRuntime:
    def __init__(self, pool: cs.ScopedExecutor) -> None:
        self.pool = pool

    @contextlib.asynccontextmanager
    async def group(self) -> AsyncIterator[list[Awaitable[None]]]:
        """Children to join when the task's program ends, in order."""
        pending: list[Awaitable[None]] = []
        try:
            yield pending
        except BaseException:
            # Still retrieve every child's outcome: no "exception was never
            # retrieved" noise under the real failure.
            await asyncio.gather(*pending, return_exceptions=True)
            raise
        for outcome in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(outcome, BaseException):
                raise outcome

    async def start(
        self,
        kind: str,
        child: Actor,
        group: list[Awaitable[None]],
        *,
        join_now: bool,
    ) -> None:
        coro = child.run()
        awaitable: Awaitable[None]
        if kind == "spawn":
            awaitable = cs.spawn(coro, name=child.path)
        elif kind == "task":
            awaitable = asyncio.create_task(coro, name=child.path)
        else:
            # Coroutines: awaited in place, or made the body of a task.
            if kind == "worker":
                wrapped = cs.worker(coro)
            else:
                assert kind == "ambient"
                wrapped = cs.scope_ambient(cs.Scope.current(), coro)
            awaitable = (
                wrapped
                if join_now
                else asyncio.create_task(wrapped, name=child.path)
            )
        if join_now:
            await awaitable
        else:
            group.append(awaitable)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)

    async def thread_hop(self, tag: str) -> tuple[State, State]:
        return await cs.to_thread(hop, tag)

    async def executor_job(self, tag: str) -> tuple[State, State]:
        return await asyncio.wrap_future(self.pool.submit(hop, tag))

    async def pollute(self, tag: str) -> None:
        # Unscoped on purpose: these run in the pool threads' own contexts
        # and leave frames there for the next (scoped) job to ignore.
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, push_everywhere, tag + "/default")
        await loop.run_in_executor(
            self.pool.executor, push_everywhere, tag + "/pool"
        )


class TrioRuntime:
    def __init__(self, pool: cs.ScopedExecutor) -> None:
        self.pool = pool

    def group(self) -> contextlib.AbstractAsyncContextManager[Any]:
        return trio.open_nursery()

    async def start(
        self,
        kind: str,
        child: Actor,
        group: trio.Nursery,
        *,
        join_now: bool,
    ) -> None:
        if join_now and kind == "worker":
            await cs.worker(child.run())
        elif join_now and kind == "ambient":
            await cs.scope_ambient(cs.Scope.current(), child.run())
        elif join_now:
            async with trio.open_nursery() as nursery:
                self._start_soon(kind, child, nursery)
        else:
            self._start_soon(kind, child, group)

    @staticmethod
    def _start_soon(kind: str, child: Actor, nursery: trio.Nursery) -> None:
        if kind == "worker":
            nursery.start_soon(cs.worker, child.run(), name=child.path)
        elif kind == "task":
            nursery.start_soon(child.run, name=child.path)
        else:
            assert kind == "ambient"
            scope = cs.Scope.current()
            nursery.start_soon(
                cs.scope_ambient, scope, child.run(), name=child.path
            )

    async def sleep(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def thread_hop(self, tag: str) -> tuple[State, State]:
        bound = cs.Scope.current().bind(hop)
        return await trio.to_thread.run_sync(bound, tag)

    async def executor_job(self, tag: str) -> tuple[State, State]:
        return await wait_future(self.pool.submit(hop, tag))

    async def pollute(self, tag: str) -> None:
        # Unscoped on purpose; see AsyncioRuntime.pollute.
        raw = self.pool.executor.submit(push_everywhere, tag + "/pool")
        await wait_future(raw)


async def wait_future(future: Future[R]) -> R:
    """Await a concurrent.futures.Future from trio, without a thread."""
    done = trio.Event()
    token = trio.lowlevel.current_trio_token()
    future.add_done_callback(lambda _: token.run_sync_soon(done.set))
    await done.wait()
    return future.result()


# --------------------------------------------------------------------------
# A task running its program against the stacks and the model in lockstep


class Actor:
    def __init__(
        self,
        path: str,
        model: Model,
        ops: tuple[Any, ...],
        runtime: Runtime,
        depth: int = 0,
    ) -> None:
        self.path = path
        self.model = model
        self.start_state = model.state()
        self.ops = ops
        self.runtime = runtime
        self.depth = depth
        # What this task pushed and raised, in order: (stack index or
        # COUNTER_INDEX, frame token or raised() block).
        self.own: list[tuple[int, Any]] = []
        self.seq = itertools.count()
        self.children = itertools.count()

    def tag(self) -> str:
        return f"{self.path}:{next(self.seq)}"

    def check(self, where: str) -> None:
        actual, expected = read_state(), self.model.state()
        assert actual == expected, (
            f"{self.path} {where}: real (frames, tops, depths, counter) "
            f"{actual} != model {expected}"
        )

    def push(self, index: int) -> None:
        value = self.tag()
        self.own.append((index, STACKS[index].push(value)))
        self.model.stacks[index].append(value)

    def raise_counter(self) -> None:
        block = COUNTER.raised()
        block.__enter__()
        self.own.append((COUNTER_INDEX, block))
        self.model.counter += 1

    def undo(self, index: int) -> None:
        """
        Pop this task's innermost own frame on stack *index* (or leave its
        innermost raised() block); nothing if it has none there. Frames of
        other stacks pushed since stay: each stack unwinds on its own.
        """
        for position in range(len(self.own) - 1, -1, -1):
            if self.own[position][0] == index:
                _, handle = self.own.pop(position)
                break
        else:
            return
        if index == COUNTER_INDEX:
            handle.__exit__(None, None, None)
            self.model.counter -= 1
        else:
            STACKS[index].pop(handle)
            self.model.stacks[index].pop()

    def unwind(self, keep: int = 0) -> None:
        """Undo own pushes and raises, innermost first, leaving *keep*."""
        while len(self.own) > keep:
            index = self.own[-1][0]
            self.undo(index)
            self.check(f"unwinding {(*STACKS, COUNTER)[index].name}")

    async def run(self) -> None:
        self.check("at start")
        async with self.runtime.group() as group:
            for step, op in enumerate(self.ops):
                await self.apply(op, group)
                self.check(f"after step {step} {op!r:.60}")
            self.unwind()
            assert read_state() == self.start_state
        # Children joined at the end ran beside the unwinding: still ours.
        self.check("after joining its children")

    async def apply(self, op: Any, group: Any) -> None:
        match op:
            case Push(index):
                self.push(index)
            case Pop(index):
                self.undo(index)
            case Raise():
                self.raise_counter()
            case Lower():
                self.undo(COUNTER_INDEX)
            case Yield():
                await self.runtime.sleep(0)
            case Sleep(seconds):
                await self.runtime.sleep(seconds)
            case ThreadHop() | ExecutorJob():
                how = (
                    self.runtime.thread_hop
                    if isinstance(op, ThreadHop)
                    else self.runtime.executor_job
                )
                tag = self.tag()
                seen, after = await how(tag)
                assert seen == self.model.state(), (
                    f"{self.path} {op!r}: the thread saw {seen}, "
                    f"model {self.model.state()}"
                )
                assert after == self.model.plus(tag)
            case Pollute():
                await self.runtime.pollute(self.tag())
            case Spawn(kind, join_now, ops):
                model = (
                    self.model.worker()
                    if kind in WORKER_KINDS
                    else self.model.inline()
                )
                path = f"{self.path}/{kind}{next(self.children)}"
                child = Actor(path, model, ops, self.runtime, self.depth + 1)
                await self.runtime.start(kind, child, group, join_now=join_now)
            case _:  # pragma: no cover - the strategy makes no other op
                raise AssertionError(op)


# --------------------------------------------------------------------------
# The root: pushes frames, starts every task, checks restoration


async def run_root(
    program: tuple[tuple[Any, ...], ...],
    runtime: Runtime,
    start: Callable[[Actor, bool], Awaitable[None]],
) -> Actor:
    """
    Push a few frames, then start each task of *program* with *start*:
    even-numbered tasks as inline copies, odd-numbered ones as workers.
    One more frame goes on before each start, so each task starts from its
    own snapshot; those frames are popped again while the tasks run.
    Returns the root, which must read exactly its base frames once every
    task has ended.
    """
    root = Actor("root", Model(), (), runtime)
    for index in range(len(STACKS)):
        root.push(index)
        root.push(index)
    root.raise_counter()
    root.check("after setup")
    base = root.model.state()
    base_count = len(root.own)
    for number, ops in enumerate(program):
        root.push(number % len(STACKS))
        as_worker = number % 2 == 1
        model = root.model.worker() if as_worker else root.model.inline()
        path = f"t{number}{'w' if as_worker else 'i'}"
        await start(Actor(path, model, ops, runtime), as_worker)
        root.check(f"after starting task {number}")
    # Pop the per-task frames while the tasks run (they hold snapshots).
    root.unwind(keep=base_count)
    assert root.model.state() == base
    await runtime.sleep(0)
    root.check("after a yield")
    return root


def check_root_and_unwind(root: Actor) -> None:
    """Restoration: the root reads its base frames; then unwind to empty."""
    root.check("after every task ended")
    root.unwind()
    assert read_state() == EMPTY


EMPTY = make_state([[], [], []], 0)


async def asyncio_main(program: tuple[tuple[Any, ...], ...]) -> None:
    pool = cs.ScopedExecutor(ThreadPoolExecutor(2))
    try:
        tasks: list[asyncio.Task[None]] = []

        async def start(actor: Actor, as_worker: bool) -> None:
            if as_worker:
                tasks.append(cs.spawn(actor.run(), name=actor.path))
            else:
                tasks.append(asyncio.create_task(actor.run(), name=actor.path))

        try:
            root = await run_root(program, AsyncioRuntime(pool), start)
        finally:
            outcomes = await asyncio.gather(*tasks, return_exceptions=True)
        for outcome in outcomes:
            if isinstance(outcome, BaseException):
                raise outcome
        check_root_and_unwind(root)
    finally:
        pool.shutdown()


async def trio_main(program: tuple[tuple[Any, ...], ...]) -> None:
    pool = cs.ScopedExecutor(ThreadPoolExecutor(2))
    try:
        async with trio.open_nursery() as nursery:

            async def start(actor: Actor, as_worker: bool) -> None:
                if as_worker:
                    nursery.start_soon(cs.worker, actor.run(), name=actor.path)
                else:
                    nursery.start_soon(actor.run, name=actor.path)

            root = await run_root(program, TrioRuntime(pool), start)
        check_root_and_unwind(root)
    finally:
        pool.shutdown()


# --------------------------------------------------------------------------
# The properties


@settings(max_examples=400, deadline=None)
@given(program=programs(ASYNCIO_KINDS))
def test_asyncio_tasks_match_the_model(
    program: tuple[tuple[Any, ...], ...],
) -> None:
    asyncio.run(asyncio_main(program))
    assert read_state() == EMPTY


@settings(max_examples=150, deadline=None)
@given(program=programs(TRIO_KINDS))
def test_trio_tasks_match_the_model(
    program: tuple[tuple[Any, ...], ...],
) -> None:
    failure = None
    try:
        trio.run(trio_main, program)
    except BaseExceptionGroup as group:
        failure = first_failure(group)
    if failure is not None:
        # One plain exception, raised outside the handler: Hypothesis tells
        # failures apart by their exception groups' shapes, which would make
        # every interleaving a "distinct bug" and shrinking endless.
        raise failure
    assert read_state() == EMPTY


def first_failure(group: BaseExceptionGroup[Any]) -> BaseException:
    """The failure in a tree of nursery exception groups, chosen stably."""
    leaves: list[BaseException] = []
    pending: list[BaseException] = [group]
    while pending:
        exc = pending.pop()
        if isinstance(exc, BaseExceptionGroup):
            pending.extend(exc.exceptions)
        else:
            leaves.append(exc)
    return min(leaves, key=lambda exc: (type(exc).__name__, str(exc)))
