"""What keeps the books clean: no duplicates after a crash, no missed change, matching what Xero already has,
number clashes held, readiness gates, dry runs."""

from __future__ import annotations

import threading

import httpx
import psycopg
import pytest

from include.omono_xero_sync import pipeline
from include.omono_xero_sync.xero_api import WriteOutcomeUnknown
from tests.support.pipeline_env import XeroOrg, api_calls, db, last_seq, run_sync, seed, xero_objects
from tests.support.steps import VERIFIED, run_steps
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration


def _numbers(admin: httpx.Client, doc_type: str) -> list[str]:
    return sorted(i["InvoiceNumber"] for i in xero_objects(admin, "invoices") if i["Type"] == doc_type)


def test_a_lost_answer_is_looked_up_and_the_run_completes_without_duplicates(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db)
    admin.post("/faults", json={"kind": "drop_after_commit", "method": "POST", "path": "/Invoices", "times": 2})
    run_steps("r1", VERIFIED)                                            # recovered inside the task
    _assert_each_document_once(fresh_db, admin)


@pytest.mark.parametrize("wait_past_idempotency_window", [False, True])
def test_lost_answers_that_outlast_the_task_never_duplicate_bills_on_the_next_run(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client, wait_past_idempotency_window: bool,
        monkeypatch: pytest.MonkeyPatch) -> None:
    from include.omono_xero_sync import settings

    seed(fresh_db)
    monkeypatch.setattr(settings, "RETRY_BACKOFF", ())                    # the task's own retries are spent
    admin.post("/faults", json={"kind": "drop_after_commit", "method": "POST", "path": "/Invoices", "times": 1})
    with pytest.raises(WriteOutcomeUnknown):                              # outcome still unknown: the task fails
        run_steps("r1")
    with db(fresh_db) as conn:
        sending = conn.execute("SELECT count(*) AS n FROM xero_sync.record_state WHERE status = 'sending'").fetchone()
    assert sending["n"] > 0
    monkeypatch.undo()
    if wait_past_idempotency_window:
        admin.post("/clock", json={"advance_seconds": 400})              # Xero has forgotten the idempotency key
        XeroOrg(xero_org.base_url).connect(fresh_db)                       # tokens expired meanwhile: reconnect
    run_steps("r2", VERIFIED)
    _assert_each_document_once(fresh_db, admin)


def _assert_each_document_once(url: str, admin: httpx.Client) -> None:
    with db(url) as conn:
        omono_sales = [r["number"] for r in conn.execute("SELECT number FROM omono.dispatch_invoices ORDER BY 1")]
        omono_bills = [r["n"] for r in conn.execute("SELECT coalesce(supplier_invoice_ref, number) AS n FROM "
                                                    "omono.delivery_invoices ORDER BY 1")]
    assert _numbers(admin, "ACCREC") == omono_sales
    assert _numbers(admin, "ACCPAY") == omono_bills                     # bills are the ones Xero lets duplicate


def test_change_committed_after_the_run_read_the_log_is_picked_up_next_run(xero_org: XeroOrg, fresh_db: str,
                                                                           admin: httpx.Client) -> None:
    seed(fresh_db)
    run_steps("r1", VERIFIED)
    slow = psycopg.connect(fresh_db)                  # a long Omono transaction, still open during the next run
    slow.execute("UPDATE omono.companies SET email = 'late@acme.example', updated_at = '2001-01-01' WHERE id = 1")
    started = threading.Event()
    threading.Thread(target=lambda: started.set()).start()
    run_steps("r2", VERIFIED)                                          # cannot see the uncommitted change
    assert not any(c.get("EmailAddress") == "late@acme.example" for c in xero_objects(admin, "contacts"))
    slow.commit()                                                      # commits after that run; old updated_at
    slow.close()
    run_steps("r3", VERIFIED)
    assert any(c.get("EmailAddress") == "late@acme.example" for c in xero_objects(admin, "contacts"))


