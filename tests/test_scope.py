"""Scope: inline and worker captures, pushing, running, installing, using."""

from __future__ import annotations

import contextlib
import contextvars
import threading

import pytest

import capscope as cs
from capscope.policies import CommandPolicy, RuntimeContextOverlay
from capscope.stacks import command, overlay

RUN = RuntimeContextOverlay(run_id="run-1")

# Not capscope's: stands for a tracing or logging context variable.
FOREIGN: contextvars.ContextVar[str] = contextvars.ContextVar(
    "foreign", default="unset"
)


def _narrow_max(outer: int | None, new: int) -> int:
    """A ceiling: a push may lower the value, never raise it."""
    if outer is not None and new > outer:
        raise cs.CeilingExceeded("limit", outer, new)
    return new


@pytest.fixture
def stacks():
    """One stack per inherit mode, plus a counter."""
    return {
        "copy": cs.AmbientStack("s_copy", inherit=cs.Inherit.COPY),
        "top": cs.AmbientStack("s_top", inherit=cs.Inherit.TOP),
        "none": cs.AmbientStack("s_none", inherit=cs.Inherit.NONE),
        "counter": cs.AmbientCounter("s_counter"),
    }


def _fill(stacks, stack_of_tokens):
    for mode in ("copy", "top", "none"):
        for value in (f"{mode}1", f"{mode}2"):
            stack_of_tokens.append((stacks[mode], stacks[mode].push(value)))


def _unfill(stack_of_tokens):
    for stack, token in reversed(stack_of_tokens):
        stack.pop(token)


class TestCaptures:
    def test_current_copies_everything(self, stacks):
        """An inline capture holds every stack as it is, counters included."""
        tokens = []
        _fill(stacks, tokens)
        with stacks["counter"].raised():
            scope = cs.Scope.current()
        _unfill(tokens)

        assert ("copy1", "copy2") == scope[stacks["copy"]]
        assert ("top1", "top2") == scope[stacks["top"]]
        assert ("none1", "none2") == scope[stacks["none"]]
        assert 1 == scope[stacks["counter"]]

    def test_capture_inherited_follows_each_mode(self, stacks):
        """COPY whole, TOP as one fresh frame, NONE empty, counters 0."""
        tokens = []
        _fill(stacks, tokens)
        with stacks["counter"].raised():
            scope = cs.Scope.capture_inherited()
        _unfill(tokens)

        assert ("copy1", "copy2") == scope[stacks["copy"]]
        assert ("top2",) == scope[stacks["top"]]
        assert () == scope[stacks["none"]]
        assert 0 == scope[stacks["counter"]]
        assert 1 == scope.run(lambda: stacks["top"].depth)

    def test_top_frame_is_fresh_not_the_parents(self):
        """The worker's TOP frame holds the parent's top value, alone, with
        state of its own: nothing the parent's frame remembered, and nothing
        the worker remembers reaches the parent."""
        s = cs.AmbientStack("s_fresh", inherit=cs.Inherit.TOP)
        for pushes in (["p"], ["outer", "p"]):
            with contextlib.ExitStack() as stack:
                for value in pushes:
                    stack.enter_context(s.pushed(value))
                s.frame_state()["seen"] = "parent"

                def worker() -> tuple[tuple[str, ...], dict[str, str]]:
                    state = dict(s.frame_state())
                    s.frame_state()["seen"] = "worker"
                    return s.frames(), state

                frames, state = cs.Scope.capture_inherited().run(worker)
                assert (("p",), {}) == (frames, state)
                assert {"seen": "parent"} == s.frame_state()

    def test_to_worker_maps_the_top_frame(self):
        """to_worker turns the parent's top value into the worker's."""
        s = cs.AmbientStack(
            "s_budget", inherit=cs.Inherit.TOP, to_worker=lambda n: n - 1
        )
        with s.pushed(3):
            first = cs.Scope.capture_inherited()
            second = first.run(cs.Scope.capture_inherited)

        assert ((2,), (1,)) == (first[s], second[s])

    def test_to_worker_refusal_raises_at_capture(self):
        """A to_worker that refuses makes the capture fail, in the caller."""

        def take_one(n: int) -> int:
            if n == 0:
                raise cs.CeilingExceeded("recursion_limit", 0, 1)
            return n - 1

        s = cs.AmbientStack(
            "s_depth", inherit=cs.Inherit.TOP, to_worker=take_one
        )
        with s.pushed(0), pytest.raises(cs.CeilingExceeded, match="recursion"):
            cs.Scope.capture_inherited()

    def test_empty_stacks_stay_empty(self, stacks):
        """Nothing pushed: a worker capture has nothing either."""
        scope = cs.Scope.capture_inherited()

        assert () == scope[stacks["top"]] == scope[stacks["copy"]]

    def test_unregistered_stacks_follow_their_mode(self):
        """Registration is a name, not a switch: every stack obeys its mode."""
        s = cs.AmbientStack("s_unregistered", inherit=cs.Inherit.NONE)
        assert "s_unregistered" not in cs.registry
        with s.pushed("secret"):
            assert () == cs.Scope.capture_inherited()[s]

    def test_registered_stacks_follow_their_mode(self):
        """A registered stack is captured the same way."""
        s = cs.AmbientStack("s_registered", inherit=cs.Inherit.NONE)
        cs.registry.register(s)
        try:
            with s.pushed("secret"):
                assert () == cs.Scope.capture_inherited()[s]
                assert ("secret",) == cs.Scope.current()[s]
        finally:
            cs.registry.unregister(s)

    def test_stack_made_after_a_capture(self):
        """A stack created or registered after a capture is empty in it."""
        scope = cs.Scope.current()
        late = cs.AmbientStack("s_late", inherit=cs.Inherit.COPY)
        cs.registry.register(late)
        try:
            with late.pushed("now"):
                assert () == scope[late]
                assert () == scope["s_late"]
                assert scope.run(late.top) is None
        finally:
            cs.registry.unregister(late)

    def test_foreign_context_variables_flow(self, stacks):
        """Context variables that are not capscope's are carried by all."""
        token = FOREIGN.set("trace-42")
        try:
            with stacks["copy"].pushed("x"):
                for scope in (
                    cs.Scope.current(),
                    cs.Scope.capture_inherited(),
                    cs.Scope.empty(),
                ):
                    assert "trace-42" == scope.run(FOREIGN.get)
        finally:
            FOREIGN.reset(token)

    def test_empty_drops_every_stack(self, stacks):
        """Scope.empty() has no frames anywhere and counters at 0."""
        tokens = []
        _fill(stacks, tokens)
        with stacks["counter"].raised():
            scope = cs.Scope.empty()
        _unfill(tokens)

        assert all(() == scope[stacks[m]] for m in ("copy", "top", "none"))
        assert 0 == scope[stacks["counter"]]

    def test_getitem_by_name(self):
        """scope["name"] reads a registered stack."""
        with overlay.pushed(RUN):
            assert (RUN,) == cs.Scope.current()["overlay"]

    def test_repr_lists_non_empty_stacks(self):
        """The repr says which stacks hold frames, and how many."""
        s = cs.AmbientStack("s_repr", inherit=cs.Inherit.COPY)
        with s.pushed(1), s.pushed(2):
            assert "s_repr=2" in repr(cs.Scope.current())
        assert "<Scope empty>" == repr(cs.Scope.empty())


