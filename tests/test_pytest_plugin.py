"""
capscope.testing, and the pytest plugin over it, run against real test
files through pytest's `pytester`.

The plugin is registered by the `pytest11` entry point, so every pytest
run in this environment loads it; the inner runs here use their own ini
(strict markers, warnings as errors, pytest-asyncio in strict mode).
"""

from __future__ import annotations

import asyncio
import textwrap
from typing import Any

import pytest

import capscope as cs
from capscope import testing
from capscope.audit import Recorder
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay
from capscope.stacks import approval, execution, overlay, trusted_depth
from capscope.testing import (
    IsolatedScope,
    Leak,
    LeakedFrames,
    ScriptedApprover,
    assert_allowed,
    assert_allowed_async,
    assert_denied,
    assert_denied_async,
    install_policy,
    isolated,
    no_leaks,
)

pytest_plugins = ["pytester"]


@cs.requires_tool("fs.read")
def read(path: str) -> str:
    return f"read {path}"


@cs.requires_tool("fs.write", paths=["path"])
def write(path: str) -> str:
    return f"wrote {path}"


@cs.needs_approval("deploy")
def deploy(env: str) -> str:
    return f"deployed {env}"


@cs.needs_approval("deploy")
async def deploy_async(env: str) -> str:
    await asyncio.sleep(0)
    return f"deployed {env}"


# --- capscope.testing, without pytest's help ------------------------------


class TestModule:
    def test_all_is_sorted(self):
        """__all__ is in ruff's RUF022 order and every name exists."""
        names = testing.__all__

        assert sorted(names, key=lambda n: (not n[0].isupper(), n)) == names
        assert all(hasattr(testing, name) for name in names)

    def test_every_public_name_has_an_example(self):
        """Each public name of capscope.testing documents an example."""
        missing = [
            name
            for name in testing.__all__
            if ">>>" not in (getattr(testing, name).__doc__ or "")
        ]

        assert [] == missing


