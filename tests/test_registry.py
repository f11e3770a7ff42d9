"""
The stack registry (`capscope.registry`) and entry-point discovery.

The happy path uses one real tiny distribution, tests/plugin_dist/acme_capscope
(fixtures `acme_dist` and `acme_loaded`); the error cases use fake
distributions generated per test (fixture `fake_dist`).
"""

from __future__ import annotations

import asyncio
import importlib
import itertools
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import capscope as cs
from capscope.policies import RuntimeContextOverlay

#: The built-in names in registration order, with what a worker gets.
BUILTINS = {
    "execution": cs.Inherit.TOP,
    "approval": cs.Inherit.TOP,
    "command": cs.Inherit.COPY,
    "permissions": cs.Inherit.COPY,
    "overlay": cs.Inherit.COPY,
    "autonomy": cs.Inherit.COPY,
    "render": cs.Inherit.NONE,
    "connector": cs.Inherit.NONE,
    "trusted_depth": None,
    "command_hook_depth": None,
}

_ids = itertools.count()

MakeStack = Callable[..., cs.AmbientStack[Any]]


@pytest.fixture
def make_stack() -> Iterator[MakeStack]:
    """
    A factory for uniquely named stacks (or of a given name); any of them
    still registered at the end is unregistered.
    """
    made: list[cs.AmbientStack[Any]] = []

    def make(
        name: str | None = None, inherit: cs.Inherit = cs.Inherit.COPY
    ) -> cs.AmbientStack[Any]:
        stack: cs.AmbientStack[Any] = cs.AmbientStack(
            name or f"registry_test_{next(_ids)}", inherit=inherit
        )
        made.append(stack)
        return stack

    yield make
    for stack in made:
        if stack in cs.registry:
            cs.registry.unregister(stack)


@pytest.fixture
def forget_tenant(acme_dist: Any) -> Iterator[None]:
    """
    The acme distribution visible but not loaded; whatever registers its
    `tenant` during the test, it is unregistered afterwards.
    """
    assert "tenant" not in cs.registry._stacks  # `in` would load it
    yield
    if "tenant" in cs.registry._stacks:
        cs.registry.unregister("tenant")


@pytest.fixture
def lazy(monkeypatch: pytest.MonkeyPatch) -> None:
    """The registry as before the first capture: entry points not loaded."""
    monkeypatch.delenv("CAPSCOPE_BLOCKED_STACKS", raising=False)
    monkeypatch.setattr(cs.registry, "_loaded_entry_points", False)


def _entry_point_text(ep: str, target: str, dist: Any) -> str:
    return (
        f"entry point {ep!r} = {target!r} in group 'capscope.stacks' "
        f"(distribution {dist.label})"
    )


