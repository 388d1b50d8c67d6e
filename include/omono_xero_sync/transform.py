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


def contact(rec: dict, xero_id: str | None, status: str | None = None) -> dict:
    """A contact. `ContactStatus` is sent only to archive (archived in Omono) or to restore (`status`): an update
    must never un-archive a contact the bookkeeper archived in Xero."""
    payload: dict[str, Any] = {"ContactNumber": contact_number(rec["id"]),
                               "Name": " ".join((rec["name"] or "").split())}
    if rec.get("archived") or status:
        payload["ContactStatus"] = "ARCHIVED" if rec.get("archived") else status
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


def number_in_xero(entity: Entity, rec: dict) -> str:
    """The document number Xero shows. A bill carries the supplier's own invoice number, where Xero shows a bill's
    reference (the API's InvoiceNumber on ACCPAY is the "Reference" of Xero's bill screen and is not unique;
    developer.xero.com Invoices, notes §2.8), so a bill the bookkeeper keyed from the supplier's paper is found."""
    if entity.xero_type == "ACCPAY" and (rec.get("supplier_invoice_ref") or "").strip():
        return rec["supplier_invoice_ref"].strip()
    return rec["number"]


def document(entity: Entity, rec: dict, contact_id: str, accounts: dict[tuple[str, str], str],
             taxes: dict[tuple[str, str], str], status: str, xero_id: str | None,
             currency_rate: Any = None) -> dict:
    """An invoice, bill or credit note. Prices keep Omono's 4 decimals (sent with unitdp=4); dates are dates;
    a foreign-currency document carries Omono's exchange rate when given (else Xero applies its day rate). A
    negative line (a discount) is sent without a discount rate: Xero refuses a 0.00 rate on it."""
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
                               entity.number_key: number_in_xero(entity, rec), "Date": rec["issue_date"],
                               "CurrencyCode": rec["currency_code"].strip(), "Status": status,
                               "LineAmountTypes": "Exclusive", "LineItems": lines}
    if rec.get("due_date") and not entity.is_credit_note:
        payload["DueDate"] = rec["due_date"]
    if rec.get("reference") and entity.xero_type in {"ACCREC", "ACCRECCREDIT"}:
        payload["Reference"] = rec["reference"]
    if currency_rate is not None:
        payload["CurrencyRate"] = Decimal(str(currency_rate))
    if xero_id:
        payload[entity.id_key] = xero_id
    return payload


def _amount(value: Any, places: str = "0.0001") -> Decimal:
    return Decimal(str(value if value is not None else 0)).quantize(Decimal(places))


def _enum(value: Any) -> Any:
    return getattr(value, "value", value)


def _payload_lines(payload: dict) -> list[tuple]:
    return [(li.get("Description", ""), _amount(li.get("Quantity")), _amount(li.get("UnitAmount")),
             (li.get("AccountCode") or "").upper(), li.get("TaxType") or "", _amount(li.get("DiscountRate"), "0.01"))
            for li in payload.get("LineItems", [])]


def _xero_lines(doc: Any) -> list[tuple]:
    return [(li.description or "", _amount(li.quantity), _amount(li.unit_amount), (li.account_code or "").upper(),
             li.tax_type or "", _amount(li.discount_rate, "0.01")) for li in doc.line_items or []]


def same_document(payload: dict, doc: Any) -> bool:
    """Whether a document found in Xero (an SDK model, read with its lines) already says what `payload` would:
    type, contact, dates, currency and rate, reference, and every line. Its status and Xero's own fields aside."""
    def day(value: Any) -> str | None:
        return value.isoformat() if value else None

    rate = payload.get("CurrencyRate")
    return (_enum(doc.type) == payload["Type"]
            and doc.contact is not None and str(doc.contact.contact_id) == payload["Contact"]["ContactID"]
            and day(doc.date) == payload.get("Date")
            and ("DueDate" not in payload or day(getattr(doc, "due_date", None)) == payload["DueDate"])
            and _enum(doc.currency_code) == payload.get("CurrencyCode")
            and (rate is None or _amount(doc.currency_rate, "0.000001") == _amount(rate, "0.000001"))
            and (doc.reference or "") == (payload.get("Reference") or "")
            and _xero_lines(doc) == _payload_lines(payload))


def status_change(entity: Entity, xero_id: str, status: str) -> dict:
    return {entity.id_key: xero_id, "Status": status}


def canonical(payload: dict) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)


def content_hash(payload: dict) -> str:
    """Identity of what is sent, ignoring the Xero id (which is known only after the first write)."""
    body = {k: v for k, v in payload.items() if k not in {"ContactID", "InvoiceID", "CreditNoteID"}}
    return hashlib.sha256(canonical(body).encode()).hexdigest()


