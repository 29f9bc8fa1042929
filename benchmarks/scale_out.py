"""Scale-out benchmark: a small resampling grid against Dask workers, and an estimate for Slurm.

Runs the same grid (recipes x random splits on simulated scans) in this process, then on a
``LocalCluster`` of 1 and 2 worker processes, checks the results are identical, and
reports wall time per set-up and per job. Then it measures what one training image costs
ResNet-18 at 224 x 224 (forward and backward) on this CPU and estimates seed 003's full
grid at the paper's scale (10 random 3:1 splits x 4 networks; 446 images, 80 epochs) on
10 Slurm nodes, one job per node at a time.

    python benchmarks/scale_out.py                 # results/scale_out.{json,md}
    python benchmarks/scale_out.py --scans 24 --splits 2 --epochs 1   (quicker)
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import torch
from click.testing import CliRunner

from scintipipe.cli import cli
from scintipipe.executors import ExecutorSettings
from scintipipe.plugins import make_plugin_manager
from scintipipe.testing import write_small_recipe
from scintipipe.training.evaluate import resampling_experiment
from scintipipe.training.recipe import load_recipe

HERE = Path(__file__).resolve().parent

#: seed 003 at the paper's scale (plugins/scintipipe-remnant/README.md)
PAPER = {"images": 446, "splits": 10, "networks": 4, "epochs": 80, "test_size": 0.25, "val_fraction": 0.2, "size": 224}


def grid(data: Path, recipes: dict, out: Path, splits: int, settings: ExecutorSettings) -> tuple[float, dict]:
    started = time.perf_counter()
    results = resampling_experiment(
        make_plugin_manager(),
        recipes,
        data / "labels.csv",
        data,
        out,
        design="splits",
        n_splits=splits,
        test_size=0.25,
        seed=0,
        device="cpu",
        progress=False,
        log=lambda m: None,
        executor=settings,
        threads=1,
    )
    return time.perf_counter() - started, results


def resnet18_seconds_per_image(size: int = 224, batch: int = 16, repeats: int = 3) -> float:
    """Forward + backward of MONAI's 2-D ResNet-18 per image, one thread (as a 1-core Dask worker runs it)."""
    from monai.networks.nets import resnet18

    torch.set_num_threads(1)
    net = resnet18(spatial_dims=2, n_input_channels=3, num_classes=2)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-5)
    x, y = torch.randn(batch, 3, size, size), torch.randint(0, 2, (batch,))
    times = []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        loss = torch.nn.functional.cross_entropy(net(x), y)
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        times.append(time.perf_counter() - started)
    return min(times[1:]) / batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scans", type=int, default=48)
    parser.add_argument("--splits", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--cores-per-node", type=int, default=16, help="PyTorch threads of one Slurm job (one job per node)")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        data = root / "scans"
        result = CliRunner().invoke(
            cli,
            [
                "simulate",
                "--task",
                "uptake4",
                "--n",
                str(args.scans),
                "--seed",
                "3",
                "--center",
                "a",
                "--class-mix",
                "balanced",
                "--out",
                str(data),
                "--no-progress",
            ],
        )
        assert result.exit_code == 0, result.output
        recipes = {
            name: load_recipe(write_small_recipe(root, name, channels, size=64, epochs=args.epochs, batch_size=8, val_fraction=0.2))
            for name, channels in (("small", [8, 16]), ("wider", [16, 32]))
        }
        n_jobs = len(recipes) * args.splits
        rows = []
        reference = None
        for label, settings in (
            ("in process", ExecutorSettings()),
            ("LocalCluster, 1 worker", ExecutorSettings(workers=1)),
            ("LocalCluster, 2 workers", ExecutorSettings(workers=2)),
        ):
            seconds, results = grid(data, recipes, root / label.replace(" ", "_").replace(",", ""), args.splits, settings)
            same = reference is None or results["split_predictions"] == reference
            reference = reference or results["split_predictions"]
            rows.append(
                {
                    "setup": label,
                    "jobs": n_jobs,
                    "seconds": round(seconds, 1),
                    "seconds_per_job": round(seconds / n_jobs, 2),
                    "identical_to_in_process": same,
                }
            )
            print(rows[-1], flush=True)
    per_image = resnet18_seconds_per_image()
    train_images = PAPER["images"] * (1 - PAPER["test_size"]) * (1 - PAPER["val_fraction"])
    eval_images = PAPER["images"] * (1 - PAPER["test_size"]) * PAPER["val_fraction"] + PAPER["images"] * PAPER["test_size"]
    # per epoch: train (fwd+bwd), precise-BN pass and validation (forward only, about a third of fwd+bwd)
    job_1core = PAPER["epochs"] * (train_images * per_image * (1 + 1 / 3) + eval_images * per_image / 3)
    speedup = min(args.cores_per_node, 16) * 0.6  # PyTorch CPU threads scale sub-linearly: 60 % efficiency assumed
    job_node = job_1core / speedup
    jobs = PAPER["splits"] * PAPER["networks"]
    waves = math.ceil(jobs / args.nodes)
    estimate = {
        "resnet18_224_fwd_bwd_seconds_per_image_1_thread": round(per_image, 4),
        "paper_job_seconds_1_core": round(job_1core),
        "paper_job_seconds_per_node": round(job_node),
        "jobs": jobs,
        "nodes": args.nodes,
        "waves": waves,
        "grid_hours_on_nodes": round(waves * job_node / 3600, 2),
        "grid_hours_serial_one_node": round(jobs * job_node / 3600, 2),
        "grid_hours_serial_1_core": round(jobs * job_1core / 3600, 1),
        "assumptions": "ResNet-18 for every network (the four differ); 80 epochs, 446 images, 3:1 splits, 20 % validation; one Slurm job per node with "
        f"{args.cores_per_node} threads at 60 % parallel efficiency; scheduling and data loading not counted",
    }
    out = {
        "grid": rows,
        "scans": args.scans,
        "splits": args.splits,
        "epochs": args.epochs,
        "estimate": estimate,
        "cpu_cores_here": torch.get_num_threads(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "scale_out.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [
        "# Scale-out benchmark",
        "",
        f"{args.scans} simulated scans, 2 recipes x {args.splits} random splits, {args.epochs} epochs ({len(rows and rows[0:1]) and rows[0]['jobs']} jobs).",
        "",
        "| set-up | seconds | seconds per job | identical to in-process |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['setup']} | {r['seconds']} | {r['seconds_per_job']} | {r['identical_to_in_process']} |" for r in rows]
    lines += ["", "## Seed 003's full grid at the paper's scale (estimate)", "", *(f"- {k}: {v}" for k, v in estimate.items())]
    (args.out / "scale_out.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
