"""
Guard MCP tools with capscope, on both sides of the protocol.

Three pieces, built on the `mcp` Python SDK (`pip install 'capscope[mcp]'`):

* **Server side**, `guard_server(server, policy=...)`: every tool of an
  `mcp.server.mcpserver.MCPServer` is checked where its body runs. Each
  `tools/call` runs as a capscope worker of its client session, under the
  policy that session was given (`policy=`, asked once per session) and
  with the session id as `worker_id`. A call that needs approval asks the
  client's user through MCP elicitation (`elicitation/create`) when the
  client declared the `elicitation` capability, and is refused when it did
  not. Every other request that can run the server's code (a resource
  read, a prompt) runs as the same worker, so a capscope-decorated
  function behind it is checked under the session's policy too. A refused
  call returns an MCP tool error (`isError: true`) naming
  the tool, the reason and the gate. `CapscopeMiddleware` is the same
  thing for a low-level `mcp.server.Server`.
* **Client side**, `guard_client(session, server="github")`: every
  `call_tool` an agent makes through the returned `GuardedSession` is
  checked against the caller's live scope as the capscope tool
  `mcp__github__<tool>` (the names Claude Code's permission rules use), and
  a refused call never reaches the server.
* **Gateway**, `capscope mcp-proxy --policy policy.toml -- <command>`: puts
  a policy file in front of any stdio MCP server (see the integration
  guide).

Elicitation needs a back-channel: on the handshake protocol era (an
`initialize` handshake, up to 2025-11-25) the server can send
`elicitation/create` in the middle of a call; on the stateless 2026-07-28
era it cannot, so an ask there is refused (fail closed).

Examples:
    >>> import capscope as cs
    >>> from mcp.server.mcpserver import MCPServer
    >>> from capscope.contrib.mcp import guard_server
    >>> from capscope.policies import CapabilityPolicy
    >>> server = MCPServer("files")
    >>> @server.tool()
    ... @cs.requires_tool("fs.read", side_effect="read_only")
    ... def read(path: str) -> str:
    ...     return "text"
    >>> middleware = guard_server(
    ...     server, policy={"execution": CapabilityPolicy(tools=["fs.read"])}
    ... )
    >>> middleware in server.middleware
    True
"""

from __future__ import annotations

import contextvars
import copy
import json
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final

import anyio
import anyio.from_thread
import anyio.lowlevel
import attrs
import mcp_types as types
from mcp.server.context import CallNext, HandlerResult, ServerRequestContext
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from .. import (
    AmbientStack,
    ApprovalDecision,
    ApprovalRequest,
    PolicyConfigError,
    PolicyDenied,
    Scope,
    ToolDenied,
    requires_tool,
    tool_spec,
    using,
    worker,
)
from .. import needs_approval as _needs_approval
from ..policies import RuntimeContextOverlay, ToolApprovalPolicy
from ._common import denial_text

__all__ = [
    "APPROVAL_SCHEMA",
    "CapscopeMiddleware",
    "GuardedSession",
    "SessionInfo",
    "denial_text",
    "denied_result",
    "guard_client",
    "guard_server",
    "mcp_tool_name",
]

#: The form an approval is asked with: one required boolean, `approve`.
APPROVAL_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "approve": {
            "type": "boolean",
            "title": "Approve",
            "description": "Run this tool call?",
        }
    },
    "required": ["approve"],
}

#: Where a connection keeps what capscope decided about its session.
_STATE_KEY: Final = "capscope.contrib.mcp"
#: Marks a tool function `guard_server` already wrapped.
_GUARDED: Final = "_capscope_mcp_guarded"
#: How many tool names' forwarders a `GuardedSession` keeps at once.
_FORWARDERS: Final = 1024
#: Requests that run no server code of the session's: not run as its worker.
#: Every other request (a resource read or a prompt, whose functions may be
#: capscope tools too) runs under the session's policy, never the server's.
_OUTSIDE_SESSIONS: Final = frozenset({"initialize", "ping"})

PolicyPush = Mapping[AmbientStack[Any] | str, Any]
PolicyFor = Callable[["SessionInfo"], PolicyPush | None]


