"""One process that runs sync runs of the real DAG (`dag.test()`, tasks in this process) and reports, as one JSON
line on stdout, what the bench needs of each: wall and CPU time, the emulator's CPU, the API calls with their
times, each task's window, the SQL statements issued (with their times) and the peak memory of this process.

A process of its own per size, so that its peak RSS is the sync's, not the data generator's or another size's.
Started by `tests/bench/bench_sync.py`, with Airflow's environment and the emulator's address already set."""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import psycopg

STATEMENTS: list[tuple[float, bool]] = []        # (when, touches the token store)
MEMORY: MemorySampler
_counting = [True]


def count_statements() -> None:
    """Every statement the pipeline sends to PostgreSQL, by wrapping psycopg's cursor (one entry per round trip
    of execute/executemany/copy); the bench's own queries are not counted."""
    for name in ("execute", "executemany", "copy"):
        original = getattr(psycopg.Cursor, name)

        def counted(self: Any, query: Any, *args: Any, _original: Any = original, **kwargs: Any) -> Any:
            if _counting[0]:
                STATEMENTS.append((time.time(), "oauth_tokens" in str(query)))
            return _original(self, query, *args, **kwargs)

        setattr(psycopg.Cursor, name, counted)


@contextmanager
def quiet(log: Path) -> Generator[None, None, None]:
    """Airflow's task logs go to a file, so that stdout carries only the report."""
    sys.stdout.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "a") as out:
        os.dup2(out.fileno(), 1)
        os.dup2(out.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


class MemorySampler:
    """This process's resident memory every 0.1 s, so the bench can say which task holds the peak."""

    def __init__(self) -> None:
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self) -> None:
        while not self._stop.wait(0.1):
            rss = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith("VmRSS"))
            self.samples.append((time.time(), int(rss.split()[1]) / 1024))

    def peak_by_task(self, tasks: list[dict]) -> dict[str, float]:
        return {t["task_id"]: max((mb for at, mb in self.samples if t["start"] <= at <= t["end"]), default=0.0)
                for t in tasks}


def emulator_cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def table_rows(url: str) -> dict[str, int]:
    _counting[0] = False
    try:
        with psycopg.connect(url) as conn:
            return {t: conn.execute(f"SELECT count(*) FROM xero_sync.{t}").fetchone()[0]
                    for t in ("sync_log", "run_queue")}
    finally:
        _counting[0] = True


def one_run(dag: Any, label: str, args: argparse.Namespace) -> dict[str, Any]:
    calls_url = f"{args.emulator}/_emulator/requests"
    seq = max((r["seq"] for r in httpx.get(calls_url, timeout=120).json()["requests"][-1:]), default=0)
    rows_before, statements_before = table_rows(args.db), len(STATEMENTS)
    usage, emu, started = resource.getrusage(resource.RUSAGE_SELF), emulator_cpu(args.emulator_pid), time.time()
    with quiet(args.log):
        run = dag.test(run_conf={"dry_run": False, "full_resync": False, "date_from": None, "date_to": None})
    wall = time.time() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    calls = [{k: c[k] for k in ("method", "path", "query", "status", "at_ms")}
             for c in httpx.get(calls_url, params={"since": seq}, timeout=300).json()["requests"]
             if c["path"].startswith("/api.xro")]
    tasks = [{"task_id": ti.task_id, "state": str(ti.state), "start": ti.start_date.timestamp(),
              "end": ti.end_date.timestamp()} for ti in run.get_task_instances() if ti.start_date and ti.end_date]
    return {
        "label": label, "state": str(run.state), "wall_s": wall, "peak_rss_mb_by_task": MEMORY.peak_by_task(tasks),
        "cpu_s": (after.ru_utime + after.ru_stime) - (usage.ru_utime + usage.ru_stime),
        "emulator_cpu_s": emulator_cpu(args.emulator_pid) - emu,
        "peak_rss_mb": max(MEMORY.peak_by_task(tasks).values(), default=0.0),   # not ru_maxrss: reading the
        # emulator's request log afterwards (100k+ calls as JSON) raises this process's lifetime peak itself
        "rows_added": {t: n - rows_before[t] for t, n in table_rows(args.db).items()},
        "rows_after": table_rows(args.db),
        "calls": calls,
        "statements": STATEMENTS[statements_before:],
        "tasks": tasks,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--db", required=True)
    parser.add_argument("--emulator", required=True)
    parser.add_argument("--emulator-pid", type=int, required=True)
    parser.add_argument("--runs", default="first,unchanged")
    parser.add_argument("--log", type=Path, required=True)
    parser.add_argument("--days", type=int, default=0, help="run once a day, the emulator's clock a day on between "
                        "runs, until a run writes nothing (at most this many days); instead of --runs")
    args = parser.parse_args()
    from airflow.dag_processing.dagbag import DagBag

    from include.commands import connect

    with quiet(args.log):
        connect.connect()
        dag = DagBag(dag_folder=os.environ["AIRFLOW__CORE__DAGS_FOLDER"]).get_dag("omono_xero_sync")
    count_statements()
    global MEMORY
    MEMORY = MemorySampler()
    report = day_by_day(dag, args) if args.days else [one_run(dag, label, args) for label in args.runs.split(",")]
    print(json.dumps(report))


def day_by_day(dag: Any, args: argparse.Namespace) -> list[dict[str, Any]]:
    """A backlog bigger than a day's budget: each day's run spends what Xero allows, then the emulator's clock moves
    on a day (a new budget; the access token has expired meanwhile, so each day also refreshes it). Stops after a
    day whose run wrote nothing: all that could go has gone."""
    days: list[dict[str, Any]] = []
    for day in range(1, args.days + 1):
        days.append(one_run(dag, f"day {day}", args))
        for call in days[-1]["calls"]:          # the log's times are the emulator's clock: back to real time
            call["at_ms"] -= (day - 1) * 86_400_000
        if not any(c["method"] in {"POST", "PUT"} for c in days[-1]["calls"]):
            break
        httpx.post(f"{args.emulator}/_emulator/clock", json={"advance_seconds": 86_400}, timeout=60).raise_for_status()
    return days


if __name__ == "__main__":
    main()
