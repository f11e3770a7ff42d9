"""
Carry the caller's scope to Celery workers: one call, `install(app, key=...)`.

On the publishing side, every task message this app sends carries a signed
scope envelope (`capscope.propagation.inject`) in its headers: the worker
capture of the scope the task was published from, exactly what
`capscope.spawn` would give a worker. A task published where no policy is
installed carries an envelope of the empty scope, and runs under none.

On the worker side, before a task of this app runs, the envelope is
verified and rebuilt (`capscope.propagation.extract`), a
`RuntimeContextOverlay(worker_id=...)` is pushed on top of it (decisions
keep the caller's `run_id` and gain the worker's own `worker_id`), and the
result is installed in the context the task body runs in; it is removed
when the task ends, however it ends (success, failure, retry), after the
`task_failure` and `task_retry` signals and the task's `on_failure` and
`on_retry` handlers, which therefore still see the caller's attribution.

An envelope that is missing, malformed, tampered with, signed with a key
id the worker does not accept, or older than `max_age` is refused: the
task fails with `capscope.EnvelopeError` naming the problem (its result
raises it, `task_failure` fires, errbacks run) and its body does not run.
Whatever runs around it (failure handlers, errbacks it publishes) runs
under the empty scope, so tools fail closed.

How it hooks in (Celery 5.4 and later), and why:

- Publishing: `install` wraps this app's `send_task`, which every publish
  of the app goes through (`apply_async`, `delay`, canvas, retries, beat).
  Celery's `before_task_publish` signal would not do: its sender is the
  task *name*, so a receiver cannot tell which app publishes, and Celery
  logs and swallows a receiver's exception, so a scope that cannot be
  encoded (a narrowing hook that was not registered with
  `capscope.propagation.register_hook`, no worker depth left) would be
  published without an envelope instead of failing the `apply_async` call.
  Here `apply_async` raises it.
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
  must cover the retry window.
- Eager runs (`task.apply()`, `task_always_eager`) publish nothing: the
  task runs under the worker capture of the calling scope, through the
  same encoding (so what would not travel does not apply either), unsigned.

Supported worker pools: `solo`, `threads` and `prefork` (each task runs
start to end in one thread of one process). `gevent` and `eventlet` give
each task its own greenlet and context and should work too, but are not
tested.

Example:
    >>> import capscope as cs
    >>> from celery import Celery
    >>> from capscope.contrib.celery import install
    >>> from capscope.policies import CapabilityPolicy, RuntimeContextOverlay
    >>> app = Celery("doc", set_as_current=False)
    >>> installed = install(app, key=b"shared secret", worker_id="w-1")
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

import contextlib
import functools
import logging
import threading
import warnings
import weakref
from collections.abc import Callable, Mapping
from typing import Any, Final, Self

import attrs
from celery import signals  # type: ignore[import-untyped]

from .. import propagation
from .._exceptions import CapscopeWarning, EnvelopeError
from .._scope import Scope
from ..policies import RuntimeContextOverlay
from ..stacks import overlay

__all__ = ["Installation", "install"]

logger = logging.getLogger(__name__)

#: What `install(worker_id=...)` takes: a fixed id, a function of the task
#: being run (read `task.request` for its id, hostname, retries), or `None`
#: for `"celery:<worker hostname>:<task id>"`.
WorkerId = str | Callable[[Any], str] | None

_HEADER: Final = propagation.HEADER

#: The installation of each app, for the task base class to find.
_installations: weakref.WeakKeyDictionary[Any, Installation] = (
    weakref.WeakKeyDictionary()
)
_installations_lock = threading.Lock()


@attrs.frozen
class _Run:
    """One task being run: the installed scope and why it was refused."""

    installed: contextlib.AbstractContextManager[None]
    refusal: Exception | None


class _RefusingTask:
    """
    Mixed into `app.Task` by `install`: fails a task whose envelope was
    refused, where Celery turns an exception into the task's failure.
    """

    app: Any
    request: Any
    name: str

    def before_start(self, task_id: str, args: Any, kwargs: Any) -> None:
        installation = _installations.get(self.app)
        if installation is not None:
            installation._refuse_if_refused(self, task_id)  # noqa: SLF001
        super().before_start(task_id, args, kwargs)  # type: ignore[misc]


class Installation:
    """
    What `install` returns: `uninstall()` undoes it (also usable as a
    context manager). Uninstall only while none of the app's tasks runs.

    Example:
        >>> from celery import Celery
        >>> from capscope.contrib.celery import install
        >>> app = Celery("doc_undo", set_as_current=False)
        >>> with install(app, key=b"k") as installed:
        ...     installed.key_id, installed.accepted_key_ids
        ('default', ('default',))
    """

    def __init__(  # noqa: PLR0913 - keyword-only, as install() takes them
        self,
        app: Any,
        *,
        key: bytes,
        key_id: str,
        keys: Mapping[str, bytes],
        max_age: float | None,
        worker_id: WorkerId,
    ) -> None:
        self.app = app
        self.key_id = key_id
        self._key = key
        self._keys = dict(keys)
        self._max_age = max_age
        self._worker_id = worker_id
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
        """The key ids a worker of this app accepts, sorted."""
        return tuple(sorted(self._keys))

    # -- wiring ---------------------------------------------------------------

    def _connect(self) -> None:
        app = self.app
        self._previous_send_task = vars(app).get("send_task")
        original = app.send_task

        @functools.wraps(original)
        def send_task(name: str, *args: Any, **options: Any) -> Any:
            options["headers"] = self._headers_for(name, args, options)
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

    def _headers_for(
        self, name: str, args: tuple[Any, ...], options: Mapping[str, Any]
    ) -> dict[str, Any]:
        """The message headers for one publish, with the envelope set."""
        headers = dict(options.get("headers") or {})
        # task_id is send_task's sixth parameter, after name and four more.
        task_id = options.get("task_id", args[4] if len(args) > 4 else None)  # noqa: PLR2004
        current = self.app.current_worker_task
        if (
            task_id is not None
            and current is not None
            and current.name == name
            and current.request.id == task_id
        ):
            # A retry: the task again, as its caller sent it.
            arrived = (current.request.headers or {}).get(_HEADER)
            if isinstance(arrived, str):
                headers[_HEADER] = arrived
                return headers
        propagation.inject(headers, key=self._key, key_id=self.key_id)
        return headers

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
        try:
            scope = self._receive(task, request)
        except Exception as exc:  # noqa: BLE001 - refused, whatever the cause
            scope, refusal = Scope.empty(), exc
        installed = scope.installed()
        installed.__enter__()
        with self._lock:
            self._runs[task_id, id(request)] = _Run(installed, refusal)
        if refusal is not None and not isinstance(task, _RefusingTask):
            logger.error(
                "capscope refused the scope envelope of %s[%s]: %s; its "
                "class does not derive from the app's Task, so it runs "
                "under no policy instead of failing",
                task.name,
                task_id,
                refusal,
            )

    def _receive(self, task: Any, request: Any) -> Scope:
        """The scope a task runs under, with the worker's overlay on top."""
        headers = request.headers
        if not isinstance(headers, Mapping):
            headers = {}
        if _HEADER not in headers and request.is_eager:
            # Nothing crossed a process: the worker capture, as encoded.
            scope = propagation.decode(propagation.encode())
        else:
            scope = propagation.extract(
                headers, key=self._keys, max_age=self._max_age
            )
        worker_id = self._worker_id
        if worker_id is None:
            worker_id = f"celery:{request.hostname}:{request.id}"
        elif not isinstance(worker_id, str):
            worker_id = worker_id(task)
        return scope.pushing(
            {overlay: RuntimeContextOverlay(worker_id=worker_id)}
        )

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


