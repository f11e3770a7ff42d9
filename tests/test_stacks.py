"""The built-in stacks: inherit modes, type checks and narrowing through pushes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import capscope as cs
from capscope import stacks
from capscope.policies import (
    ApprovalAction,
    ApprovalRule,
    AutonomyPolicy,
    AutonomyTier,
    CapabilityPolicy,
    CommandPolicy,
    ConnectorCtx,
    DynamicPermissionPolicy,
    LlmRenderContext,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
    ToolCall,
    check_permissions,
    resolve_tier,
)

SAMPLES = {
    "execution": CapabilityPolicy(tools=("fs.*",)),
    "approval": ToolApprovalPolicy(
        rules=[ApprovalRule(action="ask", tool="fs.*")]
    ),
    "command": CommandPolicy(allow=["git status *"]),
    "permissions": DynamicPermissionPolicy(deny=["net.*"]),
    "overlay": RuntimeContextOverlay(run_id="r"),
    "autonomy": AutonomyPolicy(tier="suggest"),
    "render": LlmRenderContext(model="m"),
    "connector": ConnectorCtx(name="c"),
}
MODES = {
    "execution": cs.Inherit.TOP,
    "approval": cs.Inherit.TOP,
    "command": cs.Inherit.COPY,
    "permissions": cs.Inherit.COPY,
    "overlay": cs.Inherit.COPY,
    "autonomy": cs.Inherit.COPY,
    "render": cs.Inherit.NONE,
    "connector": cs.Inherit.NONE,
}


class TestBuiltins:
    def test_all_registered_as_built_in(self):
        """The ten built-in stacks and counters are registered, in order."""
        assert (
            *SAMPLES,
            "trusted_depth",
            "command_hook_depth",
        ) == cs.registry.names()[:10]
        assert all(
            "built-in" == cs.registry.origin(n)
            for n in cs.registry.names()[:10]
        )

    @pytest.mark.parametrize("name", list(SAMPLES))
    def test_inherit_modes(self, name):
        """Each stack has the inherit mode docs/concepts.md gives it."""
        assert MODES[name] is cs.registry.get(name).inherit

    @pytest.mark.parametrize("name", list(SAMPLES))
    def test_wrong_type_is_refused(self, name):
        """A value that is not the stack's policy class is a TypeError."""
        stack = cs.registry.get(name)
        with pytest.raises(TypeError, match=type(SAMPLES[name]).__name__):
            stack.push(object())
        assert 0 == stack.depth

    @pytest.mark.parametrize("name", list(SAMPLES))
    def test_worker_capture_follows_the_mode(self, name):
        """Two frames pushed: COPY keeps both, TOP keeps the effective one
        as one frame, NONE keeps nothing."""
        stack = cs.registry.get(name)
        value = SAMPLES[name]
        with stack.pushed(value), stack.pushed(value) as top:
            worker = cs.Scope.capture_inherited()[stack]
            inline = cs.Scope.current()[stack]

        expected = {
            cs.Inherit.COPY: inline,
            cs.Inherit.TOP: (top,),
            cs.Inherit.NONE: (),
        }[MODES[name]]
        assert expected == worker
        assert 2 == len(inline)

    @pytest.mark.parametrize("name", [n for n in SAMPLES if n != "connector"])
    def test_codec_round_trip(self, name):
        """Every stack that travels round-trips its sample through its codec."""
        stack = cs.registry.get(name)
        assert SAMPLES[name] == stack.codec.from_data(
            stack.codec.to_data(SAMPLES[name])
        )

    def test_connector_never_travels(self):
        """Connector objects have no codec."""
        assert stacks.connector.codec is None


