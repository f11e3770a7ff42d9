"""
The `capscope` command.

Exit codes: 0 success; 1 the command ran and found a problem (a broken
entry point, say); 2 a usage error (argparse's own).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.metadata import version

from ._ambient import AmbientStack
from ._exceptions import RegistryError
from ._registry import registry

__all__ = ["main"]


def _stacks(args: argparse.Namespace) -> int:  # noqa: ARG001 - subcommand API
    try:
        registry.load_entry_points()
    except RegistryError as exc:
        print(f"capscope: {exc}", file=sys.stderr)
        return 1
    rows = [("NAME", "KIND", "WORKER GETS", "ORIGIN", "DOC")]
    for stack in registry:
        if isinstance(stack, AmbientStack):
            kind, inherit = "stack", stack.inherit.value.upper()
        else:
            kind, inherit = "counter", "0"
        origin = registry.origin(stack.name)
        rows.append((stack.name, kind, inherit, origin, stack.doc))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[4]]).rstrip())
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        msg = f"expected a whole number, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if value < 1:
        msg = f"expected at least 1, got {value}"
        raise argparse.ArgumentTypeError(msg)
    return value


def _demo(args: argparse.Namespace) -> int:
    from . import _demo  # only this subcommand needs it

    return _demo.run(
        workers=args.workers,
        json_output=args.json,
        stdout=sys.stdout,
        stderr=sys.stderr,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="capscope",
        description="Capability policies that live per task.",
        epilog="Exit codes: 0 ok, 1 a problem was found, 2 usage error.",
    )
    parser.add_argument(
        "--version",
        action="version",
        version=f"capscope {version('capscope')}",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    stacks = sub.add_parser(
        "stacks",
        help="list the registered stacks, with third-party entry points",
        description=(
            "List every registered stack and counter: its name, what a "
            "worker inherits of it (COPY, TOP, NONE; counters restart at "
            "0), and where it came from (built-in, or the distribution of "
            "its entry point)."
        ),
    )
    stacks.set_defaults(func=_stacks)
    demo = sub.add_parser(
        "demo",
        help="watch concurrent agent workers run under their own policies",
        description=(
            "Run N concurrent agent workers in a temporary workspace, each "
            "under its own attribution and narrowed policy, calling "
            "decorated file tools, guarded shell commands and "
            "approval-gated tools answered by a scripted approver. Prints "
            "every decision, then a summary proving no decision was "
            "attributed to the wrong worker."
        ),
        epilog="Exit codes: 0 no cross-wiring seen, 1 cross-wiring seen.",
    )
    demo.add_argument(
        "--workers",
        type=_positive_int,
        default=8,
        metavar="N",
        help="how many concurrent workers (default: 8)",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        help=(
            "write JSON Lines to stdout: one object per decision, then one "
            "summary object (progress goes to stderr)"
        ),
    )
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `capscope` command; returns the exit code."""
    args = _parser().parse_args(argv)
    return int(args.func(args))
