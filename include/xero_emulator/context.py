"""What every Accounting API handler receives, and the batch semantics shared by contacts, invoices and
credit notes (`summarizeErrors`, per-element ValidationErrors, the 400 that still commits the good ones)."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from include.xero_emulator.clock import Clock
from include.xero_emulator.errors import HttpError, Invalid, validation_exception
from include.xero_emulator.store import Store, Tenant
from include.xero_emulator.where import Where, parse_where
from include.xero_emulator.wire import ZERO_GUID, parse_if_modified_since

# Paging (shared notes §4.3): "The default page size is 100, with a maximum of 1000 and a minimum of 1"
# (Xero's paging docs as quoted by third parties [C-DONAT], [P-CDATA]).
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 1000


@dataclass
class Call:
    store: Store
    clock: Clock
    tenant: Tenant
    client_id: str
    query: dict[str, str]         # keys lower-cased: Xero treats parameter names case-insensitively
    headers: dict[str, str]       # keys lower-cased
    body: Any
    max_page_size: int = MAX_PAGE_SIZE   # lowered through the admin API to test a client's paging
    examined: int = 0                    # rows a list filter looked at (how tests prove an index was used)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.query.get(name.lower())
        return default if value is None else value.strip().lower() == "true"

    def int_param(self, name: str) -> int | None:
        value = self.query.get(name.lower())
        if value in (None, ""):
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise HttpError(400, f"Supplied parameter '{name}' cannot be parsed.") from exc

    def csv(self, name: str) -> list[str] | None:
        value = self.query.get(name.lower())
        return [v.strip() for v in value.split(",") if v.strip()] if value else None

    @property
    def unitdp(self) -> int:
        return 4 if self.query.get("unitdp") == "4" else 2

    def collection(self, key: str) -> list[dict]:
        """The list under `key` in a batch body (Xero also accepts a single bare object)."""
        body = self.body
        if isinstance(body, dict) and isinstance(body.get(key), list):
            items = body[key]
        elif isinstance(body, dict) and key not in body and body:
            items = [body]
        else:
            raise HttpError(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                  "Message": f"The request body must contain a '{key}' collection"})
        if not all(isinstance(i, dict) for i in items):
            raise HttpError(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                  "Message": "Each element must be an object"})
        return items

    def new_id(self) -> str:
        return str(uuid.uuid4())


def error_element(echo: dict, messages: list[str], id_key: str, flag_key: str) -> dict:
    """A failed element as Xero returns it: the submitted object, a zero GUID and its ValidationErrors."""
    return {**echo, id_key: ZERO_GUID, flag_key: True, "StatusAttributeString": "ERROR",
            "ValidationErrors": [{"Message": m} for m in messages]}


def run_batch(call: Call, items: list[dict], process: Callable[[dict], dict],
              echo: Callable[[dict], dict], id_key: str, flag_key: str) -> list[dict]:
    """Process each element on its own. With summarizeErrors=false every element comes back (HTTP 200);
    otherwise one failure makes the call a 400 listing only the failures, while the valid elements have
    still been created, which is Xero's documented trap for naive clients."""
    results: list[dict] = []
    failures: list[dict] = []
    for item in items:
        try:
            results.append(process(item))
        except Invalid as exc:
            element = error_element(echo(item), exc.messages, id_key, flag_key)
            results.append(element)
            failures.append(element)
    if failures and call.flag("summarizeErrors", default=True):
        raise validation_exception(failures)
    return results


@dataclass(frozen=True)
class ListQuery:
    """A list call's `where` filter and If-Modified-Since, parsed once: the endpoint narrows its candidates with
    them (indexes) and `select` then applies them to each candidate."""

    where: Where | None
    since_ms: int | None

    @classmethod
    def of(cls, call: Call) -> ListQuery:
        where = parse_where(call.query["where"]) if call.query.get("where") else None
        since = call.headers.get("if-modified-since")
        try:
            since_ms = parse_if_modified_since(since) if since else None
        except (ValueError, TypeError) as exc:
            raise HttpError(400, "The If-Modified-Since header cannot be parsed.") from exc
        return cls(where, since_ms)


def select(call: Call, objects: Iterable[dict], *, query: ListQuery | None = None,
           extra: Callable[[dict], bool] | None = None, modified_key: str = "UpdatedDateUTC") -> list[dict]:
    """The objects that pass `where`, `If-Modified-Since` and an endpoint's own filter (every list endpoint),
    counting each one examined."""
    query = query or ListQuery.of(call)
    checks = [c for c in (query.where.predicate if query.where else None, extra) if c is not None]
    if query.since_ms is not None:
        since = query.since_ms
        checks.append(lambda o: o.get(modified_key, 0) > since)
    rows = []
    for obj in objects:
        call.examined += 1
        if all(check(obj) for check in checks):
            rows.append(obj)
    return rows


def order_rows(call: Call, rows: list[dict], default: str | None) -> list[dict]:
    spec = call.query.get("order") or default
    if not spec:
        return rows
    for part in reversed([p.strip() for p in spec.split(",") if p.strip()]):
        field, _, direction = part.partition(" ")
        reverse = direction.strip().upper() == "DESC"
        rows = sorted(rows, key=lambda o, f=field: _sort_key(o.get(f)), reverse=reverse)
    return rows


def _sort_key(value: Any) -> tuple:
    if value is None:
        return (0, "")
    if isinstance(value, int | float):
        return (1, value)
    return (2, str(value).lower())


def paginate(call: Call, rows: list[dict]) -> tuple[list[dict], dict | None]:
    """`page` (1-based) with `pageSize` (default 100, at most 1000, or the lower cap the admin API set); without
    `page` everything, no paging. `pagination` reports the size actually served, so a client that reads
    pageCount/itemCount pages to the end while one that stops at a short page does not."""
    page = call.int_param("page")
    if page is None:
        return rows, None
    size = call.int_param("pageSize") or DEFAULT_PAGE_SIZE
    size = max(1, min(size, MAX_PAGE_SIZE, call.max_page_size))
    page = max(page, 1)
    count = len(rows)
    chunk = rows[(page - 1) * size: page * size]
    return chunk, {"page": page, "pageSize": size, "pageCount": -(-count // size), "itemCount": count}
