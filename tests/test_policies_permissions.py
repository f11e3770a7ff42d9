"""
Dynamic permissions (`capscope.policies.permissions`): rules and their
matchers, one frame's verdict, every frame together, escalation answers and
the codec.
"""

from __future__ import annotations

import json
from pathlib import PurePosixPath

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import capscope as cs
from capscope.policies._common import ToolCall
from capscope.policies.permissions import (
    DynamicPermissionPolicy,
    EscalationAnswer,
    PermissionRule,
    PermissionVerdict,
    check_permissions,
    parse_escalation_answer,
)

Rule = PermissionRule
Policy = DynamicPermissionPolicy


def is_large(arguments):
    return arguments.get("n", 0) > 10


def boom(arguments):
    raise RuntimeError("matcher bug")


class TestPermissionRuleConstruction:
    @pytest.mark.parametrize(
        ("matcher", "stored"),
        [
            (None, None),
            (True, None),
            (False, False),
            ("/etc/*", ("/etc/*",)),
            (["a*", "b*"], ("a*", "b*")),
            (("a*",), ("a*",)),
            ({"path": "/etc/*"}, {"path": ("/etc/*",)}),
            (
                {"path": ["/a/*", "/b/*"], "mode": "w"},
                {"path": ("/a/*", "/b/*"), "mode": ("w",)},
            ),
        ],
    )
    def test_matchers_are_normalised(self, matcher, stored):
        """Every matcher kind is stored in one canonical, hashable form."""

        rule = Rule("fs.*", matcher)

        assert stored == rule.matcher
        assert rule == Rule("fs.*", matcher)
        assert hash(rule) == hash(Rule("fs.*", matcher))

    def test_predicate_is_kept(self):
        """A callable matcher is stored as it is."""

        assert is_large is Rule("calc", is_large).matcher

    def test_default_matcher_is_any(self):
        """A rule with only a tool glob matches any arguments."""

        assert Rule("fs.*") == Rule("fs.*", True)

    @pytest.mark.parametrize(
        ("kwargs", "field", "fragment"),
        [
            ({"tool": ""}, "tool", "empty"),
            ({"tool": 5}, "tool", "string"),
            ({"tool": "fs.[ab"}, "tool", "malformed"),
            ({"tool": "x", "matcher": 3}, "matcher", "predicate"),
            ({"tool": "x", "matcher": b"*"}, "matcher", "predicate"),
            ({"tool": "x", "matcher": []}, "matcher", "matches nothing"),
            ({"tool": "x", "matcher": ["ok", 1]}, "matcher[1]", "string"),
            ({"tool": "x", "matcher": "[x"}, "matcher", "malformed"),
            ({"tool": "x", "matcher": {}}, "matcher", "any arguments"),
            ({"tool": "x", "matcher": {"": "a"}}, "matcher['']", "names"),
            ({"tool": "x", "matcher": {1: "a"}}, "matcher[1]", "names"),
            ({"tool": "x", "matcher": {"p": 3}}, "matcher['p']", "glob"),
            ({"tool": "x", "matcher": {"p": []}}, "matcher['p']", "nothing"),
            (
                {"tool": "x", "matcher": {"p": ["a", "[b"]}},
                "matcher['p'][1]",
                "malformed",
            ),
        ],
    )
    def test_bad_rule_names_the_field(self, kwargs, field, fragment):
        """Bad input raises PolicyConfigError naming the field."""

        with pytest.raises(cs.PolicyConfigError) as info:
            Rule(**kwargs)

        assert field == info.value.field
        assert fragment in info.value.message

    @pytest.mark.parametrize(
        ("rule", "text"),
        [
            (Rule("fs.*"), "<rule 'fs.*': any arguments>"),
            (Rule("net.*", False), "<rule 'net.*': never>"),
            (
                Rule("sh", "*rm*"),
                "<rule 'sh': a string argument matches '*rm*'>",
            ),
            (
                Rule("sh", ["a*", "b*"]),
                "<rule 'sh': a string argument matches one of 'a*', 'b*'>",
            ),
            (
                Rule("fs.write", {"path": "/etc/*", "mode": ["w", "a"]}),
                "<rule 'fs.write': path matches '/etc/*' and mode matches one of 'w', 'a'>",
            ),
            (Rule("calc", is_large), "<rule 'calc': predicate is_large>"),
        ],
    )
    def test_repr_reads_as_a_sentence(self, rule, text):
        """The repr says what the rule matches (it appears in denials)."""

        assert text == repr(rule)


