"""AmbientStack and AmbientCounter: frames, unwinding, frame state."""

from __future__ import annotations

import contextvars
import threading

import pytest

import capscope as cs


def _stack(name: str = "t_stack", **kwargs: object) -> cs.AmbientStack[object]:
    kwargs.setdefault("inherit", cs.Inherit.COPY)
    return cs.AmbientStack(name, **kwargs)  # type: ignore[arg-type]


class TestConstruction:
    def test_inherit_is_required(self):
        """A stack without an inherit mode cannot be made."""
        with pytest.raises(TypeError):
            cs.AmbientStack("no_mode")  # type: ignore[call-arg]

    def test_inherit_must_be_a_mode(self):
        """An unknown inherit mode is refused, naming the choices."""
        with pytest.raises(TypeError, match=r"Inherit\.COPY, Inherit\.TOP"):
            cs.AmbientStack("bad_mode", inherit="sometimes")  # type: ignore[arg-type]

    def test_inherit_accepts_its_string_value(self):
        """Modes are str enums: "top" is Inherit.TOP."""
        assert cs.Inherit.TOP is _stack(inherit="top").inherit

    def test_name_must_be_an_identifier(self):
        """Names appear in policy files and using(**names)."""
        with pytest.raises(TypeError, match="identifier"):
            _stack("not a name")

    def test_to_worker_needs_top(self):
        """to_worker maps the TOP frame a worker gets; elsewhere it is a mistake."""
        with pytest.raises(TypeError, match="to_worker"):
            _stack(inherit=cs.Inherit.COPY, to_worker=lambda v: v)

    def test_hooks_must_be_callable(self):
        """narrow and codec are checked when the stack is made."""
        with pytest.raises(TypeError, match="narrow"):
            _stack(narrow="intersect")
        with pytest.raises(TypeError, match="codec"):
            _stack(codec=(str, "int"))

    def test_codec_is_kept_as_a_named_pair(self):
        """The codec's halves are reachable by name."""
        s = _stack(codec=(str, int))

        assert (str, int) == (s.codec.to_data, s.codec.from_data)


class TestPushPop:
    def test_push_top_pop(self):
        """push puts a value on top; pop of its token takes it off."""
        s = _stack()
        outer = s.push("a")
        inner = s.push("b")

        assert ("b", 2, ("a", "b")) == (s.top(), s.depth, s.frames())

        s.pop(inner)
        s.pop(outer)

        assert (None, 0, ()) == (s.top(), s.depth, s.frames())

    def test_frames_are_persistent(self):
        """A push links to the frame below instead of copying the stack."""
        s = _stack()
        outer = s.push("a")
        inner = s.push("b")

        assert inner[1] is outer

        s.pop(inner)
        s.pop(outer)

    def test_deep_stack_reads_top_and_depth(self):
        """top() and depth are right at depth 1000."""
        s = _stack()
        tokens = [s.push(i) for i in range(1000)]

        assert (999, 1000) == (s.top(), s.depth)

        for token in reversed(tokens):
            s.pop(token)

    def test_pushed_yields_the_stored_value(self):
        """pushed() yields what narrow stored, and pops on exit."""
        s = _stack(narrow=lambda outer, new: f"{outer}>{new}")
        with s.pushed("x") as stored:
            assert "None>x" == stored
            assert "None>x" == s.top()

        assert s.top() is None

    def test_pushed_pops_on_exception(self):
        """An exception inside the block still pops the frame."""
        s = _stack()
        with pytest.raises(KeyError), s.pushed("x"):
            raise KeyError

        assert 0 == s.depth

    def test_pushed_cannot_be_entered_twice(self):
        """One pushed() object is one frame."""
        s = _stack()
        block = s.pushed("x")
        with block, pytest.raises(cs.ScopeError, match="already entered"):
            block.__enter__()

    def test_narrow_sees_the_outer_value(self):
        """narrow gets (outer value or None, new value) on every push."""
        seen = []
        s = _stack(narrow=lambda outer, new: seen.append((outer, new)) or new)
        with s.pushed(1), s.pushed(2):
            pass

        assert [(None, 1), (1, 2)] == seen

    def test_narrow_refusal_pushes_nothing(self):
        """A push that narrow refuses leaves the stack as it was."""

        def narrow(outer, new):
            if outer is not None and new > outer:
                raise cs.CeilingExceeded("limit", outer, new)
            return new

        s = _stack(narrow=narrow)
        with s.pushed(5):
            with pytest.raises(cs.CeilingExceeded, match="limit"):
                s.push(6)

            assert (5, 1) == (s.top(), s.depth)


