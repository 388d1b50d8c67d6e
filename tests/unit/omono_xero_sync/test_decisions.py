"""The planning and allocation decisions, with fakes for Xero's documents, the client and the database: which
found document is adopted, linked, red or ignored; which contact an Omono company is; how batches are cut; how
much credit is allocated. The integration tests show the same cases against real services."""

from __future__ import annotations

import threading
import time
from datetime import date
from decimal import Decimal
from types import SimpleNamespace as NS
from typing import Any

import pytest

from include.omono_xero_sync import allocate, entities, matching, push, transform
from include.omono_xero_sync.sync_log import RunContext

pytestmark = pytest.mark.unit
CONTACT, OTHER = "c0ffee00-0000-0000-0000-000000000001", "c0ffee00-0000-0000-0000-000000000002"


class FakeConn:
    """Records what would be written; reads return nothing."""

    def __init__(self) -> None:
        self.statements: list[tuple[str, Any]] = []

    def execute(self, sql: str, params: Any = None) -> FakeConn:
        self.statements.append((sql, params))
        return self

    def fetchall(self) -> list:
        return []

    def commit(self) -> None:
        pass


def _pusher(entity: entities.Entity = entities.DISPATCH_INVOICE) -> push.Pusher:
    return push.Pusher(RunContext("d", "r", "t"), entity, FakeConn(), NS(xero=NS(tenant_id="t")))


def _payload(number: str = "SO-1", status: str = "AUTHORISED", price: str = "10") -> dict:
    return {"Type": "ACCREC", "Contact": {"ContactID": CONTACT}, "InvoiceNumber": number, "Date": "2026-09-01",
            "DueDate": "2026-10-01", "CurrencyCode": "GBP", "Status": status, "LineAmountTypes": "Exclusive",
            "LineItems": [{"Description": "Widget", "Quantity": Decimal(1), "UnitAmount": Decimal(price),
                           "AccountCode": "200", "TaxType": "OUTPUT2"}]}


def _doc(doc_id: str, *, contact: str = CONTACT, status: str = "AUTHORISED", price: str = "10",
         doc_type: str = "ACCREC") -> NS:
    line = NS(description="Widget", quantity=1.0, unit_amount=float(price), account_code="200", tax_type="OUTPUT2",
              discount_rate=None)
    return NS(invoice_id=doc_id, invoice_number="SO-1", type=doc_type, status=status,
              contact=NS(contact_id=contact, name="Acme"), date=date(2026, 9, 1), due_date=date(2026, 10, 1),
              currency_code="GBP", currency_rate=1.0, reference="", line_items=[line], amount_paid=0,
              amount_credited=0, total=12.0)


def _plan(**payload: Any) -> push.Plan:
    body = _payload(**payload)
    return push.Plan(1, "SO-1", body, transform.content_hash(body), "created")


MINE = {"a": ("dispatch_invoice", 1)}                      # written by this integration for this record


@pytest.mark.parametrize(("hits", "mine", "outcome"), [
    ([], {}, "sent as new"),
    ([_doc("a", price="99")], MINE, "adopted"),
    ([_doc("a", price="99")], {"a": None}, "adopted"),          # Xero lists it as created by this app
    ([_doc("a")], MINE, "created"),                             # ours and equal: the lost answer's copy, not resent
    ([_doc("a", status="VOIDED")], MINE, "held"),
    ([_doc("a")], {}, "linked"),                                # typed by a person, exactly Omono's content
    ([_doc("a", status="DRAFT")], {}, "held"),                  # the same, but a draft Omono has issued: not synced
    ([_doc("a", status="VOIDED")], {}, "held"),                 # a person's voided invoice keeps its number in Xero
    ([_doc("a", price="99")], {}, "held"),                      # typed by a person, different: never overwritten
    ([_doc("a")], {"a": ("dispatch_invoice", 2)}, "held"),      # another record's: never adopted for this one
    ([_doc("a", contact=OTHER)], {}, "held"),                   # a sales invoice number is unique in Xero
])
def test_what_is_done_with_the_same_numbered_documents_xero_holds(hits: list, mine: dict, outcome: str) -> None:
    pusher = _pusher()
    kept = pusher._decide(_plan(), hits, mine)
    if kept is not None:
        assert ("adopted" if kept.xero_id else "sent as new") == outcome
    else:
        assert pusher.rows[-1].action == outcome


