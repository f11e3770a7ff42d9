"""CapabilityPolicy: validation, narrowing, checks, codec, the stack."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import capscope as cs
from capscope.policies import ArgConstraint, CapabilityPolicy, Level, ToolCall
from capscope.stacks import execution


class TestConstruction:
    def test_defaults_are_unset(self):
        """Every field unset: the unrestricted root."""
        p = CapabilityPolicy()

        assert CapabilityPolicy.unrestricted() == p
        assert (None, None, None) == (
            p.tools,
            p.capabilities,
            p.side_effect_level,
        )
        assert p.allows_tool("x")
        assert p.allows_capability("a.b")
        assert p.allows_path("/anywhere", write=True)

    def test_iterables_become_tuples_and_levels_enums(self):
        """Any iterable of str is stored as a tuple; levels are str enums."""
        p = CapabilityPolicy(tools=["a", "b"], side_effect_level="network")

        assert ("a", "b") == p.tools
        assert Level.NETWORK is p.side_effect_level
        assert "network" == p.side_effect_level

    def test_empty_tuple_means_nothing(self):
        """() is not unset: no tool at all."""
        assert not CapabilityPolicy(tools=()).allows_tool("fs.read")

    @pytest.mark.parametrize(
        ("kwargs", "field"),
        [
            ({"tools": "fs.*"}, "tools"),
            ({"tools": ["fs.*", 3]}, "tools[1]"),
            ({"tools": ["fs.[x"]}, "tools[0]"),
            ({"tools": [""]}, "tools[0]"),
            ({"side_effect_level": "everything"}, "side_effect_level"),
            ({"recursion_limit": -1}, "recursion_limit"),
            ({"recursion_limit": True}, "recursion_limit"),
            ({"workspace_roots": ["relative/ws"]}, "workspace_roots[0]"),
            ({"read_only_roots": ["/ok", "nope"]}, "read_only_roots[1]"),
            ({"capabilities": {"workspace.read": ["x"]}}, "capabilities"),
            (
                {"capabilities": {"workspace": "read_text"}},
                "capabilities.workspace",
            ),
            ({"capabilities": ["workspace"]}, "capabilities"),
            (
                {"tool_arg_constraints": [{"tool": "x", "arg": "a"}]},
                "tool_arg_constraints[0]",
            ),
            (
                {
                    "tool_arg_constraints": [
                        {"tool": "x", "arg": "", "patterns": []}
                    ]
                },
                "tool_arg_constraints[0].arg",
            ),
            ({"tool_annotations": {"t": 1}}, "tool_annotations"),
        ],
    )
    def test_bad_input_names_the_field(self, kwargs, field):
        """Bad input is a PolicyConfigError naming the field, at construction."""
        with pytest.raises(cs.PolicyConfigError) as info:
            CapabilityPolicy(**kwargs)

        assert field == info.value.field

    def test_unknown_level_message(self):
        """The message lists the levels."""
        with pytest.raises(cs.PolicyConfigError, match="is not one of none"):
            CapabilityPolicy(side_effect_level="root")

    def test_roots_are_resolved(self, tmp_path):
        """Roots are stored as resolved real paths, deduplicated."""
        p = CapabilityPolicy(
            workspace_roots=[
                tmp_path / "ws" / ".." / "ws",
                str(tmp_path / "ws"),
            ]
        )

        assert (str((tmp_path / "ws").resolve()),) == p.workspace_roots


class TestIntersect:
    def test_unset_fields_inherit(self):
        """A request that sets nothing is the outer ceiling."""
        outer = CapabilityPolicy(
            tools=("fs.*",), side_effect_level="read_only", recursion_limit=3
        )

        assert outer == outer.intersect(CapabilityPolicy())

    def test_narrower_values_are_kept(self):
        """Each field may narrow."""
        outer = CapabilityPolicy(
            tools=("fs.*",),
            capabilities={"workspace": ("*",)},
            side_effect_level="workspace_write",
            recursion_limit=3,
        )
        inner = outer.intersect(
            CapabilityPolicy(
                tools=("fs.read", "fs.list*"),
                capabilities={"workspace": ("read_text",)},
                side_effect_level="read_only",
                recursion_limit=1,
            )
        )

        assert ("fs.read", "fs.list*") == inner.tools
        assert {"workspace": ("read_text",)} == inner.capabilities
        assert (Level.READ_ONLY, 1) == (
            inner.side_effect_level,
            inner.recursion_limit,
        )

    @pytest.mark.parametrize(
        ("outer", "requested", "field"),
        [
            ({"tools": ("fs.read",)}, {"tools": ("fs.*",)}, "tools"),
            ({"tools": ("fs.*",)}, {"tools": ("shell",)}, "tools"),
            ({"tools": ()}, {"tools": ("fs.read",)}, "tools"),
            (
                {"capabilities": {"workspace": ("read_text",)}},
                {"capabilities": {"process": ("exec",)}},
                "capabilities",
            ),
            (
                {"capabilities": {"workspace": ("read_text",)}},
                {"capabilities": {"workspace": ("*",)}},
                "capabilities.workspace",
            ),
            (
                {"side_effect_level": "read_only"},
                {"side_effect_level": "network"},
                "side_effect_level",
            ),
            (
                {"recursion_limit": 1},
                {"recursion_limit": 5},
                "recursion_limit",
            ),
            (
                {"workspace_roots": ("/srv/ws",)},
                {"workspace_roots": ("/srv",)},
                "workspace_roots",
            ),
            (
                {"workspace_roots": ("/srv/ws",)},
                {"workspace_roots": ("/srv/ws2",)},
                "workspace_roots",
            ),
            (
                {"read_only_roots": ("/srv/data",)},
                {"workspace_roots": ("/srv/data/x",)},
                "workspace_roots",
            ),
        ],
    )
    def test_widening_raises_naming_field_and_values(
        self, outer, requested, field
    ):
        """Asking for more is CeilingExceeded with the field and both values."""
        with pytest.raises(cs.CeilingExceeded) as info:
            CapabilityPolicy(**outer).intersect(CapabilityPolicy(**requested))

        assert field == info.value.field
        assert info.value.outer is not None
        assert info.value.requested is not None
        assert field in str(info.value)

    def test_read_only_root_inside_a_workspace_root(self):
        """A read-only root inside a workspace root is a narrowing."""
        outer = CapabilityPolicy(workspace_roots=("/srv/ws",))
        inner = outer.intersect(
            CapabilityPolicy(read_only_roots=("/srv/ws/docs",))
        )

        assert inner.allows_path("/srv/ws/docs/a", write=False)
        # A read-only root adds a readable area; it does not take writes away
        # from the workspace root it sits in (narrow workspace_roots for that).
        assert inner.allows_path("/srv/ws/docs/a", write=True)
        assert not inner.allows_path("/srv/other", write=False)

    def test_constraints_union_and_annotations_of_granted_tools(self):
        """Constraints add up; annotations survive only for granted tools."""
        a = ArgConstraint("shell", "cmd", ("git *",))
        b = ArgConstraint("fs.*", "path", ("/srv/*",))
        outer = CapabilityPolicy(
            tools=("fs.*", "shell"),
            tool_arg_constraints=[a],
            tool_annotations={
                "shell": {"kind": "exec"},
                "fs.read": {"kind": "r"},
            },
        )
        inner = outer.intersect(
            CapabilityPolicy(tools=("fs.read",), tool_arg_constraints=[b, a])
        )

        assert (a, b) == inner.tool_arg_constraints
        assert {"fs.read": {"kind": "r"}} == inner.tool_annotations

    def test_intersect_takes_only_policies(self):
        """A wrong type is a TypeError, not a silent allow."""
        with pytest.raises(TypeError):
            CapabilityPolicy().intersect({"tools": []})  # type: ignore[arg-type]


class TestPaths:
    @pytest.fixture
    def ws(self, tmp_path):
        root = tmp_path / "ws"
        (root / "sub").mkdir(parents=True)
        (tmp_path / "ws2").mkdir()
        (tmp_path / "outside").mkdir()
        return root

    def test_inside_and_dotdot(self, ws):
        """`..` is resolved before containment is judged."""
        p = CapabilityPolicy(workspace_roots=[ws])

        assert p.allows_path(ws / "sub" / "f", write=True)
        assert p.allows_path(ws / "sub" / ".." / "f", write=True)
        assert not p.allows_path(ws / ".." / "outside" / "f", write=False)

    def test_symlink_escape(self, ws, tmp_path):
        """A symlink inside the root that points outside is outside."""
        (ws / "link").symlink_to(tmp_path / "outside")
        p = CapabilityPolicy(workspace_roots=[ws])

        assert not p.allows_path(ws / "link" / "secret", write=False)

    def test_sibling_prefix(self, ws, tmp_path):
        """Root /x/ws does not contain /x/ws2 (component-wise)."""
        p = CapabilityPolicy(workspace_roots=[ws])

        assert not p.allows_path(tmp_path / "ws2" / "f", write=False)

    def test_trailing_slash_and_missing_target(self, ws):
        """A trailing slash and a path that does not exist yet both work."""
        p = CapabilityPolicy(workspace_roots=[f"{ws}/"])

        assert p.allows_path(f"{ws}/", write=True)
        assert p.allows_path(ws / "new" / "deeper" / "file.txt", write=True)

    def test_read_only_roots_refuse_writes(self, ws, tmp_path):
        """Read-only roots may be read, never written."""
        p = CapabilityPolicy(
            workspace_roots=[ws], read_only_roots=[tmp_path / "outside"]
        )

        assert p.allows_path(tmp_path / "outside" / "f", write=False)
        assert not p.allows_path(tmp_path / "outside" / "f", write=True)

    def test_relative_paths_resolve_against_the_cwd(self, ws, monkeypatch):
        """A relative path argument is judged where it would be opened."""
        monkeypatch.chdir(ws)
        p = CapabilityPolicy(workspace_roots=[ws])

        assert p.allows_path("sub/f", write=True)
        assert not p.allows_path("../ws2/f", write=True)


class TestChecks:
    def test_gate_order(self):
        """Tool, capability, side effect, paths, then argument constraints."""
        p = CapabilityPolicy(
            tools=("shell", "fs.*"),
            capabilities={"process": ("exec",), "workspace": ("read_text",)},
            side_effect_level="process_exec",
            workspace_roots=("/srv/ws",),
            tool_arg_constraints=[
                {"tool": "shell", "arg": "cmd", "patterns": ["git *"]}
            ],
        )

        def gate(**kwargs):
            result = p.check(ToolCall(**kwargs))
            return None if result is None else result[0]

        assert "tool_ceiling" == gate(tool="net.get")
        assert "capability_ceiling" == gate(
            tool="fs.write", capability="workspace.write_text"
        )
        assert "side_effect_ceiling" == gate(
            tool="shell", side_effect=Level.NETWORK
        )
        assert "workspace_boundary" == gate(
            tool="fs.read", paths=("/etc/passwd",)
        )
        assert "arg_constraint" == gate(
            tool="shell", arguments={"cmd": "rm -rf /"}
        )
        assert gate(tool="shell", arguments={"cmd": "git status"}) is None

    def test_capability_all_ops_and_exists(self):
        """`*` grants every op; exists is implied by read_text or list."""
        p = CapabilityPolicy(
            capabilities={"process": ("*",), "workspace": ("list",)}
        )

        assert p.allows_capability("process.exec")
        assert p.allows_capability("workspace.exists")
        assert not p.allows_capability("workspace.read_text")
        assert not p.allows_capability("llm.call")

    def test_non_string_constrained_argument_fails_closed(self):
        """A constrained argument that is not a string breaks the constraint."""
        p = CapabilityPolicy(
            tool_arg_constraints=[
                {"tool": "*", "arg": "path", "patterns": ["/srv/*"]}
            ]
        )

        assert p.violated_constraint("t", {"path": ["/srv/a"]}) is not None
        assert p.violated_constraint("t", {"path": Path("/srv/a")}) is None
        assert p.violated_constraint("t", {"other": 1}) is None

    def test_unknown_level_in_a_check_is_an_error(self):
        """A tool declaring a level that does not exist is refused loudly."""
        with pytest.raises(cs.PolicyConfigError):
            CapabilityPolicy(side_effect_level="read_only").allows_level(
                "root"
            )


class TestToWorker:
    def test_takes_one_hop(self):
        """Each worker hop takes one from recursion_limit; 0 refuses."""
        p = CapabilityPolicy(recursion_limit=1)

        assert 0 == p.to_worker().recursion_limit
        with pytest.raises(cs.CeilingExceeded, match="no worker depth"):
            p.to_worker().to_worker()
        assert CapabilityPolicy().to_worker() == CapabilityPolicy()


class TestStack:
    def test_push_narrows(self):
        """Pushing onto "execution" stores outer ∩ new; widening raises."""
        with execution.pushed(
            CapabilityPolicy(tools=("fs.*",), recursion_limit=2)
        ):
            with execution.pushed(
                CapabilityPolicy(tools=("fs.read",))
            ) as stored:
                assert ("fs.read",) == stored.tools
                assert 2 == stored.recursion_limit
            with pytest.raises(cs.CeilingExceeded, match="tools"):
                execution.push(CapabilityPolicy(tools=("shell",)))
            assert 1 == execution.depth

    def test_wrong_type_is_refused(self):
        """Only CapabilityPolicy goes on the execution stack."""
        with pytest.raises(TypeError, match="CapabilityPolicy"):
            execution.push("everything")  # type: ignore[arg-type]

    def test_worker_gets_the_parents_ceiling_as_one_fresh_frame(self):
        """TOP inheritance with one worker hop taken."""
        with (
            execution.pushed(
                CapabilityPolicy(tools=("fs.*",), recursion_limit=3)
            ),
            execution.pushed(CapabilityPolicy(tools=("fs.read",))),
        ):
            worker = cs.Scope.capture_inherited()

        (only,) = worker[execution]
        assert ("fs.read",) == only.tools
        assert 2 == only.recursion_limit

    def test_worker_push_cannot_widen(self):
        """A spawn push asking for more than the parent raises in the parent."""
        with execution.pushed(CapabilityPolicy(tools=("fs.read",))):
            worker = cs.Scope.capture_inherited()
            with pytest.raises(cs.CeilingExceeded):
                worker.pushing({execution: CapabilityPolicy(tools=("fs.*",))})

    def test_no_depth_left_refuses_capture(self):
        """recursion_limit 0: no worker can be made."""
        with (
            execution.pushed(CapabilityPolicy(recursion_limit=0)),
            pytest.raises(cs.CeilingExceeded, match="recursion_limit"),
        ):
            cs.Scope.capture_inherited()

    def test_codec_is_the_policys(self):
        """The stack's codec is to_dict / from_dict."""
        p = CapabilityPolicy(tools=("fs.*",))

        assert p == execution.codec.from_data(execution.codec.to_data(p))


