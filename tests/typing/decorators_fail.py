"""
Lines mypy must reject, each marked with the error code it must report:
a decorated callable keeps its type, so wrong calls stay wrong.

Checked by `tests/test_decorators.py::TestTyping`; never run or collected.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from capscope._decorators import needs_approval, requires_tool


@requires_tool("math.add")
def add(a: int, b: int = 2) -> int:
    return a + b


@needs_approval(reason="deletes files")
def delete(path: str, *, force: bool = False) -> bool:
    return force


@requires_tool("net.fetch")
async def fetch(url: str) -> bytes:
    return url.encode()


@requires_tool("fs.walk")
def walk(root: str) -> Iterator[str]:
    yield root


@requires_tool("fs.watch")
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


add("1", 2)  # E: arg-type
add(1, 2, 3)  # E: call-arg
add(1, c=3)  # E: call-arg
text: str = add(1, 2)  # E: assignment
delete("notes.txt", True)  # E: call-arg
delete("notes.txt", force="yes")  # E: arg-type
walked: list[int] = list(walk("/"))  # E: arg-type


async def use() -> None:
    await fetch(b"https://example.org")  # E: arg-type
    size: int = await fetch("https://example.org")  # E: assignment
    del size
    async for item in watch(1):  # E: arg-type
        del item


kit = Toolkit()
kit.method("1")  # E: arg-type
Toolkit.cm_below("1")  # E: arg-type
kit.cm_above("1")  # E: arg-type
Toolkit.sm_below("1")  # E: arg-type
kit.sm_above("1")  # E: arg-type
number: int = kit.method(1)  # E: assignment


@requires_tool  # E: arg-type
def bare() -> None:
    pass
