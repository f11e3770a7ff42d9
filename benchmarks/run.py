"""
The whole benchmark suite, in one command and one run.

    python benchmarks/run.py [--quick] [--out DIR] [--docs] [--no-load]

Set up once, in a virtualenv of its own (the alternatives are benchmark
requirements, never capscope's):

    python3 -m venv /tmp/benchvenv
    /tmp/benchvenv/bin/pip install -e . -r benchmarks/requirements.txt
    /tmp/benchvenv/bin/python benchmarks/run.py --docs

What it runs, all in this one invocation (the load test in subprocesses
it starts, one per worker count, so that each count's peak RSS is its own):

1. Calls (`bench_tools.py`, `bench_alternatives.py`, `bench_commands.py`),
   timed in the same interleaved rounds: a bare call, a no-op
   `wrapt.decorator`, capscope's decorated calls (allowed and denied, sync
   and async, `@needs_approval` with an allow rule, at "execution" depths
   1/100/1000), `check_command` (short and 10 segments), capscope push/pop
   around a call, and the alternatives: Flask-Principal, casbin, tenuo,
   OpenTelemetry context and structlog contextvars.
2. The core (`bench_core.py`): `top()` and push/pop at depths 1/100/1000,
   `Scope.capture_inherited()` and `spawn` (against `asyncio.create_task`)
   at depths 1/100/1000 and with 1/8/64 extra registered stacks,
   `scope_ambient` per step, `capscope.to_thread` against
   `asyncio.to_thread`.
3. The load test (`load.py`): 1,000 to 10,000 concurrent spawned workers
   and 64 threads, each under its own policy, every decision checked
   against its worker.

Every figure is a ratio between measurements of this run (see
`_timing.py`); absolute times are kept in the JSON for the curious but
promise nothing. Output: `DIR/latest.json` (machine, Python, date, every
ratio, every target and whether it is met) and `DIR/performance.png`; with
`--docs`, also the plot at `docs/img/performance.png` and the generated
part of `docs/performance.md`. `--quick` takes well under a minute (fewer,
shorter rounds; 20 calls per load-test worker instead of 100).

Exit status: 1 if the load test saw a decision attributed to the wrong
worker (or decided against its worker's policy, or lost), else 0; a missed
performance target is reported, not an error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from string import Template

import bench_alternatives
import bench_commands
import bench_core
import bench_policies
import bench_tools
import load
from _timing import Row, best_of, environment, header, print_rows

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "performance.md"
DOC_PLOT = ROOT / "docs" / "img" / "performance.png"
#: The page's prose; `render_page` fills in every figure from the results.
TEMPLATE = ROOT / "benchmarks" / "performance.md.tmpl"

#: Alternatives capscope's allowed call must undercut, and by how much.
CHEAPER_THAN = {"flask_principal": 5.0, "casbin": 100.0, "tenuo": 100.0}
NAMES = {
    "flask_principal": "a Flask-Principal decorated call",
    "casbin": "casbin `enforce`",
    "tenuo": "tenuo `@guard`",
}


def memory_total() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


# -- 1. calls ---------------------------------------------------------------


def measure_calls(quick: bool) -> dict:  # noqa: FBT001 - a CLI flag
    repeats, seconds = (7, 0.002) if quick else (25, 0.005)
    alts = bench_alternatives.prepare(seconds)
    timed = (
        bench_tools.variants(bench_tools.CALLS, seconds)
        | alts.timed
        | bench_commands.variants(seconds * 2)
    )
    try:
        best = best_of(repeats, timed)
    finally:
        alts.close()
    commands = bench_commands.rows(best)
    command_calls = tuple(
        bench_tools.Call(f"check {name}", f"`check_command`, {name}", "")
        for name in bench_commands.TEXTS
    )
    return {
        "repeats": repeats,
        "loop_seconds": seconds,
        "best_ns": best,
        "capscope": bench_tools.call_table(bench_tools.CALLS, best),
        "commands": bench_tools.call_table(command_calls, best),
        "command_rows": commands,
        "alternatives": bench_alternatives.alternative_table(alts.ready, best),
        "unavailable": alts.unavailable,
        "target_rows": bench_tools.target_rows(best),
    }


# -- 1b. calls under real policies ------------------------------------------


def measure_policies(also: list[str]) -> dict:
    """`bench_policies` here, and under each interpreter of *also*."""
    here = bench_policies.measure()
    others = []
    script = Path(bench_policies.__file__)
    for python in also:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp, "policies.json")
            subprocess.run(
                [python, str(script), "--json", str(out)],
                check=True,
                stdout=subprocess.DEVNULL,
            )
            others.append(json.loads(out.read_text()))
    return {"here": here, "others": others}


# -- targets ----------------------------------------------------------------


def target(
    name: str, value: float | None, goal: str, *, met: bool | None, note: str
) -> dict:
    return {
        "target": name,
        "value": value,
        "goal": goal,
        "met": met,
        "note": note,
    }


def targets(
    calls: dict, core: list[Row], load_report: dict | None, policies: dict
) -> list:
    best = calls["best_ns"]
    out = [
        target(
            row.name,
            row.ratio,
            row.target_text,
            met=row.verdict == "PASS",
            note=miss_note(row),
        )
        for row in calls["target_rows"]
    ]
    for key, floor in CHEAPER_THAN.items():
        name = (
            f"allowed `@requires_tool` at least {floor:g}x cheaper than "
            f"{NAMES[key]}"
        )
        if key in best:
            ratio = best[key] / best["allowed"]
            out.append(
                target(
                    name,
                    ratio,
                    f">={floor:g}x",
                    met=ratio >= floor,
                    note=""
                    if ratio >= floor
                    else f"missed: {ratio:.2f}x, short by "
                    f"{(floor - ratio) / floor:.0%}",
                )
            )
        else:
            why = calls["unavailable"].get(key, "not measured")
            out.append(target(name, None, f">={floor:g}x", met=None, note=why))
    out.extend(
        target(
            row.name,
            row.ratio,
            row.target_text,
            met=row.verdict == "PASS",
            note=miss_note(row),
        )
        for row in core
        if row.target is not None
    )
    out.extend(
        target(
            row["target"],
            row["value"],
            row["goal"],
            met=row["met"],
            note=policy_note(row, policies["here"]),
        )
        for row in policies["here"]["rows"]
    )
    if load_report is None:
        out.append(
            target(
                "load test", None, "-", met=None, note="skipped (--no-load)"
            )
        )
        return out
    runs = load_report["runs"]
    biggest = max(runs, key=lambda r: r["workers"])
    out.append(
        target(
            f"load test ({biggest['workers']:,} workers + "
            f"{biggest['threads']} threads) completes, no cross-attribution",
            None,
            "0 wrong",
            met=load_report["ok"],
            note="; ".join(f for r in runs for f in r["failures"])
            or f"{sum(r['calls'] for r in runs):,} calls checked, "
            f"{sum(r['cross_attributed'] for r in runs)} attributed to the "
            "wrong worker"
            + (
                "; the self-check caught a planted wrong overlay and a "
                "planted wrong policy"
                if load_report.get("self_check")
                else "; the SELF-CHECK FAILED: the checks missed a planted "
                "mistake"
            ),
        )
    )
    per_worker = load_report["bytes_per_worker"]
    out.append(
        target(
            "memory grows linearly with the worker count",
            load_report["fit_r2"],
            f"R^2 >= {load_report['min_r2']}, "
            f"growth <= {load_report['max_growth']}x",
            met=load_report["linear"],
            note=f"a line fits with R^2 {load_report['fit_r2']:.4f}; "
            f"{min(per_worker):,.0f}-{max(per_worker):,.0f} bytes per live "
            f"worker, {load_report['bytes_per_worker_growth']:.2f}x at the "
            "largest count against the smallest",
        )
    )
    return out


def policy_note(row: dict, run: dict) -> str:
    if row["met"]:
        return ""
    note = f"missed: {row['value']:.2f}x"
    if row["key"] == "paths":
        note += (
            f"; naming the file alone (the kernel's answer, three system "
            f"calls) costs {run['path_floor']:.1f}x the call without "
            "`paths=` on this machine"
        )
    return note


def miss_note(row: Row) -> str:
    if row.verdict != "FAIL" or row.target is None:
        return ""
    if row.at_least:
        return f"missed: {row.ratio:.2f}x, short by {1 - row.ratio / row.target:.0%}"
    return (
        f"missed: {row.ratio:.2f}x, {row.ratio / row.target - 1:.0%} over "
        f"{row.target_text}"
    )


# -- output -----------------------------------------------------------------


def core_table(core: list[Row], bare_ns: float, wrapt_ns: float) -> list:
    return [
        {
            **row.as_dict(),
            "subject_x_bare": row.subject / bare_ns,
            "subject_x_wrapt": row.subject / wrapt_ns,
        }
        for row in core
    ]


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=2, default=str) + "\n")


def fmt_x(value: float) -> str:
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    return f"{value:.2f}x"


def markdown(data: dict, plot: str | None) -> str:
    env = data["environment"]
    calls = data["calls"]
    lines = [
        f"Measured on **{env['date']}** with **{env['implementation']} "
        f"{env['python']}** on {env['platform']}: {env['processor']}, "
        f"**{env['cpus']} CPUs**, "
        + (
            f"{env['memory_bytes'] / 2**30:.0f} GiB of memory"
            if env.get("memory_bytes")
            else "memory unknown"
        )
        + f"; load average before the run "
        f"{', '.join(f'{x:.2f}' for x in env['load_average'])}. "
        + ("A `--quick` run. " if env["quick"] else "")
        + f"The whole run took {data['seconds']:.0f} s.",
        "",
        "### Targets",
        "",
        "| target | measured | goal | met? |",
        "| --- | ---: | ---: | --- |",
    ]
    for t in data["targets"]:
        if t["met"] is None:
            verdict = "not measured"
        else:
            verdict = "**yes**" if t["met"] else "**NO**"
        if t["note"]:
            verdict += f": {t['note']}"
        value = t["value"]
        if value is None:
            shown = "-"
        elif t["goal"].startswith("R^2"):
            shown = f"R^2 {value:.4f}"
        else:
            shown = fmt_x(value)
        lines.append(f"| {t['target']} | {shown} | {t['goal']} | {verdict} |")
    lines += policies_markdown(data["policies"])
    lines += [
        "",
        "### Decorated calls",
        "",
        (
            "Each row is one call, as a multiple of a bare call of the same "
            "function and of the same function under a no-op "
            "`wrapt.decorator`, timed in the same interleaved rounds. Async "
            "rows are ratios to an async bare call and an async no-op "
            "`wrapt` call, each stepped to its end."
        ),
        "",
        "| call | x bare call | x no-op wrapt |",
        "| --- | ---: | ---: |",
    ]
    alternatives = [r for r in calls["alternatives"] if "versus" in r]
    ours = calls["capscope"] + calls["commands"]
    ours += [r for r in calls["alternatives"] if "versus" not in r]
    lines.extend(
        f"| {r['label']} | {fmt_x(r['x_bare'])} | {fmt_x(r['x_wrapt'])} |"
        for r in ours
    )
    labels = {str(r["key"]): str(r["label"]) for r in ours}
    lines += [
        "",
        "### The alternatives",
        "",
        (
            "The same measures for what a user might pick instead, timed in "
            "the same rounds as the calls above; the last column is how many "
            "times the capscope counterpart fits in one call of that row."
        ),
        "",
        (
            "| alternative | x bare call | x no-op wrapt | capscope counterpart "
            "| its cost, x the counterpart's |"
        ),
        "| --- | ---: | ---: | --- | ---: |",
    ]
    lines.extend(
        f"| {r['label']} | {fmt_x(r['x_bare'])} | {fmt_x(r['x_wrapt'])} "
        f"| {labels[str(r['versus'])]} | {fmt_x(r['x_versus'])} |"
        for r in alternatives
    )
    lines.extend(
        f"| {key} | not measured: {why} | | | |"
        for key, why in calls["unavailable"].items()
    )
    lines += [
        "",
        "`check_command` against `shlex.split` of the same string: "
        + "; ".join(
            f"{r['name'].split(' / ')[0]} {fmt_x(r['ratio'])}"
            for r in calls["command_rows"]
        )
        + ".",
        "",
        "### Core operations",
        "",
        (
            "Each row is a ratio to the standard-library operation it is built "
            "on (or to itself at depth 1, or with one extra stack); the last "
            "two columns put the subject next to a bare call and a no-op "
            "`wrapt` call of the same run."
        ),
        "",
        (
            "| measurement | ratio | goal | subject x bare call "
            "| subject x no-op wrapt |"
        ),
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for r in data["core"]:
        goal = (
            ""
            if r["target"] is None
            else (f"{'>=' if r['at_least'] else '<='}{r['target']:g}x")
        )
        if r["verdict"] == "FAIL":
            goal += " **missed**"
        lines.append(
            f"| {r['name']} | {fmt_x(r['ratio'])} | {goal} "
            f"| {fmt_x(r['subject_x_bare'])} | {fmt_x(r['subject_x_wrapt'])} |"
        )
    if plot:
        lines += ["", f"![Benchmark results]({plot})"]
    lines += load_markdown(data.get("load"))
    return "\n".join(lines) + "\n"


def policies_markdown(policies: dict) -> list[str]:
    runs = [policies["here"], *policies["others"]]
    lines = [
        "",
        "### Calls under real policies",
        "",
        (
            "`bench_policies.py`: each row a ratio of two measurements of one "
            "run (the minimum of 5 repeats), in each interpreter measured."
        ),
        "",
        "| measurement | goal | "
        + " | ".join(f"CPython {r['python']}" for r in runs)
        + " |",
        "| --- | ---: | " + " | ".join("---:" for _ in runs) + " |",
    ]
    for i, row in enumerate(policies["here"]["rows"]):
        cells = []
        for run in runs:
            got = run["rows"][i]
            cells.append(
                fmt_x(got["value"]) + ("" if got["met"] else " **missed**")
            )
        lines.append(
            f"| {row['target']} | {row['goal']} | " + " | ".join(cells) + " |"
        )
    floors = ", ".join(
        f"{fmt_x(r['path_floor'])} on CPython {r['python']}" for r in runs
    )
    lines += [
        "",
        (
            "The floor under the `paths=` row: naming one existing file as "
            "the kernel does (`O_PATH` open, `readlink` of `/proc/self/fd`, "
            f"close) costs, against the whole call without `paths=`, {floors}."
        ),
    ]
    return lines


def reading(data: dict) -> str:
    """What the tables say, in sentences made from the same results."""
    best = data["calls"]["best_ns"]
    env = data["environment"]
    allowed = best["allowed"]
    here = data["policies"]["here"]
    missed = [t["target"] for t in data["targets"] if t["met"] is False]
    parts = [
        (
            f"**The allowed call.** On {env['implementation']} "
            f"{env['python']} an allowed `@requires_tool` call costs "
            f"{fmt_x(allowed / best['wrapt'])} a no-op `wrapt.decorator` call "
            f"and {fmt_x(allowed / best['bare'])} a bare call; at execution "
            f"depth 1000, {fmt_x(best['allowed_d1000'] / allowed)} its cost "
            "at depth 1 (only the top frame is read)."
        ),
        (
            "**Real policies.** Calls under approval rules, remembered "
            "answers and dynamic permissions are decided by the same fast "
            "paths once a call of the tool was allowed under the same frames "
            "(the first call runs every gate and proves the next can skip "
            f"them): under the README's policy file an allowed call costs "
            f"{fmt_x(here['rows'][0]['value'])} the fast path. A call with a "
            "path argument has a fast path of its own: the gates that read "
            "no argument are proved once for the frames, and every call "
            "resolves each of its files again as the gates do (the kernel "
            "names an existing file; one not there yet is resolved component "
            "by component; nothing about the file system is kept between "
            "calls, which a re-pointed symlink would defeat) and finds those "
            "names among the ones already allowed under the same frames. "
            "Naming the file is the floor "
            "shown under the table above: a few system calls, each costing "
            "several times the whole call without `paths=` on this machine."
        ),
    ]
    if "flask_principal" in best:
        parts.append(
            "**Against the alternatives.** They do different jobs, and the "
            "ratios compare only what one guarded call costs: a "
            f"Flask-Principal decorated call costs "
            f"{fmt_x(best['flask_principal'] / allowed)} an allowed capscope "
            "call, with one identity per request and no notion of concurrent "
            "workers each under their own policy."
        )
    report = data.get("load")
    if report is not None:
        runs = sorted(report["runs"], key=lambda r: r["workers"])
        rates = [r["calls_per_s"] for r in runs]
        parts.append(
            f"**The load test.** {min(rates):,.0f} to {max(rates):,.0f} "
            f"decorated calls per second from {runs[0]['workers']:,} to "
            f"{runs[-1]['workers']:,} workers plus {runs[-1]['threads']} "
            "threads, each call building a `Decision` for the test's "
            "subscriber, with "
            f"{sum(r['cross_attributed'] for r in runs)} decisions attributed "
            "to the wrong worker."
        )
    parts.append(
        "**Missed in this run:** " + "; ".join(missed) + "."
        if missed
        else "**Every target is met in this run.**"
    )
    return "\n\n".join(parts)


def render_page(data: dict, plot: str | None) -> str:
    """The whole of `docs/performance.md`, from the template and *data*."""
    load_report = data.get("load") or {"runs": []}
    runs = sorted(load_report["runs"], key=lambda r: r["workers"])
    return Template(TEMPLATE.read_text(encoding="utf-8")).substitute(
        results=markdown(data, plot).rstrip(),
        reading=reading(data),
        repeats=data["calls"]["repeats"],
        load_counts=", ".join(f"{r['workers']:,}" for r in runs) or "no",
        threads=runs[-1]["threads"] if runs else 0,
        calls_per_worker=runs[-1]["calls_per_worker"] if runs else 0,
    )


def load_markdown(report: dict | None) -> list[str]:
    if report is None:
        return ["", "### Load test", "", "Skipped in this run (`--no-load`)."]
    lines = [
        "",
        "### Load test",
        "",
        (
            "Workers spawned with `capscope.spawn`, each with its own overlay "
            "`worker_id` and its own narrowed `CapabilityPolicy`, plus threads "
            "on a `ScopedExecutor`, each under its own policy; every one makes "
            "its calls (allowed and denied) after all have started, yielding "
            "after each call. Latency is per call with an events subscriber "
            "installed (so every call builds a `Decision`); throughput counts "
            "the task or thread switch between calls. Bytes per worker: traced "
            "memory held while all workers are alive, over the worker count, "
            "against bare `asyncio.create_task` workers in the same process."
        ),
        "",
        (
            "| workers + threads | calls | calls/s | p50 | p99 "
            "| p50 allowed / denied | bytes per worker (bare task) "
            "| peak RSS | wrong worker | wall |"
        ),
        (
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: "
            "| ---: |"
        ),
    ]
    for r in report["runs"]:
        mem, bare = r["memory"], r["memory_bare_task"]
        lines.append(
            f"| {r['workers']:,} + {r['threads']} | {r['calls']:,} "
            f"| {r['calls_per_s']:,.0f} | {r['p50_ns'] / 1e3:.1f} us "
            f"| {r['p99_ns'] / 1e3:.1f} us "
            f"| {r['allowed_p50_ns'] / 1e3:.1f} / "
            f"{r['denied_p50_ns'] / 1e3:.1f} us "
            f"| {mem['bytes_per_worker']:,.0f} "
            f"({bare['bytes_per_worker']:,.0f}) "
            f"| {r['ru_maxrss_bytes'] / 2**20:,.0f} MiB "
            f"| {r['cross_attributed']} | {r['seconds']:.1f} s |"
        )
    lines += [
        "",
        f"Held memory against the worker count: a least-squares line "
        f"fits it with R^2 {report['fit_r2']:.4f}, at "
        f"{report['fit_bytes_per_worker']:,.0f} bytes per worker"
        "; bytes per "
        f"worker at the largest count are "
        f"{report['bytes_per_worker_growth']:.2f}x those at the smallest. "
        "Memory grows "
        + ("linearly." if report["linear"] else "**not** linearly."),
    ]
    return lines


def doc_plot() -> str | None:
    """The plot as the page links it, if there is one."""
    if not DOC_PLOT.exists():
        return None
    return DOC_PLOT.relative_to(DOC.parent).as_posix()


def plot(data: dict, path: Path) -> str | None:
    """The figure; None (and why, on stderr) if matplotlib is missing."""
    try:
        import matplotlib as mpl

        mpl.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        print(f"no plot: {exc}", file=sys.stderr)
        return None
    fig, axes = plt.subplots(2, 2, figsize=(13, 9.5))
    plot_calls(axes[0][0], data)
    plot_stacks(axes[0][1], data)
    plot_memory(axes[1][0], data.get("load"))
    plot_throughput(axes[1][1], data.get("load"))
    env = data["environment"]
    fig.suptitle(
        f"capscope benchmarks: {env['implementation']} {env['python']}, "
        f"{env['cpus']} CPUs, {env['date'][:10]}"
        + (" (--quick)" if env["quick"] else "")
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)
    plt.close(fig)
    return str(path)


def plot_calls(ax, data: dict) -> None:
    calls = data["calls"]
    wanted = [
        ("bare", "bare call"),
        ("allowed", "capscope allowed"),
        ("wrapt", "no-op wrapt"),
        ("cs_push_pop", "capscope push/pop"),
        ("otel", "OpenTelemetry attach/detach"),
        ("flask_principal", "Flask-Principal"),
        ("structlog", "structlog bound_contextvars"),
        ("denied", "capscope denied"),
        ("approved", "capscope needs_approval"),
        ("casbin", "casbin enforce"),
        ("check short", "capscope check_command"),
        ("tenuo", "tenuo @guard"),
    ]
    best = calls["best_ns"]
    shown = [(key, label) for key, label in wanted if key in best]
    values = [best[key] / best["bare"] for key, _ in shown]
    colours = [
        "#888888"
        if key in ("bare", "wrapt")
        else "#1f77b4"
        if key in ("allowed", "cs_push_pop", "denied", "approved")
        or key.startswith("check")
        else "#d62728"
        for key, _ in shown
    ]
    ax.barh([label for _, label in shown], values, color=colours)
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("cost of one call, x a bare call (log scale)")
    ax.set_title("Per call: capscope (blue), alternatives (red)")
    for y, value in enumerate(values):
        ax.text(value, y, f" {fmt_x(value)}", va="center", fontsize=8)


def plot_stacks(ax, data: dict) -> None:
    core = {r["name"]: r for r in data["core"]}
    counts = [1, *bench_core.EXTRA_COUNTS[1:]]
    for kind, style in (("COPY", "o-"), ("TOP", "s--")):
        for op, colour in (
            ("spawn", "#1f77b4"),
            ("capture_inherited", "#ff7f0e"),
        ):
            ys = [1.0] + [
                core.get(f"{op}: +{k} {kind} stacks / +1", {}).get("ratio")
                for k in counts[1:]
            ]
            if None in ys:
                continue
            ax.plot(counts, ys, style, color=colour, label=f"{op}, {kind}")
    ax.axhline(1.5, color="#888888", linestyle=":", label="spawn target 1.5x")
    ax.set_xscale("log", base=2)
    ax.set_xticks(counts, [f"+{k}" for k in counts])
    ax.set_xlabel("extra registered stacks (one frame each)")
    ax.set_ylabel("cost, x the cost with +1")
    ax.set_title("Worker capture and spawn against the number of stacks")
    ax.legend(fontsize=8)


def plot_memory(ax, report: dict | None) -> None:
    ax.set_title("Load test: memory held by live workers")
    if report is None:
        ax.text(0.5, 0.5, "skipped", ha="center", transform=ax.transAxes)
        return
    runs = sorted(report["runs"], key=lambda r: r["workers"])
    xs = [r["workers"] for r in runs]
    ax.plot(
        xs,
        [r["memory"]["held_bytes"] / 2**20 for r in runs],
        "o-",
        label="capscope.spawn workers (own policy + overlay)",
    )
    ax.plot(
        xs,
        [r["memory_bare_task"]["held_bytes"] / 2**20 for r in runs],
        "s--",
        color="#888888",
        label="bare asyncio.create_task workers",
    )
    ax.set_xlabel("concurrent workers")
    ax.set_ylabel("traced MiB held")
    ax.legend(fontsize=8)


def plot_throughput(ax, report: dict | None) -> None:
    ax.set_title("Load test: throughput and latency")
    if report is None:
        ax.text(0.5, 0.5, "skipped", ha="center", transform=ax.transAxes)
        return
    runs = sorted(report["runs"], key=lambda r: r["workers"])
    xs = [r["workers"] for r in runs]
    rates = [r["calls_per_s"] / 1e3 for r in runs]
    ax.plot(xs, rates, "o-", label="calls/s")
    ax.set_xlabel("concurrent workers (+ threads)")
    ax.set_ylabel("thousand calls per second")
    ax.set_ylim(0, max(rates) * 1.25)
    twin = ax.twinx()
    twin.plot(
        xs,
        [r["p50_ns"] / 1e3 for r in runs],
        "s--",
        color="#2ca02c",
        label="p50",
    )
    twin.plot(
        xs,
        [r["p99_ns"] / 1e3 for r in runs],
        "^--",
        color="#d62728",
        label="p99",
    )
    twin.set_ylabel("per-call latency, us")
    twin.set_ylim(0, max(r["p99_ns"] for r in runs) / 1e3 * 1.25)
    handles = ax.get_legend_handles_labels()
    more = twin.get_legend_handles_labels()
    ax.legend(
        handles[0] + more[0],
        handles[1] + more[1],
        fontsize=8,
        loc="lower right",
    )


def publish(data: dict, out: Path, *, docs: bool) -> None:
    """The plot into *out*; with *docs*, the plot and the page's results."""
    plotted = plot(data, out / "performance.png")
    if docs:
        if plotted:
            DOC_PLOT.parent.mkdir(parents=True, exist_ok=True)
            DOC_PLOT.write_bytes(Path(plotted).read_bytes())
        DOC.write_text(render_page(data, doc_plot()), encoding="utf-8")
    print(f"\nresults in {out}", end="")
    print(f", plot {plotted}" if plotted else "", end="")
    print(f"; updated {DOC.relative_to(ROOT)}" if docs else "")


