"""What the sync finds already in Xero: archived contacts, contacts and documents a bookkeeper typed by hand,
documents Xero has voided, look-alike names, numbers with quotes and commas, bills keyed from the supplier's
paper. Nothing a person typed in Xero is overwritten, nothing is created twice, and what cannot be decided is red
with a message a bookkeeper can act on."""

from __future__ import annotations

import unicodedata

import httpx
import pytest

from include.omono_xero_sync import lifecycle
from tests.support.pipeline_env import XeroOrg, api_calls, db, last_seq, record_state, seed, xero_objects
from tests.support.steps import run_steps
from tests.support.xero_sdk import UK_TENANT

pytestmark = pytest.mark.integration


def _company(url: str, company_id: int) -> dict:
    with db(url) as conn:
        return conn.execute("SELECT * FROM omono.companies WHERE id = %s", (company_id,)).fetchone()


def _typed_in_xero(admin: httpx.Client, **objects: list[dict]) -> dict:
    reply = admin.post(f"/tenants/{UK_TENANT}/seed", json=objects)
    assert reply.status_code == 200, reply.text
    return reply.json()


def _messages(url: str, entity: str, number: str) -> str:
    return " ".join(record_state(url, entity, number)["last_messages"])


def test_an_archived_xero_contact_with_the_same_name_gets_no_active_twin(xero_org: XeroOrg, fresh_db: str,
                                                                        admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    company = _company(fresh_db, 1)
    _typed_in_xero(admin, Contacts=[{"Name": company["name"], "ContactStatus": "ARCHIVED"}])
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    twins = [c for c in xero_objects(admin, "contacts") if c["Name"].lower() == company["name"].lower()]
    assert len(twins) == 1 and twins[0]["ContactStatus"] == "ARCHIVED"
    state = record_state(fresh_db, "contact", company["account_number"])
    assert state["status"] == "held"
    assert "archived" in _messages(fresh_db, "contact", company["account_number"]).lower()
    assert "restore" in _messages(fresh_db, "contact", company["account_number"]).lower()


def test_an_invoice_the_bookkeeper_typed_with_the_same_number_is_never_overwritten(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    with db(fresh_db) as conn:
        doc = conn.execute("SELECT d.number, s.xero_id FROM omono.dispatch_invoices d JOIN xero_sync.record_state s "
                           "ON s.entity = 'contact' AND s.omono_id = d.company_id ORDER BY d.id LIMIT 1").fetchone()
    typed = {"Type": "ACCREC", "Contact": {"ContactID": str(doc["xero_id"])}, "InvoiceNumber": doc["number"],
             "Date": "2026-09-02", "Status": "DRAFT",
             "LineItems": [{"Description": "Typed by hand", "Quantity": 1, "UnitAmount": 99, "AccountCode": "200",
                            "TaxType": "OUTPUT2"}]}
    _typed_in_xero(admin, Invoices=[typed])
    run_steps("r2", ("extract_changes", "check_records", "push_dispatch_invoices"))
    xero = [i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == doc["number"]]
    assert len(xero) == 1
    assert [li["Description"] for li in xero[0]["LineItems"]] == ["Typed by hand"]      # untouched
    assert record_state(fresh_db, "dispatch_invoice", doc["number"])["status"] == "held"
    assert "already" in _messages(fresh_db, "dispatch_invoice", doc["number"])


def test_a_typed_document_whose_content_equals_omonos_is_linked_and_logged_as_such(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    run_steps("rehearsal", ("extract_changes", "check_records", "push_dispatch_invoices"), params={"dry_run": True})
    with db(fresh_db) as conn:                    # the bookkeeper typed exactly what Omono would send
        would = conn.execute("SELECT omono_number, sent FROM xero_sync.sync_log WHERE run_id = 'rehearsal' AND "
                             "entity = 'dispatch_invoice' ORDER BY id LIMIT 1").fetchone()
    _typed_in_xero(admin, Invoices=[{**would["sent"], "Status": "AUTHORISED"}])
    run_steps("r2", ("extract_changes", "check_records", "push_dispatch_invoices"))
    assert record_state(fresh_db, "dispatch_invoice", would["omono_number"])["status"] == "synced"
    with db(fresh_db) as conn:
        action = conn.execute("SELECT action FROM xero_sync.sync_log WHERE run_id = 'r2' AND omono_number = %s",
                              (would["omono_number"],)).fetchone()["action"]
    assert action == "linked"
    assert [i["InvoiceNumber"] for i in xero_objects(admin, "invoices")].count(would["omono_number"]) == 1


def test_a_matched_document_xero_has_voided_is_not_adopted_as_synced(xero_org: XeroOrg, fresh_db: str,
                                                                     admin: httpx.Client) -> None:
    from include.omono_xero_sync import db as pipeline_db
    from include.omono_xero_sync.xero_api import client_for, to_model

    seed(fresh_db, documents=8)
    run_steps("r1")
    with db(fresh_db) as conn:
        number = conn.execute("SELECT number FROM omono.dispatch_invoices ORDER BY id LIMIT 1").fetchone()["number"]
        lifecycle.reset(conn, "Omono Demo Wholesale Ltd", "test")
    invoice = next(i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == number)
    with pipeline_db.connect() as conn:                               # the bookkeeper voids it in Xero
        client_for(conn).write("update_invoice", invoice["InvoiceID"],
                               to_model("Invoices", {"Invoices": [{"Status": "VOIDED"}]}), unitdp=4)
    run_steps("r2", params={"full_resync": True})
    state = record_state(fresh_db, "dispatch_invoice", number)
    assert state["status"] != "synced"
    assert "voided" in _messages(fresh_db, "dispatch_invoice", number).lower()
    assert [i["Status"] for i in xero_objects(admin, "invoices") if i["InvoiceNumber"] == number] == ["VOIDED"]


@pytest.mark.parametrize("number", ['PCN-"7"', "SUP-1,5"])
def test_numbers_with_quotes_or_commas_are_found_after_a_lost_answer(xero_org: XeroOrg, fresh_db: str,
                                                                     admin: httpx.Client, number: str,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from include.omono_xero_sync import settings

    seed(fresh_db, documents=24)
    credit = number.startswith("PCN")
    with db(fresh_db) as conn:
        if credit:      # a purchase credit note's number, and a bill's supplier invoice number, reach Xero as such
            conn.execute("DELETE FROM omono.credit_notes WHERE kind = 'sales'")      # the lost write is this one
            conn.execute("UPDATE omono.credit_notes SET number = %s WHERE id = (SELECT min(id) FROM "
                         "omono.credit_notes WHERE kind = 'purchase')", (number,))
        else:
            conn.execute("UPDATE omono.delivery_invoices SET supplier_invoice_ref = %s WHERE id = 1", (number,))
        omono_number = number if credit else "PO-2001"
    path, step = ("/CreditNotes$", "push_credit_notes") if credit else ("/Invoices$", "push_delivery_invoices")
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts", "push_dispatch_invoices"))
    admin.post("/faults", json={"kind": "drop_after_commit", "method": "POST", "path": path, "times": 1})
    monkeypatch.setattr(settings, "RETRY_BACKOFF", ())                    # the task's own retries are spent
    with pytest.raises(Exception, match="whether Xero saved it is unknown"):
        run_steps("r2", ("extract_changes", "check_records", step))
    monkeypatch.undo()
    admin.post("/clock", json={"advance_seconds": 400})              # past Xero's idempotency window
    XeroOrg(xero_org.base_url).connect(fresh_db)
    run_steps("r3", ("extract_changes", "check_records", step))
    kind, key = ("creditnotes", "CreditNoteNumber") if credit else ("invoices", "InvoiceNumber")
    assert [d[key] for d in xero_objects(admin, kind)].count(number) == 1
    entity = "purchase_credit_note" if credit else "delivery_invoice"
    assert record_state(fresh_db, entity, omono_number)["status"] == "synced"


def test_a_bill_keyed_from_the_suppliers_paper_is_not_created_twice(xero_org: XeroOrg, fresh_db: str,
                                                                    admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    with db(fresh_db) as conn:
        bill = conn.execute("SELECT d.number, d.supplier_invoice_ref, s.xero_id FROM omono.delivery_invoices d JOIN "
                            "xero_sync.record_state s ON s.entity = 'contact' AND s.omono_id = d.company_id ORDER BY "
                            "d.id LIMIT 1").fetchone()
    _typed_in_xero(admin, Invoices=[{
        "Type": "ACCPAY", "Contact": {"ContactID": str(bill["xero_id"])}, "InvoiceNumber": bill["supplier_invoice_ref"],
        "Date": "2026-09-03", "Status": "AUTHORISED",
        "LineItems": [{"Description": "As on the supplier's invoice", "Quantity": 1, "UnitAmount": 120,
                       "AccountCode": "310", "TaxType": "INPUT2"}]}])
    run_steps("r2", ("extract_changes", "check_records", "push_delivery_invoices"))
    same_ref = [i for i in xero_objects(admin, "invoices")
                if i["Type"] == "ACCPAY" and i["InvoiceNumber"] == bill["supplier_invoice_ref"]]
    assert len(same_ref) == 1                                         # the bill the bookkeeper keyed, alone
    assert record_state(fresh_db, "delivery_invoice", bill["number"])["status"] == "held"
    assert bill["supplier_invoice_ref"] in _messages(fresh_db, "delivery_invoice", bill["number"])


def test_company_names_that_differ_only_in_unicode_form_case_or_spaces_give_one_contact(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=8)
    composed = "Caf\u00e9 Rouge Ltd"
    with db(fresh_db) as conn:
        for i, name in enumerate((composed, "Cafe\u0301 Rouge Ltd", "  CAF\u00c9 ROUGE LTD ")):
            conn.execute("INSERT INTO omono.companies (account_number, name) VALUES (%s, %s)", (f"CR{i}", name))
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    same = [c for c in xero_objects(admin, "contacts")
            if unicodedata.normalize("NFC", c["Name"]).strip().casefold() == composed.casefold()]
    assert len(same) == 1
    held = [record_state(fresh_db, "contact", f"CR{i}") for i in range(3)]
    assert sorted(s["status"] for s in held) == ["held", "held", "synced"]
    assert all("same name" in " ".join(s["last_messages"]) for s in held if s["status"] == "held")


@pytest.mark.parametrize(("typed", "by_list"), [(120, True), (2_001, False)],
                         ids=["few-in-xero-list-read-once", "many-in-xero-numbers-asked"])
def test_documents_are_looked_up_the_cheaper_way_for_what_xero_holds_and_found_either_way(
        typed: int, by_list: bool, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """Issue 11: into an organisation that already holds invoices, the push either reads Xero's list once (pages of
    1,000, summary fields) or asks for its numbers 50 a call, whichever costs fewer calls; either way a number the
    bookkeeper typed is found (and is a clash, red), and nothing is created twice."""
    seed(fresh_db, documents=240)
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    with db(fresh_db) as conn:
        numbers = [r["number"] for r in conn.execute("SELECT number FROM omono.dispatch_invoices ORDER BY id")]
        contact = conn.execute("SELECT s.xero_id FROM omono.dispatch_invoices d JOIN xero_sync.record_state s ON "
                               "s.entity = 'contact' AND s.omono_id = d.company_id ORDER BY d.id LIMIT 1"
                               ).fetchone()["xero_id"]
    by_number = -(-len(numbers) // 50)
    assert by_number >= 3                      # more than one look-up's worth, so the choice is made
    line = {"Description": "Typed by hand", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200",
            "TaxType": "OUTPUT2"}
    typed_numbers = [numbers[0]] + [f"BK-{i:05d}" for i in range(1, typed)]
    for start in range(0, typed, 500):
        _typed_in_xero(admin, Invoices=[{"Type": "ACCREC", "Contact": {"ContactID": str(contact)},
                                         "InvoiceNumber": n, "Date": "2026-09-02", "Status": "AUTHORISED",
                                         "LineItems": [line]} for n in typed_numbers[start:start + 500]])
    seq = last_seq(admin)
    run_steps("r2", ("extract_changes", "check_records", "push_dispatch_invoices"))
    reads = [c for c in api_calls(admin, since=seq) if c["method"] == "GET"]
    listed = [c for c in reads if "page=" in c["query"] and "pageSize=1000" in c["query"]]
    # then, either way, one call asks Xero whether the hit was created by this app (it was not: a clash)
    if by_list:     # count, one page of 1,000 summaries (2 calls < 3 by number), the one hit read in full by id
        assert (len(reads), len(listed)) == (1 + 1 + 1 + 1, 1)
    else:           # count, then the numbers 50 a call (3 pages of 1,000 would cost more)
        assert (len(reads), len(listed)) == (1 + by_number + 1, 0)
    invoices = [i["InvoiceNumber"] for i in xero_objects(admin, "invoices") if i["Type"] == "ACCREC"]
    assert all(invoices.count(n) == 1 for n in numbers)                      # nothing twice
    assert len(invoices) == typed + len(numbers) - 1
    assert record_state(fresh_db, "dispatch_invoice", numbers[0])["status"] == "held"     # the clash, red
    assert all(record_state(fresh_db, "dispatch_invoice", n)["status"] == "synced" for n in numbers[1:])


def test_a_credit_note_typed_in_xero_is_found_through_xeros_list_then_read_in_full_by_id(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """Issue 11: the list read keeps only each number's ids (holding every listed credit note cost 5.8 KB each), so a
    number it finds is read again in full by id, in one call; the clash is red and the typed credit note untouched."""
    seed(fresh_db, documents=1_200)
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    with db(fresh_db) as conn:
        notes = conn.execute("SELECT c.number, s.xero_id FROM omono.credit_notes c JOIN xero_sync.record_state s ON "
                             "s.entity = 'contact' AND s.omono_id = c.company_id WHERE c.kind = 'sales' ORDER BY c.id"
                             ).fetchall()
    assert -(-len(notes) // 50) >= 3              # more look-ups by number than a count and one page of the list
    line = {"Description": "Typed by hand", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200",
            "TaxType": "OUTPUT2"}
    typed = [notes[0]["number"]] + [f"BK-CN-{i:04d}" for i in range(1, 120)]
    _typed_in_xero(admin, CreditNotes=[{"Type": "ACCRECCREDIT", "Contact": {"ContactID": str(notes[0]["xero_id"])},
                                        "CreditNoteNumber": n, "Date": "2026-09-02", "Status": "AUTHORISED",
                                        "LineItems": [line]} for n in typed])
    seq = last_seq(admin)
    run_steps("r2", ("extract_changes", "check_records", "push_credit_notes"))
    reads = [c for c in api_calls(admin, since=seq)                  # the sales credit notes' (not the purchase)
             if c["method"] == "GET" and "CreditNotes" in c["path"] and "ACCPAYCREDIT" not in c["query"]]
    listed = [c for c in reads if "pageSize=1000" in c["query"]]
    assert (len(reads), len(listed)) == (1 + 1 + 1, 1)               # count, the one page, the hit by id
    assert "CreditNoteID" in reads[-1]["query"]
    in_xero = [n for n in xero_objects(admin, "creditnotes") if n["CreditNoteNumber"] == notes[0]["number"]]
    assert [li["Description"] for n in in_xero for li in n["LineItems"]] == ["Typed by hand"]
    assert record_state(fresh_db, "sales_credit_note", notes[0]["number"])["status"] == "held"
    assert all(record_state(fresh_db, "sales_credit_note", n["number"])["status"] == "synced" for n in notes[1:])


def test_same_numbered_invoices_in_different_groups_of_a_list_read_push_give_one_copy_and_a_red_twin(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """helper-13: into an empty organisation the push reads Xero's (empty) list once; a record in a later group whose
    number an earlier group had just created was missed there and its write replaced the earlier invoice."""
    seed(fresh_db, documents=500)
    with db(fresh_db) as conn:
        invoices = conn.execute("SELECT id, company_id FROM omono.dispatch_invoices ORDER BY id").fetchall()
        last = [i for i in invoices if i["company_id"] == invoices[0]["company_id"]][-1]
        assert invoices.index(last) > 250                         # a later group than the first (groups of 250)
        conn.execute("UPDATE omono.dispatch_invoices SET number = 'DUP-A' WHERE id = %s", (invoices[0]["id"],))
        conn.execute("UPDATE omono.dispatch_invoices SET number = 'dup-a' WHERE id = %s", (last["id"],))
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts", "push_dispatch_invoices"))
    first, twin = (record_state(fresh_db, "dispatch_invoice", n) for n in ("DUP-A", "dup-a"))
    assert (first["status"], twin["status"]) == ("synced", "held")
    assert "DUP-A" in _messages(fresh_db, "dispatch_invoice", "dup-a")
    in_xero = [i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"].lower() == "dup-a"]
    assert [i["InvoiceID"] for i in in_xero] == [str(first["xero_id"])]


@pytest.mark.parametrize("number", [" TRIM-1 ", "trim-1", "TRIM-1\u00a0"], ids=["spaces", "case", "nbsp"])
def test_a_typed_invoice_whose_number_differs_only_by_spaces_or_case_is_found_and_never_overwritten(
        number: str, xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """helper-13: Xero strips the spaces around a number; the match did not, so the typed invoice was missed and
    Omono's write replaced its lines."""
    seed(fresh_db, documents=16)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoices SET number = %s WHERE id = (SELECT min(id) FROM "
                     "omono.dispatch_invoices)", (number,))
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts"))
    with db(fresh_db) as conn:
        contact = conn.execute("SELECT s.xero_id FROM omono.dispatch_invoices d JOIN xero_sync.record_state s ON "
                               "s.entity = 'contact' AND s.omono_id = d.company_id ORDER BY d.id LIMIT 1"
                               ).fetchone()["xero_id"]
    _typed_in_xero(admin, Invoices=[{"Type": "ACCREC", "Contact": {"ContactID": str(contact)},
                                     "InvoiceNumber": "TRIM-1", "Date": "2026-09-02", "Status": "AUTHORISED",
                                     "LineItems": [{"Description": "Typed by hand", "Quantity": 1, "UnitAmount": 99,
                                                    "AccountCode": "200", "TaxType": "OUTPUT2"}]}])
    run_steps("r2", ("extract_changes", "check_records", "push_dispatch_invoices"))
    typed = [i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"].strip().lower() == "trim-1"]
    assert [li["Description"] for i in typed for li in i["LineItems"]] == ["Typed by hand"]
    assert record_state(fresh_db, "dispatch_invoice", number)["status"] == "held"


def test_sales_invoices_of_two_customers_numbered_alike_but_for_case_are_not_both_sent(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """helper-13: a sales invoice number is unique in Xero whatever the contact; two in one batch differing only in
    case both went, and the second replaced the first."""
    seed(fresh_db, documents=16)
    with db(fresh_db) as conn:
        invoices = conn.execute("SELECT id, company_id FROM omono.dispatch_invoices ORDER BY id").fetchall()
        other = next(i for i in invoices if i["company_id"] != invoices[0]["company_id"])
        conn.execute("UPDATE omono.dispatch_invoices SET number = 'CASE-Z' WHERE id = %s", (invoices[0]["id"],))
        conn.execute("UPDATE omono.dispatch_invoices SET number = 'case-z' WHERE id = %s", (other["id"],))
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts", "push_dispatch_invoices"))
    first, twin = (record_state(fresh_db, "dispatch_invoice", n) for n in ("CASE-Z", "case-z"))
    assert sorted((first["status"], twin["status"])) == ["held", "synced"]
    assert len([i for i in xero_objects(admin, "invoices") if i["InvoiceNumber"].lower() == "case-z"]) == 1


def test_a_number_longer_than_xero_takes_is_red_and_the_records_beside_it_go(
        xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    """helper-13: a 300-character number made the SDK refuse the whole batch before sending (ValueError), which
    failed the push task on every run with nothing sent and no message."""
    seed(fresh_db, documents=16)
    with db(fresh_db) as conn:
        conn.execute("UPDATE omono.dispatch_invoices SET number = %s WHERE id = (SELECT max(id) FROM "
                     "omono.dispatch_invoices)", ("L" * 300,))
        numbers = [r["number"] for r in conn.execute("SELECT number FROM omono.dispatch_invoices")]
    run_steps("r1", ("readiness", "extract_changes", "check_records", "push_contacts", "push_dispatch_invoices"))
    long_one = record_state(fresh_db, "dispatch_invoice", "L" * 300)
    assert long_one["status"] in {"held", "failed"} and "255" in " ".join(long_one["last_messages"])
    assert all(record_state(fresh_db, "dispatch_invoice", n)["status"] == "synced" for n in numbers if n[0] != "L")
