"""The steps of one sync run, as the DAG calls them. Each step opens what it needs, does one thing, and
returns a small JSON-able result for the next (records themselves travel through xero_sync.run_queue)."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Generator
from contextlib import contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import psycopg

from include.omono_xero_sync import db, entities, expectations, extract, reference, settings, state, sync_log
from include.omono_xero_sync import reconcile as rec
from include.omono_xero_sync.sync_log import LogRow, RunContext

log = logging.getLogger(__name__)
S = settings.STATE_SCHEMA
CHECK_PAGE = 5_000        # records checked at a time: memory stays flat whatever the backlog


class NotReady(Exception):
    """A blocking readiness check is red: nothing is pushed until it is fixed."""


class RecordsNeedAttention(Exception):
    """The run finished, but records were held or refused; the sync log lists them."""


def run_context(context: dict) -> RunContext:
    """Who is running, from Airflow's task context."""
    params = context.get("params") or {}
    return RunContext(dag_id=context["dag"].dag_id, run_id=context["run_id"], task_id=context["ti"].task_id,
                      dry_run=bool(params.get("dry_run")), params=dict(params))


def _xero(conn: psycopg.Connection, *, learn_budget: bool = False) -> Any:
    """The organisation's client, its pacing told when the previous task's calls of the last minute started
    (a row saved before those times were kept: all its calls of the minute as if made at its end) and, within the
    hour, what Xero said was left of the day: a task's first call must not go below the floor either. The run's
    first task (`learn_budget`) asks Xero afresh: a day's budget comes back, and only Xero's answer says when."""
    from include.omono_xero_sync.xero_api import client_for

    client = client_for(conn)
    last = conn.execute(f"SELECT min_remaining, recent_calls, extract(epoch FROM now() - updated_at)::float AS ago, "
                        f"day_remaining FROM {S}.api_usage WHERE tenant_id = %s", (client.xero.tenant_id,)
                        ).fetchone()
    if last and not learn_budget and last["ago"] < 3600:
        client.pacer.day_remaining = last["day_remaining"]
    if last and last["recent_calls"] is not None:
        client.pacer.carry_over([last["ago"] + age for age in last["recent_calls"]])
    elif last and last["min_remaining"] is not None:
        client.pacer.carry_over([last["ago"]] * (60 - last["min_remaining"]))
    return client


@contextmanager
def _reporting(ctx: RunContext, client: Any) -> Generator[None, None, None]:
    """Record what the task spent and, when it fails, why, on a connection of its own: the summary counts the
    calls of failed tasks and says why records were not sent."""
    from include.omono_xero_sync.xero_api import DailyLimitReached

    problem = None
    try:
        yield
    except DailyLimitReached:
        raise                 # not a failure: what is left waits for the next budget, and the summary says so
    except Exception as exc:
        problem = f"{type(exc).__name__}: {exc}"[:1000]
        raise
    finally:
        with db.connect() as own:
            sync_log.record_task(own, ctx, client.calls, problem)
            _save_usage(own, client)


@contextmanager
def _until_budget_spent(result: dict[str, Any]) -> Generator[dict[str, Any], None, None]:
    """A task that meets today's spent budget stops cleanly and ends green, saying so in `result["stopped"]`: what
    it did not do waits for the next run (a red task here would fail the run's later steps, and retrying it spends
    calls the day no longer has)."""
    from include.omono_xero_sync.xero_api import DailyLimitReached

    try:
        yield result
    except DailyLimitReached as exc:
        log.warning("%s", exc)
        result["stopped"] = str(exc)


@contextmanager
def _writing(ctx: RunContext, client: Any) -> Generator[None, None, None]:
    """This task is the organisation's only writer for the block (write_lock: never two runs at once)."""
    from include.omono_xero_sync import write_lock

    organisation = client.xero.tenant_id or client.xero.client_id
    with write_lock.exclusive(organisation, f"run {ctx.run_id}, task {ctx.task_id}"):
        yield


# -- steps ------------------------------------------------------------------------------------------------------
class BackfillRefused(Exception):
    """`airflow backfill create` is not how history is resent; the message says what is."""


class BadParameters(ValueError):
    """The trigger's parameters cannot be run as given; the message says what to change."""


def check_params(params: dict) -> None:
    """Before anything runs: a backfill range that runs backwards is refused (however the run was triggered)."""
    start, end = params.get("date_from"), params.get("date_to")
    if start and end and date.fromisoformat(str(start)) > date.fromisoformat(str(end)):
        raise BadParameters(f"'Backfill from' ({start}) is after 'Backfill to' ({end}); nothing was run. Trigger "
                            "again with the dates the right way round.")


