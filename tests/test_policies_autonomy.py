"""Tests for capscope.policies.autonomy: tiers, resolution and narrowing."""

from __future__ import annotations

import pickle

import attrs
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

import capscope as cs
from capscope.policies.autonomy import (
    AutonomyPolicy,
    AutonomyTier,
    narrow_autonomy,
    needs_human,
    resolve_tier,
)

SHADOW, SUGGEST, APPROVAL, AUTO = (
    AutonomyTier.SHADOW,
    AutonomyTier.SUGGEST,
    AutonomyTier.ACT_WITH_APPROVAL,
    AutonomyTier.ACT_AUTO,
)
CHOICES = "shadow, suggest, act_with_approval, act_auto"


class TestAutonomyTier:
    def test_order(self):
        """shadow < suggest < act_with_approval < act_auto."""
        assert [SHADOW, SUGGEST, APPROVAL, AUTO] == sorted(
            [AUTO, SHADOW, APPROVAL, SUGGEST]
        )
        assert [0, 1, 2, 3] == [t.rank for t in AutonomyTier]

    def test_comparisons(self):
        """All four comparison operators follow the rank, not the string."""
        # As strings, "act_auto" < "shadow"; as tiers it is the opposite.
        assert AUTO > SHADOW
        assert AUTO >= APPROVAL
        assert SHADOW < SUGGEST
        assert SUGGEST <= APPROVAL
        assert not APPROVAL < SUGGEST

    def test_equals_its_string(self):
        """A tier is a str enum equal to its value."""
        assert "act_auto" == AUTO
        assert AUTO is AutonomyTier("act_auto")

    def test_plain_strings_order_by_the_tier_they_name(self):
        """A plain tier string compares by rank, never by spelling."""
        assert AUTO > "shadow"
        assert SHADOW < "act_auto"
        assert SUGGEST <= "suggest"
        assert APPROVAL >= "suggest"

    @pytest.mark.parametrize("other", ["zzz", 3, None])
    def test_no_ordering_with_anything_else(self, other):
        """Ordering against a non-tier is a TypeError, not string order."""
        for compare in (
            lambda: SHADOW < other,
            lambda: SHADOW <= other,
            lambda: SHADOW > other,
            lambda: SHADOW >= other,
        ):
            with pytest.raises(TypeError):
                compare()


