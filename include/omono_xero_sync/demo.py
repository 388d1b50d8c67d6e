"""`make demo`: the main job on embedded defaults, on a fresh machine.

1. PostgreSQL: the one named by OMONO_XERO_PG_URL, else the local one at 127.0.0.1:5432, else an embedded
   PostgreSQL 16 (the `pgserver` wheel) under .run/pgdata.
2. A fresh demo database `omono_xero_demo` with the Omono schema and demo data (a realistic share of bad records)
   and the mappings a user would set up.
3. The local Xero emulator as its own process (organisations kept in .run/demo-xero), connected through the
   Airflow connection `xero_default` exactly as a real organisation would be (consent, code, token).
4. One sync run as Sync Now would start it (`airflow dags test`), then a readable summary per entity.
Airflow's own log of the run is kept in .run/demo-airflow.log."""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parents[2]
RUN = ROOT / ".run"
DEMO_DB = "omono_xero_demo"
DEMO_CLIENT = ("OMONO-DEMO-APP", "emulator-demo-secret")      # the emulator's published demo app
DEMO_TENANT = "7f9b8c3e-2a4d-4e6b-9f1a-3c5d7e9f0b21"         # Omono Demo Wholesale Ltd (UK)


def _say(text: str) -> None:
    print(text, flush=True)


def postgres_admin_url() -> str:
    if os.environ.get("OMONO_XERO_PG_URL"):
        return os.environ["OMONO_XERO_PG_URL"]
    local = "postgresql://postgres@127.0.0.1:5432/postgres"
    try:
        psycopg.connect(local, connect_timeout=3).close()
        return local
    except psycopg.OperationalError:
        pass
    import pgserver

    _say("No PostgreSQL answers at 127.0.0.1:5432: starting an embedded PostgreSQL 16 in .run/pgdata")
    server = pgserver.get_server(RUN / "pgdata", cleanup_mode=None)
    return server.get_uri()


def fresh_database(admin_url: str, name: str = DEMO_DB) -> str:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {name}")
    base, _, _ = admin_url.rpartition("/")
    query = admin_url.split("?", 1)[1] if "?" in admin_url else ""
    return f"{base}/{name}" + (f"?{query}" if query else "")


def _free_port(preferred: int) -> int:
    with socket.socket() as s:
        if s.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(port: int, keep: bool = False, extra: tuple[str, ...] = ()) -> tuple[subprocess.Popen, str]:
    data = RUN / "demo-xero"
    if data.exists() and not keep:
        for f in data.iterdir():
            f.unlink()
    log = open(RUN / "demo-xero.log", "w")  # noqa: SIM115 - lives as long as the process
    proc = subprocess.Popen([sys.executable, "-m", "include.xero_emulator", "--port", str(port), "--data-dir",
                             str(data), *extra], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    url = f"http://127.0.0.1:{port}"
    import httpx

    for _ in range(200):
        try:
            if httpx.get(f"{url}/_emulator/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.terminate()
    raise SystemExit("The Xero emulator did not start; see .run/demo-xero.log")


def airflow_env(db_url: str, emulator_url: str) -> dict[str, str]:
    info = psycopg.conninfo.conninfo_to_dict(db_url)
    omono = {"conn_type": "postgres", "host": info.get("host", "127.0.0.1"), "port": int(info.get("port") or 5432),
             "login": info.get("user", "postgres"), "password": info.get("password"), "schema": info["dbname"]}
    xero = {"conn_type": "generic", "login": DEMO_CLIENT[0], "password": DEMO_CLIENT[1],
            "extra": {"tenant_id": DEMO_TENANT, "api_url": f"{emulator_url}/api.xro/2.0",
                      "identity_url": emulator_url, "redirect_uri": "http://127.0.0.1:8765/callback"}}
    return {"AIRFLOW_HOME": str(RUN / "airflow"), "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__DAGS_FOLDER": str(ROOT / "dags"), "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
            "AIRFLOW_CONN_OMONO_DB": json.dumps(omono), "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(xero),
            "OMONO_XERO_TASK_RETRIES": "0", "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make demo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--documents", type=int, default=60, help="how many Omono documents to generate")
    parser.add_argument("--port", type=int, default=8765, help="emulator port (another is used if taken)")
    parser.add_argument("--serve", action="store_true",
                        help="open the Airflow UI (airflow standalone) on the demo's database and emulator instead")
    args = parser.parse_args(argv)
    RUN.mkdir(exist_ok=True)
    if args.serve:
        return serve(args.port)

    _say("1/4 PostgreSQL")
    db_url = fresh_database(postgres_admin_url())
    _say("2/4 Xero emulator")
    emulator, emulator_url = start_emulator(_free_port(args.port))
    try:
        env = airflow_env(db_url, emulator_url)
        os.environ.update(env)
        from include.omono_xero_sync import connect, db, demo_data

        _say(f"    {emulator_url} (organisation 'Omono Demo Wholesale Ltd')")
        _say("3/4 Omono demo data, mappings, Airflow metadata DB, Xero connection")
        with psycopg.connect(db_url) as conn:
            db.install_omono_schema(conn)
            db.migrate(conn)
            last_month = (date.today().replace(day=1) - timedelta(days=1)).replace(day=1)
            counts = demo_data.generate(conn, documents=args.documents, start=last_month)   # reconciled by default
            demo_data.apply_demo_mappings(conn)
        _say("    " + ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in counts.items()))
        subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                       env=os.environ)
        connect.connect()
        _say("4/4 One sync run, as Sync Now starts it (airflow dags test omono_xero_sync)")
        started = time.monotonic()
        with open(RUN / "demo-airflow.log", "w") as log:
            result = subprocess.run([sys.executable, "-m", "airflow", "dags", "test", "omono_xero_sync"],
                                    stdout=log, stderr=subprocess.STDOUT, env=os.environ, cwd=ROOT)
        elapsed = time.monotonic() - started
        import httpx

        log_rows = httpx.get(f"{emulator_url}/_emulator/requests", params={"tenant": DEMO_TENANT}).json()["requests"]
        return report(db_url, elapsed, result.returncode, calls=len(log_rows))
    finally:
        emulator.terminate()
        emulator.wait(10)


