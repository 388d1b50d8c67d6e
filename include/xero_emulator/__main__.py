"""Run the emulator as its own process:  python -m include.xero_emulator --port 8765 --data-dir .run/xero"""

from __future__ import annotations

import argparse
from pathlib import Path

from include.xero_emulator.config import DEFAULT_FIXTURE, EmulatorConfig, Limits


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m include.xero_emulator",
                                     description="Local emulator of the Xero Accounting API (see docs/EMULATOR.md)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="keep organisations and tokens here across restarts (default: memory only)")
    parser.add_argument("--fixture", type=Path, default=DEFAULT_FIXTURE, help="organisations to start with")
    parser.add_argument("--limits", default="real",
                        help="'real' (5 concurrent, 60/min, 5000/day), 'off', or e.g. 'minute=600,day=20000'")
    parser.add_argument("--clock-speed", type=float, default=1.0,
                        help="emulated seconds per real second (tokens, idempotency, rate windows)")
    parser.add_argument("--record-bodies", action="store_true", help="keep bodies in the admin request log")
    args = parser.parse_args(argv)

    import uvicorn

    from include.xero_emulator.app import create_app

    app = create_app(EmulatorConfig(data_dir=args.data_dir, fixture=args.fixture, limits=Limits.parse(args.limits),
                                    clock_speed=args.clock_speed, record_bodies=args.record_bodies))
    uvicorn.run(app, host=args.host, port=args.port, log_level="warning", lifespan="on")


if __name__ == "__main__":
    main()
