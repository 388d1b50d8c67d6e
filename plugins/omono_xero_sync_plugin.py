"""Registers the integration's pages with Airflow: a FastAPI app at /xero-sync, Xero's OAuth callback at
/xero/callback (the redirect URI registered with the Xero app), a "Xero sync log" tab on DAG runs and task
instances, a "Xero sync" entry in the navigation bar (the readiness page), and a root middleware that refuses a
Sync Now whose backfill range is upside down before any run exists."""

from airflow.plugins_manager import AirflowPlugin
from omono_xero_sync_ui.app import app
from omono_xero_sync_ui.connect_pages import callback_app
from omono_xero_sync_ui.guard import BackfillRangeGuard


class OmonoXeroSyncPlugin(AirflowPlugin):
    name = "omono_xero_sync"
    fastapi_apps = [{"app": app, "url_prefix": "/xero-sync", "name": "omono-xero-sync"},
                    {"app": callback_app, "url_prefix": "/xero", "name": "omono-xero-sync-callback"}]
    fastapi_root_middlewares = [{"middleware": BackfillRangeGuard, "name": "omono-xero-sync-backfill-range"}]
    external_views = [
        {"name": "Xero sync log", "href": "xero-sync/ui/runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "xero-sync-run"},
        {"name": "Xero sync log", "href": "xero-sync/ui/task/{DAG_ID}/{RUN_ID}/{TASK_ID}",
         "destination": "task_instance", "url_route": "xero-sync-task"},
        {"name": "Xero sync", "href": "xero-sync/ui/readiness", "destination": "nav", "url_route": "xero-sync"},
    ]
