"""
The data model of a shell command as the command policy sees it.

A command string is parsed (`capscope.commands._parse.parse`) into simple
commands, each normalised (`capscope.commands._normalise.normalise`) into the
argv a policy matches, then labelled. This module holds only the shapes that
pass between those steps, so each can be written and tested on its own.

The one rule every shape keeps: a word is either **exact** (what bash passes
to the program, after quote removal, with nothing left to expand) or it is
named in a reason (`SimpleCommand.unresolved`). Pathname expansion is the
one expansion kept apart: an exact word with unquoted glob characters is a
`capscope.commands._glob.GlobWord` (a `str` that carries its pattern), and the
labeller decides where such a word is harmless.
"""

from __future__ import annotations

from typing import Self

import attrs

__all__ = [
    "GlobWord",
    "OpaqueWord",
    "ParsedCommand",
    "Redirect",
    "SimpleCommand",
]


class GlobWord(str):  # noqa: SLOT000 - carries `pattern`; a str subclass has no slots
    """
    An argv word that bash expands as a pathname pattern: the word as
    written (quotes removed) is the string, `pattern` its pattern with the
    characters that were quoted escaped (`[*]`).

    Examples:
        >>> from capscope.commands._model import GlobWord
        >>> word = GlobWord("*.py", "*.py")
        >>> word == "*.py", word.pattern
        (True, '*.py')
    """

    pattern: str

    def __new__(cls, text: str, pattern: str) -> Self:
        self = super().__new__(cls, text)
        self.pattern = pattern
        return self

    def __reduce__(self) -> tuple[type[GlobWord], tuple[str, str]]:
        return (type(self), (str(self), self.pattern))


class OpaqueWord(str):
    """
    An argv word that is not exact: it holds an expansion or a
    substitution, kept as written (`$HOME/x`, `$(pwd)`). Only such a word
    may be read as naming `$HOME` or `$PWD`; in an exact word a `$` is a
    dollar sign.

    Examples:
        >>> from capscope.commands._model import OpaqueWord
        >>> OpaqueWord("$HOME/x") == "$HOME/x"
        True
    """

    __slots__ = ()


@attrs.frozen
class Redirect:
    """
    One redirection: the operator as written (`>`, `>>`, `<`, `&>`, `>|`,
    `<<`, `<<<`, `>&` ...), the file descriptor it applies to, and its
    target.

    `target` is the word after quote removal when it is exact (`None` when
    it holds an expansion, a substitution or a glob); for a here-document it
    is the body (`None` when the body expands). `source` is the target as
    written with quotes removed and expansions kept as written (`$HOME/x`),
    for the checks that may guess at what an unresolved target names.
    """

    op: str
    target: str | None
    fd: int | None = None
    source: str = ""


@attrs.frozen
class SimpleCommand:
    """
    One simple command: its words after quote removal (`argv`, program
    first; a word with an expansion keeps it as written, `$HOME`,
    `$(pwd)`), the `NAME=value` assignments before it, its redirections,
    and why any part of it is not exact (`unresolved`: reasons such as
    `"command substitution"`, `"parameter expansion"`).

    A word holding unquoted glob characters is a `GlobWord` whose
    `pattern` escapes the characters that were quoted (`[*]`). `piped` is
    true when its standard output feeds
    the next simple command (`a | b`: `a` is piped); `background` for
    `a &`; `subshell` when it runs in a child shell (in `( )`, a
    substitution, a pipeline of more than one command, the background), so
    a `cd` in it changes nothing after it.
    """

    argv: tuple[str, ...]
    assignments: tuple[tuple[str, str], ...] = ()
    redirects: tuple[Redirect, ...] = ()
    unresolved: tuple[str, ...] = ()
    piped: bool = False
    background: bool = False
    subshell: bool = False

    @property
    def program(self) -> str | None:
        """The first word, or `None` for a command of only assignments."""
        return self.argv[0] if self.argv else None


@attrs.frozen
class ParsedCommand:
    """
    A whole command line: every simple command in it, in order (those in
    subshells, groups, substitutions and compound commands included, so a
    command hidden inside one is still seen), and why the line as a whole
    is not exact (`unresolved`, e.g. `"unbalanced quote"`).

    `refused` is set when the line was not analysed at all (too long, too
    many words, nested too deep): such a line is denied, never asked about.
    """

    commands: tuple[SimpleCommand, ...]
    unresolved: tuple[str, ...] = ()
    refused: str | None = None
