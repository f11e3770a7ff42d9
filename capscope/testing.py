"""
The public testing helpers of capscope, usable without pytest.

Tests of code that uses capscope need four things, and this module gives
each as a plain function or class (the pytest plugin,
`capscope.pytest_plugin`, is a thin layer of fixtures over them):

- **isolation and leak checks**: `isolated()` runs a block with every
  stack empty (or under a given policy) and fails it, naming the stack,
  if it leaves a frame behind; `no_leaks()` checks a block without
  isolating it; `install_policy()` keeps a policy for the rest of an
  isolated block;
- **scripted approvals**: `ScriptedApprover`, an approval handler that
  answers from a list or a function and records every request;
- **assertions** with readable failures: `assert_denied()`,
  `assert_allowed()` and their `_async` forms;
- **a stack's contract**: `StackContract`, a test base a third-party
  stack subclasses to run the checks capscope runs on its own stacks;
- **command spellings**: a command policy is only as good as the
  spellings it survives. `bypass_variants()` generates spellings of a
  command that a shell runs exactly as it runs the plain form, so that a
  user can check their own `CommandPolicy` the way capscope checks its
  engine: every spelling must get the plain form's action, and running
  it under `sudo` or `doas` must never get a weaker one.

Examples:
    >>> import capscope as cs
    >>> from capscope.testing import assert_denied, bypass_variants, isolated
    >>> @cs.requires_tool("fs.write")
    ... def write(path):
    ...     pass
    >>> with isolated({"execution": {"tools": ["fs.read"]}}):
    ...     assert_denied(write, "a.txt", gate="tool_ceiling").tool
    'fs.write'
    >>> len(list(bypass_variants("rm -rf build", seed=0, count=5)))
    5
"""

from __future__ import annotations

import inspect
import os
import random
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Literal, Self, TypeAlias, final

import attrs

from ._ambient import (
    _OWNER,
    _PARENT,
    _VALUE,
    AmbientCounter,
    AmbientStack,
    FrameToken,
    all_vars,
    frames_of,
)
from ._contract import StackContract
from ._decorators import tool_spec
from ._enforce import ApprovalDecision, ApprovalRequest
from ._exceptions import PolicyDenied
from ._policyfile import load_policy_data, load_policy_file
from ._scope import Scope
from .events import Decision, Gate, muted
from .policies.approval import ToolApprovalPolicy
from .stacks import approval

__all__ = [
    "IsolatedScope",
    "Leak",
    "LeakedFrames",
    "ScriptedApprover",
    "StackContract",
    "assert_allowed",
    "assert_allowed_async",
    "assert_denied",
    "assert_denied_async",
    "bypass_variants",
    "install_policy",
    "isolated",
    "no_leaks",
]

# --- the subset of the shell this helper reads -------------------------

#: A word that quoting changes nothing about: no expansion (`$`, `~`,
#: globs, braces), no quote or escape, no history `!`.
_PLAIN = re.compile(r"[A-Za-z0-9_./:+,@%=-]+")
_ASSIGNMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
_OPERATORS = ("||", "|&", "&&", "|", ";", "&")
#: Unquoted characters that start a construct beyond the subset
#: (redirections, subshells and groups, substitutions, new lines).
_REFUSED = frozenset("<>()`\n\r")
#: Words that are shell syntax in program position, not programs.
_RESERVED = frozenset(
    {
        "!",
        "[[",
        "]]",
        "{",
        "}",
        "case",
        "coproc",
        "do",
        "done",
        "elif",
        "else",
        "esac",
        "fi",
        "for",
        "function",
        "if",
        "in",
        "select",
        "then",
        "time",
        "until",
        "while",
    }
)
#: Shell builtins with no program of the same name: a wrapper or a path
#: would change what runs, so those transformations skip them.
_BUILTINS = frozenset(
    {
        ".",
        ":",
        "alias",
        "bg",
        "builtin",
        "cd",
        "command",
        "declare",
        "eval",
        "exec",
        "exit",
        "export",
        "fg",
        "hash",
        "jobs",
        "let",
        "local",
        "read",
        "readonly",
        "return",
        "set",
        "shift",
        "shopt",
        "source",
        "trap",
        "type",
        "typeset",
        "ulimit",
        "umask",
        "unalias",
        "unset",
        "wait",
    }
)


def _refuse(command: str, what: str) -> ValueError:
    msg = (
        f"{command!r}: {what} is beyond what bypass_variants reads "
        "(simple commands joined by | || && ; & only)"
    )
    return ValueError(msg)


def _lex(command: str) -> list[str]:
    """Split *command* into raw words and list/pipe operators."""
    tokens: list[str] = []
    word = ""
    i = 0
    while i < len(command):
        op = next((o for o in _OPERATORS if command.startswith(o, i)), None)
        if command[i] in " \t" or op is not None:
            if word:
                tokens.append(word)
                word = ""
            if op is not None:
                tokens.append(op)
            i += len(op) if op is not None else 1
            continue
        if command[i] == "#" and not word:
            raise _refuse(command, "a comment")
        part = _word_part(command, i)
        word += part
        i += len(part)
    if word:
        tokens.append(word)
    return tokens


def _word_part(command: str, i: int) -> str:
    """The piece of a word at *i*: a character, an escape or a quotation."""
    char = command[i]
    if char in _REFUSED or command.startswith("$(", i):
        raise _refuse(command, repr("$(" if char == "$" else char))
    if char == "\\":
        if i + 1 >= len(command) or command[i + 1] in "\n\r":
            raise _refuse(command, "a line continuation")
        return command[i : i + 2]
    if char not in "'\"":
        return char
    end = _closing_quote(command, i)
    if end < 0:
        raise _refuse(command, "an unbalanced quote")
    quoted = command[i : end + 1]
    if char == '"' and ("`" in quoted or "$(" in quoted):
        raise _refuse(command, "a substitution")
    return quoted


def _closing_quote(command: str, start: int) -> int:
    quote = command[start]
    i = start + 1
    while i < len(command):
        if command[i] == "\\" and quote == '"':
            i += 2
            continue
        if command[i] == quote:
            return i
        i += 1
    return -1


@dataclass
class _Segment:
    """One simple command, as words kept exactly as written."""

    assignments: list[str]
    program: str
    args: list[str]
    wrappers: list[list[str]] = field(default_factory=list)
    #: whether a wrapper or a path would run the same program: the program
    #: as written is plain, and no shell builtin
    external: bool = field(init=False)

    def __post_init__(self) -> None:
        self.external = _PLAIN.fullmatch(self.program) is not None and (
            self.name not in _BUILTINS
        )

    def words(self) -> list[str]:
        inner = [w for wrapper in self.wrappers for w in wrapper]
        return [*self.assignments, *inner, self.program, *self.args]

    @property
    def name(self) -> str:
        """The program's basename, as far as it is plain."""
        return self.program.rsplit("/", 1)[-1]


