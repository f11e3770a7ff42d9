"""
Decorators: where and when the check runs, for every kind of callable;
what the decorated callable keeps; decoration-time validation; tool_spec.

The engine is replaced by a fake `Gatekeeper` that records each check (its
arguments, the ambient state and the task it ran in) and refuses the tools
it is told to: these tests are about the decorator layer only.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import attrs
import pytest

import capscope as cs
from capscope import _decorators
from capscope._decorators import needs_approval, requires_tool, tool_spec
from capscope.policies import CapabilityPolicy, Level

#: What the fake gatekeeper reads back when it checks: the caller's state.
MARK = cs.AmbientStack("dec_mark", inherit=cs.Inherit.COPY)


# --- The fake engine ------------------------------------------------------


@dataclass
class Check:
    """One check the fake gatekeeper ran."""

    tool: str
    method: str  # "check" or "acheck"
    instance: object
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    mark: object  # MARK.top() where the check ran
    scope: cs.Scope
    task: asyncio.Task[Any] | None


@dataclass
class FakeGate:
    """
    Stands in for the `Gatekeeper` class: calling it builds a keeper, as
    the decorators do once per decorated callable.
    """

    checks: list[Check] = field(default_factory=list)
    denied: set[str] = field(default_factory=set)
    built: list[tuple[cs.ToolSpec, Callable[..., Any]]] = field(
        default_factory=list
    )

    def __call__(self, spec: cs.ToolSpec, fn: Callable[..., Any]) -> Keeper:
        self.built.append((spec, fn))
        return Keeper(self, spec)

    @property
    def last(self) -> Check:
        return self.checks[-1]


class Keeper:
    """A fake keeper: records every check, refuses denied tools."""

    #: Never the inlined fast path: every sync call reaches check().
    plain = False

    def __init__(self, gate: FakeGate, spec: cs.ToolSpec) -> None:
        self.gate = gate
        self.spec = spec

    def _record(self, method, instance, args, kwargs) -> None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
        self.gate.checks.append(
            Check(
                self.spec.name,
                method,
                instance,
                args,
                kwargs,
                MARK.top(),
                cs.Scope.current(),
                task,
            )
        )
        if self.spec.name in self.gate.denied:
            msg = f"{self.spec.name} refused"
            raise cs.ToolDenied(msg)

    def check(self, instance, args, kwargs) -> None:
        self._record("check", instance, args, kwargs)

    # What the decorators' inlined fast paths read: never a fast answer.
    allowed_under = None
    allowed_calls = None
    check_gates = check

    def emit_allowed(self) -> None:
        raise AssertionError("the fast path is never taken with this keeper")

    async def acheck(self, instance, args, kwargs) -> None:
        await asyncio.sleep(0)  # a real suspension, as an async handler has
        self._record("acheck", instance, args, kwargs)


@pytest.fixture
def gate(monkeypatch: pytest.MonkeyPatch) -> FakeGate:
    """The fake engine, installed for the decorators made in this test."""
    fake = FakeGate()
    monkeypatch.setattr(_decorators, "Gatekeeper", fake)
    return fake


def run(coro):
    return asyncio.run(coro)


# --- Sync functions -------------------------------------------------------


class TestSyncFunction:
    def test_allowed(self, gate):
        """
        An allowed call is checked with the arguments the body gets, then
        runs: a plain function's own parameters are copied, so its
        defaults are passed on and keywords bound to their parameters.
        """

        @requires_tool("math.add")
        def add(a, b=2, *, c=0):
            return a + b + c

        assert 3 == add(1)
        assert 5 == add(1, b=4)
        assert 8 == add(a=1, c=5)

        assert [
            ((1, 2), {"c": 0}),
            ((1, 4), {"c": 0}),
            ((1, 2), {"c": 5}),
        ] == [(c.args, c.kwargs) for c in gate.checks]
        assert {None} == {c.instance for c in gate.checks}
        assert {"check"} == {c.method for c in gate.checks}

    def test_denied(self, gate):
        """A refused call raises before the body runs."""
        ran = []

        @requires_tool("fs.delete")
        def delete(path):
            ran.append(path)

        gate.denied.add("fs.delete")

        with pytest.raises(cs.ToolDenied, match=r"fs\.delete refused"):
            delete("/etc")

        assert [] == ran
        assert 1 == len(gate.checks)

    def test_checked_in_the_callers_context(self, gate):
        """The check reads the caller's ambient stacks."""

        @requires_tool("t")
        def tool():
            return MARK.top()

        with MARK.pushed("caller"):
            assert "caller" == tool()

        assert "caller" == gate.last.mark

    def test_one_keeper_per_decorated_callable(self, gate):
        """The keeper is built once, at decoration, with the undecorated function."""

        def add(a, b):
            return a + b

        decorated = requires_tool("math.add")(add)
        decorated(1, 2)
        decorated(3, 4)

        assert 1 == len(gate.built)
        spec, fn = gate.built[0]
        assert add is fn
        assert "math.add" == spec.name

    def test_stacked_decorators_check_outer_then_inner(self, gate):
        """Two tool decorators on one function: both checks run, outer first."""

        @requires_tool("outer")
        @requires_tool("inner")
        def tool(x):
            return x

        assert 1 == tool(1)

        assert ["outer", "inner"] == [c.tool for c in gate.checks]
        gate.denied.add("inner")
        with pytest.raises(cs.ToolDenied, match="inner"):
            tool(1)


