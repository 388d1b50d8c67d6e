"""The oracle: what must be true of Omono, Xero and the sync's own records, judged from the outside.

It compares Omono's tables with the emulator's stored objects (read through its admin API, not through the
sync), using Xero's arithmetic computed here independently (each line rounded to 2 dp, tax per line at Omono's
rate, half up), and reads the sync's state only to know which records it says are red, and to check that its
sync log and run summary tell the truth. Identity in Xero is what a bookkeeper would use: a contact carries
`OMONO-<id>` in ContactNumber; a document is its type, the number Xero shows (a bill: the supplier's invoice
number) and its contact.

Checks come in two sets: `always` (after every sync, whatever faults struck: no duplicate, nothing a person
typed overwritten, no credit misapplied, log and summary agreeing with the state) and `converged` (after a
final clean run: every Omono record in Xero exactly once with equal totals, or red with a plain message; no
credit under-applied). `CHECKS` lists them by name, so the product's own reconciliation (being built) can be
added beside them as one more check comparing its findings with these."""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import psycopg

from tests.histories.bookkeeper import Ledger
from tests.histories.world import World

GONE = {"VOIDED", "DELETED"}
CENT = Decimal("0.01")
# Words that betray a programmer's message rather than a bookkeeper's.
NOT_PLAIN = re.compile(r"Traceback|Exception\b|psycopg|HTTPStatus|\bNone\b|\{'|b'|object at 0x|KeyError|TypeError")
SYNCED_ACTIONS = {"created", "updated", "unchanged", "linked", "deleted", "voided"}


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class Violation:
    invariant: str          # duplicate, loss, wrong_total, overwrite, credit, log, dry_run
    record: str
    detail: str

    def __str__(self) -> str:
        return f"[{self.invariant}] {self.record}: {self.detail}"


@dataclass
class OmonoDoc:
    entity: str
    id: int
    number: str
    xero_type: str
    key_number: str                 # the number Xero shows
    company_id: int
    currency: str
    issue_date: str
    status: str
    invoice_id: int | None
    sub_total: Decimal
    total_tax: Decimal

    @property
    def label(self) -> str:
        return f"{self.entity} {self.number} (#{self.id})"


@dataclass
class Snapshot:
    """Everything the oracle looks at, read once."""

    companies: dict[int, dict]
    documents: dict[tuple[str, int], OmonoDoc]
    contacts: list[dict]
    invoices: list[dict]
    credit_notes: list[dict]
    states: dict[tuple[str, int], dict]
    allocations: list[dict]
    client_id: str
    ledger: Ledger
    by_contact_number: dict[str, list[dict]] = field(default_factory=dict)
    _copies: dict | None = None

    def __post_init__(self) -> None:
        for c in self.contacts:
            if c.get("ContactNumber"):
                self.by_contact_number.setdefault(c["ContactNumber"].strip().upper(), []).append(c)

    @property
    def xero_documents(self) -> list[dict]:
        return self.invoices + self.credit_notes

    def contact_of(self, company_id: int) -> dict | None:
        found = self.by_contact_number.get(f"OMONO-{company_id}", [])
        return found[0] if len(found) == 1 else None

    def red(self, entity: str, omono_id: int) -> bool:
        st = self.states.get((entity, omono_id))
        return bool(st and st["status"] in {"held", "failed"} and st["last_messages"])

    def allocation_red(self, entity: str, omono_id: int) -> bool:
        return any(a["entity"] == entity and a["omono_id"] == omono_id and a["status"] == "failed" and a["messages"]
                   for a in self.allocations)

    def claimed_ids(self) -> set[str]:
        return {str(s["xero_id"]) for s in self.states.values() if s["xero_id"]}


# -- reading --------------------------------------------------------------------------------------------------
def _doc_totals(lines: list[dict], rates: dict[str, Decimal]) -> tuple[Decimal, Decimal]:
    sub = tax = Decimal(0)
    for li in lines:
        gross = Decimal(li["quantity"]) * Decimal(li["unit_price"])
        discount = Decimal(li.get("discount_percent") or 0)
        amount = cents(gross * (100 - discount) / 100) if discount else cents(gross)
        sub += amount
        tax += cents(amount * rates.get(li["tax_code"] or "", Decimal(0)) / 100)
    return sub, tax


