"""The report's pictures as a DICOM Secondary Capture (highdicom) for PACS viewers.

One RGB image: the scan with the regions outlined, beside the heatmap overlay of the
predicted class, above a burned-in caption: "NOT FOR CLINICAL USE" (unless the bundle is
cleared for clinical use), the predicted class with its probability, and the legend of
the outlined regions. A view classified against the input gate's advice (``--accept-ood``)
gets a red strip above the pictures saying so, with the gate's reasons. Patient and study
are copied from the source image, the source is listed as the Source Image, and the series
is flagged ``DERIVED``.
"""

from __future__ import annotations

from typing import Any

import highdicom as hd
import numpy as np
import pydicom
from pydicom.dataset import Dataset

from scintipipe import __version__
from scintipipe.report.content import gate_of, gate_reasons
from scintipipe.report.html import heatmaps_on_scan
from scintipipe.report.render import (
    caption_strip,
    display_window,
    grey_scan,
    region_legend,
    scan_counts,
    side_by_side,
    warning_strip,
    with_heatmap,
    with_regions,
)

SERIES_NUMBER = 9902


NOT_CLINICAL = "NOT FOR CLINICAL USE"


def caption_lines(case: dict[str, Any], bundle: Any) -> list[str]:
    """The SC's caption: the predicted class in words, its probability and the bundle."""
    prediction = case.get("prediction") or {}
    label = str(prediction.get("label", "")).replace("_", " ")
    confidence = prediction.get("confidence")
    probability = f" (probability {float(confidence):.2f})" if confidence is not None else ""
    return [f"Predicted: {label}{probability}", f"scintipipe {__version__}, bundle {bundle.name}; left: regions, right: evidence map"]


def overlay_picture(case: dict[str, Any], bundle: Any | None = None) -> np.ndarray:
    """Regions beside the predicted-class heatmap (or the plain scan when missing), with
    the burned-in caption when ``bundle`` is given."""
    counts, spacing = scan_counts(case)
    scan = grey_scan(counts, spacing, display_window(counts))
    rois = (case.get("segmentation") or {}).get("rois")
    pictures = [with_regions(scan, rois) if rois else scan]
    heatmaps = heatmaps_on_scan(case)
    if heatmaps:
        pictures.append(with_heatmap(scan, heatmaps[0][1]))
    picture = side_by_side(*pictures)
    if bundle is not None:
        banner = None if getattr(bundle, "clinical_use", False) else NOT_CLINICAL
        picture = caption_strip(picture, caption_lines(case, bundle), region_legend(rois), banner)
    gate = gate_of(case)
    if gate["against_advice"]:
        picture = warning_strip(
            picture, ["CLASSIFIED AGAINST THE INPUT GATE'S ADVICE (--accept-ood): the label may be meaningless.", gate_reasons(gate)]
        )
    return picture


def secondary_capture(case: dict[str, Any], bundle: Any, source: pydicom.Dataset) -> hd.sc.SCImage:
    """Build the Secondary Capture of one case.

    Args:
        case: the case after all stages.
        bundle: the bundle that classified it.
        source: the source image's DICOM header (patient and study come from it).
    """
    picture = np.ascontiguousarray(overlay_picture(case, bundle))
    against = gate_of(case)["against_advice"]
    description = (
        f"scintipipe overlay {bundle.name}" + (" GATE OVERRIDDEN" if against else "") + ("" if bundle.clinical_use else " NOT FOR CLINICAL USE")
    )
    image = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=source,
        pixel_array=picture,
        photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
        bits_allocated=8,
        coordinate_system=hd.CoordinateSystemNames.PATIENT,
        series_instance_uid=hd.UID(),
        series_number=SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="scintipipe developers",
        patient_orientation=("L", "F"),
        series_description=description[:64],
        software_versions=__version__,
    )
    image.ImageType = ["DERIVED", "SECONDARY"]
    reference = Dataset()
    reference.ReferencedSOPClassUID = source.SOPClassUID
    reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
    image.SourceImageSequence = [reference]
    image.BurnedInAnnotation = "YES"
    # Laterality (General Series, Type 2C) is required only for paired parts: name the
    # body part (the source's, else the neck every thyroid bundle is made for) and copy a
    # laterality only where the source has one.
    image.BodyPartExamined = source.get("BodyPartExamined") or "NECK"
    if source.get("Laterality"):
        image.Laterality = source.Laterality
    return image
