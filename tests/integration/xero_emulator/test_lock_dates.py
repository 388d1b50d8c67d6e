"""Lock dates through xero-python: what a locked period refuses, in Xero's words, and what it still allows."""

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

END_OF_YEAR = "The document date cannot be before the end of year lock date, currently set at 31-Mar-2026"
PERIOD = "The document date cannot be before the period lock date, currently set at 30-Apr-2026"
EDIT_END_OF_YEAR = "The document cannot be edited as it is currently dated before the end of year lock date"


@pytest.fixture
def customer(sdk: Sdk) -> str:
    return sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="Acme Ltd")]),
                                          summarize_errors=False).contacts[0].contact_id


def _lock(admin: httpx.Client, **dates: str | None) -> None:
    admin.patch(f"/tenants/{UK_TENANT}/organisation", json=dates).raise_for_status()


def _invoice(contact_id: str, when: date, status: str = "AUTHORISED", **kw: object) -> Invoice:
    return Invoice(type="ACCREC", contact=Contact(contact_id=contact_id), date=when, status=status, line_items=[
        LineItem(description="Widgets", quantity=2, unit_amount=10, account_code="200", tax_type="OUTPUT2")], **kw)


def _create(sdk: Sdk, *invoices: Invoice) -> list[Invoice]:
    return sdk.accounting.create_invoices(UK_TENANT, Invoices(invoices=list(invoices)),
                                          summarize_errors=False).invoices


def _errors(element: object) -> list[str]:
    return [e.message for e in element.validation_errors or []]


def test_organisation_shows_lock_dates_only_when_set_and_the_sdk_parses_them(sdk: Sdk, admin: httpx.Client) -> None:
    org = sdk.accounting.get_organisations(UK_TENANT).organisations[0]
    assert (org.period_lock_date, org.end_of_year_lock_date) == (None, None)
    _lock(admin, PeriodLockDate="2026-04-30", EndOfYearLockDate="2026-03-31")
    org = sdk.accounting.get_organisations(UK_TENANT).organisations[0]
    assert (org.period_lock_date, org.end_of_year_lock_date) == (date(2026, 4, 30), date(2026, 3, 31))
    _lock(admin, PeriodLockDate=None)
    assert sdk.accounting.get_organisations(UK_TENANT).organisations[0].period_lock_date is None


def test_malformed_lock_date_is_refused_by_the_admin_api(admin: httpx.Client) -> None:
    reply = admin.patch(f"/tenants/{UK_TENANT}/organisation", json={"EndOfYearLockDate": "31/03/2026"})
    assert reply.status_code == 400


def test_approved_document_dated_on_the_lock_date_is_refused_per_element(sdk: Sdk, admin: httpx.Client,
                                                                         customer: str) -> None:
    _lock(admin, EndOfYearLockDate="2026-03-31")
    locked, later = _create(sdk, _invoice(customer, date(2026, 3, 31)), _invoice(customer, date(2026, 4, 1)))
    assert (locked.has_errors, _errors(locked)) == (True, [END_OF_YEAR])
    assert not later.has_errors


def test_both_lock_dates_each_give_their_message(sdk: Sdk, admin: httpx.Client, customer: str) -> None:
    _lock(admin, PeriodLockDate="2026-04-30", EndOfYearLockDate="2026-03-31")
    [in_year_end] = _create(sdk, _invoice(customer, date(2026, 3, 15)))
    [in_period] = _create(sdk, _invoice(customer, date(2026, 4, 15)))
    assert _errors(in_year_end) == [PERIOD, END_OF_YEAR]
    assert _errors(in_period) == [PERIOD]


def test_without_summarize_errors_the_lock_date_refusal_is_the_sdks_bad_request(sdk: Sdk, admin: httpx.Client,
                                                                                customer: str) -> None:
    _lock(admin, EndOfYearLockDate="2026-03-31")
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.create_invoices(UK_TENANT, Invoices(invoices=[_invoice(customer, date(2026, 1, 5))]))
    assert err.value.reason == END_OF_YEAR


