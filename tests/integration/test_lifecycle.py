"""Lifecycle: edits Xero allows or refuses, cancellations, allocations, balances, disconnect/reconnect, and
reset followed by a backfill that spreads over several days of API budget without duplicating anything."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from include.commands import demo_data
from include.omono_xero_sync import lifecycle, pipeline, settings
from include.omono_xero_sync.xero_api import XeroAuthError
from tests.support.pipeline_env import XeroOrg, api_calls, db, last_seq, record_state, run_sync, seed
from tests.support.steps import ALL_STEPS, VERIFIED, run_steps
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration


def _invoices(admin: httpx.Client) -> dict[str, dict]:
    return {i["InvoiceNumber"]: i for i in admin.get(f"/tenants/{UK_TENANT}/invoices").json()["invoices"]}


def test_edit_after_payment_in_xero_is_refused_plainly_and_not_retried_in_a_loop(
        sync_dag, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db)
    run_steps("r1", VERIFIED)
    paid = _invoices(admin)["SO-1001"]
    admin.post(f"/tenants/{UK_TENANT}/payments", json={"InvoiceID": paid["InvoiceID"], "Amount": 1}).raise_for_status()
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoice_lines SET quantity = quantity + 1 WHERE invoice_id = 1")
    run = run_sync(sync_dag)
    assert run.task_states["verify"] == "failed"
    refused = record_state(fresh_db, "dispatch_invoice", "SO-1001")
    assert refused["status"] == "failed"
    assert refused["last_messages"][0].startswith("Xero has locked SO-1001 because a payment or credit note is "
                                                  "allocated to it, so the change made in Omono was not sent.")
    assert _invoices(admin)["SO-1001"]["Total"] == paid["Total"]
    seq = last_seq(admin)
    run_steps("r3")                                                    # nothing changed since: no new attempt
    assert [c for c in api_calls(admin, since=seq) if c["method"] == "POST"] == []


def test_cancelled_drafts_are_deleted_and_cancelled_approved_invoices_voided(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db)
    with db(fresh_db) as conn:
        conn.execute("INSERT INTO xero_sync.settings (key, value) VALUES ('status.delivery_invoice', '\"DRAFT\"')")
    run_steps("r1", VERIFIED)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoices SET status = 'cancelled' WHERE number = 'SO-1002'")
        conn.execute("UPDATE omono.delivery_invoices SET status = 'cancelled' WHERE number = 'PO-2001'")
    run_steps("r2", VERIFIED)
    invoices = _invoices(admin)
    with db(fresh_db) as conn:            # a bill carries the supplier's invoice number in Xero
        bill = conn.execute("SELECT supplier_invoice_ref FROM omono.delivery_invoices WHERE number = 'PO-2001'"
                            ).fetchone()["supplier_invoice_ref"]
    assert (invoices["SO-1002"]["Status"], invoices[bill]["Status"]) == ("VOIDED", "DELETED")
    with db(fresh_db) as conn:
        actions = {r["omono_number"]: r["action"] for r in conn.execute(
            "SELECT omono_number, action FROM xero_sync.sync_log WHERE omono_number IN ('SO-1002', 'PO-2001') "
            "ORDER BY id")}
    assert actions == {"SO-1002": "voided", "PO-2001": "deleted"}


def test_cancelling_a_paid_invoice_is_a_clear_red_item(xero_org: XeroOrg, fresh_db: str,
                                                       admin: httpx.Client) -> None:
    seed(fresh_db)
    run_steps("r1", VERIFIED)
    admin.post(f"/tenants/{UK_TENANT}/payments", json={"InvoiceID": _invoices(admin)["SO-1003"]["InvoiceID"]})
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoices SET status = 'cancelled' WHERE number = 'SO-1003'")
    with pytest.raises(pipeline.RecordsNeedAttention, match="SO-1003"):
        run_steps("r2", VERIFIED)
    assert record_state(fresh_db, "dispatch_invoice", "SO-1003")["last_messages"][0].startswith(
        "Xero has locked SO-1003") or "payments or credit notes" in " ".join(
        record_state(fresh_db, "dispatch_invoice", "SO-1003")["last_messages"])
    assert _invoices(admin)["SO-1003"]["Status"] == "PAID"


def test_credit_note_linked_to_an_invoice_is_allocated_to_it_once(xero_org: XeroOrg, fresh_db: str,
                                                                  admin: httpx.Client) -> None:
    seed(fresh_db, documents=30)
    with db(fresh_db) as conn:
        linked = conn.execute("SELECT c.number AS credit, d.number AS invoice FROM omono.credit_notes c JOIN "
                              "omono.dispatch_invoices d ON d.id = c.invoice_id WHERE c.kind = 'sales' ORDER BY c.id "
                              "LIMIT 1").fetchone()
    run_steps("r1", VERIFIED)
    notes = {c["CreditNoteNumber"]: c for c in admin.get(f"/tenants/{UK_TENANT}/creditnotes").json()["creditnotes"]}
    invoice = _invoices(admin)[linked["invoice"]]
    note = notes[linked["credit"]]
    allocated = min(note["Total"], invoice["Total"])
    assert note["RemainingCredit"] == round(note["Total"] - allocated, 2)
    assert invoice["AmountCredited"] == allocated
    with db(fresh_db) as conn:
        logged = conn.execute("SELECT action, messages FROM xero_sync.sync_log WHERE omono_number = %s AND "
                              "task_id = 'allocate_credit_notes'", (linked["credit"],)).fetchone()
    assert logged["action"] == "allocated" and linked["invoice"] in logged["messages"][0]
    seq = last_seq(admin)
    run_steps("r2")
    assert not [c for c in api_calls(admin, since=seq) if "Allocations" in c["path"]]


def test_credit_check_stores_customers_balances_in_the_base_currency_where_omono_reads_them(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=40)
    with db(fresh_db) as conn:
        conn.execute("INSERT INTO xero_sync.settings (key, value) VALUES ('credit_check', 'true')")
    run_steps("r1", (*VERIFIED, "credit_check"))
    seq = last_seq(admin)
    run_steps("r2", (*ALL_STEPS, "credit_check"))                      # nothing else to do: the reads alone
    contacts = {c["AccountNumber"]: c for c in admin.get(f"/tenants/{UK_TENANT}/contacts").json()["contacts"]}
    with db(fresh_db) as conn:
        rows = conn.execute("SELECT c.account_number, b.outstanding, b.overdue, b.currency, b.read_at FROM "
                            "omono.customer_balances b JOIN omono.companies c ON c.id = b.company_id").fetchall()
        customers = conn.execute("SELECT count(*) AS n FROM omono.companies WHERE is_customer").fetchone()["n"]
    assert len(rows) == customers and all(r["read_at"] and r["currency"] == "GBP" for r in rows)
    invoices = admin.get(f"/tenants/{UK_TENANT}/invoices").json()["invoices"]
    notes = admin.get(f"/tenants/{UK_TENANT}/creditnotes").json()["creditnotes"]
    foreign = 0
    for r in rows:                      # each document converted at its own rate, then summed
        cid = contacts[r["account_number"]]["ContactID"]
        mine = [i for i in invoices if i["Contact"]["ContactID"] == cid and i["Type"] == "ACCREC" and
                i["Status"] == "AUTHORISED"]
        foreign += sum(1 for i in mine if i["CurrencyCode"] != "GBP")
        due = sum(i["AmountDue"] / i["CurrencyRate"] for i in mine)
        credit = sum(c["RemainingCredit"] / c["CurrencyRate"] for c in notes if c["Contact"]["ContactID"] == cid
                     and c["Type"] == "ACCRECCREDIT" and c["Status"] == "AUTHORISED")
        assert float(r["outstanding"]) == pytest.approx(due - credit, abs=0.01)
    assert foreign > 0                                                # the conversion was exercised
    reads = [c for c in api_calls(admin, since=seq) if c["method"] == "GET"][4:]
    assert [(c["path"].rsplit("/", 1)[1], "page=1" in c["query"]) for c in reads] == [
        ("Invoices", True), ("CreditNotes", True)]                    # one page each, whatever the customers


def test_disconnect_then_reconnect_resends_nothing(xero_org: XeroOrg, fresh_db: str,
                                                   admin: httpx.Client) -> None:
    seed(fresh_db)
    run_steps("r1", VERIFIED)
    with db(fresh_db) as conn:
        lifecycle.disconnect(conn, "test")
    with pytest.raises(XeroAuthError):                                 # no tokens: says so, sends nothing
        run_steps("r2", ("readiness",))
    XeroOrg(xero_org.base_url).connect(fresh_db)                        # reconnect
    seq = last_seq(admin)
    run_steps("r3", VERIFIED)
    assert [c["method"] for c in api_calls(admin, since=seq)] == ["GET"] * 4


def test_reset_then_budgeted_backfill_spreads_over_days_and_lands_everything_exactly_once(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client, monkeypatch: pytest.MonkeyPatch) -> None:
    seed(fresh_db, documents=100)
    run_steps("first", VERIFIED)
    with db(fresh_db) as conn:
        with pytest.raises(lifecycle.NotConfirmed):
            lifecycle.reset(conn, "yes", "test")
        lifecycle.reset(conn, "Omono Demo Wholesale Ltd", "test")
        numbers = [r["number"] for r in conn.execute(
            "SELECT number FROM omono.dispatch_invoices UNION ALL SELECT coalesce(supplier_invoice_ref, number) FROM "
            "omono.delivery_invoices")]
    admin.put("/limits", json={"day": 10, "minute": None, "concurrent": None, "app_minute": None})
    monkeypatch.setattr(settings, "DAILY_CALL_FLOOR", 1)
    runs = 0
    while True:
        runs += 1
        run_steps(f"day{runs}", VERIFIED, {"date_from": "2026-09-01", "date_to": "2026-10-31"})
        with db(fresh_db) as conn:
            pending = conn.execute("SELECT count(*) AS n FROM xero_sync.record_state WHERE status <> 'synced'"
                                   ).fetchone()["n"]
            synced = conn.execute("SELECT count(*) AS n FROM xero_sync.record_state WHERE status = 'synced'"
                                  ).fetchone()["n"]
        if pending == 0 and synced > 0:
            break
        assert runs < 12
        xero_org.next_day(admin, fresh_db)                      # a new budget
    assert runs >= 2, runs                # more than one day's budget, though most was already in Xero
    counted = Counter(i["InvoiceNumber"] for i in admin.get(f"/tenants/{UK_TENANT}/invoices").json()["invoices"])
    assert sorted(counted) == sorted(numbers) and set(counted.values()) == {1}


def test_a_run_that_ends_red_e_mails_the_alert_address_with_what_needs_attention(
        sync_dag, xero_org: XeroOrg, fresh_db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import email
    import json

    from tests.support.smtp_sink import smtp_sink

    with db(fresh_db) as conn:
        demo_data.generate(conn, documents=20, bad_share=0.1)
        demo_data.apply_demo_mappings(conn)
        conn.execute("INSERT INTO xero_sync.settings (key, value) VALUES ('alert_email', '\"ops@example.com\"')")
    with smtp_sink() as (port, messages):
        monkeypatch.setenv("AIRFLOW_CONN_SMTP_DEFAULT", json.dumps({
            "conn_type": "smtp", "host": "127.0.0.1", "port": port,
            "extra": {"disable_ssl": True, "disable_tls": True}}))
        run = run_sync(sync_dag)
    assert run.task_states["verify"] == "failed"
    assert [m["to"] for m in messages] == [["ops@example.com"]]
    mail = email.message_from_string(messages[0]["data"])
    body = next(p.get_payload(decode=True).decode() for p in mail.walk() if p.get_content_type() == "text/html")
    assert mail["Subject"].startswith("[omono-xero-sync] verify failed in run manual__")
    assert "record(s) need attention" in body and "SO-1010" in body


def test_a_run_meeting_a_spent_daily_budget_skips_cleanly_and_the_next_day_carries_on(
        sync_dag, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db)
    admin.put("/limits", json={"day": 2, "minute": None, "concurrent": None, "app_minute": None})
    run = run_sync(sync_dag)
    assert run.task_states["readiness"] == "skipped" and run.task_states["push_contacts"] == "skipped"
    assert run.state == "success"                                     # nothing failed; nothing was lost
    admin.put("/limits", json={"mode": "real"})
    assert run_sync(sync_dag).state == "success"
    with db(fresh_db) as conn:
        assert conn.execute("SELECT count(*) AS n FROM xero_sync.record_state WHERE status <> 'synced'"
                            ).fetchone()["n"] == 0
