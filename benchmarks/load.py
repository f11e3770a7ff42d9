"""
Load test: many concurrent workers, each under its own policy, and no
decision attributed to the wrong one.

    python benchmarks/load.py [--quick] [--workers 1000,2500,5000,10000]
                              [--calls 100] [--threads 64] [--json PATH]

For each worker count N, in a fresh subprocess (so that peak RSS is that
count's own):

- N asyncio workers started with `capscope.spawn`, each pushing its own
  `worker_id` overlay and its own narrowed `CapabilityPolicy`, plus
  `--threads` jobs on a `capscope.ScopedExecutor` over a thread pool of as
  many threads, each submitted under its own policy and overlay. Every worker
  and job waits until all have started, then makes `--calls` decorated calls
  (allowed and denied, by its own policy), yielding after each (an
  `asyncio.sleep(0)` or `time.sleep(0)`), so that all of them interleave.
- A subscriber to `capscope.events` checks every decision against an oracle
  that owes nothing to capscope: a plain `ContextVar` that each worker sets
  to its own id from its own argument. The worker checks each outcome
  (returned or denied) against what its own policy says. Any mismatch, a
  missing decision, or a worker that did not finish: exit status 1.
- Throughput is all calls over the wall time of that phase, a task or
  thread switch between every two calls included; latency is each call
  alone (`perf_counter_ns` around it, the subscriber included).
- Memory, in a separate pass under `tracemalloc`: the N workers are spawned
  the same way, each makes one call and then parks; the traced bytes held
  while all N are alive, minus those before, over N, is the cost of a live
  worker. The same pass with bare `asyncio.create_task` workers (a plain
  `ContextVar` set, a bare call, the same park) is its baseline, measured in
  the same process. `ru_maxrss` is the subprocess's peak RSS over both
  passes (latency samples included).

`--self-check` shows that the checks can fail: it runs a small pass in
which each worker is given its neighbour's overlay, then its neighbour's
policy, and exits 0 only if both are caught.

Called with one `--workers` count and `--child`, it runs that count in this
process and prints one JSON object; otherwise it runs each count in a
subprocess and reports the series (and whether bytes per worker stay flat,
i.e. memory grows linearly). `run.py` calls `series()`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextvars
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from array import array
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import capscope as cs
from capscope.policies import CapabilityPolicy, RuntimeContextOverlay

DEFAULT_WORKERS = (1000, 2500, 5000, 10_000)
DEFAULT_CALLS = 100
QUICK_CALLS = 20
THREADS = 64
#: "Linear": a line fits held bytes against workers at least this well ...
MIN_R2 = 0.99
#: ... and bytes per worker at the largest count are at most this many
#: times those at the smallest.
MAX_GROWTH = 1.25

#: The oracle: each worker sets it to its own id, from its own argument.
who: contextvars.ContextVar[str] = contextvars.ContextVar("load_who")


@cs.requires_tool("fs.read", side_effect="read_only")
def read(x: int) -> int:
    return x


@cs.requires_tool("fs.write", side_effect="workspace_write")
def write(x: int) -> int:
    return x


@cs.requires_tool("net.get", side_effect="network")
def fetch(x: int) -> int:
    return x


TOOLS = (read, write, fetch)
TOOL_NAMES = frozenset(("fs.read", "fs.write", "net.get"))
ROOT = CapabilityPolicy(tools=("fs.*", "net.*"))
#: Two kinds of worker, alternating: each allows two of the three tools.
POLICY_TOOLS = (("fs.read", "fs.write"), ("fs.read", "net.get"))
EXPECTED = (  # whether call j (tool j % 3) is allowed, by the worker's kind
    (True, True, False),
    (True, False, True),
)


def policy_for(index: int) -> CapabilityPolicy:
    return CapabilityPolicy(tools=POLICY_TOOLS[index % 2])


class Checker:
    """The events subscriber: every decision must be its worker's."""

    def __init__(self) -> None:
        self.seen = 0
        self.wrong: list[tuple[str | None, str | None]] = []
        self.lock = threading.Lock()

    def __call__(self, decision: cs.Decision) -> None:
        expected = who.get(None)
        got = decision.overlay.worker_id
        with self.lock:
            # The root push of "execution" is an event too (an escape):
            # count only the calls' decisions, but check every one.
            self.seen += decision.tool in TOOL_NAMES
            if got != expected:
                self.wrong.append((expected, got))


