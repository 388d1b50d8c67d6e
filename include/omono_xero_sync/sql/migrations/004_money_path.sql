-- Who holds the write lock of a Xero organisation (write_lock.py); the lock itself is a session advisory lock.
CREATE TABLE xero_sync.write_lock (
    organisation text PRIMARY KEY,
    holder       text NOT NULL,
    since        timestamptz NOT NULL DEFAULT now()
);