class TestRegister:
    def test_register_makes_the_stack_gettable_by_name(self, make_stack):
        """A registered stack is returned by `get` under its name."""
        stack = make_stack()

        cs.registry.register(stack)

        assert stack is cs.registry.get(stack.name)

    def test_register_counter(self):
        """Counters register like stacks."""
        counter = cs.AmbientCounter("registry_test_counter")
        cs.registry.register(counter)
        try:
            assert counter is cs.registry.get("registry_test_counter")
        finally:
            cs.registry.unregister(counter)

    def test_registering_the_same_object_twice_is_a_no_op(self, make_stack):
        """A second registration of the same object changes nothing, not
        even the recorded origin."""
        stack = make_stack()
        cs.registry.register(stack, origin="first")
        names = cs.registry.names()

        cs.registry.register(stack)
        cs.registry.register(stack, origin="second")

        assert names == cs.registry.names()
        assert "first" == cs.registry.origin(stack.name)

    def test_a_different_object_under_a_taken_name_is_refused(
        self, make_stack
    ):
        """Another object under a taken name is a RegistryError naming the
        name; the first registration stands."""
        first = make_stack("registry_test_taken")
        second = make_stack("registry_test_taken")
        cs.registry.register(first)

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.register(second)

        assert "stack name 'registry_test_taken' is taken" in str(
            exc_info.value
        )
        assert first is cs.registry.get("registry_test_taken")

    def test_a_clash_names_the_holder_and_its_origin(self, make_stack):
        """The clash message shows the holder, its origin and the refused
        object."""
        first = make_stack("registry_test_clash")
        second = make_stack("registry_test_clash")
        cs.registry.register(first, origin="some-plugin 1.0")

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.register(second)

        assert (
            "stack name 'registry_test_clash' is taken by "
            f"{first!r} (from some-plugin 1.0); cannot register {second!r}"
        ) == str(exc_info.value)

    def test_a_built_in_name_cannot_be_taken(self):
        """Registering a new stack called `execution` is refused; the
        built-in keeps the name."""
        impostor = cs.AmbientStack("execution", inherit=cs.Inherit.COPY)

        with pytest.raises(cs.RegistryError, match="'execution' is taken"):
            cs.registry.register(impostor)

        assert cs.stacks.execution is cs.registry.get("execution")

    @pytest.mark.parametrize(
        "obj",
        ["execution", None, 42, object(), cs.AmbientStack],
        ids=["str", "None", "int", "object", "the-class"],
    )
    def test_registering_a_non_stack_is_a_type_error(self, obj):
        """Only AmbientStack and AmbientCounter instances can register;
        anything else is a TypeError and the registry is unchanged."""
        names = cs.registry.names()

        with pytest.raises(TypeError, match="only AmbientStack and"):
            cs.registry.register(obj)

        assert names == cs.registry.names()

    def test_concurrent_registrations_under_one_name_admit_one(self):
        """Threads racing to register different objects under one name:
        exactly one wins, the rest get RegistryError."""
        stacks = [
            cs.AmbientStack("registry_test_race", inherit=cs.Inherit.COPY)
            for _ in range(8)
        ]
        barrier = threading.Barrier(len(stacks))
        outcomes: list[str] = []

        def register(stack: cs.AmbientStack[Any]) -> None:
            barrier.wait(timeout=10)
            try:
                cs.registry.register(stack)
            except cs.RegistryError:
                outcomes.append("refused")
            else:
                outcomes.append("registered")

        threads = [
            threading.Thread(target=register, args=(s,)) for s in stacks
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=10)
        try:
            winner = cs.registry.get("registry_test_race")

            assert ["registered"] + ["refused"] * 7 == sorted(
                outcomes, reverse=True
            )
            assert any(winner is s for s in stacks)
        finally:
            cs.registry.unregister("registry_test_race")


class TestUnregister:
    def test_unregister_by_object(self, make_stack):
        """Unregistering the object removes its name."""
        stack = make_stack()
        cs.registry.register(stack)

        cs.registry.unregister(stack)

        assert stack.name not in cs.registry.names()

    def test_unregister_by_name(self, make_stack):
        """Unregistering by name removes the stack of that name."""
        stack = make_stack()
        cs.registry.register(stack)

        cs.registry.unregister(stack.name)

        assert stack not in cs.registry

    def test_unregistering_an_unknown_name_is_a_registry_error(self):
        """An unknown name is a RegistryError naming it."""
        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.unregister("registry_test_nobody")

        assert "'registry_test_nobody' is not registered" == str(
            exc_info.value
        )

    def test_unregistering_an_unregistered_stack_is_a_registry_error(
        self, make_stack
    ):
        """A stack that was never registered cannot be unregistered."""
        stack = make_stack()

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.unregister(stack)

        assert f"{stack!r} is not registered" == str(exc_info.value)

    def test_unregistering_twice_is_a_registry_error(self, make_stack):
        """The second unregister of the same stack is refused."""
        stack = make_stack()
        cs.registry.register(stack)
        cs.registry.unregister(stack)

        with pytest.raises(cs.RegistryError):
            cs.registry.unregister(stack)

    def test_a_namesake_cannot_unregister_the_holder(self, make_stack):
        """Unregistering a different object of the same name is refused and
        leaves the registered one in place."""
        holder = make_stack("registry_test_namesake")
        namesake = make_stack("registry_test_namesake")
        cs.registry.register(holder)

        with pytest.raises(cs.RegistryError):
            cs.registry.unregister(namesake)

        assert holder is cs.registry.get("registry_test_namesake")

    def test_the_name_can_be_registered_again(self, make_stack):
        """After unregistering, the name is free for another object."""
        first = make_stack("registry_test_reuse")
        second = make_stack("registry_test_reuse")
        cs.registry.register(first)
        cs.registry.unregister(first)

        cs.registry.register(second)

        assert second is cs.registry.get("registry_test_reuse")

    def test_an_unregistered_stack_keeps_its_inherit_mode(self, make_stack):
        """Unregistering only drops the name: worker captures still follow
        the stack's inherit mode."""
        stack = make_stack(inherit=cs.Inherit.NONE)
        cs.registry.register(stack)
        cs.registry.unregister(stack)

        with stack.pushed("parent"):
            inline = cs.Scope.current()[stack]
            inherited = cs.Scope.capture_inherited()[stack]

        assert (("parent",), ()) == (inline, inherited)


