-- When each call of the last minute started (seconds before updated_at), so the next task's pacing counts the
-- previous task's calls exactly instead of as if all were made at its end (which stalled up to a minute).
ALTER TABLE xero_sync.api_usage ADD COLUMN recent_calls real[];
