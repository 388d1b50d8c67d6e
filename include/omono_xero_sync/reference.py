"""Xero's reference data (organisation, accounts, tax rates, currencies), the readiness "traffic lights" that
must be green before anything is pushed, and the optional creation of missing mapped account codes."""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import settings
from include.omono_xero_sync.state import codes_in_use as state_codes_in_use
from include.omono_xero_sync.state import get_setting
from include.omono_xero_sync.state import tax_mappings as state_tax_mappings

log = logging.getLogger(__name__)
S = settings.STATE_SCHEMA
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")


@dataclass
class Reference:
    organisation: dict
    accounts: list[dict]
    tax_rates: list[dict]
    currencies: list[str]

    @property
    def active_account_codes(self) -> set[str]:
        return {a["Code"].upper() for a in self.accounts if a.get("Status") == "ACTIVE" and a.get("Code")}

    @property
    def active_tax_types(self) -> set[str]:
        return {t["TaxType"] for t in self.tax_rates if t.get("Status") == "ACTIVE"}

    @property
    def lock(self) -> tuple[date | None, str]:
        """The date on or before which Xero refuses documents, and which lock it is. Xero has a lock for all users
        but advisers (PeriodLockDate) and one for everyone (EndOfYearLockDate); which applies to the connection
        depends on the role of the user who connected it, so the later one is taken."""
        dates = [(date.fromisoformat(self.organisation[k]), label) for k, label in (
            ("PeriodLockDate", "lock date for all users but advisers"), ("EndOfYearLockDate", "end of year lock date"))
            if self.organisation.get(k)]
        if not dates:
            return None, ""
        when, label = max(dates)
        return when, f"{label} ({when:%d %b %Y})"


def read_from_xero(client: Any) -> Reference:
    """Four GETs: Organisation, Accounts, TaxRates, Currencies."""
    org = client.read("get_organisations").organisations[0]
    accounts = client.read("get_accounts").accounts or []
    rates = client.read("get_tax_rates").tax_rates or []
    currencies = client.read("get_currencies").currencies or []

    def enum(v: Any) -> Any:
        return getattr(v, "value", v)

    return Reference(
        organisation={"OrganisationID": org.organisation_id, "Name": org.name, "ShortCode": org.short_code,
                      "BaseCurrency": enum(org.base_currency), "FinancialYearEndDay": org.financial_year_end_day,
                      "FinancialYearEndMonth": org.financial_year_end_month, "CountryCode": enum(org.country_code),
                      "PeriodLockDate": _day(org.period_lock_date),
                      "EndOfYearLockDate": _day(org.end_of_year_lock_date)},
        accounts=[{"Code": a.code, "Name": a.name, "Type": enum(a.type), "Status": enum(a.status),
                   "TaxType": a.tax_type, "Class": enum(a._class) if hasattr(a, "_class") else None,
                   "AccountID": a.account_id} for a in accounts],
        tax_rates=[{"TaxType": t.tax_type, "Name": t.name, "Status": enum(t.status),
                    "EffectiveRate": float(t.effective_rate or 0), "CanApplyToRevenue": bool(t.can_apply_to_revenue),
                    "CanApplyToExpenses": bool(t.can_apply_to_expenses)} for t in rates],
        currencies=[enum(c.code) for c in currencies])


def _day(value: Any) -> str | None:
    return value.isoformat() if value else None


def save(conn: psycopg.Connection, ref: Reference) -> None:
    for kind, data in asdict(ref).items():
        conn.execute(f"INSERT INTO {S}.xero_reference (kind, data) VALUES (%s, %s) ON CONFLICT (kind) DO UPDATE "
                     "SET data = EXCLUDED.data, read_at = now()", (kind, Jsonb(data)))
    conn.commit()


def load(conn: psycopg.Connection) -> Reference:
    rows = {r["kind"]: r["data"] for r in conn.execute(f"SELECT kind, data FROM {S}.xero_reference")}
    if len(rows) < 4:
        raise RuntimeError("Xero reference data has not been read yet: the readiness task runs first.")
    return Reference(**{k: rows[k] for k in ("organisation", "accounts", "tax_rates", "currencies")})


# -- readiness ------------------------------------------------------------------------------------------------
@dataclass
class Check:
    key: str
    title: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True
    items: list[str] = field(default_factory=list)

    def line(self) -> str:
        light = "GREEN" if self.ok else ("RED" if self.blocking else "AMBER")
        text = f"[{light}] {self.title}: {self.detail}"
        return text if self.ok else f"{text} -> {self.fix}"