def _omono_documents(conn: psycopg.Connection) -> dict[tuple[str, int], OmonoDoc]:
    rates = {r["code"]: Decimal(r["rate"]) for r in conn.execute("SELECT code, rate FROM omono.tax_rates")}
    out: dict[tuple[str, int], OmonoDoc] = {}
    sources = (("dispatch_invoices", "dispatch_invoice_lines", "invoice_id", "'dispatch'"),
               ("delivery_invoices", "delivery_invoice_lines", "invoice_id", "'delivery'"),
               ("credit_notes", "credit_note_lines", "credit_note_id", "kind"))
    for table, line_table, key, kind in sources:
        lines: dict[int, list[dict]] = defaultdict(list)
        for li in conn.execute(f"SELECT * FROM omono.{line_table} ORDER BY {key}, line_no"):
            lines[li[key]].append(li)
        for d in conn.execute(f"SELECT *, {kind} AS doc_kind FROM omono.{table}"):
            entity, xero_type = {"dispatch": ("dispatch_invoice", "ACCREC"),
                                 "delivery": ("delivery_invoice", "ACCPAY"),
                                 "sales": ("sales_credit_note", "ACCRECCREDIT"),
                                 "purchase": ("purchase_credit_note", "ACCPAYCREDIT")}[d["doc_kind"]]
            key_number = d["number"]
            if xero_type == "ACCPAY" and (d.get("supplier_invoice_ref") or "").strip():
                key_number = d["supplier_invoice_ref"].strip()
            sub, tax = _doc_totals(lines[d["id"]], rates)
            out[(entity, d["id"])] = OmonoDoc(entity, d["id"], d["number"], xero_type, key_number, d["company_id"],
                                              d["currency_code"].strip(), str(d["issue_date"]), d["status"],
                                              d.get("invoice_id"), sub, tax)
    return out


def snapshot(world: World, ledger: Ledger) -> Snapshot:
    with world.db() as conn:
        companies = {r["id"]: r for r in conn.execute("SELECT * FROM omono.companies")}
        documents = _omono_documents(conn)
        states = {(r["entity"], r["omono_id"]): r for r in conn.execute("SELECT * FROM xero_sync.record_state")}
        allocations = conn.execute("SELECT * FROM xero_sync.allocations").fetchall()
    return Snapshot(companies, documents, world.objects("contacts"), world.objects("invoices"),
                    world.objects("creditnotes"), states, allocations, world.client_id, ledger)


# -- identity in Xero -----------------------------------------------------------------------------------------
def _number(doc: dict) -> str:
    return (doc.get("InvoiceNumber") or doc.get("CreditNoteNumber") or "").strip()


def _doc_id(doc: dict) -> str:
    return doc.get("InvoiceID") or doc.get("CreditNoteID")


def _key(doc: dict) -> tuple[str, str, str]:
    return doc["Type"], _number(doc).casefold(), doc["Contact"]["ContactID"]


def copies(snap: Snapshot) -> dict[tuple[str, str, str], list[dict]]:
    """Live documents in Xero that are the sync's (written by its app, or a person's the sync took as a record's
    copy), by (type, number, contact)."""
    if snap._copies is None:
        snap._copies = _copies(snap)
    return snap._copies


def _copies(snap: Snapshot) -> dict[tuple[str, str, str], list[dict]]:
    claimed = snap.claimed_ids()
    out: dict[tuple[str, str, str], list[dict]] = defaultdict(list)
    for doc in snap.xero_documents:
        if doc["Status"] in GONE:
            continue
        if doc.get("CreatedByApp") == snap.client_id or _doc_id(doc) in claimed:
            out[_key(doc)].append(doc)
    return out


def expected_key(snap: Snapshot, doc: OmonoDoc) -> tuple[str, str, str] | None:
    contact = snap.contact_of(doc.company_id)
    return (doc.xero_type, doc.key_number.casefold(), contact["ContactID"]) if contact else None


