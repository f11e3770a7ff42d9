"""
capscope.contrib.langchain, with real LangChain tools and real LangGraph
graphs (`StateGraph`, the prebuilt `ToolNode`, `InMemorySaver`,
`interrupt`/`Command(resume=...)`), driven by LangChain's own offline fake
chat model: no mocks, no network.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import Annotated, Any

import pytest
from langchain_core.language_models.fake_chat_models import (
    FakeMessagesListChatModel,
)
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.tools import (
    BaseTool,
    InjectedToolCallId,
    StructuredTool,
    Tool,
    ToolException,
    tool,
)
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph import START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode, ToolRuntime, tools_condition
from langgraph.types import Command, Send
from pydantic import BaseModel, Field

import capscope as cs
from capscope.audit import Recorder
from capscope.contrib.langchain import (
    APPROVAL,
    CapscopeTool,
    approval_interrupts,
    approve,
    as_worker,
    guard_tool,
    policy_message,
    reject,
)
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    ToolApprovalPolicy,
)

ROOT = CapabilityPolicy.unrestricted()


class FakeModel(FakeMessagesListChatModel):
    """LangChain's fake chat model, accepting `bind_tools` (it ignores them)."""

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> FakeModel:
        return self


def call(name: str, args: dict[str, Any], id_: str = "c1") -> dict[str, Any]:
    return {"name": name, "args": args, "id": id_, "type": "tool_call"}


def agent_graph(
    tools: Sequence[BaseTool],
    calls: Sequence[dict[str, Any]],
    *,
    send: bool = False,
    checkpointer: Any = True,
) -> Any:
    """
    A ReAct loop: the model asks for *calls*, a `ToolNode` runs them, the
    model says "done". With *send*, each call is its own task (`Send`).
    `checkpointer=None` for a sub-graph: it uses its parent's.
    """
    model = FakeModel(
        responses=[AIMessage("", tool_calls=list(calls)), AIMessage("done")]
    )
    bound = model.bind_tools(tools)

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [bound.invoke(state["messages"])]}

    def route(state: MessagesState) -> Any:
        if send:
            last = state["messages"][-1]
            if not getattr(last, "tool_calls", None):
                return "__end__"
            return [
                Send(
                    "tools",
                    {
                        "messages": [
                            last.model_copy(update={"tool_calls": [c]})
                        ]
                    },
                )
                for c in last.tool_calls
            ]
        return tools_condition(state)

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode(tools))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", route, ["tools", "__end__"])
    builder.add_edge("tools", "agent")
    if checkpointer is True:
        checkpointer = InMemorySaver()
    return builder.compile(checkpointer=checkpointer)


def tool_messages(result: dict[str, Any]) -> list[ToolMessage]:
    return [m for m in result["messages"] if isinstance(m, ToolMessage)]


def thread(name: str) -> dict[str, Any]:
    return {"configurable": {"thread_id": name}}


# --- tools ---------------------------------------------------------------

ran: list[str] = []


@pytest.fixture(autouse=True)
def _clear_ran() -> None:
    ran.clear()


@tool
def read_file(path: str) -> str:
    """Read a file from the workspace."""
    ran.append(f"read {path}")
    return f"contents of {path}"


@tool
async def aread_file(path: str) -> str:
    """Read a file from the workspace, asynchronously."""
    ran.append(f"aread {path}")
    return f"contents of {path}"


@tool
def deploy(env: str, version: str = "latest") -> str:
    """Ship a version to an environment."""
    ran.append(f"deploy {env} {version}")
    return f"deployed {version} to {env}"


@tool
async def adeploy(env: str) -> str:
    """Ship to an environment, asynchronously."""
    ran.append(f"adeploy {env}")
    return f"deployed to {env}"


class SearchArgs(BaseModel):
    """Search arguments."""

    query: str = Field(description="what to look for")
    limit: int = Field(default=5, ge=1)


def _search(query: str, limit: int = 5) -> str:
    ran.append(f"search {query}")
    return f"{limit} results for {query}"


search = StructuredTool.from_function(
    _search,
    name="search",
    description="Search the web.",
    args_schema=SearchArgs,
)


