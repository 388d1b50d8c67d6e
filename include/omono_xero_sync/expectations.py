"""Data-quality expectations (Great Expectations 1.x, run directly in the task) that decide which records are
held back, each failure turned into a sentence a bookkeeper understands.

Each expectation carries its message template in `meta["message"]`; the template is filled from the failing
row's key columns, which GX returns per row with `unexpected_index_column_names`. Heavy imports (GX, pandas)
happen inside the functions so that DAG files stay fast to parse."""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from include.omono_xero_sync import entities, money, transform
from include.omono_xero_sync.entities import Entity

EMAIL = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


def _quiet_great_expectations() -> None:
    """Great Expectations tells its own bookkeeping at INFO ("Skipping registering function …", hundreds of lines a
    task, some of its loggers set to INFO themselves); only its warnings belong in a task's log, where the counts a
    person looks for must stay visible."""
    names = {"great_expectations", "great_expectations._docs_decorators",   # set before its import, which logs
             *(n for n in logging.root.manager.loggerDict if n.startswith("great_expectations"))}
    for name in names:
        logger = logging.getLogger(name)
        if logger.level != logging.WARNING:      # each setLevel clears every logger's cache: a tenth of a check
            logger.setLevel(logging.WARNING)


_quiet_great_expectations()      # before anything imports it: its import already logs


PLURAL = {"sales": "sales", "purchase": "purchases"}
MAX_NUMBER = 255        # characters Xero takes in a document number (the SDK refuses more before sending)


@dataclass
class CheckContext:
    """What the checks compare records against: Xero's reference data and the user's mappings."""

    currencies: set[str]
    accounts: dict[tuple[str, str], str]          # (kind, omono code) -> Xero account code
    taxes: dict[tuple[str, str], str]              # (kind, omono tax code) -> Xero tax type
    active_accounts: set[str]                      # upper-case codes usable on documents
    active_tax_types: set[str]
    contact_problems: dict[int, str] = field(default_factory=dict)   # company id -> why it is not in Xero
    tax_rates: dict[str, float] = field(default_factory=dict)        # Xero tax type -> its EffectiveRate
    lock_date: date | None = None                                    # Xero refuses documents dated on or before
    lock_label: str = ""
    today: date = field(default_factory=date.today)


def _suite(name: str, expectations: list[Any]) -> Any:
    _quiet_great_expectations()
    import great_expectations as gx

    _quiet_great_expectations()
    return gx.ExpectationSuite(name=name, expectations=expectations)


@functools.cache
def _pandas_source() -> Any:
    """One ephemeral GX context per process, made once: GX writes its project configuration out as YAML at each
    step of making one, which cost a fifth of every check when a context was made per page."""
    import great_expectations as gx
    from great_expectations.data_context.types.base import ProgressBarsConfig

    context = gx.get_context(mode="ephemeral")
    _quiet_great_expectations()
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    return context.data_sources.add_pandas("omono")


@functools.cache
def _batch_definition(suite_name: str) -> Any:
    """A dataframe asset per suite, made once; each page's rows come as the batch's dataframe parameter."""
    return _pandas_source().add_dataframe_asset(suite_name).add_batch_definition_whole_dataframe("run")


def _validate(rows: list[dict], suite: Any, key_columns: list[str]) -> dict[int, list[str]]:
    """Run one suite over rows; returns row_key -> messages in suite order."""
    if not rows:
        return {}
    import pandas as pd

    batch = _batch_definition(suite.name).get_batch(batch_parameters={"dataframe": pd.DataFrame(rows)})
    # GX keeps computed metrics by batch id and falls back on them when one is missing, assuming a batch's data
    # never changes; every page of a suite has the same batch id, so one page's metrics must go before the next.
    _pandas_source().get_execution_engine()._metric_cache.clear()
    result = batch.validate(suite, result_format={"result_format": "COMPLETE",
                                                  "unexpected_index_column_names": key_columns})
    order = {e.meta["message"]: i for i, e in enumerate(suite.expectations)}
    found: dict[int, list[tuple[int, str]]] = {}
    for outcome in result.results:
        template = outcome.expectation_config.meta["message"]
        for hit in outcome.result.get("unexpected_index_list") or []:
            values = {k: _plain(v) for k, v in hit.items()}
            found.setdefault(int(values["row_key"]), []).append((order[template], template.format(**values)))
    return {key: list(dict.fromkeys(m for _, m in sorted(msgs))) for key, msgs in found.items()}


