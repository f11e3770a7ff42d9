"""The exception tree: shape, messages, and that every error pickles."""

from __future__ import annotations

import pickle

import pytest

import capscope as cs

TREE = {
    cs.ScopeError: cs.CapscopeError,
    cs.RegistryError: cs.CapscopeError,
    cs.PolicyConfigError: cs.CapscopeError,
    cs.CeilingExceeded: cs.CapscopeError,
    cs.NoConnectorContext: cs.CapscopeError,
    cs.PolicyDenied: cs.CapscopeError,
    cs.NoPolicyInstalled: cs.PolicyDenied,
    cs.ToolDenied: cs.PolicyDenied,
    cs.ApprovalDenied: cs.PolicyDenied,
    cs.CommandBlocked: cs.PolicyDenied,
    cs.ActionProposed: cs.PolicyDenied,
    cs.HumanRequired: cs.PolicyDenied,
    cs.ScopeWarning: cs.CapscopeWarning,
}

SAMPLES = [
    cs.ScopeError("LIFO violation on 'x'"),
    cs.RegistryError("name taken"),
    cs.PolicyConfigError("approval.rules[2].action", "'aprove' is not one"),
    cs.CeilingExceeded("tools", ("fs.*",), ("*",), "no widening"),
    cs.NoConnectorContext("no connector"),
    cs.PolicyDenied("denied", {"gate": "tool_ceiling"}),
    cs.NoPolicyInstalled("no policy"),
    cs.ToolDenied("outside the ceiling", "decision"),
    cs.ApprovalDenied("timed out"),
    cs.CommandBlocked("catastrophic"),
    cs.ActionProposed("proposed"),
    cs.HumanRequired("a human must"),
]


class TestTree:
    @pytest.mark.parametrize(("child", "parent"), TREE.items())
    def test_direct_parent(self, child, parent):
        """Each class sits where docs/exceptions.md draws it."""
        assert parent in child.__bases__

    def test_builtin_co_bases(self):
        """Outsiders can catch ValueError, PermissionError and UserWarning."""
        assert issubclass(cs.PolicyConfigError, ValueError)
        assert issubclass(cs.ToolDenied, PermissionError)
        assert issubclass(cs.ScopeWarning, UserWarning)

    def test_tree_is_drawn_in_the_module_docstring(self):
        """The docstring's tree names every class."""
        from capscope import _exceptions

        for cls in (*TREE, cs.CapscopeError, cs.CapscopeWarning):
            assert cls.__name__ in _exceptions.__doc__


class TestMessages:
    def test_policy_config_error_names_the_field(self):
        """str() leads with the key path."""
        err = cs.PolicyConfigError("execution.tools[0]", "not a string")

        assert "execution.tools[0]: not a string" == str(err)
        assert ("execution.tools[0]", "not a string") == (
            err.field,
            err.message,
        )

    def test_ceiling_exceeded_names_field_and_both_values(self):
        """str() names the field, the request and the outer ceiling."""
        err = cs.CeilingExceeded("side_effect_level", "read_only", "network")

        assert "side_effect_level" in str(err)
        assert "'network'" in str(err)
        assert "'read_only'" in str(err)

    def test_policy_denied_carries_its_decision(self):
        """.decision is what refused the call."""
        assert "d" == cs.ToolDenied("no", "d").decision
        assert cs.ToolDenied("no").decision is None


class TestPickling:
    @pytest.mark.parametrize("err", SAMPLES, ids=lambda e: type(e).__name__)
    def test_round_trip(self, err):
        """Every error crosses a process boundary with its attributes."""
        copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes

        assert type(err) is type(copy)
        assert err.args == copy.args
        assert str(err) == str(copy)
        assert vars(err) == vars(copy)