class TestIsolated:
    def test_block_starts_empty_and_caller_is_restored(self):
        """Inside, every stack is empty; afterwards, the caller's state."""
        ceiling = CapabilityPolicy(tools=["shell"])
        with cs.using(execution=ceiling), trusted_depth.raised():
            with isolated():
                inside = (execution.top(), trusted_depth.value)
            after = (execution.top(), trusted_depth.value)

        assert (None, 0) == inside
        assert (ceiling, 1) == after

    @pytest.mark.parametrize("kind", ["mapping", "toml", "json", "scope"])
    def test_installs_a_policy(self, kind, tmp_path):
        """A policy from a mapping, a TOML or JSON file, or a Scope."""
        data = {"execution": {"tools": ["fs.read"]}}
        source: Any = {
            "mapping": data,
            "scope": cs.load_policy_data(data),
        }.get(kind)
        if kind == "toml":
            source = tmp_path / "p.toml"
            source.write_text('[execution]\ntools = ["fs.read"]\n')
        elif kind == "json":
            source = str(tmp_path / "p.json")
            (tmp_path / "p.json").write_text(
                '{"execution": {"tools": ["fs.read"]}}'
            )
        with isolated(source):
            tools = execution.top().tools
            assert_denied(write, "a", gate="tool_ceiling")

        assert ("fs.read",) == tools

    def test_rejects_other_sources(self):
        """Only mappings, paths and Scopes describe a policy."""
        with pytest.raises(TypeError, match="policy-file data"):
            isolated(CapabilityPolicy())  # type: ignore[arg-type]

    def test_leak_raises_naming_each_stack_and_its_top(self):
        """Built-in, unregistered and counter stacks are all named."""
        tenant = cs.AmbientStack("test_tenant", inherit=cs.Inherit.COPY)

        def leave_frames() -> None:
            with isolated():
                execution.push(CapabilityPolicy(tools=["fs.*"]))
                tenant.push("acme")
                tenant.push("beta")
                trusted_depth.raised().__enter__()

        with pytest.raises(LeakedFrames) as info:
            leave_frames()

        message = str(info.value)
        assert "frames were left on 3 capscope stacks:" in message
        assert "'execution': 1 frame left, top CapabilityPolicy(" in message
        assert "'test_tenant': 2 frames left, top 'beta'" in message
        assert "'trusted_depth' (a counter): left raised by 1" in message
        assert {
            ("execution", 1),
            ("test_tenant", 2),
            ("trusted_depth", 1),
        } == {(leak.stack.name, len(leak.frames)) for leak in info.value.leaks}
        assert (None, None, 0) == (
            execution.top(),
            tenant.top(),
            trusted_depth.value,
        )

    def test_a_stack_made_inside_the_block_is_checked(self):
        """A stack created during the block is watched too."""
        made = []

        def leave_frame() -> None:
            with isolated():
                made.append(
                    cs.AmbientStack("test_late", inherit=cs.Inherit.NONE)
                )
                made[0].push(1)

        with pytest.raises(LeakedFrames, match="'test_late': 1 frame left"):
            leave_frame()

        assert made[0].top() is None

    def test_unwound_stack_is_reported(self):
        """Popping below the block's start is a change too."""
        scope = cs.Scope.empty().pushing(
            {overlay: RuntimeContextOverlay(run_id="r")}
        )
        with pytest.raises(LeakedFrames, match="'overlay': not continuing"):
            with isolated(scope):
                overlay._set(None)

    def test_block_error_propagates_with_the_leaks_as_a_note(self):
        """The block's own exception wins; the leaks are a note on it."""

        def fail() -> None:
            with isolated():
                overlay.push(RuntimeContextOverlay(run_id="r"))
                raise KeyError("boom")

        with pytest.raises(KeyError) as info:
            fail()

        assert any(
            "'overlay': 1 frame left" in n for n in info.value.__notes__
        )
        assert overlay.top() is None

    def test_leaks_and_check_while_active(self):
        """leaks() and check() look at the block so far; outside, an error."""
        with isolated() as iso:
            assert () == iso.leaks()
            with overlay.pushed(RuntimeContextOverlay(run_id="r")):
                assert ["overlay"] == [leak.stack.name for leak in iso.leaks()]
                with pytest.raises(LeakedFrames):
                    iso.check()
            iso.check()

        with pytest.raises(RuntimeError, match="not active"):
            iso.leaks()

    def test_can_not_be_entered_twice_at_once(self):
        """One IsolatedScope is one block at a time."""
        iso = isolated()
        with iso, pytest.raises(RuntimeError, match="already entered"):
            iso.__enter__()

    def test_async_body_in_its_own_task_is_out_of_sight(self):
        """
        Documented limit: a task's context is a copy, so what it leaves there
        is invisible to the block; no_leaks() inside the task sees it.
        """

        async def leaky() -> None:
            overlay.push(RuntimeContextOverlay(run_id="task"))

        async def checked() -> None:
            with no_leaks():
                await leaky()

        with isolated():
            asyncio.run(leaky())
        with isolated(), pytest.raises(LeakedFrames, match="'overlay'"):
            asyncio.run(checked())


class TestNoLeaks:
    def test_sees_the_callers_policies(self):
        """no_leaks() does not isolate."""
        ceiling = CapabilityPolicy(tools=["fs.read"])
        with cs.using(execution=ceiling), no_leaks():
            assert ceiling == execution.top()

    def test_puts_a_leaking_stack_back(self):
        """A leaked frame is reported and removed."""
        with cs.using(execution=CapabilityPolicy(tools=["fs.*"])):
            before = execution.top()
            with pytest.raises(LeakedFrames, match="'execution'"):
                with no_leaks():
                    execution.push(CapabilityPolicy(tools=["fs.read"]))
            after = execution.top()

        assert before is after


class TestInstallPolicy:
    def test_narrows_for_the_rest_of_the_block(self):
        """Kept frames are expected at exit, and dropped."""
        with isolated({"execution": {"tools": ["fs.*"]}}):
            install_policy({"execution": {"tools": ["fs.read"]}})
            assert_allowed(read, "a")
            assert_denied(write, "a", gate="tool_ceiling")

        assert execution.top() is None

    def test_kept_by_every_enclosing_check(self):
        """An inner no_leaks() ending does not forget what the outer keeps."""
        with isolated():
            with no_leaks():
                install_policy({"execution": {"tools": ["fs.read"]}})
            assert ("fs.read",) == execution.top().tools

    def test_widening_raises_and_pushes_nothing(self):
        """A wider request is CeilingExceeded; nothing is left pushed."""
        with isolated({"execution": {"tools": ["fs.read"]}}):
            with pytest.raises(cs.CeilingExceeded):
                install_policy(
                    {
                        "overlay": {"run_id": "r"},
                        "execution": {"tools": ["shell"]},
                    }
                )
            assert (None, 1) == (overlay.top(), execution.depth)

    def test_outside_a_checked_block_is_an_error(self):
        """There is nothing to keep it for."""
        with pytest.raises(RuntimeError, match="isolated"):
            install_policy({"execution": {"tools": ["fs.read"]}})

    def test_one_root_event_for_one_install(self):
        """Loading is muted: the push is the only root_policy decision."""
        with isolated(), Recorder() as rec:
            install_policy({"execution": {"tools": ["fs.read"]}})

        assert ["root_policy"] == [d.gate for d in rec]


