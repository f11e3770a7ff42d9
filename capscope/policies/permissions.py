"""
Dynamic permissions: allow and deny rules on tool calls and their
arguments, held by the "permissions" stack.

The stack is COPY and **every frame is evaluated**, outer to inner; the
first frame that denies decides. A push therefore only adds constraints
and needs no `intersect`: an inner allow never overrides an outer deny.
A frame's denial can be lifted for that frame only by a grant (an answer
to an escalation), which the enforcement layer remembers and reports
through `check_permissions(..., granted=...)`.
"""

from __future__ import annotations

import enum
import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Self, TypeAlias, final

import attrs

from .._exceptions import PolicyConfigError
from ._common import (
    ToolCall,
    check_callable,
    check_glob,
    from_mapping,
    glob_match,
    path_forms,
    str_tuple,
)

if TYPE_CHECKING:
    from .protocol import Verdict

__all__ = [
    "DynamicPermissionPolicy",
    "EscalationAnswer",
    "PermissionRule",
    "PermissionVerdict",
    "check_permissions",
    "parse_escalation_answer",
]

#: A predicate on a call's arguments; a truthy result is a match.
_ArgsPredicate: TypeAlias = Callable[[Mapping[str, Any]], object]

#: What a rule stores: `None` (any arguments), `False` (never), globs tried
#: against every string argument, `{argument: globs}`, or a predicate.
_Matcher: TypeAlias = (
    bool
    | tuple[str, ...]
    | Mapping[str, tuple[str, ...]]
    | _ArgsPredicate
    | None
)

#: What a rule accepts as its matcher (normalised to `_Matcher`).
_MatcherInput: TypeAlias = (
    bool
    | str
    | Iterable[str]
    | Mapping[str, str | Iterable[str]]
    | _ArgsPredicate
    | None
)


@final
class _ArgPatterns(Mapping[str, tuple[str, ...]]):
    """
    A read-only, hashable `{argument name: globs}` table, so that rules and
    policies stay hashable. Equal to any mapping with the same items.
    """

    __slots__ = ("_items",)

    def __init__(self, items: Mapping[str, tuple[str, ...]]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> tuple[str, ...]:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return hash(frozenset(self._items.items()))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Mapping):
            return NotImplemented
        return self._items == dict(other.items())

    def __repr__(self) -> str:
        return repr(self._items)


def _globs(value: object, field: str) -> tuple[str, ...]:
    """A glob or a non-empty list of globs, as a tuple."""
    if isinstance(value, str):
        return (check_glob(value, field),)
    if isinstance(value, bytes) or not isinstance(value, Iterable):
        msg = f"expected a glob or a list of globs, got {value!r}"
        raise PolicyConfigError(field, msg)
    globs = str_tuple(value, field, check=check_glob)
    if not globs:
        msg = (
            "an empty list of patterns matches nothing; "
            "use false for a rule that never matches"
        )
        raise PolicyConfigError(field, msg)
    return globs


def _arg_patterns(value: Mapping[Any, Any], field: str) -> _ArgPatterns:
    if not value:
        msg = "an empty table matches any arguments; use true for that"
        raise PolicyConfigError(field, msg)
    items = {}
    for name, patterns in value.items():
        where = f"{field}[{name!r}]"
        if not isinstance(name, str) or not name:
            msg = f"argument names are non-empty strings, got {name!r}"
            raise PolicyConfigError(where, msg)
        items[name] = _globs(patterns, where)
    return _ArgPatterns(items)


def _matcher(value: object, field: str) -> _Matcher:
    """Validate and normalise a matcher; errors name *field*."""
    if value is None or value is True:
        return None
    if value is False:
        return False
    if isinstance(value, str):
        return _globs(value, field)
    if isinstance(value, Mapping):
        return _arg_patterns(value, field)
    if callable(value):
        return value
    if isinstance(value, Iterable) and not isinstance(value, bytes):
        return _globs(value, field)
    msg = (
        "expected None, a bool, a glob, a list of globs, a table "
        f"{{argument: globs}} or a predicate, got {value!r}"
    )
    raise PolicyConfigError(field, msg)


def _rule_tool(value: str) -> str:
    return check_glob(value, "tool")


