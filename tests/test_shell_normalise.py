"""
The command normaliser (`capscope.commands._normalise`): wrappers, `find
-exec`, flag splitting, long and short forms, git's global options,
interpreters and shell scripts (issues 5 and 13). The labels are
`test_shell_label.py`'s.
"""

from __future__ import annotations

# ruff: noqa: S108 -- /tmp paths are data here: write targets outside the workspace
import pytest

from capscope.commands._label import label
from capscope.commands._model import Redirect, SimpleCommand
from capscope.commands._normalise import (
    is_fork_bomb,
    normalise,
    normalise_all,
)
from capscope.policies.command import CommandLabel

L = CommandLabel
CWD = "/ws"
ROOTS = ["/ws"]
HOME = "/home/u"


def sc(
    *argv: str, redirects=(), piped=False, background=False, assignments=()
):
    return SimpleCommand(
        argv=argv,
        redirects=tuple(redirects),
        piped=piped,
        background=background,
        assignments=tuple(assignments),
    )


def argvs(*argv: str) -> list[tuple[str, ...]]:
    return [c.argv for c in normalise(sc(*argv))]


def labels_of(commands, *, cwd=CWD, roots=ROOTS, home=HOME):
    if isinstance(commands, SimpleCommand):
        commands = [commands]
    normal = normalise_all(commands)
    return set(label(normal, cwd=cwd, workspace_roots=roots, home=home))


def w(target: str, op: str = ">") -> Redirect:
    return Redirect(op=op, target=target, fd=1)


class TestNormalCommand:
    def test_fields(self):
        """A normalised command keeps its source and the wrapper facts."""

        source = sc("sudo", "-u", "root", "env", "A=1", "/bin/ls", "-la")

        (cmd,) = normalise(source)

        assert ("ls", "-l", "-a") == cmd.argv
        assert source is cmd.source
        assert cmd.privileged
        assert ("sudo", "env") == cmd.wrappers
        assert () == cmd.unresolved
        assert (("A", "1"),) == cmd.assignments
        assert "ls" == cmd.program

    def test_frozen(self):
        """NormalCommand is immutable."""

        (cmd,) = normalise(sc("ls"))

        with pytest.raises(AttributeError):
            cmd.argv = ()  # type: ignore[misc]

    def test_empty(self):
        """An assignment-only command normalises to an empty argv."""

        (cmd,) = normalise(SimpleCommand((), assignments=(("A", "1"),)))

        assert () == cmd.argv
        assert cmd.program is None


class TestBasename:
    @pytest.mark.parametrize(
        ("argv", "expected"),
        [
            (("/usr/bin/rm", "x"), ("rm", "x")),
            (("/bin/rm", "x"), ("rm", "x")),
            (("./rm", "x"), ("rm", "x")),
            (("../bin/ls",), ("ls",)),
            (("rm", "x"), ("rm", "x")),
            (("sudo", "/usr/bin/env", "/bin/rm", "x"), ("rm", "x")),
        ],
    )
    def test_program_by_basename(self, argv, expected):
        """The program is judged by its basename, at every wrapper level."""

        assert [expected] == argvs(*argv)


