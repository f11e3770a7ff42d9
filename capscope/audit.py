"""
Audit: where decisions go once they are made.

Every decision capscope makes is a `capscope.Decision` event
(`capscope.events`). This module turns those events into an audit trail:
`log_decisions` sends them to the standard `logging` module, `JsonlSink`
appends them to a JSON Lines file, and `Recorder` keeps them in memory for
tests. `OverlayFilter` stamps the attribution ids on an application's own
log records, so they line up with the decisions.

`decision_record` is the one JSON form of a decision, shared by every
sink and by `capscope demo --json`: attribution ids at the top level,
arguments as a digest (their values only when a sink is configured to
write them).

Examples:
    >>> import capscope as cs
    >>> from capscope.audit import decision_record
    >>> from capscope.policies import RuntimeContextOverlay
    >>> d = cs.Decision(action="deny", gate="tool_ceiling", tool="shell", reason="not in the ceiling", overlay=RuntimeContextOverlay(run_id="r-1", worker_id="w-2"))
    >>> record = decision_record(d)
    >>> record["action"], record["gate"], record["worker_id"], record["run_id"]
    ('deny', 'tool_ceiling', 'w-2', 'r-1')
"""

from __future__ import annotations

import atexit
import collections
import json
import logging
import math
import os
import signal
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import IO, Any, Literal, Self

from . import events
from ._current import current_overlay
from .events import Action, CommandDecision, Decision
from .policies.overlay import RuntimeContextOverlay

__all__ = [
    "JsonlSink",
    "OverlayFilter",
    "Recorder",
    "decision_from_record",
    "decision_record",
    "log_decisions",
]

_ID_FIELDS = ("run_id", "workflow_id", "stage_id", "worker_id")

#: What `OverlayFilter` and `log_decisions` stamp for an unset id.
_MISSING = "-"

#: The actions that let a call go ahead; every other one stopped it or
#: held it up, and is logged at the deny level.
_GO_AHEAD = frozenset({Action.ALLOW, Action.GRANTED})


def _rule(rule: object) -> Any:
    """A rule as JSON-able data: its `to_dict()` when it has one, else text."""
    if rule is None or isinstance(rule, str | int | float | bool):
        return rule
    to_dict = getattr(rule, "to_dict", None)
    if callable(to_dict):
        return to_dict()
    return str(rule)


def decision_record(
    decision: Decision, *, arguments: bool = False
) -> dict[str, Any]:
    """
    One decision as a flat JSON-able dict: `time`, `action`, `gate`,
    `tool`, `reason`, `rule`, the four attribution ids (`run_id`,
    `workflow_id`, `stage_id`, `worker_id`; `None` when unset),
    `attributes`, `args_digest`, and for a command decision its `line`
    (as typed), `labels` and `segments`.

    With *arguments* true it also holds `arguments`: the bound argument
    values (`decision.arguments`, or `None` where no gate bound them), as
    given. They are whatever the tool was passed, so dump the record with
    `default=str` (as `JsonlSink` does).

    Examples:
        >>> import capscope as cs
        >>> from capscope.audit import decision_record
        >>> decision_record(cs.Decision(action="allow", gate=None, tool="fs.read", reason="allowed", time=0.0))
        {'time': 0.0, 'action': 'allow', 'gate': None, 'tool': 'fs.read', 'reason': 'allowed', 'rule': None, 'run_id': None, 'workflow_id': None, 'stage_id': None, 'worker_id': None, 'attributes': {}, 'args_digest': None}
        >>> d = cs.Decision(action="ask", gate="approval", tool="deploy", reason="r", args_digest="ab12", arguments={"env": "prod"})
        >>> decision_record(d, arguments=True)["arguments"]
        {'env': 'prod'}
    """
    overlay = decision.overlay
    record: dict[str, Any] = {
        "time": decision.time,
        "action": decision.action.value,
        "gate": None if decision.gate is None else decision.gate.value,
        "tool": decision.tool,
        "reason": decision.reason,
        "rule": _rule(decision.rule),
    }
    for name in _ID_FIELDS:
        record[name] = getattr(overlay, name)
    record["attributes"] = dict(overlay.attributes)
    record["args_digest"] = decision.args_digest
    if arguments:
        values = decision.arguments
        record["arguments"] = None if values is None else dict(values)
    if isinstance(decision, CommandDecision):
        record["line"] = decision.line
        record["labels"] = list(decision.labels)
        record["segments"] = [list(s) for s in decision.segments]
    return record


