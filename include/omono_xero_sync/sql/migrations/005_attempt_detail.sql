-- What the Airflow UI shows of each attempt and of each manual action (issue 10).

-- Per attempt, as Xero answered it: the HTTP status, the endpoint called (method and path) and Xero's
-- correlation id (response header Xero-Correlation-Id), which Xero support asks for. Written by the push.
ALTER TABLE xero_sync.sync_log
    ADD COLUMN http_status    integer,
    ADD COLUMN endpoint       text,
    ADD COLUMN correlation_id text;

-- When a record was skipped: the time the page shows, and what a later change in Omono is compared with.
ALTER TABLE xero_sync.record_state ADD COLUMN skipped_at timestamptz;

-- The sync log searched and filtered by date across runs.
CREATE INDEX sync_log_created_at ON xero_sync.sync_log (created_at);

-- Manual actions leave a sync-log row too: 'retried' (someone chose Retry) and 'unskipped' (a skipped record
-- changed in Omono, so it is sent again). The actions already allowed are read from the constraint itself, so
-- whatever an earlier migration added stays allowed.
DO $$
DECLARE
    allowed text[];
BEGIN
    SELECT array_agg(DISTINCT m[1]) INTO allowed
      FROM pg_constraint c, regexp_matches(pg_get_constraintdef(c.oid), '''([a-z_]+)''', 'g') AS m
     WHERE c.conname = 'sync_log_action_check' AND c.conrelid = 'xero_sync.sync_log'::regclass;
    ALTER TABLE xero_sync.sync_log DROP CONSTRAINT sync_log_action_check;
    EXECUTE format('ALTER TABLE xero_sync.sync_log ADD CONSTRAINT sync_log_action_check CHECK (action IN (%s))',
                   (SELECT string_agg(quote_literal(a), ', ') FROM unnest(allowed || ARRAY['retried', 'unskipped']) a));
END $$;
