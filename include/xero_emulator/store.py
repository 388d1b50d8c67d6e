"""The emulator's state: one `Tenant` per Xero organisation plus the OAuth records, held in memory and, when
a data directory is given, written through to SQLite so an organisation survives a restart as a real one does."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from include.xero_emulator.indexes import DocumentIndex

KINDS = ("organisation", "account", "taxrate", "currency", "contact", "invoice", "creditnote", "meta")
AUTH_KINDS = ("grant", "refresh", "access", "code")
LISTS_KEPT = 8          # paged list queries remembered per organisation between writes


@dataclass
class Tenant:
    """One organisation's objects by kind and id, plus the look-up indexes Xero's rules need."""

    tenant_id: str
    objects: dict[str, dict[str, dict]] = field(default_factory=lambda: {k: {} for k in KINDS})
    contact_by_name: dict[str, str] = field(default_factory=dict)            # lower-case active name
    contact_by_account_number: dict[str, str] = field(default_factory=dict)  # includes archived
    contact_by_number: dict[str, str] = field(default_factory=dict)          # ContactNumber
    doc_by_number: dict[tuple[str, str], str] = field(default_factory=dict)  # (Type, number) -> id, not DELETED
    documents: dict[str, DocumentIndex] = field(default_factory=lambda: {
        "invoice": DocumentIndex("InvoiceID", "InvoiceNumber"),
        "creditnote": DocumentIndex("CreditNoteID", "CreditNoteNumber")})
    # A paged list query's rows, filtered and ordered, by the query without its page: a client reading pages 1..n
    # pays for the filter once, not once a page (300 pages of 300,000 bills took minutes a read). Any write to the
    # organisation empties it (`Store.put`), so a page never shows a state older than the last write.
    lists: dict[tuple, list[dict]] = field(default_factory=dict)

    def remember_list(self, key: tuple, rows: list[dict]) -> None:
        if len(self.lists) >= LISTS_KEPT:
            del self.lists[next(iter(self.lists))]
        self.lists[key] = rows

    @property
    def organisation(self) -> dict:
        return self.objects["organisation"]["org"]

    @property
    def accounts(self) -> dict[str, dict]:
        return self.objects["account"]

    @property
    def tax_rates(self) -> dict[str, dict]:
        return self.objects["taxrate"]

    @property
    def currencies(self) -> dict[str, dict]:
        return self.objects["currency"]

    @property
    def contacts(self) -> dict[str, dict]:
        return self.objects["contact"]

    @property
    def invoices(self) -> dict[str, dict]:
        return self.objects["invoice"]

    @property
    def credit_notes(self) -> dict[str, dict]:
        return self.objects["creditnote"]

    @property
    def meta(self) -> dict:
        return self.objects["meta"].setdefault("meta", {"counters": {}, "exchange_rates": {}})

    def account_by_code(self, code: str) -> dict | None:
        wanted = code.strip().upper()
        for account in self.accounts.values():
            if account.get("Code", "").upper() == wanted and account["Status"] != "DELETED":
                return account
        return None

    def next_number(self, counter: str) -> int:
        counters = self.meta["counters"]
        counters[counter] = counters.get(counter, 0) + 1
        return counters[counter]

    # -- indexes -------------------------------------------------------------------------------------
    def index_contact(self, old: dict | None, new: dict) -> None:
        if old:
            self._unindex_contact(old)
        if new.get("ContactStatus", "ACTIVE") == "ACTIVE":
            self.contact_by_name[new["Name"].strip().lower()] = new["ContactID"]
        if new.get("AccountNumber"):
            self.contact_by_account_number[new["AccountNumber"].strip().lower()] = new["ContactID"]
        if new.get("ContactNumber"):
            self.contact_by_number[new["ContactNumber"].strip().lower()] = new["ContactID"]

    def _unindex_contact(self, old: dict) -> None:
        for index, key in ((self.contact_by_name, "Name"), (self.contact_by_account_number, "AccountNumber"),
                           (self.contact_by_number, "ContactNumber")):
            value = (old.get(key) or "").strip().lower()
            if value and index.get(value) == old["ContactID"]:
                del index[value]

    def index_document(self, store_kind: str, old: dict | None, new: dict) -> None:
        """Keep the numbering rule's index and the query indexes in step with a written document."""
        index = self.documents[store_kind]
        id_key, number_key = index.id_key, index.number_key
        if old and old.get(number_key):
            key = (old["Type"], old[number_key].lower())
            if self.doc_by_number.get(key) == old[id_key]:
                del self.doc_by_number[key]
        if new.get(number_key) and new["Status"] != "DELETED":
            self.doc_by_number[(new["Type"], new[number_key].lower())] = new[id_key]
        index.put(new)

    def rebuild_indexes(self) -> None:
        for contact in self.contacts.values():
            self.index_contact(None, contact)
        for store_kind in self.documents:
            for doc in self.objects[store_kind].values():
                self.index_document(store_kind, None, doc)