def decision_from_record(record: Mapping[str, Any]) -> Decision:
    """
    The `Decision` (or `CommandDecision`, when the record has a `line`)
    that `decision_record` wrote *record* from: how a decision that
    crossed a JSON boundary (a Celery result, a log line) is read back.
    The rule stays as recorded (its `to_dict()`, or its text).

    Raises:
        ValueError: *record* is not a decision record (the message names
            the field).

    Examples:
        >>> import capscope as cs
        >>> from capscope.audit import decision_from_record, decision_record
        >>> d = cs.Decision(action="deny", gate="tool_ceiling", tool="fs.write", reason="outside")
        >>> decision_from_record(decision_record(d)) == d
        True
    """
    if not isinstance(record, Mapping):
        msg = f"a decision record is a mapping, not {type(record).__name__}"
        raise TypeError(msg)
    try:
        overlay = RuntimeContextOverlay(
            **{name: record.get(name) for name in _ID_FIELDS},
            attributes=record.get("attributes") or {},
        )
        common: dict[str, Any] = {
            "action": record["action"],
            "gate": record.get("gate"),
            "tool": record["tool"],
            "reason": record["reason"],
            "rule": record.get("rule"),
            "overlay": overlay,
            "args_digest": record.get("args_digest"),
            "time": record["time"],
        }
        if "line" in record:
            return CommandDecision(
                **common,
                line=record["line"],
                labels=tuple(record.get("labels") or ()),
                segments=tuple(
                    tuple(segment) for segment in record.get("segments") or ()
                ),
            )
        return Decision(**common)
    except KeyError as exc:
        msg = f"a decision record without its {exc.args[0]!r} field"
        raise ValueError(msg) from None


# -- logging --------------------------------------------------------------------


def _level(value: int | str) -> int:
    """A logging level given as a number or a name (`"INFO"`)."""
    if isinstance(value, int):
        return value
    try:
        return logging.getLevelNamesMapping()[value.upper()]
    except KeyError:
        msg = f"unknown logging level {value!r}"
        raise ValueError(msg) from None


def _subject(decision: Decision) -> str:
    """Whom the decision was for: its innermost attribution id, in words."""
    overlay = decision.overlay
    for name, label in (
        ("worker_id", "worker"),
        ("stage_id", "stage"),
        ("workflow_id", "workflow"),
        ("run_id", "run"),
    ):
        value = getattr(overlay, name)
        if value is not None:
            return f" for {label} {value}"
    return ""


def log_decisions(
    logger: logging.Logger | str | None = None,
    *,
    level: int | str = logging.INFO,
    deny_level: int | str = logging.WARNING,
) -> Callable[[], None]:
    """
    Log every decision from now on; returns a function that stops it.

    Decisions that let a call go ahead (`allow`, `granted`) are logged at
    *level*; those that stopped or held one up (`deny`, `ask`, `proposed`,
    `skipped`) at *deny_level*. The message reads
    `"deny fs.write (tool_ceiling) for worker w-3: <reason>"`, naming the
    innermost attribution id that is set. Each record also carries, as
    attributes (as if passed in `extra`):

    - `capscope_decision`: the `decision_record` dict (no argument values);
    - `run_id`, `workflow_id`, `stage_id`, `worker_id`: the decision's
      attribution ids, `"-"` when unset (as `OverlayFilter` stamps them,
      so one format string serves both).

    The record is logged in the thread and task that made the decision.

    Args:
        logger: The logger, or its name; default `"capscope.audit"`.
        level: The level of decisions that let a call go ahead.
        deny_level: The level of every other decision.

    Examples:
        >>> import logging, capscope as cs
        >>> from capscope.audit import log_decisions
        >>> stop = log_decisions("doc.audit")
        >>> logging.getLogger("doc.audit").isEnabledFor(logging.WARNING)
        True
        >>> stop()
    """
    log = (
        logger
        if isinstance(logger, logging.Logger)
        else logging.getLogger("capscope.audit" if logger is None else logger)
    )
    go_level, stop_level = _level(level), _level(deny_level)

    def sink(decision: Decision) -> None:
        at = go_level if decision.action in _GO_AHEAD else stop_level
        if not log.isEnabledFor(at):
            return  # build nothing for a record no one would see
        gate = "" if decision.gate is None else f" ({decision.gate.value})"
        extra: dict[str, Any] = {
            "capscope_decision": decision_record(decision)
        }
        for name in _ID_FIELDS:
            value = getattr(decision.overlay, name)
            extra[name] = _MISSING if value is None else value
        log.log(
            at,
            "%s %s%s%s: %s",
            decision.action.value,
            decision.tool,
            gate,
            _subject(decision),
            decision.reason,
            extra=extra,
        )

    return events.subscribe(sink)


