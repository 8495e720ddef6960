"""python -m wsanalysis.traffic NAME --out DIR [--seed N] [--hours H]: one dataset."""

from __future__ import annotations

import argparse

from wsanalysis.traffic import SCENARIOS, generate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("name", choices=sorted(SCENARIOS))
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hours", type=float, default=12.0)
    args = parser.parse_args()
    print(generate(args.name, args.out, seed=args.seed, hours=args.hours))


if __name__ == "__main__":
    main()
