"""Errors the server turns into 4xx answers, each with a message a person understands."""

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
