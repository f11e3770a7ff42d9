"""
Isolation and leak checks: `isolated()`, `no_leaks()`, `install_policy()`.

Part of `capscope.testing`, which re-exports the public names.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, Self, TypeAlias, final

import attrs

from .._ambient import (
    _OWNER,
    _PARENT,
    _VALUE,
    AmbientCounter,
    AmbientStack,
    FrameToken,
    all_vars,
    frames_of,
)
from .._policyfile import load_policy_data, load_policy_file
from .._scope import Scope
from ..events import muted

# --- isolation and leak checks --------------------------------------------

#: What `isolated()` and `install_policy()` take: policy-file data (the
#: mapping `load_policy_data` reads), the path of a policy file, or a Scope.
_PolicySource: TypeAlias = "Scope | Mapping[str, Any] | str | os.PathLike[str]"
_Var: TypeAlias = ContextVar[FrameToken | None]
_Baseline: TypeAlias = Mapping[_Var, FrameToken | None]

# Why a context variable: a leak check's baseline belongs to the context it
# watches. An async test body runs in a *copy* of its fixtures' context, so
# a policy it keeps with install_policy() must move the baselines of that
# copy only, never what the fixture's teardown (in the original) expects.
# The value is a tuple of (watch, baseline) pairs, replaced, never mutated.
_WATCHES: ContextVar[tuple[tuple[object, _Baseline], ...]] = ContextVar(
    "capscope.testing.watches", default=()
)


def _as_scope(source: _PolicySource) -> Scope:
    """The Scope *source* describes (loaded through capscope's loaders)."""
    if isinstance(source, Scope):
        return source
    if isinstance(source, Mapping):
        return load_policy_data(source)
    if isinstance(source, str | os.PathLike):
        return load_policy_file(source)
    msg = (
        "expected policy-file data (a mapping), the path of a policy file "
        f"or a Scope, got {source!r:.80}"
    )
    raise TypeError(msg)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."  # noqa: PLR2004 - one line


@final
@attrs.frozen
class Leak:
    """
    One stack that a checked block did not leave as it found it.

    Attributes:
        stack: the `AmbientStack` or `AmbientCounter` (registered or not).
        frames: the values left on top of where the block started,
            outermost first (a counter's are `None`); when *unwound*, every
            value the stack holds now.
        unwound: the block popped frames it did not push, or replaced the
            stack's contents, so it no longer continues from its start.

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import Leak
        >>> tenant = cs.AmbientStack("doc_leak", inherit=cs.Inherit.COPY)
        >>> print(Leak(tenant, ("acme",)))
        'doc_leak': 1 frame left, top 'acme'
    """

    stack: AmbientStack[Any] | AmbientCounter
    frames: tuple[Any, ...]
    unwound: bool = False

    def __str__(self) -> str:
        name = repr(self.stack.name)
        count = len(self.frames)
        if self.unwound:
            now = f"top {_short(self.frames[-1])}" if count else "empty"
            return (
                f"{name}: not continuing from where the block started "
                f"(frames below it were popped, or the stack was replaced); "
                f"now {count} frame{'s' * (count != 1)}, {now}"
            )
        if isinstance(self.stack, AmbientCounter):
            return f"{name} (a counter): left raised by {count}"
        plural = "s" * (count != 1)
        return f"{name}: {count} frame{plural} left, top {_short(self.frames[-1])}"


@final
class LeakedFrames(AssertionError):
    """
    A checked block (`isolated()`, `no_leaks()`, the pytest fixtures) left
    frames on one or more stacks. The message names each stack and its
    top frame; `.leaks` holds the details (`Leak`s).

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import LeakedFrames, isolated
        >>> tenant = cs.AmbientStack("doc_leaked", inherit=cs.Inherit.COPY)
        >>> try:
        ...     with isolated():
        ...         _ = tenant.push("acme")  # never popped
        ... except LeakedFrames as e:
        ...     print(e.leaks[0].stack.name, e.leaks[0].frames)
        doc_leaked ('acme',)
        >>> tenant.top() is None  # restored all the same
        True
    """

    def __init__(self, leaks: Sequence[Leak]) -> None:
        super().__init__(tuple(leaks))
        self.leaks: tuple[Leak, ...] = tuple(leaks)

    def __str__(self) -> str:
        count = len(self.leaks)
        lines = [
            f"frames were left on {count} capscope stack{'s' * (count != 1)}:",
            *(f"  {leak}" for leak in self.leaks),
            (
                "Pop every frame you push (`with stack.pushed(...)`, "
                "`with capscope.using(...)`), or keep a policy for the rest "
                "of the block with capscope.testing.install_policy()."
            ),
        ]
        return "\n".join(lines)


def _snapshot() -> dict[_Var, FrameToken | None]:
    return {var: var.get() for var in all_vars()}


def _leaks(baseline: _Baseline) -> list[tuple[_Var, Leak]]:
    """Each stack whose top is not its *baseline* frame, with its Leak."""
    found = []
    for var in all_vars():
        start = baseline.get(var)
        top = var.get()
        if top is start:
            continue
        left = []
        frame = top
        while frame is not None and frame is not start:
            left.append(frame[_VALUE])
            frame = frame[_PARENT]
        left.reverse()
        owner = (top if top is not None else start)[_OWNER]  # type: ignore[index]  # one is set
        found.append((var, Leak(owner, tuple(left), frame is not start)))
    return found


class _Watch:
    """
    One leak check: a baseline of every stack, kept in `_WATCHES` of the
    context that started it (and of copies made from it since).
    """

    __slots__ = ()

    def _start(self) -> None:
        _WATCHES.set((*_WATCHES.get(), (self, _snapshot())))

    def _baseline(self) -> _Baseline:
        for watch, baseline in _WATCHES.get():
            if watch is self:
                return baseline
        msg = (
            f"{self!r} is not active in this context (not entered, exited "
            "already, or entered in a context this one was not copied from)"
        )
        raise RuntimeError(msg)

    def _stop(self, exc: BaseException | None) -> None:
        """
        End the check: put back every stack that is not at its baseline,
        then raise `LeakedFrames` naming them (or, when the block raised
        *exc*, add that as a note to *exc*, which goes on propagating).
        """
        __tracebackhide__ = True
        watches = _WATCHES.get()
        baseline = next((b for w, b in watches if w is self), None)
        # Removed by identity, not reset by token: an inner check started
        # later may have ended since, and a kept policy updated every entry.
        _WATCHES.set(tuple(entry for entry in watches if entry[0] is not self))
        if baseline is None:
            return  # ended in a context that never saw it start
        found = _leaks(baseline)
        for var, _ in found:
            var.set(baseline.get(var))
        if not found:
            return
        error = LeakedFrames([leak for _, leak in found])
        if exc is None:
            raise error
        exc.add_note(str(error))

    def leaks(self) -> tuple[Leak, ...]:
        """
        The stacks not at their baseline now, in this context.

        Raises:
            RuntimeError: the check is not active in this context.
        """
        return tuple(leak for _, leak in _leaks(self._baseline()))

    def check(self) -> None:
        """
        Raise `LeakedFrames` if a stack is not at its baseline now (and
        change nothing).

        Raises:
            LeakedFrames: a stack has frames it should not have.
            RuntimeError: the check is not active in this context.
        """
        __tracebackhide__ = True
        found = self.leaks()
        if found:
            raise LeakedFrames(found)


def _keep(frames: Mapping[_Var, FrameToken | None]) -> None:
    """Make *frames* the baseline tops of every active check here."""
    _WATCHES.set(
        tuple(
            (watch, {**baseline, **frames})
            for watch, baseline in _WATCHES.get()
        )
    )


def _install(push: Callable[[], object], what: str) -> None:
    """Run *push* and keep what it pushed for the rest of the checks."""
    if not _WATCHES.get():
        msg = (
            f"{what} keeps a policy for the rest of an isolated() or "
            "no_leaks() block, and there is none here; push it with `with "
            "capscope.using(...)` or `with scope.installed()` instead"
        )
        raise RuntimeError(msg)
    before = _snapshot()
    push()
    _keep(
        {
            var: top
            for var, top in _snapshot().items()
            if top is not before.get(var)
        }
    )


@final
class IsolatedScope(_Watch):
    """
    What `isolated()` returns: a context manager that installs a scope,
    checks for leaks and restores the prior state.

    While it is active, `leaks()` lists what the block has left so far
    and `check()` raises for it.

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import isolated
        >>> tenant = cs.AmbientStack("doc_iso", inherit=cs.Inherit.COPY)
        >>> with isolated() as iso:
        ...     token = tenant.push("acme")
        ...     print(iso.leaks()[0])
        ...     tenant.pop(token)
        ...     iso.leaks()
        'doc_iso': 1 frame left, top 'acme'
        ()
    """

    __slots__ = ("_installed", "_scope")

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._installed: Any = None

    def __repr__(self) -> str:
        return f"<IsolatedScope of {self._scope!r}>"

    @property
    def scope(self) -> Scope:
        """
        The scope installed for the block.

        Examples:
            >>> from capscope.testing import isolated
            >>> isolated().scope
            <Scope empty>
        """
        return self._scope

    def __enter__(self) -> Self:
        if self._installed is not None:
            msg = "this isolated() block is already entered"
            raise RuntimeError(msg)
        installed = self._scope.installed()
        installed.__enter__()
        self._installed = installed
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> None:
        __tracebackhide__ = True
        installed, self._installed = self._installed, None
        if installed is None:
            return
        try:
            self._stop(exc)
        finally:
            installed.__exit__(exc_type, exc, tb)


def isolated(policy: _PolicySource | None = None) -> IsolatedScope:
    """
    Run a `with` block isolated from the caller's capscope state, and fail
    it if it leaves frames behind.

    On entry every capscope stack is emptied and every counter set to 0
    (as `Scope.empty()`), then *policy* is installed if given: policy-file
    data (a mapping, read by `capscope.load_policy_data`), the path of a
    TOML or JSON policy file (`capscope.load_policy_file`), or a `Scope`.
    On exit, every stack (built-in, third-party or unregistered, counters
    included) must be as the block found it, apart from what
    `install_policy()` kept: otherwise `LeakedFrames` names each stack and
    its top frame. The caller's state is restored either way. When the
    block raises, its exception propagates with the leaks as a note.

    Each stack is checked in the context that exits the block. An async
    body run in a task of its own leaves its frames in that task's context,
    out of sight: check such a body with `no_leaks()` inside the task.

    Raises:
        LeakedFrames: on exit, the block left frames behind.
        PolicyFileError: *policy* cannot be loaded.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import isolated
        >>> from capscope.stacks import execution
        >>> with cs.using(execution=CapabilityPolicy(tools=["shell"])):
        ...     with isolated({"execution": {"tools": ["fs.read"]}}):
        ...         execution.top().tools
        ...     execution.top().tools
        ('fs.read',)
        ('shell',)
    """
    return IsolatedScope(
        Scope.empty() if policy is None else _as_scope(policy)
    )


@final
class _NoLeaks(_Watch):
    """The context manager `no_leaks()` returns."""

    __slots__ = ("_active",)

    def __init__(self) -> None:
        self._active = False

    def __repr__(self) -> str:
        return "<no_leaks check>"

    def __enter__(self) -> Self:
        if self._active:
            msg = "this no_leaks() block is already entered"
            raise RuntimeError(msg)
        self._active = True
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> None:
        __tracebackhide__ = True
        if self._active:
            self._active = False
            self._stop(exc)


def no_leaks() -> _NoLeaks:
    """
    Check that a `with` block leaves every capscope stack as it found it,
    without isolating it: the block sees the caller's policies.

    On exit, a stack with frames the block left on it (or one the block
    unwound below where it started) is put back and named in a
    `LeakedFrames` (a note on the block's own exception, if it raised).
    Frames kept with `install_policy()` inside the block are expected.
    Works inside a task: `async def` bodies may use it around their
    awaits (the pytest plugin wraps async tests in it this way).

    Raises:
        LeakedFrames: on exit, the block left frames behind.

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import LeakedFrames, no_leaks
        >>> tenant = cs.AmbientStack("doc_no_leaks", inherit=cs.Inherit.COPY)
        >>> with no_leaks():
        ...     with tenant.pushed("fine"):
        ...         pass
        >>> try:
        ...     with no_leaks():
        ...         _ = tenant.push("left")
        ... except LeakedFrames as e:
        ...     print(e)
        frames were left on 1 capscope stack:
          'doc_no_leaks': 1 frame left, top 'left'
        Pop every frame you push (`with stack.pushed(...)`, `with capscope.using(...)`), or keep a policy for the rest of the block with capscope.testing.install_policy().
    """
    return _NoLeaks()


def _push_scope(scope: Scope) -> None:
    """Push every stack's frames of *scope* onto the current stacks."""
    ctx = scope.context()
    pushed: list[tuple[AmbientStack[Any], FrameToken]] = []
    try:
        for var in all_vars():
            frame = ctx.get(var)
            if frame is None:
                continue
            owner = frame[_OWNER]
            if not isinstance(owner, AmbientStack):
                continue  # counters are not policies
            for value in frames_of(frame):
                # One at a time: each token is kept as soon as it exists,
                # for the unwind below.
                pushed.append((owner, owner.push(value)))  # noqa: PERF401
    except BaseException:
        for owner, token in reversed(pushed):
            owner.pop(token)
        raise


def install_policy(policy: _PolicySource) -> None:
    """
    Push *policy* onto the current stacks for the rest of the enclosing
    `isolated()` (or `no_leaks()`) block, which counts its frames as
    expected and drops them on exit.

    *policy* is read as by `isolated()`. Its values are pushed on top of
    what is there, through each stack's `narrow` as a policy file layers:
    an execution ceiling only narrows (asking for more raises
    `CeilingExceeded`), approval rules add up, command and permission
    frames are all checked. Call it at the block's top level, not inside
    a `with` that pops something after it.

    Raises:
        RuntimeError: there is no enclosing `isolated()` or `no_leaks()`
            block in this context.
        CeilingExceeded: *policy* asks for more than the stacks allow.
        PolicyFileError: *policy* cannot be loaded.

    Examples:
        >>> from capscope.stacks import execution
        >>> from capscope.testing import install_policy, isolated
        >>> with isolated({"execution": {"tools": ["fs.*", "shell"]}}):
        ...     install_policy({"execution": {"tools": ["fs.*"]}})
        ...     execution.top().tools
        ('fs.*',)
        >>> execution.top() is None
        True
    """
    if isinstance(policy, Scope):
        scope = policy
    else:
        # Loading pushes onto an empty scope of its own: mute that, so the
        # one root-policy event is the push below, where it happens.
        with muted():
            scope = _as_scope(policy)
    _install(lambda: _push_scope(scope), "install_policy()")
