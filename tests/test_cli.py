"""
The `capscope` command, run for real in a subprocess, both as
`python -m capscope` and as the installed console script.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import capscope as cs

#: What `capscope stacks` shows for each built-in: kind, worker gets, origin.
BUILTIN_ROWS = {
    "execution": ("stack", "TOP", "built-in"),
    "approval": ("stack", "TOP", "built-in"),
    "command": ("stack", "COPY", "built-in"),
    "permissions": ("stack", "COPY", "built-in"),
    "overlay": ("stack", "COPY", "built-in"),
    "autonomy": ("stack", "COPY", "built-in"),
    "render": ("stack", "NONE", "built-in"),
    "connector": ("stack", "NONE", "built-in"),
    "trusted_depth": ("counter", "0", "built-in"),
    "command_hook_depth": ("counter", "0", "built-in"),
}

#: The console script pip installed beside this interpreter.
SCRIPT = shutil.which("capscope", path=str(Path(sys.executable).parent))

Run = Callable[..., subprocess.CompletedProcess[str]]


def _commands() -> dict[str, list[str]]:
    assert SCRIPT is not None, f"no capscope script next to {sys.executable}"
    return {
        "python -m capscope": [sys.executable, "-m", "capscope"],
        "capscope script": [SCRIPT],
    }


@pytest.fixture(params=["python -m capscope", "capscope script"])
def cli(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    """
    Run the command (each way in turn) with the given arguments, in an
    empty directory and an environment without PYTHONPATH or
    CAPSCOPE_BLOCKED_STACKS unless given.
    """
    command = _commands()[request.param]

    def run(
        *args: str, pythonpath: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in {"PYTHONPATH", "CAPSCOPE_BLOCKED_STACKS"}
        }
        if pythonpath is not None:
            env["PYTHONPATH"] = pythonpath
        return subprocess.run(
            [*command, *args],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=120,
            check=False,
        )

    return run


def _table(stdout: str) -> dict[str, tuple[str, ...]]:
    """The rows of `capscope stacks`: name -> (kind, gets, origin, doc)."""
    header, *lines = stdout.splitlines()
    assert ["NAME", "KIND", "WORKER GETS", "ORIGIN", "DOC"] == re.split(
        r"\s{2,}", header
    )
    rows = {}
    for line in lines:
        name, *cells = re.split(r"\s{2,}", line, maxsplit=4)
        rows[name] = tuple(cells)
    return rows


class TestStacks:
    def test_lists_the_built_ins(self, cli):
        """`capscope stacks` lists the ten built-ins, in registration
        order, with their kind, what a worker gets and "built-in"."""
        result = cli("stacks")

        rows = _table(result.stdout)
        assert (0, "") == (result.returncode, result.stderr)
        assert list(BUILTIN_ROWS) == list(rows)
        assert BUILTIN_ROWS == {name: row[:3] for name, row in rows.items()}

    def test_shows_each_stacks_doc(self, cli):
        """The last column is the stack's doc line."""
        rows = _table(cli("stacks").stdout)

        assert {n: cs.registry.get(n).doc for n in BUILTIN_ROWS} == {
            n: row[3] for n, row in rows.items()
        }

    def test_lists_a_plugin_stack(self, cli, acme_dist):
        """With the acme distribution importable, its `tenant` stack is
        listed after the built-ins, COPY, from "acme-capscope 0.1.0"."""
        result = cli("stacks", pythonpath=acme_dist.pythonpath)

        rows = _table(result.stdout)
        assert 0 == result.returncode
        assert [*BUILTIN_ROWS, "tenant"] == list(rows)
        assert (
            "stack",
            "COPY",
            "acme-capscope 0.1.0",
            "the tenant this work is for",
        ) == rows["tenant"]

    def test_a_broken_entry_point_exits_1(self, cli, fake_dist):
        """A broken entry point: exit status 1, nothing on stdout, and the
        RegistryError (entry point and distribution) as one line on stderr,
        no traceback."""
        dist = fake_dist(
            "broken-capscope",
            {"broken": "cli_broken_mod:broken"},
            {"cli_broken_mod": "raise RuntimeError('plugin exploded')"},
            on_sys_path=False,
        )

        result = cli("stacks", pythonpath=dist.pythonpath)

        assert (1, "") == (result.returncode, result.stdout)
        assert (
            "capscope: entry point 'broken' = 'cli_broken_mod:broken' in "
            "group 'capscope.stacks' (distribution broken-capscope 0.1.0) "
            "failed to import: RuntimeError('plugin exploded')\n"
        ) == result.stderr

    def test_a_clashing_entry_point_exits_1(self, cli, fake_dist):
        """A plugin claiming a built-in's name fails the command too."""
        dist = fake_dist(
            "clash-capscope",
            {"execution": "cli_clash_mod:execution"},
            {
                "cli_clash_mod": (
                    "import capscope\n"
                    "execution = capscope.AmbientStack(\n"
                    "    'execution', inherit=capscope.Inherit.COPY)\n"
                )
            },
            on_sys_path=False,
        )

        result = cli("stacks", pythonpath=dist.pythonpath)

        assert 1 == result.returncode
        assert result.stderr.startswith("capscope: entry point 'execution'")
        assert "(distribution clash-capscope 0.1.0)" in result.stderr
        assert "'execution' is taken" in result.stderr


