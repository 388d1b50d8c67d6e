"""Integration fixtures: a real Xero emulator over HTTP and the real xero-python SDK talking to it."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from include.xero_emulator.app import Emulator
from include.xero_emulator.config import EmulatorConfig, Limits
from tests.support.emulator_server import running_emulator
from tests.support.xero_sdk import Sdk, authorization_code_tokens, sdk_for


@pytest.fixture(scope="session")
def emulator() -> Iterator[tuple[Emulator, str]]:
    """One emulator for the session, limits off unless a test turns them on, bodies recorded."""
    with running_emulator(EmulatorConfig(limits=Limits.off(), record_bodies=True)) as running:
        yield running


@pytest.fixture
def emulator_url(emulator: tuple[Emulator, str]) -> str:
    _, base_url = emulator
    httpx.post(f"{base_url}/_emulator/reset").raise_for_status()
    return base_url


@pytest.fixture
def admin(emulator_url: str) -> httpx.Client:
    with httpx.Client(base_url=f"{emulator_url}/_emulator", timeout=30) as client:
        yield client


@pytest.fixture
def sdk(emulator_url: str) -> Sdk:
    return sdk_for(emulator_url, authorization_code_tokens(emulator_url))