# -- the checks -----------------------------------------------------------------------------------------------
def check_duplicate_contacts(snap: Snapshot) -> list[Violation]:
    return [Violation("duplicate", number, f"{len(found)} Xero contacts carry this ContactNumber: "
                      + ", ".join(f"'{c.get('Name')}' {c.get('ContactStatus')}" for c in found))
            for number, found in snap.by_contact_number.items() if number.startswith("OMONO-") and len(found) > 1]


def check_duplicate_documents(snap: Snapshot) -> list[Violation]:
    """More live copies of a (type, number, contact) in Xero than Omono has issued documents with it."""
    wanted = Counter(k for d in snap.documents.values() if d.status == "issued" and (k := expected_key(snap, d)))
    out = []
    for key, docs in copies(snap).items():
        if len(docs) > max(wanted.get(key, 0), 1):
            out.append(Violation("duplicate", f"{key[0]} {_number(docs[0])}",
                                 f"{len(docs)} live copies in Xero for {wanted.get(key, 0)} Omono document(s): "
                                 + ", ".join(f"{_doc_id(d)[:8]} {d['Status']} {d['Total']}" for d in docs)))
    typed = snap.ledger.typed_documents
    typed_live = {_key(d) for d in snap.xero_documents if _doc_id(d) in typed and d["Status"] not in GONE
                  and _doc_id(d) not in snap.ledger.typed_after_ours}
    for key, docs in copies(snap).items():
        ours = [d for d in docs if d.get("CreatedByApp") == snap.client_id]
        if ours and key in typed_live:
            out.append(Violation("duplicate", f"{key[0]} {_number(ours[0])}", "the sync created its own copy "
                                 "although the bookkeeper had already typed this document (same number, same contact)"))
    return out


def check_shared_copies(snap: Snapshot) -> list[Violation]:
    """Two Omono records the sync says are the same Xero document: one of them is not in Xero."""
    by_id: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (entity, omono_id), st in snap.states.items():
        if st["xero_id"] and entity != "contact" and st["status"] == "synced":
            by_id[str(st["xero_id"])].append((entity, omono_id))
    for recs in by_id.values():
        recs.sort()
    return [Violation("loss", " and ".join(f"{e} #{i}" for e, i in recs),
                      f"both records point at the one Xero document {xid[:8]}")
            for xid, recs in by_id.items() if len(recs) > 1]


def check_typed_untouched(snap: Snapshot) -> list[Violation]:
    """A person's own document or contact is never changed by the sync (unless the sync took it as a record's
    copy: a contact matched by name or account number, a document with exactly Omono's content)."""
    claimed = snap.claimed_ids()
    current = {_doc_id(d): d for d in snap.xero_documents}
    out = []
    for doc_id, before in snap.ledger.typed_documents.items():
        now = current.get(doc_id)
        if now is None or doc_id in claimed:
            continue
        changed = [k for k in ("Status", "Total", "SubTotal", "CurrencyCode", "Date", "InvoiceNumber",
                               "CreditNoteNumber", "Reference") if before.get(k) != now.get(k)]
        if _lines(before) != _lines(now):
            changed.append("LineItems")
        if before["Contact"]["ContactID"] != now["Contact"]["ContactID"]:
            changed.append("Contact")
        if changed:
            out.append(Violation("overwrite", f"{now['Type']} {_number(now)} typed in Xero",
                                 f"changed by the sync: {', '.join(changed)}"))
    contacts = {c["ContactID"]: c for c in snap.contacts}
    for contact_id, before in snap.ledger.typed_contacts.items():
        now = contacts.get(contact_id)
        if now is None or (now.get("ContactNumber") or "").upper().startswith("OMONO-"):
            continue
        changed = [k for k in ("Name", "AccountNumber", "ContactNumber", "EmailAddress", "ContactStatus")
                   if before.get(k) != now.get(k)]
        if changed:
            out.append(Violation("overwrite", f"contact '{before.get('Name')}' typed in Xero",
                                 f"changed by the sync: {', '.join(changed)}"))
    for doc_id in snap.ledger.approved:
        now = current.get(doc_id)
        if now and now["Status"] in {"DRAFT", "SUBMITTED"}:
            out.append(Violation("overwrite", f"{now['Type']} {_number(now)}",
                                 f"approved by the bookkeeper, now {now['Status']} again"))
    return out