class TestOptions:
    def test_version(self, cli):
        """`--version` prints "capscope <installed version>" and exits 0."""
        result = cli("--version")

        assert (
            0,
            f"capscope {importlib.metadata.version('capscope')}\n",
        ) == (result.returncode, result.stdout)

    def test_help(self, cli):
        """`--help` exits 0 and shows the usage, the `stacks` subcommand and
        the exit codes."""
        result = cli("--help")

        assert 0 == result.returncode
        assert result.stdout.startswith("usage: capscope")
        assert "stacks" in result.stdout
        assert (
            "Exit codes: 0 ok/allowed, 1 denied or problems found, 2 usage "
            "error, 3 ask (approval needed), 4 bad input (a policy file or "
            "module)."
        ) in " ".join(result.stdout.split())

    def test_stacks_help(self, cli):
        """`stacks --help` exits 0 and describes the listing."""
        result = cli("stacks", "--help")

        assert 0 == result.returncode
        assert result.stdout.startswith("usage: capscope stacks")

    def test_no_subcommand_is_a_usage_error(self, cli):
        """With no subcommand the command exits 2 with the usage on
        stderr."""
        result = cli()

        assert (2, "") == (result.returncode, result.stdout)
        assert result.stderr.startswith("usage: capscope")
        assert "the following arguments are required: command" in (
            result.stderr
        )

    def test_an_unknown_subcommand_is_a_usage_error(self, cli):
        """An unknown subcommand exits 2 and names it."""
        result = cli("bogus")

        assert (2, "") == (result.returncode, result.stdout)
        assert "invalid choice: 'bogus'" in result.stderr


TOOLS_MODULE = """\
import capscope as cs


@cs.requires_tool("fs.read", side_effect="read_only", paths=("path",))
def read(path: str) -> str:
    return path


@cs.requires_tool(
    "fs.write",
    capability="workspace.write_text",
    side_effect="workspace_write",
    paths=("path",),
)
def write(path: str, text: str) -> None:
    pass


@cs.needs_approval("deploy", side_effect="network", reason="ships code")
def deploy(env: str) -> None:
    pass


def helper() -> None:
    pass


class Shell:
    @cs.requires_tool("shell.run", side_effect="process_exec")
    def run(self, cmd: str) -> str:
        return cmd

    @staticmethod
    @cs.requires_tool("shell.which", side_effect="read_only")
    def which(name: str) -> str:
        return name

    @classmethod
    @cs.requires_tool("shell.env", side_effect="read_only")
    def env(cls) -> dict[str, str]:
        return {}
"""