def _rule_matcher(value: _MatcherInput) -> _Matcher:
    return _matcher(value, "matcher")


def _text(value: object) -> str | None:
    """*value* as a string argument: a `str`, or a path-like as its path."""
    if isinstance(value, str):
        return value
    if isinstance(value, os.PathLike):
        path = os.fspath(value)
        return path if isinstance(path, str) else None
    return None


def _string_values(arguments: Mapping[str, Any]) -> list[str]:
    """Every string (or path) value in *arguments*, found recursively."""
    found: list[str] = []
    seen: set[int] = set()
    pending: list[object] = [arguments]
    while pending:  # a loop, not recursion: arguments may nest deeply
        item = pending.pop()
        text = _text(item)
        if text is not None:
            found.append(text)
        elif isinstance(item, Mapping | list | tuple):
            if id(item) in seen:  # a container holding itself
                continue
            seen.add(id(item))
            pending.extend(
                item.values() if isinstance(item, Mapping) else item
            )
    return found


def _json_text(arguments: Mapping[str, Any]) -> str:
    """The compact JSON text of *arguments* (keys sorted when possible)."""
    try:
        return json.dumps(
            arguments, sort_keys=True, separators=(",", ":"), default=repr
        )
    except (TypeError, ValueError):  # mixed key types, a circular container
        return repr(arguments)


def _describe(matcher: _Matcher) -> str:
    if matcher is None:
        return "any arguments"
    if matcher is False:
        return "never"
    if isinstance(matcher, tuple):
        return f"a string argument {_one_of(matcher)}"
    if isinstance(matcher, Mapping):
        return " and ".join(
            f"{name} {_one_of(globs)}" for name, globs in matcher.items()
        )
    name = getattr(matcher, "__qualname__", None) or repr(matcher)
    return f"predicate {name}"


def _one_of(globs: tuple[str, ...]) -> str:
    if len(globs) == 1:
        return f"matches {globs[0]!r}"
    return "matches one of " + ", ".join(map(repr, globs))


class _Forms:
    """How one call's argument values are matched: a path value in its
    forms (any form for a deny, *every* form for an allow).
    """

    def __init__(self, call: ToolCall, *, every: bool) -> None:
        self.every = every
        self._paths: dict[str, tuple[str, ...]] | None = None
        self._call = call

    def _of(self, value: str) -> tuple[str, ...] | None:
        if self._paths is None:
            call = self._call
            self._paths = {
                path: path_forms(path, real, call.cwd)
                for path, real in zip(
                    call.paths, call.physical_paths(), strict=True
                )
            }
        return self._paths.get(value)

    def match(self, globs: tuple[str, ...], value: str) -> bool:
        def hit(text: str) -> bool:
            return any(glob_match(glob, text) for glob in globs)

        forms = self._of(value) if self._call.paths else None
        if forms is None:
            return hit(value)
        if self.every:
            return bool(forms) and all(map(hit, forms))
        return hit(value) or any(map(hit, forms))


