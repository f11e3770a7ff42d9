r"""
Put risk labels on normalised shell commands.

`label` reads the commands of `capscope.commands._normalise` and says which
`CommandLabel`\ s apply and why. It is where the soundness principle of the
command policy is finished: the parser made every word exact or named why
not; here every exact word is judged for what it makes the program do.

- **Reasons become labels**: the parser's and normaliser's reasons are
  `execution_semantics_unresolved`; code the line does not show is
  `code_execution`.
- **Program knowledge** (`capscope.commands._vocabulary`): the options,
  variables and subcommands of known programs with an effect earn its label;
  their path operands are checked against the workspace.
- **Environment**: a variable set in front of a command that is not on the
  harmless list makes it unresolved (and earns the label of its effect).
- **Sensitive paths**: every word of every program that may read a file is
  checked, as written and as each value it holds (`--file=X`, `if=X`,
  `@X`, `file://X`), after `~`, `.` and `..` are resolved and `/proc` views
  (`/proc/self/root/...`) are seen through.
- **Globs** (`capscope.commands._glob`): a pattern is allowed to stand only
  where none of the names it could become is an option a program would
  misread, a path outside its directory, or a sensitive file it singles out.
- **The catastrophic floor**: `rm -rf /` and its kin, devices, fork bombs,
  downloads run by a shell, force pushes to protected branches; and for
  programs capscope does not know, the commands their arguments spell
  (`taskset 1 rm -rf /`, `script -c 'rm -rf /'`).

The work is linear in the number of words: each is looked at a bounded
number of times, and a line can ask for at most `_MAX_GLOBS` glob analyses
and `_MAX_EMBEDDED` embedded commands.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence

import attrs

from ..policies.approval import DEFAULT_SENSITIVE_PATHS
from ..policies.command import CommandLabel
from ._glob import (
    SensitiveMatcher,
    literal_directory,
    may_climb,
    may_start_with_dash,
)
from ._model import GlobWord, OpaqueWord
from ._normalise import (
    INTERPRETERS,
    SHELLS,
    NormalCommand,
    family,
    normalise,
)
from ._vocabulary import (
    CODE_FILES,
    NON_READING,
    PROGRAMS,
    SAFE_BUILTINS,
    STATE_BUILTINS,
    WRAPPERS,
    Effect,
    Program,
    Sub,
    env_effect,
    harmless_env,
    program,
)

__all__ = ["label"]

L = CommandLabel

#: Programs that are always catastrophic (matched on the basename, and any
#: program whose name starts with `mkfs`).
FLOOR_PROGRAMS = frozenset({"mkfs", "mke2fs", "mkdosfs", "newfs", "mkswap"})

#: Programs that are catastrophic when one of their arguments is a device.
DEVICE_WIPERS = frozenset({"shred", "wipefs", "blkdiscard", "sgdisk"})

#: Block devices: a write onto one (`dd of=`, `>`, `shred`) is catastrophic.
BLOCK_DEVICE = re.compile(
    r"^/dev/(sd[a-z]|hd[a-z]|vd[a-z]|xvd[a-z]|nvme\d|disk\d|rdisk\d|"
    r"mmcblk\d|md\d|dm-\d|mapper/|loop\d|nbd\d|sr\d)"
)

#: Write targets that are not writes at all.
HARMLESS_WRITE_TARGETS = frozenset(
    {"/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/dev/zero"}
)

#: Files whose overwrite is catastrophic (the system's accounts and sudo).
FLOOR_FILES = (
    "/etc/passwd",
    "/etc/shadow",
    "/etc/group",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/*",
)

#: Directories whose recursive delete (or chmod/chown) is catastrophic, as
#: are `/`, the home directory, every workspace root and their ancestors.
CRITICAL_DIRS = frozenset(
    {
        *("/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32"),
        *("/lib64", "/opt", "/proc", "/root", "/sbin", "/sys", "/usr"),
        *("/var", "/Users", "/System", "/Library", "/Applications"),
    }
)

#: Basenames of shell start-up files (writes to them are `destructive`).
STARTUP_FILES = frozenset(
    {
        *(".bashrc", ".bash_profile", ".bash_login", ".bash_logout"),
        *(".profile", ".zshrc", ".zshenv", ".zprofile", ".zlogin"),
        *(".zlogout", ".kshrc", ".cshrc", ".tcshrc", ".login", ".inputrc"),
    }
)

#: Write targets (globs on the absolute path) that are `destructive`:
#: persistence and code-execution hooks besides the start-up files.
DESTRUCTIVE_WRITE_GLOBS = (
    "/etc",
    "/etc/*",
    "*/.ssh/*",
    "*/.config/fish/*",
    "*/.config/autostart/*",
    "*/.config/systemd/*",
    "*/.gitconfig",
    "*/.config/git/*",
    "/var/spool/cron/*",
)

#: The sensitive paths a command may not read (shared with tool approvals).
SENSITIVE = SensitiveMatcher(DEFAULT_SENSITIVE_PATHS)

#: Programs that download (a downloader piped into a shell is the floor).
DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "aria2c", "http", "https", "lwp-request"}
)

#: Package managers: program -> subcommands that install. `None`: the
#: program always installs or fetches and runs a package.
PACKAGE_INSTALL: dict[str, frozenset[str] | None] = {
    "pipx": frozenset({"install", "run", "inject"}),
    "uv": frozenset({"add", "install", "run", "tool"}),
    "poetry": frozenset({"add", "install"}),
    "conda": frozenset({"install", "create"}),
    "mamba": frozenset({"install", "create"}),
    "bun": frozenset({"add", "install", "i", "x"}),
    "gem": frozenset({"install"}),
    "cargo": frozenset({"install", "add"}),
    "go": frozenset({"install", "get"}),
    "composer": frozenset({"require", "install"}),
    "apt": frozenset({"install", "reinstall"}),
    "apt-get": frozenset({"install", "reinstall"}),
    "aptitude": frozenset({"install"}),
    "yum": frozenset({"install", "reinstall", "localinstall"}),
    "dnf": frozenset({"install", "reinstall"}),
    "zypper": frozenset({"install", "in"}),
    "brew": frozenset({"install", "reinstall", "tap"}),
    "apk": frozenset({"add"}),
    "port": frozenset({"install"}),
    "snap": frozenset({"install"}),
    "flatpak": frozenset({"install"}),
    "nix-env": frozenset({"-i", "--install", "-iA"}),
    "npx": None,
    "bunx": None,
    "uvx": None,
    "dpkg": frozenset({"-i", "--install"}),
    "rpm": frozenset({"-i", "-U", "--install", "--upgrade", "-ivh", "-Uvh"}),
}

#: Programs that signal processes.
KILLERS = frozenset({"kill", "pkill", "killall", "skill", "xkill"})

#: Git branches a force push to is catastrophic (fnmatch patterns).
PROTECTED_BRANCHES = ("main", "master", "production", "prod", "release*")

#: Program names whose appearance inside an unknown program's arguments
#: is checked as a command for the catastrophic floor.
_FLOOR_TRIGGERS = frozenset(
    {*FLOOR_PROGRAMS, *DEVICE_WIPERS, *SHELLS, *WRAPPERS, *DOWNLOADERS}
    | {"rm", "dd", "chmod", "chown", "chgrp", "find", "git", "eval", "mv"}
    | {"cp", "tee", "truncate", "crontab", "su", "xargs", "watch"}
)

#: At most this many globs are analysed per line (each costs an automaton
#: product); past it a glob is unresolved.
_MAX_GLOBS = 64
#: At most this many words of commands found inside unknown programs'
#: arguments are checked per line; past it the line is catastrophic.
_MAX_EMBEDDED_WORDS = 8_192
#: At most this many reasons are kept per label.
_MAX_REASONS = 16

_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_READ_OPS = frozenset({"<", "<>"})
_NET_DEVICE = re.compile(r"^/dev/(tcp|udp)/")
_FD_TARGET = re.compile(r"\d+|-")
_DEV_FD = re.compile(r"/dev/fd/\d+")
_PROC_VIEW = re.compile(r"^/proc/(self|thread-self)/(root|cwd)(?=/|$)")


def _globs_re(patterns: Iterable[str]) -> re.Pattern[str]:
    return re.compile("|".join(fnmatch.translate(p) for p in patterns))


_CODE_FILES = _globs_re(CODE_FILES)
_FLOOR_FILES = _globs_re(FLOOR_FILES)
_DESTRUCTIVE_WRITES = _globs_re(DESTRUCTIVE_WRITE_GLOBS)
_WILDCARD = re.compile(r"[*?\[]")


def _normalise_path(path: str, cwd: str | None) -> str | None:
    """
    *path* without `.`, `..` and repeated slashes, the `/proc` views of the
    process's root and working directory seen through
    (`/proc/self/root/etc/shadow` is `/etc/shadow`); `None` for a `..` that
    climbs out of another symbolic link of `/proc` or `/dev/fd`, which a
    lexical reading cannot follow.
    """
    for _ in range(8):
        path = "/" + path.lstrip("/")
        m = _PROC_VIEW.match(path)
        if m is None:
            break
        rest = path[m.end() :]
        if m.group(2) == "root":
            path = "/" + rest
        elif cwd is None:
            return None
        else:
            path = cwd + "/" + rest
    else:
        return None
    if path.startswith(("/proc/", "/dev/fd/")) and "/.." in path:
        return None
    return posixpath.normpath(path)


def _is_under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


def _positionals(
    args: Sequence[str], value_opts: Iterable[str] = ()
) -> list[str]:
    """Operands: words that are not options nor option values."""
    values = frozenset(value_opts)
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i + 1 :])
            break
        if tok.startswith("-") and len(tok) > 1:
            i += 2 if tok in values else 1
            continue
        out.append(tok)
        i += 1
    return out


def _option_values(args: Sequence[str], names: Iterable[str]) -> list[str]:
    wanted = set(names)
    out: list[str] = []
    for index, tok in enumerate(args):
        if tok == "--":
            break
        if tok in wanted and index + 1 < len(args):
            out.append(args[index + 1])
    return out


def _basename(word: str) -> str:
    name = posixpath.basename(word.rstrip("/")) if "/" in word else word
    return name or word


@attrs.define
class _Judge:
    """Labels for one line; `cwds` follows `cd`."""

    cwds: tuple[str | None, ...]
    roots: tuple[str, ...] | None
    home: str
    out: dict[CommandLabel, dict[str, None]] = attrs.Factory(dict)
    downloaded: set[str] = attrs.Factory(set)
    shown: dict[int, str] = attrs.Factory(dict)
    resolved: dict[object, tuple[str | None, ...]] = attrs.Factory(dict)
    globs: int = 0
    #: the words of embedded commands checked so far
    embedded: int = 0
    #: a scratch judge for an embedded command: only the floor matters
    floor_only: bool = False

    def add(self, lbl: CommandLabel, cmd: NormalCommand, why: str) -> None:
        if self.floor_only and lbl is not L.CATASTROPHIC:
            return
        reasons = self.out.setdefault(lbl, {})
        if len(reasons) < _MAX_REASONS:
            reasons[f"{self.show(cmd)}: {why}"] = None

    def show(self, cmd: NormalCommand) -> str:
        key = id(cmd)
        text = self.shown.get(key)
        if text is None:
            words = [shlex.quote(w) for w in cmd.argv[:12]]
            text = " ".join(words) if words else "(assignments)"
            if len(cmd.argv) > 12:  # noqa: PLR2004
                text += " ..."
            if cmd.privileged:
                text = "(privileged) " + text
            if len(text) > 80:  # noqa: PLR2004
                text = text[:77] + "..."
            self.shown[key] = text
        return text

    # -- paths --

    def bases(self, cmd: NormalCommand) -> tuple[str | None, ...]:
        if cmd.cwd is None:
            return self.cwds
        return tuple(self.resolve_plain(cmd.cwd, c) for c in self.cwds)

    def resolve_all(
        self, word: str, cmd: NormalCommand
    ) -> tuple[str | None, ...]:
        """The absolute paths *word* may name (`None`: cannot be known)."""
        key = (word, type(word), cmd.cwd, self.cwds)
        found = self.resolved.get(key)
        if found is None:
            found = tuple(self.resolve_plain(word, c) for c in self.bases(cmd))
            self.resolved[key] = found
        return found

    def resolve(self, word: str, cmd: NormalCommand) -> str | None:
        """The path *word* names, if every working directory agrees."""
        paths = set(self.resolve_all(word, cmd))
        return paths.pop() if len(paths) == 1 else None

    def resolve_plain(self, word: str, cwd: str | None) -> str | None:  # noqa: C901 - one branch per way to spell a place
        w = word
        if w == "~" or w.startswith("~/"):
            w = self.home + w[1:]
        elif w.startswith("~"):
            user, _, rest = w[1:].partition("/")
            home = "/root" if user == "root" else posixpath.join("/home", user)
            w = posixpath.join(home, rest) if rest else home
        if isinstance(word, OpaqueWord):
            # a guess at what an expansion names, for the floor's sake
            for var in ("$HOME", "${HOME}"):
                if w == var or w.startswith(var + "/"):
                    w = self.home + w[len(var) :]
            for var in ("$PWD", "${PWD}"):
                if w == var or w.startswith(var + "/"):
                    if cwd is None:
                        return None
                    w = cwd + w[len(var) :]
            if "$" in w or "`" in w:
                return None
        if not w.startswith("/"):
            if cwd is None:
                return None
            w = posixpath.join(cwd, w)
        return _normalise_path(w, cwd)

    def effective_roots(self) -> tuple[str, ...]:
        if self.roots:
            return self.roots
        first = self.cwds[0] if self.cwds else None
        return (first,) if first else ()

    def inside(self, path: str) -> bool:
        if not self.roots:
            return False
        return any(_is_under(path, root) for root in self.roots)

    def within(self, path: str | None) -> bool:
        """Inside the workspace, or the working directory without one."""
        return path is not None and any(
            _is_under(path, root) for root in self.effective_roots()
        )

    def protected(self, path: str, *, roots: bool = True) -> str | None:
        """
        Why a recursive operation on *path* is catastrophic, if it is
        (*roots*: a workspace root and its parents count).
        """
        if path == "/":
            return "the root directory"
        if _is_under(self.home, path):
            return "the home directory"
        for root in self.effective_roots() if roots else ():
            if _is_under(root, path):
                return f"the workspace root {root}"
        if path in CRITICAL_DIRS:
            return f"the system directory {path}"
        return None

    def tree_target(  # noqa: C901 - one branch per shape of target
        self, word: str, cmd: NormalCommand, *, roots: bool = True
    ) -> tuple[str | None, str | None]:
        """
        For a recursive operation on *word*: `(path, catastrophic reason)`.
        A glob that matches everything in a protected directory counts as
        that directory; any glob right under `/` is the floor.
        """
        for path in self.resolve_all(word, cmd):
            if path is None:
                continue
            if not _WILDCARD.search(path):
                why = self.protected(path, roots=roots)
                if why:
                    return path, why
                continue
            parts = path.split("/")
            for index, part in enumerate(parts):
                if not any(c in part for c in "*?["):
                    continue
                base = "/".join(parts[:index]) or "/"
                wide = not set(part) - set("*?.") and index == len(parts) - 1
                if base == "/":
                    return base, "everything under /"
                if wide:
                    why = self.protected(base, roots=roots)
                    if why:
                        return base, f"everything in {why}"
                break
            else:
                why = self.protected(path, roots=roots)
                if why:
                    return path, why
        return self.resolve(word, cmd), None

    # -- the checks --

    def write(self, cmd: NormalCommand, word: str | None, how: str) -> None:  # noqa: C901, PLR0912 - one branch per kind of target
        """A write of *word* (`None`: a target that cannot be known)."""
        if word is None:
            self.add(L.WRITE_INTENT, cmd, f"{how} an unresolved target")
            self.add(L.OUTSIDE_WORKSPACE, cmd, f"{how} an unresolved target")
            return
        if word in HARMLESS_WRITE_TARGETS or _DEV_FD.fullmatch(word):
            return
        for path in self.resolve_all(word, cmd):
            if path is None:
                self.add(L.WRITE_INTENT, cmd, f"{how} {word} (unresolved)")
                self.add(
                    L.OUTSIDE_WORKSPACE, cmd, f"{how} {word} (unresolved)"
                )
                continue
            if path in HARMLESS_WRITE_TARGETS or _DEV_FD.fullmatch(path):
                continue
            if _FLOOR_FILES.match(path):
                self.add(L.CATASTROPHIC, cmd, f"{how} {path}")
            if BLOCK_DEVICE.match(path):
                self.add(L.CATASTROPHIC, cmd, f"{how} the block device {path}")
            elif _NET_DEVICE.match(path):
                self.add(L.NETWORK_EXFIL, cmd, f"{how} the network ({path})")
            elif path.startswith("/dev/"):
                self.add(L.DESTRUCTIVE, cmd, f"{how} the device {path}")
            name = posixpath.basename(path)
            if name in STARTUP_FILES and (
                posixpath.dirname(path) == self.home or not self.inside(path)
            ):
                self.add(L.DESTRUCTIVE, cmd, f"{how} the start-up file {path}")
            elif _DESTRUCTIVE_WRITES.match(path):
                self.add(L.DESTRUCTIVE, cmd, f"{how} {path}")
            if "/.git/" in path + "/" or _CODE_FILES.fullmatch(name):
                self.add(
                    L.CODE_EXECUTION,
                    cmd,
                    f"{how} {path}, which other programs run",
                )
            if not self.inside(path):
                self.add(L.WRITE_INTENT, cmd, f"{how} {path}")
                self.add(
                    L.OUTSIDE_WORKSPACE,
                    cmd,
                    f"{how} {path} outside the workspace",
                )

    def delete_tree(self, cmd: NormalCommand, word: str, how: str) -> None:
        path, floor = self.tree_target(word, cmd)
        if floor:
            self.add(L.CATASTROPHIC, cmd, f"{how} of {floor}")
            return
        if not self.within(path):
            self.add(
                L.DESTRUCTIVE,
                cmd,
                f"{how} of {path or word} outside the workspace",
            )
        self.write(cmd, word if path else None, f"{how} of")

    def sensitive(self, cmd: NormalCommand, word: str, how: str) -> None:
        """`credential_file_read` if *word* names a sensitive path."""
        if isinstance(word, GlobWord):
            return  # judged by `glob`
        paths = self.resolve_all(word, cmd)
        if None in paths:
            paths = (*paths, word)  # unknown where: the word as written
        for path in paths:
            if path is not None and SENSITIVE.matches(path):
                self.add(
                    L.CREDENTIAL_FILE_READ,
                    cmd,
                    f"{how} the credential file {word}",
                )
                return

    def outside(
        self,
        cmd: NormalCommand,
        word: str,
        lbl: CommandLabel,
        why: str,
    ) -> None:
        """*lbl* if *word* may name a path outside the workspace."""
        if isinstance(word, GlobWord):
            return  # judged by `glob`
        if word == "-" or "://" in word:
            return
        for path in self.resolve_all(word, cmd):
            if not self.within(path):
                self.add(lbl, cmd, f"{why} {word} outside the workspace")
                return

    def unresolved(self, cmd: NormalCommand) -> None:
        for reason in cmd.unresolved:
            self.add(L.EXECUTION_SEMANTICS_UNRESOLVED, cmd, reason)
        for reason in cmd.code:
            self.add(L.CODE_EXECUTION, cmd, reason)
        if "fork bomb" in cmd.unresolved:
            self.add(L.CATASTROPHIC, cmd, "fork bomb")
        if "nesting too deep" in cmd.unresolved:
            # what runs inside is not seen, so the floor cannot be checked
            self.add(
                L.CATASTROPHIC,
                cmd,
                "wrappers and scripts nested too deep for the floor to see in",
            )


def label(
    commands: Sequence[NormalCommand],
    *,
    cwd: str | None,
    workspace_roots: Sequence[str] | None,
    home: str,
    line_unresolved: Sequence[str] = (),
) -> dict[CommandLabel, list[str]]:
    """
    The risk labels of a line's normalised *commands*, each with the
    reasons for it (every reason names its command).

    Relative paths resolve against *cwd* (followed through `cd`); with
    *cwd* `None` they cannot be resolved, which counts as outside the
    workspace. With *workspace_roots* unset every write target is outside
    it, and reads and recursive deletes are judged against *cwd* as the
    workspace. `~`, `~/...`, `$HOME` are *home*. *line_unresolved* are the
    parser's reasons for the whole line (`ParsedCommand.unresolved`).

    Examples:
        >>> from capscope.commands._model import SimpleCommand
        >>> from capscope.commands._label import label
        >>> from capscope.commands._normalise import normalise
        >>> found = label(normalise(SimpleCommand(("rm", "-fr", "/"))), cwd="/ws", workspace_roots=["/ws"], home="/home/u")
        >>> sorted(found)
        [<CommandLabel.CATASTROPHIC: 'catastrophic'>]
        >>> found[CommandLabel.CATASTROPHIC]
        ['rm -f -r /: recursive delete of the root directory']
    """
    roots = (
        None
        if workspace_roots is None
        else tuple(posixpath.normpath(r) for r in workspace_roots)
    )
    commands = _with_pipes(commands)
    judge = _Judge(
        cwds=(cwd,), roots=roots or None, home=posixpath.normpath(home)
    )
    downloader_upstream = False
    for index, cmd in enumerate(commands):
        if not cmd.piped_input:
            downloader_upstream = False
        _label_one(judge, cmd)
        previous = commands[index - 1] if index else None
        if downloader_upstream and "pipe into interpreter" in cmd.unresolved:
            why = "a download piped into an interpreter"
            judge.add(L.CURL_PIPE_SHELL, cmd, why)
            judge.add(L.CATASTROPHIC, cmd, why)
        if (
            previous is not None
            and previous.piped_output
            and cmd.piped_input
            and cmd.source.background
            and len(cmd.argv) == 1
            and previous.argv == cmd.argv
        ):
            judge.add(
                L.CATASTROPHIC,
                cmd,
                "fork bomb (a command piped into itself in the background)",
            )
        if cmd.program in DOWNLOADERS and cmd.piped_output:
            downloader_upstream = True
        if cmd.program in {"cd", "pushd", "popd"}:
            _cd(judge, cmd)
    _line_checks(judge, commands)
    out = {lbl: list(reasons) for lbl, reasons in judge.out.items()}
    if line_unresolved:
        reasons = out.setdefault(L.EXECUTION_SEMANTICS_UNRESOLVED, [])
        reasons.extend(f"the line: {reason}" for reason in line_unresolved)
    return out


def _with_pipes(commands: Sequence[NormalCommand]) -> list[NormalCommand]:
    """
    Commands normalised one by one with `normalise` (not `normalise_all`)
    do not know their stdin is a pipe; normalise those again with it, so
    `curl x | sh` is caught however the caller normalised.
    """
    groups: list[list[NormalCommand]] = []
    for cmd in commands:
        if groups and groups[-1][0].source is cmd.source:
            groups[-1].append(cmd)
        else:
            groups.append([cmd])
    out: list[NormalCommand] = []
    for index, group in enumerate(groups):
        source = group[0].source
        after_pipe = index > 0 and groups[index - 1][0].source.piped
        if after_pipe and not any(c.piped_input for c in group):
            out.extend(normalise(source, piped_input=True))
        else:
            out.extend(group)
    return out


def _cd(judge: _Judge, cmd: NormalCommand) -> None:
    """Follow a `cd`: after it, the directory is the old one or the new."""
    if cmd.subshell:
        return  # a child shell's directory ends with it
    operands = _positionals(cmd.argv[1:])
    if cmd.program == "popd" or (operands and operands[0] == "-"):
        new: tuple[str | None, ...] = (None,)
    elif not operands:
        new = (judge.home,)
    else:
        new = judge.resolve_all(operands[0], cmd)
    # The cd may fail and the line go on (`;`, `||`): both are possible.
    merged = tuple(dict.fromkeys((*judge.cwds, *new)))
    judge.cwds = merged if len(merged) <= 4 else (*merged[:3], None)  # noqa: PLR2004


def _line_checks(judge: _Judge, commands: Sequence[NormalCommand]) -> None:
    """Downloads run by an interpreter through a substitution or a file."""
    downloads = [c for c in commands if c.program in DOWNLOADERS]
    if not downloads:
        return
    hidden = {"command substitution", "process substitution", "eval", "source"}
    names = {posixpath.basename(p) for p in judge.downloaded}
    for cmd in commands:
        runs_code = (
            cmd.program in SHELLS or family(cmd.program or "") in INTERPRETERS
        )
        in_script = any(w in SHELLS or w == "eval" for w in cmd.wrappers)
        if (
            runs_code or in_script or cmd.program in {"eval", "source", "."}
        ) and hidden & set(cmd.unresolved):
            why = "downloaded code run through a substitution"
            judge.add(L.CURL_PIPE_SHELL, cmd, why)
            judge.add(L.CATASTROPHIC, cmd, why)
        if runs_code or cmd.program in {"source", "."}:
            script = _positionals(cmd.argv[1:])[:1]
            if script and (
                judge.resolve(script[0], cmd) in judge.downloaded
                or posixpath.basename(script[0]) in names
            ):
                why = f"runs the downloaded file {script[0]}"
                judge.add(L.CURL_PIPE_SHELL, cmd, why)
                judge.add(L.CATASTROPHIC, cmd, why)
        elif (
            cmd.program
            and cmd.source.argv
            and cmd.source.argv[0].startswith(("./", "/"))
            and cmd.program in names
        ):
            why = f"runs the downloaded file {cmd.program}"
            judge.add(L.CURL_PIPE_SHELL, cmd, why)
            judge.add(L.CATASTROPHIC, cmd, why)


def _label_one(judge: _Judge, cmd: NormalCommand, depth: int = 0) -> None:  # noqa: C901, PLR0912 - the checks of one command, in order
    judge.unresolved(cmd)
    if cmd.privileged:
        wrappers = [
            w
            for w in cmd.wrappers
            if WRAPPERS.get(w) and WRAPPERS[w].privileged
        ] or ["su"]
        judge.add(L.SUDO, cmd, f"runs privileged ({', '.join(wrappers)})")
    _redirects(judge, cmd)
    name = cmd.program
    known = program(name) if name else None
    if not judge.floor_only:
        _environment(judge, cmd, known)
    if not cmd.argv:
        return
    assert name is not None  # noqa: S101 - argv is not empty
    args = list(cmd.argv[1:])
    if name.startswith("mkfs") or name in FLOOR_PROGRAMS:
        judge.add(L.CATASTROPHIC, cmd, "makes a file system")
    if name in DEVICE_WIPERS:
        for word in _positionals(args, ("-n", "-s", "-o", "-t")):
            path = judge.resolve(word, cmd) or word
            if path.startswith("/dev/"):
                judge.add(L.CATASTROPHIC, cmd, f"wipes the device {path}")
    handler = _PROGRAM_CHECKS.get(name)
    if handler is not None:
        handler(judge, cmd, args)
    if name not in _UNDERSTOOD:
        _embedded(judge, cmd, depth)
    if judge.floor_only:
        return
    if name in KILLERS:
        judge.add(L.PROCESS_KILL, cmd, "signals processes")
    _package_install(judge, cmd, name, args)
    if name not in NON_READING:
        for word in _read_words(name, known, args):
            for candidate in _path_candidates(word):
                judge.sensitive(cmd, candidate, "reads")
    if known is not None:
        _knowledge(judge, cmd, known, args, name)
        _working_directory(judge, cmd, name)
    _globs(judge, cmd, known, args)


#: Programs that run the code or configuration they find in their working
#: directory (a repository's hooks and config, conftest.py, package.json).
_RUNS_ITS_DIRECTORY = frozenset(
    {"git", "pytest", "py.test", "npm", "pnpm", "yarn", "make", "gmake"}
)


def _working_directory(judge: _Judge, cmd: NormalCommand, name: str) -> None:
    """A command run in a directory outside the workspace works there."""
    for base in judge.bases(cmd):
        if judge.within(base):
            continue
        where = base or "an unknown directory"
        if name in _RUNS_ITS_DIRECTORY or family(name) == "python":
            judge.add(
                L.CODE_EXECUTION,
                cmd,
                f"runs in {where}, outside the workspace, whose "
                "configuration and code it runs",
            )
        else:
            judge.add(
                L.READS_OUTSIDE_WORKSPACE,
                cmd,
                f"runs in {where}, outside the workspace",
            )
        return


#: Programs whose last operand is written, not read.
_COPIERS = frozenset({"cp", "mv", "install", "ln", "rsync", "scp"})
_PATTERN_OPTIONS = frozenset(
    {"-e", "--regexp", "-f", "--file", "--expression", "--source"}
)


def _read_words(
    name: str, known: Program | None, args: list[str]
) -> list[str]:
    """The words that may name a file *name* reads: all of them, but a
    pattern operand (`grep id_rsa notes.txt`) or a copy's destination.
    """
    words = list(args)
    operands = _positionals(args, known.values if known else ())
    if name in _COPIERS and operands:
        words.remove(operands[-1])
    elif (
        known is not None
        and known.operands == "pattern+paths"
        and operands
        and not _PATTERN_OPTIONS.intersection(args)
    ):
        words.remove(operands[0])
    return words


def _path_candidates(word: str) -> list[str]:
    """*word*, and the values it may hold that could name a path."""
    out = [word]
    if len(word) > 2 and word.startswith("-") and word[1] != "-":  # noqa: PLR2004
        out.append(word[2:])  # -f/etc/shadow
    for sep in ("=", "@", "<", ":"):
        _, found, value = word.partition(sep)
        if found and value:
            out.append(value)
    if "file://" in word:
        out.append(word.partition("file://")[2])
    return out


def _redirects(judge: _Judge, cmd: NormalCommand) -> None:
    for redirect in cmd.redirects:
        op = redirect.op
        target = redirect.target
        if target is not None and _NET_DEVICE.match(target):
            judge.add(L.NETWORK, cmd, f"redirects ({op}) to {target}")
            if op in _READ_OPS and (
                cmd.program in SHELLS
                or family(cmd.program or "") in INTERPRETERS
            ):
                why = f"runs code read from the network ({target})"
                judge.add(L.CURL_PIPE_SHELL, cmd, why)
                judge.add(L.CATASTROPHIC, cmd, why)
        if op in _WRITE_OPS:
            judge.write(cmd, target, f"redirects ({op}) to")
        elif (
            op == ">&"
            and target is not None
            and not _FD_TARGET.fullmatch(target)
        ):
            judge.write(cmd, target, "redirects (>&) to")
        if op in _READ_OPS and target is not None:
            judge.sensitive(cmd, target, "redirects from")
            judge.outside(
                cmd, target, L.READS_OUTSIDE_WORKSPACE, "redirects from"
            )


def _environment(
    judge: _Judge, cmd: NormalCommand, known: Program | None
) -> None:
    """A variable set for the command that is not on the harmless list."""
    for name, value in cmd.assignments:
        if harmless_env(name, value):
            continue
        judge.add(
            L.EXECUTION_SEMANTICS_UNRESOLVED,
            cmd,
            f"sets {name}, which is not on the harmless list",
        )
        effect = env_effect(name, known)
        if effect is not None:
            judge.add(effect.label, cmd, f"{name}: {effect.why}")


def _package_install(
    judge: _Judge, cmd: NormalCommand, name: str, args: list[str]
) -> None:
    if name in PACKAGE_INSTALL:
        subs = PACKAGE_INSTALL[name]
        operands = (
            [a for a in args if not a.startswith("-")]
            if name not in {"nix-env", "dpkg", "rpm"}
            else args
        )
        if (
            subs is None
            or (operands and operands[0] in subs)
            or (name == "uv" and args[:2] == ["pip", "install"])
        ):
            judge.add(L.PACKAGE_INSTALL, cmd, "installs or runs a package")
    if name == "pacman" and any(
        a.startswith(("-S", "-U")) and "s" not in a[2:] and "i" not in a[2:]
        for a in args
    ):
        judge.add(L.PACKAGE_INSTALL, cmd, "installs a package")
    if name == "yarn" and not args:
        judge.add(L.PACKAGE_INSTALL, cmd, "installs packages")


# --- program knowledge ------------------------------------------------------


def _match_option(
    word: str, options: dict[str, Effect], *, abbreviates: bool
) -> list[tuple[str, Effect, str | None]]:
    """The options in *word* with an effect: `(name, effect, attached)`."""
    if word in options and not word.startswith("--"):
        return [(word, options[word], None)]  # `find -delete`, `-c`
    if word.startswith("--"):
        name, eq, value = word.partition("=")
        attached = value if eq else None
        if name in options:
            return [(name, options[name], attached)]
        if abbreviates and len(name) > 2:  # noqa: PLR2004
            return [
                (key, effect, attached)
                for key, effect in options.items()
                if key.startswith(name) and key.startswith("--")
            ]
        return []
    found = []
    letters = word[1:]
    for j, ch in enumerate(letters):
        effect = options.get("-" + ch)
        if effect is not None:
            found.append(("-" + ch, effect, letters[j + 1 :] or None))
    return found


def _knowledge(  # noqa: C901, PLR0912, PLR0915 - the table-driven checks, in one pass
    judge: _Judge,
    cmd: NormalCommand,
    known: Program,
    args: list[str],
    name: str,
) -> None:
    """What the knowledge of *known* (run as *name*) says of this run."""
    for effect in known.always:
        judge.add(effect.label, cmd, effect.why)
    options = dict(known.options)
    operands: list[str] = []
    sub: Sub | None = None
    sub_name: str | None = None
    python = family(name) in {"python", "pypy"}

    def enter(word: str) -> None:
        nonlocal sub, sub_name
        sub_name, sub = word, known.subcommands[word]
        options.update(sub.options)
        for effect in sub.effects:
            judge.add(effect.label, cmd, f"{name} {word} {effect.why}")

    if name == "git" and args:
        if args[0] in known.subcommands:
            enter(args[0])
        sub_name = args[0]
        args = args[1:]
    scripts = name in {"sed", "awk", "gawk", "mawk", "nawk"}
    pattern_given = False
    ended = False
    i = 0
    while i < len(args):
        word = args[i]
        i += 1
        if ended or not word.startswith("-") or word == "-":
            operands.append(word)
            if (
                sub_name is None
                and len(operands) == 1
                and word in known.subcommands
            ):
                enter(word)
            continue
        if word == "--" and known.end_of_options:
            ended = True
            continue
        option = word.partition("=")[0]
        module_at = _python_module(word) if python else -1
        if module_at >= 0:
            # `python -m pytest ...` (or `-mpytest`, `-Im pytest`): the
            # options before are python's, the rest are the module's
            glued = word[module_at + 1 :]
            module_name = glued or (args[i] if i < len(args) else "")
            rest = args[i:] if glued else args[i + 1 :]
            for key, effect, value in _match_option(
                word[:module_at], options, abbreviates=False
            ):
                _effect(judge, cmd, key, effect, value)
            module = program(module_name)
            if module is not None:
                _knowledge(judge, cmd, module, list(rest), module_name)
            return
        if option in {
            "-e",
            "--regexp",
            "-f",
            "--file",
            "--expression",
            "--source",
        }:
            pattern_given = True
        if scripts and (
            word.startswith(("--expression=", "--source="))
            or (
                len(word) > 2 and word[1] == "e"  # noqa: PLR2004
            )
        ):
            _script_text(judge, cmd, name, word.partition("=")[2] or word[2:])
        consumed = False
        matched = _match_option(word, options, abbreviates=known.abbreviates)
        if (
            known.only_options is not None
            and not matched
            and option not in known.only_options
        ):
            judge.add(
                L.EXECUTION_SEMANTICS_UNRESOLVED,
                cmd,
                f"{option}: an option of {name} capscope does not know",
            )
        for key, effect, attached in matched:
            given = attached
            if (
                given is None
                and effect.value in {"path", "any"}
                and i < len(args)
            ):
                given = args[i]
                consumed = True
            _effect(judge, cmd, key, effect, given)
        if option in known.values and "=" not in word and i < len(args):
            if scripts and option in {"-e", "--expression", "--source"}:
                _script_text(judge, cmd, name, args[i])
            consumed = True
        if consumed:
            i += 1
    if name == "git":
        _git_paths(judge, cmd, operands, args, sub_name)
        return
    if sub is not None and sub.passes_args and (ended or len(operands) > 1):
        judge.add(
            L.EXECUTION_SEMANTICS_UNRESOLVED,
            cmd,
            f"{name} {sub_name} passes arguments to a program capscope "
            "does not know (the package's script)",
        )
    if name in {"grep", "egrep", "fgrep", "rg"}:
        _recursive_read(judge, cmd, name, args, operands, pattern_given)
    role = sub.operands if sub is not None and sub.operands else known.operands
    if role == "pattern+paths" and operands and not pattern_given:
        if scripts:
            _script_text(judge, cmd, name, operands[0])
        operands = operands[1:]
    if role not in {"paths", "pattern+paths"}:
        return
    if name in {"pytest", "py.test"}:
        for word in operands:
            judge.outside(
                cmd,
                word.partition("::")[0],
                L.CODE_EXECUTION,
                "runs tests from",
            )
    elif python or family(name) in {"node", "nodejs"}:
        for word in operands[:1]:  # the script; the rest are its arguments
            judge.outside(cmd, word, L.CODE_EXECUTION, "runs code from")
    elif known.reads:
        for word in operands:
            judge.outside(cmd, word, L.READS_OUTSIDE_WORKSPACE, "reads")


#: Where credentials live: a recursive read of one of these or of a
#: directory above one reads them (`grep -r key ~`).
def _secret_places(home: str) -> tuple[str, ...]:
    return (
        *(
            f"{home}/{d}"
            for d in (".ssh", ".aws", ".gnupg", ".kube", ".docker")
        ),
        f"{home}/.config/gcloud",
        "/etc/shadow",
        "/etc/sudoers",
        "/proc/1",
        "/run/secrets",
        "/var/run/secrets",
        "/root",
    )


def _recursive_read(  # noqa: PLR0913, PLR0917 - the scan's state, passed on
    judge: _Judge,
    cmd: NormalCommand,
    name: str,
    args: list[str],
    operands: list[str],
    pattern_given: bool,  # noqa: FBT001
) -> None:
    """A recursive search of a directory that holds credentials reads them."""
    recursive = (
        name == "rg"
        or any(
            a
            in {
                "--recursive",
                "--dereference-recursive",
                "--directories=recurse",
            }
            or (
                a.startswith("-")
                and not a.startswith("--")
                and ("r" in a[1:] or "R" in a[1:])
            )
            for a in args
        )
        or any(a == "recurse" for a in args)
    )
    if not recursive:
        return
    paths = operands if pattern_given else operands[1:]
    places = _secret_places(judge.home)
    for word in paths or ["."]:
        for path in judge.resolve_all(word, cmd):
            if path is not None and any(_is_under(p, path) for p in places):
                judge.add(
                    L.CREDENTIAL_FILE_READ,
                    cmd,
                    f"searches {word}, which holds credentials",
                )
                return


def _python_module(word: str) -> int:
    """Where `m` stands in a python option bundle (`-Im`), or -1."""
    if word.startswith("--") or not word.startswith("-"):
        return -1
    for index, letter in enumerate(word[1:], start=1):
        if letter == "m":
            return index
        if letter in "WXcQ":  # takes the rest as its value
            return -1
    return -1


def _effect(
    judge: _Judge,
    cmd: NormalCommand,
    key: str,
    effect: Effect,
    value: str | None,
) -> None:
    """Record what one option does (with its value, where it has one)."""
    if (
        value is not None
        and effect.harmless is not None
        and re.fullmatch(effect.harmless, value)
    ):
        return
    shown = (
        f"{key} {value}"
        if value is not None and effect.value != "none"
        else key
    )
    if effect.label is L.READS_OUTSIDE_WORKSPACE and value is not None:
        if effect.value == "path":
            judge.sensitive(cmd, value, f"{key} reads")
            judge.outside(cmd, value, effect.label, f"{key} {effect.why}:")
        else:
            judge.add(effect.label, cmd, f"{shown}: {effect.why}")
        return
    judge.add(effect.label, cmd, f"{shown}: {effect.why}")
    if value is None or effect.value != "path":
        if effect.label is L.CODE_EXECUTION and value:
            _floor_of_text(judge, cmd, value.lstrip("!"))
        return
    if effect.label is L.WRITES_PATH:
        judge.write(cmd, value, f"{key} writes")
    elif effect.label is L.DELETES_PATH:
        judge.delete_tree(cmd, value, f"{key} empties")


def _git_paths(
    judge: _Judge,
    cmd: NormalCommand,
    operands: list[str],
    args: list[str],
    sub: str | None,
) -> None:
    """A repository elsewhere runs its own configuration's programs."""
    for path in cmd.paths:
        for resolved in judge.resolve_all(path, cmd):
            if not judge.within(resolved):
                judge.add(
                    L.CODE_EXECUTION,
                    cmd,
                    f"uses the repository {path} outside the workspace, "
                    "whose configuration can run programs",
                )
                break
    # `git diff A B` with a path outside the repository compares the two
    # files like `--no-index` does, whatever else is on the line
    if (
        sub == "diff"
        or "--no-index" in args
        or any(
            a.startswith("--no-i") and "--no-index".startswith(a) for a in args
        )
    ):
        for word in operands:
            judge.sensitive(cmd, word, "git diff --no-index reads")
            judge.outside(cmd, word, L.READS_OUTSIDE_WORKSPACE, "reads")


