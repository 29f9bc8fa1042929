"""Draw the plugin's documentation pictures from simulated studies (seconds on a CPU).

    python plugins/scintipipe-remnant/benchmarks/make_figures.py

Writes ``docs/simulated_studies.png`` (two studies per class, anterior and posterior) and
``docs/preprocessing_steps.png`` (every preprocessing step on one study's anterior view).
"""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from monai.transforms import Resized

from scintipipe.api import display_image, make_scan
from scintipipe_remnant import transforms as T
from scintipipe_remnant.center import REMNANT_CENTER
from scintipipe_remnant.simulator import simulate_remnant_case

DOCS = Path(__file__).resolve().parents[1] / "docs"


def studies_figure(path: Path) -> None:
    """Two studies per label, anterior above posterior."""
    cases = [
        (label, simulate_remnant_case(np.random.default_rng(seed), REMNANT_CENTER, label))
        for label, seed in (("absent", 1), ("absent", 2), ("present", 3), ("present", 4))
    ]
    fig, axes = plt.subplots(2, 4, figsize=(12, 6.4))
    for column, (label, case) in enumerate(cases):
        for row, (view, image) in enumerate((("anterior", case.counts), ("posterior", case.posterior.counts))):
            axes[row, column].imshow(display_image(image), cmap="gray_r")
            axes[row, column].set_title(f"{label}, {view}", fontsize=9)
            axes[row, column].axis("off")
    fig.suptitle("Simulated 131I neck studies (HE collimator, 364 keV, 256 x 256, 2.4 mm): salivary glands, mouth, stomach in both classes")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def steps_figure(path: Path, size: int = 224) -> None:
    """Each preprocessing step on one anterior view with residual tissue."""
    case = simulate_remnant_case(np.random.default_rng(3), REMNANT_CENTER, "present")
    image = make_scan(case.counts, "sim.dcm", spacing=(case.pixel_mm, case.pixel_mm), modality="NM", is_counts=True)["image"]
    equalised = T.EqualizeHistogram()(image)
    clahe = T.EqualizeHistogram(clahe=True)(image)
    cut = T.GrabCutThyroidBed()(equalised)
    crop = T.CropThyroidBed()(cut)
    resized = Resized(keys="image", spatial_size=(size, size), mode="bilinear")({"image": crop})["image"]
    standard = T.StandardizeChannels()(resized)
    row0, col0, height, width = cut.meta["thyroid_bed_box"]
    overlay = np.dstack([equalised.numpy()[0]] * 3)
    overlay[cut.meta["thyroid_bed_mask"]] = overlay[cut.meta["thyroid_bed_mask"]] * 0.5 + np.array([0.5, 0.0, 0.0])
    panels = [
        ("1. counts (anterior)", display_image(case.counts), "gray_r"),
        ("2a. histogram equalised", equalised.numpy()[0], "gray"),
        ("2b. CLAHE (option)", clahe.numpy()[0], "gray"),
        ("3. GrabCut: box, mask (red)", overlay, None),
        ("4. background removed", cut.numpy()[0], "gray"),
        (f"5. cropped to the bed ({height}x{width})", crop.numpy()[0], "gray"),
        (f"6. resized {size}x{size}", resized.numpy()[0], "gray"),
        ("7. standardised", standard.numpy()[0], "gray"),
    ]
    fig, axes = plt.subplots(2, 4, figsize=(13, 6.8))
    for ax, (title, picture, cmap) in zip(axes.ravel(), panels, strict=True):
        ax.imshow(picture, cmap=cmap)
        ax.set_title(title, fontsize=9)
        ax.axis("off")
    axes[0, 3].add_patch(plt.Rectangle((col0, row0), width, height, fill=False, edgecolor="yellow", linewidth=1))
    fig.suptitle("The paper's preprocessing (scintipipe_remnant.transforms) on a simulated study with residual tissue")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    DOCS.mkdir(exist_ok=True)
    studies_figure(DOCS / "simulated_studies.png")
    steps_figure(DOCS / "preprocessing_steps.png")
    print(f"wrote {DOCS / 'simulated_studies.png'} and {DOCS / 'preprocessing_steps.png'}")
