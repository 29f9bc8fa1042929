"""Does GAN augmentation help uptake4 on small training sets? (issue 18, seed 004)

One command runs the grid: training sizes (scans per class of simulated centre ``a``) x arms
x seeds, each model tested on simulated external centre ``b`` and on the real images in
``../shared/reference-scans`` (validation only: nothing trains, selects or stops on them).

Arms (every one trains with ``scintipipe.api.train_bundle``, the code of ``scintipipe train``,
on the same labelled files, which it splits 80/20 into training and validation folds):

- ``none``: the uptake4 recipe with its augmentation switched off (``augment: {}``);
- ``classical``: the shipped uptake4 recipe (flip, rotation, shift, zoom, gamma, blur, noise);
- ``dcgan``: ``classical`` plus ``--augment-with GAN:RATIO``: a class-conditional DCGAN trained
  on the **training fold only** (the same split ``train_bundle`` makes, so no validation
  image is seen by the GAN), checked by ``gan check`` with its default gates, sampled with
  every gate into the training fold;
- ``dcgan_srgan``: the same GAN, its 64-pixel samples raised to 96 by the SRGAN stage
  (``gan srgan train``, trained once per seed on simulated low/high pairs: extra phantoms of
  centre ``a``, labels unused) instead of a bilinear resize;
- ``cross_feature``: the cross-feature ResNet with its two phases (``gan cross-train``), the
  epochs split 70/30 between single-feature images and the cross-training set.

A GAN refused by its quality gates (a collapsed class, memorisation) is reported as refused,
not silently replaced. Paired statistics (same external scans): McNemar on accuracy and DeLong
on each class's one-vs-rest AUC (``scintipipe.evaluation``), per seed and pooled over seeds.

Every finished (size, seed, arm) is cached in ``WORK/cache/`` under a fingerprint of the
settings that change it; a rerun continues where it stopped, and a rerun with other GAN
settings retrains only the GAN arms. Writes
``benchmarks/results/gan_ablation.{json,md}``.

Usage::

    python benchmarks/gan_ablation.py                                  # the full grid (days on 2 CPU cores)
    python benchmarks/gan_ablation.py --sizes 25 100 --seeds 2 --epochs 10 --gan-steps 600 --sr-steps 200
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

ARMS = ("none", "classical", "dcgan", "dcgan_srgan", "cross_feature")
#: (A, B) pairs compared: what each arm adds over the one it builds on
COMPARISONS = (("classical", "none"), ("dcgan", "classical"), ("dcgan_srgan", "classical"), ("dcgan_srgan", "dcgan"), ("cross_feature", "classical"))
TASK = "uptake4"
#: tiny networks for the test of this script (``--tiny``)
TINY_GAN: dict[str, Any] = {"width": 8, "z_dim": 16, "batch_size": 8, "checkpoint_every": 1000}
TINY_SR: dict[str, Any] = {"width": 8, "blocks": 1, "disc_width": 8, "batch_size": 4, "n_pairs": 8, "checkpoint_every": 1000}


def simulate(folder: Path, n: int, seed: int, center: str, mix: str | None = None) -> Path:
    """``scintipipe simulate`` into ``folder`` once (skipped when its labels.csv exists)."""
    if not (folder / "labels.csv").is_file():
        from scintipipe.api import run_cli

        args = ["simulate", "--task", TASK, "--n", str(n), "--seed", str(seed), "--center", center, "--out", str(folder), "--no-progress"]
        run_cli(*args, *(["--class-mix", mix] if mix else []))
    return folder


def write_csv(path: Path, rows: list[tuple[Path, str]], base: Path) -> Path:
    """A ``file,label`` CSV of ``rows`` relative to ``base``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["file", "label"])
        writer.writerows((Path(p).relative_to(base).as_posix(), label) for p, label in rows)
    return path


def first_per_class(rows: list[tuple[Path, str]], n: int, labels: list[str]) -> list[tuple[Path, str]]:
    """The first ``n`` rows of each label (nested: a smaller size is a subset of a larger one)."""
    return [row for label in labels for row in [r for r in rows if r[1] == label][:n]]


