"""
The public testing helpers of capscope, usable without pytest.

Tests of code that uses capscope need four things, and this module gives
each as a plain function or class (the pytest plugin,
`capscope.pytest_plugin`, is a thin layer of fixtures over them):

- **isolation and leak checks**: `isolated()` runs a block with every
  stack empty (or under a given policy) and fails it, naming the stack,
  if it leaves a frame behind; `no_leaks()` checks a block without
  isolating it; `install_policy()` keeps a policy for the rest of an
  isolated block;
- **scripted approvals**: `ScriptedApprover`, an approval handler that
  answers from a list or a function and records every request;
- **assertions** with readable failures: `assert_denied()`,
  `assert_allowed()` and their `_async` forms;
- **a stack's contract**: `StackContract`, a test base a third-party
  stack subclasses to run the checks capscope runs on its own stacks;
- **command spellings**: a command policy is only as good as the
  spellings it survives. `bypass_variants()` generates spellings of a
  command that a shell runs exactly as it runs the plain form, so that a
  user can check their own `CommandPolicy` the way capscope checks its
  engine: every spelling must get the plain form's action, and running
  it under `sudo` or `doas` must never get a weaker one.

Examples:
    >>> import capscope as cs
    >>> from capscope.testing import assert_denied, bypass_variants, isolated
    >>> @cs.requires_tool("fs.write")
    ... def write(path):
    ...     pass
    >>> with isolated({"execution": {"tools": ["fs.read"]}}):
    ...     assert_denied(write, "a.txt", gate="tool_ceiling").tool
    'fs.write'
    >>> len(list(bypass_variants("rm -rf build", seed=0, count=5)))
    5
"""

from __future__ import annotations

from .._contract import StackContract
from ._approvers import ScriptedApprover
from ._assertions import (
    assert_allowed,
    assert_allowed_async,
    assert_denied,
    assert_denied_async,
)
from ._isolation import (
    IsolatedScope,
    Leak,
    LeakedFrames,
    install_policy,
    isolated,
    no_leaks,
)
from ._variants import bypass_variants

__all__ = [
    "IsolatedScope",
    "Leak",
    "LeakedFrames",
    "ScriptedApprover",
    "StackContract",
    "assert_allowed",
    "assert_allowed_async",
    "assert_denied",
    "assert_denied_async",
    "bypass_variants",
    "install_policy",
    "isolated",
    "no_leaks",
]
