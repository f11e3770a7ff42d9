r"""
Normalise parsed shell commands into the commands that actually run.

A policy that matched the text an agent sent would be talked around by
spelling: `/bin/rm -fr /`, `sudo env X=1 nice rm --recursive --force /`,
`bash -lc 'rm -rf ~'`, `find / -exec rm -rf {} \\;`. So every simple command
of `capscope.commands._parse.parse` is first *normalised* (`normalise`):
program by basename, wrappers unwrapped with their own options skipped,
shell `-c` scripts parsed again, short flags split, `--opt=value` split, and
the dangerous programs' long options replaced by their short equivalents.
`capscope.commands._label.label` then reads the normalised commands.

Everything here is static: no file is read, no symlink resolved. What
cannot be known statically is a reason in `NormalCommand.unresolved` (it
becomes `execution_semantics_unresolved`); code a program is made to run
that the line does not show is a reason in `NormalCommand.code` (it becomes
`code_execution`).
"""

from __future__ import annotations

import functools
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence

import attrs

from ._model import OpaqueWord, Redirect, SimpleCommand
from ._vocabulary import HARMLESS_SET, STATE_BUILTINS, WRAPPERS, Wrapper

__all__ = [
    "MAX_DEPTH",
    "NormalCommand",
    "family",
    "is_fork_bomb",
    "normalise",
    "normalise_all",
]

#: How deep wrappers and `sh -c` scripts may nest before giving up.
MAX_DEPTH = 12

#: Where the programs an allow rule names live; a program run from anywhere
#: else by path is unresolved (it is not the program its basename names).
SYSTEM_BIN = frozenset(
    {
        "/bin",
        "/sbin",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
    }
)

#: Shells whose scripts are read as bash reads them, and as a POSIX shell
#: does; any other shell's script is unresolved (it is still read, so the
#: catastrophic floor sees into it).
BASH = frozenset({"bash"})
POSIX_SHELLS = frozenset({"sh", "dash"})
SHELLS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "yash", "fish"}
    | {"csh", "tcsh", "posh", "busybox-sh"}
)
#: Shell options that change nothing about how a script is read.
_SHELL_FLAGS = frozenset("ceuxvlsrpn")
_SHELL_LONG = frozenset({"--norc", "--noprofile", "--login", "--posix"})

#: Interpreters (by name with any version suffix removed: `python3.11` is
#: `python`): short options that give code inline, short options that take
#: a value (so a bundle stops there), long options that give code inline.
INTERPRETERS: dict[str, tuple[str, str, frozenset[str]]] = {
    "python": ("c", "mWXQ", frozenset()),
    "pypy": ("c", "mWXQ", frozenset()),
    "perl": ("eE", "IMm", frozenset()),
    "ruby": ("e", "IrECxTKW", frozenset()),
    "node": ("ep", "r", frozenset({"eval", "print"})),
    "nodejs": ("ep", "r", frozenset({"eval", "print"})),
    "bun": ("ep", "r", frozenset({"eval", "print"})),
    "deno": ("", "", frozenset({"eval"})),
    "php": ("rBRE", "cdfz", frozenset()),
    "lua": ("e", "l", frozenset()),
    "luajit": ("e", "l", frozenset()),
    "Rscript": ("e", "", frozenset()),
    "osascript": ("e", "l", frozenset()),
    "tclsh": ("", "", frozenset()),
}

#: Interpreter options whose value is only ever attached (`perl -i.bak`,
#: so `-pie` is `-p -i` with the suffix `e`) or only digits (`perl -l0`).
INTERPRETER_ATTACHED: dict[str, str] = {"perl": "ixdDC", "ruby": "x"}
INTERPRETER_DIGITS: dict[str, str] = {"perl": "l0", "ruby": "0lW"}

#: Per-program short-flag splitting: short options that take a value (the
#: rest of the bundle or the next word) and short options whose value is
#: optional and attached (`sed -i.bak`). Programs not listed keep their
#: bundles (tar, find, dd, kill... have other conventions).
SPLIT_FLAGS: dict[str, tuple[str, str]] = {
    "rm": ("", ""),
    "rmdir": ("", ""),
    "unlink": ("", ""),
    "cp": ("tS", ""),
    "mv": ("tS", ""),
    "ln": ("tS", ""),
    "chown": ("", ""),
    "chgrp": ("", ""),
    "ls": ("ITw", ""),
    "grep": ("efABCmdD", ""),
    "egrep": ("efABCmdD", ""),
    "fgrep": ("efABCmdD", ""),
    "mkdir": ("m", ""),
    "touch": ("drt", ""),
    "tee": ("", ""),
    "cat": ("", ""),
    "head": ("nc", ""),
    "tail": ("ncs", ""),
    "sed": ("efl", "i"),
    "shred": ("ns", ""),
    "truncate": ("sr", ""),
    "install": ("mogtS", ""),
    "curl": ("AbcCdDeEFHKmoPQrTtuUwxXyYz", ""),
    "wget": ("aAbBDeiIloOPQRtTUwXy", "n"),
    "base64": ("w", ""),
    "scp": ("cFiJloPS", ""),
    "nc": ("ipsqwWXx", ""),
}

