"""In a real browser (Debian's chromium, headless, driven by Playwright) against the real Airflow api-server with the
plugin, after a real sync run: every flow a person clicks through, in the order a new user meets them, in one
logged-in browser context. Screenshots of the main pages are written to docs/screenshots/.

The Xero side is the emulator, whose demo app has this api-server's /xero/callback registered (conftest.py), so
Connect to Xero runs the real consent round trip. Omono's Sync Now is Airflow's REST API, called here as Omono
calls it: with a service account's token."""

from __future__ import annotations

import csv
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from tests.integration.plugins.conftest import db, free_port, sync_demo
from tests.support.pipeline_env import ROOT, run_sync
from tests.support.smtp_sink import smtp_sink
from tests.support.xero_sdk import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, UK_TENANT

pytestmark = pytest.mark.integration
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "browser-test-password"
SERVICE = ("omono-sync", "omono-service-password")    # Omono's service account (README: Sync Now from Omono)
ORGANISATION = "Omono Demo Wholesale Ltd"


@pytest.fixture(scope="module")
def mail() -> Iterator[tuple[int, list[dict]]]:
    with smtp_sink() as sink:
        yield sink


@pytest.fixture(scope="module")
def synced(emulator, pg_url: str, sync_dag) -> dict:
    return sync_demo(emulator, pg_url, sync_dag, documents=60)


@pytest.fixture(scope="module")
def api_server(emulator, synced: dict, ui_port: int, mail: tuple, tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[subprocess.Popen]:
    """The real Airflow api-server (UI, REST API, the plugin), one worker. Its Xero connection names no tenant:
    the organisation is chosen in the UI, as a new user does."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (.ci/run installs it)")
    _, emulator_url = emulator
    home = tmp_path_factory.mktemp("auth")
    (home / "passwords.json").write_text(json.dumps({"admin": PASSWORD, SERVICE[0]: SERVICE[1]}))
    xero = {"conn_type": "generic", "login": DEMO_CLIENT_ID, "password": DEMO_CLIENT_SECRET,
            "extra": {"api_url": f"{emulator_url}/api.xro/2.0", "identity_url": emulator_url}}
    smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": mail[0], "extra": {"disable_ssl": True,
                                                                                "disable_tls": True}}
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"admin:admin,{SERVICE[0]}:user",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(home / "passwords.json"),
           "AIRFLOW__API__BASE_URL": f"http://localhost:{ui_port}",
           "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(xero), "AIRFLOW_CONN_SMTP_DEFAULT": json.dumps(smtp)}
    log = open(home / "api-server.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(ui_port), "--workers", "1"],
                            env=env, stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    yield proc
    proc.terminate()
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@pytest.fixture(scope="module")
def ui(api_server: subprocess.Popen, ui_port: int) -> str:
    base = f"http://localhost:{ui_port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                return base
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"api-server did not start (exit code {api_server.poll()})")


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--no-first-run", "--disable-sync"])
        yield b
        b.close()


def _log_in(page, ui: str, path: str) -> None:
    """Open `path` as an anonymous browser: Airflow's login page comes first, then the page asked for."""
    page.goto(f"{ui}{path}")
    page.wait_for_url("**/auth/login**")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**{path}")


def _new_page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 900}, accept_downloads=True)
    context.set_default_timeout(20_000)
    return context, context.new_page()


@pytest.fixture(scope="module")
def page(browser, ui: str):
    """The admin's browser, logged in once: each test may run alone or in any order."""
    context, page = _new_page(browser)
    _log_in(page, ui, "/xero-sync/ui/settings")
    yield page
    context.close()


def _plugin(page, ui: str, route: str):
    """Open one of Airflow's plugin pages (the iframe it embeds) and return the frame's locator."""
    page.goto(f"{ui}/{route}")
    return page.frame_locator("iframe")


def _submit(page, control) -> None:
    """Click a control that reloads Airflow's plugin frame, and wait for the new page in it."""
    with page.main_frame.child_frames[0].expect_navigation():
        control.click()


def _db_value(url: str, sql: str, *args: object) -> object:
    with db(url) as conn:
        row = conn.execute(sql, args).fetchone()
    return next(iter(row.values())) if row else None


