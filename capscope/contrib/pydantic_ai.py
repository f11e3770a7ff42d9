"""
Guard Pydantic AI tools with capscope: `CapscopeToolset`, `run` and
`policy_instructions`.

`CapscopeToolset` is a Pydantic AI `FunctionToolset` whose every tool is a
capscope tool: a function already decorated with `capscope.requires_tool`
or `capscope.needs_approval` is used as it is, a plain function is
decorated with `requires_tool(<the tool's name>)`. The decorated function
keeps its signature and docstring, so the name, description and JSON
schema the model sees are exactly those of a plain `FunctionToolset`.
Every call is checked where the body runs, by the decorator, against the
policies in force in the task that runs it.

What the toolset adds around each call:

- **Denials reach the model.** A call capscope refuses
  (`capscope.PolicyDenied` and its subclasses) becomes Pydantic AI's
  `ToolFailed`: a failed tool result the model reads (`"capscope denied
  <tool>: <reason> (gate <gate>)"`) and can adapt to. Unlike `ModelRetry`
  it spends no retry budget, so repeated refusals never end the run with
  `UnexpectedModelBehavior`. Any other exception behaves as Pydantic AI
  treats it anyway.
- **An ask is Pydantic AI's approval.** When the policy would ask (a
  `needs_approval` tool, an `ask` rule, the autonomy tier), the call is
  deferred with `ApprovalRequired`: the run ends with `DeferredToolRequests`
  (or a `HandleDeferredToolCalls` capability answers it in the run). The
  answer in `DeferredToolResults.approvals` is the human's: approved, the
  call runs under a `ToolApprovalPolicy` whose handler grants exactly that
  call once (every handler already in force must grant too, so an
  application's own handler still has its say); denied, the body never
  runs and the model sees Pydantic AI's denial.
- **An approval is bound to its call.** The toolset remembers, per
  conversation and tool call id, which tool and which arguments (a digest
  of the validated arguments) it asked about. A resumed call whose tool or
  arguments differ from those asked about (an edited history,
  `ToolApproved(override_args=...)`) is refused; an approved call the
  toolset never asked about, or already ran, is asked about again. So an
  approval is used once, for the call it was given for, and never for
  another. A tool call id asked about twice in one conversation, for
  different calls (another tool or other arguments), is never approved:
  neither question is overwritten by the other, and every approval for
  that call id is refused.

`run(agent, prompt, push=..., overlay=...)` runs one agent run as a
capscope worker (`capscope.worker`): its own narrowed policies and its own
attribution, never a sibling's. `policy_instructions` gives the model the
limits in force (`capscope.describe_policy`) as instructions.

The approval records live in the toolset object, in memory: resume a run
with the same `CapscopeToolset` it was deferred by. The agent must accept
`DeferredToolRequests` as output (or carry a `HandleDeferredToolCalls`
capability), as for any Pydantic AI tool that needs approval.

Examples:
    >>> import asyncio
    >>> import capscope as cs
    >>> from capscope.policies import CapabilityPolicy
    >>> from capscope.contrib.pydantic_ai import CapscopeToolset, run
    >>> from pydantic_ai import Agent
    >>> from pydantic_ai.models.test import TestModel
    >>> @cs.requires_tool("fs.write", side_effect="workspace_write")
    ... def write_note(text: str) -> str:
    ...     return "saved"
    >>> agent = Agent(TestModel(), toolsets=[CapscopeToolset([write_note])])
    >>> async def main():
    ...     reader = CapabilityPolicy(tools=["fs.read"])
    ...     with cs.using(execution=CapabilityPolicy.unrestricted()):
    ...         return await run(agent, "note this", push={"execution": reader})
    >>> print(asyncio.run(main()).output)
    {"write_note":"capscope denied fs.write: tool 'fs.write' exceeds the tool ceiling ('fs.read',) (gate tool_ceiling)"}
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from pydantic_ai.agent import AbstractAgent, AgentRunResult
from pydantic_ai.exceptions import ApprovalRequired, ToolFailed
from pydantic_ai.tools import AgentDepsT, RunContext, Tool
from pydantic_ai.toolsets import FunctionToolset, ToolsetTool
from pydantic_ai.toolsets.function import FunctionToolsetTool
from pydantic_core import to_jsonable_python

from .. import (
    Action,
    ApprovalDecision,
    ApprovalDenied,
    ApprovalRequest,
    Decision,
    PolicyDenied,
    check_tool,
    describe_policy,
    events,
    requires_tool,
    tool_spec,
    using,
)
from .. import worker as _worker
from ..policies import RuntimeContextOverlay, ToolApprovalPolicy
from ..stacks import approval as _approval_stack
from ._common import denial_text as refusal

__all__ = ["CapscopeToolset", "policy_instructions", "refusal", "run"]

#: The key of the capscope part of `ApprovalRequired.metadata` (and so of
#: `DeferredToolRequests.metadata[tool_call_id]`).
METADATA_KEY = "capscope"

#: How many unanswered approval requests a toolset remembers; the oldest
#: is forgotten first (its call is then asked about again on resume).
DEFAULT_MAX_PENDING = 10_000

_NOT_THIS_CALL = "the approval given in Pydantic AI was for another call"

#: What a call id asked about twice, for different calls, is remembered
#: as: no call matches it, so no approval for that call id is taken.
_ASKED_TWICE = ("", "asked twice")
_TWICE = (
    "this tool call id was asked about twice, for different calls, so an "
    "approval for it cannot say which one it answers"
)


def policy_instructions() -> str:
    """
    The limits in force where it is called (`capscope.describe_policy`),
    as instructions for the model: pass the function itself,
    `Agent(..., instructions=policy_instructions)`, and each run reads its
    own policy when its model is asked.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.contrib.pydantic_ai import policy_instructions
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
        ...     print(policy_instructions().splitlines()[1])
        Tools: only fs.read.
    """
    return (
        "Limits on your tools (a call outside them is refused):\n"
        + describe_policy()
    )


async def run(
    agent: AbstractAgent[Any, Any],
    user_prompt: Any = None,
    /,
    *,
    push: Mapping[Any, Any] | None = None,
    overlay: RuntimeContextOverlay | None = None,
    **kwargs: Any,
) -> AgentRunResult[Any]:
    """
    `agent.run(user_prompt, **kwargs)` as a capscope worker: a new logical
    call stack that starts from the caller's policies (nothing remembered
    from the caller's approvals), narrowed by *push* (stacks or stack names
    to values, as `capscope.worker` takes them), with *overlay* (the run's
    attribution: `run_id`, `worker_id`, ...) pushed on the overlay stack.

    Every tool call of the run, and of a `run` started inside one of its
    tools, is checked under these policies and attributed to *overlay*;
    concurrent runs never see each other's. A push can only narrow:
    `capscope.CeilingExceeded` is raised here, before the run starts.

    Raises:
        CeilingExceeded: a push asks for more than the caller has.
        TypeError: both *overlay* and an `"overlay"` push were given.

    Examples:
        >>> import asyncio
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy, RuntimeContextOverlay
        >>> from capscope.contrib.pydantic_ai import run
        >>> from pydantic_ai import Agent
        >>> from pydantic_ai.models.test import TestModel
        >>> agent = Agent(TestModel(custom_output_text="hi"))
        >>> async def main():
        ...     with cs.using(execution=CapabilityPolicy(tools=["fs.*"])):
        ...         result = await run(agent, "hello", overlay=RuntimeContextOverlay(run_id="r-1"))
        ...         try:
        ...             await run(agent, "hello", push={"execution": CapabilityPolicy(tools=["*"])})
        ...         except cs.CeilingExceeded:
        ...             return result.output, "refused"
        >>> asyncio.run(main())
        ('hi', 'refused')
    """
    pushes: dict[Any, Any] = dict(push or {})
    if overlay is not None:
        if "overlay" in pushes:
            msg = (
                "give the attribution once: overlay= or push={'overlay': ...}"
            )
            raise TypeError(msg)
        pushes["overlay"] = overlay
    coro = agent.run(user_prompt, **kwargs)
    result: AgentRunResult[Any] = await _worker(coro, push=pushes)
    return result


def _digest(tool_name: str, tool_args: Mapping[str, Any]) -> str:
    """What an approval is bound to: the tool's name and its validated
    arguments as canonical JSON. Arguments that are not JSON get a digest
    of their own that nothing else has, so they are never matched.
    """
    try:
        data = json.dumps(
            [tool_name, to_jsonable_python(dict(tool_args))],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
    except (TypeError, ValueError):
        data = f"{tool_name}\0unmatched\0{id(tool_args)}\0{object()!r}"
    return hashlib.sha256(data.encode("utf-8")).hexdigest()


def _grant_once(
    tool: str, arguments: Mapping[str, Any] | None
) -> Callable[[ApprovalRequest], ApprovalDecision]:
    """An approval handler that grants one request: for *tool*, with
    exactly *arguments* (the dry run's binding), once; it refuses anything
    else (another tool the body calls, a second call).
    """
    lock = threading.Lock()
    used = False

    def handler(request: ApprovalRequest) -> ApprovalDecision:
        nonlocal used
        try:
            same = (
                request.tool == tool
                and arguments is not None
                and dict(request.arguments) == dict(arguments)
            )
        except Exception:  # noqa: BLE001 - an argument that cannot compare
            same = False
        with lock:
            if not same or used:
                return ApprovalDecision.deny(_NOT_THIS_CALL)
            used = True
        return ApprovalDecision.allow()

    return handler


def _answering(handler: Callable[..., Any]) -> ToolApprovalPolicy:
    """The approval policy pushed around an approved call: *handler*, and
    otherwise changing nothing the policy in force decides (no rules, the
    same path guards; with no policy in force, no workspace boundary,
    as before).
    """
    outer = _approval_stack.top()
    if outer is None:
        return ToolApprovalPolicy(
            handler=handler, timeout=None, allow_external_paths=True
        )
    return ToolApprovalPolicy(
        handler=handler,
        timeout=None,
        sensitive_paths=outer.sensitive_paths,
        allow_sensitive_paths=outer.allow_sensitive_paths,
        external_roots=outer.external_roots,
        allow_external_paths=outer.allow_external_paths,
    )


class CapscopeToolset(FunctionToolset[AgentDepsT]):
    """
    A Pydantic AI `FunctionToolset` of capscope tools (see the module
    docstring): capscope's refusals reach the model as failed tool results,
    capscope's asks become Pydantic AI's deferred approvals, and each
    approval is used once, for the call it was given for.

    Takes a `FunctionToolset`'s arguments, plus *max_pending*: how many
    unanswered approval requests it remembers.
    Functions (in *tools*, `add_function`, `@toolset.tool`,
    `@toolset.tool_plain`) that are not capscope tools are decorated with
    `capscope.requires_tool(<tool name>)`; a `pydantic_ai.Tool` must already
    wrap a decorated function.

    Raises:
        TypeError: a `Tool` whose function is not a capscope tool.

    Examples:
        >>> import capscope as cs
        >>> from capscope.contrib.pydantic_ai import CapscopeToolset
        >>> def lookup(city: str) -> str:
        ...     return "sunny"
        >>> toolset = CapscopeToolset([lookup])
        >>> cs.tool_spec(toolset.tools["lookup"].function).name
        'lookup'
    """

    def __init__(
        self,
        tools: Sequence[Tool[AgentDepsT] | Callable[..., Any]] = (),
        *,
        max_pending: int = DEFAULT_MAX_PENDING,
        **kwargs: Any,
    ) -> None:
        if max_pending < 1:
            msg = f"max_pending must be at least 1, got {max_pending!r}"
            raise ValueError(msg)
        self._max_pending = max_pending
        self._pending: OrderedDict[tuple[str, str], tuple[str, str]] = (
            OrderedDict()
        )
        self._lock = threading.Lock()
        super().__init__(list(tools), **kwargs)

    def add_function(
        self, func: Any, *args: Any, **kwargs: Any
    ) -> Tool[AgentDepsT]:
        """
        `FunctionToolset.add_function`, with *func* decorated with
        `capscope.requires_tool(<tool name>)` unless it is a capscope tool.

        Examples:
            >>> import capscope as cs
            >>> from capscope.contrib.pydantic_ai import CapscopeToolset
            >>> toolset = CapscopeToolset()
            >>> def ping() -> str:
            ...     return "pong"
            >>> cs.tool_spec(toolset.add_function(ping, name="net.ping").function).name
            'net.ping'
        """
        try:
            tool_spec(func)
        except TypeError:
            name = kwargs.get("name", args[1] if len(args) > 1 else None)
            func = requires_tool(name or func.__name__)(func)
        return super().add_function(func, *args, **kwargs)

    def add_tool(self, tool: Tool[AgentDepsT]) -> None:
        """
        `FunctionToolset.add_tool`, for a `Tool` whose function is a
        capscope tool (decorated with `requires_tool` or `needs_approval`).

        Raises:
            TypeError: the tool's function is not a capscope tool.

        Examples:
            >>> import capscope as cs
            >>> from pydantic_ai import Tool
            >>> from capscope.contrib.pydantic_ai import CapscopeToolset
            >>> @cs.needs_approval(reason="sends mail")
            ... def send(to: str) -> str:
            ...     return "sent"
            >>> toolset = CapscopeToolset()
            >>> toolset.add_tool(Tool(send))
            >>> list(toolset.tools)
            ['send']
        """
        try:
            tool_spec(tool.function)
        except TypeError:
            msg = (
                f"tool {tool.name!r}: its function is not a capscope tool; "
                "decorate it with capscope.requires_tool or "
                "capscope.needs_approval, or pass the function itself"
            )
            raise TypeError(msg) from None
        super().add_tool(tool)

    async def call_tool(
        self,
        name: str,
        tool_args: dict[str, Any],
        ctx: RunContext[AgentDepsT],
        tool: ToolsetTool[AgentDepsT],
    ) -> Any:
        """
        Call one tool: refused calls come back to the model as `ToolFailed`,
        asks are deferred with `ApprovalRequired`, approved calls run once
        under a handler that grants exactly them.

        Examples:
            >>> from capscope.contrib.pydantic_ai import CapscopeToolset
            >>> callable(CapscopeToolset.call_tool)
            True
        """
        if not isinstance(tool, FunctionToolsetTool):  # pragma: no cover
            msg = f"tool {name!r} is not a function tool of this toolset"
            raise TypeError(msg)
        registered = self.tools[tool.original_name or name]
        args, kwargs = _call_arguments(registered, tool_args, ctx)
        decision = check_tool(registered.function, *args, **kwargs)
        key = (ctx.conversation_id or "", ctx.tool_call_id or "")
        asked = (name, _digest(name, tool_args))
        granting = None
        if ctx.tool_call_approved:
            with self._lock:
                pending = self._pending.pop(key, None)
                if pending == _ASKED_TWICE:  # refused for good, not used up
                    self._pending[key] = pending
            if decision.action is Action.ASK:
                if pending is None:
                    # Never asked here (a Pydantic AI approval for
                    # `requires_approval`, an answer already used, another
                    # process): ask about this very call now.
                    self._defer(key, asked, decision)
                if pending != asked:
                    decision = Decision(
                        action="deny",
                        gate="approval",
                        tool=decision.tool,
                        reason=_TWICE
                        if pending == _ASKED_TWICE
                        else _NOT_THIS_CALL
                        + " (another tool or other arguments)",
                        overlay=decision.overlay,
                        args_digest=decision.args_digest,
                    )
                    events.emit(decision)
                    denied = ApprovalDenied(decision.reason, decision)
                    raise ToolFailed(refusal(denied))
                granting = _grant_once(decision.tool, decision.arguments)
        elif decision.action is Action.ASK:
            self._defer(key, asked, decision)
        try:
            if granting is None:
                return await super().call_tool(name, tool_args, ctx, tool)
            with using(approval=_answering(granting)):
                return await super().call_tool(name, tool_args, ctx, tool)
        except PolicyDenied as denied:
            raise ToolFailed(refusal(denied)) from denied

    def _defer(
        self, key: tuple[str, str], asked: tuple[str, str], decision: Decision
    ) -> NoReturn:
        """Remember what is asked about, and defer the call. A call id
        already asked about for another call is not overwritten: it is
        marked as asked twice, and no approval for it is taken.
        """
        with self._lock:
            earlier = self._pending.pop(key, None)
            if earlier is not None and earlier != asked:
                asked = _ASKED_TWICE
            self._pending[key] = asked
            while len(self._pending) > self._max_pending:
                self._pending.popitem(last=False)
        events.emit(decision)
        raise ApprovalRequired(
            metadata={
                METADATA_KEY: {
                    "tool": decision.tool,
                    "reason": decision.reason,
                    "gate": None
                    if decision.gate is None
                    else decision.gate.value,
                }
            }
        )


def _call_arguments(
    tool: Tool[Any], tool_args: Mapping[str, Any], ctx: RunContext[Any]
) -> tuple[list[Any], dict[str, Any]]:
    """The positional and keyword arguments Pydantic AI calls the tool's
    function with (its `FunctionSchema.call`).
    """
    schema = tool.function_schema
    args: list[Any] = [ctx] if schema.takes_ctx else []
    kwargs = dict(tool_args)
    args.extend(kwargs.pop(field) for field in schema.positional_fields)
    if schema.var_positional_field:
        args.extend(kwargs.pop(schema.var_positional_field))
    return args, kwargs