def is_due(run_type: str, now: datetime | None = None) -> bool:
    """Manual runs (Sync Now) always go; scheduled ones only at the user's chosen interval (off by default).
    Airflow backfill runs are refused: the sync does not depend on data intervals, so each would only repeat the
    normal sync; history is resent by document date (the Backfill from/to parameters)."""
    if run_type == "backfill":
        raise BackfillRefused(
            "This is an Airflow backfill run ('airflow backfill create'); it is refused because the sync does not "
            "work by data interval, so it would only repeat a normal sync. To resend history, trigger the DAG "
            "(Sync Now) with 'Backfill from' and 'Backfill to' (document dates), e.g. airflow dags trigger "
            "omono_xero_sync -c '{\"date_from\": \"2026-09-01\", \"date_to\": \"2026-10-31\"}'.")
    if run_type != "scheduled":
        return True
    now = now or datetime.now(UTC)
    with db.connect() as conn:
        db.migrate(conn)
        minutes = settings.SYNC_INTERVALS.get(str(state.get_setting(conn, "sync_interval")))
        if minutes is None:
            log.info("Automatic sync is off (General options > Sync interval); use Sync Now to run by hand.")
            return False
        last = state.get_setting(conn, "last_scheduled_sync_at")
        if last and now - datetime.fromisoformat(last) < timedelta(minutes=minutes) - timedelta(minutes=1):
            log.info("Not due yet: the sync interval is %s minutes.", minutes)
            return False
        state.put_setting(conn, "last_scheduled_sync_at", now.isoformat())
    return True


def check_readiness(ctx: RunContext) -> dict[str, Any]:
    """Migrate, read Xero's reference data (4 calls), and refuse to go on while a blocking light is red.
    With Xero's daily budget already spent the run is skipped, saying so: nothing is lost, the next run goes on."""
    from airflow.sdk.exceptions import AirflowSkipException

    from include.omono_xero_sync.xero_api import DailyLimitReached

    with db.connect() as conn, db.connect(settings.OMONO_CONN_ID) as omono:
        db.migrate(conn)
        client = _xero(conn, learn_budget=True)
        try:
            with _reporting(ctx, client):
                ref = reference.read_from_xero(client)
        except DailyLimitReached as exc:
            raise AirflowSkipException(str(exc)) from exc
        reference.save(conn, ref)
        checks = reference.readiness(omono, conn, ref)
        calls = client.calls
    for c in checks:
        (log.info if c.ok else log.warning)("%s", c.line())
    red = [c for c in checks if not c.ok and c.blocking]
    if red:
        raise NotReady("Nothing was sent to Xero because these checks are red:\n" + "\n".join(c.line() for c in red))
    return {"checks": [c.__dict__ for c in checks], "calls": calls}


def create_accounts(ctx: RunContext) -> dict[str, Any]:
    if ctx.dry_run:
        return {"created": [], "calls": 0}
    result: dict[str, Any] = {"created": []}
    with db.connect() as conn:
        client = _xero(conn)
        with _until_budget_spent(result), _reporting(ctx, client), _writing(ctx, client):
            result["created"] = reference.create_missing_accounts(client, conn, reference.load(conn))
    for line in result["created"]:
        log.info("Created account %s in Xero", line)
    return {**result, "calls": client.calls}


def extract_changes(ctx: RunContext) -> dict[str, int]:
    params = ctx.params
    date_range = None
    if params.get("date_from") or params.get("date_to"):
        date_range = (date.fromisoformat(params.get("date_from") or "1900-01-01"),
                      date.fromisoformat(params.get("date_to") or "2999-12-31"))
    with db.connect() as conn, db.connect(settings.OMONO_CONN_ID) as omono:
        return extract.extract(omono, conn, ctx, full=bool(params.get("full_resync")), date_range=date_range,
                               can_write=_records_today_can_write(conn))


def _records_today_can_write(conn: psycopg.Connection) -> int | None:
    """An upper bound on the records the rest of today's Xero calls can write (every call a full batch), from what
    Xero said was left at this run's readiness; None when its answers did not say (no limit known)."""
    usage = conn.execute(f"SELECT day_remaining FROM {S}.api_usage WHERE updated_at > now() - interval '1 hour' "
                         "ORDER BY updated_at DESC LIMIT 1").fetchone()
    if not usage or usage["day_remaining"] is None:
        return None
    return max(0, usage["day_remaining"] - settings.DAILY_CALL_FLOOR) * settings.BATCH_SIZE


