"""Errors a user can act on. Every message names the offending thing (file, layer, shape, value)."""


class ResilqError(Exception):
    """Base class: the CLI prints these as one-line errors instead of a traceback."""


class FormatError(ResilqError):
    """A resilq file (.rq, .nvf, package) is corrupt, truncated, of another kind or of another version."""


class UnsupportedModelError(ResilqError):
    """A model uses a layer, quantizer or size that resilq (or the accelerator) cannot represent."""


class DatasetError(ResilqError):
    """A dataset is missing or its files are malformed."""


class ShapeError(ResilqError):
    """An input or tensor has the wrong shape or dtype for the model."""


class MismatchError(ResilqError):
    """Two artefacts that must belong together do not (e.g. an NVF file computed for another model)."""


class ParameterError(ResilqError, ValueError):
    """A user-supplied parameter is out of range (a threshold outside [0, 1], a ratio >= 1, ...)."""