class TestGet:
    @pytest.mark.parametrize("name", list(BUILTINS))
    def test_get_returns_the_built_in_objects(self, name):
        """Every built-in is registered under its name, as the object in
        `capscope.stacks`."""
        assert getattr(cs.stacks, name) is cs.registry.get(name)

    def test_get_of_an_unknown_name_lists_the_known_ones(self):
        """An unknown name is a RegistryError that lists every registered
        name."""
        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.get("registry_test_unknown")

        message = str(exc_info.value)
        assert message.startswith(
            "no stack named 'registry_test_unknown' is registered (known: "
            "execution, approval, command, permissions, overlay, autonomy, "
            "render, connector, trusted_depth, command_hook_depth"
        )
        assert all(name in message for name in cs.registry.names())

    def test_scope_lookup_by_unknown_name_is_a_registry_error(self):
        """`Scope[...]` by name goes through the registry."""
        with pytest.raises(cs.RegistryError, match="registry_test_unknown"):
            cs.Scope.current()["registry_test_unknown"]

    def test_using_an_unknown_name_is_a_registry_error(self):
        """`using(**names)` refuses names that are not registered, before
        pushing anything."""
        with pytest.raises(cs.RegistryError, match="registry_test_unknown"):
            cs.using(execution="x", registry_test_unknown="y")

        assert 0 == cs.stacks.execution.depth


class TestNamesAndIteration:
    def test_names_start_with_the_built_ins_in_order(self):
        """`names()` is a tuple that starts with the ten built-ins, in
        registration order."""
        names = cs.registry.names()

        assert isinstance(names, tuple)
        assert tuple(BUILTINS) == names[: len(BUILTINS)]

    def test_runtime_registrations_come_last(self, make_stack):
        """Names follow registration order."""
        a, b = make_stack(), make_stack()
        cs.registry.register(b)
        cs.registry.register(a)

        assert (b.name, a.name) == cs.registry.names()[-2:]

    def test_iteration_yields_the_objects_in_name_order(self):
        """Iterating the registry yields the stacks and counters, in the
        order of `names()`."""
        objects = list(cs.registry)

        assert list(cs.registry.names()) == [s.name for s in objects]
        assert all(cs.registry.get(s.name) is s for s in objects)

    def test_len_counts_the_names(self):
        """`len(registry)` is the number of names."""
        assert len(cs.registry.names()) == len(cs.registry)

    def test_iteration_is_a_snapshot(self, make_stack):
        """Registering while iterating neither breaks the loop nor shows up
        in it."""
        extra = make_stack()
        seen = []

        for stack in cs.registry:
            if extra not in cs.registry:
                cs.registry.register(extra)
            seen.append(stack.name)

        assert extra.name not in seen
        assert extra.name in cs.registry.names()

    def test_contains_by_name_and_by_object(self, make_stack):
        """`in` accepts a name or the registered object itself."""
        stack = make_stack()
        cs.registry.register(stack)

        assert (True, True) == (
            stack.name in cs.registry,
            stack in cs.registry,
        )

    def test_contains_is_identity_for_objects(self, make_stack):
        """A different object with a registered name is not `in` the
        registry."""
        stack = make_stack("registry_test_identity")
        namesake = make_stack("registry_test_identity")
        cs.registry.register(stack)

        assert namesake not in cs.registry

    @pytest.mark.parametrize("item", ["registry_test_absent", 42, None])
    def test_contains_is_false_for_unknowns(self, item):
        """Unknown names and non-stacks are simply not `in` the registry."""
        assert item not in cs.registry

    def test_repr_lists_the_names(self):
        """The repr lists the registered names."""
        assert repr(cs.registry).startswith(
            "<StackRegistry execution, approval, command"
        )


