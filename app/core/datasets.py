"""Readers for sentence corpora and STS pair files (UTF-8 text, stdlib only)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from app.core.errors import ArtifactNotFoundError, EmptyInputError, InputValidationError


@dataclass(frozen=True)
class StsPairs:
    """Sentence pairs with a gold similarity score.

    Attributes:
        sentences1: First sentence of each pair, length n.
        sentences2: Second sentence of each pair, length n.
        scores: Gold score of each pair, length n; higher is more similar (STS-B: 0-5;
            binary sets: 0/1).
    """

    sentences1: list[str]
    sentences2: list[str]
    scores: list[float]

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def sentences(self) -> list[str]:
        """All 2n sentences, ``sentences1`` then ``sentences2`` (duplicates kept)."""
        return self.sentences1 + self.sentences2


def _read_lines(path: Path) -> list[str]:
    if not path.is_file():
        raise ArtifactNotFoundError(f"no such file: {path}")
    return path.read_text(encoding="utf-8").splitlines()


def read_sts(path: str | Path) -> StsPairs:
    """Read a ``sentence1<TAB>sentence2<TAB>score`` file with a header line.

    Args:
        path: The TSV file (as in ../shared/data; extra columns after the third are ignored).

    Returns:
        The pairs, in file order.

    Raises:
        ArtifactNotFoundError: The file does not exist.
        InputValidationError: A line has fewer than three columns or a score that is not a
            finite number (the message gives the line number).
        EmptyInputError: The file holds no pairs.
    """
    path = Path(path)
    lines = _read_lines(path)
    s1: list[str] = []
    s2: list[str] = []
    scores: list[float] = []
    for lineno, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        cols = line.split("\t")
        if len(cols) < 3:
            raise InputValidationError(
                f"{path}:{lineno}: expected sentence1<TAB>sentence2<TAB>score, "
                f"got {len(cols)} column(s)"
            )
        try:
            score = float(cols[2])
        except ValueError:
            score = math.nan
        if not math.isfinite(score):
            raise InputValidationError(f"{path}:{lineno}: score {cols[2]!r} is not a number")
        s1.append(cols[0])
        s2.append(cols[1])
        scores.append(score)
    if not scores:
        raise EmptyInputError(f"{path}: no sentence pairs after the header line")
    return StsPairs(s1, s2, scores)


def read_corpus(path: str | Path) -> list[str]:
    """Read the sentences of a corpus file.

    A file whose first line contains a tab is a TSV with a header: the columns whose header
    starts with ``sentence`` or equals ``text`` are read (row by row, left to right), so an
    STS file serves as a corpus. Any other file holds one sentence per line. Blank lines and
    blank cells are skipped.

    Args:
        path: The corpus file (UTF-8).

    Returns:
        The sentences, in file order (duplicates kept).

    Raises:
        ArtifactNotFoundError: The file does not exist.
        InputValidationError: A TSV header names no sentence column.
        EmptyInputError: No sentence was found.
    """
    path = Path(path)
    lines = _read_lines(path)
    if lines and "\t" in lines[0]:
        header = [h.strip().lower() for h in lines[0].split("\t")]
        columns = [i for i, h in enumerate(header) if h.startswith("sentence") or h == "text"]
        if not columns:
            raise InputValidationError(
                f"{path}: TSV header {header} has no sentence column; name the columns "
                "'sentence1', 'sentence2'... or 'text', or give one sentence per line"
            )
        sentences = [
            cols[i].strip()
            for line in lines[1:]
            for cols in [line.split("\t")]
            for i in columns
            if i < len(cols) and cols[i].strip()
        ]
    else:
        sentences = [line.strip() for line in lines if line.strip()]
    if not sentences:
        raise EmptyInputError(f"{path}: no sentences found")
    return sentences


def read_pairs(path: str | Path, min_score: float | None = None) -> list[tuple[str, str]]:
    """Read ``sentence1<TAB>sentence2[<TAB>score]`` pairs (header line first).

    Args:
        path: The TSV file.
        min_score: With a score column, keep only pairs scoring at least this (positives).

    Raises:
        ArtifactNotFoundError, InputValidationError, EmptyInputError: As ``read_sts``.
    """
    path = Path(path)
    pairs: list[tuple[str, str]] = []
    for lineno, line in enumerate(_read_lines(path)[1:], start=2):
        cols = line.split("\t")
        if not line.strip():
            continue
        if len(cols) < 2 or not cols[0].strip() or not cols[1].strip():
            raise InputValidationError(f"{path}:{lineno}: expected sentence1<TAB>sentence2")
        if min_score is not None and len(cols) > 2:
            try:
                if float(cols[2]) < min_score:
                    continue
            except ValueError:
                raise InputValidationError(
                    f"{path}:{lineno}: score {cols[2]!r} is not a number"
                ) from None
        pairs.append((cols[0], cols[1]))
    if not pairs:
        raise EmptyInputError(f"{path}: no sentence pairs")
    return pairs
