"""
The command policy's data (`capscope.policies.command`): fields, validation,
label tiers, `label_action` and the codec. The command analysis has its own
tests.
"""

from __future__ import annotations

import json
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import capscope as cs
from capscope.policies.command import (
    ALWAYS_ASK_LABELS,
    DEFAULT_APPROVAL_LABELS,
    DEFAULT_DENY_LABELS,
    CommandDefault,
    CommandLabel,
    CommandPolicy,
)

L = CommandLabel


def hook(*args, **kwargs):
    return None


class TestCommandLabel:
    def test_values_are_the_reference_names(self):
        """Every label is a str enum equal to its snake_case name."""

        assert [
            "catastrophic",
            "destructive",
            "write_intent",
            "curl_pipe_shell",
            "credential_file_read",
            "execution_semantics_unresolved",
            "network_exfil",
            "sudo",
            "package_install",
            "git_force_push",
            "process_kill",
            "outside_workspace",
            "deny_pattern",
            "code_execution",
            "writes_path",
            "deletes_path",
            "reads_outside_workspace",
            "network",
        ] == [str(label) for label in CommandLabel]

    def test_default_tiers(self):
        """The default tiers are the reference's, and disjoint."""

        assert {
            L.DESTRUCTIVE,
            L.CURL_PIPE_SHELL,
            L.CREDENTIAL_FILE_READ,
            L.NETWORK_EXFIL,
        } == DEFAULT_DENY_LABELS
        assert {
            L.SUDO,
            L.PACKAGE_INSTALL,
            L.GIT_FORCE_PUSH,
            L.PROCESS_KILL,
            L.OUTSIDE_WORKSPACE,
            L.WRITE_INTENT,
            L.WRITES_PATH,
            L.DELETES_PATH,
            L.READS_OUTSIDE_WORKSPACE,
            L.NETWORK,
        } == DEFAULT_APPROVAL_LABELS
        assert {
            L.EXECUTION_SEMANTICS_UNRESOLVED,
            L.CODE_EXECUTION,
        } == ALWAYS_ASK_LABELS
        assert not DEFAULT_DENY_LABELS & DEFAULT_APPROVAL_LABELS
        assert not ALWAYS_ASK_LABELS & (
            DEFAULT_DENY_LABELS | DEFAULT_APPROVAL_LABELS
        )


