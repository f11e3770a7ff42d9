"""
Every Python block of every docs page runs, as written.

How a page's blocks are run (write docs to these rules):

- The ```python blocks of a page run in order, in one namespace (a page is
  a tutorial: later blocks use what earlier ones defined), in a fresh
  temporary directory.
- Expected output: the block's *trailing* lines that start with `# `
  (at column 0) are what it must print, line by line. Comments anywhere
  else are just comments. A block without trailing `# ` lines may print
  anything.
- A block that is meant to fail starts with `# raises: ToolDenied` (the
  name of the exception class or of one of its bases); it must raise that,
  and the page goes on.
- A block that cannot run in tests starts with `# not run: <reason>`
  (the marker is visible on the page); each is reported as a skip with
  its reason, so `pytest -ra` counts and lists them.
- A block right after an `<!-- file: PATH -->` comment (any language) is
  written to PATH (relative to the page's directory) instead of run: the
  files a page's commands read.
- ```console blocks run too, in page order with the Python blocks and in
  the same directory: their `$ ` lines as one bash script (the installed
  `capscope` first on the PATH), whose output, stdout and stderr merged,
  must be the block's other lines. A line `...` stands for any number of
  lines, and `...` within a line for any text.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path

import pytest

DOCS = Path(__file__).parent.parent / "docs"
_FENCE = re.compile(
    r"(?:^<!-- file: (?P<file>\S+) -->\n)?^```(?P<lang>[\w-]*)\n(?P<code>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
_RAISES = re.compile(r"^# raises: (\w+)\s*$")
_NOT_RUN = re.compile(r"^# not run: (.+)$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    code: str
    kind: str = "python"  # or "console", or "file"
    file: str | None = None  # where a "file" block is written

    @property
    def first(self) -> str:
        return self.code.splitlines()[0] if self.code else ""

    @property
    def raises(self) -> str | None:
        match = _RAISES.match(self.first)
        return match.group(1) if match else None

    @property
    def not_run(self) -> str | None:
        match = _NOT_RUN.match(self.first)
        return match.group(1) if match else None

    def expected_output(self) -> list[str] | None:
        lines = self.code.rstrip("\n").splitlines()
        trailing: list[str] = []
        for line in reversed(lines):
            if not line.startswith("# ") or line is lines[0]:
                break
            trailing.append(line[2:])
        return list(reversed(trailing)) or None


def _blocks(page: Path, kinds: tuple[str, ...] = ("python",)) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    blocks = []
    for match in _FENCE.finditer(text):
        kind = "file" if match["file"] else match["lang"]
        if kind not in kinds:
            continue
        fence = match.start("lang") - 3
        blocks.append(
            Block(
                page.relative_to(DOCS).as_posix(),
                text.count("\n", 0, fence) + 2,
                match["code"],
                kind,
                match["file"],
            )
        )
    return blocks


def _every_block(page: Path) -> list[Block]:
    return _blocks(page, ("python", "console", "file"))


def _matches(expected: list[str], actual: list[str]) -> bool:
    """*actual* against *expected*: `...` alone is any lines, within a
    line any text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head.strip() == "...":
        return any(_matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(map(re.escape, head.split("...")))
    return bool(re.fullmatch(pattern, actual[0])) and _matches(
        rest, actual[1:]
    )


def _run_console(block: Block, cwd: Path) -> None:
    import os
    import subprocess
    import sys

    lines = block.code.rstrip("\n").splitlines()
    script = "\n".join(line[2:] for line in lines if line.startswith("$ "))
    expected = [line.rstrip() for line in lines if not line.startswith("$ ")]
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env['PATH']}"
    env["COLUMNS"] = "80"
    done = subprocess.run(
        ["bash", "-c", script],
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
        check=False,
    )
    actual = [line.rstrip() for line in done.stdout.rstrip("\n").splitlines()]
    where = f"{block.page}:{block.line}"
    assert _matches(expected, actual), (
        f"{where}: the commands printed\n" + "\n".join(actual)
    )


PAGES = sorted(DOCS.rglob("*.md"))
ALL = [block for page in PAGES for block in _blocks(page)]
NOT_RUN = [b for b in ALL if b.not_run is not None]