class TestScriptedApprover:
    def test_answers_in_order_and_records_requests(self):
        """Lists answer in order: bools, strings, ApprovalDecisions."""
        approver = ScriptedApprover(
            [True, "deny", cs.ApprovalDecision.deny("not today"), "allow"]
        )
        outcomes = []
        with isolated({"execution": {"tools": ["deploy"]}}):
            approver.install()
            for env in ["a", "b", "c", "d"]:
                try:
                    outcomes.append(deploy(env))
                except cs.ApprovalDenied as exc:
                    outcomes.append(str(exc))

        assert [
            "deployed a",
            "denied by the handler",
            "not today",
            "deployed d",
        ] == outcomes
        assert ["a", "b", "c", "d"] == [
            r.arguments["env"] for r in approver.requests
        ]
        assert [] == approver.answers

    def test_running_out_denies_with_a_clear_reason(self):
        """No answer left: denied, the reason says so, kept in unanswered."""
        approver = ScriptedApprover(["allow"])
        with isolated({"execution": {"tools": ["deploy"]}}):
            approver.install()
            deploy("a")
            decision = assert_denied(deploy, "b", gate="approval")

        assert (
            "ScriptedApprover has no answer left for 'deploy'"
            in decision.reason
        )
        assert "(request 2; 1 answers were scripted)" in decision.reason
        assert ["b"] == [r.arguments["env"] for r in approver.unanswered]

    def test_function_answers(self):
        """A function answers each request; strings are read as answers."""
        approver = ScriptedApprover(
            lambda r: "allow" if r.arguments["env"] == "dev" else "deny"
        )
        with cs.using(
            execution=CapabilityPolicy(tools=["deploy"]),
            approval=approver.policy(),
        ):
            assert "deployed dev" == assert_allowed(deploy, "dev")
            assert_denied(deploy, "prod", gate="approval")

    def test_answers_can_be_set_later(self):
        """Setting answers scripts a new list."""
        approver = ScriptedApprover()
        approver.answers = ["allow"]

        assert ["allow"] == approver.answers
        assert "1 answers left" in repr(approver)

    @pytest.mark.parametrize(
        ("answers", "match"),
        [("allow", r"did you mean \['allow'\]"), ([1], "answer 0 is 1")],
    )
    def test_bad_scripts_are_refused(self, answers, match):
        """Only the answers capscope reads clearly are accepted."""
        with pytest.raises(TypeError, match=match):
            ScriptedApprover(answers)

    def test_serves_async_calls(self):
        """A sync handler answers an async tool call (in a thread)."""
        approver = ScriptedApprover(["allow", "deny"])

        async def main() -> list[str]:
            with cs.using(
                execution=CapabilityPolicy(tools=["deploy"]),
                approval=approver.policy(timeout=5),
            ):
                first = await assert_allowed_async(deploy_async, "a")
                decision = await assert_denied_async(deploy_async, "b")
                return [first, decision.gate]

        assert ["deployed a", "approval"] == asyncio.run(main())
        assert 2 == len(approver.requests)

    def test_install_keeps_the_outer_rules(self):
        """Pushed over a policy, the approver keeps its rules."""
        data = {
            "execution": {"tools": ["deploy", "fs.read"]},
            "approval": {"rules": [{"action": "deny", "tool": "fs.read"}]},
        }
        with isolated(data):
            approver = ScriptedApprover(["allow"]).install()
            assert approval.top().handler is approver
            assert_denied(read, "a", gate="approval")
            assert_allowed(deploy, "x")


