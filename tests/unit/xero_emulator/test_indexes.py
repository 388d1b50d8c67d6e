"""Look-ups answered from the document indexes examine only their hits, not every document (issue 11)."""

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from include.xero_emulator import contacts_api, documents_api
from include.xero_emulator.app import Emulator, create_app
from include.xero_emulator.config import EmulatorConfig, Limits
from include.xero_emulator.context import Call
from include.xero_emulator.documents_api import CREDIT_NOTES, INVOICES, DocKind

pytestmark = pytest.mark.unit

UK = "7f9b8c3e-2a4d-4e6b-9f1a-3c5d7e9f0b21"
INVOICE_COUNT = 600
LINE = [{"Description": "x", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200", "TaxType": "OUTPUT2"}]


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    """600 invoices (20 contacts, every 50th a draft) and 60 credit notes, written through the handlers."""
    emu = create_app(EmulatorConfig(limits=Limits.off()))
    call = emu.call_for(UK, "app")
    contacts = [contacts_api.upsert_contact(call, {"Name": f"C{i}"})["ContactID"] for i in range(20)]
    for i in range(INVOICE_COUNT):
        emu.clock.advance(1)
        documents_api.upsert_document(call, INVOICES, {
            "Type": "ACCREC", "InvoiceNumber": f"SO-{i}", "Contact": {"ContactID": contacts[i % 20]},
            "Status": "DRAFT" if i % 50 == 0 else "AUTHORISED", "Date": "2026-01-05", "LineItems": LINE})
    for i in range(60):
        documents_api.upsert_document(call, CREDIT_NOTES, {
            "Type": "ACCRECCREDIT", "CreditNoteNumber": f"CR-{i}", "Contact": {"ContactID": contacts[i % 20]},
            "Status": "AUTHORISED", "Date": "2026-01-05", "LineItems": LINE})
    yield emu


def _list(emu: Emulator, kind: DocKind, query: dict[str, str] | None = None,
          headers: dict[str, str] | None = None) -> tuple[list[dict], Call]:
    call = emu.call_for(UK, "app", query=query, headers=headers)
    return documents_api.list_documents(call, kind)[kind.collection], call


def _ids(emu: Emulator, kind: DocKind) -> list[str]:
    return list(kind.objects(emu.call_for(UK, "app")))


def test_or_of_invoice_numbers_examines_only_the_hits(emulator: Emulator) -> None:
    where = " OR ".join(f'InvoiceNumber=="so-{n}"' for n in (3, 7, 599, 9999))
    rows, call = _list(emulator, INVOICES, {"where": where})
    assert [r["InvoiceNumber"] for r in rows] == ["SO-3", "SO-7", "SO-599"]
    assert call.examined == 3


def test_or_of_credit_note_numbers_and_ids_examines_only_the_hits(emulator: Emulator) -> None:
    ids = _ids(emulator, CREDIT_NOTES)[:4]
    rows, call = _list(emulator, CREDIT_NOTES, {"where": " OR ".join(f'CreditNoteID==GUID("{i}")' for i in ids)})
    assert ([r["CreditNoteID"] for r in rows], call.examined) == (ids, 4)
    rows, call = _list(emulator, CREDIT_NOTES, {"where": 'CreditNoteNumber=="CR-5" OR CreditNoteNumber=="CR-6"'})
    assert ([r["CreditNoteNumber"] for r in rows], call.examined) == (["CR-5", "CR-6"], 2)


def test_contact_and_invoice_id_look_ups_examine_only_the_hits(emulator: Emulator) -> None:
    first = _ids(emulator, INVOICES)[0]
    rows, call = _list(emulator, INVOICES, {"where": f'InvoiceID==GUID("{first}")'})
    assert (len(rows), call.examined) == (1, 1)
    contact = rows[0]["Contact"]["ContactID"]
    rows, call = _list(emulator, INVOICES, {"where": f'Contact.ContactID==GUID("{contact}") AND Status=="DRAFT"'})
    assert len(rows) == 6 and call.examined == 6          # the narrower of the two sets, intersected
    rows, call = _list(emulator, INVOICES, {"contactids": contact})
    assert (len(rows), call.examined) == (30, 30)


@pytest.mark.parametrize(("query", "hits"), [
    ({"statuses": "DRAFT"}, 12),
    ({"invoicenumbers": "SO-1,SO-2,SO-9999"}, 2),
    ({"statuses": "DRAFT", "invoicenumbers": "SO-0,SO-1"}, 1),
])
def test_query_parameters_examine_only_the_hits(emulator: Emulator, query: dict, hits: int) -> None:
    rows, call = _list(emulator, INVOICES, query)
    assert len(rows) == hits and call.examined == hits


def test_ids_parameter_examines_only_the_hits(emulator: Emulator) -> None:
    ids = _ids(emulator, INVOICES)[10:13]
    rows, call = _list(emulator, INVOICES, {"ids": ",".join(ids)})
    assert ([r["InvoiceID"] for r in rows], call.examined) == (ids, 3)


def test_if_modified_since_examines_only_later_documents(emulator: Emulator) -> None:
    everything, _ = _list(emulator, INVOICES)
    cutoff = sorted(d["UpdatedDateUTC"] for d in INVOICES.objects(emulator.call_for(UK, "app")).values())[-5]
    since = datetime.fromtimestamp(cutoff / 1000, tz=UTC).replace(tzinfo=None).isoformat()
    rows, call = _list(emulator, INVOICES, headers={"if-modified-since": since})
    assert len(everything) == INVOICE_COUNT
    assert len(rows) == call.examined <= 5


def test_other_expressions_fall_back_to_a_scan_with_the_same_answer(emulator: Emulator) -> None:
    indexed, fast = _list(emulator, INVOICES, {"where": 'InvoiceNumber=="SO-8" OR InvoiceNumber=="SO-9"'})
    scanned, slow = _list(emulator, INVOICES, {"where": 'InvoiceNumber=="SO-8" OR InvoiceNumber=="SO-9" '
                                                         'OR Reference=="not-there"'})
    assert indexed == scanned
    assert (fast.examined, slow.examined) == (2, INVOICE_COUNT)


def test_a_list_read_page_by_page_filters_the_documents_once_not_once_a_page(emulator: Emulator) -> None:
    """The 1M budget run: a push read Xero's list of 300,000 bills (`where=Type=="ACCPAY"`, which no index narrows)
    in pages of 1,000, and the emulator filtered every document again for each page: minutes of its CPU a day."""
    pages, examined = [], 0
    for page in range(1, 8):
        rows, call = _list(emulator, INVOICES, {"where": 'Type=="ACCREC"', "page": str(page), "pagesize": "100"})
        pages += rows
        examined += call.examined
    assert [r["InvoiceNumber"] for r in pages] == [f"SO-{i}" for i in range(INVOICE_COUNT)]
    assert examined == INVOICE_COUNT


def test_a_write_between_two_pages_is_seen_by_the_next_page() -> None:
    emu = create_app(EmulatorConfig(limits=Limits.off()))
    call = emu.call_for(UK, "app")
    contact = contacts_api.upsert_contact(call, {"Name": "C"})["ContactID"]

    def invoice(n: int) -> None:
        documents_api.upsert_document(call, INVOICES, {
            "Type": "ACCREC", "InvoiceNumber": f"SO-{n}", "Contact": {"ContactID": contact}, "Status": "AUTHORISED",
            "Date": "2026-01-05", "LineItems": LINE})

    for n in range(4):
        invoice(n)
    query = {"where": 'Type=="ACCREC"', "pagesize": "2"}
    first, _ = _list(emu, INVOICES, {**query, "page": "1"})
    invoice(4)
    rest = [r for page in (2, 3) for r in _list(emu, INVOICES, {**query, "page": str(page)})[0]]
    assert [r["InvoiceNumber"] for r in first + rest] == [f"SO-{n}" for n in range(5)]