class TestPermissionRuleMatches:
    @pytest.mark.parametrize(
        ("rule", "call", "expected"),
        [
            # tool glob
            (Rule("fs.*"), ToolCall("fs.read"), True),
            (Rule("fs.*"), ToolCall("net.get"), False),
            (Rule("fs.read"), ToolCall("fs.reader"), False),
            # any / never
            (Rule("x", None), ToolCall("x", {"a": object()}), True),
            (Rule("x", False), ToolCall("x"), False),
            # globs over every string, recursively
            (Rule("x", "*rm -rf*"), ToolCall("x", {"cmd": "rm -rf /"}), True),
            (Rule("x", "rm"), ToolCall("x", {"cmd": "rm -rf /"}), False),
            (
                Rule("x", "/etc/*"),
                ToolCall("x", {"a": {"b": [1, ("q", {"c": "/etc/passwd"})]}}),
                True,
            ),
            (Rule("x", ["a", "b"]), ToolCall("x", {"p": 1, "q": "b"}), True),
            (Rule("x", "/etc/*"), ToolCall("x", {"p": "/ws/a"}), False),
            (Rule("x", "key"), ToolCall("x", {"key": 1}), False),
            (
                Rule("x", "/etc/*"),
                ToolCall("x", {"p": PurePosixPath("/etc/passwd")}),
                True,
            ),
            # no string anywhere: the compact JSON text
            (Rule("x", '*"n":5*'), ToolCall("x", {"n": 5}), True),
            (Rule("x", "{}"), ToolCall("x"), True),
            (Rule("x", "*6*"), ToolCall("x", {"n": [5, None, True]}), False),
            # {argument: globs}: every argument named, each a string
            (
                Rule("x", {"path": "/etc/*"}),
                ToolCall("x", {"path": "/etc/a"}),
                True,
            ),
            (
                Rule("x", {"path": "/etc/*"}),
                ToolCall("x", {"path": "/ws/a"}),
                False,
            ),
            (
                Rule("x", {"path": "/etc/*"}),
                ToolCall("x", {"other": "/etc/a"}),
                False,
            ),
            (
                Rule("x", {"path": "/etc/*"}),
                ToolCall("x", {"path": ["/etc/a"]}),
                False,
            ),
            (
                Rule("x", {"path": ["/a/*", "/b/*"]}),
                ToolCall("x", {"path": "/b/c"}),
                True,
            ),
            (
                Rule("x", {"path": "/a/*", "mode": "w"}),
                ToolCall("x", {"path": "/a/c", "mode": "r"}),
                False,
            ),
            (
                Rule("x", {"path": "/a/*", "mode": "w"}),
                ToolCall("x", {"path": "/a/c", "mode": "w"}),
                True,
            ),
            (
                Rule("x", {"path": "/etc/*"}),
                ToolCall("x", {"path": PurePosixPath("/etc/a")}),
                True,
            ),
            # predicates: truthy matches
            (Rule("calc", is_large), ToolCall("calc", {"n": 11}), True),
            (Rule("calc", is_large), ToolCall("calc", {"n": 3}), False),
            (Rule("calc", lambda a: a), ToolCall("calc", {}), False),
            (Rule("calc", is_large), ToolCall("other", {"n": 11}), False),
        ],
    )
    def test_matches(self, rule, call, expected):
        """Each matcher kind against calls that match and calls that do not."""

        assert expected == rule.matches(call)

    def test_self_containing_arguments(self):
        """A container holding itself is searched once, without recursion."""

        loop: list[object] = []
        loop.append(loop)

        assert not Rule("x", "hit").matches(ToolCall("x", {"a": loop, "n": 1}))
        loop.append("hit")
        assert Rule("x", "hit").matches(ToolCall("x", {"a": loop}))

    def test_deeply_nested_arguments(self):
        """Deep nesting does not hit the recursion limit."""

        deep: object = "/etc/passwd"
        for _ in range(5000):
            deep = [deep]

        assert Rule("x", "/etc/*").matches(ToolCall("x", {"a": deep}))

    def test_predicate_error_propagates(self):
        """matches() lets a predicate's exception through."""

        with pytest.raises(RuntimeError, match="matcher bug"):
            Rule("x", boom).matches(ToolCall("x"))


