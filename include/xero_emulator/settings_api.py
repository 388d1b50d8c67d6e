"""Organisation, chart of accounts, tax rates and currencies: the reference data the sync reads first."""

from __future__ import annotations

from datetime import date

from include.xero_emulator.context import Call, order_rows, select
from include.xero_emulator.errors import HttpError, Invalid, not_found, validation_exception
from include.xero_emulator.lockdates import KEYS as LOCK_DATE_KEYS
from include.xero_emulator.wire import ZERO_GUID, ms_date, ms_datetime

ACCOUNT_TYPES = {"BANK", "CURRENT", "CURRLIAB", "DEPRECIATN", "DIRECTCOSTS", "EQUITY", "EXPENSE", "FIXED",
                 "INVENTORY", "LIABILITY", "NONCURRENT", "OTHERINCOME", "OVERHEADS", "PREPAYMENT", "REVENUE",
                 "SALES", "TERMLIAB", "PAYG"}
_CLASS_OF_TYPE = {
    **dict.fromkeys(["BANK", "CURRENT", "FIXED", "INVENTORY", "NONCURRENT", "PREPAYMENT"], "ASSET"),
    **dict.fromkeys(["CURRLIAB", "LIABILITY", "TERMLIAB", "PAYG"], "LIABILITY"),
    **dict.fromkeys(["DEPRECIATN", "DIRECTCOSTS", "EXPENSE", "OVERHEADS"], "EXPENSE"),
    "EQUITY": "EQUITY",
    **dict.fromkeys(["OTHERINCOME", "REVENUE", "SALES"], "REVENUE"),
}
_REPORTING_CODE = {"ASSET": ("ASS", "Assets"), "LIABILITY": ("LIA", "Liabilities"), "EXPENSE": ("EXP", "Expenses"),
                   "EQUITY": ("EQU", "Equity"), "REVENUE": ("REV", "Revenue")}
TAX_FLAG_OF_CLASS = {"REVENUE": "CanApplyToRevenue", "EXPENSE": "CanApplyToExpenses",
                     "ASSET": "CanApplyToAssets", "LIABILITY": "CanApplyToLiabilities",
                     "EQUITY": "CanApplyToEquity"}
ACCOUNT_WRITABLE = ("Code", "Name", "Type", "Description", "TaxType", "BankAccountNumber", "BankAccountType",
                    "CurrencyCode", "EnablePaymentsToAccount", "ShowInExpenseClaims", "AddToWatchlist",
                    "Status")


def account_class(account_type: str) -> str:
    return _CLASS_OF_TYPE.get(account_type, "EXPENSE")


# -- Organisation -----------------------------------------------------------------------------------------
def get_organisations(call: Call) -> dict:
    """The organisation; lock dates only when set ("Shown if set", spec), as MS-JSON dates, which is the one
    form xero-python's `date[ms-format]` Organisation fields parse (shared notes §1.3)."""
    org = dict(call.tenant.organisation)
    for key in LOCK_DATE_KEYS:
        if org.get(key):
            org[key] = ms_date(date.fromisoformat(org[key]))
    org["CreatedDateUTC"] = ms_datetime(org.get("CreatedDateUTC", 0), offset=False)
    org.setdefault("Addresses", [])
    org.setdefault("Phones", [])
    org.setdefault("ExternalLinks", [])
    org.setdefault("PaymentTerms", {})
    return {"Organisations": [org]}


# -- Accounts ---------------------------------------------------------------------------------------------
def render_account(account: dict) -> dict:
    out = {k: v for k, v in account.items() if k != "UpdatedDateUTC"}
    klass = account_class(account["Type"])
    code, name = _REPORTING_CODE[klass]
    out.update({"Class": klass, "ReportingCode": code, "ReportingCodeName": name, "HasAttachments": False,
                "UpdatedDateUTC": ms_datetime(account["UpdatedDateUTC"])})
    out.setdefault("EnablePaymentsToAccount", False)
    out.setdefault("ShowInExpenseClaims", False)
    out.setdefault("AddToWatchlist", False)
    if account["Type"] == "BANK":
        out.setdefault("BankAccountType", "BANK")
    return out


def get_accounts(call: Call) -> dict:
    rows = order_rows(call, select(call, call.tenant.accounts.values()), "Code ASC")
    return {"Accounts": [render_account(a) for a in rows]}


def get_account(call: Call, account_id: str) -> dict:
    account = call.tenant.accounts.get(account_id.lower())
    if account is None:
        raise not_found()
    return {"Accounts": [render_account(account)]}


