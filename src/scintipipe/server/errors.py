"""Errors the server turns into 4xx (and 502) answers, each with a message a person understands."""

from __future__ import annotations


class BadRequest(ValueError):
    """The request cannot be answered as asked (bad params, wrong output kind): 400."""


class NotFound(KeyError):
    """An unknown image, label, model or strategy: 404 (the message lists what there is)."""


class UnknownModel(NotFound):
    """No model of that name."""


class UnknownStrategy(NotFound):
    """No active-learning strategy of that name."""


class PayloadTooLarge(BadRequest):
    """An upload over the size limit: 413."""


class TrainingBusy(RuntimeError):
    """A training job is already running: 409."""


class BadGateway(RuntimeError):
    """The PACS behind a DICOMweb datastore did not answer, or answered an error: 502 (the message names its URL)."""


def hide_paths(text: str, replacements: dict[str, str]) -> str:
    """``text`` with each server path in ``replacements`` replaced by what the user may see.

    Longer paths are replaced first, so a file under a folder becomes its own replacement
    rather than the folder's plus a tail.
    """
    for path in sorted(replacements, key=len, reverse=True):
        if path:
            text = text.replace(path, replacements[path])
    return text
