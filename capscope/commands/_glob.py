"""
Pathname patterns, as bash 5.2 expands them with its default options.

A word such as `*.py` is not one string: bash replaces it with the names it
matches (or leaves it as it is when nothing does). The command policy can
let one through only when *no* name it could become is dangerous, so this
module answers questions about every string a pattern matches at once:

- `may_start_with_dash`: could it become an option (a file named `-rf`)?
- `may_match`: could it name a path that a sensitive pattern matches? (The
  languages of the two patterns intersect: a product automaton, with bash's
  rules that `*`, `?` and `[...]` never match `/`, nor a `.` that starts a
  name.)
- `literal_directory` / `may_climb`: where does it start, and can it leave
  that directory (`*/../x`)?

The options modelled are bash 5.2's defaults in a non-interactive shell:
`globskipdots` on; `dotglob`, `nullglob`, `failglob`, `nocaseglob`,
`extglob` and `globstar` off.
"""

from __future__ import annotations

import fnmatch
import functools
import posixpath
import re
from collections.abc import Iterable, Sequence

__all__ = [
    "SensitiveMatcher",
    "bracket_end",
    "literal_directory",
    "may_climb",
    "may_match",
    "may_start_with_dash",
]

# Items of a pattern: a literal character, or one of these.
_STAR = "*"  # any run of characters (no `/`; for bash, no leading `.`)
_ONE = "?"  # any one character (the same exceptions)
_Item = str  # a literal is ("=" + char); the two above are themselves


def bracket_end(text: str, start: int) -> int:
    """The index of the `]` closing the bracket expression at *start*, or
    -1 (`[]x]` and `[!]x]` hold a `]`; `[[:alpha:]]` is one class).
    """
    i = start + 1
    if i < len(text) and text[i] in "!^":
        i += 1
    if i < len(text) and text[i] == "]":
        i += 1
    while i < len(text):
        if text.startswith("[:", i):
            end = text.find(":]", i + 2)
            if end >= 0:
                i = end + 2
                continue
        if text[i] == "]":
            return i
        i += 1
    return -1


@functools.lru_cache(maxsize=1024)
def _items(pattern: str, *, bash: bool) -> tuple[_Item, ...]:
    """*pattern* as items; a bracket expression is any one character."""
    out: list[_Item] = []
    i = 0
    n = len(pattern)
    while i < n:
        c = pattern[i]
        if c == "*":
            if not out or out[-1] != _STAR:
                out.append(_STAR)
        elif c == "?":
            out.append(_ONE)
        elif c == "[":
            end = bracket_end(pattern, i)
            if end < 0:
                out.append("=[")
            else:
                body = pattern[i + 1 : end]
                if len(body) == 1 and body not in "!^":
                    out.append("=" + body)  # `[*]`: an escaped character
                else:
                    out.append(_ONE)
                i = end
        elif c == "\\" and not bash and i + 1 < n:
            out.append("=" + pattern[i + 1])
            i += 1
        else:
            out.append("=" + c)
        i += 1
    return tuple(out)


def may_start_with_dash(pattern: str) -> bool:
    """
    Whether a name *pattern* matches could start with `-`.

    Examples:
        >>> from capscope.commands._glob import may_start_with_dash
        >>> may_start_with_dash("*.py"), may_start_with_dash("src/*"), may_start_with_dash("-*")
        (True, False, True)
    """
    items = _items(pattern, bash=True)
    return not items or items[0] in {_STAR, _ONE, "=-"}


def literal_directory(pattern: str) -> str:
    """
    The directory a pattern starts from: its components before the first
    one that holds a wildcard (`""` for the working directory).

    Examples:
        >>> from capscope.commands._glob import literal_directory
        >>> literal_directory("src/*/x.py"), literal_directory("*.py"), literal_directory("/etc/*")
        ('src', '', '/etc')
    """
    parts = pattern.split("/")
    fixed: list[str] = []
    for part in parts[:-1]:
        if any(item in {_STAR, _ONE} for item in _items(part, bash=True)):
            break
        fixed.append("".join(i[1:] for i in _items(part, bash=True)))
    else:
        return "/".join(fixed) if len(parts) > 1 else ""
    return "/".join(fixed)