@attrs.frozen
class PermissionRule:
    """
    A tool glob and a matcher on the call's arguments.

    Matchers:

    - `None` or `True`: any arguments (stored as `None`).
    - `False`: never matches.
    - a glob or a list of globs: matches when one glob matches **any**
      string value found recursively in the arguments (in dicts, lists and
      tuples; a path-like counts as its path). Arguments holding no string
      are matched as their compact JSON text (`{"n":5}`). Globs match the
      whole value: write `"*rm -rf*"` for a substring. In an allow list,
      for a call with path arguments, every path must match instead (so
      another argument cannot vouch for a path).
    - `{argument: glob or globs}`: for every argument named, the argument
      is a string (or a path-like) matching one of its globs.
    - a callable: a predicate on the arguments mapping; truthy matches.

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.permissions import PermissionRule
        >>> rule = PermissionRule("fs.*", {"path": "/etc/*"})
        >>> rule
        <rule 'fs.*': path matches '/etc/*'>
        >>> rule.matches(ToolCall("fs.read", {"path": "/etc/passwd"}))
        True
    """

    tool: str = attrs.field(converter=_rule_tool)
    matcher: _Matcher = attrs.field(default=None, converter=_rule_matcher)

    def __repr__(self) -> str:
        return f"<rule {self.tool!r}: {_describe(self.matcher)}>"

    def matches(self, call: ToolCall, *, every_form: bool = False) -> bool:
        """
        Whether *call* is to a tool this rule names, with arguments its
        matcher accepts. A predicate's exception propagates.

        A value that is one of the call's paths (`ToolCall.paths`) is
        matched in its forms too (`path_forms`: as spelled, made absolute
        with `..` removed, and the file the kernel opens): by default
        (deny rules) when any form matches, so `/srv/ws/../etc/hosts` is
        caught by `/etc/*`; with *every_form* (allow rules) only when
        both the absolute spelling and the file opened match, so a link
        inside an allowed folder to a file outside it is not allowed.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.permissions import PermissionRule
            >>> rule = PermissionRule("shell.*", "*rm -rf*")
            >>> rule.matches(ToolCall("shell.run", {"argv": ["sh", "-c", "rm -rf /"]}))
            True
            >>> call = ToolCall("fs.read", {"path": "/tmp/../etc/hosts"}, paths=("/tmp/../etc/hosts",))
            >>> PermissionRule("fs.*", {"path": "/etc/*"}).matches(call)
            True
        """
        if not glob_match(self.tool, call.tool):
            return False
        matcher = self.matcher
        if matcher is None or isinstance(matcher, bool):
            return matcher is None
        arguments = call.arguments
        if not isinstance(matcher, tuple | Mapping):
            return bool(matcher(arguments))
        forms = _Forms(call, every=every_form)
        if isinstance(matcher, tuple):
            # An allow about a call with paths holds for its paths, each of
            # them: another argument never vouches for one.
            strict = every_form and bool(call.paths)
            values = (
                call.paths
                if strict
                else _string_values(arguments) or [_json_text(arguments)]
            )
            test = all if strict else any
            return test(forms.match(matcher, value) for value in values)
        for name, globs in matcher.items():
            value = _text(arguments.get(name))
            if value is None or not forms.match(globs, value):
                return False
        return True

    def to_dict(self) -> dict[str, Any]:
        """
        The rule as JSON-able data: `{"tool": ..., "matcher": ...}`, without
        `matcher` when it is "any arguments".

        Raises:
            PolicyConfigError: the matcher is a predicate, which is not data
                (field `matcher`).

        Examples:
            >>> from capscope.policies.permissions import PermissionRule
            >>> PermissionRule("fs.write", {"path": ["/ws/*"]}).to_dict()
            {'tool': 'fs.write', 'matcher': {'path': ['/ws/*']}}
        """
        data: dict[str, Any] = {"tool": self.tool}
        matcher = self.matcher
        if matcher is None:
            return data
        if isinstance(matcher, bool):
            data["matcher"] = matcher
        elif isinstance(matcher, tuple):
            data["matcher"] = list(matcher)
        elif isinstance(matcher, Mapping):
            data["matcher"] = {k: list(v) for k, v in matcher.items()}
        else:
            msg = (
                "holds a predicate, which is not data; drop the rule "
                "or install it on the receiving side"
            )
            raise PolicyConfigError("matcher", msg)
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], *, path: str = "rule") -> Self:
        """
        Build a rule from `to_dict()` data; errors name the key path under
        *path*.

        Examples:
            >>> from capscope.policies.permissions import PermissionRule
            >>> PermissionRule.from_dict({"tool": "net.*", "matcher": False})
            <rule 'net.*': never>
        """
        return from_mapping(cls, data, path)


def _rules(value: object, field: str) -> tuple[PermissionRule, ...]:
    if isinstance(value, Mapping):  # {tool_glob: matcher}
        rules = []
        for tool, matcher in value.items():
            where = f"{field}[{tool!r}]"
            rules.append(
                PermissionRule(
                    check_glob(tool, where), _matcher(matcher, where)
                )
            )
        return tuple(rules)
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = (
            "expected a list of tool globs or rules, or a table "
            f"{{tool_glob: matcher}}, got {value!r}"
        )
        raise PolicyConfigError(field, msg)
    rules = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if isinstance(item, PermissionRule):
            rules.append(item)
        elif isinstance(item, str):
            rules.append(PermissionRule(check_glob(item, where)))
        elif isinstance(item, Mapping):  # a rule's to_dict() form
            rules.append(PermissionRule.from_dict(item, path=where))
        else:
            msg = f"expected a tool glob or a rule, got {item!r}"
            raise PolicyConfigError(where, msg)
    return tuple(rules)


