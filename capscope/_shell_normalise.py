r"""
Normalise parsed shell commands and put risk labels on them (issue 5).

A policy that matched the text an agent sent would be talked around by
spelling: `/bin/rm -fr /`, `sudo env X=1 nice rm --recursive --force /`,
`bash -lc 'rm -rf ~'`, `find / -exec rm -rf {} \\;`. So every simple command
of `capscope._shell_parse.parse` is first *normalised* into the command(s)
that actually run (`normalise`): program by basename, wrappers unwrapped
with their own options skipped, shell `-c` scripts parsed again, short flags
split, `--opt=value` split, and the dangerous programs' long options
replaced by their short equivalents. `label` then reads the normalised
commands and says which risk labels (`CommandLabel`) apply and why.

Everything here is static: no file is read, no symlink resolved, no variable
but `$HOME`/`$PWD` expanded. What cannot be known statically is reported in
`NormalCommand.unresolved` and becomes `execution_semantics_unresolved`.

The behaviour lives in the data tables near the top, so a new wrapper, a new
reading program or a new protected branch is one line.
"""

from __future__ import annotations

import fnmatch
import posixpath
import re
import shlex
from collections.abc import Iterable, Sequence

import attrs

from ._shell import Redirect, SimpleCommand
from .policies.approval import DEFAULT_SENSITIVE_PATHS
from .policies.command import CommandLabel

__all__ = [
    "NormalCommand",
    "is_fork_bomb",
    "label",
    "normalise",
    "normalise_all",
]

L = CommandLabel

# --- data tables -------------------------------------------------------

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
        "/bin",
        "/boot",
        "/dev",
        "/etc",
        "/home",
        "/lib",
        "/lib32",
        "/lib64",
        "/opt",
        "/proc",
        "/root",
        "/sbin",
        "/sys",
        "/usr",
        "/var",
        "/Users",
        "/System",
        "/Library",
        "/Applications",
    }
)