class TestWrappers:
    @pytest.mark.parametrize(
        ("argv", "wrappers"),
        [
            (("sudo", "rm", "x"), ("sudo",)),
            (("sudo", "-u", "root", "rm", "x"), ("sudo",)),
            (("sudo", "-uroot", "-E", "rm", "x"), ("sudo",)),
            (("sudo", "-E", "--", "rm", "x"), ("sudo",)),
            (("sudo", "--user=root", "rm", "x"), ("sudo",)),
            (("sudo", "--user", "root", "-H", "rm", "x"), ("sudo",)),
            (("sudo", "A=1", "rm", "x"), ("sudo",)),
            (("doas", "-u", "root", "rm", "x"), ("doas",)),
            (("env", "rm", "x"), ("env",)),
            (("env", "-i", "A=1", "B=2", "rm", "x"), ("env",)),
            (("env", "-u", "HOME", "rm", "x"), ("env",)),
            (("env", "--unset=HOME", "--", "rm", "x"), ("env",)),
            (("command", "rm", "x"), ("command",)),
            (("command", "-p", "rm", "x"), ("command",)),
            (("exec", "rm", "x"), ("exec",)),
            (("exec", "-a", "name", "-c", "rm", "x"), ("exec",)),
            (("builtin", "rm", "x"), ("builtin",)),
            (("nice", "rm", "x"), ("nice",)),
            (("nice", "-n", "5", "rm", "x"), ("nice",)),
            (("nice", "-n5", "rm", "x"), ("nice",)),
            (("nice", "-5", "rm", "x"), ("nice",)),
            (("nice", "--adjustment=5", "rm", "x"), ("nice",)),
            (("nohup", "rm", "x"), ("nohup",)),
            (("time", "rm", "x"), ("time",)),
            (("time", "-p", "rm", "x"), ("time",)),
            (("timeout", "10", "rm", "x"), ("timeout",)),
            (
                ("timeout", "-s", "KILL", "-k", "5", "10s", "rm", "x"),
                ("timeout",),
            ),
            (
                (
                    "timeout",
                    "--signal=TERM",
                    "--preserve-status",
                    "1m",
                    "rm",
                    "x",
                ),
                ("timeout",),
            ),
            (("stdbuf", "-oL", "rm", "x"), ("stdbuf",)),
            (("stdbuf", "-i", "0", "-e", "0", "rm", "x"), ("stdbuf",)),
            (("ionice", "-c", "3", "rm", "x"), ("ionice",)),
            (("ionice", "-c2", "-n", "7", "-t", "rm", "x"), ("ionice",)),
            (("setsid", "-f", "-w", "rm", "x"), ("setsid",)),
            (("busybox", "rm", "x"), ("busybox",)),
            (
                (
                    "sudo",
                    "nice",
                    "-n",
                    "5",
                    "timeout",
                    "10",
                    "env",
                    "A=1",
                    "rm",
                    "x",
                ),
                ("sudo", "nice", "timeout", "env"),
            ),
        ],
    )
    def test_unwrapped(self, argv, wrappers):
        """Every wrapper and its own options are removed, recursively."""

        (cmd,) = normalise(sc(*argv))

        assert ("rm", "x") == cmd.argv
        assert wrappers == cmd.wrappers
        assert () == cmd.unresolved

    @pytest.mark.parametrize(
        ("argv", "privileged"),
        [
            (("sudo", "ls"), True),
            (("doas", "ls"), True),
            (("env", "sudo", "ls"), True),
            (("nice", "ls"), False),
            (("env", "ls"), False),
        ],
    )
    def test_privileged(self, argv, privileged):
        """sudo/doas anywhere in the wrapper chain mark the command."""

        (cmd,) = normalise(sc(*argv))

        assert privileged == cmd.privileged

    def test_command_v_runs_nothing(self):
        """`command -v rm` is a lookup and is not unwrapped."""

        assert [("command", "-v", "rm")] == argvs("command", "-v", "rm")
        assert [("command", "-V", "rm")] == argvs("command", "-V", "rm")

    def test_wrapper_alone(self):
        """A wrapper with no command is itself the command."""

        assert [("env",)] == argvs("env")
        assert [("sudo", "-v")] == argvs("sudo", "-v")

    @pytest.mark.parametrize(
        ("argv", "reason"),
        [
            (("env", "-S", "rm x"), "env -S splits a string into words"),
            (("xargs", "rm", "x"), "arguments read from input"),
            (
                ("xargs", "-0", "-n", "1", "-P", "4", "rm", "x"),
                "arguments read from input",
            ),
            (("xargs", "-I", "{}", "rm", "x"), "arguments read from input"),
            (
                ("xargs", "--null", "--max-args=1", "rm", "x"),
                "arguments read from input",
            ),
        ],
    )
    def test_unwrapped_but_unresolved(self, argv, reason):
        """`env -S` and `xargs` run a command whose words are not all on
        the line: it is unwrapped, and unresolved."""

        (cmd,) = normalise(sc(*argv))

        assert (("rm", "x"), (reason,)) == (cmd.argv, cmd.unresolved)

    def test_unknown_wrapper_option_is_unresolved(self):
        """An option the table does not know might take a value: unresolved."""

        (cmd,) = normalise(sc("sudo", "--frobnicate", "x", "rm", "y"))

        assert "an option of sudo capscope does not know" in cmd.unresolved

    def test_wrapper_assignments_are_kept(self):
        """`env A=1` and `sudo A=1` give the command its environment (the
        labeller judges it)."""

        (a,) = normalise(sc("env", "PATH=/tmp", "ls"))
        (b,) = normalise(sc("ls", assignments=[("LD_PRELOAD", "/x.so")]))

        assert (("PATH", "/tmp"),) == a.assignments
        assert (("LD_PRELOAD", "/x.so"),) == b.assignments

    def test_env_chdir(self):
        """`env -C DIR` records the directory the command runs in."""

        (cmd,) = normalise(sc("env", "-C", "/", "rm", "-rf", "."))

        assert "/" == cmd.cwd

    def test_xargs_without_command_runs_echo(self):
        """`xargs` alone runs echo."""

        assert [("echo",)] == argvs("xargs", "-0")


