"""The plugin's pages and endpoints: Airflow's auth, validation, pagination, and what each page shows."""

from __future__ import annotations

import psycopg
import pytest
from psycopg.rows import dict_row

pytestmark = pytest.mark.integration
P = "/xero-sync"


def _db(url: str) -> psycopg.Connection:
    return psycopg.connect(url, row_factory=dict_row)


def _pages(s: dict) -> list[str]:
    return [f"{P}/ui/runs/{s['dag_id']}/{s['run_id']}", f"{P}/ui/task/{s['dag_id']}/{s['run_id']}/check_records",
            f"{P}/api/runs/{s['dag_id']}/{s['run_id']}", f"{P}/ui/latest", f"{P}/ui/records/contact/1",
            f"{P}/ui/mappings", f"{P}/ui/readiness", f"{P}/ui/settings"]


def test_anonymous_requests_are_refused_everywhere(client, synced: dict) -> None:
    for url in _pages(synced):
        assert client.get(url, follow_redirects=False).status_code == 401, url
    for url in (f"{P}/ui/settings", f"{P}/ui/mappings", f"{P}/ui/readiness", f"{P}/ui/records/contact/1/skip"):
        assert client.post(url, follow_redirects=False).status_code == 401, url


def test_a_viewer_reads_every_page_but_changes_nothing(client, synced: dict, as_viewer: dict) -> None:
    for url in _pages(synced):
        assert client.get(url, headers=as_viewer, follow_redirects=False).status_code in (200, 303), url
    for url in (f"{P}/ui/settings", f"{P}/ui/mappings", f"{P}/ui/readiness", f"{P}/ui/records/contact/1/skip"):
        assert client.post(url, headers=as_viewer, follow_redirects=False).status_code == 403, url


def test_the_airflow_session_cookie_works_as_in_the_ui_iframe(client, synced: dict, airflow_app) -> None:
    from tests.integration.plugins.conftest import token

    reply = client.get(f"{P}/ui/settings", cookies={"_token": token(airflow_app, "viewer")})
    assert reply.status_code == 200 and "General options" in reply.text


def test_plugin_registers_its_tabs_with_airflow(client, as_admin: dict) -> None:
    plugins = client.get("/api/v2/plugins", headers=as_admin).json()["plugins"]
    views = next(p for p in plugins if p["name"] == "omono_xero_sync")["external_views"]
    assert {(v["destination"], v["href"]) for v in views} == {
        ("dag_run", "xero-sync/ui/runs/{DAG_ID}/{RUN_ID}"),
        ("task_instance", "xero-sync/ui/task/{DAG_ID}/{RUN_ID}/{TASK_ID}"), ("nav", "xero-sync/ui/readiness")}


def test_run_log_counts_red_rows_and_links_to_omono_and_xero(client, synced: dict, as_admin: dict) -> None:
    page = client.get(f"{P}/ui/runs/{synced['dag_id']}/{synced['run_id']}", headers=as_admin).text
    assert 'class="attention"' in page
    assert "sales analysis code &#39;SA-SAMPLES&#39; is not mapped" in page
    assert "https://go.xero.com/organisationlogin/default.aspx?shortcode=%21Omn0K&amp;redirecturl=" in page
    assert "http://localhost:8000/omono/dispatch-invoices/" in page
    assert "<svg" in page


def test_run_log_filters_and_pages(client, synced: dict, as_admin: dict) -> None:
    url = f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}"
    everything = client.get(url, headers=as_admin).json()
    assert everything["total"] > 100 and everything["pages"] == -(-everything["total"] // 100)
    second = client.get(url, params={"page": 2}, headers=as_admin).json()
    assert {r["id"] for r in second["rows"]}.isdisjoint({r["id"] for r in everything["rows"]})
    held = client.get(url, params={"action": "held"}, headers=as_admin).json()
    assert held["rows"] and all(r["action"] == "held" for r in held["rows"])
    assert held["total"] == sum(c.get("held", 0) for c in everything["counts"].values())
    one = client.get(url, params={"q": "SO-1010"}, headers=as_admin).json()
    assert [r["omono_number"] for r in one["rows"]] == ["SO-1010"]
    assert client.get(url, params={"action": "exploded"}, headers=as_admin).status_code == 422
    bills = client.get(url, params={"entity": "delivery_invoice"}, headers=as_admin).json()
    assert bills["rows"] and {r["entity"] for r in bills["rows"]} == {"delivery_invoice"}


def test_task_tab_shows_only_that_tasks_rows(client, synced: dict, as_admin: dict) -> None:
    url = f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}"
    rows = client.get(url, params={"task_id": "push_contacts"}, headers=as_admin).json()["rows"]
    assert rows and {r["task_id"] for r in rows} == {"push_contacts"}


def test_record_detail_then_skip_records_who_and_retry_brings_it_back(client, synced: dict, as_admin: dict) -> None:
    with _db(synced["db"]) as conn:
        held = conn.execute("SELECT entity, omono_id FROM xero_sync.record_state WHERE status = 'held' "
                            "ORDER BY omono_id LIMIT 1").fetchone()
    url = f"{P}/ui/records/{held['entity']}/{held['omono_id']}"
    page = client.get(url, headers=as_admin)
    assert page.status_code == 200 and "Every attempt" in page.text and "Retry on next run" in page.text
    assert client.post(f"{url}/skip", headers=as_admin, follow_redirects=False).status_code == 303
    with _db(synced["db"]) as conn:
        row = conn.execute("SELECT status, skipped_by FROM xero_sync.record_state WHERE entity = %s AND omono_id = %s",
                           (held["entity"], held["omono_id"])).fetchone()
        log = conn.execute("SELECT messages FROM xero_sync.sync_log WHERE action = 'skipped' "
                           "ORDER BY id DESC").fetchone()
    assert (row["status"], row["skipped_by"]) == ("skipped", "admin-user")
    assert log["messages"][0].startswith("Skipped by admin-user on ")
    client.post(f"{url}/retry", headers=as_admin, follow_redirects=False)
    with _db(synced["db"]) as conn:
        assert conn.execute("SELECT status FROM xero_sync.record_state WHERE entity = %s AND omono_id = %s",
                            (held["entity"], held["omono_id"])).fetchone()["status"] == "pending"


