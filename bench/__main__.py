"""`python -m bench [p1 p2 ...]`: run the benchmarks one after the other (each in a process of its
own, on a control plane of its own) and print their rows under one Markdown table header."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from bench.table import TABLE_HEADER, cores

SCRIPTS = {
    "p1": "bench.p1_latency",
    "p2": "bench.p2_token_calls",
    "p3": "bench.p3_scale",
    "p4": "bench.p4_restart",
    "p5": "bench.p5_storm",
    "p6": "bench.p6_fairness",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("only", nargs="*", help=f"some of {', '.join(SCRIPTS)}; default: all")
    args = parser.parse_args()
    unknown = [name for name in args.only if name not in SCRIPTS]
    if unknown:
        parser.error(f"unknown benchmarks: {', '.join(unknown)}")
    chosen = args.only or list(SCRIPTS)
    failed = 0
    print(f"Benchmarks {time.strftime('%Y-%m-%d %H:%M %Z')}, {cores()} cores\n", flush=True)
    print(TABLE_HEADER, flush=True)
    for name in chosen:
        started = time.monotonic()
        done = subprocess.run(
            [sys.executable, "-m", SCRIPTS[name]], stdout=subprocess.PIPE, text=True, check=False
        )
        took = time.monotonic() - started
        lines = [line for line in done.stdout.splitlines() if line.startswith("|")]
        if done.returncode != 0 or not lines:
            failed += 1
            lines = [
                f"| {name.upper()} | failed with exit code {done.returncode} after {took:.0f} s | | | | |"
            ]
        for line in lines:
            print(line, flush=True)
        print(f"[{name} took {took:.0f} s]", file=sys.stderr, flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
