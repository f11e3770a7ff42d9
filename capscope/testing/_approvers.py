"""
Scripted approvals: `ScriptedApprover`.

Part of `capscope.testing`, which re-exports the public names.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, Literal, Self, TypeAlias, final

from .._enforce import ApprovalDecision, ApprovalRequest
from ..policies.approval import ToolApprovalPolicy
from ..stacks import approval
from ._isolation import _install

# --- scripted approvals ---------------------------------------------------

#: One scripted answer.
_Answer: TypeAlias = bool | ApprovalDecision | Literal["allow", "deny"]
_AnswerFunction: TypeAlias = Callable[[ApprovalRequest], object]


def _checked_answers(answers: Iterable[_Answer]) -> list[_Answer]:
    if isinstance(answers, str):
        msg = (
            f"answers is a list of answers, not one string: did you mean "
            f"[{answers!r}]?"
        )
        raise TypeError(msg)
    checked = list(answers)
    for index, answer in enumerate(checked):
        if not (
            isinstance(answer, bool | ApprovalDecision)
            or (isinstance(answer, str) and answer in {"allow", "deny"})
        ):
            msg = (
                f"answer {index} is {answer!r:.60}: expected True, False, "
                "'allow', 'deny' or an ApprovalDecision"
            )
            raise TypeError(msg)
    return checked


def _normalised(answer: object) -> object:
    if answer == "allow" and isinstance(answer, str):
        return True
    if answer == "deny" and isinstance(answer, str):
        return False
    return answer


@final
class ScriptedApprover:
    """
    An approval handler for tests: it answers from a script and records
    every `ApprovalRequest` it gets, in order.

    *answers* is either a list, answered in order, of `True`/`"allow"`,
    `False`/`"deny"` or `ApprovalDecision`s (to remember an answer for the
    scope, or give a reason); or a function `request -> answer`, which may
    also return anything else (capscope denies what is not a clear grant).
    When the list runs out, each further request is **denied**, with a
    reason that says so, and kept in `unanswered`; a test that expected
    more answers then fails on the `ApprovalDenied`.

    It is a synchronous handler, so it serves sync and async tool calls
    alike (capscope runs a sync handler of an async call in a thread).
    Install it with `policy()` (a `ToolApprovalPolicy` with this handler
    and no timeout, so a sync call asks it inline) or, for the rest of an
    `isolated()` block, with `install()`.

    Attributes:
        requests: every request asked, oldest first.
        unanswered: the requests the list had no answer left for.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import ScriptedApprover
        >>> @cs.needs_approval("deploy")
        ... def deploy(env):
        ...     return f"deployed {env}"
        >>> approver = ScriptedApprover(["allow", "deny"])
        >>> with cs.using(execution=CapabilityPolicy.unrestricted(), approval=approver.policy()):
        ...     deploy("staging")
        ...     try:
        ...         deploy("prod")
        ...     except cs.ApprovalDenied as e:
        ...         print(e)
        'deployed staging'
        denied by the handler
        >>> print(*(r.arguments["env"] for r in approver.requests))
        staging prod
    """

    def __init__(
        self, answers: Iterable[_Answer] | _AnswerFunction = ()
    ) -> None:
        # Why a lock: capscope asks a handler from whichever thread decides
        # (and from a worker thread for async calls and timeouts).
        self._lock = threading.Lock()
        self.requests: list[ApprovalRequest] = []
        self.unanswered: list[ApprovalRequest] = []
        self._function: _AnswerFunction | None = None
        self._queue: list[_Answer] = []
        self._scripted = 0
        self.answers = answers

    @property
    def answers(self) -> list[_Answer] | _AnswerFunction:
        """
        The answers not given yet (a copy), or the answering function. Set
        it to script a new list (or function) from now on.

        Examples:
            >>> from capscope.testing import ScriptedApprover
            >>> approver = ScriptedApprover()
            >>> approver.answers = ["allow", False]
            >>> approver.answers
            ['allow', False]
        """
        with self._lock:
            return (
                list(self._queue) if self._function is None else self._function
            )

    @answers.setter
    def answers(self, answers: Iterable[_Answer] | _AnswerFunction) -> None:
        if callable(answers):
            function: _AnswerFunction | None = answers
            queue: list[_Answer] = []
        else:
            function, queue = None, _checked_answers(answers)
        with self._lock:
            self._function, self._queue, self._scripted = (
                function,
                queue,
                len(queue),
            )

    def __repr__(self) -> str:
        with self._lock:
            source = (
                f"{len(self._queue)} answers left"
                if self._function is None
                else f"answering with {self._function!r:.40}"
            )
            return (
                f"<ScriptedApprover {source}, {len(self.requests)} requests>"
            )

    def __call__(self, request: ApprovalRequest) -> object:
        """Answer *request* (capscope calls this as the handler)."""
        with self._lock:
            self.requests.append(request)
            function = self._function
            if function is None:
                if not self._queue:
                    self.unanswered.append(request)
                    reason = (
                        f"ScriptedApprover has no answer left for "
                        f"{request.tool!r} (request {len(self.requests)}; "
                        f"{self._scripted} answers were scripted)"
                    )
                    return ApprovalDecision.deny(reason)
                return _normalised(self._queue.pop(0))
        # Outside the lock: a slow function must not hold up other threads.
        return _normalised(function(request))

    def policy(self, **options: Any) -> ToolApprovalPolicy:
        """
        A `ToolApprovalPolicy` with this approver as its handler and no
        timeout (so a sync call asks it inline, in the caller's thread);
        *options* are further fields (`rules=`, `timeout=`, ...).

        Examples:
            >>> from capscope.testing import ScriptedApprover
            >>> approver = ScriptedApprover([True])
            >>> approver.policy().handler is approver
            True
        """
        return ToolApprovalPolicy(
            **{"handler": self, "timeout": None, **options}
        )

    def install(self, **options: Any) -> Self:
        """
        Push `policy(**options)` onto the approval stack for the rest of
        the enclosing `isolated()` block (see `install_policy()`); returns
        the approver. Pushed over an approval policy, it keeps that
        policy's rules and replaces its handler.

        Raises:
            RuntimeError: there is no enclosing `isolated()` or
                `no_leaks()` block in this context.

        Examples:
            >>> from capscope.stacks import approval
            >>> from capscope.testing import ScriptedApprover, isolated
            >>> with isolated():
            ...     approver = ScriptedApprover(["allow"]).install()
            ...     approval.top().handler is approver
            True
        """
        policy = self.policy(**options)
        _install(lambda: approval.push(policy), "ScriptedApprover.install()")
        return self
