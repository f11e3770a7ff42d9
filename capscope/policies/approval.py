"""
`ToolApprovalPolicy` and `ApprovalRule`: which tool calls run straight
away, which need a human's answer and which are refused. The "approval"
stack holds one; its top frame is the effective policy, and every push
stores `outer.intersect(new)`, which only adds constraints.

Evaluation (`ToolApprovalPolicy.evaluate`) is a pure function of the
policy and the call, in this order:

1. **Default guards**, applied even to an empty policy: a path matching a
   sensitive pattern (`.env`, private keys, `.aws/credentials`, ...) is
   denied (gate `sensitive_path`), and a path under no workspace root and
   no `external_roots` entry is denied (gate `workspace_boundary`).
2. **Frame verdicts**: the policy keeps each frame's rules apart
   (`outer_rules`, then its own `rules`); each frame's verdict is its
   strongest matching rule (authored deny > user-source deny > any ask >
   user-source allow > authored allow and mode rules).
3. **The strongest verdict wins**, deny > ask > allow, over the frames, a
   `repeat_limit` breach (an ask) and the answer remembered for this call
   in this scope (a human's). An allow never settles an ask another frame
   raised: only a human answer does. The implicit ask of a
   `needs_approval` tool is settled by a human's remembered allow or by an
   allow of the root frame (`outer_rules[0]`, or `rules` when there is no
   outer frame), the configuration the application installed first; an
   allow pushed later, by a worker, a later policy file or an inner scope,
   cannot settle it. With no verdict at all the call is allowed.

Remembered answers are not part of the policy: they live in the approval
frame's `frame_state()` under the key `REMEMBERED`, as
`{remember_key(tool, arguments): "allow" | "deny"}`, so "for this scope"
ends when that frame is popped and a worker (a fresh frame) never sees a
sibling's answers.
"""

from __future__ import annotations

import enum
import fnmatch
import functools
import hashlib
import json
import math
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self, TypeVar
from urllib.parse import urlsplit

import attrs

from .._exceptions import PolicyConfigError
from ._common import (
    Level,
    ToolCall,
    check_callable,
    check_glob,
    enum_value,
    from_mapping,
    glob_match,
    lexical_path,
    opt_str_tuple,
    path_forms,
    to_mapping,
    within_roots,
)

if TYPE_CHECKING:
    from .protocol import Verdict

__all__ = [
    "DEFAULT_SENSITIVE_PATHS",
    "REMEMBERED",
    "ApprovalAction",
    "ApprovalEvaluation",
    "ApprovalRule",
    "RuleSource",
    "ToolApprovalPolicy",
    "remember_key",
]

#: The key under which the approval frame's `frame_state()` dict keeps the
#: answers remembered "for this scope": a `{remember_key: "allow" | "deny"}`
#: mapping, fed to `ToolApprovalPolicy.evaluate(remembered=...)`.
REMEMBERED = "capscope.approval.remembered"

#: The sensitive-path patterns used while a policy's `sensitive_paths` is
#: unset. Matched case-insensitively against the absolute path (as given
#: and with symlinks resolved) and against its basename.
DEFAULT_SENSITIVE_PATHS: tuple[str, ...] = (
    # environment and secrets files
    ".env",
    ".env.*",
    "*.env",
    ".envrc",
    "secrets.json",
    "secrets.yml",
    "secrets.yaml",
    "secrets.toml",
    "*.secret",
    "*.secrets",
    "credentials.json",
    "client_secret*.json",
    "*service-account*.json",
    "*service_account*.json",
    "application_default_credentials.json",
    "*.tfstate",
    "*.tfstate.backup",
    # private keys and key stores
    "id_rsa",
    "id_rsa.*",
    "id_ed25519",
    "id_ed25519.*",
    "id_ed25519_sk*",
    "id_ecdsa",
    "id_ecdsa.*",
    "id_ecdsa_sk*",
    "id_dsa",
    "id_dsa.*",
    "*.pem",
    "*.key",
    "*.p8",
    "*.p12",
    "*.pfx",
    "*.jks",
    "*.keystore",
    "*.ppk",
    "*.kdbx",
    "*.keytab",
    "*.ovpn",
    # the credentials files of common tools
    ".netrc",
    "_netrc",
    ".pgpass",
    ".my.cnf",
    ".mylogin.cnf",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    ".pypirc",
    ".git-credentials",
    ".gitcookies",
    ".vault-token",
    ".boto",
    ".s3cfg",
    ".passwd-s3fs",
    ".dockercfg",
    ".terraformrc",
    ".htpasswd",
    # shell and client histories
    ".bash_history",
    ".zsh_history",
    ".python_history",
    ".psql_history",
    ".mysql_history",
    ".sqlite_history",
    ".node_repl_history",
    ".rediscli_history",
    # per-user credential directories
    "*/.ssh",
    "*/.ssh/*",
    "*/.gnupg",
    "*/.gnupg/*",
    "*/.aws/credentials",
    "*/.aws",
    "*/.aws/*",
    "*/.azure",
    "*/.azure/*",
    "*/.config/gcloud",
    "*/.config/gcloud/*",
    "*/.oci/*",
    "*/.kube",
    "*/.kube/*",
    "*/.docker/config.json",
    "*/.password-store",
    "*/.password-store/*",
    "*/.local/share/keyrings/*",
    "*/.pki/*",
    "*/.config/gh/hosts.yml",
    "*/.config/hub",
    "*/.config/git/credentials",
    "*/.cargo/credentials",
    "*/.cargo/credentials.toml",
    "*/.gem/credentials",
    "*/.m2/settings.xml",
    "*/.m2/settings-security.xml",
    "*/.gradle/gradle.properties",
    "*/.nuget/nuget/nuget.config",
    "*/.composer/auth.json",
    "*/.config/composer/auth.json",
    "*/.config/pip/pip.conf",
    "*/.pip/pip.conf",
    "*/.config/doctl/*",
    "*/.config/hcloud/*",
    "*/.config/op/*",
    "*/.terraform.d/credentials.tfrc.json",
    "*/.mozilla/*",
    "*/.config/google-chrome/*",
    "*/.config/chromium/*",
    "*/library/keychains/*",
    # the system's secrets, their backups, and views of them
    "/etc/shadow*",
    "/etc/gshadow*",
    "/etc/sudoers",
    "/etc/sudoers.d/*",
    "/etc/master.passwd",
    "/etc/security/opasswd",
    "/etc/ssh/ssh_host_*key",
    "/etc/ssl/private/*",
    "/etc/krb5.keytab",
    "/var/backups/*shadow*",
    "/var/run/secrets/*",
    "/run/secrets/*",
    "/var/run/docker.sock",
    "/run/docker.sock",
    "/proc/*/environ",
    "/proc/*/mem",
    "/proc/*/fd/*",
    "/proc/*/root",
    "/proc/*/root/*",
    "/proc/*/cwd",
    "/proc/*/cwd/*",
    "/proc/kcore",
    "/dev/mem",
    "/dev/kmem",
    "/dev/port",
)


