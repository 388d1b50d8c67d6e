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


# -- the pipeline on real services ------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    from tests.support.pipeline_env import create_test_database, drop_test_database

    yield create_test_database()
    drop_test_database()


@pytest.fixture(scope="session")
def airflow_db() -> None:
    from tests.support.pipeline_env import migrate_airflow

    migrate_airflow()


@pytest.fixture
def fresh_db(pg_url: str) -> str:
    """Empty Omono and xero_sync schemas (migrations applied) in the test database."""
    from tests.support.pipeline_env import reset_schemas

    reset_schemas(pg_url)
    return pg_url


@pytest.fixture
def xero_org(emulator_url: str, fresh_db: str):
    """The UK demo organisation, freshly reset, with `xero_default` connected to it."""
    from tests.support.pipeline_env import XeroOrg

    org = XeroOrg(emulator_url)
    org.connect(fresh_db)
    return org


@pytest.fixture(scope="session")
def sync_dag(airflow_db: None):
    from airflow.dag_processing.dagbag import DagBag

    from tests.support.pipeline_env import ROOT

    bag = DagBag(dag_folder=str(ROOT / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag("omono_xero_sync")
