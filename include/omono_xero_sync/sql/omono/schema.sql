-- The Omono source schema used by the demo, the tests and the benchmarks: what an Omono database holds for
-- the business, its companies and its documents. A real Omono database already has these tables; the
-- change log and its triggers (bottom) are what omono-xero-sync adds to it (docs/ARCHITECTURE.md).
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

-- ---------------------------------------------------------------------------------------------------------
-- Change log: one row per changed record, written by triggers in the same transaction as the change, and
-- stamped with that transaction's 64-bit id. The sync reads every row whose transaction id is at or above
-- the oldest transaction that was still running when it last read (its snapshot xmin), so a change that
-- commits after a run started, or whose updated_at is old, is still seen. Timestamps are never used.
-- ---------------------------------------------------------------------------------------------------------
CREATE TABLE IF NOT EXISTS omono.change_log (
    id         bigserial PRIMARY KEY,
    entity     text   NOT NULL,
    record_id  bigint NOT NULL,
    txid       xid8   NOT NULL DEFAULT pg_current_xact_id(),
    changed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS change_log_txid ON omono.change_log (txid);

CREATE OR REPLACE FUNCTION omono.log_change() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    rec record := CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END;
BEGIN
    IF TG_ARGV[1] = 'id' THEN
        INSERT INTO omono.change_log (entity, record_id) VALUES (TG_ARGV[0], rec.id);
    ELSIF TG_ARGV[1] = 'invoice_id' THEN
        INSERT INTO omono.change_log (entity, record_id) VALUES (TG_ARGV[0], rec.invoice_id);
    ELSE
        INSERT INTO omono.change_log (entity, record_id) VALUES (TG_ARGV[0], rec.credit_note_id);
    END IF;
    RETURN NULL;
END $$;

DO $$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT * FROM (VALUES
        ('companies', 'company', 'id'),
        ('dispatch_invoices', 'dispatch_invoice', 'id'),
        ('dispatch_invoice_lines', 'dispatch_invoice', 'invoice_id'),
        ('delivery_invoices', 'delivery_invoice', 'id'),
        ('delivery_invoice_lines', 'delivery_invoice', 'invoice_id'),
        ('credit_notes', 'credit_note', 'id'),
        ('credit_note_lines', 'credit_note', 'credit_note_id')) AS v(tbl, entity, key)
    LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS xero_sync_change ON omono.%I', t.tbl);
        EXECUTE format('CREATE TRIGGER xero_sync_change AFTER INSERT OR UPDATE OR DELETE ON omono.%I '
                       'FOR EACH ROW EXECUTE FUNCTION omono.log_change(%L, %L)', t.tbl, t.entity, t.key);
    END LOOP;
END $$;