def mcp_tool_name(server: str, tool: str) -> str:
    """
    The capscope tool name of the MCP tool *tool* of *server*:
    `mcp__<server>__<tool>`, as approval rules (`mcp_server=`,
    `mcp_tool=`) and Claude Code's permission rules read it.

    Raises:
        PolicyConfigError: *server* is empty or contains `__` (the name
            would split differently), or *tool* is empty.

    Examples:
        >>> from capscope.contrib.mcp import mcp_tool_name
        >>> mcp_tool_name("github", "create_issue")
        'mcp__github__create_issue'
    """
    _check_server_name(server)
    if not tool:
        raise PolicyConfigError("tool", "an MCP tool name cannot be empty")
    return f"mcp__{server}__{tool}"


def _check_server_name(server: str) -> None:
    if not server or "__" in server:
        msg = (
            f"the MCP server name {server!r} must be non-empty and must not "
            "contain '__' (tool names are mcp__<server>__<tool>)"
        )
        raise PolicyConfigError("server", msg)


def denied_result(exc: PolicyDenied) -> types.CallToolResult:
    """
    A refused call as an MCP tool result: `isError: true`, with
    `denial_text` as its text.

    Examples:
        >>> import capscope as cs
        >>> from capscope.contrib.mcp import denied_result
        >>> @cs.requires_tool("fs.read")
        ... def read(path: str) -> str: ...
        >>> try:
        ...     read("notes.txt")
        ... except cs.NoPolicyInstalled as exc:
        ...     result = denied_result(exc)
        >>> result.is_error, result.content[0].text[:31]
        (True, 'capscope denied fs.read: no exe')
    """
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=denial_text(exc))],
        is_error=True,
    )


# -- server side ---------------------------------------------------------------


@attrs.frozen
class SessionInfo:
    """
    The client session a tool call comes from, as `policy=` callbacks see
    it.

    Attributes:
        session_id: The transport's session id (streamable HTTP's
            `Mcp-Session-Id`), else one capscope minted for the connection
            (`mcp-` and 16 hex digits); it is the session's `worker_id`.
        client: The client's `Implementation` (name, version), if it sent
            one. Client-supplied: never an identity proof.
        elicitation: Whether the client declared form elicitation and the
            connection can carry a server-to-client request.
        context: The request context of the session's first call (its
            `.request` is the HTTP request on HTTP transports).

    Examples:
        >>> from capscope.contrib.mcp import SessionInfo
        >>> SessionInfo("mcp-1", None, False, None).session_id
        'mcp-1'
    """

    session_id: str
    client: types.Implementation | None
    elicitation: bool
    context: Any = attrs.field(eq=False, repr=False)


def _connection(ctx: ServerRequestContext[Any, Any]) -> Any:
    # The SDK's per-request ServerSession holds the connection privately;
    # its `state` dict is the documented per-connection scratch space.
    return getattr(ctx.session, "_connection", None)


def _can_elicit(ctx: ServerRequestContext[Any, Any]) -> bool:
    caps = ctx.session.client_capabilities
    if caps is None or caps.elicitation is None:
        return False
    # `elicitation: {}` is form mode (the pre-2025-11-25 shape).
    form = caps.elicitation.form is not None or caps.elicitation.url is None
    return form and ctx.session.can_send_request


def _client_info(ctx: ServerRequestContext[Any, Any]) -> Any:
    params = ctx.session.client_params
    return None if params is None else params.client_info


@attrs.frozen
class _Session:
    info: SessionInfo
    push: dict[AmbientStack[Any] | str, Any]


