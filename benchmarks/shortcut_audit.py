"""Shortcut audit: can a probe read the class off simulated scans with the thyroid removed?

    python benchmarks/shortcut_audit.py --task uptake4 disease --n-per-class 150 --seed 0 \\
        --out benchmarks/results/shortcut_audit

For each task: simulate ``n`` cases per class in memory (balanced, so the majority rate is
1/K), replace the thyroid and its scatter halo by background
(:func:`scintipipe.simulate.audit.remove_thyroid`), apply the uptake4 models'
preprocessing, and report the stratified 5-fold accuracy of the best of three cheap probes
with a 95 % Wilson interval against the majority rate (pass: within ``--margin`` points),
plus the per-class table of every nuisance variable with a Kruskal-Wallis test.
Writes ``OUT.md`` and ``OUT.json``. Method: docs/shortcut_audit.md.

``--match-counts`` adds the control that traces an excess: the same cases' removed images
redrawn at the count preset (``remove_thyroid(..., match_counts=True)``: the thyroid's share
of the preset counts given to the rest of the neck), probed the same way. A task that fails
as acquired but whose counts-matched probe is within the margin is TRACED: its excess is the
count-preset physics of the class-defining uptake (documented in docs/shortcut_audit.md);
otherwise it FAILs.

``--match-footprint`` (implies ``--match-counts``) adds a second control: the removed images at
the count preset, with one fixed removal region for every case (a 124 x 140 mm rectangle around
the gland, :func:`scintipipe.simulate.audit.fixed_region`) instead of the gland's own dilated
footprint, whose size is class-defining. A task whose counts-matched probe still fails but whose
footprint-matched probe is within the margin is TRACED to the footprint of the removal. The exit
status is 0 when no task FAILs.

``--cards`` also writes each audited task's verdict into the model card of the bundle of the
same name (``uptake4``, ``disease``), between ``<!-- shortcut-audit:start/end -->``: use it on
the setting the docs report, not on exploratory runs.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from tqdm import tqdm  # noqa: E402  (after the sys.path set-up)

from scintipipe.simulate.audit import DEFAULT_MARGIN_POINTS, audit_simulator  # noqa: E402  (after the sys.path set-up)
from scintipipe.simulate.centers import CENTERS  # noqa: E402  (after the sys.path set-up)


def default_center() -> str:
    """``randomised`` when the simulators have it, else centre ``b`` (128 matrix, fast)."""
    return "randomised" if "randomised" in CENTERS else "b"


def get_simulator(task: str) -> Any:
    """The task's registered simulator (plugins included)."""
    from scintipipe.plugins import default_plugin_manager, simulators

    registered = simulators(default_plugin_manager()).simulators
    if task not in registered:
        raise SystemExit(f"no simulator for task {task!r}; registered: {', '.join(sorted(registered))}")
    return registered[task]


def verdict(result: dict[str, Any]) -> str:
    """``PASS`` (as acquired within the margin), ``TRACED`` (a control's probe is: counts or footprint matched) or ``FAIL``."""
    if result["probe"]["passed"]:
        return "PASS"
    controls = (result.get("probe_counts_matched"), result.get("probe_footprint_matched"))
    return "TRACED" if any(c is not None and c["passed"] for c in controls) else "FAIL"


def tracing_sentence(result: dict[str, Any]) -> str:
    """What the counts- and footprint-matched controls say about the excess of one task."""
    probe, matched = result["probe"], result.get("probe_counts_matched")
    if matched is None:
        return ""
    margin = matched["margin_points"]
    head = (
        f"As acquired {probe['excess_points']:+.1f} points; with the removed image redrawn at the count preset "
        f"(the thyroid's share of the preset counts given to the rest of the neck) {matched['excess_points']:+.1f} points."
    )
    footprint = result.get("probe_footprint_matched")
    if footprint is not None:
        head += (
            f" With one fixed removal region for every case as well (counts and footprint matched; the dilated gland lay inside it in "
            f"{100 * result['footprint_contained_share']:.1f} % of cases) {footprint['excess_points']:+.1f} points."
        )
    if probe["passed"] and matched["passed"]:
        return f"{head} Within {margin:.0f} points as acquired and counts matched: no shortcut to trace."
    if matched["passed"]:
        return (
            f"{head} The counts-matched probe is within {margin:.0f} points, so the excess is traced to the count-preset "
            "physics of the class-defining uptake (documented in docs/shortcut_audit.md): the thyroid's share of the preset "
            "sets the count level and noise of the rest of the scan."
        )
    if footprint is None:
        return f"{head} **FAIL**: the counts-matched probe is more than {margin:.0f} points above the majority rate, so the count level does not explain the excess."
    if footprint["passed"]:
        return (
            f"{head} The footprint-matched probe is within {margin:.0f} points, so the excess left at the count preset is traced to the "
            "footprint of the removal: the size of the filled region, which is the gland's class-defining size."
        )
    return (
        f"{head} **FAIL**: the footprint-matched probe is more than {margin:.0f} points above the majority rate, so neither the count "
        "level nor the footprint of the removal explains the excess."
    )


