"""Mappings, Readiness and General options through Airflow's own app and auth manager, after one real sync run:
what is listed, what is refused before saving (and that the user's edits survive a refusal), the Omono link
setting, alert e-mail test and SMTP warning, connecting (custom connection, consent start), Disconnect and Reset."""

from __future__ import annotations

import email
import json
from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from tests.integration.plugins.conftest import P, db, sync_demo
from tests.support.smtp_sink import smtp_sink
from tests.support.xero_sdk import CUSTOM_CLIENT_ID, CUSTOM_CLIENT_SECRET, DEMO_CLIENT_ID

pytestmark = pytest.mark.integration
OPTIONS = {"status.dispatch_invoice": "DRAFT", "status.delivery_invoice": "AUTHORISED",
           "status.sales_credit_note": "AUTHORISED", "status.purchase_credit_note": "AUTHORISED",
           "sync_interval": "hourly", "credit_check": "on", "alert_email": "ops@example.com",
           "omono_url_pattern": "https://omono.example.com/app/{entity}/{id}"}


@pytest.fixture(scope="module")
def synced(emulator, pg_url: str, sync_dag) -> dict:
    return sync_demo(emulator, pg_url, sync_dag, documents=40)


def _count(url: str, sql: str, *args: object) -> int:
    with db(url) as conn:
        return conn.execute(sql, args).fetchone()["n"]


# -- mappings -----------------------------------------------------------------------------------------------------
def test_mappings_list_every_code_omono_lines_use_even_one_missing_from_omonos_code_tables(
        client, synced: dict, as_admin: dict) -> None:
    page = client.get(f"{P}/ui/mappings", headers=as_admin).text
    assert "PA-UNKNOWN" in page and "used on documents, not in Omono's code list" in page
    assert "when it next changes in Omono" in page              # what a changed mapping does to synced documents
    assert '<tr class="unmapped">' in page and "SA-SAMPLES" in page and "220 Sales - Wholesale" in page
    assert client.post(f"{P}/ui/mappings", data={"purchase:PA-UNKNOWN": "310"}, headers=as_admin,
                       follow_redirects=False).status_code == 303
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.account_mappings WHERE omono_code = "
                  "'PA-UNKNOWN' AND xero_account_code = '310'") == 1


def test_choosing_the_dash_removes_a_mapping_and_readiness_then_lists_the_code(client, synced: dict,
                                                                               as_admin: dict) -> None:
    assert client.post(f"{P}/ui/mappings", data={"purchase:PA-UNKNOWN": "", "tax:purchase:RED5": ""},
                       headers=as_admin, follow_redirects=False).headers["location"].endswith("done=mappings_saved")
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.account_mappings WHERE omono_code = "
                  "'PA-UNKNOWN'") == 0
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.tax_mappings WHERE kind = 'purchase' AND "
                  "omono_tax_code = 'RED5'") == 0
    assert "RED5 for purchases (not mapped)" in client.get(f"{P}/ui/readiness", headers=as_admin).text
    client.post(f"{P}/ui/mappings", data={"tax:purchase:RED5": "RRINPUT"}, headers=as_admin)


def test_a_refused_mappings_form_keeps_every_edit_the_user_made_and_saves_nothing(client, synced: dict,
                                                                                 as_admin: dict) -> None:
    form = {"sales:SA-SAMPLES": "260", "sales:SA-RETAIL": "999", "purchase:PA-FREIGHT:create": "on",
            "purchase:PA-FREIGHT:new_code": "FRT1", "purchase:PA-FREIGHT:name": "Freight & duty"}
    bad = client.post(f"{P}/ui/mappings", data=form, headers=as_admin)
    assert bad.status_code == 422 and "&#39;999&#39; is not an active account in Xero" in bad.text
    assert '<option value="260" selected>' in bad.text                          # the edit that was fine
    assert '<option value="999" selected>999 (not an active account in Xero)' in bad.text
    assert 'value="FRT1"' in bad.text and 'value="Freight &amp; duty"' in bad.text
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.account_mappings WHERE omono_code IN "
                  "('SA-SAMPLES', 'PA-FREIGHT') AND xero_account_code IN ('260', 'FRT1')") == 0