#: name -> (import path, capability, side effect, approval, paths)
MANIFEST = {
    "fs.read": ("myapp.tools:read", None, "read_only", False, ["path"]),
    "fs.write": (
        "myapp.tools:write",
        "workspace.write_text",
        "workspace_write",
        False,
        ["path"],
    ),
    "deploy": ("myapp.tools:deploy", None, "network", True, []),
    "shell.run": ("myapp.tools:Shell.run", None, "process_exec", False, []),
    "shell.which": ("myapp.tools:Shell.which", None, "read_only", False, []),
    "shell.env": ("myapp.tools:Shell.env", None, "read_only", False, []),
}

POLICY = """\
[execution]
tools = ["fs.*", "deploy", "net.*", "fs.read", "shell.which", "shell.env"]
side_effect_level = "workspace_write"
workspace_roots = ["/srv/ws"]

[[approval.rules]]
action = "allow"
tool = "fs.read"

[[approval.rules]]
action = "deny"
tool = "fs.*"
path = "/srv/ws/secret/*"

[[approval.rules]]
action = "deny"
tool = "fs.read"

[[approval.rules]]
action = "ask"
tool = "fs.write"

[command]
allow = ["git status *", "git *", "ls *"]
deny_patterns = ["git push"]
default = "deny"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A package `myapp` with decorated tools and a policy file, in the
    directory the command runs in."""
    (tmp_path / "myapp").mkdir()
    (tmp_path / "myapp" / "__init__.py").write_text("")
    (tmp_path / "myapp" / "tools.py").write_text(TOOLS_MODULE)
    (tmp_path / "policy.toml").write_text(POLICY)
    return tmp_path


def _fields(stdout: str) -> dict[str, str]:
    """The `name:  value` lines of `capscope check`."""
    return dict(
        re.split(r":\s+", line, maxsplit=1) for line in stdout.splitlines()
    )


def _json(result: subprocess.CompletedProcess[str]) -> Any:
    assert "" == result.stderr
    return json.loads(result.stdout)


class TestStacksJson:
    def test_json_lists_every_stack(self, cli):
        """`stacks --json`: one object per stack, in registry order, with
        the same facts as the table and whether it has a codec."""
        stacks = _json(cli("stacks", "--json"))

        assert list(BUILTIN_ROWS) == [s["name"] for s in stacks]
        by_name = {s["name"]: s for s in stacks}
        for name, (kind, gets, origin) in BUILTIN_ROWS.items():
            row = by_name[name]
            assert (kind, gets, origin) == (
                row["kind"],
                row["worker_gets"],
                row["origin"],
            )
        assert by_name["execution"]["codec"] is True
        assert by_name["connector"]["codec"] is False


