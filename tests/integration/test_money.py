"""Never a wrong amount in Xero: tax rates that differ, Omono's exchange rate, totals Xero computes otherwise,
discount lines, and documents in a period Xero has locked."""

from __future__ import annotations

import httpx
import pytest

from tests.support.pipeline_env import XeroOrg, db, record_state, seed, xero_objects
from tests.support.steps import TO_SALES, run_steps
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration


def _invoice(admin: httpx.Client, number: str) -> dict | None:
    return next((i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == number), None)


def test_a_tax_mapping_to_a_xero_rate_of_another_percentage_is_red_and_names_both(xero_org: XeroOrg, fresh_db: str,
                                                                                  admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    with db(fresh_db) as conn:                     # Omono's 20% mapped to Xero's 5% rate
        conn.execute("UPDATE xero_sync.tax_mappings SET xero_tax_type = 'RROUTPUT' WHERE kind = 'sales' AND "
                     "omono_tax_code = 'STD20'")
        doc = conn.execute("SELECT d.number FROM omono.dispatch_invoices d WHERE EXISTS (SELECT 1 FROM "
                           "omono.dispatch_invoice_lines l WHERE l.invoice_id = d.id AND l.tax_code = 'STD20') "
                           "ORDER BY d.id LIMIT 1").fetchone()["number"]
    ready = run_steps("r1", TO_SALES)["readiness"]
    tax_light = next(c for c in ready["checks"] if c["key"] == "tax_rates")
    assert not tax_light["ok"] and "20%" in tax_light["detail"] and "5%" in tax_light["detail"]
    assert _invoice(admin, doc) is None
    state = record_state(fresh_db, "dispatch_invoice", doc)
    message = " ".join(state["last_messages"])
    assert state["status"] == "held" and "20%" in message and "5%" in message and "RROUTPUT" in message


def test_a_foreign_currency_document_carries_omonos_exchange_rate(xero_org: XeroOrg, fresh_db: str,
                                                                  admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoices SET currency_code = 'EUR', exchange_rate = 1.1523 WHERE id = 1")
        number = conn.execute("SELECT number FROM omono.dispatch_invoices WHERE id = 1").fetchone()["number"]
    run_steps("r1", TO_SALES)
    assert _invoice(admin, number)["CurrencyRate"] == 1.1523            # Xero's day rate would be 1.17


def test_totals_xero_computes_otherwise_are_red_with_both_figures(xero_org: XeroOrg, fresh_db: str,
                                                                   admin: httpx.Client) -> None:
    """The bookkeeper edits Xero's 20% rate to 5% after the run's readiness read it: Xero computes the invoice
    at 5%, Omono at 20%, so the record is red with both figures, not green."""
    seed(fresh_db, documents=8)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoice_lines SET tax_code = 'STD20', quantity = 1, unit_price = 100, "
                     "discount_percent = 0 WHERE invoice_id = 1")
        number = conn.execute("SELECT number FROM omono.dispatch_invoices WHERE id = 1").fetchone()["number"]
    run_steps("r1", TO_SALES[:3])
    admin.patch(f"/tenants/{xero_org.tenant_id}/taxrates/OUTPUT2", json={"EffectiveRate": 5}).raise_for_status()
    run_steps("r1", TO_SALES[3:])
    in_xero = _invoice(admin, number)
    sub_total = in_xero["SubTotal"]                                    # 100.00 a line
    assert in_xero["TotalTax"] == sub_total * 0.05
    state = record_state(fresh_db, "dispatch_invoice", number)
    message = " ".join(state["last_messages"])
    assert state["status"] == "failed" and "totals differ" in message
    assert f"tax {sub_total * 0.2:,.2f} = {sub_total * 1.2:,.2f} GBP" in message            # Omono's, at 20%
    assert f"{in_xero['Total']:,.2f} GBP" in message                                       # Xero's, at 5%


def test_a_discount_line_is_sent_when_the_total_stays_positive_and_a_negative_total_is_held(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    with db(fresh_db) as conn:
        for doc_id, price in ((1, -5), (2, -100000)):
            conn.execute("INSERT INTO omono.dispatch_invoice_lines (invoice_id, line_no, description, quantity, "
                         "unit_price, analysis_code, tax_code) VALUES (%s, 9, 'Loyalty discount', 1, %s, "
                         "'SA-RETAIL', 'STD20')", (doc_id, price))
        numbers = [r["number"] for r in conn.execute("SELECT number FROM omono.dispatch_invoices WHERE id IN (1, 2) "
                                                     "ORDER BY id")]
    run_steps("r1", TO_SALES)
    discounted = _invoice(admin, numbers[0])
    assert discounted is not None and discounted["LineItems"][-1]["LineAmount"] == -5.0
    assert record_state(fresh_db, "dispatch_invoice", numbers[0])["status"] == "synced"
    assert _invoice(admin, numbers[1]) is None
    held = record_state(fresh_db, "dispatch_invoice", numbers[1])
    assert held["status"] == "held" and "credit note" in " ".join(held["last_messages"])


def test_a_document_in_a_period_xero_has_locked_is_held_with_what_to_do(xero_org: XeroOrg, fresh_db: str,
                                                                        admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    admin.patch(f"/tenants/{UK_TENANT}/organisation", json={"EndOfYearLockDate": "2026-09-10"}).raise_for_status()
    with db(fresh_db) as conn:
        early = conn.execute("SELECT number FROM omono.dispatch_invoices WHERE issue_date <= '2026-09-10' ORDER BY id "
                             "LIMIT 1").fetchone()["number"]
        later = conn.execute("SELECT number FROM omono.dispatch_invoices WHERE issue_date > '2026-09-10' ORDER BY id "
                             "LIMIT 1").fetchone()["number"]
    ready = run_steps("r1", TO_SALES)["readiness"]
    assert "10 Sep 2026" in next(c for c in ready["checks"] if c["key"] == "lock_date")["detail"]
    held = record_state(fresh_db, "dispatch_invoice", early)
    assert held["status"] == "held" and "lock date" in " ".join(held["last_messages"])
    assert "move the lock date in Xero" in " ".join(held["last_messages"])
    assert _invoice(admin, early) is None and _invoice(admin, later) is not None
