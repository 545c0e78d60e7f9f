"""The ``sentsim`` command line: serve, encode, fit-whitening, fit-flow, eval-sts, explain, ….

Flags override ``SENTSIM_*`` environment variables and ``.env``, which override the defaults of
``app.core.config.Settings``. Domain errors print one line on stderr and exit with status 2.
"""

from __future__ import annotations

import dataclasses
import gc
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer
from pydantic import ValidationError

from app import __version__
from app.core.config import Settings, get_settings
from app.core.datasets import read_corpus, read_pairs, read_sts
from app.core.errors import NotReadyError, ServiceError
from app.encoding.registry import generator_path, resolve_model
from app.services.encoders import EncoderOptions, explain, load_encoder
from app.services.paraphrase import NO_GENERATOR
from app.services.transforms import fit_flow, fit_whitening
from app.transforms.normalize import l2_normalize
from app.transforms.spec import parse_transform_spec

if TYPE_CHECKING:  # scipy and POT load only for the commands that use them
    from app.services.evaluation import StsResult

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
def _domain_errors() -> Iterator[None]:
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


def _encoder_options(flags: dict[str, Any]) -> EncoderOptions:
    """Merge a command's flags (its ``locals()``) over the settings: a flag given wins."""
    settings = get_settings()
    return EncoderOptions(
        **{name: flags.get(name) or getattr(settings, name) for name in ENCODER_FLAGS}
    )


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
    with _domain_errors():
        options = _encoder_options(locals())
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
    with _domain_errors():
        options = _encoder_options(locals())
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
    with _domain_errors():
        options = _encoder_options(locals())
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

    with _domain_errors():
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

    with _domain_errors():
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
    with _domain_errors():
        settings = get_settings()
        # pooling and precision are grid axes (lists): the grid sets them per cell.
        options = _encoder_options({**locals(), "pooling": None, "precision": None})
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


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="Interface to bind (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(min=1, max=65535, help="TCP port (8000).")] = None,
    model: ModelOpt = None,
    pooling: PoolingOpt = None,
    precision: PrecisionOpt = None,
    batch_size: BatchOpt = None,
    num_threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    models_dir: Annotated[Path | None, typer.Option(help="Fitted transforms.")] = None,
    indexes_dir: Annotated[Path | None, typer.Option(help="Collections (read-write).")] = None,
    vector_backend: Annotated[
        str | None, typer.Option(help="Where collections live: faiss (default) or milvus.")
    ] = None,
    milvus_uri: Annotated[
        str | None,
        typer.Option(
            help="Milvus Lite file (one process) or server URL, for --vector-backend milvus."
        ),
    ] = None,
    generator: Annotated[
        str | None, typer.Option(help="SimBERT checkpoint for /paraphrase.")
    ] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the REST API (one worker: the model is loaded once per process)."""
    with _domain_errors():
        flags = {
            "host": host,
            "port": port,
            "model": model,
            "pooling": pooling,
            "precision": precision,
            "batch_size": batch_size,
            "num_threads": num_threads,
            "device": device,
            "models_dir": models_dir,
            "indexes_dir": indexes_dir,
            "vector_backend": vector_backend,
            "milvus_uri": milvus_uri,
            "generator": generator,
        }
        settings = get_settings().model_copy(
            update={k: v for k, v in flags.items() if v is not None}
        )
        Settings.model_validate(settings.model_dump())  # flags are checked like the env
        logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
        # Paths and Hub ids first (fails in well under a second, naming them), then the models,
        # here rather than in the app's start-up: a bad setting is one line, no traceback.
        for name in (settings.model, generator_path(settings.generator)):
            if name is not None:
                resolve_model(name)
        import uvicorn

        from app.main import create_app
        from app.services.container import Services

        services = Services.build(settings)
    # Everything loaded so far (torch, transformers, the model) lives as long as the process:
    # out of the collector's sight, a full collection no longer walks it (p99 at 32 clients
    # went from 272 ms to 120 ms).
    gc.collect()
    gc.freeze()
    uvicorn.run(
        create_app(settings, services=services),
        host=settings.host,
        port=settings.port,
        timeout_keep_alive=settings.keep_alive_s,
        log_level=log_level,
    )


@app.command("export-simbert")
def export_simbert_command(
    source: Annotated[Path, typer.Option(help="A train-simbert output folder.")],
    output: Annotated[Path, typer.Option(help="The folder to ship, e.g. models/NAME.")],
) -> None:
    """Write a trained generator as fp16 safetensors + tokenizer + training record + SHA256SUMS."""
    from app.training.simbert import export_generator

    with _domain_errors():
        names = export_generator(source, output)
    typer.echo(f"wrote {', '.join(names)} to {output}")


@app.command("paraphrase")
def paraphrase_command(
    text: Annotated[str, typer.Argument(help="The sentence to paraphrase.")],
    generator: Annotated[
        str | None,
        typer.Option(help="SimBERT checkpoint folder (default: SENTSIM_GENERATOR, else shipped)."),
    ] = None,
    num_candidates: Annotated[
        int | None, typer.Option(min=1, help="Candidates sampled (n; default 32).")
    ] = None,
    num_return_sequences: Annotated[
        int | None, typer.Option(min=1, help="Paraphrases printed (k; default 5).")
    ] = None,
    top_k: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Sample from the top-k tokens only (0: off). Without --num-candidates it is "
            "read the earlier way: paraphrases printed, --num-return-sequences the candidates.",
        ),
    ] = None,
    top_p: Annotated[float, typer.Option(min=0.0, max=1.0, help="Nucleus mass.")] = 0.95,
    temperature: Annotated[float, typer.Option(min=0.01, help="Sampling temperature.")] = 1.0,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Length cap, tokens.")] = 32,
    seed: Annotated[int | None, typer.Option(help="Same seed, same output.")] = None,
    device: DeviceOpt = None,
) -> None:
    """Print paraphrases of TEXT, one per line: score (cosine to TEXT) and text."""
    with _domain_errors():
        path = generator_path(generator or get_settings().generator)
        if path is None:
            raise NotReadyError(NO_GENERATOR)
        resolve_model(path)  # a missing folder fails here, before torch loads
        from app.generation.sampling import SimBertGenerator

        simbert = SimBertGenerator.load(path, device=device)
        tokens, limit = simbert.count_tokens(text), simbert.max_source_tokens
        if tokens > limit:  # said, never silent (the API refuses it unless truncate)
            typer.echo(
                f"note: TEXT has {tokens} tokens; the generator reads its first {limit}", err=True
            )
        if top_k is not None and num_candidates is None:  # the earlier flags
            num_candidates, num_return_sequences, top_k = num_return_sequences, top_k, 0
        results = simbert.generate(
            text,
            num_candidates=32 if num_candidates is None else num_candidates,
            num_return_sequences=5 if num_return_sequences is None else num_return_sequences,
            top_k=top_k or 0,
            top_p=top_p,
            temperature=temperature,
            max_new_tokens=max_new_tokens,
            seed=seed,
        )
    for p in results:
        typer.echo(f"{p.score:.4f}\t{p.text}")


@app.command("explain")
def explain_command(
    source_sentence: Annotated[str, typer.Argument(help="The first sentence (A).")],
    sentence: Annotated[str, typer.Argument(help="The second sentence (B).")],
    steps: Annotated[int, typer.Option(min=1, help="Quadrature points of the integral.")] = 50,
    merge_words: Annotated[bool, typer.Option(help="Sum word pieces into words.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON body.")] = False,
    model: ModelOpt = None,
    pooling: PoolingOpt = None,
    precision: PrecisionOpt = None,
    max_seq_length: SeqOpt = None,
    num_threads: ThreadsOpt = None,
    device: DeviceOpt = None,
    allow_pickle: PickleOpt = False,
) -> None:
    """Why A and B are similar: their cosine attributed to each token by integrated gradients
    (baseline: [PAD] word pieces, [CLS]/[SEP] kept). Positive tokens raised the score."""
    with _domain_errors():
        encoder = load_encoder(_encoder_options(locals()))
        result = explain(encoder, source_sentence, sentence, n_steps=steps, merge_words=merge_words)
    limit = encoder.max_seq_length
    for name, n in zip(("A", "B"), result.lengths, strict=True):
        if n > limit:
            typer.echo(f"note: {name} has {n} tokens; the model read its first {limit}", err=True)
    if as_json:
        body = dataclasses.asdict(result)
        del body["lengths"]
        typer.echo(json.dumps(body, ensure_ascii=False, indent=2))
        return
    typer.echo(
        f"score {result.score:.4f}  baseline {result.baseline_score:.4f}  "
        f"completeness error {result.completeness_error:.2g}  ({result.baseline})"
    )
    scale = max((abs(t.attribution) for t in result.source + result.target), default=0.0) or 1.0
    for name, side in (("A", result.source), ("B", result.target)):
        typer.echo(f"{name}:")
        for t in side:
            bar = ("+" if t.attribution >= 0 else "-") * round(20 * abs(t.attribution) / scale)
            typer.echo(f"  {t.token:<20} {t.attribution:+.4f} {bar}")


@app.command()
def version() -> None:
    """Print sentsim's version."""
    typer.echo(__version__)


def main() -> None:
    """Console-script entry point (``sentsim``)."""
    app()


if __name__ == "__main__":
    main()