#: Basenames of shell start-up files (writes to them are `destructive`).
STARTUP_FILES = frozenset(
    {
        ".bashrc",
        ".bash_profile",
        ".bash_login",
        ".bash_logout",
        ".profile",
        ".zshrc",
        ".zshenv",
        ".zprofile",
        ".zlogin",
        ".zlogout",
        ".kshrc",
        ".cshrc",
        ".tcshrc",
        ".login",
        ".inputrc",
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
    "*/.gitconfig",
    "/var/spool/cron/*",
)

#: Credential paths beyond the approval defaults: matched case-insensitively
#: on the absolute path and on the basename, like `DEFAULT_SENSITIVE_PATHS`.
EXTRA_SENSITIVE_PATHS = (
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/sudoers.d/*",
    "*/.ssh/*",
    "*/.gnupg/*",
    "*/.aws",
    "*/.aws/*",
    "*/.config/gh/hosts.yml",
    "*/.config/gcloud/*",
    "*/.azure/*",
)
SENSITIVE_PATHS = DEFAULT_SENSITIVE_PATHS + EXTRA_SENSITIVE_PATHS

#: Programs whose path arguments are read (for `credential_file_read`).
READERS = frozenset(
    {
        *("cat", "tac", "less", "more", "most", "head", "tail", "nl"),
        *("grep", "egrep", "fgrep", "rg", "ag", "ack", "sed"),
        *("awk", "gawk", "mawk", "nawk", "cut", "sort", "uniq", "paste"),
        *("cp", "mv", "scp", "rsync", "install", "dd", "ln"),
        *("base64", "base32", "basenc", "xxd", "od", "hexdump", "hd"),
        *("strings", "tar", "zip", "gzip", "bzip2", "xz", "zstd", "7z"),
        *("openssl", "diff", "cmp", "comm", "jq", "yq", "iconv", "bat"),
        *("batcat", "vi", "vim", "nvim", "view", "nano", "emacs", "fold"),
        *("curl", "wget", "nc", "ncat", "netcat", "socat", "pr", "fmt"),
    }
)

#: Programs whose first positional argument is a pattern or a program,
#: not a file (unless `-e`/`-f` gives it).
PATTERN_FIRST = frozenset(
    {"grep", "egrep", "fgrep", "rg", "ag", "ack", "sed"}
    | {"awk", "gawk", "mawk", "nawk"}
)

#: Programs that download (a downloader piped into a shell is the floor).
DOWNLOADERS = frozenset(
    {"curl", "wget", "fetch", "aria2c", "http", "https", "lwp-request"}
)

#: Shells: `-c SCRIPT` is parsed again; stdin from a pipe is unresolved.
SHELLS = frozenset(
    {"sh", "bash", "zsh", "dash", "ksh", "mksh", "ash", "yash", "fish"}
    | {"csh", "tcsh", "posh"}
)

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

#: The awk family runs its program text; these words in it run commands.
AWKS = frozenset({"awk", "gawk", "mawk", "nawk"})

#: Environment variables that make the next program run other code.
CODE_ENV_VARS = frozenset(
    {
        *("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "BASH_ENV", "ENV"),
        *("PROMPT_COMMAND", "PATH", "PAGER", "GIT_PAGER", "EDITOR"),
        *("VISUAL", "GIT_EDITOR", "GIT_SSH", "GIT_SSH_COMMAND"),
        *("GIT_EXTERNAL_DIFF", "GIT_ASKPASS", "GIT_EXEC_PATH"),
        *("GIT_PROXY_COMMAND", "GIT_SEQUENCE_EDITOR", "GIT_CONFIG_COUNT"),
        *("GIT_CONFIG_PARAMETERS", "GIT_CONFIG_GLOBAL", "GIT_CONFIG"),
        *("PERL5OPT", "NODE_OPTIONS", "RUBYOPT", "PYTHONSTARTUP"),
        *("PYTHONPATH", "SHELLOPTS", "BASHOPTS", "IFS"),
    }
)
CODE_ENV_PREFIXES = ("DYLD_", "GIT_CONFIG_KEY_", "GIT_CONFIG_VALUE_")

#: Package managers: program -> subcommands that install. `None`: the
#: program always installs or fetches and runs a package.
PACKAGE_INSTALL: dict[str, frozenset[str] | None] = {
    "pip": frozenset({"install", "download"}),
    "pip3": frozenset({"install", "download"}),
    "pipx": frozenset({"install", "run", "inject"}),
    "uv": frozenset({"add", "install", "run", "tool"}),
    "poetry": frozenset({"add", "install"}),
    "conda": frozenset({"install", "create"}),
    "mamba": frozenset({"install", "create"}),
    "npm": frozenset({"install", "i", "add", "ci", "exec", "isntall"}),
    "yarn": frozenset({"add", "install", "global", "dlx"}),
    "pnpm": frozenset({"add", "install", "i", "dlx"}),
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

#: Network programs that send what they read (for `network_exfil`).
NETCATS = frozenset({"nc", "ncat", "netcat", "socat", "telnet", "ssh"})


@attrs.frozen
class _Spec:
    """How a wrapper's own options look, so they can be skipped."""

    short_arg: str = ""  # short options that take a value
    short_flag: str = ""  # short options that do not
    long_arg: frozenset[str] = frozenset()
    long_flag: frozenset[str] = frozenset()
    positionals: int = 0  # operands before the command (timeout DURATION)
    assignments: bool = False  # NAME=value words before the command
    numeric: bool = False  # `-5` is an option (nice)
    privileged: bool = False


def _fs(*names: str) -> frozenset[str]:
    return frozenset(names)


#: Wrappers that run their operands as a command, and their options.
WRAPPERS: dict[str, _Spec] = {
    "sudo": _Spec(
        short_arg="ugpCDrtUTh",
        short_flag="AbEeHiKklnPSsVvBNR",
        long_arg=_fs(
            "user", "group", "prompt", "host", "close-from", "chdir",
            "role", "type", "other-user", "command-timeout",
        ),
        long_flag=_fs(
            "preserve-env", "login", "shell", "non-interactive", "stdin",
            "background", "set-home", "askpass", "reset-timestamp",
            "remove-timestamp", "preserve-groups", "edit", "list",
            "validate", "version", "help", "bell",
        ),
        assignments=True,
        privileged=True,
    ),
    "doas": _Spec(short_arg="uC", short_flag="nsL", privileged=True),
    "pkexec": _Spec(long_arg=_fs("user"), long_flag=_fs("disable-internal-agent", "keep-cwd"), privileged=True),
    "run0": _Spec(short_arg="u", long_arg=_fs("user", "chdir"), privileged=True),
    "env": _Spec(
        short_arg="uCSP",
        short_flag="i0v",
        long_arg=_fs("unset", "chdir", "split-string"),
        long_flag=_fs(
            "ignore-environment", "null", "debug", "block-signal",
            "default-signal", "ignore-signal", "list-signal-handling",
        ),
        assignments=True,
    ),
    "command": _Spec(short_flag="pvV"),
    "builtin": _Spec(),
    "exec": _Spec(short_arg="a", short_flag="cl"),
    "nice": _Spec(short_arg="n", long_arg=_fs("adjustment"), numeric=True),
    "nohup": _Spec(),
    "time": _Spec(
        short_arg="fo",
        short_flag="pavq",
        long_arg=_fs("format", "output"),
        long_flag=_fs("portability", "append", "verbose", "quiet"),
    ),
    "timeout": _Spec(
        short_arg="sk",
        short_flag="v",
        long_arg=_fs("signal", "kill-after"),
        long_flag=_fs("preserve-status", "foreground", "verbose"),
        positionals=1,
    ),
    "stdbuf": _Spec(short_arg="ioe", long_arg=_fs("input", "output", "error")),
    "ionice": _Spec(
        short_arg="cnpPu",
        short_flag="t",
        long_arg=_fs("class", "classdata", "pid", "pgid", "uid"),
        long_flag=_fs("ignore"),
    ),
    "setsid": _Spec(short_flag="cfw", long_flag=_fs("ctty", "fork", "wait")),
    "xargs": _Spec(
        short_arg="adEILnPs",
        short_flag="0oprtx",
        long_arg=_fs(
            "arg-file", "delimiter", "eof", "replace", "max-lines",
            "max-args", "max-procs", "max-chars", "process-slot-var",
        ),
        long_flag=_fs(
            "null", "open-tty", "interactive", "no-run-if-empty",
            "verbose", "exit", "show-limits",
        ),
    ),
    "busybox": _Spec(),
    "toybox": _Spec(),
    "chroot": _Spec(long_arg=_fs("userspec", "groups"), long_flag=_fs("skip-chdir"), positionals=1),
    "unbuffer": _Spec(short_flag="p"),
    "chronic": _Spec(short_flag="ev"),
}  # fmt: skip

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


# --- the normalised command ---------------------------------------------


@attrs.frozen
class NormalCommand:
    """
    One command a policy should judge, after normalisation.

    Fields:

    - `argv`: the normalised words (program by basename, wrappers removed,
      flags split, long options of the dangerous programs made short).
    - `source`: the simple command of the parse this came from (for a
      `bash -c` script, the outer command).
    - `privileged`: `sudo`, `doas`, `su`... wrapped it.
    - `wrappers`: the wrappers removed, outermost first (`("sudo", "env")`).
    - `unresolved`: why what it runs cannot be known statically (the
      parser's reasons plus `"pipe into interpreter"`, `"interpreter
      code"`, `"git config override"`...).
    - `redirects`: its redirections and those of the commands around it
      (`bash -c 'x' > f` writes `f`).
    - `paths`: path values taken out of `argv` (`git -C DIR`,
      `--git-dir`, `--work-tree`), kept for the workspace check.
    - `cwd`: the directory a wrapper switched to (`env -C`, `git -C`,
      `sudo -D`), relative to the line's working directory; `None` if none.
    - `piped_input` / `piped_output`: its stdin comes from a pipe / its
      stdout goes into one.

    Example:
        >>> from capscope._shell import SimpleCommand
        >>> from capscope._shell_normalise import normalise
        >>> [c.argv for c in normalise(SimpleCommand(("sudo", "/bin/rm", "-rf", "/")))]
        [('rm', '-r', '-f', '/')]
    """

    argv: tuple[str, ...]
    source: SimpleCommand
    privileged: bool = False
    wrappers: tuple[str, ...] = ()
    unresolved: tuple[str, ...] = ()
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    cwd: str | None = None
    piped_input: bool = False
    piped_output: bool = False

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
    redirects: tuple[Redirect, ...] = ()
    assignments: tuple[tuple[str, str], ...] = ()
    paths: tuple[str, ...] = ()
    cwd: str | None = None
    piped_input: bool = False
    piped_output: bool = False
    depth: int = 0

    def make(self, argv: Sequence[str], *extra: str) -> NormalCommand:
        return NormalCommand(
            argv=tuple(argv),
            source=self.source,
            privileged=self.privileged,
            wrappers=self.wrappers,
            unresolved=_unique(self.unresolved + extra),
            redirects=self.redirects,
            assignments=self.assignments,
            paths=self.paths,
            cwd=self.cwd,
            piped_input=self.piped_input,
            piped_output=self.piped_output,
        )

    def wrap(self, name: str, **changes: object) -> _Ctx:
        return attrs.evolve(
            self,
            wrappers=(*self.wrappers, name),
            depth=self.depth + 1,
            **changes,  # type: ignore[arg-type]
        )

    def more(self, *reasons: str) -> _Ctx:
        return attrs.evolve(self, unresolved=self.unresolved + reasons)


def _unique(items: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(items))


def _basename(word: str) -> str:
    name = posixpath.basename(word.rstrip("/")) if "/" in word else word
    return name or word


def _family(program: str) -> str:
    """`python3.11` -> `python`, `perl5.36` -> `perl`."""
    base = re.sub(r"[\d.]+$", "", program)
    return base or program


def _env_reasons(assignments: Iterable[tuple[str, str]]) -> tuple[str, ...]:
    for name, _ in assignments:
        if name in CODE_ENV_VARS or name.startswith(CODE_ENV_PREFIXES):
            return ("environment override",)
    return ()


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

    Example:
        >>> from capscope._shell import SimpleCommand
        >>> from capscope._shell_normalise import normalise
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
    )
    return tuple(
        _normalise(cmd.argv, ctx.more(*_env_reasons(cmd.assignments)))
    )


def normalise_all(
    commands: Sequence[SimpleCommand],
) -> tuple[NormalCommand, ...]:
    """
    Normalise every simple command of a line, in order, telling each
    whether its stdin is a pipe (the previous one's `piped`).

    Example:
        >>> from capscope._shell import SimpleCommand
        >>> from capscope._shell_normalise import normalise_all
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


def _normalise(argv: Sequence[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901, PLR0911, PLR0912 -- a dispatch over option tables reads best in one place
    if not argv:
        return [ctx.make(())]
    if ctx.depth > MAX_DEPTH:
        return [ctx.make(argv, "nesting too deep")]
    program = _basename(argv[0])
    args = list(argv[1:])
    family = _family(program)
    if program in WRAPPERS:
        return _wrapper(program, args, ctx)
    if program == "find":
        return _find(args, ctx)
    if program in SHELLS:
        return _shell(program, args, ctx)
    if program == "su":
        return _su(args, ctx)
    if program == "eval":
        script = " ".join(args)
        return _script(script, ctx.wrap("eval").more("eval"), (program, *args))
    if program in {"source", "."}:
        return [ctx.make((program, *args), "source")]
    if program == "git":
        return _git(args, ctx)
    if program == "watch":
        return _watch(args, ctx)
    if family in INTERPRETERS:
        return _interpreter(program, family, args, ctx)
    if program in AWKS:
        return _awk(program, args, ctx)
    if (
        "/" in argv[0]
        and posixpath.dirname(posixpath.normpath(argv[0])) not in SYSTEM_BIN
    ):
        # `./ls` or `/tmp/x/cat` is not the `ls` or `cat` an allow rule means.
        reason = "program outside the system paths"
        return [ctx.make((program, *_flags(program, args)), reason)]
    return [ctx.make((program, *_flags(program, args)))]


def _skip(  # noqa: C901, PLR0912 -- a dispatch over option tables reads best in one place
    args: Sequence[str], spec: _Spec
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
        while i < len(args) and re.match(r"[A-Za-z_]\w*=", args[i]):
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


def _wrapper(program: str, args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901, PLR0912 -- a dispatch over option tables reads best in one place
    spec = WRAPPERS[program]
    index, seen, unknown = _skip(args, spec)
    opts = {name for name, _ in seen}
    if program == "command" and opts & {"-v", "-V"}:
        return [ctx.make((program, *args))]  # a lookup: runs nothing
    extra: list[str] = []
    if unknown:
        extra.append("unknown wrapper option")
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
        skipped = [a for a in args[:start] if re.match(r"[A-Za-z_]\w*=", a)]
        assigned = _assignments(skipped)
        changes["assignments"] = ctx.assignments + assigned
        extra.extend(_env_reasons(assigned))
    for name, value in seen:
        if name in {"-S", "--split-string"} and value is not None:
            try:
                rest = shlex.split(value) + rest
            except ValueError:
                extra.append("unbalanced quote")
    if program == "xargs":
        changes["piped_input"] = False
        for name, value in seen:
            if name in {"-I", "--replace", "-i"}:
                # what replaces it comes from stdin: an unknown word
                marker = value or "{}"
                rest = [a.replace(marker, "$XARGS_INPUT") for a in rest]
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


def _find(args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901 -- a dispatch over option tables reads best in one place
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
    result = [ctx.make(outer)]
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
            result.extend(_normalise(argv, ctx.wrap("find")))
    return result


_SHELL_ARG_SHORT = frozenset("oO")
_SHELL_ARG_LONG = frozenset({"--rcfile", "--init-file", "--init-command"})


def _shell(program: str, args: list[str], ctx: _Ctx) -> list[NormalCommand]:
    has_c = reads_stdin = False
    i = 0
    while i < len(args):
        tok = args[i]
        if tok in {"--", "-"}:
            i += 1
            break
        if tok in _SHELL_ARG_LONG:
            i += 2
            continue
        if tok.startswith("--"):
            if tok == "--command":  # fish
                has_c = True
            i += 1
            continue
        if tok.startswith(("-", "+")) and len(tok) > 1:
            letters = tok[1:]
            has_c = has_c or "c" in letters
            reads_stdin = reads_stdin or "s" in letters
            i += 1 + sum(1 for ch in letters if ch in _SHELL_ARG_SHORT)
            continue
        break
    operands = args[i:]
    if has_c:
        if not operands:
            return [ctx.make((program, *args), "shell script not visible")]
        return _script(operands[0], ctx.wrap(program), (program, *args))
    if operands and not reads_stdin:
        return [ctx.make((program, *args))]  # a script file
    return _stdin_code(program, (program, *args), ctx)


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
                return _script(redirect.target, ctx.wrap(program), argv)
            return [ctx.make(argv, "interpreter code")]
        if redirect.op == "<" or (
            redirect.op == "<&" and redirect.target not in {"0", "-"}
        ):
            return [ctx.make(argv)]  # a script file, like `sh file`
    return [ctx.make(argv)]  # interactive


def _script(
    script: str, ctx: _Ctx, argv: Sequence[str]
) -> list[NormalCommand]:
    """Parse a `-c` script (or `eval`'s words) and normalise what it runs."""
    reasons: list[str] = []
    if is_fork_bomb(script):
        reasons.append("fork bomb")
    try:
        from ._shell_parse import parse
    except ImportError:  # pragma: no cover - the parser ships with this
        return [ctx.make(argv, "shell script not parsed", *reasons)]
    parsed = parse(script)
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
        ).more(*_env_reasons(cmd.assignments))
        out.extend(_normalise(cmd.argv, sub))
        previous_piped = cmd.piped
    return out


def _su(args: list[str], ctx: _Ctx) -> list[NormalCommand]:
    spec = _Spec(
        short_arg="cgGsw",
        short_flag="lmpfP",
        long_arg=_fs("command", "group", "supp-group", "shell", "whitelist-environment", "session-command"),
        long_flag=_fs("login", "preserve-environment", "pty", "fast"),
    )  # fmt: skip
    _, seen, _ = _skip([a for a in args if a != "-"], spec)
    inner = ctx.wrap("su", privileged=True)
    for name, value in seen:
        if name in {"-c", "--command", "--session-command"} and value:
            return _script(value, inner, ("su", *args))
    return [inner.make(("su", *args))]


def _watch(args: list[str], ctx: _Ctx) -> list[NormalCommand]:
    spec = _Spec(
        short_arg="dnq",
        short_flag="bceghptwx",
        long_arg=_fs("interval", "differences", "equexit", "errexit"),
        long_flag=_fs("beep", "color", "chgexit", "exec", "precise", "no-title", "no-wrap"),
    )  # fmt: skip
    index, seen, _ = _skip(args, spec)
    rest = args[index:]
    if not rest:
        return [ctx.make(("watch", *args))]
    if any(name in {"-x", "--exec"} for name, _ in seen):
        return _normalise(rest, ctx.wrap("watch"))
    return _script(" ".join(rest), ctx.wrap("watch"), ("watch", *args))


def _interpreter(  # noqa: C901, PLR0911, PLR0912 -- a dispatch over option tables reads best in one place
    program: str, family: str, args: list[str], ctx: _Ctx
) -> list[NormalCommand]:
    code_short, arg_short, code_long = INTERPRETERS[family]
    argv = (program, *args)
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
                return [ctx.make(argv, "interpreter code")]
            i += 1
            continue
        if tok.startswith("-") and len(tok) > 1:
            takes_next = False
            attached = INTERPRETER_ATTACHED.get(family, "")
            digits = INTERPRETER_DIGITS.get(family, "")
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
                    return [ctx.make(argv, "interpreter code")]
                if ch in arg_short:
                    if ch == "m" and family in {"python", "pypy"}:
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


def _python_module(  # noqa: PLR0913, PLR0917 -- the scan state, passed on
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


def _awk(program: str, args: list[str], ctx: _Ctx) -> list[NormalCommand]:
    positional = _positionals(args, frozenset({"-F", "-v", "-f", "-e"}))
    has_file = any(a.startswith(("-f", "--file")) for a in args)
    if positional and not has_file:
        text = positional[0]
        if "system" in text or "|" in text or "getline" in text:
            return [ctx.make((program, *args), "interpreter code")]
    return [ctx.make((program, *args))]


def _git(args: list[str], ctx: _Ctx) -> list[NormalCommand]:  # noqa: C901 -- a dispatch over option tables reads best in one place
    """Strip git's global options; `-c` and friends run code."""
    extra: list[str] = []
    paths: list[str] = []
    cwd = ctx.cwd
    i = 0
    while i < len(args) and args[i].startswith("-"):
        name, eq, value = args[i].partition("=")
        if name in GIT_GLOBAL_CODE:
            extra.append("git config override")
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
            extra.append("git config override")
            takes = False
        else:
            extra.append("unknown git option")
            takes = False
        i += 2 if takes else 1
    inner = attrs.evolve(ctx, paths=ctx.paths + tuple(paths), cwd=cwd)
    rest = args[i:]
    if not rest:
        return [inner.make(("git",), *extra)]
    sub = rest[0]
    words = _split_eq(rest[1:])
    if sub == "push":
        words = _split_bundles(words, "o", "")
        table = CANONICAL["git push"]
        words = [table.get(w, w) for w in words]
    return [inner.make(("git", sub, *words), *extra)]


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


#: Programs parsed by GNU getopt_long, which accepts any unambiguous
#: prefix of a long option (`rm --rec --fo /` is `rm -r -f /`).
GNU_ABBREVIATING = frozenset(
    {"rm", "chmod", "chown", "chgrp", "cp", "mv", "sed", "tee"}
)


#: "--" and two letters: shorter prefixes are too easily ambiguous.
_SHORTEST_ABBREVIATION = 4


def _abbreviation(
    program: str, word: str, table: dict[str, str]
) -> str | None:
    if (
        program not in GNU_ABBREVIATING
        or not word.startswith("--")
        or len(word) < _SHORTEST_ABBREVIATION
    ):
        return None
    matches = {short for long, short in table.items() if long.startswith(word)}
    return matches.pop() if len(matches) == 1 else None


# --- fork bombs -------------------------------------------------------------

_FORK_BOMB = re.compile(
    r"(?P<n>[\w:.\-]+)\(\)\{(?P=n)\|(?P=n)&?;?\}"
    r"|function(?P<m>[\w:.\-]+)(?:\(\))?\{(?P=m)\|(?P=m)&?;?\}"
    r"|(?P<k>[\w:.\-]+)\(\)\{(?P=k)&?\|?(?P=k)&"
)


def is_fork_bomb(text: str) -> bool:
    """
    Whether *text* defines a function that pipes into itself (the classic
    `:(){ :|:& };:` and its renamings), whitespace ignored.

    Example:
        >>> from capscope._shell_normalise import is_fork_bomb
        >>> is_fork_bomb(":(){ :|:& };:"), is_fork_bomb("bomb() { bomb | bomb & }; bomb")
        (True, True)
        >>> is_fork_bomb("f() { echo hi; }; f")
        False
    """
    squeezed = re.sub(r"\s+", "", text)
    squeezed = squeezed.replace("function", "function ").replace(
        "function ", "function"
    )
    return bool(_FORK_BOMB.search(squeezed))


# --- labelling ------------------------------------------------------------


def _show(cmd: NormalCommand) -> str:
    text = shlex.join(cmd.argv) if cmd.argv else "(assignments)"
    if cmd.privileged:
        text = "(privileged) " + text
    return text if len(text) <= 80 else text[:77] + "..."  # noqa: PLR2004


def _positionals(
    args: Sequence[str], value_opts: frozenset[str] = frozenset()
) -> list[str]:
    """Operands: words that are not options nor option values."""
    out: list[str] = []
    i = 0
    while i < len(args):
        tok = args[i]
        if tok == "--":
            out.extend(args[i + 1 :])
            break
        if tok.startswith("-") and len(tok) > 1:
            i += 2 if tok in value_opts else 1
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


def _is_under(path: str, root: str) -> bool:
    root = root.rstrip("/") or "/"
    return path == root or path.startswith(root if root == "/" else root + "/")


_GLOB_CHARS = re.compile(r"[*?\[]")

# One concrete name per sensitive pattern ("*.pem" -> "x.pem"), to ask
# whether a glob argument could expand to it.
_SENSITIVE_EXAMPLES = tuple(
    posixpath.basename(p.replace("*", "x").replace("?", "x")).lower()
    for p in SENSITIVE_PATHS
)


def _glob_may_read_secrets(word: str) -> bool:
    """Whether the glob *word* could match a sensitive file's name."""
    pattern = posixpath.basename(word.rstrip("/")).lower()
    return any(
        fnmatch.fnmatchcase(name, pattern)
        for name in _SENSITIVE_EXAMPLES
        if name
    )


def _match(path: str, patterns: Iterable[str]) -> bool:
    low = path.lower()
    base = posixpath.basename(low)
    return any(
        fnmatch.fnmatchcase(low, p.lower())
        or fnmatch.fnmatchcase(base, p.lower())
        for p in patterns
    )


@attrs.define
class _Judge:
    """Labels for one line; `cwd` follows `cd`."""

    cwd: str | None
    roots: tuple[str, ...] | None
    home: str
    out: dict[CommandLabel, list[str]] = attrs.Factory(dict)
    downloaded: set[str] = attrs.Factory(set)

    def add(self, lbl: CommandLabel, cmd: NormalCommand, why: str) -> None:
        reason = f"{_show(cmd)}: {why}"
        reasons = self.out.setdefault(lbl, [])
        if reason not in reasons:
            reasons.append(reason)

    # -- paths --

    def resolve(self, word: str, cmd: NormalCommand) -> str | None:
        """An absolute normalised path, or `None` if it cannot be known."""
        cwd = self.cwd
        if cmd.cwd is not None:
            base = self.resolve_plain(cmd.cwd, self.cwd)
            cwd = base
        return self.resolve_plain(word, cwd)

    def resolve_plain(self, word: str, cwd: str | None) -> str | None:  # noqa: C901 -- a dispatch over option tables reads best in one place
        w = word
        if w == "~" or w.startswith("~/"):
            w = self.home + w[1:]
        elif w.startswith("~"):
            user, _, rest = w[1:].partition("/")
            home = "/root" if user == "root" else posixpath.join("/home", user)
            w = posixpath.join(home, rest) if rest else home
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
        w = posixpath.normpath(w)
        if w.startswith("//"):
            w = "/" + w.lstrip("/")
        return w

    def effective_roots(self) -> tuple[str, ...]:
        if self.roots:
            return self.roots
        return (self.cwd,) if self.cwd else ()

    def inside(self, path: str) -> bool:
        if not self.roots:
            return False
        return any(_is_under(path, root) for root in self.roots)

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

    def tree_target(
        self, word: str, cmd: NormalCommand, *, roots: bool = True
    ) -> tuple[str | None, str | None]:
        """
        For a recursive operation on *word*: `(path, catastrophic reason)`.
        A glob that matches everything in a protected directory counts as
        that directory; any glob right under `/` is the floor.
        """
        path = self.resolve(word, cmd)
        if path is None:
            return None, None
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
                return base, (f"everything in {why}" if why else None)
            return path, None
        return path, self.protected(path, roots=roots)

    # -- the checks --

    def write(self, cmd: NormalCommand, word: str | None, how: str) -> None:  # noqa: C901 -- a dispatch over option tables reads best in one place
        """A write of *word* (`None`: a target that cannot be known)."""
        if word is None:
            self.add(L.WRITE_INTENT, cmd, f"{how} an unresolved target")
            self.add(L.OUTSIDE_WORKSPACE, cmd, f"{how} an unresolved target")
            return
        if word in HARMLESS_WRITE_TARGETS or re.fullmatch(
            r"/dev/fd/\d+", word
        ):
            return
        path = self.resolve(word, cmd)
        if path is None:
            self.add(L.WRITE_INTENT, cmd, f"{how} {word} (unresolved)")
            self.add(L.OUTSIDE_WORKSPACE, cmd, f"{how} {word} (unresolved)")
            return
        if path in HARMLESS_WRITE_TARGETS or re.fullmatch(
            r"/dev/fd/\d+", path
        ):
            return
        if any(fnmatch.fnmatchcase(path, p) for p in FLOOR_FILES):
            self.add(L.CATASTROPHIC, cmd, f"{how} {path}")
        if BLOCK_DEVICE.match(path):
            self.add(L.CATASTROPHIC, cmd, f"{how} the block device {path}")
        elif path.startswith("/dev/"):
            self.add(L.DESTRUCTIVE, cmd, f"{how} the device {path}")
        name = posixpath.basename(path)
        if name in STARTUP_FILES and (
            posixpath.dirname(path) == self.home or not self.inside(path)
        ):
            self.add(L.DESTRUCTIVE, cmd, f"{how} the start-up file {path}")
        elif any(
            fnmatch.fnmatchcase(path, p) for p in DESTRUCTIVE_WRITE_GLOBS
        ):
            self.add(L.DESTRUCTIVE, cmd, f"{how} {path}")
        if not self.inside(path):
            self.add(L.WRITE_INTENT, cmd, f"{how} {path}")
            self.add(
                L.OUTSIDE_WORKSPACE, cmd, f"{how} {path} outside the workspace"
            )

    def delete_tree(self, cmd: NormalCommand, word: str, how: str) -> None:
        path, floor = self.tree_target(word, cmd)
        if floor:
            self.add(L.CATASTROPHIC, cmd, f"{how} of {floor}")
            return
        roots = self.effective_roots()
        if path is None or not any(_is_under(path, r) for r in roots):
            self.add(
                L.DESTRUCTIVE,
                cmd,
                f"{how} of {path or word} outside the workspace",
            )
        self.write(cmd, word if path else None, f"{how} of")

    def read(self, cmd: NormalCommand, word: str, how: str = "reads") -> None:
        path = self.resolve(word, cmd) or self.resolve_plain(word, "/.cwd")
        candidates = {word, *([path] if path else [])}
        if any(_match(c, SENSITIVE_PATHS) for c in candidates) or (
            _GLOB_CHARS.search(word) and _glob_may_read_secrets(word)
        ):
            self.add(
                L.CREDENTIAL_FILE_READ,
                cmd,
                f"{how} the credential file {word}",
            )

    def unresolved(self, cmd: NormalCommand) -> None:
        for reason in cmd.unresolved:
            self.add(L.EXECUTION_SEMANTICS_UNRESOLVED, cmd, reason)
        if "fork bomb" in cmd.unresolved:
            self.add(L.CATASTROPHIC, cmd, "fork bomb")


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
    it, and recursive deletes are judged against *cwd* as the workspace.
    `~`, `~/...`, `$HOME` are *home*. *line_unresolved* are the parser's
    reasons for the whole line (`ParsedCommand.unresolved`).

    Example:
        >>> from capscope._shell import SimpleCommand
        >>> from capscope._shell_normalise import label, normalise
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
    judge = _Judge(cwd=cwd, roots=roots or None, home=posixpath.normpath(home))
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
        if cmd.program in {"cd", "pushd"}:
            judge.cwd = _cd(judge, cmd)
    _line_checks(judge, commands)
    if line_unresolved:
        for reason in line_unresolved:
            judge.out.setdefault(L.EXECUTION_SEMANTICS_UNRESOLVED, []).append(
                f"the line: {reason}"
            )
    return judge.out


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


def _cd(judge: _Judge, cmd: NormalCommand) -> str | None:
    operands = _positionals(cmd.argv[1:])
    if not operands:
        return judge.home
    if operands[0] == "-":
        return None
    return judge.resolve(operands[0], cmd)


def _line_checks(judge: _Judge, commands: Sequence[NormalCommand]) -> None:
    """Downloads run by an interpreter through a substitution or a file."""
    downloads = [c for c in commands if c.program in DOWNLOADERS]
    if not downloads:
        return
    for cmd in commands:
        runs_code = (
            cmd.program in SHELLS or _family(cmd.program or "") in INTERPRETERS
        )
        hidden = {
            "command substitution",
            "process substitution",
            "eval",
            "source",
        }
        in_script = any(w in SHELLS or w == "eval" for w in cmd.wrappers)
        if (
            runs_code or in_script or cmd.program in {"eval", "source", "."}
        ) and hidden & set(cmd.unresolved):
            why = "downloaded code run through a substitution"
            judge.add(L.CURL_PIPE_SHELL, cmd, why)
            judge.add(L.CATASTROPHIC, cmd, why)
        if runs_code or cmd.program in {"source", "."}:
            script = _positionals(cmd.argv[1:])[:1]
            names = {posixpath.basename(p) for p in judge.downloaded}
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
        ):
            names = {posixpath.basename(p) for p in judge.downloaded}
            if cmd.program in names:
                why = f"runs the downloaded file {cmd.program}"
                judge.add(L.CURL_PIPE_SHELL, cmd, why)
                judge.add(L.CATASTROPHIC, cmd, why)


_WRITE_OPS = frozenset({">", ">>", ">|", "&>", "&>>", "<>"})
_READ_OPS = frozenset({"<", "<>"})


def _label_one(judge: _Judge, cmd: NormalCommand) -> None:  # noqa: C901, PLR0912
    judge.unresolved(cmd)
    if cmd.privileged:
        judge.add(
            L.SUDO,
            cmd,
            f"runs privileged ({', '.join(w for w in cmd.wrappers if w in {'sudo', 'doas', 'su', 'pkexec', 'run0'})})",
        )
    for redirect in cmd.redirects:
        op = redirect.op.lstrip("0123456789")
        if op in _WRITE_OPS:
            judge.write(cmd, redirect.target, f"redirects ({op}) to")
        elif (
            op == ">&"
            and redirect.target is not None
            and not re.fullmatch(r"\d+|-", redirect.target)
        ):
            judge.write(cmd, redirect.target, "redirects (>&) to")
        if op in _READ_OPS and redirect.target is not None:
            judge.read(cmd, redirect.target, "redirects from")
    if not cmd.argv:
        return
    program = cmd.argv[0]
    args = list(cmd.argv[1:])
    if program.startswith("mkfs") or program in FLOOR_PROGRAMS:
        judge.add(L.CATASTROPHIC, cmd, "makes a file system")
    if program in DEVICE_WIPERS:
        for word in _positionals(args, frozenset({"-n", "-s", "-o", "-t"})):
            path = judge.resolve(word, cmd) or word
            if path.startswith("/dev/"):
                judge.add(L.CATASTROPHIC, cmd, f"wipes the device {path}")
    if program in READERS:
        _reads(judge, cmd, program, args)
    handler = _PROGRAM_CHECKS.get(program)
    if handler is not None:
        handler(judge, cmd, args)
    if program in KILLERS:
        judge.add(L.PROCESS_KILL, cmd, "signals processes")
    if program in PACKAGE_INSTALL:
        subs = PACKAGE_INSTALL[program]
        operands = (
            [a for a in args if not a.startswith("-")]
            if program not in {"nix-env", "dpkg", "rpm"}
            else args
        )
        if (
            subs is None
            or (operands and operands[0] in subs)
            or (program == "uv" and args[:2] == ["pip", "install"])
        ):
            judge.add(L.PACKAGE_INSTALL, cmd, "installs or runs a package")
    if program == "pacman" and any(
        a.startswith(("-S", "-U")) and "s" not in a[2:] and "i" not in a[2:]
        for a in args
    ):
        judge.add(L.PACKAGE_INSTALL, cmd, "installs a package")
    if program == "yarn" and not args:
        judge.add(L.PACKAGE_INSTALL, cmd, "installs packages")
    for path in cmd.paths:
        resolved = judge.resolve(path, cmd)
        if judge.roots and (resolved is None or not judge.inside(resolved)):
            judge.add(
                L.OUTSIDE_WORKSPACE,
                cmd,
                f"works on {path} outside the workspace",
            )


def _reads(
    judge: _Judge, cmd: NormalCommand, program: str, args: list[str]
) -> None:
    skip_values = (
        frozenset({"-i", "-F", "-o", "-e", "-J", "-P", "-S", "-l", "-c"})
        if program in {"scp", "ssh", "rsync", "nc", "ncat", "socat"}
        else frozenset()
    )
    operands = _positionals(args, skip_values)
    if program in PATTERN_FIRST and not any(
        a in {"-e", "-f", "--regexp", "--file"} for a in args
    ):
        operands = operands[1:]
    if program in {"cp", "mv", "scp", "rsync", "install", "ln"}:
        operands = operands[:-1]  # the destination is written, not read
    for word in operands:
        if program == "dd":
            if word.startswith("if="):
                judge.read(cmd, word[3:])
            continue
        if program in {"curl", "wget"} and "://" in word:
            continue
        judge.read(cmd, word.lstrip("@<"))
    for word in _option_values(
        args,
        {
            "-f",
            "--file",
            "-T",
            "-d",
            "--data-binary",
            "-F",
            "--post-file",
            "--body-file",
            "--data-urlencode",
        },
    ):
        judge.read(
            cmd,
            word.split("@", 1)[-1].split("<", 1)[-1]
            if program in {"curl", "wget"}
            else word,
        )


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
    values = frozenset({"-t", "-S", "--suffix"})
    operands = _positionals(args, values)
    targets = _option_values(args, {"-t"})
    if not targets and operands:
        targets = operands[-1:]
        operands = operands[:-1]
    how = "moves to" if cmd.argv[0] == "mv" else "writes to"
    for word in targets:
        judge.write(cmd, word, how)
    if cmd.argv[0] == "mv":
        for word in operands:
            judge.write(cmd, word, "moves away")


def _simple_writer(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    values = frozenset(
        {
            "-m",
            "-d",
            "-r",
            "-t",
            "-s",
            "-n",
            "-o",
            "-g",
            "-S",
            "--mode",
            "--date",
            "--reference",
            "--size",
        }
    )
    for word in _positionals(args, values):
        judge.write(cmd, word, "writes to")


def _mode_change(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    reference = any(a == "--reference" for a in args)
    operands = _positionals(args, frozenset({"--reference", "--from"}))
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
    for word in _positionals(args, frozenset({"--output-error"})):
        judge.write(cmd, word, "tee writes to")


def _sed(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    if not any(a.startswith("-i") for a in args):
        return
    operands = _positionals(
        [a for a in args if not a.startswith("-i")],
        frozenset({"-e", "-f", "-l"}),
    )
    if not any(a in {"-e", "-f"} for a in args):
        operands = operands[1:]
    for word in operands:
        judge.write(cmd, word, "edits in place")


def _dd(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    for word in args:
        if word.startswith("of="):
            judge.write(cmd, word[3:], "dd writes to")


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
    sends = []
    for name, value in zip(args, [*args[1:], ""], strict=True):
        if (
            (
                name
                in {
                    "-d",
                    "--data-binary",
                    "--data-ascii",
                    "--json",
                    "--data-urlencode",
                }
                and "@" in value
            )
            or (name == "-F" and re.search(r"=[@<]", value))
            or name == "-T"
        ):
            sends.append(f"{name} {value}")
    if sends:
        judge.add(
            L.NETWORK_EXFIL, cmd, f"uploads local data ({', '.join(sends)})"
        )


_CURL_VALUES = frozenset("-" + c for c in SPLIT_FLAGS["curl"][0]) | frozenset(
    {
        "--output-dir",
        "--data-binary",
        "--data-raw",
        "--data-urlencode",
        "--json",
        "--url",
    }
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
        for url in _positionals(
            args, frozenset("-" + c for c in SPLIT_FLAGS["wget"][0])
        ):
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
    program = cmd.argv[0]
    if program in {"nc", "ncat", "netcat"} and any(
        a in {"-e", "-c"} for a in args
    ):
        judge.add(L.NETWORK_EXFIL, cmd, "serves a program over the network")
        judge.add(
            L.EXECUTION_SEMANTICS_UNRESOLVED,
            cmd,
            "runs a program for the network",
        )
    if program == "socat" and any(
        re.match(r"(?i)(exec|system):", a) for a in args
    ):
        judge.add(L.NETWORK_EXFIL, cmd, "serves a program over the network")
        judge.add(
            L.EXECUTION_SEMANTICS_UNRESOLVED,
            cmd,
            "runs a program for the network",
        )
    listening = "-l" in args
    fed = cmd.piped_input or any(
        r.op in {"<", "<<<", "<<", "<<-"} for r in cmd.redirects
    )
    if fed and not listening:
        judge.add(L.NETWORK_EXFIL, cmd, "sends its input to a remote")


def _is_remote(word: str) -> bool:
    return bool(re.match(r"^([^/:]+@)?[^/:]+:", word)) or "://" in word


def _copy_remote(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    values = frozenset(
        {
            "-i",
            "-F",
            "-o",
            "-J",
            "-P",
            "-S",
            "-l",
            "-c",
            "-e",
            "--rsh",
            "--exclude",
            "--include",
            "--filter",
        }
    )
    operands = _positionals(args, values)
    if len(operands) < 2:  # noqa: PLR2004
        return
    *sources, target = operands
    if _is_remote(target) and any(not _is_remote(s) for s in sources):
        judge.add(L.NETWORK_EXFIL, cmd, f"copies local files to {target}")
    if not _is_remote(target):
        judge.write(cmd, target, "copies into")


def _tar(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:  # noqa: C901, PLR0912 -- a dispatch over option tables reads best in one place
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
    if mode == "x":
        judge.write(cmd, directory or ".", "extracts into")
    elif mode == "c" and archive and archive != "-":
        judge.write(cmd, archive, "writes the archive")


def _git_checks(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:  # noqa: C901 -- the push rules read best together
    # `--output FILE` (log, diff, show, format-patch -o DIR) writes a file.
    for index, word in enumerate(args[:-1]):
        if word in {"--output", "--output-directory"} or (
            word == "-o" and args[:1] == ["format-patch"]
        ):
            judge.write(cmd, args[index + 1], "git writes")
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
        words,
        frozenset(
            {"-o", "--push-option", "--repo", "--receive-pack", "--exec"}
        ),
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
    if any(w in {"--receive-pack", "--exec"} for w in words):
        judge.add(L.EXECUTION_SEMANTICS_UNRESOLVED, cmd, "git config override")


def _find_checks(judge: _Judge, cmd: NormalCommand, args: list[str]) -> None:
    starts: list[str] = []
    filtered = False
    seen_expr = False
    for tok in args:
        if not seen_expr and not tok.startswith(("-", "(", "!")):
            starts.append(tok)
            continue
        seen_expr = True
        if (
            tok.startswith("-")
            and tok not in _FIND_UNFILTERED
            and tok not in {"-maxdepth", "-mindepth"}
        ):
            filtered = True
    starts = starts or ["."]
    if "-delete" in args:
        for start in starts:
            judge.delete_tree(
                cmd,
                posixpath.join(start, "x") if filtered else start,
                "find -delete",
            )
    for name in ("-fprint", "-fprint0", "-fls", "-fprintf"):
        for word in _option_values(args, {name}):
            judge.write(cmd, word, name)


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
    "ssh": _netcat,
    "scp": _copy_remote,
    "rsync": _copy_remote,
    "tar": _tar,
    "git": _git_checks,
    "find": _find_checks,
    "zip": _zip,
    "crontab": _crontab,
}
