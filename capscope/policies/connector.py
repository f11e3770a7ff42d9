"""
The live services a connector's code runs with: its event log, secrets,
inbox, metrics and rate limiter.

Not a permission and not data: the "connector" stack's top frame shadows
the ones below it, workers start without one, and it never travels to
another process (it has no codec), because what it holds are live objects.

This module is pure: the stack and `current_connector()` are built on top
of it elsewhere.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import PolicyConfigError

if TYPE_CHECKING:
    from ._common import ToolCall
    from .protocol import Verdict

__all__ = ["ConnectorCtx"]

#: The service fields, in the order the repr lists them.
_SERVICES = ("event_log", "secrets", "inbox", "metrics", "rate_limiter")


def _name(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value or None
    msg = f"expected a string or None, got {value!r}"
    raise PolicyConfigError("name", msg)


@attrs.frozen(eq=False)
class ConnectorCtx:
    """
    The services available to a connector's code while it runs.

    Every field is optional and holds whatever object the application
    uses (capscope never calls them). A context compares and hashes by
    identity, since it holds live objects; its repr shows only the *type*
    of each service, so that a secret provider's state never reaches a log
    line or an error message.

    Attributes:
        name: The connector's name (a string or `None`).
        event_log: Where the connector emits events.
        secrets: The secret provider it reads credentials from.
        inbox: Its inbox index.
        metrics: Where it counts things.
        rate_limiter: What paces its calls.

    Raises:
        PolicyConfigError: A `name` that is not a string.

    Examples:
        >>> from capscope.policies.connector import ConnectorCtx
        >>> events = []
        >>> ctx = ConnectorCtx(name="github", event_log=events, secrets={"token": "s3cret"})
        >>> ctx
        ConnectorCtx(name='github', event_log=<list>, secrets=<dict>)
        >>> ctx.event_log is events
        True
    """

    name: str | None = attrs.field(default=None, converter=_name)
    event_log: Any = None
    secrets: Any = None
    inbox: Any = None
    metrics: Any = None
    rate_limiter: Any = None

    # -- the Policy protocol ----------------------------------------------------

    def narrow(self, inner: ConnectorCtx) -> ConnectorCtx:
        """
        *inner*: a new connector context replaces the outer one.

        Examples:
            >>> from capscope.policies.connector import ConnectorCtx
            >>> inner = ConnectorCtx(name="gitlab")
            >>> ConnectorCtx(name="github").narrow(inner) is inner
            True
        """
        return inner

    def verdict(self, call: ToolCall) -> Verdict | None:  # noqa: ARG002 - protocol
        """
        `None`: a connector context decides nothing about calls.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.connector import ConnectorCtx
            >>> ConnectorCtx().verdict(ToolCall("shell")) is None
            True
        """
        return None

    def describe(self) -> str:
        """
        The connector this code runs for.

        Examples:
            >>> from capscope.policies.connector import ConnectorCtx
            >>> ConnectorCtx(name="github").describe()
            'Connector: github.'
        """
        return f"Connector: {self.name or 'unnamed'}."

    def __repr__(self) -> str:
        parts = [] if self.name is None else [f"name={self.name!r}"]
        for field in _SERVICES:
            value = getattr(self, field)
            if value is not None:
                parts.append(f"{field}=<{type(value).__qualname__}>")
        return f"{type(self).__name__}({', '.join(parts)})"
