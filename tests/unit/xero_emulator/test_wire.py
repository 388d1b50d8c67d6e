from datetime import date
from decimal import Decimal

import pytest

from include.xero_emulator.wire import BadDate, money, ms_date, parse_if_modified_since, parse_request_date

pytestmark = pytest.mark.unit


def test_document_dates_are_written_as_ms_json_at_utc_midnight() -> None:
    assert ms_date(date(2024, 1, 5)) == "/Date(1704412800000+0000)/"


@pytest.mark.parametrize("text", ["/Date(1704412800000)/", "/Date(1704412800000+0000)/", "2024-01-05",
                                  "2024-01-05T00:00:00", "2024-01-05T10:00:00+00:00"])
def test_request_dates_in_every_form_xero_accepts(text: str) -> None:
    assert parse_request_date(text) == date(2024, 1, 5)


def test_timestamps_with_an_offset_are_truncated_in_utc_as_xero_does() -> None:
    # Midnight in Auckland is still the previous day in UTC.
    assert parse_request_date("2024-02-05T00:00:00+13:00") == date(2024, 2, 4)


def test_a_bad_date_is_refused() -> None:
    with pytest.raises(BadDate):
        parse_request_date("05/01/2024")


def test_if_modified_since_naive_means_utc() -> None:
    assert parse_if_modified_since("2024-01-02T03:04:05") == 1704164645000


def test_money_rounds_half_up_to_the_places_asked() -> None:
    assert money(Decimal("2.345")) == Decimal("2.35")
    assert money(Decimal("0.16485"), 4) == Decimal("0.1649")
