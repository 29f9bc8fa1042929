"""Quality gates for synthetic scans, with nothing downloaded.

No Inception weights can be fetched, so every measure uses the task bundle's own trained
network: the features are the input of its last linear layer (for ScintiNet the global
average and maximum pooled last stage, 192 numbers), computed on real and synthetic
images mapped through the same :func:`scintipipe_gan.data.to_bundle`.

* **FID**: :class:`monai.metrics.FIDMetric` on those features.
* **KID** (Bińkowski et al. 2018): the unbiased MMD² with the polynomial kernel
  ``(x.y / d + 1)^3``, averaged over random subsets (:func:`kid`; MONAI's
  :class:`~monai.metrics.MMDMetric` has a linear kernel only).
* **Diversity per class**: the mean pairwise feature distance among a class's synthetic
  images over the same among its real images. Below ``min_diversity`` the class has
  collapsed, and ``scintipipe gan sample`` refuses to draw from it.
* **Memorisation**: for each synthetic image, the Pearson correlation of its pixels
  (``MEMORISATION_SIZE`` square, in GAN space) with its nearest training image. A sample
  above ``max_similarity`` is a near copy; ``sample`` redraws it, and the report gives the
  real images' own nearest-neighbour correlations for scale.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from scintipipe_gan import QUALITY, REFERENCE
from scintipipe_gan.data import RealSet, to_bundle, to_gan

#: side of the images memorisation compares (pixels; GAN images are downsampled to it)
MEMORISATION_SIZE = 32


@dataclass
class Gates:
    """The bounds the checks apply.

    Attributes:
        min_diversity: a class whose synthetic diversity is below this share of the real
            diversity has collapsed.
        max_similarity: a sample whose correlation with its nearest training image is
            above this is a near copy.
    """

    min_diversity: float = 0.3
    max_similarity: float = 0.97


# ---- features ------------------------------------------------------------------------


def penultimate_features(network: torch.nn.Module, inputs: torch.Tensor, batch_size: int = 128) -> torch.Tensor:
    """The inputs of ``network``'s last :class:`torch.nn.Linear` layer, ``(N, D)``, in eval mode."""
    linear = [m for m in network.modules() if isinstance(m, torch.nn.Linear)]
    if not linear:
        raise ValueError(f"{type(network).__name__} has no linear layer whose input could serve as features")
    captured: list[torch.Tensor] = []
    handle = linear[-1].register_forward_hook(lambda module, args, output: captured.append(args[0].detach().flatten(1).float().cpu()))
    network.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(inputs), batch_size):
                network(inputs[start : start + batch_size])
    finally:
        handle.remove()
    return torch.cat(captured) if captured else torch.empty(0, 0)


# ---- distances ------------------------------------------------------------------------


def fid(fake: torch.Tensor, real: torch.Tensor) -> float:
    """Fréchet distance between two sets of feature vectors (:class:`monai.metrics.FIDMetric`)."""
    from monai.metrics import FIDMetric

    if len(fake) < 2 or len(real) < 2:
        raise ValueError("FID needs at least two feature vectors on each side")
    with warnings.catch_warnings():  # fewer images than features: singular covariances, which FIDMetric handles
        warnings.simplefilter("ignore")
        return max(0.0, float(FIDMetric()(fake.double(), real.double())))


def polynomial_mmd2(x: torch.Tensor, y: torch.Tensor, degree: int = 3, gamma: float | None = None, coef: float = 1.0) -> float:
    """Unbiased MMD² between ``x`` and ``y`` with the kernel ``(gamma x.y + coef)^degree`` (gamma 1/D by default)."""
    x, y = x.double(), y.double()
    gamma = 1.0 / x.shape[1] if gamma is None else gamma
    kxx = (gamma * x @ x.T + coef) ** degree
    kyy = (gamma * y @ y.T + coef) ** degree
    kxy = (gamma * x @ y.T + coef) ** degree
    m, n = len(x), len(y)
    term_x = (kxx.sum() - kxx.diagonal().sum()) / (m * (m - 1))
    term_y = (kyy.sum() - kyy.diagonal().sum()) / (n * (n - 1))
    return float(term_x + term_y - 2 * kxy.mean())


