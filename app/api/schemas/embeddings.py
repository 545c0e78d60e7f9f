"""Embeddings: OpenAI ``/v1/embeddings`` and TEI ``/embed`` bodies."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from app.api.schemas.base import TOKEN_IDS, TRUNCATE, StrictBody


class EmbeddingsRequest(StrictBody):
    """OpenAI ``POST /v1/embeddings``."""

    model_config = ConfigDict(
        extra="ignore",  # OpenAI clients may send fields this server does not use
        json_schema_extra={"examples": [{"input": ["A man is playing a guitar."]}]},
    )
    input: str | list[str] = Field(
        description="A sentence or a list of up to 2,048 sentences (SENTSIM_MAX_CLIENT_BATCH_SIZE)"
        ". Text only: token-id arrays are refused (this server tokenizes with its own model)."
    )
    model: str | None = Field(
        default=None,
        description="A served name (GET /v1/models; SENTSIM_SERVED_MODEL_NAMES), or omit it.",
    )
    encoding_format: Literal["float", "base64"] = Field(
        default="float", description="base64: little-endian float32 bytes, base64-encoded."
    )
    dimensions: int | None = Field(
        default=None, ge=1, description="Keep the first n components, renormalised."
    )
    user: str | None = None
    truncate: bool = Field(
        default=False,
        description="sentsim's extension (OpenAI SDKs: extra_body={'truncate': True}): cut inputs"
        " longer than the model's limit instead of refusing them with 413. Truncated inputs are "
        "listed in the X-Truncated-Inputs response header.",
    )

    @field_validator("input", mode="before")
    @classmethod
    def _text_not_token_ids(cls, value: Any) -> Any:
        first = value[0] if isinstance(value, list) and value else None
        if isinstance(first, list) or (isinstance(first, int) and not isinstance(first, bool)):
            raise PydanticCustomError("token_ids", TOKEN_IDS)
        return value


class EmbeddingItem(BaseModel):
    """One vector of an OpenAI embeddings response."""

    object: Literal["embedding"] = "embedding"
    index: int
    embedding: list[float] | str


class Usage(BaseModel):
    """Token counts (the model's own tokenizer, special tokens included)."""

    prompt_tokens: int
    total_tokens: int


class EmbeddingsResponse(BaseModel):
    """OpenAI embeddings response: L2-normalised vectors."""

    object: Literal["list"] = "list"
    data: list[EmbeddingItem]
    model: str
    usage: Usage


class ModelCard(BaseModel):
    """One entry of ``GET /v1/models`` (OpenAI's model object)."""

    id: str
    object: Literal["model"] = "model"
    created: int = Field(description="Unix time the server started.")
    owned_by: str = "sentsim"


class ModelList(BaseModel):
    """``GET /v1/models``: the names the OpenAI routes answer to."""

    object: Literal["list"] = "list"
    data: list[ModelCard]


class EmbedRequest(StrictBody):
    """TEI ``POST /embed`` (and ``POST /``)."""

    model_config = ConfigDict(  # extra="forbid", allow_inf_nan=False: from StrictBody
        json_schema_extra={"examples": [{"inputs": ["What is Deep Learning?"], "normalize": True}]},
    )
    inputs: str | list[str]
    normalize: bool = True
    truncate: bool = Field(default=False, description=TRUNCATE)
    truncation_direction: Literal["right", "Right"] = Field(
        default="right", description="TEI's; only the end of an input is ever cut."
    )
    prompt_name: None = Field(default=None, description="TEI's; this server has no prompts.")