def _plain(value: Any) -> Any:
    if value is None:
        return "(none)"
    if hasattr(value, "item"):            # numpy scalars
        value = value.item()
    if isinstance(value, float):
        return "(none)" if value != value else (int(value) if value.is_integer() else value)
    if hasattr(value, "date"):            # pandas Timestamp
        return value.date().isoformat()
    return value


def check_contacts(records: list[dict], ctx: CheckContext) -> dict[int, list[str]]:
    import great_expectations.expectations as gxe

    rows = [{"row_key": r["id"], "name": (r.get("name") or "").strip() or None,
             "label": transform.shorten(r.get("name")) or f"company #{r['id']}",
             "account_number": r.get("account_number"), "email": r.get("email"),
             "currency_code": (r.get("currency_code") or "").strip() or None} for r in records]
    suite = _suite("companies", [
        gxe.ExpectColumnValuesToNotBeNull(column="name", meta={
            "message": "Company #{row_key} has no name; Xero needs one. Enter the company name in Omono."}),
        gxe.ExpectColumnValueLengthsToBeBetween(column="name", max_value=255, meta={
            "message": "The name of company '{label}' is longer than Xero's 255 characters. Shorten it in Omono."}),
        gxe.ExpectColumnValueLengthsToBeBetween(column="account_number", max_value=50, meta={
            "message": "The account number of '{label}' is longer than Xero's 50 characters. Shorten it in Omono."}),
        gxe.ExpectColumnValuesToMatchRegex(column="email", regex=EMAIL, meta={
            "message": "The e-mail address '{email}' of '{label}' is not valid. Correct it in Omono."}),
        gxe.ExpectColumnValuesToBeInSet(column="currency_code", value_set=sorted(ctx.currencies), meta={
            "message": "'{label}' uses currency {currency_code}, which is not enabled in the Xero organisation. "
                       "Add {currency_code} in Xero (Settings > Currencies)."}),
    ])
    return _validate(rows, suite, ["row_key", "label", "email", "currency_code"])


