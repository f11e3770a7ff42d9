"""
The contract every policy kind keeps, built-in or third-party: `Policy`,
and the `Verdict` a policy (or a stack's `check` hook) gives a call.

Verdicts are totally ordered, deny > ask > allow > no opinion (`None`),
and combining them takes the strongest (`strongest`): so adding a frame, a
file layer or a plugin's opinion can only make a decision stronger, never
weaker. That is the one rule all narrowing follows.

Examples:
    >>> from capscope.policies.protocol import Verdict, strongest
    >>> strongest([None, Verdict.allow(), Verdict.ask("costly")]).action
    <ApprovalAction.ASK: 'ask'>
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any, Protocol, Self, runtime_checkable

import attrs

from .._exceptions import PolicyConfigError
from ._common import ToolCall
from .approval import ApprovalAction, _action

__all__ = ["Policy", "Verdict", "strongest"]

_GATE = re.compile(r"[a-z][a-z0-9_]*")
_STRENGTH = {
    ApprovalAction.ALLOW: 0,
    ApprovalAction.ASK: 1,
    ApprovalAction.DENY: 2,
}


def _gate(value: object) -> str:
    if not isinstance(value, str) or not _GATE.fullmatch(value):
        msg = (
            f"expected a gate name in lower case (letters, digits, _), "
            f"got {value!r}"
        )
        raise PolicyConfigError("gate", msg)
    return value


def _reason(value: object) -> str:
    if not isinstance(value, str) or not value:
        msg = f"expected a non-empty reason, got {value!r}"
        raise PolicyConfigError("reason", msg)
    return value


@attrs.frozen
class Verdict:
    """
    One opinion on one call: allow, ask or deny, with a reason and the name
    of the gate that gave it. A stack's `check` hook returns one (or `None`
    for no opinion); the engine names its gate `"<stack>:<gate>"` in the
    decision and the audit record.

    Attributes:
        action: `"allow"`, `"ask"` or `"deny"`.
        reason: a sentence for the person reading the decision.
        gate: a short name (`"over_limit"`), lower case.

    Examples:
        >>> from capscope.policies.protocol import Verdict
        >>> v = Verdict.deny("spent 12 of 10 credits", gate="over_limit")
        >>> v.action.value, v.gate, v.strength
        ('deny', 'over_limit', 2)
    """

    action: ApprovalAction = attrs.field(converter=_action)
    reason: str = attrs.field(converter=_reason)
    gate: str = attrs.field(default="policy", converter=_gate)

    @property
    def strength(self) -> int:
        """0 for allow, 1 for ask, 2 for deny (no opinion is weaker still)."""
        return _STRENGTH[self.action]

    @classmethod
    def allow(cls, reason: str = "allowed", *, gate: str = "policy") -> Self:
        """An allow (which never overrides another verdict's ask or deny)."""
        return cls(ApprovalAction.ALLOW, reason, gate)

    @classmethod
    def ask(cls, reason: str, *, gate: str = "policy") -> Self:
        """An ask: a person must grant the call."""
        return cls(ApprovalAction.ASK, reason, gate)

    @classmethod
    def deny(cls, reason: str, *, gate: str = "policy") -> Self:
        """A refusal."""
        return cls(ApprovalAction.DENY, reason, gate)


def strongest(verdicts: Iterable[Verdict | None]) -> Verdict | None:
    """
    The strongest of *verdicts* (deny > ask > allow > `None`), the first
    on a tie: what several frames or stacks decide together.

    Examples:
        >>> from capscope.policies.protocol import Verdict, strongest
        >>> strongest([Verdict.allow(), Verdict.deny("no")]).reason
        'no'
        >>> strongest([None, None]) is None
        True
    """
    best: Verdict | None = None
    for verdict in verdicts:
        if verdict is not None and (
            best is None or verdict.strength > best.strength
        ):
            best = verdict
    return best


@runtime_checkable
class Policy(Protocol):
    """
    What a policy kind provides so that a stack can hold it: a meet that
    only narrows, an opinion on a call, a description, and a codec. A
    third-party kind that implements it gets a stack from
    `AmbientStack.for_policy` with no hook to write.

    Examples:
        >>> import attrs
        >>> from capscope.policies.protocol import Policy, Verdict
        >>> @attrs.frozen
        ... class Budget:
        ...     credits: int
        ...     def narrow(self, inner): return Budget(min(self.credits, inner.credits))
        ...     def verdict(self, call):
        ...         cost = call.arguments.get("cost", 0)
        ...         return Verdict.deny(f"costs {cost}", gate="over_limit") if cost > self.credits else None
        ...     def describe(self): return f"Budget: {self.credits} credits."
        ...     def to_dict(self): return {"credits": self.credits}
        ...     @classmethod
        ...     def from_dict(cls, data, *, path="budget"): return cls(data["credits"])
        >>> isinstance(Budget(10), Policy)
        True
    """

    def narrow(self, inner: Self) -> Self:
        """
        *inner* pushed under this value: never wider than either. Raises
        `CeilingExceeded` where a wider request is an error.
        """
        ...

    def verdict(self, call: ToolCall) -> Verdict | None:
        """This value's own opinion of *call* (`None`: none)."""
        ...

    def describe(self) -> str:
        """One or two sentences a person can read."""
        ...

    def to_dict(self) -> Mapping[str, Any]:
        """The value as JSON-able data."""
        ...

    @classmethod
    def from_dict(cls, data: object, *, path: str = ...) -> Self:
        """A value from data; bad input raises `PolicyConfigError`."""
        ...
