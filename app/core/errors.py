"""The domain error tree.

Every error the service raises on purpose is a ``ServiceError`` whose ``error_type`` names it
on the wire. The mapping to HTTP statuses lives in one table in ``app/api/errors.py``; the ML
core only raises these. Each message names the bad value and how to fix it.

Errors about bad arguments also subclass ``ValueError`` (and missing files ``FileNotFoundError``)
so plain Python callers can catch them the usual way.
"""

from __future__ import annotations

import errno
import os


class ServiceError(Exception):
    """Base class of sentsim's domain errors.

    Args:
        *args: The message (``Exception``'s arguments).
        param: The request field at fault, when there is one (OpenAI's ``param``).
    """

    error_type: str = "service_error"

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        self.param = param


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


class ModelNotFoundError(NotFoundError):
    """A request names a model this server does not serve."""

    error_type = "model_not_found"


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


class StorageError(ServiceError):
    """A write to the indexes folder failed (disk full, I/O error); nothing was acknowledged."""

    error_type = "storage_error"


class ReadOnlyError(StorageError):
    """The indexes folder cannot be written (read-only mount, permissions): writes are refused."""

    error_type = "read_only"


_FULL = (errno.ENOSPC, errno.EDQUOT)
_READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def storage_error(what: str, exc: BaseException) -> StorageError:
    """The domain error for a failed write, its cause named without any file path.

    Args:
        what: What was being done, e.g. ``"storing documents in collection 'faq'"``.
        exc: The ``OSError`` or ``sqlite3`` error that was raised.

    Returns:
        ``ReadOnlyError`` when the folder is not writable, else ``StorageError``; the message
        says what failed, why, and what to do.
    """
    code = exc.errno if isinstance(exc, OSError) else None
    text = str(exc).lower() if code is None else ""
    if code in _READ_ONLY or "readonly" in text or "read-only" in text:
        return ReadOnlyError(
            f"{what} failed: the indexes folder (SENTSIM_INDEXES_DIR) is not writable "
            "(read-only or not owned by the server's user); reads still work. Make it "
            "writable and restart the server"
        )
    if code in _FULL or "full" in text:
        reason = "the disk is full"
        fix = "Free space on the volume of the indexes folder (SENTSIM_INDEXES_DIR), then retry"
    else:
        reason = os.strerror(code) if code is not None else (str(exc) or type(exc).__name__)
        fix = "Check the volume of the indexes folder (SENTSIM_INDEXES_DIR), then retry"
    return StorageError(f"{what} failed: {reason}; nothing was changed. {fix}")