class ApprovalAction(enum.StrEnum):
    """
    What a rule (or the evaluation) says about a call.

    Examples:
        >>> from capscope.policies.approval import ApprovalAction
        >>> ApprovalAction("ask") == "ask", ApprovalAction.DENY.value
        (True, 'deny')
    """

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


class RuleSource(enum.StrEnum):
    """
    Who wrote a rule, which sets its rank: `policy` (authored, the
    default), `user` (an answer a person gave, persisted), `mode` (derived
    from a mode; ranks lowest).

    Examples:
        >>> from capscope.policies.approval import RuleSource
        >>> RuleSource("user") is RuleSource.USER
        True
    """

    POLICY = "policy"
    USER = "user"
    MODE = "mode"


# --- converters (named functions, so mypy's attrs plugin types __init__) ----


def _action(value: object) -> ApprovalAction:
    return enum_value(ApprovalAction, value, "action")


def _source(value: object) -> RuleSource:
    return enum_value(RuleSource, value, "source")


def _opt_glob(value: object, field: str) -> str | None:
    return None if value is None else check_glob(value, field)


def _tool(value: object) -> str | None:
    return _opt_glob(value, "tool")


def _path(value: object) -> str | None:
    return _opt_glob(value, "path")


def _command(value: object) -> str | None:
    return _opt_glob(value, "command")


def _url(value: object) -> str | None:
    return _opt_glob(value, "url")


def _domain(value: object) -> str | None:
    return _opt_glob(value, "domain")


def _mcp_server(value: object) -> str | None:
    return _opt_glob(value, "mcp_server")


def _mcp_tool(value: object) -> str | None:
    return _opt_glob(value, "mcp_tool")


def _agent(value: object) -> str | None:
    return _opt_glob(value, "agent")


def _mode(value: object) -> str | None:
    return _opt_glob(value, "mode")


def _capability(value: object) -> str | None:
    return _opt_glob(value, "capability")


def _side_effect(value: object) -> Level | None:
    return None if value is None else enum_value(Level, value, "side_effect")


def _opt_text(value: object, field: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    msg = f"expected a string or None, got {value!r}"
    raise PolicyConfigError(field, msg)


def _reason(value: object) -> str | None:
    return _opt_text(value, "reason")


def _id(value: object) -> str | None:
    return _opt_text(value, "id")


# --- what a call offers the matchers ----------------------------------------

_URL = re.compile(r"https?://[^\s\"'<>`]+", re.IGNORECASE)
_MCP_PREFIX = "mcp__"


def _walk_strings(value: object) -> Iterator[str]:
    """Every string among *value*'s values, recursively (cycles skipped)."""
    seen: set[int] = set()
    todo = [value]
    while todo:
        item = todo.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, Mapping | list | tuple | set | frozenset):
            if id(item) in seen:
                continue
            seen.add(id(item))
            values = item.values() if isinstance(item, Mapping) else item
            todo.extend(reversed(list(values)))


def _host(url: str) -> str:
    try:
        host = urlsplit(url).hostname
    except ValueError:  # e.g. a malformed IPv6 literal
        return ""
    return (host or "").rstrip(".").lower()


def _mcp_parts(tool: str) -> tuple[str, str] | None:
    if not tool.startswith(_MCP_PREFIX):
        return None
    server, sep, name = tool[len(_MCP_PREFIX) :].partition("__")
    if not sep or not server or not name:
        return None
    return server, name