# --- sed and awk programs ---------------------------------------------------

_SED_SIMPLE = frozenset("dDgGhHlnNpPqQxz=F}")


def _script_text(
    judge: _Judge, cmd: NormalCommand, name: str, text: str
) -> None:
    if name == "sed":
        for lbl, why in _sed_effects(text):
            judge.add(lbl, cmd, why)
    else:
        _awk_effects(judge, cmd, text)


def _sed_effects(script: str) -> list[tuple[CommandLabel, str]]:  # noqa: C901, PLR0911, PLR0912, PLR0915 - a small parser
    """What a sed script does beyond editing text: `e`, `w`, `r` and kin.

    A script this reader cannot follow is taken to run code.
    """
    out: list[tuple[CommandLabel, str]] = []
    cannot = [(L.CODE_EXECUTION, "a sed script capscope cannot read")]
    i, n = 0, len(script)

    def regex(at: int, delim: str) -> int:
        while at < n:
            c = script[at]
            if c == "\\":
                at += 2
                continue
            if c == delim:
                return at
            at += 1
        return -1

    def line_end(at: int) -> int:
        end = script.find("\n", at)
        return n if end < 0 else end

    while i < n:
        c = script[i]
        if c in " \t\n;":
            i += 1
            continue
        # addresses
        for _ in range(2):
            if i < n and (script[i].isdigit() or script[i] in "$+~"):
                i += 1
                while i < n and (script[i].isdigit() or script[i] == "~"):
                    i += 1
            elif i < n and script[i] in "/\\":
                delim = "/"
                if script[i] == "\\":
                    i += 1
                    if i >= n:
                        return cannot
                    delim = script[i]
                end = regex(i + 1, delim)
                if end < 0:
                    return cannot
                i = end + 1
                while i < n and script[i] in "IM":
                    i += 1
            if i < n and script[i] == ",":
                i += 1
                continue
            break
        while i < n and script[i] in " \t!":
            i += 1
        if i >= n:
            break
        c = script[i]
        i += 1
        if c in _SED_SIMPLE or c == "{":
            while i < n and script[i].isdigit():
                i += 1
        elif c in "aic":
            i = line_end(i)
        elif c in ":btTv":
            while i < n and script[i] not in ";\n":
                i += 1
        elif c in "rR":
            out.append((L.READS_OUTSIDE_WORKSPACE, "sed r reads a file"))
            i = line_end(i)
        elif c in "wW":
            out.append((L.WRITES_PATH, "sed w writes a file"))
            i = line_end(i)
        elif c == "e":
            out.append((L.CODE_EXECUTION, "sed e runs a command"))
            i = line_end(i)
        elif c in "sy":
            if i >= n:
                return cannot
            delim = script[i]
            if delim in "\\\n":
                return cannot
            end = regex(i + 1, delim)
            if end < 0:
                return cannot
            end = regex(end + 1, delim)
            if end < 0:
                return cannot
            i = end + 1
            if c == "s":
                while i < n and script[i] in "gpiImMe0123456789w":
                    if script[i] == "e":
                        out.append(
                            (L.CODE_EXECUTION, "sed s///e runs a command")
                        )
                    if script[i] == "w":
                        out.append((L.WRITES_PATH, "sed s///w writes a file"))
                        i = line_end(i)
                        break
                    i += 1
        elif c == "#":
            i = line_end(i)
        else:
            return cannot
    return out


