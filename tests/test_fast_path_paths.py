"""
The fast path for tools with `paths=` (issue 16): under the frames a call
was allowed in, a later call whose paths, resolved again, have the same
forms (as spelled and as the kernel resolves them) is allowed without the
gates. Nothing about the file system is kept between calls, so a symlink
re-pointed, a file replaced, a working directory changed or a frame pushed
between two calls must give the gates' verdict, never the cached one.

A differential test runs random frames (roots, approval guards, path
rules, permission frames) and random calls interleaved with random changes
to a small file system (symlinks re-pointed inside and outside the
workspace, the working directory moved), each call twice, and compares
each outcome with `check_tool`'s (the gates, which never take a fast path).
Then the ways the arguments reach the tool: positional, keyword, keyword
only, a path object, a method, a path given twice.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import capscope as cs
from capscope.audit import Recorder
from capscope.policies import (
    ApprovalRule,
    CapabilityPolicy,
    DynamicPermissionPolicy,
    PermissionRule,
    ToolApprovalPolicy,
)


@cs.requires_tool("fs.read", side_effect="read_only", paths=("path",))
def fs_read(path: str) -> str:
    return path


@cs.requires_tool("fs.write", side_effect="workspace_write", paths=("path",))
def fs_write(path: str, text: str = "") -> str:
    return path


@cs.requires_tool(
    "fs.copy", side_effect="workspace_write", paths=("src", "dst")
)
def fs_copy(src: str, *, dst: str) -> str:
    return dst


class Files:
    @cs.requires_tool("fs.stat", side_effect="read_only", paths=("path",))
    def stat(self, path: str) -> str:
        return path


def keeper(tool: object) -> object:
    return type(tool)._capscope_keeper


# -- a small file system, rebuilt per example -------------------------------

#: Links under the workspace, and where each may point.
LINKS = ("ws/link", "ws/sub/up")
TARGETS = ("ws/sub", "ws", "out", "out/deep", "ws/missing")
#: The paths calls name, relative to the sandbox (or to the cwd: "rel:").
NAMES = (
    "ws/a.txt",
    "ws/sub/b.txt",
    "ws/link/b.txt",
    "ws/link/deep/c.txt",
    "ws/link/.env",
    "ws/sub/up/a.txt",
    "ws/../out/a.txt",
    "out/a.txt",
    "ws/.env",
    "ws/new.txt",
    "ws/link/new.txt",
    "rel:a.txt",
    "rel:../out/a.txt",
)
CWDS = ("ws", "out", "ws/sub")


def build(root: Path) -> None:
    for d in ("ws/sub", "out/deep", "ws/deep"):
        (root / d).mkdir(parents=True, exist_ok=True)
    for f in (
        "ws/a.txt",
        "ws/sub/b.txt",
        "ws/sub/.env",
        "ws/.env",
        "out/a.txt",
        "out/b.txt",
        "out/.env",
        "out/deep/c.txt",
        "ws/deep/c.txt",
        "ws/sub/a.txt",
    ):
        (root / f).touch()
    for link in LINKS:
        (root / link).symlink_to(root / "ws/sub")


def point(root: Path, link: str, target: str) -> None:
    path = root / link
    tmp = path.with_name(path.name + ".new")
    tmp.symlink_to(root / target)
    tmp.replace(path)  # atomically, as an attacker would


def name(root: Path, spelled: str) -> str:
    return spelled[4:] if spelled.startswith("rel:") else str(root / spelled)


# -- frames -------------------------------------------------------------------

roots = st.sampled_from([("ws",), ("ws", "out"), ("ws/sub",), ()])
ceilings = st.builds(
    lambda write, read: {"write": write, "read": read},
    st.none() | roots,  # None: the external-path guard measures from the cwd
    st.none() | roots,
)
approvals = st.none() | st.builds(
    lambda rules, sensitive, external, ext_roots: {
        "rules": rules,
        "allow_sensitive_paths": sensitive,
        "allow_external_paths": external,
        "external_roots": ext_roots,
    },
    st.lists(
        st.builds(
            ApprovalRule,
            st.sampled_from(["allow", "deny"]),
            tool=st.sampled_from(["fs.*", "fs.read", "fs.write"]),
            path=st.none() | st.sampled_from(["*/out/*", "*.env", "*/b.txt"]),
        ),
        max_size=2,
    ),
    st.booleans(),
    st.booleans(),
    st.none() | st.just(("out",)),
)
permissions = st.none() | st.builds(
    lambda deny, allow: DynamicPermissionPolicy(deny=deny, allow=allow),
    st.lists(
        st.builds(
            PermissionRule,
            st.sampled_from(["fs.*", "fs.write"]),
            st.sampled_from(["*/out/*", "*/deep/*", "*.txt"]),
        ),
        max_size=1,
    ),
    st.none()
    | st.lists(
        st.builds(
            PermissionRule,
            st.sampled_from(["fs.*"]),
            st.sampled_from(["*/ws/*", "*.txt"]),
        ),
        max_size=1,
    ),
)
changes = st.one_of(
    st.none(),
    st.tuples(
        st.just("point"), st.sampled_from(LINKS), st.sampled_from(TARGETS)
    ),
    st.tuples(st.just("cd"), st.sampled_from(CWDS)),
    # a name that did not exist becomes a link (to a file, or dangling:
    # a write through it creates the file it points to)
    st.tuples(
        st.just("point"),
        st.just("ws/new.txt"),
        st.sampled_from(["out/.env", "out/new.txt", "ws/a.txt"]),
    ),
    st.tuples(st.just("push")),
)
#: A call, a change to the file system or the frames, the same call again.
steps = st.tuples(
    st.sampled_from(["read", "write", "stat"]), st.sampled_from(NAMES), changes
)


def frames_for(root: Path, ceiling, approval, permission) -> dict:
    def absolute(names):
        return None if names is None else tuple(str(root / n) for n in names)

    layer: dict = {
        "execution": CapabilityPolicy(
            tools=("fs.*",),
            workspace_roots=absolute(ceiling["write"]),
            read_only_roots=absolute(ceiling["read"]),
        )
    }
    if approval is not None:
        layer["approval"] = ToolApprovalPolicy(
            **approval
            | {"external_roots": absolute(approval["external_roots"])}
        )
    if permission is not None:
        layer["permissions"] = permission
    return layer


def call(tool: str, path: str):
    if tool == "read":
        return fs_read, (path,)
    if tool == "write":
        return fs_write, (path,)
    return Files().stat, (path,)


def outcome(fn, args) -> object:
    try:
        fn(*args)
    except cs.PolicyDenied as refused:
        return refused.decision.gate if refused.decision else "refused"
    return "allowed"


def expected(fn, args) -> object:
    decision = cs.check_tool(fn, *args)
    if decision.action is cs.Action.ALLOW:
        return "allowed"
    if decision.action is cs.Action.ASK:
        return cs.Gate.APPROVAL_UNAVAILABLE  # no handler in these frames
    return decision.gate


def apply(root: Path, stack: contextlib.ExitStack, kind: str, *what) -> None:
    if kind == "point":
        point(root, *what)
    elif kind == "cd":
        os.chdir(root / what[0])
    else:  # a narrower frame: the forms remembered are not its own
        stack.enter_context(
            cs.using(execution=CapabilityPolicy(tools=("fs.read", "fs.stat")))
        )


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    ceiling=ceilings,
    approval=approvals,
    permission=permissions,
    script=st.lists(steps, min_size=1, max_size=12),
)
def test_the_paths_fast_path_decides_as_the_gates_do(
    ceiling, approval, permission, script
):
    root = Path(tempfile.mkdtemp()).resolve()
    cwd = Path.cwd()
    try:
        build(root)
        os.chdir(root / "ws")
        with contextlib.ExitStack() as stack:
            stack.enter_context(
                cs.using(**frames_for(root, ceiling, approval, permission))
            )
            for tool, spelled, change in script:
                fn, args = call(tool, name(root, spelled))
                want = expected(fn, args)
                assert outcome(fn, args) == want, (tool, spelled, "first")
                assert outcome(fn, args) == want, (tool, spelled, "again")
                if change is not None:
                    apply(root, stack, *change)
                want = expected(fn, args)
                assert outcome(fn, args) == want, (tool, spelled, change)
    finally:
        os.chdir(cwd)
        shutil.rmtree(root)


# -- explicit cases -------------------------------------------------------------


def under_ws(root: Path):
    """A ceiling over the file tools, rooted at the sandbox's `ws`."""
    return cs.using(
        execution=CapabilityPolicy(
            tools=("fs.*",), workspace_roots=(str(root / "ws"),)
        )
    )


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    root = tmp_path.resolve()
    build(root)
    monkeypatch.chdir(root / "ws")
    return root


