"""Xero's lock dates: `PeriodLockDate` ("stop all users except advisers making changes on and before") and
`EndOfYearLockDate` ("stop all users making changes on and before"), both optional on the organisation.

What is refused, and in Xero's words (sources in docs/EMULATOR.md "Lock dates"):

* a document that would be approved (AUTHORISED) with a date on or before a lock date, and an allocation or a
  payment dated so: "The document date cannot be before the end of year lock date, currently set at
  31-Jul-2013" (xeroizer#92, a raw Xero response; the period variant and both messages together from an
  integrator's Xero error log, "The document date cannot be before the period lock date, currently set at
  30-Nov-2018, …");
* any change (edit, void) of an approved document already dated in the locked period: "The document cannot be
  edited as it is currently dated before the end of year lock date" ([C-LOCK]); the period variant follows
  the same pattern (assumption: no source quotes it).

Drafts and documents awaiting approval are not posted to the ledger, so Xero lets them be created, edited and
deleted inside a locked period and refuses only their approval (Dext and FYI help pages). The connection is
assumed to act for a standard user, not an adviser, so both lock dates bind it."""

from __future__ import annotations

from datetime import date

_LOCKS = (("PeriodLockDate", "period lock date"), ("EndOfYearLockDate", "end of year lock date"))
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
POSTED = frozenset({"AUTHORISED", "PAID"})
KEYS = tuple(key for key, _ in _LOCKS)


def _binding(org: dict, when: date) -> list[tuple[str, date]]:
    """The lock dates (label, date) that `when` falls on or before."""
    locks = [(label, date.fromisoformat(org[key])) for key, label in _LOCKS if org.get(key)]
    return [(label, lock) for label, lock in locks if when <= lock]


def _xero_date(d: date) -> str:
    """Xero's rendering of a lock date in these messages: 31-Jul-2013 (locale-independent)."""
    return f"{d.day:02d}-{_MONTHS[d.month - 1]}-{d.year}"


def dating_errors(org: dict, when: date) -> list[str]:
    """Refusals for posting something dated `when` (approving a document, an allocation, a payment)."""
    return [f"The document date cannot be before the {label}, currently set at {_xero_date(lock)}"
            for label, lock in _binding(org, when)]


def editing_errors(org: dict, doc: dict) -> list[str]:
    """Refusals for changing a document that is already posted and dated in the locked period."""
    if doc["Status"] not in POSTED or not doc.get("Date"):
        return []
    return [f"The document cannot be edited as it is currently dated before the {label}"
            for label, _ in _binding(org, date.fromisoformat(doc["Date"]))]


def parse_lock_date(value: object) -> str | None:
    """A lock date from the admin API: `YYYY-MM-DD` or null (no lock)."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"a lock date is YYYY-MM-DD or null, not {value!r}")
    return date.fromisoformat(value).isoformat()
