"""
What a user would pick instead of capscope, timed the same way.

    python benchmarks/bench_alternatives.py [--quick]

Needs the benchmark requirements (`pip install -r
benchmarks/requirements.txt`), never capscope's own. Each alternative is
set up once, outside the timed loop, as its documentation says to use it,
then checked to really decide (its allowing setup allows; a request it was
not given is refused) before it is timed:

- Flask-Principal: a function decorated with
  `Permission(RoleNeed("admin")).require()`, called inside a Flask app and
  request context whose identity (loaded once, through the
  `identity_loaded` signal) provides that role.
- casbin: `Enforcer.enforce(sub, obj, act)` on a small RBAC model and
  policy written to temporary files, then the call (an `enforce` is not a
  decorator; the guarded call is enforce-then-call).
- tenuo: a function decorated with `@guard(tool=...)`, called inside
  `mint_sync(Capability(...))` (a task-scoped warrant signed by an issuer
  key that `configure()` trusts, `audit_log=False`). Every call signs a
  proof of possession and verifies the warrant: that is the design.
- OpenTelemetry: `detach(attach(set_value(...)))` around a call, and
  structlog: `with bound_contextvars(...)` around a call. Neither checks
  anything: they are the context propagation a user might build policies
  on, compared with capscope's own push and pop around a call.

An alternative that cannot be set up is reported with the reason, never
given a number. `run.py` times these in the same rounds as
`bench_tools.py`'s calls, so every ratio is taken within one run.
"""

from __future__ import annotations

import argparse
import contextvars
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from _timing import Timed, bare, best_of, environment, header, in_fresh_context
from bench_tools import CALLS, Call, call_table, print_call_table
from bench_tools import variants as tool_variants

import capscope as cs


class Unavailable(Exception):
    """This alternative cannot be timed here; the message says why."""


@dataclass(frozen=True)
class Setup:
    """A statement to time, its names, its context, and how to undo it."""

    stmt: str
    names: dict[str, object]
    ctx: contextvars.Context | None = None
    close: Callable[[], object] | None = None


@dataclass(frozen=True)
class Alternative:
    key: str
    label: str
    setup: Callable[[], Setup]
    capscope: str  # the capscope call it is compared with


# -- Flask-Principal --------------------------------------------------------


def flask_principal() -> Setup:
    try:
        from flask import Flask
        from flask_principal import (
            Identity,
            Permission,
            PermissionDenied,
            Principal,
            RoleNeed,
            identity_loaded,
        )
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc})") from exc
    app = Flask("capscope_bench")
    principal = Principal(app, use_sessions=False)

    @identity_loaded.connect_via(app)
    def on_identity_loaded(sender: object, identity: Identity) -> None:  # noqa: ARG001 - blinker's signature
        identity.provides.add(RoleNeed("admin"))

    admin = Permission(RoleNeed("admin"))
    root = Permission(RoleNeed("root"))

    @admin.require()
    def guarded(x: int) -> int:
        return x

    @root.require()
    def refused(x: int) -> int:
        return x

    # Flask's app and request contexts are context variables: pushed in
    # this benchmark's own context, they stay there.
    request = app.test_request_context("/tool")

    def enter() -> None:
        request.push()
        principal.set_identity(Identity("alice"))  # loaded once

    ctx = in_fresh_context(enter)
    if ctx.run(guarded, 1) != 1:
        raise Unavailable("the allowed call did not return its value")
    try:
        ctx.run(refused, 1)
    except PermissionDenied:
        pass
    else:
        raise Unavailable("a permission the identity lacks was not refused")
    return Setup(
        "guarded(1)", {"guarded": guarded}, ctx, lambda: ctx.run(request.pop)
    )


# -- casbin -----------------------------------------------------------------

CASBIN_MODEL = """\
[request_definition]
r = sub, obj, act

[policy_definition]
p = sub, obj, act

[role_definition]
g = _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = g(r.sub, p.sub) && r.obj == p.obj && r.act == p.act
"""
CASBIN_POLICY = """\
p, reader, fs, read
p, writer, fs, write
g, alice, reader
g, bob, writer
"""


def casbin_enforce() -> Setup:
    try:
        import casbin
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc})") from exc
    with tempfile.TemporaryDirectory() as tmp:
        model, policy = Path(tmp, "model.conf"), Path(tmp, "policy.csv")
        model.write_text(CASBIN_MODEL)
        policy.write_text(CASBIN_POLICY)
        enforcer = casbin.Enforcer(str(model), str(policy))
    if not enforcer.enforce("alice", "fs", "read"):
        raise Unavailable("the RBAC policy did not allow alice to read")
    if enforcer.enforce("alice", "fs", "write"):
        raise Unavailable("the RBAC policy let alice write")
    enforce = enforcer.enforce

    def guarded(x: int) -> int:
        if not enforce("alice", "fs", "read"):
            raise PermissionError("fs read")
        return x

    return Setup("guarded(1)", {"guarded": guarded})


# -- tenuo ------------------------------------------------------------------


