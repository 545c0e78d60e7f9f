"""The sentsim CLI through Typer's CliRunner, on the tiny random BERT."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from app.cli import app
from app.core.config import get_settings
from app.transforms.whitening import Whitening
from tests.conftest import STS_SAMPLE

runner = CliRunner()


@pytest.fixture(autouse=True)
def _fresh_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTSIM_GENERATOR", "none")  # the shipped one only where a test asks
    for name in ("SENTSIM_MODEL", "SENTSIM_POOLING", "SENTSIM_PRECISION"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    lines = [f"the dog eats a cat on the street number {i}" for i in range(40)]
    lines += [f"a man plays a guitar in the park {'again ' * (i % 5)}" for i in range(40)]
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(lines) + "\n")
    return path


def test_encode_writes_vectors_in_input_order(tiny_bert_dir: Path, corpus: Path) -> None:
    out = corpus.parent / "v.npy"
    args = ["encode", "--input", str(corpus), "--output", str(out), "--model", str(tiny_bert_dir)]
    result = runner.invoke(app, [*args, "--pooling", "cls", "--precision", "fp32", "--no-progress"])
    assert result.exit_code == 0, result.output
    vectors = np.load(out)
    assert vectors.shape == (80, 32) and vectors.dtype == np.float32
    from app.encoding.bert import BertEncoder

    first = BertEncoder(str(tiny_bert_dir), pooling="cls").encode(
        ["the dog eats a cat on the street number 0"]
    )
    np.testing.assert_allclose(vectors[:1], first / np.linalg.norm(first), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)  # as the API's
    args += ["--pooling", "cls", "--precision", "fp32"]
    result = runner.invoke(app, [*args, "--no-progress", "--no-normalize"])
    assert "raw" in result.output
    np.testing.assert_allclose(np.load(out)[:1], first, atol=1e-5)


def test_fit_whitening_saves_a_loadable_transform(tiny_bert_dir: Path, corpus: Path) -> None:
    out = corpus.parent / "models" / "w8"
    args = ["fit-whitening", "--corpus", str(corpus), "--output", str(out), "--k", "8"]
    result = runner.invoke(app, [*args, "--model", str(tiny_bert_dir), "--beta", "0.5"])
    assert result.exit_code == 0, result.output
    assert "k=8" in result.output
    w = Whitening.load(out, model=str(tiny_bert_dir.resolve()), pooling="mean", dimension=32)
    assert (w.n_components, w.beta, w.n_fitted) == (8, 0.5, 80)


def test_eval_sts_grid_and_json(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "grid.json"
    args = [
        "eval-sts",
        "--data",
        str(STS_SAMPLE),
        "--model",
        str(tiny_bert_dir),
        "--json",
        str(out),
    ]
    grid = ["--pooling", "mean", "--pooling", "cls", "--transform", "none"]
    grid += ["--transform", "whitening-8:0,0", "--no-progress"]
    result = runner.invoke(app, args + grid)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["pooling"], r["label"]) for r in rows] == [
        ("mean", "none"),
        ("mean", "whitening-8:0,0"),
        ("cls", "none"),
        ("cls", "whitening-8:0,0"),
    ]
    for row in rows:
        assert {
            "pooling",
            "transform",
            "n_components",
            "beta",
            "gamma",
            "spearman",
            "n_pairs",
        } <= set(row)
        assert row["n_pairs"] == 300 and -100 <= row["spearman"] <= 100
    assert rows[1]["n_components"] == 8 and rows[1]["beta"] == 0.0 and rows[0]["beta"] is None
    assert "whitening-8:0,0" in result.output  # the table


def test_eval_sts_fit_on_another_corpus(tiny_bert_dir: Path, corpus: Path) -> None:
    args = ["eval-sts", "--data", str(STS_SAMPLE), "--model", str(tiny_bert_dir)]
    out = corpus.parent / "g.json"
    result = runner.invoke(
        app, [*args, "--transform", "whitening-4", "--fit-on", str(corpus), "--json", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text())[0]["fit_on"] == str(corpus)
    both = runner.invoke(
        app,
        [*args, "--transform", "none", "--transform", "whitening-4", "--fit-on", str(corpus)]
        + ["--fit-on", "evaluated", "--json", str(out)],
    )
    assert both.exit_code == 0, both.output
    rows = json.loads(out.read_text())
    assert [(r["transform"], r["fit_on"]) for r in rows] == [
        ("none", None),
        ("whitening", str(corpus)),
        ("whitening", "evaluated"),
    ]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--transform", "pca"], "bad transform 'pca'"),
        (["--pooling", "max"], "unknown pooling 'max'"),
        (["--precision", "fp8"], "unknown precision 'fp8'"),
    ],
)
def test_bad_flags_exit_2_with_a_message(
    tiny_bert_dir: Path, extra: list[str], message: str
) -> None:
    args = ["eval-sts", "--data", str(STS_SAMPLE), "--model", str(tiny_bert_dir), *extra]
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_data_file_is_a_clear_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["eval-sts", "--data", str(tmp_path / "nope.tsv")])
    assert result.exit_code == 2 and "no such file" in result.output


def test_invalid_setting_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTSIM_POOLING", "max")
    get_settings.cache_clear()
    result = runner.invoke(app, ["eval-sts", "--data", str(STS_SAMPLE)])
    assert result.exit_code == 2
    assert "SENTSIM_POOLING" in result.output and "invalid_setting" in result.output


def test_settings_from_environment_are_used(
    tiny_bert_dir: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTSIM_MODEL", str(tiny_bert_dir))
    monkeypatch.setenv("SENTSIM_POOLING", "last2avg")
    get_settings.cache_clear()
    out = corpus.parent / "models" / "env"
    result = runner.invoke(app, ["fit-whitening", "--corpus", str(corpus), "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert Whitening.load(out).pooling == "last2avg"


def test_serve_flags_override_environment(
    tiny_bert_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    calls: list[dict[str, object]] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **kw: calls.append({"app": app, **kw}))
    monkeypatch.setenv("SENTSIM_PORT", "9999")
    monkeypatch.setenv("SENTSIM_MODEL", str(tiny_bert_dir))
    get_settings.cache_clear()
    args = ["serve", "--port", "8123", "--indexes-dir", str(tmp_path / "idx")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    (call,) = calls
    assert (call["host"], call["port"]) == ("127.0.0.1", 8123)
    assert call["app"].title == "sentsim"


def test_serve_refuses_a_bad_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    result = runner.invoke(app, ["serve", "--pooling", "max"])
    assert result.exit_code == 2 and "SENTSIM_POOLING" in result.output


def test_eval_sts_transport_methods(tiny_bert_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "ot.json"
    args = ["eval-sts", "--data", str(STS_SAMPLE), "--model", str(tiny_bert_dir), "--no-progress"]
    methods = ["--method", "cosine", "--method", "wmd-idf", "--method", "wrd", "--json", str(out)]
    result = runner.invoke(app, args + methods)
    assert result.exit_code == 0, result.output
    rows = json.loads(out.read_text())
    assert [(r["method"], r["pooling"]) for r in rows] == [
        ("cosine", "mean"),
        ("wmd-idf", "tokens"),
        ("wrd", "tokens"),
    ]
    bad = runner.invoke(app, [*args, "--method", "bm25"])
    assert bad.exit_code == 2 and "unknown method 'bm25'" in bad.output


def test_fit_flow_and_eval_with_flow(tiny_bert_dir: Path, corpus: Path, tmp_path: Path) -> None:
    from app.transforms.flow import FlowTransform

    out = corpus.parent / "models" / "flow"
    args = [
        "fit-flow",
        "--corpus",
        str(corpus),
        "--output",
        str(out),
        "--model",
        str(tiny_bert_dir),
    ]
    result = runner.invoke(app, [*args, "--hidden", "16", "--epochs", "3", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "bits/dim" in result.output
    flow = FlowTransform.load(out, model=str(tiny_bert_dir.resolve()), pooling="mean", dimension=32)
    assert flow.n_fitted == 80
    grid = tmp_path / "flow.json"
    args = ["eval-sts", "--data", str(STS_SAMPLE), "--model", str(tiny_bert_dir), "--no-progress"]
    result = runner.invoke(app, [*args, "--transform", "flow", "--json", str(grid)])
    assert result.exit_code == 0, result.output
    (row,) = json.loads(grid.read_text())
    assert row["transform"] == "flow" and row["n_components"] == 32 and row["beta"] is None


@pytest.mark.slow
def test_paraphrase_command(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    folder, _, pairs = tiny_simbert
    args = ["paraphrase", pairs[0][0], "--generator", str(folder), "--top-k", "2"]
    result = runner.invoke(app, [*args, "--num-return-sequences", "8", "--seed", "0"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()  # stderr holds transformers' loading bar
    assert 1 <= len(lines) <= 2
    score, text = lines[0].split("\t", 1)
    assert -1 <= float(score) <= 1 and text.strip()
    assert "note:" not in result.stderr
    long = runner.invoke(app, ["paraphrase", ".," * 40, "--generator", str(folder), "--top-k", "1"])
    assert "note: TEXT has 82 tokens; the generator reads its first 64" in long.stderr


def test_paraphrase_without_a_generator(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTSIM_GENERATOR", "none")
    get_settings.cache_clear()
    result = runner.invoke(app, ["paraphrase", "hello"])
    assert result.exit_code == 2 and "SENTSIM_GENERATOR" in result.output


@pytest.mark.parametrize("command", ["serve", "paraphrase"])
def test_a_missing_generator_folder_is_one_line_naming_it(
    command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 10 item 3: this retried the Hub for ~50 s, or (serve) ended in a traceback."""
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    (tmp_path / "models").mkdir()
    monkeypatch.chdir(tmp_path)
    args = ["--generator", "models/simbert-quora"]
    result = runner.invoke(app, [command, *args] if command == "serve" else [command, "x", *args])
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error (model_load_error): model folder 'models/simbert-quora' does not exist"
    )


