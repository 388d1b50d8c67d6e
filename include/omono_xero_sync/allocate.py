"""Allocation of credit notes to the invoices Omono links them to (this module owns `xero_sync.allocations`).

- A pair is known once its credit note has been staged by a run (or, once, from Omono's links after an upgrade):
  `waiting` until both documents are in Xero and approved there, then `allocated`, `settled` (nothing left to
  allocate: the invoice was paid, or the credit used, in Xero) or `failed` (Xero refused: red, with its words).
  Only waiting and failed pairs are looked at again, so a run's cost follows what is open, not history.
- Statuses, credit left and amount due are read from Xero at the time, never taken from the last write: a draft
  the bookkeeper approved in Xero since is allocated. Credit notes are read with their allocations, so one Xero
  made before a lost answer is recognised instead of being made twice.
- Within a run, each invoice's amount due and each note's credit are reduced as allocations are made, so two
  credit notes on one invoice never both allocate the full amount.
- Each allocation is committed when Xero answers; the idempotency key names the credit note (it is in the URL),
  so two notes with equal bodies never share one. A failed pair is tried again only when the amounts change.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import extract, matching, money, settings, state, sync_log, transform
from include.omono_xero_sync.settings import STATE_SCHEMA as S
from include.omono_xero_sync.sync_log import Attempt, LogRow, RunContext
from include.omono_xero_sync.xero_api import attempt_of_refusal, refusal_messages, to_model

log = logging.getLogger(__name__)
PAIRS = {"sales_credit_note": ("sales", "dispatch_invoice"), "purchase_credit_note": ("purchase", "delivery_invoice")}
OPEN = ("waiting", "failed")
PART = 1_000       # credit notes whose pairs, records and Xero documents a run holds at once


@dataclass
class Pair:
    entity: str
    invoice_entity: str
    credit: dict           # record_state row of the credit note
    invoice: dict | None   # record_state row of the invoice (None: not known yet)
    status: str
    tried: Decimal | None  # the amount Xero refused last time
    relinked: bool = False  # Omono has linked the note elsewhere since its credit was allocated here
    attempts: int = 0       # server errors Xero answered: the idempotency key moves on with each


# -- which pairs ------------------------------------------------------------------------------------------------
def note_links(state_conn: psycopg.Connection, omono: psycopg.Connection, run_id: str) -> None:
    """Record the pairs this run's credit notes name (and, the first time, every link Omono has), a page of the
    run's notes at a time. A note Omono now links elsewhere, or not at all, leaves its old pair behind: still
    waiting, it is dropped; already allocated in Xero, it turns red (relinked) until the bookkeeper moves the
    credit in Xero."""
    for entity, (_kind, invoice_entity) in PAIRS.items():
        for page in extract.staged_pages(state_conn, run_id, entity, PART, only=None):
            staged: dict[tuple[str, int], int | None] = {}
            for item in page:
                rec = item["record"]
                staged[(entity, rec["id"])] = (rec.get("invoice_id") if rec.get("status") == "issued"
                                               and not rec.get("deleted") else None)
            _leave_old_links(state_conn, run_id, staged)
            _add_links(state_conn, run_id, [(e, i, invoice_entity, inv) for (e, i), inv in staged.items() if inv])
    if not state.get_setting(state_conn, "allocation_links_seeded"):
        _add_links(state_conn, run_id, [
            (f"{r['kind']}_credit_note", r["id"], PAIRS[f"{r['kind']}_credit_note"][1], r["invoice_id"])
            for r in omono.execute("SELECT id, kind, invoice_id FROM omono.credit_notes WHERE invoice_id IS NOT NULL "
                                   "AND status = 'issued'")])
        state.put_setting(state_conn, "allocation_links_seeded", True)
    state_conn.commit()


def _add_links(state_conn: psycopg.Connection, run_id: str, links: list[tuple[str, int, str, int]]) -> None:
    if links:
        state_conn.execute(
            f"INSERT INTO {S}.allocations (entity, omono_id, invoice_entity, invoice_omono_id, status, run_id) "
            "SELECT l->>0, (l->>1)::bigint, l->>2, (l->>3)::bigint, 'waiting', %s FROM jsonb_array_elements(%s) l "
            "ON CONFLICT DO NOTHING", (run_id, Jsonb(links)))


def _leave_old_links(state_conn: psycopg.Connection, run_id: str, staged: dict[tuple[str, int], int | None]) -> None:
    if not staged:
        return
    current = Jsonb([[e, i, inv] for (e, i), inv in staged.items()])
    old = ("FROM jsonb_array_elements(%(current)s) c WHERE a.entity = c->>0 AND a.omono_id = (c->>1)::bigint AND "
           "a.invoice_omono_id IS DISTINCT FROM (c->>2)::bigint")
    state_conn.execute(f"DELETE FROM {S}.allocations a USING jsonb_array_elements(%(current)s) c WHERE "
                       "a.entity = c->>0 AND a.omono_id = (c->>1)::bigint AND a.invoice_omono_id IS DISTINCT FROM "
                       "(c->>2)::bigint AND a.status IN ('waiting', 'settled')", {"current": current})
    state_conn.execute(
        f"UPDATE {S}.allocations a SET status = 'failed', relinked = true, run_id = %(run)s, updated_at = now(), "
        "messages = jsonb_build_array(format('Its credit was allocated in Xero to %%s, the invoice Omono linked it "
        "to before, but Omono now links it ' || CASE WHEN c->>2 IS NULL THEN 'to no invoice' ELSE 'elsewhere' END || "
        "'. Remove that allocation in Xero (open the credit note, Allocations); the next run sees it gone and "
        f"allocates as Omono now says.', coalesce((SELECT i.omono_number FROM {S}.record_state i WHERE i.entity = "
        "a.invoice_entity AND i.omono_id = a.invoice_omono_id), 'Omono invoice id ' || a.invoice_omono_id))) "
        f"{old} AND a.status = 'allocated'",
        {"current": current, "run": run_id})
    state_conn.execute(                     # linked back to where its credit went: nothing to move any more
        f"UPDATE {S}.allocations a SET status = 'allocated', relinked = false, messages = '[]', updated_at = now() "
        "FROM jsonb_array_elements(%(current)s) c WHERE a.entity = c->>0 AND a.omono_id = (c->>1)::bigint AND "
        "a.invoice_omono_id = (c->>2)::bigint AND a.relinked", {"current": current})


def open_pairs(state_conn: psycopg.Connection, part: int | None = None) -> Iterator[list[Pair]]:
    """The open pairs, `part` credit notes at a time (every pair of one credit note in the same part), so a run
    holds one part's records and Xero documents at once however many pairs are open."""
    part = part or PART
    after: tuple[str, int] = ("", -1)
    while True:
        rows = state_conn.execute(
            f"WITH notes AS (SELECT DISTINCT entity, omono_id FROM {S}.allocations WHERE status = ANY(%(open)s) AND "
            "(entity, omono_id) > (%(entity)s, %(id)s) ORDER BY entity, omono_id LIMIT %(part)s) "
            "SELECT a.entity, a.omono_id, a.invoice_entity, a.invoice_omono_id, a.status, a.amount, a.relinked, "
            f"a.write_attempts FROM "
            f"{S}.allocations a JOIN notes USING (entity, omono_id) WHERE a.status = ANY(%(open)s) "
            "ORDER BY a.entity, a.omono_id, a.invoice_omono_id",
            {"open": list(OPEN), "entity": after[0], "id": after[1], "part": part}).fetchall()
        if not rows:
            return
        after = (rows[-1]["entity"], rows[-1]["omono_id"])
        yield _pairs_of(state_conn, rows)


