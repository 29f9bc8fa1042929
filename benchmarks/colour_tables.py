"""Colour-table reading of display exports: what the loader recognises and what the gate calls a photograph.

Run from the repository root::

    python benchmarks/colour_tables.py
    python benchmarks/colour_tables.py --seeds 2104,2004 --n 400 --out /tmp/colour_tables

For each seed, ``--n`` uptake4 display exports of the randomised centre are simulated
(``scintipipe simulate --display-exports 1``, as ``benchmarks/fresh_seed_comparison.py``
draws its exports set; skipped when present in ``--data``). Every colour export is read
as the raster loader reads it (:func:`scintipipe.loaders.display.restore_display`): the
table recognised against the table it was drawn with, the share of its pixels near that table, and the share of it in
off-table regions that the gate's ``content`` layer refuses as a photograph at
:data:`scintipipe.gate.content.PHOTO_MIN_OFF_TABLE_REGIONS`. Then the same cases (the
first few) are rendered through matplotlib colour maps the loader does not know: such a
scintigram cannot be turned back into intensity, and the layer may refuse it. The two
matplotlib sample photographs are measured beside.

Outputs: ``OUT/colour_tables.{md,json}`` (default ``benchmarks/results/``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _common as common
from _common import ROOT

#: matplotlib colour maps not among the loader's tables (checked at run time)
UNKNOWN_MAPS = (
    "magma",
    "inferno",
    "cividis",
    "coolwarm",
    "spring",
    "summer",
    "autumn",
    "winter",
    "cool",
    "Wistia",
    "copper",
    "bone",
    "pink",
    "ocean",
    "terrain",
    "rainbow",
)
PHOTOGRAPHS = ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png")
#: grey exports (and their inverted form) are drawn with no colour map
GREY = (None, "gray", "grey")


def read_picture(rgb: np.ndarray) -> dict[str, Any]:
    """What the loader (:func:`~scintipipe.loaders.display.restore_display`) and the gate's picture rule make of one 8-bit RGB picture.

    ``table`` is the colour table the loader mapped back (``None``: read on its luminance);
    ``near_share`` is the share of the picture near the closest table, for the report.
    """
    from scintipipe.gate.content import picture_refusal
    from scintipipe.loaders.display import match_table, restore_display

    restored = restore_display(rgb)
    refusal = picture_refusal(restored.picture)
    return {
        "table": restored.lookup_table,
        "closest_table": restored.picture["closest_table"],
        "near_share": round(match_table(rgb)[1], 4),
        "off_table_region_share": restored.picture["off_table_region_share"],
        "refused": None if refusal is None else refusal.reason,
    }


def exports(folder: Path) -> list[dict[str, Any]]:
    """Every colour export of a simulated folder, read as the loader reads it."""
    from PIL import Image

    rows = []
    for line in (folder / "cases.jsonl").read_text().splitlines():
        case = json.loads(line)
        options = (case.get("display_export") or {}).get("options") or {}
        if not options or options.get("colormap") in GREY:
            continue
        rgb = np.asarray(Image.open(folder / case["file"]).convert("RGB"))
        row = read_picture(rgb)
        row.update(file=f"{folder.name}/{case['file']}", drawn_with=options["colormap"], format=options["image_format"], resample=options["resample"])
        rows.append(row)
    return rows


def unknown_map_renders(n_cases: int, seed: int) -> list[dict[str, Any]]:
    """Simulated scans (square-root display) through matplotlib maps the loader does not know."""
    import matplotlib

    from scintipipe.loaders.grey import DISPLAY_LUTS
    from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR

    labels = UPTAKE4_SIMULATOR.labels
    cases = [UPTAKE4_SIMULATOR(np.random.default_rng([seed, i]), CENTERS["randomised"], labels[i % len(labels)]) for i in range(n_cases)]
    rows = []
    for name in (m for m in UNKNOWN_MAPS if m not in DISPLAY_LUTS):
        colour_map = matplotlib.colormaps[name]
        for index, case in enumerate(cases):
            values = np.sqrt(case.counts / max(float(case.counts.max()), 1.0))
            row = read_picture((colour_map(values)[..., :3] * 255).astype(np.uint8))
            row.update(map=name, case=index)
            rows.append(row)
    return rows


def photographs() -> list[dict[str, Any]]:
    """matplotlib's sample photographs, read as the loader reads them."""
    from matplotlib import cbook
    from PIL import Image

    return [
        {"file": name, **read_picture(np.asarray(Image.open(cbook.get_sample_data(name, asfileobj=False)).convert("RGB")))} for name in PHOTOGRAPHS
    ]