def test_serve_with_a_broken_model_folder_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import uvicorn

    monkeypatch.setattr(uvicorn, "run", lambda *a, **k: pytest.fail("must not start"))
    (tmp_path / "empty-model").mkdir()
    result = runner.invoke(app, ["serve", "--model", str(tmp_path / "empty-model")])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.output.startswith("error (model_load_error): cannot load model")
    assert len(result.output.strip().splitlines()) == 1


@pytest.mark.slow
def test_export_simbert_ships_fp16_with_checksums(tiny_simbert, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import torch
    from safetensors.torch import load_file

    from app.generation.model import SimBertModel

    folder, _, pairs = tiny_simbert
    out = tmp_path / "shipped"
    result = runner.invoke(app, ["export-simbert", "--source", str(folder), "--output", str(out)])
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "training.json", "SHA256SUMS", "config.json"} <= names
    stored = load_file(str(out / "model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}
    assert (out / "model.safetensors").stat().st_size < 0.6 * (
        folder / "model.safetensors"
    ).stat().st_size
    shipped, trained = SimBertModel.load(str(out)), SimBertModel.load(str(folder))
    for (name, a), (_, b) in zip(
        shipped.model.named_parameters(), trained.model.named_parameters(), strict=True
    ):
        assert a.dtype == torch.float32, name  # loaded back as float32
        torch.testing.assert_close(a, b.half().float(), rtol=0, atol=0)
    listing = (out / "SHA256SUMS").read_text()
    assert "training.json" in listing and "model.safetensors" in listing


def test_explain_prints_attributions(tiny_bert_dir: Path) -> None:
    args = ["explain", "the man plays a guitar", "two girls", "--model", str(tiny_bert_dir)]
    result = runner.invoke(app, [*args, "--steps", "20", "--merge-words", "--precision", "fp32"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("score ") and "completeness error" in lines[0]
    assert [line.split()[0] for line in lines[lines.index("B:") + 1 :]] == ["two", "girls"]
    as_json = runner.invoke(app, [*args, "--steps", "20", "--json", "--precision", "fp32"])
    body = json.loads(as_json.stdout)
    total = sum(t["attribution"] for t in body["source"] + body["target"])
    assert abs(total - (body["score"] - body["baseline_score"])) <= 0.01 * abs(
        body["score"] - body["baseline_score"]
    )
    assert [t["token"] for t in body["target"]] == ["two", "girl", "##s"]
    refused = runner.invoke(app, [*args, "--precision", "int8"])
    assert refused.exit_code == 2 and "int8" in refused.output


def test_eval_sts_plots_a_2x3_grid(tiny_bert_dir: Path, tmp_path: Path) -> None:
    import matplotlib.image

    args = ["eval-sts", "--data", str(STS_SAMPLE), "--model", str(tiny_bert_dir), "--no-progress"]
    grid = ["--pooling", "mean", "--pooling", "cls", "--transform", "none"]
    grid += ["--transform", "whitening", "--transform", "whitening-8", "--precision", "fp32"]
    grid += ["--plot", str(tmp_path)]
    result = runner.invoke(app, args + grid)
    assert result.exit_code == 0, result.output
    scatters = sorted(p.name for p in tmp_path.glob("scatter-*.png"))
    assert len(scatters) == 6 and "scatter-fp32_cosine_cls_whitening-8.png" in scatters
    for path in [*tmp_path.glob("scatter-*.png"), tmp_path / "spectrum.png"]:
        image = matplotlib.image.imread(path)
        assert image.ndim == 3 and image.shape[0] > 100 and image.std() > 0  # drawn, not blank
    assert "wrote 7 plots" in result.stdout


@pytest.mark.parametrize(
    ("loss", "negatives", "metric"),
    [("cosent", "partners", "spearman"), ("am-softmax", "batch", "recall@1")],
)
def test_train_encoder_scores_the_dev_set_before_and_after(
    tiny_bert_dir: Path, tmp_path: Path, loss: str, negatives: str, metric: str
) -> None:
    from app.core.datasets import read_sts
    from app.encoding.bert import BertEncoder
    from app.services.evaluation import dev_score

    output = tmp_path / "models" / "mine"
    args = ["train-encoder", "--pairs", str(STS_SAMPLE), "--output", str(output)]
    args += ["--base", str(tiny_bert_dir), "--loss", loss, "--batch-size", "16", "--lr", "1e-3"]
    args += ["--warmup-steps", "2", "--max-length", "24", "--dev", str(STS_SAMPLE)]
    args += ["--negatives", negatives]
    result = runner.invoke(app, [*args, "--no-progress", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    line = next(x for x in result.output.splitlines() if x.startswith(f"dev {metric}"))
    before, after = (float(w) for w in re.findall(r"-?\d+\.\d+", line))
    pairs = read_sts(STS_SAMPLE)
    assert before == pytest.approx(
        dev_score(BertEncoder(str(tiny_bert_dir)), pairs, metric), abs=0.01
    )
    assert after == pytest.approx(dev_score(BertEncoder(str(output)), pairs, metric), abs=0.01)
    config = json.loads((output / "training.json").read_text())["config"]
    assert (config["loss"], config["negatives"]) == (loss, negatives)
