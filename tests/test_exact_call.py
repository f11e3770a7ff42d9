"""
A decorated plain function's `__call__` is compiled with the function's
own parameter list (issue 16: no tuple and dict packed per call). It must
accept exactly the calls the function accepts, hand the body exactly what
the function would get, refuse exactly the calls the function refuses
(with `TypeError`, before any decision), and the gates must see the
arguments the body gets.
"""

from __future__ import annotations

import inspect
import itertools

import pytest

import capscope as cs
from capscope.audit import Recorder
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    ToolApprovalPolicy,
)

SENTINEL = object()
MUTABLE: list[int] = []


def f_plain(a, b):
    return ("plain", a, b)


def f_defaults(a, b=2, c=SENTINEL):
    return ("defaults", a, b, c)


def f_posonly(a, /, b, c=MUTABLE):
    return ("posonly", a, b, c)


def f_kwonly(a, *, b, c=3):
    return ("kwonly", a, b, c)


def f_none():
    return ("none",)


def f_varargs(a, *rest, k=1, **more):
    return ("varargs", a, rest, k, more)


def f_clash(_cs_wrapped, _cs_self=1):
    return ("clash", _cs_wrapped, _cs_self)


def f_names(self, args, kwargs, call):
    return ("names", self, args, kwargs, call)


FUNCTIONS = [
    f_plain,
    f_defaults,
    f_posonly,
    f_kwonly,
    f_none,
    f_varargs,
    f_clash,
    f_names,
]
#: Those that keep `*args, **kwargs` (their own list cannot be copied).
GENERIC = (f_varargs, f_clash)
CALLS = [
    (args, dict(zip(keys, itertools.count(10), strict=False)))
    for args in [(), (1,), (1, 2), (1, 2, 3), (1, 2, 3, 4), (1, 2, 3, 4, 5)]
    for keys in [
        (),
        ("a",),
        ("b",),
        ("c",),
        ("b", "c"),
        ("a", "b"),
        ("a", "b", "c"),
        ("k", "zz"),
        ("self", "args", "kwargs", "call"),
        ("_cs_wrapped",),
    ]
]


def run(fn, args, kwargs):
    try:
        return "returned", fn(*args, **kwargs)
    except TypeError:
        return "TypeError", None


@pytest.mark.parametrize("function", FUNCTIONS, ids=lambda f: f.__name__)
def test_every_call_does_what_the_function_does(function):
    tool = cs.requires_tool("t.call")(function)
    with cs.using(execution=CapabilityPolicy(tools=("t.*",))):
        for args, kwargs in CALLS:
            want = run(function, args, kwargs)
            with Recorder() as rec:
                got = run(tool, args, kwargs)  # the gates, then the fast path
                again = run(tool, args, kwargs)
            assert got == want == again, (args, kwargs)
            if function not in GENERIC or want[0] == "returned":
                # a call the function refuses is refused before any decision
                assert len(rec.allowed()) == (
                    2 if want[0] == "returned" else 0
                )


def test_defaults_are_the_functions_own_objects():
    tool = cs.requires_tool("t.call")(f_defaults)
    other = cs.requires_tool("t.call")(f_posonly)
    with cs.using(execution=CapabilityPolicy(tools=("t.*",))):
        assert tool(1)[3] is SENTINEL
        assert other(1, 2)[3] is MUTABLE


def test_functions_of_one_signature_keep_their_own_defaults_and_bodies():
    """Their `__call__`s share compiled code, never what it reads."""

    def first(x, y=1):
        return ("first", x, y)

    def second(x, y=2):
        return ("second", x, y)

    from capscope._decorators import _compiled

    hits = _compiled.cache_info().hits
    tools = [cs.requires_tool("t.call")(f) for f in (first, second)]
    assert _compiled.cache_info().hits > hits  # the second is not compiled
    assert ["first", "second"] == [type(t).__call__.__name__ for t in tools]
    with cs.using(execution=CapabilityPolicy(tools=("t.*",))):
        for _ in range(2):  # the gates, then the fast path
            assert [("first", 0, 1), ("second", 0, 2)] == [t(0) for t in tools]


@pytest.mark.parametrize(
    ("function", "exact"),
    [(f_plain, True), (f_kwonly, True), (f_varargs, False), (f_clash, False)],
    ids=lambda v: getattr(v, "__name__", str(v)),
)
def test_which_functions_get_their_own_parameter_list(function, exact):
    tool = cs.requires_tool("t.call")(function)
    params = list(inspect.signature(type(tool).__call__).parameters)
    own = list(inspect.signature(function).parameters)
    assert (params[1:] == own) is exact
    assert type(tool).__call__.__name__ == function.__name__


def shadows_type(type):  # noqa: A002 - the point of the test
    return ("type", type)


def shadows_builtins(type, tuple, len=3):  # noqa: A002
    return ("builtins", type, tuple, len)


@pytest.mark.parametrize(
    ("function", "args"),
    [(shadows_type, ("prod",)), (shadows_builtins, ("prod", 1))],
    ids=lambda v: getattr(v, "__name__", ""),
)
def test_parameters_named_as_builtins_on_the_remembered_path(
    function, args, monkeypatch
):
    """
    The compiled `__call__` reads nothing a parameter could shadow: a
    tool's `type` parameter reaches the remembered-arguments path as a
    value, not as the builtin.
    """
    evaluated = []
    original = cs._enforce.Gatekeeper._evaluate

    def counting(self, *a, **k):
        evaluated.append(self.spec.name)
        return original(self, *a, **k)

    monkeypatch.setattr(cs._enforce.Gatekeeper, "_evaluate", counting)
    tool = cs.needs_approval("t.call")(function)
    with cs.using(
        execution=CapabilityPolicy(tools=("t.*",)),
        approval=ToolApprovalPolicy(
            handler=lambda _: cs.ApprovalDecision.allow(remember="scope")
        ),
    ):
        for _ in range(3):
            assert function(*args) == tool(*args)
    # asked, then allowed as remembered (and learned), then the fast path
    assert ["t.call", "t.call"] == evaluated


def test_the_gates_see_what_the_body_gets():
    seen = []

    @cs.needs_approval("t.deploy")
    def deploy(target, region="eu", *, dry=False):
        return target, region, dry

    def handler(request):
        seen.append(request.arguments)
        return True

    with cs.using(
        execution=CapabilityPolicy(tools=("t.*",)),
        approval=ToolApprovalPolicy(handler=handler),
    ):
        assert deploy("web") == ("web", "eu", False)
        assert deploy(target="db", dry=True) == ("db", "eu", True)
    assert seen == [
        {"target": "web", "region": "eu", "dry": False},
        {"target": "db", "region": "eu", "dry": True},
    ]


def test_a_refused_call_never_runs_the_body():
    ran = []

    @cs.requires_tool("t.write")
    def write(path, text=""):
        ran.append(path)

    with cs.using(
        execution=CapabilityPolicy(tools=("t.*",)),
        approval=ToolApprovalPolicy(
            rules=[ApprovalRule("deny", tool="t.write")]
        ),
    ):
        with pytest.raises(cs.ApprovalDenied):
            write("a")
        with pytest.raises(cs.ApprovalDenied):
            write(path="a", text="b")
    assert ran == []
