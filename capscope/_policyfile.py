"""
Policy files: one table per stack, by registry name, in TOML or JSON.

    schema = 1                  # optional; the current version when left out

    [execution]
    tools = ["fs.*", "shell"]
    side_effect_level = "workspace_write"

    [[approval.rules]]
    action = "ask"
    tool = "fs.write*"

Each table is read by its stack's `codec` (so a third-party stack's table
works as soon as the stack is registered). Several files layer: each file's
values are pushed through the stacks' `narrow` hooks on top of the earlier
files', so a later file can only narrow (a wider request is an error naming
both files) and, for the stacks where every frame is checked, a deny in any
file wins.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ._ambient import AmbientStack
from ._exceptions import CeilingExceeded, PolicyConfigError, PolicyFileError
from ._registry import registry
from ._scope import Scope
from .policies.overlay import ID_FIELDS, RuntimeContextOverlay
from .stacks import overlay

__all__ = [
    "SCHEMA_VERSION",
    "load_policy_data",
    "load_policy_file",
    "load_policy_files",
]

#: The policy-file schema this version of capscope reads and writes.
SCHEMA_VERSION = 1

_KEY = re.compile(r"[A-Za-z0-9_-]+")


def load_policy_file(path: str | os.PathLike[str]) -> Scope:
    r"""
    The scope a policy file describes (TOML by a `.toml` suffix, JSON by
    `.json`), built from empty: install it with `scope.installed()`, or run
    under it with `scope.run(...)`.

    Raises:
        PolicyFileError: the file does not parse, has an unknown `schema`,
            a table that is not a registered stack with a codec, or a bad
            value (the key path and, where it can be found, the line).
        OSError: the file cannot be read.

    Examples:
        >>> import pathlib, tempfile
        >>> import capscope as cs
        >>> path = pathlib.Path(tempfile.mkdtemp(), "policy.toml")
        >>> _ = path.write_text('[execution]\ntools = ["fs.*"]\n')
        >>> [policy.tools for policy in cs.load_policy_file(path)["execution"]]
        [('fs.*',)]
    """
    return load_policy_files(path)


def load_policy_files(*paths: str | os.PathLike[str]) -> Scope:
    r"""
    The scope several policy files describe together, layered in the order
    given (an organisation's, then a user's, then a project's, say): each
    file's values are pushed through each stack's `narrow` on top of the
    earlier files', so a later file may only narrow.

    Raises:
        PolicyFileError: as `load_policy_file`, and when a later file asks
            for more than an earlier one allows (the message names both).
        OSError: a file cannot be read.

    Examples:
        >>> import pathlib, tempfile
        >>> import capscope as cs
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "org.toml").write_text('[execution]\ntools = ["fs.*"]\n')
        >>> _ = (d / "project.json").write_text('{"execution": {"tools": ["net.get"]}}')
        >>> try:
        ...     cs.load_policy_files(d / "org.toml", d / "project.json")
        ... except cs.PolicyFileError as e:
        ...     print(e.field, "|", e.file == str(d / "project.json"), "|", str(d / "org.toml") in e.message)
        execution.tools | True | True
    """
    if not paths:
        msg = "load_policy_files() needs at least one path"
        raise TypeError(msg)
    return _layer(_read(Path(p)) for p in paths)


def load_policy_data(
    data: Mapping[str, Any], *, source: str = "<data>"
) -> Scope:
    """
    The scope a policy-file document already parsed into a mapping
    describes (the same tables and rules as a file); errors name *source*.

    Examples:
        >>> import capscope as cs
        >>> scope = cs.load_policy_data({"execution": {"tools": ["fs.read"]}, "command": {"allow": ["git status"]}})
        >>> [policy.allow for policy in scope["command"]]
        [('git status',)]
    """
    return _layer([_Layer(source, data, lambda _field: None)])


class _Layer:
    """One parsed document: where it came from, its tables, its lines."""

    __slots__ = ("data", "line_of", "source")

    def __init__(
        self,
        source: str,
        data: Mapping[str, Any],
        line_of: Any,
    ) -> None:
        self.source = source
        self.data = data
        self.line_of = line_of

    def error(self, field: str, message: str) -> PolicyFileError:
        return PolicyFileError(
            self.source, self.line_of(field), field, message
        )


def _read(path: Path) -> _Layer:
    """Parse one file into a layer (OSError when it cannot be read)."""
    source = str(path)
    text = path.read_text(encoding="utf-8")
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None) or _toml_error_line(
                str(exc), text
            )
            msg = f"not valid TOML: {exc}"
            raise PolicyFileError(source, line, "", msg) from None
        return _Layer(source, data, lambda field: _toml_line(text, field))
    if suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            msg = f"not valid JSON: {exc.msg} (column {exc.colno})"
            raise PolicyFileError(source, exc.lineno, "", msg) from None
        if not isinstance(data, dict):
            msg = (
                f"expected a JSON object of tables, got {type(data).__name__}"
            )
            raise PolicyFileError(source, 1, "", msg)
        return _Layer(source, data, lambda field: _json_line(text, field))
    msg = f"unknown policy-file format {path.suffix!r}: use .toml or .json"
    raise PolicyFileError(source, None, "", msg)


def _layer(layers: Iterable[_Layer]) -> Scope:
    scope = Scope.empty()
    # Per stack, the (layer, value) pairs pushed so far: to name the
    # earlier file a wider request ran into.
    pushed: dict[str, list[tuple[_Layer, Any]]] = {}
    for layer in layers:
        for stack, value in _decode(layer):
            if stack is overlay:
                _same_attribution(layer, pushed.get(stack.name, []), value)
            try:
                scope = scope.pushing({stack: value})
            except CeilingExceeded as exc:
                earlier = pushed.get(stack.name, [])
                raise _wider(layer, stack, value, exc, earlier) from exc
            except (PolicyConfigError, TypeError, ValueError) as exc:
                raise layer.error(stack.name, str(exc)) from exc
            pushed.setdefault(stack.name, []).append((layer, value))
    return scope


def _same_attribution(
    layer: _Layer,
    earlier: list[tuple[_Layer, Any]],
    value: RuntimeContextOverlay,
) -> None:
    """A later file may add attribution, never change what one set: at run
    time a worker names itself, but files configure one and the same work.
    """
    for other, outer in earlier:
        try:
            outer.refined_by(value, fixed=(*ID_FIELDS, "attributes"))
        except CeilingExceeded as exc:
            msg = (
                f"sets {exc.requested!r}, but {other.source} set "
                f"{exc.outer!r}: a later file may add attribution, never "
                "change it"
            )
            raise layer.error(_qualified("overlay", exc.field), msg) from exc


def _wider(
    layer: _Layer,
    stack: AmbientStack[Any],
    value: object,
    exc: CeilingExceeded,
    earlier: list[tuple[_Layer, Any]],
) -> PolicyFileError:
    """The error for a layer asking more than the earlier ones allow."""
    culprits = []
    narrow = stack.narrow
    for other, outer in earlier:
        try:
            if narrow is not None:
                narrow(outer, value)
        except CeilingExceeded:
            culprits.append(other.source)
    names = culprits or [other.source for other, _ in earlier]
    field = _qualified(stack.name, exc.field)
    msg = (
        f"asks for {exc.requested!r}, more than {' and '.join(names)} "
        f"allow{'s' if len(names) == 1 else ''} ({exc.outer!r})"
    )
    if exc.detail:
        msg += f": {exc.detail}"
    return layer.error(field, msg)


def _decode(layer: _Layer) -> list[tuple[AmbientStack[Any], Any]]:
    """The layer's tables decoded by their stacks' codecs, in file order."""
    data = dict(layer.data)
    editor_hint = data.pop("$schema", None)  # a JSON file's schema URL
    if editor_hint is not None and not isinstance(editor_hint, str):
        raise layer.error("$schema", "expected the schema's URL or path")
    version = data.pop("schema", SCHEMA_VERSION)
    if isinstance(version, bool) or version != SCHEMA_VERSION:
        msg = (
            f"unknown schema version {version!r}; this capscope reads "
            f"schema = {SCHEMA_VERSION}"
        )
        raise layer.error("schema", msg)
    decoded = []
    for name, table in data.items():
        if name not in registry:
            known = ", ".join(s.name for s in _file_stacks())
            msg = f"no stack is registered by this name (tables: {known})"
            raise layer.error(name, msg)
        stack = registry.get(name)
        if not isinstance(stack, AmbientStack) or stack.codec is None:
            kind = (
                "a counter"
                if not isinstance(stack, AmbientStack)
                else ("a stack without a codec")
            )
            msg = f"{name!r} is {kind}: it cannot be set from a file"
            raise layer.error(name, msg)
        try:
            value = stack.codec.from_data(table)
        except PolicyConfigError as exc:
            field = _qualified(name, exc.field)
            raise layer.error(field, exc.message) from None
        except Exception as exc:  # a third-party codec's own error
            msg = f"{type(exc).__name__}: {exc}"
            raise layer.error(name, msg) from exc
        decoded.append((stack, value))
    return decoded


def _qualified(name: str, field: str) -> str:
    """*field* as a key path under the table *name* (once, not twice)."""
    if field == name or field.startswith((f"{name}.", f"{name}[")):
        return field
    return f"{name}.{field}" if field else name


def _file_stacks() -> list[AmbientStack[Any]]:
    """The registered stacks a policy file can set."""
    return [
        s
        for s in registry
        if isinstance(s, AmbientStack) and s.codec is not None
    ]


# -- finding the line of a key path -------------------------------------------


def _parts(field: str) -> list[str | int]:
    """`approval.rules[2].action` -> ["approval", "rules", 2, "action"]."""
    parts: list[str | int] = []
    for match in re.finditer(
        r"\[(\d+)\]|\[['\"]([^'\"]*)['\"]\]|([^.\[\]]+)", field
    ):
        index, quoted, name = match.groups()
        if index is not None:
            parts.append(int(index))
        else:
            parts.append(quoted if quoted is not None else name)
    return parts


def _toml_error_line(message: str, text: str) -> int | None:
    """The line a `TOMLDecodeError` message points at (3.11-3.13 say it)."""
    match = re.search(r"line (\d+)", message)
    if match:
        return int(match.group(1))
    return (
        len(text.splitlines()) or 1 if "end of document" in message else None
    )


def _toml_key(text: str) -> list[str]:
    return [k.strip().strip("\"'") for k in text.split(".")]


def _toml_line(text: str, field: str) -> int | None:
    """
    The line of *field* in a TOML document: the deepest key line or table
    header that leads to it (tables, arrays of tables and dotted keys are
    followed; a key inside an inline value is found at its own line when
    it starts one).
    """
    want = _parts(field)
    best, best_len = None, 0
    table: list[str | int] = []
    counts: dict[tuple[str | int, ...], int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if line.startswith("[["):
            base: list[str | int] = list(_toml_key(line[2:].split("]]")[0]))
            index = counts.get(tuple(base), -1) + 1
            counts[tuple(base)] = index
            table = [*base, index]
            path = table
        elif line.startswith("["):
            table = list(_toml_key(line[1:].split("]")[0]))
            path = table
        elif "=" in line and not line.startswith("#"):
            key = line.split("=", 1)[0]
            if not all(_KEY.fullmatch(k) for k in _toml_key(key)):
                continue
            path = [*table, *_toml_key(key)]
        else:
            continue
        if len(path) > best_len and want[: len(path)] == path:
            best, best_len = number, len(path)
    return best


def _json_line(text: str, field: str) -> int | None:
    """
    The line of *field* in a JSON document, found by following its key
    names in order through the text (list indices are skipped).
    """
    position, line = 0, None
    for part in _parts(field):
        if isinstance(part, int):
            continue
        match = re.compile(rf'"{re.escape(part)}"\s*:').search(text, position)
        if match is None:
            break
        position = match.end()
        line = text.count("\n", 0, match.start()) + 1
    return line
