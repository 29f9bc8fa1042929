"""Shortcut audit of a simulator: can the class be read off the scan without the thyroid?

The classes of a task are defined by the thyroid (uptake, size, nodules, texture). If a
classifier can still tell them apart once the thyroid is gone, the simulator has tied some
nuisance property (salivary or blood-pool level, head activity, position, timing ...) to
the class, and a network trained on it may learn that shortcut instead of the gland.

Three pieces, used by ``benchmarks/shortcut_audit.py`` (method: docs/shortcut_audit.md):

* :func:`remove_thyroid` replaces the gland (and its scatter halo) by background counts;
  with ``match_counts=True`` it redraws what is left at the count preset, the control that
  separates the count-preset physics of the class-defining uptake from a shortcut;
* :func:`probe_accuracy` trains cheap but strong probes on those images, after the same
  preprocessing as the ``uptake4`` models, and reports cross-validated accuracy against
  the majority-class rate;
* :func:`nuisance_table` compares every nuisance variable across classes
  (Kruskal-Wallis), flagging those that separate them.

Example:
    >>> import numpy as np
    >>> from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
    >>> from scintipipe.simulate.audit import remove_thyroid
    >>> case = UPTAKE4_SIMULATOR(np.random.default_rng(0), CENTERS["b"], "diffusely_increased")
    >>> remove_thyroid(case).shape
    (128, 128)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage, sparse, stats
from scipy.sparse.linalg import spsolve

from scintipipe.simulate.camera import CAMERAS
from scintipipe.simulate.case import SimulatedCase
from scintipipe.simulate.centers import CenterProfile

#: structures removed with the gland (``thyroid`` already holds lobes, isthmus, pyramidal lobe)
THYROID_MASKS = ("thyroid", "nodules")
#: margin around the gland, about 1.5 times the LEHR FWHM at 10 cm (7.4 mm)
DEFAULT_MARGIN_MM = 12.0
#: grid (mm) on which the background of fine images is solved (the models' 2.2 mm)
FILL_GRID_MM = 2.2
#: the pass criterion: probe accuracy at most this far above the majority-class rate
DEFAULT_MARGIN_POINTS = 5.0
#: the uptake4 bundle's recipe; its ``scan_transforms`` are the models' preprocessing
PREPROCESSING_RECIPE = "uptake4"
#: the footprint-matched control's removal region (width, height mm) around the gland's
#: centroid: on a calibration draw (seed 100, centre b, both tasks) the dilated masks reached
#: at most 54 mm sideways and 63 mm up or down; about 8 mm more
FIXED_FOOTPRINT_MM = (124.0, 140.0)
#: organs the fixed region spares (kept as they were acquired), dilated by :data:`SPARED_MARGIN_MM`
SPARED_MASKS = (
    "salivary_glands",
    "parotid_right",
    "parotid_left",
    "submandibular_right",
    "submandibular_left",
    "oral_cavity",
    "oesophagus",
    "markers",
)
SPARED_MARGIN_MM = 6.0


# ---- removing the thyroid --------------------------------------------------------------


def thyroid_region(case: SimulatedCase, margin_mm: float | None = None) -> np.ndarray:
    """The gland's footprint (lobes, isthmus, pyramidal lobe, nodules) dilated by ``margin_mm``.

    Args:
        case: a simulated case with ``masks``.
        margin_mm: dilation radius, of the order of the camera blur; default
            :func:`default_margin_mm`.

    Returns:
        A boolean array of the detector's shape.
    """
    margin_mm = default_margin_mm(case) if margin_mm is None else margin_mm
    shape = case.counts.shape
    mask = np.zeros(shape, bool)
    for name in THYROID_MASKS:
        if name in case.masks:
            mask |= np.asarray(case.masks[name], bool)
    return _dilate(mask, margin_mm / case.pixel_mm)


def fixed_region(case: SimulatedCase, size_mm: tuple[float, float] = FIXED_FOOTPRINT_MM, margin_mm: float | None = None) -> tuple[np.ndarray, bool]:
    """A removal region of one size for every case: a rectangle around the gland, united with its mask.

    The usual region (:func:`thyroid_region`) has the gland's own footprint, whose size is
    class-defining (an enlarged Graves gland leaves a larger filled patch than a small
    thyroiditis gland). The footprint-matched control removes this rectangle instead, so
    that a probe cannot read the gland's size off the fill. The other organs inside the
    rectangle (:data:`SPARED_MASKS`, dilated by :data:`SPARED_MARGIN_MM`) are spared, so
    that a shortcut in the salivary glands, the mouth or the oesophagus would still show;
    the region's shape then follows only their (class-independent) positions.

    Args:
        case: a simulated case with ``masks``.
        size_mm: ``(width, height)`` of the rectangle, centred on the centroid of the
            gland's (undilated) masks.
        margin_mm: dilation of the gland's masks united with the rectangle (nothing of
            the gland is ever left).

    Returns:
        ``(region, contained)``: the boolean region, and whether the dilated gland lay
        wholly inside the rectangle (only then is the footprint the same as every other
        case's, up to the image's edges).
    """
    gland = thyroid_region(case, margin_mm=0.0)
    dilated = thyroid_region(case, margin_mm)
    if not gland.any():
        return dilated, True
    rows, cols = np.nonzero(gland)
    centre_row, centre_col = rows.mean(), cols.mean()
    half_rows = size_mm[1] / 2.0 / case.pixel_mm
    half_cols = size_mm[0] / 2.0 / case.pixel_mm
    grid_rows, grid_cols = np.ogrid[: gland.shape[0], : gland.shape[1]]
    rectangle = (np.abs(grid_rows - centre_row) <= half_rows) & (np.abs(grid_cols - centre_col) <= half_cols)
    spared = np.zeros_like(gland)
    for name in SPARED_MASKS:
        if name in case.masks:
            spared |= np.asarray(case.masks[name], bool)
    spared = _dilate(spared, SPARED_MARGIN_MM / case.pixel_mm)
    return (rectangle & ~spared) | dilated, not bool((dilated & ~rectangle).any())


def _dilate(mask: np.ndarray, radius_px: float) -> np.ndarray:
    """``mask`` grown by a disc of ``radius_px`` (Euclidean distance, any image size)."""
    if radius_px <= 0 or not mask.any():
        return mask.copy()
    return ndimage.distance_transform_edt(~mask) <= radius_px


def harmonic_fill(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Replace ``image`` inside ``mask`` by the harmonic (Laplace) interpolation of its border.

    The fill is the smoothest surface that meets the surrounding values: it reproduces
    linear trends of the background exactly and invents no structure. Image edges inside
    the mask are treated as reflecting (zero normal derivative).

    Args:
        image: a float image (noise-free expected counts).
        mask: pixels to fill.

    Returns:
        A float64 copy of ``image`` with the masked pixels filled.
    """
    out = np.asarray(image, float).copy()
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return out
    index = -np.ones(mask.shape, np.int64)
    index[rows, cols] = np.arange(rows.size)
    diagonal = np.zeros(rows.size)
    rhs = np.zeros(rows.size)
    i_list, j_list = [], []
    for dr, dc in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        r, c = rows + dr, cols + dc
        inside = (r >= 0) & (r < mask.shape[0]) & (c >= 0) & (c < mask.shape[1])
        diagonal += inside
        r, c, k = r[inside], c[inside], np.flatnonzero(inside)
        neighbour = index[r, c]
        unknown = neighbour >= 0
        i_list.append(k[unknown])
        j_list.append(neighbour[unknown])
        np.add.at(rhs, k[~unknown], out[r[~unknown], c[~unknown]])
    i_all, j_all = np.concatenate(i_list), np.concatenate(j_list)
    matrix = sparse.coo_matrix((-np.ones(i_all.size), (i_all, j_all)), shape=(rows.size, rows.size)).tocsr()
    matrix = matrix + sparse.diags(diagonal)
    out[rows, cols] = spsolve(matrix.tocsc(), rhs)
    return out