class TestOrigin:
    @pytest.mark.parametrize("name", list(BUILTINS))
    def test_built_in_stacks_report_built_in(self, name):
        """Capscope's own stacks and counters have origin "built-in"."""
        assert "built-in" == cs.registry.origin(name)

    def test_runtime_registrations_report_runtime(self, make_stack):
        """Application code registering a stack gets origin "runtime"."""
        stack = make_stack()
        cs.registry.register(stack)

        assert "runtime" == cs.registry.origin(stack.name)

    def test_an_explicit_origin_is_kept(self, make_stack):
        """`register(..., origin=...)` records the given origin."""
        stack = make_stack()
        cs.registry.register(stack, origin="my-app 2.0")

        assert "my-app 2.0" == cs.registry.origin(stack.name)

    def test_plugin_stacks_report_their_distribution(self, acme_loaded):
        """A stack from an entry point reports "<distribution> <version>"."""
        assert "acme-capscope 0.1.0" == cs.registry.origin("tenant")

    def test_origin_of_an_unknown_name_is_a_registry_error(self):
        """`origin` of an unregistered name is a RegistryError."""
        with pytest.raises(cs.RegistryError):
            cs.registry.origin("registry_test_unknown")


class TestLoadEntryPoints:
    def test_loading_is_counted_and_idempotent(self, forget_tenant):
        """The first load registers the plugin's stack and returns 1; the
        second finds it registered and returns 0."""
        first = cs.registry.load_entry_points()
        second = cs.registry.load_entry_points()

        assert (1, 0) == (first, second)

    def test_the_plugin_stack_is_registered_with_its_distribution(
        self, acme_dist, acme_loaded
    ):
        """The tenant shows up in `names()`, from "acme-capscope 0.1.0"."""
        assert "tenant" in cs.registry.names()
        assert acme_dist.label == cs.registry.origin("tenant")

    def test_the_registered_object_is_the_plugins_own(self, acme_loaded):
        """The entry point's target object itself is registered, with the
        inherit mode and doc the plugin gave it."""
        module = importlib.import_module("acme_capscope")

        assert module.tenant is acme_loaded
        assert (cs.Inherit.COPY, "the tenant this work is for") == (
            acme_loaded.inherit,
            acme_loaded.doc,
        )

    def test_block_skips_a_name(self, forget_tenant):
        """Names in `block` are skipped: nothing is registered or counted,
        and a later unblocked load still picks the stack up."""
        blocked = cs.registry.load_entry_points(block=["tenant"])
        in_registry = "tenant" in cs.registry
        unblocked = cs.registry.load_entry_points()

        assert (0, False, 1) == (blocked, in_registry, unblocked)

    def test_an_object_registered_at_runtime_is_not_counted(
        self, forget_tenant
    ):
        """If the application registered the plugin's object already, the
        entry point is a no-op and the origin stays "runtime"."""
        tenant = importlib.import_module("acme_capscope").tenant
        cs.registry.register(tenant)

        loaded = cs.registry.load_entry_points()

        assert (0, "runtime") == (loaded, cs.registry.origin("tenant"))


