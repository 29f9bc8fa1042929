"""Realism: do the real images' statistics fall inside the simulator's range for their class?

Run from the repository root::

    python benchmarks/realism.py                   # 40 simulated scans per class and centre
    python benchmarks/realism.py --n 20 --centers a b --no-docs --out /tmp/realism

For every real thyroid image in ``../shared/reference-scans`` (the eight labelled display
crops and the Siemens DICOM study) and for simulated scans of the matching class at each
centre (``a``, ``b`` and ``randomised`` when the simulator has it), the same statistic
code (:func:`image_statistics`) measures:

* ``thyroid_to_salivary``, ``thyroid_to_background``: mean level ratios in the classical
  segmenter's regions (:mod:`scintipipe.segment.features`);
* ``thyroid_area_fraction``, ``gland_height_fraction``, ``gland_width_fraction``,
  ``gland_width_to_body``: gland extent relative to the image side or the body (no pixel
  spacing: the crops have none);
* ``thyroid_cv``: heterogeneity inside the gland;
* ``nps_slope``, ``nps_high_to_low``: the noise power spectrum of a box around the
  thyroid (mean-normalised, detrended), its log-log slope and its high- to
  low-frequency power ratio (white noise: slope 0, ratio 1);
* ``radial_<a>_<b>``: the mean level in a ring ``a``-``b`` % of the image side from the
  thyroid centroid over the level within 4 %.

Everything is measured on 8-bit display images without spacing: the crops as they are
(loaded by the pipeline's loaders), the Siemens counts and every simulated scan through
the same linear display window (zero to the 99.8th percentile). With ``--rendering export``
every simulated scan goes through the simulator's display-export chain instead (the one the
training exports come from: framing, window and gamma, 8-bit, resampling, JPEG, colour
tables, inversion, burned-in annotation; :func:`scintipipe.simulate.display_export`) and is
read back by the pipeline's loaders like the crops, so the comparison asks whether the real
crops lie inside what the models were trained on; the results then go to
``realism_exports.{md,json}`` and the docs' ``realism-exports`` section. Each real value is then
reported inside or outside the 5-95 % range of the simulated values of its class
(DG: diffusely increased; TI: diffusely decreased; NG: heterogeneous and focal increased
pooled; NL and the Siemens study: normal), and with its percentile rank among them
(:func:`percentile_rank`; the closeness table sets the ranks against the uniform spread that
the simulator's own draws would have). This is a measurement, reported whether the real
values fall inside or not; nothing is tuned on the real images.

Outputs: ``benchmarks/results/realism.{md,json}`` and the section between
``<!-- realism:start/end -->`` in ``docs/real_images.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from collections.abc import Callable
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
sys.path.insert(0, str(REPO / "benchmarks"))

import real_images  # noqa: E402  (after the sys.path set-up)
from _common import git_commit  # noqa: E402  (after the sys.path set-up)
from scintipipe.segment.features import noise_power_summary, radial_profile, region_features  # noqa: E402  (after the sys.path set-up)

RESULTS = REPO / "benchmarks" / "results"
MARKER = "realism"
#: how a simulated scan becomes a display image: ``(results file stem, docs marker, description)``
RENDERINGS = {
    "linear": ("realism", MARKER, "each rendered as an 8-bit display image like the crops (linear, zero to the 99.8th percentile)"),
    "export": (
        "realism_exports",
        "realism-exports",
        "each rendered through the simulator's display-export chain, as the training exports are (framing, window, gamma, "
        "8-bit, resampling, JPEG, colour tables, inversion, annotation), and read back by the pipeline's loaders like the crops",
    ),
}

#: ring edges (fraction of the image side) of the radial profile around the thyroid
RADII = np.array([0.0, 0.04, 0.08, 0.12, 0.16, 0.24, 0.32])

#: real diagnosis code -> simulated classes it is compared with (pooled)
SIMULATED_CLASSES = {
    "DG": ("diffusely_increased",),
    "TI": ("diffusely_decreased",),
    "NG": ("heterogeneous", "focal_increased"),
    "NL": ("normal",),
    "SIEMENS": ("normal",),
}

#: statistic -> (title, format)
STATISTICS = {
    "thyroid_to_salivary": ("thyroid / salivary", "{:.2f}"),
    "thyroid_to_background": ("thyroid / background", "{:.1f}"),
    "thyroid_area_fraction": ("thyroid area / image", "{:.4f}"),
    "gland_height_fraction": ("gland height / image side", "{:.3f}"),
    "gland_width_fraction": ("gland width / image side", "{:.3f}"),
    "gland_width_to_body": ("gland width / body width", "{:.2f}"),
    "thyroid_cv": ("CV inside the gland", "{:.2f}"),
    "nps_slope": ("NPS slope (log-log)", "{:.2f}"),
    "nps_high_to_low": ("NPS high/low frequency power", "{:.3f}"),
    **{f"radial_{int(100 * a):02d}_{int(100 * b):02d}": (f"radial level {int(100 * a)}-{int(100 * b)} %", "{:.2f}") for a, b in pairwise(RADII[1:])},
}


def display_rendering(image: np.ndarray, percentile: float = 99.8) -> np.ndarray:
    """An 8-bit display of a count image: linear from zero to a high percentile."""
    image = np.asarray(image, dtype=np.float64)
    top = float(np.percentile(image, percentile)) or float(image.max()) or 1.0
    return (255 * np.clip(image / top, 0, 1)).astype(np.uint8)


def image_statistics(image: np.ndarray) -> dict[str, float]:
    """The realism statistics of one display image (no pixel spacing).

    Args:
        image: 2-D display values (8-bit range or any linear scale).

    Returns:
        ``{statistic: float}`` for the statistics of :data:`STATISTICS` that are defined
        (none of the gland-based ones when no thyroid is found).
    """
    from scintipipe.segment.classical import segment_neck

    image = np.asarray(image, dtype=np.float32)
    rois = segment_neck(image, None)
    features = region_features(image, rois)
    out: dict[str, float] = {}
    for name in ("thyroid_to_salivary", "thyroid_to_background"):
        if f"log_{name}" in features:
            out[name] = math.exp(features[f"log_{name}"])
    for name in ("thyroid_area_fraction", "gland_width_to_body", "thyroid_cv"):
        if name in features:
            out[name] = features[name]
    thyroid = rois["thyroid_right"] | rois["thyroid_left"] | rois["isthmus"]
    if not thyroid.any():
        return out
    rows, cols = np.nonzero(thyroid)
    side = max(image.shape)
    out["gland_height_fraction"] = float(rows.max() - rows.min() + 1) / side
    out["gland_width_fraction"] = float(cols.max() - cols.min() + 1) / side
    centre = (float(rows.mean()), float(cols.mean()))
    half = int(round(0.2 * side))
    r, c = int(round(centre[0])), int(round(centre[1]))
    box = (max(0, r - half), min(image.shape[0], r + half), max(0, c - half), min(image.shape[1], c + half))
    out.update(noise_power_summary(image, box))
    profile = radial_profile(image, centre, RADII)
    for (a, b), value in zip(pairwise(RADII[1:]), profile[1:], strict=True):
        if np.isfinite(value):
            out[f"radial_{int(100 * a):02d}_{int(100 * b):02d}"] = float(value)
    return out


def simulators() -> dict[str, Callable[[np.random.Generator, Any], Any]]:
    """``{class: factory(rng, centre) -> SimulatedCase}`` for the uptake4 patterns and
    ``normal``, from the registered simulators (``scintipipe simulate``'s)."""
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.plugins import simulators as registered

    sims = registered(make_plugin_manager()).simulators
    out: dict[str, Callable] = {}
    uptake4 = sims["uptake4"]
    for label in ("diffusely_increased", "diffusely_decreased", "focal_increased", "heterogeneous"):
        out[label] = lambda rng, centre, label=label: uptake4(rng, centre, label)
    if "disease" in sims:
        out["normal"] = lambda rng, centre: sims["disease"](rng, centre, "normal")
    else:  # the core simulator's normal neck, when the disease plugin is not installed
        from scintipipe.simulate.normal import simulate_normal_case

        out["normal"] = simulate_normal_case
    return out


def export_rendering(case: Any, rng: np.random.Generator, work: Path, pm: Any = None) -> np.ndarray:
    """A simulated scan as a display export, read back by the pipeline's loaders as the crops are.

    Args:
        case: the simulated case (counts, masks, pixel size).
        rng: the export's own generator (its every choice; never the case's label).
        work: a folder for the encoded picture.
        pm: the plugin manager whose loaders read it (default: a new one; pass one when
            rendering many scans).

    Returns:
        The loaded picture's 2-D pixels.
    """
    from scintipipe.loading import load_views
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.simulate.display_export import display_export
    from scintipipe.training.quantitative import scan_array

    export = display_export(case.counts, case.masks, rng, case.pixel_mm)
    path = work / f"export{export.suffix}"
    path.write_bytes(export.data)
    pixels, _ = scan_array(load_views(pm if pm is not None else make_plugin_manager(), path)[0])
    return pixels


def simulated_statistics(
    classes: list[str], centres: list[str], n: int, seed: int, log, rendering: str = "linear"
) -> dict[str, dict[str, list[dict[str, float]]]]:
    """``{centre: {class: [statistics per simulated scan]}}``.

    ``rendering`` is ``linear`` (:func:`display_rendering`) or ``export``
    (:func:`export_rendering`, with a generator of its own per scan).
    """
    import tempfile

    from scintipipe.plugins import make_plugin_manager
    from scintipipe.simulate.centers import get_center

    factories = simulators()
    pm = make_plugin_manager() if rendering == "export" else None
    out: dict[str, dict[str, list[dict[str, float]]]] = {}
    with tempfile.TemporaryDirectory(prefix="scintipipe-realism-") as work:
        for ci, centre_name in enumerate(centres):
            centre = get_center(centre_name)
            out[centre_name] = {}
            for ki, label in enumerate(classes):
                log(f"simulating {n} {label} at centre {centre_name} ...")
                stats = []
                for i in range(n):
                    rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ci, ki, i)))
                    case = factories[label](rng, centre)
                    if rendering == "export":
                        export_rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(ci, ki, i, 1)))
                        pixels = export_rendering(case, export_rng, Path(work), pm)
                    else:
                        pixels = display_rendering(case.counts)
                    stats.append(image_statistics(pixels))
                out[centre_name][label] = stats
    return out