# -- 1. finding it, and who may do what ---------------------------------------------------------------------------
def test_an_anonymous_browser_is_sent_to_airflows_login_and_comes_back_to_the_page(browser, ui: str) -> None:
    context, anonymous = _new_page(browser)
    try:
        _log_in(anonymous, ui, "/xero-sync/ui/settings")
        assert anonymous.locator("h1").inner_text() == "General options"
    finally:
        context.close()


def test_a_page_on_another_port_of_the_same_site_cannot_change_anything_as_the_logged_in_admin(
        page, ui: str, synced: dict) -> None:
    held = _db_value(synced["db"], "SELECT omono_id FROM xero_sync.record_state WHERE status = 'held' AND entity = "
                     "'dispatch_invoice' ORDER BY omono_id LIMIT 1")
    forms = {"settings": ("/xero-sync/ui/settings", {"alert_email": "attacker@evil.example", "sync_interval": "off"}),
             "skip": (f"/xero-sync/ui/records/dispatch_invoice/{held}/skip", {})}
    with _attacker_site(ui, forms) as attacker:
        for name in forms:
            page.goto(f"{attacker}/{name}")
            page.wait_for_url(f"{ui}/**")
            assert "Not sent from this page" in page.locator("h1").inner_text()
    assert _db_value(synced["db"], "SELECT count(*) FROM xero_sync.settings WHERE key = 'alert_email'") == 0
    assert _db_value(synced["db"], "SELECT status FROM xero_sync.record_state WHERE entity = 'dispatch_invoice' "
                     "AND omono_id = %s", held) == "held"


class _AttackerPage(http.server.BaseHTTPRequestHandler):
    forms: dict[str, tuple[str, dict]] = {}
    target = ""

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        action, fields = self.forms[self.path.strip("/")]
        inputs = "".join(f'<input name="{k}" value="{v}">' for k, v in fields.items())
        body = (f'<form method="post" action="{self.target}{action}">{inputs}</form>'
                "<script>document.forms[0].submit()</script>").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


class _attacker_site:  # noqa: N801 - used as a context manager, read as a phrase
    """A page of the same site (another port of localhost) that auto-posts forms to the plugin."""

    def __init__(self, target: str, forms: dict) -> None:
        handler = type("Handler", (_AttackerPage,), {"forms": forms, "target": target})
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return f"http://localhost:{self.server.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- 2. the sync log ----------------------------------------------------------------------------------------------
def test_bookkeeper_reads_the_runs_tab_searches_by_company_and_exports_the_rows(page, ui: str, synced: dict) -> None:
    frame = _plugin(page, ui, f"dags/{synced['dag_id']}/runs/{synced['run_id']}/plugin/xero-sync-run")
    red = frame.locator("#log tr.attention", has_text="SA-SAMPLES").first
    red.wait_for()
    frame.locator("form.filters").evaluate("form => form.scrollIntoView()")
    cells = red.locator("td").all_inner_texts()
    doc = _db_value(synced["db"], "SELECT row_to_json(x) FROM (SELECT c.name, d.issue_date::text AS date, "
                    "d.currency_code FROM omono.dispatch_invoices d JOIN omono.companies c ON c.id = d.company_id "
                    "WHERE d.number = %s) x", cells[0].split()[-1])
    assert cells[1:4] == [doc["name"], doc["date"], doc["currency_code"]] and float(cells[4].replace(",", "")) > 0
    assert "is not mapped to a Xero account" in cells[6]
    page.screenshot(path=str(SHOTS / "sync-log.png"))

    frame.get_by_label("search").fill(doc["name"][:12])
    _submit(page, frame.get_by_role("button", name="Filter"))
    assert all(doc["name"][:12] in c for c in frame.locator("#log tr td:nth-child(2)").all_inner_texts())
    with page.expect_download() as download:
        frame.get_by_role("link", name="Export these rows (CSV)").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert rows and all(doc["name"][:12] in r["company"] for r in rows)

    _submit(page, frame.get_by_role("link", name="Every run, by date"))    # the date filter, across runs
    today = datetime.now(UTC).date()
    frame.get_by_label("from date").fill(str(today + timedelta(days=1)))
    _submit(page, frame.get_by_role("button", name="Filter"))
    assert frame.locator("#log").inner_text().endswith("No rows.")
    frame.get_by_label("from date").fill(str(today))
    frame.get_by_label("to date").fill(str(today))
    _submit(page, frame.get_by_role("button", name="Filter"))
    assert frame.locator("#log tr.attention").count() > 0


