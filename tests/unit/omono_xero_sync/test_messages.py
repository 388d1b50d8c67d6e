"""What a bookkeeper reads: each of Xero's errors gets its own advice, money reads as money, and a very long
name is neither pasted whole nor repeated in one message."""

from datetime import date

import pytest

from include.omono_xero_sync import entities, expectations, money, transform

pytestmark = pytest.mark.unit
LONG_NAME = "Very Long Trading Company " * 12          # 312 characters


def test_a_contact_name_clash_is_explained_as_a_name_clash_not_a_document_number_clash() -> None:
    xero = ("The contact name Acme Ltd is already assigned to another contact. The contact name must be unique "
            "across all active contacts.")
    advice = transform.explain("C00001", [xero])
    assert "active contact with this name" in advice[0]
    assert "another document" not in " ".join(advice)
    assert advice[1] == f"Xero said: {xero}"


@pytest.mark.parametrize(("xero", "advice"), [
    ("Invoice # must be unique.", "already used by another document"),
    ("The Account Number already exists. Please enter a different Account Number.", "account number"),
    ("The document date cannot be before the end of year lock date, currently set at 31-Mar-2026", "lock date"),
    ("Organisation is not subscribed to currency JPY", "Settings > Currencies"),
    ("This document cannot be edited as it has a payment or credit note allocated to it.", "Xero has locked"),
])
def test_each_xero_error_gets_its_own_advice(xero: str, advice: str) -> None:
    assert advice in transform.explain("SO-1001", [xero])[0]


def test_money_is_printed_as_money_with_its_currency() -> None:
    assert money.text(30, "GBP") == "30.00 GBP"
    assert money.text("1234.5") == "1,234.50"
    assert money.text("-0.005", "EUR") == "-0.01 EUR"


def test_xeros_rounding_each_line_then_tax_per_line() -> None:
    lines = [{"quantity": "1", "unit_price": p, "tax_rate": "15"} for p in ("25.06", "25.61", "25.63")]
    totals = money.document_totals(lines)
    assert (totals.sub_total, totals.total_tax) == (money.cents(money.Decimal("76.30")), money.Decimal("11.44"))


def test_a_300_character_company_name_is_shortened_and_named_once_in_a_held_document() -> None:
    ctx = expectations.CheckContext(currencies={"GBP"}, accounts={("sales", "SA"): "200"},
                                    taxes={("sales", "STD"): "OUTPUT2"}, active_accounts={"200"},
                                    active_tax_types={"OUTPUT2"}, today=date(2026, 11, 1))
    problem = expectations.check(entities.CONTACT, [{"id": 1, "name": LONG_NAME, "email": None}], ctx)[1][0]
    ctx.contact_problems = {1: problem}
    doc = {"id": 9, "number": "SO-9", "company_id": 1, "company_name": LONG_NAME, "currency_code": "GBP",
           "issue_date": "2026-09-01", "status": "issued",
           "lines": [{"line_no": 1, "description": "x", "quantity": "1", "unit_price": "1", "analysis_code": "SA",
                      "tax_code": "STD", "tax_rate": "20"}]}
    message = expectations.check(entities.DISPATCH_INVOICE, [doc], ctx)[9][0]
    short = transform.shorten(LONG_NAME)
    assert len(short) <= transform.NAME_LIMIT and LONG_NAME not in message
    assert message.count(short) == 1
