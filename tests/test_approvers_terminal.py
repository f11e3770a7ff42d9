"""
`TerminalApprover` under a real pseudo-terminal: pexpect runs
tests/approver_apps/terminal_app.py, reads the prompts it shows and types
the answers, as a person at the terminal would.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

pexpect = pytest.importorskip("pexpect")

APP = Path(__file__).parent / "approver_apps" / "terminal_app.py"
PROMPT = r"\[o\] allow once  \[a\] always for this worker  \[d\] deny \(d <reason>\) > "
HEADER = re.compile(r"--- approval #(\d+) -+(?: \((\d+) more waiting\))?")


def spawn(*phases: str):
    return pexpect.spawn(
        sys.executable,
        [str(APP), *phases],
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 200),
    )


@pytest.fixture
def terminal():
    children = []

    def start(*phases: str):
        child = spawn(*phases)
        children.append(child)
        return child

    yield start
    for child in children:
        child.close(force=True)


def prompt(child) -> str:
    """Wait for the next request and its prompt; return what it shows."""
    child.expect(HEADER)
    header = child.after
    child.expect(PROMPT)
    return header + child.before


def results(child, said=None):
    """
    The phase's results, read once the script is done; *said* is what the
    prompt must have said last (written by the prompt's thread, so it may
    come before or after the results, which the worker writes).
    """
    child.expect(pexpect.EOF)
    rest = child.before
    if said is not None:
        assert said in rest
    assert "DONE" in rest
    # The prompt's thread may write on the same line, right after the
    # results (the same terminal): read the JSON object and no further.
    start = re.search(r"RESULTS ", rest).end()
    found, _ = json.JSONDecoder().raw_decode(rest, start)
    return found


def test_once_then_asked_again_then_deny_with_a_reason(terminal):
    child = terminal("sync")
    shown = prompt(child)
    assert "tool     deploy" in shown
    assert "for      worker w-sync, run r-1" in shown
    assert "reason   ships code" in shown
    # The argument's escape sequence is shown, never sent to the terminal.
    assert "env = staging\\x1b[2J" in shown
    assert "\x1b[2J" not in shown
    assert "denied in " in shown
    child.sendline("o")
    child.expect("-> approved once")
    # "once" is not remembered: the same call asks again.
    shown = prompt(child)
    assert "worker w-sync" in shown
    child.sendline("d not on a Friday")
    assert [
        "ran: deployed staging\x1b[2J",
        "refused: not on a Friday",
    ] == results(child, said="-> denied")


def test_always_is_remembered_for_that_worker_only(terminal):
    child = terminal("always")
    shown = prompt(child)
    assert "worker w-always, run r-2" in shown
    child.sendline("a")
    child.expect("-> approved for this worker")
    # The next request shown is the sibling's: w-always's repeat was not
    # asked (and the results below show it ran).
    shown = prompt(child)
    assert "worker w-sibling" in shown
    assert "worker w-always" not in shown
    child.sendline("d")
    assert {
        "w-always": ["ran: deployed prod", "ran: deployed prod"],
        "w-sibling": ["refused: denied at the terminal"],
    } == results(child, said="-> denied")


def test_an_unknown_answer_asks_again(terminal):
    child = terminal("sync")
    prompt(child)
    child.sendline("maybe")
    child.expect("answer o, a or d")
    child.expect(PROMPT)
    child.sendline("deny")
    child.expect("-> denied")
    prompt(child)
    child.sendline("yes")
    assert [
        "refused: denied at the terminal",
        "ran: deployed staging\x1b[2J",
    ] == (results(child, said="-> approved once"))


def test_nobody_answers_so_it_times_out_to_deny(terminal):
    child = terminal("timeout")
    shown = prompt(child)
    assert "worker w-late" in shown
    # The prompt says so and the worker is refused (in either order: the
    # two are written by different threads).
    child.expect(pexpect.EOF)
    rest = child.before
    assert "-> timed out: no longer waiting" in rest
    line = re.search(r"RESULTS ([^\r\n]*)", rest).group(1)
    assert ["refused: no answer at the terminal within 0.5 s"] == json.loads(
        line
    )
    assert "DONE" in rest


def test_concurrent_requests_are_asked_one_at_a_time(terminal):
    child = terminal("concurrent")
    plan = {"w-a": "o", "w-b": "d", "w-c": "o"}
    seen = []
    # The first request is on screen and all three wait (the script says
    # so with FILED 3: before, within or after that first prompt).
    first, filed = None, False
    while first is None or not filed:
        if child.expect([HEADER, "FILED 3"]) == 1:
            filed = True
            continue
        header = child.after
        child.expect(PROMPT)
        first = header + child.before
        filed = filed or "FILED 3" in child.before
    shown = [first]
    for remaining in (1, 0):
        worker = re.search(r"worker (w-\w)", shown[-1]).group(1)
        seen.append(worker)
        child.sendline(plan[worker])
        child.expect("-> ")
        nxt = prompt(child)
        # One request on screen at a time, with the rest counted.
        header = HEADER.search(nxt)
        assert int(header.group(2) or 0) == remaining
        assert len(HEADER.findall(nxt)) == 1
        shown.append(nxt)
    worker = re.search(r"worker (w-\w)", shown[-1]).group(1)
    seen.append(worker)
    child.sendline(plan[worker])
    assert sorted(seen) == ["w-a", "w-b", "w-c"]
    # The command request shows the raw line and its labels.
    command = next(s for s in shown if "worker w-c" in s)
    assert "command  sudo git push --force origin feature" in command
    assert "labels   git_force_push, network, sudo" in command
    out = results(child, said="-> ")
    assert out["w-a"] == "ran: deployed a"
    assert out["w-b"] == "refused: denied at the terminal"
    assert out["w-c"] == "ran: ran sudo git push --force origin feature"


def test_without_a_terminal_every_request_is_denied(tmp_path):
    import asyncio

    import capscope as cs
    from capscope.approvers import TerminalApprover
    from capscope.policies import CapabilityPolicy, ToolApprovalPolicy

    @cs.needs_approval("deploy")
    def deploy(env):
        return env

    approver = TerminalApprover(tty=str(tmp_path / "no-such-tty"))
    with cs.using(
        execution=CapabilityPolicy.unrestricted(),
        approval=ToolApprovalPolicy(handler=approver),
    ):
        with pytest.raises(cs.ApprovalDenied, match="no terminal to ask on"):
            deploy("prod")

    async def async_call():
        with cs.using(
            execution=CapabilityPolicy.unrestricted(),
            approval=ToolApprovalPolicy(handler=approver),
        ):
            await asyncio.sleep(0)
            with pytest.raises(cs.ApprovalDenied, match="no terminal"):
                deploy("prod")

    asyncio.run(async_call())
