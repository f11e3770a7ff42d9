"""Tests for capscope.policies.overlay: attribution frames and their merge."""

from __future__ import annotations

import asyncio
import pickle

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

import capscope as cs
from capscope.policies.overlay import (
    FIXED_IDS,
    RuntimeContextOverlay,
    merge_overlays,
)

ID_FIELDS = ("run_id", "workflow_id", "stage_id", "worker_id")


class TestConstruction:
    def test_defaults_are_unset(self):
        """Every id defaults to None and attributes to an empty mapping."""
        overlay = RuntimeContextOverlay()

        assert (None, None, None, None) == (
            overlay.run_id,
            overlay.workflow_id,
            overlay.stage_id,
            overlay.worker_id,
        )
        assert {} == overlay.attributes

    def test_fields_in_the_documented_order(self):
        """The fields are run_id, workflow_id, stage_id, worker_id, attributes."""
        assert [*ID_FIELDS, "attributes"] == [
            f.name for f in attrs.fields(RuntimeContextOverlay)
        ]

    def test_empty_string_id_is_unset(self):
        """An empty string id is stored as None."""
        overlay = RuntimeContextOverlay(run_id="", worker_id="w")

        assert None is overlay.run_id
        assert "w" == overlay.worker_id

    def test_attributes_are_an_immutable_copy(self):
        """Attributes are copied; changing the source or the field fails."""
        source = {"team": "infra"}
        overlay = RuntimeContextOverlay(attributes=source)
        source["team"] = "changed"

        assert {"team": "infra"} == overlay.attributes
        with pytest.raises(TypeError):
            overlay.attributes["team"] = "x"  # type: ignore[index]

    def test_frozen(self):
        """Fields cannot be reassigned."""
        overlay = RuntimeContextOverlay(run_id="r")

        with pytest.raises(attrs.exceptions.FrozenInstanceError):
            overlay.run_id = "s"  # type: ignore[misc]

    def test_equal_overlays_hash_equal(self):
        """Overlays compare and hash as values, attributes included."""
        a = RuntimeContextOverlay(run_id="r", attributes={"a": "1", "b": "2"})
        b = RuntimeContextOverlay(run_id="r", attributes={"b": "2", "a": "1"})

        assert a == b
        assert hash(a) == hash(b)
        assert 1 == len({a, b})

    def test_pickles(self):
        """An overlay survives pickling (it rides on Decision events)."""
        overlay = RuntimeContextOverlay(run_id="r", attributes={"a": "1"})

        assert overlay == pickle.loads(pickle.dumps(overlay))  # noqa: S301 - our own bytes

    def test_repr_shows_only_set_fields(self):
        """The repr lists the set fields only."""
        overlay = RuntimeContextOverlay(stage_id="s", attributes={"k": "v"})

        assert (
            "RuntimeContextOverlay(stage_id='s', attributes={'k': 'v'})"
            == repr(overlay)
        )
        assert "RuntimeContextOverlay()" == repr(RuntimeContextOverlay())


class TestValidation:
    @pytest.mark.parametrize("field", ID_FIELDS)
    def test_non_string_id(self, field):
        """A non-string id is a PolicyConfigError naming the field."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay(**{field: 42})

        assert field == info.value.field
        assert "42" in info.value.message

    def test_attributes_not_a_mapping(self):
        """Attributes must be a mapping."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay(attributes=["a"])  # type: ignore[arg-type]

        assert "attributes" == info.value.field

    def test_attribute_value_not_a_string(self):
        """A non-string attribute value names its key."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay(attributes={"team": 3})  # type: ignore[dict-item]

        assert "attributes['team']" == info.value.field

    def test_attribute_key_not_a_string(self):
        """A non-string attribute key is refused."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay(attributes={1: "x"})  # type: ignore[dict-item]

        assert "attributes" == info.value.field
        assert "1" in info.value.message

    def test_is_a_value_error(self):
        """Validation errors are also ValueErrors."""
        with pytest.raises(ValueError, match="run_id"):
            RuntimeContextOverlay(run_id=b"r")  # type: ignore[arg-type]


