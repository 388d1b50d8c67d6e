"""Xero's identity side: the authorization-code consent (auto-approved), the token endpoint with rotating refresh
tokens and their 30-minute grace, client credentials for custom connections, revocation and connections."""

from __future__ import annotations

import base64
import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

from include.xero_emulator.clock import Clock
from include.xero_emulator.config import EmulatorConfig
from include.xero_emulator.errors import HttpError, forbidden, oauth_error, unauthorized
from include.xero_emulator.store import Store

DEFAULT_SCOPES = ("openid", "profile", "email", "offline_access", "accounting.settings", "accounting.contacts",
                  "accounting.transactions")
# Which scopes open which part of the Accounting API (broad ones and the granular ones of 2026 apps).
SCOPE_FAMILIES = {
    "settings": ("accounting.settings", "accounting.settings.read"),
    "contacts": ("accounting.contacts", "accounting.contacts.read"),
    "transactions": ("accounting.transactions", "accounting.transactions.read", "accounting.invoices",
                     "accounting.invoices.read"),
}


@dataclass
class Access:
    """Who is calling: the app, the scopes granted, and which tenants the token reaches."""

    client_id: str
    scopes: frozenset[str]
    tenant_ids: frozenset[str]
    custom_tenant: str | None   # custom connections are bound to one organisation
    grant_id: str | None