_AWK_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_AWK_RISK = re.compile(r"system|getline|\||>|@|close|fflush|ENVIRON|PROCINFO")


def _awk_effects(judge: _Judge, cmd: NormalCommand, text: str) -> None:
    """An awk program that may run commands or write files runs code."""
    bare = _AWK_STRING.sub('""', text)
    found = _AWK_RISK.search(bare)
    if found is not None:
        judge.add(
            L.CODE_EXECUTION,
            cmd,
            f"the awk program uses {found.group()!r}, which can run "
            "commands or write files",
        )


# --- globs --------------------------------------------------------------------


def _globs(  # noqa: C901, PLR0912 - one pass over the words, several checks
    judge: _Judge, cmd: NormalCommand, known: Program | None, args: list[str]
) -> None:
    """Whether every name each glob could become is harmless here."""
    ended = False
    for word in args:
        if word == "--":
            ended = True
        if not isinstance(word, GlobWord):
            continue
        if known is None:
            judge.add(
                L.EXECUTION_SEMANTICS_UNRESOLVED,
                cmd,
                f"the glob {word} for a program capscope does not know",
            )
            continue
        judge.globs += 1
        if judge.globs > _MAX_GLOBS:
            judge.add(
                L.EXECUTION_SEMANTICS_UNRESOLVED,
                cmd,
                f"more than {_MAX_GLOBS} globs on one line",
            )
            return
        pattern = word.pattern
        if not known.glob_safe and not (ended and known.end_of_options):
            if pattern.startswith("-"):
                head = re.split(r"[*?\[]", pattern, maxsplit=1)[0]
                risky = "=" not in head
            else:
                risky = may_start_with_dash(pattern)
            if risky:
                judge.add(
                    L.EXECUTION_SEMANTICS_UNRESOLVED,
                    cmd,
                    f"the glob {word} may expand to an option",
                )
        if may_climb(pattern):
            judge.add(
                L.EXECUTION_SEMANTICS_UNRESOLVED,
                cmd,
                f"the glob {word} may leave its directory",
            )
            continue
        reads = cmd.program not in NON_READING
        directory = literal_directory(pattern)
        for base in judge.bases(cmd):
            absolute = _absolute(pattern, base, judge.home)
            if absolute is None:
                judge.add(
                    L.EXECUTION_SEMANTICS_UNRESOLVED,
                    cmd,
                    f"the glob {word} in an unknown directory",
                )
                continue
            start = judge.resolve_plain(directory or ".", base)
            if not judge.within(start):  # bash itself reads the directory
                runs = cmd.program in _RUNS_ITS_DIRECTORY or family(
                    cmd.program or ""
                ) in {"python", "node"}
                judge.add(
                    L.CODE_EXECUTION if runs else L.READS_OUTSIDE_WORKSPACE,
                    cmd,
                    f"the glob {word} names files outside the workspace",
                )
            if reads and SENSITIVE.may_match(absolute):
                judge.add(
                    L.CREDENTIAL_FILE_READ,
                    cmd,
                    f"the glob {word} may name a credential file",
                )


