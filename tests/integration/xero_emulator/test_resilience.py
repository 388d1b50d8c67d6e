"""Idempotency keys, rate limits and injected faults, seen from xero-python over HTTP."""

import threading
from datetime import date

import httpx
import pytest
import urllib3
from xero_python.accounting import Contact, Contacts, Invoice, Invoices, LineItem
from xero_python.exceptions import AccountingBadRequestException, HTTPStatusException, RateLimitException

from tests.support.xero_sdk import NZ_TENANT, UK_TENANT, Sdk, authorization_code_tokens

pytestmark = pytest.mark.integration


def _bill(number: str = "PO-1") -> Invoices:
    return Invoices(invoices=[Invoice(type="ACCPAY", contact=Contact(name="Supplier Ltd"), invoice_number=number,
                                      date=date(2026, 1, 5), status="AUTHORISED", line_items=[
                                          LineItem(description="Stock", quantity=1, unit_amount=50,
                                                   account_code="310", tax_type="INPUT2")])])


def _bills(sdk: Sdk) -> list[Invoice]:
    return sdk.accounting.get_invoices(UK_TENANT, where='Type=="ACCPAY"').invoices


def _raw_get(url: str, sdk: Sdk, path: str = "/Organisation", tenant: str = UK_TENANT) -> httpx.Response:
    token = sdk.tokens["token"]["access_token"]
    return httpx.get(f"{url}/api.xro/2.0{path}", headers={"Authorization": f"Bearer {token}",
                                                          "xero-tenant-id": tenant}, timeout=30)


def _no_hidden_retries(sdk: Sdk) -> None:
    """What the sync does: switch off urllib3's silent retries of GET/PUT inside xero-python."""
    pool = sdk.api_client.rest_client.pool_manager
    pool.connection_pool_kw["retries"] = urllib3.util.Retry(total=0, connect=0, read=0, redirect=0, status=0,
                                                            respect_retry_after_header=False, raise_on_status=False)
    pool.clear()


# -- Idempotency-Key --------------------------------------------------------------------------------------
def test_replayed_idempotency_key_returns_the_first_answer_and_creates_nothing(sdk: Sdk,
                                                                               admin: httpx.Client) -> None:
    first = sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="bill-1")
    again = sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="bill-1")
    assert again.invoices[0].invoice_id == first.invoices[0].invoice_id
    assert len(_bills(sdk)) == 1
    log = admin.get("/requests", params={"tenant": UK_TENANT}).json()["requests"]
    assert [e["replayed"] for e in log if e["method"] == "PUT"] == [False, True]


def test_same_key_with_another_body_is_refused_with_xeros_message(sdk: Sdk) -> None:
    sdk.accounting.create_invoices(UK_TENANT, _bill("PO-1"), summarize_errors=False, idempotency_key="k")
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.create_invoices(UK_TENANT, _bill("PO-2"), summarize_errors=False, idempotency_key="k")
    assert err.value.error_data["Message"] == "Idempotency Key: k is used with a different request."


def test_key_expires_after_six_minutes_and_is_processed_as_new(sdk: Sdk, admin: httpx.Client) -> None:
    sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="k6")
    admin.post("/clock", json={"advance_seconds": 361})
    sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="k6")
    assert len(_bills(sdk)) == 2


def test_idempotency_key_over_128_characters_is_refused(sdk: Sdk) -> None:
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="x" * 129)
    assert err.value.status == 400
    assert _bills(sdk) == []


def test_an_internal_error_is_cached_under_the_key_and_replayed_until_the_key_expires(
        sdk: Sdk, admin: httpx.Client) -> None:
    """Shared notes §6: "the error will be cached and returned when the request is re-run even if the internal
    error is resolved"."""
    _no_hidden_retries(sdk)
    admin.post("/faults", json={"kind": "error", "status": 500, "method": "PUT", "path": "/Invoices", "times": 1})
    for _ in range(2):                                   # the fault is used up after the first call
        with pytest.raises(HTTPStatusException) as err:
            sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="k-500")
        assert err.value.status == 500
    assert _bills(sdk) == []
    log = admin.get("/requests", params={"tenant": UK_TENANT}).json()["requests"]
    assert [(e["fault"], e["replayed"]) for e in log if e["method"] == "PUT"] == [("error 500", False),
                                                                                   (None, True)]
    sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="k-other")
    assert len(_bills(sdk)) == 1                         # another key is processed afresh
    admin.post("/clock", json={"advance_seconds": 361})
    sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False, idempotency_key="k-500")
    assert len(_bills(sdk)) == 2                         # the cached error expired with the key


