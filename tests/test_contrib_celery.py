"""
capscope.contrib.celery, with a real Celery worker process and a real Redis
broker: no mocks of Celery or of the broker.

The broker is ``CAPSCOPE_TEST_REDIS_URL`` when set (``.ci/run`` starts one),
else a ``redis-server`` this module starts on a free port; the tests skip
only when there is no ``redis-server`` binary. One worker (the ``threads``
pool, 4 threads) serves the module, on a queue of its own; the other pools
get a worker each in `test_other_pools`. The worker runs
tests/celery_app.py, which calls `install` like an application would.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import celery_app
import pytest
import redis
from celery import Celery, chain, chord, group, signals
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

import capscope as cs
from capscope import propagation
from capscope.contrib.celery import install
from capscope.policies import (
    CapabilityPolicy,
    CommandPolicy,
    RuntimeContextOverlay,
)
from capscope.stacks import execution

TESTS = Path(__file__).parent
HEADER = propagation.HEADER
#: Seconds to wait for any one task.
TIMEOUT = 20
ALL_TOOLS = ["fs.read", "net.fetch"]


# -- the broker -----------------------------------------------------------------


@pytest.fixture(scope="module")
def app(redis_url: str) -> Iterator[Celery]:
    """The tests' app (tests/celery_app.py), pointed at the broker."""
    celery_app.configure(redis_url)
    yield celery_app.app
    celery_app.app.close()


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


# -- workers --------------------------------------------------------------------


@dataclass(frozen=True)
class Worker:
    """A running worker subprocess that consumes a queue of its own."""

    pool: str
    queue: str
    nodename: str
    log: Path
    #: The worker's main process (prefork runs tasks in its children).
    pid: int = 0
    #: The app that publishes to it, when not the tests' own.
    via: Any = None

    def send(self, task: Any, *args: Any, **options: Any) -> Any:
        """Publish *task* to this worker (from the current scope)."""
        if self.via is not None:
            return self.via.send_task(
                task.name, args, queue=self.queue, **options
            )
        return task.apply_async(args, queue=self.queue, **options)

    def worker_id(self, task_id: str) -> str:
        """The worker_id the worker stamps on *task_id*'s decisions."""
        return f"celery:{self.nodename}:{task_id}"

    def observed(self, task_id: str, *events: str) -> dict[str, Any]:
        """
        What celery_app's receivers saw for *task_id*, once they saw all
        of *events*: a task's result is stored before its failure and
        retry signals are sent and its postrun receivers run (and a retry
        may finish before the first attempt's task_retry is sent).
        """
        deadline = time.monotonic() + TIMEOUT
        while True:
            seen: dict[str, Any] = self.send(celery_app.observed, task_id).get(
                timeout=TIMEOUT
            )
            if set(events) <= seen.keys():
                return seen
            assert time.monotonic() < deadline, (task_id, events, seen)
            time.sleep(0.02)

    def output(self) -> str:
        return self.log.read_text(errors="replace")


