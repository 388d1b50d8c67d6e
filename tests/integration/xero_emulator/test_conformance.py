"""Every request xero-python sends and every answer the emulator gives, checked against Xero's OpenAPI spec."""

from datetime import date
from decimal import Decimal

import httpx
import pytest
from xero_python.accounting import (
    Account,
    AccountType,
    Allocation,
    Allocations,
    Contact,
    Contacts,
    CreditNote,
    CreditNotes,
    CurrencyCode,
    Invoice,
    Invoices,
    LineItem,
)
from xero_python.exceptions import ApiException

from tests.support.conformance import SPEC_PATH, violations
from tests.support.xero_sdk import UK_TENANT, Sdk

pytestmark = pytest.mark.integration


def _tour(sdk: Sdk, admin: httpx.Client) -> None:
    """The calls the sync makes, plus error paths, so both shapes of every answer are recorded."""
    acc, t = sdk.accounting, UK_TENANT
    acc.get_organisations(t)
    acc.get_accounts(t)
    acc.get_accounts(t, where='Status=="ACTIVE"')
    acc.get_tax_rates(t)
    acc.get_currencies(t)
    acc.create_account(t, Account(code="215", name="Sales - Online", type=AccountType.REVENUE),
                       idempotency_key="acct-215")
    with pytest.raises(ApiException):
        acc.create_account(t, Account(code="215", name="Sales - Online", type=AccountType.REVENUE))
    contacts = acc.create_contacts(t, Contacts(contacts=[Contact(name="Acme Ltd", account_number="C1",
                                                                 email_address="ap@acme.test"),
                                                         Contact(name="acme ltd")]),
                                   summarize_errors=False, idempotency_key="contacts-1").contacts
    cid = contacts[0].contact_id
    acc.update_or_create_contacts(t, Contacts(contacts=[Contact(contact_id=cid, name="Acme Limited")]),
                                  summarize_errors=False)
    with pytest.raises(ApiException):
        acc.create_contacts(t, Contacts(contacts=[Contact(name="")]))
    acc.get_contacts(t, where='AccountNumber=="C1"', page=1, include_archived=True)
    acc.get_contacts(t, i_ds=[cid], summary_only=True)
    acc.get_contact(t, cid)
    line = LineItem(description="Widgets", quantity=3, unit_amount=Decimal("10.1234"), account_code="200",
                    tax_type="OUTPUT2", discount_rate=Decimal("5"))
    invoices = acc.create_invoices(t, Invoices(invoices=[
        Invoice(type="ACCREC", contact=Contact(contact_id=cid), invoice_number="SO-1000", date=date(2026, 1, 5),
                due_date=date(2026, 2, 5), status="AUTHORISED", line_items=[line]),
        Invoice(type="ACCPAY", contact=Contact(contact_id=cid), invoice_number="PO-1", date=date(2026, 1, 5),
                status="DRAFT", line_items=[LineItem(description="Stock", quantity=1, unit_amount=50,
                                                     account_code="310", tax_type="INPUT2")]),
        Invoice(type="ACCREC", contact=Contact(contact_id=cid), currency_code=CurrencyCode.JPY,
                status="AUTHORISED", line_items=[line])]),
        summarize_errors=False, unitdp=4, idempotency_key="inv-1").invoices
    acc.update_or_create_invoices(t, Invoices(invoices=[Invoice(invoice_number="SO-1000", reference="edited")]),
                                  summarize_errors=False, unitdp=4)
    acc.update_invoice(t, invoices[1].invoice_id, Invoices(invoices=[Invoice(status="DELETED")]))
    with pytest.raises(ApiException):
        acc.create_invoices(t, Invoices(invoices=[Invoice(type="ACCREC", contact=Contact(contact_id=cid),
                                                          status="AUTHORISED", line_items=[])]))
    acc.get_invoices(t, invoice_numbers=["SO-1000", "SO-404"], unitdp=4)
    acc.get_invoices(t, page=1, statuses=["AUTHORISED"], where='Type=="ACCREC"', order="InvoiceNumber ASC")
    acc.get_invoice(t, invoices[0].invoice_id)
    notes = acc.create_credit_notes(t, CreditNotes(credit_notes=[CreditNote(
        type="ACCRECCREDIT", contact=Contact(contact_id=cid), status="AUTHORISED", date=date(2026, 1, 6),
        line_items=[LineItem(description="Return", quantity=1, unit_amount=5, account_code="200",
                             tax_type="OUTPUT2")])]), summarize_errors=False, idempotency_key="cn-1").credit_notes
    acc.create_credit_note_allocation(t, notes[0].credit_note_id, Allocations(allocations=[
        Allocation(invoice=Invoice(invoice_id=invoices[0].invoice_id), amount=Decimal("6"), date=date(2026, 1, 7))]))
    acc.get_credit_notes(t, page=1)
    acc.get_credit_note(t, notes[0].credit_note_id)
    admin.post(f"/tenants/{t}/payments", json={"InvoiceID": invoices[0].invoice_id, "Amount": 1})
    acc.get_contact(t, cid)
    _tour_of_wave_two(sdk, admin, cid, notes[0].credit_note_id, invoices[0].invoice_id)


