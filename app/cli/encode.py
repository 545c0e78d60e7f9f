"""``sentsim encode``, ``fit-whitening`` and ``fit-flow``: vectors and transforms of a corpus."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import numpy as np
import typer

from app.cli.base import (
    BatchOpt,
    DeviceOpt,
    ModelOpt,
    PickleOpt,
    PoolingOpt,
    PrecisionOpt,
    ProgressOpt,
    SeqOpt,
    ThreadsOpt,
    app,
    domain_errors,
    encoder_options,
)
from app.core.datasets import read_corpus
from app.services.encoders import load_encoder
from app.services.transforms import fit_flow, fit_whitening
from app.transforms.normalize import l2_normalize


@app.command()
def encode(
    input: Annotated[Path, typer.Option(help="Corpus: one sentence per line, or a TSV.")],
    output: Annotated[Path, typer.Option(help="Where to write float32 (n, d) vectors (.npy).")],
    model: ModelOpt = None,
    pooling: PoolingOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchOpt = None,
    max_seq_length: SeqOpt = None,
    num_threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    allow_pickle: PickleOpt = False,
    progress: ProgressOpt = True,
    normalize: Annotated[
        bool, typer.Option(help="Unit length, as the API's vectors (--no-normalize: raw).")
    ] = True,
) -> None:
    """Encode a corpus into a .npy array of sentence vectors (rows in input order)."""
    with domain_errors():
        options = encoder_options(locals())
        sentences = read_corpus(input)
        vectors = load_encoder(options).encode(sentences, show_progress_bar=progress)
        if normalize:
            vectors = l2_normalize(vectors)
        output.parent.mkdir(parents=True, exist_ok=True)
        np.save(output, vectors)
    kind = "unit-length" if normalize else "raw"
    typer.echo(f"wrote {vectors.shape[0]} x {vectors.shape[1]} {kind} float32 vectors to {output}")


@app.command("fit-whitening")
def fit_whitening_command(
    corpus: Annotated[Path, typer.Option(help="Corpus: one sentence per line, or a TSV.")],
    output: Annotated[Path, typer.Option(help="Folder to write, e.g. models/NAME.")],
    k: Annotated[int | None, typer.Option(min=1, help="n_components (default: all d).")] = None,
    beta: Annotated[float, typer.Option(min=0.0, max=1.0, help="Mean removal.")] = 1.0,
    gamma: Annotated[float, typer.Option(min=0.0, max=1.0, help="Variance equalisation.")] = 1.0,
    model: ModelOpt = None,
    pooling: PoolingOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchOpt = None,
    max_seq_length: SeqOpt = None,
    num_threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    allow_pickle: PickleOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Fit BERT-whitening on a corpus's sentence vectors and save it (safetensors + JSON)."""
    with domain_errors():
        options = encoder_options(locals())
        sentences = read_corpus(corpus)
        whitening = fit_whitening(
            load_encoder(options),
            sentences,
            output,
            n_components=k,
            beta=beta,
            gamma=gamma,
            show_progress_bar=progress,
        )
    meta = whitening.metadata
    typer.echo(
        f"fitted whitening d={meta['dimension']} -> k={meta['n_components']} "
        f"(beta={beta:g}, gamma={gamma:g}) on {meta['n_fitted']} sentences; saved to {output}"
    )


@app.command("fit-flow")
def fit_flow_command(
    corpus: Annotated[Path, typer.Option(help="Corpus: one sentence per line, or a TSV.")],
    output: Annotated[Path, typer.Option(help="Folder to write, e.g. models/NAME.")],
    steps: Annotated[int, typer.Option(min=1, help="Glow steps K.")] = 4,
    hidden: Annotated[int, typer.Option(min=1, help="Coupling MLP width.")] = 256,
    epochs: Annotated[int, typer.Option(min=1, help="Most epochs (early stopping).")] = 100,
    flow_batch_size: Annotated[int, typer.Option(min=1, help="Vectors per Adam step.")] = 256,
    lr: Annotated[float, typer.Option(min=0.0, help="Adam learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed: same data and seed, same flow.")] = 0,
    model: ModelOpt = None,
    pooling: PoolingOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchOpt = None,
    max_seq_length: SeqOpt = None,
    num_threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    allow_pickle: PickleOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Train BERT-flow on a corpus's sentence vectors and save it (safetensors + JSON)."""
    with domain_errors():
        options = encoder_options(locals())
        flow = fit_flow(
            load_encoder(options),
            read_corpus(corpus),
            output,
            steps=steps,
            hidden=hidden,
            epochs=epochs,
            batch_size=flow_batch_size,
            lr=lr,
            seed=seed,
            device=device,
            show_progress_bar=progress,
        )
    meta = flow.metadata
    typer.echo(
        f"fitted flow d={meta['dimension']}, {steps} steps, on {meta['n_fitted']} sentences in "
        f"{meta['fit_seconds']:.1f} s ({meta['epochs_run']} epochs, held-out "
        f"{meta['validation_bits_per_dim']:.3f} bits/dim); saved to {output}"
    )
