"""
Calling an approval handler or a consent hook within a time limit.

Shared by tool approvals (`_enforce`) and command preflights (`_commands`),
so both treat handlers alike: a sync call of a sync handler runs in this
thread, or, with a timeout, in a daemon thread under this scope (a late
answer is abandoned); an async call awaits an async handler and runs a
sync one in a thread (asyncio or trio), within the timeout. Running out
of time raises `TimeoutError`; a handler's own error propagates; callers
turn both into refusals.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
from collections.abc import Callable
from typing import Any

from ._scope import Scope

__all__ = ["NOT_ANSWERED", "call_async", "call_sync", "in_trio"]

#: What a sync caller gets from an async handler or an awaitable answer: it
#: cannot wait for it, so it is not an answer (and never a grant).
NOT_ANSWERED = object()


def in_trio() -> bool:
    """Whether this code runs in a trio task."""
    trio = sys.modules.get("trio")
    if trio is None:
        return False
    try:
        trio.lowlevel.current_task()
    except RuntimeError:
        return False
    return True


def _close(awaitable: object) -> None:
    """Close an awaitable no one will await (no 'never awaited' warning)."""
    closer = getattr(awaitable, "close", None)
    if closer is not None:
        closer()


def call_sync(
    fn: Callable[..., Any], *args: Any, seconds: float | None
) -> Any:
    """
    *fn(*args)* for a synchronous caller; `NOT_ANSWERED` for an async *fn*
    or an awaitable result (closed, never left pending).
    """
    if inspect.iscoroutinefunction(fn):
        return NOT_ANSWERED
    if seconds is None:
        answer = fn(*args)
    else:
        outcome: list[tuple[bool, Any]] = []
        done = threading.Event()

        def ask() -> None:
            try:
                outcome.append((True, fn(*args)))
            except Exception as exc:  # noqa: BLE001 - handed to the caller
                outcome.append((False, exc))
            finally:
                done.set()

        threading.Thread(
            target=Scope.current().bind(ask),
            name="capscope-approval",
            daemon=True,
        ).start()
        if not done.wait(seconds):
            msg = f"no answer within {seconds:g} s"
            raise TimeoutError(msg)
        ok, answer = outcome[0]
        if not ok:
            raise answer
    if inspect.isawaitable(answer):
        _close(answer)
        return NOT_ANSWERED
    return answer


async def call_async(
    fn: Callable[..., Any], *args: Any, seconds: float | None
) -> Any:
    """
    *fn(*args)* for an async caller: awaited when *fn* is async, else run
    in a thread under this scope; an awaitable result is awaited too; the
    whole within *seconds*.
    """

    async def run() -> Any:
        if inspect.iscoroutinefunction(fn):
            answer = await fn(*args)
        elif in_trio():
            import trio

            answer = await trio.to_thread.run_sync(
                Scope.current().bind(fn), *args, abandon_on_cancel=True
            )
        else:
            from ._tasks import to_thread

            answer = await to_thread(fn, *args)
        if inspect.isawaitable(answer):
            answer = await answer
        return answer

    if seconds is None:
        return await run()
    if in_trio():
        import trio

        try:
            with trio.fail_after(seconds):
                return await run()
        except trio.TooSlowError:
            msg = f"no answer within {seconds:g} s"
            raise TimeoutError(msg) from None
    async with asyncio.timeout(seconds):
        return await run()
