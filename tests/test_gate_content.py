"""The gate's ``content`` layer on real behaviour: generated syringe, point-source and flood
images are skipped, simulated thyroid scans (every uptake4 class, toxic adenomas included,
at low and high counts, and as display exports) pass, photographs and text are refused,
and the real images in ``../shared/reference-scans`` come out as what they are."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

from scintipipe.gate.content import (
    FLOOD_REASON,
    MAX_OUTSIDE_SHARE,
    MAX_SURROUNDINGS_LEVEL,
    PHOTO_REASON,
    SYRINGE_REASON,
    TEXT_REASON,
    content_refusal,
    measure_counts,
    picture_refusal,
)
from scintipipe.loaders import read_scans
from scintipipe.loaders.raster import load_raster
from scintipipe.simulate import CENTERS, UPTAKE4_SIMULATOR
from scintipipe.simulate.display_export import Annotation, render_display_export, sample_export_options
from scintipipe.simulate.syringe import simulate_syringes

REFERENCE_SCANS = Path(__file__).resolve().parents[1].parent / "shared" / "reference-scans"
LABELS = UPTAKE4_SIMULATOR.labels


def judge(counts: np.ndarray, pixel_mm: float | None = 1.2):
    """The layer's answer for a counts image, as the DICOM loader would describe it."""
    spacing = None if pixel_mm is None else (pixel_mm, pixel_mm)
    return content_refusal(np.asarray(counts, np.float32), {"is_counts": True, "spacing": spacing})


def judge_scan(scan: dict):
    return content_refusal(scan["image"][0].numpy(), dict(scan["image"].meta))


def assert_skipped(refusal, kind: str, reason: str) -> None:
    assert refusal is not None, "expected a skip"
    assert (refusal.layer, refusal.kind, refusal.reason, refusal.skip) == ("content", kind, reason, True)


# ---- syringes, vials and point sources ----------------------------------------------------


@pytest.mark.parametrize("center", ["siemens", "a", "b", "randomised"])
def test_simulated_full_and_empty_syringes_are_skipped(center: str) -> None:
    rng = np.random.default_rng(3)
    profile = CENTERS[center].draw(rng)
    for _ in range(2):
        for image in simulate_syringes(rng, profile, float(rng.uniform(74, 370))).values():
            assert_skipped(judge(image.counts, profile.pixel_mm), "syringe", SYRINGE_REASON)


def test_syringes_with_room_background_and_a_broad_halo_are_still_skipped() -> None:
    """Room background and a scatter or penetration halo (imaged through the table, 123I's
    high-energy photons) put counts around the syringe; the rule allows for them."""
    import cv2

    rng = np.random.default_rng(8)
    images = simulate_syringes(rng, CENTERS["siemens"], 185.0)
    for image in images.values():
        counts = image.counts.astype(np.float32)
        assert_skipped(judge(counts + rng.poisson(0.1, counts.shape)), "syringe", SYRINGE_REASON)
        halo = cv2.GaussianBlur(counts, (0, 0), 45 / 2.355 / 1.2)
        expected = 0.75 * counts + 0.25 * halo * counts.sum() / halo.sum()
        assert_skipped(judge(rng.poisson(expected)), "syringe", SYRINGE_REASON)


@pytest.mark.parametrize(("total", "pixel_mm", "where"), [(20_000, 2.2, (40, 70)), (500_000, 1.2, (128, 128)), (3_000, 4.4, (20, 50))])
def test_a_point_source_alone_is_skipped(total: float, pixel_mm: float, where: tuple[int, int]) -> None:
    size = int(round(280 / pixel_mm))
    yy, xx = np.mgrid[:size, :size]
    sigma = 8.0 / 2.355 / pixel_mm  # 8 mm FWHM at 10 cm
    shape = np.exp(-((yy - where[0] * size / 256) ** 2 + (xx - where[1] * size / 256) ** 2) / (2 * sigma**2))
    counts = np.random.default_rng(int(total)).poisson(total * shape / shape.sum())
    assert_skipped(judge(counts, pixel_mm), "syringe", SYRINGE_REASON)
    assert_skipped(judge(counts, None), "syringe", SYRINGE_REASON)  # no spacing: judged by its share of the image