class TestPushing:
    def test_pushing_returns_a_new_scope(self, stacks):
        """pushing() leaves the original scope unchanged."""
        base = cs.Scope.empty()
        derived = base.pushing({stacks["copy"]: "a"}).pushing(
            {stacks["copy"]: "b"}
        )

        assert ((), ("a", "b")) == (
            base[stacks["copy"]],
            derived[stacks["copy"]],
        )

    def test_pushing_narrows(self):
        """Each pushed value goes through narrow, against the scope's top."""
        s = cs.AmbientStack(
            "s_narrow", inherit=cs.Inherit.COPY, narrow=_narrow_max
        )
        scope = cs.Scope.empty().pushing({s: 5})

        assert (5, 3) == scope.pushing({s: 3})[s]
        with pytest.raises(cs.CeilingExceeded, match="limit"):
            scope.pushing({s: 9})

    def test_pushing_by_name(self):
        """Keys may be registry names; unknown names are a RegistryError."""
        scope = cs.Scope.empty().pushing({"overlay": RUN})

        assert (RUN,) == scope["overlay"]
        with pytest.raises(cs.RegistryError, match="nope"):
            scope.pushing({"nope": 1})

    def test_counters_take_no_pushes(self):
        """A counter is raised, not pushed."""
        with pytest.raises(TypeError, match="AmbientStack"):
            cs.Scope.empty().pushing({"trusted_depth": 1})