class TestFind:
    def test_exec_split(self):
        """find -exec gives find without the exec part, then the command."""

        result = argvs("find", "/", "-exec", "rm", "-rf", "{}", ";")

        assert [("find", "/"), ("rm", "-r", "-f", "/")] == result

    @pytest.mark.parametrize("action", ["-exec", "-execdir", "-ok", "-okdir"])
    def test_every_exec_action(self, action):
        """-exec, -execdir, -ok and -okdir all run a command."""

        result = argvs("find", ".", "-name", "x", action, "rm", "{}", "+")

        assert [("find", ".", "-name", "x"), ("rm", "./{}")] == result
        assert ("find",) == normalise(
            sc("find", ".", action, "rm", "{}", ";")
        )[1].wrappers

    def test_filtered_placeholder_is_under_start(self):
        """With a filter, `{}` is something under the start path; the
        command runs once per file found, so it is unresolved."""

        (_, cmd) = normalise(
            sc("find", "/", "-name", "x", "-exec", "rm", "-rf", "{}", ";")
        )

        assert ("rm", "-r", "-f", "/{}") == cmd.argv
        assert "runs on each file find finds" in cmd.unresolved

    def test_nested_wrapper_in_exec(self):
        """The executed command is normalised in turn."""

        (_, cmd) = normalise(
            sc("find", ".", "-exec", "sudo", "/bin/rm", "{}", ";")
        )

        assert ("rm", ".") == cmd.argv
        assert cmd.privileged