def tenuo_guard() -> Setup:
    try:
        from tenuo import (
            Capability,
            SigningKey,
            configure,
            guard,
            mint_sync,
        )
        from tenuo.exceptions import TenuoError
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc})") from exc
    issuer = SigningKey.generate()
    # The production form (dev_mode off): the issuer's key is the trust
    # root. No audit log, as capscope builds no event with no subscriber.
    configure(
        issuer_key=issuer, trusted_roots=[issuer.public_key], audit_log=False
    )

    @guard(tool="fs_read")
    def guarded(x: int) -> int:
        return x

    @guard(tool="net_get")
    def refused(x: int) -> int:
        return x

    # mint_sync sets the warrant and key in context variables: entered in
    # this benchmark's own context, it is task-scoped to it.
    warrant = mint_sync(Capability("fs_read"))
    ctx = in_fresh_context(warrant.__enter__)
    if ctx.run(guarded, 1) != 1:
        raise Unavailable("the allowed call did not return its value")
    try:
        ctx.run(refused, 1)
    except TenuoError:
        pass
    else:
        raise Unavailable("a tool the warrant does not name was allowed")
    return Setup(
        "guarded(1)",
        {"guarded": guarded},
        ctx,
        lambda: ctx.run(warrant.__exit__, None, None, None),
    )


# -- context propagation: OpenTelemetry, structlog --------------------------


def otel_attach() -> Setup:
    try:
        from opentelemetry import context
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc})") from exc
    names = {
        "attach": context.attach,
        "detach": context.detach,
        "set_value": context.set_value,
        "bare": bare,
    }
    stmt = (
        "token = attach(set_value('policy', 1))\n"
        "try:\n    bare(1)\nfinally:\n    detach(token)"
    )
    return Setup(stmt, names)


def structlog_bound() -> Setup:
    try:
        from structlog.contextvars import bound_contextvars
    except ImportError as exc:
        raise Unavailable(f"not installed ({exc})") from exc
    names = {"bound": bound_contextvars, "bare": bare}
    return Setup("with bound(policy=1):\n    bare(1)", names)


ALTERNATIVES = (
    Alternative(
        "flask_principal",
        "Flask-Principal `@Permission(...).require()`",
        flask_principal,
        "allowed",
    ),
    Alternative(
        "casbin",
        "casbin `Enforcer.enforce` (RBAC), then the call",
        casbin_enforce,
        "allowed",
    ),
    Alternative(
        "tenuo",
        "tenuo `@guard` (signed warrant)",
        tenuo_guard,
        "allowed",
    ),
    Alternative(
        "otel",
        "OpenTelemetry `attach(set_value())`/`detach` around a call",
        otel_attach,
        "cs_push_pop",
    ),
    Alternative(
        "structlog",
        "structlog `with bound_contextvars()` around a call",
        structlog_bound,
        "cs_pushed",
    ),
)

#: capscope's own counterparts of the context-propagation alternatives.
STACK = cs.AmbientStack("bench_alt_stack", inherit=cs.Inherit.COPY)
COUNTERPARTS = (
    Call(
        "cs_push_pop",
        "capscope `push`/`pop` around a call",
        "token = s.push(1)\ntry:\n    bare(1)\nfinally:\n    s.pop(token)",
    ),
    Call(
        "cs_pushed",
        "capscope `with stack.pushed()` around a call",
        "with s.pushed(1):\n    bare(1)",
    ),
)


@dataclass
class Prepared:
    """The alternatives set up, their timers, and why any are missing."""

    timed: dict[str, Timed]
    ready: list[Alternative]
    unavailable: dict[str, str]
    closers: list[Callable[[], object]]

    def close(self) -> None:
        for close in self.closers:
            close()


def prepare(seconds: float) -> Prepared:
    """Set every alternative up (and capscope's counterparts)."""
    out = Prepared({}, [], {}, [])
    for alt in ALTERNATIVES:
        try:
            setup = alt.setup()
        except Unavailable as exc:
            out.unavailable[alt.key] = str(exc)
            continue
        except Exception as exc:  # noqa: BLE001 - reported, never a number
            out.unavailable[alt.key] = (
                f"setup failed: {type(exc).__name__}: {exc}"
            )
            continue
        out.timed[alt.key] = Timed(
            setup.stmt, setup.names, seconds=seconds, ctx=setup.ctx
        )
        out.ready.append(alt)
        if setup.close is not None:
            out.closers.append(setup.close)
    for call in COUNTERPARTS:
        out.timed[call.key] = Timed(
            call.stmt, {"s": STACK, "bare": bare}, seconds=seconds
        )
    return out


def alternative_table(
    ready: list[Alternative], best: dict[str, float]
) -> list[dict[str, object]]:
    """Each alternative against bare, wrapt and its capscope counterpart."""
    calls = tuple(Call(alt.key, alt.label, "") for alt in ready) + COUNTERPARTS
    table = call_table(calls, best)
    versus = {alt.key: alt.capscope for alt in ready}
    for row in table:
        other = versus.get(str(row["key"]))
        if other is not None:
            row["versus"] = other
            row["x_versus"] = best[str(row["key"])] / best[other]
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats, seconds = (5, 0.002) if quick else (15, 0.005)
    alts = prepare(seconds)
    baselines = tuple(
        c for c in CALLS if c.key in ("bare", "wrapt", "allowed")
    )
    try:
        best = best_of(repeats, alts.timed | tool_variants(baselines, seconds))
    finally:
        alts.close()
    print(header("alternatives to capscope", environment()))
    print()
    print_call_table(
        call_table(baselines, best) + alternative_table(alts.ready, best)
    )
    print()
    for row in alternative_table(alts.ready, best):
        if "versus" in row:
            print(f"{row['label']}: {row['x_versus']:.1f}x {row['versus']}")
    for key, why in alts.unavailable.items():
        print(f"{key}: NOT MEASURED: {why}")


if __name__ == "__main__":
    main()
