"""One real sync run (demo data with held records), Airflow's API server app with the plugin mounted (in-process,
for API-level tests), and the emulator with this session's Airflow address registered as a redirect URI of its
demo Xero app, exactly as a user registers theirs at developer.xero.com."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from include.commands import demo_data
from include.xero_emulator.config import DEFAULT_FIXTURE, EmulatorConfig, Limits
from tests.support.emulator_server import running_emulator
from tests.support.pipeline_env import XeroOrg, reset_schemas, run_sync
from tests.support.xero_sdk import DEMO_CLIENT_ID

P = "/xero-sync"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def ui_port() -> int:
    """The port the browser tests' api-server listens on (known before the emulator starts)."""
    return free_port()


@pytest.fixture(scope="session")
def emulator(ui_port: int, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    fixture = json.loads(DEFAULT_FIXTURE.read_text())
    app = next(c for c in fixture["clients"] if c["client_id"] == DEMO_CLIENT_ID)
    app["redirect_uris"].append(f"http://localhost:{ui_port}/xero/callback")
    path = tmp_path_factory.mktemp("emulator") / "fixture.json"
    path.write_text(json.dumps(fixture))
    with running_emulator(EmulatorConfig(limits=Limits.off(), record_bodies=True, fixture=path)) as running:
        yield running


def sync_demo(emulator: tuple, pg_url: str, sync_dag, documents: int) -> dict:
    _, base_url = emulator
    httpx.post(f"{base_url}/_emulator/reset").raise_for_status()
    reset_schemas(pg_url)
    XeroOrg(base_url).connect(pg_url)
    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        demo_data.generate(conn, documents=documents, bad_share=0.1)
        demo_data.apply_demo_mappings(conn)
    run = run_sync(sync_dag)
    return {"dag_id": "omono_xero_sync", "run_id": str(run.dagrun.run_id), "db": pg_url, "emulator": base_url}


@pytest.fixture(scope="module")
def synced(emulator, pg_url: str, sync_dag) -> dict:
    return sync_demo(emulator, pg_url, sync_dag, documents=120)         # over 100 log rows: two pages


@pytest.fixture(scope="module")
def airflow_app(airflow_db: None):
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    return create_app(apps="core")


@pytest.fixture(scope="module")
def client(airflow_app):
    from fastapi.testclient import TestClient

    with TestClient(airflow_app, base_url="http://localhost") as c:
        yield c


def token(app, role: str | None) -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return app.state.auth_manager.generate_jwt(SimpleAuthManagerUser(username=f"{role}-user", role=role))


@pytest.fixture(scope="module")
def as_admin(airflow_app) -> dict:
    return {"Authorization": f"Bearer {token(airflow_app, 'admin')}"}


@pytest.fixture(scope="module")
def as_viewer(airflow_app) -> dict:
    return {"Authorization": f"Bearer {token(airflow_app, 'viewer')}"}


def db(url: str) -> psycopg.Connection:
    return psycopg.connect(url, row_factory=dict_row)


def form_token(html: str) -> str:
    """The form token a page carries (what the browser posts back)."""
    return re.search(r'name="form_token" value="([^"]+)"', html).group(1)
