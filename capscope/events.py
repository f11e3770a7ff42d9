"""
Decision events: every check capscope makes, stamped with who it was for.

Subscribe a callable with `subscribe(fn)`; it gets each `Decision` as it is
made, in the thread and task that made it. Subscribers must be quick and
must not raise: one that raises is logged (logger `capscope`) and never
changes a decision. With no subscriber, an allowed call builds no event at
all.

Examples:
    >>> import capscope as cs
    >>> seen = []
    >>> unsubscribe = cs.events.subscribe(seen.append)
    >>> cs.events.emit(cs.Decision(action="deny", gate="tool_ceiling", tool="shell", reason="no"))
    >>> unsubscribe()
    >>> print(seen[0].action, seen[0].gate, seen[0].tool)
    deny tool_ceiling shell
"""

from __future__ import annotations

import contextlib
import enum
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

import attrs

from .policies.overlay import RuntimeContextOverlay

__all__ = [
    "Action",
    "CommandDecision",
    "Decision",
    "Gate",
    "emit",
    "has_subscribers",
    "muted",
    "subscribe",
]

_log = logging.getLogger("capscope")


class Action(enum.StrEnum):
    """
    What a decision did.

    Examples:
        >>> import capscope as cs
        >>> cs.Action("granted") is cs.Action.GRANTED
        True
    """

    ALLOW = "allow"
    DENY = "deny"
    ASK = "ask"
    GRANTED = "granted"
    PROPOSED = "proposed"
    SKIPPED = "skipped"
    #: a scope was handed to another process in a signed envelope
    DELEGATED = "delegated"


class Gate(enum.StrEnum):
    """
    Which check decided (`root_policy` and `trusted` mark escapes: a root
    push of "execution", an entry into `trusted()`).

    Examples:
        >>> import capscope as cs
        >>> cs.Gate.TOOL_CEILING == "tool_ceiling"
        True
    """

    NO_POLICY = "no_policy"
    TOOL_CEILING = "tool_ceiling"
    CAPABILITY_CEILING = "capability_ceiling"
    SIDE_EFFECT_CEILING = "side_effect_ceiling"
    WORKSPACE_BOUNDARY = "workspace_boundary"
    SENSITIVE_PATH = "sensitive_path"
    ARG_CONSTRAINT = "arg_constraint"
    DYNAMIC_PERMISSION = "dynamic_permission"
    APPROVAL = "approval"
    APPROVAL_UNAVAILABLE = "approval_unavailable"
    AUTONOMY = "autonomy"
    BRIDGE = "bridge"
    COMMAND = "command"
    ROOT_POLICY = "root_policy"
    TRUSTED = "trusted"
    ENVELOPE = "envelope"

    @classmethod
    def _missing_(cls, value: object) -> Gate | None:
        """
        A stack's own gate, namespaced by the stack's name
        (`"budget:over_limit"`): made on first use, then the same member.
        """
        if not isinstance(value, str) or not _STACK_GATE.fullmatch(value):
            return None
        with _GATES_LOCK:
            member = cls._value2member_map_.get(value)
            if member is None:
                member = str.__new__(cls, value)
                member._name_ = value
                member._value_ = value
                cls._value2member_map_[value] = member
        return member  # type: ignore[return-value]

    @property
    def stack(self) -> str | None:
        """
        The stack whose `check` hook gave this gate, or `None` for
        capscope's own gates.

        Examples:
            >>> import capscope as cs
            >>> cs.Gate("budget:over_limit").stack, cs.Gate.APPROVAL.stack
            ('budget', None)
        """
        name, sep, _ = self.value.partition(":")
        return name if sep else None


#: `<stack name>:<gate>`: a stack's name is an identifier, a gate lower case.
_STACK_GATE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*:[a-z][a-z0-9_]*")
_GATES_LOCK = threading.Lock()


def _gate(value: str | None) -> Gate | None:
    if value is None or type(value) is Gate:
        return value  # the engine's own: no enum lookup per decision
    return Gate(value)


def _action(value: str) -> Action:
    return value if type(value) is Action else Action(value)


