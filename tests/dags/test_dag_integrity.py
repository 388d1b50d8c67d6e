"""The DAG folder imports cleanly, parses without heavy libraries, and follows the project's run policy."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DAGS = sorted((ROOT / "dags").glob("*.py"))
HEAVY = ("great_expectations", "pandas", "xero_python", "psycopg", "numpy")

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def parsed() -> dict:
    """Parse the folder in a fresh interpreter, as the dag-processor does, and report what got imported."""
    probe = (
        "import json, sys\n"
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(ROOT / 'dags')!r})\n"
        "d = bag.dags.get('omono_xero_sync')\n"
        "print(json.dumps({'errors': {k: str(v) for k, v in bag.import_errors.items()}, 'dags': sorted(bag.dag_ids),"
        f" 'heavy': sorted(m for m in {HEAVY!r} if m in sys.modules),"
        " 'tasks': [t.task_id for t in d.topological_sort()] if d else [],"
        " 'pools': {t.task_id: t.pool for t in d.tasks} if d else {},"
        " 'catchup': d.catchup, 'max_active_runs': d.max_active_runs, 'tags': sorted(d.tags),"
        " 'retries': d.default_args.get('retries'), 'params': sorted(d.params.keys())}))\n")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                         env={**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}",
                              "OMONO_XERO_TASK_RETRIES": "2"})
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_dag_folder_imports_without_errors(parsed: dict) -> None:
    assert parsed["errors"] == {}
    assert parsed["dags"] == ["omono_xero_sync"]


def test_parsing_does_not_import_heavy_libraries(parsed: dict) -> None:
    assert parsed["heavy"] == []


@pytest.mark.parametrize("path", DAGS, ids=lambda p: p.name)
def test_dag_files_have_no_module_level_heavy_imports(path: Path) -> None:
    tree = ast.parse(path.read_text())
    top = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
    names = [a.name for n in top for a in n.names] + [n.module or "" for n in top if isinstance(n, ast.ImportFrom)]
    assert not [n for n in names if n.split(".")[0] in HEAVY or n.startswith("include.")]


def test_tasks_run_in_the_documented_order(parsed: dict) -> None:
    assert parsed["tasks"] == ["due", "readiness", "create_missing_accounts", "extract_changes", "check_records",
                               "push_contacts", "push_dispatch_invoices", "push_delivery_invoices",
                               "push_credit_notes", "allocate_credit_notes", "credit_check", "reconcile", "summarise",
                               "verify"]


def test_run_policy_no_catchup_one_run_at_a_time_retries_and_sync_now_params(parsed: dict) -> None:
    assert parsed["catchup"] is False and parsed["max_active_runs"] == 1
    assert parsed["retries"] >= 1
    assert parsed["params"] == ["date_from", "date_to", "dry_run", "full_resync", "reconcile"]
    assert {"omono", "xero"} <= set(parsed["tags"])


def test_every_task_that_calls_xero_runs_in_the_xero_pool(parsed: dict) -> None:
    xero_tasks = {"readiness", "create_missing_accounts", "push_contacts", "push_dispatch_invoices",
                  "push_delivery_invoices", "push_credit_notes", "allocate_credit_notes", "credit_check", "reconcile"}
    assert {t for t, pool in parsed["pools"].items() if pool == "omono_xero_api"} == xero_tasks


def test_an_airflow_backfill_run_is_refused_with_the_way_to_resend_history() -> None:
    from include.omono_xero_sync import pipeline

    with pytest.raises(pipeline.BackfillRefused, match="Backfill from"):
        pipeline.is_due("backfill")


def test_a_backfill_range_running_backwards_is_refused_before_anything_runs() -> None:
    from include.omono_xero_sync import pipeline

    pipeline.check_params({"date_from": "2026-09-01", "date_to": "2026-09-30"})
    with pytest.raises(pipeline.BadParameters, match="after 'Backfill to'"):
        pipeline.check_params({"date_from": "2026-10-01", "date_to": "2026-09-30"})