def check_documents(entity: Entity, records: list[dict], ctx: CheckContext) -> dict[int, list[str]]:
    import great_expectations.expectations as gxe
    import pandas as pd

    noun = entity.noun.lower()
    kind = entity.account_kind
    docs, lines = [], []
    for r in records:
        currency = r["currency_code"].strip()
        total = money.document_totals(r["lines"]).total
        in_xero = transform.number_in_xero(entity, r)
        docs.append({"row_key": r["id"], "number": r["number"], "currency_code": currency,
                     "number_label": transform.shorten(r["number"]), "number_in_xero": in_xero,
                     "number_in_xero_label": transform.shorten(in_xero),
                     "company": transform.shorten(r["company_name"]),
                     "contact_ready": r["company_id"] not in ctx.contact_problems,
                     "contact_problem": transform.waits_for_company(
                         r["number"], r["company_name"], ctx.contact_problems.get(r["company_id"], "")),
                     "line_count": len(r["lines"]),
                     "total": float(total), "total_text": money.text(total, currency),
                     "rate_ok": r.get("exchange_rate") is None or float(r["exchange_rate"]) > 0,
                     "exchange_rate": r.get("exchange_rate"),
                     "issue_date": pd.Timestamp(r["issue_date"]),
                     "due_date": pd.Timestamp(r["due_date"]) if r.get("due_date") else None,
                     "cancelled": r.get("status") == "cancelled"})
        for li in r["lines"]:
            lines.append(_line_row(r, li, kind, ctx))
    earliest, latest = pd.Timestamp(date(2000, 1, 1)), pd.Timestamp(ctx.today + timedelta(days=366))
    doc_expectations = [
        gxe.ExpectColumnValueLengthsToBeBetween(column="number_in_xero", max_value=MAX_NUMBER, meta={
            "message": f"{{number_label}}: its number in Xero, '{{number_in_xero_label}}', is longer than Xero's "
                       f"{MAX_NUMBER} characters. Shorten it in Omono."}),
        gxe.ExpectColumnValuesToBeInSet(column="contact_ready", value_set=[True], meta={
            "message": "{contact_problem}"}),
        gxe.ExpectColumnValuesToBeInSet(column="currency_code", value_set=sorted(ctx.currencies), meta={
            "message": "{number} is in {currency_code}, which is not enabled in the Xero organisation. Add "
                       "{currency_code} in Xero (Settings > Currencies)."}),
        gxe.ExpectColumnValuesToBeBetween(column="line_count", min_value=1, meta={
            "message": f"{{number}} has no lines; Xero needs at least one. Add the lines to the {noun} in Omono."}),
        gxe.ExpectColumnValuesToBeBetween(column="total", min_value=0, meta={
            "message": "{number} comes to {total_text} in all; Xero accepts negative lines (a discount) but not a "
                       "negative document. Use a credit note instead."}),
        gxe.ExpectColumnValuesToBeInSet(column="rate_ok", value_set=[True], meta={
            "message": "{number} has the exchange rate {exchange_rate}; a rate must be more than zero. Correct it in "
                       "Omono (or leave it empty for Xero's day rate)."}),
        gxe.ExpectColumnValuesToBeBetween(column="issue_date", min_value=earliest, max_value=latest, meta={
            "message": "{number} is dated {issue_date}, which looks wrong. Correct the date in Omono."}),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="due_date", column_B="issue_date", or_equal=True, ignore_row_if="either_value_is_missing",
            meta={"message": "{number} is due on {due_date}, before its issue date {issue_date}. Correct the due "
                             "date in Omono."}),
    ]
    line_suite = _suite(f"{entity.name}_lines", [
        gxe.ExpectColumnValuesToNotBeNull(column="analysis_code", meta={
            "message": f"{{number}} line {{line_no}} has no {kind} analysis code. Set one in Omono."}),
        gxe.ExpectColumnValuesToNotBeNull(column="account_code", meta={
            "message": f"{{number}} line {{line_no}}: {kind} analysis code '{{analysis_code}}' is not mapped to a "
                       "Xero account. Map it on the Mappings page; the document goes on the next run."}),
        gxe.ExpectColumnValuesToBeInSet(column="account_usable", value_set=[True], meta={
            "message": f"{{number}} line {{line_no}}: {kind} analysis code '{{analysis_code}}' is mapped to Xero "
                       "account '{account_code}', which does not exist or is archived in Xero. Fix the mapping "
                       "or the chart of accounts."}),
        gxe.ExpectColumnValuesToNotBeNull(column="tax_type", meta={
            "message": f"{{number}} line {{line_no}}: tax rate '{{tax_code}}' is not mapped to a Xero tax rate for "
                       f"{PLURAL[kind]}. Map it on the Mappings page."}),
        gxe.ExpectColumnValuesToBeInSet(column="tax_usable", value_set=[True], meta={
            "message": "{number} line {line_no}: tax rate '{tax_code}' is mapped to Xero tax rate '{tax_type}', "
                       "which is not active in Xero. Fix the mapping."}),
        gxe.ExpectColumnValuesToBeBetween(column="quantity", min_value=0, strict_min=True, meta={
            "message": "{number} line {line_no} has quantity {quantity}; it must be more than zero."}),
        gxe.ExpectColumnValuesToBeInSet(column="tax_code_known", value_set=[True], meta={
            "message": "{number} line {line_no}: tax rate '{tax_code}' is not in Omono's tax rates, so what Xero "
                       "would charge cannot be checked. Add it to Omono's tax rates (or correct the line)."}),
        gxe.ExpectColumnValuesToBeInSet(column="tax_rate_agrees", value_set=[True], meta={
            "message": "{number} line {line_no}: Omono's tax rate '{tax_code}' is {omono_rate}%, but the Xero tax "
                       "rate it is mapped to ('{tax_type}') is {xero_rate}%, so Xero would compute other totals. Map "
                       "it to a Xero tax rate of {omono_rate}% on the Mappings page."}),
        gxe.ExpectColumnValuesToBeBetween(column="discount", min_value=0, max_value=100, meta={
            "message": "{number} line {line_no} has a discount of {discount}%; it must be between 0 and 100."}),
    ])
    active = [d for d in docs if not d["cancelled"]]    # a cancellation only needs to reach Xero
    if ctx.lock_date:
        doc_expectations.append(gxe.ExpectColumnValuesToBeBetween(
            column="issue_date", min_value=pd.Timestamp(ctx.lock_date + timedelta(days=1)), meta={
                "message": f"{{number}} is dated {{issue_date}}, on or before Xero's {ctx.lock_label}. Xero refuses "
                           "documents in a locked period: move the lock date in Xero (Settings > Advanced > "
                           "Financial settings) or date the document later in Omono; it goes on the next run."}))
    doc_suite = _suite(f"{entity.name}_documents", doc_expectations)
    found = _validate(active, doc_suite, ["row_key", "number", "number_label", "number_in_xero_label", "company",
                                          "contact_problem", "currency_code", "total_text", "issue_date", "due_date",
                                          "exchange_rate"])
    active_keys = {d["row_key"] for d in active}
    for key, messages in _validate([li for li in lines if li["row_key"] in active_keys], line_suite,
                                   ["row_key", "number", "line_no", "analysis_code", "account_code", "tax_code",
                                    "tax_type", "quantity", "discount", "omono_rate", "xero_rate"]).items():
        found.setdefault(key, []).extend(messages)
    return found


