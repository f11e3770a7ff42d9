"""
What auditing costs per decorated call, as ratios in one run.

    python benchmarks/bench_audit.py [--quick]

Baselines, timed in the same process: a bare call and the same function
under a no-op `wrapt.decorator`. Subjects: an allowed `@requires_tool` call
with no subscriber (no event is built), with an in-memory
`capscope.audit.Recorder`, with a `capscope.audit.JsonlSink` writing to a
file (flushing every line, the default, and not), and with
`capscope.audit.log_decisions` on a logger whose handler writes to a file.
The sinks run synchronously in the calling thread, so their cost is the
call's cost.

Each figure is the minimum over several rounds (noise only adds time).
The exit status is 0 whatever the figures: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import platform
import tempfile
import timeit
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import wrapt

import capscope as cs
from capscope.audit import JsonlSink, Recorder, log_decisions
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay


def bare(x: int) -> int:
    return x


@wrapt.decorator
def _noop(wrapped, instance, args, kwargs):  # noqa: ARG001
    return wrapped(*args, **kwargs)


@_noop
def noop_wrapped(x: int) -> int:
    return x


@cs.requires_tool("fs.read", side_effect="read_only")
def allowed(x: int) -> int:
    return x


def per_call(fn: Callable[[int], int], number: int, repeat: int) -> float:
    timer = timeit.Timer("fn(1)", globals={"fn": fn})
    return min(timer.repeat(repeat=repeat, number=number)) * 1e9 / number


@contextlib.contextmanager
def logging_sink(path: Path) -> Iterator[None]:
    logger = logging.getLogger("capscope.audit.bench")
    logger.propagate = False
    handler = logging.FileHandler(path)
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    stop = log_decisions(logger)
    try:
        yield
    finally:
        stop()
        logger.removeHandler(handler)
        handler.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    number, repeat = (5_000, 3) if quick else (50_000, 7)
    rows: list[tuple[str, float]] = []
    ceiling = CapabilityPolicy(tools=("fs.*",))
    attribution = RuntimeContextOverlay(run_id="r-1", worker_id="w-1")
    with (
        tempfile.TemporaryDirectory() as tmp,
        cs.using(execution=ceiling, overlay=attribution),
    ):
        rows.append(("bare call", per_call(bare, number, repeat)))
        rows.append(
            ("no-op wrapt.decorator", per_call(noop_wrapped, number, repeat))
        )
        rows.append(
            ("allowed, no subscriber", per_call(allowed, number, repeat))
        )
        with Recorder() as recorder:
            rows.append(
                ("allowed, Recorder", per_call(allowed, number, repeat))
            )
            recorder.clear()
        sinks = {
            "allowed, JsonlSink (flush per line)": {"flush": True},
            "allowed, JsonlSink (no flush)": {"flush": False},
        }
        for name, options in sinks.items():
            with JsonlSink(Path(tmp, "audit.jsonl"), **options):
                rows.append((name, per_call(allowed, number, repeat)))
        with logging_sink(Path(tmp, "audit.log")):
            rows.append(
                (
                    "allowed, log_decisions to a file",
                    per_call(allowed, number, repeat),
                )
            )

    base, wrapt_cost = rows[0][1], rows[1][1]
    print(
        f"capscope audit benchmark, {datetime.now(UTC).isoformat(timespec='seconds')}"
    )
    print(
        f"{platform.python_implementation()} {platform.python_version()} on {platform.platform()}"
    )
    print(f"{'call':38} {'ns':>9} {'x bare':>8} {'x wrapt':>8}")
    for name, ns in rows:
        print(f"{name:38} {ns:9.1f} {ns / base:8.2f} {ns / wrapt_cost:8.2f}")


if __name__ == "__main__":
    main()
