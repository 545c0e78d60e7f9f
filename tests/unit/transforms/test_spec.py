"""The --transform spec syntax."""

from __future__ import annotations

import numpy as np
import pytest

from app.core.errors import InputValidationError
from app.transforms.normalize import l2_normalize
from app.transforms.spec import TransformSpec, parse_transform_spec


@pytest.mark.parametrize(
    ("text", "spec"),
    [
        ("none", TransformSpec("none")),
        ("whitening", TransformSpec("whitening")),
        ("whitening-256", TransformSpec("whitening", 256)),
        ("whitening-128:0,0", TransformSpec("whitening", 128, 0.0, 0.0)),
        ("whitening:0.5,1", TransformSpec("whitening", None, 0.5, 1.0)),
        ("flow", TransformSpec("flow")),
    ],
)
def test_parse(text: str, spec: TransformSpec) -> None:
    assert parse_transform_spec(text) == spec
    assert parse_transform_spec(spec.label) == spec  # the label round-trips


@pytest.mark.parametrize(
    "text",
    ["pca", "whitening-0", "whitening-x", "whitening:2,0", "whitening:a,b", "none-5", "flow-8"],
)
def test_bad_specs_are_refused(text: str) -> None:
    with pytest.raises(InputValidationError, match="bad transform"):
        parse_transform_spec(text)


def test_l2_normalize_gives_unit_rows_and_keeps_zero_rows() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]], dtype=np.float32)
    np.testing.assert_allclose(l2_normalize(x), [[0.6, 0.8], [0.0, 0.0]], atol=1e-7)
