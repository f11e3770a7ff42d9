"""
The contract every ambient stack keeps, as a reusable test base.

A third-party stack subclasses `StackContract` in its own test suite
(pytest collects the subclass's inherited `test_*` methods) and gets the
same checks capscope runs on its built-in stacks.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Sequence
from typing import Any, ClassVar

from ._ambient import AmbientStack, Inherit
from ._exceptions import CapscopeError, CeilingExceeded
from ._registry import registry
from ._scope import Scope
from ._tasks import spawn, to_thread

__all__ = ["StackContract"]

_UNSET: Any = object()


class StackContract:
    """
    The contract of an `AmbientStack`, as tests: subclass it (the name
    starting with `Test`) and set the class attributes.

    Attributes:
        stack: The stack under test.
        values: Two or more distinct values that can be pushed one inside
            the other, outer first (each narrower than or equal to the one
            before, for a stack that narrows).
        wider: A value wider than `values[0]`, whose push inside it must
            raise `CeilingExceeded` (leave unset for a stack that does not
            narrow: the check is then skipped, and says so).
        invalid: A value the stack must refuse at the push (a wrong type,
            say); unset skips that check.
        registered: Whether the stack must be in `capscope.registry` under
            its name (for an entry-point stack, after loading them).

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import StackContract
        >>> tenant = cs.AmbientStack("doc_contract_tenant", inherit=cs.Inherit.COPY, codec=(str, str))
        >>> class TestTenant(StackContract):
        ...     stack = tenant
        ...     values = ("acme", "acme-eu")
        ...     registered = False
        >>> TestTenant().test_push_pop_restores()
        >>> TestTenant().test_codec_round_trips()
    """

    stack: ClassVar[AmbientStack[Any]]
    values: ClassVar[Sequence[Any]]
    wider: ClassVar[Any] = _UNSET
    invalid: ClassVar[Any] = _UNSET
    registered: ClassVar[bool] = True

    # -- helpers ---------------------------------------------------------------

    def _values(self) -> Sequence[Any]:
        values = self.values
        assert len(values) >= 2, "set `values` to two or more pushable values"  # noqa: S101, PLR2004 - a test base
        return values

    @staticmethod
    def _skip(reason: str) -> None:
        import pytest  # a pytest-only outcome: imported only when needed

        pytest.skip(reason)

    # -- the contract -------------------------------------------------------------

    def test_is_registered_under_its_name(self) -> None:
        """The registry hands out this very stack under its name."""
        if not self.registered:
            self._skip("registered = False: not looked up in the registry")
        assert registry.get(self.stack.name) is self.stack  # noqa: S101

    def test_push_pop_restores(self) -> None:
        """Nested pushes read back innermost first; popping restores."""
        outer, inner = self._values()[:2]
        stack = self.stack
        before = stack.frames()
        with stack.pushed(outer) as stored_outer:
            assert stack.top() == stored_outer  # noqa: S101
            with stack.pushed(inner) as stored_inner:
                assert stack.top() == stored_inner  # noqa: S101
                assert stack.depth == len(before) + 2  # noqa: S101
            assert stack.top() == stored_outer  # noqa: S101
        assert stack.frames() == before  # noqa: S101

    def test_tasks_are_isolated(self) -> None:
        """Interleaving tasks each read back only their own value."""
        stack, values = self.stack, self._values()

        async def task(value: Any) -> bool:
            with stack.pushed(value) as stored:
                for _ in range(5):
                    await asyncio.sleep(0)  # the others run here
                    if stack.top() != stored:
                        return False
            return True

        async def main() -> list[bool]:
            tasks = [asyncio.create_task(task(v)) for v in values]
            return list(await asyncio.gather(*tasks))

        assert all(Scope.empty().run(asyncio.run, main()))  # noqa: S101

    def test_threads_started_through_capscope_carry_it(self) -> None:
        """`capscope.to_thread` carries the stack; a new thread starts empty."""
        stack, value = self.stack, self._values()[0]
        seen: list[Any] = []

        async def main() -> Any:
            with stack.pushed(value) as stored:
                carried = await to_thread(stack.top)
                plain = threading.Thread(
                    target=lambda: seen.append(stack.top())
                )
                plain.start()
                plain.join()
                return carried == stored

        assert Scope.empty().run(asyncio.run, main())  # noqa: S101
        assert seen == [None]  # noqa: S101

    def test_a_worker_gets_what_its_inherit_mode_says(self) -> None:
        """COPY: every frame; TOP: one frame (through `to_worker`); NONE: none."""
        stack = self.stack
        outer, inner = self._values()[:2]

        def capture() -> None:
            with stack.pushed(outer), stack.pushed(inner):
                here = stack.frames()
                got = Scope.capture_inherited()[stack]
            if stack.inherit is Inherit.COPY:
                assert got == here  # noqa: S101
            elif stack.inherit is Inherit.TOP:
                assert len(got) == 1  # noqa: S101
            else:
                assert got == ()  # noqa: S101

        Scope.empty().run(capture)

    def test_a_spawned_worker_starts_from_that_capture(self) -> None:
        """`capscope.spawn` installs the worker capture in the new task."""
        stack, value = self.stack, self._values()[0]

        async def main() -> bool:
            with stack.pushed(value):
                expected = Scope.capture_inherited()[stack]

                async def worker() -> tuple[Any, ...]:
                    return tuple(stack.frames())

                got = await spawn(worker())
                return bool(got == expected)

        assert Scope.empty().run(asyncio.run, main())  # noqa: S101

    def test_codec_round_trips(self) -> None:
        """What the codec writes is JSON, and reads back as the same value."""
        codec = self.stack.codec
        if codec is None:
            self._skip("no codec: the stack never travels")
            return
        for value in self._values():
            stored = Scope.empty().run(_pushed_value, self.stack, value)
            data = json.loads(json.dumps(codec.to_data(stored)))
            assert codec.from_data(data) == stored  # noqa: S101

    def test_widening_raises(self) -> None:
        """A push wider than the outer value raises `CeilingExceeded`."""
        if self.wider is _UNSET:
            self._skip("no `wider` value: the stack does not narrow")
        stack = self.stack

        def push() -> None:
            with stack.pushed(self._values()[0]):
                try:
                    token = stack.push(self.wider)
                except CeilingExceeded:
                    return
                stack.pop(token)
                msg = f"pushing {self.wider!r} inside {self._values()[0]!r} widened"
                raise AssertionError(msg)

        Scope.empty().run(push)

    def test_an_invalid_value_is_refused_at_the_push(self) -> None:
        """A value the stack cannot hold is an error at the push, not later."""
        if self.invalid is _UNSET:
            self._skip("no `invalid` value given")
        stack = self.stack

        def push() -> None:
            try:
                token = stack.push(self.invalid)
            except (TypeError, ValueError, CapscopeError):
                return
            stack.pop(token)
            msg = f"the stack accepted {self.invalid!r}"
            raise AssertionError(msg)

        Scope.empty().run(push)


def _pushed_value(stack: AmbientStack[Any], value: Any) -> Any:
    """*value* as the stack stores it at the root (its `narrow` applied)."""
    with stack.pushed(value) as stored:
        return stored
