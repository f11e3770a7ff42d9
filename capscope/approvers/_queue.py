"""
The queue both consoles share: pending approval requests, each with an
unguessable id, answered at most once, denied when they time out, when
the queue is full, or when the console closes.

The queue is the source of truth: an answer, a timeout, a withdrawal (the
caller gave up) and the console closing all *finish* an entry under one
lock, and only the first of them counts. A waiting handler reads its
decision from the entry's future; whoever else tried later is told the
entry is finished (`AlreadyAnswered`) or unknown (`UnknownRequest`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import enum
import itertools
import json
import math
import secrets
import threading
import time
import unicodedata
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import attrs

from .._asking import in_trio
from .._enforce import ApprovalDecision, ApprovalRequest

__all__ = [
    "AlreadyAnswered",
    "Answer",
    "ApprovalQueue",
    "PendingApproval",
    "UnknownRequest",
    "describe",
    "printable",
]

#: How many finished ids are remembered, to tell "already answered" (409)
#: from "never existed" (404).
_FINISHED_KEPT = 4096
_BYTE, _BMP = 0xFF, 0xFFFF
#: Escapes written the short way.
_SHORT = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}
#: The longest argument text shown; the rest is cut, saying how much.
_TEXT_LIMIT = 2000


class Answer(enum.StrEnum):
    """
    What a person can answer: allow this call once, allow it for the rest
    of the asking worker's approval frame (`ApprovalDecision.allow(
    remember="scope")`: the same tool with the same arguments), or deny it.

    Examples:
        >>> from capscope.approvers import Answer
        >>> Answer("always").decision("the terminal").remember.value
        'scope'
        >>> Answer.DENY.decision("the terminal", "not now").reason
        'not now'
    """

    ONCE = "once"
    ALWAYS = "always"
    DENY = "deny"

    def decision(
        self, who: str, reason: str | None = None
    ) -> ApprovalDecision:
        """The `ApprovalDecision` this answer gives, saying *who* gave it."""
        if self is Answer.ONCE:
            return ApprovalDecision.allow(
                reason=reason or f"approved once at {who}"
            )
        if self is Answer.ALWAYS:
            return ApprovalDecision.allow(
                remember="scope",
                reason=reason or f"approved for this worker at {who}",
            )
        return ApprovalDecision.deny(reason or f"denied at {who}")


class UnknownRequest(LookupError):
    """No pending approval has this id (it never existed, or is long gone)."""


class AlreadyAnswered(LookupError):
    """The approval with this id was answered, timed out or withdrawn."""

    def __init__(self, message: str, state: str) -> None:
        super().__init__(message)
        #: how it finished: "answered", "timed out", "withdrawn", "closed"
        self.state = state


def printable(text: str, limit: int | None = _TEXT_LIMIT) -> str:
    r"""
    *text* with every control, format (bidi overrides, zero-width) and
    unassigned character written as an escape, so that what a console
    shows is what the string holds: a terminal escape sequence cannot move
    the cursor or recolour the screen, and a right-to-left override cannot
    reorder a command line. Longer than *limit*, it is cut, saying so.

    Examples:
        >>> from capscope.approvers import printable
        >>> print(printable("rm -rf /\x1b[2K\u202e"))
        rm -rf /\x1b[2K\u202e
        >>> printable("x" * 30, limit=10)
        'xxxxxxxxxx… (20 more characters)'
    """
    out = []
    for char in text:
        if unicodedata.category(char)[0] in "CZ" and char != " ":
            code = ord(char)
            if char in _SHORT:
                out.append(_SHORT[char])
            elif code <= _BYTE:
                out.append(f"\\x{code:02x}")
            elif code <= _BMP:
                out.append(f"\\u{code:04x}")
            else:
                out.append(f"\\U{code:08x}")
        else:
            out.append(char)
    shown = "".join(out)
    if limit is not None and len(shown) > limit:
        rest = len(shown) - limit
        shown = f"{shown[:limit]}… ({rest} more characters)"
    return shown


def _as_text(value: object) -> str:
    """An argument value as text: JSON where it is JSON, else its repr."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, ensure_ascii=False, sort_keys=True)
    except (TypeError, ValueError):
        try:
            return repr(value)
        except Exception:  # noqa: BLE001 - a repr that fails is shown as such
            return f"<{type(value).__name__} whose repr failed>"


def _command(arguments: Mapping[str, Any]) -> dict[str, Any] | None:
    """A command request's line, labels and argv; `None` for a tool."""
    if set(arguments) != {"command", "line", "labels"}:
        return None
    line, labels, command = (
        arguments["line"],
        arguments["labels"],
        arguments["command"],
    )
    if not isinstance(line, str) or not isinstance(labels, list | tuple):
        return None
    return {
        "line": printable(line),
        "labels": [printable(str(label)) for label in labels],
        "argv": [
            [printable(str(word)) for word in segment]
            for segment in (
                command if isinstance(command, list | tuple) else []
            )
            if isinstance(segment, list | tuple)
        ],
    }


def describe(request: ApprovalRequest) -> dict[str, Any]:
    """
    What a console shows of *request*, as JSON-able data with every
    string made `printable`: the tool, the reason, the rule that asked,
    the attribution (`run_id`, `workflow_id`, `stage_id`, `worker_id`,
    `attributes`), the arguments as `[name, text]` pairs, and for a
    command its raw `line`, `labels` and `argv`.

    Examples:
        >>> import capscope as cs
        >>> from capscope.approvers import describe
        >>> from capscope.policies import RuntimeContextOverlay
        >>> request = cs.ApprovalRequest(
        ...     "deploy", {"env": "prod"}, "ships code", None,
        ...     RuntimeContextOverlay(run_id="r-1", worker_id="w-7"),
        ... )
        >>> view = describe(request)
        >>> view["tool"], view["worker_id"], view["arguments"]
        ('deploy', 'w-7', [['env', 'prod']])
    """
    overlay = request.overlay
    rule = request.rule
    return {
        "tool": printable(str(request.tool)),
        "reason": printable(str(request.reason)),
        "rule": None if rule is None else printable(repr(rule), 500),
        "run_id": _opt(overlay.run_id),
        "workflow_id": _opt(overlay.workflow_id),
        "stage_id": _opt(overlay.stage_id),
        "worker_id": _opt(overlay.worker_id),
        "attributes": {
            printable(str(k), 200): printable(str(v), 500)
            for k, v in overlay.attributes.items()
        },
        "command": _command(request.arguments),
        "arguments": [
            [printable(str(name), 200), printable(_as_text(value))]
            for name, value in request.arguments.items()
        ],
    }


def _opt(value: str | None) -> str | None:
    return None if value is None else printable(value, 200)


@attrs.frozen(eq=False)
class PendingApproval:
    """
    One request waiting for an answer.

    Attributes:
        id: unguessable (128 random bits, URL-safe): the handle an answer
            names.
        request: what the handler was asked.
        number: its place in the queue's order (1, 2, ...).
        asked_at: when it was asked (`time.time()`).
        expires_at: when it times out (`time.time()` scale), or `None`.
    """

    id: str
    request: ApprovalRequest
    number: int
    asked_at: float
    expires_at: float | None
    _deadline: float | None = attrs.field(alias="deadline")
    _future: concurrent.futures.Future[ApprovalDecision] = attrs.field(
        alias="future", repr=False
    )

    def view(self) -> dict[str, Any]:
        """`describe(request)` with the id, number and times."""
        return {
            "id": self.id,
            "number": self.number,
            "asked_at": self.asked_at,
            "expires_at": self.expires_at,
            **describe(self.request),
        }


class ApprovalQueue:
    """
    Pending approval requests, safe to use from any thread and event loop.

    `ask()` (async) files a request and waits for its decision; `answer()`
    gives one, at most once per id. A request that is not answered within
    *timeout* seconds (`None`: no limit) is denied; one filed while
    *max_pending* are waiting is denied at once (fail closed); `close()`
    denies every pending request and every later one. `watch(fn)` calls
    *fn()* after every change, from the thread that made it (keep it
    quick).

    Examples:
        >>> import asyncio
        >>> import capscope as cs
        >>> from capscope.approvers import ApprovalQueue
        >>> queue = ApprovalQueue(timeout=5)
        >>> request = cs.ApprovalRequest("deploy", {}, "r", None, cs.current_overlay())
        >>> async def main():
        ...     asking = asyncio.create_task(queue.ask(request, "the docs"))
        ...     [entry] = await queue.await_pending(1, timeout=5)
        ...     queue.answer(entry.id, "once")
        ...     return await asking
        >>> asyncio.run(main()).allowed
        True
    """

    def __init__(
        self, *, timeout: float | None = 120.0, max_pending: int = 100
    ) -> None:
        if timeout is not None and not (
            isinstance(timeout, int | float)
            and math.isfinite(timeout)
            and timeout > 0
        ):
            msg = f"timeout is a positive number of seconds or None, not {timeout!r}"
            raise ValueError(msg)
        if not isinstance(max_pending, int) or max_pending < 1:
            msg = f"max_pending is a positive int, not {max_pending!r}"
            raise ValueError(msg)
        self.timeout = timeout
        self.max_pending = max_pending
        self._lock = threading.Lock()
        self._pending: dict[str, PendingApproval] = {}
        self._finished: OrderedDict[str, str] = OrderedDict()
        self._numbers = itertools.count(1)
        self._watchers: dict[int, Callable[[], object]] = {}
        self._watch_ids = itertools.count()
        self._closed = False
        self._close_reason = ""
        self._version = 0
        self._changed = threading.Condition()

    # -- reading --------------------------------------------------------------

    def pending(self) -> list[PendingApproval]:
        """The requests waiting, oldest first."""
        with self._lock:
            return list(self._pending.values())

    def get(self, request_id: str) -> PendingApproval | None:
        """The pending request with this id, or `None`."""
        with self._lock:
            return self._pending.get(request_id)

    @property
    def version(self) -> int:
        """Bumped by every change: a cheap "did anything move" check."""
        return self._version

    @property
    def closed(self) -> bool:
        """Whether `close()` was called (every request is denied)."""
        return self._closed

    def __len__(self) -> int:
        return len(self._pending)

    def __iter__(self) -> Iterator[PendingApproval]:
        return iter(self.pending())

    def state(self, request_id: str) -> str | None:
        """
        "pending", or how the request finished ("approved", "denied",
        "timed out", "withdrawn", "closed"), or `None` for an unknown id.
        """
        with self._lock:
            if request_id in self._pending:
                return "pending"
            return self._finished.get(request_id)

    def next_pending(self) -> PendingApproval | None:
        """
        Block until a request is pending and return the oldest, or
        `None` once the queue is closed.
        """
        while True:
            with self._changed:
                self._changed.wait_for(
                    lambda: bool(self._pending) or self._closed
                )
            with self._lock:
                if self._closed:
                    return None
                entry = next(iter(self._pending.values()), None)
            if entry is not None:
                return entry

    def wait_pending(
        self, count: int = 1, timeout: float | None = None
    ) -> list[PendingApproval]:
        """
        Block until at least *count* requests are pending, and return
        them (oldest first); `TimeoutError` after *timeout* seconds.
        From async code, use `await_pending`.
        """
        with self._changed:
            if not self._changed.wait_for(
                lambda: len(self._pending) >= count, timeout
            ):
                msg = f"fewer than {count} pending after {timeout} s"
                raise TimeoutError(msg)
        return self.pending()

    async def await_pending(
        self,
        count: int = 1,
        timeout: float | None = None,  # noqa: ASYNC109 - mirrors wait_pending
    ) -> list[PendingApproval]:
        """`wait_pending` for asyncio code: waits without blocking the loop."""
        loop = asyncio.get_running_loop()
        changed = asyncio.Event()

        def poke() -> None:
            with contextlib.suppress(RuntimeError):  # the loop has closed
                loop.call_soon_threadsafe(changed.set)

        unwatch = self.watch(poke)
        try:
            async with asyncio.timeout(timeout):
                while len(self._pending) < count:
                    await changed.wait()
                    changed.clear()
        finally:
            unwatch()
        return self.pending()

    # -- watching ----------------------------------------------------------------

    def watch(self, fn: Callable[[], object]) -> Callable[[], None]:
        """Call *fn()* after every change; returns a function that stops it."""
        key = next(self._watch_ids)
        with self._lock:
            self._watchers[key] = fn

        def unwatch() -> None:
            with self._lock:
                self._watchers.pop(key, None)

        return unwatch

    def _notify(self) -> None:
        with self._lock:
            self._version += 1
            watchers = list(self._watchers.values())
        with self._changed:
            self._changed.notify_all()
        for fn in watchers:
            try:
                fn()
            except Exception:  # noqa: BLE001, S112 - a watcher never breaks the queue
                continue

    # -- filing and finishing ----------------------------------------------------

    def _file(
        self, request: ApprovalRequest
    ) -> PendingApproval | ApprovalDecision:
        with self._lock:
            if self._closed:
                return ApprovalDecision.deny(
                    f"{self._close_reason}: nobody can answer"
                )
            if len(self._pending) >= self.max_pending:
                return ApprovalDecision.deny(
                    f"the approval queue is full ({self.max_pending} "
                    "requests waiting)"
                )
            request_id = secrets.token_urlsafe(16)
            now = time.time()
            entry = PendingApproval(
                id=request_id,
                request=request,
                number=next(self._numbers),
                asked_at=now,
                expires_at=None
                if self.timeout is None
                else now + self.timeout,
                deadline=(
                    None
                    if self.timeout is None
                    else time.monotonic() + self.timeout
                ),
                future=concurrent.futures.Future(),
            )
            self._pending[request_id] = entry
        self._notify()
        return entry

    def _finish(
        self, request_id: str, state: str, decision: ApprovalDecision
    ) -> PendingApproval:
        """Finish a pending entry (the first finisher wins) or raise."""
        with self._lock:
            entry = self._pending.pop(request_id, None)
            if entry is None:
                done = self._finished.get(request_id)
                if done is None:
                    msg = f"no pending approval has the id {request_id!r:.40}"
                    raise UnknownRequest(msg)
                msg = f"approval {request_id!r:.40} was already {done}"
                raise AlreadyAnswered(msg, done)
            self._finished[request_id] = state
            while len(self._finished) > _FINISHED_KEPT:
                self._finished.popitem(last=False)
            if not entry._future.done():  # noqa: SLF001 - our own record
                entry._future.set_result(decision)  # noqa: SLF001
        self._notify()
        return entry

    def answer(
        self,
        request_id: str,
        answer: Answer | str,
        *,
        who: str = "the console",
        reason: str | None = None,
    ) -> PendingApproval:
        """
        Answer the pending request *request_id*: `"once"`, `"always"` or
        `"deny"` (an `Answer`). Raises `UnknownRequest` for an id that
        never was pending, `AlreadyAnswered` for one already answered,
        timed out, withdrawn or closed, and `ValueError` for another
        answer. Returns the entry answered.
        """
        if not isinstance(request_id, str):
            msg = f"no pending approval has the id {request_id!r:.40}"
            raise UnknownRequest(msg)
        chosen = Answer(answer)
        state = "denied" if chosen is Answer.DENY else "approved"
        return self._finish(request_id, state, chosen.decision(who, reason))

    def close(self, reason: str = "the approval console closed") -> None:
        """Deny every pending request, and every later one."""
        with self._lock:
            if not self._closed:
                self._closed, self._close_reason = True, reason
            ids = list(self._pending)
        for request_id in ids:
            try:
                self._finish(
                    request_id, "closed", ApprovalDecision.deny(reason)
                )
            except LookupError:
                continue
        self._notify()

    # -- asking ----------------------------------------------------------------

    async def ask(
        self, request: ApprovalRequest, who: str
    ) -> ApprovalDecision:
        """
        File *request* and wait for its decision, under asyncio or trio.
        A timeout denies; a cancelled wait withdraws the request.
        """
        filed = self._file(request)
        if isinstance(filed, ApprovalDecision):
            return filed
        future = filed._future  # noqa: SLF001 - our own record
        try:
            if in_trio():
                await _wait_trio(future, filed._deadline)  # noqa: SLF001
            else:
                await _wait_asyncio(future, filed._deadline)  # noqa: SLF001
        finally:
            if not future.done():
                # Timed out, or the caller was cancelled: deny, unless an
                # answer got in first (then that answer stands).
                timed_out = self.timeout is not None and (
                    time.monotonic() >= filed._deadline  # type: ignore[operator]  # noqa: SLF001
                )
                state = "timed out" if timed_out else "withdrawn"
                reason = (
                    f"no answer at {who} within {self.timeout:g} s"
                    if timed_out
                    else "the request was withdrawn before an answer"
                )
                with contextlib.suppress(LookupError):
                    self._finish(
                        filed.id, state, ApprovalDecision.deny(reason)
                    )
        return future.result(timeout=0)


async def _wait_asyncio(
    future: concurrent.futures.Future[ApprovalDecision],
    deadline: float | None,
) -> None:
    waiting = asyncio.wrap_future(future)
    timeout = None if deadline is None else max(0, deadline - time.monotonic())
    # asyncio.wait never cancels what it waits for: the entry is finished
    # by the caller, which sets the concurrent future's result.
    # (Cancelling *waiting* would cancel the concurrent future too.)
    await asyncio.wait([waiting], timeout=timeout)


async def _wait_trio(
    future: concurrent.futures.Future[ApprovalDecision],
    deadline: float | None,
) -> None:
    import trio

    timeout = None if deadline is None else max(0, deadline - time.monotonic())
    await trio.to_thread.run_sync(
        lambda: concurrent.futures.wait([future], timeout=timeout),
        abandon_on_cancel=True,
    )