def _lines(doc: dict) -> list[tuple]:
    return [(li.get("Description"), li.get("Quantity"), li.get("UnitAmount"), li.get("AccountCode"),
             li.get("TaxType")) for li in doc.get("LineItems", [])]


def check_credit(snap: Snapshot, *, converged: bool) -> list[Violation]:
    """Allocations go only to the invoice Omono links a credit note to, once; at convergence a linked pair that
    both are approved with credit left and an amount due is allocated, or red."""
    invoices = {d["InvoiceID"]: d for d in snap.invoices}
    out = []
    for note in snap.credit_notes:
        if note.get("CreatedByApp") != snap.client_id and note["CreditNoteID"] not in snap.claimed_ids():
            continue
        omono = _omono_of(snap, note)
        label = f"{note['Type']} {_number(note)}"
        allocations = note.get("Allocations") or []
        linked = snap.documents.get((_invoice_entity(note), omono.invoice_id)) if omono and omono.invoice_id else None
        target = _our_copy(snap, linked) if linked and linked.status == "issued" else None
        record = (omono.entity, omono.id) if omono else _record_of(snap, note)
        red = record is not None and (snap.red(*record) or snap.allocation_red(*record))
        red = red or (linked is not None and snap.red(linked.entity, linked.id))
        for invoice_id, n in Counter(a["InvoiceID"] for a in allocations).items():
            number = _number(invoices.get(invoice_id, {}))
            if target is None or invoice_id != target["InvoiceID"]:
                # an invoice deleted or cancelled in Omono that Xero cannot void for this very credit is red itself
                holder = _record_of(snap, invoices[invoice_id]) if invoice_id in invoices else None
                if not red and not (holder and snap.red(*holder)):
                    now = "no invoice" if linked is None else f"{linked.number}, {linked.status}"
                    out.append(Violation("credit", label, f"allocated to {number} in Xero, while Omono links it to "
                                         f"{now}; nothing is red"))
            elif n > 1:
                out.append(Violation("credit", label, f"allocated {n} times to {number}"))
        if converged and target is not None and not red and not (linked and snap.red(linked.entity, linked.id)) \
                and note["Status"] == "AUTHORISED" and target["Status"] == "AUTHORISED" \
                and note.get("RemainingCredit", 0) > 0 and target.get("AmountDue", 0) > 0:
            out.append(Violation("credit", label, f"{note['RemainingCredit']} credit left and {target['AmountDue']} "
                                 f"due on {linked.number}, both approved, yet not allocated and not red"))
    return out


def _invoice_entity(note: dict) -> str:
    return "dispatch_invoice" if note["Type"] == "ACCRECCREDIT" else "delivery_invoice"


def _omono_of(snap: Snapshot, xero_doc: dict) -> OmonoDoc | None:
    key = _key(xero_doc)
    found = [d for d in snap.documents.values() if expected_key(snap, d) == key]
    return found[0] if len(found) == 1 else None


def _our_copy(snap: Snapshot, doc: OmonoDoc) -> dict | None:
    key = expected_key(snap, doc)
    found = copies(snap).get(key, []) if key else []
    return found[0] if len(found) == 1 else None


def check_messages(snap: Snapshot) -> list[Violation]:
    """Red means a plain message: never empty, never a programmer's words."""
    out = []
    for (entity, _omono_id), st in snap.states.items():
        if st["status"] not in {"held", "failed"}:
            continue
        messages = st["last_messages"] or []
        if not messages:
            out.append(Violation("log", f"{entity} {st['omono_number']}", f"{st['status']} without any message"))
        for m in messages:
            if NOT_PLAIN.search(m):
                out.append(Violation("log", f"{entity} {st['omono_number']}", f"message is not plain: {m[:160]}"))
    for a in snap.allocations:
        if a["status"] == "failed" and not a["messages"]:
            out.append(Violation("log", f"{a['entity']} #{a['omono_id']}", "refused allocation without a message"))
    return out