def test_a_link_repointed_outside_between_two_calls_is_refused(sandbox):
    target = str(sandbox / "ws/link/b.txt")
    with under_ws(sandbox):
        assert fs_read(target) == target
        assert fs_read(target) == target  # the fast path: learned
        assert keeper(fs_read).allowed_paths is not None
        (sandbox / "out/b.txt").touch()
        point(sandbox, "ws/link", "out")
        with pytest.raises(cs.ToolDenied) as refused:
            fs_read(target)
        assert refused.value.decision.gate is cs.Gate.WORKSPACE_BOUNDARY
        point(sandbox, "ws/link", "ws/sub")
        assert fs_read(target) == target


def test_a_relative_path_is_read_against_the_cwd_of_each_call(sandbox):
    with under_ws(sandbox):
        assert fs_read("a.txt") == "a.txt"
        assert fs_read("a.txt") == "a.txt"
        os.chdir(sandbox / "out")
        with pytest.raises(cs.ToolDenied):
            fs_read("a.txt")


def test_a_sensitive_file_behind_an_allowed_spelling_is_refused(sandbox):
    # The file the link leads to is sensitive by its resolved name only.
    target = str(sandbox / "ws/link/b.txt")
    with under_ws(sandbox):
        fs_read(target)
        fs_read(target)
        (sandbox / "ws/sub/b.txt").unlink()
        (sandbox / "ws/sub/b.txt").symlink_to(sandbox / "ws/.env")
        with pytest.raises(cs.ToolDenied) as refused:
            fs_read(target)
        assert refused.value.decision.gate is cs.Gate.SENSITIVE_PATH


