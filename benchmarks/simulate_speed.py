"""How many cases per second the simulator makes, with and without writing files.

    OMP_NUM_THREADS=1 python benchmarks/simulate_speed.py --n 200 --center a

Prints cases/s for (1) simulation only and (2) the full writer (DICOM, NIfTI mask,
labels, contact sheet), on one core. Target: >= 20 cases/s for centre a. Rates are given
per CPU second of this process (fair on a shared machine) and per wall-clock second.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402  (after the sys.path set-up)

from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset  # noqa: E402  (after the sys.path set-up)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--center", default="a")
    parser.add_argument("--syringes", action="store_true")
    args = parser.parse_args(argv)
    center = CENTERS[args.center]
    labels = UPTAKE4_SIMULATOR.labels
    wall, cpu = time.perf_counter(), time.process_time()
    for i in range(args.n):
        UPTAKE4_SIMULATOR(np.random.default_rng(i), center, labels[i % 4])
    simulated = (args.n / (time.process_time() - cpu), args.n / (time.perf_counter() - wall))
    with tempfile.TemporaryDirectory() as folder:
        wall, cpu = time.perf_counter(), time.process_time()
        write_dataset(
            "uptake4",
            UPTAKE4_SIMULATOR,
            labels,
            center,
            Path(folder),
            args.n,
            1,
            UPTAKE4_SIMULATOR.default_class_mix(args.center),
            syringes=args.syringes,
        )
        written = (args.n / (time.process_time() - cpu), args.n / (time.perf_counter() - wall))
    extra = " (with syringes)" if args.syringes else ""
    print(
        f"centre {args.center}{extra}: simulate {simulated[0]:.1f} cases/CPU-s ({simulated[1]:.1f}/wall-s), simulate+write {written[0]:.1f} cases/CPU-s ({written[1]:.1f}/wall-s)"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
