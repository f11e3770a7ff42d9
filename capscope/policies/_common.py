"""
What every policy kind shares: validation that names the field, globs,
side-effect levels, the call description evaluations read, and the codec
helpers.

Conventions every policy module follows:

- Policies are `attrs.frozen` classes. Every field is checked when the
  policy is built; bad input raises `PolicyConfigError` whose `field` names
  the field (`"tools[2]"`, `"rules[0].action"`).
- In a policy, `None` means **unset** (no limit at the root; inherits the
  outer value when narrowing) and an empty tuple means **nothing**.
- Sequence fields accept any iterable of `str` (a bare `str` is an error)
  and store tuples; levels, tiers and actions are `StrEnum`s.
- `to_dict()` gives JSON-able data holding only fields that differ from
  their default; `from_dict(data, path=...)` rebuilds the policy and
  prefixes every error's field with *path*. A callable (handler, hook,
  predicate) is not data: `to_dict()` refuses a policy holding one, naming
  the field.
"""

from __future__ import annotations

import enum
import fnmatch
import os
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar

import attrs

from .._exceptions import PolicyConfigError

__all__ = [
    "FrozenMap",
    "Level",
    "ToolCall",
    "check_glob",
    "enum_value",
    "from_mapping",
    "glob_match",
    "level_rank",
    "opt_str_tuple",
    "physical_path",
    "short_repr",
    "str_tuple",
    "to_mapping",
    "within_roots",
]

E = TypeVar("E", bound=enum.Enum)
P = TypeVar("P")


class Level(enum.StrEnum):
    """
    Side-effect levels, ranked: `none < read_only < workspace_write <
    process_exec < network`.

    Examples:
        >>> from capscope.policies import Level
        >>> Level("network") > Level.READ_ONLY
        True
    """

    NONE = "none"
    READ_ONLY = "read_only"
    WORKSPACE_WRITE = "workspace_write"
    PROCESS_EXEC = "process_exec"
    NETWORK = "network"

    @property
    def rank(self) -> int:
        """0 for `none` up to 4 for `network`."""
        return _LEVEL_RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank >= other.rank


_LEVEL_RANK = {level: rank for rank, level in enumerate(Level)}


def level_rank(level: Level) -> int:
    """The rank of *level* (0 for `none`)."""
    return _LEVEL_RANK[level]


def enum_value(enum_type: type[E], value: object, field: str) -> E:
    """*value* as a member of *enum_type*, or PolicyConfigError naming *field*."""
    try:
        return enum_type(value)
    except ValueError:
        choices = ", ".join(str(m.value) for m in enum_type)
        msg = f"{value!r} is not one of {choices}"
        raise PolicyConfigError(field, msg) from None


_GLOB_META = re.compile(r"[*?\[]")


def check_callable(value: object, field: str) -> None:
    """
    *value* is a callable or None (a handler or hook): else a
    `PolicyConfigError` naming *field*. A string (`"mymod:approve"` in a
    policy file) is told that handlers are set in code.

    Examples:
        >>> from capscope.policies._common import check_callable
        >>> check_callable("mymod:approve", "handler")
        Traceback (most recent call last):
        capscope.PolicyConfigError: handler: 'mymod:approve' is text: handlers and hooks are set in code (a callable passed to the policy), never named in a policy file
    """
    if value is None or callable(value):
        return
    if isinstance(value, str):
        msg = (
            f"{value!r} is text: handlers and hooks are set in code (a "
            "callable passed to the policy), never named in a policy file"
        )
    else:
        msg = f"expected a callable or None, got {value!r}"
    raise PolicyConfigError(field, msg)


def check_glob(pattern: object, field: str) -> str:
    """
    Check that *pattern* is a usable glob: a non-empty string with balanced
    brackets. Returns it.
    """
    if not isinstance(pattern, str):
        msg = f"expected a string, got {pattern!r}"
        raise PolicyConfigError(field, msg)
    if not pattern:
        raise PolicyConfigError(field, "an empty pattern matches nothing")
    depth = 0
    for char in pattern:
        if char == "[":
            depth += 1
        elif char == "]" and depth:
            depth -= 1
    if depth:
        msg = f"{pattern!r} is a malformed glob (unbalanced '[')"
        raise PolicyConfigError(field, msg)
    return pattern


