"""Extract: which Omono records changed, read in one consistent snapshot and staged for this run.

Why it never misses a change: Omono's change log is written by triggers in the same transaction as the change
and stamped with that transaction's id (xid8). Each extract reads, in one REPEATABLE READ snapshot, every log
row the previous extract's snapshot could not see: at or above its xmin (the oldest transaction then still
running) and not visible to it (`pg_visible_in_snapshot`), and then stores this snapshot. A transaction still
open during a read is invisible to that snapshot, so it is read next time, whenever it commits; a row's own
timestamps play no part. What an earlier read saw is not read again, however long another transaction in
PostgreSQL stays open (a report, a pg_dump) and holds the xmin back. Records the
last run left unresolved (pending, sending, held, failed) are re-read too, so fixing a mapping or the data is
enough for them to go on the next run."""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import entities, settings, state, sync_log

log = logging.getLogger(__name__)
S = settings.STATE_SCHEMA
CHUNK = 5000
CHANGED_CREDIT_NOTES = "credit_note (either kind)"
_DOC_TABLES = {
    "dispatch_invoice": ("dispatch_invoices", "dispatch_invoice_lines", "invoice_id"),
    "delivery_invoice": ("delivery_invoices", "delivery_invoice_lines", "invoice_id"),
    "sales_credit_note": ("credit_notes", "credit_note_lines", "credit_note_id"),
    "purchase_credit_note": ("credit_notes", "credit_note_lines", "credit_note_id"),
}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, date):
        return value.isoformat()
    return value


def _row(r: dict) -> dict:
    return {k: _plain(v) for k, v in r.items() if k not in {"created_at", "updated_at"}}


def changed_ids(omono: psycopg.Connection, seen: str | None, date_range: tuple[date, date] | None
                ) -> dict[str, set[int]]:
    """Ids per entity: everything on a first run (or a backfill range), else what changed since the read whose
    snapshot is `seen` (the change-log rows it could not see)."""
    wanted: dict[str, set[int]] = defaultdict(set)
    if date_range is not None:
        start, end = date_range
        for name, (table, _lines, _key) in _DOC_TABLES.items():
            extra = _kind_filter(name)
            for r in omono.execute(f"SELECT id FROM omono.{table} WHERE issue_date BETWEEN %s AND %s{extra}",
                                   (start, end)):
                wanted[name].add(r["id"])
        return wanted
    if seen is None:
        wanted["contact"] = {r["id"] for r in omono.execute("SELECT id FROM omono.companies")}
        for name, (table, _lines, _key) in _DOC_TABLES.items():
            wanted[name] = {r["id"] for r in omono.execute(f"SELECT id FROM omono.{table} WHERE true"
                                                           f"{_kind_filter(name)}")}
        return wanted
    rows = omono.execute("SELECT DISTINCT entity, record_id FROM omono.change_log WHERE txid >= pg_snapshot_xmin("
                         "%(seen)s::pg_snapshot) AND NOT pg_visible_in_snapshot(txid, %(seen)s::pg_snapshot)",
                         {"seen": seen})
    credit: set[int] = set()
    for r in rows:
        name = {"company": "contact"}.get(r["entity"], r["entity"])
        if name == "credit_note":
            credit.add(r["record_id"])
        else:
            wanted[name].add(r["record_id"])
    if credit:
        for r in omono.execute("SELECT id, kind FROM omono.credit_notes WHERE id = ANY(%s)", (sorted(credit),)):
            wanted[f"{r['kind']}_credit_note"].add(r["id"])
        wanted[CHANGED_CREDIT_NOTES] = credit        # and under the kind they were sent as (below)
    return wanted