class TestPluginStack:
    """A plugin's stack behaves like any other once loaded."""

    def test_inline_capture_sees_the_pushed_tenant(self, acme_loaded):
        """`Scope.current()` holds the tenant's frames, by object or name."""
        with acme_loaded.pushed("acme"):
            scope = cs.Scope.current()

        assert (("acme",), ("acme",)) == (scope[acme_loaded], scope["tenant"])

    def test_worker_capture_copies_the_whole_tenant_stack(self, acme_loaded):
        """The tenant is COPY: `capture_inherited()` holds every frame."""
        with acme_loaded.pushed("outer"), acme_loaded.pushed("inner"):
            scope = cs.Scope.capture_inherited()

        assert ("outer", "inner") == scope["tenant"]

    def test_using_pushes_the_tenant_by_name(self, acme_loaded):
        """`using(tenant=...)` pushes for the block and pops after it."""
        run = RuntimeContextOverlay(run_id="run-1")
        with cs.using(tenant="acme", overlay=run):
            inside = (acme_loaded.top(), cs.stacks.overlay.top())

        assert (("acme", run), 0) == (inside, acme_loaded.depth)

    def test_pushing_by_name(self, acme_loaded):
        """`Scope.pushing({"tenant": ...})` resolves the plugin's name."""
        scope = cs.Scope.empty().pushing({"tenant": "acme"})

        assert ("acme",) == scope[acme_loaded]

    @pytest.mark.asyncio
    async def test_spawned_tasks_each_read_their_own_tenant(self, acme_loaded):
        """Two spawned tasks push different tenants and interleave; each
        reads back only its own, on top of the parent's copied frame."""
        tenant = acme_loaded
        log: list[tuple[str, object]] = []

        async def child(name: str) -> tuple[object, ...]:
            with tenant.pushed(name):
                await asyncio.sleep(0)
                log.append((name, tenant.top()))
                await asyncio.sleep(0)
                log.append((name, tenant.top()))
                return tenant.frames()

        with tenant.pushed("parent"):
            results = await asyncio.gather(
                cs.spawn(child("acme")), cs.spawn(child("globex"))
            )
            parent = tenant.frames()

        assert [("parent", "acme"), ("parent", "globex")] == results
        assert [
            ("acme", "acme"),
            ("globex", "globex"),
            ("acme", "acme"),
            ("globex", "globex"),
        ] == log
        assert ("parent",) == parent

    @pytest.mark.asyncio
    async def test_spawn_pushes_the_tenant_by_name(self, acme_loaded):
        """`spawn(push={"tenant": ...})` narrows the push into the worker
        only."""
        tenant = acme_loaded

        async def child() -> tuple[object, ...]:
            await asyncio.sleep(0)
            return tenant.frames()

        first = cs.spawn(child(), push={"tenant": "acme"})
        second = cs.spawn(child(), push={"tenant": "globex"})

        assert [("acme",), ("globex",)] == [await first, await second]
        assert 0 == tenant.depth

    def test_an_unregistered_plugin_name_no_longer_resolves(self, acme_loaded):
        """After unregistering, `using(tenant=...)` is a RegistryError."""
        cs.registry.unregister(acme_loaded)

        with pytest.raises(cs.RegistryError, match="'tenant'"):
            cs.using(tenant="acme")


class TestLazyLoad:
    """
    Entry points load in one place, the registry: on the first lookup that
    misses and the first listing, once, skipping blocked names (issue 14).
    """

    def test_the_plugins_name_may_be_the_first_thing_used(
        self, lazy, forget_tenant
    ):
        """`using(tenant=...)` before anything else: the lookup that misses
        loads the entry points (it was a RegistryError until some capture
        had loaded them)."""
        with cs.using(tenant="acme"):
            assert "acme" == cs.registry.get("tenant").top()

        assert "acme-capscope 0.1.0" == cs.registry.origin("tenant")

    @pytest.mark.parametrize(
        "listing",
        [
            cs.registry.names,
            lambda: list(cs.registry),
            lambda: len(cs.registry),
            lambda: "tenant" in cs.registry,
            lambda: cs.registry.get("tenant"),
        ],
        ids=["names", "iter", "len", "contains", "get"],
    )
    def test_a_listing_or_a_miss_loads_entry_points(
        self, lazy, forget_tenant, listing
    ):
        listing()

        assert "tenant" in cs.registry._stacks
        assert cs.registry._loaded_entry_points

    def test_a_capture_loads_nothing(self, lazy, forget_tenant):
        """Captures follow the stacks that exist; they do not import
        plugins behind the application's back."""
        cs.Scope.current()
        cs.Scope.capture_inherited()

        assert "tenant" not in cs.registry._stacks

    def test_a_hit_loads_nothing(self, lazy, forget_tenant):
        cs.registry.get("execution")

        assert not cs.registry._loaded_entry_points

    def test_the_lazy_load_happens_once(self, lazy, forget_tenant):
        """After the first load, a later miss does not load again."""
        cs.registry.names()
        cs.registry.unregister("tenant")

        assert "tenant" not in cs.registry
        assert "tenant" not in cs.registry._stacks

    @pytest.mark.parametrize("blocked", ["tenant", " other , tenant ,"])
    def test_blocked_names_are_skipped(
        self, lazy, forget_tenant, monkeypatch, blocked
    ):
        """CAPSCOPE_BLOCKED_STACKS (comma-separated) keeps a name out of the
        lazy load."""
        monkeypatch.setenv("CAPSCOPE_BLOCKED_STACKS", blocked)

        with pytest.raises(cs.RegistryError, match="no stack named 'tenant'"):
            cs.registry.get("tenant")
        assert cs.registry._loaded_entry_points

    def test_the_environment_blocks_an_explicit_load_too(
        self, forget_tenant, monkeypatch
    ):
        """CAPSCOPE_BLOCKED_STACKS is configuration: every load honours it,
        so `capscope stacks` and the lazy load agree."""
        monkeypatch.setenv("CAPSCOPE_BLOCKED_STACKS", "tenant")

        assert 0 == cs.registry.load_entry_points()
        assert "tenant" not in cs.registry._stacks

    def test_a_broken_plugin_fails_every_lookup(self, lazy, fake_dist):
        """A broken entry point makes the lazy load, and so the lookup,
        fail loudly, and it is retried (and fails) on the next one."""
        dist = fake_dist(
            "broken-capscope",
            {"broken": "lazy_broken_mod:broken"},
            {"lazy_broken_mod": "raise RuntimeError('plugin exploded')"},
        )

        with pytest.raises(cs.RegistryError, match=dist.label):
            cs.registry.get("budget")
        with pytest.raises(cs.RegistryError, match=dist.label):
            cs.registry.names()

        assert not cs.registry._loaded_entry_points