class OverlayFilter(logging.Filter):
    """
    A logging filter that stamps the attribution in force
    (`capscope.current_overlay()`) on every record that passes through it:
    `run_id`, `workflow_id`, `stage_id` and `worker_id`, each the id or
    `"-"` when unset, so a format string such as `"%(worker_id)s"` never
    fails. It never drops a record, and never overwrites an attribute the
    record already has (one passed in `extra`, or one `log_decisions` set).

    Put it on a **handler** to stamp every record that handler emits,
    whichever logger it came from; on a logger it sees only the records
    logged on that very logger, not those propagated from its children
    (the `logging` module's rule). Filters run where the record is made, so
    the ids are those of the thread and task that logged it.

    Examples:
        >>> import logging, capscope as cs
        >>> from capscope.audit import OverlayFilter
        >>> from capscope.policies import RuntimeContextOverlay
        >>> record = logging.makeLogRecord({"msg": "hello"})
        >>> with cs.using(overlay=RuntimeContextOverlay(worker_id="w-1")):
        ...     OverlayFilter().filter(record)
        True
        >>> record.worker_id, record.run_id
        ('w-1', '-')
    """

    def filter(self, record: logging.LogRecord) -> bool:
        """Stamp the missing ids on *record*; always keep it."""
        fields = record.__dict__
        missing = [name for name in _ID_FIELDS if name not in fields]
        if missing:
            overlay = current_overlay()
            for name in missing:
                value = getattr(overlay, name)
                fields[name] = _MISSING if value is None else value
        return True


# -- subscribing sinks ----------------------------------------------------------


class _Subscribed:
    """
    A sink that receives decisions while it is open: `start()` subscribes,
    `close()` unsubscribes, and `with` does both.
    """

    _unsubscribe: Callable[[], None] | None = None

    def _receive(self, decision: Decision) -> None:
        raise NotImplementedError

    def _open(self) -> None:
        """Get ready to receive (before subscribing)."""

    def _release(self) -> None:
        """Let go of what `_open` took (after unsubscribing)."""

    def start(self) -> Self:
        """
        Subscribe; returns the sink itself.

        Raises:
            RuntimeError: It is started already.
        """
        if self._unsubscribe is not None:
            msg = f"{type(self).__name__} is started already"
            raise RuntimeError(msg)
        self._open()
        self._unsubscribe = events.subscribe(self._receive)
        return self

    def close(self) -> None:
        """Unsubscribe (a no-op when not started); it may be started again."""
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()
            self._release()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _dumps(record: dict[str, Any]) -> str:
    """*record* as one line of compact JSON, newline included."""
    return json.dumps(record, default=str, separators=(",", ":")) + "\n"


def _line(decision: Decision, *, arguments: bool) -> str:
    """*decision*'s `decision_record` as a line (`_dumps`)."""
    record = decision_record(decision, arguments=arguments)
    try:
        return _dumps(record)
    except (TypeError, ValueError, RecursionError):
        # Only argument values can defeat default=str (a dict keyed by
        # tuples, a cycle): keep the line, each value as text.
        values = record.get("arguments")
        if not values:
            raise
        record["arguments"] = {k: str(v) for k, v in values.items()}
        return _dumps(record)


#: The line of a decision without its time, per what else it says (the
#: overlay by identity, held so that its id is not reused while cached):
#: most decisions repeat one another but for the time, and `_dumps` is
#: most of what writing one costs.
_TEMPLATES: dict[tuple[Any, ...], tuple[RuntimeContextOverlay, str]] = {}
_TEMPLATES_MAX = 1024
_TIME = '{"time":'


