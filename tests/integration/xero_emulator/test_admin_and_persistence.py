"""The admin API and on-disk persistence of the emulator (a demo organisation survives a restart)."""

import datetime as dt
from pathlib import Path

import httpx
import pytest
from xero_python.accounting import Contact, Contacts, Invoice, Invoices, LineItem

from include.xero_emulator.config import EmulatorConfig, Limits
from tests.support.emulator_server import running_emulator
from tests.support.xero_sdk import NZ_TENANT, UK_TENANT, Sdk, authorization_code_tokens, sdk_for

pytestmark = pytest.mark.integration


def _draft(number: str) -> dict:
    return {"Type": "ACCREC", "InvoiceNumber": number, "Contact": {"Name": "Typed Customer"}, "Date": "2026-02-01",
            "LineItems": [{"Description": "Typed in Xero", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200"}]}


def test_seeded_objects_look_like_ones_entered_in_xero(sdk: Sdk, admin: httpx.Client) -> None:
    reply = admin.post(f"/tenants/{UK_TENANT}/seed", json={
        "Contacts": [{"Name": "Existing Customer", "AccountNumber": "C100"}],
        "Invoices": [{"Type": "ACCREC", "InvoiceNumber": "SO-500", "Contact": {"Name": "Existing Customer"},
                      "Status": "AUTHORISED", "Date": "2025-12-01",
                      "LineItems": [{"Description": "Old order", "Quantity": 1, "UnitAmount": 100,
                                     "AccountCode": "200"}]}]})
    reply.raise_for_status()
    found = sdk.accounting.get_invoices(UK_TENANT, invoice_numbers=["SO-500"]).invoices
    assert [(i.total, i.contact.name) for i in found] == [(120, "Existing Customer")]


def test_seeded_documents_are_typed_by_a_person_not_created_by_my_app(sdk: Sdk, admin: httpx.Client) -> None:
    admin.post(f"/tenants/{UK_TENANT}/seed", json={"Invoices": [_draft("SO-TYPED")]}).raise_for_status()
    sdk.accounting.create_invoices(UK_TENANT, Invoices(invoices=[Invoice(
        type="ACCREC", invoice_number="SO-MINE", contact=Contact(name="Typed Customer"),
        line_items=[LineItem(description="x", quantity=1, unit_amount=5, account_code="200")])]))
    mine = sdk.accounting.get_invoices(UK_TENANT, created_by_my_app=True).invoices
    assert [i.invoice_number for i in mine] == ["SO-MINE"]
    assert len(sdk.accounting.get_invoices(UK_TENANT).invoices) == 2


def test_bookkeeper_approves_voids_and_deletes_documents_the_client_then_sees(sdk: Sdk,
                                                                             admin: httpx.Client) -> None:
    admin.post(f"/tenants/{UK_TENANT}/seed", json={"Invoices": [_draft("SO-1"), _draft("SO-2")]}).raise_for_status()
    approved = admin.post(f"/tenants/{UK_TENANT}/invoices/SO-1/approve").json()
    assert (approved["InvoiceNumber"], approved["Status"]) == ("SO-1", "AUTHORISED")
    admin.post(f"/tenants/{UK_TENANT}/invoices/SO-1/void").raise_for_status()
    admin.post(f"/tenants/{UK_TENANT}/invoices/SO-2/delete").raise_for_status()
    found = {i.invoice_number: i.status for i in sdk.accounting.get_invoices(UK_TENANT).invoices}
    assert found == {"SO-1": "VOIDED", "SO-2": "DELETED"}


def test_bookkeeper_actions_keep_xeros_rules(sdk: Sdk, admin: httpx.Client) -> None:
    admin.post(f"/tenants/{UK_TENANT}/seed", json={"Invoices": [_draft("SO-1")]}).raise_for_status()
    refused = admin.post(f"/tenants/{UK_TENANT}/invoices/SO-1/void")
    assert (refused.status_code, refused.json()["error"]) == (400, "Invoice not of valid status for modification")
    admin.post(f"/tenants/{UK_TENANT}/invoices/SO-1/approve").raise_for_status()
    admin.post(f"/tenants/{UK_TENANT}/payments", json={"InvoiceID": "SO-1", "Amount": 1}).raise_for_status()
    locked = admin.post(f"/tenants/{UK_TENANT}/invoices/SO-1/void")
    assert locked.json()["error"] == ("The status VOIDED cannot be applied to the invoice because it has payments "
                                      "or credit notes allocated to it.")
    assert admin.post(f"/tenants/{UK_TENANT}/creditnotes/CN-404/approve").status_code == 404


def test_bookkeepers_typed_line_change_is_seen_by_if_modified_since(sdk: Sdk, admin: httpx.Client) -> None:
    admin.post(f"/tenants/{UK_TENANT}/seed", json={"Invoices": [_draft("SO-1")]}).raise_for_status()
    admin.post("/clock", json={"advance_seconds": 120})
    cutoff = dt.datetime.now(dt.UTC).replace(tzinfo=None) + dt.timedelta(seconds=60)
    edited = admin.patch(f"/tenants/{UK_TENANT}/invoices/SO-1", json={"LineItems": [
        {"Description": "Retyped", "Quantity": 3, "UnitAmount": 10, "AccountCode": "200"}]})
    edited.raise_for_status()
    [changed] = sdk.accounting.get_invoices(UK_TENANT, if_modified_since=cutoff, page=1).invoices
    assert ([li.description for li in changed.line_items], changed.total) == (["Retyped"], 36)


def test_seed_applies_xeros_rules(admin: httpx.Client) -> None:
    reply = admin.post(f"/tenants/{UK_TENANT}/seed", json={"Contacts": [{"Name": ""}]})
    assert reply.status_code == 400
    assert reply.json()["error"] == "Contact Name cannot be empty."


def test_tenants_listing_counts_objects_per_organisation(sdk: Sdk, admin: httpx.Client) -> None:
    sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="A")]))
    tenants = {t["tenant_id"]: t for t in admin.get("/tenants").json()["tenants"]}
    assert tenants[UK_TENANT]["counts"]["contacts"] == 1
    assert tenants[NZ_TENANT]["counts"]["contacts"] == 0
    assert tenants[UK_TENANT]["short_code"] == "!Omn0K"