def _validate_account(call: Call, account: dict) -> None:
    errors: list[str] = []
    code = str(account.get("Code") or "").strip()
    name = str(account.get("Name") or "").strip()
    if not code and account.get("Type") != "BANK":
        errors.append("Please enter a Code.")
    if len(code) > 10:
        errors.append("Account Code is too long. Maximum of 10 characters allowed")
    if not name:
        errors.append("Please enter a Name.")
    elif len(name) > 150:
        errors.append("Account Name is too long. Maximum of 150 characters allowed")
    if account.get("Type") not in ACCOUNT_TYPES:
        errors.append("Please select an Account Type.")
    for other in call.tenant.accounts.values():
        if other["AccountID"] == account["AccountID"] or other["Status"] == "DELETED":
            continue
        if code and other.get("Code", "").lower() == code.lower():
            errors.append("Please enter a unique Code.")
        if name and other["Name"].lower() == name.lower():
            errors.append("Please enter a unique Name.")
    tax_type = account.get("TaxType")
    if tax_type and tax_type not in call.tenant.tax_rates:
        errors.append(f"The TaxType code {tax_type} does not exist or cannot be used for this type of transaction.")
    if account.get("Status") not in {"ACTIVE", "ARCHIVED"}:
        errors.append("Accounts can only be ACTIVE or ARCHIVED.")
    if errors:
        raise Invalid(*errors)


def _default_tax_type(call: Call, account_type: str) -> str:
    klass = account_class(account_type)
    flag = TAX_FLAG_OF_CLASS[klass]
    for candidate in ("OUTPUT2", "OUTPUT", "INPUT2", "INPUT", "NONE"):
        rate = call.tenant.tax_rates.get(candidate)
        if rate and rate.get(flag) and rate["Status"] == "ACTIVE" and (klass in {"REVENUE", "EXPENSE"}
                                                                      or candidate == "NONE"):
            return candidate
    return "NONE"


def _save_account(call: Call, account: dict, submitted: dict) -> dict:
    try:
        _validate_account(call, account)
    except Invalid as exc:
        echo = {k: submitted[k] for k in ACCOUNT_WRITABLE if k in submitted}
        raise validation_exception([{**echo, "AccountID": ZERO_GUID,
                                     "ValidationErrors": [{"Message": m} for m in exc.messages]}]) from exc
    account["UpdatedDateUTC"] = call.clock.now_ms()
    call.store.put(call.tenant.tenant_id, "account", account["AccountID"], account)
    return {"Accounts": [render_account(account)]}


def _single_account(call: Call) -> dict:
    """The Account in a create/update body (Xero processes only the first of a list)."""
    body = call.body
    if isinstance(body, dict) and isinstance(body.get("Accounts"), list) and body["Accounts"]:
        body = body["Accounts"][0]
    if not isinstance(body, dict):
        raise HttpError(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                              "Message": "The request body must be an Account"})
    return body


def create_account(call: Call) -> dict:
    """PUT /Accounts takes one Account object."""
    body = _single_account(call)
    account = {k: body[k] for k in ACCOUNT_WRITABLE if k in body}
    account["AccountID"] = call.new_id()
    account["Status"] = "ACTIVE"
    if "Code" in account:
        account["Code"] = str(account["Code"]).strip()
    if account.get("Type") in ACCOUNT_TYPES and not account.get("TaxType"):
        account["TaxType"] = _default_tax_type(call, account["Type"])
    return _save_account(call, account, body)


def update_account(call: Call, account_id: str) -> dict:
    existing = call.tenant.accounts.get(account_id.lower())
    if existing is None:
        raise not_found()
    body = _single_account(call)
    account = dict(existing)
    account.update({k: body[k] for k in ACCOUNT_WRITABLE if k in body})
    return _save_account(call, account, body)


# -- Tax rates and currencies -----------------------------------------------------------------------------
def get_tax_rates(call: Call) -> dict:
    rows = order_rows(call, select(call, call.tenant.tax_rates.values()), "Name ASC")
    return {"TaxRates": rows}


def get_tax_rate(call: Call, tax_type: str) -> dict:
    rate = call.tenant.tax_rates.get(tax_type.upper())
    if rate is None:
        raise not_found()
    return {"TaxRates": [rate]}


def get_currencies(call: Call) -> dict:
    rows = order_rows(call, select(call, call.tenant.currencies.values()), None)
    return {"Currencies": rows}
