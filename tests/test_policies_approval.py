"""
ToolApprovalPolicy and ApprovalRule: validation, matchers, the default path
guards, the ranking, remembered-answer keys, intersection and the codec.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import capscope as cs
from capscope.policies import Level, ToolCall
from capscope.policies.approval import (
    DEFAULT_SENSITIVE_PATHS,
    REMEMBERED,
    ApprovalAction,
    ApprovalEvaluation,
    ApprovalRule,
    RuleSource,
    ToolApprovalPolicy,
    remember_key,
)

#: A workspace root that does not exist: paths under it resolve lexically.
WS = "/capscope-test/ws"
WS_ROOTS = (WS,)

ALLOW, ASK, DENY = (
    ApprovalAction.ALLOW,
    ApprovalAction.ASK,
    ApprovalAction.DENY,
)
STRICTNESS = {ALLOW: 0, ASK: 1, DENY: 2}


def evaluate(policy: ToolApprovalPolicy, call: ToolCall, **kwargs):
    """`policy.evaluate` with the test workspace as the only root."""
    kwargs.setdefault("workspace_roots", WS_ROOTS)
    return policy.evaluate(call, **kwargs)


def remembered(call: ToolCall, answer: str) -> dict[str, object]:
    """The evaluate() keywords for *answer* remembered for *call*."""
    key = remember_key(call.tool, call.arguments)
    return {"remembered": {key: answer}, "remember_key": key}


class TestConstruction:
    def test_defaults(self):
        """The defaults the API reference documents."""
        p = ToolApprovalPolicy()

        assert (
            (),
            None,
            60.0,
            None,
            False,
            None,
            False,
            None,
        ) == (
            p.rules,
            p.handler,
            p.timeout,
            p.sensitive_paths,
            p.allow_sensitive_paths,
            p.external_roots,
            p.allow_external_paths,
            p.repeat_limit,
        )
        assert DEFAULT_SENSITIVE_PATHS == p.effective_sensitive_paths

    def test_rules_accept_rules_and_mappings(self):
        """Rules may be ApprovalRule objects or their dicts, from any iterable."""
        rule = ApprovalRule("deny", tool="shell")
        p = ToolApprovalPolicy(
            rules=(r for r in [rule, {"action": "ask", "tool": "fs.*"}])
        )

        assert (rule, ApprovalRule(ASK, tool="fs.*")) == p.rules

    def test_enums_from_strings(self):
        """Actions, sources and levels are str enums built from their values."""
        rule = ApprovalRule("ask", source="user", side_effect="network")

        assert (ASK, RuleSource.USER, Level.NETWORK) == (
            rule.action,
            rule.source,
            rule.side_effect,
        )
        assert "ask" == rule.action
        assert RuleSource.POLICY is ApprovalRule("allow").source

    def test_sequences_become_tuples_and_timeout_a_float(self):
        """Lists are stored as tuples; an int timeout as a float."""
        p = ToolApprovalPolicy(
            sensitive_paths=["*.secret"],
            external_roots=[Path("/data")],
            timeout=5,
        )

        assert (("*.secret",), ("/data",), 5.0) == (
            p.sensitive_paths,
            p.external_roots,
            p.timeout,
        )
        assert isinstance(p.timeout, float)

    def test_handler_and_no_timeout(self):
        """A callable handler and `timeout=None` (no limit) are accepted."""
        p = ToolApprovalPolicy(handler=print, timeout=None)

        assert (print, None) == (p.handler, p.timeout)

    def test_rule_repr_is_short(self):
        """The repr shows id, non-default source, action and set matchers."""
        assert "<ApprovalRule ask tool='fs.write*'>" == repr(
            ApprovalRule("ask", tool="fs.write*", reason="long reasons hidden")
        )
        assert (
            "<ApprovalRule 'prod' user deny tool='deploy' side_effect='network'>"
            == repr(
                ApprovalRule(
                    "deny",
                    source="user",
                    tool="deploy",
                    side_effect="network",
                    id="prod",
                )
            )
        )

    def test_policies_are_hashable_values(self):
        """Equal policies compare and hash equal (so frames dedupe)."""
        a = ToolApprovalPolicy(rules=[{"action": "deny", "tool": "x"}])
        b = ToolApprovalPolicy(rules=[ApprovalRule("deny", tool="x")])

        assert a == b
        assert hash(a) == hash(b)

    def test_constants(self):
        """REMEMBERED names the frame_state slot; the defaults hold the basics."""
        required = {
            ".env",
            ".env.*",
            "id_rsa",
            "id_rsa.*",
            "id_ed25519",
            "id_ed25519.*",
            "id_ecdsa",
            "id_dsa",
            "*.pem",
            "*.key",
            "*.p12",
            "*.pfx",
            ".netrc",
            ".npmrc",
            ".pypirc",
            "*/.aws/credentials",
            "*/.ssh/*",
            "*/.gnupg/*",
        }

        assert "capscope.approval.remembered" == REMEMBERED
        assert set() == required - set(DEFAULT_SENSITIVE_PATHS)


class TestValidation:
    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"action": "aprove"}, "action"),
            ({"action": "allow", "source": "admin"}, "source"),
            ({"action": "allow", "tool": 3}, "tool"),
            ({"action": "allow", "tool": ""}, "tool"),
            ({"action": "allow", "capability": "fs.[x"}, "capability"),
            ({"action": "allow", "path": "/ws/[a"}, "path"),
            ({"action": "allow", "domain": ["x.com"]}, "domain"),
            ({"action": "allow", "side_effect": "loud"}, "side_effect"),
            ({"action": "allow", "reason": 3}, "reason"),
            ({"action": "allow", "id": 3}, "id"),
        ],
    )
    def test_bad_rule_names_the_field(self, kwargs, field):
        """A bad rule field raises PolicyConfigError naming it."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ApprovalRule(**kwargs)

        assert field == info.value.field

    def test_unknown_action_message(self):
        """The message lists the valid actions."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ApprovalRule("aprove")

        assert "action: 'aprove' is not one of allow, ask, deny" == str(
            info.value
        )

    def test_malformed_glob_message(self):
        """A malformed glob says so."""
        with pytest.raises(cs.PolicyConfigError, match="malformed glob"):
            ApprovalRule("deny", tool="fs.[x")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"rules": "deny"}, "rules"),
            ({"rules": {"action": "deny"}}, "rules"),
            ({"rules": [3]}, "rules[0]"),
            (
                {
                    "rules": [
                        {"action": "allow"},
                        {"action": "deny", "tool": 5},
                    ]
                },
                "rules[1].tool",
            ),
            ({"handler": "print"}, "handler"),
            ({"timeout": 0}, "timeout"),
            ({"timeout": -1.5}, "timeout"),
            ({"timeout": math.nan}, "timeout"),
            ({"timeout": math.inf}, "timeout"),
            ({"timeout": True}, "timeout"),
            ({"timeout": "60"}, "timeout"),
            ({"timeout": 10**400}, "timeout"),
            ({"sensitive_paths": "*.pem"}, "sensitive_paths"),
            ({"sensitive_paths": ["*.pem", "*.[x"]}, "sensitive_paths[1]"),
            ({"allow_sensitive_paths": "yes"}, "allow_sensitive_paths"),
            ({"allow_external_paths": 1}, "allow_external_paths"),
            ({"external_roots": ["relative/dir"]}, "external_roots[0]"),
            ({"external_roots": ["/ok", "~/x"]}, "external_roots[1]"),
            ({"external_roots": [3]}, "external_roots[0]"),
            ({"external_roots": "/data"}, "external_roots"),
            ({"repeat_limit": -1}, "repeat_limit"),
            ({"repeat_limit": True}, "repeat_limit"),
            ({"repeat_limit": 1.5}, "repeat_limit"),
        ],
    )
    def test_bad_policy_names_the_field(self, kwargs, field):
        """A bad policy field raises PolicyConfigError (a ValueError) naming it."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ToolApprovalPolicy(**kwargs)

        assert field == info.value.field
        assert isinstance(info.value, ValueError)

    def test_from_dict_names_the_key_path(self):
        """The exact message for a bad action deep in the data."""
        data = {
            "rules": [
                {"action": "allow", "tool": "fs.read"},
                {"action": "ask", "tool": "fs.*"},
                {"action": "aprove", "tool": "shell"},
            ]
        }

        with pytest.raises(cs.PolicyConfigError) as info:
            ToolApprovalPolicy.from_dict(data)

        assert (
            "approval.rules[2].action: 'aprove' is not one of allow, ask, deny"
            == str(info.value)
        )

    def test_constructor_names_the_rule_index(self):
        """Built directly, the field is `rules[i].<key>`."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ToolApprovalPolicy(rules=[{"action": "allow"}, {"action": "nope"}])

        assert "rules[1].action" == info.value.field

    @pytest.mark.parametrize(
        ("data", "field"),
        [
            ({"rule": []}, "approval.rule"),
            (
                {"rules": [{"action": "ask", "tol": "x"}]},
                "approval.rules[0].tol",
            ),
            ({"rules": [{"tool": "x"}]}, "approval.rules[0]"),
            (["rules"], "approval"),
            ({"handler": "module:function"}, "approval.handler"),
        ],
    )
    def test_from_dict_errors(self, data, field):
        """Unknown keys, missing keys and non-tables name their key path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ToolApprovalPolicy.from_dict(data)

        assert field == info.value.field

    def test_rule_from_dict_path(self):
        """ApprovalRule.from_dict prefixes its own path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ApprovalRule.from_dict({"action": "deny", "agnet": "x"}, path="r")

        assert "r.agnet" == info.value.field


class TestMatchers:
    def test_no_matcher_matches_every_call(self):
        """A rule that sets no matcher matches any call."""
        rule = ApprovalRule("ask")

        assert rule.matches(ToolCall("anything"))
        assert rule.matches(ToolCall("x", paths=("/a",), command="ls"))

    def test_tool_glob(self):
        """`tool` is a glob on the tool name."""
        rule = ApprovalRule("ask", tool="fs.write*")

        assert rule.matches(ToolCall("fs.write_text"))
        assert not rule.matches(ToolCall("fs.read"))
        assert ApprovalRule("ask", tool="fs.read").matches(ToolCall("fs.read"))
        assert not ApprovalRule("ask", tool="fs.read").matches(
            ToolCall("fs.reader")
        )

    def test_path_glob_on_the_absolute_form(self, tmp_path, monkeypatch):
        """A relative path is matched in its absolute form, `..` removed."""
        monkeypatch.chdir(tmp_path)
        rule = ApprovalRule("deny", path=f"{tmp_path}/deploy/*")

        assert rule.matches(ToolCall("fs.write", paths=("deploy/prod.yaml",)))
        assert rule.matches(
            ToolCall("fs.write", paths=("src/../deploy/prod.yaml",))
        )
        assert not rule.matches(ToolCall("fs.write", paths=("src/app.py",)))

    def test_path_glob_is_case_sensitive(self):
        """Rule paths are case-sensitive (unlike the sensitive-path guard)."""
        rule = ApprovalRule("deny", path="/ws/src/*")

        assert rule.matches(ToolCall("fs.read", paths=("/ws/src/a",)))
        assert not rule.matches(ToolCall("fs.read", paths=("/ws/SRC/a",)))

    def test_path_rule_needs_a_path(self):
        """A call without paths never matches a rule that sets `path`."""
        assert not ApprovalRule("deny", path="*").matches(ToolCall("fs.read"))

    def test_deny_matches_any_path_allow_needs_every_path(self):
        """Restricting rules need one path; permitting rules need all."""
        call = ToolCall("fs.write", paths=("/ws/src/a.py", "/ws/deploy/x"))

        assert ApprovalRule("deny", path="/ws/src/*").matches(call)
        assert ApprovalRule("ask", path="/ws/src/*").matches(call)
        assert not ApprovalRule("allow", path="/ws/src/*").matches(call)
        assert ApprovalRule("allow", path="/ws/*").matches(call)

    def test_symlinked_path_matches_either_form(self, tmp_path):
        """
        A symlink is matched as given and resolved: either form for deny,
        both forms for allow.
        """
        (tmp_path / "real").mkdir()
        (tmp_path / "link").symlink_to(tmp_path / "real")
        call = ToolCall("fs.read", paths=(str(tmp_path / "link" / "f"),))

        assert ApprovalRule("deny", path=f"{tmp_path}/real/*").matches(call)
        assert ApprovalRule("deny", path=f"{tmp_path}/link/*").matches(call)
        assert not ApprovalRule("allow", path=f"{tmp_path}/link/*").matches(
            call
        )
        assert ApprovalRule("allow", path=f"{tmp_path}/*").matches(call)

    def test_command_glob(self):
        """`command` is a glob on the call's command; no command, no match."""
        rule = ApprovalRule("ask", command="git push*")

        assert rule.matches(ToolCall("shell", command="git push origin main"))
        assert not rule.matches(ToolCall("shell", command="git status"))
        assert not rule.matches(ToolCall("shell"))

    def test_url_glob_found_recursively(self):
        """URLs are found in nested argument values and inside free text."""
        rule = ApprovalRule("deny", url="https://api.example.com/*")
        nested = {"requests": [{"target": "https://api.example.com/v1"}]}
        text = {"prompt": "fetch https://api.example.com/x, then stop"}

        assert rule.matches(ToolCall("web", nested))
        assert rule.matches(ToolCall("web", text))
        assert not rule.matches(ToolCall("web", {"u": "https://other.org/"}))
        assert not rule.matches(
            ToolCall("web", {"u": "ftp://api.example.com/"})
        )

    def test_url_in_command(self):
        """A URL in the call's command counts too."""
        rule = ApprovalRule("deny", domain="evil.example")

        assert rule.matches(
            ToolCall("shell", command="curl http://evil.example/x")
        )

    def test_domain_glob_case_insensitive(self):
        """`domain` matches the URL host, any case, without port or userinfo."""
        rule = ApprovalRule("deny", domain="*.Example.COM")
        call = ToolCall("web", {"u": "https://user@API.example.com:8443/p"})

        assert rule.matches(call)
        assert not rule.matches(ToolCall("web", {"u": "https://example.org"}))
        assert not rule.matches(ToolCall("web", {"n": 3}))

    def test_domain_deny_any_allow_every(self):
        """Several URLs: deny needs one host, allow needs every host."""
        call = ToolCall(
            "web", {"a": "https://ok.example/x", "b": "https://evil.example/"}
        )

        assert ApprovalRule("deny", domain="evil.example").matches(call)
        assert not ApprovalRule("allow", domain="ok.example").matches(call)
        assert ApprovalRule("allow", domain="*.example").matches(call)

    def test_url_scan_survives_cycles(self):
        """A self-referencing argument does not loop forever."""
        args: dict[str, object] = {"u": "https://a.example/"}
        args["self"] = args

        assert ApprovalRule("deny", domain="a.example").matches(
            ToolCall("web", args)
        )

    def test_mcp_server_and_tool(self):
        """`mcp_server` and `mcp_tool` match the parts of `mcp__server__tool`."""
        call = ToolCall("mcp__github__create_issue")

        assert ApprovalRule("ask", mcp_server="github").matches(call)
        assert ApprovalRule("ask", mcp_tool="create_*").matches(call)
        assert ApprovalRule(
            "ask", mcp_server="git*", mcp_tool="create_issue"
        ).matches(call)
        assert not ApprovalRule("ask", mcp_server="slack").matches(call)

    @pytest.mark.parametrize(
        "tool", ["github_create_issue", "mcp__github", "mcp____x", "mcp__x__"]
    )
    def test_non_mcp_tool_never_matches_mcp_rules(self, tool):
        """A tool that is not `mcp__server__tool` never matches MCP matchers."""
        assert not ApprovalRule("deny", mcp_server="*").matches(ToolCall(tool))
        assert not ApprovalRule("deny", mcp_tool="*").matches(ToolCall(tool))

    def test_agent_mode_capability(self):
        """`agent`, `mode` and `capability` are globs on the call's fields."""
        call = ToolCall(
            "fs.write",
            agent="reviewer-2",
            mode="plan",
            capability="workspace.write_text",
        )

        assert ApprovalRule("deny", agent="reviewer-*").matches(call)
        assert ApprovalRule("deny", mode="plan").matches(call)
        assert ApprovalRule("deny", capability="workspace.write_*").matches(
            call
        )
        assert not ApprovalRule("deny", agent="coder").matches(call)
        assert not ApprovalRule("deny", mode="act").matches(call)
        assert not ApprovalRule("deny", capability="process.*").matches(call)

    def test_missing_fields_never_match(self):
        """A call without agent, mode or capability never matches those."""
        call = ToolCall("fs.write")

        assert not ApprovalRule("deny", agent="*").matches(call)
        assert not ApprovalRule("deny", mode="*").matches(call)
        assert not ApprovalRule("deny", capability="*").matches(call)

    @pytest.mark.parametrize(
        ("level", "expected"),
        [
            (Level.NONE, False),
            (Level.READ_ONLY, False),
            (Level.WORKSPACE_WRITE, True),
            (Level.PROCESS_EXEC, True),
            (Level.NETWORK, True),
            (None, False),
        ],
    )
    def test_side_effect_at_least(self, level, expected):
        """`side_effect` matches calls at that level or above."""
        rule = ApprovalRule("ask", side_effect="workspace_write")

        assert expected == rule.matches(ToolCall("t", side_effect=level))

    def test_matchers_combine_with_and(self):
        """Every matcher set must hold."""
        rule = ApprovalRule("deny", tool="shell", command="rm *", agent="bot")

        assert rule.matches(ToolCall("shell", command="rm x", agent="bot"))
        assert not rule.matches(ToolCall("shell", command="rm x", agent="me"))
        assert not rule.matches(ToolCall("shell", command="ls", agent="bot"))
        assert not rule.matches(ToolCall("fs", command="rm x", agent="bot"))


