"""What every request body shares: strict parsing of JSON values, common field texts."""

from __future__ import annotations

import math
from typing import Any

from pydantic import BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from app.services.identifiers import COLLECTION_NAME_PATTERN

Scalar = str | int | float | bool | None

#: Collection names, as the service checks them (the schema carries it for clients and fuzzers).
NAME_PATTERN = f"^{COLLECTION_NAME_PATTERN}$"
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def check_json(value: Any, where: str = "body") -> None:
    """Refuse what a JSON body can carry but the service cannot store or answer with: strings
    (keys included) that are not valid Unicode (lone surrogates such as ``"\\ud800"``),
    integers outside int64 (SQLite's range), and NaN or infinities. Iterative, so any nesting
    depth is safe.

    Raises:
        PydanticCustomError: ``invalid_json_value``, naming the field (``documents[0].text``).
    """
    stack: list[tuple[Any, str]] = [(value, where)]
    while stack:
        item, path = stack.pop()
        problem = None
        if isinstance(item, str):
            if not _is_unicode(item):
                problem = "is not valid Unicode (it holds a lone surrogate, e.g. \\ud800)"
        elif isinstance(item, bool):
            continue
        elif isinstance(item, int) and not INT64_MIN <= item <= INT64_MAX:
            problem = "is an integer outside the 64-bit signed range"
        elif isinstance(item, float) and not math.isfinite(item):
            problem = f"holds {item}, which is not a finite number"
        elif isinstance(item, dict):
            for key, child in item.items():
                label = key if _is_unicode(key) else ascii(key)
                stack.append((key, f"a key of {path}"))
                stack.append((child, label if path == "body" else f"{path}.{label}"))
        elif isinstance(item, list):
            stack.extend((child, f"{path}[{i}]") for i, child in enumerate(item))
        if problem is not None:
            raise PydanticCustomError(
                "invalid_json_value", "{where} {problem}", {"where": path, "problem": problem}
            )


def _is_unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


class StrictBody(BaseModel):
    """A request body: unknown fields, NaN/infinities, lone surrogates and out-of-range
    integers are refused with 422 naming the field (``check_json``)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _valid_json_values(cls, data: Any) -> Any:
        check_json(data)
        return data


#: What ``truncate`` means on every route that has it.
TRUNCATE = (
    "Cut inputs longer than the model's limit (max_seq_length tokens) instead of refusing "
    "them with 413; the inputs cut are named in the X-Truncated-Inputs response header."
)

#: The answer to token-id input (LangChain's OpenAIEmbeddings sends it by default).
TOKEN_IDS = (
    "input holds token ids; this server tokenizes text with its own model, so send the "
    "sentences as strings (LangChain: OpenAIEmbeddings(check_embedding_ctx_length=False))"
)