class TestPolicyConstruction:
    def test_list_of_globs(self):
        """A list of tool globs is a list of any-argument rules."""

        p = Policy(allow=["fs.*", "net.get"])

        assert (Rule("fs.*"), Rule("net.get")) == p.allow

    def test_table(self):
        """A table `{tool_glob: matcher}` gives one rule per key, in order."""

        p = Policy(deny={"fs.*": {"path": "/etc/*"}, "net.*": None})

        assert (Rule("fs.*", {"path": "/etc/*"}), Rule("net.*")) == p.deny

    def test_rules_and_rule_tables(self):
        """A list may mix globs, rules and rule tables."""

        p = Policy(
            allow=[
                "a",
                Rule("b", is_large),
                {"tool": "c", "matcher": ["x*"]},
                {"tool": "d"},
            ]
        )

        assert (
            Rule("a"),
            Rule("b", is_large),
            Rule("c", "x*"),
            Rule("d"),
        ) == p.allow

    def test_defaults(self):
        """Allow unset, no deny rules and no escalation handler."""

        assert (None, (), None) == attrs.astuple(Policy(), recurse=False)

    def test_unset_allow_versus_empty_allow(self):
        """allow=None puts no allow restriction; allow=() allows nothing."""
        call = ToolCall("fs.read")

        assert Policy().evaluate(call).allowed
        assert not Policy(allow=()).evaluate(call).allowed

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"allow": "fs.*"}, "allow"),
            ({"allow": 3}, "allow"),
            ({"allow": ["fs.*", 3]}, "allow[1]"),
            ({"allow": ["fs.*", ""]}, "allow[1]"),
            ({"allow": ["fs.*", "fs.[x"]}, "allow[1]"),
            ({"deny": {"fs.*": 3}}, "deny['fs.*']"),
            ({"deny": {"fs.[x": None}}, "deny['fs.[x']"),
            (
                {"deny": {"fs.*": {"path": ["ok", 2]}}},
                "deny['fs.*']['path'][1]",
            ),
            ({"deny": {"fs.*": []}}, "deny['fs.*']"),
            ({"deny": [{"tool": "x", "matcher": 3}]}, "deny[0].matcher"),
            ({"deny": [{"tool": "x", "match": None}]}, "deny[0].match"),
            ({"deny": [{"matcher": None}]}, "deny[0]"),
            ({"on_escalation": "ask"}, "on_escalation"),
        ],
    )
    def test_bad_policy_names_the_field(self, kwargs, field):
        """Bad input raises PolicyConfigError naming the field or item."""

        with pytest.raises(cs.PolicyConfigError) as info:
            Policy(**kwargs)

        assert field == info.value.field

    def test_hashable(self):
        """Policies with table matchers are hashable values."""

        p = Policy(deny={"fs.*": {"path": "/etc/*"}})

        assert hash(p) == hash(Policy(deny={"fs.*": {"path": ["/etc/*"]}}))


class TestEvaluate:
    def test_no_rules_allows(self):
        """A frame without rules allows everything."""

        verdict = Policy().evaluate(ToolCall("anything"))

        assert (
            PermissionVerdict(True, "no permission rule denies anything")
            == verdict
        )

    def test_deny_rule(self):
        """A matching deny rule denies; the reason names the rule."""

        rule = Rule("fs.*", {"path": "/etc/*"})
        p = Policy(deny=[rule])

        verdict = p.evaluate(ToolCall("fs.read", {"path": "/etc/passwd"}))

        assert (
            PermissionVerdict(False, f"fs.read is denied by {rule!r}", rule)
            == verdict
        )
        assert p.evaluate(ToolCall("fs.read", {"path": "/ws/a"})).allowed

    def test_deny_beats_allow_in_one_frame(self):
        """Within a frame, a matching deny rule beats a matching allow rule."""

        p = Policy(allow=["fs.*"], deny=["fs.write"])

        assert not p.evaluate(ToolCall("fs.write")).allowed
        assert p.evaluate(ToolCall("fs.read")).allowed

    def test_allow_list(self):
        """A non-empty allow list must match; the rule that did is reported."""

        rule = Rule("fs.read*")
        p = Policy(allow=[rule, "net.get"])

        allowed = p.evaluate(ToolCall("fs.read_text"))
        denied = p.evaluate(ToolCall("fs.write"))

        assert (
            PermissionVerdict(
                True, f"fs.read_text is allowed by {rule!r}", rule
            )
            == allowed
        )
        assert (
            PermissionVerdict(
                False, "fs.write is not allowed by this policy's permissions"
            )
            == denied
        )

    def test_allow_never(self):
        """An allow rule with matcher False allows nothing."""

        assert not Policy(allow={"*": False}).evaluate(ToolCall("x")).allowed

    @pytest.mark.parametrize("tier", ["allow", "deny"])
    def test_predicate_error_denies(self, tier):
        """A predicate that raises denies (fail closed), naming rule and error."""

        rule = Rule("x", boom)

        verdict = Policy(**{tier: [rule]}).evaluate(ToolCall("x"))

        assert not verdict.allowed
        assert rule is verdict.rule
        assert repr(rule) in verdict.reason
        assert "matcher bug" in verdict.reason


