"""Policy files: TOML and JSON, layering, errors naming file, line and key."""

from __future__ import annotations

import json
import pickle
import tomllib
from pathlib import Path

import attrs
import jsonschema
import pytest

import capscope as cs
from capscope._registry import BUILTIN
from capscope.policies import (
    ApprovalRule,
    AutonomyPolicy,
    CapabilityPolicy,
    CommandPolicy,
    DynamicPermissionPolicy,
    LlmRenderContext,
    RuntimeContextOverlay,
    ToolApprovalPolicy,
)

FULL_TOML = """\
schema = 1

[execution]
tools = ["fs.*", "shell"]
side_effect_level = "workspace_write"
workspace_roots = ["/srv/ws"]
recursion_limit = 3

[[execution.tool_arg_constraints]]
tool = "fs.write"
arg = "path"
patterns = ["/srv/ws/*"]

[[approval.rules]]
action = "ask"
tool = "fs.write*"

[[approval.rules]]
action = "deny"
tool = "shell"
reason = "no shell here"

[approval]
timeout = 5.0

[command]
allow = ["git status*", "pytest *"]
default = "deny"

[permissions]
deny = ["net.*"]

[overlay]
run_id = "run-1"
attributes = { team = "infra" }

[autonomy]
tier = "act_with_approval"

[render]
provider = "acme"
model = "m-1"
"""


def expected_values() -> dict[str, object]:
    return {
        "execution": CapabilityPolicy(
            tools=("fs.*", "shell"),
            side_effect_level="workspace_write",
            workspace_roots=("/srv/ws",),
            recursion_limit=3,
            tool_arg_constraints=(
                {"tool": "fs.write", "arg": "path", "patterns": ["/srv/ws/*"]},
            ),
        ),
        "approval": ToolApprovalPolicy(
            rules=(
                ApprovalRule("ask", tool="fs.write*"),
                ApprovalRule("deny", tool="shell", reason="no shell here"),
            ),
            timeout=5.0,
        ),
        "command": CommandPolicy(
            allow=("git status*", "pytest *"), default="deny"
        ),
        "permissions": DynamicPermissionPolicy(deny=("net.*",)),
        "overlay": RuntimeContextOverlay(
            run_id="run-1", attributes={"team": "infra"}
        ),
        "autonomy": AutonomyPolicy(tier="act_with_approval"),
        "render": LlmRenderContext(provider="acme", model="m-1"),
    }


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


# -- loading ------------------------------------------------------------------


def test_toml_file_fills_every_stack_that_travels(tmp_path: Path) -> None:
    scope = cs.load_policy_file(write(tmp_path, "p.toml", FULL_TOML))
    for name, value in expected_values().items():
        assert scope[name] == (value,), name
    assert scope["connector"] == ()


def test_json_file_is_the_same_document(tmp_path: Path) -> None:
    toml_scope = cs.load_policy_file(write(tmp_path, "p.toml", FULL_TOML))
    data = {
        name: values[0].to_dict()
        for name in expected_values()
        if (values := toml_scope[name])
    }
    json_scope = cs.load_policy_file(
        write(tmp_path, "p.json", json.dumps(data))
    )
    for name, value in expected_values().items():
        assert json_scope[name] == (value,), name


def test_the_schema_key_is_optional_and_defaults_to_the_current(
    tmp_path: Path,
) -> None:
    plain = cs.load_policy_file(
        write(tmp_path, "a.toml", '[execution]\ntools = ["x"]\n')
    )
    versioned = cs.load_policy_file(
        write(tmp_path, "b.toml", 'schema = 1\n[execution]\ntools = ["x"]\n')
    )
    assert plain["execution"] == versioned["execution"]


@pytest.mark.parametrize("version", ["2", "0", "true", '"1"'])
def test_an_unknown_schema_version_is_an_error(
    tmp_path: Path, version: str
) -> None:
    path = write(tmp_path, "p.toml", f"schema = {version}\n")
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "schema"
    assert info.value.line == 1
    assert "schema version" in info.value.message


