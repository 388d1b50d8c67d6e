"""Disconnect and reset, the two deliberate lifecycle actions (CLI here, buttons on the General options page).

- Disconnect forgets the Xero tokens and keeps every record's synced state, so reconnecting to the same or
  another organisation resends nothing.
- Reset clears the synced state (record states, allocations, the change-log cursor, staged runs) so everything
  can be synced again; the sync log's history is kept. It must be confirmed with the organisation's name.

    python -m include.omono_xero_sync.lifecycle disconnect
    python -m include.omono_xero_sync.lifecycle reset --confirm "Omono Demo Wholesale Ltd"
"""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime

import psycopg

from include.omono_xero_sync import db, settings, state

S = settings.STATE_SCHEMA


class NotConfirmed(ValueError):
    pass


def disconnect(conn: psycopg.Connection, who: str) -> None:
    conn.execute(f"DELETE FROM {S}.oauth_tokens")
    state.put_setting(conn, "last_disconnect", {"by": who, "at": datetime.now(UTC).isoformat()}, who)
    conn.commit()


def organisation_name(conn: psycopg.Connection) -> str | None:
    row = conn.execute(f"SELECT data->>'Name' AS name FROM {S}.xero_reference WHERE kind = 'organisation'").fetchone()
    return row["name"] if row else None


def reset(conn: psycopg.Connection, confirm: str, who: str) -> dict[str, int]:
    """Forget what was synced (after checking the confirmation); returns how many records were forgotten."""
    expected = organisation_name(conn) or "RESET"
    if confirm.strip() != expected:
        raise NotConfirmed(f"Type the organisation's name exactly ('{expected}') to confirm the reset.")
    with conn.transaction():
        forgotten = conn.execute(f"DELETE FROM {S}.record_state").rowcount
        conn.execute(f"DELETE FROM {S}.allocations")
        conn.execute(f"DELETE FROM {S}.settings WHERE key IN ('allocation_links_seeded', 'codes_in_use_seeded')")
        conn.execute(f"DELETE FROM {S}.codes_in_use")
        conn.execute(f"DELETE FROM {S}.source_cursor")
        conn.execute(f"DELETE FROM {S}.run_queue")
        state.put_setting(conn, "last_reset", {"by": who, "at": datetime.now(UTC).isoformat(),
                                               "records": forgotten}, who)
    return {"records": forgotten}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.omono_xero_sync.lifecycle", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("disconnect", help="forget the Xero tokens; synced records stay synced")
    reset_parser = sub.add_parser("reset", help="forget what was synced (the sync log is kept)")
    reset_parser.add_argument("--confirm", required=True, help="the Xero organisation's name")
    args = parser.parse_args(argv)
    with db.connect() as conn:
        db.migrate(conn)
        if args.action == "disconnect":
            disconnect(conn, "command line")
            print("Disconnected: the Xero tokens are forgotten. Synced records keep their state, so reconnecting "
                  "(make connect) resends nothing.")
            return
        try:
            result = reset(conn, args.confirm, "command line")
        except NotConfirmed as exc:
            sys.exit(str(exc))
    print(f"Reset: {result['records']} records will be synced again on the next run. To resend history by "
          "document date, trigger the DAG with 'Backfill from' and 'Backfill to'.")


if __name__ == "__main__":
    main()