class TestCheckPermissions:
    def test_no_frames(self):
        """No frames: no opinion."""

        assert None is check_permissions([], ToolCall("x"))

    def test_every_frame_allows(self):
        """None when every frame allows."""

        frames = [Policy(allow=["fs.*"]), Policy(deny=["fs.write"])]

        assert None is check_permissions(frames, ToolCall("fs.read"))

    def test_outer_deny_beats_inner_allow(self):
        """An outer frame's deny wins over an inner frame's explicit allow."""

        outer = Policy(deny={"shell.*": "*rm *"})
        inner = Policy(allow=["shell.*"])
        call = ToolCall("shell.run", {"cmd": "rm -r build"})

        result = check_permissions([outer, inner], call)

        assert result is not None
        assert 0 == result[0]
        assert outer.evaluate(call) == result[1]

    def test_inner_deny_is_reported_with_its_index(self):
        """The denying frame's index counts outer to inner."""

        frames = [Policy(), Policy(allow=["fs.*"]), Policy(deny=["fs.write"])]

        result = check_permissions(frames, ToolCall("fs.write"))

        assert result is not None
        assert 2 == result[0]

    def test_first_denial_wins(self):
        """With several denying frames, the outermost is reported."""

        frames = [Policy(), Policy(allow=["net.*"]), Policy(deny=["*"])]

        result = check_permissions(frames, ToolCall("fs.read"))

        assert result is not None
        assert (1, "fs.read is not allowed by this policy's permissions") == (
            result[0],
            result[1].reason,
        )

    def test_grant_for_a_frame(self):
        """A grant remembered for a frame lifts that frame's denial only."""

        frames = [Policy(deny=["fs.write"]), Policy(allow=["fs.read"])]
        call = ToolCall("fs.write")
        asked: list[int] = []

        def granted(index, policy):
            asked.append(index)
            return index == 0

        result = check_permissions(frames, call, granted=granted)

        assert result is not None
        assert 1 == result[0]
        assert [0, 1] == asked
        assert None is check_permissions(
            frames, call, granted=lambda i, p: True
        )

    def test_grant_is_asked_only_about_denials(self):
        """granted() is consulted only for frames that deny, with the frame."""

        frames = [Policy(), Policy(deny=["x"]), Policy()]
        seen = []

        check_permissions(
            frames,
            ToolCall("x"),
            granted=lambda i, p: seen.append((i, p)) or False,
        )

        assert [(1, frames[1])] == seen


class TestParseEscalationAnswer:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [
            (True, EscalationAnswer.ONCE),
            ("once", EscalationAnswer.ONCE),
            (EscalationAnswer.ONCE, EscalationAnswer.ONCE),
            ("frame", EscalationAnswer.FRAME),
            ("scope", EscalationAnswer.FRAME),
            ("session", EscalationAnswer.FRAME),
            (False, None),
            (None, None),
            (1, None),
            (0, None),
            ("yes", None),
            ("Once", None),
            ("", None),
            ({"grant": True}, None),
            (["once"], None),
            (object(), None),
        ],
    )
    def test_table(self, value, expected):
        """Only clear grants grant; everything else is a denial."""

        assert expected is parse_escalation_answer(value)


