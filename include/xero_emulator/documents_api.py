"""Invoices (ACCREC sales invoices, ACCPAY bills) and credit notes (ACCRECCREDIT, ACCPAYCREDIT): creation,
updates, status changes, Xero's per-line rounding, allocations of credit, and payments recorded by the admin API.

Both document families share one implementation, parameterised by `DocKind`, because Xero applies the same
rules to them; the differences (numbering, discounts, allocation) are data on the kind."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from include.xero_emulator.contacts_api import _blank_contact, find_contact
from include.xero_emulator.context import Call, ListQuery, order_rows, paginate, run_batch, select
from include.xero_emulator.errors import HttpError, Invalid, not_found
from include.xero_emulator.indexes import candidates, intersect
from include.xero_emulator.lockdates import dating_errors, editing_errors
from include.xero_emulator.settings_api import TAX_FLAG_OF_CLASS, account_class
from include.xero_emulator.where import AnyOf, Eq
from include.xero_emulator.wire import (
    ZERO_GUID,
    BadDate,
    dec,
    money,
    ms_date,
    ms_datetime,
    parse_request_date,
    utc_string,
)

LINE_AMOUNT_TYPES = {"Exclusive", "Inclusive", "NoTax"}
CREATE_STATUSES = {"DRAFT", "SUBMITTED", "AUTHORISED"}
WRITABLE = ("Type", "Contact", "LineItems", "Date", "DueDate", "LineAmountTypes", "Reference", "Url",
            "CurrencyCode", "CurrencyRate", "Status", "SentToContact", "ExpectedPaymentDate",
            "PlannedPaymentDate", "BrandingThemeID")


@dataclass(frozen=True)
class DocKind:
    collection: str       # JSON collection name
    store_kind: str
    id_key: str
    number_key: str
    types: tuple[str, ...]
    numbered_type: str    # the type whose numbers are unique and generated when missing
    prefix: str
    noun: str             # for messages: "Invoice" / "Credit Note"
    discount_types: tuple[str, ...]

    def objects(self, call: Call) -> dict[str, dict]:
        return call.tenant.objects[self.store_kind]


INVOICES = DocKind("Invoices", "invoice", "InvoiceID", "InvoiceNumber", ("ACCREC", "ACCPAY"), "ACCREC",
                   "INV-", "Invoice", ("ACCREC",))
CREDIT_NOTES = DocKind("CreditNotes", "creditnote", "CreditNoteID", "CreditNoteNumber",
                       ("ACCRECCREDIT", "ACCPAYCREDIT"), "ACCRECCREDIT", "CN-", "Credit Note", ())


def _d(value: float | int | None) -> Decimal:
    return Decimal(str(value or 0))


def locked_by_money(doc: dict) -> bool:
    """Payments or allocated credit lock a document against edits, voiding and deletion."""
    return (_d(doc.get("AmountPaid")) > 0 or _d(doc.get("AmountCredited")) > 0
            or bool(doc.get("Allocations")) or bool(doc.get("Payments")))


# -- status rules ----------------------------------------------------------------------------------------
def _check_transition(call: Call, kind: DocKind, existing: dict, item: dict) -> None:
    current = existing["Status"]
    wanted = item.get("Status", current)
    changes_content = any(k in item and k not in {"Status", kind.id_key} for k in WRITABLE)
    noun = kind.noun.lower()
    if current in {"DELETED", "VOIDED"}:
        if wanted != current or changes_content:
            raise Invalid(f"{kind.noun} not of valid status for modification")
        return
    if locked_by_money(existing):
        if wanted in {"VOIDED", "DELETED"}:
            raise Invalid(f"The status {wanted} cannot be applied to the {noun} because it has payments or "
                          "credit notes allocated to it.")
        if wanted != current or changes_content:
            raise Invalid("This document cannot be edited as it has a payment or credit note allocated to it.")
        return
    locked = editing_errors(call.tenant.organisation, existing)
    if locked:
        raise Invalid(*locked)
    if current == "AUTHORISED" and wanted in {"DRAFT", "SUBMITTED", "DELETED"}:
        raise Invalid(f"{kind.noun} not of valid status for modification")
    if current in {"DRAFT", "SUBMITTED"} and wanted == "VOIDED":
        raise Invalid(f"{kind.noun} not of valid status for modification")
    if wanted not in {"DRAFT", "SUBMITTED", "AUTHORISED", "DELETED", "VOIDED"}:
        raise Invalid(f"{kind.noun} status '{wanted}' is not valid.")


# -- lines and totals -------------------------------------------------------------------------------------
def _line(call: Call, kind: DocKind, doc: dict, line: dict, old_lines: dict[str, dict]) -> dict:
    tenant = call.tenant
    errors: list[str] = []
    description = str(line.get("Description") or "").strip()
    if not description and not line.get("ItemCode"):
        errors.append("The description field is mandatory for each line item.")
    try:
        qty = dec(line.get("Quantity"))
        unit = dec(line.get("UnitAmount"))
        given_amount = dec(line.get("LineAmount"))
        rate = dec(line.get("DiscountRate"))
        discount_amount = dec(line.get("DiscountAmount"))
        given_tax = dec(line.get("TaxAmount"))
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
    if unit is not None:
        unit = money(unit, call.unitdp)
    if (rate or discount_amount) and doc["Type"] not in kind.discount_types:
        errors.append(f"Discounts may not be applied to {doc['Type']} "
                      f"{'invoices' if kind is INVOICES else 'credit notes'}.")
    if qty is None:
        qty = given_amount / unit if unit is not None and given_amount is not None and unit != 0 else Decimal(1)
    if unit is None:
        unit = money(given_amount / qty, call.unitdp) if given_amount is not None and qty else Decimal(0)
    gross = qty * unit
    errors.extend(_sign_errors(qty, gross, discount_amount))
    if rate:
        if rate < 0 or rate > 100:
            errors.append(f"The discount rate '{rate}' is invalid. Discount must not be greater than the line total.")
        expected = money(gross * (100 - rate) / 100)
    elif discount_amount:
        expected = money(gross - discount_amount)
    else:
        expected = money(gross)
    if given_amount is not None and abs(money(given_amount) - expected) > Decimal("0.01"):
        errors.append(f"The line total {money(given_amount)} does not match the expected line total {expected}")
    amount = expected

    account = None
    code = str(line.get("AccountCode") or "").strip()
    if code:
        account = tenant.account_by_code(code)
        if account is None:
            errors.append(f"Account code '{code}' is not a valid code for this document.")
        elif account["Status"] != "ACTIVE":
            errors.append(f"Account code '{code}' has been archived, or has been deleted. "
                          "Each line item must reference a valid account.")
            account = None
    elif doc["Status"] in {"SUBMITTED", "AUTHORISED"} and amount != 0:
        errors.append("Account code must be specified")

    lat = doc["LineAmountTypes"]
    tax_type = str(line.get("TaxType") or "").strip().upper() or (account or {}).get("TaxType") or "NONE"
    if lat == "NoTax":
        tax_type = line.get("TaxType") or "NONE"
    tax_rate = tenant.tax_rates.get(tax_type)
    if tax_rate is None or tax_rate["Status"] != "ACTIVE":
        errors.append(f"The TaxType code {tax_type} does not exist or cannot be used for this type of transaction.")
        tax_rate = None
    elif account is not None and not tax_rate.get(TAX_FLAG_OF_CLASS[account_class(account["Type"])]):
        errors.append(f"The TaxType code '{tax_type}' cannot be used with account code '{code}'.")
    if errors:
        raise Invalid(*errors)

    pct = _d(tax_rate["EffectiveRate"]) if tax_rate and lat != "NoTax" else Decimal(0)
    tax = money(amount * pct / (100 + pct)) if lat == "Inclusive" else money(amount * pct / 100)
    if given_tax is not None and lat != "NoTax":
        tax = money(given_tax)    # Xero lets a client override the calculated tax of a line
    line_id = str(line.get("LineItemID") or "").lower()
    out = {"LineItemID": line_id if line_id in old_lines else call.new_id(), "Description": description,
           "Quantity": float(qty), "UnitAmount": float(unit), "TaxType": tax_type, "TaxAmount": float(tax),
           "LineAmount": float(amount), "Tracking": line.get("Tracking") or []}
    if code:
        out["AccountCode"] = account["Code"] if account else code
        out["AccountID"] = account["AccountID"] if account else None
    if line.get("ItemCode"):
        out["ItemCode"] = line["ItemCode"]
    if rate:
        out["DiscountRate"] = float(rate)
    if discount_amount:
        out["DiscountAmount"] = float(discount_amount)
    return {k: v for k, v in out.items() if v is not None}


def _sign_errors(qty: Decimal, gross: Decimal, discount_amount: Decimal | None) -> list[str]:
    """A negative price is how Xero takes a discount or loyalty line ("a positive quantity and negative unit
    amount", WorkGuru's Xero error guide); a negative quantity is refused with Xero's message quoted there. A
    DiscountAmount on a negative line is refused even when it is 0 (Xero-OpenAPI#429: "The discount rate '0.00'
    is invalid. Discount must not be greater than the line total."), while DiscountRate 0 is accepted."""
    errors = []
    if qty < 0:
        errors.append(f"The quantity value '{qty:.4f}' is invalid. Quantity must not be less than zero.")
    if gross < 0 and discount_amount is not None:
        rate = money(discount_amount / -gross * 100)
        errors.append(f"The discount rate '{rate:.2f}' is invalid. Discount must not be greater than the line total.")
    return errors


def _totals(doc: dict) -> None:
    lines = doc["LineItems"]
    tax = sum((_d(li["TaxAmount"]) for li in lines), Decimal(0))
    amounts = sum((_d(li["LineAmount"]) for li in lines), Decimal(0))
    subtotal = amounts - tax if doc["LineAmountTypes"] == "Inclusive" else amounts
    discount = sum((money(_d(li["Quantity"]) * _d(li["UnitAmount"])) - _d(li["LineAmount"])
                    for li in lines if li.get("DiscountRate") or li.get("DiscountAmount")), Decimal(0))
    total = subtotal + tax
    doc.update({"SubTotal": float(money(subtotal)), "TotalTax": float(money(tax)), "Total": float(money(total))})
    if discount:
        doc["TotalDiscount"] = float(money(discount))
    if "RemainingCredit" in doc or doc["Type"] in CREDIT_NOTES.types:
        applied = sum((_d(a["Amount"]) for a in doc.get("Allocations", [])), Decimal(0))
        doc["RemainingCredit"] = float(money(total - applied))
    else:
        doc["AmountDue"] = float(money(total - _d(doc.get("AmountPaid")) - _d(doc.get("AmountCredited"))))


# -- create / update -------------------------------------------------------------------------------------
def _resolve_contact(call: Call, ref: object, doc_type: str) -> dict:
    if not isinstance(ref, dict) or not any(ref.get(k) for k in ("ContactID", "ContactNumber", "Name")):
        raise Invalid("The Contact must contain at least 1 of the following elements to identify the contact: "
                      "Name, ContactID, ContactNumber")
    contact = find_contact(call, ref)
    if contact is None:
        if ref.get("ContactID") or not ref.get("Name"):
            raise Invalid("The contact with the supplied ContactID or ContactNumber was not found.")
        # Xero creates a contact when a document names one it does not know.
        contact = _blank_contact(call.new_id())
        contact["Name"] = str(ref["Name"]).strip()
        contact["UpdatedDateUTC"] = call.clock.now_ms()
    if contact.get("ContactStatus") == "ARCHIVED":
        # Xero's words as an integrator's troubleshooting page quotes them ([P-RETAILEXPRESS]).
        raise Invalid("The contact with the specified contact details has been archived. The contact must be "
                      "un-archived before creating new invoices or credit notes")
    return contact


def _mark_contact_role(call: Call, contact: dict, doc_type: str) -> None:
    """IsCustomer/IsSupplier cannot be set by a client: Xero sets them once a document exists."""
    flag = "IsCustomer" if doc_type in {"ACCREC", "ACCRECCREDIT"} else "IsSupplier"
    is_new = contact["ContactID"] not in call.tenant.contacts
    if contact.get(flag) and not is_new:
        return
    contact[flag] = True
    call.tenant.index_contact(None if is_new else call.tenant.contacts[contact["ContactID"]], contact)
    call.store.put(call.tenant.tenant_id, "contact", contact["ContactID"], contact)


def _find_existing(call: Call, kind: DocKind, item: dict, path_id: str | None, match_number: bool) -> dict | None:
    docs = kind.objects(call)
    ref = path_id or item.get(kind.id_key)
    if ref:
        found = docs.get(str(ref).lower()) or _by_number(call, kind, str(ref))
        if found is None:
            raise Invalid("The document with the supplied id was not found for this endpoint.")
        return found
    number = str(item.get(kind.number_key) or "").strip()
    if match_number and number and item.get("Type", kind.numbered_type) == kind.numbered_type:
        return _by_number(call, kind, number)
    return None


def _by_number(call: Call, kind: DocKind, number: str) -> dict | None:
    for doc_type in kind.types:
        doc_id = call.tenant.doc_by_number.get((doc_type, number.lower()))
        if doc_id:
            return kind.objects(call).get(doc_id)
    return None


def upsert_document(call: Call, kind: DocKind, item: dict, *, path_id: str | None = None,
                    match_number: bool = False) -> dict:
    existing = _find_existing(call, kind, item, path_id, match_number)
    if existing is not None:
        _check_transition(call, kind, existing, item)
        doc = copy.deepcopy(existing)
        if set(item) - {"Status", kind.id_key, kind.number_key, "Type"} == set() and "Status" in item:
            doc["Status"] = item["Status"]        # a bare status change (delete, void, approve)
            return _commit(call, kind, existing, doc, full_validation=item["Status"] == "AUTHORISED")
    else:
        doc = {kind.id_key: call.new_id(), "Status": "DRAFT", "LineAmountTypes": "Exclusive", "LineItems": [],
               "AmountPaid": 0.0, "AmountCredited": 0.0, "Payments": [], "CreditNotes": [],
               "CreatedByApp": call.client_id}
        if kind is CREDIT_NOTES:
            doc = {k: v for k, v in doc.items() if k not in {"AmountPaid", "AmountCredited", "CreditNotes"}}
            doc["Allocations"] = []
        doc["Type"] = item.get("Type")
        if not doc["Type"]:
            raise Invalid(f"{kind.noun} Type must be specified")
        if doc["Type"] not in kind.types:
            raise Invalid(f"{kind.noun} Type '{doc['Type']}' is not valid for this endpoint.")
        status = item.get("Status", "DRAFT")
        if status not in CREATE_STATUSES:
            raise Invalid(f"A new {kind.noun.lower()} cannot be created with status {status}.")
    for key in WRITABLE:
        if key in item and key != "Type":
            doc[key] = item[key]
    if kind.number_key in item:
        doc[kind.number_key] = str(item[kind.number_key] or "").strip()
    return _commit(call, kind, existing, doc, full_validation=True, raw=item)


def _commit(call: Call, kind: DocKind, existing: dict | None, doc: dict, *, full_validation: bool,
            raw: dict | None = None) -> dict:
    tenant = call.tenant
    errors: list[str] = []
    contact = tenant.contacts.get(doc["Contact"]["ContactID"]) if existing and not raw else None
    if raw is not None or contact is None:
        try:
            contact = _resolve_contact(call, doc.get("Contact"), doc["Type"])
        except Invalid as exc:
            errors.extend(exc.messages)
    if doc.get("LineAmountTypes") not in LINE_AMOUNT_TYPES:
        errors.append(f"LineAmountTypes '{doc.get('LineAmountTypes')}' is not valid.")
        doc["LineAmountTypes"] = "Exclusive"
    for key in ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate"):
        value = doc.get(key)
        if value in (None, ""):
            doc.pop(key, None)
            continue
        try:
            doc[key] = parse_request_date(value).isoformat()
        except BadDate as exc:
            errors.append(f"{key}: {exc}")
    doc.setdefault("Date", call.clock.today().isoformat())
    base = tenant.organisation["BaseCurrency"]
    currency = doc.get("CurrencyCode") or base
    doc["CurrencyCode"] = currency
    if currency not in tenant.currencies:
        errors.append(f"Organisation is not subscribed to currency {currency}")
    if currency == base:
        doc["CurrencyRate"] = 1.0
    elif not doc.get("CurrencyRate"):
        doc["CurrencyRate"] = float(tenant.meta["exchange_rates"].get(currency, 1.0))
    if kind.number_key in doc and doc["Type"] == kind.numbered_type and doc[kind.number_key]:
        holder = tenant.doc_by_number.get((doc["Type"], doc[kind.number_key].lower()))
        if holder and holder != doc[kind.id_key] and doc["Status"] != "DELETED":
            errors.append(f"{kind.noun} # must be unique.")
    if doc["Type"] not in {kind.numbered_type} and "Reference" in doc and raw is not None:
        doc.pop("Reference")     # Reference is ACCREC/ACCRECCREDIT only; Xero ignores it elsewhere
    if full_validation:
        old_lines = {li["LineItemID"]: li for li in (existing or {}).get("LineItems", [])}
        lines_in = doc.get("LineItems") if isinstance(doc.get("LineItems"), list) else []
        new_lines: list[dict] = []
        for line in lines_in:
            if not isinstance(line, dict):
                errors.append("Each line item must be an object.")
                continue
            if line.get("LineItemID") and line.get("LineItemID") in old_lines and set(line) == {"LineItemID"}:
                new_lines.append(old_lines[line["LineItemID"]])
                continue
            try:
                new_lines.append(_line(call, kind, doc, line, old_lines))
            except Invalid as exc:
                errors.extend(exc.messages)
        doc["LineItems"] = new_lines
        if doc["Status"] in {"SUBMITTED", "AUTHORISED"} and not lines_in:
            errors.append("One or more line items must be specified")
    _totals(doc)
    errors.extend(_posting_errors(tenant.organisation, doc, lines_refused=bool(errors)))
    if errors:
        raise Invalid(*dict.fromkeys(errors))
    if existing is None and doc["Type"] == kind.numbered_type and not doc.get(kind.number_key):
        doc[kind.number_key] = f"{kind.prefix}{tenant.next_number(kind.prefix):04d}"
        while (doc["Type"], doc[kind.number_key].lower()) in tenant.doc_by_number:
            doc[kind.number_key] = f"{kind.prefix}{tenant.next_number(kind.prefix):04d}"
        call.store.save_meta(tenant)
    doc.setdefault(kind.number_key, "")
    assert contact is not None
    doc["Contact"] = {"ContactID": contact["ContactID"]}
    doc["UpdatedDateUTC"] = call.clock.now_ms()
    _mark_contact_role(call, contact, doc["Type"])
    _save(call, kind, existing, doc)
    return render_document(call, kind, doc, written=True)


def _posting_errors(org: dict, doc: dict, *, lines_refused: bool) -> list[str]:
    """A negative total is refused ("The Total for this document must be greater than or equal to zero.",
    Neto's list of Xero API errors; a single line may be negative), judged only when every line was taken, as
    a total over some of the lines would mislead; approving inside a locked period is refused too."""
    errors = []
    if not lines_refused and _d(doc["Total"]) < 0:
        errors.append("The Total for this document must be greater than or equal to zero.")
    when = _iso_date(doc.get("Date"))
    if doc["Status"] == "AUTHORISED" and when is not None:
        errors.extend(dating_errors(org, when))
    return errors


def _iso_date(value: object) -> date | None:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        return None


def _save(call: Call, kind: DocKind, existing: dict | None, doc: dict) -> None:
    """Every document write goes through here, so the indexes can never miss one."""
    call.tenant.index_document(kind.store_kind, existing, doc)
    call.store.put(call.tenant.tenant_id, kind.store_kind, doc[kind.id_key], doc)


# -- rendering -------------------------------------------------------------------------------------------
def _contact_summary(call: Call, contact_id: str) -> dict:
    contact = call.tenant.contacts.get(contact_id, {"ContactID": contact_id})
    out = {k: contact[k] for k in ("ContactID", "ContactNumber", "AccountNumber", "ContactStatus", "Name")
           if contact.get(k)}
    out["HasValidationErrors"] = False
    return out


_SUMMARY_OMITS = frozenset({"LineItems", "Payments", "CreditNotes", "Prepayments", "Overpayments", "Allocations"})


def render_document(call: Call, kind: DocKind, doc: dict, *, lines: bool = True, written: bool = False,
                    summary: bool = False) -> dict:
    """A document as Xero returns it. `summary` (summaryOnly=true) leaves out the line items and the payment and
    credit relations, Xero's "computation-heavy fields" (which ones exactly is an assumption, see docs)."""
    out = _render_full(call, kind, doc, lines=lines, written=written)
    return {k: v for k, v in out.items() if k not in _SUMMARY_OMITS} if summary else out


def _render_full(call: Call, kind: DocKind, doc: dict, *, lines: bool, written: bool) -> dict:
    out = {k: v for k, v in doc.items() if k not in {"CreatedByApp", "Date", "DueDate", "ExpectedPaymentDate",
                                                     "PlannedPaymentDate", "UpdatedDateUTC", "FullyPaidOnDate"}}
    for key in ("Date", "DueDate", "ExpectedPaymentDate", "PlannedPaymentDate", "FullyPaidOnDate"):
        if doc.get(key):
            out[key] = ms_date(date.fromisoformat(doc[key]))
            if key in {"Date", "DueDate"}:
                out[f"{key}String"] = f"{doc[key]}T00:00:00"
    out["UpdatedDateUTC"] = ms_datetime(doc["UpdatedDateUTC"])
    out["UpdatedDateUTCString"] = utc_string(doc["UpdatedDateUTC"])
    out["Contact"] = _contact_summary(call, doc["Contact"]["ContactID"])
    if not lines:
        out["LineItems"] = []
    if kind is INVOICES:
        out["Payments"] = [{**p, "Date": ms_date(date.fromisoformat(p["Date"]))} for p in doc.get("Payments", [])]
        out.setdefault("Prepayments", [])
        out.setdefault("Overpayments", [])
        out["IsDiscounted"] = bool(doc.get("TotalDiscount"))
    else:
        out["Allocations"] = [render_allocation(call, doc, a) for a in doc.get("Allocations", [])]
        out.setdefault("Payments", [])
    out.setdefault("SentToContact", False)
    out["HasAttachments"] = False
    out["HasErrors"] = False
    if written:
        out["StatusAttributeString"] = "OK"
    return out


def render_allocation(call: Call, credit: dict, alloc: dict) -> dict:
    invoice = call.tenant.invoices.get(alloc["InvoiceID"], {})
    return {"AllocationID": alloc["AllocationID"], "Amount": alloc["Amount"],
            "Date": ms_date(date.fromisoformat(alloc["Date"])),
            "Invoice": {"InvoiceID": alloc["InvoiceID"], "InvoiceNumber": invoice.get("InvoiceNumber", ""),
                        "Type": invoice.get("Type", "ACCREC")},
            "CreditNote": {"CreditNoteID": credit["CreditNoteID"],
                           "CreditNoteNumber": credit.get("CreditNoteNumber", "")},
            "IsDeleted": False}


def echo_document(kind: DocKind, item: dict) -> dict:
    """A failed element echoed back: what the client sent, with dates in the form the SDK can parse."""
    out: dict = {}
    for key in ("Type", "InvoiceNumber", "CreditNoteNumber", "Reference", "CurrencyCode", "LineAmountTypes"):
        if isinstance(item.get(key), str):
            out[key] = item[key]
    if out.get("Type") not in kind.types:
        out.pop("Type", None)
    if out.get("LineAmountTypes") not in LINE_AMOUNT_TYPES:
        out.pop("LineAmountTypes", None)
    status = item.get("Status")
    out["Status"] = status if status in {"DRAFT", "SUBMITTED", "DELETED", "AUTHORISED", "PAID", "VOIDED"} \
        else "DRAFT"
    for key in ("Date", "DueDate"):
        with contextlib.suppress(BadDate):
            out[key] = ms_date(parse_request_date(item.get(key)))
    if isinstance(item.get("Contact"), dict):
        out["Contact"] = {k: v for k, v in item["Contact"].items() if k in {"ContactID", "Name", "ContactNumber"}}
    out["LineItems"] = []
    return out


# -- endpoints -------------------------------------------------------------------------------------------
def save_documents(call: Call, kind: DocKind, *, match_number: bool) -> dict:
    """PUT creates (a taken number is an error); POST updates-or-creates, matching ID or number."""
    items = call.collection(kind.collection)
    results = run_batch(call, items, lambda i: upsert_document(call, kind, i, match_number=match_number),
                        lambda i: echo_document(kind, i), kind.id_key, "HasErrors")
    return {kind.collection: results}


def update_document(call: Call, kind: DocKind, doc_id: str) -> dict:
    items = call.collection(kind.collection)
    if find_document(call, kind, doc_id) is None:
        raise not_found()
    results = run_batch(call, items[:1], lambda i: upsert_document(call, kind, i, path_id=doc_id),
                        lambda i: echo_document(kind, i), kind.id_key, "HasErrors")
    return {kind.collection: results}


def find_document(call: Call, kind: DocKind, ref: str) -> dict | None:
    """A document by ID or number, as Xero's `/Invoices/{InvoiceID or InvoiceNumber}` resolves it."""
    return kind.objects(call).get(ref.lower()) or _by_number(call, kind, ref)


def get_document(call: Call, kind: DocKind, doc_id: str) -> dict:
    doc = find_document(call, kind, doc_id)
    if doc is None:
        raise not_found()
    return {kind.collection: [render_document(call, kind, doc)]}


def list_documents(call: Call, kind: DocKind) -> dict:
    """GET /Invoices and GET /CreditNotes: the query's rows, a page of them when `page` is given."""
    rows, pagination = paginate(call, _selected(call, kind))
    summary = call.flag("summaryOnly")
    # Line items come with paging or a look-up by ID/number, not in a plain list (shared notes §2.8).
    by_reference = bool(call.csv("IDs")) or (kind is INVOICES and bool(call.csv("InvoiceNumbers")))
    with_lines = not summary and (pagination is not None or by_reference)
    body: dict = {kind.collection: [render_document(call, kind, d, lines=with_lines, summary=summary)
                                    for d in rows]}
    if pagination:
        body = {"pagination": pagination, **body}
    return body


def _selected(call: Call, kind: DocKind) -> list[dict]:
    """The documents a list query asks for, in order. Candidates come from the indexes whenever a parameter or the
    `where` filter allows (see indexes.py); every filter is then applied to each candidate. A paged query's rows
    are remembered until the organisation's next write, so its later pages cost only their own rendering."""
    key = ((kind.store_kind, call.client_id, call.headers.get("if-modified-since"),
            *sorted((k, str(v)) for k, v in call.query.items() if k != "page"))
           if call.query.get("page") else None)
    if key in call.tenant.lists:
        return call.tenant.lists[key]
    docs = kind.objects(call)
    index = call.tenant.documents[kind.store_kind]
    query = ListQuery.of(call)
    params = _parameter_filters(call, kind)
    narrowed = intersect([candidates(plan, index.lookup) for plan, _ in params]
                         + [candidates(query.where.plan, index.lookup) if query.where else None,
                            index.modified_after(query.since_ms) if query.since_ms is not None else None])
    pool = docs.values() if narrowed is None else index.in_order(narrowed, docs)
    checks = [check for _, check in params]
    if call.flag("createdByMyApp"):
        checks.append(lambda d: d.get("CreatedByApp") == call.client_id)
    term = (call.query.get("searchterm") or "").strip().lower()
    if term:
        checks.append(lambda d: term in (d.get(kind.number_key) or "").lower()
                      or term in (d.get("Reference") or "").lower())
    rows = order_rows(call, select(call, pool, query=query, extra=lambda d: all(c(d) for c in checks)), None)
    if key is not None:
        call.tenant.remember_list(key, rows)
    return rows


def _parameter_filters(call: Call, kind: DocKind) -> list[tuple[AnyOf, Callable[[dict], bool]]]:
    """`IDs`, `InvoiceNumbers`, `ContactIDs` and `Statuses`, each as an index plan and as a row check."""
    fields: list[tuple[str | None, str, Callable[[dict], str]]] = [
        ("IDs", kind.id_key.lower(), lambda d: d[kind.id_key]),
        ("InvoiceNumbers" if kind is INVOICES else None, kind.number_key.lower(),
         lambda d: d.get(kind.number_key) or ""),
        ("ContactIDs", "contact.contactid", lambda d: d["Contact"]["ContactID"]),
        ("Statuses", "status", lambda d: d["Status"]),
    ]
    out: list[tuple[AnyOf, Callable[[dict], bool]]] = []
    for param, field, value_of in fields:
        values = {v.lower() for v in (call.csv(param) if param else None) or []}
        if values:
            plan = AnyOf(tuple(Eq(field, v) for v in sorted(values)))
            out.append((plan, lambda d, get=value_of, wanted=values: get(d).lower() in wanted))
    return out


def allocate_credit_note(call: Call, credit_id: str) -> dict:
    credit = call.tenant.credit_notes.get(credit_id.lower())
    if credit is None:
        raise HttpError(404, "The resource you're looking for cannot be found")
    items = call.collection("Allocations")

    def allocate(item: dict) -> dict:
        errors: list[str] = []
        ref = item.get("Invoice") or {}
        invoice = call.tenant.invoices.get(str(ref.get("InvoiceID") or "").lower())
        try:
            amount = money(dec(item.get("Amount"), "0"))
        except ValueError as exc:
            raise Invalid(str(exc)) from exc
        try:
            when = parse_request_date(item.get("Date")) if item.get("Date") else call.clock.today()
        except BadDate as exc:
            raise Invalid(str(exc)) from exc
        if credit["Status"] != "AUTHORISED":
            errors.append("Only an AUTHORISED credit note can be allocated.")
        if invoice is None:
            raise Invalid("The invoice to allocate to could not be found.")
        if invoice["Status"] != "AUTHORISED":
            errors.append("Credit can only be allocated to an AUTHORISED invoice.")
        if {credit["Type"], invoice["Type"]} not in ({"ACCRECCREDIT", "ACCREC"}, {"ACCPAYCREDIT", "ACCPAY"}):
            errors.append("The credit note and the invoice must both be sales or both be purchases.")
        if credit["Contact"]["ContactID"] != invoice["Contact"]["ContactID"]:
            errors.append("The credit note and the invoice must be for the same contact.")
        if credit["CurrencyCode"] != invoice["CurrencyCode"]:
            errors.append("The credit note and the invoice must be in the same currency.")
        if amount <= 0:
            errors.append("The allocation amount must be greater than zero.")
        if amount > _d(credit["RemainingCredit"]):
            errors.append("The amount allocated exceeds the remaining credit on this credit note.")
        if amount > _d(invoice["AmountDue"]):
            errors.append("The amount allocated exceeds the amount outstanding on the invoice.")
        errors.extend(dating_errors(call.tenant.organisation, when))
        if errors:
            raise Invalid(*errors)
        alloc = {"AllocationID": call.new_id(), "InvoiceID": invoice["InvoiceID"], "Amount": float(amount),
                 "Date": when.isoformat()}
        credit["Allocations"].append(alloc)
        invoice["CreditNotes"].append({"CreditNoteID": credit["CreditNoteID"],
                                       "CreditNoteNumber": credit.get("CreditNoteNumber", ""),
                                       "AppliedAmount": float(amount)})
        invoice["AmountCredited"] = float(money(_d(invoice["AmountCredited"]) + amount))
        for doc, kind in ((credit, CREDIT_NOTES), (invoice, INVOICES)):
            _totals(doc)
            _settle_if_done(call, doc, when)
            doc["UpdatedDateUTC"] = call.clock.now_ms()
            _save(call, kind, doc, doc)
        return {**render_allocation(call, credit, alloc), "StatusAttributeString": "OK"}

    results = run_batch(call, items, allocate, lambda i: _echo_allocation(call, credit, i),
                        "AllocationID", "HasErrors")
    for r in results:
        r.pop("HasErrors", None)
    return {"Allocations": results}


def _echo_allocation(call: Call, credit: dict, item: dict) -> dict:
    """A refused allocation, shaped so xero-python's Allocation model can read it: Amount, Invoice and Date are
    required there (a missing Date made the SDK raise ValueError instead of showing Xero's message). What Xero
    echoes is not documented; the emulator returns what was sent, with today for an unusable date."""
    ref = item.get("Invoice") if isinstance(item.get("Invoice"), dict) else {}
    try:
        amount = float(money(dec(item.get("Amount"), "0")))
    except ValueError:
        amount = 0.0
    try:
        when = parse_request_date(item["Date"]) if item.get("Date") else call.clock.today()
    except BadDate:
        when = call.clock.today()
    return {"Amount": amount, "Date": ms_date(when), "Invoice": {"InvoiceID": str(ref.get("InvoiceID") or ZERO_GUID)},
            "CreditNote": {"CreditNoteID": credit["CreditNoteID"]}, "IsDeleted": False}


def _settle_if_done(call: Call, doc: dict, when: date) -> None:
    left = doc.get("AmountDue", doc.get("RemainingCredit"))
    if _d(left) == 0 and doc["Status"] == "AUTHORISED":
        doc["Status"] = "PAID"
        doc["FullyPaidOnDate"] = when.isoformat()


def record_payment(call: Call, invoice_id: str, amount_text: object, when_text: object) -> dict:
    """A payment made in Xero by the bookkeeper (admin API): it locks the invoice, as in real Xero."""
    invoice = call.tenant.invoices.get(invoice_id.lower()) or _by_number(call, INVOICES, invoice_id)
    if invoice is None:
        raise not_found()
    if invoice["Status"] != "AUTHORISED":
        raise HttpError(400, {"Message": "Payments can only be recorded against AUTHORISED invoices."})
    amount = money(dec(amount_text, str(invoice["AmountDue"])))
    if amount <= 0 or amount > _d(invoice["AmountDue"]):
        raise HttpError(400, {"Message": "Payment amount exceeds the amount outstanding on this document"})
    when = parse_request_date(when_text) if when_text else call.clock.today()
    locked = dating_errors(call.tenant.organisation, when)
    if locked:
        raise HttpError(400, {"Message": " ".join(locked)})
    payment = {"PaymentID": call.new_id(), "Date": when.isoformat(), "Amount": float(amount)}
    invoice["Payments"].append(payment)
    invoice["AmountPaid"] = float(money(_d(invoice["AmountPaid"]) + amount))
    _totals(invoice)
    _settle_if_done(call, invoice, when)
    invoice["UpdatedDateUTC"] = call.clock.now_ms()
    _save(call, INVOICES, invoice, invoice)
    return {"Payment": payment, "Invoice": render_document(call, INVOICES, invoice)}
