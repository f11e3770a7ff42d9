"""
Carry the caller's scope to Celery workers: one call, `install(app, key=...)`.

On the publishing side, every task message this app sends carries a signed
scope envelope (`capscope.propagation.inject`) in its headers: the worker
capture of the scope the task was published from, exactly what
`capscope.spawn` would give a worker, bound to the message (its task name,
its task id and a digest of its arguments), so that a copy of the envelope
on any other message is refused. A task published where no policy is
installed carries an envelope of the empty scope, and runs under none.

On the worker side, before a task of this app runs, the envelope is
verified and rebuilt (`capscope.propagation.verify`): bound to this very
message, younger than `max_age` (one hour by default), never seen before
when a `replay_guard` is set (retries excepted: the worker that retries
announces them), and narrowed by the worker's own ceiling (`within`). A
`RuntimeContextOverlay(worker_id=...)` is pushed on top of it (decisions
keep the caller's `run_id`, and carry the envelope id as the overlay
attribute `capscope.envelope`), and the result is installed in the
context the task body runs in; it is removed when the task ends, however
it ends (success, failure, retry), after the `task_failure` and
`task_retry` signals and the task's `on_failure` and `on_retry` handlers,
which therefore still see the caller's attribution.

An envelope that is missing, malformed, signed with a key the worker does
not accept or changed since, issued for another message, too old or
replayed is refused: the task fails with `capscope.EnvelopeError` naming
the problem (its result raises it, `task_failure` fires, errbacks run) and
its body does not run. Whatever runs around it (failure handlers, errbacks
it publishes) runs under the empty scope, so tools fail closed.

A `capscope.PolicyDenied` raised out of a task reaches the caller with its
`.decision` intact (a `Decision`, read back from its audit record), also
through the JSON result serializer.

Canvas: the caller builds a chain, a group or a chord, so every task in
it runs under the caller's scope, as siblings: one worker hop each from
the caller, however long the chain. When a chain, a link callback or a
chord body is published, each task the *worker* will publish later (the
next links, callbacks, the chord's body) gets its own envelope, signed by
the caller and bound to that task (its id, and the arguments the caller
gave it: the previous result a worker prepends is not part of it), so a
worker that holds only the public key can publish them. A task that
publishes a task from its body is a hop: the child runs under the
worker's scope, one worker depth less, signed with the worker's key.

How it hooks in (Celery 5.4 and later), and why:

- Publishing: `install` wraps this app's `send_task`, which every publish
  of the app goes through (`apply_async`, `delay`, canvas, retries, beat).
  Celery's `before_task_publish` signal would not do: its sender is the
  task *name*, so a receiver cannot tell which app publishes, and Celery
  logs and swallows a receiver's exception, so a scope that cannot be
  encoded (a narrowing hook that was not registered with
  `capscope.propagation.register_hook`, no worker depth left, no signing
  key) would be published without an envelope instead of failing the
  `apply_async` call. Here `apply_async` raises it.
- Running: `task_prerun` and `task_postrun` receivers (only for tasks whose
  `task.app` is this app) install and remove the scope, keyed by task id;
  Celery sends both in the thread, and the context, that runs the body.
  Celery also swallows a `task_prerun` receiver's exception, so a refusal
  cannot be raised there: `install` sets `app.Task` to a subclass whose
  `before_start` raises it (Celery calls `before_start` where an error
  fails the task). Tasks created after `install` inherit it; call `install`
  where the app is created, before its tasks are defined or finalized. A
  task with its own `base=` class must derive from `app.Task`, and a
  `before_start` it overrides must call `super().before_start(...)`;
  otherwise a refused task still runs its body under the empty scope (its
  tools fail closed) and the refusal is logged on
  `capscope.contrib.celery` instead of failing it.
- Retries: `task.retry()` republishes the task with the envelope it arrived
  with, unchanged (the worker's own scope is not re-captured: a retry does
  not use up worker depth), so `max_age` counts from the first publish and
  must cover the retry window. A retry with other arguments
  (`retry(args=...)`) is another message, and is refused.
- Eager runs (`task.apply()`, `task_always_eager`) publish nothing: the
  task runs under the worker capture of the calling scope, through the
  same encoding (so what would not travel does not apply either), unsigned.

Supported worker pools: `solo`, `threads` and `prefork` (each task runs
start to end in one thread of one process). `gevent` and `eventlet` give
each task its own greenlet and context and should work too, but are not
tested.

Examples:
    >>> import capscope as cs
    >>> from celery import Celery
    >>> from capscope.contrib.celery import install
    >>> from capscope.policies import CapabilityPolicy, RuntimeContextOverlay
    >>> app = Celery("doc", set_as_current=False)
    >>> installed = install(app, key=b"a shared key of at least 32 bytes", worker_id="w-1")
    >>> @cs.requires_tool("fs.read")
    ... def read(path): return f"contents of {path}"
    >>> @app.task
    ... def summarise(path):
    ...     return read(path), cs.current_overlay().ids()
    >>> with cs.using(
    ...     execution=CapabilityPolicy(tools=("fs.read",)),
    ...     overlay=RuntimeContextOverlay(run_id="r-7"),
    ... ):
    ...     summarise.apply(("notes.txt",)).get()
    ('contents of notes.txt', {'run_id': 'r-7', 'worker_id': 'w-1'})
    >>> summarise.apply(("notes.txt",)).get()
    Traceback (most recent call last):
    ...
    capscope.NoPolicyInstalled: ...
    >>> installed.uninstall()
"""