class TestConstruction:
    def test_defaults(self):
        """A bare policy: no patterns, default tiers, ask, no hooks."""

        p = CommandPolicy()

        assert (
            (),
            (),
            None,
            None,
            CommandDefault.ASK,
            None,
            None,
            None,
            False,
            None,
        ) == attrs.astuple(p, recurse=False)
        assert "ask" == p.default

    def test_stored_types(self):
        """Lists become tuples, label names frozensets of labels, paths strs."""

        p = CommandPolicy(
            allow=["git status *", "pytest *"],
            deny_patterns=["rm -rf", "*--no-verify*"],
            deny_labels=["sudo", L.DESTRUCTIVE],
            approval_labels=("write_intent",),
            default="deny",
            consent=hook,
            pre=hook,
            post=hook,
            allow_recursive=True,
            workspace_roots=[Path("/ws"), "/srv/other"],
        )

        assert ("git status *", "pytest *") == p.allow
        assert ("rm -rf", "*--no-verify*") == p.deny_patterns
        assert frozenset({L.SUDO, L.DESTRUCTIVE}) == p.deny_labels
        assert frozenset({L.WRITE_INTENT}) == p.approval_labels
        assert CommandDefault.DENY is p.default
        assert ("/ws", "/srv/other") == p.workspace_roots

    def test_empty_tiers_mean_nothing(self):
        """`()` is an empty tier, distinct from `None` (the defaults)."""

        p = CommandPolicy(deny_labels=(), approval_labels=())

        assert frozenset() == p.deny_labels
        assert frozenset() == p.approval_labels

    def test_single_star_allows_any_command(self):
        """`"*"` is a valid pattern: any program, any arguments."""

        assert ("*",) == CommandPolicy(allow=["*"]).allow

    def test_frozen_and_hashable(self):
        """Policies are immutable values."""

        p = CommandPolicy(allow=["ls *"], deny_labels=["sudo"])

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            p.default = CommandDefault.ALLOW  # type: ignore[misc]
        assert hash(p) == hash(
            CommandPolicy(allow=["ls *"], deny_labels=["sudo"])
        )

    def test_repr_sorts_labels(self):
        """Label sets read as sorted names in the repr."""

        p = CommandPolicy(deny_labels=["sudo", "destructive"])

        assert "deny_labels={'destructive', 'sudo'}" in repr(p)


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "field", "fragment"),
        [
            ({"allow": "git status *"}, "allow", "list of strings"),
            ({"allow": [3]}, "allow[0]", "expected a string"),
            ({"allow": ["ls *", "   "]}, "allow[1]", "empty pattern"),
            ({"allow": ["ls [a-z *"]}, "allow[0]", "malformed glob"),
            ({"allow": ["git log | head"]}, "allow[0]", "shell operator"),
            ({"allow": ["make && make install"]}, "allow[0]", "'&&'"),
            ({"deny_patterns": [""]}, "deny_patterns[0]", "empty pattern"),
            ({"deny_patterns": ["ok", None]}, "deny_patterns[1]", "string"),
            ({"deny_patterns": ["*[x*"]}, "deny_patterns[0]", "malformed"),
            ({"deny_labels": ["sudo", "sudoo"]}, "deny_labels[1]", "'sudoo'"),
            ({"deny_labels": "sudo"}, "deny_labels", "list of label"),
            ({"approval_labels": ["nope"]}, "approval_labels[0]", "'nope'"),
            (
                {"approval_labels": ["sudo", "catastrophic"]},
                "approval_labels[1]",
                "always denied",
            ),
            (
                {"deny_labels": ["sudo"], "approval_labels": ["sudo"]},
                "approval_labels",
                "sudo is also in deny_labels",
            ),
            (
                {"approval_labels": ["destructive", "network_exfil"]},
                "approval_labels",
                "default deny tier",
            ),
            ({"default": "maybe"}, "default", "allow, ask, deny"),
            ({"default": None}, "default", "allow, ask, deny"),
            ({"consent": "yes"}, "consent", "callable"),
            ({"pre": 1}, "pre", "callable"),
            ({"post": True}, "post", "callable"),
            ({"allow_recursive": 1}, "allow_recursive", "true or false"),
            ({"allow_recursive": "yes"}, "allow_recursive", "true or false"),
            ({"workspace_roots": ["ws"]}, "workspace_roots[0]", "relative"),
            (
                {"workspace_roots": ["/a", ""]},
                "workspace_roots[1]",
                "relative",
            ),
            ({"workspace_roots": "/ws"}, "workspace_roots", "absolute"),
            ({"workspace_roots": [1]}, "workspace_roots[0]", "path string"),
        ],
    )
    def test_bad_field_is_named(self, kwargs, field, fragment):
        """Bad input raises PolicyConfigError naming the offending field."""

        with pytest.raises(cs.PolicyConfigError) as info:
            CommandPolicy(**kwargs)

        assert field == info.value.field
        assert fragment in info.value.message

    def test_error_is_a_value_error(self):
        """PolicyConfigError is also a ValueError."""

        with pytest.raises(ValueError, match="allow_recursive"):
            CommandPolicy(allow_recursive=None)

    def test_explicit_deny_of_a_default_approval_label_is_fine(self):
        """Denying a label of the default ask tier needs no approval_labels."""

        p = CommandPolicy(deny_labels=["sudo"])

        assert L.SUDO not in p.effective_approval_labels
        assert L.SUDO in p.effective_deny_labels

    def test_moving_a_default_deny_label_to_ask(self):
        """A default-deny label may ask once deny_labels leaves it out."""

        p = CommandPolicy(
            deny_labels=["curl_pipe_shell"], approval_labels=["destructive"]
        )

        assert CommandDefault.ASK is p.label_action([L.DESTRUCTIVE])


