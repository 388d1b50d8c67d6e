"""`make bench`: what a sync costs on this machine, each figure beside its goal (issue 11), never asserted in tests.

Scenarios, each on a fresh database and a fresh emulator (in memory), the DAG run by `dag.test()` in a process of
its own (`sync_child.py`) so that its CPU time and peak memory are the sync's alone:

- **sizes** (`BENCH_SIZES`, default 10000,100000,1000000 documents, about an hour on 2 cores in all; the
  generator's companies, lines, credit notes and 5% bad records): a first sync into an empty organisation, then a
  run with no changes. Xero's limits are off and the client's pacing lifted, so the figures are the sync's own
  cost; calls are counted exactly.
- **an organisation that already holds documents** (`BENCH_HELD`, default 50000 typed by the bookkeeper): a first
  sync of 10,000 documents into it; look-up calls, and each Omono document in Xero exactly once.
- **Xero's real limits** (60 calls a minute, 5 at once, 5,000 a day; the client's own pacing): a first sync of
  `BENCH_LIMITS_DOCS` (default 2000) documents with 300 ms per call, then with 3 s per write; how long the calls
  took against the floor of 60 a minute, and how many answers were 429.

- **a backlog over days** (`BENCH_BUDGET_DOCS`, default 1,000,000 documents, about an hour): a first sync under
  Xero's 5,000 calls a day (`BENCH_BUDGET_DAY`), the emulator's clock moved on a day after each day's run: how
  many days and calls, that no run fails, and that every document is in Xero once at the end.

`BENCH_ONLY=sizes|held|limits|budget` runs one scenario; `BENCH_WITH=<an earlier results file>` adds its sizes to the
growth figures. Results go to the terminal and to `.run/bench/bench-<UTC time>.json`; `docs/BENCHMARKS.md`
records a dated run."""

from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import psycopg

from include.commands import demo
from tests.bench import naive_sync

OUT = demo.RUN / "bench"
LOG = OUT / "bench-airflow.log"
SIZES = [int(s) for s in os.environ.get("BENCH_SIZES", "10000,100000,1000000").split(",") if s]
HELD = int(os.environ.get("BENCH_HELD", "50000"))
LIMITS_DOCS = int(os.environ.get("BENCH_LIMITS_DOCS", "2000"))
BUDGET_DOCS = int(os.environ.get("BENCH_BUDGET_DOCS", "1000000"))
BUDGET_DAY = int(os.environ.get("BENCH_BUDGET_DAY", "5000"))
NAIVE_MAX = 10_000     # the naive baseline replays a call per document: run at sizes up to this
EARLIER = os.environ.get("BENCH_WITH")      # a results file of an earlier run whose sizes join the growth figures
GONE = {"VOIDED", "DELETED"}
REFERENCE = {"/api.xro/2.0/Organisation", "/api.xro/2.0/Accounts", "/api.xro/2.0/TaxRates", "/api.xro/2.0/Currencies"}
lines: list[str] = []


def say(text: str = "") -> None:
    print(text, flush=True)
    lines.append(text)


def figure(what: str, value: str, goal: str = "", met: bool | None = None) -> None:
    mark = "" if met is None else ("  met" if met else "  NOT MET")
    say(f"  {what:58} {value:>24}   {goal}{mark}")


# -- the parts ---------------------------------------------------------------------------------------------------
def start_emulator(limits: str) -> tuple[subprocess.Popen, str]:
    return demo.start_emulator(demo._free_port(8767), extra=("--limits", limits), in_memory=True)


def prepare(documents: int, emulator_url: str) -> str:
    """A fresh database with Omono's demo data and mappings; Airflow pointed at it and at the emulator."""
    from include.commands import demo_data
    from include.omono_xero_sync import db

    url = demo.fresh_database(demo.postgres_admin_url(), os.environ.get("BENCH_DB", "omono_xero_bench"))
    os.environ.update(demo.airflow_env(url, emulator_url))
    with psycopg.connect(url) as conn:
        db.install_omono_schema(conn)
        db.migrate(conn)
        demo_data.generate(conn, documents=documents, bad_share=0.05)
        demo_data.apply_demo_mappings(conn)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
    return url