def test_a_loaded_scope_enforces(tmp_path: Path) -> None:
    @cs.requires_tool("fs.read", side_effect="read_only")
    def read() -> str:
        return "text"

    @cs.requires_tool("net.get", side_effect="network")
    def fetch() -> str:
        return "page"

    scope = cs.load_policy_file(
        write(tmp_path, "p.toml", '[execution]\ntools = ["fs.*"]\n')
    )
    with scope.installed():
        assert read() == "text"
        with pytest.raises(cs.ToolDenied) as info:
            fetch()
    assert info.value.decision is not None
    assert info.value.decision.gate is cs.Gate.TOOL_CEILING
    with pytest.raises(cs.NoPolicyInstalled):
        read()


def test_missing_file_is_an_os_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        cs.load_policy_file(tmp_path / "nope.toml")


def test_unknown_suffix(tmp_path: Path) -> None:
    path = write(tmp_path, "p.yaml", "execution: {}\n")
    with pytest.raises(cs.PolicyFileError, match=r"use \.toml or \.json"):
        cs.load_policy_file(path)


def test_no_paths_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        cs.load_policy_files()


# -- errors name the file, the line and the key path ---------------------------


def test_toml_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", '[execution]\ntools = ["fs.*"\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.file == str(path)
    assert info.value.line == 2
    assert str(info.value).startswith(f"{path}:2: not valid TOML")
    path.write_text(
        '[execution]\ntools = ["fs.*"]\nside_effect_level read_only\n\n'
    )
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.line == 3


def test_json_syntax_error_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '{\n  "execution": {\n    "tools": [,]\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.line == 3
    assert "not valid JSON" in info.value.message


def test_json_top_level_must_be_an_object(tmp_path: Path) -> None:
    path = write(tmp_path, "p.json", '["execution"]')
    with pytest.raises(cs.PolicyFileError, match="JSON object"):
        cs.load_policy_file(path)


def test_a_bad_value_names_key_path_and_line_in_toml(tmp_path: Path) -> None:
    text = (
        "[execution]\n"
        'tools = ["fs.*"]\n'
        "\n"
        "[[approval.rules]]\n"
        'action = "ask"\n'
        'tool = "fs.*"\n'
        "\n"
        "[[approval.rules]]\n"
        'tool = "shell"\n'
        'action = "aprove"\n'
    )
    path = write(tmp_path, "p.toml", text)
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    err = info.value
    assert err.field == "approval.rules[1].action"
    assert err.line == 10
    assert "'aprove' is not one of allow, ask, deny" in err.message
    assert str(err).startswith(f"{path}:10: approval.rules[1].action: ")
    assert isinstance(err, cs.PolicyConfigError)
    assert isinstance(err, ValueError)


def test_a_bad_list_item_names_its_index_and_line(tmp_path: Path) -> None:
    text = (
        '[execution]\nside_effect_level = "read_only"\ntools = ["fs.*", ""]\n'
    )
    path = write(tmp_path, "p.toml", text)
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "execution.tools[1]"
    assert info.value.line == 3


def test_a_bad_value_names_key_path_and_line_in_json(tmp_path: Path) -> None:
    text = json.dumps(
        {
            "command": {"allow": ["ls"]},
            "execution": {"tools": ["fs.*"], "side_effect_level": "lots"},
        },
        indent=2,
    )
    path = write(tmp_path, "p.json", text)
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "execution.side_effect_level"
    lines = text.splitlines()
    assert '"side_effect_level"' in lines[info.value.line - 1]


