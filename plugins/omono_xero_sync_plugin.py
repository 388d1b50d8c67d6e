"""Registers the integration's pages with Airflow: a FastAPI app at /xero-sync, a "Xero sync log" tab on DAG runs
and task instances, and a "Xero sync" entry in the navigation bar (the readiness page)."""

from airflow.plugins_manager import AirflowPlugin
from omono_xero_sync_ui.app import app


class OmonoXeroSyncPlugin(AirflowPlugin):
    name = "omono_xero_sync"
    fastapi_apps = [{"app": app, "url_prefix": "/xero-sync", "name": "omono-xero-sync"}]
    external_views = [
        {"name": "Xero sync log", "href": "xero-sync/ui/runs/{DAG_ID}/{RUN_ID}", "destination": "dag_run",
         "url_route": "xero-sync-run"},
        {"name": "Xero sync log", "href": "xero-sync/ui/task/{DAG_ID}/{RUN_ID}/{TASK_ID}",
         "destination": "task_instance", "url_route": "xero-sync-task"},
        {"name": "Xero sync", "href": "xero-sync/ui/readiness", "destination": "nav", "url_route": "xero-sync"},
    ]
