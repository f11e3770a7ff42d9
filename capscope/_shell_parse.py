r"""
A parser for the POSIX-shell subset that agents send (issue 5).

The command policy judges what a command line *would run*, so it needs every
simple command in the line, with quotes removed the way the shell removes
them, and an honest list of what cannot be known without running it. No
third-party parser is used (`bashlex` is GPL-licensed); `shlex` splits words
but knows neither operators nor substitutions.

The grammar, as this module reads it:

```text
list       := and_or ((";" | "&" | NEWLINE) and_or)*
and_or     := pipeline (("&&" | "||") NEWLINE* pipeline)*
pipeline   := ["!"] command (("|" | "|&") NEWLINE* command)*
command    := simple | compound redirect*
compound   := "(" list ")" | "{" list "}" | "((" arith "))"
            | if/while/until/for/select/case ... (keywords as separators)
            | NAME "(" ")" compound | "function" NAME ["(" ")"] compound
simple     := (ASSIGNMENT | redirect)* (WORD | redirect)*
redirect   := [DIGITS] (">" | ">>" | "<" | ">|" | "<>" | ">&" | "<&"
              | "<<<") WORD | ("&>" | "&>>") WORD
              | [DIGITS] ("<<" | "<<-") DELIM   (body: lines up to DELIM)
WORD       := pieces with no blank between: bare text, '...', "...",
              $'...', \c, $NAME, ${...}, $(list), `list`, $((arith)),
              <(list), >(list)
```

`#` at the start of a token begins a comment; backslash-newline joins lines.

What comes out (`capscope._shell.ParsedCommand`):

- Every simple command, flattened in order: those in subshells, groups and
  compound commands where they stand, those of a substitution *before* the
  pipeline that holds it (they run first), those of a here-doc body's
  substitutions at the end.
- Words after quote removal. A substitution or expansion keeps its source
  text (`$(rm -rf /)`, `$HOME`, `${X:-y}`, `$((1+2))`) so a later match never
  mistakes it for a literal.
- `Redirect.op` is the operator without its number; `fd` is the number
  written or the operator's default (1 for `>`-style, 0 for `<`-style,
  `None` for `&>`/`&>>`, which take both streams). `target` is the word after
  quote removal, `None` when it holds an expansion, a substitution or a glob.
  For a here-doc the target is the *body* (so `sh <<EOF` can be read like
  `sh <<<'...'`); `None` when an unquoted delimiter lets it expand.
- `SimpleCommand.unresolved`: `"command substitution"`, `"process
  substitution"`, `"variable in program position"`, `"substitution in
  program position"`, `"glob in program position"`, `"brace expansion in
  program position"`, `"eval"`, `"source"`.
- `ParsedCommand.unresolved`: `"unbalanced quote"`, `"unbalanced
  parenthesis"` (also braces, keywords' blocks aside, and unclosed
  substitutions or backticks), `"unterminated here-doc"`, `"syntax error"`,
  `"compound command"` (a function definition: its body runs later),
  `"nesting too deep"`, and substitution reasons found outside any simple
  command (a `for` word list, a `case` word, an arithmetic command).

Not handled: `[[ ... ]]` operators (`<`, `&&` inside it read as the shell's
own), aliases, extended globs, arrays beyond `a=(...)`, `coproc`, and the
exact bash rules for `$((` versus `$( (`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ._shell import ParsedCommand, Redirect, SimpleCommand

__all__ = ["parse"]

_MAX_NESTING = 50
_OCTAL_DIGITS = 3  # bash reads at most three octal digits after a backslash
_MAX_CODEPOINT = 0x10FFFF

_OPERATORS = (
    "&>>",
    ";;&",
    "<<<",
    "<<-",
    "&&",
    "||",
    "|&",
    ";;",
    ";&",
    ">>",
    "<<",
    "<>",
    "<&",
    ">&",
    ">|",
    "&>",
    ";",
    "&",
    "|",
    "<",
    ">",
    "(",
    ")",
    "\n",
)
_REDIRECTS = frozenset(
    {">", ">>", "<", ">|", "<>", "&>", "&>>", ">&", "<&", "<<<", "<<", "<<-"}
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
_BLANKS = " \t"
_WORD_END = " \t\n|&;()<>"
_PLAIN = re.compile(r"[^\s|&;<>()'\"\\$`]+")
_IO_NUMBER = re.compile(r"[0-9]+(?=[<>])")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\+?=")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-]")
_SIMPLE_ESCAPES = {
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
# Words that end a block; met where no block expects them they are an error.
_CLOSERS = frozenset(
    {"then", "else", "elif", "fi", "do", "done", "esac", "}", "in"}
)


class _TooDeep(Exception):
    """Raised internally when nesting passes `_MAX_NESTING`."""


@dataclass
class _Redir:
    op: str
    target: str | None
    fd: int | None


@dataclass
class _Cmd:
    """A simple command under construction (here-docs fill it in later)."""

    argv: list[str] = field(default_factory=list)
    assignments: list[tuple[str, str]] = field(default_factory=list)
    redirects: list[_Redir] = field(default_factory=list)
    unresolved: list[str] = field(default_factory=list)
    piped: bool = False
    background: bool = False

    def reason(self, why: str) -> None:
        if why not in self.unresolved:
            self.unresolved.append(why)

    def build(self) -> SimpleCommand:
        return SimpleCommand(
            argv=tuple(self.argv),
            assignments=tuple(self.assignments),
            redirects=tuple(
                Redirect(r.op, r.target, r.fd) for r in self.redirects
            ),
            unresolved=tuple(self.unresolved),
            piped=self.piped,
            background=self.background,
        )


# (command, main): `main` is false for the commands of a substitution, whose
# output is captured, so pipes and `&` around it do not apply to them.
_Entry = tuple[_Cmd, bool]


@dataclass
class _Word:
    parts: list[str] = field(default_factory=list)
    raw: str = ""
    quoted: bool = False
    param: bool = False
    subst: bool = False
    unquoted: set[str] = field(default_factory=set)
    reasons: list[str] = field(default_factory=list)
    entries: list[_Entry] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    @property
    def glob(self) -> bool:
        u = self.unquoted
        return "*" in u or "?" in u or ("[" in u and "]" in u)

    @property
    def brace(self) -> bool:
        u = self.unquoted
        return "{" in u and "}" in u and ("," in u or "." in u)

    def reason(self, why: str) -> None:
        if why not in self.reasons:
            self.reasons.append(why)


@dataclass
class _Heredoc:
    redir: _Redir
    cmd: _Cmd
    delim: str
    strip_tabs: bool
    quoted: bool


class _Parser:
    def __init__(self, text: str, nesting: int = 0) -> None:
        self.text = text
        self.n = len(text)
        self.pos = 0
        self.nesting = nesting
        self.unresolved: list[str] = []
        self.late: list[_Cmd] = []
        self.heredocs: list[_Heredoc] = []

    # -- helpers ---------------------------------------------------------

    def problem(self, why: str) -> None:
        if why not in self.unresolved:
            self.unresolved.append(why)

    def enter(self) -> None:
        self.nesting += 1
        if self.nesting > _MAX_NESTING:
            raise _TooDeep

    def leave(self) -> None:
        self.nesting -= 1

    def at(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if i < self.n else ""

    def skip_blanks(self) -> None:
        """Skip blanks, line continuations and a comment (not its newline)."""
        text = self.text
        while self.pos < self.n:
            c = text[self.pos]
            if c in _BLANKS:
                self.pos += 1
            elif c == "\\" and self.at(1) == "\n":
                self.pos += 2
            elif c == "#":
                end = text.find("\n", self.pos)
                self.pos = self.n if end < 0 else end
            else:
                return

    def skip_newlines(self) -> None:
        while True:
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
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                return op
        return "w"

    def peek_plain(self) -> str | None:
        """The word at the cursor if it has no quoting or expansion."""
        m = _PLAIN.match(self.text, self.pos)
        if m is None:
            return None
        end = m.end()
        if end < self.n and self.text[end] not in _WORD_END:
            return None
        return m.group()

    def command_ahead(self) -> bool:
        """Whether a command can start at the cursor (after blanks)."""
        op = self.peek_op()
        if op in {"w", "("} or op in _REDIRECTS:
            word = self.peek_plain()
            return word not in _CLOSERS
        return False

    def newline(self) -> None:
        """Consume a newline, then the bodies of pending here-docs."""
        self.pos += 1
        pending, self.heredocs = self.heredocs, []
        for doc in pending:
            self.read_heredoc(doc)

    # -- lists -----------------------------------------------------------

    def parse_list(  # noqa: C901, PLR0912 -- a parser's dispatch reads best in one place
        self, stop_ops: frozenset[str], stop_words: frozenset[str]
    ) -> tuple[list[_Entry], str | None]:
        """Parse commands up to EOF, an op in *stop_ops* or a stop word.

        A stop operator is left unconsumed; a stop word is consumed.
        """
        self.enter()
        entries: list[_Entry] = []
        while True:
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
            if op not in {"w", "("} and op not in _REDIRECTS:
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
                    "unbalanced parenthesis" if word == "}" else "syntax error"
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
        while True:
            element = self.parse_command()
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
                return subs + mains
            self.pos += len(op)
            self.skip_newlines()
            if not self.command_ahead():
                self.problem("syntax error")
                return subs + mains

    # -- commands --------------------------------------------------------

    def parse_command(self) -> list[_Entry]:  # noqa: PLR0911 -- a parser's dispatch reads best in one place
        """One pipeline element: a simple or a compound command."""
        self.skip_blanks()
        if self.peek_op() == "(":
            if self.at(1) == "(" and self.arith_ahead(self.pos + 2):
                entries = self.arith_command()
            else:
                self.pos += 1
                entries, stop = self.parse_list(frozenset({")"}), frozenset())
                if stop == ")":
                    self.pos += 1
                else:
                    self.problem("unbalanced parenthesis")
            return self.trailing_redirects(entries)
        word = self.peek_plain()
        if word == "{":
            self.pos += 1
            entries, stop = self.parse_list(frozenset(), frozenset({"}"}))
            if stop != "}":
                self.problem("unbalanced parenthesis")
            return self.trailing_redirects(entries)
        if word in {"if", "while", "until"}:
            self.pos += len(word)
            return self.trailing_redirects(self.keyword_block(word))
        if word in {"for", "select"}:
            self.pos += len(word)
            return self.trailing_redirects(self.for_loop())
        if word == "case":
            self.pos += len(word)
            return self.trailing_redirects(self.case())
        if word == "function":
            self.pos += len(word)
            return self.function(named=False)
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
        return [(cmd, False) for cmd, _ in word.entries]

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

    def case(self) -> list[_Entry]:  # noqa: C901 -- a parser's dispatch reads best in one place
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

    def function(self, *, named: bool) -> list[_Entry]:
        """A function definition; its body runs later, so it is unresolved.

        With *named*, the cursor is after `NAME (`; else after `function`.
        """
        self.problem("compound command")
        if not named:
            self.skip_blanks()
            if self.peek_op() == "w":
                self.read_word()
            self.skip_blanks()
            named = self.peek_op() == "("
            if named:
                self.pos += 1
        if named:
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

    def arith_ahead(self, start: int) -> bool:
        """Whether `((` before *start* closes as arithmetic with `))`."""
        depth = 0
        for i in range(start, self.n):
            c = self.text[i]
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    return self.text.startswith("))", i)
                depth -= 1
        return False

    def arith_body(self) -> tuple[str, _Word]:
        """Read `((...))` from the cursor; its source and its expansions."""
        start = self.pos
        self.pos += 2
        depth = 0
        while self.pos < self.n:
            c = self.text[self.pos]
            if c == "(":
                depth += 1
            elif c == ")":
                if depth == 0:
                    break
                depth -= 1
            self.pos += 1
        inner = self.text[start + 2 : self.pos]
        self.pos = min(self.pos + 2, self.n)
        return self.text[start : self.pos], self.scan_expansions(inner)

    def arith_command(self) -> list[_Entry]:
        _source, word = self.arith_body()
        return self.words_outside(word)

    def trailing_redirects(self, entries: list[_Entry]) -> list[_Entry]:
        """Redirections after a compound command apply to all of it."""
        holder = _Cmd()
        while True:
            self.skip_blanks()
            op = self.peek_op()
            if op == "w" and _IO_NUMBER.match(self.text, self.pos):
                pass
            elif op not in _REDIRECTS:
                break
            sub = self.redirect(holder)
            entries = sub + entries
        if holder.redirects or holder.unresolved:
            for cmd, main in entries:
                if main:
                    cmd.redirects.extend(holder.redirects)
                    for why in holder.unresolved:
                        cmd.reason(why)
            if not any(main for _, main in entries):
                entries.append((holder, True))
        if self.peek_op() == "w":
            self.problem("syntax error")
        return entries

    def redirect(self, cmd: _Cmd) -> list[_Entry]:
        """Read one redirection into *cmd*; return its target's commands."""
        fd: int | None = None
        m = _IO_NUMBER.match(self.text, self.pos)
        if m is not None:
            fd = int(m.group())
            self.pos = m.end()
        op = self.peek_op()
        self.pos += len(op)
        if fd is None:
            fd = _DEFAULT_FD[op]
        self.skip_blanks()
        if self.peek_op() != "w":
            self.problem("syntax error")
            cmd.redirects.append(_Redir(op, None, fd))
            return []
        word = self.read_word()
        for why in word.reasons:
            cmd.reason(why)
        redir = _Redir(op, word.text, fd)
        if word.param or word.subst or word.glob:
            redir.target = None
        cmd.redirects.append(redir)
        if op in {"<<", "<<-"}:
            redir.target = None
            self.heredocs.append(
                _Heredoc(
                    redir,
                    cmd,
                    word.text,
                    strip_tabs=op == "<<-",
                    quoted=word.quoted,
                )
            )
        return [(c, False) for c, _ in word.entries]

    def read_heredoc(self, doc: _Heredoc) -> None:
        lines: list[str] = []
        while True:
            if self.pos >= self.n:
                self.problem("unterminated here-doc")
                break
            end = self.text.find("\n", self.pos)
            stop = self.n if end < 0 else end
            line = self.text[self.pos : stop]
            self.pos = stop if end < 0 else stop + 1
            if doc.strip_tabs:
                line = line.lstrip("\t")
            if line == doc.delim:
                break
            lines.append(line + "\n")
        body = "".join(lines)
        doc.redir.target = body
        if not doc.quoted:
            word = self.scan_expansions(body)
            if word.param or word.subst:
                doc.redir.target = None
            for why in word.reasons:
                doc.cmd.reason(why)
            self.late.extend(cmd for cmd, _ in word.entries)

    def parse_simple(self) -> list[_Entry]:  # noqa: C901 -- a parser's dispatch reads best in one place
        cmd = _Cmd()
        subs: list[_Entry] = []
        first: _Word | None = None
        while True:
            self.skip_blanks()
            op = self.peek_op()
            if op == "w" and _IO_NUMBER.match(self.text, self.pos):
                subs.extend(self.redirect(cmd))
                continue
            if op in _REDIRECTS:
                subs.extend(self.redirect(cmd))
                continue
            if (
                op == "("
                and len(cmd.argv) == 1
                and self.text[self.pos + 1 :].lstrip(_BLANKS).startswith(")")
            ):
                self.pos += 1
                return subs + self.function(named=True)
            if op == "(":
                self.problem("syntax error")  # `echo (x)`, `echo \$(x)`
            if op != "w":
                break
            word = self.read_word()
            subs.extend((c, False) for c, _ in word.entries)
            for why in word.reasons:
                cmd.reason(why)
            if first is None and _ASSIGNMENT.match(word.raw):
                name, _, value = word.text.partition("=")
                cmd.assignments.append((name, value))
                continue
            if first is None:
                first = word
            cmd.argv.append(word.text)
        if first is not None:
            self.program_reasons(cmd, first)
        elif not (cmd.assignments or cmd.redirects):
            self.problem("syntax error")  # e.g. `! ;`
            return subs
        return [*subs, (cmd, True)]

    @staticmethod
    def program_reasons(cmd: _Cmd, first: _Word) -> None:
        if first.subst:
            cmd.reason("substitution in program position")
        if first.param:
            cmd.reason("variable in program position")
        if first.glob:
            cmd.reason("glob in program position")
        if first.brace:
            cmd.reason("brace expansion in program position")
        if not first.subst and not first.param:
            if cmd.argv[0] == "eval":
                cmd.reason("eval")
            elif cmd.argv[0] in {"source", "."}:
                cmd.reason("source")

    # -- words -----------------------------------------------------------

    def read_word(self) -> _Word:  # noqa: C901, PLR0912 -- a parser's dispatch reads best in one place
        """Read one word at the cursor (which is not at an operator)."""
        w = _Word()
        start = self.pos
        text = self.text
        while self.pos < self.n:
            c = text[self.pos]
            if c in "<>" and self.pos == start and self.at(1) == "(":
                self.process_substitution(w)
            elif c in _WORD_END:
                if c == "(" and self.array_ahead(start):
                    self.read_array(w)
                    continue
                break
            elif c == "\\":
                nxt = self.at(1)
                if nxt == "\n":
                    self.pos += 2
                    continue
                w.quoted = True
                w.parts.append(nxt or "\\")
                self.pos += 2 if nxt else 1
            elif c == "'":
                w.quoted = True
                self.pos += 1
                end = text.find("'", self.pos)
                if end < 0:
                    self.problem("unbalanced quote")
                    end = self.n
                w.parts.append(text[self.pos : end])
                self.pos = min(end + 1, self.n)
            elif c == '"':
                w.quoted = True
                self.pos += 1
                self.read_dquote(w, heredoc=False)
            elif c == "$":
                self.read_dollar(w, in_dquote=False)
            elif c == "`":
                self.read_backtick(w)
            else:
                if c in "{},.*?[]":
                    w.unquoted.add(c)
                w.parts.append(c)
                self.pos += 1
        w.raw = text[start : self.pos]
        return w

    def array_ahead(self, start: int) -> bool:
        return bool(_ASSIGNMENT.fullmatch(self.text, start, self.pos))

    def read_array(self, w: _Word) -> None:
        """`a=(x y)`: the elements, joined by spaces, as the value."""
        self.pos += 1
        items: list[str] = []
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
            items.append(item.text)
            w.param = w.param or item.param
            w.subst = w.subst or item.subst
            for why in item.reasons:
                w.reason(why)
            w.entries.extend(item.entries)
        w.parts.append("(" + " ".join(items) + ")")

    def read_dquote(self, w: _Word, *, heredoc: bool) -> None:
        """Read a double-quoted string (cursor after `"`) into *w*.

        With *heredoc*, read to the end of the text, with the escapes of a
        here-doc body (a backslash before `"` stays as written).
        """
        self.enter()
        text = self.text
        escapable = "$`\\\n" if heredoc else '$`"\\\n'
        while self.pos < self.n:
            c = text[self.pos]
            if c == '"' and not heredoc:
                self.pos += 1
                self.leave()
                return
            if c == "\\":
                nxt = self.at(1)
                if nxt and nxt in escapable:
                    if nxt != "\n":
                        w.parts.append(nxt)
                    self.pos += 2
                else:
                    w.parts.append("\\")
                    self.pos += 1
            elif c == "$":
                self.read_dollar(w, in_dquote=True)
            elif c == "`":
                self.read_backtick(w)
            else:
                w.parts.append(c)
                self.pos += 1
        if not heredoc:
            self.problem("unbalanced quote")
        self.leave()

    def read_dollar(self, w: _Word, *, in_dquote: bool) -> None:
        """Read what follows a `$` at the cursor into *w*."""
        start = self.pos
        nxt = self.at(1)
        if nxt == "(":
            if self.at(2) == "(" and self.arith_ahead(self.pos + 3):
                self.pos += 1
                source, inner = self.arith_body()
                w.parts.append("$" + source)
                w.param = True
                self.merge(w, inner)
                return
            self.substitution(w, start, 2, "command substitution")
        elif nxt == "{":
            self.read_parameter(w, in_dquote=in_dquote)
        elif nxt == "'" and not in_dquote:
            w.quoted = True
            self.pos += 2
            self.read_ansi_c(w)
        elif nxt == '"' and not in_dquote:
            w.quoted = True
            self.pos += 2
            self.read_dquote(w, heredoc=False)
        else:
            m = _NAME.match(self.text, self.pos + 1)
            if m is None:
                w.parts.append("$")
                self.pos += 1
                return
            w.param = True
            self.pos = m.end()
            w.parts.append(self.text[start : self.pos])

    @staticmethod
    def merge(w: _Word, inner: _Word) -> None:
        w.param = w.param or inner.param
        w.subst = w.subst or inner.subst
        for why in inner.reasons:
            w.reason(why)
        w.entries.extend(inner.entries)

    def substitution(self, w: _Word, start: int, skip: int, why: str) -> None:
        """`$(...)`, `<(...)`, `>(...)`: parse the inside as commands."""
        self.pos = start + skip
        entries, stop = self.parse_list(frozenset({")"}), frozenset())
        if stop == ")":
            self.pos += 1
        else:
            self.problem("unbalanced parenthesis")
        w.parts.append(self.text[start : self.pos])
        w.subst = True
        w.reason(why)
        w.entries.extend((cmd, False) for cmd, _ in entries)

    def process_substitution(self, w: _Word) -> None:
        self.substitution(w, self.pos, 2, "process substitution")

    def read_parameter(self, w: _Word, *, in_dquote: bool) -> None:  # noqa: C901 -- a parser's dispatch reads best in one place
        """`${...}`, with whatever nests in it; kept as written."""
        self.enter()
        start = self.pos
        mark = len(w.parts)
        self.pos += 2
        depth = 1
        text = self.text
        while self.pos < self.n:
            c = text[self.pos]
            if c == "\\":
                self.pos += 2
            elif c == "'" and not in_dquote:
                end = text.find("'", self.pos + 1)
                if end < 0:
                    self.problem("unbalanced quote")
                    end = self.n
                self.pos = end + 1
            elif c == '"':
                self.pos += 1
                self.read_dquote(w, heredoc=False)
            elif c == "$":
                self.read_dollar(w, in_dquote=in_dquote)
            elif c == "`":
                self.read_backtick(w)
            else:
                self.pos += 1
                if c == "{":
                    depth += 1
                elif c == "}":
                    depth -= 1
                    if depth == 0:
                        break
        else:
            self.problem("unbalanced parenthesis")
        self.pos = min(self.pos, self.n)
        del w.parts[mark:]
        w.parts.append(text[start : self.pos])
        w.param = True
        self.leave()

    def read_backtick(self, w: _Word) -> None:
        """`` `...` ``: unescape the inside and parse it as commands."""
        start = self.pos
        self.pos += 1
        inner: list[str] = []
        text = self.text
        while True:
            if self.pos >= self.n:
                self.problem("unbalanced parenthesis")
                break
            c = text[self.pos]
            if c == "`":
                self.pos += 1
                break
            if c == "\\" and self.at(1) in {"`", "\\", "$"}:
                inner.append(self.at(1))
                self.pos += 2
            else:
                inner.append(c)
                self.pos += 1
        sub = self.child("".join(inner))
        entries, _ = sub.parse_list(frozenset(), frozenset())
        if sub.heredocs:
            sub.problem("unterminated here-doc")
        self.adopt(sub)
        w.parts.append(text[start : self.pos])
        w.subst = True
        w.reason("command substitution")
        w.entries.extend((cmd, False) for cmd, _ in entries)

    def child(self, text: str) -> _Parser:
        return _Parser(text, self.nesting + 1)

    def adopt(self, sub: _Parser) -> None:
        for why in sub.unresolved:
            self.problem(why)
        self.late.extend(sub.late)

    def scan_expansions(self, text: str) -> _Word:
        """The substitutions and expansions in *text*, read as in `"..."`.

        *text* is a here-doc body or an arithmetic expression.
        """
        sub = self.child(text)
        w = _Word()
        sub.read_dquote(w, heredoc=True)
        self.adopt(sub)
        return w

    def read_ansi_c(self, w: _Word) -> None:
        """`$'...'` (cursor after the quote), decoded as bash does."""
        text = self.text
        out: list[str] = []
        truncated = False
        while True:
            if self.pos >= self.n:
                self.problem("unbalanced quote")
                break
            c = text[self.pos]
            self.pos += 1
            if c == "'":
                break
            if c != "\\":
                if not truncated:
                    out.append(c)
                continue
            decoded = self.ansi_escape()
            if decoded == "\0":
                truncated = True  # bash ends the string at a NUL
            if not truncated:
                out.append(decoded)
        w.parts.append("".join(out))

    def ansi_escape(self) -> str:  # noqa: PLR0911 -- a parser's dispatch reads best in one place
        """Decode one escape of `$'...'` (cursor after the backslash)."""
        text = self.text
        c = self.at()
        if c == "":
            return "\\"
        self.pos += 1
        if c in _SIMPLE_ESCAPES:
            return _SIMPLE_ESCAPES[c]
        if c in "01234567":
            digits = c
            while (
                len(digits) < _OCTAL_DIGITS
                and self.at()
                and self.at() in "01234567"
            ):
                digits += self.at()
                self.pos += 1
            return chr(int(digits, 8) & 0xFF)
        if c in "xuU":
            width = {"x": 2, "u": 4, "U": 8}[c]
            m = re.compile(f"[0-9A-Fa-f]{{1,{width}}}").match(text, self.pos)
            if m is None:
                return "\\" + c
            self.pos = m.end()
            value = int(m.group(), 16)
            return chr(value) if value <= _MAX_CODEPOINT else "\ufffd"
        if c == "c" and self.at():
            ch = self.at()
            self.pos += 1
            return chr(ord(ch) & 0x1F)
        return "\\" + c


def parse(text: str) -> ParsedCommand:
    """
    Parse a shell command line into its simple commands.

    Never raises: what cannot be parsed or resolved is named in the
    `unresolved` reasons of the command it belongs to or of the whole line.
    The module docstring gives the grammar.

    Args:
        text: The command line, as an agent would hand it to `sh -c`.

    Returns:
        Every simple command in *text*, flattened, with the reasons why any
        part cannot be resolved statically.

    Example:
        >>> parsed = parse('echo "a; b" && rm -rf "$(pwd)"/x')
        >>> [c.argv for c in parsed.commands]
        [('echo', 'a; b'), ('pwd',), ('rm', '-rf', '$(pwd)/x')]
        >>> parsed.commands[2].unresolved
        ('command substitution',)
    """
    parser = _Parser(text)
    try:
        entries, _ = parser.parse_list(frozenset(), frozenset())
    except (_TooDeep, RecursionError):
        return ParsedCommand(commands=(), unresolved=("nesting too deep",))
    if parser.heredocs:
        parser.problem("unterminated here-doc")
    commands = [cmd for cmd, _ in entries] + parser.late
    return ParsedCommand(
        commands=tuple(cmd.build() for cmd in commands),
        unresolved=tuple(parser.unresolved),
    )
