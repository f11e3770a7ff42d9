"""The enforcement engine through the public decorators: gates, approvals, autonomy, events."""

from __future__ import annotations

import asyncio
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import attrs
import pytest
import trio

import capscope as cs
from capscope._enforce import Gatekeeper
from capscope.policies import (
    ApprovalRule,
    AutonomyPolicy,
    CapabilityPolicy,
    DynamicPermissionPolicy,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)
from capscope.stacks import approval, execution, overlay

UNRESTRICTED = CapabilityPolicy.unrestricted()


def gated(fn, name=None, **spec):
    """*fn* under the public decorator that matches *spec*."""
    name = name or fn.__name__
    if spec.pop("needs_approval", False):
        return cs.needs_approval(name, **spec)(fn)
    return cs.requires_tool(name, **spec)(fn)


agated = gated  # the decorators tell coroutine functions apart themselves


@pytest.fixture
def recorded():
    seen: list[cs.Decision] = []
    unsubscribe = cs.events.subscribe(seen.append)
    yield seen
    unsubscribe()


def read(path: str = "/srv/ws/notes.txt") -> str:
    return f"read {path}"


class TestNoPolicy:
    def test_fails_closed_with_the_boundary_message(self):
        """No execution policy: refused, and told how to carry one."""
        tool = gated(read, "fs.read")
        with pytest.raises(cs.NoPolicyInstalled) as info:
            tool()

        message = str(info.value)
        for hint in (
            "thread or executor",
            "to_thread",
            "ScopedExecutor",
            "Scope.bind",
        ):
            assert hint in message
        assert cs.Gate.NO_POLICY == info.value.decision.gate

    def test_lost_in_a_plain_thread_carried_by_capscope(self):
        """A plain Thread and run_in_executor lose the policy; capscope's
        helpers carry it."""
        tool = gated(read, "fs.read")
        outcomes: dict[str, object] = {}

        def attempt(label: str) -> None:
            try:
                tool()
                outcomes[label] = "allowed"
            except cs.NoPolicyInstalled:
                outcomes[label] = "no policy"

        async def main() -> None:
            loop = asyncio.get_running_loop()
            with execution.pushed(UNRESTRICTED), ThreadPoolExecutor(2) as pool:
                plain = threading.Thread(target=attempt, args=("thread",))
                plain.start()
                plain.join()
                bound = threading.Thread(
                    target=cs.Scope.current().bind(attempt), args=("bind",)
                )
                bound.start()
                bound.join()
                await loop.run_in_executor(pool, attempt, "run_in_executor")
                await cs.to_thread(attempt, "to_thread")
                await cs.run_in_executor(pool, attempt, "cs.run_in_executor")
                cs.ScopedExecutor(pool).submit(
                    attempt, "ScopedExecutor"
                ).result()

        asyncio.run(main())

        assert {
            "thread": "no policy",
            "run_in_executor": "no policy",
            "bind": "allowed",
            "to_thread": "allowed",
            "cs.run_in_executor": "allowed",
            "ScopedExecutor": "allowed",
        } == outcomes


