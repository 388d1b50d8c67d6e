"""The naive baseline of `make bench` (issue 11): what the same first sync costs an integration that sends one
document per call and looks its contact up for every document, as many integrations do. It replays, for real and
over HTTP, what this project's sync sent (`record_state.last_sent`) into the emulator's organisation emptied by a
reset, and returns how many calls that took: per company a look-up and a create; per document a contact look-up
and a create; per linked credit note its allocation."""

from __future__ import annotations

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.support.xero_sdk import UK_TENANT, authorization_code_tokens

ORDER = ("contact", "dispatch_invoice", "delivery_invoice", "sales_credit_note", "purchase_credit_note")


def replay(url: str, emulator_url: str) -> int:
    httpx.post(f"{emulator_url}/_emulator/reset").raise_for_status()
    token = authorization_code_tokens(emulator_url)["access_token"]
    with psycopg.connect(url, row_factory=dict_row) as conn:
        sent = conn.execute("SELECT entity, omono_id, xero_id::text AS xero_id, last_sent FROM xero_sync.record_state "
                            "WHERE xero_id IS NOT NULL AND last_sent IS NOT NULL").fetchall()
        links = {(r["entity"], r["omono_id"]): (r["invoice_entity"], r["invoice_omono_id"], r["amount"]) for r in
                 conn.execute("SELECT entity, omono_id, invoice_entity, invoice_omono_id, amount FROM "
                              "xero_sync.allocations WHERE status = 'allocated'")}
    number_of = {r["xero_id"]: r["last_sent"]["ContactNumber"] for r in sent if r["entity"] == "contact"}
    with httpx.Client(base_url=f"{emulator_url}/api.xro/2.0", timeout=60, headers={
            "Authorization": f"Bearer {token}", "Xero-tenant-id": UK_TENANT, "Accept": "application/json"}) as api:
        naive = NaiveSync(api, number_of)
        for entity in ORDER:
            for r in (r for r in sent if r["entity"] == entity):
                naive.send(entity, r, links.get((entity, r["omono_id"])))
    return naive.calls


class NaiveSync:
    def __init__(self, api: httpx.Client, number_of: dict[str, str]) -> None:
        self.api, self.number_of = api, number_of
        self.calls = 0
        self.new_id: dict[tuple[str, int], str] = {}

    def call(self, method: str, path: str, **kwargs: object) -> dict:
        self.calls += 1
        reply = self.api.request(method, path, **kwargs)
        return reply.json() if reply.headers.get("content-type", "").startswith("application/json") else {}

    def contact_id(self, number: str) -> str | None:
        found = self.call("GET", "/Contacts", params={"where": f'ContactNumber=="{number}"'}).get("Contacts") or []
        return found[0]["ContactID"] if found else None

    def send(self, entity: str, row: dict, link: tuple | None) -> None:
        body = dict(row["last_sent"])
        if entity == "contact":
            self.contact_id(body["ContactNumber"])
            made = self.call("POST", "/Contacts", json={"Contacts": [body]}).get("Contacts") or [{}]
            self.new_id[(entity, row["omono_id"])] = made[0].get("ContactID")
            return
        body["Contact"] = {"ContactID": self.contact_id(self.number_of.get(body["Contact"]["ContactID"], ""))}
        collection = "CreditNotes" if entity.endswith("credit_note") else "Invoices"
        made = self.call("POST", f"/{collection}", json={collection: [body]}).get(collection) or [{}]
        key = "CreditNoteID" if collection == "CreditNotes" else "InvoiceID"
        self.new_id[(entity, row["omono_id"])] = made[0].get(key)
        if link and made[0].get(key) and self.new_id.get(link[:2]):
            self.call("PUT", f"/CreditNotes/{made[0][key]}/Allocations", json={"Allocations": [
                {"Invoice": {"InvoiceID": self.new_id[link[:2]]}, "Amount": float(link[2]), "Date": body["Date"]}]})
