"""
Autonomy: how far an agent may act on its own, per action and per agent.

A tier says what happens to a side-effecting action: `act_auto` runs it,
`act_with_approval` asks a human first, `suggest` and `shadow` only propose
it. Tiers are ranked `shadow < suggest < act_with_approval < act_auto`, and
no tier anywhere means `act_auto`.

The "autonomy" stack holds the *effective* policy at its top: each push is
merged with the policy below it by `narrow_autonomy`, which refuses a push
that would let any action or agent act more freely than before
(`CeilingExceeded`, never a silent clamp). Requiring a human can be added
by a push, never removed.

This module is pure: the stack and the decorators' checks are built on top
of it elsewhere.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import CeilingExceeded, PolicyConfigError
from ._common import (
    FrozenMap,
    enum_value,
    from_mapping,
    short_repr,
    str_tuple,
    to_mapping,
)

if TYPE_CHECKING:
    from ._common import ToolCall
    from .protocol import Verdict

__all__ = [
    "AutonomyPolicy",
    "AutonomyTier",
    "narrow_autonomy",
    "needs_human",
    "resolve_tier",
]


class AutonomyTier(enum.StrEnum):
    """
    Autonomy tiers, ranked: `shadow < suggest < act_with_approval <
    act_auto`.

    - `act_auto`: the action runs.
    - `act_with_approval`: a human approves it first.
    - `suggest`: the action does not run; a proposal is emitted for a human.
    - `shadow`: the action does not run; it is only recorded.

    Examples:
        >>> from capscope.policies.autonomy import AutonomyTier
        >>> AutonomyTier("suggest") < AutonomyTier.ACT_AUTO
        True
        >>> max(AutonomyTier.SHADOW, AutonomyTier("act_with_approval"))
        <AutonomyTier.ACT_WITH_APPROVAL: 'act_with_approval'>
        >>> AutonomyTier.ACT_AUTO > "shadow"  # by rank, not by spelling
        True
    """

    SHADOW = "shadow"
    SUGGEST = "suggest"
    ACT_WITH_APPROVAL = "act_with_approval"
    ACT_AUTO = "act_auto"

    @property
    def rank(self) -> int:
        """0 for `shadow` up to 3 for `act_auto`."""
        return _TIER_RANK[self]

    # Ordering is by rank. A plain string is taken as the tier it names:
    # returning NotImplemented would let `str` compare the *spellings*
    # ("act_auto" < "shadow"), silently inverting the order.
    def __lt__(self, other: object) -> bool:
        return self.rank < _rank_of(other)

    def __le__(self, other: object) -> bool:
        return self.rank <= _rank_of(other)

    def __gt__(self, other: object) -> bool:
        return self.rank > _rank_of(other)

    def __ge__(self, other: object) -> bool:
        return self.rank >= _rank_of(other)


def _rank_of(other: object) -> int:
    if isinstance(other, AutonomyTier):
        return _TIER_RANK[other]
    if isinstance(other, str):
        try:
            return _TIER_RANK[AutonomyTier(other)]
        except ValueError:
            pass
    msg = f"cannot order an AutonomyTier against {other!r}"
    raise TypeError(msg)


_TIER_RANK = {tier: rank for rank, tier in enumerate(AutonomyTier)}

# An action is dotted words (`fs.write`, `network.sse.write`); its class is
# the first word with `.*` (`fs.*`). Any other glob would silently match
# nothing, so it is refused.
_WORD = r"[^\s.*?\[\]]+"
_ACTION = re.compile(rf"{_WORD}(?:\.{_WORD})*")
_ACTION_CLASS = re.compile(rf"{_WORD}\.\*")


def _action(value: object, field: str) -> str:
    """*value* as an action (`fs.write`) or an action class (`fs.*`)."""
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise PolicyConfigError(field, msg)
    if _ACTION.fullmatch(value) is None and (
        _ACTION_CLASS.fullmatch(value) is None
    ):
        msg = (
            f"{value!r} is not an action ('fs.write') or an action class "
            "('fs.*')"
        )
        raise PolicyConfigError(field, msg)
    return value


def _name(value: object, field: str) -> str:
    """*value* as a non-empty name (an agent, a reviewer)."""
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise PolicyConfigError(field, msg)
    if not value:
        raise PolicyConfigError(field, "expected a non-empty name")
    return value


def _table(value: object, field: str) -> Mapping[Any, Any]:
    if not isinstance(value, Mapping):
        msg = f"expected a table, got {value!r}"
        raise PolicyConfigError(field, msg)
    return value


def _tier_map(
    value: object, field: str, key_check: Callable[[object, str], str]
) -> FrozenMap[str, AutonomyTier]:
    """A table of action (or agent) → tier, checked, stored immutably."""
    tiers: dict[str, AutonomyTier] = {}
    for key, tier in _table(value, field).items():
        where = f"{field}[{key!r}]"
        tiers[key_check(key, where)] = enum_value(AutonomyTier, tier, where)
    return FrozenMap(tiers)


# One converter per field, so that errors name it (and mypy's attrs plugin
# sees named functions).


def _tier(value: object) -> AutonomyTier | None:
    return None if value is None else enum_value(AutonomyTier, value, "tier")


def _agent_id(value: object) -> str | None:
    if value is None or value == "":  # an empty string counts as unset
        return None
    return _name(value, "agent_id")


def _action_tiers(value: object) -> FrozenMap[str, AutonomyTier]:
    return _tier_map(value, "action_tiers", _action)


def _agent_tiers(value: object) -> FrozenMap[str, AutonomyTier]:
    return _tier_map(value, "agent_tiers", _name)


def _agent_action_tiers(
    value: object,
) -> FrozenMap[str, FrozenMap[str, AutonomyTier]]:
    field = "agent_action_tiers"
    tables: dict[str, FrozenMap[str, AutonomyTier]] = {}
    for agent, table in _table(value, field).items():
        where = f"{field}[{agent!r}]"
        tables[_name(agent, where)] = _tier_map(table, where, _action)
    return FrozenMap(tables)


def _requires_human(value: object) -> bool:
    if not isinstance(value, bool):
        msg = f"expected true or false, got {value!r}"
        raise PolicyConfigError("requires_human", msg)
    return value


# The lists are sets in meaning: duplicates are dropped (first kept), so
# that equal policies compare equal and narrowing p by p gives p.


def _requires_human_actions(value: object) -> tuple[str, ...]:
    items = str_tuple(value, "requires_human_actions", check=_action)
    return tuple(dict.fromkeys(items))


def _requires_human_agents(value: object) -> tuple[str, ...]:
    items = str_tuple(value, "requires_human_agents", check=_name)
    return tuple(dict.fromkeys(items))


def _reviewers(value: object) -> tuple[str, ...]:
    return tuple(dict.fromkeys(str_tuple(value, "reviewers", check=_name)))


@attrs.frozen
class AutonomyPolicy:
    """
    How autonomously actions may run: a tier overall, per action (or action
    class), per agent and per agent and action, plus the actions and agents
    that always need a human.

    Actions are dotted names (`fs.write`, `process.exec`); an action's class
    is its first word with `.*` (`fs.*`), and a table may name either. How
    an action's tier is found: `resolve_tier`. What needs a human:
    `needs_human`. The three lists drop duplicates (the first is kept).

    Attributes:
        tier: The tier for everything not named more precisely (`None`:
            unset, inherited when narrowing; `act_auto` at the root).
        agent_id: The agent acting, when the check does not name one.
        action_tiers: Action or action class → tier.
        agent_tiers: Agent → tier.
        agent_action_tiers: Agent → (action or action class → tier).
        requires_human: Every action needs a human.
        requires_human_actions: Actions or action classes that need a human.
        requires_human_agents: Agents whose every action needs a human.
        reviewers: Who may review proposals and approvals (informational).

    Raises:
        PolicyConfigError: Bad input, naming the field or key
            (`action_tiers['fs.write']: 'act_sometimes' is not one of ...`).

    Examples:
        >>> from capscope.policies.autonomy import AutonomyPolicy
        >>> policy = AutonomyPolicy(tier="suggest", action_tiers={"fs.*": "shadow"})
        >>> policy
        AutonomyPolicy(tier='suggest', action_tiers={'fs.*': 'shadow'})
        >>> policy.action_tiers["fs.*"] == "shadow"
        True
    """

    tier: AutonomyTier | None = attrs.field(default=None, converter=_tier)
    agent_id: str | None = attrs.field(default=None, converter=_agent_id)
    action_tiers: FrozenMap[str, AutonomyTier] = attrs.field(
        factory=FrozenMap, converter=_action_tiers
    )
    agent_tiers: FrozenMap[str, AutonomyTier] = attrs.field(
        factory=FrozenMap, converter=_agent_tiers
    )
    agent_action_tiers: FrozenMap[str, FrozenMap[str, AutonomyTier]] = (
        attrs.field(factory=FrozenMap, converter=_agent_action_tiers)
    )
    requires_human: bool = attrs.field(
        default=False, converter=_requires_human
    )
    requires_human_actions: tuple[str, ...] = attrs.field(
        default=(), converter=_requires_human_actions
    )
    requires_human_agents: tuple[str, ...] = attrs.field(
        default=(), converter=_requires_human_agents
    )
    reviewers: tuple[str, ...] = attrs.field(default=(), converter=_reviewers)

    def __repr__(self) -> str:
        return short_repr(self)

    # -- the Policy protocol ----------------------------------------------------

    def narrow(self, inner: AutonomyPolicy) -> AutonomyPolicy:
        """
        `narrow_autonomy(self, inner)`: a push may lower tiers, never raise
        them (`CeilingExceeded`).

        Examples:
            >>> from capscope.policies import AutonomyPolicy
            >>> AutonomyPolicy(tier="act_auto").narrow(AutonomyPolicy(tier="suggest")).tier
            <AutonomyTier.SUGGEST: 'suggest'>
        """
        return narrow_autonomy(self, inner)

    def verdict(self, call: ToolCall) -> Verdict | None:
        """
        What the tier of *call*'s tool means for it: a human-only action
        or a proposal (`shadow`, `suggest`) does not run (deny);
        `act_with_approval` asks; `act_auto` has no objection.

        Examples:
            >>> from capscope.policies import AutonomyPolicy, ToolCall
            >>> AutonomyPolicy(tier="act_with_approval").verdict(ToolCall("deploy")).action.value
            'ask'
        """
        from .protocol import Verdict

        tool = call.tool
        if needs_human(self, tool):
            return Verdict.deny(
                f"the autonomy policy requires a human to take {tool!r}",
                gate="autonomy",
            )
        tier = resolve_tier(self, tool)
        if tier in (AutonomyTier.SUGGEST, AutonomyTier.SHADOW):
            reason = (
                f"autonomy tier {tier.value}: {tool!r} is proposed, not run"
            )
            return Verdict.deny(reason, gate="autonomy")
        if tier is AutonomyTier.ACT_WITH_APPROVAL:
            reason = (
                f"autonomy tier act_with_approval: {tool!r} needs approval"
            )
            return Verdict.ask(reason, gate="autonomy")
        return None

    def describe(self) -> str:
        """
        The tier, its overrides and who must act in person.

        Examples:
            >>> from capscope.policies import AutonomyPolicy
            >>> AutonomyPolicy(tier="suggest").describe()
            'Autonomy: suggest.'
        """
        tier = self.tier or AutonomyTier.ACT_AUTO
        text = f"Autonomy: {tier.value}"
        if self.action_tiers:
            overrides = ", ".join(
                f"{a}: {t.value}" for a, t in self.action_tiers.items()
            )
            text += f" ({overrides})"
        if self.requires_human:
            text += "; every side-effecting action requires a human"
        elif self.requires_human_actions:
            text += (
                f"; a human must take {', '.join(self.requires_human_actions)}"
            )
        return text + "."

    def to_dict(self) -> dict[str, Any]:
        """
        The policy as JSON-able data, holding only the fields that differ
        from their defaults.

        Examples:
            >>> from capscope.policies.autonomy import AutonomyPolicy
            >>> AutonomyPolicy(agent_tiers={"bot": "suggest"}, requires_human_actions=["process.*"]).to_dict()
            {'agent_tiers': {'bot': 'suggest'}, 'requires_human_actions': ['process.*']}
        """
        return to_mapping(self)

    @classmethod
    def from_dict(
        cls, data: object, *, path: str = "autonomy"
    ) -> AutonomyPolicy:
        """
        Rebuild a policy from `to_dict()` data.

        Args:
            data: A mapping of field names to values.
            path: The key path that prefixes every error's field.

        Raises:
            PolicyConfigError: Bad data or an unknown key, naming its key
                path.

        Examples:
            >>> from capscope.policies.autonomy import AutonomyPolicy
            >>> AutonomyPolicy.from_dict({"tier": "act_with_approval"})
            AutonomyPolicy(tier='act_with_approval')
            >>> try:
            ...     AutonomyPolicy.from_dict({"action_tiers": {"fs.write": "act_sometimes"}})
            ... except ValueError as e:
            ...     print(e)
            autonomy.action_tiers['fs.write']: 'act_sometimes' is not one of shadow, suggest, act_with_approval, act_auto
        """
        return from_mapping(cls, data, path)


# --- Resolution -------------------------------------------------------------

#: Where a resolved tier came from: ("agent_action_tiers", agent, key),
#: ("agent_tiers", agent), ("action_tiers", key), ("tier",) or () for the
#: act_auto default. Kept as a tuple so the hot path formats nothing.
_Source = tuple[str, ...]


def _action_keys(action: str) -> tuple[str, ...]:
    """The keys to look *action* up under: itself, then its class."""
    head, dot, _ = action.partition(".")
    if not dot:
        return (action,)
    klass = f"{head}.*"
    return (action,) if klass == action else (action, klass)


def _lookup(
    policy: AutonomyPolicy, action: str, agent: str | None
) -> tuple[AutonomyTier, _Source]:
    """The tier for *action* by *agent* and where it came from."""
    keys = _action_keys(action)
    if agent is None:
        agent = policy.agent_id
    if agent is not None:
        table = policy.agent_action_tiers.get(agent)
        if table:
            for key in keys:
                tier = table.get(key)
                if tier is not None:
                    return tier, ("agent_action_tiers", agent, key)
        tier = policy.agent_tiers.get(agent)
        if tier is not None:
            return tier, ("agent_tiers", agent)
    for key in keys:
        tier = policy.action_tiers.get(key)
        if tier is not None:
            return tier, ("action_tiers", key)
    if policy.tier is not None:
        return policy.tier, ("tier",)
    return AutonomyTier.ACT_AUTO, ()


def _path(source: _Source) -> str:
    """A source as the field path errors name (`agent_tiers['bot']`)."""
    if not source:
        return "tier"
    name, *keys = source
    return name + "".join(f"[{key!r}]" for key in keys)


def resolve_tier(
    policy: AutonomyPolicy | None, action: str, agent: str | None = None
) -> AutonomyTier:
    """
    The tier *policy* gives *action* when *agent* takes it.

    The agent is *agent*, else the policy's `agent_id`. The first hit wins:
    `agent_action_tiers[agent]` (the action, then its class),
    `agent_tiers[agent]`, `action_tiers` (the action, then its class),
    `tier`. No tier anywhere, or no policy, is `act_auto`.

    Args:
        policy: The effective autonomy policy, or `None`.
        action: A dotted action name (`fs.write`).
        agent: The agent acting, if the check knows it.

    Examples:
        >>> from capscope.policies.autonomy import AutonomyPolicy, resolve_tier
        >>> policy = AutonomyPolicy(
        ...     tier="act_with_approval",
        ...     action_tiers={"fs.*": "suggest"},
        ...     agent_tiers={"intern": "shadow"},
        ... )
        >>> for action, agent in [("fs.write", None), ("fs.write", "intern"), ("net.get", None)]:
        ...     print(action, agent, resolve_tier(policy, action, agent))
        fs.write None suggest
        fs.write intern shadow
        net.get None act_with_approval
        >>> print(resolve_tier(None, "fs.write"))
        act_auto
    """
    if policy is None:
        return AutonomyTier.ACT_AUTO
    return _lookup(policy, action, agent)[0]


def needs_human(
    policy: AutonomyPolicy | None, action: str, agent: str | None = None
) -> bool:
    """
    Whether *policy* requires a human to take *action* (for *agent*, else
    the policy's `agent_id`), whatever the tier.

    True when `requires_human` is set, the agent is listed in
    `requires_human_agents`, or the action or its class is listed in
    `requires_human_actions`.

    Examples:
        >>> from capscope.policies.autonomy import AutonomyPolicy, needs_human
        >>> policy = AutonomyPolicy(requires_human_actions=["process.*"], requires_human_agents=["intern"])
        >>> needs_human(policy, "process.exec"), needs_human(policy, "fs.write")
        (True, False)
        >>> needs_human(policy, "fs.write", "intern"), needs_human(None, "fs.write")
        (True, False)
    """
    if policy is None:
        return False
    if policy.requires_human:
        return True
    if agent is None:
        agent = policy.agent_id
    if agent is not None and agent in policy.requires_human_agents:
        return True
    listed = policy.requires_human_actions
    return bool(listed) and any(key in listed for key in _action_keys(action))


# --- Narrowing --------------------------------------------------------------


def _union(outer: Iterable[str], new: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys((*outer, *new)))


def _merge(outer: AutonomyPolicy, new: AutonomyPolicy) -> AutonomyPolicy:
    """*new* with every unset field taken from *outer*."""
    agents = _union(outer.agent_action_tiers, new.agent_action_tiers)
    empty: FrozenMap[str, AutonomyTier] = FrozenMap()
    return AutonomyPolicy(
        tier=outer.tier if new.tier is None else new.tier,
        agent_id=outer.agent_id if new.agent_id is None else new.agent_id,
        action_tiers={**outer.action_tiers, **new.action_tiers},
        agent_tiers={**outer.agent_tiers, **new.agent_tiers},
        agent_action_tiers={
            agent: {
                **outer.agent_action_tiers.get(agent, empty),
                **new.agent_action_tiers.get(agent, empty),
            }
            for agent in agents
        },
        requires_human=outer.requires_human or new.requires_human,
        requires_human_actions=_union(
            outer.requires_human_actions, new.requires_human_actions
        ),
        requires_human_agents=_union(
            outer.requires_human_agents, new.requires_human_agents
        ),
        reviewers=_union(outer.reviewers, new.reviewers),
    )


def _refuse(
    field: str,
    ceiling: tuple[AutonomyTier, _Source],
    requested: AutonomyTier,
) -> None:
    """Raise if *requested* is above the outer *ceiling*."""
    outer_tier, source = ceiling
    if requested > outer_tier:
        where = f"outer {_path(source)}" if source else "outer default"
        raise CeilingExceeded(field, outer_tier, requested, where)


def _check_entries(outer: AutonomyPolicy, new: AutonomyPolicy) -> None:
    """Each tier *new* names, against what *outer* resolves for its key."""
    generic: tuple[AutonomyTier, _Source] = (
        (AutonomyTier.ACT_AUTO, ())
        if outer.tier is None
        else (outer.tier, ("tier",))
    )
    if new.tier is not None:
        _refuse("tier", generic, new.tier)
    for action, tier in new.action_tiers.items():
        ceiling = _lookup(outer, action, None)
        _refuse(f"action_tiers[{action!r}]", ceiling, tier)
    for agent, tier in new.agent_tiers.items():
        outer_tier = outer.agent_tiers.get(agent)
        ceiling = (
            generic
            if outer_tier is None
            else (outer_tier, ("agent_tiers", agent))
        )
        _refuse(f"agent_tiers[{agent!r}]", ceiling, tier)
    for agent, table in new.agent_action_tiers.items():
        for action, tier in table.items():
            ceiling = _lookup(outer, action, agent)
            field = f"agent_action_tiers[{agent!r}][{action!r}]"
            _refuse(field, ceiling, tier)


def _fresh(taken: set[str], prefix: str = "") -> str:
    """A name starting with *prefix* that no policy mentions."""
    name = f"{prefix}\x00"
    while name in taken:
        name += "\x00"
    return name


def _probes(
    *policies: AutonomyPolicy,
) -> tuple[list[str], list[str | None]]:
    """
    Actions and agents that between them take every path through
    `_lookup` and `needs_human` for *policies*: each action and agent they
    mention, a fresh member of each action class, a fresh action, a fresh
    agent and no agent (the `agent_id`).
    """
    actions: set[str] = set()
    agents: set[str] = set()
    for policy in policies:
        actions.update(policy.action_tiers)
        for table in policy.agent_action_tiers.values():
            actions.update(table)
        actions.update(policy.requires_human_actions)
        agents.update(policy.agent_tiers)
        agents.update(policy.agent_action_tiers)
        agents.update(policy.requires_human_agents)
        if policy.agent_id is not None:
            agents.add(policy.agent_id)
    classes = {keys[-1] for keys in map(_action_keys, actions)}
    probe_actions = sorted(actions)
    probe_actions += [_fresh(actions, k[:-1]) for k in sorted(classes)]
    probe_actions.append(_fresh(actions))
    probe_agents: list[str | None] = [None, *sorted(agents), _fresh(agents)]
    return probe_actions, probe_agents


def _check_merged(outer: AutonomyPolicy, merged: AutonomyPolicy) -> None:
    """
    Refuse a merge under which any action or agent resolves a higher tier,
    or needs a human less, than under *outer*.
    """
    actions, agents = _probes(outer, merged)
    moved = merged.agent_id != outer.agent_id
    for agent in agents:
        for action in actions:
            was, _ = _lookup(outer, action, agent)
            now, source = _lookup(merged, action, agent)
            who = f" and agent {agent!r}" if agent is not None else ""
            if now > was:
                if agent is None and moved:
                    detail = (
                        f"action {action!r} would resolve {now} instead of "
                        f"{was}"
                    )
                    raise CeilingExceeded(
                        "agent_id", outer.agent_id, merged.agent_id, detail
                    )
                detail = f"for action {action!r}{who}"
                raise CeilingExceeded(_path(source), was, now, detail)
            if needs_human(outer, action, agent) and not needs_human(
                merged, action, agent
            ):
                detail = f"action {action!r} would no longer need a human"
                raise CeilingExceeded(
                    "agent_id", outer.agent_id, merged.agent_id, detail
                )


def narrow_autonomy(
    outer: AutonomyPolicy | None, new: AutonomyPolicy
) -> AutonomyPolicy:
    """
    Push *new* under the effective policy *outer*: the "autonomy" stack's
    `narrow` hook.

    The result is *new* with every unset field taken from *outer*: `tier`
    and `agent_id` when `None`, table entries *new* does not name,
    `requires_human` OR'ed, the lists unioned (order kept, no duplicates).
    A push may lower tiers and add human requirements; it may not raise a
    tier. Each tier *new* names is checked against what *outer* resolves for
    the same key (`tier` against outer's generic tier, an `action_tiers`
    entry against the action, an `agent_tiers` entry against the agent, an
    `agent_action_tiers` entry against both); then the merged policy is
    checked for every action and agent either policy mentions, so that no
    combination (a new agent tier shadowing an outer action tier, a new
    `agent_id`) resolves higher or needs a human less than before.

    Args:
        outer: The effective policy so far (`None` at the root: *new* is
            returned unchanged).
        new: The policy being pushed.

    Raises:
        CeilingExceeded: Naming the field (`"action_tiers['fs.write']"`),
            the outer tier and the requested one.

    Examples:
        >>> from capscope.policies.autonomy import AutonomyPolicy, narrow_autonomy
        >>> outer = AutonomyPolicy(tier="act_with_approval", requires_human_actions=["process.*"])
        >>> narrow_autonomy(outer, AutonomyPolicy(action_tiers={"fs.write": "suggest"}))
        AutonomyPolicy(tier='act_with_approval', action_tiers={'fs.write': 'suggest'}, requires_human_actions=['process.*'])
        >>> try:
        ...     narrow_autonomy(outer, AutonomyPolicy(action_tiers={"fs.write": "act_auto"}))
        ... except Exception as e:
        ...     print(type(e).__name__, e.field, e.outer, e.requested)
        CeilingExceeded action_tiers['fs.write'] act_with_approval act_auto
    """
    if outer is None or new == outer:
        return new
    _check_entries(outer, new)
    merged = _merge(outer, new)
    _check_merged(outer, merged)
    return merged
