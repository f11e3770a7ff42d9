"""
Reading the built-in stacks: the `current_*()` functions, `trusted()` and
`describe_policy()`.

Kept apart from `capscope.policies` (pure functions of policy values) and
`capscope.stacks` (the stacks themselves) so that neither needs the other.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from . import events
from ._exceptions import NoConnectorContext
from .policies import (
    AutonomyTier,
    CapabilityPolicy,
    CommandPolicy,
    ConnectorCtx,
    LlmRenderContext,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)
from .policies.command import CommandDefault
from .stacks import (
    approval,
    autonomy,
    command,
    connector,
    execution,
    overlay,
    render,
    trusted_depth,
)

__all__ = [
    "current_connector",
    "current_overlay",
    "describe_policy",
    "render_context",
    "trusted",
]


_EMPTY = RuntimeContextOverlay()


def current_overlay() -> RuntimeContextOverlay:
    """
    The attribution in force here: every overlay frame merged field by
    field, the innermost non-empty value winning (empty when none is set).

    Example:
        >>> import capscope as cs
        >>> from capscope.policies import RuntimeContextOverlay as Overlay
        >>> with cs.using(overlay=Overlay(run_id="r1")):
        ...     with cs.using(overlay=Overlay(worker_id="w7")):
        ...         cs.current_overlay().ids()
        {'run_id': 'r1', 'worker_id': 'w7'}
    """
    return overlay.top() or _EMPTY


def render_context() -> LlmRenderContext | None:
    """
    The LLM render context of the current model call, or `None`.

    Example:
        >>> import capscope as cs
        >>> from capscope.policies import LlmRenderContext
        >>> with cs.using(render=LlmRenderContext(model="m-1")):
        ...     cs.render_context().model
        'm-1'
    """
    return render.top()


def current_connector() -> ConnectorCtx:
    """
    The connector context of the current connector export.

    Raises:
        NoConnectorContext: none is active here (workers start with none).

    Example:
        >>> import capscope as cs
        >>> from capscope.policies import ConnectorCtx
        >>> with cs.using(connector=ConnectorCtx(name="crm")):
        ...     cs.current_connector().name
        'crm'
    """
    ctx = connector.top()
    if ctx is None:
        msg = "no connector context is active here"
        raise NoConnectorContext(msg)
    return ctx


@contextlib.contextmanager
def trusted() -> Iterator[None]:
    """
    A `with` block inside which bridged tools may run (the trusted-handler
    depth is raised for its duration; workers start at 0).

    Only the application's own, already-checked handler code belongs
    inside; a tool never enters it on a model's say-so.

    Example:
        >>> import capscope as cs
        >>> with cs.trusted():
        ...     cs.stacks.trusted_depth.value
        1
    """
    if events.has_subscribers():
        # Entering trusted() is an escape (DESIGN.md section 5): say so.
        events.emit(
            events.Decision(
                action=events.Action.GRANTED,
                gate=events.Gate.TRUSTED,
                tool="*",
                reason="entered capscope.trusted()",
                overlay=current_overlay(),
            )
        )
    with trusted_depth.raised():
        yield


def describe_policy() -> str:
    """
    A short plain-text statement of the limits in force here (tool ceiling,
    approval posture, command posture, autonomy tier), to put in a model's
    prompt so it knows them before it tries.

    Example:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> with cs.using(execution=CapabilityPolicy(tools=("fs.read",), side_effect_level="read_only")):
        ...     print(cs.describe_policy().splitlines()[0])
        Tools: only fs.read; side effects up to read_only.
    """
    return "\n".join(
        (
            _describe_ceiling(execution.top()),
            _describe_approval(approval.top()),
            _describe_commands(command.frames()),
            _describe_autonomy(),
        )
    )


def _describe_ceiling(policy: CapabilityPolicy | None) -> str:
    if policy is None:
        return "Tools: none (no execution policy is installed, so every tool call is refused)."
    parts = []
    if policy.tools is None:
        parts.append("Tools: any")
    elif not policy.tools:
        parts.append("Tools: none")
    else:
        parts.append(f"Tools: only {', '.join(policy.tools)}")
    if policy.capabilities is not None:
        caps = [
            f"{cap}({', '.join(ops)})"
            for cap, ops in policy.capabilities.items()
        ]
        parts.append(f"capabilities {', '.join(caps) or 'none'}")
    if policy.side_effect_level is not None:
        parts.append(f"side effects up to {policy.side_effect_level.value}")
    if policy.restricts_paths:
        parts.append(
            "files: read and write under "
            f"{', '.join(policy.workspace_roots or ()) or 'nothing'}"
        )
        if policy.read_only_roots:
            parts.append(
                f"read only under {', '.join(policy.read_only_roots)}"
            )
    if policy.recursion_limit is not None:
        parts.append(f"{policy.recursion_limit} more worker level(s)")
    if policy.tool_arg_constraints:
        rules = ", ".join(repr(c) for c in policy.tool_arg_constraints)
        parts.append(f"argument rules {rules}")
    return "; ".join(parts) + "."


def _describe_approval(policy: ToolApprovalPolicy | None) -> str:
    if policy is None:
        return (
            "Approval: no rules; tools marked as needing approval are refused, "
            "since no one can be asked."
        )
    frames = [
        "; ".join(f"{rule.action.value} {rule.tool or '*'}" for rule in frame)
        for frame in policy.rule_frames
    ]
    if len(frames) > 1:  # each frame decides apart: say which is which
        frames = [
            f"frame {depth} ({text or 'no rules'})"
            for depth, text in enumerate(frames, 1)
        ]
    text = f"Approval: {'; '.join(f for f in frames if f) or 'no rules'}"
    asker = (
        "a handler answers asks"
        if policy.handler
        else "asks are refused (no handler)"
    )
    guards = (
        "sensitive files (keys, .env, credentials) are refused"
        if not policy.allow_sensitive_paths
        else "sensitive files are not guarded"
    )
    return f"{text}; {asker}; {guards}."


def _describe_commands(frames: tuple[CommandPolicy, ...]) -> str:
    floor = "catastrophic commands (rm -rf /, fork bombs, curl | sh, ...) are always refused"
    if not frames:
        return f"Shell commands: no command policy; {floor}."
    allow: list[str] = []
    for frame in frames:
        allow.extend(frame.allow)
    order = [CommandDefault.ALLOW, CommandDefault.ASK, CommandDefault.DENY]
    strictest = max((frame.default for frame in frames), key=order.index)
    otherwise = {
        CommandDefault.ALLOW: "allowed",
        CommandDefault.ASK: "needs approval",
        CommandDefault.DENY: "refused",
    }[strictest]
    allowed = f"allowed: {', '.join(allow)}" if allow else "no allow rules"
    return (
        f"Shell commands: {allowed}; anything else {otherwise} (all "
        f"{len(frames)} command policy frame(s) must allow); {floor}."
    )


def _describe_autonomy() -> str:
    policy = autonomy.top()
    if policy is None:
        return "Autonomy: act_auto (act without asking)."
    tier = policy.tier or AutonomyTier.ACT_AUTO
    text = f"Autonomy: {tier.value}"
    if policy.action_tiers:
        overrides = ", ".join(
            f"{a}: {t.value}" for a, t in policy.action_tiers.items()
        )
        text += f" ({overrides})"
    if policy.requires_human:
        text += "; every side-effecting action requires a human"
    elif policy.requires_human_actions:
        text += (
            f"; a human must take {', '.join(policy.requires_human_actions)}"
        )
    return text + "."
