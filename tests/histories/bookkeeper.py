"""The bookkeeper working in Xero while the sync runs: payments, approving drafts, voiding and deleting,
archiving contacts, typing their own contacts, invoices, bills and credit notes (with names and numbers that
collide with Omono's), enabling a currency, setting a lock date. All through the emulator's admin API, which
applies Xero's rules as Xero's web app does.

`Ledger` remembers what the bookkeeper did, so the oracle can tell a person's work from the sync's: what they
typed must never be overwritten, and a document they approved must never be un-approved."""

from __future__ import annotations

import copy
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta

import psycopg

from tests.histories.omono import NAMES, variant
from tests.histories.world import World

LIVE = ("DRAFT", "SUBMITTED", "AUTHORISED")


@dataclass
class Ledger:
    """What the bookkeeper did in Xero, by Xero id."""

    typed_documents: dict[str, dict] = field(default_factory=dict)   # id -> the document as they left it
    typed_contacts: dict[str, dict] = field(default_factory=dict)    # id -> the contact as they left it
    approved: set[str] = field(default_factory=set)                  # documents of the sync they approved
    gone: set[str] = field(default_factory=set)                      # documents of the sync they voided/deleted
    paid: set[str] = field(default_factory=set)
    archived_contacts: set[str] = field(default_factory=set)
    typed_after_ours: set[str] = field(default_factory=set)          # typed when the sync's copy was already there

    def remember(self, doc: dict, id_key: str) -> None:
        """Keep what a person's own document looks like now (after typing it or acting on it)."""
        self.typed_documents[doc[id_key]] = copy.deepcopy(doc)


