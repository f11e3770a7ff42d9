"""
The enforcement engine: the gates a decorated tool call passes, in order,
and the approval flow.

Gates (docs/design.md, "Decorators check where the body runs"): no execution policy
(fail closed) -> bridged -> tool ceiling -> capability -> side-effect level
-> paths -> argument constraints -> dynamic permissions (every frame) ->
approval rules -> autonomy -> (ask the approval handler, if anything asked)
-> the body. Every outcome is a `Decision`; refusals raise the matching
`PolicyDenied` subclass carrying it.

Arguments are bound with the signature (defaults included) only when a gate
needs them: an allowed call whose gates need no argument binds nothing.
"""

from __future__ import annotations

import enum
import inspect
import os
from collections.abc import Callable, Hashable, Mapping
from os.path import join
from types import MappingProxyType
from typing import Any, Literal, final

import attrs

from . import events
from ._ambient import (
    _EPOCH,
    CHECKING,
    FrameToken,
    checked_values,
    state_of,
)
from ._asking import call_async, call_sync
from ._current import current_overlay
from ._exceptions import (
    ActionProposed,
    ApprovalDenied,
    HumanRequired,
    NoPolicyInstalled,
    PolicyDenied,
    ToolDenied,
)
from .events import Action, Decision, Gate
from .policies import (
    AutonomyTier,
    CapabilityPolicy,
    Level,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
    ToolCall,
    check_permissions,
    needs_human,
    parse_escalation_answer,
    remember_key,
    resolve_tier,
)
from .policies._common import (
    enum_value,
    physical_path,
    physical_text,
)
from .policies.approval import REMEMBERED, ApprovalAction
from .policies.permissions import EscalationAnswer
from .policies.protocol import Verdict
from .stacks import (
    approval,
    autonomy,
    execution,
    permissions,
    trusted_depth,
)

__all__ = [
    "ApprovalDecision",
    "ApprovalRequest",
    "Gatekeeper",
    "ToolSpec",
]

#: The frame-state key of a permissions frame's grants (`{key, ...}`).
GRANTS = "capscope.permissions.granted"
#: The frame-state key of an approval frame's repeat counters.
REPEATS = "capscope.approval.repeats"

# Without an approval policy, the sensitive-path guard still applies; the
# external-path guard is left to the ceiling's roots.
_GUARDS_ONLY = ToolApprovalPolicy(allow_external_paths=True)


# Bound reads of the stacks' variables, for check()'s fast path.
execution_get = execution._get  # noqa: SLF001
approval_get = approval._get  # noqa: SLF001
permissions_get = permissions._get  # noqa: SLF001
autonomy_get = autonomy._get  # noqa: SLF001
epoch_get = _EPOCH.get

#: Bumped whenever an answer is remembered in an approval frame: a tool
#: decided by its name alone is decided again after it (see _compile).
_remembered_generation = 0

_LOST_POLICY = (
    "no execution policy is installed in this context, so tool {tool!r} is "
    "refused (fail closed). The policy was probably lost at a thread or "
    "executor boundary: carry it with capscope.to_thread, "
    "capscope.run_in_executor, capscope.ScopedExecutor, capscope.spawn or "
    "Scope.bind (or install one at the application's root, e.g. "
    "CapabilityPolicy.unrestricted())"
)


class Remember(enum.StrEnum):
    """How long an approval answer holds: this call, or this scope's frame."""

    ONCE = "once"
    SCOPE = "scope"


def _level(value: object) -> Level | None:
    return None if value is None else enum_value(Level, value, "side_effect")


@attrs.frozen
class ToolSpec:
    """
    What a decorated callable requires: its tool name, capability, side
    effect, path arguments, and whether it is bridged or needs approval.

    Examples:
        >>> import capscope as cs
        >>> spec = cs.ToolSpec("fs.write", side_effect="workspace_write", paths=("path",))
        >>> spec.side_effect, spec.writes
        (<Level.WORKSPACE_WRITE: 'workspace_write'>, True)
    """

    name: str
    capability: str | None = None
    side_effect: Level | None = attrs.field(default=None, converter=_level)
    paths: tuple[str, ...] = ()
    bridged: bool = False
    needs_approval: bool = False
    reason: str | None = None

    @property
    def writes(self) -> bool:
        """Whether its paths are written: unknown side effects count as writes."""
        return (
            self.side_effect is None
            or self.side_effect >= Level.WORKSPACE_WRITE
        )


@attrs.frozen
class ApprovalRequest:
    """
    What an approval handler is asked: the tool, its bound arguments
    (defaults included, `self`/`cls` left out), why, the rule that asked
    (or `None`), and the attribution in force.

    Examples:
        >>> import capscope as cs
        >>> cs.ApprovalRequest("deploy", {"env": "prod"}, "needs approval", None, cs.current_overlay()).tool
        'deploy'
    """

    tool: str
    arguments: Mapping[str, Any]
    reason: str
    rule: Any
    overlay: RuntimeContextOverlay


def _remember(value: object) -> Remember:
    return enum_value(Remember, value, "remember")


