"""
What a frame of the "command" stack says about shell commands: allow
patterns, deny patterns, which risk labels deny and which ask, the hooks.

This is the data side only. Turning a command line into simple commands and
risk labels is the command engine's job; it reads these policies. The stack
is COPY and **every frame must allow** a command, so a push only adds
constraints and there is no `intersect`.

Three labels are beyond any policy: `catastrophic` is always denied, and
`execution_semantics_unresolved` (a command whose effect the analysis could
not pin down) and `code_execution` (a command that runs code the line does
not show) are never allowed without asking.
"""

from __future__ import annotations

import enum
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import attrs

from .._exceptions import PolicyConfigError
from ._common import (
    check_callable,
    check_glob,
    enum_value,
    from_mapping,
    str_tuple,
    to_mapping,
)

if TYPE_CHECKING:
    from ._common import ToolCall
    from .protocol import Verdict

__all__ = [
    "ALWAYS_ASK_LABELS",
    "DEFAULT_APPROVAL_LABELS",
    "DEFAULT_DENY_LABELS",
    "CommandDefault",
    "CommandLabel",
    "CommandPolicy",
]


class CommandLabel(enum.StrEnum):
    """
    The risk labels the command analysis puts on a command.

    Examples:
        >>> from capscope.policies.command import CommandLabel
        >>> CommandLabel("sudo") == "sudo", CommandLabel.GIT_FORCE_PUSH.value
        (True, 'git_force_push')
    """

    #: `rm -rf /`, fork bombs, `mkfs`/`dd` onto devices...: always denied
    CATASTROPHIC = "catastrophic"
    DESTRUCTIVE = "destructive"
    WRITE_INTENT = "write_intent"
    CURL_PIPE_SHELL = "curl_pipe_shell"
    CREDENTIAL_FILE_READ = "credential_file_read"
    #: the analysis could not tell what the command runs: never allowed
    #: without asking
    EXECUTION_SEMANTICS_UNRESOLVED = "execution_semantics_unresolved"
    NETWORK_EXFIL = "network_exfil"
    SUDO = "sudo"
    PACKAGE_INSTALL = "package_install"
    GIT_FORCE_PUSH = "git_force_push"
    PROCESS_KILL = "process_kill"
    OUTSIDE_WORKSPACE = "outside_workspace"
    DENY_PATTERN = "deny_pattern"
    #: an option, variable or subcommand makes an allowed program run code
    #: the line does not show (`git -c`, `pytest -p`, `npm --script-shell`):
    #: never allowed without asking
    CODE_EXECUTION = "code_execution"
    #: an option makes a program write a file (`git log --output=`)
    WRITES_PATH = "writes_path"
    #: an option makes a program delete files (`pytest --basetemp=`)
    DELETES_PATH = "deletes_path"
    #: a program reads files outside the workspace (`grep -r /etc`)
    READS_OUTSIDE_WORKSPACE = "reads_outside_workspace"
    #: a program talks to the network (`curl`, `git push`, `</dev/tcp/...`)
    NETWORK = "network"


#: The deny tier when a policy leaves `deny_labels` unset.
DEFAULT_DENY_LABELS: frozenset[CommandLabel] = frozenset(
    {
        CommandLabel.DESTRUCTIVE,
        CommandLabel.CURL_PIPE_SHELL,
        CommandLabel.CREDENTIAL_FILE_READ,
        CommandLabel.NETWORK_EXFIL,
    }
)

#: The approval (ask) tier when a policy leaves `approval_labels` unset.
DEFAULT_APPROVAL_LABELS: frozenset[CommandLabel] = frozenset(
    {
        CommandLabel.SUDO,
        CommandLabel.PACKAGE_INSTALL,
        CommandLabel.GIT_FORCE_PUSH,
        CommandLabel.PROCESS_KILL,
        CommandLabel.OUTSIDE_WORKSPACE,
        CommandLabel.WRITE_INTENT,
        CommandLabel.WRITES_PATH,
        CommandLabel.DELETES_PATH,
        CommandLabel.READS_OUTSIDE_WORKSPACE,
        CommandLabel.NETWORK,
    }
)

#: Labels that at least ask under every policy: what the analysis could not
#: pin down, and code the line does not show. A frame may deny them; no
#: frame can let an allow rule through them.
ALWAYS_ASK_LABELS: frozenset[CommandLabel] = frozenset(
    {
        CommandLabel.EXECUTION_SEMANTICS_UNRESOLVED,
        CommandLabel.CODE_EXECUTION,
    }
)


