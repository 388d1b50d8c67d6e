"""The integration's own state in schema xero_sync: user settings, mappings and where each record stands."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import settings

S = settings.STATE_SCHEMA
UNRESOLVED = ("pending", "sending", "held", "failed", "waiting")     # re-read every run until resolved


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


_KEPT_UNLESS_GIVEN = {"xero_id": "uuid", "content_hash": "text", "xero_number": "text", "xero_status": "text",
                      "sending_key": "text", "sending_since": "timestamptz"}


def apply_outcomes(conn: psycopg.Connection, entity: str, run_id: str, outcomes: list[dict]) -> None:
    """Where a batch of records now stands, in one statement. Each outcome names `omono_id`, `status` and
    `messages`; any of xero_id, content_hash, last_sent, xero_number, xero_status, sending_key, sending_since it
    carries is set (to null when given as None), the others are kept."""
    if not outcomes:
        return
    outcomes = list({o["omono_id"]: o for o in outcomes}.values())        # the last word on each record
    kept = ", ".join(f"{col} = CASE WHEN o.doc ? '{col}' THEN (o.doc->>'{col}')::{kind} ELSE s.{col} END"
                     for col, kind in _KEPT_UNLESS_GIVEN.items())
    conn.execute(
        f"UPDATE {S}.record_state s SET status = o.doc->>'status', last_messages = o.doc->'messages', "
        f"last_run_id = %(run_id)s, updated_at = now(), {kept}, last_sent = CASE WHEN o.doc ? 'last_sent' THEN "
        "o.doc->'last_sent' ELSE s.last_sent END FROM jsonb_array_elements(%(rows)s) AS o(doc) "
        "WHERE s.entity = %(entity)s AND s.omono_id = (o.doc->>'omono_id')::bigint",
        {"run_id": run_id, "entity": entity, "rows": Jsonb(outcomes)})


def mark_sending(conn: psycopg.Connection, entity: str, sent: list[tuple[int, dict]], key: str, run_id: str
                 ) -> None:
    """Before a batch is sent: its records are 'sending' with the batch's idempotency key and what is being sent
    (so a copy Xero made before the answer was lost is recognised as ours). The caller commits."""
    conn.execute(f"UPDATE {S}.record_state s SET status = 'sending', sending_key = %s, sending_since = now(), "
                 "last_sent = x->1, last_run_id = %s, updated_at = now() FROM jsonb_array_elements(%s) AS x "
                 "WHERE s.entity = %s AND s.omono_id = (x->>0)::bigint",
                 (key, run_id, Jsonb([[i, payload] for i, payload in sent]), entity))


def count_refused_attempt(conn: psycopg.Connection, entity: str, ids: list[int]) -> None:
    """Xero answered the batch with an error, which it caches under the key: the next attempt needs a new key."""
    conn.execute(f"UPDATE {S}.record_state SET write_attempts = write_attempts + 1 WHERE entity = %s AND "
                 "omono_id = ANY(%s)", (entity, ids))


def remember_ours(conn: psycopg.Connection, entity: str, written: list[tuple[str, int]]) -> None:
    """Xero ids this integration wrote: kept across a reset, so a backfill adopts them and nothing else."""
    if written:
        conn.execute(f"INSERT INTO {S}.our_documents (xero_id, entity, omono_id) SELECT (w->>0)::uuid, %s, "
                     "(w->>1)::bigint FROM jsonb_array_elements(%s) AS w ON CONFLICT (xero_id) DO NOTHING",
                     (entity, Jsonb([[x, i] for x, i in written])))


def ours(conn: psycopg.Connection, xero_ids: list[str]) -> set[str]:
    if not xero_ids:
        return set()
    return {str(r["xero_id"]) for r in conn.execute(f"SELECT xero_id FROM {S}.our_documents WHERE xero_id = "
                                                    "ANY(%s::uuid[])", (xero_ids,))}


def unresolved_ids(conn: psycopg.Connection) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    listed = ", ".join(f"'{s}'" for s in UNRESOLVED)          # literal, so the partial index applies
    for r in conn.execute(f"SELECT entity, omono_id FROM {S}.record_state WHERE status IN ({listed})"):
        out.setdefault(r["entity"], []).append(r["omono_id"])
    return out


def get_cursor(conn: psycopg.Connection) -> str | None:
    row = conn.execute(f"SELECT txid_floor::text AS floor FROM {S}.source_cursor WHERE name = 'omono'").fetchone()
    return row["floor"] if row else None


def set_cursor(conn: psycopg.Connection, floor: str) -> None:
    conn.execute(f"INSERT INTO {S}.source_cursor (name, txid_floor) VALUES ('omono', %s::xid8) ON CONFLICT (name) "
                 "DO UPDATE SET txid_floor = EXCLUDED.txid_floor, updated_at = now()", (floor,))
