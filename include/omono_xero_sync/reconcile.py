"""Reconciliation: does Xero hold exactly what Omono says, for a range of document dates? (Owner of the
`xero_sync.reconciliations*` tables.)

Xero is read with the fewest calls: invoices (both kinds) in pages of 1,000 with summary fields only, credit notes
in pages of 1,000 (with their allocations), each filtered on `Date` (an optimised filter), within the day's
budget. Omono's documents of the range are loaded with their lines, and compared per document:
- present in Xero exactly once (by this integration's ids, else by number), with the expected status (cancelled
  in Omono: voided or deleted in Xero), the right contact and currency, and SubTotal/TotalTax/Total equal to the
  cent to Omono's document computed by Xero's rules (money.document_totals);
- a linked credit note's credit allocated to its invoice as the integration recorded it;
and Xero documents this integration wrote in the range that Omono no longer explains are orphans. Records already
red (held or refused) are counted as such, not reported twice. Each difference is stored, and is a red item in the
sync log and the failure alert until the next reconciliation; per entity and currency the counts and totals of both
sides are stored for the report page."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from functools import cached_property
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import allocate, entities, extract, matching, money, state, sync_log
from include.omono_xero_sync.settings import STATE_SCHEMA as S
from include.omono_xero_sync.sync_log import LogRow, RunContext
from include.omono_xero_sync.transform import number_in_xero

log = logging.getLogger(__name__)
GONE = {"VOIDED", "DELETED"}
RED = {"held", "failed"}
INTERVALS = {"off": None, "daily": 1, "weekly": 7, "monthly": 30}
SLICE = 20_000          # Omono documents a slice of days holds (Xero's side of a slice is read whole)
CHUNK = extract.CHUNK   # Omono documents (with their sync state) compared at a time within a slice


def default_range(today: date) -> tuple[date, date]:
    """This month and last month."""
    first_of_month = today.replace(day=1)
    return (first_of_month - timedelta(days=1)).replace(day=1), today


def is_due(conn: psycopg.Connection, today: date) -> bool:
    """At the interval chosen in General options (`reconcile_interval`, weekly by default, 'off' to stop)."""
    days = INTERVALS.get(str(state.get_setting(conn, "reconcile_interval")))
    if days is None:
        return False
    last = conn.execute(f"SELECT max(finished_at)::date AS d FROM {S}.reconciliations WHERE complete").fetchone()["d"]
    return last is None or (today - last).days >= days


@dataclass
class Difference:
    entity: str
    kind: str                    # missing, duplicate, status, contact, currency, totals, credit, orphan
    message: str
    omono_id: int | None = None
    omono_number: str | None = None
    xero_id: str | None = None
    xero_number: str | None = None


@dataclass
class Side:
    count: int = 0
    total: Decimal = Decimal(0)

    def add(self, amount: Decimal) -> None:
        self.count += 1
        self.total += amount


@dataclass
class Report:
    date_from: date
    date_to: date
    differences: list[Difference] = field(default_factory=list)
    omono: dict[tuple[str, str], Side] = field(default_factory=lambda: defaultdict(Side))
    xero: dict[tuple[str, str], Side] = field(default_factory=lambda: defaultdict(Side))
    already_red: int = 0
    complete: bool = True
    note: str = ""


# -- reading both sides -----------------------------------------------------------------------------------------
def _where(date_from: date, date_to: date) -> str:
    return (f"Date >= DateTime({date_from.year}, {date_from.month:02d}, {date_from.day:02d}) AND "
            f"Date <= DateTime({date_to.year}, {date_to.month:02d}, {date_to.day:02d})")


@dataclass(frozen=True, slots=True)
class XeroDocument:
    """What reconciliation needs of one Xero document, taken from each page as it arrives: an SDK model weighs
    several kilobytes and a slice can hold a whole day of a large organisation (16,000 documents at 1M)."""
    id: str
    type: str | None
    number: str | None
    status: str | None
    contact_id: str | None
    currency: str | None
    sub_total: Decimal
    total_tax: Decimal
    total: Decimal
    allocated: tuple[tuple[str, Decimal], ...] = ()      # a credit note's allocations: (invoice id, amount)

    @classmethod
    def of(cls, doc: Any) -> XeroDocument:
        def text(value: Any) -> str | None:
            value = matching.enum(value)
            return None if value is None else str(value)

        def amount(value: Any) -> Decimal:
            return Decimal(str(value or 0))
        return cls(str(getattr(doc, "invoice_id", None) or getattr(doc, "credit_note_id", None)), text(doc.type),
                   getattr(doc, "invoice_number", None) or getattr(doc, "credit_note_number", None),
                   text(doc.status), str(doc.contact.contact_id) if doc.contact else None, text(doc.currency_code),
                   amount(doc.sub_total), amount(doc.total_tax), amount(doc.total),
                   tuple((str(a.invoice.invoice_id), Decimal(str(a.amount)))
                         for a in getattr(doc, "allocations", None) or [] if a.invoice))


def read_xero(client: Any, date_from: date, date_to: date) -> dict[str, list[XeroDocument]]:
    """Xero's documents of the range by collection: ceil(n / 1,000) calls for each of invoices and credit notes."""
    where = _where(date_from, date_to)
    return {"Invoices": [XeroDocument.of(d) for d in matching.paged(
                lambda **p: client.read("get_invoices", **p), "invoices", where=where, page_size=matching.PAGE_SIZE,
                summary_only=True)],
            "CreditNotes": [XeroDocument.of(d) for d in matching.paged(
                lambda **p: client.read("get_credit_notes", **p), "credit_notes", where=where,
                page_size=matching.PAGE_SIZE)]}


