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
it, signed (HMAC-SHA256 under a shared key of 32 bytes or more, or
Ed25519 so that receivers hold only the public key) together with a
random id, the issue time and a digest of what the message is about
(`bind`); `extract` verifies and rebuilds it, narrowed by the receiver's
own scope (`within`), refusing with `EnvelopeError` an envelope that is
missing, malformed, of another version, signed with a key it does not
hold or changed since, issued for another message, older than `max_age`
(one hour by default), or seen before by a `ReplayGuard`. Nothing runs
under any scope then.

Examples:
    >>> import capscope as cs
    >>> from capscope import propagation
    >>> from capscope.policies import CapabilityPolicy
    >>> key = b"a shared key of at least 32 bytes"
    >>> headers = {}
    >>> with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
    ...     _ = propagation.inject(headers, key=key, bind="job-1")
    >>> scope = propagation.extract(headers, key=key, bind="job-1")
    >>> (ceiling,) = scope["execution"]
    >>> ceiling.tools
    ('fs.*',)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import math
import re
import secrets
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from typing import Any, ParamSpec, Protocol, TypeVar, runtime_checkable

import attrs

from . import events
from ._ambient import AmbientStack, Codec
from ._current import current_overlay
from ._exceptions import CapscopeError, EnvelopeError, PolicyConfigError
from ._keys import MIN_KEY_BYTES, signer_for, verifiers_for
from ._registry import registry
from ._scope import Scope
from .policies.capability import CapabilityPolicy
from .policies.overlay import RuntimeContextOverlay
from .stacks import execution, overlay

