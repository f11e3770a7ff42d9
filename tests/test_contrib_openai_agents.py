"""
capscope.contrib.openai_agents, with the real Agents SDK: runs are driven by
the SDK's own offline model (`agents.testing.ScriptedModel`), approvals go
through the adapter's `approve`/`reject` (which record the human's answer
and then call `RunState.approve`/`reject`), and spans go to a local tracing
processor installed for this module (nothing is exported).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from agents import (
    Agent,
    FunctionTool,
    ModelBehaviorError,
    RunContextWrapper,
    Runner,
    UserError,
    function_tool,
    set_trace_processors,
)
from agents.testing import ScriptedModel, assistant_message, function_call
from agents.tool_context import ToolContext
from agents.tracing import TracingProcessor

import capscope as cs
from capscope.audit import Recorder
from capscope.contrib import openai_agents as oa
from capscope.contrib.openai_agents import (
    agent_tool,
    guarded_tool,
    narrowed_agent,
    policy_instructions,
    run,
)
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    ToolApprovalPolicy,
)

ROOT = CapabilityPolicy.unrestricted()


class Spans(TracingProcessor):
    """Keeps every finished span in memory: tracing never leaves the test."""

    def __init__(self) -> None:
        self.spans: list[Any] = []

    def on_trace_start(self, trace: Any) -> None:
        pass

    def on_trace_end(self, trace: Any) -> None:
        pass

    def on_span_start(self, span: Any) -> None:
        pass

    def on_span_end(self, span: Any) -> None:
        self.spans.append(span)

    def shutdown(self) -> None:
        pass

    def force_flush(self) -> None:
        pass

    def decisions(self) -> list[dict[str, Any]]:
        return [
            span.span_data.data
            for span in self.spans
            if getattr(span.span_data, "name", None) == oa.SPAN_NAME
        ]


@pytest.fixture(scope="module")
def spans() -> Iterator[Spans]:
    collector = Spans()
    set_trace_processors([collector])  # replaces the exporting processor
    yield collector
    set_trace_processors([])


@pytest.fixture(autouse=True)
def _clean_spans(spans: Spans) -> None:
    spans.spans.clear()


# -- tools --------------------------------------------------------------------

calls: list[tuple[str, Any]] = []


@pytest.fixture(autouse=True)
def _clean_calls() -> None:
    calls.clear()


@cs.needs_approval(reason="ships code")
def deploy(env: str, version: str = "latest") -> str:
    """Deploy a version to an environment.

    Args:
        env: Where to deploy.
        version: What to deploy.
    """
    calls.append(("deploy", env))
    return f"deployed {version} to {env}"


@cs.needs_approval(reason="ships code")
async def deploy_async(env: str) -> str:
    """Deploy to an environment, asynchronously."""
    await asyncio.sleep(0)
    calls.append(("deploy_async", env))
    return f"deployed to {env}"


@cs.requires_tool("fs.write", side_effect="workspace_write")
async def write_file(path: str, text: str) -> str:
    """Write a file."""
    await asyncio.sleep(0.01)  # a sibling run gets a turn here
    calls.append(("fs.write", path))
    return f"wrote {len(text)} characters to {path}"


@cs.requires_tool("fs.read", side_effect="read_only")
def read_file(path: str) -> str:
    """Read a file."""
    calls.append(("fs.read", path))
    return f"contents of {path}"


@cs.needs_approval(reason="notifies people")
def notify(who: str) -> str:
    calls.append(("notify", who))
    return f"notified {who}"


@cs.needs_approval(reason="ships code")
def deploy_and_notify(env: str) -> str:
    """Deploy, then notify the team (a second tool that asks)."""
    calls.append(("deploy_and_notify", env))
    try:
        return notify("team")
    except cs.ApprovalDenied as exc:
        return f"deployed, but: {exc}"


def step(*items: Any) -> list[Any]:
    return list(items)


def done(text: str = "done") -> list[Any]:
    return [assistant_message(text)]


def outputs_seen(model: ScriptedModel) -> list[str]:
    """The tool results the model was shown on its last call."""
    call = model.last_call
    assert call is not None
    return [
        item["output"]
        for item in call.input
        if isinstance(item, dict)
        and item.get("type") == "function_call_output"
    ]


def agent_with(model: ScriptedModel, *tools: Any, **kwargs: Any) -> Agent[Any]:
    return Agent(name="ops", model=model, tools=list(tools), **kwargs)


# -- 4. the schema the model sees ---------------------------------------------


@pytest.mark.parametrize("fn", [deploy, deploy_async, write_file, read_file])
def test_schema_is_the_sdks_own(fn: Any) -> None:
    guarded = guarded_tool(fn)
    for plain in (function_tool(fn), function_tool(fn.__wrapped__)):
        assert guarded.name == plain.name
        assert guarded.description == plain.description
        assert guarded.params_json_schema == plain.params_json_schema
        assert guarded.strict_json_schema == plain.strict_json_schema


def test_schema_options_pass_through() -> None:
    guarded = guarded_tool(deploy, name_override="ship", strict_mode=False)
    plain = function_tool(deploy, name_override="ship", strict_mode=False)
    assert (guarded.name, guarded.params_json_schema) == (
        plain.name,
        plain.params_json_schema,
    )


def test_undecorated_function_is_refused() -> None:
    def plain(x: int) -> int:
        return x

    with pytest.raises(TypeError, match="not a capscope tool"):
        guarded_tool(plain)


# -- 2. ask becomes the SDK's approval (5. sync and async) ---------------------


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fn", "name"), [(deploy, "deploy"), (deploy_async, "deploy_async")]
)
async def test_ask_is_an_sdk_interruption_and_approve_runs_once(
    fn: Any, name: str, spans: Spans
) -> None:
    model = ScriptedModel(
        [step(function_call(name, {"env": "prod"}, call_id="c1")), done()]
    )
    agent = agent_with(model, guarded_tool(fn))
    with cs.using(execution=ROOT), Recorder() as rec:
        result = await Runner.run(agent, "ship it")
        assert [item.tool_name for item in result.interruptions] == [name]
        assert json.loads(result.interruptions[0].raw_item.arguments) == {
            "env": "prod"
        }
        assert calls == []  # held: nothing ran

        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        result = await Runner.run(agent, state)

    assert result.final_output == "done"
    assert calls == [(name, "prod")]  # once
    assert any("prod" in out for out in outputs_seen(model))
    granted = [d for d in rec.for_tool(name) if d.action == cs.Action.GRANTED]
    assert len(granted) == 1
    # reported as trace events: the question, then capscope's grant
    stages = [
        (d["action"], d.get("stage"))
        for d in spans.decisions()
        if d["tool"] == name
    ]
    assert ("ask", "approval_requested") in stages
    assert ("granted", None) in stages


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fn", "name"), [(deploy, "deploy"), (deploy_async, "deploy_async")]
)
async def test_reject_never_runs_the_body(fn: Any, name: str) -> None:
    model = ScriptedModel(
        [step(function_call(name, {"env": "prod"}, call_id="c1")), done()]
    )
    agent = agent_with(model, guarded_tool(fn))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship it")
        state = result.to_state()
        oa.reject(state, result.interruptions[0], message="not on a Friday")
        result = await Runner.run(agent, state)
    assert calls == []
    assert outputs_seen(model) == ["not on a Friday"]
    assert result.final_output == "done"


@pytest.mark.asyncio
async def test_allowed_calls_are_not_held() -> None:
    model = ScriptedModel(
        [
            step(function_call("read_file", {"path": "a.txt"}, call_id="c1")),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(read_file))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "read")
    assert result.interruptions == []
    assert calls == [("fs.read", "a.txt")]
    assert outputs_seen(model) == ["contents of a.txt"]


@pytest.mark.asyncio
async def test_an_allow_rule_settles_the_ask_without_interrupting() -> None:
    model = ScriptedModel(
        [
            step(function_call("deploy", {"env": "staging"}, call_id="c1")),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    allow = ToolApprovalPolicy(rules=[ApprovalRule("allow", tool="deploy")])
    with cs.using(execution=ROOT, approval=allow):
        result = await Runner.run(agent, "ship it")
    assert result.interruptions == []
    assert calls == [("deploy", "staging")]


# -- 3. denials reach the model ------------------------------------------------


@pytest.mark.asyncio
async def test_denial_is_the_tool_result_not_a_crash(spans: Spans) -> None:
    model = ScriptedModel(
        [
            step(
                function_call(
                    "write_file",
                    {"path": "/etc/x", "text": "hi"},
                    call_id="c1",
                )
            ),
            done("could not"),
        ]
    )
    agent = agent_with(model, guarded_tool(write_file))
    with cs.using(execution=CapabilityPolicy(tools=("fs.read",))):
        result = await Runner.run(agent, "write")
    assert result.final_output == "could not"
    assert calls == []
    assert outputs_seen(model) == [
        (
            "capscope denied fs.write: tool 'fs.write' exceeds the tool "
            "ceiling ('fs.read',) (gate tool_ceiling)"
        )
    ]
    [denied] = [d for d in spans.decisions() if d["action"] == "deny"]
    assert (denied["tool"], denied["gate"]) == ("fs.write", "tool_ceiling")


@pytest.mark.asyncio
async def test_no_policy_fails_closed_as_a_tool_result() -> None:
    model = ScriptedModel(
        [step(function_call("read_file", {"path": "a"}, call_id="c1")), done()]
    )
    result = await Runner.run(
        agent_with(model, guarded_tool(read_file)), "read"
    )
    assert calls == []
    [seen] = outputs_seen(model)
    assert seen.startswith("capscope denied fs.read: no execution policy")
    assert seen.endswith("(gate no_policy)")
    assert result.final_output == "done"


@pytest.mark.asyncio
async def test_other_errors_keep_the_sdks_failure_handling() -> None:
    @cs.requires_tool("boom")
    def boom() -> str:
        """Fails."""
        raise RuntimeError("kaput")

    model = ScriptedModel(
        [step(function_call("boom", {}, call_id="c1")), done()]
    )
    with cs.using(execution=ROOT):
        await Runner.run(agent_with(model, guarded_tool(boom)), "go")
    # the SDK's default formatter, which hides the exception from the model
    assert outputs_seen(model) == [
        "An error occurred while running the tool. Please try again."
    ]

    strict = ScriptedModel(
        [step(function_call("boom", {}, call_id="c1")), done()]
    )
    tool = guarded_tool(boom, failure_error_function=None)
    with cs.using(execution=ROOT), pytest.raises(UserError, match="kaput"):
        await Runner.run(agent_with(strict, tool), "go")

    # ...while a refusal still reaches the model with failure_error_function=None
    refused = ScriptedModel(
        [step(function_call("boom", {}, call_id="c1")), done()]
    )
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        await Runner.run(agent_with(refused, tool), "go")
    assert outputs_seen(refused)[0].startswith("capscope denied boom:")


# -- 1. concurrent runs, each its own worker -----------------------------------


@pytest.mark.asyncio
async def test_concurrent_runs_get_their_own_policy_and_attribution() -> None:
    def writer() -> tuple[ScriptedModel, Agent[Any]]:
        model = ScriptedModel(
            [
                step(
                    function_call(
                        "write_file",
                        {"path": "out.txt", "text": "x"},
                        call_id="c1",
                    )
                ),
                done(),
            ]
        )
        return model, agent_with(model, guarded_tool(write_file))

    model_a, agent_a = writer()
    model_b, agent_b = writer()
    with (
        cs.using(execution=CapabilityPolicy(tools=("fs.*",))),
        Recorder() as rec,
    ):
        await asyncio.gather(
            run(agent_a, "write", run_id="run-a", worker_id="agent-a"),
            run(
                agent_b,
                "write",
                push={"execution": CapabilityPolicy(tools=("fs.read",))},
                run_id="run-b",
                worker_id="agent-b",
            ),
        )
    assert calls == [("fs.write", "out.txt")]
    assert outputs_seen(model_a) == ["wrote 1 characters to out.txt"]
    assert outputs_seen(model_b)[0].startswith("capscope denied fs.write")
    by_run = {
        (d.overlay.run_id, d.overlay.worker_id): d.action
        for d in rec.for_tool("fs.write")
    }
    assert by_run == {
        ("run-a", "agent-a"): cs.Action.ALLOW,
        ("run-b", "agent-b"): cs.Action.DENY,
    }


@pytest.mark.asyncio
async def test_run_refuses_a_wider_push_before_starting() -> None:
    model = ScriptedModel([done()])
    with cs.using(execution=CapabilityPolicy(tools=("fs.read",))):
        with pytest.raises(cs.CeilingExceeded):
            await run(
                Agent(name="a", model=model),
                "hi",
                push={"execution": CapabilityPolicy(tools=("fs.*",))},
            )
    assert model.calls == ()


@pytest.mark.asyncio
async def test_resume_with_run_keeps_the_runs_policy() -> None:
    model = ScriptedModel(
        [step(function_call("deploy", {"env": "prod"}, call_id="c1")), done()]
    )
    agent = agent_with(model, guarded_tool(deploy))
    narrow = {"execution": CapabilityPolicy(tools=("deploy",))}
    with cs.using(execution=ROOT), Recorder() as rec:
        result = await run(agent, "ship", push=narrow, run_id="r-1")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        await run(agent, state, push=narrow, run_id="r-1")
    assert calls == [("deploy", "prod")]
    [granted] = [
        d for d in rec.for_tool("deploy") if d.action == cs.Action.GRANTED
    ]
    assert granted.overlay.run_id == "r-1"


# -- 6. attacks ---------------------------------------------------------------


@pytest.mark.asyncio
async def test_a_replayed_call_id_does_not_run_again() -> None:
    replay = function_call("deploy", {"env": "prod"}, call_id="c1")
    model = ScriptedModel(
        [
            step(function_call("deploy", {"env": "prod"}, call_id="c1")),
            step(replay),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        await Runner.run(agent, state)
    assert calls == [("deploy", "prod")]


@pytest.mark.asyncio
async def test_an_approved_call_id_reused_for_other_arguments_is_refused() -> (
    None
):
    model = ScriptedModel(
        [
            step(function_call("deploy", {"env": "staging"}, call_id="c1")),
            step(function_call("deploy", {"env": "prod"}, call_id="c1")),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        # the SDK refuses the reuse itself; capscope's grant was used up
        with pytest.raises(ModelBehaviorError, match="reused"):
            await Runner.run(agent, state)
    assert calls == [("deploy", "staging")]


@pytest.mark.asyncio
async def test_always_approve_does_not_answer_capscope_for_other_calls() -> (
    None
):
    model = ScriptedModel(
        [
            step(function_call("deploy", {"env": "staging"}, call_id="c1")),
            step(function_call("deploy", {"env": "prod"}, call_id="c2")),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0], always=True)
        result = await Runner.run(agent, state)
    assert calls == [("deploy", "staging")]
    [seen] = outputs_seen(model)[-1:]
    assert seen.startswith(
        "capscope denied deploy: the Agents SDK approval does not"
    )
    assert seen.endswith("(gate approval)")


@pytest.mark.asyncio
async def test_the_applications_own_handler_still_has_its_say() -> None:
    def script() -> ScriptedModel:
        return ScriptedModel(
            [
                step(function_call("deploy", {"env": "prod"}, call_id="c1")),
                done(),
            ]
        )

    asked: list[str] = []

    def ops(request: cs.ApprovalRequest) -> bool:
        asked.append(request.arguments["env"])
        return request.arguments["env"] != "prod"

    model = script()
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT, approval=ToolApprovalPolicy(handler=ops)):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])  # the SDK's human says yes
        await Runner.run(agent, state)
    assert calls == []  # ...but the application's handler said no
    assert asked == ["prod"]
    assert outputs_seen(model) == [
        "capscope denied deploy: denied by the handler (gate approval)"
    ]

    # and when it grants too, the call runs
    model = ScriptedModel(
        [
            step(function_call("deploy", {"env": "staging"}, call_id="c1")),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT, approval=ToolApprovalPolicy(handler=ops)):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        await Runner.run(agent, state)
    assert calls == [("deploy", "staging")]


@pytest.mark.asyncio
async def test_an_approval_does_not_cover_what_the_body_asks_for() -> None:
    model = ScriptedModel(
        [
            step(
                function_call(
                    "deploy_and_notify", {"env": "prod"}, call_id="c1"
                )
            ),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy_and_notify))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        await Runner.run(agent, state)
    assert calls == [("deploy_and_notify", "prod")]  # notify never ran
    assert outputs_seen(model) == [
        (
            "deployed, but: the approval given through the Agents SDK was "
            "for another call"
        )
    ]


@pytest.mark.asyncio
async def test_a_tool_that_skips_the_guard_still_fails_closed() -> None:
    # the SDK's plain function_tool around a capscope tool: no interruption,
    # but the decorator still asks, and no one can answer
    model = ScriptedModel(
        [step(function_call("deploy", {"env": "prod"}, call_id="c1")), done()]
    )
    agent = agent_with(model, function_tool(deploy))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship")
    assert result.interruptions == []
    assert calls == []
    # and calling the guarded tool's invoker without the runner asks no one
    tool = guarded_tool(deploy)
    with cs.using(execution=ROOT), Recorder() as rec:
        ctx = ToolContext(
            None, tool_name="deploy", tool_call_id="x", tool_arguments="{}"
        )
        out = await tool.on_invoke_tool(ctx, json.dumps({"env": "prod"}))
    assert calls == []
    assert out.startswith("capscope denied deploy:")
    assert [d.gate for d in rec.denied()] == [cs.Gate.APPROVAL_UNAVAILABLE]


# -- sub-agents and handoffs ------------------------------------------------------


@pytest.mark.asyncio
async def test_a_sub_agent_is_a_narrowed_worker() -> None:
    sub_model = ScriptedModel(
        [
            step(
                function_call(
                    "write_file", {"path": "a", "text": "x"}, call_id="s1"
                ),
                function_call("read_file", {"path": "a"}, call_id="s2"),
            ),
            done("sub done"),
        ]
    )
    sub = Agent(
        name="reader",
        model=sub_model,
        tools=[guarded_tool(write_file), guarded_tool(read_file)],
    )
    tool = agent_tool(
        sub,
        push={"execution": CapabilityPolicy(tools=("fs.read",))},
        worker_id="reader",
        tool_description="Reads files.",
    )
    model = ScriptedModel(
        [
            step(function_call("reader", {"input": "look"}, call_id="c1")),
            done(),
        ]
    )
    with (
        cs.using(execution=CapabilityPolicy(tools=("fs.*",))),
        Recorder() as rec,
    ):
        result = await run(agent_with(model, tool), "go", run_id="r-1")
    assert result.final_output == "done"
    assert calls == [("fs.read", "a")]
    write, read = rec.for_tool("fs.write"), rec.for_tool("fs.read")
    assert [
        (d.action, d.overlay.run_id, d.overlay.worker_id) for d in write
    ] == [(cs.Action.DENY, "r-1", "reader")]
    assert [d.overlay.worker_id for d in read] == ["reader"]
    assert outputs_seen(model) == ["sub done"]


@pytest.mark.asyncio
async def test_a_sub_agent_cannot_widen() -> None:
    sub = Agent(name="writer", model=ScriptedModel([done()]))
    tool = agent_tool(
        sub,
        push={"execution": CapabilityPolicy(tools=("fs.*", "net.*"))},
        tool_description="Writes.",
    )
    model = ScriptedModel(
        [step(function_call("writer", {"input": "x"}, call_id="c1")), done()]
    )
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        with pytest.raises(UserError) as info:
            await Runner.run(agent_with(model, tool), "go")
    assert isinstance(info.value.__cause__, cs.CeilingExceeded)


@pytest.mark.asyncio
async def test_a_handoff_target_stays_narrowed() -> None:
    model = ScriptedModel(
        [
            step(function_call("transfer_to_writer", {}, call_id="h1")),
            step(
                function_call(
                    "write_file", {"path": "a", "text": "x"}, call_id="c1"
                ),
                function_call("read_file", {"path": "a"}, call_id="c2"),
            ),
            done(),
        ]
    )
    writer = Agent(
        name="writer",
        model=model,
        tools=[guarded_tool(write_file), guarded_tool(read_file)],
    )
    triage = Agent(name="triage", model=model, handoffs=[writer])
    writer.handoffs = [triage]  # a cycle back stays narrowed too
    narrowed = narrowed_agent(
        triage,
        push={"execution": CapabilityPolicy(tools=("fs.read",))},
        worker_id="support",
    )
    assert narrowed.handoffs[0].handoffs[0] is narrowed
    with (
        cs.using(execution=CapabilityPolicy(tools=("fs.*",))),
        Recorder() as rec,
    ):
        result = await run(narrowed, "go", run_id="r-1")
    assert result.last_agent.name == "writer"
    assert calls == [("fs.read", "a")]
    [denied] = rec.for_tool("fs.write")
    assert (denied.action, denied.overlay.worker_id) == (
        cs.Action.DENY,
        "support",
    )
    # the originals are untouched
    assert writer.tools[0] is not narrowed.handoffs[0].tools[0]


def test_narrowed_agent_refuses_what_it_cannot_narrow() -> None:
    plain = Agent(name="a", tools=[function_tool(read_file)])
    with pytest.raises(TypeError, match="not guarded by capscope"):
        narrowed_agent(plain, push={})


@pytest.mark.asyncio
async def test_a_narrowed_agent_cannot_widen() -> None:
    model = ScriptedModel(
        [step(function_call("read_file", {"path": "a"}, call_id="c1")), done()]
    )
    wide = narrowed_agent(
        agent_with(model, guarded_tool(read_file)),
        push={"execution": CapabilityPolicy(tools=("*",))},
    )
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        with pytest.raises(UserError) as info:
            await Runner.run(wide, "go")
    assert isinstance(info.value.__cause__, cs.CeilingExceeded)
    assert calls == []


# -- describe_policy as system text ---------------------------------------------


@pytest.mark.asyncio
async def test_policy_instructions_describe_each_runs_own_policy() -> None:
    model = ScriptedModel([done()])
    agent = Agent(
        name="a", model=model, instructions=policy_instructions("Be brief.")
    )
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        await run(
            agent,
            "hi",
            push={"execution": CapabilityPolicy(tools=("fs.read",))},
        )
    call = model.first_call
    assert call is not None
    assert call.system_instructions is not None
    assert call.system_instructions.startswith("Be brief.")
    assert "Tools: only fs.read." in call.system_instructions


def test_guarded_tools_are_function_tools() -> None:
    assert isinstance(guarded_tool(read_file), FunctionTool)


@pytest.mark.asyncio
async def test_a_tool_that_takes_the_context_is_approved_too() -> None:
    @cs.needs_approval(reason="ships code")
    def ship(ctx: RunContextWrapper[Any], env: str) -> str:
        """Ship to an environment."""
        calls.append(("ship", env))
        return f"shipped to {env}"

    tool = guarded_tool(ship)
    assert tool.params_json_schema == function_tool(ship).params_json_schema
    model = ScriptedModel(
        [step(function_call("ship", {"env": "prod"}, call_id="c1")), done()]
    )
    agent = agent_with(model, tool)
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "ship")
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        await Runner.run(agent, state)
    assert calls == [("ship", "prod")]


@pytest.mark.asyncio
async def test_the_users_needs_approval_adds_to_capscopes() -> None:
    model = ScriptedModel(
        [step(function_call("read_file", {"path": "a"}, call_id="c1")), done()]
    )
    agent = agent_with(model, guarded_tool(read_file, needs_approval=True))
    with cs.using(execution=ROOT):
        result = await Runner.run(agent, "read")
        assert [i.tool_name for i in result.interruptions] == ["read_file"]
        assert calls == []
        state = result.to_state()
        oa.approve(state, result.interruptions[0])
        await Runner.run(agent, state)
    assert calls == [("fs.read", "a")]


# -- adversarial review ---------------------------------------------------------


@pytest.mark.parametrize(
    "local",
    [
        pytest.param(
            lambda: __import__("agents").LocalShellTool(executor=lambda r: ""),
            id="local_shell",
        ),
        pytest.param(
            lambda: __import__("agents").ShellTool(executor=lambda r: ""),
            id="shell",
        ),
        pytest.param(
            lambda: __import__("agents").CustomTool(
                name="raw", description="d", on_invoke_tool=lambda c, i: ""
            ),
            id="custom",
        ),
    ],
)
def test_narrowed_agent_refuses_tools_that_run_here_unguarded(
    local: Any,
) -> None:
    # These run in this process (a shell, a custom tool): a narrowed agent
    # cannot push its narrowing around them, so it must not pretend to.
    plain = Agent(name="a", tools=[local()])
    with pytest.raises(TypeError, match="cannot narrow"):
        narrowed_agent(plain, push={})


def test_narrowed_agent_keeps_hosted_tools() -> None:
    from agents import WebSearchTool

    hosted = WebSearchTool()
    narrowed = narrowed_agent(Agent(name="a", tools=[hosted]), push={})
    assert narrowed.tools == [hosted]


@pytest.mark.asyncio
async def test_unanswered_asks_do_not_grow_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Call ids and arguments are the model's: an ask that is rejected or
    # never answered must not stay in memory forever.
    monkeypatch.setattr(oa, "_MAX_ASKED", 8, raising=False)
    tool = guarded_tool(deploy)
    ctx = RunContextWrapper(None)
    with cs.using(execution=ROOT):
        for i in range(50):
            params = {"env": f"env-{i}"}
            assert await tool.needs_approval(ctx, params, f"c{i}") is True
    ledger = getattr(tool, "_capscope_ledger")  # noqa: B009
    assert len(ledger) <= 8


# -- the human's answer is the adapter's, not the RunState's --------------------


async def _held(
    agent: Agent[Any],
) -> tuple[Any, list[Any]]:
    """Run *agent* until it stops for approval: its state and what is held."""
    result = await Runner.run(agent, "ship")
    assert calls == []
    return result.to_state(), list(result.interruptions)


@pytest.mark.asyncio
async def test_an_approval_set_on_the_run_state_directly_is_refused() -> None:
    # The SDK's approved flag is data in the RunState: anyone who can write
    # the state can set it. Alone it is not the human's yes.
    model = ScriptedModel(
        [step(function_call("deploy", {"env": "prod"}, call_id="c1")), done()]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT), Recorder() as rec:
        state, [item] = await _held(agent)
        state.approve(item)  # not through capscope's approve
        result = await Runner.run(agent, state)
    assert calls == []  # the body never ran
    [seen] = outputs_seen(model)
    assert seen.startswith("capscope denied deploy:")
    assert "approve(state, item)" in seen
    assert seen.endswith("(gate approval)")
    assert [d.gate for d in rec.denied()] == [cs.Gate.APPROVAL]
    assert result.final_output == "done"


@pytest.mark.asyncio
async def test_an_approval_for_one_call_does_not_approve_another() -> None:
    # The same tool, the same arguments, two call ids: the human approved
    # c1 through capscope; c2's approval was only written into the state.
    model = ScriptedModel(
        [
            step(
                function_call("deploy", {"env": "prod"}, call_id="c1"),
                function_call("deploy", {"env": "prod"}, call_id="c2"),
            ),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        state, items = await _held(agent)
        by_id = {item.raw_item.call_id: item for item in items}
        assert sorted(by_id) == ["c1", "c2"]
        oa.approve(state, by_id["c1"])
        state.approve(by_id["c2"])
        await Runner.run(agent, state)
    assert calls == [("deploy", "prod")]  # c1 only
    ran, refused = outputs_seen(model)
    assert ran == "deployed latest to prod"
    assert refused.startswith("capscope denied deploy:")
    assert "approve(state, item)" in refused


@pytest.mark.asyncio
async def test_an_adapter_approval_is_bound_to_the_arguments_held() -> None:
    # Approving c1 (staging) through capscope does not approve c2 (prod),
    # even when c2's approval is set on the state too.
    model = ScriptedModel(
        [
            step(
                function_call("deploy", {"env": "staging"}, call_id="c1"),
                function_call("deploy", {"env": "prod"}, call_id="c2"),
            ),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        state, items = await _held(agent)
        by_id = {item.raw_item.call_id: item for item in items}
        oa.approve(state, by_id["c1"])
        state.approve(by_id["c2"])
        await Runner.run(agent, state)
    assert calls == [("deploy", "staging")]


@pytest.mark.asyncio
async def test_a_deserialized_state_with_approvals_is_refused() -> None:
    from agents import RunState

    def script() -> ScriptedModel:
        return ScriptedModel(
            [
                step(function_call("deploy", {"env": "prod"}, call_id="c1")),
                done(),
            ]
        )

    # Approved in the serialized state, not through capscope: refused.
    model = script()
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        state, [item] = await _held(agent)
        state.approve(item)
        restored = await RunState.from_string(agent, state.to_string())
        await Runner.run(agent, restored)
    assert calls == []
    [seen] = outputs_seen(model)
    assert seen.startswith("capscope denied deploy:")
    assert "approve(state, item)" in seen

    # The same state, restored, then approved through capscope here: runs.
    model = script()
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        state, _ = await _held(agent)
        restored = await RunState.from_string(agent, state.to_string())
        [item] = restored.get_interruptions()
        oa.approve(restored, item)
        await Runner.run(agent, restored)
    assert calls == [("deploy", "prod")]

    # Approved through capscope in this process, then serialized and
    # restored (the answer is in this process, bound to that call): runs.
    calls.clear()
    model = script()
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        state, [item] = await _held(agent)
        oa.approve(state, item)
        restored = await RunState.from_string(agent, state.to_string())
        await Runner.run(agent, restored)
    assert calls == [("deploy", "prod")]


@pytest.mark.asyncio
async def test_an_adapter_approval_is_used_once() -> None:
    # Approving twice records one answer: the call runs once, and the
    # answer is not left over for a replay of the same call id.
    replay = function_call("deploy", {"env": "prod"}, call_id="c1")
    model = ScriptedModel(
        [
            step(function_call("deploy", {"env": "prod"}, call_id="c1")),
            step(replay),
            done(),
        ]
    )
    agent = agent_with(model, guarded_tool(deploy))
    with cs.using(execution=ROOT):
        state, [item] = await _held(agent)
        oa.approve(state, item)
        oa.approve(state, item)
        await Runner.run(agent, state)
    assert calls == [("deploy", "prod")]


@pytest.mark.asyncio
async def test_reject_after_approve_withdraws_capscopes_record() -> None:
    model = ScriptedModel(
        [step(function_call("deploy", {"env": "prod"}, call_id="c1")), done()]
    )
    tool = guarded_tool(deploy)
    agent = agent_with(model, tool)
    with cs.using(execution=ROOT):
        state, [item] = await _held(agent)
        oa.approve(state, item)
        oa.reject(state, item, message="changed my mind")
        # a forged state that flips the answer back has no record to use
        state.approve(item)
        await Runner.run(agent, state)
    assert calls == []
    [seen] = outputs_seen(model)
    assert seen.startswith("capscope denied deploy:")


@pytest.mark.asyncio
async def test_adapter_answers_do_not_grow_without_bound(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from agents.items import ToolApprovalItem
    from openai.types.responses import ResponseFunctionToolCall

    class State:
        """Stands in for a RunState: records what the SDK was told."""

        def __init__(self) -> None:
            self.approved: list[str] = []

        def approve(self, item: Any, always_approve: bool = False) -> None:
            self.approved.append(item.raw_item.call_id)

    monkeypatch.setattr(oa, "_MAX_ANSWERS", 8, raising=False)
    tool = guarded_tool(deploy)
    agent = agent_with(ScriptedModel([done()]), tool)
    state = State()
    ctx = RunContextWrapper(None)
    with cs.using(execution=ROOT):
        for i in range(50):
            params = {"env": f"env-{i}"}
            assert await tool.needs_approval(ctx, params, f"c{i}") is True
            raw = ResponseFunctionToolCall(
                type="function_call",
                name="deploy",
                call_id=f"c{i}",
                arguments=json.dumps(params),
            )
            oa.approve(state, ToolApprovalItem(agent=agent, raw_item=raw))
    assert len(state.approved) == 50
    ledger = getattr(tool, "_capscope_ledger")  # noqa: B009
    assert 0 < ledger.answered() <= 8