def _open_count(state_conn: psycopg.Connection) -> int:
    """How many open pairs a run would look at (those whose credit note is in Xero), counted, not loaded."""
    return state_conn.execute(
        f"SELECT count(*) AS n FROM {S}.allocations a JOIN {S}.record_state c ON c.entity = a.entity AND "
        "c.omono_id = a.omono_id WHERE a.status = ANY(%s) AND c.xero_id IS NOT NULL", (list(OPEN),)).fetchone()["n"]


def not_made(state_conn: psycopg.Connection) -> int:
    """Allocations still waiting (for both documents to be in Xero and approved there, or for the budget): the
    summary says so, or weeks of them under a small budget would go unmentioned."""
    return state_conn.execute(f"SELECT count(*) AS n FROM {S}.allocations WHERE status = 'waiting'").fetchone()["n"]


def _pairs_of(state_conn: psycopg.Connection, rows: list[dict]) -> list[Pair]:
    pairs = []
    for entity in PAIRS:
        mine = [r for r in rows if r["entity"] == entity]
        credits = state.records(state_conn, entity, [r["omono_id"] for r in mine])
        invoices = state.records(state_conn, PAIRS[entity][1], [r["invoice_omono_id"] for r in mine])
        pairs += [Pair(entity, r["invoice_entity"], credits[r["omono_id"]], invoices.get(r["invoice_omono_id"]),
                       r["status"], r["amount"] if r["status"] == "failed" else None, r["relinked"],
                       r["write_attempts"])
                  for r in mine if credits.get(r["omono_id"], {}).get("xero_id")]
    return pairs