@pytest.fixture
def evaluated(monkeypatch):
    """The tools whose gates ran (past every fast path), in order."""
    names: list[str] = []
    original = cs._enforce.Gatekeeper._evaluate

    def counting(self, *args, **kwargs):
        names.append(self.spec.name)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cs._enforce.Gatekeeper, "_evaluate", counting)
    return names


def test_every_way_of_passing_a_path_takes_the_fast_path(sandbox, evaluated):
    a, b = str(sandbox / "ws/a.txt"), str(sandbox / "ws/sub/b.txt")
    calls = [
        (fs_read, (a,), {}),
        (fs_read, (), {"path": a}),
        (fs_read, (Path(a),), {}),
        (fs_write, (a, "text"), {}),
        (fs_copy, (a,), {"dst": b}),
        (Files().stat, (a,), {}),
        (Files().stat, (), {"path": a}),
    ]
    with under_ws(sandbox):
        for fn, args, kwargs in calls:
            fn(*args, **kwargs)  # learns
        assert evaluated  # the first calls ran the gates
        evaluated.clear()
        with Recorder() as rec:
            for fn, args, kwargs in calls:
                fn(*args, **kwargs)
        assert evaluated == []
        # every call still emits its decision, for its tool
        assert [d.tool for d in rec.allowed()] == [
            "fs.read",
            "fs.read",
            "fs.read",
            "fs.write",
            "fs.copy",
            "fs.stat",
            "fs.stat",
        ]