# --- Methods, classmethods, staticmethods ---------------------------------


@pytest.fixture
def toolkit(gate):
    """A class with every kind of method, decorated in either order."""

    class Toolkit:
        @requires_tool("kit.method")
        def method(self, x):
            return (self, x)

        @requires_tool("kit.cm_below")
        @classmethod
        def cm_below(cls, x):
            return (cls, x)

        @classmethod
        @requires_tool("kit.cm_above")
        def cm_above(cls, x):
            return (cls, x)

        @requires_tool("kit.sm_below")
        @staticmethod
        def sm_below(x):
            return (None, x)

        @staticmethod
        @requires_tool("kit.sm_above")
        def sm_above(x):
            return (None, x)

    return Toolkit


#: Python 3.13 removed classmethod descriptor chaining: a `@classmethod`
#: written above the decorator calls the wrapper as a plain function with
#: `cls` first, so the keeper gets instance None and `cls` in args (wrapt
#: has the same limitation). The check still runs.
CLASSMETHOD_CHAINS = sys.version_info < (3, 13)

#: (attribute, through the class or an instance, expected `instance`).
METHOD_CASES = [
    ("method", "instance", "obj"),
    ("method", "class", "obj"),
    ("cm_below", "class", "cls"),
    ("cm_below", "instance", "cls"),
    ("cm_above", "class", "cls"),
    ("cm_above", "instance", "cls"),
    ("sm_below", "class", None),
    ("sm_below", "instance", None),
    ("sm_above", "class", None),
    ("sm_above", "instance", None),
]


def _call_method(toolkit, obj, name, via, x):
    if via == "instance":
        return getattr(obj, name)(x)
    if name == "method":
        return getattr(toolkit, name)(obj, x)
    return getattr(toolkit, name)(x)


class TestMethods:
    @pytest.mark.parametrize(
        ("name", "via", "expected"),
        METHOD_CASES,
        ids=[f"{n}-via-{v}" for n, v, _ in METHOD_CASES],
    )
    def test_allowed(self, gate, toolkit, name, via, expected):
        """The keeper gets wrapt's `instance` (the object, the class, or None) and args without it."""
        obj = toolkit()
        instance = {"obj": obj, "cls": toolkit, None: None}[expected]

        result = _call_method(toolkit, obj, name, via, 7)

        assert (instance, 7) == result
        check = gate.last
        assert f"kit.{name}" == check.tool
        assert {} == check.kwargs
        if name == "cm_above" and not CLASSMETHOD_CHAINS:
            assert None is check.instance
            assert (toolkit, 7) == check.args
        else:
            assert instance is check.instance
            assert (7,) == check.args

    @pytest.mark.parametrize(
        ("name", "via", "expected"),
        METHOD_CASES,
        ids=[f"{n}-via-{v}" for n, v, _ in METHOD_CASES],
    )
    def test_denied(self, gate, toolkit, name, via, expected):
        """A refused method raises before its body runs."""
        gate.denied.add(f"kit.{name}")

        with pytest.raises(cs.ToolDenied):
            _call_method(toolkit, toolkit(), name, via, 7)

    def test_keepers_get_the_function_that_takes_self_or_cls(
        self, gate, toolkit
    ):
        """Whenever the keeper gets an instance, its function's first parameter takes it."""
        firsts = {
            spec.name: next(iter(inspect.signature(fn).parameters))
            for spec, fn in gate.built
        }

        assert {
            "kit.method": "self",
            "kit.cm_below": "cls",
            "kit.cm_above": "cls",
            "kit.sm_below": "x",
            "kit.sm_above": "x",
        } == firsts

    def test_bound_method_decorated_directly(self, gate, toolkit):
        """Decorating an already bound method: instance is its __self__."""

        class Plain:
            def greet(self, name):
                return f"hi {name}"

        obj = Plain()
        greet = requires_tool("greet")(obj.greet)

        assert "hi ada" == greet("ada")
        assert obj is gate.last.instance
        assert ("ada",) == gate.last.args
        assert Plain.greet is gate.built[-1][1]

    def test_subclass_inherits_the_check(self, gate, toolkit):
        """A subclass's instance is the instance; the check still runs."""

        class Sub(toolkit):
            pass

        sub = Sub()
        assert (sub, 1) == sub.method(1)
        assert (Sub, 2) == Sub.cm_below(2)
        assert sub is gate.checks[0].instance
        assert Sub is gate.checks[1].instance