class TestSensitivePaths:
    @pytest.mark.parametrize(
        "path",
        [
            f"{WS}/.env",
            f"{WS}/.env.local",
            f"{WS}/keys/id_rsa",
            f"{WS}/keys/id_rsa.pub",
            f"{WS}/keys/id_ed25519",
            f"{WS}/keys/id_ecdsa",
            f"{WS}/keys/id_dsa",
            f"{WS}/tls/server.pem",
            f"{WS}/tls/server.key",
            f"{WS}/tls/client.p12",
            f"{WS}/tls/client.pfx",
            f"{WS}/.netrc",
            f"{WS}/.npmrc",
            f"{WS}/.pypirc",
            f"{WS}/home/.aws/credentials",
            f"{WS}/home/.ssh/config",
            f"{WS}/home/.gnupg/pubring.kbx",
        ],
    )
    def test_defaults_deny(self, path):
        """Each default pattern denies, even with an empty policy."""
        e = evaluate(ToolApprovalPolicy(), ToolCall("fs.read", paths=(path,)))

        assert (DENY, "sensitive_path", "default_sensitive_path") == (
            e.action,
            e.gate,
            e.source,
        )
        assert path in e.reason

    @pytest.mark.parametrize(
        "path",
        [f"{WS}/.ENV", f"{WS}/keys/server.PEM", f"{WS}/HOME/.AWS/Credentials"],
    )
    def test_case_insensitive_on_path_and_basename(self, path):
        """Patterns match whatever the case, on the basename and full path."""
        e = evaluate(ToolApprovalPolicy(), ToolCall("fs.read", paths=(path,)))

        assert "sensitive_path" == e.gate

    def test_home_is_expanded(self, tmp_path, monkeypatch):
        """`~/.aws/credentials` is expanded before matching."""
        monkeypatch.setenv("HOME", str(tmp_path))
        p = ToolApprovalPolicy(allow_external_paths=True)

        e = p.evaluate(ToolCall("fs.read", paths=("~/.aws/credentials",)))

        assert ("sensitive_path", DENY) == (e.gate, e.action)
        assert "'*/.aws/credentials'" in e.reason

    @pytest.mark.parametrize(
        "path", [f"{WS}/src/app.py", f"{WS}/environment.txt", f"{WS}/keys.txt"]
    )
    def test_ordinary_paths_pass(self, path):
        """Ordinary workspace paths are not sensitive."""
        e = evaluate(ToolApprovalPolicy(), ToolCall("fs.read", paths=(path,)))

        assert (ALLOW, "default") == (e.action, e.source)

    def test_symlink_to_a_sensitive_file(self, tmp_path):
        """A harmless name linking to a secret is judged by its target too."""
        (tmp_path / ".env").write_text("KEY=1")
        (tmp_path / "notes.txt").symlink_to(tmp_path / ".env")
        call = ToolCall("fs.read", paths=(str(tmp_path / "notes.txt"),))

        e = ToolApprovalPolicy().evaluate(call, workspace_roots=[tmp_path])

        assert "sensitive_path" == e.gate

    def test_own_patterns_replace_the_defaults(self):
        """A `sensitive_paths` tuple replaces the defaults; () means none."""
        own = ToolApprovalPolicy(sensitive_paths=("*.secret",))
        none = ToolApprovalPolicy(sensitive_paths=())
        env = ToolCall("fs.read", paths=(f"{WS}/.env",))

        assert ALLOW == evaluate(own, env).action
        assert ALLOW == evaluate(none, env).action
        assert (
            DENY
            == evaluate(own, ToolCall("r", paths=(f"{WS}/x.SECRET",))).action
        )

    def test_allow_sensitive_paths(self):
        """`allow_sensitive_paths` turns the guard off."""
        p = ToolApprovalPolicy(allow_sensitive_paths=True)

        e = evaluate(p, ToolCall("fs.read", paths=(f"{WS}/.env",)))

        assert ALLOW == e.action

    def test_guard_beats_an_allow_rule_and_a_remembered_allow(self):
        """The default guards run before any rule or answer."""
        p = ToolApprovalPolicy(rules=[{"action": "allow"}])
        call = ToolCall("fs.read", paths=(f"{WS}/ok.txt", f"{WS}/.env"))

        e = evaluate(p, call, **remembered(call, "allow"))

        assert ("sensitive_path", DENY) == (e.gate, e.action)


