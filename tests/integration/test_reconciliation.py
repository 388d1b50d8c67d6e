"""Reconciliation: after a sync Xero agrees with Omono to the cent; what a bookkeeper or a fault changed in Xero
is found, stored, and red in the sync log until the next reconciliation."""

from __future__ import annotations

from datetime import date
from typing import Any

import httpx
import pytest

from include.omono_xero_sync import pipeline, sync_log
from include.omono_xero_sync.sync_log import RunContext
from tests.support.pipeline_env import XeroOrg, api_calls, db, last_seq, seed, xero_objects
from tests.support.steps import run_steps
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration
RANGE = {"date_from": "2026-09-01", "date_to": "2026-11-30"}


def _reconcile(run_id: str) -> dict:
    params = {"dry_run": False, "full_resync": False, **RANGE, "reconcile": True}
    return pipeline.reconcile(RunContext("omono_xero_sync", run_id, "reconcile", params=params))


def _differences(url: str) -> list[dict]:
    with db(url) as conn:
        return conn.execute("SELECT d.* FROM xero_sync.reconciliation_differences d WHERE d.reconciliation_id = "
                            "(SELECT max(id) FROM xero_sync.reconciliations) ORDER BY d.id").fetchall()


def test_after_a_clean_sync_xero_agrees_with_omono_in_two_calls(xero_org: XeroOrg, fresh_db: str,
                                                               admin: httpx.Client) -> None:
    seed(fresh_db, documents=40)
    with db(fresh_db) as conn:
        conn.execute("INSERT INTO xero_sync.settings (key, value) VALUES ('reconcile_interval', '\"off\"')")
    run_steps("r1")
    seq = last_seq(admin)
    result = _reconcile("r2")
    assert result["differences"] == 0, _differences(fresh_db)
    reads = api_calls(admin, since=seq)
    assert [(c["method"], c["path"].rsplit("/", 1)[1]) for c in reads] == [("GET", "Invoices"), ("GET", "CreditNotes")]
    with db(fresh_db) as conn:
        totals = conn.execute("SELECT * FROM xero_sync.reconciliation_totals").fetchall()
        issued = conn.execute("SELECT count(*) AS n FROM omono.dispatch_invoices").fetchone()["n"]
    assert all(t["omono_count"] == t["xero_count"] and t["omono_total"] == t["xero_total"] for t in totals)
    assert sum(t["omono_count"] for t in totals if t["entity"] == "dispatch_invoice") == issued
    assert "Xero agrees with Omono" in result["summary"] and "2 API call(s)" in result["summary"]


def test_what_changed_in_xero_is_found_and_red_until_the_next_reconciliation(xero_org: XeroOrg, fresh_db: str,
                                                                            admin: httpx.Client) -> None:
    seed(fresh_db, documents=40)
    run_steps("r1")
    invoices = {i["InvoiceNumber"]: i for i in xero_objects(admin, "invoices") if i["Type"] == "ACCREC"}
    voided, edited = sorted(invoices)[0], sorted(invoices)[1]
    admin.post(f"/tenants/{UK_TENANT}/invoices/{invoices[voided]['InvoiceID']}/void").raise_for_status()
    admin.patch(f"/tenants/{UK_TENANT}/invoices/{invoices[edited]['InvoiceID']}", json={"LineItems": [
        {"Description": "Changed by hand", "Quantity": 1, "UnitAmount": 1, "AccountCode": "200",
         "TaxType": "OUTPUT2"}]}).raise_for_status()
    stray = admin.post(f"/tenants/{UK_TENANT}/seed", json={"Invoices": [{
        "Type": "ACCREC", "Contact": {"ContactID": invoices[edited]["Contact"]["ContactID"]}, "InvoiceNumber": "X-1",
        "Date": "2026-09-05", "Status": "AUTHORISED", "LineItems": [{"Description": "x", "Quantity": 1,
                                                                    "UnitAmount": 5, "AccountCode": "200"}]}]})
    with db(fresh_db) as conn:                 # as if an earlier run had created it for a record since deleted
        conn.execute("INSERT INTO xero_sync.our_documents (xero_id, entity, omono_id) VALUES (%s, "
                     "'dispatch_invoice', 999)", (stray.json()["Invoices"][0]["InvoiceID"],))
    _reconcile("r2")
    found = {(d["kind"], d["omono_number"] or d["xero_number"]) for d in _differences(fresh_db)}
    assert found == {("missing", voided), ("totals", edited), ("orphan", "X-1")}
    with db(fresh_db) as conn:
        red = {r["omono_number"] for r in sync_log.unresolved(conn)}
        logged = conn.execute("SELECT count(*) AS n FROM xero_sync.sync_log WHERE run_id = 'r2' AND action = 'failed'"
                              ).fetchone()["n"]
    assert {voided, edited, "X-1"} <= red and logged == 3
    with pytest.raises(pipeline.RecordsNeedAttention, match=edited):
        pipeline.verify(RunContext("omono_xero_sync", "r2", "verify"))


