"""`make soak`: randomized histories one after another until SOAK_MINUTES have passed, then a report of
histories run, operations and faults per kind, and every violation by invariant, with the seeds that replay
them (`python -m tests.histories.replay SEED --profile soak`).

    SOAK_MINUTES=30 [SOAK_SEED=N] python -m tests.histories.soak [--report FILE]

Seeds are SOAK_SEED, SOAK_SEED+1, … (default: from the clock, printed first). It stops by itself: no new history
starts after the time is up, and each history is bounded (its steps are killed after 150 s)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from pathlib import Path

from tests.histories.runner import configure_environment

REPORT_DIR = Path(os.environ.get("SOAK_REPORT_DIR", Path(__file__).resolve().parents[2] / ".run" / "soak"))


class Tally:
    """What a soak saw, added up over its histories."""

    def __init__(self, started_seed: int) -> None:
        self.started_seed = started_seed
        self.histories = self.syncs = self.runs = 0
        self.operations: Counter = Counter()
        self.faults: Counter = Counter()
        self.violations: Counter = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)
        self.failed_seeds: list[int] = []
        self.seconds = 0.0

    def add(self, result: object) -> None:
        self.histories += 1
        self.syncs += result.syncs
        self.runs += result.runs
        self.operations.update(result.operations)
        self.faults.update(result.faults)
        self.seconds += result.seconds
        if result.violations:
            self.failed_seeds.append(result.seed)
        for _when, v in result.violations:
            self.violations[v.invariant] += 1
            if len(self.examples[v.invariant]) < 8:
                self.examples[v.invariant].append(f"seed {result.seed}: {v}")

    def as_dict(self) -> dict:
        return {"first_seed": self.started_seed, "histories": self.histories, "syncs": self.syncs, "runs": self.runs,
                "operations": dict(self.operations), "faults": dict(self.faults),
                "violations": dict(self.violations), "examples": dict(self.examples),
                "failed_seeds": self.failed_seeds, "history_seconds": round(self.seconds, 1)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.histories.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=float(os.environ.get("SOAK_MINUTES", "30")))
    parser.add_argument("--seed", type=int, default=int(os.environ.get("SOAK_SEED", "0")) or int(time.time()) % 10**6)
    parser.add_argument("--report", type=Path, default=REPORT_DIR / "soak-report.json")
    args = parser.parse_args(argv)
    configure_environment()
    from tests.histories import history, runner, world

    runner.preload()
    args.report.parent.mkdir(parents=True, exist_ok=True)
    tally = Tally(args.seed)
    started = time.monotonic()
    deadline = started + args.minutes * 60
    print(f"soak: {args.minutes:g} minutes from seed {args.seed}, reports in {args.report.parent}", flush=True)
    with world.world() as w:
        seed = args.seed
        while time.monotonic() < deadline:
            result = history.History(w, seed, history.SOAK, dag=_dag_or_none()).run()
            tally.add(result)
            status = "ok" if result.ok else f"{len(result.violations)} violation(s)"
            print(f"seed {seed}: {status}, {result.syncs} syncs, {result.seconds:.0f} s", flush=True)
            if not result.ok:
                (args.report.parent / f"history-{seed}.txt").write_text(result.report())
            seed += 1
    summary = {**tally.as_dict(), "minutes": round((time.monotonic() - started) / 60, 1),
               "finished": datetime.now(UTC).isoformat(timespec="seconds"),
               "command": f"SOAK_MINUTES={args.minutes:g} SOAK_SEED={args.seed} make soak"}
    args.report.write_text(json.dumps(summary, indent=2))
    print(json.dumps(summary, indent=2))
    return 0 if not tally.violations else 1


_DAG: list[object] = []


def _dag_or_none() -> object | None:
    """The DAG for the histories' dag.test() syncs (Airflow's metadata DB is migrated once, on first use)."""
    if os.environ.get("SOAK_DAG_TEST", "1") == "0":
        return None
    if not _DAG:
        from airflow.dag_processing.dagbag import DagBag

        from tests.support.pipeline_env import ROOT, migrate_airflow

        migrate_airflow()
        _DAG.append(DagBag(dag_folder=str(ROOT / "dags")).get_dag("omono_xero_sync"))
    return _DAG[0]


if __name__ == "__main__":
    sys.exit(main())
