"""Paraphrase quality and /paraphrase latency of a trained SimBERT generator.

Quality, on 200 held-out sources (the first 200 distinct sentence1 of quora-para dev): each
source's top 5 of 32 sampled candidates (seeded), scored by the *bundled* encoder
(all-MiniLM-L6-v2, mean pooling, cosine) — not by the generator that ranked them:
mean cosine input-output, share of outputs with cosine >= 0.8, share identical to the input
(must be 0), and distinct-2 (distinct bigrams / all bigrams over the outputs). Ten example
inputs with their top 3 are printed and kept in the JSON.

Latency: ``sentsim serve --generator DIR`` on loopback, 30 sequential ``POST /paraphrase``
(n = 32, k = 5), p50 / p99.

    python benchmarks/paraphrase.py --generator models/simbert-quora [--sources 200]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DEV = ROOT.parent / "shared" / "data" / "quora-para" / "dev.tsv"


def distinct_2(texts: list[str]) -> float:
    """Distinct bigrams over all bigrams of the outputs (higher: more varied)."""
    bigrams = [tuple(w[i : i + 2]) for t in texts for w in [t.split()] for i in range(len(w) - 1)]
    return len(set(bigrams)) / max(1, len(bigrams))


def latency(generator: str, sources: list[str], requests: int = 30) -> dict[str, float]:
    import httpx

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from serve import free_port

    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        command = [str(Path(sys.executable).parent / "sentsim"), "serve", "--port", str(port)]
        command += ["--indexes-dir", tmp, "--generator", generator, "--log-level", "warning"]
        server = subprocess.Popen(command, cwd=ROOT)
        try:
            url = f"http://127.0.0.1:{port}"
            for _ in range(600):
                try:
                    if httpx.get(url + "/health", timeout=2).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.5)
            times = []
            with httpx.Client(base_url=url, timeout=120) as http:
                for i in range(requests):
                    text = sources[i % len(sources)]
                    body = {
                        "text": text,
                        "num_candidates": 32,
                        "num_return_sequences": 5,
                        "seed": i,
                    }
                    start = time.perf_counter()
                    assert http.post("/paraphrase", json=body).status_code == 200
                    times.append(time.perf_counter() - start)
        finally:
            server.terminate()
            server.wait(60)
    return {
        "p50_ms": float(np.percentile(times, 50) * 1000),
        "p99_ms": float(np.percentile(times, 99) * 1000),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--generator", default=str(ROOT / "models" / "simbert-quora"))
    parser.add_argument("--sources", type=int, default=200)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/paraphrase.json")
    args = parser.parse_args()

    from app.core.datasets import read_pairs
    from app.encoding.bert import BertEncoder
    from app.generation.sampling import SimBertGenerator

    sources = list(dict.fromkeys(a for a, _ in read_pairs(DEV)))[: args.sources]
    generator = SimBertGenerator.load(args.generator, device="cpu")
    started = time.perf_counter()
    outputs = [
        [p.text for p in generator.generate(s, num_candidates=32, num_return_sequences=5, seed=i)]
        for i, s in enumerate(sources)
    ]
    generation_s = time.perf_counter() - started
    encoder = BertEncoder(device="cpu")
    cosines, identical = [], 0
    for source, outs in zip(sources, outputs, strict=True):
        if not outs:
            continue
        vectors = encoder.encode([source, *outs])
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
        cosines += (unit[1:] @ unit[0]).tolist()
        identical += sum(
            " ".join(o.lower().split()) == " ".join(source.lower().split()) for o in outs
        )
    all_outputs = [o for outs in outputs for o in outs]
    result = {
        "benchmark": "paraphrase",
        "generator": args.generator,
        "sources": len(sources),
        "outputs": len(all_outputs),
        "mean_cosine_bundled_encoder": float(np.mean(cosines)),
        "share_cosine_at_least_0_8": float(np.mean(np.array(cosines) >= 0.8)),
        "share_identical_to_input": identical / max(1, len(all_outputs)),
        "distinct_2": distinct_2(all_outputs),
        "seconds_per_source": generation_s / len(sources),
        "examples": [
            {"input": s, "top3": o[:3]} for s, o in list(zip(sources, outputs, strict=True))[:10]
        ],
    }
    result["latency"] = latency(args.generator, sources)
    n_out, lat = len(all_outputs), result["latency"]
    print(f"{len(sources)} quora-para dev sources, top 5 of 32 candidates ({n_out} outputs)")
    for label, key in (
        ("mean cosine to the input (bundled encoder)", "mean_cosine_bundled_encoder"),
        ("share with cosine >= 0.8", "share_cosine_at_least_0_8"),
        ("share identical to the input", "share_identical_to_input"),
        ("distinct-2", "distinct_2"),
        ("seconds per source, in-process", "seconds_per_source"),
    ):
        print(f"  {label}: {result[key]:.3f}")
    print(f"  POST /paraphrase (n=32, k=5): p50 {lat['p50_ms']:.0f} ms, p99 {lat['p99_ms']:.0f} ms")
    for example in result["examples"]:
        print(f"- {example['input']}")
        for out in example["top3"]:
            print(f"    -> {out}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
