"""Optimal-transport benchmark: WRD / WMD solvers, and reranking 50 candidates.

1. Pairs per second on real STS-B test pairs (all-MiniLM-L6-v2 token vectors, computed once):
   POT's exact network simplex (sentsim's solver) vs the same LP through
   ``scipy.optimize.linprog`` (HiGHS; the reference implementation's approach: write the
   transport problem as a linear program) vs POT's entropic Sinkhorn. Same pairs, one run,
   ratios to linprog; the exact solvers' distances are compared.
2. Reranking: for each of 200 STS-B test queries, its 50 nearest sentences by cosine are
   reranked to the top 10 by WRD (pruned exact transport, ``top_k_transport``). Latency p50/p99
   of the second stage with the candidates' token vectors cached (float16, as the service
   keeps them) and recomputed on demand (``encode_tokens`` of the 50 texts), the query's own
   token encoding included in both.

    python benchmarks/ot.py [--pairs 300] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

# This file is named ot.py: running it puts benchmarks/ first on sys.path, where `import ot`
# would find this script instead of POT.
sys.path = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).resolve().parent]

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data" / "stsb-en" / "test.tsv"


def linprog_transport(p: np.ndarray, q: np.ndarray, M: np.ndarray) -> float:
    """The transport LP for scipy's HiGHS (the last column constraint is implied)."""
    from scipy.optimize import linprog
    from scipy.sparse import coo_matrix, vstack

    m, n = M.shape
    idx = np.arange(m * n)
    rows = coo_matrix((np.ones(m * n), (idx // n, idx)), shape=(m, m * n))
    cols = coo_matrix((np.ones(m * n), (idx % n, idx)), shape=(n, m * n))
    A = vstack([rows, cols.tocsr()[:-1]])
    result = linprog(
        M.ravel(), A_eq=A, b_eq=np.concatenate([p, q[:-1]]), bounds=(0, None), method="highs"
    )
    return float(result.fun)


def solver_benchmark(
    measure: str, tok_a: list[np.ndarray], tok_b: list[np.ndarray], n_lp: int
) -> list[dict[str, float | str]]:
    """Pairs/s of linprog, POT exact and Sinkhorn on the same transport problems."""
    import ot

    from app.similarity.ot import cost_matrix, norm_weights

    problems = []  # cost matrices and marginals built once, outside the timings
    for a, b in zip(tok_a, tok_b, strict=True):
        M = cost_matrix(a, b, "cosine" if measure == "wrd" else "euclidean")
        if measure == "wrd":
            problems.append((norm_weights(a), norm_weights(b), M))
        else:
            problems.append((np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), M))
    lp_rate, lp = pairs_per_second(lambda i: linprog_transport(*problems[i]), n_lp)
    emd_rate, emd = pairs_per_second(lambda i: float(ot.emd2(*problems[i])), len(problems))

    def sinkhorn(i: int) -> float:
        p, q, M = problems[i]
        return float(ot.sinkhorn2(p, q, M, 0.05 * M.max()))

    sk_rate, sk = pairs_per_second(sinkhorn, len(problems))
    rows: list[dict[str, float | str]] = [
        {"measure": measure, "solver": name, "pairs_per_s": rate, "x_linprog": rate / lp_rate}
        for name, rate in (
            ("linprog (HiGHS)", lp_rate),
            ("POT emd (exact)", emd_rate),
            ("POT sinkhorn", sk_rate),
        )
    ]
    rows[1]["max_abs_diff_vs_linprog"] = float(np.max(np.abs(np.array(emd[:n_lp]) - lp)))
    rows[2]["mean_excess_over_exact"] = float(np.mean(np.array(sk) - np.array(emd)))
    return rows


def pairs_per_second(run: Callable[[int], float], n: int) -> tuple[float, list[float]]:
    start = time.perf_counter()
    values = [run(i) for i in range(n)]
    return n / (time.perf_counter() - start), values


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pairs", type=int, default=300, help="pairs for linprog (slowest)")
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks/results/ot.json")
    args = parser.parse_args()

    from app.core.datasets import read_sts
    from app.encoding.bert import BertEncoder
    from app.similarity.metrics import cos_sim
    from app.similarity.ot import top_k_transport

    data = read_sts(DATA)
    encoder = BertEncoder(device="cpu", batch_size=64)
    tok_a = encoder.encode_tokens(data.sentences1)
    tok_b = encoder.encode_tokens(data.sentences2)
    n_all, n_lp = len(data), min(args.pairs, len(data))

    solver_rows = []
    for measure in ("wrd", "wmd"):
        solver_rows += solver_benchmark(measure, tok_a, tok_b, n_lp)

    # Reranking: 200 queries, 50 cosine candidates each, top 10 by WRD.
    sentences = list(dict.fromkeys(data.sentences))
    vectors = encoder.encode(sentences)
    tokens = encoder.encode_tokens(sentences)
    cached = [t.astype(np.float16) for t in tokens]
    queries = list(range(0, len(sentences), len(sentences) // 200))[:200]
    similarity = cos_sim(vectors[queries], vectors)
    warm, cold = [], []
    for row, qi in enumerate(queries):
        candidates = [int(i) for i in np.argsort(-similarity[row])[1:51]]
        start = time.perf_counter()
        q_tokens = encoder.encode_tokens([sentences[qi]])[0]
        top_k_transport(q_tokens, [cached[i].astype(np.float32) for i in candidates], 10, "wrd")
        warm.append(time.perf_counter() - start)
        start = time.perf_counter()
        everything = encoder.encode_tokens([sentences[qi]] + [sentences[i] for i in candidates])
        top_k_transport(everything[0], everything[1:], 10, "wrd")
        cold.append(time.perf_counter() - start)
    rerank = {
        "cached_p50_ms": float(np.percentile(warm, 50) * 1000),
        "cached_p99_ms": float(np.percentile(warm, 99) * 1000),
        "recomputed_p50_ms": float(np.percentile(cold, 50) * 1000),
        "recomputed_p99_ms": float(np.percentile(cold, 99) * 1000),
        "cache_bytes_per_document": float(np.mean([c.nbytes for c in cached])),
    }

    print(
        f"STS-B test pairs ({n_all}; linprog on the first {n_lp}), all-MiniLM-L6-v2 token vectors"
    )
    print(f"{'measure':7s} {'solver':18s} {'pairs/s':>9s} {'x linprog':>9s}")
    for r in solver_rows:
        print(f"{r['measure']:7s} {r['solver']:18s} {r['pairs_per_s']:9.0f} {r['x_linprog']:9.1f}")
    for r in solver_rows:
        if "max_abs_diff_vs_linprog" in r:
            diff = r["max_abs_diff_vs_linprog"]
            print(f"{r['measure']}: POT exact vs linprog, max |difference| {diff:.2e}")
        if "mean_excess_over_exact" in r:
            excess = r["mean_excess_over_exact"]
            print(f"{r['measure']}: Sinkhorn (reg 0.05 x max cost) excess over exact {excess:.4f}")
    print("rerank 50 candidates -> top 10 by WRD, 200 queries (query token encoding included):")
    for kind in ("cached", "recomputed"):
        p50, p99 = rerank[f"{kind}_p50_ms"], rerank[f"{kind}_p99_ms"]
        print(f"  candidates' token vectors {kind:10s}: p50 {p50:6.1f} ms  p99 {p99:6.1f} ms")
    print(
        f"  cache cost: {rerank['cache_bytes_per_document'] / 1024:.1f} KiB per document (float16)"
    )
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"benchmark": "ot", "solvers": solver_rows, "rerank": rerank}, indent=2) + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
