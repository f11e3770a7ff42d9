"""
The Celery app of tests/test_contrib_celery.py, run by a real worker:
``python -m celery -A celery_app worker ...`` in this directory.

The worker reads the broker (and result backend) from
``CAPSCOPE_TEST_REDIS_URL``; the test process imports the same module to
publish, and points it at its broker with `configure`.

Tasks call capscope-decorated tools and return what happened (allowed, or
the refusal's gate) with the attribution they ran under. Receivers of
``task_failure``, ``task_retry`` and ``task_postrun`` (connected after
`install`, so they run after its own receivers) record what they saw in
`OBSERVED`, which the `observed` task returns.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import redis
from celery import Celery, signals
from cryptography.hazmat.primitives import serialization

import capscope as cs
from capscope.contrib.celery import install
from capscope.policies import CapabilityPolicy
from capscope.propagation import RedisReplayGuard
from capscope.stacks import execution

#: The key publishers sign with since the rotation, and the one before it.
KEY_V2 = b"capscope tests: the new key, v2."
KEY_V1 = b"capscope tests: the old key, v1."
#: Envelopes older than this are refused.
MAX_AGE = 300.0

app = Celery("capscope_tests", set_as_current=False)
app.conf.update(
    broker_url=os.environ.get("CAPSCOPE_TEST_REDIS_URL"),
    result_backend=os.environ.get("CAPSCOPE_TEST_REDIS_URL"),
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_expires=600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    worker_prefetch_multiplier=1,
)


class SharedGuard:
    """The workers' replay guard: Redis at the broker's URL, made on use."""

    def __init__(self) -> None:
        self._guard: RedisReplayGuard | None = None

    def seen(self, envelope_id: str, expires_at: float) -> bool:
        if self._guard is None:
            client = redis.Redis.from_url(app.conf.broker_url)
            self._guard = RedisReplayGuard(client, prefix="capscope-tests:")
        return self._guard.seen(envelope_id, expires_at)


def public_keys() -> dict[str, Any]:
    """The public keys in $CAPSCOPE_TEST_PUBLIC_KEYS, read on every call."""
    folder = Path(os.environ["CAPSCOPE_TEST_PUBLIC_KEYS"])
    return {
        path.stem: serialization.load_pem_public_key(path.read_bytes())
        for path in sorted(folder.glob("*.pub"))
    }


def worker_ceiling() -> cs.Scope | None:
    """The machine's own ceiling, from $CAPSCOPE_TEST_WORKER_CEILING."""
    tools = os.environ.get("CAPSCOPE_TEST_WORKER_CEILING")
    if tools is None:
        return None
    ceiling = CapabilityPolicy(tools=tuple(tools.split(",")))
    return cs.Scope.empty().pushing({execution: ceiling})


if "CAPSCOPE_TEST_PUBLIC_KEYS" in os.environ:
    # A worker that holds only public keys: it verifies, it cannot sign.
    installation = install(
        app,
        key=None,
        keys=public_keys,
        max_age=MAX_AGE,
        replay_guard=SharedGuard(),
        within=worker_ceiling(),
    )
else:
    installation = install(
        app,
        key=KEY_V2,
        key_id="v2",
        keys={"v1": KEY_V1},
        max_age=MAX_AGE,
        replay_guard=SharedGuard(),
        within=worker_ceiling(),
    )


def configure(url: str) -> None:
    """Point the app at the broker *url* (also its result backend)."""
    app.conf.update(broker_url=url, result_backend=url)


# -- tools --------------------------------------------------------------------


@cs.requires_tool("fs.read", side_effect="read_only")
def read_note(name: str) -> str:
    return f"note {name}"


@cs.requires_tool("net.fetch", side_effect="network")
def fetch(url: str) -> str:
    return f"page {url}"


TOOLS = {"fs.read": lambda: read_note("todo"), "net.fetch": lambda: fetch("x")}


