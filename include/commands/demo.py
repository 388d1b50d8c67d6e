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
import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

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
    return database_url(admin_url, name)


def _free_port(preferred: int | None = None) -> int:
    """The preferred port if nothing listens there now, else one the system picks."""
    with socket.socket() as s:
        if preferred and s.connect_ex(("127.0.0.1", preferred)) != 0:
            return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_emulator(port: int, keep: bool = False, extra: tuple[str, ...] = (), in_memory: bool = False
                   ) -> tuple[subprocess.Popen, str]:
    """The emulator in its own process, its organisations kept in .run/demo-xero (or only in memory). A port
    taken meanwhile (another demo or bench starting beside this one) is given up for one the system picks: the
    answer must come from this process, never from another emulator that happens to listen there."""
    data = RUN / "demo-xero"
    if data.exists() and not keep:
        for f in data.iterdir():
            f.unlink()
    for candidate in (port, _free_port()):
        proc = _spawn_emulator(candidate, () if in_memory else ("--data-dir", str(data)), extra)
        if _emulator_answers(proc, f"http://127.0.0.1:{candidate}"):
            return proc, f"http://127.0.0.1:{candidate}"
    raise SystemExit("The Xero emulator did not start; see .run/demo-xero.log")


def _spawn_emulator(port: int, where: tuple[str, ...], extra: tuple[str, ...]) -> subprocess.Popen:
    RUN.mkdir(parents=True, exist_ok=True)
    log = open(RUN / "demo-xero.log", "w")  # noqa: SIM115 - lives as long as the process
    return subprocess.Popen([sys.executable, "-m", "include.xero_emulator", "--port", str(port), *where, *extra],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT)})


def _emulator_answers(proc: subprocess.Popen, url: str) -> bool:
    """Whether this emulator process (by its pid) answers at url; it is stopped if it does not within 20 s."""
    import httpx

    for _ in range(200):
        if proc.poll() is not None:
            return False
        try:
            health = httpx.get(f"{url}/_emulator/health", timeout=1)
            if health.status_code == 200 and health.json().get("pid") == proc.pid:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    proc.terminate()
    return False


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
                        help="run Airflow (UI, scheduler, dag-processor) on the demo's database and emulator instead")
    parser.add_argument("--airflow-port", type=int, default=8080,
                        help="the Airflow UI's port with --serve (another is used if taken)")
    args = parser.parse_args(argv)
    RUN.mkdir(exist_ok=True)
    if args.serve:
        return serve(args.port, args.airflow_port)

    _say("1/4 PostgreSQL")
    db_url = fresh_database(postgres_admin_url())
    _say("2/4 Xero emulator")
    emulator, emulator_url = start_emulator(_free_port(args.port))
    try:
        env = airflow_env(db_url, emulator_url)
        os.environ.update(env)
        from include.commands import connect, demo_data
        from include.omono_xero_sync import db

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


AIRFLOW_DB = "omono_xero_airflow"                # Airflow's metadata, on the demo's PostgreSQL server
COMPONENTS = ("api-server", "scheduler", "dag-processor")
XERO_POOL = os.environ.get("OMONO_XERO_POOL", "omono_xero_api")   # the DAG's Xero tasks share it (one slot)
STOP_GRACE_SECONDS = 10


def database_url(admin_url: str, name: str, scheme: str = "postgresql") -> str:
    """The URL of database `name` on the server of `admin_url` (keeping its query, e.g. a socket directory)."""
    address, _, query = admin_url.partition("?")
    server = address.rpartition("/")[0].split("://", 1)[1]
    return f"{scheme}://{server}/{name}" + (f"?{query}" if query else "")


def serve_env(db_url: str, emulator_url: str, metadata_url: str, port: int) -> dict[str, str]:
    """`make airflow`'s Airflow: metadata in PostgreSQL (SQLite left manual triggers queued with the DAG paused),
    a LocalExecutor sized for a small machine, the UI on `port`, Xero's consent coming back to /xero/callback."""
    env = airflow_env(db_url, emulator_url)
    xero = json.loads(env["AIRFLOW_CONN_XERO_DEFAULT"])
    del xero["extra"]["redirect_uri"]          # the UI's Connect to Xero comes back to Airflow's /xero/callback
    secret = RUN / "airflow" / "jwt_secret"
    if not secret.exists():
        secret.parent.mkdir(parents=True, exist_ok=True)
        secret.write_text(secrets.token_urlsafe(48))
    return {**env, "AIRFLOW_CONN_XERO_DEFAULT": json.dumps(xero), "OMONO_XERO_TASK_RETRIES": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url, "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": os.environ.get("AIRFLOW__CORE__PARALLELISM", "2"),
            "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
            "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__BASE_URL": f"http://localhost:{port}",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://localhost:{port}/execution/",
            "AIRFLOW__API_AUTH__JWT_SECRET": secret.read_text(),
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}"}


