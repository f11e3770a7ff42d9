"""
The cost of `check_command`: against `shlex.split`, and as inputs grow.

    python benchmarks/bench_commands.py [--quick]

`shlex.split` is the least a command check must do (split the words); the
ratio says what parsing the shell grammar, normalising, labelling and
judging every frame cost on top. Measured for a short command and for one
of 10 segments joined by `&&`. How figures are taken: see `_timing.py`;
`run.py` runs this as part of the whole suite.

The size sweep times one check of inputs from 1 KB to 100 KB in several
shapes (many words, many commands, one long quoted word, a long pipeline,
a here-document, many expansions, many operands of `rm -rf`), each the
best of a few runs, to show that the analysis grows linearly and stays
under 50 ms: past the limits (65,536 characters, 2,048 words, 512
commands, 8,192 pieces) a line is refused without analysis. A report, not a test.
"""

from __future__ import annotations

import argparse
import shlex
import time

from _timing import (
    Row,
    Timed,
    best_of,
    environment,
    header,
    in_fresh_context,
    print_rows,
)

import capscope as cs
from capscope.policies import CommandPolicy
from capscope.stacks import command

SHORT = "git status --short"
SEGMENTS = (
    "ls -la",
    "git status",
    "git log --oneline -n 5",
    "pytest -x tests/",
    "cat README.md",
    "echo 'a; b'",
    "ls src",
    "git log --format='%H %s'",
    "echo done",
    "ls -1 docs",
)
LONG = " && ".join(SEGMENTS)
TEXTS = {"short": SHORT, "10 segments": LONG}
POLICY = CommandPolicy(
    allow=[
        "ls *",
        "cat *",
        "echo *",
        "git status *",
        "git log *",
        "pytest *",
    ],
    default="deny",
)


def variants(seconds: float) -> dict[str, Timed]:
    ctx = in_fresh_context(lambda: command.push(POLICY))
    out: dict[str, Timed] = {}
    for name, text in TEXTS.items():
        decision = ctx.run(cs.check_command, text)
        if decision.action != cs.Action.ALLOW:
            msg = f"the benchmark's {name} command is not allowed: {decision}"
            raise AssertionError(msg)
        names = {"cs": cs, "shlex": shlex, "text": text}
        out[f"check {name}"] = Timed(
            "cs.check_command(text)", names, seconds=seconds, ctx=ctx.copy()
        )
        out[f"shlex {name}"] = Timed(
            "shlex.split(text)", names, seconds=seconds, ctx=ctx.copy()
        )
    return out


def rows(best: dict[str, float]) -> list[Row]:
    return [
        Row(
            f"check_command ({name}) / shlex.split",
            best[f"check {name}"],
            best[f"shlex {name}"],
            group="commands",
        )
        for name in TEXTS
    ]


#: One unit of each shape; an input of N bytes repeats it.
SHAPES = {
    "words": ("cat ", "src/f{i}.py "),
    "commands": ("", "ls -la; "),
    "quoted word": ("echo '", "x"),
    "pipeline": ("", "grep -n TODO | "),
    "here-document": ("cat <<EOF\n", "line {i} of the body\n"),
    "expansions": ("echo ", "${{x:-$(echo {i})}} "),
    "rm operands": ("rm -rf ", "build/f{i} "),
}
SIZES_KB = (1, 2, 4, 8, 16, 32, 64, 100)


def _text(shape: str, size: int) -> str:
    head, unit = SHAPES[shape]
    parts = [head]
    total = len(head)
    i = 0
    while total < size:
        piece = unit.format(i=i)
        parts.append(piece)
        total += len(piece)
        i += 1
    return "".join(parts)[:size]


def size_sweep(*, repeats: int = 5) -> list[dict[str, object]]:
    """The best time of one check of each shape at each size (ms)."""
    ctx = in_fresh_context(lambda: command.push(POLICY))
    out: list[dict[str, object]] = []
    for shape in SHAPES:
        for kb in SIZES_KB:
            text = _text(shape, kb * 1024)
            best = float("inf")
            decision = None
            for _ in range(repeats):
                start = time.perf_counter()
                decision = ctx.run(cs.check_command, text, cwd="/srv/ws")
                best = min(best, time.perf_counter() - start)
            assert decision is not None
            out.append(
                {
                    "shape": shape,
                    "kb": kb,
                    "ms": best * 1000,
                    "action": str(decision.action),
                    "refused": decision.rule == "analysis_limit",
                }
            )
    return out


def print_sweep(sweep: list[dict[str, object]]) -> None:
    print(f"{'shape':<14}" + "".join(f"{kb:>8} KB" for kb in SIZES_KB))
    for shape in SHAPES:
        cells = [r for r in sweep if r["shape"] == shape]
        print(
            f"{shape:<14}"
            + "".join(
                f"{r['ms']:>8.1f}{'*' if r['refused'] else ' '}  "
                for r in cells
            )
        )
    worst = max(float(r["ms"]) for r in sweep)  # type: ignore[arg-type]
    print(f"(ms per check; * refused at a limit; slowest {worst:.1f} ms)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats, seconds = (5, 0.005) if quick else (15, 0.01)
    best = best_of(repeats, variants(seconds))
    print(header("capscope command-check benchmark", environment()))
    print()
    print_rows(rows(best))
    print()
    print_sweep(size_sweep(repeats=3 if quick else 7))


if __name__ == "__main__":
    main()
