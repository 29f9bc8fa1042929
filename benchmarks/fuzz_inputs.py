"""Fuzz the loaders and ``scintipipe run`` with mutated input files (issue 16, input fuzzing).

Valid seeds (a two-view NM DICOM, a simulated uptake4 NM DICOM, grey and ``hot`` PNGs, a
JPEG, a TIFF, a NIfTI-1 and a NRRD; see ``tests/fuzz_mutations.py``) are mutated at random
(truncations, bit flips, inserted and overwritten bytes, absurd header values) with a
fixed seed, and:

1. ``--n`` of them go through :func:`scintipipe.loaders.read_scans` in a worker process,
   one at a time, with a time limit per input: the worker is killed and restarted when an
   input runs past it (a hang in C code cannot be interrupted otherwise);
2. ``--run-n`` of them go through ``scintipipe run --bundle uptake4`` in batches.

Outcomes are counted: loaded, refused (a ``ScintipipeError`` naming the file), other
exceptions, timeouts; through ``run``: predicted, error row, skipped, wrapped crash
(``plugin ... failed in stage``), missing. Peak RSS (``ru_maxrss``) of the worker and of the
``run`` processes is recorded. Targets: 0 other exceptions, 0 timeouts, peak RSS < 2 GiB.

Usage:
    python benchmarks/fuzz_inputs.py --n 10000 --run-n 300
"""

from __future__ import annotations

import argparse
import collections
import csv
import hashlib
import json
import multiprocessing
import random
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "tests"))

from fuzz_mutations import SEED_HEADERS, apply_mutation, random_mutation, write_seeds  # noqa: E402

TARGET_RSS_BYTES = 2 * 1024**3


def simulated_seed(folder: Path) -> bytes | None:
    """One NM DICOM from ``scintipipe simulate --task uptake4 --n 1`` (``None`` if it fails)."""
    out = folder / "simulated"
    command = [sys.executable, "-m", "scintipipe", "simulate", "--task", "uptake4", "--n", "1", "--seed", "16", "--out", str(out), "--no-progress"]
    if subprocess.run(command, capture_output=True).returncode != 0:
        return None
    found = sorted(out.rglob("*.dcm"))
    return found[0].read_bytes() if found else None


def worker(connection: Any, seed_folder: str) -> None:
    """Load each path received; answer ``(outcome, detail, seconds, peak RSS in bytes)``."""
    import logging
    import warnings

    warnings.simplefilter("ignore")
    logging.disable(logging.CRITICAL)  # tifffile and nibabel log every oddity they meet
    from scintipipe.errors import ScanError, ScintipipeError
    from scintipipe.loaders import read_scans

    for seed in sorted(Path(seed_folder).iterdir()):  # warm up: imports ITK, nibabel, pydicom
        read_scans(seed)
    connection.send("ready")
    while True:
        path = connection.recv()
        if path is None:
            return
        start = time.perf_counter()
        try:
            scans = read_scans(path)
            outcome, detail = "loaded", f"{len(scans)} scan(s)"
        except ScanError as exc:
            outcome, detail = ("refused", exc.reason) if exc.source.startswith(path) else ("unnamed", str(exc))
        except ScintipipeError as exc:
            outcome, detail = ("refused", str(exc)) if path in str(exc) else ("unnamed", str(exc))
        except Exception as exc:  # noqa: BLE001  (what the fuzzing looks for)
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            outcome, detail = "other", f"{type(exc).__name__} at {Path(frame.filename).name}:{frame.lineno}: {str(exc)[:200]}"
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        connection.send((outcome, detail, time.perf_counter() - start, peak))


class LoaderWorker:
    """A worker process that can be killed and restarted when an input hangs."""

    def __init__(self, seed_folder: Path):
        self.seed_folder = seed_folder
        self.context = multiprocessing.get_context("spawn")
        self.peak_rss = 0
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        self.connection, child = self.context.Pipe()
        self.process = self.context.Process(target=worker, args=(child, str(self.seed_folder)), daemon=True)
        self.process.start()
        if not self.connection.poll(900) or self.connection.recv() != "ready":
            raise RuntimeError("the loader worker did not start")

    def load(self, path: Path, timeout: float) -> tuple[str, str, float]:
        """Load one input: ``(outcome, detail, seconds)``; a hang or a dead worker restarts it."""
        self.connection.send(str(path))
        try:
            if self.connection.poll(timeout):
                outcome, detail, seconds, peak = self.connection.recv()
                self.peak_rss = max(self.peak_rss, peak)
                return outcome, detail, seconds
            outcome, detail = "timeout", f"no answer within {timeout:g} s"
        except (EOFError, ConnectionError):  # the worker died inside C code (a segfault, an abort)
            self.process.join(10)
            outcome, detail = "died", f"the worker process died (exit code {self.process.exitcode})"
        self.process.kill()
        self.process.join()
        self.restarts += 1
        self._start()
        return outcome, detail, timeout

    def close(self) -> None:
        self.connection.send(None)
        self.process.join(30)