class CommandDefault(enum.StrEnum):
    """
    What a frame does with a command that no label decides and no allow
    pattern matches; also what `CommandPolicy.label_action` returns.

    Examples:
        >>> from capscope.policies.command import CommandDefault
        >>> CommandDefault("deny") is CommandDefault.DENY
        True
    """

    ALLOW = "allow"
    ASK = "ask"
    DENY = "deny"


# --- validation --------------------------------------------------------

#: Tokens that are only a shell operator. An allow pattern describes one
#: simple command (the engine splits `a | b` into two and checks each), so
#: such a token is a mistake that would silently never match.
_SHELL_OPERATORS = frozenset(
    {
        "|",
        "||",
        "|&",
        "&",
        "&&",
        ";",
        ";;",
        "<",
        "<<",
        ">",
        ">>",
        "&>",
        "2>",
    }
)


def _allow_pattern(value: object, field: str) -> str:
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise PolicyConfigError(field, msg)
    tokens = value.split()
    if not tokens:
        msg = "an empty pattern matches no command"
        raise PolicyConfigError(field, msg)
    for token in tokens:
        if token in _SHELL_OPERATORS:
            msg = (
                f"{value!r}: {token!r} is a shell operator; an allow "
                "pattern matches one simple command, so write one "
                "pattern per command"
            )
            raise PolicyConfigError(field, msg)
        check_glob(token, field)
    return value


def _deny_pattern(value: object, field: str) -> str:
    if not isinstance(value, str):
        msg = f"expected a string, got {value!r}"
        raise PolicyConfigError(field, msg)
    if not value.strip():
        msg = "an empty pattern is not a usable deny pattern"
        raise PolicyConfigError(field, msg)
    if "*" in value:  # a glob; otherwise a substring
        check_glob(value, field)
    return value


def _allow(value: Iterable[str]) -> tuple[str, ...]:
    return str_tuple(value, "allow", check=_allow_pattern)


def _deny_patterns(value: Iterable[str]) -> tuple[str, ...]:
    return str_tuple(value, "deny_patterns", check=_deny_pattern)


def _labels(
    value: Iterable[CommandLabel | str] | None,
    field: str,
) -> frozenset[CommandLabel] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"expected a list of label names, got {value!r}"
        raise PolicyConfigError(field, msg)
    labels = set()
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        label = enum_value(CommandLabel, item, where)
        if label is CommandLabel.CATASTROPHIC and field == "approval_labels":
            msg = (
                "catastrophic is always denied, whatever a policy says; "
                "it cannot be approved"
            )
            raise PolicyConfigError(where, msg)
        labels.add(label)
    return frozenset(labels)


def _deny_labels(
    value: Iterable[CommandLabel | str] | None,
) -> frozenset[CommandLabel] | None:
    return _labels(value, "deny_labels")


def _approval_labels(
    value: Iterable[CommandLabel | str] | None,
) -> frozenset[CommandLabel] | None:
    return _labels(value, "approval_labels")


def _default(value: CommandDefault | str) -> CommandDefault:
    return enum_value(CommandDefault, value, "default")


