"""Reading STS pair files and corpora."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.datasets import read_corpus, read_sts
from app.core.errors import ArtifactNotFoundError, EmptyInputError, InputValidationError

STS = "sentence1\tsentence2\tscore\nA man.\tA person.\t4.2\n\nA cat.\tA car.\t0.4\textra\n"


def test_read_sts(tmp_path: Path) -> None:
    (tmp_path / "s.tsv").write_text(STS)
    pairs = read_sts(tmp_path / "s.tsv")
    assert pairs.sentences1 == ["A man.", "A cat."] and pairs.sentences2 == ["A person.", "A car."]
    assert pairs.scores == [4.2, 0.4] and len(pairs) == 2
    assert pairs.sentences == ["A man.", "A cat.", "A person.", "A car."]


@pytest.mark.parametrize(
    ("body", "error", "match"),
    [
        ("h\nonly one column\n", InputValidationError, ":2: expected"),
        ("h\na\tb\tnot-a-number\n", InputValidationError, "not a number"),
        ("h\na\tb\tnan\n", InputValidationError, "not a number"),
        ("sentence1\tsentence2\tscore\n", EmptyInputError, "no sentence pairs"),
    ],
)
def test_read_sts_errors(tmp_path: Path, body: str, error: type, match: str) -> None:
    (tmp_path / "s.tsv").write_text(body)
    with pytest.raises(error, match=match):
        read_sts(tmp_path / "s.tsv")


def test_read_corpus_plain_and_tsv(tmp_path: Path) -> None:
    (tmp_path / "c.txt").write_text("one sentence\n\n  two  \n")
    assert read_corpus(tmp_path / "c.txt") == ["one sentence", "two"]
    (tmp_path / "s.tsv").write_text(STS)
    assert read_corpus(tmp_path / "s.tsv") == ["A man.", "A person.", "A cat.", "A car."]


def test_read_corpus_errors(tmp_path: Path) -> None:
    with pytest.raises(ArtifactNotFoundError):
        read_corpus(tmp_path / "missing.txt")
    (tmp_path / "bad.tsv").write_text("id\tscore\n1\t2\n")
    with pytest.raises(InputValidationError, match="no sentence column"):
        read_corpus(tmp_path / "bad.tsv")
    (tmp_path / "blank.txt").write_text("\n  \n")
    with pytest.raises(EmptyInputError):
        read_corpus(tmp_path / "blank.txt")