def test_existing_xero_contacts_are_matched_by_account_number_then_name(xero_org: XeroOrg, fresh_db: str,
                                                                        admin: httpx.Client) -> None:
    seed(fresh_db)
    with db(fresh_db) as conn:
        first, second = conn.execute("SELECT account_number, name FROM omono.companies WHERE id IN (1, 2) "
                                     "ORDER BY id").fetchall()
    admin.post(f"/tenants/{UK_TENANT}/seed", json={"Contacts": [
        {"Name": "Entered By Hand Ltd", "AccountNumber": first["account_number"]},
        {"Name": second["name"].upper()}]}).raise_for_status()
    run_steps("r1", VERIFIED)
    contacts = xero_objects(admin, "contacts")
    with db(fresh_db) as conn:
        companies = conn.execute("SELECT count(*) AS n FROM omono.companies").fetchone()["n"]
    assert len(contacts) == companies                                     # two matched, none duplicated
    assert {c["Name"] for c in contacts} >= {first["name"], second["name"]}


def test_document_number_already_used_in_xero_by_something_else_is_held(xero_org: XeroOrg, fresh_db: str,
                                                                        admin: httpx.Client) -> None:
    seed(fresh_db)
    admin.post(f"/tenants/{UK_TENANT}/seed", json={"Invoices": [{
        "Type": "ACCREC", "InvoiceNumber": "SO-1004", "Contact": {"Name": "Old Customer From Before Omono"},
        "Status": "AUTHORISED", "LineItems": [{"Description": "Old sale", "Quantity": 1, "UnitAmount": 10,
                                                 "AccountCode": "200"}]}]}).raise_for_status()
    with pytest.raises(pipeline.RecordsNeedAttention, match="SO-1004"):
        run_steps("r1", VERIFIED)
    with db(fresh_db) as conn:
        held = conn.execute("SELECT messages FROM xero_sync.sync_log WHERE omono_number = 'SO-1004'").fetchone()
    assert "SO-1004 is already used in Xero by a different document (ACCREC for 'Old Customer From Before " \
           "Omono')" in held["messages"][0]
    mine = [i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == "SO-1004"]
    assert len(mine) == 1 and mine[0]["Total"] == 12.0                   # theirs, untouched


def test_red_blocking_check_stops_the_run_before_anything_is_sent(sync_dag, xero_org: XeroOrg, fresh_db: str,
                                                                  admin: httpx.Client) -> None:
    seed(fresh_db)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.business_settings SET financial_year_end_month = 6, financial_year_end_day = 30")
    seq = last_seq(admin)
    run = run_sync(sync_dag)
    assert run.task_states["readiness"] == "failed"
    assert run.task_states["push_contacts"] == "upstream_failed"
    assert [c["method"] for c in api_calls(admin, since=seq)] == ["GET"] * 4
    assert xero_objects(admin, "contacts") == []


def test_dry_run_logs_what_would_be_sent_and_sends_nothing(xero_org: XeroOrg, fresh_db: str,
                                                           admin: httpx.Client) -> None:
    seed(fresh_db)
    seq = last_seq(admin)
    run_steps("dry", VERIFIED, {"dry_run": True})
    assert all(c["method"] == "GET" for c in api_calls(admin, since=seq))
    with db(fresh_db) as conn:
        rows = conn.execute("SELECT action, dry_run, messages FROM xero_sync.sync_log").fetchall()
        states = conn.execute("SELECT count(*) AS n FROM xero_sync.record_state").fetchone()["n"]
    assert rows and all(r["dry_run"] and r["action"] == "created" for r in rows)
    assert rows[0]["messages"] == ["Dry run: would be created in Xero; nothing was sent."]
    assert states == 0 and xero_objects(admin, "contacts") == []
    run_steps("real", VERIFIED)                                         # the real run still sends everything
    assert len(xero_objects(admin, "contacts")) > 0