def _absolute(pattern: str, cwd: str | None, home: str) -> str | None:
    if pattern.startswith("/"):
        return pattern
    if pattern == "~" or pattern.startswith("~/"):
        return home + pattern[1:]
    if cwd is None:
        return None
    return cwd.rstrip("/") + "/" + pattern


# --- what unknown programs run ------------------------------------------------


def _embedded(judge: _Judge, cmd: NormalCommand, depth: int) -> None:
    """
    The catastrophic floor of the commands an unknown program's arguments
    spell: `taskset 1 rm -rf /` runs `rm -rf /`, `script -c 'rm -rf /'` and
    `gdb -ex 'shell rm -rf /'` run a script. A known program's name in its
    arguments starts a command; an argument that reads as a line is one.
    Checking more than `_MAX_EMBEDDED_WORDS` words this way is taken as
    catastrophic: the floor cannot say it is not.
    """
    if depth > 3:  # noqa: PLR2004
        return
    args = cmd.argv[1:]
    for k, word in enumerate(args):
        candidates: list[list[str] | str] = []
        base = _basename(word)
        if base in _FLOOR_TRIGGERS or base.startswith("mkfs"):
            candidates.append(list(args[k:]))
        candidates.extend(
            text
            for text in (word, word.partition("=")[2])
            if text and any(c in text for c in " \t\n;|&")
        )
        for candidate in candidates:
            if not _floor_of(judge, cmd, candidate, depth):
                return


