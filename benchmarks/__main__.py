"""``python -m benchmarks [SCENARIO ...] [--time-scale K]``: run scenarios, print figures, write JSON."""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

from benchmarks.report import render_table, write_json
from benchmarks.scenarios import SCENARIOS
from benchmarks.scenarios.options import BenchOptions

RESULTS_DIRECTORY = Path(__file__).with_name("results")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO",
                        help=f"which to run (default all): {', '.join(SCENARIOS)}")
    parser.add_argument("--time-scale", type=float, default=10.0,
                        help="stand-in time scale K: its 10 s rate windows last 10/K s (default 10)")
    parser.add_argument("--seed", type=int, default=7, help="seed of the stand-in's data")
    parser.add_argument("--database-url", default=None,
                        help="Postgres server to create a scratch database on (default "
                             "HOSTAWAY_BENCH_DATABASE_URL, else the embedded Postgres)")
    parser.add_argument("--results-dir", type=Path, default=RESULTS_DIRECTORY)
    args = parser.parse_args(argv)
    # Partitioned asset checks are a Dagster preview feature; its warning would drown the table.
    warnings.filterwarnings("ignore", message="Specifying a partitions_def on an AssetCheckSpec")
    unknown = [name for name in args.scenarios if name not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    if args.time_scale <= 0:
        parser.error("--time-scale must be positive")
    options = BenchOptions(time_scale=args.time_scale, seed=args.seed, database_server_url=args.database_url)
    missed_any = False
    for name in args.scenarios or list(SCENARIOS):
        print(f"running {name} ...", flush=True)
        result = SCENARIOS[name](options)
        print(render_table(result))
        print(f"  -> {write_json(result, args.results_dir)}\n", flush=True)
        if result.missed:
            missed_any = True
            print(f"  MISSED: {', '.join(f'{t.figure} {t}' for t in result.missed)}\n", flush=True)
    return 1 if missed_any else 0


if __name__ == "__main__":
    sys.exit(main())