@contextlib.contextmanager
def running_worker(
    app: Celery,
    redis_url: str,
    tmp: Path,
    pool: str,
    concurrency: int = 4,
    *,
    env: dict[str, str] | None = None,
) -> Iterator[Worker]:
    queue = f"capscope-{pool}-{uuid.uuid4().hex[:12]}"
    worker = Worker(pool, queue, f"{queue}@localhost", tmp / f"{queue}.log")
    path = [str(TESTS), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {
        **os.environ,
        "CAPSCOPE_TEST_REDIS_URL": redis_url,
        "PYTHONPATH": os.pathsep.join(path),
        **(env or {}),
    }
    command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker"]
    command += ["-P", pool, "-c", str(concurrency), "-Q", queue]
    command += ["-n", worker.nodename, "-l", "warning"]
    command += ["--without-gossip", "--without-mingle", "--without-heartbeat"]
    with worker.log.open("wb") as out:
        process = subprocess.Popen(
            command,
            cwd=TESTS,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its pool children go with it
        )
    worker = dataclasses.replace(worker, pid=process.pid)
    try:
        try:
            # answered at all: a worker may refuse this process's envelopes
            worker.send(celery_app.ping).get(timeout=30, propagate=False)
        except Exception as exc:
            pytest.fail(
                f"the {pool} worker did not answer: {exc!r}\n{worker.output()}"
            )
        yield worker
    finally:
        process.terminate()  # warm shutdown
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def worker(
    app: Celery, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Worker]:
    """One worker for the module: the threads pool, 4 threads."""
    tmp = tmp_path_factory.mktemp("celery")
    with running_worker(app, redis_url, tmp, "threads") as running:
        yield running


# -- callers with different policies ---------------------------------------------

#: What caller i may call: every combination, nothing included.
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


def expected_outcomes(i: int) -> dict[str, str]:
    return {
        tool: "allowed" if tool in CEILINGS[i % 4] else "denied: tool_ceiling"
        for tool in ALL_TOOLS
    }


def check_caller(
    worker: Worker, i: int, runs: list[tuple[str, dict[str, Any]]]
) -> None:
    for task_id, seen in runs:
        assert expected_outcomes(i) == seen["outcomes"], (i, seen)
        assert f"run-{i}" == seen["run_id"]
        assert worker.worker_id(task_id) == seen["worker_id"]
        assert 4 == seen["recursion_limit"]  # one hop taken from 5


def test_concurrent_thread_callers_each_run_under_their_own_policy(
    worker: Worker,
):
    callers, per_caller = 8, 4
    barrier = threading.Barrier(callers)
    runs: dict[int, list[tuple[str, dict[str, Any]]]] = {}
    errors: list[BaseException] = []

    def caller(i: int) -> None:
        try:
            with caller_policy(i):
                barrier.wait(TIMEOUT)
                results = []
                for _ in range(per_caller):
                    results.append(
                        worker.send(celery_app.try_tools, ALL_TOOLS, 0.01)
                    )
                    time.sleep(0.001)  # let the other callers publish
            runs[i] = [(r.id, r.get(timeout=TIMEOUT)) for r in results]
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=caller, args=(i,)) for i in range(callers)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    for i in range(callers):
        assert per_caller == len(runs[i])
        check_caller(worker, i, runs[i])
    threads_used = {seen["thread"] for rs in runs.values() for _, seen in rs}
    assert len(threads_used) > 1, "the worker ran the tasks concurrently"


@pytest.mark.asyncio
async def test_concurrent_asyncio_callers_each_run_under_their_own_policy(
    worker: Worker,
):
    async def caller(i: int) -> list[Any]:
        with caller_policy(i):
            results = []
            for _ in range(3):
                await asyncio.sleep(0)  # interleave with the other callers
                results.append(
                    worker.send(celery_app.try_tools, ALL_TOOLS, 0.01)
                )
        for result in results:
            deadline = time.monotonic() + TIMEOUT
            while not result.ready():
                assert time.monotonic() < deadline, result.id
                await asyncio.sleep(0.02)
        return results

    gathered = await asyncio.gather(*(caller(i) for i in range(8)))
    assert execution.depth == 0
    for i, results in enumerate(gathered):
        check_caller(worker, i, [(r.id, r.get(timeout=1)) for r in results])


def test_a_task_published_without_a_scope_fails_closed(worker: Worker):
    assert execution.top() is None
    result = worker.send(celery_app.try_tools, ALL_TOOLS)
    seen = result.get(timeout=TIMEOUT)
    assert dict.fromkeys(ALL_TOOLS, "denied: no_policy") == seen["outcomes"]
    assert seen["run_id"] is None
    assert worker.worker_id(result.id) == seen["worker_id"]
    assert 0 == seen["execution_depth"]


# -- refused envelopes ---------------------------------------------------------------


def _payload(token: str) -> tuple[str, dict[str, Any], str]:
    key_id, body, signature = token.split(".")
    raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    return key_id, json.loads(raw), signature