def _floor_of_text(judge: _Judge, cmd: NormalCommand, text: str) -> None:
    """The floor of the code an option's value holds (`-c alias.x=!rm`)."""
    if any(c in text for c in " \t\n;|&") and _floor_of(
        judge, cmd, text.partition("=")[2] or text, 0
    ):
        _floor_of(judge, cmd, text, 0)


def _floor_of(
    judge: _Judge, cmd: NormalCommand, candidate: list[str] | str, depth: int
) -> bool:
    """
    Label *cmd* catastrophic if *candidate* (words, or a line) is; whether
    the budget of embedded words allows checking more (past it, *cmd* is
    catastrophic: the floor cannot vouch for what it did not check).
    """
    judge.embedded += (
        len(candidate)
        if isinstance(candidate, list)
        else 1 + len(candidate) // 8
    )
    if judge.embedded > _MAX_EMBEDDED_WORDS:
        judge.add(
            L.CATASTROPHIC,
            cmd,
            "too many embedded commands to check for the floor",
        )
        return False
    from ._model import SimpleCommand
    from ._normalise import normalise_all
    from ._parse import parse

    if isinstance(candidate, str):
        parsed = parse(candidate)
        commands = normalise_all(parsed.commands)
    else:
        commands = normalise(SimpleCommand(tuple(candidate)))
    scratch = _Judge(
        cwds=judge.cwds, roots=judge.roots, home=judge.home, floor_only=True
    )
    scratch.embedded = judge.embedded
    for inner in commands:
        _label_one(scratch, inner, depth + 1)
    judge.embedded = scratch.embedded
    for reason in scratch.out.get(L.CATASTROPHIC, {}):
        judge.add(L.CATASTROPHIC, cmd, f"runs {reason}")
    return True


