"""The demo's and the bench's emulator process: each talks to its own, even when two start side by side."""

import httpx
import pytest

from include.commands import demo

pytestmark = pytest.mark.integration


def test_an_emulator_started_on_a_port_another_emulator_holds_answers_from_a_port_of_its_own() -> None:
    # Two benches started together both found the preferred port free; the second one's emulator could not listen
    # there, and its sync then talked to the first one's organisation (its tokens refused as invalid_grant).
    first, first_url = demo.start_emulator(demo._free_port(18767), in_memory=True)
    try:
        taken = int(first_url.rsplit(":", 1)[1])
        second, second_url = demo.start_emulator(taken, in_memory=True)
        try:
            assert second_url != first_url
            assert httpx.get(f"{second_url}/_emulator/health").json()["pid"] == second.pid
            assert httpx.get(f"{first_url}/_emulator/health").json()["pid"] == first.pid
        finally:
            second.terminate()
            second.wait(10)
    finally:
        first.terminate()
        first.wait(10)
