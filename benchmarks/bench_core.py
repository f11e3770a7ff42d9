"""
The costs of capscope's core, each as a ratio to the bare standard-library
operation it is built on, measured in one run.

    python benchmarks/bench_core.py [--json PATH] [--quick]

Every figure is the minimum, over several rounds, of one timed loop divided
by its length (nanoseconds per operation): noise only ever adds time, so the
minimum is the best estimate of the cost itself. Within a round every
variant of a comparison runs once, in an order reversed each round, so drift
in clock speed or load hits subject and baseline alike. Loops are kept short
(a few ms) and rounds many, so that on a busy machine some rounds of each
variant still run unpreempted. The garbage collector is off inside timed
loops, as timeit does. A first round warms up caches, specialisation, the
thread pool and the entry-point load, and is thrown away.

The exit status is 0 whatever the verdicts: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import json
import os
import platform
import timeit
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from time import perf_counter

import capscope as cs
from capscope import policies, stacks

EXTRA_STACKS = 64
BUILTIN_STACKS = (
    stacks.execution,
    stacks.approval,
    stacks.command,
    stacks.permissions,
    stacks.overlay,
    stacks.autonomy,
    stacks.render,
    stacks.connector,
)


@dataclass(frozen=True)
class Plan:
    """Rounds per measurement, and the length of each timed loop."""

    repeats: int
    top: int
    push_pop: int
    spawn: int  # the 2000 awaits the spawn targets were set with
    step: int
    capture: int
    thread: int


DEFAULT = Plan(25, 100_000, 20_000, 2_000, 50_000, 5_000, 200)
QUICK = Plan(7, 50_000, 10_000, 500, 20_000, 2_000, 50)


@dataclass
class Row:
    name: str
    subject: float  # ns per operation
    baseline: float  # ns per operation
    target: float | None = None  # the most subject/baseline may be

    @property
    def ratio(self) -> float:
        return self.subject / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        return "PASS" if self.ratio <= self.target else "FAIL"


def best_of(
    repeats: int, variants: dict[str, Callable[[], float]]
) -> dict[str, float]:
    """The minimum ns/op of each variant over *repeats* interleaved rounds."""
    names = list(variants)
    best = dict.fromkeys(names, float("inf"))
    for round_ in range(repeats + 1):  # round 0 is the warm-up
        for name in names if round_ % 2 else reversed(names):
            gc.collect()
            gc.disable()
            try:
                ns = variants[name]()
            finally:
                gc.enable()
            if round_:
                best[name] = min(best[name], ns)
    return best


def per_op(stmt: str, number: int, **names: object) -> float:
    """
    ns per run of *stmt*, looked up in *names*. Subject and baseline both go
    through timeit's compiled loop, so the harness costs them the same.
    """
    return timeit.Timer(stmt, globals=names).timeit(number) * 1e9 / number


#: One realistic frame per built-in stack, so captures have real work.
BUILTIN_FRAMES = {
    stacks.execution: policies.CapabilityPolicy(
        tools=("fs.*",), recursion_limit=8
    ),
    stacks.approval: policies.ToolApprovalPolicy(
        rules=[policies.ApprovalRule(action="ask", tool="fs.write*")]
    ),
    stacks.command: policies.CommandPolicy(allow=["git status *"]),
    stacks.permissions: policies.DynamicPermissionPolicy(deny=["net.*"]),
    stacks.overlay: policies.RuntimeContextOverlay(run_id="bench"),
    stacks.autonomy: policies.AutonomyPolicy(tier="act_with_approval"),
    stacks.render: policies.LlmRenderContext(model="bench"),
    stacks.connector: policies.ConnectorCtx(name="bench"),
}


def push_builtins() -> None:
    """One frame on every built-in stack, so captures have real work."""
    for stack in BUILTIN_STACKS:
        stack.push(BUILTIN_FRAMES[stack])


def in_fresh_context(fn: Callable[[], object]) -> contextvars.Context:
    ctx = contextvars.copy_context()
    ctx.run(fn)
    return ctx


# -- 1. top() is O(1) in depth; 6. and what a bare ContextVar.get() costs ---


def bench_top(plan: Plan) -> list[Row]:
    # One stack, pushed to three depths in three fresh contexts: only the
    # depth differs. Each loop reads the same context over and over, so
    # ContextVar's own last-read cache serves every read at every depth
    # alike; the comparison is of what top() adds, not of HAMT lookups.
    s = cs.AmbientStack("bench_top", inherit=cs.Inherit.COPY)
    var = contextvars.ContextVar("bench_top_plain")
    ctx = {
        depth: in_fresh_context(partial(_push_n, s, depth))
        for depth in (1, 100, 1000)
    }
    ctx[1].run(var.set, "value")
    best = best_of(
        plan.repeats,
        {
            **{
                f"depth {d}": partial(c.run, per_op, "s.top()", plan.top, s=s)
                for d, c in ctx.items()
            },
            # top() is ContextVar.get() plus one Python call and an index.
            "get": partial(ctx[1].run, per_op, "var.get()", plan.top, var=var),
        },
    )
    return [
        Row(
            "top(): depth 1000 / depth 1",
            best["depth 1000"],
            best["depth 1"],
            1.2,
        ),
        Row("top(): depth 100 / depth 1", best["depth 100"], best["depth 1"]),
        Row("top() / ContextVar.get()", best["depth 1"], best["get"]),
    ]


def _push_n(stack: cs.AmbientStack[int], depth: int) -> None:
    for i in range(depth):
        stack.push(i)


# -- 2. push+pop against the ContextVar set+reset it is built on -----------


def bench_push_pop(plan: Plan) -> list[Row]:
    s = cs.AmbientStack("bench_push_pop", inherit=cs.Inherit.COPY)
    var = contextvars.ContextVar("bench_push_pop_plain")
    # After its first pop the stack's variable holds None in the context, so
    # every later push and pop replaces an entry. Give the plain variable an
    # entry too, so its reset() also replaces one rather than deleting it.
    ctx = in_fresh_context(lambda: (s.pop(s.push(0)), var.set(None)))
    best = best_of(
        plan.repeats,
        {
            "stack": partial(
                ctx.run, per_op, "s.pop(s.push(v))", plan.push_pop, s=s, v=1
            ),
            "var": partial(
                ctx.run,
                per_op,
                "var.reset(var.set(v))",
                plan.push_pop,
                var=var,
                v=1,
            ),
        },
    )
    return [
        Row("push+pop / ContextVar set+reset", best["stack"], best["var"], 4.0)
    ]


# -- 3. and 4. spawn against create_task, with 0 or 64 extra stacks --------


async def noop() -> None:
    pass


async def await_each(
    start: Callable[..., asyncio.Task[None]], n: int
) -> float:
    """
    ns per `await start(noop())`. Both sides pay the same event-loop round
    trip (schedule the task, run its one step, wake the awaiter), so the
    ratio shows what spawn's worker capture adds to a real, minimal task.
    """
    t0 = perf_counter()
    for _ in range(n):
        await start(noop())
    return (perf_counter() - t0) * 1e9 / n


def bench_spawn(plan: Plan, runner: asyncio.Runner) -> list[Row]:
    base = in_fresh_context(push_builtins)

    def run_in(
        ctx: contextvars.Context, start: Callable[..., object]
    ) -> float:
        # The timing loop is itself a task in (a copy of) ctx, so spawn
        # captures exactly what ctx holds; one loop serves every run.
        return runner.run(await_each(start, plan.spawn), context=ctx.copy())

    def with_extras(inherit: cs.Inherit, *, push: bool) -> float:
        # Made and dropped within each run: a TOP stack costs every spawn
        # while it lives, so it must not outlive its own measurement.
        extras = [
            cs.AmbientStack(f"bench_extra_{i}", inherit=inherit)
            for i in range(EXTRA_STACKS)
        ]
        for stack in extras:
            cs.registry.register(stack)
        ctx = base.copy()
        if push:
            for stack in extras:
                ctx.run(stack.push, stack.name)
        try:
            ns = run_in(ctx, cs.spawn)
        finally:
            for stack in extras:
                cs.registry.unregister(stack)
        refs = [weakref.ref(stack) for stack in extras]
        del extras, ctx, stack
        gc.collect()
        if any(ref() is not None for ref in refs):
            msg = "extra stacks outlived their run; later runs would pay"
            raise RuntimeError(msg)
        return ns

    best = best_of(
        plan.repeats,
        {
            "create_task": partial(run_in, base, asyncio.create_task),
            "spawn": partial(run_in, base, cs.spawn),
            "copy": partial(with_extras, cs.Inherit.COPY, push=True),
            "copy empty": partial(with_extras, cs.Inherit.COPY, push=False),
            "top": partial(with_extras, cs.Inherit.TOP, push=True),
        },
    )
    k = EXTRA_STACKS
    return [
        Row(
            "spawn / create_task (8 built-ins)",
            best["spawn"],
            best["create_task"],
            1.5,
        ),
        Row(
            f"spawn: +{k} COPY stacks, 1 frame / none",
            best["copy"],
            best["spawn"],
            1.5,
        ),
        Row(
            f"spawn: +{k} COPY stacks, empty / none",
            best["copy empty"],
            best["spawn"],
        ),
        Row(
            f"spawn: +{k} TOP stacks, 1 frame / none",
            best["top"],
            best["spawn"],
        ),
    ]


# -- 5. scope_ambient per step against a bare Context.run per step ---------


class Ticks:
    """An awaitable that yields to whoever steps it, forever."""

    def __await__(self):
        while True:
            yield


async def ticking() -> None:
    await Ticks()


def bench_steps(plan: Plan) -> list[Row]:
    # Each coroutine is started (one untimed step), then stepped plan.step
    # times; it never finishes, so every timed call is one plain step. The
    # baseline is the least any per-step context switch can cost: the bare
    # Context.run(coro.send, None) that scope_ambient wraps.
    scope = in_fresh_context(push_builtins).run(cs.Scope.current)

    def scoped(stmt: str) -> float:
        coro = cs.scope_ambient(scope, ticking())
        coro.send(None)
        try:
            return per_op(stmt, plan.step, coro=coro)
        finally:
            coro.close()

    def bare() -> float:
        coro, ctx = ticking(), scope.context()
        ctx.run(coro.send, None)
        try:
            return per_op(
                "run(send, None)", plan.step, run=ctx.run, send=coro.send
            )
        finally:
            ctx.run(coro.close)

    best = best_of(
        plan.repeats,
        {
            "send": partial(scoped, "coro.send(None)"),
            # asyncio's Task and `await` step a non-native coroutine through
            # __next__ (PyIter_Send with None), not send: report it too.
            "next": partial(scoped, "next(coro)"),
            "bare": bare,
        },
    )
    return [
        Row(
            "scope_ambient .send step / Context.run",
            best["send"],
            best["bare"],
            2.0,
        ),
        Row(
            "scope_ambient __next__ step / Context.run",
            best["next"],
            best["bare"],
        ),
    ]


# -- 6. captures and to_thread (informational) -----------------------------


def nothing() -> None:
    return None


async def await_thread(to_thread: Callable[..., object], n: int) -> float:
    t0 = perf_counter()
    for _ in range(n):
        await to_thread(nothing)
    return (perf_counter() - t0) * 1e9 / n


def bench_info(plan: Plan, runner: asyncio.Runner) -> list[Row]:
    # Captures are compared with copy_context(), which each of them begins
    # with; the rest is what capscope adds on top.
    base = in_fresh_context(push_builtins)
    best = base.run(
        best_of,
        plan.repeats,
        {
            "inherited": partial(
                per_op, "f()", plan.capture, f=cs.Scope.capture_inherited
            ),
            "current": partial(
                per_op, "f()", plan.capture, f=cs.Scope.current
            ),
            "copy": partial(
                per_op, "f()", plan.capture, f=contextvars.copy_context
            ),
        },
    )

    # asyncio.to_thread too runs the function in a copy of the context.
    def thread_run(to_thread: Callable[..., object]) -> float:
        return runner.run(
            await_thread(to_thread, plan.thread), context=base.copy()
        )

    thread = best_of(
        plan.repeats,
        {
            "cs": partial(thread_run, cs.to_thread),
            "asyncio": partial(thread_run, asyncio.to_thread),
        },
    )
    return [
        Row(
            "Scope.capture_inherited() / copy_context()",
            best["inherited"],
            best["copy"],
        ),
        Row("Scope.current() / copy_context()", best["current"], best["copy"]),
        Row(
            "cs.to_thread / asyncio.to_thread", thread["cs"], thread["asyncio"]
        ),
    ]


# -- report -----------------------------------------------------------------


def environment(plan: Plan, *, quick: bool) -> dict[str, object]:
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "capscope": str(Path(cs.__file__).parent),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other processes' load skews single figures; ratios much less.
        "load_average": os.getloadavg(),
        "quick": quick,
        "plan": asdict(plan),
    }


def print_table(env: dict, rows: list[Row], seconds: float) -> None:
    load = ", ".join(f"{x:.2f}" for x in env["load_average"])
    print(
        f"capscope core benchmark, {env['date']}"
        f"{' (--quick)' if env['quick'] else ''}\n"
        f"{env['implementation']} {env['python']} on {env['platform']}, "
        f"{env['processor']}, {env['cpus']} CPUs, load average {load}\n"
        f"capscope from {env['capscope']}\n"
        f"ns per operation, min of {env['plan']['repeats']} interleaved "
        "rounds; ratio = subject / baseline\n"
    )
    width = max(len(row.name) for row in rows)
    print(
        f"{'measurement':<{width}}  {'subject':>9}  {'baseline':>9}  "
        f"{'ratio':>7}  {'target':>7}  result"
    )
    for row in rows:
        target = "-" if row.target is None else f"<={row.target:.1f}x"
        print(
            f"{row.name:<{width}}  {row.subject:>9.1f}  {row.baseline:>9.1f}  "
            f"{row.ratio:>6.2f}x  {target:>7}  {row.verdict}"
        )
    print(f"\ntook {seconds:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = QUICK if args.quick else DEFAULT
    env = environment(plan, quick=args.quick)

    cs.registry.ensure_entry_points()  # the one-off first-capture load
    t0 = perf_counter()
    rows = bench_top(plan) + bench_push_pop(plan)
    with asyncio.Runner() as runner:
        rows += bench_spawn(plan, runner)
        rows += bench_steps(plan)
        rows += bench_info(plan, runner)
    seconds = perf_counter() - t0

    print_table(env, rows, seconds)
    if args.json:
        results = [
            {
                "name": row.name,
                "subject_ns": row.subject,
                "baseline_ns": row.baseline,
                "ratio": row.ratio,
                "target": row.target,
                "verdict": row.verdict,
            }
            for row in rows
        ]
        data = {**env, "seconds": seconds, "results": results}
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