def test_what_the_fast_path_cannot_read_goes_to_the_gates(sandbox, evaluated):
    a = str(sandbox / "ws/a.txt")
    home = str(sandbox / "ws")
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",), workspace_roots=(home,))
    ):
        fs_write(a)
        fs_write(a)
        assert evaluated == ["fs.write"]
        os.environ["HOME"], old = home, os.environ.get("HOME")
        try:
            fs_write("~/a.txt")  # expanded by the gates, as they do
        finally:
            if old is None:
                del os.environ["HOME"]
            else:
                os.environ["HOME"] = old
        fs_write(str(sandbox / "ws/new.txt"))  # not there yet: realpath
        fs_write([a])  # a list of paths
        with pytest.raises(cs.ToolDenied):
            fs_write(b"/etc/passwd")  # not a path: refused with a decision
        for unusable in ("", a + "\0"):  # refused by the gates, saying why
            with pytest.raises(cs.ToolDenied, match="not a usable path"):
                fs_write(unusable)
        assert evaluated == ["fs.write"] * 7


def test_a_file_not_there_yet_is_resolved_again_each_call(sandbox, evaluated):
    """
    A path to no file (a write that will create it) takes the fast path
    too, resolved as the gates resolve it: a link planted at its name
    between two calls, dangling (the write would create the file it
    names, outside), is seen.
    """
    new = str(sandbox / "ws/new.txt")
    with under_ws(sandbox):
        fs_write(new)
        fs_write(new)
        assert evaluated == ["fs.write"]  # the second call: the fast path
        (sandbox / "ws/new.txt").symlink_to(sandbox / "out/new.txt")
        with pytest.raises(cs.ToolDenied) as refused:
            fs_write(new)
        assert refused.value.decision.gate is cs.Gate.WORKSPACE_BOUNDARY
        assert not (sandbox / "out/new.txt").exists()


class Liar(str):
    """A spelling that hashes as another and claims to equal anything."""

    __slots__ = ("posing_as",)

    def __hash__(self):
        return hash(self.posing_as)

    def __eq__(self, other):
        return True

    def __ne__(self, other):
        return False


def test_a_str_subclass_is_left_to_the_gates(sandbox, evaluated):
    """
    A path text that is a `str` subclass could compare equal to an
    allowed spelling it is not: the gates read it, not the fast path.
    """
    allowed = str(sandbox / "ws/sub/b.txt")
    (sandbox / "ws/sub/.env").unlink()
    (sandbox / "ws/sub/.env").symlink_to(allowed)  # the same file
    liar = Liar(str(sandbox / "ws/sub/.env"))
    liar.posing_as = allowed
    with under_ws(sandbox):
        fs_read(allowed)
        fs_read(allowed)
        assert evaluated == ["fs.read"]
        with pytest.raises(cs.ToolDenied) as refused:
            fs_read(liar)
        assert refused.value.decision.gate is cs.Gate.SENSITIVE_PATH
        assert evaluated == ["fs.read", "fs.read"]


def test_a_guard_rooted_at_the_cwd_reads_it_each_call(sandbox, evaluated):
    """
    Without roots, the approval policy's external-path guard measures
    against the working directory: the fast path remembers the cwd the
    gates read and reads it again, so a call after a `chdir` away from
    the file is refused as the gates refuse it.
    """
    a = str(sandbox / "ws/a.txt")
    with cs.using(
        execution=CapabilityPolicy(tools=("fs.*",)),
        approval=ToolApprovalPolicy(),
    ):
        fs_read(a)
        fs_read(a)
        assert evaluated == ["fs.read"]  # the second: the fast path
        os.chdir(sandbox / "out")
        with pytest.raises(cs.ToolDenied) as refused:
            fs_read(a)
        assert refused.value.decision.gate is cs.Gate.WORKSPACE_BOUNDARY
        os.chdir(sandbox / "ws")
        fs_read(a)
        assert evaluated == ["fs.read", "fs.read"]  # learned under ws again


