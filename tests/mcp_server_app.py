"""
A small stdio MCP server for tests/test_contrib_mcp.py: three tools whose
bodies append their name to the file named by CAPSCOPE_MCP_MARKER, so a
test can tell whether a body ran. Run it with `python mcp_server_app.py`.
"""

from __future__ import annotations

import os
from pathlib import Path

from mcp.server.mcpserver import MCPServer

server = MCPServer("files", instructions="A test server with three tools.")


def _ran(tool: str) -> None:
    marker = os.environ.get("CAPSCOPE_MCP_MARKER")
    if marker:
        with Path(marker).open("a", encoding="utf-8") as out:
            out.write(f"{tool}\n")


@server.tool()
def echo(text: str) -> str:
    """Say the text back."""
    _ran("echo")
    return f"echo: {text}"


@server.tool()
async def delete_file(path: str, force: bool = False) -> str:
    """Delete a file (not really)."""
    _ran("delete_file")
    return f"deleted {path}"


@server.tool()
def deploy(env: str, version: str = "latest") -> str:
    """Deploy a version to an environment."""
    _ran("deploy")
    return f"deployed {version} to {env}"


if __name__ == "__main__":
    server.run()
