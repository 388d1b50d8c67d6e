"""Xero's arithmetic, so Omono's documents can be checked against what Xero will compute: each line's amount
rounded to 2 dp (unit prices keep 4 dp), tax computed and rounded per line, then summed (developer.xero.com,
"Rounding in Xero": lines 25.06/25.61/25.63 at 15% give tax 3.76+3.84+3.84 = 11.44, not 11.45 on the total).
Amounts are Decimal throughout; money is printed as money (30.00 GBP), never as a float."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

CENT = Decimal("0.01")


def cents(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def text(amount: Any, currency: str | None = None) -> str:
    """`30.00 GBP`: two decimals, thousands separated, the currency after."""
    formatted = f"{cents(Decimal(str(amount))):,.2f}"
    return f"{formatted} {currency}" if currency else formatted


@dataclass(frozen=True)
class Totals:
    sub_total: Decimal
    total_tax: Decimal

    @property
    def total(self) -> Decimal:
        return self.sub_total + self.total_tax

    def describe(self, currency: str) -> str:
        return f"{text(self.sub_total)} + tax {text(self.total_tax)} = {text(self.total, currency)}"


def line_amount(quantity: Any, unit_price: Any, discount_percent: Any = 0) -> Decimal:
    gross = Decimal(str(quantity)) * Decimal(str(unit_price))
    discount = Decimal(str(discount_percent or 0))
    return cents(gross * (100 - discount) / 100) if discount else cents(gross)


def document_totals(lines: list[dict]) -> Totals:
    """Totals of a tax-exclusive Omono document as Xero computes them, at Omono's own tax rates (each staged line
    carries its `tax_rate`; a line without a known rate counts as untaxed)."""
    sub_total = tax = Decimal(0)
    for line in lines:
        amount = line_amount(line["quantity"], line["unit_price"], line.get("discount_percent"))
        sub_total += amount
        tax += cents(amount * Decimal(str(line.get("tax_rate") or 0)) / 100)
    return Totals(sub_total, tax)


def xero_totals(doc: Any) -> Totals:
    """SubTotal and TotalTax of a document Xero answered with (an SDK model)."""
    return Totals(Decimal(str(doc.sub_total or 0)), Decimal(str(doc.total_tax or 0)))
