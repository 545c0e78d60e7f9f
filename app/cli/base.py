"""What the ``sentsim`` commands share: the Typer app, option types, the one mapping of domain
errors to exit codes, and encoder options from flags over settings.

Flags override ``SENTSIM_*`` environment variables and ``.env``, which override the defaults of
``app.core.config.Settings``. Domain errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer
from pydantic import ValidationError

from app.core.config import get_settings
from app.core.errors import ServiceError
from app.services.encoders import EncoderOptions

app = typer.Typer(
    name="sentsim",
    help="Sentence similarity: BERT-family encoders, BERT-whitening, STS evaluation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

ModelOpt = Annotated[
    str | None,
    typer.Option(help="Model: all-MiniLM-L6-v2 (bundled), a Hugging Face id or a local dir."),
]
PoolingOpt = Annotated[
    str | None, typer.Option(help="Pooling: cls, mean, first_last_avg or last2avg.")
]
PrecisionOpt = Annotated[str | None, typer.Option(help="Precision: auto, fp32, bf16 or int8.")]
BatchOpt = Annotated[int | None, typer.Option(min=1, help="Sentences per model call.")]
SeqOpt = Annotated[int | None, typer.Option(min=1, help="Truncation length in tokens.")]
ThreadsOpt = Annotated[int | None, typer.Option(min=1, help="CPU threads for torch.")]
DeviceOpt = Annotated[str | None, typer.Option(help="cpu, cuda, cuda:N; default: GPU if any.")]
PickleOpt = Annotated[
    bool, typer.Option(help="Also load pickle-based weights (pytorch_model.bin): trusted only.")
]
ProgressOpt = Annotated[bool, typer.Option(help="Show progress bars.")]
TrainPrecisionOpt = Annotated[str, typer.Option(help="fp32 | bf16 (autocast).")]
ResumeOpt = Annotated[bool, typer.Option(help="Continue from OUTPUT/checkpoint.")]


@contextmanager
def domain_errors() -> Iterator[None]:
    """The CLI's one mapping of domain errors: a one-line message and exit status 2."""
    try:
        yield
    except ServiceError as exc:
        typer.secho(f"error ({exc.error_type}): {exc}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None
    except ValidationError as exc:  # a SENTSIM_* variable or .env entry of the wrong form
        problems = "; ".join(
            f"SENTSIM_{'_'.join(map(str, e['loc'])).upper()}: {e['msg']}" for e in exc.errors()
        )
        typer.secho(f"error (invalid_setting): {problems}", err=True, fg=typer.colors.RED)
        raise typer.Exit(2) from None


#: Settings fields that the encoder commands also take as flags.
ENCODER_FLAGS = (
    "model",
    "pooling",
    "precision",
    "batch_size",
    "max_seq_length",
    "num_threads",
    "device",
    "allow_pickle",
)


def encoder_options(flags: dict[str, Any]) -> EncoderOptions:
    """Merge a command's flags (its ``locals()``) over the settings: a flag given wins."""
    settings = get_settings()
    return EncoderOptions(
        **{name: flags.get(name) or getattr(settings, name) for name in ENCODER_FLAGS}
    )
