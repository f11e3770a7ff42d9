"""Shared fixtures: every test starts and ends with clean ambient state."""

from __future__ import annotations

import importlib
import os
import shutil
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

import capscope as cs
from capscope import _ambient


@pytest.fixture(autouse=True)
def _no_leaks() -> Iterator[None]:
    """
    Fail a test that leaves frames on any stack or changes the registry,
    then put everything back so the next test starts clean.
    """
    vars_ = _ambient.all_vars()
    before = [var.get() for var in vars_]
    names = tuple(cs.registry._stacks)  # not names(): it may load plugins
    yield
    leaked = [
        var.name
        for var, old in zip(vars_, before, strict=True)
        if var.get() is not old
    ]
    for var, old in zip(vars_, before, strict=True):
        var.set(old)
    added = set(cs.registry._stacks) ^ set(names)
    for name in added - set(names):
        cs.registry.unregister(name)
    assert not leaked, f"test leaked frames on {leaked}"
    assert not added, f"test changed the registry: {sorted(added)}"


@pytest.fixture(autouse=True, scope="session")
def _entry_points_loaded() -> None:
    """
    Do the lazy first-capture entry-point load once, up front, so that a test
    distribution put on sys.path later is only loaded by the tests that ask.
    """
    cs.registry.ensure_entry_points()


# --- Entry points: a real tiny distribution and fake broken ones ----------

#: tests/plugin_dist holds real distributions that fixtures put on sys.path.
#: Never collect them: a doctest import would leave the plugin's directory on
#: sys.path (and the plugin imported) for the rest of the session.
collect_ignore = ["plugin_dist", "typing"]

#: The source tree of the acme-capscope plugin (pyproject.toml and package).
ACME_SOURCE = Path(__file__).parent / "plugin_dist" / "acme_capscope"


@dataclass(frozen=True)
class DistInfo:
    """A distribution made visible to `importlib.metadata` by a fixture."""

    name: str
    version: str
    #: Its `<name>-<version>.dist-info` directory.
    dist_info: Path
    #: The sys.path entries it needs, in order (metadata, then sources).
    paths: tuple[Path, ...]

    @property
    def label(self) -> str:
        """How capscope names it: `"<name> <version>"`."""
        return f"{self.name} {self.version}"

    @property
    def pythonpath(self) -> str:
        """`paths` as a PYTHONPATH value, for subprocesses."""
        return os.pathsep.join(str(path) for path in self.paths)


def write_dist_info(
    root: Path,
    name: str,
    version: str,
    entry_points: Mapping[str, Mapping[str, str]],
) -> Path:
    """
    Write under *root* the `.dist-info` directory pip would install for
    *name* (METADATA and entry_points.txt, from ``{group: {name: target}}``);
    returns it.
    """
    dist_info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    dist_info.mkdir(parents=True)
    (dist_info / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n",
        encoding="utf-8",
    )
    sections = [
        "\n".join([f"[{group}]", *(f"{k} = {v}" for k, v in eps.items())])
        for group, eps in entry_points.items()
    ]
    (dist_info / "entry_points.txt").write_text(
        "\n\n".join(sections) + "\n", encoding="utf-8"
    )
    return dist_info


def _prepend_to_sys_path(paths: Iterable[Path]) -> None:
    for path in reversed(tuple(paths)):
        sys.path.insert(0, str(path))
    importlib.invalidate_caches()


def _remove_from_sys_path(paths: Iterable[Path]) -> None:
    for path in paths:
        while str(path) in sys.path:
            sys.path.remove(str(path))
    importlib.invalidate_caches()


def _forget_modules_under(roots: Iterable[Path]) -> None:
    roots = tuple(roots)
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        if file and any(Path(file).is_relative_to(r) for r in roots):
            del sys.modules[name]