def readiness(omono: psycopg.Connection, state: psycopg.Connection, ref: Reference) -> list[Check]:
    """Omono's setup-screen traffic lights. Blocking ones stop the run; the others only hold the records they
    affect (an unmapped code holds the documents that use it, the rest still go)."""
    business = omono.execute("SELECT * FROM omono.business_settings WHERE id = 1").fetchone()
    if business is None:
        return [Check("omono", "Omono business settings", False, "omono.business_settings has no row",
                      "Complete the business settings in Omono.")]
    org = ref.organisation
    checks = [Check("connection", "Connection to Xero", True, f"connected to '{org['Name']}'")]
    same_base = business["base_currency"].strip() == org["BaseCurrency"]
    checks.append(Check("base_currency", "Base currency", same_base,
                        f"Omono {business['base_currency']}, Xero {org['BaseCurrency']}",
                        "The base currencies must be the same: change Omono's base currency or connect the Xero "
                        "organisation that uses it."))
    omono_fy = (business["financial_year_end_day"], business["financial_year_end_month"])
    xero_fy = (org["FinancialYearEndDay"], org["FinancialYearEndMonth"])
    checks.append(Check("financial_year_end", "Financial year end", omono_fy == xero_fy,
                        f"Omono {_fy(omono_fy)}, Xero {_fy(xero_fy)}",
                        "Make the financial year end the same in Omono's business settings and in Xero "
                        "(Settings > Financial settings)."))
    used = [r["code"].strip() for r in omono.execute("SELECT code FROM omono.currencies ORDER BY code")]
    missing = [c for c in used if c not in ref.currencies]
    checks.append(Check("currencies", "Currencies enabled in Xero", not missing,
                        "all enabled" if not missing else f"missing in Xero: {', '.join(missing)}",
                        "Add these currencies in Xero (Settings > Currencies); Omono never adds them. Documents "
                        "in them are held until then.", blocking=False, items=missing))
    for kind in ("sales", "purchase"):
        codes = codes_in_use(omono, state, kind)
        mapped = {r["omono_code"]: r for r in state.execute(
            f"SELECT omono_code, xero_account_code, create_in_xero FROM {S}.account_mappings WHERE kind = %s",
            (kind,))}
        unmapped = [c for c in codes if c not in mapped]
        auto = bool(get_setting(state, "auto_create_accounts"))
        unknown = [f"{c} -> {m['xero_account_code']}" for c, m in mapped.items()
                   if m["xero_account_code"].upper() not in ref.active_account_codes
                   and not (m["create_in_xero"] or auto)]
        problems = [f"{c} (not mapped)" for c in unmapped] + [f"{u} (no such active account in Xero)"
                                                              for u in unknown]
        checks.append(Check(f"{kind}_codes", f"{kind.capitalize()} analysis codes mapped", not problems,
                            "all mapped" if not problems else "; ".join(problems),
                            f"Map each {kind} analysis code to an active Xero account on the Mappings page (or let "
                            "the next run create it). Documents using these codes are held until then.",
                            blocking=False, items=unmapped + [u.split(" ->")[0] for u in unknown]))
    omono_rates = {r["code"]: r["rate"] for r in omono.execute("SELECT code, rate FROM omono.tax_rates")}
    taxes = sorted(set(omono_rates) | _used(omono, state, "tax_code", "sales")
                   | _used(omono, state, "tax_code", "purchase"))
    tax_map = state_tax_mappings(state)
    xero_rates = {t["TaxType"]: t["EffectiveRate"] for t in ref.tax_rates}
    plural = {"sales": "sales", "purchase": "purchases"}
    bad_tax = [f"{t} for {plural[kind]} (not mapped)" for kind in ("sales", "purchase") for t in taxes
               if (kind, t) not in tax_map]
    bad_tax += [f"{t} for {plural[kind]} -> {x} (no such active tax rate in Xero)"
                for (kind, t), x in tax_map.items() if x not in ref.active_tax_types]
    bad_tax += [f"{t} for {plural[kind]} -> {x} (Omono {_pct(omono_rates[t])}, Xero {_pct(xero_rates[x])})"
                for (kind, t), x in tax_map.items() if x in ref.active_tax_types and t in omono_rates
                and Decimal(str(omono_rates[t])) != Decimal(str(xero_rates[x]))]
    checks.append(Check("tax_rates", "Tax rates mapped", not bad_tax, "all mapped" if not bad_tax else
                        "; ".join(bad_tax), "Map each Omono tax rate to a Xero tax rate of the same rate, for sales "
                        "and for purchases, on the Mappings page. Documents using these rates are held until then.",
                        blocking=False, items=[b.split(" ")[0] for b in bad_tax]))
    lock_date, lock_label = ref.lock
    checks.append(Check("lock_date", "Lock dates in Xero", True,
                        f"Xero refuses documents dated on or before its {lock_label}; such documents are held"
                        if lock_date else "none set"))
    return checks


