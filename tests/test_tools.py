"""End to end: the public decorators over the real engine."""

from __future__ import annotations

import asyncio
import inspect

import pytest
import trio
import trio.lowlevel

import capscope as cs
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)
from capscope.stacks import approval, execution, overlay

ALLOW = CapabilityPolicy(tools=("fs.*",))
DENY = CapabilityPolicy(tools=("net.*",))


@cs.requires_tool("fs.read", side_effect="read_only")
def read(path: str = "a") -> str:
    """Read a file."""
    return f"read {path}"


@cs.requires_tool("fs.read", side_effect="read_only")
async def aread(path: str = "a") -> str:
    await asyncio.sleep(0)
    return f"aread {path}"


@cs.requires_tool("fs.list", side_effect="read_only")
def listing(n: int):
    yield from range(n)


@cs.requires_tool("fs.list", side_effect="read_only")
async def alisting(n: int):
    for i in range(n):
        yield i


class Files:
    @cs.requires_tool("fs.read", side_effect="read_only")
    def method(self, path: str) -> str:
        return path

    @cs.requires_tool("fs.read", side_effect="read_only")
    @classmethod
    def klass(cls, path: str) -> str:
        return path

    @staticmethod
    @cs.requires_tool("fs.read", side_effect="read_only")
    def static(path: str) -> str:
        return path


async def _collect(agen):
    return [item async for item in agen]


CALLS = {
    "sync": read,
    "coroutine": lambda: asyncio.run(aread()),
    "generator": lambda: list(listing(2)),
    "async generator": lambda: asyncio.run(_collect(alisting(2))),
    "method": lambda: Files().method("p"),
    "classmethod": lambda: Files.klass("p"),
    "staticmethod": lambda: Files.static("p"),
}


class TestEveryKind:
    @pytest.mark.parametrize("kind", list(CALLS))
    def test_allowed_and_denied(self, kind):
        """Each callable kind runs under an allowing ceiling and is refused
        under a denying one, and with none at all."""
        with execution.pushed(ALLOW):
            assert CALLS[kind]() is not None
        with execution.pushed(DENY), pytest.raises(cs.ToolDenied):
            CALLS[kind]()
        with pytest.raises(cs.NoPolicyInstalled):
            CALLS[kind]()

    def test_introspection_is_kept(self):
        """inspect sees through the decorators."""
        assert inspect.iscoroutinefunction(aread)
        assert inspect.isgeneratorfunction(listing)
        assert inspect.isasyncgenfunction(alisting)
        assert "(path: 'str' = 'a') -> 'str'" == str(inspect.signature(read))
        assert ("read", "Read a file.") == (read.__name__, read.__doc__)
        assert callable(read.__wrapped__)

    def test_the_awaiting_scope_decides(self):
        """A coroutine created under one scope is checked where awaited."""

        async def main() -> None:
            with execution.pushed(ALLOW):
                pending = aread()
            with execution.pushed(DENY), pytest.raises(cs.ToolDenied):
                await pending
            with execution.pushed(DENY):
                pending = aread()
            with execution.pushed(ALLOW):
                assert "aread a" == await pending

        asyncio.run(main())

    def test_generator_checked_at_first_next(self):
        """A generator is checked when first stepped, by the consumer."""
        gen = listing(1)
        with execution.pushed(ALLOW):
            assert [0] == list(gen)

    def test_trio_worker(self):
        """Under trio, workers keep their parent's ceiling."""

        @cs.requires_tool("fs.read", side_effect="read_only")
        async def tread(path: str) -> str:
            await trio.lowlevel.checkpoint()
            return f"tread {path}"

        async def child(out: list) -> None:
            out.append(await tread("t"))

        async def main() -> list:
            out: list = []
            with execution.pushed(ALLOW):
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(cs.worker, child(out))
            return out

        assert ["tread t"] == trio.run(main)


class TestCheckToolAndSpec:
    def test_check_tool_is_a_dry_run(self):
        """check_tool decides without running or asking."""
        asked = []

        @cs.needs_approval()
        def deploy(env: str = "prod") -> None:
            raise AssertionError("must not run")  # pragma: no cover

        with (
            execution.pushed(ALLOW.intersect(CapabilityPolicy())),
            approval.pushed(
                ToolApprovalPolicy(handler=lambda r: asked.append(r) or True)
            ),
        ):
            decision = cs.check_tool(deploy)
        assert cs.Action.DENY == decision.action  # "deploy" is not fs.*
        with (
            execution.pushed(CapabilityPolicy.unrestricted()),
            approval.pushed(
                ToolApprovalPolicy(handler=lambda r: asked.append(r) or True)
            ),
        ):
            assert cs.Action.ASK == cs.check_tool(deploy, "dev").action
            assert cs.Action.ALLOW == cs.check_tool("fs.read", path="x").action
            assert cs.Action.ALLOW == cs.check_tool(Files().method, "p").action
        assert [] == asked

    def test_tool_spec(self):
        """tool_spec reads what a callable requires."""
        spec = cs.tool_spec(Files().method)

        assert ("fs.read", cs.policies.Level.READ_ONLY) == (
            spec.name,
            spec.side_effect,
        )
        assert cs.tool_spec(listing).name == "fs.list"
        with pytest.raises(TypeError):
            cs.tool_spec(print)


class TestApprovalEndToEnd:
    def test_remembered_approval_per_worker(self):
        """Each worker's remembered answer is its own."""
        asked: list[str] = []

        @cs.needs_approval(reason="deploys cost money")
        async def deploy(env: str = "prod") -> str:
            return env

        async def child(name: str) -> None:
            def handler(request):
                asked.append(request.overlay.worker_id)
                assert "deploys cost money" == request.reason
                return cs.ApprovalDecision.allow(remember="scope")

            with (
                approval.pushed(ToolApprovalPolicy(handler=handler)),
                overlay.pushed(RuntimeContextOverlay(worker_id=name)),
            ):
                await deploy()
                await deploy()

        async def main() -> None:
            with execution.pushed(CapabilityPolicy.unrestricted()):
                await asyncio.gather(
                    cs.spawn(child("a")), cs.spawn(child("b"))
                )

        asyncio.run(main())
        assert ["a", "b"] == sorted(asked)

    def test_authored_rule_denies_by_path(self, tmp_path):
        """An approval rule on a path argument refuses the call."""

        @cs.requires_tool(
            "fs.write", side_effect="workspace_write", paths=("path",)
        )
        def write(path: str) -> str:
            return path

        rule = ApprovalRule(action="deny", path=f"{tmp_path}/secret/*")
        with (
            execution.pushed(CapabilityPolicy(workspace_roots=[tmp_path])),
            approval.pushed(
                ToolApprovalPolicy(rules=[rule], external_roots=[tmp_path])
            ),
        ):
            assert write(str(tmp_path / "ok")).endswith("ok")
            with pytest.raises(cs.ApprovalDenied):
                write(str(tmp_path / "secret" / "x"))