class TestCodec:
    def test_empty(self):
        """A policy without rules is empty data."""

        assert {} == Policy().to_dict()

    def test_to_dict_shapes(self):
        """Any-argument rules are globs, the others rule tables."""

        p = Policy(
            allow=["fs.*", Rule("net.get", ["https://*"])],
            deny={"fs.*": {"path": "/etc/*"}, "x": False},
        )

        data = p.to_dict()

        assert {
            "allow": ["fs.*", {"tool": "net.get", "matcher": ["https://*"]}],
            "deny": [
                {"tool": "fs.*", "matcher": {"path": ["/etc/*"]}},
                {"tool": "x", "matcher": False},
            ],
        } == data
        assert data == json.loads(json.dumps(data))
        assert p == Policy.from_dict(data)

    def test_same_tool_twice_round_trips(self):
        """Two rules on one tool glob survive (a table could not hold them)."""

        p = Policy(
            deny=[Rule("fs.*", {"path": "/etc/*"}), Rule("fs.*", "*.pem")]
        )

        assert p == Policy.from_dict(p.to_dict())

    @pytest.mark.parametrize(
        ("policy", "field"),
        [
            (Policy(allow=[Rule("calc", is_large)]), "allow[0].matcher"),
            (Policy(deny=["a", Rule("calc", is_large)]), "deny[1].matcher"),
            (Policy(on_escalation=print), "on_escalation"),
        ],
    )
    def test_callables_are_not_data(self, policy, field):
        """to_dict refuses predicates and on_escalation, naming the field."""

        with pytest.raises(cs.PolicyConfigError) as info:
            policy.to_dict()

        assert field == info.value.field
        assert "not data" in info.value.message

    def test_rule_codec(self):
        """A rule alone round-trips; a predicate rule refuses."""

        rule = Rule("fs.*", {"path": ["/a/*", "/b/*"]})

        assert rule == Rule.from_dict(rule.to_dict())
        assert {"tool": "fs.*"} == Rule("fs.*").to_dict()
        with pytest.raises(cs.PolicyConfigError, match="matcher"):
            Rule("x", is_large).to_dict()

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"alow": []}, "permissions.alow"),
            (
                {"deny": {"fs.*": {"path": 5}}},
                "permissions.deny['fs.*']['path']",
            ),
            (
                {"allow": ["a", {"tool": "b", "matcher": {"p": ["[x"]}}]},
                "permissions.allow[1].matcher['p'][0]",
            ),
            (
                {"allow": [{"tool": "b", "extra": 1}]},
                "permissions.allow[0].extra",
            ),
            ("deny", "permissions"),
        ],
    )
    def test_from_dict_errors_name_the_key_path(self, data, field):
        """from_dict errors carry the key path, unknown keys included."""

        with pytest.raises(cs.PolicyConfigError) as info:
            Policy.from_dict(data)

        assert field == info.value.field

    def test_custom_path(self):
        """The key path prefix can be chosen."""

        with pytest.raises(cs.PolicyConfigError) as info:
            Policy.from_dict({"deny": [1]}, path="agents[0].permissions")

        assert "agents[0].permissions.deny[0]" == info.value.field


# --- properties ------------------------------------------------------------

_TOOLS = ["fs.read", "fs.write", "net.get", "shell.run"]
_TOOL_GLOBS = st.sampled_from(
    ["fs.*", "fs.read", "net.*", "*", "shell.run", "?s.*"]
)
_VALUE_GLOBS = st.sampled_from(
    ["/etc/*", "*rm*", "a", "*", "[ab]*", '*"n":1*']
)
_ARG_NAMES = st.sampled_from(["path", "cmd", "n"])


def _data_matchers():
    globs = st.lists(_VALUE_GLOBS, min_size=1, max_size=3)
    return st.one_of(
        st.none(),
        st.booleans(),
        _VALUE_GLOBS,
        globs,
        st.dictionaries(
            _ARG_NAMES, _VALUE_GLOBS | globs, min_size=1, max_size=2
        ),
    )


def _rules(matchers):
    return st.lists(st.builds(Rule, _TOOL_GLOBS, matchers), max_size=3)


def _policies(matchers):
    return st.builds(
        Policy, allow=st.none() | _rules(matchers), deny=_rules(matchers)
    )


_PREDICATES = st.sampled_from(
    [is_large, lambda a: "path" in a, lambda a: False]
)
data_policies = _policies(_data_matchers())
any_policies = _policies(_data_matchers() | _PREDICATES)

_VALUES = st.recursive(
    st.none()
    | st.integers(0, 20)
    | st.sampled_from(["/etc/passwd", "/ws/a", "rm -rf x", "a", "b"]),
    lambda inner: st.lists(inner, max_size=3),
    max_leaves=6,
)
calls = st.builds(
    ToolCall,
    st.sampled_from(_TOOLS),
    st.dictionaries(_ARG_NAMES, _VALUES, max_size=3),
)


