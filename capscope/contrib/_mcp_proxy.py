"""
The gateway behind `capscope mcp-proxy`: a policy file in front of any
stdio MCP server.

It starts the server as a child process and talks to it as an MCP client;
on its own stdin and stdout it serves an MCP server exposing the child's
tools unchanged (names, descriptions, input and output schemas), and
checks each call under the policy file before forwarding it. The capscope
name of the child's tool `t` is `mcp__<name>__t`, `<name>` being
`--name` (by default the name the child reports, with anything but
letters, digits and `-` turned into `-`). A refused call is answered with
an MCP tool error (`isError: true`) and never reaches the child. An ask
goes to the connected client's user through MCP elicitation when the
client supports it, and is refused otherwise. Every decision is attributed
to the client's session (`worker_id`): stdio carries one client, so the
gateway mints one session id and reports it on stderr.

Only tools pass through, and only by the names the child lists (any
other name is refused without reaching it): the child's resources,
prompts, and its own server-to-client requests (sampling, elicitation)
do not.

Examples:
    >>> from capscope.contrib._mcp_proxy import server_name
    >>> server_name("My Files 2.0")
    'My-Files-2-0'
"""

from __future__ import annotations

import os
import re
import sys
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import mcp_types as types
from mcp import Client, StdioServerParameters
from mcp.server import Server
from mcp.server.context import ServerRequestContext
from mcp.server.stdio import stdio_server

from .. import PolicyDenied, Scope, requires_tool
from .mcp import CapscopeMiddleware, denied_result, mcp_tool_name

__all__ = ["serve_proxy", "server_name"]

#: How many tool names' forwarders are kept at once.
_FORWARDERS = 1024


def server_name(reported: str | None) -> str:
    """
    The server name tool names are built with, from the one a server
    reports: runs of anything but ASCII letters, digits and `-` become one
    `-`; nothing left gives `server`.

    Examples:
        >>> from capscope.contrib._mcp_proxy import server_name
        >>> server_name("files"), server_name("a__b"), server_name(None)
        ('files', 'a-b', 'server')
    """
    name = re.sub(r"[^A-Za-z0-9-]+", "-", reported or "").strip("-")
    return name or "server"


class _Forwarders:
    """One capscope-checked forwarding function per tool name."""

    def __init__(self, client: Client, name: str) -> None:
        self.client = client
        self.name = name
        self._made: dict[str, Callable[..., Awaitable[Any]]] = {}

    def __getitem__(self, tool: str) -> Callable[..., Awaitable[Any]]:
        forward = self._made.get(tool)
        if forward is None:
            if len(self._made) >= _FORWARDERS:
                # Names come from the client: never an unbounded cache.
                self._made.clear()
            client = self.client

            async def call(**arguments: Any) -> Any:
                return await client.call_tool(tool, arguments)

            forward = requires_tool(mcp_tool_name(self.name, tool))(call)
            self._made[tool] = forward
        return forward


def _unlisted(tool: str) -> types.CallToolResult:
    text = (
        f"capscope denied {tool!r}: the server lists no tool by this name "
        "(only listed names are forwarded)"
    )
    return types.CallToolResult(
        content=[types.TextContent(type="text", text=text)], is_error=True
    )


async def serve_proxy(  # noqa: PLR0913 - keyword-only options
    command: Sequence[str],
    *,
    scope: Scope,
    name: str | None = None,
    elicit: bool = True,
    approval_timeout: float | None = 300.0,
    stderr: TextIO | None = None,
) -> None:
    """
    Serve the tools of the stdio MCP server started by *command* on this
    process's stdin and stdout, each call checked under *scope* (a
    `cs.load_policy_files` scope). Returns when the client disconnects.

    Examples:
        >>> from capscope.contrib._mcp_proxy import serve_proxy
        >>> callable(serve_proxy)
        True
    """
    err = sys.stderr if stderr is None else stderr
    params = StdioServerParameters(
        command=command[0],
        args=list(command[1:]),
        env=dict(os.environ),
        cwd=Path.cwd(),
    )
    async with Client(params) as client:
        info = client.server_info
        reported = None if info is None else info.name
        name = server_name(reported) if name is None else name
        mcp_tool_name(name, "x")  # a bad --name fails here, before serving
        forwarders = _Forwarders(client, name)
        session_id = f"mcp-proxy-{uuid.uuid4().hex[:16]}"

        async def list_tools(
            ctx: ServerRequestContext[Any, Any],  # noqa: ARG001 - the SDK's signature
            params: types.PaginatedRequestParams | None,
        ) -> types.ListToolsResult:
            cursor = None if params is None else params.cursor
            listed = await client.list_tools(cursor=cursor)
            return types.ListToolsResult(
                tools=listed.tools, next_cursor=listed.next_cursor
            )

        listed: set[str] = set()

        async def lists(tool: str) -> bool:
            """Whether the child lists *tool* (asked again on a miss)."""
            if tool not in listed:
                listed.clear()
                cursor = None
                while True:
                    page = await client.list_tools(cursor=cursor)
                    listed.update(t.name for t in page.tools)
                    cursor = page.next_cursor
                    if not cursor:
                        break
            return tool in listed

        async def call_tool(
            ctx: ServerRequestContext[Any, Any],  # noqa: ARG001 - the SDK's signature
            params: types.CallToolRequestParams,
        ) -> types.CallToolResult:
            # Only names the child lists are forwarded: a server that
            # matched names loosely ("ECHO", "echo ") would otherwise run a
            # tool under a name no rule was written for.
            if not await lists(params.name):
                return _unlisted(params.name)
            arguments = dict(params.arguments or {})
            try:
                result: types.CallToolResult = await forwarders[params.name](
                    **arguments
                )
            except PolicyDenied as exc:
                return denied_result(exc)
            return result

        server: Server[Any] = Server(
            name,
            version=getattr(info, "version", "") or "",
            instructions=client.instructions,
            on_list_tools=list_tools,
            on_call_tool=call_tool,
        )
        server.middleware.append(
            CapscopeMiddleware(
                scope=scope,
                session_id=lambda _: session_id,
                elicit=elicit,
                approval_timeout=approval_timeout,
            )
        )
        print(
            f"capscope mcp-proxy: serving {reported or name!r} as "
            f"mcp__{name}__<tool>, session {session_id}",
            file=err,
            flush=True,
        )
        async with stdio_server() as (read_stream, write_stream):
            await server.run(
                read_stream,
                write_stream,
                server.create_initialization_options(),
            )
