"""Credit notes through xero-python: numbering by type, allocation to an invoice and the lock it causes."""

from datetime import date
from decimal import Decimal

import httpx
import pytest
from xero_python.accounting import (
    Allocation,
    Allocations,
    Contact,
    Contacts,
    CreditNote,
    CreditNotes,
    Invoice,
    Invoices,
    LineItem,
)
from xero_python.exceptions import AccountingBadRequestException

from tests.support.xero_sdk import UK_TENANT, Sdk

pytestmark = pytest.mark.integration


@pytest.fixture
def customer(sdk: Sdk) -> str:
    return sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="Acme Ltd")]),
                                          summarize_errors=False).contacts[0].contact_id


def _credit(sdk: Sdk, contact_id: str, kind: str = "ACCRECCREDIT", amount: int = 10, **kw: object) -> CreditNote:
    code, tax = ("200", "OUTPUT2") if kind == "ACCRECCREDIT" else ("310", "INPUT2")
    fields = {"status": "AUTHORISED", "date": date(2026, 1, 7), **kw}
    note = CreditNote(type=kind, contact=Contact(contact_id=contact_id), **fields,
                      line_items=[LineItem(description="Returned goods", quantity=1, unit_amount=amount,
                                           account_code=code, tax_type=tax)])
    return sdk.accounting.create_credit_notes(UK_TENANT, CreditNotes(credit_notes=[note]),
                                              summarize_errors=False).credit_notes[0]


def _invoice(sdk: Sdk, contact_id: str) -> Invoice:
    inv = Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), status="AUTHORISED", date=date(2026, 1, 5),
                  line_items=[LineItem(description="Widgets", quantity=2, unit_amount=10, account_code="200",
                                       tax_type="OUTPUT2")])
    return sdk.accounting.create_invoices(UK_TENANT, Invoices(invoices=[inv]), summarize_errors=False).invoices[0]


def test_sales_credit_notes_are_numbered_purchase_ones_are_not(sdk: Sdk, customer: str) -> None:
    sales = _credit(sdk, customer)
    purchase = _credit(sdk, customer, kind="ACCPAYCREDIT")
    assert (sales.credit_note_number, sales.total, sales.remaining_credit) == ("CN-0001", 12, 12)
    assert purchase.credit_note_number == ""


def test_allocating_credit_reduces_the_invoice_and_settles_it_at_zero(sdk: Sdk, customer: str) -> None:
    invoice = _invoice(sdk, customer)                         # total 24.00
    note = _credit(sdk, customer, amount=20)                  # credit 24.00
    sdk.accounting.create_credit_note_allocation(UK_TENANT, note.credit_note_id, Allocations(allocations=[
        Allocation(invoice=Invoice(invoice_id=invoice.invoice_id), amount=Decimal("24"), date=date(2026, 1, 8))]))
    settled = sdk.accounting.get_invoice(UK_TENANT, invoice.invoice_id).invoices[0]
    used = sdk.accounting.get_credit_note(UK_TENANT, note.credit_note_id).credit_notes[0]
    assert (settled.status, settled.amount_due, settled.amount_credited) == ("PAID", 0, 24)
    assert (used.status, used.remaining_credit, len(used.allocations)) == ("PAID", 0, 1)


def test_allocation_larger_than_the_remaining_credit_is_refused(sdk: Sdk, customer: str) -> None:
    invoice = _invoice(sdk, customer)
    note = _credit(sdk, customer, amount=5)                   # credit 6.00
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.create_credit_note_allocation(UK_TENANT, note.credit_note_id, Allocations(allocations=[
            Allocation(invoice=Invoice(invoice_id=invoice.invoice_id), amount=Decimal("7"), date=date(2026, 1, 8))]))
    assert err.value.reason == "The amount allocated exceeds the remaining credit on this credit note."


def test_allocated_invoice_can_no_longer_be_voided(sdk: Sdk, customer: str, admin: httpx.Client) -> None:
    invoice = _invoice(sdk, customer)
    note = _credit(sdk, customer, amount=5)
    admin.post(f"/tenants/{UK_TENANT}/allocations", json={"CreditNoteID": note.credit_note_id,
                                                          "InvoiceID": invoice.invoice_id, "Amount": 6}
               ).raise_for_status()
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.update_invoice(UK_TENANT, invoice.invoice_id, Invoices(invoices=[Invoice(status="VOIDED")]))
    assert "cannot be applied to the invoice because it has payments or credit notes" in err.value.reason


def test_credit_notes_take_no_discounts_and_can_be_listed_by_page(sdk: Sdk, customer: str) -> None:
    note = CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=customer), line_items=[
        LineItem(description="x", quantity=1, unit_amount=10, account_code="200", discount_rate=5)])
    [bad] = sdk.accounting.create_credit_notes(UK_TENANT, CreditNotes(credit_notes=[note]),
                                               summarize_errors=False).credit_notes
    assert bad.has_errors
    _credit(sdk, customer)
    listed = sdk.accounting.get_credit_notes(UK_TENANT, page=1)
    assert (listed.pagination.item_count, listed.credit_notes[0].line_items[0].description) == (1, "Returned goods")


def test_refused_allocation_comes_back_as_an_element_the_sdk_can_read(sdk: Sdk, customer: str) -> None:
    invoice = _invoice(sdk, customer)
    note = _credit(sdk, customer, amount=5)                   # credit 6.00
    [refused] = sdk.accounting.create_credit_note_allocation(UK_TENANT, note.credit_note_id, Allocations(allocations=[
        Allocation(invoice=Invoice(invoice_id=invoice.invoice_id), amount=Decimal("7"), date=date(2026, 1, 8))]),
        summarize_errors=False).allocations
    assert [e.message for e in refused.validation_errors] == [
        "The amount allocated exceeds the remaining credit on this credit note."]
    assert (refused.amount, refused.date, refused.invoice.invoice_id) == (7, date(2026, 1, 8), invoice.invoice_id)
    assert refused.status_attribute_string == "ERROR"
    assert sdk.accounting.get_credit_note(UK_TENANT, note.credit_note_id).credit_notes[0].remaining_credit == 6
