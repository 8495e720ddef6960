"""`wsanalysis simulate SCENARIO --out DIR`: run the fleet, write a labelled dataset.

    wsanalysis simulate aa_baseline --out data/aa_baseline [--seed 7]
    wsanalysis simulate my_scenario.yaml --out /tmp/run --engine simulated

SCENARIO is a bundled name (see `--list`) or a YAML path. The dataset folder gets
`metrics.om`, `rum.ndjson.gz`, `labels.json` and `scenario.yaml` (seed included).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from wsanalysis.errors import UsageError
from wsanalysis.reference.fleet import simulate, write_dataset
from wsanalysis.reference.scenario import bundled_names, load_scenario

ENGINES = ("simulated", "sockets")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="run a fleet scenario and write a labelled dataset folder",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("scenario", nargs="?", help="bundled scenario name or YAML path")
    parser.add_argument("--out", type=Path, help="dataset folder to write")
    parser.add_argument(
        "--engine",
        choices=ENGINES,
        default="simulated",
        help="simulated: discrete-event engine on a virtual clock (fast, long runs); "
        "sockets: real reference servers and clients on 127.0.0.1 on a scaled clock",
    )
    parser.add_argument(
        "--scale",
        type=float,
        default=60.0,
        help="sockets engine: virtual seconds per real second (default 60)",
    )
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument("--list", action="store_true", help="list the bundled scenarios")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.list:
        for name in bundled_names():
            description = load_scenario(name).description.split(". ")[0]
            print(f"{name:28} {description}")
        return 0
    if not args.scenario or args.out is None:
        raise UsageError(
            "simulate needs a SCENARIO and --out DIR",
            "e.g. `wsanalysis simulate aa_baseline --out /tmp/aa` (names: --list)",
        )
    if args.seed is not None and args.seed < 0:
        raise UsageError(f"--seed {args.seed} is negative", "give a seed >= 0")
    scenario = load_scenario(args.scenario)
    if args.seed is not None:
        scenario = scenario.with_seed(args.seed)
    total = scenario.warmup + scenario.duration
    with tqdm(
        total=round(total / 3600, 2),
        unit="vh",
        desc=f"{scenario.name} (seed {scenario.seed})",
        disable=args.quiet,
        file=sys.stderr,
        bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} virtual h [{elapsed}<{remaining}]",
    ) as bar:

        def progress(done: float) -> None:
            bar.update(round(done / 3600, 2) - bar.n)

        if args.engine == "sockets":
            from wsanalysis.reference.fleet_sockets import simulate_sockets  # starts asyncio

            result = simulate_sockets(scenario, progress, scale=args.scale)
        else:
            result = simulate(scenario, progress)
    folder = write_dataset(result, args.out)
    print(result.summary())
    print(f"dataset written to {folder}")
    return 0