# --- Callables made by other decorators -----------------------------------


def logged(fn):
    """A functools.wraps-style decorator, as other libraries write them."""
    calls = []

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        calls.append(args)
        return fn(*args, **kwargs)

    wrapper.calls = calls  # type: ignore[attr-defined]
    return wrapper


class Adder:
    """A callable object."""

    def __init__(self, base):
        self.base = base

    def __call__(self, x):
        return self.base + x


class AsyncAdder:
    """A callable object whose __call__ is a coroutine function."""

    async def __call__(self, x):
        return x + 1


class TestOtherCallables:
    def test_functools_wraps_wrapper(self, gate):
        """A wraps-style wrapper is checked before it (and what it wraps) runs."""

        @requires_tool("logged.tool")
        @logged
        def tool(x, y=1):
            return x + y

        assert 3 == tool(2)
        assert [(2,)] == tool.calls
        assert ((2,), {}) == (gate.last.args, gate.last.kwargs)

        gate.denied.add("logged.tool")
        with pytest.raises(cs.ToolDenied):
            tool(5)
        assert [(2,)] == tool.calls

    def test_partial(self, gate):
        """A functools.partial: the check sees only the call's own arguments."""

        def power(base, exp):
            return base**exp

        square = requires_tool("math.square")(functools.partial(power, exp=2))

        assert 9 == square(3)
        assert ((3,), {}) == (gate.last.args, gate.last.kwargs)
        assert None is gate.last.instance

        gate.denied.add("math.square")
        with pytest.raises(cs.ToolDenied):
            square(3)

    def test_callable_object(self, gate):
        """An object with __call__ is checked, then called."""
        adder = requires_tool("math.adder")(Adder(10))

        assert 15 == adder(5)
        assert None is gate.last.instance
        assert (5,) == gate.last.args

        gate.denied.add("math.adder")
        with pytest.raises(cs.ToolDenied):
            adder(5)

    def test_callable_object_with_async_call(self, gate):
        """An object whose __call__ is async is checked when its coroutine starts."""
        adder = requires_tool("math.aadder")(AsyncAdder())

        coro = adder(1)

        assert [] == gate.checks
        assert 2 == run(coro)
        assert "acheck" == gate.last.method


# --- Coroutine functions ---------------------------------------------------


class TestCoroutineFunction:
    def test_allowed(self, gate):
        """An allowed coroutine is checked with acheck, then its body runs."""

        @requires_tool("net.fetch")
        async def fetch(url, *, retries=1):
            await asyncio.sleep(0)
            return f"{url} x{retries}"

        assert "u x2" == run(fetch("u", retries=2))
        assert "acheck" == gate.last.method
        assert (("u",), {"retries": 2}) == (gate.last.args, gate.last.kwargs)

    def test_denied(self, gate):
        """A refused coroutine raises at await; its body never starts."""
        ran = []

        @requires_tool("net.fetch")
        async def fetch(url):
            ran.append(url)

        gate.denied.add("net.fetch")

        with pytest.raises(cs.ToolDenied):
            run(fetch("u"))
        assert [] == ran

    def test_calling_checks_nothing(self, gate):
        """Calling only makes the coroutine; an unawaited one is never checked."""

        @requires_tool("net.fetch")
        async def fetch(url):
            return url

        coro = fetch("u")
        coro.close()

        assert [] == gate.checks

    def test_the_awaiting_task_decides(self, gate):
        """Made under one scope, awaited in another task under another: the awaiter's."""

        @requires_tool("net.fetch")
        async def fetch(url):
            return MARK.top()

        async def awaiter(coro):
            with MARK.pushed("awaiter"):
                return await coro

        async def main():
            with MARK.pushed("creator"):
                coro = fetch("u")
            task = asyncio.create_task(awaiter(coro))
            return task, await task

        task, seen_by_body = run(main())

        assert "awaiter" == seen_by_body
        assert "awaiter" == gate.last.mark
        assert task is gate.last.task
        assert ("awaiter",) == gate.last.scope[MARK]

    def test_concurrent_awaiters_each_decide(self, gate):
        """Coroutines made in one task, awaited by many interleaving tasks: each its own."""

        @requires_tool("net.fetch")
        async def fetch(n):
            await asyncio.sleep(0)
            return (n, MARK.top())

        async def awaiter(coro, n):
            with MARK.pushed(f"worker-{n}"):
                await asyncio.sleep(0)
                return await coro

        async def main():
            with MARK.pushed("creator"):
                coros = [fetch(n) for n in range(20)]
            return await asyncio.gather(
                *(awaiter(c, n) for n, c in enumerate(coros))
            )

        results = run(main())

        assert [(n, f"worker-{n}") for n in range(20)] == results
        assert all(c.mark == f"worker-{c.args[0]}" for c in gate.checks)
        assert 20 == len({c.task for c in gate.checks})

    def test_same_task_other_scope(self, gate):
        """Awaited in the same task after the stacks changed: the stacks at await time."""

        @requires_tool("net.fetch")
        async def fetch():
            return None

        async def main():
            with MARK.pushed("at creation"):
                coro = fetch()
            with MARK.pushed("at await"):
                await coro

        run(main())

        assert "at await" == gate.last.mark

    def test_coroutine_named_after_the_function(self, gate):
        """Task reprs and never-awaited warnings name the tool function."""

        @requires_tool("net.fetch")
        async def fetch():
            return None

        coro = fetch()
        try:
            assert "fetch" == coro.__name__
            assert fetch.__qualname__ == coro.__qualname__
        finally:
            coro.close()

    def test_async_method(self, gate):
        """An async method: the instance, checked at await."""

        class Client:
            @requires_tool("net.get")
            async def get(self, url):
                return (self, url)

        client = Client()
        coro = client.get("u")
        assert [] == gate.checks

        assert (client, "u") == run(coro)
        assert client is gate.last.instance
        assert ("u",) == gate.last.args


