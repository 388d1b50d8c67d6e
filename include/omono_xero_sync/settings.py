"""Where things are and the defaults the integration starts with; every value can be overridden by an
environment variable so the same code runs in tests, the demo, docker-compose and production."""

from __future__ import annotations

import os

OMONO_CONN_ID = os.environ.get("OMONO_XERO_OMONO_CONN_ID", "omono_db")
# The integration's own schema may live in another database; by default it sits beside Omono's tables.
STATE_CONN_ID = os.environ.get("OMONO_XERO_STATE_CONN_ID", OMONO_CONN_ID)
XERO_CONN_ID = os.environ.get("OMONO_XERO_XERO_CONN_ID", "xero_default")
STATE_SCHEMA = "xero_sync"

BATCH_SIZE = 50                                    # Xero: about 50 elements per write
CALLS_PER_MINUTE = int(os.environ.get("OMONO_XERO_CALLS_PER_MINUTE", "58"))   # Xero allows 60; keep headroom
CONCURRENT_CALLS = 5                               # Xero: 5 calls in progress at one time per organisation
DAILY_CALL_FLOOR = int(os.environ.get("OMONO_XERO_DAILY_CALL_FLOOR", "25"))   # stop writing below this
# Pauses before trying again after a transient fault: a read is retried in place, a write whose outcome is
# unknown is looked up and resent by push; after these the task fails and Airflow retries it (dags/…: retries).
RETRY_BACKOFF = tuple(float(s) for s in os.environ.get("OMONO_XERO_RETRY_BACKOFF", "5,20,60").split(","))
REQUEST_TIMEOUT = (10, 120)                        # seconds: connect, read
# One writer per organisation (write_lock.py): how long a run waits for another one's writes before it gives up.
LOCK_WAIT_SECONDS = float(os.environ.get("OMONO_XERO_LOCK_WAIT_SECONDS", "1800"))
LOCK_POLL_SECONDS = 1.0

# Settings a user can change (Airflow UI, issue 4); these are the values before anyone does.
DEFAULT_SETTINGS: dict[str, object] = {
    "status.dispatch_invoice": "AUTHORISED",
    "status.delivery_invoice": "AUTHORISED",
    "status.sales_credit_note": "AUTHORISED",
    "status.purchase_credit_note": "AUTHORISED",
    "sync_interval": "off",                        # off, 15min, hourly, 4hours, daily
    "auto_create_accounts": False,
    "credit_check": False,
    "exchange_rate_source": "omono",               # omono: send each document's own rate; xero: Xero's day rate
    "restore_archived_contacts": False,            # a company matching an archived Xero contact restores it
    "reconcile_interval": "weekly",                # off, daily, weekly, monthly
    "log_retention_days": 180,                     # sync-log rows older than this are deleted by each run
    "alert_email": None,
    "omono_url_pattern": os.environ.get("OMONO_XERO_OMONO_URL", "http://localhost:8000/omono/{entity}/{id}"),
}
SYNC_INTERVALS = {"off": None, "15min": 15, "hourly": 60, "4hours": 240, "daily": 1440}
DOCUMENT_STATUSES = ("DRAFT", "SUBMITTED", "AUTHORISED")
