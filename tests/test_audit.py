"""The audit sinks: JSON Lines, logging, the overlay filter, the recorder."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import logging
import pickle
import signal
import subprocess
import sys
import threading
import time
from collections import Counter

import pytest

import capscope as cs
from capscope.audit import (
    JsonlSink,
    OverlayFilter,
    Recorder,
    decision_record,
    log_decisions,
)
from capscope.policies import (
    AutonomyPolicy,
    CapabilityPolicy,
    DynamicPermissionPolicy,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)

#: fs.write and deploy are outside this ceiling; fs.read and net.fetch in.
CEILING = CapabilityPolicy(tools=["fs.read", "net.fetch", "deploy"])


@cs.requires_tool("fs.read")
def read(path: str) -> str:
    return f"read {path}"


@cs.requires_tool("fs.write")
def write(path: str, text: str = "") -> None:
    pass


@cs.requires_tool("net.fetch")
async def fetch(url: str) -> str:
    return url


@cs.needs_approval("deploy")
def deploy(env: str, when: object = None) -> str:
    return env


def attributed(run_id: str = "r-1", worker_id: str | None = "w-3"):
    """The ceiling and an overlay, pushed together."""
    return cs.using(
        overlay=RuntimeContextOverlay(run_id=run_id, worker_id=worker_id),
        execution=CEILING,
    )


def denied_write() -> cs.Decision:
    """Call fs.write (refused) and return the refusal's decision."""
    with pytest.raises(cs.ToolDenied) as info:
        write("/srv/ws/x")
    return info.value.decision


def compact(decision: cs.Decision, **kwargs) -> str:
    """The line JsonlSink should write for *decision*."""
    record = decision_record(decision, **kwargs)
    return json.dumps(record, default=str, separators=(",", ":")) + "\n"


class TestDecisionArguments:
    def test_a_gate_that_bound_the_arguments_attaches_them(self):
        """A permissions refusal carries the digest and the values, read-only."""
        with (
            attributed(),
            cs.using(permissions=DynamicPermissionPolicy(deny=["fs.read"])),
            pytest.raises(cs.ToolDenied) as info,
        ):
            read("/srv/secret.txt")
        decision = info.value.decision

        assert decision.args_digest is not None
        assert {"path": "/srv/secret.txt"} == dict(decision.arguments)
        with pytest.raises(TypeError):
            decision.arguments["path"] = "/elsewhere"
        assert "secret" not in repr(decision)

    def test_a_path_refusal_carries_the_arguments(self):
        """A workspace-boundary denial says which call it was about."""
        ceiling = CapabilityPolicy(tools=["fs.*"], workspace_roots=["/srv/ws"])

        @cs.requires_tool("fs.write", paths=("path",))
        def write_file(path: str, text: str) -> None:
            pass

        with cs.using(execution=ceiling), pytest.raises(cs.ToolDenied) as info:
            write_file("/etc/passwd", "x")
        decision = info.value.decision

        assert cs.Gate.WORKSPACE_BOUNDARY == decision.gate
        assert decision.args_digest is not None
        assert {"path": "/etc/passwd", "text": "x"} == dict(decision.arguments)

    def test_the_fast_path_binds_nothing(self):
        """An allowed call under a plain ceiling has neither digest nor values."""
        with Recorder() as rec, attributed():
            read("/srv/a.txt")

        [decision] = rec.for_tool("fs.read")
        assert cs.Action.ALLOW == decision.action
        assert decision.args_digest is None
        assert decision.arguments is None

    def test_values_ride_exactly_where_a_digest_does(self):
        """Ask, grant, deny and propose: arguments iff an args_digest."""
        answers = iter([True, False])
        approval = ToolApprovalPolicy(handler=lambda r: next(answers))
        with Recorder() as rec, attributed(), cs.using(approval=approval):
            deploy("prod")
            with pytest.raises(cs.ApprovalDenied):
                deploy("staging")
            with cs.using(autonomy=AutonomyPolicy(tier="suggest")):
                with pytest.raises(cs.ActionProposed):
                    deploy("dev")
            read("/srv/a.txt")

        digested = [d for d in rec if d.args_digest is not None]
        assert [
            ("ask", "prod"),
            ("granted", "prod"),
            ("ask", "staging"),
            ("deny", "staging"),
            ("proposed", "dev"),
        ] == [(d.action.value, d.arguments["env"]) for d in digested]
        assert all(
            (d.args_digest is None) == (d.arguments is None) for d in rec
        )

    def test_arguments_are_left_out_of_equality_and_pickles(self):
        """A refusal with an unpicklable argument still pickles, without it."""
        lock = threading.Lock()
        with (
            attributed(),
            cs.using(permissions=DynamicPermissionPolicy(deny=["fs.read"])),
            pytest.raises(cs.ToolDenied) as info,
        ):
            read(lock)
        err = info.value

        copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes

        assert lock is err.decision.arguments["path"]
        assert copy.decision.arguments is None
        assert err.decision == copy.decision
        assert err.decision.args_digest == copy.decision.args_digest

    def test_command_decisions_pickle_with_their_own_fields(self):
        """CommandDecision keeps labels and segments through a pickle."""
        decision = cs.events.CommandDecision(
            action="deny",
            gate="command",
            tool="shell",
            reason="catastrophic",
            labels=("catastrophic",),
            segments=(("rm", "-rf", "/"),),
            arguments={"cmd": "rm -rf /"},
        )

        copy = pickle.loads(pickle.dumps(decision))  # noqa: S301 - our own bytes

        assert decision == copy
        assert ("catastrophic",) == copy.labels
        assert copy.arguments is None


