"""A batch Xero refuses as a whole, requests too large for Xero, retries inside Xero's idempotency window after
a server error, a deleted Omono document, and the contact directory read to its end whatever Xero's page size."""

from __future__ import annotations

from collections import Counter

import httpx
import pytest

from tests.support.pipeline_env import XeroOrg, api_calls, db, last_seq, seed, xero_objects
from tests.support.steps import TO_SALES, run_steps

pytestmark = pytest.mark.integration


def _statuses(url: str, entity: str) -> Counter:
    with db(url) as conn:
        return Counter(r["status"] for r in conn.execute("SELECT status FROM xero_sync.record_state WHERE entity = %s",
                                                         (entity,)))


def test_a_batch_xero_refuses_whole_is_split_and_only_the_bad_record_is_red(xero_org: XeroOrg, fresh_db: str,
                                                                           admin: httpx.Client) -> None:
    seed(fresh_db, documents=40)
    with db(fresh_db) as conn:
        numbers = [r["number"] for r in conn.execute("SELECT number FROM omono.dispatch_invoices ORDER BY id")]
    admin.post("/faults", json={"kind": "reject", "text": numbers[5], "method": "POST", "path": "/Invoices$"})
    run_steps("r1", TO_SALES)
    in_xero = [i["InvoiceNumber"] for i in xero_objects(admin, "invoices")]
    assert sorted(in_xero) == sorted(n for n in numbers if n != numbers[5])
    assert _statuses(fresh_db, "dispatch_invoice") == Counter({"synced": len(numbers) - 1, "failed": 1})
    with db(fresh_db) as conn:
        bad = conn.execute("SELECT last_messages FROM xero_sync.record_state WHERE omono_number = %s",
                           (numbers[5],)).fetchone()
    assert bad["last_messages"] and "Xero said" in " ".join(bad["last_messages"])


def test_requests_stay_under_xeros_size_limit(xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=60)
    with db(fresh_db) as conn:                   # 20 lines of 4,000 characters: about 80 kB per invoice
        conn.execute("INSERT INTO omono.dispatch_invoice_lines (invoice_id, line_no, description, quantity, "
                     "unit_price, analysis_code, tax_code) SELECT d.id, 100 + g, repeat('Long text ', 400), 1, 1, "
                     "'SA-RETAIL', 'STD20' FROM omono.dispatch_invoices d, generate_series(1, 20) g")
        count = conn.execute("SELECT count(*) AS n FROM omono.dispatch_invoices").fetchone()["n"]
    seq = last_seq(admin)
    run_steps("r1", TO_SALES)
    writes = [c for c in api_calls(admin, since=seq) if c["method"] == "POST" and c["path"].endswith("/Invoices")]
    assert writes and all(c["status"] == 200 for c in writes)
    assert len([i for i in xero_objects(admin, "invoices")]) == count
    assert _statuses(fresh_db, "dispatch_invoice") == Counter({"synced": count})


def test_a_retry_after_xero_answered_500_really_retries_inside_the_idempotency_window(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=12)
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    admin.post("/faults", json={"kind": "error", "status": 500, "method": "POST", "path": "/Invoices$", "times": 1})
    seq = last_seq(admin)
    run_steps("r2", ("extract_changes", "check_records", "push_dispatch_invoices"))     # completes in one go
    writes = [c for c in api_calls(admin, since=seq) if c["method"] == "POST"]
    assert [c["status"] for c in writes] == [500, 200] and writes[0]["idempotency_key"] != writes[1]["idempotency_key"]
    with db(fresh_db) as conn:
        numbers = sorted(r["number"] for r in conn.execute("SELECT number FROM omono.dispatch_invoices"))
    assert sorted(i["InvoiceNumber"] for i in xero_objects(admin, "invoices")) == numbers
    assert _statuses(fresh_db, "dispatch_invoice") == Counter({"synced": len(numbers)})


def test_a_few_server_errors_on_reads_do_not_fail_the_task(xero_org: XeroOrg, fresh_db: str,
                                                           admin: httpx.Client) -> None:
    seed(fresh_db, documents=12)
    admin.post("/faults", json={"kind": "error", "status": 503, "method": "GET", "path": "/Invoices$", "times": 3})
    run_steps("r1", TO_SALES)
    assert _statuses(fresh_db, "dispatch_invoice")["synced"] == 7


def test_a_document_deleted_in_omono_is_voided_in_xero_and_not_read_again(xero_org: XeroOrg, fresh_db: str,
                                                                           admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    run_steps("r1", TO_SALES)
    with db(fresh_db) as conn:
        number = conn.execute("SELECT number FROM omono.dispatch_invoices WHERE id = 1").fetchone()["number"]
        conn.execute("DELETE FROM omono.credit_notes WHERE invoice_id = 1")
        conn.execute("DELETE FROM omono.dispatch_invoices WHERE id = 1")
    run_steps("r2", ("extract_changes", "check_records", "push_dispatch_invoices"))
    assert next(i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == number)["Status"] == "VOIDED"
    with db(fresh_db) as conn:
        state = conn.execute("SELECT status, last_messages FROM xero_sync.record_state WHERE omono_number = %s",
                             (number,)).fetchone()
    assert state["status"] == "synced"
    seq = last_seq(admin)
    run_steps("r3", ("extract_changes", "check_records", "push_dispatch_invoices"))
    assert api_calls(admin, since=seq) == []
    with db(fresh_db) as conn:
        assert conn.execute("SELECT status FROM xero_sync.record_state WHERE omono_number = %s", (number,)
                            ).fetchone()["status"] == "synced"


def test_the_contact_directory_is_read_to_its_end_whatever_page_size_xero_serves(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=40)
    with db(fresh_db) as conn:
        companies = [r["name"] for r in conn.execute("SELECT name FROM omono.companies ORDER BY id")]
    typed = [{"Name": name, "EmailAddress": "typed@example.com"} for name in companies]
    admin.post("/tenants/7f9b8c3e-2a4d-4e6b-9f1a-3c5d7e9f0b21/seed", json={"Contacts": typed}).raise_for_status()
    admin.put("/paging", json={"max_page_size": 3}).raise_for_status()   # Xero serves 3 a page, not 1,000
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    contacts = xero_objects(admin, "contacts")
    assert len(contacts) == len(companies)                             # every company matched, none created twice
    assert _statuses(fresh_db, "contact") == Counter({"synced": len(companies)})
