"""
The fast path (issue 16): a tool allowed by its name alone under a set of
frames is decided again by identity tests only, while those frames are in
force. It must never allow what the gates would refuse.

A differential test runs random policies (ceilings, approval rules that do
and do not read arguments, permission frames, autonomy tiers) and random
calls, each twice (the first may compile, the second may take the fast
path), and compares both with the gates' own verdict (`check_tool`, which
never takes the fast path). Then the ways a tool's verdict can change
under the same frames: a remembered answer, a one-time escalation grant.
"""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import capscope as cs
from capscope.policies import (
    ApprovalRule,
    AutonomyPolicy,
    CapabilityPolicy,
    DynamicPermissionPolicy,
    PermissionRule,
    ToolApprovalPolicy,
)


def deny_all(request: cs.ApprovalRequest) -> cs.ApprovalDecision:
    return cs.ApprovalDecision.deny("the test says no")


def allow_and_remember(request: cs.ApprovalRequest) -> cs.ApprovalDecision:
    return cs.ApprovalDecision.allow(remember="scope")


@cs.requires_tool("fs.read", side_effect="read_only")
def fs_read(target: str) -> str:
    return target


@cs.requires_tool("fs.write", side_effect="workspace_write")
def fs_write(target: str) -> str:
    return target


@cs.requires_tool("net.get", side_effect="network")
def net_get(target: str) -> str:
    return target


@cs.needs_approval("deploy", side_effect="process_exec")
def deploy(target: str) -> str:
    return target


TOOLS = {
    "fs.read": fs_read,
    "fs.write": fs_write,
    "net.get": net_get,
    "deploy": deploy,
}
TARGETS = ["notes.txt", "https://example.org/x", "https://evil.test/y"]

tool_globs = st.sampled_from(
    ["fs.*", "fs.read", "fs.write", "net.*", "deploy", "*"]
)
approval_rules = st.builds(
    ApprovalRule,
    st.sampled_from(["allow", "ask", "deny"]),
    tool=st.none() | tool_globs,
    domain=st.none() | st.sampled_from(["evil.test", "example.org"]),
    source=st.sampled_from(["policy", "user"]),
)
approvals = st.builds(
    ToolApprovalPolicy,
    rules=st.lists(approval_rules, max_size=3),
    handler=st.sampled_from([deny_all, allow_and_remember]),
)
permission_rules = st.one_of(
    tool_globs,
    st.builds(
        PermissionRule, tool_globs, st.sampled_from(["*evil*", "notes*"])
    ),
)
permission_frames = st.builds(
    DynamicPermissionPolicy,
    deny=st.lists(permission_rules, max_size=2),
    allow=st.none() | st.lists(permission_rules, max_size=2),
)
frames = st.fixed_dictionaries(
    {
        "execution": st.builds(
            CapabilityPolicy,
            tools=st.lists(tool_globs, max_size=3).map(tuple),
        ),
    },
    optional={
        "approval": approvals,
        "permissions": permission_frames,
        "autonomy": st.builds(
            AutonomyPolicy,
            tier=st.sampled_from(["act_with_approval", "act_auto", "suggest"]),
        ),
    },
)


#: An ask is refused by the handler, or for want of one: one outcome.
ASKED = {cs.Gate.APPROVAL, cs.Gate.APPROVAL_UNAVAILABLE}


def outcome(tool: str, target: str) -> tuple[str, object]:
    try:
        TOOLS[tool](target)
    except cs.PolicyDenied as refused:
        gate = refused.decision.gate if refused.decision else None
        return "refused", "approval" if gate in ASKED else gate
    return "allowed", None


def expected(tool: str, target: str) -> tuple[str, object]:
    decision = cs.check_tool(TOOLS[tool], target)
    if decision.action is cs.Action.ALLOW:
        return "allowed", None
    if decision.action is cs.Action.ASK:
        policy = cs.stacks.approval.top()
        handlers = () if policy is None else policy.handlers
        if handlers and all(h is allow_and_remember for h in handlers):
            return "allowed", None  # and remembered, for the scope
        return "refused", "approval"
    if decision.gate in ASKED:
        return "refused", "approval"
    return "refused", decision.gate


@settings(
    max_examples=400,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    layers=st.lists(frames, min_size=1, max_size=3),
    calls=st.lists(
        st.tuples(st.sampled_from(list(TOOLS)), st.sampled_from(TARGETS)),
        min_size=1,
        max_size=6,
    ),
)
def test_the_fast_path_decides_as_the_gates_do(layers, calls):
    with contextlib.ExitStack() as stack:
        for layer in layers:
            try:
                stack.enter_context(cs.using(**layer))
            except cs.CapscopeError:
                continue  # a push the stacks refuse changes nothing
        for tool, target in calls:
            want = expected(tool, target)
            assert want == outcome(tool, target), (tool, target, "first")
            assert want == outcome(tool, target), (tool, target, "again")


def test_the_readme_policy_file_takes_the_fast_path():
    scope = cs.load_policy_data(
        {
            "execution": {"tools": ["fs.*", "shell"]},
            "approval": {"rules": [{"action": "ask", "tool": "fs.write*"}]},
        }
    )
    keeper = type(fs_read)._capscope_keeper
    keeper.allowed_under = None
    assert "a" == scope.run(fs_read, "a")
    assert keeper.allowed_under is not None  # compiled for these frames
    assert scope.run(keeper._fast_allowed)
    assert not keeper._fast_allowed()  # not outside them


