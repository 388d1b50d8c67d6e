"""The conformance checker must catch what breaks the spec, or the conformance test proves nothing."""

import pytest

from tests.support.conformance import SPEC_PATH, violations

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def _needs_spec() -> None:
    if not SPEC_PATH.exists():
        pytest.skip(f"Xero's OpenAPI spec not found at {SPEC_PATH} (set XERO_OPENAPI_SPEC)")


def _entry(**kw: object) -> dict:
    return {"method": "GET", "path": "/api.xro/2.0/Invoices", "query": "page=1", "status": 200,
            "request_headers": {"xero-tenant-id": "t"}, "request_body": None,
            "response_content_type": "application/json; charset=utf-8", "response_body": '{"Invoices": []}', **kw}


def test_a_conforming_exchange_passes() -> None:
    assert violations(_entry()) == []


def test_a_response_with_an_unknown_status_value_is_caught() -> None:
    found = violations(_entry(response_body='{"Invoices": [{"Status": "ARCHIVED"}]}'))
    assert len(found) == 1 and "'ARCHIVED' is not one of" in found[0]


def test_a_request_with_an_unknown_invoice_type_is_caught() -> None:
    found = violations(_entry(method="PUT", query="", request_body='{"Invoices": [{"Type": "BOGUS"}]}'))
    assert any("'BOGUS' is not one of" in f for f in found)


def test_a_read_only_property_other_than_the_sdks_has_attachments_is_caught() -> None:
    body = '{"Invoices": [{"Type": "ACCREC", "HasAttachments": false, "UpdatedDateUTCString": "x"}]}'
    found = violations(_entry(method="PUT", query="", request_body=body))
    assert any("read-only" in f for f in found)