# ---- floods -------------------------------------------------------------------------------


def flood(kind: str, per_pixel: float, seed: int = 0) -> np.ndarray:
    """An extrinsic or intrinsic flood: uniform to a few per cent, possibly a round field."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:256, :256] / 255.0
    expected = per_pixel * (1 + 0.04 * (xx - 0.5) + 0.03 * np.sin(9 * yy) * np.cos(7 * xx))  # gradient, tube pattern
    if kind == "round":
        radius = np.hypot(yy - 0.5, xx - 0.5)
        expected = np.where(radius <= 0.49, expected * (1 + 0.15 * (radius > 0.46)), 0.0)  # edge packing at the rim
    if kind == "rectangular":
        expected[:35] = expected[-35:] = 0.0  # a 533 x 387 mm detector in a square matrix
    return rng.poisson(expected)


@pytest.mark.parametrize("kind", ["square", "round", "rectangular"])
@pytest.mark.parametrize("per_pixel", [15.0, 400.0])
def test_floods_are_skipped(kind: str, per_pixel: float) -> None:
    assert_skipped(judge(flood(kind, per_pixel), 2.2), "flood", FLOOD_REASON)


def test_a_flood_with_a_dead_tube_is_still_a_flood() -> None:
    counts = flood("square", 200.0).astype(np.float32)
    counts[100:110, 100:110] *= 0.5
    assert_skipped(judge(counts, 2.2), "flood", FLOOD_REASON)


# ---- thyroid scans pass -------------------------------------------------------------------


@pytest.mark.parametrize("label", LABELS)
@pytest.mark.parametrize("count_preset", [15_000, 2_000_000])
def test_simulated_thyroid_scans_pass_at_low_and_high_counts(label: str, count_preset: int) -> None:
    for seed, center in enumerate(("a", "siemens", "b")):
        profile = dataclasses.replace(CENTERS[center], count_preset=count_preset)
        case = UPTAKE4_SIMULATOR(np.random.default_rng(seed), profile, label)
        assert judge(case.counts, case.pixel_mm) is None, (label, count_preset, center, measure_counts(case.counts, (case.pixel_mm, case.pixel_mm)))


def test_toxic_adenomas_are_not_syringes() -> None:
    """One hot nodule, the rest of the gland suppressed: the neck's soft tissue stays."""
    for seed in range(12):
        profile = CENTERS["randomised"] if seed % 2 else dataclasses.replace(CENTERS["siemens"], count_preset=[30_000, 200_000, 1_000_000][seed % 3])
        case = UPTAKE4_SIMULATOR(np.random.default_rng(100 + seed), profile, "focal_increased")
        findings = measure_counts(case.counts, (case.pixel_mm, case.pixel_mm))
        assert judge(case.counts, case.pixel_mm) is None, findings
        if findings.compact:  # a compact hottest object: its surroundings are far from quiet
            assert findings.surroundings_level > 2 * MAX_SURROUNDINGS_LEVEL or findings.outside_share > MAX_OUTSIDE_SHARE, findings