def _b64(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def flip_a_byte(token: str) -> str:
    key_id, body, signature = token.split(".")
    flipped = "A" if signature[5] != "A" else "B"
    return f"{key_id}.{body}.{signature[:5]}{flipped}{signature[6:]}"


def widen_without_the_key(token: str) -> str:
    key_id, payload, signature = _payload(token)
    payload["scope"]["stacks"]["execution"] = [{"data": {}}]  # unrestricted
    return f"{key_id}.{_b64(payload)}.{signature}"


def resign(key_id: str, payload: dict[str, Any]) -> str:
    """An envelope of *payload*, signed with the publishers' real key."""
    body = _b64(payload)
    message = f"{key_id}.{body}".encode()
    digest = hmac.new(celery_app.KEY_V2, message, hashlib.sha256).digest()
    return f"{key_id}.{body}.{base64.urlsafe_b64encode(digest).rstrip(b'=').decode()}"


def replay_an_old_one(token: str) -> str:
    # Signed with the real key: only its age is wrong.
    key_id, payload, _ = _payload(token)
    payload["iat"] -= 2 * celery_app.MAX_AGE
    return resign(key_id, payload)


def unbind(token: str) -> str:
    # Signed with the real key, bound to nothing: not to this message.
    key_id, payload, _ = _payload(token)
    payload["bind"] = None
    return resign(key_id, payload)


TAMPERINGS: dict[str, tuple[Callable[[str], str | None], str]] = {
    "flipped byte": (flip_a_byte, "signature does not match"),
    "widened": (widen_without_the_key, "signature does not match"),
    "too old": (replay_an_old_one, "older than max_age 300 s"),
    "unbound": (unbind, "issued for another message"),
    "missing": (lambda token: None, "no scope envelope in the carrier"),
    "malformed": (lambda token: "not-an-envelope", "malformed scope envelope"),
}


@contextlib.contextmanager
def tampering(
    task_id: str, change: Callable[[str], str | None]
) -> Iterator[None]:
    """Rewrite the envelope of message *task_id* on its way to the broker."""

    def receiver(headers: dict[str, Any], **_: Any) -> None:
        if headers.get("id") == task_id:
            changed = change(headers[HEADER])
            if changed is None:
                del headers[HEADER]
            else:
                headers[HEADER] = changed

    signals.before_task_publish.connect(receiver, weak=False)
    try:
        yield
    finally:
        signals.before_task_publish.disconnect(receiver)


def assert_refused(
    worker: Worker, redis_client: redis.Redis, result: Any, message: str
) -> None:
    """*result*'s task failed on its envelope, and its body never ran."""
    with pytest.raises(cs.EnvelopeError) as info:
        result.get(timeout=TIMEOUT)
    assert message in str(info.value)
    assert str(info.value).startswith(
        f"refused to run celery_app.mark_ran[{result.id}]: "
    )
    assert redis_client.get(f"ran:{result.id}") is None
    # The failure handlers ran under no scope at all.
    failure = worker.observed(result.id, "failure")["failure"]
    assert (None, None, 0) == (
        failure["run_id"],
        failure["worker_id"],
        failure["execution_depth"],
    )


@pytest.mark.parametrize("how", list(TAMPERINGS))
def test_a_tampered_envelope_is_refused(
    worker: Worker, redis_client: redis.Redis, how: str
):
    change, message = TAMPERINGS[how]
    task_id = str(uuid.uuid4())
    with caller_policy(2), tampering(task_id, change):
        result = worker.send(
            celery_app.mark_ran, f"ran:{task_id}", task_id=task_id
        )
    assert_refused(worker, redis_client, result, message)


def test_the_untampered_control_runs(
    worker: Worker, redis_client: redis.Redis
):
    key = f"ran:{uuid.uuid4()}"
    with caller_policy(0):
        result = worker.send(celery_app.mark_ran, key)
    assert "allowed" == result.get(timeout=TIMEOUT)
    assert b"ran" == redis_client.getdel(key)


# -- transplants and replays: a broker writer copies envelopes ------------------------


@contextlib.contextmanager
def capturing() -> Iterator[dict[str, dict[str, Any]]]:
    """The headers of each message published meanwhile, by task id."""
    seen: dict[str, dict[str, Any]] = {}

    def receiver(headers: dict[str, Any], **_: Any) -> None:
        seen[headers["id"]] = dict(headers)

    signals.before_task_publish.connect(receiver, weak=False)
    try:
        yield seen
    finally:
        signals.before_task_publish.disconnect(receiver)


def envelope_of(task: Any, *args: Any, task_id: str, **kwargs: Any) -> str:
    """The envelope of a caller's message for *task*, sent nowhere it runs."""
    void = f"capscope-void-{uuid.uuid4().hex}"
    with caller_policy(2), capturing() as seen:
        task.apply_async(args, kwargs, queue=void, task_id=task_id)
    return seen[task_id][HEADER]


@pytest.fixture
def broker_writer(publisher: Callable[..., Celery]) -> Callable[..., Any]:
    """Sends any message with any envelope: what a broker writer can do."""
    raw = publisher()  # capscope is not installed on it

    def send(worker: Worker, token: str, *args: Any, **options: Any) -> Any:
        headers = {HEADER: token}
        return raw.send_task(
            "celery_app.mark_ran",
            args,
            queue=worker.queue,
            headers=headers,
            **options,
        )

    return send


TRANSPLANTS: dict[str, Callable[[str], str]] = {
    # each: the envelope of another message, for mark_ran(f"ran:{task_id}")
    "other task name": lambda task_id: envelope_of(
        celery_app.observed, f"ran:{task_id}", task_id=task_id
    ),
    "other arguments": lambda task_id: envelope_of(
        celery_app.mark_ran, "ran:somewhere-else", task_id=task_id
    ),
    "other task id": lambda task_id: envelope_of(
        celery_app.mark_ran, f"ran:{task_id}", task_id=str(uuid.uuid4())
    ),
    "keyword arguments": lambda task_id: envelope_of(
        celery_app.mark_ran, task_id=task_id, key=f"ran:{task_id}"
    ),
}


@pytest.mark.parametrize("transplant", list(TRANSPLANTS))
def test_a_transplanted_envelope_is_refused(
    worker: Worker,
    redis_client: redis.Redis,
    broker_writer: Callable[..., Any],
    transplant: str,
):
    task_id = str(uuid.uuid4())
    token = TRANSPLANTS[transplant](task_id)
    result = broker_writer(worker, token, f"ran:{task_id}", task_id=task_id)
    assert_refused(worker, redis_client, result, "issued for another message")


def test_a_copied_envelope_runs_once_on_its_own_message(
    worker: Worker,
    redis_client: redis.Redis,
    broker_writer: Callable[..., Any],
):
    task_id = str(uuid.uuid4())
    token = envelope_of(celery_app.mark_ran, f"ran:{task_id}", task_id=task_id)
    first = broker_writer(worker, token, f"ran:{task_id}", task_id=task_id)
    assert "allowed" == first.get(timeout=TIMEOUT)  # its own message: runs
    assert b"ran" == redis_client.getdel(f"ran:{task_id}")

    # The same message again (its result is the first one's: same id), and
    # again with its retry count raised: refused, the body does not run.
    broker_writer(worker, token, f"ran:{task_id}", task_id=task_id)
    assert "was used before: a replay" in failures(worker, task_id, 1)[0]
    broker_writer(worker, token, f"ran:{task_id}", task_id=task_id, retries=1)
    assert "was not announced" in failures(worker, task_id, 2)[1]
    assert redis_client.get(f"ran:{task_id}") is None


def failures(worker: Worker, task_id: str, count: int) -> list[str]:
    """The messages of *task_id*'s first *count* failures, in order."""
    deadline = time.monotonic() + TIMEOUT
    while True:
        errors = worker.observed(task_id).get("errors", [])
        if len(errors) >= count:
            return errors
        assert time.monotonic() < deadline, (task_id, errors)
        time.sleep(0.05)


def test_a_refusal_comes_back_with_its_decision(worker: Worker):
    with caller_policy(0), capturing() as seen:  # fs.read only
        result = worker.send(celery_app.call_denied)
    with pytest.raises(cs.ToolDenied) as info:
        result.get(timeout=TIMEOUT)
    decision = info.value.decision
    assert isinstance(decision, cs.Decision)
    assert (cs.Action.DENY, cs.Gate.TOOL_CEILING, "net.fetch") == (
        decision.action,
        decision.gate,
        decision.tool,
    )
    # attributed to the caller's run, the worker, and the envelope
    _, payload, _ = _payload(seen[result.id][HEADER])
    assert {
        "run_id": "run-0",
        "worker_id": worker.worker_id(result.id),
    } == decision.overlay.ids()
    assert {propagation.ENVELOPE_ATTRIBUTE: payload["jti"]} == dict(
        decision.overlay.attributes
    )


# -- canvas: what the caller built runs as siblings --------------------------------


def sibling_policy() -> cs.using:
    return cs.using(
        execution=CapabilityPolicy(tools=("fs.read",), recursion_limit=1),
        overlay=RuntimeContextOverlay(run_id="run-canvas"),
    )


def assert_sibling(worker: Worker, seen: dict[str, Any]) -> None:
    assert {"fs.read": "allowed", "net.fetch": "denied: tool_ceiling"} == (
        seen["outcomes"]
    )
    assert "run-canvas" == seen["run_id"]
    assert 0 == seen["recursion_limit"]  # one hop from the caller, not more


def test_each_link_of_a_chain_is_a_sibling_of_the_first(worker: Worker):
    q = worker.queue
    with sibling_policy():
        result = chain(
            celery_app.link_seen.si(None, "a").set(queue=q),
            celery_app.link_seen.s("b").set(queue=q),
            celery_app.link_seen.s("c").set(queue=q),
        ).apply_async()
    last = result.get(timeout=TIMEOUT)
    links = [last, last["previous"], last["previous"]["previous"]]
    assert ["c", "b", "a"] == [link["label"] for link in links]
    for link in links:
        assert_sibling(worker, link)


def test_a_chord_body_and_its_members_are_siblings(worker: Worker):
    q = worker.queue
    with sibling_policy():
        members = [
            celery_app.link_seen.si(None, f"m{i}").set(queue=q)
            for i in range(3)
        ]
        body = celery_app.link_seen.s("body").set(queue=q)
        result = chord(group(members), body).apply_async()
    seen = result.get(timeout=TIMEOUT)
    assert "body" == seen["label"]
    assert_sibling(worker, seen)
    assert ["m0", "m1", "m2"] == sorted(m["label"] for m in seen["previous"])
    for member in seen["previous"]:
        assert_sibling(worker, member)


# -- a worker that holds only public keys, under a ceiling of its own -----------------


def write_public_key(
    folder: Path, key_id: str, key: Ed25519PrivateKey
) -> None:
    pem = key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo,
    )
    (folder / f"{key_id}.pub").write_bytes(pem)