from __future__ import annotations

import base64
import contextlib
import functools
import hashlib
import json
import logging
import math
import threading
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, MutableMapping
from typing import Any, Final, Self

import attrs
from celery import signals  # type: ignore[import-untyped]
from kombu.utils.uuid import uuid

from .. import propagation
from .._exceptions import CapscopeWarning, PolicyDenied
from .._keys import verifiers_for
from .._scope import Scope
from ..audit import decision_record
from ..events import Decision
from ..policies import RuntimeContextOverlay
from ..propagation import EnvelopeError
from ..stacks import overlay

__all__ = ["Installation", "install"]

logger = logging.getLogger(__name__)

#: What `install(worker_id=...)` takes: a fixed id, a function of the task
#: being run (read `task.request` for its id, hostname, retries), or `None`
#: for `"celery:<worker hostname>:<task id>"`.
WorkerId = str | Callable[[Any], str] | None

_HEADER: Final = propagation.HEADER
#: Canvas options (and signature kwargs) that hold signatures a worker
#: publishes later.
_LATER: Final = ("chain", "link", "chord")
_NESTED: Final = ("tasks", "header", "body")

#: The installation of each app, for the task base class to find.
_installations: weakref.WeakKeyDictionary[Any, Installation] = (
    weakref.WeakKeyDictionary()
)
_installations_lock = threading.Lock()


# -- what an envelope is bound to ---------------------------------------------------


def _canonical(value: Any) -> Any:
    """
    *value* as the JSON serializer would carry it, with every type kept
    apart: tuples are lists, mapping keys are text (as JSON makes them),
    and what JSON has no type for is tagged with its type and repr.
    """
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else {"float": repr(value)}
    if isinstance(value, list | tuple):
        return [_canonical(item) for item in value]
    if isinstance(value, Mapping):
        items = [[_json_key(k), _canonical(v)] for k, v in value.items()]
        return {"map": sorted(items, key=lambda item: item[0])}
    if isinstance(value, bytes | bytearray):
        return {"bytes": base64.b64encode(value).decode("ascii")}
    kind = type(value)
    return {"object": [f"{kind.__module__}.{kind.__qualname__}", repr(value)]}


def _json_key(key: object) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool | int | float):
        return json.dumps(key)
    return f"{type(key).__qualname__}:{key!r}"


def _binding(
    name: str, task_id: str, args: Any, kwargs: Any, prepended: int
) -> str:
    """
    What a task message's envelope is bound to: its task name, its id,
    how many arguments a worker puts before *args* (the previous result,
    before a chain link's own arguments) and a digest of *args* and
    *kwargs*.
    """
    arguments = json.dumps(
        [_canonical(list(args or ())), _canonical(dict(kwargs or {}))],
        separators=(",", ":"),
    ).encode()
    digest = hashlib.sha256(arguments).hexdigest()
    return f"celery\0{name}\0{task_id}\0{prepended}\0{digest}"


