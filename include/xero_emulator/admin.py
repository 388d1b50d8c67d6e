"""The admin API under `/_emulator` (not a Xero path): reset, seed, inspect stored objects, the request log,
limits, paging, faults, the clock, and a bookkeeper's actions in Xero (payments, allocations, enabling a
currency, lock dates, approving, voiding, deleting or retyping a document, archiving or restoring a contact).

A bookkeeper's actions go through the same rules as the API (lock dates, the payments lock, unique names), as
Xero's web app applies them; they are made as "typed by a person", so `createdByMyApp` never returns them."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from include.xero_emulator import contacts_api, documents_api, settings_api
from include.xero_emulator.config import Limits
from include.xero_emulator.context import MAX_PAGE_SIZE
from include.xero_emulator.documents_api import CREDIT_NOTES, INVOICES, DocKind
from include.xero_emulator.errors import HttpError, Invalid
from include.xero_emulator.faults import Fault
from include.xero_emulator.lockdates import KEYS as LOCK_DATE_KEYS
from include.xero_emulator.lockdates import parse_lock_date
from include.xero_emulator.wire import dumps

if TYPE_CHECKING:
    from include.xero_emulator.app import Emulator, Response

ADMIN_CLIENT = "emulator-admin"
_KINDS = {"contacts": "contact", "invoices": "invoice", "creditnotes": "creditnote", "accounts": "account",
          "currencies": "currency", "taxrates": "taxrate"}
_DOC_KINDS = {"invoices": INVOICES, "creditnotes": CREDIT_NOTES}
# A bookkeeper's one-click status changes in Xero's web app.
_DOC_ACTIONS = {"approve": "AUTHORISED", "void": "VOIDED", "delete": "DELETED"}
_CONTACT_ACTIONS = {"archive": "ARCHIVED", "restore": "ACTIVE"}


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
            ("PATCH", re.compile(rf"/_emulator/tenants/{t}/taxrates/(?P<tax_type>\w+)"), self.patch_tax_rate),
            ("POST", re.compile(rf"/_emulator/tenants/{t}/(?P<kind>invoices|creditnotes)/(?P<ref>[^/]+)/"
                                rf"(?P<action>approve|void|delete)", re.IGNORECASE), self.document_action),
            ("PATCH", re.compile(rf"/_emulator/tenants/{t}/(?P<kind>invoices|creditnotes)/(?P<ref>[^/]+)",
                                 re.IGNORECASE), self.edit_document),
            ("POST", re.compile(rf"/_emulator/tenants/{t}/contacts/(?P<ref>[^/]+)/(?P<action>archive|restore)",
                                re.IGNORECASE), self.contact_action),
            ("GET", re.compile(rf"/_emulator/tenants/{t}/(?P<kind>\w+)"), self.objects),
            ("GET", re.compile(r"/_emulator/requests"), self.requests),
            ("DELETE", re.compile(r"/_emulator/requests"), self.clear_requests),
            ("GET", re.compile(r"/_emulator/limits"), self.get_limits),
            ("PUT", re.compile(r"/_emulator/limits"), self.set_limits),
            ("GET", re.compile(r"/_emulator/paging"), self.get_paging),
            ("PUT", re.compile(r"/_emulator/paging"), self.set_paging),
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
        return {"status": "ok", "pid": os.getpid(), "persistent": self.emu.store.persistent,
                "limits": self.emu.limiter.limits.as_dict(), "clock_speed": self.emu.clock.speed}

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
        stored = self.emu.store.tenant(tid).objects[_KINDS[kind.lower()]].values()
        if not query.get("fields"):
            return {kind: list(stored)}
        fields = [f.strip() for f in query["fields"].split(",") if f.strip()]   # a check of a million documents
        return {kind: [{f: o[f] for f in fields if f in o} for o in stored]}       # needs a few fields of each

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
        """Organisation settings; `PeriodLockDate`/`EndOfYearLockDate` as `YYYY-MM-DD`, or null to unlock."""
        tid = self._tenant(tenant)
        org = {**self.emu.store.tenant(tid).organisation, **data}
        for key in LOCK_DATE_KEYS:
            if key in data:
                org[key] = parse_lock_date(data[key])
                if org[key] is None:
                    del org[key]
        self.emu.store.put(tid, "organisation", "org", org)
        return org

    def patch_tax_rate(self, tenant: str, tax_type: str, data: dict, **_: Any) -> dict:
        """A bookkeeper editing a tax rate's percentage in Xero's settings (`{"EffectiveRate": 5}`): documents
        written afterwards are computed at the new rate."""
        tid = self._tenant(tenant)
        rate = self.emu.store.tenant(tid).tax_rates.get(tax_type.upper())
        if rate is None:
            raise HttpError(404, {"error": f"no tax rate {tax_type}"})
        pct = float(data["EffectiveRate"])
        changed = {**rate, "EffectiveRate": pct, "DisplayTaxRate": pct,
                   "TaxComponents": [{**c, "Rate": pct} for c in rate.get("TaxComponents", [])[:1]]}
        self.emu.store.put(tid, "taxrate", rate["TaxType"], changed)
        return changed

    def document_action(self, tenant: str, kind: str, ref: str, action: str, **_: Any) -> dict:
        """Approve, void or delete a document as a bookkeeper does in Xero."""
        return self._change_document(tenant, _DOC_KINDS[kind.lower()], ref, {"Status": _DOC_ACTIONS[action.lower()]})

    def edit_document(self, tenant: str, kind: str, ref: str, data: dict, **_: Any) -> dict:
        """A bookkeeper's typed change of a document (its lines, date, reference…), a partial update."""
        return self._change_document(tenant, _DOC_KINDS[kind.lower()], ref, data)

    def _change_document(self, tenant: str, kind: DocKind, ref: str, change: dict) -> dict:
        tid = self._tenant(tenant)
        call = self.emu.call_for(tid, ADMIN_CLIENT, query={"unitdp": "4"})
        if documents_api.find_document(call, kind, ref) is None:
            raise HttpError(404, f"no {kind.noun.lower()} {ref}")
        return self._apply(lambda c, item: documents_api.upsert_document(c, kind, item, path_id=ref), call, change)

    def contact_action(self, tenant: str, ref: str, action: str, **_: Any) -> dict:
        """Archive or restore a contact as a bookkeeper does in Xero (a restore whose name an active contact
        now holds is refused with Xero's name message)."""
        tid = self._tenant(tenant)
        call = self.emu.call_for(tid, ADMIN_CLIENT)
        if contacts_api.find_contact(call, {"ContactID": ref}) is None:
            raise HttpError(404, f"no contact {ref}")
        return self._apply(lambda c, item: contacts_api.upsert_contact(c, item, path_id=ref), call,
                           {"ContactStatus": _CONTACT_ACTIONS[action.lower()]})

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

    def get_paging(self, **_: Any) -> dict:
        return {"max_page_size": self.emu.max_page_size}

    def set_paging(self, data: dict, **_: Any) -> dict:
        """Serve at most `max_page_size` records a page whatever pageSize asks (null: Xero's 1000), so a test can
        prove a client pages by `pagination` rather than stopping at the first short page."""
        size = data.get("max_page_size")
        size = MAX_PAGE_SIZE if size is None else int(size)
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise ValueError(f"max_page_size must be between 1 and {MAX_PAGE_SIZE}")
        self.emu.max_page_size = size
        return self.get_paging()

    def get_faults(self, **_: Any) -> dict:
        return {"faults": [f.as_dict() for f in self.emu.faults.active]}

    def add_fault(self, data: dict, **_: Any) -> dict:
        allowed = {"kind", "tenant_id", "method", "path", "status", "ms", "times", "text", "exception", "message"}
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
