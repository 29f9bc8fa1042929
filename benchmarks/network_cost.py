"""Cost of each network on this machine's CPU: size and bare forward-pass throughput.

For each network: parameters, float32 weights in MB, and forward images per second at a
fixed batch on CPU with a fixed thread count (2 by default, the target machine), at the
given input size, one input channel and four classes (uptake4). Throughput is the best of
a few timed iterations after one warm-up, so that other processes' load weighs less; on
a shared machine the figures are indicative.

Usage:
    python benchmarks/network_cost.py --size 128 --out benchmarks/results/network_cost.json
    python benchmarks/network_cost.py --size 96 --networks scintinet resnet18 --iters 5
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from scintipipe.networks import NETWORKS, build_network

MAIN_CANDIDATES = (
    "scintinet",
    "resnet_tiny",
    "squeezenet1_1",
    "shufflenet_v2_x0_5",
    "shufflenet_v2_x1_0",
    "mobilenet_v3_small",
    "mobilenet_v3_large",
    "efficientnet_b0",
    "resnet18",
    "resnet34",
    "densenet121",
    "alexnet",
    "resnet50",
    "densenet169",
    "inception_v3",
    "inception_resnet_v2",
)


def measure(name: str, size: int, batch: int, iters: int, num_classes: int = 4) -> dict:
    """Parameters, weights size and forward throughput of network ``name``."""
    torch.manual_seed(0)
    model = build_network(name, num_classes=num_classes, in_channels=1).eval()
    params = sum(p.numel() for p in model.parameters())
    weight_bytes = sum(t.numel() * t.element_size() for t in model.state_dict().values())
    images = torch.rand(batch, 1, size, size)
    times = []
    with torch.inference_mode():
        model(images)  # warm-up
        for _ in range(iters):
            start = time.perf_counter()
            model(images)
            times.append(time.perf_counter() - start)
    return {
        "network": name,
        "params": params,
        "weights_mb": round(weight_bytes / 1e6, 3),
        "images_per_s_best": round(batch / min(times), 1),
        "images_per_s_median": round(batch / sorted(times)[len(times) // 2], 1),
        "ms_per_batch_best": round(1000 * min(times), 2),
    }


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure the networks and print/write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=128, help="input height and width in pixels")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=3, help="timed iterations per network (after one warm-up)")
    parser.add_argument("--networks", nargs="+", default=list(MAIN_CANDIDATES), help=f"registry names (known: {', '.join(NETWORKS)})")
    parser.add_argument("--out", type=Path, help="JSON file for the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()[0]
    rows = []
    print(f"{'network':22s} {'params':>12s} {'MB':>8s} {'img/s best':>11s} {'img/s median':>13s}")
    for name in args.networks:
        if args.size < NETWORKS[name].min_size:
            print(f"{name:22s} skipped: needs at least {NETWORKS[name].min_size} px")
            continue
        row = measure(name, args.size, args.batch, args.iters)
        rows.append(row)
        print(
            f"{name:22s} {row['params']:>12,d} {row['weights_mb']:>8.2f} {row['images_per_s_best']:>11.1f} {row['images_per_s_median']:>13.1f}",
            flush=True,
        )
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        setup = {
            "size": args.size,
            "batch": args.batch,
            "threads": args.threads,
            "iters": args.iters,
            "torch": torch.__version__,
            "machine": platform.processor() or platform.machine(),
        }
        # Other processes on the machine slow a 2-thread run a lot; the load tells how much.
        setup["load_average_1min"] = {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)}
        args.out.write_text(json.dumps({"setup": setup, "networks": rows}, indent=2) + "\n")
        print(f"wrote {args.out}")
    return rows


if __name__ == "__main__":
    main()
