"""How a push finds Xero's documents by number when it reads Xero's whole list instead of asking number by number,
with a fake Xero that builds the SDK's own model objects afresh for every answer (as the SDK does): what the list
read keeps in memory, and which documents a look-up returns in full. The integration test of the same choice
(`tests/integration/test_matching.py`) counts the calls against the emulator."""

from __future__ import annotations

import gc
import re
import tracemalloc
from datetime import date
from decimal import Decimal
from types import SimpleNamespace as NS
from typing import Any

import pytest

from include.omono_xero_sync import entities, matching

pytestmark = pytest.mark.unit


def _id(i: int) -> str:
    return f"00000000-0000-4000-8000-{i:012d}"


class FakeXero:
    """Holds `held` documents of one kind numbered DOC-00000…; answers the reads `matching` makes, paged."""

    def __init__(self, entity: entities.Entity, held: int) -> None:
        self.entity, self.held, self.calls = entity, held, []
        self.pacer = NS(day_remaining=None)

    def read(self, method: str, **params: Any) -> NS:
        self.calls.append(params)
        wanted = params.get("i_ds") or re.findall(r'GUID\("([^"]+)"\)', params.get("where", ""))
        chosen = [int(i.rsplit("-", 1)[1]) for i in wanted] if wanted else list(range(self.held))
        page, size = params.get("page", 1), params.get("page_size", 100)
        items = [self._document(i, in_full=not params.get("summary_only"))
                 for i in chosen[(page - 1) * size:page * size]]
        from xero_python.accounting import Pagination

        collection = "credit_notes" if self.entity.is_credit_note else "invoices"
        return NS(**{collection: items}, pagination=Pagination(page=page, page_size=size, item_count=len(chosen),
                                                                page_count=-(-len(chosen) // size)))

    def _document(self, i: int, in_full: bool) -> Any:
        from xero_python.accounting import Contact, CreditNote, Invoice, LineItem

        lines = [LineItem(description=f"Widget {n}", quantity=Decimal(2), unit_amount=Decimal("10.1234"),
                          account_code="200", tax_type="OUTPUT2", line_amount=Decimal("20.25")) for n in range(3)]
        common = {"type": self.entity.xero_type, "status": "AUTHORISED", "date": date(2026, 9, 1),
                  "contact": Contact(contact_id=_id(900_000 + i % 50), name=f"Company {i % 50}"),
                  "currency_code": "GBP", "total": Decimal("24.30"), "line_items": lines if in_full else []}
        if self.entity.is_credit_note:
            return CreditNote(credit_note_id=_id(i), credit_note_number=f"DOC-{i:05d}", **common)
        return Invoice(invoice_id=_id(i), invoice_number=f"DOC-{i:05d}", due_date=date(2026, 10, 1),
                       amount_due=Decimal("24.30"), **common)


def _retained_by_reading_the_list(finder: matching.DocumentFinder) -> int:
    """Bytes still held once the finder has read Xero's list (the fake keeps nothing it answered), after a small
    read the same way, so that what the SDK and its imports set up once is not counted."""
    matching.DocumentFinder(FakeXero(finder.entity, 60), finder.entity, finder.expected)._use_directory()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.take_snapshot()
        assert finder._use_directory()                  # the list is read: the choice this test is about
        gc.collect()
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    return sum(stat.size_diff for stat in after.compare_to(before, "filename"))


@pytest.mark.parametrize("entity", [entities.DISPATCH_INVOICE, entities.SALES_CREDIT_NOTE], ids=lambda e: e.name)
def test_reading_xeros_list_keeps_a_number_and_an_id_per_document_not_the_documents(entity: entities.Entity) -> None:
    """Issue 11 (memory flat in history): a push into an organisation holding 250k invoices kept every listed
    invoice as an SDK object (about 4.5 KB each: +550 MB on the second day of the 1M budget scenario, 2.28 GB by
    the fourth). What it needs of the list is which numbers Xero holds and under which id."""
    held = 2_000
    xero = FakeXero(entity, held)
    finder = matching.DocumentFinder(xero, entity, expected_numbers=50 * 10)      # 10 look-ups > count + 2 pages
    per_document = _retained_by_reading_the_list(finder) / held
    assert per_document < 400, f"{per_document:.0f} bytes kept per listed document"


@pytest.mark.parametrize("entity", [entities.DISPATCH_INVOICE, entities.SALES_CREDIT_NOTE], ids=lambda e: e.name)
def test_a_number_found_in_xeros_list_is_returned_in_full_read_by_its_id(entity: entities.Entity) -> None:
    xero = FakeXero(entity, held=1_500)
    finder = matching.DocumentFinder(xero, entity, expected_numbers=50 * 10)
    found = finder.find(["doc-00007", "DOC-01499", "NOT-IN-XERO"])          # Xero's numbers are case-blind
    number = "credit_note_number" if entity.is_credit_note else "invoice_number"
    assert sorted(getattr(d, number) for d in found) == ["DOC-00007", "DOC-01499"]
    assert all(len(d.line_items) == 3 for d in found)                            # in full, with their lines
    counted, listed, by_id = xero.calls[0], xero.calls[1:3], xero.calls[3:]
    assert counted["page_size"] == 1 and all(c["page_size"] == 1_000 for c in listed)
    assert len(by_id) == 1 and len(xero.calls) == 4                             # count, 2 pages, the hits by id
    assert finder.find(["NOT-IN-XERO"]) == [] and len(xero.calls) == 4          # the list is not read again