class TestCeilingGates:
    def test_each_gate(self, tmp_path):
        """Tool, capability, side effect, path and argument gates, named."""
        ws = tmp_path / "ws"
        ws.mkdir()
        policy = CapabilityPolicy(
            tools=("fs.*", "shell"),
            capabilities={"workspace": ("read_text",)},
            side_effect_level="workspace_write",
            workspace_roots=[ws],
            tool_arg_constraints=[
                {"tool": "shell", "arg": "cmd", "patterns": ["git *"]}
            ],
        )

        def gate_of(tool, *args, **kwargs):
            try:
                tool(*args, **kwargs)
            except cs.ToolDenied as exc:
                return exc.decision.gate
            return None

        def shell(cmd: str) -> str:
            return cmd

        def net() -> None:
            return None

        with execution.pushed(policy):
            assert cs.Gate.TOOL_CEILING == gate_of(gated(net, "net.get"))
            assert cs.Gate.CAPABILITY_CEILING == gate_of(
                gated(read, "fs.delete", capability="workspace.delete")
            )
            assert cs.Gate.SIDE_EFFECT_CEILING == gate_of(
                gated(shell, "shell", side_effect="process_exec"), "git status"
            )
            assert cs.Gate.WORKSPACE_BOUNDARY == gate_of(
                gated(
                    read, "fs.read", side_effect="read_only", paths=("path",)
                ),
                str(tmp_path / "elsewhere"),
            )
            assert cs.Gate.ARG_CONSTRAINT == gate_of(
                gated(shell, "shell", side_effect="workspace_write"),
                "rm -rf /",
            )
            assert (
                gate_of(
                    gated(shell, "shell", side_effect="workspace_write"),
                    "git log",
                )
                is None
            )

    def test_path_escapes(self, tmp_path):
        """`..`, a symlink out and a sibling prefix are all outside."""
        ws = tmp_path / "ws"
        ws.mkdir()
        (tmp_path / "ws2").mkdir()
        (ws / "link").symlink_to(tmp_path)
        tool = gated(read, "fs.read", side_effect="read_only", paths=("path",))
        with execution.pushed(CapabilityPolicy(workspace_roots=[ws])):
            assert "read" in tool(str(ws / "a.txt"))
            for escape in (
                ws / ".." / "x",
                ws / "link" / "x",
                tmp_path / "ws2" / "x",
            ):
                with pytest.raises(cs.ToolDenied, match="outside the roots"):
                    tool(str(escape))

    def test_a_dangerous_default_argument_is_checked(self, tmp_path):
        """Defaults are bound before the path gate reads them."""

        def write(data: str, path: str = "/etc/passwd") -> None:
            return None

        tool = gated(
            write, "fs.write", side_effect="workspace_write", paths=("path",)
        )
        with execution.pushed(CapabilityPolicy(workspace_roots=[tmp_path])):
            with pytest.raises(cs.ToolDenied, match="/etc/passwd"):
                tool("x")
            tool("x", path=str(tmp_path / "ok"))

    def test_sensitive_paths_are_refused_without_an_approval_policy(
        self, tmp_path
    ):
        """The sensitive-path guard holds even with no approval policy."""
        tool = gated(read, "fs.read", side_effect="read_only", paths=("path",))
        with execution.pushed(UNRESTRICTED):
            with pytest.raises(cs.ToolDenied) as info:
                tool(str(tmp_path / ".env"))
        assert cs.Gate.SENSITIVE_PATH == info.value.decision.gate

    def test_bridged_only_inside_trusted(self):
        """A bridged tool runs inside trusted() only."""
        tool = gated(read, "bridge.read", bridged=True)
        with execution.pushed(UNRESTRICTED):
            with pytest.raises(cs.ToolDenied) as info:
                tool()
            assert cs.Gate.BRIDGE == info.value.decision.gate
            with cs.trusted():
                assert "read" in tool()


def test_read_only_roots_count_as_inside_for_the_approval_guard(tmp_path):
    """A read the ceiling allows under a read-only root is not refused as
    "external" by the approval policy's guard; a write there still is
    refused by the ceiling, and a read elsewhere by the guard."""
    ws, docs, other = (tmp_path / n for n in ("ws", "docs", "other"))
    for d in (ws, docs, other):
        d.mkdir()
    (docs / "a.md").write_text("a")
    ceiling = CapabilityPolicy(
        tools=("fs.*",), workspace_roots=[ws], read_only_roots=[docs]
    )
    read_file = gated(
        read, "fs.read", side_effect="read_only", paths=("path",)
    )

    def write(path: str) -> None:
        return None

    write_file = gated(write, "fs.write", paths=("path",))
    with cs.using(execution=ceiling, approval=ToolApprovalPolicy()):
        assert read_file(str(docs / "a.md")) == f"read {docs / 'a.md'}"
        with pytest.raises(cs.ToolDenied) as info:
            write_file(str(docs / "a.md"))
        assert cs.Gate.WORKSPACE_BOUNDARY == info.value.decision.gate
    unrooted = CapabilityPolicy(tools=("fs.*",))
    guard = ToolApprovalPolicy(external_roots=[str(docs)])
    with cs.using(execution=unrooted, approval=guard):
        with pytest.raises(cs.ToolDenied) as info:
            read_file(str(other / "b.md"))
        assert cs.Gate.WORKSPACE_BOUNDARY == info.value.decision.gate


