"""
What auditing costs per decorated call, as ratios in one run.

    python benchmarks/bench_audit.py [--quick]

Baselines, timed in the same process through the same harness
(`_timing.py`): a bare call and the same function under a no-op
`wrapt.decorator`. Subjects: an allowed `@requires_tool` call with no
subscriber (no event is built), with an in-memory
`capscope.audit.Recorder`, with a `capscope.audit.JsonlSink` writing to a
file (flushing every line, the default, and not), and with
`capscope.audit.log_decisions` on a logger whose handler writes to a file.
The sinks run synchronously in the calling thread, so their cost is the
call's cost. Each sink is installed only while its own variant runs.

The exit status is 0 whatever the figures: this is a report, not a test.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from _timing import (
    Timed,
    bare,
    best_of,
    environment,
    header,
    in_fresh_context,
    noop_wrapped,
)

import capscope as cs
from capscope.audit import JsonlSink, Recorder, log_decisions
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay


@cs.requires_tool("fs.read", side_effect="read_only")
def allowed(x: int) -> int:
    return x


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


def under(
    sink: Callable[[], contextlib.AbstractContextManager[object]] | None,
    timed: Timed,
) -> float:
    if sink is None:
        return timed()
    with sink():
        return timed()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats, seconds = (5, 0.002) if quick else (15, 0.005)
    ceiling = CapabilityPolicy(tools=("fs.*",))
    attribution = RuntimeContextOverlay(run_id="r-1", worker_id="w-1")
    ctx = in_fresh_context(
        lambda: cs.using(execution=ceiling, overlay=attribution).__enter__()
    )
    names = {"bare": bare, "noop_wrapped": noop_wrapped, "allowed": allowed}

    def timed(stmt: str) -> Timed:
        return Timed(stmt, names, seconds=seconds, ctx=ctx.copy())

    with tempfile.TemporaryDirectory() as tmp:
        log = Path(tmp, "audit.jsonl")
        subjects: dict[str, tuple[Callable | None, Timed]] = {
            "bare call": (None, timed("bare(1)")),
            "no-op wrapt.decorator": (None, timed("noop_wrapped(1)")),
            "allowed, no subscriber": (None, timed("allowed(1)")),
            "allowed, Recorder": (Recorder, timed("allowed(1)")),
            "allowed, JsonlSink (flush per line)": (
                lambda: JsonlSink(log, flush=True),
                timed("allowed(1)"),
            ),
            "allowed, JsonlSink (no flush)": (
                lambda: JsonlSink(log, flush=False),
                timed("allowed(1)"),
            ),
            "allowed, log_decisions to a file": (
                lambda: logging_sink(Path(tmp, "audit.log")),
                timed("allowed(1)"),
            ),
        }
        best = best_of(
            repeats,
            {
                name: (lambda s=sink, t=t: under(s, t))
                for name, (sink, t) in subjects.items()
            },
        )

    base, wrapt_cost = best["bare call"], best["no-op wrapt.decorator"]
    print(header("capscope audit benchmark", environment()))
    print(f"\n{'call':38} {'ns':>9} {'x bare':>8} {'x wrapt':>8}")
    for name, ns in best.items():
        print(f"{name:38} {ns:9.1f} {ns / base:8.2f} {ns / wrapt_cost:8.2f}")


if __name__ == "__main__":
    main()