def kid(fake: torch.Tensor, real: torch.Tensor, subsets: int = 20, subset_size: int = 1000, seed: int = 0) -> tuple[float, float]:
    """Kernel Inception Distance (on this project's features): mean and SD over random subsets."""
    size = min(subset_size, len(fake), len(real))
    if size < 2:
        raise ValueError("KID needs at least two feature vectors on each side")
    rng = torch.Generator().manual_seed(seed)
    values = []
    for _ in range(subsets):
        i = torch.randperm(len(fake), generator=rng)[:size]
        j = torch.randperm(len(real), generator=rng)[:size]
        values.append(polynomial_mmd2(fake[i], real[j]))
    t = torch.tensor(values)
    return float(t.mean()), float(t.std()) if len(t) > 1 else 0.0


def mean_pairwise_distance(features: torch.Tensor) -> float | None:
    """Mean Euclidean distance over distinct pairs (``None`` for fewer than two)."""
    n = len(features)
    if n < 2:
        return None
    d = torch.cdist(features.double(), features.double())
    return float(d.sum() / (n * (n - 1)))


def _standardised(images: torch.Tensor) -> torch.Tensor:
    """Images downsampled to ``MEMORISATION_SIZE``, flattened, zero mean and unit norm each."""
    x = images.float()
    if x.shape[-1] > MEMORISATION_SIZE:
        x = F.interpolate(x, size=(MEMORISATION_SIZE, MEMORISATION_SIZE), mode="area")
    x = x.flatten(1)
    x = x - x.mean(1, keepdim=True)
    return x / x.norm(dim=1, keepdim=True).clamp_min(1e-8)