def render(results: dict[str, Any]) -> str:
    """The Markdown report."""
    from scintipipe.gate.content import PHOTO_MIN_OFF_TABLE_REGIONS

    rows = results["exports"]
    recognised = sum(row["table"] is not None for row in rows)
    refused = [row for row in rows if row["refused"]]
    shares = sorted((row["off_table_region_share"] for row in rows), reverse=True)
    renders = results["unknown_maps"]
    lines = [
        "# Colour tables: what the loader recognises, what the gate refuses as a photograph",
        "",
        f"Command: `{results['command']}` (commit {results['commit']}, {results['date']}, {results['seconds']:.0f} s).",
        "",
        f"- **Simulated colour exports** (uptake4, randomised centre, seeds {', '.join(map(str, results['seeds']))}): {len(rows)}. "
        f"A known table recognised for {recognised} ({recognised / max(len(rows), 1):.1%}); refused as a photograph: {len(refused)}"
        f" (threshold {PHOTO_MIN_OFF_TABLE_REGIONS:.0%} of the picture in off-table regions). "
        f"Largest off-table region shares: {', '.join(f'{s:.1%}' for s in shares[:5])}.",
        f"- **Renders through {len({r['map'] for r in renders})} matplotlib maps the loader does not know** "
        f"({len(renders)} renders of {results['unknown_map_cases']} simulated scans): refused {sum(bool(r['refused']) for r in renders)}.",
        "- **Photographs** (matplotlib's samples): "
        + "; ".join(
            f"`{p['file']}` {p['off_table_region_share']:.1%} in off-table regions, {'refused' if p['refused'] else 'NOT refused'}"
            for p in results["photographs"]
        )
        + ".",
        "",
    ]
    missed = [row for row in rows if row["table"] is None or row["refused"]]
    if missed:
        lines += [
            "Colour exports not read on a known table, or refused:",
            "",
            "| file | drawn with | closest table | near share | off-table regions | refused |",
            "|---|---|---|---|---|---|",
        ]
        lines += [
            f"| {r['file']} | {r['drawn_with']} ({r['format']}, {r['resample']}) | {r['closest_table']} | {r['near_share']:.1%} | {r['off_table_region_share']:.1%} | {r['refused'] or '-'} |"
            for r in missed
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", default="2104", help="seeds of the simulated export sets, comma-separated (default 2104)")
    parser.add_argument("--n", type=int, default=400, help="exports per seed (default 400)")
    parser.add_argument("--unknown-map-cases", type=int, default=5, help="simulated scans rendered through each unknown map (default 5)")
    parser.add_argument("--data", type=Path, default=ROOT / "data", help="where the export sets are simulated (default data/)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks/results")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    seeds = [int(seed) for seed in args.seeds.split(",")]
    rows = []
    for seed in seeds:
        folder = common.simulate_once(
            args.data / f"fresh-{seed}", args.n, seed, "randomised", extra=["--class-mix", "balanced", "--display-exports", "1"]
        )
        rows += exports(folder)
    results = {
        "command": "python benchmarks/colour_tables.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "commit": common.git_commit(),
        "date": time.strftime("%Y-%m-%d"),
        "seeds": seeds,
        "exports": rows,
        "unknown_map_cases": args.unknown_map_cases,
        "unknown_maps": unknown_map_renders(args.unknown_map_cases, 5),
        "photographs": photographs(),
    }
    results["seconds"] = time.perf_counter() - started
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "colour_tables.json").write_text(json.dumps(results, indent=1))
    (args.out / "colour_tables.md").write_text(render(results))
    print(render(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
