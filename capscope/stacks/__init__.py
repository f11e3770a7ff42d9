"""
The built-in stacks, registered on import.

They use exactly the hooks a third-party stack has (`inherit`, `narrow`,
`to_worker`, `codec`) and register through the public
`capscope.registry.register`; nothing in the core knows them by name.
Every push narrows through the value's own `narrow` (the `Policy`
protocol, `capscope.policies.protocol`), so "never wider" is written
once per kind, in the kind.

| stack | holds | effective value | worker gets | a push |
|---|---|---|---|---|
| `execution` | `CapabilityPolicy` | top | TOP, one hop taken | narrows: outer ∩ new, widening raises |
| `approval` | `ToolApprovalPolicy` | top | TOP (fresh: nothing remembered) | narrows: outer ∩ new |
| `command` | `CommandPolicy` | every frame must allow | COPY | adds constraints |
| `permissions` | `DynamicPermissionPolicy` | every frame; any deny wins | COPY | adds constraints |
| `overlay` | `RuntimeContextOverlay` | the top (each frame holds the merge) | COPY | layers attribution; `run_id`, `workflow_id` fixed once set |
| `autonomy` | `AutonomyPolicy` | top | COPY | a higher tier raises |
| `render` | `LlmRenderContext` | top | NONE | replaces |
| `connector` | `ConnectorCtx` | top | NONE | replaces |
| `trusted_depth` | counter: inside `trusted()` | value | 0 | |
| `command_hook_depth` | counter: inside a command-policy hook | value | 0 | |

Each stack takes only its own policy class: anything else is a
`TypeError` at the push, never a silent allow.

Examples:
    >>> from capscope.stacks import execution
    >>> execution.inherit
    <Inherit.TOP: 'top'>
"""

from __future__ import annotations

import typing as _t

from .. import _ambient, _registry, events
from ..policies import approval as _approval
from ..policies import autonomy as _autonomy
from ..policies import capability as _capability
from ..policies import command as _command
from ..policies import connector as _connector
from ..policies import overlay as _overlay
from ..policies import permissions as _permissions
from ..policies import render as _render

__all__ = [
    "approval",
    "autonomy",
    "command",
    "command_hook_depth",
    "connector",
    "execution",
    "overlay",
    "permissions",
    "render",
    "trusted_depth",
]

_T = _t.TypeVar("_T")
_Inherit = _ambient.Inherit


def _narrowing(cls: type[_T], name: str) -> _t.Callable[[_T | None, _T], _T]:
    """The `narrow` hook of a stack holding *cls*: a value of another type
    is a `TypeError`, never a silent allow; the first frame is stored as
    is, every later one through `outer.narrow(new)` (the `Policy`
    protocol: each kind's meet).
    """

    def narrow(outer: _T | None, new: _T) -> _T:
        if not isinstance(new, cls):
            msg = f"the {name} stack holds {cls.__name__}, got {new!r}"
            raise TypeError(msg)
        return new if outer is None else outer.narrow(new)  # type: ignore[attr-defined]

    return narrow


def _stack(  # noqa: PLR0913 - a row of the table
    name: str,
    cls: type[_T],
    inherit: _ambient.Inherit,
    doc: str,
    *,
    travels: bool = True,
    to_worker: _t.Callable[[_T], _T] | None = None,
    narrow: _t.Callable[[_T | None, _T], _T] | None = None,
) -> _ambient.AmbientStack[_T]:
    codec = (cls.to_dict, cls.from_dict) if travels else None  # type: ignore[attr-defined]
    return _ambient.AmbientStack(
        name,
        inherit=inherit,
        narrow=narrow or _narrowing(cls, name),
        to_worker=to_worker,
        codec=codec,
        doc=doc,
    )


_Ceiling = _capability.CapabilityPolicy
_narrow_ceiling = _narrowing(_Ceiling, "execution")


def _narrow_execution(outer: _Ceiling | None, new: _Ceiling) -> _Ceiling:
    value = _narrow_ceiling(outer, new)
    if outer is None and events.has_subscribers():
        # A root push is an escape (docs/design.md, "Escapes are events"): say so.
        events.emit(
            events.Decision(
                action=events.Action.ALLOW,
                gate=events.Gate.ROOT_POLICY,
                tool="*",
                reason=f"root execution policy installed: {value!r}",
                overlay=overlay.top() or _overlay.RuntimeContextOverlay(),
            )
        )
    return value


# The table of the built-in stacks (see the module docstring).
execution = _stack(
    "execution",
    _Ceiling,
    _Inherit.TOP,
    "tool ceiling: which tools, capabilities, paths and side effects",
    to_worker=_Ceiling.to_worker,
    narrow=_narrow_execution,
)
approval = _stack(
    "approval",
    _approval.ToolApprovalPolicy,
    _Inherit.TOP,
    "approval rules, handler and remembered answers",
)
command = _stack(
    "command",
    _command.CommandPolicy,
    _Inherit.COPY,
    "shell-command policy; every frame must allow",
)
permissions = _stack(
    "permissions",
    _permissions.DynamicPermissionPolicy,
    _Inherit.COPY,
    "dynamic permissions; every frame is checked, any deny wins",
)
overlay = _stack(
    "overlay",
    _overlay.RuntimeContextOverlay,
    _Inherit.COPY,
    "attribution (run_id, worker_id, ...); the run ids are fixed once set",
)
autonomy = _stack(
    "autonomy",
    _autonomy.AutonomyPolicy,
    _Inherit.COPY,
    "autonomy tier: shadow < suggest < act_with_approval < act_auto",
)
render = _stack(
    "render",
    _render.LlmRenderContext,
    _Inherit.NONE,
    "LLM render context of the current model call",
)
connector = _stack(
    "connector",
    _connector.ConnectorCtx,
    _Inherit.NONE,
    "connector context of the current connector export (never travels)",
    travels=False,
)
trusted_depth = _ambient.AmbientCounter(
    "trusted_depth", doc="how deep inside trusted() blocks"
)
command_hook_depth = _ambient.AmbientCounter(
    "command_hook_depth", doc="how deep inside command-policy hooks"
)

for _builtin in (
    execution,
    approval,
    command,
    permissions,
    overlay,
    autonomy,
    render,
    connector,
    trusted_depth,
    command_hook_depth,
):
    _registry.registry.register(_builtin, origin=_registry.BUILTIN)
del _builtin
