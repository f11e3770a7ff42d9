"""
The command feature: how a shell command line is judged.

A line is parsed into simple commands (`_parse`, with `_glob` for
pathname expansion and `_model` for the shapes passed between steps),
each normalised into the argv a policy matches (`_normalise`: wrappers,
interpreters and flags unwrapped), labelled by what it can do (`_label`,
reading the program knowledge kept as data in `_vocabulary`), and decided
by the engine (`_engine`: the catastrophic floor, then every command frame)
behind `capscope.check_command` and `capscope.guards_command`.

The public names live in `capscope` itself; this package holds the
machinery.

Examples:
    >>> import capscope as cs
    >>> cs.check_command("git status; rm -rf /").labels
    ('catastrophic',)
"""
