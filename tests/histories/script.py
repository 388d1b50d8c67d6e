"""Short hand-written histories: the minimal replays of what the randomized histories found, written with the
same parts (Omono's tables, the bookkeeper's admin API, forked sync steps, the oracle) so each is a precise
sequence a developer can read and run."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import psycopg

from tests.histories import oracle, runner
from tests.histories.bookkeeper import Ledger
from tests.histories.faults import Fault
from tests.histories.oracle import Violation
from tests.histories.runner import RunSpec, Scheduler
from tests.histories.world import World
from tests.support.steps import ALL_STEPS

UNTIL_CHECKED = ALL_STEPS[:ALL_STEPS.index("check_records") + 1]
PUSHES = ALL_STEPS[ALL_STEPS.index("check_records") + 1:]


class Script:
    """A fresh business with a few companies and no documents; Omono changes are plain SQL."""

    def __init__(self, world: World) -> None:
        from include.commands import demo_data

        world.fresh()
        runner.warm()
        self.world = world
        self.trace: list[str] = []
        self.scheduler = Scheduler(world, Path(tempfile.mkdtemp(prefix="script-")), self.trace)
        self.ledger = Ledger()
        self.runs = 0
        with world.db() as conn:
            demo_data.generate(conn, documents=0, seed=1, bad_share=0)
            demo_data.apply_demo_mappings(conn)

    def sql(self, statement: str, args: tuple = ()) -> list[dict]:
        with self.world.db() as conn:
            cur = conn.execute(statement, args)
            rows = cur.fetchall() if cur.description else []
            conn.commit()
        return rows

    def bill(self, number: str, ref: str, company: int, price: str = "100.00") -> int:
        """A delivery invoice with one line (PA-STOCK, 20%)."""
        doc = self.sql("INSERT INTO omono.delivery_invoices (number, supplier_invoice_ref, company_id, currency_code, "
                       "issue_date, due_date) VALUES (%s, %s, %s, 'GBP', '2026-09-10', '2026-10-10') RETURNING id",
                       (number, ref, company))[0]["id"]
        self.sql("INSERT INTO omono.delivery_invoice_lines (invoice_id, line_no, description, quantity, unit_price, "
                 "analysis_code, tax_code) VALUES (%s, 1, 'Stock', 1, %s, 'PA-STOCK', 'STD20')", (doc, price))
        return doc

    def invoice(self, number: str, company: int, price: str = "100.00") -> int:
        """A dispatch invoice with one line (SA-WHOLESALE, 20%)."""
        doc = self.sql("INSERT INTO omono.dispatch_invoices (number, company_id, currency_code, issue_date, due_date) "
                       "VALUES (%s, %s, 'GBP', '2026-09-10', '2026-10-10') RETURNING id", (number, company))[0]["id"]
        self.sql("INSERT INTO omono.dispatch_invoice_lines (invoice_id, line_no, description, quantity, unit_price, "
                 "analysis_code, tax_code) VALUES (%s, 1, 'Widgets', 1, %s, 'SA-WHOLESALE', 'STD20')", (doc, price))
        return doc

    def credit_note(self, number: str, company: int, invoice: int | None, price: str) -> int:
        doc = self.sql("INSERT INTO omono.credit_notes (number, kind, company_id, invoice_id, currency_code, "
                       "issue_date) VALUES (%s, 'sales', %s, %s, 'GBP', '2026-09-12') RETURNING id",
                       (number, company, invoice))[0]["id"]
        self.sql("INSERT INTO omono.credit_note_lines (credit_note_id, line_no, description, quantity, unit_price, "
                 "analysis_code, tax_code) VALUES (%s, 1, 'Returned', 1, %s, 'SA-RETAIL', 'STD20')", (doc, price))
        return doc

    def sync(self, *specs: RunSpec, faults: tuple[Fault, ...] = ()) -> list[runner.Run]:
        self.runs += 1
        return self.scheduler.sync(list(specs) or [RunSpec(f"run-{self.runs}")], list(faults))

    def steps(self, run_id: str, steps: tuple[str, ...], params: dict[str, Any] | None = None) -> str:
        """Some of one run's steps, in order, as its tasks would run them; returns how the run stands."""
        return self.scheduler.sync([RunSpec(run_id, params or {}, steps=steps)], [])[0].state

    def violations(self, *, converged: bool = True) -> list[Violation]:
        return oracle.judge(oracle.snapshot(self.world, self.ledger), converged=converged)

    def converge(self) -> list[Violation]:
        """A final clean run, then the oracle's verdict."""
        self.world.calm()
        self.sync(RunSpec(f"final-{self.runs}"))
        return self.violations()

    def db(self) -> psycopg.Connection:
        return self.world.db()