_LINES = {"sales": ("dispatch_invoice_lines", "credit_note_lines"),
          "purchase": ("delivery_invoice_lines", "credit_note_lines")}


def _used(omono: psycopg.Connection, state: psycopg.Connection, field: str, kind: str) -> set[str]:
    """Codes Omono's document lines of this kind actually carry, listed in Omono's tables or not: kept by the
    extract as documents pass (state.note_codes), read from Omono's lines once, the first time."""
    if not get_setting(state, "codes_in_use_seeded"):
        _seed_codes(omono, state)
    return state_codes_in_use(state, kind, field)


def _seed_codes(omono: psycopg.Connection, state: psycopg.Connection) -> None:
    from include.omono_xero_sync.state import note_codes, put_setting

    for kind, (invoices, credit_lines) in _LINES.items():
        lines = omono.execute(
            f"SELECT DISTINCT analysis_code, tax_code FROM omono.{invoices} UNION SELECT DISTINCT l.analysis_code, "
            f"l.tax_code FROM omono.{credit_lines} l JOIN omono.credit_notes c ON c.id = l.credit_note_id WHERE "
            "c.kind = %s", (kind,)).fetchall()
        note_codes(state, kind, [{"lines": lines}])
    put_setting(state, "codes_in_use_seeded", True)
    state.commit()


def codes_in_use(omono: psycopg.Connection, state: psycopg.Connection, kind: str) -> list[str]:
    """Every analysis code of this kind: Omono's code table and whatever its document lines use."""
    listed = {r["code"] for r in omono.execute(f"SELECT code FROM omono.{kind}_analysis_codes")}
    return sorted(listed | _used(omono, state, "analysis_code", kind))


def _pct(rate: Any) -> str:
    return f"{Decimal(str(rate)).normalize():f}%"


def _fy(day_month: tuple[int, int]) -> str:
    day, month = day_month
    return f"{day} {MONTHS[month - 1]}" if month and 1 <= month <= 12 else "not set"


# -- account creation -----------------------------------------------------------------------------------------
def create_missing_accounts(client: Any, state: psycopg.Connection, ref: Reference) -> list[str]:
    """Create mapped account codes that Xero lacks, where the mapping (or the global setting) asks for it."""
    from xero_python.exceptions import AccountingBadRequestException

    from include.omono_xero_sync.xero_api import to_model

    auto = bool(get_setting(state, "auto_create_accounts"))
    wanted = state.execute(f"SELECT * FROM {S}.account_mappings ORDER BY kind, omono_code").fetchall()
    done: list[str] = []
    existing = ref.active_account_codes | {a["Code"].upper() for a in ref.accounts if a.get("Code")}
    for m in wanted:
        code = m["xero_account_code"].upper()
        if code in existing or not (m["create_in_xero"] or auto):
            continue
        kind_type = "REVENUE" if m["kind"] == "sales" else "DIRECTCOSTS"
        name = m["xero_account_name"] or f"{m['kind'].capitalize()} - {m['omono_code']}"
        body = {"Code": m["xero_account_code"], "Name": name, "Type": kind_type,
                "Description": f"Created by omono-xero-sync for Omono {m['kind']} analysis code {m['omono_code']}"}
        try:
            made = client.write("create_account", to_model("Account", body),
                                idempotency_key=f"oxs-account-{m['kind']}-{code}")
        except AccountingBadRequestException as exc:
            log.error("Could not create account %s in Xero: %s", code, exc.reason)
            continue
        account = made.accounts[0]
        ref.accounts.append({"Code": account.code, "Name": account.name, "Type": kind_type, "Status": "ACTIVE",
                             "TaxType": account.tax_type, "AccountID": account.account_id})
        existing.add(code)
        done.append(f"{account.code} {account.name}")
    if done:
        save(state, ref)
    return done