def _credit_notes_as_sent(state_conn: psycopg.Connection, wanted: dict[str, set[int]]) -> None:
    """Changed credit notes are looked at under each kind they were sent as too: one deleted outright (Omono no
    longer says whether sales or purchase), or whose kind changed, is a tombstone there (voided in Xero)."""
    changed = sorted(wanted.pop(CHANGED_CREDIT_NOTES, set()))
    for entity in ("sales_credit_note", "purchase_credit_note"):
        known = state.known(state_conn, entity, changed) | set(state.written_for(state_conn, entity, changed))
        wanted[entity] |= known


def _changed_since(omono: psycopg.Connection, state_conn: psycopg.Connection, seen: str) -> dict[str, set[int]]:
    changed = changed_ids(omono, seen, None)
    _credit_notes_as_sent(state_conn, changed)
    return changed


def _written_but_gone(omono: psycopg.Connection, state_conn: psycopg.Connection, wanted: dict[str, set[int]],
                      only_gone: bool) -> None:
    """On a full read (first run, or after a reset): records this integration once wrote to Xero are looked at too,
    so one deleted outright in Omono meanwhile is voided in Xero instead of being forgotten there. A backfill by
    date takes only those Omono no longer has (their date is gone with them); the rest are outside its range."""
    for entity in entities.DOCUMENTS:
        written = state.written_records(state_conn, entity.name)
        if only_gone and written:
            table = _DOC_TABLES[entity.name][0]
            written -= {r["id"] for r in omono.execute(f"SELECT id FROM omono.{table} WHERE id = ANY(%s)",
                                                        (sorted(written),))}
        wanted[entity.name] |= written


def _kind_filter(name: str) -> str:
    if name == "sales_credit_note":
        return " AND kind = 'sales'"
    if name == "purchase_credit_note":
        return " AND kind = 'purchase'"
    return ""


def load_contacts(omono: psycopg.Connection, ids: list[int]) -> list[dict]:
    out = []
    for i in range(0, len(ids), CHUNK):
        out += [_row(r) for r in omono.execute("SELECT * FROM omono.companies WHERE id = ANY(%s) ORDER BY id",
                                               (ids[i:i + CHUNK],))]
    return out


def load_documents(omono: psycopg.Connection, entity_name: str, ids: list[int]) -> list[dict]:
    table, line_table, key = _DOC_TABLES[entity_name]
    out: list[dict] = []
    for i in range(0, len(ids), CHUNK):
        chunk = ids[i:i + CHUNK]
        docs = {r["id"]: {**_row(r), "company_name": r["company_name"], "lines": []} for r in omono.execute(
            f"SELECT d.*, c.name AS company_name FROM omono.{table} d JOIN omono.companies c ON c.id = d.company_id "
            f"WHERE d.id = ANY(%s){_kind_filter(entity_name).replace('kind', 'd.kind')} ORDER BY d.id", (chunk,))}
        for line in omono.execute(f"SELECT l.*, t.rate AS tax_rate FROM omono.{line_table} l LEFT JOIN "
                                  f"omono.tax_rates t ON t.code = l.tax_code WHERE l.{key} = ANY(%s) "
                                  f"ORDER BY l.{key}, l.line_no", (list(docs),)):
            docs[line[key]]["lines"].append(_row(line))
        out += docs.values()
    return out


def _tombstones(state_conn: psycopg.Connection, name: str, ids: list[int], loaded: list[dict]) -> list[dict]:
    """Records the change log (or an unresolved state) names but Omono no longer has: deleted outright. Each is
    staged as a tombstone, so its Xero copy is voided/deleted (a company's archived) like a cancellation, and it
    is never re-read again."""
    gone = sorted(set(ids) - {r["id"] for r in loaded})
    known = state.records(state_conn, name, gone) if gone else {}
    logged = sync_log.last_numbers(state_conn, name, [i for i in gone if not (known.get(i) or {}).get("omono_number")])
    out = []
    for omono_id in gone:
        number = (known.get(omono_id) or {}).get("omono_number") or logged.get(omono_id) or f"#{omono_id}"
        out.append({"id": omono_id, "deleted": True, "number": number, "name": number,
                    "account_number": number if name == "contact" else None, "status": "cancelled", "lines": []})
    return out


