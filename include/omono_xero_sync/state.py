"""The integration's own state in schema xero_sync: user settings, mappings and where each record stands."""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import entities, settings, sync_log
from include.omono_xero_sync.sync_log import LogRow, RunContext

S = settings.STATE_SCHEMA


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
    rows = conn.execute(f"SELECT *, source_xmax::text AS source_xmax FROM {S}.record_state WHERE entity = %s AND "
                        "omono_id = ANY(%s)", (entity, ids))
    return {r["omono_id"]: r for r in rows}


def known(conn: psycopg.Connection, entity: str, ids: list[int]) -> set[int]:
    """Which of these records have a state (ids only: cheap however many are asked about)."""
    if not ids:
        return set()
    return {r["omono_id"] for r in conn.execute(f"SELECT omono_id FROM {S}.record_state WHERE entity = %s AND "
                                                "omono_id = ANY(%s)", (entity, ids))}


def mark_pending(conn: psycopg.Connection, entity: str, items: list[tuple[int, str | None]], run_id: str) -> None:
    """Everything extracted is pending until the run decides its fate; a crash leaves it to the next run.
    A write in flight (sending), a skip, and a refusal (failed, which the push compares with what it would send
    now so that Xero is not asked the same thing twice) keep their status. One statement for the chunk."""
    conn.execute(
        f"INSERT INTO {S}.record_state (entity, omono_id, omono_number, status, last_run_id) SELECT %s, "
        "(i->>0)::bigint, i->>1, 'pending', %s FROM jsonb_array_elements(%s) AS i ON CONFLICT (entity, omono_id) DO "
        "UPDATE SET omono_number = EXCLUDED.omono_number, last_run_id = EXCLUDED.last_run_id, updated_at = now(), "
        f"status = CASE WHEN {S}.record_state.status IN ('sending', 'skipped', 'failed') THEN {S}.record_state.status "
        "ELSE 'pending' END", (entity, run_id, Jsonb([[oid, number] for oid, number in items])))


_KEPT_UNLESS_GIVEN = {"xero_id": "uuid", "content_hash": "text", "xero_number": "text", "xero_status": "text",
                      "sending_key": "text", "sending_since": "timestamptz", "company_id": "bigint",
                      "source_xmax": "xid8"}


