"""
The `capscope` command.

Exit codes (the same for every subcommand):

| code | meaning |
|---|---|
| 0 | success; `check`: allowed; `lint`: no findings |
| 1 | `check`: denied; `lint`: findings; `demo`: cross-wiring seen; `stacks`: a broken entry point |
| 2 | usage error (argparse's own: an unknown option, a missing argument) |
| 3 | `check`: the decision is to ask (approval needed) |
| 4 | bad input: a policy file missing, unreadable or malformed; a module that does not import |
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import sys
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path
from typing import Any

import attrs

from .._ambient import AmbientStack
from .._exceptions import PolicyConfigError, RegistryError
from .._registry import registry
from .._scope import using

__all__ = ["main"]

OK, FOUND, USAGE, ASK, BAD_INPUT = 0, 1, 2, 3, 4

_EPILOG = (
    "Exit codes: 0 ok/allowed, 1 denied or problems found, 2 usage error, "
    "3 ask (approval needed), 4 bad input (a policy file or module)."
)


class _BadInput(Exception):
    """An input the command cannot use: reported, exit code 4."""


def _print_table(rows: Sequence[Sequence[str]]) -> None:
    """Columns padded to their widest cell; the last one left ragged."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    for row in rows:
        cells = [c.ljust(w) for c, w in zip(row, widths, strict=False)]
        print("  ".join([*cells, row[-1]]).rstrip())


def _dump(data: object) -> None:
    print(json.dumps(data, indent=2, default=str))


# -- stacks ---------------------------------------------------------------------


def _stacks(args: argparse.Namespace) -> int:
    try:
        registry.load_entry_points()
    except RegistryError as exc:
        print(f"capscope: {exc}", file=sys.stderr)
        return FOUND
    listed: list[dict[str, Any]] = []
    for stack in registry:
        row: dict[str, Any] = {"name": stack.name}
        if isinstance(stack, AmbientStack):
            row["kind"] = "stack"
            row["worker_gets"] = stack.inherit.value.upper()
            row["codec"] = stack.codec is not None
        else:
            row.update(kind="counter", worker_gets="0", codec=False)
        row["origin"] = registry.origin(stack.name)
        row["doc"] = stack.doc
        listed.append(row)
    if args.json:
        _dump(listed)
        return OK
    rows: list[tuple[str, ...]] = [
        ("NAME", "KIND", "WORKER GETS", "ORIGIN", "DOC")
    ]
    rows += [
        (s["name"], s["kind"], s["worker_gets"], s["origin"], s["doc"])
        for s in listed
    ]
    _print_table(rows)
    return OK


# -- demo -----------------------------------------------------------------------


def _demo(args: argparse.Namespace) -> int:
    from . import _demo  # only this subcommand needs it

    try:
        return _demo.run(
            workers=args.workers,
            json_output=args.json,
            stdout=sys.stdout,
            stderr=sys.stderr,
            console=args.console,
        )
    except ImportError as exc:  # the console extra is not installed
        raise _BadInput(str(exc)) from None


# -- check ------------------------------------------------------------------------


def _load(paths: Sequence[str]) -> Any:
    from .._policyfile import load_policy_files

    try:
        return load_policy_files(*paths)
    except OSError as exc:
        msg = f"cannot read the policy file {exc.filename}: {exc.strerror}"
        raise _BadInput(msg) from None
    except (PolicyConfigError, RegistryError) as exc:
        raise _BadInput(str(exc)) from None


def _pair(text: str) -> tuple[str, Any]:
    """`--arg NAME=VALUE`: a value that parses as JSON is that value, else
    text. Anything else is a usage error (exit code 2).
    """
    key, sep, value = text.partition("=")
    if not sep or not key:
        msg = f"expected NAME=VALUE, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    try:
        return key, json.loads(value)
    except ValueError:
        return key, value