class TestPermissions:
    def test_outer_deny_beats_inner_allow(self):
        """Every permissions frame is checked."""
        tool = gated(read, "fs.read")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(permissions=DynamicPermissionPolicy(deny=["fs.read"])),
            cs.using(permissions=DynamicPermissionPolicy(allow=["fs.*"])),
        ):
            with pytest.raises(cs.ToolDenied) as info:
                tool()
        assert cs.Gate.DYNAMIC_PERMISSION == info.value.decision.gate

    @pytest.mark.parametrize(("answer", "asked"), [("once", 3), ("frame", 1)])
    def test_escalation_once_versus_frame(self, answer, asked):
        """A 'once' grant asks again next time; a 'frame' grant does not."""
        calls = []

        def escalate(call):
            calls.append(call.tool)
            return answer

        tool = gated(read, "fs.read")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(
                permissions=DynamicPermissionPolicy(
                    deny=["fs.read"], on_escalation=escalate
                )
            ),
        ):
            for _ in range(3):
                tool()
        assert asked == len(calls)

    def test_escalation_denied(self):
        """An escalation that answers False (or junk) denies."""
        tool = gated(read, "fs.read")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(
                permissions=DynamicPermissionPolicy(
                    deny=["fs.read"], on_escalation=lambda c: "maybe"
                )
            ),
            pytest.raises(cs.ToolDenied),
        ):
            tool()

    @pytest.mark.parametrize("answer", ["once", "frame"])
    def test_an_escalation_answers_for_its_own_frame_only(self, answer):
        """
        Any deny wins: the outer frame's escalation grants the outer deny,
        and the inner frame (a worker's own, stricter one) still denies,
        on the first call and every later one.
        """
        escalations = []
        ran = []

        def escalate(call):
            escalations.append(call.tool)
            return answer

        def write():
            ran.append(1)

        tool = gated(write, "fs.write")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(
                permissions=DynamicPermissionPolicy(
                    deny=["fs.write"], on_escalation=escalate
                )
            ),
            cs.using(permissions=DynamicPermissionPolicy(deny=["fs.*"])),
        ):
            for _ in range(2):
                with pytest.raises(cs.ToolDenied) as info:
                    tool()
                assert "fs.*" in info.value.decision.reason
        assert ran == []
        assert escalations  # the outer frame was asked, and granted

    def test_each_denying_frame_escalates_in_turn(self):
        """Two frames that deny, both escalating: both must grant."""
        asked = []

        def grant(name):
            def escalate(call):
                asked.append(name)
                return "once"

            return escalate

        tool = gated(read, "fs.read")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(
                permissions=DynamicPermissionPolicy(
                    deny=["fs.*"], on_escalation=grant("outer")
                )
            ),
            cs.using(
                permissions=DynamicPermissionPolicy(
                    deny=["fs.read"], on_escalation=grant("inner")
                )
            ),
        ):
            tool()
        assert asked == ["outer", "inner"]


