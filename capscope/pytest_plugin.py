"""
capscope's pytest plugin: fixtures and a marker over `capscope.testing`.

Registered through the `pytest11` entry point, so installing capscope is
enough; nothing here runs unless a test asks for it (no autouse fixture).

- `capscope_scope`: the test runs isolated (`capscope.testing.isolated`):
  every stack empty, and the test **fails** if it leaves a frame on any
  stack, with a message naming the stack and its top frame.
- `capscope_policy`: a factory, `capscope_policy({"execution": ...})` or
  `capscope_policy("policy.toml")`, that keeps a policy for the rest of
  the test (`capscope.testing.install_policy`).
- `capscope_approver`: a `capscope.testing.ScriptedApprover` installed as
  the approval handler; set its `answers`.
- `capscope_recorder`: a `capscope.audit.Recorder` of every decision made
  while the test runs.
- `@pytest.mark.capscope(policy=..., approver=...)`: the common case in one
  line; the test is isolated under *policy* (a dict of policy-file tables
  or a file path, relative to the test file) with a `ScriptedApprover` of
  *approver* (a list of answers or a function) installed.

Where leaks are looked for: the test function's own context, at its end
(sync tests, and `async def` tests whose coroutine function the plugin can
wrap, so the check runs at the end of the test's own task, as under
pytest-asyncio or anyio), then the fixture's context at teardown. See
docs/testing.md for what an async test can hide.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from collections.abc import Callable, Coroutine, Generator, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from .audit import Recorder
from .testing import (
    IsolatedScope,
    LeakedFrames,
    ScriptedApprover,
    install_policy,
    isolated,
    no_leaks,
)

__all__ = [
    "capscope_approver",
    "capscope_policy",
    "capscope_recorder",
    "capscope_scope",
]

_MARKER = "capscope"
_SCOPE_FIXTURE = "capscope_scope"
_APPROVER = pytest.StashKey[ScriptedApprover]()


def pytest_configure(config: pytest.Config) -> None:
    """Register the marker (for `--strict-markers`)."""
    config.addinivalue_line(
        "markers",
        f"{_MARKER}(policy=None, approver=None): run the test isolated "
        "(capscope_scope) under `policy` (a dict of policy-file tables, or "
        "a policy file's path relative to the test file) with a "
        "ScriptedApprover of `approver` (a list of answers or a function) "
        "as the approval handler",
    )


def _marker_arguments(
    item: pytest.Item,
) -> tuple[object | None, ScriptedApprover | None]:
    """The marker's policy (paths resolved) and approver, or Nones."""
    marker = item.get_closest_marker(_MARKER)
    if marker is None:
        return None, None
    unknown = set(marker.kwargs) - {"policy", "approver"}
    if marker.args or unknown:
        msg = (
            f"@pytest.mark.{_MARKER} takes the keywords policy= and "
            f"approver= only, got {marker.args!r:.60} and {sorted(unknown)}"
        )
        pytest.fail(msg, pytrace=False)
    policy = marker.kwargs.get("policy")
    if policy is not None:
        policy = _relative_to_test(policy, item)
    answers = marker.kwargs.get("approver")
    approver = None if answers is None else ScriptedApprover(answers)
    return policy, approver


