"""A root middleware of Airflow's API server: a Sync Now whose backfill range is upside down ('Backfill from' after
'Backfill to') is refused with a plain 400 before any run exists. Airflow's trigger form, Omono's Sync Now button
and any REST client trigger through `POST /api/v2/dags/omono_xero_sync/dagRuns`; each parameter is validated by
Airflow on its own, but JSON schema cannot compare two of them."""

from __future__ import annotations

import json
import re
from datetime import date
from typing import Any

from omono_xero_sync_ui.security import DAG_ID

TRIGGER = re.compile(rf"/api/v2/dags/{DAG_ID}/dagRuns/?$")
BACKWARDS = "'Backfill from' must be on or before 'Backfill to' (document dates); nothing was triggered."


def range_problem(body: bytes) -> str | None:
    """Why this trigger body is refused, or None (anything unreadable is left to Airflow's own validation)."""
    try:
        conf = json.loads(body or b"{}").get("conf") or {}
        start, end = (date.fromisoformat(conf[k]) for k in ("date_from", "date_to"))
    except (ValueError, TypeError, KeyError, AttributeError):
        return None
    return BACKWARDS if start > end else None


class BackfillRangeGuard:
    """Pure ASGI: reads the body of the one route it guards, answers 400 or replays the body to Airflow."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or not TRIGGER.search(scope["path"]):
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        if problem := range_problem(body):
            await _answer(send, 400, {"detail": problem})
            return
        replayed = False

        async def replay() -> dict:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


async def _answer(send: Any, status: int, content: dict) -> None:
    payload = json.dumps(content).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]})
    await send({"type": "http.response.body", "body": payload})
