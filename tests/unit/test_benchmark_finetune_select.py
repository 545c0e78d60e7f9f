"""benchmarks/finetune_select.py: the held-out pairs it scores on share no question with the
pairs it trains on, nor with each other."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]


def _select() -> ModuleType:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        path = ROOT / "benchmarks" / "finetune_select.py"
        spec = importlib.util.spec_from_file_location("finetune_select", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))


def test_holdout_starts_after_training() -> None:
    pairs = [(f"q{i}", f"q{i + 1}", 1.0) for i in range(0, 20, 2)]  # q0-q1, q2-q3, ... q18-q19
    train, held = _select().holdout(pairs, first=3, start=3, count=3)

    assert train == pairs[:3]
    assert list(zip(held.sentences1, held.sentences2, strict=True)) == [
        ("q6", "q7"),  # from ``start`` on, untouched by training
        ("q8", "q9"),
        ("q10", "q11"),
    ]
    train_q = {s for a, b, _ in train for s in (a, b)}
    assert train_q.isdisjoint(held.sentences1 + held.sentences2)


def test_holdout_skips_overlaps_and_stops_at_count() -> None:
    pairs = [("q0", "q1", 1.0)]
    pairs += [
        ("q1", "new a", 1.0),
        ("new b", "new c", 1.0),
        ("new c", "new d", 1.0),
        ("same", "same", 1.0),
        ("new f", "new g", 1.0),
        ("new h", "new i", 1.0),
    ]
    _, held = _select().holdout(pairs, first=1, start=1, count=2)

    assert list(zip(held.sentences1, held.sentences2, strict=True)) == [
        ("new b", "new c"),
        ("new f", "new g"),
    ]