class TestDecisionRecord:
    def test_values_only_when_asked(self):
        """decision_record leaves the values out unless arguments=True."""
        approval = ToolApprovalPolicy(handler=lambda r: False)
        with (
            attributed(),
            cs.using(approval=approval),
            pytest.raises(cs.ApprovalDenied) as info,
        ):
            deploy("prod", when=3)
        decision = info.value.decision

        assert "arguments" not in decision_record(decision)
        assert {"env": "prod", "when": 3} == decision_record(
            decision, arguments=True
        )["arguments"]
        assert decision_record(decision)["args_digest"]

    def test_values_are_none_where_nothing_was_bound(self):
        """With arguments=True, an unbound call's record says null."""
        with attributed():
            decision = denied_write()

        assert decision_record(decision, arguments=True)["arguments"] is None


@pytest.fixture
def fast_switching():
    """Switch threads every 10 µs rather than every 5 ms, so that the
    threads' writes really do overlap."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(interval)


class TestJsonlSink:
    def test_one_compact_record_per_line(self):
        """Each line is decision_record as compact JSON, in order."""
        out = io.StringIO()
        with attributed():
            with Recorder() as rec, JsonlSink(out):
                read("/srv/a.txt")
                denied_write()

        assert [compact(d) for d in rec] == out.getvalue().splitlines(
            keepends=True
        )
        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert [("allow", "fs.read"), ("deny", "fs.write")] == [
            (line["action"], line["tool"]) for line in lines
        ]
        assert {"w-3"} == {line["worker_id"] for line in lines}
        assert {"r-1"} == {line["run_id"] for line in lines}

    def test_a_path_is_appended_to_flushed_and_closed(self, tmp_path):
        """By path: append mode, UTF-8, unbuffered: each line readable at
        once; closed."""
        path = tmp_path / "audit.jsonl"
        path.write_text('{"earlier":"line"}\n', encoding="utf-8")
        sink = JsonlSink(path, buffer=None)
        with attributed(worker_id="wörker"), sink:
            read("/srv/a.txt")
            seen_while_open = path.read_text(encoding="utf-8")
            file = sink._file

        lines = path.read_text(encoding="utf-8").splitlines()
        assert 2 == len(seen_while_open.splitlines())
        assert '{"earlier":"line"}' == lines[0]
        assert "wörker" == json.loads(lines[1])["worker_id"]
        assert file is not None
        assert file.closed

    def test_an_open_file_is_written_but_not_closed(self, tmp_path):
        """Given a text file, the sink leaves closing it to its owner."""
        with (
            (tmp_path / "audit.jsonl").open("w", encoding="utf-8") as file,
            attributed(),
        ):
            with JsonlSink(file):
                denied_write()
            assert not file.closed
            file.write("more\n")

        text = (tmp_path / "audit.jsonl").read_text(encoding="utf-8")
        assert ["fs.write", "more"] == [
            json.loads(line)["tool"] if line.startswith("{") else line
            for line in text.splitlines()
        ]

    def test_values_written_only_when_configured(self):
        """arguments="values" writes the bound values; the default does not
        (and a call whose arguments are not JSON has no digest at all)."""
        when = dt.date(2024, 5, 1)
        approval = ToolApprovalPolicy(handler=lambda r: True)
        digest_only, with_values = io.StringIO(), io.StringIO()
        with (
            attributed(),
            cs.using(approval=approval),
            JsonlSink(digest_only),
            JsonlSink(with_values, arguments="values"),
        ):
            deploy("s3cr3t-env")
            deploy("s3cr3t-env", when=when)

        plain = [json.loads(x) for x in digest_only.getvalue().splitlines()]
        full = [json.loads(x) for x in with_values.getvalue().splitlines()]
        assert ["ask", "granted"] * 2 == [line["action"] for line in full]
        assert "s3cr3t" not in digest_only.getvalue()
        assert all("arguments" not in line for line in plain)
        assert [{"env": "s3cr3t-env", "when": None}] * 2 + [
            {"env": "s3cr3t-env", "when": "2024-05-01"}
        ] * 2 == [line["arguments"] for line in full]
        digests = [line["args_digest"] for line in plain]
        assert digests == [line["args_digest"] for line in full]
        assert digests[0]
        assert [digests[0], digests[0], None, None] == digests

    def test_values_json_cannot_hold_are_written_as_text(self):
        """A value even default=str cannot dump still gives a whole line."""
        out = io.StringIO()
        odd = {(1, 2): "tuple key"}
        approval = ToolApprovalPolicy(handler=lambda r: False)
        with (
            attributed(),
            cs.using(approval=approval),
            JsonlSink(out, arguments="values"),
            pytest.raises(cs.ApprovalDenied),
        ):
            deploy("prod", when=odd)

        lines = [json.loads(line) for line in out.getvalue().splitlines()]
        assert 2 == len(lines)
        assert str(odd) == lines[-1]["arguments"]["when"]
        assert "prod" == lines[-1]["arguments"]["env"]

    def test_start_close_and_misuse(self):
        """start() twice raises; close() twice is harmless; it can restart."""
        out = io.StringIO()
        sink = JsonlSink(out).start()
        try:
            with pytest.raises(RuntimeError, match="started already"):
                sink.start()
        finally:
            sink.close()
        sink.close()
        with attributed():
            denied_write()  # not recorded: the sink is closed
            with sink:
                denied_write()

        assert 1 == len(out.getvalue().splitlines())
        assert not cs.events.has_subscribers()
        with pytest.raises(ValueError, match="'digest' or 'values'"):
            JsonlSink(out, arguments="all")

    def test_concurrent_threads_and_tasks_write_whole_lines(
        self, tmp_path, fast_switching
    ):
        """16 threads and 200 asyncio tasks deciding at once: every line
        whole, none lost, each attributed to the worker that decided."""
        threads, thread_calls = 16, 150
        tasks, task_calls = 200, 20
        path = tmp_path / "audit.jsonl"
        go = threading.Event()

        def in_thread(i: int) -> None:
            go.wait()
            # A plain thread starts with no policy: this push is a root
            # push, itself one decision attributed to this worker.
            with cs.using(
                overlay=RuntimeContextOverlay(run_id="run", worker_id=f"t{i}"),
                execution=CEILING,
            ):
                for n in range(thread_calls):
                    if n % 3:
                        read(f"/srv/{i}/{n}")
                    else:
                        denied_write()

        async def in_task(i: int) -> None:
            with cs.using(overlay=RuntimeContextOverlay(worker_id=f"a{i}")):
                for n in range(task_calls):
                    if n % 2:
                        await fetch(f"https://example.com/{i}/{n}")
                    else:
                        denied_write()
                    await asyncio.sleep(0)

        async def main() -> None:
            with cs.using(
                overlay=RuntimeContextOverlay(run_id="run"), execution=CEILING
            ):
                go.set()
                await asyncio.gather(
                    *(cs.spawn(in_task(i)) for i in range(tasks))
                )

        with JsonlSink(path):
            workers = [
                threading.Thread(target=in_thread, args=(i,))
                for i in range(threads)
            ]
            for thread in workers:
                thread.start()
            try:
                asyncio.run(main())
            finally:
                go.set()
                for thread in workers:
                    thread.join()

        text = path.read_text(encoding="utf-8")
        lines = [json.loads(line) for line in text.splitlines()]
        assert text.endswith("\n")
        assert all(isinstance(line, dict) for line in lines)
        # One root push in main, one per thread, then every call.
        assert 1 + threads * (1 + thread_calls) + tasks * task_calls == len(
            lines
        )
        per_worker = Counter(
            line["worker_id"] for line in lines if line["tool"] != "*"
        )
        expected = {f"t{i}": thread_calls for i in range(threads)}
        expected |= {f"a{i}": task_calls for i in range(tasks)}
        assert expected == per_worker
        assert {"run"} == {line["run_id"] for line in lines}
        for line in lines:
            if line["tool"] == "fs.write":
                assert "deny" == line["action"]
            elif line["tool"] in ("fs.read", "net.fetch"):
                assert "allow" == line["action"]
        denials = Counter(
            line["worker_id"] for line in lines if line["action"] == "deny"
        )
        assert thread_calls // 3 == denials["t0"]
        assert task_calls // 2 == denials["a199"]


class TestLogDecisions:
    def test_levels_message_and_extra(self, caplog):
        """Allowed at INFO, refused at WARNING, readable and structured."""
        caplog.set_level(logging.INFO, logger="capscope.audit")
        with attributed():
            stop = log_decisions()
            try:
                read("/srv/a.txt")
                decision = denied_write()
            finally:
                stop()
            read("/srv/after-stop.txt")

        records = [r for r in caplog.records if r.name == "capscope.audit"]
        assert [logging.INFO, logging.WARNING] == [r.levelno for r in records]
        allowed, refused = records
        assert "allow fs.read for worker w-3: allowed" == allowed.getMessage()
        assert (
            f"deny fs.write (tool_ceiling) for worker w-3: {decision.reason}"
            == refused.getMessage()
        )
        assert decision_record(decision) == refused.capscope_decision
        assert ("r-1", "w-3", "-", "-") == (
            refused.run_id,
            refused.worker_id,
            refused.workflow_id,
            refused.stage_id,
        )

    def test_ask_is_logged_at_the_deny_level(self, caplog):
        """An ask holds a call up: deny level; its grant goes ahead: level."""
        caplog.set_level(logging.DEBUG, logger="audit.custom")
        approval = ToolApprovalPolicy(handler=lambda r: True)
        stop = log_decisions(
            logging.getLogger("audit.custom"),
            level=logging.DEBUG,
            deny_level="error",
        )
        try:
            with attributed(worker_id=None), cs.using(approval=approval):
                deploy("prod")
        finally:
            stop()

        records = [
            r
            for r in caplog.records
            if r.name == "audit.custom" and r.capscope_decision["tool"] != "*"
        ]
        assert [
            (logging.ERROR, "ask deploy (approval) for run r-1"),
            (logging.DEBUG, "granted deploy (approval) for run r-1"),
        ] == [(r.levelno, r.getMessage().partition(":")[0]) for r in records]
        assert "arguments" not in records[0].capscope_decision

    def test_a_disabled_level_builds_nothing(self, caplog, monkeypatch):
        """Below the logger's level no record, and no dict, is built."""
        from capscope import audit

        built = []
        monkeypatch.setattr(
            audit, "decision_record", lambda d, **k: built.append(d)
        )
        caplog.set_level(logging.ERROR, logger="capscope.audit")
        stop = log_decisions()
        try:
            with attributed():
                read("/srv/a.txt")
                denied_write()
        finally:
            stop()

        assert [] == [r for r in caplog.records if r.name == "capscope.audit"]
        assert [] == built
        with pytest.raises(ValueError, match="unknown logging level"):
            log_decisions(level="LOUD")

    def test_no_ids_no_subject(self, caplog):
        """A decision for no one names no one."""
        caplog.set_level(logging.INFO, logger="capscope.audit")
        stop = log_decisions()
        try:
            cs.events.emit(
                cs.Decision(action="deny", gate="bridge", tool="t", reason="r")
            )
        finally:
            stop()

        [record] = [r for r in caplog.records if r.name == "capscope.audit"]
        assert "deny t (bridge): r" == record.getMessage()
        assert "-" == record.worker_id


