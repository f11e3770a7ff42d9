"""
The cost of `check_command`, as a ratio to `shlex.split` of the same string.

    python benchmarks/bench_commands.py [--quick]

`shlex.split` is the least a command check must do (split the words); the
ratio says what parsing the shell grammar, normalising, labelling and
judging every frame cost on top. Minimum over rounds; a report, not a test.
"""

from __future__ import annotations

import argparse
import platform
import shlex
import timeit

import capscope as cs
from capscope.policies import CommandPolicy

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[1])
    parser.add_argument("--quick", action="store_true")
    quick = parser.parse_args().quick
    number, repeat = (200, 3) if quick else (2000, 7)
    policy = CommandPolicy(
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
    print(f"{platform.python_implementation()} {platform.python_version()}")
    with cs.using(command=policy):
        for name, text in (("short", SHORT), ("10 segments", LONG)):
            assert cs.check_command(text).action == cs.Action.ALLOW
            names = {"cs": cs, "shlex": shlex, "text": text}
            subject = min(
                timeit.repeat(
                    "cs.check_command(text)",
                    globals=names,
                    number=number,
                    repeat=repeat,
                )
            )
            base = min(
                timeit.repeat(
                    "shlex.split(text)",
                    globals=names,
                    number=number,
                    repeat=repeat,
                )
            )
            print(
                f"{name:12} check_command {subject / number * 1e6:8.1f} us"
                f"   shlex.split {base / number * 1e6:7.1f} us   ratio {subject / base:5.1f}x"
            )


if __name__ == "__main__":
    main()