# -- reading Xero -----------------------------------------------------------------------------------------------
def recorded(state_conn: psycopg.Connection, entity: str, omono_ids: list[int]) -> dict[tuple[int, int], dict]:
    """What the integration recorded for these credit notes' pairs, by (note, invoice): reconciliation compares it
    with Xero a slice at a time, so it asks only for the slice's notes."""
    if not omono_ids:
        return {}
    return {(r["omono_id"], r["invoice_omono_id"]): r for r in state_conn.execute(
        f"SELECT omono_id, invoice_omono_id, status, amount FROM {S}.allocations WHERE entity = %s AND omono_id = "
        "ANY(%s)", (entity, omono_ids))}


def _read_invoices(client: Any, ids: list[str]) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for chunk in matching.chunks_within(sorted(set(ids)), lambda c: "%2C".join(c)):
        found |= {str(d.invoice_id): d for d in client.read("get_invoices", i_ds=chunk, summary_only=True).invoices
                  or []}
    return found


def _read_credit_notes(client: Any, ids: list[str]) -> dict[str, Any]:
    """With their allocations: a page of credit notes carries them in full."""
    from urllib.parse import quote_plus

    found: dict[str, Any] = {}
    for chunk in matching.chunks_within(sorted(set(ids)), lambda c: quote_plus(matching.any_guid("CreditNoteID", c))):
        found |= {str(d.credit_note_id): d for d in matching.paged(
            lambda **p: client.read("get_credit_notes", **p), "credit_notes",
            where=matching.any_guid("CreditNoteID", chunk))}
    return found


# -- allocating -------------------------------------------------------------------------------------------------
@dataclass
class Planned:
    """An allocation to send: the pair, the amount, and the request with its idempotency key."""

    pair: Pair
    amount: Decimal
    note: Any
    credit_id: str
    invoice_id: str
    body: dict
    key: str


