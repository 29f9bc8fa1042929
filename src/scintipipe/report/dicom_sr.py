"""The case's results as a DICOM Comprehensive SR (TID 1500 Measurement Report, highdicom).

Content:

* the image library and every measurement group reference the source image by its SOP
  Class and Instance UIDs (and frame, for a view of a multi-frame file);
* one planar ROI group per region found (lobes, isthmus, nodules, salivary glands,
  background): its outline as a closed SCOORD polyline on the source, its anatomy as finding
  type, its total counts and area;
* one group for the whole scan (finding type: thyroid): the predicted class as a
  qualitative evaluation (``Thyroid scintigraphic pattern``), the probability of every class, the uptake and ratios, with the model
  named as the algorithm, and the input gate's out-of-distribution score and threshold
  when the bundle ships a learned score;
* TID 1500's root *Qualitative Evaluations* container (UMLS C0034375) with the gate's
  verdict (``Input within the model's training distribution``: SCT Yes/No) and, for a
  view classified against the gate's advice (``--accept-ood``), a *Comment* (DCM 121106)
  TEXT item saying so with the gate's reasons.

Patient and study are copied from the source (highdicom does this from the evidence), so
a PACS files the SR beside the image.
"""

from __future__ import annotations

from typing import Any

import cv2
import highdicom as hd
import numpy as np
import pydicom
from highdicom.sr import (
    AlgorithmIdentification,
    CodeContentItem,
    ComprehensiveSR,
    DeviceObserverIdentifyingAttributes,
    GraphicTypeValues,
    ImageRegion,
    Measurement,
    MeasurementReport,
    MeasurementsAndQualitativeEvaluations,
    ObservationContext,
    ObserverContext,
    PlanarROIMeasurementsAndQualitativeEvaluations,
    QualitativeEvaluation,
    RelationshipTypeValues,
    SourceImageForMeasurementGroup,
    SourceImageForRegion,
    TextContentItem,
    TrackingIdentifier,
)
from highdicom.sr.value_types import ContainerContentItem
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from scintipipe import __version__
from scintipipe.report import codes as concepts
from scintipipe.report.codes import PRIVATE_SCHEME
from scintipipe.report.content import against_advice_text, gate_of
from scintipipe.report.dicom_source import frame_number

SERIES_NUMBER = 9901


def region_polygon(mask: np.ndarray) -> np.ndarray | None:
    """The outline of the largest part of ``mask`` as closed ``(column, row)`` points in
    DICOM image coordinates (pixel centres at +0.5), or ``None`` when too small."""
    contours, _ = cv2.findContours(np.asarray(mask, np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)[:, 0, :].astype(np.float32) + 0.5
    if len(outline) < 3:
        return None
    return np.vstack([outline, outline[:1]])


def region_groups(
    case: dict[str, Any], source: pydicom.Dataset, algorithm: AlgorithmIdentification
) -> list[PlanarROIMeasurementsAndQualitativeEvaluations]:
    """One planar ROI measurement group per region of the segmentation."""
    segmentation = case.get("segmentation") or {}
    counts = np.asarray(case["image"][0], dtype=np.float64)
    spacing = (getattr(case["image"], "meta", {}) or {}).get("spacing")
    frame = frame_number(case, source)
    frames = [frame] if frame else None
    groups = []
    for name, mask in (segmentation.get("rois") or {}).items():
        mask = np.asarray(mask, bool)
        polygon = region_polygon(mask) if mask.any() else None
        if polygon is None or name not in concepts.REGION_CONCEPTS:
            continue
        measurements = [Measurement(name=concepts.TOTAL_COUNTS, value=float(counts[mask].sum()), unit=concepts.COUNTS_UNIT, algorithm_id=algorithm)]
        if spacing is not None:
            measurements.append(
                Measurement(name=concepts.AREA, value=float(mask.sum() * spacing[0] * spacing[1]), unit=concepts.AREA_UNIT, algorithm_id=algorithm)
            )
        region = ImageRegion(
            graphic_type=GraphicTypeValues.POLYLINE,
            graphic_data=polygon,
            source_image=SourceImageForRegion(source.SOPClassUID, source.SOPInstanceUID, referenced_frame_numbers=frames),
        )
        groups.append(
            PlanarROIMeasurementsAndQualitativeEvaluations(
                tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier=name),
                referenced_region=region,
                finding_type=concepts.REGION_CONCEPTS[name],
                algorithm_id=algorithm,
                measurements=measurements,
            )
        )
    return groups


