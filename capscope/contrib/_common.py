"""What the framework adapters share: the text a refused call shows."""

from __future__ import annotations

from .. import Decision, PolicyDenied

__all__ = ["denial_text"]


def denial_text(denied: PolicyDenied) -> str:
    """
    What a refused call tells the model, in every adapter: the tool, the
    reason and the gate (`"capscope denied <tool>: <reason> (gate
    <gate>)"`).

    Examples:
        >>> import capscope as cs
        >>> decision = cs.Decision(action="deny", gate="tool_ceiling", tool="shell", reason="not allowed")
        >>> denial_text(cs.ToolDenied("not allowed", decision))
        'capscope denied shell: not allowed (gate tool_ceiling)'
    """
    decision = denied.decision
    if not isinstance(decision, Decision):  # raised without one
        return f"capscope denied the call: {denied}"
    gate = decision.gate.value if decision.gate is not None else "none"
    return f"capscope denied {decision.tool}: {decision.reason} (gate {gate})"
