-- How many times Xero answered an allocation with a server error: its idempotency key moves on with each, because
-- Xero keeps an error answer under the key for 6 minutes and would replay it to a retry.
ALTER TABLE xero_sync.allocations ADD COLUMN write_attempts integer NOT NULL DEFAULT 0;