class _Facts:
    """What the matchers read from one call, each computed at most once."""

    def __init__(self, call: ToolCall) -> None:
        self.call = call

    @functools.cached_property
    def paths(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
        """Each path as given, with its forms (`()` if unusable)."""
        call = self.call
        return tuple(
            (p, path_forms(p, real, call.cwd))
            for p, real in zip(call.paths, call.physical_paths(), strict=True)
        )

    @functools.cached_property
    def urls(self) -> tuple[str, ...]:
        """Every http(s) URL in the arguments and the command."""
        found: dict[str, None] = {}
        sources = [self.call.arguments, self.call.command]
        for text in _walk_strings(sources):
            for match in _URL.finditer(text):
                found[match.group().rstrip(".,;:!?")] = None
        return tuple(found)

    @functools.cached_property
    def hosts(self) -> tuple[str, ...]:
        """The host of each URL, lower case, without port or final dot."""
        return tuple(_host(url) for url in self.urls)

    @functools.cached_property
    def mcp(self) -> tuple[str, str] | None:
        """`(server, tool)` for a tool named `mcp__server__tool`."""
        return _mcp_parts(self.call.tool)


def _opt_match(pattern: str | None, text: str | None) -> bool:
    if pattern is None:
        return True
    return text is not None and glob_match(pattern, text)


@attrs.frozen(repr=False)
class ApprovalRule:
    """
    One approval rule: an *action* for the calls its matchers select.

    Every matcher is optional (`None` = don't care); a call must satisfy
    all that are set, and a rule that sets none matches every call.
    Matchers on a fact the call does not carry (no command, no agent, a
    tool that is not `mcp__server__tool`) never match.

    Paths, URLs and domains can be several per call. A `deny` or `ask`
    rule matches when **any** of them matches; an `allow` rule only when
    **every** one does (so allowing `/ws/src/*` never approves a call that
    also touches `/ws/deploy/prod.yaml`). A path is compared in its
    absolute form and, for symlinks, its resolved form: any form for deny
    and ask, every form for allow.

    Attributes:
        action: `"allow"`, `"ask"` or `"deny"`.
        source: `"policy"` (authored; the default), `"user"` (a persisted
            answer) or `"mode"` (derived from a mode; ranks lowest).
        tool: glob on the tool name.
        path: glob on each of the call's absolute paths (case-sensitive).
        command: glob on the call's command.
        url: glob on each http(s) URL found in the arguments.
        domain: glob on the host of those URLs (case-insensitive).
        mcp_server: glob on `server` of a tool named `mcp__server__tool`.
        mcp_tool: glob on `tool` of a tool named `mcp__server__tool`.
        agent: glob on the call's agent.
        mode: glob on the call's mode.
        capability: glob on the call's capability (`"workspace.write_text"`).
        side_effect: matches calls whose side effect is at least this level.
        reason: why; shown in the evaluation's reason.
        id: a name for the rule, shown in reasons and denials.

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.approval import ApprovalRule
        >>> rule = ApprovalRule("ask", tool="fs.write*", path="/ws/deploy/*")
        >>> rule
        <ApprovalRule ask tool='fs.write*' path='/ws/deploy/*'>
        >>> rule.matches(ToolCall("fs.write_text", paths=("/ws/deploy/prod.yaml",)))
        True
    """

    action: ApprovalAction = attrs.field(converter=_action)
    source: RuleSource = attrs.field(
        default=RuleSource.POLICY, converter=_source
    )
    tool: str | None = attrs.field(default=None, converter=_tool)
    path: str | None = attrs.field(default=None, converter=_path)
    command: str | None = attrs.field(default=None, converter=_command)
    url: str | None = attrs.field(default=None, converter=_url)
    domain: str | None = attrs.field(default=None, converter=_domain)
    mcp_server: str | None = attrs.field(default=None, converter=_mcp_server)
    mcp_tool: str | None = attrs.field(default=None, converter=_mcp_tool)
    agent: str | None = attrs.field(default=None, converter=_agent)
    mode: str | None = attrs.field(default=None, converter=_mode)
    capability: str | None = attrs.field(default=None, converter=_capability)
    side_effect: Level | None = attrs.field(
        default=None, converter=_side_effect
    )
    reason: str | None = attrs.field(default=None, converter=_reason)
    id: str | None = attrs.field(default=None, converter=_id)

    def __repr__(self) -> str:
        head = ["ApprovalRule"]
        if self.id is not None:
            head.append(repr(self.id))
        if self.source is not RuleSource.POLICY:
            head.append(self.source.value)
        head.append(self.action.value)
        for name in _MATCHERS:
            value = getattr(self, name)
            if value is not None:
                head.append(f"{name}={str(value)!r}")
        return f"<{' '.join(head)}>"

    def matches(self, call: ToolCall) -> bool:
        """
        Whether this rule selects *call* (see the class docstring for how
        several paths or URLs are matched).

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.approval import ApprovalRule
            >>> rule = ApprovalRule("deny", domain="*.evil.example")
            >>> rule.matches(ToolCall("web.get", {"url": "https://x.EVIL.example/a"}))
            True
        """
        return self._matches(_Facts(call))

    def _matches(self, facts: _Facts) -> bool:
        return self._matches_single(facts) and self._matches_many(facts)

    def _matches_single(self, facts: _Facts) -> bool:
        """The matchers with one value per call."""
        call = facts.call
        server = name = None
        if self.mcp_server is not None or self.mcp_tool is not None:
            server, name = facts.mcp or (None, None)
        level = None if call.side_effect is None else Level(call.side_effect)
        return (
            _opt_match(self.tool, call.tool)
            and _opt_match(self.mcp_server, server)
            and _opt_match(self.mcp_tool, name)
            and _opt_match(self.command, call.command)
            and _opt_match(self.agent, call.agent)
            and _opt_match(self.mode, call.mode)
            and _opt_match(self.capability, call.capability)
            and (
                self.side_effect is None
                or (level is not None and level >= self.side_effect)
            )
        )

    def _matches_many(self, facts: _Facts) -> bool:
        """
        The matchers with several values per call: a restricting rule
        needs one value to match, a permitting rule every one.
        """
        each = all if self.action is ApprovalAction.ALLOW else any

        def hits(pattern: str, values: Sequence[str]) -> bool:
            return bool(values) and each(
                glob_match(pattern, v) for v in values
            )

        if self.path is not None:
            pattern = self.path
            paths = [forms or (str(p),) for p, forms in facts.paths]
            if not paths or not each(hits(pattern, f) for f in paths):
                return False
        if self.url is not None and not hits(self.url, facts.urls):
            return False
        return self.domain is None or hits(self.domain.lower(), facts.hosts)

    def to_dict(self) -> dict[str, Any]:
        """
        This rule as JSON-able data (fields that differ from the default).

        Examples:
            >>> from capscope.policies.approval import ApprovalRule
            >>> ApprovalRule("deny", tool="shell", reason="no shell").to_dict()
            {'action': 'deny', 'tool': 'shell', 'reason': 'no shell'}
        """
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "rule") -> Self:
        """
        A rule from data; unknown keys and bad values raise
        `PolicyConfigError` naming the key path under *path*.

        Examples:
            >>> from capscope.policies.approval import ApprovalRule
            >>> ApprovalRule.from_dict({"action": "ask", "tool": "fs.*"})
            <ApprovalRule ask tool='fs.*'>
        """
        return from_mapping(cls, data, path)


