"""Tools a child process imports: decorated at module level, so they pickle."""

from __future__ import annotations

import capscope as cs


@cs.requires_tool("fs.read", side_effect="read_only")
def read_note(name: str) -> str:
    return f"note {name}"


def whoami() -> tuple[str | None, str | None]:
    """The attribution in force in the child: (run_id, worker_id)."""
    overlay = cs.current_overlay()
    return overlay.run_id, overlay.worker_id


def try_read(name: str) -> str:
    """Call the tool; a refusal comes back as its gate (exceptions pickle)."""
    try:
        return read_note(name)
    except cs.PolicyDenied as denied:
        decision = denied.decision
        return f"denied: {decision.gate if decision else None}"