class TestCheck:
    def test_a_command_the_policy_allows_exits_0(self, cli, project):
        result = cli("check", "--policy", "policy.toml", "command", "git log")

        fields = _fields(result.stdout)
        assert (0, "") == (result.returncode, result.stderr)
        assert ("allow", "git log") == (
            fields["decision"],
            fields["segment 1"],
        )

    def test_a_catastrophic_command_exits_1_with_its_labels(
        self, cli, project
    ):
        result = cli(
            "check",
            "--policy",
            "policy.toml",
            "command",
            "git status; rm -rf /",
        )

        assert 1 == result.returncode
        lines = _fields(result.stdout)
        assert lines["decision"] == "deny"
        assert lines["gate"] == "command"
        assert lines["labels"] == "catastrophic"
        assert lines["segment 2"] == "rm -r -f /"

    def test_a_deny_pattern_names_its_rule(self, cli, project):
        record = json.loads(
            cli(
                "check",
                "--policy",
                "policy.toml",
                "--json",
                "command",
                "git push origin main",
            ).stdout
        )

        assert ("deny", "git push") == (record["action"], record["rule"])

    def test_a_tool_outside_the_ceiling_exits_1(self, cli, project):
        result = cli(
            "check", "--policy", "policy.toml", "tool", "shell.run", "--json"
        )

        record = json.loads(result.stdout)
        assert 1 == result.returncode
        assert ("deny", "tool_ceiling", "shell.run") == (
            record["action"],
            record["gate"],
            record["tool"],
        )

    def test_a_path_argument_outside_the_roots(self, cli, project):
        argv = ["check", "--policy", "policy.toml", "tool", "fs.write"]
        argv += ["--side-effect", "workspace_write", "--path-arg", "path"]

        inside = cli(*argv, "--arg", "path=/srv/ws/a.txt", "--arg", "text=x")
        outside = cli(*argv, "--arg", "path=/etc/passwd", "--arg", "text=x")

        assert 3 == inside.returncode  # the ask rule on fs.write
        assert "ask" == _fields(inside.stdout)["decision"]
        assert 1 == outside.returncode
        assert "workspace_boundary" == _fields(outside.stdout)["gate"]

    def test_an_allowed_tool_exits_0(self, cli, project):
        result = cli(
            "check",
            "--policy",
            "policy.toml",
            "tool",
            "shell.which",
            "--side-effect",
            "read_only",
        )

        assert (0, "") == (result.returncode, result.stderr)
        assert "allow" == _fields(result.stdout)["decision"]

    def test_the_spec_can_come_from_the_code(self, cli, project):
        """`--from` takes the tool's spec from its decorator: `deploy`
        is a network tool, above this ceiling."""
        result = cli(
            "check",
            "--policy",
            "policy.toml",
            "tool",
            "deploy",
            "--from",
            "myapp.tools",
            "--arg",
            "env=prod",
        )

        assert 1 == result.returncode
        assert "side_effect_ceiling" == _fields(result.stdout)["gate"]

    def test_the_command_gate_of_a_guarded_tool_runs_too(self, cli, tmp_path):
        """`--from` a tool stacked on `guards_command`: the dry run runs the
        command gate the real call runs (issue 14)."""
        (tmp_path / "guarded.py").write_text(
            "import capscope as cs\n\n\n"
            '@cs.requires_tool("shell", side_effect="process_exec")\n'
            '@cs.guards_command(arg="cmd", name="shell")\n'
            "def shell(cmd: str) -> str:\n"
            "    return cmd\n"
        )
        (tmp_path / "open.toml").write_text(
            '[execution]\ntools = ["shell"]\n'
            '[command]\nallow = ["ls *"]\ndefault = "deny"\n'
        )
        argv = ["check", "--policy", "open.toml", "tool", "shell"]
        argv += ["--from", "guarded.py", "--arg"]

        listing = cli(*argv, "cmd=ls -la")
        wiping = cli(*argv, "cmd=rm -rf /")
        missing = cli(*argv[:-1])

        assert (0, "allow") == (
            listing.returncode,
            _fields(listing.stdout)["decision"],
        )
        assert 1 == wiping.returncode
        assert ("deny", "command") == (
            _fields(wiping.stdout)["decision"],
            _fields(wiping.stdout)["gate"],
        )
        assert 4 == missing.returncode
        assert "'cmd'" in missing.stderr

    @pytest.mark.parametrize(
        "extra",
        [("--arg", "path"), ("--arg", "=x"), ("--side-effect", "bogus")],
        ids=["arg-without-equals", "arg-without-name", "unknown-level"],
    )
    def test_a_malformed_option_is_a_usage_error(self, cli, project, extra):
        """Usage errors exit 2 (argparse's), naming the option."""
        result = cli(
            "check", "--policy", "policy.toml", "tool", "fs.read", *extra
        )

        assert (2, "") == (result.returncode, result.stdout)
        assert f"argument {extra[0]}:" in result.stderr

    def test_a_file_without_execution_says_so(self, cli, tmp_path):
        """No [execution] table: the reason says the files have none, not
        that a policy was lost at a thread boundary."""
        (tmp_path / "empty.toml").write_text("schema = 1\n")

        result = cli("check", "--policy", "empty.toml", "tool", "fs.read")

        fields = _fields(result.stdout)
        assert (1, "no_policy") == (result.returncode, fields["gate"])
        assert "empty.toml has no [execution] table" in fields["reason"]
        assert "thread" not in fields["reason"]

    def test_a_tool_missing_from_the_code_is_bad_input(self, cli, project):
        result = cli(
            "check",
            "--policy",
            "policy.toml",
            "tool",
            "nope",
            "--from",
            "myapp.tools",
        )

        assert (4, "") == (result.returncode, result.stdout)
        assert "no decorated tool named 'nope'" in result.stderr

    def test_layered_files(self, cli, project):
        """A later file narrows: the project file takes fs.write away."""
        (project / "project.toml").write_text(
            '[execution]\ntools = ["fs.read"]\n'
        )
        argv = ["check", "--policy", "policy.toml", "--policy", "project.toml"]

        result = cli(*argv, "tool", "fs.write")

        assert 1 == result.returncode
        assert "tool_ceiling" == _fields(result.stdout)["gate"]

    def test_a_widening_later_file_is_bad_input_naming_both(
        self, cli, project
    ):
        (project / "project.toml").write_text(
            '[execution]\nside_effect_level = "network"\n'
        )
        result = cli(
            "check",
            "--policy",
            "policy.toml",
            "--policy",
            "project.toml",
            "tool",
            "fs.read",
        )

        assert (4, "") == (result.returncode, result.stdout)
        assert result.stderr.startswith(
            "capscope check: project.toml:2: execution.side_effect_level: "
        )
        assert "policy.toml" in result.stderr.split(":", 4)[-1]

    def test_a_missing_file_is_bad_input(self, cli, tmp_path):
        result = cli("check", "--policy", "nope.toml", "command", "ls")

        assert (4, "") == (result.returncode, result.stdout)
        assert (
            "capscope check: cannot read the policy file nope.toml: "
            "No such file or directory\n"
        ) == result.stderr

    def test_a_malformed_file_names_the_key_and_line(self, cli, tmp_path):
        (tmp_path / "bad.toml").write_text(
            '[execution]\ntools = ["fs.*"]\n\n[[approval.rules]]\n'
            'action = "aprove"\n'
        )
        result = cli("check", "--policy", "bad.toml", "command", "ls")

        assert (4, "") == (result.returncode, result.stdout)
        assert (
            "capscope check: bad.toml:5: approval.rules[0].action: 'aprove' "
            "is not one of allow, ask, deny\n"
        ) == result.stderr

    def test_a_file_that_does_not_parse(self, cli, tmp_path):
        (tmp_path / "bad.json").write_text('{"execution": {"tools": ["x",]}}')
        result = cli("check", "--policy", "bad.json", "command", "ls")

        assert 4 == result.returncode
        assert result.stderr.startswith(
            "capscope check: bad.json:1: not valid JSON"
        )

    @pytest.mark.parametrize(
        "argv",
        [
            ["check", "command", "ls"],  # no --policy
            ["check", "--policy", "p.toml"],  # no target
            ["check", "--policy", "p.toml", "tool"],  # no name
            ["check", "--policy", "p.toml", "file", "x"],  # unknown target
            ["check", "--policy", "p.toml", "tool", "x", "--bogus"],
        ],
    )
    def test_wrong_arguments_are_usage_errors(self, cli, argv):
        result = cli(*argv)

        assert (2, "") == (result.returncode, result.stdout)
        assert "usage: capscope" in result.stderr


