"""Push: send one kind of record to Xero in batches, and record every outcome. It runs under the organisation's
write lock (write_lock.py), so it plans from the state the last writer left.

The rules that keep Xero right:
- A record Xero already has (its Xero id is known) is updated by id, and only when what would be sent differs
  from what Xero last accepted.
- A record without a known Xero id (new, or its last write's outcome was lost) is first looked up in Xero
  (matching.py): contacts by ContactNumber (Omono's id), account number, then name; documents by number. A
  document is adopted and updated only when it is this integration's own; one a person typed is linked when it
  already says what Omono says, and otherwise left alone and shown red. Archived contacts, and documents Xero has
  voided or deleted, are shown red with what to do, never silently adopted or duplicated.
- Before a batch is sent its records are marked 'sending' (committed). A lost answer leaves them so; the next
  attempt looks them up before sending again, and within Xero's 6 minutes the same key replays Xero's answer.
  After Xero *answered* with an error the key moves on, since Xero caches error answers too.
- Batches hold at most 50 elements and 3 MB; `summarizeErrors=false` keeps one bad element from failing the
  others; a batch Xero refuses whole (400, 413) is split until the bad element is alone and shown red.
- After each write Xero's SubTotal, TotalTax and Total are compared with Omono's document computed by Xero's
  rules; a difference is red with both figures.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from include.omono_xero_sync import entities, extract, matching, money, settings, state, sync_log, transform
from include.omono_xero_sync.entities import Entity
from include.omono_xero_sync.sync_log import Attempt, LogRow, RunContext
from include.omono_xero_sync.xero_api import (
    DailyLimitReached,
    WriteOutcomeUnknown,
    attempt_of_refusal,
    refusal_messages,
    to_model,
)

log = logging.getLogger(__name__)
_STATUS_ORDER = {"DRAFT": 0, "SUBMITTED": 1, "AUTHORISED": 2}
DRY_RUN_CONTACT = "(the contact this dry run would create)"
GONE = {"VOIDED", "DELETED"}
UNIQUE_NUMBERS = {"ACCREC", "ACCRECCREDIT"}      # Xero refuses a second live document with these numbers
MAX_BATCH_BYTES = 3_000_000                      # Xero refuses requests over 3.5 MB (notes §4.3); keep headroom
PLAN_PAGE = 1_000                                # staged records planned at a time


@dataclass
class Plan:
    """One record to write: its payload, what the write means, and what is known of it."""

    omono_id: int
    number: str | None
    payload: dict
    digest: str
    action: str                  # created, updated, deleted, voided
    xero_id: str | None = None
    rec: dict = field(default_factory=dict)
    st: dict | None = None       # record_state at planning time

    @property
    def attempt(self) -> int:
        return (self.st or {}).get("write_attempts") or 0


@dataclass
class BatchCall:
    """A batch marked sending, ready to go: what is sent and under which idempotency key."""

    batch: list[Plan]
    elements: list[dict]
    key: str


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
        self.outcomes: list[dict] = []
        self.queue: list[tuple[int, str, list[str]]] = []
        self.written: list[tuple[str, int]] = []
        self.waiting_invoices: dict[int, str] = {}
        self.directory: matching.ContactDirectory | None = None
        self.claimed: dict[str, tuple[str, str | None]] = {}   # name key -> (name, number) of companies sent
        self.finder: matching.DocumentFinder | None = None
        self.rechecking = False
        self.snapshots: dict[int, str] = {}        # the read of Omono each record of the page comes from

    # -- bookkeeping (applied set-based per batch by _flush) --------------------------------------------------
    def _outcome(self, omono_id: int, number: str | None, action: str, status: str, *, messages: list[str],
                 sent: Any = None, answer: Any = None, xero_id: str | None = None, attempt: Attempt | None = None,
                 **state_fields: Any) -> None:
        self.result.add(action)
        self.rows.append(LogRow(self.entity.name, omono_id, number, action, xero_id, messages, sent, answer, attempt))
        if xero_id is not None:
            state_fields.setdefault("xero_id", xero_id)
        if status == "synced" and self.snapshots.get(omono_id):
            state_fields.setdefault("source_xmax", self.snapshots[omono_id])
        self.outcomes.append({"omono_id": omono_id, "status": status, "messages": messages, **state_fields})
        self.queue.append((omono_id, "held" if status == "held" else "done", messages))

    def _wait(self, omono_id: int, message: str) -> None:
        """Not red: nothing is wrong with the record, it only has to wait (for its company, or for the budget)."""
        self.result.add("waiting")
        self.outcomes.append({"omono_id": omono_id, "status": "waiting", "messages": [message]})
        self.queue.append((omono_id, "done", [message]))

    def _flush(self) -> None:
        if not self.ctx.dry_run:
            state.apply_outcomes(self.conn, self.entity.name, self.ctx.run_id, self.outcomes)
            state.remember_ours(self.conn, self.entity.name, self.written)
        extract.settle(self.conn, self.ctx.run_id, self.entity.name, self.queue)
        sync_log.write(self.conn, self.ctx, self.rows)
        self.rows, self.outcomes, self.queue, self.written = [], [], [], []
        self.conn.commit()

    # -- planning -------------------------------------------------------------------------------------------
    def plan(self, items: list[dict]) -> list[Plan]:
        """What to send for a page of this run's staged records (the rest are settled here: unchanged, held)."""
        states = state.records(self.conn, self.entity.name, [i["omono_id"] for i in items])
        items = [i for i in items if not self._skipped_meanwhile(i, states.get(i["omono_id"]))
                 and not self._superseded(i, states.get(i["omono_id"]))]
        self.snapshots = {i["omono_id"]: i.get("snapshot") for i in items}    # the last page is written by now
        if self.entity is entities.CONTACT:
            plans = [self._plan_contact(i["record"], states.get(i["omono_id"])) for i in items]
        else:
            plans = self._plan_documents(items, states)
        self._flush()
        return [p for p in plans if p]

    def _plan_documents(self, items: list[dict], states: dict[int, dict]) -> list[Plan | None]:
        live = [i["record"] for i in items if not i["record"].get("deleted")]
        companies = state.records(self.conn, "contact", sorted({r["company_id"] for r in live}))
        if self.ctx.dry_run:      # companies this dry run would create stand in for their future Xero ids
            for q in extract.queued(self.conn, self.ctx.run_id, "contact", only="done"):
                companies.setdefault(q["omono_id"], {"xero_id": DRY_RUN_CONTACT, "last_messages": []})
        self.accounts, self.taxes = state.account_mappings(self.conn), state.tax_mappings(self.conn)
        self.default_status = str(state.get_setting(self.conn, f"status.{self.entity.name}"))
        self.base_currency = _base_currency(self.conn)
        self.omono_rates = state.get_setting(self.conn, "exchange_rate_source") != "xero"
        self.waiting_invoices = self._invoices_not_in_xero(live)
        return [self._plan_document(i["record"], states.get(i["omono_id"]),
                                    companies.get(i["record"].get("company_id"))) for i in items]

    def _skipped_meanwhile(self, item: dict, st: dict | None) -> bool:
        """Skipped by the bookkeeper after this run read it: left alone, as the skip says."""
        if (st or {}).get("status") != "skipped":
            return False
        self.queue.append((item["omono_id"], "done", []))
        return True

    def _superseded(self, item: dict, st: dict | None) -> bool:
        """Another run, which read Omono after this one did, has already sent a newer version: this run's copy is
        left alone (sending it would put older amounts over newer ones in Xero)."""
        mine, theirs = item.get("snapshot"), (st or {}).get("source_xmax")
        if not (mine and theirs and int(mine) < int(theirs)):
            return False
        self.result.add("superseded")
        self.queue.append((item["omono_id"], "done", []))
        return True

    def _invoices_not_in_xero(self, credit_notes: list[dict]) -> dict[int, str]:
        """For linked credit notes: invoices not in Xero yet, and why, so the note can say its allocation waits."""
        if not self.entity.is_credit_note:
            return {}
        invoice_entity = "dispatch_invoice" if self.entity.xero_type == "ACCRECCREDIT" else "delivery_invoice"
        ids = sorted({r["invoice_id"] for r in credit_notes if r.get("invoice_id")})
        known = state.records(self.conn, invoice_entity, ids)
        return {i: " ".join((known.get(i) or {}).get("last_messages") or ["it has not been sent yet"])
                for i in ids if not (known.get(i) or {}).get("xero_id")}

    def _unchanged_or_stuck(self, rec_id: int, number: str | None, digest: str, st: dict | None,
                            notes: list[str]) -> bool:
        """True when nothing needs sending: Xero has this content, or Xero refused (or mis-totalled) exactly it."""
        if st and st["status"] == "failed" and (st["content_hash"] == digest or (
                st["last_sent"] is not None and transform.content_hash(st["last_sent"]) == digest)):
            self.result.add("still failing")      # no new call and no new row: nothing changed since
            self.queue.append((rec_id, "done", list(st["last_messages"])))
            return True
        if st and st["xero_id"] and st["content_hash"] == digest:      # set only when Xero accepted it
            self._outcome(rec_id, number, "unchanged", "synced", messages=notes, xero_id=str(st["xero_id"]))
            return True
        return False

    def _plan_contact(self, rec: dict, st: dict | None) -> Plan | None:
        number = rec.get("account_number") or transform.shorten(rec.get("name")) or (st or {}).get("omono_number")
        xero_id = str(st["xero_id"]) if st and st["xero_id"] else None
        if rec.get("deleted"):              # deleted in Omono: its Xero contact is archived, as Omono cannot void
            payload = {"ContactNumber": transform.contact_number(rec["id"]), "ContactStatus": "ARCHIVED"}
            if xero_id:
                payload["ContactID"] = xero_id
        else:
            restore = "ACTIVE" if st and (st["last_sent"] or {}).get("ContactStatus") == "ARCHIVED" else None
            payload = transform.contact(rec, xero_id, restore)
        digest = transform.content_hash(payload)
        if self._unchanged_or_stuck(rec["id"], number, digest, st, []):
            return None
        # Deleted or archived, not known in Xero: looked up (a reset may have forgotten its copy), never created.
        only_if_found = not xero_id and bool(rec.get("deleted") or rec.get("archived"))
        return Plan(rec["id"], number, payload, digest, "updated" if xero_id else "created", xero_id,
                    {**rec, "_only_if_found": only_if_found}, st)

    def _plan_document(self, rec: dict, st: dict | None, company: dict | None) -> Plan | None:
        number = rec["number"]
        xero_id = str(st["xero_id"]) if st and st["xero_id"] else None
        xero_status = st["xero_status"] if st else None
        if rec.get("status") == "cancelled" or rec.get("deleted"):
            return self._plan_cancellation(rec, st, company)
        if not company or not company["xero_id"]:
            why = " ".join(company["last_messages"]) if company and company["last_messages"] else \
                "it has not been sent yet"
            message = transform.waits_for_company(number, rec["company_name"], why)
            if company and company["status"] in {"waiting", "pending", "sending"}:
                self._wait(rec["id"], message)          # its company only waits (e.g. for the budget)
            else:
                self._outcome(rec["id"], number, "held", "held", messages=[message], company_id=rec["company_id"])
            return None
        status = self.default_status
        if xero_status in _STATUS_ORDER and _STATUS_ORDER[xero_status] > _STATUS_ORDER.get(status, 0):
            status = xero_status     # approved in Xero by the bookkeeper: an edit must not un-approve it
        foreign = rec["currency_code"].strip() != self.base_currency
        rate = rec.get("exchange_rate") if self.omono_rates and foreign else None
        payload = transform.document(self.entity, rec, str(company["xero_id"]), self.accounts, self.taxes, status,
                                     xero_id, rate)
        digest = transform.content_hash(payload)
        if self._unchanged_or_stuck(rec["id"], number, digest, st, self._allocation_note(rec)):
            return None
        return Plan(rec["id"], number, payload, digest, "updated" if xero_id else "created", xero_id, rec, st)

    def _allocation_note(self, rec: dict) -> list[str]:
        why = self.waiting_invoices.get(rec.get("invoice_id"))
        if why is None:
            return []
        return [f"Its allocation to the invoice it credits waits for that invoice, which is not in Xero yet: {why}"]

    def _plan_cancellation(self, rec: dict, st: dict | None, company: dict | None) -> Plan | None:
        number = rec["number"]
        xero_id = str(st["xero_id"]) if st and st["xero_id"] else None
        xero_status = st["xero_status"] if st else None
        gone = "Deleted" if rec.get("deleted") else "Cancelled"
        if xero_status in GONE:
            self._outcome(rec["id"], number, "unchanged", "synced", xero_id=xero_id, messages=[
                f"{gone} in Omono and already {xero_status.lower()} in Xero."])
            return None
        if not xero_id:
            # Never confirmed in Xero; a lost write or a reset may have left a copy there, so it is looked up.
            sent = (st or {}).get("last_sent") or {}
            contact = (sent.get("Contact") or {}).get("ContactID") or (company or {}).get("xero_id")
            return Plan(rec["id"], number, {self.entity.number_key: sent.get(self.entity.number_key) or
                                            transform.number_in_xero(self.entity, rec)},
                        "", "cancel", None, {**rec, "_contact_id": str(contact) if contact else None}, st)
        target, action = ("DELETED", "deleted") if xero_status in {"DRAFT", "SUBMITTED"} else ("VOIDED", "voided")
        payload = transform.status_change(self.entity, xero_id, target)
        digest = transform.content_hash(payload)
        if st and st["status"] == "failed" and st["last_sent"] is not None and \
                transform.content_hash(st["last_sent"]) == digest:
            self.result.add("still failing")      # Xero refused this very cancellation: not asked again
            self.queue.append((rec["id"], "done", list(st["last_messages"])))
            return None
        return Plan(rec["id"], number, payload, digest, action, xero_id, rec, st)

    # -- look-ups -------------------------------------------------------------------------------------------
    def resolve_unknown(self, plans: list[Plan]) -> list[Plan]:
        """Give every plan without a Xero id the one Xero already has, or hold it with the reason; check what a
        known one would overwrite (a renamed company, a document a person entered, a draft approved since)."""
        plans = self._check_renames(plans) if self.entity is entities.CONTACT else self._check_known(plans)
        fresh = [p for p in plans if p.xero_id is None]
        if fresh:
            plans = self._match_contacts(plans, fresh) if self.entity is entities.CONTACT else \
                self._match_documents(plans, fresh)
        self._flush()
        return plans

    def _check_renames(self, plans: list[Plan]) -> list[Plan]:
        """A company renamed in Omono must not take a name another Xero contact has (the same once case, spaces and
        Unicode form are ignored): two contacts that look alike would follow."""
        renamed = [p for p in plans if p.xero_id and "Name" in p.payload and matching.name_key(p.payload["Name"])
                   != matching.name_key(((p.st or {}).get("last_sent") or {}).get("Name"))]
        if not renamed:
            return plans
        if self.directory is None:
            self.directory = matching.ContactDirectory.read(self.client)
        kept = []
        for p in plans:
            others = [c for c in self.directory.named(p.payload.get("Name", "")) if c.contact_id != p.xero_id] \
                if p in renamed else []
            if others:
                self._hold(p, _same_name_message(p, f"another Xero contact ('{transform.shorten(others[0].name)}')"))
            else:
                kept.append(p)
        return kept

    def _check_known(self, plans: list[Plan]) -> list[Plan]:
        """Documents already in Xero that are about to be changed, read there first when it matters: one a person
        entered (linked) is never overwritten, and one the bookkeeper may have approved since it was sent as a
        draft is sent with its status now (an edit must not un-approve it, or be refused for trying)."""
        known = [p for p in plans if p.xero_id]
        ours = state.ours(self.conn, [p.xero_id for p in known])
        check = [p for p in known if p.xero_id not in ours
                 or (p.st or {}).get("xero_status") in {"DRAFT", "SUBMITTED"}]
        if not check:
            return plans
        docs = {self._doc_id(d): d for d in matching.documents_by_id(self.client, self.entity,
                                                                     sorted({p.xero_id for p in check}))}
        kept = []
        for p in plans:
            doc = docs.get(p.xero_id) if p in check else None
            if doc is None or self._known_as_it_is(p, doc, mine=p.xero_id in ours):
                kept.append(p)
        return kept

    def _known_as_it_is(self, p: Plan, doc: Any, *, mine: bool) -> bool:
        """True when the plan goes ahead (its status brought up to Xero's); else its outcome is recorded here."""
        status = _status(doc)
        if not mine:
            if p.action not in {"deleted", "voided"} and transform.same_document(p.payload, doc):
                self._link(p, doc)
            else:
                self._hold(p, _entered_message(p, self.entity, p.action))
            return False
        if p.action in {"deleted", "voided"}:        # cancelled: deleted while a draft, voided once approved
            if status in GONE:
                self._outcome(p.omono_id, p.number, "unchanged", "synced", xero_id=p.xero_id, messages=[
                    f"Cancelled in Omono and already {status.lower()} in Xero."], xero_status=status)
                return False
            target, p.action = ("DELETED", "deleted") if status in {"DRAFT", "SUBMITTED"} else ("VOIDED", "voided")
            p.payload = transform.status_change(self.entity, p.xero_id, target)
            p.digest = transform.content_hash(p.payload)
            return True
        if status in GONE:
            self._hold(p, _gone_message(p, self.entity, doc))
            return False
        if _rank(status) > _rank(p.payload.get("Status")) and status in _STATUS_ORDER:
            p.payload = {**p.payload, "Status": status}
            p.digest = transform.content_hash(p.payload)
        return True

    def _match_contacts(self, plans: list[Plan], fresh: list[Plan]) -> list[Plan]:
        if self.directory is None:                    # read once per task, however many chunks follow
            self.directory = matching.ContactDirectory.read(self.client)
        directory, claimed = self.directory, self.claimed
        restore = bool(state.get_setting(self.conn, "restore_archived_contacts"))
        kept: list[Plan] = []
        for p in plans:
            if p.xero_id is not None:
                kept.append(p)
                continue
            match, why = self._contact_match(p, directory, claimed)
            if p.rec.get("_only_if_found") and (match is None or why):
                self._outcome(p.omono_id, p.number, "unchanged", "synced", messages=[
                    "Deleted or archived in Omono and not in Xero, so there is nothing to send."])
                continue
            if match and match.status != "ACTIVE" and p.payload.get("ContactStatus") != "ARCHIVED":
                if not restore:
                    why = _archived_message(p, match)
                else:
                    p.payload["ContactStatus"] = "ACTIVE"          # restore, as General options allow
            if why:
                self._outcome(p.omono_id, p.number, "held", "held", messages=[why])
                continue
            if "Name" in p.payload:
                claimed[matching.name_key(p.payload["Name"])] = (p.rec.get("name"), p.number)
            if match:
                p.xero_id, p.action = match.contact_id, "updated"
                p.payload = {**p.payload, "ContactID": match.contact_id}
                p.digest = transform.content_hash(p.payload)
                log.info("Company %s matched existing Xero contact %s", p.number, match.contact_id)
            kept.append(p)
        return kept

    def _contact_match(self, p: Plan, directory: matching.ContactDirectory,
                       claimed: dict[str, tuple[str, str | None]]) -> tuple[matching.FoundContact | None, str | None]:
        """The Xero contact this company is (or None), or why it cannot be decided."""
        body = p.payload
        ours = directory.by_number.get(body["ContactNumber"].casefold())
        if ours or "Name" not in body:              # a deleted company is known by Omono's id only
            return ours, None
        twin = claimed.get(matching.name_key(body["Name"]))
        if twin:
            return None, _same_name_message(p, f"company '{transform.shorten(twin[0])}' ({twin[1]}), also sent in "
                                               "this run")
        by_account = directory.by_account.get(matching.name_key(body.get("AccountNumber")))
        for found, how in [(by_account, "account number"), *[(f, "name") for f in directory.named(body["Name"])]]:
            if not found:
                continue
            if (found.contact_number or "").upper().startswith(transform.CONTACT_NUMBER_PREFIX):
                return None, _same_name_message(p, f"another Omono company already in Xero as "
                                                   f"'{transform.shorten(found.name)}'", how)
            return found, None
        return None, None

    def _match_documents(self, plans: list[Plan], fresh: list[Plan]) -> list[Plan]:
        unaskable = {p.omono_id for p in fresh if any(matching.number_too_long(self.entity, n)
                                                      for n in (_xero_number(self.entity, p), p.number) if n)}
        for p in fresh:
            if p.omono_id in unaskable:
                self._hold(p, f"{transform.shorten(p.number)}: its number is too long for Xero to be asked whether it "
                              "already holds it (the address would pass Xero's limit), so nothing was sent. Shorten "
                              "the number in Omono (Xero takes up to 255 characters), then choose Retry.")
        plans = [p for p in plans if p.omono_id not in unaskable]
        fresh = [p for p in fresh if p.omono_id not in unaskable]
        twins = self._same_number_in_this_batch(fresh)
        plans = [p for p in plans if p.omono_id not in twins]
        fresh = [p for p in fresh if p.omono_id not in twins]
        numbers = sorted({n for p in fresh for n in (_xero_number(self.entity, p), p.number) if n})
        if self.finder is None:        # the numbers this task may look up: a bill has its supplier's and Omono's
            per_record = 2 if self.entity.xero_type == "ACCPAY" else 1
            # the queue still counts this first group as pending (it is marked sending only when written)
            pending = max(extract.count_pending(self.conn, self.ctx.run_id, self.entity.name), len(fresh))
            self.finder = matching.DocumentFinder(self.client, self.entity, pending * per_record)
        found = self.finder.find(numbers, fresh=self.rechecking) if numbers else []
        written = state.written_for(self.conn, self.entity.name, [p.omono_id for p in fresh])
        known = sorted({x for ids in written.values() for x in ids} - {self._doc_id(d) for d in found})
        found += matching.documents_by_id(self.client, self.entity, known)      # e.g. after a reset
        by_number: dict[str, list[Any]] = {}
        by_id = {self._doc_id(d): d for d in found if matching.enum(d.type) == self.entity.xero_type}
        for doc in by_id.values():
            if getattr(doc, _snake(self.entity.number_key)):
                by_number.setdefault(matching.number_key(getattr(doc, _snake(self.entity.number_key))), []).append(doc)
        owners: dict[str, tuple[str, int] | None] = dict(state.ours(self.conn, list(by_id)))
        owners |= dict.fromkeys(matching.created_by_this_app(self.client, self.entity,
                                                             [i for i in by_id if i not in owners]))
        kept: list[Plan] = []
        for p in plans:
            if p.xero_id is not None:
                kept.append(p)
                continue
            hits = [d for n in {_xero_number(self.entity, p), p.number} if n
                    for d in by_number.get(matching.number_key(n), [])]
            hits += [by_id[x] for x in written.get(p.omono_id, []) if x in by_id]
            plan = self._decide(p, list({id(d): d for d in hits}.values()), owners)
            if plan:
                kept.append(plan)
        return kept

    def _same_number_in_this_batch(self, fresh: list[Plan]) -> set[int]:
        """Two new records with the same number, of the same contact (a bill's supplier number keyed twice) or of
        any contact where Xero's numbers are unique (sales): the first goes, the others are held as they would be
        once it is in Xero; ids of the held ones."""
        first: dict[tuple[str, str], Plan] = {}
        held: set[int] = set()
        unique = self.entity.xero_type in UNIQUE_NUMBERS
        for p in sorted(fresh, key=lambda p: p.omono_id):
            number = matching.number_key(_xero_number(self.entity, p) or "")
            key = ("" if unique else (p.payload.get("Contact") or {}).get("ContactID", ""), number)
            if p.action == "cancel" or not number:
                continue
            if key in first:
                self._hold(p, _sibling_message(p, self.entity, None, ("", first[key].omono_id),
                                               number=_xero_number(self.entity, p), other=first[key].number))
                held.add(p.omono_id)
            else:
                first[key] = p
        return held

    def _decide(self, p: Plan, hits: list[Any], owners: dict[str, tuple[str, int] | None]) -> Plan | None:
        """What to do with a new document, given the documents Xero holds with its number (or written for it).
        `owners`: the ones this integration wrote, and for which record (None: Xero says this app created it)."""
        entity, me = self.entity, (self.entity.name, p.omono_id)
        contact = p.rec.get("_contact_id") or (p.payload.get("Contact") or {}).get("ContactID")
        same = [d for d in hits if d.contact and str(d.contact.contact_id) == contact] if contact else hits
        ours = [d for d in hits if self._doc_id(d) in owners and owners[self._doc_id(d)] in (None, me)
                or d in same and self._was_ours_in_flight(p, d)]
        theirs = [d for d in same if owners.get(self._doc_id(d)) not in (None, me) and d not in ours]
        if p.action == "cancel":
            return self._cancel_found(p, [d for d in ours if _status(d) not in GONE])
        live_ours = [d for d in ours if _status(d) not in GONE]
        if live_ours:
            doc = live_ours[0]
            if transform.same_document(p.payload, doc) and _rank(_status(doc)) >= _rank(p.payload.get("Status")):
                self._landed(p, doc)              # Xero already holds exactly this (e.g. a write whose answer was lost)
                return None
            return self._adopt(p, doc)
        if ours:
            self._hold(p, _gone_message(p, entity, ours[0]))
            return None
        if [d for d in theirs if _status(d) not in GONE]:
            self._hold(p, _sibling_message(p, entity, theirs[0], owners[self._doc_id(theirs[0])]))
            return None
        typed = [d for d in same if _status(d) not in GONE and self._doc_id(d) not in owners]
        equal = [d for d in typed if transform.same_document(p.payload, d)]
        if equal and _rank(_status(equal[0])) < _rank(p.payload.get("Status")):
            self._hold(p, _typed_draft_message(p, equal[0]))     # linked, it would be "synced" yet off the ledger
            return None
        if equal:
            self._link(p, equal[0])
            return None
        if typed:
            self._hold(p, _typed_message(p, entity, typed[0]))
            return None
        # where Xero keeps numbers unique, another contact's document or a person's voided one keeps this number
        others = [d for d in hits if (d not in same or _status(d) == "VOIDED") and _status(d) != "DELETED"]
        if others and entity.xero_type in UNIQUE_NUMBERS:
            doc = others[0]
            other = transform.shorten(doc.contact.name) if doc.contact and doc.contact.name else "another contact"
            voided = _status(doc) == "VOIDED"
            fix = ("Xero keeps a voided document's number, so give Omono's document another number" if voided
                   else "raise Omono's starting number or renumber the Xero document")
            self._hold(p, f"{p.number} is already used in Xero by a different document ({matching.enum(doc.type)} "
                          f"for '{other}'{', voided' if voided else ''}). Omono's document numbers must not clash "
                          f"with Xero's: {fix}, then choose Retry.")
            return None
        return p

    def _doc_id(self, doc: Any) -> str:
        return str(getattr(doc, _snake(self.entity.id_key)))

    @staticmethod
    def _was_ours_in_flight(p: Plan, doc: Any) -> bool:
        """A write of ours whose answer was lost: Xero holds exactly what we sent then."""
        st = p.st or {}
        return st.get("status") == "sending" and st.get("last_sent") is not None and \
            transform.same_document(st["last_sent"], doc)

    def _hold(self, p: Plan, message: str) -> None:
        self._outcome(p.omono_id, p.number, "held", "held", messages=[message])

    def _adopt(self, p: Plan, doc: Any) -> Plan | None:
        doc_id, status = self._doc_id(doc), _status(doc)
        if _locked(doc, status):
            # Already in Xero (e.g. resent after a reset) and locked there by a payment or credit: an update could
            # only be refused. Linked as it is when it says what Omono says; red with both figures when not.
            if transform.same_document(p.payload, doc):
                self._outcome(p.omono_id, p.number, "unchanged", "synced", xero_id=doc_id, messages=[
                    f"{p.number} is already in Xero, where a payment or credit locks it; it was linked and left as "
                    "it is."], content_hash=p.digest, xero_status=status, xero_number=_xero_number(self.entity, p))
            else:
                self.written.append((doc_id, p.omono_id))
                self._outcome(p.omono_id, p.number, "failed", "failed", xero_id=doc_id, messages=[
                    _locked_differs_message(p, doc)], content_hash=p.digest, xero_status=status,
                    xero_number=_xero_number(self.entity, p))
            return None
        p.xero_id, p.action = doc_id, "updated"
        p.payload = {**p.payload, self.entity.id_key: doc_id}
        if status in _STATUS_ORDER and _STATUS_ORDER[status] > _STATUS_ORDER.get(p.payload["Status"], 0):
            p.payload["Status"] = status
            p.digest = transform.content_hash(p.payload)
        log.info("%s matched this integration's Xero document %s (%s)", p.number, doc_id, status)
        return p

    def _landed(self, p: Plan, doc: Any) -> None:
        doc_id = self._doc_id(doc)
        self.written.append((doc_id, p.omono_id))
        self._outcome(p.omono_id, p.number, p.action, "synced", xero_id=doc_id, messages=[
            f"{p.number} was found in Xero exactly as this integration sent it (its answer had been lost)."],
            content_hash=p.digest, xero_status=_status(doc), xero_number=_xero_number(self.entity, p),
            last_sent=transform.jsonable(p.payload), sending_key=None, sending_since=None)

    def _link(self, p: Plan, doc: Any) -> None:
        doc_id = self._doc_id(doc)
        self._outcome(p.omono_id, p.number, "linked", "synced", xero_id=doc_id, messages=[
            f"{p.number} was already in Xero with exactly Omono's content (entered there, not by this "
            "integration); it was linked and left as it is."], content_hash=p.digest, xero_status=_status(doc),
            xero_number=_xero_number(self.entity, p), last_sent=transform.jsonable(p.payload))

    def _cancel_found(self, p: Plan, live_ours: list[Any]) -> Plan | None:
        gone = "Deleted" if p.rec.get("deleted") else "Cancelled"
        if not live_ours:
            self._outcome(p.omono_id, p.number, "unchanged", "synced", messages=[
                f"{gone} in Omono before it reached Xero; nothing to send."])
            return None
        doc = live_ours[0]
        status = _status(doc)
        target, action = ("DELETED", "deleted") if status in {"DRAFT", "SUBMITTED"} else ("VOIDED", "voided")
        payload = transform.status_change(self.entity, self._doc_id(doc), target)
        return Plan(p.omono_id, p.number, payload, transform.content_hash(payload), action, self._doc_id(doc), p.rec,
                    p.st)

    def group_size(self) -> int:
        """How many planned records are looked up, then written, together: Xero's 5 concurrent writes of 50, or
        fewer when the rest of today's calls could not see a whole group through. A group the budget cuts short is
        looked up again the next day, so one larger than a day's budget never landed (found from outside: 148
        records re-checked after a crash, under 12 calls a day, waited forever)."""
        full = settings.BATCH_SIZE * settings.CONCURRENT_CALLS
        left = self.client.pacer.day_remaining if self.client else None
        if left is None:
            return full
        per_batch = 3 + (2 if self.entity.xero_type == "ACCPAY" else 1)  # numbers, by id, made by this app, write
        batches = (left - settings.DAILY_CALL_FLOOR) // per_batch
        return settings.BATCH_SIZE * max(1, min(settings.CONCURRENT_CALLS, batches))

    def wait_for_budget(self) -> None:
        """What this run could not reach is waiting (not red): the next run with budget carries on."""
        for page in extract.staged_pages(self.conn, self.ctx.run_id, self.entity.name, PLAN_PAGE):
            for item in page:
                self._wait(item["omono_id"], "Waits for the next Xero API budget: today's is spent. Nothing is "
                                             "wrong with it; the next run carries on.")
            self._flush()

    # -- writes ---------------------------------------------------------------------------------------------
    @property
    def method(self) -> str:
        if self.entity is entities.CONTACT:
            return "update_or_create_contacts"
        return "update_or_create_credit_notes" if self.entity.is_credit_note else "update_or_create_invoices"

    def batches(self, plans: list[Plan]) -> Iterable[list[Plan]]:
        """At most 50 elements and MAX_BATCH_BYTES each; a record too large on its own is shown red."""
        batch: list[Plan] = []
        size = 0
        for p in plans:
            n = len(transform.canonical(p.payload).encode())
            if n > MAX_BATCH_BYTES:
                self._outcome(p.omono_id, p.number, "failed", "failed", messages=[
                    f"{p.number} is too large for one request to Xero ({n / 1e6:.1f} MB; Xero takes 3.5 MB). "
                    "Split it into smaller documents in Omono."], last_sent=None)
                continue
            if batch and (len(batch) >= settings.BATCH_SIZE or size + n > MAX_BATCH_BYTES):
                yield batch
                batch, size = [], 0
            batch.append(p)
            size += n
        if batch:
            yield batch

    def write(self, plans: list[Plan]) -> None:
        """The batches, up to Xero's 5 concurrent calls at a time (one wave); each wave's records are marked
        sending (committed) before any of its calls starts, and its answers are recorded before the next wave."""
        batches = list(self.batches(plans))
        self._flush()
        if self.ctx.dry_run:
            for p in (p for batch in batches for p in batch):
                self._outcome(p.omono_id, p.number, p.action, "pending", xero_id=p.xero_id,
                              sent=transform.jsonable(p.payload),
                              messages=[f"Dry run: would be {p.action} in Xero; nothing was sent."])
            self._flush()
            return
        for wave in _chunks(batches, settings.CONCURRENT_CALLS):
            prepared = [self._prepare(batch) for batch in wave]
            self.conn.commit()
            if len(prepared) == 1:
                results = [self._call(prepared[0])]
            else:
                with ThreadPoolExecutor(len(prepared), thread_name_prefix="xero-write") as pool:
                    results = list(pool.map(self._call, prepared))
            for batch_call, result in zip(prepared, results, strict=True):
                self._finish(batch_call, result, recover=True)
            self._flush()
            if self.result.stopped:
                return
            log.info("%s: %d record(s) written in %d batch(es)", self.entity.label, sum(map(len, wave)), len(wave))

    def send(self, batch: list[Plan]) -> None:
        """One batch, on its own: a request Xero refuses as a whole is split; an unknown outcome is raised."""
        prepared = self._prepare(batch)
        self.conn.commit()
        self._finish(prepared, self._call(prepared), recover=False)

    def _prepare(self, batch: list[Plan]) -> BatchCall:
        elements = [transform.jsonable(p.payload) for p in batch]
        key = transform.idempotency_key(self.client.xero.tenant_id, self.method, elements,
                                        attempt=max(p.attempt for p in batch))
        state.mark_sending(self.conn, self.entity.name, [(p.omono_id, e) for p, e in zip(batch, elements, strict=True)],
                           key, self.ctx.run_id)
        return BatchCall(batch, elements, key)

    def _call(self, prepared: BatchCall) -> Any:
        """The write itself (safe in a thread: no database work here); an exception is returned, not raised."""
        entity = self.entity
        try:
            body = to_model(entity.collection, {entity.collection: prepared.elements})
            extra = {} if entity is entities.CONTACT else {"unitdp": 4}
            return self.client.write_detailed(self.method, body, summarize_errors=False,
                                              idempotency_key=prepared.key, **extra)
        except Exception as exc:  # noqa: BLE001 - handed to _finish, which decides
            return exc

    def _finish(self, prepared: BatchCall, result: Any, *, recover: bool) -> None:
        from xero_python.exceptions import HTTPStatusException

        batch = prepared.batch
        if isinstance(result, DailyLimitReached):        # checked before the call: nothing of it was sent
            for p in batch:
                self._wait(p.omono_id, f"Waits for the next Xero API budget: {result}")
                self.outcomes[-1].update(sending_key=None, sending_since=None)
            self.result.stopped = str(result)
            log.warning("%s", result)
        elif isinstance(result, WriteOutcomeUnknown):
            if result.answered:     # Xero keeps its error answer under the key: the next attempt needs a new one
                self._count_attempt(batch)
            if not recover:
                raise result
            self._recover(batch, result)
        elif isinstance(result, HTTPStatusException) and result.status in (400, 413):
            self._refused_whole(batch, result)
        elif isinstance(result, Exception):
            raise result
        else:
            answer, attempt = result
            self._record(batch, prepared.elements, getattr(answer, _snake(self.entity.collection)) or [], attempt)

    def _recover(self, batch: list[Plan], exc: WriteOutcomeUnknown) -> None:
        """After an unknown outcome: pause, look the records up again and send only what Xero does not hold, a few
        times, before failing the task (Airflow then retries it)."""
        for pause in settings.RETRY_BACKOFF:
            log.warning("%s Looking again in %.0f s.", exc, pause)
            self.client.pacer.sleep(pause)
            batch = self._recheck(batch)
            if not batch:
                return
            try:
                self.send(batch)
                return
            except WriteOutcomeUnknown as again:
                exc = again
        raise exc

    def _recheck(self, batch: list[Plan]) -> list[Plan]:
        """The batch after an unknown outcome: new records are looked up (what Xero made of the lost write is
        recognised and recorded); updates by id are simply sent again."""
        for p in batch:
            if p.xero_id is None:
                p.st = {**(p.st or {}), "status": "sending", "last_sent": transform.jsonable(p.payload)}
        self.rechecking = True             # asked by number: a list read earlier does not show the lost write
        try:
            return self.resolve_unknown(batch)
        finally:
            self.rechecking = False

    def _count_attempt(self, batch: list[Plan]) -> None:
        state.count_refused_attempt(self.conn, self.entity.name, [p.omono_id for p in batch])
        self.conn.commit()
        for p in batch:
            p.st = {**(p.st or {}), "write_attempts": p.attempt + 1}

    def _refused_whole(self, batch: list[Plan], exc: Any) -> None:
        self._count_attempt(batch)
        if len(batch) > 1:
            half = len(batch) // 2
            log.warning("Xero refused a batch of %d as a whole (%s); sending it in halves", len(batch), exc.status)
            self.send(batch[:half])
            self.send(batch[half:])
            return
        p = batch[0]
        messages = transform.explain(p.number, refusal_messages(exc))
        self._outcome(p.omono_id, p.number, "failed", "failed", messages=messages, xero_id=p.xero_id,
                      sent=transform.jsonable(p.payload), answer={"status": exc.status, "errors": messages},
                      attempt=attempt_of_refusal(self.method, (), exc),
                      last_sent=transform.jsonable(p.payload), sending_key=None, sending_since=None)

    def _record(self, batch: list[Plan], elements: list[dict], answers: list[Any], attempt: Attempt) -> None:
        entity = self.entity
        for p, sent, got in zip(batch, elements, answers, strict=True):
            errors = [e.message for e in (got.validation_errors or [])]
            failed = bool(getattr(got, "has_errors", False) or getattr(got, "has_validation_errors", False)
                          or errors)
            xero_id = getattr(got, _snake(entity.id_key))
            number = getattr(got, _snake(entity.number_key)) if entity.number_key else None
            status = matching.enum(getattr(got, "status", None))
            summary = {"id": str(xero_id), "number": number, "status": status, "errors": errors}
            if failed:
                self._outcome(p.omono_id, p.number, "failed", "failed", messages=transform.explain(p.number, errors),
                              sent=sent, answer=summary, attempt=attempt, last_sent=sent, sending_key=None,
                              sending_since=None, xero_id=p.xero_id)     # an update names the document it concerns
                continue
            self.written.append((str(xero_id), p.omono_id))
            if self.finder and number:
                self.finder.remember([(number, str(xero_id))])
            fields = {"xero_id": str(xero_id), "content_hash": p.digest, "last_sent": sent, "xero_number": number,
                      "xero_status": status, "sending_key": None, "sending_since": None}
            wrong = self._totals_differ(p, got)
            if wrong:
                summary["totals"] = wrong
                self._outcome(p.omono_id, p.number, "failed", "failed", messages=[wrong], sent=sent, answer=summary,
                              attempt=attempt, **fields)
            else:
                self._outcome(p.omono_id, p.number, p.action, "synced", messages=self._allocation_note(p.rec),
                              sent=sent, answer=summary, attempt=attempt, **fields)

    def _totals_differ(self, p: Plan, got: Any) -> str | None:
        """Xero's totals against Omono's document computed by Xero's rules; None when they agree."""
        if self.entity is entities.CONTACT or p.action in {"deleted", "voided"}:
            return None
        expected, actual = money.document_totals(p.rec["lines"]), money.xero_totals(got)
        if expected == actual:
            return None
        currency = p.payload.get("CurrencyCode")
        return (f"{p.number} is in Xero, but Xero's totals differ from Omono's: Omono {expected.describe(currency)}, "
                f"Xero {actual.describe(currency)}. Check the tax mappings of its lines (Xero's tax rate must be "
                "Omono's rate) and the document in Xero; then choose Retry, or Skip it.")