def glob_match(pattern: str, text: str) -> bool:
    """
    Whether *text* matches the glob *pattern* (case-sensitive; `*` also
    crosses `/`; a pattern without metacharacters must match exactly).

    Examples:
        >>> from capscope.policies._common import glob_match
        >>> glob_match("fs.*", "fs.write"), glob_match("fs.read", "fs.reader")
        (True, False)
    """
    if _GLOB_META.search(pattern) is None:
        return pattern == text
    return fnmatch.fnmatchcase(text, pattern)


def is_glob(pattern: str) -> bool:
    """Whether *pattern* holds a glob metacharacter."""
    return _GLOB_META.search(pattern) is not None


def str_tuple(
    value: object,
    field: str,
    *,
    check: Callable[[Any, str], str] | None = None,
) -> tuple[str, ...]:
    """
    Any iterable of strings as a tuple; a bare string or a non-string item
    is a PolicyConfigError naming the field (and the item's index).
    """
    if isinstance(value, str | bytes) or not isinstance(value, Iterable):
        msg = f"expected a list of strings, got {value!r}"
        raise PolicyConfigError(field, msg)
    items = []
    for index, item in enumerate(value):
        where = f"{field}[{index}]"
        if check is not None:
            items.append(check(item, where))
        elif isinstance(item, str):
            items.append(item)
        else:
            msg = f"expected a string, got {item!r}"
            raise PolicyConfigError(where, msg)
    return tuple(items)


def opt_str_tuple(
    value: object,
    field: str,
    *,
    check: Callable[[Any, str], str] | None = None,
) -> tuple[str, ...] | None:
    """`str_tuple`, with `None` (unset) kept as `None`."""
    return None if value is None else str_tuple(value, field, check=check)


K = TypeVar("K")
V = TypeVar("V")


class FrozenMap(Mapping[K, V]):
    """
    An immutable, hashable mapping, for the mapping fields of frozen
    policies (so policies compare, hash and dedupe like values).

    Examples:
        >>> from capscope.policies import FrozenMap
        >>> m = FrozenMap({"b": 1, "a": 2})
        >>> m == {"a": 2, "b": 1}, hash(m) == hash(FrozenMap(a=2, b=1))
        (True, True)
    """

    __slots__ = ("_data", "_hash")

    def __init__(self, *args: Any, **kwargs: V) -> None:
        self._data: dict[K, V] = dict(*args, **kwargs)
        self._hash: int | None = None

    def __getitem__(self, key: K) -> V:
        return self._data[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __hash__(self) -> int:
        if self._hash is None:
            self._hash = hash(frozenset(self._data.items()))
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Mapping):
            return self._data == dict(other.items())
        return NotImplemented

    def __repr__(self) -> str:
        return repr(self._data)

    def __reduce__(self) -> tuple[type[FrozenMap[K, V]], tuple[dict[K, V]]]:
        # Never pickle the cached hash: str hashes differ between processes.
        return (FrozenMap, (self._data,))


@attrs.frozen
class ToolCall:
    """
    One call, as the policies see it: what the decorators gather and the
    evaluation functions read. Fields that a decorator does not know are
    `None` or empty.

    Examples:
        >>> from capscope.policies import ToolCall
        >>> ToolCall("fs.write", {"path": "/ws/a"}, paths=("/ws/a",), write=True).tool
        'fs.write'
    """

    tool: str
    arguments: Mapping[str, Any] = attrs.field(factory=dict)
    #: path arguments, as given (absolute, or relative to the process cwd)
    paths: tuple[str, ...] = ()
    #: whether the paths are written (else only read)
    write: bool = False
    #: `"capability.op"`, e.g. `"workspace.write_text"`
    capability: str | None = None
    side_effect: Level | None = None
    command: str | None = None
    agent: str | None = None
    mode: str | None = None
    #: `physical_path` of each of *paths*, when whoever built the call
    #: resolved them already: every gate then reads one resolution per call
    #: (`physical_paths()` resolves them otherwise).
    resolved: tuple[str | None, ...] | None = attrs.field(
        default=None, eq=False, repr=False
    )
    #: The working directory the call was made in, as whoever built the
    #: call read it once: relative paths are resolved and spelled against
    #: it, and a guard that measures paths against the cwd (no roots)
    #: reads it, so every gate sees one cwd (`None`: the process's, now).
    cwd: str | None = attrs.field(default=None, eq=False, repr=False)

    def physical_paths(self) -> tuple[str | None, ...]:
        """
        `physical_path` of each path: *resolved* when given, else now.

        Examples:
            >>> from capscope.policies import ToolCall
            >>> ToolCall("fs.read", paths=("/tmp/../tmp", "")).physical_paths()[1] is None
            True
        """
        if self.resolved is not None:
            return self.resolved
        return tuple(physical_path(p, self.cwd) for p in self.paths)