class TestManifest:
    def test_lists_every_decorated_callable(self, cli, project):
        result = cli("manifest", "myapp.*", "--json")

        entries = _json(result)
        assert 0 == result.returncode
        assert MANIFEST == {
            e["tool"]: (
                e["import_path"],
                e["capability"],
                e["side_effect"],
                e["needs_approval"],
                e["paths"],
            )
            for e in entries
        }

    @pytest.mark.parametrize("target", ["myapp/tools.py", "myapp.tools"])
    def test_a_file_works_as_well_as_a_name(self, cli, project, target):
        entries = _json(cli("manifest", target, "--json"))

        assert set(MANIFEST) == {e["tool"] for e in entries}

    def test_a_package_name_imports_only_the_package(self, cli, project):
        """`myapp` imports myapp/__init__.py (no tools there); `myapp.*`
        asks for every module under it."""
        assert _json(cli("manifest", "myapp", "--json")) == []
        assert len(_json(cli("manifest", "myapp.*", "--json"))) == 6

    @pytest.mark.parametrize("target", ["myapp", ".", "myapp/"])
    def test_a_directory_is_never_walked(self, cli, project, target):
        """Files found on disk never run because they are there: a
        directory is refused, and a planted script is not executed."""
        (project / "planted.py").write_text(
            "import pathlib; pathlib.Path('PWNED').write_text('x')\n"
        )
        (project / "myapp" / "planted.py").write_text(
            "import pathlib; pathlib.Path('PWNED').write_text('x')\n"
        )
        if target == "myapp":
            target = "./myapp"  # a path, not a module name

        result = cli("manifest", target)

        assert 4 == result.returncode
        assert "never walked" in result.stderr
        assert not (project / "PWNED").exists()

    def test_the_table(self, cli, project):
        result = cli("manifest", "myapp.*")

        header, *rows, total = result.stdout.splitlines()
        assert 0 == result.returncode
        assert re.split(r"\s{2,}", header) == [
            "IMPORT PATH",
            "TOOL",
            "CAPABILITY",
            "SIDE EFFECT",
            "APPROVAL",
            "COMMAND",
            "PATHS",
        ]
        assert "6 decorated tools" == total
        cells = {
            re.split(r"\s{2,}", r)[1]: re.split(r"\s{2,}", r) for r in rows
        }
        assert cells["fs.write"] == [
            "myapp.tools:write",
            "fs.write",
            "workspace.write_text",
            "workspace_write",
            "-",
            "-",
            "path",
        ]
        assert cells["deploy"][4] == "yes"

    def test_command_guarded_tools_are_shown(self, cli, tmp_path):
        """The table's COMMAND column and `command_guarded` in JSON say
        which tools run a command gate too."""
        (tmp_path / "guarded.py").write_text(
            "import capscope as cs\n\n\n"
            '@cs.requires_tool("shell", side_effect="process_exec")\n'
            '@cs.guards_command(arg="cmd", name="shell")\n'
            "def shell(cmd: str) -> str:\n"
            "    return cmd\n\n\n"
            '@cs.requires_tool("fs.read")\n'
            "def read(path: str) -> str:\n"
            "    return path\n"
        )
        entries = _json(cli("manifest", "guarded.py", "--json"))
        assert {e["tool"]: e["command_guarded"] for e in entries} == {
            "shell": True,
            "fs.read": False,
        }
        rows = cli("manifest", "guarded.py").stdout.splitlines()[1:-1]
        cells = {
            re.split(r"\s{2,}", r)[1]: re.split(r"\s{2,}", r)[5] for r in rows
        }
        assert cells == {"shell": "guarded", "fs.read": "-"}

    def test_a_module_that_does_not_import_is_bad_input(self, cli, tmp_path):
        (tmp_path / "broken.py").write_text("raise RuntimeError('boom')\n")

        result = cli("manifest", "broken.py")

        assert (4, "") == (result.returncode, result.stdout)
        assert "cannot import 'broken'" in result.stderr
        assert "boom" in result.stderr

    def test_an_unknown_module_is_bad_input(self, cli, tmp_path):
        result = cli("manifest", "no_such_module_anywhere")

        assert 4 == result.returncode
        assert "cannot import 'no_such_module_anywhere'" in result.stderr

    def test_no_target_is_a_usage_error(self, cli):
        result = cli("manifest")

        assert 2 == result.returncode