# --- Generator functions --------------------------------------------------


class TestGeneratorFunction:
    def test_checked_at_first_next_in_the_consumer(self, gate):
        """Calling checks nothing; the first next() checks, in the consumer's context."""

        @requires_tool("fs.walk")
        def walk(root):
            yield root

        with MARK.pushed("creator"):
            gen = walk("/")
        assert [] == gate.checks

        with MARK.pushed("consumer"):
            assert "/" == next(gen)

        assert "consumer" == gate.last.mark
        assert (("/",), {}) == (gate.last.args, gate.last.kwargs)
        assert "check" == gate.last.method

    def test_denied(self, gate):
        """A refused generator raises at its first next(); the body never runs."""
        ran = []

        @requires_tool("fs.walk")
        def walk(root):
            ran.append(root)
            yield root

        gate.denied.add("fs.walk")
        gen = walk("/")

        with pytest.raises(cs.ToolDenied):
            next(gen)
        assert [] == ran
        with pytest.raises(StopIteration):
            next(gen)

    def test_body_pushes_never_reach_the_consumer(self, gate):
        """The body runs under its own Context, taken at the first next()."""

        @requires_tool("fs.walk")
        def walk():
            yield MARK.top()
            MARK.push("body")
            yield MARK.top()
            yield MARK.top()

        gen = walk()
        with MARK.pushed("consumer"):
            first = next(gen)
        second = next(gen)
        assert MARK.top() is None
        third = next(gen)

        assert ("consumer", "body", "body") == (first, second, third)
        assert MARK.top() is None

    def test_send_throw_close_and_return_value(self, gate):
        """send(), throw() and close() reach the body; its return value comes back."""
        log = []

        @requires_tool("echo")
        def echo():
            try:
                value = yield "ready"
                while value != "stop":
                    try:
                        value = yield value * 2
                    except ValueError as e:
                        value = yield f"caught {e}"
                return "done"
            finally:
                log.append("finally")

        gen = echo()
        assert "ready" == next(gen)
        assert 6 == gen.send(3)
        assert "caught boom" == gen.throw(ValueError("boom"))
        assert "xx" == gen.send("x")
        with pytest.raises(StopIteration) as stop:
            gen.send("stop")
        assert "done" == stop.value.value

        gen = echo()
        next(gen)
        gen.close()
        assert ["finally", "finally"] == log

    def test_generator_named_after_the_function(self, gate):
        """The generator object carries the tool function's names."""

        @requires_tool("fs.walk")
        def walk():
            yield 1

        gen = walk()

        assert "walk" == gen.__name__
        assert walk.__qualname__ == gen.__qualname__

    def test_generator_method(self, gate):
        """A generator method: the instance, checked at first next()."""

        class Tree:
            @requires_tool("tree.walk")
            def walk(self, depth):
                yield from range(depth)

        tree = Tree()

        assert [0, 1] == list(tree.walk(2))
        assert tree is gate.last.instance
        assert (2,) == gate.last.args


# --- Async generator functions --------------------------------------------


