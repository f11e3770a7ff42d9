"""
Signed scope envelopes fit for an untrusted broker (issue 15): bound to
their message, replay-proof, verify-only keys, receiver ceilings, and only
`EnvelopeError` ever escapes `extract`.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import json
import math
import time

import pytest
import redis
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import capscope as cs
from capscope import propagation
from capscope.audit import Recorder
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay

KEY = b"k" * 32
OTHER = b"o" * 32
CEILING = CapabilityPolicy(tools=("fs.read",))


def published(**options) -> dict[str, str]:
    carrier: dict[str, str] = {}
    options.setdefault("key", KEY)
    with cs.using(
        execution=CEILING, overlay=RuntimeContextOverlay(run_id="r-9")
    ):
        propagation.inject(carrier, **options)
    return carrier


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def signed(
    payload: object, *, key: bytes = KEY, key_id: str = "default"
) -> dict:
    """An envelope whose body is *payload*, validly signed with *key*:
    what a holder of the key (or a bug on the publishing side) could send."""
    body = b64(json.dumps(payload).encode())
    signature = hmac.new(
        key, f"{key_id}.{body}".encode(), hashlib.sha256
    ).digest()
    return {propagation.HEADER: f"{key_id}.{body}.{b64(signature)}"}


def good_payload(**changes) -> dict:
    payload = {
        "v": 2,
        "alg": "HS256",
        "jti": "0" * 32,
        "iat": time.time(),
        "bind": None,
        "scope": {"v": 1, "stacks": {}},
    }
    payload.update(changes)
    return payload


class TestBinding:
    def test_the_same_message_is_accepted(self):
        carrier = published(bind=b"task:add:id-1:args-digest")

        scope = propagation.extract(
            carrier, key=KEY, bind=b"task:add:id-1:args-digest"
        )

        assert (CEILING,) == scope["execution"]

    @pytest.mark.parametrize(
        ("issued_for", "received_as"),
        [
            ("task:add:id-1", "task:drop_tables:id-1"),  # another task name
            ("task:add:id-1", "task:add:id-2"),  # another task id
            ("task:add:id-1", None),  # a receiver that binds nothing
            (None, "task:add:id-1"),  # an unbound envelope
        ],
    )
    def test_a_transplanted_envelope_is_refused(self, issued_for, received_as):
        carrier = published(bind=issued_for)

        with pytest.raises(
            cs.EnvelopeError, match="issued for another message"
        ):
            propagation.extract(carrier, key=KEY, bind=received_as)

    def test_each_envelope_has_its_own_id(self):
        first, second = {}, {}
        ids = {propagation.inject(c, key=KEY) for c in (first, second)}

        assert 2 == len(ids)
        assert propagation.verify(first, key=KEY).id in ids


class TestAge:
    def test_an_hour_is_the_default(self, monkeypatch):
        carrier = published()
        real = time.time
        monkeypatch.setattr(propagation.time, "time", lambda: real() + 3601)

        with pytest.raises(cs.EnvelopeError, match="older than max_age 3600"):
            propagation.extract(carrier, key=KEY)
        assert propagation.extract(carrier, key=KEY, max_age=None)["execution"]

    @pytest.mark.parametrize(
        "max_age", [math.nan, math.inf, -1, 0, "60", True, [60]]
    )
    def test_a_bad_max_age_is_refused(self, max_age):
        with pytest.raises(cs.EnvelopeError, match="max_age"):
            propagation.extract(published(), key=KEY, max_age=max_age)

    @pytest.mark.parametrize(
        "iat", [math.nan, math.inf, 10**400, -5, "now", None, True, 1e12]
    )
    def test_a_signed_but_unusable_issue_time_is_refused(self, iat):
        carrier = signed(good_payload(iat=iat))  # NaN and inf as JSON allows

        with pytest.raises(cs.EnvelopeError, match="issue time"):
            propagation.extract(carrier, key=KEY)

    def test_the_future_is_refused(self):
        carrier = signed(good_payload(iat=time.time() + 3600))

        with pytest.raises(cs.EnvelopeError, match="in the future"):
            propagation.extract(carrier, key=KEY)


class TestKeys:
    @pytest.mark.parametrize("key", [b"", b"x", b"x" * 31, "k" * 40, None, 42])
    def test_short_or_foreign_keys_are_refused_both_ways(self, key):
        with pytest.raises(cs.EnvelopeError, match="key"):
            propagation.inject({}, key=key)
        with pytest.raises(cs.EnvelopeError, match="key"):
            propagation.extract(published(), key=key)

    def test_an_envelope_forged_with_the_empty_key_is_refused(self):
        forged = signed(good_payload(), key=b"")

        with pytest.raises(cs.EnvelopeError, match="at least 32 bytes"):
            propagation.extract(forged, key=b"")
        with pytest.raises(cs.EnvelopeError, match="does not match the key"):
            propagation.extract(forged, key=KEY)

    def test_a_wrong_key_says_so(self):
        with pytest.raises(
            cs.EnvelopeError, match="does not match the key 'default'"
        ):
            propagation.extract(published(key=OTHER), key=KEY)

    def test_unknown_key_ids_are_listed(self):
        carrier = published(key_id="2026-10")

        with pytest.raises(cs.EnvelopeError, match=r"\(accepted: a, b\)"):
            propagation.extract(carrier, key={"b": OTHER, "a": KEY})

    @pytest.mark.parametrize("key_id", ["a.b", "", "é", "x" * 65, 3])
    def test_bad_key_ids_are_refused(self, key_id):
        with pytest.raises(cs.EnvelopeError, match="key_id"):
            propagation.inject({}, key=KEY, key_id=key_id)

    def test_rotation_through_a_provider_needs_no_restart(self):
        ring = {"v1": KEY}
        current = ["v1"]
        accepted = lambda: dict(ring)  # noqa: E731 - a provider
        signing = lambda: (current[0], ring[current[0]])  # noqa: E731

        before = published(key=signing)
        ring["v2"] = OTHER
        current[0] = "v2"
        after = published(key=signing)
        del ring["v1"]

        assert propagation.extract(after, key=accepted)["execution"]
        with pytest.raises(cs.EnvelopeError, match="unknown key id 'v1'"):
            propagation.extract(before, key=accepted)

    def test_a_failing_provider_is_an_envelope_error(self):
        def broken():
            raise OSError("vault unreachable")

        with pytest.raises(cs.EnvelopeError, match="vault unreachable"):
            propagation.extract(published(), key=broken)


class TestEd25519:
    def test_the_public_key_verifies_and_cannot_mint(self):
        private = Ed25519PrivateKey.generate()
        public = private.public_key()
        carrier = published(key=private, key_id="pub-1")

        scope = propagation.extract(carrier, key={"pub-1": public})
        assert (CEILING,) == scope["execution"]

        with pytest.raises(cs.EnvelopeError, match="only verifies"):
            propagation.inject({}, key=public, key_id="pub-1")

    def test_no_algorithm_confusion(self):
        """An HMAC envelope keyed with the public key's bytes is refused:
        the verifier's key decides the algorithm, never the envelope."""
        from cryptography.hazmat.primitives import serialization

        public = Ed25519PrivateKey.generate().public_key()
        raw = public.public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        forged = signed(good_payload(), key=raw + raw, key_id="pub-1")

        with pytest.raises(cs.EnvelopeError, match="does not match"):
            propagation.extract(forged, key={"pub-1": public})
        eddsa_claim = signed(good_payload(alg="EdDSA"), key=KEY)
        with pytest.raises(cs.EnvelopeError, match="another algorithm"):
            propagation.extract(eddsa_claim, key=KEY)