class TestUnwinding:
    def test_lifo_violation_names_both_frames(self):
        """Popping a frame that is not on top is a ScopeError naming both."""
        s = _stack("lifo")
        outer = s.push("outer-value")
        inner = s.push("inner-value")

        with pytest.raises(cs.ScopeError) as info:
            s.pop(outer)

        message = str(info.value)
        assert "outer-value" in message
        assert "inner-value" in message
        assert "lifo" in message
        assert 2 == s.depth  # nothing changed

        s.pop(inner)
        s.pop(outer)

    def test_token_of_another_stack(self):
        """A token handed to the wrong stack is a ScopeError."""
        a, b = _stack("a_stack"), _stack("b_stack")
        token = a.push(1)

        with pytest.raises(cs.ScopeError, match="b_stack"):
            b.pop(token)

        a.pop(token)

    def test_junk_token(self):
        """Something that is no token at all is a ScopeError."""
        with pytest.raises(cs.ScopeError, match="not a frame token"):
            _stack().pop(("value", None))  # type: ignore[arg-type]

    def test_token_from_a_copied_context_warns_and_changes_nothing(self):
        """A frame pushed in a copied context is not this context's to pop."""
        s = _stack("copied")
        with s.pushed("here"):
            token = contextvars.copy_context().run(s.push, "elsewhere")

            with pytest.warns(cs.ScopeWarning, match="copied"):
                s.pop(token)

            assert ("here",) == s.frames()

    def test_double_pop_warns(self):
        """Popping the same frame twice warns the second time."""
        s = _stack()
        token = s.push(1)
        s.pop(token)

        with pytest.warns(cs.ScopeWarning, match="popped already"):
            s.pop(token)

        assert 0 == s.depth

    def test_exit_in_another_thread_never_raises(self):
        """A pushed() block exited where it was not entered only warns."""
        s = _stack()
        block = s.pushed("x")
        contextvars.copy_context().run(block.__enter__)
        caught: list[BaseException] = []

        def exit_elsewhere() -> None:
            try:
                with pytest.warns(cs.ScopeWarning):
                    block.__exit__(None, None, None)
            except BaseException as exc:  # pragma: no cover - the failure
                caught.append(exc)

        thread = threading.Thread(target=exit_elsewhere)
        thread.start()
        thread.join()

        assert [] == caught
        assert 0 == s.depth


