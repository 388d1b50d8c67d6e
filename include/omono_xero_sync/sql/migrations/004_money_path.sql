-- Who holds the write lock of a Xero organisation (write_lock.py); the lock itself is a session advisory lock.
CREATE TABLE xero_sync.write_lock (
    organisation text PRIMARY KEY,
    holder       text NOT NULL,
    since        timestamptz NOT NULL DEFAULT now()
);

-- Xero documents this integration wrote. Kept across a reset: a backfill adopts these and nothing a person typed.
CREATE TABLE xero_sync.our_documents (
    xero_id    uuid PRIMARY KEY,
    entity     text   NOT NULL,
    omono_id   bigint NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO xero_sync.our_documents (xero_id, entity, omono_id)
SELECT DISTINCT ON (xero_id) xero_id, entity, omono_id FROM xero_sync.sync_log
WHERE xero_id IS NOT NULL AND entity <> 'contact' AND action IN ('created', 'updated', 'deleted', 'voided')
  AND NOT dry_run
ON CONFLICT DO NOTHING;
INSERT INTO xero_sync.our_documents (xero_id, entity, omono_id)
SELECT xero_id, entity, omono_id FROM xero_sync.record_state WHERE xero_id IS NOT NULL AND entity <> 'contact'
ON CONFLICT DO NOTHING;

-- Moves on when Xero answered a write with an error, so the next attempt uses a new idempotency key.
ALTER TABLE xero_sync.record_state ADD COLUMN write_attempts integer NOT NULL DEFAULT 0;

-- 'linked': a document already in Xero with exactly Omono's content, taken as the record's copy.
ALTER TABLE xero_sync.sync_log DROP CONSTRAINT sync_log_action_check;
ALTER TABLE xero_sync.sync_log ADD CONSTRAINT sync_log_action_check CHECK (action IN (
    'created', 'updated', 'unchanged', 'held', 'failed', 'skipped', 'deleted', 'voided', 'allocated', 'linked'));

-- Allocation pairs are known from the start ('waiting'), and a pair with nothing left to allocate is 'settled'.
ALTER TABLE xero_sync.allocations DROP CONSTRAINT allocations_status_check;
ALTER TABLE xero_sync.allocations ADD CONSTRAINT allocations_status_check
    CHECK (status IN ('waiting', 'allocated', 'settled', 'failed'));
ALTER TABLE xero_sync.allocations ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX allocations_open ON xero_sync.allocations (entity) WHERE status IN ('waiting', 'failed');

-- 'waiting': nothing is wrong with the record, it waits (for the next day's API budget, or for its company).
ALTER TABLE xero_sync.record_state DROP CONSTRAINT record_state_status_check;
ALTER TABLE xero_sync.record_state ADD CONSTRAINT record_state_status_check
    CHECK (status IN ('pending', 'sending', 'synced', 'held', 'failed', 'skipped', 'waiting'));
DROP INDEX xero_sync.record_state_unresolved;
CREATE INDEX record_state_unresolved ON xero_sync.record_state (entity, omono_id)
    WHERE status IN ('pending', 'sending', 'held', 'failed', 'waiting');

-- What each task of a run spent and, if it failed, why: the summary counts calls of failed tasks too.
CREATE TABLE xero_sync.run_tasks (
    dag_id     text    NOT NULL,
    run_id     text    NOT NULL,
    task_id    text    NOT NULL,
    calls      integer NOT NULL DEFAULT 0,
    problem    text,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (dag_id, run_id, task_id)
);

-- The Omono company a document belongs to: a document held for its company is looked at again once that changes.
ALTER TABLE xero_sync.record_state ADD COLUMN company_id bigint;

-- Analysis codes and tax rates Omono's document lines use, kept as documents are extracted (readiness checks
-- them without reading all of Omono's history every run).
CREATE TABLE xero_sync.codes_in_use (
    kind   text NOT NULL CHECK (kind IN ('sales', 'purchase')),
    field  text NOT NULL CHECK (field IN ('analysis_code', 'tax_code')),
    code   text NOT NULL,
    PRIMARY KEY (kind, field, code)
);

-- When a run staged its records: a finished run's queue is deleted, and so is one a crashed run left behind.
ALTER TABLE xero_sync.run_queue ADD COLUMN staged_at timestamptz NOT NULL DEFAULT now();

-- A pair whose credit note Omono has since linked elsewhere (or unlinked) after its credit was allocated in Xero.
ALTER TABLE xero_sync.allocations ADD COLUMN relinked boolean NOT NULL DEFAULT false;

-- Which read of Omono a staged record comes from, and which read the content Xero holds came from: a run that read
-- Omono before another one sent a newer version never sends its older copy over it.
ALTER TABLE xero_sync.run_queue ADD COLUMN snapshot xid8;
ALTER TABLE xero_sync.record_state ADD COLUMN source_xmax xid8;