def scan_group(
    case: dict[str, Any], bundle: Any, source: pydicom.Dataset, algorithm: AlgorithmIdentification
) -> MeasurementsAndQualitativeEvaluations:
    """The finding, the class probabilities and the whole-scan quantities."""
    prediction = case["prediction"]
    measurements = [
        Measurement(
            name=concepts.probability_concept(label),
            value=round(100.0 * float(prediction[f"prob_{label}"]), 4),
            unit=concepts.PROBABILITY_UNIT,
            algorithm_id=algorithm,
        )
        for label in bundle.labels
    ]
    quantities = (case.get("segmentation") or {}).get("quantities") or {}
    for key, (name, unit) in concepts.SCAN_QUANTITIES.items():
        if key in quantities and np.isfinite(quantities[key]):
            measurements.append(Measurement(name=name, value=float(quantities[key]), unit=unit, algorithm_id=algorithm))
    gate = gate_of(case)
    for name, value in ((concepts.OOD_SCORE, gate["ood_score"]), (concepts.OOD_THRESHOLD, gate["ood_threshold"])):
        if value is not None and np.isfinite(float(value)):
            measurements.append(Measurement(name=name, value=float(value), unit=concepts.NO_UNITS, algorithm_id=algorithm))
    frame = frame_number(case, source)
    frames = [frame] if frame else None
    return MeasurementsAndQualitativeEvaluations(
        tracking_identifier=TrackingIdentifier(uid=hd.UID(), identifier="scan"),
        finding_type=concepts.THYROID,
        algorithm_id=algorithm,
        measurements=measurements,
        qualitative_evaluations=[QualitativeEvaluation(name=concepts.PATTERN, value=concepts.label_concept(prediction["label"]))],
        source_images=[SourceImageForMeasurementGroup(source.SOPClassUID, source.SOPInstanceUID, referenced_frame_numbers=frames)],
    )


def gate_evaluations(case: dict[str, Any]) -> ContainerContentItem | None:
    """The root *Qualitative Evaluations* container: the gate's verdict and the against-advice warning.

    ``None`` when there is nothing to say (no learned score and the gate was not overridden).
    """
    gate = gate_of(case)
    items: list[Any] = []
    warning = against_advice_text(gate)
    if warning:
        items.append(TextContentItem(name=concepts.COMMENT, value=warning, relationship_type=RelationshipTypeValues.CONTAINS))
    if gate["in_distribution"] is not None:
        verdict = concepts.YES if gate["in_distribution"] else concepts.NO
        items.append(CodeContentItem(name=concepts.IN_DISTRIBUTION, value=verdict, relationship_type=RelationshipTypeValues.CONTAINS))
    if not items:
        return None
    container = ContainerContentItem(name=concepts.QUALITATIVE_EVALUATIONS, relationship_type=RelationshipTypeValues.CONTAINS)
    container.ContentSequence = pydicom.Sequence(items)
    return container


def measurement_report(case: dict[str, Any], bundle: Any, source: pydicom.Dataset) -> MeasurementReport:
    """The SR's content tree (TID 1500), built and validated by highdicom's templates."""
    algorithm = AlgorithmIdentification(name=f"scintipipe {bundle.name}", version=str(bundle.version))
    observer = ObserverContext(
        observer_type=codes.DCM.Device,
        observer_identifying_attributes=DeviceObserverIdentifyingAttributes(
            uid=hd.UID(), name="scintipipe", manufacturer_name="scintipipe developers", model_name=f"{bundle.name} {bundle.version}"
        ),
    )
    report = MeasurementReport(
        observation_context=ObservationContext(observer_device_context=observer),
        procedure_reported=concepts.PROCEDURE,
        imaging_measurements=[scan_group(case, bundle, source, algorithm), *region_groups(case, source, algorithm)],
        referenced_images=[source],
    )
    evaluations = gate_evaluations(case)
    if evaluations is not None:
        report[0].ContentSequence.append(evaluations)
    return report