def _segments(command: str) -> tuple[list[_Segment], list[str]]:
    """
    The simple commands of *command* and the operators after them (one
    fewer than the commands, or as many when a `;` or `&` ends the line).
    """
    segments: list[_Segment] = []
    operators: list[str] = []
    words: list[str] = []
    for token in _lex(command):
        if token not in _OPERATORS:
            words.append(token)
            continue
        if not words:
            msg = f"{command!r}: {token!r} with no command before it"
            raise ValueError(msg)
        segments.append(_segment(command, words))
        operators.append(token)
        words = []
    if words:
        segments.append(_segment(command, words))
    elif not operators or operators[-1] not in {";", "&"}:
        msg = f"{command!r}: no command, or one cut off after an operator"
        raise ValueError(msg)
    return segments, operators


def _segment(command: str, words: list[str]) -> _Segment:
    assignments = []
    while words and _ASSIGNMENT.match(words[0]):
        assignments.append(words.pop(0))
    if not words:
        msg = f"{command!r}: a command of only assignments runs nothing"
        raise ValueError(msg)
    if words[0] in _RESERVED:
        msg = f"{command!r}: {words[0]!r} is shell syntax, not a program"
        raise ValueError(msg)
    return _Segment(assignments, words[0], words[1:])


# --- flag tables --------------------------------------------------------


@dataclass(frozen=True)
class _Flags:
    """What getopt knows about one program's short flags."""

    boolean: str  # flags that take no value
    order_free: str  # boolean flags whose order among themselves is moot
    valued: str = ""  # flags whose value is the rest of the word, or the next
    long: frozenset[str] = frozenset()  # boolean long options


#: Programs whose flags may be split, merged and reordered. Flags that
#: override each other (`rm -f`/`-i`, `ls -l`/`-1`, `ls -F`/`-p`,
#: `curl -s`/`-v`) are left out of `order_free`, so no reordering changes
#: which one wins. A letter in no string stops the helper from touching
#: that word or any after it.
_FLAGS: dict[str, _Flags] = {
    "rm": _Flags(
        "fiIrRdv",
        "rRfdv",
        long=frozenset(
            {
                "--recursive",
                "--force",
                "--dir",
                "--verbose",
                "--no-preserve-root",
                "--one-file-system",
            }
        ),
    ),
    "ls": _Flags("aAlhRrFdi1StUXcuGgnops", "alhRrdiGgnos", "ITw"),
    "cat": _Flags("AbeEnstTuv", "AbeEnstTuv"),
    "curl": _Flags("fsSLkIiGjNOv", "fsSLkj", "odHXuAeEmrTxbcKwzYyFCDUQtP"),
    "wget": _Flags("qvNcrkpbSxd", "qNcrkpbSx", "OoaPtTUeiBlARn"),
}

#: Spellings of one option that getopt treats alike, per command prefix.
_SYNONYMS: dict[tuple[str, ...], tuple[tuple[str, ...], ...]] = {
    ("rm",): (
        ("-r", "-R", "--recursive"),
        ("-f", "--force"),
        ("-d", "--dir"),
        ("-v", "--verbose"),
    ),
    ("git", "push"): (("-f", "--force"),),
}


def _cluster(word: str, table: _Flags) -> tuple[str, str] | None:
    """
    A short-option word read as getopt reads it: its boolean letters and
    its valued letter with the value attached (`-qO-` -> `("q", "O-")`),
    or `None` when a letter is unknown.
    """
    if not word.startswith("-") or word.startswith("--") or len(word) < 2:  # noqa: PLR2004 - a dash and a letter
        return None
    for j, char in enumerate(word[1:], start=1):
        if char in table.valued:
            return word[1:j], word[j:]
        if char not in table.boolean:
            return None
    return word[1:], ""


def _flag_span(seg: _Segment) -> tuple[int, _Flags] | None:
    """
    How many leading arguments of *seg* are options this module
    understands (stopping at the first operand, `--`, or anything unknown),
    with the program's flag table.
    """
    table = _FLAGS.get(seg.name)
    if table is None or not seg.external:
        return None
    end = 0
    while end < len(seg.args):
        word = seg.args[end]
        if not _PLAIN.fullmatch(word):
            break
        if word.startswith("--"):
            if word not in table.long:
                break
            end += 1
            continue
        parsed = _cluster(word, table)
        if parsed is None:
            break
        end += 2 if _value_follows(word, table) else 1
    end = min(end, len(seg.args))
    return (end, table) if end else None


def _value_follows(word: str, table: _Flags) -> bool:
    """Whether the next word is the value of *word*'s last option."""
    parsed = _cluster(word, table)
    return parsed is not None and len(parsed[1]) == 1


def _clusters(seg: _Segment) -> list[int]:
    """Indexes of the words holding two or more short options."""
    span = _flag_span(seg)
    if span is None:
        return []
    end, table = span
    found, i = [], 0
    while i < end:
        parsed = _cluster(seg.args[i], table)
        if parsed is not None:
            letters, valued = parsed
            if len(letters) + bool(valued) > 1:
                found.append(i)
            i += 2 if _value_follows(seg.args[i], table) else 1
        else:
            i += 1
    return found


def _split(seg: _Segment, rng: random.Random) -> bool:
    """`-rf` -> `-r -f`; `-qO-` -> `-q -O-` or `-q -O -`."""
    candidates = _clusters(seg)
    if not candidates:
        return False
    i = rng.choice(candidates)
    parsed = _cluster(seg.args[i], _FLAGS[seg.name])
    if parsed is None:  # pragma: no cover - _clusters only finds clusters
        return False
    letters, valued = parsed
    parts = [f"-{c}" for c in letters]
    if len(valued) > 1 and rng.random() < 0.5:  # noqa: PLR2004 - a coin
        parts += [f"-{valued[0]}", valued[1:]]
    elif valued:
        parts.append(f"-{valued}")
    seg.args[i : i + 1] = parts
    return True


def _single_runs(
    seg: _Segment, letters: Callable[[_Flags], str]
) -> list[tuple[int, int]]:
    """Runs `[start, end)` of two or more one-letter flags from *letters*."""
    span = _flag_span(seg)
    if span is None:
        return []
    end, table = span
    allowed = letters(table)
    runs: list[tuple[int, int]] = []
    start: int | None = None
    for i in range(end + 1):
        word = seg.args[i] if i < end else ""
        single = (
            len(word) == 2  # noqa: PLR2004 - a dash and one letter
            and word[0] == "-"
            and word[1] in allowed
            and not (i and _value_follows(seg.args[i - 1], table))
        )
        if single and start is None:
            start = i
        elif not single and start is not None:
            if i - start >= 2:  # noqa: PLR2004 - a run is two or more
                runs.append((start, i))
            start = None
    return runs


