"""
What plugin authors and integrators need beyond the everyday API.

Users never need these names; a third-party stack, an event-loop
integration or a type annotation might. (trio keeps the same split with
`trio.lowlevel`.)

Examples:
    >>> import capscope as cs
    >>> cs.lowlevel.ENTRY_POINT_GROUP
    'capscope.stacks'
"""

from __future__ import annotations

from ._ambient import Codec, FrameToken
from ._registry import ENTRY_POINT_GROUP, StackRegistry
from ._tasks import ScopedAsyncIterator, ScopedCoroutine, ScopedIterator

__all__ = [
    "ENTRY_POINT_GROUP",
    "Codec",
    "FrameToken",
    "ScopedAsyncIterator",
    "ScopedCoroutine",
    "ScopedIterator",
    "StackRegistry",
]

for _name in (
    "Codec",
    "StackRegistry",
    "ScopedAsyncIterator",
    "ScopedCoroutine",
    "ScopedIterator",
):
    globals()[_name].__module__ = __name__
del _name
