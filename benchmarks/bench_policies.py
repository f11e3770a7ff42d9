"""
Issue 16's measurements, as ratios within one run (minimum of 5 repeats):

    python benchmarks/bench_policies.py

- an allowed call under the README's example policy file / the fast path
  (execution policy only);
- a `paths=` call under a workspace root / the same tool without `paths=`;
- `@needs_approval` answered by an allow rule / allowed `@requires_tool`;
- a remembered approval (a later call) / allowed `@requires_tool`;
- a denied call at overlay depth 1000 / depth 0;
- `check_command`, one segment, 1000 allow patterns / 1 pattern;
- the fast path / a bare call;
- a buffered `JsonlSink` on / off, per allowed call.

Not yet part of `run.py`'s results (see issue 16's note): a report only.
"""

from __future__ import annotations

import contextlib
import gc
import tempfile
import timeit
from pathlib import Path

import capscope as cs
from capscope.audit import JsonlSink
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    CommandPolicy,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)


def best(fn, number=20000) -> float:
    gc.disable()
    try:
        return min(timeit.repeat(fn, number=number, repeat=5)) / number
    finally:
        gc.enable()


def bare(x):
    return x


@cs.requires_tool("fs.read", side_effect="read_only")
def allowed(x):
    return x


@cs.requires_tool("fs.read", side_effect="read_only", paths=("path",))
def with_path(path):
    return path


@cs.requires_tool("fs.read", side_effect="read_only")
def no_path(path):
    return path


@cs.needs_approval("deploy")
def approved(x):
    return x


@cs.requires_tool("net.get")
def denied(x):
    return x


def refused() -> None:
    with contextlib.suppress(cs.PolicyDenied):
        denied(1)


def main() -> None:
    t: dict[str, float] = {}
    ws = tempfile.mkdtemp()
    target = Path(ws, "a", "b")
    target.parent.mkdir(parents=True)
    target.touch()
    target = str(target)
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        t["bare"] = best(lambda: bare(1))
        t["fast"] = best(lambda: allowed(1))
        t["denied0"] = best(refused, 5000)
        with contextlib.ExitStack() as stack:
            for i in range(1000):
                stack.enter_context(
                    cs.using(
                        overlay=RuntimeContextOverlay(
                            attributes={f"k{i}": "v"}
                        )
                    )
                )
            t["denied1000"] = best(refused, 2000)
        with JsonlSink(Path(ws, "audit.jsonl")):
            t["audit"] = best(lambda: allowed(1))
    readme = cs.load_policy_data(
        {
            "execution": {
                "tools": ["fs.*", "shell"],
                "side_effect_level": "workspace_write",
                "workspace_roots": [ws],
            },
            "approval": {"rules": [{"action": "ask", "tool": "fs.write*"}]},
            "command": {
                "allow": ["git status *", "pytest *"],
                "default": "deny",
            },
        }
    )
    t["readme"] = readme.run(best, lambda: allowed(1))
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",), workspace_roots=(ws,))
    ):
        t["path"] = best(lambda: with_path(target), 2000)
        t["nopath"] = best(lambda: no_path(target))
    with cs.using(
        execution=CapabilityPolicy(tools=("deploy",)),
        approval=ToolApprovalPolicy(
            rules=[ApprovalRule("allow", tool="deploy")]
        ),
    ):
        t["approve"] = best(lambda: approved(1))
    with cs.using(
        execution=CapabilityPolicy(tools=("deploy",)),
        approval=ToolApprovalPolicy(
            handler=lambda _: cs.ApprovalDecision.allow(remember="scope")
        ),
    ):
        approved(1)
        t["remembered"] = best(lambda: approved(1))
    one = CommandPolicy(allow=["git status *"], default="deny")
    many = CommandPolicy(
        allow=[*(f"tool{i} run *" for i in range(999)), "git status *"],
        default="deny",
    )
    with cs.using(execution=CapabilityPolicy(tools=("*",)), command=one):
        t["cmd1"] = best(lambda: cs.check_command("git status -s"), 500)
    with cs.using(execution=CapabilityPolicy(tools=("*",)), command=many):
        t["cmd1000"] = best(lambda: cs.check_command("git status -s"), 500)

    rows = [
        ("README policy file / fast path", t["readme"] / t["fast"], "<= 1.5"),
        (
            "paths= under a root / without paths=",
            t["path"] / t["nopath"],
            "<= 10",
        ),
        (
            "needs_approval + allow rule / allowed",
            t["approve"] / t["fast"],
            "<= 2",
        ),
        ("remembered approval / allowed", t["remembered"] / t["fast"], "<= 3"),
        (
            "denied, overlay depth 1000 / 0",
            t["denied1000"] / t["denied0"],
            "<= 1.2",
        ),
        ("check_command 1000 patterns / 1", t["cmd1000"] / t["cmd1"], "<= 2"),
        ("fast path / bare call", t["fast"] / t["bare"], "<= 10"),
        ("JsonlSink on / off", t["audit"] / t["fast"], "<= 10"),
    ]
    for name, ratio, goal in rows:
        print(f"{name:42s} {ratio:8.2f}x   target {goal}")
    print(
        f"(fast path {t['fast'] * 1e9:.0f} ns, bare {t['bare'] * 1e9:.0f} ns)"
    )


if __name__ == "__main__":
    main()
