"""
The cost of a decorated tool call, as ratios in one run.

    python benchmarks/bench_tools.py [--quick]

Baselines, timed in the same process through the same timeit harness:
a bare call of the same function, and the same function under a no-op
`wrapt.decorator` (what any wrapt-based decorator costs before it does
anything). Subjects: an allowed `@requires_tool` call (sync and async), a
denied one, a `@needs_approval` call answered by an authored allow rule,
and a call with a path argument (which binds its arguments).

Each figure is the minimum over several rounds (noise only adds time).
The exit status is 0 whatever the verdicts: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import platform
import timeit
from datetime import UTC, datetime

import wrapt

import capscope as cs
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    ToolApprovalPolicy,
)
from capscope.stacks import approval, execution


def bare(x: int) -> int:
    return x


@wrapt.decorator
def _noop(wrapped, instance, args, kwargs):  # noqa: ARG001
    return wrapped(*args, **kwargs)


@_noop
def noop_wrapped(x: int) -> int:
    return x


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


async def abare(x: int) -> int:
    return x


def per_call(
    stmt: str, names: dict[str, object], number: int, repeat: int
) -> float:
    timer = timeit.Timer(stmt, globals=names)
    return min(timer.repeat(repeat=repeat, number=number)) * 1e9 / number


def deny_once() -> None:
    with contextlib.suppress(cs.ToolDenied):
        denied(1)


def run_coro(coro) -> None:
    with contextlib.suppress(StopIteration):
        coro.send(None)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    number, repeat = (20_000, 5) if quick else (200_000, 9)

    execution.push(CapabilityPolicy(tools=("fs.*", "deploy")))
    names: dict[str, object] = {
        "bare": bare,
        "noop_wrapped": noop_wrapped,
        "allowed": allowed,
        "deny_once": deny_once,
        "with_path": with_path,
        "approved": approved,
        "run_coro": run_coro,
        "aallowed": aallowed,
        "abare": abare,
    }
    rows: list[tuple[str, float]] = [
        ("bare call", per_call("bare(1)", names, number, repeat)),
        (
            "no-op wrapt.decorator",
            per_call("noop_wrapped(1)", names, number, repeat),
        ),
        (
            "@requires_tool, allowed",
            per_call("allowed(1)", names, number, repeat),
        ),
        (
            "@requires_tool, denied",
            per_call("deny_once()", names, number // 10, repeat),
        ),
        (
            "@requires_tool, path argument",
            per_call("with_path('/srv/ws/a')", names, number // 10, repeat),
        ),
        (
            "async bare, stepped",
            per_call("run_coro(abare(1))", names, number, repeat),
        ),
        (
            "async @requires_tool, stepped",
            per_call("run_coro(aallowed(1))", names, number, repeat),
        ),
    ]
    rule = ApprovalRule(action="allow", tool="deploy")
    with approval.pushed(ToolApprovalPolicy(rules=[rule])):
        rows.append(
            (
                "@needs_approval, allow rule",
                per_call("approved(1)", names, number // 10, repeat),
            )
        )

    base, wrapt_cost = rows[0][1], rows[1][1]
    abase = rows[5][1]
    print(
        f"capscope tool-call benchmark, {datetime.now(UTC).isoformat(timespec='seconds')}"
    )
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.platform()}"
    )
    print(f"{'call':34} {'ns':>9} {'x bare':>8} {'x wrapt':>8}")
    for name, ns in rows:
        reference = abase if name.startswith("async") else base
        print(
            f"{name:34} {ns:9.1f} {ns / reference:8.2f} {ns / wrapt_cost:8.2f}"
        )
    allowed_ns = rows[2][1]
    print()
    print(
        f"target: allowed sync call <= 0.6x no-op wrapt ({allowed_ns / wrapt_cost:.2f}x) "
        f"and <= 15x bare on 3.11, 18x on 3.12/3.13 ({allowed_ns / base:.1f}x)"
    )
    print("(async rows are ratios to stepping a bare coroutine)")


if __name__ == "__main__":
    main()
