"""`python -m capscope` is the `capscope` command."""

import sys

from .cli._main import main

sys.exit(main())