def serve(port: int) -> int:
    """`make airflow`: Airflow's UI on http://localhost:8080 with the DAG, reusing the demo's data if present."""
    admin_url = postgres_admin_url()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone()
    if not exists:
        _say("No demo database yet: running `make demo` first.")
        main([])
    base, _, _ = admin_url.rpartition("/")
    db_url = f"{base}/{DEMO_DB}"
    emulator, emulator_url = start_emulator(_free_port(port), keep=True)
    os.environ.update(airflow_env(db_url, emulator_url))
    os.environ["OMONO_XERO_TASK_RETRIES"] = "2"
    os.environ["PATH"] = f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"   # standalone runs `airflow …`
    _say(f"Xero emulator: {emulator_url}. Airflow UI: http://localhost:8080 (user 'admin'; the password is in "
         f"{RUN / 'airflow' / 'simple_auth_manager_passwords.json.generated'}). Ctrl-C stops both.")
    try:
        return subprocess.run([sys.executable, "-m", "airflow", "standalone"], env=os.environ, cwd=ROOT).returncode
    except KeyboardInterrupt:
        return 0
    finally:
        emulator.terminate()
        emulator.wait(10)


def report(db_url: str, elapsed: float, returncode: int, calls: int) -> int:
    from psycopg.rows import dict_row

    from include.omono_xero_sync import reference
    from include.omono_xero_sync.pipeline import render_summary
    from include.omono_xero_sync.sync_log import RunContext

    with psycopg.connect(db_url, row_factory=dict_row) as conn:
        run = conn.execute("SELECT dag_id, run_id FROM xero_sync.sync_log ORDER BY id DESC LIMIT 1").fetchone()
        if run is None:
            _say("The run logged no records; see .run/demo-airflow.log")
            return 1
        checks = reference.readiness(conn, conn, reference.load(conn))    # Omono and state share the demo DB
        _say("\nReadiness checks")
        for c in checks:
            _say(f"  {c.line()}")
        _say("")
        _say(render_summary(conn, RunContext(run["dag_id"], run["run_id"], "demo"), calls=calls))
    _say(f"\nThe run took {elapsed:.1f} s. Airflow's log of it: .run/demo-airflow.log")
    if returncode:
        _say("Airflow marks this run red because records need attention (the demo data holds some on purpose); "
             "everything else reached Xero once.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
