"""Fixtures of the randomized-history suite: one emulator process and one database for the session, the
pipeline imported once (forked steps start at once), and the `soak` marker, whose tests run only under
`make soak` (SOAK_MINUTES set). Nothing here changes the environment the other test modules see."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "soak: long randomized histories; run by `make soak` (SOAK_MINUTES)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("SOAK_MINUTES"):
        return
    skip = pytest.mark.skip(reason="the soak runs under `make soak` (set SOAK_MINUTES)")
    for item in items:
        if item.get_closest_marker("soak"):
            item.add_marker(skip)


@pytest.fixture(scope="session")
def history_world() -> Iterator[object]:
    from tests.histories import runner, world

    runner.preload()
    with world.world() as w:
        yield w