class Outcomes:
    """What the workers saw; appended to from the loop and the threads."""

    def __init__(self) -> None:
        self.mismatched: list[tuple[str, int]] = []
        self.finished = 0
        self.allowed = array("q")  # ns per allowed call
        self.denied = array("q")  # ns per denied call
        self.lock = threading.Lock()

    def record(self, wid: str, errors: list[int], lat: Latency) -> None:
        with self.lock:
            self.mismatched.extend((wid, j) for j in errors)
            self.finished += 1
            self.allowed.extend(lat.allowed)
            self.denied.extend(lat.denied)


class Latency:
    """One worker's per-call times, kept apart by outcome."""

    __slots__ = ("allowed", "denied")

    def __init__(self) -> None:
        self.allowed = array("q")
        self.denied = array("q")


def one_call(j: int, index: int, lat: Latency, errors: list[int]) -> None:
    tool = TOOLS[j % 3]
    t0 = time.perf_counter_ns()
    try:
        tool(j)
    except cs.ToolDenied:
        lat.denied.append(time.perf_counter_ns() - t0)
        allowed = False
    else:
        lat.allowed.append(time.perf_counter_ns() - t0)
        allowed = True
    if allowed is not EXPECTED[index % 2][j % 3]:
        errors.append(j)


async def async_worker(
    index: int, n: int, go: asyncio.Event, out: Outcomes
) -> None:
    wid = f"w{index}"
    who.set(wid)
    lat = Latency()
    errors: list[int] = []
    await go.wait()
    for j in range(n):
        one_call(j, index, lat, errors)
        await asyncio.sleep(0)
    out.record(wid, errors, lat)


def thread_job(index: int, n: int, go: threading.Event, out: Outcomes) -> None:
    wid = f"t{index}"
    who.set(wid)
    lat = Latency()
    errors: list[int] = []
    go.wait()
    for j in range(n):
        one_call(j, index, lat, errors)
        time.sleep(0)  # let another thread, or the loop, have the GIL
    out.record(wid, errors, lat)


def percentile(sorted_ns: list[int], q: float) -> float:
    if not sorted_ns:
        return float("nan")
    return float(sorted_ns[min(len(sorted_ns) - 1, int(q * len(sorted_ns)))])


async def timed_pass(
    workers: int, n: int, threads: int, *, shift: tuple[int, int] = (0, 0)
) -> dict:
    """
    The timed, checked pass. *shift* is for `--self-check` only: worker i
    is given the overlay of worker i + shift[0] and the policy of worker
    i + shift[1], which the checks must catch.
    """
    wrong_id, wrong_policy = shift
    checker, out = Checker(), Outcomes()
    unsubscribe = cs.events.subscribe(checker)
    go, thread_go = asyncio.Event(), threading.Event()
    overlay = cs.stacks.overlay
    try:
        with cs.using(
            execution=ROOT, overlay=RuntimeContextOverlay(run_id="load")
        ):
            t0 = time.perf_counter()
            tasks = [
                cs.spawn(
                    async_worker(i, n, go, out),
                    push={
                        cs.stacks.execution: policy_for(i + wrong_policy),
                        overlay: RuntimeContextOverlay(
                            worker_id=f"w{i + wrong_id}"
                        ),
                    },
                )
                for i in range(workers)
            ]
            spawn_s = time.perf_counter() - t0
            pool = cs.ScopedExecutor(ThreadPoolExecutor(max_workers=threads))
            futures = []
            for k in range(threads):
                with cs.using(
                    execution=policy_for(k + wrong_policy),
                    overlay=RuntimeContextOverlay(
                        worker_id=f"t{k + wrong_id}"
                    ),
                ):
                    futures.append(
                        pool.submit(thread_job, k, n, thread_go, out)
                    )
            await asyncio.sleep(0)  # every worker reaches go.wait()
            gc.collect()
            t0 = time.perf_counter()
            thread_go.set()
            go.set()
            await asyncio.gather(*tasks)
            for future in futures:
                await asyncio.wrap_future(future)
            wall = time.perf_counter() - t0
            pool.shutdown()
    finally:
        unsubscribe()
    total = (workers + threads) * n
    every = sorted(out.allowed + out.denied)
    allowed, denied = sorted(out.allowed), sorted(out.denied)
    return {
        "calls": total,
        "allowed_calls": len(allowed),
        "denied_calls": len(denied),
        "wall_s": wall,
        "spawn_s": spawn_s,
        "calls_per_s": total / wall,
        "p50_ns": percentile(every, 0.50),
        "p99_ns": percentile(every, 0.99),
        "allowed_p50_ns": percentile(allowed, 0.50),
        "allowed_p99_ns": percentile(allowed, 0.99),
        "denied_p50_ns": percentile(denied, 0.50),
        "denied_p99_ns": percentile(denied, 0.99),
        "decisions": checker.seen,
        "cross_attributed": len(checker.wrong),
        "cross_attributed_sample": checker.wrong[:5],
        "wrong_outcomes": len(out.mismatched),
        "wrong_outcomes_sample": out.mismatched[:5],
        "finished": out.finished,
        "expected_finished": workers + threads,
    }