#: The matcher fields, in declaration order (for the repr).
_MATCHERS = (
    "tool",
    "path",
    "command",
    "url",
    "domain",
    "mcp_server",
    "mcp_tool",
    "agent",
    "mode",
    "capability",
    "side_effect",
)


@attrs.frozen
class ApprovalEvaluation:
    """
    What `ToolApprovalPolicy.evaluate` decided for one call, and why.

    Attributes:
        action: allow, ask or deny.
        gate: `"sensitive_path"`, `"workspace_boundary"` or `"approval"`.
        reason: a sentence naming the rule, path or answer responsible.
        rule: the deciding rule, if a rule decided.
        source: `"default_sensitive_path"`, `"default_external_path"`,
            `"rule"`, `"remembered"`, `"repeat_limit"`, `"implicit"` or
            `"default"`.

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.approval import ToolApprovalPolicy
        >>> e = ToolApprovalPolicy().evaluate(ToolCall("fs.read"))
        >>> e.action, e.gate, e.source
        (<ApprovalAction.ALLOW: 'allow'>, 'approval', 'default')
    """

    action: ApprovalAction
    gate: str
    reason: str
    rule: ApprovalRule | None
    source: str


# --- ToolApprovalPolicy converters ------------------------------------------


def _rules(value: object) -> tuple[ApprovalRule, ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(
        value, Iterable
    ):
        msg = f"expected a list of rules, got {value!r}"
        raise PolicyConfigError("rules", msg)
    out: list[ApprovalRule] = []
    for index, item in enumerate(value):
        where = f"rules[{index}]"
        if isinstance(item, ApprovalRule):
            out.append(item)
        elif isinstance(item, Mapping):
            out.append(ApprovalRule.from_dict(item, path=where))
        else:
            msg = f"expected an ApprovalRule or a table, got {item!r}"
            raise PolicyConfigError(where, msg)
    return tuple(out)


def _outer_rules(value: object) -> tuple[tuple[ApprovalRule, ...], ...]:
    if isinstance(value, str | bytes | Mapping) or not isinstance(
        value, Iterable
    ):
        msg = f"expected a list of lists of rules, got {value!r}"
        raise PolicyConfigError("outer_rules", msg)
    out = []
    for index, frame in enumerate(value):
        try:
            out.append(_rules(frame))
        except PolicyConfigError as exc:
            field = exc.field.replace("rules", f"outer_rules[{index}]", 1)
            raise PolicyConfigError(field, exc.message) from None
    return tuple(out)


def _outer_handlers(value: object) -> tuple[Callable[..., Any], ...]:
    if value is None:  # what a policy that travelled holds: none
        return ()
    items = tuple(value) if isinstance(value, Iterable) else (value,)
    if isinstance(value, str | bytes) or not all(map(callable, items)):
        msg = f"expected a list of callables, got {value!r}"
        raise PolicyConfigError("outer_handlers", msg)
    return items


def _handler(value: object) -> Callable[..., Any] | None:
    check_callable(value, "handler")
    return value  # type: ignore[return-value]  # checked just above


def _timeout(value: object) -> float | None:
    if value is None:
        return None
    msg = f"expected a positive number of seconds or None, got {value!r}"
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PolicyConfigError("timeout", msg)
    try:
        seconds = float(value)
    except OverflowError:
        raise PolicyConfigError("timeout", msg) from None
    if not math.isfinite(seconds) or seconds <= 0:
        raise PolicyConfigError("timeout", msg)
    return seconds


def _sensitive_paths(value: object) -> tuple[str, ...] | None:
    return opt_str_tuple(value, "sensitive_paths", check=check_glob)


def _flag(value: object, field: str) -> bool:
    if isinstance(value, bool):
        return value
    msg = f"expected True or False, got {value!r}"
    raise PolicyConfigError(field, msg)


def _allow_sensitive(value: object) -> bool:
    return _flag(value, "allow_sensitive_paths")


def _allow_external(value: object) -> bool:
    return _flag(value, "allow_external_paths")


def _external_root(value: object, field: str) -> str:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str) or not value or "\0" in value:
        msg = f"expected an absolute path, got {value!r}"
        raise PolicyConfigError(field, msg)
    if not Path(value).is_absolute():
        msg = f"{value!r} is relative; roots must be absolute"
        raise PolicyConfigError(field, msg)
    return value


def _external_roots(value: object) -> tuple[str, ...] | None:
    return opt_str_tuple(value, "external_roots", check=_external_root)


def _repeat_limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"expected a non-negative integer or None, got {value!r}"
        raise PolicyConfigError("repeat_limit", msg)
    return value


# --- evaluation helpers -----------------------------------------------------

_ACTION_RANK = {
    ApprovalAction.ALLOW: 0,
    ApprovalAction.ASK: 1,
    ApprovalAction.DENY: 2,
}


def _source_rank(source: RuleSource, action: ApprovalAction) -> int:
    """
    docs/guide-approvals.md: authored deny 4 > user (remembered) deny 3 > any
    ask 2 > user (remembered) allow 1 > authored allow and mode rules 0.
    """
    if source is RuleSource.MODE:
        return 0
    if action is ApprovalAction.DENY:
        return 4 if source is RuleSource.POLICY else 3
    if action is ApprovalAction.ASK:
        return 2
    return 1 if source is RuleSource.USER else 0


@functools.lru_cache(maxsize=256)
def _resolved_root(root: str) -> str:
    # Roots are configuration: resolved once per process, as a ceiling's
    # are when it is built (a call's own paths, never cached, are
    # resolved on every call).
    return os.path.realpath(lexical_path(root))


_N = TypeVar("_N", int, float)


def _merge(outer: Sequence[Any], inner: Sequence[Any]) -> tuple[Any, ...]:
    """*outer*, then the items of *inner* it does not hold yet."""
    out = list(outer)
    seen = set(out)
    for item in inner:
        if item not in seen:
            seen.add(item)
            out.append(item)
    return tuple(out)