#: `chmod` bundles are options only when made of these letters (otherwise
#: `-rwx` is a mode).
CHMOD_FLAGS = frozenset("cfvRHLP")

#: Long options whose value is optional: `--opt=value` stays one word.
OPTIONAL_VALUE_LONG = frozenset(
    {
        *("--color", "--colour", "--backup", "--interactive", "--preserve"),
        *("--preserve-root", "--force-with-lease", "--signed", "--reflink"),
        *("--recurse-submodules", "--preserve-env", "--hyperlink"),
        *("--classify", "--context", "--in-place", "--exec-path", "--stat"),
        *("--abbrev", "--decorate", "--pretty", "--word-diff", "--dirstat"),
    }
)

#: Long options replaced by their short equivalent, per program.
_RM_LONG = {"--recursive": "-r", "-R": "-r", "--force": "-f", "--dir": "-d"}
_MODE_LONG = {"--recursive": "-R", "--changes": "-c", "--silent": "-f"}
CANONICAL: dict[str, dict[str, str]] = {
    "rm": {**_RM_LONG, "--verbose": "-v"},
    "chmod": {**_MODE_LONG, "--quiet": "-f", "--verbose": "-v"},
    "chown": {**_MODE_LONG, "--quiet": "-f", "--verbose": "-v"},
    "chgrp": {**_MODE_LONG, "--quiet": "-f", "--verbose": "-v"},
    "cp": {
        "--recursive": "-r",
        "-R": "-r",
        "--force": "-f",
        "--target-directory": "-t",
        "--archive": "-a",
    },
    "mv": {"--force": "-f", "--target-directory": "-t"},
    "sed": {"--expression": "-e", "--file": "-f", "--in-place": "-i"},
    "tee": {"--append": "-a"},
    "curl": {
        "--output": "-o",
        "--remote-name": "-O",
        "--data": "-d",
        "--upload-file": "-T",
        "--form": "-F",
        "--silent": "-s",
        "--location": "-L",
        "--fail": "-f",
        "--show-error": "-S",
        "--request": "-X",
        "--header": "-H",
        "--insecure": "-k",
        "--user": "-u",
        "--cookie-jar": "-c",
        "--dump-header": "-D",
    },
    "wget": {
        "--output-document": "-O",
        "--quiet": "-q",
        "--directory-prefix": "-P",
        "--output-file": "-o",
        "--append-output": "-a",
        "--input-file": "-i",
    },
    "git push": {"--force": "-f", "--delete": "-d"},
    "nc": {"--exec": "-e", "--sh-exec": "-c"},
    "ncat": {"--exec": "-e", "--sh-exec": "-c", "--lua-exec": "-e"},
}

#: Programs parsed by GNU getopt_long, which accepts any unambiguous
#: prefix of a long option (`rm --rec --fo /` is `rm -r -f /`).
GNU_ABBREVIATING = frozenset(
    {"rm", "chmod", "chown", "chgrp", "cp", "mv", "sed", "tee"}
)

#: Git's global options: those taking a value, those that are path values
#: (kept in `NormalCommand.paths`), those that run code, and plain flags.
GIT_GLOBAL_VALUE = frozenset(
    {"--namespace", "--super-prefix", "--list-cmds", "--attr-source"}
)
GIT_GLOBAL_PATH = frozenset({"-C", "--git-dir", "--work-tree"})
GIT_GLOBAL_CODE = frozenset({"-c", "--config-env", "--exec-path"})
GIT_GLOBAL_FLAGS = frozenset(
    {
        *("-p", "--paginate", "-P", "--no-pager", "--bare", "--version"),
        *("--help", "-h", "--html-path", "--man-path", "--info-path"),
        *("--no-replace-objects", "--literal-pathspecs", "--no-advice"),
        *("--glob-pathspecs", "--noglob-pathspecs", "--icase-pathspecs"),
        *("--no-optional-locks", "--no-lazy-fetch"),
    }
)