def _run(block: Block, namespace: dict[str, object]) -> None:
    where = f"{block.page}:{block.line}"
    out = io.StringIO()
    code = compile(block.code, where, "exec", dont_inherit=True)
    raised: BaseException | None = None
    with contextlib.redirect_stdout(out):
        try:
            exec(code, namespace)  # noqa: S102 - our own docs
        except Exception as exc:  # checked just below
            raised = exc
    if block.raises is None:
        if raised is not None:
            msg = f"{where}: the block raised {raised!r}"
            raise AssertionError(msg) from raised
    else:
        names = (
            {cls.__name__ for cls in type(raised).__mro__} if raised else set()
        )
        assert block.raises in names, (
            f"{where}: expected {block.raises}, got {raised!r}"
        )
    expected = block.expected_output()
    if expected is not None:
        assert expected == out.getvalue().splitlines(), where


@pytest.mark.parametrize(
    "page",
    [
        p
        for p in PAGES
        if any(
            b.kind == "console" or b.not_run is None for b in _every_block(p)
        )
    ],
    ids=lambda p: p.relative_to(DOCS).as_posix(),
)
def test_page_examples_run(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": f"docs_{page.stem}"}
    for block in _every_block(page):
        if block.kind == "file":
            path = tmp_path / str(block.file)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(block.code, encoding="utf-8")
        elif block.kind == "console":
            _run_console(block, tmp_path)
        elif block.not_run is None:
            _run(block, namespace)


def test_the_console_matcher() -> None:
    """`...` lines and `...` within a line, and a mismatch."""
    assert _matches(["a", "...", "z"], ["a", "b", "c", "z"])
    assert _matches(["a", "...", "z"], ["a", "z"])
    assert _matches(["run demo-..."], ["run demo-1234"])
    assert not _matches(["a", "z"], ["a", "b", "z"])
    assert not _matches(["a"], ["a", "b"])
    assert not _matches(["x...y"], ["xz"])


@pytest.mark.parametrize(
    "block", NOT_RUN, ids=[f"{b.page}:{b.line}" for b in NOT_RUN]
)
def test_blocks_not_run_are_listed(block: Block) -> None:
    assert block.not_run.strip(), f"{block.page}:{block.line}: give a reason"
    pytest.skip(f"{block.page}:{block.line}: not run: {block.not_run}")


def test_the_docs_have_examples() -> None:
    assert len(ALL) >= 10


def test_trailing_output_rule() -> None:
    """The rule itself: only trailing `# ` lines are output."""
    block = Block("x.md", 1, "# a comment\nprint(1)\n# 1\n")
    assert ["1"] == block.expected_output()
    assert Block("x.md", 1, "print(1)\n").expected_output() is None
    assert "ToolDenied" == Block("x.md", 1, "# raises: ToolDenied\nx\n").raises


def test_performance_page_is_generated_whole_from_the_results(monkeypatch):
    """
    `docs/performance.md` is exactly what `benchmarks/run.py` renders from
    `benchmarks/results/latest.json` and its template: no figure on the
    page was written by hand, and none is stale.
    """
    benchmarks = Path(__file__).parent.parent / "benchmarks"
    monkeypatch.syspath_prepend(str(benchmarks))
    import run  # benchmarks/run.py

    data = json.loads((benchmarks / "results" / "latest.json").read_text())
    page = (DOCS / "performance.md").read_text(encoding="utf-8")
    assert page == run.render_page(data, run.doc_plot())
    assert data["environment"]["processor"] in page  # the CPU model


def _api_members() -> set[str]:
    """Every name the API pages document (`:::` targets and members)."""
    names: set[str] = set()
    for page in DOCS.glob("api*.md"):
        text = page.read_text(encoding="utf-8")
        names.update(
            re.findall(r"^::: capscope\.(?:\w+\.)*?(\w+)$", text, re.MULTILINE)
        )
        names.update(re.findall(r"^ {8}- (\w+)$", text, re.MULTILINE))
    names.update(p.stem for p in DOCS.glob("exceptions.md"))
    return names


def test_every_public_name_has_an_api_entry() -> None:
    """Each name in `capscope.__all__` is documented on an API page
    (the exceptions page documents the exception tree)."""
    import capscope as cs

    text = (DOCS / "exceptions.md").read_text(encoding="utf-8")
    members = _api_members() | set(
        re.findall(r"^ {8}- (\w+)$", text, re.MULTILINE)
    )
    modules = {
        "audit",
        "events",
        "lowlevel",
        "policies",
        "propagation",
        "stacks",
    }
    missing = [
        name
        for name in cs.__all__
        if name not in members
        and name not in modules
        and f"capscope.{name}" not in text
    ]
    assert missing == []


@pytest.fixture(scope="module")
def built_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import subprocess
    import sys

    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "-q", "-d", str(site)],
        cwd=DOCS.parent,
        check=True,
        env={**__import__("os").environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    return site


def test_api_pages_render_examples_as_code(built_site: Path) -> None:
    """Docstring examples are a section with code, never the nested
    blockquotes an unrecognised `Example:` heading turns into; and no
    private module path is shown as text on a public page."""
    pages = sorted(built_site.glob("api*/index.html"))
    pages.append(built_site / "exceptions" / "index.html")
    assert len(pages) > 5
    for page in pages:
        html = page.read_text(encoding="utf-8")
        assert "<blockquote>" not in html, page
        assert "Example:</p>" not in html, page
        text = re.sub(r"<[^>]+>", " ", html)
        private = re.findall(r"capscope(?:\.[a-z]\w*)*\._[a-z]\w*", text)
        assert private == [], (page, sorted(set(private)))


def test_the_site_needs_no_other_host(built_site: Path) -> None:
    """Scripts, styles and fonts are served by the site itself, so it works
    offline: Mermaid is vendored (Material would fetch it from a CDN when
    `window.mermaid` is missing) and fonts are the system's."""
    pages = sorted(built_site.rglob("*.html"))
    diagrams = 0
    for page in pages:
        html = page.read_text(encoding="utf-8")
        loads = re.findall(
            r"<(?:script|link)\b[^>]*?(?:src|href)=\"([^\"]+)\"", html
        )
        remote = [
            url
            for url in loads
            if re.match(r"(?:https?:)?//", url)
            and not url.startswith("http://127.0.0.1")
        ]
        assert remote == [], (page, remote)
        if 'class="mermaid"' in html:
            diagrams += 1
            assert "assets/vendor/mermaid.min.js" in html, page
    assert diagrams > 0
    assert (
        built_site / "assets" / "vendor" / "mermaid.min.js"
    ).stat().st_size > 10**6
    assert "fonts.googleapis" not in (built_site / "index.html").read_text()


def test_every_document_referenced_is_in_the_repository() -> None:
    """References in code, tests, docs and configuration name documents
    inside the repository (`docs/*.md`), never design notes kept elsewhere."""
    root = DOCS.parent
    files = [
        p
        for pattern in (
            "capscope/**/*.py",
            "tests/**/*.py",
            "benchmarks/*.py",
            "docs/**/*.md",
            "changelog.d/*.md",
            "*.md",
            "*.toml",
            "*.yml",
        )
        for p in root.glob(pattern)
    ]
    dangling = []
    for path in files:
        text = path.read_text(encoding="utf-8", errors="replace")
        dangling += [
            f"{path.relative_to(root)}: {name}"
            for name in re.findall(r"\b(?:DESIGN|STYLE)\.md\b", text)
        ]
        dangling += [
            f"{path.relative_to(root)}: docs/{name}"
            for name in re.findall(r"(?<![\w/])docs/([\w/-]+\.md)\b", text)
            if not (DOCS / name).exists()
        ]
    assert dangling == []


def test_the_reference_pages_are_generated_whole(built_site: Path) -> None:
    """The CLI reference has every subcommand with its every option, and
    the policy-file reference every table and key of the shipped schema:
    both generated, so neither can drift."""
    import argparse

    from capscope.cli._main import _parser

    cli = (built_site / "reference-cli" / "index.html").read_text()
    parser = _parser()
    subparsers = next(
        a for a in parser._actions if isinstance(a, argparse._SubParsersAction)
    )
    for name, sub in subparsers.choices.items():
        assert f"capscope {name}" in cli, name
        for action in sub._actions:
            for option in action.option_strings:
                assert option in cli, (name, option)
    policy = (built_site / "reference-policy-file" / "index.html").read_text()
    schema = json.loads(
        (DOCS.parent / "capscope" / "policy.schema.json").read_text()
    )
    for name, definition in schema["$defs"].items():
        assert f'id="{name.lower()}"' in policy, name
        for key in definition.get("properties", {}):
            assert f"<code>{key}</code>" in policy, (name, key)