@pytest.fixture
def app_log():
    """A logger "app" whose handler has an OverlayFilter and a format that
    names the ids; yields the handler's output."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(OverlayFilter())
    handler.setFormatter(
        logging.Formatter("%(run_id)s %(worker_id)s %(stage_id)s %(message)s")
    )
    logger = logging.getLogger("app")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield out
    logger.removeHandler(handler)
    logger.setLevel(logging.NOTSET)


class TestOverlayFilter:
    @pytest.mark.asyncio
    async def test_stamps_the_overlay_of_whoever_logged(self, app_log):
        """In a spawned worker, in its thread, and outside any overlay."""
        log = logging.getLogger("app")

        def in_thread() -> None:
            log.info("from the thread")

        async def worker() -> None:
            with cs.using(overlay=RuntimeContextOverlay(worker_id="w-7")):
                log.info("from the worker")
                await cs.to_thread(in_thread)

        log.info("outside")
        with cs.using(overlay=RuntimeContextOverlay(run_id="r-1")):
            await cs.spawn(worker())
            log.info("in the run")

        assert [
            "- - - outside",
            "r-1 w-7 - from the worker",
            "r-1 w-7 - from the thread",
            "r-1 - - in the run",
        ] == app_log.getvalue().splitlines()

    def test_never_overwrites_and_never_drops(self, app_log):
        """Ids passed in extra, or set by log_decisions, are kept."""
        log = logging.getLogger("app")
        stop = log_decisions(log)
        try:
            with cs.using(overlay=RuntimeContextOverlay(worker_id="here")):
                log.info("mine", extra={"worker_id": "explicit"})
                cs.events.emit(
                    cs.Decision(
                        action="deny",
                        gate="bridge",
                        tool="t",
                        reason="r",
                        overlay=RuntimeContextOverlay(worker_id="decided"),
                    )
                )
        finally:
            stop()

        assert [
            "- explicit - mine",
            "- decided - deny t (bridge) for worker decided: r",
        ] == app_log.getvalue().splitlines()

    def test_on_a_logger(self, caplog):
        """On a logger, it stamps the records logged on that logger."""
        caplog.set_level(logging.INFO, logger="app.direct")
        logger = logging.getLogger("app.direct")
        overlay_filter = OverlayFilter()
        logger.addFilter(overlay_filter)
        try:
            with cs.using(
                overlay=RuntimeContextOverlay(stage_id="s-1", worker_id="w")
            ):
                logger.info("hello")
        finally:
            logger.removeFilter(overlay_filter)

        [record] = [r for r in caplog.records if r.name == "app.direct"]
        assert ("s-1", "w", "-", "-") == (
            record.stage_id,
            record.worker_id,
            record.run_id,
            record.workflow_id,
        )
        assert overlay_filter.filter(logging.makeLogRecord({})) is True


class TestRecorder:
    def test_helpers(self):
        """denied, allowed, asked, for_tool, for_worker, len, iter, clear."""
        approval = ToolApprovalPolicy(handler=lambda r: True)
        with attributed(worker_id="w-1"), Recorder() as rec:
            read("/srv/a.txt")
            denied_write()
            with cs.using(
                approval=approval,
                overlay=RuntimeContextOverlay(worker_id="w-2"),
            ):
                deploy("prod")

        assert 4 == len(rec)
        assert ["fs.read"] == [d.tool for d in rec.allowed()]
        assert ["fs.write"] == [d.tool for d in rec.denied()]
        assert ["deploy"] == [d.tool for d in rec.asked()]
        assert ["ask", "granted"] == [
            d.action.value for d in rec.for_tool("deploy")
        ]
        assert ["fs.read", "fs.write"] == [
            d.tool for d in rec.for_worker("w-1")
        ]
        assert 2 == len(rec.for_worker("w-2"))
        assert [] == rec.for_worker(None)
        assert rec.decisions == list(rec)
        assert "<Recorder 4 decisions>" == repr(rec)

        rec.clear()

        assert 0 == len(rec)
        assert [] == rec.decisions

    def test_records_only_while_open(self):
        """Nothing before start or after close; restarting appends."""
        rec = Recorder()
        with attributed():
            denied_write()
            with rec:
                with pytest.raises(RuntimeError, match="started already"):
                    rec.start()
                denied_write()
            read("/srv/a.txt")
            with rec:
                read("/srv/b.txt")

        assert ["deny", "allow"] == [d.action.value for d in rec]
        assert not cs.events.has_subscribers()

    def test_thread_safe(self):
        """Decisions from 16 threads at once are all kept."""
        rec = Recorder()

        def in_thread(i: int) -> None:
            with cs.using(
                overlay=RuntimeContextOverlay(worker_id=f"t{i}"),
                execution=CEILING,
            ):
                for _ in range(200):
                    read("/srv/a.txt")

        with rec:
            workers = [
                threading.Thread(target=in_thread, args=(i,))
                for i in range(16)
            ]
            for thread in workers:
                thread.start()
            for thread in workers:
                thread.join()

        assert 16 * 200 == len(rec.for_tool("fs.read"))
        assert {f"t{i}": 200 for i in range(16)} == Counter(
            d.overlay.worker_id for d in rec.for_tool("fs.read")
        )


# -- buffered JSON Lines (issue 16): written on a timer, never lost on exit ----------

_WRITER = """
import os, signal, sys, time
import capscope as cs
from capscope.audit import JsonlSink
from capscope.policies import CapabilityPolicy

