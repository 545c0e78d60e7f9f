"""BERT-flow fit time and transform throughput, next to BERT-whitening in the same run.

Sentence vectors of the STS-B train sentences (all-MiniLM-L6-v2, mean pooling, encoded once),
then: fit BERT-flow (default knobs: 4 Glow steps, MLP width 256, Adam, early stopping on a
held-out 10%) and BERT-whitening on them; transform throughput (vectors/s) of both on the same
vectors, and the flow's inverse and log-density; held-out bits/dim of the flow.

    python benchmarks/flow.py [--threads N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "stsb-en" / "train.tsv"


def rate(fn, x, repeats: int = 3) -> float:  # type: ignore[no-untyped-def]
    """Best-of-``repeats`` vectors per second of ``fn(x)``."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn(x)
        best = min(best, time.perf_counter() - start)
    return len(x) / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/flow.json")
    args = parser.parse_args()

    import torch

    from app.core.datasets import read_corpus
    from app.encoding.bert import BertEncoder
    from app.transforms.flow import FlowTransform
    from app.transforms.whitening import Whitening

    if args.threads:
        torch.set_num_threads(args.threads)
    sentences = read_corpus(DATA)
    vectors = BertEncoder(device="cpu", batch_size=64).encode(sentences)

    start = time.perf_counter()
    whitening = Whitening().fit(vectors)
    whitening_fit = time.perf_counter() - start
    flow = FlowTransform(seed=0, device="cpu").fit(vectors)
    assert flow.report is not None

    result = {
        "benchmark": "flow",
        "n_vectors": len(vectors),
        "dimension": vectors.shape[1],
        "threads": torch.get_num_threads(),
        "flow_fit_s": flow.report.seconds,
        "flow_epochs": flow.report.epochs,
        "flow_validation_bits_per_dim": flow.report.validation_bits_per_dim,
        "whitening_fit_s": whitening_fit,
        "flow_transform_vectors_per_s": rate(flow.transform, vectors),
        "flow_inverse_vectors_per_s": rate(flow.inverse, vectors[:2000]),
        "flow_log_prob_vectors_per_s": rate(flow.log_prob, vectors),
        "whitening_transform_vectors_per_s": rate(whitening.transform, vectors),
    }
    d, threads = vectors.shape[1], result["threads"]
    print(f"{len(vectors)} STS-B train sentence vectors (d={d}), {threads} threads")
    print(f"{'':28s} {'flow':>12s} {'whitening':>12s}")
    print(f"{'fit, seconds':28s} {result['flow_fit_s']:12.1f} {whitening_fit:12.3f}")
    print(
        f"{'transform, vectors/s':28s} {result['flow_transform_vectors_per_s']:12.0f} "
        f"{result['whitening_transform_vectors_per_s']:12.0f}"
    )
    print(f"{'inverse, vectors/s':28s} {result['flow_inverse_vectors_per_s']:12.0f}")
    print(f"{'log_prob, vectors/s':28s} {result['flow_log_prob_vectors_per_s']:12.0f}")
    print(
        f"flow: {flow.report.epochs} epochs (early stopping), held-out "
        f"{flow.report.validation_bits_per_dim:.3f} bits/dim"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