def _ensure_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as admin:
        if not admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            admin.execute(f"CREATE DATABASE {name}")


def serve(emulator_port: int, port: int) -> int:
    """`make airflow`: Airflow's UI with the DAG on the demo's database and emulator (running `make demo` first when
    there is no demo database). Ctrl-C or SIGTERM stops everything it started."""
    admin_url = postgres_admin_url()
    with psycopg.connect(admin_url, autocommit=True) as admin:
        exists = admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DEMO_DB,)).fetchone()
    if not exists:
        _say("No demo database yet: running `make demo` first.")
        main([])
    _ensure_database(admin_url, AIRFLOW_DB)
    port = _free_port(port)
    emulator, emulator_url = start_emulator(_free_port(emulator_port), keep=True,
                                            extra=("--fixture", str(_emulator_fixture(port))))
    env = serve_env(database_url(admin_url, DEMO_DB), emulator_url,
                    database_url(admin_url, AIRFLOW_DB, "postgresql+psycopg2"), port)
    try:
        _say("Airflow: migrating its metadata database (PostgreSQL) …")
        for command in (["db", "migrate"], ["pools", "set", XERO_POOL, "1", "Xero API calls of omono-xero-sync"]):
            subprocess.run([sys.executable, "-m", "airflow", *command], env=env, cwd=ROOT, check=True,
                           capture_output=True)
        return run_components({name: [sys.executable, "-m", "airflow", name] for name in COMPONENTS}, env,
                              ready=lambda: _banner(port, emulator_url))
    finally:
        stop_tree([emulator])


def _emulator_fixture(port: int) -> Path:
    """The emulator's demo organisations and apps, with this Airflow's /xero/callback registered as a redirect URI
    of the demo Xero app (as a user registers theirs at developer.xero.com)."""
    from include.xero_emulator.config import DEFAULT_FIXTURE

    fixture = json.loads(DEFAULT_FIXTURE.read_text())
    for client in fixture["clients"]:
        if client["client_id"] == DEMO_CLIENT[0]:
            client["redirect_uris"].append(f"http://localhost:{port}/xero/callback")
    path = RUN / "demo-xero-fixture.json"
    path.write_text(json.dumps(fixture))
    return path


def _banner(port: int, emulator_url: str) -> None:
    url = f"http://localhost:{port}"
    passwords = RUN / "airflow" / "simple_auth_manager_passwords.json.generated"
    _say(f"\nAirflow is ready: {url}  (user 'admin'; the password is in {passwords})\n"
         f"The Xero sync pages: {url}/plugin/xero-sync  ·  Xero emulator: {emulator_url}\n"
         "Ctrl-C (or SIGTERM) stops Airflow and the emulator. Logs: .run/airflow-*.log\n")


def run_components(commands: dict[str, list[str]], env: dict[str, str], ready: Any = None) -> int:
    """Start each command in a session of its own (so a terminal's Ctrl-C reaches only this supervisor), call
    `ready` once the api-server answers, and stop every process they started, grandchildren included, when one of
    them exits or this process gets SIGINT or SIGTERM. Returns 0 after a requested stop."""
    procs = []
    stopping = {"signal": None}

    def stop(signum: int, _frame: object) -> None:
        stopping["signal"] = signum

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for name, command in commands.items():
            log = open(RUN / f"airflow-{name}.log", "w")  # noqa: SIM115 - lives as long as the process
            procs.append(subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True))
        announced = ready is None
        while stopping["signal"] is None and all(p.poll() is None for p in procs):
            if not announced and _answers(env.get("AIRFLOW__API__BASE_URL", "")):
                ready()
                announced = True
            time.sleep(0.5)
    finally:
        stop_tree(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if stopping["signal"] is None:
        _say("An Airflow component stopped on its own (see .run/airflow-*.log); everything else was stopped too.")
        return 1
    return 0


def _answers(base_url: str) -> bool:
    import httpx

    try:
        return httpx.get(f"{base_url}/api/v2/monitor/health", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def stop_tree(procs: list[subprocess.Popen], grace: float | None = None) -> None:
    """SIGTERM every process in these trees (LocalExecutor workers included), then SIGKILL what is left."""
    import psutil

    grace = STOP_GRACE_SECONDS if grace is None else grace
    tree = []
    for p in procs:
        try:
            root = psutil.Process(p.pid)
            tree += [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            continue
    for p in tree:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.terminate()
    _, alive = psutil.wait_procs(tree, timeout=grace)
    for p in alive:
        with contextlib.suppress(psutil.NoSuchProcess):
            p.kill()
    psutil.wait_procs(alive, timeout=grace)
    for p in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            p.wait(1)


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
