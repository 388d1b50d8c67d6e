"""The emulator as one ASGI application: Xero's Accounting API under `/api.xro/2.0`, its identity endpoints
(`/connect/token`, `/identity/connect/authorize`, `/connections`) and the admin API under `/_emulator`.

It is a plain ASGI callable (no framework) because fault injection needs to control the raw connection,
e.g. to drop it after a write has been committed. Request handling runs on the event loop, one request at a
time between awaits, so the state needs no locks; latency faults await, which is what lets calls overlap
and the concurrent-call limit bite."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

from include.xero_emulator import contacts_api, documents_api, settings_api
from include.xero_emulator.admin import Admin
from include.xero_emulator.clock import Clock
from include.xero_emulator.config import EmulatorConfig
from include.xero_emulator.context import MAX_PAGE_SIZE, Call
from include.xero_emulator.documents_api import CREDIT_NOTES, INVOICES
from include.xero_emulator.errors import HttpError, not_found
from include.xero_emulator.faults import Fault, Faults
from include.xero_emulator.fixtures import clients_of, consents_of, load_fixture, seed
from include.xero_emulator.idempotency import CachedResponse, IdempotencyCache
from include.xero_emulator.limits import RateLimiter
from include.xero_emulator.oauth import OAuth
from include.xero_emulator.requestlog import Entry, RequestLog
from include.xero_emulator.store import Store
from include.xero_emulator.wire import dumps, ms_datetime

API_PREFIX = "/api.xro/2.0"
# Xero answers 404 "The resource you're looking for cannot be found" once a URL is longer than 2,091 characters
# (Xero-NetStandard#471: "a total URL length of >2091"; 52 GUIDs in `IDs` work and 53 do not, xero-node#404 and
# Xero-OpenAPI#534, which this limit reproduces with xero-python's %2C commas). Measured as the URL would be on
# api.xero.com, whichever host serves the emulator.
XERO_API_ORIGIN = "https://api.xero.com"
MAX_URL_LENGTH = 2091
Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict]]
Send = Callable[[dict], Awaitable[None]]
Handler = Callable[..., dict]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    family: str          # scope family: settings, contacts, transactions
    write: bool


def _r(method: str, path: str, handler: Handler, family: str) -> Route:
    regex = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path) + "/?$"
    return Route(method, re.compile(regex, re.IGNORECASE), handler, family, method != "GET")


ROUTES = [
    _r("GET", "/Organisation", settings_api.get_organisations, "settings"),
    _r("GET", "/Accounts", settings_api.get_accounts, "settings"),
    _r("PUT", "/Accounts", settings_api.create_account, "settings"),
    _r("GET", "/Accounts/{account_id}", settings_api.get_account, "settings"),
    _r("POST", "/Accounts/{account_id}", settings_api.update_account, "settings"),
    _r("GET", "/TaxRates", settings_api.get_tax_rates, "settings"),
    _r("GET", "/TaxRates/{tax_type}", settings_api.get_tax_rate, "settings"),
    _r("GET", "/Currencies", settings_api.get_currencies, "settings"),
    _r("GET", "/Contacts", contacts_api.get_contacts, "contacts"),
    _r("PUT", "/Contacts", contacts_api.save_contacts, "contacts"),
    _r("POST", "/Contacts", contacts_api.save_contacts, "contacts"),
    _r("GET", "/Contacts/{contact_id}", contacts_api.get_contact, "contacts"),
    _r("POST", "/Contacts/{contact_id}", contacts_api.update_contact, "contacts"),
    _r("GET", "/Invoices", lambda c: documents_api.list_documents(c, INVOICES), "transactions"),
    _r("PUT", "/Invoices", lambda c: documents_api.save_documents(c, INVOICES, match_number=False), "transactions"),
    _r("POST", "/Invoices", lambda c: documents_api.save_documents(c, INVOICES, match_number=True), "transactions"),
    _r("GET", "/Invoices/{doc_id}", lambda c, doc_id: documents_api.get_document(c, INVOICES, doc_id),
       "transactions"),
    _r("POST", "/Invoices/{doc_id}", lambda c, doc_id: documents_api.update_document(c, INVOICES, doc_id),
       "transactions"),
    _r("GET", "/CreditNotes", lambda c: documents_api.list_documents(c, CREDIT_NOTES), "transactions"),
    _r("PUT", "/CreditNotes", lambda c: documents_api.save_documents(c, CREDIT_NOTES, match_number=False),
       "transactions"),
    _r("POST", "/CreditNotes", lambda c: documents_api.save_documents(c, CREDIT_NOTES, match_number=True),
       "transactions"),
    _r("GET", "/CreditNotes/{doc_id}", lambda c, doc_id: documents_api.get_document(c, CREDIT_NOTES, doc_id),
       "transactions"),
    _r("POST", "/CreditNotes/{doc_id}",
       lambda c, doc_id: documents_api.update_document(c, CREDIT_NOTES, doc_id), "transactions"),
    _r("PUT", "/CreditNotes/{credit_id}/Allocations", documents_api.allocate_credit_note, "transactions"),
]
_COLLECTIONS = ("Contacts", "Invoices", "CreditNotes", "Allocations", "Accounts")


@dataclass
class ApiRequest:
    """One Accounting API request on its way through idempotency, faults and its handler."""

    method: str
    sub_path: str
    raw_query: str
    headers: dict[str, str]
    body: bytes
    client_id: str
    tenant_id: str
    entry: Entry
    route: Route = field(init=False)
    params: dict[str, str] = field(init=False)

    def __post_init__(self) -> None:
        self.route, self.params = _route(self.method, self.sub_path)


@dataclass
class Response:
    status: int
    body: bytes
    content_type: str
    headers: dict[str, str]


def _encode(body: Any) -> tuple[bytes, str]:
    if isinstance(body, bytes):
        return body, "text/plain; charset=utf-8"
    if isinstance(body, str):
        return body.encode(), "text/plain; charset=utf-8"
    return dumps(body), "application/json; charset=utf-8"


def _error_response(exc: HttpError) -> Response:
    body, ctype = _encode(exc.body)
    return Response(exc.status, body, ctype, dict(exc.headers))


class Emulator:
    """State and behaviour of one emulator instance; `__call__` is the ASGI entry point."""

    def __init__(self, config: EmulatorConfig) -> None:
        self.config = config
        self.clock = Clock(config.clock_speed)
        self.fixture = load_fixture(config.fixture)
        self.store = Store(config.data_dir)
        if not self.store.load():
            seed(self.store, self.clock, self.fixture)
        self.oauth = OAuth(self.store, self.clock, config, clients_of(self.fixture), consents_of(self.fixture))
        self.limiter = RateLimiter(config.limits, self.clock)
        self.idempotency = IdempotencyCache(self.clock, config.idempotency_seconds)
        self.faults = Faults()
        self.resets = 0
        self.log = RequestLog()
        self.max_page_size = MAX_PAGE_SIZE
        self.admin = Admin(self)

    def reset(self) -> None:
        """Back to the fixture: organisations, tokens, limits and counters, faults, the clock and the request log."""
        self.clock.reset()
        self.store.clear()
        seed(self.store, self.clock, self.fixture)
        self.limiter.limits = self.config.limits
        self.limiter.reset()
        self.idempotency.clear()
        self.faults.remove()
        self.resets += 1             # a request still waiting out a latency fault must not go on into the new state
        self.log.clear()
        self.max_page_size = MAX_PAGE_SIZE

    def call_for(self, tenant_id: str, client_id: str, query: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, body: Any = None) -> Call:
        return Call(self.store, self.clock, self.store.tenant(tenant_id), client_id, query or {}, headers or {}, body,
                    max_page_size=self.max_page_size)

    # -- ASGI ------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        method = scope["method"].upper()
        path = scope["path"].rstrip("/") or "/"
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        body = await self._read_body(receive)
        lower = path.lower()
        if lower.startswith("/_emulator"):
            response = self.admin.handle(method, path, raw_query, body)
            await self._send(send, response)
            return
        entry = self.log.start(self.clock.now_ms(), method, path, raw_query)
        if self.config.record_bodies:
            entry.request_headers = {k: v for k, v in headers.items()
                                     if k in {"content-type", "xero-tenant-id", "idempotency-key", "accept",
                                              "if-modified-since"}}
            entry.request_body = body.decode("utf-8", "replace") if body else None
        drop = False
        try:
            if lower.startswith(API_PREFIX.lower()):
                _refuse_long_url(scope.get("raw_path") or path.encode(), raw_query)
                response, drop = await self._accounting(method, path[len(API_PREFIX):], raw_query, headers, body,
                                                        entry)
            else:
                response = self._identity(method, lower, raw_query, headers, body, entry)
        except HttpError as exc:
            response = _error_response(exc)
        entry.status = response.status
        entry.rate_limit_problem = response.headers.get("X-Rate-Limit-Problem")
        if self.config.record_bodies:
            entry.response_body = response.body.decode("utf-8", "replace")
            entry.response_content_type = response.content_type
        if drop:
            entry.fault = "drop_after_commit"
            await self._drop(send, response)
            return
        await self._send(send, response)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.store.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _read_body(self, receive: Receive) -> bytes:
        chunks = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        return b"".join(chunks)

    async def _send(self, send: Send, response: Response) -> None:
        headers = [(b"content-type", response.content_type.encode()),
                   (b"content-length", str(len(response.body)).encode())]
        headers += [(k.lower().encode(), v.encode()) for k, v in response.headers.items()]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})

    async def _drop(self, send: Send, response: Response) -> None:
        """Start the response, then break the connection: the client never learns the write succeeded."""
        headers = [(b"content-type", response.content_type.encode()),
                   (b"content-length", str(len(response.body) + 1024).encode())]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body[:16], "more_body": True})
        raise ConnectionAbortedError("fault: connection dropped after the write was committed")

    # -- identity ----------------------------------------------------------------------------------------
    def _identity(self, method: str, lower: str, raw_query: str, headers: dict[str, str], body: bytes,
                  entry: Entry) -> Response:
        query = {k: v[0] for k, v in parse_qs(raw_query, keep_blank_values=True).items()}
        if method == "GET" and lower in {"/identity/connect/authorize", "/connect/authorize"}:
            location = self.oauth.authorize(query)
            return Response(302, b"", "text/plain", {"Location": location})
        if method == "POST" and lower == "/connect/token":
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            token = self.oauth.token(form, headers.get("authorization"))
            entry.client_id = form.get("client_id")
            return Response(200, dumps(token), "application/json; charset=utf-8", {"Cache-Control": "no-store"})
        if method == "POST" and lower == "/connect/revocation":
            form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
            self.oauth.revoke(form, headers.get("authorization"))
            return Response(200, b"", "text/plain", {})
        if lower == "/connections" and method == "GET":
            access = self.oauth.access(headers.get("authorization"))
            entry.client_id = access.client_id
            return Response(200, dumps(self.oauth.connections(access, query.get("authEventId"))),
                            "application/json; charset=utf-8", {})
        m = re.fullmatch(r"/connections/([^/]+)", lower)
        if m and method == "DELETE":
            access = self.oauth.access(headers.get("authorization"))
            self.oauth.delete_connection(access, m.group(1))
            return Response(204, b"", "text/plain", {})
        raise not_found()

    # -- accounting --------------------------------------------------------------------------------------
    async def _delay(self, latency: Fault) -> None:
        """A latency fault's pause, ended early when the fault is removed: a test holds a write in flight exactly
        as long as it needs to, instead of guessing a duration."""
        deadline, resets = asyncio.get_running_loop().time() + latency.ms / 1000, self.resets
        while any(f is latency for f in self.faults.active):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await asyncio.sleep(min(left, 0.05))
        if self.resets != resets:                # into an organisation reset meanwhile (another test's)
            raise HttpError(503, "The emulator was reset while this request waited")

    async def _accounting(self, method: str, sub_path: str, raw_query: str, headers: dict[str, str], body: bytes,
                          entry: Entry) -> tuple[Response, bool]:
        access = self.oauth.access(headers.get("authorization"))
        entry.client_id = access.client_id
        tenant_id = self.oauth.tenant_for(access, headers.get("xero-tenant-id"))
        entry.tenant_id = tenant_id
        entry.idempotency_key = headers.get("idempotency-key")
        if self.faults.take("offline", tenant_id, method, sub_path):
            entry.fault = "offline"
            raise HttpError(503, "The Organisation is offline")
        rate_headers = self.limiter.acquire(tenant_id, access.client_id)
        try:
            latency = self.faults.take("latency", tenant_id, method, sub_path)
            if latency:
                entry.fault = "latency"
                await self._delay(latency)
            request = ApiRequest(method, sub_path, raw_query, headers, body, access.client_id, tenant_id, entry)
            self.oauth.require_scope(access, request.route.family, request.route.write)
            response = self._dispatch(request)
            response.headers.update(rate_headers)
            drop = self.faults.take("drop_after_commit", tenant_id, method, sub_path) is not None
            return response, drop
        finally:
            self.limiter.release(tenant_id)

    def _dispatch(self, req: ApiRequest) -> Response:
        """The size check, then the Idempotency-Key: a replay within the retention window returns the first
        answer byte for byte, whatever it was. Xero caches errors too ("If an idempotent request errors out
        internally, the error will be cached and returned when the request is re-run even if the internal error
        is resolved", shared notes §6), so injected 5xx and refusals are remembered like any answer."""
        if len(req.body) > self.config.max_request_bytes:     # bytes on the wire, not characters
            raise HttpError(413, "The request exceeds the maximum size of 3.5MB.")
        key = req.headers.get("idempotency-key") if req.method in {"POST", "PUT", "PATCH"} else None
        fingerprint = IdempotencyCache.fingerprint(req.method, req.sub_path, req.raw_query, req.body)
        if key:
            cached = self.idempotency.lookup(req.client_id, key, fingerprint)
            if cached is not None:
                req.entry.replayed = True
                return Response(cached.status, cached.body, cached.content_type, dict(cached.headers))
        response = self._process(req)
        if key:
            self.idempotency.remember(req.client_id, key, CachedResponse(
                fingerprint, self.clock.now(), response.status, response.body, response.content_type,
                dict(response.headers)))
        return response

    def _process(self, req: ApiRequest) -> Response:
        """Run the request, or the fault standing in for Xero's processing of it."""
        fault = self._processing_fault(req)
        if fault is not None:
            return fault
        try:
            parsed = json.loads(req.body) if req.body else None
        except ValueError:
            return _error_response(HttpError(400, {"ErrorNumber": 14, "Type": "PostDataInvalidException",
                                                   "Message": "The request body is not valid JSON"}))
        req.entry.elements = _element_count(parsed)
        query = {k.lower(): v[0] for k, v in parse_qs(req.raw_query, keep_blank_values=True).items()}
        call = Call(self.store, self.clock, self.store.tenant(req.tenant_id), req.client_id, query, req.headers,
                    parsed, max_page_size=self.max_page_size)
        try:
            result = req.route.handler(call, **req.params)
            correlation = str(uuid.uuid4())
            envelope = {"Id": correlation, "Status": "OK", "ProviderName": self.fixture["provider_name"],
                        "DateTimeUTC": ms_datetime(self.clock.now_ms(), offset=False), **result}
            return Response(200, dumps(envelope), "application/json; charset=utf-8",
                            {"Xero-Correlation-Id": correlation})
        except HttpError as exc:
            return _error_response(exc)
        finally:
            self.store.commit()

    def _processing_fault(self, req: ApiRequest) -> Response | None:
        """An injected internal error (500/502/503/504) or a write refused as a whole (`reject`)."""
        error = self.faults.take("error", req.tenant_id, req.method, req.sub_path)
        if error:
            req.entry.fault = f"error {error.status}"
            text = ("An error occurred in Xero. Check the API Status page http://status.developer.xero.com "
                    "for current service status." if error.status == 500
                    else "The Xero API is temporarily unavailable")
            return Response(error.status, text.encode(), "text/plain; charset=utf-8", {})
        if not req.route.write:
            return None
        reject = self.faults.take("reject", req.tenant_id, req.method, req.sub_path,
                                  req.body.decode("utf-8", "replace"))
        if reject:
            req.entry.fault = "reject"
            return _error_response(HttpError(400, reject.rejection()))
        return None


def _route(method: str, sub_path: str) -> tuple[Route, dict[str, str]]:
    for route in ROUTES:
        m = route.pattern.match(sub_path)
        if m and route.method == method:
            return route, m.groupdict()
    raise not_found()


def _refuse_long_url(raw_path: bytes, raw_query: str) -> None:
    """Xero's 404 for a URL over its length limit (see MAX_URL_LENGTH), checked on the URL as sent."""
    length = len(XERO_API_ORIGIN) + len(raw_path) + (1 + len(raw_query) if raw_query else 0)
    if length > MAX_URL_LENGTH:
        raise not_found()


def _element_count(body: Any) -> int | None:
    if isinstance(body, dict):
        for key in _COLLECTIONS:
            if isinstance(body.get(key), list):
                return len(body[key])
        return 1 if body else None
    return None


def create_app(config: EmulatorConfig | None = None) -> Emulator:
    """The ASGI app; keep a reference to reach its admin helpers in-process."""
    return Emulator(config or EmulatorConfig())
