"""The real services one history runs on: the Xero emulator in its own process (so a sync step can be forked
and killed without taking the emulator with it), a PostgreSQL database of its own, and the Airflow connection
`xero_default` connected to the emulator's UK demo organisation exactly as `make connect` does it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
from psycopg.rows import dict_row

from tests.support import pipeline_env
from tests.support.xero_sdk import DEMO_CLIENT_ID, UK_TENANT

ROOT = Path(__file__).resolve().parents[2]
ORGANISATION = "Omono Demo Wholesale Ltd"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def emulator_process() -> Generator[str, None, None]:
    """`python -m include.xero_emulator` on a free loopback port, limits off (faults switch them on)."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "include.xero_emulator", "--port", str(port), "--limits", "off"],
                            cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)},
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_healthy(url, proc)
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_healthy(url: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the Xero emulator exited at start")
        try:
            if httpx.get(f"{url}/_emulator/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError("the Xero emulator did not start within 60 s")


@dataclass
class World:
    """Handles on the services of one history; `fresh()` puts them back to an empty business."""

    emulator_url: str
    db_url: str

    def __post_init__(self) -> None:
        self.admin = httpx.Client(base_url=f"{self.emulator_url}/_emulator", timeout=60)
        self.tenant = UK_TENANT
        self.client_id = DEMO_CLIENT_ID
        self._seq = 0

    def fresh(self) -> None:
        """Empty Omono and integration schemas, the emulator back to its fixture, `xero_default` connected."""
        self.admin.post("/reset").raise_for_status()
        self._seq = 0
        pipeline_env.reset_schemas(self.db_url)
        self.reconnect()

    def reconnect(self) -> None:
        """What a user does after Xero revoked the connection: consent again and store the new token set."""
        pipeline_env.XeroOrg(self.emulator_url).connect(self.db_url)

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.db_url, row_factory=dict_row, application_name="history-oracle")

    # -- the emulator's admin API ---------------------------------------------------------------------------
    def objects(self, kind: str) -> list[dict]:
        return self.admin.get(f"/tenants/{self.tenant}/{kind}").json()[kind]

    def post(self, path: str, body: dict | None = None) -> httpx.Response:
        return self.admin.post(f"/tenants/{self.tenant}/{path}", json=body or {})

    def requests_since(self, seq: int) -> list[dict]:
        return self.admin.get("/requests", params={"since": seq}).json()["requests"]

    def last_seq(self) -> int:
        rows = self.admin.get("/requests", params={"since": self._seq}).json()["requests"]
        self._seq = rows[-1]["seq"] if rows else self._seq
        return self._seq

    def in_flight(self, since: int = 0) -> int:
        """API calls the emulator has started and not yet answered (a latency fault keeps them open)."""
        return sum(1 for r in self.requests_since(since) if r["status"] == 0)

    def calm(self) -> None:
        """No faults, limits off, the clock at normal speed: what a final clean run meets."""
        self.admin.delete("/faults").raise_for_status()
        self.admin.put("/limits", json={"mode": "off"}).raise_for_status()
        self.admin.post("/clock", json={"speed": 1}).raise_for_status()

    def close(self) -> None:
        self.admin.close()


@contextmanager
def world() -> Generator[World, None, None]:
    """An emulator process and a database of this process's own, removed afterwards."""
    with emulator_process() as url:
        db_url = pipeline_env.create_test_database()
        w = World(url, db_url)
        try:
            yield w
        finally:
            w.close()
            pipeline_env.drop_test_database()
