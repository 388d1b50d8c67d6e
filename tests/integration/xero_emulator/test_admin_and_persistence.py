"""The admin API and on-disk persistence of the emulator (a demo organisation survives a restart)."""

from pathlib import Path

import httpx
import pytest
from xero_python.accounting import Contact, Contacts

from include.xero_emulator.config import EmulatorConfig, Limits
from tests.support.emulator_server import running_emulator
from tests.support.xero_sdk import NZ_TENANT, UK_TENANT, Sdk, authorization_code_tokens, sdk_for

pytestmark = pytest.mark.integration


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