class TestApprovalStack:
    def test_push_intersects(self):
        """Rules add up; the inner handler wins; timeouts take the smaller."""

        def outer_handler(_request: object) -> bool:
            return False

        def inner_handler(_request: object) -> bool:
            return True

        deny = ApprovalRule(action="deny", tool="fs.delete")
        ask = ApprovalRule(action="ask", tool="shell")
        with (
            stacks.approval.pushed(
                ToolApprovalPolicy(
                    rules=[deny], handler=outer_handler, timeout=30
                )
            ),
            stacks.approval.pushed(
                ToolApprovalPolicy(
                    rules=[ask], handler=inner_handler, timeout=90
                )
            ) as effective,
        ):
            assert ((deny,), (ask,)) == effective.rule_frames
            assert inner_handler is effective.handler
            assert 30 == effective.timeout

    def test_worker_gets_a_fresh_frame_with_nothing_remembered(self):
        """Remembered answers live on the frame: a worker never sees them."""
        with stacks.approval.pushed(ToolApprovalPolicy()):
            stacks.approval.frame_state()["remembered"] = {"tool:x": "allow"}
            worker = cs.Scope.capture_inherited()
            inline = cs.Scope.current()

            assert {} == worker.run(stacks.approval.frame_state)
            assert "remembered" in inline.run(stacks.approval.frame_state)

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.lists(
                st.builds(
                    ApprovalRule,
                    action=st.sampled_from(list(ApprovalAction)),
                    tool=st.sampled_from(["fs.*", "fs.read", "shell", None]),
                ),
                max_size=3,
            ),
            min_size=1,
            max_size=4,
        ),
        st.sampled_from(["fs.read", "fs.write", "shell", "net.get"]),
    )
    def test_pushes_never_widen(self, rule_lists, tool):
        """Along any sequence of pushes an approval decision only hardens."""
        rank = {
            ApprovalAction.ALLOW: 0,
            ApprovalAction.ASK: 1,
            ApprovalAction.DENY: 2,
        }
        tokens = []
        try:
            previous = None
            for rules in rule_lists:
                tokens.append(
                    stacks.approval.push(ToolApprovalPolicy(rules=rules))
                )
                action = stacks.approval.top().evaluate(ToolCall(tool)).action
                if previous is not None:
                    assert rank[action] >= rank[previous]
                previous = action
        finally:
            for token in reversed(tokens):
                stacks.approval.pop(token)


class TestEveryFrameStacks:
    def test_an_outer_permission_deny_beats_an_inner_allow(self):
        """Every permissions frame is checked; the outer deny wins."""
        with (
            stacks.permissions.pushed(
                DynamicPermissionPolicy(deny=["fs.write"])
            ),
            stacks.permissions.pushed(DynamicPermissionPolicy(allow=["fs.*"])),
        ):
            denial = check_permissions(
                stacks.permissions.frames(), ToolCall("fs.write")
            )

        assert denial is not None
        assert 0 == denial[0]

    def test_command_frames_are_all_kept(self):
        """Command frames are stored as pushed: every one must allow."""
        a, b = CommandPolicy(allow=["ls *"]), CommandPolicy(allow=["git *"])
        with stacks.command.pushed(a), stacks.command.pushed(b):
            assert (a, b) == stacks.command.frames()
            assert (a, b) == cs.Scope.capture_inherited()[stacks.command]


class TestAutonomyStack:
    def test_a_higher_tier_raises(self):
        """A push may lower the tier, never raise it."""
        with stacks.autonomy.pushed(AutonomyPolicy(tier="suggest")):
            with pytest.raises(cs.CeilingExceeded):
                stacks.autonomy.push(AutonomyPolicy(tier="act_auto"))
            with stacks.autonomy.pushed(AutonomyPolicy(tier="shadow")) as top:
                assert AutonomyTier.SHADOW is top.tier

    def test_unset_fields_are_inherited(self):
        """The top frame is the effective policy: requires-human survives."""
        with (
            stacks.autonomy.pushed(
                AutonomyPolicy(
                    tier="act_with_approval",
                    requires_human_actions=["deploy.*"],
                )
            ),
            stacks.autonomy.pushed(
                AutonomyPolicy(action_tiers={"fs.write": "suggest"})
            ) as top,
        ):
            assert ("deploy.*",) == top.requires_human_actions
            assert AutonomyTier.SUGGEST is resolve_tier(top, "fs.write")
            assert AutonomyTier.ACT_WITH_APPROVAL is resolve_tier(
                top, "net.get"
            )

    @settings(max_examples=100, deadline=None)
    @given(
        st.lists(
            st.builds(
                AutonomyPolicy,
                tier=st.none() | st.sampled_from(list(AutonomyTier)),
                action_tiers=st.dictionaries(
                    st.sampled_from(["fs.write", "fs.*", "net.get"]),
                    st.sampled_from(list(AutonomyTier)),
                    max_size=2,
                ),
            ),
            min_size=1,
            max_size=5,
        )
    )
    def test_pushes_never_widen(self, pushes):
        """Along any sequence of accepted pushes no action's tier rises."""
        tokens = []
        try:
            previous = None
            for policy in pushes:
                try:
                    tokens.append(stacks.autonomy.push(policy))
                except cs.CeilingExceeded:
                    continue
                top = stacks.autonomy.top()
                if previous is not None:
                    for action in ("fs.write", "fs.read", "net.get", "x.y"):
                        assert resolve_tier(top, action) <= resolve_tier(
                            previous, action
                        )
                previous = top
        finally:
            for token in reversed(tokens):
                stacks.autonomy.pop(token)