def _stage(state_conn: psycopg.Connection, run_id: str, name: str, recs: list[dict], dry_run: bool,
           snapshot: str) -> None:
    """Queue a chunk of records for this run, with the read of Omono they come from, and mark them pending: one
    statement each."""
    if not recs:
        return
    number_of = (lambda r: r.get("account_number") or r["name"]) if name == "contact" else (lambda r: r["number"])
    state_conn.execute(
        f"INSERT INTO {S}.run_queue (run_id, entity, omono_id, omono_number, record, snapshot) SELECT %s, %s, "
        "(r->>'id')::bigint, r->>'_number', r - '_number', %s::xid8 FROM jsonb_array_elements(%s) AS r ON CONFLICT "
        "(run_id, entity, omono_id) DO UPDATE SET record = EXCLUDED.record, state = 'pending', messages = '[]', "
        "snapshot = EXCLUDED.snapshot", (run_id, name, snapshot, Jsonb([{**r, "_number": number_of(r)} for r in recs])))
    if not dry_run:
        state.mark_pending(state_conn, name, [(r["id"], number_of(r)) for r in recs], run_id)
    if name != "contact":
        state.note_codes(state_conn, entities.BY_NAME[name].account_kind, recs)


def _load(omono: psycopg.Connection, name: str, ids: list[int]) -> list[dict]:
    return load_contacts(omono, ids) if name == "contact" else load_documents(omono, name, ids)


def extract(omono: psycopg.Connection, state_conn: psycopg.Connection, ctx: sync_log.RunContext, *,
            full: bool = False, date_range: tuple[date, date] | None = None, can_write: int | None = None
            ) -> dict[str, int]:
    """Stage this run's records in xero_sync.run_queue, CHUNK at a time (memory stays flat whatever the backlog);
    of the records waiting for budget, only as many as `can_write` (None: all). Returns how many per entity."""
    run_id, dry_run = ctx.run_id, ctx.dry_run
    counts: dict[str, int] = defaultdict(int)
    named_companies: set[int] = set()
    omono.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    with omono.transaction(), state_conn.transaction():
        read = omono.execute("SELECT pg_current_snapshot()::text AS snapshot, "
                             "pg_snapshot_xmax(pg_current_snapshot())::text AS xmax").fetchone()
        cursor = state.get_cursor(state_conn)
        changed = _changed_since(omono, state_conn, cursor) if cursor is not None and date_range is None else None
        if changed is not None and not dry_run:
            for name, ids in changed.items():   # changed since the last read: a skip of what was read then ends
                state.unskip_changed(state_conn, name, sorted(ids), ctx)
        wanted = changed if changed is not None and not full else changed_ids(omono, None, date_range)
        if full or cursor is None:
            _written_but_gone(omono, state_conn, wanted, only_gone=date_range is not None)
        for name, ids in state.ids_to_reread(state_conn, wanted.get("contact", set()), can_write).items():
            wanted[name].update(ids)
        for entity in (*entities.DOCUMENTS, entities.CONTACT):
            if entity is entities.CONTACT:          # the companies the documents need, once
                wanted["contact"] |= _companies_needed(state_conn, named_companies, date_range)
            ids = sorted(wanted.get(entity.name, ()))
            for i in range(0, len(ids), CHUNK):
                chunk = ids[i:i + CHUNK]
                loaded = _load(omono, entity.name, chunk)
                recs = _without_skipped(state_conn, entity.name,
                                        loaded + _tombstones(state_conn, entity.name, chunk, loaded))
                named_companies.update(r["company_id"] for r in recs if r.get("company_id"))
                _stage(state_conn, run_id, entity.name, recs, dry_run, read["xmax"])
                counts[entity.name] += len(recs)
        if sum(counts.values()) > CHUNK:    # the planner must know the run's size, or it scans it per batch
            state_conn.execute(f"ANALYZE {S}.run_queue")
        if not dry_run and date_range is None:
            state.set_cursor(state_conn, read["snapshot"])
    log.info("Extracted %s", json.dumps(counts))
    return {e.name: counts[e.name] for e in entities.ALL}


