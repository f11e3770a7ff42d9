"""The stack contract (capscope.testing.StackContract): the built-in stacks
keep it, and a broken stack fails it, through a real pytest run."""

from __future__ import annotations

import textwrap

import pytest

from capscope import stacks
from capscope.policies import (
    AutonomyPolicy,
    CapabilityPolicy,
    CommandPolicy,
    DynamicPermissionPolicy,
    LlmRenderContext,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)
from capscope.testing import StackContract

pytest_plugins = ["pytester"]


class TestExecution(StackContract):
    stack = stacks.execution
    values = (
        CapabilityPolicy(tools=("fs.*", "net.*")),
        CapabilityPolicy(tools=("fs.*",)),
    )
    wider = CapabilityPolicy(tools=("*",))
    invalid = "everything"


class TestApproval(StackContract):
    stack = stacks.approval
    values = (ToolApprovalPolicy(timeout=30), ToolApprovalPolicy(timeout=5))
    invalid = "ask"
    # The approval stack narrows by intersection (docs/concepts.md, "What a worker inherits"): a
    # wider request never raises, it is clamped to the outer policy.
    test_widening_raises = None

    def test_a_wider_request_is_clamped(self) -> None:
        wider = ToolApprovalPolicy(timeout=None, allow_external_paths=True)
        with (
            stacks.approval.pushed(self.values[0]),
            stacks.approval.pushed(wider) as stored,
        ):
            assert (30.0, False) == (
                stored.timeout,
                stored.allow_external_paths,
            )


class TestCommand(StackContract):
    stack = stacks.command
    values = (CommandPolicy(allow=("git *",)), CommandPolicy(default="deny"))
    test_widening_raises = None  # every frame must allow: nothing to widen
    invalid = "rm -rf /"


class TestPermissions(StackContract):
    stack = stacks.permissions
    values = (
        DynamicPermissionPolicy(deny=("net.*",)),
        DynamicPermissionPolicy(allow=("fs.*",)),
    )
    test_widening_raises = None  # every frame is checked
    invalid = ("fs.*",)


class TestOverlay(StackContract):
    stack = stacks.overlay
    values = (
        RuntimeContextOverlay(run_id="r-1"),
        RuntimeContextOverlay(worker_id="w-1"),
    )
    test_widening_raises = None  # attribution, not a permission
    invalid = "w-1"


class TestAutonomy(StackContract):
    stack = stacks.autonomy
    values = (
        AutonomyPolicy(tier="act_with_approval"),
        AutonomyPolicy(tier="suggest"),
    )
    wider = AutonomyPolicy(tier="act_auto")
    invalid = "act_auto"


class TestRender(StackContract):
    stack = stacks.render
    values = (LlmRenderContext(model="a"), LlmRenderContext(model="b"))
    test_widening_raises = None  # replaces: not a permission
    invalid = "gpt"


def test_a_broken_stack_fails_the_contract(pytester: pytest.Pytester) -> None:
    """A stack whose codec loses data and whose narrow silently widens
    fails exactly those two checks, with readable messages."""
    pytester.makeini(
        "[pytest]\nasyncio_mode = strict\n"
        "asyncio_default_fixture_loop_scope = function\n"
    )
    pytester.makepyfile(
        test_broken=textwrap.dedent(
            """
            import capscope as cs
            from capscope.testing import StackContract

            lossy = cs.AmbientStack(
                "lossy",
                inherit=cs.Inherit.COPY,
                narrow=lambda outer, new: new,  # never refuses a wider one
                codec=(lambda v: v[:1], lambda d: d),  # keeps one letter
            )

            class TestLossy(StackContract):
                stack = lossy
                values = ("ab", "cd")
                wider = "zz"
                registered = False
            """
        )
    )
    result = pytester.runpytest("-p", "no:cacheprovider", "-q", "-rf")
    result.assert_outcomes(passed=5, failed=2, skipped=2)
    result.stdout.fnmatch_lines(
        [
            "FAILED *TestLossy::test_codec_round_trips*",
            "FAILED *TestLossy::test_widening_raises*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["E *AssertionError: pushing 'zz' inside 'ab' widened"]
    )
