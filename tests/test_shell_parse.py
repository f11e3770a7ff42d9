"""
The shell parser (issues 5 and 13): exact words, and a reason for every
construct bash could still expand or evaluate.

The differential test against real bash (`test_command_differential.py`)
checks that exact words are the argv bash passes; these tests pin each
construct by hand.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscope.commands._model import (
    GlobWord,
    OpaqueWord,
    ParsedCommand,
    Redirect,
    SimpleCommand,
)
from capscope.commands._parse import (
    MAX_CHARS,
    MAX_COMMANDS,
    MAX_NESTING,
    MAX_WORDS,
    _Parser,
    _State,
    parse,
)


def argvs(text: str) -> list[tuple[str, ...]]:
    """The argv of every simple command of *text*, in order."""
    return [cmd.argv for cmd in parse(text).commands]


def only(text: str) -> SimpleCommand:
    """The single simple command of *text*."""
    parsed = parse(text)
    assert 1 == len(parsed.commands), parsed
    return parsed.commands[0]


def reasons(text: str) -> set[str]:
    """Every reason, of the line and of its commands."""
    parsed = parse(text)
    return set(parsed.unresolved).union(
        *(c.unresolved for c in parsed.commands)
    )


EXACT = [
    ("echo 'a; rm -rf /'", ("echo", "a; rm -rf /")),
    ("git log --format='%H; x'", ("git", "log", "--format=%H; x")),
    ("ls '$(x)'", ("ls", "$(x)")),
    ("ls '`x`'", ("ls", "`x`")),
    ("echo a\\;b", ("echo", "a;b")),
    ("echo a\\|b a\\&b a\\>b", ("echo", "a|b", "a&b", "a>b")),
    ("echo $'a\\nb\\tc'", ("echo", "a\nb\tc")),
    ("echo $'\\\\ \\''", ("echo", "\\ '")),
    ("echo a'b'\"c\"", ("echo", "abc")),
    ("echo 'a'\\''b'", ("echo", "a'b")),
    ('echo "it\'s"', ("echo", "it's")),
    ('echo "a\\"b\\$c\\`d\\\\e\\x"', ("echo", 'a"b$c`d\\e\\x')),
    ("\\rm -rf /", ("rm", "-rf", "/")),
    ('"rm" -rf /', ("rm", "-rf", "/")),
    ("r''m -rf /", ("rm", "-rf", "/")),
    ("echo '' \"\"", ("echo", "", "")),
    ("echo a#b", ("echo", "a#b")),
    ("echo \\# x", ("echo", "#", "x")),
    ("echo 'a\nb'", ("echo", "a\nb")),
    ("echo \t  spaced   out ", ("echo", "spaced", "out")),
    ('echo $ a$ "$"', ("echo", "$", "a$", "$")),
    ("echo {} a{b}c {x", ("echo", "{}", "a{b}c", "{x")),
    ("echo ~ ~/x HEAD~1", ("echo", "~", "~/x", "HEAD~1")),
    ("echo '~'/x", ("echo", "~/x")),
    ("echo \\$HOME '$HOME'", ("echo", "$HOME", "$HOME")),
    ("echo --a=~/y", ("echo", "--a=~/y")),
]


class TestExactWords:
    @pytest.mark.parametrize(("text", "expected"), EXACT)
    def test_quote_removal(self, text, expected):
        """Each line is one simple command whose argv has its quotes
        removed the way bash removes them, with no reason at all."""
        cmd = only(text)

        assert (expected, ()) == (cmd.argv, cmd.unresolved)
        assert () == parse(text).unresolved

    def test_exact_words_are_plain_strings(self):
        """An exact word is a `str`, neither opaque nor a glob."""
        for word in only("echo 'a' b\\ c").argv:
            assert type(word) is str

    def test_escaped_dollar_is_literal(self):
        """`\\$(x)` in double quotes is literal text, not a substitution."""
        assert ("echo", "$(x)") == only('echo "\\$(x)"').argv

    @pytest.mark.parametrize(
        "text",
        ["git status --short", "ls -la src", "  pytest -q tests  ", "a\tb"],
    )
    def test_plain_lines_read_alike(self, text):
        """The fast path for plain lines gives what the parser gives."""
        parser = _Parser(text, _State(), 0, posix=False)
        entries, _ = parser.parse_list(frozenset(), frozenset())

        assert [cmd.build() for cmd, _ in entries] == list(
            parse(text).commands
        )

    @pytest.mark.parametrize(
        "text", ["if", "time ls", "x=1 ls", "%1", "a[1]=2"]
    )
    def test_plain_looking_lines_that_are_not(self, text):
        """Reserved words, assignments and job specifications first are
        not plain: the parser reads them."""
        parsed = parse(text)

        assert parsed.unresolved or any(
            c.unresolved or c.assignments or c.argv[:1] == ("time",)
            for c in parsed.commands
        ), parsed


#: (line, the reason it must carry): every expansion and construct that
#: bash could still expand or evaluate.
NOT_EXACT = [
    ("echo $x", "parameter expansion"),
    ("echo ${x}", "parameter expansion"),
    ('echo "$x"', "parameter expansion"),
    ("echo ${x:-y}", "parameter expansion"),
    ("echo ${!x}", "parameter expansion"),
    ("echo ${x@P}", "parameter expansion"),
    ("echo ${a[x]}", "parameter expansion"),
    ("echo ${PWD:x}", "parameter expansion"),
    ("echo $1 $@ $? $#", "parameter expansion"),
    ("echo $/", "a dollar sign bash may expand"),
    ("echo $(id)", "command substitution"),
    ("echo `id`", "command substitution"),
    ('echo "`id`"', "command substitution"),
    ("diff <(ls a) b", "process substitution"),
    ("tee >(sh)", "process substitution"),
    ("echo $((x))", "arithmetic expansion"),
    ("echo $[x]", "arithmetic expansion"),
    ("echo {a,b}", "brace expansion"),
    ("echo x{1..3}", "brace expansion"),
    ("echo ~root", "tilde expansion"),
    ("echo ~+/x", "tilde expansion"),
    ("echo a=~", "tilde expansion in an assignment"),
    ("X=~ ls", "tilde expansion in an assignment"),
    ("echo x=~/y", "tilde expansion in an assignment"),
    ("echo $'\\x41'", "ANSI-C escape"),
    ("echo $'\\101'", "ANSI-C escape"),
    ("echo $'\\u00e9'", "ANSI-C escape"),
    ("echo $'\\cA'", "ANSI-C escape"),
    ('echo $"x y"', "locale translation"),
    ("echo a\\\nb", "line continuation"),
    ('echo "a\\\nb"', "line continuation"),
    ("cat <<EOF\n$x\nEOF", "here-document with expansions"),
    ("cat <<EOF\n\\$x\nEOF", "here-document with expansions"),
    ("if true; then ls; fi", "compound command"),
    ("while false; do ls; done", "compound command"),
    ("for f in a; do ls; done", "compound command"),
    ("case x in a) ls;; esac", "compound command"),
    ("[[ -f x ]]", "conditional expression"),
    ("(( x ))", "arithmetic command"),
    ("f() { ls; }", "function definition"),
    ("function f { ls; }", "function definition"),
    ("coproc ls", "coprocess"),
    ("a=(1 2)", "array assignment"),
    ("a[ 1 ]=2 ls", "array subscript"),
    ("exec {fd}>x", "named file descriptor"),
    ("%1", "job specification"),
    ("'%'", "job specification"),
    ("ls \\", "trailing backslash"),
    ("ls >*.txt", "glob in a redirection"),
    ("/bin/l? -la", "glob in program position"),
    ("echo 'a", "unbalanced quote"),
    ("echo $(ls", "unbalanced parenthesis"),
    ("echo ${x", "unbalanced brace"),
    ("echo `ls", "unbalanced backquote"),
    ("{ ls;", "unbalanced group"),
    ("ls |", "syntax error"),
    ("echo \\$(x)", "syntax error"),
    ("cat <<EOF", "unterminated here-document"),
    ("ls\x00; id", "NUL character"),
]


class TestNotExact:
    @pytest.mark.parametrize(("text", "reason"), NOT_EXACT)
    def test_reason(self, text, reason):
        """Each construct names its reason, on its command or the line."""
        assert reason in reasons(text)

    @pytest.mark.parametrize(
        ("text", "kept"),
        [
            ("rm -rf $HOME", "$HOME"),
            ('rm -rf "$HOME"/x', "$HOME/x"),
            ("echo $(pwd)", "$(pwd)"),
            ("echo ${x:-y}", "${x:-y}"),
        ],
    )
    def test_an_expansion_is_kept_as_written(self, text, kept):
        """An inexact word is an `OpaqueWord` that keeps its expansion."""
        word = parse(text).commands[-1].argv[-1]

        assert (kept, True) == (word, isinstance(word, OpaqueWord))

    @pytest.mark.parametrize(
        "text",
        [
            "echo \"${y:-$'\\x24(rm -rf /)'}\"",
            "echo ${y=$'\\x60rm -rf /\\x60'}",
            "echo $(( $(rm -rf /) ))",
            "echo ${x:-$(rm -rf /)}",
            "cat <<EOF\n$(rm -rf /)\nEOF",
            "echo `echo \\`rm -rf /\\``",
            "for f in $(rm -rf /); do :; done",
            "echo $'\\x24'(rm -rf /)",
        ],
    )
    def test_commands_hidden_inside_are_found(self, text):
        """Whatever a substitution would run is returned as a command,
        ANSI-C escapes inside a parameter expansion decoded."""
        assert ("rm", "-rf", "/") in argvs(text)

    def test_line_continuation_is_seen_through(self):
        """A continued line is read as bash joins it and as written: a
        command split across it is found, and so is one after a quoted
        here-document that keeps its backslash."""
        assert ("id",) in argvs('echo "$\\\n(id)"')
        assert ("rm", "-rf", "/") in argvs("cat <<'E'\na\\\nE\nrm -rf /")
        assert ("canary",) in argvs("ls &\\\n& canary")


class TestGlobs:
    @pytest.mark.parametrize(
        ("text", "pattern"),
        [
            ("ls *.py", "*.py"),
            ("ls src/*", "src/*"),
            ("ls x?[0-9]", "x?[0-9]"),
            ("ls '*'*", "[*]*"),
            ("ls \\?*", "[?]*"),
            ('ls "[a]"*', "[[]a]*"),
            ("ls [!.]*", "[!.]*"),
        ],
    )
    def test_a_glob_is_an_exact_word_with_a_pattern(self, text, pattern):
        """The word is exact (no reason) and a `GlobWord` whose pattern
        escapes what was quoted."""
        cmd = only(text)
        word = cmd.argv[1]

        assert ((), True, pattern) == (
            cmd.unresolved,
            isinstance(word, GlobWord),
            getattr(word, "pattern", None),
        )

    @pytest.mark.parametrize("text", ["ls '*'", "ls \\*", "ls [x", "ls x]"])
    def test_no_glob_without_active_metacharacters(self, text):
        """Quoted or unmatched metacharacters make no glob."""
        assert not isinstance(only(text).argv[1], GlobWord)


class TestBraces:
    @pytest.mark.parametrize(
        ("text", "words"),
        [
            ("rm -rf {/,}", ("rm", "-rf", "/")),
            ("rm -r{f,} /", ("rm", "-rf", "-r", "/")),
            ("echo x{a,b}", ("echo", "xa", "xb")),
            ("echo {a,{b,c}}", ("echo", "a", "b", "c")),
            ("echo {1..3}", ("echo", "1", "2", "3")),
            ("echo {01..03..2}", ("echo", "01", "03")),
            ("echo {c..a}", ("echo", "c", "b", "a")),
            (
                "cat ~/.{ssh,x}/id_{rsa,x}",
                (
                    "cat",
                    "~/.ssh/id_rsa",
                    "~/.ssh/id_x",
                    "~/.x/id_rsa",
                    "~/.x/id_x",
                ),
            ),
        ],
    )
    def test_alternatives_are_the_words(self, text, words):
        """A brace expansion is never exact, but its words are what the
        checks read (so `rm -rf {/,}` is `rm -rf /` to the floor)."""
        cmd = only(text)

        assert (words, True) == (cmd.argv, "brace expansion" in cmd.unresolved)

    def test_too_many_alternatives_are_refused(self):
        """A brace expansion beyond the limit is not worked out."""
        assert parse("echo " + "{a,b}" * 11).refused is not None


class TestOperators:
    def test_every_operator_separates(self):
        """`;`, `&&`, `||`, `|`, `|&`, `&` and new lines end a simple
        command; `|` and `|&` mark the left side piped, `&` background."""
        parsed = parse("a | b && c || d; e & f |& g\nh")

        assert [
            (("a",), True, False),
            (("b",), False, False),
            (("c",), False, False),
            (("d",), False, False),
            (("e",), False, True),
            (("f",), True, False),
            (("g",), False, False),
            (("h",), False, False),
        ] == [(c.argv, c.piped, c.background) for c in parsed.commands]
        assert () == parsed.unresolved

    def test_child_shells_are_marked(self):
        """Commands of a subshell, a pipeline, the background and a
        substitution run in a child shell; plain ones do not."""
        parsed = parse("cd a; (cd b); cd c | x; cd d & echo $(cd e)")

        assert [
            ("cd", "a", False),
            ("cd", "b", True),
            ("cd", "c", True),
            ("x", None, True),
            ("cd", "d", True),
            ("cd", "e", True),
            ("echo", "$(cd e)", False),
        ] == [
            (c.argv[0], c.argv[1] if len(c.argv) > 1 else None, c.subshell)
            for c in parsed.commands
        ]

    def test_negation_and_groups(self):
        """`!`, `{ }` and `( )` are structure, not programs."""
        assert [("rm", "x"), ("a",), ("b",), ("c",)] == argvs(
            "! rm x; { a; (b) }; c"
        )

    def test_comments(self):
        """`#` starts a comment only at the start of a word."""
        assert [("ls",), ("echo", "a#b"), ("wc",)] == argvs(
            "ls # x; rm -rf /\necho a#b #c\nwc"
        )

    def test_keywords_as_arguments_are_words(self):
        """Reserved words are words outside command position."""
        assert (("echo", "if", "then", "fi"), ()) == (
            only("echo if then fi").argv,
            only("echo if then fi").unresolved,
        )


REDIRECTS = [
    ("cmd > f", Redirect(">", "f", 1, "f")),
    ("cmd >> f", Redirect(">>", "f", 1, "f")),
    ("cmd < f", Redirect("<", "f", 0, "f")),
    ("cmd >| f", Redirect(">|", "f", 1, "f")),
    ("cmd <> f", Redirect("<>", "f", 0, "f")),
    ("cmd &> f", Redirect("&>", "f", None, "f")),
    ("cmd &>> f", Redirect("&>>", "f", None, "f")),
    ("cmd >&2", Redirect(">&", "2", 1, "2")),
    ("cmd 2> f", Redirect(">", "f", 2, "f")),
    ("cmd 2>&1", Redirect(">&", "1", 2, "1")),
    ("cmd 2>&-", Redirect(">&", "-", 2, "-")),
    ("cmd <&3", Redirect("<&", "3", 0, "3")),
    (
        "cmd 3<>/dev/tcp/h/80",
        Redirect("<>", "/dev/tcp/h/80", 3, "/dev/tcp/h/80"),
    ),
    ("cmd > 'a b'", Redirect(">", "a b", 1, "a b")),
    ("cmd > ~/.bashrc", Redirect(">", "~/.bashrc", 1, "~/.bashrc")),
    ('cmd > "$HOME/x"', Redirect(">", None, 1, "$HOME/x")),
    ("cmd > $F", Redirect(">", None, 1, "$F")),
    ("cmd > *.txt", Redirect(">", None, 1, "*.txt")),
    ("cmd <<< 'hi there'", Redirect("<<<", "hi there", 0, "hi there")),
    ("cmd <<<$x", Redirect("<<<", None, 0, "$x")),
]


class TestRedirects:
    @pytest.mark.parametrize(("text", "expected"), REDIRECTS)
    def test_redirect_table(self, text, expected):
        """Operator, fd (as written, else the operator's default), target
        (`None` unless exact) and the target as written."""
        cmd = parse(text).commands[-1]

        assert (("cmd",), (expected,)) == (cmd.argv, cmd.redirects)

    def test_several_redirects_anywhere(self):
        """Redirections may stand anywhere among the words."""
        cmd = only("> out echo 2>/dev/null hi < in")

        assert (("echo", "hi"), (">", "<")) == (
            cmd.argv,
            (cmd.redirects[0].op, cmd.redirects[2].op),
        )

    def test_group_redirect_applies_to_each_command(self):
        """A redirection after a group applies to every command in it."""
        parsed = parse("{ a; b; } > out")

        assert [(Redirect(">", "out", 1, "out"),)] * 2 == [
            c.redirects for c in parsed.commands
        ]


class TestHeredocs:
    def test_body_is_not_a_command(self):
        """A here-doc's body is the redirect's target, not commands."""
        parsed = parse("cat <<EOF\nrm -rf /\nEOF\necho done")

        assert [("cat",), ("echo", "done")] == argvs(
            "cat <<EOF\nrm -rf /\nEOF\necho done"
        )
        assert "rm -rf /\n" == parsed.commands[0].redirects[0].target

    def test_strip_tabs(self):
        """`<<-` strips leading tabs from the body and the delimiter."""
        cmd = parse("cat <<-EOF\n\tx\n\tEOF\n").commands[0]

        assert "x\n" == cmd.redirects[0].target

    def test_quoted_delimiter_keeps_body_literal(self):
        """With a quoted delimiter, `$(...)` in the body stays text."""
        cmd = only("cat <<'EOF'\n$(x)\nEOF")

        assert ("$(x)\n", ()) == (cmd.redirects[0].target, cmd.unresolved)

    def test_two_heredocs_on_one_line(self):
        """Bodies are read in order after the line that asked for them."""
        parsed = parse("cat <<A; cat <<B\n1\nA\n2\nB\nls")

        assert ["1\n", "2\n"] == [
            r.target for c in parsed.commands for r in c.redirects
        ]
        assert [("cat",), ("cat",), ("ls",)] == [
            c.argv for c in parsed.commands
        ]


class TestPosix:
    @pytest.mark.parametrize(
        "text",
        ["echo $'a'", "ls &> f", "ls |& wc", "cat <<< x", "function f { :; }"],
    )
    def test_bash_only_syntax_is_a_reason_for_sh(self, text):
        """`sh -c` scripts are read as a POSIX shell reads them: dash
        takes `$'...'` as `$` and a string, `&>` as `&` then `>`..."""
        assert "bash-only syntax in a POSIX shell" in (
            set(parse(text, posix=True).unresolved).union(
                *(c.unresolved for c in parse(text, posix=True).commands)
            )
        )
        assert "bash-only syntax in a POSIX shell" not in reasons(text)


class TestAssignments:
    def test_assignments_before_a_command(self):
        """`NAME=value` words before the program are assignments."""
        cmd = only("FOO=1 BAR='x y' cmd args")

        assert (("cmd", "args"), (("FOO", "1"), ("BAR", "x y"))) == (
            cmd.argv,
            cmd.assignments,
        )

    def test_after_the_program_it_is_an_argument(self):
        """Once the program is seen, `X=1` is an argument."""
        assert (("make", "X=1"), ()) == (
            only("make X=1").argv,
            only("make X=1").assignments,
        )

    def test_quoted_name_is_no_assignment(self):
        """`'A'=1` is a program named `A=1`, not an assignment."""
        assert ("A=1",) == only("'A'=1").argv


class TestLimits:
    def test_too_long(self):
        """A line over `MAX_CHARS` characters is refused unread."""
        parsed = parse("echo " + "x" * MAX_CHARS)

        assert (
            (),
            f"longer than {MAX_CHARS} characters ({MAX_CHARS + 5})",
        ) == (parsed.commands, parsed.refused)

    def test_too_many_words(self):
        """More than `MAX_WORDS` words (in any command) is refused."""
        assert f"more than {MAX_WORDS} words" == (
            parse("echo" + " x" * MAX_WORDS).refused
        )
        assert parse("echo" + " x" * (MAX_WORDS - 1)).refused is None
        assert f"more than {MAX_WORDS} words" == (
            parse("echo 'a'" + " 'x'" * MAX_WORDS).refused
        )

    def test_too_many_commands(self):
        """More than `MAX_COMMANDS` simple commands is refused."""
        assert f"more than {MAX_COMMANDS} commands" == (
            parse("ls;" * (MAX_COMMANDS + 1)).refused
        )
        assert parse("ls;" * MAX_COMMANDS).refused is None

    @pytest.mark.parametrize(
        "text",
        [
            "(" * 200,
            "$(" * 200,
            "${" * 200,
            '"$(' * 100,
            "{ " * 200,
            "echo " + "$((" * 30 + "(" * 20_000,
        ],
    )
    def test_deep_nesting(self, text):
        """Absurd nesting is refused, never a RecursionError."""
        refused = parse(text).refused

        assert refused is not None
        assert "nested" in refused or "too deep" in refused

    def test_nesting_within_the_limit_is_read(self):
        """Nesting up to the limit is analysed."""
        depth = MAX_NESTING // 2 - 2
        parsed = parse("echo " + "$(" * depth + "id" + ")" * depth)

        assert (None, True) == (
            parsed.refused,
            ("id",) in argvs("echo " + "$(" * depth + "id" + ")" * depth),
        )

    @settings(max_examples=300, deadline=None)
    @given(
        st.lists(
            st.sampled_from(
                [
                    *"abrm -$`'\"\\;&|<>(){}#=\n\t*?[],!012~%",
                    *["if ", "then ", "fi ", "do ", "done ", "case ", "esac "],
                    *["<<EOF\n", "EOF\n", "$((", "))", "$'", "${", "\\\n"],
                ]
            ),
            max_size=60,
        ).map("".join)
    )
    def test_never_raises(self, text):
        """Random text of shell metacharacters always gives a
        `ParsedCommand`."""
        assert isinstance(parse(text), ParsedCommand)


@pytest.mark.parametrize("line", ["px :{},}", "px a{},b}", "px x{a..}y}"])
def test_braces_bash_may_expand_are_not_exact(line):
    """A `,` or `..` between a `{` and a later `}` that the brace scan
    does not expand is not claimed exact: bash expands `:{},}` into `:}`
    and `:` (found by the differential test against real bash)."""
    from capscope.commands._parse import parse

    [command] = parse(line).commands
    assert command.unresolved


@pytest.mark.parametrize(
    "line", ["git log @{u}..", "git show HEAD@{1}", "find . -exec ls {} +"]
)
def test_braces_with_nothing_to_expand_stay_exact(line):
    from capscope.commands._parse import parse

    [command] = parse(line).commands
    assert not command.unresolved
