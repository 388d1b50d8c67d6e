"""What the pages read: the sync log and record state (schema xero_sync, through the pipeline's light modules and
plain SELECTs) and, to show what a bookkeeper recognises, Omono's own records (company, date, currency, total).
The two may live in different databases, so they are never joined in SQL: the state side is read first, then
Omono is asked about those ids only."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from datetime import date
from typing import Any
from urllib.parse import quote

import psycopg

from include.omono_xero_sync import entities, settings, state
from include.omono_xero_sync.reference import MONTHS
from omono_xero_sync_ui.security import DAG_ID

S = settings.STATE_SCHEMA
PAGE_SIZE = 100
ACTIONS = ("created", "updated", "unchanged", "deleted", "voided", "allocated", "held", "failed", "skipped",
           "retried", "unskipped")
ATTENTION = ("held", "failed")
SYNCED = ("created", "updated", "deleted", "voided", "allocated")
XERO_PATHS = {"contact": "/Contacts/View/{id}", "dispatch_invoice": "/AccountsReceivable/View.aspx?InvoiceID={id}",
              "delivery_invoice": "/AccountsPayable/Edit.aspx?InvoiceID={id}",
              "sales_credit_note": "/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={id}",
              "purchase_credit_note": "/AccountsPayable/ViewCreditNote.aspx?creditNoteID={id}"}
OMONO_PATHS = {"contact": "companies", "dispatch_invoice": "dispatch-invoices", "delivery_invoice":
               "delivery-invoices", "sales_credit_note": "credit-notes", "purchase_credit_note": "credit-notes"}
# Omono's document tables: (table, line table, line key, has a discount column, kind filter).
DOCUMENT_TABLES = {
    "dispatch_invoice": ("dispatch_invoices", "dispatch_invoice_lines", "invoice_id", True, None),
    "delivery_invoice": ("delivery_invoices", "delivery_invoice_lines", "invoice_id", False, None),
    "sales_credit_note": ("credit_notes", "credit_note_lines", "credit_note_id", False, "sales"),
    "purchase_credit_note": ("credit_notes", "credit_note_lines", "credit_note_id", False, "purchase"),
}


@dataclass(frozen=True)
class Filters:
    """Which sync-log rows a page, its CSV export and its bulk actions are about."""

    dag_id: str = DAG_ID
    run_id: str | None = None
    task_id: str | None = None
    entity: str | None = None
    action: str | None = None
    text: str | None = None
    date_from: date | None = None
    date_to: date | None = None
    page: int = 1

    def params(self, **changes: Any) -> dict[str, str]:
        """The filters as address parameters (paging, CSV export, bulk actions), without empty ones."""
        names = {"text": "q", "date_from": "from", "date_to": "to"}
        values = asdict(replace(self, **changes))
        return {names.get(k, k): str(v) for k, v in values.items() if v not in (None, "") and k != "dag_id"}


def _like(text: str) -> str:
    """A search term matched literally: % and _ typed by the user are not wildcards."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def matching_records(omono: psycopg.Connection, text: str) -> tuple[list[str], list[int]]:
    """Records whose company name contains `text` (the company itself and its documents), as parallel lists."""
    like = _like(text)
    parts = ["SELECT 'contact' AS entity, id FROM omono.companies WHERE name ILIKE %(like)s"]
    for name, (table, _lines, _key, _disc, kind) in DOCUMENT_TABLES.items():
        only = f" AND d.kind = '{kind}'" if kind else ""
        parts.append(f"SELECT '{name}', d.id FROM omono.{table} d JOIN omono.companies c ON c.id = d.company_id "
                     f"WHERE c.name ILIKE %(like)s{only}")
    rows = omono.execute(" UNION ALL ".join(parts), {"like": like}).fetchall()
    return [r["entity"] for r in rows], [r["id"] for r in rows]