class TestWorkspaceBoundary:
    @pytest.fixture
    def ws(self, tmp_path: Path) -> Path:
        """A real workspace directory beside a real outside directory."""
        (tmp_path / "ws").mkdir()
        (tmp_path / "outside").mkdir()
        return tmp_path / "ws"

    def check(self, ws: Path, *paths: str, **policy) -> ApprovalEvaluation:
        return ToolApprovalPolicy(**policy).evaluate(
            ToolCall("fs.write", paths=paths), workspace_roots=[str(ws)]
        )

    def test_inside_is_allowed(self, ws):
        """A path under a workspace root passes the guard."""
        assert ALLOW == self.check(ws, f"{ws}/src/a.py").action

    def test_outside_is_denied(self, ws):
        """A path under no root is denied at the workspace boundary."""
        e = self.check(ws, "/etc/passwd")

        assert (DENY, "workspace_boundary", "default_external_path") == (
            e.action,
            e.gate,
            e.source,
        )
        assert "'/etc/passwd'" in e.reason

    def test_dotdot_escape(self, ws):
        """`..` is resolved before the containment check."""
        assert DENY == self.check(ws, f"{ws}/src/../../outside/x").action
        assert ALLOW == self.check(ws, f"{ws}/src/../b/x").action

    def test_symlink_pointing_outside(self, ws):
        """A symlink inside the workspace that points outside is outside."""
        (ws / "link").symlink_to(ws.parent / "outside")

        e = self.check(ws, f"{ws}/link/secret.txt")

        assert "workspace_boundary" == e.gate
        assert str(ws.parent / "outside" / "secret.txt") in e.reason

    def test_symlink_pointing_inside(self, ws):
        """A symlink from outside into the workspace is inside."""
        (ws.parent / "door").symlink_to(ws)

        assert ALLOW == self.check(ws, f"{ws.parent}/door/a.txt").action

    def test_sibling_prefix_is_not_contained(self, ws):
        """Root `/a/ws` does not contain `/a/ws2`: containment is per component."""
        (ws.parent / "ws2").mkdir()

        assert DENY == self.check(ws, f"{ws}2/x").action

    def test_trailing_slash_root(self, ws):
        """A root given with a trailing slash contains its children."""
        e = ToolApprovalPolicy().evaluate(
            ToolCall("fs.write", paths=(f"{ws}/x", f"{ws}/")),
            workspace_roots=[f"{ws}/"],
        )

        assert ALLOW == e.action

    def test_non_existent_target(self, ws):
        """Paths that do not exist yet resolve as far as they can."""
        assert ALLOW == self.check(ws, f"{ws}/new/dir/file.txt").action
        assert DENY == self.check(ws, f"{ws}/new/../../elsewhere").action

    def test_external_roots(self, ws):
        """A path under an external root passes; its siblings do not."""
        outside = ws.parent / "outside"

        assert (
            ALLOW
            == self.check(
                ws, f"{outside}/x", external_roots=[str(outside)]
            ).action
        )
        assert (
            DENY
            == self.check(
                ws, f"{outside}-2/x", external_roots=[str(outside)]
            ).action
        )

    def test_allow_external_paths(self, ws):
        """`allow_external_paths` turns the guard off."""
        assert (
            ALLOW
            == self.check(
                ws, "/etc/hostname", allow_external_paths=True
            ).action
        )

    def test_cwd_is_the_default_root(self, ws, monkeypatch):
        """With no workspace roots given, the working directory is the root."""
        monkeypatch.chdir(ws)
        p = ToolApprovalPolicy()

        assert ALLOW == p.evaluate(ToolCall("r", paths=("rel/a",))).action
        assert DENY == p.evaluate(ToolCall("r", paths=("../x",))).action

    def test_no_workspace_roots(self, ws):
        """An empty root list makes every path external."""
        e = ToolApprovalPolicy().evaluate(
            ToolCall("r", paths=(f"{ws}/a",)), workspace_roots=()
        )

        assert DENY == e.action

    def test_unusable_path_is_denied(self, ws):
        """A path holding NUL (or empty) is denied, whatever the switches."""
        for path in (f"{ws}/a\0b", ""):
            e = self.check(ws, path, allow_external_paths=True)

            assert ("workspace_boundary", DENY) == (e.gate, e.action)

    def test_calls_without_paths_skip_the_guards(self):
        """No paths, no guard: the rules decide."""
        e = ToolApprovalPolicy().evaluate(ToolCall("x"), workspace_roots=())

        assert ALLOW == e.action

    def test_single_string_roots_refused(self):
        """A bare string for workspace_roots is a programming error."""
        with pytest.raises(TypeError):
            ToolApprovalPolicy().evaluate(
                ToolCall("r", paths=("/a",)),
                workspace_roots="/a",  # type: ignore[arg-type]
            )


