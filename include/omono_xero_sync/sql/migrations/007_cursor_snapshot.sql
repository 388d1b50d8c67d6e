-- The whole snapshot of the last read of the change log, not only its xmin: a row at or above the floor that was
-- visible to that read has been read, so a transaction left open elsewhere in PostgreSQL (which holds the floor
-- back) no longer makes every run read, check and log the same changes again.
ALTER TABLE xero_sync.source_cursor ADD COLUMN snapshot pg_snapshot;