def read_omono(omono: psycopg.Connection, date_from: date, date_to: date
               ) -> Iterator[tuple[entities.Entity, list[dict]]]:
    """Omono's documents of the range, CHUNK of one kind at a time, each with the totals Xero should show instead
    of its lines: a slice is at least a whole day (16,000 documents at 1M), so a comparison holds a chunk of
    Omono's records and their sync state, never the slice's."""
    ids = extract.changed_ids(omono, None, (date_from, date_to))
    for e in entities.DOCUMENTS:
        wanted = sorted(ids.get(e.name, ()))
        for i in range(0, len(wanted), CHUNK):
            chunk = extract.load_documents(omono, e.name, wanted[i:i + CHUNK])
            for rec in chunk:
                rec["expected"] = money.document_totals(rec.pop("lines"))
            yield e, chunk


# -- comparing ----------------------------------------------------------------------------------------------------
class Comparison:
    def __init__(self, conn: psycopg.Connection, report: Report, xero: dict[str, list[XeroDocument]]) -> None:
        self.conn, self.report = conn, report
        self.xero = xero
        self.by_id = {d.id: d for docs in xero.values() for d in docs}
        self.explained: set[str] = set()
        self._numbered: dict[str, dict[str, list[XeroDocument]]] = {}

    @cached_property
    def ours(self) -> dict[str, tuple[str, int]]:
        """Which of the slice's Xero documents this integration wrote (asked once: orphans and totals use it)."""
        return state.ours(self.conn, list(self.by_id))

    def numbered(self, entity: entities.Entity) -> dict[str, list[XeroDocument]]:
        """The slice's Xero documents of this kind by number, indexed once for all of its chunks."""
        if entity.name not in self._numbered:
            by_number: dict[str, list[XeroDocument]] = defaultdict(list)
            for d in self.xero[entity.collection]:
                if d.type == entity.xero_type:
                    by_number[matching.number_key(d.number or "")].append(d)
            self._numbered[entity.name] = by_number
        return self._numbered[entity.name]

    def entity(self, entity: entities.Entity, records: list[dict]) -> None:
        states = state.records(self.conn, entity.name, [r["id"] for r in records])
        companies = state.records(self.conn, "contact", sorted({r["company_id"] for r in records}))
        by_number = self.numbered(entity)
        for rec in records:
            self.record(entity, rec, states.get(rec["id"]), companies.get(rec["company_id"]), by_number)

    def record(self, entity: entities.Entity, rec: dict, st: dict | None, company: dict | None,
               by_number: dict[str, list[XeroDocument]]) -> None:
        number, currency = rec["number"], rec["currency_code"].strip()
        cancelled = rec.get("status") == "cancelled"
        expected: money.Totals = rec["expected"]
        if not cancelled:
            self.report.omono[(entity.name, currency)].add(expected.total)
        contact = str(company["xero_id"]) if company and company.get("xero_id") else None
        copies = [d for d in by_number.get(matching.number_key(number_in_xero(entity, rec)), [])
                  if contact is None or d.contact_id == contact]
        known = self.by_id.get(str(st["xero_id"])) if st and st["xero_id"] else None
        if known is not None and all(known.id != d.id for d in copies):
            copies.append(known)
        live = [d for d in copies if d.status not in GONE]
        self.explained |= {d.id for d in copies}
        if st and st["status"] in RED:
            self.report.already_red += 1          # red already, with its own message: not reported twice
            return
        diff = self._difference(entity, rec, live, copies, contact, expected, cancelled)
        if diff:
            kind, message, doc = diff
            self.report.differences.append(Difference(entity.name, kind, message, rec["id"], number,
                                                      doc.id if doc else None, doc.number if doc else None))

    def _difference(self, entity: entities.Entity, rec: dict, live: list[XeroDocument], copies: list[XeroDocument],
                    contact: str | None, expected: money.Totals, cancelled: bool
                    ) -> tuple[str, str, XeroDocument | None] | None:
        number, currency = rec["number"], rec["currency_code"].strip()
        noun = entity.noun.lower()
        if cancelled:
            if live:
                return ("status", f"{number} is cancelled in Omono but {live[0].status.lower()} in Xero. Void or "
                                  "delete it in Xero, or choose Retry on its record.", live[0])
            return None
        if not live:
            gone = copies[0] if copies else None
            what = f"{gone.status.lower()} in Xero" if gone else "not in Xero"
            return ("missing", f"{number} ({noun}) is {what}, while Omono has it issued. Choose Retry on its "
                               "record, or cancel it in Omono.", gone)
        if len(live) > 1:
            return ("duplicate", f"{number} is in Xero {len(live)} times. Void the extra copies in Xero.", live[1])
        doc = live[0]
        if contact and doc.contact_id != contact:
            return ("contact", f"{number} is in Xero for another contact than its Omono company.", doc)
        if doc.currency != currency:
            return ("currency", f"{number} is in {doc.currency} in Xero but in {currency} in Omono.", doc)
        actual = money.xero_totals(doc)
        if (actual.sub_total, actual.total_tax) != (expected.sub_total, expected.total_tax) or \
                money.cents(doc.total) != expected.total:
            return ("totals", f"{number}: Omono {expected.describe(currency)}, Xero {actual.describe(currency)}.",
                    doc)
        return None

    def credit(self, entity: entities.Entity, records: list[dict]) -> None:
        """A linked credit note's allocation in Xero against what the integration recorded for the pair."""
        recorded = allocate.recorded(self.conn, entity.name, [r["id"] for r in records])
        states = state.records(self.conn, entity.name, [r["id"] for r in records])
        invoice_entity = "dispatch_invoice" if entity.xero_type == "ACCRECCREDIT" else "delivery_invoice"
        invoices = state.records(self.conn, invoice_entity, [r["invoice_id"] for r in records if r.get("invoice_id")])
        for rec in records:
            st, pair = states.get(rec["id"]), recorded.get((rec["id"], rec.get("invoice_id")))
            note = self.by_id.get(str(st["xero_id"])) if st and st["xero_id"] else None
            invoice = invoices.get(rec.get("invoice_id"))
            if note is None or invoice is None or not invoice.get("xero_id") or not pair:
                continue
            applied = sum((amount for invoice_id, amount in note.allocated if invoice_id == str(invoice["xero_id"])),
                          Decimal(0))
            wanted = Decimal(str(pair["amount"] or 0)) if pair["status"] == "allocated" else Decimal(0)
            if money.cents(applied) != money.cents(wanted):
                self.report.differences.append(Difference(
                    entity.name, "credit", f"{rec['number']}: {money.text(applied, note.currency)} of its credit is "
                    f"allocated in Xero to {invoice['omono_number']}, where the integration allocated "
                    f"{money.text(wanted, note.currency)}.", rec["id"], rec["number"], str(st["xero_id"])))

    def xero_side(self) -> None:
        """Xero's count and total per entity and currency: the live documents Omono's records explain, and ours."""
        kinds = {e.xero_type: e.name for e in entities.DOCUMENTS}
        for xero_id in self.explained | set(self.ours):
            doc = self.by_id[xero_id]
            if doc.status not in GONE:
                self.report.xero[(kinds[doc.type], doc.currency)].add(doc.total)

    def orphans(self) -> None:
        ours = self.ours
        for xero_id in sorted(set(ours) - self.explained):
            doc = self.by_id[xero_id]
            if doc.status in GONE:
                continue
            entity, omono_id = ours[xero_id]
            self.report.differences.append(Difference(
                entity, "orphan", f"Xero holds {doc.number}, which this integration created for an Omono "
                "record that no longer explains it (deleted, renumbered or re-dated in Omono). Void it in Xero if it "
                "should not be in the books.", omono_id, doc.number, xero_id, doc.number))