class TestAsyncGeneratorFunction:
    def test_checked_at_first_anext_in_the_consumer(self, gate):
        """Calling checks nothing; the first __anext__ checks, in the consumer's task."""

        @requires_tool("fs.watch")
        async def watch(root):
            yield root
            yield root + "/a"

        async def main():
            with MARK.pushed("creator"):
                agen = watch("/")
            assert [] == gate.checks
            with MARK.pushed("consumer"):
                items = [item async for item in agen]
            return asyncio.current_task(), items

        task, items = run(main())

        assert ["/", "//a"] == items
        assert "consumer" == gate.last.mark
        assert task is gate.last.task
        assert "acheck" == gate.last.method
        assert (("/",), {}) == (gate.last.args, gate.last.kwargs)

    def test_denied(self, gate):
        """A refused async generator raises at its first __anext__; the body never runs."""
        ran = []

        @requires_tool("fs.watch")
        async def watch():
            ran.append(1)
            yield 1

        gate.denied.add("fs.watch")

        async def main():
            agen = watch()
            with pytest.raises(cs.ToolDenied):
                await agen.__anext__()
            with pytest.raises(StopAsyncIteration):
                await agen.__anext__()

        run(main())
        assert [] == ran

    def test_body_pushes_never_reach_the_consumer(self, gate):
        """The body runs under its own Context, taken at the first __anext__."""

        @requires_tool("fs.watch")
        async def watch():
            yield MARK.top()
            MARK.push("body")
            yield MARK.top()

        async def main():
            agen = watch()
            with MARK.pushed("consumer"):
                first = await agen.__anext__()
            second = await agen.__anext__()
            after = MARK.top()
            await agen.aclose()
            return first, second, after

        assert ("consumer", "body", None) == run(main())

    def test_asend_athrow_aclose_reach_the_body(self, gate):
        """asend() values, athrow() exceptions and aclose() reach the body."""
        log = []

        @requires_tool("echo")
        async def echo():
            try:
                value = yield "ready"
                while True:
                    try:
                        value = yield value * 2
                    except ValueError as e:
                        log.append(f"caught {e}")
                        value = yield "recovered"
            except GeneratorExit:
                log.append("closed")
                raise

        async def main():
            agen = echo()
            got = [await agen.asend(None), await agen.asend(3)]
            got.append(await agen.athrow(ValueError("boom")))
            got.append(await agen.asend("x"))
            await agen.aclose()
            return got

        assert ["ready", 6, "recovered", "xx"] == run(main())
        assert ["caught boom", "closed"] == log

    def test_athrow_unhandled_propagates(self, gate):
        """An exception the body does not handle comes back out of athrow()."""

        @requires_tool("echo")
        async def echo():
            yield 1
            yield 2

        async def main():
            agen = echo()
            await agen.__anext__()
            with pytest.raises(KeyError, match="k"):
                await agen.athrow(KeyError("k"))
            with pytest.raises(StopAsyncIteration):
                await agen.__anext__()

        run(main())

    def test_athrow_ending_the_body_stops_iteration(self, gate):
        """A body that handles athrow() by returning: StopAsyncIteration, as without us."""

        @requires_tool("echo")
        async def echo():
            try:
                yield 1
            except ValueError:
                return

        async def main():
            agen = echo()
            await agen.__anext__()
            with pytest.raises(StopAsyncIteration):
                await agen.athrow(ValueError)

        run(main())

    def test_async_generator_named_after_the_function(self, gate):
        """The async generator object carries the tool function's names."""

        @requires_tool("fs.watch")
        async def watch():
            yield 1

        agen = watch()

        assert "watch" == agen.__name__
        assert watch.__qualname__ == agen.__qualname__


# --- What the decorated callable keeps ------------------------------------


def _sync(a: int, b: str = "x", *rest: int, key: bool = False) -> str:
    """Sync doc."""
    return b


async def _coro(url: str, *, retries: int = 1) -> bytes:
    """Coroutine doc."""
    return b""


def _gen(n: int):
    """Generator doc."""
    yield n


async def _agen(n: int):
    """Async generator doc."""
    yield n


FUNCTION_ATTRIBUTES = (
    "__name__",
    "__qualname__",
    "__doc__",
    "__module__",
    "__annotations__",
    "__defaults__",
    "__kwdefaults__",
    "__code__",
    "__globals__",
    "__closure__",
    "__dict__",
)

PREDICATES = (
    inspect.iscoroutinefunction,
    inspect.isgeneratorfunction,
    inspect.isasyncgenfunction,
    inspect.isfunction,
    callable,
)