def test_mappings_refuse_before_saving_what_xero_would_refuse_later(client, synced: dict, as_admin: dict) -> None:
    def refused(form: dict) -> str:
        reply = client.post(f"{P}/ui/mappings", data=form, headers=as_admin)
        assert reply.status_code == 422
        return reply.text

    create = {"sales:SA-SAMPLES:create": "on", "sales:SA-SAMPLES:name": "Samples"}
    assert "1 to 10 letters or digits" in refused({**create, "sales:SA-SAMPLES:new_code": "SAMPLES-2026"})
    assert "1 to 10 letters or digits" in refused({**create, "sales:SA-SAMPLES:new_code": "SAMPLE2026X"})
    assert "at most 150 characters" in refused({**create, "sales:SA-SAMPLES:new_code": "265",
                                                "sales:SA-SAMPLES:name": "x" * 151})
    assert "give the new Xero account a name" in refused({"sales:SA-SAMPLES:create": "on",
                                                          "sales:SA-SAMPLES:new_code": "265"})
    assert "account 200 already exists in Xero" in refused({**create, "sales:SA-SAMPLES:new_code": "200"})
    assert "Xero does not allow OUTPUT2 on purchases" in refused({"tax:purchase:STD20": "OUTPUT2"})
    created = client.post(f"{P}/ui/mappings", data={**create, "sales:SA-SAMPLES:new_code": "265"},
                          headers=as_admin, follow_redirects=False)
    assert created.status_code == 303
    with db(synced["db"]) as conn:
        row = conn.execute("SELECT * FROM xero_sync.account_mappings WHERE omono_code = 'SA-SAMPLES'").fetchone()
    assert (row["xero_account_code"], row["create_in_xero"], row["xero_account_name"]) == ("265", True, "Samples")


# -- general options ----------------------------------------------------------------------------------------------
def test_general_options_refuse_bad_addresses_and_links_keep_the_edits_and_save_nothing(
        client, synced: dict, as_admin: dict) -> None:
    for field, value, why in (
            ("alert_email", "ops@@example.com", "is not an e-mail address"),
            ("alert_email", "ops@example.com, bob", "&#39;bob&#39; is not an e-mail address"),
            ("alert_email", "a" * 65 + "@example.com", "is not an e-mail address"),
            ("alert_email", ("x" * 60 + "@example.com,") * 8, "at most 500 characters"),
            ("omono_url_pattern", "javascript:alert(1)//{id}", "must be a web address"),
            ("omono_url_pattern", "https://omono.example.com/{entity}", "must contain {id}"),
            ("omono_url_pattern", "https://omono.example.com/{entity}/{id}/{user}", "only {entity} and {id}"),
            ("sync_interval", "every minute", "Sync interval: one of")):
        bad = client.post(f"{P}/ui/settings", data={**OPTIONS, field: value}, headers=as_admin)
        assert bad.status_code == 422 and why in bad.text, (field, value)
        assert 'value="https://omono.example.com/app/{entity}/{id}"' in bad.text or field == "omono_url_pattern"
        assert "<option selected>DRAFT</option>" in bad.text                       # the user's other edits
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.settings WHERE key = 'sync_interval'") == 0


def test_the_omono_record_link_is_a_setting_every_row_uses(client, synced: dict, as_admin: dict) -> None:
    assert client.post(f"{P}/ui/settings", data=OPTIONS, headers=as_admin, follow_redirects=False
                       ).status_code == 303
    with db(synced["db"]) as conn:
        saved = {r["key"]: (r["value"], r["updated_by"]) for r in conn.execute("SELECT * FROM xero_sync.settings")}
    assert saved["sync_interval"] == ("hourly", "admin-user") and saved["status.dispatch_invoice"][0] == "DRAFT"
    run = client.get(f"{P}/ui/runs/{synced['dag_id']}/{synced['run_id']}", headers=as_admin).text
    assert "https://omono.example.com/app/dispatch-invoices/" in run and "localhost:8000/omono" not in run
    assert 'value="https://omono.example.com/app/{entity}/{id}"' in client.get(f"{P}/ui/settings",
                                                                              headers=as_admin).text


def test_general_options_warn_without_smtp_and_send_a_test_e_mail_with_it(
        client, synced: dict, as_admin: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_SMTP_DEFAULT", raising=False)
    assert "Airflow has no SMTP connection 'smtp_default'" in client.get(f"{P}/ui/settings",
                                                                                headers=as_admin).text
    refused = client.post(f"{P}/ui/test-email", headers=as_admin)
    assert refused.status_code == 502 and "add it (Admin &gt; Connections) first" in refused.text
    with smtp_sink() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": port, "extra": {"disable_ssl": True,
                                                                              "disable_tls": True}}))
        assert "no SMTP connection" not in client.get(f"{P}/ui/settings", headers=as_admin).text
        sent = client.post(f"{P}/ui/test-email", headers=as_admin, follow_redirects=False)
    assert sent.headers["location"].endswith("done=test_sent")
    mail = email.message_from_string(messages[0]["data"])
    assert messages[0]["to"] == ["ops@example.com"] and mail["Subject"] == "[omono-xero-sync] test e-mail"


