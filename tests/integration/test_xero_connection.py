"""The Xero connection: rotated refresh tokens survive concurrent refreshes, custom connections work, secrets
never reach the logs, and the sync interval gate."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

import httpx
import psycopg
import pytest
from psycopg.rows import dict_row

from include.commands import demo_data
from tests.support.pipeline_env import XeroOrg, run_sync
from tests.support.xero_sdk import CUSTOM_CLIENT_ID, CUSTOM_CLIENT_SECRET, DEMO_CLIENT_SECRET, UK_TENANT

pytestmark = pytest.mark.integration


def _db(url: str) -> psycopg.Connection:
    return psycopg.connect(url, row_factory=dict_row)


def _expire_stored_token(url: str) -> None:
    from include.omono_xero_sync.xero_api import TokenStore
    from include.omono_xero_sync.xero_hook import XeroHook

    with _db(url) as conn:
        store = TokenStore(conn, XeroHook().settings())
        token = store.valid_token()
        store.save({**token, "expires_at": 0})


def test_two_tasks_refreshing_at_once_refresh_once_and_keep_a_working_token(xero_org: XeroOrg, fresh_db: str,
                                                                            admin: httpx.Client) -> None:
    from include.omono_xero_sync.xero_api import TokenStore
    from include.omono_xero_sync.xero_hook import XeroHook

    _expire_stored_token(fresh_db)
    admin.delete("/requests")
    got: list[dict] = []

    def task() -> None:
        with _db(fresh_db) as conn:
            got.append(TokenStore(conn, XeroHook().settings()).valid_token())

    threads = [threading.Thread(target=task) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    refreshes = [r for r in admin.get("/requests").json()["requests"] if r["path"] == "/connect/token"]
    assert len(refreshes) == 1
    assert got[0]["refresh_token"] == got[1]["refresh_token"]
    with _db(fresh_db) as conn:                  # the stored (rotated) token keeps working for the next run
        assert TokenStore(conn, XeroHook().settings()).valid_token()["access_token"] == got[0]["access_token"]


def test_sync_runs_over_a_custom_connection_without_a_tenant_header(sync_dag, emulator_url: str, fresh_db: str,
                                                                    admin: httpx.Client,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
        "conn_type": "generic", "login": CUSTOM_CLIENT_ID, "password": CUSTOM_CLIENT_SECRET,
        "extra": {"grant": "client_credentials", "api_url": f"{emulator_url}/api.xro/2.0",
                  "identity_url": emulator_url}}))
    with _db(fresh_db) as conn:
        demo_data.generate(conn, documents=10, bad_share=0)
        demo_data.apply_demo_mappings(conn)
    assert run_sync(sync_dag).state == "success"
    assert len(admin.get(f"/tenants/{UK_TENANT}/invoices").json()["invoices"]) > 0


def test_secrets_and_tokens_never_appear_in_task_logs(sync_dag, xero_org: XeroOrg, fresh_db: str,
                                                      capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
                                                      ) -> None:
    with _db(fresh_db) as conn:
        demo_data.generate(conn, documents=10, bad_share=0)
        demo_data.apply_demo_mappings(conn)
    _expire_stored_token(fresh_db)                                # the run refreshes: tokens are in flight
    run_sync(sync_dag)
    from include.omono_xero_sync.xero_api import TokenStore
    from include.omono_xero_sync.xero_hook import XeroHook

    with _db(fresh_db) as conn:
        token = TokenStore(conn, XeroHook().settings()).valid_token()
    out, err = capfd.readouterr()
    logged = out + err + caplog.text
    assert "Pushed:" in logged                                    # the logs were captured
    for secret in (DEMO_CLIENT_SECRET, token["access_token"], token["refresh_token"]):
        assert secret not in logged


def test_scheduled_runs_follow_the_interval_setting_and_sync_now_always_runs(fresh_db: str) -> None:
    from include.omono_xero_sync import pipeline, state

    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    assert pipeline.is_due("manual", now) is True
    assert pipeline.is_due("scheduled", now) is False                  # off by default
    with _db(fresh_db) as conn:
        state.put_setting(conn, "sync_interval", "hourly")
    assert pipeline.is_due("scheduled", now) is True
    assert pipeline.is_due("scheduled", now + timedelta(minutes=15)) is False
    assert pipeline.is_due("scheduled", now + timedelta(minutes=60)) is True


def test_a_refresh_during_a_task_that_fails_afterwards_is_kept(xero_org: XeroOrg, fresh_db: str,
                                                                admin: httpx.Client) -> None:
    from include.omono_xero_sync.xero_api import client_for

    _expire_stored_token(fresh_db)
    with _db(fresh_db) as conn, pytest.raises(RuntimeError), conn.transaction():   # e.g. allocate fails later
        client_for(conn).read("get_organisations")                 # refreshes: Xero rotates the refresh token
        raise RuntimeError("the task fails after its first call")
    admin.post("/clock", json={"advance_seconds": 31 * 60})          # the old refresh token's grace is over
    with _db(fresh_db) as conn:
        assert client_for(conn).read("get_organisations").organisations[0].name
