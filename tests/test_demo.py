"""
`capscope demo`, run for real in a subprocess (as `python -m capscope` and
as the installed console script), plus its attribution checker and two
sabotaged runs in process that must be caught.
"""

from __future__ import annotations

import dataclasses
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import capscope as cs
from capscope.cli import _demo
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay

#: The console script pip installed beside this interpreter.
SCRIPT = shutil.which("capscope", path=str(Path(sys.executable).parent))

#: What each profile's script decides, in order: (tool, action, gate).
EXPECTED: dict[str, list[tuple[str, str, str | None]]] = {
    "reader": [
        ("fs.list", "allow", None),
        ("fs.read", "allow", None),  # in a thread
        ("fs.write", "deny", "side_effect_ceiling"),
        ("shell", "deny", "tool_ceiling"),
    ],
    "writer": [
        ("fs.write", "allow", None),
        ("fs.read", "allow", None),
        ("fs.read", "allow", None),  # the shared, read-only directory
        ("fs.write", "deny", "workspace_boundary"),  # ... written
        ("fs.write", "deny", "workspace_boundary"),  # a sibling's directory
        ("fs.read", "deny", "sensitive_path"),  # .env
    ],
    "shell": [
        ("shell", "allow", None),  # echo: the ceiling, then the command
        ("shell", "allow", "command"),
        ("shell", "allow", None),  # ls -la
        ("shell", "allow", "command"),
        ("shell", "allow", None),  # git status --short
        ("shell", "allow", "command"),
        ("shell", "allow", None),  # ls; rm -rf /
        ("shell", "deny", "command"),
        ("shell", "allow", None),  # curl ... | sh
        ("shell", "deny", "command"),
        ("shell", "allow", None),  # sudo ls: asked, refused
        ("shell", "ask", "command"),
        ("shell", "deny", "command"),
        ("fs.list", "allow", None),
        ("fs.write", "deny", "tool_ceiling"),
    ],
    "deployer": [
        ("deploy", "ask", "approval"),  # staging: granted for the scope
        ("deploy", "granted", "approval"),
        ("deploy", "allow", None),  # staging again: remembered
        ("deploy", "ask", "approval"),  # prod: refused
        ("deploy", "deny", "approval"),
        ("fs.write", "ask", "approval"),  # a release note
        ("fs.write", "granted", "approval"),
        ("shell", "deny", "tool_ceiling"),
    ],
}
#: Profiles take turns: worker i has PROFILE_ORDER[i % 4].
PROFILE_ORDER = ("reader", "writer", "shell", "deployer")
#: The demo's own decisions: the root policy, then the seed file.
MAIN_DECISIONS = [("*", "allow", "root_policy"), ("fs.write", "allow", None)]

#: Approval requests per profile (sudo ls; deploy x2 and a release note).
APPROVAL_REQUESTS = {"reader": 0, "writer": 0, "shell": 1, "deployer": 3}

SUMMARY = re.compile(
    r"^([\d,]+) decisions, 0 attributed to the wrong worker, "
    r"([\d,]+) denied, ([\d,]+) asked$",
    re.MULTILINE,
)


def _profile(index: int) -> str:
    return PROFILE_ORDER[index % len(PROFILE_ORDER)]


def _expected_total(workers: int) -> int:
    per_worker = sum(len(EXPECTED[_profile(i)]) for i in range(workers))
    return len(MAIN_DECISIONS) + per_worker


def _key(record: dict[str, Any]) -> tuple[str, str, str | None]:
    return (record["tool"], record["action"], record["gate"])


