"""Read DICOM element values without pydicom's overhead on first access.

pydicom converts an element from its raw bytes the first time it is read. For a text or
number element, ``ds.get("Modality")`` costs about 20 µs, of which the conversion itself
(:func:`pydicom.values.convert_value`) is about a quarter; the rest is keyword and tag
lookups, the conversion hooks and ``Dataset.__setitem__``. A planar NM file's metadata
reads some 50 elements, about a third of the loader's time. :func:`element_value` calls
``convert_value`` itself, with the VR and character set that pydicom would use, and stores
the same converted element that pydicom would (``Dataset.__setitem__`` adds nothing else for
such an element). Anything less plain goes through the dataset as before: sequences, UN and
ambiguous VRs, deferred values, and customised conversion (:mod:`pydicom.hooks`,
``pydicom.config.data_element_callback``).
"""

from __future__ import annotations

from typing import Any

from pydicom import config
from pydicom.datadict import dictionary_VR, keyword_dict
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset
from pydicom.errors import BytesLengthException
from pydicom.hooks import hooks, raw_element_value, raw_element_vr
from pydicom.tag import BaseTag
from pydicom.values import convert_value

try:  # pydicom internals this module relies on (checked on pydicom 3.0)
    from pydicom.tag import _LUT_DESCRIPTOR_TAGS
except ImportError:
    _LUT_DESCRIPTOR_TAGS = ()  # type: ignore[assignment]
#: whether this pydicom has those internals; if not, every read goes through ``ds.get``
FAST_PATH_AVAILABLE = bool(_LUT_DESCRIPTOR_TAGS) and hasattr(Dataset(), "_dict") and hasattr(Dataset, "_character_set")

#: VRs whose raw elements pydicom converts with ``convert_value`` alone: text, dates, numbers
_PLAIN_VRS = frozenset(
    ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "LO", "LT", "PN", "SH", "ST", "TM", "UC", "UI", "UR", "UT")
    + ("FD", "FL", "SL", "SS", "SV", "UL", "US", "UV")
)


def element_value(ds: Dataset, keyword: str) -> Any:
    """Return ``ds.get(keyword)``: the value of a standard element, or ``None`` when it is absent.

    The value, warnings and errors are pydicom's, and ``ds`` keeps the converted element
    as it would after ``ds.get``. A text or number element read for the first time costs
    less than half as much as with ``ds.get``, and one read again about a quarter.

    Args:
        ds: a dataset, or an item of one of its sequences.
        keyword: a DICOM keyword (``"Modality"``).

    Raises:
        KeyError: ``keyword`` is not a DICOM keyword.
        Exception: whatever pydicom raises when it converts a corrupt element.
    """
    if not FAST_PATH_AVAILABLE:
        return ds.get(keyword)
    tag = keyword_dict[keyword]  # a plain int: comparing BaseTags runs Python code
    raw = ds._dict.get(BaseTag(tag))  # as Dataset.__getitem__ does, without Tag()
    if not isinstance(raw, RawDataElement):
        return None if raw is None else raw.value
    vr = raw.VR or dictionary_VR(tag)  # implicit VR: pydicom's raw_element_vr looks it up too
    if vr not in _PLAIN_VRS or raw.value is None or tag in _LUT_DESCRIPTOR_TAGS or not _default_conversion():
        return ds[raw.tag].value
    try:
        value = convert_value(vr, raw, ds.original_character_set or ds._character_set)
    except BytesLengthException:  # pydicom's raw_element_value reports it or reads the element as UN
        return ds[raw.tag].value
    ds._dict[raw.tag] = DataElement(raw.tag, vr, value, raw.value_tell, raw.length == 0xFFFFFFFF, already_converted=True)
    return value


def _default_conversion() -> bool:
    """Whether pydicom converts raw elements in its default way (no hooks or callback set)."""
    return config.data_element_callback is None and hooks.raw_element_vr is raw_element_vr and hooks.raw_element_value is raw_element_value
