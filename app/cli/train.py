"""``sentsim train-simbert``, ``train-encoder`` and ``export-simbert``: the training commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from app.cli.base import (
    DeviceOpt,
    ModelOpt,
    PoolingOpt,
    ProgressOpt,
    ResumeOpt,
    TrainPrecisionOpt,
    app,
    domain_errors,
)
from app.core.config import get_settings
from app.core.datasets import read_pairs, read_sts
from app.encoding.registry import resolve_model


@app.command("train-simbert")
def train_simbert_command(
    pairs: Annotated[Path, typer.Option(help="sentence1<TAB>sentence2[<TAB>score] pairs.")],
    output: Annotated[Path, typer.Option(help="Folder of the trained model, e.g. models/NAME.")],
    base: ModelOpt = None,
    min_score: Annotated[
        float | None, typer.Option(help="With a score column: keep pairs scoring at least this.")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=2, help="Pairs per step.")] = 32,
    max_steps: Annotated[int, typer.Option(min=1, help="Optimizer steps.")] = 1000,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW peak learning rate.")] = 5e-5,
    warmup_steps: Annotated[int, typer.Option(min=0, help="Linear warm-up steps.")] = 100,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Steps between checkpoints.")] = 200,
    max_length: Annotated[int, typer.Option(min=4, help="Tokens per sentence.")] = 64,
    seed: Annotated[int, typer.Option(help="Seed of initialisation and data order.")] = 0,
    precision: TrainPrecisionOpt = "fp32",
    resume: ResumeOpt = False,
    device: DeviceOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Fine-tune a BERT the SimBERT way (seq2seq + retrieval losses) on paraphrase pairs."""
    from app.training.simbert import TrainConfig, train_simbert

    with domain_errors():
        config = TrainConfig(
            batch_size=batch_size,
            max_steps=max_steps,
            lr=lr,
            warmup_steps=warmup_steps,
            checkpoint_every=checkpoint_every,
            max_length=max_length,
            seed=seed,
            precision=precision,
        )
        model = resolve_model(base or get_settings().model).path
        report = train_simbert(
            read_pairs(pairs, min_score),
            model,
            output,
            config,
            resume=resume,
            device=device,
            show_progress_bar=progress,
        )
    first, last = report.seq2seq_losses[0], report.seq2seq_losses[-1]
    typer.echo(
        f"trained {report.steps} steps in {report.seconds:.0f} s: seq2seq loss {first:.3f} -> "
        f"{last:.3f}, retrieval {report.retrieval_losses[0]:.3f} -> "
        f"{report.retrieval_losses[-1]:.3f}; saved to {output}"
    )


@app.command("train-encoder")
def train_encoder_command(
    pairs: Annotated[Path, typer.Option(help="sentence1<TAB>sentence2<TAB>score pairs (TSV).")],
    output: Annotated[Path, typer.Option(help="Folder of the trained encoder: models/NAME.")],
    base: ModelOpt = None,
    loss: Annotated[
        str, typer.Option(help="am-softmax (positive pairs) | cosent (graded scores).")
    ] = "am-softmax",
    margin: Annotated[
        float,
        typer.Option(
            min=0.0,
            help="AM-Softmax's margin m (the source's 0.35; to fine-tune a model already "
            "trained for cosine, 0.1 with --scale 20: see README).",
        ),
    ] = 0.35,
    negatives: Annotated[
        str,
        typer.Option(help="AM-Softmax negatives: partners (other pairs' partners) | batch (all)."),
    ] = "partners",
    scale: Annotated[
        float | None, typer.Option(min=0.0, help="Loss scale (AM-Softmax s=30, CoSENT 20).")
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(help="am-softmax: keep only pairs scoring at least this.")
    ] = None,
    epochs: Annotated[int, typer.Option(min=1, help="Passes over the pairs.")] = 1,
    batch_size: Annotated[int, typer.Option(min=2, help="Pairs per step.")] = 64,
    lr: Annotated[float, typer.Option(min=0.0, help="AdamW peak learning rate.")] = 2e-5,
    warmup_steps: Annotated[int, typer.Option(min=0, help="Linear warm-up steps.")] = 100,
    checkpoint_every: Annotated[int, typer.Option(min=1, help="Steps between checkpoints.")] = 500,
    max_length: Annotated[
        int | None, typer.Option(min=4, help="Tokens per sentence (default: the model's).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the data order and dropout.")] = 0,
    precision: TrainPrecisionOpt = "fp32",
    pooling: PoolingOpt = None,
    dev: Annotated[
        Path | None,
        typer.Option(help="Dev pairs scored before and after: Spearman (cosent), recall@1."),
    ] = None,
    resume: ResumeOpt = False,
    device: DeviceOpt = None,
    progress: ProgressOpt = True,
) -> None:
    """Fine-tune the encoder on your pairs (AM-Softmax or CoSENT); serve it with --model OUTPUT."""
    from app.encoding.bert import BertEncoder
    from app.services.evaluation import dev_score
    from app.training.encoder import EncoderTrainConfig, train_encoder

    with domain_errors():
        config = EncoderTrainConfig(
            loss=loss,
            margin=margin,
            negatives=negatives,
            scale=scale,
            epochs=epochs,
            batch_size=batch_size,
            lr=lr,
            warmup_steps=warmup_steps,
            checkpoint_every=checkpoint_every,
            max_length=max_length,
            seed=seed,
            precision=precision,
        )
        data = read_sts(pairs)
        examples = [
            (a, b, score)
            for a, b, score in zip(data.sentences1, data.sentences2, data.scores, strict=True)
            if min_score is None or score >= min_score
        ]
        model = resolve_model(base or get_settings().model).path
        pooling = pooling or get_settings().pooling
        dev_pairs = read_sts(dev) if dev is not None else None
        metric = "spearman" if loss == "cosent" else "recall@1"

        def score(path: str) -> float:
            assert dev_pairs is not None
            return dev_score(BertEncoder(path, pooling=pooling, device=device), dev_pairs, metric)

        before = score(model) if dev_pairs is not None else None
        report = train_encoder(
            examples,
            model,
            output,
            config,
            pooling=pooling,
            resume=resume,
            device=device,
            show_progress_bar=progress,
        )
        after = score(str(output)) if dev_pairs is not None else None
    typer.echo(
        f"trained {report.steps} steps in {report.seconds:.0f} s: {loss} loss "
        f"{report.losses[0]:.4f} -> {report.losses[-1]:.4f}; saved to {output}"
    )
    if before is not None and after is not None:
        typer.echo(f"dev {metric} x100: {before:.2f} before, {after:.2f} after")


@app.command("export-simbert")
def export_simbert_command(
    source: Annotated[Path, typer.Option(help="A train-simbert output folder.")],
    output: Annotated[Path, typer.Option(help="The folder to ship, e.g. models/NAME.")],
) -> None:
    """Write a trained generator as fp16 safetensors + tokenizer + training record + SHA256SUMS."""
    from app.training.simbert import export_generator

    with domain_errors():
        names = export_generator(source, output)
    typer.echo(f"wrote {', '.join(names)} to {output}")