def print_summary(data: dict) -> None:
    calls = data["calls"]
    print()
    bench_tools.print_call_table(
        calls["capscope"] + calls["commands"] + calls["alternatives"]
    )
    for key, why in calls["unavailable"].items():
        print(f"{key}: NOT MEASURED: {why}")
    print()
    print_rows([Row(**_row_args(r)) for r in data["core"]])
    print("\nTargets:")
    for t in data["targets"]:
        verdict = {True: "met", False: "MISSED", None: "not measured"}[
            t["met"]
        ]
        value = "-" if t["value"] is None else f"{t['value']:.3g}"
        note = f" ({t['note']})" if t["note"] else ""
        print(f"  [{verdict}] {t['target']}: {value} vs {t['goal']}{note}")


def _row_args(r: dict) -> dict:
    return {
        "name": r["name"],
        "subject": r["subject_ns"],
        "baseline": r["baseline_ns"],
        "target": r["target"],
        "at_least": r["at_least"],
        "group": r["group"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results"
    )
    parser.add_argument(
        "--docs",
        action="store_true",
        help="also write docs/img/performance.png and docs/performance.md",
    )
    parser.add_argument(
        "--no-load", action="store_true", help="skip the load test"
    )
    parser.add_argument(
        "--also",
        action="append",
        default=[],
        metavar="PYTHON",
        help="also run bench_policies.py under this interpreter",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="measure nothing: redraw the plot and, with --docs, the page "
        "from a results file of an earlier run",
    )
    args = parser.parse_args()
    if args.render:
        data = json.loads(args.render.read_text())
        publish(data, args.out, docs=args.docs)
        return 0
    plan = bench_core.QUICK if args.quick else bench_core.DEFAULT
    env = environment(
        quick=args.quick, plan=asdict(plan), memory_bytes=memory_total()
    )
    print(header("capscope benchmark suite", env), flush=True)
    t0 = time.perf_counter()

    print("\n[1/3] calls and alternatives ...", flush=True)
    calls = measure_calls(args.quick)
    print("      calls under real policies ...", flush=True)
    policies = measure_policies(args.also)
    print("[2/3] core operations ...", flush=True)
    core = bench_core.measure(plan)
    load_report = None
    if not args.no_load:
        print("[3/3] load test ...", flush=True)
        load_report = load.series(
            load.DEFAULT_WORKERS,
            load.QUICK_CALLS if args.quick else load.DEFAULT_CALLS,
            load.THREADS,
        )
        # The checks can fail: a wrong overlay and a wrong policy are caught.
        load_report["self_check"] = load.self_check()
        load_report["ok"] = load_report["ok"] and load_report["self_check"]
    seconds = time.perf_counter() - t0

    best = calls["best_ns"]
    data = {
        "environment": env,
        "seconds": seconds,
        "targets": targets(calls, core, load_report, policies),
        "calls": {
            **{k: v for k, v in calls.items() if not k.endswith("rows")},
            "command_rows": [r.as_dict() for r in calls["command_rows"]],
            "target_rows": [r.as_dict() for r in calls["target_rows"]],
        },
        "core": core_table(core, best["bare"], best["wrapt"]),
        "policies": policies,
        "load": load_report,
    }
    write_json(args.out / "latest.json", data)
    print_summary(data)
    publish(data, args.out, docs=args.docs)
    print(f"took {seconds:.0f} s")
    if load_report is not None and not load_report["ok"]:
        print("LOAD TEST FAILED: see the failures above", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