#: What `allow` and `deny` accept.
_RulesInput: TypeAlias = (
    Iterable[str | PermissionRule | Mapping[str, Any]]
    | Mapping[str, _MatcherInput]
)


def _allow(value: _RulesInput | None) -> tuple[PermissionRule, ...] | None:
    return None if value is None else _rules(value, "allow")


def _deny(value: _RulesInput) -> tuple[PermissionRule, ...]:
    return _rules(value, "deny")


def _check_callable(
    _: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    check_callable(value, attribute.name)


@attrs.frozen
class PermissionVerdict:
    """
    What one frame says about one call.

    `rule` is the rule that decided (`None` when no rule did: an empty
    allow list, or a non-empty one that nothing matched).

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.permissions import DynamicPermissionPolicy
        >>> verdict = DynamicPermissionPolicy(deny=["net.*"]).evaluate(ToolCall("net.get"))
        >>> verdict.allowed, verdict.reason
        (False, "net.get is denied by <rule 'net.*': any arguments>")
    """

    allowed: bool
    reason: str
    rule: PermissionRule | None = None


@attrs.frozen
class DynamicPermissionPolicy:
    """
    One frame of the "permissions" stack: allow and deny rules.

    `allow` and `deny` each take a list of tool globs (any arguments), a
    table `{tool_glob: matcher}`, or a list of `PermissionRule`s (or their
    `to_dict()` tables); they are stored as tuples of rules. See
    `PermissionRule` for the matchers.

    In one frame a matching deny rule denies; otherwise, when `allow` is
    set, one of its rules must match. `allow=None` (the default) is unset:
    no allow restriction; `allow=()` allows nothing, as everywhere else.

    `on_escalation` is the callable the enforcement layer asks when this
    frame denies; `parse_escalation_answer` reads its answer.

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.permissions import DynamicPermissionPolicy
        >>> p = DynamicPermissionPolicy(allow=["fs.read*"], deny={"fs.*": {"path": "/etc/*"}})
        >>> p.evaluate(ToolCall("fs.read", {"path": "/ws/a"})).allowed
        True
        >>> p.evaluate(ToolCall("fs.read", {"path": "/etc/shadow"})).reason
        "fs.read is denied by <rule 'fs.*': path matches '/etc/*'>"
    """

    allow: tuple[PermissionRule, ...] | None = attrs.field(
        default=None, converter=_allow
    )
    deny: tuple[PermissionRule, ...] = attrs.field(default=(), converter=_deny)
    #: Callables that only grant: a worker in another process, without
    #: them, fails closed (capscope.propagation drops them).
    __capscope_droppable__ = ("on_escalation",)

    on_escalation: Callable[..., Any] | None = attrs.field(
        default=None, validator=_check_callable
    )

    def evaluate(self, call: ToolCall) -> PermissionVerdict:
        """
        This frame's verdict on *call* alone.

        A matching deny rule denies (the reason names the rule); else a
        set allow list with no matching rule denies; else the call is
        allowed. A predicate that raises denies (fail closed), naming the
        rule and the error.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.permissions import DynamicPermissionPolicy
            >>> DynamicPermissionPolicy(allow=["fs.*"]).evaluate(ToolCall("net.get")).reason
            "net.get is not allowed by this policy's permissions"
        """
        for rule in self.deny:
            try:
                hit = rule.matches(call)
            except Exception as exc:  # noqa: BLE001 -- fail closed, say why
                return _raised(call, rule, exc)
            if hit:
                reason = f"{call.tool} is denied by {rule!r}"
                return PermissionVerdict(
                    allowed=False, reason=reason, rule=rule
                )
        if self.allow is None:
            reason = f"no permission rule denies {call.tool}"
            return PermissionVerdict(allowed=True, reason=reason)
        for rule in self.allow:
            try:
                hit = rule.matches(call, every_form=True)
            except Exception as exc:  # noqa: BLE001 -- fail closed, say why
                return _raised(call, rule, exc)
            if hit:
                reason = f"{call.tool} is allowed by {rule!r}"
                return PermissionVerdict(
                    allowed=True, reason=reason, rule=rule
                )
        reason = f"{call.tool} is not allowed by this policy's permissions"
        return PermissionVerdict(allowed=False, reason=reason)

    def decides_by_name(self, call: ToolCall) -> bool:
        """
        Whether `evaluate` gives *call*'s tool the same verdict whatever
        its arguments: every rule naming the tool matches any arguments
        or none.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.permissions import DynamicPermissionPolicy
            >>> from capscope.policies.permissions import PermissionRule
            >>> p = DynamicPermissionPolicy(deny=["net.*", PermissionRule("fs.*", {"path": "/etc/*"})])
            >>> p.decides_by_name(ToolCall("net.get")), p.decides_by_name(ToolCall("fs.read"))
            (True, False)
        """
        return all(
            isinstance(rule.matcher, bool | None)
            for rule in (*self.deny, *(self.allow or ()))
            if glob_match(rule.tool, call.tool)
        )

    def narrow(
        self, inner: DynamicPermissionPolicy
    ) -> DynamicPermissionPolicy:
        """
        *inner* as it is: the "permissions" stack checks every
        frame and any deny wins, so a frame pushed inside only adds one.

        Examples:
            >>> from capscope.policies import DynamicPermissionPolicy
            >>> DynamicPermissionPolicy(deny=["net.*"]).narrow(DynamicPermissionPolicy()) == DynamicPermissionPolicy()
            True
        """
        return inner

    def verdict(self, call: ToolCall) -> Verdict | None:
        """
        This frame's refusal of *call* as a deny, else `None`.

        Examples:
            >>> from capscope.policies import DynamicPermissionPolicy, ToolCall
            >>> DynamicPermissionPolicy(deny=["net.*"]).verdict(ToolCall("net.get")).gate
            'dynamic_permission'
        """
        from .protocol import Verdict

        found = self.evaluate(call)
        if found.allowed:
            return None
        return Verdict.deny(found.reason, gate="dynamic_permission")

    def describe(self) -> str:
        """
        The allow and deny rules in a sentence.

        Examples:
            >>> from capscope.policies import DynamicPermissionPolicy
            >>> DynamicPermissionPolicy(allow=["fs.*"], deny=["fs.delete"]).describe()
            'Permissions: allow fs.*; deny fs.delete.'
        """
        allow = (
            "any tool"
            if self.allow is None
            else ", ".join(rule.tool for rule in self.allow) or "nothing"
        )
        deny = ", ".join(rule.tool for rule in self.deny)
        return f"Permissions: allow {allow}" + (
            f"; deny {deny}." if deny else "."
        )

    def to_dict(self) -> dict[str, Any]:
        """
        The policy as JSON-able data: each non-empty rule list as a list
        whose items are a tool glob (any arguments) or a rule's table.

        Raises:
            PolicyConfigError: a predicate matcher (`allow[0].matcher`) or
                an `on_escalation` callable, which are not data.

        Examples:
            >>> from capscope.policies.permissions import DynamicPermissionPolicy
            >>> DynamicPermissionPolicy(allow=["fs.*"], deny={"fs.*": False}).to_dict()
            {'allow': ['fs.*'], 'deny': [{'tool': 'fs.*', 'matcher': False}]}
        """
        data: dict[str, Any] = {}
        for name in ("allow", "deny"):
            rules: tuple[PermissionRule, ...] | None = getattr(self, name)
            if rules is not None and (rules or name == "allow"):
                data[name] = [
                    _rule_data(rule, f"{name}[{index}]")
                    for index, rule in enumerate(rules)
                ]
        if self.on_escalation is not None:
            msg = (
                "holds a callable, which is not data; drop it "
                "(attrs.evolve(policy, ...)) or install it on the "
                "receiving side"
            )
            raise PolicyConfigError("on_escalation", msg)
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, path: str = "permissions"
    ) -> Self:
        """
        Build a policy from `to_dict()` data (or a policy file's table);
        errors name the key path under *path*
        (`permissions.deny['fs.*']['path']`), unknown keys included.

        Examples:
            >>> from capscope.policies.permissions import DynamicPermissionPolicy
            >>> DynamicPermissionPolicy.from_dict({"deny": {"net.*": True}}).deny
            (<rule 'net.*': any arguments>,)
        """
        return from_mapping(cls, data, path)