def _tour_of_wave_two(sdk: Sdk, admin: httpx.Client, cid: str, credit_id: str, invoice_id: str) -> None:
    """Answers added with lock dates, negative lines, paging caps, summaries and whole-batch refusals."""
    acc, t = sdk.accounting, UK_TENANT
    discount = LineItem(description="Loyalty", quantity=1, unit_amount=-2, account_code="200", tax_type="OUTPUT2")
    widgets = LineItem(description="Widgets", quantity=1, unit_amount=10, account_code="200", tax_type="OUTPUT2")
    acc.create_invoices(t, Invoices(invoices=[
        Invoice(type="ACCREC", contact=Contact(contact_id=cid), status="AUTHORISED", line_items=[widgets, discount]),
        Invoice(type="ACCREC", contact=Contact(contact_id=cid), status="AUTHORISED", line_items=[discount])]),
        summarize_errors=False)
    admin.put("/paging", json={"max_page_size": 2})
    acc.get_contacts(t, page=1, page_size=100)
    acc.get_invoices(t, page=1, summary_only=True)
    acc.get_credit_notes(t, page=1, page_size=5)
    admin.put("/paging", json={"max_page_size": None})
    admin.patch(f"/tenants/{t}/organisation", json={"PeriodLockDate": "2026-01-31", "EndOfYearLockDate": "2026-01-31"})
    acc.get_organisations(t)
    locked = Invoice(type="ACCREC", contact=Contact(contact_id=cid), status="AUTHORISED", date=date(2026, 1, 10),
                     line_items=[widgets])
    acc.create_invoices(t, Invoices(invoices=[locked]), summarize_errors=False)
    with pytest.raises(ApiException):
        acc.create_invoices(t, Invoices(invoices=[locked]))
    acc.create_credit_note_allocation(t, credit_id, Allocations(allocations=[
        Allocation(invoice=Invoice(invoice_id=invoice_id), amount=Decimal("1"), date=date(2026, 1, 9))]),
        summarize_errors=False)
    admin.post("/faults", json={"kind": "reject", "text": "REJECT-ME", "times": 1})
    with pytest.raises(ApiException):
        acc.update_or_create_contacts(t, Contacts(contacts=[Contact(name="REJECT-ME")]))


def test_recorded_requests_and_responses_conform_to_xeros_openapi_spec(sdk: Sdk, admin: httpx.Client) -> None:
    if not SPEC_PATH.exists():
        pytest.skip(f"Xero's OpenAPI spec not found at {SPEC_PATH} (set XERO_OPENAPI_SPEC)")
    admin.delete("/requests")
    _tour(sdk, admin)
    log = admin.get("/requests", params={"bodies": "true"}).json()["requests"]
    checked = [e for e in log if e["path"].startswith("/api.xro/2.0")]
    assert len(checked) >= 34
    problems = [p for entry in checked for p in violations(entry)]
    assert problems == [], "\n\n".join(problems)