class TestFlags:
    @pytest.mark.parametrize(
        ("argv", "expected"),
        [
            (("rm", "-rf", "x"), ("rm", "-r", "-f", "x")),
            (("rm", "-fr", "x"), ("rm", "-f", "-r", "x")),
            (("rm", "-Rf", "x"), ("rm", "-r", "-f", "x")),
            (("rm", "--recursive", "--force", "x"), ("rm", "-r", "-f", "x")),
            (("rm", "--", "-rf"), ("rm", "--", "-rf")),
            (
                ("rm", "--no-preserve-root", "-rf", "/"),
                ("rm", "--no-preserve-root", "-r", "-f", "/"),
            ),
            (("cp", "-av", "a", "b"), ("cp", "-a", "-v", "a", "b")),
            (("cp", "-rt", "dir", "a"), ("cp", "-r", "-t", "dir", "a")),
            (("cp", "--target-directory=dir", "a"), ("cp", "-t", "dir", "a")),
            (("mv", "-fv", "a", "b"), ("mv", "-f", "-v", "a", "b")),
            (("chmod", "-Rv", "777", "x"), ("chmod", "-R", "-v", "777", "x")),
            (
                ("chmod", "--recursive", "777", "x"),
                ("chmod", "-R", "777", "x"),
            ),
            (("chmod", "-rwx", "x"), ("chmod", "-rwx", "x")),
            (("chown", "-Rh", "u", "x"), ("chown", "-R", "-h", "u", "x")),
            (("chown", "--recursive", "u", "x"), ("chown", "-R", "u", "x")),
            (("ls", "-la"), ("ls", "-l", "-a")),
            (("grep", "-rn", "x", "."), ("grep", "-r", "-n", "x", ".")),
            (("grep", "-rfpats", "."), ("grep", "-r", "-f", "pats", ".")),
            (("head", "-n5", "f"), ("head", "-n", "5", "f")),
            (("head", "-5", "f"), ("head", "-5", "f")),
            (("sed", "-ni", "p", "f"), ("sed", "-n", "-i", "p", "f")),
            (("sed", "-i.bak", "p", "f"), ("sed", "-i.bak", "p", "f")),
            (("sed", "--in-place", "p", "f"), ("sed", "-i", "p", "f")),
            (
                ("curl", "-sSLo", "out", "u"),
                ("curl", "-s", "-S", "-L", "-o", "out", "u"),
            ),
            (("curl", "--output=out", "u"), ("curl", "-o", "out", "u")),
            (("curl", "--output", "out", "u"), ("curl", "-o", "out", "u")),
            (
                ("curl", "--data-binary=@f", "u"),
                ("curl", "--data-binary", "@f", "u"),
            ),
            (("wget", "-qO-", "u"), ("wget", "-q", "-O", "-", "u")),
            (("wget", "--output-document=f", "u"), ("wget", "-O", "f", "u")),
            (("tar", "-xzf", "a.tgz"), ("tar", "-xzf", "a.tgz")),
            (("dd", "if=a", "of=b"), ("dd", "if=a", "of=b")),
            (("kill", "-9", "1"), ("kill", "-9", "1")),
            (("ls", "--color=auto"), ("ls", "--color=auto")),
            (("mytool", "--opt=value"), ("mytool", "--opt", "value")),
            (("mytool", "-abc"), ("mytool", "-abc")),
        ],
    )
    def test_normalised(self, argv, expected):
        """Bundles split, `--opt=value` split, long forms made short."""

        assert [expected] == argvs(*argv)


class TestGit:
    @pytest.mark.parametrize(
        ("argv", "expected", "paths"),
        [
            (("git", "status"), ("git", "status"), ()),
            (("git", "-C", "/ws/a", "status"), ("git", "status"), ("/ws/a",)),
            (
                ("git", "--git-dir=/x/.git", "log"),
                ("git", "log"),
                ("/x/.git",),
            ),
            (("git", "--work-tree", "/x", "log"), ("git", "log"), ("/x",)),
            (
                ("git", "--no-pager", "-P", "log", "-1"),
                ("git", "log", "-1"),
                (),
            ),
            (
                ("git", "push", "--force", "o", "b"),
                ("git", "push", "-f", "o", "b"),
                (),
            ),
            (
                ("git", "push", "-fu", "o", "b"),
                ("git", "push", "-f", "-u", "o", "b"),
                (),
            ),
            (
                ("git", "log", "--format=%H; x"),
                ("git", "log", "--format", "%H; x"),
                (),
            ),
        ],
    )
    def test_global_options_stripped(self, argv, expected, paths):
        """Global options before the subcommand are removed; paths kept."""

        (cmd,) = normalise(sc(*argv))

        assert expected == cmd.argv
        assert paths == cmd.paths
        assert () == cmd.unresolved

    @pytest.mark.parametrize(
        "argv",
        [
            ("git", "-c", "core.pager=sh", "log"),
            ("git", "-ccore.pager=sh", "log"),
            ("git", "--config-env=core.pager=X", "log"),
            ("git", "--exec-path=/tmp", "log"),
        ],
    )
    def test_code_options_run_code(self, argv):
        """-c, --config-env and --exec-path make git run code the line
        does not show."""

        (cmd,) = normalise(sc(*argv))

        assert ("git", "log") == cmd.argv
        assert () == cmd.unresolved
        assert 1 == len(cmd.code)
        assert "sets configuration that can run programs" in cmd.code[0]

    def test_an_unknown_global_option_is_unresolved(self):
        """A global option the table does not know may take a value."""

        (cmd,) = normalise(sc("git", "--frob", "x", "log"))

        assert ("an option of git capscope does not know",) == cmd.unresolved