def test_a_worker_with_only_public_keys(
    app: Celery,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    publisher: Callable[..., Celery],
):
    folder = tmp_path / "public"
    folder.mkdir()
    keys = {"k1": Ed25519PrivateKey.generate()}
    write_public_key(folder, "k1", keys["k1"])
    signing = ["k1"]  # the publisher's key of the moment, read per publish
    caller = publisher(key=lambda: (signing[0], keys[signing[0]]))
    env = {
        "CAPSCOPE_TEST_PUBLIC_KEYS": str(folder),
        "CAPSCOPE_TEST_WORKER_CEILING": "fs.read",  # the machine's own
    }

    def send(i: int, name: str, *args: Any) -> Any:
        with caller_policy(i):
            return caller.send_task(name, args, queue=restricted.queue)

    with running_worker(app, redis_url, tmp_path, "threads", 2, env=env) as (
        running
    ):
        restricted = dataclasses.replace(running, via=caller)
        # It verifies: the caller's scope, under the machine's ceiling.
        result = send(0, "celery_app.try_tools", ALL_TOOLS)
        check_caller(restricted, 0, [(result.id, result.get(timeout=TIMEOUT))])
        # It does not widen: a caller allowed more than it is refused.
        wider = send(1, "celery_app.mark_ran", f"ran:{uuid.uuid4()}")
        assert_refused(restricted, redis_client, wider, "refused by its stack")
        # A shared key's envelope is not one of its keys.
        with caller_policy(0):
            hmac_signed = celery_app.mark_ran.apply_async(
                ("ran:hmac",), queue=restricted.queue
            )
        assert_refused(
            restricted, redis_client, hmac_signed, "unknown key id 'v2'"
        )
        # It cannot mint: a task it runs cannot publish a task.
        parent = send(0, "celery_app.spawn_child", ALL_TOOLS)
        with pytest.raises(cs.EnvelopeError, match="cannot sign"):
            parent.get(timeout=TIMEOUT)
        # ... but runs a chain its caller signed, every link.
        with sibling_policy():
            q = restricted.queue
            links = chain(
                caller.signature("celery_app.link_seen", (None, "a"), queue=q),
                caller.signature("celery_app.link_seen", ("b",), queue=q),
            ).apply_async()
        last = links.get(timeout=TIMEOUT)
        for link in (last, last["previous"]):
            assert_sibling(restricted, link)

        # Rotation, with neither side restarted: the new key's public half
        # is added, the publisher moves to it, the old one is retired.
        keys["k2"] = Ed25519PrivateKey.generate()
        write_public_key(folder, "k2", keys["k2"])
        signing[0] = "k2"
        rotated = send(0, "celery_app.try_tools", ALL_TOOLS)
        check_caller(
            restricted, 0, [(rotated.id, rotated.get(timeout=TIMEOUT))]
        )
        (folder / "k1.pub").unlink()
        signing[0] = "k1"
        retired = send(0, "celery_app.mark_ran", f"ran:{uuid.uuid4()}")
        signing[0] = "k2"  # for assert_refused's own questions
        assert_refused(
            restricted,
            redis_client,
            retired,
            "unknown key id 'k1' (accepted: k2)",
        )