def test_a_remembered_denial_is_not_forgotten_by_the_fast_path():
    asked = []

    def deny_and_remember(request):
        asked.append(request.tool)
        return cs.ApprovalDecision.deny("no", remember="scope")

    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",)),
        approval=ToolApprovalPolicy(handler=deny_and_remember),
    ):
        assert "a" == fs_write("a")  # allowed by its name alone
        assert "a" == fs_write("a")  # the fast path
        with cs.using(autonomy=AutonomyPolicy(tier="act_with_approval")):
            with pytest.raises(cs.ApprovalDenied):
                fs_write("a")  # asked: denied, remembered for the frame
        # The autonomy frame is gone, the approval frame (and its memory)
        # is not: the same call is denied as remembered, without asking.
        with pytest.raises(cs.ApprovalDenied, match="denied earlier"):
            fs_write("a")
        assert "b" == fs_write("b")  # other arguments: nothing remembered
    assert ["fs.write"] == asked


def test_a_grant_for_one_call_is_not_a_fast_path():
    escalations = []

    def once(call):
        escalations.append(call.tool)
        return "once"

    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",)),
        permissions=DynamicPermissionPolicy(
            deny=["fs.read"], on_escalation=once
        ),
    ):
        for _ in range(3):
            assert "a" == fs_read("a")
    assert ["fs.read"] * 3 == escalations


def test_a_rule_that_reads_arguments_is_read_every_call():
    with cs.using(
        execution=CapabilityPolicy(tools=("net.*",)),
        approval=ToolApprovalPolicy(
            rules=[ApprovalRule("deny", tool="net.*", domain="evil.test")]
        ),
    ):
        assert "https://example.org/x" == net_get("https://example.org/x")
        assert "https://example.org/x" == net_get("https://example.org/x")
        with pytest.raises(cs.ApprovalDenied, match="denied by rules"):
            net_get("https://evil.test/y")


def test_a_remembered_answer_is_a_fast_path_for_its_arguments():
    keeper = type(deploy)._capscope_keeper
    asked = []

    def approve(request):
        asked.append(request.arguments["target"])
        return cs.ApprovalDecision.allow(remember="scope")

    with cs.using(
        execution=CapabilityPolicy(tools=("deploy",)),
        approval=ToolApprovalPolicy(handler=approve),
    ):
        for _ in range(3):
            assert "prod" == deploy("prod")
        assert keeper._fast_allowed_call(("prod",), {})
        assert not keeper._fast_allowed_call(("staging",), {})
        assert not keeper._fast_allowed_call((1,), {})
        assert "staging" == deploy(target="staging")
    assert ["prod", "staging"] == asked
    assert not keeper._fast_allowed_call(("prod",), {})  # not outside


def test_plain_equal_values_of_other_types_are_other_arguments():
    from capscope._enforce import _arguments_key

    keys = {_arguments_key((v,), {}) for v in (1, 1.0, True, "1")}
    assert 4 == len(keys)
    assert _arguments_key(([1],), {}) is None
    assert _arguments_key((), {"a": 1, "b": 2}) == _arguments_key(
        (), {"b": 2, "a": 1}
    )


@pytest.mark.parametrize(
    ("first", "second"), [(0.0, -0.0), (-0.0, 0.0), (1, True), (0, False)]
)
def test_equal_values_remembered_apart_are_asked_apart(first, second):
    """
    Python calls these equal, but their remembered answers are kept apart
    (their JSON differs): an answer remembered for one is not a fast path
    for the other, which is asked, as the gates would.
    """
    asked = []

    def approve(request):
        asked.append(request.arguments["target"])
        return cs.ApprovalDecision.allow(remember="scope")

    with cs.using(
        execution=CapabilityPolicy(tools=("deploy",)),
        approval=ToolApprovalPolicy(handler=approve),
    ):
        for _ in range(2):
            deploy(first)
        deploy(second)
    assert [repr(a) for a in asked] == [repr(first), repr(second)]


def test_a_stack_first_used_after_the_fast_path_was_learned(tmp_path):
    """
    The fast path skips reading a stack no frame was ever pushed on
    (`AmbientStack._used`): in a fresh process, learn the fast path with
    only a ceiling, then push the first frame ever on each gating stack:
    the next call must see it.
    """
    import subprocess
    import sys

    script = tmp_path / "first_use.py"
    script.write_text(
        """
import capscope as cs
from capscope.policies import (
    ApprovalRule, AutonomyPolicy, CapabilityPolicy, DynamicPermissionPolicy,
    ToolApprovalPolicy,
)
from capscope.stacks import approval, autonomy, permissions

@cs.requires_tool("fs.write", side_effect="workspace_write")
def write(x):
    return x

assert not (approval._used or permissions._used or autonomy._used)
seen = []
with cs.using(execution=CapabilityPolicy(tools=["fs.*"])):
    write(1); write(2)  # learned: the fast path
    for push in (
        {"permissions": DynamicPermissionPolicy(deny=["fs.write"])},
        {"approval": ToolApprovalPolicy(rules=[ApprovalRule("deny", tool="fs.write")])},
        {"autonomy": AutonomyPolicy(tier="shadow")},
    ):
        with cs.using(**push):
            try:
                write(3)
                seen.append("allowed")
            except cs.PolicyDenied as exc:
                seen.append(type(exc).__name__)
        write(4)  # and the fast path again, once the frame is gone
print(seen)
"""
    )
    out = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.strip() == "['ToolDenied', 'ApprovalDenied', 'ActionProposed']"