def may_climb(pattern: str) -> bool:
    """
    Whether the names *pattern* matches can leave its literal directory:
    a `..` after a wildcard, or a wildcard component that could be `..`
    where it is followed by more components.

    Examples:
        >>> from capscope.commands._glob import may_climb
        >>> may_climb("*/../x"), may_climb("src/*.py"), may_climb("../*")
        (True, False, False)
    """
    parts = pattern.split("/")
    seen_wild = False
    for index, part in enumerate(parts):
        items = _items(part, bash=True)
        wild = any(item in {_STAR, _ONE} for item in items)
        if seen_wild and part == "..":
            return True
        if wild and items[:1] == ("=.",) and index < len(parts) - 1:
            return True  # `.*/` could be `../` where dots are not skipped
        seen_wild = seen_wild or wild
    return False


def _meet(
    glob_item: _Item, pattern_item: _Item, *, fresh: bool, aimed: bool
) -> str | None:
    """A character both items accept, or `None` (`""`: some ordinary one).

    With *aimed*, a literal of the glob may only meet a literal of the
    pattern: the glob must spell what the pattern spells, not merely leave
    room for it.
    """
    g_wild = glob_item in {_STAR, _ONE}
    p_wild = pattern_item in {_STAR, _ONE}
    if g_wild and p_wild:
        return ""
    if g_wild:
        c = pattern_item[1]
        return None if c == "/" or (fresh and c == ".") else c
    c = glob_item[1]
    if p_wild:
        return None if aimed else c
    return c if c.lower() == pattern_item[1].lower() else None


def _intersects(
    glob: Sequence[_Item], pattern: Sequence[_Item], *, aimed: bool = False
) -> bool:
    """Whether some string matches the bash *glob* and the fnmatch *pattern*."""
    ng, npat = len(glob), len(pattern)
    stack = [(0, 0, True)]
    seen: set[tuple[int, int, bool]] = set()
    while stack:
        state = stack.pop()
        if state in seen:
            continue
        seen.add(state)
        i, j, fresh = state
        g = glob[i] if i < ng else None
        p = pattern[j] if j < npat else None
        if g is None and p is None:
            return True
        if g == _STAR:
            stack.append((i + 1, j, fresh))
        if p == _STAR:
            stack.append((i, j + 1, fresh))
        if g is None or p is None:
            continue
        next_i = i if g == _STAR else i + 1
        next_j = j if p == _STAR else j + 1
        c = _meet(g, p, fresh=fresh, aimed=aimed)
        if c is not None:
            stack.append((next_i, next_j, c == "/"))
    return False


def _literal_tail(items: Sequence[_Item]) -> str:
    tail: list[str] = []
    for item in reversed(items):
        if item in {_STAR, _ONE}:
            break
        tail.append(item[1])
    return "".join(reversed(tail)).lower()


