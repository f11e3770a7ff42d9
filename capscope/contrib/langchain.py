"""
Guard LangChain tools and run LangGraph graphs as capscope workers.

- `guard_tool(tool, ...)` wraps a LangChain `BaseTool` (an `@tool`
  function, a `StructuredTool`, a `BaseTool` subclass) in a `CapscopeTool`:
  the model sees the very same tool (its name, description, `args_schema`,
  `tool_call_schema` and so the JSON schema `convert_to_openai_tool` makes),
  and every call, through `invoke`, `ainvoke`, `run`, `arun`, `batch` or a
  LangGraph `ToolNode`, is checked by capscope before the tool runs, with
  the arguments the tool is given (validated by its schema).
- A call that needs approval (a `needs_approval` tool, an `ask` rule, the
  autonomy tier) becomes a LangGraph `interrupt`: the graph stops, its
  client sees the request (`approval_interrupts`), and the human answers
  with `Command(resume=approve(request))` or `reject(request, reason)`.
  The answer is bound to that one call (the thread, the task, the tool call
  id, the tool and its arguments); anything that is not such an approval
  refuses the call. Any approval handler the application installed is
  asked as well: every handler in force must grant.
- A refused call reaches the model as a `ToolMessage` with
  `status="error"` ("capscope denied <tool>: <reason> (gate <gate>)"), and
  the graph goes on; the tool does not run.
- `as_worker(graph, push=..., worker_id=...)` runs each invocation of a
  graph (or of any runnable, a sub-graph used as a node included) as a
  capscope worker: its own narrowed policy and its own attribution
  (a fresh `run_id` for each invocation, unless its caller has one; the
  run's `thread_id` only when asked for with `run_id="thread_id"`), never
  a sibling's.
- `policy_message()` is `describe_policy()` as a `SystemMessage`, to tell
  the model what it may do.

Examples:
    >>> import capscope as cs
    >>> from langchain_core.tools import tool
    >>> from capscope.contrib.langchain import guard_tool
    >>> from capscope.policies import CapabilityPolicy
    >>> @tool
    ... def read_file(path: str) -> str:
    ...     \"\"\"Read a file.\"\"\"
    ...     return f"contents of {path}"
    >>> guarded = guard_tool(read_file, "fs.read", paths=["path"])
    >>> guarded.name, guarded.description
    ('read_file', 'Read a file.')
    >>> with cs.using(execution=CapabilityPolicy(workspace_roots=["/srv/ws"])):
    ...     guarded.invoke({"path": "/srv/ws/a.txt"})
    ...     msg = guarded.invoke({"type": "tool_call", "id": "c1", "name": "read_file", "args": {"path": "/etc/passwd"}})
    'contents of /srv/ws/a.txt'
    >>> msg.status, msg.content.split(":")[0]
    ('error', 'capscope denied fs.read')
"""

from __future__ import annotations

import contextlib
import copy
import functools
import hashlib
import json
import threading
import uuid
from collections.abc import (
    AsyncIterator,
    Callable,
    Iterable,
    Iterator,
    Mapping,
    Sequence,
)
from contextvars import ContextVar
from typing import Any

from langchain_core.messages import SystemMessage, ToolMessage
from langchain_core.runnables import Runnable, RunnableConfig
from langchain_core.tools import BaseTool, StructuredTool, Tool
from langchain_core.utils.pydantic import get_fields
from langgraph.types import Interrupt, interrupt
from pydantic_core import to_jsonable_python

from .. import (
    Action,
    ApprovalDecision,
    ApprovalRequest,
    Decision,
    PolicyDenied,
    Scope,
    check_tool,
    current_overlay,
    describe_policy,
    needs_approval,
    requires_tool,
    scoped_aiter,
    scoped_iter,
    tool_spec,
    using,
    worker,
)
from ..policies import RuntimeContextOverlay, ToolApprovalPolicy
from ._common import denial_text

__all__ = [
    "APPROVAL",
    "THREAD_ID",
    "CapscopeTool",
    "WorkerRunnable",
    "approval_interrupts",
    "approve",
    "as_worker",
    "guard_tool",
    "policy_message",
    "reject",
]

#: The `type` of the interrupt value a call that needs approval raises.
APPROVAL = "capscope.approval"

