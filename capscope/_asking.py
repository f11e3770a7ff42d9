"""
Calling an approval handler or a consent hook within a time limit.

Shared by tool approvals (`_enforce`) and command preflights (`_commands`),
so both treat handlers alike, and one handler serves sync and async code:
a sync call of a sync handler runs in this thread, or, with a timeout, in
a daemon thread under this scope (a late answer is abandoned); a sync call
of an async handler (or of a sync one that returns an awaitable) runs it
on a private event loop in a daemon thread under this scope, within the
timeout; an async call awaits an async handler and runs a sync one in a
thread (asyncio or trio), within the timeout. Running out of time raises
`TimeoutError`; a handler's own error propagates; callers turn both into
refusals.
"""

from __future__ import annotations

import asyncio
import inspect
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from ._scope import Scope

__all__ = ["NOT_ANSWERED", "call_async", "call_sync", "in_trio"]

#: What a caller records for a hook that failed or ran out of time: not an
#: answer (and never a grant).
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


def call_sync(
    fn: Callable[..., Any], *args: Any, seconds: float | None
) -> Any:
    """
    *fn(*args)* for a synchronous caller. An async *fn*, or an awaitable
    it returns, is awaited on a private event loop (`_on_private_loop`);
    *seconds* bounds the whole, both steps together.
    """
    if inspect.iscoroutinefunction(fn):
        return _on_private_loop(lambda: fn(*args), seconds)
    started = time.monotonic()
    if seconds is None:
        answer = fn(*args)
    else:
        answer = _in_thread(lambda: fn(*args), seconds)
    if inspect.isawaitable(answer):
        left = (
            None if seconds is None else seconds - (time.monotonic() - started)
        )
        if left is not None and left <= 0:
            _close(answer)
            msg = f"no answer within {seconds:g} s"
            raise TimeoutError(msg)
        return _on_private_loop(lambda: answer, left)
    return answer


def _close(awaitable: object) -> None:
    """Close an awaitable no one will await (no 'never awaited' warning)."""
    closer = getattr(awaitable, "close", None)
    if closer is not None:
        closer()


def _in_thread(run: Callable[[], Any], seconds: float | None) -> Any:
    """
    *run()* in a daemon thread under this scope, waited for at most
    *seconds* (then abandoned: `TimeoutError`); its error is raised here,
    and anything else it raises (a `CancelledError`, a `SystemExit`) as a
    `RuntimeError`, so that callers, which refuse on an error, refuse.
    """
    outcome: list[tuple[bool, Any]] = []
    done = threading.Event()

    def target() -> None:
        try:
            outcome.append((True, run()))
        except Exception as exc:  # noqa: BLE001 - handed to the caller
            outcome.append((False, exc))
        except BaseException as exc:  # noqa: BLE001 - not the caller's to stop
            outcome.append(
                (False, RuntimeError(f"the handler raised {exc!r}"))
            )
        finally:
            done.set()

    threading.Thread(
        target=Scope.current().bind(target),
        name="capscope-approval",
        daemon=True,
    ).start()
    if not done.wait(seconds):
        msg = f"no answer within {seconds:g} s"
        raise TimeoutError(msg)
    ok, answer = outcome[0]
    if not ok:
        raise answer
    return answer


def _on_private_loop(
    make: Callable[[], Awaitable[Any]], seconds: float | None
) -> Any:
    """
    Await what *make()* returns on an event loop of its own, in a daemon
    thread under this scope (so a sync caller inside a running loop never
    blocks on that loop), within *seconds*: the awaitable is cancelled when
    the time is up, and abandoned if it will not stop.
    """

    async def main() -> Any:
        async with asyncio.timeout(seconds):
            return await make()

    return _in_thread(lambda: asyncio.run(main()), seconds)


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
