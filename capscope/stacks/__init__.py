"""
The built-in stacks, registered on import.

They use exactly the hooks a third-party stack has (`inherit`, `narrow`,
`to_worker`, `codec`) and register through the public
`capscope.registry.register`; nothing in the core knows them by name.

| stack | holds | worker gets |
|---|---|---|
| `execution` | the tool ceiling (`CapabilityPolicy`) | TOP |
| `approval` | approval rules (`ToolApprovalPolicy`) | TOP |
| `command` | shell-command policy (`CommandPolicy`) | COPY |
| `permissions` | dynamic permissions (`DynamicPermissionPolicy`) | COPY |
| `overlay` | attribution (`RuntimeContextOverlay`) | COPY |
| `autonomy` | autonomy tier (`AutonomyPolicy`) | COPY |
| `render` | LLM render context (`LlmRenderContext`) | NONE |
| `connector` | connector context (`ConnectorCtx`) | NONE |
| `trusted_depth` | counter: inside a trusted handler | 0 |
| `command_hook_depth` | counter: inside a command-policy hook | 0 |

Example:
    >>> from capscope.stacks import execution
    >>> execution.inherit
    <Inherit.TOP: 'top'>
"""

from __future__ import annotations

import typing

from .. import _ambient, _registry
from ..policies.capability import CapabilityPolicy, narrow_execution

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

# The value types and their narrowing hooks arrive with the policy kinds
# (capscope.policies); until then the stacks carry any value.
execution: _ambient.AmbientStack[CapabilityPolicy] = _ambient.AmbientStack(
    "execution",
    inherit=_ambient.Inherit.TOP,
    narrow=narrow_execution,
    to_worker=CapabilityPolicy.to_worker,
    codec=(CapabilityPolicy.to_dict, CapabilityPolicy.from_dict),
    doc="tool ceiling: which tools, capabilities, paths and side effects",
)
approval: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "approval",
    inherit=_ambient.Inherit.TOP,
    doc="approval rules, handler and remembered answers",
)
command: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "command",
    inherit=_ambient.Inherit.COPY,
    doc="shell-command policy; every frame must allow",
)
permissions: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "permissions",
    inherit=_ambient.Inherit.COPY,
    doc="dynamic permissions; every frame is checked, any deny wins",
)
overlay: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "overlay",
    inherit=_ambient.Inherit.COPY,
    doc="attribution (run_id, worker_id, ...); innermost non-empty wins",
)
autonomy: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "autonomy",
    inherit=_ambient.Inherit.COPY,
    doc="autonomy tier: shadow < suggest < act_with_approval < act_auto",
)
render: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "render",
    inherit=_ambient.Inherit.NONE,
    doc="LLM render context of the current model call",
)
connector: _ambient.AmbientStack[typing.Any] = _ambient.AmbientStack(
    "connector",
    inherit=_ambient.Inherit.NONE,
    doc="connector context of the current connector export",
)
trusted_depth = _ambient.AmbientCounter(
    "trusted_depth", doc="how deep inside trusted() handlers"
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
del _stack
