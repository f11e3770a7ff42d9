"""
Checking policy files against the tools a codebase exposes (`capscope lint`).

Three kinds of finding:

- `never_allowed`: a decorated tool the layered policy can never allow,
  whatever its arguments (no execution policy at all, the tool ceiling,
  the capability or side-effect ceiling, an approval deny rule or a
  permissions deny rule that selects the tool alone, or a permissions
  allow list with no rule for it).
- `unused_rule`: a rule naming tools (a tool glob) that matches no known
  tool.
- `shadowed_rule`: a rule that can never decide, because a stronger rule
  (or an earlier equal one) selects everything it selects.

Glob containment is decided conservatively: a finding is only reported
when it certainly holds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs

from .._policyfile import load_policy_file, load_policy_files
from .._scope import Scope
from ..policies import (
    ApprovalRule,
    CapabilityPolicy,
    CommandPolicy,
    DynamicPermissionPolicy,
    ToolApprovalPolicy,
)
from ..policies._common import ToolCall, glob_match
from ..policies.approval import (
    _ACTION_RANK,
    _MATCHERS,
    _frames,
    _source_rank,
)
from ..policies.capability import _glob_within
from ._manifest import ManifestEntry

__all__ = ["Finding", "lint"]


@attrs.frozen
class Finding:
    """One lint finding: its kind, where (file and key path, or a tool), why."""

    kind: str
    file: str | None
    where: str
    message: str

    def to_dict(self) -> dict[str, Any]:
        return attrs.asdict(self)

    def __str__(self) -> str:
        head = f"{self.file}: {self.where}" if self.file else self.where
        return f"{head}: {self.kind}: {self.message}"


def lint(
    paths: Sequence[str], entries: Sequence[ManifestEntry]
) -> list[Finding]:
    """
    The findings of the policy files *paths* (layered in that order)
    against the tools *entries*.

    Raises:
        PolicyFileError: a file is malformed or a later one widens.
        OSError: a file cannot be read.
    """
    findings = _never_allowed(load_policy_files(*paths), entries)
    names = [e.spec.name for e in entries]
    capabilities = [e.spec.capability for e in entries if e.spec.capability]
    for path in paths:
        scope = load_policy_file(path)
        for policy in scope["execution"]:
            findings += _execution(path, policy, names, capabilities)
        for policy in scope["approval"]:
            findings += _approval(path, policy, names)
        for policy in scope["permissions"]:
            findings += _permissions(path, policy, names)
        for policy in scope["command"]:
            findings += _command(path, policy)
    return findings


# -- tools no rule allows ----------------------------------------------------------


def _never_allowed(
    scope: Scope, entries: Iterable[ManifestEntry]
) -> list[Finding]:
    ceilings: tuple[CapabilityPolicy, ...] = scope["execution"]
    approvals: tuple[ToolApprovalPolicy, ...] = scope["approval"]
    permissions: tuple[DynamicPermissionPolicy, ...] = scope["permissions"]
    findings = []
    for entry in entries:
        spec = entry.spec
        reason = None
        if not ceilings:
            reason = "no execution policy: every tool is denied (fail closed)"
        else:
            refusal = ceilings[-1].check(
                ToolCall(
                    spec.name,
                    capability=spec.capability,
                    side_effect=spec.side_effect,
                )
            )
            if refusal is not None:
                reason = f"{refusal[0]}: {refusal[1]}"
        if reason is None and approvals:
            labelled = (
                (f"{where}[{index}]", rule)
                for where, frame in _frames(approvals[-1])
                for index, rule in enumerate(frame)
            )
            for where, rule in labelled:
                if (
                    rule.action == "deny"
                    and _only_tool(rule)
                    and rule.tool is not None
                    and glob_match(rule.tool, spec.name)
                ):
                    reason = f"approval: denied by {where} {rule!r}"
                    break
        if reason is None:
            reason = _permission_refusal(permissions, spec.name)
        if reason is not None:
            findings.append(
                Finding("never_allowed", None, entry.import_path, reason)
            )
    return findings


def _only_tool(rule: ApprovalRule) -> bool:
    """Whether the rule selects by tool name alone (any arguments)."""
    return rule.side_effect is None and all(
        getattr(rule, m) is None for m in _MATCHERS if m != "tool"
    )


def _permission_refusal(
    policies: Iterable[DynamicPermissionPolicy], tool: str
) -> str | None:
    for policy in policies:
        for index, rule in enumerate(policy.deny):
            if rule.matcher is None and glob_match(rule.tool, tool):
                return f"permissions: denied by deny[{index}] {rule!r}"
        if policy.allow is not None and not any(
            glob_match(r.tool, tool) and r.matcher is not False
            for r in policy.allow
        ):
            return "permissions: no allow rule selects this tool"
    return None


# -- rules that match nothing, rules that are shadowed --------------------------------


def _unused(
    path: str, where: str, pattern: str, names: Sequence[str]
) -> list[Finding]:
    if any(glob_match(pattern, name) for name in names):
        return []
    msg = f"{pattern!r} matches no known tool"
    return [Finding("unused_rule", path, where, msg)]


def _duplicates(
    path: str,
    field: str,
    patterns: Sequence[str],
    covers: Callable[[str, str], bool] = _glob_within,
) -> list[Finding]:
    findings = []
    for i, pattern in enumerate(patterns):
        for j, other in enumerate(patterns):
            if (
                i != j
                and covers(pattern, other)
                and (pattern != other or j < i)
            ):
                msg = f"{pattern!r} adds nothing to {field}[{j}] {other!r}"
                findings.append(
                    Finding("shadowed_rule", path, f"{field}[{i}]", msg)
                )
                break
    return findings


def _execution(
    path: str,
    policy: CapabilityPolicy,
    names: Sequence[str],
    capabilities: Sequence[str],
) -> list[Finding]:
    findings = []
    tools = policy.tools or ()
    for index, pattern in enumerate(tools):
        findings += _unused(path, f"execution.tools[{index}]", pattern, names)
    findings += _duplicates(path, "execution.tools", tools)
    for index, constraint in enumerate(policy.tool_arg_constraints):
        where = f"execution.tool_arg_constraints[{index}].tool"
        findings += _unused(path, where, constraint.tool, names)
    ops = {c.partition(".")[0] for c in capabilities}
    for op in policy.capabilities or {}:
        if op not in ops:
            msg = f"no known tool has a {op!r} capability"
            where = f"execution.capabilities.{op}"
            findings.append(Finding("unused_rule", path, where, msg))
    return findings


def _approval(
    path: str, policy: ToolApprovalPolicy, names: Sequence[str]
) -> list[Finding]:
    findings = []
    rules = policy.rules
    for index, rule in enumerate(rules):
        if rule.tool is not None:
            where = f"approval.rules[{index}].tool"
            findings += _unused(path, where, rule.tool, names)
        for other_index, other in enumerate(rules):
            if other_index != index and _outranks(
                other, other_index, rule, index
            ):
                msg = (
                    f"{rule!r} never decides: rules[{other_index}] "
                    f"{other!r} selects everything it does and wins"
                )
                where = f"approval.rules[{index}]"
                findings.append(Finding("shadowed_rule", path, where, msg))
                break
    return findings


def _outranks(
    strong: ApprovalRule,
    strong_index: int,
    weak: ApprovalRule,
    weak_index: int,
) -> bool:
    """Whether *strong* decides every call *weak* selects, instead of it."""
    strong_key = (
        _source_rank(strong.source, strong.action),
        _ACTION_RANK[strong.action],
    )
    weak_key = (
        _source_rank(weak.source, weak.action),
        _ACTION_RANK[weak.action],
    )
    if strong_key < weak_key or (
        strong_key == weak_key and strong_index > weak_index
    ):
        return False
    for name in _MATCHERS:
        outer, inner = getattr(strong, name), getattr(weak, name)
        if outer is None:
            continue
        if inner is None:
            return False
        if name == "domain":
            outer, inner = outer.lower(), inner.lower()
        if not _glob_within(inner, outer):
            return False
    if strong.side_effect is not None:
        return (
            weak.side_effect is not None
            and weak.side_effect >= strong.side_effect
        )
    return True


def _permissions(
    path: str, policy: DynamicPermissionPolicy, names: Sequence[str]
) -> list[Finding]:
    findings = []
    for field, rules in (("allow", policy.allow or ()), ("deny", policy.deny)):
        for index, rule in enumerate(rules):
            where = f"permissions.{field}[{index}].tool"
            findings += _unused(path, where, rule.tool, names)
    for index, rule in enumerate(policy.allow or ()):
        for deny_index, deny in enumerate(policy.deny):
            if deny.matcher is None and _glob_within(rule.tool, deny.tool):
                msg = (
                    f"{rule!r} never allows: deny[{deny_index}] {deny!r} "
                    "denies everything it selects"
                )
                where = f"permissions.allow[{index}]"
                findings.append(Finding("shadowed_rule", path, where, msg))
                break
    return findings


def _command(path: str, policy: CommandPolicy) -> list[Finding]:
    findings = _duplicates(path, "command.allow", policy.allow, _allow_covers)
    for index, pattern in enumerate(policy.allow):
        for deny_index, deny in enumerate(policy.deny_patterns):
            if _denied_by(pattern, deny):
                msg = (
                    f"{pattern!r} never allows: deny_patterns[{deny_index}] "
                    f"{deny!r} denies every command it matches"
                )
                where = f"command.allow[{index}]"
                findings.append(Finding("shadowed_rule", path, where, msg))
                break
    return findings


def _split(pattern: str) -> tuple[list[str], bool]:
    """An allow pattern's head tokens, and whether it ends in a `*` token."""
    tokens = pattern.split()
    if tokens and tokens[-1] == "*":
        return tokens[:-1], True
    return tokens, False


def _allow_covers(inner: str, outer: str) -> bool:
    """Whether the allow pattern *outer* matches every argv *inner* does."""
    inner_head, inner_rest = _split(inner)
    outer_head, outer_rest = _split(outer)
    if outer_rest:
        if len(inner_head) < len(outer_head):
            return False
    elif inner_rest or len(inner_head) != len(outer_head):
        return False
    return all(
        _glob_within(i, o)
        for i, o in zip(inner_head, outer_head, strict=False)
    )


def _denied_by(allow: str, deny: str) -> bool:
    """
    Whether the deny pattern *deny* matches every command the allow
    pattern *allow* matches (a command's text is its argv joined by
    spaces, so a token glob's matches are among the text glob's).
    """
    head, rest = _split(allow)
    text = " ".join(head)
    if "*" not in deny:  # a substring of the literal start of every match
        literal = []
        for token in head:
            if any(c in token for c in "*?["):
                break
            literal.append(token)
        return deny in " ".join(literal)
    return _glob_within(text, deny) and (
        not rest or _glob_within(f"{text} *", deny)
    )
