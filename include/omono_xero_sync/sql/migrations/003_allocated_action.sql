-- Allocating a credit note to its invoice is logged as its own action, not as an update of the credit note.
ALTER TABLE xero_sync.sync_log DROP CONSTRAINT sync_log_action_check;
ALTER TABLE xero_sync.sync_log ADD CONSTRAINT sync_log_action_check CHECK (action IN (
    'created', 'updated', 'unchanged', 'held', 'failed', 'skipped', 'deleted', 'voided', 'allocated'));