def _side_effect(text: str) -> str:
    """`--side-effect`: one of the levels, else a usage error."""
    from ..policies import Level

    if text not in {level.value for level in Level}:
        levels = ", ".join(level.value for level in Level)
        msg = f"expected one of {levels}, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return text


def _check(args: argparse.Namespace) -> int:
    from .. import _decorators
    from ..audit import decision_record
    from ..commands._engine import check_command
    from ..events import Action, CommandDecision, Gate

    scope = _load(args.policy)
    if args.target == "command":
        decision = scope.run(check_command, args.subject, cwd=args.cwd)
    else:
        spec, guard = _tool_spec(args)
        arguments = dict(args.arg)
        try:
            decisions = [scope.run(_decorators.check_tool, spec, **arguments)]
            if guard is not None:  # every gate the real call runs
                decisions.append(scope.run(guard.decide, arguments))
        except (TypeError, ValueError) as exc:
            raise _BadInput(str(exc)) from None
        decision = _decorators.strongest(decisions)
        if decision.gate is Gate.NO_POLICY:
            # Not a thread boundary here: the files hold no ceiling.
            files = ", ".join(args.policy)
            reason = (
                f"{files} ha{'ve' if len(args.policy) > 1 else 's'} no "
                "[execution] table, so no tool is allowed: add one (tools = "
                '["*"] allows every tool)'
            )
            decision = attrs.evolve(decision, reason=reason)
    if args.json:
        print(json.dumps(decision_record(decision), default=str))
    else:
        rows = [
            ("decision", decision.action.value),
            ("gate", decision.gate.value if decision.gate else "-"),
            ("tool", decision.tool),
            ("rule", "-" if decision.rule is None else str(decision.rule)),
            ("reason", decision.reason),
        ]
        if isinstance(decision, CommandDecision):
            rows.append(("labels", ", ".join(decision.labels) or "-"))
            rows += [
                (f"segment {i}", " ".join(argv))
                for i, argv in enumerate(decision.segments, start=1)
            ]
        _print_table([(f"{k}:", v) for k, v in rows])
    if decision.action in (Action.ALLOW, Action.GRANTED):
        return OK
    if decision.action is Action.ASK:
        return ASK
    return FOUND


def _tool_spec(args: argparse.Namespace) -> Any:
    from .._enforce import ToolSpec

    if args.source:
        entries = [
            e for e in _tools(args.source) if e.spec.name == args.subject
        ]
        if not entries:
            msg = f"no decorated tool named {args.subject!r} in {args.source}"
            raise _BadInput(msg)
        return entries[0].spec, entries[0].command
    try:
        spec = ToolSpec(
            args.subject,
            capability=args.capability,
            side_effect=args.side_effect,
            paths=tuple(args.path_arg),
            needs_approval=args.needs_approval,
        )
    except PolicyConfigError as exc:
        raise _BadInput(str(exc)) from None
    return spec, None


def _tools(targets: list[str]) -> Any:
    """The decorated tools of *targets*; one that does not import is bad input."""
    from ._manifest import collect, import_targets

    try:
        return collect(import_targets(targets))
    except ImportError as exc:
        raise _BadInput(str(exc)) from None


# -- manifest and lint --------------------------------------------------------------


def _manifest(args: argparse.Namespace) -> int:
    entries = _tools(args.targets)
    if args.json:
        _dump([e.to_dict() for e in entries])
        return OK
    rows = [
        (
            "IMPORT PATH",
            "TOOL",
            "CAPABILITY",
            "SIDE EFFECT",
            "APPROVAL",
            "COMMAND",
            "PATHS",
        )
    ]
    for entry in entries:
        d = entry.to_dict()
        rows.append(
            (
                d["import_path"],
                d["tool"],
                d["capability"] or "-",
                d["side_effect"] or "-",
                "yes" if d["needs_approval"] else "-",
                "guarded" if d["command_guarded"] else "-",
                ", ".join(d["paths"]) or "-",
            )
        )
    _print_table(rows)
    print(f"{len(entries)} decorated tool{'s' if len(entries) != 1 else ''}")
    return OK


