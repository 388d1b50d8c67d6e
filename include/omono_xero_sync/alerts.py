"""Failure alerts: when a task of the sync fails for good (after Airflow's retries), e-mail the address in the
`alert_email` setting through Airflow's SMTP connection (`smtp_default`, or OMONO_XERO_SMTP_CONN_ID), listing
what needs attention. An alert that cannot be sent is logged, never raised: it must not hide the failure."""

from __future__ import annotations

import html
import logging
import os
from typing import Any

from include.omono_xero_sync import db, entities, state, sync_log

log = logging.getLogger(__name__)
SMTP_CONN_ID = os.environ.get("OMONO_XERO_SMTP_CONN_ID", "smtp_default")


def message(context: dict, attention: list[dict]) -> tuple[str, str]:
    ti = context.get("ti")
    task_id = getattr(ti, "task_id", "?")
    run_id = context.get("run_id", "?")
    error = str(context.get("exception") or "")[:2000]
    subject = f"[omono-xero-sync] {task_id} failed in run {run_id}"
    items = "".join(f"<li>{html.escape(entities.BY_NAME[r['entity']].noun)} {html.escape(str(r['omono_number']))}: "
                    f"{html.escape(' '.join(r['last_messages']))}</li>" for r in attention[:50])
    body = (f"<p>The Omono → Xero sync task <b>{html.escape(task_id)}</b> failed in run "
            f"<b>{html.escape(str(run_id))}</b>.</p><pre>{html.escape(error)}</pre>"
            f"<p>{len(attention)} record(s) need attention:</p><ul>{items}</ul>"
            "<p>Open the run's <i>Xero sync log</i> tab in Airflow for details, Retry and Skip.</p>")
    return subject, body


def notify_failure(context: dict[str, Any]) -> None:
    try:
        with db.connect() as conn:
            to = state.get_setting(conn, "alert_email")
            attention = sync_log.unresolved(conn) if to else []
        if not to:
            return
        send(to, *message(context, attention))
        log.info("Failure alert sent to %s", to)
    except Exception:   # noqa: BLE001 - an alert must never mask the failure it reports
        log.exception("Could not send the failure alert")


def send(to: str, subject: str, body: str) -> None:
    """One HTML e-mail through Airflow's SMTP connection (the failure alert, and the test on General options)."""
    from airflow.providers.smtp.hooks.smtp import SmtpHook

    with SmtpHook(smtp_conn_id=SMTP_CONN_ID) as hook:
        hook.send_email_smtp(to=to, subject=subject, html_content=body,
                             from_email=os.environ.get("OMONO_XERO_ALERT_FROM", "omono-xero-sync@localhost"))


def smtp_configured() -> bool:
    """Whether Airflow knows the SMTP connection alerts go through (General options warns when it does not)."""
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(SMTP_CONN_ID)
    except Exception:   # noqa: BLE001 - Airflow raises its own not-found error, or a backend's
        return False
    return True