class TestReplay:
    def test_a_replay_is_refused_once_a_guard_is_set(self):
        guard = propagation.MemoryReplayGuard()
        carrier = published()

        propagation.extract(carrier, key=KEY, replay_guard=guard)
        with pytest.raises(cs.EnvelopeError, match="a replay"):
            propagation.extract(carrier, key=KEY, replay_guard=guard)

    def test_announced_retries_are_not_replays(self):
        guard = propagation.MemoryReplayGuard()
        carrier = published()

        first = propagation.verify(carrier, key=KEY, replay_guard=guard)
        for attempt in (1, 2):
            propagation.expect_retry(first, attempt, replay_guard=guard)
            again = propagation.verify(
                carrier, key=KEY, replay_guard=guard, attempt=attempt
            )
            assert first.id == again.id
        with pytest.raises(cs.EnvelopeError, match="a replay of retry 1"):
            propagation.extract(
                carrier, key=KEY, replay_guard=guard, attempt=1
            )

    def test_a_raised_retry_count_is_not_a_retry(self):
        guard = propagation.MemoryReplayGuard()
        carrier = published()
        propagation.extract(carrier, key=KEY, replay_guard=guard)

        with pytest.raises(cs.EnvelopeError, match="was not announced"):
            propagation.extract(
                carrier, key=KEY, replay_guard=guard, attempt=1
            )

    @pytest.mark.parametrize("attempt", [-1, True, 1.0, "1"])
    def test_a_bad_attempt_is_refused(self, attempt):
        with pytest.raises(cs.EnvelopeError, match="attempt"):
            propagation.extract(published(), key=KEY, attempt=attempt)

    def test_a_guard_needs_a_max_age(self):
        with pytest.raises(cs.EnvelopeError, match="needs a max_age"):
            propagation.extract(
                published(),
                key=KEY,
                max_age=None,
                replay_guard=propagation.MemoryReplayGuard(),
            )

    def test_a_full_guard_fails_closed(self):
        guard = propagation.MemoryReplayGuard(max_entries=1)
        propagation.extract(published(), key=KEY, replay_guard=guard)

        with pytest.raises(cs.EnvelopeError, match="full"):
            propagation.extract(published(), key=KEY, replay_guard=guard)

    def test_redis_guards_one_use_across_clients(self, redis_url):
        clients = [redis.Redis.from_url(redis_url) for _ in range(2)]
        guards = [
            propagation.RedisReplayGuard(c, prefix=f"t:{time.time_ns()}:")
            for c in clients
        ]
        guards[1].prefix = guards[0].prefix
        carrier = published()

        propagation.extract(carrier, key=KEY, replay_guard=guards[0])
        with pytest.raises(cs.EnvelopeError, match="a replay"):
            propagation.extract(carrier, key=KEY, replay_guard=guards[1])
        ttl = clients[0].pttl(
            guards[0].prefix + propagation.verify(carrier, key=KEY).id
        )
        assert 0 < ttl <= 3_600_000
        for client in clients:
            client.close()


