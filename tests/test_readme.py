"""The README's Python examples run, and print what they say they print."""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

README = Path(__file__).parent.parent / "README.md"


def test_python_blocks_run_as_written():
    """Every ```python block runs; a trailing `# output` comment matches."""
    blocks = re.findall(
        r"^```python\n(.*?)^```$", README.read_text(), re.MULTILINE | re.DOTALL
    )
    assert blocks, "the README has no Python example"
    for block in blocks:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            exec(compile(block, str(README), "exec"), {})  # noqa: S102 - our README
        expected = [
            line[2:] for line in block.splitlines() if line.startswith("# ")
        ]
        assert expected == out.getvalue().splitlines()
