"""Dice of the classical (and, with ``--learned``, the learned) segmenter against the
simulator's ground-truth masks.

Simulates cases in memory with :mod:`scintipipe.simulate` (the same phantom
``scintipipe simulate`` writes as DICOM and NIfTI masks), segments each with
:func:`scintipipe.segment.segment_neck` and prints the Dice per structure, per label and
centre, and the measured against the true uptake where syringes are simulated.

With ``--learned`` the same cases are also segmented by the shipped ``thyroid-seg``
bundle (:class:`scintipipe.segment.learned.LearnedSegmenter`, on the scan's own grid) and
a second table is printed, then a per-centre comparison of the two.

Usage:
    python benchmarks/segmentation_dice.py --n 12 --centers a b siemens
    python benchmarks/segmentation_dice.py --n 10 --centers a b siemens --learned
"""

from __future__ import annotations

import argparse
import statistics
from collections import defaultdict
from collections.abc import Callable

import numpy as np

from scintipipe.segment import quantify, segment_neck
from scintipipe.segment.uptake import SyringeCount, thyroid_uptake_percent
from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
from scintipipe.simulate.syringe import simulate_syringes
from scintipipe.simulate.writer import case_rng

#: our region, the simulator's masks it is compared with
PAIRS = {
    "thyroid": (("thyroid_right", "thyroid_left", "isthmus"), ("thyroid",)),
    "thyroid_right": (("thyroid_right",), ("thyroid_right",)),
    "thyroid_left": (("thyroid_left",), ("thyroid_left",)),
    "salivary": (("salivary_right", "salivary_left"), ("parotid_right", "parotid_left", "submandibular_right", "submandibular_left")),
    "hot_nodules": (("nodules_hot",), ("nodules_hot",)),
}


def dice(a: np.ndarray, b: np.ndarray) -> float | None:
    """Dice coefficient; ``None`` when both are empty."""
    total = a.sum() + b.sum()
    return None if total == 0 else float(2 * (a & b).sum() / total)


def union(masks: dict[str, np.ndarray], names: tuple[str, ...], shape: tuple[int, ...]) -> np.ndarray:
    """Union of the named masks (missing ones are empty)."""
    out = np.zeros(shape, bool)
    for name in names:
        if name in masks:
            out |= masks[name].astype(bool)
    return out


def evaluate(n: int, centers: list[str], seed: int, segment: Callable = segment_neck) -> dict[str, dict[str, list[float]]]:
    """Dice per structure for ``n`` cases of each label at each centre, segmented by
    ``segment(counts, spacing) -> {region: mask}``."""
    scores: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    uptake_pairs = []
    for center_name in centers:
        center = CENTERS[center_name]
        for label in UPTAKE4_SIMULATOR.labels:
            for i in range(n):
                index = i + 1000 * UPTAKE4_SIMULATOR.labels.index(label)
                case = UPTAKE4_SIMULATOR(case_rng(seed, index), center, label)
                rois = segment(case.counts, (case.pixel_mm, case.pixel_mm))
                for name, (ours, theirs) in PAIRS.items():
                    value = dice(union(rois, ours, case.counts.shape), union(case.masks, theirs, case.counts.shape))
                    if value is not None:
                        scores[f"{center_name}/{label}"][name].append(value)
                        scores["all"][name].append(value)
                syringes = simulate_syringes(case_rng(seed, index, 1), center, float(case.metadata["injected_mbq"]))
                q = quantify(case.counts, rois, (case.pixel_mm, case.pixel_mm))
                minutes = float(case.metadata["minutes_post_injection"])
                full, empty = (
                    SyringeCount(float(s.counts.sum()), s.duration_s, 60.0 * s.minutes_from_injection) for s in (syringes["full"], syringes["empty"])
                )
                measured = thyroid_uptake_percent(
                    q["thyroid_net_counts"], case.frame_duration_s, 60.0 * minutes, full, empty, center.camera.half_life_h
                )
                uptake_pairs.append((center_name, label, float(case.metadata["true_uptake_percent"]), measured))
    return scores, uptake_pairs


def print_table(scores: dict, n: int, seed: int, title: str) -> None:
    names = list(PAIRS)
    print(f"{title}: Dice, median (n) over {n} cases per label and centre, seed {seed}")
    print(f"{'group':40s}" + "".join(f"{name:>16s}" for name in names))
    for group in sorted(scores, key=lambda g: (g != "all", g)):
        cells = "".join(f"{statistics.median(v):9.3f} ({len(v):3d})" if (v := scores[group].get(name)) else f"{'-':>16s}" for name in names)
        print(f"{group:40s}{cells}")


def print_uptake(uptake_pairs: list, title: str) -> None:
    print(f"\n{title} uptake: measured (planar, no attenuation correction) / true, median per label")
    by_label = defaultdict(list)
    for _, label, true, measured in uptake_pairs:
        by_label[label].append(measured / true)
    for label, ratios in by_label.items():
        print(
            f"  {label:22s} {statistics.median(ratios):.3f}  (IQR {np.percentile(ratios, 25):.3f}-{np.percentile(ratios, 75):.3f}, n={len(ratios)})"
        )


def per_centre(scores: dict) -> dict[str, dict[str, list[float]]]:
    """Pool the ``centre/label`` groups by centre."""
    out: dict[str, dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for group, per in scores.items():
        centre = group.split("/")[0]
        for name, values in per.items():
            out[centre][name].extend(values)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=12, help="cases per label and centre")
    parser.add_argument("--centers", nargs="+", default=["a", "b", "siemens"])
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--learned", action="store_true", help="also evaluate the shipped thyroid-seg bundle")
    args = parser.parse_args()
    scores, uptake_pairs = evaluate(args.n, args.centers, args.seed)
    print_table(scores, args.n, args.seed, "Classical")
    print_uptake(uptake_pairs, "Classical")
    if not args.learned:
        return
    from scintipipe.segment.learned import LearnedSegmenter, shipped_segmenter_path

    learned = LearnedSegmenter(shipped_segmenter_path())
    learned_scores, learned_uptake = evaluate(args.n, args.centers, args.seed, learned.segment)
    print()
    print_table(learned_scores, args.n, args.seed, "Learned (thyroid-seg)")
    print_uptake(learned_uptake, "Learned")
    print("\nPer centre, median Dice classical / learned")
    names = list(PAIRS)
    print(f"{'centre':12s}" + "".join(f"{name:>20s}" for name in names))
    classical_c, learned_c = per_centre(scores), per_centre(learned_scores)
    for centre in [c for c in classical_c if c != "all"]:
        cells = ""
        for name in names:
            a, b = classical_c[centre].get(name), learned_c[centre].get(name)
            cells += f"{statistics.median(a):9.3f} / {statistics.median(b):.3f}" if a and b else f"{'-':>20s}"
        print(f"{centre:12s}{cells}")


if __name__ == "__main__":
    main()