def _exactly_bool(
    _: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if value is not True and value is not False:
        msg = (
            f"ApprovalDecision.{attribute.name} is True or False, not a "
            f"{type(value).__name__}: {value!r:.60}"
        )
        raise TypeError(msg)


@final
@attrs.frozen
class ApprovalDecision:
    """
    A handler's answer. `remember="scope"` keeps it for the rest of the
    approval frame (same tool, same arguments); `"once"` answers this call.
    A handler may also return plain `True` or `False`; anything else is a
    denial (`"yes"`, `1`, a mapping, `None`). `allowed` is exactly `True`
    or `False`: anything else is a `TypeError` when it is built.

    Examples:
        >>> import capscope as cs
        >>> cs.ApprovalDecision.allow(remember="scope").allowed
        True
        >>> cs.ApprovalDecision.deny("not on Fridays").reason
        'not on Fridays'
    """

    allowed: bool = attrs.field(validator=_exactly_bool)
    reason: str | None = None
    remember: Remember = attrs.field(
        default=Remember.ONCE, converter=_remember
    )

    @classmethod
    def allow(
        cls,
        *,
        remember: Literal["once", "scope"] = "once",
        reason: str | None = None,
    ) -> ApprovalDecision:
        """Grant the call (and, with `remember="scope"`, its repeats)."""
        return cls(True, reason, remember)  # noqa: FBT003 - the field

    @classmethod
    def deny(
        cls,
        reason: str | None = None,
        *,
        remember: Literal["once", "scope"] = "once",
    ) -> ApprovalDecision:
        """Refuse the call (and, with `remember="scope"`, its repeats)."""
        return cls(False, reason, remember)  # noqa: FBT003 - the field


@attrs.define
class _Pending:
    """A call that passed every gate but must still be approved."""

    call: ToolCall
    key: str | None
    reason: str
    rule: Any
    policy: ToolApprovalPolicy | None
    #: which gate asked: approval rules, autonomy, or a stack's check hook
    gate: Gate = Gate.APPROVAL


def stack_checks(call: ToolCall) -> tuple[Gate, Verdict] | None:
    """
    The `check` hooks of the stacks that have a frame here, on *call*, in
    the order the stacks were made: the first deny, else the first ask
    (`None`: no objection), with its namespaced gate. A hook that raises,
    or answers anything but a `Verdict` or `None`, denies (fail closed).
    """
    asked = None
    for stack, value in checked_values():
        try:
            verdict = stack.check(value, call)  # type: ignore[misc]
            if verdict is not None and not isinstance(verdict, Verdict):
                msg = f"answered {type(verdict).__name__}, not a Verdict"
                raise TypeError(msg)  # noqa: TRY301 - one refusal path
        except Exception as exc:  # noqa: BLE001 - a failing check refuses
            verdict = Verdict.deny(
                f"the {stack.name!r} stack's check failed: {exc!r:.120}",
                gate="check_failed",
            )
        if verdict is None or verdict.action is ApprovalAction.ALLOW:
            continue
        found = (Gate(f"{stack.name}:{verdict.gate}"), verdict)
        if verdict.action is ApprovalAction.DENY:
            return found
        asked = asked or found
    return asked


def _stacks_checked(
    call: ToolCall,
    key: str | None,
    ap: ToolApprovalPolicy | None,
    pending: _Pending | None,
) -> _Pending | None:
    """The stacks' checks on a tool call: a deny raises, an ask asks."""
    found = stack_checks(call)
    if found is None:
        return pending
    gate, verdict = found
    if verdict.action is ApprovalAction.DENY:
        raise _refuse(
            ToolDenied,
            gate,
            call.tool,
            verdict.reason,
            arguments=call.arguments,
        )
    return pending or _Pending(call, key, verdict.reason, None, ap, gate)


def _digest(key: str | None) -> str | None:
    return None if key is None else key.rpartition(":")[2]


def _known_roots(
    ceiling: CapabilityPolicy, *, writes: bool
) -> tuple[str, ...] | None:
    """
    The roots the approval policy's external-path guard counts as inside:
    the ceiling's workspace roots, and for a tool that only reads, its
    read-only roots too (`None`: neither is set; the guard uses the cwd).
    """
    roots = ceiling.workspace_roots
    if writes or not ceiling.read_only_roots:
        return roots
    return (*(roots or ()), *ceiling.read_only_roots)


def _decision(  # noqa: PLR0913 - a decision's fields, rule and key by keyword
    action: Action,
    gate: Gate | None,
    tool: str,
    reason: str,
    *,
    rule: Any = None,
    key: str | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> Decision:
    """
    A decision stamped with the overlay in force. *key* and *arguments*
    come from a call whose arguments a gate bound: the digest (of *key*,
    or else made from *arguments*), and the values as a read-only view (subscribers run before later gates
    read the same mapping, and must not be able to change it).
    """
    return Decision(
        action=action,
        gate=gate,
        tool=tool,
        reason=reason,
        rule=rule,
        overlay=current_overlay(),
        # A gate that needed no key for itself left it to be made here.
        args_digest=_digest(
            key
            if key is not None or arguments is None
            else remember_key(tool, arguments)
        ),
        arguments=None if arguments is None else MappingProxyType(arguments),
    )


def _refuse(  # noqa: PLR0913 - a decision's fields, rule and key by keyword
    exc: type[PolicyDenied],
    gate: Gate,
    tool: str,
    reason: str,
    *,
    rule: Any = None,
    key: str | None = None,
    arguments: Mapping[str, Any] | None = None,
) -> PolicyDenied:
    decision = _decision(
        Action.DENY,
        gate,
        tool,
        reason,
        rule=rule,
        key=key,
        arguments=arguments,
    )
    events.emit(decision)
    return exc(reason, decision)


def _in_force(under: _Frames) -> bool:
    """
    Whether the frames *under* holds are the frames in force here, and no
    stack with a `check` hook has a frame. Remembered answers live in an
    approval frame's state: without one, neither their generation nor the
    epoch can change a verdict.
    """
    frame = execution_get()
    return (
        frame is not None
        and under[0] is frame[0]
        and under[1] is approval_get()
        and under[2] is permissions_get()
        and under[3] is autonomy_get()
        and (
            under[1] is None
            or (under[4] == _remembered_generation and under[5] is epoch_get())
        )
        and not (CHECKING and checked_values())
    )


def _permission_frames(top: FrameToken) -> list[Any]:
    """The permissions frames' policies, outermost first."""
    policies = []
    frame: FrameToken | None = top
    while frame is not None:
        policies.append(frame[0])
        frame = frame[1]
    policies.reverse()
    return policies


#: Argument values whose equality is their JSON's, as `remember_key` reads
#: them: `1 == True`, so the type goes into the key too. Not floats:
#: `0.0 == -0.0` (and a NaN object is found by identity) while their JSON,
#: hence their remembered answers, differ.
_ATOMS = frozenset({str, int, bool, type(None)})


def _arguments_key(
    args: tuple[Any, ...], kwargs: dict[str, Any]
) -> Hashable | None:
    """
    A call's arguments as a key, when every value is a plain atom (the
    same key means the same bound arguments); `None` otherwise. The
    shapes differ in length, so keys of different shapes never meet.
    """
    if not kwargs and len(args) == 1:  # the common call, without a tuple
        kind = type(args[0])
        return (args, kind) if kind in _ATOMS else None
    types = tuple(map(type, args))
    if not _ATOMS.issuperset(types):
        return None
    if kwargs:
        items = tuple(sorted(kwargs.items()))
        kinds = tuple(type(v) for _, v in items)
        if not _ATOMS.issuperset(kinds):
            return None
        return args, types, items, kinds
    return args, types, None


class _NotAPath(ValueError):
    """A path argument holding something that is not a path."""


def _paths_of(name: str, value: object) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str | os.PathLike):
        return (os.fspath(value),)
    if isinstance(value, list | tuple):
        return tuple(p for item in value for p in _paths_of(name, item))
    msg = f"path argument {name!r} is {value!r}, not a path"
    raise _NotAPath(msg)


def _path_text(
    index: int, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> str | None:
    """
    `_key_text` of the path argument at *index* in *args* (-1 and below:
    keyword only) or named *name* in *kwargs*; `None` also when only
    binding can tell (given twice, left to its default).
    """
    if 0 <= index < len(args):
        return None if name in kwargs else _key_text(args[index])
    return _key_text(kwargs.get(name))


def _key_text(value: object) -> str | None:
    """
    A path argument as the paths fast path keys it: one path, exactly a
    `str` (a subclass could compare equal to a spelling it is not) or a
    path object's, usable and without `~`; `None` for anything else (a
    list of paths, `None`, bytes, ...): the gates decide such a call.
    """
    if type(value) is not str:  # (tested first: a str is no PathLike)
        if not isinstance(value, os.PathLike):
            return None
        value = os.fspath(value)
        if type(value) is not str:
            return None
    if not value or value[0] == "~" or "\0" in value:
        return None
    return value


def _cwd() -> str | None:
    """The working directory (physical), or `None` when it is gone."""
    try:
        return os.getcwd()  # noqa: PTH109 - hot path
    except OSError:
        return None


def _spelled(text: str, cwd: str) -> str:
    """
    *text* (a `_key_text`) made absolute against *cwd*, as it is spelled:
    the key `_learn_paths` keeps a path under. Its `lexical_path` against
    the same *cwd* is a function of this alone.
    """
    return text if text.startswith("/") else join(cwd, text)  # noqa: PTH118


#: A ceiling's verdict on a tool alone: `(gate, reason)` or `None`.
_Refusal = tuple[str, str] | None
#: What a tool allowed by its name alone was allowed under: the ceiling,
#: the approval, permissions and autonomy frames (tokens: each push makes
#: a new one), the generation of remembered answers, and the epoch (whose
#: frame state holds them).
_Frames = tuple[
    CapabilityPolicy,
    FrameToken | None,
    FrameToken | None,
    FrameToken | None,
    int,
    object,
]
#: The paths of one call: each as spelled, made absolute, and resolved.
_PathsKey = tuple[tuple[str, str], ...]
#: How many ceilings' verdicts a gatekeeper keeps.
_SEEN = 16
#: How many calls' paths a gatekeeper keeps per frames (`_learn_paths`).
_PATHS_SEEN = 1024


class Gatekeeper:
    """
    The gates of one decorated callable. Built once at decoration time; it
    caches the callable's signature for lazy argument binding.
    """

    __slots__ = (
        "_allowed",
        "_fn",
        "_path_slots",
        "_seen",
        "_signature",
        "_var_keyword",
        "allowed_calls",
        "allowed_paths",
        "allowed_under",
        "plain",
        "spec",
    )

    def __init__(self, spec: ToolSpec, fn: Callable[..., Any]) -> None:
        self.spec = spec
        self._fn = fn
        self._signature: inspect.Signature | None = None
        self._var_keyword: str | None = None
        # Whether a call can ever be decided without its arguments.
        self.plain = not (spec.paths or spec.bridged)
        # What each allowed call emits, restamped (`events._restamped`).
        self._allowed = Decision(
            action=Action.ALLOW, gate=None, tool=spec.name, reason="allowed"
        )
        # The engine's caches, bounded, never on a policy: the verdicts of
        # the argument-free gates under the last few ceilings (held, so an
        # id is never reused while cached), and the frames under which the
        # last call was allowed by the tool's name alone (the fast path).
        self._seen: dict[int, tuple[CapabilityPolicy, _Refusal]] = {}
        self.allowed_under: _Frames | None = None
        # ... and the arguments of calls allowed under the frames in force
        # when they were (a remembered answer, say): see _remember_call.
        self.allowed_calls: tuple[_Frames, set[Hashable]] | None = None
        # ... and, for a tool with paths, the paths (as spelled and as
        # resolved, per call; with the cwd, when a guard reads it) allowed
        # under the frames in force, and whether a guard reads the cwd
        # there: see _learn_paths. Where each path argument sits
        # (`_path_slots`).
        self.allowed_paths: (
            tuple[_Frames, bool, set[tuple[_PathsKey, str | None]]] | None
        ) = None
        self._path_slots: tuple[tuple[int, str], ...] | None = None

    # -- arguments ------------------------------------------------------------

    def _bind(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        sig = self._signature
        if sig is None:
            try:
                sig = inspect.signature(self._fn)
            except (TypeError, ValueError):
                sig = inspect.Signature()
            self._var_keyword = next(
                (
                    p.name
                    for p in sig.parameters.values()
                    if p.kind is p.VAR_KEYWORD
                ),
                None,
            )
            self._signature = sig
        # The decorators hand the instance (self or cls) to the function's
        # first parameter; it is never part of the arguments.
        if instance is not None:
            bound = sig.bind(instance, *args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
            del arguments[next(iter(sig.parameters))]
        else:
            bound = sig.bind(*args, **kwargs)
            bound.apply_defaults()
            arguments = dict(bound.arguments)
        if self._var_keyword is not None:
            # **kwargs arguments are arguments like any other.
            arguments.update(arguments.pop(self._var_keyword, {}))
        return arguments

    def _call(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> ToolCall:
        spec = self.spec
        arguments = self._bind(instance, args, kwargs)
        paths: tuple[str, ...] = ()
        for name in spec.paths:
            try:
                paths += _paths_of(name, arguments.get(name))
            except _NotAPath as exc:  # refused as any gate refuses: a decision
                raise _refuse(
                    ToolDenied,
                    Gate.WORKSPACE_BOUNDARY,
                    spec.name,
                    str(exc),
                    arguments=arguments,
                ) from None
        # One working directory and one resolution per path per call,
        # for every gate.
        cwd = _cwd() if paths else None
        return ToolCall(
            spec.name,
            arguments,
            paths=paths,
            write=spec.writes,
            capability=spec.capability,
            side_effect=spec.side_effect,
            resolved=tuple(physical_path(p, cwd) for p in paths),
            cwd=cwd,
        )

    # -- the gates --------------------------------------------------------------

    def _evaluate(
        self,
        instance: object,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        *,
        dry_run: bool = False,
    ) -> _Pending | Decision | None:
        """
        Run every gate up to the handler. Raises on a refusal (the decision
        attached); returns `_Pending` when a handler must be asked, `None`
        when the call may go ahead. In a dry run, a proposal is returned as
        its `Decision` instead of raised.
        """
        spec = self.spec
        tool = spec.name
        generation = _remembered_generation  # before anything is decided
        ceiling = execution.top()
        if ceiling is None:
            raise _refuse(
                NoPolicyInstalled,
                Gate.NO_POLICY,
                tool,
                _LOST_POLICY.format(tool=tool),
            )
        if spec.bridged and trusted_depth.value == 0:
            reason = (
                f"bridged tool {tool!r} may only run inside capscope.trusted() "
                "while an execution policy is active"
            )
            raise _refuse(ToolDenied, Gate.BRIDGE, tool, reason)

        # Gates that need no arguments (cached per ceiling: policies are
        # immutable), then those that do (binding lazily).
        refusal = self._argument_free(ceiling)
        if refusal is not None:
            raise _refuse(ToolDenied, Gate(refusal[0]), tool, refusal[1])
        ap = approval.top()
        perm_top: FrameToken | None = permissions._get()  # noqa: SLF001
        checked = checked_values() if CHECKING else None
        needs_args = bool(
            spec.paths
            or ceiling.tool_arg_constraints
            or perm_top is not None
            or ap is not None
            or spec.needs_approval
            or checked
        )
        call: ToolCall | None = None
        key: str | None = None
        pending: _Pending | None = None
        if needs_args:
            call = self._call(instance, args, kwargs)
            # The key finds remembered answers, grants, repeat counts and
            # stack state: without those frames nothing reads it but a
            # refusal's digest, which `_decision` makes when it refuses.
            keyed = ap is not None or perm_top is not None or bool(checked)
            key = remember_key(tool, call.arguments) if keyed else None
            pending = self._argument_gates(
                call, key, ceiling, ap, perm_top, dry_run=dry_run
            )
            # The stacks' own checks: after every gate of the policies,
            # before autonomy and before any person is asked.
            if checked:
                pending = _stacks_checked(call, key, ap, pending)
        asks = self._check_autonomy(call, key, dry_run=dry_run)
        if isinstance(asks, Decision):
            return asks  # a proposal, in a dry run
        if asks and pending is None:
            if call is None:
                call = self._call(instance, args, kwargs)
                key = remember_key(tool, call.arguments)
            reason = (
                f"autonomy tier act_with_approval: {tool!r} needs approval"
            )
            pending = _Pending(call, key, reason, None, ap)
        if pending is None and not asks and not dry_run:
            self._learn(
                ceiling, ap, perm_top, call, generation, (args, kwargs)
            )
        return pending

    def _learn(  # noqa: PLR0913, PLR0917 - what the gates read, once
        self,
        ceiling: CapabilityPolicy,
        ap: ToolApprovalPolicy | None,
        perm_top: FrameToken | None,
        call: ToolCall | None,
        generation: int,
        arguments: tuple[tuple[Any, ...], dict[str, Any]],
    ) -> None:
        """After an allowed call: what the fast paths may decide next."""
        if not self.plain:
            if call is not None and not self.spec.bridged:
                self._learn_paths(ceiling, ap, perm_top, call, generation)
        elif not self._compile(ceiling, ap, perm_top, generation):
            self._remember_call(ap, perm_top, call, generation, *arguments)

    def _compile(
        self,
        ceiling: CapabilityPolicy,
        ap: ToolApprovalPolicy | None,
        perm_top: FrameToken | None,
        generation: int,
    ) -> bool:
        """
        After a call was allowed: when every gate would allow any call of
        this tool under the same frames, whatever its arguments
        (`_by_name`), remember the frames, so that the next call there is
        decided by the fast path. Returns whether it did.
        """
        if not self._by_name(ceiling, ap, perm_top):
            return False
        self.allowed_under = self._in_force(generation)
        return True

    def _by_name(
        self,
        ceiling: CapabilityPolicy,
        ap: ToolApprovalPolicy | None,
        perm_top: FrameToken | None,
    ) -> bool:
        """
        Whether every gate but the path guards gives a call of this tool
        the verdict it gave the last one under the same frames, whatever
        its arguments. Each gate proves it or the answer is no: the ceiling
        has no argument constraint, the approval rules and the permission
        rules that name the tool read no argument (and allow it), no
        answer for the tool is remembered, no stack checks calls.
        """
        spec = self.spec
        if ceiling.tool_arg_constraints or (CHECKING and checked_values()):
            return False
        call = ToolCall(
            spec.name, capability=spec.capability, side_effect=spec.side_effect
        )
        if ap is not None:
            if not ap.decides_by_name(call):
                return False
            remembered = approval.frame_state().get(REMEMBERED) or ()
            if any(k.rpartition(":")[0] == spec.name for k in remembered):
                return False
        if perm_top is not None:
            policies = _permission_frames(perm_top)
            if not all(p.decides_by_name(call) for p in policies):
                return False
            if check_permissions(policies, call) is not None:
                return False  # allowed by a grant: not by the name alone
        return True

    def _learn_paths(
        self,
        ceiling: CapabilityPolicy,
        ap: ToolApprovalPolicy | None,
        perm_top: FrameToken | None,
        call: ToolCall,
        generation: int,
    ) -> None:
        """
        After an allowed call of a tool with paths: when every gate but
        the path guards decides by the name alone (`_by_name`), the
        verdict under the same frames is a function of the paths' forms
        (each as spelled, made absolute, and as the gates resolved it),
        so remember this call's forms. The next call whose paths, resolved
        again then, have the same forms is allowed without the gates
        (`_fast_allowed_paths`); nothing about the file system is kept
        across calls. When the external-path guard measures against the
        working directory (no roots), the cwd the gates read (`call.cwd`)
        is part of what is remembered, and read again for the next call.
        """
        spec = self.spec
        slots = self._slots()
        policy = ap if ap is not None else _GUARDS_ONLY
        reads_cwd = (
            not policy.allow_external_paths
            and _known_roots(ceiling, writes=spec.writes) is None
        )
        cwd = call.cwd
        if (
            slots is None
            or cwd is None
            or not self._by_name(ceiling, ap, perm_top)
        ):
            return
        # Each path argument one path, keyed as the fast path keys it.
        texts = tuple(_key_text(call.arguments.get(n)) for _, n in slots)
        if texts != call.paths:  # (no path equals None)
            return
        forms = []
        for text, real in zip(call.paths, call.physical_paths(), strict=True):
            if real is None:
                return  # refused, in fact: never allowed
            forms.append((_spelled(text, cwd), real))
        under = self._in_force(generation)
        cached = self.allowed_paths
        if (
            cached is None
            or cached[0] != under
            or len(cached[2]) >= _PATHS_SEEN
        ):
            cached = self.allowed_paths = (under, reads_cwd, set())
        cached[2].add((tuple(forms), cwd if reads_cwd else None))

    def _slots(self) -> tuple[tuple[int, str], ...] | None:
        """
        `(position, name)` of each path argument among the function's
        parameters (position -1: keyword only), or `None` when one could
        come another way (`*args`, `**kwargs`, positional only): then
        only binding finds it.
        """
        if self._path_slots is None and self._signature is not None:
            params = list(self._signature.parameters.values())
            if any(
                p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in params
            ):
                self._path_slots = ()
            else:
                slots: list[tuple[int, str]] = []
                for name in self.spec.paths:
                    index = next(
                        (i for i, p in enumerate(params) if p.name == name),
                        None,
                    )
                    if index is None or params[index].kind is (
                        inspect.Parameter.POSITIONAL_ONLY
                    ):
                        slots = []
                        break
                    keyword = (
                        params[index].kind is inspect.Parameter.KEYWORD_ONLY
                    )
                    slots.append((-1 if keyword else index, name))
                self._path_slots = tuple(slots)
        return self._path_slots or None

    def _fast_allowed_paths(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        """
        The fast path for a tool with paths (`_learn_paths`): the frames
        are those in force then, and the call's paths, resolved now, have
        the forms of a call allowed there.
        """
        cached = self.allowed_paths
        slots = self._path_slots
        if cached is None or not slots or not _in_force(cached[0]):
            return False
        offset = 0 if instance is None else 1  # the instance is parameter 0
        texts = []
        relative = False
        for position, name in slots:
            text = _path_text(position - offset, name, args, kwargs)
            if text is None:
                return False  # the gates say why
            relative = relative or text[0] != "/"
            texts.append(text)
        # One working directory for the call, as the gates read it: read
        # when a path is relative or the guard measures against it.
        cwd = None
        if cached[1] or relative:
            cwd = _cwd()
            if cwd is None:
                return False
        forms = []
        for text in texts:
            spelled = text if cwd is None else _spelled(text, cwd)
            real = physical_text(spelled)  # as the gates resolve it, now
            if real is None:
                return False
            forms.append((spelled, real))
        if (tuple(forms), cwd if cached[1] else None) not in cached[2]:
            return False
        if events._subscribers:  # noqa: SLF001 - has_subscribers(), inlined
            self.emit_allowed()
        return True

    def _in_force(self, generation: int) -> _Frames:
        """The frames in force now, as `allowed_under` holds them."""
        frame = execution_get()
        assert frame is not None  # noqa: S101 - an allowed call has one
        return (
            frame[0],
            approval_get(),
            permissions_get(),
            autonomy_get(),
            generation,
            epoch_get(),
        )

    def _remember_call(  # noqa: PLR0913, PLR0917 - what the gates read, once
        self,
        ap: ToolApprovalPolicy | None,
        perm_top: FrameToken | None,
        call: ToolCall | None,
        generation: int,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
    ) -> None:
        """
        After a call the tool's name alone did not decide was allowed
        (say, by a remembered answer): remember its arguments for the
        frames in force, when the same arguments are sure to be allowed
        again there. They are when nothing the gates read changes between
        calls: plain values as arguments, no path (the file system
        changes), no repeat limit (it counts), no grant (an escalation
        answers once), no stack check (its state is its own); remembered
        answers and frames are part of the key.
        """
        key = _arguments_key(args, kwargs)
        if (
            key is None
            or call is None
            or (ap is not None and ap.repeat_limit is not None)
            or (CHECKING and checked_values())
            or (
                perm_top is not None
                and check_permissions(_permission_frames(perm_top), call)
                is not None
            )
        ):
            return
        under = self._in_force(generation)
        cached = self.allowed_calls
        if cached is None or cached[0] != under or len(cached[1]) >= _SEEN:
            cached = self.allowed_calls = (under, set())
        cached[1].add(key)

    def _fast_allowed_call(
        self, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> bool:
        """The fast path for arguments `_remember_call` remembered."""
        cached = self.allowed_calls
        if cached is None:
            return False
        under, keys = cached
        if not _in_force(under) or _arguments_key(args, kwargs) not in keys:
            return False
        if events._subscribers:  # noqa: SLF001 - has_subscribers(), inlined
            self.emit_allowed()
        return True

    def _argument_free(self, ceiling: CapabilityPolicy) -> _Refusal:
        """The ceiling's verdict on the tool alone (cached, bounded)."""
        seen = self._seen
        hit = seen.get(id(ceiling))
        if hit is not None and hit[0] is ceiling:
            refusal = hit[1]
        else:
            spec = self.spec
            refusal = ceiling.check(
                ToolCall(
                    spec.name,
                    capability=spec.capability,
                    side_effect=spec.side_effect,
                )
            )
            if len(seen) >= _SEEN:
                seen.clear()  # atomic, unlike evicting one by one
            seen[id(ceiling)] = (ceiling, refusal)
        return refusal

    def _argument_gates(  # noqa: PLR0913 - the stacks' values, read once
        self,
        call: ToolCall,
        key: str | None,
        ceiling: CapabilityPolicy,
        ap: ToolApprovalPolicy | None,
        perm_top: FrameToken | None,
        *,
        dry_run: bool,
    ) -> _Pending | None:
        """The gates that read the arguments: paths, constraints,
        permissions, approval rules (the tool itself passed the ceiling in
        `_argument_free` already).
        """
        refusal = ceiling.check_arguments(call)
        if refusal is not None:
            raise _refuse(
                ToolDenied,
                Gate(refusal[0]),
                call.tool,
                refusal[1],
                key=key,
                arguments=call.arguments,
            )
        if perm_top is not None:
            self._check_permissions(perm_top, call, key, dry_run=dry_run)
        return self._check_approval(ap, ceiling, call, key, dry_run=dry_run)

    def _check_permissions(
        self,
        top: FrameToken,
        call: ToolCall,
        key: str | None,
        *,
        dry_run: bool,
    ) -> None:
        chain: list[FrameToken] = []
        frame: FrameToken | None = top
        while frame is not None:
            chain.append(frame)
            frame = frame[1]
        chain.reverse()
        policies = [f[0] for f in chain]

        escalated: set[int] = set()  # frames whose escalation granted

        def granted(index: int, _policy: object) -> bool:
            if index in escalated:
                return True
            grants = state_of(chain[index]).get(GRANTS)
            return key is not None and grants is not None and key in grants

        # Any deny wins: a frame's escalation answers for that frame only,
        # and every other frame, inner ones included, is still asked.
        while denial := check_permissions(policies, call, granted=granted):
            index, verdict = denial
            policy = policies[index]
            answer = None
            if policy.on_escalation is not None and not dry_run:
                answer = parse_escalation_answer(
                    _safe_call(policy.on_escalation, call)
                )
            if answer is None:
                raise _refuse(
                    ToolDenied,
                    Gate.DYNAMIC_PERMISSION,
                    call.tool,
                    verdict.reason,
                    rule=verdict.rule,
                    key=key,
                    arguments=call.arguments,
                )
            escalated.add(index)
            if answer is EscalationAnswer.FRAME and key is not None:
                state_of(chain[index]).setdefault(GRANTS, set()).add(key)
            if events.has_subscribers():
                events.emit(
                    _decision(
                        Action.GRANTED,
                        Gate.DYNAMIC_PERMISSION,
                        call.tool,
                        f"escalation granted ({answer.value})",
                        rule=verdict.rule,
                        key=key,
                        arguments=call.arguments,
                    )
                )

    def _check_approval(
        self,
        ap: ToolApprovalPolicy | None,
        ceiling: CapabilityPolicy,
        call: ToolCall,
        key: str | None,
        *,
        dry_run: bool,
    ) -> _Pending | None:
        spec = self.spec
        policy = ap if ap is not None else _GUARDS_ONLY
        remembered = None
        repeats = 0
        if ap is not None:
            state = approval.frame_state()
            remembered = state.get(REMEMBERED)
            if ap.repeat_limit is not None and key is not None:
                counts = state.setdefault(REPEATS, {})
                repeats = counts.get(key, 0)
                if not dry_run:
                    counts[key] = repeats + 1
        evaluation = policy.evaluate(
            call,
            remembered=remembered,
            remember_key=key,
            implicit_ask=spec.needs_approval,
            repeat_count=repeats,
            workspace_roots=_known_roots(ceiling, writes=spec.writes),
        )
        if evaluation.action is ApprovalAction.ALLOW:
            return None
        if evaluation.action is ApprovalAction.DENY:
            gate = Gate(evaluation.gate)
            exc = ApprovalDenied if gate is Gate.APPROVAL else ToolDenied
            raise _refuse(
                exc,
                gate,
                call.tool,
                evaluation.reason,
                rule=evaluation.rule,
                key=key,
                arguments=call.arguments,
            )
        reason = spec.reason or evaluation.reason
        return _Pending(call, key, reason, evaluation.rule, ap)

    def _check_autonomy(
        self, call: ToolCall | None, key: str | None, *, dry_run: bool
    ) -> Decision | bool:
        """
        The autonomy gate: raises for requires-human and for a proposal
        (returned instead in a dry run); True when the tier asks for
        approval (act_with_approval), False when it lets the call go.
        """
        spec = self.spec
        policy = autonomy.top()
        if policy is None or (
            spec.side_effect is not None
            and spec.side_effect <= Level.READ_ONLY
        ):
            return False
        tool = spec.name
        # *call* is None when no gate bound the arguments (nor *key*, then).
        arguments = None if call is None else call.arguments
        if needs_human(policy, tool):
            reason = f"the autonomy policy requires a human to take {tool!r}"
            raise _refuse(
                HumanRequired,
                Gate.AUTONOMY,
                tool,
                reason,
                key=key,
                arguments=arguments,
            )
        tier = resolve_tier(policy, tool)
        if tier in (AutonomyTier.SUGGEST, AutonomyTier.SHADOW):
            reason = (
                f"autonomy tier {tier.value}: {tool!r} was proposed, not run"
            )
            decision = _decision(
                Action.PROPOSED,
                Gate.AUTONOMY,
                tool,
                reason,
                key=key,
                arguments=arguments,
            )
            if dry_run:
                return decision
            events.emit(decision)
            raise ActionProposed(reason, decision)
        return tier is AutonomyTier.ACT_WITH_APPROVAL

    # -- entry points -----------------------------------------------------------

    def emit_allowed(self) -> None:
        events.emit(events._restamped(self._allowed, current_overlay()))  # noqa: SLF001

    def _fast_allowed(self) -> bool:
        """
        The fast path: the frames in force are those under which the tool
        was last allowed by its name alone (`_compile`), and no stack with
        a `check` hook has a frame (`_in_force`): a few context-variable reads
        and identity tests.
        """
        under = self.allowed_under
        if under is None or not _in_force(under):
            return False
        if events._subscribers:  # noqa: SLF001 - has_subscribers(), inlined
            self.emit_allowed()
        return True

    def check(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Run the gates for a synchronous call; ask a sync handler if needed."""
        if self._fast_allowed() or self._fast_allowed_call(args, kwargs):
            return
        self.check_gates(instance, args, kwargs)

    def check_gates(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """`check` past the fast paths (the decorators try them first)."""
        if self.allowed_paths is not None and self._fast_allowed_paths(
            instance, args, kwargs
        ):
            return
        pending = self._evaluate(instance, args, kwargs)
        if pending is None:
            if events.has_subscribers():
                self.emit_allowed()
            return
        assert isinstance(pending, _Pending)  # noqa: S101 - not a dry run
        _settle(pending, _ask_sync(pending))

    async def acheck(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        """Run the gates for an async call; await the handler if needed."""
        if (
            self._fast_allowed()
            or self._fast_allowed_call(args, kwargs)
            or (
                self.allowed_paths is not None
                and self._fast_allowed_paths(instance, args, kwargs)
            )
        ):
            return
        pending = self._evaluate(instance, args, kwargs)
        if pending is None:
            if events.has_subscribers():
                self.emit_allowed()
            return
        assert isinstance(pending, _Pending)  # noqa: S101 - not a dry run
        _settle(pending, await _ask_async(pending))

    def dry_run(
        self, instance: object, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> Decision:
        """The decision, without running, asking or emitting anything."""
        with events.muted():
            try:
                outcome = self._evaluate(instance, args, kwargs, dry_run=True)
            except PolicyDenied as exc:
                decision = exc.decision
                # Ours carry one; a refusal raised without one is a refusal.
                outcome = (
                    decision
                    if isinstance(decision, Decision)
                    else _decision(Action.DENY, None, self.spec.name, str(exc))
                )
        if outcome is None:
            return _decision(Action.ALLOW, None, self.spec.name, "allowed")
        if isinstance(outcome, Decision):
            return outcome
        return _decision(
            Action.ASK,
            outcome.gate,
            self.spec.name,
            outcome.reason,
            rule=outcome.rule,
            key=outcome.key,
            arguments=outcome.call.arguments,
        )


# -- asking ---------------------------------------------------------------------

_Answer = tuple[bool, str, Remember]


def _safe_call(fn: Callable[..., Any], *args: Any) -> Any:
    try:
        result = fn(*args)
    except Exception:  # noqa: BLE001 - an escalation that fails denies
        return None
    if inspect.isawaitable(result):
        close = getattr(result, "close", None)
        if close is not None:
            close()
        return None
    return result


def _request(pending: _Pending) -> ApprovalRequest:
    return ApprovalRequest(
        pending.call.tool,
        dict(pending.call.arguments),
        pending.reason,
        pending.rule,
        current_overlay(),
    )


def read_answer(answer: object, who: str = "the handler") -> _Answer:
    """
    A handler's or consent hook's answer as `(granted, reason, remember)`.

    Only `True` and an `ApprovalDecision` whose `allowed` is `True` grant;
    `False` and `ApprovalDecision.deny()` refuse; anything else (a word, a
    number, a mapping, `None`, a mock) refuses with a reason naming its
    type. Tools and commands read answers alike.

    Examples:
        >>> from capscope._enforce import read_answer
        >>> read_answer(True)[0], read_answer("yes")[:2]
        (True, (False, "the handler's answer is a str ('yes'), not True, False or an ApprovalDecision"))
    """
    if answer is True:
        return True, f"approved by {who}", Remember.ONCE
    if answer is False:
        return False, f"denied by {who}", Remember.ONCE
    if isinstance(answer, ApprovalDecision) and (
        answer.allowed is True or answer.allowed is False
    ):
        verdict = "approved" if answer.allowed else "denied"
        return (
            answer.allowed,
            answer.reason or f"{verdict} by {who}",
            answer.remember,
        )
    return (
        False,
        (
            f"{who}'s answer is a {type(answer).__name__} ({answer!r:.40}), "
            "not True, False or an ApprovalDecision"
        ),
        Remember.ONCE,
    )


def _emit_ask(pending: _Pending) -> None:
    if events.has_subscribers():
        events.emit(
            _decision(
                Action.ASK,
                pending.gate,
                pending.call.tool,
                pending.reason,
                rule=pending.rule,
                key=pending.key,
                arguments=pending.call.arguments,
            )
        )


def _unavailable(pending: _Pending) -> PolicyDenied:
    reason = (
        f"tool {pending.call.tool!r} needs approval ({pending.reason}) but no "
        "approval handler is installed"
    )
    return _refuse(
        ApprovalDenied,
        Gate.APPROVAL_UNAVAILABLE,
        pending.call.tool,
        reason,
        rule=pending.rule,
        key=pending.key,
        arguments=pending.call.arguments,
    )


def _ask_sync(pending: _Pending) -> _Answer:
    handlers, request, timeout = _asking_for(pending)
    answers = []
    for handler in handlers:
        try:
            answer = call_sync(handler, request, seconds=timeout)
        except TimeoutError:
            return _timed_out(timeout)
        except Exception as exc:  # noqa: BLE001 - a failing handler denies
            return _raised(exc)
        answers.append(read_answer(answer))
        if not answers[-1][0]:
            break
    return _together(answers)


async def _ask_async(pending: _Pending) -> _Answer:
    handlers, request, timeout = _asking_for(pending)
    answers = []
    for handler in handlers:
        try:
            answer = await call_async(handler, request, seconds=timeout)
        except TimeoutError:
            return _timed_out(timeout)
        except Exception as exc:  # noqa: BLE001 - a failing handler denies
            return _raised(exc)
        answers.append(read_answer(answer))
        if not answers[-1][0]:
            break
    return _together(answers)


def _together(answers: list[_Answer]) -> _Answer:
    """Every handler's answer as one: the first refusal, else a grant
    remembered for the scope only if every handler said so.
    """
    for answer in answers:
        if not answer[0]:
            return answer
    scope = all(remember is Remember.SCOPE for _, _, remember in answers)
    return True, answers[-1][1], Remember.SCOPE if scope else Remember.ONCE


def _asking_for(
    pending: _Pending,
) -> tuple[tuple[Callable[..., Any], ...], ApprovalRequest, float | None]:
    """Every handler to ask (all must grant), the request and the time
    limit; emits the ask.
    """
    policy = pending.policy
    if policy is None or not policy.handlers:
        raise _unavailable(pending)
    _emit_ask(pending)
    return policy.handlers, _request(pending), policy.timeout


def _timed_out(timeout: float | None) -> _Answer:
    reason = f"the approval handler timed out after {timeout:g} s"
    return False, reason, Remember.ONCE


def _raised(exc: Exception) -> _Answer:
    return False, f"the approval handler raised {exc!r:.80}", Remember.ONCE


def _settle(pending: _Pending, answer: _Answer) -> None:
    global _remembered_generation  # noqa: PLW0603 - see its comment
    allowed, reason, remember = answer
    tool = pending.call.tool
    if (
        remember is Remember.SCOPE
        and pending.key is not None
        and pending.policy is not None
    ):
        _remembered_generation += 1
        approval.frame_state().setdefault(REMEMBERED, {})[pending.key] = (
            "allow" if allowed else "deny"
        )
    if not allowed:
        raise _refuse(
            ApprovalDenied,
            Gate.APPROVAL,
            tool,
            reason,
            rule=pending.rule,
            key=pending.key,
            arguments=pending.call.arguments,
        )
    if events.has_subscribers():
        events.emit(
            _decision(
                Action.GRANTED,
                Gate.APPROVAL,
                tool,
                reason,
                rule=pending.rule,
                key=pending.key,
                arguments=pending.call.arguments,
            )
        )