class TestFrameState:
    def test_state_belongs_to_the_top_frame(self):
        """Each frame has its own state; popping drops it."""
        s = _stack()
        with s.pushed("outer"):
            s.frame_state()["k"] = "outer"
            with s.pushed("inner"):
                assert {} == s.frame_state()
                s.frame_state()["k"] = "inner"
            assert {"k": "outer"} == s.frame_state()
        with s.pushed("again"):
            assert {} == s.frame_state()

    def test_inline_captures_share_state(self):
        """Scope.current() sees the same frame state: the same agent."""
        s = _stack()
        with s.pushed("p"):
            s.frame_state()["remembered"] = True
            seen = cs.Scope.current().run(lambda: dict(s.frame_state()))
            cs.Scope.current().run(s.frame_state)["from_inline"] = 1

            assert {"remembered": True} == seen
            assert {"remembered": True, "from_inline": 1} == s.frame_state()

    @pytest.mark.parametrize("mode", [cs.Inherit.COPY, cs.Inherit.TOP])
    def test_workers_get_fresh_state(self, mode):
        """A worker's frame state starts empty, even on a copied frame."""
        s = _stack(inherit=mode)
        with s.pushed("p"):
            s.frame_state()["parent"] = True
            worker = cs.Scope.capture_inherited()
            worker.run(s.frame_state)["worker"] = True

            assert {} == cs.Scope.capture_inherited().run(s.frame_state)
            assert {"parent": True} == s.frame_state()
            assert {"worker": True} == worker.run(s.frame_state)

    def test_empty_stack_has_no_state(self):
        """There is no frame to own state on an empty stack."""
        with pytest.raises(cs.ScopeError, match="empty"):
            _stack("stateless").frame_state()

    def test_concurrent_first_use_gives_one_dict(self):
        """Threads racing to create a frame's state all get the same dict."""
        s = _stack()
        results: list[dict[str, object]] = []
        with s.pushed("p"):
            scope = cs.Scope.current()
            barrier = threading.Barrier(8)

            def grab() -> None:
                barrier.wait()
                results.append(s.frame_state())

            threads = [
                threading.Thread(target=scope.bind(grab)) for _ in range(8)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

            assert 8 == len(results)
            assert all(r is s.frame_state() for r in results)


class TestCounter:
    def test_raised_nests(self):
        """raised() adds one per block and restores on exit."""
        c = cs.AmbientCounter("t_counter")
        with c.raised() as one:
            with c.raised() as two:
                assert (1, 2, 2) == (one, two, c.value)
            assert 1 == c.value

        assert 0 == c.value

    def test_workers_read_zero(self):
        """A worker capture resets counters; an inline capture keeps them."""
        c = cs.AmbientCounter("t_counter_worker")
        with c.raised(), c.raised():
            assert 0 == cs.Scope.capture_inherited().run(lambda: c.value)
            assert 2 == cs.Scope.current().run(lambda: c.value)
            assert 2 == cs.Scope.current()[c]

    def test_out_of_order_exit_is_a_scope_error(self):
        """Counters unwind like stacks."""
        c = cs.AmbientCounter("t_counter_lifo")
        outer, inner = c.raised(), c.raised()
        outer.__enter__()
        inner.__enter__()

        with pytest.raises(cs.ScopeError, match="LIFO"):
            outer.__exit__(None, None, None)

        inner.__exit__(None, None, None)
        outer.__exit__(None, None, None)

        assert 0 == c.value


class TestLifetime:
    def test_stacks_die_without_deadlock(self):
        """
        Stacks made and dropped under garbage-collector pressure: a
        finalizer that runs inside the bookkeeping must not deadlock it.
        (In a fresh interpreter: pytest's own objects change GC timing.)
        """
        import subprocess
        import sys
        import textwrap

        script = textwrap.dedent(
            """
            import gc, threading
            import capscope as cs
            gc.set_threshold(1)  # collect on (nearly) every allocation
            def churn():
                for i in range(2000):
                    box = [cs.AmbientStack(f"churn_{i}", inherit=cs.Inherit.TOP)]
                    box.append(box)  # a cycle: only the cyclic GC frees it
            t = threading.Thread(target=churn, daemon=True)
            t.start()
            t.join(10)
            print("deadlocked" if t.is_alive() else "finished")
            """
        )
        result = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )

        assert "finished" == result.stdout.strip(), result.stderr

    def test_dead_stacks_leave_the_tables(self):
        """A dropped stack's variable is no longer installed or captured."""
        import gc

        from capscope import _ambient

        s = cs.AmbientStack("short_lived", inherit=cs.Inherit.TOP)
        var = s._var
        del s
        gc.collect()
        cs.AmbientStack("trigger_drain", inherit=cs.Inherit.COPY)

        assert var not in _ambient.all_vars()

    def test_a_capture_stops_paying_for_dead_stacks(self):
        """A worker capture drops dead stacks from its rules itself, with no
        new stack created to trigger the clean-up."""
        import gc

        from capscope import _ambient

        s = cs.AmbientStack("dies_before_capture", inherit=cs.Inherit.TOP)
        var = s._var
        del s
        gc.collect()
        assert var in _ambient._top_snapshot

        cs.Scope.capture_inherited()

        assert var not in _ambient._top_snapshot
        assert var not in _ambient.all_vars()


def test_inherit_and_to_worker_are_fixed_when_the_stack_is_made():
    """What a worker gets is decided once: a stack cannot be turned from
    TOP into COPY, or lose its to_worker, after captures rely on it."""
    s = cs.AmbientStack(
        "fixed_rules", inherit=cs.Inherit.TOP, to_worker=lambda n: n - 1
    )
    with pytest.raises(AttributeError):
        s.inherit = cs.Inherit.COPY  # type: ignore[misc]
    with pytest.raises(AttributeError):
        s.to_worker = None  # type: ignore[misc]
    with s.pushed(3):
        assert (2,) == cs.Scope.capture_inherited()[s]