def audit_task(
    task: str, center: str, n_per_class: int, seed: int, margin: float, match_counts: bool = False, match_footprint: bool = False
) -> dict[str, Any]:
    """Run the probe (and the counts- and footprint-matched controls asked for) and the nuisance table for one task."""
    simulator = get_simulator(task)
    started = time.perf_counter()
    match_counts = match_counts or match_footprint

    def progress(indices: Any) -> Any:
        return tqdm(indices, desc=f"{task}: simulating, removing the thyroid", unit="case", disable=None, file=sys.stderr)

    audit = audit_simulator(
        simulator, CENTERS[center], n_per_class, seed, margin, match_counts=match_counts, match_footprint=match_footprint, progress=progress
    )
    result = {
        "task": task,
        "center": center,
        "labels": list(simulator.labels),
        "n_per_class": n_per_class,
        "n": audit["probe"]["n"],
        "seed": seed,
        "probe": audit["probe"],
        "nuisance": audit["nuisance"],
        "seconds": round(time.perf_counter() - started, 1),
    }
    if match_footprint:
        result["probe_footprint_matched"] = audit["probe_footprint_matched"]
        result["footprint_contained_share"] = audit["footprint_contained_share"]
    if match_counts:
        result["probe_counts_matched"] = audit["probe_counts_matched"]
        result["tracing"] = tracing_sentence(result)
    result["verdict"] = verdict(result)
    return result


def source_state() -> dict[str, Any]:
    """The commit and whether the simulators differ from it (to tell before from after)."""

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=20).stdout.rstrip()
        except (OSError, subprocess.SubprocessError):
            return ""

    changed = git("status", "--porcelain", "--", "src/scintipipe/simulate", "plugins/scintipipe-disease/src")
    paths = [line[3:] for line in changed.splitlines() if line.strip()]
    return {"commit": git("rev-parse", "HEAD").strip(), "uncommitted_simulator_changes": [p for p in paths if not p.endswith("simulate/audit.py")]}


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _num(value: float) -> str:
    return f"{value:.4g}"


def flagged_nuisance(result: dict[str, Any]) -> str:
    """The flagged nuisance variables outside the thyroid and the physics of uptake, as Markdown (``none`` if none)."""
    names = [e["variable"] for e in result["nuisance"]["variables"] if e["flagged"] and e["kind"] not in ("physics of uptake", "thyroid")]
    return ", ".join(f"`{name}`" for name in names) or "none"


