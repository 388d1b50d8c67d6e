"""Sync runs in real processes, so they can be killed at any moment and two can overlap.

Each attempt of a step is a process forked from this one (which has already imported the pipeline, Great
Expectations and xero-python, so a step starts in milliseconds) running `tests.support.steps.run_step`, exactly
what the DAG's task runs. A single-threaded scheduler starts attempts, reaps them, retries a failed step as
Airflow does (3 attempts, after whatever Xero was still doing has finished, as Airflow's retry delay lets it),
stops a run whose step failed for good (its downstream tasks would be upstream_failed), and fires the faults.
`dag_test` runs one sync through real Airflow (`dag.test()`, in this process) instead."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
import traceback
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.histories.faults import LOGGED_AS, TIMEOUT_READ_SECONDS, WRITE_PATH, Fault
from tests.histories.world import World
from tests.support.steps import ALL_STEPS

ATTEMPTS = 3
STEP_TIMEOUT_SECONDS = 150
EXIT_SKIPPED = 3
ENVIRONMENT = {"OMONO_XERO_CALLS_PER_MINUTE": "100000", "OMONO_XERO_LOCK_WAIT_SECONDS": "120",
               "OMONO_XERO_TASK_RETRIES": "0"}


def configure_environment() -> None:
    """For the command-line runs (soak, replay), before the pipeline is imported: no client-side pacing (the
    emulator's limits are the faults), a bounded wait for the write lock, and a throw-away Airflow home as
    tests/conftest.py sets one. Under pytest nothing is changed: a history's steps make few calls a minute."""
    import tempfile

    root = Path(__file__).resolve().parents[2]
    airflow = {"AIRFLOW_HOME": tempfile.mkdtemp(prefix="omono-xero-soak-airflow-"),
               "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
               "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
               "AIRFLOW__API_AUTH__JWT_SECRET": "test-only-jwt-secret-" + "x" * 48}
    for key, value in {**ENVIRONMENT, **({} if "AIRFLOW_HOME" in os.environ else airflow)}.items():
        os.environ.setdefault(key, value)


def preload() -> None:
    """Import what every step needs once, here, so forked steps start at once."""
    import great_expectations  # noqa: F401
    import pandas  # noqa: F401
    import xero_python.accounting  # noqa: F401
    from airflow.sdk.exceptions import AirflowSkipException  # noqa: F401

    from include.omono_xero_sync import allocate, balances, pipeline, push, xero_api  # noqa: F401


_warmed = False


def warm() -> None:
    """Once the Airflow connections exist: resolve them and build a GX context here, once, instead of in every
    forked step (each costs a few hundred milliseconds the first time in a process)."""
    global _warmed
    if _warmed:
        return
    import great_expectations as gx

    from include.omono_xero_sync import db, settings
    from include.omono_xero_sync.xero_hook import XeroHook

    db.dsn(settings.STATE_CONN_ID)
    XeroHook().settings()
    gx.get_context(mode="ephemeral")
    _warmed = True


@dataclass
class RunSpec:
    run_id: str
    params: dict[str, Any] = field(default_factory=dict)
    after: tuple[str, str] | None = None         # start once run `after[0]` begins step `after[1]`
    steps: tuple[str, ...] = ALL_STEPS


@dataclass
class Attempt:
    step: str
    number: int
    pid: int
    started: float
    first_seq: int
    log: Path
    exit: str | None = None          # ok, failed, skipped, killed, hung


@dataclass
class Run:
    spec: RunSpec
    index: int = 0                   # the step it is at
    attempt: int = 0
    child: Attempt | None = None
    state: str = "queued"            # queued, running, success, failed, skipped
    attempts: list[Attempt] = field(default_factory=list)
    not_before: float = 0.0

    @property
    def step(self) -> str:
        return self.spec.steps[self.index]

    @property
    def done(self) -> bool:
        return self.state in {"success", "failed", "skipped"}


def _child(step: str, run_id: str, params: dict, log: Path, timeout: bool) -> None:
    """In the forked process: run one step and leave with its outcome as the exit code, never returning."""
    code = 1
    try:
        fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(fd, 1)
        os.dup2(fd, 2)
        if timeout:
            from include.omono_xero_sync import settings

            settings.REQUEST_TIMEOUT = (5, TIMEOUT_READ_SECONDS)
        from airflow.sdk.exceptions import AirflowSkipException

        from tests.support.steps import run_step

        try:
            result = run_step(step, run_id, params)
            print(f"RESULT {result!r}", flush=True)
            code = 0
        except AirflowSkipException as exc:
            print(f"SKIPPED {exc}", flush=True)
            code = EXIT_SKIPPED
    except BaseException:  # noqa: BLE001 - whatever happens, the task fails as Airflow would see it
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


class Scheduler:
    """Runs one sync: one or more overlapping runs, their retries, and the faults of this sync."""

    def __init__(self, world: World, log_dir: Path, trace: list[str]) -> None:
        self.world, self.log_dir, self.trace = world, log_dir, trace
        self.faults: list[Fault] = []
        self.fired: set[int] = set()
        self.revoked = False
        self.stopped_pid: int | None = None

    # -- entry point -------------------------------------------------------------------------------------
    def sync(self, specs: list[RunSpec], faults: list[Fault],
             during: list[tuple[str, Callable[[], str | None]]] | None = None) -> list[Run]:
        """`during`: (step, action) pairs, each action done once as the first run's step starts: what people do
        in Omono and in Xero while the sync is running."""
        self.during = list(during or [])
        self.faults, self.fired, self.revoked = faults, set(), False
        self.done: Counter = Counter()
        runs = [Run(spec) for spec in specs]
        self.first_seq = self.world.last_seq()
        self._sync_wide(on=True)
        try:
            self._loop(runs)
        finally:
            self._sync_wide(on=False)
        return runs

    def _loop(self, runs: list[Run]) -> None:
        while not all(r.done for r in runs):
            for run in runs:
                if not run.done and run.child is None and self._may_start(run, runs):
                    self._start(run)
            for run in runs:
                if run.child is not None:
                    self._reap(run)
            self._tick(runs)
            time.sleep(0.02)

    def _may_start(self, run: Run, runs: list[Run]) -> bool:
        if run.state == "queued" and run.spec.after:
            other = next(r for r in runs if r.spec.run_id == run.spec.after[0])
            if not other.done and other.step != run.spec.after[1] and \
                    other.spec.steps.index(run.spec.after[1]) > other.index:
                return False
        if time.monotonic() < run.not_before:
            return False
        return not (run.attempt > 0 and self.world.in_flight(self.first_seq) > 0)

    def struck(self) -> Counter:
        """The faults of the last sync that actually struck, by kind, from what the emulator logged and what was
        done to the task processes (a fault whose step was never reached, or that met no call, did not)."""
        found = Counter(self.done)
        log = self.world.requests_since(self.first_seq)
        kinds = {f.kind for f in self.faults}
        for kind, logged in LOGGED_AS.items():
            if kind in kinds:
                found[kind] += sum(1 for r in log if (r["fault"] or "").startswith(logged))
        if "token_expiry" in kinds:
            found["token_expiry"] += any(r["status"] == 401 for r in log)
        if "rate_limit" in kinds:
            found["rate_limit"] += sum(1 for r in log if r["status"] == 429)
        if "budget" in kinds:
            found["budget"] += 1
        return +found

    # -- attempts ----------------------------------------------------------------------------------------
    def _start(self, run: Run) -> None:
        run.state = "running"
        step = run.step
        first = run.attempt == 0
        timeout = False
        if first:
            timeout = self._arm(run, step)
            if run.spec.after is None:
                self._meanwhile(step)
        seq = self.world.last_seq()
        log = self.log_dir / f"{run.spec.run_id}.{step}.{run.attempt + 1}.log"
        pid = os.fork()
        if pid == 0:
            _child(step, run.spec.run_id, run.spec.params, log, timeout)
        run.child = Attempt(step, run.attempt + 1, pid, time.monotonic(), seq, log)

    def _reap(self, run: Run) -> None:
        attempt = run.child
        assert attempt is not None
        pid, status = os.waitpid(attempt.pid, os.WNOHANG)
        if pid == 0:
            if time.monotonic() - attempt.started > STEP_TIMEOUT_SECONDS:
                os.kill(attempt.pid, signal.SIGKILL)
                self.trace.append(f"    !! {run.spec.run_id} {attempt.step} hung for {STEP_TIMEOUT_SECONDS} s: killed")
                attempt.exit = "hung"
            return
        code = os.waitstatus_to_exitcode(status)
        attempt.exit = attempt.exit or {0: "ok", EXIT_SKIPPED: "skipped"}.get(code, "killed" if code < 0 else "failed")
        run.attempts.append(attempt)
        run.child = None
        seconds = time.monotonic() - attempt.started
        self.trace.append(f"    {run.spec.run_id} {attempt.step} attempt {attempt.number}: {attempt.exit} "
                          f"({seconds:.1f} s)"
                          + (f" ({_last_error(attempt.log)})" if attempt.exit == "failed" else ""))
        if attempt.exit == "ok":
            run.index, run.attempt = run.index + 1, 0
            if run.index == len(run.spec.steps):
                run.state = "success"
        elif attempt.exit == "skipped":
            run.state = "skipped"
        elif run.attempt + 1 < ATTEMPTS:
            run.attempt += 1
            run.not_before = time.monotonic() + 0.2
        else:
            run.state = "failed"

    # -- faults ------------------------------------------------------------------------------------------
    def _sync_wide(self, *, on: bool) -> None:
        wide = [f for f in self.faults if f.sync_wide]
        if on:
            for fault in wide:
                self.world.admin.put("/limits", json=fault.limits()).raise_for_status()
                if fault.kind == "rate_limit":
                    self.world.admin.post("/clock", json={"speed": fault.params["speed"]}).raise_for_status()
            return
        self.world.calm()
        if self.revoked:
            self.world.reconnect()
            self.trace.append("    (the user reconnected Xero after the revocation)")

    def _arm(self, run: Run, step: str) -> bool:
        """Switch on this step's faults as its first attempt starts; True when the attempt must time out."""
        timeout = False
        for i, fault in enumerate(self.faults):
            if i in self.fired or fault.sync_wide or fault.step != step or fault.kind in {"kill", "pg_drop"}:
                continue          # those are fired by _tick while the attempt runs
            self._switch_on(fault)
            if fault.kind != "kill_after_commit":   # its kill comes once Xero has committed the held write
                self.fired.add(i)
            timeout = timeout or fault.kind == "timeout"
        return timeout

    def _meanwhile(self, step: str) -> None:
        for pair in [p for p in self.during if p[0] == step]:
            self.during.remove(pair)
            self.trace.append(f"    (meanwhile, as {step} starts: {pair[1]() or 'nothing to do'})")

    def _switch_on(self, fault: Fault) -> None:
        for spec in fault.emulator_faults():
            self.world.admin.post("/faults", json={k: v for k, v in spec.items() if v is not None}).raise_for_status()
        if fault.kind == "token_expiry":
            self.world.admin.post("/clock", json={"advance_seconds": 1801}).raise_for_status()
        elif fault.kind == "revoke":
            self._revoke()
            self.done["revoke"] += 1

    def _revoke(self) -> None:
        from include.omono_xero_sync.xero_api import TokenStore
        from include.omono_xero_sync.xero_hook import XeroHook

        xero = XeroHook().settings()
        with psycopg.connect(self.world.db_url, row_factory=psycopg.rows.dict_row) as conn, conn.transaction():
            token = TokenStore(conn, xero)._locked_token(conn)
        import httpx

        httpx.post(f"{self.world.emulator_url}/connect/revocation", data={
            "token": token["refresh_token"], "client_id": xero.client_id, "client_secret": xero.client_secret})
        self.revoked = True

    def _tick(self, runs: list[Run]) -> None:
        for run in runs:
            attempt = run.child
            if attempt is None or attempt.number != 1:
                continue
            for i, fault in enumerate(self.faults):
                if i in self.fired or fault.step != attempt.step:
                    continue
                if self._fire(fault, attempt):
                    self.fired.add(i)

    def _fire(self, fault: Fault, attempt: Attempt) -> bool:
        elapsed_ms = (time.monotonic() - attempt.started) * 1000
        if fault.kind == "pg_drop" and elapsed_ms >= fault.params["ms"]:
            self._drop_connections()
            self.done["pg_drop"] += 1
            return True
        if fault.kind == "kill":
            answered = [r for r in self.world.requests_since(attempt.first_seq) if r["status"]]
            if len(answered) >= fault.params["after"]:
                _kill(attempt.pid)
                attempt.exit = "killed"
                self.done["kill"] += 1
                return True
        if fault.kind == "kill_after_commit":
            return self._kill_after_commit(attempt)
        return False

    def _kill_after_commit(self, attempt: Attempt) -> bool:
        import re

        rows = [r for r in self.world.requests_since(attempt.first_seq)
                if r["method"] in {"POST", "PUT"} and re.search(WRITE_PATH, r["path"], re.IGNORECASE)]
        waiting = [r for r in rows if r["fault"] == "latency"]
        if not waiting:
            return False
        held = waiting[0]
        if self.stopped_pid != attempt.pid:
            _signal(attempt.pid, signal.SIGSTOP)          # the task waits for Xero's answer, frozen
            self.stopped_pid = attempt.pid
        if not held["status"]:
            return False                                  # Xero has not committed yet
        _kill(attempt.pid)                                # answered into a socket nobody will read
        self.stopped_pid = None
        attempt.exit = "killed"
        self.done["kill_after_commit"] += 1
        return True

    def _drop_connections(self) -> None:
        with psycopg.connect(self.world.db_url, autocommit=True) as conn:
            dropped = conn.execute(
                "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = "
                "current_database() AND application_name LIKE 'omono-xero-sync%%' AND pid <> pg_backend_pid()) t"
            ).fetchone()[0]
        self.trace.append(f"    (dropped {dropped} PostgreSQL connection(s) of the sync)")


def _signal(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)


def _kill(pid: int) -> None:
    _signal(pid, signal.SIGKILL)


def _last_error(log: Path) -> str:
    try:
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    errors = [line for line in lines if not line.startswith(("File ", "^", "~")) and ("Error" in line or
                                                                                     "Exception" in line)]
    return (errors[-1] if errors else lines[-1] if lines else "no output")[:240]


def dag_test(dag: Any, params: dict[str, Any]) -> str:
    """One sync through real Airflow: `dag.test()` in this process, the same DAG file the scheduler runs."""
    from tests.support.pipeline_env import run_sync

    run = run_sync(dag, **params)
    failed = sorted(t for t, s in run.task_states.items() if s not in {"success", "skipped"})
    return f"{run.state}" + (f" (not successful: {', '.join(failed)})" if failed else "")