def _canvas(signatures: Any) -> Iterator[MutableMapping[str, Any]]:
    """Every signature in *signatures* (one, or a list), nested ones too."""
    if isinstance(signatures, Mapping):
        signatures = [signatures]
    if not isinstance(signatures, list | tuple):
        return
    for signature in signatures:
        if not isinstance(signature, MutableMapping):
            continue
        yield signature
        options = signature.get("options")
        if isinstance(options, Mapping):
            for later in _LATER:
                yield from _canvas(options.get(later))
        nested = signature.get("kwargs")
        name = signature.get("task")
        if isinstance(nested, Mapping) and str(name).startswith("celery."):
            for key in _NESTED:  # a group's tasks, a chord's header and body
                yield from _canvas(nested.get(key))


# -- the task base class ------------------------------------------------------------


@attrs.frozen
class _Run:
    """One task being run: its scope, its envelope, why it was refused."""

    installed: contextlib.AbstractContextManager[None]
    envelope: propagation.Envelope | None
    refusal: Exception | None


class _RefusingTask:
    """
    Mixed into `app.Task` by `install`: fails a task whose envelope was
    refused, where Celery turns an exception into the task's failure, and
    sends a refusal's decision back as data a JSON result can hold.
    """

    app: Any
    request: Any
    name: str

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        installation = _installations.get(self.app)
        if installation is not None:
            installation._refuse_if_refused(self, task_id)  # noqa: SLF001
        super().before_start(task_id, args, kwargs)  # type: ignore[misc]

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().__call__(*args, **kwargs)  # type: ignore[misc]
        except PolicyDenied as denied:
            # The result backend stores .args; PolicyDenied reads a
            # decision record back into a Decision.
            if isinstance(denied.decision, Decision):
                denied.args = (
                    denied.message,
                    decision_record(denied.decision),
                )
            raise