def check_converged_contacts(snap: Snapshot) -> list[Violation]:
    out = []
    for cid, company in snap.companies.items():
        if snap.red("contact", cid):
            continue
        found = snap.by_contact_number.get(f"OMONO-{cid}", [])
        label = f"company #{cid} '{company['name']}'"
        if company["archived"]:
            if any(c.get("ContactStatus") == "ACTIVE" for c in found):
                out.append(Violation("loss", label, "archived in Omono, still active in Xero, not red"))
            continue
        if len(found) != 1:
            out.append(Violation("loss", label, f"{len(found)} Xero contacts with OMONO-{cid}, not red"))
            continue
        name = " ".join((company["name"] or "").split())
        if found[0].get("Name") != name or (found[0].get("AccountNumber") or None) != (
                (company["account_number"] or "").strip() or None):
            out.append(Violation("loss", label, f"Xero has '{found[0].get('Name')}' / "
                                 f"{found[0].get('AccountNumber')}; the change was not sent and it is not red"))
    return out


def check_converged_documents(snap: Snapshot) -> list[Violation]:
    """Every Omono document in Xero exactly once with equal totals, or red; a cancelled or deleted one not live."""
    live = copies(snap)
    out: list[Violation] = []
    expected: dict[tuple, list[OmonoDoc]] = defaultdict(list)
    for doc in snap.documents.values():
        if doc.status != "issued":
            continue
        key = expected_key(snap, doc)
        if key is None:
            if not snap.red(doc.entity, doc.id):
                out.append(Violation("loss", doc.label, "its company is not in Xero, and it is not red"))
            continue
        expected[key].append(doc)
    for key, docs in expected.items():
        out += _compare(snap, docs, live.get(key, []))
    wanted = set(expected)
    for key, docs in live.items():
        if key in wanted:
            continue
        for xero_doc in docs:
            omono = _record_of(snap, xero_doc)
            if omono is None or not snap.red(*omono):
                out.append(Violation("loss", f"{xero_doc['Type']} {_number(xero_doc)}", "live in Xero, but Omono has "
                                     f"no issued document it stands for ({omono}), and nothing is red"))
    return out


def _record_of(snap: Snapshot, xero_doc: dict) -> tuple[str, int] | None:
    for (entity, omono_id), st in snap.states.items():
        if st["xero_id"] and str(st["xero_id"]) == _doc_id(xero_doc):
            return entity, omono_id
    return None


def _compare(snap: Snapshot, docs: list[OmonoDoc], found: list[dict]) -> list[Violation]:
    out = []
    unmatched = list(found)
    for doc in sorted(docs, key=lambda d: d.id):
        match = next((x for x in unmatched if _same_totals(doc, x)), None)
        if match is not None:
            unmatched.remove(match)
            if (match["CurrencyCode"] != doc.currency or match.get("Date") != doc.issue_date) \
                    and not snap.red(doc.entity, doc.id):
                out.append(Violation("wrong_total", doc.label, f"Xero has {match['CurrencyCode']} dated "
                                         f"{match.get('Date')}; Omono {doc.currency} dated {doc.issue_date}"))
            continue
        if snap.red(doc.entity, doc.id) or _gone_by_bookkeeper(snap, doc):
            continue
        if unmatched:
            other = unmatched.pop(0)
            out.append(Violation("wrong_total", doc.label, f"Omono {doc.sub_total} + {doc.total_tax}; Xero "
                                 f"{other['SubTotal']} + {other['TotalTax']} ({other['Status']}), not red"))
        else:
            out.append(Violation("loss", doc.label, "not in Xero and not red"))
    return out


def _same_totals(doc: OmonoDoc, xero_doc: dict) -> bool:
    return (Decimal(str(xero_doc["SubTotal"])) == doc.sub_total
            and Decimal(str(xero_doc["TotalTax"])) == doc.total_tax)


