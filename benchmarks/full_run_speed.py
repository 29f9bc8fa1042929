"""Each stage's cost in full runs (Grad-CAM, reports, classical or learned segmenter), now and before issue 15.

Run from the repository root::

    python benchmarks/full_run_speed.py                  # 40 centre-a scans, 2 rounds
    python benchmarks/full_run_speed.py --n 20 --rounds 1 --segmenters learned

Issue 15 asks that the runs with the learned segmenter and with Grad-CAM report each
stage's cost and be no slower than before its changes. This script runs, in one session
and interleaved so the machine's load falls on both:

* the current checkout, and the checkout of ``--baseline-rev`` (default: the commit the
  first issue-15 change was made on), each in a child process whose ``PYTHONPATH`` puts
  that checkout's ``src/`` first (the baseline is checked out with ``git worktree`` into
  ``--worktree``; each version runs its own uptake4 bundle, with the core's plugins only,
  since the installed plugin packages are the current ones);
* each with ``Pipeline.run`` as ``scintipipe run --explain-method gradcam --segmenter S``
  builds it, reports (HTML, DICOM SR and SC) on, in one process (no worker processes, so
  both versions do the same work in the same place), timing every stage hook with a
  timing plugin of this script's (the same for both versions);
* and the current code once more with its default worker processes, for the wall time a
  user sees.

The best (shortest) round of each configuration is kept. Outputs:
``benchmarks/results/full_run_speed.{md,json}``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import simulate_once  # noqa: E402  (after the sys.path set-up)

#: the parent of 1accfab, issue 15's first change ("run --no-report skips the segment stage")
BASELINE_REV = "5e81e945e879444b4184500c120e69d585357d34"


def stage_clock(pm: Any, hookimpl: Any, stages: dict[str, str]) -> dict[str, float]:
    """Register a plugin that adds each stage hook's wall time to the returned dict.

    Args:
        pm: the run's plugin manager.
        hookimpl: that scintipipe's hook marker.
        stages: stage hook -> stage (the current ``stage_timing.STAGE_OF_HOOK``, passed in
            because the baseline's code may predate it).
    """
    seconds: dict[str, float] = {}

    def wrapper_for(stage: str) -> Any:
        def wrapper() -> Any:
            start = time.perf_counter()
            try:
                return (yield)
            finally:
                seconds[stage] = seconds.get(stage, 0.0) + time.perf_counter() - start

        return hookimpl(wrapper=True)(wrapper)

    plugin = types.SimpleNamespace(**{hook: wrapper_for(stage) for hook, stage in stages.items() if hasattr(pm.hook, hook)})
    pm.register(plugin, name="full-run-speed-clock")
    return seconds


def child(data: Path, segmenter: str, workers: str, stages: dict[str, str]) -> dict[str, Any]:
    """One full run in this process with the ``scintipipe`` on ``sys.path``; its times as JSON."""
    import torch

    torch.set_num_threads(1)
    import scintipipe
    from scintipipe import hookimpl
    from scintipipe.bundle import resolve_bundle
    from scintipipe.loaders.files import iter_input_files
    from scintipipe.pipeline import Pipeline, RunOptions
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    pm = make_plugin_manager(load_entry_points=False)  # the core alone: the installed plugins are the current ones
    seconds = stage_clock(pm, hookimpl, stages)
    bundle = resolve_bundle("uptake4", tasks_and_bundles(pm).bundles)
    bundle.network("cpu")
    files = [path for path in iter_input_files([data]) if path.suffix == ".dcm"]
    chosen = {"explain_method": "gradcam", "segmenter": segmenter}
    options: dict[str, Any] = {"explain": True, "report": True, "progress": False}
    if "plugin_options" in RunOptions.__dataclass_fields__:  # since the plugin contract: options that plugins declare
        options["plugin_options"] = chosen
        options["workers"] = None if workers == "default" else int(workers)
        options["worker_processes"] = True  # as the command line sets it
    else:
        options.update(chosen)
    with tempfile.TemporaryDirectory() as out:
        summary = Pipeline(pm, bundle, RunOptions(**options), log=lambda message: None).run(files, Path(out))
    return {
        "scintipipe": str(Path(scintipipe.__file__).parents[1]),
        "files": len(files),
        "classified": summary.classified,
        "failed": len(summary.failures),
        "seconds": summary.seconds,
        "stage_seconds": {stage: round(value, 4) for stage, value in seconds.items()},
    }


def checkout(rev: str, folder: Path) -> Path:
    """A ``git worktree`` of ``rev`` at ``folder`` (reused when it is there)."""
    if not (folder / "src/scintipipe").is_dir():
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(folder), rev], check=True, capture_output=True)
    return folder


def run_child(root: Path, data: Path, segmenter: str, workers: str) -> dict[str, Any]:
    """:func:`child` in a fresh interpreter that imports scintipipe and its plugins from ``root``."""
    env = {**os.environ, "PYTHONPATH": str(root / "src"), "OMP_NUM_THREADS": "1"}
    from scintipipe.builtin.stage_timing import STAGE_OF_HOOK

    command = [sys.executable, str(Path(__file__).resolve()), "--child", "--data", str(data), "--segmenters", segmenter, "--workers", workers]
    command += ["--stages", json.dumps(STAGE_OF_HOOK)]
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the run with {root} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def markdown(report: dict[str, Any]) -> str:
    """The results as Markdown."""
    from scintipipe.builtin.stage_timing import STAGE_OF_HOOK

    lines = [
        "# Full runs: each stage's cost now and before issue 15",
        "",
        f"Command: `{report['command']}`. {report['n']} simulated centre-a scans, `--explain-method gradcam`, reports on "
        f"(HTML, DICOM SR and SC), one process, torch 1 thread; best of {report['rounds']} interleaved rounds. Baseline: "
        f"`{report['baseline_rev'][:12]}` (before issue 15's first change) with its own bundles. Load average at start "
        f"{report['load_average'][0]:.1f}; compare the columns of this run only.",
        "",
    ]
    for segmenter, entry in report["segmenters"].items():
        before, now = entry["baseline"], entry["current"]
        stages = sorted(set(before["stage_seconds"]) | set(now["stage_seconds"]), key=list(dict.fromkeys(STAGE_OF_HOOK.values())).index)
        lines += [
            f"## `--segmenter {segmenter}`",
            "",
            "| stage | before, ms a scan | now, ms a scan | now / before |",
            "|---|---|---|---|",
        ]
        for stage in stages:
            a = 1000 * before["stage_seconds"].get(stage, 0.0) / max(before["classified"], 1)
            b = 1000 * now["stage_seconds"].get(stage, 0.0) / max(now["classified"], 1)
            lines.append(f"| {stage} | {a:.1f} | {b:.1f} | {b / a:.2f} |" if a else f"| {stage} | - | {b:.1f} | - |")
        a, b = before["seconds"], now["seconds"]
        lines += [
            f"| **whole run** | {1000 * a / before['classified']:.1f} | {1000 * b / now['classified']:.1f} | **{b / a:.2f}** |",
            "",
            f"With the current default worker processes the same run took {entry['current_default_workers']['seconds']:.1f} s "
            f"({entry['current_default_workers']['seconds'] / a:.2f} x the baseline's one-process run).",
            "",
        ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="simulated centre-a scans")
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds; the best of each configuration is kept")
    parser.add_argument("--segmenters", default="classical,learned")
    parser.add_argument("--baseline-rev", default=BASELINE_REV)
    parser.add_argument("--worktree", type=Path, default=Path(tempfile.gettempdir()) / "scintipipe-full-run-baseline")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/full_run_speed.json")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--workers", default="0", help=argparse.SUPPRESS)
    parser.add_argument("--stages", default="{}", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.data, args.segmenters, args.workers, json.loads(args.stages))))
        return 0
    data = simulate_once(REPO / "data" / f"fullrun-a-{args.n}", args.n, args.seed, "a", extra=["--class-mix", "balanced"])
    baseline = checkout(args.baseline_rev, args.worktree)
    report: dict[str, Any] = {
        "command": " ".join(["python benchmarks/full_run_speed.py", *(argv if argv is not None else sys.argv[1:])]),
        "n": args.n,
        "rounds": args.rounds,
        "baseline_rev": args.baseline_rev,
        "load_average": os.getloadavg(),
        "segmenters": {},
    }
    for segmenter in args.segmenters.split(","):
        best: dict[str, dict[str, Any]] = {}
        for round_ in range(args.rounds):
            for name, root, workers in (("baseline", baseline, "0"), ("current", REPO, "0"), ("current_default_workers", REPO, "default")):
                result = run_child(root, data, segmenter, workers)
                print(f"{segmenter} round {round_ + 1} {name}: {result['seconds']:.1f} s", flush=True)
                if name not in best or result["seconds"] < best[name]["seconds"]:
                    best[name] = result
        report["segmenters"][segmenter] = best
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    text = markdown(report)
    args.out.with_suffix(".md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