class SensitiveMatcher:
    """
    The sensitive-path patterns, compiled: matched case-insensitively
    against an absolute path and against its last component, as the
    approval policy matches them.

    Examples:
        >>> from capscope.commands._glob import SensitiveMatcher
        >>> m = SensitiveMatcher([".env", "*.pem", "*/.ssh/*"])
        >>> m.matches("/ws/.env"), m.matches("/home/u/.ssh/id_rsa"), m.matches("/ws/x.py")
        (True, True, False)
        >>> m.may_match("/ws/*.pem"), m.may_match("/ws/*.py"), m.may_match("/ws/.e*")
        (True, False, True)
        >>> m.may_match("/ws/*"), m.may_match("/home/u/.ssh/*")
        (False, True)
        >>> SensitiveMatcher(["id_rsa.*"]).may_match("/ws/*.txt")
        False
    """

    def __init__(self, patterns: Iterable[str]) -> None:
        patterns = tuple(p.lower() for p in patterns)
        self.names = tuple(p for p in patterns if "/" not in p)
        self.paths = tuple(p for p in patterns if "/" in p)
        # Most name patterns are a name, `*.suffix` or `prefix*`: string
        # methods test those; a regular expression only the rest.
        self._exact = frozenset(p for p in self.names if not _wild(p))
        self._suffixes = tuple(
            p[1:] for p in self.names if p.startswith("*") and not _wild(p[1:])
        )
        self._prefixes = tuple(
            p[:-1] for p in self.names if p.endswith("*") and not _wild(p[:-1])
        )
        rest = [
            p
            for p in self.names
            if p not in self._exact
            and p[1:] not in self._suffixes
            and p[:-1] not in self._prefixes
        ]
        self._name_re = _union(rest)
        # A path pattern can only match a path holding its longest
        # literal piece: one search for all of them comes first.
        self._path_re = _union(self.paths)
        pieces = {max(re.split(r"[*?\[\]]", p), key=len) for p in self.paths}
        self._path_hint = re.compile(
            "|".join(re.escape(piece) for piece in sorted(pieces) if piece)
            or "(?!)"
        )
        self._name_items = [
            (_items(p, bash=False), _literal_tail(_items(p, bash=False)))
            for p in self.names
        ]
        self._path_items = [
            (_items(p, bash=False), _literal_tail(_items(p, bash=False)))
            for p in self.paths
        ]
        self.may_match = functools.lru_cache(maxsize=4096)(self._may_match)

    def matches(self, path: str) -> bool:
        """Whether the absolute *path* (or its last component) is sensitive."""
        low = path.lower()
        name = posixpath.basename(low.rstrip("/")) or low
        if (
            name in self._exact
            or name.endswith(self._suffixes)
            or name.startswith(self._prefixes)
            or self._name_re.match(name)
        ):
            return True
        return bool(self._path_hint.search(low) and self._path_re.match(low))

    def _may_match(self, pattern: str) -> bool:
        """Whether a path the absolute bash *pattern* expands to may be."""
        glob = _items(pattern, bash=True)
        last = _items(posixpath.basename(pattern), bash=True)
        # A last component of wildcards only (`*`, `??`) names every file
        # of its directory alike; one that spells part of a sensitive name
        # (`*.pem`, `id_*`, `.e*`) singles it out. `*.txt` does not single
        # out `id_rsa.*`: its literals meet only that pattern's wildcard.
        spells = any(item not in {_STAR, _ONE} for item in last)
        return (
            spells and _any_meets(last, self._name_items, aimed=True)
        ) or _any_meets(glob, self._path_items, aimed=False)


def _wild(pattern: str) -> bool:
    return any(c in pattern for c in "*?[")


def _union(patterns: Iterable[str]) -> re.Pattern[str]:
    translated = [fnmatch.translate(p) for p in patterns]
    return re.compile("|".join(translated) or "(?!)")


def _any_meets(
    glob: Sequence[_Item],
    candidates: Iterable[tuple[Sequence[_Item], str]],
    *,
    aimed: bool,
) -> bool:
    tail = _literal_tail(glob)
    for items, their_tail in candidates:
        short = min(len(tail), len(their_tail))
        if short and tail[-short:] != their_tail[-short:]:
            continue  # both end in literals that differ
        if _intersects(glob, items, aimed=aimed):
            return True
    return False


def may_match(pattern: str, sensitive: SensitiveMatcher) -> bool:
    """
    Whether the absolute bash *pattern* may expand to a sensitive path.

    Examples:
        >>> from capscope.commands._glob import SensitiveMatcher, may_match
        >>> m = SensitiveMatcher(["id_rsa", "*/.aws/*"])
        >>> may_match("/home/u/.aws/*", m), may_match("/home/u/*/config", m)
        (True, False)
    """
    return sensitive.may_match(pattern)
