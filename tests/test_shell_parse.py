"""The shell parser: quoting, operators, redirections and what it cannot
resolve (issue 5)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from capscope._shell import ParsedCommand, Redirect, SimpleCommand
from capscope._shell_parse import parse


def argvs(text: str) -> list[tuple[str, ...]]:
    """The argv of every simple command of *text*, in order."""
    return [cmd.argv for cmd in parse(text).commands]


def only(text: str) -> SimpleCommand:
    """The single simple command of *text*."""
    parsed = parse(text)
    assert 1 == len(parsed.commands), parsed
    return parsed.commands[0]


QUOTING = [
    ("echo 'a; rm -rf /'", ("echo", "a; rm -rf /")),
    ("git log --format='%H; x'", ("git", "log", "--format=%H; x")),
    ("ls '$(x)'", ("ls", "$(x)")),
    ("ls '`x`'", ("ls", "`x`")),
    ("echo a\\;b", ("echo", "a;b")),
    ("echo a\\|b a\\&b a\\>b", ("echo", "a|b", "a&b", "a>b")),
    ("echo $'\\x41'", ("echo", "A")),
    ("echo $'a\\nb\\tc'", ("echo", "a\nb\tc")),
    ("echo $'\\\\ \\''", ("echo", "\\ '")),
    ("echo $'\\101\\0101'", ("echo", "A\x08" + "1")),
    ("echo $'a\\0b'c", ("echo", "ac")),
    ("echo $'\\u00e9\\cA'", ("echo", "\u00e9\x01")),
    ("echo a'b'\"c\"", ("echo", "abc")),
    ("echo 'a'\\''b'", ("echo", "a'b")),
    ('echo "it\'s"', ("echo", "it's")),
    ('echo "a\\"b\\$c\\`d\\\\e\\x"', ("echo", 'a"b$c`d\\e\\x')),
    ('echo "$HOME/x"', ("echo", "$HOME/x")),
    ("echo $HOME ${USER} ${X:-y}", ("echo", "$HOME", "${USER}", "${X:-y}")),
    ("echo ${#x} $@ $1 $?", ("echo", "${#x}", "$@", "$1", "$?")),
    ("echo $((1 + 2))", ("echo", "$((1 + 2))")),
    ('echo $"x y"', ("echo", "x y")),
    ("echo a\\\nb", ("echo", "ab")),
    ("ls\\\n -la", ("ls", "-la")),
    ("\\rm -rf /", ("rm", "-rf", "/")),
    ('"rm" -rf /', ("rm", "-rf", "/")),
    ("r''m -rf /", ("rm", "-rf", "/")),
    ("echo '' \"\"", ("echo", "", "")),
    ("echo a#b", ("echo", "a#b")),
    ("echo \\# x", ("echo", "#", "x")),
    ("echo 'a\nb'", ("echo", "a\nb")),
    ("echo {a,b} *.py x?[0-9]", ("echo", "{a,b}", "*.py", "x?[0-9]")),
    ("echo \t  spaced   out ", ("echo", "spaced", "out")),
    ("echo $ a$", ("echo", "$", "a$")),
]


class TestQuoting:
    @pytest.mark.parametrize(("text", "expected"), QUOTING)
    def test_quote_removal(self, text, expected):
        """Each line is one simple command whose argv has its quotes
        removed the way the shell removes them, with nothing unresolved."""
        cmd = only(text)

        assert (expected, ()) == (cmd.argv, cmd.unresolved)
        assert () == parse(text).unresolved

    def test_substitution_in_double_quotes(self):
        """`$(...)` inside double quotes is a substitution: its command is
        found, and the word keeps the substitution as written."""
        parsed = parse('echo "a $(b) c"')

        assert [("b",), ("echo", "a $(b) c")] == [
            c.argv for c in parsed.commands
        ]
        assert ("command substitution",) == parsed.commands[1].unresolved

    def test_backtick_in_double_quotes(self):
        """Backticks inside double quotes are a substitution too."""
        parsed = parse('echo "`id`"')

        assert [("id",), ("echo", "`id`")] == argvs('echo "`id`"')
        assert ("command substitution",) == parsed.commands[1].unresolved

    def test_escaped_dollar_is_literal(self):
        """`\\$(x)` in double quotes is literal text, not a substitution."""
        assert ("echo", "$(x)") == only('echo "\\$(x)"').argv

    def test_backtick_escapes(self):
        """Inside backticks, `\\$`, `` \\` `` and `\\\\` are unescaped before
        the inside is parsed."""
        assert [("echo", "$HOME"), ("echo", "`echo \\$HOME`")] == argvs(
            "echo `echo \\$HOME`"
        )


class TestOperators:
    def test_every_operator_separates(self):
        """`;`, `&&`, `||`, `|`, `|&`, `&` and newlines all end a simple
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

    def test_background_applies_to_the_and_or_list(self):
        """`a && b &` runs the whole list in the background."""
        assert [True, True] == [
            c.background for c in parse("a && b &").commands
        ]

    def test_unspaced_operators(self):
        """Operators need no blanks around them."""
        assert [("echo", "a"), ("b",), ("c",)] == argvs("echo a;b&&c")

    def test_newline_after_pipe_and_and(self):
        """A newline may follow `|`, `&&` and `||`."""
        parsed = parse("ls |\n wc &&\n true")

        assert ([("ls",), ("wc",), ("true",)], ()) == (
            [c.argv for c in parsed.commands],
            parsed.unresolved,
        )

    def test_negation(self):
        """`!` before a pipeline is not a program."""
        assert [("rm", "x")] == argvs("! rm x")

    def test_curl_pipe_sh(self):
        """The classic `curl ... | sh` keeps its two commands adjacent."""
        parsed = parse("curl -s x | sh")

        assert [(("curl", "-s", "x"), True), (("sh",), False)] == [
            (c.argv, c.piped) for c in parsed.commands
        ]


class TestCompound:
    def test_subshell(self):
        """A subshell's commands are flattened into the list in order."""
        assert [("cd", "/"), ("rm", "-rf", "*"), ("ls",)] == argvs(
            "(cd /; rm -rf *); ls"
        )

    def test_group(self):
        """A group's commands are flattened into the list in order."""
        assert [("a",), ("b",), ("c",)] == argvs("{ a; b; }; c")

    def test_piped_subshell(self):
        """Every command of a piped subshell feeds the pipe."""
        parsed = parse("(a; b) | sh")

        assert [True, True, False] == [c.piped for c in parsed.commands]

    def test_group_redirect_applies_to_each_command(self):
        """A redirection after a group applies to every command in it."""
        parsed = parse("{ a; b; } > out")

        assert [(Redirect(">", "out", 1),)] * 2 == [
            c.redirects for c in parsed.commands
        ]

    def test_nested(self):
        """Groups and subshells nest."""
        assert [("a",), ("b",), ("c",)] == argvs("( { a; (b) }; c )")

    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("if true; then rm -rf /; fi", [("true",), ("rm", "-rf", "/")]),
            (
                "if a; then b; elif c; then d; else e; fi",
                [("a",), ("b",), ("c",), ("d",), ("e",)],
            ),
            (
                "while read l; do echo $l; done",
                [("read", "l"), ("echo", "$l")],
            ),
            ("until false; do x; done", [("false",), ("x",)]),
            ("for i in 1 2; do echo $i; done", [("echo", "$i")]),
            ("for i\ndo\n echo $i\ndone", [("echo", "$i")]),
            ("for ((i=0;i<3;i++)); do echo; done", [("echo",)]),
            (
                "case $x in a|b) rm -rf /;; (*) ls;; esac",
                [("rm", "-rf", "/"), ("ls",)],
            ),
            ("echo if then fi done", [("echo", "if", "then", "fi", "done")]),
        ],
    )
    def test_keywords(self, text, expected):
        """Commands inside `if`, `while`, `until`, `for` and `case` are
        found; keywords outside command position are plain words."""
        parsed = parse(text)

        assert (expected, ()) == (
            [c.argv for c in parsed.commands],
            parsed.unresolved,
        )

    def test_loop_piped_into_a_shell(self):
        """A loop's commands are piped when the loop is."""
        parsed = parse("for f in a; do echo rm $f; done | sh")

        assert [True, False] == [c.piped for c in parsed.commands]

    @pytest.mark.parametrize(
        "text",
        [
            "f() { rm -rf /; }",
            "f () { rm -rf /; }",
            "function f { rm -rf /; }",
            "function f() { rm -rf /; }",
        ],
    )
    def test_function_definitions(self, text):
        """A function's body is found but runs later: the line is a
        `compound command`."""
        parsed = parse(text)

        assert ([("rm", "-rf", "/")], ("compound command",)) == (
            [c.argv for c in parsed.commands],
            parsed.unresolved,
        )

    def test_arithmetic_command(self):
        """`(( ... ))` is no command, but a substitution inside it is."""
        parsed = parse("(( x = $(rm) ))")

        assert ([("rm",)], ("command substitution",)) == (
            [c.argv for c in parsed.commands],
            parsed.unresolved,
        )


REDIRECTS = [
    ("cmd > f", Redirect(">", "f", 1)),
    ("cmd >> f", Redirect(">>", "f", 1)),
    ("cmd < f", Redirect("<", "f", 0)),
    ("cmd >| f", Redirect(">|", "f", 1)),
    ("cmd <> f", Redirect("<>", "f", 0)),
    ("cmd &> f", Redirect("&>", "f", None)),
    ("cmd &>> f", Redirect("&>>", "f", None)),
    ("cmd >&2", Redirect(">&", "2", 1)),
    ("cmd 2> f", Redirect(">", "f", 2)),
    ("cmd 2>> f", Redirect(">>", "f", 2)),
    ("cmd 2>&1", Redirect(">&", "1", 2)),
    ("cmd 2>&-", Redirect(">&", "-", 2)),
    ("cmd <&3", Redirect("<&", "3", 0)),
    ("cmd 3<>/dev/tcp/h/80", Redirect("<>", "/dev/tcp/h/80", 3)),
    ("cmd >f", Redirect(">", "f", 1)),
    ("cmd > 'a b'", Redirect(">", "a b", 1)),
    ("cmd > ~/.bashrc", Redirect(">", "~/.bashrc", 1)),
    ('cmd > "$HOME/x"', Redirect(">", None, 1)),
    ("cmd > $F", Redirect(">", None, 1)),
    ("cmd > *.txt", Redirect(">", None, 1)),
    ("cmd > $(mktemp)", Redirect(">", None, 1)),
    ("cmd <<< 'hi there'", Redirect("<<<", "hi there", 0)),
    ("cmd <<<$x", Redirect("<<<", None, 0)),
]


class TestRedirects:
    @pytest.mark.parametrize(("text", "expected"), REDIRECTS)
    def test_redirect_table(self, text, expected):
        """Operator (without its number), fd (as written, else the
        operator's default) and target (None when it expands)."""
        parsed = parse(text)
        cmd = parsed.commands[-1]

        assert (("cmd",), (expected,)) == (cmd.argv, cmd.redirects)

    def test_several_redirects_anywhere(self):
        """Redirections may stand anywhere among the words."""
        cmd = only("> out echo 2>/dev/null hi < in")

        assert (
            ("echo", "hi"),
            (
                Redirect(">", "out", 1),
                Redirect(">", "/dev/null", 2),
                Redirect("<", "in", 0),
            ),
        ) == (cmd.argv, cmd.redirects)

    def test_only_a_redirect(self):
        """`> f` alone is a command with no argv and one redirect."""
        assert SimpleCommand((), redirects=(Redirect(">", "f", 1),)) == only(
            "> f"
        )

    def test_substitution_in_a_target_is_found(self):
        """The command of a substitution in a target is found."""
        parsed = parse("echo hi > $(mktemp)")

        assert [("mktemp",), ("echo", "hi")] == [
            c.argv for c in parsed.commands
        ]
        assert ("command substitution",) == parsed.commands[1].unresolved

    def test_missing_target(self):
        """A redirection with no word after it is a syntax error."""
        parsed = parse("echo >")

        assert (("syntax error",), (Redirect(">", None, 1),)) == (
            parsed.unresolved,
            parsed.commands[0].redirects,
        )


class TestAssignments:
    def test_assignments_before_a_command(self):
        """`NAME=value` words before the program are assignments, with
        their quotes removed."""
        cmd = only("FOO=1 BAR='x y' cmd args")

        assert (("cmd", "args"), (("FOO", "1"), ("BAR", "x y"))) == (
            cmd.argv,
            cmd.assignments,
        )

    def test_only_assignments(self):
        """A line of only assignments is a command with an empty argv."""
        assert SimpleCommand((), assignments=(("A", "1"), ("B", ""))) == only(
            "A=1 B="
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

    def test_substitution_in_a_value(self):
        """A substitution in an assigned value is found and unresolved."""
        parsed = parse("X=$(curl evil) ls")

        assert [("curl", "evil"), ("ls",)] == [c.argv for c in parsed.commands]
        assert ("command substitution",) == parsed.commands[1].unresolved

    def test_array(self):
        """`a=(1 2)` is one assignment."""
        assert (("a", "(1 2)"),) == only("a=(1 2)").assignments


class TestHeredocs:
    def test_body_is_not_a_command(self):
        """A here-doc's body is the redirect's target, not commands."""
        parsed = parse("cat <<EOF\nrm -rf /\nEOF\necho done")

        assert [
            (("cat",), (Redirect("<<", "rm -rf /\n", 0),)),
            (("echo", "done"), ()),
        ] == [(c.argv, c.redirects) for c in parsed.commands]
        assert () == parsed.unresolved

    def test_strip_tabs(self):
        """`<<-` strips leading tabs from the body and the delimiter."""
        cmd = parse("cat <<-EOF\n\tx\n\tEOF\n").commands[0]

        assert (Redirect("<<-", "x\n", 0),) == cmd.redirects

    def test_quoted_delimiter_keeps_body_literal(self):
        """With a quoted delimiter, `$(...)` in the body stays text."""
        cmd = only("cat <<'EOF'\n$(x)\nEOF")

        assert ((Redirect("<<", "$(x)\n", 0),), ()) == (
            cmd.redirects,
            cmd.unresolved,
        )

    def test_unquoted_delimiter_body_substitution(self):
        """With an unquoted delimiter, `$(...)` and backticks in the body
        are substitutions: unresolved on the command, inner commands
        found."""
        parsed = parse("cat <<EOF\n$(rm -rf /) `id`\nEOF")

        assert [("cat",), ("rm", "-rf", "/"), ("id",)] == [
            c.argv for c in parsed.commands
        ]
        assert ("command substitution",) == parsed.commands[0].unresolved
        assert (Redirect("<<", None, 0),) == parsed.commands[0].redirects

    def test_two_heredocs_on_one_line(self):
        """Bodies are read in order after the line that asked for them."""
        parsed = parse("cat <<A; cat <<B\n1\nA\n2\nB\nls")

        assert [
            ("<<", "1\n"),
            ("<<", "2\n"),
        ] == [(r.op, r.target) for c in parsed.commands for r in c.redirects]
        assert [("cat",), ("cat",), ("ls",)] == [
            c.argv for c in parsed.commands
        ]

    def test_heredoc_into_pipe(self):
        """`cat <<EOF | sh` pipes and still reads the body."""
        parsed = parse("cat <<EOF | sh\nrm -rf /\nEOF\n")

        assert [(("cat",), True), (("sh",), False)] == [
            (c.argv, c.piped) for c in parsed.commands
        ]
        assert "rm -rf /\n" == parsed.commands[0].redirects[0].target

    @pytest.mark.parametrize("text", ["cat <<EOF\nno end", "cat <<EOF"])
    def test_unterminated(self, text):
        """A here-doc with no delimiter line is reported."""
        assert ("unterminated here-doc",) == parse(text).unresolved

    def test_here_string(self):
        """`<<<` takes one word."""
        assert (Redirect("<<<", "rm -rf /", 0),) == only(
            "sh <<< 'rm -rf /'"
        ).redirects


class TestComments:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("ls # comment; rm -rf /", [("ls",)]),
            ("# only a comment", []),
            ("ls;# c\nwc", [("ls",), ("wc",)]),
            ("echo a#b #c", [("echo", "a#b")]),
            ("echo '#not'", [("echo", "#not")]),
        ],
    )
    def test_comments(self, text, expected):
        """`#` at the start of a token comments out the rest of the line."""
        assert expected == argvs(text)