class Store:
    """All tenants and OAuth records. Writes go through `put` so persistence can never be forgotten."""

    def __init__(self, data_dir: Path | None) -> None:
        self.tenants: dict[str, Tenant] = {}
        self.auth: dict[str, dict[str, dict]] = {k: {} for k in AUTH_KINDS}
        self._db: sqlite3.Connection | None = None
        if data_dir is not None:
            data_dir.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(data_dir / "xero-emulator.sqlite3", check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("CREATE TABLE IF NOT EXISTS objects (tenant TEXT NOT NULL, kind TEXT NOT NULL, "
                             "id TEXT NOT NULL, body TEXT NOT NULL, PRIMARY KEY (tenant, kind, id))")
            self._db.commit()

    @property
    def persistent(self) -> bool:
        return self._db is not None

    def load(self) -> bool:
        """Read persisted state; returns False when there was none (the caller then seeds the fixture)."""
        if self._db is None:
            return False
        rows = self._db.execute("SELECT tenant, kind, id, body FROM objects").fetchall()
        for tenant_id, kind, obj_id, body in rows:
            if tenant_id == "":
                self.auth[kind][obj_id] = json.loads(body)
            else:
                self.tenant(tenant_id, create=True).objects[kind][obj_id] = json.loads(body)
        for tenant in self.tenants.values():
            tenant.rebuild_indexes()
        return bool(rows)

    def tenant(self, tenant_id: str, create: bool = False) -> Tenant:
        if create and tenant_id not in self.tenants:
            self.tenants[tenant_id] = Tenant(tenant_id)
        return self.tenants[tenant_id]

    def put(self, tenant_id: str, kind: str, obj_id: str, obj: Any) -> None:
        """Store an object (tenant_id "" for OAuth records) in memory and on disk."""
        if tenant_id == "":
            self.auth[kind][obj_id] = obj
        else:
            tenant = self.tenant(tenant_id, create=True)
            tenant.objects[kind][obj_id] = obj
            tenant.lists.clear()
        if self._db is not None:
            self._db.execute("INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?)",
                             (tenant_id, kind, obj_id, json.dumps(obj, separators=(",", ":"))))

    def save_meta(self, tenant: Tenant) -> None:
        self.put(tenant.tenant_id, "meta", "meta", tenant.meta)

    def delete_auth(self, kind: str, obj_id: str) -> None:
        self.auth[kind].pop(obj_id, None)
        if self._db is not None:
            self._db.execute("DELETE FROM objects WHERE tenant = '' AND kind = ? AND id = ?", (kind, obj_id))

    def clear(self) -> None:
        self.tenants.clear()
        for records in self.auth.values():
            records.clear()
        if self._db is not None:
            self._db.execute("DELETE FROM objects")
            self._db.commit()

    def commit(self) -> None:
        if self._db is not None:
            self._db.commit()

    def close(self) -> None:
        if self._db is not None:
            self._db.commit()
            self._db.close()
            self._db = None
