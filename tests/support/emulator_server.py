"""Runs the Xero emulator in a real uvicorn server on a free loopback port, in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Generator
from contextlib import contextmanager

import httpx
import uvicorn

from include.xero_emulator.app import Emulator, create_app
from include.xero_emulator.config import EmulatorConfig


@contextmanager
def running_emulator(config: EmulatorConfig) -> Generator[tuple[Emulator, str], None, None]:
    app = create_app(config)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="error", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    base_url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(f"{base_url}/_emulator/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError("the Xero emulator did not start")
        time.sleep(0.05)
    try:
        yield app, base_url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
