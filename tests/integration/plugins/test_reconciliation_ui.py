"""The reconciliation's page: per entity and currency both sides, every difference with links to both records, a
CSV of them, Reconcile now for editors only, and a link from the run whose reconciliation it is."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from tests.integration.plugins.conftest import P
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration


def test_a_runs_reconciliation_has_its_page_and_a_link_from_the_run(client, synced: dict, as_admin: dict) -> None:
    run = client.get(f"{P}/ui/runs/{synced['dag_id']}/{synced['run_id']}", headers=as_admin).text
    assert 'id="reconciled"' in run and "Reconciliation" in run
    page = client.get(f"{P}/ui/reconciliation", headers=as_admin).text
    assert 'id="totals"' in page and "API call(s)" in page and "dispatch invoice" in page


def test_reconcile_now_lists_what_changed_in_xero_with_links_and_exports_it(client, synced: dict,
                                                                           as_admin: dict) -> None:
    admin = httpx.Client(base_url=f"{synced['emulator']}/_emulator")
    invoice = next(i for i in admin.get(f"/tenants/{UK_TENANT}/invoices").json()["invoices"]
                   if i["Type"] == "ACCREC" and i["Status"] == "AUTHORISED" and not i.get("AmountCredited"))
    admin.post(f"/tenants/{UK_TENANT}/invoices/{invoice['InvoiceID']}/void").raise_for_status()
    reply = client.post(f"{P}/ui/reconciliation", data={"date_from": "2026-01-01", "date_to": "2026-12-31"},
                        headers=as_admin, follow_redirects=False)
    assert reply.status_code == 303 and reply.headers["location"].endswith("done=reconciled")
    page = client.get(f"{P}/ui/reconciliation", headers=as_admin).text
    assert invoice["InvoiceNumber"] in page and "voided in Xero" in page
    assert f"InvoiceID%3D{invoice['InvoiceID']}" in page                 # a deep link to it in Xero
    rid = page.split("/ui/reconciliation/")[1].split("/")[0]
    rows = list(csv.reader(io.StringIO(client.get(f"{P}/ui/reconciliation/{rid}/differences.csv",
                                                  headers=as_admin).text)))
    assert rows[0][:3] == ["kind", "record", "Omono number"]
    assert any(r[0] == "missing" and r[2] == invoice["InvoiceNumber"] for r in rows[1:])


def test_a_viewer_sees_the_reconciliation_but_cannot_run_one(client, synced: dict, as_viewer: dict) -> None:
    page = client.get(f"{P}/ui/reconciliation", headers=as_viewer).text
    assert "Reconcile now" not in page and 'id="totals"' in page
    assert client.post(f"{P}/ui/reconciliation", data={}, headers=as_viewer).status_code == 403
