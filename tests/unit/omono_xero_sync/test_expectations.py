from datetime import date

import pytest

from include.omono_xero_sync import entities, expectations

pytestmark = pytest.mark.unit


def _ctx(**kw: object) -> expectations.CheckContext:
    base = {"currencies": {"GBP", "EUR"}, "accounts": {("sales", "SA-W"): "200"},
            "taxes": {("sales", "STD"): "OUTPUT2"}, "active_accounts": {"200"}, "active_tax_types": {"OUTPUT2"},
            "today": date(2026, 11, 1)}
    return expectations.CheckContext(**{**base, **kw})


def _doc(doc_id: int, **kw: object) -> dict:
    line = {"line_no": 1, "description": "Widget", "quantity": "1", "unit_price": "10", "discount_percent": "0",
            "analysis_code": "SA-W", "tax_code": "STD", "tax_rate": "20"}
    doc = {"id": doc_id, "number": f"SO-{doc_id}", "company_id": 1, "company_name": "Acme", "currency_code": "GBP",
           "issue_date": "2026-09-01", "due_date": "2026-10-01", "status": "issued", "lines": [line]}
    lines = kw.pop("lines", None)
    doc.update(kw)
    if lines is not None:
        doc["lines"] = [{**line, **li} for li in lines]
    return doc


def test_good_documents_pass_and_each_bad_one_gets_a_plain_reason() -> None:
    docs = [_doc(1), _doc(2, currency_code="JPY"), _doc(3, due_date="2026-08-01"),
            _doc(4, lines=[{"analysis_code": "SA-NEW"}]), _doc(5, lines=[{"quantity": "0"}]),
            _doc(6, lines=[{"tax_code": "OLD"}]), _doc(7, lines=[])]
    found = expectations.check(entities.DISPATCH_INVOICE, docs, _ctx())
    assert 1 not in found
    assert found[2] == ["SO-2 is in JPY, which is not enabled in the Xero organisation. Add JPY in Xero "
                        "(Settings > Currencies)."]
    assert found[3] == ["SO-3 is due on 2026-08-01, before its issue date 2026-09-01. Correct the due date in Omono."]
    assert found[4] == ["SO-4 line 1: sales analysis code 'SA-NEW' is not mapped to a Xero account. Map it on the "
                        "Mappings page; the document goes on the next run."]
    assert found[5] == ["SO-5 line 1 has quantity 0; it must be more than zero."]
    assert found[6] == ["SO-6 line 1: tax rate 'OLD' is not mapped to a Xero tax rate for sales. Map it on the "
                        "Mappings page."]
    assert found[7] == ["SO-7 has no lines; Xero needs at least one. Add the lines to the dispatch invoice in Omono."]


def test_a_code_mapped_to_an_account_xero_lacks_is_held() -> None:
    found = expectations.check(entities.DISPATCH_INVOICE, [_doc(1)], _ctx(active_accounts={"210"}))
    assert found[1] == ["SO-1 line 1: sales analysis code 'SA-W' is mapped to Xero account '200', which does not "
                        "exist or is archived in Xero. Fix the mapping or the chart of accounts."]


def test_document_waits_for_a_company_that_is_not_in_xero() -> None:
    found = expectations.check(entities.DISPATCH_INVOICE, [_doc(1)], _ctx(contact_problems={1: "its e-mail is bad"}))
    assert found[1] == ["SO-1 waits for its company 'Acme', which is not in Xero yet: its e-mail is bad"]


def test_a_cancelled_document_is_not_held_for_its_content() -> None:
    found = expectations.check(entities.DISPATCH_INVOICE, [_doc(1, status="cancelled", currency_code="JPY")], _ctx())
    assert found == {}


def test_companies_with_bad_email_or_currency_are_held() -> None:
    companies = [{"id": 1, "name": "Good", "email": "a@b.example", "currency_code": "GBP", "account_number": "C1"},
                 {"id": 2, "name": "Typo", "email": "a@@b.example", "currency_code": "GBP", "account_number": "C2"},
                 {"id": 3, "name": "Yen", "email": None, "currency_code": "JPY", "account_number": "C3"}]
    found = expectations.check(entities.CONTACT, companies, _ctx())
    assert 1 not in found
    assert found[2] == ["The e-mail address 'a@@b.example' of 'Typo' is not valid. Correct it in Omono."]
    assert found[3] == ["'Yen' uses currency JPY, which is not enabled in the Xero organisation. Add JPY in Xero "
                        "(Settings > Currencies)."]


def test_great_expectations_bookkeeping_stays_out_of_the_task_log(caplog: pytest.LogCaptureFixture) -> None:
    import logging

    with caplog.at_level(logging.INFO):
        expectations.check(entities.DISPATCH_INVOICE, [_doc(1)], _ctx())
    assert not [r for r in caplog.records if r.name.startswith("great_expectations") and r.levelno < logging.WARNING]


def test_pages_checked_one_after_another_share_one_gx_context_and_each_is_judged_on_its_own_rows(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # A context made per page cost a fifth of every check (GX writes its configuration out as YAML while making
    # one); reusing it must never let one page's rows answer for the next page's.
    import great_expectations as gx

    made = []
    real = gx.get_context
    monkeypatch.setattr(gx, "get_context", lambda **kw: made.append(kw) or real(**kw))
    expectations._pandas_source.cache_clear()                       # made afresh in this test
    expectations._batch_definition.cache_clear()
    from great_expectations.datasource.fluent.interfaces import Batch

    cached_before = []                 # GX's metrics still held from an earlier page when a page is validated
    validate = Batch.validate
    monkeypatch.setattr(Batch, "validate", lambda batch, *a, **kw: cached_before.append(
        len(batch.data.execution_engine._metric_cache)) or validate(batch, *a, **kw))
    first = expectations.check(entities.DISPATCH_INVOICE, [_doc(1, currency_code="JPY"), _doc(2)], _ctx())
    second = expectations.check(entities.DISPATCH_INVOICE, [_doc(3), _doc(4, lines=[{"quantity": "0"}])], _ctx())
    third = expectations.check(entities.DISPATCH_INVOICE, [_doc(5)], _ctx())
    assert sorted(first) == [1] and sorted(second) == [4] and third == {}
    assert len(made) == 1
    assert cached_before == [0] * 6
