import pytest

from include.xero_emulator.clock import Clock
from include.xero_emulator.config import Limits
from include.xero_emulator.errors import HttpError
from include.xero_emulator.limits import RateLimiter

pytestmark = pytest.mark.unit


def test_minute_limit_refuses_the_61st_call_with_retry_after() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(concurrent=None, minute=60, day=None, app_minute=None), clock)
    for _ in range(60):
        headers = limiter.acquire("t", "app")
        limiter.release("t")
    assert headers["X-MinLimit-Remaining"] == "0"
    with pytest.raises(HttpError) as err:
        limiter.acquire("t", "app")
    assert err.value.status == 429
    assert err.value.headers["X-Rate-Limit-Problem"] == "minute"
    assert 1 <= int(err.value.headers["Retry-After"]) <= 60


def test_minute_window_starts_afresh_after_sixty_seconds() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(concurrent=None, minute=2, day=None, app_minute=None), clock)
    for _ in range(2):
        limiter.acquire("t", "app")
        limiter.release("t")
    clock.advance(61)
    assert limiter.acquire("t", "app")["X-MinLimit-Remaining"] == "1"


def test_day_limit_names_the_problem_and_is_per_tenant() -> None:
    clock = Clock()
    limiter = RateLimiter(Limits(concurrent=None, minute=None, day=3, app_minute=None), clock)
    for _ in range(3):
        limiter.acquire("t1", "app")
        limiter.release("t1")
    with pytest.raises(HttpError) as err:
        limiter.acquire("t1", "app")
    assert err.value.headers["X-Rate-Limit-Problem"] == "day"
    limiter.acquire("t2", "app")   # another organisation has its own budget


def test_retry_after_is_in_real_seconds_when_the_clock_is_sped_up() -> None:
    clock = Clock(speed=3600)      # an emulated hour per real second
    limiter = RateLimiter(Limits(concurrent=None, minute=None, day=1, app_minute=None), clock)
    limiter.acquire("t", "app")
    limiter.release("t")
    with pytest.raises(HttpError) as err:
        limiter.acquire("t", "app")
    assert int(err.value.headers["Retry-After"]) <= 24


def test_concurrent_limit_counts_calls_in_flight() -> None:
    limiter = RateLimiter(Limits(concurrent=2, minute=None, day=None, app_minute=None), Clock())
    limiter.acquire("t", "app")
    limiter.acquire("t", "app")
    with pytest.raises(HttpError) as err:
        limiter.acquire("t", "app")
    assert err.value.headers["X-Rate-Limit-Problem"] == "concurrent"
    limiter.release("t")
    limiter.acquire("t", "app")


@pytest.mark.parametrize(("text", "expected"), [
    ("real", Limits()), ("off", Limits.off()),
    ("minute=600,day=off", Limits(concurrent=5, minute=600, day=None, app_minute=10000)),
])
def test_limits_parse_from_the_command_line(text: str, expected: Limits) -> None:
    assert Limits.parse(text) == expected