def real_rows(reference: Path) -> tuple[list[tuple[Path, str]], list[tuple[str, ...]]]:
    """Scored uptake4 images of the reference folder: ``(path, placeholder label)`` rows and the accepted labels."""
    import real_images

    rows, accepted = [], []
    for image in real_images.discover(reference):
        expected = image.expected(TASK)
        if expected:
            rows.append((image.path, expected[0]))
            accepted.append(tuple(expected))
    return rows, accepted


class Evaluator:
    """Preprocesses the external and real sets once per preprocessing and scores a trained bundle on them."""

    def __init__(self, pm: Any, external: Path, reference: Path | None, labels: list[str]):
        from scintipipe.api import read_labels

        self.pm, self.labels = pm, labels
        self.sets: dict[str, tuple[list[tuple[Path, str]], list[tuple[str, ...]]]] = {}
        ext = read_labels(external / "labels.csv", external, labels)
        self.sets["external"] = (ext, [(label,) for _, label in ext])
        if reference is not None and reference.is_dir():
            self.sets["real"] = real_rows(reference)
        self._cache: dict[tuple[str, str], Any] = {}

    def inputs(self, bundle: Any, name: str) -> Any:
        """The set ``name`` through ``bundle``'s load, gate and preprocessing (cached per preprocessing)."""
        from scintipipe.api import classify_labelled

        key = (json.dumps(bundle.config.get("scan_transforms"), sort_keys=True), name)
        if key not in self._cache:
            self._cache[key] = classify_labelled(self.pm, bundle, self.sets[name][0], "cpu", False)
        return self._cache[key]

    def score(self, bundle_dir: Path) -> dict[str, Any]:
        """Per set: sources, truth index, accepted labels, probabilities of the bundle in ``bundle_dir``."""
        from scintipipe.api import Bundle, predict

        bundle = Bundle(bundle_dir)
        model = bundle.network("cpu")
        out = {}
        for name, (rows, accepted) in self.sets.items():
            data = self.inputs(bundle, name)
            by_source = {str(Path(p).resolve()): sorted(self.labels.index(a) for a in acc) for (p, _), acc in zip(rows, accepted, strict=True)}
            probs = predict(model, data.inputs, "cpu").numpy() if len(data.sources) else np.zeros((0, len(self.labels)))
            out[name] = {
                "sources": [str(s) for s in data.sources],
                "truth": [int(t) for t in data.targets],
                "accepted": [by_source.get(str(Path(s.split("#")[0]).resolve()), []) for s in data.sources],
                "probs": np.round(probs, 5).tolist(),
                "failures": [[s, r] for s, r in data.failures],
            }
        return out


def fingerprint(args: argparse.Namespace, arm: str) -> str:
    """Hash of every setting that changes this arm's result (a GAN setting does not change ``none``)."""
    keys = ["epochs", "n_external", "tiny"]
    if arm.startswith("dcgan"):
        keys += ["gan_steps", "gan_image_size", "ratio", "min_diversity", "check_per_class"]
    if arm == "dcgan_srgan":
        keys += ["sr_steps", "sr_pairs"]
    return hashlib.sha256(json.dumps({k: getattr(args, k) for k in keys}, sort_keys=True).encode()).hexdigest()[:16]


def recipe_for(arm: str, args: argparse.Namespace, seed: int, pm: Any) -> dict[str, Any]:
    """The uptake4 recipe with this run's epochs and seed (augmentation off for ``none``)."""
    from scintipipe.api import load_recipe

    recipe = load_recipe(TASK, pm)
    recipe.update(epochs=args.epochs, seed=seed)
    if arm == "none":
        recipe["augment"] = {}
    return recipe


