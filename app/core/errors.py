"""The domain error tree.

Every error the service raises on purpose is a ``ServiceError`` whose ``error_type`` names it
on the wire. The mapping to HTTP statuses lives in one table in ``app/api/errors.py``; the ML
core only raises these. Each message names the bad value and how to fix it.

Errors about bad arguments also subclass ``ValueError`` (and missing files ``FileNotFoundError``)
so plain Python callers can catch them the usual way.
"""

from __future__ import annotations


class ServiceError(Exception):
    """Base class of sentsim's domain errors."""

    error_type: str = "service_error"


class InputValidationError(ServiceError, ValueError):
    """An argument or input value is invalid (an unknown option, a malformed file line...)."""

    error_type = "validation_error"


class EmptyInputError(InputValidationError):
    """No sentences were given, or a sentence is empty."""

    error_type = "empty_input"


class DimensionMismatchError(InputValidationError):
    """Arrays whose dimensions do not fit together (e.g. d=384 vectors into a d=768 transform)."""

    error_type = "dimension_mismatch"


class TransformMismatchError(InputValidationError):
    """A saved transform was fitted for another model, pooling or dimension than the encoder's."""

    error_type = "transform_mismatch"


class NotFittedError(ServiceError, RuntimeError):
    """A transform was used before ``fit`` (or ``load``)."""

    error_type = "not_fitted"


class ArtifactNotFoundError(ServiceError, FileNotFoundError):
    """A model, transform or data file that was named does not exist."""

    error_type = "not_found"


class ModelLoadError(ServiceError, RuntimeError):
    """A model checkpoint could not be resolved or loaded."""

    error_type = "model_load_error"


class ModelIntegrityError(ModelLoadError):
    """A bundled checkpoint's weights do not match their recorded SHA-256 digest."""

    error_type = "model_integrity_error"


class NotFoundError(ServiceError, LookupError):
    """A named collection, document or transform does not exist."""

    error_type = "not_found"


class ConflictError(ServiceError):
    """The request conflicts with the current state (e.g. a collection that already exists)."""

    error_type = "conflict"


class BatchTooLargeError(InputValidationError):
    """More sentences, documents or characters than the configured limit."""

    error_type = "batch_too_large"


class OverloadedError(ServiceError):
    """The model's queue is full; retry later."""

    error_type = "overloaded"


class NotReadyError(ServiceError):
    """A component needed for the request is not loaded (model, generator...)."""

    error_type = "unhealthy"


class UnauthorizedError(ServiceError):
    """A missing or wrong API key."""

    error_type = "unauthorized"
