"""The report's pictures as a DICOM Secondary Capture (highdicom) for PACS viewers.

One RGB image: the scan with the regions outlined, beside the heatmap overlay of the
predicted class. A view classified against the input gate's advice (``--accept-ood``)
gets a red strip above the pictures saying so, with the gate's reasons. Patient and study are copied from the source image, the source is listed
as the Source Image, and the series is flagged ``DERIVED``.
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
from scintipipe.report.render import display_window, grey_scan, scan_counts, side_by_side, warning_strip, with_heatmap, with_regions

SERIES_NUMBER = 9902


def overlay_picture(case: dict[str, Any]) -> np.ndarray:
    """Regions beside the predicted-class heatmap (or the plain scan when missing)."""
    counts, spacing = scan_counts(case)
    scan = grey_scan(counts, spacing, display_window(counts))
    rois = (case.get("segmentation") or {}).get("rois")
    pictures = [with_regions(scan, rois) if rois else scan]
    heatmaps = heatmaps_on_scan(case)
    if heatmaps:
        pictures.append(with_heatmap(scan, heatmaps[0][1]))
    picture = side_by_side(*pictures)
    gate = gate_of(case)
    if gate["against_advice"]:
        picture = warning_strip(picture, ["CLASSIFIED AGAINST THE INPUT GATE'S ADVICE (--accept-ood): the label may be meaningless.", gate_reasons(gate)])
    return picture


def secondary_capture(case: dict[str, Any], bundle: Any, source: pydicom.Dataset) -> hd.sc.SCImage:
    """Build the Secondary Capture of one case.

    Args:
        case: the case after all stages.
        bundle: the bundle that classified it.
        source: the source image's DICOM header (patient and study come from it).
    """
    picture = np.ascontiguousarray(overlay_picture(case))
    against = gate_of(case)["against_advice"]
    description = f"scintipipe overlay {bundle.name}" + (" GATE OVERRIDDEN" if against else "") + ("" if bundle.clinical_use else " NOT FOR CLINICAL USE")
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
    return image