class TestConstruction:
    def test_defaults(self):
        """Everything is unset or empty by default."""
        policy = AutonomyPolicy()

        assert None is policy.tier
        assert None is policy.agent_id
        assert {} == policy.action_tiers
        assert {} == policy.agent_tiers
        assert {} == policy.agent_action_tiers
        assert False is policy.requires_human
        assert () == policy.requires_human_actions
        assert () == policy.requires_human_agents
        assert () == policy.reviewers

    def test_strings_become_tiers(self):
        """Tier strings are stored as AutonomyTier members, at any depth."""
        policy = AutonomyPolicy(
            tier="suggest",
            action_tiers={"fs.*": "shadow"},
            agent_tiers={"bot": "act_with_approval"},
            agent_action_tiers={"bot": {"fs.write": "shadow"}},
        )

        assert SUGGEST is policy.tier
        assert SHADOW is policy.action_tiers["fs.*"]
        assert APPROVAL is policy.agent_tiers["bot"]
        assert SHADOW is policy.agent_action_tiers["bot"]["fs.write"]

    def test_sequences_drop_duplicates(self):
        """The lists are sets in meaning: duplicates go, first kept."""
        policy = AutonomyPolicy(
            requires_human_actions=["fs.*", "net", "fs.*"],
            requires_human_agents=["b", "a", "b"],
            reviewers=["x", "x"],
        )

        assert ("fs.*", "net") == policy.requires_human_actions
        assert ("b", "a") == policy.requires_human_agents
        assert ("x",) == policy.reviewers

    def test_sequences_become_tuples(self):
        """Any iterable of strings is stored as a tuple."""
        policy = AutonomyPolicy(
            requires_human_actions=["fs.write"],
            requires_human_agents=iter(["bot"]),
            reviewers={"alice": 1},
        )

        assert ("fs.write",) == policy.requires_human_actions
        assert ("bot",) == policy.requires_human_agents
        assert ("alice",) == policy.reviewers

    def test_mappings_are_immutable_copies(self):
        """Tables are copied and read-only, nested ones too."""
        source = {"bot": {"fs.write": "shadow"}}
        policy = AutonomyPolicy(agent_action_tiers=source)
        source["bot"]["fs.write"] = "act_auto"

        assert SHADOW == policy.agent_action_tiers["bot"]["fs.write"]
        with pytest.raises(TypeError):
            policy.agent_action_tiers["bot"]["x"] = AUTO  # type: ignore[index]

    def test_hashable_and_equal_by_value(self):
        """Policies hash and compare as values."""
        a = AutonomyPolicy(
            action_tiers={"fs.write": "shadow", "fs.read": "suggest"},
            agent_action_tiers={"bot": {"fs.*": "shadow"}},
        )
        b = AutonomyPolicy(
            action_tiers={"fs.read": SUGGEST, "fs.write": SHADOW},
            agent_action_tiers={"bot": {"fs.*": SHADOW}},
        )

        assert a == b
        assert hash(a) == hash(b)

    def test_empty_agent_id_is_unset(self):
        """An empty agent_id counts as unset."""
        assert None is AutonomyPolicy(agent_id="").agent_id

    def test_frozen(self):
        """Fields cannot be reassigned."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            AutonomyPolicy().tier = AUTO  # type: ignore[misc]

    def test_pickles(self):
        """A policy pickles (it may ride on CeilingExceeded and events)."""
        policy = AutonomyPolicy(
            tier="suggest", agent_action_tiers={"bot": {"fs.*": "shadow"}}
        )

        assert policy == pickle.loads(pickle.dumps(policy))  # noqa: S301 - our own bytes

    def test_repr(self):
        """The repr shows set fields only, tiers as their strings."""
        policy = AutonomyPolicy(
            tier="suggest",
            agent_tiers={"bot": "shadow"},
            requires_human=True,
        )

        assert (
            "AutonomyPolicy(tier='suggest', agent_tiers={'bot': 'shadow'}, "
            "requires_human=True)"
        ) == repr(policy)
        assert "AutonomyPolicy()" == repr(AutonomyPolicy())


class TestValidation:
    def test_unknown_tier(self):
        """An unknown tier names the field and lists the tiers."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(tier="act_sometimes")  # type: ignore[arg-type]

        assert "tier" == info.value.field
        assert f"'act_sometimes' is not one of {CHOICES}" == info.value.message

    def test_unknown_action_tier(self):
        """An unknown tier in action_tiers names its key."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(action_tiers={"fs.write": "act_sometimes"})

        assert (
            "action_tiers['fs.write']: 'act_sometimes' is not one of "
            f"{CHOICES}"
        ) == str(info.value)

    def test_unknown_agent_tier(self):
        """An unknown tier in agent_tiers names its key."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(agent_tiers={"bot": "auto"})

        assert "agent_tiers['bot']" == info.value.field

    def test_unknown_agent_action_tier(self):
        """An unknown tier in agent_action_tiers names both keys."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(agent_action_tiers={"bot": {"fs.*": None}})

        assert "agent_action_tiers['bot']['fs.*']" == info.value.field

    @pytest.mark.parametrize(
        "key",
        ["fs*", "*", "fs.write.*", "fs.w?", "", "fs write", ".fs", "fs."],
    )
    def test_bad_action_key(self, key):
        """A key that is neither an action nor an action class is refused."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(action_tiers={key: "shadow"})

        assert f"action_tiers[{key!r}]" == info.value.field

    @pytest.mark.parametrize(
        "key", ["fs.write", "fs.*", "network.sse.write", "mcp_release"]
    )
    def test_good_action_keys(self, key):
        """Dotted actions, undotted ones and classes are accepted."""
        assert (
            SHADOW
            == AutonomyPolicy(action_tiers={key: "shadow"}).action_tiers[key]
        )

    def test_bad_requires_human_action(self):
        """A bad entry in requires_human_actions names its index."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(requires_human_actions=["fs.write", "fs*"])

        assert "requires_human_actions[1]" == info.value.field

    @pytest.mark.parametrize(
        "field",
        ["requires_human_actions", "requires_human_agents", "reviewers"],
    )
    def test_bare_string_sequence(self, field):
        """A bare string is not a list of strings."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(**{field: "fs.write"})

        assert field == info.value.field

    def test_empty_agent_name(self):
        """An empty agent name in a table is refused."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(agent_tiers={"": "shadow"})

        assert "agent_tiers['']" == info.value.field

    def test_non_string_agent_id(self):
        """agent_id must be a string or None."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(agent_id=7)  # type: ignore[arg-type]

        assert "agent_id" == info.value.field

    def test_requires_human_must_be_a_bool(self):
        """requires_human is a bool, not any truthy value."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(requires_human="yes")  # type: ignore[arg-type]

        assert "requires_human" == info.value.field

    @pytest.mark.parametrize(
        "field", ["action_tiers", "agent_tiers", "agent_action_tiers"]
    )
    def test_tables_must_be_mappings(self, field):
        """A table field that is not a mapping is refused."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(**{field: [("fs.write", "shadow")]})

        assert field == info.value.field

    def test_agent_action_table_must_be_a_mapping(self):
        """An agent's own table must be a mapping too."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy(agent_action_tiers={"bot": "shadow"})

        assert "agent_action_tiers['bot']" == info.value.field


RESOLUTION = AutonomyPolicy(
    tier="act_with_approval",
    agent_id="default-agent",
    action_tiers={"fs.*": "suggest", "fs.read": "act_auto"},
    agent_tiers={"intern": "shadow", "default-agent": "act_auto"},
    agent_action_tiers={
        "intern": {"fs.read": "suggest"},
        "lead": {"fs.*": "act_auto", "process.exec": "shadow"},
    },
)


class TestResolveTier:
    @pytest.mark.parametrize(
        ("action", "agent", "expected", "why"),
        [
            ("fs.read", "intern", SUGGEST, "agent_action_tiers, exact"),
            ("fs.write", "lead", AUTO, "agent_action_tiers, class"),
            ("process.exec", "lead", SHADOW, "agent_action_tiers, exact"),
            ("net.get", "intern", SHADOW, "agent_tiers"),
            ("fs.write", "intern", SHADOW, "agent_tiers before action_tiers"),
            ("fs.read", "other", AUTO, "action_tiers, exact before class"),
            ("fs.write", "other", SUGGEST, "action_tiers, class"),
            ("net.get", "other", APPROVAL, "tier"),
            ("net.get", "lead", APPROVAL, "lead has no entry: tier"),
            ("fs.write", None, AUTO, "agent_id's agent_tiers"),
        ],
    )
    def test_order(self, action, agent, expected, why):
        """The first hit of the reference's order wins."""
        assert expected == resolve_tier(RESOLUTION, action, agent), why

    def test_given_agent_beats_agent_id(self):
        """An explicit agent is used instead of the policy's agent_id."""
        policy = AutonomyPolicy(
            agent_id="a", agent_tiers={"a": "shadow", "b": "suggest"}
        )

        assert SHADOW == resolve_tier(policy, "x")
        assert SUGGEST == resolve_tier(policy, "x", "b")

    def test_no_tier_anywhere_is_act_auto(self):
        """An empty policy, or none at all, resolves act_auto."""
        assert AUTO == resolve_tier(AutonomyPolicy(), "fs.write")
        assert AUTO == resolve_tier(None, "fs.write")
        assert AUTO == resolve_tier(
            AutonomyPolicy(action_tiers={"fs.*": "shadow"}), "process.exec"
        )

    def test_undotted_action_has_no_class(self):
        """An action without a dot only matches itself."""
        policy = AutonomyPolicy(action_tiers={"deploy.*": "shadow"})

        assert AUTO == resolve_tier(policy, "deploy")
        assert SHADOW == resolve_tier(policy, "deploy.prod")

    def test_class_is_the_first_word(self):
        """The class of a.b.c is a.*, never a.b.*."""
        policy = AutonomyPolicy(action_tiers={"network.*": "suggest"})

        assert SUGGEST == resolve_tier(policy, "network.sse.write")

    def test_returns_a_tier(self):
        """The result is an AutonomyTier member."""
        assert isinstance(resolve_tier(RESOLUTION, "fs.write"), AutonomyTier)