def _merge(seg: _Segment, rng: random.Random) -> bool:
    """`-r -f` -> `-rf` (boolean flags only)."""
    runs = _single_runs(seg, lambda t: t.boolean)
    if not runs:
        return False
    start, end = rng.choice(runs)
    seg.args[start:end] = ["-" + "".join(w[1] for w in seg.args[start:end])]
    return True


def _reorder(seg: _Segment, rng: random.Random) -> bool:
    """`-rf` -> `-fr`; `-r -f` -> `-f -r` (order-free flags only)."""
    table = _FLAGS.get(seg.name)
    if table is None:
        return False
    clusters = [
        i
        for i in _clusters(seg)
        if len(set(seg.args[i][1:])) > 1
        and all(c in table.order_free for c in seg.args[i][1:])
    ]
    runs = [
        (start, end)
        for start, end in _single_runs(seg, lambda t: t.order_free)
        if len(set(seg.args[start:end])) > 1
    ]
    choices = [(i, i + 1) for i in clusters] + runs
    if not choices:
        return False
    start, end = rng.choice(choices)
    if end - start == 1:
        seg.args[start] = "-" + "".join(_shuffled(seg.args[start][1:], rng))
    else:
        seg.args[start:end] = _shuffled(seg.args[start:end], rng)
    return True


def _shuffled(items: Sequence[str], rng: random.Random) -> list[str]:
    out = list(items)
    while out == list(items):
        rng.shuffle(out)
    return out


def _synonym(seg: _Segment, rng: random.Random) -> bool:
    """`-r` <-> `-R` <-> `--recursive`, `-f` <-> `--force` (rm, git push)."""
    if not seg.external:
        return False
    for prefix, groups in _SYNONYMS.items():
        head = (seg.name, *seg.args[: len(prefix) - 1])
        if head != prefix:
            continue
        offset = len(prefix) - 1
        span = _flag_span(seg)
        end = span[0] if span is not None else _git_flag_end(seg, offset)
        hits = [
            (i, group)
            for i in range(offset, end)
            for group in groups
            if seg.args[i] in group
        ]
        if not hits:
            return False
        i, group = rng.choice(hits)
        seg.args[i] = rng.choice([s for s in group if s != seg.args[i]])
        return True
    return False


def _git_flag_end(seg: _Segment, offset: int) -> int:
    """The end of the `git push` options this module may respell."""
    end = offset
    while end < len(seg.args) and seg.args[end] in {"-f", "--force"}:
        end += 1
    return end


# --- the other transformations ------------------------------------------


def _quote(word: str, rng: random.Random) -> str:
    forms = [f"'{word}'", f'"{word}"', f"\\{word}"]
    if len(word) > 1:
        forms += [f"{word[0]}''{word[1:]}", f'{word[0]}""{word[1:]}']
    return rng.choice(forms)


def _quote_program(seg: _Segment, rng: random.Random) -> bool:
    r"""`rm` -> `'rm'`, `"rm"`, `r''m`, `r""m`, `\rm`."""
    if _PLAIN.fullmatch(seg.program) is None or "=" in seg.program:
        return False
    seg.program = _quote(seg.program, rng)
    return True


def _quote_argument(seg: _Segment, rng: random.Random) -> bool:
    """A plain argument quoted: `-rf` -> `'-rf'`, `/` -> `"/"`."""
    plain = [i for i, w in enumerate(seg.args) if _PLAIN.fullmatch(w)]
    if not plain:
        return False
    i = rng.choice(plain)
    seg.args[i] = _quote(seg.args[i], rng)
    return True


def _path(seg: _Segment, rng: random.Random) -> bool:
    """`rm` -> `/bin/rm` or `/usr/bin/rm`."""
    if not seg.external or "/" in seg.program:
        return False
    seg.program = rng.choice(("/bin/", "/usr/bin/")) + seg.program
    return True


#: Wrappers that run their command as the same user, with the same
#: arguments and environment (`timeout` bounds the run time, `nice` lowers
#: the priority, `stdbuf` changes buffering, `nohup` ignores hang-ups).
_WRAPPERS: tuple[tuple[str, ...], ...] = (
    ("env",),
    ("nice",),
    ("nohup",),
    ("timeout", "9"),
    ("stdbuf", "-o0"),
)
_PRIVILEGED: tuple[tuple[str, ...], ...] = (("sudo",), ("doas",))


def _wrap(seg: _Segment, rng: random.Random) -> bool:
    """`rm ...` -> `env rm ...`, `command nice timeout 9 rm ...`."""
    if not seg.external:
        return False
    for _ in range(rng.randint(1, 2)):
        wrapper = rng.choice((*_WRAPPERS, ("command",)))
        if wrapper == ("command",):
            # `command` is a shell builtin: it can only be outermost.
            if seg.wrappers[:1] != [["command"]]:
                seg.wrappers.insert(0, ["command"])
        else:
            low = 1 if seg.wrappers[:1] == [["command"]] else 0
            seg.wrappers.insert(
                rng.randint(low, len(seg.wrappers)), list(wrapper)
            )
    return True


def _privilege(seg: _Segment, rng: random.Random) -> bool:
    """`rm ...` -> `sudo rm ...` or `doas rm ...` (not meaning-preserving)."""
    if not seg.external:
        return False
    low = 1 if seg.wrappers[:1] == [["command"]] else 0
    where = rng.randint(low, len(seg.wrappers))
    seg.wrappers.insert(where, list(rng.choice(_PRIVILEGED)))
    return True


def _assign(seg: _Segment, _: random.Random) -> bool:
    """A harmless `NO_COLOR=1` before the command."""
    if "NO_COLOR=1" in seg.assignments:
        return False
    seg.assignments.insert(0, "NO_COLOR=1")
    return True


_Transform = Callable[[_Segment, random.Random], bool]
_FLAG_TRANSFORMS: tuple[_Transform, ...] = (_split, _merge, _reorder, _synonym)
_OTHER_TRANSFORMS: tuple[_Transform, ...] = (
    _wrap,
    _assign,
    _path,
    _quote_program,
    _quote_argument,
)
_SPACES = (" ", "  ", "\t", " \t", "\t ")
_OPERATOR_SPACES = ("", " ", "  ", "\t")


def _render(
    segments: Sequence[_Segment],
    operators: Sequence[str],
    rng: random.Random,
    *,
    spaced: bool,
) -> str:
    def sep() -> str:
        return rng.choice(_SPACES) if spaced else " "

    parts = []
    for k, seg in enumerate(segments):
        parts.append(sep().join(seg.words()))
        if k < len(operators):
            around = rng.choice(_OPERATOR_SPACES) if spaced else " "
            parts.append(f"{around}{operators[k]}{around}")
    text = "".join(parts)
    if spaced:
        text = rng.choice(("", " ", "\t")) + text + rng.choice(("", " ", "\t"))
    return text