class TestIntrospection:
    @pytest.mark.parametrize("fn", [_sync, _coro, _gen, _agen])
    def test_functions_keep_what_inspect_sees(self, gate, fn):
        """Signature, inspect predicates and metadata are the original's."""
        decorated = requires_tool("t")(fn)

        assert inspect.signature(fn) == inspect.signature(decorated)
        assert [p(fn) for p in PREDICATES] == [
            p(decorated) for p in PREDICATES
        ]
        assert fn is decorated.__wrapped__
        for attr in FUNCTION_ATTRIBUTES:
            assert getattr(fn, attr) == getattr(decorated, attr), attr

    def test_methods_keep_what_inspect_sees(self, gate):
        """Bound methods, classmethods and staticmethods read as undecorated ones."""

        class Plain:
            def method(self, x: int) -> None: ...

            async def amethod(self, x: int) -> None: ...

            @classmethod
            def cm(cls, x: int) -> None: ...

            @staticmethod
            def sm(x: int) -> None: ...

        class Decorated:
            @requires_tool("m")
            def method(self, x: int) -> None: ...

            @requires_tool("a")
            async def amethod(self, x: int) -> None: ...

            @requires_tool("c")
            @classmethod
            def cm(cls, x: int) -> None: ...

            @staticmethod
            @requires_tool("s")
            def sm(x: int) -> None: ...

        for name in ("method", "amethod", "cm", "sm"):
            for plain, decorated in [
                (getattr(Plain, name), getattr(Decorated, name)),
                (getattr(Plain(), name), getattr(Decorated(), name)),
            ]:
                assert str(inspect.signature(plain)) == str(
                    inspect.signature(decorated)
                ), name
                assert [p(plain) for p in PREDICATES] == [
                    p(decorated) for p in PREDICATES
                ], name
                assert plain.__name__ == decorated.__name__

    def test_wraps_layer_keeps_the_signature(self, gate):
        """Through a functools.wraps layer, the innermost signature shows."""

        def tool(path: str, *, mode: str = "r") -> None: ...

        decorated = requires_tool("t")(logged(tool))

        assert inspect.signature(tool) == inspect.signature(decorated)


# --- Decoration-time validation -------------------------------------------


def _field_of(excinfo) -> str:
    return excinfo.value.field


class TestValidation:
    def test_side_effect_accepts_levels_and_their_names(self, gate):
        """side_effect takes a Level or its string; the spec holds the Level."""

        @requires_tool("a", side_effect="network")
        def a(): ...

        @needs_approval(side_effect=Level.READ_ONLY)
        def b(): ...

        assert Level.NETWORK is tool_spec(a).side_effect
        assert Level.READ_ONLY is tool_spec(b).side_effect

    @pytest.mark.parametrize("decorator", [requires_tool, needs_approval])
    @pytest.mark.parametrize("bad", ["netwrok", 3, "NETWORK "])
    def test_bad_side_effect(self, gate, decorator, bad):
        """An unknown level names side_effect, and no keeper is built."""
        with pytest.raises(cs.PolicyConfigError) as e:
            decorator("t", side_effect=bad)

        assert "side_effect" == _field_of(e)
        assert [] == gate.built

    @pytest.mark.parametrize("decorator", [requires_tool, needs_approval])
    def test_path_that_is_not_a_parameter(self, gate, decorator):
        """A path name the function does not take names paths[i]."""
        deco = decorator("t", paths=["src", "dest"])

        def copy(src, dst): ...

        with pytest.raises(cs.PolicyConfigError) as e:
            deco(copy)

        assert "paths[1]" == _field_of(e)
        assert "'dest' is not a parameter" in str(e.value)
        assert [] == gate.built

    def test_paths_of_a_function_taking_kwargs(self, gate):
        """With **kwargs any path name may be passed, so any is accepted."""

        @requires_tool("t", paths=["anything"])
        def tool(**kwargs): ...

        assert ("anything",) == tool_spec(tool).paths

    def test_paths_checked_against_static_and_class_methods(self, gate):
        """Path names are checked against the function inside the descriptor."""
        with pytest.raises(cs.PolicyConfigError) as e:

            class Broken:
                @requires_tool("t", paths=["path"])
                @classmethod
                def cm(cls, pth): ...

        assert "paths[0]" == _field_of(e)

        class Fine:
            @requires_tool("t", paths=["path"])
            @staticmethod
            def sm(path): ...

        assert ("path",) == tool_spec(Fine.sm).paths

    @pytest.mark.parametrize(
        ("paths", "field"),
        [("path", "paths"), (["path", 3], "paths[1]"), (None, "paths")],
    )
    def test_paths_must_be_a_list_of_names(self, gate, paths, field):
        """A bare string, a non-string item or no list at all is an error."""
        with pytest.raises(cs.PolicyConfigError) as e:
            requires_tool("t", paths=paths)

        assert field == _field_of(e)

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"capability": "workspace"}, "capability"),
            ({"capability": ".read"}, "capability"),
            ({"capability": "a.b.c"}, "capability"),
            ({"capability": 1}, "capability"),
            ({"bridged": "yes"}, "bridged"),
        ],
    )
    def test_bad_requires_tool_arguments(self, gate, kwargs, field):
        """Each bad argument names its field."""
        with pytest.raises(cs.PolicyConfigError) as e:
            requires_tool("t", **kwargs)

        assert field == _field_of(e)

    @pytest.mark.parametrize("name", ["", 3, None])
    def test_bad_name(self, gate, name):
        """requires_tool needs a non-empty name."""
        with pytest.raises(cs.PolicyConfigError) as e:
            requires_tool(name)

        assert "name" == _field_of(e)

    def test_bad_reason(self, gate):
        """needs_approval's reason is a string."""
        with pytest.raises(cs.PolicyConfigError) as e:
            needs_approval(reason=3)

        assert "reason" == _field_of(e)

    @pytest.mark.parametrize("decorator", [requires_tool, needs_approval])
    def test_decorator_without_parentheses(self, gate, decorator):
        """@decorator with no call is caught, with a hint, not turned into a silent no-op."""
        with pytest.raises(cs.PolicyConfigError) as e:

            @decorator
            def tool(): ...

        assert "name" == _field_of(e)
        assert f"@{decorator.__name__}(...)" in str(e.value)

    def test_needs_approval_names_the_tool_after_the_function(self, gate):
        """needs_approval without a name: the function's __name__."""

        @needs_approval(reason="r")
        def wipe(): ...

        assert "wipe" == tool_spec(wipe).name

    def test_needs_approval_without_any_name(self, gate):
        """A callable with no __name__ needs an explicit name."""
        with pytest.raises(cs.PolicyConfigError) as e:
            needs_approval()(functools.partial(print, "x"))

        assert "name" == _field_of(e)
        assert (
            "ok"
            == tool_spec(
                needs_approval("ok")(functools.partial(print, "x"))
            ).name
        )

    def test_not_a_callable(self, gate):
        """Decorating something that cannot be called is a TypeError."""
        with pytest.raises(TypeError, match="decorates a callable"):
            requires_tool("t")(42)