# -- keys: rotation, strangers, other apps ----------------------------------------


@pytest.fixture
def publisher(redis_url: str) -> Iterator[Callable[..., Celery]]:
    """A factory of other apps in this process, on the same broker."""
    made: list[tuple[Celery, Any]] = []

    def make(**install_args: Any) -> Celery:
        other = Celery(f"publisher-{len(made)}", set_as_current=False)
        other.conf.update(
            broker_url=redis_url,
            result_backend=redis_url,
            task_serializer="json",
            result_serializer="json",
            accept_content=["json"],
        )
        installed = install(other, **install_args) if install_args else None
        made.append((other, installed))
        return other

    yield make
    for other, installed in made:
        if installed is not None:
            installed.uninstall()
        other.close()


def send_by_name(other: Celery, worker: Worker, *args: Any) -> Any:
    return other.send_task(
        "celery_app.mark_ran", args, queue=worker.queue, task_id=args[0][4:]
    )


def test_keys_rotate_the_old_key_id_is_still_accepted(
    worker: Worker, publisher: Callable[..., Celery]
):
    old = publisher(key=celery_app.KEY_V1, key_id="v1")
    with caller_policy(0):
        result = old.send_task(
            "celery_app.try_tools", (ALL_TOOLS,), queue=worker.queue
        )
    check_caller(worker, 0, [(result.id, result.get(timeout=TIMEOUT))])