#: The body of the call being checked: what the guard runs once allowed.
_BODY: ContextVar[Callable[[], Any] | None] = ContextVar(
    "capscope.contrib.langchain.body", default=None
)


def _run_body(**arguments: Any) -> Any:  # noqa: ARG001 - checked by capscope
    body = _BODY.get()
    if body is None:  # called some other way than through CapscopeTool
        msg = "call the tool through its CapscopeTool"
        raise TypeError(msg)
    return body()


async def _arun_body(**arguments: Any) -> Any:  # noqa: ARG001 - checked by capscope
    body = _BODY.get()
    if body is None:
        msg = "call the tool through its CapscopeTool"
        raise TypeError(msg)
    return await body()


def _decorated(fn: object) -> bool:
    try:
        tool_spec(fn)
    except TypeError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    return to_jsonable_python(value, fallback=str)


# --- approvals ---------------------------------------------------------


def _request_of(request: Interrupt | Mapping[str, Any]) -> Mapping[str, Any]:
    value = request.value if isinstance(request, Interrupt) else request
    if not isinstance(value, Mapping) or value.get("type") != APPROVAL:
        msg = f"not a capscope approval request: {value!r:.80}"
        raise ValueError(msg)
    return value


def approve(request: Interrupt | Mapping[str, Any]) -> dict[str, Any]:
    """
    The resume value that approves the call *request* asks about (an
    `Interrupt` from `approval_interrupts`, or its value). It approves that
    call only: the same thread, graph task, tool call id, tool and
    arguments.

    Examples:
        >>> from capscope.contrib.langchain import approve
        >>> approve({"type": "capscope.approval", "call": "3f9a"})
        {'call': '3f9a', 'approved': True}
    """
    return {"call": _request_of(request)["call"], "approved": True}


def reject(
    request: Interrupt | Mapping[str, Any], reason: str | None = None
) -> dict[str, Any]:
    """
    The resume value that refuses the call *request* asks about; the model
    reads *reason* in the refusal. Any resume value that is not exactly an
    `approve` of this call refuses it too.

    Examples:
        >>> from capscope.contrib.langchain import reject
        >>> reject({"type": "capscope.approval", "call": "3f9a"}, "not today")
        {'call': '3f9a', 'approved': False, 'reason': 'not today'}
    """
    answer: dict[str, Any] = {
        "call": _request_of(request)["call"],
        "approved": False,
    }
    if reason is not None:
        answer["reason"] = reason
    return answer


def approval_interrupts(
    result: Mapping[str, Any] | Iterable[Interrupt],
) -> list[Interrupt]:
    """
    The capscope approval requests among a graph result's interrupts
    (`result["__interrupt__"]`, or `graph.get_state(config).interrupts`).
    Each `Interrupt.value` is a dict: `type` (`"capscope.approval"`),
    `call` (what an answer is bound to), `tool` (the LangChain name),
    `capscope_tool`, `tool_call_id`, `arguments`, `reason` and `gate`.

    Examples:
        >>> from langgraph.types import Interrupt
        >>> from capscope.contrib.langchain import approval_interrupts
        >>> asked = Interrupt(value={"type": "capscope.approval", "call": "3f9a"}, id="i1")
        >>> [i.id for i in approval_interrupts({"__interrupt__": [asked, Interrupt("other", id="i2")]})]
        ['i1']
    """
    items = (
        result.get("__interrupt__", ())
        if isinstance(result, Mapping)
        else result
    )
    return [
        item
        for item in items
        if isinstance(item, Interrupt)
        and isinstance(item.value, Mapping)
        and item.value.get("type") == APPROVAL
    ]


class _Answer:
    """
    The approval handler pushed for one approved call: it answers the
    request that matches the call the human was asked about, once.
    """

    def __init__(
        self,
        decision: Decision,
        *,
        approved: bool,
        reason: str,
    ) -> None:
        self.tool = decision.tool
        self.arguments = dict(decision.arguments or {})
        self.approved = approved
        self.reason = reason
        self._used = False
        self._lock = threading.Lock()

    def __call__(self, request: ApprovalRequest) -> ApprovalDecision:
        if (
            request.tool != self.tool
            or dict(request.arguments) != self.arguments
        ):
            return ApprovalDecision.deny(
                "the approval given in LangGraph was for another call"
            )
        with self._lock:
            used, self._used = self._used, True
        if used:
            return ApprovalDecision.deny(
                "the approval given in LangGraph was already used"
            )
        if self.approved:
            return ApprovalDecision.allow(reason=self.reason)
        return ApprovalDecision.deny(self.reason)