class TestApprovalFlow:
    def deploy(self, env: str = "prod") -> str:
        return f"deployed {env}"

    def test_no_handler(self):
        """Asked with no handler: denied, approval_unavailable."""
        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            pytest.raises(cs.ApprovalDenied) as info,
        ):
            tool()
        assert cs.Gate.APPROVAL_UNAVAILABLE == info.value.decision.gate

    def test_four_distinct_denial_reasons(self):
        """Timeout, exception, junk answer and no handler read differently."""

        def slow(_request):
            time.sleep(1)
            return True

        def boom(_request):
            raise RuntimeError("handler broke")

        handlers = {
            "timed out": ToolApprovalPolicy(handler=slow, timeout=0.05),
            "raised": ToolApprovalPolicy(handler=boom),
            "a str ('yes please'), not True, False": ToolApprovalPolicy(
                handler=lambda r: "yes please"
            ),
            "no approval handler": ToolApprovalPolicy(),
        }
        tool = gated(self.deploy, "deploy", needs_approval=True)
        reasons = {}
        with execution.pushed(UNRESTRICTED):
            for expected, policy in handlers.items():
                with (
                    approval.pushed(policy),
                    pytest.raises(cs.ApprovalDenied) as info,
                ):
                    tool()
                reasons[expected] = str(info.value)
        for expected, reason in reasons.items():
            assert expected in reason
        assert len(set(reasons.values())) == 4

    def test_grant_and_remembered_answers(self, recorded):
        """remember='scope' answers repeats; 'once' asks every time."""
        asked = []

        def handler(request):
            asked.append(request)
            return cs.ApprovalDecision.allow(remember="scope")

        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(ToolApprovalPolicy(handler=handler)),
        ):
            assert "deployed prod" == tool()
            assert "deployed prod" == tool()
            assert "deployed dev" == tool("dev")
        assert 2 == len(asked)
        assert {"env": "prod"} == dict(asked[0].arguments)
        actions = [d.action for d in recorded if d.tool == "deploy"]
        assert [cs.Action.ASK, cs.Action.GRANTED, cs.Action.ALLOW] == actions[
            :3
        ]

    def test_authored_allow_answers_the_implicit_ask(self):
        """A needs_approval tool allowed by a rule asks no one."""
        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(
                ToolApprovalPolicy(
                    rules=[ApprovalRule(action="allow", tool="deploy")]
                )
            ),
        ):
            assert "deployed prod" == tool()

    def test_authored_deny(self):
        """An authored deny refuses before anyone is asked."""
        tool = gated(self.deploy, "deploy")
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(
                ToolApprovalPolicy(
                    rules=[ApprovalRule(action="deny", tool="dep*")],
                    handler=lambda r: True,
                )
            ),
            pytest.raises(cs.ApprovalDenied),
        ):
            tool()

    @pytest.mark.parametrize("answer", [True, False])
    def test_async_handler_under_a_sync_caller(self, answer):
        """
        One handler serves both: an async handler answers a sync call, run
        on a private event loop thread under the caller's scope, and its
        answer is the answer.
        """
        seen = {}

        async def handler(request):
            await asyncio.sleep(0.01)  # a real suspension on its own loop
            seen["loop"] = asyncio.get_running_loop()
            seen["thread"] = (
                threading.current_thread() is not threading.main_thread()
            )
            seen["overlay"] = cs.current_overlay().ids()
            seen["env"] = request.arguments["env"]
            return answer

        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(ToolApprovalPolicy(handler=handler)),
            overlay.pushed(RuntimeContextOverlay(worker_id="w7")),
        ):
            if answer:
                assert tool() == "deployed prod"
            else:
                with pytest.raises(
                    cs.ApprovalDenied, match="denied by the handler"
                ):
                    tool()
        assert seen["thread"] is True
        assert seen["overlay"] == {"worker_id": "w7"}
        assert seen["env"] == "prod"

    def test_async_handler_under_a_sync_caller_inside_a_running_loop(self):
        """
        A sync tool called from a coroutine (the loop's own thread) with an
        async handler: the handler runs on its own loop, not on the caller's
        (which is blocked), so it answers instead of deadlocking.
        """
        loops = []

        async def handler(_request):
            loops.append(asyncio.get_running_loop())
            await asyncio.sleep(0)
            return True

        tool = gated(self.deploy, "deploy", needs_approval=True)

        async def main():
            loops.append(asyncio.get_running_loop())
            with (
                execution.pushed(UNRESTRICTED),
                approval.pushed(
                    ToolApprovalPolicy(handler=handler, timeout=5)
                ),
            ):
                return tool()

        assert asyncio.run(main()) == "deployed prod"
        assert loops[0] is not loops[1]

    def test_async_handler_under_a_sync_caller_times_out(self):
        """Too slow: cancelled on its loop at the timeout, and a refusal."""
        cancelled = threading.Event()

        async def handler(_request):
            try:
                await asyncio.sleep(5)
            except asyncio.CancelledError:
                cancelled.set()
                raise
            return True

        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(ToolApprovalPolicy(handler=handler, timeout=0.2)),
            pytest.raises(cs.ApprovalDenied, match="timed out"),
        ):
            tool()
        assert cancelled.wait(2)

    def test_an_async_handler_cancelled_is_a_refusal(self):
        """A handler whose task is cancelled (a BaseException) is an
        `ApprovalDenied`, never that exception escaping the tool call."""

        async def handler(_request):
            raise asyncio.CancelledError

        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(ToolApprovalPolicy(handler=handler)),
            pytest.raises(cs.ApprovalDenied, match="CancelledError"),
        ):
            tool()

    def test_the_timeout_bounds_a_sync_handler_and_its_awaitable_together(
        self,
    ):
        """A sync handler that takes most of the time, then returns an
        awaitable that takes the rest: one limit for both, so it times out
        (each step alone fits in it)."""

        async def later():
            await asyncio.sleep(0.3)
            return True

        def handler(_request):
            time.sleep(0.3)
            return later()

        tool = gated(self.deploy, "deploy", needs_approval=True)
        started = time.monotonic()
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(ToolApprovalPolicy(handler=handler, timeout=0.5)),
            pytest.raises(cs.ApprovalDenied, match="timed out"),
        ):
            tool()
        assert time.monotonic() - started < 0.9

    def test_sync_handler_returning_an_awaitable_under_a_sync_caller(self):
        """An awaitable answer is awaited too, on the private loop."""

        async def later():
            await asyncio.sleep(0)
            return cs.ApprovalDecision.deny("not today")

        tool = gated(self.deploy, "deploy", needs_approval=True)
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(ToolApprovalPolicy(handler=lambda _r: later())),
            pytest.raises(cs.ApprovalDenied, match="not today"),
        ):
            tool()

    def test_sync_handler_under_an_async_caller_runs_in_a_thread(self):
        """A sync handler called from async code runs in a thread with the scope."""
        seen = {}

        def handler(request):
            seen["thread"] = (
                threading.current_thread() is not threading.main_thread()
            )
            seen["overlay"] = cs.current_overlay().ids()
            return True

        async def deploy(env: str = "prod") -> str:
            return env

        tool = agated(deploy, "deploy", needs_approval=True)

        async def main() -> str:
            with (
                execution.pushed(UNRESTRICTED),
                approval.pushed(ToolApprovalPolicy(handler=handler)),
                overlay.pushed(RuntimeContextOverlay(worker_id="w1")),
            ):
                return await tool()

        assert "prod" == asyncio.run(main())
        assert {"thread": True, "overlay": {"worker_id": "w1"}} == seen

    @pytest.mark.parametrize("runner", ["asyncio", "trio"])
    def test_async_timeout(self, runner):
        """An async handler that takes too long is denied, under asyncio and trio."""

        async def sleep(seconds: float) -> None:
            if runner == "trio":
                await trio.sleep(seconds)
            else:
                await asyncio.sleep(seconds)

        async def handler(_request):
            await sleep(5)
            return True

        async def deploy() -> str:
            return "deployed"

        tool = agated(deploy, "deploy", needs_approval=True)

        async def main() -> str:
            with (
                execution.pushed(UNRESTRICTED),
                approval.pushed(
                    ToolApprovalPolicy(handler=handler, timeout=0.05)
                ),
            ):
                try:
                    await tool()
                except cs.ApprovalDenied as exc:
                    return str(exc)
            return "allowed"

        start = time.monotonic()
        result = trio.run(main) if runner == "trio" else asyncio.run(main())

        assert "timed out" in result
        assert time.monotonic() - start < 3