def physical_path(path: object, cwd: str | None = None) -> str | None:
    r"""
    The file the operating system would open for *path*: `~` expanded,
    made absolute, every symlink and `..` followed in order, as the kernel
    does (so `link/../x` is the parent of the link's *target*, not the
    directory holding the link); `None` for what is not a usable path
    (not a path, empty, holding NUL, relative to a working directory
    that is gone). A relative path is read against *cwd* when given. An
    existing file is named by the kernel (`_kernel_path`: three system
    calls); else one `realpath`, one `lstat` per component of the path,
    no more.

    Examples:
        >>> from capscope.policies._common import physical_path
        >>> physical_path("/tmp/../tmp") == physical_path("/tmp"), physical_path("a\0b")
        (True, None)
    """
    try:
        text = os.fsdecode(os.fspath(path))  # type: ignore[call-overload]
    except TypeError:
        return None
    if not text or "\0" in text:
        return None
    return physical_text(_absolute(os.path.expanduser(text), cwd))  # noqa: PTH111


def _absolute(text: str, cwd: str | None) -> str:
    """*text* joined to *cwd* when it is relative and *cwd* is given."""
    if cwd is None or text.startswith("/"):
        return text
    return os.path.join(cwd, text)  # noqa: PTH118


def physical_text(text: str) -> str | None:
    """
    `physical_path` of *text*, a usable path (not empty, no NUL) with `~`
    expanded already; `None` when it is relative to a working directory
    that is gone.

    Examples:
        >>> from capscope.policies._common import physical_text
        >>> physical_text("/tmp/../tmp") == physical_text("/tmp")
        True
    """
    try:
        return _kernel_path(text) or os.path.realpath(text)
    except OSError:  # a relative path, and no working directory
        return None


_O_PATH = getattr(os, "O_PATH", None)
_FD_LINKS = "/proc/self/fd/"
_DELETED = " (deleted)"


def _kernel_path(text: str) -> str | None:
    """
    Where the kernel itself lands for *text*, an existing file: opened
    with `O_PATH` (the file is not opened for reading, a FIFO does not
    block, a device is not touched) and named back by `/proc/self/fd`,
    three system calls whatever the depth. `None` when that cannot tell
    (no `O_PATH` or `/proc`, the path does not exist, a permission, a
    race with an unlink): the caller then resolves with `realpath`.
    """
    if _O_PATH is None:
        return None
    try:
        fd = os.open(text, _O_PATH | os.O_CLOEXEC)
    except (OSError, ValueError):
        return None
    try:
        named = os.readlink(f"{_FD_LINKS}{fd}")  # noqa: PTH115 - hot path
    except OSError:
        return None
    finally:
        os.close(fd)
    if not named.startswith("/") or named.endswith(_DELETED):
        return None
    return named


def lexical_path(path: str, cwd: str | None = None) -> str:
    """
    *path* made absolute (against *cwd* when given) with `~` expanded and
    `..` removed as text, without following symlinks (the spelling, where
    `physical_path` is the file).

    Examples:
        >>> from capscope.policies._common import lexical_path
        >>> lexical_path("/srv/ws/../etc/hosts")
        '/srv/etc/hosts'
    """
    return os.path.abspath(_absolute(os.path.expanduser(path), cwd))  # noqa: PTH100, PTH111