def _acquisition(case: SimulatedCase) -> Mapping[str, Any]:
    acquisition = case.metadata.get("acquisition")
    return acquisition if isinstance(acquisition, Mapping) else {}


def scatter_parameters(case: SimulatedCase) -> tuple[float, float]:
    """The case's window-accepted scatter fraction and halo FWHM (mm).

    From ``metadata["acquisition"]`` when the case records its (drawn) camera, else from the
    named camera profile; ``(0, 0)`` when neither is known.
    """
    acquisition = _acquisition(case)
    if "scatter_fraction" in acquisition and "scatter_fwhm_mm" in acquisition:
        return float(acquisition["scatter_fraction"]), float(acquisition["scatter_fwhm_mm"])
    camera = CAMERAS.get(str(case.metadata.get("camera", "")))
    return (camera.scatter_fraction, camera.scatter_fwhm_mm) if camera is not None else (0.0, 0.0)


def default_margin_mm(case: SimulatedCase) -> float:
    """Dilation of the gland: 12 mm, or 1.6 x the recorded FWHM at 10 cm plus any motion blur."""
    acquisition = _acquisition(case)
    fwhm = float(acquisition.get("fwhm_at_100mm", 0.0) or 0.0)
    motion = float(acquisition.get("motion_mm", 0.0) or 0.0)
    return max(DEFAULT_MARGIN_MM, 1.6 * fwhm + motion)