def test_a_path_given_twice_is_left_to_binding(sandbox):
    a = str(sandbox / "ws/a.txt")
    with under_ws(sandbox):
        fs_read(a)
        fs_read(a)
        with Recorder() as rec, pytest.raises(TypeError):
            fs_read(a, path=str(sandbox / "out/a.txt"))
        assert rec.allowed() == []


def test_a_rule_that_reads_paths_keeps_every_call_on_the_gates(
    sandbox, evaluated
):
    a = str(sandbox / "ws/a.txt")
    with cs.using(
        execution=CapabilityPolicy(
            tools=("fs.*",), workspace_roots=(str(sandbox / "ws"),)
        ),
        approval=ToolApprovalPolicy(
            rules=[ApprovalRule("deny", tool="fs.read", path="*/out/*")]
        ),
    ):
        fs_read(a)
        fs_read(a)
    with cs.using(
        execution=CapabilityPolicy(
            tools=("fs.*",), workspace_roots=(str(sandbox / "ws"),)
        ),
        permissions=DynamicPermissionPolicy(
            deny=[PermissionRule("fs.*", "*/out/*")]
        ),
    ):
        fs_read(a)
        fs_read(a)
    assert evaluated == ["fs.read"] * 4


@pytest.mark.parametrize(
    ("frames", "path"),
    [
        ({"approval": ToolApprovalPolicy()}, "abs"),  # guard rooted at cwd
        ({"approval": ToolApprovalPolicy()}, "a.txt"),
        ({"roots": True}, "a.txt"),
        ({}, "a.txt"),  # no guard at all reads the cwd
    ],
)
def test_a_working_directory_that_is_gone_refuses(sandbox, frames, path):
    """
    Relative paths and a guard measuring against the cwd cannot be judged
    once the working directory is deleted: a refusal with its decision,
    never the `FileNotFoundError` of `os.getcwd()`, at every call.
    """
    gone = sandbox / "gone"
    gone.mkdir()
    os.chdir(gone)
    gone.rmdir()
    roots = (str(sandbox / "ws"),) if frames.get("roots") else None
    layer = {
        "execution": CapabilityPolicy(tools=("fs.*",), workspace_roots=roots)
    }
    if "approval" in frames:
        layer["approval"] = frames["approval"]
    target = str(sandbox / "ws/a.txt") if path == "abs" else path
    with cs.using(**layer):
        for _ in range(2):
            with pytest.raises(cs.PolicyDenied) as refused:
                fs_read(target)
            assert refused.value.decision.gate is cs.Gate.WORKSPACE_BOUNDARY
            decision = cs.check_tool(fs_read, target)
            assert cs.Action.DENY is decision.action


def test_each_path_is_resolved_once_per_call_for_every_gate(
    sandbox, monkeypatch, evaluated
):
    """
    The ceiling, the approval guards and rules and the permission rules
    all read a path: it is resolved once per call, by the gates and by
    the fast path alike (`_kernel_path`: an existing file).
    """
    from capscope.policies import _common

    resolved = []
    original = _common._kernel_path

    def counting(text):
        resolved.append(text)
        return original(text)

    monkeypatch.setattr(_common, "_kernel_path", counting)
    a, b = str(sandbox / "ws/a.txt"), str(sandbox / "ws/sub/b.txt")
    with cs.using(
        execution=CapabilityPolicy(
            tools=("fs.*",), workspace_roots=(str(sandbox / "ws"),)
        ),
        approval=ToolApprovalPolicy(
            rules=[ApprovalRule("allow", tool="fs.copy", path="*/ws/*")]
        ),
        permissions=DynamicPermissionPolicy(
            deny=[PermissionRule("fs.*", "*/out/*")]
        ),
    ):
        for _ in range(2):  # rules that read paths: the gates each time
            resolved.clear()
            fs_copy(a, dst=b)
            assert [a, b] == resolved
    assert ["fs.copy"] * 2 == evaluated
    with under_ws(sandbox):
        for _ in range(2):  # the gates, then the fast path
            resolved.clear()
            fs_copy(a, dst=b)
            assert [a, b] == resolved
    assert ["fs.copy"] * 3 == evaluated
