"""`make bench`: how fast the pieces are on this machine, printed as figures (never asserted in tests).

Measures demo-data generation, then one full sync (`dag.test()`, in-process) of BENCH_DOCS documents against
the emulator with its limits off and the client's pacing lifted, so the figures are the sync's own cost; then
a second, no-change run. Per-task durations come from Airflow's task instances, API calls from the emulator's
request log. With Xero's real limits (60 calls a minute) the call count, not these figures, bounds a run."""

from __future__ import annotations

import os
import sys
import time
from collections import Counter
from collections.abc import Generator
from contextlib import contextmanager

import httpx
import psycopg

from include.commands import demo

DOCS = int(os.environ.get("BENCH_DOCS", "2000"))
LOG = demo.RUN / "bench-airflow.log"


@contextmanager
def airflow_output_to_file() -> Generator[None, None, None]:
    """Airflow's task logs go to .run/bench-airflow.log so that only the figures reach the terminal."""
    sys.stdout.flush()
    saved = os.dup(1), os.dup(2)
    with open(LOG, "a") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            sys.stdout.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)


def main() -> None:
    demo.RUN.mkdir(exist_ok=True)
    url = demo.fresh_database(demo.postgres_admin_url(), "omono_xero_bench")
    emulator, emulator_url = demo.start_emulator(demo._free_port(8766), extra=("--limits", "off"))
    try:
        os.environ.update(demo.airflow_env(url, emulator_url))
        os.environ["OMONO_XERO_CALLS_PER_MINUTE"] = "1000000"
        from include.commands import connect, demo_data
        from include.omono_xero_sync import db

        with psycopg.connect(url) as conn:
            db.install_omono_schema(conn)
            db.migrate(conn)
            started = time.perf_counter()
            counts = demo_data.generate(conn, documents=DOCS, bad_share=0.05)
            generated = time.perf_counter() - started
            demo_data.apply_demo_mappings(conn)
        import subprocess

        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True)
        connect.connect()
        from airflow.dag_processing.dagbag import DagBag

        dag = DagBag(dag_folder=str(demo.ROOT / "dags")).get_dag("omono_xero_sync")
        records = sum(counts.values())
        print(f"\nBenchmark: {DOCS} documents ({records} records incl. companies) on {os.cpu_count()} cores\n")
        print(f"demo data generated        {generated:8.2f} s   {DOCS / generated:10.0f} documents/s")
        first_calls = 0
        for label in ("first sync (everything)", "second sync (no changes)"):
            before = len(httpx.get(f"{emulator_url}/_emulator/requests").json()["requests"])
            started = time.perf_counter()
            with airflow_output_to_file():
                run = dag.test(run_conf={"dry_run": False, "full_resync": False, "date_from": None, "date_to": None})
            wall = time.perf_counter() - started
            calls = httpx.get(f"{emulator_url}/_emulator/requests").json()["requests"][before:]
            by_method = Counter(c["method"] for c in calls if c["path"].startswith("/api.xro"))
            first_calls = first_calls or sum(by_method.values())
            print(f"\n{label}: {wall:.2f} s wall, run {run.state}, "
                  f"{records / wall:.0f} records/s, API calls {dict(by_method)}")
            for ti in sorted(run.get_task_instances(), key=lambda t: t.start_date or 0):
                if ti.duration is not None:
                    print(f"  {ti.task_id:26} {ti.duration:8.2f} s")
        with psycopg.connect(url) as conn:
            held = conn.execute("SELECT count(*) FROM xero_sync.record_state WHERE status = 'held'").fetchone()[0]
        print(f"\nheld for data problems: {held} records ({held / records:.1%}); at Xero's 60 calls a minute "
              f"the first sync's {first_calls} calls alone take {first_calls / 60:.1f} minutes "
              f"(Airflow's log: {LOG.relative_to(demo.ROOT)})")
    finally:
        emulator.terminate()
        emulator.wait(10)


if __name__ == "__main__":
    main()