def _background(
    expected: np.ndarray, mask: np.ndarray, pixel_mm: float, scatter: tuple[float, float], iterations: int = 4
) -> tuple[np.ndarray, np.ndarray]:
    """Background with the gland's window-accepted scatter halo taken out, filled over ``mask``.

    Model: ``E = B + P + s G(P)`` with the gland's primary counts ``P`` inside ``mask``,
    ``B`` smooth there, ``s`` and ``G`` the camera's scatter fraction and Gaussian halo
    (``scatter = (s, FWHM mm)``; ``s = 0``: no halo). Fixed point:
    ``B_k = fill(E - s G(P_k))``, ``P_{k+1} = max(E - s G(P_k) - B_k, 0)`` on ``mask``,
    from ``P_0 = 0``.

    Returns:
        ``(background, halo)``.
    """
    fraction, fwhm_mm = scatter
    halo = np.zeros_like(expected)
    if fraction <= 0:
        return harmonic_fill(expected, mask), halo
    sigma_px = fwhm_mm / 2.3548 / pixel_mm
    for _ in range(iterations):
        cleaned = np.clip(expected - halo, 0.0, None)
        background = harmonic_fill(cleaned, mask)
        primary = np.where(mask, np.clip(cleaned - background, 0.0, None), 0.0)
        halo = fraction * ndimage.gaussian_filter(primary, sigma_px, mode="constant")
    return harmonic_fill(np.clip(expected - halo, 0.0, None), mask), halo


def _block(image: np.ndarray, factor: int, reduce: Any) -> np.ndarray:
    rows, cols = (-image.shape[0]) % factor, (-image.shape[1]) % factor
    padded = np.pad(image, ((0, rows), (0, cols)), mode="edge")
    h, w = padded.shape[0] // factor, padded.shape[1] // factor
    return reduce(padded.reshape(h, factor, w, factor), axis=(1, 3))


def _upsample(coarse: np.ndarray, factor: int, shape: tuple[int, int]) -> np.ndarray:
    rows = (np.arange(shape[0]) + 0.5) / factor - 0.5
    cols = (np.arange(shape[1]) + 0.5) / factor - 0.5
    grid = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(coarse, grid, order=1, mode="nearest")


