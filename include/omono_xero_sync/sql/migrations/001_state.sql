-- The integration's own state, kept apart from Omono's tables in schema xero_sync.

CREATE TABLE xero_sync.settings (
    key        text PRIMARY KEY,
    value      jsonb NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text
);

-- Omono sales/purchase analysis code -> Xero account code; Omono tax rate -> Xero tax type, per kind.
CREATE TABLE xero_sync.account_mappings (
    kind              text NOT NULL CHECK (kind IN ('sales', 'purchase')),
    omono_code        text NOT NULL,
    xero_account_code text NOT NULL,
    create_in_xero    boolean NOT NULL DEFAULT false,   -- create the account in Xero if it is missing
    xero_account_name text,                              -- name to create it with
    updated_at        timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, omono_code)
);

-- Per kind, because Xero needs different tax types on sales and on purchases (e.g. OUTPUT2 / INPUT2).
CREATE TABLE xero_sync.tax_mappings (
    kind           text NOT NULL CHECK (kind IN ('sales', 'purchase')),
    omono_tax_code text NOT NULL,
    xero_tax_type  text NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (kind, omono_tax_code)
);

-- Reference data read from Xero (organisation, accounts, tax rates, currencies), refreshed every run.
CREATE TABLE xero_sync.xero_reference (
    kind    text PRIMARY KEY,
    data    jsonb NOT NULL,
    read_at timestamptz NOT NULL DEFAULT now()
);

-- One row per Omono record ever considered: its Xero id, what was last sent and where it stands.
CREATE TABLE xero_sync.record_state (
    entity         text   NOT NULL,
    omono_id       bigint NOT NULL,
    omono_number   text,
    xero_id        uuid,
    xero_number    text,
    xero_status    text,
    content_hash   text,          -- hash of the payload Xero last accepted
    last_sent      jsonb,
    status         text   NOT NULL CHECK (status IN ('pending', 'sending', 'synced', 'held', 'failed', 'skipped')),
    sending_key    text,          -- idempotency key of a write whose outcome is not yet known
    sending_since  timestamptz,
    last_messages  jsonb NOT NULL DEFAULT '[]',
    last_run_id    text,
    skipped_by     text,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, omono_id)
);
CREATE INDEX record_state_unresolved ON xero_sync.record_state (entity) WHERE status IN ('held', 'failed', 'sending');

-- The sync log: one row per record per run, as shown in the Airflow UI.
CREATE TABLE xero_sync.sync_log (
    id           bigserial PRIMARY KEY,
    dag_id       text   NOT NULL,
    run_id       text   NOT NULL,
    task_id      text   NOT NULL,
    entity       text   NOT NULL,
    omono_id     bigint NOT NULL,
    omono_number text,
    action       text   NOT NULL CHECK (action IN ('created', 'updated', 'unchanged', 'held', 'failed', 'skipped',
                                                   'deleted', 'voided')),
    xero_id      uuid,
    messages     jsonb  NOT NULL DEFAULT '[]',
    sent         jsonb,
    answer       jsonb,
    dry_run      boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_log_run ON xero_sync.sync_log (dag_id, run_id);
CREATE INDEX sync_log_record ON xero_sync.sync_log (entity, omono_id, id);

-- The records of one run, staged by the extract step so that what was checked is exactly what is sent.
CREATE TABLE xero_sync.run_queue (
    run_id       text   NOT NULL,
    entity       text   NOT NULL,
    omono_id     bigint NOT NULL,
    omono_number text,
    record       jsonb  NOT NULL,
    state        text   NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'held', 'done')),
    messages     jsonb  NOT NULL DEFAULT '[]',
    PRIMARY KEY (run_id, entity, omono_id)
);

-- Where the change log was last read up to (the snapshot xmin of that read).
CREATE TABLE xero_sync.source_cursor (
    name       text PRIMARY KEY,
    txid_floor xid8 NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- OAuth tokens, encrypted; a row lock serialises refreshes so a rotated refresh token is never lost.
CREATE TABLE xero_sync.oauth_tokens (
    conn_id    text PRIMARY KEY,
    token      text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- Call budget as Xero last reported it (shown on the Connection page).
CREATE TABLE xero_sync.api_usage (
    tenant_id      text PRIMARY KEY,
    day_remaining  integer,
    min_remaining  integer,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