def _gone_by_bookkeeper(snap: Snapshot, doc: OmonoDoc) -> bool:
    """The bookkeeper voided or deleted the sync's copy in Xero: their decision, not a loss."""
    key = expected_key(snap, doc)
    return any(_key(d) == key and _doc_id(d) in snap.ledger.gone for d in snap.xero_documents)


def check_cancelled(snap: Snapshot) -> list[Violation]:
    live = copies(snap)
    out = []
    for doc in snap.documents.values():
        key = expected_key(snap, doc)
        if doc.status == "issued" or key is None or snap.red(doc.entity, doc.id):
            continue
        issued_twins = [d for d in snap.documents.values() if d.status == "issued" and expected_key(snap, d) == key]
        if len(live.get(key, [])) > len(issued_twins):
            out.append(Violation("loss", doc.label, "cancelled in Omono, still live in Xero, and not red"))
    return out


def check_not_stuck(snap: Snapshot) -> list[Violation]:
    return [Violation("loss", f"{e} {st['omono_number']}", f"still {st['status']} after a clean run")
            for (e, _i), st in snap.states.items() if st["status"] in {"pending", "sending"}]


# -- the sync's own account of itself ---------------------------------------------------------------------------
def check_log_agrees(world: World, snap: Snapshot, run_ids: list[str], complete: set[str]) -> list[Violation]:
    """For the runs of this sync: each record's state is what the run's last sync-log row for it says; a run that
    finished leaves nothing pending; every id a row names as created/updated/linked exists in Xero; the run
    summary's 'Needs attention' is the number of red records, refused allocations and the latest reconciliation's
    differences."""
    out: list[Violation] = []
    ids = {_doc_id(d) for d in snap.xero_documents} | {c["ContactID"] for c in snap.contacts}
    with world.db() as conn:
        for run_id in run_ids:
            rows = conn.execute("SELECT * FROM xero_sync.sync_log WHERE run_id = %s AND NOT dry_run ORDER BY id",
                                (run_id,)).fetchall()
            out += _rows_vs_state(snap, run_id, rows, ids, run_id in complete)
            out += _summary_vs_state(conn, snap, run_id)
    return out


def _rows_vs_state(snap: Snapshot, run_id: str, rows: list[dict], ids: set[str], complete: bool) -> list[Violation]:
    out = []
    last: dict[tuple[str, int], dict] = {}
    for row in rows:
        if row["task_id"] == "allocate_credit_notes":
            continue                  # an allocation's outcome is the pair's, not the credit note's own
        if row["action"] in {"created", "updated", "linked"} and row["xero_id"] and str(row["xero_id"]) not in ids:
            out.append(Violation("log", f"{row['entity']} {row['omono_number']}",
                                 f"log says {row['action']} as {row['xero_id']}, which Xero does not have"))
        last[(row["entity"], row["omono_id"])] = row
    for key, st in snap.states.items():
        if st["last_run_id"] != run_id:
            continue
        row = last.get(key)
        label = f"{key[0]} {st['omono_number']}"
        if st["status"] == "synced" and row is not None and row["action"] not in SYNCED_ACTIONS:
            out.append(Violation("log", label, f"state synced, but this run's log says {row['action']}"))
        elif st["status"] in {"held", "failed"} and row is not None and row["action"] != st["status"]:
            out.append(Violation("log", label, f"state {st['status']}, but this run's log says {row['action']}"))
        elif complete and st["status"] in {"pending", "sending"}:
            out.append(Violation("log", label, f"still {st['status']} after run {run_id} finished every step"))
    return out


def _summary_vs_state(conn: psycopg.Connection, snap: Snapshot, run_id: str) -> list[Violation]:
    from include.omono_xero_sync.pipeline import render_summary
    from include.omono_xero_sync.sync_log import RunContext

    text = render_summary(conn, RunContext("omono_xero_sync", run_id, "summarise"), 0)
    red = sum(1 for st in snap.states.values() if st["status"] in {"held", "failed"})
    red += sum(1 for a in snap.allocations if a["status"] == "failed")
    red += conn.execute("SELECT count(*) AS n FROM xero_sync.reconciliation_differences WHERE reconciliation_id = "
                        "(SELECT max(id) FROM xero_sync.reconciliations)").fetchone()["n"]   # red until the next one
    m = re.search(r"Needs attention: (\d+) record", text)
    said = int(m.group(1)) if m else 0
    if said != red:
        return [Violation("log", f"summary of {run_id}", f"says {said} record(s) need attention; the state has {red}")]
    return []