def idempotency_key(tenant_id: str, method: str, elements: list[dict], *, target: str = "", attempt: int = 0
                    ) -> str:
    """The same for the same request: a write whose answer was lost is answered from Xero's cache when retried
    inside Xero's 6 minutes. `target` is what the URL names besides the body (the credit note an allocation goes
    to), so two requests with equal bodies never share a key. `attempt` moves on after Xero *answered* with an
    error: Xero caches error answers under the key too, so a retry with the old key could never succeed."""
    digest = hashlib.sha256(f"{tenant_id}|{method}|{target}|{attempt}|{canonical({'e': elements})}".encode())
    return f"oxs-{digest.hexdigest()[:60]}"


def jsonable(payload: Any) -> Any:
    return json.loads(canonical(payload))


# -- messages --------------------------------------------------------------------------------------------------
NAME_LIMIT = 60


def shorten(text: str | None, limit: int = NAME_LIMIT) -> str:
    """A name as it fits in a message: a 300-character company name is cut, not repeated in full."""
    text = " ".join((text or "").split())
    return text if len(text) <= limit else text[:limit - 1].rstrip() + "…"


def waits_for_company(number: str, company: str | None, why: str) -> str:
    """A document held for its company; the company is named once (its own problem may name it already)."""
    name = shorten(company)
    who = "its company" if name and name in why else f"its company '{name}'"
    return f"{number} waits for {who}, which is not in Xero yet: {why}"


# Each of Xero's messages gets its own advice; the most specific needle first (a contact-name clash also says
# "must be unique", so it is matched before the document-number one). Needles are compared case-insensitively.
_HINTS = (
    ("is already assigned to another contact",
     "{number}: Xero already has an active contact with this name, and contact names must be unique there. Rename "
     "the company in Omono (or the other contact in Xero), then choose Retry."),
    ("account number already exists",
     "{number}: another Xero contact, perhaps an archived one, already has this account number. Change the account "
     "number in Omono or in Xero, then choose Retry."),
    ("# must be unique",
     "{number}: this number is already used by another document in Xero. Renumber one of them, then choose Retry."),
    ("cannot be edited as it has a payment or credit note",
     "Xero has locked {number} because a payment or credit note is allocated to it, so the change made in Omono "
     "was not sent. Make the same change in Xero (or remove the payment there), then choose Retry; or Skip it."),
    ("because it has payments or credit notes allocated",
     "{number} was cancelled or deleted in Omono, but Xero cannot void it because a payment or credit note is "
     "allocated to it. Remove the payment or allocation in Xero, then choose Retry; or Skip it."),
    ("not of valid status for modification",
     "{number} is voided, deleted or approved in Xero in a way that no longer allows this change. Check it in "
     "Xero; then Retry or Skip."),
    ("is not subscribed to currency",
     "{number}: the currency is not enabled in the Xero organisation. Add it in Xero (Settings > Currencies), then "
     "choose Retry."),
    ("cannot be edited as it is currently dated",
     "{number} is dated, in Xero, in a period Xero has locked since, so Xero keeps it as it is. Move the lock date in "
     "Xero to let the change through, then choose Retry; or Skip it."),
    ("lock date",
     "{number} is dated in a period Xero has locked. Move the lock date in Xero (Settings > Advanced > Financial "
     "settings) or date the document later in Omono, then choose Retry."),
    ("archived",
     "{number}: its contact is archived in Xero. Restore the contact in Xero (Contacts > Archived > Restore), then "
     "choose Retry."),
    ("taxtype code",
     "{number}: the Xero tax rate mapped for a line cannot be used on this account or document. Fix the tax mapping "
     "on the Mappings page, then choose Retry."),
    ("account code",
     "{number}: the Xero account mapped for a line does not exist or is archived. Fix the mapping or Xero's chart of "
     "accounts, then choose Retry."),
    ("email address",
     "{number}: Xero refused the e-mail address. Correct it in Omono; the company goes on the next run."),
)


def explain(number: str | None, xero_messages: list[str]) -> list[str]:
    """Xero's own words, each preceded by what it means for the bookkeeper where we know it."""
    out: list[str] = []
    label = shorten(number) if number else "This record"
    for message in xero_messages:
        hint = next((h for needle, h in _HINTS if needle in message.lower()), None)
        if hint and hint.format(number=label) not in out:
            out.append(hint.format(number=label))
        out.append(f"Xero said: {message}")
    return out or [f"Xero refused {label} without giving a reason."]