class TestSealed:
    """The built-in stacks cannot be unregistered or replaced (issue 14)."""

    @pytest.mark.parametrize("name", cs.stacks.__all__)
    def test_a_built_in_stack_is_sealed(self, name):
        stack = cs.registry.get(name)

        with pytest.raises(cs.RegistryError, match="sealed"):
            cs.registry.unregister(name)
        with pytest.raises(cs.RegistryError, match="sealed"):
            cs.registry.unregister(stack)
        assert stack is cs.registry.get(name)

    def test_no_decoy_takes_a_built_in_name(self):
        """A decoy `execution` stack can be neither registered nor made
        the target of `using(execution=...)`."""
        decoy = cs.AmbientStack("execution", inherit=cs.Inherit.COPY)

        with pytest.raises(cs.RegistryError, match="taken"):
            cs.registry.register(decoy)
        with pytest.raises(cs.RegistryError, match="sealed"):
            cs.registry.unregister("execution")
        assert cs.registry.get("execution") is cs.stacks.execution


class TestBrokenEntryPoints:
    """A broken plugin is a RegistryError naming entry point and dist."""

    @pytest.mark.parametrize(
        ("target", "source", "cause"),
        [
            (
                "broken_mod:broken",
                "raise RuntimeError('plugin exploded')",
                "RuntimeError('plugin exploded')",
            ),
            (
                "broken_mod:broken",
                "import registry_test_no_such_module",
                (
                    'ModuleNotFoundError("No module named '
                    "'registry_test_no_such_module'\")"
                ),
            ),
            (
                "broken_mod:no_such_attribute",
                "broken = 1",
                (
                    "AttributeError(\"module 'broken_mod' has no attribute "
                    "'no_such_attribute'\")"
                ),
            ),
            (
                "registry_test_missing_mod:broken",
                None,
                (
                    'ModuleNotFoundError("No module named '
                    "'registry_test_missing_mod'\")"
                ),
            ),
        ],
        ids=["raises", "bad-import", "missing-attribute", "missing-module"],
    )
    def test_an_import_error(self, fake_dist, target, source, cause):
        """An entry point that fails to load names itself, its distribution
        and the cause, and chains the original exception."""
        modules = {} if source is None else {"broken_mod": source}
        dist = fake_dist("broken-capscope", {"broken": target}, modules)

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.load_entry_points()

        assert (
            f"{_entry_point_text('broken', target, dist)} failed to import: "
            f"{cause}"
        ) == str(exc_info.value)
        assert isinstance(exc_info.value.__cause__, Exception)
        assert "broken" not in cs.registry

    @pytest.mark.parametrize(
        ("source", "shown"),
        [
            ("not_a_stack = 'a string'", "'a string'"),
            ("def not_a_stack():\n    pass\n", "<function not_a_stack at"),
            (
                "import capscope\nnot_a_stack = capscope.AmbientStack\n",
                "<class 'capscope.AmbientStack'>",
            ),
            (
                (
                    "import capscope\n"
                    "not_a_stack = lambda: capscope.AmbientStack(\n"
                    "    'not_a_stack', inherit=capscope.Inherit.COPY)\n"
                ),
                "<function <lambda> at",
            ),
        ],
        ids=["string", "function", "the-class", "factory"],
    )
    def test_an_object_that_is_not_a_stack(self, fake_dist, source, shown):
        """An entry point whose object is not an AmbientStack or
        AmbientCounter instance is refused, showing what it is."""
        dist = fake_dist(
            "nas-capscope",
            {"not_a_stack": "nas_mod:not_a_stack"},
            {"nas_mod": source},
        )

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.load_entry_points()

        message = str(exc_info.value)
        assert message.startswith(
            f"{_entry_point_text('not_a_stack', 'nas_mod:not_a_stack', dist)}"
            f" is {shown}"
        )
        assert message.endswith(
            "not an AmbientStack or AmbientCounter instance"
        )
        assert "not_a_stack" not in cs.registry

    def test_an_entry_point_named_unlike_its_stack(self, fake_dist):
        """The entry point's name must be the stack's name."""
        dist = fake_dist(
            "misnamed-capscope",
            {"misnamed": "misnamed_mod:stack"},
            {
                "misnamed_mod": """\
                    import capscope
                    stack = capscope.AmbientStack(
                        "registry_test_other_name", inherit=capscope.Inherit.COPY
                    )
                """
            },
        )

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.load_entry_points()

        assert (
            f"{_entry_point_text('misnamed', 'misnamed_mod:stack', dist)} "
            "names a stack called 'registry_test_other_name'; the entry "
            "point's name must be the stack's name"
        ) == str(exc_info.value)
        assert "registry_test_other_name" not in cs.registry
        assert "misnamed" not in cs.registry

    def test_a_clash_with_a_built_in(self, fake_dist):
        """An entry point `execution` pointing at a different stack called
        "execution" is refused; the built-in keeps the name."""
        dist = fake_dist(
            "clash-capscope",
            {"execution": "clash_mod:execution"},
            {
                "clash_mod": """\
                    import capscope
                    execution = capscope.AmbientStack(
                        "execution", inherit=capscope.Inherit.COPY
                    )
                """
            },
        )

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.load_entry_points()

        message = str(exc_info.value)
        assert message.startswith(
            f"{_entry_point_text('execution', 'clash_mod:execution', dist)}: "
            "stack name 'execution' is taken by "
            "<AmbientStack 'execution' inherit=top> (from built-in)"
        )
        assert cs.stacks.execution is cs.registry.get("execution")
        assert "built-in" == cs.registry.origin("execution")

    def test_a_clash_between_two_plugins(self, fake_dist):
        """Two distributions claiming one name with different objects: the
        load is refused whole, and the message names both."""
        source = """\
            import capscope
            dupe = capscope.AmbientStack("dupe", inherit=capscope.Inherit.COPY)
        """
        one = fake_dist(
            "one-capscope", {"dupe": "one_mod:dupe"}, {"one_mod": source}
        )
        two = fake_dist(
            "two-capscope", {"dupe": "two_mod:dupe"}, {"two_mod": source}
        )

        with pytest.raises(cs.RegistryError) as exc_info:
            cs.registry.load_entry_points()

        message = str(exc_info.value)
        assert "dupe" not in cs.registry  # all or nothing
        assert one.label in message
        assert two.label in message
        assert "stack name 'dupe' is taken" in message

    def test_the_same_object_from_two_entry_points_is_one_stack(
        self, fake_dist
    ):
        """Two distributions pointing at one object register it once."""
        shared = """\
            import capscope
            shared = capscope.AmbientStack("shared", inherit=capscope.Inherit.NONE)
        """
        fake_dist(
            "base-capscope",
            {"shared": "shared_mod:shared"},
            {"shared_mod": shared},
        )
        fake_dist("reexport-capscope", {"shared": "shared_mod:shared"})

        loaded = cs.registry.load_entry_points(block=["tenant"])

        assert 1 == loaded
        assert sys.modules["shared_mod"].shared is cs.registry.get("shared")

    def test_a_blocked_broken_entry_point_is_never_imported(self, fake_dist):
        """Blocking a name skips the entry point before importing it."""
        fake_dist(
            "broken-capscope",
            {"broken": "blocked_mod:broken"},
            {"blocked_mod": "raise RuntimeError('plugin exploded')"},
        )

        loaded = cs.registry.load_entry_points(block=["broken", "tenant"])

        assert 0 == loaded
        assert "blocked_mod" not in sys.modules