def _relative_to_test(source: object, node: pytest.Item) -> object:
    """A relative policy-file path, made relative to the test's file."""
    if isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_absolute():
            return node.path.parent / path
    return source


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Give every marked test the `capscope_scope` fixture."""
    for item in items:
        if not isinstance(item, pytest.Function):
            continue
        names = item.fixturenames
        if _SCOPE_FIXTURE in names or item.get_closest_marker(_MARKER) is None:
            continue
        # First among the function-scoped fixtures: after the wider-scoped
        # ones (set up once, outside any test's isolation), before those
        # that may use the marker's policy. The list is shared by the items
        # of a parametrized function, so this item gets a copy of its own.
        # `_fixtureinfo` is private pytest API (pytest-asyncio reads it
        # too); without it the fixture simply comes last.
        defs = getattr(
            getattr(item, "_fixtureinfo", None), "name2fixturedefs", {}
        )
        index = next(
            (
                i
                for i, name in enumerate(names)
                if name in defs and defs[name][-1].scope == "function"
            ),
            len(names),
        )
        item.fixturenames = [*names[:index], _SCOPE_FIXTURE, *names[index:]]


def _finish(check: AbstractContextManager[Any]) -> None:
    """
    Exit *check* after a block that did not raise; its leaks fail the test
    with their message alone (the traceback would only show plumbing).
    """
    __tracebackhide__ = True
    try:
        check.__exit__(None, None, None)
    except LeakedFrames as exc:
        message = str(exc)
    else:
        return
    pytest.fail(message, pytrace=False)  # outside `except`: no chained context


def _checked(
    test: Callable[..., Coroutine[Any, Any, Any]],
) -> Callable[..., Coroutine[Any, Any, Any]]:
    """*test* run under `no_leaks()` inside its own task."""

    @functools.wraps(test)
    async def checked(*args: Any, **kwargs: Any) -> Any:
        __tracebackhide__ = True
        check = no_leaks()
        with _exiting_on_error(check):
            result = await test(*args, **kwargs)
        _finish(check)
        return result

    return checked


@contextlib.contextmanager
def _exiting_on_error(check: AbstractContextManager[Any]) -> Iterator[None]:
    """Enter *check*; exit it only if the block raises (a note, then on)."""
    __tracebackhide__ = True
    check.__enter__()
    try:
        yield
    except BaseException as exc:
        check.__exit__(type(exc), exc, exc.__traceback__)
        raise


# tryfirst: the outermost wrapper, so the coroutine function is swapped
# before another plugin's call-time wrapper (pytest-trio's) takes it.
@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, object, object]:
    """
    Check the test function itself for leaks, in the context it runs in.

    A sync test runs in this context: the check wraps the call. An async
    test runs in a task of its own, with a copy of this context (pytest-
    asyncio and anyio create the task from the test function they find on
    the item at call time): the coroutine function is swapped for one that
    checks at the end of that task, and put back afterwards.
    """
    if not isinstance(item, pytest.Function) or (
        _SCOPE_FIXTURE not in item.fixturenames
    ):
        return (yield)
    test = item.obj
    if inspect.iscoroutinefunction(test):
        item.obj = _checked(test)
        try:
            return (yield)
        finally:
            item.obj = test
    check = no_leaks()
    with _exiting_on_error(check):
        result = yield
    _finish(check)
    return result


@pytest.fixture
def capscope_scope(request: pytest.FixtureRequest) -> Iterator[IsolatedScope]:
    """
    Run the test isolated: every capscope stack empty (or, with the
    `capscope` marker, under its policy and approver), restored afterwards.

    The test fails if it leaves a frame on any stack (built-in, third-party
    or unregistered), with a message naming the stack and its top frame;
    frames a fixture leaves are reported at teardown. Yields the
    `capscope.testing.IsolatedScope` (`leaks()`, `check()`, `scope`).
    """
    policy, approver = _marker_arguments(request.node)
    scope = isolated(policy)  # type: ignore[arg-type]  # checked by isolated()
    with _exiting_on_error(scope):
        if approver is not None:
            request.node.stash[_APPROVER] = approver.install()
    yield scope
    _finish(scope)


@pytest.fixture
def capscope_approver(
    request: pytest.FixtureRequest,
    capscope_scope: IsolatedScope,  # noqa: ARG001 - installs into it
) -> ScriptedApprover:
    """
    The test's `capscope.testing.ScriptedApprover`, installed as the
    approval handler: the marker's `approver=`, or one with no answers
    (which denies every request) until the test sets `answers`.
    """
    approver: ScriptedApprover | None = request.node.stash.get(_APPROVER, None)
    if approver is None:
        approver = ScriptedApprover().install()
        request.node.stash[_APPROVER] = approver
    return approver


@pytest.fixture
def capscope_policy(
    request: pytest.FixtureRequest,
    capscope_scope: IsolatedScope,  # noqa: ARG001 - installs into it
) -> Callable[[object], None]:
    """
    A function that installs a policy for the rest of the test: a dict of
    policy-file tables, or a TOML/JSON file path (relative to the test
    file), pushed over what is there (`capscope.testing.install_policy`,
    so a second call only narrows).
    """

    def install(policy: object) -> None:
        __tracebackhide__ = True
        install_policy(_relative_to_test(policy, request.node))  # type: ignore[arg-type]  # checked by install_policy()

    return install


@pytest.fixture
def capscope_recorder() -> Iterator[Recorder]:
    """
    A `capscope.audit.Recorder` of every decision made from this fixture's
    setup to its teardown: `.decisions`, `denied()`, `allowed()`,
    `asked()`, `for_tool(name)`.
    """
    with Recorder() as recorder:
        yield recorder
