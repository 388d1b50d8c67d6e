"""The kinds of Omono record the sync sends, and what each becomes in Xero (glossary in PRODUCT.md)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Entity:
    name: str               # key used in the state tables and the sync log
    label: str              # what a bookkeeper calls them
    noun: str               # one of them
    xero_type: str | None   # Invoice/CreditNote Type in Xero; None for contacts
    collection: str         # Xero JSON collection
    id_key: str             # Xero id field
    number_key: str | None  # Xero number field
    account_kind: str | None   # which analysis-code mapping its lines use

    @property
    def is_credit_note(self) -> bool:
        return self.collection == "CreditNotes"


CONTACT = Entity("contact", "Companies", "Company", None, "Contacts", "ContactID", None, None)
DISPATCH_INVOICE = Entity("dispatch_invoice", "Dispatch invoices", "Dispatch invoice", "ACCREC", "Invoices",
                          "InvoiceID", "InvoiceNumber", "sales")
DELIVERY_INVOICE = Entity("delivery_invoice", "Delivery invoices", "Delivery invoice", "ACCPAY", "Invoices",
                          "InvoiceID", "InvoiceNumber", "purchase")
SALES_CREDIT_NOTE = Entity("sales_credit_note", "Sales credit notes", "Sales credit note", "ACCRECCREDIT",
                           "CreditNotes", "CreditNoteID", "CreditNoteNumber", "sales")
PURCHASE_CREDIT_NOTE = Entity("purchase_credit_note", "Purchase credit notes", "Purchase credit note",
                              "ACCPAYCREDIT", "CreditNotes", "CreditNoteID", "CreditNoteNumber", "purchase")

ALL = (CONTACT, DISPATCH_INVOICE, DELIVERY_INVOICE, SALES_CREDIT_NOTE, PURCHASE_CREDIT_NOTE)
DOCUMENTS = ALL[1:]
BY_NAME = {e.name: e for e in ALL}
