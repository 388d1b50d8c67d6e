-- What omono-xero-sync adds to an Omono database (a DBA runs this once; it is idempotent).
-- ---------------------------------------------------------------------------------------------------------
-- Change log: one row per changed record, written by triggers in the same transaction as the change, and
-- stamped with that transaction's 64-bit id. The sync reads every row its last read's snapshot could not see,
-- so a change that commits after a run started, or whose updated_at is old, is still seen. Timestamps are never
-- used. A line moved from one document to another logs both.
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
    before bigint;   -- the record the row belonged to before the change (none for an insert)
    after  bigint;   -- and after it (none for a delete); a line moved to another document changes both
BEGIN
    IF TG_ARGV[1] = 'id' THEN
        IF TG_OP <> 'INSERT' THEN before := OLD.id; END IF;
        IF TG_OP <> 'DELETE' THEN after := NEW.id; END IF;
    ELSIF TG_ARGV[1] = 'invoice_id' THEN
        IF TG_OP <> 'INSERT' THEN before := OLD.invoice_id; END IF;
        IF TG_OP <> 'DELETE' THEN after := NEW.invoice_id; END IF;
    ELSE
        IF TG_OP <> 'INSERT' THEN before := OLD.credit_note_id; END IF;
        IF TG_OP <> 'DELETE' THEN after := NEW.credit_note_id; END IF;
    END IF;
    IF before IS NOT NULL THEN
        INSERT INTO omono.change_log (entity, record_id) VALUES (TG_ARGV[0], before);
    END IF;
    IF after IS NOT NULL AND after IS DISTINCT FROM before THEN
        INSERT INTO omono.change_log (entity, record_id) VALUES (TG_ARGV[0], after);
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
