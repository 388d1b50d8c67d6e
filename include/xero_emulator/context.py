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
from include.xero_emulator.where import compile_where
from include.xero_emulator.wire import ZERO_GUID


@dataclass
class Call:
    store: Store
    clock: Clock
    tenant: Tenant
    client_id: str
    query: dict[str, str]         # keys lower-cased: Xero treats parameter names case-insensitively
    headers: dict[str, str]       # keys lower-cased
    body: Any

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


def select(call: Call, objects: Iterable[dict], *, where_ok: bool = True,
           modified_key: str = "UpdatedDateUTC") -> list[dict]:
    """Apply `where` and `If-Modified-Since` (shared by every list endpoint)."""
    from include.xero_emulator.wire import parse_if_modified_since

    rows = list(objects)
    if where_ok and call.query.get("where"):
        predicate = compile_where(call.query["where"])
        rows = [o for o in rows if predicate(o)]
    since = call.headers.get("if-modified-since")
    if since:
        try:
            since_ms = parse_if_modified_since(since)
        except (ValueError, TypeError) as exc:
            raise HttpError(400, "The If-Modified-Since header cannot be parsed.") from exc
        rows = [o for o in rows if o.get(modified_key, 0) > since_ms]
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
    """`page` (1-based) with `pageSize` (default 100, at most 1000); without `page` everything, no paging."""
    page = call.int_param("page")
    if page is None:
        return rows, None
    size = call.int_param("pageSize") or 100
    size = max(1, min(size, 1000))
    page = max(page, 1)
    count = len(rows)
    chunk = rows[(page - 1) * size: page * size]
    return chunk, {"page": page, "pageSize": size, "pageCount": -(-count // size), "itemCount": count}