def test_bookkeeper_skips_a_red_record_sees_who_and_when_then_retries_it(page, ui: str, synced: dict) -> None:
    frame = _plugin(page, ui, f"dags/{synced['dag_id']}/runs/{synced['run_id']}/plugin/xero-sync-run")
    frame.locator("#log tr.attention", has_text="PO-").first.locator("a").first.click()
    frame.get_by_role("button", name="Skip").click()
    frame.get_by_text("Skipped: 1 record(s)").wait_for()
    assert "Skipped by admin: not sent to Xero again" in frame.locator("#attempts").inner_text()
    assert "by admin on " in frame.locator("table.facts").inner_text()
    frame.get_by_role("button", name="Retry on next run").click()
    frame.get_by_text("Retry chosen: 1 record(s)").wait_for()
    history = frame.locator("#attempts").inner_text()
    assert "Retry chosen by admin" in history and history.count("in the UI") == 2
    page.screenshot(path=str(SHOTS / "record.png"))
    omono = "http://localhost:8000/omono/"                      # Omono's own pages (the default link setting)
    page.context.route(f"{omono}**", lambda route: route.fulfill(body="Omono", content_type="text/html"))
    with page.context.expect_page() as opened:                  # a link out of Airflow's sandboxed frame
        frame.locator("table.facts").get_by_role("link", name="Omono").click()
    assert opened.value.url.startswith(f"{omono}delivery-invoices/")
    opened.value.close()
    frame.locator("#attempts a").last.click()                      # the run id: back to that run's log
    frame.locator("#log").wait_for()


def test_bulk_skip_of_the_filtered_red_rows_asks_for_confirmation_first(page, ui: str, synced: dict) -> None:
    frame = _plugin(page, ui, f"dags/{synced['dag_id']}/runs/{synced['run_id']}/plugin/xero-sync-run")
    frame.get_by_label("record type").select_option("dispatch_invoice")
    frame.get_by_label("action").select_option("held")
    _submit(page, frame.get_by_role("button", name="Filter"))
    frame.get_by_role("link", name="Skip the red rows…").click()
    confirm = frame.get_by_role("button", name="Skip")
    n = int(confirm.inner_text().split()[1])
    assert n > 0 and _db_value(synced["db"], "SELECT count(*) FROM xero_sync.record_state WHERE status = "
                                             "'skipped'") == 0
    confirm.click()
    frame.get_by_text(f"Skipped: {n} record(s)").wait_for()
    assert _db_value(synced["db"], "SELECT count(*) FROM xero_sync.record_state WHERE status = 'skipped' AND "
                     "entity = 'dispatch_invoice'") == n
    frame.get_by_role("link", name="Retry the red rows…").click()
    frame.get_by_role("button", name="Retry").click()
    frame.get_by_text(f"Retry chosen: {n} record(s)").wait_for()


# -- 3. setting it up ---------------------------------------------------------------------------------------------
def test_a_refused_mappings_form_keeps_the_fix_and_a_mapping_can_be_removed(page, ui: str, synced: dict) -> None:
    frame = _plugin(page, ui, "plugin/xero-sync")
    frame.locator("header").get_by_role("link", name="Mappings").click()
    assert "not in Omono's code list" in frame.locator("#purchase-codes tr", has_text="PA-UNKNOWN").inner_text()
    frame.locator("select[name='sales:SA-SAMPLES']").select_option("260")
    frame.locator("select[name='purchase:PA-UNKNOWN']").select_option("310")
    frame.locator("input[name='sales:SA-RETAIL:create']").check()
    frame.locator("input[name='sales:SA-RETAIL:new_code']").fill("RETAIL-2026")
    frame.locator("input[name='sales:SA-RETAIL:name']").fill("Retail 2026")
    page.screenshot(path=str(SHOTS / "mappings.png"))
    frame.get_by_role("button", name="Save mappings").click()
    frame.get_by_text("Nothing was saved").wait_for()
    assert "1 to 10 letters or digits" in frame.locator(".errors").inner_text()
    assert frame.locator("select[name='sales:SA-SAMPLES']").input_value() == "260"          # the fix is kept
    frame.locator("input[name='sales:SA-RETAIL:create']").uncheck()
    frame.locator("select[name='sales:SA-RETAIL']").select_option("200")
    frame.locator("select[name='tax:sales:EXEMPT']").select_option("")                       # "—": remove it
    frame.get_by_role("button", name="Save mappings").click()
    frame.get_by_text("Saved. The next run uses these mappings.").wait_for()
    assert frame.locator("select[name='tax:sales:EXEMPT']").input_value() == ""
    assert _db_value(synced["db"], "SELECT count(*) FROM xero_sync.tax_mappings WHERE kind = 'sales' AND "
                     "omono_tax_code = 'EXEMPT'") == 0


