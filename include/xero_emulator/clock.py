"""The emulator's clock: real time, optionally sped up or moved forward so that token expiry, idempotency
retention and the daily call budget can be exercised in seconds by tests and benchmarks."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime


class Clock:
    """Emulated time = wall time at start + elapsed real time × speed + any manual advance."""

    def __init__(self, speed: float = 1.0) -> None:
        self._lock = threading.Lock()
        self._initial_speed = speed
        self.reset()

    def reset(self) -> None:
        """Back to wall time at the speed the emulator was started with."""
        with self._lock:
            self._speed = self._initial_speed
            self._anchor_real = time.monotonic()
            self._anchor_emulated = time.time()

    @property
    def speed(self) -> float:
        return self._speed

    def now(self) -> float:
        """Emulated seconds since the epoch."""
        with self._lock:
            return self._anchor_emulated + (time.monotonic() - self._anchor_real) * self._speed

    def now_ms(self) -> int:
        return int(self.now() * 1000)

    def now_dt(self) -> datetime:
        return datetime.fromtimestamp(self.now(), tz=UTC)

    def today(self) -> date:
        return self.now_dt().date()

    def set_speed(self, speed: float) -> None:
        if speed <= 0:
            raise ValueError("clock speed must be positive")
        with self._lock:
            now = self._anchor_emulated + (time.monotonic() - self._anchor_real) * self._speed
            self._anchor_real, self._anchor_emulated, self._speed = time.monotonic(), now, speed

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._anchor_emulated += seconds

    def real_seconds(self, emulated_seconds: float) -> float:
        """How long a client must really wait for `emulated_seconds` to pass (used for Retry-After)."""
        return emulated_seconds / self._speed
