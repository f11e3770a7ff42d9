"""
Carry the caller's scope to Dramatiq workers: `install(broker, key=...)`.

A second task engine, built only on capscope's public API
(`capscope.propagation`), to show that the generic envelope carries
everything a broker integration needs.

On the publishing side, every message the broker enqueues carries a
signed scope envelope in its `options` (`capscope.propagation.inject`):
the worker capture of the scope it was sent from, bound to the message
(its queue, actor, message id and arguments), so that the envelope copied
onto any other message is refused.

On the worker side, before an actor runs, the envelope is verified
(`capscope.propagation.verify`): bound to this message, younger than
`max_age`, never seen before when a `replay_guard` is set (a retry the
`Retries` middleware enqueues is announced, and passes once), and
narrowed by the worker's own ceiling (`within`). The actor then runs under
that scope with a `RuntimeContextOverlay(worker_id=...)` on top (its
decisions keep the caller's `run_id` and carry the envelope id as the
overlay attribute `capscope.envelope`). A refused message is failed (not
retried) and its actor does not run: the results backend, if any, holds
`EnvelopeRefused` with the reason.

A message the worker enqueues while an actor runs (an actor sending
another, a pipeline's next step) is signed with the worker's scope: one
worker hop. A worker holding only public keys (`key=None`) cannot sign,
so there sending raises `NotSent`.

Supported: synchronous actors, on Dramatiq's worker threads (the actor
runs in the thread, and the context, the middleware installed the scope
in). An `async def` actor runs on the `AsyncIO` middleware's event loop
thread, where no scope is installed, so its tools fail closed.

Examples:
    >>> import dramatiq
    >>> from dramatiq.brokers.stub import StubBroker
    >>> from capscope.contrib.dramatiq import install
    >>> broker = StubBroker()
    >>> middleware = install(broker, key=b"a shared key of at least 32 bytes")
    >>> type(middleware).__name__
    'CapscopeMiddleware'
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from typing import Any

import attrs
from dramatiq import Middleware
from dramatiq.common import q_name
from dramatiq.middleware import MiddlewareError, Retries, SkipMessage

from .. import EnvelopeError, Scope, propagation
from ..policies import RuntimeContextOverlay
from ..stacks import overlay

__all__ = ["CapscopeMiddleware", "EnvelopeRefused", "NotSent", "install"]

#: The message option that holds the envelope.
OPTION = propagation.HEADER


class EnvelopeRefused(EnvelopeError, SkipMessage):  # type: ignore[misc]
    """
    A message's scope envelope was refused: the message is failed, not
    retried, and its actor does not run.

    Examples:
        >>> from capscope import EnvelopeError
        >>> from capscope.contrib.dramatiq import EnvelopeRefused
        >>> issubclass(EnvelopeRefused, EnvelopeError)
        True
    """


class NotSent(MiddlewareError):
    """
    capscope could not sign a scope for a message, so it was not enqueued
    (`__cause__` says why: no worker depth left, a scope that cannot
    travel, no signing key).

    Examples:
        >>> from capscope.contrib.dramatiq import NotSent
        >>> str(NotSent("not sent"))
        'not sent'
    """


def _binding(message: Any) -> str:
    """What a message's envelope is bound to."""
    arguments = json.dumps(
        [list(message.args), message.kwargs],
        sort_keys=True,
        separators=(",", ":"),
    )
    # The queue by its own name: a delayed message (and a retry) waits on
    # its delay queue, then moves, unchanged otherwise.
    queue = q_name(message.queue_name)
    return (
        f"dramatiq\0{queue}\0{message.actor_name}\0"
        f"{message.message_id}\0{arguments}"
    )


@attrs.frozen
class _Running:
    envelope: propagation.Envelope
    installed: Any