def document_arguments(case: dict[str, Any], bundle: Any) -> dict[str, Any]:
    """The keyword arguments of :class:`highdicom.sr.ComprehensiveSR` other than evidence and content."""
    against = gate_of(case)["against_advice"]
    description = (
        f"scintipipe {bundle.name} {bundle.version}"
        + (" GATE OVERRIDDEN" if against else "")
        + ("" if bundle.clinical_use else " NOT FOR CLINICAL USE")
    )
    return {
        "series_instance_uid": hd.UID(),
        "series_number": SERIES_NUMBER,
        "sop_instance_uid": hd.UID(),
        "instance_number": 1,
        "manufacturer": "scintipipe developers",
        "is_complete": True,
        "is_final": False,
        "series_description": description[:64],
        "software_versions": __version__,
    }


def comprehensive_sr(case: dict[str, Any], bundle: Any, source: pydicom.Dataset) -> ComprehensiveSR:
    """Build the SR of one case.

    The document is the one ``ComprehensiveSR(evidence=[source], content=report, ...)``
    makes, built faster (see :func:`assemble_document`); ``tests/test_sr_speed_equivalence.py``
    checks, element by element, that the written files are the same apart from UIDs and
    date/times.

    Args:
        case: the case after all stages.
        bundle: the bundle that classified it.
        source: the source image's DICOM header (evidence; patient and study come from it).
    """
    sr = assemble_document(source, measurement_report(case, bundle, source), document_arguments(case, bundle))
    finish_document(sr, source)
    return sr


def assemble_document(source: pydicom.Dataset, report: MeasurementReport, arguments: dict[str, Any]) -> ComprehensiveSR:
    """The Comprehensive SR around ``report``, without highdicom's passes over the full tree.

    highdicom's constructor deep-copies the content tree, re-parses the copy into content
    items (for ``sr.content``) and searches the whole tree three times (evidence references,
    SCOORD3D): about 70 % of the time to build a case's SR. Here the constructor
    gets the root container with no children, so it fills in every document attribute
    (patient, study, evidence, flags) exactly as it would; the children are then attached
    and ``sr.content`` is the report itself. What the skipped passes check holds by
    construction: the content refers only to ``source``, which is the evidence, and has
    2-D SCOORDs only.
    """
    root = report[0]
    shell = Dataset()
    for element in root:
        if element.keyword != "ContentSequence":
            shell.add(element)
    shell.ContentSequence = []
    sr = ComprehensiveSR(evidence=[source], content=shell, **arguments)
    sr.ContentSequence = root.ContentSequence
    sr._content = report  # what `sr.content` returns; the constructor set it to the childless shell
    return sr


def finish_document(sr: ComprehensiveSR, source: pydicom.Dataset) -> None:
    """Declare the private coding scheme and keep the source's de-identification conformant."""
    sr.CodingSchemeIdentificationSequence = [local_coding_scheme()]
    keep_deidentification_conformant(sr, source)


def keep_deidentification_conformant(derived: Dataset, source: pydicom.Dataset) -> None:
    """Carry the source's de-identification method beside ``PatientIdentityRemoved`` YES.

    The Patient module requires a method (Type 1C) whenever the identity is marked as
    removed; a source that marks it without one (as some anonymisers do) would make the
    derived object non-conformant, so the method then says that it was not recorded.
    """
    if str(derived.get("PatientIdentityRemoved", "")).upper() != "YES":
        return
    if "DeidentificationMethodCodeSequence" in source:
        derived.DeidentificationMethodCodeSequence = source.DeidentificationMethodCodeSequence
    if source.get("DeidentificationMethod"):
        derived.DeidentificationMethod = source.DeidentificationMethod
    elif "DeidentificationMethodCodeSequence" not in derived:
        derived.DeidentificationMethod = "not recorded by the source image (PatientIdentityRemoved YES)"


def local_coding_scheme() -> Dataset:
    """The SOP Common module's declaration of the private coding scheme the SR's codes use."""
    item = Dataset()
    item.CodingSchemeDesignator = PRIVATE_SCHEME
    item.CodingSchemeName = "scintipipe local codes"
    item.CodingSchemeResponsibleOrganization = "scintipipe developers"
    return item
