"""
Issue 16's measurements, as ratios within one run (minimum of 5 repeats):

    python benchmarks/bench_policies.py [--json FILE]

- an allowed call under the README's example policy file / the fast path
  (execution policy only);
- a `paths=` call under a workspace root / the same tool without `paths=`;
- `@needs_approval` answered by an allow rule / allowed `@requires_tool`;
- a remembered approval (a later call) / allowed `@requires_tool`;
- a denied call at overlay depth 1000 / depth 0;
- `check_command`, one segment, 1000 allow patterns / 1 pattern;
- the fast path / a bare call;
- a buffered `JsonlSink` on / off, per allowed call.

`run.py` runs these in its own run (and with `--also PYTHON`, in other
interpreters too) and reports them with the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
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
from capscope.policies._common import physical_path  # noqa: F401 - timed by name


def best(stmt: str, number: int = 20000, **names: object) -> float:
    """Seconds per run of *stmt* (a statement, as `run.py` times its calls:
    no lambda around it to dilute the ratios), the minimum of 5 repeats."""
    gc.disable()
    try:
        return (
            min(
                timeit.repeat(
                    stmt, number=number, repeat=5, globals=globals() | names
                )
            )
            / number
        )
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


def times() -> dict[str, float]:
    t: dict[str, float] = {}
    ws = tempfile.mkdtemp()
    target = Path(ws, "a", "b")
    target.parent.mkdir(parents=True)
    target.touch()
    target = str(target)
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        t["bare"] = best("bare(1)")
        t["fast"] = best("allowed(1)")
        t["denied0"] = best("refused()", 5000)
        with contextlib.ExitStack() as stack:
            for i in range(1000):
                stack.enter_context(
                    cs.using(
                        overlay=RuntimeContextOverlay(
                            attributes={f"k{i}": "v"}
                        )
                    )
                )
            t["denied1000"] = best("refused()", 2000)
        with JsonlSink(Path(ws, "audit.jsonl")):
            t["audit"] = best("allowed(1)")
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
    t["readme"] = readme.run(best, "allowed(1)")
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",), workspace_roots=(ws,))
    ):
        t["path"] = best("with_path(target)", 2000, target=target)
        t["nopath"] = best("no_path(target)", target=target)
        t["resolve"] = best("physical_path(target)", 2000, target=target)
    with cs.using(
        execution=CapabilityPolicy(tools=("deploy",)),
        approval=ToolApprovalPolicy(
            rules=[ApprovalRule("allow", tool="deploy")]
        ),
    ):
        t["approve"] = best("approved(1)")
    with cs.using(
        execution=CapabilityPolicy(tools=("deploy",)),
        approval=ToolApprovalPolicy(
            handler=lambda _: cs.ApprovalDecision.allow(remember="scope")
        ),
    ):
        approved(1)
        t["remembered"] = best("approved(1)")
    one = CommandPolicy(allow=["git status *"], default="deny")
    many = CommandPolicy(
        allow=[*(f"tool{i} run *" for i in range(999)), "git status *"],
        default="deny",
    )
    with cs.using(execution=CapabilityPolicy(tools=("*",)), command=one):
        t["cmd1"] = best("cs.check_command('git status -s')", 500)
    with cs.using(execution=CapabilityPolicy(tools=("*",)), command=many):
        t["cmd1000"] = best("cs.check_command('git status -s')", 500)

    return t


#: Issue 16's targets: (key, what, subject, baseline, at most).
TARGETS = (
    (
        "readme",
        "allowed call under the README example policy file / fast path",
        "readme",
        "fast",
        1.5,
    ),
    (
        "paths",
        "allowed `paths=` call under a workspace root / the same tool without `paths=`",
        "path",
        "nopath",
        10.0,
    ),
    (
        "approve",
        "`@needs_approval` with an allow rule / allowed `@requires_tool`",
        "approve",
        "fast",
        2.0,
    ),
    (
        "remembered",
        "remembered approval (a later call) / allowed `@requires_tool`",
        "remembered",
        "fast",
        3.0,
    ),
    (
        "denied_depth",
        "denied call at overlay depth 1000 / depth 0",
        "denied1000",
        "denied0",
        1.2,
    ),
    (
        "commands",
        "`check_command`, one segment, 1000 allow patterns / 1 pattern",
        "cmd1000",
        "cmd1",
        2.0,
    ),
    ("fast", "allowed fast-path call / bare call", "fast", "bare", 10.0),
    (
        "audit",
        "buffered JSONL audit sink on / off, per allowed call",
        "audit",
        "fast",
        10.0,
    ),
)


def measure() -> dict:
    """The times (ns) and each target's ratio, for `run.py`'s results."""
    t = times()
    rows = []
    for key, what, subject, baseline, goal in TARGETS:
        ratio = t[subject] / t[baseline]
        rows.append(
            {
                "key": key,
                "target": what,
                "value": ratio,
                "goal": f"<={goal:g}x",
                "met": ratio <= goal,
            }
        )
    # What no resolution of a path can undercut: the system calls that
    # name the file (the kernel's answer for an existing one), per call.
    floor = t["resolve"] / t["nopath"]
    return {
        "python": platform.python_version(),
        "times_ns": {k: v * 1e9 for k, v in t.items()},
        "rows": rows,
        "path_floor": floor,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--json", type=Path, help="also write the results here"
    )
    args = parser.parse_args()
    data = measure()
    for row in data["rows"]:
        print(
            f"{row['target']:80s} {row['value']:8.2f}x   target {row['goal']}"
        )
    print(
        f"(one kernel path resolution / the call without paths= {data['path_floor']:.1f}x)"
    )
    times_ns = data["times_ns"]
    print(
        f"(fast path {times_ns['fast']:.0f} ns, bare {times_ns['bare']:.0f} ns)"
    )
    if args.json:
        args.json.write_text(json.dumps(data, indent=2) + "\n")


if __name__ == "__main__":
    main()
