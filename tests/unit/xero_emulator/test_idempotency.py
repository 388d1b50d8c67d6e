import pytest

from include.xero_emulator.clock import Clock
from include.xero_emulator.errors import HttpError
from include.xero_emulator.idempotency import CachedResponse, IdempotencyCache

pytestmark = pytest.mark.unit


def _cache() -> tuple[IdempotencyCache, Clock]:
    clock = Clock()
    return IdempotencyCache(clock, retention_seconds=360), clock


def test_same_key_and_request_within_six_minutes_replays_the_cached_response() -> None:
    cache, clock = _cache()
    fp = cache.fingerprint("PUT", "/Invoices", "", b"{}")
    cache.remember("app", "k", CachedResponse(fp, clock.now(), 200, b"first", "application/json"))
    clock.advance(359)
    assert cache.lookup("app", "k", fp).body == b"first"


def test_key_is_forgotten_after_six_minutes() -> None:
    cache, clock = _cache()
    fp = cache.fingerprint("PUT", "/Invoices", "", b"{}")
    cache.remember("app", "k", CachedResponse(fp, clock.now(), 200, b"first", "application/json"))
    clock.advance(361)
    assert cache.lookup("app", "k", fp) is None


def test_same_key_with_another_body_is_refused() -> None:
    cache, clock = _cache()
    cache.remember("app", "k", CachedResponse(cache.fingerprint("PUT", "/Invoices", "", b"{}"), clock.now(), 200,
                                              b"", "application/json"))
    with pytest.raises(HttpError) as err:
        cache.lookup("app", "k", cache.fingerprint("PUT", "/Invoices", "", b'{"x":1}'))
    assert err.value.status == 400
    assert err.value.body["Message"] == "Idempotency Key: k is used with a different request."


def test_keys_are_per_app() -> None:
    cache, clock = _cache()
    fp = cache.fingerprint("PUT", "/Invoices", "", b"{}")
    cache.remember("app1", "k", CachedResponse(fp, clock.now(), 200, b"", "application/json"))
    assert cache.lookup("app2", "k", fp) is None


def test_keys_longer_than_128_characters_are_refused() -> None:
    cache, _ = _cache()
    with pytest.raises(HttpError) as err:
        cache.lookup("app", "k" * 129, "fp")
    assert err.value.status == 400
