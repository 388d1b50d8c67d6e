"""The sync DAG end to end through `dag.test()`: real PostgreSQL, real Airflow, real GX, and xero-python over
HTTP against the emulator. Each test asserts what a bookkeeper would check in Xero or in the sync log."""

from __future__ import annotations

import math
from collections import Counter

import httpx
import pytest

from include.commands import demo_data
from tests.support.pipeline_env import XeroOrg, api_calls, db, last_seq, run_sync, seed, xero_objects

pytestmark = pytest.mark.integration


def _log(url: str, run_id: str | None = None) -> list[dict]:
    with db(url) as conn:
        sql = "SELECT * FROM xero_sync.sync_log" + (" WHERE run_id = %s" if run_id else "") + " ORDER BY id"
        return conn.execute(sql, (run_id,) if run_id else ()).fetchall()


def _actions(rows: list[dict]) -> Counter:
    return Counter((r["entity"], r["action"]) for r in rows)


def test_first_sync_lands_every_good_record_once_with_the_right_codes(sync_dag, xero_org: XeroOrg, fresh_db: str,
                                                                      admin: httpx.Client) -> None:
    seed(fresh_db, documents=30, bad_share=0)
    run = run_sync(sync_dag)
    assert run.state == "success", run.task_states
    contacts, invoices = xero_objects(admin, "contacts"), xero_objects(admin, "invoices")
    credits = xero_objects(admin, "creditnotes")
    with db(fresh_db) as conn:
        omono_companies = conn.execute("SELECT * FROM omono.companies ORDER BY id").fetchall()
        lines = conn.execute("SELECT d.number, l.line_no, l.analysis_code, l.tax_code, l.unit_price FROM "
                             "omono.dispatch_invoices d JOIN omono.dispatch_invoice_lines l ON l.invoice_id = d.id "
                             "ORDER BY 1, 2").fetchall()
        dispatch = conn.execute("SELECT number, currency_code FROM omono.dispatch_invoices").fetchall()
        bills = conn.execute("SELECT count(*) AS n FROM omono.delivery_invoices").fetchone()["n"]
        notes = conn.execute("SELECT count(*) AS n FROM omono.credit_notes").fetchone()["n"]
    assert sorted(c["AccountNumber"] for c in contacts) == sorted(c["account_number"] for c in omono_companies)
    assert len({c["Name"].lower() for c in contacts}) == len(contacts)
    sales = {i["InvoiceNumber"]: i for i in invoices if i["Type"] == "ACCREC"}
    assert sorted(sales) == sorted(d["number"] for d in dispatch)
    assert sum(1 for i in invoices if i["Type"] == "ACCPAY") == bills
    assert len(credits) == notes
    expected_accounts = {code: acct for (kind, code), acct in demo_data.DEMO_ACCOUNT_MAPPINGS.items()
                         if kind == "sales"}
    expected_tax = {code: tax for (kind, code), tax in demo_data.DEMO_TAX_MAPPINGS.items() if kind == "sales"}
    for line in lines:
        sent = sales[line["number"]]["LineItems"][line["line_no"] - 1]
        assert sent["AccountCode"] == expected_accounts[line["analysis_code"]]
        assert sent["TaxType"] == expected_tax[line["tax_code"]]
        assert sent["UnitAmount"] == float(line["unit_price"])        # 4 decimals kept (unitdp=4)
    for d in dispatch:
        assert sales[d["number"]]["CurrencyCode"] == d["currency_code"].strip()
        assert sales[d["number"]]["Status"] == "AUTHORISED"                  # the default status setting


def test_second_run_without_changes_makes_no_write_calls(sync_dag, xero_org: XeroOrg, fresh_db: str,
                                                         admin: httpx.Client) -> None:
    seed(fresh_db, documents=20, bad_share=0)
    assert run_sync(sync_dag).state == "success"
    seq = last_seq(admin)
    second = run_sync(sync_dag)
    assert second.state == "success"
    calls = api_calls(admin, since=seq)
    assert [c["method"] for c in calls if c["method"] != "GET"] == []
    assert [c["path"] for c in calls] == ["/api.xro/2.0/Organisation", "/api.xro/2.0/Accounts",
                                          "/api.xro/2.0/TaxRates", "/api.xro/2.0/Currencies"]


