"""xero-python wired the way a sync that must never duplicate needs it.

- The Xero connection is an Airflow connection: client id (login), client secret (password) and in `extra`
  the tenant id, the API and identity base URLs (real Xero or the emulator), the grant
  (`authorization_code` or `client_credentials`) and an optional first refresh token.
- Tokens live in `xero_sync.oauth_tokens`, encrypted with a key derived from the client secret. A refresh
  happens under a row lock, so two tasks refreshing at once cannot lose the rotated refresh token; the SDK
  itself is never allowed to refresh (it has no lock).
- urllib3's silent retries inside the SDK are switched off: a PUT re-sent after a dropped connection is how
  integrations create duplicates. Retrying is decided here, and only where it is safe.
- Calls are paced to stay under Xero's per-minute limit; 429s honour Retry-After; the daily budget is
  tracked from `X-DayLimit-Remaining` so a run can stop cleanly before it runs out.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import httpx
import psycopg

from include.omono_xero_sync import settings
from include.omono_xero_sync.sync_log import Attempt

log = logging.getLogger(__name__)
REFRESH_MARGIN_SECONDS = 300
DEFAULT_SCOPES = ("offline_access", "accounting.settings", "accounting.contacts", "accounting.transactions")


class XeroError(Exception):
    """Xero could not be used; the message says what to do. The task fails and Airflow retries it."""


class XeroAuthError(XeroError):
    pass


class WriteOutcomeUnknown(XeroError):
    """A write may or may not have reached Xero (connection lost, 5xx). Its records stay 'sending' and the
    next attempt looks them up in Xero before sending anything again. `answered`: Xero answered with an error,
    which it keeps under the idempotency key, so the next attempt must use a new key."""

    def __init__(self, message: str, answered: bool = False) -> None:
        super().__init__(message)
        self.answered = answered


class TransientError(XeroError):
    """Xero was unreachable or answered a read with a server error; the read is retried after a pause."""


class DailyLimitReached(XeroError):
    """Xero's daily call budget for the organisation is (nearly) used up; the next run carries on."""


@dataclass(frozen=True)
class XeroSettings:
    conn_id: str
    client_id: str
    client_secret: str
    tenant_id: str
    api_url: str
    identity_url: str
    grant: str
    scopes: tuple[str, ...]
    bootstrap_refresh_token: str | None

    @property
    def token_url(self) -> str:
        return f"{self.identity_url}/connect/token"

    def __repr__(self) -> str:   # never show the secret, even in a traceback
        return f"XeroSettings(conn_id={self.conn_id!r}, tenant_id={self.tenant_id!r}, api_url={self.api_url!r})"


