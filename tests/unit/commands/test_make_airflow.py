"""`make airflow` (demo.py --serve): Airflow's metadata in PostgreSQL, an executor sized for a small machine, the
port an option, and stopping it stops every process it started, even ones that ignore SIGTERM."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from include.commands import demo

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[3]


def test_make_airflow_keeps_airflows_metadata_in_postgresql_with_a_small_executor_on_the_chosen_port(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(demo, "RUN", tmp_path)
    monkeypatch.delenv("AIRFLOW__CORE__PARALLELISM", raising=False)
    admin = "postgresql://postgres@127.0.0.1:5432/postgres"
    env = demo.serve_env(demo.database_url(admin, demo.DEMO_DB), "http://127.0.0.1:8765",
                         demo.database_url(admin, demo.AIRFLOW_DB, "postgresql+psycopg2"), 8123)
    assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] == "postgresql+psycopg2://postgres@127.0.0.1:5432/omono_xero_airflow"
    assert env["AIRFLOW__CORE__EXECUTOR"] == "LocalExecutor" and env["AIRFLOW__CORE__PARALLELISM"] == "2"
    assert env["AIRFLOW__API__PORT"] == "8123" and env["AIRFLOW__API__BASE_URL"] == "http://localhost:8123"
    assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "False"
    assert len(env["AIRFLOW__API_AUTH__JWT_SECRET"]) >= 64            # one secret for every component
    assert "redirect_uri" not in json.loads(env["AIRFLOW_CONN_XERO_DEFAULT"])["extra"]   # back to /xero/callback
    assert demo.database_url("postgresql://postgres:@/postgres?host=/run/pg", "x") == "postgresql://postgres:@/x?host=/run/pg"


STUBBORN = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
            "signal.signal(signal.SIGINT, signal.SIG_IGN); {spawn}time.sleep(600)")


@pytest.mark.parametrize("stop_with", [signal.SIGTERM, signal.SIGINT])
def test_stopping_make_airflow_stops_every_process_it_started_even_ones_ignoring_sigterm(
        tmp_path: Path, stop_with: int) -> None:
    grandchild = STUBBORN.format(spawn="")
    child = STUBBORN.format(spawn=f"subprocess.Popen([sys.executable, '-c', {grandchild!r}]); ")
    supervisor = (f"import sys; from pathlib import Path; from include.commands import demo; "
                  f"demo.RUN = Path({str(tmp_path)!r}); demo.STOP_GRACE_SECONDS = 1; "
                  f"sys.exit(demo.run_components({{'a': [sys.executable, '-c', {child!r}], "
                  f"'b': [sys.executable, '-c', {child!r}]}}, {{'PATH': '/usr/bin:/bin'}}))")
    proc = subprocess.Popen([sys.executable, "-c", supervisor], cwd=ROOT, env={"PYTHONPATH": str(ROOT)})
    started = psutil.Process(proc.pid)
    deadline = time.monotonic() + 30
    while len(started.children(recursive=True)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)
    tree = started.children(recursive=True)
    assert len(tree) == 4                                  # two components, each with a worker of its own
    proc.send_signal(stop_with)
    assert proc.wait(30) == 0
    gone, alive = psutil.wait_procs(tree, timeout=5)
    assert not alive and len(gone) == 4
