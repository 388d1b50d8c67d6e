"""One randomized history: a seeded sequence of Omono changes, the bookkeeper's work in Xero, and syncs under
faults (killed tasks, lost answers, 5xx, 429, timeouts, expired and revoked tokens, a spent daily budget, dropped
PostgreSQL connections, overlapping runs, dry runs, a reset and backfill), judged by the oracle after every sync
and, after a final clean run, for convergence.

Every choice comes from `random.Random(f"{seed}/{step}")`, and what Omono holds depends only on the seed, so a
seed replays the same history (`python -m tests.histories.replay SEED`); which Xero object a bookkeeper's action
hits, and exactly when a kill lands, follow what Xero holds at that moment."""

from __future__ import annotations

import random
import shutil
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.histories import bookkeeper, faults, omono, oracle
from tests.histories.bookkeeper import Bookkeeper, Ledger
from tests.histories.faults import Fault
from tests.histories.oracle import Violation
from tests.histories.runner import RunSpec, Scheduler, dag_test, warm
from tests.histories.world import World
from tests.support.steps import ALL_STEPS

BACKFILL = {"date_from": "2026-08-01", "date_to": "2026-12-31"}


@dataclass(frozen=True)
class Profile:
    name: str
    initial_documents: int
    operations: int               # changes and syncs, before the final clean run
    fault_chance: float           # that a sync meets faults
    max_faults: int
    overlap_chance: float
    dry_run_chance: float
    backfill_chance: float        # a reset followed by a backfill by document date
    dag_test_chance: float        # the sync goes through real Airflow (dag.test) instead of forked steps
    bad_share: float = 0.08
    sync_every: int = 0           # a sync at every n-th operation (0: at random, about one in five)
    meanwhile_chance: float = 0.3   # that someone changes Omono or Xero while a sync runs


CI = Profile("ci", initial_documents=6, operations=16, fault_chance=0.8, max_faults=3, overlap_chance=0.2,
             dry_run_chance=0.05, backfill_chance=0.05, dag_test_chance=0.0, sync_every=4)
SOAK = Profile("soak", initial_documents=16, operations=36, fault_chance=0.75, max_faults=3, overlap_chance=0.2,
               dry_run_chance=0.05, backfill_chance=0.05, dag_test_chance=0.08)
OMONO_WEIGHTS = {"create_company": 5, "rename_company": 5, "archive_company": 2, "delete_company": 2,
                 "create_dispatch": 8, "create_delivery": 6, "create_credit_note": 6, "edit_document": 9,
                 "cancel_document": 4, "delete_document": 2, "link_credit_note": 4, "change_mapping": 3,
                 "change_status_setting": 3}
BOOKKEEPER_WEIGHTS = {"pay": 5, "approve": 5, "void": 2, "delete": 2, "archive_contact": 2, "type_contact": 4,
                      "type_document": 5, "void_typed": 2, "enable_currency": 1, "lock_date": 1}


@dataclass
class HistoryResult:
    seed: int
    profile: str
    operations: Counter = field(default_factory=Counter)
    faults: Counter = field(default_factory=Counter)
    syncs: int = 0
    runs: int = 0
    violations: list[tuple[str, Violation]] = field(default_factory=list)
    trace: list[str] = field(default_factory=list)
    seconds: float = 0.0
    logs: str = ""

    @property
    def ok(self) -> bool:
        return not self.violations

    def report(self) -> str:
        head = (f"history seed={self.seed} profile={self.profile}: {self.syncs} syncs, {self.runs} runs, "
                f"{sum(self.operations.values())} operations, faults {dict(self.faults)}, {self.seconds:.1f} s; "
                f"replay: python -m tests.histories.replay {self.seed} --profile {self.profile}; task logs {self.logs}")
        found = [f"  after {when}: {v}" for when, v in self.violations]
        return "\n".join([head, *(["VIOLATIONS:", *found] if found else []), "TRACE:", *self.trace])


