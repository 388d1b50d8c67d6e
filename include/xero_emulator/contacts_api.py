"""Contacts: create, update, update-or-create, batch, list and balances, with Xero's uniqueness rules."""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable
from decimal import Decimal

from include.xero_emulator.context import Call, ListQuery, order_rows, paginate, run_batch, select
from include.xero_emulator.errors import Invalid, not_found
from include.xero_emulator.indexes import candidates, intersect
from include.xero_emulator.store import Tenant
from include.xero_emulator.where import AnyOf, Eq
from include.xero_emulator.wire import money, ms_datetime

WRITABLE = ("ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName", "LastName", "CompanyNumber",
            "EmailAddress", "ContactPersons", "BankAccountDetails", "TaxNumber", "AccountsReceivableTaxType",
            "AccountsPayableTaxType", "Addresses", "Phones", "DefaultCurrency", "SalesDefaultAccountCode",
            "PurchasesDefaultAccountCode", "PaymentTerms", "Website", "Discount",
            "SalesDefaultLineAmountType", "PurchasesDefaultLineAmountType")
SUMMARY_FIELDS = ("ContactID", "ContactNumber", "AccountNumber", "ContactStatus", "Name", "FirstName",
                  "LastName", "EmailAddress", "IsSupplier", "IsCustomer", "DefaultCurrency", "UpdatedDateUTC",
                  "CompanyNumber", "TaxNumber")
_SEARCHED = ("Name", "FirstName", "LastName", "ContactNumber", "EmailAddress")   # searchTerm (spec)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_LIMITS = {"Name": 255, "AccountNumber": 50, "ContactNumber": 50, "FirstName": 255, "LastName": 255,
           "EmailAddress": 255, "TaxNumber": 50, "CompanyNumber": 50}


def _blank_contact(contact_id: str) -> dict:
    return {"ContactID": contact_id, "ContactStatus": "ACTIVE", "IsSupplier": False, "IsCustomer": False,
            "Addresses": [{"AddressType": "POBOX"}, {"AddressType": "STREET"}],
            "Phones": [{"PhoneType": t} for t in ("DEFAULT", "DDI", "FAX", "MOBILE")],
            "ContactPersons": [], "ContactGroups": []}


def _merge_typed(existing: list[dict], supplied: list[dict], key: str) -> list[dict]:
    """Xero returns every address/phone type even when only some are supplied."""
    by_type = {item.get(key): item for item in existing}
    for item in supplied:
        if isinstance(item, dict):
            by_type[item.get(key)] = item
    return list(by_type.values())


def find_contact(call: Call, ref: dict) -> dict | None:
    """Resolve a contact reference the way an invoice's Contact is resolved: ID, then number, then name."""
    tenant = call.tenant
    if ref.get("ContactID"):
        return tenant.contacts.get(str(ref["ContactID"]).lower())
    if ref.get("ContactNumber"):
        cid = tenant.contact_by_number.get(str(ref["ContactNumber"]).strip().lower())
        return tenant.contacts.get(cid) if cid else None
    if ref.get("Name"):
        cid = tenant.contact_by_name.get(str(ref["Name"]).strip().lower())
        return tenant.contacts.get(cid) if cid else None
    return None


def _validate(call: Call, contact: dict) -> None:
    errors: list[str] = []
    tenant = call.tenant
    name = str(contact.get("Name") or "").strip()
    if not name:
        errors.append("Contact Name cannot be empty.")
    for key, limit in _LIMITS.items():
        if len(str(contact.get(key) or "")) > limit:
            errors.append(f"{key} must not be more than {limit} characters long.")
    status = contact.get("ContactStatus", "ACTIVE")
    if status not in {"ACTIVE", "ARCHIVED", "GDPRREQUEST"}:
        errors.append(f"The ContactStatus '{status}' is not valid.")
    if name and status == "ACTIVE":
        holder = tenant.contact_by_name.get(name.lower())
        if holder and holder != contact["ContactID"]:
            errors.append(f"The contact name {name} is already assigned to another contact. "
                          "The contact name must be unique across all active contacts.")
    number = str(contact.get("AccountNumber") or "").strip()
    if number:
        holder = tenant.contact_by_account_number.get(number.lower())
        if holder and holder != contact["ContactID"]:
            errors.append("The Account Number already exists. Please enter a different Account Number.")
    email = contact.get("EmailAddress")
    if email and not _EMAIL.match(str(email)):
        errors.append("Email address must be valid.")
    currency = contact.get("DefaultCurrency")
    if currency and currency not in tenant.currencies:
        errors.append(f"Organisation is not subscribed to currency {currency}")
    if errors:
        raise Invalid(*errors)


def upsert_contact(call: Call, item: dict, path_id: str | None = None) -> dict:
    tenant = call.tenant
    existing = None
    ref_id = path_id or item.get("ContactID")
    if ref_id:
        existing = tenant.contacts.get(str(ref_id).lower())
        if existing is None:
            raise Invalid("The contact with the supplied ContactID was not found.")
    elif item.get("ContactNumber"):
        existing = find_contact(call, {"ContactNumber": item["ContactNumber"]})
    contact = copy.deepcopy(existing) if existing else _blank_contact(call.new_id())
    for key in WRITABLE:
        if key not in item:
            continue
        if key == "Addresses" and isinstance(item[key], list):
            contact[key] = _merge_typed(contact.get(key, []), item[key], "AddressType")
        elif key == "Phones" and isinstance(item[key], list):
            contact[key] = _merge_typed(contact.get(key, []), item[key], "PhoneType")
        else:
            contact[key] = item[key].strip() if isinstance(item[key], str) else item[key]
    if existing and existing.get("ContactStatus") == "ARCHIVED" and item.get("ContactStatus") == "ARCHIVED":
        raise Invalid("This contact has already been archived; an archived contact cannot be archived again.")
    _validate(call, contact)
    contact["UpdatedDateUTC"] = call.clock.now_ms()
    tenant.index_contact(existing, contact)
    call.store.put(tenant.tenant_id, "contact", contact["ContactID"], contact)
    return render_contact(call, contact, written=True)


