"""
The cost of `check_command`, as a ratio to `shlex.split` of the same string.

    python benchmarks/bench_commands.py [--quick]

`shlex.split` is the least a command check must do (split the words); the
ratio says what parsing the shell grammar, normalising, labelling and
judging every frame cost on top. Measured for a short command and for one
of 10 segments joined by `&&`. How figures are taken: see `_timing.py`;
`run.py` runs this as part of the whole suite. A report, not a test.
"""

from __future__ import annotations

import argparse
import shlex

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    repeats, seconds = (5, 0.005) if quick else (15, 0.01)
    best = best_of(repeats, variants(seconds))
    print(header("capscope command-check benchmark", environment()))
    print()
    print_rows(rows(best))


if __name__ == "__main__":
    main()