class TestIds:
    def test_only_set_ids_in_field_order(self):
        """ids() holds the set ids only, in field order."""
        overlay = RuntimeContextOverlay(
            worker_id="w", run_id="r", attributes={"x": "y"}
        )

        assert [("run_id", "r"), ("worker_id", "w")] == list(
            overlay.ids().items()
        )

    def test_empty(self):
        """An empty overlay has no ids."""
        assert {} == RuntimeContextOverlay().ids()

    def test_is_a_fresh_dict(self):
        """Changing the returned dict changes nothing in the overlay."""
        overlay = RuntimeContextOverlay(run_id="r")
        overlay.ids()["run_id"] = "x"

        assert {"run_id": "r"} == overlay.ids()


class TestMergeOverlays:
    def test_no_frames(self):
        """No frames merge to the empty overlay."""
        assert RuntimeContextOverlay() == merge_overlays([])

    def test_one_frame_is_itself(self):
        """A single frame is the merge."""
        frame = RuntimeContextOverlay(run_id="r")

        assert frame is merge_overlays([frame])

    def test_innermost_set_value_wins(self):
        """Field by field, the innermost frame that sets a field wins."""
        root = RuntimeContextOverlay(
            run_id="r1", workflow_id="wf", stage_id="s1"
        )
        stage = RuntimeContextOverlay(stage_id="s2")
        worker = RuntimeContextOverlay(worker_id="w1")
        inner = RuntimeContextOverlay(stage_id="s3", worker_id="")

        merged = merge_overlays([root, stage, worker, inner])

        assert (
            RuntimeContextOverlay(
                run_id="r1", workflow_id="wf", stage_id="s3", worker_id="w1"
            )
            == merged
        )

    def test_worker_keeps_parent_run_and_adds_its_own_id(self):
        """A worker frame layers its worker_id over the parent's run_id."""
        parent = RuntimeContextOverlay(run_id="run-9", workflow_id="wf")
        child = RuntimeContextOverlay(worker_id="w-3")

        assert {
            "run_id": "run-9",
            "workflow_id": "wf",
            "worker_id": "w-3",
        } == merge_overlays([parent, child]).ids()

    def test_attributes_merge_key_by_key(self):
        """Attributes merge key-wise, the innermost value winning."""
        frames = [
            RuntimeContextOverlay(attributes={"a": "outer", "b": "outer"}),
            RuntimeContextOverlay(attributes={"b": "middle", "c": "middle"}),
            RuntimeContextOverlay(attributes={"c": "inner"}),
        ]

        assert {"a": "outer", "b": "middle", "c": "inner"} == (
            merge_overlays(frames).attributes
        )

    def test_empty_attribute_value_overrides(self):
        """An attribute set to "" is a value, and wins like any other."""
        frames = [
            RuntimeContextOverlay(attributes={"a": "x"}),
            RuntimeContextOverlay(attributes={"a": ""}),
        ]

        assert {"a": ""} == merge_overlays(frames).attributes

    def test_accepts_any_iterable(self):
        """Frames may come from a generator, e.g. a stack's frames."""
        frames = (RuntimeContextOverlay(run_id=r) for r in ("a", "b"))

        assert "b" == merge_overlays(frames).run_id

    def test_inputs_unchanged(self):
        """Merging builds a new overlay and leaves the frames as they were."""
        outer = RuntimeContextOverlay(attributes={"a": "1"})
        inner = RuntimeContextOverlay(attributes={"b": "2"})

        merge_overlays([outer, inner])

        assert {"a": "1"} == outer.attributes
        assert {"b": "2"} == inner.attributes


class TestCodec:
    def test_to_dict_holds_set_fields(self):
        """to_dict() holds only what is set, as plain JSON data."""
        overlay = RuntimeContextOverlay(run_id="r", attributes={"a": "1"})

        data = overlay.to_dict()

        assert {"run_id": "r", "attributes": {"a": "1"}} == data
        assert dict is type(data["attributes"])

    def test_round_trip(self):
        """from_dict(to_dict(o)) == o."""
        overlay = RuntimeContextOverlay(
            run_id="r",
            workflow_id="w",
            stage_id="s",
            worker_id="k",
            attributes={"a": "1"},
        )

        assert overlay == RuntimeContextOverlay.from_dict(overlay.to_dict())

    def test_unknown_key(self):
        """An unknown key is refused, named under the path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay.from_dict({"run": "r"})

        assert "overlay.run" == info.value.field
        assert "unknown key 'run'" in info.value.message

    def test_bad_value_names_the_key_path(self):
        """A bad value's error carries the key path, with a custom prefix."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay.from_dict(
                {"attributes": {"team": None}}, path="job.overlay"
            )

        assert "job.overlay.attributes['team']" == info.value.field

    def test_not_a_table(self):
        """Data that is not a mapping is refused at the path itself."""
        with pytest.raises(cs.PolicyConfigError) as info:
            RuntimeContextOverlay.from_dict(["run_id"])

        assert "overlay" == info.value.field


