"""Scopes across processes: encode/decode, signed envelopes, process pools."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import re
from collections.abc import Iterator

import propagation_tools as tools
import pytest

import capscope as cs
from capscope import propagation
from capscope.policies import (
    ApprovalRule,
    AutonomyPolicy,
    CapabilityPolicy,
    CommandPolicy,
    ConnectorCtx,
    DynamicPermissionPolicy,
    LlmRenderContext,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)

KEY = b"a shared secret, 32 bytes or so."


def roundtrip() -> cs.Scope:
    """The current scope, through a signed envelope and back."""
    headers: dict[str, str] = {}
    propagation.inject(headers, key=KEY)
    return propagation.extract(headers, key=KEY)


# -- what travels -------------------------------------------------------------------


def test_every_stack_that_travels_arrives_as_a_worker_would_get_it():
    outer_command = CommandPolicy(allow=["ls *"], default="deny")
    inner_command = CommandPolicy(deny_patterns=["rm"], default="allow")
    with (
        cs.using(
            execution=CapabilityPolicy(tools=("fs.*",), recursion_limit=3),
            approval=ToolApprovalPolicy(
                rules=[ApprovalRule("ask", tool="fs.write")], timeout=5
            ),
            command=outer_command,
            permissions=DynamicPermissionPolicy(deny=["net.*"]),
            overlay=RuntimeContextOverlay(run_id="r-1"),
            autonomy=AutonomyPolicy(tier="act_with_approval"),
            render=LlmRenderContext(provider="acme"),
            connector=ConnectorCtx(name="slack"),
        ),
        cs.using(
            command=inner_command,
            overlay=RuntimeContextOverlay(worker_id="w-2"),
        ),
        cs.stacks.trusted_depth.raised(),
    ):
        sent = cs.Scope.capture_inherited()
        scope = roundtrip()

    for name in ("execution", "approval", "command", "permissions"):
        assert sent[name] == scope[name], name
    # the receiver adds one overlay frame: the envelope's id, for its audit
    *overlays, received = scope["overlay"]
    assert tuple(overlays) == sent["overlay"]
    assert (received.run_id, received.worker_id) == ("r-1", "w-2")
    assert set(received.attributes) == {propagation.ENVELOPE_ATTRIBUTE}
    assert scope["execution"][0].recursion_limit == 2  # a hop taken
    assert scope["command"] == (outer_command, inner_command)  # COPY: whole
    assert scope["autonomy"] == (AutonomyPolicy(tier="act_with_approval"),)
    assert scope["render"] == ()  # NONE: a worker starts without one
    assert scope["connector"] == ()  # no codec: never travels
    assert scope["trusted_depth"] == 0


def test_an_empty_scope_travels_as_nothing():
    assert {"v": 1, "stacks": {}} == propagation.encode(cs.Scope.empty())
    scope = propagation.decode(propagation.encode(cs.Scope.empty()))
    assert scope["execution"] == ()


def test_no_recursion_left_refuses_to_send():
    with (
        cs.using(execution=CapabilityPolicy(recursion_limit=0)),
        pytest.raises(cs.CeilingExceeded),
    ):
        propagation.encode()


def test_a_handler_stays_behind_and_the_receiver_fails_closed():
    @cs.needs_approval("deploy")
    def deploy(env: str) -> str:
        return env

    with cs.using(
        execution=CapabilityPolicy.unrestricted(),
        approval=ToolApprovalPolicy(handler=lambda request: True),
    ):
        assert deploy("prod") == "prod"
        scope = roundtrip()
    assert scope["approval"][0].handler is None
    with pytest.raises(cs.ApprovalDenied) as info:
        scope.run(deploy, "prod")
    assert info.value.decision.gate is cs.Gate.APPROVAL_UNAVAILABLE


def test_a_consent_hook_and_an_escalation_stay_behind():
    with cs.using(
        command=CommandPolicy(consent=lambda d: True),
        permissions=DynamicPermissionPolicy(on_escalation=lambda c: True),
    ):
        scope = roundtrip()
    assert scope["command"][0].consent is None
    assert scope["permissions"][0].on_escalation is None


def test_a_narrowing_hook_cannot_travel_unnamed():
    def redact(decision: object, result: object) -> object:
        return result

    with (
        cs.using(command=CommandPolicy(post=redact)),
        pytest.raises(cs.PolicyConfigError) as info,
    ):
        propagation.encode()
    assert info.value.field == "command[0].post"
    assert "register_hook" in info.value.message


def test_a_predicate_matcher_cannot_travel():
    policy = DynamicPermissionPolicy(deny={"fs.*": lambda call: True})
    with (
        cs.using(permissions=policy),
        pytest.raises(cs.PolicyConfigError) as info,
    ):
        propagation.encode()
    assert info.value.field.startswith("permissions[0]")


@pytest.fixture
def named_hook() -> Iterator[object]:
    def pre(decision: object) -> object:
        return "deny"

    propagation.register_hook("tests.deny_all", pre)
    yield pre
    propagation.unregister_hook("tests.deny_all")


def test_a_registered_hook_travels_by_name(named_hook):
    policy = CommandPolicy(allow=["ls *"], default="allow", pre=named_hook)
    with cs.using(command=policy):
        data = propagation.encode()
        headers: dict[str, str] = {}
        propagation.inject(headers, key=KEY)
    assert data["stacks"]["command"][0]["hooks"] == {"pre": "tests.deny_all"}
    scope = propagation.extract(headers, key=KEY)
    assert scope["command"][0].pre is named_hook


def test_an_unknown_hook_name_is_refused_on_arrival(named_hook):
    with cs.using(command=CommandPolicy(pre=named_hook)):
        data = propagation.encode()
    propagation.unregister_hook("tests.deny_all")
    with pytest.raises(propagation.EnvelopeError, match=r"tests\.deny_all"):
        propagation.decode(data)


def test_hook_names_are_unique():
    propagation.register_hook("tests.one", print)
    try:
        with pytest.raises(ValueError, match="taken"):
            propagation.register_hook("tests.one", repr)
        assert propagation.register_hook("tests.one", print) is print
    finally:
        propagation.unregister_hook("tests.one")


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "not a capscope scope"),
        ({"v": 2, "stacks": {}}, "version 2"),
        ({"v": 1, "stacks": {"tenant": []}}, "'tenant'"),
        ({"v": 1, "stacks": {"connector": []}}, "'connector'"),
        ({"v": 1, "stacks": {"execution": {}}}, "list of frames"),
        ({"v": 1, "stacks": {"execution": [{}]}}, "execution[0]"),
        (
            {"v": 1, "stacks": {"execution": [{"data": {"tools": "x"}}]}},
            "execution[0]",
        ),
        (
            {
                "v": 1,
                "stacks": {
                    "autonomy": [
                        {"data": {"tier": "suggest"}},
                        {"data": {"tier": "act_auto"}},
                    ]
                },
            },
            "refused by its stack",
        ),
    ],
)
def test_decode_refuses_what_it_cannot_trust(data, message):
    with pytest.raises(propagation.EnvelopeError, match=re.escape(message)):
        propagation.decode(data)


# -- signed envelopes ----------------------------------------------------------------


@pytest.fixture
def headers() -> dict[str, str]:
    carrier: dict[str, str] = {}
    with cs.using(execution=CapabilityPolicy(tools=("fs.read",))):
        propagation.inject(carrier, key=KEY, key_id="k1")
    return carrier


def test_a_flipped_byte_is_refused(headers):
    token = headers[propagation.HEADER]
    key_id, body, signature = token.split(".")
    index = len(body) // 2
    flipped = (
        body[:index] + ("A" if body[index] != "A" else "B") + body[index + 1 :]
    )
    headers[propagation.HEADER] = f"{key_id}.{flipped}.{signature}"
    with pytest.raises(propagation.EnvelopeError, match="or changed since"):
        propagation.extract(headers, key={"k1": KEY})


def test_a_widened_tool_list_without_the_key_is_refused(headers):
    key_id, body, signature = headers[propagation.HEADER].split(".")
    payload = json.loads(
        base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    )
    frame = payload["scope"]["stacks"]["execution"][0]["data"]
    assert frame["tools"] == ["fs.read"]
    frame["tools"] = ["*"]
    widened = base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()
    headers[propagation.HEADER] = f"{key_id}.{widened.rstrip('=')}.{signature}"
    with pytest.raises(propagation.EnvelopeError, match="or changed since"):
        propagation.extract(headers, key={"k1": KEY})
    forged = {}
    with cs.using(execution=CapabilityPolicy(tools=("*",))):
        propagation.inject(
            forged, key=b"the attacker's own key, 32 bytes.", key_id="k1"
        )
    with pytest.raises(propagation.EnvelopeError, match="signed with another"):
        propagation.extract(forged, key={"k1": KEY})


def test_an_old_envelope_is_refused(headers, monkeypatch):
    real = propagation.time.time
    monkeypatch.setattr(propagation.time, "time", lambda: real() + 120)
    with pytest.raises(
        propagation.EnvelopeError, match="older than max_age 60"
    ):
        propagation.extract(headers, key={"k1": KEY}, max_age=60)
    scope = propagation.extract(headers, key={"k1": KEY}, max_age=600)
    assert scope["execution"][0].tools == ("fs.read",)


def test_an_unknown_key_id_is_refused_and_rotation_works(headers):
    new = b"the next shared secret, 32 bytes"
    with pytest.raises(propagation.EnvelopeError, match="unknown key id 'k1'"):
        propagation.extract(headers, key={"k2": new})
    scope = propagation.extract(headers, key={"k1": KEY, "k2": new})
    assert scope["execution"][0].tools == ("fs.read",)


@pytest.mark.parametrize(
    ("token", "message"),
    [
        (None, "no scope envelope"),
        ("abc", "malformed"),
        (42, "malformed"),
    ],
)
def test_missing_and_malformed_envelopes(token, message):
    carrier = {} if token is None else {propagation.HEADER: token}
    with pytest.raises(propagation.EnvelopeError, match=message):
        propagation.extract(carrier, key=KEY)


def test_bad_keys_are_refused_when_used():
    with pytest.raises(propagation.EnvelopeError, match="key: a shared key"):
        propagation.inject({}, key=b"")
    with pytest.raises(propagation.EnvelopeError, match="key_id"):
        propagation.inject({}, key=KEY, key_id="a.b")
    with pytest.raises(propagation.EnvelopeError, match="key"):
        propagation.extract({}, key={})


def test_extracted_scope_enforces():
    with cs.using(execution=CapabilityPolicy(tools=("net.*",))):
        scope = roundtrip()
    assert scope.run(tools.try_read, "x") == "denied: tool_ceiling"


def test_every_handler_stays_behind():
    """Outer handlers are code too: none travels, the receiver fails
    closed."""
    with (
        cs.using(approval=ToolApprovalPolicy(handler=lambda r: True)),
        cs.using(approval=ToolApprovalPolicy(handler=lambda r: True)),
    ):
        scope = roundtrip()

    (policy,) = scope["approval"]
    assert () == policy.handlers


def test_an_inner_allow_stays_inner_across_the_wire():
    """The frames an approval policy was pushed under travel with it, so an
    allow pushed inside cannot become the receiver's root (issue 14)."""

    @cs.needs_approval("deploy")
    def deploy() -> str:
        return "deployed"

    allow = ToolApprovalPolicy(rules=[ApprovalRule("allow", tool="deploy")])
    with (
        cs.using(
            execution=CapabilityPolicy.unrestricted(),
            approval=ToolApprovalPolicy(timeout=5),
        ),
        cs.using(approval=allow),
    ):
        scope = roundtrip()

    (policy,) = scope["approval"]
    assert ((), allow.rules) == policy.rule_frames
    with pytest.raises(cs.ApprovalDenied):
        scope.run(deploy)