def _keyring(
    key: bytes, key_id: str, keys: Mapping[str, bytes] | None
) -> dict[str, bytes]:
    """The key ids a worker accepts: *keys* and *key_id*, checked."""
    if not isinstance(key, bytes | bytearray) or not key:
        msg = "key: expected non-empty bytes"
        raise ValueError(msg)
    if not isinstance(key_id, str) or not key_id or "." in key_id:
        msg = f"key_id: expected a non-empty name without '.', got {key_id!r}"
        raise ValueError(msg)
    accepted: dict[str, bytes] = {}
    for kid, k in (keys or {}).items():
        if not isinstance(kid, str) or not kid or "." in kid:
            msg = f"keys: expected names without '.', got {kid!r}"
            raise ValueError(msg)
        if not isinstance(k, bytes | bytearray) or not k:
            msg = f"keys[{kid!r}]: expected non-empty bytes"
            raise ValueError(msg)
        accepted[kid] = bytes(k)
    if accepted.setdefault(key_id, bytes(key)) != bytes(key):
        msg = f"keys[{key_id!r}] differs from key, which signs as {key_id!r}"
        raise ValueError(msg)
    return accepted


def install(  # noqa: PLR0913 - keyword-only options
    app: Any,
    *,
    key: bytes,
    key_id: str = "default",
    keys: Mapping[str, bytes] | None = None,
    max_age: float | None = None,
    worker_id: WorkerId = None,
) -> Installation:
    """
    Carry scopes through *app*'s task messages: sign the publisher's
    worker capture into each message's headers, and run each task of the
    app under the scope its message carries.

    Call it where the app is created, before its tasks are defined, in
    every process that publishes or runs them (they share the key).

    Args:
        app: The `celery.Celery` app; other apps in the process are not
            touched.
        key: The key envelopes are signed with (HMAC-SHA256).
        key_id: Its name, written in each envelope; rotate keys by
            publishing under a new id while workers still accept the old.
        keys: Further key ids a worker accepts, on top of *key_id*
            (`{"2026-05": old_key}` during a rotation).
        max_age: Refuse envelopes signed longer ago than this many seconds
            (`None`: no limit). Count the queueing time and, for tasks that
            retry, the retry window.
        worker_id: The `worker_id` stamped on the worker's decisions: a
            string, a function of the task (`task.request` holds its id and
            hostname), or `None` for `"celery:<hostname>:<task id>"`.

    Returns:
        An `Installation`; its `uninstall()` undoes this.

    Raises:
        ValueError: a key, key id or *max_age* is malformed, or *keys*
            names *key_id* with another key.
        RuntimeError: capscope is already installed on *app*.
    """
    accepted = _keyring(key, key_id, keys)
    if max_age is not None and not max_age > 0:
        msg = (
            f"max_age: expected a positive number of seconds, got {max_age!r}"
        )
        raise ValueError(msg)
    if worker_id is not None and not (
        isinstance(worker_id, str) or callable(worker_id)
    ):
        msg = f"worker_id: expected a string or a callable, got {worker_id!r}"
        raise ValueError(msg)
    installation = Installation(
        app,
        key=bytes(key),
        key_id=key_id,
        keys=accepted,
        max_age=max_age,
        worker_id=worker_id,
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
