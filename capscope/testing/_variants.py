"""
Command spellings for testing policies: `bypass_variants()`.

Part of `capscope.testing`, which re-exports the public names.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

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