def _without_skipped(state_conn: psycopg.Connection, name: str, recs: list[dict]) -> list[dict]:
    """A skipped record stays out of runs (a full re-read or a backfill too) until it changes or Retry is chosen."""
    skipped = {i for i, st in state.records(state_conn, name, [r["id"] for r in recs]).items()
               if st["status"] == "skipped"}
    return [r for r in recs if r["id"] not in skipped] if skipped else recs


def _companies_needed(state_conn: psycopg.Connection, named: set[int], date_range: tuple[date, date] | None
                      ) -> set[int]:
    """A backfill needs every company its documents name; a normal run, those never staged before (no state at
    all), without which their documents could never go."""
    if date_range is not None:
        return set(named)
    return named - state.known(state_conn, "contact", sorted(named))


def queued(state_conn: psycopg.Connection, run_id: str, entity_name: str, only: str | None = "pending",
           ids: list[int] | None = None) -> list[dict]:
    """This run's staged records of one kind (in one state, or all with `only=None`; or just `ids`)."""
    sql = f"SELECT omono_id, omono_number, record, state, messages FROM {S}.run_queue WHERE run_id = %s AND entity = %s"
    args: list[Any] = [run_id, entity_name]
    if only:
        sql += " AND state = %s"
        args.append(only)
    if ids is not None:
        sql += " AND omono_id = ANY(%s)"
        args.append(ids)
    return state_conn.execute(sql + " ORDER BY omono_id", args).fetchall()


def count_pending(state_conn: psycopg.Connection, run_id: str, entity_name: str) -> int:
    return state_conn.execute(f"SELECT count(*) AS n FROM {S}.run_queue WHERE run_id = %s AND entity = %s AND "
                              "state = 'pending'", (run_id, entity_name)).fetchone()["n"]


def staged_pages(state_conn: psycopg.Connection, run_id: str, entity_name: str, size: int,
                 only: str | None = "pending") -> Iterator[list[dict]]:
    """This run's staged records of one kind (still pending, or all with `only=None`), `size` at a time in id
    order (memory stays flat)."""
    last, state_filter = -1, "AND state = %(only)s " if only else ""
    while True:
        page = state_conn.execute(
            f"SELECT omono_id, omono_number, record, state, messages, snapshot::text AS snapshot FROM {S}.run_queue "
            f"WHERE run_id = %(run)s AND entity = %(entity)s {state_filter}AND omono_id > %(last)s ORDER BY omono_id "
            "LIMIT %(size)s", {"run": run_id, "entity": entity_name, "only": only, "last": last, "size": size}
        ).fetchall()
        if not page:
            return
        yield page
        last = page[-1]["omono_id"]


def settle(state_conn: psycopg.Connection, run_id: str, entity_name: str, rows: list[tuple[int, str, list[str]]]
           ) -> None:
    """What became of a batch of this run's staged records ('held' or 'done', with messages), in one statement."""
    rows = list({r[0]: r for r in rows}.values())                          # the last word on each record
    if rows:
        state_conn.execute(
            f"UPDATE {S}.run_queue q SET state = r->>1, messages = r->2 FROM jsonb_array_elements(%s) AS r "
            "WHERE q.run_id = %s AND q.entity = %s AND q.omono_id = (r->>0)::bigint",
            (Jsonb([[i, st, m] for i, st, m in rows]), run_id, entity_name))


def forget_runs(state_conn: psycopg.Connection, run_id: str) -> int:
    """A finished run's staged records, and any a crashed run left over two days ago: the queue holds only what
    runs are working on, however long the history."""
    return state_conn.execute(f"DELETE FROM {S}.run_queue WHERE run_id = %s OR staged_at < now() - interval '2 days'",
                              (run_id,)).rowcount
