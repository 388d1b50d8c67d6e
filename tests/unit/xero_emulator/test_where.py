import pytest

from include.xero_emulator.errors import HttpError
from include.xero_emulator.where import AllOf, AnyOf, Eq, compile_where, parse_where

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


@pytest.mark.parametrize("name", ["Café «Rouge» 🎉", 'Say "hi"', "back\\slash, comma", "Straße"])
def test_a_string_literal_keeps_non_ascii_quotes_and_backslashes(name: str) -> None:
    """What a client escapes (backslash and double quote, as Xero's `where` strings need) is all that is unescaped:
    accented letters and emoji compare as themselves (they were read as Latin-1 bytes, so never matched)."""
    literal = '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
    assert compile_where(f"Name=={literal}")({"Name": name}) is True
    assert compile_where(f"Name=={literal}")({"Name": name + "x"}) is False


def test_unparseable_where_is_a_400_not_a_crash() -> None:
    with pytest.raises(HttpError) as err:
        compile_where('Name=="unterminated')
    assert err.value.status == 400


@pytest.mark.parametrize(("where", "plan"), [
    ('InvoiceNumber=="SO-1" OR InvoiceNumber=="so-2"',
     AnyOf((Eq("invoicenumber", "so-1"), Eq("invoicenumber", "so-2")))),
    ('CreditNoteID==GUID("AB-1")', Eq("creditnoteid", "ab-1")),
    ('Contact.ContactID == GUID("c1") && Status=="DRAFT"',
     AllOf((Eq("contact.contactid", "c1"), Eq("status", "draft")))),
    ('"SO-1" == InvoiceNumber', Eq("invoicenumber", "so-1")),
    ('Status=="DRAFT" AND Total > 5', AllOf((Eq("status", "draft"),))),
    ('Status=="DRAFT" OR Total > 5', None),                     # one side unknown: every row may match
    ('!(Status=="DRAFT")', None),
    ('Name.Contains("x")', None),
    ('Status!="DRAFT"', None),
])
def test_where_yields_the_equalities_an_index_can_answer(where: str, plan: object) -> None:
    assert parse_where(where).plan == plan
