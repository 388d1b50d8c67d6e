"""Contacts through xero-python: Xero's uniqueness rules, updates, queries and balances."""

import datetime as dt
import uuid

import httpx
import pytest
from xero_python.accounting import Address, Contact, Contacts
from xero_python.exceptions import AccountingBadRequestException

from tests.support.xero_sdk import UK_TENANT, Sdk

pytestmark = pytest.mark.integration


def _create(sdk: Sdk, *contacts: Contact) -> list[Contact]:
    return sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=list(contacts)),
                                          summarize_errors=False).contacts


def test_created_contact_gets_an_id_and_every_address_type(sdk: Sdk) -> None:
    [made] = _create(sdk, Contact(name="Acme Ltd", account_number="C001", email_address="ap@acme.test",
                                  addresses=[Address(address_type="STREET", city="Leeds")]))
    assert made.contact_id and not made.has_validation_errors
    assert {a.address_type for a in made.addresses} == {"POBOX", "STREET"}
    assert made.is_customer is False


def test_contact_name_must_be_unique_among_active_contacts_ignoring_case(sdk: Sdk) -> None:
    ok, dup = _create(sdk, Contact(name="Acme Ltd"), Contact(name="ACME LTD"))
    assert not ok.has_validation_errors
    assert dup.has_validation_errors and dup.contact_id == "00000000-0000-0000-0000-000000000000"
    assert dup.validation_errors[0].message == (
        "The contact name ACME LTD is already assigned to another contact. "
        "The contact name must be unique across all active contacts.")


def test_archived_contact_frees_its_name_but_not_its_account_number(sdk: Sdk) -> None:
    [old] = _create(sdk, Contact(name="Old Co", account_number="C009"))
    sdk.accounting.update_contact(UK_TENANT, old.contact_id, Contacts(contacts=[Contact(contact_status="ARCHIVED")]))
    same_name, same_number = _create(sdk, Contact(name="Old Co"), Contact(name="New Co", account_number="C009"))
    assert not same_name.has_validation_errors
    assert same_number.validation_errors[0].message == (
        "The Account Number already exists. Please enter a different Account Number.")


def test_update_keeps_fields_that_are_not_sent(sdk: Sdk) -> None:
    [made] = _create(sdk, Contact(name="Beta Ltd", email_address="a@beta.test", account_number="C002"))
    sdk.accounting.update_contact(UK_TENANT, made.contact_id, Contacts(contacts=[Contact(name="Beta Limited")]))
    got = sdk.accounting.get_contact(UK_TENANT, made.contact_id).contacts[0]
    assert (got.name, got.email_address, got.account_number) == ("Beta Limited", "a@beta.test", "C002")


def test_update_or_create_matches_contact_number(sdk: Sdk) -> None:
    first = sdk.accounting.update_or_create_contacts(
        UK_TENANT, Contacts(contacts=[Contact(name="Gamma", contact_number="OMONO-7")]), summarize_errors=False)
    again = sdk.accounting.update_or_create_contacts(
        UK_TENANT, Contacts(contacts=[Contact(name="Gamma Ltd", contact_number="OMONO-7")]), summarize_errors=False)
    assert again.contacts[0].contact_id == first.contacts[0].contact_id
    assert len(sdk.accounting.get_contacts(UK_TENANT).contacts) == 1


def test_without_summarize_errors_one_bad_contact_fails_the_call_but_the_good_one_is_created(sdk: Sdk) -> None:
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="Good"), Contact(name="")]))
    assert err.value.status == 400
    assert err.value.reason == "Contact Name cannot be empty."
    assert [c.name for c in sdk.accounting.get_contacts(UK_TENANT).contacts] == ["Good"]


def test_queries_by_where_ids_search_term_and_paging(sdk: Sdk) -> None:
    made = _create(sdk, *[Contact(name=f"Customer {i:02d}", account_number=f"A{i:02d}") for i in range(12)])
    acc = sdk.accounting
    assert [c.name for c in acc.get_contacts(UK_TENANT, where='AccountNumber=="A03"').contacts] == ["Customer 03"]
    ids = [made[1].contact_id, made[2].contact_id]
    assert {c.contact_id for c in acc.get_contacts(UK_TENANT, i_ds=ids).contacts} == set(ids)
    assert len(acc.get_contacts(UK_TENANT, search_term="customer 1").contacts) == 2
    page = acc.get_contacts(UK_TENANT, page=2, page_size=5)
    assert [c.name for c in page.contacts] == [f"Customer {i:02d}" for i in range(5, 10)]
    assert (page.pagination.page_count, page.pagination.item_count) == (3, 12)
    summary = acc.get_contacts(UK_TENANT, summary_only=True, page=1).contacts[0]
    assert summary.addresses is None


def test_if_modified_since_returns_only_later_changes(sdk: Sdk, admin: httpx.Client) -> None:
    _create(sdk, Contact(name="Earlier"))
    admin.post("/clock", json={"advance_seconds": 120})
    cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=60)
    _create(sdk, Contact(name="Later"))
    assert [c.name for c in sdk.accounting.get_contacts(UK_TENANT, if_modified_since=cutoff).contacts] == ["Later"]


