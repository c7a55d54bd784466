"""How long a conv2d sweep takes when the implementation hangs on every dilation (2, 2) case.

Runs `refcheck run --impl tests/impls_hostile/hangs_on_dilation.py --layers conv2d --timeout 5` as a
user would (a fresh process) and prints the wall time, the number of hanging cases and what the
sweep would cost if every hanging case had the full timeout. Target: under 2 minutes on 2 cores.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--timeout", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="the quick conv2d sweep instead of the full one")
    parser.add_argument("--json", metavar="PATH", help="also write the figures as JSON")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as out:
        command = [sys.executable, "-m", "refcheck", "run", "--impl", str(ROOT / "tests/impls_hostile/hangs_on_dilation.py"),
                   "--layers", "conv2d", "--timeout", f"{args.timeout:g}", "--out", out, "--no-plots"]
        if args.quick:
            command.append("--quick")
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, text=True)
        wall = time.perf_counter() - started
        frame = pd.read_csv(Path(out) / "cases.csv")
    per_case = frame.groupby("case").first()
    hanging = per_case[per_case["reason"].astype(str).str.startswith("timeout")]
    figures = {"cases": int(len(per_case)), "hanging": int(len(hanging)), "wall_s": round(wall, 1),
               "full_timeout_cost_s": round(len(hanging) * args.timeout / 2, 1),
               "shortened": int(hanging["reason"].str.contains("shortened budget").sum()),
               "others_passed": bool((per_case.drop(hanging.index)["status"] == "passed").all())}
    print(json.dumps(figures, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