def test_a_bill_numbered_like_another_suppliers_is_not_a_clash() -> None:
    plan = _plan()
    plan.payload["Type"] = "ACCPAY"
    kept = _pusher(entities.DELIVERY_INVOICE)._decide(plan, [_doc("a", contact=OTHER, doc_type="ACCPAY")], {})
    assert kept is plan and kept.xero_id is None


def _directory(*found: matching.FoundContact) -> matching.ContactDirectory:
    directory = matching.ContactDirectory({}, {}, {})
    for f in found:
        if f.contact_number:
            directory.by_number[f.contact_number.casefold()] = f
        if f.account_number:
            directory.by_account[matching.name_key(f.account_number)] = f
        directory.by_name.setdefault(matching.name_key(f.name), []).append(f)
    return directory


def _company(omono_id: int, name: str, account: str | None = None) -> push.Plan:
    body = transform.contact({"id": omono_id, "name": name, "account_number": account}, None)
    return push.Plan(omono_id, account or name, body, transform.content_hash(body), "created", rec={"name": name})


def test_which_xero_contact_an_omono_company_is() -> None:
    pusher = _pusher(entities.CONTACT)
    ours = matching.FoundContact("x1", "Acme Ltd", "ACTIVE", "OMONO-1", None)
    archived = matching.FoundContact("x2", "Caf\u00e9 Rouge", "ARCHIVED", None, None)
    taken = matching.FoundContact("x3", "Bolt Co", "ACTIVE", "OMONO-9", "B9")
    directory = _directory(ours, archived, taken)
    assert pusher._contact_match(_company(1, "Renamed Ltd"), directory, {}) == (ours, None)
    assert pusher._contact_match(_company(2, "CAFE\u0301 ROUGE "), directory, {})[0] is archived
    match, why = pusher._contact_match(_company(3, "bolt co"), directory, {})
    assert match is None and "another Omono company" in why
    claimed = {matching.name_key("Same Name"): ("Same Name", "C-4")}      # a company already sent in this run
    match, why = pusher._contact_match(_company(5, "same  name"), directory, claimed)
    assert match is None and "also sent in this run" in why and "'Same Name' (C-4)" in why


def test_batches_hold_at_most_50_elements_and_3_mb_and_a_too_large_record_is_red() -> None:
    pusher = _pusher()
    small = [_plan() for _ in range(120)]
    assert [len(b) for b in pusher.batches(small)] == [50, 50, 20]
    big = _plan()
    big.payload["LineItems"][0]["Description"] = "x" * 1_100_000          # about 1.1 MB each
    assert [len(b) for b in pusher.batches([big, big, big, big])] == [2, 2]
    huge = _plan()
    huge.payload["LineItems"][0]["Description"] = "x" * 3_100_000
    assert list(pusher.batches([huge])) == [] and pusher.rows[-1].action == "failed"


class FakeAllocatingClient:
    def __init__(self) -> None:
        self.xero = NS(tenant_id="t")
        self.sent: list[tuple[str, Decimal]] = []

    def write_detailed(self, method: str, credit_id: str, body: Any, **_: Any) -> tuple[NS, None]:
        self.sent.append((credit_id, Decimal(str(body.allocations[0].amount))))
        return NS(allocations=[NS(validation_errors=[])]), None


def _pair(credit: str, invoice: str, status: str = "waiting", tried: Decimal | None = None) -> allocate.Pair:
    return allocate.Pair("sales_credit_note", "dispatch_invoice",
                         {"omono_id": sum(map(ord, credit)), "omono_number": f"CN-{credit}", "xero_id": credit},
                         {"omono_id": 7, "omono_number": "SO-7", "xero_id": invoice}, status, tried)


def _note(credit: str, left: str, status: str = "AUTHORISED", allocations: list | None = None) -> NS:
    return NS(credit_note_id=credit, remaining_credit=float(left), status=status, currency_code="GBP",
              allocations=allocations or [])