def test_api_calls_are_exactly_reference_reads_look_ups_and_one_write_per_50(sync_dag, xero_org: XeroOrg,
                                                                             fresh_db: str, admin: httpx.Client
                                                                             ) -> None:
    counts = seed(fresh_db, documents=240, bad_share=0)
    seq = last_seq(admin)
    assert run_sync(sync_dag).state == "success"
    calls = api_calls(admin, since=seq)
    with db(fresh_db) as conn:
        kinds = {r["kind"]: r["n"] for r in conn.execute("SELECT kind, count(*) AS n FROM omono.credit_notes "
                                                         "GROUP BY kind")}
        linked = conn.execute("SELECT count(*) AS n FROM omono.credit_notes WHERE invoice_id IS NOT NULL"
                              ).fetchone()["n"]
    per_type = [counts["companies"], counts["dispatch_invoices"], counts["delivery_invoices"], kinds["sales"],
                kinds["purchase"]]
    writes = sum(math.ceil(n / 50) for n in per_type)
    # Into an empty organisation: for a type with more than one look-up's worth of numbers (a bill has its supplier's
    # number and Omono's), one call counts what Xero holds (nothing: no more look-ups); else the numbers, 50 a call.
    numbers = [n * k for n, k in zip(per_type[1:], (1, 2, 1, 1), strict=True)]
    look_ups = 1 + sum(1 if n > 50 else math.ceil(n / 50) for n in numbers)     # contact directory first
    # invoices' amount due (40 ids a call), notes' credit left (25 GUIDs in `where` keep the URL under 1,900)
    allocation_reads = math.ceil(linked / 40) + math.ceil(linked / 25)
    assert len([c for c in calls if c["method"] == "POST"]) == writes
    reconcile_reads = 2                 # the first run reconciles (weekly by default): a page of each kind
    assert len([c for c in calls if c["method"] == "GET"]) == 4 + look_ups + allocation_reads + reconcile_reads
    assert len([c for c in calls if c["method"] == "PUT"]) == linked   # one allocation per linked credit note
    assert len(calls) == 4 + look_ups + allocation_reads + reconcile_reads + writes + linked
    assert all(c["elements"] <= 50 for c in calls if c["method"] == "POST")
    assert all(c["idempotency_key"] for c in calls if c["method"] == "POST")
    assert "summarizeErrors=False" in next(c["query"] for c in calls if c["method"] == "POST")


def test_bad_record_is_held_with_its_reason_while_its_batch_mates_land_and_lands_once_fixed(
        sync_dag, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=30, bad_share=0)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoice_lines SET analysis_code = 'SA-SAMPLES' WHERE invoice_id = 3 "
                     "AND line_no = 1")
    first = run_sync(sync_dag)
    assert first.task_states["verify"] == "failed" and first.task_states["push_dispatch_invoices"] == "success"
    held = [r for r in _log(fresh_db) if r["action"] == "held"]
    assert [(r["omono_number"], r["messages"]) for r in held] == [("SO-1003", [
        "SO-1003 line 1: sales analysis code 'SA-SAMPLES' is not mapped to a Xero account. Map it on the Mappings "
        "page; the document goes on the next run."])]
    sent = {i["InvoiceNumber"] for i in xero_objects(admin, "invoices")}
    assert "SO-1003" not in sent and {"SO-1001", "SO-1002", "SO-1004"} <= sent
    with db(fresh_db) as conn:                                 # the bookkeeper maps the code
        conn.execute("INSERT INTO xero_sync.account_mappings (kind, omono_code, xero_account_code) VALUES "
                     "('sales', 'SA-SAMPLES', '260')")
    second = run_sync(sync_dag)
    assert second.state == "success"
    fixed = [i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == "SO-1003"]
    assert len(fixed) == 1 and fixed[0]["LineItems"][0]["AccountCode"] == "260"


def test_an_edited_record_is_updated_in_place(sync_dag, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=20, bad_share=0)
    assert run_sync(sync_dag).state == "success"
    count_before = len(xero_objects(admin, "invoices"))
    before = {i["InvoiceNumber"]: i for i in xero_objects(admin, "invoices")}["SO-1001"]
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoice_lines SET quantity = quantity + 1 WHERE invoice_id = 1")
        conn.execute("UPDATE omono.companies SET name = name || ' (Holdings)' WHERE id = 1")
    seq = last_seq(admin)
    second = run_sync(sync_dag)
    assert second.state == "success"
    after = {i["InvoiceNumber"]: i for i in xero_objects(admin, "invoices")}["SO-1001"]
    assert after["InvoiceID"] == before["InvoiceID"] and after["Total"] > before["Total"]
    assert len(xero_objects(admin, "invoices")) == count_before
    assert any(c["Name"].endswith("(Holdings)") for c in xero_objects(admin, "contacts"))
    log = _log(fresh_db, str(second.dagrun.run_id))
    assert _actions(log)[("dispatch_invoice", "updated")] == 1 and _actions(log)[("contact", "updated")] == 1
    assert [c["elements"] for c in api_calls(admin, since=seq) if c["method"] == "POST"] == [1, 1]


def test_a_re_read_record_whose_xero_content_did_not_change_is_not_sent_again(
        sync_dag, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=20, bad_share=0)
    assert run_sync(sync_dag).state == "success"
    with db(fresh_db) as conn:                      # touched in Omono, nothing Xero sees changes
        conn.execute("UPDATE omono.companies SET updated_at = now(), credit_limit = credit_limit + 1")
        conn.execute("UPDATE omono.dispatch_invoices SET updated_at = now()")
    seq = last_seq(admin)
    run = run_sync(sync_dag)
    assert run.state == "success"
    assert [c for c in api_calls(admin, since=seq) if c["method"] == "POST"] == []
    log = _log(fresh_db, str(run.dagrun.run_id))
    with db(fresh_db) as conn:
        touched = conn.execute("SELECT (SELECT count(*) FROM omono.companies) + (SELECT count(*) FROM "
                               "omono.dispatch_invoices) AS n").fetchone()["n"]
    assert {r["action"] for r in log} == {"unchanged"} and len(log) == touched