# Not slotted: a decision the engine stamps per allowed call is made by
# `_restamped`, one dict update where slots cost one `object.__setattr__`
# per field (~3x the whole construction on CPython 3.11).
@attrs.frozen(slots=False)
class Decision:
    """
    One decision: what was decided (`action`), by which check (`gate`,
    `None` when nothing refused or asked), for which tool, why, by which
    rule, for whom (`overlay`, the attribution in force), about which
    arguments (`args_digest`, a digest of them) and when.

    `arguments` holds the bound arguments where a gate bound them (the
    same calls that have an `args_digest`, and those whose arguments could
    not be digested), as a read-only view. They stay in memory only:
    they take no part in equality or the repr, a pickled decision (and so
    a pickled `PolicyDenied`) leaves them out, and sinks write them only
    when configured to (`capscope.audit`).

    Examples:
        >>> import capscope as cs
        >>> d = cs.Decision(action="allow", gate=None, tool="fs.read", reason="within the ceiling")
        >>> d.action, d.overlay.ids(), d.arguments
        (<Action.ALLOW: 'allow'>, {}, None)
    """

    action: Action = attrs.field(converter=_action)
    gate: Gate | None = attrs.field(converter=_gate)
    tool: str
    reason: str
    rule: Any = None
    overlay: RuntimeContextOverlay = attrs.field(factory=RuntimeContextOverlay)
    args_digest: str | None = None
    time: float = attrs.field(factory=time.time)
    arguments: Mapping[str, Any] | None = attrs.field(
        default=None, eq=False, repr=False
    )

    # Why by hand: the arguments are in memory only. A decision rides on
    # every PolicyDenied, which must pickle whatever the tool was passed.
    def __getstate__(self) -> dict[str, Any]:
        state = {
            f.name: getattr(self, f.name) for f in attrs.fields(type(self))
        }
        state["arguments"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        for name, value in state.items():
            object.__setattr__(self, name, value)


# Pickled by Decision's __getstate__, which reads the fields of the subclass.
@attrs.frozen(slots=False, getstate_setstate=False)
class CommandDecision(Decision):
    """
    A decision about a shell command: a `Decision` with the risk `labels`
    found, the parsed simple commands (`segments`, each an argv tuple, after
    wrappers such as `sudo` and `env` were taken off), and the command
    line as it was typed (`line`), so that whoever reads the decision sees
    the privilege and environment the segments no longer show.

    Examples:
        >>> import capscope as cs
        >>> d = cs.CommandDecision(action="deny", gate="command", tool="shell", reason="catastrophic", labels=("catastrophic",), segments=(("rm", "-r", "-f", "/"),))
        >>> d.labels
        ('catastrophic',)
    """

    labels: tuple[str, ...] = ()
    segments: tuple[tuple[str, ...], ...] = ()
    line: str = ""


# Why a module global: subscribers are process-wide (like logging
# handlers). Copy-on-write under a lock, so emitting reads one tuple and
# never takes the lock.
_subscribers: tuple[Callable[[Decision], object], ...] = ()
_lock = threading.Lock()
# Dry runs (check_tool) decide without emitting, in their own context only.
_MUTED: ContextVar[bool] = ContextVar("capscope.events.muted", default=False)


def subscribe(fn: Callable[[Decision], object]) -> Callable[[], None]:
    """
    Call *fn* with every decision from now on; returns a function that
    unsubscribes it (calling that twice is harmless).

    Examples:
        >>> import capscope as cs
        >>> unsubscribe = cs.events.subscribe(print)
        >>> cs.events.has_subscribers()
        True
        >>> unsubscribe()
    """
    global _subscribers  # noqa: PLW0603 - see above
    if not callable(fn):
        msg = f"subscribe() takes a callable, got {fn!r}"
        raise TypeError(msg)
    with _lock:
        _subscribers = (*_subscribers, fn)

    def unsubscribe() -> None:
        global _subscribers  # noqa: PLW0603 - see above
        with _lock:
            subs = list(_subscribers)
            for index, sub in enumerate(subs):
                if sub is fn:
                    del subs[index]
                    break
            _subscribers = tuple(subs)

    return unsubscribe


def has_subscribers() -> bool:
    """
    Whether anyone listens (so an allowed call can skip building an event).

    Examples:
        >>> import capscope as cs
        >>> isinstance(cs.events.has_subscribers(), bool)
        True
    """
    return bool(_subscribers)


_new = object.__new__


def _restamped(model: Decision, overlay: RuntimeContextOverlay) -> Decision:
    """
    *model* (a plain `Decision`, built once by its own `__init__`) made
    again now, for *overlay*: equal to `Decision(...)` of the same fields,
    without running their converters and factories per call (the engine's
    decision for each allowed call).
    """
    decision: Decision = _new(Decision)
    state = decision.__dict__
    state.update(model.__dict__)
    state["overlay"] = overlay
    state["time"] = time.time()
    return decision


def emit(decision: Decision) -> None:
    """
    Hand *decision* to every subscriber. A subscriber that raises is logged
    and skipped; the decision stands.

    Examples:
        >>> import capscope as cs
        >>> cs.events.emit(cs.Decision(action="allow", gate=None, tool="t", reason="r"))
    """
    if _MUTED.get():
        return
    for fn in _subscribers:
        try:
            fn(decision)
        except Exception:  # noqa: BLE001 - a subscriber never changes a decision
            _log.exception("capscope event subscriber %r raised", fn)


@contextlib.contextmanager
def muted() -> Iterator[None]:
    """
    Emit nothing from this context for the duration of the block (dry runs
    such as `capscope.check_tool` use it).

    Examples:
        >>> import capscope as cs
        >>> seen = []
        >>> unsubscribe = cs.events.subscribe(seen.append)
        >>> with cs.events.muted():
        ...     cs.events.emit(cs.Decision(action="allow", gate=None, tool="t", reason="r"))
        >>> unsubscribe(); seen
        []
    """
    token = _MUTED.set(True)
    try:
        yield
    finally:
        _MUTED.reset(token)
