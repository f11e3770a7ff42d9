"""`python -m capscope` is the `capscope` command."""

import sys

from ._cli import main

sys.exit(main())