def test_general_options_save_the_alert_address_and_send_a_test_e_mail(page, ui: str, mail: tuple) -> None:
    frame = _plugin(page, ui, "plugin/xero-sync")
    frame.locator("header").get_by_role("link", name="General options").click()
    frame.get_by_label("alert e-mail").fill("not an address")
    frame.get_by_label("Omono record link").fill("https://omono.example.com/{entity}/{id}")
    frame.get_by_role("button", name="Save options").click()
    frame.get_by_text("is not an e-mail address").wait_for()
    assert frame.get_by_label("Omono record link").input_value() == "https://omono.example.com/{entity}/{id}"
    frame.get_by_label("alert e-mail").fill("books@example.com")
    frame.get_by_role("button", name="Save options").click()
    frame.get_by_text("Saved.").wait_for()
    frame.get_by_role("button", name="Send a test e-mail").click()
    frame.get_by_text("A test e-mail was sent").wait_for()
    assert mail[1][-1]["to"] == ["books@example.com"]
    page.screenshot(path=str(SHOTS / "options.png"))


def test_disconnect_asks_for_confirmation_and_readiness_shows_it_at_once(page, ui: str) -> None:
    frame = _plugin(page, ui, "plugin/xero-sync")
    frame.locator("header").get_by_role("link", name="General options").click()
    frame.get_by_role("link", name="Disconnect from Xero…").click()
    frame.get_by_text("Disconnect from Xero?").wait_for()
    frame.get_by_role("button", name="Disconnect").click()
    frame.get_by_text("Disconnected from Xero: the tokens are forgotten").wait_for()
    frame.locator("header").get_by_role("link", name="Readiness").click()
    assert "not connected" in frame.locator("#checks tr", has_text="Connection to Xero").inner_text()
    assert frame.locator("#checks .light.RED").count() >= 1


def test_connecting_from_general_options_runs_xeros_consent_and_asks_which_organisation(
        page, ui: str, synced: dict) -> None:
    frame = _plugin(page, ui, "plugin/xero-sync")
    frame.locator("header").get_by_role("link", name="General options").click()
    frame.get_by_role("button", name="Connect to Xero").click()     # leaves Airflow's frame for Xero's consent
    page.wait_for_url("**/xero-sync/ui/connect/callback**")
    page.get_by_text("Which Xero organisation should Omono send to?").wait_for()
    page.get_by_label(ORGANISATION).check()
    page.get_by_role("button", name="Use this organisation").click()
    page.get_by_text("Connected to Xero").wait_for()
    assert ORGANISATION in page.locator("#connection + table").inner_text()
    assert _db_value(synced["db"], "SELECT value->>'id' FROM xero_sync.settings WHERE key = 'xero_tenant'"
                     ) == UK_TENANT
    frame = _plugin(page, ui, "plugin/xero-sync")
    assert f"connected to '{ORGANISATION}'" in frame.locator("#checks").inner_text()
    page.screenshot(path=str(SHOTS / "readiness.png"))