# --- tool_spec ------------------------------------------------------------


class TestToolSpec:
    def test_requires_tool_spec(self, gate):
        """tool_spec returns what requires_tool was given, as a ToolSpec."""

        @requires_tool(
            "fs.write",
            capability="workspace.write_text",
            side_effect="workspace_write",
            paths=("path",),
            bridged=True,
        )
        def write(path, text): ...

        assert cs.ToolSpec(
            "fs.write",
            capability="workspace.write_text",
            side_effect=Level.WORKSPACE_WRITE,
            paths=("path",),
            bridged=True,
        ) == tool_spec(write)

    def test_needs_approval_spec(self, gate):
        """needs_approval's spec needs approval and carries the reason."""

        @needs_approval("fs.rm", reason="deletes", paths=["path"])
        def rm(path): ...

        assert cs.ToolSpec(
            "fs.rm", paths=("path",), needs_approval=True, reason="deletes"
        ) == tool_spec(rm)

    def test_the_keepers_spec_itself(self, gate):
        """tool_spec hands back the very spec the keeper was built with."""

        @requires_tool("t")
        def tool(): ...

        assert gate.built[0][0] is tool_spec(tool)

    def test_through_every_binding(self, gate, toolkit):
        """Found through bound methods, the class, and the raw descriptors."""
        obj = toolkit()
        for name in ("method", "cm_below", "cm_above", "sm_below", "sm_above"):
            expected = f"kit.{name}"
            for found in (
                getattr(obj, name),
                getattr(toolkit, name),
                toolkit.__dict__[name],
            ):
                assert expected == tool_spec(found).name, (name, found)

    def test_through_other_layers(self, gate):
        """Found through functools.wraps layers and functools.partial objects."""

        @logged
        @logged
        @requires_tool("inner")
        def tool(x, y): ...

        assert "inner" == tool_spec(tool).name
        assert "inner" == tool_spec(functools.partial(tool, 1)).name

    def test_outermost_of_stacked_decorators(self, gate):
        """With two tool decorators, the outer one's spec."""

        @needs_approval("outer")
        @requires_tool("inner")
        def tool(): ...

        assert "outer" == tool_spec(tool).name

    @pytest.mark.parametrize(
        "obj",
        [print, len, lambda: None, Adder(1), 42, functools.partial(print)],
    )
    def test_undecorated(self, gate, obj):
        """Anything not decorated is a TypeError saying so."""
        with pytest.raises(
            TypeError, match="not decorated with @requires_tool"
        ):
            tool_spec(obj)

    def test_undecorated_method(self, gate):
        """An undecorated method is not a tool either."""

        class Plain:
            def method(self): ...

        with pytest.raises(TypeError, match="not decorated"):
            tool_spec(Plain().method)

    def test_cyclic_wrapped_chain(self, gate):
        """A __wrapped__ cycle ends the search instead of looping."""

        def a(): ...

        def b(): ...

        a.__wrapped__ = b  # type: ignore[attr-defined]
        b.__wrapped__ = a  # type: ignore[attr-defined]

        with pytest.raises(TypeError, match="not decorated"):
            tool_spec(a)


# --- Typing ---------------------------------------------------------------

TYPING = Path(__file__).parent / "typing"
_ERROR = re.compile(
    r"^(?P<path>[^:]+):(?P<line>\d+): error: .*\[(?P<code>[\w-]+)\]$"
)
_MARK = re.compile(r"#\s*E:\s*(?P<code>[\w-]+)")