class OAuth:
    def __init__(self, store: Store, clock: Clock, config: EmulatorConfig, clients: dict[str, dict],
                 consents: dict[str, list[str]]) -> None:
        self.store, self.clock, self.config = store, clock, config
        self.clients = clients
        self.consents = consents

    # -- consent ---------------------------------------------------------------------------------------
    def authorize(self, params: dict[str, str]) -> str:
        """The consent screen, approved at once for the tenants the fixture lets this app reach."""
        client = self.clients.get(params.get("client_id", ""))
        if client is None or client["kind"] != "web":
            raise oauth_error("unauthorized_client")
        redirect_uri = params.get("redirect_uri", "")
        if redirect_uri not in client.get("redirect_uris", []):
            raise HttpError(400, "Invalid redirect_uri")
        if params.get("response_type") != "code":
            raise oauth_error("unsupported_response_type")
        code = secrets.token_urlsafe(24)
        scopes = params.get("scope", " ".join(DEFAULT_SCOPES)).split()
        self.store.put("", "code", code, {"client_id": client["client_id"], "redirect_uri": redirect_uri,
                                          "scopes": scopes, "expires_at": self.clock.now() + 300})
        query = {"code": code, "scope": " ".join(scopes)}
        if params.get("state"):
            query["state"] = params["state"]
        return f"{redirect_uri}{'&' if '?' in redirect_uri else '?'}{urlencode(query)}"

    # -- token endpoint --------------------------------------------------------------------------------
    def token(self, form: dict[str, str], authorization: str | None) -> dict:
        client = self.token_client(form, authorization)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            return self._from_code(client, form)
        if grant_type == "refresh_token":
            return self._from_refresh(client, form.get("refresh_token", ""))
        if grant_type == "client_credentials":
            if client["kind"] != "custom":
                raise oauth_error("unauthorized_client")
            return self._issue(client["client_id"], None, list(DEFAULT_SCOPES[4:]), custom_tenant=client["tenant_id"])
        raise oauth_error("unsupported_grant_type")

    def _from_code(self, client: dict, form: dict[str, str]) -> dict:
        code = self.store.auth["code"].get(form.get("code", ""))
        if (code is None or code["client_id"] != client["client_id"] or code["expires_at"] < self.clock.now()
                or code["redirect_uri"] != form.get("redirect_uri")):
            raise oauth_error("invalid_grant")
        self.store.delete_auth("code", form["code"])
        grant_id = str(uuid.uuid4())
        auth_event = str(uuid.uuid4())
        now = self.clock.now()
        connections = {tid: {"id": str(uuid.uuid4()), "tenantId": tid, "authEventId": auth_event,
                             "created": now, "updated": now}
                       for tid in self.consents.get(client["client_id"], [])}
        self.store.put("", "grant", grant_id, {"client_id": client["client_id"], "scopes": code["scopes"],
                                               "connections": connections})
        return self._issue(client["client_id"], grant_id, code["scopes"])

    def _from_refresh(self, client: dict, token: str) -> dict:
        record = self.store.auth["refresh"].get(token)
        now = self.clock.now()
        if record is None or record["client_id"] != client["client_id"] or record["expires_at"] < now:
            raise oauth_error("invalid_grant")
        if record.get("rotated_at") is not None and now > record["rotated_at"] + self.config.refresh_grace_seconds:
            raise oauth_error("invalid_grant")
        grant = self.store.auth["grant"].get(record["grant_id"])
        if grant is None:
            raise oauth_error("invalid_grant")
        if record.get("rotated_at") is None:
            record["rotated_at"] = now
            self.store.put("", "refresh", token, record)
        return self._issue(client["client_id"], record["grant_id"], grant["scopes"])

    def _issue(self, client_id: str, grant_id: str | None, scopes: list[str], custom_tenant: str | None = None) -> dict:
        now = self.clock.now()
        access = "emu-at-" + secrets.token_urlsafe(32)
        self.store.put("", "access", access, {"client_id": client_id, "grant_id": grant_id, "scopes": scopes,
                                              "custom_tenant": custom_tenant,
                                              "expires_at": now + self.config.access_token_seconds})
        body = {"access_token": access, "expires_in": self.config.access_token_seconds, "token_type": "Bearer",
                "scope": " ".join(scopes)}
        if grant_id is not None and "offline_access" in scopes:
            refresh = "emu-rt-" + secrets.token_urlsafe(32)
            self.store.put("", "refresh", refresh, {"client_id": client_id, "grant_id": grant_id,
                                                    "rotated_at": None,
                                                    "expires_at": now + self.config.refresh_token_days * 86400})
            body["refresh_token"] = refresh
        if grant_id is not None and "openid" in scopes:
            body["id_token"] = "emu-id-" + secrets.token_urlsafe(16)
        self._expire_old_records(now)
        self.store.commit()
        return body

    def _expire_old_records(self, now: float) -> None:
        for kind, limit in (("access", 0), ("code", 0), ("refresh", self.config.refresh_grace_seconds)):
            for key, record in list(self.store.auth[kind].items()):
                expired = record["expires_at"] < now
                if kind == "refresh" and record.get("rotated_at") is not None:
                    expired = expired or record["rotated_at"] + limit < now
                if expired:
                    self.store.delete_auth(kind, key)

    def revoke(self, form: dict[str, str], authorization: str | None) -> None:
        """Revoking a refresh token removes its grant and every connection it made."""
        self.token_client(form, authorization)
        record = self.store.auth["refresh"].get(form.get("token", ""))
        if record:
            self.store.delete_auth("grant", record["grant_id"])
            for key, other in list(self.store.auth["refresh"].items()):
                if other["grant_id"] == record["grant_id"]:
                    self.store.delete_auth("refresh", key)
            self.store.commit()

    def token_client(self, form: dict[str, str], authorization: str | None) -> dict:
        """The calling app, by client id and secret in the form (xero-python) or HTTP Basic (Xero's docs)."""
        client_id, secret = form.get("client_id"), form.get("client_secret")
        if authorization and authorization.lower().startswith("basic "):
            try:
                client_id, _, secret = base64.b64decode(authorization[6:]).decode().partition(":")
            except ValueError as exc:
                raise oauth_error("invalid_client") from exc
        client = self.clients.get(client_id or "")
        if client is None or not secrets.compare_digest(client["client_secret"], secret or ""):
            raise oauth_error("invalid_client")
        return client

    # -- bearer checks ---------------------------------------------------------------------------------
    def access(self, authorization: str | None) -> Access:
        if not authorization or not authorization.lower().startswith("bearer "):
            raise unauthorized("AuthenticationUnsuccessful")
        token = authorization[7:].strip()
        record = self.store.auth["access"].get(token)
        if record is None:
            raise unauthorized("AuthenticationUnsuccessful")
        if record["expires_at"] < self.clock.now():
            when = datetime.fromtimestamp(record["expires_at"], tz=UTC).strftime("%m/%d/%Y %H:%M:%S")
            raise unauthorized(f"TokenExpired: token expired at {when}")
        if record["custom_tenant"]:
            tenants = frozenset({record["custom_tenant"]})
        else:
            grant = self.store.auth["grant"].get(record["grant_id"]) or {"connections": {}}
            tenants = frozenset(grant["connections"])
        return Access(record["client_id"], frozenset(record["scopes"]), tenants, record["custom_tenant"],
                      record["grant_id"])

    def tenant_for(self, access: Access, header: str | None) -> str:
        """`xero-tenant-id` must name a connected organisation (custom connections may omit it)."""
        wanted = (header or "").strip().lower()
        if not wanted and access.custom_tenant:
            return access.custom_tenant
        if wanted not in access.tenant_ids or wanted not in self.store.tenants:
            raise forbidden()
        return wanted

    @staticmethod
    def require_scope(access: Access, family: str, write: bool) -> None:
        allowed = SCOPE_FAMILIES[family]
        ok = any(s in access.scopes for s in allowed if write is False or not s.endswith(".read"))
        if not ok:
            raise unauthorized("AuthorizationUnsuccessful")

    def connections(self, access: Access, auth_event_id: str | None) -> list[dict]:
        if access.custom_tenant:
            return []
        grant = self.store.auth["grant"].get(access.grant_id or "")
        if grant is None:
            return []
        out = []
        for tid, conn in grant["connections"].items():
            if auth_event_id and conn["authEventId"] != auth_event_id:
                continue
            tenant = self.store.tenants.get(tid)
            if tenant is None:
                continue
            out.append({"id": conn["id"], "authEventId": conn["authEventId"], "tenantId": tid,
                        "tenantType": "ORGANISATION", "tenantName": tenant.organisation["Name"],
                        "createdDateUtc": _iso(conn["created"]), "updatedDateUtc": _iso(conn["updated"])})
        return out

    def delete_connection(self, access: Access, connection_id: str) -> None:
        grant = self.store.auth["grant"].get(access.grant_id or "")
        for tid, conn in list((grant or {}).get("connections", {}).items()):
            if conn["id"] == connection_id:
                del grant["connections"][tid]
                self.store.put("", "grant", access.grant_id, grant)
                self.store.commit()
                return
        raise HttpError(404, "The resource you're looking for cannot be found")


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%f0")
