"""
Every error and warning capscope raises on purpose, in one place.

Kept apart from the modules that raise them so that any module can import
them without an import cycle, and so the whole tree can be read at once::

    CapscopeError(Exception)
    ├── ScopeError                         LIFO misuse
    ├── RegistryError                      clash, broken or wrong-typed entry point
    ├── PolicyConfigError(…, ValueError)   bad policy input, names the field / key path
    │   └── PolicyFileError                … in a policy file: names the file and line too
    ├── CeilingExceeded                    a push or spawn asked for more than the outer value
    ├── NoConnectorContext                 current_connector() with none active
    ├── EnvelopeError                      a scope envelope refused: missing, tampered, old, unknown key
    └── PolicyDenied(…, PermissionError)   carries .decision
        ├── NoPolicyInstalled              no execution policy in this context
        ├── ToolDenied                     ceiling, capability, side effect, paths, args, permissions
        ├── ApprovalDenied                 denied, timed out, no handler, junk answer
        ├── CommandBlocked
        ├── ActionProposed                 autonomy suggest/shadow: body not run, proposal emitted
        └── HumanRequired                  autonomy requires-human

    CapscopeWarning(UserWarning)
    └── ScopeWarning                       a pop this context could not honour

Every exception keeps all of its constructor arguments in `.args`, so each
one pickles and crosses process boundaries intact.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import final

__all__ = [
    "ActionProposed",
    "ApprovalDenied",
    "CapscopeError",
    "CapscopeWarning",
    "CeilingExceeded",
    "CommandBlocked",
    "EnvelopeError",
    "HumanRequired",
    "NoConnectorContext",
    "NoPolicyInstalled",
    "PolicyConfigError",
    "PolicyDenied",
    "PolicyFileError",
    "RegistryError",
    "ScopeError",
    "ScopeWarning",
    "ToolDenied",
]


class CapscopeError(Exception):
    """
    Base class for every error capscope raises on purpose.

    Examples:
        >>> import capscope as cs
        >>> issubclass(cs.ToolDenied, cs.CapscopeError)
        True
    """


@final
class ScopeError(CapscopeError):
    """
    A stack was unwound out of order (a LIFO violation), or a frame token was
    handed to a stack it does not belong to.

    Examples:
        >>> import capscope as cs
        >>> s = cs.AmbientStack("doc_scope_error", inherit=cs.Inherit.COPY)
        >>> outer = s.push("outer"); inner = s.push("inner")
        >>> try:
        ...     s.pop(outer)
        ... except cs.ScopeError as e:
        ...     print("refused")
        refused
        >>> s.pop(inner); s.pop(outer)
    """


@final
class RegistryError(CapscopeError):
    """
    The stack registry refused a stack: a name taken by a different object,
    or an entry point that fails to import or is not a stack.

    The message names the entry point and its distribution when one was
    involved.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     cs.registry.get("no such stack")
        ... except cs.RegistryError as e:
        ...     print("unknown")
        unknown
    """


class PolicyConfigError(CapscopeError, ValueError):
    """
    Bad policy input, raised when the policy is built.

    *field* is the offending field or key path (`approval.rules[2].action`),
    *message* says what is wrong with it.

    Examples:
        >>> import capscope as cs
        >>> str(cs.PolicyConfigError("approval.rules[2].action", "'aprove' is not one of allow, ask, deny"))
        "approval.rules[2].action: 'aprove' is not one of allow, ask, deny"
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(field, message)
        self.field = field
        self.message = message

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


@final
class PolicyFileError(PolicyConfigError):
    """
    Bad input in a policy file: a `PolicyConfigError` that also names the
    *file* and, where it can be found, the *line* (`None` when not).
    *field* is the key path (empty for a file that does not parse).

    Examples:
        >>> import capscope as cs
        >>> str(cs.PolicyFileError("org.toml", 4, "execution.tools[1]", "an empty pattern matches nothing"))
        'org.toml:4: execution.tools[1]: an empty pattern matches nothing'
    """

    def __init__(
        self, file: str, line: int | None, field: str, message: str
    ) -> None:
        super().__init__(field, message)
        self.args = (file, line, field, message)
        self.file = file
        self.line = line

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return (
            f"{where}: {self.field}: {self.message}"
            if self.field
            else (f"{where}: {self.message}")
        )


@final
class CeilingExceeded(CapscopeError):
    """
    A push, a spawn or a worker capture asked for more than the outer value
    allows. Never a silent clamp: the request is refused.

    Attributes name the *field*, the *outer* value and the *requested* one.

    Examples:
        >>> import capscope as cs
        >>> str(cs.CeilingExceeded("tools", ("fs.*",), ("*",)))
        "tools: requested ('*',) exceeds the outer ceiling ('fs.*',)"
    """

    def __init__(
        self,
        field: str,
        outer: object,
        requested: object,
        detail: str | None = None,
    ) -> None:
        super().__init__(field, outer, requested, detail)
        self.field = field
        self.outer = outer
        self.requested = requested
        self.detail = detail

    def __str__(self) -> str:
        text = (
            f"{self.field}: requested {self.requested!r} exceeds the outer "
            f"ceiling {self.outer!r}"
        )
        return f"{text} ({self.detail})" if self.detail else text


