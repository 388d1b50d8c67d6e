"""`make reconcile [FROM=… TO=…]`: compare Xero with Omono now, outside the DAG's schedule.

With this environment's Airflow connections, or, where none is configured, the demo's database and emulator as
`make demo` left them. Exits 1 when there are differences, so it can gate a month-end script."""

from __future__ import annotations

import argparse
import os
import sys
from datetime import date

from include.commands import demo
from include.omono_xero_sync.sync_log import RunContext


def main(argv: list[str] | None = None) -> None:
    """`make reconcile [FROM=… TO=…]`: reconcile now, with the Airflow connections of this environment (or, where
    none is configured, the demo's database and emulator, as `make demo` left them)."""
    parser = argparse.ArgumentParser(prog="make reconcile", description=main.__doc__)
    parser.add_argument("--from", dest="date_from", default=None, help="first document date (default: last month)")
    parser.add_argument("--to", dest="date_to", default=None, help="last document date (default: today)")
    args = parser.parse_args(argv)
    emulator = None
    if "AIRFLOW_CONN_OMONO_DB" not in os.environ and not os.environ.get("AIRFLOW_HOME"):
        emulator, url = demo.start_emulator(demo._free_port(8765), keep=True)
        base, _, _ = demo.postgres_admin_url().rpartition("/")
        os.environ.update(demo.airflow_env(f"{base}/{demo.DEMO_DB}", url))
        print(f"No Airflow connections configured here: reconciling the demo ({demo.DEMO_DB}, emulator {url}).")
    try:
        from include.omono_xero_sync import pipeline  # after the environment is set: it reads it

        params = {"date_from": args.date_from, "date_to": args.date_to, "reconcile": True}
        run_id = f"reconcile__{date.today().isoformat()}"
        result = pipeline.reconcile(RunContext("omono_xero_sync", run_id, "reconcile", params=params), force=True)
        print(result.get("summary", "Nothing reconciled."))
        sys.exit(1 if result.get("differences") else 0)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(10)


if __name__ == "__main__":
    main(sys.argv[1:])