# --- the catastrophic and destructive checks of single programs --------------


def _rm(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    recursive = any(a in {"-r", "-R", "--recursive"} for a in args)
    operands = _positionals(args)
    if recursive and not operands and "xargs" in cmd.wrappers:
        # the targets come from stdin: nothing shows they are in the
        # workspace, so this is a recursive delete of unknown paths
        judge.add(
            L.DESTRUCTIVE, cmd, "recursive delete of paths read from input"
        )
        judge.write(cmd, None, "recursive delete of")
    for word in operands:
        if recursive:
            judge.delete_tree(cmd, word, "recursive delete")
        else:
            judge.write(cmd, word, "deletes")


def _cp_mv(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    operands = _positionals(args, ("-t", "-S", "--suffix"))
    targets = _option_values(args, {"-t"})
    if not targets and operands:
        targets = operands[-1:]
        operands = operands[:-1]
    how = "moves to" if cmd.argv[0] == "mv" else "writes to"
    for word in targets:
        judge.write(cmd, word, how)
    for word in operands:
        if cmd.argv[0] == "mv":
            judge.write(cmd, word, "moves away")
        else:
            judge.outside(cmd, word, L.READS_OUTSIDE_WORKSPACE, "copies")


def _simple_writer(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    values = (
        *("-m", "-d", "-r", "-t", "-s", "-n", "-o", "-g", "-S", "--mode"),
        *("--date", "--reference", "--size"),
    )
    for word in _positionals(args, values):
        judge.write(cmd, word, "writes to")


def _mode_change(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    reference = any(a == "--reference" for a in args)
    operands = _positionals(args, ("--reference", "--from"))
    if not reference:
        operands = operands[1:]
    recursive = "-R" in args
    for word in operands:
        if recursive:
            # a recursive chmod of the workspace is routine; of / or home not
            _, floor = judge.tree_target(word, cmd, roots=False)
            if floor:
                judge.add(
                    L.CATASTROPHIC, cmd, f"recursive {cmd.argv[0]} of {floor}"
                )
                continue
        judge.write(cmd, word, f"{cmd.argv[0]} on")


def _tee(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    for word in _positionals(args, ("--output-error",)):
        judge.write(cmd, word, "tee writes to")


def _sed(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    if not any(a.startswith("-i") for a in args):
        return
    operands = _positionals(
        [a for a in args if not a.startswith("-i")], ("-e", "-f", "-l")
    )
    if not any(a in {"-e", "-f"} for a in args):
        operands = operands[1:]
    for word in operands:
        judge.write(cmd, word, "edits in place")


def _dd(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    for word in args:
        if word.startswith("of="):
            judge.write(cmd, word[3:], "dd writes to")


_CURL_VALUES = frozenset(
    "-" + c for c in "AbcCdDeEFHKmoPQrTtuUwxXyYz"
) | frozenset(
    {
        "--output-dir",
        "--data-binary",
        "--data-raw",
        "--data-urlencode",
        "--json",
        "--url",
    }
)
_CURL_SENDS = frozenset(
    {"-d", "--data-binary", "--data-ascii", "--json", "--data-urlencode"}
)


def _curl(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    for word in _option_values(
        args, {"-o", "-D", "-c", "--trace", "--trace-ascii", "--stderr"}
    ):
        if word != "-":
            judge.write(cmd, word, "downloads to")
            path = judge.resolve(word, cmd)
            if path:
                judge.downloaded.add(path)
    if "-O" in args or "--remote-name-all" in args:
        target = (_option_values(args, {"--output-dir"}) or ["."])[0]
        judge.write(cmd, target, "downloads into")
        for url in _positionals(args, _CURL_VALUES):
            name = posixpath.basename(url.split("?")[0])
            path = judge.resolve(posixpath.join(target, name), cmd)
            if path:
                judge.downloaded.add(path)
    sends = [
        f"{name} {value}"
        for name, value in zip(args, [*args[1:], ""], strict=True)
        if (name in _CURL_SENDS and "@" in value)
        or (name == "-F" and re.search(r"=[@<]", value))
        or name == "-T"
    ]
    if sends:
        judge.add(
            L.NETWORK_EXFIL, cmd, f"uploads local data ({', '.join(sends)})"
        )


def _wget(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    outputs = _option_values(args, {"-O"})
    for word in outputs:
        if word != "-":
            judge.write(cmd, word, "downloads to")
            path = judge.resolve(word, cmd)
            if path:
                judge.downloaded.add(path)
    for word in _option_values(args, {"-o", "-a"}):
        judge.write(cmd, word, "logs to")
    if not outputs:
        prefix = (_option_values(args, {"-P"}) or ["."])[0]
        judge.write(cmd, prefix, "downloads into")
        values = frozenset("-" + c for c in "aAbBDeiIloOPQRtTUwXy")
        for url in _positionals(args, values):
            path = judge.resolve(
                posixpath.join(prefix, posixpath.basename(url.split("?")[0])),
                cmd,
            )
            if path:
                judge.downloaded.add(path)
    sends = _option_values(args, {"--post-file", "--body-file"})
    if sends:
        judge.add(L.NETWORK_EXFIL, cmd, f"uploads {', '.join(sends)}")


def _netcat(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    name = cmd.argv[0]
    judge.add(L.NETWORK, cmd, "talks to the network")
    if name in {"nc", "ncat", "netcat"} and any(
        a in {"-e", "-c"} for a in args
    ):
        judge.add(L.NETWORK_EXFIL, cmd, "serves a program over the network")
        judge.add(L.CODE_EXECUTION, cmd, "runs a program for the network")
    if name == "socat" and any(
        re.match(r"(?i)(exec|system):", a) for a in args
    ):
        judge.add(L.NETWORK_EXFIL, cmd, "serves a program over the network")
        judge.add(L.CODE_EXECUTION, cmd, "runs a program for the network")
    listening = "-l" in args
    fed = cmd.piped_input or any(
        r.op in {"<", "<<<", "<<", "<<-"} for r in cmd.redirects
    )
    if fed and not listening:
        judge.add(L.NETWORK_EXFIL, cmd, "sends its input to a remote")


def _ssh(judge: _Judge, cmd: NormalCommand, _: list[str]) -> None:
    fed = cmd.piped_input or any(
        r.op in {"<", "<<<", "<<", "<<-"} for r in cmd.redirects
    )
    if fed:
        judge.add(L.NETWORK_EXFIL, cmd, "sends its input to a remote")


def _is_remote(word: str) -> bool:
    return bool(re.match(r"^([^/:]+@)?[^/:]+:", word)) or "://" in word


def _copy_remote(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    values = (
        *("-i", "-F", "-o", "-J", "-P", "-S", "-l", "-c", "-e", "--rsh"),
        *("--exclude", "--include", "--filter"),
    )
    operands = _positionals(args, values)
    if len(operands) < 2:  # noqa: PLR2004
        return
    *sources, target = operands
    if _is_remote(target) and any(not _is_remote(s) for s in sources):
        judge.add(L.NETWORK_EXFIL, cmd, f"copies local files to {target}")
    if any(_is_remote(w) for w in operands):
        judge.add(L.NETWORK, cmd, "copies over the network")
    if not _is_remote(target):
        judge.write(cmd, target, "copies into")


def _tar(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:  # noqa: C901, PLR0912 - a dispatch over option tables reads best in one place
    words = list(args)
    if words and not words[0].startswith("-"):
        words[0] = "-" + words[0]
    mode = ""
    archive: str | None = None
    directory: str | None = None
    pending: list[str] = []
    for i, tok in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else None
        if tok in {"-x", "--extract", "--get"}:
            mode = "x"
        elif tok in {"-c", "--create", "-r", "--append", "-u", "--update"}:
            mode = "c"
        elif tok.startswith("--file"):
            archive = tok.partition("=")[2] or nxt
        elif tok.startswith("--directory"):
            directory = tok.partition("=")[2] or nxt
        elif tok == "-C":
            directory = nxt
        elif tok.startswith("-") and not tok.startswith("--"):
            for j, ch in enumerate(tok[1:], start=1):
                if ch in "xcru":
                    mode = "x" if ch == "x" else "c"
                if ch in "fC":
                    value = tok[j + 1 :]
                    if value:
                        if ch == "f":
                            archive = value
                        else:
                            directory = value
                        break
                    pending.append(ch)
            for ch in pending:
                if nxt is not None:
                    if ch == "f":
                        archive = nxt
                    else:
                        directory = nxt
            pending = []
    if archive is not None and _is_remote(archive):
        judge.add(L.NETWORK, cmd, f"tar reads or writes the remote {archive}")
        judge.add(L.CODE_EXECUTION, cmd, "tar runs a remote shell for it")
    if mode == "x":
        judge.write(cmd, directory or ".", "extracts into")
    elif mode == "c" and archive and archive != "-":
        judge.write(cmd, archive, "writes the archive")


def _git_checks(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    if not args or args[0] != "push":
        return
    words = args[1:]
    force = [
        w
        for w in words
        if w in {"-f", "--force"}
        or w.startswith(("--force-with-lease", "--force-if-includes"))
    ]
    everything = [w for w in words if w in {"--mirror", "--all"}]
    deleting = "-d" in words
    operands = _positionals(
        words, ("-o", "--push-option", "--repo", "--receive-pack", "--exec")
    )
    refspecs = operands[1:]
    forced_refs = [r for r in refspecs if r.startswith("+")]
    if "--mirror" in words:
        force.append("--mirror")
    if not (
        force
        or forced_refs
        or deleting
        or any(r.startswith(":") for r in refspecs)
    ):
        return
    judge.add(L.GIT_FORCE_PUSH, cmd, "rewrites remote history")
    targets = []
    for ref in refspecs:
        if not (force or deleting or ref.startswith(("+", ":"))):
            continue
        dest = ref.lstrip("+").rpartition(":")[2].removeprefix("refs/heads/")
        targets.append(dest)
    protected = [
        t
        for t in targets
        if any(fnmatch.fnmatchcase(t, p) for p in PROTECTED_BRANCHES)
    ]
    if protected:
        judge.add(
            L.CATASTROPHIC,
            cmd,
            f"force push to the protected branch {protected[0]}",
        )
    elif everything and (force or "--mirror" in words):
        judge.add(L.CATASTROPHIC, cmd, "force push of every branch")


def _find_checks(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    starts: list[str] = []
    filtered = False
    seen_expr = False
    for tok in args:
        if not seen_expr and not tok.startswith(("-", "(", "!")):
            starts.append(tok)
            continue
        seen_expr = True
        if tok.startswith("-") and tok not in {
            *("-depth", "-d", "-xdev", "-mount", "-print", "-print0", "-ls"),
            *("-noleaf", "-follow", "-delete", "-ignore_readdir_race"),
            *("-maxdepth", "-mindepth"),
        }:
            filtered = True
    starts = starts or ["."]
    if "-delete" in args:
        for start in starts:
            judge.delete_tree(
                cmd,
                posixpath.join(start, "x") if filtered else start,
                "find -delete",
            )
    for start in starts:
        judge.outside(cmd, start, L.READS_OUTSIDE_WORKSPACE, "searches")


def _zip(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    operands = _positionals(args)
    if operands:
        judge.write(cmd, operands[0], "writes the archive")


def _crontab(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    if "-l" not in args:
        judge.write(
            cmd, "/var/spool/cron/crontabs/user", "crontab installs into"
        )


_PROGRAM_CHECKS = {
    "rm": _rm,
    "rmdir": _simple_writer,
    "unlink": _simple_writer,
    "shred": _simple_writer,
    "truncate": _simple_writer,
    "touch": _simple_writer,
    "mkdir": _simple_writer,
    "cp": _cp_mv,
    "mv": _cp_mv,
    "ln": _cp_mv,
    "install": _cp_mv,
    "chmod": _mode_change,
    "chown": _mode_change,
    "chgrp": _mode_change,
    "tee": _tee,
    "sed": _sed,
    "dd": _dd,
    "curl": _curl,
    "wget": _wget,
    "nc": _netcat,
    "ncat": _netcat,
    "netcat": _netcat,
    "socat": _netcat,
    "telnet": _netcat,
    "ssh": _ssh,
    "scp": _copy_remote,
    "rsync": _copy_remote,
    "tar": _tar,
    "git": _git_checks,
    "find": _find_checks,
    "zip": _zip,
    "crontab": _crontab,
}


#: Programs whose arguments the knowledge, the normaliser or the checks
#: above understand: no other command hides in them (the floor looks into
#: all the others).
_UNDERSTOOD = (
    frozenset(PROGRAMS)
    | frozenset(_PROGRAM_CHECKS)
    | frozenset(WRAPPERS)
    | SHELLS
    | SAFE_BUILTINS
    | STATE_BUILTINS
    | KILLERS
    | frozenset(PACKAGE_INSTALL)
    | frozenset(INTERPRETERS)
    | {"eval", "source", ".", "su", "watch", "xargs", "python3", "perl"}
)