class History:
    def __init__(self, world: World, seed: int, profile: Profile, dag: Any = None,
                 required: tuple[str, ...] = ()) -> None:
        self.world, self.seed, self.profile, self.dag = world, seed, profile, dag
        self.required = list(required)          # operations and fault kinds this history must include
        self.result = HistoryResult(seed, profile.name)
        self.ledger = Ledger()
        log_dir = Path(tempfile.mkdtemp(prefix=f"history-{seed}-"))
        self.result.logs = str(log_dir)
        self.scheduler = Scheduler(world, log_dir, self.result.trace)
        self.seen: set[str] = set()

    # -- the whole history ---------------------------------------------------------------------------------
    def run(self) -> HistoryResult:
        started = time.monotonic()
        self.world.fresh()
        warm()
        self.conn = self.world.db()
        try:
            omono.populate(self.conn, self.profile.initial_documents, self.seed, self.profile.bad_share)
            self.omono = omono.Omono(self.conn)
            self.result.trace.append(f"start: {self.omono.initial_statuses(random.Random(f'{self.seed}/statuses'))}")
            self.bookkeeper = Bookkeeper(self.world, self.conn, self.ledger)
            for i in range(self.profile.operations):
                self._operation(i, random.Random(f"{self.seed}/{i}"))
            self._final()
        finally:
            self.conn.close()
            self.result.seconds = time.monotonic() - started
        if self.result.ok:                      # task logs are kept only for histories worth reading
            shutil.rmtree(self.result.logs, ignore_errors=True)
            self.result.logs = "(removed: no violation)"
        return self.result

    def _operation(self, i: int, rng: random.Random) -> None:
        due = [r for r in self.required if r in OMONO_WEIGHTS or r in BOOKKEEPER_WEIGHTS]
        every = self.profile.sync_every
        if (every and i % every == 0) or (not every and (i == 0 or rng.random() < 0.22)):
            kind = "sync"
        elif due:
            kind = due[0]
        else:
            weights = OMONO_WEIGHTS if rng.random() < 0.65 else BOOKKEEPER_WEIGHTS
            kind = rng.choices(list(weights), weights=list(weights.values()))[0]
        if kind == "sync":
            self._sync(f"#{i}", rng)
            return
        if kind in OMONO_WEIGHTS:
            text = omono.OPERATIONS[kind](self.omono, rng)
            who = "omono"
        else:
            text = bookkeeper.OPERATIONS[kind](self.bookkeeper, rng)
            who = "xero"
        self.conn.rollback()
        if text:
            self.result.operations[kind] += 1
            self._done(kind)
        elif kind in self.required:              # nothing to act on yet: try the others first
            self.required.remove(kind)
            self.required.append(kind)
        self.result.trace.append(f"#{i} [{who}] {kind}: {text or 'nothing to do'}")

    def _done(self, name: str) -> None:
        if name in self.required:
            self.required.remove(name)

    # -- syncs -----------------------------------------------------------------------------------------------
    def _sync(self, label: str, rng: random.Random) -> None:
        p = self.profile
        run_id = f"h{self.seed}{label.replace('#', '-')}"
        self.result.syncs += 1
        if self.dag is not None and rng.random() < p.dag_test_chance:
            self._dag_test(label, run_id)
            return
        roll = rng.random()
        if roll < p.dry_run_chance:
            self._dry_run(label, run_id)
            return
        if roll < p.dry_run_chance + p.backfill_chance:
            self._reset_and_backfill(label, run_id, rng)
            return
        specs = [RunSpec(run_id)]
        if rng.random() < p.overlap_chance or "overlap" in self.required:
            specs.append(self._overlapping(run_id, rng))
            self._done("overlap")
        chosen = self._faults(rng)
        self._execute(label, specs, chosen, self._meanwhile(rng))

    def _meanwhile(self, rng: random.Random) -> list[tuple[str, Any]]:
        """Now and then an Omono user or the bookkeeper acts while the sync runs (on connections of their own)."""
        if rng.random() >= self.profile.meanwhile_chance:
            return []
        step = rng.choice(ALL_STEPS[1:])
        kind = rng.choice(("edit_document", "create_dispatch", "cancel_document", "rename_company", "pay", "approve"))
        act_rng = random.Random(f"{self.seed}/meanwhile/{rng.random()}")

        def act() -> str | None:
            with self.world.db() as conn:
                if kind in omono.OPERATIONS:
                    text = omono.OPERATIONS[kind](omono.Omono(conn), act_rng)
                else:
                    text = bookkeeper.OPERATIONS[kind](Bookkeeper(self.world, conn, self.ledger), act_rng)
            if text:
                self.result.operations[kind] += 1
                self.result.operations["during a sync"] += 1
            return f"{kind}: {text}" if text else None
        return [(step, act)]

    def _faults(self, rng: random.Random) -> list[Fault]:
        due = [k for k in self.required if k in faults.KINDS]
        chosen: list[Fault] = []
        for kind in due[:self.profile.max_faults]:
            fault = faults.choose(rng, ALL_STEPS)
            while fault.kind != kind or fault.params.get("after", 0) > 1:   # a kill that surely lands
                fault = faults.choose(rng, ALL_STEPS)
            if kind in {"error", "offline", "timeout", "token_expiry"}:       # readiness always calls Xero
                fault = Fault(kind, "readiness", {**fault.params, "method": None})
            chosen.append(fault)
        if not due and rng.random() < self.profile.fault_chance:
            chosen = [faults.choose(rng, ALL_STEPS) for _ in range(rng.randint(1, self.profile.max_faults))]
        return chosen

    def _overlapping(self, run_id: str, rng: random.Random) -> RunSpec:
        """A second run started while the first is pushing: another Sync Now, or a backfill by date."""
        when = rng.choice(("push_contacts", "push_dispatch_invoices", "push_delivery_invoices", "push_credit_notes"))
        params = BACKFILL if rng.random() < 0.4 else {}
        return RunSpec(f"{run_id}-b", dict(params), after=(run_id, when))

    def _execute(self, label: str, specs: list[RunSpec], chosen: list[Fault],
                 during: list[tuple[str, Any]] | None = None) -> None:
        text = ", ".join(f.describe() for f in chosen) or "no faults"
        overlap = f"; overlapping {specs[1].run_id} from {specs[1].after[1]} {specs[1].params or ''}" \
            if len(specs) > 1 else ""
        self.result.trace.append(f"{label} [sync] {specs[0].run_id}: {text}{overlap}")
        runs = self.scheduler.sync(specs, chosen, during)
        self.result.runs += len(runs)
        for kind, n in self.scheduler.struck().items():
            self.result.faults[kind] += n
            self._done(kind)
        if len(specs) > 1:
            self.result.faults["overlapping run"] += 1
        for run in runs:
            self.result.trace.append(f"    {run.spec.run_id}: {run.state}")
        complete = {r.spec.run_id for r in runs if r.state == "success"} if len(runs) == 1 and not chosen else set()
        acted = any(r.state == "success" for r in runs) and during is None
        self._judge(label, [s.run_id for s in specs], complete, credit=acted)

    def _dry_run(self, label: str, run_id: str) -> None:
        self.result.trace.append(f"{label} [sync] {run_id}: dry run")
        before = oracle.dry_run_fingerprint(self.world)
        seq = self.world.last_seq()
        runs = self.scheduler.sync([RunSpec(run_id, {"dry_run": True})], [])
        self.result.runs += 1
        self.result.faults["dry run"] += 1
        self.result.trace.append(f"    {run_id}: {runs[0].state}")
        self._record(label, oracle.check_dry_run(self.world, before, seq))

    def _reset_and_backfill(self, label: str, run_id: str, rng: random.Random) -> None:
        """The user resets the sync (make reset) and resends history by document date."""
        from include.omono_xero_sync import lifecycle

        with self.world.db() as conn:
            lifecycle.reset(conn, lifecycle.organisation_name(conn) or "RESET", "history")
        self.result.faults["reset and backfill"] += 1
        self.result.trace.append(f"{label} [omono] reset (make reset), then a backfill {BACKFILL}")
        self._execute(label, [RunSpec(run_id, dict(BACKFILL))], self._faults(rng) if rng.random() < 0.5 else [])

    def _dag_test(self, label: str, run_id: str) -> None:
        self.result.trace.append(f"{label} [sync] through real Airflow (dag.test)")
        outcome = dag_test(self.dag, {})
        self.result.runs += 1
        self.result.faults["dag.test run"] += 1
        self.result.trace.append(f"    dag.test: {outcome}")
        failed = set(outcome.partition("not successful: ")[2].rstrip(")").split(", "))
        self._judge(label, [], set(), credit=failed <= {"", "verify"})     # red records only: it acted on all

    # -- judging ---------------------------------------------------------------------------------------------
    def _judge(self, label: str, run_ids: list[str], complete: set[str], converged: bool = False,
               credit: bool = True) -> list[Violation]:
        snap = oracle.snapshot(self.world, self.ledger)
        found = oracle.judge(snap, converged=converged, credit=credit)
        found += oracle.check_log_agrees(self.world, snap, run_ids, complete)
        self._record(label, found)
        return found

    def _record(self, label: str, found: list[Violation]) -> None:
        for v in found:
            key = f"{v.invariant}|{v.record}|{v.detail}"
            if key not in self.seen:
                self.seen.add(key)
                self.result.violations.append((label, v))
                self.result.trace.append(f"    VIOLATION {v}")

    def _final(self) -> None:
        """Faults off, Xero reachable: one clean run must leave every record in Xero once, or red."""
        self.world.calm()
        run_id = f"h{self.seed}-final"
        self.result.trace.append(f"final [sync] {run_id}: clean")
        runs = self.scheduler.sync([RunSpec(run_id)], [])
        self.result.runs += 1
        self.result.syncs += 1
        self.result.trace.append(f"    {run_id}: {runs[0].state}")
        complete = {run_id} if runs[0].state == "success" else set()
        if not complete:
            self._record("final", [Violation("loss", run_id, f"the clean final run ended {runs[0].state}")])
        verdict = self._judge("final", [run_id], complete, converged=True)
        self._reconcile(run_id, verdict)

    def _reconcile(self, run_id: str, verdict: list[Violation]) -> None:
        """The product's own reconciliation over every date the histories use, judged against the oracle's verdict."""
        spec = RunSpec(f"{run_id}-reconcile", {"date_from": "2026-01-01", "date_to": "2027-12-31"},
                       steps=("reconcile",))
        state = self.scheduler.sync([spec], [])[0].state
        differences = oracle.reconciliation_differences(self.world)
        self.result.trace.append(f"reconcile [{spec.run_id}]: {state}, {len(differences)} difference(s)")
        self._record("reconciliation", oracle.check_reconciliation_finds(verdict, differences))