class TestAutonomy:
    def deploy(self) -> str:
        return "deployed"

    @pytest.mark.parametrize("tier", ["suggest", "shadow"])
    def test_proposed_not_run(self, tier, recorded):
        """suggest and shadow: a proposed decision, ActionProposed, no body."""
        ran = []
        tool = gated(lambda: ran.append(1), "deploy.prod")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(autonomy=AutonomyPolicy(tier=tier)),
        ):
            with pytest.raises(cs.ActionProposed):
                tool()
        assert [] == ran
        assert cs.Action.PROPOSED in [d.action for d in recorded]

    def test_requires_human(self):
        """requires-human raises HumanRequired."""
        tool = gated(self.deploy, "deploy.prod")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(
                autonomy=AutonomyPolicy(requires_human_actions=["deploy.*"])
            ),
            pytest.raises(cs.HumanRequired),
        ):
            tool()

    def test_act_with_approval_asks_the_handler(self):
        """act_with_approval sends the call to the approval handler."""
        asked = []
        tool = gated(self.deploy, "deploy.prod")
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(
                ToolApprovalPolicy(handler=lambda r: asked.append(r) or True)
            ),
            cs.using(autonomy=AutonomyPolicy(tier="act_with_approval")),
        ):
            assert "deployed" == tool()
        assert 1 == len(asked)

    def test_act_with_approval_without_a_handler_is_denied(self):
        """act_with_approval and no approval policy: denied, never run."""
        ran = []
        tool = gated(lambda: ran.append(1), "deploy.prod")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(autonomy=AutonomyPolicy(tier="act_with_approval")),
            pytest.raises(cs.ApprovalDenied) as info,
        ):
            tool()
        assert cs.Gate.APPROVAL_UNAVAILABLE == info.value.decision.gate
        assert [] == ran

    def test_read_only_tools_are_not_gated(self):
        """Autonomy governs side effects: a read-only tool runs under shadow."""
        tool = gated(read, "fs.read", side_effect="read_only")
        with (
            execution.pushed(UNRESTRICTED),
            cs.using(autonomy=AutonomyPolicy(tier="shadow")),
        ):
            assert "read" in tool()


class TestEvents:
    def test_no_subscriber_no_event_and_a_raising_subscriber_changes_nothing(
        self, caplog
    ):
        """A subscriber that raises is logged; the decision stands."""

        def bad(_decision):
            raise RuntimeError("subscriber broke")

        unsubscribe = cs.events.subscribe(bad)
        try:
            tool = gated(read, "fs.read")
            with execution.pushed(UNRESTRICTED):
                assert "read" in tool()
        finally:
            unsubscribe()
        assert "subscriber broke" in caplog.text

    def test_denials_carry_the_overlay(self, recorded):
        """Every event is stamped with the attribution in force."""
        tool = gated(read, "fs.read")
        with (
            overlay.pushed(RuntimeContextOverlay(run_id="r1", worker_id="w1")),
            pytest.raises(cs.NoPolicyInstalled),
        ):
            tool()
        assert {"run_id": "r1", "worker_id": "w1"} == recorded[
            -1
        ].overlay.ids()

    def test_root_push_and_trusted_are_escapes(self, recorded):
        """A root execution push and trusted() are events."""
        with execution.pushed(UNRESTRICTED), cs.trusted():
            pass
        gates = [d.gate for d in recorded]
        assert [cs.Gate.ROOT_POLICY, cs.Gate.TRUSTED] == gates


class TestDryRun:
    def test_dry_run_asks_no_one_and_emits_nothing(self, recorded):
        """dry_run returns the decision without running or asking."""
        asked = []
        keeper = Gatekeeper(
            cs.ToolSpec("deploy", needs_approval=True), lambda env="prod": env
        )
        with (
            execution.pushed(UNRESTRICTED),
            approval.pushed(
                ToolApprovalPolicy(handler=lambda r: asked.append(r) or True)
            ),
        ):
            decision = keeper.dry_run(None, (), {})
            recorded.clear()  # the root push above is an event of its own
            denied = Gatekeeper(cs.ToolSpec("x", bridged=True), read).dry_run(
                None, (), {}
            )
        assert cs.Action.ASK == decision.action
        assert cs.Action.DENY == denied.action
        assert [] == asked
        assert [] == recorded