class Shout(BaseTool):
    """A BaseTool subclass."""

    name: str = "shout"
    description: str = "Shout a word."
    args_schema: type[BaseModel] = SearchArgs

    def _run(self, query: str, limit: int = 5) -> str:
        ran.append(f"shout {query}")
        return query.upper()


@tool
def stamp(text: str, tool_call_id: Annotated[str, InjectedToolCallId]) -> str:
    """Stamp a text with the call id (injected, not model-facing)."""
    ran.append(f"stamp {text}")
    return f"{text}@{tool_call_id}"


@tool
def whoami(runtime: ToolRuntime) -> str:
    """Say which call this is (ToolRuntime injected by the ToolNode)."""
    ran.append("whoami")
    return f"call {runtime.tool_call_id}"


g_read = guard_tool(
    read_file, "fs.read", side_effect="read_only", paths=["path"]
)
g_aread = guard_tool(
    aread_file, "fs.read", side_effect="read_only", paths=["path"]
)
g_deploy = guard_tool(deploy, approval=True, reason="ships code")
g_adeploy = guard_tool(adeploy, approval=True, reason="ships code")


# --- 4. the schema the model sees ---------------------------------------


@pytest.mark.parametrize(
    "original",
    [read_file, aread_file, deploy, search, Shout(), stamp, whoami],
    ids=lambda t: t.name,
)
def test_the_model_sees_the_same_tool(original: BaseTool) -> None:
    guarded = guard_tool(original)
    assert guarded.name == original.name
    assert guarded.description == original.description
    assert guarded.args_schema is original.args_schema
    assert guarded.tool_call_schema is original.tool_call_schema
    assert guarded.args == original.args
    assert (
        guarded.tool_call_schema.model_json_schema()
        == original.tool_call_schema.model_json_schema()
    )
    assert convert_to_openai_tool(guarded) == convert_to_openai_tool(original)
    assert convert_to_openai_tool(
        guarded, strict=True
    ) == convert_to_openai_tool(original, strict=True)
    assert guarded.return_direct == original.return_direct
    assert guarded.response_format == original.response_format


def test_the_schema_is_the_same_with_options() -> None:
    assert convert_to_openai_tool(g_deploy) == convert_to_openai_tool(deploy)
    assert convert_to_openai_tool(g_read) == convert_to_openai_tool(read_file)


def test_a_single_string_tool_is_refused() -> None:
    legacy = Tool(name="echo", func=lambda s: s, description="Echo.")
    with pytest.raises(TypeError, match="single-string Tool"):
        guard_tool(legacy)
    with pytest.raises(TypeError, match="already guarded"):
        guard_tool(g_read)


# --- 5 and 3. sync and async tools, allowed and denied ------------------


def test_sync_tool_allowed_and_denied() -> None:
    with cs.using(execution=CapabilityPolicy(workspace_roots=["/srv/ws"])):
        assert (
            g_read.invoke({"path": "/srv/ws/a.txt"})
            == "contents of /srv/ws/a.txt"
        )
        ok = g_read.invoke(call("read_file", {"path": "/srv/ws/b.txt"}))
        denied = g_read.invoke(
            call("read_file", {"path": "/etc/passwd"}, "c2")
        )
    assert isinstance(ok, ToolMessage)
    assert (ok.status, ok.content) == ("success", "contents of /srv/ws/b.txt")
    assert isinstance(denied, ToolMessage)
    assert denied.status == "error"
    assert denied.tool_call_id == "c2"
    assert denied.name == "read_file"
    assert denied.content.startswith("capscope denied fs.read: ")
    assert denied.content.endswith("(gate workspace_boundary)")
    assert ran == ["read /srv/ws/a.txt", "read /srv/ws/b.txt"]


@pytest.mark.asyncio
async def test_async_tool_allowed_and_denied() -> None:
    with cs.using(execution=CapabilityPolicy(workspace_roots=["/srv/ws"])):
        ok = await g_aread.ainvoke(
            call("aread_file", {"path": "/srv/ws/a.txt"})
        )
        denied = await g_aread.ainvoke(
            call("aread_file", {"path": "/etc/passwd"}, "c2")
        )
        # A sync tool called asynchronously runs in LangChain's executor,
        # and is checked in the caller's scope.
        sync_denied = await g_read.ainvoke(call("read_file", {"path": "/etc"}))
        sync_ok = await g_read.ainvoke(
            call("read_file", {"path": "/srv/ws/c"})
        )
    assert (ok.status, denied.status) == ("success", "error")
    assert "(gate workspace_boundary)" in denied.content
    assert (sync_ok.status, sync_denied.status) == ("success", "error")
    assert ran == ["aread /srv/ws/a.txt", "read /srv/ws/c"]