# -- process pools -------------------------------------------------------------------


@pytest.fixture(scope="module")
def pool() -> Iterator[propagation.ScopedProcessPoolExecutor]:
    context = multiprocessing.get_context("spawn")
    executor = propagation.ScopedProcessPoolExecutor(
        max_workers=1, mp_context=context
    )
    yield executor
    executor.shutdown()


def test_the_child_runs_under_the_parents_policy(pool):
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",)),
        overlay=RuntimeContextOverlay(run_id="r-9", worker_id="w-1"),
    ):
        allowed = pool.submit(tools.try_read, "a").result(timeout=60)
        who = pool.submit(tools.whoami).result(timeout=60)
    with cs.using(execution=CapabilityPolicy(tools=("net.*",))):
        refused = pool.submit(tools.try_read, "a").result(timeout=60)
    assert pool.submit(os.getpid).result(timeout=60) != os.getpid()
    assert allowed == "note a"
    assert who == ("r-9", "w-1")
    assert refused == "denied: tool_ceiling"


def test_without_a_policy_the_child_fails_closed(pool):
    # The same worker process ran jobs with policies before this one.
    assert pool.submit(tools.try_read, "a").result(timeout=60) == (
        "denied: no_policy"
    )


def test_a_job_may_take_any_keyword_argument(pool):
    # the receiving helper's own parameters are positional-only
    job = pool.submit(dict, data="d", fn="f", args="a", kwargs="k")
    assert {"data": "d", "fn": "f", "args": "a", "kwargs": "k"} == job.result(
        timeout=60
    )


def test_map_carries_the_scope_too(pool):
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        results = list(pool.map(tools.try_read, ["a", "b"], timeout=60))
    assert results == ["note a", "note b"]


def test_a_narrowing_hook_refuses_the_submit(pool):
    with (
        cs.using(command=CommandPolicy(pre=lambda d: None)),
        pytest.raises(cs.PolicyConfigError),
    ):
        pool.submit(tools.whoami)


def test_a_multiprocessing_pool_job_runs_under_the_encoded_scope():
    context = multiprocessing.get_context("spawn")
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",)),
        overlay=RuntimeContextOverlay(run_id="r-mp"),
    ):
        data = propagation.encode()
    with context.Pool(1) as pool:
        allowed = pool.apply(
            propagation.run_encoded, (data, tools.try_read, "a")
        )
        who = pool.apply(propagation.run_encoded, (data, tools.whoami))
        bare = pool.apply(tools.try_read, ("a",))
    assert (allowed, who, bare) == (
        "note a",
        ("r-mp", None),
        "denied: no_policy",
    )
