"""
Lines mypy must accept: a decorated callable keeps its type.

Checked by `tests/test_decorators.py::TestTyping`; never run or collected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING

from capscope._decorators import needs_approval, requires_tool, tool_spec
from capscope.policies import Level

if TYPE_CHECKING:
    from capscope import ToolSpec


@requires_tool("math.add", side_effect=Level.NONE)
def add(a: int, b: int = 2) -> int:
    return a + b


@needs_approval(reason="deletes files", paths=["path"])
def delete(path: str, *, force: bool = False) -> bool:
    return force


@needs_approval("fs.move", side_effect="workspace_write")
def move(src: str, dst: str) -> None:
    pass


@requires_tool("net.fetch", capability="net.get", side_effect="network")
async def fetch(url: str, *, retries: int = 1) -> bytes:
    return url.encode()


@requires_tool("fs.walk", paths=["root"])
def walk(root: str) -> Iterator[str]:
    yield root


@requires_tool("fs.watch", paths=["root"])
async def watch(root: str) -> AsyncIterator[str]:
    yield root


class Toolkit:
    @requires_tool("kit.method")
    def method(self, x: int) -> str:
        return str(x)

    @requires_tool("kit.cm_below")
    @classmethod
    def cm_below(cls, x: int) -> str:
        return str(x)

    @classmethod
    @requires_tool("kit.cm_above")
    def cm_above(cls, x: int) -> str:
        return str(x)

    @requires_tool("kit.sm_below")
    @staticmethod
    def sm_below(x: int) -> str:
        return str(x)

    @staticmethod
    @requires_tool("kit.sm_above")
    def sm_above(x: int) -> str:
        return str(x)

    @requires_tool("kit.amethod")
    async def amethod(self, x: int) -> int:
        return x


total: int = add(1, 2)
total = add(1, b=3)
forced: bool = delete("notes.txt", force=True)
move("a", "b")
walked: list[str] = list(walk("/"))


async def use() -> None:
    data: bytes = await fetch("https://example.org", retries=2)
    seen: list[str] = [item async for item in watch("/")]
    doubled: int = await Toolkit().amethod(2)
    del data, seen, doubled


kit = Toolkit()
texts: list[str] = [
    kit.method(1),
    Toolkit.method(kit, 1),
    Toolkit.cm_below(1),
    kit.cm_below(1),
    Toolkit.cm_above(1),
    kit.cm_above(1),
    Toolkit.sm_below(1),
    kit.sm_below(1),
    Toolkit.sm_above(1),
    kit.sm_above(1),
]
spec: ToolSpec = tool_spec(add)
method_spec: ToolSpec = tool_spec(kit.method)
