"""Faults an operator or a test can switch on: latency, Xero's 500/503, a connection dropped after the write
was committed (what makes naive retries duplicate), an organisation that is offline, and a write refused as a
whole with a 400 when its body contains a given text (how a client's batch splitting is tested)."""

from __future__ import annotations

import itertools
import re
from dataclasses import asdict, dataclass

KINDS = ("latency", "error", "drop_after_commit", "offline", "reject")
# A 400 for the whole request, as Xero answers a body it cannot take (shared notes §7.2): by default the
# exception type Xero uses for unreadable post data; a ValidationException can be asked for instead.
REJECT_TYPES = {"PostDataInvalidException": 14, "ValidationException": 10}
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
    text: str | None = None          # for kind "reject": only writes whose body contains this text
    exception: str = "PostDataInvalidException"   # for kind "reject": the Type of the 400 body
    message: str | None = None       # for kind "reject": the Message of the 400 body

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(KINDS)}")
        if self.kind == "error" and self.status not in {500, 502, 503, 504}:
            raise ValueError("an error fault returns 500, 502, 503 or 504")
        if self.exception not in REJECT_TYPES:
            raise ValueError(f"a reject fault's exception is one of {', '.join(REJECT_TYPES)}")
        if self.path:
            re.compile(self.path)
        self.id = self.id or next(_ids)

    def matches(self, tenant_id: str | None, method: str, path: str, body: str) -> bool:
        return ((self.tenant_id is None or (tenant_id or "") == self.tenant_id.lower())
                and (self.method is None or self.method.upper() == method)
                and (self.path is None or re.search(self.path, path, re.IGNORECASE) is not None)
                and (self.text is None or self.text in body)
                and (self.times is None or self.times > 0))

    def rejection(self) -> dict:
        """The 400 body of a `reject` fault."""
        body = {"ErrorNumber": REJECT_TYPES[self.exception], "Type": self.exception,
                "Message": self.message or (f"The request was refused as a whole: it contains '{self.text}'."
                                            if self.text else "The request was refused as a whole.")}
        if self.exception == "ValidationException":
            body["Elements"] = []
        return body

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

    def take(self, kind: str, tenant_id: str | None, method: str, path: str, body: str = "") -> Fault | None:
        """The first matching fault of a kind, counting one use of it."""
        for fault in self.active:
            if fault.kind == kind and fault.matches(tenant_id, method, path, body):
                if fault.times is not None:
                    fault.times -= 1
                return fault
        return None