UNVERIFIABLE = {
    "retired key id": (
        b"a retired key, 32 bytes or more.",
        "v0",
        "unknown key id 'v0' (accepted: v1, v2)",
    ),
    "stranger's key": (
        b"a stranger's key, 32 bytes long.",
        "v2",
        "signature does not match",
    ),
}


@pytest.mark.parametrize("case", list(UNVERIFIABLE))
def test_an_envelope_the_worker_cannot_verify_is_refused(
    worker: Worker,
    redis_client: redis.Redis,
    publisher: Callable[..., Celery],
    case: str,
):
    key, key_id, message = UNVERIFIABLE[case]
    stranger = publisher(key=key, key_id=key_id)
    with caller_policy(2):
        result = send_by_name(stranger, worker, f"ran:{uuid.uuid4()}")
    assert_refused(worker, redis_client, result, message)


def test_another_app_in_the_process_sends_no_envelope(
    worker: Worker,
    redis_client: redis.Redis,
    publisher: Callable[..., Celery],
):
    # celery_app.app is installed in this process; this app is not.
    plain = publisher()
    with caller_policy(2):
        result = send_by_name(plain, worker, f"ran:{uuid.uuid4()}")
    assert_refused(worker, redis_client, result, "no scope envelope")


# -- retries, failures, tasks publishing tasks ---------------------------------------