def run_child(url: str, emulator: subprocess.Popen, emulator_url: str, runs: str, paced: bool,
              days: int = 0) -> list[dict]:
    env = {**os.environ}
    if not paced:
        env["OMONO_XERO_CALLS_PER_MINUTE"] = "1000000"
    out = subprocess.run([sys.executable, "-m", "tests.bench.sync_child", "--db", url, "--emulator", emulator_url,
                          "--emulator-pid", str(emulator.pid), "--runs", runs, "--log", str(LOG),
                          "--days", str(days)], cwd=demo.ROOT, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"the sync process failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- what the figures are made of --------------------------------------------------------------------------------
def window(run: dict, prefix: str) -> list[tuple[float, float]]:
    return [(t["start"], t["end"]) for t in run["tasks"] if t["task_id"].startswith(prefix)]


def within(at: float, spans: list[tuple[float, float]]) -> bool:
    return any(start - 0.05 <= at <= end + 0.05 for start, end in spans)


def memory_growth(run: dict) -> list[tuple[str, float]]:
    """How far each task raised the process's memory above the highest before it, largest first (memory Python
    has freed stays with the process, so the last tasks always show the peak)."""
    peaks, high, grew = run["peak_rss_mb_by_task"], 0.0, []
    for task in sorted(run["tasks"], key=lambda t: t["start"]):
        peak = peaks.get(task["task_id"], 0.0)
        grew.append((task["task_id"], max(peak - high, 0.0)))
        high = max(high, peak)
    return sorted(grew, key=lambda kv: -kv[1])


def call_kinds(run: dict) -> Counter:
    """Each API call by what it was for: writes, allocations, reference reads, look-ups (GETs of the push
    tasks), allocation reads, reconciliation reads."""
    push, alloc, recon = window(run, "push_"), window(run, "allocate"), window(run, "reconcile")
    kinds: Counter = Counter()
    for c in run["calls"]:
        at = c["at_ms"] / 1000
        if c["status"] == 429:
            kinds["429"] += 1
        if c["method"] == "POST":
            kinds["writes"] += 1
        elif c["method"] == "PUT":
            kinds["allocations"] += 1
        elif c["path"] in REFERENCE:
            kinds["reference"] += 1
        elif within(at, push):
            kinds["look-ups"] += 1
        elif within(at, alloc):
            kinds["allocation reads"] += 1
        elif within(at, recon):
            kinds["reconciliation reads"] += 1
        else:
            task = next((t["task_id"] for t in run["tasks"] if within(at, [(t["start"], t["end"])])), "no task")
            kinds[f"reads in {task}"] += 1
    return kinds


def write_floor(url: str) -> tuple[int, int]:
    """Writes the records in Xero need at 50 a call, per kind; and how many records that is."""
    with psycopg.connect(url) as conn:
        per_kind = [n for (n,) in conn.execute("SELECT count(*) FROM xero_sync.record_state WHERE xero_id IS NOT "
                                                "NULL GROUP BY entity")]
    return sum(math.ceil(n / 50) for n in per_kind), sum(per_kind)


def statements_in(run: dict, prefix: str) -> int:
    spans = window(run, prefix)
    return sum(1 for at, _ in run["statements"] if within(at, spans))


# -- scenarios ---------------------------------------------------------------------------------------------------
def sizes() -> dict[int, dict]:
    results: dict[int, dict] = {}
    for documents in SIZES:
        emulator, emulator_url = start_emulator("off")
        try:
            started = time.perf_counter()
            url = prepare(documents, emulator_url)
            prepared = time.perf_counter() - started
            first, unchanged = run_child(url, emulator, emulator_url, "first,unchanged", paced=False)
            floor, records = write_floor(url)
            naive = naive_sync.replay(url, emulator_url) if documents <= NAIVE_MAX else None   # empties Xero
        finally:
            emulator.terminate()
            emulator.wait(30)
        results[documents] = {"prepared_s": prepared, "first": first, "unchanged": unchanged, "floor": floor,
                              "records": records, "naive_calls": naive}
        report_size(documents, results[documents])
    return results


def outcome(run: dict) -> str:
    """A run that ends red only at `verify` did all its work: the generator's bad records are held, as they should."""
    failed = [t["task_id"] for t in run["tasks"] if t["state"] not in {"success", "skipped"}]
    if failed == ["verify"]:
        return "all steps done; verify red for the bad records"
    return "success" if not failed else f"failed: {', '.join(failed)}"


def xero_tasks(run: dict) -> int:
    """Tasks that called Xero: each is a process of its own under Airflow's executors, so each reads the token once."""
    spans = [(t["start"], t["end"]) for t in run["tasks"]]
    return sum(1 for span in spans if any(within(c["at_ms"] / 1000, [span]) for c in run["calls"]))


def report_size(documents: int, r: dict) -> None:
    first, unchanged = r["first"], r["unchanged"]
    kinds = call_kinds(first)
    calls = len(first["calls"])
    bound = r["floor"] + kinds["allocations"] + 4
    written = r["records"]
    say(f"\n{documents:,} documents ({written:,} records in Xero after the first sync; data generated and indexed "
        f"in {r['prepared_s']:.0f} s)")
    figure("first sync: wall time", f"{first['wall_s']:.1f} s ({outcome(first)})")
    figure("first sync: records per second", f"{written / first['wall_s']:.0f}")
    goal = documents == 10_000           # the goals on calls are set for a first sync of 10k documents
    figure("first sync: API calls", f"{calls:,}", f"<= 1.1 x {bound:,} (floor {r['floor']:,} + "
           f"{kinds['allocations']:,} allocations + 4)", calls <= 1.1 * bound if goal else None)
    figure("  by kind", ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    if r.get("naive_calls"):
        figure("naive baseline: API calls (a call per document, a contact look-up each)", f"{r['naive_calls']:,} = "
               f"{r['naive_calls'] / calls:.1f} x ours", "more than ours", r["naive_calls"] > calls)
    figure("first sync: look-up calls / write calls", f"{kinds['look-ups'] / max(kinds['writes'], 1):.1%}",
           "<= 15%", kinds["look-ups"] <= 0.15 * kinds["writes"] if goal else None)
    push_sql = statements_in(first, "push_")
    figure("first sync: SQL statements in the push tasks", f"{push_sql:,} ({push_sql / max(written, 1):.2f}/record)",
           "set-based: well under 1 per record", push_sql < written)
    tokens = sum(1 for _, token in first["statements"] if token)
    figure("first sync: token-store reads", f"{tokens}", f"<= 1 per task that called Xero ({xero_tasks(first)})",
           tokens <= xero_tasks(first))
    share = first["emulator_cpu_s"] / max(first["emulator_cpu_s"] + first["cpu_s"], 1e-9)
    figure("first sync: CPU, sync process / emulator", f"{first['cpu_s']:.1f} s / {first['emulator_cpu_s']:.1f} s",
           f"emulator's share {share:.0%}")
    figure("first sync: peak memory of the sync process", f"{first['peak_rss_mb']:.0f} MB",
           "<= 600 MB at 100k" if documents == 100_000 else "", first["peak_rss_mb"] <= 600 if documents == 100_000
           else None)
    figure("  grew most during", ", ".join(f"{task} +{mb:.0f} MB" for task, mb in memory_growth(first)[:3]))
    figure("run with no changes: CPU time of the sync process", f"{unchanged['cpu_s']:.2f} s "
           f"({unchanged['wall_s']:.1f} s wall, {outcome(unchanged)})")
    figure("run with no changes: API calls", f"{len(unchanged['calls'])}", "4 reference reads",
           len(unchanged["calls"]) <= 4)
    added = unchanged["rows_added"]
    figure("run with no changes: rows added (sync_log, run_queue)", f"{added['sync_log']}, {added['run_queue']}",
           "0, 0 (held records not re-checked)", added["sync_log"] == 0 and added["run_queue"] == 0)
    figure("run_queue rows left after the runs", f"{unchanged['rows_after']['run_queue']}", "0 (pruned)",
           unchanged["rows_after"]["run_queue"] == 0)


def growth(results: dict[int, dict]) -> None:
    say("\nGrowth with history")
    if EARLIER:
        earlier = {int(n): r for n, r in json.loads(Path(EARLIER).read_text())["results"].get("sizes", {}).items()}
        say(f"  (sizes {', '.join(f'{n:,}' for n in earlier if n not in results)} from {EARLIER})")
        results = {**earlier, **results}
    cpu = {n: r["unchanged"]["cpu_s"] for n, r in results.items()}
    rss = {n: r["first"]["peak_rss_mb"] for n, r in results.items()}
    if 10_000 in cpu and 100_000 in cpu:
        ratio = cpu[100_000] / cpu[10_000]
        figure("no-change run CPU, 100k / 10k", f"{ratio:.2f} x", "<= 1.2 x", ratio <= 1.2)
    if 1_000_000 in cpu and 10_000 in cpu:
        figure("no-change run CPU, 1M / 10k", f"{cpu[1_000_000] / cpu[10_000]:.2f} x "
               f"({cpu[1_000_000]:.2f} s)", "measured")
    if 1_000_000 in rss and 100_000 in rss:
        ratio = rss[1_000_000] / rss[100_000]
        figure("first sync peak memory, 1M / 100k", f"{ratio:.2f} x ({rss[1_000_000]:.0f} MB)", "<= 1.1 x",
               ratio <= 1.1)


def twice_in_xero(live: list[dict]) -> int:
    """Live Xero documents whose (type, number, contact) another live one has too: a duplicate."""
    copies = Counter((d["Type"], d.get("InvoiceNumber") or d.get("CreditNoteNumber"), d["Contact"]["ContactID"])
                     for d in live)
    return sum(1 for n in copies.values() if n > 1)


def held_organisation() -> dict:
    """10,000 documents into an organisation whose bookkeeper has typed HELD invoices and bills of their own."""
    emulator, emulator_url = start_emulator("off")
    try:
        url = prepare(10_000, emulator_url)
        admin = httpx.Client(base_url=f"{emulator_url}/_emulator", timeout=600)
        tenant = json.loads(os.environ["AIRFLOW_CONN_XERO_DEFAULT"])["extra"]["tenant_id"]
        contact = admin.post(f"/tenants/{tenant}/seed", json={"Contacts": [{"Name": "Walk-in customers"}]}
                             ).json()["Contacts"][0]["ContactID"]
        line = {"Description": "Typed in Xero", "Quantity": 1, "UnitAmount": 10, "AccountCode": "200",
                "TaxType": "OUTPUT2"}
        for start in range(0, HELD, 2_000):
            docs = [{"Type": "ACCREC" if i % 2 else "ACCPAY", "Contact": {"ContactID": contact},
                     "InvoiceNumber": f"BK-{i:06d}", "Date": "2026-08-03", "Status": "AUTHORISED",
                     "LineItems": [line]} for i in range(start, min(start + 2_000, HELD))]
            admin.post(f"/tenants/{tenant}/seed", json={"Invoices": docs}).raise_for_status()
        (first,) = run_child(url, emulator, emulator_url, "first", paced=False)
        invoices = admin.get(f"/tenants/{tenant}/invoices").json()["invoices"]
        notes = admin.get(f"/tenants/{tenant}/creditnotes").json()["creditnotes"]
    finally:
        emulator.terminate()
        emulator.wait(30)
    with psycopg.connect(url) as conn:
        ours = conn.execute("SELECT xero_id::text FROM xero_sync.record_state WHERE xero_id IS NOT NULL AND entity "
                            "<> 'contact'").fetchall()
    kinds = call_kinds(first)
    say(f"\n10,000 documents into an organisation holding {HELD:,} documents the bookkeeper typed")
    figure("first sync: wall time", f"{first['wall_s']:.1f} s ({outcome(first)})")
    figure("first sync: look-up calls / write calls", f"{kinds['look-ups']} / {kinds['writes']} = "
           f"{kinds['look-ups'] / max(kinds['writes'], 1):.1%}", "correct, and near the empty organisation's")
    twice = twice_in_xero([d for d in invoices + notes if d["Status"] not in GONE])
    figure("documents in Xero twice (type, number, contact)", f"{twice}", "0", twice == 0)
    in_xero = {d.get("InvoiceID") or d.get("CreditNoteID") for d in invoices + notes}
    found = sum(1 for (x,) in ours if x in in_xero)
    figure("synced documents whose Xero copy exists", f"{found:,} of {len(ours):,}", "all", found == len(ours))
    return {"first": first, "twice": twice}


def real_limits() -> dict:
    """A first sync under Xero's real limits, with the client's own pacing, at two latencies."""
    out = {}
    for label, faults in (("300 ms per call", [{"kind": "latency", "ms": 300}]),
                          ("3 s per write, 300 ms per read", [{"kind": "latency", "ms": 3000, "method": "POST"},
                                                              {"kind": "latency", "ms": 3000, "method": "PUT"},
                                                              {"kind": "latency", "ms": 300, "method": "GET"}])):
        emulator, emulator_url = start_emulator("real")
        try:
            url = prepare(LIMITS_DOCS, emulator_url)
            for fault in faults:
                httpx.post(f"{emulator_url}/_emulator/faults", json=fault).raise_for_status()
            (first,) = run_child(url, emulator, emulator_url, "first", paced=True)
        finally:
            emulator.terminate()
            emulator.wait(30)
        calls = first["calls"]
        span = (calls[-1]["at_ms"] - calls[0]["at_ms"]) / 1000 if calls else 0.0
        floor = float(len(calls))                    # 60 calls a minute: one a second
        too_many = sum(1 for c in calls if c["status"] == 429)
        out[label] = {"calls": len(calls), "span_s": span, "floor_s": floor, "429": too_many,
                      "wall_s": first["wall_s"], "state": first["state"]}
        say(f"\nXero's real limits, {LIMITS_DOCS:,} documents, {label}")
        figure("first sync: API calls, and answers 429", f"{len(calls)}, {too_many}", "429s: 0", too_many == 0)
        figure("time from first to last call / 60-a-minute floor", f"{span:.0f} s / {floor:.0f} s = "
               f"{span / max(floor, 1):.2f} x", "<= 1.1 x", span <= 1.1 * floor)
        figure("first sync: wall time", f"{first['wall_s']:.0f} s ({outcome(first)})")
    return out


def budgeted_backlog() -> dict:
    """A first sync bigger than a day's budget, spread over emulated days."""
    emulator, emulator_url = start_emulator("off")
    try:
        url = prepare(BUDGET_DOCS, emulator_url)
        httpx.put(f"{emulator_url}/_emulator/limits", json={"day": BUDGET_DAY, "minute": None, "concurrent": 5,
                                                             "app_minute": None}).raise_for_status()
        days = run_child(url, emulator, emulator_url, "", paced=False, days=400)
        once = in_xero_once(url, emulator_url)
    finally:
        emulator.terminate()
        emulator.wait(30)
    calls = [len(d["calls"]) for d in days]
    kinds = sum((call_kinds(d) for d in days), Counter())
    floor, _records = write_floor(url)
    failed = [d["label"] for d in days if not outcome(d).startswith(("all steps done", "success"))]
    say(f"\n{BUDGET_DOCS:,} documents, a first sync under {BUDGET_DAY:,} calls a day (emulator's clock a day on "
        "after each day's run)")
    figure("days until a run had nothing left to write", f"{len(days)}", "spreads over days", len(days) > 1)
    figure("API calls in all, and the busiest day", f"{sum(calls):,}, {max(calls):,}", f"each day <= {BUDGET_DAY:,}",
           max(calls) <= BUDGET_DAY)
    figure("  by kind", ", ".join(f"{k} {v:,}" for k, v in sorted(kinds.items())))
    figure("  against the floor", f"{sum(calls) / max(floor + kinds['allocations'], 1):.2f} x "
           f"(writes {floor:,} + allocations {kinds['allocations']:,})", "near 1 x")
    figure("runs that failed (other than verify red for the bad records)", f"{len(failed)}", "0", not failed)
    figure("wall time of the day's runs: first, median, last", f"{days[0]['wall_s']:.0f} s, "
           f"{sorted(d['wall_s'] for d in days)[len(days) // 2]:.0f} s, {days[-1]['wall_s']:.0f} s")
    for what, (value, goal) in once.items():
        figure(what, f"{value:,}", f"{goal:,}" if isinstance(goal, int) else goal, value == goal)
    return {"days": [{k: v for k, v in d.items() if k not in {"calls", "statements"}} | {"calls": len(d["calls"])}
                     for d in days], "in_xero_once": once}


def in_xero_once(url: str, emulator_url: str) -> dict[str, tuple[int, Any]]:
    """Read from Xero's side (the emulator's store), not the integration's: each Omono document the integration
    says is synced is there live once, under its number and its company's contact; nothing is there twice."""
    tenant = json.loads(os.environ["AIRFLOW_CONN_XERO_DEFAULT"])["extra"]["tenant_id"]
    fields = "Type,Status,InvoiceID,CreditNoteID,InvoiceNumber,CreditNoteNumber,Contact"
    xero = [d for kind in ("invoices", "creditnotes") for d in httpx.get(
        f"{emulator_url}/_emulator/tenants/{tenant}/{kind}", params={"fields": fields}, timeout=1800).json()[kind]]
    live = {d.get("InvoiceID") or d.get("CreditNoteID"): d for d in xero if d["Status"] not in GONE}
    with psycopg.connect(url) as conn:
        synced = conn.execute("SELECT xero_id::text FROM xero_sync.record_state WHERE entity <> 'contact' AND status "
                              "= 'synced'").fetchall()
        documents = conn.execute("SELECT (SELECT count(*) FROM omono.dispatch_invoices) + (SELECT count(*) FROM "
                                 "omono.delivery_invoices) + (SELECT count(*) FROM omono.credit_notes)").fetchone()[0]
        red = conn.execute("SELECT count(*) FROM xero_sync.record_state WHERE entity <> 'contact' AND status IN "
                           "('held', 'failed') AND jsonb_array_length(last_messages) > 0").fetchone()[0]
    return {"Omono documents synced or red with a message": (len(synced) + red, documents),
            "synced documents live in Xero": (sum(1 for (x,) in synced if x in live), len(synced)),
            "documents in Xero twice (type, number, contact)": (twice_in_xero(list(live.values())), 0),
            "live documents in Xero that no synced record explains": (len(live) - len(synced), 0)}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "airflow", "db", "migrate"], check=True, capture_output=True,
                   env={**os.environ, **demo.airflow_env("postgresql://x/y", "http://127.0.0.1:1")})
    stamp = datetime.now(UTC)
    say(f"make bench, {stamp:%Y-%m-%d %H:%M} UTC, {platform.node()}: {os.cpu_count()} cores, "
        f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB, Python "
        f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}")
    say("Each figure, then its goal; calls counted from the emulator's request log, CPU and memory of the sync's "
        "own process.")
    results: dict[str, Any] = {}
    if os.environ.get("BENCH_ONLY") in (None, "", "sizes"):
        results["sizes"] = sizes()
        growth(results["sizes"])
    if os.environ.get("BENCH_ONLY") in (None, "", "held"):
        results["held"] = held_organisation()
    if os.environ.get("BENCH_ONLY") in (None, "", "limits"):
        results["limits"] = real_limits()
    if os.environ.get("BENCH_ONLY") in (None, "", "budget"):
        results["budget"] = budgeted_backlog()
    say(f"\n(load average at the end {os.getloadavg()[0]:.1f}; Airflow's task logs: {LOG.relative_to(demo.ROOT)})")
    path = OUT / f"bench-{stamp:%Y%m%dT%H%M}.json"
    path.write_text(json.dumps({"printed": lines, "results": results}, default=str))
    print(f"figures and raw results: {path.relative_to(demo.ROOT)}")


if __name__ == "__main__":
    main()