def rule(action: str, source: str = "policy", **kw) -> ApprovalRule:
    return ApprovalRule(action, source=source, tool="deploy", **kw)


CALL = ToolCall("deploy", {"env": "prod"})


class TestRanking:
    """The ranking of docs/guide-approvals.md, one test per adjacent pair."""

    def test_authored_deny_beats_remembered_and_user_deny(self):
        """A policy deny outranks a remembered deny and a user deny rule."""
        p = ToolApprovalPolicy(
            rules=[rule("deny", "user", id="u"), rule("deny", id="authored")]
        )

        e = evaluate(p, CALL, **remembered(CALL, "deny"))

        assert (DENY, "rule", "authored") == (e.action, e.source, e.rule.id)

    def test_remembered_deny_beats_authored_ask(self):
        """A remembered deny outranks an authored ask."""
        p = ToolApprovalPolicy(rules=[rule("ask")])

        e = evaluate(p, CALL, **remembered(CALL, "deny"))

        assert (DENY, "remembered") == (e.action, e.source)

    def test_user_deny_beats_authored_ask(self):
        """A user-source deny rule ranks with remembered denies."""
        p = ToolApprovalPolicy(rules=[rule("ask"), rule("deny", "user")])

        assert DENY == evaluate(p, CALL).action

    def test_authored_ask_beats_remembered_allow(self):
        """An authored ask is not answered by a remembered allow."""
        p = ToolApprovalPolicy(rules=[rule("ask", id="ask")])

        e = evaluate(p, CALL, **remembered(CALL, "allow"))

        assert (ASK, "rule", "ask") == (e.action, e.source, e.rule.id)

    def test_authored_ask_beats_user_allow(self):
        """A user-source allow rule ranks with remembered allows."""
        p = ToolApprovalPolicy(rules=[rule("allow", "user"), rule("ask")])

        assert ASK == evaluate(p, CALL).action

    def test_remembered_allow_beats_authored_allow(self):
        """Both allow; the remembered answer is the deciding candidate."""
        p = ToolApprovalPolicy(rules=[rule("allow")])

        e = evaluate(p, CALL, **remembered(CALL, "allow"))

        assert (ALLOW, "remembered") == (e.action, e.source)

    def test_user_allow_beats_mode_ask_and_deny(self):
        """Mode rules rank lowest: a user allow overrides them."""
        for action in ("ask", "deny"):
            p = ToolApprovalPolicy(
                rules=[rule(action, "mode"), rule("allow", "user")]
            )

            assert ALLOW == evaluate(p, CALL).action
            assert (
                ALLOW
                == evaluate(
                    ToolApprovalPolicy(rules=[rule(action, "mode")]),
                    CALL,
                    **remembered(CALL, "allow"),
                ).action
            )

    def test_mode_rules_rank_with_authored_allow_by_action(self):
        """At rank 0, deny > ask > allow: a mode deny beats a policy allow."""
        p = ToolApprovalPolicy(rules=[rule("allow"), rule("deny", "mode")])
        q = ToolApprovalPolicy(rules=[rule("allow"), rule("ask", "mode")])

        assert DENY == evaluate(p, CALL).action
        assert ASK == evaluate(q, CALL).action

    def test_authored_allow_beats_implicit_ask(self):
        """An authored allow answers a needs_approval tool's implicit ask."""
        p = ToolApprovalPolicy(rules=[rule("allow")])

        e = evaluate(p, CALL, implicit_ask=True)

        assert (ALLOW, "rule") == (e.action, e.source)

    def test_implicit_ask_beats_default_allow(self):
        """With nothing matching, a needs_approval tool asks; others pass."""
        p = ToolApprovalPolicy(rules=[ApprovalRule("deny", tool="other")])

        asked = evaluate(p, CALL, implicit_ask=True)
        passed = evaluate(p, CALL)

        assert (ASK, "implicit", None) == (
            asked.action,
            asked.source,
            asked.rule,
        )
        assert (ALLOW, "default") == (passed.action, passed.source)
        assert "tool 'deploy' approved by default" == passed.reason

    def test_full_tie_keeps_the_first(self):
        """Same rank and action: the first candidate wins."""
        p = ToolApprovalPolicy(
            rules=[rule("deny", id="first"), rule("deny", id="second")]
        )

        assert "first" == evaluate(p, CALL).rule.id

    def test_reason_names_the_rule(self):
        """The reason names the rule's id, index and reason."""
        p = ToolApprovalPolicy(
            rules=[
                ApprovalRule("allow", tool="x"),
                rule("deny", id="no-prod", reason="prod is frozen"),
            ]
        )

        assert (
            "tool 'deploy' denied by rule 'no-prod' (rules[1]): prod is frozen"
            == evaluate(p, CALL).reason
        )


