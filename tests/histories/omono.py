"""Omono's side of a history: what people do in the order-management system, written straight into its tables
(as Omono itself would, so the change-log triggers fire). Every change is chosen from the database's own state
with the history's random generator, so the same seed makes the same changes.

Each operation returns a one-line description for the trace, or None when it found nothing to act on."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import psycopg

from include.commands import demo_data
from include.omono_xero_sync import state

NAMES = ("Acme Trading Ltd", "Bluebell Foods Limited", "Cobalt Supplies & Co", "Drake Hardware Group",
         "Elmwood Logistics plc", "Fenwick Textiles LLP", "Granite Garden Centre Ltd", "Harbour Hotels Limited",
         "Ivy Stores & Co", "Juniper Wholesale Group", "Café Kestrel Ltd", "Linden Packaging plc")
SALES_ACCOUNTS = ("200", "210", "220", "260", "270")
PURCHASE_ACCOUNTS = ("310", "320", "325", "429")
RIGHT_TAX = demo_data.DEMO_TAX_MAPPINGS
# Xero tax types whose rate differs from Omono's rate for the code: mapping one of these is a user's mistake
# the sync must catch before sending (it would put a wrong amount in Xero).
WRONG_TAX = {("sales", "STD20"): "RROUTPUT", ("sales", "RED5"): "OUTPUT2", ("purchase", "STD20"): "RRINPUT"}
DOC_TABLES = {"dispatch": ("dispatch_invoices", "dispatch_invoice_lines", "invoice_id"),
              "delivery": ("delivery_invoices", "delivery_invoice_lines", "invoice_id"),
              "credit": ("credit_notes", "credit_note_lines", "credit_note_id")}
START = date(2026, 9, 1)


def variant(name: str, rng: random.Random) -> str:
    """The same name as a person may retype it: other case, doubled or trailing spaces."""
    return rng.choice((name.upper(), name.lower(), name.replace(" ", "  ", 1), f" {name} ", name.title()))


class Omono:
    """Changes to one Omono database; `conn` autocommits nothing: each operation is one transaction."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    # -- helpers ------------------------------------------------------------------------------------------
    def _ids(self, sql: str, args: tuple = ()) -> list[int]:
        return [r["id"] for r in self.conn.execute(sql, args)]

    def _pick(self, rng: random.Random, sql: str, args: tuple = ()) -> int | None:
        ids = self._ids(sql + " ORDER BY id", args)
        return rng.choice(ids) if ids else None

    def _next_number(self, table: str, prefix: str, base: int) -> str:
        row = self.conn.execute(f"SELECT max(substring(number from '[0-9]+$')::int) AS n FROM omono.{table} "
                                "WHERE number LIKE %s", (f"{prefix}%",)).fetchone()
        return f"{prefix}{max(row['n'] or base, base) + 1}"

    def _line(self, rng: random.Random, kind: str, n: int) -> tuple:
        code, text = rng.choice(demo_data.PRODUCTS)
        codes = ("SA-WHOLESALE", "SA-RETAIL", "SA-EXPORT") if kind == "sales" else tuple(demo_data.PURCHASE_CODES)
        analysis = "SA-SAMPLES" if kind == "sales" and rng.random() < 0.06 else rng.choice(codes)
        qty = Decimal(rng.choice((1, 2, 3, 5, 7, 12, 24)))
        price = (Decimal(rng.randint(99, 250000)) / 10000).quantize(Decimal("0.0001"))
        tax = rng.choice(("STD20", "STD20", "RED5", "ZERO", "EXEMPT"))
        return n, code, text, qty, price, analysis, tax

    def commit(self) -> None:
        self.conn.commit()

    # -- companies ----------------------------------------------------------------------------------------
    def create_company(self, rng: random.Random) -> str | None:
        taken = [r["name"] for r in self.conn.execute("SELECT name FROM omono.companies ORDER BY id")]
        if taken and rng.random() < 0.15:
            name = variant(rng.choice(taken), rng)          # a second company a person typed the same way
        else:
            name = rng.choice(NAMES)
            if name.lower() in {t.lower() for t in taken}:
                name = f"{name.split()[0]} {rng.choice(demo_data.SECOND)} {rng.randint(2, 99)}"
        customer = rng.random() < 0.7
        number = f"{'C' if customer else 'S'}9{rng.randint(1000, 9999)}" if rng.random() < 0.7 else None
        row = self.conn.execute(
            "INSERT INTO omono.companies (account_number, name, is_customer, is_supplier, email, currency_code, "
            "payment_terms_days) VALUES (%s, %s, %s, %s, %s, 'GBP', 30) ON CONFLICT (account_number) DO NOTHING "
            "RETURNING id", (number, name, customer, not customer or rng.random() < 0.3,
                             f"accounts{rng.randint(1, 999)}@example.com")).fetchone()
        self.commit()
        return f"company #{row['id']} '{name}' ({number})" if row else None

    def rename_company(self, rng: random.Random) -> str | None:
        cid = self._pick(rng, "SELECT id FROM omono.companies WHERE true")
        if cid is None:
            return None
        old = self.conn.execute("SELECT name FROM omono.companies WHERE id = %s", (cid,)).fetchone()["name"]
        new = variant(old, rng) if rng.random() < 0.6 else f"{old.split()[0]} {rng.choice(demo_data.SECOND)} Ltd"
        self.conn.execute("UPDATE omono.companies SET name = %s, updated_at = now() WHERE id = %s", (new, cid))
        self.commit()
        return f"rename company #{cid} '{old}' -> '{new}'"

    def archive_company(self, rng: random.Random) -> str | None:
        cid = self._pick(rng, "SELECT id FROM omono.companies WHERE true")
        if cid is None:
            return None
        row = self.conn.execute("UPDATE omono.companies SET archived = NOT archived WHERE id = %s RETURNING archived",
                                (cid,)).fetchone()
        self.commit()
        return f"{'archive' if row['archived'] else 'un-archive'} company #{cid}"

    def delete_company(self, rng: random.Random) -> str | None:
        cid = self._pick(rng, "SELECT c.id FROM omono.companies c WHERE NOT EXISTS (SELECT 1 FROM "
                              "omono.dispatch_invoices d WHERE d.company_id = c.id) AND NOT EXISTS (SELECT 1 FROM "
                              "omono.delivery_invoices d WHERE d.company_id = c.id) AND NOT EXISTS (SELECT 1 FROM "
                              "omono.credit_notes d WHERE d.company_id = c.id) AND NOT EXISTS (SELECT 1 FROM "
                              "omono.customer_balances b WHERE b.company_id = c.id)")
        if cid is None:
            return None
        self.conn.execute("DELETE FROM omono.companies WHERE id = %s", (cid,))
        self.commit()
        return f"hard-delete company #{cid}"

    # -- documents ----------------------------------------------------------------------------------------
    def _currency(self, rng: random.Random) -> tuple[str, Decimal | None]:
        code = rng.choices(("GBP", "EUR", "USD", "JPY"), weights=(80, 8, 8, 4))[0]
        return code, demo_data.CURRENCIES[code][1]

    def create_dispatch(self, rng: random.Random) -> str | None:
        company = self._pick(rng, "SELECT id FROM omono.companies WHERE is_customer AND NOT archived")
        if company is None:
            return None
        number = self._next_number("dispatch_invoices", "SO-", 1000)
        currency, rate = self._currency(rng)
        issued = START + timedelta(days=rng.randint(0, 60))
        doc = self.conn.execute(
            "INSERT INTO omono.dispatch_invoices (number, company_id, currency_code, exchange_rate, issue_date, "
            "due_date, reference) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (number, company, currency, rate, issued, issued + timedelta(days=30), f"Order {rng.randint(1, 9999)}")
        ).fetchone()["id"]
        for line in (self._line(rng, "sales", n) for n in range(1, rng.randint(1, 3) + 1)):
            discount = Decimal(rng.choice((0, 0, 0, 5, 12.5)))
            self.conn.execute("INSERT INTO omono.dispatch_invoice_lines (invoice_id, line_no, product_code, "
                              "description, quantity, unit_price, discount_percent, analysis_code, tax_code) VALUES "
                              "(%s, %s, %s, %s, %s, %s, %s, %s, %s)", (doc, *line[:5], discount, *line[5:]))
        self.commit()
        return f"dispatch invoice {number} (#{doc}) for company #{company} in {currency}"

    def create_delivery(self, rng: random.Random) -> str | None:
        company = self._pick(rng, "SELECT id FROM omono.companies WHERE is_supplier AND NOT archived")
        if company is None:
            return None
        number = self._next_number("delivery_invoices", "PO-", 2000)
        refs = [r["supplier_invoice_ref"] for r in self.conn.execute(
            "SELECT supplier_invoice_ref FROM omono.delivery_invoices WHERE supplier_invoice_ref IS NOT NULL "
            "ORDER BY id")]
        ref = rng.choice(refs) if refs and rng.random() < 0.04 else (
            f"SUP-INV-{rng.randint(10000, 99999)}" if rng.random() < 0.85 else None)
        currency, rate = self._currency(rng)
        issued = START + timedelta(days=rng.randint(0, 60))
        doc = self.conn.execute(
            "INSERT INTO omono.delivery_invoices (number, supplier_invoice_ref, company_id, currency_code, "
            "exchange_rate, issue_date, due_date) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (number, ref, company, currency, rate, issued, issued + timedelta(days=30))).fetchone()["id"]
        for line in (self._line(rng, "purchase", n) for n in range(1, rng.randint(1, 3) + 1)):
            self.conn.execute("INSERT INTO omono.delivery_invoice_lines (invoice_id, line_no, product_code, "
                              "description, quantity, unit_price, analysis_code, tax_code) VALUES "
                              "(%s, %s, %s, %s, %s, %s, %s, %s)", (doc, *line))
        self.commit()
        return f"delivery invoice {number} ref {ref} (#{doc}) for company #{company} in {currency}"

    def create_credit_note(self, rng: random.Random) -> str | None:
        kind = rng.choice(("sales", "purchase"))
        table = "dispatch_invoices" if kind == "sales" else "delivery_invoices"
        invoice = self._pick(rng, f"SELECT id FROM omono.{table} WHERE status = 'issued'")
        if invoice is None or rng.random() < 0.15:
            flag = "is_customer" if kind == "sales" else "is_supplier"
            company, currency, linked = self._pick(rng, f"SELECT id FROM omono.companies WHERE {flag}"), "GBP", None
            if company is None:
                return None
        else:
            row = self.conn.execute(f"SELECT company_id, currency_code FROM omono.{table} WHERE id = %s",
                                    (invoice,)).fetchone()
            company, currency, linked = row["company_id"], row["currency_code"].strip(), invoice
        number = self._next_number("credit_notes", "CN-", 3000)
        issued = START + timedelta(days=rng.randint(0, 60))
        doc = self.conn.execute(
            "INSERT INTO omono.credit_notes (number, kind, company_id, invoice_id, currency_code, exchange_rate, "
            "issue_date, reference) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) RETURNING id",
            (number, kind, company, linked, currency, demo_data.CURRENCIES[currency][1], issued,
             f"Return {rng.randint(1, 999)}")).fetchone()["id"]
        big = rng.random() < 0.3        # more than the invoice: the rest of the credit stays on the account
        for n in range(1, rng.randint(1, 2) + 1):
            line = self._line(rng, kind, n)
            price = line[4] * (40 if big else 1)
            self.conn.execute("INSERT INTO omono.credit_note_lines (credit_note_id, line_no, product_code, "
                              "description, quantity, unit_price, analysis_code, tax_code) VALUES "
                              "(%s, %s, %s, %s, %s, %s, %s, %s)", (doc, *line[:4], price, *line[5:]))
        self.commit()
        return f"{kind} credit note {number} (#{doc}) for company #{company}, linked to #{linked}"

    def _pick_document(self, rng: random.Random, issued_only: bool = True) -> tuple[str, int] | None:
        kind = rng.choice(tuple(DOC_TABLES))
        where = "status = 'issued'" if issued_only else "true"
        doc = self._pick(rng, f"SELECT id FROM omono.{DOC_TABLES[kind][0]} WHERE {where}")
        return (kind, doc) if doc is not None else None

    def edit_document(self, rng: random.Random) -> str | None:
        found = self._pick_document(rng)
        if found is None:
            return None
        kind, doc = found
        table, lines, key = DOC_TABLES[kind]
        what = rng.choice(("price", "quantity", "add line", "remove line", "date", "currency"))
        if what in {"price", "quantity"}:
            column = "unit_price" if what == "price" else "quantity"
            factor = Decimal(rng.choice(("0.5", "1.1", "2", "3")))
            self.conn.execute(f"UPDATE omono.{lines} SET {column} = round({column} * %s, 4) WHERE {key} = %s AND "
                              f"line_no = (SELECT min(line_no) FROM omono.{lines} WHERE {key} = %s)",
                              (factor, doc, doc))
        elif what == "add line":
            account_kind = "purchase" if kind == "delivery" or self._credit_kind(kind, doc) == "purchase" else "sales"
            n = self.conn.execute(f"SELECT coalesce(max(line_no), 0) + 1 AS n FROM omono.{lines} WHERE {key} = %s",
                                  (doc,)).fetchone()["n"]
            line = self._line(rng, account_kind, n)
            self.conn.execute(f"INSERT INTO omono.{lines} ({key}, line_no, product_code, description, quantity, "
                              "unit_price, analysis_code, tax_code) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                              (doc, *line))
        elif what == "remove line":
            self.conn.execute(f"DELETE FROM omono.{lines} WHERE {key} = %s AND line_no = (SELECT max(line_no) FROM "
                              f"omono.{lines} WHERE {key} = %s) AND (SELECT count(*) FROM omono.{lines} WHERE "
                              f"{key} = %s) > 1", (doc, doc, doc))
        elif what == "date":
            self.conn.execute(f"UPDATE omono.{table} SET issue_date = issue_date + %s WHERE id = %s",
                              (rng.randint(-5, 5), doc))
            if kind != "credit":
                self.conn.execute(f"UPDATE omono.{table} SET due_date = issue_date + 30 WHERE id = %s", (doc,))
        else:
            currency, rate = self._currency(rng)
            self.conn.execute(f"UPDATE omono.{table} SET currency_code = %s, exchange_rate = %s WHERE id = %s",
                              (currency, rate, doc))
        self.conn.execute(f"UPDATE omono.{table} SET updated_at = now() WHERE id = %s", (doc,))
        self.commit()
        return f"edit {kind} #{doc}: {what}"

    def _credit_kind(self, kind: str, doc: int) -> str | None:
        if kind != "credit":
            return None
        return self.conn.execute("SELECT kind FROM omono.credit_notes WHERE id = %s", (doc,)).fetchone()["kind"]

    def cancel_document(self, rng: random.Random) -> str | None:
        found = self._pick_document(rng)
        if found is None:
            return None
        kind, doc = found
        self.conn.execute(f"UPDATE omono.{DOC_TABLES[kind][0]} SET status = 'cancelled', updated_at = now() "
                          "WHERE id = %s", (doc,))
        self.commit()
        return f"cancel {kind} #{doc}"

    def delete_document(self, rng: random.Random) -> str | None:
        found = self._pick_document(rng, issued_only=False)
        if found is None:
            return None
        kind, doc = found
        self.conn.execute(f"DELETE FROM omono.{DOC_TABLES[kind][0]} WHERE id = %s", (doc,))
        self.commit()
        return f"hard-delete {kind} #{doc}"

    def link_credit_note(self, rng: random.Random) -> str | None:
        """Point a credit note at an invoice of the same company (several notes may point at one), at another
        one (a relink), or at none."""
        note = self._pick(rng, "SELECT id FROM omono.credit_notes WHERE status = 'issued'")
        if note is None:
            return None
        row = self.conn.execute("SELECT kind, company_id, invoice_id FROM omono.credit_notes WHERE id = %s",
                                (note,)).fetchone()
        table = "dispatch_invoices" if row["kind"] == "sales" else "delivery_invoices"
        target = self._pick(rng, f"SELECT id FROM omono.{table} WHERE company_id = %s AND status = 'issued'",
                            (row["company_id"],))
        if rng.random() < 0.15:
            target = None
        self.conn.execute("UPDATE omono.credit_notes SET invoice_id = %s, updated_at = now() WHERE id = %s",
                          (target, note))
        self.commit()
        return f"link credit note #{note} (was -> #{row['invoice_id']}) -> #{target}"

    # -- mappings and settings (the integration's own screens) ------------------------------------------------
    def change_mapping(self, rng: random.Random) -> str:
        what = rng.choice(("account", "account", "map samples", "wrong tax", "right tax", "archived account"))
        if what == "account":
            kind, code = rng.choice([k for k in demo_data.DEMO_ACCOUNT_MAPPINGS])
            account = rng.choice(SALES_ACCOUNTS if kind == "sales" else PURCHASE_ACCOUNTS)
            state.put_account_mapping(self.conn, kind, code, account)
            text = f"map {kind} {code} -> {account}"
        elif what == "map samples":
            state.put_account_mapping(self.conn, "sales", "SA-SAMPLES", rng.choice(SALES_ACCOUNTS))
            text = "map sales SA-SAMPLES"
        elif what == "archived account":
            state.put_account_mapping(self.conn, "sales", rng.choice(("SA-RETAIL", "SA-EXPORT")), "250")
            text = "map a sales code to archived account 250"
        elif what == "wrong tax":
            (kind, code), tax = rng.choice(sorted(WRONG_TAX.items()))
            state.put_tax_mapping(self.conn, kind, code, tax)
            text = f"map {kind} tax {code} -> {tax} (a different rate)"
        else:
            for (kind, code), tax in RIGHT_TAX.items():
                state.put_tax_mapping(self.conn, kind, code, tax)
            for (kind, code), account in demo_data.DEMO_ACCOUNT_MAPPINGS.items():
                state.put_account_mapping(self.conn, kind, code, account)
            text = "restore the right tax and account mappings"
        self.commit()
        return text

    def initial_statuses(self, rng: random.Random) -> str:
        """The default Xero status per document type the business chose (mostly approved, some drafts)."""
        chosen = {}
        for entity in ("dispatch_invoice", "delivery_invoice", "sales_credit_note", "purchase_credit_note"):
            chosen[entity] = rng.choices(("AUTHORISED", "SUBMITTED", "DRAFT"), weights=(6, 2, 2))[0]
        if set(chosen.values()) == {"AUTHORISED"}:
            chosen["dispatch_invoice"] = "DRAFT"       # some drafts, for the bookkeeper to approve or delete
        for entity, status in chosen.items():
            state.put_setting(self.conn, f"status.{entity}", status)
        self.commit()
        return "default statuses " + ", ".join(f"{k} {v}" for k, v in chosen.items())

    def change_status_setting(self, rng: random.Random) -> str:
        entity = rng.choice(("dispatch_invoice", "delivery_invoice", "sales_credit_note", "purchase_credit_note"))
        status = rng.choice(("DRAFT", "SUBMITTED", "AUTHORISED", "AUTHORISED"))
        state.put_setting(self.conn, f"status.{entity}", status)
        self.commit()
        return f"default Xero status of {entity} -> {status}"


OPERATIONS: dict[str, Callable[[Omono, random.Random], str | None]] = {
    "create_company": Omono.create_company, "rename_company": Omono.rename_company,
    "archive_company": Omono.archive_company, "delete_company": Omono.delete_company,
    "create_dispatch": Omono.create_dispatch, "create_delivery": Omono.create_delivery,
    "create_credit_note": Omono.create_credit_note, "edit_document": Omono.edit_document,
    "cancel_document": Omono.cancel_document, "delete_document": Omono.delete_document,
    "link_credit_note": Omono.link_credit_note, "change_mapping": Omono.change_mapping,
    "change_status_setting": Omono.change_status_setting,
}


def populate(conn: psycopg.Connection, documents: int, seed: int, bad_share: float) -> None:
    """A business to start from: the demo generator's companies and documents, with the demo mappings."""
    demo_data.generate(conn, documents=documents, seed=seed, bad_share=bad_share)
    demo_data.apply_demo_mappings(conn)
