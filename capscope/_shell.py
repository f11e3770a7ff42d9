"""
The data model of a shell command as the command policy sees it.

A command string is parsed (`capscope._shell_parse.parse`) into simple
commands, each normalised (`capscope._shell_normalise.normalise`) into the
argv a policy matches, then labelled. This module holds only the shapes that
pass between those steps, so each can be written and tested on its own.
"""

from __future__ import annotations

import attrs

__all__ = ["ParsedCommand", "Redirect", "SimpleCommand"]


@attrs.frozen
class Redirect:
    """
    One redirection: the operator as written (`>`, `>>`, `<`, `2>`, `&>`,
    `>|`, `<<`, `<<<`, `>&` ...), the file descriptor it applies to, and
    its target word after quote removal (`None` when the target cannot be
    resolved statically, e.g. it holds a variable or a substitution).
    """

    op: str
    target: str | None
    fd: int | None = None


@attrs.frozen
class SimpleCommand:
    """
    One simple command: its words after quote removal (`argv`, program
    first), the `NAME=value` assignments before it, its redirections, and
    why any part of it cannot be resolved statically (`unresolved`: reasons
    such as `"command substitution"`, `"variable in program position"`).

    `piped` is true when its standard output feeds the next simple command
    (`a | b`: `a` is piped). `background` is true for `a &`.
    """

    argv: tuple[str, ...]
    assignments: tuple[tuple[str, str], ...] = ()
    redirects: tuple[Redirect, ...] = ()
    unresolved: tuple[str, ...] = ()
    piped: bool = False
    background: bool = False

    @property
    def program(self) -> str | None:
        """The first word, or `None` for a command of only assignments."""
        return self.argv[0] if self.argv else None


@attrs.frozen
class ParsedCommand:
    """
    A whole command line: every simple command in it, in order (those in
    subshells, groups, substitutions and `bash -c` scripts included, so a
    command hidden inside one is still seen), and why the line as a whole
    cannot be resolved (`unresolved`, e.g. `"unbalanced quote"`).
    """

    commands: tuple[SimpleCommand, ...]
    unresolved: tuple[str, ...] = ()