def fuzz_loaders(seeds: dict[str, bytes], seed_folder: Path, work: Path, n: int, rng: random.Random, timeout: float) -> dict[str, Any]:
    counts: collections.Counter[str] = collections.Counter()
    by_kind: dict[str, collections.Counter[str]] = collections.defaultdict(collections.Counter)
    examples: dict[str, dict[str, Any]] = {}
    reasons: collections.Counter[str] = collections.Counter()
    slowest = (0.0, "")
    loader = LoaderWorker(seed_folder)
    start = time.perf_counter()
    for index in range(n):
        name = rng.choice(sorted(seeds))
        operations = random_mutation(rng, name, len(seeds[name]))
        path = work / f"{index:05d}_{name}"
        path.write_bytes(apply_mutation(name, seeds[name], operations))
        outcome, detail, seconds = loader.load(path, timeout)
        path.unlink()
        counts[outcome] += 1
        by_kind[name][outcome] += 1
        if outcome == "refused":
            reasons[_reason_kind(detail)] += 1
        if outcome not in ("loaded", "refused"):
            examples.setdefault(detail[:160], {"outcome": outcome, "seed": name, "operations": repr(operations), "count": 0})["count"] += 1
        if seconds > slowest[0]:
            slowest = (seconds, f"{name} {operations!r}: {outcome}")
        if (index + 1) % 1000 == 0:
            print(
                f"loaders: {index + 1}/{n} {dict(counts)} peak RSS {loader.peak_rss / 2**20:.0f} MiB, {time.perf_counter() - start:.0f} s", flush=True
            )
    loader.close()
    return {
        "inputs": n,
        "counts": dict(counts),
        "by_seed": {name: dict(c) for name, c in sorted(by_kind.items())},
        "refusal_reasons": dict(reasons.most_common(25)),
        "failures": examples,
        "worker_restarts": loader.restarts,
        "peak_rss_bytes": loader.peak_rss,
        "slowest_input": {"seconds": round(slowest[0], 3), "input": slowest[1]},
        "seconds": round(time.perf_counter() - start, 1),
    }


def _reason_kind(reason: str) -> str:
    """A refusal's reason without its numbers and file-specific details, for counting."""
    import re

    text = re.sub(
        r"\d[\d,.]*", "N", reason.split(": ")[0] if reason.startswith(("not a readable", "truncated or corrupt", "corrupt or truncated")) else reason
    )
    return text[:90]