def _rule_data(rule: PermissionRule, where: str) -> object:
    if rule.matcher is None:
        return rule.tool
    try:
        return rule.to_dict()
    except PolicyConfigError as exc:
        raise PolicyConfigError(f"{where}.{exc.field}", exc.message) from None


def _raised(
    call: ToolCall, rule: PermissionRule, exc: Exception
) -> PermissionVerdict:
    reason = (
        f"{call.tool} is denied: {rule!r} raised {exc!r} "
        "(a matcher that fails denies)"
    )
    return PermissionVerdict(allowed=False, reason=reason, rule=rule)


def check_permissions(
    policies: Sequence[DynamicPermissionPolicy],
    call: ToolCall,
    *,
    granted: Callable[[int, DynamicPermissionPolicy], bool] | None = None,
) -> tuple[int, PermissionVerdict] | None:
    """
    Check *call* against every frame of the "permissions" stack.

    Frames are evaluated outer to inner (*policies* as `stack.frames()`
    gives them) and the first denial wins, so an inner frame can never
    allow what an outer one denies.

    Args:
        policies: the frames, outermost first.
        call: the call to check.
        granted: asked `granted(index, policy)` about each frame that
            denies; `True` means a grant is remembered for that frame (an
            escalation answered `frame`), and the frame counts as allowing.

    Returns:
        `(index, verdict)` for the first frame that denies, or `None` when
        every frame allows (also when there are no frames).

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.permissions import (
        ...     DynamicPermissionPolicy, check_permissions)
        >>> outer = DynamicPermissionPolicy(deny=["shell.*"])
        >>> inner = DynamicPermissionPolicy(allow=["shell.run"])
        >>> index, verdict = check_permissions([outer, inner], ToolCall("shell.run"))
        >>> index, verdict.allowed
        (0, False)
        >>> check_permissions([outer, inner], ToolCall("shell.run"),
        ...                   granted=lambda index, policy: index == 0) is None
        True
    """
    for index, policy in enumerate(policies):
        verdict = policy.evaluate(call)
        if verdict.allowed:
            continue
        if granted is not None and granted(index, policy):
            continue
        return index, verdict
    return None