def _lint(args: argparse.Namespace) -> int:
    from ._lint import lint

    entries = _tools(args.targets)
    _load(args.policy)  # file errors first, with exit code 4
    findings = lint(args.policy, entries)
    if args.json:
        _dump([f.to_dict() for f in findings])
    else:
        for finding in findings:
            print(finding)
        print(
            f"{len(findings)} finding{'s' if len(findings) != 1 else ''}, "
            f"{len(entries)} tools, {len(args.policy)} policy "
            f"file{'s' if len(args.policy) != 1 else ''}"
        )
    return FOUND if findings else OK


# -- schema -----------------------------------------------------------------------


def _schema(args: argparse.Namespace) -> int:
    from .._registry import BUILTIN
    from .._schema import policy_schema

    stacks = None
    if args.builtin:
        stacks = [s for s in registry if registry.origin(s.name) == BUILTIN]
    print(json.dumps(policy_schema(stacks), indent=2))
    return OK


# -- mcp-proxy --------------------------------------------------------------------


def _mcp_proxy(args: argparse.Namespace) -> int:
    command = list(args.server_command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        msg = "no server command: give it after --, e.g. -- python server.py"
        raise _BadInput(msg)
    scope = _load(args.policy)
    try:  # only this subcommand needs mcp
        import anyio

        from ..contrib import _mcp_proxy
        from ..contrib.mcp import mcp_tool_name
    except ImportError as exc:
        msg = f"{exc}; install it with: pip install 'capscope[mcp]'"
        raise _BadInput(msg) from None
    if args.name is not None:
        try:
            mcp_tool_name(args.name, "tool")
        except PolicyConfigError as exc:
            raise _BadInput(f"--name: {exc}") from None
    from ..audit import JsonlSink

    sink = JsonlSink(args.audit) if args.audit else None
    if sink is not None:
        sink.start()
    try:
        anyio.run(
            functools.partial(
                _mcp_proxy.serve_proxy,
                command,
                scope=scope,
                name=args.name,
                elicit=not args.no_elicit,
            )
        )
    except OSError as exc:
        raise _BadInput(f"cannot run {command[0]!r}: {exc}") from None
    finally:
        if sink is not None:
            sink.close()
    return OK


def _app(target: str) -> Any:
    """The callable MODULE:NAME names: only that module is imported."""
    import importlib

    module_name, sep, name = target.partition(":")
    if not sep or not module_name or not name:
        msg = f"--app expects MODULE:CALLABLE, got {target!r}"
        raise _BadInput(msg)
    cwd = str(Path.cwd())
    if cwd not in sys.path:  # as `python -m` finds modules
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - its own error, reported
        msg = f"cannot import {module_name!r}: {exc}"
        raise _BadInput(msg) from None
    app = getattr(module, name, None)
    if not callable(app):
        msg = f"{target!r} is not a callable"
        raise _BadInput(msg)
    return app


def _serve(args: argparse.Namespace) -> int:
    import asyncio
    import inspect

    scope = _load(args.policy)
    app = _app(args.app)
    try:  # only this subcommand needs the console extra
        from ..approvers import WebApprover
        from ..approvers.web import serve_in_background
    except ImportError as exc:
        msg = f"{exc}; install it with: pip install 'capscope[console]'"
        raise _BadInput(msg) from None
    from ..policies import ToolApprovalPolicy

    approver = WebApprover(timeout=args.timeout)
    try:
        served = serve_in_background(
            approver, args.host, args.port, allow_remote=args.allow_remote
        )
    except (OSError, ValueError) as exc:
        raise _BadInput(str(exc)) from None
    print(  # the token is printed once, for the person who answers
        f"capscope serve: the approval console is at {served.login_url}",
        file=sys.stderr,
        flush=True,
    )
    person = ToolApprovalPolicy(handler=approver, timeout=None)

    def run() -> Any:
        with using(approval=person):
            result = app()
            if inspect.isawaitable(result):
                return asyncio.run(_awaited(result))
            return result

    try:
        scope.run(run)
    finally:
        served.stop()
    return OK


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


# -- the parser -----------------------------------------------------------------------


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


def _add_policy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--policy",
        action="append",
        required=True,
        metavar="FILE",
        help=(
            "a policy file (.toml or .json); repeat to layer files, later "
            "ones narrowing earlier ones"
        ),
    )


