"""Print the README's quick-start commands, one per line (for .ci/run)."""

import re
import sys
from pathlib import Path

text = Path(sys.argv[1]).read_text(encoding="utf-8")
section = re.search(
    r"^## Quick start\n(.*?)(?=^## )", text, re.MULTILINE | re.DOTALL
)
if section is None:
    sys.exit("README has no '## Quick start' section")
blocks = re.findall(
    r"^```bash\n(.*?)\n```$", section.group(1), re.MULTILINE | re.DOTALL
)
for block in blocks:
    if "\n" in block.strip():
        sys.exit(f"quick-start block is not a single line: {block!r}")
    print(block.strip())