_NAME_EQ = re.compile(r"[A-Za-z_]\w*=")
#: A word that bash reads again as itself (for `eval`).
_PLAIN_ARG = re.compile(r"[A-Za-z0-9_./:,+@%=-]+")


# --- the normalised command ---------------------------------------------


@attrs.frozen
class NormalCommand:
    """
    One command a policy should judge, after normalisation.

    Fields:

    - `argv`: the normalised words (program by basename, wrappers removed,
      flags split, long options of the dangerous programs made short). A
      word bash expands as a pathname pattern stays a `GlobWord`.
    - `source`: the simple command of the parse this came from (for a
      `bash -c` script, the outer command).
    - `privileged`: `sudo`, `doas`, `su`... wrapped it.
    - `wrappers`: the wrappers removed, outermost first (`("sudo", "env")`).
    - `unresolved`: why what it runs cannot be known statically (the
      parser's reasons plus `"pipe into interpreter"`, `"arguments read
      from input"`...).
    - `code`: why it runs code the line does not show (`"runs code given
      on the line"`, `"git -c sets configuration..."`).
    - `redirects`: its redirections and those of the commands around it
      (`bash -c 'x' > f` writes `f`).
    - `assignments`: the `NAME=value` words in front of it and its
      wrappers (`env X=1`).
    - `paths`: path values taken out of `argv` (`git -C DIR`,
      `--git-dir`, `--work-tree`), kept for the workspace check.
    - `cwd`: the directory a wrapper switched to (`env -C`, `git -C`,
      `sudo -D`), relative to the line's working directory; `None` if none.
    - `piped_input` / `piped_output`: its stdin comes from a pipe / its
      stdout goes into one.
    - `subshell`: it runs in a child shell, so a `cd` in it changes
      nothing after it.

    Examples:
        >>> from capscope.commands._model import SimpleCommand
        >>> from capscope.commands._normalise import normalise
        >>> [c.argv for c in normalise(SimpleCommand(("sudo", "/bin/rm", "-rf", "/")))]
        [('rm', '-r', '-f', '/')]
    """

    argv: tuple[str, ...]
    source: SimpleCommand
    privileged: bool = False
    wrappers: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    cwd: str | None = None
    piped_input: bool = False
    piped_output: bool = False
    subshell: bool = False

    @property
    def program(self) -> str | None:
        """The normalised program name, or `None` for assignments only."""
        return self.argv[0] if self.argv else None


