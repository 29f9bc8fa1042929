"""Exceptions that carry a reason a person understands.

Loaders and stages raise :class:`ScanError` for bad input; the pipeline runner turns any
other exception raised inside a plugin into a :class:`PluginError` naming the plugin, the
stage and the input file.
"""

from __future__ import annotations


class ScintipipeError(Exception):
    """Base class of every error scintipipe raises on purpose."""


class ScanError(ScintipipeError):
    """An input file cannot be used, with the file and the reason.

    Args:
        source: the file (or ``file#view``) the problem belongs to.
        reason: what is wrong, in words a reader of ``errors.csv`` understands.
    """

    def __init__(self, source: object, reason: str):
        self.source = str(source)
        self.reason = reason
        super().__init__(f"{self.source}: {reason}")

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by the constructor's arguments (results of worker processes carry these errors)."""
        return (type(self), (self.source, self.reason), self.__dict__)


class NotAnImage(ScanError):
    """The file is readable but holds no image to classify (DICOMDIR, SR, RT...).

    The runner skips such files with a note instead of counting them as failures.
    """


class PluginError(ScintipipeError):
    """A plugin raised an unexpected exception while handling one input.

    Args:
        plugin: name of the plugin whose hook implementation raised.
        stage: pipeline stage (``load``, ``preprocess``, ...).
        source: the input file being processed.
        cause: the original exception.
    """

    def __init__(self, plugin: str, stage: str, source: object, cause: BaseException):
        self.plugin = plugin
        self.stage = stage
        self.source = str(source)
        self.cause = cause
        super().__init__(f"plugin {plugin!r} failed in stage {stage!r} on {self.source}: {type(cause).__name__}: {cause}")

    def __reduce__(self) -> tuple[object, ...]:
        """Pickle by the constructor's arguments (results of worker processes carry these errors)."""
        return (type(self), (self.plugin, self.stage, self.source, self.cause), self.__dict__)


class BundleError(ScintipipeError):
    """A bundle cannot be found or is malformed."""


class RegistrationError(ScintipipeError):
    """Two plugins registered the same name, or a registration is invalid."""
