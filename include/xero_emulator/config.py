"""Settings of one emulator instance: where it keeps data, which limits it enforces, how fast its clock runs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_FIXTURE = Path(__file__).parent / "fixtures" / "demo.json"


@dataclass
class Limits:
    """Per-tenant call limits (Xero: 5 concurrent, 60 a minute, 5,000 a day; 10,000 a minute per app).

    `None` switches a limit off; `Limits.off()` switches all off."""

    concurrent: int | None = 5
    minute: int | None = 60
    day: int | None = 5000
    app_minute: int | None = 10000

    @classmethod
    def off(cls) -> Limits:
        return cls(None, None, None, None)

    @classmethod
    def parse(cls, text: str) -> Limits:
        """`real`, `off`, or `minute=600,day=50000,concurrent=5` (unnamed ones keep Xero's values)."""
        if text == "real":
            return cls()
        if text == "off":
            return cls.off()
        limits = cls()
        for part in filter(None, (p.strip() for p in text.split(","))):
            name, _, value = part.partition("=")
            if name not in {"concurrent", "minute", "day", "app_minute"}:
                raise ValueError(f"unknown limit {name!r}")
            setattr(limits, name, None if value in {"", "off", "none"} else int(value))
        return limits

    def as_dict(self) -> dict[str, int | None]:
        return {"concurrent": self.concurrent, "minute": self.minute, "day": self.day,
                "app_minute": self.app_minute}


@dataclass
class EmulatorConfig:
    data_dir: Path | None = None          # None: state lives in memory only
    fixture: Path = DEFAULT_FIXTURE
    limits: Limits = field(default_factory=Limits)
    clock_speed: float = 1.0
    record_bodies: bool = False           # keep request/response bodies in the admin request log
    access_token_seconds: int = 1800      # Xero: 30 minutes
    refresh_grace_seconds: int = 1800     # Xero: an old refresh token still works for 30 minutes
    refresh_token_days: int = 60          # Xero: unused refresh tokens expire after 60 days
    idempotency_seconds: int = 360        # Xero keeps idempotency keys for 6 minutes
    max_request_bytes: int = 3_500_000    # Xero: 3.5 MB per request