class CapscopeMiddleware:
    """
    An MCP server middleware that runs every `tools/call` (and every other
    request but `initialize`, `ping` and notifications) as a capscope
    worker of its client session; `guard_server` installs one. Add it to a
    low-level `mcp.server.Server` yourself with
    `server.middleware.append(CapscopeMiddleware(...))` (and decorate the
    functions your `on_call_tool` runs: the middleware only sets the scope,
    the decorators check).

    Args:
        policy: What each session's worker pushes, as `cs.spawn(push=...)`
            takes it: a mapping of stack names to policies, the same for
            every session, or a callable given the `SessionInfo` (asked
            once per session, on its first call) returning one (or `None`
            for nothing). A push can only narrow: one wider than the base
            raises `CeilingExceeded`, and the call fails.
        scope: The base every session's worker starts from (a
            `cs.load_policy_file` scope, say); by default, the scope the
            server runs in.
        session_id: A callable given the request context returning the
            session id; by default the transport's session id, else one
            minted per connection.
        elicit: Ask approvals through MCP elicitation (default). With
            `False`, an ask goes only to the approval handlers already in
            force, and with none it is refused.
        approval_timeout: Seconds to wait for the user's answer (`None`:
            no limit of our own; an outer policy's smaller timeout holds).

    Examples:
        >>> from mcp.server import Server
        >>> from capscope.contrib.mcp import CapscopeMiddleware
        >>> server = Server("low-level")
        >>> server.middleware.append(CapscopeMiddleware())
    """

    def __init__(
        self,
        *,
        policy: PolicyPush | PolicyFor | None = None,
        scope: Scope | None = None,
        session_id: Callable[[ServerRequestContext[Any, Any]], str]
        | None = None,
        elicit: bool = True,
        approval_timeout: float | None = 300.0,
    ) -> None:
        self.policy = policy
        self.scope = scope
        self.session_id = session_id
        self.elicit = elicit
        self.approval_timeout = approval_timeout
        #: called with each `tools/call` context before it runs (guard_server)
        self.before_call: Callable[[ServerRequestContext[Any, Any]], None] = (
            _nothing
        )

    def _session(self, ctx: ServerRequestContext[Any, Any]) -> _Session:
        connection = _connection(ctx)
        state: dict[str, Any] | None = getattr(connection, "state", None)
        if state is not None and isinstance(state.get(_STATE_KEY), _Session):
            known: _Session = state[_STATE_KEY]
            return known
        if self.session_id is not None:
            sid = self.session_id(ctx)
        else:
            sid = getattr(connection, "session_id", None) or (
                f"mcp-{uuid.uuid4().hex[:16]}"
            )
        if not isinstance(sid, str) or not sid:
            msg = f"session_id must return a non-empty str, not {sid!r}"
            raise TypeError(msg)
        info = SessionInfo(sid, _client_info(ctx), _can_elicit(ctx), ctx)
        policy = self.policy(info) if callable(self.policy) else self.policy
        push: dict[AmbientStack[Any] | str, Any] = {
            key.name if isinstance(key, AmbientStack) else key: value
            for key, value in (policy or {}).items()
        }
        overlay = push.get("overlay")
        if isinstance(overlay, RuntimeContextOverlay):
            push["overlay"] = attrs.evolve(overlay, worker_id=sid)
        else:
            push["overlay"] = RuntimeContextOverlay(worker_id=sid)
        session = _Session(info, push)
        if state is not None:
            state[_STATE_KEY] = session
        return session

    async def __call__(
        self, ctx: ServerRequestContext[Any, Any], call_next: CallNext
    ) -> HandlerResult:
        """
        Run a request (`tools/call`, and any other that can run the
        server's code: `resources/read`, `prompts/get`, ...) as its
        session's worker; pass the handshake, pings and notifications on.
        """
        if ctx.method in _OUTSIDE_SESSIONS or ctx.method.startswith(
            "notifications/"
        ):
            return await call_next(ctx)
        if ctx.method == "tools/call":
            self.before_call(ctx)
        session = self._session(ctx)
        approval = None
        if self.elicit:
            handler = _elicitor(ctx, session.info)
            approval = ToolApprovalPolicy(
                handler=handler,
                timeout=self.approval_timeout,
                # The workspace boundary only ever comes from outer frames.
                allow_external_paths=True,
            )

        async def run() -> HandlerResult:
            if approval is None:
                return await call_next(ctx)
            with using(approval=approval):
                return await call_next(ctx)

        return await worker(run(), scope=self.scope, push=session.push)


def _nothing(ctx: ServerRequestContext[Any, Any]) -> None:
    pass


def _approval_message(request: ApprovalRequest) -> str:
    try:
        arguments = json.dumps(dict(request.arguments), sort_keys=True)
    except (TypeError, ValueError):
        arguments = repr(dict(request.arguments))
    return (
        f"Allow the tool call {request.tool}?\n"
        f"Arguments: {arguments}\nWhy this asks: {request.reason}"
    )


