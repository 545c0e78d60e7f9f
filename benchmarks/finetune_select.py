"""Choose AM-Softmax's margin and scale without looking at the dev set.

Trains sentsim's AM-Softmax on the first ``--train-pairs`` quora-para train pairs for every
``--grid`` value (``margin:scale``) and sentence-transformers' MultipleNegativesRankingLoss
once as the reference, and scores each on held-out quora-para *train* pairs: pairs from
``--holdout-from`` on whose questions appear nowhere in the training slice (so nothing
trained on is scored), recall@1 of each question's partner among all held-out questions.
The other knobs are ``benchmarks/finetune.py``'s. Prints a table, writes JSON.

    python benchmarks/finetune_select.py [--grid 0.35:30 0.2:20 0.1:20 0:20]
        [--train-pairs 8000] [--holdout-pairs 5000] [--batch-size 64] [--epochs 1] [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from finetune import DATA, RESULTS, train_sentsim, train_st  # noqa: E402

if TYPE_CHECKING:
    from app.core.datasets import StsPairs


def holdout(
    pairs: list[tuple[str, str, float]], first: int, start: int, count: int
) -> tuple[list[tuple[str, str, float]], StsPairs]:
    """The first ``first`` of ``pairs`` (to train on), and up to ``count`` pairs from ``start``
    on that share no question with them nor with an earlier held-out pair (to score on)."""
    from app.core.datasets import StsPairs

    train = pairs[:first]
    seen = {s for a, b, _ in train for s in (a, b)}
    kept: list[tuple[str, str, float]] = []
    for a, b, score in pairs[start:]:
        if a in seen or b in seen or a == b:
            continue
        seen.update((a, b))
        kept.append((a, b, score))
        if len(kept) == count:
            break
    held = StsPairs([k[0] for k in kept], [k[1] for k in kept], [k[2] for k in kept])
    return train, held


def recall(path: Path, held: StsPairs, device: str | None) -> float:
    """Held-out recall@1 x100 of the encoder at ``path``."""
    from app.encoding.bert import BertEncoder
    from app.services.evaluation import dev_score

    return dev_score(BertEncoder(str(path), device=device, batch_size=128), held, "recall@1")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--grid", nargs="+", default=["0.35:30", "0.2:20", "0.1:20", "0:20"])
    parser.add_argument("--train-pairs", type=int, default=8000)
    parser.add_argument("--holdout-from", type=int, default=40_000)
    parser.add_argument("--holdout-pairs", type=int, default=5000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--lr", type=float, default=2e-5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--negatives", default="partners", choices=["partners", "batch"])
    parser.add_argument("--no-reference", action="store_true", help="skip the MNRL run")
    parser.add_argument("--device", default=None)
    parser.add_argument("--json", type=Path, default=RESULTS / "finetune_select.json")
    args = parser.parse_args()

    from app.core.datasets import read_sts
    from app.encoding.registry import resolve_model

    base = resolve_model("all-MiniLM-L6-v2").path
    data = read_sts(DATA / "quora-para" / "train.tsv")
    pairs = list(zip(data.sentences1, data.sentences2, data.scores, strict=True))
    train, held = holdout(pairs, args.train_pairs, args.holdout_from, args.holdout_pairs)
    print(f"{len(train)} training pairs, {len(held)} held-out pairs", flush=True)
    rows: list[dict[str, Any]] = [
        {"trainer": "base (bundled)", "recall_at_1": recall(Path(base), held, args.device)}
    ]
    print(rows[-1], flush=True)
    runs: list[tuple[str, float | None, float | None]] = [
        (f"sentsim m {m} s {s}", float(m), float(s)) for m, s in (g.split(":") for g in args.grid)
    ]
    if not args.no_reference:
        runs.append(("ST MultipleNegativesRankingLoss", None, None))
    with tempfile.TemporaryDirectory() as tmp:
        for name, margin, scale in runs:
            output = Path(tmp) / "model"
            if margin is None:
                seconds = train_st("am-softmax", train, base, output, args, args.seed)
            else:
                knobs = argparse.Namespace(**vars(args), margin=margin, scale=scale)
                seconds = train_sentsim(
                    "am-softmax", train, base, output, knobs, args.seed, args.negatives
                )
            row = {"trainer": name, "margin": margin, "scale": scale, "seconds": seconds}
            row["recall_at_1"] = recall(output, held, args.device)
            print(row, flush=True)
            rows.append(row)
            shutil.rmtree(output)
    print(
        f"\nheld-out quora train pairs: {len(held)} ({2 * len(held)} questions), "
        f"seed {args.seed}, {os.cpu_count()} cores"
    )
    print(f"{'trainer':34s} {'held-out R@1':>13s} {'wall s':>8s}")
    for r in rows:
        print(f"{r['trainer']:34s} {r['recall_at_1']:13.2f} {r.get('seconds', 0.0):8.0f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(
        json.dumps({"args": {**vars(args), "json": str(args.json)}, "rows": rows}, indent=2) + "\n"
    )
    print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
