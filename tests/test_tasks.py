"""Propagation: tasks, workers, trio/anyio, threads, executors, generators."""

from __future__ import annotations

import asyncio
import contextvars
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest
import trio

import capscope as cs

COPY = cs.AmbientStack("t_copy", inherit=cs.Inherit.COPY)
TOP = cs.AmbientStack("t_top", inherit=cs.Inherit.TOP)
NONE = cs.AmbientStack("t_none", inherit=cs.Inherit.NONE)
DEPTH = cs.AmbientCounter("t_depth")


def _ceiling(outer: int | None, new: int) -> int:
    if outer is not None and new > outer:
        raise cs.CeilingExceeded("limit", outer, new)
    return new


LIMIT = cs.AmbientStack("t_limit", inherit=cs.Inherit.TOP, narrow=_ceiling)


def _state() -> tuple[object, ...]:
    return (COPY.frames(), TOP.frames(), NONE.frames(), DEPTH.value)


class _Yield:
    """An awaitable that yields to whoever steps the coroutine, n times."""

    def __init__(self, n: int = 1) -> None:
        self.n = n

    def __await__(self):
        for _ in range(self.n):
            yield


def _step_until_done(*coros):
    """Round-robin the coroutines by hand, in this one context."""
    results = {}
    pending = list(coros)
    while pending:
        for coro in list(pending):
            try:
                coro.send(None)
            except StopIteration as stop:
                results[coro] = stop.value
                pending.remove(coro)
    return [results[c] for c in coros]


class TestReferenceTests:
    """The reference module's two tests, ported."""

    async def _push_and_yield(self, name: str) -> tuple[object, ...]:
        TOP.push(name)
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return TOP.frames()

    @pytest.mark.asyncio
    async def test_scoped_tasks_do_not_cross_wire(self):
        """Two tasks push, yield twice, and each reads back only its own."""
        alpha = asyncio.create_task(
            cs.scope_ambient(cs.Scope.empty(), self._push_and_yield("alpha"))
        )
        beta = asyncio.create_task(
            cs.scope_ambient(cs.Scope.empty(), self._push_and_yield("beta"))
        )

        assert ("alpha",) == await alpha
        assert ("beta",) == await beta
        assert () == TOP.frames()

    @pytest.mark.asyncio
    async def test_scope_is_restored_after_completion(self):
        """A finished task's pushes never leak."""
        await asyncio.create_task(
            cs.scope_ambient(cs.Scope.empty(), self._push_and_yield("gamma"))
        )

        assert () == TOP.frames()

    def test_interleaved_by_hand_in_one_context(self):
        """
        Stepped alternately in a single context (one thread-local, as in the
        reference), scope_ambient still keeps each coroutine's pushes apart.
        """

        async def body(name: str) -> tuple[object, ...]:
            TOP.push(name)
            await _Yield(2)
            return TOP.frames()

        results = _step_until_done(
            cs.scope_ambient(cs.Scope.empty(), body("alpha")),
            cs.scope_ambient(cs.Scope.empty(), body("beta")),
        )

        assert [("alpha",), ("beta",)] == results
        assert () == TOP.frames()

    def test_unscoped_coroutines_would_cross_wire(self):
        """The control: without scope_ambient the same program cross-wires."""

        async def body(name: str) -> object:
            TOP.push(name)
            await _Yield(2)
            return TOP.top()

        outer = TOP._get()
        try:
            results = _step_until_done(body("alpha"), body("beta"))
        finally:
            TOP._set(outer)  # the control leaks by design; clean up

        assert ["beta", "beta"] == results


async def _asyncio_body(name: str, parent: tuple[object, ...]) -> None:
    """Push, interleave with siblings, and check only our own shows."""
    assert parent == _state(), "started from the wrong state"
    with (
        COPY.pushed(name),
        TOP.pushed(name),
        NONE.pushed(name),
        DEPTH.raised(),
    ):
        for _ in range(5):
            await asyncio.sleep(random.choice((0, 0, 0.001)))
            assert (name, name, name) == (COPY.top(), TOP.top(), NONE.top())
    assert parent == _state()