def _check_hook(
    _: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    check_callable(value, attribute.name)


def _check_bool(
    _: object, attribute: attrs.Attribute[Any], value: Any
) -> None:
    if not isinstance(value, bool):
        msg = f"expected true or false, got {value!r}"
        raise PolicyConfigError(attribute.name, msg)


def _workspace_roots(
    value: Iterable[str | os.PathLike[str]] | None,
) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"expected a list of absolute paths, got {value!r}"
        raise PolicyConfigError("workspace_roots", msg)
    roots = []
    for index, item in enumerate(value):
        where = f"workspace_roots[{index}]"
        path = os.fspath(item) if isinstance(item, os.PathLike) else item
        if not isinstance(path, str):
            msg = f"expected a path string, got {item!r}"
            raise PolicyConfigError(where, msg)
        if not Path(path).is_absolute():
            msg = f"{path!r} is relative; workspace roots must be absolute"
            raise PolicyConfigError(where, msg)
        roots.append(path)
    return tuple(roots)


def _labels_repr(labels: frozenset[CommandLabel] | None) -> str:
    if labels is None:
        return "None"
    return "{" + ", ".join(repr(str(label)) for label in sorted(labels)) + "}"


# --- the policy --------------------------------------------------------


@attrs.frozen
class CommandPolicy:
    """
    One frame of the "command" stack: which shell commands it allows, denies
    or asks about. Every frame on the stack must allow a command.

    Fields:

    - `allow`: patterns of whitespace-separated tokens, each token a glob
      matched against one argument (`"git status *"`, `"pytest *"`); a
      trailing `*` token stands for any further arguments.
    - `deny_patterns`: a pattern holding `*` is a glob, any other is a
      substring; a match denies.
    - `deny_labels` / `approval_labels`: the deny and ask tiers of risk
      labels. `None` means the defaults (`DEFAULT_DENY_LABELS`,
      `DEFAULT_APPROVAL_LABELS`); a label may sit in one tier only.
      `catastrophic` is always denied; `execution_semantics_unresolved`
      and `code_execution` always at least ask (see the `effective_*`
      properties).
    - `default`: what happens to a command nothing else decides
      (`"allow"`, `"ask"` or `"deny"`).
    - `consent`, `pre`, `post`: hooks (callables) for the command engine.
      They are not data, so a policy holding one has no `to_dict()`.
    - `allow_recursive`: whether a hook may itself run commands.
    - `workspace_roots`: absolute paths; `None` means the execution root.

    Examples:
        >>> from capscope.policies.command import CommandPolicy
        >>> p = CommandPolicy(allow=["git status *"], deny_labels=["sudo"])
        >>> p.label_action(["sudo"]), p.label_action(["catastrophic"])
        (<CommandDefault.DENY: 'deny'>, <CommandDefault.DENY: 'deny'>)
        >>> p.label_action(["write_intent"]), p.label_action([])
        (<CommandDefault.ASK: 'ask'>, None)
    """

    allow: tuple[str, ...] = attrs.field(default=(), converter=_allow)
    deny_patterns: tuple[str, ...] = attrs.field(
        default=(), converter=_deny_patterns
    )
    deny_labels: frozenset[CommandLabel] | None = attrs.field(
        default=None, converter=_deny_labels, repr=_labels_repr
    )
    approval_labels: frozenset[CommandLabel] | None = attrs.field(
        default=None, converter=_approval_labels, repr=_labels_repr
    )
    default: CommandDefault = attrs.field(
        default=CommandDefault.ASK, converter=_default
    )
    #: Callables that only ask: a worker in another process, without
    #: them, fails closed (capscope.propagation drops them). `pre` and
    #: `post` narrow, so they travel only by a registered name.
    __capscope_droppable__ = ("consent",)

    consent: Callable[..., Any] | None = attrs.field(
        default=None, validator=_check_hook
    )
    pre: Callable[..., Any] | None = attrs.field(
        default=None, validator=_check_hook
    )
    post: Callable[..., Any] | None = attrs.field(
        default=None, validator=_check_hook
    )
    allow_recursive: bool = attrs.field(default=False, validator=_check_bool)
    workspace_roots: tuple[str, ...] | None = attrs.field(
        default=None, converter=_workspace_roots
    )

    def __attrs_post_init__(self) -> None:
        if self.approval_labels is None:
            return  # the default ask tier yields to whatever denies
        both = self.approval_labels & self._deny_tier
        if both:
            names = ", ".join(sorted(both))
            where = (
                "deny_labels"
                if self.deny_labels is not None
                else "the default deny tier (deny_labels is unset; set it "
                "without them to ask instead)"
            )
            verb = "is" if len(both) == 1 else "are"
            msg = f"a label sits in one tier; {names} {verb} also in {where}"
            raise PolicyConfigError("approval_labels", msg)

    @property
    def _deny_tier(self) -> frozenset[CommandLabel]:
        if self.deny_labels is None:
            return DEFAULT_DENY_LABELS
        return self.deny_labels

    @property
    def effective_deny_labels(self) -> frozenset[CommandLabel]:
        """
        The labels this frame denies: its deny tier plus `catastrophic`.

        Examples:
            >>> from capscope.policies.command import CommandPolicy
            >>> sorted(CommandPolicy(deny_labels=[]).effective_deny_labels)
            [<CommandLabel.CATASTROPHIC: 'catastrophic'>]
        """
        return self._deny_tier | {CommandLabel.CATASTROPHIC}

    @property
    def effective_approval_labels(self) -> frozenset[CommandLabel]:
        """
        The labels this frame asks about: its approval tier plus
        `ALWAYS_ASK_LABELS`, minus whatever it denies.

        Examples:
            >>> from capscope.policies.command import CommandPolicy
            >>> sorted(CommandPolicy(approval_labels=[]).effective_approval_labels)
            [<CommandLabel.CODE_EXECUTION: 'code_execution'>, <CommandLabel.EXECUTION_SEMANTICS_UNRESOLVED: 'execution_semantics_unresolved'>]
        """
        tier = (
            DEFAULT_APPROVAL_LABELS
            if self.approval_labels is None
            else self.approval_labels
        )
        return (tier | ALWAYS_ASK_LABELS) - self.effective_deny_labels

    def label_action(
        self, labels: Iterable[CommandLabel]
    ) -> CommandDefault | None:
        """
        What *labels* decide on their own in this frame.

        Returns:
            `DENY` if any label is in the effective deny tier, else `ASK` if
            any is in the effective approval tier, else `None`: the labels
            decide nothing, and the allow patterns and `default` apply.

        Examples:
            >>> from capscope.policies.command import CommandPolicy
            >>> CommandPolicy().label_action(["sudo", "destructive"])
            <CommandDefault.DENY: 'deny'>
        """
        found = frozenset(labels)
        if found & self.effective_deny_labels:
            return CommandDefault.DENY
        if found & self.effective_approval_labels:
            return CommandDefault.ASK
        return None

    def narrow(self, inner: CommandPolicy) -> CommandPolicy:
        """
        *inner* as it is: the "command" stack keeps every frame
        and each must allow, so the stack's verdict is the strongest over
        its frames and a frame pushed inside only adds one.

        Examples:
            >>> from capscope.policies import CommandPolicy
            >>> CommandPolicy(default="deny").narrow(CommandPolicy()) == CommandPolicy()
            True
        """
        return inner

    def verdict(self, call: ToolCall) -> Verdict | None:
        """
        This frame's verdict on *call*'s command (`call.command`, a shell
        line), the catastrophic floor included; `None` for a call that is
        not a command.

        Examples:
            >>> from capscope.policies import CommandPolicy, ToolCall
            >>> p = CommandPolicy(allow=["ls *"], default="deny")
            >>> p.verdict(ToolCall("shell", command="ls -la")).action.value, p.verdict(ToolCall("shell", command="rm -rf /")).action.value
            ('allow', 'deny')
        """
        from ..commands._engine import frame_verdict

        if call.command is None:
            return None
        return frame_verdict(self, call.command)

    def describe(self) -> str:
        """
        What this frame allows, and what happens to anything else.

        Examples:
            >>> from capscope.policies import CommandPolicy
            >>> CommandPolicy(allow=["git status *"], default="deny").describe()
            'allowed: git status *; anything else refused'
        """
        otherwise = {
            CommandDefault.ALLOW: "allowed",
            CommandDefault.ASK: "needs approval",
            CommandDefault.DENY: "refused",
        }[self.default]
        allowed = (
            f"allowed: {', '.join(self.allow)}"
            if self.allow
            else "no allow rules"
        )
        return f"{allowed}; anything else {otherwise}"

    def to_dict(self) -> dict[str, Any]:
        """
        The fields that differ from their defaults, as JSON-able data (label
        sets as sorted lists).

        Raises:
            PolicyConfigError: the policy holds a hook (`consent`, `pre`,
                `post`), which is not data; the error names the field.

        Examples:
            >>> from capscope.policies.command import CommandPolicy
            >>> CommandPolicy(approval_labels=["sudo", "process_kill"]).to_dict()
            {'approval_labels': ['process_kill', 'sudo']}
        """
        data = to_mapping(self)
        for key in ("deny_labels", "approval_labels"):
            if data.get(key) is not None:
                data[key] = sorted(data[key])
        return data

    @classmethod
    def from_dict(
        cls, data: Mapping[str, Any], *, path: str = "command"
    ) -> Self:
        """
        Build a policy from `to_dict()` data (a policy file's table).

        Raises:
            PolicyConfigError: bad input or an unknown key; the field is the
                key path under *path* (`command.deny_labels[1]`).

        Examples:
            >>> from capscope.policies.command import CommandPolicy
            >>> CommandPolicy.from_dict({"allow": ["pytest *"], "default": "deny"})
            CommandPolicy(allow=('pytest *',), deny_patterns=(), deny_labels=None, approval_labels=None, default=<CommandDefault.DENY: 'deny'>, consent=None, pre=None, post=None, allow_recursive=False, workspace_roots=None)
        """
        return from_mapping(cls, data, path)