def test_two_credit_notes_on_one_invoice_share_what_it_owes() -> None:
    client = FakeAllocatingClient()
    allocator = allocate.Allocator(RunContext("d", "r", "t"), FakeConn(), client)
    allocator.due, allocator.left = {"inv": Decimal("60")}, {"n1": Decimal("36"), "n2": Decimal("36")}
    invoice = NS(status="AUTHORISED")
    allocator.pipeline([(_pair(credit, "inv"), _note(credit, "36"), invoice) for credit in ("n1", "n2")])
    assert client.sent == [("n1", Decimal("36")), ("n2", Decimal("24"))]
    assert allocator.due["inv"] == 0


def test_a_draft_waits_an_allocation_already_in_xero_is_recorded_and_a_refused_one_is_not_resent() -> None:
    client = FakeAllocatingClient()
    allocator = allocate.Allocator(RunContext("d", "r", "t"), FakeConn(), client)
    allocator.due, allocator.left = {"inv": Decimal("60")}, {"n1": Decimal("10")}
    made = [NS(invoice=NS(invoice_id="inv"), amount=10.0)]
    for item in ((_pair("n1", "inv"), _note("n1", "10", status="DRAFT"), NS(status="AUTHORISED")),
                 (_pair("n1", "inv"), _note("n1", "0", allocations=made), NS(status="AUTHORISED")),
                 (_pair("n1", "inv", "failed", Decimal("10")), _note("n1", "10"), NS(status="AUTHORISED"))):
        allocator.pipeline([item])
    assert client.sent == [] and allocator.counts == {"allocated": 1, "still failing": 1}


class SlowAnswerClient(FakeAllocatingClient):
    """Xero answering one credit note (`slow`) only after `overtaken` other allocations have been answered (or
    after 5 s: then that answer held everything up). Records which documents are in flight at once."""

    def __init__(self, notes: list[NS], invoices: list[NS], slow: str, overtaken: int) -> None:
        super().__init__()
        self.notes, self.invoices, self.slow, self.overtaken = notes, invoices, slow, overtaken
        self.lock, self.overtook = threading.Lock(), threading.Event()
        self.flying: list[set[str]] = []
        self.answered: list[str] = []
        self.most_in_flight, self.clashes, self.held_up = 0, 0, False

    def read(self, method: str, **params: Any) -> NS:
        if method == "get_invoices":
            return NS(invoices=[i for i in self.invoices if i.invoice_id in params["i_ds"]])
        return NS(credit_notes=self.notes if params.get("page") == 1 else [], pagination=None)

    def write_detailed(self, method: str, credit_id: str, body: Any, **kw: Any) -> tuple[NS, None]:
        ids = {credit_id, body.allocations[0].invoice.invoice_id}
        with self.lock:
            self.clashes += any(ids & other for other in self.flying)
            self.flying.append(ids)
            self.most_in_flight = max(self.most_in_flight, len(self.flying))
        if credit_id == self.slow:
            self.held_up = not self.overtook.wait(5)
        else:
            time.sleep(0.01)
        with self.lock:
            self.flying.remove(ids)
            self.answered.append(credit_id)
            if len(self.answered) >= self.overtaken:
                self.overtook.set()
        return super().write_detailed(method, credit_id, body, **kw)


def test_allocations_keep_five_in_flight_and_a_slow_answer_holds_up_only_its_own_documents() -> None:
    """Xero allows 5 calls at once; a 3 s answer must not stop the other four slots (issue 11). A pair sharing the
    slow call's invoice waits for it, so the amount it computes is true."""
    credits = ["slow", *[f"n{k:02}" for k in range(20)], "same-invoice"]
    invoice_of = {c: ("inv-slow" if c in ("slow", "same-invoice") else f"inv-{c}") for c in credits}
    notes = [_note(c, "5") for c in credits]
    invoices = [NS(invoice_id=i, amount_due=8.0, status="AUTHORISED") for i in sorted(set(invoice_of.values()))]
    client = SlowAnswerClient(notes, invoices, slow="slow", overtaken=12)
    allocator = allocate.Allocator(RunContext("d", "r", "t"), FakeConn(), client)
    allocator.run([_pair(c, invoice_of[c]) for c in credits])
    assert not client.held_up, "the slow answer held up the allocations of other documents"
    assert client.most_in_flight == 5 and client.clashes == 0
    assert client.answered.index("same-invoice") > client.answered.index("slow")
    assert dict(client.sent)["same-invoice"] == Decimal("3")       # 8 owed, 5 allocated by the slow call