class TestTyping:
    def test_mypy_sees_the_original_signatures(self):
        """The pass file type-checks clean; the fail file fails exactly on its marked lines."""
        pytest.importorskip("mypy")
        passing = TYPING / "decorators_pass.py"
        failing = TYPING / "decorators_fail.py"
        root = Path(__file__).parent.parent

        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "mypy",
                "--follow-imports=silent",
                "--no-error-summary",
                "--no-pretty",
                "--show-error-codes",
                str(passing.relative_to(root)),
                str(failing.relative_to(root)),
            ],
            cwd=root,
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )

        reported: dict[str, set[tuple[int, str]]] = {}
        for line in result.stdout.splitlines():
            if m := _ERROR.match(line):
                name = Path(m["path"]).name
                reported.setdefault(name, set()).add(
                    (int(m["line"]), m["code"])
                )
        expected = {
            (number, m["code"])
            for number, text in enumerate(
                failing.read_text(encoding="utf-8").splitlines(), start=1
            )
            if (m := _MARK.search(text))
        }
        assert expected, "the fail file marks no lines"
        assert set() == reported.get(passing.name, set()), result.stdout
        assert expected == reported.get(failing.name, set()), result.stdout
        assert "" == result.stderr


class _Forms:
    @cs.requires_tool("fs.stat", paths=("path",))
    @classmethod
    def outer_classmethod(cls, path: str) -> str:
        return path

    @cs.requires_tool("fs.norm", paths=("path",))
    @staticmethod
    def outer_staticmethod(path: str) -> str:
        return path

    @classmethod
    @cs.requires_tool("fs.stat", paths=("path",))
    def inner_classmethod(cls, path: str) -> str:
        return path

    @staticmethod
    @cs.requires_tool("fs.norm", paths=("path",))
    def inner_staticmethod(path: str) -> str:
        return path

    @cs.requires_tool("fs.read", paths=("path",))
    def method(self, path: str) -> str:
        return path


_FORMS = [
    "outer_classmethod",
    "outer_staticmethod",
    "inner_classmethod",
    "inner_staticmethod",
    "method",
]


@pytest.mark.parametrize("through", ["class", "instance"])
@pytest.mark.parametrize("name", _FORMS)
def test_check_tool_decides_every_method_form_as_the_call_does(name, through):
    """A dry run binds its arguments exactly as the real call does, for
    every method form, through the class and through an instance (a plain
    method through the class takes the instance first)."""
    owner = _Forms if through == "class" else _Forms()
    fn = getattr(owner, name)
    prefix = (_Forms(),) if (name, through) == ("method", "class") else ()
    ceiling = CapabilityPolicy(tools=("fs.*",), workspace_roots=("/srv/ws",))
    with cs.using(execution=ceiling):
        for path, expected in (
            ("/srv/ws/a", "allow"),
            ("/etc/passwd", "deny"),
        ):
            try:
                fn(*prefix, path)
                real = "allow"
            except cs.ToolDenied:
                real = "deny"
            dry = cs.check_tool(fn, *prefix, path).action.value
            assert (expected, expected) == (real, dry), (name, through, path)


class TestCachesAreBounded:
    """The engine's caches are bounded and hold nothing on policies (issue
    14: 100k names grew the root policy by 45 MB)."""

    def test_checking_many_names_does_not_grow_memory(self):
        import tracemalloc

        ceiling = cs.policies.CapabilityPolicy(tools=("t*",))
        with cs.using(execution=ceiling):
            for i in range(1_000):  # warm every bounded cache up
                cs.check_tool(f"t{i}")
            tracemalloc.start()
            try:
                before = tracemalloc.take_snapshot()
                for i in range(1_000, 31_000):
                    cs.check_tool(f"t{i}")
                after = tracemalloc.take_snapshot()
            finally:
                tracemalloc.stop()

        grown = sum(s.size_diff for s in after.compare_to(before, "filename"))
        # 30k names cost ~7 MB when every verdict was kept; bounded, the
        # growth is the noise of a few caches being refilled.
        assert grown < 1_000_000

    def test_a_policy_carries_no_engine_state(self):
        fields = {f.name for f in attrs.fields(cs.policies.CapabilityPolicy)}

        assert not {f for f in fields if "verdict" in f or "cache" in f}

    def test_alternating_ceilings_decide_each_correctly(self):
        """The fast path's one slot never leaks one ceiling's verdict into
        another's."""

        @cs.requires_tool("fs.read")
        def read():
            return "read"

        fs = cs.policies.CapabilityPolicy(tools=("fs.*",))
        net = cs.policies.CapabilityPolicy(tools=("net.*",))
        for _ in range(3):
            with cs.using(execution=fs):
                assert "read" == read()
            with cs.using(execution=net), pytest.raises(cs.ToolDenied):
                read()