class TestLint:
    def test_reports_each_kind_of_finding(self, cli, project):
        result = cli("lint", "--policy", "policy.toml", "myapp.*", "--json")

        findings = {(f["kind"], f["where"]) for f in _json(result)}
        assert 1 == result.returncode
        assert findings == {
            # outside the ceiling, or above its side-effect level
            ("never_allowed", "myapp.tools:Shell.run"),
            ("never_allowed", "myapp.tools:deploy"),
            # an authored deny selecting the tool alone
            ("never_allowed", "myapp.tools:read"),
            # no tool is called net.*
            ("unused_rule", "execution.tools[2]"),
            # fs.read is within fs.*
            ("shadowed_rule", "execution.tools[3]"),
            # allow fs.read can never win over deny fs.read
            ("shadowed_rule", "approval.rules[0]"),
            # git status * is within git *
            ("shadowed_rule", "command.allow[0]"),
        }

    def test_a_deny_in_an_earlier_file_still_counts(self, cli, project):
        """Layered, each file's rules stay in their frame: the earlier
        file's deny is found there (issue 14)."""
        (project / "later.toml").write_text(
            '[[approval.rules]]\naction = "allow"\ntool = "fs.*"\n'
        )

        result = cli(
            "lint",
            "--policy",
            "policy.toml",
            "--policy",
            "later.toml",
            "myapp.*",
            "--json",
        )

        (read,) = [
            f for f in _json(result) if f["where"] == "myapp.tools:read"
        ]
        assert "never_allowed" == read["kind"]
        assert "outer_rules[0][2]" in read["message"]

    def test_the_text_report(self, cli, project):
        result = cli("lint", "--policy", "policy.toml", "myapp.*")

        *lines, total = result.stdout.splitlines()
        assert 1 == result.returncode
        assert "7 findings, 6 tools, 1 policy file" == total
        assert (
            "policy.toml: execution.tools[2]: unused_rule: 'net.*' matches "
            "no known tool"
        ) in lines

    def test_a_clean_policy_exits_0(self, cli, project):
        (project / "clean.toml").write_text(
            '[execution]\ntools = ["fs.*", "shell.*", "deploy"]\n'
            '[command]\nallow = ["git status *"]\n'
        )

        result = cli("lint", "--policy", "clean.toml", "myapp.*")

        assert (0, "") == (result.returncode, result.stderr)
        assert result.stdout.startswith("0 findings, 6 tools")

    def test_a_malformed_policy_is_bad_input(self, cli, project):
        (project / "bad.toml").write_text("[execution]\ntools = 3\n")

        result = cli("lint", "--policy", "bad.toml", "myapp.*")

        assert (4, "") == (result.returncode, result.stdout)
        assert "bad.toml:2: execution.tools" in result.stderr

    def test_no_policy_is_a_usage_error(self, cli, project):
        result = cli("lint", "myapp.*")

        assert 2 == result.returncode
        assert "--policy" in result.stderr


