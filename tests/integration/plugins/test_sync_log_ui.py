"""The sync log and record pages through Airflow's own app and auth manager, after one real sync run: what rows
show, search and filters, CSV export, bulk and single Retry/Skip with their history, readable attempts, and the
pages' protection (login, viewers, forged forms, addresses that are not understood)."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from psycopg.types.json import Jsonb

from tests.integration.plugins.conftest import P, db, form_token, token

pytestmark = pytest.mark.integration


def _pages(s: dict) -> list[str]:
    return [f"{P}/ui/runs/{s['dag_id']}/{s['run_id']}", f"{P}/ui/task/{s['dag_id']}/{s['run_id']}/check_records",
            f"{P}/ui/log", f"{P}/ui/latest", f"{P}/ui/records/contact/1", f"{P}/ui/mappings", f"{P}/ui/readiness",
            f"{P}/ui/settings"]


def _one(url: str, sql: str, *args: object) -> dict:
    with db(url) as conn:
        return conn.execute(sql, args).fetchone()


# -- protection ---------------------------------------------------------------------------------------------------
def test_an_anonymous_browser_is_sent_to_airflows_login_page_and_api_clients_get_401(client, synced: dict) -> None:
    for url in _pages(synced):
        reply = client.get(url, follow_redirects=False)
        assert reply.status_code == 303 and reply.headers["location"].startswith("/auth/login?next="), url
    assert client.get(f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}").status_code == 401
    assert client.post(f"{P}/ui/settings", follow_redirects=False).headers["location"].startswith("/auth/login")


def test_a_viewer_reads_every_page_sees_no_button_it_cannot_use_and_changes_nothing(
        client, synced: dict, as_viewer: dict) -> None:
    for url in _pages(synced):
        reply = client.get(url, headers=as_viewer)
        assert reply.status_code == 200, url
        assert "<button" not in reply.text.replace('<button type="submit">Filter</button>', ""), url
        assert "Retry the red rows" not in reply.text and "Disconnect" not in reply.text, url
    for url in (f"{P}/ui/settings", f"{P}/ui/mappings", f"{P}/ui/readiness", f"{P}/ui/records/contact/1/skip",
                f"{P}/ui/bulk/skip", f"{P}/ui/disconnect", f"{P}/ui/connect"):
        refused = client.post(url, headers=as_viewer)
        assert refused.status_code == 403 and "ask an Airflow admin" in refused.text, url


def test_a_cookie_session_change_needs_this_origin_and_the_pages_form_token(client, synced: dict,
                                                                            airflow_app) -> None:
    client.cookies.set("_token", token(airflow_app, "admin"))
    try:
        page = client.get(f"{P}/ui/settings")
        good = {"form_token": form_token(page.text), "status.dispatch_invoice": "AUTHORISED",
                "status.delivery_invoice": "AUTHORISED", "status.sales_credit_note": "AUTHORISED",
                "status.purchase_credit_note": "AUTHORISED", "sync_interval": "off",
                "omono_url_pattern": "http://localhost:8000/omono/{entity}/{id}", "alert_email": "evil@example.com"}
        here, same_site = {"Origin": "http://localhost"}, {"Origin": "http://localhost:9999"}
        for headers, form in (({}, good), (same_site, good), (here, {**good, "form_token": "x"}),
                              (here, {**good, "form_token": "ü" * 64}),
                              ({"Referer": "http://attacker.localhost/page"}, good)):
            refused = client.post(f"{P}/ui/settings", data=form, headers=headers, follow_redirects=False)
            assert refused.status_code == 403 and "Nothing was changed" in refused.text
        assert _one(synced["db"], "SELECT count(*) AS n FROM xero_sync.settings WHERE key = 'alert_email'")["n"] == 0
        ok = client.post(f"{P}/ui/settings", data={**good, "alert_email": ""},
                         headers={"Origin": "http://localhost"}, follow_redirects=False)
        assert ok.status_code == 303 and ok.headers["location"].endswith("/ui/settings?done=saved")
    finally:
        client.cookies.clear()


def test_addresses_the_pages_do_not_understand_give_a_page_and_echo_nothing(client, synced: dict,
                                                                            as_admin: dict) -> None:
    run = f"{P}/ui/runs/{synced['dag_id']}/{synced['run_id']}"
    for url in (f"{run}?page=abc", f"{run}?action=<b>exploded</b>", f"{P}/ui/log?from=yesterday",
                f"{P}/ui/records/contact/abc", f"{P}/ui/records/planet/1"):
        reply = client.get(url, headers=as_admin)
        assert reply.status_code in (400, 404, 422) and reply.headers["content-type"].startswith("text/html"), url
        assert "<!doctype html>" in reply.text and "exploded" not in reply.text and "yesterday" not in reply.text
    other = client.get(f"{P}/ui/runs/another_dag/{synced['run_id']}", headers=as_admin)
    assert other.status_code == 404 and "Only the runs of the DAG omono_xero_sync" in other.text
    echoed = client.get(f"{P}/ui/readiness?error=INJECTED&problem=INJECTED&done=INJECTED&n=INJECTED",
                        headers=as_admin).text
    assert "INJECTED" not in echoed
    assert client.get(f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}?action=exploded",
                      headers=as_admin).status_code == 422


def test_plugin_registers_its_tabs_and_the_xero_callback_with_airflow(client, as_admin: dict) -> None:
    plugins = client.get("/api/v2/plugins", headers=as_admin).json()["plugins"]
    mine = next(p for p in plugins if p["name"] == "omono_xero_sync")
    assert {(v["destination"], v["href"]) for v in mine["external_views"]} == {
        ("dag_run", "xero-sync/ui/runs/{DAG_ID}/{RUN_ID}"),
        ("task_instance", "xero-sync/ui/task/{DAG_ID}/{RUN_ID}/{TASK_ID}"), ("nav", "xero-sync/ui/readiness")}
    hop = client.get("/xero/callback?code=c&state=s", follow_redirects=False)
    assert hop.status_code == 303 and hop.headers["location"] == "/xero-sync/ui/connect/callback?code=c&state=s"


# -- what rows show, search, filters, export --------------------------------------------------------------------
def test_rows_show_company_document_date_currency_and_total_as_omono_has_them(client, synced: dict,
                                                                              as_admin: dict) -> None:
    url = f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}"
    row = client.get(url, params={"q": "SO-1010"}, headers=as_admin).json()["rows"][0]
    doc = _one(synced["db"], "SELECT c.name, d.issue_date, d.currency_code, (SELECT sum(round(round(l.quantity * "
               "l.unit_price * (1 - l.discount_percent / 100), 2) * (1 + t.rate / 100), 2)) FROM "
               "omono.dispatch_invoice_lines l JOIN omono.tax_rates t ON t.code = l.tax_code WHERE l.invoice_id = "
               "d.id) AS total FROM omono.dispatch_invoices d JOIN omono.companies c ON c.id = d.company_id "
               "WHERE d.number = 'SO-1010'")
    assert row["omono"]["company"] == doc["name"] and row["omono"]["currency"] == doc["currency_code"]
    assert row["omono"]["date"] == doc["issue_date"].isoformat()
    assert abs(float(row["omono"]["total"]) - float(doc["total"])) <= 0.02     # tax rounded per line, as Xero does
    page = client.get(f"{P}/ui/runs/{synced['dag_id']}/{synced['run_id']}", headers=as_admin).text
    assert 'class="attention"' in page and doc["name"] in page
    assert "sales analysis code &#39;SA-SAMPLES&#39; is not mapped" in page
    assert "https://go.xero.com/organisationlogin/default.aspx?shortcode=%21Omn0K&amp;redirecturl=" in page
    assert "http://localhost:8000/omono/dispatch-invoices/" in page


def test_search_finds_rows_by_company_name_number_xero_id_or_message(client, synced: dict, as_admin: dict) -> None:
    url = f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}"
    company = _one(synced["db"], "SELECT c.id, c.name FROM omono.companies c JOIN omono.dispatch_invoices d ON "
                   "d.company_id = c.id ORDER BY c.id LIMIT 1")
    by_name = client.get(url, params={"q": company["name"].upper()[2:12]}, headers=as_admin).json()["rows"]
    assert any(r["entity"] == "dispatch_invoice" and r["omono"]["company"] == company["name"] for r in by_name)
    assert [r["omono_number"] for r in client.get(url, params={"q": "SO-1010"}, headers=as_admin).json()["rows"]
            ] == ["SO-1010"]
    synced_row = next(r for r in client.get(url, params={"action": "created"}, headers=as_admin).json()["rows"]
                      if r["xero_id"])
    by_id = client.get(url, params={"q": synced_row["xero_id"][:13]}, headers=as_admin).json()["rows"]
    assert [r["id"] for r in by_id] == [synced_row["id"]]
    by_message = client.get(url, params={"q": "not enabled in the Xero"}, headers=as_admin).json()
    assert by_message["total"] > 0 and all("JPY" in " ".join(r["messages"]) for r in by_message["rows"])


def test_percent_and_underscore_in_the_search_box_are_literal(client, synced: dict, as_admin: dict) -> None:
    url = f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}"
    everything = client.get(url, headers=as_admin).json()["total"]
    for typed in ("%", "_", "S_-1010"):
        literal = _one(synced["db"], "SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = %s AND "
                       "(strpos(omono_number, %s) > 0 OR strpos(messages::text, %s) > 0)", synced["run_id"], typed,
                       typed)["n"]
        found = client.get(url, params={"q": typed}, headers=as_admin).json()["total"]
        assert found == literal < everything, typed


def test_run_log_filters_pages_and_counts(client, synced: dict, as_admin: dict) -> None:
    url = f"{P}/api/runs/{synced['dag_id']}/{synced['run_id']}"
    everything = client.get(url, headers=as_admin).json()
    assert everything["total"] > 100 and everything["pages"] == -(-everything["total"] // 100)
    second = client.get(url, params={"page": 2}, headers=as_admin).json()
    assert {r["id"] for r in second["rows"]}.isdisjoint({r["id"] for r in everything["rows"]})
    held = client.get(url, params={"action": "held"}, headers=as_admin).json()
    assert held["rows"] and all(r["action"] == "held" for r in held["rows"])
    assert held["total"] == sum(c.get("held", 0) for c in everything["counts"].values())
    bills = client.get(url, params={"entity": "delivery_invoice"}, headers=as_admin).json()
    assert bills["rows"] and {r["entity"] for r in bills["rows"]} == {"delivery_invoice"}
    task = client.get(url, params={"task_id": "push_contacts"}, headers=as_admin).json()["rows"]
    assert task and {r["task_id"] for r in task} == {"push_contacts"}


def test_the_date_filter_works_across_runs(client, synced: dict, as_admin: dict) -> None:
    today = datetime.now(UTC).date()
    with db(synced["db"]) as conn:          # an older run, three days ago
        conn.execute("INSERT INTO xero_sync.sync_log (dag_id, run_id, task_id, entity, omono_id, omono_number, "
                     "action, messages, created_at) VALUES ('omono_xero_sync', 'manual__old', 'push_contacts', "
                     "'contact', 1, 'C00001', 'failed', '[\"an old refusal\"]', now() - interval '3 days')")
    page = client.get(f"{P}/ui/log", params={"from": str(today - timedelta(days=4)), "to": str(today - timedelta(2))},
                      headers=as_admin).text
    assert "an old refusal" in page and "manual__old" in page and "SO-1010" not in page
    recent = client.get(f"{P}/ui/log", params={"from": str(today), "q": "SO-1010"}, headers=as_admin).text
    assert "SO-1010" in recent and "an old refusal" not in recent
    assert "No rows." in client.get(f"{P}/ui/log", params={"from": str(today + timedelta(1))}, headers=as_admin).text


def test_csv_export_holds_every_filtered_row_and_defuses_formulas(client, synced: dict, as_admin: dict) -> None:
    with db(synced["db"]) as conn:
        conn.execute("INSERT INTO xero_sync.sync_log (dag_id, run_id, task_id, entity, omono_id, omono_number, "
                     "action, messages) VALUES ('omono_xero_sync', %s, 'check_records', 'contact', 2, '=HYPERLINK(1)',"
                     " 'held', '[\"=cmd|calc\"]')", (synced["run_id"],))
        held = conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = %s AND action = 'held'",
                            (synced["run_id"],)).fetchone()["n"]
    reply = client.get(f"{P}/ui/log.csv", params={"run_id": synced["run_id"], "action": "held"}, headers=as_admin)
    assert reply.headers["content-type"].startswith("text/csv") and "attachment" in reply.headers[
        "content-disposition"]
    rows = list(csv.DictReader(io.StringIO(reply.text)))
    assert len(rows) == held and {r["action"] for r in rows} == {"held"}
    planted = next(r for r in rows if "HYPERLINK" in r["number"])
    assert planted["number"] == "'=HYPERLINK(1)" and planted["messages"] == "'=cmd|calc"
    assert any(r["company"] and r["document date"] and r["currency"] and r["total"] for r in rows)


def test_history_chart_has_dates_and_a_legend_and_links_each_run(client, synced: dict, as_admin: dict) -> None:
    page = client.get(f"{P}/ui/runs/{synced['dag_id']}/{synced['run_id']}", headers=as_admin).text
    legend = page[page.index('<figcaption class="legend">'):page.index("</figcaption>")]
    assert "bar-synced" in legend and "bar-red" in legend and "needing attention (held, refused)" in legend
    assert "dates in UTC" in legend and f'class="tick">{datetime.now(UTC):%d %b}</text>' in page
    assert f'/ui/runs/omono_xero_sync/{synced["run_id"]}"' in page


# -- one record, Retry and Skip -----------------------------------------------------------------------------------
def test_skip_is_offered_only_where_it_means_something_leaves_who_and_when_and_retry_ends_it(
        client, synced: dict, as_admin: dict) -> None:
    held = _one(synced["db"], "SELECT entity, omono_id, omono_number FROM xero_sync.record_state WHERE status = "
                "'held' AND entity = 'delivery_invoice' ORDER BY omono_id LIMIT 1")
    done = _one(synced["db"], "SELECT entity, omono_id FROM xero_sync.record_state WHERE status = 'synced' LIMIT 1")
    url = f"{P}/ui/records/{held['entity']}/{held['omono_id']}"
    page = client.get(url, headers=as_admin).text
    assert "Stops sending it and showing it red" in page and "Retry on next run" not in page
    synced_page = client.get(f"{P}/ui/records/{done['entity']}/{done['omono_id']}", headers=as_admin).text
    assert ">Skip</button>" not in synced_page and "Retry on next run" not in synced_page
    assert client.post(f"{P}/ui/records/{done['entity']}/{done['omono_id']}/skip", headers=as_admin
                       ).status_code == 409
    before = datetime.now(UTC)
    assert client.post(f"{url}/skip", headers=as_admin, follow_redirects=False).status_code == 303
    row = _one(synced["db"], "SELECT status, skipped_by, skipped_at FROM xero_sync.record_state WHERE entity = %s "
               "AND omono_id = %s", held["entity"], held["omono_id"])
    assert (row["status"], row["skipped_by"]) == ("skipped", "admin-user")
    assert before - timedelta(seconds=5) <= row["skipped_at"] <= datetime.now(UTC)
    page = client.get(f"{url}?done=skipped&n=1", headers=as_admin).text
    assert f"by admin-user on {row['skipped_at']:%Y-%m-%d %H:%M} UTC" in page and "Skipped: 1 record(s)" in page
    assert "Skipped by admin-user: not sent to Xero again until it changes in Omono" in page
    assert "Sends it to Xero again on the next run" in page and ">Skip</button>" not in page
    assert client.post(f"{url}/retry", headers=as_admin, follow_redirects=False).status_code == 303
    row = _one(synced["db"], "SELECT status, skipped_by, skipped_at FROM xero_sync.record_state WHERE entity = %s "
               "AND omono_id = %s", held["entity"], held["omono_id"])
    assert (row["status"], row["skipped_by"], row["skipped_at"]) == ("pending", None, None)
    history = client.get(url, headers=as_admin).text
    assert "Retry chosen by admin-user: sent to Xero again on the next run." in history


def test_a_skip_is_cleared_when_the_record_changes_in_omono_since_it_was_read(synced: dict) -> None:
    from include.omono_xero_sync import state
    from include.omono_xero_sync.sync_log import RunContext

    ctx = RunContext("omono_xero_sync", "manual__next", "extract_changes")
    with db(synced["db"]) as conn:
        keys = [(r["entity"], r["omono_id"]) for r in conn.execute(
            "SELECT entity, omono_id FROM xero_sync.record_state WHERE status = 'held' AND entity = "
            "'dispatch_invoice' ORDER BY omono_id LIMIT 2")]
        assert state.skip(conn, keys, "ops", RunContext("omono_xero_sync", "ui", "ui")) == 2
        cleared = state.unskip_changed(conn, "dispatch_invoice", [keys[1][1]], ctx)     # what the change log holds
        assert cleared == [keys[1][1]]
        now = {r["omono_id"]: r for r in conn.execute(
            "SELECT omono_id, status, skipped_by FROM xero_sync.record_state WHERE entity = 'dispatch_invoice' AND "
            "omono_id = ANY(%s)", ([k[1] for k in keys],))}
        assert now[keys[0][1]]["status"] == "skipped" and (now[keys[1][1]]["status"], now[keys[1][1]]["skipped_by"]
                                                           ) == ("pending", None)
        log = conn.execute("SELECT run_id, messages FROM xero_sync.sync_log WHERE action = 'unskipped'").fetchall()
        assert [r["run_id"] for r in log] == ["manual__next"] and "changed in Omono since it was skipped" in log[0][
            "messages"][0]
        state.retry(conn, keys, "ops", RunContext("omono_xero_sync", "ui", "ui"))


def test_attempts_are_readable_with_http_status_endpoint_and_correlation_id(client, synced: dict,
                                                                            as_admin: dict) -> None:
    rec = _one(synced["db"], "SELECT entity, omono_id FROM xero_sync.record_state WHERE status = 'synced' AND "
               "entity = 'contact' LIMIT 1")
    with db(synced["db"]) as conn:
        conn.execute("INSERT INTO xero_sync.sync_log (dag_id, run_id, task_id, entity, omono_id, omono_number, action,"
                     " sent, answer, http_status, endpoint, correlation_id) VALUES ('omono_xero_sync', %s, "
                     "'push_contacts', %s, %s, 'C0', 'updated', %s, %s, 200, 'POST /api.xro/2.0/Contacts', "
                     "'7d3a9c1e-0000-4000-8000-00000000abcd')",
                     (synced["run_id"], rec["entity"], rec["omono_id"], Jsonb({"Name": "O'Neill & Söhne <Ltd>"}),
                      Jsonb({"status": "ACTIVE"})))
    page = client.get(f"{P}/ui/records/{rec['entity']}/{rec['omono_id']}", headers=as_admin).text
    assert "O&#39;Neill &amp; Söhne &lt;Ltd&gt;" in page and "\\u0027" not in page and "\\u00f6" not in page
    assert '{\n  &#34;Name&#34;: &#34;O&#39;Neill' in page        # indented JSON, one key a line
    assert "HTTP 200" in page and "POST /api.xro/2.0/Contacts" in page
    assert "7d3a9c1e-0000-4000-8000-00000000abcd" in page
    assert f'/ui/runs/omono_xero_sync/{synced["run_id"]}"' in page        # the run's log, one click away


# -- bulk ---------------------------------------------------------------------------------------------------------
def test_bulk_skip_asks_first_then_acts_on_exactly_the_filtered_red_rows_and_bulk_retry_undoes_it(
        client, synced: dict, as_admin: dict) -> None:
    f = {"run_id": synced["run_id"], "entity": "delivery_invoice"}
    held = _one(synced["db"], "SELECT count(*) AS n FROM xero_sync.record_state WHERE status = 'held' AND omono_id IN "
                "(SELECT omono_id FROM xero_sync.sync_log WHERE run_id = %s AND entity = 'delivery_invoice' AND "
                "action = 'held') AND entity = 'delivery_invoice'", synced["run_id"])["n"]
    confirm = client.get(f"{P}/ui/bulk/skip", params=f, headers=as_admin)
    assert confirm.status_code == 200 and f"<strong>{held}</strong> held or refused record(s)" in confirm.text
    assert _one(synced["db"], "SELECT count(*) AS n FROM xero_sync.record_state WHERE status = 'skipped'")["n"] == 0
    done = client.post(f"{P}/ui/bulk/skip", data=f, headers=as_admin, follow_redirects=False)
    assert done.status_code == 303 and f"done=skipped&n={held}" in done.headers["location"]
    states = {r["entity"]: r["n"] for r in db(synced["db"]).execute(
        "SELECT entity, count(*) AS n FROM xero_sync.record_state WHERE status = 'skipped' GROUP BY entity")}
    assert states == {"delivery_invoice": held}
    shown = client.get(done.headers["location"], headers=as_admin).text
    assert f"Skipped: {held} record(s)" in shown
    again = client.post(f"{P}/ui/bulk/retry", data=f, headers=as_admin, follow_redirects=False)
    assert f"done=retried&n={held}" in again.headers["location"]
    assert _one(synced["db"], "SELECT count(*) AS n FROM xero_sync.record_state WHERE status = 'skipped'")["n"] == 0