class TestAssertions:
    def test_denied_returns_the_decision(self):
        """The refusing Decision comes back."""
        with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
            decision = assert_denied(write, "a.txt")

        assert ("deny", "tool_ceiling", "fs.write") == (
            decision.action,
            decision.gate,
            decision.tool,
        )

    def test_denied_but_allowed_says_what_it_returned(self):
        """Allowed instead: the message names the tool, gate and result."""
        with cs.using(execution=CapabilityPolicy(tools=["fs.*"])):
            with pytest.raises(AssertionError) as info:
                assert_denied(write, "a.txt", gate="tool_ceiling")

        assert (
            "expected fs.write to be denied at gate 'tool_ceiling' but it "
            "was allowed (returned 'wrote a.txt')"
        ) == str(info.value)

    def test_denied_at_another_gate_says_which(self, tmp_path):
        """Another gate: the message names it and gives the reason."""
        ceiling = CapabilityPolicy(
            tools=["fs.*"], workspace_roots=[str(tmp_path / "ws")]
        )
        with cs.using(execution=ceiling):
            with pytest.raises(AssertionError) as info:
                assert_denied(write, "/etc/passwd", gate="tool_ceiling")

        message = str(info.value)
        assert message.startswith(
            "expected fs.write to be denied at gate 'tool_ceiling' but it "
            "was denied at 'workspace_boundary': "
        )

    def test_denied_but_raised_something_else(self):
        """Another exception: the message names it."""

        def broken() -> None:
            raise ValueError("boom")

        with pytest.raises(
            AssertionError, match=r"raised ValueError\('boom'\)"
        ):
            assert_denied(broken)

    def test_denied_without_a_decision(self):
        """A PolicyDenied raised by hand carries no decision."""

        def refuse() -> None:
            raise cs.ToolDenied("by hand")

        with pytest.raises(AssertionError, match="no decision attached"):
            assert_denied(refuse)

    def test_unknown_gate_is_an_error(self):
        """A typo in the gate is not a silent pass."""
        with pytest.raises(ValueError, match="tool_celing"):
            assert_denied(read, "a", gate="tool_celing")

    def test_async_function_needs_the_async_helper(self):
        """The coroutine is closed (no warning) and the error says why."""
        with pytest.raises(TypeError, match="assert_denied_async"):
            assert_denied(deploy_async, "a")
        with pytest.raises(TypeError, match="assert_allowed_async"):
            assert_allowed(deploy_async, "a")

    def test_generator_must_be_stepped(self):
        """A generator's check has not run when it is returned."""

        @cs.requires_tool("fs.read")
        def lines():
            yield "x"

        with pytest.raises(TypeError, match="first step"):
            assert_denied(lines)
        assert_denied(lambda: next(lines()), gate="no_policy")

    def test_allowed_but_denied_names_gate_and_reason(self):
        """A refusal fails with the gate and the reason."""
        with pytest.raises(AssertionError) as info:
            assert_allowed(read, "a")

        assert str(info.value).startswith(
            "expected fs.read to be allowed but it was denied at 'no_policy': "
        )

    def test_allowed_lets_body_errors_through(self):
        """The call was allowed; the body's own error propagates."""

        @cs.requires_tool("fs.read")
        def broken() -> None:
            raise ValueError("body")

        with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
            with pytest.raises(ValueError, match="body"):
                assert_allowed(broken)

    def test_async_helpers(self):
        """The async forms await the call."""

        async def main() -> None:
            with pytest.raises(AssertionError, match="to be denied"):
                await assert_denied_async(read, "a.txt")
            with pytest.raises(AssertionError, match="to be allowed"):
                await assert_allowed_async(deploy_async, "x")

        with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
            asyncio.run(main())


# --- the pytest plugin, on real test files --------------------------------

INI = """\
[pytest]
addopts = --strict-markers -p no:cacheprovider
asyncio_mode = strict
asyncio_default_fixture_loop_scope = function
filterwarnings = error
"""

PRELUDE = """\
import asyncio

import pytest
import pytest_asyncio

import capscope as cs
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay
from capscope.stacks import approval, execution, overlay
from capscope.testing import assert_allowed, assert_denied


@cs.requires_tool("fs.read")
def read(path):
    return f"read {path}"


@cs.requires_tool("fs.write")
def write(path):
    return f"wrote {path}"


@cs.needs_approval("deploy")
def deploy(env):
    return f"deployed {env}"


@cs.needs_approval("deploy")
async def deploy_async(env):
    await asyncio.sleep(0)
    return f"deployed {env}"
"""


