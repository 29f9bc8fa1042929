"""What skipping the segment stage under ``--no-report`` saves (issue 15: only the stages the outputs need).

Runs the pipeline as ``scintipipe run --no-report --no-explain`` does, and the same with the
segment stage forced on (as every run did before: the classical segmenter ran on every scan
although nothing read its regions). The timed runs of the two alternate in one process, so
the machine's load hits both; the best of ``--repeat`` is kept.

Usage:
    python benchmarks/no_report_speed.py --n 200
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import simulate_once


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="uptake4")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--center", default="a")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/no_report_speed.json"))
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    from scintipipe.bundle import resolve_bundle
    from scintipipe.loaders.files import iter_input_files
    from scintipipe.pipeline import Pipeline, RunOptions
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    data = Path(tempfile.gettempdir()) / f"scintipipe-speed-{args.center}-{args.n}-{args.seed}"
    simulate_once(data, args.n, args.seed, args.center)
    files = [p for p in iter_input_files([data]) if p.suffix == ".dcm"][: args.n]
    pm = make_plugin_manager()
    bundle = resolve_bundle(args.bundle, tasks_and_bundles(pm).bundles)
    options = RunOptions(segment=True, explain=False, report=False, progress=False)

    class SegmentingAnyway(Pipeline):
        """The runner as it was: the segment stage runs whatever the outputs."""

        segments = property(lambda self: self.options.segment)

    pipelines = {
        "no_report": Pipeline(pm, bundle, options, log=lambda m: None),
        "segmenting_anyway": SegmentingAnyway(pm, bundle, options, log=lambda m: None),
    }
    rates: dict[str, list[float]] = {name: [] for name in pipelines}
    with tempfile.TemporaryDirectory() as out:
        for pipeline in pipelines.values():
            pipeline.run(files[:16], Path(out))  # warm-up
        for _ in range(args.repeat):
            for name, pipeline in pipelines.items():
                start = time.perf_counter()
                summary = pipeline.run(files, Path(out))
                rates[name].append(summary.classified / (time.perf_counter() - start))
    best = {name: max(values) for name, values in rates.items()}
    report = {
        "bundle": args.bundle,
        "n": len(files),
        "center": args.center,
        "threads": args.threads,
        "load_average": os.getloadavg(),
        "scans_per_s": best,
        "runs": rates,
        "ratio": best["no_report"] / best["segmenting_anyway"],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"--no-report --no-explain: {best['no_report']:.1f} scans/s; with the segment stage run anyway: {best['segmenting_anyway']:.1f} scans/s ({report['ratio']:.1f}x)"
    )


if __name__ == "__main__":
    main()
