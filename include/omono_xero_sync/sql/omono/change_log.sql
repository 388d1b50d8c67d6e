-- What omono-xero-sync adds to an Omono database (a DBA runs this once; it is idempotent).
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