def _archived_message(p: Plan, match: matching.FoundContact) -> str:
    return (f"Company '{transform.shorten(p.payload['Name'])}' ({p.number}) matches a contact that is archived in "
            f"Xero ('{transform.shorten(match.name)}'). So as not to create a second one, nothing was sent. Restore "
            "the archived contact in Xero (Contacts > Archived > Restore) or rename the company in Omono, then choose "
            "Retry; or allow restoring archived contacts in General options.")


def _same_name_message(p: Plan, other: str, how: str = "name") -> str:
    return (f"Company '{transform.shorten(p.payload['Name'])}' ({p.number}) has the same {how} as {other}, once "
            "case, accents and spaces are ignored. Xero needs each contact's name and account number to be unique: "
            f"change the {how} of one of them in Omono, then choose Retry.")


def _gone_message(p: Plan, entity: Entity, doc: Any) -> str:
    status = _status(doc).lower()
    return (f"{p.number} is in Xero, but it was {status} there, while Omono still has it. Nothing was sent. If it "
            f"should not be in the books, cancel it in Omono too; if it should, give it a new number in Omono (a new "
            f"{entity.noun.lower()} is then created); or Skip it.")


def _sibling_message(p: Plan, entity: Entity, doc: Any, owner: tuple[str, int] | None, *, number: str | None = None,
                     other: str | None = None) -> str:
    number = number or getattr(doc, _snake(entity.number_key))
    who = other or f"Omono id {owner[1] if owner else '?'}"
    whose = "" if entity.xero_type in UNIQUE_NUMBERS else " for the same contact"
    return (f"{p.number} carries the number {number} in Xero, and so does another Omono {entity.noun.lower()}{whose} "
            f"({who}). Nothing was sent, so that one is not overwritten or doubled. If both are the same "
            "document, cancel one in Omono; if the number was really used twice, make it distinct in Omono (e.g. add "
            "a suffix), then choose Retry.")