ids = st.one_of(st.none(), st.text(max_size=5))
overlays = st.builds(
    RuntimeContextOverlay,
    run_id=ids,
    workflow_id=ids,
    stage_id=ids,
    worker_id=ids,
    attributes=st.dictionaries(st.text(max_size=3), st.text(max_size=3)),
)


class TestProperties:
    @given(overlays)
    def test_round_trip(self, overlay):
        """from_dict(to_dict(o)) == o for any overlay."""
        assert overlay == RuntimeContextOverlay.from_dict(overlay.to_dict())

    @given(st.lists(overlays, max_size=5))
    def test_merge_matches_a_model(self, frames):
        """The merge equals a plain model: last set value, dict update."""
        expected_ids = {}
        expected_attributes = {}
        for frame in frames:
            expected_ids.update(frame.ids())
            expected_attributes.update(frame.attributes)

        merged = merge_overlays(frames)

        assert expected_ids == merged.ids()
        assert expected_attributes == merged.attributes

    @given(st.lists(overlays, max_size=4), st.lists(overlays, max_size=4))
    def test_merge_is_associative(self, outer, inner):
        """Merging in two steps equals merging all frames at once."""
        assert merge_overlays([*outer, *inner]) == merge_overlays(
            [merge_overlays(outer), merge_overlays(inner)]
        )


class TestRefinedBy:
    """The run a piece of work belongs to is fixed once set (issue 14)."""

    @pytest.mark.parametrize("field", ["run_id", "workflow_id"])
    def test_a_push_cannot_move_work_to_another_run(self, field):
        with cs.using(overlay=RuntimeContextOverlay(**{field: "r1"})):
            with pytest.raises(cs.CeilingExceeded) as raised:
                with cs.using(overlay=RuntimeContextOverlay(**{field: "r2"})):
                    pass
            still = cs.current_overlay()

        assert (field, "r1", "r2") == (
            raised.value.field,
            raised.value.outer,
            raised.value.requested,
        )
        assert "r1" == getattr(still, field)

    def test_a_spawned_worker_cannot_move_to_another_run(self):
        async def main():
            with cs.using(overlay=RuntimeContextOverlay(run_id="r1")):
                return cs.spawn(
                    asyncio.sleep(0),
                    push={"overlay": RuntimeContextOverlay(run_id="evil")},
                )

        with pytest.raises(cs.CeilingExceeded):
            asyncio.run(main())

    def test_a_worker_names_itself_and_adds_attributes(self):
        outer = RuntimeContextOverlay(
            run_id="r1", worker_id="parent", attributes={"team": "blue"}
        )
        inner = RuntimeContextOverlay(
            worker_id="child", stage_id="s", attributes={"step": "2"}
        )

        with cs.using(overlay=outer), cs.using(overlay=inner):
            seen = cs.current_overlay()

        assert merge_overlays([outer, inner]) == seen
        assert ("r1", "child", "s") == (
            seen.run_id,
            seen.worker_id,
            seen.stage_id,
        )

    def test_setting_the_same_run_again_is_allowed(self):
        with cs.using(overlay=RuntimeContextOverlay(run_id="r1")):
            with cs.using(overlay=RuntimeContextOverlay(run_id="r1")):
                assert "r1" == cs.current_overlay().run_id

    @given(overlays, overlays)
    def test_refined_equals_the_merge_unless_a_fixed_id_changes(
        self, outer, inner
    ):
        changes = [
            name
            for name in FIXED_IDS
            if None not in (getattr(outer, name), getattr(inner, name))
            and getattr(outer, name) != getattr(inner, name)
        ]
        if changes:
            with pytest.raises(cs.CeilingExceeded) as raised:
                outer.refined_by(inner)
            assert raised.value.field in changes
        else:
            assert merge_overlays([outer, inner]) == outer.refined_by(inner)