def _common_roots(
    outer: tuple[str, ...] | None, inner: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    """
    The roots both sides allow: an outer root under some inner root, or an
    inner root under some outer root (component-wise, on resolved paths).

    `None` allows no external root at all (like `()`), so it does not pass
    the other side through: that would let a push add roots.
    """
    if outer is None or inner is None:
        return None
    outer_paths = [_resolved_root(r) for r in outer]
    inner_paths = [_resolved_root(r) for r in inner]
    outer_kept = [
        r
        for r, p in zip(outer, outer_paths, strict=True)
        if within_roots(p, inner_paths)
    ]
    inner_kept = [
        r
        for r, p in zip(inner, inner_paths, strict=True)
        if within_roots(p, outer_paths)
    ]
    return _merge(outer_kept, inner_kept)


def _min_opt(a: _N | None, b: _N | None) -> _N | None:
    if a is None or b is None:
        return b if a is None else a
    return min(a, b)


@attrs.frozen
class ToolApprovalPolicy:
    """
    Which tool calls run straight away, need approval or are refused: the
    value of the "approval" stack.

    Attributes:
        rules: `ApprovalRule`s (or their dicts), in order; see
            `evaluate` for how they rank.
        handler: the callable asked when the evaluation says "ask";
            `None` = no one to ask (an ask is then a deny).
        outer_handlers: the handlers of the frames this policy was pushed
            under (`intersect` fills it): an ask is put to every handler
            in force (`handlers`), outermost first, and granted only if
            all grant, so a handler pushed inside cannot answer for the
            one outside.
        timeout: seconds to wait for the handler; `None` = no limit.
        sensitive_paths: path globs always denied; `None` uses
            `DEFAULT_SENSITIVE_PATHS`, a tuple replaces them.
        allow_sensitive_paths: turn the sensitive-path guard off.
        external_roots: absolute roots outside the workspace that calls may
            touch.
        allow_external_paths: turn the workspace-boundary guard off.
        repeat_limit: how many *repeats* of the same call (same tool, same
            arguments, in this approval frame) run before one asks: with
            2, the first call and two repeats run and the third repeat
            asks; `None` = no limit.
        outer_rules: the rules of the frames this policy was pushed under,
            outermost first (`intersect` fills it). Each frame gives its
            own verdict: an allow in `rules` never settles an ask they
            raise, and only the root frame's allow settles the implicit
            ask of a `needs_approval` tool.

    Examples:
        >>> from capscope.policies import ToolCall
        >>> from capscope.policies.approval import ToolApprovalPolicy
        >>> p = ToolApprovalPolicy(rules=[{"action": "ask", "tool": "fs.write*"}])
        >>> p.evaluate(ToolCall("fs.write_text")).action
        <ApprovalAction.ASK: 'ask'>
        >>> p.evaluate(ToolCall("fs.read", paths=("/ws/.env",)), workspace_roots=["/ws"]).gate
        'sensitive_path'
    """

    rules: tuple[ApprovalRule, ...] = attrs.field(default=(), converter=_rules)
    #: Callables that only ask: a worker in another process, without
    #: them, fails closed (capscope.propagation drops them).
    __capscope_droppable__ = ("handler", "outer_handlers")

    handler: Callable[..., Any] | None = attrs.field(
        default=None, converter=_handler
    )
    timeout: float | None = attrs.field(default=60.0, converter=_timeout)
    sensitive_paths: tuple[str, ...] | None = attrs.field(
        default=None, converter=_sensitive_paths
    )
    allow_sensitive_paths: bool = attrs.field(
        default=False, converter=_allow_sensitive
    )
    external_roots: tuple[str, ...] | None = attrs.field(
        default=None, converter=_external_roots
    )
    allow_external_paths: bool = attrs.field(
        default=False, converter=_allow_external
    )
    repeat_limit: int | None = attrs.field(
        default=None, converter=_repeat_limit
    )
    outer_rules: tuple[tuple[ApprovalRule, ...], ...] = attrs.field(
        default=(), converter=_outer_rules
    )
    outer_handlers: tuple[Callable[..., Any], ...] = attrs.field(
        default=(), converter=_outer_handlers
    )

    @property
    def handlers(self) -> tuple[Callable[..., Any], ...]:
        """
        Every handler an ask is put to, outermost first: `outer_handlers`,
        then `handler` if set. All must grant.

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> def org(request): return True
            >>> def mine(request): return True
            >>> both = ToolApprovalPolicy(handler=org).intersect(ToolApprovalPolicy(handler=mine))
            >>> print(*(h.__name__ for h in both.handlers))
            org mine
        """
        if self.handler is None:
            return self.outer_handlers
        return (*self.outer_handlers, self.handler)

    @property
    def rule_frames(self) -> tuple[tuple[ApprovalRule, ...], ...]:
        """
        The rules of every frame in force, outermost (the root) first:
        `(*outer_rules, rules)`.

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> root = ToolApprovalPolicy(rules=[{"action": "ask", "tool": "deploy"}])
            >>> both = root.intersect(ToolApprovalPolicy(rules=[{"action": "allow", "tool": "deploy"}]))
            >>> for frame in both.rule_frames:
            ...     print(*(rule.action.value for rule in frame))
            ask
            allow
        """
        return (*self.outer_rules, self.rules)

    @property
    def effective_sensitive_paths(self) -> tuple[str, ...]:
        """
        The sensitive-path patterns in force: `sensitive_paths`, or the
        defaults while it is unset.

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> ToolApprovalPolicy(sensitive_paths=["*.secret"]).effective_sensitive_paths
            ('*.secret',)
        """
        if self.sensitive_paths is None:
            return DEFAULT_SENSITIVE_PATHS
        return self.sensitive_paths

    def intersect(self, inner: ToolApprovalPolicy) -> ToolApprovalPolicy:
        """
        *inner* pushed under this policy: a policy that keeps every
        constraint of both. Never raises.

        Rules stay in their frames (`rule_frames`: this policy's first,
        then *inner*'s; an empty or repeated frame is dropped, so
        `p.intersect(p) == p`), each giving its own verdict, so an allow
        pushed inside never settles an ask raised outside; sensitive paths
        are united; the `allow_*` switches must both be on; external roots
        are those both sides allow (unset on either side: none);
        `repeat_limit` and `timeout` take the smaller; handlers add up
        (`handlers`: an ask must be granted by every one, so a handler
        pushed inside never answers for one outside).

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> outer = ToolApprovalPolicy(rules=[{"action": "deny", "tool": "shell"}])
            >>> both = outer.intersect(ToolApprovalPolicy(timeout=5, repeat_limit=3))
            >>> len(both.rules), both.timeout, both.repeat_limit
            (1, 5.0, 3)
        """
        if not isinstance(inner, ToolApprovalPolicy):
            msg = f"expected a ToolApprovalPolicy, got {inner!r}"
            raise TypeError(msg)
        if self.sensitive_paths is None and inner.sensitive_paths is None:
            sensitive = None
        else:
            sensitive = _merge(
                self.effective_sensitive_paths,
                inner.effective_sensitive_paths,
            )
        handlers = list(self.handlers)
        handlers += [
            h for h in inner.handlers if all(h is not o for o in handlers)
        ]
        frames = list(self.rule_frames)
        for frame in inner.rule_frames:
            if frame and frame not in frames:
                frames.append(frame)
        return ToolApprovalPolicy(
            rules=frames[-1],
            outer_rules=frames[:-1],
            handler=handlers[-1] if handlers else None,
            outer_handlers=handlers[:-1],
            timeout=_min_opt(self.timeout, inner.timeout),
            sensitive_paths=sensitive,
            allow_sensitive_paths=self.allow_sensitive_paths
            and inner.allow_sensitive_paths,
            external_roots=_common_roots(
                self.external_roots, inner.external_roots
            ),
            allow_external_paths=self.allow_external_paths
            and inner.allow_external_paths,
            repeat_limit=_min_opt(self.repeat_limit, inner.repeat_limit),
        )

    def evaluate(  # noqa: PLR0913
        self,
        call: ToolCall,
        *,
        remembered: Mapping[str, str] | None = None,
        remember_key: str | None = None,
        implicit_ask: bool = False,
        repeat_count: int = 0,
        workspace_roots: Sequence[str] | None = None,
    ) -> ApprovalEvaluation:
        """
        Decide *call*: the default path guards first, then the strongest
        verdict (deny > ask > allow) among the frames' verdicts, a
        repeat-limit breach and the remembered answer.

        Within one frame (`rule_frames`), the strongest matching rule
        decides, by rank (docs/guide-approvals.md; on a full tie the first
        rule wins):

        | rank | rules |
        |---|---|
        | 4 | a `policy`-source deny |
        | 3 | a `user`-source deny |
        | 2 | any ask |
        | 1 | a `user`-source allow |
        | 0 | a `policy`-source allow; `mode` rules of any action (ties broken deny > ask > allow) |

        Across frames the strongest verdict wins: an allow in one frame
        never settles an ask or deny of another. A remembered deny denies,
        a repeat-limit breach asks. The implicit ask (*implicit_ask*, a
        `needs_approval` tool) holds unless the root frame's verdict is
        allow or a human's answer to this call is remembered as allow.
        With no verdict at all the call is allowed by default.

        Args:
            call: the call to decide.
            remembered: the frame's `{remember_key: "allow" | "deny"}`
                answers (`frame_state()[REMEMBERED]`).
            remember_key: this call's key (`remember_key(tool, args)`);
                `None` = its answers are never remembered.
            implicit_ask: the tool needs approval unless something answers
                it (`needs_approval`).
            repeat_count: how many times this tool was called with these
                arguments before (the limit is breached when it exceeds
                `repeat_limit`).
            workspace_roots: the roots calls may touch without being
                external (the execution ceiling's); `None` = the working
                directory (`call.cwd`, else the current one).

        Returns:
            The decision, with the gate, source and a reason.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.approval import ToolApprovalPolicy, remember_key
            >>> call = ToolCall("deploy", {"env": "prod"})
            >>> key = remember_key(call.tool, call.arguments)
            >>> p = ToolApprovalPolicy()
            >>> p.evaluate(call, implicit_ask=True).action
            <ApprovalAction.ASK: 'ask'>
            >>> e = p.evaluate(call, implicit_ask=True, remembered={key: "allow"}, remember_key=key)
            >>> e.action, e.source
            (<ApprovalAction.ALLOW: 'allow'>, 'remembered')
        """
        facts = _Facts(call)
        guard = self._guard(facts, workspace_roots)
        if guard is not None:
            return guard
        tool = call.tool
        verdicts = self._frame_verdicts(facts)
        settled = bool(verdicts) and verdicts[0][0] == 0
        settled = settled and verdicts[0][2].action is ApprovalAction.ALLOW
        answer = _remembered(tool, remembered, remember_key)
        if answer is not None and answer.action is ApprovalAction.ALLOW:
            # A human's answer: it settles the implicit ask and outranks
            # authored allows and mode rules (rank 0), in any frame, never
            # an ask or deny a rule authored.
            verdicts = [v for v in verdicts if v[1] > 0]
            settled = True
        candidates = [evaluation for _, _, evaluation in verdicts]
        if answer is not None and answer.action is ApprovalAction.ALLOW:
            candidates.insert(0, answer)  # the reason an allow gives
        elif answer is not None:
            candidates.append(answer)  # an authored deny's reason first
        limit = self.repeat_limit
        if limit is not None and repeat_count > limit:
            reason = (
                f"tool {tool!r} called {repeat_count} times with these "
                f"arguments, over the repeat limit of {limit}"
            )
            candidates.append(
                _decision(ApprovalAction.ASK, reason, "repeat_limit")
            )
        if implicit_ask and not settled:
            reason = f"tool {tool!r} needs approval and nothing answers it"
            if verdicts:
                reason = (
                    f"tool {tool!r} needs approval, which only a human or "
                    "the root approval frame settles"
                )
            candidates.append(
                _decision(ApprovalAction.ASK, reason, "implicit")
            )
        best = max(
            candidates, key=lambda c: _ACTION_RANK[c.action], default=None
        )  # the strongest; on a tie the first
        if best is None:
            reason = f"tool {tool!r} approved by default"
            return _decision(ApprovalAction.ALLOW, reason, "default")
        return best

    def _frame_verdicts(
        self, facts: _Facts
    ) -> list[tuple[int, int, ApprovalEvaluation]]:
        """`(frame depth, rank, verdict)` per frame with a matching rule."""
        verdicts = []
        for depth, (where, frame) in enumerate(_frames(self)):
            best = -1
            best_key = (-1, -1)
            for index, rule in enumerate(frame):
                if rule._matches(facts):  # noqa: SLF001
                    rank = _source_rank(rule.source, rule.action)
                    key = (rank, _ACTION_RANK[rule.action])
                    if key > best_key:  # strictly: on a tie the first wins
                        best, best_key = index, key
            if best >= 0:
                label = f"{where}[{best}]"
                evaluation = _rule_evaluation(
                    facts.call.tool, label, frame[best]
                )
                verdicts.append((depth, best_key[0], evaluation))
        return verdicts

    def _guard(
        self, facts: _Facts, workspace_roots: Sequence[str] | None
    ) -> ApprovalEvaluation | None:
        """The default path guards: a deny, or `None` to go on."""
        deny = ApprovalAction.DENY
        for given, forms in facts.paths:
            if not forms:
                reason = f"path {given!r} is not a usable path"
                return _decision(
                    deny, reason, "default_external_path", gate=_BOUNDARY
                )
        if facts.paths and not self.allow_sensitive_paths:
            patterns = self.effective_sensitive_paths
            for given, forms in facts.paths:
                hit = _sensitive(forms, patterns)
                if hit is not None:
                    reason = (
                        f"path {given!r} matches the sensitive-path pattern "
                        f"{hit!r} (allow_sensitive_paths is off)"
                    )
                    return _decision(
                        deny, reason, "default_sensitive_path", gate=_SENSITIVE
                    )
        if facts.paths and not self.allow_external_paths:
            roots = _roots(workspace_roots, facts.call.cwd)
            roots += [_resolved_root(r) for r in self.external_roots or ()]
            for given, forms in facts.paths:
                resolved = forms[-1]
                if not within_roots(resolved, roots):
                    reason = (
                        f"path {given!r} (resolved {resolved!r}) is "
                        "outside the workspace and every external root"
                    )
                    return _decision(
                        deny, reason, "default_external_path", gate=_BOUNDARY
                    )
        return None

    def decides_by_name(self, call: ToolCall) -> bool:
        """
        Whether `evaluate` gives *call*'s tool the same verdict whatever
        its arguments (remembered answers aside, which are per arguments):
        no path, no repeat limit, and every rule whose one-valued matchers
        (tool, capability, side effect...) match it reads no argument (no
        `path`, `url` or `domain`). The enforcement engine then decides
        the tool once per frame, not once per call.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.approval import ApprovalRule, ToolApprovalPolicy
            >>> p = ToolApprovalPolicy(rules=[ApprovalRule("ask", tool="fs.write*"), ApprovalRule("deny", tool="net.*", domain="*.evil")])
            >>> p.decides_by_name(ToolCall("fs.write")), p.decides_by_name(ToolCall("net.get"))
            (True, False)
        """
        if call.paths or self.repeat_limit is not None:
            return False
        facts = _Facts(call)
        return all(
            rule.path is None and rule.url is None and rule.domain is None
            for _, frame in _frames(self)
            for rule in frame
            if rule._matches_single(facts)  # noqa: SLF001
        )

    # -- the Policy protocol ----------------------------------------------------

    def narrow(self, inner: ToolApprovalPolicy) -> ToolApprovalPolicy:
        """
        `intersect`, under the `Policy` protocol's name.

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> ToolApprovalPolicy(timeout=9).narrow(ToolApprovalPolicy(timeout=5)).timeout
            5.0
        """
        return self.intersect(inner)

    def verdict(self, call: ToolCall) -> Verdict | None:
        """
        `evaluate(call)` as a verdict; `None` where only the default allows.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> p = ToolApprovalPolicy(rules=[{"action": "ask", "tool": "deploy"}])
            >>> p.verdict(ToolCall("deploy")).action, p.verdict(ToolCall("read"))
            (<ApprovalAction.ASK: 'ask'>, None)
        """
        from .protocol import Verdict

        evaluation = self.evaluate(call)
        if evaluation.source == "default":
            return None
        return Verdict(evaluation.action, evaluation.reason, evaluation.gate)

    def describe(self) -> str:
        """
        The rules, who answers asks and the path guard, in a sentence.

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> ToolApprovalPolicy(rules=[{"action": "ask", "tool": "shell"}]).describe()
            'Approval: ask shell; asks are refused (no handler); sensitive files (keys, .env, credentials) are refused.'
        """
        frames = [
            "; ".join(f"{rule.action.value} {rule.tool or '*'}" for rule in f)
            for f in self.rule_frames
        ]
        if len(frames) > 1:  # each frame decides apart: say which is which
            frames = [
                f"frame {depth} ({text or 'no rules'})"
                for depth, text in enumerate(frames, 1)
            ]
        text = f"Approval: {'; '.join(f for f in frames if f) or 'no rules'}"
        asker = (
            f"{len(self.handlers)} handler(s) answer asks, all must grant"
            if len(self.handlers) > 1
            else "a handler answers asks"
            if self.handlers
            else "asks are refused (no handler)"
        )
        guards = (
            "sensitive files (keys, .env, credentials) are refused"
            if not self.allow_sensitive_paths
            else "sensitive files are not guarded"
        )
        return f"{text}; {asker}; {guards}."

    def to_dict(self) -> dict[str, Any]:
        """
        This policy as JSON-able data (fields that differ from the
        default). A policy holding a `handler` is refused: a callable is
        not data.

        Raises:
            PolicyConfigError: on `handler` when one is set.

        Examples:
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> ToolApprovalPolicy(rules=[{"action": "deny", "tool": "shell"}], timeout=None).to_dict()
            {'rules': [{'action': 'deny', 'tool': 'shell'}], 'timeout': None}
        """
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "approval") -> Self:
        """
        A policy from data; unknown keys and bad values raise
        `PolicyConfigError` naming the key path under *path*.

        Examples:
            >>> from capscope import PolicyConfigError
            >>> from capscope.policies.approval import ToolApprovalPolicy
            >>> try:
            ...     ToolApprovalPolicy.from_dict({"rules": [{"action": "aprove"}]})
            ... except PolicyConfigError as e:
            ...     print(e)
            approval.rules[0].action: 'aprove' is not one of allow, ask, deny
        """
        return from_mapping(cls, data, path)


