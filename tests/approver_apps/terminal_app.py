"""
Workers asking a `TerminalApprover`, for tests/test_approvers_terminal.py
to answer through a real pseudo-terminal. Each phase prints its results as
one `RESULTS <json>` line once every worker of the phase is done, so the
prompts and the results never interleave in what the test reads.
"""

from __future__ import annotations

import asyncio
import json
import sys

import capscope as cs
from capscope.approvers import TerminalApprover
from capscope.policies import (
    CapabilityPolicy,
    CommandPolicy,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)

ROOT = CapabilityPolicy.unrestricted()


@cs.needs_approval("deploy", reason="ships code")
def deploy(env: str) -> str:
    return f"deployed {env}"


@cs.needs_approval("deploy_async", reason="ships code")
async def deploy_async(env: str) -> str:
    return f"deployed {env}"


@cs.guards_command(arg="cmd", name="shell")
async def shell(cmd: str) -> str:
    return f"ran {cmd}"


def attempt(fn, *args):
    try:
        return f"ran: {fn(*args)}"
    except cs.ApprovalDenied as exc:
        return f"refused: {exc}"


async def attempt_async(fn, *args):
    try:
        return f"ran: {await fn(*args)}"
    except (cs.ApprovalDenied, cs.CommandBlocked) as exc:
        return f"refused: {exc}"


def report(results):
    print("RESULTS " + json.dumps(results, sort_keys=True), flush=True)


def sync_phase(approver):
    """A sync tool: once, then the same call again (asked again), deny."""
    results = []
    policy = ToolApprovalPolicy(handler=approver, timeout=None)
    with cs.using(
        execution=ROOT,
        approval=policy,
        overlay=RuntimeContextOverlay(run_id="r-1", worker_id="w-sync"),
    ):
        results.append(attempt(deploy, "staging\x1b[2J"))
        results.append(attempt(deploy, "staging\x1b[2J"))
    report(results)


async def always_phase(approver):
    """An async worker answered "always": its repeat is not asked; a
    sibling worker making the same call is."""

    async def agent(name, calls):
        with cs.using(
            overlay=RuntimeContextOverlay(run_id="r-2", worker_id=name)
        ):
            return [
                await attempt_async(deploy_async, "prod") for _ in range(calls)
            ]

    policy = ToolApprovalPolicy(handler=approver, timeout=None)
    with cs.using(execution=ROOT, approval=policy):
        first = await cs.spawn(agent("w-always", 2))
        second = await cs.spawn(agent("w-sibling", 1))
    report({"w-always": first, "w-sibling": second})


async def concurrent_phase(approver):
    """Three workers ask at once: a tool, a tool, a command line."""

    async def agent(name, call):
        with cs.using(
            overlay=RuntimeContextOverlay(run_id="r-3", worker_id=name)
        ):
            return await call()

    policy = ToolApprovalPolicy(handler=approver, timeout=None)
    with cs.using(
        execution=ROOT,
        approval=policy,
        command=CommandPolicy(default="ask"),
    ):
        tasks = [
            cs.spawn(agent("w-a", lambda: attempt_async(deploy_async, "a"))),
            cs.spawn(agent("w-b", lambda: attempt_async(deploy_async, "b"))),
            cs.spawn(
                agent(
                    "w-c",
                    lambda: attempt_async(
                        shell, "sudo git push --force origin feature"
                    ),
                )
            ),
        ]
        await approver.queue.await_pending(3, timeout=30)
        print("FILED 3", flush=True)
        a, b, c = await asyncio.gather(*tasks)
    report({"w-a": a, "w-b": b, "w-c": c})


def timeout_phase():
    """Nobody answers: denied when the approver's time is up."""
    with TerminalApprover(timeout=0.5) as approver:
        policy = ToolApprovalPolicy(handler=approver, timeout=None)
        with cs.using(
            execution=ROOT,
            approval=policy,
            overlay=RuntimeContextOverlay(worker_id="w-late"),
        ):
            report([attempt(deploy, "friday")])


def main():
    with TerminalApprover(timeout=60) as approver:
        for phase in sys.argv[1:]:
            if phase == "sync":
                sync_phase(approver)
            elif phase == "always":
                asyncio.run(always_phase(approver))
            elif phase == "concurrent":
                asyncio.run(concurrent_phase(approver))
            elif phase == "timeout":
                timeout_phase()
    print("DONE", flush=True)


if __name__ == "__main__":
    main()
