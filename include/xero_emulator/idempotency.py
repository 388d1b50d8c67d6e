"""Idempotency-Key handling: a replay within the retention window returns the cached response (status, body
and headers, byte for byte, errors included) without running the request again; the same key with another
request is refused; keys over 128 characters are refused."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from include.xero_emulator.clock import Clock
from include.xero_emulator.errors import HttpError

MAX_KEY_LENGTH = 128


@dataclass
class CachedResponse:
    fingerprint: str
    stored_at: float
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str] = field(default_factory=dict)


class IdempotencyCache:
    def __init__(self, clock: Clock, retention_seconds: int) -> None:
        self.clock = clock
        self.retention = retention_seconds
        self._entries: dict[tuple[str, str], CachedResponse] = {}

    @staticmethod
    def fingerprint(method: str, path: str, query: str, body: bytes) -> str:
        return hashlib.sha256(b"\0".join([method.encode(), path.lower().encode(), query.encode(), body])).hexdigest()

    def lookup(self, client_id: str, key: str, fingerprint: str) -> CachedResponse | None:
        if len(key) > MAX_KEY_LENGTH:
            raise HttpError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                                  "Message": f"Idempotency Key: {key} exceeds the maximum length of "
                                             f"{MAX_KEY_LENGTH} characters (it has {len(key)})."})
        now = self.clock.now()
        entry = self._entries.get((client_id, key))
        if entry is None or now - entry.stored_at > self.retention:
            self._entries.pop((client_id, key), None)
            return None
        if entry.fingerprint != fingerprint:
            raise HttpError(400, {"ErrorNumber": 10, "Type": "ValidationException",
                                  "Message": f"Idempotency Key: {key} is used with a different request."})
        return entry

    def remember(self, client_id: str, key: str, entry: CachedResponse) -> None:
        self._entries[(client_id, key)] = entry
        if len(self._entries) > 50_000:
            now = self.clock.now()
            self._entries = {k: v for k, v in self._entries.items() if now - v.stored_at <= self.retention}

    def clear(self) -> None:
        self._entries.clear()