class Bookkeeper:
    def __init__(self, world: World, omono: psycopg.Connection, ledger: Ledger) -> None:
        self.world, self.omono, self.ledger = world, omono, ledger

    # -- what Xero holds ------------------------------------------------------------------------------------
    def _ours(self, kind: str, statuses: tuple[str, ...], types: tuple[str, ...] | None = None) -> list[dict]:
        docs = [d for d in self.world.objects(kind) if d.get("CreatedByApp") == self.world.client_id
                and d["Status"] in statuses and (types is None or d["Type"] in types)]
        return sorted(docs, key=lambda d: (d["Type"], d.get("InvoiceNumber") or d.get("CreditNoteNumber") or "",
                                           d.get("InvoiceID") or d.get("CreditNoteID")))

    def _refresh_typed(self) -> None:
        """Re-read the person's own documents after they acted on them (their own change is theirs)."""
        for kind, key in (("invoices", "InvoiceID"), ("creditnotes", "CreditNoteID")):
            for doc in self.world.objects(kind):
                if doc[key] in self.ledger.typed_documents:
                    self.ledger.remember(doc, key)
        for contact in self.world.objects("contacts"):
            if contact["ContactID"] in self.ledger.typed_contacts:
                self.ledger.typed_contacts[contact["ContactID"]] = copy.deepcopy(contact)

    @staticmethod
    def _number(doc: dict) -> str:
        return doc.get("InvoiceNumber") or doc.get("CreditNoteNumber") or doc.get("InvoiceID")

    # -- on the sync's documents ----------------------------------------------------------------------------
    def pay(self, rng: random.Random) -> str | None:
        docs = [d for d in self._ours("invoices", ("AUTHORISED",)) if d["AmountDue"] > 0]
        if not docs:
            return None
        doc = rng.choice(docs)
        amount = doc["AmountDue"] if rng.random() < 0.6 else round(doc["AmountDue"] / 2, 2)
        reply = self.world.post("payments", {"InvoiceID": doc["InvoiceID"], "Amount": amount})
        if reply.status_code != 200:
            return f"pay {self._number(doc)}: refused ({reply.text[:80]})"
        self.ledger.paid.add(doc["InvoiceID"])
        return f"pay {amount} on {doc['Type']} {self._number(doc)}"

    def _act(self, rng: random.Random, action: str, statuses: tuple[str, ...]) -> str | None:
        kind = rng.choice(("invoices", "creditnotes"))
        key = "InvoiceID" if kind == "invoices" else "CreditNoteID"
        docs = self._ours(kind, statuses)
        if not docs:
            return None
        doc = rng.choice(docs)
        reply = self.world.post(f"{kind}/{doc[key]}/{action}")
        if reply.status_code != 200:
            return f"{action} {doc['Type']} {self._number(doc)}: refused ({reply.text[:80]})"
        (self.ledger.approved if action == "approve" else self.ledger.gone).add(doc[key])
        return f"{action} the sync's {doc['Type']} {self._number(doc)}"

    def approve(self, rng: random.Random) -> str | None:
        return self._act(rng, "approve", ("DRAFT", "SUBMITTED"))

    def void(self, rng: random.Random) -> str | None:
        return self._act(rng, "void", ("AUTHORISED",))

    def delete(self, rng: random.Random) -> str | None:
        return self._act(rng, "delete", ("DRAFT", "SUBMITTED"))

    # -- contacts -------------------------------------------------------------------------------------------
    def archive_contact(self, rng: random.Random) -> str | None:
        contacts = sorted(self.world.objects("contacts"), key=lambda c: c["ContactID"])
        if not contacts:
            return None
        contact = rng.choice(contacts)
        action = "restore" if contact.get("ContactStatus") == "ARCHIVED" else "archive"
        reply = self.world.post(f"contacts/{contact['ContactID']}/{action}")
        if reply.status_code == 200:
            (self.ledger.archived_contacts.add if action == "archive" else self.ledger.archived_contacts.discard)(
                contact["ContactID"])
            self._refresh_typed()
        return f"{action} contact '{contact.get('Name')}' ({contact.get('ContactNumber')}): {reply.status_code}"

    def type_contact(self, rng: random.Random) -> str | None:
        """A contact of their own, often with the name or account number of an Omono company (or one Omono is
        likely to create later), typed the way a person types it."""
        companies = self.omono.execute("SELECT name, account_number FROM omono.companies ORDER BY id").fetchall()
        roll = rng.random()
        body: dict = {"Name": rng.choice(NAMES)}
        if companies and roll < 0.5:
            company = rng.choice(companies)
            body["Name"] = variant(company["name"], rng).strip() if rng.random() < 0.5 else company["name"]
            if company["account_number"] and rng.random() < 0.3:
                body["AccountNumber"] = company["account_number"]
        elif roll < 0.6:
            body["Name"] = f"{rng.choice(NAMES).split()[0]} Personal Account {rng.randint(1, 99)}"
        reply = self.world.post("seed", {"Contacts": [body]})
        if reply.status_code != 200:
            return f"type contact {body}: refused by Xero ({reply.text[:80]})"
        contact = reply.json()["Contacts"][0]
        self.ledger.typed_contacts[contact["ContactID"]] = self._stored_contact(contact["ContactID"])
        return f"type contact {body}"

    def _stored_contact(self, contact_id: str) -> dict:
        return next(c for c in self.world.objects("contacts") if c["ContactID"] == contact_id)

    # -- their own documents ----------------------------------------------------------------------------------
    def _contact_ref(self, company_id: int, name: str) -> dict:
        number = f"OMONO-{company_id}"
        for contact in self.world.objects("contacts"):
            if contact.get("ContactNumber") == number:
                return {"ContactID": contact["ContactID"]}
        return {"Name": name}

    def _omono_document(self, rng: random.Random, table: str, lines: str, key: str) -> dict | None:
        docs = self.omono.execute(f"SELECT d.*, c.name AS company_name FROM omono.{table} d JOIN omono.companies c "
                                  "ON c.id = d.company_id ORDER BY d.id").fetchall()
        if not docs:
            return None
        doc = dict(rng.choice(docs))
        doc["lines"] = self.omono.execute(f"SELECT * FROM omono.{lines} WHERE {key} = %s ORDER BY line_no",
                                          (doc["id"],)).fetchall()
        return doc

    def _typed_body(self, rng: random.Random, doc: dict, doc_type: str, number_key: str, number: str,
                    same: bool) -> dict:
        """Their copy of an Omono document: the same number, and either Omono's very lines (so the sync may take
        it as the record's copy) or lines of their own."""
        sales = doc_type.startswith("ACCREC")
        account = "200" if sales else "310"
        tax = {"STD20": "OUTPUT2", "RED5": "RROUTPUT"} if sales else {"STD20": "INPUT2", "RED5": "RRINPUT"}
        zero = "ZERORATEDOUTPUT" if sales else "ZERORATEDINPUT"
        lines = [{"Description": f"{li['product_code']} {li['description']}".strip(), "Quantity": float(li["quantity"]),
                  "UnitAmount": float(li["unit_price"]), "AccountCode": account,
                  "TaxType": tax.get(li["tax_code"], zero)} for li in doc["lines"]] if same else [
            {"Description": "Typed in Xero", "Quantity": 1, "UnitAmount": rng.randint(10, 900), "AccountCode": account,
             "TaxType": zero}]
        contact = self._contact_ref(doc["company_id"], doc["company_name"]) if rng.random() < 0.75 else {
            "Name": f"{rng.choice(NAMES).split()[0]} Walk-in {rng.randint(1, 99)}"}
        body = {"Type": doc_type, number_key: number, "Contact": contact, "Date": str(doc["issue_date"]),
                "Status": rng.choice(LIVE), "LineAmountTypes": "Exclusive", "LineItems": lines,
                "CurrencyCode": doc["currency_code"].strip()}
        if doc.get("due_date") and not doc_type.endswith("CREDIT"):
            body["DueDate"] = str(doc["due_date"])
        return body

    def type_document(self, rng: random.Random) -> str | None:
        """An invoice, bill or credit note typed in Xero carrying the number of an Omono document (one already
        sent, one not sent yet, or the next number Omono will give)."""
        choice = rng.choice(("ACCREC", "ACCPAY", "ACCRECCREDIT"))
        table, lines, key, number_key = {
            "ACCREC": ("dispatch_invoices", "dispatch_invoice_lines", "invoice_id", "InvoiceNumber"),
            "ACCPAY": ("delivery_invoices", "delivery_invoice_lines", "invoice_id", "InvoiceNumber"),
            "ACCRECCREDIT": ("credit_notes", "credit_note_lines", "credit_note_id", "CreditNoteNumber")}[choice]
        doc = self._omono_document(rng, table, lines, key)
        if doc is None:
            return None
        number = doc["number"]
        if choice == "ACCPAY" and (doc.get("supplier_invoice_ref") or "").strip():
            number = doc["supplier_invoice_ref"].strip()
        if rng.random() < 0.3 and choice != "ACCPAY":
            prefix, digits = number.rsplit("-", 1)
            number = f"{prefix}-{int(digits) + rng.randint(1, 3)}"      # one Omono has not reached yet
        body = self._typed_body(rng, doc, choice, number_key, number, same=rng.random() < 0.4)
        collection = "CreditNotes" if choice.endswith("CREDIT") else "Invoices"
        ours_before = any(d["Type"] == choice and self._number(d).casefold() == number.casefold()
                          for d in self._ours(collection.lower(), LIVE + ("PAID",)))
        reply = self.world.post("seed", {collection: [body]})
        if reply.status_code != 200:
            return f"type {choice} {number}: refused by Xero ({reply.text[:100]})"
        created = reply.json()[collection][0]
        id_key = "CreditNoteID" if collection == "CreditNotes" else "InvoiceID"
        kind = "creditnotes" if collection == "CreditNotes" else "invoices"
        self.ledger.remember(next(d for d in self.world.objects(kind) if d[id_key] == created[id_key]), id_key)
        if ours_before:
            self.ledger.typed_after_ours.add(created[id_key])
        self._refresh_typed()
        return f"type {choice} {number} ({body['Status']}, contact {body['Contact']}, {len(body['LineItems'])} lines)"

    def void_typed(self, rng: random.Random) -> str | None:
        ids = sorted(i for i, d in self.ledger.typed_documents.items() if d["Status"] in LIVE)
        if not ids:
            return None
        doc_id = rng.choice(ids)
        doc = self.ledger.typed_documents[doc_id]
        kind = "creditnotes" if "CreditNoteID" in doc else "invoices"
        action = "delete" if doc["Status"] in {"DRAFT", "SUBMITTED"} else "void"
        reply = self.world.post(f"{kind}/{doc_id}/{action}")
        self._refresh_typed()
        return f"{action} their own {doc['Type']} {self._number(doc)}: {reply.status_code}"

    # -- settings -------------------------------------------------------------------------------------------
    def enable_currency(self, rng: random.Random) -> str:
        self.world.post("currencies", {"Code": "JPY", "Description": "Japanese Yen", "Rate": 187.5})
        return "enable JPY in Xero"

    def lock_date(self, rng: random.Random) -> str:
        when = None if rng.random() < 0.5 else str(date(2026, 9, 1) + timedelta(days=rng.randint(0, 20)))
        self.world.admin.patch(f"/tenants/{self.world.tenant}/organisation", json={"PeriodLockDate": when})
        return f"period lock date -> {when}"


OPERATIONS: dict[str, Callable[[Bookkeeper, random.Random], str | None]] = {
    "pay": Bookkeeper.pay, "approve": Bookkeeper.approve, "void": Bookkeeper.void, "delete": Bookkeeper.delete,
    "archive_contact": Bookkeeper.archive_contact, "type_contact": Bookkeeper.type_contact,
    "type_document": Bookkeeper.type_document, "void_typed": Bookkeeper.void_typed,
    "enable_currency": Bookkeeper.enable_currency, "lock_date": Bookkeeper.lock_date,
}