class TestNeedsHuman:
    def test_nothing_required(self):
        """No requirement, no policy: no human needed."""
        assert not needs_human(AutonomyPolicy(), "fs.write")
        assert not needs_human(None, "fs.write")

    def test_requires_human(self):
        """requires_human covers every action and agent."""
        assert needs_human(AutonomyPolicy(requires_human=True), "x", "y")

    def test_action_and_class(self):
        """The action, or its class, listed."""
        policy = AutonomyPolicy(
            requires_human_actions=["fs.write", "process.*"]
        )

        assert needs_human(policy, "fs.write")
        assert needs_human(policy, "process.exec")
        assert not needs_human(policy, "fs.read")

    def test_agent_given_or_default(self):
        """The given agent, else the policy's agent_id, listed."""
        policy = AutonomyPolicy(agent_id="bot", requires_human_agents=["bot"])

        assert needs_human(policy, "fs.read")
        assert needs_human(policy, "fs.read", "bot")
        assert not needs_human(policy, "fs.read", "other")

    def test_independent_of_tier(self):
        """An act_auto tier does not lift a human requirement."""
        policy = AutonomyPolicy(
            tier="act_auto", requires_human_actions=["fs.*"]
        )

        assert needs_human(policy, "fs.write")


class TestNarrowAutonomy:
    def test_root_push_is_unchanged(self):
        """With no outer policy, the pushed policy is stored as it is."""
        new = AutonomyPolicy(tier="act_auto")

        assert new is narrow_autonomy(None, new)

    def test_empty_push_inherits_everything(self):
        """An empty push yields the outer policy."""
        outer = AutonomyPolicy(
            tier="suggest", agent_id="bot", requires_human=True
        )

        assert outer == narrow_autonomy(outer, AutonomyPolicy())

    def test_same_policy_again(self):
        """Pushing the effective policy again changes nothing."""
        outer = AutonomyPolicy(tier="suggest", action_tiers={"fs.*": "shadow"})

        assert outer == narrow_autonomy(outer, outer)

    def test_unset_fields_are_inherited(self):
        """The result is new with every unset field taken from outer."""
        outer = AutonomyPolicy(
            tier="act_with_approval",
            agent_id="bot",
            action_tiers={"fs.*": "suggest", "net.*": "suggest"},
            agent_tiers={"bot": "act_with_approval"},
            agent_action_tiers={"bot": {"fs.read": "suggest"}},
            requires_human_actions=["process.*"],
            requires_human_agents=["intern"],
            reviewers=["alice", "bob"],
        )
        new = AutonomyPolicy(
            action_tiers={"fs.*": "shadow"},
            agent_action_tiers={
                "bot": {"fs.write": "shadow"},
                "x": {"a.*": "shadow"},
            },
            requires_human_actions=["fs.write", "process.*"],
            reviewers=["bob", "carol"],
        )

        merged = narrow_autonomy(outer, new)

        assert (
            AutonomyPolicy(
                tier="act_with_approval",
                agent_id="bot",
                action_tiers={"fs.*": "shadow", "net.*": "suggest"},
                agent_tiers={"bot": "act_with_approval"},
                agent_action_tiers={
                    "bot": {"fs.read": "suggest", "fs.write": "shadow"},
                    "x": {"a.*": "shadow"},
                },
                requires_human_actions=["process.*", "fs.write"],
                requires_human_agents=["intern"],
                reviewers=["alice", "bob", "carol"],
            )
            == merged
        )

    def test_requires_human_is_kept(self):
        """A push that leaves requires_human False keeps the outer True."""
        outer = AutonomyPolicy(requires_human=True)

        assert narrow_autonomy(
            outer, AutonomyPolicy(tier="suggest")
        ).requires_human

    def test_new_values_win_when_lower(self):
        """Lowering a tier or adding a requirement is allowed."""
        outer = AutonomyPolicy(tier="act_with_approval")
        new = AutonomyPolicy(
            tier="shadow", agent_id="bot", requires_human=True
        )

        assert new == narrow_autonomy(outer, new)

    def test_equal_tier_is_allowed(self):
        """Asking for exactly the outer tier is not a widening."""
        outer = AutonomyPolicy(action_tiers={"fs.*": "suggest"})
        new = AutonomyPolicy(action_tiers={"fs.write": "suggest"})

        assert SUGGEST == resolve_tier(narrow_autonomy(outer, new), "fs.write")

    @pytest.mark.parametrize(
        ("outer", "new", "field", "was", "asked"),
        [
            pytest.param(
                AutonomyPolicy(tier="suggest"),
                AutonomyPolicy(tier="act_auto"),
                "tier",
                SUGGEST,
                AUTO,
                id="tier",
            ),
            pytest.param(
                AutonomyPolicy(action_tiers={"fs.*": "suggest"}),
                AutonomyPolicy(action_tiers={"fs.write": "act_with_approval"}),
                "action_tiers['fs.write']",
                SUGGEST,
                APPROVAL,
                id="action_tiers vs outer class",
            ),
            pytest.param(
                AutonomyPolicy(tier="shadow"),
                AutonomyPolicy(action_tiers={"fs.*": "suggest"}),
                "action_tiers['fs.*']",
                SHADOW,
                SUGGEST,
                id="action_tiers vs outer tier",
            ),
            pytest.param(
                AutonomyPolicy(agent_tiers={"bot": "suggest"}),
                AutonomyPolicy(agent_tiers={"bot": "act_auto"}),
                "agent_tiers['bot']",
                SUGGEST,
                AUTO,
                id="agent_tiers",
            ),
            pytest.param(
                AutonomyPolicy(tier="act_with_approval"),
                AutonomyPolicy(agent_tiers={"bot": "act_auto"}),
                "agent_tiers['bot']",
                APPROVAL,
                AUTO,
                id="agent_tiers vs outer tier",
            ),
            pytest.param(
                AutonomyPolicy(agent_tiers={"bot": "shadow"}),
                AutonomyPolicy(
                    agent_action_tiers={"bot": {"fs.read": "suggest"}}
                ),
                "agent_action_tiers['bot']['fs.read']",
                SHADOW,
                SUGGEST,
                id="agent_action_tiers",
            ),
            pytest.param(
                AutonomyPolicy(action_tiers={"fs.*": "suggest"}),
                AutonomyPolicy(
                    agent_action_tiers={"bot": {"fs.*": "act_auto"}}
                ),
                "agent_action_tiers['bot']['fs.*']",
                SUGGEST,
                AUTO,
                id="agent_action_tiers vs outer action_tiers",
            ),
        ],
    )
    def test_widening_raises(self, outer, new, field, was, asked):
        """A tier above the outer resolution raises, naming field and tiers."""
        with pytest.raises(cs.CeilingExceeded) as info:
            narrow_autonomy(outer, new)

        assert (field, was, asked) == (
            info.value.field,
            info.value.outer,
            info.value.requested,
        )
        message = str(info.value)
        assert field in message
        assert str(was) in message
        assert str(asked) in message

    def test_agent_tier_hiding_an_action_tier_raises(self):
        """A new agent tier that would shadow an outer action tier raises."""
        outer = AutonomyPolicy(
            tier="suggest", action_tiers={"fs.write": "shadow"}
        )
        new = AutonomyPolicy(agent_tiers={"bot": "suggest"})

        with pytest.raises(cs.CeilingExceeded) as info:
            narrow_autonomy(outer, new)

        assert ("agent_tiers['bot']", SHADOW, SUGGEST) == (
            info.value.field,
            info.value.outer,
            info.value.requested,
        )
        assert "fs.write" in str(info.value)

    def test_new_agent_id_escaping_an_agent_tier_raises(self):
        """Switching agent_id away from a restricted agent raises."""
        outer = AutonomyPolicy(agent_id="bot", agent_tiers={"bot": "shadow"})

        with pytest.raises(cs.CeilingExceeded) as info:
            narrow_autonomy(outer, AutonomyPolicy(agent_id="other"))

        assert ("agent_id", "bot", "other") == (
            info.value.field,
            info.value.outer,
            info.value.requested,
        )

    def test_new_agent_id_escaping_requires_human_raises(self):
        """Switching agent_id away from a human-required agent raises."""
        outer = AutonomyPolicy(agent_id="bot", requires_human_agents=["bot"])

        with pytest.raises(cs.CeilingExceeded, match="need a human"):
            narrow_autonomy(outer, AutonomyPolicy(agent_id="other"))

    def test_new_agent_id_with_the_same_limits_is_allowed(self):
        """A new agent_id that resolves no higher is fine."""
        outer = AutonomyPolicy(tier="suggest")

        assert (
            "w1"
            == narrow_autonomy(outer, AutonomyPolicy(agent_id="w1")).agent_id
        )

    def test_action_tiers_checked_for_the_outer_agent(self):
        """An action tier above what the outer agent resolves raises."""
        outer = AutonomyPolicy(agent_id="bot", agent_tiers={"bot": "shadow"})

        with pytest.raises(cs.CeilingExceeded) as info:
            narrow_autonomy(
                outer, AutonomyPolicy(action_tiers={"fs.write": "suggest"})
            )

        assert "action_tiers['fs.write']" == info.value.field
        assert "agent_tiers['bot']" in str(info.value)

    def test_inputs_unchanged(self):
        """Narrowing builds a new policy; both inputs stay as they were."""
        outer = AutonomyPolicy(action_tiers={"a.*": "suggest"})
        new = AutonomyPolicy(action_tiers={"b.*": "shadow"})

        narrow_autonomy(outer, new)

        assert {"a.*": SUGGEST} == outer.action_tiers
        assert {"b.*": SHADOW} == new.action_tiers


