"""
`CapabilityPolicy`: the tool ceiling the "execution" stack holds.

The effective ceiling is the top frame. Every push narrows: the stored value
is `outer.intersect(requested)`, and asking for more than the outer value on
any field raises `CeilingExceeded` naming the field and both values, never
a silent clamp. A worker gets the parent's ceiling as one fresh frame, with
one taken from `recursion_limit` (0 refuses to spawn).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import attrs

from .._exceptions import CeilingExceeded, PolicyConfigError
from ._common import (
    FrozenMap,
    Level,
    ToolCall,
    check_glob,
    enum_value,
    from_mapping,
    glob_match,
    is_glob,
    opt_str_tuple,
    physical_path,
    short_repr,
    str_tuple,
    to_mapping,
    within_roots,
)

if TYPE_CHECKING:
    from .protocol import Verdict

__all__ = ["ArgConstraint", "CapabilityPolicy", "resolve_path"]

#: An op list holding this grants every op of the capability.
ALL_OPS = "*"

# `workspace.exists` is implied by either of these (as in the reference).
_IMPLIES_EXISTS = ("read_text", "list")


def resolve_path(path: str | os.PathLike[str]) -> Path:
    """
    *path* made absolute, with `~` expanded, `..` removed and symlinks
    resolved as far as the path exists: the form every containment check
    compares.

    Examples:
        >>> from capscope.policies import resolve_path
        >>> str(resolve_path("/tmp/../tmp")) == str(resolve_path("/tmp"))
        True
    """
    return Path(os.path.realpath(Path(path).expanduser()))


def _root(value: object, field: str) -> str:
    if not isinstance(value, str | os.PathLike):
        msg = f"expected a path string, got {value!r}"
        raise PolicyConfigError(field, msg)
    if not Path(value).expanduser().is_absolute():
        msg = f"{value!r} is relative; roots must be absolute"
        raise PolicyConfigError(field, msg)
    return str(resolve_path(value))


def _roots(value: object, field: str) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(dict.fromkeys(str_tuple(value, field, check=_root)))


def _workspace_roots(value: object) -> tuple[str, ...] | None:
    return _roots(value, "workspace_roots")


def _read_only_roots(value: object) -> tuple[str, ...] | None:
    return _roots(value, "read_only_roots")


def _tools(value: object) -> tuple[str, ...] | None:
    return opt_str_tuple(value, "tools", check=check_glob)


def _tool_glob(value: object) -> str:
    return check_glob(value, "tool")


def _patterns(value: object) -> tuple[str, ...]:
    return str_tuple(value, "patterns", check=check_glob)


@attrs.frozen
class ArgConstraint:
    """
    An argument constraint: for calls of tools matching *tool*, the argument
    *arg* must be a string matching one of *patterns*.

    Examples:
        >>> from capscope.policies import ArgConstraint
        >>> ArgConstraint("shell", "cmd", ("git *",))
        <ArgConstraint shell(cmd=git *)>
    """

    tool: str = attrs.field(converter=_tool_glob)
    arg: str = attrs.field()
    patterns: tuple[str, ...] = attrs.field(converter=_patterns)

    @arg.validator
    def _check_arg(self, _: object, value: object) -> None:
        if not isinstance(value, str) or not value:
            msg = f"expected an argument name, got {value!r}"
            raise PolicyConfigError("arg", msg)

    def __repr__(self) -> str:
        return f"<ArgConstraint {self.tool}({self.arg}={'|'.join(self.patterns)})>"

    def violated_by(self, tool: str, arguments: Mapping[str, Any]) -> bool:
        """
        Whether a call of *tool* with *arguments* breaks this constraint (an
        argument that is absent is not checked; one that is not a string
        breaks it).
        """
        if not glob_match(self.tool, tool) or self.arg not in arguments:
            return False
        value = arguments[self.arg]
        if isinstance(value, os.PathLike):
            value = os.fspath(value)
        if not isinstance(value, str):
            return True
        return not any(glob_match(p, value) for p in self.patterns)

    def to_dict(self) -> dict[str, Any]:
        """This constraint as data."""
        return {
            "tool": self.tool,
            "arg": self.arg,
            "patterns": list(self.patterns),
        }

    @classmethod
    def from_dict(cls, data: object, *, path: str = "constraint") -> Self:
        """Build a constraint from data; errors name *path*."""
        return from_mapping(cls, data, path)


def _constraints(value: object) -> tuple[ArgConstraint, ...]:
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"expected a list of constraints, got {value!r}"
        raise PolicyConfigError("tool_arg_constraints", msg)
    out: list[ArgConstraint] = []
    for index, item in enumerate(value):
        where = f"tool_arg_constraints[{index}]"
        if isinstance(item, ArgConstraint):
            out.append(item)
        else:
            out.append(ArgConstraint.from_dict(item, path=where))
    return tuple(dict.fromkeys(out))


def _capabilities(value: object) -> FrozenMap[str, tuple[str, ...]] | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        msg = f"expected a mapping of capability to ops, got {value!r}"
        raise PolicyConfigError("capabilities", msg)
    out: dict[str, tuple[str, ...]] = {}
    for cap, ops in value.items():
        if not isinstance(cap, str) or not cap or "." in cap:
            msg = f"expected a capability name without dots, got {cap!r}"
            raise PolicyConfigError("capabilities", msg)
        out[cap] = tuple(dict.fromkeys(str_tuple(ops, f"capabilities.{cap}")))
    return FrozenMap(out)


def _annotations(value: object) -> FrozenMap[str, FrozenMap[str, Any]]:
    if not isinstance(value, Mapping):
        msg = f"expected a mapping of tool to annotation, got {value!r}"
        raise PolicyConfigError("tool_annotations", msg)
    out: dict[str, FrozenMap[str, Any]] = {}
    for tool, note in value.items():
        if not isinstance(tool, str) or not isinstance(note, Mapping):
            msg = f"expected tool name -> mapping, got {tool!r}: {note!r}"
            raise PolicyConfigError("tool_annotations", msg)
        out[tool] = FrozenMap(note)
    return FrozenMap(out)


def _limit(value: object) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        msg = f"expected a non-negative integer or None, got {value!r}"
        raise PolicyConfigError("recursion_limit", msg)
    return value


def _level(value: object) -> Level | None:
    return (
        None
        if value is None
        else enum_value(Level, value, "side_effect_level")
    )


@attrs.frozen
class CapabilityPolicy:
    """
    A tool ceiling: which tools, capabilities, paths, side effects and
    argument values calls may use.

    A field that is `None` is **unset**: no limit at the root, and the outer
    value when narrowing. An empty tuple means **nothing**. Paths are
    unrestricted only while both root fields are unset; otherwise reads must
    fall under a workspace or read-only root and writes under a workspace
    root, compared component-wise on resolved real paths.

    Attributes:
        tools: tool-name globs (`"fs.*"`).
        capabilities: `{capability: ops}`; `"*"` in the ops grants every op.
        workspace_roots: absolute roots that may be read and written.
        read_only_roots: absolute roots that may only be read.
        side_effect_level: the highest level allowed (`none < read_only <
            workspace_write < process_exec < network`).
        recursion_limit: how many more worker hops are allowed.
        tool_arg_constraints: `ArgConstraint`s (or their dicts).
        tool_annotations: `{tool: {...}}` metadata, kept for granted tools.

    Examples:
        >>> from capscope.policies import CapabilityPolicy
        >>> outer = CapabilityPolicy(tools=("fs.*",), side_effect_level="workspace_write")
        >>> inner = outer.intersect(CapabilityPolicy(tools=("fs.read",)))
        >>> inner.allows_tool("fs.read"), inner.allows_tool("fs.write")
        (True, False)
        >>> inner.side_effect_level
        <Level.WORKSPACE_WRITE: 'workspace_write'>
    """

    tools: tuple[str, ...] | None = attrs.field(default=None, converter=_tools)
    capabilities: FrozenMap[str, tuple[str, ...]] | None = attrs.field(
        default=None, converter=_capabilities
    )
    workspace_roots: tuple[str, ...] | None = attrs.field(
        default=None, converter=_workspace_roots
    )
    read_only_roots: tuple[str, ...] | None = attrs.field(
        default=None, converter=_read_only_roots
    )
    side_effect_level: Level | None = attrs.field(
        default=None, converter=_level
    )
    recursion_limit: int | None = attrs.field(default=None, converter=_limit)
    tool_arg_constraints: tuple[ArgConstraint, ...] = attrs.field(
        default=(), converter=_constraints
    )
    tool_annotations: FrozenMap[str, FrozenMap[str, Any]] = attrs.field(
        factory=FrozenMap, converter=_annotations
    )
    # to_worker() runs at every spawn; the policy is immutable, so its
    # worker form is computed once (not data: no init, eq, repr or codec).
    _worker: CapabilityPolicy | None = attrs.field(
        default=None, init=False, eq=False, repr=False
    )

    def __repr__(self) -> str:
        return short_repr(self)

    @classmethod
    def unrestricted(cls) -> Self:
        """
        Every field unset: the readable way to say "no ceiling" at an
        application's root (docs/design.md, "Fail closed": tool checks fail closed
        without any execution policy).

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy.unrestricted().allows_tool("anything")
            True
        """
        return cls()

    # -- narrowing ----------------------------------------------------------

    def intersect(self, requested: CapabilityPolicy) -> CapabilityPolicy:
        """
        *requested* narrowed under this ceiling: unset fields inherit this
        policy's values, and asking for more on any field raises.

        Raises:
            CeilingExceeded: naming the field, this policy's value and the
                requested one.

        Examples:
            >>> from capscope import CeilingExceeded
            >>> from capscope.policies import CapabilityPolicy
            >>> try:
            ...     CapabilityPolicy(tools=("fs.read",)).intersect(CapabilityPolicy(tools=("fs.*",)))
            ... except CeilingExceeded as e:
            ...     print(e.field)
            tools
        """
        if not isinstance(requested, CapabilityPolicy):
            msg = f"expected a CapabilityPolicy, got {requested!r}"
            raise TypeError(msg)
        tools = self._narrow_tools(requested.tools)
        workspace = _pick(self.workspace_roots, requested.workspace_roots)
        read_only = _pick(self.read_only_roots, requested.read_only_roots)
        if self.restricts_paths:
            self._check_roots(
                "workspace_roots", workspace, self._roots(write=True)
            )
            self._check_roots(
                "read_only_roots", read_only, self._roots(write=False)
            )
        result = CapabilityPolicy(
            tools=tools,
            capabilities=self._narrow_capabilities(requested.capabilities),
            workspace_roots=workspace,
            read_only_roots=read_only,
            side_effect_level=self._narrow_level(requested.side_effect_level),
            recursion_limit=self._narrow_limit(requested.recursion_limit),
            tool_arg_constraints=self.tool_arg_constraints
            + requested.tool_arg_constraints,
            tool_annotations={},
        )
        annotations = {**self.tool_annotations, **requested.tool_annotations}
        granted = {
            t: a for t, a in annotations.items() if result.allows_tool(t)
        }
        return attrs.evolve(result, tool_annotations=granted)

    def _narrow_tools(
        self, requested: tuple[str, ...] | None
    ) -> tuple[str, ...] | None:
        if requested is None or self.tools is None:
            return self.tools if requested is None else requested
        for entry in requested:
            if not any(_glob_within(entry, ceiling) for ceiling in self.tools):
                raise CeilingExceeded(
                    "tools",
                    self.tools,
                    requested,
                    f"{entry!r} is not within the ceiling",
                )
        return requested

    def _narrow_capabilities(
        self, requested: Mapping[str, tuple[str, ...]] | None
    ) -> Mapping[str, tuple[str, ...]] | None:
        if requested is None or self.capabilities is None:
            return self.capabilities if requested is None else requested
        for cap, ops in requested.items():
            outer_ops = self.capabilities.get(cap)
            if outer_ops is None:
                raise CeilingExceeded(
                    "capabilities",
                    dict(self.capabilities),
                    dict(requested),
                    f"capability {cap!r} is not in the ceiling",
                )
            if ALL_OPS in outer_ops:
                continue
            for op in ops:
                if op not in outer_ops:
                    raise CeilingExceeded(
                        f"capabilities.{cap}",
                        outer_ops,
                        ops,
                        f"{cap}.{op} is not in the ceiling",
                    )
        return requested

    def _narrow_level(self, requested: Level | None) -> Level | None:
        if requested is None or self.side_effect_level is None:
            return self.side_effect_level if requested is None else requested
        if requested > self.side_effect_level:
            raise CeilingExceeded(
                "side_effect_level",
                self.side_effect_level.value,
                requested.value,
            )
        return requested

    def _narrow_limit(self, requested: int | None) -> int | None:
        if requested is None or self.recursion_limit is None:
            return self.recursion_limit if requested is None else requested
        if requested > self.recursion_limit:
            raise CeilingExceeded(
                "recursion_limit", self.recursion_limit, requested
            )
        return requested

    def _check_roots(
        self,
        field: str,
        requested: tuple[str, ...] | None,
        allowed: tuple[str, ...],
    ) -> None:
        for root in requested or ():
            if not within_roots(root, allowed):
                raise CeilingExceeded(
                    field,
                    allowed,
                    requested,
                    f"{root!r} is not under an outer root",
                )

    def to_worker(self) -> CapabilityPolicy:
        """
        The ceiling a worker starts from: this one, with one worker hop
        taken from `recursion_limit`.

        Raises:
            CeilingExceeded: `recursion_limit` is 0, no worker depth left.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy(recursion_limit=2).to_worker().recursion_limit
            1
        """
        if self.recursion_limit is None:
            return self
        if self.recursion_limit == 0:
            raise CeilingExceeded(
                "recursion_limit", 0, 1, "no worker depth left: cannot spawn"
            )
        worker = self._worker
        if worker is None:
            worker = attrs.evolve(
                self, recursion_limit=self.recursion_limit - 1
            )
            object.__setattr__(self, "_worker", worker)
        return worker

    # -- checks -------------------------------------------------------------

    @property
    def restricts_paths(self) -> bool:
        """Whether any root field is set (then paths must fall under roots)."""
        return (
            self.workspace_roots is not None
            or self.read_only_roots is not None
        )

    def _roots(self, *, write: bool) -> tuple[str, ...]:
        writable = self.workspace_roots or ()
        return writable if write else writable + (self.read_only_roots or ())

    def allows_tool(self, tool: str) -> bool:
        """
        Whether *tool* is within the tool ceiling.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy(tools=()).allows_tool("fs.read")
            False
        """
        return self.tools is None or any(
            glob_match(p, tool) for p in self.tools
        )

    def allows_capability(self, capability: str) -> bool:
        """
        Whether `"cap.op"` is within the capability ceiling
        (`workspace.exists` is implied by `read_text` or `list`).

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> p = CapabilityPolicy(capabilities={"workspace": ("read_text",)})
            >>> p.allows_capability("workspace.exists"), p.allows_capability("workspace.delete")
            (True, False)
        """
        if self.capabilities is None:
            return True
        cap, _, op = capability.partition(".")
        ops = self.capabilities.get(cap)
        if ops is None:
            return False
        if ALL_OPS in ops or op in ops:
            return True
        return op == "exists" and any(o in ops for o in _IMPLIES_EXISTS)

    def allows_level(self, level: Level | str) -> bool:
        """
        Whether a side effect of *level* is within the ceiling.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy(side_effect_level="read_only").allows_level("network")
            False
        """
        if self.side_effect_level is None:
            return True
        return (
            enum_value(Level, level, "side_effect") <= self.side_effect_level
        )

    def allows_path(
        self, path: str | os.PathLike[str], *, write: bool
    ) -> bool:
        """
        Whether *path* may be read (or written, with *write*): always while
        no root is set; otherwise it must resolve under a root.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> p = CapabilityPolicy(workspace_roots=("/srv/ws",), read_only_roots=("/srv/data",))
            >>> p.allows_path("/srv/data/x", write=False), p.allows_path("/srv/data/x", write=True)
            (True, False)
            >>> p.allows_path("/srv/ws2/x", write=False)
            False
        """
        if not self.restricts_paths:
            return True
        real = physical_path(path)
        return real is not None and within_roots(
            real, self._roots(write=write)
        )

    def violated_constraint(
        self, tool: str, arguments: Mapping[str, Any]
    ) -> ArgConstraint | None:
        """
        The first argument constraint a call breaks, or `None`.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> p = CapabilityPolicy(tool_arg_constraints=[{"tool": "shell", "arg": "cmd", "patterns": ["git *"]}])
            >>> p.violated_constraint("shell", {"cmd": "rm -rf /"})
            <ArgConstraint shell(cmd=git *)>
        """
        for constraint in self.tool_arg_constraints:
            if constraint.violated_by(tool, arguments):
                return constraint
        return None

    def check(self, call: ToolCall) -> tuple[str, str] | None:
        """
        Run the ceiling's gates on *call*, in order (tool, capability, side
        effect, paths, argument constraints); the first refusal as
        `(gate, reason)`, or `None` when every gate passes.

        Examples:
            >>> from capscope.policies import CapabilityPolicy, ToolCall
            >>> CapabilityPolicy(tools=("fs.*",)).check(ToolCall("shell"))
            ('tool_ceiling', "tool 'shell' exceeds the tool ceiling ('fs.*',)")
        """
        tool = call.tool
        if not self.allows_tool(tool):
            return "tool_ceiling", (
                f"tool {tool!r} exceeds the tool ceiling {self.tools!r}"
            )
        if call.capability is not None and not self.allows_capability(
            call.capability
        ):
            return "capability_ceiling", (
                f"tool {tool!r} needs {call.capability}, which exceeds the "
                "capability ceiling"
            )
        if call.side_effect is not None and not self.allows_level(
            call.side_effect
        ):
            assert self.side_effect_level is not None  # noqa: S101 - allows_level
            return "side_effect_ceiling", (
                f"tool {tool!r} has side effect {call.side_effect.value}, above "
                f"the ceiling {self.side_effect_level.value}"
            )
        return self.check_arguments(call)

    def check_arguments(self, call: ToolCall) -> tuple[str, str] | None:
        """
        The gates of `check` that read the call's arguments (paths, then
        argument constraints), for an engine that decided the tool, its
        capability and its side effect already.

        Examples:
            >>> from capscope.policies import CapabilityPolicy, ToolCall
            >>> p = CapabilityPolicy(tools=("fs.*",), workspace_roots=("/srv/ws",))
            >>> p.check_arguments(ToolCall("fs.read", {"path": "/etc/x"}, paths=("/etc/x",)))[0]
            'workspace_boundary'
        """
        tool = call.tool
        if call.paths and self.restricts_paths:
            roots = self._roots(write=call.write)
            verb = "write" if call.write else "read"
            for path, real in zip(
                call.paths, call.physical_paths(), strict=True
            ):
                if real is None:
                    return "workspace_boundary", (
                        f"tool {tool!r} may not {verb} {path!r}: not a "
                        "usable path"
                    )
                if not within_roots(real, roots):
                    return "workspace_boundary", (
                        f"tool {tool!r} may not {verb} {path!r}: it resolves "
                        f"to {real!r}, outside the roots {roots!r}"
                    )
        constraint = self.violated_constraint(tool, call.arguments)
        if constraint is not None:
            return "arg_constraint", (
                f"tool {tool!r}: argument {constraint.arg!r} does not match "
                f"{constraint!r}"
            )
        return None

    # -- codec --------------------------------------------------------------

    # -- the Policy protocol ----------------------------------------------------

    def narrow(self, inner: CapabilityPolicy) -> CapabilityPolicy:
        """
        `intersect`, under the `Policy` protocol's name.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy(tools=("fs.*",)).narrow(CapabilityPolicy(tools=("fs.read",))).tools
            ('fs.read',)
        """
        return self.intersect(inner)

    def verdict(self, call: ToolCall) -> Verdict | None:
        """
        The ceiling's refusal of *call* (`check`) as a deny, else `None`.

        Examples:
            >>> from capscope.policies import CapabilityPolicy, ToolCall
            >>> CapabilityPolicy(tools=("fs.*",)).verdict(ToolCall("shell")).gate
            'tool_ceiling'
        """
        from .protocol import Verdict

        refusal = self.check(call)
        if refusal is None:
            return None
        return Verdict.deny(refusal[1], gate=refusal[0])

    def describe(self) -> str:
        """
        The ceiling in a sentence, for a log or a model's prompt.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy(tools=("fs.read",), side_effect_level="read_only").describe()
            'Tools: only fs.read; side effects up to read_only.'
        """
        parts = []
        if self.tools is None:
            parts.append("Tools: any")
        elif not self.tools:
            parts.append("Tools: none")
        else:
            parts.append(f"Tools: only {', '.join(self.tools)}")
        if self.capabilities is not None:
            caps = [
                f"{cap}({', '.join(ops)})"
                for cap, ops in self.capabilities.items()
            ]
            parts.append(f"capabilities {', '.join(caps) or 'none'}")
        if self.side_effect_level is not None:
            parts.append(f"side effects up to {self.side_effect_level.value}")
        if self.restricts_paths:
            parts.append(
                "files: read and write under "
                f"{', '.join(self.workspace_roots or ()) or 'nothing'}"
            )
            if self.read_only_roots:
                parts.append(
                    f"read only under {', '.join(self.read_only_roots)}"
                )
        if self.recursion_limit is not None:
            parts.append(f"{self.recursion_limit} more worker level(s)")
        if self.tool_arg_constraints:
            rules = ", ".join(repr(c) for c in self.tool_arg_constraints)
            parts.append(f"argument rules {rules}")
        return "; ".join(parts) + "."

    def to_dict(self) -> dict[str, Any]:
        """
        This policy as JSON-able data (fields at their default are left out).

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> CapabilityPolicy(tools=("fs.*",), recursion_limit=2).to_dict()
            {'tools': ['fs.*'], 'recursion_limit': 2}
        """
        return to_mapping(self)

    @classmethod
    def from_dict(cls, data: object, *, path: str = "execution") -> Self:
        """
        Build a policy from data; errors name the key path under *path*.

        Examples:
            >>> from capscope.policies import CapabilityPolicy
            >>> try:
            ...     CapabilityPolicy.from_dict({"side_effect_level": "everything"})
            ... except ValueError as e:
            ...     print(e)
            execution.side_effect_level: 'everything' is not one of none, read_only, workspace_write, process_exec, network
        """
        return from_mapping(cls, data, path)


def _pick(
    outer: tuple[str, ...] | None, requested: tuple[str, ...] | None
) -> tuple[str, ...] | None:
    return outer if requested is None else requested


def _glob_within(requested: str, ceiling: str) -> bool:
    """
    Whether everything the glob *requested* matches is matched by the glob
    *ceiling* (conservatively: False when unsure).
    """
    if ceiling in ("*", requested):
        return True
    if not is_glob(requested):
        return glob_match(ceiling, requested)
    prefix = ceiling[:-1]
    # "fs.*" contains any glob that starts with the literal "fs.".
    return (
        ceiling.endswith("*")
        and not is_glob(prefix)
        and requested.startswith(prefix)
    )