def bare_call(x: int) -> int:
    return x


class Parking:
    """Where the memory pass's workers wait until all of them are alive."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self.arrived = 0
        self.all_in = asyncio.Event()
        self.release = asyncio.Event()


async def parked_worker(index: int, lot: Parking, *, decorated: bool) -> None:
    who.set(f"w{index}")
    if decorated:
        read(index)
    else:
        bare_call(index)
    lot.arrived += 1
    if lot.arrived == lot.workers:
        lot.all_in.set()
    await lot.release.wait()


async def memory_pass(workers: int, *, decorated: bool) -> dict:
    lot = Parking(workers)
    gc.collect()
    before, _ = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    with cs.using(
        execution=ROOT, overlay=RuntimeContextOverlay(run_id="load")
    ):
        if decorated:
            tasks = [
                cs.spawn(
                    parked_worker(i, lot, decorated=True),
                    push={
                        cs.stacks.execution: policy_for(i),
                        cs.stacks.overlay: RuntimeContextOverlay(
                            worker_id=f"w{i}"
                        ),
                    },
                )
                for i in range(workers)
            ]
        else:
            tasks = [
                asyncio.create_task(parked_worker(i, lot, decorated=False))
                for i in range(workers)
            ]
        await lot.all_in.wait()
        gc.collect()
        held, peak = tracemalloc.get_traced_memory()
        lot.release.set()
        await asyncio.gather(*tasks)
    del tasks
    return {
        "held_bytes": held - before,
        "bytes_per_worker": (held - before) / workers,
        "peak_bytes": peak - before,
    }


def child(workers: int, n: int, threads: int) -> dict:
    cs.registry.ensure_entry_points()

    async def main() -> dict:
        # Memory first, while the process is small; then the timed pass.
        tracemalloc.start()
        try:
            bare = await memory_pass(workers, decorated=False)
            scoped = await memory_pass(workers, decorated=True)
        finally:
            tracemalloc.stop()
        gc.collect()
        timed = await timed_pass(workers, n, threads)
        return {"memory": scoped, "memory_bare_task": bare, **timed}

    t0 = time.perf_counter()
    result = asyncio.run(main())
    rusage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "workers": workers,
        "threads": threads,
        "calls_per_worker": n,
        **result,
        "ru_maxrss_bytes": rusage.ru_maxrss * 1024,  # KiB on Linux
        "seconds": time.perf_counter() - t0,
    }


def failures(result: dict) -> list[str]:
    out = []
    if result["cross_attributed"]:
        out.append(
            f"{result['cross_attributed']} decisions attributed to the wrong "
            f"worker, e.g. (expected, got) {result['cross_attributed_sample']}"
        )
    if result["wrong_outcomes"]:
        out.append(
            f"{result['wrong_outcomes']} calls decided against their own "
            f"worker's policy, e.g. {result['wrong_outcomes_sample']}"
        )
    if result["decisions"] != result["calls"]:
        out.append(
            f"{result['decisions']} decisions for {result['calls']} calls"
        )
    if result["finished"] != result["expected_finished"]:
        out.append(
            f"{result['finished']} of {result['expected_finished']} "
            "workers finished"
        )
    return out


def self_check() -> bool:
    """The checks can fail: a wrong overlay and a wrong policy are caught."""
    caught = True
    for shift in ((1, 0), (0, 1)):
        result = asyncio.run(timed_pass(50, 6, 4, shift=shift))
        found = failures(result)
        print(f"shifted by {shift} (overlay, policy): {found or 'NOT CAUGHT'}")
        caught = caught and bool(found)
    return caught


def run_child(workers: int, n: int, threads: int) -> dict:
    cmd = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--workers",
        str(workers),
        "--calls",
        str(n),
        "--threads",
        str(threads),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not proc.stdout.strip():
        msg = (
            f"load child for {workers} workers failed "
            f"(exit {proc.returncode}):\n{proc.stderr}"
        )
        raise RuntimeError(msg)
    return json.loads(proc.stdout)


def series(
    counts: tuple[int, ...], n: int, threads: int, *, echo: bool = True
) -> dict:
    """Each count in its own subprocess; the linearity verdict on top."""
    runs = []
    for workers in counts:
        result = run_child(workers, n, threads)
        result["failures"] = failures(result)
        runs.append(result)
        if echo:
            print_run(result)
    return {
        "runs": runs,
        **linearity(runs),
        "ok": not any(r["failures"] for r in runs),
    }


def linearity(runs: list[dict]) -> dict:
    """
    Whether held memory grows linearly with the worker count: a straight
    line fits it (R^2 >= `MIN_R2`) and bytes per worker at the largest
    count are at most `MAX_GROWTH` times those at the smallest (so that a
    curve bending upwards fails even where a line fits it well). Hash
    tables grow in steps, so bytes per worker wobble a little either way.
    """
    runs = sorted(runs, key=lambda r: r["workers"])
    xs = [r["workers"] for r in runs]
    ys = [r["memory"]["held_bytes"] for r in runs]
    per_worker = [r["memory"]["bytes_per_worker"] for r in runs]
    slope, intercept = linear_fit(xs, ys)
    r2 = statistics.correlation(xs, ys) ** 2 if len(xs) > 2 else 1.0
    growth = per_worker[-1] / per_worker[0]
    return {
        "bytes_per_worker": per_worker,
        "bytes_per_worker_spread": (max(per_worker) - min(per_worker))
        / min(per_worker),
        "bytes_per_worker_growth": growth,
        "fit_bytes_per_worker": slope,
        "fit_intercept_bytes": intercept,
        "fit_r2": r2,
        "linear": r2 >= MIN_R2 and growth <= MAX_GROWTH,
        "min_r2": MIN_R2,
        "max_growth": MAX_GROWTH,
    }


def linear_fit(xs: list[int], ys: list[int]) -> tuple[float, float]:
    if len(xs) < 2:
        return (ys[0] / xs[0], 0.0) if xs else (0.0, 0.0)
    fit = statistics.linear_regression(xs, ys)
    return fit.slope, fit.intercept


def linearity_text(report: dict) -> str:
    return (
        f"held memory against workers: a line fits with R^2 "
        f"{report['fit_r2']:.4f} (>= {MIN_R2}), "
        f"{report['fit_bytes_per_worker']:,.0f} bytes per worker; bytes per "
        f"worker at the largest count are "
        f"{report['bytes_per_worker_growth']:.2f}x those at the smallest "
        f"(<= {MAX_GROWTH}): "
        f"{'linear' if report['linear'] else 'NOT linear'}"
    )


def print_run(r: dict) -> None:
    mem, bare = r["memory"], r["memory_bare_task"]
    verdict = (
        "OK" if not r["failures"] else "FAIL: " + "; ".join(r["failures"])
    )
    print(
        f"{r['workers']:>6} workers + {r['threads']} threads x "
        f"{r['calls_per_worker']} calls: {r['calls_per_s']:>9,.0f} calls/s, "
        f"p50 {r['p50_ns'] / 1e3:.1f} us, p99 {r['p99_ns'] / 1e3:.1f} us, "
        f"{mem['bytes_per_worker']:,.0f} B/worker "
        f"(bare task {bare['bytes_per_worker']:,.0f}), "
        f"maxrss {r['ru_maxrss_bytes'] / 2**20:.0f} MiB, "
        f"{r['seconds']:.1f} s  {verdict}",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", default=None)
    parser.add_argument("--calls", type=int, default=None)
    parser.add_argument("--threads", type=int, default=THREADS)
    parser.add_argument("--json", type=Path, metavar="PATH")
    parser.add_argument(
        "--self-check",
        action="store_true",
        help="give workers each other's overlays and policies on purpose; "
        "exit 0 only if the checks catch it",
    )
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.self_check:
        return 0 if self_check() else 1
    n = args.calls or (QUICK_CALLS if args.quick else DEFAULT_CALLS)
    counts = (
        tuple(int(c) for c in args.workers.split(","))
        if args.workers
        else DEFAULT_WORKERS
    )
    if args.child:
        print(json.dumps(child(counts[0], n, args.threads)))
        return 0
    print(
        f"capscope load test, Python {sys.version.split()[0]}, "
        f"{os.cpu_count()} CPUs",
        flush=True,
    )
    report = series(counts, n, args.threads)
    print(linearity_text(report))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
