"""current_overlay, render_context, current_connector, trusted, describe_policy."""

from __future__ import annotations

import asyncio

import pytest

import capscope as cs
from capscope.policies import (
    ApprovalRule,
    AutonomyPolicy,
    CapabilityPolicy,
    CommandPolicy,
    ConnectorCtx,
    LlmRenderContext,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)
from capscope.stacks import overlay


class TestOverlay:
    def test_empty_when_nothing_is_set(self):
        """No overlay frame: every id is unset."""
        assert {} == cs.current_overlay().ids()

    def test_nested_frames_merge_innermost_wins(self):
        """Field by field, the innermost non-empty value wins."""
        with (
            cs.using(
                overlay=RuntimeContextOverlay(
                    run_id="r1",
                    workflow_id="wf",
                    attributes={"a": "1", "b": "1"},
                )
            ),
            cs.using(
                overlay=RuntimeContextOverlay(
                    worker_id="w1", attributes={"b": "2"}
                )
            ),
            cs.using(overlay=RuntimeContextOverlay(worker_id="w2")),
        ):
            merged = cs.current_overlay()

        assert {
            "run_id": "r1",
            "workflow_id": "wf",
            "worker_id": "w2",
        } == merged.ids()
        assert {"a": "1", "b": "2"} == merged.attributes

    @pytest.mark.asyncio
    async def test_a_worker_keeps_run_id_and_adds_its_own_worker_id(self):
        """COPY: the worker layers its worker_id on the parent's run_id."""

        async def child(name: str) -> dict[str, str]:
            with overlay.pushed(RuntimeContextOverlay(worker_id=name)):
                await asyncio.sleep(0)
                return cs.current_overlay().ids()

        with overlay.pushed(RuntimeContextOverlay(run_id="run-9")):
            results = await asyncio.gather(
                *(cs.spawn(child(f"w{i}")) for i in range(4))
            )
            assert {"run_id": "run-9"} == cs.current_overlay().ids()

        assert [
            {"run_id": "run-9", "worker_id": f"w{i}"} for i in range(4)
        ] == results


class TestRenderAndConnector:
    def test_render_context_is_the_top(self):
        """The innermost render context shadows the outer one."""
        assert cs.render_context() is None
        with cs.using(render=LlmRenderContext(model="outer")):
            with cs.using(render=LlmRenderContext(model="inner")):
                assert "inner" == cs.render_context().model
            assert "outer" == cs.render_context().model

    def test_no_connector_raises(self):
        """current_connector() with none active is NoConnectorContext."""
        with pytest.raises(cs.NoConnectorContext):
            cs.current_connector()

    def test_workers_get_neither(self):
        """render and connector are NONE: a worker starts without them."""
        ctx = ConnectorCtx(name="crm")
        with cs.using(render=LlmRenderContext(model="m"), connector=ctx):
            assert ctx is cs.current_connector()
            worker = cs.Scope.capture_inherited()
            inline = cs.Scope.current()

        assert worker.run(cs.render_context) is None
        with pytest.raises(cs.NoConnectorContext):
            worker.run(cs.current_connector)
        assert ctx is inline.run(cs.current_connector)

    def test_wrong_types_are_refused(self):
        """Each stack takes only its own kind of value."""
        with pytest.raises(TypeError, match="ConnectorCtx"):
            cs.stacks.connector.push("crm")  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="LlmRenderContext"):
            cs.stacks.render.push({"model": "m"})  # type: ignore[arg-type]


class TestTrusted:
    def test_raises_the_depth_and_workers_start_at_zero(self):
        """trusted() raises trusted_depth; a worker capture resets it."""
        with cs.trusted():
            with cs.trusted():
                assert 2 == cs.stacks.trusted_depth.value
            assert 0 == cs.Scope.capture_inherited()[cs.stacks.trusted_depth]
            assert 1 == cs.Scope.current()["trusted_depth"]
        assert 0 == cs.stacks.trusted_depth.value


class TestDescribePolicy:
    def test_nothing_installed_says_fail_closed(self):
        """With no execution policy the text says every tool is refused."""
        text = cs.describe_policy()

        assert "no execution policy" in text
        assert "refused" in text.splitlines()[0]
        assert "catastrophic" in text
        assert "act_auto" in text

    def test_states_the_facts_of_each_policy(self):
        """Ceiling, approval, commands and autonomy are each stated."""
        with cs.using(
            execution=CapabilityPolicy(
                tools=("fs.*", "shell"),
                side_effect_level="workspace_write",
                workspace_roots=["/srv/ws"],
                read_only_roots=["/srv/data"],
                recursion_limit=2,
            ),
            approval=ToolApprovalPolicy(
                rules=[
                    ApprovalRule(action="deny", tool="fs.delete*"),
                    ApprovalRule(action="ask", tool="shell"),
                ]
            ),
            command=CommandPolicy(allow=["git status *"], default="deny"),
            autonomy=AutonomyPolicy(
                tier="act_with_approval", requires_human_actions=["deploy.*"]
            ),
        ):
            tools, approval, commands, autonomy = (
                cs.describe_policy().splitlines()
            )

        assert "only fs.*, shell" in tools
        assert "workspace_write" in tools
        assert "/srv/ws" in tools
        assert "read only under /srv/data" in tools
        assert "2 more worker" in tools
        assert "deny fs.delete*" in approval
        assert "ask shell" in approval
        assert "no handler" in approval
        assert "git status *" in commands
        assert "refused" in commands
        assert "act_with_approval" in autonomy
        assert "deploy.*" in autonomy

    def test_unrestricted_and_nothing(self):
        """Unset means any; an empty tuple means none."""
        with cs.using(execution=CapabilityPolicy.unrestricted()):
            assert cs.describe_policy().startswith("Tools: any.")
        with cs.using(execution=CapabilityPolicy(tools=())):
            assert cs.describe_policy().startswith("Tools: none.")