__all__ = [
    "DEFAULT_MAX_AGE",
    "ENVELOPE_ATTRIBUTE",
    "HEADER",
    "MIN_KEY_BYTES",
    "VERSION",
    "Envelope",
    "EnvelopeError",
    "MemoryReplayGuard",
    "RedisReplayGuard",
    "ReplayGuard",
    "ScopedProcessPoolExecutor",
    "check_options",
    "decode",
    "encode",
    "expect_retry",
    "extract",
    "inject",
    "register_hook",
    "run_encoded",
    "unregister_hook",
    "verify",
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

    Examples:
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

    Examples:
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

    Examples:
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


def decode(data: object, *, within: Scope | None = None) -> Scope:
    """
    The scope *data* (from `encode`) describes, built from empty (or on
    top of *within*, the receiver's own scope, which then narrows every
    frame): each frame through its stack's codec and `narrow`, named hooks
    resolved. Data without a ceiling allows no tool, on top of *within*
    too (an empty ceiling is pushed): narrowing never widens.

    Raises:
        EnvelopeError: *data* is not `encode`'s form, of another version,
            names a stack that is not registered here or a hook that is
            not registered here, or a frame its stack refuses.

    Examples:
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
    scope = Scope.empty() if within is None else within
    if scope[execution.name] and not data["stacks"].get(execution.name):
        # The sender had no ceiling, so no tool was allowed it: narrowed
        # by the receiver's ceiling, still none is.
        scope = scope.pushing({execution: CapabilityPolicy(tools=())})
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

#: How long an envelope is good for unless `extract` is told otherwise
#: (seconds). `max_age=None` turns the check off, and must be said.
DEFAULT_MAX_AGE = 3600.0
#: The envelope format `inject` writes and `extract` reads.
ENVELOPE_VERSION = 2
#: The most an envelope may weigh (a header is no place for more).
MAX_ENVELOPE_CHARS = 1 << 20
_TOKEN = re.compile(
    r"([A-Za-z0-9_:-]{1,64})\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]{1,128})"
)
_JTI = re.compile(r"[0-9a-f]{32}")
_DIGEST = re.compile(r"[0-9a-f]{64}")
#: Issue times outside this range are not times (seconds since the epoch).
_EPOCH_RANGE = (0.0, 1e11)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _bind_digest(bind: bytes | str | None) -> str | None:
    """What an envelope records of the message it is bound to."""
    if bind is None:
        return None
    if isinstance(bind, str):
        bind = bind.encode("utf-8")
    if not isinstance(bind, bytes | bytearray):
        msg = f"bind: expected bytes, str or None, got {type(bind).__name__}"
        raise EnvelopeError(msg)
    return hashlib.sha256(b"capscope.bind\0" + bytes(bind)).hexdigest()


@attrs.frozen
class Envelope:
    """
    A verified envelope (`verify`): who signed it, when, what for, and the
    scope it carries, rebuilt.

    Attributes:
        id: the envelope's random id (128 bits, hex): what a replay guard
            remembers, and what the publisher's `delegated` event and the
            receiver's decisions (overlay attribute `capscope.envelope`)
            carry.
        key_id: the id of the key that signed it.
        issued_at: when it was signed (seconds since the epoch).
        expires_at: when `max_age` runs out for it (`None` without one).
        scope: the scope it carries, narrowed by the receiver's `within`.

    Examples:
        >>> import capscope as cs
        >>> from capscope import propagation
        >>> key = b"a shared key of at least 32 bytes"
        >>> headers = {}
        >>> _ = propagation.inject(headers, key=key, bind="task-42")
        >>> envelope = propagation.verify(headers, key=key, bind="task-42")
        >>> len(envelope.id), envelope.key_id
        (32, 'default')
    """

    id: str
    key_id: str
    issued_at: float
    expires_at: float | None
    scope: Scope


def inject(
    carrier: MutableMapping[str, Any],
    *,
    key: Any,
    key_id: str | None = None,
    bind: bytes | str | None = None,
    scope: Scope | None = None,
) -> str:
    """
    Write the worker capture of *scope* (default: the current one) into
    *carrier* (message headers, say) under `HEADER`, signed, and return
    the envelope's id.

    The signed body holds a random id, the issue time, a digest of *bind*
    (what the message is about: the receiver must name the same thing,
    so an envelope copied onto another message is refused) and the scope.
    A `delegated` decision (gate `envelope`) is emitted with the id.

    *key* is a shared key of at least 32 bytes (HMAC-SHA256), an Ed25519
    private key (receivers then hold only the public key and cannot mint
    envelopes), or a provider called now that returns `(key_id, key)`
    (rotation without a restart). *key_id* names the key (default
    `"default"`; a provider names its own).

    Raises:
        EnvelopeError: a key that is too short, not a key, or a public key;
            a bad *key_id* or *bind*.
        PolicyConfigError: as `encode`.

    Examples:
        >>> from capscope import propagation
        >>> headers = {}
        >>> envelope_id = propagation.inject(headers, key=b"k" * 32, key_id="2026-11")
        >>> headers[propagation.HEADER].split(".")[0]
        '2026-11'
    """
    signer = signer_for(key, key_id)
    envelope_id = secrets.token_hex(16)
    payload = {
        "v": ENVELOPE_VERSION,
        "alg": signer.alg,
        "jti": envelope_id,
        "iat": time.time(),
        "bind": _bind_digest(bind),
        "scope": encode(scope),
    }
    body = _b64(
        json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()
    )
    signature = _b64(signer.sign(f"{signer.key_id}.{body}".encode("ascii")))
    carrier[HEADER] = f"{signer.key_id}.{body}.{signature}"
    if events.has_subscribers():
        events.emit(
            events.Decision(
                action=events.Action.DELEGATED,
                gate=events.Gate.ENVELOPE,
                tool="*",
                reason=f"scope delegated in envelope {envelope_id} (key {signer.key_id})",
                overlay=(scope or Scope.current()).run(current_overlay),
            )
        )
    return envelope_id


def _receiving(
    max_age: object, replay_guard: object, within: object
) -> float | None:
    """*max_age* as a number of seconds, once the three are checked."""
    limit = _max_age(max_age)
    if replay_guard is not None:
        if not isinstance(replay_guard, ReplayGuard):
            msg = (
                "replay_guard: expected a ReplayGuard (seen(id, expires_at)), "
                f"got {type(replay_guard).__name__}"
            )
            raise EnvelopeError(msg)
        if limit is None:
            msg = "replay_guard: needs a max_age, which bounds how long ids are kept"
            raise EnvelopeError(msg)
    if within is not None and not isinstance(within, Scope):
        msg = f"within: expected a Scope or None, got {type(within).__name__}"
        raise EnvelopeError(msg)
    return limit


def check_options(  # noqa: PLR0913 - inject's and verify's options
    *,
    key: Any = None,
    key_id: str | None = None,
    keys: Any = None,
    max_age: float | None = DEFAULT_MAX_AGE,
    replay_guard: ReplayGuard | None = None,
    within: Scope | None = None,
) -> None:
    """
    Check envelope options where an integration is configured, before any
    message: *key* and *key_id* as `inject` takes them (`None`: nothing
    signs here), *keys* and the rest as `verify` takes them (`None`: not
    checked). Providers are called once.

    Raises:
        EnvelopeError: the first unusable option, named.

    Examples:
        >>> from capscope import propagation
        >>> propagation.check_options(key=b"k" * 32, max_age=60)
        >>> propagation.check_options(keys={"v1": b"short"})
        Traceback (most recent call last):
        ...
        capscope.EnvelopeError: key['v1']: a shared key must hold at least 32 bytes (got 5): use secrets.token_bytes(32)
    """
    if key is not None:
        signer_for(key, key_id)
    if keys is not None:
        verifiers_for(keys)
    _receiving(max_age, replay_guard, within)


def verify(  # noqa: PLR0913 - keyword-only options of one check
    carrier: Mapping[str, Any],
    *,
    key: Any,
    bind: bytes | str | None = None,
    max_age: float | None = DEFAULT_MAX_AGE,
    replay_guard: ReplayGuard | None = None,
    attempt: int = 0,
    within: Scope | None = None,
) -> Envelope:
    """
    Verify the envelope in *carrier* and rebuild the scope it carries;
    `extract` returns just the scope.

    Args:
        carrier: the mapping `inject` wrote into.
        key: a shared key (id `"default"`), an Ed25519 public (or private)
            key, a `{key_id: key}` mapping (old and new keys during a
            rotation), or a provider called now that returns either.
        bind: what this message is about, as the publisher named it: an
            envelope issued for anything else is refused.
        max_age: refuse envelopes signed longer ago than this many
            seconds (default one hour); `None` turns the check off.
        replay_guard: remembers envelope ids; an id it has seen is
            refused (needs a *max_age*, which bounds how long it keeps them).
        attempt: which delivery of the message this is: 0 the first, n
            the n-th retry, which a *replay_guard* accepts only when the
            receiver that retried announced it (`expect_retry`), and only
            once. So a copy whose retry count was raised is refused too.
        within: the receiver's own scope (its ceiling, say): the envelope's
            frames are pushed onto it, so each is narrowed by it, and one
            that asks for more is refused. Default: from empty.

    Raises:
        EnvelopeError: for every refusal, each with its own message: no
            envelope, a malformed one, an unknown key id, a signature that
            does not match the key, another version, another message
            (*bind*), too old or from the future, replayed, a scope the
            receiver's stacks refuse, or bad arguments.

    Examples:
        >>> from capscope import propagation
        >>> headers = {}
        >>> _ = propagation.inject(headers, key=b"the old key, of 32 bytes or more", key_id="v1")
        >>> try:
        ...     propagation.verify(headers, key={"v2": b"the new key, of 32 bytes or more"})
        ... except propagation.EnvelopeError as e:
        ...     print(e)
        the envelope is signed with the unknown key id 'v1' (accepted: v2)
    """
    # bad arguments first, whatever arrived
    limit = _receiving(max_age, replay_guard, within)
    if (
        isinstance(attempt, bool)
        or not isinstance(attempt, int)
        or attempt < 0
    ):
        msg = f"attempt: expected a delivery number >= 0, got {attempt!r}"
        raise EnvelopeError(msg)
    verifiers = verifiers_for(key)
    key_id, body, message, signature = _split(carrier)
    verifier = verifiers.get(key_id)
    if verifier is None:
        msg = (
            f"the envelope is signed with the unknown key id {key_id!r} "
            f"(accepted: {', '.join(sorted(verifiers))})"
        )
        raise EnvelopeError(msg)
    if not verifier.verify(message, signature):
        msg = (
            f"the envelope's signature does not match the key {key_id!r}: "
            "it was signed with another key, or changed since"
        )
        raise EnvelopeError(msg)
    payload = _payload(body, verifier.alg)
    if payload["bind"] != _bind_digest(bind):
        msg = "this envelope was issued for another message"
        raise EnvelopeError(msg)
    issued = payload["iat"]
    _check_age(issued, limit)
    envelope_id = payload["jti"]
    expires = None if limit is None else issued + limit
    if replay_guard is not None:
        assert expires is not None  # noqa: S101 - checked above
        _first_use(replay_guard, envelope_id, attempt, expires)
    # The rebuild is not anyone's decision: no root_policy event for it.
    start = _quiet(Scope.empty() if within is None else within, on=True)
    attribution = RuntimeContextOverlay(
        attributes={ENVELOPE_ATTRIBUTE: envelope_id}
    )
    scope = decode(payload["scope"], within=start).pushing(
        {overlay: attribution}
    )
    scope = _quiet(scope, on=False)
    if events.has_subscribers():
        reason = f"scope received in envelope {envelope_id} (key {key_id})"
        scope.run(
            lambda: events.emit(
                events.Decision(
                    action=events.Action.ALLOW,
                    gate=events.Gate.ENVELOPE,
                    tool="*",
                    reason=reason,
                    overlay=current_overlay(),
                )
            )
        )
    return Envelope(envelope_id, key_id, issued, expires, scope)


def extract(  # noqa: PLR0913 - as verify
    carrier: Mapping[str, Any],
    *,
    key: Any,
    bind: bytes | str | None = None,
    max_age: float | None = DEFAULT_MAX_AGE,
    replay_guard: ReplayGuard | None = None,
    attempt: int = 0,
    within: Scope | None = None,
) -> Scope:
    """
    `verify(...).scope`: the scope the envelope in *carrier* carries.

    Examples:
        >>> import capscope as cs
        >>> from capscope import propagation
        >>> from capscope.policies import CapabilityPolicy
        >>> key = b"a shared key of at least 32 bytes"
        >>> headers = {}
        >>> with cs.using(execution=CapabilityPolicy(tools=("fs.*",))):
        ...     _ = propagation.inject(headers, key=key, bind="job-7")
        >>> scope = propagation.extract(headers, key=key, bind="job-7")
        >>> (ceiling,) = scope["execution"]
        >>> ceiling.tools
        ('fs.*',)
        >>> propagation.extract(headers, key=key, bind="job-8")
        Traceback (most recent call last):
        ...
        capscope.EnvelopeError: this envelope was issued for another message
    """
    return verify(
        carrier,
        key=key,
        bind=bind,
        max_age=max_age,
        replay_guard=replay_guard,
        attempt=attempt,
        within=within,
    ).scope


#: The overlay attribute a receiver's decisions carry: the envelope's id.
ENVELOPE_ATTRIBUTE = "capscope.envelope"


def _quiet(scope: Scope, *, on: bool) -> Scope:
    """*scope*, with its events muted (or not) while it runs."""
    ctx = scope._ctx.copy()  # noqa: SLF001 - our own class
    ctx.run(events._MUTED.set, on)  # noqa: SLF001 - the same switch as muted()
    return Scope(ctx)


def _max_age(max_age: object) -> float | None:
    if max_age is None:
        return None
    if (
        isinstance(max_age, bool)
        or not isinstance(max_age, int | float)
        or not math.isfinite(max_age)
        or max_age <= 0
    ):
        msg = (
            "max_age: expected a positive number of seconds or None, got "
            f"{max_age!r}"
        )
        raise EnvelopeError(msg)
    return float(max_age)


def _split(carrier: object) -> tuple[str, str, bytes, bytes]:
    """The key id, body, signed message and signature of the envelope."""
    if not isinstance(carrier, Mapping):
        msg = f"the carrier is a {type(carrier).__name__}, not a mapping of headers"
        raise EnvelopeError(msg)
    token = carrier.get(HEADER)
    if token is None:
        msg = f"no scope envelope in the carrier (header {HEADER!r})"
        raise EnvelopeError(msg)
    if not isinstance(token, str) or len(token) > MAX_ENVELOPE_CHARS:
        msg = "malformed scope envelope: expected a string of at most 1 MiB"
        raise EnvelopeError(msg)
    match = _TOKEN.fullmatch(token)
    if match is None:
        msg = "malformed scope envelope: expected key_id.body.signature"
        raise EnvelopeError(msg)
    key_id, body, signature = match.groups()
    try:
        raw_signature = _unb64(signature)
    except (ValueError, binascii.Error):
        raw_signature = None
    # Canonical only: no second spelling of one signature (base64 would
    # ignore the unused low bits of its last character).
    if raw_signature is None or _b64(raw_signature) != signature:
        msg = "malformed scope envelope: the signature is not base64"
        raise EnvelopeError(msg)
    return key_id, body, f"{key_id}.{body}".encode("ascii"), raw_signature


def _payload(body: str, alg: str) -> dict[str, Any]:
    """The signed body, read and checked field by field."""
    try:
        payload = json.loads(_unb64(body))
    except (ValueError, binascii.Error, RecursionError):
        msg = "malformed scope envelope body"
        raise EnvelopeError(msg) from None
    if not isinstance(payload, dict) or payload.get("v") != ENVELOPE_VERSION:
        version = payload.get("v") if isinstance(payload, dict) else None
        msg = (
            f"a scope envelope of version {version!r}; this capscope reads "
            f"version {ENVELOPE_VERSION}"
        )
        raise EnvelopeError(msg)
    if payload.get("alg") != alg:
        msg = "the envelope names another algorithm than its key's"
        raise EnvelopeError(msg)
    if not isinstance(payload.get("jti"), str) or not _JTI.fullmatch(
        payload["jti"]
    ):
        msg = "malformed scope envelope: no envelope id"
        raise EnvelopeError(msg)
    bound = payload.get("bind")
    if bound is not None and (
        not isinstance(bound, str) or not _DIGEST.fullmatch(bound)
    ):
        msg = "malformed scope envelope: a binding that is not a digest"
        raise EnvelopeError(msg)
    issued = payload.get("iat")
    if (
        isinstance(issued, bool)
        or not isinstance(issued, int | float)
        or not _EPOCH_RANGE[0] < issued < _EPOCH_RANGE[1]
    ):
        msg = "malformed scope envelope: no usable issue time"
        raise EnvelopeError(msg)
    payload["iat"] = float(issued)
    return payload


def _check_age(issued: float, max_age: float | None) -> None:
    age = time.time() - issued
    if age < -_CLOCK_SKEW:
        msg = (
            f"the envelope is dated {-age:.1f} s in the future: the "
            "signer's clock is wrong, or the envelope is forged"
        )
        raise EnvelopeError(msg)
    if max_age is not None and age > max_age:
        msg = (
            f"the envelope is {age:.1f} s old, older than max_age "
            f"{max_age:g} s"
        )
        raise EnvelopeError(msg)


# -- replay guards ----------------------------------------------------------------


def _seen(guard: ReplayGuard, name: str, expires_at: float) -> bool:
    try:
        again = guard.seen(name, expires_at)
    except EnvelopeError:
        raise
    except Exception as exc:
        msg = f"the replay guard failed: {exc!r:.120}"
        raise EnvelopeError(msg) from exc
    return again is not False  # anything but False: seen, fail closed


def _first_use(
    guard: ReplayGuard, envelope_id: str, attempt: int, expires_at: float
) -> None:
    """Refuse a second use of *envelope_id*'s delivery *attempt*."""
    if attempt and not _seen(guard, f"{envelope_id}#{attempt}+", expires_at):
        msg = (
            f"retry {attempt} of envelope {envelope_id} was not announced "
            "by the receiver that retried (expect_retry): a copy with its "
            "retry count changed"
        )
        raise EnvelopeError(msg)
    name = f"{envelope_id}#{attempt}" if attempt else envelope_id
    if _seen(guard, name, expires_at):
        msg = f"the envelope {envelope_id} was used before: a replay"
        if attempt:
            msg += f" of retry {attempt}"
        raise EnvelopeError(msg)


def expect_retry(
    envelope: Envelope, attempt: int, *, replay_guard: ReplayGuard
) -> None:
    """
    Announce that the message *envelope* came in is being delivered again
    as retry *attempt* (1 for the first retry): `verify(...,
    attempt=attempt, replay_guard=...)` then accepts it once. Call it
    where the retry is published, with the guard the receivers use.

    Examples:
        >>> from capscope import propagation
        >>> key, guard = b"k" * 32, propagation.MemoryReplayGuard()
        >>> headers = {}
        >>> _ = propagation.inject(headers, key=key)
        >>> first = propagation.verify(headers, key=key, replay_guard=guard)
        >>> propagation.expect_retry(first, 1, replay_guard=guard)
        >>> propagation.verify(headers, key=key, replay_guard=guard, attempt=1).id == first.id
        True
    """
    if envelope.expires_at is None:
        msg = "expect_retry: the envelope was verified without a max_age"
        raise EnvelopeError(msg)
    if (
        isinstance(attempt, bool)
        or not isinstance(attempt, int)
        or attempt < 1
    ):
        msg = f"attempt: expected a retry number >= 1, got {attempt!r}"
        raise EnvelopeError(msg)
    _seen(replay_guard, f"{envelope.id}#{attempt}+", envelope.expires_at)


@runtime_checkable
class ReplayGuard(Protocol):
    """
    Remembers envelope ids until they expire: `seen(id, expires_at)`
    returns `False` the first time (and remembers it), `True` after. It
    must be atomic: two receivers asking at once get one `False`.

    Examples:
        >>> from capscope.propagation import MemoryReplayGuard, ReplayGuard
        >>> isinstance(MemoryReplayGuard(), ReplayGuard)
        True
    """

    def seen(self, envelope_id: str, expires_at: float) -> bool:
        """Whether *envelope_id* was seen before; remember it if not."""
        ...


class MemoryReplayGuard:
    """
    A replay guard in this process's memory (one worker process, or
    tests). Holds at most *max_entries* unexpired ids; when full of them it
    refuses (fails closed) rather than forget one.

    Examples:
        >>> import time
        >>> from capscope.propagation import MemoryReplayGuard
        >>> guard = MemoryReplayGuard()
        >>> guard.seen("a" * 32, time.time() + 60), guard.seen("a" * 32, time.time() + 60)
        (False, True)
    """

    def __init__(self, max_entries: int = 1_000_000) -> None:
        self._expiry: dict[str, float] = {}
        self._max = max_entries
        self._lock = threading.Lock()

    def seen(self, envelope_id: str, expires_at: float) -> bool:
        """Whether *envelope_id* was seen before; remember it if not."""
        now = time.time()
        with self._lock:
            known = self._expiry.get(envelope_id)
            if known is not None and known > now:
                return True
            if len(self._expiry) >= self._max:
                self._expiry = {
                    k: t for k, t in self._expiry.items() if t > now
                }
                if len(self._expiry) >= self._max:
                    msg = f"the replay guard holds {self._max} live ids: full"
                    raise EnvelopeError(msg)
            self._expiry[envelope_id] = expires_at
            return False


class RedisReplayGuard:
    """
    A replay guard shared by every worker through Redis: one
    `SET key 1 NX PXAT expires_at` per envelope, atomic across processes
    and machines. *client* is a `redis.Redis` (or anything with its
    `set(name, value, nx=, pxat=)`).

    Examples:
        >>> from capscope.propagation import RedisReplayGuard
        >>> RedisReplayGuard(client=None, prefix="myapp:jti:").prefix
        'myapp:jti:'
    """

    def __init__(
        self, client: Any, *, prefix: str = "capscope:envelope:"
    ) -> None:
        self.client = client
        self.prefix = prefix

    def seen(self, envelope_id: str, expires_at: float) -> bool:
        """Whether *envelope_id* was seen before; remember it if not."""
        until = max(int(expires_at * 1000), int(time.time() * 1000) + 1)
        fresh = self.client.set(
            self.prefix + envelope_id, b"1", nx=True, pxat=until
        )
        return not fresh


# -- process pools ----------------------------------------------------------------


def run_encoded(
    data: dict[str, Any], fn: Callable[..., R], /, *args: Any, **kwargs: Any
) -> R:
    """
    Run *fn* under the scope *data* (from `encode`) describes: the receiving
    half of any process boundary that pickles, such as a
    `multiprocessing.Pool`, whose job functions must be importable.

    Examples:
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

    Examples:
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
