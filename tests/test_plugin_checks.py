"""Third-party stacks in tool and command decisions: `AmbientStack(check=...)`
(issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import attrs
import pytest

import capscope as cs
from capscope.audit import JsonlSink, Recorder, decision_record
from capscope.policies import (
    CapabilityPolicy,
    CommandPolicy,
    ToolApprovalPolicy,
)

UNRESTRICTED = CapabilityPolicy.unrestricted()
BUDGET_SOURCE = Path(__file__).parent / "plugin_dist" / "budget_capscope"


@attrs.frozen
class Budget:
    credits: int

    def narrow(self, inner: Budget) -> Budget:
        return Budget(min(self.credits, inner.credits))

    def verdict(self, call: cs.policies.ToolCall) -> cs.Verdict | None:
        cost = 1 if call.command is not None else call.arguments.get("cost", 1)
        if cost > self.credits:
            return cs.Verdict.deny(f"costs {cost}", gate="over_limit")
        if cost * 2 > self.credits:
            return cs.Verdict.ask(
                f"costs {cost} of {self.credits}", gate="costly"
            )
        return None

    def describe(self) -> str:
        return f"{self.credits} credits"

    def to_dict(self) -> dict[str, int]:
        return {"credits": self.credits}

    @classmethod
    def from_dict(cls, data: object, *, path: str = "t_budget") -> Budget:
        assert isinstance(data, dict)
        return cls(data["credits"])


budget = cs.AmbientStack.for_policy(
    "t_budget", Budget, inherit=cs.Inherit.COPY
)


@cs.needs_approval("spend")
def spend(cost: int) -> str:
    return f"spent {cost}"


@cs.requires_tool("look")
def look() -> str:
    return "looked"


@cs.guards_command(arg="cmd")
def run(cmd: str) -> str:
    return f"ran {cmd}"


def handler_recording(answer: object = True):
    asked: list[cs.ApprovalRequest] = []

    def handler(request: cs.ApprovalRequest) -> object:
        asked.append(request)
        return answer

    return asked, ToolApprovalPolicy(handler=handler)


class TestToolChecks:
    def test_a_deny_refuses_before_anyone_is_asked(self):
        asked, policy = handler_recording()
        with (
            cs.using(execution=UNRESTRICTED, approval=policy),
            budget.pushed(Budget(10)),
            Recorder() as rec,
            pytest.raises(cs.ToolDenied) as raised,
        ):
            spend(12)

        assert [] == asked
        assert cs.Gate("t_budget:over_limit") == raised.value.decision.gate
        assert "t_budget" == raised.value.decision.gate.stack
        assert (
            "t_budget:over_limit" == decision_record(rec.denied()[0])["gate"]
        )

    def test_an_ask_goes_to_the_handler_with_its_gate(self):
        asked, policy = handler_recording(answer=False)
        with (
            cs.using(
                execution=UNRESTRICTED,
                approval=attrs.evolve(
                    policy, rules=[{"action": "allow", "tool": "look"}]
                ),
            ),
            budget.pushed(Budget(1)),
            Recorder() as rec,
            pytest.raises(cs.ApprovalDenied),
        ):
            look()

        assert ["look"] == [request.tool for request in asked]
        assert [cs.Gate("t_budget:costly")] == [d.gate for d in rec.asked()]

    def test_no_opinion_changes_nothing(self):
        with cs.using(execution=UNRESTRICTED), budget.pushed(Budget(100)):
            assert "looked" == look()

    def test_only_stacks_with_a_frame_are_asked(self):
        with cs.using(execution=UNRESTRICTED):
            assert "looked" == look()  # no budget pushed: no opinion

    def test_a_check_cannot_make_a_denied_call_run(self):
        """An allow from a stack never overrides a policy's refusal."""
        always = cs.AmbientStack(
            "t_always",
            inherit=cs.Inherit.COPY,
            check=lambda value, call: cs.Verdict.allow(),
        )
        with (
            cs.using(execution=CapabilityPolicy(tools=("net.*",))),
            always.pushed(True),
            pytest.raises(cs.ToolDenied) as raised,
        ):
            look()

        assert cs.Gate.TOOL_CEILING == raised.value.decision.gate

    @pytest.mark.parametrize(
        "answer",
        [RuntimeError("boom"), "deny", {"action": "deny"}, True],
        ids=["raises", "str", "dict", "bool"],
    )
    def test_a_failing_or_junk_check_refuses(self, answer):
        def check(value, call):
            if isinstance(answer, Exception):
                raise answer
            return answer

        junk = cs.AmbientStack("t_junk", inherit=cs.Inherit.COPY, check=check)
        with (
            cs.using(execution=UNRESTRICTED),
            junk.pushed(1),
            pytest.raises(cs.ToolDenied) as raised,
        ):
            look()

        assert cs.Gate("t_junk:check_failed") == raised.value.decision.gate

    def test_the_dry_run_shows_the_stack_gate(self):
        with cs.using(execution=UNRESTRICTED), budget.pushed(Budget(3)):
            denied = cs.check_tool(spend, 5)
            with budget.pushed(Budget(1)):
                asked = cs.check_tool(look)
            allowed = cs.check_tool(spend, 1)

        assert (cs.Action.DENY, "t_budget:over_limit") == (
            denied.action,
            denied.gate,
        )
        assert (cs.Action.ASK, "t_budget:costly") == (asked.action, asked.gate)
        assert cs.Action.ASK == allowed.action  # needs_approval's own ask
        assert cs.Gate.APPROVAL == allowed.gate

    def test_workers_inherit_the_stack_and_its_check(self):
        import asyncio

        async def child():
            return spend(5)

        async def main():
            with cs.using(execution=UNRESTRICTED), budget.pushed(Budget(3)):
                return await cs.spawn(child())

        with pytest.raises(cs.ToolDenied):
            asyncio.run(main())