def _elicitor(
    ctx: ServerRequestContext[Any, Any], info: SessionInfo
) -> Callable[[ApprovalRequest], ApprovalDecision]:
    """
    An approval handler bound to one request: it asks that request's client
    (and no other) through `elicitation/create`, from whatever thread
    capscope calls it in, back on the server's event loop.
    """
    token = anyio.lowlevel.current_token()
    session = ctx.session
    request_id = ctx.request_id

    def ask_the_client(request: ApprovalRequest) -> ApprovalDecision:
        if not info.elicitation:
            return ApprovalDecision.deny(
                "the MCP client cannot be asked: it did not declare the "
                "elicitation capability (or the connection has no "
                "back-channel), so nobody can approve"
            )

        async def elicit() -> types.ElicitResult:
            return await session.elicit_form(
                _approval_message(request),
                APPROVAL_SCHEMA,
                related_request_id=request_id,
            )

        result = anyio.from_thread.run(elicit, token=token)
        content = result.content or {}
        if result.action == "accept" and content.get("approve") is True:
            return ApprovalDecision.allow(
                reason="approved by the MCP client's user"
            )
        return ApprovalDecision.deny(
            f"not approved by the MCP client's user ({result.action})"
        )

    return ask_the_client


def _guard_tool(tool: Any) -> None:
    """Wrap one registered tool's function so capscope checks its calls."""
    fn = tool.fn
    if getattr(fn, _GUARDED, False):
        return
    try:
        tool_spec(fn)
        checked = fn
    except TypeError:  # not decorated: guarded under its MCP name
        checked = requires_tool(tool.name)(fn)

    guarded: Callable[..., Any]
    if tool.is_async:

        async def guarded_async(**kwargs: Any) -> Any:
            try:
                return await checked(**kwargs)
            except PolicyDenied as exc:
                raise ToolError(denial_text(exc)) from exc

        guarded = guarded_async
    else:

        def guarded_sync(**kwargs: Any) -> Any:
            try:
                return checked(**kwargs)
            except PolicyDenied as exc:
                raise ToolError(denial_text(exc)) from exc

        guarded = guarded_sync
    setattr(guarded, _GUARDED, True)
    setattr(guarded, "__wrapped__", checked)  # noqa: B010 - typed as a function
    tool.fn = guarded


def guard_server(  # noqa: PLR0913 - keyword-only options
    server: MCPServer[Any],
    *,
    policy: PolicyPush | PolicyFor | None = None,
    scope: Scope | None = None,
    session_id: Callable[[ServerRequestContext[Any, Any]], str] | None = None,
    elicit: bool = True,
    approval_timeout: float | None = 300.0,
) -> CapscopeMiddleware:
    """
    Guard every tool of *server*: each call is checked by capscope where
    its body runs, as a worker of its client session (see
    `CapscopeMiddleware` for the options).

    A tool function already decorated with `requires_tool` or
    `needs_approval` keeps its spec; any other is guarded as
    `requires_tool(<its MCP name>)`, so no tool runs unchecked (tools
    registered later are guarded on their first call). The tool list the
    client sees (names, descriptions, input and output schemas) does not
    change. A refused call returns an MCP tool error (`isError: true`)
    whose text is `denial_text`.

    Returns:
        The `CapscopeMiddleware` appended to `server.middleware`.

    Examples:
        >>> from mcp.server.mcpserver import MCPServer
        >>> from capscope.contrib.mcp import guard_server
        >>> server = MCPServer("demo")
        >>> @server.tool()
        ... def echo(text: str) -> str:
        ...     return text
        >>> guard_server(server).elicit
        True
    """
    middleware = CapscopeMiddleware(
        policy=policy,
        scope=scope,
        session_id=session_id,
        elicit=elicit,
        approval_timeout=approval_timeout,
    )
    manager = server._tool_manager  # noqa: SLF001 - no public accessor
    for tool in manager.list_tools():
        _guard_tool(tool)

    def before_call(ctx: ServerRequestContext[Any, Any]) -> None:
        name = (ctx.params or {}).get("name")
        if isinstance(name, str):
            tool = manager.get_tool(name)
            if tool is not None:
                _guard_tool(tool)

    middleware.before_call = before_call
    server.middleware.append(middleware)
    return middleware