class TestConcurrentWorkers:
    N = 200

    def test_each_worker_is_asked_through_its_own_handler(self):
        """200 workers, one tool, same arguments: each worker's handler is
        asked exactly once, and every event carries that worker's ids."""
        asked: dict[str, int] = {}
        events: list[cs.Decision] = []
        unsubscribe = cs.events.subscribe(events.append)

        async def deploy(env: str = "prod") -> str:
            return env

        tool = agated(deploy, "deploy", needs_approval=True)

        async def worker_body(name: str) -> None:
            def handler(request):
                assert {
                    "worker_id": name,
                    "run_id": "run",
                } == request.overlay.ids()
                asked[name] = asked.get(name, 0) + 1
                return cs.ApprovalDecision.allow(remember="scope")

            with (
                approval.pushed(ToolApprovalPolicy(handler=handler)),
                overlay.pushed(RuntimeContextOverlay(worker_id=name)),
            ):
                for _ in range(3):
                    await tool()
                    await asyncio.sleep(0)

        async def main() -> None:
            with (
                execution.pushed(UNRESTRICTED),
                overlay.pushed(RuntimeContextOverlay(run_id="run")),
            ):
                await asyncio.gather(
                    *(cs.spawn(worker_body(f"w{i}")) for i in range(self.N))
                )

        try:
            asyncio.run(main())
        finally:
            unsubscribe()

        assert {f"w{i}": 1 for i in range(self.N)} == asked
        by_worker: dict[str, list[cs.Action]] = {}
        for d in events:
            if d.tool == "deploy":
                assert "run" == d.overlay.run_id
                by_worker.setdefault(d.overlay.worker_id, []).append(d.action)
        assert self.N == len(by_worker)
        for actions in by_worker.values():
            assert [
                cs.Action.ASK,
                cs.Action.GRANTED,
                cs.Action.ALLOW,
                cs.Action.ALLOW,
            ] == actions

    def test_trio_workers_each_asked_through_their_own_handler(self):
        """The same under trio, workers started with cs.worker."""
        asked: dict[str, int] = {}

        async def deploy(env: str = "prod") -> str:
            return env

        tool = agated(deploy, "deploy", needs_approval=True)

        async def worker_body(name: str) -> None:
            async def handler(request):
                assert name == request.overlay.worker_id
                asked[name] = asked.get(name, 0) + 1
                await trio.lowlevel.checkpoint()
                return cs.ApprovalDecision.allow(remember="scope")

            with (
                approval.pushed(ToolApprovalPolicy(handler=handler)),
                overlay.pushed(RuntimeContextOverlay(worker_id=name)),
            ):
                for _ in range(3):
                    await tool()
                    await trio.lowlevel.checkpoint()

        async def main() -> None:
            with execution.pushed(UNRESTRICTED):
                async with trio.open_nursery() as nursery:
                    for i in range(self.N):
                        nursery.start_soon(cs.worker, worker_body(f"w{i}"))

        events: list[cs.Decision] = []
        unsubscribe = cs.events.subscribe(events.append)
        try:
            trio.run(main)
        finally:
            unsubscribe()

        assert {f"w{i}": 1 for i in range(self.N)} == asked
        by_worker: dict[str, list[cs.Action]] = {}
        for d in events:
            if d.tool == "deploy":
                by_worker.setdefault(d.overlay.worker_id, []).append(d.action)
        assert {f"w{i}" for i in range(self.N)} == set(by_worker)
        for actions in by_worker.values():
            assert [cs.Action.ASK, cs.Action.GRANTED] + [
                cs.Action.ALLOW
            ] * 2 == actions


class TestNoSubscriberNoEvent:
    def test_allowed_calls_build_no_event(self, monkeypatch):
        """With no subscriber, an allowed call constructs no Decision."""
        built = []
        real = cs.events._restamped
        monkeypatch.setattr(
            cs.events,
            "_restamped",
            lambda *a: built.append(a) or real(*a),
        )
        tool = gated(read, "fs.read")
        with execution.pushed(UNRESTRICTED):
            for _ in range(3):
                tool()
        assert [] == built
        unsubscribe = cs.events.subscribe(lambda d: None)
        try:
            with execution.pushed(UNRESTRICTED):
                tool()
        finally:
            unsubscribe()
        assert 1 == len(built)

    def test_an_allowed_call_emits_what_the_constructor_would(self, recorded):
        """
        Each allowed call's decision is restamped from one built at
        decoration time: it must be a new `Decision`, equal field for field
        (the unequal-by-design `arguments` too) to the one `Decision(...)`
        makes, for the overlay in force and a time of its own.
        """
        tool = gated(read, "fs.read")
        with execution.pushed(UNRESTRICTED):
            tool()
            with overlay.pushed(RuntimeContextOverlay(worker_id="w2")):
                before = time.time()
                tool()
                after = time.time()
        first, second = recorded[-2:]
        assert first is not second
        assert before <= second.time <= after
        expected = cs.Decision(
            action="allow",
            gate=None,
            tool="fs.read",
            reason="allowed",
            overlay=RuntimeContextOverlay(worker_id="w2"),
            time=second.time,
        )
        assert type(second) is cs.Decision
        assert attrs.asdict(expected, recurse=False) == attrs.asdict(
            second, recurse=False
        )
        assert {} == first.overlay.ids()
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            second.tool = "other"


