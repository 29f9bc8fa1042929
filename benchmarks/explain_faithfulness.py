"""Do the explanations point at the evidence? (issue 12, item 6)

Simulates scans in memory (no files), preprocesses them with the bundle's own scan
transforms, brings the simulator's truth masks onto the network input grid
(:func:`scintipipe.explain.faithfulness.preprocess_masks`) and, for every explanation
method (and, for Grad-CAM and Grad-CAM++, every candidate layer), measures on the maps of
the TRUE class:

- pointing game on focal cases (peak inside the hot nodule dilated by 2 px), with a
  Wilson 95 % interval; pointing game on the gland for the other classes;
- share of the map's positive mass inside the thyroid;
- fraction of maps whose peak lies on the border (within 2 px of the edge), and the mean
  fraction of pixels above half the maximum (what the reports showed: 0.80-0.89);
- deletion and insertion AUC (16 steps, blurred baseline, sigma 8 px), lower deletion and
  higher insertion are better; a random map is the reference;
- milliseconds per case for the map alone (one thread unless --threads).

``gradcam-monai@<layer>`` is Grad-CAM with MONAI's default post-processing and upsampling,
i.e. what scintipipe shipped before the fix in ``scintipipe.explain.methods`` (its
normaliser inverts the map); ``random`` (uniform noise) is the chance reference.

It ends with a recommended default method and ``explain_layer``
(:func:`scintipipe.explain.faithfulness.recommend`: faithful, i.e. deletion and insertion
AUC at least 0.05 better than a random map's and at most 10 % of peaks on the border;
affordable, at most --max-ms per case; then focal pointing game >= 90 %). Rerun after retraining:

    python benchmarks/explain_faithfulness.py --bundle uptake4 --n-per-class 40
    python benchmarks/explain_faithfulness.py --bundle disease --center a
    python benchmarks/explain_faithfulness.py --bundle my-uptake4/ --methods gradcam --layers features,features.4

Writes ``<out>.json`` and ``<out>.md`` (default ``benchmarks/results/explain_faithfulness``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

#: the class whose evidence is a nodule, and the simulator mask that holds it, per label
FOCAL_MASKS = {"focal_increased": "nodules_hot", "thyroid_tumour": "nodules"}
MASK_NAMES = ("thyroid", "nodules", "nodules_hot")


#: the methods compared unless --methods names others
DEFAULT_METHODS = "gradcam,gradcampp,occlusion"


def candidate_layers(network: torch.nn.Module, declared: str | None, input_shape: tuple[int, ...], per_resolution: int = 3) -> list[str]:
    """The declared layer plus the last block of each of the next-finer resolutions.

    When the declared layer is a ``Sequential`` (ScintiNet's ``features``), its children are
    run once and the last child at each output size is a candidate, finest last:
    ``features`` (1/16), ``features.4`` (1/8), ``features.2`` (1/4) for ScintiNet.
    """
    if not declared:
        return []
    module = dict(network.named_modules()).get(declared)
    if not isinstance(module, torch.nn.Sequential):
        return [declared]
    sizes: dict[str, tuple[int, ...]] = {}
    hooks = [
        child.register_forward_hook(lambda m, i, o, name=f"{declared}.{n}": sizes.__setitem__(name, tuple(o.shape[-2:])))
        for n, child in module.named_children()
    ]
    try:
        with torch.no_grad():
            network(torch.zeros(1, *input_shape, device=next(network.parameters()).device))
    finally:
        for h in hooks:
            h.remove()
    last_of_size: dict[tuple[int, ...], str] = {}
    for name, size in sizes.items():
        last_of_size[size] = name
    ordered = sorted(last_of_size.items(), key=lambda item: item[0][0] * item[0][1])
    layers = [declared]
    for _size, name in ordered[1:per_resolution]:
        layers.append(name)
    return layers


def simulate_inputs(
    bundle: Any, simulator: Any, center: Any, labels: list[str], n_per_class: dict[str, int], seed: int
) -> tuple[torch.Tensor, list[dict[str, np.ndarray]], list[str], list[dict[str, Any]]]:
    """Simulated cases through the bundle's preprocessing, with their masks on the input grid."""
    from scintipipe.explain.faithfulness import preprocess_masks
    from scintipipe.scan import make_scan

    inputs, masks, case_labels, info = [], [], [], []
    for li, label in enumerate(labels):
        for k in range(n_per_class[label]):
            rng = np.random.default_rng([seed, li, k])
            case = simulator(rng, center, label)
            scan = make_scan(case.counts, f"sim-{label}-{k}", spacing=(case.pixel_mm, case.pixel_mm), is_counts=True, modality="NM")
            x = bundle.scan_transform({"image": scan["image"]})["image"]
            wanted = {name: case.masks[name] for name in MASK_NAMES if name in case.masks}
            on_input = preprocess_masks(wanted, scan["image"], x.meta, bundle.scan_transform)
            inputs.append(torch.as_tensor(x.as_tensor() if hasattr(x, "as_tensor") else x).float())
            masks.append(on_input)
            case_labels.append(label)
            info.append(
                {
                    "label": label,
                    "crop_centre": [int(v) for v in x.meta.get("crop_centre", (0, 0))],
                    "nodule_px": int(on_input.get("nodules", np.zeros(1)).sum()),
                }
            )
    return torch.stack(inputs), masks, case_labels, info


def saliency(
    method: str,
    layer: str | None,
    network: torch.nn.Module,
    inputs: torch.Tensor,
    targets: list[int],
    batch: int = 32,
    seed: int = 0,
    occlusion_fraction: float | None = None,
    occlusion_overlap: float | None = None,
) -> tuple[np.ndarray, float]:
    """Maps for every input and the milliseconds per case.

    ``occlusion_fraction`` and ``occlusion_overlap``: the occluding patch's side and the
    overlap of neighbouring patches (``None``: the library's defaults).
    """
    from scintipipe.explain.methods import class_activation_maps, occlusion_maps

    if method == "random":
        rng = np.random.default_rng(seed)
        return rng.random((inputs.shape[0], *inputs.shape[2:])).astype(np.float32), 0.0
    legacy = None
    if method == "gradcam-monai":  # MONAI's own defaults, as scintipipe used them before the fix
        from monai.visualize import GradCAM

        legacy = GradCAM(nn_module=network, target_layers=layer)
    out = []
    start = time.perf_counter()
    for i in range(0, inputs.shape[0], batch):
        x, t = inputs[i : i + batch], targets[i : i + batch]
        if legacy is not None:
            with torch.enable_grad():
                out.append(
                    np.stack([legacy(x[j : j + 1].detach().requires_grad_(True), class_idx=t[j])[0, 0].detach().numpy() for j in range(len(t))])
                )
        elif method == "occlusion":
            options = {name: value for name, value in (("mask_fraction", occlusion_fraction), ("overlap", occlusion_overlap)) if value is not None}
            out.append(occlusion_maps(network, x, t, **options))
        else:
            out.append(class_activation_maps(network, layer, x, t, method))
    ms = 1000.0 * (time.perf_counter() - start) / inputs.shape[0]
    return np.concatenate(out), ms


def evaluate(args: argparse.Namespace) -> dict[str, Any]:
    from scintipipe.bundle import resolve_bundle
    from scintipipe.explain import faithfulness as fa
    from scintipipe.plugins import make_plugin_manager, simulators, tasks_and_bundles
    from scintipipe.simulate import get_center

    torch.set_num_threads(args.threads)
    pm = make_plugin_manager()
    bundle = resolve_bundle(args.bundle, tasks_and_bundles(pm).bundles)
    sims = simulators(pm).simulators
    if bundle.task not in sims:
        raise SystemExit(f"no simulator registered for task {bundle.task!r} (have {', '.join(sims)})")
    simulator = sims[bundle.task]
    labels = bundle.labels
    focal = [label for label in labels if label in FOCAL_MASKS]
    n_per_class = {label: max(args.n_per_class, args.n_focal) if label in focal else args.n_per_class for label in labels}
    network = bundle.network("cpu")

    start = time.perf_counter()
    inputs, masks, case_labels, info = simulate_inputs(bundle, simulator, get_center(args.center), labels, n_per_class, args.seed)
    sim_seconds = time.perf_counter() - start
    targets = [labels.index(label) for label in case_labels]
    with torch.no_grad():
        probs = torch.cat([torch.softmax(network(inputs[i : i + 64]), 1) for i in range(0, len(inputs), 64)]).numpy()
    correct = probs.argmax(1) == np.asarray(targets)

    target_masks, skipped = [], 0
    for label, m in zip(case_labels, masks, strict=True):
        target = m.get(FOCAL_MASKS[label]) if label in FOCAL_MASKS else m["thyroid"]
        if target is None or not target.any():
            skipped += 1
            target = None
        target_masks.append(target)

    layers = args.layers.split(",") if args.layers else candidate_layers(network, bundle.explain_layer, tuple(inputs.shape[1:]))
    variants: list[tuple[str, str | None]] = []
    for method in args.methods.split(","):
        if method in ("gradcam", "gradcampp"):
            variants += [(method, layer) for layer in layers]
        else:
            variants.append((method, None))
    if args.legacy and bundle.explain_layer:
        variants.insert(0, ("gradcam-monai", bundle.explain_layer))
    variants.append(("random", None))

    results: dict[str, Any] = {}
    for method, layer in variants:
        key = method if layer is None else f"{method}@{layer}"
        maps, ms = saliency(
            method,
            layer,
            network,
            inputs,
            targets,
            seed=args.seed,
            occlusion_fraction=args.occlusion_fraction,
            occlusion_overlap=args.occlusion_overlap,
        )
        curves = fa.deletion_insertion(network, inputs, targets, maps, steps=args.steps, baseline=args.baseline, seed=args.seed)
        rows = []
        for i, label in enumerate(case_labels):
            if target_masks[i] is None:
                continue
            row = {"label": label, **fa.case_measures(maps[i], target_masks[i], masks[i]["thyroid"], args.tolerance_px, args.border_px)}
            row.update(
                deletion_auc=float(curves["deletion_auc"][i]), insertion_auc=float(curves["insertion_auc"][i]), ms=ms, correct=bool(correct[i])
            )
            rows.append(row)
        summary = fa.summarise(rows, focal)
        summary["pointing_focal_correct_only"] = fa.summarise([r for r in rows if r["correct"]], focal)["pointing_focal"]
        summary["mean_deletion_curve"] = np.round(curves["deletion"].mean(0), 4).tolist()
        summary["mean_insertion_curve"] = np.round(curves["insertion"].mean(0), 4).tolist()
        results[key] = summary
        pf = summary["pointing_focal"]
        print(
            f"{key:24s} focal {pf['rate']:.0%} [{pf['ci95'][0]:.0%}, {pf['ci95'][1]:.0%}]  gland {summary['pointing_gland']['rate']:.0%}  "
            f"share {summary['thyroid_share']:.2f}  border {summary['border_peak_fraction']:.0%}  >half {summary['fraction_above_half']:.2f}  "
            f"del {summary['deletion_auc']:.3f}  ins {summary['insertion_auc']:.3f}  {ms:.1f} ms",
            flush=True,
        )
    recommendation = fa.recommend(results, target=args.target, max_ms=args.max_ms, max_border=args.max_border)
    thyroid_px = [float(m["thyroid"].mean()) for m in masks]
    nodule_px = [float(m[FOCAL_MASKS[lab]].mean()) for m, lab in zip(masks, case_labels, strict=True) if lab in FOCAL_MASKS]
    return {
        "bundle": {
            "name": bundle.name,
            "path": str(bundle.root),
            "version": bundle.version,
            "task": bundle.task,
            "declared_explain_layer": bundle.explain_layer,
        },
        "data": {
            "description": f"simulated in memory with the {bundle.task} simulator, centre {args.center}, seed {args.seed}; "
            f"{', '.join(f'{n_per_class[lab]} {lab}' for lab in labels)}; preprocessed with the bundle's scan transforms; "
            "masks (simulator truth) replayed through ResampleToSpacing and CropNeckRegion at the image's crop centre, threshold 0.5",
            "n": len(case_labels),
            "n_per_class": n_per_class,
            "cases_without_target_in_crop": skipped,
            "classifier_accuracy": float(correct.mean()),
            "mean_thyroid_area_fraction": float(np.mean(thyroid_px)),
            "mean_nodule_area_fraction": float(np.mean(nodule_px)) if nodule_px else None,
            "simulate_and_preprocess_seconds": round(sim_seconds, 1),
        },
        "settings": {k: v for k, v in vars(args).items() if k != "out"},
        "layers": layers,
        "results": results,
        "recommendation": recommendation,
        "machine": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "threads": args.threads,
            "cpu": platform.processor() or platform.machine(),
        },
    }