def check_records(ctx: RunContext) -> dict[str, int]:
    """Run the expectations; hold what fails (logged with its reasons), let the rest flow on."""
    held: dict[str, int] = {}
    with db.connect() as conn:
        ref = reference.load(conn)
        accounts = state.account_mappings(conn)
        creatable = {code.upper() for code in accounts.values()} if state.get_setting(
            conn, "auto_create_accounts") else set()
        creatable |= {r["xero_account_code"].upper() for r in conn.execute(
            f"SELECT xero_account_code FROM {S}.account_mappings WHERE create_in_xero")}
        lock_date, lock_label = ref.lock
        checks = expectations.CheckContext(
            currencies=set(ref.currencies), accounts=accounts, taxes=state.tax_mappings(conn),
            active_accounts=ref.active_account_codes | creatable, active_tax_types=ref.active_tax_types,
            tax_rates={t["TaxType"]: t["EffectiveRate"] for t in ref.tax_rates}, lock_date=lock_date,
            lock_label=lock_label)
        for entity in entities.ALL:
            checked = held[entity.name] = 0
            if entity is not entities.CONTACT:   # Xero refuses to approve a document in a locked period
                approved = state.get_setting(conn, f"status.{entity.name}") == "AUTHORISED"
                checks.lock_date = lock_date if approved else None     # drafts and submitted ones it takes
            for page in extract.staged_pages(conn, ctx.run_id, entity.name, CHECK_PAGE):   # memory stays flat
                items = [i for i in page if not i["record"].get("deleted")]
                held[entity.name] += _check_page(conn, ctx, entity, items, checks)
                checked += len(items)
            log.info("%s: %d checked, %d held back", entity.label, checked, held[entity.name])
    return held


def _check_page(conn: psycopg.Connection, ctx: RunContext, entity: entities.Entity, items: list[dict],
                checks: expectations.CheckContext) -> int:
    """One page of a kind's staged records through the expectations: what fails is held (state, queue and log in
    one statement each), the rest flows on. Returns how many were held."""
    if entity is not entities.CONTACT:
        checks.contact_problems = _contact_problems(conn, ctx.run_id, [i["record"] for i in items])
    found = expectations.check(entity, [i["record"] for i in items], checks)
    rows = [LogRow(entity.name, i["omono_id"], i["omono_number"], "held", messages=found[i["omono_id"]])
            for i in items if found.get(i["omono_id"])]
    extract.settle(conn, ctx.run_id, entity.name, [(r.omono_id, "held", r.messages) for r in rows])
    if not ctx.dry_run:       # a document held for its company is looked at again once that changes
        waits = {i["omono_id"]: i["record"].get("company_id") for i in items
                 if i["record"].get("company_id") in checks.contact_problems}
        state.apply_outcomes(conn, entity.name, ctx.run_id, [
            {"omono_id": r.omono_id, "status": "held", "messages": r.messages,
             "company_id": waits.get(r.omono_id)} for r in rows])
    sync_log.write(conn, ctx, rows)
    conn.commit()
    return len(rows)


def _contact_problems(conn: psycopg.Connection, run_id: str, docs: list[dict]) -> dict[int, str]:
    """Companies these documents name that are not in Xero and will not be this run because something is wrong
    with them (held, refused, skipped), and why. A company that only waits (for the budget) holds nothing."""
    ids = sorted({d["company_id"] for d in docs})
    known = state.records(conn, "contact", ids)
    queued = {q["omono_id"]: q for q in extract.queued(conn, run_id, "contact", only=None, ids=ids)}
    problems: dict[int, str] = {}
    for cid in ids:
        q, st = queued.get(cid), known.get(cid)
        if q is not None and q["state"] == "held":
            problems[cid] = " ".join(q["messages"])
        elif q is None and st and not st["xero_id"] and st["status"] in {"held", "failed", "skipped"}:
            problems[cid] = "; ".join(st["last_messages"]) or f"it is {st['status']}"
    return problems


def push_entities(ctx: RunContext, names: list[str]) -> dict[str, Any]:
    from include.omono_xero_sync import push

    results: dict[str, Any] = {"calls": 0}
    with db.connect() as conn:
        client = _xero(conn)
        with _reporting(ctx, client), _writing(ctx, client):
            for name in names:      # once today's budget is spent, the kinds not reached yet wait, saying so
                entity = entities.BY_NAME[name]
                stopped = results.get("stopped")
                result = push.wait_for_budget(ctx, entity, conn, stopped) if stopped else push.push(
                    ctx, entity, conn, client)
                results[name] = result.counts
                if result.stopped:
                    results["stopped"] = result.stopped
        results["calls"] = client.calls
    log.info("Pushed: %s", results)
    return results


