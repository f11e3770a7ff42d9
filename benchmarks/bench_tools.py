"""
The cost of a decorated tool call, as ratios in one run.

    python benchmarks/bench_tools.py [--quick]

Baselines, timed in the same process through the same harness
(`_timing.py`): a bare call of the same function, and the same function
under a no-op `wrapt.decorator` (what any wrapt-based decorator costs
before it does anything). Subjects: an allowed `@requires_tool` call (sync
and async, and with the "execution" stack 100 and 1000 frames deep), a
denied one (sync and async), a `@needs_approval` call answered by an
authored allow rule, and a call with a path argument naming no file
(resolved again on every call, component by component: the kernel cannot
name what does not exist; `bench_policies.py` times an existing one). Async calls are stepped to their end by hand, as an event
loop's first step would, and compared with stepping a bare coroutine and
one under the no-op wrapt decorator. No event subscriber is installed, so
an allowed call builds no event (docs/audit.md).

`run.py` times these in the same rounds as the alternatives
(`bench_alternatives.py`). The exit status is 0 whatever the verdicts:
this is a report, not a test.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from _timing import (
    Row,
    Timed,
    abare,
    anoop_wrapped,
    bare,
    best_of,
    environment,
    header,
    in_fresh_context,
    noop_wrapped,
    print_rows,
    run_coro,
)

import capscope as cs
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    ToolApprovalPolicy,
)
from capscope.stacks import approval, execution

#: The allowed call's ceilings (the goal is 10x on every version).
BARE_TARGET = 15.0 if sys.version_info < (3, 12) else 18.0
BARE_GOAL = 10.0
WRAPT_TARGET = 0.6
FLAT = 1.2


@cs.requires_tool("fs.read", side_effect="read_only")
def allowed(x: int) -> int:
    return x


@cs.requires_tool("net.get", side_effect="network")
def denied(x: int) -> int:
    return x


@cs.needs_approval("deploy")
def approved(x: int) -> int:
    return x


@cs.requires_tool("fs.read", side_effect="read_only", paths=("path",))
def with_path(path: str) -> str:
    return path


@cs.requires_tool("fs.read", side_effect="read_only")
async def aallowed(x: int) -> int:
    return x


@cs.requires_tool("net.get", side_effect="network")
async def adenied(x: int) -> int:
    return x


CEILING = CapabilityPolicy(tools=("fs.*", "deploy"))
ALLOW_DEPLOY = ToolApprovalPolicy(
    rules=[ApprovalRule(action="allow", tool="deploy")]
)


def deny_once() -> None:
    try:
        denied(1)
    except cs.ToolDenied:
        pass
    else:
        raise AssertionError("the denied call was allowed")


def adeny_once() -> None:
    try:
        run_coro(adenied(1))
    except cs.ToolDenied:
        pass
    else:
        raise AssertionError("the denied call was allowed")


def under_ceiling(depth: int = 1) -> None:
    for _ in range(depth):
        execution.push(CEILING)


def with_approval() -> None:
    under_ceiling()
    approval.push(ALLOW_DEPLOY)


@dataclass(frozen=True)
class Call:
    """One timed call: what it is, how to make it, where, and its kind."""

    key: str
    label: str
    stmt: str
    setup: Callable[[], object] | None = None
    is_async: bool = False


NAMES: dict[str, object] = {
    "bare": bare,
    "noop_wrapped": noop_wrapped,
    "allowed": allowed,
    "deny_once": deny_once,
    "adeny_once": adeny_once,
    "with_path": with_path,
    "approved": approved,
    "run_coro": run_coro,
    "aallowed": aallowed,
    "abare": abare,
    "anoop_wrapped": anoop_wrapped,
}

CALLS = (
    Call("bare", "bare call", "bare(1)"),
    Call("wrapt", "no-op `wrapt.decorator`", "noop_wrapped(1)"),
    Call("allowed", "`@requires_tool`, allowed", "allowed(1)", under_ceiling),
    Call("denied", "`@requires_tool`, denied", "deny_once()", under_ceiling),
    Call(
        "approved",
        "`@needs_approval`, authored allow rule",
        "approved(1)",
        with_approval,
    ),
    Call(
        "path",
        "`@requires_tool`, path argument (no such file)",
        "with_path('/srv/ws/a')",
        under_ceiling,
    ),
    Call(
        "allowed_d100",
        '`@requires_tool`, allowed, "execution" 100 deep',
        "allowed(1)",
        partial(under_ceiling, 100),
    ),
    Call(
        "allowed_d1000",
        '`@requires_tool`, allowed, "execution" 1000 deep',
        "allowed(1)",
        partial(under_ceiling, 1000),
    ),
    Call("abare", "async bare call", "run_coro(abare(1))", is_async=True),
    Call(
        "awrapt",
        "async no-op `wrapt.decorator`",
        "run_coro(anoop_wrapped(1))",
        is_async=True,
    ),
    Call(
        "aallowed",
        "async `@requires_tool`, allowed",
        "run_coro(aallowed(1))",
        under_ceiling,
        is_async=True,
    ),
    Call(
        "adenied",
        "async `@requires_tool`, denied",
        "adeny_once()",
        under_ceiling,
        is_async=True,
    ),
)


def variants(calls: tuple[Call, ...], seconds: float) -> dict[str, Timed]:
    """One `Timed` per call, each in its own context."""
    return {
        call.key: Timed(
            call.stmt,
            NAMES,
            seconds=seconds,
            ctx=in_fresh_context(call.setup or (lambda: None)),
        )
        for call in calls
    }


def call_table(
    calls: tuple[Call, ...], best: dict[str, float]
) -> list[dict[str, object]]:
    """Each call's ns and its ratios to the bare and no-op wrapt calls."""
    table = []
    for call in calls:
        if call.key not in best:
            continue
        bare_ns = best["abare" if call.is_async else "bare"]
        wrapt_ns = best["awrapt" if call.is_async else "wrapt"]
        ns = best[call.key]
        table.append(
            {
                "key": call.key,
                "label": call.label,
                "async": call.is_async,
                "ns": ns,
                "x_bare": ns / bare_ns,
                "x_wrapt": ns / wrapt_ns,
                "x_capscope_allowed": ns
                / best["aallowed" if call.is_async else "allowed"],
            }
        )
    return table