def test_a_retry_runs_under_the_callers_scope_again(worker: Worker):
    with caller_policy(0):
        result = worker.send(celery_app.retry_once, ALL_TOOLS)
    seen = result.get(timeout=TIMEOUT)
    assert 1 == seen["retries"]
    assert expected_outcomes(0) == seen["outcomes"]
    assert "run-0" == seen["run_id"]
    # The envelope it arrived with, not a re-capture: no second hop taken.
    assert 4 == seen["recursion_limit"]
    observed = worker.observed(
        result.id, "retry", "after_postrun#0", "after_postrun#1"
    )
    assert "run-0" == observed["retry"]["run_id"]  # still installed then
    for attempt in ("after_postrun#0", "after_postrun#1"):  # removed after
        assert (None, 0) == (
            observed[attempt]["run_id"],
            observed[attempt]["execution_depth"],
        )


def test_a_failing_task_keeps_its_scope_for_the_failure_handlers_only(
    worker: Worker,
):
    with caller_policy(1):
        result = worker.send(celery_app.boom)
    with pytest.raises(RuntimeError, match="boom"):
        result.get(timeout=TIMEOUT)
    observed = worker.observed(result.id, "failure", "after_postrun#0")
    assert "run-1" == observed["failure"]["run_id"]
    assert worker.worker_id(result.id) == observed["failure"]["worker_id"]
    assert (None, 0) == (
        observed["after_postrun#0"]["run_id"],
        observed["after_postrun#0"]["execution_depth"],
    )


def test_a_task_publishes_under_its_own_scope(worker: Worker):
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.read",), recursion_limit=2),
        overlay=RuntimeContextOverlay(run_id="run-parent"),
    ):
        parent = worker.send(celery_app.spawn_child, ALL_TOOLS)
    child = celery_app.app.AsyncResult(parent.get(timeout=TIMEOUT))
    seen = child.get(timeout=TIMEOUT)
    assert expected_outcomes(0) == seen["outcomes"]
    assert "run-parent" == seen["run_id"]
    assert worker.worker_id(child.id) == seen["worker_id"]
    assert 0 == seen["recursion_limit"]  # a hop per worker: 2, 1, 0


def test_no_worker_depth_left_fails_the_publishing_task(worker: Worker):
    with cs.using(execution=CapabilityPolicy(recursion_limit=1)):
        parent = worker.send(celery_app.spawn_child, ALL_TOOLS)
    with pytest.raises(cs.CeilingExceeded):
        parent.get(timeout=TIMEOUT)


def test_a_scope_that_cannot_travel_fails_apply_async(app: Celery):
    def pre(decision: object) -> object:
        return None

    with cs.using(command=CommandPolicy(pre=pre)):
        with pytest.raises(cs.PolicyConfigError) as info:
            celery_app.ping.apply_async(queue="never-consumed")
    assert "command[0].pre" == info.value.field
    with cs.using(execution=CapabilityPolicy(recursion_limit=0)):
        with pytest.raises(cs.CeilingExceeded):
            celery_app.ping.apply_async(queue="never-consumed")