class TestRunAndBind:
    def test_run_uses_a_fresh_copy_each_call(self):
        """Pushes made inside one run are gone in the next."""
        s = cs.AmbientStack("s_run", inherit=cs.Inherit.COPY)
        scope = cs.Scope.empty()

        assert ("leak",) == scope.run(lambda: s.push("leak") and s.frames())
        assert () == scope.run(s.frames)
        assert () == s.frames()

    def test_run_restores_the_caller_on_exception(self):
        """However the function ends, the caller's stacks are untouched."""
        s = cs.AmbientStack("s_run_exc", inherit=cs.Inherit.COPY)

        def boom() -> None:
            s.push("inside")
            raise RuntimeError

        with s.pushed("caller"):
            with pytest.raises(RuntimeError):
                cs.Scope.empty().run(boom)
            assert ("caller",) == s.frames()

    def test_bind_carries_the_scope_into_a_new_thread(self):
        """A plain Thread starts empty; a bound target sees the scope."""
        s = cs.AmbientStack("s_bind", inherit=cs.Inherit.COPY)
        seen: dict[str, object] = {}
        with s.pushed("parent"):
            bound = cs.Scope.current().bind(lambda: seen.update(bound=s.top()))
            plain = threading.Thread(target=lambda: seen.update(plain=s.top()))
            plain.start()
            plain.join()
        thread = threading.Thread(target=bound)
        thread.start()
        thread.join()

        assert {"plain": None, "bound": "parent"} == seen

    def test_bind_keeps_metadata(self):
        """bind() keeps the function's name and docstring."""

        def tool() -> None:
            """Do the thing."""

        bound = cs.Scope.empty().bind(tool)
        assert ("tool", "Do the thing.") == (bound.__name__, bound.__doc__)


class TestInstalled:
    def test_installed_replaces_and_restores(self, stacks):
        """Inside, stacks read as in the scope; after, exactly as before."""
        scope = cs.Scope.empty().pushing({stacks["copy"]: "scoped"})
        with stacks["copy"].pushed("mine"), stacks["none"].pushed("n"):
            with scope.installed():
                assert ("scoped",) == stacks["copy"].frames()
                assert () == stacks["none"].frames()
                stacks["copy"].push("left behind")
            assert ("mine",) == stacks["copy"].frames()
            assert ("n",) == stacks["none"].frames()

    def test_installed_restores_on_exception(self, stacks):
        """An exception inside the block still restores."""
        scope = cs.Scope.empty().pushing({stacks["top"]: "scoped"})
        with pytest.raises(ValueError), scope.installed():
            raise ValueError
        assert () == stacks["top"].frames()

    def test_installed_shares_frame_state_with_the_scope(self):
        """Installing a scope is running as it: same frames, same state."""
        s = cs.AmbientStack("s_inst_state", inherit=cs.Inherit.COPY)
        scope = cs.Scope.capture_inherited().pushing({s: "p"})
        scope.run(s.frame_state)["k"] = 1
        with scope.installed():
            assert {"k": 1} == s.frame_state()

    def test_installed_exit_in_another_context_warns(self):
        """Exiting where it was not entered restores nothing, and says so."""
        block = cs.Scope.empty().installed()
        ctx = contextvars.copy_context()
        ctx.run(block.__enter__)
        with pytest.warns(cs.ScopeWarning, match="different context"):
            block.__exit__(None, None, None)


class TestUsing:
    def test_using_pushes_by_name_and_pops_in_reverse(self):
        """using(**names) pushes each and pops them all on exit."""
        git = CommandPolicy(allow=["git status *"])
        with cs.using(overlay=RUN, command=git):
            assert ((RUN,), (git,)) == (overlay.frames(), command.frames())
        assert ((), ()) == (overlay.frames(), command.frames())

    def test_using_type_checks_through_the_stack(self):
        """A value of the wrong kind is refused by the stack's narrow hook."""
        with pytest.raises(TypeError, match="RuntimeContextOverlay"):
            cs.using(overlay="run-1").__enter__()
        assert () == overlay.frames()

    def test_using_unknown_name(self):
        """An unknown name is refused before anything is pushed."""
        with pytest.raises(cs.RegistryError, match="nope"):
            cs.using(nope=1)

    def test_using_undoes_earlier_pushes_when_one_is_refused(self):
        """A refused push leaves nothing behind."""
        s = cs.AmbientStack(
            "s_using", inherit=cs.Inherit.COPY, narrow=_narrow_max
        )
        cs.registry.register(s)
        try:
            with s.pushed(1):
                refused = cs.using(overlay=RUN, s_using=2)
                with pytest.raises(cs.CeilingExceeded):
                    refused.__enter__()
                assert ((), (1,)) == (overlay.frames(), s.frames())
        finally:
            cs.registry.unregister(s)