class Allocator:
    def __init__(self, ctx: RunContext, state_conn: psycopg.Connection, client: Any) -> None:
        self.ctx, self.conn, self.client = ctx, state_conn, client
        self.counts: dict[str, int] = {}
        self.moving: set[str] = set()        # credit notes whose earlier allocation is still to be removed in Xero

    def run(self, pairs: list[Pair]) -> None:
        """Read both sides of the pairs, then allocate with up to Xero's 5 calls in flight."""
        cancelled = [p for p in pairs if p.invoice and _cancelled(p.invoice)]
        for p in cancelled:
            if p.status != "failed":
                self._settle(p, "failed", Decimal(0), [
                    f"{p.credit['omono_number']} is linked to {p.invoice['omono_number']}, which is cancelled, so its "
                    "credit cannot be allocated there. Link it to another invoice in Omono, or Skip it to leave the "
                    "credit on the contact's account in Xero."], action="failed")
        ready = [p for p in pairs if p.invoice and p.invoice.get("xero_id") and p not in cancelled]
        invoices = _read_invoices(self.client, [str(p.invoice["xero_id"]) for p in ready])
        notes = _read_credit_notes(self.client, [str(p.credit["xero_id"]) for p in ready])
        self.due = {i: Decimal(str(d.amount_due or 0)) for i, d in invoices.items()}
        self.left = {i: Decimal(str(d.remaining_credit or 0)) for i, d in notes.items()}
        todo = [(p, notes[str(p.credit["xero_id"])], invoices[str(p.invoice["xero_id"])]) for p in ready
                if str(p.credit["xero_id"]) in notes and str(p.invoice["xero_id"]) in invoices]
        self.moving = {str(p.credit["xero_id"]) for p, note, _inv in todo if p.relinked and not self._moved(p, note)}
        self.pipeline([item for item in todo if not item[0].relinked])

    def pipeline(self, todo: list[tuple[Pair, Any, Any]]) -> None:
        """Keep up to Xero's 5 allocation calls in flight: as soon as one answers, the next pair whose credit note
        and invoice are both free is planned, with the amounts Xero's answers so far leave, and sent. Never two
        calls on one document at once, so every amount computed stays true; a slow answer holds up only the pairs
        that share its documents (waves that waited for their slowest answer lost a third of the time at 3 s).
        A server error Xero answered stops only its own pair (tried again with a new key by the next attempt); a
        lost answer stops the run's allocations, since the next attempt must read what Xero made first."""
        flying: dict[Future, Planned] = {}
        failure: BaseException | None = None
        lost = False                  # an answer lost: whether Xero made it is unknown, so nothing more starts
        with ThreadPoolExecutor(settings.CONCURRENT_CALLS, thread_name_prefix="xero-allocate") as pool:
            while flying or (todo and not lost):
                if not lost:
                    todo = self._start(todo, flying, pool)
                if not flying:
                    continue
                done, _ = wait(flying, return_when=FIRST_COMPLETED)
                for future in done:
                    allocation, error = flying.pop(future), future.exception()
                    if error is None:
                        self._record(allocation, future.result())
                        continue
                    failure = failure or error       # raised once the calls in flight are recorded
                    if getattr(error, "answered", False):
                        self._count_attempt(allocation.pair)
                    else:
                        lost = True
        if failure is not None:
            raise failure

    def _count_attempt(self, p: Pair) -> None:
        """Xero answered with a server error, which it keeps under the key: the next try needs a new one."""
        self.conn.execute(f"UPDATE {S}.allocations SET write_attempts = write_attempts + 1 WHERE entity = %s AND "
                          "omono_id = %s AND invoice_omono_id = %s", (p.entity, p.credit["omono_id"],
                                                                      p.invoice["omono_id"]))
        self.conn.commit()

    def _start(self, todo: list[tuple[Pair, Any, Any]], flying: dict[Future, Planned],
               pool: ThreadPoolExecutor) -> list[tuple[Pair, Any, Any]]:
        """Send pairs in order until 5 are in flight; the pairs not yet started are returned, in order."""
        busy = {i for a in flying.values() for i in (a.credit_id, a.invoice_id)}
        later: list[tuple[Pair, Any, Any]] = []
        for n, item in enumerate(todo):
            if len(flying) >= settings.CONCURRENT_CALLS:
                return later + todo[n:]
            ids = {str(item[0].credit["xero_id"]), str(item[0].invoice["xero_id"])}
            if ids & busy:
                later.append(item)
                continue
            allocation = self.one(*item)
            if allocation is not None:
                flying[pool.submit(self._send, allocation)] = allocation
                busy |= ids
        return later

    def _moved(self, p: Pair, note: Any) -> bool:
        """A relinked pair whose allocation the bookkeeper has removed in Xero: resolved, the row goes."""
        if any(a.invoice and str(a.invoice.invoice_id) == str(p.invoice["xero_id"]) for a in note.allocations or []):
            self.counts["still failing"] = self.counts.get("still failing", 0) + 1
            return False
        self.conn.execute(f"DELETE FROM {S}.allocations WHERE entity = %s AND omono_id = %s AND invoice_omono_id = %s",
                          (p.entity, p.credit["omono_id"], p.invoice["omono_id"]))
        self.conn.commit()
        return True

    def one(self, p: Pair, note: Any, invoice: Any) -> Planned | None:
        """What to do for one pair; an allocation to send, or None when it is settled, waiting or still refused."""
        credit_id, invoice_id = str(p.credit["xero_id"]), str(p.invoice["xero_id"])
        if credit_id in self.moving:
            self._store(p, "waiting", None, [f"{p.credit['omono_number']} is linked to {p.invoice['omono_number']} "
                                             "now; it is allocated once its earlier allocation is removed in Xero."])
            self.conn.commit()
            return None
        already = [a for a in note.allocations or [] if a.invoice and str(a.invoice.invoice_id) == invoice_id]
        if already:
            amount = sum((Decimal(str(a.amount)) for a in already), Decimal(0))
            self._settle(p, "allocated", amount, [_allocated_text(p, amount, note)], action="allocated")
            return None
        statuses = {matching.enum(note.status), matching.enum(invoice.status)}
        if statuses != {"AUTHORISED"}:
            self._wait(p, statuses)
            return None
        amount = min(self.left.get(credit_id, Decimal(0)), self.due.get(invoice_id, Decimal(0)))
        if amount <= 0:
            self._settle(p, "settled", Decimal(0), [
                f"{p.invoice['omono_number']} has nothing left to pay in Xero (or {p.credit['omono_number']} has no "
                "credit left), so nothing was allocated; any credit stays on the contact's account in Xero."])
            return None
        if p.status == "failed" and p.tried == amount:
            self.counts["still failing"] = self.counts.get("still failing", 0) + 1
            return None
        body = {"Allocations": [{"Invoice": {"InvoiceID": invoice_id}, "Amount": amount,
                                 "Date": date.today().isoformat()}]}
        key = transform.idempotency_key(self.client.xero.tenant_id, "allocation", [transform.jsonable(body)],
                                        target=credit_id, attempt=p.attempts)
        return Planned(p, amount, note, credit_id, invoice_id, body, key)

    def _send(self, a: Planned) -> tuple[list[str], Attempt]:
        """The allocation call (safe in a thread: no database work); Xero's refusal comes back as its messages."""
        from xero_python.exceptions import HTTPStatusException

        method = "create_credit_note_allocation"
        try:
            reply, attempt = self.client.write_detailed(method, a.credit_id, to_model("Allocations", a.body),
                                                        summarize_errors=False, idempotency_key=a.key)
        except HTTPStatusException as exc:
            if exc.status != 400:
                raise
            return refusal_messages(exc), attempt_of_refusal(method, (a.credit_id,), exc)
        return [e.message for e in (reply.allocations[0].validation_errors or [])], attempt

    def _record(self, a: Planned, sent: tuple[list[str], Attempt]) -> None:
        errors, attempt = sent
        if errors:
            self._settle(a.pair, "failed", a.amount, transform.explain(a.pair.credit["omono_number"], errors),
                         action="failed", sent=a.body, attempt=attempt)
            return
        self.due[a.invoice_id] -= a.amount
        self.left[a.credit_id] -= a.amount
        self._settle(a.pair, "allocated", a.amount, [_allocated_text(a.pair, a.amount, a.note)], action="allocated",
                     sent=a.body, attempt=attempt)

    def _wait(self, p: Pair, statuses: set[str]) -> None:
        message = (f"Allocation of {p.credit['omono_number']} to {p.invoice['omono_number']} waits until both are "
                   "approved in Xero (now " + " and ".join(sorted(s.lower() for s in statuses)) + ").")
        self._store(p, "waiting", None, [message])
        self.conn.commit()

    def _settle(self, p: Pair, status: str, amount: Decimal, messages: list[str], *, action: str | None = None,
                sent: dict | None = None, attempt: Attempt | None = None) -> None:
        self._store(p, status, amount, messages)
        if action:
            sync_log.write(self.conn, self.ctx, [LogRow(p.entity, p.credit["omono_id"], p.credit["omono_number"],
                                                        action, str(p.credit["xero_id"]), messages,
                                                        transform.jsonable(sent) if sent else None, None, attempt)])
        self.counts[status] = self.counts.get(status, 0) + 1
        self.conn.commit()          # each allocation is recorded as soon as Xero has made it

    def _store(self, p: Pair, status: str, amount: Decimal | None, messages: list[str]) -> None:
        self.conn.execute(f"UPDATE {S}.allocations SET status = %s, amount = %s, messages = %s, run_id = %s, "
                          "updated_at = now() WHERE entity = %s AND omono_id = %s AND invoice_omono_id = %s",
                          (status, amount, Jsonb(messages), self.ctx.run_id, p.entity, p.credit["omono_id"],
                           p.invoice["omono_id"]))


def _cancelled(invoice: dict) -> bool:
    """The invoice was voided or deleted in Xero, or cancelled in Omono before it ever reached Xero."""
    return invoice.get("xero_status") in {"VOIDED", "DELETED"} or (
        invoice.get("status") == "synced" and not invoice.get("xero_id"))


def _allocated_text(p: Pair, amount: Decimal, note: Any) -> str:
    currency = matching.enum(note.currency_code)
    return (f"Allocated {money.text(amount, currency)} of {p.credit['omono_number']} to "
            f"{p.invoice['omono_number']} in Xero.")


def allocate(ctx: RunContext, state_conn: psycopg.Connection, omono: psycopg.Connection, client: Any) -> dict:
    if ctx.dry_run:
        return {"allocated": 0, "planned": _open_count(state_conn)}
    note_links(state_conn, omono, ctx.run_id)
    allocator, planned = Allocator(ctx, state_conn, client), 0
    for pairs in open_pairs(state_conn):
        allocator.run(pairs)
        planned += len(pairs)
    if planned:
        log.info("Allocations: %s", allocator.counts)
    return {"allocated": 0, **allocator.counts, "planned": planned}