class TestCodec:
    def test_to_dict(self):
        """to_dict() holds non-default fields as JSON data."""
        policy = AutonomyPolicy(
            tier="suggest",
            agent_action_tiers={"bot": {"fs.*": "shadow"}},
            requires_human=True,
            reviewers=["alice"],
        )

        assert {
            "tier": "suggest",
            "agent_action_tiers": {"bot": {"fs.*": "shadow"}},
            "requires_human": True,
            "reviewers": ["alice"],
        } == policy.to_dict()

    def test_round_trip(self):
        """from_dict(to_dict(p)) == p with every field set."""
        policy = AutonomyPolicy(
            tier="suggest",
            agent_id="bot",
            action_tiers={"fs.*": "shadow"},
            agent_tiers={"bot": "act_with_approval"},
            agent_action_tiers={"bot": {"fs.read": "suggest"}},
            requires_human=True,
            requires_human_actions=["process.*"],
            requires_human_agents=["intern"],
            reviewers=["alice"],
        )

        assert policy == AutonomyPolicy.from_dict(policy.to_dict())

    def test_error_names_key_path(self):
        """A bad value in the data names its full key path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy.from_dict(
                {"agent_action_tiers": {"bot": {"fs.write": "act_sometimes"}}}
            )

        assert "autonomy.agent_action_tiers['bot']['fs.write']" == (
            info.value.field
        )
        assert f"'act_sometimes' is not one of {CHOICES}" == info.value.message

    def test_unknown_key(self):
        """An unknown key is refused under the given path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            AutonomyPolicy.from_dict({"autonomy_tier": "shadow"}, path="job")

        assert "job.autonomy_tier" == info.value.field
        assert "unknown key" in info.value.message