def check_dry_run(world: World, before: dict[str, Any], since_seq: int) -> list[Violation]:
    """A dry run sends nothing and changes no record's state."""
    writes = [r for r in world.requests_since(since_seq) if r["method"] in {"POST", "PUT"}
              and r["path"].startswith("/api.xro")]
    out = [Violation("dry_run", f"{w['method']} {w['path']}", "a dry run wrote to Xero") for w in writes]
    after = dry_run_fingerprint(world)
    if after != before:
        out.append(Violation("dry_run", "record_state", "a dry run changed what the sync records about Xero"))
    return out


def dry_run_fingerprint(world: World) -> dict[str, Any]:
    with world.db() as conn:
        rows = conn.execute("SELECT entity, omono_id, xero_id, content_hash, xero_status FROM xero_sync.record_state "
                            "ORDER BY 1, 2").fetchall()
    return {"states": [tuple(r.values()) for r in rows]}


_DOCUMENT_LABEL = re.compile(r"^(ACCREC|ACCPAY|ACCRECCREDIT|ACCPAYCREDIT) (.+)$")


def reconciliation_differences(world: World) -> list[dict]:
    """What the product's latest reconciliation found (its own tables)."""
    with world.db() as conn:
        return conn.execute("SELECT d.entity, d.omono_number, d.message FROM xero_sync.reconciliation_differences d "
                            "WHERE d.reconciliation_id = (SELECT max(id) FROM xero_sync.reconciliations)").fetchall()


def check_reconciliation_finds(found: list[Violation], differences: list[dict]) -> list[Violation]:
    """The product's reconciliation, run after the final clean run, must report every document this oracle finds
    wrong (lost, wrong totals, credit misapplied): a bookkeeper relies on it to see what the oracle sees. (Its
    further findings, e.g. a document the bookkeeper voided, are the bookkeeper's to judge, not violations.)"""
    out = []
    for v in found:
        label = _DOCUMENT_LABEL.match(v.record)
        if v.invariant not in {"loss", "wrong_total", "credit"} or not label:
            continue
        number = label.group(2).strip().casefold()
        if not any(number == (d["omono_number"] or "").strip().casefold() or number in d["message"].casefold()
                   for d in differences):
            out.append(Violation("reconcile", v.record, f"the oracle found '{v.detail}', the reconciliation "
                                 "reported nothing about it"))
    return out


ALWAYS: dict[str, Callable[[Snapshot], list[Violation]]] = {
    "duplicate contacts": check_duplicate_contacts,
    "duplicate documents": check_duplicate_documents,
    "records sharing one Xero document": check_shared_copies,
    "typed in Xero untouched": check_typed_untouched,
    "credit applied only where Omono links it": lambda s: check_credit(s, converged=False),
    "red means a plain message": check_messages,
}
CONVERGED: dict[str, Callable[[Snapshot], list[Violation]]] = {
    "every company in Xero once, or red": check_converged_contacts,
    "every document in Xero once with equal totals, or red": check_converged_documents,
    "cancelled or deleted documents not live in Xero, or red": check_cancelled,
    "no credit under-applied": lambda s: check_credit(s, converged=True),
    "nothing left pending": check_not_stuck,
}
CHECKS = {**ALWAYS, **CONVERGED}


def judge(snap: Snapshot, *, converged: bool, credit: bool = True) -> list[Violation]:
    """`credit=False` after a sync that cannot have acted on Omono's latest links (no run got through, or Omono
    changed while it ran): a credit note unlinked or deleted since is not the sync's fault yet."""
    checks = {**ALWAYS, **(CONVERGED if converged else {})}
    if converged or not credit:
        checks.pop("credit applied only where Omono links it")     # the converged credit check covers it
    found: list[Violation] = []
    for check in checks.values():
        found += check(snap)
    return list(dict.fromkeys(found))
