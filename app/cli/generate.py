"""``sentsim paraphrase`` (SimBERT) and ``sentsim explain`` (integrated gradients)."""

from __future__ import annotations

import dataclasses
import json
from typing import Annotated

import typer

from app.cli.base import (
    DeviceOpt,
    ModelOpt,
    PickleOpt,
    PoolingOpt,
    PrecisionOpt,
    SeqOpt,
    ThreadsOpt,
    app,
    domain_errors,
    encoder_options,
)
from app.core.config import get_settings
from app.core.errors import NotReadyError
from app.encoding.registry import generator_path, resolve_model
from app.services.encoders import explain, load_encoder
from app.services.paraphrase import NO_GENERATOR, read_earlier_names


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
    with domain_errors():
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
        given = {
            "num_candidates": num_candidates,
            "num_return_sequences": num_return_sequences,
            "top_k": top_k,
        }
        knobs = read_earlier_names({k: v for k, v in given.items() if v is not None})
        results = simbert.generate(
            text,
            num_candidates=knobs.get("num_candidates", 32),
            num_return_sequences=knobs.get("num_return_sequences", 5),
            top_k=knobs.get("top_k", 0),
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
    with domain_errors():
        encoder = load_encoder(encoder_options(locals()))
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
