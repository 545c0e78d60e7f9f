"""``sentsim eval-sts``: STS evaluation grids, printed as a table and written as JSON."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from app.cli.base import (
    BatchOpt,
    DeviceOpt,
    ModelOpt,
    PickleOpt,
    ProgressOpt,
    SeqOpt,
    ThreadsOpt,
    app,
    domain_errors,
    encoder_options,
)
from app.core.config import get_settings
from app.core.datasets import read_corpus, read_sts
from app.transforms.spec import parse_transform_spec

if TYPE_CHECKING:  # scipy and POT load only for the commands that use them
    from app.services.evaluation import StsResult


def _row_name(r: StsResult) -> str:
    """A grid row as one line: precision, method, pooling, transform (and its fit corpus)."""
    fit = f" fit {Path(r.fit_on).name}" if r.fit_on and r.fit_on != "evaluated" else ""
    return f"{r.precision} {r.method} {r.pooling} {r.label}{fit}"


def format_table(results: Sequence[StsResult]) -> str:
    """Render grid results as an aligned text table, Spearman x100 with two decimals."""
    header = ("precision", "method", "pooling", "transform", "fit on", "dim", "spearman")
    rows = [
        (
            r.precision,
            r.method,
            r.pooling,
            r.label,
            Path(r.fit_on).name if r.fit_on else "-",
            str(r.n_components),
            f"{r.spearman:.2f}",
        )
        for r in results
    ]
    widths = [max(len(h), *(len(row[i]) for row in rows)) for i, h in enumerate(header)]
    lines = [
        "  ".join(
            cell.ljust(w) if i < 5 else cell.rjust(w)
            for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        )
        for row in (header, *rows)
    ]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


@app.command("eval-sts")
def eval_sts(
    data: Annotated[Path, typer.Option(help="sentence1<TAB>sentence2<TAB>score, with header.")],
    pooling: Annotated[list[str] | None, typer.Option(help="Pooling (repeat for a grid).")] = None,
    transform: Annotated[
        list[str] | None,
        typer.Option(help="none | flow | whitening | whitening-K[:beta,gamma] (repeat)."),
    ] = None,
    precision: Annotated[
        list[str] | None, typer.Option(help="fp32 | bf16 | int8 (repeat for a grid).")
    ] = None,
    method: Annotated[
        list[str] | None,
        typer.Option(help="cosine | wmd | wmd-idf | wrd (repeat); all but cosine use tokens."),
    ] = None,
    fit_on: Annotated[
        list[str] | None,
        typer.Option(
            help="Corpus to fit transforms on, or 'evaluated' (the default: the evaluated "
            "sentences); repeat to compare fits."
        ),
    ] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write results as JSON.")] = None,
    plot: Annotated[
        Path | None,
        typer.Option(help="Write PNGs here: predicted vs gold per row, eigenvalue spectra."),
    ] = None,
    model: ModelOpt = None,
    batch_size: BatchOpt = None,
    max_seq_length: SeqOpt = None,
    num_threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    allow_pickle: PickleOpt = False,
    progress: ProgressOpt = True,
) -> None:
    """Spearman x100 of cosine similarity against gold STS scores, for a grid of
    precisions x poolings x transforms, in one run."""
    with domain_errors():
        settings = get_settings()
        # pooling and precision are grid axes (lists): the grid sets them per cell.
        options = encoder_options({**locals(), "pooling": None, "precision": None})
        specs = [parse_transform_spec(t) for t in (transform or ["none"])]
        pairs = read_sts(data)
        corpora = [
            (name, None if name == "evaluated" else read_corpus(name))
            for name in (fit_on or ["evaluated"])
        ]
        from app.services.evaluation import evaluate_sts_grid

        results = evaluate_sts_grid(
            pairs,
            options,
            poolings=pooling or [settings.pooling],
            precisions=precision or [settings.precision],
            specs=specs,
            methods=method or ["cosine"],
            fit_corpora=corpora,
            show_progress_bar=progress,
        )
    typer.echo(f"{data}: {len(pairs)} pairs, model {results[0].model}, Spearman x100")
    typer.echo(format_table(results))
    if json_out is not None:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps([r.to_json() for r in results], indent=2) + "\n")
        typer.echo(f"wrote {json_out}")
    if plot is not None:
        from app.evaluation.plots import StsPlotRow, write_sts_plots

        rows = [
            StsPlotRow(_row_name(r), r.scores, r.spearman, r.spectrum)
            for r in results
            if r.scores is not None
        ]
        written = write_sts_plots(plot, pairs.scores, rows)
        typer.echo(f"wrote {len(written)} plots to {plot}")
