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

from scintipipe.simulate.audit import DEFAULT_MARGIN_POINTS, audit_simulator  # noqa: E402
from scintipipe.simulate.centers import CENTERS  # noqa: E402


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


def audit_task(task: str, center: str, n_per_class: int, seed: int, margin: float) -> dict[str, Any]:
    """Run the probe and the nuisance table for one task."""
    simulator = get_simulator(task)
    started = time.perf_counter()
    audit = audit_simulator(simulator, CENTERS[center], n_per_class, seed, margin)
    return {
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


def task_markdown(result: dict[str, Any]) -> list[str]:
    """The Markdown section of one task."""
    probe, table = result["probe"], result["nuisance"]
    verdict = "PASS" if probe["passed"] else "FAIL"
    lines = [
        f"## {result['task']} (centre {result['center']}, {result['n_per_class']} per class, n = {result['n']}, seed {result['seed']})",
        "",
        f"**{verdict}**: best probe `{probe['best_probe']}` {_pct(probe['accuracy'])} % "
        f"[95 % CI {_pct(probe['lower'])}-{_pct(probe['upper'])}] vs majority rate {_pct(probe['majority_rate'])} % "
        f"({probe['excess_points']:+.1f} points; pass within {probe['margin_points']:.0f}).",
        "",
        "| probe | accuracy % | 95 % CI |",
        "|---|---|---|",
    ]
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
        lines.append(f"| {entry['variable']} | {entry['kind']} | " + " | ".join(cells) + f" | {entry['epsilon2']:.3f} | {entry['p_bonferroni']:.2g} | {flag} |")
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
        "| task | centre | n | best probe accuracy % [95 % CI] | majority % | excess (points) | verdict | flagged nuisance variables outside the thyroid |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        p = r["probe"]
        flagged = ", ".join(f"`{e['variable']}`" for e in r["nuisance"]["variables"] if e["flagged"] and e["kind"] not in ("physics of uptake", "thyroid")) or "none"
        lines.append(
            f"| {r['task']} | {r['center']} | {r['n']} | {_pct(p['accuracy'])} [{_pct(p['lower'])}-{_pct(p['upper'])}] | {_pct(p['majority_rate'])} | "
            f"{p['excess_points']:+.1f} | {'PASS' if p['passed'] else 'FAIL'} | {flagged} |"
        )
    for r in results:
        lines += [""] + task_markdown(r)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    payload = {"command": command, "source": state, "results": results}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=1) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--task", nargs="+", default=["uptake4", "disease"], help="tasks to audit (registered simulators)")
    parser.add_argument("--n-per-class", type=int, default=150)
    parser.add_argument("--center", default=None, help="centre profile (default: randomised if it exists, else b)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--margin", type=float, default=DEFAULT_MARGIN_POINTS, help="pass within this many points of the majority rate")
    parser.add_argument("--note", default="", help="a line on what was audited (e.g. which simulator version)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/shortcut_audit", help="output path without suffix")
    args = parser.parse_args(argv)
    center = args.center or default_center()
    if center not in CENTERS:
        parser.error(f"unknown centre {center!r}; known: {', '.join(sorted(CENTERS))}")
    results = []
    for task in args.task:
        result = audit_task(task, center, args.n_per_class, args.seed, args.margin)
        p = result["probe"]
        print(f"{task}: best probe {p['best_probe']} {_pct(p['accuracy'])} % [{_pct(p['lower'])}-{_pct(p['upper'])}] vs majority {_pct(p['majority_rate'])} % -> {'PASS' if p['passed'] else 'FAIL'} ({result['seconds']} s)", flush=True)
        results.append(result)
    command = shlex.join(["python", "benchmarks/shortcut_audit.py", *(sys.argv[1:] if argv is None else argv)])
    state = source_state()
    state["note"] = args.note
    write_report(results, state, args.out, command)
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return 0 if all(r["probe"]["passed"] for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
