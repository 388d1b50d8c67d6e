"""Seeding organisations from a fixture file (see fixtures/demo.json and docs/EMULATOR.md)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

from include.xero_emulator.clock import Clock
from include.xero_emulator.store import Store

_NAMESPACE = uuid.UUID("4c1f6f9e-0d7b-4d43-9b1e-6f4f2a0d5e11")


def load_fixture(path: Path) -> dict:
    with path.open(encoding="utf-8") as handle:
        return json.load(handle)


def clients_of(fixture: dict) -> dict[str, dict]:
    return {c["client_id"]: c for c in fixture["clients"]}


def consents_of(fixture: dict) -> dict[str, list[str]]:
    return {c["client_id"]: [t.lower() for t in c["tenant_ids"]] for c in fixture.get("consents", [])}


def seed_organisation(store: Store, clock: Clock, org: dict) -> None:
    """Create one organisation with its chart of accounts, tax rates and enabled currencies."""
    tid = org["tenant_id"].lower()
    now = clock.now_ms()
    store.put(tid, "organisation", "org", {**org["Organisation"], "OrganisationID": tid, "CreatedDateUTC": now})
    for account in org["Accounts"]:
        account_id = str(uuid.uuid5(_NAMESPACE, f"{tid}/{account['Code']}"))
        store.put(tid, "account", account_id, {**account, "AccountID": account_id, "UpdatedDateUTC": now})
    for rate in org["TaxRates"]:
        store.put(tid, "taxrate", rate["TaxType"], dict(rate))
    for currency in org["Currencies"]:
        store.put(tid, "currency", currency["Code"], dict(currency))
    tenant = store.tenant(tid)
    tenant.meta["exchange_rates"] = dict(org.get("ExchangeRates", {}))
    store.save_meta(tenant)


def seed(store: Store, clock: Clock, fixture: dict) -> None:
    for org in fixture["organisations"]:
        seed_organisation(store, clock, org)
    store.commit()