def nearest_similarity(samples: torch.Tensor, reference: torch.Tensor, exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """For each sample, the highest pixel correlation with a reference image, and that image's index.

    Args:
        samples: GAN images, or their :func:`_standardised` form (2-D).
        reference: the training images, likewise.
        exclude_self: ``samples`` is ``reference``: skip each image's match with itself.
    """
    a = samples if samples.dim() == 2 else _standardised(samples)
    b = reference if reference.dim() == 2 else _standardised(reference)
    sim = a @ b.T
    if exclude_self:
        sim.fill_diagonal_(-math.inf)
    best, index = sim.max(1)
    return best, index


# ---- the check ------------------------------------------------------------------------


def check_gan(
    gan_dir: Path, real: RealSet, bundle: Any, n_per_class: int = 64, gates: Gates | None = None, seed: int = 1, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Measure a GAN against real scans and write ``quality.json`` and the memorisation reference.

    Args:
        gan_dir: the GAN folder.
        real: the labelled scans to compare with (the training data, for memorisation).
        bundle: the task bundle whose network gives the features.
        n_per_class: synthetic images per class.
        gates: the bounds (defaults: :class:`Gates`).
        seed: the draws.
        log: where the summary goes.

    Returns:
        The report (also ``gan_dir/quality.json``).
    """
    from scintipipe_gan.train import generate, load_generator

    gates = gates or Gates()
    generator, config = load_generator(gan_dir)
    if list(config["labels"]) != list(real.labels):
        raise ValueError(f"the GAN's labels {config['labels']} differ from the data's {real.labels}")
    s = config["settings"]
    input_size, input_max = config["input_size"], s["input_max"]
    network = bundle.network("cpu")
    real_gan = to_gan(real.inputs, s["image_size"], input_max)
    real_features = penultimate_features(network, to_bundle(real_gan, input_size, input_max))
    present = [i for i, n in enumerate(torch.bincount(real.targets, minlength=len(real.labels)).tolist()) if n > 0]
    fake_targets = torch.tensor(present).repeat_interleave(n_per_class)
    fake = generate(generator, fake_targets, seed)
    fake_features = penultimate_features(network, to_bundle(fake, input_size, input_max))

    reference = _standardised(real_gan)
    sample_sim, _ = nearest_similarity(_standardised(fake), reference)
    real_sim, _ = nearest_similarity(reference, reference, exclude_self=True) if len(reference) > 1 else (torch.empty(0), None)

    per_class: dict[str, Any] = {}
    for index, label in enumerate(real.labels):
        real_c = real_features[real.targets == index]
        fake_c = fake_features[fake_targets == index]
        real_div = mean_pairwise_distance(real_c)
        fake_div = mean_pairwise_distance(fake_c)
        ratio = None if real_div in (None, 0.0) or fake_div is None else fake_div / real_div
        if not len(fake_c):
            reason = "no real images of this class: nothing was generated"
        elif ratio is None:
            reason = "fewer than two real images of this class: diversity not measurable"
        elif ratio < gates.min_diversity:
            reason = f"collapsed: synthetic diversity {ratio:.2f} of the real, below {gates.min_diversity}"
        else:
            reason = None
        sims = sample_sim[fake_targets == index]
        per_class[label] = {
            "real_views": int(len(real_c)),
            "synthetic": int(len(fake_c)),
            "real_diversity": real_div,
            "synthetic_diversity": fake_div,
            "diversity_ratio": ratio,
            "refused": reason is not None,
            "reason": reason,
            "fid": fid(fake_c, real_c) if len(fake_c) >= 2 and len(real_c) >= 2 else None,
            "above_similarity_bound": int((sims > gates.max_similarity).sum()),
        }
    kid_mean, kid_sd = kid(fake_features, real_features, seed=seed)
    report: dict[str, Any] = {
        "gan": str(gan_dir),
        "generator_step": int(config["steps_done"]),
        "features": f"penultimate layer of bundle {bundle.name!r} ({real_features.shape[1]} features; nothing downloaded)",
        "real": {"views": len(real.sources), "data_hash": real.data_hash, "same_data_as_training": real.data_hash == config["data"]["hash"]},
        "synthetic_per_class": n_per_class,
        "seed": seed,
        "fid": fid(fake_features, real_features),
        "kid": {"mean": kid_mean, "sd": kid_sd, "kernel": "(x.y/d + 1)^3", "subsets": 20},
        "gates": asdict(gates),
        "per_class": per_class,
        "memorisation": {
            "measure": f"Pearson correlation of {MEMORISATION_SIZE}x{MEMORISATION_SIZE} pixels with the nearest training image",
            "bound": gates.max_similarity,
            "synthetic_nearest": _stats(sample_sim),
            "real_to_other_real_nearest": _stats(real_sim),
            "above_bound": int((sample_sim > gates.max_similarity).sum()),
        },
        "refused_classes": [label for label, row in per_class.items() if row["refused"]],
    }
    report["passed"] = not report["refused_classes"] and report["real"]["same_data_as_training"]
    gan_dir = Path(gan_dir)
    (gan_dir / QUALITY).write_text(json.dumps(report, indent=2) + "\n")
    torch.save({"images": reference.half(), "sources": real.sources, "data_hash": real.data_hash, "size": MEMORISATION_SIZE}, gan_dir / REFERENCE)
    if not report["real"]["same_data_as_training"]:
        log(
            "note: --data is not the data the GAN was trained on (other hash): memorisation was measured against other images, and sample refuses until check runs on the training data"
        )
    log(format_report(report))
    return report


def _stats(values: torch.Tensor) -> dict[str, float | None]:
    if not len(values):
        return {"median": None, "max": None, "min": None}
    v = values.double()
    return {"median": float(v.median()), "max": float(v.max()), "min": float(v.min())}


def format_report(report: dict[str, Any]) -> str:
    """The check as a few lines of text."""
    lines = [
        f"GAN step {report['generator_step']}, {report['real']['views']} real views, {report['synthetic_per_class']} synthetic per class; features: {report['features']}",
        f"FID {report['fid']:.4g}   KID {report['kid']['mean']:.4g} +- {report['kid']['sd']:.2g}",
    ]
    for label, row in report["per_class"].items():
        ratio = "n/a" if row["diversity_ratio"] is None else f"{row['diversity_ratio']:.2f}"
        verdict = f"REFUSED ({row['reason']})" if row["refused"] else "ok"
        lines.append(f"  {label}: real {row['real_views']}, diversity ratio {ratio}, near copies {row['above_similarity_bound']}: {verdict}")
    m = report["memorisation"]
    med = m["synthetic_nearest"]["median"]
    real_med = m["real_to_other_real_nearest"]["median"]
    lines.append(
        f"memorisation: nearest-training correlation median {med if med is None else round(med, 3)} (real to other real: {real_med if real_med is None else round(real_med, 3)}); {m['above_bound']} above the bound {m['bound']}"
    )
    lines.append(
        "passed"
        if report["passed"]
        else f"not passed: refused classes {report['refused_classes'] or 'none'}; same data as training: {report['real']['same_data_as_training']}"
    )
    return "\n".join(lines)


def read_quality(gan_dir: Path) -> dict[str, Any] | None:
    """``quality.json`` of a GAN folder (``None`` before ``scintipipe gan check``)."""
    path = Path(gan_dir) / QUALITY
    return json.loads(path.read_text()) if path.is_file() else None