def test_no_policy_is_a_refusal_not_a_crash() -> None:
    message = g_read.invoke(call("read_file", {"path": "a.txt"}))
    assert message.status == "error"
    assert "(gate no_policy)" in message.content
    assert ran == []


def test_a_string_input_is_checked_as_the_first_field() -> None:
    @tool
    def write(path: str, text: str = "") -> str:
        """Write a file."""
        ran.append(f"write {path}")
        return "written"

    guarded = guard_tool(write, "fs.write", paths=["path"])
    with cs.using(execution=CapabilityPolicy(workspace_roots=["/srv/ws"])):
        assert "(gate workspace_boundary)" in guarded.invoke("/etc/passwd")
        assert guarded.invoke("/srv/ws/a") == "written"
    assert ran == ["write /srv/ws/a"]


def test_a_plain_input_gets_the_refusal_text() -> None:
    with cs.using(execution=CapabilityPolicy(tools=["net.*"])):
        text = g_read.invoke({"path": "a.txt"})
    assert text.startswith("capscope denied fs.read: ")
    assert text.endswith("(gate tool_ceiling)")


@pytest.mark.parametrize("use_async", [False, True])
def test_a_denied_call_in_a_graph_reaches_the_model(use_async: bool) -> None:
    # An async-only tool runs only in an async graph (LangChain's rule).
    second = "aread_file" if use_async else "read_file"
    graph = agent_graph(
        [g_read, g_aread],
        [
            call("read_file", {"path": "/etc/shadow"}, "c1"),
            call(second, {"path": "/srv/ws/ok.txt"}, "c2"),
        ],
    )
    with cs.using(execution=CapabilityPolicy(workspace_roots=["/srv/ws"])):
        if use_async:
            result = asyncio.run(
                graph.ainvoke({"messages": [HumanMessage("go")]}, thread("t"))
            )
        else:
            result = graph.invoke(
                {"messages": [HumanMessage("go")]}, thread("t")
            )
    refused, allowed = tool_messages(result)
    assert refused.status == "error"
    assert "capscope denied fs.read" in refused.content
    assert allowed.status == "success"
    assert result["messages"][-1].content == "done"  # the run went on
    assert ran == [f"{second.removesuffix('_file')} /srv/ws/ok.txt"]


def test_other_errors_behave_as_langchain_makes_them() -> None:
    @tool
    def broken(x: int) -> int:
        """Always fails."""
        raise ValueError("broken tool")

    def _handled(x: int) -> int:
        raise ToolException("handled failure")

    handled = StructuredTool.from_function(
        _handled,
        name="handled",
        description="Fails in a handled way.",
        handle_tool_error=True,
    )

    with cs.using(execution=ROOT):
        with pytest.raises(ValueError, match="broken tool"):
            guard_tool(broken).invoke(call("broken", {"x": 1}))
        message = guard_tool(handled).invoke(call("handled", {"x": 1}))
        assert (message.status, message.content) == (
            "error",
            "handled failure",
        )
        # Invalid arguments: the tool's own validation error, unchanged.
        with pytest.raises(Exception, match="validation error"):
            guard_tool(search).invoke({"query": "x", "limit": 0})


def test_injected_arguments_are_not_checked_and_still_injected() -> None:
    recorded: list[dict[str, Any]] = []

    def remember(request: cs.ApprovalRequest) -> bool:
        recorded.append(dict(request.arguments))
        return True

    graph = agent_graph(
        [guard_tool(stamp), guard_tool(whoami)],
        [call("stamp", {"text": "hi"}, "c1"), call("whoami", {}, "c2")],
        send=True,
    )
    rules = ToolApprovalPolicy(
        rules=[ApprovalRule("ask", tool="*")], handler=remember
    )
    with cs.using(execution=ROOT, approval=rules):
        result = graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        asks = approval_interrupts(result)
        # The model-facing arguments only: no call id, no runtime.
        assert sorted(str(a.value["arguments"]) for a in asks) == [
            "{'text': 'hi'}",
            "{}",
        ]
        result = graph.invoke(
            Command(resume={a.id: approve(a) for a in asks}), thread("t")
        )
    assert sorted(m.content for m in tool_messages(result)) == [
        "call c2",
        "hi@c1",
    ]
    assert sorted(map(str, recorded)) == ["{'text': 'hi'}", "{}"]