class TestRepeatLimit:
    def test_breach_asks(self):
        """More calls than the limit: ask, even over a remembered allow."""
        p = ToolApprovalPolicy(repeat_limit=2)

        at = evaluate(p, CALL, repeat_count=2)
        over = evaluate(p, CALL, repeat_count=3, **remembered(CALL, "allow"))

        assert ALLOW == at.action
        assert (ASK, "repeat_limit") == (over.action, over.source)
        assert "repeat limit of 2" in over.reason

    def test_breach_loses_to_a_deny(self):
        """A repeat ask is outranked by a deny."""
        p = ToolApprovalPolicy(repeat_limit=0, rules=[rule("deny")])

        assert DENY == evaluate(p, CALL, repeat_count=5).action

    def test_zero_limit(self):
        """`repeat_limit=0` asks from the first repetition."""
        p = ToolApprovalPolicy(repeat_limit=0)

        assert ALLOW == evaluate(p, CALL, repeat_count=0).action
        assert ASK == evaluate(p, CALL, repeat_count=1).action


class TestImplicitAsk:
    def test_answered_by_an_authored_allow(self):
        """A policy allow rule settles a needs_approval tool."""
        p = ToolApprovalPolicy(rules=[ApprovalRule("allow", tool="deploy")])

        assert ALLOW == evaluate(p, CALL, implicit_ask=True).action

    def test_answered_by_a_remembered_allow(self):
        """An answer remembered in this scope settles it."""
        e = evaluate(
            ToolApprovalPolicy(),
            CALL,
            implicit_ask=True,
            **remembered(CALL, "allow"),
        )

        assert (ALLOW, "remembered") == (e.action, e.source)

    def test_remembered_allow_does_not_beat_an_authored_ask(self):
        """An authored ask still asks, remembered allow or not."""
        p = ToolApprovalPolicy(rules=[rule("ask"), rule("allow")])

        e = evaluate(p, CALL, implicit_ask=True, **remembered(CALL, "allow"))

        assert (ASK, "rule") == (e.action, e.source)

    def test_remembered_deny(self):
        """A remembered deny refuses it without asking again."""
        e = evaluate(
            ToolApprovalPolicy(),
            CALL,
            implicit_ask=True,
            **remembered(CALL, "deny"),
        )

        assert (DENY, "remembered") == (e.action, e.source)

    def test_remembered_needs_the_key(self):
        """Without remember_key, or with another call's key, nothing is recalled."""
        key = remember_key(CALL.tool, CALL.arguments)
        other = remember_key("deploy", {"env": "dev"})
        p = ToolApprovalPolicy()

        assert (
            ASK
            == evaluate(
                p, CALL, implicit_ask=True, remembered={key: "allow"}
            ).action
        )
        assert (
            ASK
            == evaluate(
                p,
                CALL,
                implicit_ask=True,
                remembered={key: "allow"},
                remember_key=other,
            ).action
        )

    def test_junk_remembered_value_is_ignored(self):
        """Only "allow" and "deny" count as remembered answers."""
        e = evaluate(
            ToolApprovalPolicy(),
            CALL,
            implicit_ask=True,
            **remembered(CALL, "ask"),
        )

        assert (ASK, "implicit") == (e.action, e.source)


