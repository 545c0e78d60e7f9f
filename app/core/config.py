"""Settings: read from the environment (prefix ``SENTSIM_``) and ``.env``, at the edges only.

Precedence: a CLI flag overrides the environment, which overrides ``.env``, which overrides the
defaults below. The ML classes never read settings; ``app/cli.py`` (and later ``app/main.py``)
pass the values on as constructor arguments.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

Pooling = Literal["cls", "mean", "first_last_avg", "last2avg"]
Precision = Literal["fp32", "bf16", "int8"]


class Settings(BaseSettings):
    """Configuration of the encoder and the data folders.

    Attributes:
        model: Model name: ``all-MiniLM-L6-v2`` (bundled, verified by SHA-256), a Hugging Face
            Hub id, or a local checkpoint directory.
        pooling: How token vectors become one sentence vector (DESIGN.md §1).
        precision: ``fp32``, ``bf16`` (autocast) or ``int8`` (dynamic quantization, CPU only).
        max_seq_length: Truncation length in tokens; ``None`` takes the checkpoint's own.
        batch_size: Sentences per model call.
        num_threads: CPU threads for torch; ``None`` keeps torch's default.
        device: ``cpu``, ``cuda``, ``cuda:1``...; ``None`` picks a GPU when one is present.
        allow_pickle: Also load pickle-based weight files (``pytorch_model.bin``). Off: only
            safetensors weights load, since unpickling can run arbitrary code.
        models_dir: Folder of model artifacts (fitted transforms).
        indexes_dir: Folder of persisted indexes.
    """

    model_config = SettingsConfigDict(
        env_prefix="SENTSIM_", env_file=".env", env_ignore_empty=True, extra="ignore"
    )

    model: str = "all-MiniLM-L6-v2"
    pooling: Pooling = "mean"
    precision: Precision = "fp32"
    max_seq_length: int | None = Field(default=None, ge=1)
    batch_size: int = Field(default=32, ge=1)
    num_threads: int | None = Field(default=None, ge=1)
    device: str | None = None
    allow_pickle: bool = False
    models_dir: Path = Path("models")
    indexes_dir: Path = Path("indexes")


@lru_cache
def get_settings() -> Settings:
    """Return the process-wide settings, read once from the environment."""
    return Settings()