class TestCodec:
    def test_round_trip(self, tmp_path):
        """Every field survives to_dict / from_dict."""
        p = CapabilityPolicy(
            tools=("fs.*",),
            capabilities={"workspace": ("read_text", "list")},
            workspace_roots=[tmp_path],
            read_only_roots=["/usr/share"],
            side_effect_level="workspace_write",
            recursion_limit=2,
            tool_arg_constraints=[ArgConstraint("shell", "cmd", ("git *",))],
            tool_annotations={"fs.read": {"kind": "read"}},
        )

        assert p == CapabilityPolicy.from_dict(p.to_dict())

    def test_unknown_key_names_the_path(self):
        """from_dict refuses unknown keys, naming the key path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            CapabilityPolicy.from_dict({"toolz": ["x"]})

        assert "execution.toolz" == info.value.field

    def test_nested_errors_name_the_path(self):
        """Errors inside lists name the index, under the given path."""
        with pytest.raises(cs.PolicyConfigError) as info:
            CapabilityPolicy.from_dict(
                {
                    "tool_arg_constraints": [
                        {"tool": "x", "arg": "a", "patterns": [1]}
                    ]
                },
                path="org.execution",
            )

        assert (
            "org.execution.tool_arg_constraints[0].patterns[0]"
            == info.value.field
        )

    def test_not_a_table(self):
        """Data that is not a mapping is refused."""
        with pytest.raises(cs.PolicyConfigError, match="table"):
            CapabilityPolicy.from_dict(["tools"])


# -- properties --------------------------------------------------------------

TOOLS = ["fs.read", "fs.write", "fs.list", "shell", "net.get"]
GLOBS = ["fs.*", "fs.read", "fs.write", "shell", "*", "net.*", "fs.re*"]
LEVELS = list(Level)
ROOTS = ["/srv", "/srv/ws", "/srv/ws/sub", "/srv/ws2", "/opt"]
PATHS = [
    "/srv/ws/a",
    "/srv/ws/sub/b",
    "/srv/ws2/c",
    "/opt/d",
    "/srv/e",
    "/etc/f",
]

policies = st.builds(
    CapabilityPolicy,
    tools=st.none()
    | st.lists(st.sampled_from(GLOBS), max_size=3, unique=True),
    capabilities=st.none()
    | st.dictionaries(
        st.sampled_from(["workspace", "process"]),
        st.lists(
            st.sampled_from(["read_text", "list", "exec", "*"]),
            max_size=2,
            unique=True,
        ),
        max_size=2,
    ),
    workspace_roots=st.none() | st.lists(st.sampled_from(ROOTS), max_size=2),
    read_only_roots=st.none() | st.lists(st.sampled_from(ROOTS), max_size=2),
    side_effect_level=st.none() | st.sampled_from(LEVELS),
    recursion_limit=st.none() | st.integers(0, 4),
)


def _allows(p: CapabilityPolicy, probe) -> bool:
    kind, value = probe
    if kind == "tool":
        return p.allows_tool(value)
    if kind == "cap":
        return p.allows_capability(value)
    if kind == "level":
        return p.allows_level(value)
    if kind == "read":
        return p.allows_path(value, write=False)
    return p.allows_path(value, write=True)


probes = st.one_of(
    st.tuples(st.just("tool"), st.sampled_from(TOOLS)),
    st.tuples(
        st.just("cap"),
        st.sampled_from(
            [
                "workspace.read_text",
                "workspace.exists",
                "process.exec",
                "llm.call",
            ]
        ),
    ),
    st.tuples(st.just("level"), st.sampled_from(LEVELS)),
    st.tuples(st.sampled_from(["read", "write"]), st.sampled_from(PATHS)),
)


class TestProperties:
    @settings(max_examples=300, deadline=None)
    @given(policies)
    def test_self_intersection_is_identity(self, p):
        """p ∩ p == p."""
        assert p == p.intersect(p)

    @settings(max_examples=300, deadline=None)
    @given(policies, policies, st.lists(probes, min_size=1, max_size=8))
    def test_never_wider_than_either_side(self, outer, requested, probes_):
        """Whatever the result allows, the outer ceiling allows too, and so
        does the request wherever the request set the field."""
        try:
            result = outer.intersect(requested)
        except cs.CeilingExceeded:
            return
        for probe in probes_:
            if _allows(result, probe):
                assert _allows(outer, probe), probe
                assert _allows(requested, probe) or _unset_for(
                    requested, probe
                ), probe

    @settings(max_examples=200, deadline=None)
    @given(
        st.lists(policies, min_size=1, max_size=5),
        st.lists(probes, max_size=8),
    )
    def test_pushes_never_widen(self, pushes, probes_):
        """Along any sequence of pushes the effective ceiling only narrows."""
        tokens = []
        try:
            previous = None
            for p in pushes:
                try:
                    tokens.append(execution.push(p))
                except cs.CeilingExceeded:
                    continue
                top = execution.top()
                if previous is not None:
                    for probe in probes_:
                        if _allows(top, probe):
                            assert _allows(previous, probe), probe
                previous = top
        finally:
            for token in reversed(tokens):
                execution.pop(token)

    @settings(max_examples=200, deadline=None)
    @given(policies)
    def test_codec_round_trip(self, p):
        """from_dict(to_dict(p)) == p."""
        assert p == CapabilityPolicy.from_dict(p.to_dict())


def _unset_for(p: CapabilityPolicy, probe) -> bool:
    kind, _ = probe
    return {
        "tool": p.tools is None,
        "cap": p.capabilities is None,
        "level": p.side_effect_level is None,
        # Reads draw on both root fields, writes on workspace_roots only; a
        # field the request leaves unset comes from the outer ceiling.
        "read": p.workspace_roots is None or p.read_only_roots is None,
        "write": p.workspace_roots is None,
    }[kind]


def test_env_home_expansion(monkeypatch, tmp_path):
    """`~` in a root expands to the home directory."""
    monkeypatch.setenv("HOME", str(tmp_path))

    assert (str(tmp_path.resolve()),) == CapabilityPolicy(
        workspace_roots=["~"]
    ).workspace_roots


# -- physical_path: the kernel's answer, else realpath's ------------------------

_NAMES = st.sampled_from(["a", "b", "l1", "l2", "..", ".", "nope"])


@settings(max_examples=300, deadline=None)
@given(
    links=st.lists(
        st.tuples(
            st.sampled_from(["l1", "a/l2", "b/l3"]),
            st.sampled_from(
                ["a", "../b", "/", "a/..", "l1", "nope/x", "b/l3", "a/l2/.."]
            ),
        ),
        max_size=3,
        unique_by=lambda link: link[0],
    ),
    parts=st.lists(_NAMES, min_size=1, max_size=6),
    absolute=st.booleans(),
)
def test_physical_path_is_realpath(tmp_path_factory, links, parts, absolute):
    """
    Whatever the tree (symlinks relative, absolute, looping, dangling) and
    the path (`..`, `.`, missing parts), `physical_path` names the file
    `realpath` does: the kernel's answer for what exists, `realpath`'s for
    the rest.
    """
    from capscope.policies._common import physical_path

    root = tmp_path_factory.mktemp("tree").resolve()
    for folder in ("a", "b", "a/c"):
        (root / folder).mkdir()
    (root / "a" / "file").write_text("x")
    for where, target in links:
        (root / where).symlink_to(target)
    path = "/".join(parts)
    with contextlib.chdir(root):
        given_path = str(root / path) if absolute else path
        assert physical_path(given_path) == os.path.realpath(given_path)


def test_physical_path_of_a_fifo_does_not_block(tmp_path):
    """A FIFO is named without being opened for reading (`O_PATH`)."""
    from capscope.policies._common import physical_path

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    assert physical_path(str(fifo)) == os.path.realpath(fifo)


@pytest.mark.parametrize("value", [b"/tmp/../etc/hosts", 3, {"p": "/etc"}])
def test_a_path_argument_that_is_not_a_path_is_refused_with_a_decision(value):
    """Not a path (bytes, a number, a mapping): the dry run says deny, as
    the call is refused, with a decision and its event (it said allow)."""

    @cs.requires_tool("fs.read", side_effect="read_only", paths=("path",))
    def read(path):
        return "read"

    seen = []
    unsubscribe = cs.events.subscribe(seen.append)
    try:
        with cs.using(execution=CapabilityPolicy(tools=("*",))):
            dry = cs.check_tool(read, value)
            with pytest.raises(cs.ToolDenied) as refused:
                read(value)
    finally:
        unsubscribe()
    assert dry.action == cs.Action.DENY
    assert dry.gate == cs.Gate.WORKSPACE_BOUNDARY
    assert refused.value.decision.gate == cs.Gate.WORKSPACE_BOUNDARY
    assert [d.action for d in seen if d.tool == "fs.read"] == [cs.Action.DENY]
