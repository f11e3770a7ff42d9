"""Tests for capscope.policies.render and capscope.policies.connector."""

from __future__ import annotations

import json
import math
import pickle

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import capscope as cs
from capscope.policies.connector import ConnectorCtx
from capscope.policies.render import LlmRenderContext


class TestLlmRenderContext:
    def test_defaults(self):
        """Everything is unset by default."""
        ctx = LlmRenderContext()

        assert (None, None, None) == (ctx.provider, ctx.model, ctx.family)
        assert {} == ctx.capabilities

    def test_fields_in_the_documented_order(self):
        """The fields are provider, model, family, capabilities."""
        assert ["provider", "model", "family", "capabilities"] == [
            f.name for f in attrs.fields(LlmRenderContext)
        ]

    def test_empty_string_is_unset(self):
        """An empty string id is stored as None."""
        assert None is LlmRenderContext(model="").model

    def test_capabilities_are_deeply_frozen(self):
        """Nested tables become read-only mappings and lists tuples."""
        source = {"limits": {"context": 100}, "modes": ["chat", "tools"]}
        ctx = LlmRenderContext(capabilities=source)
        source["limits"]["context"] = 1

        assert 100 == ctx.capabilities["limits"]["context"]
        assert ("chat", "tools") == ctx.capabilities["modes"]
        with pytest.raises(TypeError):
            ctx.capabilities["limits"]["context"] = 5  # type: ignore[index]

    def test_hashable_and_equal_by_value(self):
        """Contexts with equal data are equal and hash alike."""
        a = LlmRenderContext(model="m", capabilities={"x": [1, {"y": None}]})
        b = LlmRenderContext(model="m", capabilities={"x": (1, {"y": None})})

        assert a == b
        assert hash(a) == hash(b)

    def test_pickles(self):
        """A context pickles."""
        ctx = LlmRenderContext(provider="p", capabilities={"a": {"b": [1.5]}})

        assert ctx == pickle.loads(pickle.dumps(ctx))  # noqa: S301 - our own bytes

    def test_repr(self):
        """The repr shows the set fields as plain data."""
        ctx = LlmRenderContext(family="f", capabilities={"modes": ("chat",)})

        assert (
            "LlmRenderContext(family='f', capabilities={'modes': ['chat']})"
            == repr(ctx)
        )

    @pytest.mark.parametrize("field", ["provider", "model", "family"])
    def test_non_string_id(self, field):
        """A non-string id names its field."""
        with pytest.raises(cs.PolicyConfigError) as info:
            LlmRenderContext(**{field: 1})

        assert field == info.value.field

    def test_capabilities_not_a_mapping(self):
        """capabilities must be a table."""
        with pytest.raises(cs.PolicyConfigError) as info:
            LlmRenderContext(capabilities=[1])  # type: ignore[arg-type]

        assert "capabilities" == info.value.field

    @pytest.mark.parametrize(
        ("capabilities", "field"),
        [
            ({"a": {1, 2}}, "capabilities['a']"),
            ({"a": [1, object()]}, "capabilities['a'][1]"),
            ({"a": {"b": math.nan}}, "capabilities['a']['b']"),
            ({"a": math.inf}, "capabilities['a']"),
            ({"a": {2: "x"}}, "capabilities['a']"),
            ({3: "x"}, "capabilities"),
            ({"a": b"bytes"}, "capabilities['a']"),
        ],
    )
    def test_capabilities_must_be_json(self, capabilities, field):
        """Anything that is not JSON data names its key path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            LlmRenderContext(capabilities=capabilities)

        assert field == info.value.field

    def test_to_dict_is_json(self):
        """to_dict() holds the set fields as plain JSON data."""
        ctx = LlmRenderContext(
            provider="p", capabilities={"a": {"b": (1, 2.5, None, True)}}
        )

        data = ctx.to_dict()

        assert {
            "provider": "p",
            "capabilities": {"a": {"b": [1, 2.5, None, True]}},
        } == data
        assert data == json.loads(json.dumps(data))

    def test_round_trip(self):
        """from_dict(to_dict(c)) == c."""
        ctx = LlmRenderContext(
            provider="p", model="m", family="f", capabilities={"k": [{"x": 1}]}
        )

        assert ctx == LlmRenderContext.from_dict(ctx.to_dict())

    def test_from_dict_errors_name_the_key_path(self):
        """Errors carry the key path, with the default or a given prefix."""
        with pytest.raises(cs.PolicyConfigError) as info:
            LlmRenderContext.from_dict({"capabilities": {"a": [{1}]}})
        assert "render.capabilities['a'][0]" == info.value.field

        with pytest.raises(cs.PolicyConfigError) as info:
            LlmRenderContext.from_dict({"modle": "m"}, path="llm")
        assert "llm.modle" == info.value.field
        assert "unknown key 'modle'" in info.value.message


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=4),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.text(max_size=3), inner, max_size=3)
    ),
    max_leaves=8,
)
contexts = st.builds(
    LlmRenderContext,
    provider=st.none() | st.text(max_size=4),
    model=st.none() | st.text(max_size=4),
    family=st.none() | st.text(max_size=4),
    capabilities=st.dictionaries(st.text(max_size=3), json_values, max_size=3),
)


class TestLlmRenderContextProperties:
    @given(contexts)
    def test_round_trip(self, ctx):
        """from_dict(to_dict(c)) == c, also through JSON text."""
        assert ctx == LlmRenderContext.from_dict(ctx.to_dict())
        assert ctx == LlmRenderContext.from_dict(
            json.loads(json.dumps(ctx.to_dict()))
        )

    @given(contexts)
    def test_hash_agrees_with_equality(self, ctx):
        """A rebuilt context is equal and hashes alike."""
        assert hash(ctx) == hash(LlmRenderContext.from_dict(ctx.to_dict()))


class TestConnectorCtx:
    def test_defaults(self):
        """Everything is None by default."""
        ctx = ConnectorCtx()

        assert [None] * 6 == [
            getattr(ctx, f.name) for f in attrs.fields(ConnectorCtx)
        ]

    def test_fields_in_the_documented_order(self):
        """The fields are name and the five services."""
        assert [
            "name",
            "event_log",
            "secrets",
            "inbox",
            "metrics",
            "rate_limiter",
        ] == [f.name for f in attrs.fields(ConnectorCtx)]

    def test_holds_live_objects_as_they_are(self):
        """Services are stored as given, never copied or converted."""
        log, secrets = [], {"token": "t"}
        ctx = ConnectorCtx(name="gh", event_log=log, secrets=secrets)
        log.append("event")

        assert ctx.event_log is log
        assert ctx.secrets is secrets
        assert ["event"] == ctx.event_log

    def test_identity_equality_and_hash(self):
        """Contexts compare by identity and hash even holding unhashables."""
        secrets = {"token": "t"}
        a = ConnectorCtx(name="gh", secrets=secrets)
        b = ConnectorCtx(name="gh", secrets=secrets)

        assert a == a  # noqa: PLR0124 - identity equality is the point
        assert a != b
        assert 2 == len({a, b})

    def test_frozen(self):
        """Fields cannot be reassigned."""
        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            ConnectorCtx().name = "x"  # type: ignore[misc]

    def test_repr_hides_service_state(self):
        """The repr names each service's type, never its contents."""

        class SecretStore:
            def __repr__(self):
                return "SecretStore(token='s3cret')"

        ctx = ConnectorCtx(name="gh", secrets=SecretStore(), metrics={"n": 1})

        text = repr(ctx)

        assert "s3cret" not in text
        assert (
            "ConnectorCtx(name='gh', secrets=<TestConnectorCtx."
            "test_repr_hides_service_state.<locals>.SecretStore>, "
            "metrics=<dict>)"
        ) == text
        assert "ConnectorCtx()" == repr(ConnectorCtx())

    def test_name_must_be_a_string(self):
        """A non-string name names the field."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ConnectorCtx(name=3)  # type: ignore[arg-type]

        assert "name" == info.value.field

    def test_empty_name_is_unset(self):
        """An empty name is stored as None."""
        assert None is ConnectorCtx(name="").name

    def test_has_no_codec(self):
        """Connector contexts never travel: no to_dict or from_dict."""
        assert not hasattr(ConnectorCtx, "to_dict")
        assert not hasattr(ConnectorCtx, "from_dict")
