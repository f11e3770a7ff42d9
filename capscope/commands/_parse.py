r"""
A parser for the shell lines agents send, modelled on GNU bash 5.

The command policy judges what a line *would run*. Its soundness rests on
one rule, kept here: **a word is exact only if bash would pass exactly that
string to the program**, after quote removal, with nothing left that bash
could expand or evaluate. Every other word is kept as written and the
construct that made it inexact is named in a reason, so the line can never
be allowed by a pattern, only asked about. No third-party parser is used
(`bashlex` is GPL-licensed); `shlex` knows neither operators nor
expansions.

What stays exact: unquoted text without shell metacharacters, `'...'`,
`"..."` without `$`, a backquote or a line continuation, backslash escapes,
`$'...'` with the plain escapes (`\n`, `\t`, `\\`, `\'`...), `~` and `~/...`
at the start of a word (the home directory), operators (`;`, `&`, `|`,
`&&`, `||`, `|&`, new lines), subshells `( )`, groups `{ }`, `!`, and
redirections whose target is exact. Pathname expansion (`*`, `?`,
`[...]`) leaves a word exact but makes it a `GlobWord` carrying its
pattern: the labeller decides where the names it may become are harmless.

What is never exact (each named in a reason): parameter expansion (`$x`,
`${...}` in every form, indirection, transformations), command, process and
arithmetic substitution (`$(...)`, backquotes, `<(...)`, `$((...))`,
`$[...]`), brace expansion, `~user` and tilde after `=`, `$"..."`, the
other escapes of `$'...'`, a line continuation anywhere, a here-document
whose body can expand, compound commands (`if`, `while`, `for`, `case`,
`[[`, `((`, functions, `coproc`), arrays, named descriptors (`{fd}>`), NUL
characters and anything unbalanced or malformed.

```text
list       := and_or ((";" | "&" | NEWLINE) and_or)*
and_or     := pipeline (("&&" | "||") NEWLINE* pipeline)*
pipeline   := ["!"] command (("|" | "|&") NEWLINE* command)*
command    := simple | "(" list ")" redirect* | "{" list "}" redirect*
            | compound (best effort: always a reason)
simple     := (ASSIGNMENT | redirect)* (WORD | redirect)*
redirect   := [DIGITS] (">" | ">>" | "<" | ">|" | "<>" | ">&" | "<&"
              | "<<<") WORD | ("&>" | "&>>") WORD
              | [DIGITS] ("<<" | "<<-") DELIM   (body: lines up to DELIM)
```

Commands inside substitutions, here-documents and compound commands are
still found and returned (so the catastrophic floor sees them), even though
their line can never be allowed.

Limits, so that analysis is linear and bounded: a line longer than
`MAX_CHARS` characters, with more than `MAX_WORDS` words, `MAX_COMMANDS`
simple commands or `MAX_PIECES` pieces (quoted strings, expansions,
escapes, operators), or nested deeper than `MAX_NESTING` levels is not
analysed (`ParsedCommand.refused`), and is denied.

With `posix=True` (the scripts of `sh -c` and `dash -c`), bash-only syntax
(`$'...'`, `&>`, `|&`, `<<<`, `[[`, `function`) is a reason too, because a
POSIX shell reads it differently.
"""

from __future__ import annotations

import itertools
import re

from ._glob import bracket_end
from ._model import (
    GlobWord,
    OpaqueWord,
    ParsedCommand,
    Redirect,
    SimpleCommand,
)

__all__ = [
    "MAX_CHARS",
    "MAX_COMMANDS",
    "MAX_NESTING",
    "MAX_PIECES",
    "MAX_WORDS",
    "parse",
]

#: The longest line analysed, in characters.
MAX_CHARS = 65_536
#: The most words a line may hold (substitutions and here-docs included).
MAX_WORDS = 2_048
#: The most simple commands a line may hold.
MAX_COMMANDS = 512
#: The most pieces (quoted strings, expansions, escapes, operators) a line
#: may hold: what bounds the work on a line of few, very long words.
MAX_PIECES = 8_192
#: How deep substitutions, quotes, subshells and groups may nest.
MAX_NESTING = 32
#: The most words one brace expansion may make.
MAX_BRACE_WORDS = 1_024
#: The most unquoted `{` one word may hold.
_MAX_BRACES = 32
#: The longest word brace expansion is worked out for.
_MAX_BRACE_CHARS = 4_096

_OP = re.compile(
    r"&>>|;;&|<<<|<<-|&&|\|\||\|&|;;|;&|>>|<<|<>|<&|>&|>\||&>|[;&|<>()\n]"
)
_REDIR_OP = re.compile(r"&>>|&>|<<<|<<-|<<|>>|>\||>&|<&|<>|>|<")
_FD = re.compile(r"[0-9]+(?=[<>])")
_NAMED_FD = re.compile(r"\{[A-Za-z_][A-Za-z0-9_]*\}(?=[<>])")
_BLANKS = re.compile(r"[ \t]+")
_RUN = re.compile(r"[^ \t\n|&;<>()'\"\\$`]+")
_DQ_RUN = re.compile(r'[^"\\$`]+')
_ANSI_RUN = re.compile(r"[^'\\]+")
_PARAM_STOP = re.compile(r"[{}'\"\\$`]")
_ARITH_STOP = re.compile(r"[()'\"\\$`]")
_BRACKET_STOP = re.compile(r"[\[\]'\"\\$`]")
_BQ_STOP = re.compile(r"[`\\]")
_SPECIAL = re.compile(r"[*?\[{~]")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SUBSCRIPT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\[")
_PLAIN_WORD = re.compile(r"[^ \t\n|&;<>()'\"\\$`]+(?=[ \t\n|&;<>()]|\Z)")
_FUNCTION_PARENS = re.compile(r"[ \t]*\([ \t]*\)")
_CONTINUATION = re.compile(r"(?<!\\)((?:\\\\)*)\\\n")
_SEQUENCE = re.compile(
    r"(-?[0-9]+)\.\.(-?[0-9]+)(?:\.\.(-?[0-9]+))?|([A-Za-z])\.\.([A-Za-z])(?:\.\.(-?[0-9]+))?"
)
_DIGIT_SPECIAL = "0123456789@*#?$!-"

#: `$'...'` escapes whose meaning is plain; any other is a reason.
_ANSI_PLAIN = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "e": "\x1b",
    "E": "\x1b",
    "f": "\f",
    "v": "\v",
    "\\": "\\",
    "'": "'",
    '"': '"',
    "?": "?",
}
_OCTAL = "01234567"
_HEX = "0123456789abcdefABCDEF"
_MAX_CODEPOINT = 0x10FFFF