#: How often each of the other transformations, and odd whitespace, is used.
_CHANCE = 0.4


def _one_variant(command: str, rng: random.Random, *, privileged: bool) -> str:
    segments, operators = _segments(command)
    # Flag respellings first, while the words are still plain; then the
    # wrappers, the assignment, paths and quoting (in that order, so that
    # quoting the program never hides it from the wrappers).
    kinds = rng.sample(_FLAG_TRANSFORMS, rng.randint(0, len(_FLAG_TRANSFORMS)))
    kinds += [t for t in _OTHER_TRANSFORMS if rng.random() < _CHANCE]
    for transform in kinds:
        transform(rng.choice(segments), rng)
    if privileged:
        _privilege(rng.choice([s for s in segments if s.external]), rng)
    return _render(segments, operators, rng, spaced=rng.random() < _CHANCE)


def bypass_variants(
    command: str,
    *,
    seed: int | None = None,
    count: int = 20,
    privileged: bool = False,
) -> Iterator[str]:
    r"""
    Yield up to *count* distinct respellings of *command* that a POSIX
    shell runs exactly as it runs *command* itself.

    Feed each to your policy and compare with the plain form: a policy
    that can be talked around by one of these has a bypass.

    *command* is a simple command, or simple commands joined by `|`, `||`,
    `&&`, `;` or `&`, with ordinary quoting; redirections, substitutions,
    subshells, groups, comments and new lines are refused (`ValueError`).
    Each variant applies a random mix of these transformations, each of
    which preserves meaning:

    - **flags**, for programs whose flags the helper knows (`rm`, `ls`,
      `cat`, `curl`, `wget`) and only in the leading options, before the
      first operand or `--`: splitting a cluster (`-rf` -> `-r -f`,
      `-qO-` -> `-q -O -`), merging single boolean flags (`-r -f` ->
      `-rf`), reordering flags that do not override each other (`-rf` ->
      `-fr`; never `rm -f`/`-i`), which getopt parses alike;
    - **long and short forms**: `rm` `-r`/`-R`/`--recursive`,
      `-f`/`--force`, `-d`/`--dir`, `-v`/`--verbose`; `git push`
      `-f`/`--force`;
    - **quoting that changes nothing**: the program as `'rm'`, `"rm"`,
      `r''m`, `r""m` or `\rm`, and likewise one plain argument (one with
      no `$`, `~`, glob or brace that quoting would switch off);
    - **absolute paths**: `rm` -> `/bin/rm` or `/usr/bin/rm` (the same
      program on a merged-`/usr` system);
    - **wrappers** that run the command as the same user with the same
      arguments: `env`, `command` (the shell builtin, so always
      outermost), `nice`, `nohup`, `timeout 9`, `stdbuf -o0`, one or two
      nested; never around a shell builtin such as `cd` or `eval`;
    - **a harmless assignment**: `NO_COLOR=1` before the command (a
      variable on capscope's harmless list: any other makes a command
      unresolved);
    - **whitespace**: spaces and tabs between words, around operators, and
      at either end.

    With *privileged*, every variant also runs one of its commands under
    `sudo` or `doas`: that changes who runs it, so a policy should treat it
    as at least as risky as the plain form, never as less.

    Args:
        command: the plain form.
        seed: makes the sequence reproducible; `None` draws a fresh one.
        count: how many variants at most (fewer when the command has fewer
            distinct spellings than that).
        privileged: add a `sudo` or `doas` wrapper to every variant.

    Raises:
        ValueError: *command* is beyond the subset described above, or
            *privileged* is set and no program in it is one `sudo` could
            run (only shell builtins, or a program behind quotes or `$`).

    Examples:
        >>> from capscope.testing import bypass_variants
        >>> for variant in bypass_variants("rm -rf /", seed=1, count=3):
        ...     print(variant)
        command timeout 9 rm -r -f /
        NO_COLOR=1 /bin/rm -r -f /
        rm -r -f /
        >>> next(bypass_variants("ls -la", seed=1, privileged=True))
        'command timeout 9 sudo ls -l -a'
    """
    # Refuse an unreadable command now, not at the first next().
    segments, _ = _segments(command)
    if privileged and not any(s.external for s in segments):
        msg = f"{command!r}: no program that sudo or doas could run"
        raise ValueError(msg)
    return _variants(command, seed, count, privileged=privileged)


def _variants(
    command: str, seed: int | None, count: int, *, privileged: bool
) -> Iterator[str]:
    rng = random.Random(seed)  # noqa: S311 - spellings, not secrets
    seen = {command}
    attempts = 0
    while len(seen) <= count and attempts < 50 * max(count, 1):
        attempts += 1
        variant = _one_variant(command, rng, privileged=privileged)
        if variant not in seen:
            seen.add(variant)
            yield variant


# --- isolation and leak checks --------------------------------------------

#: What `isolated()` and `install_policy()` take: policy-file data (the
#: mapping `load_policy_data` reads), the path of a policy file, or a Scope.
_PolicySource: TypeAlias = "Scope | Mapping[str, Any] | str | os.PathLike[str]"
_Var: TypeAlias = ContextVar[FrameToken | None]
_Baseline: TypeAlias = Mapping[_Var, FrameToken | None]

# Why a context variable: a leak check's baseline belongs to the context it
# watches. An async test body runs in a *copy* of its fixtures' context, so
# a policy it keeps with install_policy() must move the baselines of that
# copy only, never what the fixture's teardown (in the original) expects.
# The value is a tuple of (watch, baseline) pairs, replaced, never mutated.
_WATCHES: ContextVar[tuple[tuple[object, _Baseline], ...]] = ContextVar(
    "capscope.testing.watches", default=()
)


def _as_scope(source: _PolicySource) -> Scope:
    """The Scope *source* describes (loaded through capscope's loaders)."""
    if isinstance(source, Scope):
        return source
    if isinstance(source, Mapping):
        return load_policy_data(source)
    if isinstance(source, str | os.PathLike):
        return load_policy_file(source)
    msg = (
        "expected policy-file data (a mapping), the path of a policy file "
        f"or a Scope, got {source!r:.80}"
    )
    raise TypeError(msg)


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 100 else text[:97] + "..."  # noqa: PLR2004 - one line


