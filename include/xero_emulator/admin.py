"""The admin API under `/_emulator` (not a Xero path): reset, seed, inspect stored objects, the request log,
limits, faults, the clock, and a bookkeeper's actions in Xero (payments, allocations, enabling a currency)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from include.xero_emulator import contacts_api, documents_api, settings_api
from include.xero_emulator.config import Limits
from include.xero_emulator.documents_api import CREDIT_NOTES, INVOICES
from include.xero_emulator.errors import HttpError, Invalid
from include.xero_emulator.faults import Fault
from include.xero_emulator.wire import dumps

if TYPE_CHECKING:
    from include.xero_emulator.app import Emulator, Response

ADMIN_CLIENT = "emulator-admin"
_KINDS = {"contacts": "contact", "invoices": "invoice", "creditnotes": "creditnote", "accounts": "account",
          "currencies": "currency", "taxrates": "taxrate"}


class Admin:
    def __init__(self, emulator: Emulator) -> None:
        self.emu = emulator
        t = r"(?P<tenant>[0-9a-fA-F-]{36})"
        self.routes: list[tuple[str, re.Pattern[str], Callable[..., Any]]] = [
            ("GET", re.compile(r"/_emulator/health"), self.health),
            ("POST", re.compile(r"/_emulator/reset"), self.reset),
            ("GET", re.compile(r"/_emulator/tenants"), self.tenants),
            ("POST", re.compile(rf"/_emulator/tenants/{t}/seed"), self.seed),
            ("POST", re.compile(rf"/_emulator/tenants/{t}/payments"), self.payment),
            ("POST", re.compile(rf"/_emulator/tenants/{t}/allocations"), self.allocation),
            ("POST", re.compile(rf"/_emulator/tenants/{t}/currencies"), self.enable_currency),
            ("PATCH", re.compile(rf"/_emulator/tenants/{t}/organisation"), self.patch_organisation),
            ("GET", re.compile(rf"/_emulator/tenants/{t}/(?P<kind>\w+)"), self.objects),
            ("GET", re.compile(r"/_emulator/requests"), self.requests),
            ("DELETE", re.compile(r"/_emulator/requests"), self.clear_requests),
            ("GET", re.compile(r"/_emulator/limits"), self.get_limits),
            ("PUT", re.compile(r"/_emulator/limits"), self.set_limits),
            ("GET", re.compile(r"/_emulator/faults"), self.get_faults),
            ("POST", re.compile(r"/_emulator/faults"), self.add_fault),
            ("DELETE", re.compile(r"/_emulator/faults(?:/(?P<fault_id>\d+))?"), self.remove_faults),
            ("GET", re.compile(r"/_emulator/clock"), self.get_clock),
            ("POST", re.compile(r"/_emulator/clock"), self.set_clock),
        ]

    def handle(self, method: str, path: str, raw_query: str, body: bytes) -> Response:
        from include.xero_emulator.app import Response

        query = {k: v[0] for k, v in parse_qs(raw_query).items()}
        try:
            data = json.loads(body) if body else {}
        except ValueError:
            return Response(400, dumps({"error": "body is not valid JSON"}), "application/json", {})
        for route_method, pattern, fn in self.routes:
            m = pattern.fullmatch(path)
            if m and route_method == method:
                try:
                    result = fn(query=query, data=data, **{k: v for k, v in m.groupdict().items() if v})
                except HttpError as exc:
                    body_out = exc.body if isinstance(exc.body, dict) else {"error": exc.body}
                    return Response(exc.status, dumps(body_out), "application/json", {})
                except (ValueError, KeyError, TypeError) as exc:
                    return Response(400, dumps({"error": str(exc)}), "application/json", {})
                finally:
                    self.emu.store.commit()
                return Response(200, dumps(result), "application/json", {})
        return Response(404, dumps({"error": f"no admin route {method} {path}"}), "application/json", {})

    def _tenant(self, tenant: str) -> str:
        tid = tenant.lower()
        if tid not in self.emu.store.tenants:
            raise HttpError(404, f"no organisation {tenant}")
        return tid

    # -- state -------------------------------------------------------------------------------------------
    def health(self, **_: Any) -> dict:
        return {"status": "ok", "persistent": self.emu.store.persistent, "limits": self.emu.limiter.limits.as_dict(),
                "clock_speed": self.emu.clock.speed}

    def reset(self, **_: Any) -> dict:
        self.emu.reset()
        return {"status": "reset", "tenants": sorted(self.emu.store.tenants)}

    def tenants(self, **_: Any) -> dict:
        out = []
        for tid, tenant in self.emu.store.tenants.items():
            org = tenant.organisation
            out.append({"tenant_id": tid, "name": org["Name"], "short_code": org.get("ShortCode"),
                        "base_currency": org["BaseCurrency"],
                        "counts": {k: len(tenant.objects[v]) for k, v in _KINDS.items()}})
        return {"tenants": out}

    def objects(self, tenant: str, kind: str, query: dict, **_: Any) -> dict:
        tid = self._tenant(tenant)
        if kind.lower() not in _KINDS:
            raise HttpError(404, f"unknown kind {kind}; one of {', '.join(_KINDS)}")
        return {kind: list(self.emu.store.tenant(tid).objects[_KINDS[kind.lower()]].values())}

    def seed(self, tenant: str, data: dict, **_: Any) -> dict:
        """Create objects as if they had been entered in Xero (no auth, no limits, Xero's rules still apply)."""
        tid = self._tenant(tenant)
        call = self.emu.call_for(tid, ADMIN_CLIENT, query={"summarizeerrors": "false", "unitdp": "4"})
        created: dict[str, list] = {}
        for account in data.get("Accounts", []):
            call.body = account
            created.setdefault("Accounts", []).extend(settings_api.create_account(call)["Accounts"])
        for currency in data.get("Currencies", []):
            created.setdefault("Currencies", []).append(self.enable_currency(tenant, currency))
        for contact in data.get("Contacts", []):
            created.setdefault("Contacts", []).append(self._apply(contacts_api.upsert_contact, call, contact))
        for kind in (INVOICES, CREDIT_NOTES):
            for doc in data.get(kind.collection, []):
                created.setdefault(kind.collection, []).append(
                    self._apply(lambda c, d, k=kind: documents_api.upsert_document(c, k, d), call, doc))
        return created

    @staticmethod
    def _apply(fn: Callable[[Any, dict], dict], call: Any, item: dict) -> dict:
        try:
            return fn(call, item)
        except Invalid as exc:
            raise HttpError(400, {"error": "; ".join(exc.messages), "item": item}) from exc

    def enable_currency(self, tenant: str, data: dict, **_: Any) -> dict:
        """What a bookkeeper does in Xero's currency settings (the sync itself never adds currencies)."""
        tid = self._tenant(tenant)
        code = str(data["Code"]).upper()
        currency = {"Code": code, "Description": data.get("Description", code)}
        self.emu.store.put(tid, "currency", code, currency)
        if data.get("Rate"):
            t = self.emu.store.tenant(tid)
            t.meta["exchange_rates"][code] = float(data["Rate"])
            self.emu.store.save_meta(t)
        return currency

    def patch_organisation(self, tenant: str, data: dict, **_: Any) -> dict:
        tid = self._tenant(tenant)
        org = {**self.emu.store.tenant(tid).organisation, **data}
        self.emu.store.put(tid, "organisation", "org", org)
        return org

    def payment(self, tenant: str, data: dict, **_: Any) -> dict:
        tid = self._tenant(tenant)
        call = self.emu.call_for(tid, ADMIN_CLIENT)
        return documents_api.record_payment(call, str(data["InvoiceID"]), data.get("Amount"), data.get("Date"))

    def allocation(self, tenant: str, data: dict, **_: Any) -> dict:
        tid = self._tenant(tenant)
        body = {"Allocations": [{"Invoice": {"InvoiceID": data["InvoiceID"]}, "Amount": data["Amount"],
                                 "Date": data.get("Date")}]}
        call = self.emu.call_for(tid, ADMIN_CLIENT, body=body)
        try:
            return documents_api.allocate_credit_note(call, str(data["CreditNoteID"]))
        except HttpError as exc:
            raise HttpError(400, exc.body if isinstance(exc.body, dict) else {"error": exc.body}) from exc

    # -- request log, limits, faults, clock ----------------------------------------------------------------
    def requests(self, query: dict, **_: Any) -> dict:
        rows = self.emu.log.select(query.get("tenant"), int(query.get("since", 0)),
                                   bodies=query.get("bodies") == "true")
        return {"requests": rows}

    def clear_requests(self, **_: Any) -> dict:
        self.emu.log.clear()
        return {"status": "cleared"}

    def get_limits(self, **_: Any) -> dict:
        return self.emu.limiter.limits.as_dict()

    def set_limits(self, data: dict, **_: Any) -> dict:
        """Replace the limits (`{"mode": "real"|"off"}` or numbers) and start every window afresh."""
        if "mode" in data:
            limits = Limits.parse(str(data["mode"]))
        else:
            limits = Limits(**{k: data.get(k, v) for k, v in Limits().as_dict().items()})
        self.emu.limiter.limits = limits
        self.emu.limiter.reset()
        return limits.as_dict()

    def get_faults(self, **_: Any) -> dict:
        return {"faults": [f.as_dict() for f in self.emu.faults.active]}

    def add_fault(self, data: dict, **_: Any) -> dict:
        allowed = {"kind", "tenant_id", "method", "path", "status", "ms", "times"}
        fault = self.emu.faults.add(Fault(**{k: v for k, v in data.items() if k in allowed}))
        return fault.as_dict()

    def remove_faults(self, fault_id: str | None = None, **_: Any) -> dict:
        self.emu.faults.remove(int(fault_id) if fault_id else None)
        return {"faults": [f.as_dict() for f in self.emu.faults.active]}

    def get_clock(self, **_: Any) -> dict:
        return {"now": self.emu.clock.now(), "speed": self.emu.clock.speed}

    def set_clock(self, data: dict, **_: Any) -> dict:
        if "speed" in data:
            self.emu.clock.set_speed(float(data["speed"]))
        if "advance_seconds" in data:
            self.emu.clock.advance(float(data["advance_seconds"]))
        return self.get_clock()
