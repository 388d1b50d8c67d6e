"""The integration's own state in schema xero_sync: user settings, mappings and where each record stands."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import settings, sync_log
from include.omono_xero_sync.sync_log import LogRow, RunContext

S = settings.STATE_SCHEMA
UNRESOLVED = ("pending", "sending", "held", "failed")


def get_setting(conn: psycopg.Connection, key: str) -> Any:
    row = conn.execute(f"SELECT value FROM {S}.settings WHERE key = %s", (key,)).fetchone()
    return row["value"] if row else settings.DEFAULT_SETTINGS.get(key)


def all_settings(conn: psycopg.Connection) -> dict[str, Any]:
    stored = {r["key"]: r["value"] for r in conn.execute(f"SELECT key, value FROM {S}.settings")}
    return {**settings.DEFAULT_SETTINGS, **stored}


def put_setting(conn: psycopg.Connection, key: str, value: Any, who: str | None = None) -> None:
    conn.execute(f"INSERT INTO {S}.settings (key, value, updated_by) VALUES (%s, %s, %s) ON CONFLICT (key) DO "
                 "UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by",
                 (key, Jsonb(value), who))


def account_mappings(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["omono_code"]): r["xero_account_code"]
            for r in conn.execute(f"SELECT kind, omono_code, xero_account_code FROM {S}.account_mappings")}


def tax_mappings(conn: psycopg.Connection) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["omono_tax_code"]): r["xero_tax_type"]
            for r in conn.execute(f"SELECT kind, omono_tax_code, xero_tax_type FROM {S}.tax_mappings")}


def put_account_mapping(conn: psycopg.Connection, kind: str, omono_code: str, xero_code: str,
                        create_in_xero: bool = False, name: str | None = None) -> None:
    conn.execute(f"INSERT INTO {S}.account_mappings (kind, omono_code, xero_account_code, create_in_xero, "
                 "xero_account_name) VALUES (%s, %s, %s, %s, %s) ON CONFLICT (kind, omono_code) DO UPDATE SET "
                 "xero_account_code = EXCLUDED.xero_account_code, create_in_xero = EXCLUDED.create_in_xero, "
                 "xero_account_name = EXCLUDED.xero_account_name, updated_at = now()",
                 (kind, omono_code, xero_code, create_in_xero, name))


def put_tax_mapping(conn: psycopg.Connection, kind: str, omono_code: str, xero_tax_type: str) -> None:
    conn.execute(f"INSERT INTO {S}.tax_mappings (kind, omono_tax_code, xero_tax_type) VALUES (%s, %s, %s) ON "
                 "CONFLICT (kind, omono_tax_code) DO UPDATE SET xero_tax_type = EXCLUDED.xero_tax_type, "
                 "updated_at = now()", (kind, omono_code, xero_tax_type))


def records(conn: psycopg.Connection, entity: str, ids: list[int]) -> dict[int, dict]:
    if not ids:
        return {}
    rows = conn.execute(f"SELECT * FROM {S}.record_state WHERE entity = %s AND omono_id = ANY(%s)", (entity, ids))
    return {r["omono_id"]: r for r in rows}


def mark_pending(conn: psycopg.Connection, entity: str, items: list[tuple[int, str | None]], run_id: str) -> None:
    """Everything extracted is pending until the run decides its fate; a crash leaves it to the next run.
    A write in flight (sending), a skip, and a refusal (failed, which the push compares with what it would send
    now so that Xero is not asked the same thing twice) keep their status."""
    conn.cursor().executemany(
        f"INSERT INTO {S}.record_state (entity, omono_id, omono_number, status, last_run_id) "
        "VALUES (%s, %s, %s, 'pending', %s) ON CONFLICT (entity, omono_id) DO UPDATE SET "
        "omono_number = EXCLUDED.omono_number, last_run_id = EXCLUDED.last_run_id, updated_at = now(), "
        f"status = CASE WHEN {S}.record_state.status IN ('sending', 'skipped', 'failed') THEN {S}.record_state.status "
        "ELSE 'pending' END",
        [(entity, oid, number, run_id) for oid, number in items])


def set_status(conn: psycopg.Connection, entity: str, omono_id: int, status: str, run_id: str, *,
               messages: list[str] | None = None, **fields: Any) -> None:
    """Record where a record stands; `fields` are other record_state columns (xero_id, content_hash, …)."""
    columns = {"status": status, "last_run_id": run_id, "last_messages": Jsonb(messages or []), **fields}
    if "last_sent" in columns and columns["last_sent"] is not None:
        columns["last_sent"] = Jsonb(columns["last_sent"])
    assignments = ", ".join(f"{k} = %({k})s" for k in columns)
    conn.execute(f"UPDATE {S}.record_state SET {assignments}, updated_at = now() WHERE entity = %(entity)s AND "
                 "omono_id = %(omono_id)s", {**columns, "entity": entity, "omono_id": omono_id})


def unresolved_ids(conn: psycopg.Connection) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for r in conn.execute(f"SELECT entity, omono_id FROM {S}.record_state WHERE status = ANY(%s)",
                          (list(UNRESOLVED),)):
        out.setdefault(r["entity"], []).append(r["omono_id"])
    return out


def get_cursor(conn: psycopg.Connection) -> str | None:
    row = conn.execute(f"SELECT txid_floor::text AS floor FROM {S}.source_cursor WHERE name = 'omono'").fetchone()
    return row["floor"] if row else None


def set_cursor(conn: psycopg.Connection, floor: str) -> None:
    conn.execute(f"INSERT INTO {S}.source_cursor (name, txid_floor) VALUES ('omono', %s::xid8) ON CONFLICT (name) "
                 "DO UPDATE SET txid_floor = EXCLUDED.txid_floor, updated_at = now()", (floor,))


# -- manual actions: Retry and Skip (Airflow UI), and the skip a later change in Omono clears ---------------------
SKIPPABLE = ("held", "failed")        # a skip means something only for a record the sync would keep retrying
RETRYABLE = ("failed", "skipped")     # held records are checked again on every run anyway


def skip(conn: psycopg.Connection, keys: list[tuple[str, int]], who: str, ctx: RunContext) -> int:
    """Stop sending these records, and showing them red, until they change in Omono or someone chooses Retry.
    Only held or refused records are skipped; each skip leaves a sync-log row (who; the row's time is when).
    Returns how many were skipped."""
    rows = conn.execute(
        f"UPDATE {S}.record_state r SET status = 'skipped', skipped_by = %s, skipped_at = now(), updated_at = now() "
        f"FROM unnest(%s::text[], %s::bigint[]) AS k(entity, omono_id) WHERE (r.entity, r.omono_id) = "
        "(k.entity, k.omono_id) AND r.status = ANY(%s) RETURNING r.entity, r.omono_id, r.omono_number",
        (who, [k[0] for k in keys], [k[1] for k in keys], list(SKIPPABLE))).fetchall()
    message = f"Skipped by {who}: not sent to Xero again until it changes in Omono or someone chooses Retry."
    sync_log.write(conn, ctx, [LogRow(r["entity"], r["omono_id"], r["omono_number"], "skipped", messages=[message])
                               for r in rows])
    return len(rows)


def retry(conn: psycopg.Connection, keys: list[tuple[str, int]], who: str, ctx: RunContext) -> int:
    """Send these records again on the next run, even content Xero refused before: a refused or skipped record
    goes back to pending, and a refused allocation of a credit note is forgotten so it is tried again. Each leaves
    a sync-log row. Returns how many records were affected."""
    entities, ids = [k[0] for k in keys], [k[1] for k in keys]
    reopened = conn.execute(
        f"UPDATE {S}.record_state r SET status = 'pending', last_sent = NULL, skipped_by = NULL, skipped_at = NULL, "
        "last_messages = %s, updated_at = now() FROM unnest(%s::text[], %s::bigint[]) AS k(entity, omono_id) "
        "WHERE (r.entity, r.omono_id) = (k.entity, k.omono_id) AND r.status = ANY(%s) "
        "RETURNING r.entity, r.omono_id, r.omono_number",
        (Jsonb([f"Retry chosen by {who}."]), entities, ids, list(RETRYABLE))).fetchall()
    allocations = conn.execute(
        f"DELETE FROM {S}.allocations a USING unnest(%s::text[], %s::bigint[]) AS k(entity, omono_id), "
        f"{S}.record_state r WHERE (a.entity, a.omono_id) = (k.entity, k.omono_id) AND (r.entity, r.omono_id) = "
        "(a.entity, a.omono_id) AND a.status = 'failed' RETURNING a.entity, a.omono_id, r.omono_number",
        (entities, ids)).fetchall()
    done = {(r["entity"], r["omono_id"]): r["omono_number"] for r in [*reopened, *allocations]}
    message = f"Retry chosen by {who}: sent to Xero again on the next run."
    sync_log.write(conn, ctx, [LogRow(entity, omono_id, number, "retried", messages=[message])
                               for (entity, omono_id), number in done.items()])
    return len(done)


def unskip_changed(conn: psycopg.Connection, entity: str, changed_at: dict[int, datetime], ctx: RunContext
                   ) -> list[int]:
    """Clear the skip of records that changed in Omono after they were skipped, so this run sends them again.
    `changed_at` maps each changed record's id to its latest change (omono.change_log.changed_at); the extract
    calls this before staging the run. Each cleared skip leaves a sync-log row. Returns the ids cleared."""
    if not changed_at:
        return []
    rows = conn.execute(
        f"UPDATE {S}.record_state r SET status = 'pending', skipped_by = NULL, skipped_at = NULL, updated_at = now() "
        "FROM unnest(%s::bigint[], %s::timestamptz[]) AS c(omono_id, changed_at) WHERE r.entity = %s AND "
        "r.omono_id = c.omono_id AND r.status = 'skipped' AND c.changed_at > coalesce(r.skipped_at, '-infinity') "
        "RETURNING r.omono_id, r.omono_number",
        (list(changed_at), list(changed_at.values()), entity)).fetchall()
    sync_log.write(conn, ctx, [LogRow(entity, r["omono_id"], r["omono_number"], "unskipped", messages=[
        f"{r['omono_number']} changed in Omono after it was skipped, so it is sent to Xero again."]) for r in rows])
    return [r["omono_id"] for r in rows]


def delete_account_mapping(conn: psycopg.Connection, kind: str, omono_code: str) -> None:
    conn.execute(f"DELETE FROM {S}.account_mappings WHERE kind = %s AND omono_code = %s", (kind, omono_code))


def delete_tax_mapping(conn: psycopg.Connection, kind: str, omono_code: str) -> None:
    conn.execute(f"DELETE FROM {S}.tax_mappings WHERE kind = %s AND omono_tax_code = %s", (kind, omono_code))
