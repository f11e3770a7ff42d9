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
from ._ambient import checked_values
from ._exceptions import NoConnectorContext
from .policies import (
    AutonomyPolicy,
    CommandPolicy,
    ConnectorCtx,
    LlmRenderContext,
    RuntimeContextOverlay,
)
from .stacks import (
    approval,
    autonomy,
    command,
    connector,
    execution,
    overlay,
    permissions,
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

    Examples:
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

    Examples:
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

    Examples:
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

    Examples:
        >>> import capscope as cs
        >>> with cs.trusted():
        ...     cs.stacks.trusted_depth.value
        1
    """
    if events.has_subscribers():
        # Entering trusted() is an escape (docs/design.md, "Escapes are events"): say so.
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
    approval posture, command posture, autonomy tier, then the dynamic
    permissions and every stack with a `check` hook that has a frame), to
    put in a model's prompt so it knows them before it tries. Each line is
    the value's own `describe()` (the `Policy` protocol).

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> with cs.using(execution=CapabilityPolicy(tools=("fs.read",), side_effect_level="read_only")):
        ...     print(cs.describe_policy().splitlines()[0])
        Tools: only fs.read; side effects up to read_only.
    """
    ceiling = execution.top()
    approvals = approval.top()
    lines = [
        _NO_CEILING if ceiling is None else ceiling.describe(),
        _NO_APPROVAL if approvals is None else approvals.describe(),
        _describe_commands(command.frames()),
        (autonomy.top() or _ACT_AUTO).describe(),
    ]
    lines += [frame.describe() for frame in permissions.frames()]
    for stack, value in checked_values():
        describe = getattr(value, "describe", None)
        if callable(describe):
            lines.append(f"{stack.name}: {describe()}")
    return "\n".join(lines)


_NO_CEILING = (
    "Tools: none (no execution policy is installed, so every tool call is "
    "refused)."
)
_NO_APPROVAL = (
    "Approval: no rules; tools marked as needing approval are refused, "
    "since no one can be asked."
)
_ACT_AUTO = AutonomyPolicy()
_FLOOR = (
    "catastrophic commands (rm -rf /, fork bombs, curl | sh, ...) are "
    "always refused"
)


def _describe_commands(frames: tuple[CommandPolicy, ...]) -> str:
    if not frames:
        return f"Shell commands: no command policy; {_FLOOR}."
    if len(frames) == 1:
        return f"Shell commands: {frames[0].describe()}; {_FLOOR}."
    each = " | ".join(frame.describe() for frame in frames)
    return (
        f"Shell commands: all {len(frames)} command policy frames must "
        f"allow: {each}; {_FLOOR}."
    )
