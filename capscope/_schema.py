"""
The JSON Schema of policy files, generated from the policy classes.

Each stack whose codec reads an `attrs` policy class (`from_dict`) gets
that class's schema, derived from its field types and the `Attributes:`
section of its docstring; a few fields whose converters accept more than
their stored type say so explicitly (`_OVERRIDES`). A third-party stack
whose codec is something else gets an open table.

The shipped `capscope/policy.schema.json` is this function's output over
the built-in stacks; a test keeps the two equal.
"""

from __future__ import annotations

import collections.abc
import enum
import inspect
import re
import types
import typing
from collections.abc import Iterable
from typing import Any

import attrs

from ._ambient import AmbientStack
from ._policyfile import SCHEMA_VERSION
from ._registry import Ambient, registry
from .policies.permissions import PermissionRule

__all__ = ["policy_schema"]

_SCHEMA_ID = "https://capscope.dev/schema/policy-{}.json"

_GLOBS = {"type": "array", "items": {"type": "string"}, "minItems": 1}
_MATCHER = {
    "description": (
        "which arguments the rule applies to: true (any), false (never), "
        "a glob or list of globs matched against every string argument, "
        "or a table {argument: glob or globs}"
    ),
    "anyOf": [
        {"type": ["boolean", "null", "string"]},
        _GLOBS,
        {
            "type": "object",
            "minProperties": 1,
            "additionalProperties": {"anyOf": [{"type": "string"}, _GLOBS]},
        },
    ],
}


def _permission_rules(nullable: bool) -> dict[str, Any]:  # noqa: FBT001
    rule = {"$ref": "#/$defs/PermissionRule"}
    options: list[dict[str, Any]] = [
        {"type": "array", "items": {"anyOf": [{"type": "string"}, rule]}},
        {"type": "object", "additionalProperties": _MATCHER},
    ]
    if nullable:
        options.append({"type": "null"})
    return {"anyOf": options}


#: Fields whose converters accept other shapes than their stored type:
#: the schema, and the classes it refers to (defined alongside).
_OVERRIDES: dict[tuple[str, str], tuple[dict[str, Any], tuple[type, ...]]] = {
    ("DynamicPermissionPolicy", "allow"): (
        _permission_rules(nullable=True),
        (PermissionRule,),
    ),
    ("DynamicPermissionPolicy", "deny"): (
        _permission_rules(nullable=False),
        (PermissionRule,),
    ),
    ("PermissionRule", "matcher"): (_MATCHER, ()),
}


def policy_schema(
    stacks: Iterable[Ambient] | None = None,
) -> dict[str, Any]:
    """
    The JSON Schema (draft 2020-12) of a policy file for *stacks*: by
    default every stack registered now, third-party ones included. Editors
    and CI can validate files with it; capscope itself validates through
    the stacks' codecs.

    Examples:
        >>> import capscope as cs
        >>> schema = cs.policy_schema()
        >>> schema["properties"]["schema"]["const"]
        1
        >>> schema["properties"]["execution"]["$ref"]
        '#/$defs/CapabilityPolicy'
    """
    if stacks is None:
        stacks = list(registry)
    defs: dict[str, Any] = {}
    properties: dict[str, Any] = {
        "$schema": {
            "description": "where an editor finds this schema (ignored)",
            "type": "string",
        },
        "schema": {
            "description": "the policy-file schema version",
            "const": SCHEMA_VERSION,
        },
    }
    for stack in stacks:
        if not isinstance(stack, AmbientStack) or stack.codec is None:
            continue
        cls = getattr(stack.codec.from_data, "__self__", None)
        if isinstance(cls, type) and attrs.has(cls):
            _define(cls, defs)
            properties[stack.name] = {"$ref": f"#/$defs/{cls.__name__}"}
        else:
            properties[stack.name] = {
                "type": "object",
                "description": stack.doc,
            }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": _SCHEMA_ID.format(SCHEMA_VERSION),
        "title": f"capscope policy file, schema {SCHEMA_VERSION}",
        "description": (
            "One table per stack, by its registry name. A table of a "
            "third-party stack is read by that stack's codec."
        ),
        "type": "object",
        "properties": properties,
        "additionalProperties": {"type": "object"},
        "$defs": dict(sorted(defs.items())),
    }


