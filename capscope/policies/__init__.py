"""
The policy kinds the built-in stacks hold, one module per kind.

Each is a frozen `attrs` class: validated when built (bad input raises
`PolicyConfigError` naming the field), with its narrowing rule, pure
evaluation functions and a codec (`to_dict()` / `from_dict()`).

Example:
    >>> from capscope.policies import CapabilityPolicy
    >>> CapabilityPolicy(tools=("fs.*",)).allows_tool("fs.read")
    True
"""

from ._common import FrozenMap, Level, ToolCall
from .capability import ArgConstraint, CapabilityPolicy, resolve_path

__all__ = [
    "ArgConstraint",
    "CapabilityPolicy",
    "FrozenMap",
    "Level",
    "ToolCall",
    "resolve_path",
]