def test_draft_in_a_locked_period_is_kept_edited_and_deleted_but_not_approved(sdk: Sdk, admin: httpx.Client,
                                                                              customer: str) -> None:
    _lock(admin, EndOfYearLockDate="2026-03-31")
    [draft] = _create(sdk, _invoice(customer, date(2026, 3, 1), status="DRAFT"))
    acc = sdk.accounting
    assert not draft.has_errors
    edited = acc.update_invoice(UK_TENANT, draft.invoice_id, Invoices(invoices=[Invoice(reference="PO 7")]))
    assert edited.invoices[0].reference == "PO 7"
    with pytest.raises(AccountingBadRequestException) as err:
        acc.update_invoice(UK_TENANT, draft.invoice_id, Invoices(invoices=[Invoice(status="AUTHORISED")]))
    assert err.value.reason == END_OF_YEAR
    gone = acc.update_invoice(UK_TENANT, draft.invoice_id, Invoices(invoices=[Invoice(status="DELETED")]))
    assert gone.invoices[0].status == "DELETED"


def test_approved_document_later_locked_can_be_neither_edited_nor_voided(sdk: Sdk, admin: httpx.Client,
                                                                         customer: str) -> None:
    [inv] = _create(sdk, _invoice(customer, date(2026, 3, 10)))
    _lock(admin, EndOfYearLockDate="2026-03-31")
    acc = sdk.accounting
    for change in (Invoice(reference="late edit"), Invoice(status="VOIDED")):
        with pytest.raises(AccountingBadRequestException) as err:
            acc.update_invoice(UK_TENANT, inv.invoice_id, Invoices(invoices=[change]))
        assert err.value.reason == EDIT_END_OF_YEAR
    _lock(admin, EndOfYearLockDate=None, PeriodLockDate="2026-03-31")
    with pytest.raises(AccountingBadRequestException) as err:
        acc.update_invoice(UK_TENANT, inv.invoice_id, Invoices(invoices=[Invoice(status="VOIDED")]))
    assert err.value.reason == "The document cannot be edited as it is currently dated before the period lock date"


def test_approved_document_cannot_be_moved_into_a_locked_period(sdk: Sdk, admin: httpx.Client,
                                                                customer: str) -> None:
    [inv] = _create(sdk, _invoice(customer, date(2026, 5, 10)))
    _lock(admin, EndOfYearLockDate="2026-03-31")
    moved = sdk.accounting.update_or_create_invoices(UK_TENANT, Invoices(invoices=[
        Invoice(invoice_id=inv.invoice_id, date=date(2026, 3, 1))]), summarize_errors=False).invoices[0]
    assert _errors(moved) == [END_OF_YEAR]
    assert sdk.accounting.get_invoice(UK_TENANT, inv.invoice_id).invoices[0].date == date(2026, 5, 10)


def test_credit_notes_and_allocations_keep_out_of_the_locked_period(sdk: Sdk, admin: httpx.Client,
                                                                     customer: str) -> None:
    [inv] = _create(sdk, _invoice(customer, date(2026, 5, 1)))
    line = LineItem(description="Returned", quantity=1, unit_amount=5, account_code="200", tax_type="OUTPUT2")
    notes = [CreditNote(type="ACCRECCREDIT", contact=Contact(contact_id=customer), status="AUTHORISED", date=d,
                        line_items=[line]) for d in (date(2026, 3, 1), date(2026, 5, 2))]
    _lock(admin, EndOfYearLockDate="2026-03-31")
    locked, note = sdk.accounting.create_credit_notes(UK_TENANT, CreditNotes(credit_notes=notes),
                                                      summarize_errors=False).credit_notes
    assert _errors(locked) == [END_OF_YEAR] and not note.has_errors
    [refused] = sdk.accounting.create_credit_note_allocation(UK_TENANT, note.credit_note_id, Allocations(allocations=[
        Allocation(invoice=Invoice(invoice_id=inv.invoice_id), amount=Decimal("6"), date=date(2026, 3, 31))]),
        summarize_errors=False).allocations
    assert _errors(refused) == [END_OF_YEAR]


def test_bookkeeper_cannot_void_or_pay_in_the_locked_period_either(sdk: Sdk, admin: httpx.Client,
                                                                    customer: str) -> None:
    [inv] = _create(sdk, _invoice(customer, date(2026, 3, 10)))
    _lock(admin, EndOfYearLockDate="2026-03-31")
    voided = admin.post(f"/tenants/{UK_TENANT}/invoices/{inv.invoice_id}/void")
    assert (voided.status_code, voided.json()["error"]) == (400, EDIT_END_OF_YEAR)
    paid = admin.post(f"/tenants/{UK_TENANT}/payments", json={"InvoiceID": inv.invoice_id, "Date": "2026-03-20"})
    assert (paid.status_code, paid.json()["Message"]) == (400, END_OF_YEAR)