def _define(cls: type, defs: dict[str, Any]) -> None:
    """Add *cls* (and the attrs classes its fields hold) to *defs*."""
    name = cls.__name__
    if name in defs:
        return
    defs[name] = {}  # claimed first: a class may refer to itself
    hints = typing.get_type_hints(cls)
    docs = _attribute_docs(cls)
    properties: dict[str, Any] = {}
    required = []
    for field in attrs.fields(cls):
        if not field.init:
            continue
        hint = hints[field.name]
        override = _OVERRIDES.get((name, field.name))
        if override is not None:
            schema, refers_to = override
            for referred in refers_to:
                _define(referred, defs)
        elif _is_callable(hint):
            continue  # a handler or a hook: code, not data
        else:
            schema = _type_schema(hint, defs)
        schema = dict(schema)
        if field.name in docs:
            schema["description"] = docs[field.name]
        properties[field.name] = schema
        if field.default is attrs.NOTHING:
            required.append(field.name)
    definition: dict[str, Any] = {
        "type": "object",
        "description": _summary(cls),
        "properties": properties,
        "additionalProperties": False,
    }
    if required:
        definition["required"] = required
    defs[name] = definition


def _type_schema(hint: Any, defs: dict[str, Any]) -> dict[str, Any]:  # noqa: PLR0911 - one return per kind of type
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return _union([_type_schema(a, defs) for a in args])
    if hint is type(None):
        return {"type": "null"}
    if hint is Any:
        return {}
    if isinstance(hint, type) and issubclass(hint, enum.Enum):
        return {"enum": [m.value for m in hint]}
    if hint in (str, int, float, bool):
        name = {
            str: "string",
            int: "integer",
            float: "number",
            bool: "boolean",
        }
        return {"type": name[hint]}
    if isinstance(hint, type) and attrs.has(hint):
        _define(hint, defs)
        return {"$ref": f"#/$defs/{hint.__name__}"}
    if origin in (tuple, frozenset, collections.abc.Sequence):
        return {"type": "array", "items": _type_schema(args[0], defs)}
    if isinstance(origin, type) and issubclass(
        origin, collections.abc.Mapping
    ):
        return {
            "type": "object",
            "additionalProperties": _type_schema(args[1], defs),
        }
    msg = f"no JSON Schema for the type {hint!r}"
    raise TypeError(msg)


def _union(options: list[dict[str, Any]]) -> dict[str, Any]:
    """Options as one schema: plain types and enums merge, else anyOf."""
    if all(o.keys() == {"type"} for o in options):
        return {"type": [o["type"] for o in options]}
    enums = [o for o in options if o.keys() == {"enum"}]
    if len(enums) == 1 and all(
        o == {"type": "null"} for o in options if o is not enums[0]
    ):
        return {"enum": [*enums[0]["enum"], None]}
    return {"anyOf": options}


def _is_callable(hint: Any) -> bool:
    return any(
        typing.get_origin(option) is collections.abc.Callable
        for option in (typing.get_args(hint) or (hint,))
    )


def _summary(cls: type) -> str:
    doc = inspect.getdoc(cls) or ""
    return " ".join(doc.split("\n\n", 1)[0].split())


def _attribute_docs(cls: type) -> dict[str, str]:
    """The `Attributes:` section of *cls*'s docstring, by field name."""
    doc = inspect.getdoc(cls) or ""
    match = re.search(
        r"^Attributes:\n((?:[ \t]+.*\n?|\n)+)", doc, re.MULTILINE
    )
    if match is None:
        return {}
    docs: dict[str, str] = {}
    current = None
    for line in match.group(1).splitlines():
        item = re.match(r"^ {4}(\w+): (.*)$", line)
        if item:
            current = item.group(1)
            docs[current] = item.group(2).strip()
        elif current and line.strip():
            docs[current] += " " + line.strip()
    return {k: v.replace("`", "") for k, v in docs.items()}