def test_archived_contacts_are_listed_only_when_asked(sdk: Sdk) -> None:
    [made] = _create(sdk, Contact(name="Gone Ltd"))
    sdk.accounting.update_contact(UK_TENANT, made.contact_id, Contacts(contacts=[Contact(contact_status="ARCHIVED")]))
    assert sdk.accounting.get_contacts(UK_TENANT).contacts == []
    assert len(sdk.accounting.get_contacts(UK_TENANT, include_archived=True).contacts) == 1


def test_currency_not_enabled_for_the_organisation_is_refused(sdk: Sdk) -> None:
    from xero_python.accounting import CurrencyCode

    [made] = _create(sdk, Contact(name="Yen Co", default_currency=CurrencyCode.JPY))
    assert made.validation_errors[0].message == "Organisation is not subscribed to currency JPY"


def test_balances_show_outstanding_and_overdue_receivables_on_the_contact_only(sdk: Sdk) -> None:
    from xero_python.accounting import Invoice, Invoices, LineItem

    [made] = _create(sdk, Contact(name="Owing Ltd"))
    line = LineItem(description="x", quantity=1, unit_amount=100, account_code="200", tax_type="OUTPUT2")
    overdue = Invoice(type="ACCREC", contact=Contact(contact_id=made.contact_id), status="AUTHORISED",
                      date=dt.date(2020, 1, 1), due_date=dt.date(2020, 2, 1), line_items=[line])
    current = Invoice(type="ACCREC", contact=Contact(contact_id=made.contact_id), status="AUTHORISED",
                      date=dt.date(2099, 1, 1), due_date=dt.date(2099, 2, 1), line_items=[line])
    draft = Invoice(type="ACCREC", contact=Contact(contact_id=made.contact_id), status="DRAFT", line_items=[line])
    sdk.accounting.create_invoices(UK_TENANT, Invoices(invoices=[overdue, current, draft]), summarize_errors=False)
    balances = sdk.accounting.get_contact(UK_TENANT, made.contact_id).contacts[0].balances
    assert (balances.accounts_receivable.outstanding, balances.accounts_receivable.overdue) == (240, 120)
    paged = sdk.accounting.get_contacts(UK_TENANT, i_ds=[made.contact_id], page=1).contacts[0]
    assert paged.balances is None               # documented on a contact, not on lists (shared notes §2.7)


# -- archived contacts ----------------------------------------------------------------------------------------
def _archive(sdk: Sdk, contact_id: str) -> None:
    sdk.accounting.update_contact(UK_TENANT, contact_id, Contacts(contacts=[Contact(contact_status="ARCHIVED")]))


def test_contact_number_still_finds_an_archived_contact(sdk: Sdk) -> None:
    [old] = _create(sdk, Contact(name="Dormant Ltd", contact_number="OMONO-9"))
    _archive(sdk, old.contact_id)
    found = sdk.accounting.get_contact_by_contact_number(UK_TENANT, "OMONO-9").contacts[0]
    assert (found.contact_id, found.contact_status) == (old.contact_id, "ARCHIVED")
    again = sdk.accounting.update_or_create_contacts(UK_TENANT, Contacts(contacts=[
        Contact(name="Dormant Ltd", contact_number="OMONO-9", email_address="a@dormant.test")]),
        summarize_errors=False).contacts[0]
    assert again.contact_id == old.contact_id


def test_archived_contacts_are_found_by_account_number_only_with_include_archived(sdk: Sdk) -> None:
    [old] = _create(sdk, Contact(name="Old Co", account_number="C077"))
    _archive(sdk, old.contact_id)
    where = 'AccountNumber=="C077"'
    assert sdk.accounting.get_contacts(UK_TENANT, where=where).contacts == []
    assert [c.contact_id for c in sdk.accounting.get_contacts(UK_TENANT, where=where, include_archived=True)
            .contacts] == [old.contact_id]


def test_restoring_a_contact_whose_name_an_active_one_took_is_refused_with_the_name_message(
        sdk: Sdk, admin: httpx.Client) -> None:
    [old] = _create(sdk, Contact(name="Acme Ltd"))
    _archive(sdk, old.contact_id)
    _create(sdk, Contact(name="ACME Ltd"))
    message = ("The contact name Acme Ltd is already assigned to another contact. "
               "The contact name must be unique across all active contacts.")
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.update_contact(UK_TENANT, old.contact_id, Contacts(contacts=[Contact(contact_status="ACTIVE")]))
    assert err.value.reason == message
    restored = admin.post(f"/tenants/{UK_TENANT}/contacts/{old.contact_id}/restore")
    assert (restored.status_code, restored.json()["error"]) == (400, message)


def test_bookkeeper_archives_and_restores_a_contact(sdk: Sdk, admin: httpx.Client) -> None:
    [made] = _create(sdk, Contact(name="Seasonal Ltd"))
    assert admin.post(f"/tenants/{UK_TENANT}/contacts/{made.contact_id}/archive").json()["ContactStatus"] == (
        "ARCHIVED")
    assert sdk.accounting.get_contacts(UK_TENANT).contacts == []
    assert admin.post(f"/tenants/{UK_TENANT}/contacts/{made.contact_id}/archive").status_code == 400
    admin.post(f"/tenants/{UK_TENANT}/contacts/{made.contact_id}/restore").raise_for_status()
    assert [c.contact_status for c in sdk.accounting.get_contacts(UK_TENANT).contacts] == ["ACTIVE"]
    assert admin.post(f"/tenants/{UK_TENANT}/contacts/{uuid.uuid4()}/archive").status_code == 404