# -- tokens ---------------------------------------------------------------------------------------------------
class TokenStore:
    """Encrypted token set per connection id.

    A refresh happens under `SELECT … FOR UPDATE` on a connection of the store's own and is committed at once, so
    two tasks refreshing together refresh once, and a rotated refresh token is kept whatever the caller's
    transaction does afterwards (Xero honours the old one for only 30 minutes). The valid access token is kept
    in the process until shortly before it expires, so a call costs no database round trip. `conn` is used only
    by `save`, for the commands that store a first token set in their own transaction."""

    def __init__(self, conn: psycopg.Connection | None, xero: XeroSettings, dsn: str | None = None) -> None:
        from cryptography.fernet import Fernet

        self.conn, self.xero, self._dsn = conn, xero, dsn
        key = base64.urlsafe_b64encode(hashlib.sha256(b"omono-xero-sync:" + xero.client_secret.encode()).digest())
        self._fernet = Fernet(key)
        self._cached: dict | None = None

    def save(self, token: dict) -> None:
        """Store a token set in the caller's transaction (connect commands); the caller commits."""
        assert self.conn is not None, "save() needs the caller's connection"
        self._write(self.conn, token)

    def _write(self, conn: psycopg.Connection, token: dict) -> None:
        sealed = self._fernet.encrypt(json.dumps(token).encode()).decode()
        conn.execute(f"INSERT INTO {settings.STATE_SCHEMA}.oauth_tokens (conn_id, token) VALUES (%s, %s) "
                     "ON CONFLICT (conn_id) DO UPDATE SET token = EXCLUDED.token, updated_at = now()",
                     (self.xero.conn_id, sealed))

    def _own_connection(self) -> psycopg.Connection:
        from psycopg.rows import dict_row

        from include.omono_xero_sync import db

        return psycopg.connect(self._dsn or db.dsn(settings.STATE_CONN_ID), row_factory=dict_row,
                               application_name="omono-xero-sync tokens")

    def _locked_token(self, conn: psycopg.Connection) -> dict | None:
        row = conn.execute(f"SELECT token FROM {settings.STATE_SCHEMA}.oauth_tokens WHERE conn_id = %s FOR UPDATE",
                           (self.xero.conn_id,)).fetchone()
        return json.loads(self._fernet.decrypt(row["token"].encode())) if row else None

    def valid_token(self) -> dict:
        """A token with at least five minutes left, refreshing it (once, under the lock, committed) when needed."""
        if self._cached and self._cached.get("expires_at", 0) > time.time() + REFRESH_MARGIN_SECONDS:
            return self._cached
        with self._own_connection() as conn, conn.transaction():
            token = self._locked_token(conn)
            if not (token and token.get("expires_at", 0) > time.time() + REFRESH_MARGIN_SECONDS):
                token = self._fetch(token)
                self._write(conn, token)
        self._cached = token
        return token

    def expire(self) -> None:
        """Xero refused the access token (401): forget it here and in the store, so the next call refreshes."""
        self._cached = None
        with self._own_connection() as conn, conn.transaction():
            token = self._locked_token(conn)
            if token:
                self._write(conn, {**token, "expires_at": 0})

    def _fetch(self, current: dict | None) -> dict:
        xero = self.xero
        if xero.grant == "client_credentials":
            form = {"grant_type": "client_credentials"}
        else:
            refresh = (current or {}).get("refresh_token") or xero.bootstrap_refresh_token
            if not refresh:
                raise XeroAuthError("Xero is not connected: no refresh token is stored. Connect the organisation "
                                    "(README: Connecting a real Xero organisation) and run again.")
            form = {"grant_type": "refresh_token", "refresh_token": refresh, "scope": " ".join(xero.scopes)}
        try:
            reply = httpx.post(xero.token_url, data=form, auth=(xero.client_id, xero.client_secret), timeout=30)
        except httpx.HTTPError as exc:
            raise XeroError(f"Xero's identity service could not be reached ({type(exc).__name__}).") from exc
        if reply.status_code != 200:
            error = reply.json().get("error", reply.status_code) if reply.headers.get("content-type", "").startswith(
                "application/json") else reply.status_code
            raise XeroAuthError(f"Xero refused to renew the connection's token ({error}). Reconnect the "
                                "organisation in Xero and store the new refresh token.")
        body = reply.json()
        return {"access_token": body["access_token"], "refresh_token": body.get("refresh_token"),
                "expires_at": time.time() + int(body.get("expires_in", 1800)),
                "scope": body.get("scope", " ".join(xero.scopes)).split(), "token_type": "Bearer"}


