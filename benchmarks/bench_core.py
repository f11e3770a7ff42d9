"""
The costs of capscope's core, each as a ratio to the bare standard-library
operation it is built on, measured in one run.

    python benchmarks/bench_core.py [--json PATH] [--quick]

Reads (`top()`), pushes, captures and spawns are measured at stack depths
1, 100 and 1000, and captures and spawns with 1, 8 and 64 extra registered
stacks (on top of the built-ins), each made for its own run and dropped
after it. How figures are taken: see `_timing.py`. `run.py` runs all of
this as part of the whole suite.

The exit status is 0 whatever the verdicts: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import json
import weakref
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from time import perf_counter

from _timing import (
    Row,
    best_of,
    environment,
    header,
    in_fresh_context,
    per_op,
    print_rows,
)

import capscope as cs
from capscope import policies, stacks

DEPTHS = (1, 100, 1000)
EXTRA_COUNTS = (1, 8, 64)
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
#: Reads and pushes are "flat in depth" if depth 1000 costs at most this
#: much more than depth 1 (docs/concepts.md; noise alone moves it a few %).
FLAT = 1.2


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


def push_builtins_deep(depth: int) -> None:
    """
    The built-ins, then "execution" (TOP: a worker gets its top) and
    "command" (COPY: a worker gets all of it) up to *depth* frames.
    """
    push_builtins()
    for _ in range(depth - 1):
        stacks.execution.push(BUILTIN_FRAMES[stacks.execution])
        stacks.command.push(BUILTIN_FRAMES[stacks.command])


def deep_contexts() -> dict[int, contextvars.Context]:
    return {
        d: in_fresh_context(partial(push_builtins_deep, d)) for d in DEPTHS
    }


def with_extras(
    base: contextvars.Context,
    count: int,
    inherit: cs.Inherit,
    measure: Callable[[contextvars.Context], float],
) -> float:
    """
    *measure* run in a copy of *base* with *count* extra stacks registered
    and one frame on each. The stacks are made for this run and dropped
    after it: a live TOP stack costs every capture while it lives (captures
    follow every instance, registered or not), so none may outlive it.
    """
    ns, refs = _with_extras(base, count, inherit, measure)
    gc.collect()
    if any(ref() is not None for ref in refs):
        msg = "extra stacks outlived their run; later runs would pay"
        raise RuntimeError(msg)
    # A dead stack's variable stays in capscope's table of worker rules
    # until the next stack is made (which drains the dead ones), and every
    # capture until then still visits it. Make one, so that the next
    # variant measured does not pay for these.
    cs.AmbientStack("bench_drain", inherit=cs.Inherit.COPY)
    return ns


def _with_extras(
    base: contextvars.Context,
    count: int,
    inherit: cs.Inherit,
    measure: Callable[[contextvars.Context], float],
) -> tuple[float, list[weakref.ref]]:
    extras = [
        cs.AmbientStack(f"bench_extra_{i}", inherit=inherit)
        for i in range(count)
    ]
    for stack in extras:
        cs.registry.register(stack)
    ctx = base.copy()
    for stack in extras:
        ctx.run(stack.push, stack.name)
    try:
        ns = measure(ctx)
    finally:
        for stack in extras:
            cs.registry.unregister(stack)
    return ns, [weakref.ref(stack) for stack in extras]


# -- reads: top() is O(1) in depth; and what a bare ContextVar.get() costs --


def bench_top(plan: Plan) -> list[Row]:
    # One stack, pushed to three depths in three fresh contexts: only the
    # depth differs. Each loop reads the same context over and over, so
    # ContextVar's own last-read cache serves every read at every depth
    # alike; the comparison is of what top() adds, not of HAMT lookups.
    s = cs.AmbientStack("bench_top", inherit=cs.Inherit.COPY)
    var = contextvars.ContextVar("bench_top_plain")
    ctx = {d: in_fresh_context(partial(_push_n, s, d)) for d in DEPTHS}
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
            FLAT,
        ),
        Row("top(): depth 100 / depth 1", best["depth 100"], best["depth 1"]),
        Row("top() / ContextVar.get()", best["depth 1"], best["get"]),
    ]


def _push_n(stack: cs.AmbientStack[int], depth: int) -> None:
    for i in range(depth):
        stack.push(i)


# -- pushes: push+pop against the ContextVar set+reset it is built on ------


def bench_push_pop(plan: Plan) -> list[Row]:
    s = cs.AmbientStack("bench_push_pop", inherit=cs.Inherit.COPY)
    var = contextvars.ContextVar("bench_push_pop_plain")
    # Each context holds *depth* frames below the one pushed and popped.
    # Give the plain variable an entry too, so its reset() replaces one
    # rather than deleting it, as the stack's pop does.
    ctx = {
        d: in_fresh_context(lambda d=d: (_push_n(s, d), var.set(None)))
        for d in DEPTHS
    }
    policy = BUILTIN_FRAMES[stacks.execution]
    narrowing = in_fresh_context(push_builtins)
    best = best_of(
        plan.repeats,
        {
            **{
                f"depth {d}": partial(
                    c.run,
                    per_op,
                    "s.pop(s.push(v))",
                    plan.push_pop,
                    s=s,
                    v=1,
                )
                for d, c in ctx.items()
            },
            "var": partial(
                ctx[1].run,
                per_op,
                "var.reset(var.set(v))",
                plan.push_pop,
                var=var,
                v=1,
            ),
            # The built-in "execution" stack narrows every push.
            "execution": partial(
                narrowing.run,
                per_op,
                "s.pop(s.push(v))",
                plan.push_pop // 10,
                s=stacks.execution,
                v=policy,
            ),
        },
    )
    return [
        Row(
            "push+pop / ContextVar set+reset",
            best["depth 1"],
            best["var"],
            4.0,
        ),
        Row(
            "push+pop: depth 1000 / depth 1",
            best["depth 1000"],
            best["depth 1"],
            FLAT,
        ),
        Row(
            "push+pop: depth 100 / depth 1",
            best["depth 100"],
            best["depth 1"],
        ),
        Row(
            '"execution" push+pop (narrowing) / ContextVar set+reset',
            best["execution"],
            best["var"],
        ),
    ]


# -- spawn against create_task: depth and extra stacks ---------------------


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
    deep = deep_contexts()
    base = deep[1]

    def run_in(
        start: Callable[..., object], ctx: contextvars.Context
    ) -> float:
        # The timing loop is itself a task in (a copy of) ctx, so spawn
        # captures exactly what ctx holds; one loop serves every run.
        return runner.run(await_each(start, plan.spawn), context=ctx.copy())

    spawn_in = partial(run_in, cs.spawn)
    best = best_of(
        plan.repeats,
        {
            "create_task": partial(run_in, asyncio.create_task, base),
            **{f"depth {d}": partial(spawn_in, c) for d, c in deep.items()},
            **{
                f"+{k} {inherit.name}": partial(
                    with_extras, base, k, inherit, spawn_in
                )
                for inherit in (cs.Inherit.COPY, cs.Inherit.TOP)
                for k in EXTRA_COUNTS
            },
        },
    )
    rows = [
        Row(
            "spawn / create_task (8 built-ins)",
            best["depth 1"],
            best["create_task"],
            1.5,
        ),
        Row(
            "spawn: depth 1000 / depth 1",
            best["depth 1000"],
            best["depth 1"],
            FLAT,
        ),
        Row("spawn: depth 100 / depth 1", best["depth 100"], best["depth 1"]),
    ]
    for inherit in ("COPY", "TOP"):
        one = best[f"+1 {inherit}"]
        rows += [
            Row(
                f"spawn: +64 {inherit} stacks / +1",
                best[f"+64 {inherit}"],
                one,
                1.5,
            ),
            Row(
                f"spawn: +8 {inherit} stacks / +1", best[f"+8 {inherit}"], one
            ),
        ]
    return rows


# -- scope_ambient per step against a bare Context.run per step ------------


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


# -- captures: depth and extra stacks (informational but the depth) --------


def bench_captures(plan: Plan) -> list[Row]:
    # Captures are compared with copy_context(), which each of them begins
    # with; the rest is what capscope adds on top.
    deep = deep_contexts()
    base = deep[1]

    def capture(f: Callable[[], object], ctx: contextvars.Context) -> float:
        return ctx.run(per_op, "f()", plan.capture, f=f)

    inherited = partial(capture, cs.Scope.capture_inherited)
    best = best_of(
        plan.repeats,
        {
            **{f"depth {d}": partial(inherited, c) for d, c in deep.items()},
            **{
                f"+{k} {inherit.name}": partial(
                    with_extras, base, k, inherit, inherited
                )
                for inherit in (cs.Inherit.COPY, cs.Inherit.TOP)
                for k in EXTRA_COUNTS
            },
            "current": partial(capture, cs.Scope.current, base),
            "copy": partial(capture, contextvars.copy_context, base),
        },
    )
    rows = [
        Row(
            "Scope.capture_inherited() / copy_context()",
            best["depth 1"],
            best["copy"],
        ),
        Row(
            "capture_inherited: depth 1000 / depth 1",
            best["depth 1000"],
            best["depth 1"],
            FLAT,
        ),
    ]
    rows += [
        Row(
            f"capture_inherited: +{k} {inherit} stacks / +1",
            best[f"+{k} {inherit}"],
            best[f"+1 {inherit}"],
        )
        for inherit in ("COPY", "TOP")
        for k in (8, 64)
    ]
    rows.append(
        Row("Scope.current() / copy_context()", best["current"], best["copy"])
    )
    return rows


# -- to_thread (informational) ---------------------------------------------


def nothing() -> None:
    return None


async def await_thread(to_thread: Callable[..., object], n: int) -> float:
    t0 = perf_counter()
    for _ in range(n):
        await to_thread(nothing)
    return (perf_counter() - t0) * 1e9 / n


def bench_threads(plan: Plan, runner: asyncio.Runner) -> list[Row]:
    # asyncio.to_thread too runs the function in a copy of the context.
    base = in_fresh_context(push_builtins)

    def thread_run(to_thread: Callable[..., object]) -> float:
        return runner.run(
            await_thread(to_thread, plan.thread), context=base.copy()
        )

    best = best_of(
        plan.repeats,
        {
            "cs": partial(thread_run, cs.to_thread),
            "asyncio": partial(thread_run, asyncio.to_thread),
        },
    )
    return [
        Row("cs.to_thread / asyncio.to_thread", best["cs"], best["asyncio"])
    ]


def measure(plan: Plan) -> list[Row]:
    """Every core row, in one process."""
    cs.registry.ensure_entry_points()  # the one-off first-capture load
    rows = bench_top(plan) + bench_push_pop(plan)
    with asyncio.Runner() as runner:
        rows += bench_spawn(plan, runner)
        rows += bench_steps(plan)
        rows += bench_captures(plan)
        rows += bench_threads(plan, runner)
    for row in rows:
        row.group = "core"
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    plan = QUICK if args.quick else DEFAULT
    env = environment(quick=args.quick, plan=asdict(plan))
    t0 = perf_counter()
    rows = measure(plan)
    seconds = perf_counter() - t0
    print(header("capscope core benchmark", env))
    print(
        f"ns per operation, min of {plan.repeats} interleaved rounds; "
        "ratio = subject / baseline\n"
    )
    print_rows(rows)
    print(f"\ntook {seconds:.1f} s")
    if args.json:
        data = {
            **env,
            "seconds": seconds,
            "results": [row.as_dict() for row in rows],
        }
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