@cs.requires_tool("fs.read", side_effect="read_only")
def read(x):
    return x

sink = JsonlSink(sys.argv[1], buffer=3600).start()  # the timer never fires
with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
    for i in range(500):
        read(i)
how = sys.argv[2]
if how == "sigterm":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # never reached: the default disposition ends it
elif how == "sigterm-handled":
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(7))  # installed after
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)
# "exit": a clean exit, the sink never closed
"""


def tools_in(path) -> list[str]:
    """The tools of the calls logged in *path* (not the root policy's "*")."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [
        record["tool"]
        for record in map(json.loads, lines)
        if record["tool"] != "*"
    ]


class TestBufferedJsonlSink:
    def test_decisions_are_written_on_the_timer(self, tmp_path):
        path = tmp_path / "audit.jsonl"
        with JsonlSink(path, buffer=0.05):
            with attributed():
                read("/srv/a.txt")
            assert "" == path.read_text(encoding="utf-8")  # queued
            deadline = time.monotonic() + 10
            while not path.read_text(encoding="utf-8"):
                assert time.monotonic() < deadline
                time.sleep(0.01)
        assert ["fs.read"] == tools_in(path)

    def test_close_writes_what_is_queued(self, tmp_path):
        path = tmp_path / "audit.jsonl"
        with JsonlSink(path, buffer=3600), attributed(run_id="r-2"):
            for _ in range(100):
                read("/srv/a.txt")
        assert ["fs.read"] * 100 == tools_in(path)
        lines = path.read_text(encoding="utf-8").splitlines()
        assert {"r-2"} == {json.loads(line)["run_id"] for line in lines}

    @pytest.mark.parametrize(
        ("how", "status"),
        [("exit", 0), ("sigterm", -signal.SIGTERM), ("sigterm-handled", 7)],
    )
    def test_nothing_is_lost_on_exit_or_sigterm(self, tmp_path, how, status):
        path = tmp_path / "audit.jsonl"
        done = subprocess.run(
            [sys.executable, "-c", _WRITER, str(path), how],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert status == done.returncode, done.stderr
        assert ["fs.read"] * 500 == tools_in(path)

    def test_values_are_written_as_they_were_when_decided(self, tmp_path):
        path = tmp_path / "audit.jsonl"
        when = ["before"]
        approval = ToolApprovalPolicy(handler=lambda r: True)
        with JsonlSink(path, arguments="values", buffer=3600):
            with attributed(), cs.using(approval=approval):
                deploy("prod", when=when)
            when.append("after")
        last = path.read_text(encoding="utf-8").splitlines()[-1]
        assert ["before"] == json.loads(last)["arguments"]["when"]

    @pytest.mark.parametrize(
        "buffer", [0, -1, float("nan"), float("inf"), "1", True]
    )
    def test_a_bad_buffer_is_refused(self, buffer):
        with pytest.raises(ValueError, match="buffer"):
            JsonlSink(io.StringIO(), buffer=buffer)


class TestLineTemplates:
    """
    A buffered sink writes most lines from a template (the line of an
    earlier decision that says the same, its time cut out). A templated
    line must be exactly the line `decision_record` dumps.
    """

    overlays = (
        RuntimeContextOverlay(),
        RuntimeContextOverlay(run_id="r-1", worker_id='w "1"'),
        RuntimeContextOverlay(attributes={"team": "in\nfra", "é": "ü"}),
    )
    times = (0.0, 1e-07, 0.30000000000000004, 1e22, 1733400000.123456, -5.5)

    @pytest.mark.parametrize("overlay", overlays)
    def test_a_templated_line_is_the_dumped_line(self, overlay):
        from capscope.audit import _line, _templated

        for moment in self.times:
            for action, gate, digest in [
                ("allow", None, None),
                ("deny", "tool_ceiling", "ab12"),
                ("ask", "approval", None),
            ]:
                decision = cs.Decision(
                    action=action,
                    gate=gate,
                    tool="fs.read",
                    reason='said "no"',
                    overlay=overlay,
                    args_digest=digest,
                    time=moment,
                )
                line = _line(decision, arguments=False)
                assert _templated(decision) == line  # learns, then reuses
                assert _templated(decision) == line
                assert json.loads(line)["time"] == moment

    def test_what_no_template_says_is_dumped(self):
        from capscope.audit import _templated

        assert (
            _templated(
                cs.Decision(
                    action="allow",
                    gate=None,
                    tool="t",
                    reason="r",
                    rule="rule 1",
                )
            )
            is None
        )
        assert (
            _templated(
                cs.Decision(
                    action="allow",
                    gate=None,
                    tool="t",
                    reason="r",
                    time=float("nan"),
                )
            )
            is None
        )
        assert (
            _templated(
                cs.Decision(
                    action="allow", gate=None, tool="t", reason="r", time=3
                )
            )
            is None
        )
        assert (
            _templated(
                cs.CommandDecision(
                    action="deny",
                    gate="command",
                    tool="shell",
                    reason="r",
                    line="ls",
                )
            )
            is None
        )

    def test_an_equal_overlay_that_is_another_object_gets_its_own_line(self):
        from capscope.audit import _templated

        def allowed(worker):
            return cs.Decision(
                action="allow",
                gate=None,
                tool="t",
                reason="r",
                overlay=RuntimeContextOverlay(worker_id=worker),
                time=1.0,
            )

        line = _templated(allowed("w-1"))
        line2 = _templated(allowed("w-2"))
        assert json.loads(line)["worker_id"] == "w-1"
        assert json.loads(line2)["worker_id"] == "w-2"

    def test_the_file_holds_each_decisions_record(self, tmp_path):
        target = tmp_path / "audit.jsonl"

        @cs.requires_tool("fs.read")
        def read(path):
            return path

        with (
            cs.using(execution=CapabilityPolicy(tools=("fs.read",))),
            Recorder() as rec,
        ):
            with JsonlSink(target):
                for worker in ("w-1", "w-2", "w-1"):
                    with cs.using(
                        overlay=RuntimeContextOverlay(worker_id=worker)
                    ):
                        read("a")
                        read("a")
        lines = target.read_text().splitlines()
        assert [json.loads(x) for x in lines] == [
            decision_record(d) for d in rec
        ]
