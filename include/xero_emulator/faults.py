"""Faults an operator or a test can switch on: latency, Xero's 500/503, a connection dropped after the write
was committed (what makes naive retries duplicate), and an organisation that is offline."""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass

KINDS = ("latency", "error", "drop_after_commit", "offline")
_ids = itertools.count(1)


@dataclass
class Fault:
    kind: str
    id: int = 0
    tenant_id: str | None = None     # None: every organisation
    method: str | None = None        # None: every method
    path: str | None = None          # a regular expression matched against the request path
    status: int = 500                # for kind "error"
    ms: int = 0                      # for kind "latency"
    times: int | None = None         # how many requests it hits; None: until removed

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}")
        if self.kind == "error" and self.status not in {500, 502, 503, 504}:
            raise ValueError("an error fault returns 500, 502, 503 or 504")
        if self.path:
            re.compile(self.path)
        self.id = self.id or next(_ids)

    def matches(self, tenant_id: str | None, method: str, path: str) -> bool:
        return ((self.tenant_id is None or (tenant_id or "") == self.tenant_id.lower())
                and (self.method is None or self.method.upper() == method)
                and (self.path is None or re.search(self.path, path, re.IGNORECASE) is not None)
                and (self.times is None or self.times > 0))

    def as_dict(self) -> dict:
        return asdict(self)


class Faults:
    def __init__(self) -> None:
        self.active: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        self.active.append(fault)
        return fault

    def remove(self, fault_id: int | None = None) -> None:
        self.active = [] if fault_id is None else [f for f in self.active if f.id != fault_id]

    def take(self, kind: str, tenant_id: str | None, method: str, path: str) -> Fault | None:
        """The first matching fault of a kind, counting one use of it."""
        for fault in self.active:
            if fault.kind == kind and fault.matches(tenant_id, method, path):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None