# -- client side -----------------------------------------------------------------

_EXTRA: contextvars.ContextVar[tuple[tuple[Any, ...], dict[str, Any]]] = (
    contextvars.ContextVar("capscope_mcp_call_extra")
)


class GuardedSession:
    """
    An MCP client session (a `mcp.ClientSession` or `mcp.Client`) whose
    `call_tool` is checked by capscope first; `guard_client` makes one.
    Everything else is the wrapped session's.

    Each call is checked against the caller's live scope as the capscope
    tool `mcp__<server>__<tool>`, with the call's arguments as the
    arguments rules see (`tools=` gives a tool a side effect, a
    capability, path arguments or `needs_approval`). A refused call never
    reaches the server: `call_tool` returns `denied_result` (or, with
    `raise_denied=True`, raises the `PolicyDenied`). The arguments are
    copied before the check, so what was checked (and approved) is what is
    sent.

    Examples:
        >>> from capscope.contrib.mcp import GuardedSession
        >>> GuardedSession(object(), "github").tool_name("create_issue")
        'mcp__github__create_issue'
    """

    def __init__(
        self,
        session: Any,
        server: str,
        *,
        tools: Mapping[str, Mapping[str, Any]] | None = None,
        raise_denied: bool = False,
    ) -> None:
        _check_server_name(server)
        self._session = session
        self._server = server
        self._specs = {
            name: dict(spec) for name, spec in (tools or {}).items()
        }
        self._raise_denied = raise_denied
        self._forwarders: dict[str, Callable[..., Awaitable[Any]]] = {}

    @property
    def session(self) -> Any:
        """The wrapped session: calls made on it directly are not checked."""
        return self._session

    @property
    def server(self) -> str:
        """The server name in the capscope tool names."""
        return self._server

    def tool_name(self, tool: str) -> str:
        """The capscope name of the MCP tool *tool*."""
        return mcp_tool_name(self._server, tool)

    def _forwarder(self, tool: str) -> Callable[..., Awaitable[Any]]:
        forward = self._forwarders.get(tool)
        if forward is not None:
            return forward
        if not isinstance(tool, str) or not tool:
            # The model names the tool: a bad name is its refusal, not a
            # crash of the agent.
            msg = f"{tool!r} is not an MCP tool name"
            raise ToolDenied(msg)
        if len(self._forwarders) >= _FORWARDERS:
            # Names come from the model: never an unbounded cache.
            self._forwarders.clear()
        session = self._session

        async def call(**arguments: Any) -> Any:
            args, kwargs = _EXTRA.get()
            return await session.call_tool(tool, arguments, *args, **kwargs)

        spec = dict(self._specs.get(tool, {}))
        name = self.tool_name(tool)
        if spec.pop("needs_approval", False):
            checked = _needs_approval(name, **spec)(call)
        else:
            checked = requires_tool(name, **spec)(call)
        self._forwarders[tool] = checked
        return checked

    async def call_tool(
        self,
        name: str,
        arguments: Mapping[str, Any] | None = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        """
        `call_tool` of the wrapped session, after capscope allowed it (the
        extra arguments are passed on unchanged).

        Raises:
            PolicyDenied: only with `raise_denied=True`.
        """
        frozen = copy.deepcopy(dict(arguments or {}))
        token = _EXTRA.set((args, kwargs))
        try:
            forward = self._forwarder(name)
            return await forward(**frozen)
        except PolicyDenied as exc:
            if self._raise_denied:
                raise
            return denied_result(exc)
        finally:
            _EXTRA.reset(token)

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self._session, attribute)


def guard_client(
    session: Any,
    server: str,
    *,
    tools: Mapping[str, Mapping[str, Any]] | None = None,
    raise_denied: bool = False,
) -> GuardedSession:
    """
    Wrap an MCP client session so every `call_tool` is checked against
    the caller's live scope as `mcp__<server>__<tool>` (see
    `GuardedSession`). Hand the result, not the raw session, to the agent.

    Examples:
        >>> from capscope.contrib.mcp import guard_client
        >>> guard_client(object(), "fs", tools={"write": {"paths": ["path"]}}).server
        'fs'
    """
    return GuardedSession(
        session, server, tools=tools, raise_denied=raise_denied
    )
