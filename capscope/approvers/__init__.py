"""
Approval handlers a person answers: `TerminalApprover` (a prompt on the
controlling terminal) and `WebApprover` (a web page; the `console` extra,
`pip install 'capscope[console]'`).

Both are ordinary approval handlers (install them as a
`ToolApprovalPolicy`'s `handler`), serve sync and async tools alike, and
fail closed: every request waits in one bounded queue (`ApprovalQueue`)
under an unguessable id, is answered at most once, and is denied when
nobody answers in time, when the queue is full, or when the console
closes. A person answers a request once, always for the asking worker
(`ApprovalDecision.allow(remember="scope")`: capscope remembers it for
the same tool and arguments in that worker's approval frame), or denies
it.

Examples:
    >>> import asyncio
    >>> import capscope as cs
    >>> from capscope.approvers import WebApprover
    >>> from capscope.policies import CapabilityPolicy, ToolApprovalPolicy
    >>> @cs.needs_approval("deploy")
    ... async def deploy(env):
    ...     return f"deployed {env}"
    >>> approver = WebApprover(timeout=10)
    >>> async def main():
    ...     policy = ToolApprovalPolicy(handler=approver, timeout=None)
    ...     with cs.using(execution=CapabilityPolicy.unrestricted(), approval=policy):
    ...         call = asyncio.create_task(deploy("staging"))
    ...         while not approver.pending():  # a person looks at the page
    ...             await asyncio.sleep(0)
    ...         approver.answer(approver.pending()[0].id, "once")
    ...         return await call
    >>> asyncio.run(main())
    'deployed staging'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._base import QueuedApprover
from ._queue import (
    AlreadyAnswered,
    Answer,
    ApprovalQueue,
    PendingApproval,
    UnknownRequest,
    describe,
    printable,
)
from .terminal import TerminalApprover

if TYPE_CHECKING:
    from .web import Served, WebApprover, serve, serve_in_background

__all__ = [
    "AlreadyAnswered",
    "Answer",
    "ApprovalQueue",
    "PendingApproval",
    "QueuedApprover",
    "Served",
    "TerminalApprover",
    "UnknownRequest",
    "WebApprover",
    "describe",
    "printable",
    "serve",
    "serve_in_background",
]

#: Names that need the `console` extra: imported on first use.
_WEB = frozenset({"Served", "WebApprover", "serve", "serve_in_background"})


def __getattr__(name: str) -> Any:
    if name in _WEB:
        try:
            from . import web
        except ImportError as exc:
            msg = (
                f"capscope.approvers.{name} needs the console extra: "
                "pip install 'capscope[console]'"
            )
            raise ImportError(msg) from exc
        return getattr(web, name)
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