class TestReceiverCeiling:
    def test_the_receivers_ceiling_narrows_the_envelope(self):
        machine = cs.Scope.empty().pushing(
            {cs.stacks.execution: CapabilityPolicy(tools=("fs.*",))}
        )

        scope = propagation.extract(published(), key=KEY, within=machine)

        assert (CapabilityPolicy(tools=("fs.*",)), CEILING) == scope[
            "execution"
        ][:2]

    def test_no_ceiling_sent_is_no_tool_received(self):
        machine = cs.Scope.empty().pushing(
            {cs.stacks.execution: CapabilityPolicy(tools=("fs.*",))}
        )
        carrier: dict[str, str] = {}
        propagation.inject(carrier, key=KEY)  # from no policy at all

        scope = propagation.extract(carrier, key=KEY, within=machine)

        assert cs.Action.DENY == scope.run(cs.check_tool, "fs.read").action
        assert cs.Action.ALLOW == machine.run(cs.check_tool, "fs.read").action

    def test_an_envelope_wider_than_the_receiver_is_refused(self):
        machine = cs.Scope.empty().pushing(
            {cs.stacks.execution: CapabilityPolicy(tools=("net.*",))}
        )

        with pytest.raises(cs.EnvelopeError, match="refused by its stack"):
            propagation.extract(published(), key=KEY, within=machine)


class TestAudit:
    def test_publisher_and_receiver_events_share_the_envelope_id(self):
        with Recorder() as rec:
            carrier = published()
            scope = propagation.extract(carrier, key=KEY)

        delegated, received = [d for d in rec if d.gate is cs.Gate.ENVELOPE]
        envelope_id = propagation.verify(carrier, key=KEY).id
        assert (cs.Action.DELEGATED, cs.Gate.ENVELOPE) == (
            delegated.action,
            delegated.gate,
        )
        assert envelope_id in delegated.reason
        assert "r-9" == delegated.overlay.run_id
        assert (cs.Action.ALLOW, cs.Gate.ENVELOPE, "r-9") == (
            received.action,
            received.gate,
            received.overlay.run_id,
        )
        assert (
            envelope_id
            == received.overlay.attributes[propagation.ENVELOPE_ATTRIBUTE]
        )
        assert (
            envelope_id
            == scope.run(cs.current_overlay).attributes[
                propagation.ENVELOPE_ATTRIBUTE
            ]
        )

    def test_no_unattributed_root_event_on_extract(self):
        carrier = published()
        with Recorder() as rec:
            propagation.extract(carrier, key=KEY)

        assert [] == [d for d in rec if d.gate is cs.Gate.ROOT_POLICY]