def balances(call: Call, contact_id: str) -> dict:
    """Raw outstanding/overdue amounts of the contact's authorised documents (not converted to base)."""
    tenant = call.tenant
    today = call.clock.today().isoformat()
    sums = {side: {"Outstanding": Decimal(0), "Overdue": Decimal(0)}
            for side in ("AccountsReceivable", "AccountsPayable")}
    owned = [(tenant.invoices[i], 1) for i in tenant.documents["invoice"].with_contact(contact_id)]
    owned += [(tenant.credit_notes[i], -1) for i in tenant.documents["creditnote"].with_contact(contact_id)]
    for doc, sign in owned:
        if doc["Status"] != "AUTHORISED":
            continue
        side = "AccountsReceivable" if doc["Type"] in {"ACCREC", "ACCRECCREDIT"} else "AccountsPayable"
        amount = Decimal(str(doc["AmountDue"] if sign == 1 else doc["RemainingCredit"])) * sign
        sums[side]["Outstanding"] += amount
        if sign == 1 and doc.get("DueDate") and doc["DueDate"] < today:
            sums[side]["Overdue"] += amount
    return {side: {k: float(money(v)) for k, v in vals.items()} for side, vals in sums.items()}


def render_contact(call: Call, contact: dict, *, summary: bool = False, with_balances: bool = False,
                   written: bool = False) -> dict:
    fields = SUMMARY_FIELDS if summary else contact.keys()
    out = {k: contact[k] for k in fields if k in contact}
    out["UpdatedDateUTC"] = ms_datetime(contact["UpdatedDateUTC"])
    out["HasAttachments"] = False
    out["HasValidationErrors"] = False
    if with_balances:
        out["Balances"] = balances(call, contact["ContactID"])
    if written:
        out["StatusAttributeString"] = "OK"
    return out


def echo_contact(item: dict) -> dict:
    return {k: item[k] for k in WRITABLE if k in item and isinstance(item[k], str | int | float)}


def save_contacts(call: Call) -> dict:
    """PUT /Contacts and POST /Contacts: both create, and update a contact named by ContactID/ContactNumber."""
    items = call.collection("Contacts")
    results = run_batch(call, items, lambda i: upsert_contact(call, i), echo_contact,
                        "ContactID", "HasValidationErrors")
    return {"Contacts": results}


def update_contact(call: Call, contact_id: str) -> dict:
    items = call.collection("Contacts")
    results = run_batch(call, items[:1], lambda i: upsert_contact(call, i, path_id=contact_id), echo_contact,
                        "ContactID", "HasValidationErrors")
    return {"Contacts": results}


def get_contacts(call: Call) -> dict:
    """GET /Contacts. `IDs` and `where` look-ups on ContactID, AccountNumber or ContactNumber come from the
    contact indexes; everything else scans. Balances are not served here: Xero documents them on a contact,
    not on lists (shared notes §2.7), so a client must not rely on them in a list."""
    tenant = call.tenant
    query = ListQuery.of(call)
    ids = {i.lower() for i in call.csv("IDs") or []}
    id_plan = AnyOf(tuple(Eq("contactid", i) for i in sorted(ids))) if ids else None
    lookup = functools.partial(_contact_lookup, tenant)
    narrowed = intersect([candidates(id_plan, lookup),
                          candidates(query.where.plan if query.where else None, lookup)])
    pool = tenant.contacts.values() if narrowed is None else [tenant.contacts[i] for i in narrowed]
    checks: list[Callable[[dict], bool]] = []
    if ids:
        checks.append(lambda c: c["ContactID"] in ids)
    if not call.flag("includeArchived"):
        checks.append(lambda c: c.get("ContactStatus") != "ARCHIVED")
    term = (call.query.get("searchterm") or "").strip().lower()
    if term:
        checks.append(lambda c: any(term in str(c.get(k) or "").lower() for k in _SEARCHED))
    rows = order_rows(call, select(call, pool, query=query, extra=lambda c: all(f(c) for f in checks)), "Name ASC")
    rows, pagination = paginate(call, rows)
    summary = call.flag("summaryOnly")
    body: dict = {"Contacts": [render_contact(call, c, summary=summary) for c in rows]}
    if pagination:
        body = {"pagination": pagination, **body}
    return body


def _contact_lookup(tenant: Tenant, field: str, value: str) -> set[str] | None:
    """Contacts with `field` equal to `value`: ContactID, AccountNumber (unique, archived included) and
    ContactNumber are indexed; other fields scan."""
    if field == "contactid":
        return {value} if value in tenant.contacts else set()
    index = {"accountnumber": tenant.contact_by_account_number, "contactnumber": tenant.contact_by_number}.get(field)
    if index is None:
        return None
    found = index.get(value)
    return {found} if found else set()


def get_contact(call: Call, contact_id: str) -> dict:
    contact = call.tenant.contacts.get(contact_id.lower())
    if contact is None:
        contact = find_contact(call, {"ContactNumber": contact_id})
    if contact is None:
        raise not_found()
    return {"Contacts": [render_contact(call, contact, with_balances=True)]}