def _locked_differs_message(p: Plan, doc: Any) -> str:
    expected, actual = money.document_totals(p.rec.get("lines", [])), money.xero_totals(doc)
    currency = p.payload.get("CurrencyCode")
    return (f"Xero has locked {p.number} (a payment or credit note is allocated to it), and what it holds differs "
            f"from Omono's document: Omono {expected.describe(currency)}, Xero {actual.describe(currency)}. Make the "
            "same change in Xero (or remove the payment there), then choose Retry; or Skip it.")


def _entered_message(p: Plan, entity: Entity, action: str) -> str:
    what = "cancelled" if action in {"deleted", "voided"} else "changed"
    return (f"{p.number} was {what} in Omono, but its copy in Xero was entered there (it was linked, not created by "
            f"this integration), so it is not {what} from here. Make the same change to the {entity.noun.lower()} in "
            "Xero, then choose Retry (it is linked again when it agrees with Omono); or Skip it.")


def _typed_message(p: Plan, entity: Entity, doc: Any) -> str:
    who = transform.shorten(doc.contact.name) if doc.contact and doc.contact.name else "the same contact"
    number = getattr(doc, _snake(entity.number_key))
    what = "a bill" if entity.xero_type == "ACCPAY" else f"a {entity.noun.lower()}"
    return (f"{p.number}: Xero already has {what} for '{who}' numbered {number} that this integration did not "
            "create (typed in Xero, or sent by another app), and its content differs from Omono's. So as not to "
            "overwrite or duplicate it, nothing was sent. If it is the same document, make the two agree or delete "
            "or void the one in Xero, then choose Retry; if it is a different one, correct the number in Omono.")