def test_request_log_counts_calls_and_elements(sdk: Sdk, admin: httpx.Client) -> None:
    admin.delete("/requests")
    sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="A"), Contact(name="B")]),
                                   summarize_errors=False, idempotency_key="k1")
    sdk.accounting.get_contacts(UK_TENANT)
    rows = admin.get("/requests", params={"tenant": UK_TENANT}).json()["requests"]
    assert [(r["method"], r["path"], r["status"], r["elements"], r["idempotency_key"]) for r in rows] == [
        ("PUT", "/api.xro/2.0/Contacts", 200, 2, "k1"), ("GET", "/api.xro/2.0/Contacts", 200, None, None)]


def test_reset_returns_to_the_fixture(sdk: Sdk, admin: httpx.Client) -> None:
    sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="A")]))
    admin.post(f"/tenants/{UK_TENANT}/currencies", json={"Code": "JPY", "Description": "Japanese Yen"})
    admin.post("/reset").raise_for_status()
    assert admin.get(f"/tenants/{UK_TENANT}/contacts").json()["contacts"] == []
    assert [c["Code"] for c in admin.get(f"/tenants/{UK_TENANT}/currencies").json()["currencies"]] == [
        "GBP", "EUR", "USD"]


def test_bad_fault_is_refused_with_a_reason(admin: httpx.Client) -> None:
    reply = admin.post("/faults", json={"kind": "explode"})
    assert reply.status_code == 400 and "fault kind must be one of" in reply.json()["error"]


def test_organisation_and_refresh_token_survive_a_restart_with_a_data_dir(tmp_path: Path) -> None:
    config = EmulatorConfig(data_dir=tmp_path, limits=Limits.off())
    with running_emulator(config) as (_, url):
        tokens = authorization_code_tokens(url)
        sdk = sdk_for(url, tokens)
        sdk.accounting.create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="Kept Ltd")]))
    with running_emulator(config) as (_, url):
        reply = httpx.post(f"{url}/connect/token", data={
            "grant_type": "refresh_token", "refresh_token": tokens["refresh_token"],
            "client_id": "OMONO-DEMO-APP", "client_secret": "emulator-demo-secret"})
        assert reply.status_code == 200
        again = sdk_for(url, reply.json())
        assert [c.name for c in again.accounting.get_contacts(UK_TENANT).contacts] == ["Kept Ltd"]
