"""Load test of ``scintipipe serve`` on loopback: requests/s and latency at 1, 4 and 16 clients.

Run from the repository root::

    python benchmarks/server_load.py                       # uptake4-sized bundle, 8 scans
    python benchmarks/server_load.py --bundle uptake4 --requests 48 --model uptake4_roi

The server runs in this process under uvicorn on 127.0.0.1 (a free port); each client is
a thread with its own ``MONAILabelClient`` that uploads a simulated centre-b DICOM with
every request (``POST /infer/{model}`` with ``file``), the way a script calls it. Each
concurrency level sends ``--requests`` requests in all (bounded), after a warm-up
request per scan. Without ``--bundle`` the server gets a random-weight bundle written
from the shipped ``uptake4`` recipe: the same network, input size and preprocessing as
the shipped bundle, so the same cost (its answers mean nothing and are not looked at).

Prints a Markdown table (and, with ``--out``, writes the figures as JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from scintipipe.server.local import running_server  # noqa: E402  (after the sys.path set-up)

CONCURRENCY = (1, 4, 16)


def uptake4_sized_bundle(folder: Path) -> Path:
    """A random-weight bundle from the shipped uptake4 recipe (cost as the real one)."""
    import torch

    from scintipipe.training.recipe import load_recipe
    from scintipipe.training.train import build_network, write_recipe_bundle

    recipe = load_recipe("uptake4")
    torch.manual_seed(0)
    model = build_network(recipe)
    card = "# uptake4-sized benchmark bundle\nRandom weights: for timing only, its outputs mean nothing.\n"
    return write_recipe_bundle(folder / "uptake4-bench", recipe, model.state_dict(), card, description="benchmark bundle with random weights")


def simulated_scans(folder: Path, n: int, seed: int) -> list[Path]:
    """``n`` simulated centre-b uptake4 DICOMs."""
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR, write_dataset

    labels = ["diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"]
    write_dataset("uptake4", UPTAKE4_SIMULATOR, labels, CENTERS["b"], folder, n=n, seed=seed, class_mix={label: 0.25 for label in labels})
    return sorted(folder.glob("case-*.dcm"))


def run_level(url: str, model: str, scans: list[Path], clients: int, requests_total: int, tmp: Path) -> dict[str, float]:
    """Send ``requests_total`` requests from ``clients`` threads; latency and throughput."""
    from monailabel.client import MONAILabelClient

    latencies: list[float] = []
    lock = threading.Lock()
    counter = iter(range(requests_total))

    def worker(index: int) -> None:
        folder = tmp / f"client{index}"
        folder.mkdir(exist_ok=True)
        client = MONAILabelClient(url, tmpdir=str(folder))
        while True:
            with lock:
                number = next(counter, None)
            if number is None:
                return
            begin = time.perf_counter()
            client.infer(model, "", {}, file=str(scans[number % len(scans)]))
            with lock:
                latencies.append(time.perf_counter() - begin)

    start = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    elapsed = time.perf_counter() - start
    ordered = np.sort(latencies)
    return {
        "clients": clients,
        "requests": len(latencies),
        "requests_per_s": round(len(latencies) / elapsed, 2),
        "median_ms": round(1000 * float(statistics.median(ordered)), 1),
        "p95_ms": round(1000 * float(np.percentile(ordered, 95)), 1),
        "seconds": round(elapsed, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", default=None, help="Bundle name or folder (default: random-weight uptake4-sized bundle).")
    parser.add_argument("--model", default=None, help="Model to call (default: the bundle's classification model).")
    parser.add_argument("--requests", type=int, default=48, help="Requests per concurrency level (at least twice the clients).")
    parser.add_argument("--scans", type=int, default=8)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--out", type=Path, default=None, help="Also write the figures as JSON here.")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="server-load-") as tmp_name:
        tmp = Path(tmp_name)
        if args.bundle:
            from scintipipe.bundle import resolve_bundle
            from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

            bundle = resolve_bundle(args.bundle, tasks_and_bundles(make_plugin_manager()).bundles)
            name, folder = bundle.name, bundle.root
        else:
            name, folder = "uptake4", uptake4_sized_bundle(tmp)
        model = args.model or name
        scans = simulated_scans(tmp / "scans", args.scans, args.seed)
        scan_kb = scans[0].stat().st_size // 1024
        rows = []
        with running_server({name: folder}, tmp / "datastore") as url:
            run_level(url, model, scans, 1, len(scans), tmp)  # warm-up: one request per scan
            for clients in CONCURRENCY:
                rows.append(run_level(url, model, scans, clients, max(args.requests, 2 * clients), tmp))
                print(f"{clients:>2} clients: {rows[-1]}", file=sys.stderr)

    table = ["| clients | requests | requests/s | median latency (ms) | p95 latency (ms) |", "|---:|---:|---:|---:|---:|"]
    table += [f"| {r['clients']} | {r['requests']} | {r['requests_per_s']} | {r['median_ms']} | {r['p95_ms']} |" for r in rows]
    print(f"model {model}, {args.scans} simulated centre-b scans ({scan_kb} KB DICOM each) uploaded per request, {os.cpu_count()} CPUs")
    print("\n".join(table))
    if args.out is None:
        return
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "model": model,
                "bundle": args.bundle or "random-weight uptake4 recipe",
                "scans": args.scans,
                "cpus": os.cpu_count(),
                "machine": platform.machine(),
                "rows": rows,
            },
            indent=1,
        )
        + "\n"
    )


if __name__ == "__main__":
    main()