#: Words that end a block; met where no block expects them they are an
#: error.
_CLOSERS = frozenset(
    {"then", "else", "elif", "fi", "do", "done", "esac", "}", "in"}
)
_DEFAULT_FD: dict[str, int | None] = {
    ">": 1,
    ">>": 1,
    ">|": 1,
    ">&": 1,
    "<": 0,
    "<>": 0,
    "<&": 0,
    "<<": 0,
    "<<-": 0,
    "<<<": 0,
    "&>": None,
    "&>>": None,
}
_BASH_ONLY_OPS = frozenset({"&>", "&>>", "|&", "<<<"})
_REDIRECT_START = frozenset("<>&{0123456789")


class _Refused(Exception):
    """The line is beyond the analysis' limits."""


class _Cmd:
    """A simple command under construction (here-docs fill it in later)."""

    __slots__ = (
        "argv",
        "assignments",
        "background",
        "piped",
        "redirects",
        "subshell",
        "unresolved",
    )

    def __init__(self) -> None:
        self.argv: list[str] = []
        self.assignments: list[tuple[str, str]] = []
        self.redirects: list[list[object]] = []
        self.unresolved: dict[str, None] = {}
        self.piped = False
        self.background = False
        self.subshell = False

    def reason(self, why: str) -> None:
        self.unresolved[why] = None

    def build(self) -> SimpleCommand:
        return SimpleCommand(
            argv=tuple(self.argv),
            assignments=tuple(self.assignments),
            redirects=tuple(
                Redirect(op, target, fd, source)  # type: ignore[arg-type]
                for op, target, fd, source in self.redirects
            ),
            unresolved=tuple(self.unresolved),
            piped=self.piped,
            background=self.background,
            subshell=self.subshell,
        )


# (command, main): `main` is false for the commands of a substitution, whose
# output is captured, so pipes and `&` around it do not apply to them.
_Entry = tuple[_Cmd, bool]


class _Word:
    """A word as read: its pieces, each quoted or not, and what it holds."""

    __slots__ = ("entries", "quoted", "reasons", "segs", "special", "start")

    def __init__(self, start: int) -> None:
        self.start = start
        # (text, quoted): quoted text (and expansions, kept as written) is
        # never subject to globbing, braces or tilde expansion.
        self.segs: list[tuple[str, bool]] = []
        self.reasons: dict[str, None] = {}
        self.entries: list[_Cmd] = []
        self.special = False
        self.quoted = False

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.segs)

    def reason(self, why: str) -> None:
        self.reasons[why] = None

    def literal(self, text: str) -> None:
        self.segs.append((text, True))
        self.quoted = True

    def expansion(self, source: str, why: str) -> None:
        self.segs.append((source, True))
        self.reasons[why] = None


class _State:
    """What every parser of one line shares."""

    __slots__ = ("commands", "late", "pieces", "reasons", "scanned", "words")

    def __init__(self) -> None:
        self.words = 0
        self.pieces = 0
        self.commands = 0
        self.scanned = 0
        self.reasons: dict[str, None] = {}
        self.late: list[_Cmd] = []


class _Heredoc:
    __slots__ = ("cmd", "delim", "quoted", "redirect", "strip_tabs")

    def __init__(
        self,
        redirect: list[object],
        cmd: _Cmd,
        delim: str,
        *,
        strip_tabs: bool,
        quoted: bool,
    ) -> None:
        self.redirect = redirect
        self.cmd = cmd
        self.delim = delim
        self.strip_tabs = strip_tabs
        self.quoted = quoted