# --- Properties -------------------------------------------------------------

ACTIONS = ["fs.write", "fs.read", "fs.*", "process.exec", "process.*", "net"]
AGENTS = ["a", "b", "c"]
#: What the properties probe: the alphabet plus names no policy mentions.
PROBE_ACTIONS = [*ACTIONS, "fs.other", "other.thing", "zzz"]
PROBE_AGENTS = [None, *AGENTS, "nobody"]

tiers = st.sampled_from(list(AutonomyTier))
opt_tiers = st.none() | tiers
actions = st.sampled_from(ACTIONS)
agents = st.sampled_from(AGENTS)
policies = st.builds(
    AutonomyPolicy,
    tier=opt_tiers,
    agent_id=st.none() | agents,
    action_tiers=st.dictionaries(actions, tiers, max_size=3),
    agent_tiers=st.dictionaries(agents, tiers, max_size=2),
    agent_action_tiers=st.dictionaries(
        agents, st.dictionaries(actions, tiers, max_size=2), max_size=2
    ),
    requires_human=st.booleans(),
    requires_human_actions=st.lists(actions, max_size=2),
    requires_human_agents=st.lists(agents, max_size=2),
    reviewers=st.lists(st.sampled_from(["alice", "bob"]), max_size=2),
)


def _resolutions(policy):
    return {
        (action, agent): (
            resolve_tier(policy, action, agent),
            needs_human(policy, action, agent),
        )
        for action in PROBE_ACTIONS
        for agent in PROBE_AGENTS
    }