def _where(omono: psycopg.Connection, f: Filters, *, narrow: bool = True) -> tuple[str, list[Any]]:
    """SQL conditions for `f`; without `narrow`, only where and when (for the counts table)."""
    where, args = ["dag_id = %s"], [f.dag_id]
    for column, value in (("run_id", f.run_id), ("task_id", f.task_id)):
        if value:
            where.append(f"{column} = %s")
            args.append(value)
    if f.date_from:
        where.append("created_at >= (%s::date)::timestamp AT TIME ZONE 'UTC'")
        args.append(f.date_from)
    if f.date_to:
        where.append("created_at < (%s::date + 1)::timestamp AT TIME ZONE 'UTC'")
        args.append(f.date_to)
    if narrow:
        for column, value in (("entity", f.entity), ("action", f.action)):
            if value:
                where.append(f"{column} = %s")
                args.append(value)
        if f.text:
            names, ids = matching_records(omono, f.text)
            where.append("(omono_number ILIKE %s OR messages::text ILIKE %s OR xero_id::text ILIKE %s OR "
                         "(entity, omono_id) IN (SELECT * FROM unnest(%s::text[], %s::bigint[])))")
            args += [_like(f.text)] * 3 + [names, ids]
    return " AND ".join(where), args


class Linker:
    """Deep links: the record in Omono (setting `omono_url_pattern`) and in Xero (organisation short code)."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.pattern = str(state.get_setting(conn, "omono_url_pattern"))
        row = conn.execute(f"SELECT data->>'ShortCode' AS code FROM {S}.xero_reference WHERE kind = 'organisation'"
                           ).fetchone()
        self.short_code = row["code"] if row else None

    def __call__(self, entity: str, omono_id: int, xero_id: Any) -> dict[str, str | None]:
        omono = self.pattern.format(entity=OMONO_PATHS.get(entity, entity), id=omono_id)
        if not xero_id:
            return {"omono": omono, "xero": None}
        target = XERO_PATHS[entity].format(id=xero_id)
        if self.short_code:
            return {"omono": omono, "xero": f"https://go.xero.com/organisationlogin/default.aspx?shortcode="
                                            f"{quote(self.short_code)}&redirecturl={quote(target, safe='')}"}
        return {"omono": omono, "xero": f"https://go.xero.com{target}"}


def omono_details(omono: psycopg.Connection, keys: set[tuple[str, int]]) -> dict[tuple[str, int], dict]:
    """Company name, document date, currency and total (tax included, rounded per line as Xero does) per record."""
    out: dict[tuple[str, int], dict] = {}
    ids = {name: [i for e, i in keys if e == name] for name in {e for e, _ in keys}}
    if ids.get("contact"):
        for r in omono.execute("SELECT id, name FROM omono.companies WHERE id = ANY(%s)", (ids["contact"],)):
            out[("contact", r["id"])] = {"company": r["name"]}
    for name, (table, lines, key, discounted, _kind) in DOCUMENT_TABLES.items():
        if not ids.get(name):
            continue
        net = "round(l.quantity * l.unit_price" + (" * (1 - l.discount_percent / 100)" if discounted else "") + ", 2)"
        for r in omono.execute(
                f"SELECT d.id, c.name AS company, d.issue_date, d.currency_code, sum({net}) + "
                f"sum(round({net} * coalesce(t.rate, 0) / 100, 2)) AS total FROM omono.{table} d "
                f"JOIN omono.companies c ON c.id = d.company_id LEFT JOIN omono.{lines} l ON l.{key} = d.id "
                "LEFT JOIN omono.tax_rates t ON t.code = l.tax_code WHERE d.id = ANY(%s) GROUP BY d.id, c.name",
                (ids[name],)):
            out[(name, r["id"])] = {"company": r["company"], "date": r["issue_date"],
                                    "currency": r["currency_code"].strip(), "total": r["total"]}
    return out


def _dress(conn: psycopg.Connection, omono: psycopg.Connection, rows: list[dict]) -> list[dict]:
    """Add what a bookkeeper recognises (label, company, date, currency, total) and the deep links."""
    link = Linker(conn)
    facts = omono_details(omono, {(r["entity"], r["omono_id"]) for r in rows})
    for r in rows:
        r["label"] = entities.BY_NAME[r["entity"]].noun
        r["links"] = link(r["entity"], r["omono_id"], r["xero_id"])
        r["omono"] = facts.get((r["entity"], r["omono_id"]), {})
    return rows


LOG_COLUMNS = ("id, dag_id, run_id, task_id, entity, omono_id, omono_number, action, xero_id, messages, dry_run, "
               "created_at")


def log_page(conn: psycopg.Connection, omono: psycopg.Connection, f: Filters, *, red_first: bool) -> dict[str, Any]:
    """One page of rows matching `f` (red ones first on a run's page; newest first across runs) and the counts
    per entity and action for the same run or dates."""
    clause, args = _where(omono, f)
    total = conn.execute(f"SELECT count(*) AS n FROM {S}.sync_log WHERE {clause}", args).fetchone()["n"]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(f.page, 1), pages)
    order = "(action IN ('held', 'failed')) DESC, id" if red_first else "id DESC"
    rows = conn.execute(f"SELECT {LOG_COLUMNS} FROM {S}.sync_log WHERE {clause} ORDER BY {order} LIMIT %s OFFSET %s",
                        [*args, PAGE_SIZE, (page - 1) * PAGE_SIZE]).fetchall()
    return {"rows": _dress(conn, omono, rows), "total": total, "page": page, "pages": pages,
            "counts": counts(conn, omono, f)}


def counts(conn: psycopg.Connection, omono: psycopg.Connection, f: Filters) -> dict[str, dict[str, int]]:
    clause, args = _where(omono, f, narrow=False)
    out: dict[str, dict[str, int]] = {}
    for r in conn.execute(f"SELECT entity, action, count(*) AS n FROM {S}.sync_log WHERE {clause} "
                          "GROUP BY entity, action", args):
        out.setdefault(r["entity"], {})[r["action"]] = r["n"]
    return out


def all_rows(conn: psycopg.Connection, omono: psycopg.Connection, f: Filters, chunk: int = 1000
             ) -> Iterator[dict]:
    """Every row matching `f`, oldest first, dressed in chunks (the CSV export)."""
    clause, args = _where(omono, f)
    last = 0
    while rows := conn.execute(f"SELECT {LOG_COLUMNS} FROM {S}.sync_log WHERE {clause} AND id > %s ORDER BY id "
                               "LIMIT %s", [*args, last, chunk]).fetchall():
        yield from _dress(conn, omono, rows)
        last = rows[-1]["id"]


def red_records(conn: psycopg.Connection, omono: psycopg.Connection, f: Filters) -> list[tuple[str, int]]:
    """The records behind the red (held or refused) rows matching `f`: what a bulk Retry or Skip acts on."""
    clause, args = _where(omono, f)
    rows = conn.execute(f"SELECT DISTINCT entity, omono_id FROM {S}.sync_log WHERE {clause} AND action IN "
                        "('held', 'failed')", args).fetchall()
    return [(r["entity"], r["omono_id"]) for r in rows]


def statuses(conn: psycopg.Connection, keys: list[tuple[str, int]]) -> dict[str, int]:
    """How many of these records stand at each status now."""
    rows = conn.execute(f"SELECT status, count(*) AS n FROM {S}.record_state r JOIN unnest(%s::text[], "
                        "%s::bigint[]) AS k(entity, omono_id) USING (entity, omono_id) GROUP BY status",
                        ([k[0] for k in keys], [k[1] for k in keys])).fetchall()
    return {r["status"]: r["n"] for r in rows}


def earlier_unresolved(conn: psycopg.Connection, omono: psycopg.Connection, run_id: str) -> list[dict]:
    rows = conn.execute(
        f"SELECT entity, omono_id, omono_number, status, last_messages, last_run_id, xero_id FROM {S}.record_state "
        "WHERE status IN ('held', 'failed') AND (last_run_id IS DISTINCT FROM %s) ORDER BY entity, omono_number",
        (run_id,)).fetchall()
    return _dress(conn, omono, rows)


def history(conn: psycopg.Connection, dag_id: str, runs: int = 20) -> list[dict]:
    """Synced and red records per run (not dry runs, not actions in the UI), oldest first, for the chart."""
    rows = conn.execute(
        f"SELECT run_id, min(created_at) AS at, count(*) FILTER (WHERE action = ANY(%s)) AS synced, "
        "count(*) FILTER (WHERE action IN ('held', 'failed')) AS failed "
        f"FROM {S}.sync_log WHERE dag_id = %s AND task_id <> 'ui' AND NOT dry_run GROUP BY run_id "
        "ORDER BY min(id) DESC LIMIT %s", (list(SYNCED), dag_id, runs)).fetchall()
    return list(reversed(rows))


def latest_run(conn: psycopg.Connection) -> dict | None:
    return conn.execute(f"SELECT dag_id, run_id FROM {S}.sync_log WHERE task_id <> 'ui' ORDER BY id DESC LIMIT 1"
                        ).fetchone()


def record(conn: psycopg.Connection, omono: psycopg.Connection, entity: str, omono_id: int) -> dict | None:
    """One record: where it stands, every attempt (newest first) with what was sent and answered, and links."""
    row = conn.execute(f"SELECT * FROM {S}.record_state WHERE entity = %s AND omono_id = %s",
                       (entity, omono_id)).fetchone()
    if row is None:
        return None
    row["attempts"] = conn.execute(f"SELECT * FROM {S}.sync_log WHERE entity = %s AND omono_id = %s ORDER BY id DESC",
                                   (entity, omono_id)).fetchall()
    row["failed_allocation"] = conn.execute(
        f"SELECT messages FROM {S}.allocations WHERE entity = %s AND omono_id = %s AND status = 'failed'",
        (entity, omono_id)).fetchone()
    return _dress(conn, omono, [row])[0]


def reference_data(conn: psycopg.Connection) -> dict[str, Any]:
    rows = {r["kind"]: r for r in conn.execute(f"SELECT kind, data, read_at FROM {S}.xero_reference")}
    return {k: rows[k]["data"] for k in rows} | {"read_at": rows["organisation"]["read_at"] if rows else None}


def active_accounts(ref: dict[str, Any]) -> list[dict]:
    return [a for a in ref.get("accounts", []) if a.get("Status") == "ACTIVE" and a.get("Code")]


def active_tax_rates(ref: dict[str, Any]) -> list[dict]:
    return [t for t in ref.get("tax_rates", []) if t.get("Status") == "ACTIVE"]


def _codes_in_use(omono: psycopg.Connection, column: str, kind: str | None) -> set[str]:
    """Codes Omono's document lines use: sales or purchase analysis codes (`kind`), or tax codes (kind None)."""
    tables = {"sales": (("dispatch_invoice_lines", "true"), ("credit_note_lines", "n.kind = 'sales'")),
              "purchase": (("delivery_invoice_lines", "true"), ("credit_note_lines", "n.kind = 'purchase'"))}
    parts = [(t, cond) for k, pair in tables.items() if kind in (None, k) for t, cond in pair]
    sql = " UNION ".join(
        f"SELECT DISTINCT l.{column} AS code FROM omono.{t} l "
        + ("LEFT JOIN omono.credit_notes n ON n.id = l.credit_note_id " if "credit" in t else "")
        + f"WHERE l.{column} IS NOT NULL AND {cond}" for t, cond in parts)
    return {r["code"] for r in omono.execute(sql)}


def mapping_rows(omono: psycopg.Connection, conn: psycopg.Connection) -> dict[str, list[dict]]:
    """Every Omono analysis code and tax rate, from Omono's code tables and from what its document lines use (a
    code missing from the tables is listed too, marked), beside its mapping."""
    accounts = {(r["kind"], r["omono_code"]): r for r in conn.execute(f"SELECT * FROM {S}.account_mappings")}
    taxes = state.tax_mappings(conn)
    out: dict[str, list[dict]] = {"sales": [], "purchase": [], "tax": []}
    for kind in ("sales", "purchase"):
        listed = {r["code"]: r["description"] for r in omono.execute(
            f"SELECT code, description FROM omono.{kind}_analysis_codes")}
        for code in sorted(set(listed) | _codes_in_use(omono, "analysis_code", kind)):
            m = accounts.get((kind, code))
            out[kind].append({"code": code, "description": listed.get(code), "listed": code in listed,
                              "account": m["xero_account_code"] if m else None,
                              "create": bool(m and m["create_in_xero"]), "name": m["xero_account_name"] if m else None})
    listed_tax = {r["code"]: r for r in omono.execute("SELECT code, name, rate FROM omono.tax_rates")}
    for code in sorted(set(listed_tax) | _codes_in_use(omono, "tax_code", None)):
        r = listed_tax.get(code, {})
        out["tax"].append({"code": code, "name": r.get("name"), "rate": r.get("rate"), "listed": code in listed_tax,
                           "sales": taxes.get(("sales", code)), "purchase": taxes.get(("purchase", code))})
    return out


def connection_info(conn: psycopg.Connection) -> dict[str, Any]:
    """The Connection table of General options and the first light of Readiness: connected (tokens stored) or
    not, and what was last read from the organisation."""
    ref = reference_data(conn)
    org = ref.get("organisation") or {}
    fy = (f"{org['FinancialYearEndDay']} {MONTHS[org['FinancialYearEndMonth'] - 1]}"
          if org.get("FinancialYearEndMonth") else None)
    last = conn.execute(f"SELECT max(created_at) AS at FROM {S}.sync_log WHERE action = ANY(%s) AND NOT dry_run",
                        (list(SYNCED),)).fetchone()["at"]
    usage = conn.execute(f"SELECT day_remaining, updated_at FROM {S}.api_usage ORDER BY updated_at DESC LIMIT 1"
                         ).fetchone()
    token = conn.execute(f"SELECT updated_at FROM {S}.oauth_tokens ORDER BY updated_at DESC LIMIT 1").fetchone()
    return {"name": org.get("Name"), "base_currency": org.get("BaseCurrency"), "financial_year_end": fy,
            "short_code": org.get("ShortCode"), "last_sync": last, "read_at": ref.get("read_at"),
            "calls_left": usage["day_remaining"] if usage else None, "connected": token is not None,
            "connected_at": token["updated_at"] if token else None,
            "last_disconnect": state.get_setting(conn, "last_disconnect"),
            "last_reset": state.get_setting(conn, "last_reset")}


def csv_cell(value: Any) -> str:
    """A spreadsheet must not run a formula someone typed into Omono (CSV injection)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def reconciliation(conn: psycopg.Connection, rid: int | None) -> dict[str, Any] | None:
    """A reconciliation (the latest when `rid` is None): its range and cost, per entity and currency both sides'
    count and total, and every difference."""
    head = conn.execute(f"SELECT * FROM {S}.reconciliations WHERE id = coalesce(%s, (SELECT max(id) FROM "
                        f"{S}.reconciliations))", (rid,)).fetchone()
    if head is None:
        return None
    totals = conn.execute(f"SELECT * FROM {S}.reconciliation_totals WHERE reconciliation_id = %s ORDER BY entity, "
                          "currency", (head["id"],)).fetchall()
    differences = conn.execute(f"SELECT * FROM {S}.reconciliation_differences WHERE reconciliation_id = %s ORDER BY "
                               "kind, entity, omono_number", (head["id"],)).fetchall()
    return {**head, "totals": totals, "differences": differences}


def reconciliation_of_run(conn: psycopg.Connection, dag_id: str, run_id: str) -> dict | None:
    return conn.execute(f"SELECT id, summary FROM {S}.reconciliations WHERE dag_id = %s AND run_id = %s ORDER BY id "
                        "DESC LIMIT 1", (dag_id, run_id)).fetchone()