class TestProperties:
    @given(data_policies)
    def test_round_trip(self, p):
        """from_dict(to_dict(p)) == p for callable-free policies, via JSON."""

        assert p == Policy.from_dict(json.loads(json.dumps(p.to_dict())))

    @given(
        st.lists(any_policies, max_size=4),
        any_policies,
        st.integers(0, 4),
        calls,
    )
    def test_a_push_never_widens(self, frames, extra, at, call):
        """Adding a frame anywhere never turns a denial into an allow."""

        before = check_permissions(frames, call)
        widened = [*frames[:at], extra, *frames[at:]]

        after = check_permissions(widened, call)

        if before is not None:
            assert after is not None
        if after is None:
            assert before is None

    @given(st.lists(any_policies, max_size=4), calls)
    def test_every_frame_must_allow(self, frames, call):
        """check_permissions allows exactly when every frame allows."""

        verdicts = [p.evaluate(call) for p in frames]

        result = check_permissions(frames, call)

        assert (result is None) == all(v.allowed for v in verdicts)
        if result is not None:
            index = next(i for i, v in enumerate(verdicts) if not v.allowed)
            assert (index, verdicts[index]) == result


class TestPathForms:
    """
    A value that is one of the call's paths is matched as the kernel sees
    it too: a deny catches any spelling of a denied file, an allow holds
    only when the file opened is allowed as well.
    """

    @pytest.fixture
    def tree(self, tmp_path):
        ws = tmp_path / "ws"
        secret = tmp_path / "secret"
        ws.mkdir()
        secret.mkdir()
        (secret / "key").write_text("k")
        (ws / "link").symlink_to(secret)
        return tmp_path

    def call(self, path):
        return ToolCall("fs.read", {"path": path}, paths=(path,))

    def test_a_deny_catches_dotdot(self, tree):
        policy = DynamicPermissionPolicy(
            deny={"fs.*": {"path": f"{tree}/secret/*"}}
        )
        sneaky = f"{tree}/ws/../secret/key"
        assert not policy.evaluate(self.call(sneaky)).allowed
        # ...and a string matcher, over every string argument, too
        anywhere = DynamicPermissionPolicy(deny={"fs.*": f"{tree}/secret/*"})
        assert not anywhere.evaluate(self.call(sneaky)).allowed

    def test_a_deny_catches_a_symlink(self, tree):
        policy = DynamicPermissionPolicy(
            deny={"fs.*": {"path": f"{tree}/secret/*"}}
        )
        assert not policy.evaluate(self.call(f"{tree}/ws/link/key")).allowed

    def test_an_allow_does_not_follow_a_link_out(self, tree):
        policy = DynamicPermissionPolicy(
            allow={"fs.*": {"path": f"{tree}/ws/*"}}
        )
        assert policy.evaluate(self.call(f"{tree}/ws/notes.txt")).allowed
        assert not policy.evaluate(self.call(f"{tree}/ws/link/key")).allowed
        assert not policy.evaluate(
            self.call(f"{tree}/ws/../secret/key")
        ).allowed

    def test_a_value_that_is_not_a_path_argument_is_matched_as_text(self):
        """Only the tool's path arguments are resolved: other strings are
        matched as they are."""
        policy = DynamicPermissionPolicy(deny={"net.*": "*/../*"})
        call = ToolCall("net.get", {"url": "http://h/a/../b"})
        assert not policy.evaluate(call).allowed


def test_an_allow_about_paths_is_not_vouched_for_by_another_argument(tmp_path):
    """A string matcher in an allow list: for a call with path arguments,
    every path must match; a text argument that matches (the model writes
    it) does not allow a path that does not."""
    policy = DynamicPermissionPolicy(allow={"fs.*": f"{tmp_path}/ws/*"})
    inside = f"{tmp_path}/ws/a.txt"
    outside = f"{tmp_path}/secret.txt"

    def call(path, text):
        return ToolCall(
            "fs.write", {"path": path, "text": text}, paths=(path,)
        )

    assert policy.evaluate(call(inside, "hello")).allowed
    assert not policy.evaluate(call(outside, inside)).allowed
    # a deny still catches the path in any argument position
    deny = DynamicPermissionPolicy(deny={"fs.*": f"{tmp_path}/ws/*"})
    assert not deny.evaluate(call(outside, inside)).allowed