@final
@attrs.frozen
class Leak:
    """
    One stack that a checked block did not leave as it found it.

    Attributes:
        stack: the `AmbientStack` or `AmbientCounter` (registered or not).
        frames: the values left on top of where the block started,
            outermost first (a counter's are `None`); when *unwound*, every
            value the stack holds now.
        unwound: the block popped frames it did not push, or replaced the
            stack's contents, so it no longer continues from its start.

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import Leak
        >>> tenant = cs.AmbientStack("doc_leak", inherit=cs.Inherit.COPY)
        >>> print(Leak(tenant, ("acme",)))
        'doc_leak': 1 frame left, top 'acme'
    """

    stack: AmbientStack[Any] | AmbientCounter
    frames: tuple[Any, ...]
    unwound: bool = False

    def __str__(self) -> str:
        name = repr(self.stack.name)
        count = len(self.frames)
        if self.unwound:
            now = f"top {_short(self.frames[-1])}" if count else "empty"
            return (
                f"{name}: not continuing from where the block started "
                f"(frames below it were popped, or the stack was replaced); "
                f"now {count} frame{'s' * (count != 1)}, {now}"
            )
        if isinstance(self.stack, AmbientCounter):
            return f"{name} (a counter): left raised by {count}"
        plural = "s" * (count != 1)
        return f"{name}: {count} frame{plural} left, top {_short(self.frames[-1])}"


@final
class LeakedFrames(AssertionError):
    """
    A checked block (`isolated()`, `no_leaks()`, the pytest fixtures) left
    frames on one or more stacks. The message names each stack and its
    top frame; `.leaks` holds the details (`Leak`s).

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import LeakedFrames, isolated
        >>> tenant = cs.AmbientStack("doc_leaked", inherit=cs.Inherit.COPY)
        >>> try:
        ...     with isolated():
        ...         _ = tenant.push("acme")  # never popped
        ... except LeakedFrames as e:
        ...     print(e.leaks[0].stack.name, e.leaks[0].frames)
        doc_leaked ('acme',)
        >>> tenant.top() is None  # restored all the same
        True
    """

    def __init__(self, leaks: Sequence[Leak]) -> None:
        super().__init__(tuple(leaks))
        self.leaks: tuple[Leak, ...] = tuple(leaks)

    def __str__(self) -> str:
        count = len(self.leaks)
        lines = [
            f"frames were left on {count} capscope stack{'s' * (count != 1)}:",
            *(f"  {leak}" for leak in self.leaks),
            (
                "Pop every frame you push (`with stack.pushed(...)`, "
                "`with capscope.using(...)`), or keep a policy for the rest "
                "of the block with capscope.testing.install_policy()."
            ),
        ]
        return "\n".join(lines)


def _snapshot() -> dict[_Var, FrameToken | None]:
    return {var: var.get() for var in all_vars()}


def _leaks(baseline: _Baseline) -> list[tuple[_Var, Leak]]:
    """Each stack whose top is not its *baseline* frame, with its Leak."""
    found = []
    for var in all_vars():
        start = baseline.get(var)
        top = var.get()
        if top is start:
            continue
        left = []
        frame = top
        while frame is not None and frame is not start:
            left.append(frame[_VALUE])
            frame = frame[_PARENT]
        left.reverse()
        owner = (top if top is not None else start)[_OWNER]  # type: ignore[index]  # one is set
        found.append((var, Leak(owner, tuple(left), frame is not start)))
    return found


class _Watch:
    """
    One leak check: a baseline of every stack, kept in `_WATCHES` of the
    context that started it (and of copies made from it since).
    """

    __slots__ = ()

    def _start(self) -> None:
        _WATCHES.set((*_WATCHES.get(), (self, _snapshot())))

    def _baseline(self) -> _Baseline:
        for watch, baseline in _WATCHES.get():
            if watch is self:
                return baseline
        msg = (
            f"{self!r} is not active in this context (not entered, exited "
            "already, or entered in a context this one was not copied from)"
        )
        raise RuntimeError(msg)

    def _stop(self, exc: BaseException | None) -> None:
        """
        End the check: put back every stack that is not at its baseline,
        then raise `LeakedFrames` naming them (or, when the block raised
        *exc*, add that as a note to *exc*, which goes on propagating).
        """
        __tracebackhide__ = True
        watches = _WATCHES.get()
        baseline = next((b for w, b in watches if w is self), None)
        # Removed by identity, not reset by token: an inner check started
        # later may have ended since, and a kept policy updated every entry.
        _WATCHES.set(tuple(entry for entry in watches if entry[0] is not self))
        if baseline is None:
            return  # ended in a context that never saw it start
        found = _leaks(baseline)
        for var, _ in found:
            var.set(baseline.get(var))
        if not found:
            return
        error = LeakedFrames([leak for _, leak in found])
        if exc is None:
            raise error
        exc.add_note(str(error))

    def leaks(self) -> tuple[Leak, ...]:
        """
        The stacks not at their baseline now, in this context.

        Raises:
            RuntimeError: the check is not active in this context.
        """
        return tuple(leak for _, leak in _leaks(self._baseline()))

    def check(self) -> None:
        """
        Raise `LeakedFrames` if a stack is not at its baseline now (and
        change nothing).

        Raises:
            LeakedFrames: a stack has frames it should not have.
            RuntimeError: the check is not active in this context.
        """
        __tracebackhide__ = True
        found = self.leaks()
        if found:
            raise LeakedFrames(found)


def _keep(frames: Mapping[_Var, FrameToken | None]) -> None:
    """Make *frames* the baseline tops of every active check here."""
    _WATCHES.set(
        tuple(
            (watch, {**baseline, **frames})
            for watch, baseline in _WATCHES.get()
        )
    )


def _install(push: Callable[[], object], what: str) -> None:
    """Run *push* and keep what it pushed for the rest of the checks."""
    if not _WATCHES.get():
        msg = (
            f"{what} keeps a policy for the rest of an isolated() or "
            "no_leaks() block, and there is none here; push it with `with "
            "capscope.using(...)` or `with scope.installed()` instead"
        )
        raise RuntimeError(msg)
    before = _snapshot()
    push()
    _keep(
        {
            var: top
            for var, top in _snapshot().items()
            if top is not before.get(var)
        }
    )