@attrs.frozen
class _Ctx:
    """What the wrappers around a command have contributed so far."""

    source: SimpleCommand
    privileged: bool = False
    wrappers: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    code: tuple[str, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    cwd: str | None = None
    piped_input: bool = False
    piped_output: bool = False
    subshell: bool = False
    depth: int = 0

    def make(
        self,
        argv: Sequence[str],
        *extra: str,
        code: Iterable[str] = (),
    ) -> NormalCommand:
        return NormalCommand(
            argv=tuple(argv),
            source=self.source,
            privileged=self.privileged,
            wrappers=self.wrappers,
            unresolved=_unique(self.unresolved + extra),
            code=_unique((*self.code, *code)),
            redirects=self.redirects,
            assignments=self.assignments,
            paths=self.paths,
            cwd=self.cwd,
            piped_input=self.piped_input,
            piped_output=self.piped_output,
            subshell=self.subshell,
        )

    def wrap(self, name: str, **changes: object) -> _Ctx:
        return attrs.evolve(
            self,
            wrappers=(*self.wrappers, name),
            depth=self.depth + 1,
            **changes,  # type: ignore[arg-type]
        )

    def more(self, *reasons: str) -> _Ctx:
        if not reasons:
            return self
        return attrs.evolve(self, unresolved=self.unresolved + reasons)

    def runs(self, *reasons: str) -> _Ctx:
        return attrs.evolve(self, code=self.code + reasons)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _basename(word: str) -> str:
    name = posixpath.basename(word.rstrip("/")) if "/" in word else word
    return name or word


@functools.lru_cache(maxsize=1024)
def family(program: str) -> str:
    """
    A program's name without a version suffix.

    Examples:
        >>> from capscope.commands._normalise import family
        >>> family("python3.11"), family("perl5.36"), family("ls")
        ('python', 'perl', 'ls')
    """
    base = re.sub(r"[\d.]+$", "", program)
    return base or program


# --- normalise ------------------------------------------------------------


def normalise(
    cmd: SimpleCommand, *, piped_input: bool = False
) -> tuple[NormalCommand, ...]:
    """
    The command(s) a policy should judge for the simple command *cmd*.

    Wrappers are removed (their options skipped), `sh -c`/`eval` scripts
    parsed and normalised in turn, `find -exec` split into `find` and the
    command it runs. *piped_input* says that *cmd*'s stdin is a pipe (so
    `sh` reading it runs code that cannot be seen); `normalise_all` sets it.

    Examples:
        >>> from capscope.commands._model import SimpleCommand
        >>> from capscope.commands._normalise import normalise
        >>> [c.argv for c in normalise(SimpleCommand(("nice", "-n", "5", "timeout", "10", "rm", "--recursive", "x")))]
        [('rm', '-r', 'x')]
    """
    ctx = _Ctx(
        source=cmd,
        unresolved=cmd.unresolved,
        redirects=cmd.redirects,
        assignments=cmd.assignments,
        piped_input=piped_input,
        piped_output=cmd.piped,
        subshell=cmd.subshell,
    )
    return tuple(_normalise(cmd.argv, ctx))


def normalise_all(
    commands: Sequence[SimpleCommand],
) -> tuple[NormalCommand, ...]:
    """
    Normalise every simple command of a line, in order, telling each
    whether its stdin is a pipe (the previous one's `piped`).

    Examples:
        >>> from capscope.commands._model import SimpleCommand
        >>> from capscope.commands._normalise import normalise_all
        >>> cmds = [SimpleCommand(("curl", "x"), piped=True), SimpleCommand(("sh",))]
        >>> normalise_all(cmds)[1].unresolved
        ('pipe into interpreter',)
    """
    out: list[NormalCommand] = []
    previous_piped = False
    for cmd in commands:
        out.extend(normalise(cmd, piped_input=previous_piped))
        previous_piped = cmd.piped
    return tuple(out)


def _normalise(argv: Sequence[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901, PLR0911, PLR0912 - a dispatch over option tables reads best in one place
    if not argv:
        return [ctx.make(())]
    if ctx.depth > MAX_DEPTH:
        return [ctx.make(argv, "nesting too deep")]
    program = _basename(argv[0])
    args = list(argv[1:])
    fam = family(program)
    if program in WRAPPERS:
        return _wrapper(program, args, ctx)
    if program == "find":
        return _find(args, ctx)
    if program in SHELLS:
        return _shell(program, args, ctx)
    if program == "su":
        return _su(args, ctx)
    if program == "eval":
        inner = ctx.wrap("eval").more("eval")
        if all(_PLAIN_ARG.fullmatch(a) for a in args):
            # plain words read again are the same words: no need to parse
            return _normalise(args, inner)
        return _script(" ".join(args), inner, (program, *args), posix=False)
    if program in {"source", "."}:
        return [ctx.make((program, *args), "source")]
    if program == "git":
        return _git(args, ctx)
    if program == "watch":
        return _watch(args, ctx)
    if fam in INTERPRETERS:
        return _interpreter(program, fam, args, ctx)
    if program in STATE_BUILTINS and not (
        program == "set" and args and set(args) <= HARMLESS_SET
    ):
        reason = f"the builtin {program} changes how the rest of the line runs"
        return [ctx.make((program, *args), reason)]
    if (
        "/" in argv[0]
        and posixpath.dirname(posixpath.normpath(argv[0])) not in SYSTEM_BIN
    ):
        # `./ls` or `/tmp/x/cat` is not the `ls` or `cat` an allow rule means.
        reason = "program outside the system paths"
        return [ctx.make((program, *_flags(program, args)), reason)]
    return [ctx.make((program, *_flags(program, args)))]


def _skip(  # noqa: C901, PLR0912 - a dispatch over option tables reads best in one place
    args: Sequence[str], spec: Wrapper
) -> tuple[int, list[tuple[str, str | None]], list[str]]:
    """
    Skip a wrapper's options: the index of its command, the options seen
    (`(name, value)`) and the unknown ones.
    """
    seen: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            i += 1
            break
        if spec.numeric and re.fullmatch(r"--?\d+", tok):
            seen.append(("-n", tok.lstrip("-")))
            i += 1
            continue
        if tok.startswith("--") and len(tok) > 2:  # noqa: PLR2004
            name, eq, value = tok[2:].partition("=")
            if name in spec.long_arg:
                if not eq:
                    value = args[i + 1] if i + 1 < len(args) else ""
                    i += 1
                seen.append(("--" + name, value))
            elif name in spec.long_flag:
                seen.append(("--" + name, value if eq else None))
            else:
                unknown.append(tok)
            i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            for j, ch in enumerate(tok[1:], start=1):
                if ch in spec.short_arg:
                    value = tok[j + 1 :]
                    if not value:
                        value = args[i + 1] if i + 1 < len(args) else ""
                        i += 1
                    seen.append(("-" + ch, value))
                    break
                if ch in spec.short_flag:
                    seen.append(("-" + ch, None))
                else:
                    unknown.append(tok)
                    break
            i += 1
            continue
        break
    if spec.assignments:
        while i < len(args) and _NAME_EQ.match(args[i]):
            i += 1
    return i + spec.positionals, seen, unknown


def _assignments(args: Sequence[str]) -> tuple[tuple[str, str], ...]:
    out = []
    for tok in args:
        m = re.match(r"([A-Za-z_]\w*)=(.*)", tok, re.DOTALL)
        if not m:
            break
        out.append((m.group(1), m.group(2)))
    return tuple(out)


def _join_cwd(outer: str | None, inner: str) -> str:
    return posixpath.join(outer, inner) if outer else inner


def _wrapper(program: str, args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901, PLR0912 - a dispatch over option tables reads best in one place
    spec = WRAPPERS[program]
    index, seen, unknown = _skip(args, spec)
    opts = {name for name, _ in seen}
    if program == "command" and opts & {"-v", "-V"}:
        return [ctx.make((program, *args))]  # a lookup: runs nothing
    extra: list[str] = []
    if unknown:
        extra.append(f"an option of {program} capscope does not know")
    changes: dict[str, object] = {}
    if spec.privileged:
        changes["privileged"] = True
    cwd = ctx.cwd
    for name, value in seen:
        if name in {"-C", "--chdir", "-D"} and value is not None:
            cwd = _join_cwd(cwd, value)
    changes["cwd"] = cwd
    rest = args[index:] if index <= len(args) else []
    if spec.assignments:
        start = index - spec.positionals
        skipped = [a for a in args[:start] if _NAME_EQ.match(a)]
        changes["assignments"] = ctx.assignments + _assignments(skipped)
    for name, value in seen:
        if name in {"-S", "--split-string"} and value is not None:
            extra.append("env -S splits a string into words")
            try:
                rest = shlex.split(value) + rest
            except ValueError:
                extra.append("unbalanced quote")
    if spec.reads_input:
        changes["piped_input"] = False
        extra.append("arguments read from input")
        for name, value in seen:
            if name in {"-I", "--replace", "-i"}:
                # what replaces it comes from stdin: an unknown word
                marker = value or "{}"
                rest = [
                    OpaqueWord(a.replace(marker, "$XARGS_INPUT"))
                    if marker in a
                    else a
                    for a in rest
                ]
        rest = rest or ["echo"]
    inner = ctx.wrap(program, **changes).more(*extra)
    if not rest:
        return [inner.make((program, *args))]
    return _normalise(rest, inner)


_FIND_ACTIONS = frozenset({"-exec", "-execdir", "-ok", "-okdir"})
_FIND_UNFILTERED = frozenset(
    {
        *("-depth", "-d", "-xdev", "-mount", "-print", "-print0", "-ls"),
        *("-noleaf", "-follow", "-delete", "-ignore_readdir_race"),
    }
)


def _find(args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901 - a dispatch over option tables reads best in one place
    """`find` without its `-exec` parts, then each command it executes."""
    i = 0
    while i < len(args) and (
        args[i] in {"-H", "-L", "-P", "-D"} or re.fullmatch(r"-O\d", args[i])
    ):
        i += 2 if args[i] == "-D" else 1
    starts: list[str] = []
    while i < len(args) and not args[i].startswith(("-", "(", "!")):
        starts.append(args[i])
        i += 1
    starts = starts or ["."]
    outer: list[str] = ["find", *args[:i]]
    execs: list[list[str]] = []
    filtered = False
    j = i
    while j < len(args):
        tok = args[j]
        if tok in _FIND_ACTIONS:
            k = j + 1
            while k < len(args) and args[k] not in {";", "+"}:
                k += 1
            execs.append(args[j + 1 : k])
            j = k + 1
            continue
        if tok in {"-maxdepth", "-mindepth"}:
            outer.extend(args[j : j + 2])
            j += 2
            continue
        if tok not in _FIND_UNFILTERED:
            filtered = True
        outer.append(tok)
        j += 1
    result = [
        ctx.make(
            outer, *(["find runs a command for each file"] if execs else [])
        )
    ]
    inner = ctx.wrap("find").more("runs on each file find finds")
    for command in execs:
        # `{}` stands for what find visits: without a filter that is the
        # start paths themselves (`find / -exec rm -rf {} ;` deletes `/`),
        # with one it is something under them.
        argv: list[str] = []
        for word in command:
            if word == "{}":
                argv.extend(
                    posixpath.join(s, "{}") if filtered else s for s in starts
                )
            else:
                argv.append(word)
        if argv:
            result.extend(_normalise(argv, inner))
    return result


def _shell(program: str, args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901, PLR0912 - a dispatch over option tables reads best in one place
    has_c = reads_stdin = False
    odd: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok in {"--", "-"}:
            i += 1
            break
        if tok.startswith("--"):
            if tok == "--command":  # fish
                has_c = True
            elif tok not in _SHELL_LONG:
                odd.append(tok)
                if tok in {"--rcfile", "--init-file", "--init-command"}:
                    i += 1
            i += 1
            continue
        if tok.startswith(("-", "+")) and len(tok) > 1:
            letters = tok[1:]
            has_c = has_c or "c" in letters
            reads_stdin = reads_stdin or "s" in letters
            takes = sum(1 for ch in letters if ch in "oO")
            if takes and not all(
                a == "pipefail" for a in args[i + 1 : i + 1 + takes]
            ):
                odd.append(tok)
            if set(letters) - _SHELL_FLAGS - {"o"}:
                odd.append(tok)  # -i (aliases), -O extglob, -k, -T...
            i += 1 + takes
            continue
        break
    operands = args[i:]
    extra = [f"shell option capscope does not model: {o}" for o in odd]
    inner = ctx.more(*extra)
    if program not in BASH | POSIX_SHELLS:
        inner = inner.more(
            f"a script for {program}, which capscope does not model"
        )
    if has_c:
        if not operands:
            return [inner.make((program, *args), "shell script not visible")]
        return _script(
            operands[0],
            inner.wrap(program, subshell=True),
            (program, *args),
            posix=program in POSIX_SHELLS,
        )
    if operands and not reads_stdin:
        return [inner.make((program, *args))]  # a script file
    return _stdin_code(program, (program, *args), inner)


def _stdin_code(
    program: str, argv: Sequence[str], ctx: _Ctx
) -> list[NormalCommand]:
    """An interpreter with no script: it runs what its stdin holds."""
    if ctx.piped_input:
        return [ctx.make(argv, "pipe into interpreter")]
    for redirect in ctx.redirects:
        if redirect.op in {"<<", "<<-", "<<<"}:
            if redirect.target is None:
                return [ctx.make(argv, "here-document into interpreter")]
            if program in SHELLS:
                return _script(
                    redirect.target,
                    ctx.wrap(program, subshell=True),
                    argv,
                    posix=program in POSIX_SHELLS,
                )
            return [ctx.make(argv, code=("runs code given on the line",))]
        if redirect.op == "<" or (
            redirect.op == "<&" and redirect.target not in {"0", "-"}
        ):
            return [ctx.make(argv)]  # a script file, like `sh file`
    return [ctx.make(argv)]  # interactive


def _script(
    script: str, ctx: _Ctx, argv: Sequence[str], *, posix: bool
) -> list[NormalCommand]:
    """Parse a `-c` script (or `eval`'s words) and normalise what it runs."""
    from ._parse import parse

    reasons: list[str] = []
    if is_fork_bomb(script):
        reasons.append("fork bomb")
    parsed = parse(script, posix=posix)
    if parsed.refused is not None:
        reasons.append(f"a script not analysed: {parsed.refused}")
    inner = ctx.more(*parsed.unresolved, *reasons)
    if not parsed.commands:
        return [inner.make(argv)]
    out: list[NormalCommand] = []
    previous_piped = False
    last = len(parsed.commands) - 1
    for index, cmd in enumerate(parsed.commands):
        sub = attrs.evolve(
            inner,
            unresolved=inner.unresolved + cmd.unresolved,
            redirects=ctx.redirects + cmd.redirects,
            assignments=ctx.assignments + cmd.assignments,
            piped_input=previous_piped or (index == 0 and ctx.piped_input),
            piped_output=cmd.piped or (index == last and ctx.piped_output),
            subshell=ctx.subshell or cmd.subshell,
        )
        out.extend(_normalise(cmd.argv, sub))
        previous_piped = cmd.piped
    return out


def _su(args: list[str], ctx: _Ctx) -> list[NormalCommand]:
    spec = Wrapper(
        short_arg="cgGsw",
        short_flag="lmpfP",
        long_arg=frozenset({"command", "group", "supp-group", "shell", "whitelist-environment", "session-command"}),
        long_flag=frozenset({"login", "preserve-environment", "pty", "fast"}),
    )  # fmt: skip
    _, seen, _ = _skip([a for a in args if a != "-"], spec)
    inner = ctx.wrap("su", privileged=True)
    for name, value in seen:
        if name in {"-c", "--command", "--session-command"} and value:
            return _script(
                value,
                inner.wrap("sh", subshell=True),
                ("su", *args),
                posix=True,
            )
    return [inner.make(("su", *args))]


def _watch(args: list[str], ctx: _Ctx) -> list[NormalCommand]:
    spec = Wrapper(
        short_arg="dnq",
        short_flag="bceghptwx",
        long_arg=frozenset({"interval", "differences", "equexit", "errexit"}),
        long_flag=frozenset({"beep", "color", "chgexit", "exec", "precise", "no-title", "no-wrap"}),
    )  # fmt: skip
    index, seen, _ = _skip(args, spec)
    rest = args[index:]
    if not rest:
        return [ctx.make(("watch", *args))]
    if any(name in {"-x", "--exec"} for name, _ in seen):
        return _normalise(rest, ctx.wrap("watch"))
    return _script(
        " ".join(rest),
        ctx.wrap("watch", subshell=True),
        ("watch", *args),
        posix=True,
    )


def _interpreter(  # noqa: C901, PLR0911, PLR0912 - a dispatch over option tables reads best in one place
    program: str, fam: str, args: list[str], ctx: _Ctx
) -> list[NormalCommand]:
    code_short, arg_short, code_long = INTERPRETERS[fam]
    argv = (program, *args)
    inline = "runs code given on the line"
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "-":
            return _stdin_code(program, argv, ctx)
        if tok == "--":
            i += 1
            break
        if tok.startswith("--"):
            if tok[2:].partition("=")[0] in code_long:
                return [ctx.make(argv, code=(inline,))]
            i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            takes_next = False
            attached = INTERPRETER_ATTACHED.get(fam, "")
            digits = INTERPRETER_DIGITS.get(fam, "")
            j = 1
            while j < len(tok):
                ch = tok[j]
                if ch in attached:
                    break
                if ch in digits:
                    j += 1
                    while j < len(tok) and tok[j] in "0123456789abcdefx":
                        j += 1
                    continue
                if ch in code_short:
                    return [ctx.make(argv, code=(inline,))]
                if ch in arg_short:
                    if ch == "m" and fam in {"python", "pypy"}:
                        return _python_module(program, tok, j, args, i, ctx)
                    takes_next = not tok[j + 1 :]
                    break
                j += 1
            i += 2 if takes_next else 1
            continue
        return [ctx.make(argv)]  # a script file
    if i < len(args):
        return [ctx.make(argv)]
    return _stdin_code(program, argv, ctx)


def _python_module(  # noqa: PLR0913, PLR0917 - the scan state, passed on
    program: str,
    tok: str,
    j: int,
    args: list[str],
    i: int,
    ctx: _Ctx,
) -> list[NormalCommand]:
    """`python -m pip ...` is `pip ...`; any other module is itself."""
    attached = tok[j + 1 :]
    module = attached or (args[i + 1] if i + 1 < len(args) else "")
    rest = args[i + (1 if attached else 2) :]
    if module in {"pip", "pip3"}:
        return _normalise(["pip", *rest], ctx.wrap(program))
    return [ctx.make((program, *args))]


def _git(args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901 - a dispatch over option tables reads best in one place
    """Strip git's global options; `-c` and friends run code."""
    extra: list[str] = []
    code: list[str] = []
    paths: list[str] = []
    cwd = ctx.cwd
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        if name in GIT_GLOBAL_CODE:
            code.append(f"git {name} sets configuration that can run programs")
            takes = name != "--exec-path" and not eq
        elif name in GIT_GLOBAL_PATH:
            takes = not eq
            if takes:
                value = args[i + 1] if i + 1 < len(args) else ""
            paths.append(value)
            if name == "-C":
                cwd = _join_cwd(cwd, value)
        elif name in GIT_GLOBAL_VALUE:
            takes = not eq
        elif name in GIT_GLOBAL_FLAGS:
            takes = False
        elif name.startswith("-C") and len(name) > 2:  # noqa: PLR2004
            paths.append(name[2:])
            cwd = _join_cwd(cwd, name[2:])
            takes = False
        elif name.startswith("-c") and len(name) > 2:  # noqa: PLR2004
            code.append("git -c sets configuration that can run programs")
            takes = False
        else:
            extra.append("an option of git capscope does not know")
            takes = False
        i += 2 if takes else 1
    inner = attrs.evolve(ctx, paths=ctx.paths + tuple(paths), cwd=cwd)
    rest = args[i:]
    if not rest:
        return [inner.make(("git",), *extra, code=code)]
    sub = rest[0]
    words = _split_eq(rest[1:])
    if sub == "push":
        words = _split_bundles(words, "o", "")
        table = CANONICAL["git push"]
        words = [table.get(w, w) for w in words]
    return [inner.make(("git", sub, *words), *extra, code=code)]


# --- flag splitting ----------------------------------------------------------


def _split_eq(args: Sequence[str]) -> list[str]:
    out: list[str] = []
    rest = iter(args)
    for tok in rest:
        if tok == "--":
            out.append(tok)
            out.extend(rest)
            break
        name, eq, value = tok.partition("=")
        if (
            eq
            and tok.startswith("--")
            and len(name) > 2  # noqa: PLR2004
            and name not in OPTIONAL_VALUE_LONG
        ):
            out.extend((name, value))
        else:
            out.append(tok)
    return out


def _split_bundles(
    args: Sequence[str], takes: str, optional: str
) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        i += 1
        if tok == "--":
            out.append(tok)
            out.extend(args[i:])
            break
        if (
            tok.startswith("--")
            or not tok.startswith("-")
            or len(tok) <= 2  # noqa: PLR2004
            or tok[1].isdigit()
        ):
            out.append(tok)
            if tok in {f"-{c}" for c in takes} and i < len(args):
                out.append(args[i])
                i += 1
            continue
        for j, ch in enumerate(tok[1:], start=1):
            rest = tok[j + 1 :]
            if ch in optional:
                out.append("-" + ch + rest)
                break
            out.append("-" + ch)
            if ch in takes:
                if rest:
                    out.append(rest)
                elif i < len(args):
                    out.append(args[i])
                    i += 1
                break
    return out


def _flags(program: str, args: Sequence[str]) -> list[str]:
    """Split `--opt=value` and short bundles; make long options short."""
    if not args:
        return []
    words = _split_eq(args)
    if program == "chmod":
        split: list[str] = []
        for w in words:
            if (
                w.startswith("-")
                and not w.startswith("--")
                and len(w) > 2  # noqa: PLR2004
                and set(w[1:]) <= CHMOD_FLAGS
            ):
                split.extend(f"-{c}" for c in w[1:])
            else:
                split.append(w)
        words = split
    elif program in SPLIT_FLAGS:
        takes, optional = SPLIT_FLAGS[program]
        words = _split_bundles(words, takes, optional)
    table = CANONICAL.get(program)
    if table:
        out: list[str] = []
        for index, w in enumerate(words):
            if w == "--":
                out.extend(words[index:])
                break
            out.append(table.get(w) or _abbreviation(program, w, table) or w)
        words = out
    return words


def _abbreviation(
    program: str, word: str, table: dict[str, str]
) -> str | None:
    """What a prefix of a long option stands for, if every reading agrees."""
    if (
        program not in GNU_ABBREVIATING
        or not word.startswith("--")
        or len(word) < 3  # noqa: PLR2004 - "--" and a letter
    ):
        return None
    matches = {short for long, short in table.items() if long.startswith(word)}
    return matches.pop() if len(matches) == 1 else None


# --- fork bombs -------------------------------------------------------------

# Each name starts where no name character precedes it, so a long run of
# them is tried once, not once per character (linear, not quadratic).
_FORK_BOMB = re.compile(
    r"(?<![\w:.\-])(?P<n>[\w:.\-]+)\(\)\{(?P=n)\|(?P=n)&?;?\}"
    r"|(?<![\w:.\-])function(?P<m>[\w:.\-]+)(?:\(\))?\{(?P=m)\|(?P=m)&?;?\}"
    r"|(?<![\w:.\-])(?P<k>[\w:.\-]+)\(\)\{(?P=k)&?\|?(?P=k)&"
)


def is_fork_bomb(text: str) -> bool:
    """
    Whether *text* defines a function that pipes into itself (the classic
    `:(){ :|:& };:` and its renamings), whitespace ignored.

    Examples:
        >>> from capscope.commands._normalise import is_fork_bomb
        >>> is_fork_bomb(":(){ :|:& };:"), is_fork_bomb("bomb() { bomb | bomb & }; bomb")
        (True, True)
        >>> is_fork_bomb("f() { echo hi; }; f")
        False
    """
    if "(" not in text and "function" not in text:
        return False
    squeezed = re.sub(r"\s+", "", text)
    return bool(_FORK_BOMB.search(squeezed))
