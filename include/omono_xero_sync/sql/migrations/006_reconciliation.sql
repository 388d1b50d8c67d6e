-- Reconciliation (reconcile.py): what Xero holds against what Omono says, for a range of document dates.
CREATE TABLE xero_sync.reconciliations (
    id          bigserial PRIMARY KEY,
    dag_id      text NOT NULL,
    run_id      text NOT NULL,
    date_from   date NOT NULL,
    date_to     date NOT NULL,
    calls       integer NOT NULL DEFAULT 0,
    complete    boolean NOT NULL,
    note        text NOT NULL DEFAULT '',
    already_red integer NOT NULL DEFAULT 0,
    summary     text NOT NULL DEFAULT '',
    finished_at timestamptz NOT NULL DEFAULT now()
);

-- Per entity and currency: Omono's count and total beside Xero's.
CREATE TABLE xero_sync.reconciliation_totals (
    reconciliation_id bigint  NOT NULL REFERENCES xero_sync.reconciliations (id) ON DELETE CASCADE,
    entity            text    NOT NULL,
    currency          text    NOT NULL,
    omono_count       integer NOT NULL,
    omono_total       numeric(16, 2) NOT NULL,
    xero_count        integer NOT NULL,
    xero_total        numeric(16, 2) NOT NULL,
    PRIMARY KEY (reconciliation_id, entity, currency)
);

-- Every difference, with links to both records.
CREATE TABLE xero_sync.reconciliation_differences (
    id                bigserial PRIMARY KEY,
    reconciliation_id bigint NOT NULL REFERENCES xero_sync.reconciliations (id) ON DELETE CASCADE,
    entity            text   NOT NULL,
    kind              text   NOT NULL CHECK (kind IN ('missing', 'duplicate', 'status', 'contact', 'currency',
                                                      'totals', 'credit', 'orphan')),
    omono_id          bigint,
    omono_number      text,
    xero_id           uuid,
    xero_number       text,
    message           text   NOT NULL
);
CREATE INDEX reconciliation_differences_of ON xero_sync.reconciliation_differences (reconciliation_id);
