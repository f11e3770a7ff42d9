"""
The keys that sign and verify scope envelopes.

Two kinds, told apart by the key the *verifier* holds, never by anything
in the envelope (so no envelope can choose its own algorithm):

- a shared secret of at least 32 bytes: HMAC-SHA256. Whoever can verify
  can also mint envelopes.
- Ed25519 (through the optional `cryptography` package): the publisher
  holds the private key, receivers only the public one, so a worker that
  verifies envelopes cannot mint them.

A key may also come from a provider: a callable asked on every use, so a
rotated key is picked up without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from typing import Any, Final

from ._exceptions import EnvelopeError

__all__ = [
    "MIN_KEY_BYTES",
    "Signer",
    "Verifier",
    "signer_for",
    "verifiers_for",
]

#: The shortest shared secret accepted (HMAC-SHA256 wants 32 random bytes).
MIN_KEY_BYTES: Final = 32
#: What a key id may hold: it is written in the clear, before the body.
KEY_ID = re.compile(r"[A-Za-z0-9_:-]{1,64}")

HS256: Final = "HS256"
EDDSA: Final = "EdDSA"


def _ed25519() -> Any:
    """The `cryptography` Ed25519 module, or `None` when not installed."""
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - the extra is installed in CI
        return None
    return ed25519


def _kind(key: object) -> str:
    """`"secret"`, `"private"`, `"public"` or `""` (not a key)."""
    if isinstance(key, bytes | bytearray):
        return "secret"
    ed = (
        _ed25519() if type(key).__module__.startswith("cryptography") else None
    )
    if ed is not None and isinstance(key, ed.Ed25519PrivateKey):
        return "private"
    if ed is not None and isinstance(key, ed.Ed25519PublicKey):
        return "public"
    return ""


def _secret(key: bytes | bytearray, where: str) -> bytes:
    if len(key) < MIN_KEY_BYTES:
        msg = (
            f"{where}: a shared key must hold at least {MIN_KEY_BYTES} bytes "
            f"(got {len(key)}): use secrets.token_bytes(32)"
        )
        raise EnvelopeError(msg)
    return bytes(key)


def _key_id(key_id: object) -> str:
    if not isinstance(key_id, str) or not KEY_ID.fullmatch(key_id):
        msg = (
            "key_id: expected 1 to 64 letters, digits, '_', ':' or '-', "
            f"got {key_id!r}"
        )
        raise EnvelopeError(msg)
    return key_id


class Signer:
    """A key that signs: its id, its algorithm, and `sign(message)`."""

    __slots__ = ("_key", "alg", "key_id")

    def __init__(self, key_id: str, key: object) -> None:
        self.key_id = _key_id(key_id)
        kind = _kind(key)
        if kind == "secret":
            self.alg = HS256
            self._key: Any = _secret(key, "key")  # type: ignore[arg-type]
        elif kind == "private":
            self.alg = EDDSA
            self._key = key
        elif kind == "public":
            msg = (
                "key: an Ed25519 public key only verifies; inject needs the "
                "private key (the publisher's)"
            )
            raise EnvelopeError(msg)
        else:
            msg = (
                f"key: expected a shared key of at least {MIN_KEY_BYTES} "
                "bytes, an Ed25519 private key, or a provider returning "
                f"(key_id, key); got {type(key).__name__}"
            )
            raise EnvelopeError(msg)

    def sign(self, message: bytes) -> bytes:
        """The signature of *message*."""
        if self.alg == HS256:
            return hmac.new(self._key, message, hashlib.sha256).digest()
        signature: bytes = self._key.sign(message)
        return signature


class Verifier:
    """A key that verifies: its algorithm, and `verify(message, sig)`."""

    __slots__ = ("_key", "alg")

    def __init__(self, key_id: str, key: object) -> None:
        kind = _kind(key)
        if kind == "secret":
            self.alg = HS256
            self._key: Any = _secret(key, f"key[{key_id!r}]")  # type: ignore[arg-type]
        elif kind in ("private", "public"):
            self.alg = EDDSA
            self._key = key.public_key() if kind == "private" else key  # type: ignore[attr-defined]
        else:
            msg = (
                f"key[{key_id!r}]: expected a shared key of at least "
                f"{MIN_KEY_BYTES} bytes or an Ed25519 key, got "
                f"{type(key).__name__}"
            )
            raise EnvelopeError(msg)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether *signature* is this key's signature of *message*."""
        if self.alg == HS256:
            expected = hmac.new(self._key, message, hashlib.sha256).digest()
            return hmac.compare_digest(expected, signature)
        try:
            self._key.verify(signature, message)
        except Exception:  # noqa: BLE001 - cryptography's InvalidSignature, or junk
            return False
        return True


#: What `inject` takes as its key: a key, or a provider of `(key_id, key)`.
SigningKey = Any
#: What `extract` takes: a key, `{key_id: key}`, or a provider of either.
VerifyingKeys = Any


def signer_for(key: SigningKey, key_id: str | None) -> Signer:
    """
    The signer for *key*: a shared key or Ed25519 private key used under
    *key_id*, or a provider called now for `(key_id, key)`.
    """
    if callable(key) and _kind(key) == "":
        try:
            provided = key()
        except Exception as exc:
            msg = f"key: the key provider raised {exc!r:.120}"
            raise EnvelopeError(msg) from exc
        if not (isinstance(provided, tuple) and len(provided) == 2):  # noqa: PLR2004
            msg = (
                "key: a key provider for inject returns (key_id, key), got "
                f"{type(provided).__name__}"
            )
            raise EnvelopeError(msg)
        return Signer(*provided)
    return Signer("default" if key_id is None else key_id, key)


def verifiers_for(key: VerifyingKeys) -> dict[str, Verifier]:
    """
    The verifiers by key id for *key*: one key (id `"default"`), a mapping
    of ids to keys, or a provider called now for either.
    """
    if callable(key) and _kind(key) == "":
        try:
            key = key()
        except Exception as exc:
            msg = f"key: the key provider raised {exc!r:.120}"
            raise EnvelopeError(msg) from exc
    if _kind(key):
        return {"default": Verifier("default", key)}
    if not isinstance(key, Mapping) or not key:
        msg = (
            "key: expected a key, a non-empty {key_id: key} mapping, or a "
            f"provider of either; got {type(key).__name__}"
        )
        raise EnvelopeError(msg)
    return {_key_id(k): Verifier(k, v) for k, v in key.items()}