def real_statistics(reference: Path) -> list[dict[str, Any]]:
    """Statistics of every real thyroid image (excluded and duplicate renderings left out).

    Display crops are read by the pipeline's loaders; DICOM counts are rendered through
    :func:`display_rendering` first, like the simulated scans.
    """
    from scintipipe.loading import load_views
    from scintipipe.plugins import make_plugin_manager
    from scintipipe.training.quantitative import scan_array

    pm = make_plugin_manager()
    out = []
    for image in real_images.discover(reference):
        if image.excluded or image.unscored or image.code not in SIMULATED_CLASSES:
            continue
        scans = load_views(pm, image.path)
        pixels, _ = scan_array(scans[0])
        meta = dict(getattr(scans[0]["image"], "meta", {}) or {})
        if meta.get("is_counts", image.path.suffix.lower() == ".dcm"):
            pixels = display_rendering(pixels)
        out.append({"image": image.name, "code": image.code, "classes": list(SIMULATED_CLASSES[image.code]), "statistics": image_statistics(pixels)})
    return out


def class_values(by_class: dict[str, list[dict[str, float]]], classes: tuple[str, ...], name: str) -> np.ndarray:
    """The finite values of statistic ``name`` over the simulated scans of ``classes`` at one centre."""
    return np.array([s[name] for label in classes for s in by_class.get(label, []) if name in s and np.isfinite(s[name])])


