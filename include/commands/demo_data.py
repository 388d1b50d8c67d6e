"""Deterministic Omono demo data: a wholesaler's companies, dispatch and delivery invoices and credit notes,
with a realistic share of records Xero cannot take as they are (an unmapped analysis code, a currency the Xero
organisation has not enabled, a due date before the issue date, a malformed e-mail address, an empty line).

`generate(conn, documents=60)` for the demo; up to a million documents for benchmarks (rows go in with COPY)."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal

import psycopg

from include.omono_xero_sync import state

FIRST = ("Acme", "Bluebell", "Cobalt", "Drake", "Elmwood", "Fenwick", "Granite", "Harbour", "Ivy", "Juniper",
         "Kestrel", "Linden", "Marlow", "Northgate", "Oakridge", "Pemberton", "Quayside", "Redfern", "Sterling",
         "Thornbury", "Upland", "Vale", "Westbrook", "Yarrow")
SECOND = ("Trading", "Foods", "Supplies", "Hardware", "Logistics", "Textiles", "Garden Centre", "Hotels",
          "Stores", "Wholesale", "Packaging", "Components", "Beverages", "Pharmacy")
SUFFIX = ("Ltd", "Limited", "& Co", "Group", "plc", "LLP")
CITIES = (("London", "EC1A 1BB"), ("Leeds", "LS1 4AP"), ("Bristol", "BS1 5TR"), ("Glasgow", "G1 1XQ"),
          ("Cardiff", "CF10 1EP"), ("Norwich", "NR1 3JU"), ("York", "YO1 7HH"))
PRODUCTS = (("WID-100", "Widget, standard"), ("WID-200", "Widget, heavy duty"), ("BOLT-M8", "Hex bolt M8 (box)"),
            ("TAPE-48", "Packing tape 48mm"), ("CRATE-L", "Plastic crate, large"), ("GLV-NIT", "Nitrile gloves"),
            ("OIL-5L", "Machine oil 5 l"), ("LBL-A4", "Labels A4 (pack)"))
SALES_CODES = {"SA-WHOLESALE": "Wholesale sales", "SA-RETAIL": "Retail sales", "SA-EXPORT": "Export sales",
               "SA-SAMPLES": "Free samples (not mapped on purpose)"}
PURCHASE_CODES = {"PA-STOCK": "Stock purchases", "PA-FREIGHT": "Freight in", "PA-PACKAGING": "Packaging"}
TAX_RATES = {"STD20": ("Standard 20%", Decimal("20")), "RED5": ("Reduced 5%", Decimal("5")),
             "ZERO": ("Zero rated", Decimal("0")), "EXEMPT": ("Exempt", Decimal("0"))}
CURRENCIES = {"GBP": ("British Pound", None), "EUR": ("Euro", Decimal("1.17")), "USD": ("US Dollar", Decimal("1.27")),
              "JPY": ("Japanese Yen (not enabled in the demo Xero organisation)", Decimal("187.5"))}

# The mappings a user would set up on the Mappings page for the demo Xero organisation (UK).
DEMO_ACCOUNT_MAPPINGS = {("sales", "SA-WHOLESALE"): "220", ("sales", "SA-RETAIL"): "200",
                         ("sales", "SA-EXPORT"): "210", ("purchase", "PA-STOCK"): "310",
                         ("purchase", "PA-FREIGHT"): "325", ("purchase", "PA-PACKAGING"): "429"}
DEMO_TAX_MAPPINGS = {("sales", "STD20"): "OUTPUT2", ("sales", "RED5"): "RROUTPUT", ("sales", "ZERO"):
                     "ZERORATEDOUTPUT", ("sales", "EXEMPT"): "EXEMPTOUTPUT", ("purchase", "STD20"): "INPUT2",
                     ("purchase", "RED5"): "RRINPUT", ("purchase", "ZERO"): "ZERORATEDINPUT",
                     ("purchase", "EXEMPT"): "EXEMPTINPUT"}


@dataclass
class DemoSize:
    documents: int
    companies: int = 0
    bad_share: float = 0.06
    counts: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.companies = self.companies or max(8, self.documents // 8)


def _company_name(rng: random.Random, taken: set[str]) -> str:
    while True:
        name = f"{rng.choice(FIRST)} {rng.choice(SECOND)} {rng.choice(SUFFIX)}"
        if name.lower() in taken:
            name = f"{name} ({len(taken)})"
        if name.lower() not in taken:
            taken.add(name.lower())
            return name


def generate(conn: psycopg.Connection, documents: int = 60, seed: int = 7, bad_share: float = 0.1,
             start: date = date(2026, 9, 1)) -> dict[str, int]:
    """Fill an empty omono schema; returns row counts. The same arguments always give the same data."""
    rng = random.Random(seed)
    size = DemoSize(documents, bad_share=bad_share)
    conn.execute("INSERT INTO omono.business_settings (id, name, base_currency, financial_year_end_day, "
                 "financial_year_end_month, document_url_pattern) VALUES (1, 'Omono Demo Wholesale Ltd', 'GBP', 31, "
                 "3, 'http://localhost:8000/omono/{entity}/{id}') ON CONFLICT (id) DO NOTHING")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO omono.currencies VALUES (%s, %s, %s)",
                        [(k, n, r) for k, (n, r) in CURRENCIES.items()])
        cur.executemany("INSERT INTO omono.tax_rates VALUES (%s, %s, %s)",
                        [(k, n, r) for k, (n, r) in TAX_RATES.items()])
        cur.executemany("INSERT INTO omono.sales_analysis_codes VALUES (%s, %s)", list(SALES_CODES.items()))
        cur.executemany("INSERT INTO omono.purchase_analysis_codes VALUES (%s, %s)", list(PURCHASE_CODES.items()))

    taken: set[str] = set()
    companies = []
    for i in range(1, size.companies + 1):
        customer = i % 10 < 7 or i % 10 == 9
        supplier = i % 10 >= 7
        city, postcode = rng.choice(CITIES)
        name = _company_name(rng, taken)
        slug = name.split()[0].lower()
        email = f"accounts@{slug}.example"
        if i == 5 and bad_share > 0:
            email = f"accounts@@{slug}.example"        # bad: malformed address
        companies.append((i, f"{'C' if customer else 'S'}{i:05d}", name, customer, supplier, "Sam", "Taylor", email,
                          f"0{rng.randint(1000000000, 1999999999)}", f"{rng.randint(1, 200)} High Street", None, city,
                          None, postcode, "United Kingdom", None, "GBP", Decimal(rng.choice((5000, 10000, 25000))),
                          rng.choice((14, 30, 60)), False))
    with conn.cursor().copy("COPY omono.companies (id, account_number, name, is_customer, is_supplier, "
                            "contact_first_name, contact_last_name, email, phone, address_line1, address_line2, city, "
                            "region, postal_code, country, tax_number, currency_code, credit_limit, "
                            "payment_terms_days, archived) FROM STDIN") as copy:
        for row in companies:
            copy.write_row(row)
    conn.execute("SELECT setval('omono.companies_id_seq', %s)", (size.companies,))
    bad_company = 5 if bad_share > 0 else None       # named by one document only, to show the knock-on
    customers = [c[0] for c in companies if c[3] and c[0] != bad_company]
    suppliers = [c[0] for c in companies if c[4]]

    n_dispatch = round(documents * 0.55)
    n_delivery = round(documents * 0.30)
    n_credit = documents - n_dispatch - n_delivery
    bad_every = max(round(1 / bad_share), 2) if bad_share > 0 else 0

    def flaw(k: int) -> str | None:
        """Every bad_every-th document has one problem, the kinds taking turns."""
        if not bad_every or k % bad_every:
            return None
        return ("unmapped code", "due before issue", "currency not enabled")[(k // bad_every - 1) % 3]

    def lines_for(kind: str, bad: str | None) -> list[tuple]:
        codes = ["SA-WHOLESALE", "SA-RETAIL", "SA-EXPORT"] if kind == "sales" else list(PURCHASE_CODES)
        out = []
        for n in range(1, rng.randint(1, 4) + 1):
            code, text = rng.choice(PRODUCTS)
            analysis = rng.choice(codes)
            if bad == "unmapped code" and n == 1:
                analysis = "SA-SAMPLES" if kind == "sales" else "PA-UNKNOWN"
            qty = Decimal(rng.choice((1, 2, 3, 5, 10, 12, 24, 50)))
            price = (Decimal(rng.randint(150, 25000)) / Decimal(100) + Decimal(rng.randint(0, 99)) / 10000)
            out.append((n, code, text, qty, price.quantize(Decimal("0.0001")), rng.choice(("STD20", "STD20", "RED5",
                                                                                                "ZERO")), analysis))
        return out

    def doc_dates(k: int, bad: str | None) -> tuple[date, date]:
        issued = start + timedelta(days=(k * 61) // max(documents, 1) % 61)
        due = issued + timedelta(days=30)
        if bad == "due before issue":
            due = issued - timedelta(days=10)
        return issued, due

    def currency(k: int, bad: str | None) -> str:
        if bad == "currency not enabled":
            return "JPY"
        return "GBP" if k % 9 else rng.choice(("EUR", "USD"))

    dispatch, dispatch_lines = [], []
    for k in range(1, n_dispatch + 1):
        bad = flaw(k)
        issued, due = doc_dates(k, bad)
        customer = bad_company if k == 2 and bad_company else rng.choice(customers)
        code = currency(k, bad)
        dispatch.append((k, f"SO-{1000 + k}", customer, code, CURRENCIES[code][1], issued, due,
                         f"Order {70000 + k}", "issued"))
        dispatch_lines += [(k, *line[:3], line[3], line[4], Decimal(rng.choice((0, 0, 0, 5, 10))), line[6], line[5])
                           for line in lines_for("sales", bad)]
    delivery, delivery_lines = [], []
    for k in range(1, n_delivery + 1):
        bad = flaw(k)
        issued, due = doc_dates(k, bad)
        delivery.append((k, f"PO-{2000 + k}", f"SUP-INV-{rng.randint(10000, 99999)}", rng.choice(suppliers),
                         "JPY" if bad == "currency not enabled" else "GBP", issued, due, "issued"))
        delivery_lines += [(k, *line[:3], line[3], line[4], line[6], line[5]) for line in lines_for("purchase", bad)]
    credits, credit_lines = [], []
    for k in range(1, n_credit + 1):
        kind = "sales" if k % 3 else "purchase"
        issued, _ = doc_dates(k, None)
        if kind == "sales" and dispatch:
            inv = dispatch[(k * 7) % len(dispatch)]
            company, linked, cur = inv[2], inv[0], inv[3]
        else:
            company, linked, cur = rng.choice(suppliers), None, "GBP"
        credits.append((k, f"CN-{3000 + k}", kind, company, linked, cur, CURRENCIES[cur][1],
                        issued + timedelta(days=3), f"Return {k}", "issued"))
        code, text = rng.choice(PRODUCTS)
        credit_lines.append((k, 1, code, f"Returned: {text}", Decimal(1), Decimal(rng.randint(500, 5000)) / 100,
                             "SA-RETAIL" if kind == "sales" else "PA-STOCK", "STD20"))

    for table, columns, rows in (
            ("dispatch_invoices", "id, number, company_id, currency_code, exchange_rate, issue_date, due_date, "
                                  "reference, status", dispatch),
            ("dispatch_invoice_lines", "invoice_id, line_no, product_code, description, quantity, unit_price, "
                                       "discount_percent, analysis_code, tax_code", dispatch_lines),
            ("delivery_invoices", "id, number, supplier_invoice_ref, company_id, currency_code, issue_date, due_date, "
                                  "status", delivery),
            ("delivery_invoice_lines", "invoice_id, line_no, product_code, description, quantity, unit_price, "
                                       "analysis_code, tax_code", delivery_lines),
            ("credit_notes", "id, number, kind, company_id, invoice_id, currency_code, exchange_rate, issue_date, "
                             "reference, status", credits),
            ("credit_note_lines", "credit_note_id, line_no, product_code, description, quantity, unit_price, "
                                  "analysis_code, tax_code", credit_lines)):
        with conn.cursor().copy(f"COPY omono.{table} ({columns}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
    for table, n in (("dispatch_invoices", n_dispatch), ("delivery_invoices", n_delivery), ("credit_notes", n_credit)):
        conn.execute(f"SELECT setval('omono.{table}_id_seq', %s)", (max(n, 1),))
    conn.commit()
    return {"companies": len(companies), "dispatch_invoices": n_dispatch, "delivery_invoices": n_delivery,
            "credit_notes": n_credit}


def apply_demo_mappings(state_conn: psycopg.Connection) -> None:
    """The mappings a user sets up for the demo organisation (SA-SAMPLES deliberately left unmapped)."""
    for (kind, code), account in DEMO_ACCOUNT_MAPPINGS.items():
        state.put_account_mapping(state_conn, kind, code, account)
    for (kind, code), tax_type in DEMO_TAX_MAPPINGS.items():
        state.put_tax_mapping(state_conn, kind, code, tax_type)
    state_conn.commit()
