"""
capscope.contrib.dramatiq, with a real Dramatiq worker process and a real
Redis broker, results backend and replay guard: no mocks.

The worker runs tests/dramatiq_app.py (its own ceiling: fs.read and
net.fetch); this process imports the same module to send. The middleware
uses only capscope's public API: binding, replay, the receiver's ceiling
and attribution all go through `capscope.propagation`.
"""

from __future__ import annotations

import base64
import importlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import redis
from dramatiq.broker import MessageProxy
from dramatiq.brokers.stub import StubBroker
from dramatiq.results import ResultFailure

import capscope as cs
from capscope import propagation
from capscope.contrib.dramatiq import (
    CapscopeMiddleware,
    EnvelopeRefused,
    NotSent,
    install,
)
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay

TESTS = Path(__file__).parent
HEADER = propagation.HEADER
TIMEOUT = 20
ALL_TOOLS = ["fs.read", "net.fetch"]


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[Any]:
    """tests/dramatiq_app.py, on the broker, in a namespace of its own."""
    namespace = f"capscope-dramatiq-{uuid.uuid4().hex[:12]}"
    saved = {k: os.environ.get(k) for k in ("CAPSCOPE_TEST_REDIS_URL",)}
    os.environ["CAPSCOPE_TEST_REDIS_URL"] = redis_url
    os.environ["CAPSCOPE_TEST_DRAMATIQ_NS"] = namespace
    sys.path.insert(0, str(TESTS))
    sys.modules.pop("dramatiq_app", None)  # as imported without them
    try:
        module = importlib.import_module("dramatiq_app")
        yield module
    finally:
        sys.path.remove(str(TESTS))
        sys.modules.pop("dramatiq_app", None)
        os.environ.pop("CAPSCOPE_TEST_DRAMATIQ_NS", None)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@pytest.fixture(scope="module")