def ranges(
    simulated: dict[str, dict[str, list[dict[str, float]]]], classes: tuple[str, ...], low: float = 5.0, high: float = 95.0
) -> dict[str, dict[str, dict[str, float]]]:
    """``{centre: {statistic: {p5, median, p95, n}}}`` over the pooled ``classes``."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for centre, by_class in simulated.items():
        pooled = [stats for label in classes for stats in by_class.get(label, [])]
        out[centre] = {}
        for name in STATISTICS:
            values = class_values(by_class, classes, name)
            if values.size:
                out[centre][name] = {
                    "p5": float(np.percentile(values, low)),
                    "median": float(np.median(values)),
                    "p95": float(np.percentile(values, high)),
                    "n": int(values.size),
                    "of": len(pooled),
                }
    return out


def percentile_rank(values: np.ndarray, value: float) -> float:
    """Where ``value`` falls among ``values``, in percent (ties count half).

    If the real images were draws from the simulated distribution, their ranks would be
    uniform on 0-100: half of them within 25-75, nine in ten within 5-95.

    Example:
        >>> percentile_rank(np.array([1.0, 2.0, 3.0, 4.0]), 2.0)
        37.5
    """
    return float(100.0 * (np.sum(values < value) + 0.5 * np.sum(values == value)) / values.size)


def compare(real: list[dict[str, Any]], simulated: dict[str, dict[str, list[dict[str, float]]]]) -> list[dict[str, Any]]:
    """Each real image's statistics with the simulated 5-95 % range per centre, inside/outside,
    and the real value's percentile rank among the simulated values of its class."""
    rows = []
    for item in real:
        classes = tuple(item["classes"])
        sim = ranges(simulated, classes)
        checks = {}
        for name, value in item["statistics"].items():
            per_centre = {}
            for centre, stats in sim.items():
                if name in stats:
                    r = stats[name]
                    rank = percentile_rank(class_values(simulated[centre], classes, name), value)
                    per_centre[centre] = {**r, "inside": bool(r["p5"] <= value <= r["p95"]), "percentile": rank}
            checks[name] = {"value": value, "centres": per_centre}
        missing = [name for name in STATISTICS if name not in item["statistics"]]
        rows.append({**item, "checks": checks, "missing": missing})
    return rows


