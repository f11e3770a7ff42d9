"""
Carrying a scope across processes and machines.

What crosses is exactly what `capscope.spawn` would install in a worker:
the *worker capture* of the sender's scope (the ceiling and approval
policy as fresh top frames, the COPY stacks whole, the NONE stacks and the
counters empty), each frame written by its stack's `codec`. The receiver
rebuilds it from empty, pushing every frame through its stack's `narrow`.

Code does not travel:

- a field holding a callable that only asks or grants (an approval
  `handler`, a command `consent` hook, a permissions `on_escalation`: each
  policy class lists them in `__capscope_droppable__`) is left behind, and
  the receiver fails closed without it (an ask with no one to answer is a
  denial) unless it installs its own;
- any other callable (a command `pre` or `post` hook) narrows what runs, so
  losing it would widen the policy: encoding it is an error, unless it was
  registered on both sides under one name with `register_hook`, and then
  its name travels instead;
- a stack without a codec (`connector`) never travels; one whose inherit
  mode is NONE (`render`) has nothing in a worker capture anyway.

Signed envelopes put that data in a message's headers: `inject` writes
it, signed with HMAC-SHA256 under a shared key, and `extract` verifies and
rebuilds it, refusing (with `EnvelopeError`) an envelope that is missing,
malformed, of another version, tampered with, signed with a key it does
not hold, or older than `max_age`. Nothing runs under any scope then.

Example:
    >>> import capscope as cs
    >>> from capscope import propagation
    >>> from capscope.policies import CapabilityPolicy
    >>> headers = {}
    >>> with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
    ...     propagation.inject(headers, key=b"shared secret")
    >>> scope = propagation.extract(headers, key=b"shared secret")
    >>> (ceiling,) = scope["execution"]
    >>> ceiling.tools
    ('fs.*',)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, ParamSpec, TypeVar

import attrs

from ._ambient import AmbientStack, Codec
from ._exceptions import CapscopeError, EnvelopeError, PolicyConfigError
from ._registry import registry
from ._scope import Scope

__all__ = [
    "HEADER",
    "VERSION",
    "EnvelopeError",
    "ScopedProcessPoolExecutor",
    "decode",
    "encode",
    "extract",
    "inject",
    "register_hook",
    "run_encoded",
    "unregister_hook",
]

P = ParamSpec("P")
R = TypeVar("R")

#: The version of the data `encode` writes; `decode` reads only this one.
VERSION = 1
#: The carrier key `inject` writes and `extract` reads.
HEADER = "capscope-scope"

#: How far in the future an envelope's issue time may be (clocks differ a
#: little between machines) before `extract(max_age=...)` refuses it.
_CLOCK_SKEW = 60.0


# -- named hooks ------------------------------------------------------------------

_hooks: dict[str, Callable[..., Any]] = {}
_hook_names: dict[int, str] = {}
_hooks_lock = threading.Lock()


def register_hook(name: str, hook: Callable[..., Any]) -> Callable[..., Any]:
    """
    Name *hook* so that a policy holding it can travel: the name crosses,
    and the receiving side, which registered its own callable under the
    same name, installs that. Returns *hook* (usable as a decorator via
    `functools.partial`).

    Raises:
        ValueError: *name* is taken by another callable.

    Example:
        >>> from capscope import propagation
        >>> def no_secrets(decision): return None
        >>> _ = propagation.register_hook("doc.no_secrets", no_secrets)
        >>> propagation.unregister_hook("doc.no_secrets")
    """
    if not isinstance(name, str) or not name:
        msg = f"a hook name is a non-empty string, got {name!r}"
        raise ValueError(msg)
    with _hooks_lock:
        taken = _hooks.get(name)
        if taken is not None and taken is not hook:
            msg = f"the hook name {name!r} is taken by {taken!r}"
            raise ValueError(msg)
        _hooks[name] = hook
        _hook_names[id(hook)] = name
    return hook


def unregister_hook(name: str) -> None:
    """
    Forget the hook registered under *name* (a no-op when none is).

    Example:
        >>> from capscope import propagation
        >>> propagation.unregister_hook("never.registered")
    """
    with _hooks_lock:
        hook = _hooks.pop(name, None)
        if hook is not None:
            _hook_names.pop(id(hook), None)


# -- encoding ---------------------------------------------------------------------


def encode(scope: Scope | None = None) -> dict[str, Any]:
    """
    The worker capture of *scope* (default: the current one) as JSON-able
    data: `{"v": 1, "stacks": {name: [frame, ...]}}`, frames outer first.

    Raises:
        PolicyConfigError: a frame holds a callable that narrows and was
            not registered with `register_hook` (the key path names it),
            or a value its stack's codec cannot write.

    Example:
        >>> import capscope as cs
        >>> from capscope import propagation
        >>> from capscope.policies import RuntimeContextOverlay
        >>> with cs.using(overlay=RuntimeContextOverlay(run_id="r-1")):
        ...     propagation.encode()["stacks"]
        {'overlay': [{'data': {'run_id': 'r-1'}}]}
    """
    capture = (scope or Scope.current()).run(Scope.capture_inherited)
    stacks: dict[str, list[dict[str, Any]]] = {}
    for stack in registry:
        if not isinstance(stack, AmbientStack) or stack.codec is None:
            continue
        frames = capture[stack]
        if frames:
            stacks[stack.name] = [
                _encode_frame(stack.name, stack.codec, index, value)
                for index, value in enumerate(frames)
            ]
    return {"v": VERSION, "stacks": stacks}


def _encode_frame(
    name: str, codec: Codec[Any], index: int, value: Any
) -> dict[str, Any]:
    where = f"{name}[{index}]"
    hooks: dict[str, str] = {}
    if attrs.has(type(value)):
        value, hooks = _without_code(where, value)
    try:
        data = codec.to_data(value)
    except PolicyConfigError as exc:
        raise PolicyConfigError(f"{where}.{exc.field}", exc.message) from None
    frame: dict[str, Any] = {"data": data}
    if hooks:
        frame["hooks"] = hooks
    return frame


def _without_code(where: str, value: Any) -> tuple[Any, dict[str, str]]:
    """*value* without its callables, and the names of the hooks dropped."""
    droppable = getattr(type(value), "__capscope_droppable__", ())
    hooks: dict[str, str] = {}
    changes: dict[str, None] = {}
    for field in attrs.fields(type(value)):
        held = getattr(value, field.name)
        if not field.init or held is None or held == ():
            continue
        if field.name in droppable:
            changes[field.name] = None  # the receiver fails closed
            continue
        if not callable(held):
            continue
        hook_name = _hook_names.get(id(held))
        if hook_name is None or _hooks.get(hook_name) is not held:
            msg = (
                f"{held!r} narrows this policy and cannot travel: "
                "register it on both sides with "
                "capscope.propagation.register_hook(name, hook)"
            )
            raise PolicyConfigError(f"{where}.{field.name}", msg)
        hooks[field.name] = hook_name
        changes[field.name] = None
    if changes:
        value = attrs.evolve(value, **changes)
    return value, hooks


def decode(data: object) -> Scope:
    """
    The scope *data* (from `encode`) describes, built from empty: each
    frame through its stack's codec and `narrow`, named hooks resolved.

    Raises:
        EnvelopeError: *data* is not `encode`'s form, of another version,
            names a stack that is not registered here or a hook that is
            not registered here, or a frame its stack refuses.

    Example:
        >>> from capscope import propagation
        >>> scope = propagation.decode({"v": 1, "stacks": {"execution": [{"data": {"tools": ["fs.read"]}}]}})
        >>> (ceiling,) = scope["execution"]
        >>> ceiling.tools
        ('fs.read',)
    """
    if not isinstance(data, Mapping) or not isinstance(
        data.get("stacks"), Mapping
    ):
        msg = "not a capscope scope: expected {'v': ..., 'stacks': {...}}"
        raise EnvelopeError(msg)
    if data.get("v") != VERSION:
        msg = (
            f"scope data of version {data.get('v')!r}; this capscope reads "
            f"version {VERSION}"
        )
        raise EnvelopeError(msg)
    scope = Scope.empty()
    for name, frames in data["stacks"].items():
        stack = registry.get(name) if name in registry else None
        if not isinstance(stack, AmbientStack) or stack.codec is None:
            msg = f"the scope carries {name!r}, which no stack here can read"
            raise EnvelopeError(msg)
        if not isinstance(frames, list):
            msg = f"{name}: expected a list of frames"
            raise EnvelopeError(msg)
        for index, frame in enumerate(frames):
            value = _decode_frame(stack.codec, f"{name}[{index}]", frame)
            try:
                scope = scope.pushing({stack: value})
            except (CapscopeError, TypeError, ValueError) as exc:
                msg = f"{name}[{index}]: refused by its stack: {exc}"
                raise EnvelopeError(msg) from exc
    return scope


def _decode_frame(codec: Codec[Any], where: str, frame: object) -> Any:
    if not isinstance(frame, Mapping) or "data" not in frame:
        msg = f"{where}: expected a frame {{'data': ...}}"
        raise EnvelopeError(msg)
    try:
        value = codec.from_data(frame["data"])
    except Exception as exc:
        msg = f"{where}: {exc}"
        raise EnvelopeError(msg) from exc
    hooks = frame.get("hooks") or {}
    if not isinstance(hooks, Mapping):
        msg = f"{where}: expected a table of hook names"
        raise EnvelopeError(msg)
    changes = {}
    for field, name in hooks.items():
        hook = _hooks.get(name) if isinstance(name, str) else None
        if hook is None:
            msg = (
                f"{where}.{field}: the hook {name!r} is not registered here "
                "(capscope.propagation.register_hook)"
            )
            raise EnvelopeError(msg)
        changes[field] = hook
    if changes:
        try:
            value = attrs.evolve(value, **changes)
        except (TypeError, ValueError) as exc:
            msg = f"{where}: {exc}"
            raise EnvelopeError(msg) from exc
    return value


# -- signed envelopes -------------------------------------------------------------


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _keyring(key: bytes | Mapping[str, bytes]) -> dict[str, bytes]:
    if isinstance(key, bytes | bytearray):
        return {"default": bytes(key)}
    ring = dict(key)
    if not ring or not all(
        isinstance(k, str) and isinstance(v, bytes | bytearray) and v
        for k, v in ring.items()
    ):
        msg = "key: expected bytes, or a non-empty {key_id: bytes} mapping"
        raise ValueError(msg)
    return {k: bytes(v) for k, v in ring.items()}


def _sign(key: bytes, key_id: str, body: str) -> str:
    message = f"{key_id}.{body}".encode("ascii")
    return _b64(hmac.new(key, message, hashlib.sha256).digest())


def inject(
    carrier: MutableMapping[str, Any],
    *,
    key: bytes,
    key_id: str = "default",
    scope: Scope | None = None,
) -> None:
    """
    Write the worker capture of *scope* (default: the current one) into
    *carrier* (message headers, say) under `HEADER`, signed with *key*
    (HMAC-SHA256) and named by *key_id* so the receiver can rotate keys.

    Raises:
        PolicyConfigError: as `encode`.

    Example:
        >>> from capscope import propagation
        >>> headers = {}
        >>> propagation.inject(headers, key=b"k", key_id="2026-11")
        >>> headers[propagation.HEADER].split(".")[0]
        '2026-11'
    """
    if not isinstance(key, bytes | bytearray) or not key:
        msg = "key: expected non-empty bytes"
        raise ValueError(msg)
    if not key_id or "." in key_id:
        msg = f"key_id: expected a non-empty name without '.', got {key_id!r}"
        raise ValueError(msg)
    payload = {"scope": encode(scope), "iat": time.time()}
    body = _b64(
        json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    )
    carrier[HEADER] = f"{key_id}.{body}.{_sign(bytes(key), key_id, body)}"


def extract(
    carrier: Mapping[str, Any],
    *,
    key: bytes | Mapping[str, bytes],
    max_age: float | None = None,
) -> Scope:
    """
    Verify the envelope in *carrier* and rebuild the scope it carries.

    *key* is the key (for `key_id="default"`), or a mapping of the key ids
    accepted (old and new during a rotation) to their keys. *max_age*
    refuses envelopes signed longer ago than that many seconds.

    Raises:
        EnvelopeError: the envelope is missing, malformed, signed with a
            key id not in *keys*, tampered with (its signature does not
            match), too old, or carries data `decode` refuses.

    Example:
        >>> from capscope import propagation
        >>> headers = {}
        >>> propagation.inject(headers, key=b"old", key_id="v1")
        >>> try:
        ...     propagation.extract(headers, key={"v2": b"new"})
        ... except propagation.EnvelopeError as e:
        ...     print(e)
        the envelope is signed with the unknown key id 'v1' (accepted: v2)
    """
    ring = _keyring(key)
    token = carrier.get(HEADER)
    if token is None:
        msg = f"no scope envelope in the carrier (header {HEADER!r})"
        raise EnvelopeError(msg)
    parts = token.split(".") if isinstance(token, str) else []
    if len(parts) != 3:  # noqa: PLR2004 - key id, body, signature
        msg = "malformed scope envelope: expected key_id.body.signature"
        raise EnvelopeError(msg)
    key_id, body, signature = parts
    secret = ring.get(key_id)
    if secret is None:
        msg = (
            f"the envelope is signed with the unknown key id {key_id!r} "
            f"(accepted: {', '.join(sorted(ring))})"
        )
        raise EnvelopeError(msg)
    if not hmac.compare_digest(_sign(secret, key_id, body), signature):
        msg = "the envelope's signature does not match: it was tampered with"
        raise EnvelopeError(msg)
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error) as exc:
        msg = "malformed scope envelope body"
        raise EnvelopeError(msg) from exc
    issued = payload.get("iat") if isinstance(payload, dict) else None
    if not isinstance(issued, int | float):
        msg = "malformed scope envelope: no issue time"
        raise EnvelopeError(msg)
    if max_age is not None:
        age = time.time() - issued
        if age < -_CLOCK_SKEW:
            msg = (
                f"the envelope is dated {-age:.1f} s in the future: the "
                "signer's clock is wrong, and its max_age cannot hold"
            )
            raise EnvelopeError(msg)
        if age > max_age:
            msg = (
                f"the envelope is {age:.1f} s old, older than max_age "
                f"{max_age:g} s"
            )
            raise EnvelopeError(msg)
    return decode(payload.get("scope"))


# -- process pools ----------------------------------------------------------------


def run_encoded(
    data: dict[str, Any], fn: Callable[..., R], *args: Any, **kwargs: Any
) -> R:
    """
    Run *fn* under the scope *data* (from `encode`) describes: the receiving
    half of any process boundary that pickles, such as a
    `multiprocessing.Pool`, whose job functions must be importable.

    Example:
        >>> import capscope as cs
        >>> from capscope import propagation
        >>> from capscope.policies import RuntimeContextOverlay
        >>> with cs.using(overlay=RuntimeContextOverlay(run_id="r-1")):
        ...     data = propagation.encode()
        >>> propagation.run_encoded(data, cs.current_overlay).run_id
        'r-1'
        >>> # in a pool: pool.apply_async(propagation.run_encoded, (data, fn, *args))
    """
    return decode(data).run(fn, *args, **kwargs)


class ScopedProcessPoolExecutor(Executor):
    """
    A `ProcessPoolExecutor` whose jobs run in the child process under the
    submitter's worker capture (as `encode` writes it, made when the job
    is submitted). *fn* and its arguments must pickle, as for any process
    pool; so must the stacks' data (it is JSON).

    A job submitted where no policy is installed runs under none, so its
    decorated tools fail closed.

    Example:
        >>> import capscope as cs
        >>> from capscope import propagation
        >>> issubclass(propagation.ScopedProcessPoolExecutor, __import__("concurrent.futures").futures.Executor)
        True
    """

    def __init__(
        self,
        *args: Any,
        executor: ProcessPoolExecutor | None = None,
        **kwargs: Any,
    ) -> None:
        self._executor = executor or ProcessPoolExecutor(*args, **kwargs)

    def submit(
        self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs
    ) -> Future[R]:
        """Submit *fn* to run in a child under the submitter's scope."""
        run: Callable[..., R] = run_encoded
        job: Future[R] = self._executor.submit(
            run, encode(), fn, *args, **kwargs
        )
        return job

    def shutdown(
        self,
        wait: bool = True,  # noqa: FBT001, FBT002 - Executor's own signature
        *,
        cancel_futures: bool = False,
    ) -> None:
        """Shut the pool down (as `ProcessPoolExecutor.shutdown`)."""
        self._executor.shutdown(wait=wait, cancel_futures=cancel_futures)