# -- readiness, connecting, disconnect, reset ---------------------------------------------------------------------
def test_readiness_shows_the_lights_and_rerun_reads_xero_again(client, synced: dict, as_admin: dict) -> None:
    page = client.get(f"{P}/ui/readiness", headers=as_admin).text
    assert 'class="light AMBER"' in page and "missing in Xero: JPY" in page
    assert "connected to &#39;Omono Demo Wholesale Ltd&#39;" in page
    before = len(httpx.get(f"{synced['emulator']}/_emulator/requests").json()["requests"])
    rerun = client.post(f"{P}/ui/readiness", headers=as_admin, follow_redirects=False)
    assert rerun.headers["location"].endswith("done=checks_read")
    after = httpx.get(f"{synced['emulator']}/_emulator/requests").json()["requests"][before:]
    assert [r["path"] for r in after if r["path"].startswith("/api.xro")] == [
        "/api.xro/2.0/Organisation", "/api.xro/2.0/Accounts", "/api.xro/2.0/TaxRates", "/api.xro/2.0/Currencies"]


def test_connect_starts_xeros_consent_and_a_callback_this_browser_did_not_start_is_refused(
        client, synced: dict, as_admin: dict) -> None:
    started = client.post(f"{P}/ui/connect", headers=as_admin, follow_redirects=False)
    target = urlparse(started.headers["location"])
    query = parse_qs(target.query)
    assert target.path == "/identity/connect/authorize" and query["client_id"] == [DEMO_CLIENT_ID]
    assert query["redirect_uri"] == ["http://localhost/xero/callback"] and len(query["state"][0]) >= 24
    assert "omono_xero_sync_consent=" in started.headers["set-cookie"] and "HttpOnly" in started.headers["set-cookie"]
    tokens_before = _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.oauth_tokens")
    client.cookies.clear()
    for state in (query["state"][0], "é"):
        forged = client.get(f"{P}/ui/connect/callback", params={"code": "stolen", "state": state},
                            headers=as_admin, follow_redirects=False)
        assert forged.headers["location"].endswith("/ui/settings?problem=consent_refused")
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.oauth_tokens") == tokens_before


def test_disconnect_asks_first_then_readiness_says_not_connected_at_once(client, synced: dict,
                                                                         as_admin: dict) -> None:
    ask = client.get(f"{P}/ui/disconnect", headers=as_admin)
    assert "Disconnect from Xero?" in ask.text and "Omono Demo Wholesale Ltd" in ask.text
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.oauth_tokens") == 1
    done = client.post(f"{P}/ui/disconnect", headers=as_admin, follow_redirects=False)
    assert done.headers["location"].endswith("done=disconnected")
    assert "Disconnected from Xero: the tokens are forgotten" in client.get(done.headers["location"],
                                                                            headers=as_admin).text
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.oauth_tokens") == 0
    readiness = client.get(f"{P}/ui/readiness", headers=as_admin).text
    assert 'class="light RED"' in readiness and "not connected (disconnected by admin-user on" in readiness
    assert "Re-run checks" not in readiness


def test_connecting_without_a_xero_connection_in_airflow_says_what_to_create(
        client, synced: dict, as_admin: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_XERO_DEFAULT")
    for url in (f"{P}/ui/connect", f"{P}/ui/readiness"):
        reply = client.post(url, headers=as_admin, follow_redirects=False)
        assert reply.headers["location"].endswith("problem=not_configured"), url
    assert "Airflow has no usable Xero connection yet" in client.get(f"{P}/ui/settings?problem=not_configured",
                                                                     headers=as_admin).text


def test_a_custom_connection_connects_without_consent(client, synced: dict, as_admin: dict,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_XERO_DEFAULT", json.dumps({
        "conn_type": "generic", "login": CUSTOM_CLIENT_ID, "password": CUSTOM_CLIENT_SECRET,
        "extra": {"grant": "client_credentials", "api_url": f"{synced['emulator']}/api.xro/2.0",
                  "identity_url": synced["emulator"]}}))
    with db(synced["db"]) as conn:
        conn.execute("DELETE FROM xero_sync.xero_reference")
    done = client.post(f"{P}/ui/connect", headers=as_admin, follow_redirects=False)
    assert done.headers["location"].endswith("/ui/settings?done=connected")
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.oauth_tokens") == 1
    page = client.get(f"{P}/ui/readiness", headers=as_admin).text
    assert "connected to &#39;Omono Demo Wholesale Ltd&#39;" in page and 'class="light RED"' not in page


def test_reset_needs_the_organisations_name_and_reports_how_many_records_were_forgotten(
        client, synced: dict, as_admin: dict) -> None:
    records = _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.record_state")
    log_rows = _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.sync_log")
    wrong = client.post(f"{P}/ui/reset", data={"confirm": "yes"}, headers=as_admin)
    assert wrong.status_code == 422 and "Type the organisation&#39;s name exactly" in wrong.text
    done = client.post(f"{P}/ui/reset", data={"confirm": "Omono Demo Wholesale Ltd"}, headers=as_admin,
                       follow_redirects=False)
    assert done.headers["location"].endswith(f"done=reset&n={records}")
    page = client.get(done.headers["location"], headers=as_admin).text
    assert f"Reset: {records} record(s) were forgotten" in page and f"{records} record(s) forgotten." in page
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.record_state") == 0
    assert _count(synced["db"], "SELECT count(*) AS n FROM xero_sync.sync_log") >= log_rows
