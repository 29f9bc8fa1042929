"""The gate's ``metadata`` layer: what the DICOM header already says about a view.

Checks, in order (the first that fails is the reason):

1. **Written by scintipipe.** A DERIVED image whose manufacturer is scintipipe's or whose
   series description starts with "scintipipe" is one of our own result overlays, not an acquisition
   (``run`` pointed at an earlier results folder).
2. **Modality.** A planar thyroid view is NM, or an OT/SC/XC export of one. CT, MR, US,
   PT, radiographs, RT objects, SR and the rest are refused, naming the modality.
3. **Radionuclide.** An NM view whose radionuclide is known and is not one the bundle
   was made for (``configs/gate.json`` ``radionuclides``: 99mTc or 123I for uptake4 and
   disease, 131I for remnant) is refused.
4. **Body part and descriptions.** A body part (BodyPartExamined) or a series or study
   description that names another organ or a whole-body view, and no thyroid or neck
   word, is refused (``POUMON-REIN``, ``WHOLE BODY``, ``RENOGRAM``). A series description
   that names a syringe (``SERINGUE PLEINE``, ``SYRINGE FULL``) marks the view as a
   syringe image: skipped, and offered for the study's uptake.

Words are matched whole, case- and accent-insensitively, in English, French, German,
Spanish, Italian and Dutch, the languages of the cameras' menus in the seeds' centres
and the reference scans. Views without metadata (PNG/JPEG exports) pass this layer.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from scintipipe.gate.refusal import Refusal

#: the Manufacturer scintipipe writes into its Secondary Captures and SRs
RESULT_MANUFACTURER = "scintipipe developers"

#: modalities that can hold a planar thyroid view: NM, or a secondary capture/export of one
PLANAR_MODALITIES = frozenset({"NM", "OT", "SC", "XC"})

#: names of the modalities refused most often, for a readable reason
MODALITY_NAMES = {
    "CT": "computed tomography",
    "MR": "magnetic resonance",
    "US": "ultrasound",
    "PT": "PET",
    "CR": "computed radiography",
    "DX": "digital radiography",
    "MG": "mammography",
    "XA": "X-ray angiography",
    "RF": "radiofluoroscopy",
    "RTIMAGE": "a radiotherapy image",
    "RTDOSE": "a radiotherapy dose",
    "RTSTRUCT": "radiotherapy structures",
    "RTPLAN": "a radiotherapy plan",
    "SR": "a structured report",
    "SEG": "a segmentation",
    "PR": "a presentation state",
    "KO": "a key object selection",
    "ECG": "an electrocardiogram",
    "DOC": "a document",
}

#: words that say the view shows the thyroid or the neck (they win over organ words)
THYROID_WORDS = (
    "thyroid", "thyroide", "thyroidea", "thyreoidea", "schilddruse", "schilddrusen", "tiroides", "tiroide", "schildklier",
    "thyro", "neck", "cou", "hals", "cuello", "collo", "cervical", "headneck", "head neck", "remnant", "residuel", "reliquat",
)  # fmt: skip

#: organ or view words that are not the thyroid, with the organ they name
OTHER_ORGAN_WORDS = {
    "lung": ("lung", "lungs", "pulmonary", "poumon", "poumons", "pulmonaire", "lunge", "lungen", "pulmon", "pulmones", "polmone", "polmoni", "longen", "perfusion", "ventilation", "vq"),
    "kidney": ("kidney", "kidneys", "renal", "rein", "reins", "renale", "niere", "nieren", "rinon", "nier", "renogram", "renography", "mag3", "dmsa"),
    "bone": ("bone", "bones", "skeleton", "skeletal", "osseuse", "osseux", "squelette", "knochen", "skelett", "hueso", "oseo", "osseo", "scheletro", "mdp", "hdp", "hmdp"),
    "heart": ("heart", "cardiac", "myocardial", "myocardium", "coeur", "cardiaque", "herz", "corazon", "cuore", "muga"),
    "liver": ("liver", "hepatic", "hepatobiliary", "foie", "hepatique", "leber", "higado", "fegato", "hida"),
    "brain": ("brain", "cerebral", "cerveau", "gehirn", "cerebro", "cervello", "hersenen", "datscan"),
    "stomach": ("stomach", "gastric", "estomac", "gastrique", "magen", "estomago", "stomaco", "maag"),
    "bladder": ("bladder", "vessie", "blase", "vejiga", "vescica"),
    "whole body": ("whole body", "wholebody", "wb", "corps entier", "ganzkorper", "cuerpo entero", "total body", "corpo intero"),
    "shunt": ("shunt",),
}  # fmt: skip

#: words that name a syringe, a vial or a standard (not the patient)
SYRINGE_WORDS = ("syringe", "syringes", "seringue", "seringues", "spritze", "jeringa", "siringa", "spuit", "vial", "flacon")


def normalise_words(text: str) -> str:
    """Lower case, accents removed, every run of non-letters made one space, padded.

    Example:
        >>> normalise_words("POUMON-REIN  Schilddrüse")
        ' poumon rein schilddruse '
    """
    plain = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return " " + re.sub(r"[^a-z0-9]+", " ", plain.lower()).strip() + " "


def names_any(text: str, words: Iterable[str]) -> str | None:
    """The first of ``words`` found as whole words in normalised ``text``, else ``None``."""
    for word in words:
        if f" {word} " in text:
            return word
    return None


def metadata_refusal(meta: dict[str, Any], radionuclides: tuple[str, ...] | None = None) -> Refusal | None:
    """The metadata layer's verdict on one view.

    Args:
        meta: the scan's metadata (``scan["image"].meta``).
        radionuclides: the radionuclides the bundle accepts for NM views (``None``: any).

    Returns:
        ``None`` when the header raises no objection, else a :class:`Refusal` (a skip for a
        view whose series description names a syringe).

    Example:
        >>> metadata_refusal({"modality": "CT"}).reason
        'modality CT (computed tomography) cannot hold a planar thyroid scintigram; expected NM, or an OT/SC export of one'
        >>> metadata_refusal({"modality": "NM", "radionuclide": "Tc-99m"}, ("Tc-99m", "I-123")) is None
        True
    """
    manufacturer = str(meta.get("manufacturer") or "")
    series = str(meta.get("series_description") or "")
    derived = "DERIVED" in str(meta.get("image_type") or "").upper()
    if derived and (manufacturer == RESULT_MANUFACTURER or series.lower().startswith("scintipipe ")):
        return Refusal("metadata", f"a scintipipe result (series {series!r} by {manufacturer!r}), not an acquisition")
    modality = str(meta.get("modality") or "").upper().strip()
    if modality and modality not in PLANAR_MODALITIES:
        name = MODALITY_NAMES.get(modality, "not nuclear medicine")
        return Refusal("metadata", f"modality {modality} ({name}) cannot hold a planar thyroid scintigram; expected NM, or an OT/SC export of one")
    nuclide = meta.get("radionuclide")
    if modality == "NM" and nuclide and radionuclides and nuclide not in radionuclides:
        return Refusal("metadata", f"radionuclide {nuclide} does not match this bundle, which was made for {' or '.join(radionuclides)}")
    series_words = normalise_words(series)
    syringe = names_any(series_words, SYRINGE_WORDS)
    if syringe:
        return Refusal("metadata", f"syringe or point source (series description {series!r})", skip=True, kind="syringe")
    for field in ("body_part", "series_description", "study_description"):
        text = normalise_words(str(meta.get(field) or ""))
        if names_any(text, THYROID_WORDS):
            continue
        for organ, words in OTHER_ORGAN_WORDS.items():
            word = names_any(text, words)
            if word:
                label = field.replace("_", " ")
                return Refusal("metadata", f"{label} {meta.get(field)!r} names {organ if organ != word else 'a ' + organ + ' view'}, not the thyroid")
    return None


def syringe_phase(meta: dict[str, Any]) -> str | None:
    """``"full"`` or ``"empty"`` when the series description says which syringe image it is.

    Example:
        >>> syringe_phase({"series_description": "SERINGUE PLEINE"}), syringe_phase({"series_description": "SYRINGE EMPTY"})
        ('full', 'empty')
    """
    text = normalise_words(str(meta.get("series_description") or ""))
    if names_any(text, ("empty", "vide", "leer", "vacia", "vuota", "leeg", "residual", "residuel", "reste")):
        return "empty"
    if names_any(text, ("full", "pleine", "plein", "voll", "llena", "piena")):
        return "full"
    return None