def summarise_simulated(simulated: dict[str, dict[str, list[dict[str, float]]]]) -> dict[str, dict[str, Any]]:
    """``{centre: {class: {statistic: {p5, median, p95, n, of}}}}`` (the JSON keeps these,
    not every simulated value)."""
    return {
        centre: {label: ranges({centre: {label: stats}}, (label,))[centre] for label, stats in by_class.items()}
        for centre, by_class in simulated.items()
    }


def render(results: dict[str, Any], detailed: bool = True) -> str:
    """Markdown: summary per image and per statistic, and (``detailed``) every value."""
    centres = results["centres"]
    rows = results["comparison"]
    lines = [results["note"], ""] if results.get("note") else []
    lines += [
        f"{results['n']} simulated scans per class and centre (centres {', '.join(centres)}; seed {results['seed']}), "
        f"{RENDERINGS[results.get('rendering', 'linear')][2]}; statistics from the classical segmenter's regions, no pixel spacing. "
        f"A real value is *inside* when it lies within the simulated 5-95 % range of its class at that centre. {results['date']}, commit {results['commit']}.",
        "",
        "Statistics inside the simulated 5-95 % range, per real image:",
        "",
        "| image | compared with | " + " | ".join(f"inside, centre {c}" for c in centres) + " | outside at every centre |",
        "|---|---|" + "---|" * len(centres) + "---|",
    ]
    for row in rows:
        counts = []
        for centre in centres:
            checked = [c["centres"][centre]["inside"] for c in row["checks"].values() if centre in c["centres"]]
            counts.append(f"{sum(checked)}/{len(checked)}")
        everywhere = [
            STATISTICS[name][0] for name, c in row["checks"].items() if c["centres"] and not any(v["inside"] for v in c["centres"].values())
        ]
        note = ", ".join(everywhere) or "none"
        if row["missing"]:
            note += f" (not measurable: {', '.join(STATISTICS[m][0] for m in row['missing'])})"
        lines.append(f"| {row['image']} | {' + '.join(row['classes'])} | " + " | ".join(counts) + f" | {note} |")
    lines += [
        "",
        "Real images inside the range, per statistic (any centre / per centre):",
        "",
        "| statistic | inside at any centre | " + " | ".join(f"centre {c}" for c in centres) + " |",
        "|---|---|" + "---|" * len(centres),
    ]
    for name, (title, _) in STATISTICS.items():
        checked = [row["checks"][name] for row in rows if name in row["checks"] and row["checks"][name]["centres"]]
        if not checked:
            continue
        anywhere = sum(any(v["inside"] for v in c["centres"].values()) for c in checked)
        per = []
        for centre in centres:
            cc = [c["centres"][centre]["inside"] for c in checked if centre in c["centres"]]
            per.append(f"{sum(cc)}/{len(cc)}")
        lines.append(f"| {title} | {anywhere}/{len(checked)} | " + " | ".join(per) + " |")
    lines += closeness_lines(rows, centres)
    if detailed:
        lines += [
            "",
            "Every value: real, and simulated median [5-95 %] and the real value's percentile rank (pN) per centre (**bold** = real outside that range):",
            "",
        ]
        lines += ["| image | statistic | real | " + " | ".join(f"centre {c}" for c in centres) + " |", "|---|---|---|" + "---|" * len(centres)]
        for row in rows:
            for name, check in row["checks"].items():
                title, fmt = STATISTICS[name]
                cells = []
                for centre in centres:
                    r = check["centres"].get(centre)
                    if r is None:
                        cells.append("-")
                        continue
                    text = f"{fmt.format(r['median'])} [{fmt.format(r['p5'])}-{fmt.format(r['p95'])}]" + (
                        f" p{r['percentile']:.0f}" if "percentile" in r else ""
                    )
                    cells.append(text if r["inside"] else f"**{text}**")
                lines.append(f"| {row['image']} | {title} | {fmt.format(check['value'])} | " + " | ".join(cells) + " |")
    rerun = "python benchmarks/realism.py" + (" --rendering export" if results.get("rendering", "linear") == "export" else "")
    lines += ["", f"Rerun: `{rerun}` (`--n`, `--centers`)."]
    return "\n".join(lines)


