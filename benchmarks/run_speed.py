"""Speed of `scintipipe run --no-explain --no-report` on simulated centre-b DICOMs (issue 15).

Measures, in one run of this script (the machine is shared: compare figures of one run only):
- the ceilings: the bundle's bare network on batches of 32 (plain tensors, inference mode;
  channels-last too) and bare pydicom (``dcmread`` + ``pixel_array``) on the same files;
  the single-process ideal is ``1 / (1/network + 1/decode)``;
- for each size (default 200, 2,000 and 20,000 scans; ``--sizes``), in a process of its
  own: the run's rate, the rate with process start-up and imports included, peak RSS
  (``resource.getrusage``: the runner's process, and the largest of its forked worker
  processes) and the share of each stage, as the stage-timing plugin
  (:mod:`scintipipe.builtin.stage_timing`) recorded it (worker processes' times added up);
- the marginal rate between the two smallest sizes, ``(n_b - n_a) / (t_b - t_a)``, and its
  ratio to the network's rate and to the single-process ideal;
- optionally (``--compare-workers``) the rate with 0, 1 and 2 worker threads, 1 and 2
  worker processes, and the default without the gate's layers, interleaved.

The runs use the command line's defaults: worker processes where the platform can fork
(``--worker-threads`` here times threads instead).

Scans are simulated once into ``data/speed-b-<n>`` (git-ignored):
``scintipipe simulate --task uptake4 --n N --center b --seed S --out DIR``. Sizes above
2,000 that are a multiple of it (20,000) are not simulated: their folder holds hard links
(copies where links fail) to the 2,000 simulated files under ten different names
(``copy<k>-case-<i>.dcm``), which is what a memory test needs and takes seconds instead of
an hour. The page cache then holds one copy of the data, so those runs read less from disk.

Usage:
    python benchmarks/run_speed.py --sizes 200,2000 --compare-workers
Writes ``benchmarks/results/run_speed.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from _common import simulate_once  # noqa: E402  (after the sys.path set-up)

#: the largest simulated size; larger sizes that are a multiple of it repeat its files
SIMULATED = 2000


def replicate(n: int, seed: int) -> Path:
    """``data/speed-b-<n>``: the :data:`SIMULATED` scans hard-linked ``n // SIMULATED`` times under other names."""
    source = simulate(SIMULATED, seed)
    folder = REPO / "data" / f"speed-b-{n}"
    if (folder / "labels.csv").is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    for copy in range(n // SIMULATED):
        for path in dicom_files(source):
            target = folder / f"copy{copy}-{path.name}"
            if not target.exists():
                try:
                    os.link(path, target)
                except OSError:
                    shutil.copyfile(path, target)
    (folder / "labels.csv").write_text(f"replicated from {source.name}, {n // SIMULATED} times\n")
    return folder


def simulate(n: int, seed: int) -> Path:
    """The folder of ``n`` simulated centre-b scans, simulated on first use (replicated above :data:`SIMULATED`)."""
    if n > SIMULATED and n % SIMULATED == 0:
        return replicate(n, seed - 1)
    return simulate_once(REPO / "data" / f"speed-b-{n}", n, seed, "b", progress=True)


def dicom_files(folder: Path) -> list[Path]:
    return sorted(folder.rglob("*.dcm"))


#: the gate's built-in layers, left out for the ungated comparison
GATE_PLUGINS = ("scintipipe.builtin.gate_metadata", "scintipipe.builtin.gate_content", "scintipipe.builtin.gate_ood")


def child_run(bundle_name: str, data: Path, workers: int | None, threads: int | None, ungated: bool = False, processes: bool = True) -> dict:
    """One `scintipipe run --no-explain --no-report` in this process, as the command line builds it (without the gate's layers when ``ungated``)."""
    start = time.perf_counter()
    import torch

    from scintipipe.bundle import resolve_bundle
    from scintipipe.loaders.files import iter_input_files
    from scintipipe.pipeline import Pipeline, RunOptions
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles
    from scintipipe.runner import default_torch_threads, default_workers

    threads = threads or default_torch_threads()
    torch.set_num_threads(threads)
    pm = make_plugin_manager()
    for name in GATE_PLUGINS if ungated else ():
        pm.unregister(name=name)
    bundle = resolve_bundle(bundle_name, tasks_and_bundles(pm).bundles)
    bundle.network("cpu")
    files = [path for path in iter_input_files([data]) if path.suffix == ".dcm"]  # the scans, not the simulator's masks and sheets
    options = RunOptions(device="cpu", batch_size=32, explain=False, report=False, progress=False, workers=workers, worker_processes=processes)
    with tempfile.TemporaryDirectory() as out:
        summary = Pipeline(pm, bundle, options, log=lambda message: None).run(files, Path(out))
    stages = summary.stage_seconds
    total = sum(entry["seconds"] for entry in stages.values()) or 1.0
    return {
        "files": len(files),
        "classified": summary.classified,
        "failed": len(summary.failures),
        "skipped": len(summary.skipped),
        "seconds": summary.seconds,
        "seconds_with_startup": time.perf_counter() - start,
        "workers": default_workers(processes) if workers is None else workers,
        "worker_kind": "processes" if processes else "threads",
        "torch_threads": threads,
        "stage_seconds": {stage: round(entry["seconds"], 3) for stage, entry in stages.items()},
        "stage_calls": {stage: entry["calls"] for stage, entry in stages.items()},
        "stage_share": {stage: round(entry["seconds"] / total, 3) for stage, entry in stages.items()},
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "worker_peak_rss_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
    }


def child_ceilings(bundle_name: str, data: Path, threads: int | None, repeat: int) -> dict:
    """The bare network (plain and channels-last) and bare pydicom decoding, best of ``repeat``."""
    import pydicom
    import torch

    from scintipipe.bundle import resolve_bundle
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles
    from scintipipe.runner import default_torch_threads

    torch.set_num_threads(threads or default_torch_threads())
    bundle = resolve_bundle(bundle_name, tasks_and_bundles(make_plugin_manager()).bundles)
    net = bundle.network("cpu")
    shape = bundle.config.get_parsed_content("network_def#in_shape", default=None) or [1, 96, 96]
    inputs = torch.rand(512, *shape)

    def network_rate(batches: torch.Tensor, model: torch.nn.Module) -> float:
        with torch.inference_mode():
            model(batches[:32])
            best = float("inf")
            for _ in range(repeat):
                start = time.perf_counter()
                for i in range(0, len(batches), 32):
                    model(batches[i : i + 32]).softmax(1)
                best = min(best, time.perf_counter() - start)
        return len(batches) / best

    plain = network_rate(inputs, net)
    channels_last = network_rate(inputs.contiguous(memory_format=torch.channels_last), net.to(memory_format=torch.channels_last))
    net.to(memory_format=torch.contiguous_format)
    files = dicom_files(data)[:500]
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for path in files:
            pydicom.dcmread(path).pixel_array  # noqa: B018
        best = min(best, time.perf_counter() - start)
    decode = len(files) / best
    return {
        "network_scans_per_s": plain,
        "network_channels_last_scans_per_s": channels_last,
        "decode_files_per_s": decode,
        "input_shape": list(shape),
        "ideal_scans_per_s": 1 / (1 / plain + 1 / decode),
    }


def bare_import_seconds(repeat: int) -> float:
    """Wall time of a fresh ``python -c "import torch, monai"``, best of ``repeat``: the floor under any start-up."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import torch, monai"], check=True, capture_output=True)
        best = min(best, time.perf_counter() - start)
    return best


def in_child(mode: str, args: argparse.Namespace, data: Path, workers: int | None = None, ungated: bool = False, threads_only: bool = False) -> dict:
    """Run ``mode`` in a fresh process and return its figures (and its wall time, start-up included)."""
    command = [sys.executable, __file__, "--child", mode, "--bundle", args.bundle, "--data", str(data), "--repeat", str(args.repeat)]
    if workers is not None:
        command += ["--workers", str(workers)]
    if args.threads:
        command += ["--threads", str(args.threads)]
    if ungated:
        command.append("--ungated")
    if threads_only or args.worker_threads:
        command.append("--worker-threads")
    start = time.perf_counter()
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["process_seconds"] = time.perf_counter() - start
    return result


def marginal_large(report: dict) -> dict:
    """The marginal rate between the two largest sizes, and its ratio to the ideal.

    The issue's marginal rate subtracts the 200-scan run, whose 1-2 s move it by tens of per
    cent when the machine wobbles; between 2,000 and 20,000 scans the difference is minutes.
    """
    a, b = report["sizes"][-2], report["sizes"][-1]
    rate = (b["classified"] - a["classified"]) / (b["seconds"] - a["seconds"])
    return {"marginal_large_scans_per_s": rate, "marginal_large_over_ideal": rate / report["ceilings"]["ideal_scans_per_s"]}


def markdown(report: dict) -> str:
    c = report["ceilings"]
    lines = [
        "# `scintipipe run --no-explain --no-report` speed (issue 15)",
        "",
        f"Command: `{report['command']}`. {report['cpu_count']} CPUs, load average at start {report['load_average'][0]:.1f}. Figures of one run; the machine is shared.",
        "",
        f"- bare network, batches of 32: {c['network_scans_per_s']:.0f} scans/s (channels-last {c['network_channels_last_scans_per_s']:.0f})",
        f"- bare pydicom decode: {c['decode_files_per_s']:.0f} files/s; single-process ideal {c['ideal_scans_per_s']:.0f} scans/s",
    ]
    if "bare_import_seconds" in c:
        lines.append(f'- bare `python -c "import torch, monai"`: {c["bare_import_seconds"]:.1f} s')
    lines += [
        "",
        "| scans | run rate (scans/s) | with process start (scans/s) | peak RSS, runner / largest worker (MB) | workers | torch threads |",
        "|---|---|---|---|---|---|",
    ]
    for size in report["sizes"]:
        lines.append(
            f"| {size['classified']} | {size['classified'] / size['seconds']:.1f} | {size['classified'] / size['process_seconds']:.1f} | {size['peak_rss_mb']:.0f} / {size['worker_peak_rss_mb']:.0f} | {size['workers']} {size['worker_kind']} | {size['torch_threads']} |"
        )
    if "marginal_scans_per_s" in report:
        lines += [
            "",
            f"Marginal rate {report['marginal_scans_per_s']:.1f} scans/s: {100 * report['marginal_over_network']:.1f} % of the bare network, {100 * report['marginal_over_ideal']:.1f} % of the single-process ideal.",
        ]
    if "marginal_large_scans_per_s" in report:
        sizes = report["sizes"]
        lines.append(
            f"Between {sizes[-2]['classified']} and {sizes[-1]['classified']} scans: {report['marginal_large_scans_per_s']:.1f} scans/s, "
            f"{100 * report['marginal_large_over_ideal']:.1f} % of the ideal (the steadier figure: the {sizes[0]['classified']}-scan run lasts seconds)."
        )
    if "peak_rss_growth" in report:
        sizes = report["sizes"]
        lines += [
            "",
            f"Peak RSS from {sizes[1]['classified']} to {sizes[-1]['classified']} scans: {100 * report['peak_rss_growth']:+.1f} %."
            + (
                f" The {sizes[-1]['n']} scans are the {SIMULATED} simulated ones hard-linked under {sizes[-1]['n'] // SIMULATED} names each."
                if sizes[-1]["n"] > SIMULATED
                else ""
            ),
        ]
    if "bare_import_seconds" in c:
        lines += ["", "Start-up (process wall time minus the run's own time) against the bare import measured above:", ""]
        for size in report["sizes"]:
            startup = size["process_seconds"] - size["seconds"]
            lines.append(f"- {size['classified']} scans: {startup:.1f} s, {startup / c['bare_import_seconds']:.2f} x the bare import")
    largest = report["sizes"][-1]
    lines += [
        "",
        f"Share of each stage ({largest['classified']} scans; time inside stage hooks, all threads and worker processes added up):",
        "",
        "| stage | share | seconds | calls |",
        "|---|---|---|---|",
    ]
    for stage, share in sorted(largest["stage_share"].items(), key=lambda item: -item[1]):
        lines.append(f"| {stage} | {100 * share:.1f} % | {largest['stage_seconds'][stage]} | {largest['stage_calls'][stage]} |")
    if report.get("workers_comparison"):
        lines += [
            "",
            "Worker threads and processes, and the default without the gate's layers (smallest size, interleaved rounds, best per setting):",
            "",
            "| workers | scans/s |",
            "|---|---|",
        ]
        for workers, rate in report["workers_comparison"].items():
            lines.append(f"| {workers} | {rate:.1f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="uptake4")
    parser.add_argument("--sizes", default="200,2000,20000", help="comma-separated numbers of scans")
    parser.add_argument("--seed", type=int, default=200, help="seed of the first size; later sizes add one each")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: the runner's)")
    parser.add_argument("--workers", type=int, default=None, help="workers (default: the runner's)")
    parser.add_argument("--worker-threads", action="store_true", help="worker threads instead of the default worker processes")
    parser.add_argument("--repeat", type=int, default=3, help="timed passes of the ceilings; the best is kept")
    parser.add_argument(
        "--compare-workers",
        action="store_true",
        help="also time 0, 1 and 2 worker threads, 1 and 2 worker processes, and the run without the gate's layers, on the smallest size",
    )
    parser.add_argument("--ungated", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/run_speed.json")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child == "run":
        print(json.dumps(child_run(args.bundle, args.data, args.workers, args.threads, args.ungated, processes=not args.worker_threads)))
        return
    if args.child == "ceilings":
        print(json.dumps(child_ceilings(args.bundle, args.data, args.threads, args.repeat)))
        return
    sizes = [int(part) for part in args.sizes.split(",") if part.strip()]
    folders = [simulate(n, args.seed + index + 1) for index, n in enumerate(sizes)]
    report: dict = {
        "command": "python benchmarks/run_speed.py " + " ".join(sys.argv[1:]),
        "cpu_count": os.cpu_count(),
        "load_average": os.getloadavg(),
        "bundle": args.bundle,
    }
    report["ceilings"] = in_child("ceilings", args, folders[-1])
    report["ceilings"]["bare_import_seconds"] = bare_import_seconds(min(args.repeat, 2))
    report["sizes"] = [{"n": n, **in_child("run", args, folder, args.workers)} for n, folder in zip(sizes, folders, strict=False)]
    if len(sizes) >= 2:
        a, b = report["sizes"][0], report["sizes"][1]
        marginal = (b["classified"] - a["classified"]) / (b["seconds"] - a["seconds"])
        report.update(
            marginal_scans_per_s=marginal,
            marginal_over_network=marginal / report["ceilings"]["network_scans_per_s"],
            marginal_over_ideal=marginal / report["ceilings"]["ideal_scans_per_s"],
        )
    if len(sizes) >= 3:  # memory: peak RSS of the largest run against the second size's
        report["peak_rss_growth"] = report["sizes"][-1]["peak_rss_mb"] / report["sizes"][1]["peak_rss_mb"] - 1
        report.update(marginal_large(report))
    if args.compare_workers:
        best: dict[str, float] = {}
        for _ in range(2):  # interleaved rounds: the machine's load hits every setting
            for setting in ("0", "1 thread", "2 threads", "1 process", "2 processes", "default, ungated"):
                count = int(setting[0]) if setting[0].isdigit() else args.workers
                result = in_child("run", args, folders[0], count, ungated="ungated" in setting, threads_only="thread" in setting)
                best[setting] = max(best.get(setting, 0.0), result["classified"] / result["seconds"])
        report["workers_comparison"] = best
    report["load_average_end"] = os.getloadavg()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))
    print(markdown(report))


if __name__ == "__main__":
    main()
