"""The approval handler both consoles are: a queue that a person answers."""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Generator
from typing import Any, Self

from .._enforce import ApprovalDecision, ApprovalRequest
from ._queue import Answer, ApprovalQueue, PendingApproval

__all__ = ["Asking", "QueuedApprover"]


class Asking:
    """
    The answer to come, as an awaitable that is not a coroutine: capscope
    calls a handler it does not see as `async def` in a worker thread
    (under trio, `trio.to_thread.run_sync`, which refuses a coroutine but
    hands back any other value) and awaits what it returns in the task.
    """

    __slots__ = ("_make",)

    def __init__(
        self, make: Callable[[], Coroutine[Any, Any, ApprovalDecision]]
    ) -> None:
        self._make = make

    def __await__(self) -> Generator[Any, None, ApprovalDecision]:
        return self._make().__await__()


class QueuedApprover:
    """
    An approval handler that files each request in an `ApprovalQueue` and
    waits for a person's answer. Subclasses give the person a way to
    answer (a terminal, a web page).

    Calling it returns an awaitable (not a coroutine), so it serves sync
    and async tools alike, under asyncio and trio: capscope awaits the
    answer in an async tool's task, and on a private event loop for a
    sync tool. No thread waits while a person thinks, so many workers can
    wait at once. Every pending request waits in one queue, whichever
    loop or thread asked.
    """

    #: Named in the reasons of the decisions it gives.
    who = "the console"

    def __init__(
        self, *, timeout: float | None = 120.0, max_pending: int = 100
    ) -> None:
        self.queue = ApprovalQueue(timeout=timeout, max_pending=max_pending)

    def __call__(self, request: ApprovalRequest) -> Asking:
        """Ask a person about *request* (capscope calls this as the handler)."""
        return Asking(lambda: self.queue.ask(request, self.who))

    def pending(self) -> list[PendingApproval]:
        """The requests waiting for an answer, oldest first."""
        return self.queue.pending()

    def answer(
        self,
        request_id: str,
        answer: Answer | str,
        *,
        reason: str | None = None,
    ) -> PendingApproval:
        """Answer a pending request from code (see `ApprovalQueue.answer`)."""
        return self.queue.answer(
            request_id, answer, who=self.who, reason=reason
        )

    def close(self) -> None:
        """Deny every pending request and every later one."""
        self.queue.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