# --- 2. ask becomes a LangGraph interrupt ---------------------------------


@pytest.mark.parametrize("use_async", [False, True])
def test_approve_runs_the_body_once(use_async: bool) -> None:
    tools = [g_adeploy] if use_async else [g_deploy]
    name = tools[0].name
    graph = agent_graph(tools, [call(name, {"env": "prod"})])
    config = thread("t1")

    def run(payload: Any) -> dict[str, Any]:
        if use_async:
            return asyncio.run(graph.ainvoke(payload, config))
        return graph.invoke(payload, config)

    with cs.using(execution=ROOT):
        result = run({"messages": [HumanMessage("ship it")]})
        (asked,) = approval_interrupts(result)
        assert ran == []
        assert asked.value["type"] == APPROVAL
        assert asked.value["tool"] == name
        assert asked.value["tool_call_id"] == "c1"
        assert asked.value["arguments"]["env"] == "prod"
        assert asked.value["reason"] == "ships code"
        result = run(Command(resume=approve(asked)))
    (message,) = tool_messages(result)
    assert message.status == "success"
    assert "deployed" in message.content
    assert len(ran) == 1
    assert result["messages"][-1].content == "done"


@pytest.mark.parametrize("use_async", [False, True])
def test_reject_never_runs_the_body(use_async: bool) -> None:
    tools = [g_adeploy] if use_async else [g_deploy]
    graph = agent_graph(tools, [call(tools[0].name, {"env": "prod"})])
    config = thread("t1")

    def run(payload: Any) -> dict[str, Any]:
        if use_async:
            return asyncio.run(graph.ainvoke(payload, config))
        return graph.invoke(payload, config)

    with cs.using(execution=ROOT):
        (asked,) = approval_interrupts(run({"messages": [HumanMessage("go")]}))
        result = run(Command(resume=reject(asked, "not on a Friday")))
    (message,) = tool_messages(result)
    assert message.status == "error"
    assert message.content == (
        f"capscope denied {tools[0].name}: not on a Friday (gate approval)"
    )
    assert ran == []
    assert result["messages"][-1].content == "done"


def test_an_ask_rule_on_a_plain_tool_asks_too() -> None:
    graph = agent_graph([g_read], [call("read_file", {"path": "/srv/ws/x"})])
    rules = ToolApprovalPolicy(rules=[ApprovalRule("ask", path="/srv/ws/*")])
    workspace = CapabilityPolicy(workspace_roots=["/srv/ws"])
    with cs.using(execution=workspace, approval=rules):
        (asked,) = approval_interrupts(
            graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        )
        assert asked.value["capscope_tool"] == "fs.read"
        result = graph.invoke(Command(resume=approve(asked)), thread("t"))
    assert tool_messages(result)[0].status == "success"
    assert ran == ["read /srv/ws/x"]


@pytest.mark.parametrize("outer_answer", [True, False])
def test_the_applications_handler_still_has_its_say(
    outer_answer: bool,
) -> None:
    asked_outer: list[str] = []

    def outer(request: cs.ApprovalRequest) -> bool:
        asked_outer.append(request.tool)
        return outer_answer

    graph = agent_graph([g_deploy], [call("deploy", {"env": "prod"})])
    with cs.using(execution=ROOT, approval=ToolApprovalPolicy(handler=outer)):
        (asked,) = approval_interrupts(
            graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        )
        assert asked_outer == []  # the dry run asks no one
        result = graph.invoke(Command(resume=approve(asked)), thread("t"))
    assert asked_outer == ["deploy"]
    assert tool_messages(result)[0].status == (
        "success" if outer_answer else "error"
    )
    assert len(ran) == (1 if outer_answer else 0)