def task_markdown(result: dict[str, Any]) -> list[str]:
    """The Markdown section of one task."""
    probe, table = result["probe"], result["nuisance"]
    matched, footprint = result.get("probe_counts_matched"), result.get("probe_footprint_matched")
    lines = [
        f"## {result['task']} (centre {result['center']}, {result['n_per_class']} per class, n = {result['n']}, seed {result['seed']})",
        "",
        f"**{result.get('verdict', verdict(result))}**: best probe `{probe['best_probe']}` {_pct(probe['accuracy'])} % "
        f"[95 % CI {_pct(probe['lower'])}-{_pct(probe['upper'])}] vs majority rate {_pct(probe['majority_rate'])} % "
        f"({probe['excess_points']:+.1f} points; pass within {probe['margin_points']:.0f})"
        + (
            f"; counts matched: `{matched['best_probe']}` {_pct(matched['accuracy'])} % [95 % CI {_pct(matched['lower'])}-{_pct(matched['upper'])}] "
            f"({matched['excess_points']:+.1f} points)"
            + (
                f"; counts and footprint matched: `{footprint['best_probe']}` {_pct(footprint['accuracy'])} % "
                f"[95 % CI {_pct(footprint['lower'])}-{_pct(footprint['upper'])}] ({footprint['excess_points']:+.1f} points)."
                if footprint is not None
                else "."
            )
            if matched is not None
            else "."
        ),
        "",
    ]
    if matched is not None:
        lines += [result.get("tracing") or tracing_sentence(result), ""]
        controls = [("counts matched", matched)] + ([("counts and footprint matched", footprint)] if footprint is not None else [])
        lines += [
            "| probe | as acquired % | 95 % CI | " + " | ".join(f"{title} % | 95 % CI" for title, _ in controls) + " |",
            "|---|---|---|" + "---|---|" * len(controls),
        ]
        for name, row in probe["probes"].items():
            cells = [f"{_pct(row['accuracy'])} | {_pct(row['lower'])}-{_pct(row['upper'])}"]
            cells += [
                f"{_pct(c['probes'][name]['accuracy'])} | {_pct(c['probes'][name]['lower'])}-{_pct(c['probes'][name]['upper'])}" for _, c in controls
            ]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    else:
        lines += ["| probe | accuracy % | 95 % CI |", "|---|---|---|"]
        for name, row in probe["probes"].items():
            lines.append(f"| {name} | {_pct(row['accuracy'])} | {_pct(row['lower'])}-{_pct(row['upper'])} |")
    classes = table["classes"]
    lines += [
        "",
        f"Nuisance variables, per class median [5th-95th percentile]; flagged when Kruskal-Wallis p x m < {table['alpha']} "
        f"(Bonferroni over m = {len(table['variables'])}) and epsilon-squared >= {table['min_effect']}:",
        "",
        "| variable | kind | " + " | ".join(classes) + " | eps^2 | p (Bonf.) | flag |",
        "|---|---|" + "---|" * len(classes) + "---|---|---|",
    ]
    for entry in table["variables"]:
        cells = []
        for label in classes:
            stats = entry["per_class"].get(label)
            cells.append("-" if stats is None else f"{_num(stats['median'])} [{_num(stats['p5'])}-{_num(stats['p95'])}]")
        flag = "**yes**" if entry["flagged"] else ""
        lines.append(
            f"| {entry['variable']} | {entry['kind']} | " + " | ".join(cells) + f" | {entry['epsilon2']:.3f} | {entry['p_bonferroni']:.2g} | {flag} |"
        )
    notes = {e["variable"]: e["note"] for e in table["variables"] if e.get("note")}
    lines += ["", "Kind `thyroid`: the gland's own variables (removed before probing; their class dependence may be the class definition)."]
    if notes:
        lines += ["", "Kind `physics of uptake`: measured on the full scan, their class dependence follows from the class-defining uptake:"]
        lines += [f"- `{name}`: {note}" for name, note in notes.items()]
    return lines