class TestEffectiveTiers:
    def test_catastrophic_is_always_denied(self):
        """An empty deny tier still denies catastrophic."""

        p = CommandPolicy(deny_labels=[], approval_labels=[])

        assert frozenset({L.CATASTROPHIC}) == p.effective_deny_labels
        assert CommandDefault.DENY is p.label_action([L.CATASTROPHIC])

    def test_unresolved_is_never_allowed(self):
        """An empty ask tier still asks about unresolved semantics and
        code the line does not show."""

        p = CommandPolicy(deny_labels=[], approval_labels=[])

        assert (
            frozenset({L.EXECUTION_SEMANTICS_UNRESOLVED, L.CODE_EXECUTION})
            == p.effective_approval_labels
        )
        assert CommandDefault.ASK is p.label_action(
            [L.EXECUTION_SEMANTICS_UNRESOLVED]
        )
        assert CommandDefault.ASK is p.label_action([L.CODE_EXECUTION])

    def test_unresolved_may_be_denied(self):
        """Listing unresolved in deny_labels denies it (not asked)."""

        p = CommandPolicy(deny_labels=["execution_semantics_unresolved"])

        assert L.EXECUTION_SEMANTICS_UNRESOLVED in p.effective_deny_labels
        assert L.EXECUTION_SEMANTICS_UNRESOLVED not in (
            p.effective_approval_labels
        )
        assert CommandDefault.DENY is p.label_action(
            ["execution_semantics_unresolved"]
        )

    def test_defaults(self):
        """Unset tiers are the defaults plus the two fixed labels."""

        p = CommandPolicy()

        assert (
            DEFAULT_DENY_LABELS | {L.CATASTROPHIC} == p.effective_deny_labels
        )
        assert (
            DEFAULT_APPROVAL_LABELS | ALWAYS_ASK_LABELS
            == p.effective_approval_labels
        )

    def test_tiers_never_overlap(self):
        """The effective tiers are disjoint for any valid policy."""

        for p in (
            CommandPolicy(),
            CommandPolicy(deny_labels=["sudo", "catastrophic"]),
            CommandPolicy(deny_labels=[], approval_labels=list(L)[1:]),
        ):
            assert not p.effective_deny_labels & p.effective_approval_labels


class TestLabelAction:
    @pytest.mark.parametrize(
        ("labels", "expected"),
        [
            ([], None),
            ([L.DENY_PATTERN], None),
            ([L.SUDO], CommandDefault.ASK),
            ([L.WRITE_INTENT, L.OUTSIDE_WORKSPACE], CommandDefault.ASK),
            ([L.DESTRUCTIVE], CommandDefault.DENY),
            ([L.SUDO, L.NETWORK_EXFIL], CommandDefault.DENY),
            ([L.CATASTROPHIC, L.SUDO], CommandDefault.DENY),
            (["curl_pipe_shell"], CommandDefault.DENY),
            ([L.EXECUTION_SEMANTICS_UNRESOLVED], CommandDefault.ASK),
        ],
    )
    def test_default_tiers(self, labels, expected):
        """Deny beats ask; labels in neither tier decide nothing."""

        assert expected == CommandPolicy().label_action(labels)

    def test_custom_tiers(self):
        """A policy's own tiers replace the defaults."""

        p = CommandPolicy(
            deny_labels=["sudo"], approval_labels=["deny_pattern"]
        )

        assert CommandDefault.DENY is p.label_action([L.SUDO])
        assert CommandDefault.ASK is p.label_action([L.DENY_PATTERN])
        assert None is p.label_action([L.DESTRUCTIVE])
        assert None is p.label_action([L.PACKAGE_INSTALL])

    def test_any_iterable(self):
        """Labels may come from a generator."""

        p = CommandPolicy()

        assert CommandDefault.ASK is p.label_action(x for x in [L.SUDO])


