"""
What model a prompt is being rendered for: provider, model, family and the
provider's capabilities.

Not a permission: the "render" stack's top frame simply shadows the ones
below it, and workers start without one. Prompt templates read it to adapt
what they say to the model at hand.

This module is pure: the stack and `render_context()` are built on top of it
elsewhere.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import PolicyConfigError
from ._common import FrozenMap, from_mapping, short_repr, to_mapping

if TYPE_CHECKING:
    from ._common import ToolCall
    from .protocol import Verdict

__all__ = ["LlmRenderContext"]


def _opt_id(value: object, field: str) -> str | None:
    """*value* as a string or `None` (an empty string is unset)."""
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"expected a string or None, got {value!r}"
        raise PolicyConfigError(field, msg)
    return value or None


def _provider(value: object) -> str | None:
    return _opt_id(value, "provider")


def _model(value: object) -> str | None:
    return _opt_id(value, "model")


def _family(value: object) -> str | None:
    return _opt_id(value, "family")


def _json(value: object, field: str) -> Any:
    """
    *value* as frozen JSON data: tables become `FrozenMap`s and lists
    tuples, so the context hashes; anything that is not JSON is refused.
    """
    if value is None or isinstance(value, str | bool | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            msg = f"{value!r} is not JSON data (use null or a string)"
            raise PolicyConfigError(field, msg)
        return value
    if isinstance(value, Mapping):
        items = {}
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"keys must be strings, got {key!r}"
                raise PolicyConfigError(field, msg)
            items[key] = _json(item, f"{field}[{key!r}]")
        return FrozenMap(items)
    if isinstance(value, list | tuple):
        return tuple(
            _json(item, f"{field}[{i}]") for i, item in enumerate(value)
        )
    msg = f"{value!r} is not JSON data"
    raise PolicyConfigError(field, msg)


def _capabilities(value: object) -> FrozenMap[str, Any]:
    if not isinstance(value, Mapping):
        msg = f"expected a table, got {value!r}"
        raise PolicyConfigError("capabilities", msg)
    frozen: FrozenMap[str, Any] = _json(value, "capabilities")
    return frozen


@attrs.frozen
class LlmRenderContext:
    """
    The model a prompt is rendered for, as prompt templates see it.

    The ids are strings or `None` (an empty string counts as unset).
    `capabilities` is JSON data describing the provider (context window,
    tool calling, vision, ...); it is stored deeply frozen (tables as
    read-only mappings, lists as tuples), so contexts compare and hash like
    values.

    Attributes:
        provider: The provider (`"anthropic"`, `"ollama"`).
        model: The model id.
        family: The model family, when several ids share one.
        capabilities: What the provider and model can do, as JSON data.

    Raises:
        PolicyConfigError: A field that is not a string or not JSON data,
            naming the field or key (`capabilities['limits'][0]`).

    Examples:
        >>> from capscope.policies.render import LlmRenderContext
        >>> ctx = LlmRenderContext(provider="acme", model="acme-large", capabilities={"vision": True, "context": 200000})
        >>> ctx
        LlmRenderContext(provider='acme', model='acme-large', capabilities={'vision': True, 'context': 200000})
        >>> ctx.capabilities["vision"], ctx.family
        (True, None)
    """

    provider: str | None = attrs.field(default=None, converter=_provider)
    model: str | None = attrs.field(default=None, converter=_model)
    family: str | None = attrs.field(default=None, converter=_family)
    capabilities: FrozenMap[str, Any] = attrs.field(
        factory=FrozenMap, converter=_capabilities
    )

    # -- the Policy protocol ----------------------------------------------------

    def narrow(self, inner: LlmRenderContext) -> LlmRenderContext:
        """
        *inner*: a new model call context replaces the outer one.

        Examples:
            >>> from capscope.policies.render import LlmRenderContext
            >>> LlmRenderContext(model="m1").narrow(LlmRenderContext(model="m2")) == LlmRenderContext(model="m2")
            True
        """
        return inner

    def verdict(self, call: ToolCall) -> Verdict | None:  # noqa: ARG002 - protocol
        """
        `None`: a model call context decides nothing about calls.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.render import LlmRenderContext
            >>> LlmRenderContext().verdict(ToolCall("shell")) is None
            True
        """
        return None

    def describe(self) -> str:
        """
        The model call this code runs for.

        Examples:
            >>> from capscope.policies.render import LlmRenderContext
            >>> LlmRenderContext(model="m1").describe()
            'Model call: m1.'
        """
        return f"Model call: {self.model or 'unnamed'}."

    def __repr__(self) -> str:
        return short_repr(self)

    def to_dict(self) -> dict[str, Any]:
        """
        The context as JSON-able data, holding only the fields that are set
        (what a template's `llm` variable holds).

        Examples:
            >>> from capscope.policies.render import LlmRenderContext
            >>> LlmRenderContext(model="m", capabilities={"modes": ("chat", "tools")}).to_dict()
            {'model': 'm', 'capabilities': {'modes': ['chat', 'tools']}}
        """
        return to_mapping(self)

    @classmethod
    def from_dict(
        cls, data: object, *, path: str = "render"
    ) -> LlmRenderContext:
        """
        Rebuild a context from `to_dict()` data.

        Args:
            data: A mapping of field names to values.
            path: The key path that prefixes every error's field.

        Raises:
            PolicyConfigError: Bad data or an unknown key, naming its key
                path.

        Examples:
            >>> from capscope.policies.render import LlmRenderContext
            >>> LlmRenderContext.from_dict({"provider": "acme"})
            LlmRenderContext(provider='acme')
            >>> try:
            ...     LlmRenderContext.from_dict({"modell": "m-1"})
            ... except ValueError as e:
            ...     print(e.field)
            render.modell
        """
        return from_mapping(cls, data, path)
