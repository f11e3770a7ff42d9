"""
Assertions with readable failures: `assert_denied()`, `assert_allowed()` and their async forms.

Part of `capscope.testing`, which re-exports the public names.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

from .._decorators import tool_spec
from .._exceptions import PolicyDenied
from ..events import Decision, Gate

# --- assertions -----------------------------------------------------------


def _tool_name(fn: object) -> str:
    try:
        return tool_spec(fn).name
    except (TypeError, KeyError, AttributeError):
        name = getattr(fn, "__qualname__", None)
        return name if isinstance(name, str) else repr(fn)


def _gate(gate: Gate | str | None) -> Gate | None:
    return None if gate is None else Gate(gate)


def _refuse_lazy(
    result: object, name: str, helper: str, *, awaited: bool = False
) -> None:
    """
    A TypeError for a result whose check has not run yet (*helper* is the
    sync helper's name; *awaited*: the async one was used).
    """
    if inspect.iscoroutine(result):
        result.close()  # never awaited: no "never awaited" warning
    if inspect.isawaitable(result):
        msg = (
            f"{name} returned an awaitable: its check runs when it is "
            f"awaited; use `await {helper}_async(...)`"
        )
        raise TypeError(msg)
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        step = "next" if inspect.isgenerator(result) else "anext"
        msg = (
            f"{name} returned a generator: its check runs at its first "
            f"step; step it in the call, e.g. "
            f"`{'await ' * awaited}{helper}{'_async' * awaited}"
            f"(lambda: {step}(gen(...)))`"
        )
        raise TypeError(msg)


def _denied_as_expected(
    name: str, exc: PolicyDenied, gate: Gate | None
) -> Decision:
    __tracebackhide__ = True
    decision = exc.decision
    at = "" if gate is None else f" at gate {gate.value!r}"
    if not isinstance(decision, Decision):
        msg = (
            f"expected {name} to be denied{at} by a capscope check but it "
            f"raised {exc!r:.100} with no decision attached"
        )
        raise AssertionError(msg) from exc  # noqa: TRY004 - a failed assertion
    if gate is not None and decision.gate is not gate:
        got = "no gate" if decision.gate is None else repr(decision.gate.value)
        msg = (
            f"expected {name} to be denied{at} but it was denied at {got}: "
            f"{decision.reason}"
        )
        raise AssertionError(msg) from exc
    return decision


def _not_denied(name: str, gate: Gate | None, what: str) -> AssertionError:
    at = "" if gate is None else f" at gate {gate.value!r}"
    return AssertionError(f"expected {name} to be denied{at} but {what}")


def _describe_denial(exc: PolicyDenied) -> str:
    decision = exc.decision
    if isinstance(decision, Decision) and decision.gate is not None:
        return f"at {decision.gate.value!r}: {decision.reason}"
    return f"({type(exc).__name__}): {exc}"


def assert_denied(
    fn: Callable[..., object],
    /,
    *args: Any,
    gate: Gate | str | None = None,
    **kwargs: Any,
) -> Decision:
    """
    Call `fn(*args, **kwargs)` and assert that capscope refused it
    (`PolicyDenied` or a subclass), at *gate* if given; return the
    refusing `Decision`.

    *fn* is a decorated tool (or any callable that calls one). When the
    call is allowed, denied at another gate or raises something else, the
    `AssertionError` says what happened instead, e.g. `expected fs.write
    to be denied at gate 'tool_ceiling' but it was denied at
    'workspace_boundary': ...`. A coroutine function's check runs when
    awaited: use `assert_denied_async`.

    Raises:
        AssertionError: the call was not denied as expected.
        TypeError: *fn* returned an awaitable or a generator, whose check
            has not run yet.
        ValueError: *gate* is not a `capscope.Gate` value.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import assert_denied
        >>> @cs.requires_tool("fs.write")
        ... def write(path):
        ...     return "written"
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.write"])):
        ...     assert_denied(write, "a.txt", gate="tool_ceiling")
        Traceback (most recent call last):
        AssertionError: expected fs.write to be denied at gate 'tool_ceiling' but it was allowed (returned 'written')
    """
    __tracebackhide__ = True
    expected = _gate(gate)
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
    except PolicyDenied as exc:
        return _denied_as_expected(name, exc, expected)
    except Exception as exc:
        raise _not_denied(name, expected, f"it raised {exc!r:.100}") from exc
    _refuse_lazy(result, name, "assert_denied")
    raise _not_denied(
        name, expected, f"it was allowed (returned {result!r:.80})"
    )


async def assert_denied_async(
    fn: Callable[..., object],
    /,
    *args: Any,
    gate: Gate | str | None = None,
    **kwargs: Any,
) -> Decision:
    """
    `assert_denied` for a coroutine function (or any callable returning an
    awaitable): call it, await the result, and assert that capscope
    refused it; return the refusing `Decision`.

    Raises:
        AssertionError: the call was not denied as expected.
        ValueError: *gate* is not a `capscope.Gate` value.

    Examples:
        >>> import asyncio, capscope as cs
        >>> from capscope.testing import assert_denied_async
        >>> @cs.requires_tool("net.get")
        ... async def fetch(url):
        ...     return "page"
        >>> asyncio.run(assert_denied_async(fetch, "https://example.com")).gate
        <Gate.NO_POLICY: 'no_policy'>
    """
    __tracebackhide__ = True
    expected = _gate(gate)
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except PolicyDenied as exc:
        return _denied_as_expected(name, exc, expected)
    except Exception as exc:
        raise _not_denied(name, expected, f"it raised {exc!r:.100}") from exc
    _refuse_lazy(result, name, "assert_denied", awaited=True)
    raise _not_denied(
        name, expected, f"it was allowed (returned {result!r:.80})"
    )


def assert_allowed(
    fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """
    Call `fn(*args, **kwargs)`, assert that capscope let it run, and return
    its result.

    A refusal fails with an `AssertionError` naming the gate and reason,
    e.g. `expected fs.write to be allowed but it was denied at
    'tool_ceiling': ...`. Any other exception propagates unchanged (the
    call was allowed; the body failed). A coroutine function's check runs
    when awaited: use `assert_allowed_async`.

    Raises:
        AssertionError: capscope refused the call.
        TypeError: *fn* returned an awaitable or a generator, whose check
            has not run yet.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import assert_allowed
        >>> @cs.requires_tool("fs.read")
        ... def read(path):
        ...     return "data"
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
        ...     assert_allowed(read, "a.txt")
        'data'
    """
    __tracebackhide__ = True
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
    except PolicyDenied as exc:
        msg = (
            f"expected {name} to be allowed but it was denied "
            f"{_describe_denial(exc)}"
        )
        raise AssertionError(msg) from exc
    _refuse_lazy(result, name, "assert_allowed")
    return result


async def assert_allowed_async(
    fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """
    `assert_allowed` for a coroutine function: call it, await the result,
    assert that capscope let it run, and return what it returned.

    Raises:
        AssertionError: capscope refused the call.

    Examples:
        >>> import asyncio, capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import assert_allowed_async, isolated
        >>> @cs.requires_tool("net.get")
        ... async def fetch(url):
        ...     return "page"
        >>> with isolated({"execution": {"tools": ["net.*"]}}):
        ...     asyncio.run(assert_allowed_async(fetch, "https://example.com"))
        'page'
    """
    __tracebackhide__ = True
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except PolicyDenied as exc:
        msg = (
            f"expected {name} to be allowed but it was denied "
            f"{_describe_denial(exc)}"
        )
        raise AssertionError(msg) from exc
    _refuse_lazy(result, name, "assert_allowed", awaited=True)
    return result
