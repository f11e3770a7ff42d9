"""
The policy kinds the built-in stacks hold, one module per kind.

The policy classes (`CapabilityPolicy`, `ToolApprovalPolicy`, ...) arrive
with the policy-kinds issue; this package exists so that the layout is
fixed from the start.
"""

__all__: list[str] = []