# -- other pools ---------------------------------------------------------------------


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_other_pools(
    app: Celery,
    redis_url: str,
    redis_client: redis.Redis,
    tmp_path: Path,
    pool: str,
):
    with running_worker(app, redis_url, tmp_path, pool, 2) as other:
        runs: dict[int, list[tuple[str, dict[str, Any]]]] = {}

        def caller(i: int) -> None:
            with caller_policy(i):
                results = [
                    other.send(celery_app.try_tools, ALL_TOOLS)
                    for _ in range(2)
                ]
            runs[i] = [(r.id, r.get(timeout=TIMEOUT)) for r in results]

        threads = [
            threading.Thread(target=caller, args=(i,)) for i in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for i in range(4):
            check_caller(other, i, runs[i])
        pids = {seen["pid"] for rs in runs.values() for _, seen in rs}
        if pool == "solo":
            assert {other.pid} == pids
        else:  # prefork: the pool's child processes ran them
            assert other.pid not in pids

        bare = other.send(celery_app.try_tools, ALL_TOOLS).get(timeout=TIMEOUT)
        assert (
            dict.fromkeys(ALL_TOOLS, "denied: no_policy") == bare["outcomes"]
        )

        task_id = str(uuid.uuid4())
        with caller_policy(2), tampering(task_id, flip_a_byte):
            result = other.send(
                celery_app.mark_ran, f"ran:{task_id}", task_id=task_id
            )
        with pytest.raises(cs.EnvelopeError, match="signature does not match"):
            result.get(timeout=TIMEOUT)
        assert redis_client.get(f"ran:{task_id}") is None


# -- in this process: eager runs, two apps, install itself ----------------------------


LOCAL_KEY = b"the local apps' key, of 32 bytes"


@pytest.fixture
def local_app() -> Iterator[Celery]:
    local = Celery("capscope-local", set_as_current=False)
    yield local
    local.close()


def test_eager_runs_get_the_worker_capture(local_app: Celery):
    installed = install(local_app, key=LOCAL_KEY)

    @local_app.task
    def whoami() -> tuple[Any, ...]:
        ceiling = execution.top()
        return cs.current_overlay().ids(), ceiling.recursion_limit

    with caller_policy(0):
        result = whoami.apply()
        ids, limit = result.get()
        # The caller's stacks, as they were.
        assert 1 == execution.depth
        assert {"run_id": "run-0"} == cs.current_overlay().ids()
    assert {
        "run_id": "run-0",
        "worker_id": f"celery:{socket.gethostname()}:{result.id}",
    } == ids
    assert 4 == limit
    installed.uninstall()


def test_two_apps_in_one_process_do_not_interfere(local_app: Celery):
    other = Celery("capscope-other", set_as_current=False)
    installed = install(local_app, key=LOCAL_KEY, worker_id="w-local")

    @local_app.task
    def on_local() -> dict[str, str]:
        return cs.current_overlay().ids()

    @other.task
    def on_other() -> dict[str, str]:
        return cs.current_overlay().ids()

    with caller_policy(0):
        assert {"run_id": "run-0", "worker_id": "w-local"} == (
            on_local.apply().get()
        )
        # Not installed on `other`: its task runs in the caller's context.
        assert {"run_id": "run-0"} == on_other.apply().get()
    assert other.send_task is not local_app.send_task
    installed.uninstall()
    other.close()


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"key": b""}, "key: a shared key must hold at least 32 bytes"),
        ({"key": b"k" * 31}, "at least 32 bytes .got 31."),
        ({"key": "a str"}, "key: expected a shared key"),
        ({"key_id": "a.b"}, "key_id"),
        ({"key_id": "v2", "keys": {"v2": b"o" * 32}}, "differs from key"),
        ({"keys": {"old": b"short"}}, r"key\['old'\]: a shared key"),
        ({"key": None}, "keys: a worker without a signing key"),
        ({"max_age": 0}, "max_age"),
        ({"max_age": float("nan")}, "max_age"),
        ({"max_age": "60"}, "max_age"),
        ({"max_age": None, "replay_guard": "x"}, "replay_guard"),
        (
            {"max_age": None, "replay_guard": propagation.MemoryReplayGuard()},
            "needs a max_age",
        ),
        ({"within": "fs.*"}, "within: expected a Scope"),
    ],
)
def test_install_refuses_bad_arguments(local_app: Celery, options, message):
    with pytest.raises(cs.EnvelopeError, match=message):
        install(local_app, **{"key": LOCAL_KEY, **options})
    with install(local_app, key=LOCAL_KEY):  # nothing was left installed
        pass


def test_install_refuses_a_bad_worker_id(local_app: Celery):
    with pytest.raises(ValueError, match="worker_id"):
        install(local_app, key=LOCAL_KEY, worker_id=3)  # type: ignore[arg-type]


def test_uninstall_restores_the_app(local_app: Celery):
    send_task, task_cls = local_app.send_task, local_app.Task
    installed = install(local_app, key=LOCAL_KEY, keys={"old": b"o" * 32})
    assert ("default", "old") == installed.accepted_key_ids
    assert local_app.send_task is not send_task
    assert issubclass(local_app.Task, task_cls)
    with pytest.raises(RuntimeError, match="already installed"):
        install(local_app, key=LOCAL_KEY)
    installed.uninstall()
    installed.uninstall()  # idempotent
    assert local_app.send_task == send_task
    assert local_app.Task is task_cls
    with install(local_app, key=LOCAL_KEY):  # installable again
        pass


def test_install_after_the_tasks_exist_warns(local_app: Celery):
    @local_app.task
    def early() -> None:
        return None

    local_app.finalize()
    with pytest.warns(cs.CapscopeWarning, match="before defining"):
        installed = install(local_app, key=LOCAL_KEY)
    installed.uninstall()