@final
class IsolatedScope(_Watch):
    """
    What `isolated()` returns: a context manager that installs a scope,
    checks for leaks and restores the prior state.

    While it is active, `leaks()` lists what the block has left so far
    and `check()` raises for it.

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import isolated
        >>> tenant = cs.AmbientStack("doc_iso", inherit=cs.Inherit.COPY)
        >>> with isolated() as iso:
        ...     token = tenant.push("acme")
        ...     print(iso.leaks()[0])
        ...     tenant.pop(token)
        ...     iso.leaks()
        'doc_iso': 1 frame left, top 'acme'
        ()
    """

    __slots__ = ("_installed", "_scope")

    def __init__(self, scope: Scope) -> None:
        self._scope = scope
        self._installed: Any = None

    def __repr__(self) -> str:
        return f"<IsolatedScope of {self._scope!r}>"

    @property
    def scope(self) -> Scope:
        """
        The scope installed for the block.

        Examples:
            >>> from capscope.testing import isolated
            >>> isolated().scope
            <Scope empty>
        """
        return self._scope

    def __enter__(self) -> Self:
        if self._installed is not None:
            msg = "this isolated() block is already entered"
            raise RuntimeError(msg)
        installed = self._scope.installed()
        installed.__enter__()
        self._installed = installed
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> None:
        __tracebackhide__ = True
        installed, self._installed = self._installed, None
        if installed is None:
            return
        try:
            self._stop(exc)
        finally:
            installed.__exit__(exc_type, exc, tb)


def isolated(policy: _PolicySource | None = None) -> IsolatedScope:
    """
    Run a `with` block isolated from the caller's capscope state, and fail
    it if it leaves frames behind.

    On entry every capscope stack is emptied and every counter set to 0
    (as `Scope.empty()`), then *policy* is installed if given: policy-file
    data (a mapping, read by `capscope.load_policy_data`), the path of a
    TOML or JSON policy file (`capscope.load_policy_file`), or a `Scope`.
    On exit, every stack (built-in, third-party or unregistered, counters
    included) must be as the block found it, apart from what
    `install_policy()` kept: otherwise `LeakedFrames` names each stack and
    its top frame. The caller's state is restored either way. When the
    block raises, its exception propagates with the leaks as a note.

    Each stack is checked in the context that exits the block. An async
    body run in a task of its own leaves its frames in that task's context,
    out of sight: check such a body with `no_leaks()` inside the task.

    Raises:
        LeakedFrames: on exit, the block left frames behind.
        PolicyFileError: *policy* cannot be loaded.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import isolated
        >>> from capscope.stacks import execution
        >>> with cs.using(execution=CapabilityPolicy(tools=["shell"])):
        ...     with isolated({"execution": {"tools": ["fs.read"]}}):
        ...         execution.top().tools
        ...     execution.top().tools
        ('fs.read',)
        ('shell',)
    """
    return IsolatedScope(
        Scope.empty() if policy is None else _as_scope(policy)
    )


@final
class _NoLeaks(_Watch):
    """The context manager `no_leaks()` returns."""

    __slots__ = ("_active",)

    def __init__(self) -> None:
        self._active = False

    def __repr__(self) -> str:
        return "<no_leaks check>"

    def __enter__(self) -> Self:
        if self._active:
            msg = "this no_leaks() block is already entered"
            raise RuntimeError(msg)
        self._active = True
        self._start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: object,
    ) -> None:
        __tracebackhide__ = True
        if self._active:
            self._active = False
            self._stop(exc)


def no_leaks() -> _NoLeaks:
    """
    Check that a `with` block leaves every capscope stack as it found it,
    without isolating it: the block sees the caller's policies.

    On exit, a stack with frames the block left on it (or one the block
    unwound below where it started) is put back and named in a
    `LeakedFrames` (a note on the block's own exception, if it raised).
    Frames kept with `install_policy()` inside the block are expected.
    Works inside a task: `async def` bodies may use it around their
    awaits (the pytest plugin wraps async tests in it this way).

    Raises:
        LeakedFrames: on exit, the block left frames behind.

    Examples:
        >>> import capscope as cs
        >>> from capscope.testing import LeakedFrames, no_leaks
        >>> tenant = cs.AmbientStack("doc_no_leaks", inherit=cs.Inherit.COPY)
        >>> with no_leaks():
        ...     with tenant.pushed("fine"):
        ...         pass
        >>> try:
        ...     with no_leaks():
        ...         _ = tenant.push("left")
        ... except LeakedFrames as e:
        ...     print(e)
        frames were left on 1 capscope stack:
          'doc_no_leaks': 1 frame left, top 'left'
        Pop every frame you push (`with stack.pushed(...)`, `with capscope.using(...)`), or keep a policy for the rest of the block with capscope.testing.install_policy().
    """
    return _NoLeaks()


def _push_scope(scope: Scope) -> None:
    """Push every stack's frames of *scope* onto the current stacks."""
    ctx = scope.context()
    pushed: list[tuple[AmbientStack[Any], FrameToken]] = []
    try:
        for var in all_vars():
            frame = ctx.get(var)
            if frame is None:
                continue
            owner = frame[_OWNER]
            if not isinstance(owner, AmbientStack):
                continue  # counters are not policies
            for value in frames_of(frame):
                # One at a time: each token is kept as soon as it exists,
                # for the unwind below.
                pushed.append((owner, owner.push(value)))  # noqa: PERF401
    except BaseException:
        for owner, token in reversed(pushed):
            owner.pop(token)
        raise


def install_policy(policy: _PolicySource) -> None:
    """
    Push *policy* onto the current stacks for the rest of the enclosing
    `isolated()` (or `no_leaks()`) block, which counts its frames as
    expected and drops them on exit.

    *policy* is read as by `isolated()`. Its values are pushed on top of
    what is there, through each stack's `narrow` as a policy file layers:
    an execution ceiling only narrows (asking for more raises
    `CeilingExceeded`), approval rules add up, command and permission
    frames are all checked. Call it at the block's top level, not inside
    a `with` that pops something after it.

    Raises:
        RuntimeError: there is no enclosing `isolated()` or `no_leaks()`
            block in this context.
        CeilingExceeded: *policy* asks for more than the stacks allow.
        PolicyFileError: *policy* cannot be loaded.

    Examples:
        >>> from capscope.stacks import execution
        >>> from capscope.testing import install_policy, isolated
        >>> with isolated({"execution": {"tools": ["fs.*", "shell"]}}):
        ...     install_policy({"execution": {"tools": ["fs.*"]}})
        ...     execution.top().tools
        ('fs.*',)
        >>> execution.top() is None
        True
    """
    if isinstance(policy, Scope):
        scope = policy
    else:
        # Loading pushes onto an empty scope of its own: mute that, so the
        # one root-policy event is the push below, where it happens.
        with muted():
            scope = _as_scope(policy)
    _install(lambda: _push_scope(scope), "install_policy()")


# --- scripted approvals ---------------------------------------------------

#: One scripted answer.
_Answer: TypeAlias = bool | ApprovalDecision | Literal["allow", "deny"]
_AnswerFunction: TypeAlias = Callable[[ApprovalRequest], object]