def test_a_deny_rule_is_not_asked_about() -> None:
    graph = agent_graph([g_deploy], [call("deploy", {"env": "prod"})])
    rules = ToolApprovalPolicy(rules=[ApprovalRule("deny", tool="deploy")])
    with cs.using(execution=ROOT, approval=rules):
        result = graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
    assert approval_interrupts(result) == []
    assert tool_messages(result)[0].status == "error"
    assert ran == []


def test_outside_a_graph_an_ask_is_refused() -> None:
    with cs.using(execution=ROOT):
        message = g_deploy.invoke(call("deploy", {"env": "prod"}))
    assert message.status == "error"
    assert "no LangGraph run to ask for approval in" in message.content
    assert ran == []


def test_already_decorated_functions_check_themselves() -> None:
    @tool
    @cs.needs_approval("release", reason="publishes")
    def release(version: str) -> str:
        """Publish a release."""
        ran.append(f"release {version}")
        return f"released {version}"

    guarded = guard_tool(release)
    assert guarded.own_check
    assert convert_to_openai_tool(guarded) == convert_to_openai_tool(release)
    graph = agent_graph([guarded], [call("release", {"version": "1.0"})])
    with cs.using(execution=ROOT):
        (asked,) = approval_interrupts(
            graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        )
        assert asked.value["reason"] == "publishes"
        result = graph.invoke(Command(resume=approve(asked)), thread("t"))
    assert tool_messages(result)[0].content == "released 1.0"
    assert ran == ["release 1.0"]

    with pytest.raises(ValueError, match="give no options"):
        guard_tool(release, "other")

    @cs.requires_tool("half")
    def half(x: int) -> int:
        return x

    async def ahalf(x: int) -> int:
        return x

    mixed = StructuredTool.from_function(
        half, coroutine=ahalf, name="half", description="Half checked."
    )
    with pytest.raises(TypeError, match="decorate both"):
        guard_tool(mixed)


# --- 6. attacker cases ------------------------------------------------------


@pytest.mark.parametrize(
    "resume",
    [
        True,
        "yes",
        "approve",
        1,
        {"approved": True},
        {"approved": "true", "call": None},
        {"decision": "approve"},
        [True],
    ],
    ids=repr,
)
def test_a_resume_value_that_is_not_a_clear_approval_refuses(
    resume: Any,
) -> None:
    graph = agent_graph([g_deploy], [call("deploy", {"env": "prod"})])
    with cs.using(execution=ROOT):
        (asked,) = approval_interrupts(
            graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        )
        if isinstance(resume, dict) and "call" in resume:
            resume = {**resume, "call": asked.value["call"]}
        result = graph.invoke(Command(resume=resume), thread("t"))
    (message,) = tool_messages(result)
    assert message.status == "error"
    assert "(gate approval)" in message.content
    assert ran == []


def test_an_approval_for_one_call_does_not_approve_another() -> None:
    # Each tool call is its own task (Send): two interrupts at once.
    graph = agent_graph(
        [g_deploy],
        [
            call("deploy", {"env": "staging"}, "c1"),
            # The same (model-chosen) tool call id, other arguments.
            call("deploy", {"env": "prod"}, "c1"),
        ],
        send=True,
    )
    with cs.using(execution=ROOT):
        result = graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        asks = approval_interrupts(result)
        assert sorted(a.value["arguments"]["env"] for a in asks) == [
            "prod",
            "staging",
        ]
        staging = next(
            a for a in asks if a.value["arguments"]["env"] == "staging"
        )
        # The staging approval, given as the answer to both interrupts.
        result = graph.invoke(
            Command(resume={a.id: approve(staging) for a in asks}), thread("t")
        )
    by_env = {
        m.status for m in tool_messages(result) if "staging" in m.content
    }
    assert by_env == {"success"}
    refused = [m for m in tool_messages(result) if m.status == "error"]
    assert len(refused) == 1
    assert "not an answer to this call" in refused[0].content
    assert ran == ["deploy staging latest"]