def attempt(tool: str) -> str:
    """Call *tool*: "allowed", or "denied: <gate>"."""
    try:
        TOOLS[tool]()
    except cs.PolicyDenied as denied:
        gate = denied.decision.gate if denied.decision else "?"
        return f"denied: {gate}"
    return "allowed"


def seen() -> dict[str, Any]:
    """The attribution and ceiling in force here."""
    overlay = cs.current_overlay()
    ceiling = execution.top()
    return {
        "run_id": overlay.run_id,
        "worker_id": overlay.worker_id,
        "recursion_limit": None
        if ceiling is None
        else ceiling.recursion_limit,
        "execution_depth": execution.depth,
        "thread": threading.current_thread().name,
        "pid": os.getpid(),
    }


# -- tasks --------------------------------------------------------------------


@app.task
def ping() -> str:
    return "pong"


@app.task
def try_tools(tools: list[str], pause: float = 0.0) -> dict[str, Any]:
    """Call each tool in turn (pausing between, so siblings interleave)."""
    outcomes = {}
    for tool in tools:
        outcomes[tool] = attempt(tool)
        time.sleep(pause)
    return {"outcomes": outcomes, **seen()}


@app.task
def mark_ran(key: str) -> str:
    """Record in Redis that this body ran (a refused task must not)."""
    client = redis.Redis.from_url(app.conf.broker_url)
    try:
        client.set(key, "ran", ex=600)
    finally:
        client.close()
    return attempt("fs.read")


@app.task(bind=True, max_retries=3)
def retry_once(self: Any, tools: list[str]) -> dict[str, Any]:
    """Retry on the first attempt; return what the second one saw."""
    if self.request.retries == 0:
        raise self.retry(countdown=0)
    return {
        "outcomes": {tool: attempt(tool) for tool in tools},
        "retries": self.request.retries,
        **seen(),
    }


@app.task
def call_denied() -> None:
    """Let a refusal escape: the caller gets it back with its decision."""
    fetch("https://example.org")


@app.task
def link_seen(previous: Any, label: str) -> dict[str, Any]:
    """A canvas step: what it ran under, after the previous step's result."""
    return {
        "label": label,
        "previous": previous,
        "outcomes": {tool: attempt(tool) for tool in TOOLS},
        **seen(),
    }


@app.task
def boom() -> None:
    msg = "boom"
    raise RuntimeError(msg)


@app.task(bind=True)
def spawn_child(self: Any, tools: list[str]) -> str:
    """
    Publish try_tools from inside a task, to this worker's queue: the
    worker's own scope travels.
    """
    queue = self.request.delivery_info["routing_key"]
    return str(try_tools.apply_async((tools,), queue=queue).id)


# -- what the receivers after capscope's saw ------------------------------------

OBSERVED: dict[str, dict[str, Any]] = {}
_observed_lock = threading.Lock()


def _observe(task_id: str | None, event: str) -> None:
    if task_id is None:
        return
    with _observed_lock:
        OBSERVED.setdefault(task_id, {})[event] = seen()


@signals.task_failure.connect(weak=False)
def _on_failure(
    sender: Any = None,
    task_id: str | None = None,
    exception: BaseException | None = None,
    **_: Any,
) -> None:
    _observe(task_id, "failure")
    with _observed_lock:  # every failure's message, in order
        errors = OBSERVED.setdefault(str(task_id), {}).setdefault("errors", [])
        errors.append(str(exception))


@signals.task_retry.connect(weak=False)
def _on_retry(sender: Any = None, request: Any = None, **_: Any) -> None:
    _observe(getattr(request, "id", None), "retry")


@signals.task_postrun.connect(weak=False)
def _after_postrun(
    sender: Any = None, task_id: str | None = None, task: Any = None, **_: Any
) -> None:
    # One record per attempt: "after_postrun#0", then "#1" after a retry.
    _observe(task_id, f"after_postrun#{task.request.retries}")


@app.task
def observed(task_id: str) -> dict[str, Any]:
    """What the receivers saw for *task_id* (in this worker process)."""
    with _observed_lock:
        return dict(OBSERVED.get(task_id, {}))