@pytest.fixture(scope="session")
def acme_dist(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DistInfo]:
    """
    Make the real acme-capscope distribution (tests/plugin_dist) visible to
    `importlib.metadata` without pip: its dist-info is generated from its
    pyproject.toml, then it and the package sources go on sys.path. Yields
    the paths (`.pythonpath` for subprocesses). Nothing is loaded.
    """
    pyproject = (ACME_SOURCE / "pyproject.toml").read_text(encoding="utf-8")
    project = tomllib.loads(pyproject)["project"]
    root = tmp_path_factory.mktemp("acme_metadata")
    info = DistInfo(
        name=project["name"],
        version=project["version"],
        dist_info=write_dist_info(
            root, project["name"], project["version"], project["entry-points"]
        ),
        paths=(root, ACME_SOURCE),
    )
    _prepend_to_sys_path(info.paths)
    yield info
    _remove_from_sys_path(info.paths)
    _forget_modules_under([ACME_SOURCE])


@pytest.fixture
def acme_loaded(acme_dist: DistInfo) -> Iterator[cs.AmbientStack[Any]]:
    """
    The acme plugin's `tenant` stack, registered through
    `registry.load_entry_points()`; unregistered afterwards.
    """
    cs.registry.load_entry_points()
    tenant = cs.registry.get("tenant")
    assert isinstance(tenant, cs.AmbientStack)
    yield tenant
    if tenant.name in cs.registry._stacks:
        cs.registry.unregister(tenant)


#: make(name, entry_points, modules=None, *, on_sys_path=True) -> DistInfo
MakeDist = Callable[..., DistInfo]


@pytest.fixture
def fake_dist(tmp_path: Path) -> Iterator[MakeDist]:
    """
    A factory for fake distributions: ``make("broken-capscope",
    {"broken": "broken_mod:broken"}, {"broken_mod": "<source>"})`` writes a
    dist-info declaring those `capscope.stacks` entry points and the module
    files beside it, and (unless *on_sys_path* is false) puts them on
    sys.path. Afterwards everything is taken off sys.path and out of
    sys.modules, and whatever an entry point registered meanwhile (from
    these or any other distribution) is unregistered.
    """
    made: list[DistInfo] = []
    names_before = set(cs.registry._stacks)

    def make(
        name: str,
        entry_points: Mapping[str, str],
        modules: Mapping[str, str] | None = None,
        *,
        on_sys_path: bool = True,
    ) -> DistInfo:
        root = tmp_path / name
        info = DistInfo(
            name=name,
            version="0.1.0",
            dist_info=write_dist_info(
                root, name, "0.1.0", {"capscope.stacks": entry_points}
            ),
            paths=(root,),
        )
        for module, source in (modules or {}).items():
            (root / f"{module}.py").write_text(
                textwrap.dedent(source), encoding="utf-8"
            )
        made.append(info)
        if on_sys_path:
            _prepend_to_sys_path(info.paths)
        return info

    yield make
    for name in set(cs.registry._stacks) - names_before:
        if cs.registry.origin(name) not in {"built-in", "runtime"}:
            cs.registry.unregister(name)
    _remove_from_sys_path(path for info in made for path in info.paths)
    _forget_modules_under(info.paths[0] for info in made)


# --- A real Redis (the Celery and Dramatiq brokers, replay guards) ----------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Redis broker: CAPSCOPE_TEST_REDIS_URL, or one started here."""
    given = os.environ.get("CAPSCOPE_TEST_REDIS_URL")
    if given:
        yield given
        return
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip(
            "no redis-server binary (apt-get install redis-server), and "
            "CAPSCOPE_TEST_REDIS_URL is not set: the Celery tests need a "
            "real broker"
        )
    port = _free_port()
    workdir = tmp_path_factory.mktemp("redis")
    log = workdir / "redis.log"
    with log.open("wb") as out:
        server = subprocess.Popen(
            [
                *(binary, "--port", str(port), "--bind", "127.0.0.1"),
                *("--save", "", "--appendonly", "no", "--daemonize", "no"),
                *("--dir", str(workdir)),
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        client = redis.Redis.from_url(url)
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"redis-server did not start:\n{log.read_text()}"
                    )
                time.sleep(0.05)
        client.close()
        yield url
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
