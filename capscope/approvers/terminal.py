"""
`TerminalApprover`: approval requests answered at a prompt on the
controlling terminal, one at a time, whichever worker, thread or event
loop asked (POSIX).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import termios
import threading
import time
from typing import Self

from .._enforce import ApprovalRequest
from ._base import Asking, QueuedApprover
from ._queue import Answer, PendingApproval

__all__ = ["TerminalApprover"]

_ANSWERS = {
    "o": Answer.ONCE,
    "once": Answer.ONCE,
    "y": Answer.ONCE,
    "yes": Answer.ONCE,
    "a": Answer.ALWAYS,
    "always": Answer.ALWAYS,
    "d": Answer.DENY,
    "deny": Answer.DENY,
    "n": Answer.DENY,
    "no": Answer.DENY,
}
_PROMPT = (
    "[o] allow once  [a] always for this worker  [d] deny (d <reason>) > "
)
_OUTCOMES = {
    Answer.ONCE: "approved once",
    Answer.ALWAYS: "approved for this worker",
    Answer.DENY: "denied",
}


def render(entry: PendingApproval, waiting: int) -> str:
    r"""
    How the terminal shows *entry*, with *waiting* more behind it: every
    value already `printable` (no escape sequence reaches the terminal).

    Examples:
        >>> import capscope as cs
        >>> from capscope.approvers import ApprovalQueue
        >>> from capscope.approvers.terminal import render
        >>> from capscope.policies import RuntimeContextOverlay
        >>> queue = ApprovalQueue(timeout=None)
        >>> request = cs.ApprovalRequest(
        ...     "shell", {"command": [["git", "push"]], "line": "git push -f\x1b[2K",
        ...     "labels": ["vcs_push"]}, "asks", None,
        ...     RuntimeContextOverlay(run_id="r-1", worker_id="w-2"))
        >>> print(render(queue._file(request), waiting=0))  # doctest: +NORMALIZE_WHITESPACE
        --- approval #1 ---------------------------------------------
        tool     shell
        for      worker w-2, run r-1
        reason   asks
        command  git push -f\x1b[2K
        labels   vcs_push
        no time limit
    """
    view = entry.view()
    more = f" ({waiting} more waiting)" if waiting else ""
    lines = [f"--- approval #{view['number']} {'-' * 45}{more}"]
    lines.append(f"tool     {view['tool']}")
    who = [
        f"{name} {view[key]}"
        for name, key in (
            ("worker", "worker_id"),
            ("run", "run_id"),
            ("workflow", "workflow_id"),
            ("stage", "stage_id"),
        )
        if view[key] is not None
    ]
    who += [f"{k}={v}" for k, v in view["attributes"].items()]
    lines.append(f"for      {', '.join(who) or '(no attribution)'}")
    lines.append(f"reason   {view['reason']}")
    command = view["command"]
    if command is not None:
        lines.append(f"command  {command['line']}")
        lines.append(f"labels   {', '.join(command['labels']) or '(none)'}")
    else:
        first = "args    "
        for name, value in view["arguments"]:
            lines.append(f"{first} {name} = {value}")
            first = "        "
    if view["rule"] is not None:
        lines.append(f"rule     {view['rule']}")
    if view["expires_at"] is None:
        lines.append("no time limit")
    else:
        left = max(0, round(view["expires_at"] - time.time()))
        lines.append(f"denied in {left} s without an answer")
    return "\n".join(lines)


class TerminalApprover(QueuedApprover):
    r"""
    An approval handler that asks at a prompt on the terminal: it shows
    the tool or command (the raw command line and its labels, or the
    arguments the rules read), the rule and reason, and who asks (run,
    workflow, stage, worker, attributes), and reads one answer: `o`
    (allow once), `a` (always for this worker:
    `ApprovalDecision.allow(remember="scope")`) or `d [reason]` (deny).

    Requests from every worker wait in one queue and are shown one at a
    time, oldest first, with how many more are waiting. One not answered
    within *timeout* seconds is denied (and the prompt moves on); one
    more than *max_pending* is denied at once. Input typed before a
    request is shown is discarded, so an answer always follows the
    request it answers; control characters in what is shown are written
    as escapes (`\x1b`), so an argument cannot drive the terminal.

    It talks to *tty* (the controlling terminal, `/dev/tty`, by
    default), not to standard input and output, which the agent may be
    using. With no terminal to open, every request is denied. The prompt
    runs in a daemon thread, started on the first request; `close()`
    stops it and denies whatever is pending.

    Examples:
        >>> from capscope.approvers import TerminalApprover
        >>> approver = TerminalApprover(timeout=60)
        >>> approver.pending()
        []
        >>> approver.close()
    """

    who = "the terminal"

    def __init__(
        self,
        *,
        timeout: float | None = 120.0,
        max_pending: int = 100,
        tty: str = "/dev/tty",
    ) -> None:
        super().__init__(timeout=timeout, max_pending=max_pending)
        self.tty = tty
        self._start_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._wake_w: int | None = None
        self.queue.watch(self._wake)

    def __call__(self, request: ApprovalRequest) -> Asking:
        """Ask at the terminal (capscope calls this as the handler)."""
        self.start()
        return super().__call__(request)

    def start(self) -> Self:
        """Open the terminal and start the prompt (done on the first ask)."""
        with self._start_lock:
            if self._thread is not None or self.queue.closed:
                return self
            try:
                tty = os.open(self.tty, os.O_RDWR | os.O_NOCTTY)
            except OSError as exc:
                self.queue.close(f"no terminal to ask on ({exc.strerror})")
                return self
            wake_r, wake_w = os.pipe()
            for fd in (wake_r, wake_w):
                flags = fcntl.fcntl(fd, fcntl.F_GETFL)
                fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
            self._wake_w = wake_w
            self._thread = threading.Thread(
                target=self._run,
                args=(tty, wake_r),
                name="capscope-terminal-approver",
                daemon=True,
            )
            self._thread.start()
        return self

    def close(self) -> None:
        """Deny every pending and later request; stop the prompt."""
        super().close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(5)

    def _wake(self) -> None:
        fd = self._wake_w
        if fd is not None:
            with contextlib.suppress(OSError):  # full (already woken), closed
                os.write(fd, b"!")

    # -- the prompt thread ----------------------------------------------------

    def _run(self, tty: int, wake: int) -> None:
        buffer = bytearray()
        try:
            while (entry := self.queue.next_pending()) is not None:
                # Discard type-ahead: an answer must follow the request.
                with contextlib.suppress(termios.error):
                    termios.tcflush(tty, termios.TCIFLUSH)
                buffer.clear()
                waiting = len(self.queue) - 1
                _write(tty, "\n" + render(entry, waiting) + "\n")
                self._ask(tty, wake, entry, buffer)
        except (OSError, EOFError):
            pass  # the terminal went away: closing below denies the rest
        finally:
            self.queue.close("the terminal approver stopped")
            wake_w, self._wake_w = self._wake_w, None
            for fd in (tty, wake, wake_w):
                if fd is not None:
                    with contextlib.suppress(OSError):
                        os.close(fd)

    def _ask(
        self, tty: int, wake: int, entry: PendingApproval, buffer: bytearray
    ) -> None:
        while True:
            _write(tty, _PROMPT)
            line = self._read_line(tty, wake, entry, buffer)
            if line is None:
                state = self.queue.state(entry.id) or "gone"
                _write(tty, f"\n  -> {state}: no longer waiting\n")
                return
            word, _, reason = line.strip().partition(" ")
            answer = _ANSWERS.get(word.lower())
            if answer is None:
                _write(tty, "  answer o, a or d\n")
                continue
            try:
                self.queue.answer(
                    entry.id,
                    answer,
                    who=self.who,
                    reason=reason.strip()[:500] or None,
                )
            except LookupError as exc:
                _write(tty, f"  -> not taken: {exc}\n")
            else:
                _write(tty, f"  -> {_OUTCOMES[answer]}\n")
            return

    def _read_line(
        self, tty: int, wake: int, entry: PendingApproval, buffer: bytearray
    ) -> str | None:
        """A line typed at the terminal, or `None` once *entry* is gone."""
        while b"\n" not in buffer and b"\r" not in buffer:
            if self.queue.state(entry.id) != "pending":
                return None
            ready, _, _ = select.select([tty, wake], [], [])
            if wake in ready:
                with contextlib.suppress(BlockingIOError):
                    os.read(wake, 4096)
            if tty in ready:
                data = os.read(tty, 1024)
                if not data:
                    raise EOFError
                buffer += data
        end = min(
            i for i in (buffer.find(b"\n"), buffer.find(b"\r")) if i >= 0
        )
        line = bytes(buffer[:end])
        del buffer[: end + 1]
        return line.decode("utf-8", "replace")


def _write(tty: int, text: str) -> None:
    data = text.encode("utf-8", "replace")
    while data:
        written = os.write(tty, data)
        data = data[written:]
