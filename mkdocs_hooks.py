"""
mkdocs hooks (`hooks:` in mkdocs.yml).

The changelog page shows the unreleased changes as towncrier renders them
from the fragments in `changelog.d/` (`towncrier build --draft`), in place
of the page's `<!-- unreleased -->` marker: nothing is listed by hand.
"""

# argparse keeps its actions in private attributes, read here as every
# argparse documenter does.
# ruff: noqa: SLF001

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
MARKER = "<!-- unreleased -->"


def unreleased() -> str:
    """The unreleased section, as towncrier would write it."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "towncrier",
            "build",
            "--draft",
            "--version",
            "Unreleased",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # The draft's own title carries today's date: not a release's.
    body = out[out.index("## ") :].partition("\n")[2]
    return "## Unreleased\n" + body.rstrip() + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """The changelog page with its unreleased section filled in."""
    if page.file.src_uri != "changelog.md":
        return markdown
    if MARKER not in markdown:
        msg = f"docs/changelog.md has no {MARKER} marker"
        raise ValueError(msg)
    return markdown.replace(MARKER, unreleased())


# -- generated reference pages ---------------------------------------------------

CLI_PAGE = "reference-cli.md"
POLICY_PAGE = "reference-policy-file.md"


def _cell(text: object) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def cli_reference() -> str:
    """The `capscope` command, from its argument parser."""
    import argparse

    from capscope.cli._main import __doc__ as cli_doc
    from capscope.cli._main import _parser

    parser = _parser()
    lines = [
        "# CLI reference",
        "",
        "<!-- Generated from capscope's argument parser by mkdocs_hooks.py. -->",
        "",
        (
            "Every subcommand of `capscope` (also `python -m capscope`), its "
            "arguments and options, as `--help` prints them. [Policy files "
            "and the CLI](guide-policy-files.md#the-capscope-command) shows "
            "them at work."
        ),
        "",
        "## Exit codes",
        "",
        cli_doc[cli_doc.index("| code") :].strip(),
    ]
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    helps = {c.dest: c.help for c in subparsers._choices_actions}
    for name, sub in subparsers.choices.items():
        lines += [
            "",
            f"## `capscope {name}`",
            "",
            _cell(helps.get(name) or ""),
        ]
        lines += _parser_lines(sub, argparse)
    return "\n".join(lines) + "\n"


def _parser_lines(parser: Any, argparse: Any, depth: int = 0) -> list[str]:
    lines = ["", "```text", parser.format_usage().strip(), "```"]
    if parser.description:
        lines += ["", _cell(parser.description)]
    rows = []
    nested = []
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            continue
        if isinstance(action, argparse._SubParsersAction):
            nested.append(action)
            continue
        names = ", ".join(f"`{o}`" for o in action.option_strings) or (
            f"`{action.metavar or action.dest}`"
        )
        if action.option_strings and action.nargs != 0:
            names += f" `{action.metavar or action.dest.upper()}`"
        default = action.default
        shown = (
            ""
            if default in (None, False, [], argparse.SUPPRESS)
            or "default" in (action.help or "")
            else f" (default: `{default}`)"
        )
        rows.append(f"| {names} | {_cell(action.help or '')}{shown} |")
    if rows:
        lines += ["", "| argument | meaning |", "| --- | --- |", *rows]
    for action in nested:
        for name, sub in action.choices.items():
            lines += ["", f"### `{parser.prog.split()[-1]} {name}`"]
            lines += _parser_lines(sub, argparse, depth + 1)
    return lines


def _type(schema: dict[str, Any], defs: dict[str, Any]) -> str:  # noqa: PLR0911 - one per schema form
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[{name}](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_type(s, defs) for s in schema["anyOf"])
    if "enum" in schema:
        return "one of " + ", ".join(
            "`null`" if v is None else f"`{v}`" for v in schema["enum"]
        )
    if "const" in schema:
        return f"`{schema['const']}`"
    kind = schema.get("type", "any")
    if isinstance(kind, list):
        return " or ".join(f"`{k}`" for k in kind)
    if kind == "array":
        return f"list of {_type(schema.get('items', {}), defs)}"
    if kind == "object" and isinstance(
        schema.get("additionalProperties"), dict
    ):
        inner = schema["additionalProperties"]
        return f"table of {_type(inner, defs)}" if inner else "table"
    return f"`{kind}`"


def policy_reference() -> str:
    """Policy files, from the JSON Schema of the built-in stacks."""
    import json

    # The built-in stacks' schema, as shipped (`capscope schema --builtin`).
    shipped = ROOT / "capscope" / "policy.schema.json"
    schema = json.loads(shipped.read_text(encoding="utf-8"))
    defs = schema.get("$defs", {})
    lines = [
        "# Policy-file reference",
        "",
        "<!-- Generated from capscope.policy_schema() by mkdocs_hooks.py. -->",
        "",
        _cell(schema["description"])
        + " The same schema ships as `capscope/policy.schema.json`; "
        "[Policy files and the CLI](guide-policy-files.md) explains how files "
        "are read and layered.",
        "",
        "## Top level",
        "",
        "| key | type | meaning |",
        "| --- | --- | --- |",
    ]
    for key, sub in schema["properties"].items():
        target = defs.get(sub.get("$ref", "").rsplit("/", 1)[-1], {})
        meaning = sub.get("description") or target.get("description", "")
        lines.append(f"| `{key}` | {_type(sub, defs)} | {_cell(meaning)} |")
    for name, sub in sorted(defs.items()):
        lines += ["", f"## {name}", "", _cell(sub.get("description", ""))]
        props = sub.get("properties", {})
        if props:
            lines += ["", "| key | type | meaning |", "| --- | --- | --- |"]
            lines += [
                f"| `{key}` | {_type(field, defs)} | "
                f"{_cell(field.get('description', ''))} |"
                for key, field in props.items()
            ]
        if sub.get("additionalProperties") is False:
            lines += ["", "Any other key is an error."]
    return "\n".join(lines) + "\n"


def on_files(files: Any, config: Any, **_: Any) -> Any:
    """Add the generated reference pages."""
    from mkdocs.structure.files import File

    for uri, render in (
        (CLI_PAGE, cli_reference),
        (POLICY_PAGE, policy_reference),
    ):
        files.append(File.generated(config, uri, content=render()))
    return files