def train_gan_for(run_dir: Path, pool: Path, train_csv: Path, seed: int, args: argparse.Namespace, log: Any) -> tuple[Path | None, str]:
    """Train and check the DCGAN on the training fold; ``(GAN folder or None, note)``."""
    from scintipipe_gan.data import find_bundle, load_real
    from scintipipe_gan.quality import Gates, check_gan
    from scintipipe_gan.train import GanSettings, read_config, train_gan

    gan_dir = run_dir / "gan"
    bundle = find_bundle(TASK)
    real = load_real(bundle, pool, train_csv, progress=False)
    sizes = TINY_GAN if args.tiny else {}
    settings = GanSettings(image_size=args.gan_image_size, steps=args.gan_steps, seed=seed, **sizes)
    if not (gan_dir / "config.json").is_file() or read_config(gan_dir)["steps_done"] < args.gan_steps:
        train_gan(TASK, bundle, real, gan_dir, settings, pool, train_csv, resume=(gan_dir / "config.json").is_file(), progress=False, log=log)
    report = check_gan(gan_dir, real, bundle, n_per_class=args.check_per_class, gates=Gates(min_diversity=args.min_diversity), seed=seed, log=log)
    if not report["passed"]:
        return None, f"refused by gan check: {', '.join(report['refused_classes'])} collapsed (min diversity {args.min_diversity})"
    return gan_dir, f"FID {report['fid']:.3g}, KID {report['kid']['mean']:.3g}"


