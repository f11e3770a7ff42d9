"""
Differential tests of the command engine against real bash (issue 13).

Hypothesis builds command lines out of the constructs attackers used
(line continuations, ANSI-C quoting in expansions, late evaluation,
environment prefixes, dangerous options of allowed programs, globs, braces,
credential paths, redirections, chained commands). Every line capscope
*allows* under the issue's allow list is then run by bash in
`bash_sandbox.Sandbox`: it must run no canary program, read no credential,
write nothing outside the workspace (nor into `.git/config` or
`.git/hooks/`), and open no network connection.

The budget is `CAPSCOPE_DIFFERENTIAL_EXAMPLES` generated lines (2,000 by
default, as CI runs it). Without bash, strace and git the tests skip,
unless `CAPSCOPE_REQUIRE_SANDBOX` is set (CI sets it), when they fail.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from bash_sandbox import AVAILABLE, Sandbox
from hypothesis import HealthCheck, example, given, note, settings
from hypothesis import strategies as st
from test_command_corpus import ISSUE_POLICY

import capscope as cs
from capscope.policies import CommandPolicy

pytestmark = pytest.mark.skipif(
    not AVAILABLE and not os.environ.get("CAPSCOPE_REQUIRE_SANDBOX"),
    reason="needs bash, strace, git, node and npm (apt-get install strace)",
)

EXAMPLES = int(os.environ.get("CAPSCOPE_DIFFERENTIAL_EXAMPLES", "2000"))

#: The allow list of issue 13 (the corpus' policy).
ALLOW = ISSUE_POLICY.allow

# --- the grammar of generated lines ------------------------------------------

#: Allowed commands (the slow ones, which start Python or node, rarely).
SLOW_HEADS = ["pytest -q", "python -m pytest -q", "npm test"]
HEADS = [
    "ls",
    "ls -la",
    "ls -d",
    "cat",
    "cat -n",
    "grep -n TODO",
    "grep -rn TODO",
    "grep -l x",
    "echo",
    "echo -n",
    "git status",
    "git status --short",
    "git log --oneline -2",
    "git log -p -1",
    "git diff",
    "git diff --stat",
]

#: Arguments an honest user passes.
PLAIN = [
    "README.md",
    "a.py",
    "src",
    "src/mod.py",
    "tests",
    ".",
    "HEAD",
    "--",
    "-v",
    "'a b'",
    '"quoted"',
    "x\\ y",
    "*.py",
    "*",
    "src/*",
    "*.md",
    "t*",
]

#: Arguments and pieces an attacker passes.
HOSTILE = [
    # credentials and places outside the workspace
    "~/.ssh/id_rsa",
    "../home/.ssh/id_rsa",
    "../outside/secret.txt",
    "../outside",
    ".env",
    "./.env",
    "/etc/shadow",
    "/proc/self/environ",
    "/proc/self/root/etc/shadow",
    "~/.aws/credentials",
    "$HOME/.ssh/id_rsa",
    "~",
    "/",
    "..",
    # globs that reach them
    "~/.ss*/*",
    "../outside/*",
    ".e*",
    ".*",
    "*/../../outside/*",
    "?env",
    "[.]env",
    "../*/secret.txt",
    "~/.*/*",
    # braces
    "~/.{ssh,x}/id_{rsa,x}",
    "{README.md,../outside/secret.txt}",
    ".e{n,}v",
    "{/,}",
    # expansions and late evaluation
    "$x",
    "${x}",
    '"$x"',
    "${x:-../outside/secret.txt}",
    "$(canary)",
    "`canary`",
    "$((1))",
    "$[1]",
    "${x:-$'\\x24(canary)'}",
    "\"${y:-$'\\x24(canary)'}\"",
    "$'\\x2e'env",
    "$'.env'",
    "${!x}",
    "${x@P}",
    "<(canary)",
    ">(canary)",
    "${PWD:0:1}",
    "$'\\u002e'env",
    '$".env"',
    "~+/.env",
    "~root/x",
    # options of the allowed programs
    "--output=../outside/pwn",
    "--output=pwn.txt",
    "--outp=../outside/pwn",
    "--no-index",
    "--ext-diff",
    "-p canary_plugin",
    "-pcanary_plugin",
    "--basetemp=../outside/t",
    "--junitxml=../outside/j.xml",
    "--rootdir=../outside",
    "-f ~/.ssh/id_rsa",
    "--file=../outside/secret.txt",
    "-r TODO ../outside",
    "--script-shell=canary",
    "--prefix=../outside",
    "-C ../outside",
]

#: Global options and environment prefixes.
PREFIXES = [
    "",
    "LANG=C ",
    "NO_COLOR=1 ",
    "PAGER=canary ",
    "GIT_PAGER=canary ",
    "GIT_EXTERNAL_DIFF=canary ",
    "GIT_CONFIG_COUNT=1 GIT_CONFIG_KEY_0=core.fsmonitor GIT_CONFIG_VALUE_0=canary ",
    "HOME=../outside ",
    "PYTEST_ADDOPTS=-pcanary_plugin ",
    "GIT_DIR=../outside/.git ",
    "PATH=../outside:$PATH ",
    "npm_config_script_shell=canary ",
    "env ",
    "env PAGER=canary ",
    "command ",
    "nice ",
    "timeout 5 ",
    "x=1; ",
    "PATH=.; ",
]

#: Git options that run code.
GIT_GLOBALS = [
    "-c core.fsmonitor=canary",
    "-c diff.external=canary",
    "-c alias.status=!canary",
    "-C ../outside",
    "--git-dir=../outside/.git",
    "--exec-path=../bin",
    "--no-pager",
]

#: What may follow: another command, a redirection.
TAILS = [
    "",
    "; canary",
    "&& canary",
    "|| canary",
    "| canary",
    "\ncanary",
    "& canary",
    ";canary",
    "> out.txt",
    "> ../outside/pwn",
    ">> ~/.bashrc",
    "< ../outside/secret.txt",
    "< ~/.ssh/id_rsa",
    "2> ../outside/err",
    "> .git/hooks/pre-commit",
    "> .git/config",
    "</dev/tcp/127.0.0.1/9",
    ">&../outside/x",
    "<<<x",
    "<<EOF\n$(canary)\nEOF",
    "<<'EOF'\n$(canary)\nEOF",
    "<<E\\\nOF\n$(canary)\nEOF",
    "# ; canary",
    "#\ncanary",
    "| cat",
    "2>&1",
    ">/dev/null",
]


def _quote(word: str, how: int) -> str:
    """Quote *word* one of several ways that keep what bash passes."""
    if (
        how == 1
        and "'" not in word
        and not word.startswith(("~", "$", "<", ">", "`"))
    ):
        return f"'{word}'"
    if how == 2 and '"' not in word and not word.startswith(("~", "<", ">")):
        return f'"{word}"'
    if how == 3 and word.isalnum():
        return "".join(f"\\{c}" for c in word)
    return word


@st.composite
def command_lines(draw: st.DrawFn) -> str:
    """A line mixing an allowed command with the attacks above."""
    head = draw(
        st.sampled_from(SLOW_HEADS if draw(st.integers(0, 24)) == 0 else HEADS)
    )
    if head.startswith("git") and draw(st.booleans()):
        head = head.replace(
            "git", f"git {draw(st.sampled_from(GIT_GLOBALS))}", 1
        )
    words = [head]
    for _ in range(draw(st.integers(0, 3))):
        pool = PLAIN if draw(st.integers(0, 3)) else HOSTILE
        word = draw(st.sampled_from(pool))
        words.append(_quote(word, draw(st.integers(0, 5))))
    # about half the lines are plain enough to be allowed, so that bash
    # runs many near misses
    prefix = draw(st.sampled_from(PREFIXES)) if draw(st.booleans()) else ""
    line = prefix + " ".join(words)
    tail = draw(st.sampled_from(TAILS)) if draw(st.booleans()) else ""
    if tail:
        line += tail if tail.startswith(("\n", ";", "#")) else " " + tail
    shape = draw(st.integers(0, 9))
    if shape == 0:
        line = f"( {line} )"
    elif shape == 1:
        line = f"{{ {line}; }}"
    elif shape == 2:
        cut = draw(st.integers(0, len(line)))
        line = line[:cut] + "\\\n" + line[cut:]
    return line


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Sandbox:
    return Sandbox(tmp_path_factory.mktemp("bash-sandbox"))


def _policy(box: Sandbox) -> CommandPolicy:
    return CommandPolicy(
        allow=ALLOW, default="deny", workspace_roots=[str(box.ws)]
    )


class _Tally:
    allowed = 0
    seen = 0


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)
@given(line=command_lines())
def test_what_capscope_allows_bash_runs_harmlessly(
    sandbox: Sandbox, line: str
) -> None:
    """Whenever capscope allows a line, bash running it stays in bounds."""
    _Tally.seen += 1
    policy = _policy(sandbox)
    with cs.using(command=policy):
        decision = cs.check_command(line, cwd=str(sandbox.ws))
    note(f"decision: {decision.action} {decision.labels} {decision.reason}")
    if decision.action != "allow":
        return
    _Tally.allowed += 1
    run = sandbox.run(line)
    note(f"bash: exit {run.returncode}\n{run.output}")
    assert [] == run.violations, f"capscope allowed {line!r}"


def test_the_generator_reaches_both_sides(sandbox: Sandbox) -> None:
    """
    The generated lines are neither all refused (the differential test
    would then run nothing) nor all allowed: after the main test, a
    share of both was seen.
    """
    if _Tally.seen == 0:
        pytest.skip("runs after the differential test, in the same session")
    share = _Tally.allowed / _Tally.seen
    assert 0.05 < share < 0.95, (_Tally.allowed, _Tally.seen)


@pytest.mark.parametrize(
    "line",
    [
        "cat ../home/.ssh/id_rsa",
        "git -c core.fsmonitor=canary status",
        "git log --output=../outside/pwn",
        "pytest -p canary_plugin -q",
        "echo x > .git/hooks/pre-commit",
        "cat </dev/tcp/127.0.0.1/9",
        "ls; canary",
        "cat ../outside/secret.txt",
    ],
)
def test_the_sandbox_sees_each_kind_of_harm(
    sandbox: Sandbox, line: str
) -> None:
    """A check that can fail: each of these does what the sandbox reports."""
    assert sandbox.run(line).violations, line


def test_the_sandbox_passes_honest_lines(sandbox: Sandbox) -> None:
    """...and what the allow list means passes it clean."""
    for line in [
        "git status",
        "git log --oneline -2",
        "git diff --stat",
        "ls -la src",
        "cat README.md",
        "grep -rn TODO .",
        "echo hi > out.txt",
        "npm test",
        "pytest -q",
    ]:
        assert [] == sandbox.run(line).violations, line


def test_sandbox_tree(sandbox: Sandbox) -> None:
    """The fake home and the secret are where the generator points."""
    assert (sandbox.home / ".ssh" / "id_rsa").is_file()
    assert Path(sandbox.ws).parent / "outside" == sandbox.outside


# --- the parser: exact words are what bash passes ----------------------------

#: Pieces of words, quoted every way bash allows.
_CHARS = "ab-=.,:/%+@^"
_HOSTILE_CHARS = " \t*?[]{}~#!$`\"'\\;&|<>()"


@st.composite
def _piece(draw: st.DrawFn) -> str:  # noqa: PLR0911 - one kind of piece each
    kind = draw(st.integers(0, 8))
    if kind == 8:  # an unquoted operator or reserved word inside the line
        return draw(
            st.sampled_from(
                [";", "&", "|", "&&", "#", "!", "{", "}", ";;", " # x"]
            )
        )
    text = draw(
        st.text(_CHARS + _HOSTILE_CHARS + "\n", min_size=0, max_size=4)
    )
    if kind == 0:
        return draw(st.text(_CHARS + "*?[]{}~#=!", min_size=1, max_size=4))
    if kind == 1:
        return "'" + text.replace("'", "") + "'"
    if kind == 2:
        inner = text.replace("\\", "\\\\").replace('"', '\\"')
        return '"' + inner.replace("$", "\\$").replace("`", "\\`") + '"'
    if kind == 3:
        return "\\" + draw(st.sampled_from(list(_HOSTILE_CHARS + _CHARS)))
    if kind == 4:
        escape = draw(
            st.sampled_from(["\\n", "\\t", "\\\\", "\\'", '\\"', "a", " "])
        )
        return f"$'{escape}'"
    if kind == 5:
        return draw(
            st.sampled_from(
                ["~", "~/x", "a=~", "x#y", "{}", "a{b}c", "[x", "x]"]
            )
        )
    if kind == 6:
        return draw(st.sampled_from(["'$x'", '"a b"', "\\$x", "'#'", '"*"']))
    return draw(st.text("ab", min_size=1, max_size=3))


@st.composite
def _exact_lines(draw: st.DrawFn) -> str:
    commands = []
    for _ in range(draw(st.integers(1, 3))):
        program = draw(st.sampled_from(["px", "'px'", "p\\x", '"qy"', "qy"]))
        words = [program]
        for _ in range(draw(st.integers(0, 4))):
            parts = draw(st.lists(_piece(), min_size=1, max_size=3))
            words.append("".join(parts))
        blanks = draw(st.sampled_from([" ", "  ", "\t", " \t "]))
        commands.append(blanks.join(words))
    seps = [
        draw(st.sampled_from([";", " ; ", "&&", "\n", " | ", " & "]))
        for _ in commands[1:]
    ]
    line = commands[0]
    for sep, cmd in zip(seps, commands[1:], strict=True):
        line += sep + cmd
    return line


def _bash_argvs(tmp: Path, line: str) -> list[tuple[str, ...]]:
    """The argv of every command bash ran for *line* (none is found)."""
    import subprocess

    dumps = tmp / "dumps"
    dumps.mkdir()
    env_file = tmp / "env.sh"
    # one file per command: commands of a pipeline or `&` run at once
    env_file.write_text(
        "command_not_found_handle() {\n"
        f"  printf '%s\\0' \"$@\" > {str(dumps)!r}/$BASHPID.$RANDOM\n"
        "  return 0\n}\n"
    )
    cwd = tmp / "empty"
    cwd.mkdir()
    subprocess.run(
        ["/bin/bash", "-c", line],
        cwd=cwd,
        env={
            "PATH": "/nonexistent",
            "BASH_ENV": str(env_file),
            "HOME": "/home/sandbox",
        },
        stdin=subprocess.DEVNULL,
        capture_output=True,
        timeout=10,
        check=False,
    )
    return [
        tuple(f.decode() for f in dump.read_bytes().split(b"\0")[:-1])
        for dump in dumps.iterdir()
    ]


def _builtins() -> frozenset[str]:
    import subprocess

    out = subprocess.run(
        ["/bin/bash", "-c", "compgen -b; compgen -k"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout
    return frozenset(out.split())


_BASH_BUILTINS = _builtins() if AVAILABLE else frozenset()


def _same_word(ours: str, bash: str) -> bool:
    # `~` keeps its spelling in capscope's words (the labeller reads it as
    # the home directory); a quoted `~` is passed as it is.
    return ours == bash or (
        ours.startswith("~") and bash == "/home/sandbox" + ours[1:]
    )


@settings(
    max_examples=max(200, EXAMPLES // 2),
    deadline=None,
    suppress_health_check=[
        HealthCheck.too_slow,
        HealthCheck.function_scoped_fixture,
    ],
    database=None,
)
@given(line=_exact_lines())
# Found by this test: bash expands `:{},}` into `:}` and `:`, which the
# parser's brace scan called exact.
@example(line="px :{},}")
@example(line="px a{b,}c{")
# Found by this test: `! ''` fails (the handler's success negated), so the
# `&& px` after it never runs; the line is now outside what it counts.
@example(line="px ;! ''&&px")
def test_exact_words_are_what_bash_passes(
    tmp_path_factory: pytest.TempPathFactory, line: str
) -> None:
    """
    Whenever the parser says every word of a line is exact, bash runs
    exactly those commands with exactly those words.
    """
    from capscope.commands._parse import parse

    parsed = parse(line)
    if "||" in line or ("!" in line and "&&" in line):
        # The handler succeeds: what follows `||` never runs, nor what
        # follows `&&` after a pipeline `!` negates (the parser lists
        # every command that may run; this test counts those that do).
        return
    if (
        parsed.unresolved
        or parsed.refused
        or any(
            c.unresolved
            or not c.argv
            or c.redirects
            or c.argv[0] in _BASH_BUILTINS  # not seen by the handler,
            or c.argv[0].startswith("~")  # nor what is run by path
            or "/" in c.argv[0]
            for c in parsed.commands
        )
    ):
        return
    ours = [c.argv for c in parsed.commands]
    # `wait`: a background command has written its words before we read
    theirs = _bash_argvs(tmp_path_factory.mktemp("argv"), line + "\nwait")
    note(f"ours:  {ours}\nbash: {theirs}")
    assert len(ours) == len(theirs), line
    for mine in ours:  # pipelines and `&` run in any order
        match = next(
            (
                bash
                for bash in theirs
                if len(bash) == len(mine) and all(map(_same_word, mine, bash))
            ),
            None,
        )
        assert match is not None, (line, mine)
        theirs.remove(match)
