"""The admin request log: one entry per API call, so tests can count calls exactly and conformance tests can
replay what was sent and answered."""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass, field


@dataclass
class Entry:
    seq: int
    at_ms: int
    method: str
    path: str
    query: str
    status: int = 0
    tenant_id: str | None = None
    client_id: str | None = None
    idempotency_key: str | None = None
    elements: int | None = None
    replayed: bool = False
    fault: str | None = None
    rate_limit_problem: str | None = None
    request_headers: dict[str, str] = field(default_factory=dict)
    request_body: str | None = None
    response_body: str | None = None
    response_content_type: str | None = None


class RequestLog:
    def __init__(self, capacity: int = 200_000) -> None:
        self.entries: deque[Entry] = deque(maxlen=capacity)
        self._seq = 0

    def start(self, at_ms: int, method: str, path: str, query: str) -> Entry:
        self._seq += 1
        entry = Entry(self._seq, at_ms, method, path, query)
        self.entries.append(entry)
        return entry

    def select(self, tenant_id: str | None = None, since_seq: int = 0, bodies: bool = False) -> list[dict]:
        out = []
        for e in self.entries:
            if e.seq <= since_seq or (tenant_id and e.tenant_id != tenant_id.lower()):
                continue
            row = asdict(e)
            if not bodies:
                for key in ("request_headers", "request_body", "response_body", "response_content_type"):
                    row.pop(key)
            out.append(row)
        return out

    def clear(self) -> None:
        self.entries.clear()