class TestRememberKey:
    def test_independent_of_dict_order(self):
        """Keys are sorted at every level of the canonical JSON."""
        a = {"x": 1, "y": {"b": [1, 2], "a": None}}
        b = {"y": {"a": None, "b": [1, 2]}, "x": 1}

        assert remember_key("t", a) == remember_key("t", b)

    def test_format(self):
        """`tool:sha256(canonical JSON)`, ASCII-escaped."""
        args = {"name": "café", "n": 1}
        canonical = '{"n":1,"name":"caf\\u00e9"}'

        assert "fs.write:" + hashlib.sha256(
            canonical.encode()
        ).hexdigest() == remember_key("fs.write", args)

    def test_differs_by_tool_and_arguments(self):
        """Another tool or another argument value is another key."""
        keys = {
            remember_key("a", {"x": 1}),
            remember_key("b", {"x": 1}),
            remember_key("a", {"x": 2}),
            remember_key("a", {"x": "1"}),
            remember_key("a", {"x": 1.0}),
            remember_key("a", {"x": True}),
        }

        assert 6 == len(keys)

    def test_tuples_and_lists_share_a_key(self):
        """JSON has one array type, so a tuple and a list are the same."""
        assert remember_key("t", {"x": (1, 2)}) == remember_key(
            "t", {"x": [1, 2]}
        )

    @pytest.mark.parametrize(
        "arguments",
        [
            {"fh": object()},
            {"data": b"bytes"},
            {"x": math.nan},
            {"x": math.inf},
            {"m": {1: "int key"}},
            {"s": {1, 2}},
        ],
    )
    def test_not_json_able_is_none(self, arguments):
        """Arguments without a canonical JSON form are never remembered."""
        assert None is remember_key("t", arguments)

    def test_cyclic_arguments_are_none(self):
        """A self-referencing argument has no JSON form."""
        args: dict[str, object] = {}
        args["me"] = args

        assert None is remember_key("t", args)