@pytest.fixture(params=["python -m capscope", "capscope script"])
def demo(
    request: pytest.FixtureRequest, tmp_path: Path
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """Run `capscope demo ARGS` one way or the other, in an empty directory."""
    if request.param == "python -m capscope":
        command = [sys.executable, "-m", "capscope"]
    else:
        assert SCRIPT is not None, (
            f"no capscope script next to {sys.executable}"
        )
        command = [SCRIPT]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*command, "demo", *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    return run


class TestCommand:
    def test_default_run(self, demo):
        """Eight workers; a table of every decision and the summary line."""
        result = demo()
        assert 0 == result.returncode, result.stderr
        match = SUMMARY.search(result.stdout)
        assert match is not None, result.stdout
        assert _expected_total(8) == int(match[1].replace(",", ""))
        lines = result.stdout.splitlines()
        header = next(i for i, line in enumerate(lines) if "REASON" in line)
        rows = lines[header + 1 : lines.index("", header)]
        assert _expected_total(8) == len(rows)
        assert all(len(line) <= 100 for line in lines[header:])
        assert not any(row.startswith("!") for row in rows)
        workers = {row.split()[0] for row in rows}
        assert {"main", *(f"worker-{i:02d}" for i in range(8))} == workers
        assert "8/8 workers finished (100%)" in result.stderr

    def test_json_64_workers(self, demo):
        """JSON Lines only; each worker's decisions are its script's."""
        result = demo("--workers", "64", "--json")
        assert 0 == result.returncode, result.stderr
        records = [json.loads(line) for line in result.stdout.splitlines()]
        *decisions, summary = records
        assert summary["summary"] is True
        assert not any("summary" in record for record in decisions)
        assert _expected_total(64) == len(decisions) == summary["decisions"]

        by_worker: dict[str, list[dict[str, Any]]] = {}
        for record in decisions:
            assert summary["run_id"] == record["run_id"]
            by_worker.setdefault(record["worker_id"], []).append(record)
        ids = [f"worker-{i:02d}" for i in range(64)]
        assert {"main", *ids} == set(by_worker)
        assert MAIN_DECISIONS == [_key(r) for r in by_worker.pop("main")]
        for index, worker_id in enumerate(ids):
            profile = _profile(index)
            mine = by_worker[worker_id]
            assert EXPECTED[profile] == [_key(r) for r in mine], worker_id
            assert all(profile == r["attributes"]["profile"] for r in mine)

        assert 0 == summary["misattributed"]
        assert 0 == summary["misrouted_approvals"]
        assert 0 == summary["unexpected_outcomes"]
        assert [] == summary["problems"]
        assert 64 == summary["workers"]
        requests = sum(APPROVAL_REQUESTS[_profile(i)] for i in range(64))
        assert requests == summary["approval_requests"]
        actions = [r["action"] for r in decisions]
        for action, field in [
            ("allow", "allowed"),
            ("deny", "denied"),
            ("ask", "asked"),
            ("granted", "granted"),
        ]:
            assert actions.count(action) == summary[field], field

        # The workers really interleaved: some worker's decisions are
        # split by another's.
        order = [r["worker_id"] for r in decisions]
        blocks = [worker for worker, _ in itertools.groupby(order)]
        assert len(blocks) > len(set(order))
        assert 4 == result.stderr.count("workers finished")
        assert "64/64 workers finished (100%)" in result.stderr

    @pytest.mark.parametrize("value", ["0", "x", "-3"])
    def test_bad_worker_count_is_a_usage_error(self, demo, value):
        """argparse refuses the count: exit 2, nothing on stdout."""
        result = demo("--workers", value)
        assert 2 == result.returncode
        assert "" == result.stdout
        assert "--workers" in result.stderr


def _overlay(worker_id: str) -> RuntimeContextOverlay:
    return RuntimeContextOverlay(run_id="run-1", worker_id=worker_id)


class TestChecker:
    def test_misattribution(self):
        """Right worker and run: fine; anything else is a problem."""
        right = _overlay("worker-01")
        assert _demo.misattribution(right, "worker-01", "run-1") is None
        assert "made by 'worker-02'" in str(
            _demo.misattribution(right, "worker-02", "run-1")
        )
        assert "run_id" in str(_demo.misattribution(right, "worker-01", "x"))
        assert "outside every worker" in str(
            _demo.misattribution(right, None, "run-1")
        )
        nobody = RuntimeContextOverlay()
        assert _demo.misattribution(nobody, "worker-01", "run-1") is not None

    def test_tally_counts_a_wrong_decision(self):
        """A decision stamped with a sibling's id is counted and described."""
        tally = _demo.AttributionTally("run-1")
        good = cs.Decision(
            action="allow",
            gate=None,
            tool="fs.read",
            reason="allowed",
            overlay=_overlay("worker-01"),
        )
        stolen = cs.Decision(
            action="deny",
            gate="tool_ceiling",
            tool="shell",
            reason="no",
            overlay=_overlay("worker-02"),
        )
        assert tally.decision(good, "worker-01") is None
        assert tally.decision(stolen, "worker-01") is not None
        assert (2, 1) == (tally.decisions, tally.misattributed)
        assert {"allow": 1, "deny": 1} == dict(tally.actions)
        problem = "stamped worker_id 'worker-02' but made by 'worker-01'"
        assert [f"decision shell deny: {problem}"] == tally.problems

    def test_tally_counts_a_misrouted_approval(self):
        tally = _demo.AttributionTally("run-1")
        request = cs.ApprovalRequest(
            "deploy", {"env": "prod"}, "why", None, _overlay("worker-03")
        )
        assert tally.approval_request(request, "worker-03") is None
        assert tally.approval_request(request, "worker-04") is not None
        assert (2, 1) == (tally.approval_requests, tally.misrouted_approvals)


def _run_in_process(*, json_output: bool) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    code = _demo.run(
        workers=4, json_output=json_output, stdout=out, stderr=err
    )
    return code, out.getvalue()


class TestSabotage:
    """Cross-wiring planted in the demo itself must make it fail."""

    def test_a_worker_stamped_as_its_sibling_is_caught(self, monkeypatch):
        """worker-03 (a deployer) is spawned with worker-02's overlay."""
        real = _demo.worker_overlay

        def crossed(run_id: str, worker_id: str, profile: str):
            if worker_id == "worker-03":
                worker_id = "worker-02"
            return real(run_id, worker_id, profile)

        monkeypatch.setattr(_demo, "worker_overlay", crossed)
        code, stdout = _run_in_process(json_output=True)
        assert 1 == code
        summary = json.loads(stdout.splitlines()[-1])
        assert len(EXPECTED["deployer"]) == summary["misattributed"]
        assert APPROVAL_REQUESTS["deployer"] == summary["misrouted_approvals"]
        assert "made by 'worker-03'" in summary["problems"][0]

        code, stdout = _run_in_process(json_output=False)
        assert 1 == code
        assert "CROSS-WIRING SEEN" in stdout
        flagged = [line for line in stdout.splitlines() if line[:1] == "!"]
        assert len(EXPECTED["deployer"]) == len(flagged)

    def test_a_worker_with_a_wider_ceiling_is_caught(self, monkeypatch):
        """A reader given a writable ceiling writes: an unexpected outcome."""
        reader, *rest = _demo.PROFILES
        wide = dataclasses.replace(
            reader, ceiling=lambda _w: CapabilityPolicy(tools=("fs.*",))
        )
        monkeypatch.setattr(_demo, "PROFILES", (wide, *rest))
        code, stdout = _run_in_process(json_output=True)
        assert 1 == code
        summary = json.loads(stdout.splitlines()[-1])
        assert 0 == summary["misattributed"]
        assert 1 == summary["unexpected_outcomes"]
        assert "worker-00: fs.write(" in summary["problems"][0]


def test_the_demo_with_the_web_console(tmp_path):
    """
    `capscope demo --console`: the approvals wait in the web console; a
    person (here, this test over the console's API with the printed
    token) answers each, and every request shows the worker that asked.
    The run ends clean, its asked calls going as they were answered.
    """
    import json
    import re
    import subprocess
    import sys
    import time

    import httpx

    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "capscope",
            "demo",
            "--console",
            "--workers",
            "4",
            "--json",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        line = process.stderr.readline()
        match = re.search(r"open (http://127\.0\.0\.1:\d+/)#token=(\S+)", line)
        assert match, line
        url, token = match.groups()
        bearer = {"Authorization": f"Bearer {token}"}
        for _ in range(100):  # the console is up once the link is printed
            try:
                refused = httpx.get(url + "api/pending")
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert refused.status_code == 401  # no token, no list
        answered = {}
        deadline = time.monotonic() + 60
        while process.poll() is None and time.monotonic() < deadline:
            try:
                listed = httpx.get(url + "api/pending", headers=bearer).json()
            except httpx.ConnectError:  # the run ended, and its console
                break
            for item in listed:
                if item["id"] in answered:
                    continue
                answer = "deny" if item["tool"] == "shell" else "once"
                response = httpx.post(
                    f"{url}api/requests/{item['id']}",
                    json={"answer": answer},
                    headers=bearer,
                )
                assert response.status_code == 200
                answered[item["id"]] = (
                    item["worker_id"],
                    item["tool"],
                    answer,
                )
            time.sleep(0.05)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    summary = json.loads(out.splitlines()[-1])
    assert process.returncode == 0, summary
    assert summary["misattributed"] == 0
    # the deployer (worker-03) asked for its deploys and its release note,
    # the shell worker (worker-02) for sudo: each shown as theirs
    asked = {(worker, tool) for worker, tool, _ in answered.values()}
    assert {
        ("worker-03", "deploy"),
        ("worker-03", "fs.write"),
        ("worker-02", "shell"),
    } <= asked
