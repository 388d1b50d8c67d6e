"""Checks recorded emulator traffic against Xero's official OpenAPI spec with openapi-core.

The spec is found through XERO_OPENAPI_SPEC, whose default is the shared copy beside the project."""

from __future__ import annotations

import json
import os
import warnings
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = Path(os.environ.get("XERO_OPENAPI_SPEC", ROOT.parent / "shared" / "xero" / "xero_accounting.yaml"))
API_PREFIX = "/api.xro/2.0"
# Statuses the spec documents for the operations in scope; others (401, 403, 404, 429, 503…) it cannot judge.
DOCUMENTED = {200, 400}


@cache
def openapi() -> Any:
    import openapi_core

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Xero's spec has values its own schema language rejects (e.g. default: 'false' on booleans), so the
        # meta-validation of the spec is skipped; requests and responses are still validated against it.
        return openapi_core.OpenAPI.from_file_path(str(SPEC_PATH),
                                                   config=openapi_core.Config(spec_validator_cls=None))


def violations(entry: dict) -> list[str]:
    """Problems of one logged exchange (empty when both request and response conform)."""
    from openapi_core.testing import MockRequest, MockResponse

    if not entry["path"].startswith(API_PREFIX):
        return []
    headers = {**entry["request_headers"], "Authorization": "Bearer recorded"}
    args = dict(parse_qsl(entry["query"], keep_blank_values=True))
    body = _without_sdk_read_only_flag(entry["request_body"])
    request = MockRequest("https://api.xero.com", entry["method"].lower(), entry["path"], args=args,
                          headers=headers, data=body,
                          content_type=headers.get("content-type", "application/json").split(";")[0])
    found: list[str] = []
    label = f"{entry['method']} {entry['path']}?{entry['query']} -> {entry['status']}"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            openapi().validate_request(request)
        except Exception as exc:  # noqa: BLE001 - every validation failure is reported, whatever its class
            found.append(f"request {label}: {_describe(exc)}")
        if entry["status"] in DOCUMENTED and entry["response_content_type"].startswith("application/json"):
            response = MockResponse(entry["response_body"].encode(), status_code=entry["status"],
                                    content_type="application/json")
            try:
                openapi().validate_response(request, response)
            except Exception as exc:  # noqa: BLE001
                found.append(f"response {label}: {_describe(exc)}")
    return found


def _without_sdk_read_only_flag(text: str | None) -> bytes | None:
    """xero-python always serialises the read-only `HasAttachments: false` on every model (shared notes §1.1);
    Xero ignores it. That one SDK quirk is tolerated; any other read-only property sent is still a violation."""
    if not text:
        return None

    def strip(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: strip(v) for k, v in node.items() if not (k == "HasAttachments" and v is False)}
        if isinstance(node, list):
            return [strip(v) for v in node]
        return node

    try:
        return json.dumps(strip(json.loads(text))).encode()
    except ValueError:
        return text.encode()


def _describe(exc: BaseException) -> str:
    parts = [f"{type(exc).__name__}: {exc}"]
    cause = exc.__cause__ or exc.__context__
    for err in getattr(cause, "schema_errors", None) or getattr(exc, "schema_errors", None) or []:
        parts.append(f"  at {'/'.join(str(p) for p in err.path)}: {err.message[:300]}")
    return "\n".join(parts)[:2000]


def dump(entry: dict) -> str:
    return json.dumps({k: entry[k] for k in ("method", "path", "query", "status")})