class _Parser:
    def __init__(
        self, text: str, state: _State, nesting: int, *, posix: bool
    ) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.state = state
        self.nesting = nesting
        self.posix = posix
        self.heredocs: list[_Heredoc] = []

    # -- helpers ---------------------------------------------------------

    def problem(self, why: str) -> None:
        self.state.reasons[why] = None

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > MAX_NESTING:
            msg = f"nested deeper than {MAX_NESTING} levels"
            raise _Refused(msg)

    def leave(self) -> None:
        self.nesting -= 1

    def at(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < self.n else ""

    def tick(self) -> None:
        """Count one piece of work; past `MAX_PIECES` the line is refused."""
        self.state.pieces += 1
        if self.state.pieces > MAX_PIECES:
            msg = f"more than {MAX_PIECES} quotes, expansions and operators"
            raise _Refused(msg)

    def count_word(self) -> None:
        self.state.words += 1
        if self.state.words > MAX_WORDS:
            msg = f"more than {MAX_WORDS} words"
            raise _Refused(msg)

    def skip_blanks(self) -> None:
        """Skip blanks and a comment (not its newline)."""
        text = self.text
        while self.pos < self.n:
            m = _BLANKS.match(text, self.pos)
            if m is not None:
                self.pos = m.end()
                continue
            c = text[self.pos]
            if c == "\\" and self.at(1) == "\n":
                self.problem("line continuation")
                self.pos += 2
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = self.n if end < 0 else end
            else:
                return

    def skip_newlines(self) -> None:
        while True:
            self.tick()
            self.skip_blanks()
            if self.at() != "\n":
                return
            self.newline()

    def peek_op(self) -> str:
        """The operator at the cursor, `""` at the end, `"w"` for a word."""
        if self.pos >= self.n:
            return ""
        c = self.text[self.pos]
        if c in "<>" and self.at(1) == "(":
            return "w"  # process substitution starts a word
        m = _OP.match(self.text, self.pos)
        return m.group() if m is not None else "w"

    def peek_plain(self) -> str | None:
        """The word at the cursor if it has no quoting or expansion."""
        m = _PLAIN_WORD.match(self.text, self.pos)
        return m.group() if m is not None else None

    def redirect_ahead(self) -> bool:
        text, pos = self.text, self.pos
        if pos >= self.n or text[pos] not in _REDIRECT_START:
            return False
        m = _FD.match(text, pos) or _NAMED_FD.match(text, pos)
        if m is not None:
            pos = m.end()
        if (
            pos < self.n
            and text[pos] in "<>"
            and text[pos + 1 : pos + 2] == "("
        ):
            return False
        m = _REDIR_OP.match(text, pos)
        return m is not None

    def command_ahead(self) -> bool:
        """Whether a command can start at the cursor (after blanks)."""
        op = self.peek_op()
        if op in {"w", "("} or self.redirect_ahead():
            return self.peek_plain() not in _CLOSERS
        return False

    def newline(self) -> None:
        """Consume a newline, then the bodies of pending here-docs."""
        self.pos += 1
        pending, self.heredocs = self.heredocs, []
        for doc in pending:
            self.read_heredoc(doc)

    # -- lists -----------------------------------------------------------

    def parse_list(  # noqa: C901, PLR0912 - a parser's dispatch reads best in one place
        self, stop_ops: frozenset[str], stop_words: frozenset[str]
    ) -> tuple[list[_Entry], str | None]:
        """Parse commands up to EOF, an op in *stop_ops* or a stop word.

        A stop operator is left unconsumed; a stop word is consumed.
        """
        self.enter()
        entries: list[_Entry] = []
        while True:
            self.tick()
            self.skip_blanks()
            start = self.pos
            op = self.peek_op()
            if op == "":
                self.leave()
                return entries, None
            if op in stop_ops:
                self.leave()
                return entries, op
            if op == "\n":
                self.newline()
                continue
            if op == ")":
                self.problem("unbalanced parenthesis")
                self.pos += 1
                continue
            if op not in {"w", "("} and not self.redirect_ahead():
                self.problem("syntax error")
                self.pos += len(op)
                continue
            word = self.peek_plain() if op == "w" else None
            if word is not None and word in stop_words:
                self.pos += len(word)
                self.leave()
                return entries, word
            if word is not None and word in _CLOSERS:
                self.problem(
                    "unbalanced group" if word == "}" else "syntax error"
                )
                self.pos += len(word)
                continue
            part = self.parse_and_or()
            entries.extend(part)
            self.skip_blanks()
            sep = self.peek_op()
            if sep == "&":
                for cmd, main in part:
                    if main:
                        cmd.background = True
                        cmd.subshell = True
                self.pos += 1
            elif sep == ";":
                self.pos += 1
            if sep in {"&", ";"}:
                self.skip_blanks()
                if self.peek_op() in {";", "&"}:
                    self.problem("syntax error")
            if self.pos == start:  # never loop without progress
                self.problem("syntax error")
                self.pos += 1

    def parse_and_or(self) -> list[_Entry]:
        entries = self.parse_pipeline()
        while True:
            self.skip_blanks()
            op = self.peek_op()
            if op not in {"&&", "||"}:
                return entries
            self.pos += 2
            self.skip_newlines()
            if not self.command_ahead():
                self.problem("syntax error")
                return entries
            entries.extend(self.parse_pipeline())

    def parse_pipeline(self) -> list[_Entry]:
        self.skip_blanks()
        if self.peek_plain() == "!":
            self.pos += 1
            self.skip_blanks()
        subs: list[_Entry] = []
        mains: list[_Entry] = []
        elements = 0
        while True:
            element = self.parse_command()
            elements += 1
            self.skip_blanks()
            op = self.peek_op()
            piped = op in {"|", "|&"}
            for entry in element:
                if entry[1]:
                    entry[0].piped = entry[0].piped or piped
                    mains.append(entry)
                else:
                    subs.append(entry)
            if not piped:
                break
            if self.posix and op == "|&":
                self.problem("bash-only syntax in a POSIX shell")
            self.pos += len(op)
            self.skip_newlines()
            if not self.command_ahead():
                self.problem("syntax error")
                break
        if elements > 1:
            for cmd, _ in mains:
                cmd.subshell = True
        return subs + mains

    # -- commands --------------------------------------------------------

    def parse_command(self) -> list[_Entry]:  # noqa: C901, PLR0911, PLR0912 - a parser's dispatch reads best in one place
        """One pipeline element: a simple or a compound command."""
        self.skip_blanks()
        if self.peek_op() == "(":
            if self.at(1) == "(" and self.arith_ahead(self.pos + 2):
                self.problem("arithmetic command")
                return self.trailing_redirects(self.arith_command())
            self.pos += 1
            entries, stop = self.parse_list(frozenset({")"}), frozenset())
            if stop == ")":
                self.pos += 1
            else:
                self.problem("unbalanced parenthesis")
            for cmd, main in entries:
                if main:
                    cmd.subshell = True
            return self.trailing_redirects(entries)
        word = self.peek_plain()
        if word == "{":
            self.pos += 1
            entries, stop = self.parse_list(frozenset(), frozenset({"}"}))
            if stop != "}":
                self.problem("unbalanced group")
            return self.trailing_redirects(entries)
        if word in {"if", "while", "until"}:
            self.problem("compound command")
            self.pos += len(word)
            return self.trailing_redirects(self.keyword_block(word))
        if word in {"for", "select"}:
            self.problem("compound command")
            self.pos += len(word)
            return self.trailing_redirects(self.for_loop())
        if word == "case":
            self.problem("compound command")
            self.pos += len(word)
            return self.trailing_redirects(self.case())
        if word == "[[":
            self.problem("conditional expression")
            self.pos += len(word)
            return self.trailing_redirects(self.conditional())
        if word == "function":
            self.pos += len(word)
            return self.function(named=False)
        if word == "coproc":
            self.problem("coprocess")
            self.pos += len(word)
            return self.parse_command()
        return self.parse_simple()

    def keyword_block(self, word: str) -> list[_Entry]:
        """`if`, `while`, `until`: every list in them, flattened."""
        entries: list[_Entry] = []
        if word == "if":
            expect = frozenset({"then"})
            follow = {
                "then": frozenset({"elif", "else", "fi"}),
                "elif": frozenset({"then"}),
                "else": frozenset({"fi"}),
            }
            final = "fi"
        else:
            expect = frozenset({"do"})
            follow = {"do": frozenset({"done"})}
            final = "done"
        while True:
            part, stop = self.parse_list(frozenset(), expect)
            entries.extend(part)
            if stop is None:
                self.problem("syntax error")
                return entries
            if stop == final:
                return entries
            expect = follow[stop]

    def words_outside(self, word: _Word) -> list[_Entry]:
        """Account for a word that belongs to no simple command."""
        for why in word.reasons:
            self.problem(why)
        return [(cmd, False) for cmd in word.entries]

    def for_loop(self) -> list[_Entry]:
        entries: list[_Entry] = []
        self.skip_blanks()
        if self.text.startswith("((", self.pos):
            entries.extend(self.arith_command())
        elif self.peek_op() == "w":
            entries.extend(self.words_outside(self.read_word()))
            self.skip_newlines()
            if self.peek_plain() == "in":
                self.pos += 2
                while True:
                    self.skip_blanks()
                    if self.peek_op() != "w":
                        break
                    entries.extend(self.words_outside(self.read_word()))
        else:
            self.problem("syntax error")
        self.skip_blanks()
        if self.peek_op() == ";":
            self.pos += 1
        self.skip_newlines()
        if self.peek_plain() == "do":
            self.pos += 2
            part, stop = self.parse_list(frozenset(), frozenset({"done"}))
        elif self.peek_plain() == "{":
            self.pos += 1
            part, stop = self.parse_list(frozenset(), frozenset({"}"}))
            stop = "done" if stop == "}" else None
        else:
            part, stop = [], None
        entries.extend(part)
        if stop != "done":
            self.problem("syntax error")
        return entries

    def case(self) -> list[_Entry]:  # noqa: C901 - a parser's dispatch reads best in one place
        entries: list[_Entry] = []
        self.skip_blanks()
        if self.peek_op() != "w":
            self.problem("syntax error")
            return entries
        entries.extend(self.words_outside(self.read_word()))
        self.skip_newlines()
        if self.peek_plain() != "in":
            self.problem("syntax error")
            return entries
        self.pos += 2
        arm_ends = frozenset({";;", ";&", ";;&"})
        while True:
            self.skip_newlines()
            if self.peek_plain() == "esac":
                self.pos += 4
                return entries
            if self.peek_op() == "(":
                self.pos += 1
            while True:  # the patterns, up to `)`
                self.skip_blanks()
                op = self.peek_op()
                if op == ")":
                    self.pos += 1
                    break
                if op == "|":
                    self.pos += 1
                elif op == "w":
                    entries.extend(self.words_outside(self.read_word()))
                else:
                    self.problem("syntax error")
                    return entries
            part, stop = self.parse_list(arm_ends, frozenset({"esac"}))
            entries.extend(part)
            if stop == "esac":
                return entries
            if stop is None:
                self.problem("syntax error")
                return entries
            self.pos += len(stop)

    def conditional(self) -> list[_Entry]:
        """`[[ ... ]]`: only the substitutions in its words are commands."""
        entries: list[_Entry] = []
        while True:
            self.skip_blanks()
            if self.pos >= self.n:
                self.problem("syntax error")
                return entries
            if self.peek_plain() == "]]":
                self.pos += 2
                return entries
            op = self.peek_op()
            if op == "w":
                entries.extend(self.words_outside(self.read_word()))
            elif op == "\n":
                self.newline()
            else:
                self.pos += len(op)

    def function(self, *, named: bool) -> list[_Entry]:
        """A function definition: its body runs later, so it is a reason.

        With *named*, the cursor is after `NAME (`; else after `function`.
        """
        self.problem("function definition")
        if self.posix and not named:
            self.problem("bash-only syntax in a POSIX shell")
        if not named:
            self.skip_blanks()
            if self.peek_op() == "w":
                self.read_word()
            m = _FUNCTION_PARENS.match(self.text, self.pos)
            if m is not None:
                self.pos = m.end()
        else:
            self.skip_blanks()
            if self.peek_op() == ")":
                self.pos += 1
            else:
                self.problem("syntax error")
        self.skip_newlines()
        if not self.command_ahead():
            self.problem("syntax error")
            return []
        return self.parse_command()

    def arith_command(self) -> list[_Entry]:
        """`((...))` at the cursor: its substitutions are commands."""
        word = _Word(self.pos)
        self.pos += 1  # the inner `(` is read by `arith`
        self.arith(word, self.pos - 1, close="))")
        return self.words_outside(word)

    def trailing_redirects(self, entries: list[_Entry]) -> list[_Entry]:
        """Redirections after a compound command apply to all of it."""
        holder = _Cmd()
        while True:
            self.skip_blanks()
            if not self.redirect_ahead():
                break
            entries = self.redirect(holder) + entries
        if holder.redirects or holder.unresolved:
            mains = [cmd for cmd, main in entries if main]
            for cmd in mains:
                cmd.redirects.extend(holder.redirects)
                for why in holder.unresolved:
                    cmd.reason(why)
            if not mains:
                entries.append((holder, True))
        if self.peek_op() == "w":
            self.problem("syntax error")
        return entries

    def redirect(self, cmd: _Cmd) -> list[_Entry]:  # noqa: C901 - one branch per kind of redirection
        """Read one redirection into *cmd*; return its target's commands."""
        fd: int | None = None
        text = self.text
        m = _FD.match(text, self.pos)
        if m is not None:
            fd = int(m.group()) if len(m.group()) < 10 else None  # noqa: PLR2004
            self.pos = m.end()
        else:
            m = _NAMED_FD.match(text, self.pos)
            if m is not None:
                cmd.reason("named file descriptor")
                self.pos = m.end()
        m = _REDIR_OP.match(text, self.pos)
        op = m.group() if m is not None else ">"
        self.pos += len(op)
        if self.posix and op in _BASH_ONLY_OPS:
            cmd.reason("bash-only syntax in a POSIX shell")
        if fd is None:
            fd = _DEFAULT_FD[op]
        self.skip_blanks()
        if self.peek_op() != "w":
            self.problem("syntax error")
            cmd.redirects.append([op, None, fd, ""])
            return []
        word = self.read_word()
        source = word.text
        exact = not word.reasons
        if op in {"<<", "<<-"}:
            if not exact:
                self.problem("unusual here-document delimiter")
            redirect: list[object] = [op, None, fd, ""]
            cmd.redirects.append(redirect)
            self.heredocs.append(
                _Heredoc(
                    redirect,
                    cmd,
                    source,
                    strip_tabs=op == "<<-",
                    quoted=word.quoted,
                )
            )
            return [(c, False) for c in word.entries]
        for why in word.reasons:
            cmd.reason(why)
        if op != "<<<" and word.special:
            pattern = self.glob_of(word, cmd)
            if pattern is not None:
                cmd.reason("glob in a redirection")
                exact = False
            if self.brace(word) is not None:
                cmd.reason("brace expansion")
                exact = False
            self.check_tilde(word, cmd)
        cmd.redirects.append([op, source if exact else None, fd, source])
        return [(c, False) for c in word.entries]

    def read_heredoc(self, doc: _Heredoc) -> None:
        lines: list[str] = []
        text = self.text
        while True:
            if self.pos >= self.n:
                self.problem("unterminated here-document")
                break
            end = text.find("\n", self.pos)
            stop = self.n if end < 0 else end
            line = text[self.pos : stop]
            self.pos = stop if end < 0 else stop + 1
            if doc.strip_tabs:
                line = line.lstrip("\t")
            if line == doc.delim:
                break
            lines.append(line + "\n")
        body = "".join(lines)
        doc.redirect[1] = body
        doc.redirect[3] = body
        if doc.quoted or not any(c in body for c in "$`\\"):
            return
        # An unquoted delimiter lets the body expand: it is not exact, and
        # what its substitutions run is found (after the line's commands).
        doc.redirect[1] = None
        doc.cmd.reason("here-document with expansions")
        sub = _Parser(body, self.state, self.nesting + 1, posix=self.posix)
        word = _Word(0)
        sub.dquote(word, heredoc=True)
        for why in word.reasons:
            doc.cmd.reason(why)
        self.state.late.extend(word.entries)

    def parse_simple(self) -> list[_Entry]:  # noqa: C901 - a parser's dispatch reads best in one place
        self.state.commands += 1
        if self.state.commands > MAX_COMMANDS:
            msg = f"more than {MAX_COMMANDS} commands"
            raise _Refused(msg)
        cmd = _Cmd()
        subs: list[_Entry] = []
        while True:
            self.skip_blanks()
            if self.pos >= self.n:
                break
            if self.redirect_ahead():
                subs.extend(self.redirect(cmd))
                continue
            op = self.peek_op()
            if op == "(":
                if len(cmd.argv) == 1 and _FUNCTION_PARENS.match(
                    self.text, self.pos
                ):
                    self.pos += 1
                    return subs + self.function(named=True)
                self.problem("syntax error")  # `echo (x)`, `echo \$(x)`
                break
            if op != "w":
                break
            word = self.read_word()
            subs.extend((c, False) for c in word.entries)
            for why in word.reasons:
                cmd.reason(why)
            if not cmd.argv and _ASSIGNMENT.match(self.text, word.start):
                name, _, value = word.text.partition("=")
                if self.tilde_in_assignment(word):
                    cmd.reason("tilde expansion in an assignment")
                cmd.assignments.append((name.rstrip("+"), value))
                continue
            self.add_word(cmd, word)
        if not cmd.argv and not (cmd.assignments or cmd.redirects):
            self.problem("syntax error")  # e.g. `! ;`
            return subs
        return [*subs, (cmd, True)]

    def add_word(self, cmd: _Cmd, word: _Word) -> None:
        """Add *word* to *cmd*'s argv, with its braces, tilde and glob."""
        first = not cmd.argv
        if first and word.text.startswith("%"):
            cmd.reason("job specification")  # `%1` is `fg %1`
        if first and _SUBSCRIPT.match(self.text, word.start):
            # `a[ 1 + 1 ]=5` is one assignment to bash, spaces and all
            cmd.reason("array subscript")
        if word.reasons:
            cmd.argv.append(OpaqueWord(word.text))
            return
        if not word.special:
            cmd.argv.append(word.text)
            return
        # bash expands `~` after `=` and `:` in words shaped like an
        # assignment, even as arguments
        if (
            cmd.argv
            and _ASSIGNMENT.match(self.text, word.start)
            and self.tilde_in_assignment(word)
        ):
            cmd.reason("tilde expansion in an assignment")
        alternatives = self.brace(word)
        if alternatives is not None:
            cmd.reason("brace expansion")
            cmd.argv.extend(alternatives)
            return
        self.check_tilde(word, cmd)
        pattern = self.glob_of(word, cmd)
        if pattern is None:
            cmd.argv.append(word.text)
            return
        if first:
            cmd.reason("glob in program position")
        cmd.argv.append(GlobWord(word.text, pattern))

    # -- word post-processing -----------------------------------------------

    @staticmethod
    def tilde_in_assignment(word: _Word) -> bool:
        """Whether bash expands a `~` after `=` or `:` in *word*."""
        seen_eq = False
        for text, quoted in word.segs:
            if quoted:
                continue
            for i, c in enumerate(text):
                if c == "=":
                    seen_eq = True
                if c in "=:" and seen_eq and text[i + 1 : i + 2] == "~":
                    return True
        return False

    @staticmethod
    def check_tilde(word: _Word, cmd: _Cmd) -> None:
        """Name a tilde prefix other than the home directory's.

        `~` and `~/...` are exact (the labeller reads `~` as the home
        directory); `~user`, `~+`, `~-` and `~N` are a reason. A prefix
        holding a quoted character is not expanded at all.
        """
        first, quoted = word.segs[0]
        if quoted or not first.startswith("~"):
            return
        slash = first.find("/")
        if slash < 0 and len(word.segs) > 1:
            return  # the prefix holds quoted characters: no expansion
        if (first if slash < 0 else first[:slash]) != "~":
            cmd.reason("tilde expansion")

    @staticmethod
    def glob_of(word: _Word, cmd: _Cmd) -> str | None:
        """The glob pattern of *word* (quoted metacharacters escaped)."""
        out: list[str] = []
        active = False
        segs = word.segs
        for index, (text, quoted) in enumerate(segs):
            if quoted:
                out.append(
                    text.replace("[", "[[]")
                    .replace("*", "[*]")
                    .replace("?", "[?]")
                )
                continue
            i = 0
            n = len(text)
            while i < n:
                c = text[i]
                if c in "*?":
                    active = True
                    out.append(c)
                elif c == "[":
                    close = bracket_end(text, i)
                    if close < 0:
                        later = any("]" in t for t, _ in segs[index + 1 :])
                        if later:
                            cmd.reason("glob with quoted brackets")
                        out.append("[[]")
                    else:
                        active = True
                        out.append(text[i : close + 1])
                        i = close
                else:
                    out.append(c)
                i += 1
        return "".join(out) if active else None

    @staticmethod
    def brace(word: _Word) -> list[str] | None:
        """The words brace expansion makes of *word*, or `None` if none.

        An unquoted `{...}` pair holding an unquoted `,` (at its own
        level) or `..` counts, even where bash would leave the word alone
        (`{a..}`): the words are for the checks that look past a reason,
        and the reason stands either way. A word with braces and a `,` or
        `..` after them that our scan does not expand is not proven exact
        either (bash expands `:{},}`): it is its own one word, with the
        reason. `HEAD@{1}` and `{}` are words.
        """
        chars: list[str] = []
        quoted: list[bool] = []
        for text, q in word.segs:
            chars.extend(text)
            quoted.extend([q] * len(text))
        opens = [i for i, c in enumerate(chars) if c == "{" and not quoted[i]]
        if not opens:
            return None
        first = opens[0]
        tail = "".join(
            c
            for c, q in zip(chars[first:], quoted[first:], strict=True)
            if not q
        )
        if "}" not in tail or ("," not in tail and ".." not in tail):
            return None
        if not _expands(chars, quoted):
            if _may_expand(chars, quoted):
                # A `,` or `..` between a `{` and a later `}`, which our
                # scan does not expand; bash's own scan differs in corners
                # (`:{},}` is `:}` and `:` there): not proven exact, so the
                # word keeps its reason, as itself.
                return ["".join(chars)]
            return None
        if len(opens) > _MAX_BRACES or len(chars) > _MAX_BRACE_CHARS:
            msg = "a brace expansion too large to analyse"
            raise _Refused(msg)
        out: list[str] = []
        _expand_braces(chars, quoted, out)
        return [w for w in out if w]

    # -- words -----------------------------------------------------------

    def read_word(self) -> _Word:  # noqa: C901, PLR0912 - a parser's dispatch reads best in one place
        """Read one word at the cursor (which is not at an operator)."""
        self.count_word()
        w = _Word(self.pos)
        text = self.text
        while self.pos < self.n:
            self.tick()
            m = _RUN.match(text, self.pos)
            if m is not None:
                run = m.group()
                w.segs.append((run, False))
                if not w.special and _SPECIAL.search(run):
                    w.special = True
                self.pos = m.end()
                continue
            c = text[self.pos]
            if c == "'":
                w.quoted = True
                end = text.find("'", self.pos + 1)
                if end < 0:
                    self.problem("unbalanced quote")
                    end = self.n
                w.literal(text[self.pos + 1 : end])
                self.pos = min(end + 1, self.n)
            elif c == '"':
                w.quoted = True
                self.pos += 1
                self.dquote(w, heredoc=False)
            elif c == "\\":
                nxt = self.at(1)
                if nxt == "\n":
                    self.problem("line continuation")
                    self.pos += 2
                elif nxt == "":
                    w.reason("trailing backslash")
                    w.literal("\\")
                    self.pos += 1
                else:
                    w.literal(nxt)
                    self.pos += 2
            elif c == "$":
                self.dollar(w, dquote=False)
            elif c == "`":
                self.backtick(w, dquote=False)
            elif c in "<>" and self.at(1) == "(":
                self.substitution(w, 2, "process substitution")
            elif c == "(" and _ASSIGNMENT.fullmatch(text, w.start, self.pos):
                self.array(w)
            else:
                break
        return w

    def array(self, w: _Word) -> None:
        """`a=(x y)`: the elements, kept as written; always a reason."""
        start = self.pos
        self.pos += 1
        w.reason("array assignment")
        while True:
            self.skip_newlines()
            op = self.peek_op()
            if op == ")":
                self.pos += 1
                break
            if op != "w":
                self.problem("unbalanced parenthesis")
                break
            item = self.read_word()
            for why in item.reasons:
                w.reason(why)
            w.entries.extend(item.entries)
        w.segs.append((self.text[start : self.pos], True))

    def dquote(self, w: _Word, *, heredoc: bool) -> None:
        """Read a double-quoted string (cursor after `"`) into *w*.

        With *heredoc*, read to the end of the text, with the escapes of a
        here-doc body (a backslash before `"` stays as written).
        """
        self.enter()
        text = self.text
        escapable = "$`\\\n" if heredoc else '$`"\\\n'
        while self.pos < self.n:
            self.tick()
            m = _DQ_RUN.match(text, self.pos)
            if m is not None:
                w.literal(m.group())
                self.pos = m.end()
                continue
            c = text[self.pos]
            if c == '"':
                if heredoc:
                    w.literal('"')
                    self.pos += 1
                    continue
                self.pos += 1
                self.leave()
                return
            if c == "\\":
                nxt = self.at(1)
                if nxt == "\n":
                    w.reason("line continuation")
                    self.pos += 2
                elif nxt and nxt in escapable:
                    w.literal(nxt)
                    self.pos += 2
                else:
                    w.literal("\\")
                    self.pos += 1
            elif c == "$":
                self.dollar(w, dquote=True)
            else:  # a backquote
                self.backtick(w, dquote=True)
        if not heredoc:
            self.problem("unbalanced quote")
        self.leave()

    def dollar(self, w: _Word, *, dquote: bool) -> None:
        """Read what follows a `$` at the cursor into *w*."""
        start = self.pos
        nxt = self.at(1)
        text = self.text
        if nxt == "(":
            if self.at(2) == "(" and self.arith_ahead(self.pos + 3):
                self.pos += 2
                self.arith(w, start, close="))")
                return
            self.substitution(w, 2, "command substitution")
        elif nxt == "{":
            self.parameter(w, dquote=dquote)
        elif nxt == "[":
            self.pos += 1
            self.arith(w, start, close="]")
        elif nxt == "'" and not dquote:
            w.quoted = True
            self.pos += 2
            self.ansi_c(w)
        elif nxt == '"' and not dquote:
            w.quoted = True
            w.reason("locale translation")
            self.pos += 2
            mark = len(w.segs)
            self.dquote(w, heredoc=False)
            body = "".join(t for t, _ in w.segs[mark:])
            del w.segs[mark:]
            w.segs.append(('$"' + body + '"', True))
        elif (
            nxt == ""
            or nxt in " \t\n"
            or (nxt == '"' if dquote else nxt in "|&;<>()")
        ):
            w.literal("$")
            self.pos += 1
        elif _NAME.match(text, self.pos + 1):
            m = _NAME.match(text, self.pos + 1)
            assert m is not None  # noqa: S101 - matched just above
            self.pos = m.end()
            w.expansion(text[start : self.pos], "parameter expansion")
        elif nxt in _DIGIT_SPECIAL:
            self.pos += 2
            w.expansion(text[start : self.pos], "parameter expansion")
        else:
            # bash leaves `$/` and the like alone; no command needs them
            self.pos += 1
            w.expansion("$", "a dollar sign bash may expand")

    def arith_ahead(self, start: int) -> bool:
        """Whether `$((` before *start* closes as arithmetic with `))`.

        Nested `$((` scan the same text again; past a budget of twice the
        line's length the line is refused, so the scans stay linear.
        """
        depth = 0
        text = self.text
        i = start
        try:
            while True:
                m = _ARITH_STOP.search(text, i)
                if m is None:
                    return False
                i = m.start()
                c = text[i]
                if c == "(":
                    depth += 1
                elif c == ")":
                    if depth == 0:
                        return text.startswith("))", i)
                    depth -= 1
                elif c == "\\":
                    i += 1
                elif c in "'\"":
                    end = text.find(c, i + 1)
                    if end < 0:
                        return False
                    i = end
                i += 1
        finally:
            self.state.scanned += i - start
            if self.state.scanned > self.n + 4096:
                msg = "arithmetic nested too deep to analyse"
                raise _Refused(msg)

    def arith(self, w: _Word, start: int, *, close: str) -> None:
        """`$((...))`, `((...))` or `$[...]`, cursor at the last opener.

        An arithmetic context evaluates the values of names as expressions
        (`$((x))` with `x='a[$(id)]'` runs `id`), so it is never exact; the
        substitutions written in it are read as commands.
        """
        self.enter()
        self.pos += 1
        text = self.text
        stop = _ARITH_STOP if close == "))" else _BRACKET_STOP
        depth = 0
        inner = _Word(self.pos)
        while True:
            self.tick()
            m = stop.search(text, self.pos)
            if m is None:
                self.pos = self.n
                self.problem("unbalanced parenthesis")
                break
            self.pos = m.start()
            c = text[self.pos]
            if c == "$":
                self.dollar(inner, dquote=True)
            elif c == "`":
                self.backtick(inner, dquote=True)
            elif c == "\\":
                self.pos += 2
            elif c in "'\"":
                end = text.find(c, self.pos + 1)
                self.pos = self.n if end < 0 else end + 1
            elif c in "([":
                depth += 1
                self.pos += 1
            elif depth == 0:
                self.pos += len(close)
                break
            else:
                depth -= 1
                self.pos += 1
        self.pos = min(self.pos, self.n)
        self.leave()
        w.entries.extend(inner.entries)
        for why in inner.reasons:
            w.reason(why)
        w.expansion(text[start : self.pos], "arithmetic expansion")

    def substitution(self, w: _Word, skip: int, why: str) -> None:
        """`$(...)`, `<(...)`, `>(...)`: parse the inside as commands."""
        start = self.pos
        self.pos += skip
        entries, stop = self.parse_list(frozenset({")"}), frozenset())
        if stop == ")":
            self.pos += 1
        else:
            self.problem("unbalanced parenthesis")
        for cmd, _ in entries:
            cmd.subshell = True
        w.expansion(self.text[start : self.pos], why)
        w.entries.extend(cmd for cmd, _ in entries)

    def parameter(self, w: _Word, *, dquote: bool) -> None:  # noqa: C901, PLR0912 - a parser's dispatch reads best in one place
        """`${...}`, with whatever nests in it; kept as written.

        Every form is a reason: besides the value itself, indirection
        (`${!x}`), prompt expansion (`${x@P}`), subscripts and offsets
        evaluate text as code. An ANSI-C string inside is decoded, and
        substitutions in what it decodes to are read as commands.
        """
        self.enter()
        start = self.pos
        self.pos += 2
        depth = 1
        text = self.text
        inner = _Word(self.pos)
        while True:
            self.tick()
            m = _PARAM_STOP.search(text, self.pos)
            if m is None:
                self.pos = self.n
                self.problem("unbalanced brace")
                break
            self.pos = m.start()
            c = text[self.pos]
            if c == "\\":
                self.pos += 2
            elif c == "'" and not dquote:
                end = text.find("'", self.pos + 1)
                if end < 0:
                    self.problem("unbalanced quote")
                    end = self.n
                self.pos = end + 1
            elif c == "'":
                self.pos += 1
            elif c == '"':
                self.pos += 1
                self.dquote(inner, heredoc=False)
            elif c == "$":
                if self.at(1) == "'":
                    self.pos += 2
                    decoded = _Word(self.pos)
                    self.ansi_c(decoded)
                    self.hidden(decoded.text, inner)
                else:
                    self.dollar(inner, dquote=dquote)
            elif c == "`":
                self.backtick(inner, dquote=dquote)
            else:
                self.pos += 1
                depth += 1 if c == "{" else -1
                if depth == 0:
                    break
        self.pos = min(self.pos, self.n)
        self.leave()
        w.entries.extend(inner.entries)
        for why in inner.reasons:
            w.reason(why)
        w.expansion(text[start : self.pos], "parameter expansion")

    def hidden(self, code: str, w: _Word) -> None:
        """Read the commands of substitutions hidden in decoded *code*."""
        if not any(s in code for s in ("$(", "`", "${", "$[")):
            return
        sub = _Parser(code, self.state, self.nesting + 1, posix=self.posix)
        found = _Word(0)
        sub.dquote(found, heredoc=True)
        w.entries.extend(found.entries)

    def backtick(self, w: _Word, *, dquote: bool) -> None:
        """`` `...` ``: unescape the inside and parse it as commands."""
        start = self.pos
        self.pos += 1
        inner: list[str] = []
        text = self.text
        escapes = '`\\$"' if dquote else "`\\$"
        while True:
            self.tick()
            m = _BQ_STOP.search(text, self.pos)
            if m is None:
                inner.append(text[self.pos :])
                self.pos = self.n
                self.problem("unbalanced backquote")
                break
            inner.append(text[self.pos : m.start()])
            self.pos = m.start()
            if text[self.pos] == "`":
                self.pos += 1
                break
            nxt = self.at(1)
            if nxt and nxt in escapes:
                inner.append(nxt)
            elif nxt:
                inner.append("\\" + nxt)
            else:
                inner.append("\\")
            self.pos += 2
        self.enter()
        sub = _Parser(
            "".join(inner), self.state, self.nesting, posix=self.posix
        )
        entries, _ = sub.parse_list(frozenset(), frozenset())
        if sub.heredocs:
            sub.problem("unterminated here-document")
        self.leave()
        for cmd, _ in entries:
            cmd.subshell = True
        w.expansion(text[start : self.pos], "command substitution")
        w.entries.extend(cmd for cmd, _ in entries)

    def ansi_c(self, w: _Word) -> None:
        """`$'...'` (cursor after the quote), decoded as bash does.

        The plain escapes are exact; octal, hex, Unicode and control
        escapes are decoded but are a reason (they spell text no reader of
        the line sees), as is the whole string in a POSIX shell.
        """
        if self.posix:
            w.reason("bash-only syntax in a POSIX shell")
        text = self.text
        out: list[str] = []
        while True:
            self.tick()
            m = _ANSI_RUN.match(text, self.pos)
            if m is not None:
                out.append(m.group())
                self.pos = m.end()
            if self.pos >= self.n:
                self.problem("unbalanced quote")
                break
            c = text[self.pos]
            self.pos += 1
            if c == "'":
                break
            out.append(self.ansi_escape(w))
        decoded = "".join(out)
        if "\0" in decoded:
            decoded = decoded[: decoded.index("\0")]  # bash stops at a NUL
        w.literal(decoded)

    def ansi_escape(self, w: _Word) -> str:  # noqa: PLR0911 - one branch per escape
        """Decode one escape of `$'...'` (cursor after the backslash)."""
        c = self.at()
        if c == "":
            w.reason("trailing backslash")
            return "\\"
        self.pos += 1
        if c in _ANSI_PLAIN:
            return _ANSI_PLAIN[c]
        w.reason("ANSI-C escape")
        if c in _OCTAL:
            digits = c
            while len(digits) < 3 and self.at() and self.at() in _OCTAL:  # noqa: PLR2004
                digits += self.at()
                self.pos += 1
            return chr(int(digits, 8) & 0xFF)
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            digits = ""
            while len(digits) < width and self.at() and self.at() in _HEX:
                digits += self.at()
                self.pos += 1
            if not digits:
                return "\\" + c
            value = int(digits, 16)
            return chr(value) if value <= _MAX_CODEPOINT else "\ufffd"
        if c == "c" and self.at():
            ch = self.at()
            self.pos += 1
            return chr(ord(ch) & 0x1F)
        return "\\" + c


def _expands(chars: list[str], quoted: list[bool]) -> bool:
    """Whether an unquoted brace pair holds a `,` at its level or `..`."""
    stack: list[list[bool]] = []  # per open brace: comma seen, dots seen
    previous = ""
    for c, q in zip(chars, quoted, strict=True):
        if q:
            previous = ""
            continue
        if c == "{":
            stack.append([False, False])
        elif c == "}" and stack:
            comma, dots = stack.pop()
            if comma or dots:
                return True
        elif c == "," and stack:
            stack[-1][0] = True
        elif c == "." and previous == "." and stack:
            stack[-1][1] = True
        previous = c
    return False


def _may_expand(chars: list[str], quoted: list[bool]) -> bool:
    """Whether an unquoted `,` or `..` stands between an unquoted `{` and
    a later unquoted `}`: what bash may take for a brace expansion.
    """
    opened = separated = False
    previous = ""
    for c, q in zip(chars, quoted, strict=True):
        if q:
            previous = ""
            continue
        if c == "{":
            opened = True
        elif opened and (c == "," or (c == "." and previous == ".")):
            separated = True
        elif c == "}" and separated:
            return True
        previous = c
    return False


def _expand_braces(  # noqa: C901, PLR0912 - bash's brace expansion, in one place
    chars: list[str], quoted: list[bool], out: list[str]
) -> None:
    """Append the brace expansion of *chars* to *out*, as bash would."""
    n = len(chars)
    for i in range(n):
        if chars[i] != "{" or quoted[i]:
            continue
        depth = 0
        commas: list[int] = []
        close = -1
        for j in range(i, n):
            if quoted[j]:
                continue
            c = chars[j]
            if c == "{":
                depth += 1
            elif c == "}":
                depth -= 1
                if depth == 0:
                    close = j
                    break
            elif c == "," and depth == 1:
                commas.append(j)
        if close < 0:
            break
        pre_c, pre_q = chars[:i], quoted[:i]
        post_c, post_q = chars[close + 1 :], quoted[close + 1 :]
        if commas:
            bounds = [i, *commas, close]
            parts = [
                (chars[a + 1 : b], quoted[a + 1 : b])
                for a, b in itertools.pairwise(bounds)
            ]
        else:
            body = "".join(chars[i + 1 : close])
            if any(quoted[i + 1 : close]):
                continue
            items = _sequence(body)
            if items is None:
                continue
            parts = [(list(item), [True] * len(item)) for item in items]
        for part_c, part_q in parts:
            _expand_braces(
                pre_c + part_c + post_c, pre_q + part_q + post_q, out
            )
            if len(out) > MAX_BRACE_WORDS:
                msg = "a brace expansion too large to analyse"
                raise _Refused(msg)
        return
    out.append("".join(chars))


def _sequence(body: str) -> list[str] | None:
    """The items of a sequence expression (`1..5`, `a..e..2`), or `None`."""
    m = _SEQUENCE.fullmatch(body)
    if m is None:
        return None
    if m.group(1) is not None:
        first, last = int(m.group(1)), int(m.group(2))
        step = abs(int(m.group(3) or 1)) or 1
        if abs(last - first) // step > MAX_BRACE_WORDS:
            msg = "a brace expansion too large to analyse"
            raise _Refused(msg)
        width = max(len(m.group(1)), len(m.group(2)))
        pad = m.group(1).lstrip("-").startswith("0") or m.group(2).lstrip(
            "-"
        ).startswith("0")
        numbers = range(
            first,
            last + (1 if last >= first else -1),
            step if last >= first else -step,
        )
        return [str(x).zfill(width) if pad else str(x) for x in numbers]
    first_c, last_c = ord(m.group(4)), ord(m.group(5))
    step = abs(int(m.group(6) or 1)) or 1
    letters = range(
        first_c,
        last_c + (1 if last_c >= first_c else -1),
        step if last_c >= first_c else -step,
    )
    return [chr(x) for x in letters]


def _join_continuations(text: str) -> str:
    """*text* with its line continuations removed, as bash reads it."""
    return _CONTINUATION.sub(r"\1", text)


def parse(text: str, *, posix: bool = False) -> ParsedCommand:
    """
    Parse a shell command line into its simple commands.

    Never raises: what cannot be parsed or resolved is named in the
    `unresolved` reasons of the command it belongs to or of the whole line,
    and a line beyond the limits is `refused`. The module docstring gives
    the grammar and what counts as exact.

    Args:
        text: The command line, as an agent would hand it to `bash -c`.
        posix: Read it as a POSIX shell (`sh`, `dash`) would: bash-only
            syntax is a reason.

    Returns:
        Every simple command in *text*, flattened, with the reasons why any
        part of it is not exact.

    Examples:
        >>> parsed = parse('echo "a; b" && rm -rf "$(pwd)"/x')
        >>> [c.argv for c in parsed.commands]
        [('echo', 'a; b'), ('pwd',), ('rm', '-rf', '$(pwd)/x')]
        >>> parsed.commands[2].unresolved
        ('command substitution',)
        >>> parse("cat ${x:-README}").commands[0].unresolved
        ('parameter expansion',)
    """
    if len(text) > MAX_CHARS:
        return ParsedCommand(
            commands=(),
            refused=f"longer than {MAX_CHARS} characters ({len(text)})",
        )
    if "\\\n" in text:
        # bash joins continued lines before it reads words, so `$\<nl>(`
        # is `$(`; a line with one is never exact. What runs is read from
        # the joined line, and from the line as written (a quoted
        # here-document keeps them), so that neither hides a command.
        joined = _parse(_join_continuations(text), posix=posix)
        plain = _parse(text, posix=posix)
        refused = joined.refused or plain.refused
        if refused is not None:
            return ParsedCommand(commands=(), refused=refused)
        return ParsedCommand(
            commands=joined.commands + plain.commands,
            unresolved=tuple(
                dict.fromkeys(
                    (
                        "line continuation",
                        *joined.unresolved,
                        *plain.unresolved,
                    )
                )
            ),
        )
    return _parse(text, posix=posix)


#: A line that is one simple command of plain words (no quote, expansion,
#: glob, operator or comment; no assignment, job or reserved word first):
#: the common case, read without the parser.
_PLAIN_LINE = re.compile(
    r"[ \t]*(?P<first>[^\s|&;<>()'\"\\$`*?\[\]{}~#\x00=%!]+)"
    r"(?:[ \t]+[^\s|&;<>()'\"\\$`*?\[\]{}~#\x00]+)*[ \t]*"
)
_RESERVED = frozenset(
    {"if", "then", "else", "elif", "fi", "do", "done", "case", "esac",
     "while", "until", "for", "select", "function", "time", "in", "coproc"}
)  # fmt: skip
_SPLIT = re.compile(r"[ \t]+")


def _parse(text: str, *, posix: bool) -> ParsedCommand:
    plain = _PLAIN_LINE.fullmatch(text)
    if plain is not None and plain.group("first") not in _RESERVED:
        words = _SPLIT.split(text.strip(" \t"))
        if len(words) <= MAX_WORDS:
            return ParsedCommand((SimpleCommand(tuple(words)),))
    state = _State()
    parser = _Parser(text, state, 0, posix=posix)
    if "\0" in text:
        parser.problem("NUL character")
    try:
        entries, _ = parser.parse_list(frozenset(), frozenset())
    except _Refused as refused:
        return ParsedCommand(commands=(), refused=str(refused))
    except RecursionError:
        return ParsedCommand(commands=(), refused="nested too deep to analyse")
    if parser.heredocs:
        parser.problem("unterminated here-document")
    commands = [cmd for cmd, _ in entries] + state.late
    return ParsedCommand(
        commands=tuple(cmd.build() for cmd in commands),
        unresolved=tuple(state.reasons),
    )
