"""The one base class for dictionary forms of array transforms (MONAI's ``Xd`` pattern).

A plugin writes its array transform ``X`` (a subclass of :data:`ArrayTransform`, which is
MONAI's :class:`~monai.transforms.Transform`: implement ``__call__(img)``) and gets ``Xd``
in three lines::

    class EqualizeHistogramd(ArrayTransformd):
        array_transform = EqualizeHistogram
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

#: the base of an array transform ``X``: MONAI's ``Transform`` (implement ``__call__(img)``)
ArrayTransform = Transform


class ArrayTransformd(MapTransform):
    """Apply ``array_transform(**kwargs)`` to every key in ``keys``.

    Args:
        keys: keys of the data dictionary to transform.
        allow_missing_keys: do not fail when a key is absent.
        **kwargs: arguments of the array transform.
    """

    array_transform: type[ArrayTransform]

    def __init__(self, keys: KeysCollection, allow_missing_keys: bool = False, **kwargs: Any):
        super().__init__(keys, allow_missing_keys)
        self.transform = self.array_transform(**kwargs)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.transform(d[key])
        return d
