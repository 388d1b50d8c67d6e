"""Allocation of credit notes to the invoices Omono links them to, once both are AUTHORISED in Xero.

Xero needs the amount: the smaller of the credit note's remaining credit and the invoice's amount due, both
read from Xero first (one GET per 40 documents of each kind), since payments are recorded in Xero only."""

from __future__ import annotations

import logging
from decimal import Decimal
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from include.omono_xero_sync import settings, sync_log, transform
from include.omono_xero_sync.sync_log import LogRow, RunContext
from include.omono_xero_sync.xero_api import to_model

log = logging.getLogger(__name__)
S = settings.STATE_SCHEMA
PAIRS = {"sales_credit_note": ("sales", "dispatch_invoice"), "purchase_credit_note": ("purchase", "delivery_invoice")}


def candidates(state_conn: psycopg.Connection, omono: psycopg.Connection) -> list[dict]:
    """Linked credit notes and invoices both AUTHORISED in Xero, not yet allocated (or tried)."""
    links = {(r["kind"], r["id"]): r for r in omono.execute(
        "SELECT id, kind, number, invoice_id FROM omono.credit_notes WHERE invoice_id IS NOT NULL AND "
        "status = 'issued'")}
    if not links:
        return []
    done = {(r["entity"], r["omono_id"]) for r in state_conn.execute(f"SELECT entity, omono_id FROM {S}.allocations")}
    synced = {(r["entity"], r["omono_id"]): r for r in state_conn.execute(
        f"SELECT entity, omono_id, omono_number, xero_id FROM {S}.record_state WHERE status = 'synced' AND "
        "xero_status = 'AUTHORISED' AND xero_id IS NOT NULL")}
    out = []
    for entity, (kind, invoice_entity) in PAIRS.items():
        for (link_kind, cid), link in links.items():
            credit, invoice = synced.get((entity, cid)), synced.get((invoice_entity, link["invoice_id"]))
            if link_kind == kind and credit and invoice and (entity, cid) not in done:
                out.append({"entity": entity, "credit": credit, "invoice_entity": invoice_entity, "invoice": invoice})
    return out


def allocate(ctx: RunContext, state_conn: psycopg.Connection, omono: psycopg.Connection, client: Any) -> dict:
    todo = candidates(state_conn, omono)
    if not todo or ctx.dry_run:
        return {"allocated": 0, "planned": len(todo)}
    due = _read(client, "get_invoices", [str(t["invoice"]["xero_id"]) for t in todo], "amount_due", "invoice_id")
    left = _read(client, "get_credit_notes", [str(t["credit"]["xero_id"]) for t in todo], "remaining_credit",
                 "credit_note_id")
    rows: list[LogRow] = []
    allocated = 0
    for t in todo:
        credit, invoice = t["credit"], t["invoice"]
        amount = min(left.get(str(credit["xero_id"]), Decimal(0)), due.get(str(invoice["xero_id"]), Decimal(0)))
        if amount <= 0:
            continue       # nothing to allocate now (credit used, or invoice settled in Xero)
        body = {"Allocations": [{"Invoice": {"InvoiceID": str(invoice["xero_id"])}, "Amount": amount,
                                 "Date": _today()}]}
        key = transform.idempotency_key(client.xero.tenant_id, "allocation", [transform.jsonable(body)])
        answer = client.write("create_credit_note_allocation", str(credit["xero_id"]), to_model("Allocations", body),
                              summarize_errors=False, idempotency_key=key).allocations[0]
        errors = [e.message for e in (answer.validation_errors or [])]
        status = "failed" if errors else "allocated"
        messages = transform.explain(credit["omono_number"], errors) if errors else [
            f"Allocated {amount} of {credit['omono_number']} to {invoice['omono_number']} in Xero."]
        state_conn.execute(
            f"INSERT INTO {S}.allocations (entity, omono_id, invoice_entity, invoice_omono_id, amount, status, "
            "messages, xero_allocation_id, run_id) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (t["entity"], credit["omono_id"], t["invoice_entity"], invoice["omono_id"], amount, status,
             Jsonb(messages), None if errors else answer.allocation_id, ctx.run_id))
        rows.append(LogRow(t["entity"], credit["omono_id"], credit["omono_number"],
                           "failed" if errors else "allocated", str(credit["xero_id"]), messages,
                           transform.jsonable(body), {"errors": errors}))
        allocated += not errors
    sync_log.write(state_conn, ctx, rows)
    state_conn.commit()
    log.info("Allocated %d credit note(s) to their invoices", allocated)
    return {"allocated": allocated, "planned": len(todo)}


def _read(client: Any, method: str, ids: list[str], field: str, id_field: str) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for i in range(0, len(ids), settings.LOOKUP_BATCH):
        chunk = sorted(set(ids[i:i + settings.LOOKUP_BATCH]))
        if method == "get_invoices":
            docs = client.read(method, i_ds=chunk).invoices or []
        else:
            where = " OR ".join(f'CreditNoteID==GUID("{c}")' for c in chunk)
            docs = client.read(method, where=where).credit_notes or []
        out.update({str(getattr(d, id_field)): Decimal(str(getattr(d, field) or 0)) for d in docs})
    return out


def _today() -> str:
    from datetime import date

    return date.today().isoformat()