def apply_outcomes(conn: psycopg.Connection, entity: str, run_id: str, outcomes: list[dict]) -> None:
    """Where a batch of records now stands, in one statement. Each outcome names `omono_id`, `status` and
    `messages`; any of xero_id, content_hash, last_sent, xero_number, xero_status, sending_key, sending_since it
    carries is set (to null when given as None), the others are kept."""
    if not outcomes:
        return
    outcomes = list({o["omono_id"]: o for o in outcomes}.values())        # the last word on each record
    kept = ", ".join(f"{col} = CASE WHEN o.doc ? '{col}' THEN (o.doc->>'{col}')::{kind} ELSE s.{col} END"
                     for col, kind in _KEPT_UNLESS_GIVEN.items())
    conn.execute(                       # a skip chosen while the run was under way stays, unless Xero now has it
        f"UPDATE {S}.record_state s SET status = CASE WHEN s.status = 'skipped' AND o.doc->>'status' IN ('held', "
        "'failed') THEN 'skipped' ELSE o.doc->>'status' END, last_messages = o.doc->'messages', "
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


def ours(conn: psycopg.Connection, xero_ids: list[str]) -> dict[str, tuple[str, int]]:
    """Which of these Xero ids this integration wrote, and for which record (entity, Omono id)."""
    if not xero_ids:
        return {}
    return {str(r["xero_id"]): (r["entity"], r["omono_id"]) for r in conn.execute(
        f"SELECT xero_id, entity, omono_id FROM {S}.our_documents WHERE xero_id = ANY(%s::uuid[])", (xero_ids,))}


def written_for(conn: psycopg.Connection, entity: str, omono_ids: list[int]) -> dict[int, list[str]]:
    """The Xero ids this integration ever wrote for these records (kept across a reset)."""
    out: dict[int, list[str]] = {}
    if omono_ids:
        for r in conn.execute(f"SELECT omono_id, xero_id FROM {S}.our_documents WHERE entity = %s AND omono_id = "
                              "ANY(%s) ORDER BY written_at", (entity, omono_ids)):
            out.setdefault(r["omono_id"], []).append(str(r["xero_id"]))
    return out


def written_records(conn: psycopg.Connection, entity: str) -> set[int]:
    """Every record of this kind this integration ever wrote to Xero (a full read checks they still exist)."""
    return {r["omono_id"] for r in conn.execute(f"SELECT DISTINCT omono_id FROM {S}.our_documents WHERE entity = %s",
                                                (entity,))}


# What a held or refused record's fate depends on besides its own content: the mappings, the settings that shape
# what is sent, and Xero's reference data (accounts, tax rates, currencies, lock dates).
_CONFIG = (f"SELECT md5(concat_ws('|', (SELECT string_agg(concat_ws(',', kind, omono_code, xero_account_code, "
           f"create_in_xero), ';' ORDER BY kind, omono_code) FROM {S}.account_mappings), (SELECT string_agg("
           f"concat_ws(',', kind, omono_tax_code, xero_tax_type), ';' ORDER BY kind, omono_tax_code) FROM "
           f"{S}.tax_mappings), (SELECT string_agg(key || '=' || value::text, ';' ORDER BY key) FROM {S}.settings "
           "WHERE key LIKE 'status.%' OR key IN ('exchange_rate_source', 'restore_archived_contacts', "
           f"'auto_create_accounts')), (SELECT string_agg(kind || '=' || data::text, ';' ORDER BY kind) FROM "
           f"{S}.xero_reference))) AS fp")


def config_changed_at(conn: psycopg.Connection) -> str:
    """When the configuration a held record depends on last changed (noticed at the first run after it did)."""
    fp = conn.execute(_CONFIG).fetchone()["fp"]
    if get_setting(conn, "config_fingerprint") != fp:
        put_setting(conn, "config_fingerprint", fp)
        put_setting(conn, "config_changed_at", conn.execute("SELECT now()::text AS t").fetchone()["t"])
    return str(get_setting(conn, "config_changed_at"))


def ids_to_reread(conn: psycopg.Connection, changed_companies: set[int], waiting_limit: int | None = None
                  ) -> dict[str, list[int]]:
    """Unresolved records worth another look this run (their own changes come through the change log): pending and
    sending ones always; waiting ones up to `waiting_limit` (what today's calls can still write; None: all), contacts
    first, then documents in the order they are pushed, so a backlog over days costs each day what it writes, not the
    whole backlog again; held and refused ones only when something they depend on changed since they were last
    looked at, the configuration or, for a document, its company. So a record nothing has changed for costs no work
    and adds no row, run after run; it stays listed as needing attention."""
    rows = conn.execute(   # status literals: the partial index applies
        f"SELECT entity, omono_id FROM {S}.record_state WHERE status IN ('pending', 'sending') UNION "
        f"(SELECT entity, omono_id FROM {S}.record_state WHERE status IN ('waiting') ORDER BY "
        "array_position(%(order)s::text[], entity), omono_id LIMIT %(limit)s) UNION "
        f"SELECT entity, omono_id FROM {S}.record_state WHERE status IN ('held', 'failed') AND updated_at < "
        f"%(changed)s::timestamptz UNION SELECT d.entity, d.omono_id FROM {S}.record_state d JOIN {S}.record_state c "
        "ON c.entity = 'contact' AND c.omono_id = d.company_id WHERE d.status IN ('held', 'failed') AND "
        "(c.updated_at > d.updated_at OR c.omono_id = ANY(%(companies)s))",
        {"changed": config_changed_at(conn), "companies": sorted(changed_companies), "limit": waiting_limit,
         "order": [e.name for e in entities.ALL]})
    out: dict[str, list[int]] = {}
    for r in rows:
        out.setdefault(r["entity"], []).append(r["omono_id"])
    return out


def note_codes(conn: psycopg.Connection, kind: str | None, docs: list[dict]) -> None:
    """Remember the analysis codes and tax rates these documents' lines use (readiness checks them all)."""
    codes = sorted({(field, line[field]) for d in docs for line in d.get("lines", ())
                    for field in ("analysis_code", "tax_code") if line.get(field)})
    if kind and codes:
        conn.execute(f"INSERT INTO {S}.codes_in_use (kind, field, code) SELECT %s, c->>0, c->>1 FROM "
                     "jsonb_array_elements(%s) AS c ON CONFLICT DO NOTHING", (kind, Jsonb(codes)))


def codes_in_use(conn: psycopg.Connection, kind: str, field: str) -> set[str]:
    return {r["code"] for r in conn.execute(f"SELECT code FROM {S}.codes_in_use WHERE kind = %s AND field = %s",
                                            (kind, field))}


def get_cursor(conn: psycopg.Connection) -> str | None:
    """The snapshot of the last read of Omono's change log (`xmin:xmax:xip…`); a cursor kept before snapshots
    were stored reads as the snapshot that saw everything below its floor."""
    row = conn.execute(f"SELECT coalesce(snapshot::text, txid_floor::text || ':' || txid_floor::text || ':') AS "
                       f"snapshot FROM {S}.source_cursor WHERE name = 'omono'").fetchone()
    return row["snapshot"] if row else None


def set_cursor(conn: psycopg.Connection, snapshot: str) -> None:
    conn.execute(f"INSERT INTO {S}.source_cursor (name, txid_floor, snapshot) VALUES ('omono', "
                 "pg_snapshot_xmin(%(s)s::pg_snapshot), %(s)s::pg_snapshot) ON CONFLICT (name) DO UPDATE SET "
                 "txid_floor = EXCLUDED.txid_floor, snapshot = EXCLUDED.snapshot, updated_at = now()", {"s": snapshot})


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


def unskip_changed(conn: psycopg.Connection, entity: str, ids: list[int], ctx: RunContext) -> list[int]:
    """Clear the skip of records that changed in Omono since the last run read them (the extract's change-log
    read holds only such changes), so this run looks at them again: the bookkeeper skipped the version they saw,
    whether the change came before or after the click. Each cleared skip leaves a sync-log row. Returns the ids."""
    if not ids:
        return []
    rows = conn.execute(
        f"UPDATE {S}.record_state r SET status = 'pending', skipped_by = NULL, skipped_at = NULL, updated_at = now() "
        "WHERE r.entity = %s AND r.omono_id = ANY(%s) AND r.status = 'skipped' RETURNING r.omono_id, r.omono_number",
        (entity, ids)).fetchall()
    sync_log.write(conn, ctx, [LogRow(entity, r["omono_id"], r["omono_number"], "unskipped", messages=[
        f"{r['omono_number']} changed in Omono since it was skipped, so it is looked at again."]) for r in rows])
    return [r["omono_id"] for r in rows]


def delete_account_mapping(conn: psycopg.Connection, kind: str, omono_code: str) -> None:
    conn.execute(f"DELETE FROM {S}.account_mappings WHERE kind = %s AND omono_code = %s", (kind, omono_code))


def delete_tax_mapping(conn: psycopg.Connection, kind: str, omono_code: str) -> None:
    conn.execute(f"DELETE FROM {S}.tax_mappings WHERE kind = %s AND omono_tax_code = %s", (kind, omono_code))
