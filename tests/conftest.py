"""Shared fixtures: every test starts and ends with clean ambient state."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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
    names = cs.registry.names()
    yield
    leaked = [
        var.name
        for var, old in zip(vars_, before, strict=True)
        if var.get() is not old
    ]
    for var, old in zip(vars_, before, strict=True):
        var.set(old)
    added = set(cs.registry.names()) ^ set(names)
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