class TestAnswersAreValidated:
    """Only True or an ApprovalDecision of True grant (issue 14)."""

    @pytest.mark.parametrize(
        "value", ["no", "yes", 1, 0, None, [], {"decision": "approved"}]
    )
    def test_an_approval_decision_holds_a_bool(self, value):
        """`ApprovalDecision("no")` is a TypeError naming the type."""
        with pytest.raises(TypeError, match=type(value).__name__):
            cs.ApprovalDecision(value)

    @pytest.mark.parametrize(
        "answer",
        [
            "yes",
            1,
            {"decision": "approved"},
            {"allowed": True},
            [True],
            object(),
        ],
    )
    def test_anything_else_denies_naming_its_type(self, answer):
        """For a tool, a junk answer is a denial whose reason names it."""
        from unittest.mock import Mock

        @cs.needs_approval("deploy")
        def deploy():
            return "deployed"

        for junk in (answer, Mock()):
            policy = ToolApprovalPolicy(handler=lambda _, junk=junk: junk)
            with cs.using(
                execution=CapabilityPolicy.unrestricted(), approval=policy
            ):
                with pytest.raises(cs.ApprovalDenied) as raised:
                    deploy()
            assert f"a {type(junk).__name__} (" in raised.value.decision.reason

    def test_a_forged_decision_denies(self):
        """An ApprovalDecision whose field was forced to a non-bool still
        denies (the reader checks it too)."""
        forged = cs.ApprovalDecision.allow()
        object.__setattr__(forged, "allowed", "yes")

        @cs.needs_approval("deploy")
        def deploy():
            return "deployed"

        policy = ToolApprovalPolicy(handler=lambda _: forged)
        with cs.using(
            execution=CapabilityPolicy.unrestricted(), approval=policy
        ):
            with pytest.raises(cs.ApprovalDenied):
                deploy()