class TestInterpreters:
    @pytest.mark.parametrize(
        "argv",
        [
            ("python", "-c", "x"),
            ("python3", "-c", "x"),
            ("python3.11", "-Bc", "x"),
            ("perl", "-e", "x"),
            ("perl", "-lne", "x"),
            ("ruby", "-e", "x"),
            ("node", "-e", "x"),
            ("node", "--eval=x"),
            ("php", "-r", "x"),
        ],
    )
    def test_inline_code(self, argv):
        """Inline code is code the line does not show (not unresolved:
        what runs is known, it is the interpreter)."""

        (cmd,) = normalise(sc(*argv))

        assert ((), ("runs code given on the line",)) == (
            cmd.unresolved,
            cmd.code,
        )

    @pytest.mark.parametrize(
        "argv",
        [
            ("python", "script.py"),
            ("python", "-m", "pytest"),
            ("perl", "-MEnglish", "x.pl"),
            ("node", "app.js"),
            ("awk", "{print $1}", "f"),
            ("bash", "script.sh"),
        ],
    )
    def test_script_files_resolved(self, argv):
        """A script file is an ordinary command (its content is its own)."""

        (cmd,) = normalise(sc(*argv))

        assert () == cmd.unresolved

    @pytest.mark.parametrize(
        "receiver",
        ["sh", "bash", "python", "python3", "perl", "node", "ruby"],
    )
    def test_pipe_into_interpreter(self, receiver):
        """An interpreter with no script reading a pipe is unresolved."""

        cmds = normalise_all([sc("echo", "x", piped=True), sc(receiver)])

        assert ("pipe into interpreter",) == cmds[1].unresolved
        assert cmds[1].piped_input
        assert cmds[0].piped_output

    def test_pipe_into_interpreter_with_dash(self):
        """`python -` and `bash -s` read stdin too."""

        for argv in (("python", "-"), ("bash", "-s"), ("sh", "-s", "--", "a")):
            cmds = normalise_all([sc("cat", "f", piped=True), sc(*argv)])
            assert ("pipe into interpreter",) == cmds[1].unresolved

    def test_pipe_into_non_interpreter(self):
        """A pipe into grep is fine."""

        cmds = normalise_all([sc("ls", piped=True), sc("grep", "x")])

        assert () == cmds[1].unresolved

    def test_python_m_pip(self):
        """`python -m pip install` is pip install."""

        assert [("pip", "install", "x")] == argvs(
            "python3", "-m", "pip", "install", "x"
        )

    def test_shell_without_script(self):
        """`bash -c` with no script (as xargs would supply) is unresolved."""

        (cmd,) = normalise(sc("xargs", "bash", "-c"))

        assert "shell script not visible" in cmd.unresolved

    @pytest.mark.parametrize("shell", ["zsh", "fish", "ksh", "csh"])
    def test_shells_capscope_does_not_model(self, shell):
        """Another shell's script is read (for the floor) but unresolved:
        zsh's glob qualifiers, fish's syntax are not bash's."""

        cmds = normalise(sc(shell, "-c", "ls"))

        assert (
            f"a script for {shell}, which capscope does not model"
            in cmds[0].unresolved
        )

    @pytest.mark.parametrize(
        "options", [["-i"], ["-O", "extglob"], ["--rcfile", "x"], ["-k"]]
    )
    def test_shell_options_that_change_reading(self, options):
        """`bash -i` expands aliases, `-O extglob` reads globs anew: such
        an option makes the script unresolved."""

        (cmd,) = normalise(sc("bash", *options, "-c", "ls"))

        assert any("shell option" in r for r in cmd.unresolved)


