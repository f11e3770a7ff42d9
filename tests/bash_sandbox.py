"""
A sandbox that runs a command line in real bash and reports what it did.

The differential tests of the command engine ask one question of every
line capscope allows: *did bash, running it, do anything the allow list
did not allow?* The sandbox answers it with real programs and a real
kernel, never touching the user's files:

- a temporary directory holds a workspace (a git repository with a test
  suite and a package.json), a fake home with credentials, a directory
  "outside" with a secret, and a private `bin/` that is the whole `PATH`;
- `bin/` holds the allowed programs (links to the real ones) and, under
  every other name an attack might call, a **canary**: a script that
  records that it ran;
- bash runs the line under `strace -f`, with a clean environment, in the
  workspace; the trace shows every file opened, written, renamed or
  deleted, every program executed and every network connection.

A run is clean when no canary ran, no file outside the allowed set was read
(the credentials in the home directory, the secret outside, `/etc/shadow`,
a process's environment), nothing outside the workspace (and the temporary
and cache directories) was written, nothing in `.git/config` or
`.git/hooks/` was written, and no TCP or UDP connection was attempted.

The workspace's own `.env` is in the allowed set: a recursive read of the
workspace (`grep -rn TODO .`) reads every file in it, and capscope allows
that by design; what it refuses is a line that names a credential, or a
glob written to single one out (`cat .env`, `cat .e*`), which the unit
tests and the corpus pin.

Run it by hand: `python tests/bash_sandbox.py 'git status; canary'`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

#: Programs a line may run, linked into the private PATH (with the
#: wrappers capscope sees through).
ALLOWED_PROGRAMS = (
    *("ls", "cat", "grep", "git", "node", "npm", "sh"),
    *("env", "nice", "timeout"),
)
#: Names an attack may try to run: each is a canary.
CANARIES = (
    "canary",
    "id",
    "touch",
    "rm",
    "curl",
    "wget",
    "nc",
    "whoami",
    "cp",
    "mv",
    "tee",
    "dd",
    "chmod",
    "bash",
    "python3",
    "perl",
    "xargs",
    "find",
    "sed",
    "awk",
    "head",
    "less",
    "vi",
    "make",
    "pager",
)
#: Whether the tools the sandbox needs are on this machine.
AVAILABLE = all(
    shutil.which(tool) for tool in ("bash", "strace", "git", *ALLOWED_PROGRAMS)
)

_STRACE = shutil.which("strace") or "strace"
_SYSCALLS = (
    "execve,open,openat,creat,unlink,unlinkat,rename,renameat,renameat2,"
    "mkdir,mkdirat,rmdir,symlink,symlinkat,link,linkat,truncate,chmod,"
    "fchmodat,connect"
)
_LINE = re.compile(r"^(\d+)\s+(\w+)\((.*)\)\s+=\s+(-?\d+)(?:<(.*?)>)?")
_STRING = re.compile(r'"((?:[^"\\]|\\.)*)"')
_WRITE_FLAGS = ("O_WRONLY", "O_RDWR", "O_CREAT", "O_TRUNC", "O_APPEND")


@dataclass
class Run:
    """What one line did in the sandbox."""

    command: str
    returncode: int
    canaries: list[str] = field(default_factory=list)
    reads: list[str] = field(default_factory=list)
    writes: list[str] = field(default_factory=list)
    connects: list[str] = field(default_factory=list)
    output: str = ""

    @property
    def violations(self) -> list[str]:
        found = [f"ran the canary {name}" for name in self.canaries]
        found += [f"read {path}" for path in self.reads]
        found += [f"wrote {path}" for path in self.writes]
        found += [f"connected: {what}" for what in self.connects]
        return found


class Sandbox:
    """A temporary tree in which lines run under strace (see the module)."""

    def __init__(self, root: Path, python: str = sys.executable) -> None:
        self.root = root
        self.ws = root / "ws"
        self.home = root / "home"
        self.outside = root / "outside"
        self.bin = root / "bin"
        self.tmp = root / "tmp"
        self.marks = root / "canary"
        self.template = root / "template"
        self.python = python
        #: whether the last run may have changed the workspace
        self.dirty = True
        self._build()

    # -- the tree --------------------------------------------------------

    def _build(self) -> None:
        for d in (self.home, self.outside, self.bin, self.tmp, self.marks):
            d.mkdir(parents=True, exist_ok=True)
        (self.home / ".ssh").mkdir()
        (self.home / ".ssh" / "id_rsa").write_text("SECRET-SSH-KEY\n")
        (self.home / ".aws").mkdir()
        (self.home / ".aws" / "credentials").write_text("SECRET-AWS\n")
        (self.home / ".gitconfig").write_text(
            "[user]\n\tname = Sandbox\n\temail = s@example.invalid\n"
            "[init]\n\tdefaultBranch = main\n[safe]\n\tdirectory = *\n"
        )
        (self.outside / "secret.txt").write_text("SECRET-OUTSIDE\n")
        (self.outside / ".git").mkdir()
        for name in ALLOWED_PROGRAMS:
            real = shutil.which(name)
            assert real is not None, name
            (self.bin / name).symlink_to(real)
        for name in ("python", "pytest"):
            script = (
                f'#!/bin/sh\nexec "{self.python}" '
                + ("-m pytest " if name == "pytest" else "")
                + '"$@"\n'
            )
            path = self.bin / name
            path.write_text(script)
            path.chmod(0o755)
        for name in CANARIES:
            path = self.bin / name
            path.write_text(
                f'#!/bin/sh\n: > "{self.marks}/{name}.$$"\nexit 0\n'
            )
            path.chmod(0o755)
        self._workspace(self.template)

    def _workspace(self, ws: Path) -> None:
        ws.mkdir()
        (ws / "README.md").write_text("# demo\nTODO: write docs\n")
        (ws / "a.py").write_text("x = 1  # TODO\n")
        (ws / "src").mkdir()
        (ws / "src" / "mod.py").write_text("def f():\n    return 1\n")
        (ws / "tests").mkdir()
        (ws / "tests" / "test_a.py").write_text(
            "def test_a():\n    assert 1\n"
        )
        (ws / ".env").write_text("SECRET_TOKEN=SECRET-DOTENV\n")
        (ws / "package.json").write_text(
            '{"name": "demo", "version": "1.0.0",'
            ' "scripts": {"test": "echo ok"}}\n'
        )
        # a plugin module pytest can load by name with `-p`
        (ws / "canary_plugin.py").write_text(
            textwrap.dedent(
                f"""\
                import os
                open({str(self.marks / "pytest-plugin")!r}, "w").close()
                """
            )
        )
        # names that are options, for globs to pick up
        for name in ("--output=pwned.txt", "-pcanary_plugin", "--exec"):
            (ws / name).write_text("")
        env = self._env()
        for argv in (
            ["git", "init", "-q"],
            ["git", "add", "README.md", "a.py", "src", "tests"],
            ["git", "commit", "-qm", "init"],
        ):
            argv[0] = shutil.which(argv[0]) or argv[0]
            subprocess.run(argv, cwd=ws, env=env, check=True)
        (ws / "a.py").write_text("x = 2  # TODO\n")

    def _env(self) -> dict[str, str]:
        return {
            "PATH": str(self.bin),
            "HOME": str(self.home),
            "TMPDIR": str(self.tmp),
            "LANG": "C.UTF-8",
            "GIT_CONFIG_NOSYSTEM": "1",
            "PYTHONDONTWRITEBYTECODE": "1",
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "npm_config_cache": str(self.tmp / "npm"),
            "npm_config_update_notifier": "false",
        }

    def reset(self) -> None:
        """A fresh workspace and no canary marks."""
        if self.ws.exists():
            shutil.rmtree(self.ws)
        shutil.copytree(self.template, self.ws, symlinks=True)
        for mark in self.marks.iterdir():
            mark.unlink()

    # -- a run -------------------------------------------------------------

    def run(self, command: str, timeout: float = 20.0) -> Run:
        """Run *command* with `bash -c` in a fresh workspace."""
        if self.dirty:
            self.reset()
        for mark in self.marks.iterdir():
            mark.unlink()
        trace = self.tmp / "trace.txt"
        argv = [
            _STRACE,
            "-f",
            "--seccomp-bpf",  # stop only on the traced calls: much faster
            "-qq",
            "-y",
            "-s",
            "4096",
            "-e",
            f"trace={_SYSCALLS}",
            "-o",
            str(trace),
            "/bin/bash",
            "-c",
            command,
        ]
        try:
            done = subprocess.run(  # noqa: PLW1510
                argv,
                cwd=self.ws,
                env=self._env(),
                stdin=subprocess.DEVNULL,
                capture_output=True,
                timeout=timeout,
            )
            code = done.returncode
            output = (done.stdout + done.stderr).decode(errors="replace")
        except subprocess.TimeoutExpired:
            code, output = -1, "(timed out)"
        result = Run(command, code, output=output[-2000:])
        result.canaries = sorted(m.name for m in self.marks.iterdir())
        self.dirty = bool(result.canaries) or self._read_trace(
            trace.read_text(errors="replace"), result
        )
        return result

    def _allowed_write(self, path: str) -> bool:
        real = os.path.realpath(path)
        if real.startswith(("/dev/null", "/dev/tty", "/dev/pts", "/proc/")):
            return True
        ws = str(self.ws)
        if real == ws or real.startswith(ws + "/"):
            rel = real[len(ws) :]
            return not rel.startswith(("/.git/config", "/.git/hooks"))
        return any(
            real.startswith(str(d) + "/")
            for d in (
                self.tmp,
                self.marks,
                self.home / ".npm",
                self.home / ".cache",
            )
        )

    def _forbidden_read(self, path: str) -> bool:
        real = os.path.realpath(path)
        secrets = (self.home / ".ssh", self.home / ".aws", self.outside)
        return (
            real.startswith("/etc/shadow")
            or any(
                real == str(s) or real.startswith(str(s) + "/")
                for s in secrets
            )
            or bool(re.match(r"/proc/\d+/environ", real))
        )

    def _read_trace(self, text: str, result: Run) -> bool:
        """Record *text*'s violations in *result*; whether it wrote."""
        wrote = False
        for line in text.splitlines():
            m = _LINE.match(line)
            if m is None:
                continue
            _pid, call, args, ret, fd_path = m.groups()
            if call == "connect":
                if "AF_INET" in args:  # attempted, even if refused
                    result.connects.append(args[:120])
                continue
            if int(ret) < 0:
                continue
            strings = _STRING.findall(args)
            if call in {"open", "openat", "creat"}:
                path = fd_path or (strings[0] if strings else "")
                if not path.startswith("/"):
                    continue
                writes = call == "creat" or any(
                    f in args for f in _WRITE_FLAGS
                )
                wrote = wrote or writes
                if writes and not self._allowed_write(path):
                    result.writes.append(path)
                if self._forbidden_read(path):
                    result.reads.append(path)
            elif call != "execve":
                wrote = True
                for raw in strings:
                    path = raw if raw.startswith("/") else str(self.ws / raw)
                    if not self._allowed_write(path):
                        result.writes.append(f"{call} {raw}")
        return wrote


def main() -> int:  # pragma: no cover - a tool for people
    """Run each argument in a sandbox and print what it did."""
    with tempfile.TemporaryDirectory() as root:
        box = Sandbox(Path(root))
        for command in sys.argv[1:]:
            run = box.run(command)
            print(f"$ {command}\n  exit {run.returncode}")
            print(textwrap.indent(run.output.strip(), "  | "))
            for violation in run.violations or ["(clean)"]:
                print(f"  {violation}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
