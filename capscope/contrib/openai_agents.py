"""
capscope for the OpenAI Agents SDK (`openai-agents`, imported as `agents`).

- `guarded_tool(fn)` makes a capscope-decorated function a `FunctionTool`
  with the schema the SDK would give it anyway. capscope still decides
  where the body runs (the decorator checks every call); the adapter only
  maps the answers onto the SDK:

  - an **ask** becomes the SDK's own human-in-the-loop approval: the tool's
    `needs_approval` dry-runs the call (`capscope.check_tool`) and, when
    capscope would ask, the run stops with a `ToolApprovalItem` in
    `result.interruptions`. The human answers through this module:
    `approve(state, item)` then `Runner.run(agent, state)` runs the call
    with that answer as the approval handler's, for that call only (that
    tool, those arguments, that call id, once); `reject(state, item)`
    never runs the body, and the model sees the SDK's rejection message.
    An application's own approval handlers are still asked too: every
    handler in force must grant.
  - the answer capscope takes is the one `approve` recorded in this
    process, not the `RunState`'s "approved" flag: a `RunState` is data
    (serialised, stored, resumed), and whoever can write it can set that
    flag. A call approved only with the SDK's `state.approve(item)`, or
    carried as approved in a deserialized state, is refused, with a
    reason that says to answer with `approve(state, item)`.
  - a **denial** (`capscope.PolicyDenied`) reaches the model as the tool's
    result, `"capscope denied <tool>: <reason> (gate <gate>)"`, and the run
    goes on. Other exceptions go to the SDK's failure handling as usual.
  - every decision made while a guarded tool runs is reported as a custom
    span (`agents.tracing.custom_span`) named `capscope.decision`, under
    the tool's span, with the decision's JSON form as its data.

- `run(agent, input, push=..., run_id=..., worker_id=...)` runs one agent
  run as a capscope worker (`capscope.worker`) with its own narrowed
  policy and attribution.
- `agent_tool(agent, push=...)` is `agent.as_tool(...)` whose nested run is
  a capscope worker with its own narrowed policy: a sub-agent.
- `narrowed_agent(agent, push=...)` is a copy of an agent (and of every
  agent it hands off to) whose tools run under a narrower policy: for
  handoffs, where the next agent carries on in the same run.
- `policy_instructions(base)` is a dynamic `instructions` that adds
  `capscope.describe_policy()` (as in force for that run) to the prompt.

Pushes only narrow: a push wider than what is in force raises
`capscope.CeilingExceeded` where it is applied (before the run starts for
`run`, and as an error of the run for a sub-agent or handoff), never a
silent widening.

Examples:
    >>> import capscope as cs
    >>> from capscope.contrib.openai_agents import guarded_tool
    >>> @cs.requires_tool("fs.read", side_effect="read_only")
    ... def read_file(path: str) -> str:
    ...     '''Read a file.'''
    ...     return "..."
    >>> tool = guarded_tool(read_file)
    >>> tool.name, tool.params_json_schema["required"]
    ('read_file', ['path'])
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import inspect
import json
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping
from typing import Any

from agents import (
    Agent,
    FunctionTool,
    RunContextWrapper,
    Runner,
    RunResult,
    RunState,
    ToolApprovalItem,
)
from agents import function_tool as sdk_function_tool
from agents.function_schema import function_schema
from agents.tool import (
    CodeInterpreterTool,
    FileSearchTool,
    HostedMCPTool,
    ImageGenerationTool,
    ProgrammaticToolCallingTool,
    ToolSearchTool,
    WebSearchTool,
    default_tool_error_function,
)
from agents.tool_context import ToolContext
from agents.tracing import custom_span

from .. import (
    Action,
    ApprovalDecision,
    ApprovalRequest,
    Decision,
    PolicyDenied,
    check_tool,
    describe_policy,
    events,
    tool_spec,
    using,
    worker,
)
from ..audit import decision_record
from ..policies import RuntimeContextOverlay, ToolApprovalPolicy
from ._common import denial_text as denial_message

__all__ = [
    "SPAN_NAME",
    "agent_tool",
    "approve",
    "denial_message",
    "guarded_tool",
    "narrowed_agent",
    "policy_instructions",
    "reject",
    "run",
]

#: The name of the custom spans that carry capscope's decisions.
SPAN_NAME = "capscope.decision"

Push = Mapping[Any, Any]


# -- attribution and layers ---------------------------------------------------


def _with_overlay(
    push: Push | None,
    *,
    run_id: str | None = None,
    worker_id: str | None = None,
) -> dict[Any, Any]:
    """*push* with a `RuntimeContextOverlay` for the ids, when any is given."""
    pushes = dict(push or {})
    if run_id is None and worker_id is None:
        return pushes
    if "overlay" in pushes:
        msg = "push: give the ids as run_id=/worker_id=, or an 'overlay' push, not both"
        raise ValueError(msg)
    pushes["overlay"] = RuntimeContextOverlay(
        run_id=run_id, worker_id=worker_id
    )
    return pushes


@dataclasses.dataclass(frozen=True)
class _Layer:
    """One narrowing around a tool call: pushed inline, or as a worker."""

    push: Mapping[Any, Any]
    as_worker: bool = False


def _by_name(push: Mapping[Any, Any]) -> dict[str, Any]:
    """`cs.using` takes stack names: a stack object becomes its name."""
    return {getattr(key, "name", key): value for key, value in push.items()}


async def _under(
    layers: tuple[_Layer, ...], make: Callable[[], Awaitable[Any]]
) -> Any:
    """Await `make()` under *layers*, outermost first; each is narrowed
    where it is applied, so a widening raises `CeilingExceeded` there.
    """
    if not layers:
        return await make()
    layer, rest = layers[0], layers[1:]
    if layer.as_worker:
        return await worker(_under(rest, make), push=layer.push)
    with using(**_by_name(layer.push)):
        return await _under(rest, make)


@contextlib.contextmanager
def _inline(layers: tuple[_Layer, ...]) -> Iterator[None]:
    """The inline equivalent of `_under`, for a synchronous dry run: a
    worker layer is pushed inline (its frame state is not read by a dry
    run, only its policies).
    """
    with contextlib.ExitStack() as stack:
        for layer in layers:
            stack.enter_context(using(**_by_name(layer.push)))
        yield


# -- denials and tracing ------------------------------------------------------


#: Set while a guarded tool's call runs: its decisions become spans.
_TRACING: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "capscope.contrib.openai_agents.tracing", default=False
)
#: The span reporter is subscribed while at least one guarded call runs,
#: and only then: the rest of the process builds no decision for it.
_reporting = 0
_unsubscribe: Callable[[], None] | None = None
_subscribe_lock = threading.Lock()


def _span(decision: Decision, **extra: Any) -> None:
    data = {**decision_record(decision), **extra}
    with custom_span(SPAN_NAME, data=data):
        pass


def _trace(decision: Decision) -> None:
    if _TRACING.get():
        _span(decision)


def _report_spans() -> None:
    """One more guarded call runs: subscribe the span reporter if first."""
    global _reporting, _unsubscribe  # noqa: PLW0603 - one process-wide count
    with _subscribe_lock:
        if _reporting == 0:
            _unsubscribe = events.subscribe(_trace)
        _reporting += 1


def _stop_reporting() -> None:
    """A guarded call ended: unsubscribe after the last one."""
    global _reporting, _unsubscribe  # noqa: PLW0603 - one process-wide count
    with _subscribe_lock:
        _reporting -= 1
        if _reporting == 0 and _unsubscribe is not None:
            _unsubscribe()
            _unsubscribe = None


# -- approvals ----------------------------------------------------------------


def _canonical(value: Any) -> str:
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), default=repr
    )


#: How many unanswered questions one guarded tool remembers; the oldest is
#: forgotten first (an approval of it is then refused, never assumed).
_MAX_ASKED = 10_000

#: How many answers given through `approve` and not yet used one guarded
#: tool remembers; the oldest is forgotten first (its call is then
#: refused, never assumed approved).
_MAX_ANSWERS = 10_000


def _digest(arguments: str) -> str:
    return hashlib.sha256(arguments.encode("utf-8")).hexdigest()


class _Ledger:
    """
    The calls this adapter stopped for a human, by call id, tool and
    arguments, and the answers the human gave through `approve`. An SDK
    approval becomes capscope's grant only for a call found here, whose
    answer `approve` recorded in this process, once: a call id approved for
    other arguments, a replayed call id, a standing `always_approve`, an
    approval written into the `RunState` (directly, or by whoever wrote a
    serialized state), or a call the SDK held without asking this adapter
    is not proven to be what the human saw.

    Call ids and arguments are the model's, and a rejected or abandoned
    question is never taken: at most `_MAX_ASKED` questions and
    `_MAX_ANSWERS` answers are kept, the oldest forgotten first (fail
    closed: the call is then refused).
    """

    def __init__(
        self, tool: str, bind: Callable[[Mapping[str, Any]], str | None]
    ) -> None:
        self.tool = tool
        self._bind = bind
        self._asked: OrderedDict[tuple[str, str], int] = OrderedDict()
        #: (call id, tool, digest of the canonical arguments): one answer.
        self._answered: OrderedDict[tuple[str, str, str], None] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._asked)

    def answered(self) -> int:
        """How many answers wait to be used."""
        return len(self._answered)

    def record(self, call_id: str, arguments: str) -> None:
        with self._lock:
            key = (call_id, arguments)
            self._asked[key] = self._asked.pop(key, 0) + 1
            while len(self._asked) > max(1, _MAX_ASKED):
                self._asked.popitem(last=False)

    def _arguments(self, raw: str | None) -> str | None:
        params = None if raw is None else _parse(raw)
        return None if params is None else self._bind(params)

    def answer(self, call_id: str, raw: str | None) -> bool:
        """
        Record the human's yes to the question asked about this call (its
        call id, and the arguments *raw* binds to); `False`, recording
        nothing, when no such question is remembered.
        """
        arguments = self._arguments(raw)
        if arguments is None:
            return False
        key = (call_id, self.tool, _digest(arguments))
        with self._lock:
            if self._asked.get((call_id, arguments), 0) <= 0:
                return False
            self._answered.pop(key, None)
            self._answered[key] = None  # one answer, however often given
            while len(self._answered) > max(1, _MAX_ANSWERS):
                self._answered.popitem(last=False)
        return True

    def withdraw(self, call_id: str, raw: str | None) -> None:
        """Forget a yes recorded for this call (the human said no)."""
        arguments = self._arguments(raw)
        if arguments is None:
            return
        with self._lock:
            self._answered.pop((call_id, self.tool, _digest(arguments)), None)

    def take(self, call_id: str, arguments: str) -> str | None:
        """
        Use the question about this call and its answer: `None` when both
        are here (the call is granted, once), else why it is not. The
        question is used up either way.
        """
        answer = (call_id, self.tool, _digest(arguments))
        with self._lock:
            key = (call_id, arguments)
            count = self._asked.pop(key, 0)
            if count <= 0:
                self._answered.pop(answer, None)
                return _UNPROVEN
            if count > 1:
                self._asked[key] = count - 1
            if answer not in self._answered:
                return _UNANSWERED
            del self._answered[answer]
            return None


def _parse(arguments: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(arguments or "{}")
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


class _Grant:
    """
    The approval handler for one call the SDK approved: it grants exactly
    one ask, for this tool with these arguments, when the adapter itself
    held this call for that human and `approve` recorded the human's yes
    (`refusal` is `None`), and refuses everything else (an ask the body
    makes for another call, a second ask, an approval that is not proven
    to be the human's answer to this call: `refusal` says why).
    """

    def __init__(
        self,
        tool: str,
        arguments: str,
        *,
        refusal: str | None,
        context: str | None,
    ) -> None:
        self.tool = tool
        self.arguments = arguments
        self.context = context
        self.refusal = refusal
        self.used = False
        self._lock = threading.Lock()

    def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        with self._lock:
            fresh, self.used = not self.used, True
        if self.refusal is not None:
            return ApprovalDecision.deny(self.refusal)
        if (
            fresh
            and request.tool == self.tool
            and _canonical(
                {
                    k: v
                    for k, v in request.arguments.items()
                    if k != self.context
                }
            )
            == self.arguments
        ):
            return ApprovalDecision.allow()
        return ApprovalDecision.deny(
            "the approval given through the Agents SDK was for another call"
        )


_UNPROVEN = (
    "the Agents SDK approval does not cover this call (capscope asks for "
    "each call: a reused call id, a question forgotten or asked in another "
    "process, or a call held without capscope's question is not an answer "
    "to it)"
)

_UNANSWERED = (
    "the Agents SDK approval does not come from capscope: answer each held "
    "call with capscope.contrib.openai_agents.approve(state, item), in this "
    "process (an approval set with state.approve, carried in a serialized "
    "RunState, or a standing always_approve is not the human's answer to "
    "this call)"
)


#: The attribute of a guarded `FunctionTool` that holds its `_Ledger`.
_LEDGER = "_capscope_ledger"


def _ledger_of(item: ToolApprovalItem) -> _Ledger | None:
    """The ledger of the guarded tool that held *item*: found among the
    tools of the agent whose call it is, by the tool's name.
    """
    try:
        agent = item.agent
    except Exception:  # noqa: BLE001 - a released agent: nothing to find
        return None
    name = item.tool_name or item.name
    for tool in getattr(agent, "tools", None) or ():
        if isinstance(tool, FunctionTool) and tool.name == name:
            ledger = getattr(tool, _LEDGER, None)
            if isinstance(ledger, _Ledger):
                return ledger
    return None


def approve(
    state: RunState[Any, Any],
    item: ToolApprovalItem,
    *,
    always: bool = False,
) -> None:
    """
    The human approves a held call: record that answer for capscope, in
    this process, then `state.approve(item, always_approve=always)`.

    The answer is bound to the question capscope asked about that exact
    call (its call id, the tool and a digest of its canonical arguments)
    and is used once. It is the only approval capscope takes: a call
    approved with the SDK's `state.approve(item)` alone, or carried as
    approved in a deserialized `RunState`, is refused when it runs. An
    item capscope did not ask about (held by the tool's own
    `needs_approval`, another kind of tool) is approved in the SDK only.

    *always* is the SDK's `always_approve`: the SDK then skips its own
    question for later calls of the tool, but capscope still asks about
    each call, and refuses those not answered here.

    Examples:
        >>> import asyncio
        >>> import capscope as cs
        >>> from agents import Agent, RunConfig, Runner
        >>> from agents.testing import ScriptedModel, assistant_message, function_call
        >>> from capscope.contrib.openai_agents import approve, guarded_tool
        >>> @cs.needs_approval(reason="ships code")
        ... def deploy(env: str) -> str:
        ...     '''Deploy to an environment.'''
        ...     return f"deployed to {env}"
        >>> model = ScriptedModel([[function_call("deploy", {"env": "prod"}, call_id="c1")], [assistant_message("Done.")]])
        >>> agent = Agent(name="ops", model=model, tools=[guarded_tool(deploy)])
        >>> local = RunConfig(tracing_disabled=True)
        >>> async def main():
        ...     with cs.using(execution=cs.policies.CapabilityPolicy.unrestricted()):
        ...         result = await Runner.run(agent, "Ship it", run_config=local)
        ...         state = result.to_state()
        ...         for item in result.interruptions:
        ...             approve(state, item)
        ...         result = await Runner.run(agent, state, run_config=local)
        ...     return [item.output for item in result.new_items if item.type == "tool_call_output_item"]
        >>> asyncio.run(main())
        ['deployed to prod']
    """
    ledger = _ledger_of(item)
    call_id = item.call_id
    recorded = (
        ledger is not None
        and call_id is not None
        and ledger.answer(call_id, item.arguments)
    )
    try:
        state.approve(item, always_approve=always)
    except BaseException:
        if recorded and ledger is not None and call_id is not None:
            ledger.withdraw(call_id, item.arguments)
        raise


def reject(
    state: RunState[Any, Any],
    item: ToolApprovalItem,
    *,
    message: str | None = None,
    always: bool = False,
) -> None:
    """
    The human rejects a held call: forget any yes `approve` recorded for
    it, then `state.reject(item, always_reject=always,
    rejection_message=message)`. The body never runs, and the model reads
    *message* (or the SDK's rejection message). The latest answer given
    here is the one capscope takes.

    Examples:
        >>> import asyncio
        >>> import capscope as cs
        >>> from agents import Agent, RunConfig, Runner
        >>> from agents.testing import ScriptedModel, assistant_message, function_call
        >>> from capscope.contrib.openai_agents import guarded_tool, reject
        >>> @cs.needs_approval(reason="ships code")
        ... def deploy(env: str) -> str:
        ...     '''Deploy to an environment.'''
        ...     return f"deployed to {env}"
        >>> model = ScriptedModel([[function_call("deploy", {"env": "prod"}, call_id="c1")], [assistant_message("Done.")]])
        >>> agent = Agent(name="ops", model=model, tools=[guarded_tool(deploy)])
        >>> local = RunConfig(tracing_disabled=True)
        >>> async def main():
        ...     with cs.using(execution=cs.policies.CapabilityPolicy.unrestricted()):
        ...         result = await Runner.run(agent, "Ship it", run_config=local)
        ...         state = result.to_state()
        ...         for item in result.interruptions:
        ...             reject(state, item, message="Not on a Friday.")
        ...         result = await Runner.run(agent, state, run_config=local)
        ...     return [item.output for item in result.new_items if item.type == "tool_call_output_item"]
        >>> asyncio.run(main())
        ['Not on a Friday.']
    """
    ledger = _ledger_of(item)
    call_id = item.call_id
    if ledger is not None and call_id is not None:
        ledger.withdraw(call_id, item.arguments)
    state.reject(item, always_reject=always, rejection_message=message)


# -- guarded function tools ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Guard:
    """What a guarded tool needs to rebuild itself under more layers."""

    fn: Callable[..., Any] | None
    agent: Any
    options: Mapping[str, Any]
    layers: tuple[_Layer, ...]


#: The attribute of a guarded `FunctionTool` that holds its `_Guard`.
_GUARD = "_capscope_guard"


def _failure(
    user: Callable[[RunContextWrapper[Any], Exception], Any] | None,
) -> Callable[[RunContextWrapper[Any], Exception], Any]:
    async def on_failure(ctx: RunContextWrapper[Any], error: Exception) -> Any:
        if isinstance(error, PolicyDenied):
            return denial_message(error)
        if user is None:
            return None  # the SDK re-raises
        answer = user(ctx, error)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    return on_failure


def _bound_arguments(
    signature: inspect.Signature,
    params: Mapping[str, Any],
    *,
    takes_context: bool,
) -> str | None:
    """The call's arguments as capscope binds them (defaults included), as
    canonical JSON; `None` when they do not bind.
    """
    parameters = list(signature.parameters.values())
    if takes_context:
        parameters = parameters[1:]
    try:
        bound = signature.replace(parameters=parameters).bind(**params)
    except TypeError:
        return None
    bound.apply_defaults()
    return _canonical(dict(bound.arguments))


def _build(  # noqa: C901 - one closure per SDK hook
    fn: Callable[..., Any],
    options: Mapping[str, Any],
    layers: tuple[_Layer, ...],
) -> FunctionTool:
    spec = tool_spec(fn)
    takes_context = function_schema(fn).takes_context
    signature = inspect.signature(fn)
    context_name = next(iter(signature.parameters)) if takes_context else None
    ledger = _Ledger(
        spec.name,
        lambda params: _bound_arguments(
            signature, params, takes_context=takes_context
        ),
    )
    kwargs = dict(options)
    user_needs_approval = kwargs.pop("needs_approval", False)
    user_failure = kwargs.pop(
        "failure_error_function", default_tool_error_function
    )

    def dry_run(
        ctx: RunContextWrapper[Any], params: Mapping[str, Any]
    ) -> Decision | None:
        args = (ctx,) if takes_context else ()
        with _inline(layers):
            try:
                return check_tool(fn, *args, **params)
            except TypeError:  # does not bind: the call itself will say so
                return None

    async def needs_approval(
        ctx: RunContextWrapper[Any], params: dict[str, Any], call_id: str
    ) -> bool:
        decision = dry_run(ctx, params)
        if decision is not None and decision.action is Action.ASK:
            arguments = _bound_arguments(
                signature, params, takes_context=takes_context
            )
            if arguments is not None:
                ledger.record(call_id, arguments)
            _span(decision, call_id=call_id, stage="approval_requested")
            return True
        if callable(user_needs_approval):
            return bool(await user_needs_approval(ctx, params, call_id))
        return bool(user_needs_approval)

    tool = sdk_function_tool(
        fn,
        needs_approval=needs_approval,
        failure_error_function=_failure(user_failure),
        **kwargs,
    )
    inner = tool.on_invoke_tool

    async def on_invoke_tool(ctx: ToolContext[Any], raw: str) -> Any:
        grant = None
        params = _parse(raw)
        arguments = (
            None
            if params is None
            else _bound_arguments(
                signature, params, takes_context=takes_context
            )
        )
        if ctx.is_tool_approved(ctx.tool_name, ctx.tool_call_id) is True:
            refusal = (
                _UNPROVEN
                if arguments is None
                else ledger.take(ctx.tool_call_id, arguments)
            )
            grant = _Grant(
                spec.name,
                arguments or "",
                refusal=refusal,
                context=context_name,
            )

        async def call() -> Any:
            token = _TRACING.set(True)
            _report_spans()
            try:
                if grant is None:
                    return await inner(ctx, raw)
                answered = ToolApprovalPolicy(
                    handler=grant, timeout=None, allow_external_paths=True
                )
                with using(approval=answered):
                    return await inner(ctx, raw)
            finally:
                _stop_reporting()
                _TRACING.reset(token)

        return await _under(layers, call)

    tool.on_invoke_tool = on_invoke_tool
    setattr(tool, _GUARD, _Guard(fn, None, options, layers))
    setattr(tool, _LEDGER, ledger)
    return tool


def guarded_tool(fn: Callable[..., Any], **options: Any) -> FunctionTool:
    """
    A `FunctionTool` for *fn*, a function decorated with
    `capscope.requires_tool` or `capscope.needs_approval` (sync or async).

    *options* are `agents.function_tool`'s (`name_override`,
    `description_override`, `strict_mode`, `timeout`, ...). The schema the
    model sees is the one `agents.function_tool(fn)` gives. Two options
    combine with capscope rather than replace it:

    - `needs_approval`: the call is held for a human when capscope asks,
      or when this says so (a held call capscope does not ask about runs
      once approved; capscope still checks it);
    - `failure_error_function`: formats the errors that are not capscope's
      refusals (`None`: they fail the run); a `capscope.PolicyDenied` is
      always returned to the model as `denial_message(denied)`.

    Raises:
        TypeError: *fn* is not decorated with capscope.

    Examples:
        >>> import capscope as cs
        >>> from capscope.contrib.openai_agents import guarded_tool
        >>> @cs.needs_approval(reason="ships code")
        ... async def deploy(env: str) -> str:
        ...     '''Deploy to an environment.'''
        ...     return f"deployed to {env}"
        >>> guarded_tool(deploy).description
        'Deploy to an environment.'
    """
    try:
        tool_spec(fn)
    except (TypeError, KeyError) as exc:
        msg = (
            f"{fn!r} is not a capscope tool: decorate it with "
            "@capscope.requires_tool or @capscope.needs_approval first"
        )
        raise TypeError(msg) from exc
    return _build(fn, options, ())


# -- sub-agents, handoffs and runs -------------------------------------------


def _agent_tool(
    agent: Any, options: Mapping[str, Any], layers: tuple[_Layer, ...]
) -> FunctionTool:
    tool: FunctionTool = agent.as_tool(**options)
    inner = tool.on_invoke_tool

    async def on_invoke_tool(ctx: ToolContext[Any], raw: str) -> Any:
        return await _under(layers, lambda: inner(ctx, raw))

    tool.on_invoke_tool = on_invoke_tool
    setattr(tool, _GUARD, _Guard(None, agent, options, layers))
    return tool


def agent_tool(
    agent: Agent[Any],
    *,
    push: Push | None = None,
    worker_id: str | None = None,
    tool_name: str | None = None,
    tool_description: str | None = None,
    **options: Any,
) -> FunctionTool:
    """
    `agent.as_tool(...)`, whose nested run is a capscope worker: it starts
    from the calling run's policy, narrowed by *push* (a mapping of stack
    names to policies, as for `capscope.spawn`), with `worker_id` in its
    attribution; it remembers no approval of its caller's. *options* are
    `Agent.as_tool`'s.

    A push wider than the caller's policy raises `capscope.CeilingExceeded`
    when the tool is called, which fails the run (a configuration error,
    not something for the model to work around).

    Examples:
        >>> from agents import Agent
        >>> from capscope.contrib.openai_agents import agent_tool
        >>> from capscope.policies import CapabilityPolicy
        >>> reader = Agent(name="reader", instructions="Read files.")
        >>> tool = agent_tool(reader, push={"execution": CapabilityPolicy(tools=("fs.read",))}, worker_id="reader", tool_description="Reads files.")
        >>> tool.name
        'reader'
    """
    layer = _Layer(_with_overlay(push, worker_id=worker_id), as_worker=True)
    options = {
        "tool_name": tool_name,
        "tool_description": tool_description,
        **options,
    }
    return _agent_tool(agent, options, (layer,))


#: What the adapter adds to `describe_policy()`: its asks go to a person.
_ASKED = (
    "Tool calls that need approval pause the run until a person answers "
    "through the application."
)


class _PolicyInstructions:
    """Dynamic instructions: the base text, then the policy in force."""

    def __init__(self, base: Any, layers: tuple[_Layer, ...] = ()) -> None:
        self.base = base
        self.layers = layers

    async def __call__(
        self, ctx: RunContextWrapper[Any], agent: Agent[Any]
    ) -> str:
        base = self.base
        if callable(base):
            base = base(ctx, agent)
            if inspect.isawaitable(base):
                base = await base
        with _inline(self.layers):
            policy = describe_policy()
        text = f"The limits on your tools:\n{policy}\n{_ASKED}"
        return f"{base}\n\n{text}" if base else text


def policy_instructions(base: Any = "") -> Callable[..., Awaitable[str]]:
    """
    Dynamic `instructions` for an `Agent`: *base* (a string, or the SDK's
    `(context, agent) -> str` function), then `capscope.describe_policy()`
    as in force where the model is called, so each run's model reads its
    own limits.

    Examples:
        >>> import asyncio
        >>> import capscope as cs
        >>> from agents import Agent, RunContextWrapper
        >>> from capscope.contrib.openai_agents import policy_instructions
        >>> from capscope.policies import CapabilityPolicy
        >>> agent = Agent(name="a", instructions=policy_instructions("Be brief."))
        >>> with cs.using(execution=CapabilityPolicy(tools=("fs.read",))):
        ...     text = asyncio.run(agent.get_system_prompt(RunContextWrapper(None)))
        >>> print(text.splitlines()[0], "|", text.splitlines()[3])
        Be brief. | Tools: only fs.read.
    """
    return _PolicyInstructions(base)


#: The SDK's hosted tools: they run at the model provider, not here.
_HOSTED = (
    FileSearchTool,
    WebSearchTool,
    CodeInterpreterTool,
    HostedMCPTool,
    ImageGenerationTool,
    ProgrammaticToolCallingTool,
    ToolSearchTool,
)


def _narrow_tool(tool: Any, layer: _Layer) -> Any:
    guard = (
        getattr(tool, _GUARD, None) if isinstance(tool, FunctionTool) else None
    )
    if guard is None:
        if isinstance(tool, FunctionTool):
            msg = (
                f"tool {tool.name!r} is not guarded by capscope, so a narrowed "
                "agent cannot narrow it: make it with guarded_tool or agent_tool"
            )
            raise TypeError(msg)
        if isinstance(tool, _HOSTED):
            return tool  # a hosted tool: it does not run here
        # A shell, a computer, a patch editor, a custom tool...: it runs in
        # this process, outside any narrowing the copy could push.
        msg = (
            f"tool {getattr(tool, 'name', tool)!r} ({type(tool).__name__}) "
            "runs in this process and is not a capscope-guarded function "
            "tool, so a narrowed agent cannot narrow it"
        )
        raise TypeError(msg)
    layers = (layer, *guard.layers)
    if guard.fn is not None:
        return _build(guard.fn, guard.options, layers)
    return _agent_tool(guard.agent, guard.options, layers)


def _narrow_agent(
    agent: Agent[Any], layer: _Layer, done: dict[int, Agent[Any]]
) -> Agent[Any]:
    if id(agent) in done:
        return done[id(agent)]
    if agent.mcp_servers:
        msg = (
            f"agent {agent.name!r} has MCP servers, whose tools capscope does "
            "not guard, so it cannot be narrowed"
        )
        raise TypeError(msg)
    instructions = agent.instructions
    if isinstance(instructions, _PolicyInstructions):
        instructions = _PolicyInstructions(
            instructions.base, (*instructions.layers, layer)
        )
    copy = agent.clone(instructions=instructions, tools=[], handoffs=[])
    done[id(agent)] = copy
    copy.tools = [_narrow_tool(tool, layer) for tool in agent.tools]
    handoffs: list[Any] = []
    for target in agent.handoffs:
        if not isinstance(target, Agent):
            msg = (
                f"agent {agent.name!r}: a Handoff object cannot be narrowed; "
                "list the agent itself in handoffs"
            )
            raise TypeError(msg)
        handoffs.append(_narrow_agent(target, layer, done))
    copy.handoffs = handoffs
    return copy


def narrowed_agent(
    agent: Agent[Any],
    *,
    push: Push | None = None,
    worker_id: str | None = None,
) -> Agent[Any]:
    """
    A copy of *agent* whose tools run under a narrower policy: each call of
    its guarded tools (and of its agent tools) is made inside
    `capscope.using(**push)` with `worker_id` in the attribution. Every
    agent it hands off to is narrowed the same way (recursively, cycles
    included), so a handoff cannot step outside the narrowing.

    For a handoff target: `handoffs=[narrowed_agent(billing, push=...)]`.
    The narrowing is pushed in the run's own task, so the run's remembered
    approvals and repeat counts carry on.

    Raises:
        TypeError: a tool is a `FunctionTool` not made by `guarded_tool` or
            `agent_tool`, or another tool that runs in this process (a
            shell, a computer, a patch editor, a `CustomTool`), an agent
            has MCP servers, or a handoff is a `Handoff` object: their
            calls could not be narrowed. Hosted tools (web search, file
            search, ...) run at the provider and are kept as they are.

    Examples:
        >>> from agents import Agent
        >>> from capscope.contrib.openai_agents import narrowed_agent
        >>> from capscope.policies import CapabilityPolicy
        >>> billing = Agent(name="billing", instructions="Answer billing questions.")
        >>> narrowed = narrowed_agent(billing, push={"execution": CapabilityPolicy(tools=("billing.*",))}, worker_id="billing")
        >>> narrowed.name, narrowed is billing
        ('billing', False)
    """
    layer = _Layer(_with_overlay(push, worker_id=worker_id))
    return _narrow_agent(agent, layer, {})


async def run(
    agent: Agent[Any],
    input: Any,  # noqa: A002 - Runner.run's name for it
    *,
    push: Push | None = None,
    run_id: str | None = None,
    worker_id: str | None = None,
    **options: Any,
) -> RunResult:
    """
    `Runner.run(agent, input, **options)` as a capscope worker: the run
    starts from the caller's policy, narrowed by *push* (stack names to
    policies, as for `capscope.spawn`), with `run_id` and `worker_id` in
    its attribution, and sees no sibling run's stacks. *input* may be a
    `RunState` to resume after approvals (answered with `approve` or
    `reject`): pass the same *push* and ids.

    Raises:
        CeilingExceeded: *push* asks for more than the caller has; raised
            before the run starts.

    Examples:
        >>> import asyncio
        >>> from agents import Agent, RunConfig
        >>> from agents.testing import ScriptedModel, assistant_message
        >>> from capscope.contrib.openai_agents import run
        >>> from capscope.policies import CapabilityPolicy
        >>> agent = Agent(name="a", model=ScriptedModel([[assistant_message("hi")]]))
        >>> local = RunConfig(tracing_disabled=True)
        >>> result = asyncio.run(run(agent, "hello", push={"execution": CapabilityPolicy.unrestricted()}, run_id="r-1", run_config=local))
        >>> result.final_output
        'hi'
    """
    pushes = _with_overlay(push, run_id=run_id, worker_id=worker_id)
    return await worker(Runner.run(agent, input, **options), push=pushes)
