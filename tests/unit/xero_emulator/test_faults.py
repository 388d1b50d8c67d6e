"""Fault matching: a `reject` fault refuses only the writes whose body holds its text, in a Xero-shaped 400."""

import pytest

from include.xero_emulator.faults import Fault, Faults

pytestmark = pytest.mark.unit


def test_reject_fault_matches_only_bodies_containing_its_text() -> None:
    faults = Faults()
    faults.add(Fault(kind="reject", text="SO-BAD", times=1))
    assert faults.take("reject", "t", "PUT", "/Invoices", '{"InvoiceNumber":"SO-OK"}') is None
    assert faults.take("reject", "t", "PUT", "/Invoices", '{"InvoiceNumber":"SO-BAD"}') is not None
    assert faults.take("reject", "t", "PUT", "/Invoices", '{"InvoiceNumber":"SO-BAD"}') is None   # used up


def test_reject_answers_post_data_invalid_by_default_or_a_validation_exception() -> None:
    assert Fault(kind="reject", text="X").rejection() == {
        "ErrorNumber": 14, "Type": "PostDataInvalidException",
        "Message": "The request was refused as a whole: it contains 'X'."}
    assert Fault(kind="reject", exception="ValidationException", message="m").rejection() == {
        "ErrorNumber": 10, "Type": "ValidationException", "Message": "m", "Elements": []}


def test_unknown_reject_exception_type_is_refused() -> None:
    with pytest.raises(ValueError, match="exception is one of"):
        Fault(kind="reject", exception="Boom")