def _checked_answers(answers: Iterable[_Answer]) -> list[_Answer]:
    if isinstance(answers, str):
        msg = (
            f"answers is a list of answers, not one string: did you mean "
            f"[{answers!r}]?"
        )
        raise TypeError(msg)
    checked = list(answers)
    for index, answer in enumerate(checked):
        if not (
            isinstance(answer, bool | ApprovalDecision)
            or (isinstance(answer, str) and answer in {"allow", "deny"})
        ):
            msg = (
                f"answer {index} is {answer!r:.60}: expected True, False, "
                "'allow', 'deny' or an ApprovalDecision"
            )
            raise TypeError(msg)
    return checked


def _normalised(answer: object) -> object:
    if answer == "allow" and isinstance(answer, str):
        return True
    if answer == "deny" and isinstance(answer, str):
        return False
    return answer


@final
class ScriptedApprover:
    """
    An approval handler for tests: it answers from a script and records
    every `ApprovalRequest` it gets, in order.

    *answers* is either a list, answered in order, of `True`/`"allow"`,
    `False`/`"deny"` or `ApprovalDecision`s (to remember an answer for the
    scope, or give a reason); or a function `request -> answer`, which may
    also return anything else (capscope denies what is not a clear grant).
    When the list runs out, each further request is **denied**, with a
    reason that says so, and kept in `unanswered`; a test that expected
    more answers then fails on the `ApprovalDenied`.

    It is a synchronous handler, so it serves sync and async tool calls
    alike (capscope runs a sync handler of an async call in a thread).
    Install it with `policy()` (a `ToolApprovalPolicy` with this handler
    and no timeout, so a sync call asks it inline) or, for the rest of an
    `isolated()` block, with `install()`.

    Attributes:
        requests: every request asked, oldest first.
        unanswered: the requests the list had no answer left for.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import ScriptedApprover
        >>> @cs.needs_approval("deploy")
        ... def deploy(env):
        ...     return f"deployed {env}"
        >>> approver = ScriptedApprover(["allow", "deny"])
        >>> with cs.using(execution=CapabilityPolicy.unrestricted(), approval=approver.policy()):
        ...     deploy("staging")
        ...     try:
        ...         deploy("prod")
        ...     except cs.ApprovalDenied as e:
        ...         print(e)
        'deployed staging'
        denied by the handler
        >>> print(*(r.arguments["env"] for r in approver.requests))
        staging prod
    """

    def __init__(
        self, answers: Iterable[_Answer] | _AnswerFunction = ()
    ) -> None:
        # Why a lock: capscope asks a handler from whichever thread decides
        # (and from a worker thread for async calls and timeouts).
        self._lock = threading.Lock()
        self.requests: list[ApprovalRequest] = []
        self.unanswered: list[ApprovalRequest] = []
        self._function: _AnswerFunction | None = None
        self._queue: list[_Answer] = []
        self._scripted = 0
        self.answers = answers

    @property
    def answers(self) -> list[_Answer] | _AnswerFunction:
        """
        The answers not given yet (a copy), or the answering function. Set
        it to script a new list (or function) from now on.

        Examples:
            >>> from capscope.testing import ScriptedApprover
            >>> approver = ScriptedApprover()
            >>> approver.answers = ["allow", False]
            >>> approver.answers
            ['allow', False]
        """
        with self._lock:
            return (
                list(self._queue) if self._function is None else self._function
            )

    @answers.setter
    def answers(self, answers: Iterable[_Answer] | _AnswerFunction) -> None:
        if callable(answers):
            function: _AnswerFunction | None = answers
            queue: list[_Answer] = []
        else:
            function, queue = None, _checked_answers(answers)
        with self._lock:
            self._function, self._queue, self._scripted = (
                function,
                queue,
                len(queue),
            )

    def __repr__(self) -> str:
        with self._lock:
            source = (
                f"{len(self._queue)} answers left"
                if self._function is None
                else f"answering with {self._function!r:.40}"
            )
            return (
                f"<ScriptedApprover {source}, {len(self.requests)} requests>"
            )

    def __call__(self, request: ApprovalRequest) -> object:
        """Answer *request* (capscope calls this as the handler)."""
        with self._lock:
            self.requests.append(request)
            function = self._function
            if function is None:
                if not self._queue:
                    self.unanswered.append(request)
                    reason = (
                        f"ScriptedApprover has no answer left for "
                        f"{request.tool!r} (request {len(self.requests)}; "
                        f"{self._scripted} answers were scripted)"
                    )
                    return ApprovalDecision.deny(reason)
                return _normalised(self._queue.pop(0))
        # Outside the lock: a slow function must not hold up other threads.
        return _normalised(function(request))

    def policy(self, **options: Any) -> ToolApprovalPolicy:
        """
        A `ToolApprovalPolicy` with this approver as its handler and no
        timeout (so a sync call asks it inline, in the caller's thread);
        *options* are further fields (`rules=`, `timeout=`, ...).

        Examples:
            >>> from capscope.testing import ScriptedApprover
            >>> approver = ScriptedApprover([True])
            >>> approver.policy().handler is approver
            True
        """
        return ToolApprovalPolicy(
            **{"handler": self, "timeout": None, **options}
        )

    def install(self, **options: Any) -> Self:
        """
        Push `policy(**options)` onto the approval stack for the rest of
        the enclosing `isolated()` block (see `install_policy()`); returns
        the approver. Pushed over an approval policy, it keeps that
        policy's rules and replaces its handler.

        Raises:
            RuntimeError: there is no enclosing `isolated()` or
                `no_leaks()` block in this context.

        Examples:
            >>> from capscope.stacks import approval
            >>> from capscope.testing import ScriptedApprover, isolated
            >>> with isolated():
            ...     approver = ScriptedApprover(["allow"]).install()
            ...     approval.top().handler is approver
            True
        """
        policy = self.policy(**options)
        _install(lambda: approval.push(policy), "ScriptedApprover.install()")
        return self


# --- assertions -----------------------------------------------------------


def _tool_name(fn: object) -> str:
    try:
        return tool_spec(fn).name
    except (TypeError, KeyError, AttributeError):
        name = getattr(fn, "__qualname__", None)
        return name if isinstance(name, str) else repr(fn)


def _gate(gate: Gate | str | None) -> Gate | None:
    return None if gate is None else Gate(gate)


def _refuse_lazy(
    result: object, name: str, helper: str, *, awaited: bool = False
) -> None:
    """
    A TypeError for a result whose check has not run yet (*helper* is the
    sync helper's name; *awaited*: the async one was used).
    """
    if inspect.iscoroutine(result):
        result.close()  # never awaited: no "never awaited" warning
    if inspect.isawaitable(result):
        msg = (
            f"{name} returned an awaitable: its check runs when it is "
            f"awaited; use `await {helper}_async(...)`"
        )
        raise TypeError(msg)
    if inspect.isgenerator(result) or inspect.isasyncgen(result):
        step = "next" if inspect.isgenerator(result) else "anext"
        msg = (
            f"{name} returned a generator: its check runs at its first "
            f"step; step it in the call, e.g. "
            f"`{'await ' * awaited}{helper}{'_async' * awaited}"
            f"(lambda: {step}(gen(...)))`"
        )
        raise TypeError(msg)


