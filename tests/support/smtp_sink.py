"""A minimal SMTP server on loopback that keeps what it receives (for the failure-alert test)."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Generator
from contextlib import contextmanager


class _Handler(socketserver.StreamRequestHandler):
    def handle(self) -> None:
        self.wfile.write(b"220 sink ready\r\n")
        rcpt: list[str] = []
        while line := self.rfile.readline():
            command = line.decode(errors="replace").strip()
            upper = command.upper()
            if upper.startswith(("EHLO", "HELO")):
                self.wfile.write(b"250 sink\r\n")
            elif upper.startswith("RCPT TO:"):
                rcpt.append(command[8:].strip(" <>"))
                self.wfile.write(b"250 OK\r\n")
            elif upper == "DATA":
                self.wfile.write(b"354 go on\r\n")
                data = []
                while (chunk := self.rfile.readline()) not in (b".\r\n", b""):
                    data.append(chunk.decode(errors="replace"))
                self.server.messages.append({"to": rcpt, "data": "".join(data)})   # type: ignore[attr-defined]
                self.wfile.write(b"250 queued\r\n")
            elif upper == "QUIT":
                self.wfile.write(b"221 bye\r\n")
                return
            else:
                self.wfile.write(b"250 OK\r\n")


@contextmanager
def smtp_sink() -> Generator[tuple[int, list[dict]], None, None]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Handler)
    server.messages = []   # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], server.messages   # type: ignore[attr-defined]
    finally:
        server.shutdown()
        server.server_close()