class TestInnerAllowsNeverSettleAnAsk:
    """Only a human, or the root approval frame, settles an ask (issue 14)."""

    @staticmethod
    def deploy_tool():
        @cs.needs_approval("deploy")
        def deploy():
            return "deployed"

        return deploy

    @staticmethod
    def refusing():
        asked = []

        def handler(request):
            asked.append(request.tool)
            return False

        return asked, ToolApprovalPolicy(handler=handler)

    def test_a_spawned_worker_cannot_allow_itself(self):
        deploy = self.deploy_tool()
        asked, parent = self.refusing()
        allow = ToolApprovalPolicy(
            rules=[{"action": "allow", "tool": "deploy"}]
        )

        async def child():
            return deploy()

        async def main():
            with cs.using(execution=UNRESTRICTED, approval=parent):
                return await cs.spawn(child(), push={"approval": allow})

        with pytest.raises(cs.ApprovalDenied):
            asyncio.run(main())
        assert ["deploy"] == asked

    def test_an_inner_push_cannot_allow_an_outer_ask(self):
        deploy = self.deploy_tool()
        asked, parent = self.refusing()
        outer = attrs.evolve(
            parent, rules=[{"action": "ask", "tool": "deploy"}]
        )
        allow = ToolApprovalPolicy(rules=[{"action": "allow", "tool": "*"}])

        with cs.using(execution=UNRESTRICTED, approval=outer):
            with cs.using(approval=allow), pytest.raises(cs.ApprovalDenied):
                deploy()

        assert ["deploy"] == asked

    @pytest.mark.parametrize(
        "later", ['tool = "deploy"', 'tool = "*"', "", 'source = "user"']
    )
    def test_a_later_policy_file_cannot_allow(self, tmp_path, later):
        deploy = self.deploy_tool()
        asked, handler = self.refusing()
        org = tmp_path / "org.toml"
        org.write_text(
            '[execution]\ntools = ["*"]\n[approval]\ntimeout = 30\n'
        )
        project = tmp_path / "project.toml"
        project.write_text(f'[[approval.rules]]\naction = "allow"\n{later}\n')

        layered = cs.load_policy_files(org, project)
        with layered.installed(), cs.using(approval=handler):
            with pytest.raises(cs.ApprovalDenied):
                deploy()

        assert ["deploy"] == asked

    def test_the_root_frame_may_allow(self):
        """The configuration installed first is what says "no need to
        ask"."""
        deploy = self.deploy_tool()
        asked, parent = self.refusing()
        root = attrs.evolve(
            parent, rules=[{"action": "allow", "tool": "deploy"}]
        )

        with cs.using(execution=UNRESTRICTED, approval=root):
            assert "deployed" == deploy()
            with cs.using(approval=ToolApprovalPolicy(timeout=5)):
                assert "deployed" == deploy()

        assert [] == asked

    def test_a_human_always_settles_it_for_this_frame(self):
        deploy = self.deploy_tool()
        answers = []

        def handler(request):
            answers.append(request.tool)
            return cs.ApprovalDecision.allow(remember="scope")

        with cs.using(
            execution=UNRESTRICTED,
            approval=ToolApprovalPolicy(handler=handler),
        ):
            assert ("deployed", "deployed") == (deploy(), deploy())

        assert ["deploy"] == answers

    @pytest.mark.parametrize(
        ("outer", "inner", "asked", "runs"),
        [
            (False, True, ["outer"], False),
            (True, False, ["outer", "inner"], False),
            (True, True, ["outer", "inner"], True),
        ],
    )
    def test_every_handler_in_force_must_grant(
        self, outer, inner, asked, runs
    ):
        """A handler pushed inside (by a worker, say) is asked after the
        outer one, never instead of it."""
        deploy = self.deploy_tool()
        order = []

        def handler(name, answer):
            def answering(request):
                order.append(name)
                return answer

            return answering

        async def child():
            return deploy()

        async def main():
            with cs.using(
                execution=UNRESTRICTED,
                approval=ToolApprovalPolicy(handler=handler("outer", outer)),
            ):
                inner_policy = ToolApprovalPolicy(
                    handler=handler("inner", inner)
                )
                return await cs.spawn(child(), push={"approval": inner_policy})

        if runs:
            assert "deployed" == asyncio.run(main())
        else:
            with pytest.raises(cs.ApprovalDenied):
                asyncio.run(main())
        assert asked == order


class TestRememberedAnswersScoping:
    """
    A remembered "always" lives on the approval frame (DESIGN 5): the same
    agent's inline captures share it (raw `asyncio.create_task`,
    `cs.to_thread`, `ScopedExecutor`: copies of the caller's context), a
    worker (`cs.spawn`, `cs.worker`) never sees it (issue 14).
    """

    @staticmethod
    def setup():
        asked = []

        @cs.needs_approval("deploy")
        def deploy():
            return "deployed"

        def handler(request):
            asked.append(request.tool)
            return cs.ApprovalDecision.allow(remember="scope")

        policy = ToolApprovalPolicy(handler=handler)
        return asked, deploy, policy

    def test_a_spawned_worker_never_sees_its_parents_always(self):
        asked, deploy, policy = self.setup()

        async def child():
            await asyncio.sleep(0)
            return deploy()

        async def main():
            with cs.using(execution=UNRESTRICTED, approval=policy):
                deploy()  # answered "always" here
                await cs.spawn(child())  # asked again
                await cs.spawn(child())  # and again: a fresh frame each

        asyncio.run(main())
        assert ["deploy"] * 3 == asked

    def test_a_workers_always_never_reaches_its_parent_or_a_sibling(self):
        asked, deploy, policy = self.setup()

        async def child(gate: asyncio.Event):
            deploy()
            deploy()  # remembered inside this worker
            gate.set()

        async def main():
            with cs.using(execution=UNRESTRICTED, approval=policy):
                first, second = asyncio.Event(), asyncio.Event()
                await cs.spawn(child(first))
                await first.wait()
                await cs.spawn(child(second))
                deploy()  # the parent: asked

        asyncio.run(main())
        assert ["deploy"] * 3 == asked

    def test_inline_captures_share_the_answer(self):
        asked, deploy, policy = self.setup()

        async def sub():
            await asyncio.sleep(0)
            return deploy()

        async def main():
            with cs.using(execution=UNRESTRICTED, approval=policy):
                deploy()  # asked once, remembered for this frame
                await asyncio.create_task(sub())
                await cs.to_thread(deploy)
                with ThreadPoolExecutor(max_workers=1) as threads:
                    cs.ScopedExecutor(threads).submit(deploy).result()

        asyncio.run(main())
        assert ["deploy"] == asked

    def test_popping_the_frame_forgets(self):
        asked, deploy, policy = self.setup()
        with cs.using(execution=UNRESTRICTED):
            with cs.using(approval=policy):
                deploy()
                deploy()
            with cs.using(approval=policy):
                deploy()

        assert ["deploy"] * 2 == asked