_SENSITIVE = "sensitive_path"
_BOUNDARY = "workspace_boundary"


def _decision(
    action: ApprovalAction,
    reason: str,
    source: str,
    *,
    gate: str = "approval",
    rule: ApprovalRule | None = None,
) -> ApprovalEvaluation:
    return ApprovalEvaluation(action, gate, reason, rule, source)


def _frames(
    policy: ToolApprovalPolicy,
) -> Iterator[tuple[str, tuple[ApprovalRule, ...]]]:
    """Each frame's rules with their key path, the root first."""
    for depth, frame in enumerate(policy.outer_rules):
        yield f"outer_rules[{depth}]", frame
    yield "rules", policy.rules


def _remembered(
    tool: str, remembered: Mapping[str, str] | None, key: str | None
) -> ApprovalEvaluation | None:
    """The human's remembered answer to this call, if any."""
    answer = None
    if remembered is not None and key is not None:
        answer = remembered.get(key)
    if answer == ApprovalAction.DENY:
        reason = f"tool {tool!r} was denied earlier in this scope"
        return _decision(ApprovalAction.DENY, reason, "remembered")
    if answer == ApprovalAction.ALLOW:
        reason = f"tool {tool!r} was approved earlier in this scope"
        return _decision(ApprovalAction.ALLOW, reason, "remembered")
    return None