def path_forms(
    path: object, physical: str | None, cwd: str | None = None
) -> tuple[str, ...]:
    """
    The forms a rule about paths must see of *path*: its `lexical_path`
    (against *cwd*, the call's) and *physical*, the file it opens
    (`physical_path`), last; `()` for an unusable path. A deny matches
    when any form does; an allow only when every form does.

    Examples:
        >>> from capscope.policies._common import path_forms
        >>> path_forms("/srv/ws/../etc/hosts", "/srv/etc/hosts")
        ('/srv/etc/hosts',)
        >>> path_forms("/srv/ws/link", "/etc/passwd")
        ('/srv/ws/link', '/etc/passwd')
    """
    if physical is None:
        return ()
    try:
        absolute = lexical_path(os.fsdecode(os.fspath(path)), cwd)  # type: ignore[call-overload]
    except OSError:  # relative, and the working directory is gone
        return ()
    return (absolute,) if physical == absolute else (absolute, physical)


def within_roots(path: str, roots: Iterable[str]) -> bool:
    """
    Whether *path* is one of *roots* or under one, component-wise (root
    `/a/ws` does not hold `/a/ws2`). Both sides resolved already.

    Examples:
        >>> from capscope.policies._common import within_roots
        >>> within_roots("/a/ws/x", ["/a/ws"]), within_roots("/a/ws2", ["/a/ws"])
        (True, False)
    """
    path = os.path.normcase(path)
    for root in roots:
        normal = os.path.normcase(root)
        prefix = normal if normal.endswith(os.sep) else normal + os.sep
        if path == normal or path.startswith(prefix):
            return True
    return False


def to_mapping(policy: object) -> dict[str, Any]:
    """
    The fields of an attrs *policy* that differ from their defaults, as
    JSON-able data (tuples become lists, enums their values, nested
    policies their own `to_dict()`). A callable field is refused.
    """
    data: dict[str, Any] = {}
    for field in attrs.fields(type(policy)):  # type: ignore[arg-type]
        if not field.init:  # derived state, not data
            continue
        value = getattr(policy, field.name)
        default = field.default
        if isinstance(default, attrs.Factory):  # type: ignore[arg-type]
            default = default.factory()
        if value == default:
            continue
        data[field.name] = _to_data(value, field.name)
    return data


def _to_data(value: Any, field: str) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, str):
        return value
    to_dict = getattr(value, "to_dict", None)
    if to_dict is not None:
        return to_dict()
    if isinstance(value, Mapping):
        return {str(k): _to_data(v, f"{field}.{k}") for k, v in value.items()}
    if isinstance(value, tuple | list | frozenset | set):
        return [_to_data(v, f"{field}[{i}]") for i, v in enumerate(value)]
    if callable(value):
        msg = (
            "holds a callable, which is not data; drop it "
            "(attrs.evolve(policy, ...)) or install it on the receiving side"
        )
        raise PolicyConfigError(field, msg)
    msg = f"{value!r} is not JSON-able data"
    raise PolicyConfigError(field, msg)


def short_repr(policy: object) -> str:
    """
    `Name(field=value, ...)` with only the fields that differ from their
    defaults: policies appear in every denial message, so keep them short.
    """
    parts = [f"{k}={v!r}" for k, v in to_mapping(policy).items()]
    return f"{type(policy).__name__}({', '.join(parts)})"


def from_mapping(cls: type[P], data: object, path: str) -> P:
    """
    Build *cls* from *data*, refusing unknown keys and prefixing every
    PolicyConfigError's field with *path*.
    """
    if not isinstance(data, Mapping):
        msg = f"expected a table of {cls.__name__} fields, got {data!r}"
        raise PolicyConfigError(path, msg)
    known = [f.name for f in attrs.fields(cls) if f.init]  # type: ignore[arg-type]
    for key in data:
        if key not in known:
            msg = f"unknown key {key!r}; expected one of {', '.join(known)}"
            raise PolicyConfigError(f"{path}.{key}", msg)
    try:
        return cls(**data)
    except PolicyConfigError as exc:
        raise PolicyConfigError(f"{path}.{exc.field}", exc.message) from None
    except TypeError as exc:  # a missing required key
        raise PolicyConfigError(path, str(exc)) from None
