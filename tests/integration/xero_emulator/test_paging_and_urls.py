"""Paging by `pagination` (page sizes Xero serves, including a lowered cap) and Xero's 404 for over-long URLs."""

import uuid
from datetime import date

import httpx
import pytest
from xero_python.accounting import Contact, Contacts, CreditNote, CreditNotes, Invoice, Invoices, LineItem
from xero_python.exceptions import NotFoundException

from include.xero_emulator.app import MAX_URL_LENGTH, XERO_API_ORIGIN
from tests.support.xero_sdk import UK_TENANT, Sdk

pytestmark = pytest.mark.integration


def _contacts(admin: httpx.Client, count: int) -> None:
    admin.post(f"/tenants/{UK_TENANT}/seed", json={
        "Contacts": [{"Name": f"Customer {i:02d}"} for i in range(count)]}).raise_for_status()


def _line() -> LineItem:
    return LineItem(description="Widgets", quantity=1, unit_amount=10, account_code="200", tax_type="OUTPUT2")


# -- page sizes ---------------------------------------------------------------------------------------------
def test_lowered_page_cap_is_reported_so_a_client_pages_to_the_end_by_pagination(sdk: Sdk,
                                                                                 admin: httpx.Client) -> None:
    _contacts(admin, 20)
    assert admin.put("/paging", json={"max_page_size": 7}).json() == {"max_page_size": 7}
    first = sdk.accounting.get_contacts(UK_TENANT, page=1, page_size=100)
    p = first.pagination
    assert (len(first.contacts), p.page, p.page_size, p.page_count, p.item_count) == (7, 1, 7, 3, 20)
    names = [c.name for c in first.contacts]              # a client that stopped at this short page lost 13
    for page in range(2, p.page_count + 1):
        names += [c.name for c in sdk.accounting.get_contacts(UK_TENANT, page=page, page_size=100).contacts]
    assert names == [f"Customer {i:02d}" for i in range(20)]


def test_page_cap_is_validated_restored_by_null_and_by_reset(admin: httpx.Client) -> None:
    assert admin.put("/paging", json={"max_page_size": 0}).status_code == 400
    assert admin.put("/paging", json={"max_page_size": 1001}).status_code == 400
    admin.put("/paging", json={"max_page_size": 7})
    assert admin.put("/paging", json={"max_page_size": None}).json() == {"max_page_size": 1000}
    admin.put("/paging", json={"max_page_size": 7})
    admin.post("/reset")
    assert admin.get("/paging").json() == {"max_page_size": 1000}


def test_page_size_is_honoured_up_to_xeros_maximum_of_1000(sdk: Sdk, admin: httpx.Client) -> None:
    _contacts(admin, 3)
    assert sdk.accounting.get_contacts(UK_TENANT, page=1, page_size=5000).pagination.page_size == 1000
    assert sdk.accounting.get_contacts(UK_TENANT, page=1).pagination.page_size == 100


def test_invoice_and_credit_note_pagination_counts_pages_and_items(sdk: Sdk, admin: httpx.Client) -> None:
    customer = sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="Acme Ltd")]),
                                              summarize_errors=False).contacts[0].contact_id
    ref = Contact(contact_id=customer)
    sdk.accounting.create_invoices(UK_TENANT, Invoices(invoices=[
        Invoice(type="ACCREC", contact=ref, date=date(2026, 1, 5), line_items=[_line()]) for _ in range(12)]))
    sdk.accounting.create_credit_notes(UK_TENANT, CreditNotes(credit_notes=[
        CreditNote(type="ACCRECCREDIT", contact=ref, date=date(2026, 1, 5), line_items=[_line()]) for _ in range(6)]))
    invoices = [sdk.accounting.get_invoices(UK_TENANT, page=n, page_size=5) for n in (1, 2, 3)]
    assert [len(i.invoices) for i in invoices] == [5, 5, 2]
    assert {(i.pagination.page_count, i.pagination.item_count) for i in invoices} == {(3, 12)}
    admin.put("/paging", json={"max_page_size": 4})
    notes = sdk.accounting.get_credit_notes(UK_TENANT, page=2, page_size=5)
    p = notes.pagination
    assert (len(notes.credit_notes), p.page, p.page_size, p.page_count, p.item_count) == (2, 2, 4, 2, 6)
    assert notes.credit_notes[0].line_items            # paged credit notes carry their lines


# -- URL length ---------------------------------------------------------------------------------------------------
def test_fifty_two_ids_pass_and_fifty_three_get_xeros_404(sdk: Sdk) -> None:
    ids = [str(uuid.uuid4()) for _ in range(53)]
    assert sdk.accounting.get_contacts(UK_TENANT, i_ds=ids[:52]).contacts == []
    with pytest.raises(NotFoundException) as err:
        sdk.accounting.get_contacts(UK_TENANT, i_ds=ids)
    assert err.value.status == 404


def test_url_length_limit_is_exact_and_answered_with_xeros_text(emulator_url: str, sdk: Sdk) -> None:
    token = sdk.tokens["token"]["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": UK_TENANT}
    path = "/api.xro/2.0/Invoices"

    def get_with_url_length(length: int) -> httpx.Response:
        padding = "a" * (length - len(f"{XERO_API_ORIGIN}{path}?padding="))
        return httpx.get(f"{emulator_url}{path}?padding={padding}", headers=headers)

    assert get_with_url_length(MAX_URL_LENGTH).status_code == 200
    refused = get_with_url_length(MAX_URL_LENGTH + 1)
    assert (refused.status_code, refused.text) == (404, "The resource you're looking for cannot be found")