def test_a_large_range_is_compared_in_slices_each_reading_only_its_own_records(monkeypatch: pytest.MonkeyPatch,
                                                                    xero_org: XeroOrg, fresh_db: str,
                                                                    admin: httpx.Client) -> None:
    """Issue 11 (memory): the range is cut into runs of days holding at most SLICE Omono documents, each read and
    compared on its own (two calls a slice); the findings and totals are those of one pass over the whole range."""
    from include.omono_xero_sync import reconcile

    voided, whole = _one_sales_invoice_voided_then_reconciled(fresh_db, admin, -1)
    with db(fresh_db) as conn:
        before = conn.execute("SELECT entity, currency, omono_count, omono_total, xero_count, xero_total FROM "
                              "xero_sync.reconciliation_totals WHERE reconciliation_id = (SELECT max(id) FROM "
                              "xero_sync.reconciliations) ORDER BY 1, 2").fetchall()
    monkeypatch.setattr(reconcile, "SLICE", 10)
    seq = last_seq(admin)
    pairs_read = _rows_read_from(monkeypatch, "FROM xero_sync.allocations WHERE")
    _reconcile("sliced")
    with db(fresh_db) as conn:
        parts = len(reconcile.slices(conn, *(date.fromisoformat(RANGE[k]) for k in ("date_from", "date_to"))))
        after = conn.execute("SELECT entity, currency, omono_count, omono_total, xero_count, xero_total FROM "
                             "xero_sync.reconciliation_totals WHERE reconciliation_id = (SELECT max(id) FROM "
                             "xero_sync.reconciliations) ORDER BY 1, 2").fetchall()
    assert parts > 3 and len(api_calls(admin, since=seq)) == 2 * parts
    assert {(d["kind"], d["omono_number"]) for d in _differences(fresh_db)} == whole == {
        ("missing", voided["InvoiceNumber"])}
    assert after == before
    with db(fresh_db) as conn:            # each slice reads the pairs of its own credit notes, not all history
        pairs = conn.execute("SELECT count(*) AS n FROM xero_sync.allocations a JOIN omono.credit_notes c ON c.id = "
                             "a.omono_id WHERE c.issue_date BETWEEN %(date_from)s AND %(date_to)s", RANGE).fetchone()
    assert pairs["n"] > 0 and sum(pairs_read) == pairs["n"]


def test_a_day_larger_than_a_chunk_is_compared_a_chunk_at_a_time_with_the_same_findings(
        monkeypatch: pytest.MonkeyPatch, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """Issue 11 (memory, 1M: reconcile +128 MB): a slice is at least a whole day (Xero's `Date` filter), 16,000
    documents a day at 1M, and each held Omono's documents and their sync state all at once. Omono's side of a
    slice is now loaded and compared CHUNK records at a time; Xero's side stays whole (small records)."""
    from include.omono_xero_sync import reconcile

    voided, whole = _one_sales_invoice_voided_then_reconciled(fresh_db, admin, 0)
    monkeypatch.setattr(reconcile, "CHUNK", 3, raising=False)
    states_read = _rows_read_from(monkeypatch, "FROM xero_sync.record_state WHERE entity = %s AND omono_id")
    _reconcile("chunked")
    assert states_read and max(states_read) <= 3
    assert {(d["kind"], d["omono_number"]) for d in _differences(fresh_db)} == whole == {
        ("missing", voided["InvoiceNumber"])}


def _one_sales_invoice_voided_then_reconciled(url: str, admin: httpx.Client, which: int) -> tuple[dict, set]:
    """40 demo documents synced, the `which`-th sales invoice (by number) voided in Xero, the range reconciled
    whole: the voided invoice, and the findings as (kind, Omono number)."""
    seed(url, documents=40)
    run_steps("r1")
    invoices = sorted((i for i in xero_objects(admin, "invoices") if i["Type"] == "ACCREC"),
                      key=lambda i: i["InvoiceNumber"])
    admin.post(f"/tenants/{UK_TENANT}/invoices/{invoices[which]['InvoiceID']}/void").raise_for_status()
    _reconcile("whole")
    return invoices[which], {(d["kind"], d["omono_number"]) for d in _differences(url)}


def _rows_read_from(monkeypatch: pytest.MonkeyPatch, reading: str) -> list[int]:
    """How many rows each SELECT containing `reading` returned, on any connection (the pipeline opens its
    own)."""
    import psycopg

    read: list[int] = []
    original = psycopg.Connection.execute

    def spy(self: psycopg.Connection, query: Any, *args: Any, **kwargs: Any) -> psycopg.Cursor:
        cursor = original(self, query, *args, **kwargs)
        if reading in str(query) and str(query).lstrip().upper().startswith("SELECT"):
            read.append(cursor.rowcount)
        return cursor

    monkeypatch.setattr(psycopg.Connection, "execute", spy)
    return read