class TestProperties:
    @given(policies)
    def test_round_trip(self, policy):
        """from_dict(to_dict(p)) == p for any policy."""
        assert policy == AutonomyPolicy.from_dict(policy.to_dict())

    @settings(max_examples=300)
    @given(st.lists(policies, min_size=1, max_size=6))
    def test_pushes_never_widen(self, pushes):
        """
        Any sequence of successful pushes never resolves a higher tier, nor
        drops a human requirement, for any action and agent.
        """
        top = None
        accepted = 0
        for new in pushes:
            try:
                narrowed = narrow_autonomy(top, new)
            except cs.CeilingExceeded:
                assert top is not None  # a root push never raises
                continue
            accepted += 1
            if top is not None:
                before, after = _resolutions(top), _resolutions(narrowed)
                for key, (tier, human) in after.items():
                    was_tier, was_human = before[key]
                    assert tier <= was_tier, key
                    assert human or not was_human, key
            top = narrowed
        note(f"{accepted} of {len(pushes)} pushes accepted")

    @given(policies, policies)
    def test_merge_keeps_every_new_entry(self, outer, new):
        """A successful push keeps every entry new names, as new names it."""
        try:
            merged = narrow_autonomy(outer, new)
        except cs.CeilingExceeded:
            return

        for action, tier in new.action_tiers.items():
            assert tier == merged.action_tiers[action]
        for agent, tier in new.agent_tiers.items():
            assert tier == merged.agent_tiers[agent]
        for agent, table in new.agent_action_tiers.items():
            for action, tier in table.items():
                assert tier == merged.agent_action_tiers[agent][action]
        assert set(new.requires_human_actions) <= set(
            merged.requires_human_actions
        )
        assert set(outer.reviewers) | set(new.reviewers) == set(
            merged.reviewers
        )

    @given(
        policies,
        st.dictionaries(actions, st.just(SHADOW), max_size=3),
        st.dictionaries(agents, st.just(SHADOW), max_size=2),
    )
    def test_lowering_to_shadow_always_succeeds(
        self, outer, by_action, by_agent
    ):
        """Asking for the lowest tier anywhere is never refused."""
        new = AutonomyPolicy(
            tier="shadow",
            action_tiers=by_action,
            agent_tiers=by_agent,
            agent_action_tiers=dict.fromkeys(by_agent, by_action),
        )

        narrow_autonomy(outer, new)

    @given(policies)
    def test_pushing_the_top_again_is_a_no_op(self, policy):
        """Narrowing a policy by itself or by nothing gives it back."""
        assert policy == narrow_autonomy(policy, policy)
        assert policy == narrow_autonomy(policy, AutonomyPolicy())
