"""
mkdocs hooks (`hooks:` in mkdocs.yml).

The changelog page shows the unreleased changes as towncrier renders them
from the fragments in `changelog.d/` (`towncrier build --draft`), in place
of the page's `<!-- unreleased -->` marker: nothing is listed by hand.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent
MARKER = "<!-- unreleased -->"


def unreleased() -> str:
    """The unreleased section, as towncrier would write it."""
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "towncrier",
            "build",
            "--draft",
            "--version",
            "Unreleased",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    # The draft's own title carries today's date: not a release's.
    body = out[out.index("## ") :].partition("\n")[2]
    return "## Unreleased\n" + body.rstrip() + "\n"


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    """The changelog page with its unreleased section filled in."""
    if page.file.src_uri != "changelog.md":
        return markdown
    if MARKER not in markdown:
        msg = f"docs/changelog.md has no {MARKER} marker"
        raise ValueError(msg)
    return markdown.replace(MARKER, unreleased())
