"""Customers' balances for Omono's dispatch credit-limit check, read from Xero (owner of omono.customer_balances).

Xero's `Contact.Balances` are "raw … not converted to base currency" (the spec's Balances schema) and the spec
shows them only on a single contact, so reading them costs a call per customer and mixes currencies. Instead the
open documents are read in pages of 1,000 (summary fields: AmountDue, RemainingCredit, DueDate, CurrencyRate,
all documented on list reads): approved sales invoices and sales credit notes. Each amount is converted to the
base currency with the document's own rate (Xero's CurrencyRate is units of the document's currency per unit of
base), so a customer invoiced in EUR and GBP gets one balance, in the base currency, labelled as such. The cost
follows the open documents, ceil(open / 1,000) calls each, not the number of customers."""

from __future__ import annotations

from collections import defaultdict
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg

from include.omono_xero_sync import matching, money

ZERO = (Decimal(0), Decimal(0))


def _base(amount: Any, rate: Any) -> Decimal:
    rate = Decimal(str(rate or 1)) or Decimal(1)
    return Decimal(str(amount or 0)) / rate


def read(client: Any, today: date) -> dict[str, tuple[Decimal, Decimal]]:
    """Xero contact id -> (outstanding, overdue) in the base currency."""
    outstanding: dict[str, Decimal] = defaultdict(Decimal)
    overdue: dict[str, Decimal] = defaultdict(Decimal)
    for inv in matching.paged(lambda **p: client.read("get_invoices", **p), "invoices", where='Type=="ACCREC"',
                              statuses=["AUTHORISED"], page_size=matching.PAGE_SIZE, summary_only=True):
        due = _base(inv.amount_due, inv.currency_rate)
        outstanding[str(inv.contact.contact_id)] += due
        if inv.due_date and inv.due_date < today:
            overdue[str(inv.contact.contact_id)] += due
    for note in matching.paged(lambda **p: client.read("get_credit_notes", **p), "credit_notes",
                               where='Type=="ACCRECCREDIT" AND Status=="AUTHORISED"', page_size=matching.PAGE_SIZE):
        outstanding[str(note.contact.contact_id)] -= _base(note.remaining_credit, note.currency_rate)
    return {c: (money.cents(outstanding[c]), money.cents(overdue[c])) for c in outstanding}


def store(omono: psycopg.Connection, rows: list[tuple[int, Decimal, Decimal, str]]) -> None:
    """(company id, outstanding, overdue, currency) per customer, in one statement; the caller commits."""
    if rows:
        from psycopg.types.json import Jsonb

        omono.execute(
            "INSERT INTO omono.customer_balances (company_id, outstanding, overdue, currency, read_at) "
            "SELECT (r->>0)::bigint, (r->>1)::numeric, (r->>2)::numeric, r->>3, now() FROM jsonb_array_elements(%s) r "
            "ON CONFLICT (company_id) DO UPDATE SET outstanding = EXCLUDED.outstanding, overdue = EXCLUDED.overdue, "
            "currency = EXCLUDED.currency, read_at = EXCLUDED.read_at",
            (Jsonb([[i, str(o), str(d), c] for i, o, d, c in rows]),))
    omono.commit()
