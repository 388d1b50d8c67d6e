from decimal import Decimal

import pytest

from include.omono_xero_sync import entities, transform

pytestmark = pytest.mark.unit

COMPANY = {"id": 7, "name": " Acme Ltd ", "account_number": "C007", "email": "ap@acme.example", "archived": False,
           "address_line1": "1 High St", "city": "Leeds", "postal_code": "LS1", "country": "United Kingdom",
           "phone": "0113", "payment_terms_days": 30, "is_customer": True, "is_supplier": False,
           "currency_code": "GBP", "contact_first_name": None}
INVOICE = {"id": 3, "number": "SO-1003", "company_id": 7, "currency_code": "EUR", "issue_date": "2026-09-01",
           "due_date": "2026-10-01", "reference": "Order 7", "status": "issued",
           "lines": [{"line_no": 1, "product_code": "WID-1", "description": "Widget", "quantity": "2.0000",
                      "unit_price": "10.1234", "discount_percent": "0.00", "analysis_code": "SA-W", "tax_code": "STD"},
                     {"line_no": 2, "product_code": None, "description": "Freight", "quantity": "1",
                      "unit_price": "5", "discount_percent": "10", "analysis_code": "SA-X", "tax_code": "STD"}]}
ACCOUNTS = {("sales", "SA-W"): "220", ("purchase", "SA-W"): "310"}
TAXES = {("sales", "STD"): "OUTPUT2", ("purchase", "STD"): "INPUT2"}


def test_contact_carries_omonos_id_as_contact_number_and_its_details() -> None:
    payload = transform.contact(COMPANY, None)
    assert payload["ContactNumber"] == "OMONO-7" and payload["Name"] == "Acme Ltd"
    assert payload["Addresses"] == [{"AddressType": "STREET", "AddressLine1": "1 High St", "City": "Leeds",
                                     "PostalCode": "LS1", "Country": "United Kingdom"}]
    assert payload["PaymentTerms"] == {"Sales": {"Day": 30, "Type": "DAYSAFTERBILLDATE"}}
    assert "FirstName" not in payload and "ContactID" not in payload


def test_invoice_lines_use_the_mapping_of_their_kind_and_keep_four_decimals() -> None:
    payload = transform.document(entities.DISPATCH_INVOICE, INVOICE, "cid", ACCOUNTS, TAXES, "AUTHORISED", None)
    first, second = payload["LineItems"]
    assert first == {"Description": "WID-1 Widget", "Quantity": Decimal("2.0000"), "UnitAmount": Decimal("10.1234"),
                     "AccountCode": "220", "TaxType": "OUTPUT2"}
    assert "AccountCode" not in second and second["DiscountRate"] == Decimal("10")   # unmapped code: left out
    assert (payload["Date"], payload["DueDate"], payload["Reference"]) == ("2026-09-01", "2026-10-01", "Order 7")


def test_bills_get_the_purchase_mapping_and_no_reference() -> None:
    payload = transform.document(entities.DELIVERY_INVOICE, INVOICE, "cid", ACCOUNTS, TAXES, "DRAFT", "xid")
    assert payload["LineItems"][0]["AccountCode"] == "310" and payload["LineItems"][0]["TaxType"] == "INPUT2"
    assert "Reference" not in payload and payload["InvoiceID"] == "xid"


def test_content_hash_ignores_the_xero_id_but_not_the_content() -> None:
    new = transform.document(entities.DISPATCH_INVOICE, INVOICE, "cid", ACCOUNTS, TAXES, "AUTHORISED", None)
    known = transform.document(entities.DISPATCH_INVOICE, INVOICE, "cid", ACCOUNTS, TAXES, "AUTHORISED", "xid")
    edited = transform.document(entities.DISPATCH_INVOICE, {**INVOICE, "reference": "Order 8"}, "cid", ACCOUNTS,
                                TAXES, "AUTHORISED", "xid")
    assert transform.content_hash(new) == transform.content_hash(known) != transform.content_hash(edited)


def test_idempotency_key_is_stable_for_the_same_batch_and_within_xeros_128_characters() -> None:
    batch = [transform.jsonable(transform.contact(COMPANY, None))]
    key = transform.idempotency_key("t", "update_or_create_contacts", batch)
    assert key == transform.idempotency_key("t", "update_or_create_contacts", batch)
    assert key != transform.idempotency_key("t2", "update_or_create_contacts", batch)
    assert len(key) <= 128


def test_xeros_lock_message_is_explained_to_the_bookkeeper() -> None:
    messages = transform.explain("SO-1", ["This document cannot be edited as it has a payment or credit note "
                                          "allocated to it."])
    assert messages[0].startswith("Xero has locked SO-1 because a payment or credit note is allocated to it")
    assert messages[1] == ("Xero said: This document cannot be edited as it has a payment or credit note "
                           "allocated to it.")