def target_rows(best: dict[str, float]) -> list[Row]:
    allowed_ns = best["allowed"]
    rows = [
        Row(
            "allowed @requires_tool / no-op wrapt.decorator",
            allowed_ns,
            best["wrapt"],
            WRAPT_TARGET,
        ),
        Row(
            f"allowed @requires_tool / bare call (Python {sys.version_info[0]}."
            f"{sys.version_info[1]})",
            allowed_ns,
            best["bare"],
            BARE_TARGET,
        ),
        Row(
            "allowed @requires_tool / bare call (the goal)",
            allowed_ns,
            best["bare"],
            BARE_GOAL,
        ),
        Row(
            "allowed @requires_tool: execution depth 1000 / depth 1",
            best["allowed_d1000"],
            allowed_ns,
            FLAT,
        ),
    ]
    for row in rows:
        row.group = "calls"
    return rows


def print_call_table(table: list[dict[str, object]]) -> None:
    width = max(len(str(r["label"])) for r in table)
    print(f"{'call':<{width}}  {'ns':>10}  {'x bare':>9}  {'x wrapt':>9}")
    for r in table:
        print(
            f"{r['label']:<{width}}  {r['ns']:>10.1f}  {r['x_bare']:>8.2f}x"
            f"  {r['x_wrapt']:>8.2f}x"
        )
    print("(async rows: ratios to stepping the async bare / wrapt calls)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats, seconds = (7, 0.002) if quick else (25, 0.005)
    best = best_of(repeats, variants(CALLS, seconds))
    print(header("capscope tool-call benchmark", environment()))
    print()
    print_call_table(call_table(CALLS, best))
    print()
    print_rows(target_rows(best))


if __name__ == "__main__":
    main()