def test_a_replayed_success_is_byte_identical(emulator_url: str, sdk: Sdk) -> None:
    token = sdk.tokens["token"]["access_token"]
    headers = {"Authorization": f"Bearer {token}", "xero-tenant-id": UK_TENANT, "Idempotency-Key": "same",
               "Content-Type": "application/json"}
    body = b'{"Contacts":[{"Name":"Once Ltd"}]}'
    first, again = (httpx.put(f"{emulator_url}/api.xro/2.0/Contacts", content=body, headers=headers)
                    for _ in range(2))
    assert first.status_code == again.status_code == 200
    assert first.content == again.content
    assert first.headers["Xero-Correlation-Id"] == again.headers["Xero-Correlation-Id"]


# -- a batch refused whole ------------------------------------------------------------------------------------
def test_reject_fault_refuses_every_batch_holding_the_text_so_a_client_can_split_it_out(
        sdk: Sdk, admin: httpx.Client) -> None:
    admin.post("/faults", json={"kind": "reject", "text": "PO-BAD", "path": "/Invoices"}).raise_for_status()
    batch = Invoices(invoices=[*_bill("PO-1").invoices, *_bill("PO-BAD").invoices, *_bill("PO-2").invoices])
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.update_or_create_invoices(UK_TENANT, batch, summarize_errors=False)
    assert err.value.error_data == {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                    "Message": "The request was refused as a whole: it contains 'PO-BAD'."}
    assert _bills(sdk) == []                             # nothing of the batch was processed
    for number in ("PO-1", "PO-2"):
        sdk.accounting.update_or_create_invoices(UK_TENANT, _bill(number), summarize_errors=False)
    with pytest.raises(AccountingBadRequestException):
        sdk.accounting.update_or_create_invoices(UK_TENANT, _bill("PO-BAD"), summarize_errors=False)
    assert sorted(b.invoice_number for b in _bills(sdk)) == ["PO-1", "PO-2"]


def test_reject_fault_can_answer_a_validation_exception_with_a_given_message(sdk: Sdk,
                                                                               admin: httpx.Client) -> None:
    admin.post("/faults", json={"kind": "reject", "text": "Supplier Ltd", "exception": "ValidationException",
                                "message": "A validation exception occurred", "times": 1}).raise_for_status()
    with pytest.raises(AccountingBadRequestException) as err:
        sdk.accounting.update_or_create_invoices(UK_TENANT, _bill(), summarize_errors=False)
    assert (err.value.error_data["Type"], err.value.error_data["Message"]) == ("ValidationException",
                                                                               "A validation exception occurred")
    assert _bills(sdk) == []


# -- rate limits ------------------------------------------------------------------------------------------
def test_every_response_carries_the_remaining_call_counts(emulator_url: str, sdk: Sdk, admin: httpx.Client) -> None:
    admin.put("/limits", json={"mode": "real"})
    first, second = _raw_get(emulator_url, sdk), _raw_get(emulator_url, sdk)
    assert (first.headers["X-MinLimit-Remaining"], second.headers["X-MinLimit-Remaining"]) == ("59", "58")
    assert second.headers["X-DayLimit-Remaining"] == "4998"
    assert second.headers["X-AppMinLimit-Remaining"] == "9998"
    admin.put("/limits", json={"mode": "off"})


def test_sixty_first_call_in_a_minute_gets_429_with_retry_after(emulator_url: str, sdk: Sdk,
                                                                admin: httpx.Client) -> None:
    admin.put("/limits", json={"minute": 60, "day": None, "concurrent": None, "app_minute": None})
    statuses = [_raw_get(emulator_url, sdk).status_code for _ in range(60)]
    refused = _raw_get(emulator_url, sdk)
    assert statuses == [200] * 60
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert _raw_get(emulator_url, sdk, tenant=NZ_TENANT).status_code == 200     # limits are per organisation
    admin.post("/clock", json={"advance_seconds": 60})
    assert _raw_get(emulator_url, sdk).status_code == 200
    admin.put("/limits", json={"mode": "off"})


def test_sdk_raises_rate_limit_exception_naming_the_limit(sdk: Sdk, admin: httpx.Client) -> None:
    admin.put("/limits", json={"minute": 1, "day": None, "concurrent": None, "app_minute": None})
    contacts = Contacts(contacts=[Contact(name="A")])
    sdk.accounting.update_or_create_contacts(UK_TENANT, contacts, summarize_errors=False)
    with pytest.raises(RateLimitException) as err:       # POST: urllib3 does not retry it
        sdk.accounting.update_or_create_contacts(UK_TENANT, contacts, summarize_errors=False)
    assert err.value.rate_limit == "minute"
    admin.put("/limits", json={"mode": "off"})


