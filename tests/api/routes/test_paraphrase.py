"""POST /paraphrase: 503 without a generator, validation, a happy path on the tiny SimBERT."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

pytestmark = pytest.mark.slow  # trains the tiny SimBERT once per session


def test_without_a_generator_it_is_503_with_a_way_out(client: TestClient) -> None:
    response = client.post("/paraphrase", json={"text": "how do i learn python"})
    assert response.status_code == 503
    assert "SENTSIM_GENERATOR" in response.json()["error"]


def test_happy_path_and_validation(settings: Settings, tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    folder, _, pairs = tiny_simbert
    with TestClient(create_app(settings.model_copy(update={"generator": str(folder)}))) as client:
        body = {"text": pairs[0][0], "num_return_sequences": 8, "top_k": 2, "seed": 1}
        response = client.post("/paraphrase", json=body)
        assert response.status_code == 200, response.json()
        results = response.json()
        assert 1 <= len(results) <= 2 and {"text", "score"} == set(results[0])
        assert client.post("/paraphrase", json=body).json() == results  # seeded
        assert client.get("/info").json()["generator"] == folder.name  # no server path
        for bad, status in (
            ({"text": ""}, 400),
            ({"text": "x", "top_p": 0}, 422),
            ({"text": "x", "num_return_sequences": 65}, 413),
            ({"text": "x", "max_new_tokens": 65}, 413),
            ({"text": "x", "temperature": -1}, 422),
            ({"text": "x", "temperature": 5e-324}, 422),  # found by schemathesis: NaN sampling
            ({"txt": "x"}, 422),
        ):
            assert client.post("/paraphrase", json=bad).status_code == status, bad


def test_the_generator_refuses_temperatures_that_overflow(tiny_simbert) -> None:  # type: ignore[no-untyped-def]
    from app.core.errors import InputValidationError
    from app.generation.simbert import MIN_TEMPERATURE, SimBertGenerator

    generator = SimBertGenerator.load(str(tiny_simbert[0]), device="cpu")
    with pytest.raises(InputValidationError, match="temperature"):
        generator.generate("how do i learn python", temperature=MIN_TEMPERATURE / 2)
    assert generator.generate("how do i learn python", temperature=MIN_TEMPERATURE, seed=0)
