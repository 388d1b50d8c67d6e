import pytest

from include.xero_emulator.errors import HttpError
from include.xero_emulator.where import compile_where

pytestmark = pytest.mark.unit

INVOICE = {"Name": "Acme Ltd", "Status": "DRAFT", "Date": "2024-02-01", "Contact": {"ContactID": "abc"},
           "AmountDue": 10.0, "EmailAddress": None}


@pytest.mark.parametrize(("where", "expected"), [
    ('Name=="acme ltd"', True),                                   # string equality ignores case
    ('Status!="DELETED" && Name.Contains("cme")', True),
    ('Status=="DELETED" OR Name.StartsWith("Ac")', True),
    ("Date >= DateTime(2024, 01, 01) AND Date < DateTime(2024, 03, 01)", True),
    ("Date >= DateTime(2024, 03, 01)", False),
    ('Contact.ContactID==GUID("abc")', True),
    ("AmountDue > 5", True),
    ('EmailAddress != null && EmailAddress.StartsWith("x")', False),
    ('!(Status=="DRAFT")', False),
])
def test_where_filters_like_xero(where: str, expected: bool) -> None:
    assert compile_where(where)(INVOICE) is expected


def test_unparseable_where_is_a_400_not_a_crash() -> None:
    with pytest.raises(HttpError) as err:
        compile_where('Name=="unterminated')
    assert err.value.status == 400
