"""
Audit: where decisions go once they are made.

Every decision capscope makes is a `capscope.Decision` event
(`capscope.events`). This module turns those events into an audit trail.

`decision_record` is the one JSON form of a decision, shared by every
sink and by `capscope demo --json`: attribution ids at the top level,
arguments as a digest (never their values).

Example:
    >>> import capscope as cs
    >>> from capscope.audit import decision_record
    >>> from capscope.policies import RuntimeContextOverlay
    >>> d = cs.Decision(action="deny", gate="tool_ceiling", tool="shell", reason="not in the ceiling", overlay=RuntimeContextOverlay(run_id="r-1", worker_id="w-2"))
    >>> record = decision_record(d)
    >>> record["action"], record["gate"], record["worker_id"], record["run_id"]
    ('deny', 'tool_ceiling', 'w-2', 'r-1')
"""

from __future__ import annotations

from typing import Any

from .events import CommandDecision, Decision

__all__ = ["decision_record"]

_ID_FIELDS = ("run_id", "workflow_id", "stage_id", "worker_id")


def _rule(rule: object) -> Any:
    """A rule as JSON-able data: its `to_dict()` when it has one, else text."""
    if rule is None or isinstance(rule, str | int | float | bool):
        return rule
    to_dict = getattr(rule, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return str(rule)


def decision_record(decision: Decision) -> dict[str, Any]:
    """
    One decision as a flat JSON-able dict: `time`, `action`, `gate`,
    `tool`, `reason`, `rule`, the four attribution ids (`run_id`,
    `workflow_id`, `stage_id`, `worker_id`; `None` when unset),
    `attributes`, `args_digest`, and for a command decision its `labels`
    and `segments`.

    Example:
        >>> import capscope as cs
        >>> from capscope.audit import decision_record
        >>> decision_record(cs.Decision(action="allow", gate=None, tool="fs.read", reason="allowed", time=0.0))
        {'time': 0.0, 'action': 'allow', 'gate': None, 'tool': 'fs.read', 'reason': 'allowed', 'rule': None, 'run_id': None, 'workflow_id': None, 'stage_id': None, 'worker_id': None, 'attributes': {}, 'args_digest': None}
    """
    overlay = decision.overlay
    record: dict[str, Any] = {
        "time": decision.time,
        "action": decision.action.value,
        "gate": None if decision.gate is None else decision.gate.value,
        "tool": decision.tool,
        "reason": decision.reason,
        "rule": _rule(decision.rule),
    }
    for name in _ID_FIELDS:
        record[name] = getattr(overlay, name)
    record["attributes"] = dict(overlay.attributes)
    record["args_digest"] = decision.args_digest
    if isinstance(decision, CommandDecision):
        record["labels"] = list(decision.labels)
        record["segments"] = [list(s) for s in decision.segments]
    return record