@pytest.fixture
def tester(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester directory with the ini the inner runs use."""
    pytester.makeini(INI)
    return pytester


def write_tests(
    tester: pytest.Pytester, body: str, name: str = "test_it"
) -> None:
    tester.makepyfile(**{name: PRELUDE + textwrap.dedent(body)})


class TestPluginLoading:
    def test_entry_point_loads_it_in_a_fresh_process(self, tester):
        """Installed capscope is enough: pytest loads the plugin."""
        write_tests(
            tester,
            """
            def test_it(capscope_scope):
                assert execution.top() is None
            """,
        )

        result = tester.runpytest_subprocess()

        result.stdout.fnmatch_lines(["plugins:*capscope*"])
        result.assert_outcomes(passed=1)

    def test_marker_is_registered(self, tester):
        """--strict-markers knows the marker, and --markers documents it."""
        result = tester.runpytest("--markers")

        result.stdout.fnmatch_lines(
            ["@pytest.mark.capscope(policy=None, approver=None):*"]
        )

    def test_nothing_happens_unless_asked(self, tester):
        """No autouse: a test that uses no capscope fixture is not checked."""
        write_tests(
            tester,
            """
            def test_leaks_unchecked():
                execution.push(CapabilityPolicy(tools=["fs.*"]))

            def test_sees_the_leak():
                assert execution.top() is not None
            """,
        )

        # A subprocess: these tests really leave the frame behind.
        result = tester.runpytest_subprocess()

        result.assert_outcomes(passed=2)


class TestScopeFixture:
    def test_isolates_from_outer_fixtures(self, tester):
        """Policies pushed before the test are out of sight, then back."""
        tester.makeconftest(
            """
            import pytest
            import capscope as cs
            from capscope.policies import CapabilityPolicy

            @pytest.fixture(autouse=True)
            def outer():
                with cs.using(execution=CapabilityPolicy(tools=["shell"])):
                    yield
            """
        )
        write_tests(
            tester,
            """
            def test_isolated(capscope_scope):
                assert execution.top() is None
                assert capscope_scope.leaks() == ()

            def test_not_isolated():
                assert execution.top().tools == ("shell",)
            """,
        )

        tester.runpytest().assert_outcomes(passed=2)

    def test_sync_leak_fails_the_test_naming_the_stack(self, tester):
        """A frame left by a sync test fails it, naming stack and top."""
        write_tests(
            tester,
            """
            def test_leaks(capscope_scope):
                execution.push(CapabilityPolicy(tools=["fs.*"]))

            def test_next_starts_clean():
                assert execution.top() is None
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(
            [
                "*_ test_leaks _*",
                "frames were left on 1 capscope stack:",
                "  'execution': 1 frame left, top CapabilityPolicy(tools=*fs.**",
                "FAILED test_it.py::test_leaks - Failed: frames were left*",
            ]
        )

    def test_async_leak_fails_the_test_under_pytest_asyncio(self, tester):
        """
        A frame an async test leaves in its own task's context is seen too:
        the test fails (in its call, not at teardown).
        """
        write_tests(
            tester,
            """
            @pytest.mark.asyncio
            async def test_leaks(capscope_scope):
                await asyncio.sleep(0)
                overlay.push(RuntimeContextOverlay(worker_id="w-1"))

            class TestInAClass:
                @pytest.mark.asyncio
                async def test_leaks_too(self, capscope_scope):
                    overlay.push(RuntimeContextOverlay(worker_id="w-2"))

            @pytest.mark.asyncio
            async def test_clean(capscope_scope):
                with cs.using(overlay=RuntimeContextOverlay(worker_id="w-3")):
                    await asyncio.sleep(0)
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(passed=1, failed=2)
        result.stdout.fnmatch_lines(
            [
                "*_ test_leaks _*",
                "  'overlay': 1 frame left, top RuntimeContextOverlay(*w-1*",
                "*_ TestInAClass.test_leaks_too _*",
                "  'overlay': 1 frame left, top RuntimeContextOverlay(*w-2*",
            ]
        )
        assert "ERROR" not in result.stdout.str()

    def test_async_leak_fails_the_test_under_anyio(self, tester):
        """anyio's plugin runs the test function it finds: it is checked."""
        write_tests(
            tester,
            """
            @pytest.fixture
            def anyio_backend():
                return "asyncio"

            @pytest.mark.anyio
            async def test_leaks(capscope_scope):
                overlay.push(RuntimeContextOverlay(worker_id="w-1"))
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["  'overlay': 1 frame left, *w-1*"])

    def test_unregistered_stacks_and_counters_are_named(self, tester):
        """Every stack is watched, whoever made it."""
        write_tests(
            tester,
            """
            tenant = cs.AmbientStack("inner_tenant", inherit=cs.Inherit.COPY)

            def test_leaks(capscope_scope):
                tenant.push("acme")
                cs.stacks.trusted_depth.raised().__enter__()
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            [
                "frames were left on 2 capscope stacks:",
                "  'trusted_depth' (a counter): left raised by 1",
                "  'inner_tenant': 1 frame left, top 'acme'",
            ]
        )

    def test_fixture_leak_is_an_error_at_teardown(self, tester):
        """A fixture's leftover frame is reported when the scope ends."""
        write_tests(
            tester,
            """
            @pytest.fixture
            def leaky(capscope_scope):
                overlay.push(RuntimeContextOverlay(run_id="fixture"))
                yield

            def test_it(leaky):
                pass
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(passed=1, errors=1)
        result.stdout.fnmatch_lines(
            [
                "*ERROR at teardown of test_it*",
                "  'overlay': 1 frame left, top RuntimeContextOverlay(*fixture*",
            ]
        )

    def test_fixture_that_pops_is_fine(self, tester):
        """Frames a fixture pops at teardown, sync or async, are no leak."""
        write_tests(
            tester,
            """
            @pytest.fixture
            def ceiling(capscope_scope):
                with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
                    yield

            @pytest_asyncio.fixture
            async def attribution(capscope_scope):
                with cs.using(overlay=RuntimeContextOverlay(run_id="r")):
                    yield

            def test_sync(ceiling):
                assert_allowed(read, "a")

            @pytest.mark.asyncio
            async def test_async(ceiling, attribution):
                assert cs.current_overlay().run_id == "r"
                assert_allowed(read, "a")
            """,
        )

        tester.runpytest().assert_outcomes(passed=2)

    def test_async_limits_are_as_documented(self, tester):
        """
        docs/testing.md: what an async test can hide. Frames a task the
        test starts leaves, and frames an async fixture leaves, are not
        reported, and do not reach the next test either.
        """
        write_tests(
            tester,
            """
            @pytest_asyncio.fixture
            async def leaky_async_fixture(capscope_scope):
                overlay.push(RuntimeContextOverlay(run_id="fixture"))
                yield

            @pytest.mark.asyncio
            async def test_task_leak_unseen(capscope_scope):
                async def child():
                    overlay.push(RuntimeContextOverlay(run_id="child"))

                await asyncio.create_task(child())

            @pytest.mark.asyncio
            async def test_async_fixture_leak_unseen(leaky_async_fixture):
                assert overlay.top().run_id == "fixture"

            def test_next_starts_clean():
                assert overlay.top() is None
            """,
        )

        tester.runpytest().assert_outcomes(passed=3)

    def test_asyncio_auto_mode_is_checked_too(self, tester):
        """Unmarked async tests of auto mode go through the same call."""
        write_tests(
            tester,
            """
            async def test_leaks(capscope_scope):
                overlay.push(RuntimeContextOverlay(run_id="auto"))
            """,
        )

        result = tester.runpytest("-o", "asyncio_mode=auto")

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(["  'overlay': 1 frame left, *auto*"])

    def test_a_failing_test_keeps_its_error_and_notes_the_leak(self, tester):
        """The test's own failure is shown, with the leak as a note."""
        write_tests(
            tester,
            """
            def test_it(capscope_scope):
                overlay.push(RuntimeContextOverlay(run_id="r"))
                assert 1 == 2
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(failed=1)
        result.stdout.fnmatch_lines(
            ["E       assert 1 == 2", "E         'overlay': 1 frame left*"]
        )


class TestPolicyFixture:
    def test_from_a_dict_then_narrowed(self, tester):
        """A dict installs; a second call narrows; wider raises."""
        write_tests(
            tester,
            """
            def test_it(capscope_policy):
                capscope_policy({"execution": {"tools": ["fs.*"]}})
                assert_allowed(write, "a")
                capscope_policy({"execution": {"tools": ["fs.read"]}})
                assert_denied(write, "a", gate="tool_ceiling")
                with pytest.raises(cs.CeilingExceeded):
                    capscope_policy({"execution": {"tools": ["shell"]}})
            """,
        )

        tester.runpytest().assert_outcomes(passed=1)

    def test_from_files(self, tester):
        """A path relative to the test file, or absolute; TOML or JSON."""
        sub = tester.mkpydir("sub")
        (sub / "policy.toml").write_text('[execution]\ntools = ["fs.read"]\n')
        (tester.path / "policy.json").write_text(
            '{"command": {"allow": ["ls *"], "default": "deny"}}'
        )
        tester.makepyfile(
            **{
                "sub/test_files": PRELUDE
                + textwrap.dedent(
                    """
                    import pathlib

                    def test_it(capscope_policy):
                        capscope_policy("policy.toml")
                        json = pathlib.Path(__file__).parent.parent / "policy.json"
                        capscope_policy(json)
                        assert_allowed(read, "a")
                        assert_denied(write, "a", gate="tool_ceiling")
                        assert cs.check_command("rm x").action == "deny"

                    def test_bad_file(capscope_policy, tmp_path):
                        bad = tmp_path / "bad.toml"
                        bad.write_text("[execution]\\ntools = 3\\n")
                        with pytest.raises(cs.PolicyFileError, match="bad.toml"):
                            capscope_policy(bad)
                    """
                )
            }
        )

        tester.runpytest().assert_outcomes(passed=2)

    def test_in_an_async_test(self, tester):
        """Installed in the test's task: expected there, gone at teardown."""
        write_tests(
            tester,
            """
            @pytest.mark.asyncio
            async def test_it(capscope_policy, capscope_scope):
                capscope_policy({"execution": {"tools": ["fs.read"]}})
                await asyncio.sleep(0)
                assert_allowed(read, "a")
                assert capscope_scope.leaks() == ()
            """,
        )

        tester.runpytest().assert_outcomes(passed=1)


class TestApproverFixture:
    def test_answers_set_by_the_test(self, tester):
        """Until answers are set it denies; then it answers and records."""
        write_tests(
            tester,
            """
            def test_it(capscope_policy, capscope_approver):
                capscope_policy({"execution": {"tools": ["deploy"]}})
                decision = assert_denied(deploy, "a", gate="approval")
                assert "no answer left" in decision.reason
                capscope_approver.answers = ["allow"]
                assert assert_allowed(deploy, "b") == "deployed b"
                assert [r.arguments["env"] for r in capscope_approver.requests] == ["a", "b"]

            @pytest.mark.asyncio
            async def test_async(capscope_policy, capscope_approver):
                capscope_policy({"execution": {"tools": ["deploy"]}})
                capscope_approver.answers = ["allow"]
                assert await deploy_async("x") == "deployed x"
            """,
        )

        tester.runpytest().assert_outcomes(passed=2)


class TestRecorderFixture:
    def test_sees_the_decisions(self, tester):
        """Allowed and denied calls of the test are recorded."""
        write_tests(
            tester,
            """
            @pytest.mark.capscope(policy={"execution": {"tools": ["fs.read"]}})
            def test_it(capscope_recorder):
                read("a")
                with pytest.raises(cs.ToolDenied):
                    write("b")
                assert [d.tool for d in capscope_recorder.allowed()] == ["fs.read"]
                assert [(d.tool, d.gate) for d in capscope_recorder.denied()] == [
                    ("fs.write", "tool_ceiling")
                ]
            """,
        )

        tester.runpytest().assert_outcomes(passed=1)


class TestMarker:
    def test_installs_policy_and_approver(self, tester):
        """The marker alone: no fixture argument needed."""
        write_tests(
            tester,
            """
            @pytest.mark.capscope(
                policy={"execution": {"tools": ["deploy", "fs.read"]}},
                approver=["allow", "deny"],
            )
            def test_it():
                assert_allowed(read, "a")
                assert_denied(write, "a", gate="tool_ceiling")
                assert_allowed(deploy, "staging")
                assert_denied(deploy, "prod", gate="approval")

            @pytest.mark.capscope(approver=lambda request: request.arguments["env"] == "dev")
            def test_function(capscope_policy, capscope_approver):
                capscope_policy({"execution": {"tools": ["deploy"]}})
                assert_allowed(deploy, "dev")
                assert_denied(deploy, "prod", gate="approval")
                assert len(capscope_approver.requests) == 2
            """,
        )

        tester.runpytest().assert_outcomes(passed=2)

    def test_marker_leak_check_and_isolation(self, tester):
        """A marked test is isolated and leak-checked like capscope_scope."""
        write_tests(
            tester,
            """
            @pytest.mark.capscope(policy={"execution": {"tools": ["fs.read"]}})
            def test_leaks():
                overlay.push(RuntimeContextOverlay(run_id="r"))

            def test_after():
                assert execution.top() is None and overlay.top() is None
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(passed=1, failed=1)
        result.stdout.fnmatch_lines(["  'overlay': 1 frame left*"])

    def test_policy_file_relative_to_the_test_file(self, tester):
        """policy="x.toml" is found beside the test file."""
        sub = tester.mkpydir("sub")
        (sub / "policy.toml").write_text('[execution]\ntools = ["fs.read"]\n')
        tester.makepyfile(
            **{
                "sub/test_marked": PRELUDE
                + textwrap.dedent(
                    """
                    @pytest.mark.capscope(policy="policy.toml")
                    def test_it():
                        assert_allowed(read, "a")
                    """
                )
            }
        )

        tester.runpytest().assert_outcomes(passed=1)

    def test_only_the_marked_parameter_is_isolated(self, tester):
        """A marker on one pytest.param leaves its siblings alone."""
        write_tests(
            tester,
            """
            marked = pytest.mark.capscope(policy={"execution": {"tools": ["fs.read"]}})

            @pytest.mark.parametrize("x", [pytest.param(1, marks=marked), 2])
            def test_it(x, request):
                assert ("capscope_scope" in request.fixturenames) == (x == 1)
            """,
        )

        tester.runpytest().assert_outcomes(passed=2)

    def test_bad_arguments_are_an_error(self, tester):
        """Unknown keywords and positional arguments are refused."""
        write_tests(
            tester,
            """
            @pytest.mark.capscope({"execution": {}})
            def test_positional():
                pass

            @pytest.mark.capscope(polcy={})
            def test_typo():
                pass
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(errors=2)
        result.stdout.fnmatch_lines(
            ["*takes the keywords policy= and approver= only*"]
        )


class TestAssertionMessagesInPytest:
    def test_failures_read_well(self, tester):
        """The output says what happened instead."""
        write_tests(
            tester,
            """
            @pytest.mark.capscope(policy={"execution": {"tools": ["fs.*"]}})
            def test_allowed_instead():
                assert_denied(write, "a.txt", gate="tool_ceiling")

            @pytest.mark.capscope(policy={"execution": {"tools": ["fs.read"]}})
            def test_denied_instead():
                assert_allowed(write, "a.txt")
            """,
        )

        result = tester.runpytest()

        result.assert_outcomes(failed=2)
        result.stdout.fnmatch_lines(
            [
                '>       assert_denied(write, "a.txt", gate="tool_ceiling")',
                (
                    "E       AssertionError: expected fs.write to be denied at"
                    " gate 'tool_ceiling' but it was allowed (returned"
                    " 'wrote a.txt')"
                ),
                '>       assert_allowed(write, "a.txt")',
                (
                    "E       AssertionError: expected fs.write to be allowed"
                    " but it was denied at 'tool_ceiling': *"
                ),
            ]
        )


def test_leak_type_reads_well():
    """Leak and IsolatedScope have readable reprs and strings."""
    stack = cs.AmbientStack("test_leak_str", inherit=cs.Inherit.COPY)

    assert "'test_leak_str': 2 frames left, top 'b'" == str(
        Leak(stack, ("a", "b"))
    )
    assert str(Leak(stack, (), unwound=True)).endswith("now 0 frames, empty")
    assert repr(isolated()).startswith("<IsolatedScope of <Scope")
    assert isinstance(isolated(), IsolatedScope)
