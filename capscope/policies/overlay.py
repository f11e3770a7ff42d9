"""
Attribution: who a piece of work belongs to (run, workflow, stage, worker).

An overlay is not a permission. Each frame of the "overlay" stack layers
what it knows on top of the frames outside it, and the effective overlay is
their field-by-field merge, innermost non-empty value first
(`merge_overlays`): a worker keeps its parent's `run_id` and adds its own
`worker_id`. Decisions, events and log records are stamped with it.

This module is pure: the stack and `current_overlay()` are built on top of
it elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

import attrs

from .._exceptions import CeilingExceeded, PolicyConfigError
from ._common import FrozenMap, from_mapping, short_repr, to_mapping

if TYPE_CHECKING:
    from ._common import ToolCall
    from .protocol import Verdict

__all__ = ["FIXED_IDS", "ID_FIELDS", "RuntimeContextOverlay", "merge_overlays"]

#: The id fields, in the order `ids()` and the repr list them.
ID_FIELDS = ("run_id", "workflow_id", "stage_id", "worker_id")
#: The ids of what the work is for: fixed once an outer frame sets them.
#: `stage_id` and `worker_id` name nested work, so an inner frame (a
#: worker's own) may set its own.
FIXED_IDS = ("run_id", "workflow_id")


def _opt_id(value: object, field: str) -> str | None:
    """*value* as an id: a string, or `None` (an empty string is unset)."""
    if value is None:
        return None
    if not isinstance(value, str):
        msg = f"expected a string or None, got {value!r}"
        raise PolicyConfigError(field, msg)
    return value or None


def _attributes(value: object) -> FrozenMap[str, str]:
    """*value* as an immutable mapping of str to str."""
    if not isinstance(value, Mapping):
        msg = f"expected a table of strings, got {value!r}"
        raise PolicyConfigError("attributes", msg)
    for key, item in value.items():
        if not isinstance(key, str):
            msg = f"keys must be strings, got {key!r}"
            raise PolicyConfigError("attributes", msg)
        if not isinstance(item, str):
            msg = f"expected a string, got {item!r}"
            raise PolicyConfigError(f"attributes[{key!r}]", msg)
    return value if isinstance(value, FrozenMap) else FrozenMap(value)


def _run_id(value: object) -> str | None:
    return _opt_id(value, "run_id")


def _workflow_id(value: object) -> str | None:
    return _opt_id(value, "workflow_id")


def _stage_id(value: object) -> str | None:
    return _opt_id(value, "stage_id")


def _worker_id(value: object) -> str | None:
    return _opt_id(value, "worker_id")


@attrs.frozen
class RuntimeContextOverlay:
    """
    Attribution for the work running in this frame: run, workflow, stage
    and worker ids, plus free-form string attributes.

    Every field is optional. An id is a string or `None`; an empty string
    counts as unset and is stored as `None`, so it never hides an outer
    frame's id when frames are merged. `attributes` maps strings to strings
    and is stored immutably (overlays compare and hash like values); an
    attribute set to `""` is a value like any other.

    Attributes:
        run_id: The run this work belongs to.
        workflow_id: The workflow, if the run executes one.
        stage_id: The workflow stage.
        worker_id: The worker (sub-agent, spawned task) doing the work.
        attributes: Anything else worth stamping on events, as strings.

    Raises:
        PolicyConfigError: A field of the wrong type, naming the field
            (`attributes['team']` for a bad attribute value).

    Examples:
        >>> from capscope.policies.overlay import RuntimeContextOverlay
        >>> overlay = RuntimeContextOverlay(run_id="r-1", attributes={"team": "infra"})
        >>> overlay
        RuntimeContextOverlay(run_id='r-1', attributes={'team': 'infra'})
        >>> overlay.attributes["team"], overlay.worker_id
        ('infra', None)
    """

    run_id: str | None = attrs.field(default=None, converter=_run_id)
    workflow_id: str | None = attrs.field(default=None, converter=_workflow_id)
    stage_id: str | None = attrs.field(default=None, converter=_stage_id)
    worker_id: str | None = attrs.field(default=None, converter=_worker_id)
    attributes: FrozenMap[str, str] = attrs.field(
        factory=FrozenMap, converter=_attributes
    )

    def __repr__(self) -> str:
        return short_repr(self)

    def ids(self) -> dict[str, str]:
        """
        The ids that are set, by field name: what to stamp on a log record
        or an event.

        Examples:
            >>> from capscope.policies.overlay import RuntimeContextOverlay
            >>> RuntimeContextOverlay(run_id="r-1", worker_id="w-2").ids()
            {'run_id': 'r-1', 'worker_id': 'w-2'}
        """
        ids: dict[str, str] = {}
        for name in ID_FIELDS:
            value = getattr(self, name)
            if value is not None:
                ids[name] = value
        return ids

    def refined_by(
        self, inner: RuntimeContextOverlay, *, fixed: Iterable[str] = FIXED_IDS
    ) -> RuntimeContextOverlay:
        """
        *inner* layered on this overlay (`merge_overlays([self, inner])`),
        refusing to change a *fixed* field this overlay sets: a push cannot
        move its work to another run.

        Raises:
            CeilingExceeded: *inner* sets a *fixed* field (or, for
                `"attributes"`, an attribute) to another value.

        Examples:
            >>> from capscope.policies.overlay import RuntimeContextOverlay as O
            >>> O(run_id="r1").refined_by(O(worker_id="w1")).ids()
            {'run_id': 'r1', 'worker_id': 'w1'}
            >>> O(run_id="r1").refined_by(O(run_id="r2"))
            Traceback (most recent call last):
            ...
            capscope.CeilingExceeded: run_id: requested 'r2' exceeds the outer ceiling 'r1' (attribution set outside cannot be changed inside)
        """
        fixed = tuple(fixed)
        for name in fixed:
            if name == "attributes":
                for key, value in inner.attributes.items():
                    mine = self.attributes.get(key)
                    if mine is not None and mine != value:
                        raise CeilingExceeded(
                            f"attributes[{key!r}]", mine, value, _FIXED
                        )
                continue
            mine, theirs = getattr(self, name), getattr(inner, name)
            if mine is not None and theirs is not None and mine != theirs:
                raise CeilingExceeded(name, mine, theirs, _FIXED)
        return merge_overlays((self, inner))

    # -- the Policy protocol ----------------------------------------------------

    def narrow(self, inner: RuntimeContextOverlay) -> RuntimeContextOverlay:
        """
        `refined_by`, under the `Policy` protocol's name: attribution is
        layered, and a run's ids cannot change.

        Examples:
            >>> from capscope.policies import RuntimeContextOverlay as O
            >>> O(run_id="r1").narrow(O(worker_id="w1")).ids()
            {'run_id': 'r1', 'worker_id': 'w1'}
        """
        return self.refined_by(inner)

    def verdict(self, call: ToolCall) -> Verdict | None:  # noqa: ARG002 - protocol
        """
        `None`: attribution decides nothing, it is stamped on decisions.

        Examples:
            >>> from capscope.policies import RuntimeContextOverlay, ToolCall
            >>> RuntimeContextOverlay(run_id="r1").verdict(ToolCall("shell")) is None
            True
        """
        return None

    def describe(self) -> str:
        """
        The ids and attributes in force.

        Examples:
            >>> from capscope.policies import RuntimeContextOverlay
            >>> RuntimeContextOverlay(run_id="r1", attributes={"team": "blue"}).describe()
            'Attribution: run_id=r1; team=blue.'
        """
        pairs = [*self.ids().items(), *self.attributes.items()]
        text = "; ".join(f"{k}={v}" for k, v in pairs) or "none"
        return f"Attribution: {text}."

    def to_dict(self) -> dict[str, Any]:
        """
        The overlay as JSON-able data, holding only the fields that are set.

        Examples:
            >>> from capscope.policies.overlay import RuntimeContextOverlay
            >>> RuntimeContextOverlay(stage_id="s", attributes={"k": "v"}).to_dict()
            {'stage_id': 's', 'attributes': {'k': 'v'}}
        """
        return to_mapping(self)

    @classmethod
    def from_dict(
        cls, data: object, *, path: str = "overlay"
    ) -> RuntimeContextOverlay:
        """
        Rebuild an overlay from `to_dict()` data.

        Args:
            data: A mapping of field names to values.
            path: The key path that prefixes every error's field.

        Raises:
            PolicyConfigError: Bad data or an unknown key, naming its key
                path (`overlay.attributes['team']`).

        Examples:
            >>> from capscope.policies.overlay import RuntimeContextOverlay
            >>> RuntimeContextOverlay.from_dict({"run_id": "r-1"})
            RuntimeContextOverlay(run_id='r-1')
            >>> try:
            ...     RuntimeContextOverlay.from_dict({"worker_id": 7})
            ... except ValueError as e:
            ...     print(e)
            overlay.worker_id: expected a string or None, got 7
        """
        return from_mapping(cls, data, path)


_FIXED = "attribution set outside cannot be changed inside"


def merge_overlays(
    frames: Iterable[RuntimeContextOverlay],
) -> RuntimeContextOverlay:
    """
    Merge overlay frames, given outer to inner, into the effective overlay.

    Field by field, the innermost value that is set wins; attributes are
    merged key by key, the innermost frame's value winning. No frames give
    the empty overlay.

    Examples:
        >>> from capscope.policies.overlay import RuntimeContextOverlay, merge_overlays
        >>> parent = RuntimeContextOverlay(run_id="r-1", worker_id="main", attributes={"a": "1", "b": "1"})
        >>> child = RuntimeContextOverlay(worker_id="w-7", attributes={"b": "2"})
        >>> merge_overlays([parent, child])
        RuntimeContextOverlay(run_id='r-1', worker_id='w-7', attributes={'a': '1', 'b': '2'})
    """
    merged: dict[str, str | None] = dict.fromkeys(ID_FIELDS)
    attributes: dict[str, str] = {}
    count = 0
    last = None
    for frame in frames:
        count += 1
        last = frame
        for name in ID_FIELDS:
            value = getattr(frame, name)
            if value is not None:
                merged[name] = value
        attributes.update(frame.attributes)
    if count == 1 and last is not None:
        return last
    return RuntimeContextOverlay(
        run_id=merged["run_id"],
        workflow_id=merged["workflow_id"],
        stage_id=merged["stage_id"],
        worker_id=merged["worker_id"],
        attributes=FrozenMap(attributes),
    )
