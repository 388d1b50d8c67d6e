"""Shared pytest set-up. Airflow reads its configuration at import time, so the test environment is set here,
before any test module imports Airflow: a throw-away AIRFLOW_HOME with a SQLite metadata DB (one per pytest-xdist
worker, as each has its own test database, emulator and ports), this project's
dags/ and plugins/, no example DAGs, and no task retries (a failing task must fail the test at once)."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_IN_MEMORY = ("/dev/shm" if os.access("/dev/shm", os.W_OK) and shutil.disk_usage("/dev/shm").free > 2**30
              else None)                     # (a container's default 64 MB would fill up with task logs)
_OWN_HOME: str | None = None
if os.environ.get("PYTEST_XDIST_WORKER") or "AIRFLOW_HOME" not in os.environ:   # each xdist worker its own
    # in memory where the machine has it: Airflow's SQLite metadata DB syncs to disk at every commit
    _OWN_HOME = os.environ["AIRFLOW_HOME"] = tempfile.mkdtemp(prefix="omono-xero-airflow-", dir=_IN_MEMORY)
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


def pytest_unconfigure(config: pytest.Config) -> None:
    """The throw-away AIRFLOW_HOME goes with the session (in memory, it would otherwise stay until a reboot)."""
    if _OWN_HOME:
        shutil.rmtree(_OWN_HOME, ignore_errors=True)
