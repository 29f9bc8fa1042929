"""Which preprocessing steps make uptake4 survive a second centre? (issue 4, ablation)

Trains the shipped recipe's network (ScintiNet, same augmentation, optimiser, weighted
sampler, precise BN, best epoch on a 20 % validation split) on simulated centre-a scans
(256 x 256, 1.09 mm, ~100k counts) and tests on simulated centre-b scans (128 x 128,
2.21 mm, ~300k counts, the paper's external mix 120/49/13/120), once per preprocessing
variant:

- ``full``: resample to 2.2 mm -> crop a 96 x 96 (211 mm) neck window -> smooth + sqrt +
  percentile normalisation (the shipped recipe);
- ``no_resample_resize``: plain resize of the whole image to 128 x 128 instead of resampling
  to a spacing, then the same crop and normalisation;
- ``no_resample_native``: no resampling and no resize (crop 96 x 96 native pixels);
- ``no_crop``: resample to 2.2 mm, whole field padded/cropped to 128 x 128, no neck crop;
- ``linear_norm``: full pipeline but a linear percentile scaling (no smoothing, no sqrt);
- ``paper``: seed 002's preprocessing, resize of the whole image (128 x 128 here, not 299)
  and min-max scaling to [0, 1].

Usage (about 10-20 min on 2 cores; data are simulated once into data/ if missing):
    python benchmarks/uptake4_ablation.py
    python benchmarks/uptake4_ablation.py --variants full paper --epochs 5 --n-train 200

Writes ``benchmarks/results/uptake4_ablation.json`` and ``.md``.
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

RESAMPLE = {"_target_": "scintipipe.transforms.ResampleToSpacingd", "keys": "image", "spacing_mm": 2.2}
CROP = {"_target_": "scintipipe.transforms.CropNeckRegiond", "keys": "image", "size_px": [96, 96]}
NORM = {"_target_": "scintipipe.transforms.NormalizeCountsd", "keys": "image"}
LINEAR = {"_target_": "scintipipe.transforms.NormalizeCountsd", "keys": "image", "smooth_px": 0.0, "sqrt": False}

VARIANTS = {
    "full": ([RESAMPLE, CROP, NORM], [96, 96]),
    "no_resample_resize": ([{"_target_": "Resized", "keys": "image", "spatial_size": [128, 128], "mode": "area"}, CROP, NORM], [96, 96]),
    "no_resample_native": ([CROP, NORM], [96, 96]),
    "no_crop": ([RESAMPLE, {"_target_": "ResizeWithPadOrCropd", "keys": "image", "spatial_size": [128, 128]}, NORM], [128, 128]),
    "linear_norm": ([RESAMPLE, CROP, LINEAR], [96, 96]),
    "paper": (
        [
            {"_target_": "Resized", "keys": "image", "spatial_size": [128, 128], "mode": "area"},
            {"_target_": "ScaleIntensityd", "keys": "image", "minv": 0.0, "maxv": 1.0},
        ],
        [128, 128],
    ),
}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-data", type=Path, default=ROOT / "data/a-bal800", help="centre-a training scans (simulated balanced if missing)")
    parser.add_argument(
        "--test-data", type=Path, default=ROOT / "data/b-ext302", help="centre-b test scans (simulated with the paper's external mix if missing)"
    )
    parser.add_argument("--n-train", type=int, default=800)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared 2-core machine 2 threads trained up to 15x slower)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/uptake4_ablation")
    args = parser.parse_args(argv)

    from scintipipe.training import experiment as ex
    from scintipipe.training.recipe import load_recipe

    ex.seed_everything(args.seed, args.threads)
    simulate_once(args.train_data, args.n_train, 101, "a", extra=["--class-mix", "balanced"])
    simulate_once(args.test_data, 302, 202, "b")
    base = load_recipe("uptake4")
    labels = base["labels"]
    train_imgs, train_y, train_src, train_hash = ex.load_raw(args.train_data, labels)
    train_imgs, train_y, train_src = train_imgs[: args.n_train], train_y[: args.n_train], train_src[: args.n_train]
    test_imgs, test_y, test_src, test_hash = ex.load_raw(args.test_data, labels)
    results: dict = {
        "train_data": {
            "folder": repo_relative(args.train_data),
            "n": len(train_y),
            "hash": train_hash,
        },
        "test_data": {
            "folder": repo_relative(args.test_data),
            "n": len(test_y),
            "hash": test_hash,
        },
        "epochs": args.epochs,
        "seed": args.seed,
        "variants": {},
    }
    for name in args.variants:
        transforms, size = VARIANTS[name]
        recipe = copy.deepcopy(base)
        recipe.update(scan_transforms=transforms, input_size=size, epochs=args.epochs, seed=args.seed)
        started = time.perf_counter()
        train = ex.labelled(ex.preprocess(train_imgs, transforms), train_y, train_src, labels)
        test = ex.labelled(ex.preprocess(test_imgs, transforms), test_y, test_src, labels)
        prep = time.perf_counter() - started
        res = ex.train_and_test(recipe, train, {"external": test})
        res.pop("_model")
        res.update(preprocess_seconds=round(prep, 1), scan_transforms=transforms, input_size=size)
        results["variants"][name] = res
        print(ex.format_row(name, res, "external", labels), flush=True)
        write(results, args.out, labels)
    return results


def write(results: dict, out: Path, labels: list[str]) -> None:
    from scintipipe.training import experiment as ex

    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(results, indent=2) + "\n")
    lines = [
        "# uptake4 preprocessing ablation: train centre a, test centre b",
        "",
        f"Train: {results['train_data']['n']} simulated centre-a scans ({results['train_data']['folder']}, 20 % of them for validation), "
        f"{results['epochs']} epochs, ScintiNet, seed {results['seed']}. Test: {results['test_data']['n']} simulated centre-b scans ({results['test_data']['folder']}). "
        "Rerun: `python benchmarks/uptake4_ablation.py`.",
        "",
        "| variant | internal val. acc. % | external acc. % | " + " | ".join(f"{label} sens. %" for label in labels) + " |",
        "|---|---|---|" + "---|" * len(labels),
    ]
    lines += [ex.format_row(name, res, "external", labels) for name, res in results["variants"].items()]
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
