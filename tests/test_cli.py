"""
The `capscope` command, run for real in a subprocess, both as
`python -m capscope` and as the installed console script.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

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
        assert "Exit codes: 0 ok, 1 a problem was found, 2 usage error." in (
            " ".join(result.stdout.split())
        )

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
