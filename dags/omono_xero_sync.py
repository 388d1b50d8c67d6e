"""## Omono → Xero sync

Sends changed Omono records to Xero, one way: companies become contacts, dispatch invoices sales invoices,
delivery invoices bills, credit notes credit notes. Every record's outcome is written to the sync log
(`xero_sync.sync_log`), shown beside this DAG's runs in the Airflow UI.

**Sync Now**: trigger this DAG by hand (optionally as a *dry run*). **Automatic sync**: the schedule wakes every
15 minutes but only runs at the interval chosen in the integration's General options (off by default).

Order: readiness checks → create missing mapped accounts → extract changes → data-quality checks (bad records
are held with a plain message) → contacts → dispatch invoices → delivery invoices → credit notes → allocation of
linked credit notes → credit check → reconciliation (when asked, or at its interval) → summary → a final check that
fails, listing them, when records need attention.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import Param, chain, dag, task

# Tasks that call Xero share one pool (one slot: README, Deployment), so one Airflow never runs two at once; the
# organisation's write lock (include/omono_xero_sync/write_lock.py) also guards against other deployments.
XERO_POOL = os.environ.get("OMONO_XERO_POOL", "omono_xero_api")


def alert_on_failure(context: dict) -> None:
    """E-mail the integration's alert address once a task has failed for good (General options > Alert e-mail)."""
    from include.omono_xero_sync import alerts

    alerts.notify_failure(context)


@dag(
    dag_id="omono_xero_sync",
    schedule="*/15 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,          # two runs must never push at the same time
    # A task first rides out a few faults itself (reads retried, lost writes looked up and resent); when it still
    # fails, Airflow retries it after 2, 4 and 8 minutes: past Xero's 6-minute idempotency window by the last.
    default_args={"owner": "omono-xero-sync", "retries": int(os.environ.get("OMONO_XERO_TASK_RETRIES", "3")),
                  "retry_delay": timedelta(minutes=2), "retry_exponential_backoff": True,
                  "max_retry_delay": timedelta(minutes=15), "on_failure_callback": alert_on_failure},
    tags=["omono", "xero", "sync"],
    doc_md=__doc__,
    params={
        "dry_run": Param(False, type="boolean", title="Dry run",
                         description="Check and log what would be sent, without sending anything to Xero."),
        "full_resync": Param(False, type="boolean", title="Re-read every record",
                             description="Ignore the change log and consider every Omono record (nothing already "
                                         "in Xero is sent again unless it differs)."),
        "date_from": Param(None, type=["null", "string"], format="date", title="Backfill from (document date)"),
        "date_to": Param(None, type=["null", "string"], format="date", title="Backfill to (document date)"),
        "reconcile": Param(False, type="boolean", title="Reconcile",
                           description="Compare Xero with Omono for the date range above (default: this month and "
                                       "last) and list every difference; it also runs by itself at the interval "
                                       "set in General options."),
    },
)
def omono_xero_sync() -> None:
    # Each task imports the pipeline inside its body: DAG parsing never pays for psycopg, GX or xero-python.
    @task.short_circuit(retries=0)
    def due(**context) -> bool:
        from include.omono_xero_sync import pipeline
        pipeline.check_params(context.get("params") or {})
        return pipeline.is_due(context["dag_run"].run_type)

    @task(pool=XERO_POOL)
    def readiness(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.check_readiness(pipeline.run_context(context))

    @task(pool=XERO_POOL)
    def create_missing_accounts(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.create_accounts(pipeline.run_context(context))

    @task
    def extract_changes(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.extract_changes(pipeline.run_context(context))

    @task
    def check_records(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.check_records(pipeline.run_context(context))

    @task(pool=XERO_POOL)
    def push_contacts(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.push_entities(pipeline.run_context(context), ["contact"])

    @task(pool=XERO_POOL)
    def push_dispatch_invoices(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.push_entities(pipeline.run_context(context), ["dispatch_invoice"])

    @task(pool=XERO_POOL)
    def push_delivery_invoices(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.push_entities(pipeline.run_context(context), ["delivery_invoice"])

    @task(pool=XERO_POOL)
    def push_credit_notes(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.push_entities(pipeline.run_context(context), ["sales_credit_note", "purchase_credit_note"])

    @task(pool=XERO_POOL)
    def allocate_credit_notes(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.allocate_credit_notes(pipeline.run_context(context))

    @task(pool=XERO_POOL)
    def credit_check(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.credit_check(pipeline.run_context(context))

    @task(pool=XERO_POOL)
    def reconcile(**context) -> dict:
        from include.omono_xero_sync import pipeline
        return pipeline.reconcile(pipeline.run_context(context))

    @task(trigger_rule="all_done")
    def summarise(**context) -> str:
        from include.omono_xero_sync import pipeline
        return pipeline.summarise(pipeline.run_context(context))

    @task(retries=0)
    def verify(**context) -> None:
        from include.omono_xero_sync import pipeline
        pipeline.verify(pipeline.run_context(context))

    chain(due(), readiness(), create_missing_accounts(), extract_changes(), check_records(), push_contacts(),
          push_dispatch_invoices(), push_delivery_invoices(), push_credit_notes(), allocate_credit_notes(),
          credit_check(), reconcile(), summarise(), verify())


omono_xero_sync()
