"""
The built-in stacks, registered on import.

They use exactly the hooks a third-party stack has (`inherit`, `narrow`,
`to_worker`, `codec`) and register through the public
`capscope.registry.register`; nothing in the core knows them by name.

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

Example:
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


def _only(cls: type[_T], name: str) -> _t.Callable[[_T | None, _T], _T]:
    """A `narrow` hook that stores the new value as is, once type-checked."""

    def narrow(outer: _T | None, new: _T) -> _T:  # noqa: ARG001 - hook signature
        if not isinstance(new, cls):
            msg = f"the {name} stack holds {cls.__name__}, got {new!r}"
            raise TypeError(msg)
        return new

    return narrow


def _intersecting(
    cls: type[_T], name: str
) -> _t.Callable[[_T | None, _T], _T]:
    """A `narrow` hook that stores `outer.intersect(new)`."""
    check = _only(cls, name)

    def narrow(outer: _T | None, new: _T) -> _T:
        check(outer, new)
        return new if outer is None else outer.intersect(new)  # type: ignore[attr-defined]

    return narrow


def _codec(
    cls: _t.Any,
) -> tuple[_t.Callable[[_t.Any], _t.Any], _t.Callable[[_t.Any], _t.Any]]:
    return (cls.to_dict, cls.from_dict)


_Policy = _capability.CapabilityPolicy
_narrow_ceiling = _intersecting(_Policy, "execution")


def _narrow_execution(
    outer: _capability.CapabilityPolicy | None,
    new: _capability.CapabilityPolicy,
) -> _capability.CapabilityPolicy:
    value = _narrow_ceiling(outer, new)
    if outer is None and events.has_subscribers():
        # A root push is an escape (DESIGN.md section 5): say so.
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


execution: _ambient.AmbientStack[_capability.CapabilityPolicy] = (
    _ambient.AmbientStack(
        "execution",
        inherit=_Inherit.TOP,
        narrow=_narrow_execution,
        to_worker=_Policy.to_worker,
        codec=_codec(_Policy),
        doc="tool ceiling: which tools, capabilities, paths and side effects",
    )
)
approval: _ambient.AmbientStack[_approval.ToolApprovalPolicy] = (
    _ambient.AmbientStack(
        "approval",
        inherit=_Inherit.TOP,
        narrow=_intersecting(_approval.ToolApprovalPolicy, "approval"),
        codec=_codec(_approval.ToolApprovalPolicy),
        doc="approval rules, handler and remembered answers",
    )
)
command: _ambient.AmbientStack[_command.CommandPolicy] = _ambient.AmbientStack(
    "command",
    inherit=_Inherit.COPY,
    narrow=_only(_command.CommandPolicy, "command"),
    codec=_codec(_command.CommandPolicy),
    doc="shell-command policy; every frame must allow",
)
permissions: _ambient.AmbientStack[_permissions.DynamicPermissionPolicy] = (
    _ambient.AmbientStack(
        "permissions",
        inherit=_Inherit.COPY,
        narrow=_only(_permissions.DynamicPermissionPolicy, "permissions"),
        codec=_codec(_permissions.DynamicPermissionPolicy),
        doc="dynamic permissions; every frame is checked, any deny wins",
    )
)
_check_overlay = _only(_overlay.RuntimeContextOverlay, "overlay")


def _narrow_overlay(
    outer: _overlay.RuntimeContextOverlay | None,
    new: _overlay.RuntimeContextOverlay,
) -> _overlay.RuntimeContextOverlay:
    """Each frame stores the effective overlay: the merge happens here, once
    per push, and a run's id cannot be changed under it.
    """
    _check_overlay(outer, new)
    return new if outer is None else outer.refined_by(new)


overlay: _ambient.AmbientStack[_overlay.RuntimeContextOverlay] = (
    _ambient.AmbientStack(
        "overlay",
        inherit=_Inherit.COPY,
        narrow=_narrow_overlay,
        codec=_codec(_overlay.RuntimeContextOverlay),
        doc="attribution (run_id, worker_id, ...); the run ids are fixed once set",
    )
)


_check_autonomy = _only(_autonomy.AutonomyPolicy, "autonomy")


def _narrow_autonomy(
    outer: _autonomy.AutonomyPolicy | None, new: _autonomy.AutonomyPolicy
) -> _autonomy.AutonomyPolicy:
    _check_autonomy(outer, new)
    return _autonomy.narrow_autonomy(outer, new)


autonomy: _ambient.AmbientStack[_autonomy.AutonomyPolicy] = (
    _ambient.AmbientStack(
        "autonomy",
        inherit=_Inherit.COPY,
        narrow=_narrow_autonomy,
        codec=_codec(_autonomy.AutonomyPolicy),
        doc="autonomy tier: shadow < suggest < act_with_approval < act_auto",
    )
)
render: _ambient.AmbientStack[_render.LlmRenderContext] = (
    _ambient.AmbientStack(
        "render",
        inherit=_Inherit.NONE,
        narrow=_only(_render.LlmRenderContext, "render"),
        codec=_codec(_render.LlmRenderContext),
        doc="LLM render context of the current model call",
    )
)
connector: _ambient.AmbientStack[_connector.ConnectorCtx] = (
    _ambient.AmbientStack(
        "connector",
        inherit=_Inherit.NONE,
        narrow=_only(_connector.ConnectorCtx, "connector"),
        doc="connector context of the current connector export (never travels)",
    )
)
trusted_depth = _ambient.AmbientCounter(
    "trusted_depth", doc="how deep inside trusted() blocks"
)
command_hook_depth = _ambient.AmbientCounter(
    "command_hook_depth", doc="how deep inside command-policy hooks"
)

for _stack in (
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
    _registry.registry.register(_stack, origin=_registry.BUILTIN)
del _stack, _Policy
