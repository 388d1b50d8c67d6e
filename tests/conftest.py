"""Shared pytest set-up: every test must say whether it is a fast unit test or an integration test."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.iter_markers(name=m) for m in ("unit", "integration")):
            raise pytest.UsageError(f"{item.nodeid} has neither the 'unit' nor the 'integration' marker")
