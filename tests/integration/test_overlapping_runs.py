"""Two runs writing to one Xero organisation at once (a backfill beside the scheduler, a second deployment, an
`airflow dags test` by hand) must never both create a record: the writes to one organisation are exclusive."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

import httpx
import pytest

from tests.support.pipeline_env import ROOT, XeroOrg, db, seed, xero_objects
from tests.support.steps import run_steps

pytestmark = pytest.mark.integration


def _start_run(run_id: str, *steps: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    return subprocess.Popen([sys.executable, "-m", "tests.support.steps", run_id, *steps], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for_sending(url: str, entity: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    with db(url) as conn:
        while time.monotonic() < deadline:
            n = conn.execute("SELECT count(*) AS n FROM xero_sync.record_state WHERE entity = %s AND status = "
                             "'sending'", (entity,)).fetchone()["n"]
            conn.commit()
            if n:
                return
            time.sleep(0.05)
    raise AssertionError(f"no {entity} was ever marked sending")


def _wait_for_lock_refused(url: str, timeout: float = 90) -> None:
    """Until a run has found the organisation's write lock taken: after a refused try it asks who holds it."""
    deadline = time.monotonic() + timeout
    with db(url) as conn:
        while time.monotonic() < deadline:
            asked = conn.execute("SELECT count(*) AS n FROM pg_stat_activity WHERE application_name = "
                                 "'omono-xero-sync write lock' AND datname = current_database() AND query LIKE "
                                 "'SELECT holder%%'").fetchone()["n"]
            conn.commit()
            if asked:
                return
            time.sleep(0.05)
    raise AssertionError("no run ever waited for the write lock")


def test_two_overlapping_runs_create_each_bill_once(xero_org: XeroOrg, fresh_db: str, admin: httpx.Client) -> None:
    seed(fresh_db, documents=12)
    run_steps("prepare", ("readiness", "extract_changes", "push_contacts"))     # the suppliers are in Xero
    admin.post("/faults", json={"kind": "latency", "method": "POST", "path": "/Invoices$", "ms": 90_000,
                                  "times": 1})                       # held until removed below
    runs = [_start_run("first", "extract_changes", "push_delivery_invoices")]
    try:
        _wait_for_sending(fresh_db, "delivery_invoice")              # the first run's write is in flight
        with db(fresh_db) as conn:                                   # a new bill: the second run's batch differs
            conn.execute("INSERT INTO omono.delivery_invoices (number, company_id, currency_code, issue_date) "
                         "SELECT 'PO-9001', company_id, currency_code, issue_date FROM omono.delivery_invoices "
                         "ORDER BY id LIMIT 1")
            conn.execute("INSERT INTO omono.delivery_invoice_lines (invoice_id, line_no, description, quantity, "
                         "unit_price, analysis_code, tax_code) SELECT id, 1, 'Pallets', 2, 12.5, 'PA-STOCK', "
                         "'STD20' FROM omono.delivery_invoices WHERE number = 'PO-9001'")
        runs.append(_start_run("second", "extract_changes", "push_delivery_invoices"))
        _wait_for_lock_refused(fresh_db)                             # the second run has met the first's lock
        admin.delete("/faults").raise_for_status()                   # the first run's write now completes
        outputs = [p.communicate(timeout=120)[0] for p in runs]
    finally:                                                         # a failed test leaves no run writing on
        admin.delete("/faults")
        for p in runs:
            p.kill()
            p.wait()
    first, second = runs
    assert [first.returncode, second.returncode] == [0, 0], outputs
    with db(fresh_db) as conn:
        omono_bills = conn.execute("SELECT count(*) AS n FROM omono.delivery_invoices").fetchone()["n"]
    bills = [b for b in xero_objects(admin, "invoices") if b["Type"] == "ACCPAY"]
    assert len(bills) == omono_bills
    assert [n for n, c in Counter(b["InvoiceNumber"] for b in bills).items() if c > 1] == []