def _denied_as_expected(
    name: str, exc: PolicyDenied, gate: Gate | None
) -> Decision:
    __tracebackhide__ = True
    decision = exc.decision
    at = "" if gate is None else f" at gate {gate.value!r}"
    if not isinstance(decision, Decision):
        msg = (
            f"expected {name} to be denied{at} by a capscope check but it "
            f"raised {exc!r:.100} with no decision attached"
        )
        raise AssertionError(msg) from exc  # noqa: TRY004 - a failed assertion
    if gate is not None and decision.gate is not gate:
        got = "no gate" if decision.gate is None else repr(decision.gate.value)
        msg = (
            f"expected {name} to be denied{at} but it was denied at {got}: "
            f"{decision.reason}"
        )
        raise AssertionError(msg) from exc
    return decision


def _not_denied(name: str, gate: Gate | None, what: str) -> AssertionError:
    at = "" if gate is None else f" at gate {gate.value!r}"
    return AssertionError(f"expected {name} to be denied{at} but {what}")


def _describe_denial(exc: PolicyDenied) -> str:
    decision = exc.decision
    if isinstance(decision, Decision) and decision.gate is not None:
        return f"at {decision.gate.value!r}: {decision.reason}"
    return f"({type(exc).__name__}): {exc}"


def assert_denied(
    fn: Callable[..., object],
    /,
    *args: Any,
    gate: Gate | str | None = None,
    **kwargs: Any,
) -> Decision:
    """
    Call `fn(*args, **kwargs)` and assert that capscope refused it
    (`PolicyDenied` or a subclass), at *gate* if given; return the
    refusing `Decision`.

    *fn* is a decorated tool (or any callable that calls one). When the
    call is allowed, denied at another gate or raises something else, the
    `AssertionError` says what happened instead, e.g. `expected fs.write
    to be denied at gate 'tool_ceiling' but it was denied at
    'workspace_boundary': ...`. A coroutine function's check runs when
    awaited: use `assert_denied_async`.

    Raises:
        AssertionError: the call was not denied as expected.
        TypeError: *fn* returned an awaitable or a generator, whose check
            has not run yet.
        ValueError: *gate* is not a `capscope.Gate` value.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import assert_denied
        >>> @cs.requires_tool("fs.write")
        ... def write(path):
        ...     return "written"
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.write"])):
        ...     assert_denied(write, "a.txt", gate="tool_ceiling")
        Traceback (most recent call last):
        AssertionError: expected fs.write to be denied at gate 'tool_ceiling' but it was allowed (returned 'written')
    """
    __tracebackhide__ = True
    expected = _gate(gate)
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
    except PolicyDenied as exc:
        return _denied_as_expected(name, exc, expected)
    except Exception as exc:
        raise _not_denied(name, expected, f"it raised {exc!r:.100}") from exc
    _refuse_lazy(result, name, "assert_denied")
    raise _not_denied(
        name, expected, f"it was allowed (returned {result!r:.80})"
    )


async def assert_denied_async(
    fn: Callable[..., object],
    /,
    *args: Any,
    gate: Gate | str | None = None,
    **kwargs: Any,
) -> Decision:
    """
    `assert_denied` for a coroutine function (or any callable returning an
    awaitable): call it, await the result, and assert that capscope
    refused it; return the refusing `Decision`.

    Raises:
        AssertionError: the call was not denied as expected.
        ValueError: *gate* is not a `capscope.Gate` value.

    Examples:
        >>> import asyncio, capscope as cs
        >>> from capscope.testing import assert_denied_async
        >>> @cs.requires_tool("net.get")
        ... async def fetch(url):
        ...     return "page"
        >>> asyncio.run(assert_denied_async(fetch, "https://example.com")).gate
        <Gate.NO_POLICY: 'no_policy'>
    """
    __tracebackhide__ = True
    expected = _gate(gate)
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except PolicyDenied as exc:
        return _denied_as_expected(name, exc, expected)
    except Exception as exc:
        raise _not_denied(name, expected, f"it raised {exc!r:.100}") from exc
    _refuse_lazy(result, name, "assert_denied", awaited=True)
    raise _not_denied(
        name, expected, f"it was allowed (returned {result!r:.80})"
    )


def assert_allowed(
    fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """
    Call `fn(*args, **kwargs)`, assert that capscope let it run, and return
    its result.

    A refusal fails with an `AssertionError` naming the gate and reason,
    e.g. `expected fs.write to be allowed but it was denied at
    'tool_ceiling': ...`. Any other exception propagates unchanged (the
    call was allowed; the body failed). A coroutine function's check runs
    when awaited: use `assert_allowed_async`.

    Raises:
        AssertionError: capscope refused the call.
        TypeError: *fn* returned an awaitable or a generator, whose check
            has not run yet.

    Examples:
        >>> import capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import assert_allowed
        >>> @cs.requires_tool("fs.read")
        ... def read(path):
        ...     return "data"
        >>> with cs.using(execution=CapabilityPolicy(tools=["fs.read"])):
        ...     assert_allowed(read, "a.txt")
        'data'
    """
    __tracebackhide__ = True
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
    except PolicyDenied as exc:
        msg = (
            f"expected {name} to be allowed but it was denied "
            f"{_describe_denial(exc)}"
        )
        raise AssertionError(msg) from exc
    _refuse_lazy(result, name, "assert_allowed")
    return result


async def assert_allowed_async(
    fn: Callable[..., Any], /, *args: Any, **kwargs: Any
) -> Any:
    """
    `assert_allowed` for a coroutine function: call it, await the result,
    assert that capscope let it run, and return what it returned.

    Raises:
        AssertionError: capscope refused the call.

    Examples:
        >>> import asyncio, capscope as cs
        >>> from capscope.policies import CapabilityPolicy
        >>> from capscope.testing import assert_allowed_async, isolated
        >>> @cs.requires_tool("net.get")
        ... async def fetch(url):
        ...     return "page"
        >>> with isolated({"execution": {"tools": ["net.*"]}}):
        ...     asyncio.run(assert_allowed_async(fetch, "https://example.com"))
        'page'
    """
    __tracebackhide__ = True
    name = _tool_name(fn)
    try:
        result = fn(*args, **kwargs)
        if inspect.isawaitable(result):
            result = await result
    except PolicyDenied as exc:
        msg = (
            f"expected {name} to be allowed but it was denied "
            f"{_describe_denial(exc)}"
        )
        raise AssertionError(msg) from exc
    _refuse_lazy(result, name, "assert_allowed", awaited=True)
    return result