def write_report(results: list[dict[str, Any]], state: dict[str, Any], out: Path, command: str) -> None:
    """Write ``OUT.md`` and ``OUT.json``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    changed = state["uncommitted_simulator_changes"]
    lines = [
        "# Shortcut audit: class read off scans with the thyroid removed",
        "",
        f"`{command}`",
        "",
        (f"Simulators at commit `{state['commit'][:12]}`" + (f", with uncommitted changes in {', '.join(changed)}." if changed else ", unmodified."))
        if state["commit"]
        else "Simulators: not run from a git checkout.",
        *([state["note"], ""] if state.get("note") else []),
        "Method and pass criterion: [docs/shortcut_audit.md](../../docs/shortcut_audit.md).",
        "",
    ]
    matched_any = any("probe_counts_matched" in r for r in results)
    footprint_any = any("probe_footprint_matched" in r for r in results)
    if matched_any:
        lines += [
            "Counts matched: the same cases' removed images redrawn at the count preset (the thyroid's share of the preset counts "
            "given to the rest of the neck). TRACED: the excess as acquired disappears (within the margin) once the count level "
            "is matched, so it is the count-preset physics of the class-defining uptake, not a nuisance shortcut."
            + (
                " Footprint matched (last control column): at the count preset with one fixed 124 x 140 mm removal region around "
                "the gland for every case, so the filled region's size no longer follows the class-defining gland size."
                if any("probe_footprint_matched" in r for r in results)
                else ""
            ),
            "",
            "| task | centre | n | best probe as acquired % [95 % CI] | counts matched % [95 % CI] | "
            + ("footprint matched % [95 % CI] | " if footprint_any else "")
            + "majority % | excess as acquired / counts matched"
            + (" / footprint matched" if footprint_any else "")
            + " (points) | verdict | flagged nuisance variables outside the thyroid |",
            "|---|---|---|---|---|---|---|---|---|" + ("---|" if footprint_any else ""),
        ]
    else:
        lines += [
            "| task | centre | n | best probe accuracy % [95 % CI] | majority % | excess (points) | verdict | flagged nuisance variables outside the thyroid |",
            "|---|---|---|---|---|---|---|---|",
        ]
    for r in results:
        p = r["probe"]
        flagged = flagged_nuisance(r)
        m = r.get("probe_counts_matched")
        if matched_any and m is not None:
            f = r.get("probe_footprint_matched")
            footprint_cell = (
                (f"{_pct(f['accuracy'])} [{_pct(f['lower'])}-{_pct(f['upper'])}] | " if f is not None else "- | ") if footprint_any else ""
            )
            footprint_excess = (f" / {f['excess_points']:+.1f}" if f is not None else " / -") if footprint_any else ""
            lines.append(
                f"| {r['task']} | {r['center']} | {r['n']} | {_pct(p['accuracy'])} [{_pct(p['lower'])}-{_pct(p['upper'])}] | "
                f"{_pct(m['accuracy'])} [{_pct(m['lower'])}-{_pct(m['upper'])}] | {footprint_cell}{_pct(p['majority_rate'])} | "
                f"{p['excess_points']:+.1f} / {m['excess_points']:+.1f}{footprint_excess} | {r.get('verdict', verdict(r))} | {flagged} |"
            )
        else:
            lines.append(
                f"| {r['task']} | {r['center']} | {r['n']} | {_pct(p['accuracy'])} [{_pct(p['lower'])}-{_pct(p['upper'])}] | "
                + (" - |" if matched_any else "")
                + (" - |" if footprint_any else "")
                + f" {_pct(p['majority_rate'])} | {p['excess_points']:+.1f} | {r.get('verdict', verdict(r))} | {flagged} |"
            )
    for r in results:
        lines += [""] + task_markdown(r)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    payload = {"command": command, "source": state, "results": results}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")


#: the model cards' marked section
CARD_MARKER = "shortcut-audit"


def card_section(result: dict[str, Any], command: str) -> str:
    """The model card's section: the audit of the simulator the bundle was trained on."""
    p, m, f = result["probe"], result.get("probe_counts_matched"), result.get("probe_footprint_matched")

    def cell(probe: dict[str, Any] | None) -> str:
        return "-" if probe is None else f"{_pct(probe['accuracy'])} % [{_pct(probe['lower'])}-{_pct(probe['upper'])}]"

    flagged = flagged_nuisance(result)
    return "\n".join(
        [
            "## Shortcut audit of the training simulator",
            "",
            "Can a probe read the class off simulated scans once the thyroid is removed? Best of three cheap probes, "
            f"5-fold cross-validated, against the majority-class rate {_pct(p['majority_rate'])} % (pass within "
            f"{p['margin_points']:.0f} points; method, controls and the allowed medical differences: `docs/shortcut_audit.md`).",
            "",
            "| setting | as acquired | counts matched | counts and footprint matched | verdict | nuisance variables that differ by class (besides the physics of uptake) |",
            "|---|---|---|---|---|---|",
            f"| centre {result['center']}, {result['n_per_class']} per class, seed {result['seed']} | {cell(p)} | {cell(m)} | {cell(f)} | "
            f"**{result['verdict']}** | {flagged} |",
            "",
            *([result["tracing"], ""] if result.get("tracing") else []),
            f"Rerun: `{command if '--cards' in command else command + ' --cards'}`.",
        ]
    )


