"""The faults a history injects into a sync, and how each is switched on and off.

A fault strikes during one step of one run (`step`), mostly on that step's first attempt:
- emulator faults (`error` 5xx, `offline`, `drop_after_commit`, `reject`, `timeout` = latency longer than the
  client's read timeout) are installed with a `times` count as the step starts, so Airflow's retry meets a calm
  Xero;
- `kill` sends SIGKILL to the task process once the emulator has answered `after` of its calls (0: at once);
- `kill_after_commit` holds one of the step's writes in the emulator (latency), stops the task process
  (SIGSTOP) while it waits, lets Xero commit and answer, then kills it: Xero has the write, the state does not;
- `pg_drop` terminates the step's PostgreSQL connections (state, tokens, the write lock) `ms` into the step;
- `token_expiry` moves Xero's clock past the access token's life; `revoke` revokes the stored refresh token
  (the user reconnects after the sync, as they would);
- `budget` (a daily call budget that runs out mid-run) and `rate_limit` (429s with Retry-After: a low per-app
  minute limit on a 30x clock, so Retry-After is a second or two; the organisation's own minute limit would only
  make the client pause for a real minute, which it does before Xero refuses) hold for the whole sync."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any

KINDS = ("kill", "kill_after_commit", "error", "offline", "drop_after_commit", "reject", "timeout", "pg_drop",
         "token_expiry", "revoke", "budget", "rate_limit")
WRITE_STEPS = ("push_contacts", "push_dispatch_invoices", "push_delivery_invoices", "push_credit_notes",
               "allocate_credit_notes")
STEP_PATHS = {"readiness": "Organisation|Accounts|TaxRates|Currencies", "push_contacts": "Contacts",
              "push_dispatch_invoices": "Invoices",
              "push_delivery_invoices": "Invoices", "push_credit_notes": "CreditNotes",
              "allocate_credit_notes": "Allocations|CreditNotes|Invoices"}
WRITE_PATH = r"/(Contacts|Invoices|CreditNotes)/?$|/Allocations$"
REJECT_TEXT = {"push_contacts": "OMONO-", "push_dispatch_invoices": '"ACCREC"', "push_delivery_invoices": '"ACCPAY"',
               "push_credit_notes": "CREDIT", "allocate_credit_notes": "Invoice"}
# What the emulator's request log calls each fault when it strikes.
LOGGED_AS = {"error": "error", "offline": "offline", "drop_after_commit": "drop_after_commit", "reject": "reject",
             "timeout": "latency"}


def write_method(step: str) -> str:
    """Pushes are POST (update-or-create); an allocation is a PUT."""
    return "PUT" if step == "allocate_credit_notes" else "POST"


TIMEOUT_READ_SECONDS = 1.5          # the task's read timeout while a `timeout` fault is on
TIMEOUT_LATENCY_MS = 2500


@dataclass(frozen=True)
class Fault:
    kind: str
    step: str
    params: dict[str, Any] = field(default_factory=dict)

    def describe(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in sorted(self.params.items()))
        return f"{self.kind} in {self.step}" + (f" ({extra})" if extra else "")

    @property
    def sync_wide(self) -> bool:
        return self.kind in {"budget", "rate_limit"}

    def emulator_faults(self) -> list[dict[str, Any]]:
        """What to install in the emulator as the step starts."""
        path = STEP_PATHS.get(self.step)
        times = self.params.get("times", 1)
        if self.kind == "error":
            return [{"kind": "error", "status": self.params["status"], "path": path, "times": times,
                     "method": self.params.get("method")}]
        if self.kind == "offline":
            return [{"kind": "offline", "path": path, "times": times}]
        if self.kind == "drop_after_commit":
            return [{"kind": "drop_after_commit", "method": write_method(self.step), "path": WRITE_PATH,
                     "times": times}]
        if self.kind == "reject":
            return [{"kind": "reject", "path": WRITE_PATH, "text": self.params["text"], "times": times,
                     "exception": "ValidationException"}]
        if self.kind == "timeout":
            return [{"kind": "latency", "ms": TIMEOUT_LATENCY_MS, "path": path, "times": times,
                     "method": self.params.get("method")}]
        if self.kind == "kill_after_commit":
            return [{"kind": "latency", "ms": 1500, "method": write_method(self.step), "path": WRITE_PATH, "times": 1}]
        return []

    def limits(self) -> dict[str, Any] | None:
        if self.kind == "budget":
            return {"concurrent": None, "minute": None, "day": self.params["day"], "app_minute": None}
        if self.kind == "rate_limit":
            return {"concurrent": None, "minute": None, "day": None, "app_minute": self.params["app_minute"]}
        return None


def choose(rng: random.Random, steps: tuple[str, ...]) -> Fault:
    """One fault, its kind and the step it strikes in drawn from `rng`."""
    kind = rng.choices(KINDS, weights=(14, 12, 10, 3, 12, 4, 6, 6, 6, 3, 6, 4))[0]
    write_steps = [s for s in steps if s in WRITE_STEPS] or list(steps)
    step = rng.choice(write_steps if kind in {"kill_after_commit", "drop_after_commit", "reject"} else
                      [s for s in steps if s in STEP_PATHS] or list(steps))
    params: dict[str, Any] = {}
    if kind == "kill":
        params = {"after": rng.choice((0, 1, 2, 3, 5, 8))}
    elif kind == "error":
        params = {"status": rng.choice((500, 502, 503, 504)), "times": rng.choice((1, 1, 2)),
                  "method": rng.choice((None, write_method(step), "GET"))}
    elif kind in {"drop_after_commit", "offline"}:
        params = {"times": rng.choice((1, 1, 2))}
    elif kind == "reject":
        params = {"text": REJECT_TEXT[step], "times": 1}
    elif kind == "timeout":
        params = {"times": 1, "method": rng.choice((None, write_method(step)))}
    elif kind == "pg_drop":
        params = {"ms": rng.choice((0, 20, 60, 150, 400))}
    elif kind == "budget":
        params = {"day": rng.randint(28, 70)}
    elif kind == "rate_limit":
        params = {"app_minute": rng.randint(3, 8), "speed": 30}
    return Fault(kind, step, params)
