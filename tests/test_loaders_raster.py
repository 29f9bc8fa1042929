"""PNG/JPEG/TIFF loader: grey and colour, 8 and 16 bit, and broken files."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile
from PIL import Image

from loader_fixtures import colour, expect_scan_error, gradient, luminance, pixels
from scintipipe.errors import ScanError
from scintipipe.loaders import read_scans
from scintipipe.loaders.raster import load_raster


@pytest.mark.parametrize(
    ("suffix", "dtype", "maximum"), [(".png", np.uint8, 255), (".png", np.uint16, 65535), (".tif", np.uint8, 255), (".tif", np.uint16, 65535)]
)
def test_grey_images_keep_their_values(tmp_path, suffix, dtype, maximum):
    image = gradient(maximum=maximum, dtype=dtype) * (maximum // 255 if maximum > 255 else 1)
    path = tmp_path / f"grey{suffix}"
    if suffix == ".png":
        Image.fromarray(image).save(path)
    else:
        tifffile.imwrite(path, image)
    [scan] = load_raster(path)
    assert tuple(scan["image"].shape) == (1, 48, 40)
    np.testing.assert_array_equal(pixels(scan), image)
    meta = scan["image"].meta
    assert (meta["is_counts"], meta["spacing"], meta["modality"]) == (False, None, None)
    assert scan["source"] == str(path)


def test_rgb_png_becomes_luminance(tmp_path):
    rgb = colour()
    path = tmp_path / "rgb.png"
    Image.fromarray(rgb).save(path)
    np.testing.assert_allclose(pixels(load_raster(path)[0]), luminance(rgb), atol=1e-3)


def test_16_bit_rgb_tiff_becomes_luminance(tmp_path):
    rgb = colour(maximum=65535, dtype=np.uint16) * 200
    path = tmp_path / "rgb16.tiff"
    tifffile.imwrite(path, rgb, photometric="rgb")
    np.testing.assert_allclose(pixels(load_raster(path)[0]), luminance(rgb), rtol=1e-5)


def test_jpeg_loads_close_to_the_original(tmp_path):
    image = gradient(64, 64)
    path = tmp_path / "grey.jpg"
    Image.fromarray(image).save(path, quality=95)
    [scan] = read_scans(path)
    assert scan["image"].meta["image_format"] == "JPEG"
    assert np.abs(pixels(scan) - image).mean() < 8


def test_palette_png_is_converted_through_its_palette(tmp_path):
    rgb = colour()
    path = tmp_path / "palette.png"
    Image.fromarray(rgb).quantize(64).save(path)
    expected = luminance(np.asarray(Image.open(path).convert("RGB")))
    np.testing.assert_allclose(pixels(load_raster(path)[0]), expected, atol=1e-3)


def test_text_renamed_png_is_a_scan_error(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not an image\n")
    expect_scan_error(read_scans, path, "not a readable")


def test_truncated_png_is_a_scan_error(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (128, 128), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ScanError, match="truncated or corrupt"):
        load_raster(path)


def test_truncated_tiff_is_a_scan_error(tmp_path):
    path = tmp_path / "cut.tif"
    tifffile.imwrite(path, gradient(128, 128))
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ScanError, match="truncated or corrupt"):
        load_raster(path)


def test_constant_image_is_a_scan_error(tmp_path):
    path = tmp_path / "flat.png"
    Image.fromarray(np.full((32, 32), 7, np.uint8)).save(path)
    with pytest.raises(ScanError, match="constant"):
        load_raster(path)


def test_tiny_image_is_a_scan_error(tmp_path):
    path = tmp_path / "tiny.png"
    Image.fromarray(gradient(8, 8)).save(path)
    with pytest.raises(ScanError, match="absurd image size"):
        load_raster(path)


def test_multi_page_tiff_is_a_scan_error(tmp_path):
    path = tmp_path / "stack.tif"
    with tifffile.TiffWriter(path) as tif:
        tif.write(gradient())
        tif.write(gradient())
    with pytest.raises(ScanError, match="2 pages"):
        load_raster(path)


def test_scintipipe_preview_pictures_are_skipped_not_classified(tmp_path) -> None:
    import numpy as np
    import pytest

    from scintipipe.errors import NotAnImage
    from scintipipe.loaders.raster import load_raster
    from scintipipe.previews import save_preview_png

    picture = (np.arange(64 * 64).reshape(64, 64) % 251).astype(np.uint8)
    save_preview_png(picture, tmp_path / "sheet.png", "contact sheet")
    with pytest.raises(NotAnImage, match="contact sheet"):
        load_raster(tmp_path / "sheet.png")
    from PIL import Image

    Image.fromarray(picture).save(tmp_path / "plain.png")  # an ordinary export still loads
    assert load_raster(tmp_path / "plain.png")[0]["image"].shape == (1, 64, 64)


def _blobs(rows: int, columns: int) -> np.ndarray:
    """An 8-bit picture of two bright lobes on a dark noisy background."""
    y, x = np.mgrid[0:rows, 0:columns] / np.array([rows, columns])[:, None, None]
    lobes = np.exp(-(((x - 0.4) / 0.08) ** 2 + ((y - 0.5) / 0.2) ** 2)) + np.exp(-(((x - 0.6) / 0.08) ** 2 + ((y - 0.5) / 0.2) ** 2))
    noise = np.random.default_rng(0).integers(0, 8, (rows, columns))
    return np.clip(200 * lobes + noise, 0, 255).astype(np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".jpg", ".tif"])
def test_large_display_pictures_are_scaled_down_with_a_note(tmp_path, suffix):
    from scintipipe.loaders.display_size import MAX_DISPLAY_SIDE

    picture = _blobs(1536, 2048)
    path = tmp_path / f"big{suffix}"
    if suffix == ".tif":
        tifffile.imwrite(path, picture)
    else:
        Image.fromarray(picture).save(path)
    [scan] = load_raster(path)
    assert tuple(scan["image"].shape) == (1, 768, MAX_DISPLAY_SIDE)
    meta = scan["image"].meta
    assert meta["display_downscaled_from"] == [1536, 2048]
    assert meta["notes"][0] == "display picture of 1536x2048 pixels scaled down to 768x1024 (area interpolation)"
    area_mean = picture.reshape(768, 2, 1024, 2).mean(axis=(1, 3))  # what area interpolation gives for a factor of 2
    tolerance = 3.0 if suffix == ".jpg" else 0.51
    assert np.abs(pixels(scan) - area_mean).mean() < tolerance


def test_large_colour_pictures_keep_their_colour_table_after_scaling(tmp_path):
    from scintipipe.loaders.grey import lookup_table

    path = tmp_path / "hot.png"
    Image.fromarray(lookup_table("hot")[_blobs(2048, 2048)]).save(path)
    [scan] = load_raster(path)
    meta = scan["image"].meta
    assert tuple(scan["image"].shape) == (1, 1024, 1024)
    assert meta["display_lookup_table"] == "hot"
    assert meta["notes"][0].startswith("display picture of 2048x2048 pixels scaled down")


def test_pictures_within_the_size_and_16_bit_images_are_not_resampled(tmp_path):
    small = tmp_path / "small.png"
    Image.fromarray(_blobs(1024, 1000)).save(small)
    counts = tmp_path / "counts.png"
    Image.fromarray(_blobs(1200, 1300).astype(np.uint16) * 100).save(counts)
    for path, shape in ((small, (1, 1024, 1000)), (counts, (1, 1200, 1300))):
        [scan] = load_raster(path)
        assert tuple(scan["image"].shape) == shape
        assert "display_downscaled_from" not in scan["image"].meta
        assert not any("scaled down" in note for note in scan["image"].meta["notes"])


def test_a_float64_tiff_beyond_float32_is_refused(tmp_path):
    path = tmp_path / "huge.tif"
    tifffile.imwrite(path, gradient().astype(np.float64) * 1e300)
    with pytest.raises(ScanError, match="exceed the float32 range"):
        read_scans(path)