def test_a_days_budget_is_spent_then_renewed_by_moving_the_clock(emulator_url: str, sdk: Sdk,
                                                                admin: httpx.Client) -> None:
    admin.put("/limits", json={"day": 5000, "minute": None, "concurrent": None, "app_minute": None})
    token = sdk.tokens["token"]["access_token"]
    with httpx.Client(base_url=f"{emulator_url}/api.xro/2.0", headers={
            "Authorization": f"Bearer {token}", "xero-tenant-id": UK_TENANT}) as client:
        statuses = [client.get("/Currencies").status_code for _ in range(5001)]
        assert statuses.count(200) == 5000 and statuses[-1] == 429
        refused = client.get("/Currencies")
        assert refused.headers["X-Rate-Limit-Problem"] == "day"
        assert 80_000 < int(refused.headers["Retry-After"]) <= 86_400
    admin.post("/clock", json={"advance_seconds": 86_400})       # a day later (a new access token is due too)
    fresh = authorization_code_tokens(emulator_url)["access_token"]
    renewed = httpx.get(f"{emulator_url}/api.xro/2.0/Currencies",
                        headers={"Authorization": f"Bearer {fresh}", "xero-tenant-id": UK_TENANT})
    assert renewed.headers["X-DayLimit-Remaining"] == "4999"
    admin.put("/limits", json={"mode": "off"})


def test_sixth_concurrent_call_is_refused(emulator_url: str, sdk: Sdk, admin: httpx.Client) -> None:
    admin.put("/limits", json={"concurrent": 5, "minute": None, "day": None, "app_minute": None})
    admin.post("/faults", json={"kind": "latency", "ms": 1500, "path": "/Organisation"})
    results: list[httpx.Response] = []
    threads = [threading.Thread(target=lambda: results.append(_raw_get(emulator_url, sdk))) for _ in range(7)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.status_code for r in results) == [200] * 5 + [429] * 2
    assert {r.headers.get("X-Rate-Limit-Problem") for r in results if r.status_code == 429} == {"concurrent"}
    admin.put("/limits", json={"mode": "off"})


def test_a_latency_fault_holds_a_call_until_it_is_removed_and_a_reset_meanwhile_refuses_the_call(
        emulator_url: str, sdk: Sdk, admin: httpx.Client) -> None:
    """How a test holds a write in flight exactly as long as it needs; a call held across a reset must not land in
    the organisation the next test starts from."""
    answers: list[httpx.Response] = []

    def held_call() -> threading.Thread:
        before = len(answers)
        call = threading.Thread(target=lambda: answers.append(_raw_get(emulator_url, sdk)))
        call.start()
        call.join(0.5)
        assert call.is_alive() and len(answers) == before          # held
        return call

    fault = admin.post("/faults", json={"kind": "latency", "ms": 120_000, "path": "/Organisation", "times": 1}).json()
    call = held_call()
    admin.delete(f"/faults/{fault['id']}").raise_for_status()
    call.join(30)
    assert [a.status_code for a in answers] == [200]
    admin.post("/faults", json={"kind": "latency", "ms": 120_000, "path": "/Organisation", "times": 1})
    call = held_call()
    admin.post("/reset").raise_for_status()
    call.join(30)
    assert answers[-1].status_code == 503 and "reset" in answers[-1].text


# -- faults ------------------------------------------------------------------------------------------------
def test_injected_503_and_500_reach_the_caller(sdk: Sdk, admin: httpx.Client) -> None:
    admin.post("/faults", json={"kind": "error", "status": 503, "path": "/Contacts", "times": 1})
    with pytest.raises(HTTPStatusException) as err:
        sdk.accounting.update_or_create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="A")]))
    assert err.value.status == 503
    sdk.accounting.update_or_create_contacts(UK_TENANT, Contacts(contacts=[Contact(name="A")]))


def test_offline_organisation_answers_503_while_others_work(emulator_url: str, sdk: Sdk,
                                                            admin: httpx.Client) -> None:
    admin.post("/faults", json={"kind": "offline", "tenant_id": UK_TENANT})
    reply = _raw_get(emulator_url, sdk)
    assert (reply.status_code, reply.text) == (503, "The Organisation is offline")
    assert _raw_get(emulator_url, sdk, tenant=NZ_TENANT).status_code == 200


def test_dropped_connection_after_commit_makes_the_sdks_hidden_put_retry_duplicate_a_bill(
        sdk: Sdk, admin: httpx.Client) -> None:
    """The trap the sync must avoid: urllib3 inside xero-python silently re-sends the PUT."""
    admin.post("/faults", json={"kind": "drop_after_commit", "method": "PUT", "path": "/Invoices", "times": 1})
    sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False)   # returns normally
    assert len(_bills(sdk)) == 2


def test_dropped_connection_with_retries_off_raises_and_leaves_exactly_one_bill(sdk: Sdk,
                                                                                admin: httpx.Client) -> None:
    _no_hidden_retries(sdk)
    admin.post("/faults", json={"kind": "drop_after_commit", "method": "PUT", "path": "/Invoices", "times": 1})
    with pytest.raises(urllib3.exceptions.HTTPError):
        sdk.accounting.create_invoices(UK_TENANT, _bill(), summarize_errors=False)
    assert len(_bills(sdk)) == 1
    log = admin.get("/requests").json()["requests"]
    assert [e["fault"] for e in log if e["method"] == "PUT"] == ["drop_after_commit"]
