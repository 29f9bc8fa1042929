"""Coded concepts for DICOM results: SNOMED CT, DCM and UCUM where a standard code
exists, else the private scheme ``99SCINTIPIPE`` (DICOM PS3.16 allows local schemes whose
designator starts with ``99``)."""

from __future__ import annotations

from highdicom.sr import CodedConcept
from pydicom.sr.codedict import codes

PRIVATE_SCHEME = "99SCINTIPIPE"


def private(value: str, meaning: str) -> CodedConcept:
    """A concept of the project's private coding scheme."""
    return CodedConcept(value=value[:16], scheme_designator=PRIVATE_SCHEME, meaning=meaning[:64])


THYROID = CodedConcept("69748006", "SCT", "Thyroid structure")
PROCEDURE = private("THYROID-SCINT", "Planar thyroid scintigraphy")
#: name of the predicted class (the model's finding) as a qualitative evaluation
PATTERN = private("UPTAKE-PATTERN", "Thyroid scintigraphic pattern")
PROBABILITY_UNIT = codes.UCUM.Percent
COUNTS_UNIT = codes.UCUM.Counts
AREA = codes.SCT.Area
AREA_UNIT = CodedConcept("mm2", "UCUM", "square millimeter")
RATIO_UNIT = codes.UCUM.Ratio
PERCENT_UNIT = codes.UCUM.Percent
TOTAL_COUNTS = private("ROI-COUNTS", "Total counts in region")

#: the anatomy (or role) of each region
REGION_CONCEPTS: dict[str, CodedConcept] = {
    "thyroid_right": codes.SCT.RightLobeOfThyroid,
    "thyroid_left": codes.SCT.LeftLobeOfThyroid,
    "isthmus": codes.SCT.StructureOfIsthmusOfThyroidGland,
    "nodules_hot": codes.SCT.Nodule,
    "nodules_cold": codes.SCT.Nodule,
    "salivary_right": codes.SCT.SalivaryGland,
    "salivary_left": codes.SCT.SalivaryGland,
    "background": codes.DCM.Background,
}

#: whole-scan quantities: concept and unit
SCAN_QUANTITIES: dict[str, tuple[CodedConcept, CodedConcept]] = {
    "uptake_percent": (private("TC-UPTAKE", "Thyroid uptake of injected 99mTc activity"), PERCENT_UNIT),
    "left_right_ratio": (private("LR-RATIO", "Left to right thyroid lobe net count ratio"), RATIO_UNIT),
    "thyroid_to_background_ratio": (private("TB-RATIO", "Thyroid to background count density ratio"), RATIO_UNIT),
    "thyroid_to_salivary_ratio": (private("TS-RATIO", "Thyroid to salivary gland count density ratio"), RATIO_UNIT),
    "thyroid_net_counts": (private("THY-NET-COUNTS", "Background-subtracted thyroid counts"), COUNTS_UNIT),
    "thyroid_area_mm2": (AREA, AREA_UNIT),
}


def label_concept(label: str) -> CodedConcept:
    """The coded value of a class label (e.g. ``diffusely_increased``)."""
    return private(label.upper().replace("_", "-"), label.replace("_", " "))


def probability_concept(label: str) -> CodedConcept:
    """The concept "probability of <label>"."""
    return private(f"P-{label.upper().replace('_', '-')}", f"Probability of {label.replace('_', ' ')}")


#: TID 1500's optional root container of qualitative evaluations (CODE and TEXT items)
QUALITATIVE_EVALUATIONS = CodedConcept("C0034375", "UMLS", "Qualitative Evaluations")
#: free-text comment (the against-advice warning)
COMMENT = codes.DCM.Comment
#: the input gate's verdict: is the view within the data the model was made for (SCT Yes/No)
IN_DISTRIBUTION = private("IN-DISTRIBUTION", "Input within the model's training distribution")
YES = codes.SCT.Yes
NO = codes.SCT.No
#: the learned out-of-distribution score and its threshold (higher is further out)
OOD_SCORE = private("OOD-SCORE", "Out-of-distribution score")
OOD_THRESHOLD = private("OOD-THRESHOLD", "Out-of-distribution score threshold")
NO_UNITS = codes.UCUM.NoUnits
