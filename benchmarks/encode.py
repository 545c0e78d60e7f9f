"""Encoder throughput: sentsim (fp32 / bf16 / int8) vs sentence-transformers, same run.

Both encode the same STS-B test sentences (2 x 1379 = 2758, duplicates kept) with the bundled
all-MiniLM-L6-v2, the same thread count and batch size. Contenders alternate within each round,
so machine noise hits them alike; the table reports the median over rounds, the ratio to
sentence-transformers, the cosine agreement of each precision's vectors with sentsim fp32
(mean and min over sentences), and STS-B test Spearman x100 of each contender's vectors.

    python benchmarks/encode.py [--rounds 5] [--threads 2] [--batch-size 32] [--json PATH]
        [--plot DIR]   # also encode-throughput.png; --replot JSON --plot DIR: no run
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "stsb-en" / "test.tsv"


COLUMNS = (  # (header, row key, format)
    ("contender", "contender", "<26s"),
    ("sent/s", "sentences_per_s", ">8.0f"),
    ("x ST", "ratio_to_sentence_transformers", ">6.2f"),
    ("cos mean", "cosine_to_fp32_mean", ">9.5f"),
    ("cos min", "cosine_to_fp32_min", ">8.5f"),
    ("Spearman", "stsb_test_spearman", ">9.2f"),
)


def format_table(rows: list[dict[str, object]]) -> str:
    """Render benchmark rows under COLUMNS as aligned text."""
    widths = [len(format(rows[0][key], fmt)) for _, key, fmt in COLUMNS]
    header = " ".join(
        h.rjust(w) if f[0] == ">" else h.ljust(w)
        for (h, _, f), w in zip(COLUMNS, widths, strict=True)
    )
    lines = [header, "-" * len(header)]
    lines += [" ".join(format(row[key], fmt) for _, key, fmt in COLUMNS) for row in rows]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="default: torch's (cores)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/encode.json")
    parser.add_argument("--plot", type=Path, help="also write PNG plots into this folder")
    parser.add_argument(
        "--replot", type=Path, help="plot this saved JSON into --plot (default: its folder); no run"
    )
    args = parser.parse_args()
    if args.replot:
        _plot(json.loads(args.replot.read_text()), args.plot or args.replot.parent)
        return

    import torch
    from sentence_transformers import SentenceTransformer

    from app.core.datasets import read_sts
    from app.encoding.bert import BertEncoder
    from app.encoding.quantization import cpu_has_fast_bf16, quantize_int8
    from app.encoding.registry import resolve_model
    from app.evaluation.sts import spearman_x100
    from app.similarity.metrics import pairwise_cos_sim

    if args.threads:
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    pairs = read_sts(args.data)
    sentences = pairs.sentences
    n, bs = len(pairs), args.batch_size

    st = SentenceTransformer(resolve_model("all-MiniLM-L6-v2").path, device="cpu")
    encoders = {
        p: BertEncoder(precision=p, device="cpu", batch_size=bs) for p in ("fp32", "bf16", "int8")
    }
    # Reference row: torch.ao's default (every Linear in int8), to show why int8 keeps the FFN
    # in bf16 (app/encoding/quantization.py).
    all_linear = BertEncoder(device="cpu", batch_size=bs)
    all_linear.model = quantize_int8(all_linear.model, ffn="int8")

    contenders: dict[str, Callable[[], np.ndarray]] = {
        "sentence-transformers": lambda: st.encode(sentences, batch_size=bs),
        "sentsim fp32": lambda: encoders["fp32"].encode(sentences),
        "sentsim bf16": lambda: encoders["bf16"].encode(sentences),
        "sentsim int8": lambda: encoders["int8"].encode(sentences),
        "sentsim int8, all Linear": lambda: all_linear.encode(sentences),
    }
    vectors = {name: run() for name, run in contenders.items()}  # warm-up, and the outputs
    times: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(args.rounds):
        for name, run in contenders.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)

    reference = vectors["sentsim fp32"]
    ref_unit = reference / np.linalg.norm(reference, axis=1, keepdims=True)
    peer = len(sentences) / statistics.median(times["sentence-transformers"])
    rows = []
    for name, vec in vectors.items():
        rate = len(sentences) / statistics.median(times[name])
        unit = vec / np.linalg.norm(vec, axis=1, keepdims=True)
        agreement = (unit * ref_unit).sum(axis=1)
        rows.append(
            {
                "contender": name,
                "sentences_per_s": round(rate, 1),
                "ratio_to_sentence_transformers": round(rate / peer, 3),
                "cosine_to_fp32_mean": round(float(agreement.mean()), 6),
                "cosine_to_fp32_min": round(float(agreement.min()), 6),
                "stsb_test_spearman": round(
                    spearman_x100(pairwise_cos_sim(vec[:n], vec[n:]), pairs.scores), 2
                ),
                "seconds_per_round": [round(t, 3) for t in times[name]],
            }
        )

    print(f"{len(sentences)} STS-B test sentences, batch {bs}, {threads} threads, ", end="")
    print(f"median of {args.rounds} rounds")
    print(format_table(rows))
    result = {
        "benchmark": "encode",
        "model": "all-MiniLM-L6-v2",
        "data": str(args.data),
        "n_sentences": len(sentences),
        "batch_size": bs,
        "threads": threads,
        "rounds": args.rounds,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "cpu_native_bf16": cpu_has_fast_bf16(),
        "rows": rows,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")
    if args.plot:
        _plot(result, args.plot)


def _plot(result: dict[str, Any], folder: Path) -> None:
    from plots import plot_encode  # benchmarks/plots.py, beside this script

    for path in plot_encode(result, folder):
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
