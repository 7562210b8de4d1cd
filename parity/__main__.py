"""``python -m parity``: run every parity case in float64 and float32 and print a table."""

from __future__ import annotations

import argparse
import dataclasses
import json
import secrets
import sys

import torch

from parity.cases import CASES, run_all


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m parity", description=__doc__)
    parser.add_argument("--seed", type=int, default=None,
                        help="seed for weights and inputs (default: fresh each run, printed)")
    parser.add_argument("--json", metavar="FILE", help="also write the table as JSON")
    parser.add_argument("--dtype", choices=["float64", "float32"], action="append",
                        help="run only this dtype (repeatable)")
    parser.add_argument("--case", action="append", choices=list(CASES), metavar="CASE",
                        help="run only this case (repeatable)")
    args = parser.parse_args(argv)
    seed = args.seed if args.seed is not None else secrets.randbelow(2**31)
    torch.set_num_threads(1)
    print(f"parity seed {seed} (reproduce with --seed {seed})")
    rows = run_all(seed, tuple(args.dtype or ("float64", "float32")), args.case)
    width = max(len(r.case) for r in rows)
    print(f"{'case':<{width}}  {'dtype':<7}  {'check':<8}  {'max abs err':>11}  "
          f"{'max rel err':>11}  {'tolerance':<22}  result")
    for r in rows:
        print(f"{r.case:<{width}}  {r.dtype:<7}  {r.check:<8}  {r.max_abs:>11.3e}  "
              f"{r.max_rel:>11.3e}  {r.tolerance:<22}  {'pass' if r.passed else 'FAIL'}")
    failed = [r for r in rows if not r.passed]
    print(f"{len(rows) - len(failed)} passed, {len(failed)} failed")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"seed": seed, "rows": [dataclasses.asdict(r) for r in rows]}, f, indent=2)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
