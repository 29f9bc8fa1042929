"""Train the learned neck segmenter and write the shipped ``bundles/thyroid-seg``.

Simulates uptake4 cases in memory (all four patterns, centres a and b), trains a small
MONAI ``UNet`` (Dice + cross-entropy) on the simulator's ground-truth masks and writes a
complete bundle with :func:`scintipipe.bundle_writer.write_bundle`. About 5 minutes on
one CPU thread::

    python benchmarks/train_segmentation.py

The model card gets the Dice per class on fresh simulated cases (a different seed) at
centres a, b and siemens (siemens was not trained on); ``benchmarks/segmentation_dice.py
--learned`` compares it with the classical segmenter per structure.
"""

from __future__ import annotations

import argparse
import json
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch
from monai.losses import DiceCELoss

from scintipipe.bundle_writer import NOT_FOR_CLINICAL_USE, bundle_metadata, write_bundle
from scintipipe.segment.learned import CLASSES, NETWORK_DEF, SCAN_TRANSFORMS, SIZE_PX, training_pair
from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
from scintipipe.simulate.writer import case_rng

ROOT = Path(__file__).resolve().parents[1]


def simulate(n_per: int, centers: list[str], seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """``n_per`` cases per pattern and centre as (inputs, targets, group names)."""
    xs, ys, groups = [], [], []
    for center_name in centers:
        for li, label in enumerate(UPTAKE4_SIMULATOR.labels):
            for i in range(n_per):
                case = UPTAKE4_SIMULATOR(case_rng(seed, i + 1000 * li + 100000 * centers.index(center_name)), CENTERS[center_name], label)
                x, y = training_pair(case.counts, case.masks, (case.pixel_mm, case.pixel_mm))
                xs.append(x)
                ys.append(y)
                groups.append(f"{center_name}/{label}")
    return np.stack(xs).astype(np.float32), np.stack(ys).astype(np.int64), groups


def dice_per_class(pred: np.ndarray, truth: np.ndarray) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for c, name in enumerate(CLASSES[1:], start=1):
        p, t = pred == c, truth == c
        total = p.sum() + t.sum()
        out[name] = None if total == 0 else float(2 * (p & t).sum() / total)
    # the whole gland (thyroid and nodules), as the classical segmenter reports it
    p, t = (pred == 1) | (pred == 2), (truth == 1) | (truth == 2)
    total = p.sum() + t.sum()
    out["gland"] = None if total == 0 else float(2 * (p & t).sum() / total)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="training cases per pattern and centre")
    parser.add_argument("--centers", nargs="+", default=["a", "b"])
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--test-n", type=int, default=8, help="test cases per pattern and centre (fresh seed)")
    parser.add_argument("--test-seed", type=int, default=2027)
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--minutes", type=float, default=6.0, help="stop training after this long")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ROOT / "bundles/thyroid-seg")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    rng = np.random.default_rng(0)

    t0 = time.time()
    x, y, _ = simulate(args.n, args.centers, args.seed)
    print(f"simulated {len(x)} training cases in {time.time() - t0:.0f} s", flush=True)

    net = __import__("monai.bundle", fromlist=["ConfigParser"]).ConfigParser({"net": NETWORK_DEF}).get_parsed_content("net")
    loss_fn = DiceCELoss(to_onehot_y=True, softmax=True)
    optimiser = torch.optim.AdamW(net.parameters(), lr=3e-3, weight_decay=1e-4)
    steps_per_epoch = int(np.ceil(len(x) / args.batch))
    scheduler = torch.optim.lr_scheduler.OneCycleLR(optimiser, max_lr=3e-3, total_steps=args.epochs * steps_per_epoch)
    t0 = time.time()
    epochs_done = 0
    for epoch in range(args.epochs):
        net.train()
        order = rng.permutation(len(x))
        losses = []
        for start in range(0, len(x), args.batch):
            idx = order[start : start + args.batch]
            xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])[:, None]
            flip = torch.from_numpy(rng.random(len(idx)) < 0.5)  # left/right mirror: class-symmetric
            xb[flip], yb[flip] = xb[flip].flip(-1), yb[flip].flip(-1)
            loss = loss_fn(net(xb), yb)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            scheduler.step()
            losses.append(float(loss.detach()))
        epochs_done = epoch + 1
        print(f"epoch {epochs_done:3d} loss {np.mean(losses):.4f} ({time.time() - t0:.0f} s)", flush=True)
        if time.time() - t0 > 60 * args.minutes:
            print("time budget reached", flush=True)
            break
    train_seconds = time.time() - t0

    net.eval()
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for center_name in ["a", "b", "siemens"]:
        tx, ty, _ = simulate(args.test_n, [center_name], args.test_seed)
        with torch.no_grad():
            pred = net(torch.from_numpy(tx)).argmax(1).numpy()
        for p, t in zip(pred, ty, strict=True):
            for name, value in dice_per_class(p, t).items():
                if value is not None:
                    scores[center_name][name].append(value)
                    scores["all"][name].append(value)
    table = {group: {name: float(np.mean(v)) for name, v in per.items()} for group, per in scores.items()}
    print(json.dumps(table, indent=2))

    names = ["gland", "thyroid", "nodule", "salivary"]
    rows = "\n".join(
        f"| {group} | " + " | ".join(f"{table[group][n]:.3f}" if n in table[group] else "-" for n in names) + " |"
        for group in ["all", "a", "b", "siemens"]
    )
    trained_on = f"simulated uptake4 scans, {args.n} per pattern at centres {', '.join(args.centers)} (seed {args.seed}), {len(x)} in all"
    card = f"""# thyroid-seg: learned neck segmentation (simulated data)

**{NOT_FOR_CLINICAL_USE}**

A MONAI `UNet` (2-D, channels 8-16-32-64, one residual unit, {sum(p.numel() for p in net.parameters()):,} parameters)
labels each pixel of the uptake4 input (2.2 mm grid, 96 x 96 neck crop, square-root count
normalisation) as {", ".join(CLASSES)}. Thyroid is both lobes and the isthmus; nodule is
hot or cold nodules (drawn over the thyroid); salivary is parotid and submandibular glands.

Used by `scintipipe run --segmenter learned` (plugin
`scintipipe.builtin.segment_learned`; see `docs/segmentation.md`). The labels are mapped
back to the scan grid and split into lobes, isthmus, hot/cold nodules and left/right
salivary glands as the classical segmenter does, so the same quantities are reported.

## Training

- Data: {trained_on}; ground truth is the simulator's masks, resampled to 2.2 mm by the
  area-weighted majority class.
- Loss: MONAI `DiceCELoss` (softmax, one-hot targets); AdamW, one-cycle learning rate
  3e-3, batch {args.batch}, left/right mirroring; {epochs_done} epochs, {train_seconds / 60:.1f} min on
  {args.threads} CPU thread(s).
- Command: `python benchmarks/train_segmentation.py --n {args.n} --epochs {args.epochs} --minutes {args.minutes:g}`

## Dice on fresh simulated cases (96 x 96 network grid)

Mean Dice over {args.test_n} cases per pattern and centre (seed {args.test_seed}); siemens was
not trained on. "gland" is thyroid and nodule together (what the lobes cover). Cases
without a nodule do not count towards the nodule column.

| centre | gland | thyroid | nodule | salivary |
|---|---|---|---|---|
{rows}

On the scan's own grid, against the classical segmenter:
`python benchmarks/segmentation_dice.py --learned` (figures in `docs/segmentation.md`).

## Limits

Trained and tested on the simulator only: real scans differ (camera, collimator, patient
anatomy, markers). Not validated on patients; not for clinical use.
"""
    metadata = bundle_metadata(
        name="thyroid-seg",
        task="segmentation",
        labels=list(CLASSES),
        input_shape=list(SIZE_PX),
        description="Learned segmentation of planar 99mTc neck scintigrams into background, thyroid, nodule and salivary glands; a small MONAI UNet trained on the scintipipe simulator's ground-truth masks.",
        network="monai.networks.nets.UNet",
        trained_on=trained_on,
        eval_metrics={"dice_mean": table},
    )
    metadata["task"] = "segmentation: label planar neck scintigram pixels as " + ", ".join(CLASSES)
    metadata["network_data_format"]["outputs"]["pred"].update(
        {"type": "segmentation", "format": "labels", "spatial_shape": list(SIZE_PX), "value_range": [0, len(CLASSES) - 1]}
    )
    root = write_bundle(
        args.out, state_dict=net.state_dict(), metadata=metadata, network_def=NETWORK_DEF, scan_transforms=SCAN_TRANSFORMS, model_card=card
    )
    # the stand-alone evaluator: label maps, not class probabilities
    config_path = root / "configs/inference.json"
    config = json.loads(config_path.read_text())
    config["postprocessing"]["transforms"] = [
        {"_target_": "Activationsd", "keys": "pred", "softmax": True},
        {"_target_": "AsDiscreted", "keys": "pred", "argmax": True},
    ]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    print(f"wrote {root} ({(root / 'models/model.pt').stat().st_size / 1e6:.2f} MB)")


if __name__ == "__main__":
    main()
