"""What the pages read and write in the integration's schema (through the pipeline's light state modules)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import entities, settings, state
from include.omono_xero_sync.reference import MONTHS

S = settings.STATE_SCHEMA
PAGE_SIZE = 100
ACTIONS = ("created", "updated", "unchanged", "deleted", "voided", "allocated", "held", "failed", "skipped")
ATTENTION = ("held", "failed")
XERO_PATHS = {"contact": "/Contacts/View/{id}", "dispatch_invoice": "/AccountsReceivable/View.aspx?InvoiceID={id}",
              "delivery_invoice": "/AccountsPayable/Edit.aspx?InvoiceID={id}",
              "sales_credit_note": "/AccountsReceivable/ViewCreditNote.aspx?creditNoteID={id}",
              "purchase_credit_note": "/AccountsPayable/ViewCreditNote.aspx?creditNoteID={id}"}
OMONO_PATHS = {"contact": "companies", "dispatch_invoice": "dispatch-invoices", "delivery_invoice":
               "delivery-invoices", "sales_credit_note": "credit-notes", "purchase_credit_note": "credit-notes"}


@dataclass
class Filters:
    entity: str | None = None
    action: str | None = None
    text: str | None = None
    task_id: str | None = None
    page: int = 1


def links(conn: psycopg.Connection, entity: str, omono_id: int, xero_id: Any) -> dict[str, str | None]:
    """Deep links: the record in Omono (the configured URL pattern) and in Xero (organisation short code)."""
    pattern = str(state.get_setting(conn, "omono_url_pattern"))
    omono = pattern.format(entity=OMONO_PATHS.get(entity, entity), id=omono_id)
    xero = None
    if xero_id:
        row = conn.execute(f"SELECT data->>'ShortCode' AS code FROM {S}.xero_reference WHERE kind = 'organisation'"
                           ).fetchone()
        target = XERO_PATHS[entity].format(id=xero_id)
        if row and row["code"]:
            xero = (f"https://go.xero.com/organisationlogin/default.aspx?shortcode={quote(row['code'])}"
                    f"&redirecturl={quote(target, safe='')}")
        else:
            xero = f"https://go.xero.com{target}"
    return {"omono": omono, "xero": xero}


def run_log(conn: psycopg.Connection, dag_id: str, run_id: str, f: Filters) -> dict[str, Any]:
    where, args = ["dag_id = %s", "run_id = %s"], [dag_id, run_id]
    if f.task_id:
        where.append("task_id = %s")
        args.append(f.task_id)
    counts: dict[str, dict[str, int]] = {}
    for r in conn.execute(f"SELECT entity, action, count(*) AS n FROM {S}.sync_log WHERE {' AND '.join(where)} "
                          "GROUP BY entity, action", args):
        counts.setdefault(r["entity"], {})[r["action"]] = r["n"]
    if f.entity:
        where.append("entity = %s")
        args.append(f.entity)
    if f.action:
        where.append("action = %s")
        args.append(f.action)
    if f.text:
        where.append("(omono_number ILIKE %s OR messages::text ILIKE %s OR xero_id::text ILIKE %s)")
        args += [f"%{f.text}%"] * 3
    clause = " AND ".join(where)
    total = conn.execute(f"SELECT count(*) AS n FROM {S}.sync_log WHERE {clause}", args).fetchone()["n"]
    pages = max(1, math.ceil(total / PAGE_SIZE))
    page = min(max(f.page, 1), pages)
    rows = conn.execute(f"SELECT id, task_id, entity, omono_id, omono_number, action, xero_id, messages, dry_run, "
                        f"created_at FROM {S}.sync_log WHERE {clause} ORDER BY (action IN ('held', 'failed')) DESC, "
                        f"id LIMIT %s OFFSET %s", [*args, PAGE_SIZE, (page - 1) * PAGE_SIZE]).fetchall()
    for r in rows:
        r["links"] = links(conn, r["entity"], r["omono_id"], r["xero_id"])
        r["label"] = entities.BY_NAME[r["entity"]].noun
    earlier = conn.execute(
        f"SELECT entity, omono_id, omono_number, status, last_messages, last_run_id, xero_id FROM {S}.record_state "
        "WHERE status IN ('held', 'failed') AND (last_run_id IS DISTINCT FROM %s) ORDER BY entity, omono_number",
        (run_id,)).fetchall()
    for r in earlier:
        r["links"] = links(conn, r["entity"], r["omono_id"], r["xero_id"])
        r["label"] = entities.BY_NAME[r["entity"]].noun
    return {"counts": counts, "rows": rows, "total": total, "page": page, "pages": pages, "earlier": earlier,
            "history": history(conn, dag_id)}


def history(conn: psycopg.Connection, dag_id: str, runs: int = 20) -> list[dict]:
    """Synced and failed records per run, oldest first, for the small chart."""
    rows = conn.execute(
        f"SELECT run_id, min(created_at) AS at, count(*) FILTER (WHERE action IN ('created', 'updated', 'deleted', "
        "'voided', 'allocated')) AS synced, count(*) FILTER (WHERE action IN ('held', 'failed')) AS failed "
        f"FROM {S}.sync_log WHERE dag_id = %s AND NOT dry_run GROUP BY run_id ORDER BY min(id) DESC LIMIT %s",
        (dag_id, runs)).fetchall()
    return list(reversed(rows))


def latest_run(conn: psycopg.Connection) -> dict | None:
    return conn.execute(f"SELECT dag_id, run_id FROM {S}.sync_log WHERE task_id <> 'ui' ORDER BY id DESC LIMIT 1"
                        ).fetchone()


def record(conn: psycopg.Connection, entity: str, omono_id: int) -> dict | None:
    row = conn.execute(f"SELECT * FROM {S}.record_state WHERE entity = %s AND omono_id = %s",
                       (entity, omono_id)).fetchone()
    if row is None:
        return None
    row["attempts"] = conn.execute(f"SELECT * FROM {S}.sync_log WHERE entity = %s AND omono_id = %s ORDER BY id DESC",
                                   (entity, omono_id)).fetchall()
    row["links"] = links(conn, entity, omono_id, row["xero_id"])
    row["label"] = entities.BY_NAME[entity].noun
    return row


def retry(conn: psycopg.Connection, entity: str, omono_id: int, user: str) -> None:
    """Send again on the next run, even if Xero refused exactly this content before."""
    conn.execute(f"UPDATE {S}.record_state SET status = 'pending', last_sent = NULL, skipped_by = NULL, "
                 "last_messages = %s, updated_at = now() WHERE entity = %s AND omono_id = %s",
                 (Jsonb([f"Retry requested by {user}."]), entity, omono_id))
    conn.commit()


def skip(conn: psycopg.Connection, entity: str, omono_id: int, user: str) -> None:
    """Stop trying (and stop showing it red) until someone chooses Retry; logged with who and when."""
    row = conn.execute(f"UPDATE {S}.record_state SET status = 'skipped', skipped_by = %s, updated_at = now() "
                       "WHERE entity = %s AND omono_id = %s RETURNING omono_number, updated_at",
                       (user, entity, omono_id)).fetchone()
    if row:
        conn.execute(f"INSERT INTO {S}.sync_log (dag_id, run_id, task_id, entity, omono_id, omono_number, action, "
                     "messages) VALUES ('omono_xero_sync', 'ui', 'ui', %s, %s, %s, 'skipped', %s)",
                     (entity, omono_id, row["omono_number"],
                      Jsonb([f"Skipped by {user} on {row['updated_at']:%Y-%m-%d %H:%M} UTC."])))
    conn.commit()


def reference_data(conn: psycopg.Connection) -> dict[str, Any]:
    rows = {r["kind"]: r for r in conn.execute(f"SELECT kind, data, read_at FROM {S}.xero_reference")}
    return {k: rows[k]["data"] for k in rows} | {"read_at": rows["organisation"]["read_at"] if rows else None}


def mapping_rows(omono: psycopg.Connection, conn: psycopg.Connection) -> dict[str, list[dict]]:
    accounts = {(r["kind"], r["omono_code"]): r for r in conn.execute(f"SELECT * FROM {S}.account_mappings")}
    taxes = state.tax_mappings(conn)
    out: dict[str, list[dict]] = {"sales": [], "purchase": [], "tax": []}
    for kind in ("sales", "purchase"):
        for r in omono.execute(f"SELECT code, description FROM omono.{kind}_analysis_codes ORDER BY code"):
            m = accounts.get((kind, r["code"]))
            out[kind].append({"code": r["code"], "description": r["description"],
                              "account": m["xero_account_code"] if m else None,
                              "create": bool(m and m["create_in_xero"]), "name": m["xero_account_name"] if m else None})
    for r in omono.execute("SELECT code, name, rate FROM omono.tax_rates ORDER BY code"):
        out["tax"].append({"code": r["code"], "name": r["name"], "rate": r["rate"],
                           "sales": taxes.get(("sales", r["code"])), "purchase": taxes.get(("purchase", r["code"]))})
    return out


def connection_info(conn: psycopg.Connection) -> dict[str, Any]:
    ref = reference_data(conn)
    org = ref.get("organisation") or {}
    fy = (f"{org['FinancialYearEndDay']} {MONTHS[org['FinancialYearEndMonth'] - 1]}"
          if org.get("FinancialYearEndMonth") else None)
    last = conn.execute(f"SELECT max(created_at) AS at FROM {S}.sync_log WHERE action IN ('created', 'updated', "
                        "'deleted', 'voided') AND NOT dry_run").fetchone()["at"]
    usage = conn.execute(f"SELECT day_remaining, updated_at FROM {S}.api_usage ORDER BY updated_at DESC LIMIT 1"
                         ).fetchone()
    token = conn.execute(f"SELECT updated_at FROM {S}.oauth_tokens ORDER BY updated_at DESC LIMIT 1").fetchone()
    return {"name": org.get("Name"), "base_currency": org.get("BaseCurrency"), "financial_year_end": fy,
            "short_code": org.get("ShortCode"), "last_sync": last, "read_at": ref.get("read_at"),
            "calls_left": usage["day_remaining"] if usage else None, "connected": token is not None}