class TestCodec:
    def test_default_policy_is_empty_data(self):
        """Only fields that differ from their defaults are written."""

        assert {} == CommandPolicy().to_dict()

    def test_to_dict(self):
        """Tuples become lists, label sets sorted lists, enums strings."""

        p = CommandPolicy(
            allow=["pytest *"],
            deny_patterns=["rm -rf"],
            deny_labels=["sudo", "destructive", "network_exfil"],
            approval_labels=[],
            default="allow",
            allow_recursive=True,
            workspace_roots=["/ws"],
        )

        data = p.to_dict()

        assert {
            "allow": ["pytest *"],
            "deny_patterns": ["rm -rf"],
            "deny_labels": ["destructive", "network_exfil", "sudo"],
            "approval_labels": [],
            "default": "allow",
            "allow_recursive": True,
            "workspace_roots": ["/ws"],
        } == data
        assert data == json.loads(json.dumps(data))
        assert p == CommandPolicy.from_dict(data)

    @pytest.mark.parametrize("field", ["consent", "pre", "post"])
    def test_hooks_are_not_data(self, field):
        """A policy holding a hook refuses to_dict, naming the field."""

        with pytest.raises(cs.PolicyConfigError) as info:
            CommandPolicy(**{field: hook}).to_dict()

        assert field == info.value.field

    @pytest.mark.parametrize(
        ("data", "path", "field"),
        [
            (
                {"deny_labels": ["sudo", "nope"]},
                "command",
                "command.deny_labels[1]",
            ),
            ({"alow": ["ls"]}, "command", "command.alow"),
            ({"default": "never"}, "policy.command", "policy.command.default"),
            (
                {"approval_labels": ["catastrophic"]},
                "c",
                "c.approval_labels[0]",
            ),
            (
                {"workspace_roots": ["rel"]},
                "command",
                "command.workspace_roots[0]",
            ),
            (["allow"], "command", "command"),
        ],
    )
    def test_from_dict_errors_name_the_key_path(self, data, path, field):
        """from_dict errors are prefixed with the key path, unknown keys too."""

        with pytest.raises(cs.PolicyConfigError) as info:
            CommandPolicy.from_dict(data, path=path)

        assert field == info.value.field

    def test_default_path(self):
        """The default key path is "command"."""

        with pytest.raises(cs.PolicyConfigError) as info:
            CommandPolicy.from_dict({"bogus": 1})

        assert "command.bogus" == info.value.field
        assert "unknown key 'bogus'" in info.value.message


_TOKENS = st.sampled_from(["git", "status", "pytest", "-x", "*", "src/*", "?"])
_LABELS = st.sampled_from(list(L))


@st.composite
def policies(draw):
    """Random callable-free command policies (valid by construction)."""
    deny = draw(st.none() | st.frozensets(_LABELS))
    tier = DEFAULT_DENY_LABELS if deny is None else deny
    approvable = [x for x in L if x not in tier and x is not L.CATASTROPHIC]
    approval = draw(
        st.none() | st.frozensets(st.sampled_from(approvable))
        if approvable
        else st.none() | st.just(frozenset())
    )
    return CommandPolicy(
        allow=draw(
            st.lists(
                st.lists(_TOKENS, min_size=1, max_size=4).map(" ".join),
                max_size=3,
            )
        ),
        deny_patterns=draw(
            st.lists(st.sampled_from(["rm -rf", "*sudo*", "mkfs"]), max_size=3)
        ),
        deny_labels=deny,
        approval_labels=approval,
        default=draw(st.sampled_from(list(CommandDefault))),
        allow_recursive=draw(st.booleans()),
        workspace_roots=draw(
            st.none() | st.lists(st.sampled_from(["/ws", "/a/b", "/"]))
        ),
    )


class TestProperties:
    @given(policies())
    def test_round_trip(self, p):
        """from_dict(to_dict(p)) == p, through JSON text."""

        assert p == CommandPolicy.from_dict(
            json.loads(json.dumps(p.to_dict()))
        )

    @given(policies(), st.frozensets(_LABELS))
    def test_fixed_labels(self, p, labels):
        """Catastrophic always denies; unresolved never decides "allow"."""

        action = p.label_action(labels)

        if L.CATASTROPHIC in labels:
            assert CommandDefault.DENY is action
        if L.EXECUTION_SEMANTICS_UNRESOLVED in labels:
            assert action in {CommandDefault.DENY, CommandDefault.ASK}