class TestOnePolicyProtocol:
    """Every built-in kind keeps the `Policy` protocol, and its stack
    narrows through the kind's own `narrow` (issue 14)."""

    PAIRS = (
        (
            "execution",
            CapabilityPolicy(tools=("fs.*", "net.*")),
            CapabilityPolicy(tools=("fs.*",)),
        ),
        (
            "approval",
            ToolApprovalPolicy(rules=[ApprovalRule("ask", tool="a")]),
            ToolApprovalPolicy(rules=[ApprovalRule("allow", tool="a")]),
        ),
        (
            "command",
            cs.policies.CommandPolicy(default="ask"),
            cs.policies.CommandPolicy(default="deny"),
        ),
        (
            "permissions",
            cs.policies.DynamicPermissionPolicy(deny=["x"]),
            cs.policies.DynamicPermissionPolicy(allow=["y"]),
        ),
        (
            "overlay",
            RuntimeContextOverlay(run_id="r"),
            RuntimeContextOverlay(worker_id="w"),
        ),
        (
            "autonomy",
            cs.policies.AutonomyPolicy(tier="act_auto"),
            cs.policies.AutonomyPolicy(tier="suggest"),
        ),
        (
            "render",
            cs.policies.LlmRenderContext(model="a"),
            cs.policies.LlmRenderContext(model="b"),
        ),
    )

    @pytest.mark.parametrize(("name", "outer", "inner"), PAIRS)
    def test_the_stack_stores_the_kinds_own_meet(self, name, outer, inner):
        stack = cs.registry.get(name)

        with stack.pushed(outer), stack.pushed(inner):
            top = stack.top()

        assert isinstance(outer, cs.policies.Policy)
        assert outer.narrow(inner) == top
        assert outer.describe()

    @pytest.mark.parametrize(("name", "outer", "inner"), PAIRS)
    def test_another_type_is_a_type_error(self, name, outer, inner):
        with pytest.raises(TypeError, match=name):
            cs.registry.get(name).push("not a policy")

    def test_verdicts_agree_with_the_engine(self):
        """A kind's `verdict` says what its gate does in a real call."""
        ceiling = CapabilityPolicy(tools=("fs.*",))
        call = cs.policies.ToolCall("shell")

        @cs.requires_tool("shell")
        def shell():
            return "ran"

        with (
            cs.using(execution=ceiling),
            pytest.raises(cs.ToolDenied) as raised,
        ):
            shell()

        verdict = ceiling.verdict(call)
        assert (verdict.gate, verdict.reason) == (
            raised.value.decision.gate.value,
            raised.value.decision.reason,
        )
        line = cs.policies.ToolCall("shell", command="ls; rm -rf /")
        policy = cs.policies.CommandPolicy(allow=["ls *"])
        with cs.using(command=policy):
            decision = cs.check_command("ls; rm -rf /")
        assert (decision.action.value, decision.reason) == (
            policy.verdict(line).action.value,
            policy.verdict(line).reason,
        )
