"""
The `capscope` command (`python -m capscope`): its subcommands and their
helpers. Nothing in the library imports this package; it imports the
library.

Examples:
    >>> from capscope.cli import main
    >>> main(["stacks", "--json"]) == 0  # doctest: +ELLIPSIS
    [...
    True
"""

from ._main import main

__all__ = ["main"]
