"""Push: send one kind of record to Xero in batches of at most 50, and record every outcome.

The rules that keep Xero free of duplicates:
- A record Xero already has (its Xero id is known) is updated by id, and only when what would be sent differs
  from what Xero last accepted.
- A record without a known Xero id (new, or its last write's outcome was lost) is first looked up in Xero:
  contacts by ContactNumber (Omono's id), then account number, then name; documents by number. A match that
  is ours is adopted and updated; a document number used by something else is a clash and is held.
- Before a batch is sent its records are marked 'sending' with the batch's idempotency key, in a committed
  transaction. If the answer is lost, the next attempt finds them 'sending', looks them up as above and, within
  Xero's 6 minutes, the same key replays Xero's cached answer.
- Batches use `summarizeErrors=false`, so one bad element never fails its batch-mates.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import entities, extract, settings, state, sync_log, transform
from include.omono_xero_sync.entities import Entity
from include.omono_xero_sync.sync_log import LogRow, RunContext
from include.omono_xero_sync.xero_api import DailyLimitReached, to_model

log = logging.getLogger(__name__)
S = settings.STATE_SCHEMA
_STATUS_ORDER = {"DRAFT": 0, "SUBMITTED": 1, "AUTHORISED": 2}
DRY_RUN_CONTACT = "(the contact this dry run would create)"


@dataclass
class Plan:
    """One record to write: its queue row, payload and what the write means."""

    omono_id: int
    number: str | None
    payload: dict
    digest: str
    action: str                  # created, updated, deleted, voided
    xero_id: str | None = None


@dataclass
class PushResult:
    entity: str
    counts: dict[str, int] = field(default_factory=dict)
    calls: int = 0
    stopped: str | None = None   # why the run stopped early (daily budget)

    def add(self, action: str, n: int = 1) -> None:
        self.counts[action] = self.counts.get(action, 0) + n


def _chunks(items: list[Any], size: int) -> Iterable[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


class Pusher:
    def __init__(self, ctx: RunContext, entity: Entity, conn: psycopg.Connection, client: Any) -> None:
        self.ctx, self.entity, self.conn, self.client = ctx, entity, conn, client
        self.result = PushResult(entity.name)
        self.rows: list[LogRow] = []

    # -- bookkeeping -----------------------------------------------------------------------------------------
    def _outcome(self, omono_id: int, number: str | None, action: str, status: str, *, messages: list[str],
                 sent: Any = None, answer: Any = None, xero_id: str | None = None, **state_fields: Any) -> None:
        self.result.add(action)
        self.rows.append(LogRow(self.entity.name, omono_id, number, action, xero_id, messages, sent, answer))
        if xero_id is not None:
            state_fields.setdefault("xero_id", xero_id)
        if not self.ctx.dry_run:
            state.set_status(self.conn, self.entity.name, omono_id, status, self.ctx.run_id, messages=messages,
                             **state_fields)
        queue_state = "held" if status == "held" else "done"
        self.conn.execute(f"UPDATE {S}.run_queue SET state = %s, messages = %s WHERE run_id = %s AND entity = %s "
                              "AND omono_id = %s", (queue_state, Jsonb(messages),
                                                    self.ctx.run_id, self.entity.name, omono_id))

    def _flush(self) -> None:
        sync_log.write(self.conn, self.ctx, self.rows)
        self.rows = []
        self.conn.commit()

    # -- planning -------------------------------------------------------------------------------------------
    def plan(self) -> list[Plan]:
        items = extract.queued(self.conn, self.ctx.run_id, self.entity.name)
        states = state.records(self.conn, self.entity.name, [i["omono_id"] for i in items])
        plans: list[Plan] = []
        if self.entity is entities.CONTACT:
            for item in items:
                plan = self._plan_contact(item["record"], states.get(item["omono_id"]))
                if plan:
                    plans.append(plan)
        else:
            companies = state.records(self.conn, "contact", sorted({i["record"]["company_id"] for i in items}))
            if self.ctx.dry_run:      # companies this dry run would create stand in for their future Xero ids
                for q in extract.queued(self.conn, self.ctx.run_id, "contact", only="done"):
                    companies.setdefault(q["omono_id"], {"xero_id": DRY_RUN_CONTACT, "last_messages": []})
            accounts, taxes = state.account_mappings(self.conn), state.tax_mappings(self.conn)
            default = str(state.get_setting(self.conn, f"status.{self.entity.name}"))
            for item in items:
                plan = self._plan_document(item["record"], states.get(item["omono_id"]),
                                           companies.get(item["record"]["company_id"]), accounts, taxes, default)
                if plan:
                    plans.append(plan)
        self._flush()
        return plans

    def _unchanged_or_stuck(self, rec_id: int, number: str | None, payload: dict, digest: str,
                            st: dict | None) -> bool:
        """True when nothing needs sending: Xero has this content, or Xero refused exactly this before."""
        if st and st["xero_id"] and st["content_hash"] == digest:      # only ever set when Xero accepted it
            self._outcome(rec_id, number, "unchanged", "synced", messages=[], xero_id=str(st["xero_id"]))
            return True
        if st and st["status"] == "failed" and st["last_sent"] is not None and \
                transform.content_hash(st["last_sent"]) == digest:
            self.result.add("still failing")      # no new call: Xero refused this exact content already
            self.conn.execute(f"UPDATE {S}.run_queue SET state = 'done' WHERE run_id = %s AND entity = %s AND "
                              "omono_id = %s", (self.ctx.run_id, self.entity.name, rec_id))
            return True
        return False

    def _plan_contact(self, rec: dict, st: dict | None) -> Plan | None:
        number = rec.get("account_number") or rec["name"]
        xero_id = str(st["xero_id"]) if st and st["xero_id"] else None
        if rec.get("archived") and not xero_id:
            self._outcome(rec["id"], number, "unchanged", "synced", messages=[
                "Archived in Omono and never sent to Xero, so there is nothing to send."])
            return None
        payload = transform.contact(rec, xero_id)
        digest = transform.content_hash(payload)
        if self._unchanged_or_stuck(rec["id"], number, payload, digest, st):
            return None
        return Plan(rec["id"], number, payload, digest, "updated" if xero_id else "created", xero_id)

    def _plan_document(self, rec: dict, st: dict | None, company: dict | None, accounts: dict, taxes: dict,
                       default_status: str) -> Plan | None:
        entity, number = self.entity, rec["number"]
        xero_id = str(st["xero_id"]) if st and st["xero_id"] else None
        xero_status = st["xero_status"] if st else None
        if rec.get("status") == "cancelled":
            return self._plan_cancellation(rec, xero_id, xero_status)
        if not company or not company["xero_id"]:
            why = "; ".join(company["last_messages"]) if company and company["last_messages"] else \
                "it has not been sent yet"
            self._outcome(rec["id"], number, "held", "held", messages=[
                f"{number} waits for its company '{rec['company_name']}', which is not in Xero yet: {why}"])
            return None
        status = default_status
        if xero_status in _STATUS_ORDER and _STATUS_ORDER[xero_status] > _STATUS_ORDER.get(default_status, 0):
            status = xero_status     # approved in Xero by the bookkeeper: an edit must not un-approve it
        payload = transform.document(entity, rec, str(company["xero_id"]), accounts, taxes, status, xero_id)
        digest = transform.content_hash(payload)
        if self._unchanged_or_stuck(rec["id"], number, payload, digest, st):
            return None
        return Plan(rec["id"], number, payload, digest, "updated" if xero_id else "created", xero_id)

    def _plan_cancellation(self, rec: dict, xero_id: str | None, xero_status: str | None) -> Plan | None:
        number = rec["number"]
        if not xero_id or xero_status in {"DELETED", "VOIDED"}:
            note = ("Cancelled in Omono before it reached Xero; nothing to send." if not xero_id
                    else f"Cancelled in Omono and already {xero_status.lower()} in Xero.")
            self._outcome(rec["id"], number, "unchanged", "synced", messages=[note],
                          xero_id=xero_id)
            return None
        target, action = ("DELETED", "deleted") if xero_status in {"DRAFT", "SUBMITTED"} else ("VOIDED", "voided")
        payload = transform.status_change(self.entity, xero_id, target)
        return Plan(rec["id"], number, payload, transform.content_hash(payload), action, xero_id)

    # -- look-ups -------------------------------------------------------------------------------------------
    def resolve_unknown(self, plans: list[Plan]) -> list[Plan]:
        """Give every plan without a Xero id one, if Xero already has the record; hold number clashes."""
        fresh = [p for p in plans if p.xero_id is None]
        if not fresh:
            return plans
        if self.entity is entities.CONTACT:
            return self._match_contacts(plans, fresh)
        return self._match_documents(plans, fresh)

    def _match_contacts(self, plans: list[Plan], fresh: list[Plan]) -> list[Plan]:
        by_number: dict[str, dict] = {}
        by_account: dict[str, dict] = {}
        by_name: dict[str, dict] = {}
        page = 1
        while True:
            batch = self.client.read("get_contacts", page=page, page_size=1000, include_archived=True,
                                     summary_only=True).contacts or []
            for c in batch:
                found = {"id": c.contact_id, "status": getattr(c.contact_status, "value", c.contact_status)}
                if c.contact_number:
                    by_number[c.contact_number.lower()] = found
                if c.account_number:
                    by_account[c.account_number.strip().lower()] = found
                if c.name and found["status"] == "ACTIVE":
                    by_name[c.name.strip().lower()] = found
            if len(batch) < 1000:
                break
            page += 1
        for p in fresh:
            body = p.payload
            match = (by_number.get(body["ContactNumber"].lower())
                     or by_account.get((body.get("AccountNumber") or "").lower())
                     or by_name.get(body["Name"].lower()))
            if match:
                p.xero_id, p.action = match["id"], "updated"
                p.payload = {**body, "ContactID": match["id"]}
                self._remember_match(p)
                log.info("Company %s matched existing Xero contact %s", p.number, match["id"])
        return plans

    def _match_documents(self, plans: list[Plan], fresh: list[Plan]) -> list[Plan]:
        entity = self.entity
        found: dict[str, Any] = {}
        for chunk in _chunks([p.number for p in fresh if p.number], settings.LOOKUP_BATCH):
            if entity.is_credit_note:
                where = " OR ".join(f'CreditNoteNumber=="{n.replace(chr(34), "")}"' for n in chunk)
                docs = self.client.read("get_credit_notes", where=where).credit_notes or []
                pairs = [(d.credit_note_number, d, d.credit_note_id) for d in docs]
            else:
                docs = self.client.read("get_invoices", invoice_numbers=chunk).invoices or []
                pairs = [(d.invoice_number, d, d.invoice_id) for d in docs]
            for doc_number, doc, doc_id in pairs:
                status = getattr(doc.status, "value", doc.status)
                if doc_number and status != "DELETED":
                    found.setdefault(doc_number.lower(), []).append((doc, doc_id, status))
        kept: list[Plan] = []
        for p in plans:
            hits = found.get((p.number or "").lower()) if p.xero_id is None else None
            if not hits:
                kept.append(p)
                continue
            ours = [h for h in hits if getattr(h[0].type, "value", h[0].type) == entity.xero_type
                    and h[0].contact and h[0].contact.contact_id == p.payload["Contact"]["ContactID"]]
            if ours:
                doc, doc_id, status = ours[0]
                if _locked(doc, status):
                    # Already in Xero (e.g. resent after a reset) and locked there by a payment or credit:
                    # adopted as it is; an update could only be refused.
                    self._outcome(p.omono_id, p.number, "unchanged", "synced", xero_id=str(doc_id), messages=[
                        f"{p.number} is already in Xero, where a payment or credit locks it; it was linked and "
                        "left as it is."], content_hash=p.digest, xero_status=status, xero_number=p.number)
                    continue
                p.xero_id = doc_id
                p.payload = {**p.payload, entity.id_key: doc_id}
                if status in _STATUS_ORDER and _STATUS_ORDER[status] > _STATUS_ORDER.get(p.payload["Status"], 0):
                    p.payload["Status"] = status
                    p.digest = transform.content_hash(p.payload)
                p.action = "updated"
                self._remember_match(p)
                log.info("%s matched existing Xero document %s (%s)", p.number, doc_id, status)
                kept.append(p)
            else:
                doc = hits[0][0]
                other = doc.contact.name if doc.contact and doc.contact.name else "another contact"
                kind = getattr(doc.type, "value", doc.type)
                self._outcome(p.omono_id, p.number, "held", "held", messages=[
                    f"{p.number} is already used in Xero by a different document ({kind} for '{other}'). Omono's "
                    "document numbers must not clash with Xero's: raise Omono's starting number or renumber the "
                    "Xero document, then Retry."])
        self._flush()
        return kept

    def _remember_match(self, plan: Plan) -> None:
        """Keep the Xero id of a record found in Xero, so that a run stopped before writing need not look again."""
        if not self.ctx.dry_run:
            self.conn.execute(f"UPDATE {S}.record_state SET xero_id = %s WHERE entity = %s AND omono_id = %s",
                              (plan.xero_id, self.entity.name, plan.omono_id))

    # -- writes ---------------------------------------------------------------------------------------------
    def write(self, plans: list[Plan]) -> None:
        entity = self.entity
        method = "update_or_create_contacts" if entity is entities.CONTACT else (
            "update_or_create_credit_notes" if entity.is_credit_note else "update_or_create_invoices")
        batches = list(_chunks(plans, settings.BATCH_SIZE))
        done = 0
        for n, batch in enumerate(batches, start=1):
            elements = [transform.jsonable(p.payload) for p in batch]
            key = transform.idempotency_key(self.client.xero.tenant_id if self.client else "", method, elements)
            if self.ctx.dry_run:
                for p in batch:
                    self._outcome(p.omono_id, p.number, p.action, "pending", xero_id=p.xero_id,
                                  sent=transform.jsonable(p.payload),
                                  messages=[f"Dry run: would be {p.action} in Xero; nothing was sent."])
                self._flush()
                continue
            for p in batch:
                state.set_status(self.conn, entity.name, p.omono_id, "sending", self.ctx.run_id,
                                 sending_key=key, sending_since=_now())
            self.conn.commit()
            try:
                body = to_model(entity.collection, {entity.collection: elements})
                extra = {} if entity is entities.CONTACT else {"unitdp": 4}
                answer = self.client.write(method, body, summarize_errors=False, idempotency_key=key, **extra)
            except DailyLimitReached as exc:
                for p in batch:
                    state.set_status(self.conn, entity.name, p.omono_id, "pending", self.ctx.run_id,
                                     messages=[str(exc)], sending_key=None, sending_since=None)
                self.conn.commit()
                self.result.stopped = str(exc)
                log.warning("%s", exc)
                return
            self._record(batch, elements, getattr(answer, _snake(entity.collection)) or [])
            done += len(batch)
            self._flush()
            log.info("%s: batch %d of %d sent, %d of %d records so far", entity.label, n, len(batches), done,
                     len(plans))

    def _record(self, batch: list[Plan], elements: list[dict], answers: list[Any]) -> None:
        entity = self.entity
        for p, sent, got in zip(batch, elements, answers, strict=True):
            errors = [e.message for e in (got.validation_errors or [])]
            failed = bool(getattr(got, "has_errors", False) or getattr(got, "has_validation_errors", False)
                          or errors)
            xero_id = getattr(got, _snake(entity.id_key))
            number = getattr(got, _snake(entity.number_key)) if entity.number_key else None
            status = getattr(getattr(got, "status", None), "value", getattr(got, "status", None))
            summary = {"id": xero_id, "number": number, "status": status, "errors": errors}
            if failed:
                self._outcome(p.omono_id, p.number, "failed", "failed", messages=transform.explain(p.number, errors),
                              sent=sent, answer=summary, last_sent=sent, sending_key=None, sending_since=None)
            else:
                self._outcome(p.omono_id, p.number, p.action, "synced", messages=[], sent=sent, answer=summary,
                              xero_id=str(xero_id), content_hash=p.digest, last_sent=sent, xero_number=number,
                              xero_status=status, sending_key=None, sending_since=None)


def _locked(doc: Any, status: str) -> bool:
    """Xero refuses edits to a document that is paid, voided, or has payments or credit against it."""
    if status in {"PAID", "VOIDED"}:
        return True
    paid = sum(float(getattr(doc, f, None) or 0) for f in ("amount_paid", "amount_credited"))
    remaining = getattr(doc, "remaining_credit", None)
    total = getattr(doc, "total", None)
    return paid > 0 or (remaining is not None and total is not None and float(remaining) < float(total))


def _snake(name: str) -> str:
    out = "".join(f"_{c.lower()}" if c.isupper() else c for c in name).lstrip("_")
    return out.replace("_i_d", "_id")


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def push(ctx: RunContext, entity: Entity, conn: psycopg.Connection, client: Any) -> PushResult:
    """Plan, resolve unknown ones against Xero, write; returns counts per action (and API calls made)."""
    pusher = Pusher(ctx, entity, conn, client)
    plans = pusher.plan()
    try:
        if plans:
            plans = pusher.resolve_unknown(plans)
            pusher.write(plans)
    except DailyLimitReached as exc:       # met while looking up: the records stay pending for the next run
        pusher.result.stopped = str(exc)
        log.warning("%s", exc)
    pusher._flush()
    pusher.result.calls = client.calls if client else 0
    return pusher.result
