"""Xero's call limits per organisation: concurrent calls, a fixed minute window and a fixed day window (each
starting at the tenant's first call), plus the per-app minute limit; with the X-*-Remaining headers."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from include.xero_emulator.clock import Clock
from include.xero_emulator.config import Limits
from include.xero_emulator.errors import HttpError


@dataclass
class _Window:
    seconds: int
    started: float = -math.inf
    count: int = 0

    def roll(self, now: float) -> None:
        if now >= self.started + self.seconds:
            self.started, self.count = now, 0

    def left(self, limit: int | None) -> int | None:
        return None if limit is None else max(limit - self.count, 0)

    def retry_after(self, now: float) -> float:
        return self.started + self.seconds - now


@dataclass
class _TenantUsage:
    minute: _Window = field(default_factory=lambda: _Window(60))
    day: _Window = field(default_factory=lambda: _Window(86400))
    in_flight: int = 0


class RateLimiter:
    def __init__(self, limits: Limits, clock: Clock) -> None:
        self.limits = limits
        self.clock = clock
        self._tenants: dict[str, _TenantUsage] = {}
        self._app_minute: dict[str, _Window] = {}

    def reset(self) -> None:
        self._tenants.clear()
        self._app_minute.clear()

    def usage(self, tenant_id: str) -> _TenantUsage:
        return self._tenants.setdefault(tenant_id, _TenantUsage())

    def acquire(self, tenant_id: str, client_id: str) -> dict[str, str]:
        """Count one call or refuse it with Xero's 429; returns the headers for the response."""
        now = self.clock.now()
        usage = self.usage(tenant_id)
        app = self._app_minute.setdefault(client_id, _Window(60))
        for window in (usage.minute, usage.day, app):
            window.roll(now)
        lim = self.limits
        if lim.concurrent is not None and usage.in_flight >= lim.concurrent:
            raise self._refuse("concurrent", None, usage, app)
        if lim.day is not None and usage.day.count >= lim.day:
            raise self._refuse("day", usage.day.retry_after(now), usage, app)
        if lim.minute is not None and usage.minute.count >= lim.minute:
            raise self._refuse("minute", usage.minute.retry_after(now), usage, app)
        if lim.app_minute is not None and app.count >= lim.app_minute:
            raise self._refuse("appminute", app.retry_after(now), usage, app)
        usage.minute.count += 1
        usage.day.count += 1
        app.count += 1
        usage.in_flight += 1
        return self.headers(usage, app)

    def release(self, tenant_id: str) -> None:
        usage = self.usage(tenant_id)
        usage.in_flight = max(usage.in_flight - 1, 0)

    def headers(self, usage: _TenantUsage, app: _Window) -> dict[str, str]:
        values = {"X-DayLimit-Remaining": usage.day.left(self.limits.day),
                  "X-MinLimit-Remaining": usage.minute.left(self.limits.minute),
                  "X-AppMinLimit-Remaining": app.left(self.limits.app_minute)}
        return {k: str(v) for k, v in values.items() if v is not None}

    def _refuse(self, problem: str, wait: float | None, usage: _TenantUsage, app: _Window) -> HttpError:
        headers = {"X-Rate-Limit-Problem": problem, **self.headers(usage, app)}
        if wait is not None:
            headers["Retry-After"] = str(max(1, math.ceil(self.clock.real_seconds(wait))))
        return HttpError(429, "", headers)