# -- pacing ---------------------------------------------------------------------------------------------------
@dataclass
class Pacer:
    """Keeps one organisation under Xero's per-minute limit: every call started in the last 60 s counts, calls
    still in flight included, so concurrent calls never overshoot; what the previous task spent in the current
    minute is carried over (Xero's window is the organisation's, not the process's). Remembers what Xero says is
    left of the day. Thread-safe: push sends up to Xero's 5 concurrent calls."""

    per_minute: int = settings.CALLS_PER_MINUTE
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _calls: deque[float] = field(default_factory=deque)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    day_remaining: int | None = None
    minute_remaining: int | None = None

    def carry_over(self, ages: list[float]) -> None:
        """Calls another process started `ages` seconds ago: those within the minute still count."""
        with self._lock:
            now = self.clock()
            self._calls = deque(sorted([*self._calls, *(now - age for age in ages if 0 <= age < 60)]))

    def recent(self) -> list[float]:
        """How many seconds ago each call of the last minute started (what the next task carries over)."""
        with self._lock:
            now = self.clock()
            return [now - t for t in self._calls if now - t < 60]

    def before_call(self) -> None:
        while True:
            with self._lock:
                now = self.clock()
                while self._calls and now - self._calls[0] >= 60:
                    self._calls.popleft()
                if len(self._calls) < self.per_minute and self.minute_remaining != 0:
                    self._calls.append(now)
                    return
                wait = 60 - (now - self._calls[0]) if self._calls else 1.0
                self.minute_remaining = None          # Xero's word is spent; its next answer says again
            log.info("Pacing: waiting %.1f s to stay within Xero's per-minute limit", wait)
            self.sleep(max(wait, 0.05))

    def after_call(self, headers: Any) -> None:
        if headers is None:
            return
        with self._lock:
            for attr, name in (("day_remaining", "X-DayLimit-Remaining"),
                               ("minute_remaining", "X-MinLimit-Remaining")):
                value = headers.get(name)
                if value is not None and str(value).isdigit():
                    setattr(self, attr, int(value))