def _line_row(doc: dict, li: dict, kind: str | None, ctx: CheckContext) -> dict:
    code = li.get("analysis_code")
    account = ctx.accounts.get((kind or "", code or ""))
    tax_type = ctx.taxes.get((kind or "", li.get("tax_code") or ""))
    omono_rate = _rate(li.get("tax_rate"))
    xero_rate = _rate(ctx.tax_rates.get(tax_type)) if tax_type in ctx.tax_rates else None
    return {"row_key": doc["id"], "number": doc["number"], "line_no": li["line_no"], "analysis_code": code,
            "account_code": account, "account_usable": account is None or account.upper() in ctx.active_accounts,
            "tax_code": li.get("tax_code"), "tax_type": tax_type,
            "tax_usable": tax_type is None or tax_type in ctx.active_tax_types,
            "omono_rate": omono_rate, "xero_rate": xero_rate,
            "tax_rate_agrees": xero_rate is None or omono_rate is None or xero_rate == omono_rate,
            "tax_code_known": not li.get("tax_code") or omono_rate is not None,
            "quantity": float(li["quantity"]), "discount": float(li.get("discount_percent") or 0)}


def _rate(value: Any) -> str | None:
    """A tax rate as a person writes it (20, 12.5), for comparing and for messages."""
    if value is None:
        return None
    return format(Decimal(str(value)).normalize(), "f")


def check(entity: Entity, records: list[dict], ctx: CheckContext) -> dict[int, list[str]]:
    if entity is entities.CONTACT:
        return check_contacts(records, ctx)
    return check_documents(entity, records, ctx)
