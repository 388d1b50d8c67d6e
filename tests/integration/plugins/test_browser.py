"""In a real browser (Debian's chromium, headless, driven by Playwright): log in to Airflow, open the Xero sync
log tab of a real run, see a red row, follow its link, change a mapping, and see the next run use it.
Screenshots of the main pages are written to docs/screenshots/."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tests.support.pipeline_env import ROOT, run_sync
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "docs" / "screenshots"
PASSWORD = "browser-test-password"


@pytest.fixture(scope="module")
def airflow_ui(synced: dict, tmp_path_factory: pytest.TempPathFactory):
    """The real Airflow api-server (UI, REST API, the plugin) on a free port, with one admin user."""
    if not shutil.which(CHROMIUM) and not Path(CHROMIUM).exists():
        pytest.skip(f"Debian's chromium is not installed at {CHROMIUM} (.ci/run installs it)")
    passwords = tmp_path_factory.mktemp("auth") / "passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
           "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
           "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}"}
    log = open(tmp_path_factory.mktemp("logs") / "api-server.log", "w")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "airflow", "api-server", "--port", str(port)], env=env,
                            stdout=log, stderr=subprocess.STDOUT, cwd=ROOT)
    base = f"http://127.0.0.1:{port}"
    for _ in range(240):
        try:
            if httpx.get(f"{base}/api/v2/monitor/health", timeout=2).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    else:
        proc.terminate()
        raise RuntimeError(f"api-server did not start; see {log.name}")
    yield base
    proc.terminate()
    proc.wait(20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


def test_bookkeeper_finds_a_red_row_follows_it_fixes_the_mapping_and_the_next_run_uses_it(
        airflow_ui: str, browser, synced: dict, sync_dag) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.goto(f"{airflow_ui}/")
    page.locator("input[name=username]").fill("admin")
    page.locator("input[name=password]").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "login" not in url, timeout=30_000)

    page.goto(f"{airflow_ui}/dags/{synced['dag_id']}/runs/{synced['run_id']}/plugin/xero-sync-run")
    frame = page.frame_locator("iframe")
    red = frame.locator("tr.attention", has_text="SA-SAMPLES").first
    red.wait_for(timeout=30_000)
    assert "is not mapped to a Xero account" in red.inner_text()
    page.screenshot(path=str(SHOTS / "sync-log.png"), full_page=False)

    red.locator("a", has_text="Dispatch invoice").click()
    frame.locator("text=Every attempt").wait_for(timeout=15_000)
    assert "held" in frame.locator("body").inner_text()
    page.screenshot(path=str(SHOTS / "record.png"))

    frame.locator("header a", has_text="Readiness").click()
    frame.locator("#checks").wait_for()
    page.screenshot(path=str(SHOTS / "readiness.png"))
    frame.locator("header a", has_text="Mappings").click()
    frame.locator("select[name='sales:SA-SAMPLES']").select_option("260")
    page.screenshot(path=str(SHOTS / "mappings.png"))
    frame.locator("button", has_text="Save mappings").click()
    frame.locator("text=Saved. The next run uses these mappings.").wait_for(timeout=15_000)
    frame.locator("header a", has_text="General options").click()
    frame.locator("#connection").wait_for()
    page.screenshot(path=str(SHOTS / "options.png"))

    run_sync(sync_dag)                                                  # the next run
    invoices = httpx.get(f"{synced['emulator']}/_emulator/tenants/{UK_TENANT}/invoices").json()["invoices"]
    samples = [i for i in invoices if any(li.get("AccountCode") == "260" for li in i["LineItems"])]
    assert samples, "the document held for SA-SAMPLES should now be in Xero on account 260"
