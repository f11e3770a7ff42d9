"""
The policy kinds the built-in stacks hold, one module per kind.

Each is a frozen `attrs` class: validated when built (bad input raises
`PolicyConfigError` naming the field), with its narrowing rule, pure
evaluation functions and a codec (`to_dict()` / `from_dict()`). In a policy
a field that is `None` is unset (no limit; the outer value when narrowing)
and an empty tuple means nothing.

Examples:
    >>> from capscope.policies import CapabilityPolicy
    >>> CapabilityPolicy(tools=("fs.*",)).allows_tool("fs.read")
    True
"""

from ._common import FrozenMap, Level, ToolCall
from .approval import (
    ApprovalAction,
    ApprovalEvaluation,
    ApprovalRule,
    RuleSource,
    ToolApprovalPolicy,
    remember_key,
)
from .autonomy import AutonomyPolicy, AutonomyTier, needs_human, resolve_tier
from .capability import ArgConstraint, CapabilityPolicy, resolve_path
from .command import CommandDefault, CommandLabel, CommandPolicy
from .connector import ConnectorCtx
from .overlay import RuntimeContextOverlay, merge_overlays
from .permissions import (
    DynamicPermissionPolicy,
    EscalationAnswer,
    PermissionRule,
    PermissionVerdict,
    check_permissions,
    parse_escalation_answer,
)
from .protocol import Policy, Verdict, strongest
from .render import LlmRenderContext

__all__ = [
    "ApprovalAction",
    "ApprovalEvaluation",
    "ApprovalRule",
    "ArgConstraint",
    "AutonomyPolicy",
    "AutonomyTier",
    "CapabilityPolicy",
    "CommandDefault",
    "CommandLabel",
    "CommandPolicy",
    "ConnectorCtx",
    "DynamicPermissionPolicy",
    "EscalationAnswer",
    "FrozenMap",
    "Level",
    "LlmRenderContext",
    "PermissionRule",
    "PermissionVerdict",
    "Policy",
    "RuleSource",
    "RuntimeContextOverlay",
    "ToolApprovalPolicy",
    "ToolCall",
    "Verdict",
    "check_permissions",
    "merge_overlays",
    "needs_human",
    "parse_escalation_answer",
    "remember_key",
    "resolve_path",
    "resolve_tier",
    "strongest",
]
