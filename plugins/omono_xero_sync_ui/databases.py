"""The two databases a page reads, one connection each per request (the pipeline's own `db.connect`: Airflow
connections, dict rows, commit at the end of a clean request). Module-level so tests can override them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends


def state_db() -> Iterator[Any]:
    from include.omono_xero_sync import db

    with db.connect() as conn:
        yield conn


def omono_db() -> Iterator[Any]:
    from include.omono_xero_sync import db, settings

    with db.connect(settings.OMONO_CONN_ID) as conn:
        yield conn


StateDb = Annotated[Any, Depends(state_db)]
OmonoDb = Annotated[Any, Depends(omono_db)]