def update_model_cards(results: list[dict[str, Any]], command: str) -> list[Path]:
    """Write :func:`card_section` into the card of each audited task's bundle of the same name; returns the cards written."""
    from scintipipe.docs_markers import update_file
    from scintipipe.plugins import make_plugin_manager, tasks_and_bundles

    registered = tasks_and_bundles(make_plugin_manager()).bundles
    written = []
    for result in results:
        bundle = registered.get(result["task"])
        card = Path(bundle.path) / "docs" / "README.md" if bundle is not None else None
        if card is not None and card.is_file():
            update_file(card, CARD_MARKER, card_section(result, command))
            written.append(card)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", nargs="+", default=["uptake4", "disease"], help="tasks to audit (registered simulators)")
    parser.add_argument("--n-per-class", type=int, default=150)
    parser.add_argument("--center", default=None, help="centre profile (default: randomised if it exists, else b)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN_POINTS, help="pass within this many points of the majority rate")
    parser.add_argument(
        "--match-counts",
        action="store_true",
        help="also probe the removed images redrawn at the count preset (traces an excess to the count-preset physics of the uptake)",
    )
    parser.add_argument(
        "--match-footprint",
        action="store_true",
        help="also probe them with one fixed removal region for every case (traces an excess to the gland's size); implies --match-counts",
    )
    parser.add_argument("--note", default="", help="a line on what was audited (e.g. which simulator version)")
    parser.add_argument("--cards", action="store_true", help="also write each task's verdict into its bundle's model card (the docs' setting only)")
    parser.add_argument(
        "--from-json",
        type=Path,
        default=None,
        metavar="JSON",
        help="rewrite the report (to JSON's own path) and, with --cards, the cards from a shortcut_audit JSON of an earlier run (runs nothing)",
    )
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/shortcut_audit", help="output path without suffix")
    args = parser.parse_args(argv)
    if args.from_json is not None:
        if not args.from_json.is_file():
            parser.error(f"--from-json: {args.from_json} is not a file")
        try:
            saved = json.loads(args.from_json.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            parser.error(f"--from-json: cannot read {args.from_json}: {exc}")
        if not isinstance(saved, dict) or not {"results", "source", "command"} <= set(saved):
            parser.error(f"--from-json: {args.from_json} is not a shortcut_audit.py JSON (it needs results, source and command)")
        for result in saved["results"]:
            result["verdict"], result["tracing"] = verdict(result), tracing_sentence(result)
        write_report(saved["results"], saved["source"], args.from_json.with_suffix(""), saved["command"])
        print(f"rewrote {args.from_json.with_suffix('.md')} and .json")
        if args.cards:
            for card in update_model_cards(saved["results"], saved["command"]):
                print(f"wrote the shortcut-audit section of {card}")
        return 0 if all(r["verdict"] != "FAIL" for r in saved["results"]) else 1
    center = args.center or default_center()
    if center not in CENTERS:
        parser.error(f"unknown centre {center!r}; known: {', '.join(sorted(CENTERS))}")
    results = []
    for task in args.task:
        result = audit_task(
            task, center, args.n_per_class, args.seed, args.margin, match_counts=args.match_counts, match_footprint=args.match_footprint
        )
        p, m, f = result["probe"], result.get("probe_counts_matched"), result.get("probe_footprint_matched")
        matched = f"; counts matched {m['best_probe']} {_pct(m['accuracy'])} % [{_pct(m['lower'])}-{_pct(m['upper'])}]" if m is not None else ""
        matched += f"; footprint matched {f['best_probe']} {_pct(f['accuracy'])} % [{_pct(f['lower'])}-{_pct(f['upper'])}]" if f is not None else ""
        print(
            f"{task}: best probe {p['best_probe']} {_pct(p['accuracy'])} % [{_pct(p['lower'])}-{_pct(p['upper'])}]{matched} "
            f"vs majority {_pct(p['majority_rate'])} % -> {result['verdict']} ({result['seconds']} s)",
            flush=True,
        )
        results.append(result)
    command = shlex.join(["python", "benchmarks/shortcut_audit.py", *(sys.argv[1:] if argv is None else argv)])
    state = source_state()
    state["note"] = args.note
    write_report(results, state, args.out, command)
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    if args.cards:
        for card in update_model_cards(results, command):
            print(f"wrote the shortcut-audit section of {card}")
    return 0 if all(r["verdict"] != "FAIL" for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
