"""Network choice for uptake4 by measurement: external accuracy against CPU cost (issue 4).

Every candidate is trained with the shipped recipe (camera-invariant preprocessing to
96 x 96, AdamW one-cycle, weighted sampler, augmentation, precise BN, best epoch on a 20 %
validation split) on the same simulated centre-a scans, and tested on simulated centre-b
scans (paper's external mix). Cost: parameters, float32 weights in MB, and bare forward
throughput (images/s, batch 64, ``--cost-threads`` threads, best of ``--iters`` timed
batches after a warm-up) on this CPU.

Candidates: ScintiNet (the project's compact CNN), MONAI 2-D ResNet-10 at quarter width
(``resnet_tiny``) and ResNet-18, ShuffleNetV2 x0.5, MobileNetV3-small, and seed 002's InceptionV3 with its
three-layer head (dropout 0.8) -- the latter at 96 px and fewer epochs than the others
(``--paper-epochs``) because one epoch costs minutes on this CPU; it is labelled so.

Usage (about 30 min on 2 busy shared cores; the defaults are small on purpose: 320 scans, 6 epochs):
    python benchmarks/uptake4_networks.py
    python benchmarks/uptake4_networks.py --networks scintinet resnet_tiny --epochs 4 --n-train 200

Writes ``benchmarks/results/uptake4_networks.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _common import repo_relative, simulate_once  # noqa: E402  (after the sys.path set-up)

CANDIDATES = {
    "scintinet": {"_target_": "scintipipe.networks.ScintiNet", "in_channels": 1},
    "resnet_tiny": {"_target_": "scintipipe.networks.build_network", "name": "resnet_tiny", "in_channels": 1},
    "mobilenet_v3_small": {"_target_": "scintipipe.networks.build_network", "name": "mobilenet_v3_small", "in_channels": 1},
    "shufflenet_v2_x0_5": {"_target_": "scintipipe.networks.build_network", "name": "shufflenet_v2_x0_5", "in_channels": 1},
    "resnet18": {"_target_": "scintipipe.networks.build_network", "name": "resnet18", "in_channels": 1},
    "inception_v3_paper_head": {
        "_target_": "scintipipe.networks.BackboneWithHead",
        "backbone": "inception_v3",
        "in_channels": 1,
        "hidden": [1024, 512],
        "dropout": 0.8,
    },
}
PAPER = "inception_v3_paper_head"


def forward_cost(network_def: dict, size: int, batch: int, threads: int, iters: int) -> dict:
    """Parameters, weights MB and forward images/s of one network (eval mode)."""
    import torch
    from monai.bundle import ConfigParser

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = ConfigParser({"n": {**network_def, "num_classes": 4}}).get_parsed_content("n", instantiate=True).eval()
    images = torch.rand(batch, 1, size, size)
    times = []
    with torch.inference_mode():
        model(images)
        for _ in range(iters):
            start = time.perf_counter()
            model(images)
            times.append(time.perf_counter() - start)
    torch.set_num_threads(previous)
    return {
        "params": sum(p.numel() for p in model.parameters()),
        "weights_mb": round(sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 1e6, 3),
        "forward_images_per_s": round(batch / min(times), 1),
        "cost_threads": threads,
        "cost_batch": batch,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-data", type=Path, default=ROOT / "data/a-bal800")
    parser.add_argument("--test-data", type=Path, default=ROOT / "data/b-ext302")
    parser.add_argument("--n-train", type=int, default=320)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--paper-epochs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="training threads (1: on a shared 2-core machine 2 threads trained up to 15x slower)")
    parser.add_argument("--cost-threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--networks", nargs="+", default=list(CANDIDATES), choices=list(CANDIDATES))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/uptake4_networks")
    parser.add_argument(
        "--cost-only", action="store_true", help="re-measure only the forward cost of the networks already in the results (e.g. on a quieter machine)"
    )
    args = parser.parse_args(argv)

    if args.cost_only:
        results = json.loads(args.out.with_suffix(".json").read_text())
        for name in args.networks:
            if name in results["networks"]:
                results["networks"][name].update(forward_cost(CANDIDATES[name], results["input_size"][0], 64, args.cost_threads, args.iters))
                print(name, results["networks"][name]["forward_images_per_s"], flush=True)
        write(results, args.out, json.loads(json.dumps(list(next(iter(results["networks"].values()))["external"]["sensitivity"]))))
        return results

    from scintipipe.training import experiment as ex
    from scintipipe.training.recipe import load_recipe

    ex.seed_everything(args.seed, args.threads)
    simulate_once(args.train_data, 800, 101, "a", extra=["--class-mix", "balanced"])
    simulate_once(args.test_data, 302, 202, "b")
    base = load_recipe("uptake4")
    labels = base["labels"]
    imgs, y, src, train_hash = ex.load_raw(args.train_data, labels)
    test_imgs, test_y, test_src, test_hash = ex.load_raw(args.test_data, labels)
    train = ex.labelled(ex.preprocess(imgs[: args.n_train], base["scan_transforms"]), y[: args.n_train], src[: args.n_train], labels)
    test = ex.labelled(ex.preprocess(test_imgs, base["scan_transforms"]), test_y, test_src, labels)
    size = base["input_size"][0]
    results: dict = {
        "train_data": {"folder": repo_relative(args.train_data), "n": len(train), "hash": train_hash},
        "test_data": {"folder": repo_relative(args.test_data), "n": len(test), "hash": test_hash},
        "input_size": base["input_size"],
        "seed": args.seed,
        "networks": {},
    }
    previous = args.out.with_suffix(".json")
    if previous.is_file():  # keep earlier candidates' rows when rerunning a subset
        results["networks"] = {k: v for k, v in json.loads(previous.read_text()).get("networks", {}).items() if k not in args.networks}
    for name in args.networks:
        recipe = copy.deepcopy(base)
        recipe.update(network=CANDIDATES[name], epochs=args.paper_epochs if name == PAPER else args.epochs, seed=args.seed)
        res = ex.train_and_test(recipe, train, {"external": test})
        res.pop("_model")
        res.update(forward_cost(CANDIDATES[name], size, 64, args.cost_threads, args.iters))
        res["network_def"] = CANDIDATES[name]
        results["networks"][name] = res
        print(row(name, res, labels), flush=True)
        write(results, args.out, labels)
    return results


def row(name: str, res: dict, labels: list[str]) -> str:
    t = res["external"]
    sens = " | ".join(f"{100 * t['sensitivity'][label]:.1f}" for label in labels)
    return f"| {name} | {res['epochs']} | {100 * res['validation']['accuracy']:.1f} | {100 * t['accuracy']:.1f} | {sens} | {res['params'] / 1e6:.2f} | {res['weights_mb']:.2f} | {res['forward_images_per_s']:.0f} | {res['train_seconds']:.0f} |"


def write(results: dict, out: Path, labels: list[str]) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    nets = results["networks"]
    lines = [
        "# uptake4 network candidates: external accuracy against CPU cost",
        "",
        f"Same recipe and data for all: shipped preprocessing ({results['input_size'][0]} x {results['input_size'][1]}), "
        f"{results['train_data']['n']} simulated balanced centre-a scans ({results['train_data']['folder']}; 20 % validation), "
        f"test {results['test_data']['n']} simulated centre-b scans ({results['test_data']['folder']}, paper's external mix). "
        "Forward throughput: batch 64, 2 threads, best of 5 batches on a shared 2-core CPU (indicative). "
        f"`{PAPER}` is seed 002's InceptionV3 + 3-layer head (dropout 0.8) at 96 px and fewer epochs (training one epoch takes minutes here): not its full 299 px, 300-epoch recipe. "
        "Rerun: `python benchmarks/uptake4_networks.py`.",
        "",
        "| network | epochs | internal val. acc. % | external acc. % | "
        + " | ".join(f"{label} sens. %" for label in labels)
        + " | params M | weights MB | forward img/s | train s |",
        "|---|---|---|---|" + "---|" * len(labels) + "---|---|---|---|",
    ]
    lines += [row(name, res, labels) for name, res in nets.items()]
    if "scintinet" in nets:
        lines += ["", choice(nets)]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def choice(nets: dict) -> str:
    """Why the default is ScintiNet, with the measured numbers (the judgement is written out, the numbers are read)."""
    acc = {n: 100 * r["external"]["accuracy"] for n, r in nets.items()}
    mb = {n: r["weights_mb"] for n, r in nets.items()}
    fps = {n: r["forward_images_per_s"] for n, r in nets.items()}
    best = max(acc, key=acc.get)
    small = sorted((n for n in nets if mb[n] < 5), key=lambda n: -acc[n])
    return (
        f"**Default: ScintiNet, chosen on cost at equal-enough accuracy.** At this small scale every candidate is under-trained. "
        f"The best external accuracy here is {best} ({acc[best]:.1f} %; ScintiNet {acc['scintinet']:.1f} %; 95 % CIs are about +-4 points on "
        f"{nets[best]['external']['n']} scans), but it needs {mb[best]:.0f} MB of weights (the git budget is 5 MB) and runs {fps[best]:.0f} forward images/s "
        f"on 2 threads, so its forward pass alone would take most of the 10 ms per scan that 100 scans/s allows. "
        f"Of the networks under 5 MB ({', '.join(f'{n} {acc[n]:.1f} %' for n in small)}), ScintiNet is the smallest ({mb['scintinet']:.2f} MB) "
        f"and faster than the quarter-width ResNet-10 ({fps['scintinet']:.0f} vs {fps.get('resnet_tiny', 0):.0f} images/s); ShuffleNetV2 x0.5 is faster still but far less accurate. "
        "Trained at full scale (2468 scans, 20 epochs) ScintiNet meets the issue's external targets (see the model card). "
        "Not measured for lack of CPU time: ResNet-10/18 at full scale, which might be a point or two better. "
        "The paper's InceptionV3 + head did not converge in the 2 epochs affordable here (it predicted one class); it is listed for its cost, not as a fair accuracy comparison."
    )


if __name__ == "__main__":
    main()