def _parser() -> argparse.ArgumentParser:  # noqa: PLR0915 - every subcommand
    parser = argparse.ArgumentParser(
        prog="capscope",
        description="Capability policies that live per task.",
        epilog=_EPILOG,
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
        epilog=_EPILOG,
    )
    stacks.add_argument("--json", action="store_true", help="print JSON")
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
        epilog=_EPILOG,
    )
    demo.add_argument(
        "--workers",
        type=_positive_int,
        default=8,
        metavar="N",
        help="how many concurrent workers (default: 8)",
    )
    demo.add_argument(
        "--console",
        action="store_true",
        help=(
            "a person answers the approvals in the web approval console "
            "(the console extra), opened from the link printed on stderr"
        ),
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

    check = sub.add_parser(
        "check",
        help="what a policy would decide for a tool call or a command",
        description=(
            "Decide a tool call or a shell command under the policy files, "
            "as a dry run: nothing runs and no one is asked. Prints the "
            "decision, the gate that decided, the rule and the reason "
            "(and for a command, its risk labels and parsed segments)."
        ),
        epilog=_EPILOG,
    )
    _add_policy(check)
    check.add_argument("--json", action="store_true", help="print JSON")
    what = check.add_subparsers(dest="target", required=True)
    tool = what.add_parser(
        "tool",
        help="a tool call",
        description=(
            "A call of the tool NAME with --arg arguments. Describe the "
            "tool with --capability, --side-effect, --path-arg and "
            "--needs-approval, or take its spec from the decorated code "
            "with --from."
        ),
        epilog=_EPILOG,
    )
    tool.add_argument("subject", metavar="NAME", help="the tool name")
    tool.add_argument(
        "--arg",
        action="append",
        default=[],
        type=_pair,
        metavar="NAME=VALUE",
        help="an argument (VALUE is parsed as JSON when it parses)",
    )
    tool.add_argument("--capability", help="the tool's capability (op.name)")
    tool.add_argument(
        "--side-effect",
        type=_side_effect,
        help="none, read_only, workspace_write, process_exec or network",
    )
    tool.add_argument(
        "--path-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="an argument that is a path (repeatable)",
    )
    tool.add_argument(
        "--needs-approval",
        action="store_true",
        help="the tool needs approval (@needs_approval)",
    )
    tool.add_argument(
        "--from",
        dest="source",
        action="append",
        metavar="MODULE",
        help="find the tool's spec among the decorated tools here",
    )
    command = what.add_parser(
        "command",
        help="a shell command",
        description="A shell command line, as guards_command would see it.",
        epilog=_EPILOG,
    )
    command.add_argument("subject", metavar="COMMAND", help="the command line")
    command.add_argument(
        "--cwd", help="the working directory (default: the current one)"
    )
    for target in (tool, command):  # --json before or after the target
        target.add_argument(
            "--json",
            action="store_true",
            default=argparse.SUPPRESS,
            help="print JSON",
        )
    check.set_defaults(func=_check)

    manifest = sub.add_parser(
        "manifest",
        help="list the decorated tools a codebase exposes",
        description=(
            "Import the modules named (myapp.tools; myapp.* for a package "
            "and every module under it; or a .py file) and list every "
            "callable decorated with requires_tool or needs_approval, and "
            "whether it is command-guarded. Importing runs their "
            "module-level code; a directory is never walked."
        ),
        epilog=_EPILOG,
    )
    manifest.add_argument("targets", nargs="+", metavar="MODULE")
    manifest.add_argument("--json", action="store_true", help="print JSON")
    manifest.set_defaults(func=_manifest)

    lint = sub.add_parser(
        "lint",
        help="check policy files against the tools a codebase exposes",
        description=(
            "Report decorated tools no rule allows, rules that match no "
            "known tool, and rules shadowed by stronger ones."
        ),
        epilog=_EPILOG,
    )
    _add_policy(lint)
    lint.add_argument("targets", nargs="+", metavar="MODULE")
    lint.add_argument("--json", action="store_true", help="print JSON")
    lint.set_defaults(func=_lint)

    schema = sub.add_parser(
        "schema",
        help="print the JSON Schema of policy files",
        description=(
            "Print the JSON Schema of policy files for the registered "
            "stacks (third-party ones included)."
        ),
        epilog=_EPILOG,
    )
    schema.add_argument(
        "--builtin",
        action="store_true",
        help="only the built-in stacks (the schema shipped in the package)",
    )
    schema.set_defaults(func=_schema)

    serve = sub.add_parser(
        "serve",
        help="run an agent with the web approval console answering its asks",
        description=(
            "Serve the web approval console (capscope.approvers.WebApprover, "
            "the console extra) on loopback, print its sign-in link on "
            "stderr, and run the callable MODULE:CALLABLE (sync, or async) "
            "under the policy files, with the console's person answering "
            "every approval. Stops when the callable returns."
        ),
        epilog=_EPILOG,
    )
    _add_policy(serve)
    serve.add_argument(
        "--app",
        required=True,
        metavar="MODULE:CALLABLE",
        help="the agent to run (only MODULE is imported)",
    )
    serve.add_argument(
        "--host", default="127.0.0.1", help="default: 127.0.0.1"
    )
    serve.add_argument(
        "--port",
        type=int,
        default=8765,
        help="0 picks a free port (default: 8765)",
    )
    serve.add_argument(
        "--allow-remote",
        action="store_true",
        help="allow a host that is not a loopback address (behind TLS)",
    )
    serve.add_argument(
        "--timeout",
        type=float,
        default=120.0,
        help="seconds a request waits for an answer before it is denied (default: 120)",
    )
    serve.set_defaults(func=_serve)

    proxy = sub.add_parser(
        "mcp-proxy",
        help="put a policy file in front of a stdio MCP server",
        description=(
            "Start the stdio MCP server COMMAND as a child and serve its "
            "tools, unchanged, over this process's stdin and stdout; check "
            "each call under the policy files first (tool names "
            "mcp__NAME__TOOL). A refused call is an MCP tool error and "
            "never reaches the server; an ask goes to the client's user "
            "through MCP elicitation, or is refused when the client cannot "
            "be asked. Needs capscope[mcp]."
        ),
        epilog=_EPILOG,
    )
    _add_policy(proxy)
    proxy.add_argument(
        "--name",
        help=(
            "the server name in tool names (default: the name the server "
            "reports, reduced to letters, digits and -)"
        ),
    )
    proxy.add_argument(
        "--audit",
        metavar="FILE.jsonl",
        help="append every decision to this JSON Lines file",
    )
    proxy.add_argument(
        "--no-elicit",
        action="store_true",
        help="never ask the client's user: every ask is refused",
    )
    proxy.add_argument(
        "server_command",
        nargs=argparse.REMAINDER,
        metavar="-- COMMAND",
        help="the command that starts the MCP server (after --)",
    )
    proxy.set_defaults(func=_mcp_proxy)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the `capscope` command; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except _BadInput as exc:
        print(f"capscope {args.command}: {exc}", file=sys.stderr)
        return BAD_INPUT
    except BrokenPipeError:
        # The reader went away (`capscope manifest x | head`): stop quietly,
        # and keep the interpreter from failing to flush stdout at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return OK