class TestSchema:
    def test_builtin_is_the_shipped_file(self, cli):
        shipped = Path(cs.__file__).parent / "policy.schema.json"

        result = cli("schema", "--builtin")

        assert 0 == result.returncode
        assert json.loads(shipped.read_text()) == json.loads(result.stdout)

    def test_a_plugin_stack_gets_a_table(self, cli, acme_dist):
        """The acme stack's codec is a plain function pair: an open table."""
        result = cli("schema", pythonpath=acme_dist.pythonpath)

        tenant = json.loads(result.stdout)["properties"]["tenant"]
        assert {
            "type": "object",
            "description": "the tenant this work is for",
        } == tenant


def test_a_plugin_table_in_a_policy_file(cli, acme_dist, tmp_path):
    """A third-party stack's table is read by its codec, found through its
    entry point; its own errors name the key."""
    (tmp_path / "good.toml").write_text('[tenant]\nname = "acme"\n')
    (tmp_path / "bad.toml").write_text('[tenant]\nname = "acme"\nextra = 1\n')

    good = cli(
        "check",
        "--policy",
        "good.toml",
        "command",
        "ls",
        pythonpath=acme_dist.pythonpath,
    )
    bad = cli(
        "check",
        "--policy",
        "bad.toml",
        "command",
        "ls",
        pythonpath=acme_dist.pythonpath,
    )
    unknown = cli("check", "--policy", "good.toml", "command", "ls")

    assert (0, "") == (good.returncode, good.stderr)
    assert 4 == bad.returncode
    assert bad.stderr.startswith(
        "capscope check: bad.toml:1: tenant: expected name"
    )
    assert 4 == unknown.returncode
    assert "bad.toml" not in unknown.stderr
    assert "good.toml:1: tenant: no stack is registered" in unknown.stderr