def test_settings_are_validated_and_nothing_is_half_saved(client, synced: dict, as_admin: dict) -> None:
    form = {"status.dispatch_invoice": "DRAFT", "status.delivery_invoice": "AUTHORISED",
            "status.sales_credit_note": "AUTHORISED", "status.purchase_credit_note": "AUTHORISED",
            "sync_interval": "every minute", "alert_email": "ops@example.com"}
    bad = client.post(f"{P}/ui/settings", data=form, headers=as_admin)
    assert bad.status_code == 422 and "Sync interval &#39;every minute&#39; is not one of" in bad.text
    with _db(synced["db"]) as conn:
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.settings WHERE key = 'status.dispatch_invoice'"
                            ).fetchone()["n"] == 0
    good = client.post(f"{P}/ui/settings", data={**form, "sync_interval": "hourly", "credit_check": "on"},
                       headers=as_admin, follow_redirects=False)
    assert good.status_code == 303
    with _db(synced["db"]) as conn:
        saved = {r["key"]: (r["value"], r["updated_by"]) for r in conn.execute("SELECT * FROM xero_sync.settings")}
    assert saved["sync_interval"] == ("hourly", "admin-user") and saved["credit_check"][0] is True
    assert saved["status.dispatch_invoice"][0] == "DRAFT"


def test_mappings_page_lists_every_code_with_unmapped_ones_highlighted(client, as_admin: dict, synced: dict) -> None:
    page = client.get(f"{P}/ui/mappings", headers=as_admin).text
    assert '<tr class="unmapped">' in page and "SA-SAMPLES" in page and "220 Sales - Wholesale" in page


def test_mapping_to_an_unknown_account_is_refused_and_nothing_is_saved(client, synced: dict, as_admin: dict) -> None:
    form = {"sales:SA-SAMPLES": "260", "sales:SA-RETAIL": "999"}
    bad = client.post(f"{P}/ui/mappings", data=form, headers=as_admin)
    assert bad.status_code == 422 and "&#39;999&#39; is not an active account in Xero" in bad.text
    with _db(synced["db"]) as conn:
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.account_mappings WHERE omono_code = 'SA-SAMPLES'"
                            ).fetchone()["n"] == 0
    nameless = client.post(f"{P}/ui/mappings", data={"sales:SA-SAMPLES:new_code": "265",
                                                     "sales:SA-SAMPLES:create": "on"}, headers=as_admin)
    assert nameless.status_code == 422 and "give the new Xero account a name" in nameless.text
    created = client.post(f"{P}/ui/mappings", data={"sales:SA-SAMPLES:new_code": "265", "sales:SA-SAMPLES:create": "on",
                                                    "sales:SA-SAMPLES:name": "Samples"}, headers=as_admin,
                          follow_redirects=False)
    assert created.status_code == 303
    with _db(synced["db"]) as conn:
        row = conn.execute("SELECT * FROM xero_sync.account_mappings WHERE omono_code = 'SA-SAMPLES'").fetchone()
    assert (row["xero_account_code"], row["create_in_xero"], row["xero_account_name"]) == ("265", True, "Samples")


def test_readiness_shows_the_lights_and_rerun_reads_xero_again(client, synced: dict, as_admin: dict) -> None:
    import httpx

    page = client.get(f"{P}/ui/readiness", headers=as_admin).text
    assert 'class="light AMBER"' in page and "missing in Xero: JPY" in page
    before = len(httpx.get(f"{synced['emulator']}/_emulator/requests").json()["requests"])
    assert client.post(f"{P}/ui/readiness", headers=as_admin, follow_redirects=False).status_code == 303
    after = httpx.get(f"{synced['emulator']}/_emulator/requests").json()["requests"][before:]
    assert [r["path"] for r in after if r["path"].startswith("/api.xro")] == [
        "/api.xro/2.0/Organisation", "/api.xro/2.0/Accounts", "/api.xro/2.0/TaxRates", "/api.xro/2.0/Currencies"]


def test_reset_needs_the_organisations_name_and_keeps_the_log_then_disconnect_forgets_tokens(
        client, synced: dict, as_admin: dict) -> None:
    with _db(synced["db"]) as conn:
        log_rows = conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log").fetchone()["n"]
    wrong = client.post(f"{P}/ui/reset", data={"confirm": "yes"}, headers=as_admin)
    assert wrong.status_code == 422 and "Type the organisation&#39;s name exactly" in wrong.text
    done = client.post(f"{P}/ui/reset", data={"confirm": "Omono Demo Wholesale Ltd"}, headers=as_admin,
                       follow_redirects=False)
    assert done.status_code == 303
    assert client.post(f"{P}/ui/disconnect", headers=as_admin, follow_redirects=False).status_code == 303
    with _db(synced["db"]) as conn:
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.record_state").fetchone()["n"] == 0
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log").fetchone()["n"] >= log_rows
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.oauth_tokens").fetchone()["n"] == 0
        who = conn.execute("SELECT value FROM xero_sync.settings WHERE key = 'last_reset'").fetchone()["value"]
    assert who["by"] == "admin-user"