# -- the client -----------------------------------------------------------------------------------------------
class XeroClient:
    """The only way the pipeline talks to Xero. Counts its calls so runs can report and tests can check them."""

    MAX_RATE_RETRIES = 3

    def __init__(self, xero: XeroSettings, tokens: TokenStore, pacer: Pacer | None = None) -> None:
        import urllib3
        from xero_python.accounting import AccountingApi
        from xero_python.api_client import ApiClient, Configuration
        from xero_python.api_client.oauth2 import OAuth2Token

        self.xero, self.tokens = xero, tokens
        self.pacer = pacer or Pacer()
        self.calls = 0
        self._counting = threading.Lock()
        self._in_flight = 0                    # calls started and not answered yet (the budget counts them)
        self._slots = threading.BoundedSemaphore(settings.CONCURRENT_CALLS)   # Xero: 5 calls in flight at most
        self._token: dict = {}
        # No client secret or refresh token reaches the SDK: it must never refresh on its own.
        # xero-python's Configuration returns a copy of the first instance ever built and ignores later
        # constructor arguments, so the token object is set on this copy explicitly.
        config = Configuration()
        config.oauth2_token = OAuth2Token(client_id=xero.client_id)
        self.api_client = ApiClient(config, pool_threads=1, oauth2_token_getter=lambda: self._token,
                                    oauth2_token_saver=lambda _t: None)
        pool = self.api_client.rest_client.pool_manager
        pool.connection_pool_kw["retries"] = urllib3.util.Retry(
            total=0, connect=0, read=0, redirect=0, status=0, respect_retry_after_header=False,
            raise_on_status=False)
        pool.clear()
        self.accounting = AccountingApi(self.api_client, base_url=xero.api_url)

    def _authorise(self) -> None:
        token = self.tokens.valid_token()
        self._token = {"access_token": token["access_token"], "expires_at": token["expires_at"],
                       "expires_in": 1800, "scope": token.get("scope") or [], "token_type": "Bearer"}

    def read(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A GET. Safe to repeat, so a server error or a broken connection is retried here after a pause
        (settings.RETRY_BACKOFF): a few transient faults do not fail the task."""
        for pause in (*settings.RETRY_BACKOFF, None):
            try:
                return self._call(method, args, kwargs, write=False)
            except TransientError as exc:
                if pause is None:
                    raise
                log.warning("%s; trying again in %.0f s", exc, pause)
                self.pacer.sleep(pause)
        raise AssertionError("unreachable")

    def write(self, method: str, *args: Any, **kwargs: Any) -> Any:
        """A POST or PUT, sent once: whether to send it again is the caller's decision (push looks first)."""
        return self._call(method, args, kwargs, write=True)

    def write_detailed(self, method: str, *args: Any, **kwargs: Any) -> tuple[Any, Attempt]:
        """`write`, with how Xero answered it (status, endpoint, correlation id) for the sync log."""
        holder: dict[str, Any] = {}
        data = self._call(method, args, kwargs, write=True, answered=holder)
        return data, attempt_of(method, args, kwargs, holder.get("status"), holder.get("headers"))

    @contextmanager
    def _spending(self) -> Generator[None, None, None]:
        """One call of the day's budget, reserved as it starts. Reads and writes share the budget: below the floor
        nothing more is spent today, so look-ups never eat what the writes they prepare need; and the calls still
        in flight count against what Xero last said was left, so five concurrent calls never pass the floor
        together (found from outside: allocations in flight went below it and met Xero's 429)."""
        floor = settings.DAILY_CALL_FLOOR
        with self._counting:
            left = self.pacer.day_remaining
            if left is not None and left - self._in_flight <= floor:
                raise DailyLimitReached(f"Only {left} of today's Xero API calls are left; stopping cleanly. The "
                                        "rest waits for tomorrow's budget.")
            self._in_flight += 1
        try:
            yield
        finally:
            with self._counting:
                self._in_flight -= 1

    def _call(self, method: str, args: tuple, kwargs: dict, *, write: bool, answered: dict | None = None) -> Any:
        import urllib3
        from xero_python.exceptions import HTTPStatusException

        fn = getattr(self.accounting, method)
        refreshed = False
        for attempt in range(self.MAX_RATE_RETRIES + 1):
            with self._spending():
                self._authorise()
                self.pacer.before_call()
                with self._counting:
                    self.calls += 1
                try:
                    with self._slots:
                        data, status, headers = fn(self.xero.tenant_id, *args, _return_http_data_only=False,
                                                   _request_timeout=settings.REQUEST_TIMEOUT, **kwargs)
                    self.pacer.after_call(headers)
                    if answered is not None:
                        answered.update(status=status, headers=headers)
                    return data
                except HTTPStatusException as exc:
                    self.pacer.after_call(exc.headers)
                    if exc.status == 429:
                        self._wait_for_rate_limit(exc, attempt)
                        continue
                    if exc.status == 401 and not refreshed:
                        refreshed = True
                        self.tokens.expire()
                        continue
                    if exc.status in (400, 404, 413):
                        raise      # Xero's answer about the request itself: the caller reads it
                    raise self._translate(exc, write) from exc
                except (urllib3.exceptions.HTTPError, OSError) as exc:
                    if write:
                        raise WriteOutcomeUnknown(f"The connection to Xero broke during {method} "
                                                  f"({type(exc).__name__}); whether Xero saved it is unknown. The "
                                                  "next attempt checks Xero before sending again.") from exc
                    raise TransientError(f"Xero could not be reached ({type(exc).__name__})") from exc
        raise XeroError(f"Xero kept refusing {method} after {self.MAX_RATE_RETRIES + 1} attempts; the task will "
                        "retry later.")

    def _wait_for_rate_limit(self, exc: Any, attempt: int) -> None:
        problem = (exc.headers or {}).get("X-Rate-Limit-Problem", "minute")
        if problem == "day":
            raise DailyLimitReached("Xero's daily API limit for this organisation is used up; the rest waits for "
                                    "tomorrow's budget.") from exc
        wait = float((exc.headers or {}).get("Retry-After", 5))
        if attempt == self.MAX_RATE_RETRIES or wait > 120:
            raise XeroError(f"Xero kept refusing calls ({problem} limit); try again later.") from exc
        log.warning("Xero rate limit (%s): waiting %.0f s as Retry-After asks", problem, wait)
        self.pacer.sleep(wait)

    def _translate(self, exc: Any, write: bool) -> XeroError:
        status = exc.status
        if status == 401:
            return XeroAuthError("Xero rejected the connection's credentials (401). Reconnect the organisation.")
        if status == 403:
            return XeroAuthError(f"Xero refused access to organisation {self.xero.tenant_id} (403): the app may "
                                 "have been disconnected in Xero. Reconnect it.")
        if write and status >= 500:
            return WriteOutcomeUnknown(f"Xero answered {status} to a write; whether it was saved is unknown. The "
                                       "next attempt checks Xero before sending again.", answered=True)
        if status == 503 and b"offline" in (exc.body or b""):
            return TransientError("The Xero organisation is offline (Xero is migrating it)")
        if status >= 500 and status != 501:
            return TransientError(f"Xero is unavailable ({status})")
        return XeroError(f"Xero answered {status}: {str(getattr(exc, 'reason', ''))[:300]}")


def client_for(conn: psycopg.Connection, conn_id: str = settings.XERO_CONN_ID) -> XeroClient:
    """The client for the Airflow connection `conn_id` (xero_hook.XeroHook) and the organisation chosen for it, its
    tokens kept in `conn`'s database."""
    from include.omono_xero_sync.xero_hook import XeroHook

    return XeroHook(conn_id).get_conn(conn)


_ENDPOINTS = {"update_or_create_contacts": "POST /Contacts?summarizeErrors=false",
              "update_or_create_invoices": "POST /Invoices?summarizeErrors=false&unitdp=4",
              "update_or_create_credit_notes": "POST /CreditNotes?summarizeErrors=false&unitdp=4",
              "create_credit_note_allocation": "PUT /CreditNotes/{}/Allocations?summarizeErrors=false",
              "create_account": "PUT /Accounts"}


def attempt_of(method: str, args: tuple, kwargs: dict, status: int | None, headers: Any) -> Attempt:
    """A call as the sync log shows it; an HTTP error (`HTTPStatusException`) carries its own status and headers."""
    endpoint = _ENDPOINTS.get(method, method).format(*(a for a in args if isinstance(a, str)))
    method_name, _, path = endpoint.partition(" ")
    correlation = (headers or {}).get("Xero-Correlation-Id") if headers is not None else None
    return Attempt(status, f"{method_name} /api.xro/2.0{path}", correlation)


def attempt_of_refusal(method: str, args: tuple, exc: Any) -> Attempt:
    return attempt_of(method, args, {}, getattr(exc, "status", None), getattr(exc, "headers", None))


def refusal_messages(exc: Any) -> list[str]:
    """Every message in a request Xero refused as a whole (400 ValidationException, 413 too large)."""
    try:
        body = json.loads(exc.body or b"{}")
    except (TypeError, ValueError):
        body = {}
    if not isinstance(body, dict):
        body = {}
    found = [e.get("Message") for el in body.get("Elements") or [] for e in el.get("ValidationErrors") or []]
    found = [m for m in found if m] or [body.get("Message") or ""]
    if exc.status == 413 and not any(found):
        found = ["The request is larger than Xero accepts (3.5 MB)."]
    return [m for m in found if m] or [f"Xero refused the request ({exc.status})."]


# -- models -----------------------------------------------------------------------------------------------
def to_model(type_name: str, value: Any) -> Any:
    """Build xero-python models from the PascalCase dicts the pipeline hashes, logs and stores."""
    from xero_python import accounting

    if value is None:
        return None
    if type_name.startswith("list["):
        return [to_model(type_name[5:-1], v) for v in value]
    if type_name in {"str", "float", "int", "bool", "object"}:
        return value
    if type_name.startswith("date"):
        return date.fromisoformat(value) if isinstance(value, str) else value
    cls = getattr(accounting, type_name)
    if hasattr(cls, "openapi_types"):
        by_wire = {wire: attr for attr, wire in cls.attribute_map.items()}
        kwargs = {by_wire[k]: to_model(cls.openapi_types[by_wire[k]], v) for k, v in value.items() if k in by_wire}
        return cls(**kwargs)
    return cls(value)   # an enum such as CurrencyCode or LineAmountTypes


def from_model(model: Any) -> Any:
    """A returned model as plain JSON-able data (for the sync log's 'what Xero answered')."""
    from xero_python.api_client.serializer import serialize

    data = serialize(model)
    return json.loads(json.dumps(data, default=str))


def forget_tokens(conn: psycopg.Connection, conn_id: str = settings.XERO_CONN_ID) -> None:
    """Drop the stored token set before a new connection replaces it: tokens sealed with another app's secret (a
    standard connection switched to a custom one) cannot even be read. The caller commits."""
    conn.execute(f"DELETE FROM {settings.STATE_SCHEMA}.oauth_tokens WHERE conn_id = %s", (conn_id,))