@pytest.mark.parametrize(
    "subcommand", ["stacks", "demo", "check", "manifest", "lint", "schema"]
)
def test_every_subcommand_has_help_with_the_exit_codes(cli, subcommand):
    result = cli(subcommand, "--help")

    assert 0 == result.returncode
    assert result.stdout.startswith(f"usage: capscope {subcommand}")
    assert "Exit codes:" in result.stdout


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        # wrong arguments: argparse's usage error, for every subcommand
        (["stacks", "--bogus"], 2, "unrecognized arguments: --bogus"),
        (["schema", "extra"], 2, "unrecognized arguments: extra"),
        (["demo", "--workers"], 2, "expected one argument"),
        (["manifest", "--json"], 2, "the following arguments are required"),
        # a missing file: bad input, naming it
        (["manifest", "nope.py"], 4, "no such file or directory: 'nope.py'"),
        (
            ["lint", "--policy", "nope.toml", "myapp"],
            4,
            "cannot read the policy file nope.toml",
        ),
    ],
)
def test_every_subcommand_refuses_bad_input_clearly(
    cli, project, argv, code, message
):
    result = cli(*argv)

    assert (code, "") == (result.returncode, result.stdout)
    assert message in result.stderr
    assert "Traceback" not in result.stderr


AGENT_MODULE = """
import capscope as cs

@cs.needs_approval("deploy")
def deploy(env):
    return f"deployed {env}"

def main():
    for env in ("staging", "prod"):
        try:
            print(deploy(env), flush=True)
        except cs.ApprovalDenied as exc:
            print("refused:", exc, flush=True)
"""


def test_serve_runs_an_agent_with_the_console_answering(tmp_path):
    """`capscope serve --policy FILE --app MODULE:CALLABLE`: the agent's
    asks wait in the web console (link and token on stderr); approve one,
    deny the other, and the agent sees exactly those answers."""
    import re
    import sys
    import time

    import httpx

    (tmp_path / "agentmod.py").write_text(AGENT_MODULE)
    (tmp_path / "p.toml").write_text('[execution]\ntools = ["*"]\n')
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "capscope",
            "serve",
            "--policy",
            "p.toml",
            "--app",
            "agentmod:main",
            "--port",
            "0",
        ],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stderr.readline()
        match = re.search(r"(http://127\.0\.0\.1:\d+/)#token=(\S+)", line)
        assert match, line
        url, token = match.groups()
        bearer = {"Authorization": f"Bearer {token}"}
        answers = {"staging": "once", "prod": "deny"}
        deadline = time.monotonic() + 30
        while answers and time.monotonic() < deadline:
            try:
                listed = httpx.get(url + "api/pending", headers=bearer).json()
            except httpx.ConnectError:
                time.sleep(0.05)
                continue
            for item in listed:
                env = dict(map(tuple, item["arguments"]))["env"]
                response = httpx.post(
                    f"{url}api/requests/{item['id']}",
                    json={"answer": answers.pop(env)},
                    headers=bearer,
                )
                assert response.status_code == 200
            time.sleep(0.05)
        out, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert answers == {}
    assert out.splitlines()[0] == "deployed staging"
    assert out.splitlines()[1].startswith("refused:")


def test_serve_needs_module_colon_callable(cli, tmp_path):
    (tmp_path / "p.toml").write_text('[execution]\ntools = ["*"]\n')
    result = cli("serve", "--policy", "p.toml", "--app", "nocolon")
    assert 4 == result.returncode
    assert "MODULE:CALLABLE" in result.stderr
