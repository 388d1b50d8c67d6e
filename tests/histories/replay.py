"""Replay one history by its seed and print what happened:

    python -m tests.histories.replay SEED [--profile ci|soak] [--require KIND ...]

It runs on its own emulator process and a database of its own, exactly as the test suite and `make soak` do."""

from __future__ import annotations

import argparse
import sys

from tests.histories.runner import configure_environment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.histories.replay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seed", type=int)
    parser.add_argument("--profile", choices=("ci", "soak"), default="ci")
    parser.add_argument("--require", nargs="*", default=[], help="operations or fault kinds the history must include")
    args = parser.parse_args(argv)
    configure_environment()
    from tests.histories import history, runner, world

    runner.preload()
    profile = history.CI if args.profile == "ci" else history.SOAK
    with world.world() as w:
        result = history.History(w, args.seed, profile, required=tuple(args.require)).run()
    print(result.report())
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