def _templated(decision: Decision) -> str | None:
    """
    `_line` of *decision* (its arguments left out) from a template, or
    `None` for one no template can say: a rule, a command's segments, a
    time that is not a finite float. A template is the line `_dumps`
    wrote for an earlier decision, its time cut out.
    """
    moment = decision.time
    if (
        decision.rule is not None
        or type(decision) is not Decision
        or type(moment) is not float
        or not math.isfinite(moment)
    ):
        return None
    overlay = decision.overlay
    key = (
        decision.action,
        decision.gate,
        decision.tool,
        decision.reason,
        decision.args_digest,
        id(overlay),
    )
    hit = _TEMPLATES.get(key)
    if hit is not None and hit[0] is overlay:
        return f"{_TIME}{moment!r},{hit[1]}"
    line = _line(decision, arguments=False)
    head = f"{_TIME}{moment!r},"
    if line.startswith(head):
        if len(_TEMPLATES) >= _TEMPLATES_MAX:
            _TEMPLATES.clear()  # atomic, unlike evicting one by one
        _TEMPLATES[key] = (overlay, line[len(head) :])
    return line


class JsonlSink(_Subscribed):
    """
    Append every decision, while open, to a JSON Lines file: one
    `decision_record` per line, as compact JSON.

    By default the sink is buffered: a decision is queued (an allowed call
    pays for little more than the `Decision` itself) and a writer thread
    writes and flushes what is queued every *buffer* seconds, and when the
    sink closes. Nothing is lost on a clean exit or on `SIGTERM`: open
    sinks are drained at interpreter exit, and while one is open capscope
    drains them on `SIGTERM` before the signal's previous disposition runs
    (a handler you installed is called; the default one still ends the
    process). A `SIGKILL` or a crash of the interpreter loses at most the
    last *buffer* seconds: with `buffer=None` each line is written (and,
    with *flush*, flushed) before the call goes on, as an audit trail that
    must survive those too wants.

    Safe with concurrent writers: decisions made at once in many threads
    and tasks come out as whole lines, none lost or interleaved. A decision
    made while the sink closes may be left out. A failing write (a full
    disk) is logged on `capscope.audit` (buffered) or by
    `capscope.events` like any subscriber's error (unbuffered); the
    decision stands.

    Args:
        target: A path, opened when the sink starts (appending, UTF-8) and
            closed when it closes; or an open text file, which is written
            but never closed.
        arguments: `"digest"` (the default) writes only each call's
            `args_digest`; `"values"` also writes the bound argument values
            (`"arguments"`, `null` where no gate bound them), each value
            that is not JSON written as its `str()`. Values are written as
            they were when decided: the line is built at once (only the
            write waits).
        buffer: Seconds a decision may wait before it is written (`None`:
            none; written in the deciding thread).
        flush: With `buffer=None`, whether to flush after every line.

    Raises:
        ValueError: *arguments* is neither `"digest"` nor `"values"`, or
            *buffer* is not a positive number of seconds or `None`.

    Examples:
        >>> import io, json, capscope as cs
        >>> from capscope.audit import JsonlSink
        >>> out = io.StringIO()
        >>> with JsonlSink(out):
        ...     cs.events.emit(cs.Decision(action="deny", gate="tool_ceiling", tool="shell", reason="no"))
        >>> json.loads(out.getvalue())["tool"]
        'shell'
    """

    def __init__(
        self,
        target: str | os.PathLike[str] | IO[str],
        *,
        arguments: Literal["digest", "values"] = "digest",
        buffer: float | None = 0.2,
        flush: bool = True,
    ) -> None:
        if arguments not in ("digest", "values"):
            msg = f"arguments must be 'digest' or 'values', not {arguments!r}"
            raise ValueError(msg)
        if buffer is not None and (
            isinstance(buffer, bool)
            or not isinstance(buffer, int | float)
            or not 0 < buffer < float("inf")
        ):
            msg = f"buffer must be a positive number of seconds or None, not {buffer!r}"
            raise ValueError(msg)
        self._target = target
        self._values = arguments == "values"
        self._buffer = buffer
        self._flush = flush
        self._file: IO[str] | None = None
        self._owned = isinstance(target, str | os.PathLike)
        # Why a lock: the subscriber runs in whichever thread decided, and
        # a text file's write() is not atomic across threads.
        self._lock = threading.Lock()
        # Buffered: decisions (or, with values, their lines) waiting to be
        # written. deque.append and popleft are atomic: no lock to queue.
        self._queue: collections.deque[Decision | str] = collections.deque()
        self._wake = threading.Event()
        self._writer: threading.Thread | None = None

    def __repr__(self) -> str:
        target = self._target
        name = target if self._owned else getattr(target, "name", "stream")
        return f"<JsonlSink {name}>"

    def _open(self) -> None:
        target = self._target
        if isinstance(target, str | os.PathLike):
            file: IO[str] = open(target, "a", encoding="utf-8")  # noqa: PTH123, SIM115 - closed by close()
        else:
            file = target
        with self._lock:
            self._file = file
        if self._buffer is not None:
            self._wake.clear()
            self._writer = threading.Thread(
                target=self._write_periodically,
                name=f"capscope {self!r}",
                daemon=True,
            )
            self._writer.start()
            _draining.add(self)
            _drain_on_sigterm()

    def _release(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            self._wake.set()
            writer.join()
            _draining.discard(self)
        self.drain()
        with self._lock:
            file, self._file = self._file, None
        if file is not None and self._owned:
            file.close()

    def _line(self, decision: Decision) -> str:
        if not self._values:
            line = _templated(decision)
            if line is not None:
                return line
        return _line(decision, arguments=self._values)

    def _receive(self, decision: Decision) -> None:
        if self._buffer is not None:
            # A decision is immutable; argument values are not, so their
            # line is built now.
            self._queue.append(
                self._line(decision) if self._values else decision
            )
            return
        line = self._line(decision)
        with self._lock:
            file = self._file
            if file is None:
                return  # closed while this decision was on its way
            file.write(line)
            if self._flush:
                file.flush()

    def drain(self) -> None:
        """
        Write and flush every queued decision now (buffered sinks; a
        no-op otherwise). Called by the writer thread, `close()`, at exit
        and on `SIGTERM`.
        """
        queue = self._queue
        if not queue:
            return
        with self._lock:
            file = self._file
            lines = []
            while queue:
                item = queue.popleft()
                try:
                    lines.append(
                        item if isinstance(item, str) else self._line(item)
                    )
                except Exception:  # one bad record must not lose the rest
                    _logger.exception(
                        "capscope.audit: a decision could not be written"
                    )
            if file is None or not lines:
                return
            try:
                file.write("".join(lines))
                file.flush()
            except Exception:
                _logger.exception("capscope.audit: writing %r failed", self)

    def _write_periodically(self) -> None:
        assert self._buffer is not None  # noqa: S101 - started only buffered
        while not self._wake.wait(self._buffer):
            self.drain()


_logger = logging.getLogger("capscope.audit")

# -- draining at exit and on SIGTERM --------------------------------------------------

#: The buffered sinks open now (weakly: one dropped unclosed is not kept).
_draining: weakref.WeakSet[JsonlSink] = weakref.WeakSet()
_sigterm_lock = threading.Lock()
_sigterm_installed = False


def _drain_all() -> None:
    for sink in list(_draining):
        sink.drain()


atexit.register(_drain_all)


def _drain_on_sigterm() -> None:
    """
    Once per process, from the main thread: drain the open sinks on
    SIGTERM, then let the signal's previous disposition act (call the
    previous handler, or end the process as the default one would).
    """
    global _sigterm_installed  # noqa: PLW0603 - once per process
    if threading.current_thread() is not threading.main_thread():
        return  # signal handlers are set from the main thread only
    with _sigterm_lock:
        if _sigterm_installed:
            return
        previous = signal.getsignal(signal.SIGTERM)

        def on_sigterm(signum: int, frame: FrameType | None) -> None:
            _drain_all()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                os.kill(os.getpid(), signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_sigterm)
        _sigterm_installed = True


class Recorder(_Subscribed):
    """
    Keep every decision, while open, in memory, in the order they were
    made: the tool for asserting what capscope decided in a test.

    `with Recorder() as rec:` records for the block (or call `start()` and
    `close()`); the decisions stay readable afterwards. Appends are
    thread-safe, so decisions from worker threads and tasks are all kept.
    Every decision counts, including the escapes: installing a root
    execution policy is an `allow` decision with gate `root_policy` and
    tool `"*"`. Narrow with `for_tool()`, or start recording under the
    policy.

    Attributes:
        decisions: The decisions recorded, oldest first (the live list).

    Examples:
        >>> import capscope as cs
        >>> from capscope.audit import Recorder
        >>> from capscope.policies import CapabilityPolicy
        >>> @cs.requires_tool("fs.read")
        ... def read(path):
        ...     return "data"
        >>> @cs.requires_tool("fs.write")
        ... def write(path):
        ...     pass
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.read"])), Recorder() as rec:
        ...     read("a.txt")
        ...     try:
        ...         write("a.txt")
        ...     except cs.ToolDenied:
        ...         pass
        'data'
        >>> for d in rec:
        ...     print(d.action.value, d.tool)
        allow fs.read
        deny fs.write
        >>> rec.denied()[0].gate
        <Gate.TOOL_CEILING: 'tool_ceiling'>
    """

    def __init__(self) -> None:
        self.decisions: list[Decision] = []
        # Why a lock: appends come from every thread that decides, and the
        # helpers read a consistent snapshot.
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<Recorder {len(self)} decisions>"

    def _receive(self, decision: Decision) -> None:
        with self._lock:
            self.decisions.append(decision)

    def _snapshot(self) -> list[Decision]:
        with self._lock:
            return list(self.decisions)

    def _with(self, *actions: Action) -> list[Decision]:
        return [d for d in self._snapshot() if d.action in actions]

    def denied(self) -> list[Decision]:
        """
        The `deny` decisions, in order.

        Examples:
            >>> import capscope as cs
            >>> from capscope.audit import Recorder
            >>> with Recorder() as rec:
            ...     cs.events.emit(cs.Decision(action="deny", gate="bridge", tool="t", reason="r"))
            >>> rec.denied()[0].tool
            't'
        """
        return self._with(Action.DENY)

    def allowed(self) -> list[Decision]:
        """
        The `allow` decisions, in order (not `granted` ones: a call an
        approval let through is `asked()` then granted).

        Examples:
            >>> import capscope as cs
            >>> from capscope.audit import Recorder
            >>> with Recorder() as rec:
            ...     cs.events.emit(cs.Decision(action="allow", gate=None, tool="t", reason="r"))
            >>> len(rec.allowed())
            1
        """
        return self._with(Action.ALLOW)

    def asked(self) -> list[Decision]:
        """
        The `ask` decisions (a handler was asked to approve), in order.

        Examples:
            >>> import capscope as cs
            >>> from capscope.audit import Recorder
            >>> with Recorder() as rec:
            ...     cs.events.emit(cs.Decision(action="ask", gate="approval", tool="t", reason="r"))
            >>> len(rec.asked())
            1
        """
        return self._with(Action.ASK)

    def for_tool(self, name: str) -> list[Decision]:
        """
        The decisions about tool *name*, in order.

        Examples:
            >>> import capscope as cs
            >>> from capscope.audit import Recorder
            >>> with Recorder() as rec:
            ...     cs.events.emit(cs.Decision(action="allow", gate=None, tool="a", reason="r"))
            ...     cs.events.emit(cs.Decision(action="allow", gate=None, tool="b", reason="r"))
            >>> len(rec.for_tool("b")), rec.for_tool("b")[0].tool
            (1, 'b')
        """
        return [d for d in self._snapshot() if d.tool == name]

    def for_worker(self, worker_id: str | None) -> list[Decision]:
        """
        The decisions made for worker *worker_id* (`None`: for no worker),
        in order.

        Examples:
            >>> import capscope as cs
            >>> from capscope.audit import Recorder
            >>> from capscope.policies import RuntimeContextOverlay
            >>> with Recorder() as rec:
            ...     cs.events.emit(cs.Decision(action="allow", gate=None, tool="t", reason="r", overlay=RuntimeContextOverlay(worker_id="w-1")))
            >>> len(rec.for_worker("w-1")), len(rec.for_worker(None))
            (1, 0)
        """
        return [
            d for d in self._snapshot() if d.overlay.worker_id == worker_id
        ]

    def clear(self) -> None:
        """
        Forget every decision recorded so far (recording goes on).

        Examples:
            >>> import capscope as cs
            >>> from capscope.audit import Recorder
            >>> with Recorder() as rec:
            ...     cs.events.emit(cs.Decision(action="allow", gate=None, tool="t", reason="r"))
            ...     rec.clear()
            >>> len(rec)
            0
        """
        with self._lock:
            self.decisions.clear()

    def __len__(self) -> int:
        return len(self.decisions)

    def __iter__(self) -> Iterator[Decision]:
        return iter(self._snapshot())
