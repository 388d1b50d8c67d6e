"""Xero's error responses, each in the shape real Xero returns (see shared notes §7)."""

from __future__ import annotations

import uuid
from typing import Any


class HttpError(Exception):
    """Stops a request with a ready response: JSON (dict/list) or plain text."""

    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(f"HTTP {status}")
        self.status = status
        self.body = body
        self.headers = headers or {}


class Invalid(Exception):
    """One element failed Xero's rules; the messages go to its ValidationErrors."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def validation_exception(elements: list[dict], message: str = "A validation exception occurred") -> HttpError:
    return HttpError(400, {"ErrorNumber": 10, "Type": "ValidationException", "Message": message,
                           "Elements": elements})


def not_found() -> HttpError:
    return HttpError(404, "The resource you're looking for cannot be found")


def problem(status: int, title: str, detail: str) -> HttpError:
    """401/403 bodies of the OAuth2 era (RFC 7807 style with Xero's capitalised keys)."""
    return HttpError(status, {"Type": None, "Title": title, "Status": status, "Detail": detail,
                              "Instance": str(uuid.uuid4()), "Extensions": {}})


def unauthorized(detail: str) -> HttpError:
    return problem(401, "Unauthorized", detail)


def forbidden() -> HttpError:
    return problem(403, "Forbidden", "AuthenticationUnsuccessful")


def oauth_error(error: str, status: int = 400) -> HttpError:
    return HttpError(status, {"error": error})
