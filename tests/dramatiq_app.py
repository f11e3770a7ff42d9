"""
The Dramatiq app of tests/test_contrib_dramatiq.py, run by a real worker:
``python -m dramatiq dramatiq_app`` in this directory.

The broker, results backend and replay guard are the Redis at
``CAPSCOPE_TEST_REDIS_URL``, under the namespace
``CAPSCOPE_TEST_DRAMATIQ_NS`` (one per test run). The worker's own ceiling
is ``fs.read`` and ``net.fetch``: an envelope asking for more is refused.
A message a middleware skipped (capscope refusing its envelope) is
recorded under ``<namespace>:skipped:<message id>`` with its reason.
"""

from __future__ import annotations

import os
import threading
from typing import Any

import dramatiq
import redis
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends import RedisBackend

import capscope as cs
from capscope.contrib.dramatiq import install
from capscope.policies import CapabilityPolicy
from capscope.propagation import ENVELOPE_ATTRIBUTE, RedisReplayGuard
from capscope.stacks import execution

KEY = b"capscope tests: the dramatiq key"
# (pytest's doctest collection imports this module without them: nothing
# connects until a message is sent)
URL = os.environ.get("CAPSCOPE_TEST_REDIS_URL", "redis://127.0.0.1:1/0")
NAMESPACE = os.environ.get("CAPSCOPE_TEST_DRAMATIQ_NS", "capscope-tests")
CEILING = CapabilityPolicy(tools=("fs.read", "net.fetch"))

client = redis.Redis.from_url(URL)
broker = RedisBroker(url=URL, namespace=NAMESPACE)
broker.add_middleware(
    Results(backend=RedisBackend(url=URL, namespace=NAMESPACE))
)


class RecordSkipped(dramatiq.Middleware):
    """Writes why each skipped message was skipped, for the tests to read."""

    def after_skip_message(self, broker: Any, message: Any) -> None:
        reason = str(getattr(message, "_exception", None))
        client.rpush(f"{NAMESPACE}:skipped:{message.message_id}", reason)


broker.add_middleware(RecordSkipped())
middleware = install(
    broker,
    key=KEY,
    replay_guard=RedisReplayGuard(client, prefix=f"{NAMESPACE}:jti:"),
    within=cs.Scope.empty().pushing({execution: CEILING}),
)
dramatiq.set_broker(broker)


@cs.requires_tool("fs.read")
def read_note(name: str) -> str:
    return f"note {name}"


@cs.requires_tool("net.fetch")
def fetch(url: str) -> str:
    return f"page {url}"


TOOLS = {"fs.read": lambda: read_note("todo"), "net.fetch": lambda: fetch("x")}


def seen(tools: list[str]) -> dict[str, Any]:
    """What each tool did here, and the attribution and ceiling in force."""
    outcomes = {}
    for tool in tools:
        try:
            TOOLS[tool]()
            outcomes[tool] = "allowed"
        except cs.PolicyDenied as denied:
            gate = denied.decision.gate if denied.decision else "?"
            outcomes[tool] = f"denied: {gate}"
    overlay = cs.current_overlay()
    ceiling = execution.top()
    return {
        "outcomes": outcomes,
        "run_id": overlay.run_id,
        "worker_id": overlay.worker_id,
        "envelope": overlay.attributes.get(ENVELOPE_ATTRIBUTE),
        "recursion_limit": None
        if ceiling is None
        else ceiling.recursion_limit,
        "thread": threading.current_thread().name,
    }


@dramatiq.actor(store_results=True)
def ping() -> str:
    return "pong"


@dramatiq.actor(store_results=True)
def try_tools(tools: list[str]) -> dict[str, Any]:
    return seen(tools)


@dramatiq.actor(store_results=True)
def mark_ran(key: str) -> str:
    """Record in Redis that this body ran (a refused message must not)."""
    client.set(key, "ran", ex=600)
    return seen(["fs.read"])["outcomes"]["fs.read"]


@dramatiq.actor(
    store_results=True, max_retries=2, min_backoff=10, max_backoff=50
)
def retry_once(key: str) -> dict[str, Any]:
    """Fail on the first attempt; return what the second one saw."""
    if client.incr(key) == 1:
        msg = "first attempt"
        raise RuntimeError(msg)
    return seen(["fs.read", "net.fetch"])


@dramatiq.actor(store_results=True)
def send_child(tools: list[str]) -> str:
    """Send try_tools from inside an actor: the worker's scope travels."""
    return try_tools.send(tools).message_id
