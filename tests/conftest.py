"""Shared pytest set-up. Airflow reads its configuration at import time, so the test environment is set here,
before any test module imports Airflow: a throw-away AIRFLOW_HOME with a SQLite metadata DB (one per pytest-xdist
worker, as each has its own test database, emulator and ports), this project's
dags/ and plugins/, no example DAGs, and no task retries (a failing task must fail the test at once)."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if os.environ.get("PYTEST_XDIST_WORKER") or "AIRFLOW_HOME" not in os.environ:   # each xdist worker its own
    os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="omono-xero-airflow-")
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(ROOT / "dags"))
os.environ.setdefault("AIRFLOW__CORE__PLUGINS_FOLDER", str(ROOT / "plugins"))
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "test-only-jwt-secret-" + "x" * 48)
os.environ.setdefault("OMONO_XERO_TASK_RETRIES", "0")
os.environ.setdefault("OMONO_XERO_RETRY_BACKOFF", "0.05,0.05,0.05")   # in-task retries keep their count, not pauses


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if not any(item.iter_markers(name=m) for m in ("unit", "integration")):
            raise pytest.UsageError(f"{item.nodeid} has neither the 'unit' nor the 'integration' marker")
