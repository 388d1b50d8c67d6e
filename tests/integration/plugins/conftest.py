"""One real sync run (demo data with held records) and Airflow's API server app with the plugin mounted."""

from __future__ import annotations

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from include.omono_xero_sync import demo_data
from tests.support.pipeline_env import XeroOrg, reset_schemas, run_sync


@pytest.fixture(scope="module")
def synced(emulator, pg_url: str, sync_dag) -> dict:
    _, base_url = emulator
    httpx.post(f"{base_url}/_emulator/reset").raise_for_status()
    reset_schemas(pg_url)
    XeroOrg(base_url).connect(pg_url)
    with psycopg.connect(pg_url, row_factory=dict_row) as conn:
        demo_data.generate(conn, documents=240, bad_share=0.1)
        demo_data.apply_demo_mappings(conn)
    run = run_sync(sync_dag)
    return {"dag_id": "omono_xero_sync", "run_id": str(run.dagrun.run_id), "db": pg_url, "emulator": base_url}


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