def closeness_lines(rows: list[dict[str, Any]], centres: list[str]) -> list[str]:
    """The table of percentile ranks per centre, against what draws from the simulator would give.

    Inside/outside says whether the simulator covers a real value; the ranks say whether
    the real images look like typical draws. Results from before this measure (JSON without
    ``percentile``) give no table.
    """
    ranks = {
        centre: [v["percentile"] for row in rows for c in row["checks"].values() if (v := c["centres"].get(centre)) and "percentile" in v]
        for centre in centres
    }
    if not any(ranks.values()):
        return []
    lines = [
        "",
        "Closeness: each real value's percentile rank among the simulated values of its class, over every image and statistic. "
        "Draws from the simulator would rank uniformly: 50 % of them within 25-75, 90 % within 5-95, a mean distance of 25 from the median.",
        "",
        "| centre | real values | within 25-75 (expected 50 %) | within 5-95 (expected 90 %) | mean distance from the median, percentile points (expected 25) |",
        "|---|---|---|---|---|",
    ]
    for centre in centres:
        values = np.array(ranks[centre])
        if not values.size:
            continue
        central = np.mean((values >= 25) & (values <= 75))
        inner = np.mean((values >= 5) & (values <= 95))
        lines.append(f"| {centre} | {values.size} | {100 * central:.0f} % | {100 * inner:.0f} % | {np.mean(np.abs(values - 50)):.1f} |")
    return lines


def write_outputs(results: dict[str, Any], out: Path, docs: bool) -> None:
    """Write ``realism.{md,json}`` (``realism_exports`` for the export rendering; every value) and, with ``docs``, the summary section."""
    stem, marker, _ = RENDERINGS[results.get("rendering", "linear")]
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(results, indent=1) + "\n")
    (out / f"{stem}.md").write_text(f"# Realism: real image statistics against the simulator's range\n\n{render(results)}\n")
    if docs:
        real_images.update_file(
            real_images.DOC,
            marker,
            render(results, detailed=False) + f"\n\nEvery value: `benchmarks/results/{stem}.md`.",
            title=real_images.DOC_TITLE,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=real_images.DEFAULT_REFERENCE)
    parser.add_argument("--n", type=int, default=40, help="simulated scans per class and centre")
    parser.add_argument("--centers", nargs="+", default=None, help="simulated centres (default: a, b and randomised when the simulator has it)")
    parser.add_argument("--seed", type=int, default=2027)
    parser.add_argument(
        "--rendering",
        choices=sorted(RENDERINGS),
        default="linear",
        help="how a simulated scan becomes a display image: a linear window (default) or the training exports' display-export chain",
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-docs", dest="docs", action="store_false", help="do not touch docs/real_images.md")
    parser.add_argument("--from-json", type=Path, default=None, help="rewrite the outputs from a realism.json of an earlier run (runs nothing)")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        write_outputs(json.loads(args.from_json.read_text()), args.out, args.docs)
        return 0
    if not args.reference.is_dir():
        print(f"reference images not found at {args.reference}; nothing to compare (skipped)")
        return 0
    start = time.perf_counter()

    def log(message: str) -> None:
        print(f"[{time.perf_counter() - start:6.0f} s] {message}", flush=True)

    from scintipipe.simulate.centers import CENTERS

    centres = args.centers or [c for c in ("a", "b", "randomised") if c in CENTERS]
    real = real_statistics(args.reference)
    classes = sorted({label for item in real for label in item["classes"]})
    simulated = simulated_statistics(classes, centres, args.n, args.seed, log, rendering=args.rendering)
    results = {
        "date": dt.date.today().isoformat(),
        "commit": git_commit(),
        "n": args.n,
        "seed": args.seed,
        "rendering": args.rendering,
        "centres": centres,
        "statistics": {name: title for name, (title, _) in STATISTICS.items()},
        "comparison": compare(real, simulated),
        "simulated_ranges": summarise_simulated(simulated),
        "seconds": time.perf_counter() - start,
    }
    write_outputs(results, args.out, args.docs)
    print(render(results, detailed=False))
    log("done")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
