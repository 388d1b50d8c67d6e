"""The two forms that change settings, read and checked before anything is saved: whatever Xero would refuse
later (an account code longer than 10 letters or digits, a name over 150 characters, a malformed e-mail address,
a tax rate Xero does not allow on sales or on purchases) is refused here with a reason, and nothing is
half-saved. On a refusal the form is shown again with everything the user typed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from include.omono_xero_sync import entities, settings

STATUSES = settings.DOCUMENT_STATUSES
ACCOUNT_CODE = re.compile(r"^[A-Za-z0-9]{1,10}$")
ACCOUNT_NAME_MAX = 150
EMAIL = re.compile(r"^[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                   r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$")
EMAILS_MAX = 500
URL_PATTERN_MAX = 500
KINDS = ("sales", "purchase")
TAX_USE = {"sales": ("CanApplyToRevenue", "sales"), "purchase": ("CanApplyToExpenses", "purchases")}


@dataclass
class Checked:
    """What a form would save, why it cannot (errors), and the rows as the user left them."""

    errors: list[str] = field(default_factory=list)
    changes: list[tuple] = field(default_factory=list)
    shown: Any = None


def _text(form: Any, name: str) -> str:
    return str(form.get(name, "") or "").strip()


# -- general options ------------------------------------------------------------------------------------------
def alert_emails(value: str) -> list[str]:
    return [a.strip() for a in value.split(",") if a.strip()]


def _check_emails(value: str) -> list[str]:
    if len(value) > EMAILS_MAX:
        return [f"Alert e-mail: at most {EMAILS_MAX} characters."]
    return [f"Alert e-mail: '{a}' is not an e-mail address." for a in alert_emails(value) if not EMAIL.match(a)]


def _check_url_pattern(value: str) -> list[str]:
    """The Omono link must stay a web address with the record's id in it; it is put in every row's link."""
    problem = None
    if len(value) > URL_PATTERN_MAX:
        problem = f"at most {URL_PATTERN_MAX} characters"
    elif not re.match(r"^https?://[^\s{}]+", value) or re.search(r"\s", value):
        problem = "it must be a web address starting with http:// or https://, without spaces"
    elif "{id}" not in value:
        problem = "it must contain {id}, where the record's Omono id goes"
    else:
        try:
            value.format(entity="dispatch-invoices", id=1)
        except (KeyError, IndexError, ValueError):
            problem = "only {entity} and {id} may be used as placeholders"
    return [f"Omono record link: {problem}."] if problem else []


def general_options(form: Any) -> Checked:
    values: dict[str, Any] = {}
    errors: list[str] = []
    for e in entities.DOCUMENTS:
        values[f"status.{e.name}"] = status = _text(form, f"status.{e.name}")
        if status not in STATUSES:
            errors.append(f"{e.label}: the status must be one of {', '.join(STATUSES)}.")
    values["sync_interval"] = interval = _text(form, "sync_interval")
    if interval not in settings.SYNC_INTERVALS:
        errors.append(f"Sync interval: one of {', '.join(settings.SYNC_INTERVALS)}.")
    values["credit_check"] = form.get("credit_check") == "on"
    values["auto_create_accounts"] = form.get("auto_create_accounts") == "on"
    email = _text(form, "alert_email")
    errors += _check_emails(email)
    values["alert_email"] = email or None
    values["omono_url_pattern"] = pattern = _text(form, "omono_url_pattern")
    errors += _check_url_pattern(pattern)
    return Checked(errors, list(values.items()), values)


# -- mappings -------------------------------------------------------------------------------------------------
def _account_row(form: Any, kind: str, row: dict, accounts: set[str]) -> tuple[dict, tuple | None, str | None]:
    """One analysis code: the row as posted, the change to save (account None removes it), or the refusal."""
    key = f"{kind}:{row['code']}"
    create = form.get(f"{key}:create") == "on"
    new_code, name = _text(form, f"{key}:new_code"), _text(form, f"{key}:name")
    chosen = new_code if create else _text(form, key)
    shown = {**row, "account": chosen or None, "create": create, "name": name or None}
    what = f"{kind.capitalize()} code {row['code']}"
    if create:
        if not ACCOUNT_CODE.match(new_code):
            return shown, None, (f"{what}: a Xero account code is 1 to 10 letters or digits ('{new_code}' is not).")
        if not name or len(name) > ACCOUNT_NAME_MAX:
            return shown, None, f"{what}: give the new Xero account a name of at most {ACCOUNT_NAME_MAX} characters."
        if new_code.upper() in accounts:
            return shown, None, f"{what}: account {new_code} already exists in Xero; choose it from the list."
        return shown, (kind, row["code"], new_code, True, name), None
    if not chosen:
        return shown, ((kind, row["code"], None, False, None) if row["account"] else None), None
    if chosen.upper() not in accounts:
        return shown, None, (f"{what}: '{chosen}' is not an active account in Xero. Choose one from the list, or "
                             "tick 'create'.")
    return shown, (kind, row["code"], chosen, False, None), None


def _tax_row(form: Any, row: dict, tax_rates: dict[str, dict]) -> tuple[dict, list[tuple], list[str]]:
    shown, changes, errors = dict(row), [], []
    for kind in KINDS:
        name = f"tax:{kind}:{row['code']}"
        if name not in form:
            continue
        shown[kind] = chosen = _text(form, name) or None
        flag, use = TAX_USE[kind]
        if chosen is None:
            if row[kind]:
                changes.append((kind, row["code"], None))
        elif chosen not in tax_rates:
            errors.append(f"Tax rate {row['code']} on {use}: '{chosen}' is not an active Xero tax rate.")
        elif not tax_rates[chosen].get(flag, True):
            errors.append(f"Tax rate {row['code']} on {use}: Xero does not allow {chosen} on {use}.")
        else:
            changes.append((kind, row["code"], chosen))
    return shown, changes, errors


def mappings(form: Any, rows: dict[str, list[dict]], accounts: list[dict], tax_rates: list[dict]) -> Checked:
    """Only rows whose fields are in the form change; choosing '—' removes that mapping."""
    codes = {a["Code"].upper() for a in accounts}
    rates = {t["TaxType"]: t for t in tax_rates}
    out = Checked(shown={"sales": [], "purchase": [], "tax": []})
    for kind in KINDS:
        for row in rows[kind]:
            if f"{kind}:{row['code']}" not in form and f"{kind}:{row['code']}:create" not in form:
                out.shown[kind].append(row)
                continue
            shown, change, error = _account_row(form, kind, row, codes)
            out.shown[kind].append(shown)
            out.errors += [error] if error else []
            out.changes += [("account", *change)] if change else []
    for row in rows["tax"]:
        shown, changes, errors = _tax_row(form, row, rates)
        out.shown["tax"].append(shown)
        out.errors += errors
        out.changes += [("tax", *c) for c in changes]
    return out