# -- storing --------------------------------------------------------------------------------------------------------
def store(conn: psycopg.Connection, ctx: RunContext, report: Report, calls: int) -> int:
    """Keep the result (one statement per table) and put each difference in the sync log as red."""
    rec_id = conn.execute(
        f"INSERT INTO {S}.reconciliations (dag_id, run_id, date_from, date_to, calls, complete, note, already_red, "
        "summary) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
        (ctx.dag_id, ctx.run_id, report.date_from, report.date_to, calls, report.complete, report.note,
         report.already_red, summary_line(report, calls))).fetchone()["id"]
    keys = sorted(set(report.omono) | set(report.xero))
    conn.execute(
        f"INSERT INTO {S}.reconciliation_totals (reconciliation_id, entity, currency, omono_count, omono_total, "
        "xero_count, xero_total) SELECT %s, t->>0, t->>1, (t->>2)::int, (t->>3)::numeric, (t->>4)::int, "
        "(t->>5)::numeric FROM jsonb_array_elements(%s) t",
        (rec_id, Jsonb([[e, c, report.omono[(e, c)].count, str(report.omono[(e, c)].total),
                         report.xero[(e, c)].count, str(report.xero[(e, c)].total)] for e, c in keys])))
    conn.execute(
        f"INSERT INTO {S}.reconciliation_differences (reconciliation_id, entity, kind, omono_id, omono_number, "
        "xero_id, xero_number, message) SELECT %s, d->>'entity', d->>'kind', (d->>'omono_id')::bigint, "
        "d->>'omono_number', (d->>'xero_id')::uuid, d->>'xero_number', d->>'message' FROM jsonb_array_elements(%s) d",
        (rec_id, Jsonb([d.__dict__ for d in report.differences])))
    sync_log.write(conn, ctx, [LogRow(d.entity, d.omono_id or 0, d.omono_number, "failed", d.xero_id,
                                      [f"Reconciliation: {d.message}"]) for d in report.differences])
    conn.commit()
    return rec_id