class CapscopeMiddleware(Middleware):
    """
    The middleware `install` adds; its options are `install`'s.

    Examples:
        >>> from capscope.contrib.dramatiq import CapscopeMiddleware
        >>> CapscopeMiddleware(key=b"k" * 32).max_age
        3600.0
    """

    def __init__(  # noqa: PLR0913 - keyword-only options
        self,
        *,
        key: Any,
        key_id: str = "default",
        keys: Any = None,
        max_age: float | None = propagation.DEFAULT_MAX_AGE,
        replay_guard: propagation.ReplayGuard | None = None,
        within: Scope | None = None,
        worker_id: str | Callable[[Any], str] | None = None,
    ) -> None:
        if keys is None and key is None:
            msg = "keys: a worker without a signing key needs keys to verify with"
            raise EnvelopeError(msg)
        if keys is None:
            keys = {key_id: key}
        propagation.check_options(
            key=key,
            key_id=key_id,
            keys=keys,
            max_age=max_age,
            replay_guard=replay_guard,
            within=within,
        )
        if worker_id is not None and not (
            isinstance(worker_id, str) or callable(worker_id)
        ):
            msg = f"worker_id: expected a string or a callable, got {worker_id!r}"
            raise ValueError(msg)
        self.key = key
        self.key_id = key_id
        self.keys = keys
        self.max_age = max_age
        self.replay_guard = replay_guard
        self.within = within
        self.worker_id = worker_id
        self._running: dict[tuple[str, int], _Running] = {}
        self._lock = threading.Lock()

    # -- publishing -----------------------------------------------------------

    def before_enqueue(self, broker: Any, message: Any, delay: int) -> None:
        """Sign the sender's scope into *message*, or announce a retry."""
        options = message.options
        if isinstance(options.get(OPTION), str):
            self._announce_retry(message)
            return
        if self.key is None:
            msg = (
                f"{message.actor_name}: this broker holds only keys that "
                "verify, and cannot sign a scope"
            )
            raise NotSent(msg)
        try:
            propagation.inject(
                options,
                key=self.key,
                key_id=self.key_id,
                bind=_binding(message),
            )
        except Exception as exc:
            msg = f"{message.actor_name}: no scope envelope: {exc}"
            raise NotSent(msg) from exc

    def _announce_retry(self, message: Any) -> None:
        attempt = message.options.get("retries") or 0
        if self.replay_guard is None or not attempt:
            return
        with self._lock:
            running = self._running.get(
                (message.message_id, threading.get_ident())
            )
        if running is not None:  # the message this thread runs, again
            propagation.expect_retry(
                running.envelope, attempt, replay_guard=self.replay_guard
            )

    # -- running --------------------------------------------------------------

    def before_process_message(self, broker: Any, message: Any) -> None:
        """Install the message's scope, or fail the message."""
        # Dramatiq logs and swallows any exception from this hook but a
        # MiddlewareError, and then runs the actor: whatever goes wrong
        # here (arguments that cannot be digested, a failing worker_id)
        # refuses the message.
        try:
            envelope = propagation.verify(
                message.options,
                key=self.keys,
                bind=_binding(message),
                max_age=self.max_age,
                replay_guard=self.replay_guard,
                attempt=message.options.get("retries") or 0,
                within=self.within,
            )
            worker_id = self.worker_id
            if worker_id is None:
                worker_id = f"dramatiq:{message.message_id}"
            elif not isinstance(worker_id, str):
                worker_id = worker_id(message)
            scope = envelope.scope.pushing(
                {overlay: RuntimeContextOverlay(worker_id=worker_id)}
            )
        except Exception as exc:
            message.fail()
            msg = (
                f"refused to run {message.actor_name}[{message.message_id}]: "
                f"{exc}"
            )
            raise EnvelopeRefused(msg) from exc
        installed = scope.installed()
        installed.__enter__()
        with self._lock:
            self._running[message.message_id, threading.get_ident()] = (
                _Running(envelope, installed)
            )

    def after_process_message(
        self,
        broker: Any,
        message: Any,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """Remove the scope `before_process_message` installed."""
        with self._lock:
            running = self._running.pop(
                (message.message_id, threading.get_ident()), None
            )
        if running is not None:
            running.installed.__exit__(None, None, None)

    def after_skip_message(self, broker: Any, message: Any) -> None:
        """Likewise, for a message another middleware skipped."""
        self.after_process_message(broker, message)


def install(  # noqa: PLR0913 - keyword-only options
    broker: Any,
    *,
    key: Any,
    key_id: str = "default",
    keys: Any = None,
    max_age: float | None = propagation.DEFAULT_MAX_AGE,
    replay_guard: propagation.ReplayGuard | None = None,
    within: Scope | None = None,
    worker_id: str | Callable[[Any], str] | None = None,
) -> CapscopeMiddleware:
    """
    Add a `CapscopeMiddleware` to *broker*, ahead of `Retries` (so a retry
    is enqueued while the message's envelope is still known, and can be
    announced to the *replay_guard*). The options are those of
    `capscope.contrib.celery.install`: *key* signs (`None`: this process
    only verifies), *keys* verify (default: *key*), *max_age*,
    *replay_guard*, *within* (the worker's own ceiling), *worker_id* (a
    string, a function of the message, or `None` for
    `"dramatiq:<message id>"`).

    Examples:
        >>> from dramatiq.brokers.stub import StubBroker
        >>> from capscope.contrib.dramatiq import install
        >>> broker = StubBroker()
        >>> _ = install(broker, key=b"a shared key of at least 32 bytes")
        >>> [type(m).__name__ for m in broker.middleware].index("CapscopeMiddleware") < [type(m).__name__ for m in broker.middleware].index("Retries")
        True
    """
    middleware = CapscopeMiddleware(
        key=key,
        key_id=key_id,
        keys=keys,
        max_age=max_age,
        replay_guard=replay_guard,
        within=within,
        worker_id=worker_id,
    )
    has_retries = any(isinstance(m, Retries) for m in broker.middleware)
    broker.add_middleware(middleware, before=Retries if has_retries else None)
    return middleware
