"""What a collection name and a document id may be: the patterns the API publishes in its
schema, and the checks the service applies whatever the caller."""

from __future__ import annotations

import re

from app.core.errors import InputValidationError

#: Collection names (full match).
COLLECTION_NAME_PATTERN = r"[a-z0-9_-]{1,64}"
_CHAR, _FIRST = r"[^/\x00-\x1f\x7f]", r"[^/.\x00-\x1f\x7f]"  # no '/' or control; no '.'
_SEGMENT = rf"(?:{_FIRST}{_CHAR}*|\.{_FIRST}{_CHAR}*|\.\.{_CHAR}+)"  # not '', '.' or '..'

#: Document ids: printable text whose '/'-separated parts are neither empty nor '.' / '..'
#: (clients rewrite those in URLs), so that every stored id is reachable at /documents/{id}.
DOCUMENT_ID_PATTERN = rf"^{_SEGMENT}(?:/{_SEGMENT})*$"
_NAME = re.compile(COLLECTION_NAME_PATTERN)
_DOCUMENT_ID = re.compile(DOCUMENT_ID_PATTERN)


def check_collection_name(name: str) -> None:
    """Raises ``InputValidationError`` unless ``name`` matches ``COLLECTION_NAME_PATTERN``."""
    if not _NAME.fullmatch(name):
        raise InputValidationError(f"collection name {name!r} must match [a-z0-9_-]{{1,64}}")


def check_document_id(doc_id: str, where: str) -> None:
    """Refuse ids that a URL cannot carry to ``/documents/{id}``: empty or ``.`` / ``..`` parts
    between slashes (clients collapse them) and control characters.

    Raises:
        InputValidationError: Such an id.
    """
    if not _DOCUMENT_ID.fullmatch(doc_id):
        raise InputValidationError(
            f"{where} {doc_id!r} is not a reachable id: use printable text whose '/'-separated "
            "parts are neither empty nor '.' or '..'"
        )
