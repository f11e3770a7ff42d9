"""
The timing harness every benchmark here shares.

Every figure is the minimum, over several rounds, of one timed loop divided
by its length (nanoseconds per operation): noise only ever adds time, so the
minimum is the best estimate of the cost itself. Within a round every
variant of a comparison runs once, in an order reversed each round, so drift
in clock speed or load hits subject and baseline alike. Loops are kept short
(a few ms) and rounds many, so that on a busy machine some rounds of each
variant still run unpreempted. The garbage collector is off inside timed
loops, as timeit does. A first round warms up caches, specialisation and
thread pools (and calibrates loop lengths), and is thrown away.

Subject and baseline both go through timeit's compiled loop, so the harness
costs them the same; a ratio is only ever taken between figures of one run.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import os
import platform
import sys
import timeit
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import wrapt

import capscope as cs

Variant = Callable[[], float]


def best_of(repeats: int, variants: dict[str, Variant]) -> dict[str, float]:
    """The minimum ns/op of each variant over *repeats* interleaved rounds."""
    names = list(variants)
    best = dict.fromkeys(names, float("inf"))
    for round_ in range(repeats + 1):  # round 0 is the warm-up
        for name in names if round_ % 2 else reversed(names):
            gc.collect()
            gc.disable()
            try:
                ns = variants[name]()
            finally:
                gc.enable()
            if round_:
                best[name] = min(best[name], ns)
    return best


def per_op(stmt: str, number: int, **names: object) -> float:
    """ns per run of *stmt*, looked up in *names*."""
    return timeit.Timer(stmt, globals=names).timeit(number) * 1e9 / number


class Timed:
    """
    A variant for `best_of`: *stmt* timed in *ctx* (a fresh copy of the
    caller's context if none), its loop long enough to take *seconds*.
    The length is calibrated on the first (warm-up) call.
    """

    def __init__(
        self,
        stmt: str,
        names: dict[str, object],
        *,
        seconds: float,
        ctx: contextvars.Context | None = None,
    ) -> None:
        self.timer = timeit.Timer(stmt, globals=names)
        self.seconds = seconds
        self.ctx = contextvars.copy_context() if ctx is None else ctx
        self.number = 0

    def _calibrate(self) -> int:
        # The first calls after anything else ran can be slow (cold caches,
        # a CPU waking up): warm up, then size the loop on steady calls.
        self.timer.timeit(3)
        number = 1
        while True:
            took = self.timer.timeit(number)
            if took >= self.seconds / 4 or number >= 1 << 24:
                return max(1, int(number * self.seconds / max(took, 1e-9)))
            number *= 4

    def _run(self) -> float:
        if not self.number:
            self.number = self._calibrate()
        return self.timer.timeit(self.number) * 1e9 / self.number

    def __call__(self) -> float:
        return self.ctx.run(self._run)


def in_fresh_context(fn: Callable[[], object]) -> contextvars.Context:
    """A copy of the current context in which *fn* has run."""
    ctx = contextvars.copy_context()
    ctx.run(fn)
    return ctx


# -- the baselines every call comparison shares ----------------------------


def bare(x: int) -> int:
    return x


async def abare(x: int) -> int:
    return x


@wrapt.decorator
def _noop(wrapped, instance, args, kwargs):  # noqa: ARG001 - wrapt's signature
    return wrapped(*args, **kwargs)


@_noop
def noop_wrapped(x: int) -> int:
    return x


@_noop
async def anoop_wrapped(x: int) -> int:
    return x


def run_coro(coro) -> None:
    """Step *coro* to its end, as an event loop's first step would."""
    with contextlib.suppress(StopIteration):
        coro.send(None)


# -- results ----------------------------------------------------------------


@dataclass
class Row:
    """One ratio: subject / baseline, and the target it is held to."""

    name: str
    subject: float  # ns per operation
    baseline: float  # ns per operation
    target: float | None = None
    at_least: bool = False  # the target is a floor, not a ceiling
    group: str = ""

    @property
    def ratio(self) -> float:
        return self.subject / self.baseline

    @property
    def verdict(self) -> str:
        if self.target is None:
            return "info"
        met = (
            self.ratio >= self.target
            if self.at_least
            else self.ratio <= self.target
        )
        return "PASS" if met else "FAIL"

    @property
    def target_text(self) -> str:
        if self.target is None:
            return "-"
        return f"{'>=' if self.at_least else '<='}{self.target:g}x"

    def as_dict(self) -> dict[str, object]:
        return {
            "group": self.group,
            "name": self.name,
            "subject_ns": self.subject,
            "baseline_ns": self.baseline,
            "ratio": self.ratio,
            "target": self.target,
            "at_least": self.at_least,
            "verdict": self.verdict,
        }


def environment(**extra: object) -> dict[str, object]:
    """The machine and interpreter a run was made on."""
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": cpu_model(),
        "cpus": os.cpu_count(),
        "capscope": str(Path(cs.__file__).parent),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        # Other processes' load skews single figures; ratios much less.
        "load_average": os.getloadavg(),
        "argv": sys.argv[1:],
        **extra,
    }


def cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def header(title: str, env: dict) -> str:
    load = ", ".join(f"{x:.2f}" for x in env["load_average"])
    return (
        f"{title}, {env['date']}\n"
        f"{env['implementation']} {env['python']} on {env['platform']}, "
        f"{env['processor']}, {env['cpus']} CPUs, load average {load}\n"
        f"capscope from {env['capscope']}"
    )


def print_rows(rows: list[Row]) -> None:
    width = max(len(row.name) for row in rows)
    print(
        f"{'measurement':<{width}}  {'subject':>10}  {'baseline':>10}  "
        f"{'ratio':>9}  {'target':>8}  result"
    )
    for row in rows:
        print(
            f"{row.name:<{width}}  {row.subject:>10.1f}  {row.baseline:>10.1f}"
            f"  {row.ratio:>8.2f}x  {row.target_text:>8}  {row.verdict}"
        )