def test_an_old_approval_is_not_replayed_on_a_later_call() -> None:
    # The model asks for the very same call (same id, same arguments) twice,
    # in two turns; the answer to the first cannot answer the second.
    same = call("deploy", {"env": "prod"}, "c1")
    model = FakeModel(
        responses=[
            AIMessage("", tool_calls=[same]),
            AIMessage("", tool_calls=[same]),
            AIMessage("done"),
        ]
    )

    def agent(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("agent", agent)
    builder.add_node("tools", ToolNode([g_deploy]))
    builder.add_edge(START, "agent")
    builder.add_conditional_edges("agent", tools_condition)
    builder.add_edge("tools", "agent")
    graph = builder.compile(checkpointer=InMemorySaver())
    with cs.using(execution=ROOT):
        (first,) = approval_interrupts(
            graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        )
        result = graph.invoke(Command(resume=approve(first)), thread("t"))
        (second,) = approval_interrupts(result)  # asked again
        assert second.value["call"] != first.value["call"]
        result = graph.invoke(Command(resume=approve(first)), thread("t"))
    statuses = [m.status for m in tool_messages(result)]
    assert statuses == ["success", "error"]
    assert ran == ["deploy prod latest"]


def test_the_guard_cannot_be_skipped() -> None:
    with cs.using(execution=CapabilityPolicy(tools=["net.*"])):
        with pytest.raises(TypeError, match="runs only through"):
            g_read.func("/etc/passwd")  # type: ignore[misc]
        with pytest.raises(TypeError, match="runs only through"):
            g_read._run(path="/etc/passwd")
        # batch and stream go through invoke.
        (batched,) = g_read.batch([{"path": "/etc/passwd"}])
        (streamed,) = list(g_read.stream({"path": "/etc/passwd"}))
    assert "capscope denied" in batched
    assert "capscope denied" in streamed
    assert ran == []


# --- 1. per-run policy and attribution ----------------------------------


@pytest.mark.asyncio
async def test_concurrent_runs_get_their_own_policy_and_attribution() -> None:
    # Both runs ask for the same two reads; each runs under its own ceiling.
    calls = [
        call("read_file", {"path": "/srv/a/x"}, "c1"),
        call("aread_file", {"path": "/srv/b/y"}, "c2"),
    ]
    only_a = as_worker(
        agent_graph([g_read, g_aread], calls),
        push={"execution": CapabilityPolicy(workspace_roots=["/srv/a"])},
        worker_id="agent-a",
        run_id="thread_id",  # our thread ids: the test chose them
    )
    only_b = as_worker(
        agent_graph([g_read, g_aread], calls),
        push={"execution": CapabilityPolicy(workspace_roots=["/srv/b"])},
        worker_id="agent-b",
        run_id="thread_id",
    )
    with (
        cs.using(execution=CapabilityPolicy(workspace_roots=["/srv"])),
        Recorder() as recorder,
    ):
        result_a, result_b = await asyncio.gather(
            only_a.ainvoke(
                {"messages": [HumanMessage("go")]}, thread("run-a")
            ),
            only_b.ainvoke(
                {"messages": [HumanMessage("go")]}, thread("run-b")
            ),
        )
    assert [m.status for m in tool_messages(result_a)] == ["success", "error"]
    assert [m.status for m in tool_messages(result_b)] == ["error", "success"]
    decisions = [d for d in recorder if d.tool == "fs.read"]
    assert len(decisions) == 4
    seen = {
        (d.overlay.run_id, d.overlay.worker_id, d.action.value)
        for d in decisions
    }
    assert seen == {
        ("run-a", "agent-a", "allow"),
        ("run-a", "agent-a", "deny"),
        ("run-b", "agent-b", "allow"),
        ("run-b", "agent-b", "deny"),
    }
    for d in recorder.denied():
        # Each denial names its own run's roots, never the sibling's.
        root = "/srv/a" if d.overlay.run_id == "run-a" else "/srv/b"
        assert root in d.reason


def test_sync_runs_in_threads_get_their_own_policy() -> None:
    results: dict[str, Any] = {}
    calls = [call("read_file", {"path": "/srv/a/x"})]

    def run(name: str, roots: list[str]) -> None:
        graph = as_worker(
            agent_graph([g_read], calls),
            push={"execution": CapabilityPolicy(workspace_roots=roots)},
            run_id=name,
        )
        results[name] = graph.invoke(
            {"messages": [HumanMessage("go")]}, thread(name)
        )

    with (
        cs.using(execution=CapabilityPolicy(workspace_roots=["/srv"])),
        Recorder() as recorder,
    ):
        scope = cs.Scope.current()
        threads = [
            threading.Thread(target=scope.bind(run), args=(name, roots))
            for name, roots in [("ta", ["/srv/a"]), ("tb", ["/srv/b"])]
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert tool_messages(results["ta"])[0].status == "success"
    assert tool_messages(results["tb"])[0].status == "error"
    by_run = {
        d.overlay.run_id: d.action.value
        for d in recorder
        if d.tool == "fs.read"
    }
    assert by_run == {"ta": "allow", "tb": "deny"}


def test_a_push_can_be_a_function_of_the_config() -> None:
    def per_user(config: Any) -> dict[str, Any]:
        user = config["configurable"]["user"]
        return {
            "execution": CapabilityPolicy(workspace_roots=[f"/srv/{user}"])
        }

    calls = [call("read_file", {"path": "/srv/ann/notes"})]
    with cs.using(execution=ROOT):
        for user, status in [("ann", "success"), ("bob", "error")]:
            graph = as_worker(agent_graph([g_read], calls), push=per_user)
            config = {"configurable": {"thread_id": user, "user": user}}
            result = graph.invoke({"messages": [HumanMessage("go")]}, config)
            assert tool_messages(result)[0].status == status


def sub_agent(
    tools: Sequence[BaseTool], calls: Sequence[dict[str, Any]]
) -> Any:
    """A sub-graph (no checkpointer of its own: it uses its parent's)."""
    return agent_graph(tools, calls, checkpointer=None)


def parent_with(node: Any) -> Any:
    builder = StateGraph(MessagesState)
    builder.add_node("research", node)
    builder.add_edge(START, "research")
    return builder.compile(checkpointer=InMemorySaver())


def test_a_sub_graph_runs_narrowed_and_attributed() -> None:
    research = as_worker(
        sub_agent(
            [g_read],
            [
                call("read_file", {"path": "/srv/ws/docs/a"}, "c1"),
                call("read_file", {"path": "/srv/ws/src/b"}, "c2"),
            ],
        ),
        push={"execution": CapabilityPolicy(workspace_roots=["/srv/ws/docs"])},
        worker_id="research",
    )
    parent = as_worker(
        parent_with(research),
        push={"execution": CapabilityPolicy(workspace_roots=["/srv/ws"])},
        worker_id="lead",
    )
    with cs.using(execution=ROOT), Recorder() as recorder:
        result = parent.invoke(
            {"messages": [HumanMessage("go")]}, thread("t9")
        )
    assert [m.status for m in tool_messages(result)] == ["success", "error"]
    overlays = {
        (d.overlay.run_id, d.overlay.worker_id)
        for d in recorder
        if d.tool == "fs.read"
    }
    # the sub-graph keeps the run id its parent's invocation was given (a
    # fresh one: the client's thread id is not taken as attribution)
    [(run_id, worker_id)] = overlays
    assert (worker_id, run_id is not None, run_id != "t9") == (
        "research",
        True,
        True,
    )


def test_a_sub_graph_cannot_widen_its_parents_policy() -> None:
    wide = as_worker(
        sub_agent([g_read], [call("read_file", {"path": "/etc/passwd"})]),
        push={"execution": CapabilityPolicy(workspace_roots=["/"])},
    )
    parent = as_worker(
        parent_with(wide),
        push={"execution": CapabilityPolicy(workspace_roots=["/srv/ws"])},
    )
    with cs.using(execution=ROOT), pytest.raises(cs.CeilingExceeded):
        parent.invoke({"messages": [HumanMessage("go")]}, thread("t"))
    # Without a push, or pushing "no limits", the sub-graph keeps its
    # parent's ceiling.
    for sub in [
        sub_agent([g_read], [call("read_file", {"path": "/etc/passwd"})]),
        as_worker(
            sub_agent([g_read], [call("read_file", {"path": "/etc/passwd"})]),
            push={"execution": CapabilityPolicy.unrestricted()},
        ),
    ]:
        parent = as_worker(
            parent_with(sub),
            push={"execution": CapabilityPolicy(workspace_roots=["/srv/ws"])},
        )
        with cs.using(execution=ROOT):
            result = parent.invoke(
                {"messages": [HumanMessage("go")]}, thread("t")
            )
        assert tool_messages(result)[0].status == "error"
    assert ran == []


def test_a_run_cannot_change_its_callers_run_id() -> None:
    from capscope.policies import RuntimeContextOverlay

    graph = as_worker(agent_graph([g_read], []), run_id="other")
    with (
        cs.using(execution=ROOT, overlay=RuntimeContextOverlay(run_id="mine")),
        pytest.raises(cs.CeilingExceeded),
    ):
        graph.invoke({"messages": [HumanMessage("go")]}, thread("t"))


def test_an_approval_inside_a_sub_graph() -> None:
    research = as_worker(
        sub_agent([g_deploy], [call("deploy", {"env": "prod"})]),
        worker_id="release",
    )
    parent = parent_with(research)
    with cs.using(execution=ROOT), Recorder() as recorder:
        (asked,) = approval_interrupts(
            parent.invoke({"messages": [HumanMessage("go")]}, thread("t"))
        )
        result = parent.invoke(Command(resume=approve(asked)), thread("t"))
    assert tool_messages(result)[0].status == "success"
    assert ran == ["deploy prod latest"]
    granted = [
        d
        for d in recorder
        if d.tool == "deploy" and d.action.value == "granted"
    ]
    assert [d.overlay.worker_id for d in granted] == ["release"]


@pytest.mark.asyncio
async def test_streaming_runs_as_a_worker() -> None:
    graph = as_worker(
        agent_graph([g_aread], [call("aread_file", {"path": "/srv/b/y"})]),
        push={"execution": CapabilityPolicy(workspace_roots=["/srv/a"])},
    )
    with cs.using(execution=ROOT):
        chunks = [
            chunk
            async for chunk in graph.astream(
                {"messages": [HumanMessage("go")]},
                thread("t"),
                stream_mode="values",
            )
        ]
        sync_chunks = list(
            as_worker(
                agent_graph(
                    [g_read], [call("read_file", {"path": "/srv/b/y"})]
                ),
                push={
                    "execution": CapabilityPolicy(workspace_roots=["/srv/a"])
                },
            ).stream({"messages": [HumanMessage("go")]}, thread("t"))
        )
    assert tool_messages(chunks[-1])[0].status == "error"
    assert any("tools" in chunk for chunk in sync_chunks)
    assert ran == []


def test_policy_message() -> None:
    with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
        message = policy_message()
        expected = cs.describe_policy()
    assert message.type == "system"
    assert message.content == expected
    assert "fs.read" in message.content


def test_approve_needs_a_capscope_request() -> None:
    with pytest.raises(ValueError, match="not a capscope approval request"):
        approve({"question": "deploy?"})
    assert isinstance(g_read, CapscopeTool)


# --- run_id: the client's thread_id is not attribution unless asked ---------


def _ids_of_each_call() -> Any:
    from langchain_core.runnables import RunnableLambda

    return RunnableLambda(lambda _: cs.current_overlay().ids())


def test_run_id_is_minted_per_invocation_not_taken_from_thread_id() -> None:
    import uuid

    who = as_worker(_ids_of_each_call(), worker_id="w1")
    first = who.invoke(None, thread("client-chosen"))
    second = who.invoke(None, thread("client-chosen"))
    unthreaded = who.invoke(None)
    run_ids = [first["run_id"], second["run_id"], unthreaded["run_id"]]
    assert "client-chosen" not in run_ids
    assert len(set(run_ids)) == 3  # a fresh one for every invocation
    for run_id in run_ids:
        uuid.UUID(run_id)
    assert first["worker_id"] == "w1"


def test_thread_id_is_the_run_id_only_when_the_caller_opts_in() -> None:
    by_name = as_worker(_ids_of_each_call(), run_id="thread_id")
    assert by_name.invoke(None, thread("t1"))["run_id"] == "t1"
    by_function = as_worker(
        _ids_of_each_call(),
        run_id=lambda config: (config or {})["configurable"]["thread_id"],
    )
    assert by_function.invoke(None, thread("t2"))["run_id"] == "t2"


def test_a_callers_run_id_is_kept_by_default_and_by_thread_id() -> None:
    from capscope.policies import RuntimeContextOverlay

    with cs.using(overlay=RuntimeContextOverlay(run_id="mine")):
        for run_id in (None, "thread_id"):
            who = as_worker(_ids_of_each_call(), run_id=run_id)
            assert who.invoke(None, thread("t"))["run_id"] == "mine"
