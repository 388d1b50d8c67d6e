"""The randomized-history suite (docs/RELIABILITY.md).

CI runs a few seeded histories that together include every Omono change, every action of the bookkeeper and
every fault kind; `make soak` runs many more for as long as SOAK_MINUTES says. A failing history prints its
seed, its trace and how to replay it: `python -m tests.histories.replay SEED --profile ci`."""

from __future__ import annotations

import os
from collections import Counter

import pytest

from tests.histories import bookkeeper, faults, history, omono

pytestmark = pytest.mark.integration
COVERED: dict[int, Counter] = {}

# Each CI history must include these operations and faults (all kinds are covered across the three).
CI_HISTORIES = {
    3101: ("kill", "kill_after_commit", "drop_after_commit", "error", "create_dispatch", "create_credit_note",
           "link_credit_note", "pay", "approve", "rename_company", "create_company", "type_contact"),
    3102: ("timeout", "token_expiry", "revoke", "budget", "offline", "create_delivery", "edit_document",
           "cancel_document", "delete_document", "type_document", "void_typed", "void", "archive_contact"),
    3103: ("rate_limit", "pg_drop", "reject", "overlap", "archive_company", "delete_company", "change_mapping",
           "change_status_setting", "delete", "enable_currency", "lock_date"),
}


@pytest.mark.parametrize("seed", sorted(CI_HISTORIES))
def test_seeded_history(history_world: object, seed: int) -> None:
    result = history.History(history_world, seed, history.CI, required=CI_HISTORIES[seed]).run()
    COVERED[seed] = result.operations + result.faults
    assert result.ok, result.report()


def test_ci_set_covers_every_operation_and_fault() -> None:
    """The seeded histories above, together, include every Omono change, every action of the bookkeeper and every
    fault kind (counted as they happened, not as they were planned)."""
    if set(COVERED) != set(CI_HISTORIES):
        pytest.skip("runs after all the seeded histories")
    seen = sum(COVERED.values(), Counter())
    wanted = [*omono.OPERATIONS, *bookkeeper.OPERATIONS, *faults.KINDS, "overlapping run"]
    assert not [k for k in wanted if not seen[k]], f"never happened: {[k for k in wanted if not seen[k]]}"


@pytest.mark.soak
def test_soak(history_world: object) -> None:
    """Histories one after another until SOAK_MINUTES have passed; every violation is listed with its seed."""
    import time

    deadline = time.monotonic() + float(os.environ.get("SOAK_MINUTES", "0")) * 60
    seed = int(os.environ.get("SOAK_SEED", "0")) or int(time.time()) % 10**6
    failures = []
    while time.monotonic() < deadline:
        result = history.History(history_world, seed, history.SOAK).run()
        if not result.ok:
            failures.append(result.report())
        seed += 1
    assert not failures, "\n\n".join(failures)
