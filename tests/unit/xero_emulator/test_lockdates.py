"""Lock-date refusals in Xero's words (docs/EMULATOR.md "Lock dates" gives the sources)."""

from datetime import date

import pytest

from include.xero_emulator.lockdates import dating_errors, editing_errors, parse_lock_date

pytestmark = pytest.mark.unit

BOTH = {"PeriodLockDate": "2026-04-30", "EndOfYearLockDate": "2026-03-31"}


def test_a_date_on_or_before_each_lock_date_names_that_lock_with_the_date_as_xero_writes_it() -> None:
    assert dating_errors(BOTH, date(2026, 3, 31)) == [
        "The document date cannot be before the period lock date, currently set at 30-Apr-2026",
        "The document date cannot be before the end of year lock date, currently set at 31-Mar-2026"]
    assert dating_errors(BOTH, date(2026, 4, 30)) == [
        "The document date cannot be before the period lock date, currently set at 30-Apr-2026"]
    assert dating_errors(BOTH, date(2026, 5, 1)) == []
    assert dating_errors({}, date(2000, 1, 1)) == []


def test_only_posted_documents_in_the_locked_period_refuse_edits() -> None:
    doc = {"Status": "AUTHORISED", "Date": "2026-03-01"}
    assert editing_errors({"EndOfYearLockDate": "2026-03-31"}, doc) == [
        "The document cannot be edited as it is currently dated before the end of year lock date"]
    assert editing_errors({"PeriodLockDate": "2026-03-31"}, {**doc, "Status": "PAID"}) == [
        "The document cannot be edited as it is currently dated before the period lock date"]
    assert editing_errors(BOTH, {**doc, "Status": "DRAFT"}) == []


@pytest.mark.parametrize(("value", "stored"), [("2026-03-31", "2026-03-31"), (None, None)])
def test_lock_dates_are_set_as_iso_dates_or_null(value: str | None, stored: str | None) -> None:
    assert parse_lock_date(value) == stored


@pytest.mark.parametrize("value", ["31/03/2026", 20260331, "2026-02-30"])
def test_a_malformed_lock_date_is_refused(value: object) -> None:
    with pytest.raises(ValueError):
        parse_lock_date(value)