def markdown(report: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    d, s = report["data"], report["settings"]
    lines = [
        f"# Explanation faithfulness: {report['bundle']['name']} {report['bundle']['version']}",
        "",
        f"Data: {d['description']}. Classifier accuracy on these cases {d['classifier_accuracy']:.1%}; "
        f"the thyroid covers {d['mean_thyroid_area_fraction']:.1%} of the input on average"
        + (f", the hot nodule {d['mean_nodule_area_fraction']:.1%}" if d.get("mean_nodule_area_fraction") else "")
        + f" (a random peak hits it that often). Maps of the true class; {d['cases_without_target_in_crop']} cases without the target inside the crop left out.",
        "",
        f"Pointing game: peak (ties: the maximum nearest the plateau's centroid) inside the target dilated by {s['tolerance_px']} px; "
        f"border: peak within {s['border_px']} px of the edge; deletion/insertion: {s['steps']} steps, {s['baseline']} baseline, AUC of the true-class probability.",
        "",
        "| method@layer | pointing, focal (95 % CI) | pointing, gland | in-thyroid share | peak on border | > half max | deletion AUC ↓ | insertion AUC ↑ | ms/case |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in report["results"].items():
        pf, pg = r["pointing_focal"], r["pointing_gland"]
        focal = f"{pf['rate']:.0%} ({pf['hits']}/{pf['n']}; {pf['ci95'][0]:.0%}-{pf['ci95'][1]:.0%})" if pf["n"] else "n/a"
        lines.append(
            f"| {key} | {focal} | {pg['rate']:.0%} ({pg['hits']}/{pg['n']}) | {r['thyroid_share']:.2f} | {r['border_peak_fraction']:.0%} | {r['fraction_above_half']:.2f} | "
            f"{r['deletion_auc']:.3f} | {r['insertion_auc']:.3f} | {r['ms_per_case']:.1f} |"
        )
    lines += [
        "",
        "Pointing game per class:",
        "",
        "| method@layer | " + " | ".join(next(iter(report["results"].values()))["per_class_pointing"]) + " |",
        "|---|" + "---|" * len(next(iter(report["results"].values()))["per_class_pointing"]),
    ]
    for key, r in report["results"].items():
        lines.append(f"| {key} | " + " | ".join(f"{v['rate']:.0%}" for v in r["per_class_pointing"].values()) + " |")
    rec = report["recommendation"]
    lines += [
        "",
        f"**Recommended:** method `{rec['method']}`"
        + (f", `explain_layer` `{rec['layer']}`" if rec["layer"] else "")
        + f" ({rec['reason']}; target met: {'yes' if rec['meets_target'] else 'no'}).",
        "",
        f"Rerun: `python benchmarks/explain_faithfulness.py --bundle {s['bundle']} --n-per-class {s['n_per_class']} --center {s['center']}"
        + (f" --seed {s['seed']}" if s.get("seed", 12) != 12 else "")
        + (f" --methods {s['methods']}" if s.get("methods", DEFAULT_METHODS) != DEFAULT_METHODS else "")
        + (f" --occlusion-fraction {s['occlusion_fraction']}" if s.get("occlusion_fraction") is not None else "")
        + (f" --occlusion-overlap {s['occlusion_overlap']}" if s.get("occlusion_overlap") is not None else "")
        + (" --no-legacy" if s.get("legacy") is False else "")
        + "`. "
        f"Machine: Python {report['machine']['python']}, torch {report['machine']['torch']}, {report['machine']['threads']} thread(s).",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bundle", default="uptake4", help="registered bundle name or bundle folder")
    parser.add_argument("--n-per-class", type=int, default=40)
    parser.add_argument("--n-focal", type=int, default=40, help="at least this many cases of a focal class")
    parser.add_argument("--methods", default=DEFAULT_METHODS)
    parser.add_argument("--layers", default="", help="comma-separated Grad-CAM layers (default: the declared one and two finer blocks)")
    parser.add_argument("--center", default="a")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--baseline", default="blur", choices=["blur", "zero"])
    parser.add_argument("--tolerance-px", type=int, default=2)
    parser.add_argument("--border-px", type=int, default=2)
    parser.add_argument("--target", type=float, default=0.9, help="focal pointing game a default must reach")
    parser.add_argument("--max-ms", type=float, default=250.0, help="most milliseconds per case a default may cost")
    parser.add_argument("--max-border", type=float, default=0.1, help="most maps a default may have peaking on the border")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument(
        "--occlusion-fraction", type=float, default=None, help="occluding patch side as a fraction of the input side (default: the library's, 0.15)"
    )
    parser.add_argument(
        "--occlusion-overlap", type=float, default=None, help="overlap of neighbouring occluding patches, in [0, 1) (default: the library's, 0.6)"
    )
    parser.add_argument(
        "--no-legacy",
        dest="legacy",
        action="store_false",
        help="leave out Grad-CAM with MONAI's default post-processing and upsampling (the behaviour before the fix)",
    )
    parser.add_argument("--out", default="benchmarks/results/explain_faithfulness", help="output path without suffix")
    args = parser.parse_args(argv)
    report = evaluate(args)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    out.with_suffix(".md").write_text(markdown(report))
    rec = report["recommendation"]
    print(f"recommended: method={rec['method']} explain_layer={rec['layer']} ({rec['reason']}; target met: {rec['meets_target']})")
    print(f"wrote {out.with_suffix('.md')} and {out.with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