def _answer(value: object, call: str) -> tuple[bool, str]:
    """Whether *value* approves the call *call*, and why."""
    if not isinstance(value, Mapping) or value.get("call") != call:
        return False, (
            f"the resume value {value!r:.60} is not an answer to this call "
            "(resume with approve(request) or reject(request))"
        )
    if value.get("approved") is True:
        return True, "approved in LangGraph"
    reason = value.get("reason")
    if isinstance(reason, str) and reason:
        return False, reason
    return False, "rejected in LangGraph"


# --- the tool wrapper --------------------------------------------------


def _signature_only(
    fn: Callable[..., Any] | None,
) -> Callable[..., Any] | None:
    """A stand-in with *fn*'s signature and annotations that refuses calls."""
    if fn is None:
        return None

    @functools.wraps(fn)
    def refuse(*_args: Any, **_kwargs: Any) -> Any:
        msg = "a CapscopeTool runs only through invoke, ainvoke, run or arun"
        raise TypeError(msg)

    return refuse


class CapscopeTool(BaseTool):
    """
    A LangChain tool whose every call is checked by capscope; made by
    `guard_tool`. Its name, description, schemas and `extras` are the
    wrapped tool's; `tool` is the wrapped tool.

    A refusal is returned, not raised: a `ToolMessage` with
    `status="error"` for a tool call (what LangGraph's `ToolNode` and
    agents send), the refusal text for a plain input. A call that needs
    approval raises a LangGraph interrupt (see `approve`); outside a
    LangGraph run there is no one to ask, and it is refused.

    Examples:
        >>> from langchain_core.tools import tool
        >>> from capscope.contrib.langchain import CapscopeTool, guard_tool
        >>> @tool
        ... def add(a: int, b: int) -> int:
        ...     \"\"\"Add two numbers.\"\"\"
        ...     return a + b
        >>> guarded = guard_tool(add)
        >>> isinstance(guarded, CapscopeTool), guarded.tool is add
        (True, True)
    """

    tool: BaseTool
    """The wrapped tool."""

    guard: Any = None
    """The capscope-decorated callable checked for a sync call."""

    aguard: Any = None
    """The capscope-decorated callable checked for an async call."""

    own_check: bool = False
    """The wrapped tool's functions are decorated: they check themselves."""

    # -- what the model sees: the wrapped tool's ----------------------------

    @property
    def tool_call_schema(self) -> Any:
        """The wrapped tool's `tool_call_schema`."""
        return self.tool.tool_call_schema

    @property
    def args(self) -> dict[str, Any]:
        """The wrapped tool's `args`."""
        return self.tool.args

    def get_input_schema(self, config: RunnableConfig | None = None) -> Any:
        """The wrapped tool's input schema."""
        return self.tool.get_input_schema(config)

    @functools.cached_property
    def _injected_args_keys(self) -> frozenset[str]:
        return self.tool._injected_args_keys  # noqa: SLF001

    @property
    def func(self) -> Callable[..., Any] | None:
        """
        A stand-in for the wrapped tool's `func`, with its signature and
        annotations (LangGraph reads them to inject state), that refuses
        to be called: the tool runs only through `invoke` and friends.
        """
        return _signature_only(getattr(self.tool, "func", None))

    @property
    def coroutine(self) -> Callable[..., Any] | None:
        """Likewise, for the wrapped tool's `coroutine`."""
        return _signature_only(getattr(self.tool, "coroutine", None))

    def _run(self, *_args: Any, **_kwargs: Any) -> Any:
        msg = "a CapscopeTool runs only through invoke, ainvoke, run or arun"
        raise TypeError(msg)

    # -- the checked call ---------------------------------------------------

    def _arguments(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> dict[str, Any]:
        """The model-facing arguments of a call, as the tool will get them."""
        if isinstance(tool_input, str):
            # LangChain hands a string to the first field of the schema.
            try:
                fields = list(get_fields(self.tool.get_input_schema()))
            except Exception:  # noqa: BLE001 - no schema: a positional string
                fields = []
            return {fields[0] if fields else "input": tool_input}
        try:
            parsed = self.tool._parse_input(  # noqa: SLF001
                copy.copy(tool_input), tool_call_id
            )
        except Exception:  # noqa: BLE001 - the tool reports it, and does not run
            parsed = tool_input
        if isinstance(parsed, str):
            return {"input": parsed}
        return self.tool._filter_injected_args(parsed)  # noqa: SLF001

    def _own_args(
        self, tool_input: str | dict[str, Any], tool_call_id: str | None
    ) -> tuple[tuple[Any, ...], dict[str, Any]] | None:
        """What the wrapped tool passes its decorated function, if known."""
        try:
            return self.tool._to_args_and_kwargs(  # noqa: SLF001
                copy.copy(tool_input), tool_call_id
            )
        except Exception:  # noqa: BLE001 - the tool reports it, and does not run
            return None

    def _dry_run(
        self,
        guard: Any,
        tool_input: str | dict[str, Any],
        tool_call_id: str | None,
    ) -> tuple[Decision | None, dict[str, Any]]:
        arguments = self._arguments(tool_input, tool_call_id)
        if self.own_check:
            own = self._own_args(tool_input, tool_call_id)
            if own is None:
                return None, arguments
            try:
                return check_tool(guard, *own[0], **own[1]), arguments
            except TypeError:  # not bindable: the real check decides alone
                return None, arguments
        return check_tool(guard, **arguments), arguments

    def _approval(
        self,
        decision: Decision,
        arguments: dict[str, Any],
        tool_call_id: str | None,
        config: RunnableConfig | None,
    ) -> ToolApprovalPolicy:
        """
        Ask the human through a LangGraph interrupt; the approval policy
        that carries the answer for this call, to push for it.
        """
        configurable = dict((config or {}).get("configurable") or {})
        shown = _jsonable(arguments)
        call = hashlib.sha256(
            json.dumps(
                [
                    str(configurable.get("thread_id")),
                    str(configurable.get("checkpoint_ns")),
                    self.name,
                    tool_call_id,
                    decision.tool,
                    shown,
                ],
                sort_keys=True,
                separators=(",", ":"),
            ).encode()
        ).hexdigest()
        gate = decision.gate.value if decision.gate is not None else None
        request = {
            "type": APPROVAL,
            "call": call,
            "tool": self.name,
            "capscope_tool": decision.tool,
            "tool_call_id": tool_call_id,
            "arguments": shown,
            "reason": decision.reason,
            "gate": gate,
        }
        try:
            value = interrupt(request)
        except (RuntimeError, KeyError):  # not inside a LangGraph run
            approved, reason = False, "no LangGraph run to ask for approval in"
        else:
            approved, reason = _answer(value, call)
        return ToolApprovalPolicy(
            handler=_Answer(decision, approved=approved, reason=reason)
        )

    def _refusal(
        self, denied: PolicyDenied, tool_call_id: str | None
    ) -> ToolMessage | str:
        if isinstance(denied.decision, Decision):
            content = denial_text(denied)
        else:  # raised without a decision, by code inside the tool
            content = f"capscope denied {self.name}: {denied}"
        if tool_call_id is None:
            return content
        return ToolMessage(
            content,
            tool_call_id=tool_call_id,
            name=self.name,
            status="error",
        )

    def run(  # noqa: PLR0913 - BaseTool.run's signature
        self,
        tool_input: str | dict[str, Any],
        verbose: bool | None = None,  # noqa: FBT001
        start_color: str | None = "green",
        color: str | None = "green",
        callbacks: Any = None,
        *,
        tool_call_id: str | None = None,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        """
        Check the call, ask if it needs approval, then run the wrapped
        tool's `run` with the same arguments.
        """
        body = functools.partial(
            self.tool.run,
            tool_input,
            verbose,
            start_color,
            color,
            callbacks,
            tool_call_id=tool_call_id,
            config=config,
            **kwargs,
        )
        try:
            decision, arguments = self._dry_run(
                self.guard, tool_input, tool_call_id
            )
            with contextlib.ExitStack() as stack:
                if decision is not None and decision.action is Action.ASK:
                    policy = self._approval(
                        decision, arguments, tool_call_id, config
                    )
                    stack.enter_context(using(approval=policy))
                if self.own_check:
                    return body()
                token = _BODY.set(body)
                try:
                    return self.guard(**arguments)
                finally:
                    _BODY.reset(token)
        except PolicyDenied as denied:
            return self._refusal(denied, tool_call_id)

    async def arun(  # noqa: PLR0913 - BaseTool.arun's signature
        self,
        tool_input: str | dict[str, Any],
        verbose: bool | None = None,  # noqa: FBT001
        start_color: str | None = "green",
        color: str | None = "green",
        callbacks: Any = None,
        *,
        tool_call_id: str | None = None,
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        """The async `run`: the wrapped tool's `arun` runs once allowed."""
        body = functools.partial(
            self.tool.arun,
            tool_input,
            verbose,
            start_color,
            color,
            callbacks,
            tool_call_id=tool_call_id,
            config=config,
            **kwargs,
        )
        try:
            decision, arguments = self._dry_run(
                self.aguard, tool_input, tool_call_id
            )
            with contextlib.ExitStack() as stack:
                if decision is not None and decision.action is Action.ASK:
                    policy = self._approval(
                        decision, arguments, tool_call_id, config
                    )
                    stack.enter_context(using(approval=policy))
                if self.own_check:
                    return await body()
                token = _BODY.set(body)
                try:
                    return await self.aguard(**arguments)
                finally:
                    _BODY.reset(token)
        except PolicyDenied as denied:
            return self._refusal(denied, tool_call_id)


def guard_tool(  # noqa: PLR0913 - the decorators' options
    tool: BaseTool,
    name: str | None = None,
    *,
    capability: str | None = None,
    side_effect: str | None = None,
    paths: Sequence[str] = (),
    approval: bool = False,
    reason: str | None = None,
) -> CapscopeTool:
    """
    Wrap *tool* so that capscope checks every call of it.

    The options are those of `capscope.requires_tool` (or, with
    `approval=True`, of `capscope.needs_approval`): *name* is the tool's
    name as policies match it (default: the LangChain name), *paths* name
    the arguments that hold paths. A `StructuredTool` whose functions are
    already decorated with `requires_tool`/`needs_approval` (`@tool` over
    `@cs.requires_tool(...)`) is checked by them: give no options then.

    Raises:
        TypeError: *tool* is a plain single-string `Tool` (its model schema
            cannot be kept), or only one of its `func` and `coroutine` is
            decorated.
        ValueError: options given for a tool whose functions are decorated,
            or *capability* with `approval=True`.
        PolicyConfigError: a bad option, as the decorators raise it.

    Examples:
        >>> from langchain_core.tools import tool
        >>> from langchain_core.utils.function_calling import convert_to_openai_tool
        >>> from capscope.contrib.langchain import guard_tool
        >>> @tool
        ... def deploy(env: str) -> str:
        ...     \"\"\"Deploy to an environment.\"\"\"
        ...     return f"deployed to {env}"
        >>> guarded = guard_tool(deploy, approval=True, reason="ships code")
        >>> convert_to_openai_tool(guarded) == convert_to_openai_tool(deploy)
        True
    """
    if isinstance(tool, CapscopeTool):
        msg = f"{tool.name!r} is already guarded"
        raise TypeError(msg)
    if isinstance(tool, Tool) and not tool.args_schema:
        msg = (
            f"{tool.name!r} is a single-string Tool: give it an args_schema, "
            "or make it with @tool or StructuredTool"
        )
        raise TypeError(msg)
    options = bool(
        name or capability or side_effect or paths or approval or reason
    )
    functions = [
        fn
        for fn in (
            getattr(tool, "func", None),
            getattr(tool, "coroutine", None),
        )
        if fn is not None
    ]
    decorated = [_decorated(fn) for fn in functions]
    own_check = isinstance(tool, StructuredTool) and any(decorated)
    if own_check:
        if not all(decorated):
            msg = (
                f"{tool.name!r}: decorate both its func and its coroutine, "
                "or neither"
            )
            raise TypeError(msg)
        if options:
            msg = (
                f"{tool.name!r}: its functions are decorated; give no options"
            )
            raise ValueError(msg)
        func = getattr(tool, "func", None)
        coro = getattr(tool, "coroutine", None)
        guard, aguard = func or coro, coro or func
    else:
        tool_name = name or tool.name
        if approval:
            if capability is not None:
                msg = "capability: needs_approval takes none; use an approval rule"
                raise ValueError(msg)
            decorator = needs_approval(
                tool_name, reason=reason, paths=paths, side_effect=side_effect
            )
        else:
            if reason is not None:
                msg = "reason: only with approval=True"
                raise ValueError(msg)
            decorator = requires_tool(
                tool_name,
                capability=capability,
                side_effect=side_effect,
                paths=paths,
            )
        guard, aguard = decorator(_run_body), decorator(_arun_body)
    return CapscopeTool(
        tool=tool,
        guard=guard,
        aguard=aguard,
        own_check=own_check,
        name=tool.name,
        description=tool.description,
        args_schema=tool.args_schema,
        return_direct=tool.return_direct,
        response_format=tool.response_format,
        extras=tool.extras,
        metadata=tool.metadata,
        tags=tool.tags,
    )


# --- per-run policy ----------------------------------------------------

_Push = Mapping[Any, Any]
_ConfigFn = Callable[[RunnableConfig | None], Any]

#: `as_worker(..., run_id=THREAD_ID)`: the run's `thread_id` is its
#: `run_id`. Opt in only when the thread id is yours, not the client's.
THREAD_ID = "thread_id"


def _fresh_run_id() -> str:
    """A run id for one invocation that nobody outside chose."""
    return str(uuid.uuid4())


class WorkerRunnable(Runnable[Any, Any]):
    """
    A runnable that runs each call of another (a compiled graph, say) as a
    capscope worker; made by `as_worker`. `runnable` is the wrapped one.

    Examples:
        >>> from langchain_core.runnables import RunnableLambda
        >>> from capscope.contrib.langchain import as_worker
        >>> import capscope as cs
        >>> ids = RunnableLambda(lambda _: cs.current_overlay().ids())
        >>> who = as_worker(ids, worker_id="w1", run_id="thread_id")
        >>> who.invoke(None, {"configurable": {"thread_id": "t1"}})
        {'run_id': 't1', 'worker_id': 'w1'}
    """

    def __init__(
        self,
        runnable: Runnable[Any, Any],
        *,
        push: _Push | _ConfigFn | None = None,
        worker_id: str | _ConfigFn | None = None,
        run_id: str | _ConfigFn | None = None,
    ) -> None:
        self.runnable = runnable
        self.push = push
        self.worker_id = worker_id
        self.run_id = run_id
        self.name = runnable.get_name()

    def scope(self, config: RunnableConfig | None = None) -> Scope:
        """
        The worker scope one call with *config* runs under: the worker
        capture of the caller, with the pushes narrowed into it and the
        attribution on top.

        Raises:
            CeilingExceeded: a push asks for more than the caller has, or
                an id changes the caller's `run_id`.
        """
        push = self.push(config) if callable(self.push) else self.push
        scope = Scope.capture_inherited()
        if push:
            scope = scope.pushing(dict(push))
        run_id = self._run_id(scope, config)
        worker_id = (
            self.worker_id(config)
            if callable(self.worker_id)
            else self.worker_id
        )
        return scope.pushing(
            {
                "overlay": RuntimeContextOverlay(
                    run_id=run_id, worker_id=worker_id or self.name
                )
            }
        )

    def _run_id(
        self, scope: Scope, config: RunnableConfig | None
    ) -> str | None:
        """
        The `run_id` one call carries: the caller's when it has one (a run
        never changes its caller's; an explicit id that differs raises
        `CeilingExceeded`), else the one given (a string, a function of the
        config, or the config's `thread_id` for `THREAD_ID`), else a fresh
        one. A `thread_id` is often the client's choice, so it is never the
        run's id unless asked for.
        """
        with scope.installed():
            inherited = current_overlay().run_id
        if self.run_id == THREAD_ID:
            if inherited is not None:
                return None  # keeps the caller's
            configurable = (config or {}).get("configurable") or {}
            thread = configurable.get("thread_id")
            return str(thread) if thread is not None else _fresh_run_id()
        run_id = self.run_id(config) if callable(self.run_id) else self.run_id
        if run_id is None and inherited is None:
            return _fresh_run_id()
        return None if run_id is None else str(run_id)

    def get_name(
        self, suffix: str | None = None, *, name: str | None = None
    ) -> str:
        """The wrapped runnable's name."""
        return self.runnable.get_name(suffix, name=name)

    def invoke(
        self,
        input: Any,  # noqa: A002 - Runnable's parameter name
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        """`invoke` the wrapped runnable as a worker."""
        return self.scope(config).run(
            self.runnable.invoke, input, config, **kwargs
        )

    async def ainvoke(
        self,
        input: Any,  # noqa: A002 - Runnable's parameter name
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Any:
        """`ainvoke` the wrapped runnable as a worker."""
        scope = self.scope(config)
        return await worker(
            self.runnable.ainvoke(input, config, **kwargs), scope=scope
        )

    def stream(
        self,
        input: Any,  # noqa: A002 - Runnable's parameter name
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> Iterator[Any]:
        """`stream` the wrapped runnable as a worker."""
        scope = self.scope(config)
        return scoped_iter(
            scope, self.runnable.stream(input, config, **kwargs)
        )

    def astream(
        self,
        input: Any,  # noqa: A002 - Runnable's parameter name
        config: RunnableConfig | None = None,
        **kwargs: Any,
    ) -> AsyncIterator[Any]:
        """`astream` the wrapped runnable as a worker."""
        scope = self.scope(config)
        return scoped_aiter(
            scope, self.runnable.astream(input, config, **kwargs)
        )


def as_worker(
    runnable: Runnable[Any, Any],
    *,
    push: _Push | _ConfigFn | None = None,
    worker_id: str | _ConfigFn | None = None,
    run_id: str | _ConfigFn | None = None,
) -> WorkerRunnable:
    """
    Run every call of *runnable* (a compiled graph, a sub-graph used as a
    node, an agent) as a capscope worker: it starts from its caller's
    ceiling, *push* narrows it for that call only (`{"execution":
    CapabilityPolicy(...)}`, as `cs.spawn(push=...)`), and its decisions
    carry `run_id` and `worker_id` (default: the runnable's name). *push*,
    *worker_id* and *run_id* may be functions of the call's config, for a
    policy per user or per thread.

    `run_id`: when the caller already has one, the run keeps it (a
    sub-graph keeps its parent's; an explicit id that differs raises
    `CeilingExceeded`). Otherwise: the id given, or with
    `run_id="thread_id"` (`THREAD_ID`) the config's `thread_id`, or by
    default a fresh id (a UUID) for every invocation. A `thread_id` is
    often chosen by the client, so it is the run's id only when asked for:
    opt in when your application mints the thread ids.

    A push that asks for more than the caller has raises `CeilingExceeded`
    from the call, before the runnable starts.

    Examples:
        >>> import capscope as cs
        >>> from langchain_core.runnables import RunnableLambda
        >>> from capscope.contrib.langchain import as_worker
        >>> from capscope.policies import CapabilityPolicy
        >>> tools = RunnableLambda(lambda _: cs.stacks.execution.top().tools)
        >>> reader = as_worker(tools, push={"execution": CapabilityPolicy(tools=["fs.read"])})
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.*"])):
        ...     reader.invoke(None)
        ('fs.read',)
        >>> ids = RunnableLambda(lambda _: cs.current_overlay().run_id)
        >>> thread = {"configurable": {"thread_id": "t-1"}}
        >>> as_worker(ids).invoke(None, thread) == "t-1"
        False
        >>> as_worker(ids, run_id="thread_id").invoke(None, thread)
        't-1'
    """
    return WorkerRunnable(
        runnable, push=push, worker_id=worker_id, run_id=run_id
    )


def policy_message() -> SystemMessage:
    """
    `capscope.describe_policy()` as a `SystemMessage`: what the model may
    do here, to put before its conversation.

    Examples:
        >>> import capscope as cs
        >>> from capscope.contrib.langchain import policy_message
        >>> from capscope.policies import CapabilityPolicy
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
        ...     print(policy_message().content.splitlines()[0])
        Tools: only fs.read.
    """
    return SystemMessage(describe_policy())
