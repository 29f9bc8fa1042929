"""Loading transforms that reuse scintipipe's loaders inside MONAI pipelines."""

from __future__ import annotations

from collections.abc import Hashable, Mapping
from typing import Any

from monai.config import KeysCollection
from monai.transforms import MapTransform, Transform

from scintipipe.errors import ScanError


class LoadScan(Transform):
    """Read one view of a scintigram file as a ``MetaTensor`` of counts.

    Loads through the plugins' ``load_scans`` hooks (:func:`scintipipe.loading.read_views`),
    so a bundle run standalone reads what ``scintipipe run`` reads.

    Args:
        view: which view of a multi-frame file to keep (``"anterior"``); ``None`` keeps
            the first.
    """

    def __init__(self, view: str | None = None):
        self.view = view

    def __call__(self, path: str) -> Any:
        from scintipipe.loading import read_views

        scans = read_views(path)
        if self.view is not None:
            scans = [s for s in scans if s["image"].meta.get("view") == self.view] or scans
        if not scans:
            raise ScanError(path, "no image found")
        return scans[0]["image"]


class LoadScand(MapTransform):
    """Dictionary form of :class:`LoadScan`: replaces file paths under ``keys`` by images."""

    def __init__(self, keys: KeysCollection, view: str | None = None, allow_missing_keys: bool = False):
        super().__init__(keys, allow_missing_keys)
        self.loader = LoadScan(view)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.loader(d[key])
        return d


class CollatableMetad(MapTransform):
    """Keep only metadata every scan has, so MONAI's collate can batch scans.

    Scans from different sources carry different metadata, some of it ``None`` (a PNG
    export has no spacing), which ``default_collate`` refuses. Used last in a bundle's
    standalone ``preprocessing``; the scintipipe runner batches plain tensors instead.
    """

    KEEP = ("filename_or_obj", "affine")

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            image = d[key]
            if hasattr(image, "meta"):
                image.meta = {k: image.meta[k] for k in self.KEEP if image.meta.get(k) is not None}
        return d


def list_scans(folder: str) -> list[str]:
    """Files under ``folder`` that load as scans, for a bundle's standalone ``datalist``.

    Uses the same walk as ``scintipipe run`` and leaves out what the runner would skip or
    fail on (labels, JSON, NIfTI masks, contact sheets, unreadable files), so
    ``python -m monai.bundle run`` works on a folder written by ``scintipipe simulate``.
    Each kept file is read once here and again by :class:`LoadScand`.
    """
    from scintipipe.loaders import iter_input_files
    from scintipipe.loading import read_views

    kept = []
    for path in iter_input_files([folder]):
        try:
            read_views(path)
        except ScanError:  # NotAnImage included
            continue
        kept.append(str(path))
    return kept
