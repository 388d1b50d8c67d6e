"""Xero's wire conventions: MS-JSON dates, money rounding and JSON encoding of Decimals."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

ZERO_GUID = "00000000-0000-0000-0000-000000000000"
_MS_DATE = re.compile(r"^/Date\((-?\d+)([+-]\d{4})?\)/$")
_ISO_DATE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d+)?)?)?(Z|[+-]\d{2}:?\d{2})?$")


class BadDate(ValueError):
    """A request date that is neither `YYYY-MM-DD`, ISO 8601 nor `/Date(ms)/`."""


def ms_date(d: date) -> str:
    """A document date as Xero writes it: midnight UTC in milliseconds with an explicit +0000."""
    ms = int(datetime(d.year, d.month, d.day, tzinfo=UTC).timestamp() * 1000)
    return f"/Date({ms}+0000)/"


def ms_datetime(ms: int, offset: bool = True) -> str:
    return f"/Date({ms}+0000)/" if offset else f"/Date({ms})/"


def utc_string(ms: int) -> str:
    """`UpdatedDateUTCString` twin: `2019-03-11 17:58:46+00:00`."""
    return datetime.fromtimestamp(ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def parse_request_date(value: Any) -> date:
    """Dates Xero accepts on requests: `/Date(ms)/` (what xero-python sends), `YYYY-MM-DD` and ISO 8601.

    Timestamps are converted to UTC and truncated to the date, as Xero does."""
    if not isinstance(value, str):
        raise BadDate(f"'{value}' is not a valid date")
    text = value.strip()
    m = _MS_DATE.match(text)
    if m:
        return datetime.fromtimestamp(int(m.group(1)) / 1000, tz=UTC).date()
    m = _ISO_DATE.match(text)
    if not m:
        raise BadDate(f"'{value}' is not a valid date")
    try:
        if m.group(7):
            return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC).date()
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError as exc:
        raise BadDate(f"'{value}' is not a valid date") from exc


def parse_if_modified_since(value: str) -> int:
    """`If-Modified-Since` as xero-python sends it (`datetime.isoformat()`), naive meaning UTC; returns ms."""
    text = value.strip()
    try:
        dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        from email.utils import parsedate_to_datetime

        dt = parsedate_to_datetime(text)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp() * 1000)


def dec(value: Any, default: str | None = None) -> Decimal | None:
    """A request number as Decimal (None when absent); raises ValueError for text that is not a number."""
    if value is None or value == "":
        return Decimal(default) if default is not None else None
    try:
        return Decimal(str(value))
    except InvalidOperation as exc:
        raise ValueError(f"'{value}' is not a number") from exc


def money(value: Decimal, places: int = 2) -> Decimal:
    return value.quantize(Decimal(1).scaleb(-places), rounding=ROUND_HALF_UP)


class _Encoder(json.JSONEncoder):
    def default(self, o: Any) -> Any:
        if isinstance(o, Decimal):
            return float(o)
        return super().default(o)


def dumps(obj: Any) -> bytes:
    return json.dumps(obj, cls=_Encoder, separators=(",", ":")).encode()