class TestCommandChecks:
    def test_a_stack_can_refuse_a_command(self):
        with (
            cs.using(command=CommandPolicy(allow=["ls *"], default="deny")),
            budget.pushed(Budget(0)),
            pytest.raises(cs.CommandBlocked) as raised,
        ):
            run("ls -la")

        assert cs.Gate("t_budget:over_limit") == raised.value.decision.gate

    def test_a_stack_never_softens_a_command_denial(self):
        with budget.pushed(Budget(100)):
            decision = cs.check_command("rm -rf /")

        assert (cs.Action.DENY, cs.Gate.COMMAND) == (
            decision.action,
            decision.gate,
        )

    def test_the_hook_sees_the_line(self):
        seen = []
        spy = cs.AmbientStack(
            "t_spy",
            inherit=cs.Inherit.COPY,
            check=lambda value, call: seen.append(call) or None,
        )
        with spy.pushed(1):
            cs.check_command("sudo ls -la")

        (call,) = seen
        assert "sudo ls -la" == call.command
        assert [["ls", "-l", "-a"]] == call.arguments["command"]  # normalised


class TestGates:
    def test_a_stack_gate_is_a_gate(self):
        gate = cs.Gate("budget:over_limit")

        assert gate is cs.Gate("budget:over_limit")
        assert isinstance(gate, cs.Gate)
        assert "budget:over_limit" == gate.value

    @pytest.mark.parametrize("bad", ["over_limit", "budget:", ":x", "b:Bad"])
    def test_anything_else_is_not(self, bad):
        with pytest.raises(ValueError, match="not a valid Gate"):
            cs.Gate(bad)

    @pytest.mark.parametrize("gate", ["", "Over", "over limit", 3])
    def test_a_verdict_gate_is_checked_when_built(self, gate):
        with pytest.raises(cs.PolicyConfigError, match="gate"):
            cs.Verdict.deny("no", gate=gate)

    def test_the_audit_file_carries_the_stack_gate(self, tmp_path):
        path = tmp_path / "audit.jsonl"
        with (
            cs.using(execution=UNRESTRICTED),
            budget.pushed(Budget(0)),
            JsonlSink(path),
            pytest.raises(cs.ToolDenied),
        ):
            look()

        (record,) = [
            json.loads(line) for line in path.read_text().splitlines()
        ]
        assert ("deny", "t_budget:over_limit") == (
            record["action"],
            record["gate"],
        )


# -- a real distribution, installed with pip -----------------------------------------


@pytest.fixture(scope="module")
def budget_installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """budget-capscope, built and installed by pip into a directory of its
    own (never into this interpreter: its entry point would show up in
    every other test's registry)."""
    target = tmp_path_factory.mktemp("budget_site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(BUDGET_SOURCE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    assert (target / "budget_capscope-0.1.0.dist-info").is_dir()
    return target


def test_an_installed_plugin_refuses_before_the_handler_is_asked(
    budget_installed,
):
    """The must-show of issue 14: a third-party stack, installed as a real
    distribution and found through its entry point, refuses a tool call
    before the approval handler is called, with its own gate in the audit
    record."""
    script = textwrap.dedent(
        """
        import json, capscope as cs
        from capscope.audit import Recorder, decision_record
        from capscope.policies import CapabilityPolicy, ToolApprovalPolicy

        asked = []

        @cs.needs_approval("deploy")
        def deploy(env, cost):
            return "deployed"

        def handler(request):
            asked.append(request.arguments["cost"])
            return True

        out = {}
        # The plugin's data is the first thing capscope reads: its stack
        # is found through the entry point, on that lookup.
        layered = cs.load_policy_data({"budget": {"credits": 5}})
        with layered.installed(), cs.using(
            execution=CapabilityPolicy.unrestricted(),
            approval=ToolApprovalPolicy(handler=handler),
        ), Recorder() as rec:
            try:
                deploy("prod", cost=8)
            except cs.ToolDenied as exc:
                out["refused"] = decision_record(exc.decision)
            out["cheap"] = deploy("prod", cost=1)
        out["asked"] = asked
        out["origin"] = cs.registry.origin("budget")
        out["records"] = [decision_record(d)["gate"] for d in rec]
        print(json.dumps(out))
        """
    )
    env = {**os.environ, "PYTHONPATH": str(budget_installed)}
    env.pop("CAPSCOPE_BLOCKED_STACKS", None)

    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )

    assert 0 == result.returncode, result.stderr
    out = json.loads(result.stdout)
    assert ("deny", "budget:over_limit") == (
        out["refused"]["action"],
        out["refused"]["gate"],
    )
    assert [1] == out["asked"]  # the handler only ever saw the cheap call
    assert "deployed" == out["cheap"]
    assert out["origin"].startswith("budget-capscope 0.1.0")
    assert "budget:over_limit" in out["records"]