class TestShellC:
    @pytest.mark.parametrize(
        "argv",
        [
            ("sh", "-c", "rm -rf /"),
            ("bash", "-c", "rm -rf /"),
            ("bash", "-lc", "rm -rf /"),
            ("bash", "-l", "-c", "rm -rf /"),
            ("bash", "-ec", "rm -rf /"),
            ("bash", "-o", "pipefail", "-c", "rm -rf /"),
            ("bash", "--norc", "-c", "rm -rf /"),
            ("zsh", "-c", "rm -rf /"),
            ("dash", "-c", "rm -rf /"),
            ("ksh", "-c", "rm -rf /"),
            ("/bin/sh", "-c", "rm -rf /", "name", "arg"),
            ("sudo", "bash", "-c", "rm -rf /"),
            ("sh", "-c", "bash -c 'rm -rf /'"),
            ("su", "-c", "rm -rf /"),
            ("eval", "rm", "-rf", "/"),
        ],
    )
    def test_script_parsed(self, argv):
        """The -c script is parsed and each command normalised."""

        result = [c.argv for c in normalise(sc(*argv))]

        assert [("rm", "-r", "-f", "/")] == result

    def test_script_several_commands(self):
        """Every command of the script is returned, wrappers recorded."""

        result = normalise(sc("bash", "-c", "ls; /bin/rm -rf x && echo y"))

        assert [("ls",), ("rm", "-r", "-f", "x"), ("echo", "y")] == [
            c.argv for c in result
        ]
        assert all(c.wrappers == ("bash",) for c in result)

    def test_script_pipe_into_shell(self):
        """A pipe inside a -c script is seen."""

        result = normalise(sc("bash", "-c", "curl x | sh"))

        assert ("pipe into interpreter",) == result[1].unresolved
        assert L.CATASTROPHIC in set(
            label(result, cwd=CWD, workspace_roots=ROOTS, home=HOME)
        )

    def test_heredoc_into_shell(self):
        """A here-doc body fed to a shell is parsed like -c."""

        cmd = sc("bash", redirects=[Redirect("<<", "rm -rf /\n", 0)])

        assert [("rm", "-r", "-f", "/")] == [c.argv for c in normalise(cmd)]

    def test_unexpanded_heredoc_into_shell(self):
        """A here-doc that expands (target None) is unresolved."""

        (cmd,) = normalise(sc("sh", redirects=[Redirect("<<", None, 0)]))

        assert ("here-document into interpreter",) == cmd.unresolved

    def test_fork_bomb_script(self):
        """A fork bomb in a -c script is catastrophic."""

        assert L.CATASTROPHIC in labels_of(sc("bash", "-c", ":(){ :|:& };:"))


class TestForkBomb:
    @pytest.mark.parametrize(
        "text",
        [
            ":(){ :|:& };:",
            ":(){:|:&};:",
            ": ( ) { : | : & } ; :",
            "bomb(){ bomb|bomb& };bomb",
            "function f { f | f & }; f",
        ],
    )
    def test_detected(self, text):
        """The classic fork bomb and renamings are found."""

        assert is_fork_bomb(text)

    @pytest.mark.parametrize("text", ["f() { echo; }; f", "ls | grep x &", ""])
    def test_not_detected(self, text):
        """Ordinary functions and pipes are not fork bombs."""

        assert not is_fork_bomb(text)

    def test_pipeline_shape(self):
        """A command piped into itself in the background is the floor."""

        cmds = [
            sc(":", piped=True, background=True),
            sc(":", background=True),
            sc(":"),
        ]

        assert L.CATASTROPHIC in labels_of(cmds)
