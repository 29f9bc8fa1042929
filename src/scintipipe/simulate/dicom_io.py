"""Write simulated acquisitions as DICOM NM Image Storage files, deterministically.

Every UID is a ``2.25.`` UUID hashed from the dataset seed, task, centre and case index
(:func:`deterministic_uid`), and dates and times come from the case's simulated clock, so
the same seed writes byte-identical files.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian, NuclearMedicineImageStorage

from scintipipe.simulate.centers import CenterProfile

#: (code value, scheme, meaning) of the views, CID 26
VIEW_CODES = {
    "ANTERIOR": ("399321004", "SCT", "Anterior projection"),
    "POSTERIOR": ("399001007", "SCT", "Posterior projection"),
}


@dataclass(frozen=True)
class AcquisitionIdentity:
    """Who, when and which UIDs: everything that ties a file to a patient and study.

    Attributes:
        uid_entropy: strings hashed into the UIDs (seed, centre, case index).
        patient_name: DICOM PN, e.g. ``SIM^UPTAKE4 00012``.
        patient_id: synthetic ID.
        patient_sex: ``F`` or ``M``.
        patient_age_years: age at the study.
        injection: date and time of the injection.
        acquisition: start of the acquisition.
        study_description: e.g. ``Thyroid scintigraphy 99mTc``.
        series_description: e.g. ``ANT``.
        series_number: DICOM series number.
    """

    uid_entropy: tuple[str, ...]
    patient_name: str
    patient_id: str
    patient_sex: str
    patient_age_years: int
    injection: dt.datetime
    acquisition: dt.datetime
    study_description: str
    series_description: str
    series_number: int = 1

    def uid(self, *what: str) -> str:
        """A deterministic UID for ``what`` (e.g. ``"study"``)."""
        return deterministic_uid(*self.uid_entropy, *what)


def deterministic_uid(*parts: str) -> str:
    """A ``2.25.`` UID from a version-4 UUID whose bits are a SHA-256 of ``parts``.

    (``pydicom.uid.generate_uid(prefix=None)`` ignores its entropy sources and is random.)
    """
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()[:16]
    return f"2.25.{uuid.UUID(bytes=digest, version=4).int}"


def _code(value: str, scheme: str, meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = scheme
    item.CodeMeaning = meaning
    return item


def _date(moment: dt.datetime) -> str:
    return moment.strftime("%Y%m%d")


def _time(moment: dt.datetime) -> str:
    return moment.strftime("%H%M%S.%f")[:13]


def nm_dataset(
    counts: np.ndarray,
    center: CenterProfile,
    identity: AcquisitionIdentity,
    frame_duration_s: float,
    injected_mbq: float,
    view: str = "ANTERIOR",
    termination: str = "CNTS",
    radial_distance_mm: float = 100.0,
    series_key: str = "series",
) -> Dataset:
    """Build an NM Image Storage dataset for one planar frame.

    Args:
        counts: ``uint16`` counts, rows head to feet.
        center: the acquisition profile (camera, spacing, counts preset).
        identity: patient, times and UID sources.
        frame_duration_s: actual frame duration.
        injected_mbq: injected activity (RadionuclideTotalDose, in MBq).
        view: ``ANTERIOR`` or ``POSTERIOR``.
        termination: AcquisitionTerminationCondition (``CNTS`` count preset, ``TIME``).
        radial_distance_mm: RadialPosition of the detector.
        series_key: distinguishes series of one study (thyroid, syringes).
    """
    camera = center.camera
    pixels = np.ascontiguousarray(counts, dtype=np.uint16)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NuclearMedicineImageStorage
    meta.MediaStorageSOPInstanceUID = UID(identity.uid(series_key, "sop"))
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 100"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "STATIC", "EMISSION"]
    ds.SOPClassUID = NuclearMedicineImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    study_moment = identity.injection
    ds.StudyDate = ds.SeriesDate = ds.AcquisitionDate = ds.ContentDate = _date(identity.acquisition)
    ds.StudyDate = _date(study_moment)
    ds.StudyTime = _time(study_moment)
    ds.SeriesTime = ds.AcquisitionTime = ds.ContentTime = _time(identity.acquisition)
    ds.AccessionNumber = identity.patient_id[-16:]
    ds.Modality = "NM"
    ds.Manufacturer = center.manufacturer
    ds.InstitutionName = center.institution
    ds.ReferringPhysicianName = ""
    ds.StationName = f"SIM-{center.name.upper()}"[:16]
    ds.StudyDescription = identity.study_description
    ds.SeriesDescription = identity.series_description
    ds.ManufacturerModelName = center.model
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.PatientBirthDate = f"{identity.acquisition.year - identity.patient_age_years:04d}0101"
    ds.PatientSex = identity.patient_sex
    ds.PatientAge = f"{identity.patient_age_years:03d}Y"
    ds.PatientIdentityRemoved = "YES"
    ds.DeidentificationMethod = "synthetic patient (scintipipe simulator)"
    ds.BodyPartExamined = "NECK"
    ds.CountsAccumulated = int(pixels.sum(dtype=np.int64))
    ds.AcquisitionTerminationCondition = termination
    ds.SoftwareVersions = f"scintipipe {_package_version()}"
    ds.ActualFrameDuration = int(round(frame_duration_s * 1000))
    ds.StudyInstanceUID = identity.uid("study")
    ds.SeriesInstanceUID = identity.uid(series_key)
    ds.StudyID = identity.patient_id[-16:]
    ds.SeriesNumber = identity.series_number
    ds.InstanceNumber = 1
    ds.FrameOfReferenceUID = identity.uid(series_key, "frame-of-reference")
    ds.PositionReferenceIndicator = ""
    ds.ImagesInAcquisition = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.NumberOfFrames = 1
    ds.FrameIncrementPointer = [pydicom.tag.Tag(0x0054, 0x0010), pydicom.tag.Tag(0x0054, 0x0020)]
    ds.Rows, ds.Columns = pixels.shape
    ds.PixelSpacing = [f"{center.pixel_mm:.6g}", f"{center.pixel_mm:.6g}"]
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.SmallestImagePixelValue = int(pixels.min())
    ds.LargestImagePixelValue = int(pixels.max())
    ds.WindowCenter = int(pixels.max()) // 2
    ds.WindowWidth = max(1, int(pixels.max()))
    ds.LossyImageCompression = "00"
    ds.EnergyWindowVector = [1]
    ds.NumberOfEnergyWindows = 1
    window = Dataset()
    window_range = Dataset()
    low, high = camera.energy_window_kev
    window_range.EnergyWindowLowerLimit = f"{low:.2f}"
    window_range.EnergyWindowUpperLimit = f"{high:.2f}"
    window.EnergyWindowRangeSequence = Sequence([window_range])
    window.EnergyWindowName = f"{camera.radionuclide} {camera.photopeak_kev:g} keV"[:16]
    ds.EnergyWindowInformationSequence = Sequence([window])
    pharma = Dataset()
    pharma.Radiopharmaceutical = camera.radiopharmaceutical[0]
    pharma.RadiopharmaceuticalStartTime = _time(identity.injection)
    pharma.RadionuclideTotalDose = f"{injected_mbq:.2f}"
    pharma.RadionuclideCodeSequence = Sequence([_code(*camera.radionuclide_code)])
    pharma.RadiopharmaceuticalCodeSequence = Sequence([_code(camera.radiopharmaceutical[1], "SCT", camera.radiopharmaceutical[2])])
    pharma.AdministrationRouteCodeSequence = Sequence([_code("47625008", "SCT", "Intravenous route")])
    ds.RadiopharmaceuticalInformationSequence = Sequence([pharma])
    ds.DetectorVector = [1]
    ds.NumberOfDetectors = 1
    detector = Dataset()
    detector.CollimatorGridName = camera.collimator_name
    detector.CollimatorType = camera.collimator
    detector.FieldOfViewShape = "RECTANGLE"
    detector.FieldOfViewDimensions = [int(round(center.fov_mm))] * 2
    detector.ZoomFactor = [f"{center.zoom:.4g}"] * 2
    detector.RadialPosition = f"{radial_distance_mm:.1f}"
    detector.ImagePositionPatient = None  # Type 2 in the NM Detector module: planar views have no known position
    detector.ImageOrientationPatient = [1, 0, 0, 0, 0, -1]
    detector.ViewCodeSequence = Sequence([_code(*VIEW_CODES[view])])
    ds.DetectorInformationSequence = Sequence([detector])
    ds.PatientOrientationCodeSequence = Sequence([_code("102538003", "SCT", "recumbent")])
    ds.PatientOrientationCodeSequence[0].PatientOrientationModifierCodeSequence = Sequence([_code("40199007", "SCT", "supine")])
    ds.PatientGantryRelationshipCodeSequence = Sequence([_code("102540008", "SCT", "headfirst")])
    ds.PixelData = pixels.tobytes()
    return ds


def write_dicom(ds: Dataset, path: Path) -> Path:
    """Save ``ds`` as a DICOM Part 10 file."""
    ds.save_as(path, enforce_file_format=True)
    return path


def _package_version() -> str:
    from scintipipe import __version__

    return __version__