class TestUnresolved:
    @pytest.mark.parametrize(
        ("text", "index", "expected"),
        [
            ("echo $(id)", 1, ("command substitution",)),
            ("echo `id`", 1, ("command substitution",)),
            ("echo ${x:-$(id)}", 1, ("command substitution",)),
            ("echo $((1 + $(id)))", 1, ("command substitution",)),
            ("diff <(ls a) b", 1, ("process substitution",)),
            ("tee >(sh)", 1, ("process substitution",)),
            ("$X foo", 0, ("variable in program position",)),
            ("${X} foo", 0, ("variable in program position",)),
            ("${X:-rm} foo", 0, ("variable in program position",)),
            (
                "$(which rm) -rf /",
                1,
                ("command substitution", "substitution in program position"),
            ),
            (
                "`which rm` -rf /",
                1,
                ("command substitution", "substitution in program position"),
            ),
            ("/bin/r? -rf /", 0, ("glob in program position",)),
            ("{rm,-rf,/}", 0, ("brace expansion in program position",)),
            ("eval 'rm -rf /'", 0, ("eval",)),
            ("source ./x", 0, ("source",)),
            (". ./x", 0, ("source",)),
        ],
    )
    def test_reasons(self, text, index, expected):
        """Each construct that cannot be resolved statically names its
        reason on its simple command."""
        assert expected == parse(text).commands[index].unresolved

    @pytest.mark.parametrize(
        "text",
        [
            "echo $HOME *.py {a,b} x?",
            "[ -f x ]",
            "echo $((1 + 2))",
            "ls '$(x)'",
            "echo \\`id\\`",
        ],
    )
    def test_resolved(self, text):
        """Variables, globs and brace expansion in arguments, arithmetic,
        `[` and quoted or escaped substitutions are fine."""
        parsed = parse(text)

        assert [()] == [c.unresolved for c in parsed.commands]
        assert () == parsed.unresolved

    def test_substitution_is_kept_as_written(self):
        """A substitution's word keeps its source text."""
        parsed = parse('echo "$(rm -rf /)"')

        assert [("rm", "-rf", "/"), ("echo", "$(rm -rf /)")] == [
            c.argv for c in parsed.commands
        ]

    def test_nested_substitutions(self):
        """Substitutions in substitutions are all found."""
        assert [
            ("rm", "-rf", "/"),
            ("echo", "$(rm -rf /)"),
            ("echo", "$(echo $(rm -rf /))"),
        ] == argvs("echo $(echo $(rm -rf /))")

    def test_substitution_in_case_patterns_survive(self):
        """`)` of a case arm inside `$(...)` does not end it."""
        assert [("rm",), ("echo", "$(case x in a) rm;; esac)")] == argvs(
            "echo $(case x in a) rm;; esac)"
        )

    def test_substitution_in_for_words(self):
        """A substitution outside any simple command goes to the line."""
        parsed = parse("for f in $(ls); do echo $f; done")

        assert ([("ls",), ("echo", "$f")], ("command substitution",)) == (
            [c.argv for c in parsed.commands],
            parsed.unresolved,
        )