class Installation:
    """
    What `install` returns: `uninstall()` undoes it (also usable as a
    context manager). Uninstall only while none of the app's tasks runs.

    Examples:
        >>> from celery import Celery
        >>> from capscope.contrib.celery import install
        >>> app = Celery("doc_undo", set_as_current=False)
        >>> with install(app, key=b"k" * 32) as installed:
        ...     installed.key_id, installed.accepted_key_ids
        ('default', ('default',))
    """

    def __init__(  # noqa: PLR0913 - keyword-only, as install() takes them
        self,
        app: Any,
        *,
        key: Any,
        key_id: str,
        keys: Any,
        max_age: float | None,
        worker_id: WorkerId,
        replay_guard: propagation.ReplayGuard | None,
        within: Scope | None,
    ) -> None:
        self.app = app
        self.key_id = key_id
        self._key = key
        self._keys = keys
        self._max_age = max_age
        self._worker_id = worker_id
        self._replay_guard = replay_guard
        self._within = within
        self._runs: dict[tuple[str, int], _Run] = {}
        self._lock = threading.Lock()
        self._uid = f"capscope.contrib.celery:{id(self)}"
        self._own_send_task: Any = None
        self._previous_send_task: Any = None
        self._own_task_cls: Any = None
        self._previous_task_cls: Any = None
        self._installed = False
        self._undone = False

    @property
    def accepted_key_ids(self) -> tuple[str, ...]:
        """The key ids a worker of this app accepts now, sorted."""
        return tuple(sorted(verifiers_for(self._keys)))

    # -- wiring ---------------------------------------------------------------

    def _connect(self) -> None:
        app = self.app
        self._previous_send_task = vars(app).get("send_task")
        original = app.send_task

        @functools.wraps(original)
        def send_task(name: str, *args: Any, **options: Any) -> Any:
            self._sign(name, args, options)
            return original(name, *args, **options)

        self._own_send_task = send_task
        app.send_task = send_task

        self._previous_task_cls = vars(app).get("Task")
        base = app.Task
        self._own_task_cls = type(
            base.__name__,
            (_RefusingTask, base),
            {"__module__": base.__module__, "__qualname__": base.__qualname__},
        )
        app.Task = self._own_task_cls
        if app.finalized:
            unguarded = sorted(
                name
                for name, task in app.tasks.items()
                if not isinstance(task, _RefusingTask)
                and not name.startswith("celery.")
            )
            if unguarded:
                warnings.warn(
                    CapscopeWarning(
                        "capscope.contrib.celery.install() was called after "
                        f"the tasks {', '.join(unguarded)} were created: "
                        "a refused scope envelope cannot fail them (they "
                        "run under no policy instead); call install() "
                        "before defining the app's tasks"
                    ),
                    stacklevel=3,
                )

        signals.task_prerun.connect(
            self._on_prerun, weak=False, dispatch_uid=f"{self._uid}:prerun"
        )
        signals.task_postrun.connect(
            self._on_postrun, weak=False, dispatch_uid=f"{self._uid}:postrun"
        )
        self._installed = True

    def uninstall(self) -> None:
        """
        Disconnect the signal receivers and restore the app's `send_task`
        and `Task` (tasks created meanwhile keep the subclass, which does
        nothing once uninstalled). Idempotent.
        """
        if self._undone:
            return
        self._undone = True
        self._installed = False
        app = self.app
        signals.task_prerun.disconnect(dispatch_uid=f"{self._uid}:prerun")
        signals.task_postrun.disconnect(dispatch_uid=f"{self._uid}:postrun")
        if vars(app).get("send_task") is self._own_send_task:
            if self._previous_send_task is None:
                del app.send_task
            else:
                app.send_task = self._previous_send_task
        if vars(app).get("Task") is self._own_task_cls:
            if self._previous_task_cls is None:
                del app.Task
            else:
                app.Task = self._previous_task_cls
        with _installations_lock:
            if _installations.get(app) is self:
                del _installations[app]

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.uninstall()

    # -- publishing -----------------------------------------------------------

    def _sign(
        self, name: str, args: tuple[Any, ...], options: dict[str, Any]
    ) -> None:
        """
        Set the envelope of one publish (send_task's *args* and *options*)
        and of every task in it that a worker publishes later.
        """
        # send_task's parameters: name, then args, kwargs, countdown, eta,
        # task_id and more, by keyword or not.
        task_args = args[0] if args else options.get("args")
        task_kwargs = args[1] if len(args) > 1 else options.get("kwargs")
        if len(args) > 4:  # noqa: PLR2004 - task_id is the fifth after name
            task_id = args[4]
        else:
            task_id = options.get("task_id") or uuid()
            options["task_id"] = task_id
        headers = dict(options.get("headers") or {})
        if isinstance(headers.get(_HEADER), str):
            # It has its envelope: a retry, or a canvas task its caller
            # signed. The receiver checks that it was issued for it.
            self._announce_retry(name, task_id)
        else:
            self._inject(
                headers, _binding(name, task_id, task_args, task_kwargs, 0)
            )
        options["headers"] = headers
        for later in _LATER:
            self._sign_later(options.get(later))

    def _inject(self, headers: dict[str, Any], bind: str) -> None:
        if self._key is None:
            msg = (
                "this app holds only keys that verify: it cannot sign a "
                "scope for the task it publishes (publish it from where "
                "the signing key is, or as part of the caller's canvas)"
            )
            raise EnvelopeError(msg)
        propagation.inject(
            headers, key=self._key, key_id=self.key_id, bind=bind
        )

    def _sign_later(self, signatures: Any) -> None:
        """Sign each task in *signatures* for the worker that publishes it."""
        for signature in _canvas(signatures):
            name = signature.get("task")
            options = signature.get("options")
            if (
                not isinstance(name, str)
                or name.startswith("celery.")  # a group, chord, chain
                or not isinstance(options, MutableMapping)
            ):
                continue
            headers = dict(options.get("headers") or {})
            if isinstance(headers.get(_HEADER), str):
                continue  # signed already (a chord body, by its first member)
            task_id = options.setdefault("task_id", uuid())
            prepended = 0 if signature.get("immutable") else 1
            args, kwargs = signature.get("args"), signature.get("kwargs")
            self._inject(
                headers, _binding(name, task_id, args, kwargs, prepended)
            )
            options["headers"] = headers

    def _announce_retry(self, name: str, task_id: str) -> None:
        """When this publish retries the running task, tell the guard."""
        current = self.app.current_worker_task
        if (
            self._replay_guard is None
            or current is None
            or current.name != name
            or current.request.id != task_id
        ):
            return
        with self._lock:
            run = self._runs.get((task_id, id(current.request)))
        if run is not None and run.envelope is not None:
            propagation.expect_retry(
                run.envelope,
                current.request.retries + 1,
                replay_guard=self._replay_guard,
            )

    # -- running --------------------------------------------------------------

    def _mine(self, task: Any) -> bool:
        return self._installed and getattr(task, "app", None) is self.app

    def _on_prerun(
        self,
        sender: Any = None,
        task_id: str | None = None,
        task: Any = None,
        **_: Any,
    ) -> None:
        task = sender if task is None else task
        if not self._mine(task) or task_id is None:
            return
        request = task.request
        refusal: Exception | None = None
        envelope = None
        try:
            envelope, scope = self._receive(task, request)
        except Exception as exc:  # noqa: BLE001 - refused, whatever the cause
            scope, refusal = Scope.empty(), exc
        installed = scope.installed()
        installed.__enter__()
        with self._lock:
            self._runs[task_id, id(request)] = _Run(
                installed, envelope, refusal
            )
        if refusal is not None and not isinstance(task, _RefusingTask):
            logger.error(
                "capscope refused the scope envelope of %s[%s]: %s; its "
                "class does not derive from the app's Task, so it runs "
                "under no policy instead of failing",
                task.name,
                task_id,
                refusal,
            )

    def _receive(
        self, task: Any, request: Any
    ) -> tuple[propagation.Envelope | None, Scope]:
        """The envelope and scope a task runs under, the worker's overlay on top."""
        headers = request.headers
        if not isinstance(headers, Mapping):
            headers = {}
        envelope = None
        if _HEADER not in headers and request.is_eager:
            # Nothing crossed a process: the worker capture, as encoded.
            scope = propagation.decode(
                propagation.encode(), within=self._within
            )
        else:
            envelope = self._verify(task.name, request, headers)
            scope = envelope.scope
        worker_id = self._worker_id
        if worker_id is None:
            worker_id = f"celery:{request.hostname}:{request.id}"
        elif not isinstance(worker_id, str):
            worker_id = worker_id(task)
        return envelope, scope.pushing(
            {overlay: RuntimeContextOverlay(worker_id=worker_id)}
        )

    def _verify(
        self, name: str, request: Any, headers: Mapping[str, Any]
    ) -> propagation.Envelope:
        """The envelope of this message: bound to it, or refused."""
        # A canvas task's caller could not know the previous result its
        # worker puts first: its envelope is bound to the rest.
        tries = (0, 1) if request.args else (0,)
        for prepended in tries:
            try:
                return propagation.verify(
                    headers,
                    key=self._keys,
                    bind=_binding(
                        name,
                        request.id,
                        list(request.args or ())[prepended:],
                        request.kwargs,
                        prepended,
                    ),
                    max_age=self._max_age,
                    replay_guard=self._replay_guard,
                    attempt=request.retries or 0,
                    within=self._within,
                )
            except EnvelopeError as exc:
                if prepended == tries[-1] or "another message" not in str(exc):
                    raise
        raise AssertionError  # pragma: no cover - the loop returns or raises

    def _refuse_if_refused(self, task: Any, task_id: str) -> None:
        with self._lock:
            run = self._runs.get((task_id, id(task.request)))
        if run is None:
            msg = (
                f"capscope installed no scope for {task.name}[{task_id}] "
                "(its task_prerun receiver did not run): refused"
            )
            raise EnvelopeError(msg)
        if isinstance(run.refusal, EnvelopeError):
            msg = f"refused to run {task.name}[{task_id}]: {run.refusal}"
            raise EnvelopeError(msg) from run.refusal
        if run.refusal is not None:
            raise run.refusal

    def _on_postrun(
        self,
        sender: Any = None,
        task_id: str | None = None,
        task: Any = None,
        **_: Any,
    ) -> None:
        task = sender if task is None else task
        if getattr(task, "app", None) is not self.app or task_id is None:
            return
        with self._lock:
            run = self._runs.pop((task_id, id(task.request)), None)
        if run is not None:
            run.installed.__exit__(None, None, None)


