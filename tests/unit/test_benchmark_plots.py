"""benchmarks/plots.py: the PNGs ``--plot`` writes, from JSON shaped as the scripts write it."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import matplotlib.image
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _plots() -> ModuleType:
    spec = importlib.util.spec_from_file_location("plots", ROOT / "benchmarks" / "plots.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _server(rate: float) -> dict[str, float]:
    return {"sentences_per_s": rate, "p50_ms": 1000 / rate, "p99_ms": 3000 / rate}


def _serve_result(with_infinity: bool) -> dict[str, object]:
    levels = []
    for level, rate in (("1x1", 190.0), ("8x1", 377.0), ("32x1", 530.0), ("8x32", 1174.0)):
        row: dict[str, object] = {"level": level, "sentsim": _server(rate)}
        if with_infinity:
            row["infinity"] = _server(rate / 3)
        levels.append(row)
    return {
        "precision": "bf16",
        "offline_sentences_per_s": {"bf16": 1427.0, "fp32": 719.0},
        "levels": levels,
        "cpus": 2,
    }


@pytest.mark.parametrize("with_infinity", [True, False])
def test_serve_plots(tmp_path: Path, with_infinity: bool) -> None:
    written = _plots().plot_serve(_serve_result(with_infinity), tmp_path / "plots")
    assert [p.name for p in written] == ["serve-throughput.png", "serve-latency.png"]
    for path in written:
        image = matplotlib.image.imread(path)
        assert image.shape[:2] == (400, 600)  # 6 x 4 in at 100 dpi
        assert image.std() > 0.05  # drawn on, not blank


def test_serve_plot_needs_single_sentence_levels(tmp_path: Path) -> None:
    result = _serve_result(True)
    result["levels"] = [r for r in result["levels"] if r["level"] == "8x32"]  # type: ignore[attr-defined]
    with pytest.raises(ValueError, match="single-sentence"):
        _plots().plot_serve(result, tmp_path)


def test_encode_plot(tmp_path: Path) -> None:
    rows = [
        {"contender": "sentence-transformers", "sentences_per_s": 362.0},
        {"contender": "sentsim bf16", "sentences_per_s": 1224.0},
    ]
    result = {"rows": rows, "batch_size": 32, "threads": 2}
    [path] = _plots().plot_encode(result, tmp_path)
    assert path.name == "encode-throughput.png"
    assert matplotlib.image.imread(path).shape[:2] == (220, 600)  # 0.5 in a row + 1.2 in