def _rule_evaluation(
    tool: str, label: str, rule: ApprovalRule
) -> ApprovalEvaluation:
    if rule.id is not None:
        label = f"rule {rule.id!r} ({label})"
    verb = {
        ApprovalAction.ALLOW: "approved by",
        ApprovalAction.ASK: "needs approval under",
        ApprovalAction.DENY: "denied by",
    }[rule.action]
    reason = f"tool {tool!r} {verb} {label}"
    if rule.source is not RuleSource.POLICY:
        reason += f" ({rule.source.value} rule)"
    if rule.reason:
        reason += f": {rule.reason}"
    return _decision(rule.action, reason, "rule", rule=rule)


@functools.lru_cache(maxsize=64)
def _sensitive_regex(patterns: tuple[str, ...]) -> re.Pattern[str] | None:
    """One regex for all *patterns*, lower-cased (`glob_match` semantics)."""
    if not patterns:
        return None
    return re.compile("|".join(fnmatch.translate(p.lower()) for p in patterns))


def _sensitive(forms: Iterable[str], patterns: tuple[str, ...]) -> str | None:
    """The first pattern a form (or its basename) matches, any case."""
    if not patterns:
        return None
    for form in forms:
        hit = _sensitive_form(form, patterns)
        if hit is not None:
            return hit
    return None


