-- Credit notes linked in Omono to an invoice are allocated to it in Xero once both are there; one row per pair,
-- so an allocation is made once (a refused one is not retried in a loop: Retry on the credit note clears it).
CREATE TABLE xero_sync.allocations (
    entity             text    NOT NULL,
    omono_id           bigint  NOT NULL,
    invoice_entity     text    NOT NULL,
    invoice_omono_id   bigint  NOT NULL,
    amount             numeric(14, 2),
    status             text    NOT NULL CHECK (status IN ('allocated', 'failed')),
    messages           jsonb   NOT NULL DEFAULT '[]',
    xero_allocation_id uuid,
    run_id             text    NOT NULL,
    created_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (entity, omono_id, invoice_omono_id)
);