def test_an_unknown_key_is_an_error_not_ignored(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", '[execution]\ntool = ["fs.*"]\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "execution.tool"
    assert info.value.line == 2
    assert "unknown key 'tool'" in info.value.message


def test_an_unknown_table_names_the_registered_ones(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", '[executoin]\ntools = ["fs.*"]\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "executoin"
    assert info.value.line == 1
    assert "execution" in info.value.message


@pytest.mark.parametrize(
    ("table", "kind"),
    [("connector", "without a codec"), ("trusted_depth", "a counter")],
)
def test_stacks_that_cannot_be_set_from_a_file(
    tmp_path: Path, table: str, kind: str
) -> None:
    path = write(tmp_path, "p.toml", f"[{table}]\n")
    with pytest.raises(cs.PolicyFileError, match=kind) as info:
        cs.load_policy_file(path)
    assert info.value.field == table


def test_a_table_that_is_not_a_table(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", 'execution = "everything"\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "execution"
    assert info.value.line == 1


def test_callables_cannot_come_from_a_file(tmp_path: Path) -> None:
    path = write(tmp_path, "p.toml", '[approval]\nhandler = "os.system"\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field.startswith("approval.handler")


def test_policy_file_error_pickles() -> None:
    err = cs.PolicyFileError("a.toml", 3, "execution.tools", "bad")
    copy = pickle.loads(pickle.dumps(err))  # noqa: S301 - our own bytes
    assert (copy.file, copy.line, copy.field, copy.message) == (
        "a.toml",
        3,
        "execution.tools",
        "bad",
    )
    assert str(copy) == "a.toml:3: execution.tools: bad"


# -- layering -------------------------------------------------------------------


def test_later_files_narrow_earlier_ones(tmp_path: Path) -> None:
    org = write(
        tmp_path, "org.toml", '[execution]\ntools = ["fs.*", "net.*"]\n'
    )
    project = write(
        tmp_path, "project.toml", '[execution]\ntools = ["fs.*"]\n'
    )
    scope = cs.load_policy_files(org, project)
    frames = scope["execution"]
    assert len(frames) == 2
    assert frames[-1].allows_tool("fs.read")
    assert not frames[-1].allows_tool("net.get")


def test_a_later_file_cannot_widen_and_both_are_named(tmp_path: Path) -> None:
    org = write(
        tmp_path,
        "org.toml",
        '[execution]\ntools = ["fs.*"]\nside_effect_level = "read_only"\n',
    )
    project = write(
        tmp_path,
        "project.toml",
        '[execution]\nside_effect_level = "network"\n',
    )
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_files(org, project)
    err = info.value
    assert err.file == str(project)
    assert err.line == 2
    assert err.field == "execution.side_effect_level"
    assert str(org) in err.message
    assert "network" in err.message
    assert isinstance(err.__cause__, cs.CeilingExceeded)


def test_the_earlier_file_that_set_the_limit_is_named(tmp_path: Path) -> None:
    org = write(tmp_path, "org.toml", '[execution]\ntools = ["fs.*"]\n')
    user = write(
        tmp_path, "user.toml", '[execution]\nside_effect_level = "network"\n'
    )
    project = write(
        tmp_path, "project.toml", '[execution]\ntools = ["net.*"]\n'
    )
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_files(org, user, project)
    assert info.value.file == str(project)
    assert str(org) in info.value.message
    assert str(user) not in info.value.message


def test_an_autonomy_tier_cannot_rise_in_a_later_file(tmp_path: Path) -> None:
    org = write(tmp_path, "org.toml", '[autonomy]\ntier = "suggest"\n')
    project = write(
        tmp_path, "project.json", '{"autonomy": {"tier": "act_auto"}}'
    )
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_files(org, project)
    assert info.value.file == str(project)
    assert str(org) in info.value.message


def test_a_command_deny_in_any_file_wins(tmp_path: Path) -> None:
    org = write(
        tmp_path,
        "org.toml",
        '[command]\ndefault = "allow"\ndeny_patterns = ["git push*"]\n',
    )
    project = write(
        tmp_path,
        "project.toml",
        '[command]\nallow = ["git *"]\ndefault = "deny"\n',
    )
    scope = cs.load_policy_files(org, project)
    assert scope.run(cs.check_command, "git status").action is cs.Action.ALLOW
    assert (
        scope.run(cs.check_command, "git push origin").action is cs.Action.DENY
    )


def test_a_permission_deny_in_any_file_wins(tmp_path: Path) -> None:
    @cs.requires_tool("net.get", side_effect="network")
    def fetch() -> str:
        return "page"

    org = write(tmp_path, "org.toml", '[permissions]\ndeny = ["net.*"]\n')
    project = write(
        tmp_path,
        "project.toml",
        '[execution]\ntools = ["*"]\n[permissions]\nallow = ["net.*"]\n',
    )
    scope = cs.load_policy_files(org, project)
    decision = scope.run(cs.check_tool, fetch)
    assert decision.action is cs.Action.DENY
    assert decision.gate is cs.Gate.DYNAMIC_PERMISSION


def test_load_policy_data_names_its_source() -> None:
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_data({"execution": {"tools": "fs.*"}}, source="inline")
    assert info.value.file == "inline"
    assert info.value.line is None
    assert info.value.field == "execution.tools"


# -- third-party stacks ----------------------------------------------------------


@pytest.fixture
def tenant() -> object:
    def from_data(data: object) -> str:
        if not isinstance(data, dict) or set(data) != {"name"}:
            msg = f"expected {{name = ...}}, got {data!r}"
            raise ValueError(msg)
        return str(data["name"])

    def narrow(outer: str | None, new: str) -> str:
        if outer is not None and outer != new:
            raise cs.CeilingExceeded("name", outer, new)
        return new

    stack: cs.AmbientStack[str] = cs.AmbientStack(
        "tenant",
        inherit=cs.Inherit.COPY,
        narrow=narrow,
        codec=(lambda name: {"name": name}, from_data),
    )
    cs.registry.register(stack)
    yield stack
    cs.registry.unregister(stack)


def test_a_third_party_table_goes_through_its_codec(
    tmp_path: Path, tenant: cs.AmbientStack[str]
) -> None:
    scope = cs.load_policy_file(
        write(tmp_path, "p.toml", '[tenant]\nname = "acme"\n')
    )
    assert scope[tenant] == ("acme",)


def test_a_third_party_codec_error_names_the_table(
    tmp_path: Path, tenant: cs.AmbientStack[str]
) -> None:
    path = write(tmp_path, "p.toml", '[tenant]\nname = "acme"\nextra = 1\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_file(path)
    assert info.value.field == "tenant"
    assert "ValueError" in info.value.message
    assert tenant.depth == 0


def test_a_third_party_narrow_layers(
    tmp_path: Path, tenant: cs.AmbientStack[str]
) -> None:
    a = write(tmp_path, "a.toml", '[tenant]\nname = "acme"\n')
    b = write(tmp_path, "b.toml", '[tenant]\nname = "other"\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_files(a, b)
    assert info.value.file == str(b)
    assert str(a) in info.value.message


# -- the JSON Schema ----------------------------------------------------------------


def builtin_stacks() -> list[object]:
    return [s for s in cs.registry if cs.registry.origin(s.name) == BUILTIN]


def shipped_schema() -> dict[str, object]:
    path = Path(cs.__file__).parent / "policy.schema.json"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def test_the_shipped_schema_is_the_generated_one() -> None:
    # Regenerate with: capscope schema --builtin > capscope/policy.schema.json
    assert shipped_schema() == cs.policy_schema(builtin_stacks())


def test_the_schema_is_a_valid_json_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(shipped_schema())


def test_the_full_document_validates(tmp_path: Path) -> None:
    jsonschema.validate(tomllib.loads(FULL_TOML), shipped_schema())


def test_the_schema_covers_every_data_field() -> None:
    defs = shipped_schema()["$defs"]
    assert isinstance(defs, dict)
    for cls in (
        CapabilityPolicy,
        ToolApprovalPolicy,
        ApprovalRule,
        CommandPolicy,
        DynamicPermissionPolicy,
        RuntimeContextOverlay,
        AutonomyPolicy,
        LlmRenderContext,
    ):
        callables = {
            "handler",
            "outer_handlers",
            "consent",
            "pre",
            "post",
            "on_escalation",
        }
        fields = {f.name for f in attrs.fields(cls) if f.init} - callables
        assert set(defs[cls.__name__]["properties"]) == fields, cls


@pytest.mark.parametrize(
    "document",
    [
        {"execution": {"tools": "fs.*"}},
        {"execution": {"side_effect_level": "lots"}},
        {"execution": {"tool": ["fs.*"]}},
        {"approval": {"rules": [{"tool": "x"}]}},
        {"command": {"default": "maybe"}},
        {"autonomy": {"tier": "godmode"}},
        {"schema": 2},
    ],
)
def test_schema_and_loader_both_refuse(document: dict[str, object]) -> None:
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, shipped_schema())
    with pytest.raises(cs.PolicyConfigError):
        cs.load_policy_data(document)


@pytest.mark.parametrize(
    "document",
    [
        {"permissions": {"allow": {"fs.write": {"path": ["/ws/*"]}}}},
        {"permissions": {"deny": [{"tool": "net.*", "matcher": False}]}},
        {"permissions": {"allow": ["fs.*"], "deny": {"net.*": True}}},
        {"execution": {"capabilities": {"workspace": ["read_text"]}}},
        {"approval": {"timeout": None, "repeat_limit": 3}},
        {"autonomy": {"action_tiers": {"deploy": "suggest"}}},
    ],
)
def test_schema_and_loader_both_accept(document: dict[str, object]) -> None:
    jsonschema.validate(document, shipped_schema())
    cs.load_policy_data(document)


def test_a_json_file_may_name_its_schema(tmp_path: Path) -> None:
    document = {
        "$schema": "https://capscope.dev/schema/policy-1.json",
        "execution": {"tools": ["fs.*"]},
    }
    jsonschema.validate(document, shipped_schema())
    scope = cs.load_policy_file(
        write(tmp_path, "p.json", json.dumps(document))
    )
    assert scope["execution"][0].tools == ("fs.*",)
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_data({"$schema": 1})
    assert info.value.field == "$schema"


def test_a_third_party_field_is_not_prefixed_twice(
    tmp_path: Path, tenant: cs.AmbientStack[str]
) -> None:
    def narrow(outer: str | None, new: str) -> str:
        if outer is not None and outer != new:
            raise cs.CeilingExceeded("tenant.name", outer, new)
        return new

    tenant.narrow = narrow
    a = write(tmp_path, "a.toml", '[tenant]\nname = "acme"\n')
    b = write(tmp_path, "b.toml", '[tenant]\nname = "other"\n')
    with pytest.raises(cs.PolicyFileError) as info:
        cs.load_policy_files(a, b)
    assert info.value.field == "tenant.name"
    assert info.value.line == 2


class TestAttributionIsFixedByLayers:
    """A later file may add attribution, never change it (issue 14)."""

    @pytest.mark.parametrize(
        ("later", "field"),
        [
            ('run_id = "r2"', "overlay.run_id"),
            ('worker_id = "evil"', "overlay.worker_id"),
            ('workflow_id = "x"', "overlay.workflow_id"),
            ("attributes = { team = 'red' }", "overlay.attributes['team']"),
        ],
    )
    def test_a_later_file_cannot_change_attribution(
        self, tmp_path, later, field
    ):
        first = tmp_path / "org.toml"
        first.write_text(
            '[overlay]\nrun_id = "r1"\nworker_id = "w1"\n'
            'workflow_id = "wf"\nattributes = { team = "blue" }\n'
        )
        second = tmp_path / "project.toml"
        second.write_text(f"[overlay]\n{later}\n")

        with pytest.raises(cs.PolicyFileError) as raised:
            cs.load_policy_files(first, second)

        assert (str(second), field) == (raised.value.file, raised.value.field)
        assert str(first) in raised.value.message

    def test_a_later_file_may_add_attribution(self, tmp_path):
        first = tmp_path / "org.toml"
        first.write_text('[overlay]\nrun_id = "r1"\n')
        second = tmp_path / "project.toml"
        second.write_text(
            '[overlay]\nrun_id = "r1"\nworker_id = "w1"\n'
            'attributes = { team = "blue" }\n'
        )

        with cs.load_policy_files(first, second).installed():
            overlay = cs.current_overlay()

        assert ("r1", "w1", {"team": "blue"}) == (
            overlay.run_id,
            overlay.worker_id,
            dict(overlay.attributes),
        )


@pytest.mark.parametrize(
    ("table", "field"),
    [
        ("approval", "handler"),
        ("command", "consent"),
        ("command", "pre"),
        ("permissions", "on_escalation"),
    ],
)
def test_a_handler_named_in_a_file_says_handlers_are_set_in_code(table, field):
    """`handler = "mymod:approve"` is not imported (a file never names code
    to run): the error says where handlers are set."""
    with pytest.raises(cs.PolicyConfigError) as raised:
        cs.load_policy_data({table: {field: "mymod:approve"}})

    message = str(raised.value)
    assert f"{table}.{field}" in message
    assert "set in code" in message