@functools.lru_cache(maxsize=4096)
def _sensitive_form(form: str, patterns: tuple[str, ...]) -> str | None:
    """`_sensitive` of one form: text only, so remembered (bounded)."""
    regex = _sensitive_regex(patterns)
    if regex is None:
        return None
    lowered = form.lower()
    base = os.path.basename(lowered)  # noqa: PTH119 (hot path)
    if regex.match(lowered) or regex.match(base):
        for pattern in patterns:  # which one, for the reason
            low = pattern.lower()
            if glob_match(low, lowered) or glob_match(low, base):
                return pattern
    return None


def _roots(
    workspace_roots: Sequence[str] | None, cwd: str | None = None
) -> list[str]:
    if workspace_roots is None:
        # the call's own reading of the cwd, or now's (physical already);
        # none when it is gone: every path is outside
        if cwd is None:
            try:
                cwd = os.getcwd()  # noqa: PTH109
            except OSError:
                return []
        return [cwd]
    if isinstance(workspace_roots, str | bytes):
        msg = "workspace_roots: expected a sequence of paths, not one string"
        raise TypeError(msg)
    return [_resolved_root(os.fsdecode(root)) for root in workspace_roots]


def _plain(value: object) -> object:
    """*value* with mappings as dicts (string keys only) and lists."""
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                msg = f"non-string key {key!r}"
                raise TypeError(msg)
            out[key] = _plain(item)
        return out
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    return value


def remember_key(tool: str, arguments: Mapping[str, Any]) -> str | None:
    """
    The key a remembered answer for this call is stored under: the tool
    name and a SHA-256 of the canonical JSON of the bound arguments.

    Arguments that are not JSON-able (objects, non-string keys, NaN) give
    `None`: such a call's answer is never remembered, it is asked every
    time.

    Examples:
        >>> from capscope.policies.approval import remember_key
        >>> remember_key("fs.write", {"a": 1, "b": 2}) == remember_key("fs.write", {"b": 2, "a": 1})
        True
        >>> remember_key("fs.write", {"fh": object()}) is None
        True
    """
    try:
        text = json.dumps(
            _plain(arguments),
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=True,
            allow_nan=False,
        )
    except (TypeError, ValueError, RecursionError):
        return None
    digest = hashlib.sha256(text.encode("ascii")).hexdigest()
    return f"{tool}:{digest}"
