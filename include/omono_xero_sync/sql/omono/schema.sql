-- The Omono source schema used by the demo, the tests and the benchmarks: what an Omono database holds for
-- the business, its companies and its documents. A real Omono database already has these tables; what
-- omono-xero-sync adds to it is change_log.sql (the change log and its triggers).
CREATE SCHEMA IF NOT EXISTS omono;

CREATE TABLE IF NOT EXISTS omono.business_settings (
    id                       integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    name                     text    NOT NULL,
    base_currency            char(3) NOT NULL,
    financial_year_end_day   integer NOT NULL CHECK (financial_year_end_day BETWEEN 1 AND 31),
    financial_year_end_month integer NOT NULL CHECK (financial_year_end_month BETWEEN 1 AND 12),
    document_url_pattern     text    -- e.g. https://omono.example/{entity}/{id}
);

CREATE TABLE IF NOT EXISTS omono.currencies (
    code          char(3) PRIMARY KEY,
    name          text    NOT NULL,
    exchange_rate numeric(18, 6)
);

CREATE TABLE IF NOT EXISTS omono.tax_rates (
    code        text PRIMARY KEY,
    name        text NOT NULL,
    rate        numeric(7, 4) NOT NULL
);

CREATE TABLE IF NOT EXISTS omono.sales_analysis_codes (
    code        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE IF NOT EXISTS omono.purchase_analysis_codes (
    code        text PRIMARY KEY,
    description text NOT NULL
);

CREATE TABLE IF NOT EXISTS omono.companies (
    id                 bigserial PRIMARY KEY,
    account_number     text UNIQUE,
    name               text    NOT NULL,
    is_customer        boolean NOT NULL DEFAULT true,
    is_supplier        boolean NOT NULL DEFAULT false,
    contact_first_name text,
    contact_last_name  text,
    email              text,
    phone              text,
    address_line1      text,
    address_line2      text,
    city               text,
    region             text,
    postal_code        text,
    country            text,
    tax_number         text,
    currency_code      char(3) REFERENCES omono.currencies (code),
    credit_limit       numeric(14, 2),
    payment_terms_days integer,
    archived           boolean NOT NULL DEFAULT false,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);

-- Dispatch invoices come from sales orders (SO-1000 …), delivery invoices from purchase orders (PO-2000 …).
CREATE TABLE IF NOT EXISTS omono.dispatch_invoices (
    id            bigserial PRIMARY KEY,
    number        text    NOT NULL UNIQUE,
    company_id    bigint  NOT NULL REFERENCES omono.companies (id),
    currency_code char(3) NOT NULL REFERENCES omono.currencies (code),
    exchange_rate numeric(18, 6),   -- units of the document's currency per unit of the base currency
    issue_date    date    NOT NULL,
    due_date      date,
    reference     text,
    status        text    NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS omono.dispatch_invoice_lines (
    id               bigserial PRIMARY KEY,
    invoice_id       bigint  NOT NULL REFERENCES omono.dispatch_invoices (id) ON DELETE CASCADE,
    line_no          integer NOT NULL,
    product_code     text,
    description      text    NOT NULL,
    quantity         numeric(14, 4) NOT NULL,
    unit_price       numeric(14, 4) NOT NULL,
    discount_percent numeric(5, 2)  NOT NULL DEFAULT 0,
    analysis_code    text,   -- a sales analysis code; not enforced by Omono, so it can be unknown or unmapped
    tax_code         text,
    UNIQUE (invoice_id, line_no)
);

CREATE TABLE IF NOT EXISTS omono.delivery_invoices (
    id                    bigserial PRIMARY KEY,
    number                text    NOT NULL UNIQUE,
    supplier_invoice_ref  text,
    company_id            bigint  NOT NULL REFERENCES omono.companies (id),
    currency_code         char(3) NOT NULL REFERENCES omono.currencies (code),
    exchange_rate         numeric(18, 6),
    issue_date            date    NOT NULL,
    due_date              date,
    status                text    NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'cancelled')),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS omono.delivery_invoice_lines (
    id               bigserial PRIMARY KEY,
    invoice_id       bigint  NOT NULL REFERENCES omono.delivery_invoices (id) ON DELETE CASCADE,
    line_no          integer NOT NULL,
    product_code     text,
    description      text    NOT NULL,
    quantity         numeric(14, 4) NOT NULL,
    unit_price       numeric(14, 4) NOT NULL,
    analysis_code    text,   -- a purchase analysis code
    tax_code         text,
    UNIQUE (invoice_id, line_no)
);

-- Sales credit notes may point at a dispatch invoice, purchase credit notes at a delivery invoice.
CREATE TABLE IF NOT EXISTS omono.credit_notes (
    id            bigserial PRIMARY KEY,
    number        text    NOT NULL UNIQUE,
    kind          text    NOT NULL CHECK (kind IN ('sales', 'purchase')),
    company_id    bigint  NOT NULL REFERENCES omono.companies (id),
    invoice_id    bigint,
    currency_code char(3) NOT NULL REFERENCES omono.currencies (code),
    exchange_rate numeric(18, 6),
    issue_date    date    NOT NULL,
    reference     text,
    status        text    NOT NULL DEFAULT 'issued' CHECK (status IN ('issued', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS omono.credit_note_lines (
    id              bigserial PRIMARY KEY,
    credit_note_id  bigint  NOT NULL REFERENCES omono.credit_notes (id) ON DELETE CASCADE,
    line_no         integer NOT NULL,
    product_code    text,
    description     text    NOT NULL,
    quantity        numeric(14, 4) NOT NULL,
    unit_price      numeric(14, 4) NOT NULL,
    analysis_code   text,
    tax_code        text,
    UNIQUE (credit_note_id, line_no)
);

-- Where Omono's dispatch credit-limit check reads customers' balances (written by the credit check).
CREATE TABLE IF NOT EXISTS omono.customer_balances (
    company_id   bigint PRIMARY KEY REFERENCES omono.companies (id),
    outstanding  numeric(14, 2) NOT NULL,
    overdue      numeric(14, 2) NOT NULL,
    currency     char(3),
    read_at      timestamptz NOT NULL
);