def test_the_bookkeeper_reconciles_xero_with_omono_and_follows_a_difference(page, ui: str, synced: dict) -> None:
    admin = httpx.Client(base_url=f"{synced['emulator']}/_emulator")
    invoice = next(i for i in admin.get(f"/tenants/{UK_TENANT}/invoices").json()["invoices"]
                   if i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED" and not i.get("AmountCredited"))
    admin.post(f"/tenants/{UK_TENANT}/invoices/{invoice['InvoiceID']}/void").raise_for_status()  # by hand, in Xero
    frame = _plugin(page, ui, "plugin/xero-sync")
    frame.locator("header").get_by_role("link", name="Reconciliation").click()
    frame.get_by_label("from").fill("2026-01-01")
    frame.get_by_label("to").fill("2026-12-31")
    frame.get_by_role("button", name="Reconcile now").click()
    frame.get_by_role("status").filter(has_text="Reconciled: the result is below").wait_for()
    row = frame.locator("#differences tr", has_text=invoice["InvoiceNumber"])
    assert "missing" in row.inner_text() and "voided in Xero" in row.inner_text()
    page.screenshot(path=str(SHOTS / "reconciliation.png"))
    row.get_by_role("link", name="record").click()
    frame.get_by_text(invoice["InvoiceNumber"]).first.wait_for()


def test_the_next_run_uses_the_fixed_mapping(synced: dict, sync_dag) -> None:
    run_sync(sync_dag)
    invoices = httpx.get(f"{synced['emulator']}/_emulator/tenants/{UK_TENANT}/invoices").json()["invoices"]
    assert any(li.get("AccountCode") == "260" for i in invoices for li in i["LineItems"])


# -- 4. Omono's Sync Now button: Airflow's REST API with a service account ----------------------------------------
def _service_token(ui: str) -> dict:
    reply = httpx.post(f"{ui}/auth/token", json={"username": SERVICE[0], "password": SERVICE[1]})
    assert reply.status_code == 201, reply.text
    return {"Authorization": f"Bearer {reply.json()['access_token']}"}


def test_omonos_sync_now_triggers_a_run_through_airflows_rest_api_with_a_service_account(ui: str) -> None:
    auth = _service_token(ui)
    conf = {"dry_run": False, "full_resync": False, "date_from": None, "date_to": None}
    reply = httpx.post(f"{ui}/api/v2/dags/omono_xero_sync/dagRuns", headers=auth,
                       json={"logical_date": None, "conf": conf, "note": "Sync Now from Omono"})
    assert reply.status_code == 200, reply.text
    run = reply.json()
    assert run["state"] == "queued" and run["conf"] == conf and run["run_type"] == "manual"
    assert httpx.delete(f"{ui}/api/v2/dags/omono_xero_sync/dagRuns/{run['dag_run_id']}",
                        headers=auth).status_code == 204


def test_a_backfill_range_running_backwards_is_refused_in_airflows_trigger_form_before_any_run_exists(
        page, ui: str) -> None:
    runs = f"{ui}/api/v2/dags/omono_xero_sync/dagRuns"
    before = httpx.get(runs, headers=_service_token(ui)).json()["total_entries"]
    page.goto(f"{ui}/dags/omono_xero_sync")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog").last
    dates = form.locator("input[type=date]")                 # Backfill from, Backfill to (document dates)
    dates.nth(0).fill("2026-10-31")
    dates.nth(1).fill("2026-09-01")
    form.get_by_role("button", name="Trigger").click()
    form.get_by_text("'Backfill from' must be on or before 'Backfill to'").wait_for()
    assert httpx.get(runs, headers=_service_token(ui)).json()["total_entries"] == before


# -- 5. starting over ---------------------------------------------------------------------------------------------
def test_reset_asks_for_the_organisations_name_and_reports_how_many_records_were_forgotten(
        page, ui: str, synced: dict) -> None:
    records = _db_value(synced["db"], "SELECT count(*) FROM xero_sync.record_state")
    frame = _plugin(page, ui, "plugin/xero-sync")
    frame.locator("header").get_by_role("link", name="General options").click()
    frame.get_by_label("confirm reset").fill("yes")
    frame.get_by_role("button", name="Reset synced state").click()
    frame.get_by_text("Type the organisation's name exactly").wait_for()
    frame.get_by_label("confirm reset").fill(ORGANISATION)
    frame.get_by_role("button", name="Reset synced state").click()
    frame.get_by_text(f"Reset: {records} record(s) were forgotten").wait_for()
