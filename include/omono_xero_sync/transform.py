"""Transform: an Omono record (as staged by extract) into the Xero payload that is hashed, logged and sent,
and Xero's answers into messages a bookkeeper understands."""

from __future__ import annotations

import hashlib
import json
from decimal import Decimal
from typing import Any

from include.omono_xero_sync.entities import Entity

CONTACT_NUMBER_PREFIX = "OMONO-"


def contact_number(omono_id: int) -> str:
    """Xero's ContactNumber holds Omono's id: a durable key that survives renames and lost answers."""
    return f"{CONTACT_NUMBER_PREFIX}{omono_id}"


def contact(rec: dict, xero_id: str | None) -> dict:
    payload: dict[str, Any] = {"ContactNumber": contact_number(rec["id"]), "Name": (rec["name"] or "").strip(),
                               "ContactStatus": "ARCHIVED" if rec.get("archived") else "ACTIVE"}
    optional = {"AccountNumber": rec.get("account_number"), "FirstName": rec.get("contact_first_name"),
                "LastName": rec.get("contact_last_name"), "EmailAddress": rec.get("email"),
                "TaxNumber": rec.get("tax_number"), "DefaultCurrency": (rec.get("currency_code") or "").strip() or None}
    payload.update({k: v.strip() if isinstance(v, str) else v for k, v in optional.items() if v})
    if any(rec.get(k) for k in ("address_line1", "city", "postal_code")):
        payload["Addresses"] = [{k: v for k, v in {
            "AddressType": "STREET", "AddressLine1": rec.get("address_line1"), "AddressLine2": rec.get("address_line2"),
            "City": rec.get("city"), "Region": rec.get("region"), "PostalCode": rec.get("postal_code"),
            "Country": rec.get("country")}.items() if v}]
    if rec.get("phone"):
        payload["Phones"] = [{"PhoneType": "DEFAULT", "PhoneNumber": rec["phone"]}]
    if rec.get("payment_terms_days") is not None:
        terms = {"Day": int(rec["payment_terms_days"]), "Type": "DAYSAFTERBILLDATE"}
        payload["PaymentTerms"] = {k: terms for k, flag in (("Sales", "is_customer"), ("Bills", "is_supplier"))
                                   if rec.get(flag)}
    if xero_id:
        payload["ContactID"] = xero_id
    return payload


def document(entity: Entity, rec: dict, contact_id: str, accounts: dict[tuple[str, str], str],
             taxes: dict[tuple[str, str], str], status: str, xero_id: str | None) -> dict:
    """An invoice, bill or credit note. Prices keep Omono's 4 decimals (sent with unitdp=4); dates are dates."""
    lines = []
    for line in rec["lines"]:
        text = line["description"].strip()
        if line.get("product_code"):
            text = f"{line['product_code']} {text}"
        item: dict[str, Any] = {"Description": text, "Quantity": Decimal(line["quantity"]),
                                "UnitAmount": Decimal(line["unit_price"]),
                                "AccountCode": accounts.get((entity.account_kind, line.get("analysis_code") or "")),
                                "TaxType": taxes.get((entity.account_kind, line.get("tax_code") or ""))}
        discount = Decimal(line.get("discount_percent") or 0)
        if discount:
            item["DiscountRate"] = discount
        lines.append({k: v for k, v in item.items() if v is not None})
    payload: dict[str, Any] = {"Type": entity.xero_type, "Contact": {"ContactID": contact_id},
                               entity.number_key: rec["number"], "Date": rec["issue_date"],
                               "CurrencyCode": rec["currency_code"].strip(), "Status": status,
                               "LineAmountTypes": "Exclusive", "LineItems": lines}
    if rec.get("due_date") and not entity.is_credit_note:
        payload["DueDate"] = rec["due_date"]
    if rec.get("reference") and entity.xero_type in {"ACCREC", "ACCRECCREDIT"}:
        payload["Reference"] = rec["reference"]
    if xero_id:
        payload[entity.id_key] = xero_id
    return payload


def status_change(entity: Entity, xero_id: str, status: str) -> dict:
    return {entity.id_key: xero_id, "Status": status}


def canonical(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(payload: dict) -> str:
    """Identity of what is sent, ignoring the Xero id (which is known only after the first write)."""
    body = {k: v for k, v in payload.items() if k not in {"ContactID", "InvoiceID", "CreditNoteID"}}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def idempotency_key(tenant_id: str, method: str, elements: list[dict]) -> str:
    """Stable for the same content: a retry inside Xero's 6-minute window is answered from Xero's cache."""
    digest = hashlib.sha256(f"{tenant_id}|{method}|{canonical({'e': elements})}".encode()).hexdigest()
    return f"oxs-{digest[:60]}"


def jsonable(payload: Any) -> Any:
    return json.loads(canonical(payload))


# -- messages --------------------------------------------------------------------------------------------------
_HINTS = (
    ("cannot be edited as it has a payment or credit note",
     "Xero has locked {number} because a payment or credit note is allocated to it, so the change made in Omono "
     "was not sent. Make the same change in Xero (or remove the payment there), then choose Retry; or Skip it."),
    ("cannot be applied to the invoice because it has payments",
     "{number} was cancelled in Omono, but Xero cannot void it because a payment or credit note is allocated to "
     "it. Remove the payment or allocation in Xero, then choose Retry; or Skip it."),
    ("not of valid status for modification",
     "{number} is voided, deleted or approved in Xero in a way that no longer allows this change. Check it in "
     "Xero; then Retry or Skip."),
    ("is not subscribed to currency",
     "{number}: the currency is not enabled in the Xero organisation. Add it in Xero (Settings > Currencies)."),
    ("must be unique",
     "{number}: this number is already used by another document in Xero. Renumber one of them."),
)


def explain(number: str | None, xero_messages: list[str]) -> list[str]:
    """Xero's own words, preceded by what they mean for the bookkeeper where we know it."""
    out: list[str] = []
    for message in xero_messages:
        hint = next((h for needle, h in _HINTS if needle in message), None)
        if hint:
            out.append(hint.format(number=number or "This record"))
        out.append(f"Xero said: {message}")
    return out or [f"Xero refused {number or 'this record'} without giving a reason."]