# -- fuzz: only EnvelopeError escapes ---------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=5), inner, max_size=4)
    ),
    max_leaves=20,
)
tokens = st.one_of(
    st.text(max_size=60),
    st.from_regex(
        r"[A-Za-z0-9_:-]{1,8}\.[A-Za-z0-9_-]{0,40}\.[A-Za-z0-9_-]{0,60}",
        fullmatch=True,
    ),
    json_values,
)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    carrier=st.one_of(
        st.dictionaries(st.just(propagation.HEADER), tokens, max_size=1),
        json_values,
    ),
    key=st.one_of(st.binary(max_size=40), st.text(max_size=5), json_values),
    max_age=st.one_of(
        st.none(), st.floats(), st.integers(), st.text(max_size=3)
    ),
    bind=st.one_of(
        st.none(), st.binary(max_size=4), st.text(max_size=4), st.integers()
    ),
)
def test_only_envelope_errors_escape_extract(carrier, key, max_age, bind):
    with contextlib.suppress(cs.EnvelopeError):
        propagation.extract(carrier, key=key, max_age=max_age, bind=bind)


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    changes=st.dictionaries(
        st.sampled_from(["v", "alg", "jti", "iat", "bind", "scope", "extra"]),
        json_values,
        max_size=3,
    )
)
def test_only_envelope_errors_escape_a_signed_body(changes):
    """Bodies the key holder signs (a buggy or hostile publisher)."""
    with contextlib.suppress(cs.EnvelopeError):
        propagation.extract(signed(good_payload(**changes)), key=KEY)


def test_a_deeply_nested_signed_body_is_an_envelope_error():
    deep = "[" * 100_000 + "]" * 100_000
    body = b64(deep.encode())
    signature = hmac.new(
        KEY, f"default.{body}".encode(), hashlib.sha256
    ).digest()

    with pytest.raises(cs.EnvelopeError, match="malformed"):
        propagation.extract(
            {propagation.HEADER: f"default.{body}.{b64(signature)}"}, key=KEY
        )


def test_one_signature_has_one_spelling():
    token = published()[propagation.HEADER]
    key_id, body, signature = token.split(".")
    # 32 bytes in 43 characters: the last one's two low bits are unused
    last = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    index = last.index(signature[-1])
    respelled = signature[:-1] + last[index ^ 1]
    assert base64.urlsafe_b64decode(
        respelled + "="
    ) == base64.urlsafe_b64decode(signature + "=")

    with pytest.raises(cs.EnvelopeError, match="signature is not base64"):
        propagation.extract(
            {propagation.HEADER: f"{key_id}.{body}.{respelled}"}, key=KEY
        )


@pytest.mark.parametrize(
    ("carrier", "message"),
    [
        ({propagation.HEADER: "défault.abc.def"}, "malformed"),
        (
            {propagation.HEADER: "a" * (propagation.MAX_ENVELOPE_CHARS + 1)},
            "1 MiB",
        ),
        ("capscope-scope=abc", "not a mapping"),
        (None, "not a mapping"),
    ],
)
def test_carriers_that_are_not_envelopes(carrier, message):
    with pytest.raises(cs.EnvelopeError, match=message):
        propagation.extract(carrier, key=KEY)


def test_a_wrong_key_says_so_not_tampered():
    """Verifying with another key than the signer's names the key and says
    it may be another key, not that someone tampered with the envelope."""
    headers: dict[str, str] = {}
    with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
        propagation.inject(headers, key=b"k" * 32)
    with pytest.raises(cs.EnvelopeError) as refused:
        propagation.verify(headers, key=b"x" * 32)
    message = str(refused.value)
    assert "signed with another key" in message
    assert "'default'" in message
    assert "tamper" not in message