FUZZ_PIECES = [
    *"abrm -$`'\"\\;&|<>(){}#=\n\t*?[],!012",
    *["if ", "then ", "fi ", "do ", "done ", "case ", "esac "],
    *["<<EOF\n", "EOF\n", "$((", "))", "$'", "${"],
]


class TestWholeLine:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [
            ("echo 'abc", "unbalanced quote"),
            ('echo "abc', "unbalanced quote"),
            ("echo $'abc", "unbalanced quote"),
            ("echo $(ls", "unbalanced parenthesis"),
            ("echo ${x", "unbalanced parenthesis"),
            ("echo `ls", "unbalanced parenthesis"),
            ("(ls", "unbalanced parenthesis"),
            ("ls)", "unbalanced parenthesis"),
            ("{ ls;", "unbalanced parenthesis"),
            ("}", "unbalanced parenthesis"),
            ("ls |", "syntax error"),
            ("&& ls", "syntax error"),
            ("ls &&", "syntax error"),
            ("ls ||", "syntax error"),
            ("; ls", "syntax error"),
            ("ls ;; ls", "syntax error"),
            ("ls | | wc", "syntax error"),
            ("fi", "syntax error"),
            ("if true; then ls", "syntax error"),
            ("echo \\$(x)", "syntax error"),
            ("cat <<EOF", "unterminated here-doc"),
        ],
    )
    def test_problems(self, text, expected):
        """A problem with the line is reported, not raised."""
        assert expected in parse(text).unresolved

    def test_partial_result(self):
        """What could be parsed is still returned."""
        assert [("ls",)] == argvs("ls |")

    @pytest.mark.parametrize("text", ["", "   ", "\n\n", " \t\n"])
    def test_empty(self, text):
        """Empty or blank input has no commands and no problems."""
        assert ParsedCommand(commands=()) == parse(text)

    @pytest.mark.parametrize(
        "text", ["(" * 500, "$(" * 500, "${" * 500, '"$(' * 300, "{ " * 500]
    )
    def test_deep_nesting(self, text):
        """Absurd nesting is reported, never a RecursionError."""
        assert "nesting too deep" in parse(text).unresolved

    @settings(max_examples=400, deadline=None)
    @given(
        st.lists(
            st.sampled_from(FUZZ_PIECES),
            max_size=40,
        ).map("".join)
    )
    def test_never_raises(self, text):
        """Random text of shell metacharacters and letters always gives a
        ParsedCommand."""
        assert isinstance(parse(text), ParsedCommand)
