"""Compare simulated scans with the real ones in ../shared/reference-scans, by measurement.

Run from the repository root::

    python benchmarks/compare_reference.py            # table + JSON in docs/img/simulator, pictures in results/reference-pictures
    python benchmarks/compare_reference.py --n 80 --out /tmp/compare

Part 1 measures the real Siemens 99mTc scan (counts, 1.2 mm pixels) against simulated
*normal* scans of the ``siemens`` profile: counts per pixel in thyroid, background and
parotids, their ratios, lobe sizes and noise texture. Part 2 measures the ratios of the 8
labelled display crops (no counts, no spacing: ratios only) against simulated centre-a
scans of the matching pattern. The real files are read where they lie and never copied;
without ``../shared/reference-scans`` the script says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference-scans"
sys.path.insert(0, str(REPO / "src"))

from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR  # noqa: E402  (after the sys.path set-up)
from scintipipe.simulate.measure import SIEMENS_REFERENCE_REGIONS, Regions, flat_box, measure_scan, regions_from_masks  # noqa: E402  (after the sys.path set-up)
from scintipipe.simulate.normal import simulate_normal_case  # noqa: E402  (after the sys.path set-up)
from scintipipe.simulate.preview import display_image  # noqa: E402  (after the sys.path set-up)

#: boxes on the 210 x 210 display crops, and the uptake4 pattern a reader would call each
CROPS = {
    "DG_O": ("diffusely_increased", Regions((120, 180, 75, 130), ((50, 90, 50, 80), (50, 90, 125, 155)))),
    "DG_EX": ("diffusely_increased", Regions((70, 135, 60, 140), ((0, 50, 20, 60), (0, 50, 140, 180)))),
    "NG_O": ("heterogeneous", Regions((115, 185, 70, 130), ((50, 85, 45, 75), (50, 85, 130, 160)))),
    "NG_EX": ("heterogeneous", Regions((70, 140, 40, 115), ((0, 45, 5, 60), (0, 45, 95, 150)))),
    "TI_O": ("diffusely_decreased", Regions((120, 175, 75, 130), ((60, 90, 55, 80), (60, 90, 115, 145)))),
    "TI_EX": ("diffusely_decreased", Regions((100, 165, 50, 135), ((5, 55, 15, 65), (5, 55, 95, 135)))),
    "NL_O": ("normal", Regions((120, 180, 75, 130), ((45, 85, 35, 65), (45, 85, 130, 160)))),
    "NL_EX": ("normal", Regions((105, 160, 80, 135), ((50, 90, 30, 60), (50, 90, 140, 170)))),
}

COUNT_METRICS = (
    ("total_counts", "total counts", "{:,.0f}"),
    ("max_counts", "max counts/pixel", "{:.0f}"),
    ("thyroid_mean", "thyroid counts/pixel (50% ROI)", "{:.1f}"),
    ("background_mean", "background counts/pixel (below gland)", "{:.2f}"),
    ("salivary_mean", "parotid counts/pixel (50% ROI)", "{:.2f}"),
    ("thyroid_to_background", "thyroid / background", "{:.1f}"),
    ("thyroid_to_salivary", "thyroid / parotid", "{:.2f}"),
    ("thyroid_count_fraction", "share of counts in thyroid (30% ROI)", "{:.3f}"),
    ("right_length_mm", "right lobe length mm (30%)", "{:.1f}"),
    ("left_length_mm", "left lobe length mm (30%)", "{:.1f}"),
    ("right_width_mm", "right lobe width mm (30%)", "{:.1f}"),
    ("left_width_mm", "left lobe width mm (30%)", "{:.1f}"),
    ("flat_variance_to_mean", "variance/mean, flat chest region", "{:.2f}"),
    ("psd_slope_thyroid", "power-spectrum slope, thyroid region", "{:.2f}"),
)


def summarise(values: list[float], fmt: str) -> str:
    v = np.asarray([x for x in values if np.isfinite(x)])
    if v.size == 0:
        return "n/a"
    return f"{fmt.format(np.median(v))} [{fmt.format(np.percentile(v, 10))}-{fmt.format(np.percentile(v, 90))}]"


def read_siemens() -> tuple[np.ndarray, float]:
    import pydicom

    ds = pydicom.dcmread(REFERENCE / "siemens-thyroid" / "thyroid_99mTc_ANT_deid.dcm")
    return ds.pixel_array.astype(float), float(ds.PixelSpacing[0])


def read_crop(name: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(REFERENCE / "figure-crops" / f"{name}.png").convert("L"), dtype=float)


def simulate_cases(label: str, center: str, n: int, seed: int) -> list:
    cases = []
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(i,)))
        if label == "normal":
            cases.append(simulate_normal_case(rng, CENTERS[center]))
        else:
            cases.append(UPTAKE4_SIMULATOR(rng, CENTERS[center], label))
    return cases


def measure_case(case) -> dict[str, float]:
    matrix = case.counts.shape[0]
    return measure_scan(case.counts, regions_from_masks(case.masks, case.pixel_mm, flat_box(matrix)), case.pixel_mm)


def siemens_table(n: int, seed: int) -> tuple[list[tuple[str, str, str]], dict, list]:
    image, pixel = read_siemens()
    real = measure_scan(image, SIEMENS_REFERENCE_REGIONS, pixel)
    cases = simulate_cases("normal", "siemens", n, seed)
    simulated = [measure_case(case) for case in cases]
    rows = []
    for key, title, fmt in COUNT_METRICS:
        rows.append((title, fmt.format(real.get(key, float("nan"))), summarise([m.get(key, float("nan")) for m in simulated], fmt)))
    return rows, {"real": real, "simulated": simulated}, cases


def crops_table(n: int, seed: int) -> tuple[list[tuple[str, ...]], dict, dict]:
    rows, raw, examples = [], {}, {}
    by_label: dict[str, list[dict]] = {}
    for name, (label, regions) in CROPS.items():
        real = measure_scan(read_crop(name), regions, None)
        if label not in by_label:
            cases = simulate_cases(label, "a", n, seed)
            examples[label] = cases[:2]
            by_label[label] = [measure_case(case) for case in cases]
        sim = by_label[label]
        raw[name] = real
        rows.append(
            (
                name,
                label,
                f"{real['thyroid_to_background']:.1f}",
                summarise([m["thyroid_to_background"] for m in sim], "{:.1f}"),
                f"{real['thyroid_to_salivary']:.2f}",
                summarise([m["thyroid_to_salivary"] for m in sim], "{:.2f}"),
            )
        )
    return rows, {"crops": raw, "simulated": by_label}, examples


def markdown(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def side_by_side(out: Path, siemens_cases: list, crop_examples: dict) -> list[Path]:
    """Write the real scan next to simulated ones, each on its own linear 0..max scale."""
    from PIL import Image, ImageDraw

    written = []
    image, _ = read_siemens()
    tiles = [display_image(image, 100.0)] + [display_image(case.counts.astype(float), 100.0) for case in siemens_cases[:3]]
    strip = Image.fromarray(np.concatenate(tiles, axis=1))
    draw = ImageDraw.Draw(strip)
    for i, text in enumerate(["real Siemens (200k)", "simulated normal", "simulated normal", "simulated normal"]):
        draw.text((i * 256 + 4, 4), text, fill=255)
    path = out / "siemens_side_by_side.png"
    strip.save(path)
    written.append(path)
    size = 210
    columns = []
    for label in ("diffusely_increased", "heterogeneous", "diffusely_decreased", "normal"):
        crop_names = [name for name, (lab, _) in CROPS.items() if lab == label]
        real_tiles = [np.asarray(Image.open(REFERENCE / "figure-crops" / f"{name}.png").convert("L").resize((size, size))) for name in crop_names]
        sim_tiles = [
            np.asarray(Image.fromarray(display_image(case.counts.astype(float), 99.9)).resize((size, size), Image.Resampling.BILINEAR))
            for case in crop_examples[label]
        ]
        columns.append(np.concatenate([np.concatenate(real_tiles, axis=1), np.concatenate(sim_tiles, axis=1)], axis=0))
    grid = Image.fromarray(np.concatenate(columns, axis=1))
    draw = ImageDraw.Draw(grid)
    for i, label in enumerate(("DG -> diffusely_increased", "NG -> heterogeneous", "TI -> diffusely_decreased", "NL -> normal")):
        draw.text((i * 2 * size + 4, 4), f"real: {label}", fill=255)
        draw.text((i * 2 * size + 4, size + 4), "simulated (centre a)", fill=255)
    path = out / "crops_side_by_side.png"
    grid.save(path)
    written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=40, help="simulated cases per group")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "img" / "simulator", help="folder for the JSON")
    parser.add_argument(
        "--pictures",
        type=Path,
        default=REPO / "results" / "reference-pictures",
        help="folder for the side-by-side pictures (git-ignored: they show third-party scans, which stay out of the repository)",
    )
    args = parser.parse_args(argv)
    if not REFERENCE.is_dir():
        print(f"reference scans not found at {REFERENCE}; nothing to compare (skipped)")
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    args.pictures.mkdir(parents=True, exist_ok=True)
    rows, siemens_raw, siemens_cases = siemens_table(args.n, args.seed)
    print(f"## Real Siemens scan vs {args.n} simulated normal scans (profile 'siemens'): median [p10-p90]\n")
    print(markdown(("measure", "real", "simulated"), rows))
    crop_rows, crop_raw, examples = crops_table(args.n, args.seed)
    print(f"\n## Display crops (ratios only) vs {args.n} simulated centre-a scans per pattern: median [p10-p90]\n")
    print(markdown(("crop", "pattern", "T/B real", "T/B simulated", "T/parotid real", "T/parotid simulated"), crop_rows))
    pictures = side_by_side(args.pictures, siemens_cases, examples)
    results = {"siemens": siemens_raw, "crops": crop_raw["crops"]}
    (args.out / "compare_reference.json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    print("\nwrote " + ", ".join(str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p) for p in pictures))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