class TestAsyncioIsolation:
    N = 12

    @pytest.mark.asyncio
    @pytest.mark.parametrize(
        "start", ["create_task", "spawn", "scope_ambient_task", "worker_task"]
    )
    async def test_siblings_read_only_their_own(self, start):
        """Concurrent tasks each push, interleave, and read back their own."""
        with COPY.pushed("parent"), TOP.pushed("parent"), NONE.pushed("p"):
            inline = _state()
            worker = (("parent",), ("parent",), (), 0)
            tasks = []
            for i in range(self.N):
                if start == "create_task":
                    t = asyncio.create_task(_asyncio_body(f"t{i}", inline))
                elif start == "spawn":
                    t = cs.spawn(_asyncio_body(f"t{i}", worker), name=f"w{i}")
                elif start == "scope_ambient_task":
                    coro = cs.scope_ambient(
                        cs.Scope.current(), _asyncio_body(f"t{i}", inline)
                    )
                    t = asyncio.create_task(coro)
                else:
                    t = asyncio.create_task(
                        cs.worker(_asyncio_body(f"t{i}", worker))
                    )
                tasks.append(t)
            await asyncio.gather(*tasks)
            assert inline == _state()

    @pytest.mark.asyncio
    async def test_inline_scope_ambient_keeps_pushes_inside(self):
        """Awaited in the current task, its pushes stay in its own scope."""

        async def body() -> object:
            COPY.push("inner")
            await asyncio.sleep(0)
            return COPY.frames()

        with COPY.pushed("outer"):
            wrapped = cs.scope_ambient(cs.Scope.current(), body())

            assert ("outer", "inner") == await wrapped
            assert ("outer",) == COPY.frames()
            assert ("outer", "inner") == wrapped.scope[COPY]

    @pytest.mark.asyncio
    async def test_spawn_names_the_task(self):
        """spawn passes name= to the task."""
        task = cs.spawn(asyncio.sleep(0), name="named-worker")
        await task

        assert "named-worker" == task.get_name()

    @pytest.mark.asyncio
    async def test_spawn_with_an_explicit_scope(self):
        """scope= runs the task under exactly that scope."""
        scope = cs.Scope.empty().pushing({COPY: "given"})

        async def body() -> object:
            return COPY.frames()

        with COPY.pushed("ignored"):
            assert ("given",) == await cs.spawn(body(), scope=scope)


class TestPushRequests:
    @pytest.mark.asyncio
    async def test_push_is_narrowed_against_what_the_worker_inherits(self):
        """A worker may narrow its inherited ceiling."""

        async def body() -> object:
            return LIMIT.frames()

        with LIMIT.pushed(10), LIMIT.pushed(5):
            assert (5, 3) == await cs.spawn(body(), push={LIMIT: 3})
            assert (5, 4) == await cs.worker(body(), push={LIMIT: 4})

    @pytest.mark.asyncio
    async def test_widening_raises_before_the_task_exists(self):
        """An over-wide push raises in the parent; no task is created."""
        ran = []

        async def body() -> None:
            ran.append(True)  # pragma: no cover - must not run

        with LIMIT.pushed(5):
            before = asyncio.all_tasks()
            with pytest.raises(cs.CeilingExceeded, match="limit"):
                cs.spawn(body(), push={LIMIT: 6})
            with pytest.raises(cs.CeilingExceeded, match="limit"):
                cs.worker(body(), push={LIMIT: 6})
            await asyncio.sleep(0)

            assert before == asyncio.all_tasks()
        assert [] == ran

    @pytest.mark.asyncio
    async def test_push_by_unknown_name(self):
        """An unknown stack name is a RegistryError, raised in the parent."""
        with pytest.raises(cs.RegistryError, match="nope"):
            cs.spawn(asyncio.sleep(0), push={"nope": 1})


class TestTypeErrors:
    def test_scope_ambient_takes_a_coroutine(self):
        """An async function (not called) is refused with a hint."""

        async def fn() -> None:
            pass  # pragma: no cover

        with pytest.raises(TypeError, match="call the async function"):
            cs.scope_ambient(cs.Scope.empty(), fn)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="coroutine"):
            cs.worker(42)  # type: ignore[arg-type]

    @pytest.mark.asyncio
    async def test_spawn_takes_a_coroutine(self):
        """spawn refuses a non-coroutine before capturing anything."""
        with pytest.raises(TypeError, match="coroutine"):
            cs.spawn(None)  # type: ignore[arg-type]

    def test_spawn_needs_a_running_loop(self):
        """Outside an event loop spawn raises, and closes the coroutine."""
        coro = asyncio.sleep(0)
        with pytest.raises(RuntimeError):
            cs.spawn(coro)
        assert coro.cr_frame is None  # closed: no "never awaited" warning