def reconcile(ctx: RunContext, conn: psycopg.Connection, omono: psycopg.Connection, client: Any,
              date_range: tuple[date, date]) -> Report:
    from include.omono_xero_sync.xero_api import DailyLimitReached

    report = Report(*date_range)
    for part in slices(omono, *date_range):
        try:
            xero = read_xero(client, *part)
        except DailyLimitReached as exc:
            report.complete, report.note = False, f"Not compared from {part[0]:%d %b %Y}: {exc}"
            return report
        comparison = Comparison(conn, report, xero)
        for entity, records in read_omono(omono, *part):
            comparison.entity(entity, records)
            if entity.is_credit_note:
                comparison.credit(entity, [r for r in records if r.get("invoice_id")])
        comparison.orphans()
        comparison.xero_side()
    return report


def slices(omono: psycopg.Connection, date_from: date, date_to: date) -> list[tuple[date, date]]:
    """The range cut into runs of days holding at most SLICE Omono documents (one slice for most organisations,
    so two calls), each compared on its own: memory stays flat however many documents the range holds. A document
    re-dated across a cut shows as missing in one slice and as an orphan in the other."""
    days = omono.execute(
        "SELECT issue_date AS day, count(*) AS n FROM (SELECT issue_date FROM omono.dispatch_invoices UNION ALL "
        "SELECT issue_date FROM omono.delivery_invoices UNION ALL SELECT issue_date FROM omono.credit_notes) d "
        "WHERE issue_date BETWEEN %s AND %s GROUP BY 1 ORDER BY 1", (date_from, date_to)).fetchall()
    out, start, count = [], date_from, 0
    for row in days:
        day, n = row["day"], row["n"]
        if count and count + n > SLICE:
            out.append((start, day - timedelta(days=1)))
            start, count = day, 0
        count += n
    return [*out, (start, date_to)]


def summary_line(report: Report, calls: int) -> str:
    found = len(report.differences)
    head = (f"Reconciliation {report.date_from:%d %b %Y} to {report.date_to:%d %b %Y}: "
            + (f"{found} difference(s)" if found else "Xero agrees with Omono"))
    counts = sum(s.count for s in report.omono.values())
    extra = f"; {report.already_red} record(s) already red" if report.already_red else ""
    done = "" if report.complete else f" (incomplete: {report.note})"
    return f"{head} ({counts} Omono document(s){extra}; {calls} API call(s)){done}"


def summary_of_run(conn: psycopg.Connection, dag_id: str, run_id: str) -> str | None:
    row = conn.execute(f"SELECT summary FROM {S}.reconciliations WHERE dag_id = %s AND run_id = %s ORDER BY id DESC "
                       "LIMIT 1", (dag_id, run_id)).fetchone()
    return row["summary"] if row else None


def prune(conn: psycopg.Connection, days: int) -> None:
    """Reconciliations older than the log's retention, except the latest (its differences are still listed)."""
    conn.execute(f"DELETE FROM {S}.reconciliations WHERE finished_at < now() - make_interval(days => %s) AND "
                 f"id < (SELECT max(id) FROM {S}.reconciliations)", (days,))
