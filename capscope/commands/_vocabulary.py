"""
What capscope knows about the programs an allow rule names, as data.

An allow rule such as `git log *` is written for what `git log` is for. The
programs it names have options and environment variables that make them do
something else: run code (`git -c core.pager=...`, `pytest -p plugin`),
write or delete files (`git log --output=...`, `pytest --basetemp=...`),
reach outside the workspace (`git -C /elsewhere`, `grep -r /`) or the
network. Each is listed here with the risk label it earns, so a rule that
matches the words never allows what the words hide. The docs' table of
program knowledge is generated from this module.

The tables:

- `PROGRAMS`: per program (by every name it goes by), its operands' role,
  the options and environment variables with an effect, its subcommands
  with an effect, and whether a glob may safely become one of its options.
- `GLOBAL_ENV`: variables that change what *any* program does.
- `HARMLESS_ENV`: the only variables a command may set in front of itself
  (`LANG=C sort`): any other makes the command unresolved.
- `WRAPPERS`: programs that run the rest of their arguments as a command,
  with their own options, so the command they run is judged.
- `NON_READING`: programs whose operands name no file they read.
- `SAFE_BUILTINS` / `STATE_BUILTINS`: bash builtins with no effect beyond
  their output, and those that change how the rest of the line runs.

Matching rules (`capscope.commands._normalise` applies them): a long option
matches its entry when written in full, with `=value`, or (for programs
that accept abbreviations) as any prefix of it (`--outp=x` is
`--output=x`); a short option matches anywhere in a bundle (`-vp x` holds
`-p`), even where it might be a value, so a bundle never hides one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

import attrs

from ..policies.command import CommandLabel

__all__ = [
    "CODE_FILES",
    "GLOBAL_ENV",
    "HARMLESS_ENV",
    "NON_READING",
    "PROGRAMS",
    "SAFE_BUILTINS",
    "STATE_BUILTINS",
    "WRAPPERS",
    "Effect",
    "Program",
    "Sub",
    "Wrapper",
    "env_effect",
    "harmless_env",
    "program",
]

L = CommandLabel
CODE = L.CODE_EXECUTION
WRITES = L.WRITES_PATH
DELETES = L.DELETES_PATH
OUTSIDE = L.READS_OUTSIDE_WORKSPACE
NETWORK = L.NETWORK


@attrs.frozen
class Effect:
    """
    What an option, variable or subcommand does: its label, in words, and
    what its value is (`"none"`: a flag; `"path"`: a path the label is
    about; `"any"`: some other value; `"attached"`: a value only with
    `=`), and which values are harmless (`harmless`, a regular expression
    a whole value must match).
    """

    label: CommandLabel
    why: str
    value: str = "none"
    #: a regular expression for values that have no effect
    #: (`pytest -p no:cacheprovider` disables a plugin, loads none)
    harmless: str | None = None


@attrs.frozen
class Sub:
    """
    A subcommand's own effects, options and operand role; `passes_args`
    when it hands its arguments to a program capscope does not know (`npm
    test -- --watch` gives `--watch` to whatever the package's test script
    runs).
    """

    effects: tuple[Effect, ...] = ()
    options: Mapping[str, Effect] = attrs.field(factory=dict)
    operands: str | None = None
    passes_args: bool = False


@attrs.frozen
class Program:
    """
    What capscope knows of one program.

    Fields:

    - `summary`: one line for the docs.
    - `operands`: the role of its positional arguments: `"paths"` (files
      it reads or works on), `"pattern+paths"` (a pattern, unless an
      option gives it, then paths), `"text"` (words it only prints),
      `"args"` (anything: not judged as paths).
    - `reads`: it reads the files its operands name (for the sensitive
      path and workspace checks).
    - `options`: options with an effect (`"--output"`, `"-p"`).
    - `values`: options that take the next word as their value, harmless
      ones too, so that operands are told from values.
    - `env`: variables with an effect (`"GIT_DIR"`, or a prefix
      `"npm_config_*"`).
    - `subcommands`: the subcommands with effects or options of their own.
    - `always`: effects of every run (`curl`: the network).
    - `abbreviates`: long options may be shortened to any unique prefix.
    - `glob_safe`: every option it has is harmless, so a glob that expands
      to an option (a file named `-n`) changes nothing that matters.
    - `end_of_options`: `--` ends its options.
    - `only_options`: when set, the only options it may be given: any
      other is unresolved (npm takes an unknown option as configuration,
      and some configuration runs programs).
    """

    summary: str
    operands: str = "args"
    reads: bool = False
    options: Mapping[str, Effect] = attrs.field(factory=dict)
    values: frozenset[str] = frozenset()
    env: Mapping[str, Effect] = attrs.field(factory=dict)
    subcommands: Mapping[str, Sub] = attrs.field(factory=dict)
    always: tuple[Effect, ...] = ()
    abbreviates: bool = True
    glob_safe: bool = False
    end_of_options: bool = True
    only_options: frozenset[str] | None = None


@attrs.frozen
class Wrapper:
    """
    A program that runs the rest of its arguments as a command, and how to
    skip its own options to find that command.
    """

    short_arg: str = ""  # short options that take a value
    short_flag: str = ""  # short options that do not
    long_arg: frozenset[str] = frozenset()
    long_flag: frozenset[str] = frozenset()
    positionals: int = 0  # operands before the command (timeout DURATION)
    assignments: bool = False  # NAME=value words before the command
    numeric: bool = False  # `-5` is an option (nice)
    privileged: bool = False  # runs the command as another user
    reads_input: bool = False  # the command's arguments come from stdin


def _fs(*names: str) -> frozenset[str]:
    return frozenset(names)


def _e(
    label: CommandLabel,
    why: str,
    value: str = "none",
    harmless: str | None = None,
) -> Effect:
    return Effect(label, why, value, harmless)


#: Warning filters import a module only for a dotted category name.
_UNDOTTED = r"[^.]*"


# --- environment ------------------------------------------------------------

#: The variables a command may set in front of itself; any other makes it
#: unresolved. A trailing `*` is a prefix. Values must be plain words
#: (`_HARMLESS_VALUE`): no path, no space.
HARMLESS_ENV = (
    "LANG",
    "LANGUAGE",
    "LC_*",
    "TZ",
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR",
    "CLICOLOR_FORCE",
    "CI",
    "TERM",
    "COLUMNS",
    "LINES",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONUNBUFFERED",
    "PYTHONHASHSEED",
    "PYTHONIOENCODING",
    "NODE_ENV",
    "RUST_BACKTRACE",
    "DEBIAN_FRONTEND",
)
_HARMLESS_VALUE = re.compile(r"[A-Za-z0-9_.,:@+-]*")

#: Variables that change what any program does.
GLOBAL_ENV: Mapping[str, Effect] = MappingProxyType(
    {
        "LD_PRELOAD": _e(CODE, "loads a library into the program"),
        "LD_LIBRARY_PATH": _e(CODE, "loads libraries from elsewhere"),
        "LD_AUDIT": _e(CODE, "loads an audit library"),
        "DYLD_*": _e(CODE, "loads libraries into the program"),
        "GCONV_PATH": _e(CODE, "loads character-set modules"),
        "GLIBC_TUNABLES": _e(CODE, "changes how the C library behaves"),
        "PATH": _e(CODE, "changes which programs run"),
        "BASH_ENV": _e(CODE, "runs a file in every bash started"),
        "ENV": _e(CODE, "runs a file in every shell started"),
        "SHELLOPTS": _e(CODE, "changes how shells started read commands"),
        "BASHOPTS": _e(CODE, "changes how shells started read commands"),
        "PROMPT_COMMAND": _e(CODE, "runs a command"),
        "PS4": _e(CODE, "runs substitutions when tracing"),
        "IFS": _e(CODE, "changes how words are split"),
        "HOME": _e(CODE, "programs read their configuration from it"),
        "XDG_CONFIG_HOME": _e(
            CODE, "programs read their configuration from it"
        ),
        "XDG_DATA_HOME": _e(CODE, "programs read their data from it"),
        "PAGER": _e(CODE, "runs a pager program"),
        "EDITOR": _e(CODE, "runs an editor program"),
        "VISUAL": _e(CODE, "runs an editor program"),
        "BROWSER": _e(CODE, "runs a browser program"),
        "SHELL": _e(CODE, "runs a shell program"),
        "TMPDIR": _e(WRITES, "moves temporary files elsewhere"),
        "http_proxy": _e(NETWORK, "sends traffic through a proxy"),
        "https_proxy": _e(NETWORK, "sends traffic through a proxy"),
        "HTTP_PROXY": _e(NETWORK, "sends traffic through a proxy"),
        "HTTPS_PROXY": _e(NETWORK, "sends traffic through a proxy"),
        "ALL_PROXY": _e(NETWORK, "sends traffic through a proxy"),
    }
)

_PYTHON_ENV = {
    "PYTHONPATH": _e(CODE, "imports modules from elsewhere"),
    "PYTHONSTARTUP": _e(CODE, "runs a file at start-up"),
    "PYTHONHOME": _e(CODE, "runs another standard library"),
    "PYTHONUSERBASE": _e(CODE, "imports user site-packages from elsewhere"),
    "PYTHONWARNINGS": _e(CODE, "warning filters import modules"),
    "PYTHONBREAKPOINT": _e(CODE, "breakpoint() calls a named function"),
    "PYTHONINSPECT": _e(CODE, "starts an interactive interpreter"),
    "PYTHONEXECUTABLE": _e(CODE, "changes the interpreter reported"),
    "PYTHONPLATLIBDIR": _e(CODE, "imports the library from elsewhere"),
    "PYTHONSAFEPATH": _e(CODE, "changes which modules are imported"),
    "COVERAGE_PROCESS_START": _e(CODE, "starts coverage from a file"),
}

# --- programs -------------------------------------------------------------

_GIT_OPTIONS = {
    "--output": _e(WRITES, "writes its output to a file", "path"),
    "--output-directory": _e(
        WRITES, "writes patches into a directory", "path"
    ),
    "--ext-diff": _e(CODE, "runs the external diff program"),
    "--textconv": _e(CODE, "runs text conversion filters"),
    "--upload-pack": _e(CODE, "runs a program as the remote side", "any"),
    "--receive-pack": _e(CODE, "runs a program as the remote side", "any"),
    "--exec": _e(CODE, "runs a program", "any"),
    "--template": _e(CODE, "copies hooks from a template directory", "path"),
    "--config": _e(CODE, "sets configuration that can run programs", "any"),
    "--open-files-in-pager": _e(CODE, "runs a pager program", "attached"),
    "--extcmd": _e(CODE, "runs a diff program", "any"),
    "--tool": _e(CODE, "runs a diff or merge tool", "any"),
    "--no-index": _e(OUTSIDE, "compares any two files on disk"),
    "--git-dir": _e(CODE, "uses a repository elsewhere", "path"),
    "--work-tree": _e(CODE, "uses a work tree elsewhere", "path"),
}
_GIT_NETWORK = Sub(effects=(_e(NETWORK, "talks to a remote repository"),))
_GIT_SUBCOMMANDS = {
    "clone": Sub(
        effects=(_e(NETWORK, "talks to a remote repository"),),
        options={
            "-c": _e(CODE, "sets configuration that can run programs", "any"),
            "-u": _e(CODE, "runs a program as the remote side", "any"),
        },
    ),
    "fetch": _GIT_NETWORK,
    "pull": _GIT_NETWORK,
    "push": _GIT_NETWORK,
    "ls-remote": _GIT_NETWORK,
    "remote": _GIT_NETWORK,
    "submodule": Sub(
        effects=(
            _e(NETWORK, "talks to remote repositories"),
            _e(CODE, "`foreach` runs a command in every submodule"),
        )
    ),
    "send-email": _GIT_NETWORK,
    "request-pull": _GIT_NETWORK,
    "daemon": Sub(effects=(_e(NETWORK, "serves repositories"),)),
    "instaweb": Sub(effects=(_e(CODE, "runs a web server and a browser"),)),
    "difftool": Sub(effects=(_e(CODE, "runs a diff tool"),)),
    "mergetool": Sub(effects=(_e(CODE, "runs a merge tool"),)),
    "filter-branch": Sub(effects=(_e(CODE, "runs shell filters"),)),
    "bisect": Sub(effects=(_e(CODE, "`bisect run` runs a command"),)),
    "hook": Sub(effects=(_e(CODE, "runs a hook"),)),
    "credential": Sub(
        effects=(_e(L.CREDENTIAL_FILE_READ, "reads stored credentials"),)
    ),
    "config": Sub(
        effects=(_e(CODE, "configuration can make git run programs"),)
    ),
    "clean": Sub(effects=(_e(DELETES, "deletes untracked files"),)),
    "rm": Sub(effects=(_e(DELETES, "deletes files"),)),
    "format-patch": Sub(
        options={"-o": _e(WRITES, "writes patches into a directory", "path")}
    ),
    "archive": Sub(
        options={
            "-o": _e(WRITES, "writes the archive to a file", "path"),
            "--remote": _e(NETWORK, "reads a remote repository", "any"),
        }
    ),
    "grep": Sub(options={"-O": _e(CODE, "runs a pager program", "attached")}),
    "rebase": Sub(options={"-x": _e(CODE, "runs a command", "any")}),
    "difftool--helper": Sub(effects=(_e(CODE, "runs a diff tool"),)),
    "fsmonitor--daemon": Sub(effects=(_e(CODE, "runs a daemon"),)),
    "maintenance": Sub(effects=(_e(CODE, "schedules background jobs"),)),
}
_GIT_ENV = {
    "GIT_DIR": _e(CODE, "uses a repository elsewhere"),
    "GIT_WORK_TREE": _e(CODE, "uses a work tree elsewhere"),
    "GIT_INDEX_FILE": _e(WRITES, "writes an index elsewhere"),
    "GIT_OBJECT_DIRECTORY": _e(OUTSIDE, "reads objects from elsewhere"),
    "GIT_ALTERNATE_OBJECT_DIRECTORIES": _e(
        OUTSIDE, "reads objects from elsewhere"
    ),
    "GIT_COMMON_DIR": _e(CODE, "uses a repository elsewhere"),
    "GIT_CEILING_DIRECTORIES": _e(CODE, "finds a repository elsewhere"),
    "GIT_CONFIG": _e(CODE, "reads configuration that can run programs"),
    "GIT_CONFIG_*": _e(CODE, "sets configuration that can run programs"),
    "GIT_CONFIG_GLOBAL": _e(CODE, "reads configuration that can run programs"),
    "GIT_CONFIG_SYSTEM": _e(CODE, "reads configuration that can run programs"),
    "GIT_CONFIG_PARAMETERS": _e(
        CODE, "sets configuration that can run programs"
    ),
    "GIT_EXEC_PATH": _e(CODE, "runs its subprograms from elsewhere"),
    "GIT_TEMPLATE_DIR": _e(CODE, "copies hooks from elsewhere"),
    "GIT_EDITOR": _e(CODE, "runs an editor program"),
    "GIT_SEQUENCE_EDITOR": _e(CODE, "runs an editor program"),
    "GIT_PAGER": _e(CODE, "runs a pager program"),
    "GIT_EXTERNAL_DIFF": _e(CODE, "runs a diff program"),
    "GIT_SSH": _e(CODE, "runs an ssh program"),
    "GIT_SSH_COMMAND": _e(CODE, "runs an ssh command"),
    "GIT_ASKPASS": _e(CODE, "runs a password program"),
    "GIT_PROXY_COMMAND": _e(CODE, "runs a proxy command"),
    "GIT_TRACE*": _e(WRITES, "writes a trace to a file"),
    "GIT_NAMESPACE": _e(OUTSIDE, "reads another namespace"),
}

_PYTEST_OPTIONS = {
    "-p": _e(CODE, "loads a plugin module", "any", harmless=r"no:.*"),
    "--basetemp": _e(DELETES, "empties and reuses a directory", "path"),
    "--junitxml": _e(WRITES, "writes a report", "path"),
    "--junit-xml": _e(WRITES, "writes a report", "path"),
    "--resultlog": _e(WRITES, "writes a report", "path"),
    "--result-log": _e(WRITES, "writes a report", "path"),
    "--report-log": _e(WRITES, "writes a report", "path"),
    "--log-file": _e(WRITES, "writes a log", "path"),
    "--html": _e(WRITES, "writes a report", "path"),
    "--json-report-file": _e(WRITES, "writes a report", "path"),
    "--alluredir": _e(WRITES, "writes reports", "path"),
    "--cov-report": _e(WRITES, "writes a coverage report", "any"),
    "--debug": _e(WRITES, "writes a debug log", "attached"),
    "--rootdir": _e(
        CODE, "runs the conftest.py files of another tree", "path"
    ),
    "--confcutdir": _e(CODE, "changes which conftest.py files run", "path"),
    "-c": _e(CODE, "reads configuration that loads plugins", "path"),
    "--config-file": _e(
        CODE, "reads configuration that loads plugins", "path"
    ),
    "--inifile": _e(CODE, "reads configuration that loads plugins", "path"),
    "-o": _e(CODE, "overrides configuration that loads plugins", "any"),
    "--override-ini": _e(
        CODE, "overrides configuration that loads plugins", "any"
    ),
    "--pdbcls": _e(CODE, "imports a debugger class", "any"),
    "--pyargs": _e(CODE, "imports the tests of installed packages"),
    "-W": _e(CODE, "warning filters import modules", "any", _UNDOTTED),
    "--pythonwarnings": _e(
        CODE, "warning filters import modules", "any", _UNDOTTED
    ),
    "--pastebin": _e(NETWORK, "uploads results to a pastebin", "any"),
    "--tx": _e(CODE, "starts workers elsewhere", "any"),
    "--rsyncdir": _e(NETWORK, "copies a directory to workers", "any"),
    "--cov-config": _e(CODE, "reads coverage configuration", "path"),
}
_PYTEST_VALUES = _fs(
    "-k", "-m", "--maxfail", "--tb", "--durations", "--import-mode",
    "-n", "--numprocesses", "--dist", "--timeout", "--cov", "--capture",
    "--deselect", "--ignore", "--ignore-glob", "--log-level",
    "--log-cli-level", "--color", "--code-highlight",
)  # fmt: skip
_PYTEST_ENV = {
    **_PYTHON_ENV,
    "PYTEST_ADDOPTS": _e(CODE, "adds options that load plugins"),
    "PYTEST_PLUGINS": _e(CODE, "loads plugin modules"),
    "PYTEST_DEBUG": _e(WRITES, "writes a debug trace"),
    "PYTEST_DEBUG_TEMPROOT": _e(DELETES, "moves its temporary directories"),
}

_PYTHON_OPTIONS = {
    "-c": _e(CODE, "runs code given on the line", "any"),
    "-W": _e(CODE, "warning filters import modules", "any", _UNDOTTED),
    "-X": _e(
        WRITES,
        "-X pycache_prefix writes compiled files elsewhere",
        "any",
        harmless=r"(?!pycache_prefix).*",
    ),
}
_PYTHON_VALUES = _fs("-m", "-Q")

_NPM_OPTIONS = {
    "--script-shell": _e(CODE, "runs scripts with another shell", "any"),
    "--prefix": _e(CODE, "runs another project's scripts", "path"),
    "-C": _e(CODE, "runs another project's scripts", "path"),
    "--userconfig": _e(CODE, "reads configuration from a file", "path"),
    "--globalconfig": _e(CODE, "reads configuration from a file", "path"),
    "--node-options": _e(CODE, "passes options that load code to node", "any"),
    "--init-module": _e(CODE, "runs an init module", "path"),
    "--call": _e(CODE, "runs a command", "any"),
    "--shell": _e(CODE, "runs a shell", "any"),
    "--editor": _e(CODE, "runs an editor program", "any"),
    "--browser": _e(CODE, "runs a browser program", "any"),
    "--viewer": _e(CODE, "runs a viewer program", "any"),
    "--git": _e(CODE, "runs another git program", "any"),
    "--nodedir": _e(CODE, "builds native modules from elsewhere", "path"),
    "--registry": _e(NETWORK, "uses another registry", "any"),
    "--cache": _e(WRITES, "writes its cache elsewhere", "path"),
    "--logs-dir": _e(WRITES, "writes its logs elsewhere", "path"),
    "--global": _e(WRITES, "installs outside the project"),
    "-g": _e(WRITES, "installs outside the project"),
}
_NPM_INSTALL = Sub(effects=(_e(L.PACKAGE_INSTALL, "installs packages"),))
#: What the package's scripts receive, and npm's own harmless options.
_NPM_SCRIPT = Sub(passes_args=True)
_NPM_HARMLESS = _fs(
    "--silent", "-s", "--quiet", "-q", "--loglevel", "--if-present",
    "--ignore-scripts", "--workspaces", "-ws", "--workspace", "-w",
    "--include-workspace-root", "--foreground-scripts", "--color",
    "--no-color", "--json", "--verbose", "-d", "-dd", "--dry-run", "--yes",
    "-y", "--no-audit", "--no-fund", "--no-update-notifier", "--progress",
    "--no-progress", "--offline", "--prefer-offline", "--timing",
    "--usage", "--help", "-h",
)  # fmt: skip
_NPM_SUBCOMMANDS = {
    **dict.fromkeys(
        ("test", "t", "tst", "start", "stop", "restart", "run", "run-script"),
        _NPM_SCRIPT,
    ),
    "install": _NPM_INSTALL,
    "i": _NPM_INSTALL,
    "isntall": _NPM_INSTALL,
    "add": _NPM_INSTALL,
    "ci": _NPM_INSTALL,
    "update": _NPM_INSTALL,
    "exec": Sub(
        effects=(_e(L.PACKAGE_INSTALL, "fetches and runs a package"),)
    ),
    "x": Sub(effects=(_e(L.PACKAGE_INSTALL, "fetches and runs a package"),)),
    "publish": Sub(effects=(_e(NETWORK, "uploads a package"),)),
    "config": Sub(
        effects=(_e(CODE, "configuration can make npm run programs"),)
    ),
    "set": Sub(effects=(_e(CODE, "configuration can make npm run programs"),)),
    "edit": Sub(effects=(_e(CODE, "runs an editor program"),)),
    "explore": Sub(effects=(_e(CODE, "runs a shell"),)),
    "rebuild": Sub(effects=(_e(CODE, "runs install scripts"),)),
    "link": Sub(effects=(_e(WRITES, "links packages outside the project"),)),
}
_NPM_ENV = {
    "npm_config_*": _e(CODE, "npm configuration can run programs"),
    "NPM_CONFIG_*": _e(CODE, "npm configuration can run programs"),
    "NODE_OPTIONS": _e(CODE, "passes options that load code to node"),
    "NODE_PATH": _e(CODE, "loads modules from elsewhere"),
}

_NODE_OPTIONS = {
    "-e": _e(CODE, "runs code given on the line", "any"),
    "--eval": _e(CODE, "runs code given on the line", "any"),
    "-p": _e(CODE, "runs code given on the line", "any"),
    "--print": _e(CODE, "runs code given on the line", "any"),
    "-r": _e(CODE, "loads a module first", "any"),
    "--require": _e(CODE, "loads a module first", "any"),
    "--import": _e(CODE, "loads a module first", "any"),
    "--loader": _e(CODE, "loads a module loader", "any"),
    "--experimental-loader": _e(CODE, "loads a module loader", "any"),
    "--inspect": _e(NETWORK, "opens a debugger port", "attached"),
    "--inspect-brk": _e(NETWORK, "opens a debugger port", "attached"),
}

_GREP_OPTIONS = {
    "-f": _e(OUTSIDE, "reads patterns from a file", "path"),
    "--file": _e(OUTSIDE, "reads patterns from a file", "path"),
    "--exclude-from": _e(OUTSIDE, "reads names from a file", "path"),
}
_GREP_VALUES = _fs(
    "-e", "--regexp", "-f", "--file", "-A", "-B", "-C", "-m", "-d", "-D",
    "--directories", "--devices", "--include", "--exclude",
    "--exclude-from", "--exclude-dir", "--label", "--color", "--colour",
    "--binary-files", "--context", "--after-context", "--before-context",
    "--max-count",
)  # fmt: skip

_SED_OPTIONS = {
    "-i": _e(WRITES, "edits files in place", "attached"),
    "--in-place": _e(WRITES, "edits files in place", "attached"),
    "-f": _e(CODE, "runs a script from a file", "path"),
    "--file": _e(CODE, "runs a script from a file", "path"),
}

_CURL_OPTIONS = {
    "-o": _e(WRITES, "writes the download to a file", "path", harmless="-"),
    "--output": _e(
        WRITES, "writes the download to a file", "path", harmless="-"
    ),
    "-O": _e(WRITES, "writes the download into the directory"),
    "--remote-name": _e(WRITES, "writes the download into the directory"),
    "--remote-name-all": _e(WRITES, "writes downloads into the directory"),
    "--output-dir": _e(WRITES, "writes downloads into a directory", "path"),
    "-D": _e(WRITES, "writes headers to a file", "path"),
    "--dump-header": _e(WRITES, "writes headers to a file", "path"),
    "-c": _e(WRITES, "writes cookies to a file", "path"),
    "--cookie-jar": _e(WRITES, "writes cookies to a file", "path"),
    "--trace": _e(WRITES, "writes a trace to a file", "path"),
    "--trace-ascii": _e(WRITES, "writes a trace to a file", "path"),
    "--stderr": _e(WRITES, "writes errors to a file", "path"),
    "--libcurl": _e(WRITES, "writes C code to a file", "path"),
    "--etag-save": _e(WRITES, "writes an etag to a file", "path"),
    "--hsts": _e(WRITES, "writes an HSTS cache to a file", "path"),
    "--alt-svc": _e(WRITES, "writes an alt-svc cache to a file", "path"),
    "-K": _e(CODE, "reads options from a file", "path"),
    "--config": _e(CODE, "reads options from a file", "path"),
    "--unix-socket": _e(OUTSIDE, "talks to a local socket", "path"),
    "--abstract-unix-socket": _e(OUTSIDE, "talks to a local socket", "any"),
}
_WGET_OPTIONS = {
    "-O": _e(WRITES, "writes the download to a file", "path", harmless="-"),
    "--output-document": _e(
        WRITES, "writes the download to a file", "path", harmless="-"
    ),
    "-o": _e(WRITES, "writes its log to a file", "path"),
    "--output-file": _e(WRITES, "writes its log to a file", "path"),
    "-a": _e(WRITES, "writes its log to a file", "path"),
    "--append-output": _e(WRITES, "writes its log to a file", "path"),
    "-P": _e(WRITES, "writes downloads into a directory", "path"),
    "--directory-prefix": _e(
        WRITES, "writes downloads into a directory", "path"
    ),
    "-e": _e(CODE, "runs wgetrc commands", "any"),
    "--execute": _e(CODE, "runs wgetrc commands", "any"),
    "--config": _e(CODE, "reads wgetrc commands from a file", "path"),
    "-i": _e(OUTSIDE, "reads addresses from a file", "path"),
    "--input-file": _e(OUTSIDE, "reads addresses from a file", "path"),
}

_SSH_OPTIONS = {
    "-o": _e(CODE, "options such as ProxyCommand run programs", "any"),
    "-F": _e(CODE, "reads a configuration that can run programs", "path"),
    "-i": _e(OUTSIDE, "reads a key file", "path"),
    "-L": _e(NETWORK, "forwards a port", "any"),
    "-R": _e(NETWORK, "forwards a port", "any"),
    "-D": _e(NETWORK, "opens a proxy port", "any"),
    "-S": _e(OUTSIDE, "uses a control socket", "path"),
}

_TAR_OPTIONS = {
    "--to-command": _e(CODE, "pipes files into a command", "any"),
    "-I": _e(CODE, "runs a compression program", "any"),
    "--use-compress-program": _e(CODE, "runs a compression program", "any"),
    "--checkpoint-action": _e(CODE, "can run a command at checkpoints", "any"),
    "-F": _e(CODE, "runs a volume script", "any"),
    "--info-script": _e(CODE, "runs a volume script", "any"),
    "--new-volume-script": _e(CODE, "runs a volume script", "any"),
    "--rmt-command": _e(CODE, "runs a remote tape program", "any"),
    "--rsh-command": _e(CODE, "runs a remote shell", "any"),
    "--remove-files": _e(DELETES, "deletes the files it archives"),
    "-P": _e(WRITES, "extracts to absolute paths"),
    "--absolute-names": _e(WRITES, "extracts to absolute paths"),
}

_MAKE_OPTIONS = {
    "-f": _e(CODE, "runs another makefile", "path"),
    "--file": _e(CODE, "runs another makefile", "path"),
    "--makefile": _e(CODE, "runs another makefile", "path"),
    "-C": _e(CODE, "runs the makefile of another directory", "path"),
    "--directory": _e(CODE, "runs the makefile of another directory", "path"),
    "-E": _e(CODE, "evaluates makefile text", "any"),
    "--eval": _e(CODE, "evaluates makefile text", "any"),
    "-I": _e(CODE, "includes makefiles from elsewhere", "path"),
    "--include-dir": _e(CODE, "includes makefiles from elsewhere", "path"),
}

_PIP_OPTIONS = {
    "-r": _e(OUTSIDE, "reads requirements from a file", "path"),
    "--requirement": _e(OUTSIDE, "reads requirements from a file", "path"),
    "-c": _e(OUTSIDE, "reads constraints from a file", "path"),
    "--constraint": _e(OUTSIDE, "reads constraints from a file", "path"),
    "-i": _e(NETWORK, "uses another package index", "any"),
    "--index-url": _e(NETWORK, "uses another package index", "any"),
    "--extra-index-url": _e(NETWORK, "uses another package index", "any"),
    "-f": _e(NETWORK, "finds packages elsewhere", "any"),
    "--find-links": _e(NETWORK, "finds packages elsewhere", "any"),
    "-t": _e(WRITES, "installs into a directory", "path"),
    "--target": _e(WRITES, "installs into a directory", "path"),
    "--prefix": _e(WRITES, "installs into a directory", "path"),
    "--root": _e(WRITES, "installs into a directory", "path"),
    "--src": _e(WRITES, "checks sources out into a directory", "path"),
    "--user": _e(WRITES, "installs into the user's site-packages"),
    "--log": _e(WRITES, "writes a log", "path"),
    "--cache-dir": _e(WRITES, "writes its cache elsewhere", "path"),
    "--global-option": _e(CODE, "passes options to setup.py", "any"),
    "--config-settings": _e(
        CODE, "passes settings to the build backend", "any"
    ),
}
_PIP_SUBCOMMANDS = {
    "install": Sub(effects=(_e(L.PACKAGE_INSTALL, "installs packages"),)),
    "download": Sub(effects=(_e(L.PACKAGE_INSTALL, "downloads packages"),)),
    "wheel": Sub(effects=(_e(L.PACKAGE_INSTALL, "builds packages"),)),
    "uninstall": Sub(effects=(_e(DELETES, "removes packages"),)),
    "config": Sub(effects=(_e(CODE, "configuration changes what pip runs"),)),
}
_PIP_ENV = {
    "PIP_*": _e(CODE, "pip configuration changes what it installs"),
    **_PYTHON_ENV,
}

_DOCKER_RUNS = Sub(effects=(_e(CODE, "runs a container"),))
_DOCKER_SUBCOMMANDS = {
    "run": _DOCKER_RUNS,
    "exec": _DOCKER_RUNS,
    "create": _DOCKER_RUNS,
    "start": _DOCKER_RUNS,
    "build": Sub(effects=(_e(CODE, "runs build steps"),)),
    "buildx": Sub(effects=(_e(CODE, "runs build steps"),)),
    "compose": _DOCKER_RUNS,
    "cp": Sub(effects=(_e(WRITES, "copies files in or out of a container"),)),
    "login": Sub(effects=(_e(NETWORK, "logs in to a registry"),)),
    "push": Sub(effects=(_e(NETWORK, "uploads an image"),)),
    "pull": Sub(effects=(_e(NETWORK, "downloads an image"),)),
    "rm": Sub(effects=(_e(DELETES, "removes containers"),)),
    "rmi": Sub(effects=(_e(DELETES, "removes images"),)),
    "system": Sub(effects=(_e(DELETES, "`system prune` removes data"),)),
    "volume": Sub(effects=(_e(DELETES, "`volume rm` removes data"),)),
}
_DOCKER_OPTIONS = {
    "-H": _e(NETWORK, "talks to another daemon", "any"),
    "--host": _e(NETWORK, "talks to another daemon", "any"),
    "--config": _e(OUTSIDE, "reads credentials from a directory", "path"),
    "-v": _e(OUTSIDE, "mounts a host path", "any"),
    "--volume": _e(OUTSIDE, "mounts a host path", "any"),
    "--mount": _e(OUTSIDE, "mounts a host path", "any"),
    "--privileged": _e(L.SUDO, "gives the container the host's devices"),
}

_KUBECTL_RUNS = Sub(effects=(_e(CODE, "runs a command in the cluster"),))
_KUBECTL_SUBCOMMANDS = {
    "exec": _KUBECTL_RUNS,
    "run": _KUBECTL_RUNS,
    "debug": _KUBECTL_RUNS,
    "attach": _KUBECTL_RUNS,
    "plugin": _KUBECTL_RUNS,
    "cp": Sub(effects=(_e(WRITES, "copies files in or out of a pod"),)),
    "port-forward": Sub(effects=(_e(NETWORK, "forwards a port"),)),
    "proxy": Sub(effects=(_e(NETWORK, "opens a proxy"),)),
    "delete": Sub(effects=(_e(DELETES, "deletes cluster resources"),)),
    "drain": Sub(effects=(_e(DELETES, "evicts workloads"),)),
    **{
        name: Sub(effects=(_e(WRITES, "changes cluster resources"),))
        for name in (
            "apply", "create", "replace", "patch", "edit", "scale", "set",
            "label", "annotate", "rollout", "autoscale", "cordon",
            "uncordon", "taint",
        )
    },
}  # fmt: skip

_AWK_OPTIONS = {
    "-f": _e(CODE, "runs a program from a file", "path"),
    "--file": _e(CODE, "runs a program from a file", "path"),
    "-l": _e(CODE, "loads an extension", "any"),
    "--load": _e(CODE, "loads an extension", "any"),
    "-i": _e(CODE, "includes a program file", "path"),
    "--include": _e(CODE, "includes a program file", "path"),
    "-E": _e(CODE, "runs a program from a file", "path"),
    "--exec": _e(CODE, "runs a program from a file", "path"),
}

_SORT_OPTIONS = {
    "-o": _e(WRITES, "writes its output to a file", "path"),
    "--output": _e(WRITES, "writes its output to a file", "path"),
    "--compress-program": _e(CODE, "runs a compression program", "any"),
    "-T": _e(WRITES, "writes temporary files elsewhere", "path"),
    "--temporary-directory": _e(
        WRITES, "writes temporary files elsewhere", "path"
    ),
    "--files0-from": _e(OUTSIDE, "reads file names from a file", "path"),
}

_LESS_OPTIONS = {
    "-o": _e(WRITES, "copies its input to a file", "path"),
    "-O": _e(WRITES, "copies its input to a file", "path"),
    "--log-file": _e(WRITES, "copies its input to a file", "path"),
    "--LOG-FILE": _e(WRITES, "copies its input to a file", "path"),
    "-k": _e(OUTSIDE, "reads a key file", "path"),
}
_LESS_ENV = {
    "LESSOPEN": _e(CODE, "runs an input preprocessor"),
    "LESSCLOSE": _e(CODE, "runs an input postprocessor"),
    "LESSKEY": _e(OUTSIDE, "reads a key file"),
    "LESS": _e(CODE, "adds options"),
}


def _reader(summary: str, **kw: object) -> Program:
    """A program that reads its path operands and has harmless options."""
    fields: dict[str, object] = {
        "summary": summary,
        "operands": "paths",
        "reads": True,
        "glob_safe": True,
    }
    fields.update(kw)
    return Program(**fields)  # type: ignore[arg-type]


_git = Program(
    summary="version control",
    operands="args",
    options=_GIT_OPTIONS,
    values=_fs(
        "-m",
        "-n",
        "--max-count",
        "--format",
        "--pretty",
        "--since",
        "--until",
        "--author",
        "--grep",
        "-S",
        "-G",
        "-U",
        "--unified",
        "-b",
        "-B",
        "--branch",
        "--depth",
        "--skip",
    ),
    env=_GIT_ENV,
    subcommands=_GIT_SUBCOMMANDS,
)
_pytest = Program(
    summary="runs the tests of the workspace (their code)",
    operands="paths",
    options=_PYTEST_OPTIONS,
    values=_PYTEST_VALUES
    | _fs(
        *(k for k, v in _PYTEST_OPTIONS.items() if v.value in {"path", "any"})
    ),
    env=_PYTEST_ENV,
    abbreviates=False,  # pytest refuses shortened long options
)
_python = Program(
    summary="runs Python code",
    operands="paths",
    options=_PYTHON_OPTIONS,
    values=_PYTHON_VALUES | _fs("-c", "-W", "-X"),
    env=_PYTHON_ENV,
    abbreviates=False,
)
_npm = Program(
    summary="runs the package's scripts (their code)",
    operands="args",
    options=_NPM_OPTIONS,
    values=_fs(
        *(k for k, v in _NPM_OPTIONS.items() if v.value in {"path", "any"})
    ),
    env=_NPM_ENV,
    subcommands=_NPM_SUBCOMMANDS,
    only_options=_NPM_HARMLESS | _fs(*_NPM_OPTIONS),
)
_node = Program(
    summary="runs JavaScript",
    operands="paths",
    options=_NODE_OPTIONS,
    values=_fs(
        "-e",
        "--eval",
        "-p",
        "--print",
        "-r",
        "--require",
        "--import",
        "--loader",
    ),
    env=_NPM_ENV,
    abbreviates=False,
)
_grep = Program(
    summary="searches files",
    operands="pattern+paths",
    reads=True,
    options=_GREP_OPTIONS,
    values=_GREP_VALUES,
    glob_safe=True,
)
_rg = Program(
    summary="searches files (recursively)",
    operands="pattern+paths",
    reads=True,
    options={
        **_GREP_OPTIONS,
        "--pre": _e(CODE, "runs a preprocessor program", "any"),
        "--hostname-bin": _e(CODE, "runs a program", "any"),
        "--ignore-file": _e(OUTSIDE, "reads names from a file", "path"),
    },
    values=_GREP_VALUES
    | _fs(
        "--pre",
        "--pre-glob",
        "-g",
        "--glob",
        "-t",
        "--type",
        "-T",
        "--type-not",
        "-j",
        "--threads",
        "--max-depth",
    ),
)
_sed = Program(
    summary="edits text (its script is read for e, w and r commands)",
    operands="pattern+paths",
    reads=True,
    options=_SED_OPTIONS,
    values=_fs("-e", "--expression", "-f", "--file", "-l", "--line-length"),
)
_awk = Program(
    summary="runs an awk program (read for system, pipes and redirections)",
    operands="pattern+paths",
    reads=True,
    options=_AWK_OPTIONS,
    values=_fs(
        "-F",
        "--field-separator",
        "-v",
        "--assign",
        "-f",
        "--file",
        "-l",
        "--load",
        "-i",
        "--include",
        "-E",
        "--exec",
    ),
)
_curl = Program(
    summary="transfers data over the network",
    operands="args",
    options=_CURL_OPTIONS,
    values=_fs(
        "-o",
        "--output",
        "-D",
        "--dump-header",
        "-c",
        "--cookie-jar",
        "-K",
        "--config",
        "-d",
        "--data",
        "--data-binary",
        "--data-raw",
        "--data-urlencode",
        "--json",
        "-F",
        "--form",
        "-H",
        "--header",
        "-X",
        "--request",
        "-u",
        "--user",
        "-T",
        "--upload-file",
        "-A",
        "--user-agent",
        "-e",
        "--referer",
        "-b",
        "--cookie",
        "-x",
        "--proxy",
        "-m",
        "--max-time",
        "--output-dir",
        "--url",
        "-w",
        "--write-out",
        "-r",
        "--range",
        "-E",
        "--cert",
        "--key",
        "--cacert",
        "--trace",
        "--trace-ascii",
        "--stderr",
        "--unix-socket",
    ),
    always=(_e(NETWORK, "transfers data over the network"),),
)
_wget = Program(
    summary="downloads over the network",
    operands="args",
    options=_WGET_OPTIONS,
    values=_fs(
        *(k for k, v in _WGET_OPTIONS.items() if v.value in {"path", "any"})
    ),
    always=(_e(NETWORK, "downloads over the network"),),
)
_ssh = Program(
    summary="runs commands on another host",
    operands="args",
    options=_SSH_OPTIONS,
    values=_fs(
        "-o",
        "-F",
        "-i",
        "-L",
        "-R",
        "-D",
        "-S",
        "-p",
        "-l",
        "-J",
        "-b",
        "-c",
        "-E",
        "-e",
        "-m",
        "-O",
        "-Q",
        "-W",
        "-w",
        "-B",
        "-I",
    ),
    always=(
        _e(NETWORK, "talks to another host"),
        _e(CODE, "runs a command on another host"),
    ),
    abbreviates=False,
)
_scp = Program(
    summary="copies files over the network",
    operands="args",
    options={
        "-o": _SSH_OPTIONS["-o"],
        "-F": _SSH_OPTIONS["-F"],
        "-i": _SSH_OPTIONS["-i"],
        "-S": _e(CODE, "runs another program as ssh", "any"),
    },
    values=_fs("-o", "-F", "-i", "-S", "-P", "-l", "-c", "-J", "-D", "-X"),
    always=(_e(NETWORK, "copies files over the network"),),
    abbreviates=False,
)
_rsync = Program(
    summary="copies files, locally or over the network",
    operands="args",
    options={
        "-e": _e(CODE, "runs another program as the remote shell", "any"),
        "--rsh": _e(CODE, "runs another program as the remote shell", "any"),
        "--rsync-path": _e(
            CODE, "runs another program on the remote side", "any"
        ),
        "--delete": _e(DELETES, "deletes files at the destination"),
        "--remove-source-files": _e(DELETES, "deletes the files it copied"),
        "--write-batch": _e(WRITES, "writes a batch file", "path"),
        "--log-file": _e(WRITES, "writes a log", "path"),
    },
    values=_fs(
        "-e",
        "--rsh",
        "--rsync-path",
        "--exclude",
        "--include",
        "--filter",
        "-f",
        "--write-batch",
        "--log-file",
        "--exclude-from",
        "--include-from",
        "--files-from",
    ),
)
_tar = Program(
    summary="archives files",
    operands="args",
    options=_TAR_OPTIONS,
    values=_fs(
        "-f",
        "--file",
        "-C",
        "--directory",
        "-I",
        "--use-compress-program",
        "-F",
        "--info-script",
        "-T",
        "--files-from",
        "-X",
        "--exclude-from",
        "--exclude",
    ),
)
_make = Program(
    summary="runs the makefile's recipes (their code)",
    operands="args",
    options=_MAKE_OPTIONS,
    values=_fs(
        "-f",
        "--file",
        "--makefile",
        "-C",
        "--directory",
        "-E",
        "--eval",
        "-I",
        "--include-dir",
        "-j",
        "--jobs",
        "-l",
        "--load-average",
        "-o",
        "--old-file",
        "-W",
        "--what-if",
    ),
    env={
        "MAKEFLAGS": _e(CODE, "adds options and variables"),
        "MAKEFILES": _e(CODE, "reads other makefiles"),
    },
)
_pip = Program(
    summary="installs Python packages",
    operands="args",
    options=_PIP_OPTIONS,
    values=_fs(
        *(k for k, v in _PIP_OPTIONS.items() if v.value in {"path", "any"})
    ),
    env=_PIP_ENV,
    subcommands=_PIP_SUBCOMMANDS,
)
_docker = Program(
    summary="runs containers (root on the host)",
    operands="args",
    options=_DOCKER_OPTIONS,
    values=_fs(
        "-H",
        "--host",
        "--config",
        "-v",
        "--volume",
        "--mount",
        "-e",
        "--env",
        "-w",
        "--workdir",
        "-p",
        "--publish",
        "--name",
        "-u",
        "--user",
        "--entrypoint",
        "--network",
        "-f",
        "--file",
        "-t",
        "--tag",
    ),
    env={
        "DOCKER_HOST": _e(NETWORK, "talks to another daemon"),
        "DOCKER_CONFIG": _e(OUTSIDE, "reads credentials from a directory"),
    },
    subcommands=_DOCKER_SUBCOMMANDS,
)
_kubectl = Program(
    summary="manages a Kubernetes cluster",
    operands="args",
    options={
        "--kubeconfig": _e(OUTSIDE, "reads credentials from a file", "path"),
        "--token": _e(NETWORK, "authenticates with a token", "any"),
        "-s": _e(NETWORK, "talks to another API server", "any"),
        "--server": _e(NETWORK, "talks to another API server", "any"),
    },
    values=_fs(
        "--kubeconfig",
        "--token",
        "-s",
        "--server",
        "-n",
        "--namespace",
        "--context",
        "-o",
        "--output",
        "-f",
        "--filename",
        "-l",
        "--selector",
        "-c",
        "--container",
    ),
    env={"KUBECONFIG": _e(OUTSIDE, "reads credentials from a file")},
    subcommands=_KUBECTL_SUBCOMMANDS,
    always=(_e(NETWORK, "talks to the cluster's API server"),),
)
_find = Program(
    summary="lists files (its actions are judged as commands)",
    operands="args",
    reads=True,
    options={
        "-delete": _e(DELETES, "deletes what it finds"),
        "-fprint": _e(WRITES, "writes its output to a file", "path"),
        "-fprint0": _e(WRITES, "writes its output to a file", "path"),
        "-fprintf": _e(WRITES, "writes its output to a file", "path"),
        "-fls": _e(WRITES, "writes its output to a file", "path"),
    },
    abbreviates=False,
)

#: Every program capscope knows, by each name it goes by.
PROGRAMS: Mapping[str, Program] = MappingProxyType(
    {
        "git": _git,
        "pytest": _pytest,
        "py.test": _pytest,
        "python": _python,
        "pypy": _python,
        "npm": _npm,
        "pnpm": _npm,
        "yarn": _npm,
        "node": _node,
        "nodejs": _node,
        "grep": _grep,
        "egrep": _grep,
        "fgrep": _grep,
        "rg": _rg,
        "sed": _sed,
        "awk": _awk,
        "gawk": _awk,
        "mawk": _awk,
        "nawk": _awk,
        "curl": _curl,
        "wget": _wget,
        "ssh": _ssh,
        "scp": _scp,
        "sftp": _scp,
        "rsync": _rsync,
        "tar": _tar,
        "make": _make,
        "gmake": _make,
        "pip": _pip,
        "pip3": _pip,
        "docker": _docker,
        "podman": _docker,
        "kubectl": _kubectl,
        "find": _find,
        "cat": _reader("prints files"),
        "tac": _reader("prints files backwards"),
        "head": _reader("prints the start of files"),
        "tail": _reader("prints the end of files"),
        "nl": _reader("prints files with line numbers"),
        "wc": _reader("counts lines, words and bytes"),
        "cut": _reader("prints columns of files"),
        "paste": _reader("joins lines of files"),
        "uniq": _reader("filters repeated lines"),
        "file": _reader("tells the type of files"),
        "stat": _reader("prints file metadata"),
        "du": _reader("prints disk usage"),
        "md5sum": _reader("prints checksums"),
        "sha1sum": _reader("prints checksums"),
        "sha256sum": _reader("prints checksums"),
        "diff": _reader(
            "compares files",
            glob_safe=False,
            options={
                "--to-file": _e(OUTSIDE, "compares with a file", "path"),
                "--from-file": _e(OUTSIDE, "compares with a file", "path"),
            },
        ),
        "cmp": _reader("compares files"),
        "strings": _reader("prints the text in files"),
        "base64": _reader("encodes files"),
        "xxd": _reader("dumps files in hex", glob_safe=False),
        "od": _reader("dumps files"),
        "hexdump": _reader("dumps files"),
        "jq": Program(
            summary="reads JSON",
            operands="pattern+paths",
            reads=True,
            values=_fs(
                "--arg",
                "--argjson",
                "--slurpfile",
                "--rawfile",
                "-f",
                "--from-file",
                "--indent",
            ),
            options={
                "--rawfile": _e(OUTSIDE, "reads a file", "any"),
                "--slurpfile": _e(OUTSIDE, "reads a file", "any"),
                "-f": _e(OUTSIDE, "reads a program from a file", "path"),
                "--from-file": _e(
                    OUTSIDE, "reads a program from a file", "path"
                ),
            },
        ),
        "sort": _reader(
            "sorts lines of files",
            glob_safe=False,
            options=_SORT_OPTIONS,
            values=_fs(
                *_SORT_OPTIONS,
                "-k",
                "--key",
                "-t",
                "--field-separator",
                "-S",
                "--buffer-size",
            ),
        ),
        "less": _reader(
            "pages through files",
            glob_safe=False,
            options=_LESS_OPTIONS,
            env=_LESS_ENV,
        ),
        "more": _reader("pages through files", env=_LESS_ENV),
        "ls": _reader(
            "lists directories",
            values=_fs(
                "-I",
                "--ignore",
                "-T",
                "--tabsize",
                "-w",
                "--width",
                "--format",
                "--sort",
                "--time",
                "--time-style",
                "--color",
                "--block-size",
                "--hide",
                "--quoting-style",
                "--indicator-style",
            ),
        ),
        "tree": _reader(
            "lists directories",
            options={"-o": _e(WRITES, "writes its output to a file", "path")},
            values=_fs(
                "-o",
                "-L",
                "-P",
                "-I",
                "--charset",
                "--filelimit",
                "--timefmt",
                "--sort",
            ),
        ),
        "echo": Program(
            summary="prints its arguments",
            operands="text",
            glob_safe=True,
            end_of_options=False,
            abbreviates=False,
        ),
        "printf": Program(
            summary="prints formatted text",
            operands="text",
            options={
                "-v": _e(
                    CODE,
                    "assigns a variable whose subscript bash evaluates",
                    "any",
                )
            },
            abbreviates=False,
        ),
        "pwd": Program(summary="prints the working directory", glob_safe=True),
        "true": Program(summary="does nothing", glob_safe=True),
        "false": Program(summary="does nothing", glob_safe=True),
        "which": Program(
            summary="finds programs", operands="text", glob_safe=True
        ),
        "whoami": Program(summary="prints the user's name", glob_safe=True),
        "date": Program(
            summary="prints the date",
            options={
                "-f": _e(OUTSIDE, "reads dates from a file", "path"),
                "--file": _e(OUTSIDE, "reads dates from a file", "path"),
                "-s": _e(L.SUDO, "sets the system clock", "any"),
                "--set": _e(L.SUDO, "sets the system clock", "any"),
            },
        ),
        "uname": Program(summary="prints system information", glob_safe=True),
        "basename": Program(
            summary="prints a name's last part",
            operands="text",
            glob_safe=True,
        ),
        "dirname": Program(
            summary="prints a name's directory",
            operands="text",
            glob_safe=True,
        ),
        "realpath": Program(
            summary="prints resolved paths", operands="text", glob_safe=True
        ),
        "test": Program(
            summary="tests files and strings",
            operands="text",
            options={
                "-v": _e(CODE, "bash evaluates a variable's subscript", "any"),
                "-R": _e(CODE, "bash evaluates a variable's subscript", "any"),
            },
            abbreviates=False,
            end_of_options=False,
        ),
        "[": Program(
            summary="tests files and strings",
            operands="text",
            options={
                "-v": _e(CODE, "bash evaluates a variable's subscript", "any"),
                "-R": _e(CODE, "bash evaluates a variable's subscript", "any"),
            },
            abbreviates=False,
            end_of_options=False,
        ),
    }
)

#: Programs whose operands name no file they read (their words are not
#: checked against the sensitive paths).
NON_READING = frozenset(
    {"echo", "printf", "which", "basename", "dirname", "type", "command",
     "ls", "stat", "du", "test", "[", "cd", "pwd", "true", "false", "mkdir",
     "rmdir", "touch", "rm", "unlink", "chmod", "chown", "chgrp", "kill",
     "tee", "truncate"}
)  # fmt: skip

#: bash builtins with no effect beyond their output (or `cd`, which the
#: labeller follows).
SAFE_BUILTINS = frozenset(
    {":", "true", "false", "echo", "printf", "pwd", "cd", "test", "[",
     "type", "help", "times", "jobs", "wait", "exit", "return"}
)  # fmt: skip

#: bash builtins that change how the rest of the line runs (variables,
#: aliases, options, traps, loaded builtins, the directory stack): a line
#: holding one is unresolved. `set` with only the options in
#: `HARMLESS_SET` is the exception.
STATE_BUILTINS = frozenset(
    {"alias", "unalias", "bind", "declare", "typeset", "local", "export",
     "readonly", "unset", "enable", "fc", "getopts", "hash", "let",
     "mapfile", "readarray", "read", "set", "shopt", "trap", "ulimit",
     "umask", "pushd", "popd", "dirs", "shift", "caller", "compgen",
     "complete", "compopt", "disown", "suspend", "logout", "fg", "bg",
     "history"}
)  # fmt: skip

#: `set` options that change nothing about what the line runs, only
#: whether a failure stops it or is traced.
HARMLESS_SET = frozenset(
    {"-e", "-u", "-x", "-v", "+e", "+u", "+x", "+v", "-o", "+o",
     "pipefail", "errexit", "nounset", "xtrace", "verbose", "-eu", "-ue",
     "-ex", "-xe", "-eux", "-euo", "-eo", "-uo", "-ux", "-xu"}
)  # fmt: skip


#: Wrappers that run their operands as a command, and their options.
#: Options with an effect of their own are left out on purpose, so that
#: they are unknown and make the command unresolved: `time -o FILE` writes
#: a file, `env -P DIR` looks for the program elsewhere, `fakeroot -l LIB`
#: loads a library. `flock FILE cmd` creates FILE: it is not seen through
#: (the floor still looks into its arguments).
WRAPPERS: Mapping[str, Wrapper] = MappingProxyType(
    {
        "sudo": Wrapper(
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
        "doas": Wrapper(short_arg="uC", short_flag="nsL", privileged=True),
        "pkexec": Wrapper(long_arg=_fs("user"), long_flag=_fs("disable-internal-agent", "keep-cwd"), privileged=True),
        "run0": Wrapper(short_arg="u", long_arg=_fs("user", "chdir"), privileged=True),
        "runuser": Wrapper(short_arg="ugGc", short_flag="lmpf", long_arg=_fs("user", "group", "supp-group", "command", "shell"), long_flag=_fs("login", "preserve-environment", "pty"), privileged=True),
        "env": Wrapper(
            short_arg="uCS",
            short_flag="i0v",
            long_arg=_fs("unset", "chdir", "split-string"),
            long_flag=_fs(
                "ignore-environment", "null", "debug", "block-signal",
                "default-signal", "ignore-signal", "list-signal-handling",
            ),
            assignments=True,
        ),
        "command": Wrapper(short_flag="pvV"),
        "builtin": Wrapper(),
        "exec": Wrapper(short_arg="a", short_flag="cl"),
        "nice": Wrapper(short_arg="n", long_arg=_fs("adjustment"), numeric=True),
        "nohup": Wrapper(),
        # bash's `time` keyword takes only `-p` (`time -f x ls` runs `-f`),
        # so any other option of GNU time is unknown
        "time": Wrapper(short_flag="p"),
        "timeout": Wrapper(
            short_arg="sk",
            short_flag="v",
            long_arg=_fs("signal", "kill-after"),
            long_flag=_fs("preserve-status", "foreground", "verbose"),
            positionals=1,
        ),
        "stdbuf": Wrapper(short_arg="ioe", long_arg=_fs("input", "output", "error")),
        "ionice": Wrapper(
            short_arg="cnpPu",
            short_flag="t",
            long_arg=_fs("class", "classdata", "pid", "pgid", "uid"),
            long_flag=_fs("ignore"),
        ),
        "taskset": Wrapper(short_flag="acp", long_flag=_fs("all-tasks", "cpu-list", "pid"), positionals=1),
        "setsid": Wrapper(short_flag="cfw", long_flag=_fs("ctty", "fork", "wait")),
        "xargs": Wrapper(
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
            reads_input=True,
        ),
        "busybox": Wrapper(),
        "toybox": Wrapper(),
        "chroot": Wrapper(long_arg=_fs("userspec", "groups"), long_flag=_fs("skip-chdir"), positionals=1, privileged=True),
        "unbuffer": Wrapper(short_flag="p"),
        "chronic": Wrapper(short_flag="ev"),
        "fakeroot": Wrapper(long_flag=_fs("unknown-is-real")),
        "eatmydata": Wrapper(),
        "catchsegv": Wrapper(),
        "prlimit": Wrapper(short_arg="p", short_flag="o", long_arg=_fs("pid", "output"), long_flag=_fs("noheadings", "raw", "verbose")),
        "setarch": Wrapper(short_flag="v3BFILRSTXZ", long_flag=_fs("verbose", "addr-no-randomize", "fdpic-funcptrs", "mmap-page-zero", "addr-compat-layout", "read-implies-exec", "32bit", "short-inode", "whole-seconds", "sticky-timeouts", "3gb", "4gb", "uname-2.6", "list"), positionals=1),
        "chrt": Wrapper(short_flag="bdfiorpavmR", long_flag=_fs("batch", "deadline", "fifo", "idle", "other", "rr", "reset-on-fork", "all-tasks", "verbose", "max", "pid"), long_arg=_fs("sched-runtime", "sched-period", "sched-deadline"), short_arg="TPD", positionals=1),
    }
)  # fmt: skip


def program(name: str) -> Program | None:
    """
    What capscope knows of the program *name* (a basename; `python3.11` is
    `python`), or `None`.

    Examples:
        >>> from capscope.commands._vocabulary import program
        >>> program("python3.11").summary, program("mytool")
        ('runs Python code', None)
    """
    known = PROGRAMS.get(name)
    if known is None and name.startswith(("python", "pypy")):
        family = re.sub(r"[\d.]+$", "", name)
        known = PROGRAMS.get(family)
    return known


def _lookup(table: Mapping[str, Effect], name: str) -> Effect | None:
    effect = table.get(name)
    if effect is not None or not any(k.endswith("*") for k in table):
        return effect
    for key, value in table.items():
        if key.endswith("*") and name.startswith(key[:-1]):
            return value
    return None


def env_effect(name: str, known: Program | None) -> Effect | None:
    """What setting *name* does to any program, or to the one *known*."""
    effect = _lookup(known.env, name) if known is not None else None
    return effect or _lookup(GLOBAL_ENV, name)


def harmless_env(name: str, value: str) -> bool:
    """
    Whether `name=value` in front of a command is on the harmless list.

    Examples:
        >>> from capscope.commands._vocabulary import harmless_env
        >>> harmless_env("LANG", "C.UTF-8"), harmless_env("LC_ALL", "/tmp/x")
        (True, False)
        >>> harmless_env("GIT_DIR", "x")
        False
    """
    if not _HARMLESS_VALUE.fullmatch(value):
        return False
    return any(
        name == key or (key.endswith("*") and name.startswith(key[:-1]))
        for key in HARMLESS_ENV
    )


#: Files inside a workspace whose contents other programs run: a write to
#: one is code execution, not an ordinary workspace write. Matched on the
#: last component, and any path with a `.git` component counts.
CODE_FILES = (
    "conftest.py",
    "test_*.py",
    "*_test.py",
    "pytest.ini",
    "tox.ini",
    "setup.cfg",
    "setup.py",
    "noxfile.py",
    "pyproject.toml",
    "sitecustomize.py",
    "usercustomize.py",
    "*.pth",
    ".npmrc",
    ".yarnrc",
    ".yarnrc.yml",
    "package.json",
    "Makefile",
    "makefile",
    "GNUmakefile",
    "*.mk",
    ".envrc",
    ".pre-commit-config.yaml",
    ".gitconfig",
    ".gitattributes",
    ".gitmodules",
    ".pdbrc",
)


def _by_label(entries: Mapping[str, Effect]) -> str:
    """`--a`, `--b` (label); ... for a table cell."""
    groups: dict[str, list[str]] = {}
    for name, effect in entries.items():
        groups.setdefault(effect.label.value, []).append(f"`{name}`")
    return "; ".join(
        f"{', '.join(names)} ({label})" for label, names in groups.items()
    )


def knowledge_table() -> str:
    """
    The docs' table of program knowledge, generated from `PROGRAMS` (one
    row per program, its other names beside it) and the environment lists.

    Examples:
        >>> from capscope.commands._vocabulary import knowledge_table
        >>> knowledge_table().splitlines()[0]
        '| Program | What it is | Options with an effect | Variables | Subcommands and always |'
    """
    rows = [
        (
            "| Program | What it is | Options with an effect | Variables "
            "| Subcommands and always |"
        ),
        "|---|---|---|---|---|",
    ]
    names: dict[int, list[str]] = {}
    for name, known in PROGRAMS.items():
        names.setdefault(id(known), []).append(name)
    seen: set[int] = set()
    for known in PROGRAMS.values():
        if id(known) in seen:
            continue
        seen.add(id(known))
        subs = "; ".join(
            f"`{sub}`: "
            + " ".join(
                part
                for part in (
                    ", ".join(e.label.value for e in spec.effects),
                    _by_label(spec.options),
                    "arguments passed on (unresolved)"
                    if spec.passes_args
                    else "",
                )
                if part
            )
            for sub, spec in known.subcommands.items()
        )
        if known.only_options is not None:
            subs += "; any other option: unresolved"
        always = ", ".join(e.label.value for e in known.always)
        extra = "; ".join(
            x for x in (subs, f"every run: {always}" if always else "") if x
        )
        rows.append(
            "| "
            + " ".join(f"`{n}`" for n in names[id(known)])
            + f" | {known.summary} | {_by_label(known.options) or '-'} "
            f"| {_by_label(known.env) or '-'} | {extra or '-'} |"
        )
    rows += [
        "",
        (
            "Variables that change what any program does: "
            + _by_label(GLOBAL_ENV)
            + "."
        ),
        "",
        "The only variables a command may set in front of itself (with a "
        "plain value: letters, digits and `_.,:@+-`): "
        + ", ".join(f"`{name}`" for name in HARMLESS_ENV)
        + ".",
        "",
        "Wrappers seen through (their own options skipped): "
        + ", ".join(f"`{name}`" for name in WRAPPERS)
        + ".",
        "",
    ]
    return "\n".join(rows)