def worker(
    app: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """One worker process (4 threads) for the module; yields its log."""
    log = tmp_path_factory.mktemp("dramatiq") / "worker.log"
    command = [sys.executable, "-m", "dramatiq", "dramatiq_app"]
    command += ["--processes", "1", "--threads", "4"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=TESTS,
            env={**os.environ, "PYTHONPATH": str(TESTS)},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        try:
            with cs.using(execution=CapabilityPolicy(tools=())):
                app.ping.send().get_result(block=True, timeout=30_000)
        except Exception as exc:
            pytest.fail(
                f"the worker did not answer: {exc!r}\n{log.read_text()}"
            )
        yield log
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    c = redis.Redis.from_url(redis_url)
    yield c
    c.close()


CEILINGS: list[tuple[str, ...]] = [
    ("fs.read",),
    ("net.fetch",),
    ("fs.read", "net.fetch"),
    (),
]


def caller_policy(i: int) -> cs.using:
    return cs.using(
        execution=CapabilityPolicy(tools=CEILINGS[i % 4], recursion_limit=5),
        overlay=RuntimeContextOverlay(run_id=f"run-{i}"),
    )


def result(message: Any) -> Any:
    return message.get_result(block=True, timeout=TIMEOUT * 1000)


def jti(token: str) -> str:
    body = token.split(".")[1]
    payload = json.loads(
        base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    )
    return str(payload["jti"])


def skipped(
    app: Any, client: redis.Redis, message_id: str, count: int = 1
) -> list[str]:
    """Why the worker skipped *message_id*, its first *count* times."""
    key = f"{app.NAMESPACE}:skipped:{message_id}"
    deadline = time.monotonic() + TIMEOUT
    while client.llen(key) < count:
        assert time.monotonic() < deadline, (
            message_id,
            client.lrange(key, 0, -1),
        )
        time.sleep(0.05)
    return [reason.decode() for reason in client.lrange(key, 0, -1)]


# -- each caller's own scope -------------------------------------------------------


def test_concurrent_callers_each_run_under_their_own_scope(
    app: Any, worker: Path
):
    callers, per_caller = 8, 3
    barrier = threading.Barrier(callers)
    sent: dict[int, list[Any]] = {}

    def caller(i: int) -> None:
        with caller_policy(i):
            barrier.wait(TIMEOUT)
            messages = []
            for _ in range(per_caller):
                messages.append(app.try_tools.send(ALL_TOOLS))
                time.sleep(0.001)
        sent[i] = messages

    threads = [
        threading.Thread(target=caller, args=(i,)) for i in range(callers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    used = set()
    for i in range(callers):
        for message in sent[i]:
            seen = result(message)
            expected = {
                tool: "allowed"
                if tool in CEILINGS[i % 4]
                else "denied: tool_ceiling"
                for tool in ALL_TOOLS
            }
            assert expected == seen["outcomes"], (i, seen)
            assert f"run-{i}" == seen["run_id"]
            assert f"dramatiq:{message.message_id}" == seen["worker_id"]
            assert jti(message.options[HEADER]) == seen["envelope"]
            assert 4 == seen["recursion_limit"]  # one hop from 5
            used.add(seen["thread"])
    assert len(used) > 1, "the worker ran the messages concurrently"


def test_a_message_sent_without_a_scope_fails_closed(app: Any, worker: Path):
    seen = result(app.try_tools.send(ALL_TOOLS))
    # no ceiling sent, narrowed by the worker's own: still no tool at all
    assert dict.fromkeys(ALL_TOOLS, "denied: tool_ceiling") == seen["outcomes"]


def test_an_actor_sending_an_actor_is_a_hop(app: Any, worker: Path):
    with caller_policy(2):
        parent = app.send_child.send(ALL_TOOLS)
    child_id = result(parent)
    child = app.try_tools.message(ALL_TOOLS).copy(message_id=child_id)
    seen = result(child)
    assert "run-2" == seen["run_id"]
    assert 3 == seen["recursion_limit"]  # 5, then 4 in the parent, then 3


def test_the_workers_own_ceiling_narrows_and_refuses(
    app: Any, worker: Path, client: redis.Redis
):
    with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        wider = app.mark_ran.send(f"ran:{uuid.uuid4()}")
    with pytest.raises(ResultFailure, match="refused by its stack"):
        result(wider)
    assert [
        "refused by its stack" in r
        for r in skipped(app, client, wider.message_id)
    ] == [True]


# -- a broker writer copies envelopes ----------------------------------------------


def envelope_of(
    app: Any, actor: str, *args: Any, message_id: str, **kwargs: Any
) -> str:
    """The envelope a caller would send on a message, which never runs."""
    stub = StubBroker()
    stub.declare_queue("default")
    install(stub, key=app.KEY)
    message = dramatiq.Message(
        queue_name="default",
        actor_name=actor,
        args=args,
        kwargs=kwargs,
        options={},
        message_id=message_id,
    )
    with caller_policy(2):
        stub.enqueue(message)
    return str(message.options[HEADER])


def forge(
    app: Any, token: str, key: str, message_id: str, **options: Any
) -> Any:
    """mark_ran(key) as message *message_id*, carrying *token* as it is."""
    message = dramatiq.Message(
        queue_name="default",
        actor_name="mark_ran",
        args=(key,),
        kwargs={},
        options={HEADER: token, **options},
        message_id=message_id,
    )
    return app.broker.enqueue(message)


TRANSPLANTS = {
    "other actor": lambda app, mid: envelope_of(
        app, "try_tools", f"ran:{mid}", message_id=mid
    ),
    "other arguments": lambda app, mid: envelope_of(
        app, "mark_ran", "ran:elsewhere", message_id=mid
    ),
    "other message id": lambda app, mid: envelope_of(
        app, "mark_ran", f"ran:{mid}", message_id=str(uuid.uuid4())
    ),
    "keyword arguments": lambda app, mid: envelope_of(
        app, "mark_ran", message_id=mid, key=f"ran:{mid}"
    ),
}


@pytest.mark.parametrize("transplant", list(TRANSPLANTS))
def test_a_transplanted_envelope_is_refused(
    app: Any, worker: Path, client: redis.Redis, transplant: str
):
    message_id = str(uuid.uuid4())
    token = TRANSPLANTS[transplant](app, message_id)
    message = forge(app, token, f"ran:{message_id}", message_id)
    with pytest.raises(ResultFailure, match="issued for another message"):
        result(message)
    assert client.get(f"ran:{message_id}") is None


def test_a_copied_envelope_runs_once_on_its_own_message(
    app: Any, worker: Path, client: redis.Redis
):
    message_id = str(uuid.uuid4())
    key = f"ran:{message_id}"
    token = envelope_of(app, "mark_ran", key, message_id=message_id)
    assert "allowed" == result(forge(app, token, key, message_id))
    assert b"ran" == client.getdel(key)

    forge(app, token, key, message_id)  # the same message again
    assert "a replay" in skipped(app, client, message_id, 1)[0]
    forge(app, token, key, message_id, retries=1)  # "a retry"
    assert "was not announced" in skipped(app, client, message_id, 2)[1]
    assert client.get(key) is None


def test_a_retry_is_not_a_replay(app: Any, worker: Path, client: redis.Redis):
    with caller_policy(0):
        message = app.retry_once.send(f"attempts:{uuid.uuid4()}")
    seen = result(message)
    assert {"fs.read": "allowed", "net.fetch": "denied: tool_ceiling"} == seen[
        "outcomes"
    ]
    assert ("run-0", 4) == (seen["run_id"], seen["recursion_limit"])


# -- configuration -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key": b"short"}, "key: a shared key must hold at least 32 bytes"),
        ({"key": None}, "keys: a worker without a signing key"),
        ({"max_age": -1}, "max_age"),
        (
            {"max_age": None, "replay_guard": propagation.MemoryReplayGuard()},
            "needs a max_age",
        ),
        ({"within": "fs.*"}, "within"),
    ],
)
def test_bad_options_are_refused_when_installed(
    options: dict[str, Any], message: str
):
    broker = StubBroker()
    with pytest.raises(cs.EnvelopeError, match=message):
        install(broker, **{"key": b"k" * 32, **options})
    assert not any(
        type(m).__name__ == "CapscopeMiddleware" for m in broker.middleware
    )


def test_a_verify_only_broker_cannot_send(app: Any):
    broker = StubBroker()
    broker.declare_queue("default")
    install(broker, key=None, keys={"default": app.KEY})
    message = dramatiq.Message(
        queue_name="default", actor_name="x", args=(), kwargs={}, options={}
    )
    with pytest.raises(NotSent, match="cannot sign"):
        broker.enqueue(message)
    assert HEADER not in message.options


def test_arguments_that_cannot_be_digested_refuse_the_message():
    # Dramatiq would log and swallow a TypeError from the hook and run the
    # actor anyway: it must be a refusal (a SkipMessage), the message failed.
    middleware = CapscopeMiddleware(key=b"k" * 32)
    message = MessageProxy(
        dramatiq.Message(
            queue_name="default",
            actor_name="mark_ran",
            args=({1: "int key", "a": "str key"},),  # sort_keys cannot order
            kwargs={},
            options={},
        )
    )
    with pytest.raises(EnvelopeRefused, match="refused to run mark_ran"):
        middleware.before_process_message(StubBroker(), message)
    assert message.failed