def allocate_credit_notes(ctx: RunContext) -> dict[str, Any]:
    """Credit notes Omono links to an invoice are allocated to it in Xero once both are there."""
    from include.omono_xero_sync import allocate

    with db.connect() as conn, db.connect(settings.OMONO_CONN_ID) as omono:
        client = _xero(conn)
        with _until_budget_spent(result := {}), _reporting(ctx, client), _writing(ctx, client):
            result.update(allocate.allocate(ctx, conn, omono, client))
        return {**result, "calls": client.calls}


def _save_usage(conn: psycopg.Connection, client: Any) -> None:
    """What Xero last said of the day's and the minute's budget, for the next task; a task that called Xero and was
    told nothing stores that nothing is known (a figure kept from earlier would hold records back)."""
    pacer = client.pacer
    if not client.calls:
        return
    conn.execute(f"INSERT INTO {S}.api_usage (tenant_id, day_remaining, min_remaining, recent_calls) VALUES (%s, %s, "
                 "%s, %s) ON CONFLICT (tenant_id) DO UPDATE SET day_remaining = EXCLUDED.day_remaining, "
                 "min_remaining = EXCLUDED.min_remaining, recent_calls = EXCLUDED.recent_calls, updated_at = now()",
                 (client.xero.tenant_id, pacer.day_remaining, pacer.minute_remaining, pacer.recent()))
    conn.commit()


def credit_check(ctx: RunContext) -> dict[str, Any]:
    """When enabled: customers' outstanding/overdue balances from Xero into omono.customer_balances."""
    from include.omono_xero_sync import balances

    with db.connect() as conn:
        if not state.get_setting(conn, "credit_check") or ctx.dry_run:
            return {"customers": 0, "calls": 0}
        client = _xero(conn)
        base_currency = reference.load(conn).organisation["BaseCurrency"]
        contacts = {str(r["xero_id"]): r["omono_id"] for r in conn.execute(
            f"SELECT omono_id, xero_id FROM {S}.record_state WHERE entity = 'contact' AND xero_id IS NOT NULL")}
        with db.connect(settings.OMONO_CONN_ID) as omono:
            customers = {r["id"] for r in omono.execute("SELECT id FROM omono.companies WHERE is_customer")}
            with _until_budget_spent(result := {}), _reporting(ctx, client):
                found = balances.read(client, date.today())
            if "stopped" in result:              # the balances stored stay as read last, with their date
                return {"customers": 0, "calls": client.calls, **result}
            rows = [(omono_id, *found.get(xero_id, balances.ZERO), base_currency)
                    for xero_id, omono_id in contacts.items() if omono_id in customers]
            balances.store(omono, rows)
        return {"customers": len(rows), "calls": client.calls}


def reconcile(ctx: RunContext, force: bool = False) -> dict[str, Any]:
    """Reconcile Xero with Omono when asked (Sync Now's 'Reconcile', `make reconcile`, the UI's button) or when
    General options' interval says so; for the run's date range, else this month and last."""
    today = date.today()
    with db.connect() as conn:
        if ctx.dry_run or not (force or ctx.params.get("reconcile") or rec.is_due(conn, today)):
            return {"reconciled": False, "calls": 0}
        params = ctx.params
        default_from, default_to = rec.default_range(today)
        date_range = (date.fromisoformat(params["date_from"]) if params.get("date_from") else default_from,
                      date.fromisoformat(params["date_to"]) if params.get("date_to") else default_to)
        client = _xero(conn)
        with db.connect(settings.OMONO_CONN_ID) as omono, _reporting(ctx, client):
            report = rec.reconcile(ctx, conn, omono, client, date_range)
        rec.store(conn, ctx, report, client.calls)
        line = rec.summary_line(report, client.calls)
    log.info("%s", line)
    return {"reconciled": True, "differences": len(report.differences), "summary": line, "calls": client.calls}


def summarise(ctx: RunContext) -> str:
    """The run's summary in the task log; then what the run staged is let go, and history past its retention."""
    with db.connect() as conn:
        calls = sum(t["calls"] for t in sync_log.run_tasks(conn, ctx.dag_id, ctx.run_id))
        text = render_summary(conn, ctx, calls)
        extract.forget_runs(conn, ctx.run_id)
        days = int(state.get_setting(conn, "log_retention_days"))
        sync_log.prune(conn, days)
        rec.prune(conn, days)
    for line in text.splitlines():
        log.info("%s", line)
    return text