def background_image(expected: np.ndarray, mask: np.ndarray, pixel_mm: float, scatter: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """The noise-free image without the gland: halo removed everywhere, ``mask`` filled.

    Fine images (pixels under about 1.5 mm) are solved on a grid of about
    :data:`FILL_GRID_MM` (block means) and the fill and the halo interpolated back, which
    keeps the sparse solve small; the models see 2.2 mm pixels anyway.

    Args:
        expected: noise-free counts.
        mask: the region to fill.
        pixel_mm: pixel spacing.
        scatter: ``(scatter fraction, halo FWHM mm)``; ``(0, 0)`` keeps the halo.
    """
    factor = max(1, int(round(FILL_GRID_MM / pixel_mm)))
    if factor == 1 or not mask.any():
        return _background(expected, mask, pixel_mm, scatter)[0]
    coarse = _block(expected, factor, np.mean)
    coarse_mask = _block(mask, factor, np.any)
    coarse_bg, coarse_halo = _background(coarse, coarse_mask, pixel_mm * factor, scatter)
    halo = _upsample(coarse_halo, factor, expected.shape)
    background = np.clip(expected - halo, 0.0, None)
    background[mask] = _upsample(coarse_bg, factor, expected.shape)[mask]
    return background


def count_preset(case: SimulatedCase) -> float:
    """The case's count preset: ``metadata["count_preset"]``, else its profile's, else the expected total."""
    preset = case.metadata.get("count_preset")
    if preset is None and case.acquisition_profile is not None:
        preset = getattr(case.acquisition_profile, "count_preset", None)
    if preset is None and case.expected is not None:
        preset = float(np.asarray(case.expected, float).sum())
    if preset is None:
        raise ValueError("the case records no count preset and has no expected image")
    return float(preset)


def remove_thyroid(
    case: SimulatedCase,
    margin_mm: float | None = None,
    rng: np.random.Generator | None = None,
    remove_scatter: bool = True,
    match_counts: bool | float = False,
    footprint_mm: tuple[float, float] | None = None,
) -> np.ndarray:
    """The case's counts with the thyroid replaced by background.

    Method (noise-free image ``E = case.expected``, counts ``N``):

    1. region ``M``: the gland and nodules dilated by ``margin_mm`` (beyond the collimator
       blur, so no primary gland counts are left outside; :func:`default_margin_mm`);
    2. fill ``E`` over ``M`` harmonically from the ring around it (:func:`harmonic_fill`);
    3. with ``remove_scatter``, estimate the gland's scatter halo (the camera's scatter
       fraction and width from :func:`scatter_parameters` applied to the gland's excess over the fill inside ``M``,
       refined by a few fixed-point steps) and take it out of ``E`` everywhere, then
       refill ``M``; this gives the background image ``B`` (:func:`background_image`;
       fine images are solved on a 2.2 mm grid);
    4. outside ``M`` thin the measured counts binomially with ``p = B / E`` (exactly a
       Poisson draw of ``B`` given one of ``E``; ``p = 1`` without scatter removal);
       inside ``M`` draw fresh Poisson counts of ``B``.

    The rest of the scan keeps its real noise; the region holds noise of the same kind
    around a smooth background. Needs ``case.expected``.

    With ``match_counts`` the removed image is drawn at a class-independent count level:
    ``B`` is scaled by ``k = T / sum(B)`` so that its expected total is ``T``, the count
    preset (:func:`count_preset`; ``match_counts=True``) or the given number of counts.
    This is the scan the camera would have recorded had the thyroid's share of the preset
    gone to the rest of the neck: in a count-preset acquisition that share is the
    class-defining uptake, and the count level (and so the noise) of everything else
    follows from it. Outside ``M`` the measured counts are still used: thinned with
    ``p = min(kB / E, 1)`` plus fresh Poisson counts of ``max(kB - E, 0)``, which together
    are exactly a Poisson draw of ``kB``; inside ``M`` fresh Poisson counts of ``kB``.

    Args:
        case: a simulated case.
        margin_mm: dilation of the gland's masks (default :func:`default_margin_mm`).
        rng: generator for the new counts; default one seeded from the counts' sum.
        remove_scatter: also remove the gland's scatter halo (it reaches about 40 mm).
        match_counts: ``False`` (the counts as acquired, less the gland), ``True`` (the
            remaining image at the count preset) or a number (at that expected total).
        footprint_mm: remove this fixed ``(width, height)`` rectangle around the gland
            (:func:`fixed_region`) instead of the gland's own dilated footprint.

    Returns:
        An ``int64`` count image of the detector's shape.

    Raises:
        ValueError: when the case has no noise-free ``expected`` image.
    """
    if case.expected is None:
        raise ValueError("remove_thyroid needs case.expected (the noise-free image)")
    rng = rng if rng is not None else np.random.default_rng(case.total_counts)
    expected = np.asarray(case.expected, float)
    mask = thyroid_region(case, margin_mm) if footprint_mm is None else fixed_region(case, footprint_mm, margin_mm)[0]
    scatter = scatter_parameters(case) if remove_scatter else (0.0, 0.0)
    background = background_image(expected, mask, case.pixel_mm, scatter)
    return _draw_removed(case, expected, mask, background, rng, match_counts)


def _draw_removed(
    case: SimulatedCase,
    expected: np.ndarray,
    mask: np.ndarray,
    background: np.ndarray,
    rng: np.random.Generator,
    match_counts: bool | float = False,
) -> np.ndarray:
    """Counts of ``background`` (times ``k`` when matching counts) reusing the measured ones outside ``mask``."""
    background = np.clip(background, 0.0, None)
    scale = 1.0
    if match_counts is not False and match_counts is not None:
        target = count_preset(case) if match_counts is True else float(match_counts)
        total = float(background.sum())
        scale = target / total if total > 0 else 1.0
    wanted = scale * background
    counts = np.asarray(case.counts, np.int64)
    keep = np.divide(wanted, expected, out=np.ones_like(expected), where=expected > 0)
    out = rng.binomial(counts, np.clip(keep, 0.0, 1.0))
    if scale != 1.0:
        out = out + rng.poisson(np.where(expected > 0, np.clip(wanted - expected, 0.0, None), wanted))
    out[mask] = rng.poisson(wanted[mask])
    return out.astype(np.int64)


# ---- preprocessing and probes -----------------------------------------------------------


def model_preprocessing(recipe: str = PREPROCESSING_RECIPE) -> Any:
    """The models' deterministic preprocessing: the recipe's ``scan_transforms`` as one callable.

    Args:
        recipe: a shipped recipe name or a recipe file (default the uptake4 bundle's).

    Returns:
        A dictionary transform acting on ``{"image": MetaTensor(1, H, W)}``.
    """
    from scintipipe.training.experiment import make_transform
    from scintipipe.training.recipe import load_recipe

    return make_transform(load_recipe(recipe)["scan_transforms"])


def preprocess(image: np.ndarray, pixel_mm: float, transform: Any | None = None) -> np.ndarray:
    """One count image through the models' preprocessing (resample, neck crop, normalise).

    Args:
        image: a 2-D count image.
        pixel_mm: its pixel spacing.
        transform: from :func:`model_preprocessing` (built when ``None``).

    Returns:
        The network input as a 2-D ``float32`` array (96 x 96 for uptake4).
    """
    import torch
    from monai.data import MetaTensor

    transform = transform if transform is not None else model_preprocessing()
    tensor = MetaTensor(torch.as_tensor(np.asarray(image, np.float32))[None], meta={"spacing": (float(pixel_mm), float(pixel_mm))})
    out = transform({"image": tensor})["image"]
    return np.asarray(out.as_tensor() if isinstance(out, MetaTensor) else out, np.float32)[0]


def pixel_features(images: np.ndarray, factor: int = 4) -> np.ndarray:
    """Images averaged over ``factor`` x ``factor`` blocks and flattened (N, features)."""
    n, h, w = images.shape
    h2, w2 = h // factor, w // factor
    blocks = images[:, : h2 * factor, : w2 * factor].reshape(n, h2, factor, w2, factor)
    return blocks.mean(axis=(2, 4)).reshape(n, -1)


def statistic_features(image: np.ndarray, bins: int = 16, rings: int = 12, profile: int = 12) -> np.ndarray:
    """Simple statistics of one preprocessed image.

    Mean, standard deviation, percentiles (1, 5, 25, 50, 75, 95, 99), a histogram on
    [0, 1.5], the radial profile around the image centre and the row and column
    profiles (each averaged into ``profile`` bands).
    """
    a = np.asarray(image, float)
    h, w = a.shape
    pct = np.percentile(a, [1, 5, 25, 50, 75, 95, 99])
    hist = np.histogram(a, bins=bins, range=(0.0, 1.5))[0] / a.size
    yy, xx = np.mgrid[:h, :w]
    radius = np.hypot(yy - (h - 1) / 2, xx - (w - 1) / 2)
    ring = np.minimum((radius / radius.max() * rings).astype(int), rings - 1)
    radial = np.bincount(ring.ravel(), a.ravel(), rings) / np.maximum(np.bincount(ring.ravel(), minlength=rings), 1)
    rows = np.array([band.mean() for band in np.array_split(a.mean(axis=1), profile)])
    cols = np.array([band.mean() for band in np.array_split(a.mean(axis=0), profile)])
    return np.concatenate([[a.mean(), a.std()], pct, hist, radial, rows, cols])


def default_probes(seed: int = 0) -> dict[str, tuple[str, Any]]:
    """The probes: ``{name: (feature kind, scikit-learn estimator)}``.

    * ``pixels_logreg``: L2 logistic regression on 4 x 4 block means (24 x 24 pixels);
    * ``stats_logreg``: logistic regression on :func:`statistic_features`;
    * ``stats_gboost``: histogram gradient boosting on the same statistics.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return {
        "pixels_logreg": ("pixels", make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=3000))),
        "stats_logreg": ("stats", make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=3000))),
        "stats_gboost": (
            "stats",
            HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, max_leaf_nodes=15, early_stopping=False, random_state=seed),
        ),
    }


def _cross_validated_predictions(features: np.ndarray, targets: np.ndarray, estimator: Any, n_splits: int, seed: int) -> np.ndarray:
    from sklearn.base import clone
    from sklearn.model_selection import StratifiedKFold

    predicted = np.empty_like(targets)
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    for train, test in folds.split(features, targets):
        model = clone(estimator).fit(features[train], targets[train])
        predicted[test] = model.predict(features[test])
    return predicted


def probe_accuracy(
    images: Sequence[np.ndarray],
    labels: Sequence[str],
    pixel_mm: float | Sequence[float] | None = None,
    n_splits: int = 5,
    seed: int = 0,
    margin_points: float = DEFAULT_MARGIN_POINTS,
    probes: Mapping[str, tuple[str, Any]] | None = None,
) -> dict[str, Any]:
    """Cross-validated accuracy of probes that try to read the class off the images.

    Args:
        images: count images (thyroid removed); or, with ``pixel_mm=None``, images
            already preprocessed to one common shape.
        labels: one class label per image.
        pixel_mm: pixel spacing (one for all or one per image); given, every image goes
            through :func:`preprocess` first.
        n_splits: stratified folds.
        seed: fold shuffling and probe seeds.
        margin_points: pass when the best probe's accuracy is at most this many
            percentage points above the majority-class rate.
        probes: override :func:`default_probes`.

    Returns:
        ``{"n", "classes", "majority_rate", "probes": {name: {"accuracy", "lower",
        "upper", "correct"}}, "best_probe", "accuracy", "lower", "upper",
        "excess_points", "margin_points", "passed"}``; intervals are 95 % Wilson
        intervals of the pooled out-of-fold accuracy.
    """
    from scintipipe.evaluation.intervals import wilson_rate_interval

    labels = [str(label) for label in labels]
    classes = sorted(set(labels))
    targets = np.array([classes.index(label) for label in labels])
    inputs = _preprocessed(images, pixel_mm)
    features = {"pixels": pixel_features(inputs), "stats": np.stack([statistic_features(a) for a in inputs])}
    majority = float(np.bincount(targets).max() / targets.size)
    results = {}
    for name, (kind, estimator) in (probes or default_probes(seed)).items():
        predicted = _cross_validated_predictions(features[kind], targets, estimator, n_splits, seed)
        correct = int((predicted == targets).sum())
        low, high = wilson_rate_interval(correct / targets.size, targets.size)
        results[name] = {"accuracy": correct / targets.size, "lower": low, "upper": high, "correct": correct}
    best = max(results, key=lambda name: results[name]["accuracy"])
    excess = 100.0 * (results[best]["accuracy"] - majority)
    return {
        "n": int(targets.size),
        "classes": classes,
        "majority_rate": majority,
        "probes": results,
        "best_probe": best,
        "accuracy": results[best]["accuracy"],
        "lower": results[best]["lower"],
        "upper": results[best]["upper"],
        "excess_points": excess,
        "margin_points": float(margin_points),
        "passed": bool(excess <= margin_points),
    }


def _preprocessed(images: Sequence[np.ndarray], pixel_mm: float | Sequence[float] | None) -> np.ndarray:
    if pixel_mm is None:
        return np.stack([np.asarray(a, np.float32) for a in images])
    spacings = [float(pixel_mm)] * len(images) if isinstance(pixel_mm, (int, float, np.number)) else [float(p) for p in pixel_mm]
    transform = model_preprocessing()
    return np.stack([preprocess(a, p, transform) for a, p in zip(images, spacings, strict=True)])


# ---- nuisance variables -------------------------------------------------------------------

#: measured variables whose class dependence is physics of the class-defining uptake
PHYSICS_OF_UPTAKE = {
    "frame_duration_s": "a count-preset acquisition stops sooner when the thyroid traps more",
    "salivary_share": "the thyroid's share of the preset counts is taken from everything else",
    "background_share": "the thyroid's share of the preset counts is taken from everything else",
    "background_to_image_mean": "the image mean includes the thyroid's counts",
}


def _flatten(prefix: str, value: Any, out: dict[str, float]) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            _flatten(f"{prefix}.{key}" if prefix else str(key), item, out)
    elif isinstance(value, (bool, np.bool_)):
        out[prefix] = float(value)
    elif isinstance(value, (int, float, np.integer, np.floating)) and math.isfinite(float(value)):
        out[prefix] = float(value)
    elif isinstance(value, (list, tuple)) and value and all(isinstance(v, (int, float)) for v in value):
        for i, item in enumerate(value):
            out[f"{prefix}.{i}"] = float(item)


def _fallback_metadata(metadata: Mapping[str, Any]) -> dict[str, float]:
    """Nuisance-like fields of the metadata written before ``metadata["nuisance"]`` existed."""
    out: dict[str, float] = {}
    for key in ("injected_mbq", "minutes_post_injection", "collimator_gap_mm", "thyroid_depth_mm", "texture_sigma", "anchor_rc"):
        if key in metadata:
            _flatten(f"metadata.{key}", metadata[key], out)
    fractions = metadata.get("activities_fraction", {}) or {}
    for key in ("parotid", "submandibular", "oral_cavity", "nasal_mucosa", "oesophagus", "blood_pool_scale", "head_excess"):
        if fractions.get(key) is not None:
            out[f"metadata.activities_fraction.{key}"] = float(fractions[key])
    return out


def measured_variables(case: SimulatedCase, margin_mm: float = 15.0) -> dict[str, float]:
    """Image measures of one case: counts, timing, salivary and blood-pool activity.

    ``background`` is the body outside every organ mask dilated by ``margin_mm`` (the
    blood pool and soft tissue); shares are of the total counts, the ratio is per pixel.
    """
    counts = np.asarray(case.counts, float)
    total = max(counts.sum(), 1.0)
    organs = np.zeros(counts.shape, bool)
    for name, mask in case.masks.items():
        if name != "body":
            organs |= np.asarray(mask, bool)
    organs = _dilate(organs, margin_mm / case.pixel_mm)
    body = np.asarray(case.masks.get("body", np.ones(counts.shape, bool)), bool)
    background = body & ~organs
    salivary = np.asarray(case.masks.get("salivary_glands", np.zeros(counts.shape, bool)), bool)
    bg_mean = float(counts[background].mean()) if background.any() else float("nan")
    sal_mean = float(counts[salivary].mean()) if salivary.any() else float("nan")
    out = {
        "total_counts": float(total),
        "frame_duration_s": float(case.frame_duration_s),
        "salivary_share": float(counts[salivary].sum() / total),
        "background_share": float(counts[background].sum() / total),
        "salivary_to_background": sal_mean / bg_mean if bg_mean > 0 else float("nan"),
        "background_to_image_mean": bg_mean / float(counts.mean()),
    }
    return {key: value for key, value in out.items() if math.isfinite(value)}


def case_variables(case: SimulatedCase) -> dict[str, Any]:
    """Everything :func:`nuisance_table` compares for one case, with its ``label``.

    ``nuisance.*``: every numeric entry of ``case.metadata["nuisance"]`` (nested keys
    joined by dots); when the case has none, ``metadata.*``: the nuisance-like fields of
    the older metadata; ``measured.*``: :func:`measured_variables`.
    """
    out: dict[str, Any] = {"label": case.label}
    nuisance = case.metadata.get("nuisance")
    values: dict[str, float] = {}
    if isinstance(nuisance, Mapping):
        _flatten("nuisance", nuisance, values)
    else:
        values.update(_fallback_metadata(case.metadata))
    values.update({f"measured.{k}": v for k, v in measured_variables(case).items()})
    out.update(values)
    return out


#: variable-name prefixes of the gland itself (removed before probing; may be class-defining)
THYROID_VARIABLES = ("gland_", "texture_", "nodule", "thyroid_")


def _kind(variable: str) -> str:
    name = variable.split(".", 1)[-1]
    if variable.startswith("measured.") and name in PHYSICS_OF_UPTAKE:
        return "physics of uptake"
    if name.startswith(THYROID_VARIABLES):
        return "thyroid"
    return variable.split(".", 1)[0]


def nuisance_table(cases: Iterable[SimulatedCase | Mapping[str, Any]], alpha: float = 0.01, min_effect: float = 0.06) -> dict[str, Any]:
    """Per-class distribution of every nuisance variable and a test of class dependence.

    A variable is flagged when the Kruskal-Wallis test across classes is significant after
    a Bonferroni correction over all variables (``p * m < alpha``) *and* its effect size
    epsilon-squared ``(H - k + 1) / (n - k)`` is at least ``min_effect`` (0.06: a medium
    effect), so large samples do not flag negligible differences. Variables that are
    constant within every class and equal across them are skipped.

    Args:
        cases: simulated cases, or rows from :func:`case_variables`.
        alpha: family-wise significance level.
        min_effect: smallest epsilon-squared that counts as separating the classes.

    Returns:
        ``{"classes", "variables": [{"variable", "kind", "per_class": {label: {"n",
        "median", "p5", "p95"}}, "H", "p", "p_bonferroni", "epsilon2", "flagged",
        "note"}]}`` with flagged variables first, then by effect size.
    """
    rows = [row if isinstance(row, Mapping) else case_variables(row) for row in cases]
    classes = sorted({str(row["label"]) for row in rows})
    names = sorted({key for row in rows for key in row if key != "label"})
    entries = [entry for entry in (_compare(name, rows, classes) for name in names) if entry is not None]
    for entry in entries:
        entry["p_bonferroni"] = min(1.0, entry["p"] * len(entries))
        entry["flagged"] = bool(entry["p_bonferroni"] < alpha and entry["epsilon2"] >= min_effect)
    entries.sort(key=lambda e: (not e["flagged"], -e["epsilon2"]))
    return {"classes": classes, "alpha": alpha, "min_effect": min_effect, "variables": entries}


def _compare(name: str, rows: Sequence[Mapping[str, Any]], classes: Sequence[str]) -> dict[str, Any] | None:
    groups = {label: np.array([float(r[name]) for r in rows if str(r["label"]) == label and name in r]) for label in classes}
    present = {label: g for label, g in groups.items() if g.size}
    if len(present) < 2 or np.ptp(np.concatenate(list(present.values()))) == 0:
        return None
    per_class = {
        label: {"n": int(g.size), "median": float(np.median(g)), "p5": float(np.percentile(g, 5)), "p95": float(np.percentile(g, 95))}
        for label, g in present.items()
    }
    h, p = stats.kruskal(*present.values())
    n, k = sum(g.size for g in present.values()), len(present)
    epsilon2 = max(0.0, (float(h) - k + 1) / max(n - k, 1))
    name_short = name.split(".", 1)[-1]
    note = PHYSICS_OF_UPTAKE.get(name_short, "") if name.startswith("measured.") else ""
    return {"variable": name, "kind": _kind(name), "per_class": per_class, "H": float(h), "p": float(p), "epsilon2": epsilon2, "note": note}


# ---- the whole audit -----------------------------------------------------------------------


@dataclass
class RemovedCases:
    """The thyroid-removed images of one simulated set, in every variant asked for.

    Attributes:
        acquired: the counts as acquired, less the gland (``remove_thyroid(case)``).
        counts_matched: the same at the count preset (``match_counts=True``).
        footprint_matched: at the count preset with the fixed removal region
            (``match_counts=True, footprint_mm=FIXED_FOOTPRINT_MM``).
        labels: each case's label.
        spacings: each case's pixel size (mm).
        rows: each case's variables (:func:`case_variables`).
        footprint_contained: per case, whether the dilated gland lay inside the fixed
            region (empty unless the footprint-matched images were made).
    """

    acquired: list = field(default_factory=list)
    counts_matched: list = field(default_factory=list)
    footprint_matched: list = field(default_factory=list)
    labels: list = field(default_factory=list)
    spacings: list = field(default_factory=list)
    rows: list = field(default_factory=list)
    footprint_contained: list = field(default_factory=list)


def removed_dataset(
    simulator: Any, center: CenterProfile, n_per_class: int, seed: int, match_counts: bool = False, match_footprint: bool = False
) -> tuple[list, list, list, list]:
    """Simulate a balanced set in memory, keeping only the thyroid-removed counts and variables.

    Case ``i`` has label ``labels[i % K]`` and generator ``case_rng(seed, i)`` (as
    ``scintipipe simulate`` draws case ``i``); the new counts of the removed region come
    from stream 1 of the same case (stream 3 for the counts-matched image, stream 5 for the
    footprint-matched one).

    Args:
        simulator: a :class:`~scintipipe.simulate.case.TaskSimulator`.
        center: acquisition profile.
        n_per_class: cases per label.
        seed: data set seed.
        match_counts: the removed images at the count preset
            (``remove_thyroid(..., match_counts=True)``) instead of as acquired.
        match_footprint: the removed images at the count preset with the fixed removal
            region (``footprint_mm=FIXED_FOOTPRINT_MM``); overrides ``match_counts``.

    Returns:
        ``(images, labels, pixel_mm, variable_rows)``.
    """
    removed = removed_cases(
        simulator,
        center,
        n_per_class,
        seed,
        acquired=not (match_counts or match_footprint),
        matched=match_counts and not match_footprint,
        footprint=match_footprint,
    )
    images = removed.footprint_matched if match_footprint else removed.counts_matched if match_counts else removed.acquired
    return images, removed.labels, removed.spacings, removed.rows


def removed_cases(
    simulator: Any,
    center: CenterProfile,
    n_per_class: int,
    seed: int,
    acquired: bool = True,
    matched: bool = False,
    footprint: bool = False,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> RemovedCases:
    """Every asked-for removed variant of every case, from one simulation (and one solve per region).

    ``progress`` wraps the case index iterator (e.g. ``tqdm``).
    """
    from scintipipe.simulate.writer import case_rng

    labels = list(simulator.labels)
    out = RemovedCases()
    indices: Iterable[int] = range(n_per_class * len(labels))
    for i in progress(indices) if progress is not None else indices:
        label = labels[i % len(labels)]
        case = simulator(case_rng(seed, i), center, label)
        if case.expected is None:
            raise ValueError("remove_thyroid needs case.expected (the noise-free image)")
        expected = np.asarray(case.expected, float)
        scatter = scatter_parameters(case)
        if acquired or matched:
            mask = thyroid_region(case)
            background = background_image(expected, mask, case.pixel_mm, scatter)
            if acquired:
                out.acquired.append(_draw_removed(case, expected, mask, background, case_rng(seed, i, 1)).astype(np.float32))
            if matched:
                out.counts_matched.append(_draw_removed(case, expected, mask, background, case_rng(seed, i, 3), match_counts=True).astype(np.float32))
        if footprint:
            region, contained = fixed_region(case)
            background = background_image(expected, region, case.pixel_mm, scatter)
            out.footprint_matched.append(
                _draw_removed(case, expected, region, background, case_rng(seed, i, 5), match_counts=True).astype(np.float32)
            )
            out.footprint_contained.append(contained)
        out.labels.append(label)
        out.spacings.append(case.pixel_mm)
        out.rows.append(case_variables(case))
    return out


def audit_simulator(
    simulator: Any,
    center: CenterProfile,
    n_per_class: int,
    seed: int = 0,
    margin_points: float = DEFAULT_MARGIN_POINTS,
    match_counts: bool = False,
    match_footprint: bool = False,
    progress: Callable[[Iterable[int]], Iterable[int]] | None = None,
) -> dict[str, Any]:
    """Probe accuracy on thyroid-removed scans and the nuisance table of one simulator.

    With ``match_counts`` the probe also runs on the same cases' removed images redrawn at
    the count preset (``remove_thyroid(..., match_counts=True)``): the control that tells
    the count-preset physics of the class-defining uptake from any other shortcut. With
    ``match_footprint`` it runs, in addition, on images at the count preset whose removed
    region is the same fixed rectangle for every case (:func:`fixed_region`): the control
    that tells the gland's class-defining size, seen through the fill's footprint, from
    anything else.

    ``progress`` wraps the iterator over the simulated cases (e.g. ``tqdm``).

    Returns:
        ``{"probe": probe_accuracy(...), "nuisance": nuisance_table(...)}``, plus
        ``"probe_counts_matched"`` with ``match_counts``, and ``"probe_footprint_matched"``
        and ``"footprint_contained_share"`` (the share of cases whose dilated gland lay
        inside the rectangle) with ``match_footprint``.
    """
    removed = removed_cases(simulator, center, n_per_class, seed, acquired=True, matched=match_counts, footprint=match_footprint, progress=progress)
    spacings = removed.spacings

    def probe(images: list) -> dict[str, Any]:
        return probe_accuracy(images, removed.labels, pixel_mm=spacings, seed=seed, margin_points=margin_points)

    out: dict[str, Any] = {"probe": probe(removed.acquired), "nuisance": nuisance_table(removed.rows)}
    if match_counts:
        out["probe_counts_matched"] = probe(removed.counts_matched)
    if match_footprint:
        out["probe_footprint_matched"] = probe(removed.footprint_matched)
        out["footprint_contained_share"] = float(np.mean(removed.footprint_contained))
    return out
