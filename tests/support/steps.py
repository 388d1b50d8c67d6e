"""The pipeline's steps run in order in one process, without Airflow's scheduler: what a DAG run does, for tests
that need several runs at once in real processes (`python -m tests.support.steps RUN_ID [STEP ...]`) or many
short runs. Integration tests of the DAG itself use `dag.test()` (pipeline_env.run_sync)."""

from __future__ import annotations

import sys
from typing import Any

from include.omono_xero_sync.sync_log import RunContext

DAG_ID = "omono_xero_sync"
ALL_STEPS = ("readiness", "create_missing_accounts", "extract_changes", "check_records", "push_contacts",
             "push_dispatch_invoices", "push_delivery_invoices", "push_credit_notes", "allocate_credit_notes")
_PUSHED = {"push_contacts": ["contact"], "push_dispatch_invoices": ["dispatch_invoice"],
           "push_delivery_invoices": ["delivery_invoice"],
           "push_credit_notes": ["sales_credit_note", "purchase_credit_note"]}

TO_SALES = ("readiness", "extract_changes", "check_records", "push_contacts", "push_dispatch_invoices")
VERIFIED = (*ALL_STEPS, "verify")     # a run that must end green: verify raises RecordsNeedAttention otherwise


def run_step(step: str, run_id: str, params: dict | None = None) -> Any:
    from include.omono_xero_sync import pipeline

    params = {"dry_run": False, "full_resync": False, "date_from": None, "date_to": None, **(params or {})}
    ctx = RunContext(DAG_ID, run_id, step, dry_run=bool(params["dry_run"]), params=params)
    if step in _PUSHED:
        return pipeline.push_entities(ctx, _PUSHED[step])
    return {"readiness": pipeline.check_readiness, "create_missing_accounts": pipeline.create_accounts,
            "extract_changes": pipeline.extract_changes, "check_records": pipeline.check_records,
            "allocate_credit_notes": pipeline.allocate_credit_notes, "credit_check": pipeline.credit_check,
            "reconcile": lambda c: pipeline.reconcile(c, force=True), "verify": pipeline.verify}[step](ctx)


def run_steps(run_id: str, steps: tuple[str, ...] = ALL_STEPS, params: dict | None = None) -> dict[str, Any]:
    return {step: run_step(step, run_id, params) for step in steps}


if __name__ == "__main__":
    run_steps(sys.argv[1], tuple(sys.argv[2:]) or ALL_STEPS)