def render_summary(conn: psycopg.Connection, ctx: RunContext, calls: int) -> str:
    counts = sync_log.counts(conn, ctx.dag_id, ctx.run_id)
    try:
        org = reference.load(conn).organisation
        org_line = f"Xero organisation: {org['Name']} ({org['BaseCurrency']})"
    except RuntimeError:
        org_line = "Xero organisation: not read yet (see the readiness task's log)"
    usage = conn.execute(f"SELECT day_remaining FROM {S}.api_usage ORDER BY updated_at DESC LIMIT 1").fetchone()
    columns = ("created", "updated", "linked", "unchanged", "deleted", "voided", "allocated")
    attention = sync_log.unresolved(conn)
    red = Counter(r["entity"] for r in attention)
    title = f"Omono -> Xero sync, run {ctx.run_id}{' (DRY RUN: nothing was sent)' if ctx.dry_run else ''}"
    lines = [title, org_line, "",
             f"{'':24}" + "".join(f"{c:>10}" for c in columns) + f"{'red now':>10}"]
    for entity in entities.ALL:
        row = counts.get(entity.name, {})
        lines.append(f"{entity.label:24}" + "".join(f"{row.get(c, 0):>10}" for c in columns)
                     + f"{red.get(entity.name, 0):>10}")
    lines.append("(this run's outcomes; 'red now' counts every record that needs attention, from any run)")
    lines += ["", f"Needs attention: {len(attention)} record(s)" if attention else "Needs attention: nothing"]
    for r in attention[:50]:
        label = entities.BY_NAME[r["entity"]].noun
        lines.append(f"  [{r['status'].upper()}] {label} {r['omono_number']}: {' '.join(r['last_messages'])}")
    if len(attention) > 50:
        lines.append(f"  … and {len(attention) - 50} more (see the sync log)")
    lines += _not_sent_lines(conn, ctx)
    reconciled = rec.summary_of_run(conn, ctx.dag_id, ctx.run_id)
    if reconciled:
        lines += ["", reconciled]
    left = usage["day_remaining"] if usage else None
    lines += ["", f"Xero API calls this run: {calls}" + (f" (Xero reports {left} left today)" if left is not None
                                                          else "")]
    if left is not None and left <= settings.DAILY_CALL_FLOOR:
        lines.append(f"Xero's daily API budget is spent: {left} calls left, {settings.DAILY_CALL_FLOOR} kept in "
                     "reserve (OMONO_XERO_DAILY_CALL_FLOOR). Nothing more is read or sent until Xero's next day. If "
                     "this shows every day, the reserve is larger than the organisation's budget: lower it.")
    return "\n".join(lines)


def _not_sent_lines(conn: psycopg.Connection, ctx: RunContext) -> list[str]:
    """What is not in Xero yet and not red, and why: never 'the rest were synced' when they were not."""
    from include.omono_xero_sync import allocate

    waiting = sync_log.not_sent(conn)
    failed = [t for t in sync_log.run_tasks(conn, ctx.dag_id, ctx.run_id) if t["problem"]]
    pairs = allocate.not_made(conn)
    if not waiting and not failed and not pairs:
        return []
    parts = {"sending": "whose write's outcome is unknown (they are looked up in Xero before anything is sent "
                        "again)", "pending": "not attempted yet", "waiting": "waiting for the next API budget"}
    lines = [""]
    if waiting or failed:
        lines.append(f"Not sent yet: {sum(waiting.values())} record(s)" + (": " if waiting else "")
                     + "; ".join(f"{n} {parts[k]}" for k, n in sorted(waiting.items())))
        lines += [f"  Task {t['task_id']} failed: {t['problem']}" for t in failed]
    if pairs:
        lines.append(f"Credit notes not allocated yet: {pairs}, waiting for both documents to be in Xero and "
                     "approved there, or for the next API budget")
    return lines


def verify(ctx: RunContext) -> None:
    """End the run visibly when records need attention, listing them, so Airflow's grid tells the truth."""
    with db.connect() as conn:
        attention = sync_log.unresolved(conn)
        not_sent = sum(sync_log.not_sent(conn).values())
    if attention and not ctx.dry_run:
        listing = "\n".join(f"- {entities.BY_NAME[r['entity']].noun} {r['omono_number']}: "
                            f"{' '.join(r['last_messages'])}" for r in attention[:200])
        later = f"; {not_sent} more are not sent yet (see the summary)" if not_sent else ""
        raise RecordsNeedAttention(f"{len(attention)} record(s) need attention (held or refused by Xero){later}."
                                   f"\n{listing}")