class TestRestoration:
    @pytest.mark.asyncio
    async def test_exception_inside(self):
        """An exception in a scoped coroutine leaves the caller intact."""

        async def boom() -> None:
            COPY.push("inside")
            await asyncio.sleep(0)
            raise KeyError("boom")

        with COPY.pushed("caller"):
            with pytest.raises(KeyError):
                await cs.scope_ambient(cs.Scope.current(), boom())
            with pytest.raises(KeyError):
                await cs.spawn(boom())
            assert ("caller",) == COPY.frames()

    @pytest.mark.asyncio
    async def test_cancellation_at_an_await_point(self):
        """Cancelled mid-await, a worker unwinds; the caller is intact."""
        inside = asyncio.Event()
        unwound = []

        async def body() -> None:
            with COPY.pushed("inside"):
                inside.set()
                try:
                    await asyncio.sleep(10)
                finally:
                    unwound.append(COPY.frames())

        with COPY.pushed("caller"):
            for start in (
                cs.spawn,
                lambda c: asyncio.create_task(cs.worker(c)),
            ):
                inside.clear()
                task = start(body())
                await inside.wait()
                task.cancel()
                with pytest.raises(asyncio.CancelledError):
                    await task
                assert ("caller",) == COPY.frames()
        assert [("caller", "inside")] * 2 == unwound

    @pytest.mark.asyncio
    async def test_cancelling_the_awaiter_of_inline_scope_ambient(self):
        """Cancellation thrown through scope_ambient reaches the body."""
        inside = asyncio.Event()

        async def body() -> None:
            COPY.push("inner")
            inside.set()
            await asyncio.sleep(10)

        async def outer() -> object:
            with COPY.pushed("outer"):
                try:
                    await cs.scope_ambient(cs.Scope.current(), body())
                except asyncio.CancelledError:
                    return COPY.frames()
            return None  # pragma: no cover

        task = asyncio.create_task(outer())
        await inside.wait()
        task.cancel()

        assert ("outer",) == await task

    def test_trio_cancellation(self):
        """Under trio, a cancelled worker unwinds and the parent is intact."""
        unwound = []

        async def body(started: trio.Event) -> None:
            with COPY.pushed("inside"):
                started.set()
                try:
                    await trio.sleep(10)
                finally:
                    unwound.append(COPY.frames())

        async def main() -> object:
            with COPY.pushed("parent"):
                async with trio.open_nursery() as nursery:
                    started = trio.Event()
                    nursery.start_soon(cs.worker, body(started))
                    await started.wait()
                    nursery.cancel_scope.cancel()
                return COPY.frames()

        assert ("parent",) == trio.run(main)
        assert [("parent", "inside")] == unwound


async def _trio_body(name: str, parent: tuple[object, ...], out: list) -> None:
    assert parent == _state()
    with (
        COPY.pushed(name),
        TOP.pushed(name),
        NONE.pushed(name),
        DEPTH.raised(),
    ):
        for _ in range(5):
            await trio.sleep(random.choice((0, 0, 0.001)))
            assert (name, name, name) == (COPY.top(), TOP.top(), NONE.top())
    out.append(name)


class TestTrioAndAnyio:
    N = 12

    def test_trio_workers(self):
        """cs.worker under trio: worker capture, isolated siblings."""
        done: list[str] = []

        async def main() -> object:
            with (
                COPY.pushed("p"),
                TOP.pushed("p1"),
                TOP.pushed("p2"),
                NONE.pushed("n"),
                DEPTH.raised(),
            ):
                expected = (("p",), ("p2",), (), 0)
                async with trio.open_nursery() as nursery:
                    for i in range(self.N):
                        nursery.start_soon(
                            cs.worker, _trio_body(f"w{i}", expected, done)
                        )
                return _state()

        assert (("p",), ("p1", "p2"), ("n",), 1) == trio.run(main)
        assert self.N == len(done)

    def test_trio_worker_push(self):
        """worker(push=...) under trio, started through a lambda."""

        async def body(out: list) -> None:
            out.append(LIMIT.frames())

        async def main() -> list:
            out: list = []
            with LIMIT.pushed(5):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(
                        lambda: cs.worker(body(out), push={LIMIT: 2})
                    )
            return out

        assert [(5, 2)] == trio.run(main)

    @pytest.mark.parametrize("backend", ["asyncio", "trio"])
    def test_anyio_workers(self, backend):
        """cs.worker in an anyio task group, on both backends."""
        seen: list[tuple[str, object]] = []

        async def body(name: str) -> None:
            with TOP.pushed(name):
                for _ in range(4):
                    await anyio.sleep(random.choice((0, 0.001)))
                    seen.append((name, TOP.frames()))

        async def main() -> object:
            with TOP.pushed("parent"):
                async with anyio.create_task_group() as tg:
                    for i in range(self.N):
                        tg.start_soon(cs.worker, body(f"a{i}"))
                return TOP.frames()

        assert ("parent",) == anyio.run(main, backend=backend)
        assert 4 * self.N == len(seen)
        assert all(frames == ("parent", name) for name, frames in seen)