class TestIntersect:
    def test_handler_inner_wins(self):
        """The inner handler replaces the outer one; None keeps the outer's."""

        def outer_handler(request):
            return None

        def inner_handler(request):
            return None

        outer = ToolApprovalPolicy(handler=outer_handler)

        assert (
            inner_handler
            is outer.intersect(
                ToolApprovalPolicy(handler=inner_handler)
            ).handler
        )
        assert outer_handler is outer.intersect(ToolApprovalPolicy()).handler
        assert (
            inner_handler
            is ToolApprovalPolicy()
            .intersect(ToolApprovalPolicy(handler=inner_handler))
            .handler
        )

    @pytest.mark.parametrize(
        ("outer", "inner", "expected"),
        [
            (60.0, 5.0, 5.0),
            (5.0, 60.0, 5.0),
            (None, 7.0, 7.0),
            (3.0, None, 3.0),
            (None, None, None),
        ],
    )
    def test_timeout_takes_the_smaller(self, outer, inner, expected):
        """`timeout` is the minimum; None (no limit) yields to a number."""
        result = ToolApprovalPolicy(timeout=outer).intersect(
            ToolApprovalPolicy(timeout=inner)
        )

        assert expected == result.timeout

    @pytest.mark.parametrize(
        ("outer", "inner", "expected"),
        [(3, 1, 1), (1, 3, 1), (None, 2, 2), (0, None, 0), (None, None, None)],
    )
    def test_repeat_limit_takes_the_smaller(self, outer, inner, expected):
        """`repeat_limit` is the minimum; None (no limit) yields."""
        result = ToolApprovalPolicy(repeat_limit=outer).intersect(
            ToolApprovalPolicy(repeat_limit=inner)
        )

        assert expected == result.repeat_limit

    def test_rules_stay_in_their_frames(self):
        """Outer frames first; an empty or repeated frame is dropped."""
        a, b, c = (ApprovalRule("ask", tool=t) for t in "abc")
        outer = ToolApprovalPolicy(rules=[a, b])

        result = outer.intersect(ToolApprovalPolicy(rules=[b, c, c]))

        assert ((a, b), (b, c, c)) == result.rule_frames
        assert ((a, b),) == result.outer_rules
        assert outer == outer.intersect(outer)
        assert outer == outer.intersect(ToolApprovalPolicy())
        assert result == result.intersect(outer)

    def test_sensitive_paths_union(self):
        """None counts as the defaults; both None stays None."""
        own = ToolApprovalPolicy(sensitive_paths=("*.mysecret", ".env"))

        assert (
            None
            is ToolApprovalPolicy()
            .intersect(ToolApprovalPolicy())
            .sensitive_paths
        )
        assert (
            *DEFAULT_SENSITIVE_PATHS,
            "*.mysecret",
        ) == ToolApprovalPolicy().intersect(own).sensitive_paths
        assert (
            "*.mysecret",
            ".env",
            *DEFAULT_SENSITIVE_PATHS[1:],
        ) == own.intersect(ToolApprovalPolicy()).sensitive_paths
        assert ("*.mysecret", ".env") == own.intersect(
            ToolApprovalPolicy(sensitive_paths=())
        ).sensitive_paths

    @pytest.mark.parametrize(
        ("outer", "inner", "expected"),
        [(True, True, True), (True, False, False), (False, True, False)],
    )
    def test_switches_must_both_be_on(self, outer, inner, expected):
        """`allow_sensitive_paths` and `allow_external_paths` are ANDed."""
        result = ToolApprovalPolicy(
            allow_sensitive_paths=outer, allow_external_paths=outer
        ).intersect(
            ToolApprovalPolicy(
                allow_sensitive_paths=inner, allow_external_paths=inner
            )
        )

        assert (expected, expected) == (
            result.allow_sensitive_paths,
            result.allow_external_paths,
        )

    @pytest.mark.parametrize(
        ("outer", "inner", "expected"),
        [
            (None, None, None),
            (None, ("/d",), None),
            (("/d",), None, None),
            (("/d", "/e"), ("/e", "/f"), ("/e",)),
            (("/d",), ("/d/proj",), ("/d/proj",)),
            (("/d/proj", "/x"), ("/d",), ("/d/proj",)),
            (("/d",), ("/d2",), ()),
            (("/d",), (), ()),
        ],
    )
    def test_external_roots_both_allow(self, outer, inner, expected):
        """
        Roots both sides allow, by component-wise containment. Unset (None)
        allows no external root, so it never passes the other side through.
        """
        result = ToolApprovalPolicy(external_roots=outer).intersect(
            ToolApprovalPolicy(external_roots=inner)
        )

        assert expected == result.external_roots

    def test_self_intersection(self):
        """`p.intersect(p) == p` for a policy with every field set."""
        p = ToolApprovalPolicy(
            rules=[rule("deny"), rule("ask"), rule("deny")],
            handler=print,
            timeout=3,
            sensitive_paths=("*.x", "*.x"),
            external_roots=("/d", "/e/f", "/d"),
            allow_external_paths=True,
            repeat_limit=4,
        )

        assert p == p.intersect(p)

    def test_rejects_other_types(self):
        """Only a ToolApprovalPolicy can be intersected."""
        with pytest.raises(TypeError):
            ToolApprovalPolicy().intersect({"rules": []})  # type: ignore[arg-type]

    def test_inner_deny_applies(self):
        """A deny pushed by the inner policy applies under the outer's allow."""
        outer = ToolApprovalPolicy(rules=[rule("allow")])
        both = outer.intersect(ToolApprovalPolicy(rules=[rule("deny")]))

        assert DENY == evaluate(both, CALL).action

    @pytest.mark.parametrize("source", ["policy", "user", "mode"])
    def test_an_inner_allow_never_settles_the_implicit_ask(self, source):
        """
        Only the root frame's allow (the configuration installed first) or
        a human's remembered answer settles a needs_approval tool's
        implicit ask: an allow pushed inside, whoever it claims to come
        from, does not (issue 14).
        """
        root = ToolApprovalPolicy(rules=[rule("allow")])
        inner = ToolApprovalPolicy(rules=[rule("allow", source)])

        assert ALLOW == evaluate(root, CALL, implicit_ask=True).action
        for outer in (ToolApprovalPolicy(), ToolApprovalPolicy(timeout=5)):
            e = evaluate(outer.intersect(inner), CALL, implicit_ask=True)
            assert (ASK, "implicit") == (e.action, e.source)
        assert (
            ALLOW
            == evaluate(
                ToolApprovalPolicy().intersect(inner),
                CALL,
                implicit_ask=True,
                **remembered(CALL, "allow"),
            ).action
        )

    @pytest.mark.parametrize("outer_action", ["ask", "deny"])
    @pytest.mark.parametrize("source", ["policy", "user"])
    def test_an_inner_allow_never_settles_an_outer_rule(
        self, outer_action, source
    ):
        """Each frame gives its own verdict; the strongest wins."""
        outer = ToolApprovalPolicy(rules=[rule(outer_action)])
        inner = ToolApprovalPolicy(rules=[rule("allow", source)])

        assert outer_action == evaluate(outer.intersect(inner), CALL).action

    def test_a_mode_ask_outside_is_not_settled_by_a_user_allow_inside(self):
        """
        Within one frame a user allow outranks a mode rule; across frames
        it does not.
        """
        outer = ToolApprovalPolicy(rules=[rule("ask", "mode")])
        inner = ToolApprovalPolicy(rules=[rule("allow", "user")])
        same = ToolApprovalPolicy(
            rules=[rule("ask", "mode"), rule("allow", "user")]
        )

        assert ASK == evaluate(outer.intersect(inner), CALL).action
        assert ALLOW == evaluate(same, CALL).action

    def test_an_outer_allow_names_its_frame(self):
        outer = ToolApprovalPolicy(rules=[rule("deny")])
        both = outer.intersect(ToolApprovalPolicy(rules=[rule("ask")]))

        assert "outer_rules[0][0]" in evaluate(both, CALL).reason
        assert "rules[0]" in evaluate(outer, CALL).reason


class TestCodec:
    def test_round_trip_every_field(self):
        """Every handler-free field survives to_dict/JSON/from_dict."""
        p = ToolApprovalPolicy(
            rules=[
                ApprovalRule(
                    "deny",
                    source="user",
                    tool="web.*",
                    domain="*.evil.example",
                    side_effect="network",
                    reason="no",
                    id="r1",
                ),
                {"action": "allow", "path": "/ws/*"},
            ],
            timeout=None,
            sensitive_paths=("*.secret",),
            allow_sensitive_paths=True,
            external_roots=("/data",),
            allow_external_paths=True,
            repeat_limit=3,
        )

        data = json.loads(json.dumps(p.to_dict()))

        assert p == ToolApprovalPolicy.from_dict(data)

    def test_to_dict_keeps_only_changes(self):
        """Defaults are left out; rules become dicts; enums their values."""
        p = ToolApprovalPolicy(
            rules=[ApprovalRule("ask", side_effect=Level.NETWORK)]
        )

        assert {} == ToolApprovalPolicy().to_dict()
        assert {
            "rules": [{"action": "ask", "side_effect": "network"}]
        } == p.to_dict()

    def test_handler_is_not_data(self):
        """A policy holding a handler refuses to_dict, naming the field."""
        with pytest.raises(cs.PolicyConfigError) as info:
            ToolApprovalPolicy(handler=print).to_dict()

        assert "handler" == info.value.field

    def test_rule_round_trip(self):
        """A rule round-trips alone too."""
        r = ApprovalRule("ask", mcp_server="gh", mcp_tool="*", mode="plan")

        assert r == ApprovalRule.from_dict(r.to_dict())
        assert {
            "action": "ask",
            "mcp_server": "gh",
            "mcp_tool": "*",
            "mode": "plan",
        } == r.to_dict()


