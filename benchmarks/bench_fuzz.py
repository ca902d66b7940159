"""The hostile-input test at thousands of generated manifests (CI runs 200).

Runs tests/integration/test_hostile_input.py on the local control plane with
MEETSCALE_FUZZ_EXAMPLES=--examples: Meeting, AgencyQuota and BridgePool manifests (valid,
near-valid, garbage) sent as an agency clerk and as the IT centre while a clerk books a
valid Meeting every 0.5 s; every one must be stored and handled, or refused naming the
field, and the operator must keep deciding. Prints the test's summary (examples, seconds,
decisions per second during the fuzz, what was stored and refused) and writes it into
benchmarks/results/fuzz.json under a key naming the size.

    .venv/bin/python benchmarks/bench_fuzz.py [--examples 3000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks/results/fuzz.json"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=3000)
    args = parser.parse_args()
    env = {**os.environ, "MEETSCALE_FUZZ_EXAMPLES": str(args.examples), "CI": "true"}
    argv = [sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider",
            "tests/integration/test_hostile_input.py"]  # fmt: skip
    run = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    summary = next(
        (json.loads(line) for line in run.stdout.splitlines() if line.startswith('{"examples"')),
        None,
    )
    if run.returncode != 0 or summary is None:
        print(run.stdout[-5000:], run.stderr[-2000:], sep="\n")
        return 1
    summary["machine"] = f"{platform.machine()}, {os.cpu_count()} cores"
    print(json.dumps(summary, indent=1, ensure_ascii=False))
    results = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    results[f"{args.examples} examples"] = summary
    RESULTS.write_text(json.dumps(results, indent=1, ensure_ascii=False) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