class TestThreads:
    @pytest.mark.asyncio
    async def test_to_thread_carries_and_isolates(self):
        """Each task's to_thread job sees that task's scope, concurrently."""
        # The default executor has at least 5 threads (min(32, cpus + 4)).
        barrier = threading.Barrier(4)

        def job() -> object:
            barrier.wait(timeout=5)  # all jobs are in their threads at once
            time.sleep(random.random() / 100)
            COPY.push("thread-leak")  # stays in the job's copy
            return COPY.frames()

        async def task(name: str) -> object:
            with COPY.pushed(name):
                seen = await cs.to_thread(job)
                assert (name,) == COPY.frames()
                return seen

        results = await asyncio.gather(*(task(f"t{i}") for i in range(4)))

        assert [(f"t{i}", "thread-leak") for i in range(4)] == results

    @pytest.mark.asyncio
    async def test_run_in_executor_carries_the_scope(self):
        """run_in_executor carries; the plain loop method does not."""
        loop = asyncio.get_running_loop()
        with ThreadPoolExecutor(1) as pool, COPY.pushed("caller"):
            carried = await cs.run_in_executor(pool, COPY.frames)
            plain = await loop.run_in_executor(pool, COPY.frames)

        assert (("caller",), ()) == (carried, plain)

    def test_scoped_executor_isolates_jobs(self):
        """Each job runs in its own submitter's scope, concurrently."""
        barrier = threading.Barrier(4)

        def job() -> object:
            barrier.wait(timeout=5)
            time.sleep(random.random() / 100)
            return COPY.frames()

        results = {}
        with cs.ScopedExecutor(ThreadPoolExecutor(4)) as pool:

            def submitter(name: str) -> None:
                with COPY.pushed(name):
                    results[name] = pool.submit(job).result()

            threads = [
                threading.Thread(target=submitter, args=(f"s{i}",))
                for i in range(4)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        assert {f"s{i}": (f"s{i}",) for i in range(4)} == results

    def test_pool_thread_leftovers_are_never_seen(self):
        """
        A pool thread keeps what an unscoped job leaked in its context; a job
        through ScopedExecutor must not see it, and leaks nothing itself.
        """

        def leak() -> None:
            COPY.push("leaked by a previous job")

        def leak_and_read() -> object:
            frames = COPY.frames()
            COPY.push("leaked by a scoped job")
            return frames

        with ThreadPoolExecutor(1) as raw:
            pool = cs.ScopedExecutor(raw)
            raw.submit(leak).result()

            # The hazard is real: an unscoped job on that thread sees it.
            assert ("leaked by a previous job",) == raw.submit(
                COPY.frames
            ).result()

            with COPY.pushed("submitter"):
                first = pool.submit(leak_and_read).result()
                second = pool.submit(leak_and_read).result()
            mapped = list(pool.map(lambda _: COPY.frames(), range(3)))

        assert ("submitter",) == first == second
        assert [(), (), ()] == mapped

    def test_scoped_executor_forwards_shutdown(self):
        """Shutting the wrapper down shuts the executor down."""
        raw = ThreadPoolExecutor(1)
        pool = cs.ScopedExecutor(raw)
        pool.shutdown()

        assert pool.executor is raw
        with pytest.raises(RuntimeError):
            raw.submit(int)

    def test_new_threads_start_empty(self):
        """A plain Thread sees nothing; a bound one sees its scope."""
        seen = {}
        with COPY.pushed("parent"):
            scope = cs.Scope.current()

            def read(key: str) -> None:
                seen[key] = COPY.frames()

            threads = [
                threading.Thread(target=read, args=("plain",)),
                threading.Thread(target=scope.bind(read), args=("bound",)),
            ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()

        assert {"plain": (), "bound": ("parent",)} == seen


class TestGenerators:
    def test_generator_closed_from_another_task(self):
        """
        A generator that pushes, suspended in one task and closed from
        another, does not touch the closer's stack; it warns, never raises.
        """

        def gen():
            with COPY.pushed("gen"):
                yield COPY.frames()

        async def main() -> object:
            g = gen()

            async def first_step() -> object:
                return next(g)

            seen = await asyncio.create_task(first_step())
            with COPY.pushed("closer"):
                with pytest.warns(cs.ScopeWarning, match="not on this"):
                    g.close()  # in this task, not the one that stepped it
                closer = COPY.frames()
            return seen, closer

        assert (("gen",), ("closer",)) == asyncio.run(main())

    def test_scoped_iter_keeps_pushes_inside(self):
        """A generator's push persists across its steps, never outside."""

        def body():
            COPY.push("gen")  # never popped: it must not matter
            yield COPY.frames()
            yield COPY.frames()

        with COPY.pushed("consumer"):
            it = cs.scoped_iter(cs.Scope.current(), body())
            first = next(it)
            with COPY.pushed("consumer-later"):
                second = next(it)
            assert ("consumer",) == COPY.frames()

        assert ("consumer", "gen") == first == second
        assert ("consumer", "gen") == it.scope[COPY]

    def test_scoped_iter_send_throw_close(self):
        """send, throw and close run under the generator's scope."""
        log = []

        def body():
            COPY.push("gen")
            try:
                while True:
                    got = yield
                    log.append((got, COPY.frames()))
            except KeyError:
                log.append(("thrown", COPY.frames()))
                yield "recovered"
            finally:
                log.append(("closed", COPY.frames()))

        it = cs.scoped_iter(cs.Scope.empty(), body())
        next(it)
        it.send("hello")
        assert "recovered" == it.throw(KeyError())
        it.close()

        assert [
            ("hello", ("gen",)),
            ("thrown", ("gen",)),
            ("closed", ("gen",)),
        ] == log
        assert () == COPY.frames()

    def test_scoped_iter_type_error(self):
        """scoped_iter wants an iterator."""
        with pytest.raises(TypeError, match="iterator"):
            cs.scoped_iter(cs.Scope.empty(), [1, 2])  # type: ignore[arg-type]

    @pytest.mark.asyncio
    async def test_scoped_aiter_keeps_pushes_inside(self):
        """An async generator's pushes stay inside, across awaits."""

        async def body():
            COPY.push("agen")
            await asyncio.sleep(0)
            yield COPY.frames()
            await asyncio.sleep(0)
            yield COPY.frames()

        with COPY.pushed("consumer"):
            it = cs.scoped_aiter(cs.Scope.current(), body())
            got = [frames async for frames in it]
            assert ("consumer",) == COPY.frames()

        assert [("consumer", "agen")] * 2 == got

    @pytest.mark.asyncio
    async def test_scoped_aiter_asend_athrow_aclose(self):
        """asend, athrow and aclose run under the generator's scope."""
        log = []

        async def body():
            COPY.push("agen")
            try:
                while True:
                    got = yield
                    log.append((got, COPY.frames()))
            except KeyError:
                log.append(("thrown", COPY.frames()))
                yield "recovered"
            finally:
                log.append(("closed", COPY.frames()))

        it = cs.scoped_aiter(cs.Scope.empty(), body())
        await it.asend(None)
        await it.asend("hello")
        assert "recovered" == await it.athrow(KeyError())
        await it.aclose()

        assert [
            ("hello", ("agen",)),
            ("thrown", ("agen",)),
            ("closed", ("agen",)),
        ] == log

    def test_scoped_aiter_type_error(self):
        """scoped_aiter wants an async iterator."""
        with pytest.raises(TypeError, match="async iterator"):
            cs.scoped_aiter(cs.Scope.empty(), iter([]))  # type: ignore[arg-type]


class TestForeignContext:
    VAR: contextvars.ContextVar[str] = contextvars.ContextVar("tracing")

    @pytest.mark.asyncio
    async def test_foreign_variables_reach_workers_and_threads(self):
        """Tracing-style context variables flow as asyncio would."""
        self.VAR.set("span-7")

        async def read() -> str:
            return self.VAR.get()

        assert "span-7" == await cs.spawn(read())
        assert "span-7" == await cs.worker(read())
        assert "span-7" == await cs.to_thread(self.VAR.get)
