"""Write small NM Image Storage DICOM files for tests (reusable by any test module).

Example:
    >>> frames = np.stack([ant, post])                                  # doctest: +SKIP
    >>> write_nm_dicom(tmp_path / "a.dcm", frames, views=("anterior", "posterior"))  # doctest: +SKIP
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence as DicomSequence
from pydicom.uid import ExplicitVRLittleEndian, NuclearMedicineImageStorage, generate_uid

#: how each view is coded in the detector's View Code Sequence (vendor style, 99NMG)
VIEW_CODE_MEANINGS = {
    "anterior": "ANT",
    "posterior": "POST",
    "left_lateral": "LEFT LATERAL",
    "right_lateral": "RIGHT LATERAL",
}


def thyroid_pattern(rows: int = 64, columns: int = 64, peak: int = 200, seed: int = 0) -> np.ndarray:
    """A ``uint16`` image with two bright lobes on a noisy background (never constant)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns]
    lobes = np.exp(-(((x - columns * 0.35) / (columns * 0.1)) ** 2 + ((y - rows * 0.5) / (rows * 0.2)) ** 2))
    lobes += np.exp(-(((x - columns * 0.65) / (columns * 0.1)) ** 2 + ((y - rows * 0.5) / (rows * 0.2)) ** 2))
    return rng.poisson(peak * lobes + 2.0).astype(np.uint16)


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, scheme, meaning
    return item


def nm_dataset(
    frames: np.ndarray,
    views: Sequence[str | None] = ("anterior",),
    spacing: tuple[float, float] | None = (2.0, 2.0),
    radionuclide_meaning: str | None = "Technetium 99m",
    energy_window_name: str | None = None,
    energy_window_kev: tuple[float, float] | None = (126.0, 154.0),
    frame_duration_ms: int | None = 300_000,
    rescale: tuple[float, float] | None = None,
    image_type: Sequence[str] = ("ORIGINAL", "PRIMARY", "STATIC", "EMISSION"),
    acquisition: tuple[str, str] | None = ("20240102", "101500.25"),
    start_angles: Sequence[float | None] | None = None,
) -> Dataset:
    """Build an NM Image Storage dataset with one detector per frame.

    Args:
        frames: ``(rows, columns)`` or ``(frames, rows, columns)`` unsigned 16-bit pixels.
        views: the view of each frame's detector (``None`` writes no View Code Sequence);
            one value for all frames, or one per frame.
        spacing: Pixel Spacing (row, column) in mm, or ``None`` to leave it out.
        radionuclide_meaning: Code Meaning of the Radionuclide Code Sequence.
        energy_window_name: Energy Window Name.
        energy_window_kev: the window's (lower, upper) limits.
        frame_duration_ms: Actual Frame Duration.
        rescale: (slope, intercept) to write as Rescale Slope/Intercept.
        image_type: Image Type values.
        acquisition: (AcquisitionDate, AcquisitionTime), or ``None``.
        start_angles: Start Angle of each frame's detector.
    """
    pixels = np.asarray(frames)
    if pixels.ndim == 2:
        pixels = pixels[None]
    pixels = np.ascontiguousarray(pixels, dtype=np.uint16)
    n_frames = pixels.shape[0]
    views = list(views) if len(views) == n_frames else [views[0]] * n_frames
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = NuclearMedicineImageStorage
    ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = NuclearMedicineImageStorage
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID, ds.SeriesInstanceUID = generate_uid(), generate_uid()
    ds.Modality = "NM"
    ds.ImageType = list(image_type)
    ds.PatientID = "TEST0001"
    ds.Manufacturer = "scintipipe tests"
    ds.StudyDate, ds.StudyTime = "20240102", "100000"
    if acquisition is not None:
        ds.AcquisitionDate, ds.AcquisitionTime = acquisition
    if frame_duration_ms is not None:
        ds.ActualFrameDuration = frame_duration_ms
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = n_frames
    ds.FrameIncrementPointer = [pydicom.tag.Tag(0x0054, 0x0010), pydicom.tag.Tag(0x0054, 0x0020)]
    ds.Rows, ds.Columns = pixels.shape[1:]
    if spacing is not None:
        ds.PixelSpacing = [f"{spacing[0]:g}", f"{spacing[1]:g}"]
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    if rescale is not None:
        ds.RescaleSlope, ds.RescaleIntercept = f"{rescale[0]:g}", f"{rescale[1]:g}"
    window = Dataset()
    if energy_window_kev is not None:
        limits = Dataset()
        limits.EnergyWindowLowerLimit, limits.EnergyWindowUpperLimit = f"{energy_window_kev[0]:g}", f"{energy_window_kev[1]:g}"
        window.EnergyWindowRangeSequence = DicomSequence([limits])
    if energy_window_name is not None:
        window.EnergyWindowName = energy_window_name
    ds.EnergyWindowInformationSequence = DicomSequence([window])
    ds.EnergyWindowVector = [1] * n_frames
    ds.NumberOfEnergyWindows = 1
    if radionuclide_meaning is not None:
        pharma = Dataset()
        pharma.RadionuclideCodeSequence = DicomSequence([_code("C-163A8", "SRT", radionuclide_meaning)])
        ds.RadiopharmaceuticalInformationSequence = DicomSequence([pharma])
    detectors = []
    for index, view in enumerate(views):
        detector = Dataset()
        detector.ZoomFactor = ["1", "1"]
        if view is not None:
            meaning = VIEW_CODE_MEANINGS.get(view, view)
            detector.ViewCodeSequence = DicomSequence([_code(meaning, "99NMG", meaning)])
        if start_angles is not None and start_angles[index] is not None:
            detector.StartAngle = f"{start_angles[index]:g}"
        detectors.append(detector)
    ds.DetectorInformationSequence = DicomSequence(detectors)
    ds.DetectorVector = list(range(1, n_frames + 1))
    ds.NumberOfDetectors = n_frames
    ds.PixelData = pixels.tobytes()
    return ds


def write_nm_dicom(
    path: str | Path,
    frames: np.ndarray,
    views: Sequence[str | None] = ("anterior",),
    spacing: tuple[float, float] | None = (2.0, 2.0),
    compress: str | None = None,
    **options,
) -> Path:
    """Write an NM Image Storage file; see :func:`nm_dataset` for ``options``.

    Args:
        path: where to write.
        frames: ``(rows, columns)`` or ``(frames, rows, columns)`` pixels.
        views: the view of each frame.
        spacing: Pixel Spacing in mm (row, column).
        compress: a transfer syntax UID to compress to with ``Dataset.compress``
            (e.g. ``pydicom.uid.RLELossless``, ``JPEGLSLossless``, ``JPEG2000Lossless``).

    Returns:
        ``path``.
    """
    ds = nm_dataset(frames, views=views, spacing=spacing, **options)
    if compress is not None:
        ds.compress(compress)
    path = Path(path)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_labelled_set(folder: Path, labels: Sequence[str], n: int = 12) -> Path:
    """Write ``n`` thyroid scans ``s00.dcm``, ``s01.dcm``... and a ``labels.csv`` naming each one's label.

    Args:
        folder: where to write (it must exist).
        labels: the labels, given in turn: scan ``i`` gets ``labels[i % len(labels)]``.
        n: how many scans (scan ``i`` is :func:`thyroid_pattern` with seed ``i``).

    Returns:
        ``folder``.
    """
    with (folder / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "label"])
        for i in range(n):
            name = f"s{i:02d}.dcm"
            write_nm_dicom(folder / name, thyroid_pattern(seed=i).astype(np.uint16))
            writer.writerow([name, labels[i % len(labels)]])
    return folder