@final
class NoConnectorContext(CapscopeError):
    """
    `current_connector()` was called with no connector context active.

    Examples:
        >>> import capscope as cs
        >>> issubclass(cs.NoConnectorContext, cs.CapscopeError)
        True
    """


@final
class EnvelopeError(CapscopeError):
    """
    A scope envelope was refused (`capscope.propagation.extract`): missing,
    malformed, of an unknown version, signed with a key the receiver does
    not hold or changed since, issued for another message, too old, or
    replayed; or the keys and options given were unusable (a shared key
    shorter than 32 bytes, say). The work must not run under any scope.

    Examples:
        >>> from capscope import propagation
        >>> try:
        ...     propagation.extract({}, key=b"k" * 32)
        ... except propagation.EnvelopeError as e:
        ...     print(e)
        no scope envelope in the carrier (header 'capscope-scope')
    """


class PolicyDenied(CapscopeError, PermissionError):
    """
    A policy refused a call. `.decision` holds the `Decision` that refused it
    (`None` when raised without one). Given a decision record
    (`capscope.audit.decision_record`) instead, as a JSON transport such
    as a Celery result backend rebuilds it, it reads the `Decision` back.

    Catch this to handle every refusal at once; it is also a
    `PermissionError`.

    Examples:
        >>> import capscope as cs
        >>> e = cs.ToolDenied("fs.write is outside the tool ceiling")
        >>> isinstance(e, PermissionError), e.decision
        (True, None)
    """

    def __init__(self, message: str, decision: object | None = None) -> None:
        if isinstance(decision, Mapping):
            # A decision that crossed a JSON boundary as its audit record
            # (a Celery result): read back into a Decision.
            from .audit import decision_from_record

            with contextlib.suppress(TypeError, ValueError):  # not a record
                decision = decision_from_record(decision)
        super().__init__(message, decision)
        self.message = message
        self.decision = decision

    def __str__(self) -> str:
        return self.message


@final
class NoPolicyInstalled(PolicyDenied):
    """
    A tool check found no execution policy in this context: it fails closed.

    Usually the policy was lost at a thread or executor boundary; carry it
    with `capscope.to_thread`, `capscope.ScopedExecutor` or `Scope.bind`.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     raise cs.NoPolicyInstalled("refused")
        ... except cs.PolicyDenied as e:
        ...     print(type(e).__name__, e)
        NoPolicyInstalled refused
    """


@final
class ToolDenied(PolicyDenied):
    """
    The tool ceiling, a capability, the side-effect level, a path, an
    argument constraint or a dynamic permission refused the call.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     raise cs.ToolDenied("refused")
        ... except cs.PolicyDenied as e:
        ...     print(type(e).__name__, e)
        ToolDenied refused
    """


@final
class ApprovalDenied(PolicyDenied):
    """
    An approval was refused, timed out, had no handler, or got an answer that
    was not a clear grant.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     raise cs.ApprovalDenied("refused")
        ... except cs.PolicyDenied as e:
        ...     print(type(e).__name__, e)
        ApprovalDenied refused
    """


@final
class CommandBlocked(PolicyDenied):
    """
    The command policy (or its catastrophic floor) refused a command.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     raise cs.CommandBlocked("refused")
        ... except cs.PolicyDenied as e:
        ...     print(type(e).__name__, e)
        CommandBlocked refused
    """


@final
class ActionProposed(PolicyDenied):
    """
    The autonomy tier is `suggest` or `shadow`: the body did not run and a
    `proposed` decision was emitted instead.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     raise cs.ActionProposed("refused")
        ... except cs.PolicyDenied as e:
        ...     print(type(e).__name__, e)
        ActionProposed refused
    """


@final
class HumanRequired(PolicyDenied):
    """
    The autonomy policy requires a human to take this action.

    Examples:
        >>> import capscope as cs
        >>> try:
        ...     raise cs.HumanRequired("refused")
        ... except cs.PolicyDenied as e:
        ...     print(type(e).__name__, e)
        HumanRequired refused
    """


class CapscopeWarning(UserWarning):
    """
    Base class for every warning capscope emits.

    Examples:
        >>> import capscope as cs
        >>> issubclass(cs.ScopeWarning, cs.CapscopeWarning)
        True
    """


@final
class ScopeWarning(CapscopeWarning):
    """
    A pop this context could not honour: the frame is not on this context's
    stack at all (a generator closed from another task, a frame pushed in a
    copied context). Nothing was changed.

    Examples:
        >>> import capscope as cs, warnings
        >>> s = cs.AmbientStack("doc_scope_warning", inherit=cs.Inherit.COPY)
        >>> token = s.push(1); s.pop(token)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     s.pop(token)
        >>> caught[0].category is cs.ScopeWarning
        True
    """