def _verifying_keys(key: Any, key_id: str, keys: Any) -> Any:
    """What workers verify with: *keys*, with *key* under *key_id* added."""
    if keys is None:
        if key is None:
            msg = "keys: a worker without a signing key needs keys to verify with"
            raise EnvelopeError(msg)
        if callable(key) and not isinstance(key, bytes | bytearray):
            return lambda: dict([key()])  # the provider's key of the moment
        return {key_id: key}
    if key is None or callable(key) or not isinstance(keys, Mapping):
        return keys
    merged = dict(keys)
    if merged.setdefault(key_id, key) is not key and merged[key_id] != key:
        msg = f"keys[{key_id!r}] differs from key, which signs as {key_id!r}"
        raise EnvelopeError(msg)
    return merged


def install(  # noqa: PLR0913 - keyword-only options
    app: Any,
    *,
    key: Any,
    key_id: str = "default",
    keys: Any = None,
    max_age: float | None = propagation.DEFAULT_MAX_AGE,
    worker_id: WorkerId = None,
    replay_guard: propagation.ReplayGuard | None = None,
    within: Scope | None = None,
) -> Installation:
    """
    Carry scopes through *app*'s task messages: sign the publisher's
    worker capture into each message's headers, bound to that message,
    and run each task of the app under the scope its message carries.

    Call it where the app is created, before its tasks are defined, in
    every process that publishes or runs them.

    Args:
        app: The `celery.Celery` app; other apps in the process are not
            touched.
        key: What envelopes are signed with: a shared key of at least 32
            bytes (HMAC-SHA256), an Ed25519 private key (workers then hold
            only the public one, in *keys*), a provider called at every
            publish that returns `(key_id, key)` (rotation without a
            restart), or `None` where this process only runs tasks
            (it then cannot publish any: a worker with only a public key
            cannot mint a scope).
        key_id: The name of a fixed *key*, written in each envelope.
        keys: What a worker verifies with: a key, `{key_id: key}` (old and
            new keys during a rotation; *key* is added under *key_id*), or
            a provider called for each task that returns either. Default:
            *key* itself (its public half for Ed25519).
        max_age: Refuse envelopes signed longer ago than this many seconds
            (default one hour; `None` turns it off). Count the queueing
            time and, for tasks that retry, the retry window; for a chain,
            the time until its last link starts.
        worker_id: The `worker_id` stamped on the worker's decisions: a
            string, a function of the task (`task.request` holds its id and
            hostname), or `None` for `"celery:<hostname>:<task id>"`.
        replay_guard: Refuse a message whose envelope was used before
            (`capscope.propagation.RedisReplayGuard` shared by every
            worker; a `MemoryReplayGuard` covers one worker process).
            Retries the worker publishes are announced to it, and pass.
        within: This worker's own scope (the machine's ceiling): each
            envelope's scope is narrowed by it, and one asking for more
            is refused.

    Returns:
        An `Installation`; its `uninstall()` undoes this.

    Raises:
        EnvelopeError: a key, key id, *max_age* or *replay_guard* is
            unusable, or *keys* names *key_id* with another key.
        ValueError: *worker_id* is not a string or a callable.
        RuntimeError: capscope is already installed on *app*.
    """
    verifying = _verifying_keys(key, key_id, keys)
    propagation.check_options(
        key=key,
        key_id=key_id,
        keys=verifying,
        max_age=max_age,
        replay_guard=replay_guard,
        within=within,
    )
    if worker_id is not None and not (
        isinstance(worker_id, str) or callable(worker_id)
    ):
        msg = f"worker_id: expected a string or a callable, got {worker_id!r}"
        raise ValueError(msg)
    installation = Installation(
        app,
        key=key,
        key_id=key_id,
        keys=verifying,
        max_age=max_age,
        worker_id=worker_id,
        replay_guard=replay_guard,
        within=within,
    )
    with _installations_lock:
        if app in _installations:
            msg = f"capscope is already installed on {app!r}"
            raise RuntimeError(msg)
        _installations[app] = installation
    try:
        installation._connect()  # noqa: SLF001
    except BaseException:
        installation.uninstall()
        with _installations_lock:
            _installations.pop(app, None)
        raise
    return installation