def train_sr_for(work: Path, seed: int, args: argparse.Namespace, log: Any) -> Path:
    """The SRGAN stage of this seed (trained once, shared by every size)."""
    from scintipipe_gan.data import find_bundle
    from scintipipe_gan.superres import SRSettings, read_sr_config, train_srgan

    sr_dir = work / f"sr-s{seed}"
    sizes = TINY_SR if args.tiny else {"n_pairs": args.sr_pairs}
    settings = SRSettings(low_size=args.gan_image_size, steps=args.sr_steps, warmup_steps=args.sr_steps // 5, seed=seed, **sizes)
    if not (sr_dir / "config.json").is_file() or read_sr_config(sr_dir)["steps_done"] < args.sr_steps:
        train_srgan(TASK, find_bundle(TASK), sr_dir, settings, resume=(sr_dir / "config.json").is_file(), progress=False, log=log)
    return sr_dir


def run_arm(arm: str, run_dir: Path, pool: Path, csv_path: Path, seed: int, args: argparse.Namespace, pm: Any, log: Any) -> tuple[Path | None, str]:
    """Train one arm into ``run_dir/arm``; ``(bundle folder or None, note)``."""
    from scintipipe.api import ScintipipeError, train_bundle
    from scintipipe_gan.augment import train_with_gan
    from scintipipe_gan.cross_training import phase_recipes, train_cross_feature

    out = run_dir / arm
    quiet = {"progress": False, "log": log, "device": "cpu"}
    if arm in ("none", "classical"):
        train_bundle(pm, recipe_for(arm, args, seed, pm), pool, csv_path, out, **quiet)
        return out, ""
    if arm == "cross_feature":
        single, cross = phase_recipes(pm=pm)
        first = max(1, round(0.7 * args.epochs))
        single.update(epochs=first, seed=seed)
        cross.update(epochs=max(1, args.epochs - first), seed=seed)
        train_cross_feature(pm, pool, csv_path, out, single, cross, **quiet)
        return out, f"{first} + {max(1, args.epochs - first)} epochs"
    from scintipipe.api import read_labels
    from scintipipe.training.train import split_rows

    recipe = recipe_for("classical", args, seed, pm)
    train_rows, _ = split_rows(read_labels(csv_path, pool, recipe["labels"]), float(recipe["val_fraction"]), seed)
    gan_dir, note = train_gan_for(run_dir, pool, write_csv(run_dir / "train_fold.csv", train_rows, pool), seed, args, log)
    if gan_dir is None:
        return None, note
    sr_dir = train_sr_for(args.work, seed, args, log) if arm == "dcgan_srgan" else None
    try:
        train_with_gan(recipe, pool, csv_path, out, f"{gan_dir}:{args.ratio}", seed=seed, pm=pm, super_resolve=sr_dir, **quiet)
    except ScintipipeError as exc:
        return None, f"refused: {exc}"
    return out, note


def run_grid(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    """Run (or continue) every (size, seed, arm); returns the cached entries."""
    import torch

    from scintipipe.api import make_plugin_manager, read_labels

    torch.set_num_threads(args.threads)
    pm = make_plugin_manager()
    labels = list(recipe_for("classical", args, 0, pm)["labels"])
    work: Path = args.work
    external = simulate(work / f"external-b{args.n_external}", args.n_external, 202, "b")
    evaluator = Evaluator(pm, external, args.reference, labels)
    cache = work / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    entries: dict[str, Any] = {}
    for seed in range(args.seeds):
        pool = simulate(work / f"pool-a-s{seed}", 4 * max(args.sizes), 1000 + seed, "a", "balanced")
        rows = read_labels(pool / "labels.csv", pool, labels)
        for size in args.sizes:
            run_dir = work / f"s{seed}-n{size}"
            csv_path = write_csv(run_dir / "labels.csv", first_per_class(rows, size, labels), pool)
            for arm in args.arms:
                key = f"n{size}-s{seed}-{arm}"
                tag = fingerprint(args, arm)
                path = cache / f"{key}-{tag}.json"
                if path.is_file():
                    entries[key] = json.loads(path.read_text())
                    continue
                log(f"[{time.strftime('%H:%M:%S')}] {key}: training ...")
                started = time.perf_counter()
                bundle_dir, note = run_arm(arm, run_dir, pool, csv_path, seed, args, pm, log=lambda m: None)
                entry = {"size": size, "seed": seed, "arm": arm, "fingerprint": tag, "note": note, "seconds": round(time.perf_counter() - started, 1)}
                if bundle_dir is None:
                    entry["status"] = "refused"
                else:
                    entry["status"] = "ok"
                    entry["sets"] = evaluator.score(bundle_dir)
                path.write_text(json.dumps(entry) + "\n")
                entries[key] = entry
                log(f"[{time.strftime('%H:%M:%S')}] {key}: {entry['status']} {summarise(entry)} ({entry['seconds']} s) {note}")
    return {"labels": labels, "entries": entries, "external": str(external), "fingerprint": {arm: fingerprint(args, arm) for arm in args.arms}}


def correct(set_: dict[str, Any]) -> np.ndarray:
    """Per case: is the arg-max one of the accepted labels?"""
    probs = np.asarray(set_["probs"])
    return np.array([int(p.argmax()) in acc for p, acc in zip(probs, accepted_index(set_), strict=True)], dtype=bool)


def accepted_index(set_: dict[str, Any]) -> list[set[int]]:
    """Accepted label indices per case (the truth, or for a real NG image heterogeneous or focal_increased)."""
    return [set(acc) or {int(t)} for t, acc in zip(set_["truth"], set_["accepted"], strict=True)]


def summarise(entry: dict[str, Any]) -> str:
    if entry.get("status") != "ok":
        return ""
    parts = []
    for name, set_ in entry["sets"].items():
        c = correct(set_)
        parts.append(f"{name} {int(c.sum())}/{len(c)}")
    return ", ".join(parts)


def macro_auc(set_: dict[str, Any], n_classes: int) -> float | None:
    """Mean one-vs-rest AUC over the classes present (external set)."""
    from sklearn.metrics import roc_auc_score

    probs, truth = np.asarray(set_["probs"]), np.asarray(set_["truth"])
    aucs = [roc_auc_score(truth == c, probs[:, c]) for c in range(n_classes) if 0 < (truth == c).sum() < len(truth)]
    return float(np.mean(aucs)) if aucs else None


def analyse(grid: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Per (size, arm) summaries and the paired comparisons."""
    from scintipipe.evaluation import delong_test, mcnemar_test

    labels = grid["labels"]
    entries = grid["entries"]
    summary: dict[str, Any] = {}
    for size in args.sizes:
        for arm in args.arms:
            runs = [entries.get(f"n{size}-s{seed}-{arm}") for seed in range(args.seeds)]
            ok = [r for r in runs if r and r.get("status") == "ok"]
            row: dict[str, Any] = {
                "size": size,
                "arm": arm,
                "runs": len(ok),
                "refused": [r["note"] for r in runs if r and r.get("status") == "refused"],
            }
            if ok:
                ext = [correct(r["sets"]["external"]).mean() for r in ok]
                row["external_accuracy"] = {"mean": float(np.mean(ext)), "sd": float(np.std(ext, ddof=1)) if len(ext) > 1 else 0.0, "per_seed": ext}
                aucs = [macro_auc(r["sets"]["external"], len(labels)) for r in ok]
                row["external_macro_auc"] = float(np.mean([a for a in aucs if a is not None])) if any(a is not None for a in aucs) else None
                if "real" in ok[0]["sets"]:
                    real = [correct(r["sets"]["real"]) for r in ok]
                    row["real"] = {
                        "correct": int(sum(c.sum() for c in real)),
                        "n": int(sum(len(c) for c in real)),
                        "per_seed": [int(c.sum()) for c in real],
                    }
            summary[f"n{size}-{arm}"] = row
    comparisons = []
    for size in args.sizes:
        for a, b in COMPARISONS:
            if a not in args.arms or b not in args.arms:
                continue
            pairs = [(entries.get(f"n{size}-s{s}-{a}"), entries.get(f"n{size}-s{s}-{b}")) for s in range(args.seeds)]
            pairs = [(x, y) for x, y in pairs if x and y and x.get("status") == "ok" and y.get("status") == "ok"]
            entry: dict[str, Any] = {"size": size, "a": a, "b": b, "seeds": len(pairs)}
            if pairs:
                per_seed, pooled_a, pooled_b, real_a, real_b = [], [], [], [], []
                for x, y in pairs:
                    ca, cb = correct(x["sets"]["external"]), correct(y["sets"]["external"])
                    pa, pb, truth = (
                        np.asarray(x["sets"]["external"]["probs"]),
                        np.asarray(y["sets"]["external"]["probs"]),
                        np.asarray(x["sets"]["external"]["truth"]),
                    )
                    delong = {
                        label: delong_test((truth == c).astype(int), pa[:, c], pb[:, c])
                        for c, label in enumerate(labels)
                        if 0 < (truth == c).sum() < len(truth)
                    }
                    per_seed.append(
                        {
                            "delta_accuracy": float(ca.mean() - cb.mean()),
                            "mcnemar": mcnemar_test(ca, cb),
                            "delong": {k: {key: v[key] for key in ("auc_a", "auc_b", "difference", "p_value")} for k, v in delong.items()},
                        }
                    )
                    pooled_a.append(ca)
                    pooled_b.append(cb)
                    if "real" in x["sets"]:
                        real_a.append(correct(x["sets"]["real"]))
                        real_b.append(correct(y["sets"]["real"]))
                entry["per_seed"] = per_seed
                entry["delta_accuracy_mean"] = float(np.mean([p["delta_accuracy"] for p in per_seed]))
                entry["mcnemar_pooled"] = mcnemar_test(np.concatenate(pooled_a), np.concatenate(pooled_b))
                entry["delong_significant"] = sorted(
                    f"{label}{'+' if d['difference'] > 0 else '-'}(seed {i})"
                    for i, p in enumerate(per_seed)
                    for label, d in p["delong"].items()
                    if d["p_value"] < 0.05
                )
                if real_a and len(np.concatenate(real_a)):
                    entry["real_mcnemar_pooled"] = mcnemar_test(np.concatenate(real_a), np.concatenate(real_b))
            comparisons.append(entry)
    return {"summary": summary, "comparisons": comparisons}


def render(results: dict[str, Any]) -> str:
    """The markdown report."""
    s = results["settings"]
    lines = [
        "# GAN augmentation ablation (issue 18): uptake4, train centre a, test centre b and real images",
        "",
        f"Scale: sizes {s['sizes']} scans per class (80/20 training/validation split inside), seeds {s['seeds']}, arms {', '.join(s['arms'])}; "
        f"{s['epochs']} epochs; DCGAN {s['gan_steps']} steps at {s['gan_image_size']} px, ratio {s['ratio']} synthetic per real training view, `gan check` collapse gate {s['min_diversity']} (default 0.3); "
        f"SRGAN {s['sr_steps']} steps on {s['sr_pairs']} simulated pairs; external: {s['n_external']} simulated centre-b scans (paper mix); "
        f"real: the scored uptake4 images of the reference folder (validation only). Wall time {results['seconds'] / 60:.0f} min.",
        "",
        f"Command: `{results['command']}`",
        "",
        "| size/class | arm | runs | external acc. (mean ± SD) | external macro AUC | real correct (all seeds) | refused |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in results["summary"].values():
        acc, auc, real = row.get("external_accuracy"), row.get("external_macro_auc"), row.get("real")
        cells = [
            str(row["size"]),
            row["arm"],
            str(row["runs"]),
            f"{100 * acc['mean']:.1f} ± {100 * acc['sd']:.1f}" if acc else "-",
            f"{auc:.3f}" if auc is not None else "-",
            f"{real['correct']}/{real['n']}" if real else "-",
            "; ".join(row["refused"]),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        "Paired comparisons on the same external scans (A vs B). McNemar p per seed and pooled over seeds (cases x seeds); "
        "DeLong: classes whose one-vs-rest AUC differed at p < 0.05 in a seed (+: A higher). Real: McNemar over images x seeds.",
        "",
        "| size/class | A vs B | seeds | Δ external acc. (pp, mean) | McNemar p per seed | McNemar p pooled | DeLong p < 0.05 | real A-only/B-only, p |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for c in results["comparisons"]:
        if not c["seeds"]:
            lines.append(f"| {c['size']} | {c['a']} vs {c['b']} | 0 | - | - | - | - | - |")
            continue
        real = c.get("real_mcnemar_pooled")
        lines.append(
            f"| {c['size']} | {c['a']} vs {c['b']} | {c['seeds']} | {100 * c['delta_accuracy_mean']:+.1f} | "
            + ", ".join(f"{p['mcnemar']['p_value']:.3g}" for p in c["per_seed"])
            + f" | {c['mcnemar_pooled']['p_value']:.3g} | {', '.join(c['delong_significant']) or 'none'} | "
            + (f"{real['a_only_correct']}/{real['b_only_correct']}, {real['p_value']:.3g} |" if real else "- |")
        )
    return "\n".join(lines) + "\n"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[25, 50, 100, 400], help="scans per class of centre a")
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 (each its own simulated pool, split and training seed)")
    parser.add_argument("--arms", nargs="+", default=list(ARMS), choices=ARMS)
    parser.add_argument("--epochs", type=int, default=30, help="classifier epochs (cross_feature: split 70/30 over its two phases)")
    parser.add_argument("--gan-steps", type=int, default=3000)
    parser.add_argument("--gan-image-size", type=int, default=64, choices=[16, 32, 64, 128])
    parser.add_argument("--sr-steps", type=int, default=1000)
    parser.add_argument("--sr-pairs", type=int, default=256)
    parser.add_argument("--ratio", type=float, default=1.0, help="synthetic views per real training view and label")
    parser.add_argument("--min-diversity", type=float, default=0.3, help="gan check's collapse gate (0 turns it off: for the test only)")
    parser.add_argument("--check-per-class", type=int, default=32, help="gan check's synthetic images per class")
    parser.add_argument("--n-external", type=int, default=302, help="simulated centre-b scans (the paper's external mix)")
    parser.add_argument("--reference", type=Path, default=ROOT.parent / "shared" / "reference-scans", help="real images (validation only)")
    parser.add_argument("--work", type=Path, default=ROOT / "data" / "gan_ablation", help="simulated data, GANs, bundles and the result cache")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "gan_ablation", help="results stem (.json, .md)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--tiny", action="store_true", help="tiny GAN and SR networks (for the test of this script)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    started = time.perf_counter()
    grid = run_grid(args)
    results = {
        "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "command": "python benchmarks/gan_ablation.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "fingerprint": grid["fingerprint"],
        "labels": grid["labels"],
        "seconds": time.perf_counter() - started,
        **analyse(grid, args),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(results, indent=1, default=float) + "\n")
    args.out.with_suffix(".md").write_text(render(results))
    print(f"wrote {args.out.with_suffix('.md')} and .json")
    return results


if __name__ == "__main__":
    main()