def fuzz_run(seeds: dict[str, bytes], work: Path, n: int, rng: random.Random, batch: int, timeout: float) -> dict[str, Any]:
    counts: collections.Counter[str] = collections.Counter()
    failures: list[dict[str, str]] = []
    start = time.perf_counter()
    timeouts = 0
    for first in range(0, n, batch):
        folder = work / f"run{first:05d}"
        folder.mkdir()
        paths = {}
        for index in range(first, min(n, first + batch)):
            name = rng.choice(sorted(seeds))
            operations = random_mutation(rng, name, len(seeds[name]))
            path = folder / f"{index:05d}_{name}"
            path.write_bytes(apply_mutation(name, seeds[name], operations))
            paths[path] = (name, operations)
        out = folder / "out"
        command = [sys.executable, "-m", "scintipipe", "run", "--bundle", "uptake4", "--out", str(out), "--no-progress", *map(str, paths)]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            timeouts += 1
            counts["timeout"] += len(paths)
            continue
        output = done.stdout + done.stderr
        if "Traceback" in output:
            failures.append({"batch": str(first), "error": output[-2000:]})
        predicted = _sources(out / "predictions.csv")
        errors = {row["source"]: row["error"] for row in _rows(out / "errors.csv")}
        for path, (name, operations) in paths.items():
            mine = [source for source in [*predicted, *errors] if source == str(path) or source.startswith(f"{path}#")]
            crashed = [source for source in mine if "failed in stage" in errors.get(source, "")]
            if crashed:
                counts["crash"] += 1
                failures.append({"seed": name, "operations": repr(operations), "error": errors[crashed[0]][:300]})
            elif any(source in predicted for source in mine):
                counts["predicted"] += 1
            elif mine:
                counts["error_row"] += 1
            elif f"skipped {path}" in output:
                counts["skipped"] += 1
            else:
                counts["missing"] += 1
                failures.append({"seed": name, "operations": repr(operations), "error": f"exit {done.returncode}: {output[-500:]}"})
        print(f"run: {min(n, first + batch)}/{n} {dict(counts)} {time.perf_counter() - start:.0f} s", flush=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024
    return {
        "inputs": n,
        "counts": dict(counts),
        "failures": failures[:20],
        "batch_timeouts": timeouts,
        "peak_rss_bytes": peak,
        "seconds": round(time.perf_counter() - start, 1),
    }


def _rows(path: Path) -> list[dict[str, str]]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return list(csv.DictReader(handle))


def _sources(path: Path) -> list[str]:
    return [row["source"] for row in _rows(path)]


def write_report(results: dict[str, Any], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    loaders, run = results["loaders"], results["run"]
    lc, rc = loaders["counts"], run["counts"]
    lines = [
        "# Input fuzzing (issue 16)",
        "",
        f"Command: `{results['command']}` (seed {results['seed']}, {results['date']}, {results['machine']}).",
        f"Seeds: {', '.join(results['seeds'])}; their SHA-256 in the JSON.",
        "",
        f"## Loaders (`scintipipe.loaders.read_scans`, one worker process, {results['timeout_s']:g} s per input)",
        "",
        "| inputs | loaded | refused (ScanError naming the file) | other exceptions | unnamed errors | timeouts | process died | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
        f"| {loaders['inputs']:,} | {lc.get('loaded', 0):,} | {lc.get('refused', 0):,} | {lc.get('other', 0)} | {lc.get('unnamed', 0)} | {lc.get('timeout', 0)} | {lc.get('died', 0)} | {loaders['peak_rss_bytes'] / 2**20:,.0f} MiB |",
        "",
        f"Slowest input: {loaders['slowest_input']['seconds']} s. Time: {loaders['seconds']:,} s.",
        "",
        "| seed | " + " | ".join(("loaded", "refused", "other", "timeout", "died")) + " |",
        "|---|---|---|---|---|---|",
        *(
            f"| {name} | " + " | ".join(str(c.get(k, 0)) for k in ("loaded", "refused", "other", "timeout", "died")) + " |"
            for name, c in loaders["by_seed"].items()
        ),
        "",
        "Most common refusals:",
        "",
        *(f"- {count:,}: {reason}" for reason, count in list(loaders["refusal_reasons"].items())[:12]),
        "",
        "## Through `scintipipe run --bundle uptake4`",
        "",
        "| inputs | prediction row | errors.csv row | skipped | wrapped crash | missing | timeout | peak RSS |",
        "|---|---|---|---|---|---|---|---|",
        f"| {run['inputs']:,} | {rc.get('predicted', 0)} | {rc.get('error_row', 0)} | {rc.get('skipped', 0)} | {rc.get('crash', 0)} | {rc.get('missing', 0)} | {rc.get('timeout', 0)} | {run['peak_rss_bytes'] / 2**20:,.0f} MiB |",
        "",
        f"Time: {run['seconds']:,} s.",
        "",
        "## Failures",
        "",
        *(f"- {detail} ({info['count']}x; e.g. {info['seed']} {info['operations']})" for detail, info in loaders["failures"].items()),
        *(f"- run: {failure}" for failure in run["failures"]),
        "" if loaders["failures"] or run["failures"] else "None.",
    ]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000, help="mutated inputs through the loaders")
    parser.add_argument("--run-n", type=int, default=300, help="mutated inputs through scintipipe run")
    parser.add_argument("--run-batch", type=int, default=50)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per input through the loaders")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "fuzz_inputs.md")
    args = parser.parse_args(argv)
    import platform
    import warnings

    warnings.simplefilter("ignore")  # pydicom warns about every absurd value the mutations write

    with tempfile.TemporaryDirectory(prefix="scintipipe-fuzz-") as tmp:
        work = Path(tmp)
        seed_folder = work / "seeds"
        seeds = write_seeds(seed_folder)
        simulated = simulated_seed(work)
        if simulated is not None:
            (seed_folder / "simulated.dcm").write_bytes(simulated)
            seeds["simulated.dcm"] = simulated
            SEED_HEADERS["simulated.dcm"] = "dicom"
        rng = random.Random(args.seed)
        run = fuzz_run(seeds, work, args.run_n, random.Random(args.seed + 1), args.run_batch, timeout=1800)
        (work / "cases").mkdir()
        loaders = fuzz_loaders(seeds, seed_folder, work / "cases", args.n, rng, args.timeout)
    results = {
        "command": "python benchmarks/fuzz_inputs.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "seed": args.seed,
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {multiprocessing.cpu_count()} CPUs, Python {platform.python_version()}",
        "timeout_s": args.timeout,
        "seeds": sorted(seeds),
        "seed_sha256": {name: hashlib.sha256(data).hexdigest() for name, data in sorted(seeds.items())},
        "loaders": loaders,
        "run": run,
        "targets": {"other_exceptions": 0, "timeouts": 0, "peak_rss_bytes_below": TARGET_RSS_BYTES},
    }
    ok = all(loaders["counts"].get(outcome, 0) == 0 for outcome in ("other", "timeout", "unnamed", "died"))
    ok = ok and not run["failures"] and max(loaders["peak_rss_bytes"], run["peak_rss_bytes"]) < TARGET_RSS_BYTES
    results["targets_met"] = ok
    write_report(results, args.out)
    print(args.out.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