def pinhole_neck_with_marker(seed: int, marker_level: float) -> np.ndarray:
    """A pinhole view of a neck with a faint gland: a circular field of 115 mm (dead corners
    outside it), soft tissue filling the circle, salivary glands, a thyroid barely above the
    soft tissue (thyroiditis) and a marker source at the sternal notch as the hottest thing."""
    from scipy import ndimage

    rng = np.random.default_rng(seed)
    side, pixel_mm = 128, 0.9
    yy, xx = np.mgrid[:side, :side] - (side - 1) / 2
    field = np.hypot(yy, xx) <= 0.97 * side / 2
    activity = np.where(field, 1.0, 0.0)
    for cy, cx, level in ((-40, -28, 3.0), (-40, 28, 3.0), (0, -12, 1.4), (0, 12, 1.4)):  # salivary glands, thyroid lobes
        activity += level * (((yy - cy) / 9) ** 2 + ((xx - cx) / 7) ** 2 <= 1)
    activity[int(side / 2 + 30), side // 2] += marker_level * 40  # the marker: a point, spread by the blur below
    activity = ndimage.gaussian_filter(activity, 5.0 / pixel_mm / 2.355) * field
    counts = rng.poisson(activity * 150_000 / activity.sum()).astype(np.float32)
    return counts, pixel_mm


@pytest.mark.parametrize(("seed", "marker_level"), [(0, 6.0), (1, 8.0), (2, 12.0)])
def test_a_pinhole_neck_whose_peak_is_a_marker_is_not_a_syringe(seed: int, marker_level: float) -> None:
    """The neck fills the small circular field: its 5 % region spans the field, and the dead
    corners outside the circle are no quiet surroundings of a syringe in air."""
    counts, pixel_mm = pinhole_neck_with_marker(seed, marker_level)
    findings = measure_counts(counts, (pixel_mm, pixel_mm))
    assert findings.object_extent_mm <= 120 and findings.outside_share < 0.01, findings  # what made it look like a syringe
    assert judge(counts, pixel_mm) is None, findings


def test_randomised_centre_scans_pass() -> None:
    for seed in range(8):
        case = UPTAKE4_SIMULATOR(np.random.default_rng(200 + seed), CENTERS["randomised"], LABELS[seed % 4])
        assert judge(case.counts, case.pixel_mm) is None


@pytest.fixture(scope="module")
def thyroid_cases():
    return [UPTAKE4_SIMULATOR(np.random.default_rng(i), CENTERS["ab"[i % 2]], LABELS[i % 4]) for i in range(8)]


def write_export(folder: Path, name: str, case, seed: int, **fixed) -> Path:
    options = dataclasses.replace(sample_export_options(np.random.default_rng(seed)), **fixed)
    export = render_display_export(case.counts, case.masks, case.pixel_mm, options)
    path = folder / f"{name}{export.suffix}"
    path.write_bytes(export.data)
    return path


EXPORTS = {
    "clipped window": {"lower_fraction": 0.15, "upper_fraction": 0.4, "colormap": None, "invert": False},
    "inverted": {"colormap": None, "invert": True, "lower_fraction": 0.1},
    "rainbow JPEG": {"colormap": "turbo", "invert": False, "image_format": "jpeg", "jpeg_quality": 50},
    "hot annotated": {
        "colormap": "hot",
        "invert": False,
        "annotation": Annotation(
            (255, 255, 0), (("ANT", "tl"), ("Tc-99m 185 MBq", "tl"), ("20 min p.i.", "tl")), 0.05, 2, True, "rectangles", True, True
        ),
    },
    "grey annotated": {
        "colormap": None,
        "invert": False,
        "annotation": Annotation((255, 255, 255), (("THYROID", "tr"), ("ID 123", "br"), ("2024-01-02", "br")), 0.04, 1, True, "lobes", False, True),
    },
}


@pytest.mark.parametrize("style", sorted(EXPORTS))
def test_display_exports_of_thyroid_scans_pass(thyroid_cases, tmp_path: Path, style: str) -> None:
    for k, case in enumerate(thyroid_cases[:4] if EXPORTS[style].get("colormap") else thyroid_cases):
        path = write_export(tmp_path, f"case{k}", case, 40 + k, long_side_px=256, **EXPORTS[style])
        (scan,) = load_raster(path)
        assert judge_scan(scan) is None, (style, k, scan["image"].meta["picture"])


def test_a_focal_export_whose_window_clips_the_background_is_not_a_point_source(thyroid_cases, tmp_path: Path) -> None:
    """With the body clipped to black a toxic adenoma looks like a point source on nothing:
    display pictures are never skipped as syringes."""
    focal = next(case for case in thyroid_cases if case.label == "focal_increased")
    path = write_export(
        tmp_path, "focal", focal, 5, lower_fraction=0.5, upper_fraction=0.6, colormap=None, invert=False, annotation=None, image_format="png"
    )
    (scan,) = load_raster(path)
    assert float((scan["image"][0].numpy() == 0).mean()) > 0.5
    assert judge_scan(scan) is None


def test_a_noisy_rainbow_jpeg_export_is_read_on_its_table_and_passes(tmp_path: Path) -> None:
    """Single-pixel counting noise through jet, enlarged by nearest neighbour and saved as
    JPEG: the chroma JPEG keeps at half resolution mixes neighbouring table colours into
    colours on no table, over half the picture (a simulated export the layer once refused
    as a photograph, fresh set 2104 case 190: 101 k counts on a 512 matrix)."""
    from scintipipe.simulate.writer import case_rng

    case = UPTAKE4_SIMULATOR(case_rng(2104, 190), CENTERS["randomised"], "diffusely_decreased")
    fixed = {"colormap": "jet", "invert": False, "resample": "nearest", "image_format": "jpeg", "jpeg_quality": 66, "smooth_sigma_px": 0.0}
    path = write_export(
        tmp_path, "noisy-jet", case, 7, long_side_px=317, upper_fraction=0.62, lower_fraction=0.0, gamma=0.68, annotation=None, **fixed
    )
    (scan,) = load_raster(path)
    meta = scan["image"].meta
    assert any("colour lookup table 'jet'" in note for note in meta["notes"]), meta["notes"]
    assert judge_scan(scan) is None, meta["picture"]


# ---- photographs, text and charts are refused ----------------------------------------------


@pytest.mark.parametrize("name", ["grace_hopper.jpg", "Minduka_Present_Blue_Pack.png"])
def test_photographs_are_refused(name: str) -> None:
    from matplotlib import cbook

    (scan,) = load_raster(cbook.get_sample_data(name, asfileobj=False))
    refusal = judge_scan(scan)
    assert refusal is not None and refusal.layer == "content" and not refusal.skip and refusal.overridable
    assert refusal.reason.startswith(PHOTO_REASON)


WORDS = "thyroid scintigraphy uptake pattern report counts view lorem ipsum dolor sit amet consectetur adipiscing elit sed do".split()


def text_page(path: Path, ink, paper, size: int = 16, width: int = 640, height: int = 480) -> Path:
    rng = np.random.default_rng(size)
    page = Image.new("RGB", (width, height), paper)
    draw = ImageDraw.Draw(page)
    font = ImageFont.load_default(size=size)
    for top in range(size, height - 2 * size, int(size * 1.5)):
        draw.text((size, top), " ".join(rng.choice(WORDS, 10)), fill=ink, font=font)
    page.save(path)
    return path


@pytest.mark.parametrize(
    ("name", "ink", "paper", "size"),
    [
        ("page.png", (0, 0, 0), (255, 255, 255), 14),
        ("page.jpg", (0, 0, 0), (255, 255, 255), 20),
        ("dark.png", (255, 255, 255), (0, 0, 0), 16),
        ("grey.png", (70, 70, 70), (225, 225, 225), 11),
    ],
)
def test_pages_of_text_are_refused(tmp_path: Path, name: str, ink, paper, size: int) -> None:
    (scan,) = load_raster(text_page(tmp_path / name, ink, paper, size))
    refusal = judge_scan(scan)
    assert refusal is not None and refusal.reason.startswith(TEXT_REASON) and not refusal.skip


def test_a_chart_is_refused(tmp_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(5, 4))
    x = np.linspace(0, 10, 200)
    axes.plot(x, np.sin(x))
    axes.bar(range(6), [0.3, 0.5, 0.2, 0.6, 0.4, 0.1], color="grey")
    figure.savefig(tmp_path / "chart.png", dpi=80)
    plt.close(figure)
    (scan,) = load_raster(tmp_path / "chart.png")
    refusal = judge_scan(scan)
    assert refusal is not None and refusal.reason.startswith(TEXT_REASON) and "ruled lines" in refusal.reason


def test_picture_rules_need_the_loaders_measurements() -> None:
    assert picture_refusal({}) is None
    assert content_refusal(np.ones((32, 32), np.float32) * np.arange(32), {"is_counts": False}) is None
    assert picture_refusal({"off_table_region_share": 0.4}).reason.startswith(PHOTO_REASON)
    assert picture_refusal({"flat_share": 0.9, "long_lines": [3, 2]}).reason.startswith(TEXT_REASON)
    assert picture_refusal({"flat_share": 0.1, "long_lines": [3, 2]}) is None  # ruled lines over a continuous picture


# ---- real files -------------------------------------------------------------------------


def test_real_non_thyroid_dicom_files_are_left_to_the_other_layers() -> None:
    """CT, MR and a colour Secondary Capture hold no counts and no picture measurements; an
    NM whole-body view is neither a syringe nor a flood (the metadata and ood layers judge them)."""
    from pydicom.data import get_testdata_file

    for name in ("CT_small.dcm", "MR_small.dcm", "SC_rgb_rle.dcm", "JPEG2000.dcm"):
        path = get_testdata_file(name)
        if path is None:  # pragma: no cover - pydicom without its test files
            continue
        for scan in read_scans(path):
            assert judge_scan(scan) is None, name


def test_a_blank_light_secondary_capture_is_refused() -> None:
    """pydicom's colour SC test images decode to one light grey with a few specks."""
    from pydicom.data import get_testdata_file

    for name in ("SC_rgb_jpeg.dcm", "SC_jpeg_no_color_transform.dcm"):
        (scan,) = read_scans(get_testdata_file(name))
        refusal = judge_scan(scan)
        assert refusal is not None and not refusal.skip and refusal.reason.startswith("a blank picture"), name


def test_a_dark_background_is_not_blank() -> None:
    picture = np.zeros((128, 128), np.float32)
    picture[50:70, 40:90] = 200.0  # a gland on black: the commonest shade is the darkest
    assert content_refusal(picture, {"is_counts": False}) is None


@pytest.fixture
def reference_scans() -> Path:
    if not REFERENCE_SCANS.is_dir():
        pytest.skip("../shared/reference-scans is not present")
    return REFERENCE_SCANS


def test_every_real_thyroid_image_passes(reference_scans: Path) -> None:
    paths = sorted((reference_scans / "figure-crops").glob("*.png")) + [reference_scans / "siemens-thyroid" / "thyroid_99mTc_ANT_deid.dcm"]
    assert len(paths) == 9
    for path in paths:
        for scan in read_scans(path):
            assert judge_scan(scan) is None, (path.name, scan["image"].meta.get("picture"))


def test_the_real_syringe_frames_are_skipped(reference_scans: Path) -> None:
    scans = read_scans(reference_scans / "siemens-thyroid" / "syringe_full_99mTc_2frames_deid.dcm")
    assert len(scans) == 2
    for scan in scans:
        assert_skipped(judge_scan(scan), "syringe", SYRINGE_REASON)


def test_measure_counts_leaves_the_scan_untouched():
    """The gate judges a copy: negative pixels in a small float32 image stay in the scan."""
    rng = np.random.default_rng(0)
    pixels = rng.normal(5.0, 3.0, size=(64, 64)).astype(np.float32)
    pixels[20:30, 20:30] += 200.0
    before = pixels.copy()
    assert (before < 0).any()
    measure_counts(pixels, (4.0, 4.0))
    np.testing.assert_array_equal(pixels, before)