class EscalationAnswer(enum.StrEnum):
    """
    A grant from an `on_escalation` callable.

    Examples:
        >>> from capscope.policies.permissions import EscalationAnswer
        >>> EscalationAnswer.FRAME == "frame"
        True
    """

    #: this call only
    ONCE = "once"
    #: remembered for the frame that denied, until that frame is popped
    FRAME = "frame"


_ANSWERS = {
    "once": EscalationAnswer.ONCE,
    "frame": EscalationAnswer.FRAME,
    "scope": EscalationAnswer.FRAME,
    "session": EscalationAnswer.FRAME,
}


def parse_escalation_answer(value: object) -> EscalationAnswer | None:
    """
    Read what an `on_escalation` callable returned. Fails closed.

    | value | result |
    |---|---|
    | `True`, `"once"` | `EscalationAnswer.ONCE` |
    | `"frame"`, `"scope"`, `"session"` | `EscalationAnswer.FRAME` |
    | `False`, `None` | `None`: denied |
    | anything else (`1`, `"yes"`, `"Once"`, a dict, ...) | `None`: denied |

    Only exactly `True` counts as a bool grant; strings match exactly.

    Examples:
        >>> from capscope.policies.permissions import parse_escalation_answer
        >>> parse_escalation_answer("session"), parse_escalation_answer("yes")
        (<EscalationAnswer.FRAME: 'frame'>, None)
    """
    if value is True:
        return EscalationAnswer.ONCE
    if isinstance(value, str):
        return _ANSWERS.get(value)
    return None