# --- properties ---------------------------------------------------------------

PROP_WS = "/capscope-prop/ws"
PROP_OUT = "/capscope-prop/out"

_tools = st.sampled_from([None, "fs.*", "fs.write", "shell", "mcp__*"])
_paths = st.sampled_from(
    [None, f"{PROP_WS}/*", f"{PROP_WS}/secret/*", f"{PROP_OUT}/*"]
)


def _rule_strategy(sources: list[str], mode_actions: list[str]):
    authored = st.builds(
        ApprovalRule,
        action=st.sampled_from(["allow", "ask", "deny"]),
        source=st.sampled_from(sources),
        tool=_tools,
        path=_paths,
        side_effect=st.sampled_from([None, "workspace_write", "network"]),
    )
    mode = st.builds(
        ApprovalRule,
        action=st.sampled_from(mode_actions),
        source=st.just("mode"),
        tool=_tools,
        path=_paths,
    )
    return authored | mode


def _policies(rules):
    return st.builds(
        ToolApprovalPolicy,
        rules=st.lists(rules, max_size=4),
        timeout=st.sampled_from([None, 1.0, 5.0, 60.0]),
        sensitive_paths=st.sampled_from(
            [None, (), ("*/secret/*",), ("*.pem", ".env")]
        ),
        allow_sensitive_paths=st.booleans(),
        external_roots=st.sampled_from(
            [None, (), (PROP_OUT,), (f"{PROP_OUT}/x",), (PROP_OUT, PROP_WS)]
        ),
        allow_external_paths=st.booleans(),
        repeat_limit=st.sampled_from([None, 0, 1, 2]),
    )


#: Every source and action (for equality and the codec).
ALL_POLICIES = _policies(
    _rule_strategy(["policy", "user"], ["allow", "ask", "deny"])
)
#: Mode rules only allow: a mode ask or deny is, by the ranking's design,
#: overridden by a user allow from the other side (see TestRanking).
MONOTONE_POLICIES = _policies(_rule_strategy(["policy", "user"], ["allow"]))

#: Every call the property checks, for each pair of random policies: each
#: tool (with its side effect) against each set of paths.
GRID_CALLS = tuple(
    ToolCall(tool, {"n": 1}, paths=paths, side_effect=level)
    for tool, level in [
        ("fs.read", Level.READ_ONLY),
        ("fs.write", Level.WORKSPACE_WRITE),
        ("shell", None),
        ("mcp__git__push", Level.NETWORK),
    ]
    for paths in [
        (),
        (f"{PROP_WS}/a.txt",),
        (f"{PROP_WS}/secret/b",),
        (f"{PROP_WS}/.env",),
        (f"{PROP_OUT}/x/c",),
        (f"{PROP_OUT}/y",),
        (f"{PROP_WS}/a.txt", f"{PROP_OUT}/x/c"),
    ]
)


def _grid(policy: ToolApprovalPolicy) -> list[int]:
    """How strict *policy* is on every grid call, answer and repeat count."""
    out = []
    for call in GRID_CALLS:
        key = remember_key(call.tool, call.arguments)
        for answer in (None, "allow", "deny"):
            for repeat_count in (1, 3):
                e = policy.evaluate(
                    call,
                    remembered=None if answer is None else {key: answer},
                    remember_key=key,
                    repeat_count=repeat_count,
                    workspace_roots=(PROP_WS,),
                )
                out.append(STRICTNESS[e.action])
    return out


class TestProperties:
    @settings(max_examples=150, deadline=None)
    @given(ALL_POLICIES)
    def test_self_intersection_is_identity(self, p):
        """`p.intersect(p) == p`."""
        assert p == p.intersect(p)

    @settings(max_examples=150, deadline=None)
    @given(ALL_POLICIES)
    def test_codec_round_trip(self, p):
        """`from_dict(to_dict(p)) == p`, through JSON."""
        data = json.loads(json.dumps(p.to_dict()))

        assert p == ToolApprovalPolicy.from_dict(data)

    @settings(max_examples=150, deadline=None)
    @given(MONOTONE_POLICIES, MONOTONE_POLICIES)
    def test_intersection_is_never_more_permissive(self, outer, inner):
        """
        On every grid call, remembered answer and repeat count: whenever
        either side denies, the intersection denies; whenever either asks,
        it asks or denies. (Without the implicit ask, which an allow from
        either side answers by design; see TestIntersect.)
        """
        both = outer.intersect(inner)

        strictest = [
            max(o, i) for o, i in zip(_grid(outer), _grid(inner), strict=True)
        ]
        actual = _grid(both)

        assert all(s <= a for s, a in zip(strictest, actual, strict=True))


# -- a path is the file the kernel opens (issue 16) -------------------------------


@pytest.fixture
def linked_workspace(tmp_path, monkeypatch):
    """ws/link -> out: `link/../secret.txt` opens tmp/secret.txt, outside ws."""
    ws, out = tmp_path / "ws", tmp_path / "out"
    ws.mkdir()
    out.mkdir()
    (tmp_path / "secret.txt").write_text("secret")
    (ws / "link").symlink_to(out)
    monkeypatch.chdir(ws)
    return ws


@cs.requires_tool("fs.read", side_effect="read_only", paths=("path",))
def _read_file(path):
    return Path(path).read_text()  # pathlib keeps the ".." as written


def test_symlink_then_dotdot_is_judged_where_it_lands(linked_workspace):
    sneaky = "link/../secret.txt"
    assert "secret" == Path(sneaky).read_text()  # what the kernel does
    with cs.using(
        execution=cs.policies.CapabilityPolicy(tools=("fs.*",)),
        approval=ToolApprovalPolicy(),  # the default external-path guard
    ):
        with pytest.raises(cs.ToolDenied, match="outside the workspace"):
            _read_file(sneaky)
    with cs.using(
        execution=cs.policies.CapabilityPolicy(
            tools=("fs.*",), workspace_roots=(str(linked_workspace),)
        )
    ):
        with pytest.raises(cs.ToolDenied, match="outside the roots"):
            _read_file(sneaky)
