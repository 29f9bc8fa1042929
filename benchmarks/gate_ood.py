"""Compare learned out-of-distribution scores for the input gate, per shipped bundle.

Run from the repository root (about 15 minutes on 2 CPU threads the first time; features
are cached in ``data/gate-cache``)::

    python benchmarks/gate_ood.py                          # all three bundles
    python benchmarks/gate_ood.py --bundles uptake4 --methods mahalanobis energy

For each bundle and method (:data:`scintipipe.gate.ood.METHODS`) the score is fitted on
the bundle's simulated training folders; the held-out simulated folders are split into a
calibration half and a test half (per folder, by file, seed 0) exactly as
``scintipipe gate fit`` does; the threshold is the 99.5th percentile of the calibration
half's scores. Reported, with n and Wilson 95 % intervals:

* acceptance of the held-out test half and of the external simulated centre;
* AUROC (held-out test half vs out-of-distribution views) and the refusal rate at the
  threshold, for

  (a) **generated** inputs: flood fields, smooth noise and random shapes written into a
      copy of a randomly chosen held-out DICOM (so the header, matrix and pixel size are
      plausible NM ones), 8-bit PNG floods,
      noise, shapes and rendered text, and simulated 99mTc syringe images
      (``scintipipe simulate --task uptake4 --n 20 --center siemens --syringes``);
  (b) **real non-thyroid** files, offline: pydicom's own test files (CT, MR, US, an NM
      whole-body Secondary Capture, RGB captures), matplotlib's sample images and the
      real syringe study in ``../shared/reference-scans``;

* separately and **for validation only**, which of the 9 real thyroid images in
  ``../shared/reference-scans`` (8 figure crops and the Siemens DICOM) pass. They never
  fit, calibrate, threshold or choose anything.

The method to ship is chosen per bundle on (a) only: among the methods that accept at
least 99 % of the held-out test half, the highest mean refusal rate over the generated
categories (each category weighted equally), ties broken by the mean AUROC on (a). Only the learned layer is measured: views go through the loaders and the bundle's
``scan_transforms``, not through the ``metadata`` and ``content`` gate layers (which catch
many of these inputs before the learned score is reached).

Outputs: ``benchmarks/results/gate_ood.json`` and ``benchmarks/results/gate_ood.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

import numpy as np  # noqa: E402  (after the sys.path set-up)
import torch  # noqa: E402  (after the sys.path set-up)

RESULTS = REPO / "benchmarks" / "results"
REFERENCE = REPO.parent / "shared" / "reference-scans"
QUANTILE = 0.995
SEED = 0

#: per bundle: training, held-out and external folders (relative to the repository)
DATA: dict[str, dict[str, list[str]]] = {
    "uptake4": {
        "train": ["data/u4-rand-train3000", "data/u4-rand-exports1200"],
        "held_out": ["data/u4-rand-test400", "data/u4-rand-exports-test200"],
        "external": ["data/b-ext302"],
    },
    "disease": {
        "train": ["data/dis-rand-train", "data/dis-rand-exports800"],
        "held_out": ["data/dis-rand-test400", "data/dis-rand-exports-test200"],
        "external": ["data/dis-b-ext200"],
    },
    "remnant": {
        "train": ["data/rem-gate-train500"],
        "held_out": ["data/rem-gate-test150"],
        "external": [],
    },
}

#: how the data folders are made (they are git-ignored)
MAKE_DATA = {
    "data/rem-gate-train500": "scintipipe remnant-simulate --n 500 --seed 41 --out data/rem-gate-train500",
    "data/rem-gate-test150": "scintipipe remnant-simulate --n 150 --seed 42 --out data/rem-gate-test150",
    "data/gate-syringes": "scintipipe simulate --task uptake4 --n 20 --center siemens --syringes --seed 5 --out data/gate-syringes --no-progress",
}

#: real non-thyroid files shipped inside pydicom (nothing is downloaded)
PYDICOM_FILES = [
    "CT_small.dcm",
    "MR_small.dcm",
    "JPEG2000.dcm",
    "SC_rgb_jpeg.dcm",
    "examples_overlay.dcm",
    "examples_palette.dcm",
    "examples_rgb_color.dcm",
    "examples_ybr_color.dcm",
    "image_dfl.dcm",
    "GDCMJ2K_TextGBR.dcm",
    "SC_jpeg_no_color_transform.dcm",
    "693_J2KI.dcm",
]
MATPLOTLIB_FILES = ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"]
REAL_THYROID = [*(f"figure-crops/{c}_{s}.png" for c in ("DG", "NG", "NL", "TI") for s in ("O", "EX")), "siemens-thyroid/thyroid_99mTc_ANT_deid.dcm"]
#: shown with the real thyroid images, not counted in the 9 (a display rendering of the DICOM)
REAL_THYROID_EXTRA = ["siemens-thyroid/thyroid_99mTc_ANT_deid.png"]
REAL_SYRINGE = "siemens-thyroid/syringe_full_99mTc_2frames_deid.dcm"

#: bundles for which the real thyroid images are not in distribution at all
NOT_IN_DISTRIBUTION = {
    "remnant": "These are 99mTc views of intact thyroids; the remnant task is 131I neck scans after thyroidectomy, so they are not its inputs (the metadata layer refuses Tc-99m for remnant) and a refusal here is not a defect"
}

GENERATED = ("flood_dcm", "noise_dcm", "shapes_dcm", "flood_png", "noise_png", "shapes_png", "text_png", "syringe_dcm")
N_PER_CATEGORY = 20


# ---- generated inputs ----------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(rng.standard_normal(shape), sigma=rng.uniform(1, 12))
    field = (field - field.min()) / (np.ptp(field) + 1e-9)
    return field ** rng.uniform(0.5, 3)


def _shapes(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw

    h, w = shape
    img = Image.new("F", (w, h), float(rng.uniform(0, 0.05)))
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(1, 7))):
        x0, x1 = sorted(rng.uniform(0, w, 2))
        y0, y1 = sorted(rng.uniform(0, h, 2))
        value = float(rng.uniform(0.2, 1.0))
        kind = rng.integers(0, 3)
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=value)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=value)
        else:
            draw.line([x0, y0, x1, y1], fill=value, width=int(rng.integers(1, 8)))
    return np.asarray(img, dtype=np.float64)


WORDS = "thyroid scan report patient name date counts anterior view window level total uptake result normal findings impression signature page lorem ipsum dolor sit amet".split()


def _text(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    from PIL import Image, ImageDraw, ImageFont

    h, w = shape
    background, ink = (255, 0) if rng.random() < 0.7 else (0, 255)
    img = Image.new("L", (w, h), background)
    draw = ImageDraw.Draw(img)
    size = int(rng.integers(10, 28))
    font = ImageFont.load_default(size=size)
    y = int(rng.integers(2, 12))
    while y < h - size:
        words = " ".join(rng.choice(WORDS, int(rng.integers(2, 8))))
        draw.text((int(rng.integers(2, 20)), y), words, fill=ink, font=font)
        y += int(size * rng.uniform(1.2, 2.0))
    return np.asarray(img, dtype=np.uint8)


def generated_dicom(template: Path, out: Path, kind: str, rng: np.random.Generator) -> Path:
    """A copy of ``template`` (an NM DICOM) whose frames hold a flood, noise or shapes image."""
    import pydicom
    from pydicom.uid import generate_uid

    ds = pydicom.dcmread(template)
    frames = int(getattr(ds, "NumberOfFrames", 1) or 1)
    shape = (int(ds.Rows), int(ds.Columns))
    images = []
    for _ in range(frames):
        if kind == "flood":
            lam = np.full(shape, rng.uniform(2, 200))
        elif kind == "noise":
            lam = _smooth_noise(rng, shape) * rng.uniform(20, 300)
        else:
            lam = 1.0 + _shapes(rng, shape) * rng.uniform(20, 300)
        images.append(np.clip(rng.poisson(lam), 0, 65535).astype(np.uint16))
    pixels = np.stack(images) if frames > 1 else images[0]
    ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.save_as(out, enforce_file_format=True)
    return out


def generated_png(out: Path, kind: str, rng: np.random.Generator) -> Path:
    """An 8-bit PNG: flat field, noise, random shapes or rendered text."""
    from PIL import Image

    side = int(rng.choice([128, 220, 256, 400]))
    shape = (side, side)
    if kind == "flood":
        img = np.clip(rng.normal(rng.uniform(20, 235), rng.uniform(0, 6), shape), 0, 255)
    elif kind == "noise":
        img = rng.uniform(0, 255, shape) if rng.random() < 0.5 else _smooth_noise(rng, shape) * 255
    elif kind == "shapes":
        img = _shapes(rng, shape) * 255
        if rng.random() < 0.5:
            img = 255 - img
    else:
        img = _text(rng, shape)
    Image.fromarray(np.asarray(img).astype(np.uint8)).save(out)
    return out


def make_generated(folder: Path, templates: list[Path], seed: int) -> dict[str, list[Path]]:
    """Write :data:`N_PER_CATEGORY` files per generated category under ``folder``.

    Each generated DICOM copies a randomly chosen held-out DICOM of ``templates``, so
    matrices, pixel sizes and fields of view vary as in the data (a flood that fills a
    large field of view looks unlike one framed by the preprocessing's zero padding).
    """
    rng = np.random.default_rng(seed)
    files: dict[str, list[Path]] = {}
    for category in GENERATED:
        if category == "syringe_dcm":
            continue
        kind, fmt = category.split("_")
        sub = folder / category
        sub.mkdir(parents=True, exist_ok=True)
        files[category] = [
            generated_dicom(templates[int(rng.integers(len(templates)))], sub / f"{i:03d}.dcm", kind, rng)
            if fmt == "dcm"
            else generated_png(sub / f"{i:03d}.png", kind, rng)
            for i in range(N_PER_CATEGORY)
        ]
    syringes = sorted((REPO / "data/gate-syringes/syringes").glob("*.dcm"))
    if not syringes:
        raise SystemExit(f"no simulated syringe images: run {MAKE_DATA['data/gate-syringes']}")
    files["syringe_dcm"] = syringes
    return files


def real_non_thyroid() -> list[tuple[str, Path]]:
    """``(name, path)`` of real non-thyroid files available offline."""
    import matplotlib.cbook
    from pydicom.data import get_testdata_file

    out = []
    for name in PYDICOM_FILES:
        path = get_testdata_file(name, download=False)
        if path:
            out.append((f"pydicom/{name}", Path(path)))
    for name in MATPLOTLIB_FILES:
        path = matplotlib.cbook.get_sample_data(name, asfileobj=False)
        out.append((f"matplotlib/{name}", Path(path)))
    if (REFERENCE / REAL_SYRINGE).is_file():
        out.append((f"reference-scans/{REAL_SYRINGE}", REFERENCE / REAL_SYRINGE))
    return out


# ---- measuring ---------------------------------------------------------------------


def auroc(in_scores: np.ndarray, out_scores: np.ndarray) -> float | None:
    """AUROC of telling out-of-distribution (positive, higher score) from in-distribution views."""
    from sklearn.metrics import roc_auc_score

    if len(in_scores) == 0 or len(out_scores) == 0:
        return None
    y = np.r_[np.zeros(len(in_scores)), np.ones(len(out_scores))]
    s = np.r_[in_scores, out_scores]
    return float(roc_auc_score(y, np.nan_to_num(s, nan=np.inf, posinf=1e300)))


def refusal(scores: np.ndarray, threshold: float) -> dict[str, Any]:
    from scintipipe.evaluation.intervals import wilson_interval

    n = int(len(scores))
    k = int((np.asarray(scores) > threshold).sum())
    ci = wilson_interval(k, n) if n else None
    return {"refused": k, "n": n, "rate": k / n if n else None, "ci95": [round(ci[0], 4), round(ci[1], 4)] if ci else None}


def time_scoring(bundle: Any, scorer: Any, inputs: torch.Tensor, repeats: int = 50) -> dict[str, float]:
    """Median seconds per batch of the plain forward pass and of ``score_batch``, interleaved."""
    network = bundle.network("cpu")
    with torch.inference_mode():
        network(inputs)
    scorer.score_batch(network, inputs)
    plain, scored = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        with torch.inference_mode():
            network(inputs)
        plain.append(time.perf_counter() - start)
        start = time.perf_counter()
        scorer.score_batch(network, inputs)
        scored.append(time.perf_counter() - start)
    forward_s, score_s = float(np.median(plain)), float(np.median(scored))
    return {"batch": int(inputs.shape[0]), "forward_s": forward_s, "score_batch_s": score_s, "ratio": score_s / forward_s}


def bundle_benchmark(pm: Any, name: str, methods: list[str], cache: Path, work: Path, log: Any) -> dict[str, Any]:
    from scintipipe.bundle import resolve_bundle
    from scintipipe.gate.fit import ViewTable, features_of, folder_views, load_views, split_halves, threshold_at
    from scintipipe.gate.ood import block_layers, make_scorer
    from scintipipe.pipeline import Pipeline, RunOptions
    from scintipipe.plugins import tasks_and_bundles

    bundle = resolve_bundle(name, tasks_and_bundles(pm).bundles)
    network = bundle.network("cpu")
    pipeline = Pipeline(pm, bundle, RunOptions(device="cpu", segment=False, explain=False, report=False, accept_ood=True))
    plan = DATA[name]
    for folder in [*plan["train"], *plan["held_out"], *plan["external"]]:
        if not (REPO / folder).is_dir():
            raise SystemExit(f"{folder} is missing: {MAKE_DATA.get(folder, 'see the model card for the command that makes it')}")
    log(f"[{name}] training, held-out and external folders")
    views = {f: folder_views(pipeline, Path(f), cache_dir=cache) for f in [*plan["train"], *plan["held_out"], *plan["external"]]}
    layers = block_layers(network, views[plan["train"][0]].inputs[:2])

    def feats(v):
        return features_of(network, v, layers)

    train = feats(ViewTable.concat([views[f] for f in plan["train"]]))
    held = feats(ViewTable.concat([views[f] for f in plan["held_out"]]))
    external = {f: feats(views[f]) for f in plan["external"]}
    cal_idx, test_idx = split_halves(held, SEED)
    cal, test = held.subset(cal_idx), held.subset(test_idx)

    log(f"[{name}] generated and real out-of-distribution inputs")
    templates = sorted((REPO / plan["held_out"][0]).glob("case-*.dcm"))[:100]
    generated_files = make_generated(work / name, templates, seed=13)
    generated = {c: feats(load_views(pipeline, [(p, None) for p in files], c, progress=False)) for c, files in generated_files.items()}
    real_ood = {n: feats(load_views(pipeline, [(p, None)], n, progress=False)) for n, p in real_non_thyroid()}
    thyroid = {
        n: feats(load_views(pipeline, [(REFERENCE / n, None)], n, progress=False))
        for n in REAL_THYROID + REAL_THYROID_EXTRA
        if (REFERENCE / n).is_file()
    }

    results: dict[str, Any] = {
        "bundle": name,
        "layers": layers,
        "data": {
            "train": [f"{f} ({len(views[f])} views)" for f in plan["train"]],
            "held_out": [f"{f} ({len(views[f])} views)" for f in plan["held_out"]],
            "external": [f"{f} ({len(views[f])} views)" for f in plan["external"]],
        },
        "n": {"train": len(train), "calibration": len(cal), "test": len(test)},
        "generated_n": {c: len(s) for c, s in generated.items()},
        "generated_not_preprocessed": {c: s.failures for c, s in generated.items() if s.failures},
        "real_non_thyroid_not_preprocessed": {n: s.failures[0][1] for n, s in real_ood.items() if s.failures},
        "real_thyroid_not_preprocessed": {n: s.failures[0][1] for n, s in thyroid.items() if s.failures},
        "methods": {},
    }
    scorers = {}
    for method in methods:
        scorer = scorers[method] = make_scorer(method).fit_features(train.feats, train.targets)

        def score(s, scorer=scorer):
            return scorer.score(s.feats) if len(s) else np.zeros(0)

        cal_s, test_s = score(cal), score(test)
        threshold = threshold_at(cal_s, QUANTILE)
        gen_scores = {c: score(s) for c, s in generated.items()}
        real_scores = {n: score(s) for n, s in real_ood.items()}
        all_gen = np.concatenate(list(gen_scores.values()))
        all_real = np.concatenate([s for s in real_scores.values() if len(s)]) if real_scores else np.zeros(0)
        thyroid_rows = {}
        for n, s in thyroid.items():
            sc = score(s)
            thyroid_rows[n] = {
                "score": float(sc[0]) if len(sc) else None,
                "passes": bool(len(sc) and sc[0] <= threshold),
                "counted": n in REAL_THYROID,
                "not_preprocessed": s.failures[0][1] if s.failures else None,
            }
            if method == "mahalanobis_layers" and len(s):
                thyroid_rows[n]["per_layer"] = [round(float(x), 3) for x in scorer.per_layer(s.feats)[0]]
        passing = sum(1 for n, r in thyroid_rows.items() if r["counted"] and r["passes"])
        counted = sum(1 for n in thyroid_rows if n in REAL_THYROID)
        per_category = {c: {**refusal(v, threshold), "auroc": auroc(test_s, v)} for c, v in gen_scores.items()}
        results["methods"][method] = {
            "threshold": threshold,
            "held_out_test": {**refusal(test_s, threshold), "accepted": int((test_s <= threshold).sum())},
            "held_out_test_per_folder": {f: refusal(test_s[np.asarray(test.folders) == f], threshold) for f in plan["held_out"]},
            "external": {f: refusal(score(s), threshold) for f, s in external.items()},
            "generated": {
                "auroc": auroc(test_s, all_gen),
                **refusal(all_gen, threshold),
                "mean_category_refusal": float(np.mean([v["rate"] for v in per_category.values() if v["n"]])),
                "mean_category_auroc": float(np.mean([v["auroc"] for v in per_category.values() if v["auroc"] is not None])),
            },
            "generated_per_category": per_category,
            "real_non_thyroid": {"auroc": auroc(test_s, all_real), **refusal(all_real, threshold)},
            "real_non_thyroid_per_file": {
                n: {"scores": [round(float(x), 4) for x in v], "refused": int((v > threshold).sum()), "views": int(len(v))}
                for n, v in real_scores.items()
            },
            "real_non_thyroid_files": {
                **refusal(np.array([1.0 if len(v) and (v > threshold).all() else 0.0 for v in real_scores.values()]), 0.5),
                "rule": "a file counts as refused when every one of its views is",
            },
            "real_thyroid": {"passing": passing, "n": counted, "per_image": thyroid_rows},
        }
        if method == "mahalanobis_layers":
            results["methods"][method]["held_out_test_per_layer_q995"] = [
                round(float(x), 3) for x in np.quantile(scorer.per_layer(test.feats), QUANTILE, axis=0)
            ]

    def eligible(m):
        return results["methods"][m]["held_out_test"]["accepted"] >= 0.99 * results["methods"][m]["held_out_test"]["n"]

    ranked = sorted(
        methods,
        key=lambda m: (
            eligible(m),
            results["methods"][m]["generated"]["mean_category_refusal"],
            results["methods"][m]["generated"]["mean_category_auroc"],
        ),
        reverse=True,
    )
    results["ranking"] = ranked
    results["chosen"] = ranked[0]
    # ablation: the chosen method fitted and thresholded on the DICOM folders only (no display exports)
    if len(plan["train"]) > 1:
        chosen = results["chosen"]
        dicom_train = feats(views[plan["train"][0]])
        dicom_held = held.subset([i for i, f in enumerate(held.folders) if f == plan["held_out"][0]])
        d_cal, d_test = dicom_held.subset(split_halves(dicom_held, SEED)[0]), dicom_held.subset(split_halves(dicom_held, SEED)[1])
        ablated = make_scorer(chosen).fit_features(dicom_train.feats, dicom_train.targets)
        d_threshold = threshold_at(ablated.score(d_cal.feats), QUANTILE)
        exports_test = test.subset([i for i, f in enumerate(test.folders) if f != plan["held_out"][0]])
        passing = {n: bool(len(s) and ablated.score(s.feats)[0] <= d_threshold) for n, s in thyroid.items() if n in REAL_THYROID}
        results["ablation_dicom_only"] = {
            "method": chosen,
            "fitted_on": f"{plan['train'][0]} ({len(dicom_train)} views)",
            "threshold_on": f"calibration half of {plan['held_out'][0]} ({len(d_cal)} views)",
            "held_out_dicom_test": refusal(ablated.score(d_test.feats), d_threshold),
            "held_out_exports_test": refusal(ablated.score(exports_test.feats), d_threshold),
            "real_thyroid_passing": sum(passing.values()),
            "real_thyroid_n": len(passing),
            "real_thyroid_refused": [n for n, ok in passing.items() if not ok],
        }
    # timing: a batch of 32 held-out views through the plain forward pass and score_batch
    batch = views[plan["held_out"][0]].inputs[:32].contiguous()
    results["timing"] = {m: time_scoring(bundle, scorers[m], batch) for m in methods}
    return results


# ---- report ------------------------------------------------------------------------


def pct(d: dict[str, Any] | None, key: str = "rate") -> str:
    if not d or not d.get("n"):
        return "n/a"
    lo, hi = d["ci95"]
    return f"{100 * d[key]:.1f} ({100 * lo:.0f}-{100 * hi:.0f}), n={d['n']}"


def accept_pct(d: dict[str, Any]) -> str:
    if not d or not d.get("n"):
        return "n/a"
    lo, hi = d["ci95"]
    return f"{100 * (1 - d['rate']):.1f} ({100 * (1 - hi):.1f}-{100 * (1 - lo):.1f}), n={d['n']}"


def markdown(all_results: dict[str, Any], meta: dict[str, Any]) -> str:
    lines = [
        "# Input gate: learned out-of-distribution scores compared",
        "",
        f"`python benchmarks/gate_ood.py` ({meta['date']}, commit {meta['commit']}). Threshold: {QUANTILE * 100:g}th percentile of the calibration half of the held-out simulated scans; acceptance and refusal in % with Wilson 95 % intervals; AUROC: held-out test half vs the out-of-distribution views. Only the learned layer is measured (no metadata/content layers). The method is chosen per bundle on the generated inputs (a) only: among methods accepting >= 99 % of the held-out test half, the highest mean refusal over the generated categories, ties by mean AUROC. Real thyroid images: validation only, never used to fit, threshold or choose.",
        "",
    ]
    for name, res in all_results.items():
        lines += [
            f"## {name}",
            "",
            "Data: "
            + "; ".join(f"{k}: {', '.join(v) or 'none'}" for k, v in res["data"].items())
            + f". Calibration half {res['n']['calibration']} views, test half {res['n']['test']} views.",
            "",
        ]
        lines += [
            "| method | threshold | held-out acceptance (test half) | external acceptance | (a) generated AUROC | (a) generated refused | (a) mean per-category refusal | (b) real non-thyroid AUROC | (b) real non-thyroid refused | real thyroid passing (validation) |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        for method, m in res["methods"].items():
            ext = "; ".join(accept_pct(v) for v in m["external"].values()) or "n/a"
            chosen = " **(chosen)**" if method == res["chosen"] else ""
            g, r = m["generated"], m["real_non_thyroid"]
            lines.append(
                f"| {method}{chosen} | {m['threshold']:.4g} | {accept_pct(m['held_out_test'])} | {ext} | {g['auroc']:.3f} | {pct(g)} | {100 * g['mean_category_refusal']:.1f} | {r['auroc']:.3f} | {pct(r)} | {m['real_thyroid']['passing']}/{m['real_thyroid']['n']} |"
            )
        lines += [
            "",
            "Refused per generated category (%, n) and AUROC:",
            "",
            "| method | " + " | ".join(res["generated_n"]) + " |",
            "|---|" + "---|" * len(res["generated_n"]),
        ]
        for method, m in res["methods"].items():
            lines.append(
                f"| {method} | "
                + " | ".join(
                    f"{100 * v['rate']:.0f} (n={v['n']}), {v['auroc']:.3f}" if v["n"] else "n/a" for v in m["generated_per_category"].values()
                )
                + " |"
            )
        lines += [
            "",
            "(b) per file (a file is refused when all its views are; `examples_ybr_color.dcm` is a 30-frame ultrasound cine and makes up 30 of the 46 views): "
            + "; ".join(
                f"{method} {m['real_non_thyroid_files']['refused']}/{m['real_non_thyroid_files']['n']}" for method, m in res["methods"].items()
            )
            + ".",
        ]
        lines += [
            "",
            "Real non-thyroid files (views refused / views; score):",
            "",
            "| file | " + " | ".join(res["methods"]) + " |",
            "|---|" + "---|" * len(res["methods"]),
        ]
        first = next(iter(res["methods"].values()))
        for fname in first["real_non_thyroid_per_file"]:
            cells = []
            for m in res["methods"].values():
                v = m["real_non_thyroid_per_file"][fname]
                cells.append(f"{v['refused']}/{v['views']}" + (f" ({v['scores'][0]:.3g})" if v["views"] == 1 else ""))
            lines.append(f"| {fname} | " + " | ".join(cells) + " |")
        if res["real_non_thyroid_not_preprocessed"]:
            lines += [
                "",
                "Not loaded or not preprocessed (never classified): "
                + "; ".join(f"{k}: {v}" for k, v in res["real_non_thyroid_not_preprocessed"].items()),
            ]
        if res["generated_not_preprocessed"]:
            lines += [
                "",
                "Generated files not preprocessed (never classified): "
                + "; ".join(f"{k}: {len(v)}" for k, v in res["generated_not_preprocessed"].items()),
            ]
        note = NOT_IN_DISTRIBUTION.get(name)
        lines += [
            "",
            "Real thyroid images (validation only; passes = score <= threshold; the PNG rendering of the Siemens DICOM is shown, not counted)"
            + (f". {note}" if note else "")
            + ":",
            "",
            "| image | " + " | ".join(res["methods"]) + " |",
            "|---|" + "---|" * len(res["methods"]),
        ]
        for img in first["real_thyroid"]["per_image"]:
            cells = []
            for m in res["methods"].values():
                r = m["real_thyroid"]["per_image"][img]
                cells.append("not preprocessed" if r["score"] is None else f"{'pass' if r['passes'] else '**refused**'} ({r['score']:.4g})")
            lines.append(f"| {img} | " + " | ".join(cells) + " |")
        lines += [
            "",
            "Time per batch of 32 held-out views (1 CPU thread, median of 50 interleaved runs; the machine was shared, so expect noise): plain forward pass vs `score_batch` (its own forward pass plus the score):",
            "",
            "| method | forward (ms) | score_batch (ms) | ratio |",
            "|---|---|---|---|",
        ]
        for method, t in res["timing"].items():
            lines.append(f"| {method} | {1000 * t['forward_s']:.1f} | {1000 * t['score_batch_s']:.1f} | {t['ratio']:.2f} |")
        lines += ["", f"Ranking on (a): {' > '.join(res['ranking'])}.", ""]
        ab = res.get("ablation_dicom_only")
        if ab:
            lines += [
                f"Ablation (why the display-export training sets are in the fit): {ab['method']} fitted on {ab['fitted_on']} only and thresholded on the {ab['threshold_on']}: held-out DICOM test half refused {pct(ab['held_out_dicom_test'])}; held-out display-export test half refused {pct(ab['held_out_exports_test'])}; real thyroid images passing {ab['real_thyroid_passing']}/{ab['real_thyroid_n']}"
                + (f" (refused: {', '.join(ab['real_thyroid_refused'])})" if ab["real_thyroid_refused"] else "")
                + ".",
                "",
            ]
    lines += [
        "Rerun: `python benchmarks/gate_ood.py` (data folders: see the bundles' model cards; remnant and syringes: "
        + "; ".join(f"`{v}`" for v in MAKE_DATA.values())
        + ").",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--bundles", nargs="+", default=list(DATA), choices=list(DATA))
    parser.add_argument("--methods", nargs="+", default=["mahalanobis_blocks", "mahalanobis_layers", "mahalanobis", "energy", "msp", "knn"])
    parser.add_argument("--cache", type=Path, default=REPO / "data" / "gate-cache")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    from scintipipe.plugins import make_plugin_manager

    pm = make_plugin_manager()
    log = functools.partial(print, file=sys.stderr, flush=True)
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True).stdout.strip()
    except OSError:
        commit = "unknown"
    meta = {"date": dt.date.today().isoformat(), "commit": commit, "quantile": QUANTILE, "seed": SEED, "threads": 1}
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.bundles:
            results[name] = bundle_benchmark(pm, name, args.methods, args.cache, Path(tmp), log)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gate_ood.json").write_text(json.dumps({"meta": meta, "bundles": results}, indent=2, default=str) + "\n")
    (args.out / "gate_ood.md").write_text(markdown(results, meta))
    print((args.out / "gate_ood.md").read_text())


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    main()