def _typed_draft_message(p: Plan, doc: Any) -> str:
    status = "a draft" if _status(doc) == "DRAFT" else "awaiting approval"
    return (f"{p.number}: Xero already has it with exactly Omono's content, typed there (not by this integration), "
            f"but {status}, while Omono's is issued. It was left as it is, since this integration does not change "
            "what a person typed. Approve it in Xero (or delete it there to have Omono's sent), then choose Retry.")


def _xero_number(entity: Entity, p: Plan) -> str | None:
    return p.payload.get(entity.number_key) if entity.number_key else None


def _status(doc: Any) -> str:
    return matching.enum(doc.status) or ""


def _rank(status: str | None) -> int:
    return {"DRAFT": 0, "SUBMITTED": 1, "AUTHORISED": 2, "PAID": 3}.get(status or "", -1)


def _base_currency(conn: psycopg.Connection) -> str:
    from include.omono_xero_sync import reference

    return reference.load(conn).organisation["BaseCurrency"]


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


def push(ctx: RunContext, entity: Entity, conn: psycopg.Connection, client: Any) -> PushResult:
    """Plan, resolve unknown ones against Xero, write; a page of the run's queue at a time (memory stays flat
    whatever the backlog), looked up then written a wave at a time (however small the day's budget, what it pays
    for lands). Returns counts per action (and API calls made)."""
    pusher = Pusher(ctx, entity, conn, client)
    try:
        for items in extract.staged_pages(conn, ctx.run_id, entity.name, PLAN_PAGE):
            plans = pusher.plan(items)
            while plans and not pusher.result.stopped:
                size = pusher.group_size()
                group, plans = plans[:size], plans[size:]
                pusher.write(pusher.resolve_unknown(group))
            if pusher.result.stopped:
                break
    except DailyLimitReached as exc:       # met while looking up: the records wait for the next run
        pusher.result.stopped = str(exc)
        log.warning("%s", exc)
    pusher._flush()
    if pusher.result.stopped and not ctx.dry_run:
        pusher.wait_for_budget()
    pusher.result.calls = client.calls if client else 0
    return pusher.result


def wait_for_budget(ctx: RunContext, entity: Entity, conn: psycopg.Connection, why: str) -> PushResult:
    """A kind the task did not reach once today's budget was spent waits for the next run, saying so: left pending
    it would read as 'not attempted yet', and every run would read it again whatever the budget."""
    pusher = Pusher(ctx, entity, conn, None)
    pusher.result.stopped = why
    if not ctx.dry_run:
        pusher.wait_for_budget()
    return pusher.result
