"""
capscope: capability policies that live per task.

Push policies onto ambient stacks; every task, worker, thread and executor
job started through capscope reads back its own, never a sibling's, never
nothing.

Examples:
    >>> import capscope as cs
    >>> tenant = cs.AmbientStack("doc_init_tenant", inherit=cs.Inherit.COPY)
    >>> with tenant.pushed("acme"):
    ...     cs.Scope.capture_inherited()[tenant]
    ('acme',)
"""

from __future__ import annotations

from . import audit, events, lowlevel, policies, propagation, stacks
from ._ambient import AmbientCounter, AmbientStack, Inherit
from ._current import (
    current_connector,
    current_overlay,
    describe_policy,
    render_context,
    trusted,
)
from ._decorators import check_tool, needs_approval, requires_tool, tool_spec
from ._enforce import ApprovalDecision, ApprovalRequest, ToolSpec
from ._exceptions import (
    ActionProposed,
    ApprovalDenied,
    CapscopeError,
    CapscopeWarning,
    CeilingExceeded,
    CommandBlocked,
    EnvelopeError,
    HumanRequired,
    NoConnectorContext,
    NoPolicyInstalled,
    PolicyConfigError,
    PolicyDenied,
    PolicyFileError,
    RegistryError,
    ScopeError,
    ScopeWarning,
    ToolDenied,
)
from ._policyfile import load_policy_data, load_policy_file, load_policy_files
from ._registry import registry
from ._schema import policy_schema
from ._scope import Scope, using
from ._tasks import (
    ScopedExecutor,
    run_in_executor,
    scope_ambient,
    scoped_aiter,
    scoped_iter,
    spawn,
    to_thread,
    worker,
)
from .commands._engine import check_command, guards_command
from .events import Action, CommandDecision, Decision, Gate
from .policies.protocol import Verdict

__all__ = [
    "Action",
    "ActionProposed",
    "AmbientCounter",
    "AmbientStack",
    "ApprovalDecision",
    "ApprovalDenied",
    "ApprovalRequest",
    "CapscopeError",
    "CapscopeWarning",
    "CeilingExceeded",
    "CommandBlocked",
    "CommandDecision",
    "Decision",
    "EnvelopeError",
    "Gate",
    "HumanRequired",
    "Inherit",
    "NoConnectorContext",
    "NoPolicyInstalled",
    "PolicyConfigError",
    "PolicyDenied",
    "PolicyFileError",
    "RegistryError",
    "Scope",
    "ScopeError",
    "ScopeWarning",
    "ScopedExecutor",
    "ToolDenied",
    "ToolSpec",
    "Verdict",
    "audit",
    "check_command",
    "check_tool",
    "current_connector",
    "current_overlay",
    "describe_policy",
    "events",
    "guards_command",
    "load_policy_data",
    "load_policy_file",
    "load_policy_files",
    "lowlevel",
    "needs_approval",
    "policies",
    "policy_schema",
    "propagation",
    "registry",
    "render_context",
    "requires_tool",
    "run_in_executor",
    "scope_ambient",
    "scoped_aiter",
    "scoped_iter",
    "spawn",
    "stacks",
    "to_thread",
    "tool_spec",
    "trusted",
    "using",
    "worker",
]

# Tracebacks and reprs read `capscope.ToolDenied`, not the private module.
for _name in __all__:
    _obj = globals()[_name]
    if getattr(_obj, "__module__", "").startswith("capscope._"):
        _obj.__module__ = __name__
del _name, _obj


def __getattr__(name: str) -> str:
    # Read lazily (attrs and pluggy do the same): importing capscope must not
    # pay for a metadata lookup.
    if name == "__version__":
        from importlib.metadata import version

        return version("capscope")
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
